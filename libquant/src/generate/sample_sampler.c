/* sample_sampler.c - the sampler: validates parameters, keeps the penalty's history window, and
 * runs the processors in the documented order (penalty -> temperature -> top-k -> top-p ->
 * min-p -> draw) on a scratch candidate list. */
#include "libquant/lq_sample.h"

#include <math.h>
#include <stdlib.h>

struct lq_sampler {
    lq_sample_params p;
    lq_rng rng;
    int32_t *hist;      /* (repeat_last_n) ring buffer of the most recent context tokens */
    int64_t hist_n;     /* tokens in the ring (<= repeat_last_n) */
    int64_t hist_head;  /* next slot to write */
    int32_t *recent;    /* (repeat_last_n) the ring unrolled, oldest first */
    lq_candidate *cand; /* (cap) scratch candidate list */
    int64_t cap;
};

lq_sample_params lq_sample_params_default(void) {
    return (lq_sample_params){.temperature = 0.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f,
                              .repeat_penalty = 1.0f, .repeat_last_n = 64, .seed = 0};
}

lq_status lq_sampler_create(const lq_sample_params *p, lq_sampler **out) {
    *out = NULL;
    /* !(x >= 0) also rejects NaN */
    if (!(p->temperature >= 0) || isinf(p->temperature))
        return lq_fail(LQ_ERR_INVALID_ARG, "sampler: temperature %g must be finite and >= 0",
                       p->temperature);
    if (!(p->top_p > 0) || p->top_p > 1)
        return lq_fail(LQ_ERR_INVALID_ARG, "sampler: top-p %g must be in (0, 1] (1 = off)",
                       p->top_p);
    if (!(p->min_p >= 0) || p->min_p > 1)
        return lq_fail(LQ_ERR_INVALID_ARG, "sampler: min-p %g must be in [0, 1] (0 = off)",
                       p->min_p);
    if (!(p->repeat_penalty > 0) || isinf(p->repeat_penalty))
        return lq_fail(LQ_ERR_INVALID_ARG, "sampler: repeat penalty %g must be > 0 (1 = off)",
                       p->repeat_penalty);
    if (p->repeat_last_n < 0)
        return lq_fail(LQ_ERR_INVALID_ARG, "sampler: repeat-last-n %d must be >= 0",
                       p->repeat_last_n);
    lq_sampler *s = calloc(1, sizeof *s);
    if (!s) return lq_fail(LQ_ERR_NOMEM, "sampler: out of memory");
    s->p = *p;
    if (p->repeat_last_n > 0) {
        s->hist = malloc((size_t)p->repeat_last_n * sizeof *s->hist);
        s->recent = malloc((size_t)p->repeat_last_n * sizeof *s->recent);
        if (!s->hist || !s->recent) {
            lq_sampler_free(s);
            return lq_fail(LQ_ERR_NOMEM, "sampler: out of memory for %d history tokens",
                           p->repeat_last_n);
        }
    }
    /* stream 0 for everyone: the seed alone picks the sequence */
    lq_rng_seed(&s->rng, p->seed, 0);
    *out = s;
    return LQ_OK;
}

void lq_sampler_free(lq_sampler *s) {
    if (!s) return;
    free(s->hist);
    free(s->recent);
    free(s->cand);
    free(s);
}

void lq_sampler_accept(lq_sampler *s, int32_t id) {
    int64_t cap = s->p.repeat_last_n;
    if (cap <= 0) return;
    s->hist[s->hist_head] = id;
    s->hist_head = (s->hist_head + 1) % cap;
    if (s->hist_n < cap) s->hist_n++;
}

void lq_sampler_reset_history(lq_sampler *s) {
    s->hist_n = 0;
    s->hist_head = 0;
}

/* log softmax(logits)[id]. A report, not a decision: expf (a third of exp's cost over a 32k
 * vocabulary) summed in double is accurate to ~1e-7 relative, plenty for a log-probability. */
static double raw_logprob(const float *logits, int64_t n, int32_t id) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += expf(logits[i] - mx);
    return (double)logits[id] - mx - log(sum);
}

lq_status lq_sampler_sample(lq_sampler *s, const float *logits, int64_t n, lq_sample_info *out) {
    if (n <= 0) return lq_fail(LQ_ERR_INVALID_ARG, "sampler: no logits to choose from");
    for (int64_t i = 0; i < n; i++)
        if (isnan(logits[i]))
            return lq_fail(LQ_ERR_INVALID_ARG, "sampler: logit of token %lld is NaN",
                           (long long)i);
    if (n > s->cap) {
        lq_candidate *c = realloc(s->cand, (size_t)n * sizeof *c);
        if (!c) return lq_fail(LQ_ERR_NOMEM, "sampler: out of memory for %lld candidates",
                               (long long)n);
        s->cand = c;
        s->cap = n;
    }
    lq_candidates c = {.data = s->cand};
    lq_candidates_init(&c, logits, n);

    /* the window, oldest first (order does not matter to the penalty, but keeps it readable) */
    int64_t cap = s->p.repeat_last_n;
    for (int64_t i = 0; i < s->hist_n; i++)
        s->recent[i] = s->hist[(s->hist_head - s->hist_n + i + cap) % cap];
    lq_sample_repetition_penalty(&c, s->recent, s->hist_n, s->p.repeat_penalty);

    lq_sample_info info = {0};
    if (s->p.temperature == 0.0f) {
        /* greedy: top-k/top-p/min-p all keep the top token, so they cannot change this */
        int64_t best = 0;
        for (int64_t i = 1; i < c.n; i++)
            if (c.data[i].logit > c.data[best].logit) best = i; /* lowest id wins ties */
        info.id = c.data[best].id;
        info.logprob_processed = 0;
        info.n_candidates = 1;
    } else {
        lq_sample_temperature(&c, s->p.temperature);
        lq_sample_top_k(&c, s->p.top_k);
        lq_sample_top_p(&c, s->p.top_p);
        lq_sample_min_p(&c, s->p.min_p);
        lq_sample_softmax(&c);
        int64_t k = lq_sample_draw(&c, &s->rng);
        info.id = c.data[k].id;
        info.logprob_processed = log(c.data[k].p);
        info.n_candidates = c.n;
    }
    info.logprob = raw_logprob(logits, n, info.id);
    *out = info;
    return LQ_OK;
}
