/* model_bind.c - bind a checkpoint to the tensors its architecture descriptor names.
 *
 * The tensor set is validated here (model load), not when the checkpoint opens: every role of
 * the descriptor is present (or optional), stored in a float dtype or a compressed-tensors
 * quantized layout (whose details weight_bind.c checks), with the shape the config implies.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "weight_bind.h"

/* Presence, dtype and shape of one weight or norm (cols 0: a vector). A compressed-tensors
 * quantized linear ("<m>.weight_packed" or an I8/F8 "<m>.weight", each with
 * "<m>.weight_scale") is left to the binder that reads it. */
static lq_status check_tensor(const lq_checkpoint *c, const char *name, int64_t rows, int64_t cols) {
    const char *path = lq_checkpoint_path(c);
    char scale_name[256];
    snprintf(scale_name, sizeof scale_name, "%s_scale", name);
    if (cols > 0 && lq_checkpoint_find(c, scale_name)) return LQ_OK;
    const lq_tensor *t = lq_checkpoint_find(c, name);
    if (!t) return lq_fail(LQ_ERR_NOT_FOUND, "%s: tensor '%s': missing", path, name);
    /* GGUF block formats (LQ_DTYPE_BLOCKS) are linear weights: weight_bind.c binds them */
    bool blocks_ok = t->dtype == LQ_DTYPE_BLOCKS && cols > 0;
    if (t->dtype != LQ_DTYPE_F32 && t->dtype != LQ_DTYPE_F16 && t->dtype != LQ_DTYPE_BF16 && !blocks_ok)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s not supported (F32/F16/BF16%s)", path,
                       name, lq_tensor_type_name(t), cols > 0 ? ", GGUF blocks" : "");
    int want_nd = cols > 0 ? 2 : 1;
    if (t->ndim != want_nd || t->shape[0] != rows || (want_nd == 2 && t->shape[1] != cols)) {
        char got[96] = "", want[48];
        int k = 0;
        for (int i = 0; i < t->ndim && k < (int)sizeof got - 24; i++)
            k += snprintf(got + k, sizeof got - (size_t)k, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        if (want_nd == 2) snprintf(want, sizeof want, "%lld, %lld", (long long)rows, (long long)cols);
        else snprintf(want, sizeof want, "%lld", (long long)rows);
        return lq_fail(LQ_ERR_MISMATCH, "%s: tensor '%s': shape [%s], config expects [%s]", path, name, got,
                       want);
    }
    return LQ_OK;
}

static bool has_linear(const lq_checkpoint *c, const char *module) {
    char n[256];
    snprintf(n, sizeof n, "%s.weight", module);
    if (lq_checkpoint_find(c, n)) return true;
    snprintf(n, sizeof n, "%s.weight_scale", module);
    return lq_checkpoint_find(c, n) != NULL;
}

/* A norm vector as f32 plus the arch's offset ((1 + w) RMSNorm folds into the copy). */
static lq_status bind_norm(lq_model *m, const char *name, int64_t n, float **out) {
    LQ_TRY(check_tensor(m->ckpt, name, n, 0));
    LQ_TRY(lq_bind_vector_f32(m->ckpt, name, n, out));
    if (m->arch->norm_offset != 0.0f && !m->cfg.norm_offset_folded)
        for (int64_t i = 0; i < n; i++) (*out)[i] += m->arch->norm_offset;
    return LQ_OK;
}

/* One Linear module: its weight (checked against the config's shape) and bias. */
static lq_status bind_linear_module(lq_model *m, const lq_role_spec *sp, const char *mod, int64_t rows,
                                    int64_t cols, lq_weight *w, float **bias) {
    char name[224];
    snprintf(name, sizeof name, "%s.weight", mod);
    LQ_TRY(check_tensor(m->ckpt, name, rows, cols));
    LQ_TRY(lq_bind_linear(m->ckpt, mod, rows, cols, m->owned, w));
    snprintf(name, sizeof name, "%s.bias", mod);
    bool has_bias = lq_checkpoint_find(m->ckpt, name) != NULL;
    if (has_bias && !(sp->flags & (LQ_RF_BIAS | LQ_RF_BIAS_REQUIRED)))
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: tensor '%s': %s has no bias on %s", lq_checkpoint_path(m->ckpt),
                       name, m->arch->hf_name, lq_role_get(sp->role)->name);
    if (!has_bias && (sp->flags & LQ_RF_BIAS_REQUIRED))
        return lq_fail(LQ_ERR_NOT_FOUND, "%s: tensor '%s': missing", lq_checkpoint_path(m->ckpt), name);
    if (has_bias) {
        LQ_TRY(check_tensor(m->ckpt, name, rows, 0));
        LQ_TRY(lq_bind_vector_f32(m->ckpt, name, rows, bias));
    }
    return LQ_OK;
}

/* Every expert of a per-expert role (experts have no biases). */
static lq_status bind_experts(lq_model *m, int l, const lq_role_spec *sp, int64_t rows, int64_t cols) {
    lq_layer *L = &m->layers[l];
    L->xw[sp->role] = calloc((size_t)L->n_experts, sizeof(lq_weight));
    if (!L->xw[sp->role]) return lq_fail(LQ_ERR_NOMEM, "out of memory");
    for (int e = 0; e < L->n_experts; e++) {
        char mod[192];
        float *bias = NULL;
        lq_arch_expert_module(m->arch, sp->role, l, e, mod, sizeof mod);
        LQ_TRY(bind_linear_module(m, sp, mod, rows, cols, &L->xw[sp->role][e], &bias));
    }
    return LQ_OK;
}

static lq_status bind_role(lq_model *m, int l, const lq_role_spec *sp) {
    const lq_config *c = &m->cfg;
    lq_layer *L = &m->layers[l];
    const lq_role_info *ri = lq_role_get(sp->role);
    if (!lq_arch_layer_has(sp, c, l)) return LQ_OK;
    int64_t rows = lq_arch_sym_value(c, sp->rows, l), cols = lq_arch_sym_value(c, sp->cols, l);
    if (sp->flags & LQ_RF_PER_EXPERT) return bind_experts(m, l, sp, rows, cols);
    char mod[192], name[224];
    lq_arch_module(m->arch, sp->role, l, mod, sizeof mod); /* the name the linear hook and imatrix use */
    snprintf(name, sizeof name, "%s.weight", mod);
    if (sp->flags & LQ_RF_OPTIONAL) {
        bool present = ri->kind == LQ_KIND_LINEAR ? has_linear(m->ckpt, mod) : lq_checkpoint_find(m->ckpt, name) != NULL;
        if (!present) return LQ_OK;
    }
    if (ri->kind == LQ_KIND_NORM) return bind_norm(m, name, rows, &L->vec[sp->role]);
    return bind_linear_module(m, sp, mod, rows, cols, &L->w[sp->role], &L->bias[sp->role]);
}

/* Angle per position of each rotary pair, with the config's frequency scaling and, when ff is
 * not NULL, llama.cpp's frequency factors (ggml_rope_ext divides theta by freq_factors[i]). */
static float *rope_inv_freq_new(const lq_config *cfg, const float *ff) {
    int half = cfg->head_dim / 2;
    float *f = malloc((size_t)half * sizeof *f);
    if (!f) return NULL;
    for (int i = 0; i < half; i++) {
        double freq = 1.0 / pow((double)cfg->rope_theta, (2.0 * i) / (double)cfg->head_dim);
        if (cfg->rope_type == LQ_ROPE_LINEAR) {
            freq /= cfg->rope_scale_factor; /* HF _compute_linear_scaling_rope_parameters */
        } else if (cfg->rope_type == LQ_ROPE_LLAMA3) {
            /* HF _compute_llama3_parameters: long wavelengths are slowed by `factor`, short ones
             * kept, the band in between interpolated. */
            double old_ctx = cfg->rope_orig_max_pos > 0 ? cfg->rope_orig_max_pos : 8192;
            double lo = cfg->rope_low_freq_factor, hi = cfg->rope_high_freq_factor;
            double low_wavelen = old_ctx / lo, high_wavelen = old_ctx / hi;
            double wavelen = 2.0 * M_PI / freq;
            if (wavelen > low_wavelen) {
                freq /= cfg->rope_scale_factor;
            } else if (wavelen >= high_wavelen) {
                double smooth = (old_ctx / wavelen - lo) / (hi - lo);
                freq = (1.0 - smooth) * freq / cfg->rope_scale_factor + smooth * freq;
            }
        }
        if (ff) freq /= (double)ff[i];
        f[i] = (float)freq;
    }
    return f;
}

/* The global RoPE table: llama.cpp's frequency factors (a GGUF's rope_freqs.weight, Llama 3's
 * scaling) when the checkpoint has them. A config that scales RoPE the llama3 way too would scale
 * it twice: refused. */
static lq_status bind_rope(lq_model *m) {
    const lq_config *c = &m->cfg;
    float *f = malloc((size_t)(c->head_dim / 2 + 1) * sizeof *f);
    bool present = false;
    if (!f) return lq_fail(LQ_ERR_NOMEM, "out of memory");
    lq_status s = lq_checkpoint_rope_freqs(m->ckpt, f, &present);
    if (s == LQ_OK && present && c->rope_type == LQ_ROPE_LLAMA3)
        s = lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s' and a llama3 rope_scaling in the config would both scale "
                    "RoPE", lq_checkpoint_path(m->ckpt), LQ_ROPE_FREQS_TENSOR);
    if (s == LQ_OK && !(m->rope_inv_freq[LQ_ROPE_GLOBAL] = rope_inv_freq_new(c, present ? f : NULL)))
        s = lq_fail(LQ_ERR_NOMEM, "out of memory");
    free(f);
    return s;
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* The ops the layer program will run for m (backend.h; checked against a table per session). */
static uint64_t ops_needed(const lq_model *m) {
    uint64_t ops = 1ull << LQ_OP_EMBED | 1ull << LQ_OP_MATMUL | 1ull << LQ_OP_RMSNORM | 1ull << LQ_OP_ROPE |
                   1ull << LQ_OP_ATTENTION | 1ull << LQ_OP_ADD;
    ops |= 1ull << (m->arch->act == LQ_ACT_GELU_TANH ? LQ_OP_GEGLU_TANH : LQ_OP_SWIGLU);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        if (m->layers[l].window > 0) ops |= 1ull << LQ_OP_ATTENTION_WINDOW;
        if (m->arch->features & LQ_AF_EMBED_SCALE) ops |= 1ull << LQ_OP_SCALE;
        if (m->layers[l].n_experts > 0) ops |= 1ull << LQ_OP_ROUTER_TOPK | 1ull << LQ_OP_SCALE;
        for (int r = 0; r < LQ_ROLE_COUNT; r++)
            if (m->layers[l].bias[r]) ops |= 1ull << LQ_OP_ADD_BIAS;
    }
    return ops;
}

static lq_status bind_layers(lq_model *m) {
    const lq_config *c = &m->cfg;
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->layers) return lq_fail(LQ_ERR_NOMEM, "out of memory");
    for (int l = 0; l < c->n_layers; l++) {
        lq_layer *L = &m->layers[l];
        L->n_heads = lq_config_layer_heads(c, l);
        L->n_kv_heads = lq_config_layer_kv_heads(c, l);
        L->hidden = lq_config_layer_hidden(c, l);
        L->window = lq_config_layer_window(c, l);
        L->rope = L->window > 0 && c->rope_local_theta > 0.0f ? LQ_ROPE_LOCAL : LQ_ROPE_GLOBAL;
        L->n_experts = lq_config_layer_moe(c, l) ? c->n_experts : 0;
        for (int i = 0; i < m->arch->n_roles; i++) LQ_TRY(bind_role(m, l, &m->arch->roles[i]));
        if (L->n_experts > 0) {
            m->moe_hidden_max = max64(m->moe_hidden_max, max64(c->expert_hidden_dim, c->shared_hidden_dim));
            if (!L->xw[LQ_ROLE_EXP_GATE] || !L->xw[LQ_ROLE_EXP_UP] || !L->xw[LQ_ROLE_EXP_DOWN] ||
                !L->w[LQ_ROLE_ROUTER].data)
                return lq_fail(LQ_ERR_FORMAT, "%s: layer %d: config.json gives it %d experts, but %s has no "
                               "router or experts", lq_checkpoint_path(m->ckpt), l, L->n_experts, m->arch->hf_name);
        }
        m->q_dim_max = max64(m->q_dim_max, (int64_t)L->n_heads * c->head_dim);
        m->kv_dim_max = max64(m->kv_dim_max, (int64_t)L->n_kv_heads * c->head_dim);
        m->hidden_max = max64(m->hidden_max, L->hidden);
    }
    return LQ_OK;
}

lq_status lq_model_bind(lq_model *m) {
    const lq_config *c = &m->cfg;
    const char *path = lq_checkpoint_path(m->ckpt);
    LQ_TRY(lq_arch_for_config(c, path, &m->arch));
    for (int i = 0; i < m->arch->n_roles; i++)
        if (!(lq_program_roles() & (1u << m->arch->roles[i].role)))
            return lq_fail(LQ_ERR_UNSUPPORTED, "%s: %s: the layer program has no step for role %s", path,
                           m->arch->hf_name, lq_role_get(m->arch->roles[i].role)->name);
    if (c->dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 || c->head_dim <= 0 ||
        (c->head_dim & 1) || c->vocab_size <= 0 || c->hidden_dim <= 0 || c->n_heads % c->n_kv_heads != 0)
        return lq_fail(LQ_ERR_FORMAT, "%s: inconsistent model configuration", path);
    LQ_TRY(check_tensor(m->ckpt, "model.embed_tokens.weight", c->vocab_size, c->dim));
    LQ_TRY(lq_bind_linear(m->ckpt, "model.embed_tokens", c->vocab_size, c->dim, m->owned, &m->tok_emb));
    LQ_TRY(bind_layers(m));
    LQ_TRY(bind_norm(m, "model.norm.weight", c->dim, &m->final_norm));
    /* The checkpoint marked a model without any lm_head tensor (float, or quantized:
     * "lm_head.weight_scale") as tied. */
    if (c->tied_embeddings || !has_linear(m->ckpt, "lm_head")) {
        m->output = m->tok_emb;
    } else {
        LQ_TRY(check_tensor(m->ckpt, "lm_head.weight", c->vocab_size, c->dim));
        LQ_TRY(lq_bind_linear(m->ckpt, "lm_head", c->vocab_size, c->dim, m->owned, &m->output));
    }
    LQ_TRY(bind_rope(m));
    m->rope_inv_freq[LQ_ROPE_LOCAL] = m->rope_inv_freq[LQ_ROPE_GLOBAL];
    if (c->rope_local_theta > 0.0f) { /* Gemma 3's sliding layers: their own base, no scaling */
        lq_config local = *c;
        local.rope_theta = c->rope_local_theta;
        local.rope_type = LQ_ROPE_DEFAULT;
        m->rope_inv_freq[LQ_ROPE_LOCAL] = rope_inv_freq_new(&local, NULL);
        if (!m->rope_inv_freq[LQ_ROPE_LOCAL]) return lq_fail(LQ_ERR_NOMEM, "out of memory");
    }
    /* torch multiplies f32 scores by the Python double query_pre_attn_scalar**-0.5 (as f32) and
     * the embedding by torch.tensor(hidden_size**0.5) cast to the weight dtype (f32 here) */
    m->attn_scale = (float)(1.0 / sqrt(c->attn_scalar > 0.0f ? (double)c->attn_scalar : (double)c->head_dim));
    m->embed_scale = (float)sqrt((double)c->dim);
    m->ops_needed = ops_needed(m);
    return LQ_OK;
}
