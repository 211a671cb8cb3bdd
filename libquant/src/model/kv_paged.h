/* kv_paged.h - the paged KV cache of lq_batch (internal to model/).
 *
 * One pool of fixed pages; a page holds page_tokens positions of every layer's K and V:
 *   [K layer 0 | K layer 1 | ... | V layer 0 | ... ], each block (page_tokens, kv_dim_max) f32,
 * a layer's rows packed at its own kv_dim (as the contiguous cache packs them). One block id
 * therefore names a position range in every layer, and a sequence's block table is one list.
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
    int64_t kv_dim_max;
    size_t page_floats;        /* 2 * n_layers * page_tokens * kv_dim_max */
    int64_t max_pages;         /* the pool's limit */
    int64_t n_pages;           /* allocated so far (the high-water mark) */
    int64_t cap_pages;         /* entries the three arrays below hold */
    float **page;              /* (n_pages) base pointers */
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
    float **ptrs;              /* (n_blocks) the pages' base pointers (attention reads these) */
} lq_kv_seq;

lq_status lq_kv_pages_init(lq_kv_pages *p, const lq_backend_ops *ops, void *ctx, int n_layers,
                           int64_t kv_dim_max, int page_tokens, int64_t max_pages);
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

/* Floats from a page base to layer l's K rows / V rows. */
int64_t lq_kv_k_off(const lq_kv_pages *p, int l);
int64_t lq_kv_v_off(const lq_kv_pages *p, int l);
/* Write n rows of K and V (each kv_dim floats, table memory) at positions pos .. pos+n-1 of
 * layer l; the pages must be reserved. */
lq_status lq_kv_seq_store(lq_kv_pages *p, const lq_kv_seq *s, int l, int64_t kv_dim, int pos, int n,
                          const float *k, const float *v);

#endif
