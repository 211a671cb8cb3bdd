/* eval_chunks.h - the scored positions perplexity.c and kld.c walk (internal to lq_eval).
 *
 * Both protocols cut the text into chunks that are forwarded at position 0 and score next-token
 * predictions inside them:
 *   chunked (llama.cpp)   encode the whole text once (BOS when the tokenizer adds one), chunks of
 *                         n_ctx with BOS replacing each chunk's first token, the second half of
 *                         each chunk scored (first = n_ctx / 2), at most o->max_chunks chunks;
 *   per line (llama2.c)   each unit (lq_text_split with o->separator) encoded with BOS when the
 *                         tokenizer has one, cut into pieces of n_ctx, every prediction scored.
 * The walk owns encoding, the chunk loop and the progress reports; the callback runs the model(s). */
#ifndef EVAL_CHUNKS_H
#define EVAL_CHUNKS_H

#include "lq_eval.h"

/* Forward tokens[0..n) at position 0 and score the predictions of tokens[first+1 .. n). */
typedef lq_status (*lq_chunk_fn)(void *user, const int32_t *tokens, int n, int first);

typedef struct lq_chunk_walk {
    int64_t n_tokens; /* tokens encoded */
    int64_t n_chunks; /* chunks handed to the callback */
    double seconds;   /* the chunk loop, after the text was encoded (chunked) or split (per line) */
} lq_chunk_walk;

/* Walk the text as o->per_line says, calling fn on every chunk; stops at its first failure.
 * `what` ("perplexity", "kl-divergence") prefixes the error messages and is passed to
 * o->progress (when set). *w is filled also on failure. */
/* Logits for a chunk of n tokens: *buf grown to at least n x vocab floats (*cap counts them).
 * Sized by the chunks that come, not by n_ctx: per-line scoring runs at the model's whole
 * context (32768 for Gemma 3), whose n_ctx x vocab logits (8.6 G floats) no machine has, while
 * its units are a few hundred tokens. LQ_ERR_NOMEM (naming `what`) when it cannot grow. */
lq_status lq_eval_logits_room(float **buf, size_t *cap, int n, int vocab, const char *what);

lq_status lq_eval_walk_chunks(const lq_tokenizer *tok, const char *text, size_t len, int n_ctx,
                              const lq_ppl_opts *o, const char *what, lq_chunk_fn fn, void *user,
                              lq_chunk_walk *w);

#endif
