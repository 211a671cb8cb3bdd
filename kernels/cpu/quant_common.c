/* quant_common.c - round-to-nearest quantization shared by every quantized format's quantize_ref:
 * scale/zero-point rules, code rounding, and the clipping-ratio search.
 *
 * The rules are compressed-tensors' (quantization/utils/helpers.py calculate_qparams and
 * quantization/lifecycle/forward.py _quantize), so our files carry the codes llm-compressor
 * would write for an f32 model:
 *   - the observed range always includes 0: lo = min(min x, 0), hi = max(max x, 0);
 *   - B-bit integers: qmin = -2^(B-1), qmax = 2^(B-1) - 1, range = qmax - qmin;
 *     symmetric: scale = max(|lo|, |hi|) / (range / 2)  (int8: amax / 127.5, int4: amax / 7.5),
 *     zero = 0; asymmetric: scale = (hi - lo) / range, zero = round(clamp(qmin - lo / scale)),
 *     computed with the scale before it is rounded to its storage dtype (as compressed-tensors);
 *   - FP8 E4M3: scale = amax / 448 (its symmetric rule with range 896);
 *   - the scale is rounded to the storage dtype (p->scale_dtype), and a zero scale becomes that
 *     dtype's epsilon (f32 2^-23, f16 2^-10, bf16 2^-7), as _get_dtype_eps does;
 *   - code = round(clamp(x / scale + zero, qmin, qmax)) with torch.round's round-half-to-even,
 *     using the rounded scale, so the stored scale is the one the codes were made with.
 * Deviations: an all-zero asymmetric group (scale 0 before the epsilon, where compressed-tensors
 * divides 0 by 0) gets zero = qmin, the limit of its rule as hi -> 0; an asymmetric group whose
 * width hi - lo overflows f32 (finite weights near +-3.4e38, where torch writes an inf scale)
 * takes the width in double (the scale is finite).
 *
 * p->rounding picks the symmetric scale rule: LQ_ROUND_AMAX is the compressed-tensors one above;
 * LQ_ROUND_SIGNED_MAX is llama.cpp's Q4_0 (quantize_row_q4_0_ref): m = the first element of
 * largest magnitude, scale = m / qmin (m / -8, m / -128), so m itself is code qmin exactly and
 * the other sign keeps qmax steps; the scale is negative when m > 0 (w = q * scale still holds).
 * Codes are then our round(clamp(x / scale)) (Q4_0 truncates x * (1/d) + 8.5: the two differ
 * only at exact ties).
 *
 * Clip search (p->clip_search): for each group, ratios 1.00, 0.99, ..., 0.50 shrink the range
 * (lo, hi and m alike) and the ratio whose codes give the least weighted squared error wins
 * (clip_weights says which weights); a ratio is taken only when it lowers that error strictly,
 * so no clipping (ratio 1) is never beaten by a worse one, ties keep the larger ratio and the
 * result is deterministic. p->clip_stats, when set, sums what was chosen.
 */
#include <math.h>
#include <stdlib.h>

#include "kern_internal.h"
#include "lq_blocks.h"

#define CLIP_STEPS 51 /* ratios 1.00 down to 0.50 in steps of 0.01 */

float lq_quant_round_scale(float s, lq_scale_dtype d) {
    switch (d) {
    case LQ_SCALE_F16:
        s = lq_f16_to_f32(lq_f32_to_f16(s));
        return s == 0.0f ? 0.0009765625f : s;
    case LQ_SCALE_BF16:
        s = lq_bf16_to_f32(lq_f32_to_bf16(s));
        return s == 0.0f ? 0.0078125f : s;
    default:
        return s == 0.0f ? 1.1920928955078125e-7f : s;
    }
}

float lq_quant_rne(float v) { return nearbyintf(v); } /* default FP env: ties to even */

int lq_quant_int_code(float x, float scale, float zero, int qmin, int qmax) {
    float v = x / scale + zero;
    /* written so NaN lands on qmin: never a float -> int conversion out of range */
    if (!(v >= (float)qmin)) v = (float)qmin;
    if (v > (float)qmax) v = (float)qmax;
    return (int)lq_quant_rne(v);
}

/* scale and zero of one group with range [lo, hi] (already shrunk by the clip ratio); m is the
 * signed value of largest magnitude (shrunk alike), used by LQ_ROUND_SIGNED_MAX. The asymmetric
 * width hi - lo is taken in double: for finite weights near +-3.4e38 it overflows f32 (issue 10
 * defect 7), while the scale itself, (hi - lo) / 15, is far inside the f32 range. */
static void int_qparams(float lo, float hi, float m, int qmin, int qmax, int asym,
                        lq_rounding rule, lq_scale_dtype d, float *scale, float *zero) {
    lo = lo < 0.0f ? lo : 0.0f;
    hi = hi > 0.0f ? hi : 0.0f;
    const float range = (float)(qmax - qmin);
    if (!asym) {
        *zero = 0.0f;
        if (rule == LQ_ROUND_SIGNED_MAX) {
            /* llama.cpp quantize_row_q4_0_ref: d = max / -8; m maps to qmin exactly */
            *scale = lq_quant_round_scale(m / (float)qmin, d);
            return;
        }
        const float amax = -lo > hi ? -lo : hi;
        *scale = lq_quant_round_scale(amax / (range / 2.0f), d);
        return;
    }
    float s = (hi - lo) / range; /* f32 as torch, so the bytes stay llm-compressor's */
    if (isinf(s)) s = (float)(((double)hi - (double)lo) / (double)range);
    float z = (float)qmin;
    if (s > 0.0f) {
        z = (float)qmin - lo / s;
        if (!(z >= (float)qmin)) z = (float)qmin;
        if (z > (float)qmax) z = (float)qmax;
        z = lq_quant_rne(z);
    }
    *scale = lq_quant_round_scale(s, d);
    *zero = z;
}

/* Error of one group's codes: sum_i w_i (deq_i - x_i)^2 in double (differences of values near
 * 3e38 stay finite there). */
static double int_err(const float *x, const float *w, int64_t n, float s, float z, int qmin, int qmax) {
    double e = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double deq = ((double)lq_quant_int_code(x[i], s, z, qmin, qmax) - z) * (double)s;
        const double d = deq - (double)x[i];
        e += w[i] * d * d;
    }
    return e;
}

/* The clip search's error weights of one group. With calibration data (imp: the columns' mean
 * square activations) w_i = imp_i: sum_i w_i e_i^2 is then the expected squared error this group
 * adds to the layer's output (the diagonal of X^T X, as llama.cpp's imatrix). Without data every
 * input is assumed alike, and the weight's own magnitude stands in for its importance:
 * w_i = x_i^2 + mean(x^2) (llama.cpp's make_qx_quants weights x^2, its imatrix path
 * sqrt(sigma2 + x^2)): plain squared error clips large weights whose error costs the output more
 * than the small ones gain (issue 18: it made group 64 and per-channel worse). */
static void clip_weights(const float *x, const float *imp, int64_t n, float *w) {
    if (imp) {
        for (int64_t i = 0; i < n; i++) w[i] = imp[i] > 0.0f ? imp[i] : 0.0f;
        return;
    }
    double s2 = 0.0;
    for (int64_t i = 0; i < n; i++) s2 += (double)x[i] * x[i];
    s2 /= (double)(n > 0 ? n : 1);
    for (int64_t i = 0; i < n; i++) w[i] = (float)((double)x[i] * x[i] + s2);
}

#define CLIP_WEIGHT_STACK 256

void lq_quant_int_params(const float *x, const float *imp, int64_t n, int bits, int asym,
                         const lq_quant_params *p, float *scale, float *zero) {
    const int qmin = -(1 << (bits - 1)), qmax = (1 << (bits - 1)) - 1;
    float lo = 0.0f, hi = 0.0f, m = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
        if (fabsf(x[i]) > fabsf(m)) m = x[i]; /* the first of largest magnitude, as Q4_0 */
    }
    int_qparams(lo, hi, m, qmin, qmax, asym, p->rounding, p->scale_dtype, scale, zero);
    if (!p->clip_search) return;
    float stack[CLIP_WEIGHT_STACK];
    float *w = n <= CLIP_WEIGHT_STACK ? stack : malloc((size_t)n * sizeof *w);
    if (!w) return; /* no memory for the search: plain RTN is a valid answer */
    clip_weights(x, imp, n, w);
    const double plain = int_err(x, w, n, *scale, *zero, qmin, qmax);
    double best = plain, best_ratio = 1.0;
    for (int k = 1; k < CLIP_STEPS; k++) {
        const float ratio = (float)(1.0 - 0.01 * k);
        float s, z;
        int_qparams(lo * ratio, hi * ratio, m * ratio, qmin, qmax, asym, p->rounding, p->scale_dtype,
                    &s, &z);
        const double e = int_err(x, w, n, s, z, qmin, qmax);
        /* strictly below: a ratio is only taken if it lowers the weighted error, so the search
         * never does worse than no clipping under its own weighting, and ties keep the larger */
        if (e < best) { best = e; best_ratio = ratio; *scale = s; *zero = z; }
    }
    if (w != stack) free(w);
    lq_clip_stats *st = p->clip_stats;
    if (st) {
        st->groups++;
        st->clipped += best_ratio < 1.0;
        st->ratio_sum += best_ratio;
        if (st->ratio_min == 0.0 || best_ratio < st->ratio_min) st->ratio_min = best_ratio;
        st->err_plain += plain;
        st->err_chosen += best;
    }
}

uint8_t lq_quant_fp8_code(float x, float scale) {
    float v = x / scale;
    if (v > LQ_E4M3_MAX) v = LQ_E4M3_MAX;
    if (v < -LQ_E4M3_MAX) v = -LQ_E4M3_MAX;
    return lq_f32_to_e4m3(v);
}

static double fp8_sse(const float *x, int64_t n, float s) {
    double e = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double d = (double)(lq_e4m3_to_f32(lq_quant_fp8_code(x[i], s)) * s) - (double)x[i];
        e += d * d;
    }
    return e;
}

float lq_quant_fp8_scale(const float *x, int64_t n, const lq_quant_params *p) {
    float amax = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        const float a = fabsf(x[i]);
        amax = a > amax ? a : amax;
    }
    float scale = lq_quant_round_scale(amax / LQ_E4M3_MAX, p->scale_dtype);
    if (!p->clip_search) return scale;
    double best = fp8_sse(x, n, scale);
    for (int k = 1; k < CLIP_STEPS; k++) {
        const float s = lq_quant_round_scale(amax * (float)(1.0 - 0.01 * k) / LQ_E4M3_MAX,
                                             p->scale_dtype);
        const double e = fp8_sse(x, n, s);
        if (e < best) { best = e; scale = s; }
    }
    return scale;
}
