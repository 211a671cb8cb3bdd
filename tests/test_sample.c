/* test_sample.c - the sampler: PCG32 against the reference generator's published outputs, each
 * logit processor on hand-worked examples, the processor order (cases where another order gives
 * another result), greedy limits, the draw's distribution (chi-square, fixed seed), and seeded
 * generation on stories260K (greedy = llama2.c's documented sample; same seed = same tokens). */
#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lq_eval.h"
#include "lq_test_util.h"

/* ---- generator ------------------------------------------------------------------------------- */

/* pcg32_srandom_r(&rng, 42u, 54u) then pcg32_random_r: the first outputs printed by pcg32-demo
 * in imneme/pcg-c-basic (also the vectors of Raytracer.jl's test/test_pcg.jl). */
Test(sample, pcg32_matches_reference_outputs) {
    const uint32_t want[6] = {0xa15c02b7u, 0x7b47f409u, 0xba1d3330u,
                              0x83d2f293u, 0xbfa4784bu, 0xcbed606eu};
    lq_rng r;
    lq_rng_seed(&r, 42, 54);
    for (int i = 0; i < 6; i++) {
        uint32_t got = lq_rng_u32(&r);
        cr_expect_eq(got, want[i], "output %d: 0x%08x, want 0x%08x", i, got, want[i]);
    }
}

Test(sample, uniform_is_in_unit_interval_and_reproducible) {
    lq_rng a, b;
    lq_rng_seed(&a, 7, 0);
    lq_rng_seed(&b, 7, 0);
    double mean = 0;
    for (int i = 0; i < 10000; i++) {
        double u = lq_rng_uniform(&a);
        cr_assert(u >= 0 && u < 1, "%.17g", u);
        cr_assert_eq(u, lq_rng_uniform(&b));
        mean += u;
    }
    mean /= 10000;
    /* sd of the mean of 10^4 uniforms = 0.289 / 100: 0.01 is > 3 sd */
    cr_expect(fabs(mean - 0.5) < 0.01, "mean %.4f", mean);
}

/* ---- processors ------------------------------------------------------------------------------ */

#define MAXC 16
typedef struct cands {
    lq_candidate buf[MAXC];
    lq_candidates c;
} cands;

static void cands_init(cands *k, const float *logits, int n) {
    k->c.data = k->buf;
    lq_candidates_init(&k->c, logits, n);
}

/* logits whose softmax is exactly p (up to rounding): log p */
static void log_probs(const double *p, int n, float *out) {
    for (int i = 0; i < n; i++) out[i] = (float)log(p[i]);
}

static bool has_id(const lq_candidates *c, int32_t id) {
    for (int64_t i = 0; i < c->n; i++)
        if (c->data[i].id == id) return true;
    return false;
}

/* Ties at the cut: the lower id is kept (candidates are ranked by logit, then id). */
Test(sample, top_k_keeps_exactly_k_lower_id_on_ties) {
    const float x[6] = {1, 3, 2, 3, 2, 0};
    cands k;
    cands_init(&k, x, 6);
    lq_sample_top_k(&k.c, 3);
    cr_assert_eq(k.c.n, 3);
    cr_expect_eq(k.c.data[0].id, 1);
    cr_expect_eq(k.c.data[1].id, 3);
    cr_expect_eq(k.c.data[2].id, 2); /* 2 and 4 tie at logit 2; 2 wins */
    cands_init(&k, x, 6);
    lq_sample_top_k(&k.c, 1);
    cr_expect(k.c.n == 1 && k.c.data[0].id == 1);
    cands_init(&k, x, 6);
    lq_sample_top_k(&k.c, 10); /* k > n keeps everything, sorted */
    cr_expect_eq(k.c.n, 6);
    cr_expect_eq(k.c.data[5].id, 5);
    cands_init(&k, x, 6);
    lq_sample_top_k(&k.c, 0); /* off */
    cr_expect_eq(k.c.n, 6);
}

/* Selection through the heap must agree with a full sort on a bigger, tie-rich list. */
Test(sample, top_k_selection_matches_sorted_prefix) {
    enum { N = 2000 };
    static lq_candidate buf[N];
    static float x[N];
    lq_rng r;
    lq_rng_seed(&r, 3, 0);
    for (int i = 0; i < N; i++) x[i] = (float)(lq_rng_u32(&r) % 50); /* many ties */
    for (int k = 1; k <= 300; k += 37) {
        lq_candidates c = {.data = buf};
        lq_candidates_init(&c, x, N);
        lq_sample_top_k(&c, k);
        cr_assert_eq(c.n, k);
        /* the k kept: every kept one ranks above every dropped one */
        float cut = c.data[k - 1].logit;
        int32_t cut_id = c.data[k - 1].id;
        for (int i = 0; i < N; i++) {
            bool above = x[i] > cut || (x[i] == cut && i <= cut_id);
            cr_assert_eq(has_id(&c, i), above, "k %d id %d (logit %g, cut %g/%d)", k, i, x[i],
                         cut, cut_id);
        }
        for (int i = 1; i < k; i++)
            cr_assert(c.data[i - 1].logit > c.data[i].logit ||
                      (c.data[i - 1].logit == c.data[i].logit && c.data[i - 1].id < c.data[i].id));
    }
}

/* top-p and min-p on an unsorted vocabulary-sized list (top-p selects growing heads, min-p
 * filters before sorting) must keep exactly what they keep on the fully sorted list. */
Test(sample, top_p_and_min_p_fast_paths_match_sorted_list) {
    enum { N = 32000 };
    static lq_candidate b1[N], b2[N];
    static float x[N];
    lq_rng r;
    lq_rng_seed(&r, 8, 0);
    const double ps[] = {0.1, 0.5, 0.9, 0.95, 0.999};
    for (int trial = 0; trial < 3; trial++) {
        /* flat, peaked and tie-rich logits */
        for (int i = 0; i < N; i++) {
            double u = lq_rng_uniform(&r);
            x[i] = trial == 0 ? (float)(u * 4) : trial == 1 ? (float)(u * u * 30)
                                                            : (float)(int)(u * 8);
        }
        for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
            lq_candidates a = {.data = b1}, s = {.data = b2};
            lq_candidates_init(&a, x, N);
            lq_candidates_init(&s, x, N);
            lq_sample_top_k(&s, N); /* full sort first */
            lq_sample_top_p(&a, ps[k]);
            lq_sample_top_p(&s, ps[k]);
            cr_assert_eq(a.n, s.n, "trial %d top-p %g: %lld vs %lld", trial, ps[k],
                         (long long)a.n, (long long)s.n);
            for (int64_t i = 0; i < a.n; i++) cr_assert_eq(a.data[i].id, s.data[i].id);
            lq_candidates_init(&a, x, N);
            lq_candidates_init(&s, x, N);
            lq_sample_top_k(&s, N);
            lq_sample_min_p(&a, 1 - ps[k]);
            lq_sample_min_p(&s, 1 - ps[k]);
            cr_assert_eq(a.n, s.n, "trial %d min-p %g", trial, 1 - ps[k]);
            for (int64_t i = 0; i < a.n; i++) cr_assert_eq(a.data[i].id, s.data[i].id);
        }
    }
}

/* p = (0.5, 0.2, 0.2, 0.1) in shuffled order: the nucleus is the shortest prefix of the sorted
 * list whose mass reaches p (thresholds chosen away from the exact partial sums). */
Test(sample, top_p_keeps_the_minimal_set) {
    const double p[4] = {0.2, 0.1, 0.5, 0.2};
    float x[4];
    log_probs(p, 4, x);
    const struct { double top_p; int keep; } cases[] = {
        {0.3, 1}, {0.49, 1}, {0.55, 2}, {0.69, 2}, {0.75, 3}, {0.85, 3}, {0.95, 4}, {1.0, 4}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cands k;
        cands_init(&k, x, 4);
        lq_sample_top_p(&k.c, cases[i].top_p);
        cr_expect_eq(k.c.n, cases[i].keep, "top-p %.2f kept %lld", cases[i].top_p,
                     (long long)k.c.n);
        if (cases[i].top_p < 1) cr_expect_eq(k.c.data[0].id, 2); /* 1 = off: untouched */
    }
    /* a tiny p still keeps one token */
    cands k;
    cands_init(&k, x, 4);
    lq_sample_top_p(&k.c, 1e-9);
    cr_expect_eq(k.c.n, 1);
}

/* min-p keeps p_i >= min_p * p_max; with p_max = 0.5 the thresholds are min_p / 2. */
Test(sample, min_p_threshold) {
    const double p[4] = {0.2, 0.1, 0.5, 0.2};
    float x[4];
    log_probs(p, 4, x);
    const struct { double min_p; int keep; } cases[] = {
        {0.19, 4}, /* 0.095: all */ {0.3, 3}, /* 0.15: drops 0.1 */
        {0.45, 1}, /* 0.225: only 0.5 */ {1.0, 1}, {0.0, 4}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cands k;
        cands_init(&k, x, 4);
        lq_sample_min_p(&k.c, cases[i].min_p);
        cr_expect_eq(k.c.n, cases[i].keep, "min-p %.2f kept %lld", cases[i].min_p,
                     (long long)k.c.n);
        if (cases[i].keep == 3) cr_expect(!has_id(&k.c, 1));
    }
}

/* CTRL rule, hand-worked with penalty 2: positive logits halve, negative double, zero stays,
 * ids outside the window are untouched, and id 0 (twice in the window) is penalized once. */
Test(sample, repetition_penalty_ctrl_rule) {
    const float x[5] = {2, -2, 0, 1, 3};
    const int32_t recent[4] = {0, 1, 2, 0};
    cands k;
    cands_init(&k, x, 5);
    lq_sample_repetition_penalty(&k.c, recent, 4, 2.0f);
    const float want[5] = {1, -4, 0, 1, 3};
    for (int i = 0; i < 5; i++)
        cr_expect_eq(k.c.data[i].logit, want[i], "id %d: %g, want %g", i, k.c.data[i].logit,
                     want[i]);
    /* the same on a list that is no longer in id order (found by id, not position) */
    cands_init(&k, x, 5);
    lq_sample_top_k(&k.c, 5);
    lq_sample_repetition_penalty(&k.c, recent, 4, 2.0f);
    for (int64_t i = 0; i < k.c.n; i++)
        cr_expect_eq(k.c.data[i].logit, want[k.c.data[i].id]);
}

Test(sample, temperature_scales_logits) {
    const float x[3] = {3, -1.5f, 0};
    cands k;
    cands_init(&k, x, 3);
    lq_sample_temperature(&k.c, 0.5f);
    cr_expect(k.c.data[0].logit == 6 && k.c.data[1].logit == -3 && k.c.data[2].logit == 0);
}

/* ---- processor order ---------------------------------------------------------------------------- */

/* top-k before top-p: with p = (0.4, 0.3, 0.2, 0.1), k = 2, top_p = 0.5, the stated order
 * renormalizes the two survivors to (0.571, 0.429) and keeps one; top-p first keeps two. */
Test(sample, order_top_k_then_top_p) {
    const double p[4] = {0.4, 0.3, 0.2, 0.1};
    float x[4];
    log_probs(p, 4, x);
    cands a, b;
    cands_init(&a, x, 4);
    lq_sample_top_k(&a.c, 2);
    lq_sample_top_p(&a.c, 0.5);
    cr_expect_eq(a.c.n, 1);
    cands_init(&b, x, 4);
    lq_sample_top_p(&b.c, 0.5);
    lq_sample_top_k(&b.c, 2);
    cr_expect_eq(b.c.n, 2);
    /* the sampler follows the stated order: it can only ever choose id 0 */
    lq_sample_params sp = lq_sample_params_default();
    sp.temperature = 1;
    sp.top_k = 2;
    sp.top_p = 0.5f;
    sp.seed = 11;
    lq_sampler *s = NULL;
    cr_assert_eq(lq_sampler_create(&sp, &s), LQ_OK, "%s", lq_last_error());
    for (int i = 0; i < 200; i++) {
        lq_sample_info info;
        cr_assert_eq(lq_sampler_sample(s, x, 4, &info), LQ_OK);
        cr_assert_eq(info.id, 0);
        cr_assert_eq(info.n_candidates, 1);
        cr_assert_eq(info.logprob_processed, 0.0);
        cr_assert(fabs(info.logprob - log(0.4)) < 1e-6);
    }
    lq_sampler_free(s);
}

/* temperature before top-p: p = (0.6, 0.3, 0.1), T = 3, top_p = 0.5. Tempered probabilities are
 * proportional to p^(1/3) = (0.427, 0.338, 0.235): the nucleus is {0, 1}. top-p on the raw
 * distribution would keep {0} alone. */
Test(sample, order_temperature_then_top_p) {
    const double p[3] = {0.6, 0.3, 0.1};
    float x[3];
    log_probs(p, 3, x);
    cands a, b;
    cands_init(&a, x, 3);
    lq_sample_temperature(&a.c, 3);
    lq_sample_top_p(&a.c, 0.5);
    cr_expect_eq(a.c.n, 2);
    cands_init(&b, x, 3);
    lq_sample_top_p(&b.c, 0.5);
    cr_expect_eq(b.c.n, 1);
    lq_sample_params sp = lq_sample_params_default();
    sp.temperature = 3;
    sp.top_p = 0.5f;
    sp.seed = 5;
    lq_sampler *s = NULL;
    cr_assert_eq(lq_sampler_create(&sp, &s), LQ_OK, "%s", lq_last_error());
    int count[3] = {0};
    for (int i = 0; i < 1000; i++) {
        lq_sample_info info;
        cr_assert_eq(lq_sampler_sample(s, x, 3, &info), LQ_OK);
        count[info.id]++;
        cr_assert_eq(info.n_candidates, 2);
    }
    /* {0, 1} renormalized: 0.558 / 0.442; 1000 draws put each well above 300 */
    cr_expect(count[0] > 300 && count[1] > 300 && count[2] == 0, "%d %d %d", count[0], count[1],
              count[2]);
    lq_sampler_free(s);
}

/* penalty before top-k: logits (3, 2.5, 0), id 0 in the window, penalty 2: 3 -> 1.5, so top-k 1
 * keeps id 1. Penalizing after truncation would leave only id 0 to choose. */
Test(sample, order_penalty_then_top_k) {
    const float x[3] = {3, 2.5f, 0};
    lq_sample_params sp = lq_sample_params_default();
    sp.temperature = 1;
    sp.top_k = 1;
    sp.repeat_penalty = 2;
    sp.repeat_last_n = 4;
    lq_sampler *s = NULL;
    cr_assert_eq(lq_sampler_create(&sp, &s), LQ_OK, "%s", lq_last_error());
    lq_sampler_accept(s, 0);
    lq_sample_info info;
    cr_assert_eq(lq_sampler_sample(s, x, 3, &info), LQ_OK);
    cr_expect_eq(info.id, 1);
    cands b;
    cands_init(&b, x, 3);
    lq_sample_top_k(&b.c, 1);
    const int32_t recent[1] = {0};
    lq_sample_repetition_penalty(&b.c, recent, 1, 2);
    cr_expect(b.c.n == 1 && b.c.data[0].id == 0);
    /* the window slides: after 4 more tokens id 0 is no longer penalized */
    for (int i = 0; i < 4; i++) lq_sampler_accept(s, 2);
    cr_assert_eq(lq_sampler_sample(s, x, 3, &info), LQ_OK);
    cr_expect_eq(info.id, 0);
    lq_sampler_free(s);
}

/* ---- greedy limits ------------------------------------------------------------------------------ */

static int argmax_ref(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* Temperature 0 is the argmax (lowest id on ties) whatever the truncation settings; a small
 * positive temperature converges to it: with a top-2 gap of >= 0.5 and T = 0.01 every other
 * token has probability < 64 e^-50. */
Test(sample, temperature_zero_and_limit_are_greedy) {
    enum { N = 97 };
    float x[N];
    lq_rng r;
    lq_rng_seed(&r, 99, 1);
    lq_sample_params g = lq_sample_params_default();
    g.top_k = 5;
    g.top_p = 0.3f;
    g.min_p = 0.2f;
    lq_sample_params cold = lq_sample_params_default();
    cold.temperature = 0.01f;
    lq_sampler *sg = NULL, *sc = NULL;
    cr_assert_eq(lq_sampler_create(&g, &sg), LQ_OK);
    cr_assert_eq(lq_sampler_create(&cold, &sc), LQ_OK);
    for (int t = 0; t < 200; t++) {
        for (int i = 0; i < N; i++) x[i] = (float)(lq_rng_uniform(&r) * 10 - 5);
        if (t % 4 == 0) x[N - 1] = x[argmax_ref(x, N)]; /* a tie at the top */
        int want = argmax_ref(x, N);
        lq_sample_info a, b;
        cr_assert_eq(lq_sampler_sample(sg, x, N, &a), LQ_OK);
        cr_assert_eq(a.id, want, "trial %d", t);
        cr_assert_eq(a.logprob_processed, 0.0);
        /* open a gap for the cold sampler */
        float second = -1e9f;
        for (int i = 0; i < N; i++)
            if (i != want && x[i] > second) second = x[i];
        if (x[want] - second >= 0.5f) {
            cr_assert_eq(lq_sampler_sample(sc, x, N, &b), LQ_OK);
            cr_assert_eq(b.id, want, "trial %d (T = 0.01)", t);
        }
    }
    lq_sampler_free(sg);
    lq_sampler_free(sc);
}

/* ---- the draw's distribution ------------------------------------------------------------------- */

/* Pearson chi-square of `count` against probabilities `p` over n categories. */
static double chi_square(const int *count, const double *p, int n, int total) {
    double x2 = 0;
    for (int i = 0; i < n; i++) {
        double e = p[i] * total;
        x2 += (count[i] - e) * (count[i] - e) / e;
    }
    return x2;
}

/* 20,000 draws from p = (1/2, 1/4, 1/8, 1/16, 1/16) at T = 1 with no truncation. Under the null
 * the statistic is chi-square with 4 degrees of freedom: 18.47 is its 0.999 quantile. The seed
 * is fixed, so the test is deterministic; any seed passes with probability 0.999. Each reported
 * log-probability (raw and processed) must equal log p of the token chosen. */
Test(sample, draws_match_distribution_chi_square) {
    const double p[5] = {0.5, 0.25, 0.125, 0.0625, 0.0625};
    float x[5];
    log_probs(p, 5, x);
    lq_sample_params sp = lq_sample_params_default();
    sp.temperature = 1;
    sp.seed = 20240601;
    lq_sampler *s = NULL;
    cr_assert_eq(lq_sampler_create(&sp, &s), LQ_OK);
    int count[5] = {0};
    const int total = 20000;
    for (int i = 0; i < total; i++) {
        lq_sample_info info;
        cr_assert_eq(lq_sampler_sample(s, x, 5, &info), LQ_OK);
        count[info.id]++;
        cr_assert(fabs(info.logprob - log(p[info.id])) < 1e-6);
        cr_assert(fabs(info.logprob_processed - log(p[info.id])) < 1e-6);
    }
    double x2 = chi_square(count, p, 5, total);
    cr_log_info("counts %d %d %d %d %d, chi2 %.3f", count[0], count[1], count[2], count[3],
                count[4], x2);
    cr_expect(x2 < 18.47, "chi-square %.3f over the 0.999 quantile (4 dof)", x2);
    lq_sampler_free(s);

    /* with top-k 3 the survivors renormalize to (4/7, 2/7, 1/7); 2 dof: 0.999 quantile 13.82.
     * The processed log-probability is of the renormalized distribution, the raw one is not. */
    sp.top_k = 3;
    sp.seed = 77;
    cr_assert_eq(lq_sampler_create(&sp, &s), LQ_OK);
    const double q[3] = {4.0 / 7, 2.0 / 7, 1.0 / 7};
    int c3[3] = {0};
    for (int i = 0; i < total; i++) {
        lq_sample_info info;
        cr_assert_eq(lq_sampler_sample(s, x, 5, &info), LQ_OK);
        cr_assert(info.id < 3, "id %d outside the top 3", info.id);
        c3[info.id]++;
        cr_assert(fabs(info.logprob - log(p[info.id])) < 1e-6);
        cr_assert(fabs(info.logprob_processed - log(q[info.id])) < 1e-6);
    }
    x2 = chi_square(c3, q, 3, total);
    cr_expect(x2 < 13.82, "chi-square %.3f over the 0.999 quantile (2 dof)", x2);
    lq_sampler_free(s);
}

/* ---- parameters ------------------------------------------------------------------------------- */

Test(sample, bad_parameters_and_nan_logits_are_rejected) {
    lq_sampler *s = NULL;
    lq_sample_params sp;
    float bad[][5] = {{-0.1f}, {NAN}, {INFINITY}};
    for (int i = 0; i < 3; i++) {
        sp = lq_sample_params_default();
        sp.temperature = bad[i][0];
        cr_expect_eq(lq_sampler_create(&sp, &s), LQ_ERR_INVALID_ARG);
        cr_expect_null(s);
    }
    sp = lq_sample_params_default();
    sp.top_p = 0;
    cr_expect_eq(lq_sampler_create(&sp, &s), LQ_ERR_INVALID_ARG);
    sp.top_p = 1.5f;
    cr_expect_eq(lq_sampler_create(&sp, &s), LQ_ERR_INVALID_ARG);
    cr_expect(strstr(lq_last_error(), "top-p") != NULL, "%s", lq_last_error());
    sp = lq_sample_params_default();
    sp.min_p = 2;
    cr_expect_eq(lq_sampler_create(&sp, &s), LQ_ERR_INVALID_ARG);
    sp = lq_sample_params_default();
    sp.repeat_penalty = 0;
    cr_expect_eq(lq_sampler_create(&sp, &s), LQ_ERR_INVALID_ARG);
    sp = lq_sample_params_default();
    sp.repeat_last_n = -1;
    cr_expect_eq(lq_sampler_create(&sp, &s), LQ_ERR_INVALID_ARG);

    sp = lq_sample_params_default();
    sp.temperature = 0.8f;
    cr_assert_eq(lq_sampler_create(&sp, &s), LQ_OK);
    const float x[3] = {1, NAN, 0};
    lq_sample_info info;
    cr_expect_eq(lq_sampler_sample(s, x, 3, &info), LQ_ERR_INVALID_ARG);
    cr_expect(strstr(lq_last_error(), "NaN") != NULL, "%s", lq_last_error());
    cr_expect_eq(lq_sampler_sample(s, x, 0, &info), LQ_ERR_INVALID_ARG);
    lq_sampler_free(s);
    lq_sampler_free(NULL);
}

/* ---- on a model ---------------------------------------------------------------------------------- */

#define REF_TEXT "Once upon a time, there was a little girl named Lily. She loved to play " \
                 "outside in the park. One day, she saw a big, red ball."

typedef struct run_buf {
    const lq_tokenizer *tok;
    int32_t ids[512];
    int n;
    char text[4096];
    size_t len;
    int32_t prev;
} run_buf;

static bool collect(void *user, const lq_sample_info *t) {
    run_buf *b = user;
    if (b->n >= 512) return false;
    b->ids[b->n++] = t->id;
    char piece[256];
    size_t n = lq_tokenizer_decode_token(b->tok, b->prev, t->id, piece, sizeof piece);
    if (n > sizeof piece) n = sizeof piece;
    if (b->len + n < sizeof b->text) {
        memcpy(b->text + b->len, piece, n);
        b->len += n;
        b->text[b->len] = 0;
    }
    b->prev = t->id;
    return true;
}

typedef struct model_fixture {
    lq_model *m;
    lq_tokenizer *tok;
    int32_t stop[2];
} model_fixture;

static void load(model_fixture *f) {
    char bin[1024], tk[1024];
    lq_test_shared("models/stories260K/stories260K.bin", bin, sizeof bin);
    lq_test_shared("models/stories260K/tok512.bin", tk, sizeof tk);
    cr_assert_eq(lq_model_load(bin, &f->m), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_eval_load_tokenizer(f->m, bin, tk, &f->tok), LQ_OK, "%s", lq_last_error());
    /* llama2.c models end a story with BOS */
    f->stop[0] = lq_tokenizer_eos(f->tok);
    f->stop[1] = lq_tokenizer_bos(f->tok);
}

static void unload(model_fixture *f) {
    lq_tokenizer_free(f->tok);
    lq_model_free(f->m);
}

static void generate(model_fixture *f, const lq_sample_params *sp, int max_new, run_buf *out) {
    memset(out, 0, sizeof *out);
    out->tok = f->tok;
    out->prev = lq_tokenizer_bos(f->tok);
    lq_session *s = NULL;
    cr_assert_eq(lq_session_create(f->m, 0, NULL, &s), LQ_OK, "%s", lq_last_error());
    lq_sampler *smp = NULL;
    cr_assert_eq(lq_sampler_create(sp, &smp), LQ_OK, "%s", lq_last_error());
    int32_t bos = lq_tokenizer_bos(f->tok);
    lq_sample_gen_opts o = {.max_new = max_new, .stop_ids = f->stop, .n_stop = 2,
                            .vocab = lq_tokenizer_vocab_size(f->tok)};
    lq_sample_gen_result r;
    cr_assert_eq(lq_sample_generate(f->m, s, smp, &bos, 1, &o, collect, out, &r), LQ_OK, "%s",
                 lq_last_error());
    cr_assert_eq(r.n_generated, out->n);
    lq_sampler_free(smp);
    lq_session_free(s);
}

/* Temperature 0 through the sampling loop reproduces the documented greedy sample
 * (karpathy/llama2.c doc/stories260K.md, quoted in shared/models/SOURCES.md). */
Test(sample, greedy_generation_matches_llama2c_sample) {
    model_fixture f;
    load(&f);
    lq_sample_params sp = lq_sample_params_default();
    run_buf b;
    generate(&f, &sp, 60, &b);
    cr_expect(strncmp(b.text, REF_TEXT, strlen(REF_TEXT)) == 0, "got: %s", b.text);
    unload(&f);
}

Test(sample, same_seed_same_tokens_other_seed_other_tokens) {
    model_fixture f;
    load(&f);
    lq_sample_params sp = lq_sample_params_default();
    sp.temperature = 1.0f;
    sp.top_p = 0.95f;
    sp.top_k = 40;
    sp.seed = 1234;
    static run_buf a, b, c;
    generate(&f, &sp, 64, &a);
    generate(&f, &sp, 64, &b);
    cr_assert(a.n > 8, "only %d tokens", a.n);
    cr_expect(a.n == b.n && memcmp(a.ids, b.ids, (size_t)a.n * sizeof a.ids[0]) == 0,
              "same seed, different text:\n%s\n%s", a.text, b.text);
    sp.seed = 1235;
    generate(&f, &sp, 64, &c);
    cr_expect(a.n != c.n || memcmp(a.ids, c.ids, (size_t)a.n * sizeof a.ids[0]) != 0,
              "seeds 1234 and 1235 gave the same text: %s", a.text);
    cr_log_info("seed 1234: %s", a.text);
    unload(&f);
}

/* A strong repetition penalty over the whole output keeps greedy decoding from repeating a
 * token it has already produced within the window, as long as the window covers everything. */
Test(sample, repetition_penalty_changes_greedy_text) {
    model_fixture f;
    load(&f);
    lq_sample_params sp = lq_sample_params_default();
    run_buf plain, pen;
    generate(&f, &sp, 40, &plain);
    sp.repeat_penalty = 1.3f;
    sp.repeat_last_n = 64;
    generate(&f, &sp, 40, &pen);
    /* the greedy sample repeats tokens ("a", ".", " she"): the penalty must change the text */
    cr_expect(strcmp(plain.text, pen.text) != 0, "penalty had no effect: %s", pen.text);
    unload(&f);
}

/* ---- quant-run end to end ----------------------------------------------------------------------- */

#include <jansson.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct tool_out {
    int code;
    char *out, *err;
} tool_out;

/* quant-run on stories260K with `args`; stdout and stderr captured. */
static tool_out run_tool(const char *args) {
    char bin[1024], tk[1024], tool[1024], cmd[8192];
    lq_test_shared("models/stories260K/stories260K.bin", bin, sizeof bin);
    lq_test_shared("models/stories260K/tok512.bin", tk, sizeof tk);
    lq_test_tool("quant-run", tool, sizeof tool);
    char dir[] = "/tmp/lq_test_sample_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    snprintf(cmd, sizeof cmd, "'%s' --model '%s' --tokenizer '%s' --threads 1 %s >'%s/o' 2>'%s/e'",
             tool, bin, tk, args, dir, dir);
    int rc = system(cmd);
    tool_out r = {.code = (rc != -1 && WIFEXITED(rc)) ? WEXITSTATUS(rc) : -1};
    char path[64];
    snprintf(path, sizeof path, "%s/o", dir);
    r.out = lq_test_read_file(path, NULL);
    unlink(path);
    snprintf(path, sizeof path, "%s/e", dir);
    r.err = lq_test_read_file(path, NULL);
    unlink(path);
    rmdir(dir);
    cr_assert(r.out && r.err);
    return r;
}

static void tool_out_free(tool_out *r) {
    free(r->out);
    free(r->err);
}

/* The token ids of a --json run, as a comma-separated string (malloc'd). */
static char *json_ids(json_t *j) {
    json_t *toks = json_object_get(j, "tokens");
    cr_assert(json_is_array(toks));
    size_t n = json_array_size(toks);
    char *s = calloc(n * 8 + 1, 1);
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(toks, i);
        sprintf(s + strlen(s), "%lld,", (long long)json_integer_value(json_object_get(t, "id")));
        double lp = json_real_value(json_object_get(t, "logprob"));
        double lpp = json_real_value(json_object_get(t, "logprob_processed"));
        cr_expect(lp < 0 && lpp <= 0, "token %zu: logprob %g, processed %g", i, lp, lpp);
        sum += lp;
    }
    cr_expect(fabs(sum - json_real_value(json_object_get(j, "logprob_sum"))) < 1e-9);
    return s;
}

static json_t *parse(const tool_out *r) {
    cr_assert_eq(r->code, 0, "exit %d: %s", r->code, r->err);
    json_error_t e;
    json_t *j = json_loads(r->out, 0, &e);
    cr_assert_not_null(j, "bad JSON (%s): %s", e.text, r->out);
    return j;
}

Test(sample, quant_run_same_seed_same_tokens) {
    const char *common = "--prompt 'The dog' --max-tokens 48 --temperature 0.9 --top-p 0.9 --json";
    char args[512];
    char *ids[3];
    const char *seeds[3] = {"42", "42", "43"};
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args, "%s --seed %s", common, seeds[i]);
        tool_out r = run_tool(args);
        json_t *j = parse(&r);
        cr_expect_str_eq(json_string_value(json_object_get(j, "mode")), "sample");
        json_t *p = json_object_get(j, "params");
        cr_expect_str_eq(json_string_value(json_object_get(p, "seed")), seeds[i]);
        cr_expect_eq(json_real_value(json_object_get(p, "temperature")), 0.9);
        cr_expect_eq(json_integer_value(json_object_get(p, "top_k")), 40); /* the default */
        ids[i] = json_ids(j);
        cr_expect(strstr(r.err, "tok/s") && strstr(r.err, "seed"), "%s", r.err);
        json_decref(j);
        tool_out_free(&r);
    }
    cr_expect_str_eq(ids[0], ids[1]);
    cr_expect_str_neq(ids[0], ids[2]);
    for (int i = 0; i < 3; i++) free(ids[i]);
}

/* No sampling option, or --temperature 0: greedy, the documented llama2.c sample. */
Test(sample, quant_run_greedy_default_and_temperature_zero) {
    const char *variants[] = {"", "--temperature 0", "--temperature 0 --top-k 5 --seed 3"};
    for (int i = 0; i < 3; i++) {
        char args[256];
        snprintf(args, sizeof args, "--prompt '' --max-tokens 40 %s", variants[i]);
        tool_out r = run_tool(args);
        cr_assert_eq(r.code, 0, "'%s': %s", variants[i], r.err);
        const char *golden = "Once upon a time, there was a little girl named Lily. She loved "
                             "to play outside in the park.";
        cr_expect(strncmp(r.out, golden, strlen(golden)) == 0, "'%s': %s", variants[i], r.out);
        tool_out_free(&r);
    }
    tool_out r = run_tool("--prompt '' --max-tokens 8 --temperature 0 --json");
    json_t *j = parse(&r);
    cr_expect_str_eq(json_string_value(json_object_get(j, "mode")), "greedy");
    json_t *t0 = json_array_get(json_object_get(j, "tokens"), 0);
    cr_expect_eq(json_real_value(json_object_get(t0, "logprob_processed")), 0.0);
    cr_expect_str_eq(json_string_value(json_object_get(j, "stop")), "max_tokens");
    json_decref(j);
    tool_out_free(&r);
}

Test(sample, quant_run_bad_sampling_options_exit_2) {
    const char *cases[] = {
        "--prompt hi --top-p 0",       "--prompt hi --top-p 1.5",
        "--prompt hi --temperature -1", "--prompt hi --min-p 2",
        "--prompt hi --seed -4",        "--prompt hi --top-k x",
        "--prompt hi --repeat-penalty 0", "--prompt hi --repeat-last-n -1",
        "--prompt hi --beams 2 --top-k 5", "--prompt hi --beams 2 --n-best 3",
        "--prompt hi --n-best 2",        "--prompt hi --beams 0",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tool_out r = run_tool(cases[i]);
        cr_expect_eq(r.code, 2, "'%s': exit %d", cases[i], r.code);
        cr_expect(strncmp(r.err, "quant-run: error: ", 18) == 0, "'%s': %s", cases[i], r.err);
        cr_expect(strstr(r.err, "usage:") != NULL, "'%s'", cases[i]);
        tool_out_free(&r);
    }
}
