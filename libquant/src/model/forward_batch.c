/* forward_batch.c - lq_batch (lq_batch.h): many sequences through the one layer program.
 *
 * A batch is an lq_session without the contiguous cache, whose s->kv points at the page pool.
 * lq_batch_forward concatenates every item's tokens into the session's rows, so forward.c's
 * lq_fwd_layer runs each projection once over all of them; only the attention block differs:
 * RoPE runs per sequence (each has its own positions), the K / V rows go to the sequence's pages
 * (in the session's cache type: f32, or f16 / q8 / fp8 through the kv_store op) and the
 * attention_paged op reads them (lq_fwd_attend_paged below). Pages are reserved before
 * the step (copy-on-write happens there), so a step that fails changes no sequence.
 */
#include <stdlib.h>
#include <string.h>

#include "libquant/lq_batch.h"
#include "session_internal.h"

#define BATCH_PAGE_TOKENS 16
#define BATCH_MAX_ROWS 512
#define BATCH_CONTEXTS 4 /* default pool: this many full contexts */

struct lq_batch {
    lq_session *s;
    lq_kv_pages kv;
    lq_kv_seq *seqs;      /* (n_slots) by id; closed slots have open == 0 */
    int n_slots;
    int max_rows, n_ctx;
    int32_t *ids;         /* (max_rows) host: the step's tokens */
    lq_attn_seq *aseq;    /* (max_rows) host: the step's sequences for attention_paged */
    lq_kv_seq **akv;      /* (max_rows) their block tables */
};

lq_status lq_fwd_attend_paged(lq_session *s, int l, int n, const lq_kv_layer_rows *r) {
    const lq_model *m = s->m;
    const lq_config *c = &m->cfg;
    const lq_layer *L = &m->layers[l];
    const lq_backend_ops *o = s->ops;
    const int hd = c->head_dim;
    const int64_t qd = (int64_t)L->n_heads * hd, kvd = (int64_t)L->n_kv_heads * hd;
    const float *inv_freq = s->bm->rope[L->rope];
    for (int i = 0; i < s->n_pseq; i++) {
        const lq_attn_seq *a = &s->pseq[i];
        float *q = s->q + (int64_t)a->row0 * qd, *k = s->kb + (int64_t)a->row0 * kvd;
        LQ_TRY(o->rope(s->ctx, q, a->n_tok, qd, L->n_heads, hd, a->pos0, inv_freq, c->rope_interleaved));
        LQ_TRY(o->rope(s->ctx, k, a->n_tok, kvd, L->n_kv_heads, hd, a->pos0, inv_freq, c->rope_interleaved));
        LQ_TRY(lq_kv_seq_store(s->kv, s->pkv[i], l, r, a->pos0, a->n_tok, k, s->vb + (int64_t)a->row0 * kvd));
    }
    lq_attn_paged_args a = {.out = s->att, .q = s->q, .seqs = s->pseq, .n_seqs = s->n_pseq, .n_rows = n,
                            .k_off = lq_kv_k_off(s->kv, l), .v_off = lq_kv_v_off(s->kv, l),
                            .page_tokens = s->kv->page_tokens, .n_heads = L->n_heads,
                            .n_kv_heads = L->n_kv_heads, .head_dim = hd, .window = L->window,
                            .scale = m->attn_scale, .kv = s->kv->type, .kv_row_bytes = r->row_bytes,
                            .k_fixed = r->k_fixed, .v_fixed = r->v_fixed};
    return o->attention_paged(s->ctx, &a);
}

lq_status lq_batch_create(const lq_model *m, const lq_batch_opts *o, lq_pool *pool, lq_batch **out) {
    *out = NULL;
    const lq_batch_opts def = {0};
    if (!o) o = &def;
    const lq_config *c = lq_model_config(m);
    const lq_backend_model *bm = lq_model_device(m) == LQ_DEVICE_CPU ? m->cpu : m->dev;
    if (!bm->ops->supports(LQ_OP_ATTENTION_PAGED) || !bm->ops->attention_paged)
        return lq_fail(LQ_ERR_UNSUPPORTED, "batch: the %s backend has no op '%s' (batched decoding runs on the CPU)",
                       bm->ops->name, lq_op_name(LQ_OP_ATTENTION_PAGED));
    const int pt = o->page_tokens > 0 ? o->page_tokens : BATCH_PAGE_TOKENS;
    const int n_ctx = o->n_ctx > 0 ? o->n_ctx : c->max_seq_len > 0 ? c->max_seq_len : 2048;
    const int max_rows = o->max_rows > 0 ? o->max_rows : BATCH_MAX_ROWS;
    const int64_t max_pages = o->max_pages > 0 ? o->max_pages : (int64_t)BATCH_CONTEXTS * ((n_ctx + pt - 1) / pt);
    lq_batch *b = calloc(1, sizeof *b);
    if (!b) return lq_fail(LQ_ERR_NOMEM, "batch: out of memory");
    b->max_rows = max_rows;
    b->n_ctx = n_ctx;
    b->ids = malloc((size_t)max_rows * sizeof *b->ids);
    b->aseq = malloc((size_t)max_rows * sizeof *b->aseq);
    b->akv = malloc((size_t)max_rows * sizeof *b->akv);
    lq_status st = b->ids && b->aseq && b->akv ? LQ_OK : lq_fail(LQ_ERR_NOMEM, "batch: out of memory");
    if (st == LQ_OK) st = lq_session_open(m, n_ctx, pool, lq_model_device(m), false, &b->s);
    if (st == LQ_OK)
        st = lq_kv_pages_init(&b->kv, b->s->ops, b->s->ctx, c->n_layers, b->s->kv_type, b->s->kv_row_max, pt,
                              max_pages);
    if (st != LQ_OK) {
        lq_batch_free(b);
        return st;
    }
    b->s->kv = &b->kv;
    *out = b;
    return LQ_OK;
}

void lq_batch_free(lq_batch *b) {
    if (!b) return;
    for (int i = 0; i < b->n_slots; i++)
        if (b->seqs[i].open) lq_kv_seq_drop(&b->kv, &b->seqs[i]);
    free(b->seqs);
    if (b->kv.ops) lq_kv_pages_release(&b->kv);
    lq_session_free(b->s);
    free(b->ids);
    free(b->aseq);
    free(b->akv);
    free(b);
}

int lq_batch_n_ctx(const lq_batch *b) { return b->n_ctx; }
int lq_batch_max_rows(const lq_batch *b) { return b->max_rows; }
const lq_model *lq_batch_model(const lq_batch *b) { return b->s->m; }

static lq_kv_seq *seq_get(const lq_batch *b, int seq) {
    return seq >= 0 && seq < b->n_slots && b->seqs[seq].open ? &b->seqs[seq] : NULL;
}

lq_status lq_batch_seq_open(lq_batch *b, int *seq) {
    *seq = -1;
    int id = 0;
    while (id < b->n_slots && b->seqs[id].open) id++;
    if (id == b->n_slots) {
        int cap = b->n_slots ? 2 * b->n_slots : 16;
        lq_kv_seq *q = realloc(b->seqs, (size_t)cap * sizeof *q);
        if (!q) return lq_fail(LQ_ERR_NOMEM, "batch: out of memory for %d sequences", cap);
        memset(q + b->n_slots, 0, (size_t)(cap - b->n_slots) * sizeof *q);
        b->seqs = q;
        b->n_slots = cap;
    }
    b->seqs[id].open = 1;
    *seq = id;
    return LQ_OK;
}

lq_status lq_batch_seq_fork(lq_batch *b, int src, int *seq) {
    *seq = -1;
    if (!seq_get(b, src)) return lq_fail(LQ_ERR_INVALID_ARG, "batch: fork of sequence %d, which is not open", src);
    int id;
    LQ_TRY(lq_batch_seq_open(b, &id)); /* may move b->seqs: look src up again after */
    lq_status st = lq_kv_seq_fork(&b->kv, &b->seqs[id], &b->seqs[src]);
    if (st != LQ_OK) {
        lq_kv_seq_drop(&b->kv, &b->seqs[id]);
        return st;
    }
    *seq = id;
    return LQ_OK;
}

lq_status lq_batch_seq_truncate(lq_batch *b, int seq, int n_pos) {
    lq_kv_seq *q = seq_get(b, seq);
    if (!q || n_pos < 0 || n_pos > q->len)
        return lq_fail(LQ_ERR_INVALID_ARG, "batch: truncate sequence %d (length %d) to %d positions", seq,
                       q ? q->len : -1, n_pos);
    q->len = n_pos;
    lq_kv_seq_trim(&b->kv, q);
    return LQ_OK;
}

void lq_batch_seq_close(lq_batch *b, int seq) {
    lq_kv_seq *q = seq_get(b, seq);
    if (q) lq_kv_seq_drop(&b->kv, q);
}

int lq_batch_seq_len(const lq_batch *b, int seq) {
    const lq_kv_seq *q = seq_get(b, seq);
    return q ? q->len : -1;
}

void lq_batch_kv_stats(const lq_batch *b, lq_kv_stats *st) {
    memset(st, 0, sizeof *st);
    st->page_tokens = b->kv.page_tokens;
    st->kv_type = b->kv.type;
    st->page_bytes = b->kv.page_bytes;
    st->pages_in_use = b->kv.in_use;
    st->pages_allocated = b->kv.n_pages;
    st->max_pages = b->kv.max_pages;
    for (int i = 0; i < b->n_slots; i++)
        if (b->seqs[i].open) st->tokens_held += b->seqs[i].len;
}

/* Every item names a distinct open sequence, with tokens in range, inside the context. */
static lq_status check_items(const lq_batch *b, const lq_batch_item *items, int n_items, int *rows, int *lrows) {
    const int vocab = b->s->m->cfg.vocab_size;
    *rows = *lrows = 0;
    if (n_items <= 0) return lq_fail(LQ_ERR_INVALID_ARG, "batch: a step of %d items", n_items);
    for (int i = 0; i < n_items; i++) {
        const lq_batch_item *it = &items[i];
        const lq_kv_seq *q = seq_get(b, it->seq);
        if (!q) return lq_fail(LQ_ERR_INVALID_ARG, "batch: item %d: sequence %d is not open", i, it->seq);
        if (it->n <= 0 || !it->tokens)
            return lq_fail(LQ_ERR_INVALID_ARG, "batch: item %d: %d tokens", i, it->n);
        if ((int64_t)q->len + it->n > b->n_ctx)
            return lq_fail(LQ_ERR_INVALID_ARG, "batch: sequence %d: positions %d..%d exceed the context of %d",
                           it->seq, q->len, q->len + it->n - 1, b->n_ctx);
        for (int j = 0; j < i; j++)
            if (items[j].seq == it->seq)
                return lq_fail(LQ_ERR_INVALID_ARG, "batch: sequence %d appears twice in one step", it->seq);
        for (int t = 0; t < it->n; t++)
            if (it->tokens[t] < 0 || it->tokens[t] >= vocab)
                return lq_fail(LQ_ERR_INVALID_ARG, "batch: sequence %d: token id %d out of range [0, %d)", it->seq,
                               it->tokens[t], vocab);
        *rows += it->n;
        *lrows += it->logits == LQ_BATCH_LOGITS_ALL ? it->n : it->logits == LQ_BATCH_LOGITS_LAST ? 1 : 0;
        if (*rows > b->max_rows)
            return lq_fail(LQ_ERR_INVALID_ARG, "batch: a step of more than %d token rows (max_rows)", b->max_rows);
    }
    return LQ_OK;
}

/* Final norm of the rows that want logits, packed, then one head matmul over them. */
static lq_status batch_head(lq_batch *b, const lq_batch_item *items, int n_items, int lrows, float *logits) {
    lq_session *s = b->s;
    const lq_backend_ops *o = s->ops;
    const int64_t dim = s->m->cfg.dim;
    int row = 0, j = 0;
    for (int i = 0; i < n_items; i++) {
        const lq_batch_item *it = &items[i];
        const int first = it->logits == LQ_BATCH_LOGITS_ALL ? row : row + it->n - 1;
        const int cnt = it->logits == LQ_BATCH_LOGITS_ALL ? it->n : it->logits == LQ_BATCH_LOGITS_LAST ? 1 : 0;
        if (cnt)
            LQ_TRY(o->rmsnorm(s->ctx, s->xb + (int64_t)j * dim, s->x + (int64_t)first * dim, s->bm->final_norm, cnt,
                              dim, s->m->cfg.norm_eps));
        j += cnt;
        row += it->n;
    }
    float *dst = o->host_memory ? logits : s->logits;
    LQ_TRY(o->matmul(s->ctx, s->bm->output, s->xb, lrows, dst));
    if (!o->host_memory)
        LQ_TRY(o->download(s->ctx, logits, s->logits, (size_t)lrows * (size_t)s->m->cfg.vocab_size * sizeof(float)));
    return LQ_OK;
}

static lq_status batch_run(lq_batch *b, const lq_batch_item *items, int n_items, int rows, int lrows,
                           float *logits) {
    lq_session *s = b->s;
    const lq_model *m = s->m;
    for (int i = 0, row = 0; i < n_items; i++) {
        lq_kv_seq *q = seq_get(b, items[i].seq);
        LQ_TRY(lq_kv_seq_reserve(&b->kv, q, q->len + items[i].n));
        memcpy(b->ids + row, items[i].tokens, (size_t)items[i].n * sizeof *b->ids);
        row += items[i].n;
    }
    for (int i = 0, row = 0; i < n_items; i++) { /* after every reserve: tables may have moved */
        lq_kv_seq *q = seq_get(b, items[i].seq);
        b->aseq[i] = (lq_attn_seq){.row0 = row, .n_tok = items[i].n, .pos0 = q->len, .pages = q->ptrs};
        b->akv[i] = q;
        row += items[i].n;
    }
    s->pseq = b->aseq;
    s->pkv = b->akv;
    s->n_pseq = n_items;
    LQ_TRY(lq_session_ensure_batch(s, rows, lrows > 0 ? lrows : 1));
    LQ_TRY(s->ops->upload(s->ctx, s->ids, b->ids, (size_t)rows * sizeof(int32_t)));
    LQ_TRY(s->ops->embed(s->ctx, s->bm->tok_emb, s->ids, rows, s->x));
    if (m->arch->features & LQ_AF_EMBED_SCALE)
        LQ_TRY(s->ops->scale(s->ctx, s->x, m->embed_scale, (int64_t)rows * m->cfg.dim));
    for (int l = 0; l < m->cfg.n_layers; l++) LQ_TRY(lq_fwd_layer(s, l, rows, 0));
    if (lrows > 0) LQ_TRY(batch_head(b, items, n_items, lrows, logits));
    return s->ops->sync(s->ctx);
}

lq_status lq_batch_forward(lq_batch *b, const lq_batch_item *items, int n_items, float *logits) {
    int rows, lrows;
    LQ_TRY(check_items(b, items, n_items, &rows, &lrows));
    if (lrows > 0 && !logits) return lq_fail(LQ_ERR_INVALID_ARG, "batch: %d logits rows wanted, no buffer", lrows);
    lq_status st = batch_run(b, items, n_items, rows, lrows, logits);
    b->s->n_pseq = 0;
    for (int i = 0; i < n_items; i++) {
        lq_kv_seq *q = seq_get(b, items[i].seq);
        if (st == LQ_OK) q->len += items[i].n;
        else lq_kv_seq_trim(&b->kv, q); /* pages reserved for the failed step go back */
    }
    return st;
}
