/* kv_paged.c - page pool, block tables and copy-on-write of the paged KV cache (kv_paged.h). */
#include <stdlib.h>
#include <string.h>

#include "kv_paged.h"

lq_status lq_kv_pages_init(lq_kv_pages *p, const lq_backend_ops *ops, void *ctx, int n_layers, lq_kv_type type,
                           size_t row_max, int page_tokens, int64_t max_pages) {
    memset(p, 0, sizeof *p);
    if (page_tokens <= 0 || max_pages <= 0 || max_pages > INT32_MAX)
        return lq_fail(LQ_ERR_INVALID_ARG, "kv cache: pages of %d tokens, %lld pages", page_tokens,
                       (long long)max_pages);
    p->ops = ops;
    p->ctx = ctx;
    p->page_tokens = page_tokens;
    p->n_layers = n_layers;
    p->type = type;
    p->row_max = row_max;
    p->page_bytes = 2u * (size_t)n_layers * (size_t)page_tokens * row_max;
    p->max_pages = max_pages;
    return LQ_OK;
}

void lq_kv_pages_release(lq_kv_pages *p) {
    for (int64_t i = 0; i < p->n_pages; i++) p->ops->free(p->ctx, p->page[i]);
    free(p->page);
    free(p->ref);
    free(p->free_ids);
    memset(p, 0, sizeof *p);
}

int64_t lq_kv_k_off(const lq_kv_pages *p, int l) { return (int64_t)l * p->page_tokens * (int64_t)p->row_max; }
int64_t lq_kv_v_off(const lq_kv_pages *p, int l) {
    return (int64_t)(p->n_layers + l) * p->page_tokens * (int64_t)p->row_max;
}

/* A page with ref 1: a freed one, else a new allocation while under the limit. */
static lq_status page_take(lq_kv_pages *p, int32_t *id) {
    if (p->n_free > 0) {
        *id = p->free_ids[--p->n_free];
    } else {
        if (p->n_pages >= p->max_pages)
            return lq_fail(LQ_ERR_NOMEM,
                           "kv cache: pool exhausted: all %lld pages of %d tokens are in use (finish or free a "
                           "sequence, or create the batch with more pages)",
                           (long long)p->max_pages, p->page_tokens);
        /* the arrays grow geometrically; the pages themselves one at a time, as tokens arrive */
        if (p->n_pages == p->cap_pages) {
            size_t cap = p->cap_pages ? 2u * (size_t)p->cap_pages : 16u;
            void **pg = realloc(p->page, cap * sizeof *pg);
            if (pg) p->page = pg;
            int32_t *rf = pg ? realloc(p->ref, cap * sizeof *rf) : NULL;
            if (rf) p->ref = rf;
            int32_t *fr = rf ? realloc(p->free_ids, cap * sizeof *fr) : NULL;
            if (!fr) return lq_fail(LQ_ERR_NOMEM, "kv cache: out of memory for the page table");
            p->free_ids = fr;
            p->cap_pages = (int64_t)cap;
        }
        void *mem = NULL;
        lq_status st = p->ops->alloc(p->ctx, p->page_bytes, &mem);
        if (st != LQ_OK)
            return lq_fail(LQ_ERR_NOMEM, "kv cache: out of memory for page %lld (%zu bytes)",
                           (long long)p->n_pages, p->page_bytes);
        p->page[p->n_pages] = mem;
        *id = (int32_t)p->n_pages++;
    }
    p->ref[*id] = 1;
    p->in_use++;
    return LQ_OK;
}

static void page_unref(lq_kv_pages *p, int32_t id) {
    if (--p->ref[id] == 0) {
        p->free_ids[p->n_free++] = id;
        p->in_use--;
    }
}

static lq_status table_grow(lq_kv_seq *s, int n) {
    if (n <= s->cap_blocks) return LQ_OK;
    int cap = s->cap_blocks ? s->cap_blocks : 8;
    while (cap < n) cap *= 2;
    int32_t *b = realloc(s->blocks, (size_t)cap * sizeof *b);
    if (b) s->blocks = b;
    void **q = b ? realloc(s->ptrs, (size_t)cap * sizeof *q) : NULL;
    if (!q) return lq_fail(LQ_ERR_NOMEM, "kv cache: out of memory for a block table of %d pages", n);
    s->ptrs = q;
    s->cap_blocks = cap;
    return LQ_OK;
}

lq_status lq_kv_seq_reserve(lq_kv_pages *p, lq_kv_seq *s, int new_len) {
    if (new_len <= s->len) return LQ_OK;
    const int pt = p->page_tokens;
    const int first = s->len / pt, last = (new_len - 1) / pt;
    LQ_TRY(table_grow(s, last + 1));
    for (int b = first; b <= last; b++) {
        if (b < s->n_blocks && p->ref[s->blocks[b]] == 1) continue; /* ours alone: write in place */
        int32_t id = -1;
        LQ_TRY(page_take(p, &id));
        if (b < s->n_blocks) { /* shared: copy the positions already in it, then let go of it */
            lq_status st = p->ops->copy(p->ctx, p->page[id], p->page[s->blocks[b]], p->page_bytes);
            if (st != LQ_OK) {
                page_unref(p, id);
                return st;
            }
            page_unref(p, s->blocks[b]);
        } else {
            s->n_blocks = b + 1;
        }
        s->blocks[b] = id;
        s->ptrs[b] = p->page[id];
    }
    return LQ_OK;
}

void lq_kv_seq_trim(lq_kv_pages *p, lq_kv_seq *s) {
    const int keep = (s->len + p->page_tokens - 1) / p->page_tokens;
    while (s->n_blocks > keep) page_unref(p, s->blocks[--s->n_blocks]);
}

lq_status lq_kv_seq_fork(lq_kv_pages *p, lq_kv_seq *dst, const lq_kv_seq *src) {
    LQ_TRY(table_grow(dst, src->n_blocks));
    for (int b = 0; b < src->n_blocks; b++) {
        dst->blocks[b] = src->blocks[b];
        dst->ptrs[b] = src->ptrs[b];
        p->ref[src->blocks[b]]++;
    }
    dst->n_blocks = src->n_blocks;
    dst->len = src->len;
    return LQ_OK;
}

void lq_kv_seq_drop(lq_kv_pages *p, lq_kv_seq *s) {
    for (int b = 0; b < s->n_blocks; b++) page_unref(p, s->blocks[b]);
    free(s->blocks);
    free(s->ptrs);
    memset(s, 0, sizeof *s);
}

/* f32 rows are copied as they are (any table); compact rows go through the table's kv_store op,
 * the one encoder (lq_kv_store_row on the CPU), so a page holds exactly the bytes a contiguous
 * cache of the same type would. */
lq_status lq_kv_seq_store(lq_kv_pages *p, const lq_kv_seq *s, int l, const lq_kv_layer_rows *r, int pos, int n,
                          const float *k, const float *v) {
    const int pt = p->page_tokens;
    const int64_t ko = lq_kv_k_off(p, l), vo = lq_kv_v_off(p, l), kv_dim = (int64_t)r->n_heads * r->head_dim;
    const size_t rb = r->row_bytes;
    for (int t = 0; t < n;) { /* one store per page the rows fall in */
        const int at = pos + t, b = at / pt, row = at % pt;
        const int run = pt - row < n - t ? pt - row : n - t;
        char *kd = (char *)s->ptrs[b] + ko + (size_t)row * rb, *vd = (char *)s->ptrs[b] + vo + (size_t)row * rb;
        const float *ks = k + (int64_t)t * kv_dim, *vs = v + (int64_t)t * kv_dim;
        if (p->type == LQ_KV_F32) {
            LQ_TRY(p->ops->copy(p->ctx, kd, ks, (size_t)run * rb));
            LQ_TRY(p->ops->copy(p->ctx, vd, vs, (size_t)run * rb));
        } else {
            LQ_TRY(p->ops->kv_store(p->ctx, p->type, kd, rb, ks, run, r->n_heads, r->head_dim, r->k_fixed));
            LQ_TRY(p->ops->kv_store(p->ctx, p->type, vd, rb, vs, run, r->n_heads, r->head_dim, r->v_fixed));
        }
        t += run;
    }
    return LQ_OK;
}
