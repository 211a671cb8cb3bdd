/* lq_sched.h - continuous batching: requests admitted as others finish, over one lq_batch.
 *
 * Each lq_sched_step is one lq_batch_forward of at most token_budget rows, filled in this order:
 *   1. one decode token for every running request whose prompt is done (max_seqs is at most
 *      the budget, so every running request advances every step: none is starved);
 *   2. the rest of the budget to prompt chunks (prefill), oldest request first, at most
 *      prefill_chunk tokens each: a long prompt is prefilled over several steps, interleaved
 *      with the others' decoding instead of stalling it;
 *   3. new requests, first come first served, while fewer than max_seqs run and the KV pool can
 *      hold the request's whole prompt and max_new tokens (pages are reserved on admission, so a
 *      running request never meets an exhausted pool and nothing is preempted).
 * The chunk that ends a prompt yields the request's first token; every decode step one more.
 * A request finishes after max_new tokens or at its stop token; its sequence and pages are
 * returned at once. Tokens are chosen greedily unless a pick callback is set.
 */
#ifndef LQ_SCHED_H
#define LQ_SCHED_H

#include "lq_batch.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lq_sched lq_sched;

/* Choose the next token of request req from its logits (vocab floats). */
typedef int32_t (*lq_sched_pick_fn)(void *user, int req, const float *logits, int vocab);

typedef struct lq_sched_opts {
    int token_budget;  /* rows per step; 0 = 256 (at most the batch's max_rows) */
    int max_seqs;      /* requests running at once; 0 = 64; at most token_budget */
    int prefill_chunk; /* prompt tokens per request per step; 0 = token_budget */
    const int32_t *stop_ids; /* (n_stop) tokens that end a request (the stop token is emitted) */
    int n_stop;
    lq_sched_pick_fn pick; /* NULL: greedy (argmax, lowest id on ties) */
    void *pick_user;
} lq_sched_opts;

/* A scheduler over b (borrowed; b must outlive it and have no other open sequences while the
 * scheduler runs, so its page reservations are the pool's whole truth). */
lq_status lq_sched_create(lq_batch *b, const lq_sched_opts *o, lq_sched **out);
void lq_sched_free(lq_sched *s); /* NULL is a no-op; closes the sequences it holds */

/* Queue a request: prompt (copied; n_prompt >= 1) and at most max_new >= 1 tokens to generate.
 * LQ_ERR_INVALID_ARG when it could never run: longer than the context, or more pages than the
 * whole pool. *req: its id, 0, 1, 2, ... in submission order. */
lq_status lq_sched_submit(lq_sched *s, const int32_t *prompt, int n_prompt, int max_new, int *req);

/* What a step produced for one request. */
typedef struct lq_sched_event {
    int req;
    int32_t token;
    int index;    /* 0 for the first generated token, then 1, 2, ... */
    bool done;    /* the request finished with this token */
} lq_sched_event;

/* One step (one lq_batch_forward). Writes at most max_seqs events (one per request that got a
 * token) into ev, their number into *n_ev; *rows (may be NULL) gets the rows the step ran.
 * Nothing to do (no running or queued request): LQ_OK with 0 rows. */
lq_status lq_sched_step(lq_sched *s, lq_sched_event *ev, int *n_ev, int *rows);

/* No request queued or running. */
bool lq_sched_idle(const lq_sched *s);
/* Requests queued (not yet admitted) / running. */
int lq_sched_waiting(const lq_sched *s);
int lq_sched_running(const lq_sched *s);

#ifdef __cplusplus
}
#endif
#endif
