/* test_sched.c - the continuous-batching scheduler (lq_sched.h) on stories260K.
 *
 * - every request's tokens equal greedy decoding of its prompt alone with lq_forward (the engine
 *   test_generate checks against llama2.c's documented sample), whatever it was batched with;
 * - no step runs more rows than the token budget; prompts longer than the chunk are prefilled
 *   over several steps; admission is first come first served within max_seqs;
 * - fairness: every running request gets a token every step (max_seqs <= budget);
 * - admission waits for KV pages (reserved for prompt + max_new), and a request larger than the
 *   whole pool is refused at submission.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libquant/lq_sched.h"
#include "lq_test_util.h"

#define NREQ 6
#define MAXGEN 12

static lq_model *load(void) {
    char bin[1024];
    lq_test_shared("models/stories260K/stories260K.bin", bin, sizeof bin);
    lq_model *m = NULL;
    cr_assert_eq(lq_model_load(bin, &m), LQ_OK, "%s", lq_last_error());
    return m;
}

static int32_t argmax(const float *x, int n) {
    int32_t b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* greedy continuation of prompt alone */
static void greedy_alone(lq_model *m, const int32_t *prompt, int n, int gen, int32_t *out) {
    const int V = lq_model_config(m)->vocab_size;
    lq_session *s;
    cr_assert_eq(lq_session_create(m, 256, NULL, &s), LQ_OK);
    float *lg = malloc((size_t)V * sizeof *lg);
    cr_assert_eq(lq_forward(s, prompt, n, 0, lg, false), LQ_OK);
    for (int g = 0; g < gen; g++) {
        out[g] = argmax(lg, V);
        if (g + 1 < gen) cr_assert_eq(lq_forward(s, &out[g], 1, n + g, lg, false), LQ_OK);
    }
    free(lg);
    lq_session_free(s);
}

Test(sched, tokens_budget_chunks_and_fcfs) {
    lq_model *m = load();
    const int plen[NREQ] = {40, 3, 70, 5, 17, 1}, glen[NREQ] = {5, 12, 3, 8, 10, 6};
    int32_t prompt[NREQ][70], want[NREQ][MAXGEN], got[NREQ][MAXGEN];
    uint32_t x = 99;
    for (int r = 0; r < NREQ; r++)
        for (int t = 0; t < plen[r]; t++) prompt[r][t] = 1 + (int32_t)((x = x * 1103515245u + 12345u) >> 16) % 511;
    for (int r = 0; r < NREQ; r++) greedy_alone(m, prompt[r], plen[r], glen[r], want[r]);
    lq_batch *b;
    lq_batch_opts bo = {.n_ctx = 128};
    cr_assert_eq(lq_batch_create(m, &bo, NULL, &b), LQ_OK, "%s", lq_last_error());
    lq_sched *s;
    lq_sched_opts so = {.token_budget = 16, .max_seqs = 3, .prefill_chunk = 8};
    cr_assert_eq(lq_sched_create(b, &so, &s), LQ_OK, "%s", lq_last_error());
    for (int r = 0; r < NREQ; r++) {
        int id;
        cr_assert_eq(lq_sched_submit(s, prompt[r], plen[r], glen[r], &id), LQ_OK, "%s", lq_last_error());
        cr_assert_eq(id, r);
    }
    int n_got[NREQ] = {0}, first_step[NREQ], done_step[NREQ], steps = 0;
    lq_sched_event ev[3];
    while (!lq_sched_idle(s)) {
        int n_ev, rows;
        cr_assert_eq(lq_sched_step(s, ev, &n_ev, &rows), LQ_OK, "%s", lq_last_error());
        cr_assert(rows > 0 && rows <= 16, "step %d ran %d rows (budget 16)", steps, rows);
        cr_assert(lq_sched_running(s) <= 3);
        for (int i = 0; i < n_ev; i++) {
            const int r = ev[i].req;
            cr_assert_eq(ev[i].index, n_got[r]);
            if (ev[i].index == 0) first_step[r] = steps;
            got[r][n_got[r]++] = ev[i].token;
            if (ev[i].done) done_step[r] = steps;
            cr_assert_eq(ev[i].done, n_got[r] == glen[r]);
        }
        cr_assert(++steps < 1000);
    }
    for (int r = 0; r < NREQ; r++) {
        cr_expect_eq(n_got[r], glen[r]);
        for (int g = 0; g < glen[r]; g++)
            cr_expect_eq(got[r][g], want[r][g], "request %d token %d: %d, alone %d", r, g, got[r][g], want[r][g]);
    }
    /* 70 prompt tokens in chunks of at most 8 take at least 9 steps before the first token */
    cr_expect(first_step[2] >= 8, "request 2's first token at step %d", first_step[2]);
    /* three slots, first come first served: request 3 starts only after one of 0..2 finished */
    int first_done = done_step[0];
    for (int r = 1; r < 3; r++) first_done = done_step[r] < first_done ? done_step[r] : first_done;
    cr_expect(first_step[3] > first_done, "request 3 started at step %d, first finish at %d", first_step[3], first_done);
    lq_kv_stats ks;
    lq_batch_kv_stats(b, &ks);
    cr_expect_eq(ks.pages_in_use, 0, "every finished request returned its pages");
    lq_sched_free(s);
    lq_batch_free(b);
    lq_model_free(m);
}

/* max_seqs is clamped to the budget, so decode tokens always fit: every running request gets
 * one token every step from its first to its last (no request is skipped), and prompts get only
 * what decoding leaves. */
Test(sched, every_running_request_advances_every_step) {
    lq_model *m = load();
    lq_batch *b;
    cr_assert_eq(lq_batch_create(m, NULL, NULL, &b), LQ_OK, "%s", lq_last_error());
    lq_sched *s;
    lq_sched_opts so = {.token_budget = 4, .max_seqs = 8};
    cr_assert_eq(lq_sched_create(b, &so, &s), LQ_OK);
    int32_t p[6][3] = {{5, 6, 7}, {8}, {9, 10}, {11}, {12, 13, 14}, {15}};
    const int plen[6] = {3, 1, 2, 1, 3, 1};
    int id, last[6], cnt[6] = {0}, steps = 0;
    for (int r = 0; r < 6; r++) cr_assert_eq(lq_sched_submit(s, p[r], plen[r], 7, &id), LQ_OK);
    lq_sched_event ev[8];
    while (!lq_sched_idle(s)) {
        int n_ev, rows;
        cr_assert_eq(lq_sched_step(s, ev, &n_ev, &rows), LQ_OK, "%s", lq_last_error());
        cr_assert(rows <= 4 && lq_sched_running(s) <= 4, "rows %d, running %d", rows, lq_sched_running(s));
        for (int i = 0; i < n_ev; i++) {
            const int r = ev[i].req;
            if (ev[i].index > 0) cr_expect_eq(steps, last[r] + 1, "request %d skipped a step", r);
            last[r] = steps;
            cnt[r]++;
        }
        cr_assert(++steps < 100);
    }
    for (int r = 0; r < 6; r++) cr_expect_eq(cnt[r], 7);
    lq_sched_free(s);
    lq_batch_free(b);
    lq_model_free(m);
}

Test(sched, admission_waits_for_pages) {
    lq_model *m = load();
    lq_batch *b;
    lq_batch_opts bo = {.page_tokens = 16, .max_pages = 3, .n_ctx = 128};
    cr_assert_eq(lq_batch_create(m, &bo, NULL, &b), LQ_OK);
    lq_sched *s;
    cr_assert_eq(lq_sched_create(b, NULL, &s), LQ_OK);
    int32_t p[20];
    for (int i = 0; i < 20; i++) p[i] = 3 + i;
    int id;
    cr_assert_eq(lq_sched_submit(s, p, 20, 50, &id), LQ_ERR_INVALID_ARG); /* 70 tokens: 5 pages > 3 */
    cr_expect(strstr(lq_last_error(), "pages"), "%s", lq_last_error());
    for (int r = 0; r < 3; r++) cr_assert_eq(lq_sched_submit(s, p, 20, 10, &id), LQ_OK); /* 2 pages each */
    lq_sched_event ev[64];
    int n_ev, rows, finished = 0, steps = 0;
    while (!lq_sched_idle(s)) {
        cr_assert_eq(lq_sched_step(s, ev, &n_ev, &rows), LQ_OK, "%s", lq_last_error());
        cr_assert_eq(lq_sched_running(s) + finished <= 3, true);
        cr_assert(lq_sched_running(s) <= 1, "two requests of 2 pages each in a pool of 3");
        for (int i = 0; i < n_ev; i++) finished += ev[i].done;
        cr_assert(++steps < 100);
    }
    cr_expect_eq(finished, 3);
    lq_sched_free(s);
    lq_batch_free(b);
    lq_model_free(m);
}

/* quant-eval --serve-bench over a trace file: every request, every token, one JSON object; a bad
 * trace line is one error naming file:line, exit 3. */
Test(sched, serve_bench_tool_on_a_trace) {
    char root[] = "/tmp/lq_test_serve_XXXXXX", trace[512], args[2048], bin[1024], err[1024];
    cr_assert_not_null(mkdtemp(root));
    lq_test_shared("models/stories260K/stories260K.bin", bin, sizeof bin);
    snprintf(trace, sizeof trace, "%s/trace.txt", root);
    FILE *f = fopen(trace, "w");
    cr_assert_not_null(f);
    fputs("# arrival prompt gen\n0 5 3\n0.001 10 4\n\n0.002 7 2   # last\n", f);
    fclose(f);
    snprintf(args, sizeof args, "--model '%s' --serve-bench --trace '%s' --budget 8 --json --threads 1", bin, trace);
    cr_assert_eq(lq_test_run_tool("quant-eval", args, root, err, sizeof err), 0, "%s", err);
    char out[512];
    snprintf(out, sizeof out, "%s/stdout.txt", root);
    char *js = lq_test_read_file(out, NULL);
    cr_assert_not_null(js);
    cr_expect(strstr(js, "\"requests\": 3"), "%s", js);
    cr_expect(strstr(js, "\"prompt_tokens\": 22"), "%s", js);
    cr_expect(strstr(js, "\"generated_tokens\": 9"), "%s", js);
    cr_expect(strstr(js, "\"ttft_s\"") && strstr(js, "\"kv_peak_bytes\""), "%s", js);
    free(js);
    f = fopen(trace, "w");
    fputs("0 5 3\n1 x 2\n", f);
    fclose(f);
    cr_expect_eq(lq_test_run_tool("quant-eval", args, root, err, sizeof err), 3);
    cr_expect(strstr(err, "trace.txt:2:"), "%s", err);
    snprintf(args, sizeof args, "rm -rf '%s'", root);
    cr_expect_eq(system(args), 0);
}
