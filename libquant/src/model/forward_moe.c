/* forward_moe.c - the sparse mixture-of-experts FFN step of the layer program (Mixtral,
 * Qwen2-MoE; arch.h says what transformers computes).
 *
 *   router logits = ROUTER(x) (a float Linear)  ->  router_topk op: k experts and weights per token
 *   for each expert e in index order, if any token chose it:
 *       gather the rows of the tokens routed to e   (prefill: one matmul per expert on its tokens)
 *       y = EXP_DOWN_e(act(EXP_GATE_e(x)) * EXP_UP_e(x)),  y[i] *= weight,  out[token] += y[i]
 *   shared expert (Qwen2-MoE): out += sigmoid(SHEXP_ROUTER(x)) * SHEXP_DOWN(act(SHEXP_GATE(x)) * SHEXP_UP(x))
 *
 * The sums are formed in transformers' order (MixtralExperts: zeros, then index_add_ expert by
 * expert; then + the shared expert), so only the matmuls' own rounding differs. Every step is an
 * op of the session's table (copy, matmul, glu, scale, add); the router's choices and the shared
 * gate are read on the host to schedule them.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "session_internal.h"

void lq_moe_buffers_free(lq_session *s) {
    lq_moe_buffers *b = &s->moe;
    float *dev[] = {b->x, b->y, b->out, b->g, b->u, b->logits};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) s->ops->free(s->ctx, dev[i]);
    free(b->ids);
    free(b->rows);
    free(b->w);
    free(b->rw);
    free(b->gate);
    free(b->seen);
    memset(b, 0, sizeof *b);
}

static lq_status ensure_moe(lq_session *s, int n) {
    lq_moe_buffers *b = &s->moe;
    if (n <= b->cap) return LQ_OK;
    const lq_model *m = s->m;
    const lq_backend_ops *o = s->ops;
    o->sync(s->ctx);
    lq_moe_buffers_free(s);
    const size_t nn = (size_t)n, f = sizeof(float), dim = (size_t)m->cfg.dim;
    const size_t k = (size_t)m->cfg.n_experts_used, e = (size_t)m->cfg.n_experts;
    lq_status st = o->alloc(s->ctx, nn * dim * f, (void **)&b->x);
    if (st == LQ_OK) st = o->alloc(s->ctx, nn * dim * f, (void **)&b->y);
    if (st == LQ_OK) st = o->alloc(s->ctx, nn * dim * f, (void **)&b->out);
    if (st == LQ_OK) st = o->alloc(s->ctx, nn * (size_t)m->moe_hidden_max * f, (void **)&b->g);
    if (st == LQ_OK) st = o->alloc(s->ctx, nn * (size_t)m->moe_hidden_max * f, (void **)&b->u);
    if (st == LQ_OK) st = o->alloc(s->ctx, nn * e * f, (void **)&b->logits);
    b->ids = malloc(nn * k * sizeof *b->ids);
    b->w = malloc(nn * k * sizeof *b->w);
    b->rows = malloc(nn * sizeof *b->rows);
    b->rw = malloc(nn * sizeof *b->rw);
    b->gate = malloc(nn * sizeof *b->gate);
    b->seen = malloc(nn);
    if (st != LQ_OK || !b->ids || !b->w || !b->rows || !b->rw || !b->gate || !b->seen) {
        lq_moe_buffers_free(s);
        return lq_fail(LQ_ERR_NOMEM, "out of memory for the experts of a batch of %d tokens (%s)", n, o->name);
    }
    b->cap = n;
    return LQ_OK;
}

/* y = down(act(gate(x)) * up(x)) of n rows through the roles gate/up/down (expert e, or -1). */
static lq_status mlp(lq_session *s, int l, lq_role gate, lq_role up, lq_role down, int e, int64_t hidden,
                     const float *x, int n, float *y) {
    lq_moe_buffers *b = &s->moe;
    LQ_TRY(lq_fwd_linear(s, l, gate, e, x, n, hidden, b->g));
    LQ_TRY(lq_fwd_linear(s, l, up, e, x, n, hidden, b->u));
    LQ_TRY(s->ops->glu(s->ctx, s->m->arch->act, b->g, b->u, (int64_t)n * hidden));
    return lq_fwd_linear(s, l, down, e, b->g, n, s->m->cfg.dim, y);
}

/* Expert e on the tokens routed to it: out[token] (+)= weight * expert(x[token]). */
static lq_status run_expert(lq_session *s, int l, int e, const float *x, int n) {
    lq_moe_buffers *b = &s->moe;
    const lq_backend_ops *o = s->ops;
    const int k = s->m->cfg.n_experts_used;
    const int64_t dim = s->m->cfg.dim;
    const size_t row = (size_t)dim * sizeof(float);
    int ne = 0;
    for (int t = 0; t < n; t++)
        for (int j = 0; j < k; j++)
            if (b->ids[t * k + j] == e) {
                b->rows[ne] = t;
                b->rw[ne++] = b->w[t * k + j];
            }
    if (ne == 0) return LQ_OK;
    for (int i = 0; i < ne; i++) LQ_TRY(o->copy(s->ctx, b->x + i * dim, x + b->rows[i] * dim, row));
    LQ_TRY(mlp(s, l, LQ_ROLE_EXP_GATE, LQ_ROLE_EXP_UP, LQ_ROLE_EXP_DOWN, e, s->m->layers[l].xw[LQ_ROLE_EXP_GATE][e].rows,
               b->x, ne, b->y));
    for (int i = 0; i < ne; i++) {
        float *yi = b->y + i * dim, *dst = b->out + b->rows[i] * dim;
        LQ_TRY(o->scale(s->ctx, yi, b->rw[i], dim));
        /* zeros + y is y: the first term is copied, as exact as transformers' index_add_ */
        LQ_TRY(b->seen[b->rows[i]] ? o->add(s->ctx, dst, yi, dim) : o->copy(s->ctx, dst, yi, row));
        b->seen[b->rows[i]] = 1;
    }
    return LQ_OK;
}

/* Qwen2-MoE's shared expert: out += sigmoid(shared_expert_gate(x)) * shared_mlp(x). */
static lq_status run_shared(lq_session *s, int l, const float *x, int n) {
    lq_moe_buffers *b = &s->moe;
    const lq_backend_ops *o = s->ops;
    const int64_t dim = s->m->cfg.dim;
    LQ_TRY(mlp(s, l, LQ_ROLE_SHEXP_GATE, LQ_ROLE_SHEXP_UP, LQ_ROLE_SHEXP_DOWN, -1, s->m->layers[l].w[LQ_ROLE_SHEXP_GATE].rows, x,
               n, b->y));
    LQ_TRY(lq_fwd_linear(s, l, LQ_ROLE_SHEXP_ROUTER, -1, x, n, 1, b->logits));
    LQ_TRY(o->download(s->ctx, b->gate, b->logits, (size_t)n * sizeof(float)));
    for (int t = 0; t < n; t++) {
        const float g = 1.0f / (1.0f + expf(-b->gate[t])); /* torch.sigmoid in f32 */
        LQ_TRY(o->scale(s->ctx, b->y + t * dim, g, dim));
    }
    return o->add(s->ctx, b->out, b->y, (int64_t)n * dim);
}

lq_status lq_moe_ffn(lq_session *s, int l, int n, float **out) {
    const lq_model *m = s->m;
    const lq_layer *L = &m->layers[l];
    lq_moe_buffers *b = &s->moe;
    LQ_TRY(ensure_moe(s, n));
    const bool renorm = m->cfg.norm_topk_prob || (m->arch->features & LQ_AF_MOE_NORM_TOPK);
    LQ_TRY(lq_fwd_linear(s, l, LQ_ROLE_ROUTER, -1, s->xb, n, L->n_experts, b->logits));
    LQ_TRY(s->ops->router_topk(s->ctx, b->logits, n, L->n_experts, m->cfg.n_experts_used, renorm, b->ids, b->w));
    memset(b->seen, 0, (size_t)n);
    for (int e = 0; e < L->n_experts; e++) LQ_TRY(run_expert(s, l, e, s->xb, n));
    if (s->bm->layers[l].w[LQ_ROLE_SHEXP_GATE]) LQ_TRY(run_shared(s, l, s->xb, n));
    *out = b->out;
    return LQ_OK;
}
