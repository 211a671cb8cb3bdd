/* ct_kv.c - a calibrated KV-cache scheme in the compressed-tensors layout: the kv_cache_scheme
 * of quantization_config and the k_scale / v_scale tensors of each attention module, as
 * llm-compressor's QuantizationModifier(kv_cache_scheme=...) writes them (compressed-tensors
 * 0.19: initialize_qparams gives a "tensor" scale the shape [1], an "attn_head" scale
 * [n_kv_heads, 1, 1], in the model's dtype), and the calibration that measures them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "ct_internal.h"
#include "libquant/lq_calib.h"
#include "libquant/lq_gptq.h"
#include "lq_blocks.h"
#include "model_internal.h"

void lq_ptq_kv_free(lq_ptq_kv *kv) {
    if (!kv) return;
    free(kv->k_scale);
    free(kv->v_scale);
    free(kv->modules);
    kv->k_scale = kv->v_scale = NULL;
    kv->modules = NULL;
}

json_t *lq_ct_kv_scheme_json(const lq_ptq_kv *kv) {
    return json_pack("{s:i, s:s, s:b, s:n, s:s, s:n, s:b, s:n, s:n, s:n, s:s, s:{}}", "num_bits", 8, "type",
                     kv->is_float ? "float" : "int", "symmetric", 1, "group_size", "strategy",
                     kv->per_head ? "attn_head" : "tensor", "block_structure", "dynamic", 0, "actorder",
                     "scale_dtype", "zp_dtype", "observer", "minmax", "observer_kwargs");
}

static int64_t per_tensor(const lq_ptq_kv *kv) { return kv->per_head ? kv->n_kv_heads : 1; }

lq_status lq_ct_kv_declare(lq_st_writer *w, const lq_ptq_kv *kv) {
    char name[256];
    const int64_t heads[3] = {kv->n_kv_heads, 1, 1}, one = 1;
    for (int l = 0; l < kv->n_layers; l++)
        for (int v = 0; v < 2; v++) {
            snprintf(name, sizeof name, "%s.%s", kv->modules[l], v ? "v_scale" : "k_scale");
            LQ_TRY(kv->per_head ? lq_st_writer_declare(w, name, LQ_DTYPE_F32, 3, heads)
                                : lq_st_writer_declare(w, name, LQ_DTYPE_F32, 1, &one));
        }
    return LQ_OK;
}

lq_status lq_ct_kv_write(lq_st_writer *w, const lq_ptq_kv *kv) {
    const int64_t n = per_tensor(kv);
    for (int l = 0; l < kv->n_layers; l++) {
        LQ_TRY(lq_st_writer_write(w, kv->k_scale + l * n, (size_t)n * sizeof(float)));
        LQ_TRY(lq_st_writer_write(w, kv->v_scale + l * n, (size_t)n * sizeof(float)));
    }
    return LQ_OK;
}

/* ---- calibration ------------------------------------------------------------------------------ */

lq_status lq_kv_calibrate(const char *model_path, const lq_calib_source *src, lq_pool *pool, bool is_float,
                          bool per_head, lq_ptq_kv *out) {
    memset(out, 0, sizeof *out);
    lq_model *m = NULL;
    lq_tokenizer *tok = NULL;
    lq_session *s = NULL;
    lq_calib_set set = {0};
    float *ka = NULL, *va = NULL, *logits = NULL;
    LQ_TRY(lq_model_load(model_path, &m));
    const lq_config *c = lq_model_config(m);
    const int nl = c->n_layers, nh = c->n_kv_heads;
    lq_status st = lq_tokenizer_load_for_model(model_path, src->tokenizer, c->vocab_size, &tok);
    if (st == LQ_OK)
        st = lq_calib_samples(tok, src->files, src->n_files, src->n_samples > 0 ? src->n_samples : 128,
                              src->sample_len > 0 ? src->sample_len : 512, src->seed, &set);
    if (st == LQ_OK) st = lq_session_create(m, set.len, pool, &s);
    ka = calloc((size_t)nl * nh, sizeof *ka);
    va = calloc((size_t)nl * nh, sizeof *va);
    logits = malloc((size_t)c->vocab_size * sizeof *logits);
    out->k_scale = malloc((size_t)nl * nh * sizeof *out->k_scale);
    out->v_scale = malloc((size_t)nl * nh * sizeof *out->v_scale);
    out->modules = calloc((size_t)nl, sizeof *out->modules);
    if (st == LQ_OK && (!ka || !va || !logits || !out->k_scale || !out->v_scale || !out->modules))
        st = lq_fail(LQ_ERR_NOMEM, "out of memory");
    /* The cache rows hold K after RoPE (and the k norm) and V: what the cache scales must cover. */
    for (int64_t i = 0; st == LQ_OK && i < set.n_samples; i++) {
        st = lq_forward(s, set.ids + i * set.len, set.len, 0, logits, false);
        if (st == LQ_OK) st = lq_session_kv_absmax(s, set.len, ka, va);
    }
    /* compressed-tensors' symmetric minmax scale: max|x| / (q_max - q_min) / 2, i.e. / 448 for
     * E4M3 and / 127.5 for int8 (whose codes then clamp to [-128, 127]) */
    const float top = is_float ? LQ_E4M3_MAX : 127.5f;
    for (int l = 0; st == LQ_OK && l < nl; l++) {
        if (!lq_arch_attn_module(m->arch, l, out->modules[l], sizeof out->modules[l])) {
            st = lq_fail(LQ_ERR_UNSUPPORTED, "%s: no attention module name for layer %d", model_path, l);
            break;
        }
        float kt = 0, vt = 0;
        for (int h = 0; h < nh; h++) kt = fmaxf(kt, ka[l * nh + h]), vt = fmaxf(vt, va[l * nh + h]);
        /* a head the text never excites (max 0) gets scale 1: any scale encodes its zeros */
        for (int h = 0; h < (per_head ? nh : 1); h++) {
            const float k = per_head ? ka[l * nh + h] : kt, v = per_head ? va[l * nh + h] : vt;
            out->k_scale[l * (per_head ? nh : 1) + h] = k > 0 ? k / top : 1.0f;
            out->v_scale[l * (per_head ? nh : 1) + h] = v > 0 ? v / top : 1.0f;
        }
    }
    if (st == LQ_OK) {
        out->is_float = is_float;
        out->per_head = per_head;
        out->n_layers = nl;
        out->n_kv_heads = nh;
    } else {
        lq_ptq_kv_free(out);
    }
    free(ka);
    free(va);
    free(logits);
    lq_calib_set_free(&set);
    lq_session_free(s);
    lq_tokenizer_free(tok);
    lq_model_free(m);
    return st;
}
