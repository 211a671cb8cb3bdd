/* forward.c - the Llama-family forward pass over an lq_model, with a KV cache (lq_session).
 *
 * Weights are read through lq_matmul, which dispatches on the weight format's traits row; this
 * file never looks at a format. Activations and the KV cache are f32.
 */
#include "libquant/lq_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "lq_ops.h"

#define ATTN_MIN_PARALLEL_MACS (64 * 1024)

struct lq_session {
    const lq_model *m;
    lq_pool *pool;        /* borrowed */
    int n_ctx;
    int n_threads;
    float *k_cache;       /* (n_layers, n_ctx, kv_dim) */
    float *v_cache;       /* (n_layers, n_ctx, kv_dim) */
    float *att_scratch;   /* (n_threads, n_ctx) attention scores, one row per thread */
    int cap;              /* batch rows the buffers below hold */
    float *x;             /* (cap, dim) residual stream */
    float *xb;            /* (cap, max(dim, q_dim)) normed input / projection output */
    float *q;             /* (cap, q_dim) */
    float *att;           /* (cap, q_dim) attention output */
    float *hb, *hb2;      /* (cap, hidden_dim) gate / up */
    lq_layer_hook hook;   /* optional observer of the residual stream */
    void *hook_user;
    lq_backend_session *dev; /* device session (KV cache on the GPU), or NULL: CPU */
};

static int64_t q_dim_of(const lq_config *c) { return (int64_t)c->n_heads * c->head_dim; }
static int64_t kv_dim_of(const lq_config *c) { return (int64_t)c->n_kv_heads * c->head_dim; }

static lq_status session_create_cpu(const lq_model *m, int n_ctx, lq_pool *pool, lq_session **out) {
    *out = NULL;
    const lq_config *c = &m->cfg;
    if (n_ctx <= 0) n_ctx = c->max_seq_len > 0 ? c->max_seq_len : 2048;
    lq_session *s = calloc(1, sizeof *s);
    if (!s) return lq_fail(LQ_ERR_NOMEM, "out of memory creating a session");
    s->m = m;
    s->pool = pool;
    s->n_ctx = n_ctx;
    s->n_threads = lq_pool_size(pool);
    size_t cache = (size_t)c->n_layers * (size_t)n_ctx * (size_t)kv_dim_of(c);
    s->k_cache = calloc(cache, sizeof(float));
    s->v_cache = calloc(cache, sizeof(float));
    s->att_scratch = malloc((size_t)s->n_threads * (size_t)n_ctx * sizeof(float));
    if (!s->k_cache || !s->v_cache || !s->att_scratch) {
        lq_session_free(s);
        return lq_fail(LQ_ERR_NOMEM, "out of memory for a KV cache of %d positions", n_ctx);
    }
    *out = s;
    return LQ_OK;
}

lq_status lq_session_create(const lq_model *m, int n_ctx, lq_pool *pool, lq_session **out) {
    return lq_session_create_ex(m, n_ctx, pool, lq_model_device(m), out);
}

/* A device session: only the shape fields here; its cache and buffers live in s->dev. */
lq_status lq_session_create_ex(const lq_model *m, int n_ctx, lq_pool *pool, lq_device device,
                               lq_session **out) {
    if (device == LQ_DEVICE_CPU) return session_create_cpu(m, n_ctx, pool, out);
    *out = NULL;
    if (lq_model_device(m) != device)
        return lq_fail(LQ_ERR_INVALID_ARG, "session on %s: move the model there first (lq_model_to_device)",
                       lq_device_name(device));
    if (n_ctx <= 0) n_ctx = m->cfg.max_seq_len > 0 ? m->cfg.max_seq_len : 2048;
    lq_session *s = calloc(1, sizeof *s);
    if (!s) return lq_fail(LQ_ERR_NOMEM, "out of memory creating a session");
    s->m = m;
    s->pool = pool;
    s->n_ctx = n_ctx;
    s->n_threads = lq_pool_size(pool);
    lq_status st = lq_backend_session_create(m, n_ctx, &s->dev);
    if (st != LQ_OK) {
        free(s);
        return st;
    }
    *out = s;
    return LQ_OK;
}

lq_device lq_session_device(const lq_session *s) {
    return s->dev ? lq_model_device(s->m) : LQ_DEVICE_CPU;
}

static void free_batch(lq_session *s) {
    free(s->x); free(s->xb); free(s->q); free(s->att); free(s->hb); free(s->hb2);
    s->x = s->xb = s->q = s->att = s->hb = s->hb2 = NULL;
    s->cap = 0;
}

void lq_session_free(lq_session *s) {
    if (!s) return;
    lq_backend_session_free(s->dev);
    free_batch(s);
    free(s->k_cache);
    free(s->v_cache);
    free(s->att_scratch);
    free(s);
}

int lq_session_n_ctx(const lq_session *s) { return s->n_ctx; }

/* Grow the batch buffers to hold n rows (prefill sizes them once; decode reuses them). */
static lq_status ensure_batch(lq_session *s, int n) {
    if (n <= s->cap) return LQ_OK;
    const lq_config *c = &s->m->cfg;
    free_batch(s);
    size_t nn = (size_t)n;
    size_t wide = (size_t)(q_dim_of(c) > c->dim ? q_dim_of(c) : c->dim);
    s->x = malloc(nn * c->dim * sizeof(float));
    s->xb = malloc(nn * wide * sizeof(float));
    s->q = malloc(nn * q_dim_of(c) * sizeof(float));
    s->att = malloc(nn * q_dim_of(c) * sizeof(float));
    s->hb = malloc(nn * c->hidden_dim * sizeof(float));
    s->hb2 = malloc(nn * c->hidden_dim * sizeof(float));
    if (!s->x || !s->xb || !s->q || !s->att || !s->hb || !s->hb2) {
        free_batch(s);
        return lq_fail(LQ_ERR_NOMEM, "out of memory for a batch of %d tokens", n);
    }
    s->cap = n;
    return LQ_OK;
}

/* ---- attention ---------------------------------------------------------------------------- */

typedef struct {
    lq_session *s;
    const float *kc, *vc; /* this layer's cache, (n_ctx, kv_dim) */
    int pos;              /* position of batch row 0 */
    int n_heads, n_kv_heads; /* this layer's (structured pruning may shrink a layer) */
} attn_job;

/* One (token, head) pair: causal softmax attention over positions 0..pos+t. */
static void attn_task(void *ctx, int64_t task, int tid) {
    const attn_job *j = ctx;
    lq_session *s = j->s;
    const lq_config *c = &s->m->cfg;
    int hd = c->head_dim;
    int64_t kv_dim = (int64_t)j->n_kv_heads * hd, q_dim = (int64_t)j->n_heads * hd;
    int t = (int)(task / j->n_heads), h = (int)(task % j->n_heads);
    int kvh = h / (j->n_heads / j->n_kv_heads); /* grouped-query: heads share a kv head */
    int p = j->pos + t;
    const float *q = s->q + (int64_t)t * q_dim + (int64_t)h * hd;
    float *sc = s->att_scratch + (size_t)tid * s->n_ctx;
    float scale = 1.0f / sqrtf((float)hd);
    for (int i = 0; i <= p; i++)
        sc[i] = lq_dot_f32(q, j->kc + (int64_t)i * kv_dim + (int64_t)kvh * hd, hd) * scale;
    lq_softmax(sc, p + 1);
    float *o = s->att + (int64_t)t * q_dim + (int64_t)h * hd;
    memset(o, 0, (size_t)hd * sizeof(float));
    for (int i = 0; i <= p; i++)
        lq_axpy_f32(o, sc[i], j->vc + (int64_t)i * kv_dim + (int64_t)kvh * hd, hd);
}

/* ---- forward ------------------------------------------------------------------------------ */

static void add_rows(float *x, const float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] += y[i];
}

lq_status lq_forward(lq_session *s, const int32_t *tokens, int n, int pos, float *logits,
                     bool all_logits) {
    const lq_model *m = s->m;
    const lq_config *c = &m->cfg;
    if (n <= 0 || pos < 0 || (int64_t)pos + n > s->n_ctx)
        return lq_fail(LQ_ERR_INVALID_ARG, "forward: positions %d..%d exceed the context of %d",
                       pos, pos + n - 1, s->n_ctx);
    for (int t = 0; t < n; t++)
        if (tokens[t] < 0 || tokens[t] >= c->vocab_size)
            return lq_fail(LQ_ERR_INVALID_ARG, "forward: token id %d out of range [0, %d)",
                           tokens[t], c->vocab_size);
    if (s->dev) return lq_backend_forward(s->dev, tokens, n, pos, logits, all_logits, s->hook != NULL);
    LQ_TRY(ensure_batch(s, n));

    const int64_t dim = c->dim, hd = c->head_dim;
    /* The cache keeps a stride of the largest kv_dim per layer; rows inside a layer are packed
     * at that layer's own kv_dim. */
    const int64_t kvd_max = kv_dim_of(c);
    const lq_wfmt_traits *emb = lq_wfmt_get(m->tok_emb.fmt);
    for (int t = 0; t < n; t++) emb->dequant(&m->tok_emb, tokens[t], tokens[t] + 1, s->x + t * dim);

    for (int l = 0; l < c->n_layers; l++) {
        const lq_layer *L = &m->layers[l];
        const int n_heads = lq_config_layer_heads(c, l), n_kv_heads = lq_config_layer_kv_heads(c, l);
        const int64_t qd = (int64_t)n_heads * hd, kvd = (int64_t)n_kv_heads * hd;
        const int64_t hidden = lq_config_layer_hidden(c, l);
        float *kc = s->k_cache + (size_t)l * s->n_ctx * kvd_max;
        float *vc = s->v_cache + (size_t)l * s->n_ctx * kvd_max;

        /* attention block: k and v are written straight into the cache rows pos..pos+n-1 */
        for (int t = 0; t < n; t++) lq_rmsnorm(s->xb + t * dim, s->x + t * dim, L->attn_norm, dim, c->norm_eps);
        lq_matmul(s->pool, &L->wq, s->xb, n, s->q);
        lq_matmul(s->pool, &L->wk, s->xb, n, kc + (int64_t)pos * kvd);
        lq_matmul(s->pool, &L->wv, s->xb, n, vc + (int64_t)pos * kvd);
        for (int t = 0; t < n; t++) {
            for (int h = 0; h < n_heads; h++)
                lq_rope_ref(s->q + t * qd + h * hd, (int)hd, pos + t, m->rope_inv_freq, c->rope_interleaved);
            for (int h = 0; h < n_kv_heads; h++)
                lq_rope_ref(kc + (int64_t)(pos + t) * kvd + h * hd, (int)hd, pos + t, m->rope_inv_freq,
                            c->rope_interleaved);
        }
        attn_job job = {.s = s, .kc = kc, .vc = vc, .pos = pos, .n_heads = n_heads, .n_kv_heads = n_kv_heads};
        /* Attention of a short context in a small model is a few microseconds: not worth a
         * thread wake-up. Each thread owns one row of att_scratch, indexed by tid. */
        int64_t attn_macs = (int64_t)n * n_heads * (pos + n) * hd * 2;
        lq_pool_run(attn_macs < ATTN_MIN_PARALLEL_MACS ? NULL : s->pool, attn_task, &job,
                    (int64_t)n * n_heads);
        lq_matmul(s->pool, &L->wo, s->att, n, s->xb);
        add_rows(s->x, s->xb, n * dim);

        /* feed-forward block (SwiGLU) */
        for (int t = 0; t < n; t++) lq_rmsnorm(s->xb + t * dim, s->x + t * dim, L->ffn_norm, dim, c->norm_eps);
        lq_matmul(s->pool, &L->w_gate, s->xb, n, s->hb);
        lq_matmul(s->pool, &L->w_up, s->xb, n, s->hb2);
        lq_swiglu(s->hb, s->hb2, n * hidden);
        lq_matmul(s->pool, &L->w_down, s->hb, n, s->xb);
        add_rows(s->x, s->xb, n * dim);
        if (s->hook) s->hook(s->hook_user, l, s->x, n, pos);
    }

    if (all_logits) {
        for (int t = 0; t < n; t++) lq_rmsnorm(s->xb + t * dim, s->x + t * dim, m->final_norm, dim, c->norm_eps);
        if (s->hook) s->hook(s->hook_user, c->n_layers, s->xb, n, pos);
        lq_matmul(s->pool, &m->output, s->xb, n, logits);
    } else {
        if (s->hook)
            for (int t = 0; t < n; t++) lq_rmsnorm(s->xb + t * dim, s->x + t * dim, m->final_norm, dim, c->norm_eps);
        else
            lq_rmsnorm(s->xb + (int64_t)(n - 1) * dim, s->x + (int64_t)(n - 1) * dim, m->final_norm, dim, c->norm_eps);
        if (s->hook) s->hook(s->hook_user, c->n_layers, s->xb, n, pos);
        lq_matmul(s->pool, &m->output, s->xb + (int64_t)(n - 1) * dim, 1, logits);
    }
    return LQ_OK;
}

void lq_session_set_layer_hook(lq_session *s, lq_layer_hook fn, void *user) {
    s->hook = fn;
    s->hook_user = user;
}

lq_status lq_session_copy_cache(lq_session *dst, const lq_session *src, int n_pos) {
    if (dst->m != src->m || n_pos < 0 || n_pos > src->n_ctx || n_pos > dst->n_ctx)
        return lq_fail(LQ_ERR_INVALID_ARG, "copy_cache: %d positions do not fit (contexts %d -> %d)",
                       n_pos, src->n_ctx, dst->n_ctx);
    if (dst->dev || src->dev) return lq_backend_copy_cache(dst->dev, src->dev, n_pos);
    const lq_config *c = &src->m->cfg;
    size_t row = (size_t)kv_dim_of(c) * sizeof(float);
    for (int l = 0; l < c->n_layers; l++) {
        memcpy(dst->k_cache + (size_t)l * dst->n_ctx * kv_dim_of(c),
               src->k_cache + (size_t)l * src->n_ctx * kv_dim_of(c), (size_t)n_pos * row);
        memcpy(dst->v_cache + (size_t)l * dst->n_ctx * kv_dim_of(c),
               src->v_cache + (size_t)l * src->n_ctx * kv_dim_of(c), (size_t)n_pos * row);
    }
    return LQ_OK;
}
