/* lq_beam.h - beam search over a model's log-probabilities.
 *
 * Scores: each hypothesis carries the sum of its tokens' log-probabilities (log-softmax of the
 * raw logits, in double, over ids 0..vocab-1; no temperature or penalty) and is ranked by
 *     score = logprob_sum / length^alpha,    length = generated tokens, the stop token included
 * (alpha = length_penalty: 0 ranks by total log-probability, 1 by the per-token mean; > 0 favours
 * longer hypotheses, since log-probabilities are negative).
 *
 * Each step extends every live beam by its 2 * n_beams best tokens, ranks all those candidates
 * by accumulated log-probability (ties: lower beam, then lower id), and walks them best first: a
 * stop token among the top n_beams candidates finishes a hypothesis, other tokens become the
 * next live beams until there are n_beams. Search ends when n_beams hypotheses have finished
 * (HF transformers' early_stopping=True), at max_new tokens, or when the context is full; in
 * the last two cases the live beams join the finished ones. With n_beams = 1 this is greedy
 * decoding, stop token included.
 *
 * KV cache: the beams are sequences of one lq_batch (lq_batch.h). The prompt is prefilled once;
 * a parent's first child takes over its sequence, other children fork it copy-on-write (only the
 * page a child writes into is copied), and every step runs all live beams as one batched
 * forward. CPU models only: lq_batch refuses a device without paged attention, naming the op.
 */
#ifndef LQ_BEAM_H
#define LQ_BEAM_H

#include <stdbool.h>
#include <stdint.h>

#include "lq_model.h"
#include "lq_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lq_beam_opts {
    int n_beams;             /* >= 1 */
    int n_best;              /* hypotheses to return, 1..n_beams (0 = 1) */
    float length_penalty;    /* alpha above; HF's default is 1.0 */
    int max_new;             /* most generated tokens per hypothesis, stop token included; >= 1 */
    const int32_t *stop_ids; /* (n_stop) tokens that finish a hypothesis (EOS, ...); borrowed */
    int n_stop;
    int vocab;               /* choose among ids 0..vocab-1 (<= model vocab); <= 0 = model's */
} lq_beam_opts;

typedef struct lq_beam_hyp {
    int32_t *tokens;     /* (n) generated tokens; the stop token last when finished */
    double *logprobs;    /* (n) each token's log-probability given the prompt and its prefix */
    int n;
    double logprob_sum;
    double score;        /* logprob_sum / n^length_penalty */
    bool finished;       /* ended with a stop token */
} lq_beam_hyp;

typedef struct lq_beam_result {
    lq_beam_hyp *hyps;   /* (n_hyps) best score first; n_hyps = min(n_best, hypotheses found) */
    int n_hyps;
    int64_t n_prompt;
    double prefill_s;    /* seconds of the prompt forward */
    int64_t n_forward;   /* beam tokens run after the prefill (all beams, all steps) */
    double decode_s;     /* seconds of the steps after the prefill */
} lq_beam_result;

/* Beam search from `prompt` (n_prompt >= 1 tokens, BOS included by the caller) at position 0.
 * Creates n_beams sessions of n_prompt + max_new positions (capped at the model's max_seq_len);
 * pool is borrowed (NULL = one thread). On success the caller frees *out with
 * lq_beam_result_free. */
lq_status lq_beam_search(const lq_model *m, lq_pool *pool, const int32_t *prompt, int n_prompt,
                         const lq_beam_opts *opts, lq_beam_result *out);
void lq_beam_result_free(lq_beam_result *r);

#ifdef __cplusplus
}
#endif
#endif
