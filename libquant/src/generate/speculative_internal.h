/* speculative_internal.h - the per-position arithmetic of speculative decoding
 * (speculative_dist.c), shared by the decoding loop (speculative.c). Internal to generate/. */
#ifndef LQ_SPECULATIVE_INTERNAL_H
#define LQ_SPECULATIVE_INTERNAL_H

#include "libquant/lq_spec.h"

/* The greedy choice lq_sampler_sample makes at temperature 0: argmax of the logits after the
 * repetition penalty over recent[0..n_recent), lowest id on ties. scratch: vocab entries. */
int32_t lq_spec_greedy(const lq_sample_params *sp, const float *logits, int vocab,
                       const int32_t *recent, int64_t n_recent, lq_candidate *scratch);

/* The distribution lq_sampler_sample draws from (penalty -> temperature -> top-k -> top-p ->
 * min-p -> softmax), dense: probs[i] for every id < vocab, 0 for the ones truncated away. */
void lq_spec_probs(const lq_sample_params *sp, const float *logits, int vocab,
                   const int32_t *recent, int64_t n_recent, lq_candidate *scratch, double *probs);

/* One draw from a dense distribution (as lq_sample_draw: the first id whose running sum exceeds
 * uniform x total; zero-probability ids are never drawn). */
int32_t lq_spec_draw(const double *probs, int64_t n, lq_rng *r);

/* log softmax(logits)[id] over vocab, in double. */
double lq_spec_logprob(const float *logits, int vocab, int32_t id);

/* sum_x min(p(x), q(x)) of p = softmax(pl), q = softmax(ql) over vocab (double). */
double lq_spec_alpha(const float *pl, const float *ql, int vocab);

#endif
