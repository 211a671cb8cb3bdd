/* kv_paged.h - the paged KV cache of lq_batch (internal to model/).
 *
 * One pool of fixed pages; a page holds page_tokens positions of every layer's K and V:
 *   [K layer 0 | K layer 1 | ... | V layer 0 | ... ], each block page_tokens rows of row_max bytes,
 * a layer's rows packed at its own row size (as the contiguous cache packs them). Rows are the
 * session's cache type (lq_kv.h): f32, or f16 / q8 / fp8 encoded by the table's kv_store op, so
 * a q8 page of 64-value heads is 0.27 of an f32 one (64 codes + a 4-byte scale per 256 bytes) and
 * the pool holds 3.8x the tokens. One block id therefore names a position range in every layer,
 * and a sequence's block table is one list.
 * Pages are allocated from the backend table on first use (memory grows with the tokens held,
 * up to max_pages), kept on a free list when a sequence lets go of them, and reference counted:
 * a forked sequence shares its parent's pages, and the first write into a shared page copies it
 * (copy-on-write), so a common prompt is stored once.
 */
#ifndef LQ_KV_PAGED_H
#define LQ_KV_PAGED_H

#include "backend.h"

typedef struct lq_kv_pages {
    const lq_backend_ops *ops; /* the table whose memory the pages are */
    void *ctx;
    int page_tokens;
    int n_layers;
    lq_kv_type type;           /* element type of every row */
    size_t row_max;            /* bytes of the widest layer's row (lq_kv_row_bytes) */
    size_t page_bytes;         /* 2 * n_layers * page_tokens * row_max */
    int64_t max_pages;         /* the pool's limit */
    int64_t n_pages;           /* allocated so far (the high-water mark) */
    int64_t cap_pages;         /* entries the three arrays below hold */
    void **page;               /* (n_pages) base pointers */
    int32_t *ref;              /* (n_pages) sequences holding each page; 0 = free */
    int32_t *free_ids;         /* (n_free) pages with ref 0, ready for reuse */
    int64_t n_free;
    int64_t in_use;            /* pages with ref > 0 */
} lq_kv_pages;

/* A sequence: its length and its block table (page ids and their base pointers, in order). */
typedef struct lq_kv_seq {
    int open;
    int len;                   /* positions 0 .. len-1 are in the cache */
    int n_blocks, cap_blocks;
    int32_t *blocks;           /* (n_blocks) page ids */
    void **ptrs;               /* (n_blocks) the pages' base pointers (attention reads these) */
} lq_kv_seq;

/* A pool of rows of `type`, row_max bytes per row of the widest layer (an f32 pool: kv_dim_max * 4;
 * a compact type other than f32 needs the table's kv_store op, which the caller checks). */
lq_status lq_kv_pages_init(lq_kv_pages *p, const lq_backend_ops *ops, void *ctx, int n_layers, lq_kv_type type,
                           size_t row_max, int page_tokens, int64_t max_pages);
void lq_kv_pages_release(lq_kv_pages *p);

/* Make positions [s->len, new_len) writable: missing pages are taken from the pool, shared ones
 * copied (copy-on-write). LQ_ERR_NOMEM naming the pool's limit when it has no page left. */
lq_status lq_kv_seq_reserve(lq_kv_pages *p, lq_kv_seq *s, int new_len);
/* Give back the pages past ceil(s->len / page_tokens) (after truncation or a failed step). */
void lq_kv_seq_trim(lq_kv_pages *p, lq_kv_seq *s);
/* dst (empty, open) shares src's pages and length. */
lq_status lq_kv_seq_fork(lq_kv_pages *p, lq_kv_seq *dst, const lq_kv_seq *src);
/* Drop every page and the table; the slot is closed. */
void lq_kv_seq_drop(lq_kv_pages *p, lq_kv_seq *s);

/* Bytes from a page base to layer l's K rows / V rows. */
int64_t lq_kv_k_off(const lq_kv_pages *p, int l);
int64_t lq_kv_v_off(const lq_kv_pages *p, int l);

/* One layer's rows in the pool: bytes per row (lq_kv_row_bytes of its kv heads), its shape and
 * the static per-head scales of K and V (q8 / fp8 with a kv_cache_scheme; NULL: per row). */
typedef struct lq_kv_layer_rows {
    size_t row_bytes;
    int n_heads, head_dim;
    const float *k_fixed, *v_fixed;
} lq_kv_layer_rows;

/* Write n rows of K and V (each n_heads * head_dim f32, packed, table memory) at positions
 * pos .. pos+n-1 of layer l, encoded as the pool's type; the pages must be reserved. */
lq_status lq_kv_seq_store(lq_kv_pages *p, const lq_kv_seq *s, int l, const lq_kv_layer_rows *r, int pos, int n,
                          const float *k, const float *v);

#endif
