/* speculative_dist.c - what speculative decoding computes per position: the greedy choice, the
 * processed distribution as a dense vector, draws from it, the rejection rule, and alpha.
 * The processors are lq_sample_*'s own (sample_proc.c), run in lq_sampler_sample's order, so
 * p and q are the distributions plain decoding uses. */
#include "speculative_internal.h"

#include <math.h>
#include <string.h>

int32_t lq_spec_greedy(const lq_sample_params *sp, const float *logits, int vocab,
                       const int32_t *recent, int64_t n_recent, lq_candidate *scratch) {
    lq_candidates c = {.data = scratch};
    lq_candidates_init(&c, logits, vocab);
    lq_sample_repetition_penalty(&c, recent, n_recent, sp->repeat_penalty);
    /* the penalty keeps id order: index i is id i, as in lq_sampler_sample's greedy branch */
    int64_t best = 0;
    for (int64_t i = 1; i < c.n; i++)
        if (c.data[i].logit > c.data[best].logit) best = i;
    return c.data[best].id;
}

void lq_spec_probs(const lq_sample_params *sp, const float *logits, int vocab,
                   const int32_t *recent, int64_t n_recent, lq_candidate *scratch, double *probs) {
    lq_candidates c = {.data = scratch};
    lq_candidates_init(&c, logits, vocab);
    lq_sample_repetition_penalty(&c, recent, n_recent, sp->repeat_penalty);
    lq_sample_temperature(&c, sp->temperature);
    lq_sample_top_k(&c, sp->top_k);
    lq_sample_top_p(&c, sp->top_p);
    lq_sample_min_p(&c, sp->min_p);
    lq_sample_softmax(&c);
    memset(probs, 0, (size_t)vocab * sizeof *probs);
    for (int64_t i = 0; i < c.n; i++) probs[c.data[i].id] = c.data[i].p;
}

int32_t lq_spec_draw(const double *probs, int64_t n, lq_rng *r) {
    double total = 0;
    for (int64_t i = 0; i < n; i++) total += probs[i];
    double u = lq_rng_uniform(r) * total, cum = 0;
    int64_t last = 0;
    for (int64_t i = 0; i < n; i++) {
        if (probs[i] <= 0) continue;
        cum += probs[i];
        last = i;
        if (cum > u) return (int32_t)i;
    }
    return (int32_t)last; /* u on the rounding slack at the top */
}

bool lq_spec_accept(const double *p, const double *q, int64_t n, int32_t x, lq_rng *r,
                    int32_t *resampled) {
    /* u < p/q accepts with probability min(1, p/q); written as u * q < p to need no division
     * (q[x] > 0: x was drawn from q) */
    double u = lq_rng_uniform(r);
    if (u * q[x] < p[x]) return true;
    /* the residual max(0, p - q), drawn without materializing it: two passes over n */
    double total = 0;
    for (int64_t i = 0; i < n; i++)
        if (p[i] > q[i]) total += p[i] - q[i];
    if (!(total > 0)) { /* p == q to rounding: rejection had probability ~0; p is the answer */
        *resampled = lq_spec_draw(p, n, r);
        return false;
    }
    double v = lq_rng_uniform(r) * total, cum = 0;
    int64_t last = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!(p[i] > q[i])) continue;
        cum += p[i] - q[i];
        last = i;
        if (cum > v) break;
    }
    *resampled = (int32_t)last;
    return false;
}

/* ---- reports ---------------------------------------------------------------------------------- */

static double log_sum_exp(const float *x, int n, float *mx_out) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++)
        if (x[i] > mx) mx = x[i];
    double s = 0;
    for (int i = 0; i < n; i++) s += exp((double)x[i] - mx);
    *mx_out = mx;
    return log(s);
}

double lq_spec_logprob(const float *logits, int vocab, int32_t id) {
    float mx;
    double lse = log_sum_exp(logits, vocab, &mx);
    return (double)logits[id] - mx - lse;
}

double lq_spec_alpha(const float *pl, const float *ql, int vocab) {
    float mp, mq;
    double lp = log_sum_exp(pl, vocab, &mp), lq = log_sum_exp(ql, vocab, &mq);
    double s = 0;
    for (int i = 0; i < vocab; i++) {
        double a = (double)pl[i] - mp - lp, b = (double)ql[i] - mq - lq;
        s += exp(a < b ? a : b);
    }
    return s;
}
