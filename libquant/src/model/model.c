/* model.c - bind a Llama-family checkpoint into an lq_model (weight views + small buffers). */
#include "libquant/lq_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "weight_bind.h"

/* Angle per position of each rotary pair, with Llama 3 frequency scaling when configured. */
static float *rope_inv_freq_new(const lq_config *cfg) {
    int half = cfg->head_dim / 2;
    float *f = malloc((size_t)half * sizeof *f);
    if (!f) return NULL;
    for (int i = 0; i < half; i++) {
        double freq = 1.0 / pow((double)cfg->rope_theta, (2.0 * i) / (double)cfg->head_dim);
        if (cfg->rope_scale_factor > 0.0f) {
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
        f[i] = (float)freq;
    }
    return f;
}

static lq_status bind_layer(lq_model *m, int l) {
    const lq_config *c = &m->cfg;
    const lq_checkpoint *ck = m->ckpt;
    lq_layer *L = &m->layers[l];
    /* Per-layer sizes: a structurally pruned model's layers may differ. */
    int64_t q_dim = (int64_t)lq_config_layer_heads(c, l) * c->head_dim;
    int64_t kv_dim = (int64_t)lq_config_layer_kv_heads(c, l) * c->head_dim;
    int64_t hidden = lq_config_layer_hidden(c, l);
    char p[256];
    snprintf(p, sizeof p, "model.layers.%d.input_layernorm.weight", l);
    LQ_TRY(lq_bind_vector_f32(ck, p, c->dim, &L->attn_norm));
    snprintf(p, sizeof p, "model.layers.%d.post_attention_layernorm.weight", l);
    LQ_TRY(lq_bind_vector_f32(ck, p, c->dim, &L->ffn_norm));
    const struct { const char *name; lq_weight *w; int64_t rows, cols; } lin[] = {
        {"self_attn.q_proj", &L->wq, q_dim, c->dim},
        {"self_attn.k_proj", &L->wk, kv_dim, c->dim},
        {"self_attn.v_proj", &L->wv, kv_dim, c->dim},
        {"self_attn.o_proj", &L->wo, c->dim, q_dim},
        {"mlp.gate_proj", &L->w_gate, hidden, c->dim},
        {"mlp.up_proj", &L->w_up, hidden, c->dim},
        {"mlp.down_proj", &L->w_down, c->dim, hidden},
    };
    for (size_t i = 0; i < sizeof lin / sizeof lin[0]; i++) {
        snprintf(p, sizeof p, "model.layers.%d.%s", l, lin[i].name);
        LQ_TRY(lq_bind_linear(ck, p, lin[i].rows, lin[i].cols, m->owned, lin[i].w));
    }
    return LQ_OK;
}

static lq_status model_bind(lq_model *m) {
    const lq_config *c = &m->cfg;
    if (c->dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 ||
        c->head_dim <= 0 || (c->head_dim & 1) || c->vocab_size <= 0 || c->hidden_dim <= 0 ||
        c->n_heads % c->n_kv_heads != 0)
        return lq_fail(LQ_ERR_FORMAT, "%s: inconsistent model configuration", lq_checkpoint_path(m->ckpt));
    LQ_TRY(lq_bind_linear(m->ckpt, "model.embed_tokens", c->vocab_size, c->dim, m->owned, &m->tok_emb));
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->layers) return lq_fail(LQ_ERR_NOMEM, "out of memory");
    for (int l = 0; l < c->n_layers; l++) LQ_TRY(bind_layer(m, l));
    LQ_TRY(lq_bind_vector_f32(m->ckpt, "model.norm.weight", c->dim, &m->final_norm));
    /* lq_ckpt_validate_llama marked a model without any lm_head tensor (float, or quantized:
     * "lm_head.weight_scale") as tied. */
    if (c->tied_embeddings ||
        (!lq_checkpoint_find(m->ckpt, "lm_head.weight") && !lq_checkpoint_find(m->ckpt, "lm_head.weight_scale")))
        m->output = m->tok_emb;
    else
        LQ_TRY(lq_bind_linear(m->ckpt, "lm_head", c->vocab_size, c->dim, m->owned, &m->output));
    m->rope_inv_freq = rope_inv_freq_new(c);
    if (!m->rope_inv_freq) return lq_fail(LQ_ERR_NOMEM, "out of memory");
    return LQ_OK;
}

lq_status lq_model_load(const char *path, lq_model **out) {
    *out = NULL;
    lq_model *m = calloc(1, sizeof *m);
    if (m && !(m->owned = calloc(1, sizeof *m->owned))) {
        free(m);
        m = NULL;
    }
    if (!m) return lq_fail(LQ_ERR_NOMEM, "out of memory");
    lq_status s = lq_checkpoint_open(path, &m->ckpt);
    if (s == LQ_OK) {
        m->cfg = *lq_checkpoint_config(m->ckpt);
        s = model_bind(m);
    }
    if (s != LQ_OK) {
        lq_model_free(m);
        return s;
    }
    *out = m;
    return LQ_OK;
}

void lq_model_free(lq_model *m) {
    if (!m) return;
    if (m->layers) {
        for (int l = 0; l < m->cfg.n_layers; l++) {
            free(m->layers[l].attn_norm);
            free(m->layers[l].ffn_norm);
        }
        free(m->layers);
    }
    free(m->final_norm);
    free(m->rope_inv_freq);
    lq_backend_model_free(m->dev);
    lq_bind_owner_free(m->owned);
    lq_checkpoint_close(m->ckpt);
    free(m);
}

uint64_t lq_model_weight_bytes_per_token(const lq_model *m) {
    const lq_config *c = &m->cfg;
    uint64_t b = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const lq_layer *L = &m->layers[l];
        const lq_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) b += lq_weight_bytes(ws[i]);
        b += 2ull * c->dim * sizeof(float); /* the two norm vectors */
    }
    b += (uint64_t)m->tok_emb.row_bytes; /* one embedding row */
    b += lq_weight_bytes(&m->output);
    b += (uint64_t)c->dim * sizeof(float);
    return b;
}

int64_t lq_model_param_count(const lq_model *m) {
    const lq_config *c = &m->cfg;
    int64_t n = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const lq_layer *L = &m->layers[l];
        const lq_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) n += ws[i]->rows * ws[i]->cols;
        n += 2 * (int64_t)c->dim;
    }
    n += m->tok_emb.rows * m->tok_emb.cols + c->dim;
    if (m->output.data != m->tok_emb.data) n += m->output.rows * m->output.cols;
    return n;
}
