/* lq_sample.h - choosing the next token from logits: a portable seeded generator, the logit
 * processors, and a sampler that chains them.
 *
 * The chain, in this order (docs/DECODING.md):
 *   repetition penalty -> temperature -> top-k -> top-p -> min-p -> draw
 * Temperature 0 is greedy: the argmax of the penalized logits (lowest id on ties); top-k, top-p
 * and min-p always keep the top token, so they cannot change a greedy choice and are skipped.
 *
 * Reproducibility: the same seed and parameters give the same tokens on every machine for the
 * same logits. The generator is PCG32 (integer only); the uniform draw takes 53 integer bits.
 * Probabilities are computed in double from float logits; the only libm call in a decision is
 * exp(), which may differ by 1 ulp between libms (~1e-16 relative). That can flip a choice only
 * when a cumulative probability lands within ~1e-15 (relative) of the top-p threshold or of the
 * uniform draw, a window of width ~1e-15 per decision: accepted and documented rather than
 * worked around.
 *
 * Thread-safety: an lq_sampler (and an lq_rng) is used by one thread at a time; the processor
 * functions touch only their arguments.
 */
#ifndef LQ_SAMPLE_H
#define LQ_SAMPLE_H

#include <stdbool.h>
#include <stdint.h>

#include "lq_model.h"
#include "lq_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- generator (sample_rng.c) ---------------------------------------------------------------- */

/* PCG32 (O'Neill, pcg-random.org, "pcg32_random_r": 64-bit LCG state, XSH-RR output). */
typedef struct lq_rng {
    uint64_t state;
    uint64_t inc;  /* stream selector, always odd */
} lq_rng;

/* Seed as the reference pcg32_srandom_r(rng, seed, stream) does, so its published outputs are
 * test vectors (seed 42, stream 54 -> 0xa15c02b7, 0x7b47f409, ...). */
void lq_rng_seed(lq_rng *r, uint64_t seed, uint64_t stream);
uint32_t lq_rng_u32(lq_rng *r);
/* Uniform double in [0, 1): 53 bits from two outputs, (hi:lo >> 11) * 2^-53. */
double lq_rng_uniform(lq_rng *r);

/* ---- candidates and processors (sample_proc.c) ----------------------------------------------- */

/* One token still in the running. `logit` is the processed logit; `p` is filled by the
 * processors that need probabilities (softmax over the current candidates, in double). */
typedef struct lq_candidate {
    int32_t id;
    float logit;
    double p;
} lq_candidate;

/* A candidate list. The processors shrink n; after top-k, top-p or min-p the list is sorted by
 * logit descending, ties by lower id first (a total order, so every machine keeps the same set). */
typedef struct lq_candidates {
    lq_candidate *data;
    int64_t n;
    bool sorted;
} lq_candidates;

/* Fill c->data[0..n) with ids 0..n-1 and the given logits (c->data must hold n entries). */
void lq_candidates_init(lq_candidates *c, const float *logits, int64_t n);

/* Repetition penalty, the CTRL rule (Keskar et al. 2019, as HF and llama.cpp apply it): every
 * distinct id among recent[0..n_recent) has its logit divided by `penalty` when positive and
 * multiplied by it when negative (zero stays zero). Each id is penalized once however often it
 * occurs. penalty == 1 or n_recent == 0 does nothing. Ids outside the list are ignored. */
void lq_sample_repetition_penalty(lq_candidates *c, const int32_t *recent, int64_t n_recent,
                                  float penalty);

/* Divide every logit by t (t > 0). */
void lq_sample_temperature(lq_candidates *c, float t);

/* Keep exactly min(k, n) candidates: the k largest logits; ties at the cut go to the lower ids.
 * k <= 0 does nothing. Sorts. */
void lq_sample_top_k(lq_candidates *c, int64_t k);

/* Nucleus: keep the smallest prefix (in sorted order) whose probability mass, softmax over the
 * current candidates, reaches p; never fewer than one. p >= 1 does nothing. Sorts. */
void lq_sample_top_p(lq_candidates *c, double p);

/* Keep the candidates whose probability is at least min_p times the top probability
 * (equivalently exp(logit - max_logit) >= min_p, which does not depend on the other
 * candidates). min_p <= 0 does nothing. Sorts. */
void lq_sample_min_p(lq_candidates *c, double min_p);

/* Softmax over the candidates (double, max-subtracted) into ->p. */
void lq_sample_softmax(lq_candidates *c);

/* Draw one candidate with probability ->p (call lq_sample_softmax first): u = uniform * total,
 * the first candidate whose running sum exceeds u. Returns its index in c->data. */
int64_t lq_sample_draw(const lq_candidates *c, lq_rng *r);

/* ---- sampler (sample_sampler.c) ---------------------------------------------------------------- */

typedef struct lq_sample_params {
    float temperature;     /* 0 = greedy; else > 0 */
    int top_k;             /* <= 0: off */
    float top_p;           /* 1: off; else in (0, 1) */
    float min_p;           /* <= 0: off; else in (0, 1] */
    float repeat_penalty;  /* 1: off; else > 0 */
    int repeat_last_n;     /* tokens of history the penalty looks at; 0: off */
    uint64_t seed;
} lq_sample_params;

/* Greedy, no penalty: temperature 0, top_k 0, top_p 1, min_p 0, penalty 1, last_n 64, seed 0. */
lq_sample_params lq_sample_params_default(void);

/* What one lq_sampler_sample call chose. */
typedef struct lq_sample_info {
    int32_t id;
    /* log softmax(raw logits)[id]: the model's own distribution, before any processor. */
    double logprob;
    /* log of id's probability in the distribution actually sampled from (after penalty,
     * temperature and truncation, renormalized). 0 for a greedy choice (a point mass). */
    double logprob_processed;
    int64_t n_candidates;  /* tokens left after truncation (1 for greedy) */
} lq_sample_info;

typedef struct lq_sampler lq_sampler;

/* Validate the parameters (LQ_ERR_INVALID_ARG naming the bad one) and create a sampler whose
 * generator is seeded with p->seed. */
lq_status lq_sampler_create(const lq_sample_params *p, lq_sampler **out);
void lq_sampler_free(lq_sampler *s);

/* Record a token of the context (prompt tokens and every chosen token) for the repetition
 * penalty's window of the last repeat_last_n tokens. */
void lq_sampler_accept(lq_sampler *s, int32_t id);
/* Forget the history (the generator keeps its state). */
void lq_sampler_reset_history(lq_sampler *s);

/* Choose among ids 0..n-1 given their raw logits (not modified). A NaN logit is
 * LQ_ERR_INVALID_ARG. Does not call lq_sampler_accept. */
lq_status lq_sampler_sample(lq_sampler *s, const float *logits, int64_t n, lq_sample_info *out);

/* ---- generation loop (sample_generate.c) ------------------------------------------------------- */

/* Called once per chosen token (stop tokens excluded); return false to stop early. */
typedef bool (*lq_sample_token_fn)(void *user, const lq_sample_info *tok);

typedef struct lq_sample_gen_opts {
    int max_new;              /* most tokens to generate */
    const int32_t *stop_ids;  /* (n_stop) tokens that end generation (EOS, ...); borrowed */
    int n_stop;
    int vocab;                /* choose among ids 0..vocab-1 (<= model vocab); <= 0 = model's */
} lq_sample_gen_opts;

typedef struct lq_sample_gen_result {
    int64_t n_prompt;     /* tokens prefilled */
    int64_t n_generated;  /* tokens chosen (the stop token not counted) */
    double prefill_s;     /* seconds of the prompt forward */
    int64_t n_decode;     /* one-token forwards run (the first token comes from the prefill) */
    double decode_s;      /* seconds from the prefill's end to the last choice */
    bool hit_stop;
} lq_sample_gen_result;

/* Prefill `prompt` (n_prompt >= 1 tokens, BOS included by the caller) into session `s` at
 * position 0, feed it to the sampler's history (lq_sampler_accept), then choose up to max_new
 * tokens with `smp`, one forward each. Stops at a stop token, at max_new, when the session's
 * context is full, or when `cb` returns false. `cb` may be NULL. */
lq_status lq_sample_generate(const lq_model *m, lq_session *s, lq_sampler *smp,
                             const int32_t *prompt, int n_prompt, const lq_sample_gen_opts *opts,
                             lq_sample_token_fn cb, void *user, lq_sample_gen_result *out);

#ifdef __cplusplus
}
#endif
#endif
