/* lq_batch.h - many sequences decoded at once over a paged KV cache.
 *
 * An lq_batch is a session for B sequences of different lengths: one lq_batch_forward runs the
 * same layer program as lq_forward (model/forward.c) over the rows of every sequence it is given
 * (a decode token, a prefill chunk, several tokens to verify), so every projection is one matmul
 * with n = total rows (the GEMM path) and attention runs per sequence over that sequence's own
 * cache. The cache is paged: fixed pages of page_tokens positions from one pool, a block table
 * per sequence, pages returned when a sequence is closed or truncated, and copy-on-write sharing
 * after lq_batch_seq_fork (a common prompt is stored once; the first write into a shared page
 * copies it). Memory grows with the tokens held, up to max_pages.
 *
 * Results equal decoding each sequence alone with lq_forward up to the rounding of the GEMM
 * path against the GEMV path (the format's tolerance): the arithmetic of every row is the same.
 * CPU only for now: the CUDA table has no paged attention and lq_batch_create refuses it naming
 * the op 'attention_paged'.
 *
 * Not thread-safe: one thread drives a batch (the pool parallelises inside each op).
 */
#ifndef LQ_BATCH_H
#define LQ_BATCH_H

#include "lq_model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lq_batch lq_batch;

typedef struct lq_batch_opts {
    int page_tokens;   /* positions per page; 0 = 16 */
    int64_t max_pages; /* pages the pool may hold; 0 = enough for 4 full contexts */
    int max_rows;      /* token rows one lq_batch_forward may carry; 0 = 512 */
    int n_ctx;         /* longest sequence; 0 = the model's max_seq_len (else 2048) */
} lq_batch_opts;

/* A batch session on the model's device (lq_model_device). pool: borrowed, may be NULL. */
lq_status lq_batch_create(const lq_model *m, const lq_batch_opts *o, lq_pool *pool, lq_batch **out);
void lq_batch_free(lq_batch *b); /* NULL is a no-op; frees every sequence and page */

/* A new empty sequence; its id (>= 0; ids of closed sequences are reused). */
lq_status lq_batch_seq_open(lq_batch *b, int *seq);
/* A new sequence sharing src's whole cache (copy-on-write): beam search, n-best, a common
 * prompt prefilled once for many requests. */
lq_status lq_batch_seq_fork(lq_batch *b, int src, int *seq);
/* Keep positions [0, n_pos) of seq (n_pos <= its length): speculative decoding rolls rejected
 * tokens back with this. Pages past the new length return to the pool. */
lq_status lq_batch_seq_truncate(lq_batch *b, int seq, int n_pos);
/* Close seq and return its pages (shared pages stay with the other holders). Unknown ids are a
 * no-op. */
void lq_batch_seq_close(lq_batch *b, int seq);
/* Positions seq holds; -1 if it is not open. */
int lq_batch_seq_len(const lq_batch *b, int seq);

/* Which logits rows a batch item wants. */
typedef enum lq_batch_logits {
    LQ_BATCH_LOGITS_LAST = 0, /* one row: the item's last token (decode, the end of a prompt) */
    LQ_BATCH_LOGITS_ALL = 1,  /* n rows: every token (verification of a speculated draft) */
    LQ_BATCH_LOGITS_NONE = 2, /* none (a prefill chunk that does not end the prompt) */
} lq_batch_logits;

/* n tokens appended to sequence seq at positions len .. len+n-1. */
typedef struct lq_batch_item {
    int seq;
    const int32_t *tokens;
    int n;
    lq_batch_logits logits;
} lq_batch_item;

/* Run the items (distinct open sequences, together at most max_rows tokens) as one step. logits
 * receives the wanted rows, vocab floats each, in item order (LQ_BATCH_LOGITS_ALL: the item's n
 * rows in position order); NULL when no item wants any. On success each sequence's length grows
 * by its n. On failure (LQ_ERR_NOMEM with "pool exhausted" when the pages run out, a bad item)
 * no sequence changes. */
lq_status lq_batch_forward(lq_batch *b, const lq_batch_item *items, int n_items, float *logits);

/* Memory of the paged cache. */
typedef struct lq_kv_stats {
    int page_tokens;
    size_t page_bytes;       /* one page: page_tokens positions of every layer's K and V, in kv_type */
    int64_t pages_in_use;    /* held by at least one sequence */
    int64_t pages_allocated; /* the pool's high-water mark (freed pages are reused, not returned) */
    int64_t max_pages;
    int64_t tokens_held;     /* sum of the open sequences' lengths (a shared prefix counts per holder) */
    lq_kv_type kv_type;      /* the rows' element type (lq_model_set_kv_cache when the batch was made) */
} lq_kv_stats;
void lq_batch_kv_stats(const lq_batch *b, lq_kv_stats *st);

int lq_batch_n_ctx(const lq_batch *b);
int lq_batch_max_rows(const lq_batch *b);
const lq_model *lq_batch_model(const lq_batch *b);

#ifdef __cplusplus
}
#endif
#endif
