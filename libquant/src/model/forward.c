/* forward.c - the layer program: one forward pass, written once, for every architecture
 * descriptor and every backend table (lq_session, lq_forward).
 *
 * A step runs when the layer has its role bound (biases, q/k norms, ...); every step is one op
 * of the session's table (backend.h), so the same code drives the CPU kernels and the CUDA
 * launches. The KV cache is (n_layers, n_ctx) rows of the widest layer's row size in the table's
 * memory; a layer's rows are packed at its own kv_dim (structured pruning may shrink a layer).
 * Rows are f32, or, where the table has kv_store, f16 / q8 / fp8 (lq_kv.h, lq_model_set_kv_cache):
 * then k and v are computed into f32 staging rows and encoded once RoPE has run (in the
 * contiguous cache or, for a batch, in its pages: the same rows either way). A batch
 * session (lq_batch, forward_batch.c) runs this same program over the rows of many sequences,
 * with the paged cache (kv_paged.h) in place of the contiguous one: only where K and V are
 * stored and which attention op reads them differ (lq_fwd_attend_paged).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "session_internal.h"

uint32_t lq_program_roles(void) {
    return 1u << LQ_ROLE_ATTN_NORM | 1u << LQ_ROLE_Q | 1u << LQ_ROLE_K | 1u << LQ_ROLE_V | 1u << LQ_ROLE_O |
           1u << LQ_ROLE_Q_NORM | 1u << LQ_ROLE_K_NORM | 1u << LQ_ROLE_FFN_NORM | 1u << LQ_ROLE_GATE |
           1u << LQ_ROLE_UP | 1u << LQ_ROLE_DOWN | 1u << LQ_ROLE_POST_ATTN_NORM | 1u << LQ_ROLE_POST_FFN_NORM |
           1u << LQ_ROLE_ROUTER | 1u << LQ_ROLE_EXP_GATE | 1u << LQ_ROLE_EXP_UP | 1u << LQ_ROLE_EXP_DOWN |
           1u << LQ_ROLE_SHEXP_GATE | 1u << LQ_ROLE_SHEXP_UP | 1u << LQ_ROLE_SHEXP_DOWN |
           1u << LQ_ROLE_SHEXP_ROUTER; /* the last eight: forward_moe.c */
}


lq_status lq_session_create(const lq_model *m, int n_ctx, lq_pool *pool, lq_session **out) {
    return lq_session_create_ex(m, n_ctx, pool, lq_model_device(m), out);
}

lq_status lq_session_create_ex(const lq_model *m, int n_ctx, lq_pool *pool, lq_device device,
                               lq_session **out) {
    return lq_session_open(m, n_ctx, pool, device, true, out);
}

lq_status lq_session_open(const lq_model *m, int n_ctx, lq_pool *pool, lq_device device, bool cache,
                          lq_session **out) {
    *out = NULL;
    const lq_backend_model *bm = device == LQ_DEVICE_CPU ? m->cpu : m->dev;
    if (device != LQ_DEVICE_CPU && lq_model_device(m) != device)
        return lq_fail(LQ_ERR_INVALID_ARG, "session on %s: move the model there first (lq_model_to_device)",
                       lq_device_name(device));
    LQ_TRY(lq_backend_check(m, bm->ops));
    if (n_ctx <= 0) n_ctx = m->cfg.max_seq_len > 0 ? m->cfg.max_seq_len : 2048;
    lq_session *s = calloc(1, sizeof *s);
    if (!s) return lq_fail(LQ_ERR_NOMEM, "out of memory creating a session");
    s->m = m;
    s->bm = bm;
    s->ops = bm->ops;
    s->pool = pool;
    s->n_ctx = n_ctx;
    s->kv_type = m->kv_type;
    s->kv_fixed = s->kv_type == LQ_KV_Q8 || s->kv_type == LQ_KV_FP8 ? m->kv_fixed : NULL;
    int kvh_max = 0;
    for (int l = 0; l < m->cfg.n_layers; l++)
        if (m->layers[l].n_kv_heads > kvh_max) kvh_max = m->layers[l].n_kv_heads;
    s->kv_row_max = s->kv_type == LQ_KV_F32 ? (size_t)m->kv_dim_max * sizeof(float)
                                            : lq_kv_row_bytes(s->kv_type, kvh_max, m->cfg.head_dim, s->kv_fixed);
    if (s->kv_type != LQ_KV_F32 && !s->ops->kv_store) { /* the encoder op writes compact rows */
        lq_session_free(s);
        return lq_fail(LQ_ERR_UNSUPPORTED, "KV cache %s: the %s backend keeps an f32 cache only (compact caches run on "
                       "the CPU)", lq_kv_type_name(m->kv_type), bm->ops->name);
    }
    size_t bytes = (size_t)m->cfg.n_layers * (size_t)n_ctx * s->kv_row_max;
    lq_status st = s->ops->ctx_create(bm->impl, n_ctx, pool, &s->ctx);
    if (st == LQ_OK && cache) st = s->ops->alloc(s->ctx, bytes, (void **)&s->k_cache);
    if (st == LQ_OK && cache) st = s->ops->alloc(s->ctx, bytes, (void **)&s->v_cache);
    if (st != LQ_OK) {
        bool host = s->ops->host_memory;
        lq_session_free(s);
        return host ? lq_fail(LQ_ERR_NOMEM, "out of memory for a KV cache of %d positions", n_ctx) : st;
    }
    *out = s;
    return LQ_OK;
}

lq_device lq_session_device(const lq_session *s) { return s->ops->device; }

static void free_batch(lq_session *s) {
    void *bufs[] = {s->x, s->xb, s->q, s->att, s->hb, s->hb2, s->ids, s->kb, s->vb};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) s->ops->free(s->ctx, bufs[i]);
    s->x = s->xb = s->q = s->att = s->hb = s->hb2 = s->kb = s->vb = NULL;
    s->ids = NULL;
    s->cap = 0;
    lq_moe_buffers_free(s);
}

void lq_session_free(lq_session *s) {
    if (!s) return;
    if (s->ctx) {
        s->ops->sync(s->ctx);
        free_batch(s);
        s->ops->free(s->ctx, s->logits);
        s->ops->free(s->ctx, s->k_cache);
        s->ops->free(s->ctx, s->v_cache);
        s->ops->ctx_free(s->ctx);
    }
    free(s->lhook_buf);
    free(s);
}

int lq_session_n_ctx(const lq_session *s) { return s->n_ctx; }

/* Grow the batch buffers to hold n rows (prefill sizes them once; decode reuses them), and the
 * device logits to `logits_rows` rows. */
lq_status lq_session_ensure_batch(lq_session *s, int n, int logits_rows) {
    const lq_model *m = s->m;
    const lq_backend_ops *o = s->ops;
    if (n > s->cap) {
        o->sync(s->ctx);
        free_batch(s);
        const size_t nn = (size_t)n, f = sizeof(float);
        const size_t wide = (size_t)(m->q_dim_max > m->cfg.dim ? m->q_dim_max : m->cfg.dim);
        lq_status st = o->alloc(s->ctx, nn * (size_t)m->cfg.dim * f, (void **)&s->x);
        if (st == LQ_OK) st = o->alloc(s->ctx, nn * wide * f, (void **)&s->xb);
        if (st == LQ_OK) st = o->alloc(s->ctx, nn * (size_t)m->q_dim_max * f, (void **)&s->q);
        if (st == LQ_OK) st = o->alloc(s->ctx, nn * (size_t)m->q_dim_max * f, (void **)&s->att);
        if (st == LQ_OK) st = o->alloc(s->ctx, nn * (size_t)m->hidden_max * f, (void **)&s->hb);
        if (st == LQ_OK) st = o->alloc(s->ctx, nn * (size_t)m->hidden_max * f, (void **)&s->hb2);
        if (st == LQ_OK) st = o->alloc(s->ctx, nn * sizeof(int32_t), (void **)&s->ids);
        const bool staging = s->kv || s->kv_type != LQ_KV_F32;
        if (st == LQ_OK && staging) st = o->alloc(s->ctx, nn * (size_t)m->kv_dim_max * f, (void **)&s->kb);
        if (st == LQ_OK && staging) st = o->alloc(s->ctx, nn * (size_t)m->kv_dim_max * f, (void **)&s->vb);
        if (st != LQ_OK) {
            free_batch(s);
            return lq_fail(st, "out of memory for a batch of %d tokens (%s)", n, o->name);
        }
        s->cap = n;
    }
    if (!o->host_memory && logits_rows > s->logits_rows) {
        o->sync(s->ctx);
        o->free(s->ctx, s->logits);
        s->logits = NULL;
        s->logits_rows = 0;
        LQ_TRY(o->alloc(s->ctx, (size_t)logits_rows * (size_t)m->cfg.vocab_size * sizeof(float),
                        (void **)&s->logits));
        s->logits_rows = logits_rows;
    }
    return LQ_OK;
}

/* Show the input X (n x cols) of the Linear `module` to the linear hook: in place on a host
 * table, through a host copy on a device table. */
static lq_status show_linear(lq_session *s, int l, int expert, const char *role, const char *module,
                             const float *X, int n, int64_t cols) {
    const float *x = X;
    if (!s->ops->host_memory) {
        size_t need = (size_t)n * (size_t)cols;
        if (need > s->lhook_cap) {
            float *b = realloc(s->lhook_buf, need * sizeof *b);
            if (!b) return lq_fail(LQ_ERR_NOMEM, "linear hook: out of memory");
            s->lhook_buf = b;
            s->lhook_cap = need;
        }
        LQ_TRY(s->ops->download(s->ctx, s->lhook_buf, X, need * sizeof(float)));
        x = s->lhook_buf;
    }
    lq_linear_input in = {.layer = l, .role = role, .module = module, .expert = expert, .x = x, .n_tokens = n,
                          .cols = cols};
    s->lhook(s->lhook_user, &in);
    return LQ_OK;
}

lq_status lq_fwd_linear(lq_session *s, int l, lq_role r, int e, const float *X, int n, int64_t rows, float *Y) {
    const lq_backend_layer *B = &s->bm->layers[l];
    const lq_layer *L = &s->m->layers[l];
    if (s->lhook) {
        char module[192];
        lq_arch_expert_module(s->m->arch, r, l, e, module, sizeof module);
        const int64_t cols = e >= 0 ? L->xw[r][e].cols : L->w[r].cols;
        LQ_TRY(show_linear(s, l, e, lq_role_get(r)->name, module, X, n, cols));
    }
    if (s->observe_only && (r == LQ_ROLE_DOWN || r == LQ_ROLE_EXP_DOWN || r == LQ_ROLE_SHEXP_DOWN)) {
        memset(Y, 0, (size_t)n * (size_t)rows * sizeof *Y); /* host table: observe_layer checked */
        return LQ_OK;
    }
    LQ_TRY(s->ops->matmul(s->ctx, e >= 0 ? B->xw[r][e] : B->w[r], X, n, Y));
    if (e < 0 && B->bias[r]) LQ_TRY(s->ops->add_bias(s->ctx, Y, B->bias[r], n, rows));
    return LQ_OK;
}

/* Y[i] = X W^T (+ bias) for roles r[i] of layer l that all take X (q/k/v, gate/up): one
 * matmul_multi where the table has it (one activation quantization and one pool run on the CPU
 * instead of one per role), else one lq_fwd_linear each; the same values either way. The linear
 * hook sees X once per role, as lq_fwd_linear shows it. */
lq_status lq_fwd_linear_multi(lq_session *s, int l, const lq_role *r, int nw, const float *X, int n,
                              const int64_t *rows, float *const *Y) {
    const lq_backend_layer *B = &s->bm->layers[l];
    if (!s->ops->matmul_multi || nw > LQ_FWD_MULTI_MAX) {
        for (int i = 0; i < nw; i++) LQ_TRY(lq_fwd_linear(s, l, r[i], -1, X, n, rows[i], Y[i]));
        return LQ_OK;
    }
    void *w[LQ_FWD_MULTI_MAX] = {0};
    for (int i = 0; i < nw; i++) {
        if (s->lhook) {
            char module[192];
            lq_arch_expert_module(s->m->arch, r[i], l, -1, module, sizeof module);
            LQ_TRY(show_linear(s, l, -1, lq_role_get(r[i])->name, module, X, n, s->m->layers[l].w[r[i]].cols));
        }
        w[i] = B->w[r[i]];
    }
    LQ_TRY(s->ops->matmul_multi(s->ctx, w, nw, X, n, Y));
    for (int i = 0; i < nw; i++)
        if (B->bias[r[i]]) LQ_TRY(s->ops->add_bias(s->ctx, Y[i], B->bias[r[i]], n, rows[i]));
    return LQ_OK;
}

/* The attention block of decoder layer l over the batch rows x: x += attention(norm(x)), n
 * tokens at positions pos..pos+n-1 of the contiguous cache, or, on a batch session (s->kv), the
 * rows of the sequences s->pseq describes. */
static lq_status run_attn(lq_session *s, int l, int n, int pos) {
    const lq_model *m = s->m;
    const lq_config *c = &m->cfg;
    const lq_layer *L = &m->layers[l];
    const lq_backend_layer *B = &s->bm->layers[l];
    const lq_backend_ops *o = s->ops;
    void *ctx = s->ctx;
    const int hd = c->head_dim;
    const int64_t dim = c->dim, qd = (int64_t)L->n_heads * hd, kvd = (int64_t)L->n_kv_heads * hd;
    /* paged or compact cache: k, v computed into staging rows, stored after RoPE */
    float *kc = NULL, *vc = NULL, *krow = s->kb, *vrow = s->vb;
    char *kq = NULL, *vq = NULL;
    const float *k_fixed = s->kv_fixed ? s->kv_fixed + (size_t)(2 * l) * (size_t)c->n_kv_heads : NULL;
    const float *v_fixed = k_fixed ? k_fixed + c->n_kv_heads : NULL;
    const size_t row_bytes = lq_kv_row_bytes(s->kv_type, L->n_kv_heads, hd, k_fixed);
    if (!s->kv) {
        kq = (char *)s->k_cache + (size_t)l * (size_t)s->n_ctx * s->kv_row_max;
        vq = (char *)s->v_cache + (size_t)l * (size_t)s->n_ctx * s->kv_row_max;
    }
    if (!s->kv && s->kv_type == LQ_KV_F32) {
        kc = (float *)kq, vc = (float *)vq;
        krow = kc + (int64_t)pos * kvd;
        vrow = vc + (int64_t)pos * kvd;
    }
    const float *inv_freq = s->bm->rope[L->rope];

    /* attention block: k and v are written straight into the cache rows pos..pos+n-1 */
    LQ_TRY(o->rmsnorm(ctx, s->xb, s->x, B->vec[LQ_ROLE_ATTN_NORM], n, dim, c->norm_eps));
    const lq_role qkv[] = {LQ_ROLE_Q, LQ_ROLE_K, LQ_ROLE_V};
    LQ_TRY(lq_fwd_linear_multi(s, l, qkv, 3, s->xb, n, (const int64_t[]){qd, kvd, kvd},
                               (float *const[]){s->q, krow, vrow}));
    /* per-head RMSNorm of q and k (Qwen3, Gemma 3): every head row is one norm of head_dim */
    if (B->vec[LQ_ROLE_Q_NORM])
        LQ_TRY(o->rmsnorm(ctx, s->q, s->q, B->vec[LQ_ROLE_Q_NORM], (int64_t)n * L->n_heads, hd, c->norm_eps));
    if (B->vec[LQ_ROLE_K_NORM])
        LQ_TRY(o->rmsnorm(ctx, krow, krow, B->vec[LQ_ROLE_K_NORM], (int64_t)n * L->n_kv_heads, hd, c->norm_eps));
    if (s->kv) {
        const lq_kv_layer_rows rows = {.row_bytes = row_bytes, .n_heads = L->n_kv_heads, .head_dim = hd,
                                       .k_fixed = k_fixed, .v_fixed = v_fixed};
        LQ_TRY(lq_fwd_attend_paged(s, l, n, &rows));
    } else {
        LQ_TRY(o->rope(ctx, s->q, n, qd, L->n_heads, hd, pos, inv_freq, c->rope_interleaved));
        LQ_TRY(o->rope(ctx, krow, n, kvd, L->n_kv_heads, hd, pos, inv_freq, c->rope_interleaved));
        if (s->kv_type != LQ_KV_F32) {
            LQ_TRY(o->kv_store(ctx, s->kv_type, kq + (size_t)pos * row_bytes, row_bytes, krow, n, L->n_kv_heads, hd,
                               k_fixed));
            LQ_TRY(o->kv_store(ctx, s->kv_type, vq + (size_t)pos * row_bytes, row_bytes, vrow, n, L->n_kv_heads, hd,
                               v_fixed));
        }
        lq_attn_args a = {.out = s->att, .q = s->q, .kc = kc, .vc = vc, .n_tok = n, .pos0 = pos,
                          .n_heads = L->n_heads, .n_kv_heads = L->n_kv_heads, .head_dim = hd,
                          .window = L->window, .scale = m->attn_scale, .kv = s->kv_type,
                          .kq = kc ? NULL : kq, .vq = vc ? NULL : vq, .kv_row_bytes = row_bytes,
                          .k_fixed = k_fixed, .v_fixed = v_fixed};
        LQ_TRY(o->attention(ctx, &a));
    }
    LQ_TRY(lq_fwd_linear(s, l, LQ_ROLE_O, -1, s->att, n, dim, s->xb));
    if (B->vec[LQ_ROLE_POST_ATTN_NORM]) /* Gemma: the block's output is normed before the add */
        LQ_TRY(o->rmsnorm(ctx, s->xb, s->xb, B->vec[LQ_ROLE_POST_ATTN_NORM], n, dim, c->norm_eps));
    return o->add(ctx, s->x, s->xb, (int64_t)n * dim);
}

/* The feed-forward block of decoder layer l: x += act(gate) * up -> down, or the sparse-MoE FFN
 * (forward_moe.c). */
static lq_status run_ffn(lq_session *s, int l, int n) {
    const lq_model *m = s->m;
    const lq_config *c = &m->cfg;
    const lq_layer *L = &m->layers[l];
    const lq_backend_layer *B = &s->bm->layers[l];
    const lq_backend_ops *o = s->ops;
    void *ctx = s->ctx;
    const int64_t dim = c->dim;
    LQ_TRY(o->rmsnorm(ctx, s->xb, s->x, B->vec[LQ_ROLE_FFN_NORM], n, dim, c->norm_eps));
    float *ffn = s->xb;
    if (L->n_experts > 0) {
        LQ_TRY(lq_moe_ffn(s, l, n, &ffn));
    } else {
        const lq_role gate_up[] = {LQ_ROLE_GATE, LQ_ROLE_UP};
        LQ_TRY(lq_fwd_linear_multi(s, l, gate_up, 2, s->xb, n, (const int64_t[]){L->hidden, L->hidden},
                                   (float *const[]){s->hb, s->hb2}));
        LQ_TRY(o->glu(ctx, m->arch->act, s->hb, s->hb2, (int64_t)n * L->hidden));
        LQ_TRY(lq_fwd_linear(s, l, LQ_ROLE_DOWN, -1, s->hb, n, dim, s->xb));
    }
    if (B->vec[LQ_ROLE_POST_FFN_NORM])
        LQ_TRY(o->rmsnorm(ctx, ffn, ffn, B->vec[LQ_ROLE_POST_FFN_NORM], n, dim, c->norm_eps));
    LQ_TRY(o->add(ctx, s->x, ffn, (int64_t)n * dim));
    return LQ_OK;
}

/* One decoder layer over the batch rows x (see run_attn for the positions). */
lq_status lq_fwd_layer(lq_session *s, int l, int n, int pos) {
    LQ_TRY(run_attn(s, l, n, pos));
    return run_ffn(s, l, n);
}

/* Final norm and output head: every row's logits, or the last row's. The hook sees every
 * normed row either way. */
static lq_status run_head(lq_session *s, int n, int pos, float *logits, bool all_logits) {
    const lq_model *m = s->m;
    const lq_config *c = &m->cfg;
    const lq_backend_ops *o = s->ops;
    const int64_t dim = c->dim;
    const int rows = all_logits ? n : 1;
    float *dst = o->host_memory ? logits : s->logits;
    const float *norm = s->bm->final_norm;
    if (all_logits || s->hook) {
        LQ_TRY(o->rmsnorm(s->ctx, s->xb, s->x, norm, n, dim, c->norm_eps));
        if (s->hook) s->hook(s->hook_user, c->n_layers, s->xb, n, pos);
    } else {
        LQ_TRY(o->rmsnorm(s->ctx, s->xb + (int64_t)(n - 1) * dim, s->x + (int64_t)(n - 1) * dim, norm, 1, dim,
                          c->norm_eps));
    }
    const float *head_x = all_logits ? s->xb : s->xb + (int64_t)(n - 1) * dim;
    if (s->lhook) LQ_TRY(show_linear(s, c->n_layers, -1, "head", "lm_head", head_x, rows, dim));
    LQ_TRY(o->matmul(s->ctx, s->bm->output, head_x, rows, dst));
    if (!o->host_memory)
        LQ_TRY(o->download(s->ctx, logits, s->logits, (size_t)rows * (size_t)c->vocab_size * sizeof(float)));
    return LQ_OK;
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
    if (s->hook && !s->ops->host_memory)
        return lq_fail(LQ_ERR_UNSUPPORTED, "layer hooks run on the CPU device only (session is on %s)",
                       s->ops->name);
    LQ_TRY(lq_session_ensure_batch(s, n, all_logits ? n : 1));
    LQ_TRY(s->ops->upload(s->ctx, s->ids, tokens, (size_t)n * sizeof(int32_t)));
    LQ_TRY(s->ops->embed(s->ctx, s->bm->tok_emb, s->ids, n, s->x));
    if (m->arch->features & LQ_AF_EMBED_SCALE) LQ_TRY(s->ops->scale(s->ctx, s->x, m->embed_scale, (int64_t)n * c->dim));
    for (int l = 0; l < c->n_layers; l++) {
        LQ_TRY(lq_fwd_layer(s, l, n, pos));
        if (s->hook) s->hook(s->hook_user, l, s->x, n, pos);
    }
    return run_head(s, n, pos, logits, all_logits);
}

/* The checks lq_forward makes, for the one-layer entry points. */
static lq_status layer_entry(lq_session *s, int n, int pos, const char *what) {
    if (s->kv) return lq_fail(LQ_ERR_UNSUPPORTED, "%s: a batch session runs through lq_batch_forward", what);
    if (!s->ops->host_memory)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s runs on the CPU device only (session is on %s)", what, s->ops->name);
    if (n <= 0 || pos < 0 || (int64_t)pos + n > s->n_ctx)
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: positions %d..%d exceed the context of %d", what, pos, pos + n - 1,
                       s->n_ctx);
    return lq_session_ensure_batch(s, n, 1);
}

lq_status lq_session_embed(lq_session *s, const int32_t *tokens, int n, float *x) {
    const lq_model *m = s->m;
    LQ_TRY(layer_entry(s, n, 0, "embed"));
    for (int t = 0; t < n; t++)
        if (tokens[t] < 0 || tokens[t] >= m->cfg.vocab_size)
            return lq_fail(LQ_ERR_INVALID_ARG, "embed: token id %d out of range [0, %d)", tokens[t], m->cfg.vocab_size);
    LQ_TRY(s->ops->upload(s->ctx, s->ids, tokens, (size_t)n * sizeof(int32_t)));
    LQ_TRY(s->ops->embed(s->ctx, s->bm->tok_emb, s->ids, n, s->x));
    if (m->arch->features & LQ_AF_EMBED_SCALE)
        LQ_TRY(s->ops->scale(s->ctx, s->x, m->embed_scale, (int64_t)n * m->cfg.dim));
    memcpy(x, s->x, (size_t)n * (size_t)m->cfg.dim * sizeof *x);
    return LQ_OK;
}

lq_status lq_session_forward_layer(lq_session *s, int layer, float *x, int n, int pos) {
    const lq_model *m = s->m;
    if (layer < 0 || layer >= m->cfg.n_layers)
        return lq_fail(LQ_ERR_INVALID_ARG, "forward_layer: layer %d of %d", layer, m->cfg.n_layers);
    LQ_TRY(layer_entry(s, n, pos, "forward_layer"));
    const size_t bytes = (size_t)n * (size_t)m->cfg.dim * sizeof *x;
    memcpy(s->x, x, bytes);
    LQ_TRY(lq_fwd_layer(s, layer, n, pos));
    memcpy(x, s->x, bytes);
    return LQ_OK;
}

lq_status lq_session_observe_layer(lq_session *s, int layer, const float *x, int n, int pos) {
    const lq_model *m = s->m;
    if (layer < 0 || layer >= m->cfg.n_layers)
        return lq_fail(LQ_ERR_INVALID_ARG, "observe_layer: layer %d of %d", layer, m->cfg.n_layers);
    if (!s->ops->host_memory)
        return lq_fail(LQ_ERR_UNSUPPORTED, "observe_layer runs on the CPU device only");
    LQ_TRY(layer_entry(s, n, pos, "observe_layer"));
    memcpy(s->x, x, (size_t)n * (size_t)m->cfg.dim * sizeof *x);
    s->observe_only = true;
    lq_status st = lq_fwd_layer(s, layer, n, pos);
    s->observe_only = false;
    return st;
}

lq_status lq_session_forward_block(lq_session *s, int layer, lq_layer_block block, float *x, int n, int pos) {
    const lq_model *m = s->m;
    if (layer < 0 || layer >= m->cfg.n_layers || (block != LQ_BLOCK_ATTN && block != LQ_BLOCK_FFN))
        return lq_fail(LQ_ERR_INVALID_ARG, "forward_block: layer %d of %d, block %d", layer, m->cfg.n_layers,
                       (int)block);
    LQ_TRY(layer_entry(s, n, pos, "forward_block"));
    const size_t bytes = (size_t)n * (size_t)m->cfg.dim * sizeof *x;
    memcpy(s->x, x, bytes);
    LQ_TRY(block == LQ_BLOCK_ATTN ? run_attn(s, layer, n, pos) : run_ffn(s, layer, n));
    memcpy(x, s->x, bytes);
    return LQ_OK;
}

void lq_session_set_linear_hook(lq_session *s, lq_linear_hook fn, void *user) {
    s->lhook = fn;
    s->lhook_user = user;
}

void lq_session_set_layer_hook(lq_session *s, lq_layer_hook fn, void *user) {
    s->hook = fn;
    s->hook_user = user;
}

lq_status lq_session_copy_cache(lq_session *dst, const lq_session *src, int n_pos) {
    if (dst->kv || src->kv)
        return lq_fail(LQ_ERR_UNSUPPORTED, "copy_cache: batch sessions share pages instead (lq_batch_seq_fork)");
    if (dst->m != src->m || dst->bm != src->bm || n_pos < 0 || n_pos > src->n_ctx || n_pos > dst->n_ctx)
        return lq_fail(LQ_ERR_INVALID_ARG, "copy_cache: %d positions do not fit (contexts %d -> %d)",
                       n_pos, src->n_ctx, dst->n_ctx);
    if (dst->kv_type != src->kv_type)
        return lq_fail(LQ_ERR_INVALID_ARG, "copy_cache: KV caches of types %s and %s", lq_kv_type_name(src->kv_type),
                       lq_kv_type_name(dst->kv_type));
    const lq_model *m = src->m;
    const size_t row = src->kv_row_max;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const size_t so = (size_t)l * (size_t)src->n_ctx * row;
        const size_t doff = (size_t)l * (size_t)dst->n_ctx * row;
        LQ_TRY(dst->ops->copy(dst->ctx, (char *)dst->k_cache + doff, (const char *)src->k_cache + so, (size_t)n_pos * row));
        LQ_TRY(dst->ops->copy(dst->ctx, (char *)dst->v_cache + doff, (const char *)src->v_cache + so, (size_t)n_pos * row));
    }
    /* src's stream may still be writing its cache: the copy is ordered on dst's stream only. */
    return dst->ops->sync(dst->ctx);
}

lq_status lq_model_set_kv_cache(lq_model *m, lq_kv_type t) {
    if (!lq_kv_type_name(t)) return lq_fail(LQ_ERR_INVALID_ARG, "KV cache type %d is not one of f32, f16, q8, fp8", (int)t);
    m->kv_type = t;
    return LQ_OK;
}

lq_kv_type lq_model_kv_cache(const lq_model *m) { return m->kv_type; }

lq_kv_type lq_session_kv_cache(const lq_session *s) { return s->kv_type; }

size_t lq_model_kv_bytes_per_pos(const lq_model *m, lq_kv_type t) {
    const float *fixed = t == LQ_KV_Q8 || t == LQ_KV_FP8 ? m->kv_fixed : NULL;
    size_t b = 0;
    for (int l = 0; l < m->cfg.n_layers; l++)
        b += 2 * lq_kv_row_bytes(t, m->layers[l].n_kv_heads, m->cfg.head_dim, fixed);
    return b;
}

lq_status lq_model_set_kv_scales(lq_model *m, const float *k_scale, const float *v_scale) {
    if (!k_scale != !v_scale) return lq_fail(LQ_ERR_INVALID_ARG, "KV cache scales: give both K and V, or neither");
    if (!k_scale) {
        free(m->kv_fixed);
        m->kv_fixed = NULL;
        return LQ_OK;
    }
    const int nl = m->cfg.n_layers, nh = m->cfg.n_kv_heads;
    for (int i = 0; i < nl * nh; i++)
        if (!(k_scale[i] > 0.0f && isfinite(k_scale[i]) && v_scale[i] > 0.0f && isfinite(v_scale[i])))
            return lq_fail(LQ_ERR_INVALID_ARG, "KV cache scales of layer %d head %d: %g, %g (must be > 0 and finite)",
                           i / nh, i % nh, (double)k_scale[i], (double)v_scale[i]);
    float *f = malloc((size_t)nl * 2 * (size_t)nh * sizeof *f);
    if (!f) return lq_fail(LQ_ERR_NOMEM, "out of memory");
    for (int l = 0; l < nl; l++) {
        memcpy(f + (size_t)(2 * l) * nh, k_scale + (size_t)l * nh, (size_t)nh * sizeof *f);
        memcpy(f + (size_t)(2 * l + 1) * nh, v_scale + (size_t)l * nh, (size_t)nh * sizeof *f);
    }
    free(m->kv_fixed);
    m->kv_fixed = f;
    return LQ_OK;
}

bool lq_model_kv_static(const lq_model *m) { return m->kv_fixed != NULL; }

float lq_model_kv_scale(const lq_model *m, int layer, bool v, int head) {
    if (!m->kv_fixed || layer < 0 || layer >= m->cfg.n_layers || head < 0 || head >= m->cfg.n_kv_heads) return 0.0f;
    return m->kv_fixed[(size_t)(2 * layer + (v ? 1 : 0)) * (size_t)m->cfg.n_kv_heads + (size_t)head];
}

lq_status lq_session_kv_absmax(const lq_session *s, int n_pos, float *k_amax, float *v_amax) {
    if (s->kv || s->kv_type != LQ_KV_F32 || !s->ops->host_memory)
        return lq_fail(LQ_ERR_UNSUPPORTED, "KV cache maxima: an f32-cache CPU session only");
    if (n_pos < 0 || n_pos > s->n_ctx)
        return lq_fail(LQ_ERR_INVALID_ARG, "KV cache maxima: %d positions (context %d)", n_pos, s->n_ctx);
    const lq_model *m = s->m;
    const int hd = m->cfg.head_dim, nh = m->cfg.n_kv_heads;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const int64_t kvd = (int64_t)m->layers[l].n_kv_heads * hd;
        const float *kc = (const float *)s->k_cache + (size_t)l * (size_t)s->n_ctx * (size_t)m->kv_dim_max;
        const float *vc = (const float *)s->v_cache + (size_t)l * (size_t)s->n_ctx * (size_t)m->kv_dim_max;
        for (int p = 0; p < n_pos; p++)
            for (int h = 0; h < m->layers[l].n_kv_heads; h++)
                for (int j = 0; j < hd; j++) {
                    const int64_t i = (int64_t)p * kvd + (int64_t)h * hd + j;
                    k_amax[l * nh + h] = fmaxf(k_amax[l * nh + h], fabsf(kc[i]));
                    v_amax[l * nh + h] = fmaxf(v_amax[l * nh + h], fabsf(vc[i]));
                }
    }
    return LQ_OK;
}
