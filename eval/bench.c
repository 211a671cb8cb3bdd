/* bench.c - llama-bench style speed test: prefill (one forward of a random prompt) and decode
 * (one token at a time), medians over repetitions.
 *
 * The protocol is llama-bench's (tools/llama-bench: test_prompt / test_gen, checked against its
 * source), so the two tok/s compare like for like:
 * - a warm-up prefill and a short warm-up decode before anything is timed;
 * - pp: one forward of n_prompt random ids from position 0, logits of the last row only;
 * - tg: n_gen single-token forwards at positions 0 .. n_gen-1, i.e. from an empty context (each
 *   rep starts over at 0, as llama-bench clears its cache before each rep), every one timed, the
 *   first included, each computing its row of logits; no sampling (llama-bench feeds random ids,
 *   we feed the prompt's random ids), nothing else inside the timed loop;
 * - the read-bandwidth probe quant-eval prints runs after all reps, outside any timing.
 * One difference in the summary: llama-bench prints the mean (and stddev) of its reps' tok/s, we
 * print the median, min and max. */
#include "lq_eval.h"

#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

lq_bench_stat lq_bench_summarize(const double *v, int n) {
    lq_bench_stat st = {0};
    if (n <= 0) return st;
    double *c = malloc((size_t)n * sizeof *c);
    if (!c) return st;
    memcpy(c, v, (size_t)n * sizeof *c);
    qsort(c, (size_t)n, sizeof *c, cmp_double);
    st.min = c[0];
    st.max = c[n - 1];
    st.median = (n % 2) ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
    free(c);
    return st;
}

/* xorshift64*: random prompt ids, reproducible from the seed. */
static uint64_t next_rand(uint64_t *state) {
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void report(const lq_bench_opts *o, int64_t done, int64_t total) {
    if (o->progress) o->progress(o->progress_user, done, total, "bench");
}

static lq_status run_prefill(lq_session *s, const int32_t *ids, int n, float *logits,
                             double *secs) {
    double t0 = lq_eval_now();
    lq_status st = lq_forward(s, ids, n, 0, logits, false);
    *secs = lq_eval_now() - t0;
    return st;
}

static lq_status run_decode(lq_session *s, const int32_t *ids, int n, float *logits,
                            double *secs) {
    double t0 = lq_eval_now();
    for (int i = 0; i < n; i++) LQ_TRY(lq_forward(s, ids + i, 1, i, logits, false));
    *secs = lq_eval_now() - t0;
    return LQ_OK;
}

lq_status lq_eval_bench(const lq_model *m, lq_pool *pool, const lq_bench_opts *opts,
                        lq_bench_result *out) {
    memset(out, 0, sizeof *out);
    lq_bench_opts o = {.n_prompt = 512, .n_gen = 128, .reps = 5, .seed = 42};
    if (opts) o = *opts;
    if (o.reps < 1) o.reps = 1;
    if (o.n_prompt < 0 || o.n_gen < 0 || (o.n_prompt == 0 && o.n_gen == 0))
        return lq_fail(LQ_ERR_INVALID_ARG, "bench: n_prompt %d / n_gen %d: nothing to run",
                       o.n_prompt, o.n_gen);
    int max_ctx = lq_model_config(m)->max_seq_len;
    int need = o.n_prompt > o.n_gen ? o.n_prompt : o.n_gen;
    if (need > max_ctx)
        return lq_fail(LQ_ERR_INVALID_ARG, "bench: %d tokens exceed the model's context of %d",
                       need, max_ctx);
    lq_session *s = NULL;
    LQ_TRY(lq_session_create(m, need, pool, &s));
    int32_t *ids = malloc((size_t)need * sizeof *ids);
    float *logits = malloc((size_t)lq_model_config(m)->vocab_size * sizeof *logits);
    double *tp = malloc((size_t)o.reps * sizeof *tp);
    double *tg = malloc((size_t)o.reps * sizeof *tg);
    lq_status st = LQ_OK;
    if (!ids || !logits || !tp || !tg) {
        st = lq_fail(LQ_ERR_NOMEM, "bench: cannot allocate buffers");
        goto done;
    }
    uint64_t rng = o.seed ? o.seed : 42;
    for (int i = 0; i < need; i++)
        ids[i] = (int32_t)(next_rand(&rng) % (uint64_t)lq_model_config(m)->vocab_size);

    int64_t steps = 2LL * (o.reps + 1);
    double secs = 0;
    /* warm-up: page in the weights and size the thread scratch, as llama-bench does */
    if (o.n_prompt > 0 && (st = run_prefill(s, ids, o.n_prompt, logits, &secs)) != LQ_OK) goto done;
    report(&o, 1, steps);
    if (o.n_gen > 0 && (st = run_decode(s, ids, o.n_gen < 4 ? o.n_gen : 4, logits, &secs)) != LQ_OK)
        goto done;
    report(&o, 2, steps);
    for (int r = 0; r < o.reps; r++) {
        if (o.n_prompt > 0) {
            if ((st = run_prefill(s, ids, o.n_prompt, logits, &secs)) != LQ_OK) goto done;
            tp[r] = secs > 0 ? o.n_prompt / secs : 0;
        }
        report(&o, 3 + 2LL * r, steps);
        if (o.n_gen > 0) {
            if ((st = run_decode(s, ids, o.n_gen, logits, &secs)) != LQ_OK) goto done;
            tg[r] = secs > 0 ? o.n_gen / secs : 0;
        }
        report(&o, 4 + 2LL * r, steps);
    }
    if (o.n_prompt > 0) out->prefill = lq_bench_summarize(tp, o.reps);
    if (o.n_gen > 0) out->decode = lq_bench_summarize(tg, o.reps);
    out->weight_bytes_per_token = lq_model_weight_bytes_per_token(m);
    out->n_params = lq_model_param_count(m);
    out->threads = lq_pool_size(pool);
done:
    free(ids);
    free(logits);
    free(tp);
    free(tg);
    lq_session_free(s);
    return st;
}
