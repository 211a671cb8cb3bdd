/* backend.c - device names, op names, and a model's weights uploaded through a backend table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

static const char *const g_names[LQ_DEVICE_COUNT] = {[LQ_DEVICE_CPU] = "cpu", [LQ_DEVICE_CUDA] = "cuda"};

lq_device lq_device_from_name(const char *name) {
    if (!name) return LQ_DEVICE_COUNT;
    for (int d = 0; d < LQ_DEVICE_COUNT; d++)
        if (strcmp(g_names[d], name) == 0) return (lq_device)d;
    return LQ_DEVICE_COUNT;
}

const char *lq_device_name(lq_device d) {
    return ((int)d >= 0 && d < LQ_DEVICE_COUNT) ? g_names[d] : "?";
}

static const char *const g_ops[LQ_OP_COUNT] = {
    [LQ_OP_EMBED] = "embed",         [LQ_OP_MATMUL] = "matmul",
    [LQ_OP_RMSNORM] = "rmsnorm",     [LQ_OP_ROPE] = "rope",
    [LQ_OP_ATTENTION] = "attention", [LQ_OP_ATTENTION_WINDOW] = "attention_window",
    [LQ_OP_SWIGLU] = "swiglu",       [LQ_OP_GEGLU_TANH] = "geglu_tanh",
    [LQ_OP_ADD] = "add",             [LQ_OP_ADD_BIAS] = "add_bias",
    [LQ_OP_SCALE] = "scale",         [LQ_OP_ROUTER_TOPK] = "router_topk",
    [LQ_OP_ATTENTION_PAGED] = "attention_paged",
};

const char *lq_op_name(lq_op op) { return (int)op >= 0 && op < LQ_OP_COUNT ? g_ops[op] : "?"; }

lq_status lq_backend_for(lq_device d, const lq_backend_ops **out) {
    *out = NULL;
    switch (d) {
    case LQ_DEVICE_CPU: *out = &lq_backend_cpu; return LQ_OK;
    case LQ_DEVICE_CUDA:
#ifdef LQ_HAVE_CUDA
        *out = &lq_backend_cuda;
        return LQ_OK;
#else
        return lq_fail(LQ_ERR_UNSUPPORTED,
                       "--device cuda: this build has no CUDA backend (configure with -DQUANT_CUDA=ON where nvcc exists)");
#endif
    default: return lq_fail(LQ_ERR_INVALID_ARG, "unknown device %d", (int)d);
    }
}

lq_status lq_backend_check(const lq_model *m, const lq_backend_ops *ops) {
    for (int op = 0; op < LQ_OP_COUNT; op++)
        if ((m->ops_needed >> op & 1) && !ops->supports((lq_op)op))
            return lq_fail(LQ_ERR_UNSUPPORTED, "%s: the %s backend has no op '%s', which %s needs",
                           lq_checkpoint_path(m->ckpt), ops->name, lq_op_name((lq_op)op), m->arch->hf_name);
    return LQ_OK;
}

void lq_backend_model_free(lq_backend_model *bm) {
    if (!bm) return;
    const lq_backend_ops *o = bm->ops;
    for (int l = 0; bm->layers && l < bm->n_layers; l++)
        for (int r = 0; r < LQ_ROLE_COUNT; r++) {
            o->free_weight(bm->impl, bm->layers[l].w[r]);
            o->free_f32(bm->impl, bm->layers[l].vec[r]);
            o->free_f32(bm->impl, bm->layers[l].bias[r]);
            for (int e = 0; bm->layers[l].xw[r] && e < bm->layers[l].n_experts; e++)
                o->free_weight(bm->impl, bm->layers[l].xw[r][e]);
            free(bm->layers[l].xw[r]);
        }
    free(bm->layers);
    if (bm->output != bm->tok_emb) o->free_weight(bm->impl, bm->output);
    o->free_weight(bm->impl, bm->tok_emb);
    o->free_f32(bm->impl, bm->final_norm);
    if (bm->rope[LQ_ROPE_LOCAL] != bm->rope[LQ_ROPE_GLOBAL]) o->free_f32(bm->impl, bm->rope[LQ_ROPE_LOCAL]);
    o->free_f32(bm->impl, bm->rope[LQ_ROPE_GLOBAL]);
    if (bm->impl) o->close(bm->impl);
    free(bm);
}

static lq_status upload_layer(const lq_model *m, lq_backend_model *bm, int l) {
    const lq_backend_ops *o = bm->ops;
    const lq_layer *L = &m->layers[l];
    lq_backend_layer *B = &bm->layers[l];
    for (int r = 0; r < LQ_ROLE_COUNT; r++) {
        char what[96];
        snprintf(what, sizeof what, "layer %d %s", l, lq_role_get((lq_role)r)->name);
        if (L->w[r].data) LQ_TRY(o->upload_weight(bm->impl, &L->w[r], what, &B->w[r]));
        if (L->xw[r]) {
            if (!(B->xw[r] = calloc((size_t)L->n_experts, sizeof *B->xw[r])))
                return lq_fail(LQ_ERR_NOMEM, "out of memory for the experts of layer %d", l);
            B->n_experts = L->n_experts;
            for (int e = 0; e < L->n_experts; e++) {
                snprintf(what, sizeof what, "layer %d expert %d %s", l, e, lq_role_get((lq_role)r)->name);
                LQ_TRY(o->upload_weight(bm->impl, &L->xw[r][e], what, &B->xw[r][e]));
            }
        }
        if (L->bias[r]) LQ_TRY(o->upload_f32(bm->impl, L->bias[r], L->w[r].rows, what, &B->bias[r]));
        if (L->vec[r]) {
            int64_t n = lq_arch_sym_value(&m->cfg, lq_arch_role(m->arch, (lq_role)r)->rows, l);
            LQ_TRY(o->upload_f32(bm->impl, L->vec[r], n, what, &B->vec[r]));
        }
    }
    return LQ_OK;
}

lq_status lq_backend_model_create(const lq_model *m, const lq_backend_ops *ops, lq_backend_model **out) {
    *out = NULL;
    const lq_config *c = &m->cfg;
    lq_backend_model *bm = calloc(1, sizeof *bm);
    if (!bm || !(bm->layers = calloc((size_t)c->n_layers, sizeof *bm->layers))) {
        free(bm);
        return lq_fail(LQ_ERR_NOMEM, "out of memory for a %s model", ops->name);
    }
    bm->ops = ops;
    bm->n_layers = c->n_layers;
    lq_status st = ops->open(&bm->impl);
    if (st == LQ_OK) st = ops->upload_weight(bm->impl, &m->tok_emb, "embed_tokens", &bm->tok_emb);
    if (st == LQ_OK) {
        if (m->output.data == m->tok_emb.data) bm->output = bm->tok_emb;
        else st = ops->upload_weight(bm->impl, &m->output, "lm_head", &bm->output);
    }
    if (st == LQ_OK) st = ops->upload_f32(bm->impl, m->final_norm, c->dim, "final norm", &bm->final_norm);
    if (st == LQ_OK)
        st = ops->upload_f32(bm->impl, m->rope_inv_freq[LQ_ROPE_GLOBAL], c->head_dim / 2, "rope",
                             &bm->rope[LQ_ROPE_GLOBAL]);
    if (st == LQ_OK) {
        if (!m->rope_inv_freq[LQ_ROPE_LOCAL] || m->rope_inv_freq[LQ_ROPE_LOCAL] == m->rope_inv_freq[LQ_ROPE_GLOBAL])
            bm->rope[LQ_ROPE_LOCAL] = bm->rope[LQ_ROPE_GLOBAL];
        else
            st = ops->upload_f32(bm->impl, m->rope_inv_freq[LQ_ROPE_LOCAL], c->head_dim / 2, "local rope",
                                 &bm->rope[LQ_ROPE_LOCAL]);
    }
    for (int l = 0; st == LQ_OK && l < c->n_layers; l++) st = upload_layer(m, bm, l);
    if (st != LQ_OK) {
        lq_backend_model_free(bm);
        return st;
    }
    *out = bm;
    return LQ_OK;
}

lq_status lq_model_to_device(lq_model *m, lq_device d) {
    if ((int)d < 0 || d >= LQ_DEVICE_COUNT) return lq_fail(LQ_ERR_INVALID_ARG, "unknown device %d", (int)d);
    if (lq_model_device(m) == d) return LQ_OK;
    lq_backend_model_free(m->dev);
    m->dev = NULL;
    if (d == LQ_DEVICE_CPU) return LQ_OK;
    const lq_backend_ops *ops;
    LQ_TRY(lq_backend_for(d, &ops));
    LQ_TRY(lq_backend_check(m, ops));
    return lq_backend_model_create(m, ops, &m->dev);
}

lq_device lq_model_device(const lq_model *m) { return m->dev ? m->dev->ops->device : LQ_DEVICE_CPU; }
