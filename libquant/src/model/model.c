/* model.c - load and free an lq_model, and read it through the public accessors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "weight_bind.h"

lq_status lq_model_load(const char *path, lq_model **out) {
    *out = NULL;
    lq_model *m = calloc(1, sizeof *m);
    if (m && !(m->owned = calloc(1, sizeof *m->owned))) {
        free(m);
        m = NULL;
    }
    if (!m) return lq_fail(LQ_ERR_NOMEM, "out of memory");
    lq_status s = lq_checkpoint_open(path, &m->ckpt);
    /* Every tool that runs a model refuses NaN/Inf weights (issue 10: refuse, not warn). */
    if (s == LQ_OK) s = lq_checkpoint_check_finite(m->ckpt, "run");
    if (s == LQ_OK) {
        m->cfg = *lq_checkpoint_config(m->ckpt);
        s = lq_model_bind(m);
    }
    if (s == LQ_OK) s = lq_model_bind_kv_scheme(m);
    if (s == LQ_OK) s = lq_backend_model_create(m, &lq_backend_cpu, &m->cpu);
    if (s != LQ_OK) {
        lq_model_free(m);
        return s;
    }
    *out = m;
    return LQ_OK;
}

void lq_model_free(lq_model *m) {
    if (!m) return;
    lq_backend_model_free(m->dev);
    lq_backend_model_free(m->cpu);
    if (m->layers) {
        for (int l = 0; l < m->cfg.n_layers; l++)
            for (int r = 0; r < LQ_ROLE_COUNT; r++) {
                free(m->layers[l].vec[r]);
                free(m->layers[l].bias[r]);
                free(m->layers[l].xw[r]);
            }
        free(m->layers);
    }
    free(m->final_norm);
    free(m->kv_fixed);
    if (m->rope_inv_freq[LQ_ROPE_LOCAL] != m->rope_inv_freq[LQ_ROPE_GLOBAL]) free(m->rope_inv_freq[LQ_ROPE_LOCAL]);
    free(m->rope_inv_freq[LQ_ROPE_GLOBAL]);
    lq_bind_owner_free(m->owned);
    lq_checkpoint_close(m->ckpt);
    free(m);
}

const lq_config *lq_model_config(const lq_model *m) { return &m->cfg; }
const lq_checkpoint *lq_model_checkpoint(const lq_model *m) { return m->ckpt; }

/* The linear weights of layer L's role r: w[r] (1), or each expert's (n_experts); 0 when none. */
static int role_weights(const lq_layer *L, lq_role r, const lq_weight **ws) {
    if (L->xw[r]) {
        *ws = L->xw[r];
        return L->n_experts;
    }
    *ws = &L->w[r];
    return L->w[r].data != NULL;
}

int lq_model_linear_count(const lq_model *m) {
    int n = 0;
    const lq_weight *ws;
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int r = 0; r < LQ_ROLE_COUNT; r++) n += role_weights(&m->layers[l], (lq_role)r, &ws);
    return n;
}

const lq_weight *lq_model_linear(const lq_model *m, int i, char *name, size_t cap) {
    for (int l = 0; i >= 0 && l < m->cfg.n_layers; l++)
        for (int k = 0; k < m->arch->n_roles; k++) {
            lq_role r = m->arch->roles[k].role;
            const lq_weight *ws;
            int n = role_weights(&m->layers[l], r, &ws);
            if (i >= n) {
                i -= n;
                continue;
            }
            if (name) {
                if (m->layers[l].xw[r]) lq_arch_expert_module(m->arch, r, l, i, name, cap);
                else lq_arch_module(m->arch, r, l, name, cap);
            }
            return &ws[i];
        }
    return NULL;
}

const lq_weight *lq_model_find_linear(const lq_model *m, const char *module) {
    if (strcmp(module, "lm_head") == 0) return &m->output;
    if (strcmp(module, "model.embed_tokens") == 0) return &m->tok_emb;
    int l = -1, e = -1;
    int r = lq_arch_role_of_expert(m->arch, module, &l, &e);
    if (r < 0 || l >= m->cfg.n_layers || lq_role_get((lq_role)r)->kind != LQ_KIND_LINEAR) return NULL;
    const lq_layer *L = &m->layers[l];
    if (e >= 0 && (!L->xw[r] || e >= L->n_experts)) return NULL;
    char want[192];
    lq_arch_expert_module(m->arch, (lq_role)r, l, e, want, sizeof want);
    if (strcmp(want, module) != 0) return NULL;
    if (e >= 0) return &L->xw[r][e];
    return L->w[r].data ? &L->w[r] : NULL;
}

lq_status lq_model_replace_linear(lq_model *m, const char *module, const lq_weight *w) {
    int l = -1;
    int r = lq_arch_role_of(m->arch, module, &l);
    const lq_weight *cur = r >= 0 && l >= 0 ? lq_model_find_linear(m, module) : NULL;
    if (!cur) return lq_fail(LQ_ERR_NOT_FOUND, "replace: the model has no decoder Linear '%s'", module);
    if (w->rows != cur->rows || w->cols != cur->cols || !w->data)
        return lq_fail(LQ_ERR_MISMATCH, "replace '%s': %lld x %lld weight for a %lld x %lld Linear", module,
                       (long long)w->rows, (long long)w->cols, (long long)cur->rows, (long long)cur->cols);
    /* a device copy would keep computing with the old weights */
    if (m->dev) return lq_fail(LQ_ERR_UNSUPPORTED, "replace '%s': the model was moved to a device", module);
    /* the CPU table points at this struct (cpu_upload_weight), so the next matmul reads w */
    m->layers[l].w[r] = *w;
    return LQ_OK;
}

/* Stored bytes of the checkpoint tensors named `prefix` + each of parts (absent ones count 0). */
static uint64_t stored_bytes(const lq_checkpoint *c, const char *prefix, const char *const *parts, int n) {
    uint64_t b = 0;
    char name[512];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s%s", prefix, parts[i]);
        const lq_tensor *t = lq_checkpoint_find(c, name);
        if (t) b += t->nbytes;
    }
    return b;
}

/* What one token's pass reads of the Linear `prefix`: its stored payload (".weight", or
 * ".weight_packed") and side tensors (scales, zero points, g_idx) as they lie in the file, not
 * the format's nominal bits per weight (issue 18: every 4-bit SmolLM2 variant read "83.2 MB"
 * while the files hold 75.6-96.5 MB). ".weight_shape" is metadata, never read per token. A
 * checkpoint that names none of them (sparse layouts the loader decodes) counts the bound
 * weight's own payload and side arrays. */
static uint64_t linear_bytes(const lq_model *m, const char *prefix, const lq_weight *w) {
    static const char *const parts[] = {".weight", ".weight_packed", ".weight_scale",
                                        ".weight_zero_point", ".weight_g_idx"};
    uint64_t b = stored_bytes(m->ckpt, prefix, parts, 2);
    if (b == 0) return lq_weight_bytes(w);
    return b + stored_bytes(m->ckpt, prefix, parts + 2, 3);
}

static uint64_t vector_bytes(const lq_model *m, const char *name, int64_t n) {
    const lq_tensor *t = lq_checkpoint_find(m->ckpt, name);
    return t ? t->nbytes : (uint64_t)n * sizeof(float);
}

/* What one token reads of layer l's per-expert role r: the experts it is routed to, counted as
 * n_experts_used / n_experts of all of them (each expert is read by that share of the tokens). */
static uint64_t expert_bytes(const lq_model *m, int l, lq_role r) {
    const lq_layer *L = &m->layers[l];
    char name[256];
    uint64_t b = 0;
    for (int e = 0; e < L->n_experts; e++) {
        lq_arch_expert_module(m->arch, r, l, e, name, sizeof name);
        b += linear_bytes(m, name, &L->xw[r][e]);
    }
    return b * (uint64_t)m->cfg.n_experts_used / (uint64_t)L->n_experts;
}

uint64_t lq_model_weight_bytes_per_token(const lq_model *m) {
    const lq_config *c = &m->cfg;
    char name[256];
    uint64_t b = 0;
    for (int l = 0; l < c->n_layers; l++)
        for (int k = 0; k < m->arch->n_roles; k++) {
            const lq_role r = m->arch->roles[k].role;
            const lq_layer *L = &m->layers[l];
            if (L->xw[r]) b += expert_bytes(m, l, r);
            if (!L->w[r].data && !L->vec[r]) continue;
            lq_arch_module(m->arch, r, l, name, sizeof name - 8);
            if (L->w[r].data) {
                b += linear_bytes(m, name, &L->w[r]);
                if (L->bias[r]) b += vector_bytes(m, strcat(name, ".bias"), L->w[r].rows);
            } else {
                b += vector_bytes(m, strcat(name, ".weight"), c->dim);
            }
        }
    /* one embedding row: the lookup touches nothing else of the table */
    const lq_tensor *emb = lq_checkpoint_find(m->ckpt, "model.embed_tokens.weight");
    b += emb && emb->ndim == 2 && emb->shape[0] > 0 ? emb->nbytes / (uint64_t)emb->shape[0]
                                                    : (uint64_t)m->tok_emb.row_bytes;
    /* the head reads its whole matrix: its own lm_head tensors, or the tied embedding */
    bool own_head = m->output.data != m->tok_emb.data;
    b += own_head ? linear_bytes(m, "lm_head", &m->output) : (emb ? emb->nbytes : lq_weight_bytes(&m->output));
    b += vector_bytes(m, "model.norm.weight", c->dim);
    return b;
}

int64_t lq_model_param_count(const lq_model *m) {
    const lq_config *c = &m->cfg;
    int64_t n = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const lq_layer *L = &m->layers[l];
        for (int r = 0; r < LQ_ROLE_COUNT; r++) {
            if (L->w[r].data) n += L->w[r].rows * L->w[r].cols + (L->bias[r] ? L->w[r].rows : 0);
            for (int e = 0; L->xw[r] && e < L->n_experts; e++) n += L->xw[r][e].rows * L->xw[r][e].cols;
            if (L->vec[r]) n += lq_arch_sym_value(c, lq_arch_role(m->arch, (lq_role)r)->rows, l);
        }
    }
    n += m->tok_emb.rows * m->tok_emb.cols + c->dim;
    if (m->output.data != m->tok_emb.data) n += m->output.rows * m->output.cols;
    return n;
}
