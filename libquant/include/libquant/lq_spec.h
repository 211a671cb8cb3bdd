/* lq_spec.h - speculative decoding: a small draft model proposes up to K tokens, the target
 * model checks them all in one multi-token forward, and the rejected positions are rolled back
 * in both KV caches.
 *
 * Verification (docs/DECODING.md):
 *   greedy (temperature 0)  a draft token is accepted when it is the target's greedy choice at
 *                           its position (argmax of the penalized logits, lowest id on ties, as
 *                           lq_sampler_sample); the first mismatch is replaced by the target's
 *                           choice. The text is the target's greedy text, token for token.
 *   sampling                the rejection rule of Leviathan et al. 2023 ("Fast Inference from
 *                           Transformers via Speculative Decoding", Algorithm 1) and Chen et al.
 *                           2023 ("Accelerating LLM Decoding with Speculative Sampling"): draft
 *                           token x ~ q is accepted with probability min(1, p(x)/q(x)); on
 *                           rejection the token is drawn from normalize(max(0, p - q)); when all
 *                           K are accepted a bonus token is drawn from the target's next p.
 * p and q are the target's and the draft's distributions after the SAME processor chain as
 * lq_sampler_sample (repetition penalty over the same context window -> temperature -> top-k
 * -> top-p -> min-p -> softmax), so the text follows exactly the distribution plain sampling
 * with these parameters draws from (the papers' statement, with p and q the processed
 * distributions; llama.cpp's speculative example likewise runs its sampler chain on both).
 * The draws are not the same draws as plain sampling with the same seed: the same
 * distribution, a different random stream.
 *
 * The models are seen through lq_spec_lm (forward n tokens with one row of logits each; forget
 * positions from n_pos on), so the decoder does not depend on how a KV cache is kept:
 * lq_spec_lm_session adapts an lq_session.
 */
#ifndef LQ_SPEC_H
#define LQ_SPEC_H

#include <stdbool.h>
#include <stdint.h>

#include "lq_batch.h"
#include "lq_model.h"
#include "lq_sample.h"
#include "lq_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A language model with a KV cache, as the speculative decoder uses it. */
typedef struct lq_spec_lm lq_spec_lm;
struct lq_spec_lm {
    void *impl;   /* the session, batch, ... */
    int seq;      /* a batch's sequence id (adapters that need one) */
    int n_vocab;  /* width of a logits row */
    int n_ctx;    /* positions the cache holds */
    /* Run tokens[0..n) at positions pos..pos+n-1; the cache holds exactly positions < pos
     * (the decoder truncates first). logits: n rows of n_vocab when all_logits, else the last
     * row only. */
    lq_status (*forward)(const lq_spec_lm *lm, const int32_t *tokens, int n, int pos,
                         float *logits, bool all_logits);
    /* Forget every position >= n_pos (n_pos <= the positions held). */
    lq_status (*truncate)(const lq_spec_lm *lm, int n_pos);
};

/* An lq_session of model m as an lq_spec_lm (borrowed; n_vocab = m's vocab_size). The
 * contiguous cache needs no work to truncate: a forward at pos overwrites rows pos.. */
lq_spec_lm lq_spec_lm_session(lq_session *s, const lq_model *m);

/* Sequence seq of a paged batch (lq_batch.h) as an lq_spec_lm: forward appends to the sequence
 * (pos must be its length), truncate is lq_batch_seq_truncate (the pages return to the pool).
 * Target and draft may be sequences of two batches (one per model). */
lq_spec_lm lq_spec_lm_batch(lq_batch *b, int seq);

typedef struct lq_spec_opts {
    int draft_max;            /* K >= 1: most draft tokens per target forward */
    int max_new;              /* most tokens to generate */
    const int32_t *stop_ids;  /* (n_stop) tokens that end generation; borrowed */
    int n_stop;
    int vocab;                /* choose among ids 0..vocab-1 (<= n_vocab); <= 0: n_vocab */
    /* Also measure, on every position the target judges, sum_x min(p(x), q(x)) of the raw
     * (temperature 1, unprocessed) distributions: Leviathan et al.'s alpha, the probability a
     * sampled draft token would be accepted there. Costs two softmaxes per position. */
    bool measure_alpha;
} lq_spec_opts;

typedef struct lq_spec_result {
    int64_t n_prompt;      /* prompt tokens */
    int64_t n_generated;   /* tokens emitted (a stop token not counted) */
    int64_t n_drafted;     /* draft tokens proposed */
    int64_t n_accepted;    /* of them accepted by the target */
    int64_t n_judged;      /* draft tokens the target judged: accepted + first rejection of each
                            * cycle (the ones after a rejection are discarded unjudged) */
    int64_t n_cycles;      /* target verify forwards after the prompt */
    int64_t n_draft_fwd;   /* draft forwards (prompt catch-up included) */
    double alpha_sum;      /* with measure_alpha: sum over judged positions of sum min(p, q) */
    double prefill_s;      /* the prompt forwards of the target and (max_new > 1) the draft */
    double draft_s, verify_s; /* seconds in draft forwards / target verify forwards */
    double decode_s;       /* from the prefill's end to the last token */
    bool hit_stop;
} lq_spec_result;

/* Generate after `prompt` (n_prompt >= 1, BOS included by the caller) with target t and draft d,
 * both starting from an empty cache. The first token comes from the target's prompt forward;
 * then each cycle the draft proposes min(K, room) tokens, the target runs the last token plus
 * the proposals in one forward, and the caches are truncated to the accepted prefix. `cb` (may
 * be NULL) sees every emitted token (logprob: the target's raw log-softmax; logprob_processed:
 * under the target's processed distribution, 0 for greedy); returning false stops.
 * LQ_ERR_MISMATCH when the vocabularies differ (n_vocab). */
lq_status lq_spec_generate(lq_spec_lm *t, lq_spec_lm *d, const lq_sample_params *sp,
                           const int32_t *prompt, int n_prompt, const lq_spec_opts *opts,
                           lq_sample_token_fn cb, void *user, lq_spec_result *out);

/* The rejection rule for one draft token x drawn from q: accept with probability
 * min(1, p[x]/q[x]) (one uniform from r); true when accepted. Else *resampled is drawn from
 * normalize(max(0, p - q)) (a second uniform; p itself if that has no mass, which exact
 * arithmetic rules out). p, q: n probabilities each (sum 1). */
bool lq_spec_accept(const double *p, const double *q, int64_t n, int32_t x, lq_rng *r,
                    int32_t *resampled);

#ifdef __cplusplus
}
#endif
#endif
