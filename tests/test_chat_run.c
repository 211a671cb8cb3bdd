/* test_chat_run.c - quant-run --chat end to end.
 *
 * SmolLM2-135M-Instruct (GGUF, shared): greedy ChatML "What is the capital of France?" answers
 * "The capital of France is Paris." (SOURCES.md: a float64 forward pass of the dequantized
 * weights on the same prompt ids), the model read natively from its GGUF (template, tokenizer,
 * Q4_1/Q8_0 weights). The interactive path (stdin turns, history) runs on stories260K converted
 * to an HF directory with a template given by --chat-template.
 */
#include <criterion/criterion.h>

#include "libquant.h"
#include "lq_test_util.h"

/* one directory per test: Criterion runs them in parallel processes */
static void fresh_dir(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    cr_assert_eq(system(cmd), 0);
}

Test(chat_run, smollm2_answers_paris) {
    char gguf[1024];
    lq_test_shared("models/SmolLM2-135M-Instruct-Q4_1/SmolLM2-135M-Instruct.Q4_1.gguf", gguf,
                   sizeof gguf);
    if (!lq_test_exists(gguf)) cr_skip_test("%s is absent", gguf);
#define OUT_DIR "/tmp/lq_test_chat_run_paris"
    fresh_dir(OUT_DIR);
    char args[2048], err[4096];
    /* --system '': no system turn, as the reference prompt (the template would insert its own) */
    snprintf(args, sizeof args, "--model '%s' --chat --system '' --prompt 'What is the capital "
             "of France?' --max-tokens 24 --threads 2 --json", gguf);
    int code = lq_test_run_tool("quant-run", args, OUT_DIR, err, sizeof err);
    cr_assert_eq(code, 0, "quant-run %s: exit %d: %s", args, code, err);
    char *out = lq_test_read_file(OUT_DIR "/stdout.txt", NULL);
    cr_assert(out);
    cr_expect(strstr(out, "\"prompt_tokens\": 16"), "%s", out);
    cr_expect(strstr(out, "\"text\": \"The capital of France is Paris.\""), "%s", out);
    cr_expect(strstr(out, "\"stop\": \"end_of_turn\""), "%s", out);
    free(out);
}

/* Two stdin lines are two turns: both replies print, and the second prompt holds the first
 * exchange (its prefill is longer than the first prompt plus the first reply). */
Test(chat_run, interactive_keeps_history) {
#undef OUT_DIR
#define OUT_DIR "/tmp/lq_test_chat_run_turns"
    fresh_dir(OUT_DIR);
    char cmd[4096];
    int code = lq_test_convert_stories260k(OUT_DIR "/s260", cmd, sizeof cmd);
    cr_assert_eq(code, 0, "%s", cmd);
    FILE *in = fopen(OUT_DIR "/turns.txt", "w");
    cr_assert(in);
    fputs("Once upon a time\nThen what?\n", in);
    fclose(in);
    char args[2048], err[4096];
    snprintf(args, sizeof args, "--model " OUT_DIR "/s260 --chat --chat-template chatml "
             "--system 'Tell stories.' --max-tokens 8 --threads 1 <" OUT_DIR "/turns.txt");
    code = lq_test_run_tool("quant-run", args, OUT_DIR, err, sizeof err);
    cr_assert_eq(code, 0, "exit %d: %s", code, err);
    long gen[2] = {0}, pre[2] = {0};
    int turns = 0;
    for (const char *line = err; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        long g, p;
        double tps;
        if (sscanf(line, "%ld tokens, %lf tok/s (prefill %ld tokens", &g, &tps, &p) != 3) continue;
        if (turns < 2) {
            gen[turns] = g;
            pre[turns] = p;
        }
        turns++;
    }
    cr_assert_eq(turns, 2, "stderr: %s", err);
    cr_expect_gt(pre[1], pre[0] + gen[0], "prefill %ld then %ld (first reply %ld tokens)", pre[0],
                 pre[1], gen[0]);
    char *out = lq_test_read_file(OUT_DIR "/stdout.txt", NULL);
    cr_assert(out);
    int lines = 0;
    for (const char *p = out; *p; p++) lines += *p == '\n';
    cr_expect_geq(lines, 2, "stdout: %s", out);
    free(out);
}

Test(chat_run, refusals) {
#undef OUT_DIR
#define OUT_DIR "/tmp/lq_test_chat_run_refuse"
    fresh_dir(OUT_DIR);
    char cmd[4096], args[1024], err[4096];
    cr_assert_eq(lq_test_convert_stories260k(OUT_DIR "/s260", cmd, sizeof cmd), 0, "%s", cmd);
    /* the model ships no template: the error names where it looked */
    snprintf(args, sizeof args, "--model " OUT_DIR "/s260 --chat --prompt hi");
    cr_expect_eq(lq_test_run_tool("quant-run", args, OUT_DIR, err, sizeof err), 3);
    cr_expect(strstr(err, "s260: no tokenizer_config.json, so no chat template (pass "
                          "--chat-template)"), "%s", err);
    /* an unknown template file: the refusal quotes its start */
    FILE *f = fopen(OUT_DIR "/t.jinja", "w");
    cr_assert(f);
    fputs("{% for m in messages %}<<{{ m.role }}>> {{ m.content }}{% endfor %}", f);
    fclose(f);
    snprintf(args, sizeof args, "--model " OUT_DIR "/s260 --chat --chat-template " OUT_DIR
             "/t.jinja --prompt hi");
    cr_expect_eq(lq_test_run_tool("quant-run", args, OUT_DIR, err, sizeof err), 3);
    cr_expect(strstr(err, "t.jinja: unknown chat template (starts \"{% for m in messages %}<<"),
              "%s", err);
    snprintf(args, sizeof args, "--model " OUT_DIR "/s260 --system x --prompt hi");
    cr_expect_eq(lq_test_run_tool("quant-run", args, OUT_DIR, err, sizeof err), 2);
    cr_expect(strstr(err, "--system and --chat-template go with --chat"), "%s", err);
}
