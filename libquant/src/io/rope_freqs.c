/* rope_freqs.c - llama.cpp's RoPE frequency factors (the "rope_freqs.weight" tensor) and the
 * Llama 3 rope_scaling they encode.
 *
 * convert_hf_to_gguf.py (LlamaModel.generate_extra_tensors, llama.cpp conversion/llama.py) turns
 * rope_scaling {"rope_type": "llama3", factor F, low_freq_factor lo, high_freq_factor hi} into one
 * factor per rotary pair i, with freq_i = 1 / base^(2i / d) and wavelen_i = 2 pi / freq_i:
 *   wavelen_i <  old_ctx / hi  ->  1                      (short wavelengths kept)
 *   wavelen_i >  old_ctx / lo  ->  F                      (long ones slowed F times)
 *   otherwise                  ->  1 / ((1 - s) / F + s),  s = (old_ctx / wavelen_i - lo) / (hi - lo)
 * and llama.cpp turns pair i by pos * freq_i / factor_i (ggml_rope_ext's freq_factors), which is
 * transformers' _compute_llama3_parameters written as a divisor. Its torch code runs in f32:
 * arange(0, d, 2, float32) / d, base ** that (torch's f32 pow, within 1 ulp of the correctly
 * rounded value computed here), and `a / t` is t.reciprocal() * a (torch's Tensor.__rtruediv__),
 * so those steps are written as a reciprocal and a product below; scalars meet f32 tensors as f32.
 * The result equals the converter's to the last bit unless torch's pow rounds the other way (then
 * a band factor can move by a few ulp): test_rope_freqs pins torch's bits for four configs
 * (scripts/rope_freqs/make_vectors.py). Built with -ffp-contract=off (CMakeLists.txt): no step
 * may fuse into an FMA.
 *
 * old_ctx is rope_scaling's original_max_position_embeddings (8192 when absent), as transformers
 * reads it. llama.cpp's converter reads a top-level "original_max_position_embeddings" instead
 * (also 8192 when absent): the same number for every Meta Llama 3.x config, which keeps it inside
 * rope_scaling; a config that differs gets the factors its transformers model runs with.
 *
 * The inverse (GGUF -> HF) cannot always see the parameters: only lo / old_ctx and hi / old_ctx
 * shape the factors, and a threshold falling between two pairs is only bracketed. It fits the
 * band (2+ factors strictly between 1 and F), or picks thresholds inside the brackets, takes
 * low_freq_factor 1 (transformers' default) and an integer old_ctx, and keeps the result only if
 * it reproduces every factor (RECOVER_RTOL); otherwise the tensor is refused by name.
 */
#include "checkpoint_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Relative distance allowed between a stored factor and the one recomputed from the recovered
 * rope_scaling: the converter's f32 arithmetic (torch's pow within 1 ulp, ~3 roundings after it,
 * a difference near s = 0 that loses a few bits) keeps it under ~1e-6; 4e-6 leaves room. */
#define RECOVER_RTOL 4e-6

lq_status lq_checkpoint_rope_freqs(const lq_checkpoint *c, float *out, bool *present) {
    const lq_config *cfg = lq_checkpoint_config(c);
    const lq_tensor *t = lq_checkpoint_find(c, LQ_ROPE_FREQS_TENSOR);
    *present = t != NULL;
    if (!t) return LQ_OK;
    const int half = cfg->head_dim / 2;
    if (t->dtype != LQ_DTYPE_F32 || t->ndim != 1 || t->shape[0] != half)
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': llama.cpp's RoPE frequency factors must be F32 with "
                       "head_dim / 2 = %d values (got %s, %d-D, %lld values)", lq_checkpoint_path(c),
                       LQ_ROPE_FREQS_TENSOR, half, lq_dtype_name(t->dtype), t->ndim,
                       (long long)(t->ndim >= 1 ? t->shape[0] : 0));
    lq_tensor_read_f32(t, 0, half, out);
    for (int i = 0; i < half; i++)
        if (!(isfinite(out[i]) && out[i] > 0.0f))
            return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': factor %d is %g (must be finite and > 0)",
                           lq_checkpoint_path(c), LQ_ROPE_FREQS_TENSOR, i, (double)out[i]);
    return LQ_OK;
}

/* The converter's f32 freq and wavelen of pair i (see the header). */
static float conv_freq(float base, int i, int d) {
    float x = (float)(2 * i) / (float)d;
    float p = (float)pow((double)base, (double)x);
    return 1.0f / p;
}

static float conv_wavelen(float freq) { return (1.0f / freq) * (float)(2.0 * M_PI); }

/* One factor from explicit parameters (old_ctx, lo, hi as the converter holds them: Python
 * numbers, so thresholds and hi - lo are formed in double and meet the f32 tensor as f32). */
static float conv_factor(float wavelen, double factor, double lo, double hi, double old_ctx) {
    if (wavelen < (float)(old_ctx / hi)) return 1.0f;
    if (wavelen > (float)(old_ctx / lo)) return (float)factor;
    float smooth = ((1.0f / wavelen) * (float)old_ctx - (float)lo) / (float)(hi - lo);
    return 1.0f / ((1.0f - smooth) / (float)factor + smooth);
}

void lq_rope_llama3_factors(const lq_config *cfg, float *out) {
    const int d = cfg->head_dim;
    const double old_ctx = cfg->rope_orig_max_pos > 0 ? cfg->rope_orig_max_pos : 8192;
    for (int i = 0; i < d / 2; i++)
        out[i] = conv_factor(conv_wavelen(conv_freq(cfg->rope_theta, i, d)), cfg->rope_scale_factor,
                             cfg->rope_low_freq_factor, cfg->rope_high_freq_factor, old_ctx);
}

/* Whether (factor, lo, hi, old_ctx) gives every stored factor within RECOVER_RTOL. */
static bool reproduces(const float *f, const float *wl, int half, double F, double lo, double hi, double old_ctx) {
    if (!(hi > lo) || !(lo > 0.0) || !(old_ctx >= 1.0) || old_ctx > (double)(1 << 30)) return false;
    for (int i = 0; i < half; i++) {
        double r = conv_factor(wl[i], F, lo, hi, old_ctx);
        if (fabs(r - (double)f[i]) > RECOVER_RTOL * (double)f[i]) return false;
    }
    return true;
}

/* Thresholds as 1 / wavelen: u = lo / old_ctx (below it: F), v = hi / old_ctx (above it: 1). */
static bool thresholds(const float *f, const double *x, int half, double F, double *u, double *v) {
    /* pairs run from short to long wavelengths: class 1, then the band, then F */
    int n1 = 0, nF = 0;
    while (n1 < half && f[n1] == 1.0f) n1++;
    while (nF < half - n1 && (double)f[half - 1 - nF] == F) nF++;
    const int b0 = n1, b1 = half - nF; /* band [b0, b1) */
    for (int i = b0; i < b1; i++) {
        double lo = F < 1.0 ? F : 1.0, hi = F < 1.0 ? 1.0 : F;
        if (!((double)f[i] > lo && (double)f[i] < hi)) return false; /* a 1 or F out of order */
    }
    const double xF = nF ? x[b1] : 0.0;                   /* largest 1/wavelen that gets F */
    const double x1 = n1 ? x[n1 - 1] : 2.0 * x[0] + 1.0;  /* smallest that gets 1 */
    /* smooth of a band factor: 1/f = (1 - s) / F + s */
    double s[2] = {0};
    const int nb = b1 - b0;
    for (int k = 0; k < 2 && nb; k++) {
        int i = k ? b1 - 1 : b0;
        s[k] = (1.0 / (double)f[i] - 1.0 / F) / (1.0 - 1.0 / F);
    }
    if (nb >= 2) { /* s = (x - u) / (v - u): a line through the band's two ends */
        double a = (s[0] - s[1]) / (x[b0] - x[b1 - 1]);
        if (!(a > 0.0)) return false;
        *u = x[b0] - s[0] / a;
        *v = *u + 1.0 / a;
    } else if (nb == 1) { /* widest-but-safe band through the one point */
        double x0 = x[b0], s0 = s[0], w = INFINITY;
        if (!(s0 > 0.0 && s0 < 1.0)) return false;
        w = fmin(w, (x0 - xF) / s0);
        w = fmin(w, (x1 - x0) / (1.0 - s0));
        w *= 0.5;
        *u = x0 - s0 * w;
        *v = x0 + (1.0 - s0) * w;
    } else { /* no band: both thresholds inside the gap */
        double gap = x1 - xF;
        *u = xF + gap / 3.0;
        *v = xF + 2.0 * gap / 3.0;
    }
    return *u > 0.0 && *v > *u;
}

lq_status lq_rope_llama3_from_factors(const float *f, lq_config *cfg, const char *path) {
    const int half = cfg->head_dim / 2;
    bool all_one = true;
    for (int i = 0; i < half; i++) all_one &= f[i] == 1.0f;
    if (all_one) return LQ_OK;
    float *wl = malloc((size_t)half * sizeof *wl);
    double *x = malloc((size_t)half * sizeof *x);
    bool ok = wl && x && half > 0;
    for (int i = 0; ok && i < half; i++) {
        wl[i] = conv_wavelen(conv_freq(cfg->rope_theta, i, cfg->head_dim));
        x[i] = 1.0 / (double)wl[i];
        ok = isfinite(x[i]) && (i == 0 || x[i] < x[i - 1]);
    }
    const double F = ok ? (double)f[half - 1] : 0.0;
    double u = 0, v = 0;
    ok = ok && F != 1.0 && thresholds(f, x, half, F, &u, &v);
    double old_ctx = 0, lo = 0, hi = 0;
    if (ok) {
        /* low_freq_factor 1 (transformers' default), an integer original context; then round the
         * factors to 3 decimals where that still reproduces (Meta's 1 / 4 come back exact) */
        old_ctx = fmax(1.0, round(1.0 / u));
        lo = round(u * old_ctx * 1000.0) / 1000.0;
        hi = round(v * old_ctx * 1000.0) / 1000.0;
        if (!reproduces(f, wl, half, F, lo, hi, old_ctx)) {
            lo = u * old_ctx;
            hi = v * old_ctx;
            ok = reproduces(f, wl, half, F, lo, hi, old_ctx);
        }
    }
    free(wl);
    free(x);
    if (!ok)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: tensor '%s': these RoPE frequency factors are not a llama3 "
                       "rope_scaling (no factor / low_freq_factor / high_freq_factor / "
                       "original_max_position_embeddings gives them), so a Hugging Face config cannot "
                       "carry them", path, LQ_ROPE_FREQS_TENSOR);
    cfg->rope_type = LQ_ROPE_LLAMA3;
    cfg->rope_scale_factor = (float)F;
    cfg->rope_low_freq_factor = (float)lo;
    cfg->rope_high_freq_factor = (float)hi;
    cfg->rope_orig_max_pos = (int)old_ctx;
    return LQ_OK;
}
