/* test_tools_eval.c - quant-eval and quant-run end to end: JSON output (parsed with jansson)
 * against the llama2.c reference numbers, exit codes, and one-line errors. */
#include <criterion/criterion.h>

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lq_ops.h"
#include "lq_test_util.h"

static char g_bin[1024], g_tok[1024], g_text[1024], g_eval[1024], g_run[1024];
static char g_tmp[64];

static void setup(void) {
    lq_test_shared("models/stories260K/stories260K.bin", g_bin, sizeof g_bin);
    lq_test_shared("models/stories260K/tok512.bin", g_tok, sizeof g_tok);
    lq_test_shared("data/tinystories_sample.txt", g_text, sizeof g_text);
    lq_test_tool("quant-eval", g_eval, sizeof g_eval);
    lq_test_tool("quant-run", g_run, sizeof g_run);
    strcpy(g_tmp, "/tmp/lq_test_tools_eval_XXXXXX");
    cr_assert_not_null(mkdtemp(g_tmp));
}

static void teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    cr_expect_eq(system(cmd), 0);
}

/* Run `args` after the tool path through the shell; stdout/stderr land in malloc'd strings. */
typedef struct run_out {
    int code;
    char *out, *err;
} run_out;

static run_out run(const char *tool, const char *args) {
    char cmd[8192], o[128], e[128];
    snprintf(o, sizeof o, "%s/stdout", g_tmp);
    snprintf(e, sizeof e, "%s/stderr", g_tmp);
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s' 2>'%s'", tool, args, o, e);
    int rc = system(cmd);
    run_out r = {.code = (rc != -1 && WIFEXITED(rc)) ? WEXITSTATUS(rc) : -1};
    r.out = lq_test_read_file(o, NULL);
    r.err = lq_test_read_file(e, NULL);
    cr_assert(r.out && r.err);
    return r;
}

static void run_free(run_out *r) {
    free(r->out);
    free(r->err);
}

/* One line on stderr, starting with the tool's prefix. */
static void expect_one_line_error(const run_out *r, const char *prefix) {
    cr_expect(strncmp(r->err, prefix, strlen(prefix)) == 0, "stderr: %s", r->err);
}

TestSuite(tools_eval, .init = setup, .fini = teardown);

Test(tools_eval, per_line_json_matches_reference) {
    char args[4096];
    snprintf(args, sizeof args,
             "--model '%s' --tokenizer '%s' --file '%s' --per-line --separator '<|endoftext|>' "
             "--threads 2 --json", g_bin, g_tok, g_text);
    run_out r = run(g_eval, args);
    cr_assert_eq(r.code, 0, "exit %d, stderr: %s", r.code, r.err);
    json_error_t jerr;
    json_t *j = json_loads(r.out, 0, &jerr);
    cr_assert_not_null(j, "bad JSON (%s): %s", jerr.text, r.out);
    /* shared/models/SOURCES.md reference: 1804 tokens, total NLL 2284.659384, PPL 3.548202 */
    cr_expect_eq(json_integer_value(json_object_get(j, "tokens_scored")), 1804);
    double ppl = json_real_value(json_object_get(j, "ppl"));
    double nll = json_real_value(json_object_get(j, "nll_sum"));
    cr_expect(fabs(ppl - 3.548202) <= 1e-5 * 3.548202, "ppl %.6f", ppl);
    cr_expect(fabs(nll - 2284.659384) <= 1e-5 * 2284.659384, "nll %.6f", nll);
    cr_expect(json_real_value(json_object_get(j, "ppl_stderr")) > 0);
    cr_expect(json_is_real(json_object_get(j, "seconds")));
    cr_expect(json_is_real(json_object_get(j, "tokens_per_second")));
    json_decref(j);
    run_free(&r);
}

Test(tools_eval, plain_output_prints_ppl_line) {
    char args[4096];
    snprintf(args, sizeof args, "--model '%s' --tokenizer '%s' --file '%s' --ctx 128 --chunks 3",
             g_bin, g_tok, g_text);
    run_out r = run(g_eval, args);
    cr_assert_eq(r.code, 0, "exit %d, stderr: %s", r.code, r.err);
    cr_expect(strncmp(r.out, "PPL = ", 6) == 0, "stdout: %s", r.out);
    cr_expect(strstr(r.out, "+/-") != NULL);
    /* llama.cpp protocol: 3 chunks x (128 - 64 - 1) scored tokens */
    cr_expect(strstr(r.out, "tokens scored: 189 ") != NULL, "stdout: %s", r.out);
    run_free(&r);
}

Test(tools_eval, bench_json_has_every_field) {
    char args[4096];
    snprintf(args, sizeof args,
             "--model '%s' --bench --n-prompt 32 --n-gen 16 --reps 3 --threads 2 --json", g_bin);
    run_out r = run(g_eval, args);
    cr_assert_eq(r.code, 0, "exit %d, stderr: %s", r.code, r.err);
    json_error_t jerr;
    json_t *j = json_loads(r.out, 0, &jerr);
    cr_assert_not_null(j, "bad JSON (%s): %s", jerr.text, r.out);
    const char *stats[] = {"prefill_tok_s", "decode_tok_s"};
    for (int i = 0; i < 2; i++) {
        json_t *s = json_object_get(j, stats[i]);
        cr_assert(json_is_object(s), "%s missing", stats[i]);
        double mn = json_real_value(json_object_get(s, "min"));
        double md = json_real_value(json_object_get(s, "median"));
        double mx = json_real_value(json_object_get(s, "max"));
        cr_expect(mn > 0 && mn <= md && md <= mx, "%s: %g %g %g", stats[i], mn, md, mx);
    }
    /* stories260K: 260,032 parameters (SOURCES.md); the tied head counts once */
    cr_expect_eq(json_integer_value(json_object_get(j, "params")), 260032);
    cr_expect(json_integer_value(json_object_get(j, "weight_bytes_per_token")) > 0);
    /* the whole process maps a 1 MB model: peak RSS is above that and far below 8 GB */
    json_int_t rss = json_integer_value(json_object_get(j, "peak_rss_bytes"));
    cr_expect(rss > (1 << 20) && rss < (8LL << 30), "rss %lld", (long long)rss);
    cr_expect(json_real_value(json_object_get(j, "bandwidth_gb_s")) > 0);
    cr_expect(json_real_value(json_object_get(j, "bandwidth_ratio")) > 0);
    cr_expect_eq(json_integer_value(json_object_get(j, "threads")), 2);
    json_decref(j);
    run_free(&r);
}

Test(tools_eval, help_exits_zero) {
    run_out r = run(g_eval, "--help");
    cr_expect_eq(r.code, 0);
    cr_expect(strstr(r.out, "usage: quant-eval") != NULL);
    run_free(&r);
    r = run(g_run, "--help");
    cr_expect_eq(r.code, 0);
    cr_expect(strstr(r.out, "usage: quant-run") != NULL);
    run_free(&r);
}

Test(tools_eval, bad_arguments_exit_2_with_usage) {
    const char *cases[] = {
        "",                                       /* nothing */
        "--model x.bin",                          /* neither --file nor --bench */
        "--model x.bin --file t.txt --ctx abc",   /* not a number */
        "--model x.bin --file t.txt --ctx 1",     /* too small */
        "--model x.bin --file t.txt --frobnicate",/* unknown */
        "--model",                                /* missing value */
        "--model x.bin --bench --file t.txt",     /* exclusive */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_out r = run(g_eval, cases[i]);
        cr_expect_eq(r.code, 2, "'%s': exit %d", cases[i], r.code);
        expect_one_line_error(&r, "quant-eval: error: ");
        cr_expect(strstr(r.err, "usage:") != NULL, "'%s': %s", cases[i], r.err);
        run_free(&r);
    }
    run_out r = run(g_run, "--model x.bin --max-tokens -3 --prompt hi");
    cr_expect_eq(r.code, 2);
    expect_one_line_error(&r, "quant-run: error: ");
    run_free(&r);
    r = run(g_run, "--model x.bin");
    cr_expect_eq(r.code, 2);
    run_free(&r);
}

Test(tools_eval, missing_files_are_named) {
    char args[4096];
    snprintf(args, sizeof args, "--model '%s' --tokenizer '%s' --file /nonexistent/lq_text.txt",
             g_bin, g_tok);
    run_out r = run(g_eval, args);
    cr_expect_eq(r.code, 4, "exit %d: %s", r.code, r.err); /* I/O */
    expect_one_line_error(&r, "quant-eval: error: ");
    cr_expect(strstr(r.err, "/nonexistent/lq_text.txt") != NULL, "%s", r.err);
    run_free(&r);

    r = run(g_eval, "--model /nonexistent/lq_model.bin --file x.txt");
    cr_expect_neq(r.code, 0);
    expect_one_line_error(&r, "quant-eval: error: ");
    cr_expect(strstr(r.err, "/nonexistent/lq_model.bin") != NULL, "%s", r.err);
    run_free(&r);

    /* a llama2.c .bin carries no tokenizer: the error says which option to pass */
    snprintf(args, sizeof args, "--model '%s' --file '%s'", g_bin, g_text);
    r = run(g_eval, args);
    cr_expect_eq(r.code, 2, "exit %d: %s", r.code, r.err);
    cr_expect(strstr(r.err, "--tokenizer") != NULL, "%s", r.err);
    run_free(&r);
}

Test(tools_eval, vocab_mismatch_and_empty_text) {
    char gpt2[1024], args[4096], empty[128];
    lq_test_shared("models/gpt2-tokenizer/tokenizer.json", gpt2, sizeof gpt2);
    /* GPT-2's 50257 tokens cannot index stories260K's 512-row embedding */
    snprintf(args, sizeof args, "--model '%s' --tokenizer '%s' --file '%s'", g_bin, gpt2, g_text);
    run_out r = run(g_eval, args);
    cr_expect_eq(r.code, 3, "exit %d: %s", r.code, r.err); /* LQ_ERR_MISMATCH */
    expect_one_line_error(&r, "quant-eval: error: ");
    cr_expect(strstr(r.err, "50257") != NULL && strstr(r.err, "512") != NULL, "%s", r.err);
    run_free(&r);

    snprintf(empty, sizeof empty, "%s/empty.txt", g_tmp);
    FILE *f = fopen(empty, "w");
    cr_assert_not_null(f);
    fclose(f);
    snprintf(args, sizeof args, "--model '%s' --tokenizer '%s' --file '%s'", g_bin, g_tok, empty);
    r = run(g_eval, args);
    cr_expect_eq(r.code, 2, "exit %d: %s", r.code, r.err);
    expect_one_line_error(&r, "quant-eval: error: ");
    cr_expect(strstr(r.err, "empty") != NULL, "%s", r.err);
    run_free(&r);
}

Test(tools_eval, quant_run_streams_reference_sample) {
    char args[4096];
    snprintf(args, sizeof args,
             "--model '%s' --tokenizer '%s' --prompt '' --max-tokens 40 --threads 2", g_bin,
             g_tok);
    run_out r = run(g_run, args);
    cr_assert_eq(r.code, 0, "exit %d, stderr: %s", r.code, r.err);
    const char *ref = "Once upon a time, there was a little girl named Lily.";
    cr_expect(strncmp(r.out, ref, strlen(ref)) == 0, "stdout: %s", r.out);
    cr_expect(strstr(r.err, "40 tokens, ") != NULL && strstr(r.err, "tok/s (prefill ") != NULL,
              "stderr: %s", r.err);
    run_free(&r);

    /* a prompt continues greedily; the prompt text is echoed first */
    snprintf(args, sizeof args,
             "--model '%s' --tokenizer '%s' --prompt 'Once upon a time' --max-tokens 8",
             g_bin, g_tok);
    r = run(g_run, args);
    cr_assert_eq(r.code, 0, "exit %d, stderr: %s", r.code, r.err);
    cr_expect(strncmp(r.out, "Once upon a time", 16) == 0, "stdout: %s", r.out);
    cr_expect(strlen(r.out) > 17, "stdout: %s", r.out);
    run_free(&r);
}

/* Issue 10 (decided): NaN weights are refused by quant-eval and quant-run at load, naming the
 * tensor, as quant-ptq and quant-prune refuse them (they printed "PPL = nan" with exit 0). The
 * model: stories260K converted to HF with one element of model.norm.weight set to NaN. */
static void poison_norm(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    uint64_t hlen = 0;
    cr_assert_eq(fread(&hlen, 8, 1, f), 1);
    char *hdr = calloc(1, hlen + 1);
    cr_assert_eq(fread(hdr, 1, hlen, f), hlen);
    const char *e = strstr(hdr, "\"model.norm.weight\"");
    cr_assert_not_null(e);
    const char *o = strstr(e, "\"data_offsets\"");
    cr_assert_not_null(o);
    long long begin = 0;
    cr_assert_eq(sscanf(strchr(o, '[') + 1, "%lld", &begin), 1);
    float nan = NAN;
    cr_assert_eq(fseek(f, (long)(8 + hlen + (uint64_t)begin + 4 * 3), SEEK_SET), 0);
    cr_assert_eq(fwrite(&nan, 4, 1, f), 1);
    fclose(f);
    free(hdr);
}

Test(tools_eval, nan_weights_are_refused_naming_the_tensor) {
    char dir[256], cmd[4096], args[4096];
    snprintf(dir, sizeof dir, "%s/nan", g_tmp);
    cr_assert_eq(lq_test_convert_stories260k(dir, cmd, sizeof cmd), 0, "%s", cmd);
    poison_norm(dir);
    const char *tools[2] = {g_eval, g_run};
    const char *fmt[2] = {"--model '%s' --file '%s' --per-line --json", "--model '%s' --max-tokens 4 --prompt '%s'"};
    for (int i = 0; i < 2; i++) {
        snprintf(args, sizeof args, fmt[i], dir, i == 0 ? g_text : "Once");
        run_out r = run(tools[i], args);
        cr_expect_eq(r.code, 3, "%s: exit %d, stderr: %s, stdout: %s", tools[i], r.code, r.err, r.out);
        cr_expect(strstr(r.err, "tensor 'model.norm.weight': non-finite weight at element 3"), "%s", r.err);
        cr_expect_eq(strchr(r.err, '\n'), r.err + strlen(r.err) - 1, "one line: %s", r.err);
        run_free(&r);
    }
}

/* The cores OpenBLAS reports loading ("Core: NAME" lines under OPENBLAS_VERBOSE=2): how many, the
 * first and the last (NAME up to the line's end, in buf). */
static int blas_loads(const char *err, char *first, char *last, size_t cap) {
    int n = 0;
    for (const char *p = strstr(err, "Core: "); p; p = strstr(p + 1, "Core: ")) {
        const size_t len = strcspn(p + 6, "\r\n");
        snprintf(n ? last : first, cap, "%.*s", (int)len, p + 6);
        if (!n) snprintf(last, cap, "%.*s", (int)len, p + 6);
        n++;
    }
    return n;
}

/* OpenBLAS falls back to SSE3 kernels on CPU models it does not know (lq_blas_core_hint): a tool
 * then re-executes itself with OPENBLAS_CORETYPE set, so the kernels that end up loaded (OpenBLAS
 * prints "Core: NAME" as it loads under OPENBLAS_VERBOSE=2) are the hinted ones; where OpenBLAS
 * already runs AVX2 kernels it loads once. A user's own OPENBLAS_CORETYPE is never overridden. */
Test(tools_eval, openblas_fallback_kernels_are_replaced) {
    char cmd[1200], args[1300], first[64], last[64];
    snprintf(cmd, sizeof cmd, "env -u OPENBLAS_CORETYPE OPENBLAS_VERBOSE=2 '%s' --help", g_eval);
    snprintf(args, sizeof args, "-c \"%s\"", cmd);
    run_out r = run("/bin/sh", args);
    cr_assert_eq(r.code, 0, "stderr: %s", r.err);
    int loads = blas_loads(r.err, first, last, sizeof first);
    if (loads == 0) { /* not a DYNAMIC_ARCH OpenBLAS (or none): nothing is chosen */
        cr_assert_null(lq_blas_core_hint(), "a hint without an OpenBLAS that reports its core");
        run_free(&r);
        return;
    }
    const char *hint = lq_blas_core_hint_for(first);
    if (hint) {
        cr_assert_eq(loads, 2, "fallback kernels %s: the tool should load OpenBLAS twice; stderr: %s", first, r.err);
        cr_assert(strcasecmp(last, hint) == 0, "loaded %s, hint %s", last, hint);
    } else {
        cr_assert_eq(loads, 1, "kernels %s need no hint: one load; stderr: %s", first, r.err);
    }
    run_free(&r);
    /* the user's choice stands: no re-exec, that core */
    snprintf(cmd, sizeof cmd, "OPENBLAS_CORETYPE=Haswell OPENBLAS_VERBOSE=2 '%s' --help", g_eval);
    snprintf(args, sizeof args, "-c \"%s\"", cmd);
    r = run("/bin/sh", args);
    cr_assert_eq(r.code, 0);
    cr_assert_eq(blas_loads(r.err, first, last, sizeof first), 1, "stderr: %s", r.err);
    cr_assert(strcasecmp(last, "Haswell") == 0, "stderr: %s", r.err);
    run_free(&r);
}
