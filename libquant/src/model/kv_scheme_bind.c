/* kv_scheme_bind.c - a checkpoint's quantized KV cache (compressed-tensors' kv_cache_scheme, as
 * llm-compressor writes it and vLLM runs it) becomes the model's default cache: q8 for int,
 * fp8 for float, with the static scales of each attention module's k_scale / v_scale tensors
 * (one value per tensor, or one per kv head), or per-token scales for a dynamic scheme. The
 * tools' --kv-cache still chooses another type for a run. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libquant/lq_ptq.h"
#include "model_internal.h"

/* The n_kv_heads scales of tensor `<attention module>.<part>` of layer l into out. */
static lq_status read_scales(const lq_model *m, int l, const char *part, float *out) {
    char name[256];
    if (!lq_arch_attn_module(m->arch, l, name, sizeof name))
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: kv_cache_scheme: no attention module name for layer %d",
                       lq_checkpoint_path(m->ckpt), l);
    const size_t len = strlen(name);
    snprintf(name + len, sizeof name - len, ".%s", part);
    const lq_tensor *t = lq_checkpoint_find(m->ckpt, name);
    if (!t)
        return lq_fail(LQ_ERR_FORMAT, "%s: kv_cache_scheme has static scales but tensor '%s' is missing",
                       lq_checkpoint_path(m->ckpt), name);
    const int nh = m->cfg.n_kv_heads;
    const int64_t n = lq_tensor_numel(t);
    const bool is_float = t->dtype == LQ_DTYPE_F32 || t->dtype == LQ_DTYPE_F16 || t->dtype == LQ_DTYPE_BF16;
    if (!is_float || (n != 1 && n != nh))
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': a KV cache scale must be 1 or %d (kv heads) float values, "
                       "not %lld of %s", lq_checkpoint_path(m->ckpt), name, nh, (long long)n, lq_dtype_name(t->dtype));
    for (int h = 0; h < nh; h++) {
        out[h] = lq_tensor_get_f32(t, n == 1 ? 0 : h);
        if (!(out[h] > 0.0f) || !isfinite(out[h]))
            return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': scale %g (must be > 0 and finite)",
                           lq_checkpoint_path(m->ckpt), name, (double)out[h]);
    }
    return LQ_OK;
}

lq_status lq_model_bind_kv_scheme(lq_model *m) {
    const char *cj = lq_checkpoint_config_json(m->ckpt);
    if (!cj) return LQ_OK;
    lq_ct_config ct;
    lq_status s = lq_ct_config_parse(cj, lq_checkpoint_path(m->ckpt), &ct);
    if (s == LQ_ERR_NOT_FOUND) return LQ_OK; /* the weight binders judged any other failure */
    if (s != LQ_OK || !ct.kv.present) return s;
    m->kv_type = ct.kv.is_float ? LQ_KV_FP8 : LQ_KV_Q8;
    if (ct.kv.dynamic) return LQ_OK;
    const int nl = m->cfg.n_layers, nh = m->cfg.n_kv_heads;
    float *k = malloc((size_t)nl * (size_t)nh * sizeof *k), *v = malloc((size_t)nl * (size_t)nh * sizeof *v);
    s = k && v ? LQ_OK : lq_fail(LQ_ERR_NOMEM, "out of memory");
    for (int l = 0; s == LQ_OK && l < nl; l++) {
        s = read_scales(m, l, "k_scale", k + (size_t)l * nh);
        if (s == LQ_OK) s = read_scales(m, l, "v_scale", v + (size_t)l * nh);
    }
    if (s == LQ_OK) s = lq_model_set_kv_scales(m, k, v);
    free(k);
    free(v);
    return s;
}
