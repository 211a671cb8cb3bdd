/* backend_cuda.c - the forward pass on a CUDA device (lq_session_create_ex(..., LQ_DEVICE_CUDA)).
 *
 * The same steps as forward.c, each one launch of the CUDA backend (kernels/include/lq_cuda.h)
 * on the session's stream: weights were uploaded once (lq_model_to_device), the KV cache and
 * activations live on the device, and a forward call copies in the token ids and copies out the
 * logits; nothing else crosses the bus. Decode (n <= 8) runs the fused GEMV of each weight
 * format, prefill dequantizes tiles for cuBLAS (lq_cuda_matmul decides).
 *
 * Per-layer head counts and FFN widths come from the weight shapes (rows / head_dim), so
 * structurally pruned models run too; the cache keeps the widest layer's stride.
 *
 * Without CUDA (no LQ_HAVE_CUDA) every entry point fails with LQ_ERR_UNSUPPORTED.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"

#ifdef LQ_HAVE_CUDA

#include "lq_cuda.h"

/* ---- status mapping ------------------------------------------------------------------------ */

static lq_status cuda_status(int rc, const char *what) {
    switch (rc) {
    case LQ_CUDA_OK: return LQ_OK;
    case LQ_CUDA_ERR_NO_DEVICE:
        return lq_fail(LQ_ERR_UNSUPPORTED, "cuda: %s: %s", what, lq_cuda_last_error());
    case LQ_CUDA_ERR_NOMEM: return lq_fail(LQ_ERR_NOMEM, "cuda: %s: %s", what, lq_cuda_last_error());
    case LQ_CUDA_ERR_ARG: return lq_fail(LQ_ERR_UNSUPPORTED, "cuda: %s: %s", what, lq_cuda_last_error());
    default: return lq_fail(LQ_ERR_IO, "cuda: %s: %s", what, lq_cuda_last_error());
    }
}
#define CU_TRY(expr, what) LQ_TRY(cuda_status((expr), (what)))

/* ---- the device model ---------------------------------------------------------------------- */

typedef struct dev_layer {
    float *attn_norm, *ffn_norm;   /* (dim) */
    lq_cuda_weight wq, wk, wv, wo; /* shapes as lq_layer */
    lq_cuda_weight w_gate, w_up, w_down;
} dev_layer;

struct lq_backend_model {
    lq_device device;
    lq_cuda_weight tok_emb;   /* (vocab, dim) */
    lq_cuda_weight output;    /* (vocab, dim); unused when tied */
    int tied;                 /* the head is the embedding: one device copy */
    dev_layer *layers;        /* (n_layers) */
    int n_layers;
    float *final_norm;        /* (dim) */
    float *rope_inv_freq;     /* (head_dim / 2) */
};

lq_device lq_backend_model_device(const lq_backend_model *bm) { return bm->device; }

void lq_backend_model_free(lq_backend_model *bm) {
    if (!bm) return;
    for (int l = 0; bm->layers && l < bm->n_layers; l++) {
        dev_layer *L = &bm->layers[l];
        lq_cuda_free(L->attn_norm);
        lq_cuda_free(L->ffn_norm);
        lq_cuda_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) lq_cuda_weight_free(ws[i]);
    }
    free(bm->layers);
    lq_cuda_weight_free(&bm->tok_emb);
    lq_cuda_weight_free(&bm->output);
    lq_cuda_free(bm->final_norm);
    lq_cuda_free(bm->rope_inv_freq);
    free(bm);
}

static lq_status upload_floats(const float *src, int64_t n, float **dst, const char *what) {
    CU_TRY(lq_cuda_alloc((void **)dst, (size_t)n * sizeof(float)), what);
    lq_cuda_ctx *ctx = NULL;
    CU_TRY(lq_cuda_ctx_create(&ctx), what);
    int rc = lq_cuda_upload(ctx, *dst, src, (size_t)n * sizeof(float));
    if (rc == LQ_CUDA_OK) rc = lq_cuda_sync(ctx);
    lq_cuda_ctx_free(ctx);
    return cuda_status(rc, what);
}

static lq_status upload_weight(const lq_weight *w, lq_cuda_weight *d, int layer, const char *name) {
    int rc = lq_cuda_weight_upload(w, d);
    if (rc == LQ_CUDA_OK) return LQ_OK;
    char what[96];
    snprintf(what, sizeof what, "uploading layer %d %s", layer, name);
    return cuda_status(rc, what);
}

lq_status lq_backend_model_create(const lq_model *m, lq_device d, lq_backend_model **out) {
    *out = NULL;
    if (d != LQ_DEVICE_CUDA) return lq_fail(LQ_ERR_UNSUPPORTED, "device %s has no backend", lq_device_name(d));
    if (lq_cuda_device_count() <= 0)
        return lq_fail(LQ_ERR_UNSUPPORTED, "--device cuda: no CUDA device found (cudaGetDeviceCount)");
    const lq_config *c = &m->cfg;
    lq_backend_model *bm = calloc(1, sizeof *bm);
    if (!bm || !(bm->layers = calloc((size_t)c->n_layers, sizeof *bm->layers))) {
        free(bm);
        return lq_fail(LQ_ERR_NOMEM, "out of memory for a device model");
    }
    bm->device = d;
    bm->n_layers = c->n_layers;
    lq_status st = upload_weight(&m->tok_emb, &bm->tok_emb, -1, "embed_tokens");
    bm->tied = m->output.data == m->tok_emb.data;
    if (st == LQ_OK && !bm->tied) st = upload_weight(&m->output, &bm->output, -1, "lm_head");
    if (st == LQ_OK) st = upload_floats(m->final_norm, c->dim, &bm->final_norm, "final norm");
    if (st == LQ_OK) st = upload_floats(m->rope_inv_freq, c->head_dim / 2, &bm->rope_inv_freq, "rope");
    for (int l = 0; st == LQ_OK && l < c->n_layers; l++) {
        const lq_layer *L = &m->layers[l];
        dev_layer *D = &bm->layers[l];
        st = upload_floats(L->attn_norm, c->dim, &D->attn_norm, "attn norm");
        if (st == LQ_OK) st = upload_floats(L->ffn_norm, c->dim, &D->ffn_norm, "ffn norm");
        const struct { const lq_weight *h; lq_cuda_weight *d; const char *name; } ws[] = {
            {&L->wq, &D->wq, "q_proj"}, {&L->wk, &D->wk, "k_proj"}, {&L->wv, &D->wv, "v_proj"},
            {&L->wo, &D->wo, "o_proj"}, {&L->w_gate, &D->w_gate, "gate_proj"},
            {&L->w_up, &D->w_up, "up_proj"}, {&L->w_down, &D->w_down, "down_proj"},
        };
        for (size_t i = 0; st == LQ_OK && i < sizeof ws / sizeof ws[0]; i++)
            st = upload_weight(ws[i].h, ws[i].d, l, ws[i].name);
    }
    if (st != LQ_OK) {
        lq_backend_model_free(bm);
        return st;
    }
    *out = bm;
    return LQ_OK;
}

/* ---- the device session -------------------------------------------------------------------- */

struct lq_backend_session {
    const lq_model *m;
    const lq_backend_model *bm; /* m->dev */
    lq_cuda_ctx *ctx;
    int n_ctx;
    int64_t kvd_max;            /* cache row stride: the widest layer's kv_dim */
    float *k_cache, *v_cache;   /* (n_layers, n_ctx, kvd_max) device */
    int cap;                    /* batch rows of the buffers below */
    int64_t wide, hidden_max;
    float *x;                   /* (cap, dim) residual stream */
    float *xb;                  /* (cap, max(dim, q_dim)) */
    float *q, *att;             /* (cap, q_dim) */
    float *hb, *hb2;            /* (cap, hidden) */
    int32_t *tokens;            /* (cap) ids of the current call */
    float *logits;              /* (logits_rows, vocab) */
    int logits_rows;
};

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

lq_status lq_backend_session_create(const lq_model *m, int n_ctx, lq_backend_session **out) {
    *out = NULL;
    if (!m->dev)
        return lq_fail(LQ_ERR_INVALID_ARG, "a CUDA session needs the model on the device (lq_model_to_device)");
    const lq_config *c = &m->cfg;
    lq_backend_session *s = calloc(1, sizeof *s);
    if (!s) return lq_fail(LQ_ERR_NOMEM, "out of memory creating a device session");
    s->m = m;
    s->bm = m->dev;
    s->n_ctx = n_ctx;
    int64_t qd_max = (int64_t)c->n_heads * c->head_dim, hid_max = c->hidden_dim;
    s->kvd_max = (int64_t)c->n_kv_heads * c->head_dim;
    for (int l = 0; l < c->n_layers; l++) {
        s->kvd_max = max64(s->kvd_max, m->layers[l].wk.rows);
        qd_max = max64(qd_max, m->layers[l].wq.rows);
        hid_max = max64(hid_max, m->layers[l].w_gate.rows);
    }
    s->wide = max64(qd_max, c->dim);
    s->hidden_max = hid_max;
    const size_t cache = (size_t)c->n_layers * (size_t)n_ctx * (size_t)s->kvd_max * sizeof(float);
    int rc = lq_cuda_ctx_create(&s->ctx);
    if (rc == LQ_CUDA_OK) rc = lq_cuda_alloc((void **)&s->k_cache, cache);
    if (rc == LQ_CUDA_OK) rc = lq_cuda_alloc((void **)&s->v_cache, cache);
    if (rc != LQ_CUDA_OK) {
        lq_status st = cuda_status(rc, "creating a session (KV cache)");
        lq_backend_session_free(s);
        return st;
    }
    *out = s;
    return LQ_OK;
}

static void free_batch(lq_backend_session *s) {
    float *bufs[] = {s->x, s->xb, s->q, s->att, s->hb, s->hb2};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) lq_cuda_free(bufs[i]);
    lq_cuda_free(s->tokens);
    s->x = s->xb = s->q = s->att = s->hb = s->hb2 = NULL;
    s->tokens = NULL;
    s->cap = 0;
}

void lq_backend_session_free(lq_backend_session *s) {
    if (!s) return;
    if (s->ctx) lq_cuda_sync(s->ctx);
    free_batch(s);
    lq_cuda_free(s->logits);
    lq_cuda_free(s->k_cache);
    lq_cuda_free(s->v_cache);
    lq_cuda_ctx_free(s->ctx);
    free(s);
}

static lq_status ensure_batch(lq_backend_session *s, int n, int logits_rows) {
    const lq_config *c = &s->m->cfg;
    if (n > s->cap) {
        lq_cuda_sync(s->ctx);
        free_batch(s);
        const size_t nn = (size_t)n, f = sizeof(float);
        int rc = lq_cuda_alloc((void **)&s->x, nn * (size_t)c->dim * f);
        if (!rc) rc = lq_cuda_alloc((void **)&s->xb, nn * (size_t)s->wide * f);
        if (!rc) rc = lq_cuda_alloc((void **)&s->q, nn * (size_t)s->wide * f);
        if (!rc) rc = lq_cuda_alloc((void **)&s->att, nn * (size_t)s->wide * f);
        if (!rc) rc = lq_cuda_alloc((void **)&s->hb, nn * (size_t)s->hidden_max * f);
        if (!rc) rc = lq_cuda_alloc((void **)&s->hb2, nn * (size_t)s->hidden_max * f);
        if (!rc) rc = lq_cuda_alloc((void **)&s->tokens, nn * sizeof(int32_t));
        if (rc) {
            free_batch(s);
            return cuda_status(rc, "allocating a batch");
        }
        s->cap = n;
    }
    if (logits_rows > s->logits_rows) {
        lq_cuda_sync(s->ctx);
        lq_cuda_free(s->logits);
        s->logits = NULL;
        s->logits_rows = 0;
        CU_TRY(lq_cuda_alloc((void **)&s->logits, (size_t)logits_rows * (size_t)c->vocab_size * sizeof(float)),
               "allocating logits");
        s->logits_rows = logits_rows;
    }
    return LQ_OK;
}

/* Every launch of one forward call; the first failure is returned (the stream then holds
 * nothing that writes outside the session's buffers). */
static int run_layers(lq_backend_session *s, int n, int pos) {
    const lq_model *m = s->m;
    const lq_backend_model *bm = s->bm;
    const lq_config *c = &m->cfg;
    lq_cuda_ctx *ctx = s->ctx;
    const int64_t dim = c->dim, hd = c->head_dim;
    int rc;
    if ((rc = lq_cuda_dequant_rows(ctx, &bm->tok_emb, s->tokens, 0, n, s->x))) return rc;
    for (int l = 0; l < c->n_layers; l++) {
        const dev_layer *L = &bm->layers[l];
        const int n_heads = (int)(L->wq.rows / hd), n_kv = (int)(L->wk.rows / hd);
        const int64_t kvd = L->wk.rows, hidden = L->w_gate.rows;
        float *kc = s->k_cache + (size_t)l * (size_t)s->n_ctx * (size_t)s->kvd_max;
        float *vc = s->v_cache + (size_t)l * (size_t)s->n_ctx * (size_t)s->kvd_max;
        float *krow = kc + (int64_t)pos * kvd, *vrow = vc + (int64_t)pos * kvd;
        if ((rc = lq_cuda_rmsnorm(ctx, s->xb, s->x, L->attn_norm, n, dim, c->norm_eps)) ||
            (rc = lq_cuda_matmul(ctx, &L->wq, s->xb, n, s->q)) ||
            (rc = lq_cuda_matmul(ctx, &L->wk, s->xb, n, krow)) ||
            (rc = lq_cuda_matmul(ctx, &L->wv, s->xb, n, vrow)) ||
            (rc = lq_cuda_rope(ctx, s->q, n, L->wq.rows, n_heads, (int)hd, pos, bm->rope_inv_freq,
                               c->rope_interleaved)) ||
            (rc = lq_cuda_rope(ctx, krow, n, kvd, n_kv, (int)hd, pos, bm->rope_inv_freq,
                               c->rope_interleaved)) ||
            (rc = lq_cuda_attention(ctx, s->att, s->q, kc, vc, n, pos, n_heads, n_kv, (int)hd)) ||
            (rc = lq_cuda_matmul(ctx, &L->wo, s->att, n, s->xb)) ||
            (rc = lq_cuda_add(ctx, s->x, s->xb, (int64_t)n * dim)) ||
            (rc = lq_cuda_rmsnorm(ctx, s->xb, s->x, L->ffn_norm, n, dim, c->norm_eps)) ||
            (rc = lq_cuda_matmul(ctx, &L->w_gate, s->xb, n, s->hb)) ||
            (rc = lq_cuda_matmul(ctx, &L->w_up, s->xb, n, s->hb2)) ||
            (rc = lq_cuda_swiglu(ctx, s->hb, s->hb2, (int64_t)n * hidden)) ||
            (rc = lq_cuda_matmul(ctx, &L->w_down, s->hb, n, s->xb)) ||
            (rc = lq_cuda_add(ctx, s->x, s->xb, (int64_t)n * dim)))
            return rc;
    }
    return LQ_CUDA_OK;
}

lq_status lq_backend_forward(lq_backend_session *s, const int32_t *tokens, int n, int pos,
                             float *logits, bool all_logits, bool has_hook) {
    if (has_hook)
        return lq_fail(LQ_ERR_UNSUPPORTED, "layer hooks run on the CPU device only (session is on cuda)");
    const lq_config *c = &s->m->cfg;
    const lq_backend_model *bm = s->bm;
    const lq_cuda_weight *head = bm->tied ? &bm->tok_emb : &bm->output;
    const int64_t dim = c->dim, vocab = c->vocab_size;
    const int rows = all_logits ? n : 1;
    LQ_TRY(ensure_batch(s, n, rows));
    CU_TRY(lq_cuda_upload(s->ctx, s->tokens, tokens, (size_t)n * sizeof(int32_t)), "uploading tokens");
    CU_TRY(run_layers(s, n, pos), "forward");
    const float *xin = all_logits ? s->x : s->x + (int64_t)(n - 1) * dim;
    CU_TRY(lq_cuda_rmsnorm(s->ctx, s->xb, xin, bm->final_norm, rows, dim, c->norm_eps), "final norm");
    CU_TRY(lq_cuda_matmul(s->ctx, head, s->xb, rows, s->logits), "output head");
    CU_TRY(lq_cuda_download(s->ctx, logits, s->logits, (size_t)rows * (size_t)vocab * sizeof(float)),
           "downloading logits");
    return LQ_OK;
}

lq_status lq_backend_copy_cache(lq_backend_session *dst, const lq_backend_session *src, int n_pos) {
    if (!dst || !src || dst->bm != src->bm)
        return lq_fail(LQ_ERR_INVALID_ARG, "copy_cache: both sessions must be on the same device model");
    const size_t row = (size_t)src->kvd_max * sizeof(float);
    for (int l = 0; l < src->m->cfg.n_layers; l++) {
        const size_t so = (size_t)l * (size_t)src->n_ctx * (size_t)src->kvd_max;
        const size_t doff = (size_t)l * (size_t)dst->n_ctx * (size_t)dst->kvd_max;
        CU_TRY(lq_cuda_copy(dst->ctx, dst->k_cache + doff, src->k_cache + so, (size_t)n_pos * row), "copy_cache");
        CU_TRY(lq_cuda_copy(dst->ctx, dst->v_cache + doff, src->v_cache + so, (size_t)n_pos * row), "copy_cache");
    }
    /* src's stream may still be writing its cache: the copy is ordered on dst's stream only. */
    CU_TRY(lq_cuda_sync(dst->ctx), "copy_cache");
    return LQ_OK;
}

#else /* !LQ_HAVE_CUDA --------------------------------------------------------------------------- */

static lq_status no_cuda(void) {
    return lq_fail(LQ_ERR_UNSUPPORTED,
                   "--device cuda: this build has no CUDA backend (configure with -DQUANT_CUDA=ON where nvcc exists)");
}

lq_status lq_backend_model_create(const lq_model *m, lq_device d, lq_backend_model **out) {
    (void)m; (void)d;
    *out = NULL;
    return no_cuda();
}
void lq_backend_model_free(lq_backend_model *bm) { (void)bm; }
lq_device lq_backend_model_device(const lq_backend_model *bm) { (void)bm; return LQ_DEVICE_CPU; }
lq_status lq_backend_session_create(const lq_model *m, int n_ctx, lq_backend_session **out) {
    (void)m; (void)n_ctx;
    *out = NULL;
    return no_cuda();
}
void lq_backend_session_free(lq_backend_session *bs) { (void)bs; }
lq_status lq_backend_forward(lq_backend_session *bs, const int32_t *tokens, int n, int pos,
                             float *logits, bool all_logits, bool has_hook) {
    (void)bs; (void)tokens; (void)n; (void)pos; (void)logits; (void)all_logits; (void)has_hook;
    return no_cuda();
}
lq_status lq_backend_copy_cache(lq_backend_session *dst, const lq_backend_session *src, int n_pos) {
    (void)dst; (void)src; (void)n_pos;
    return no_cuda();
}

#endif
