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
 * One deviation: an all-zero asymmetric group (scale 0 before the epsilon, where
 * compressed-tensors divides 0 by 0) gets zero = qmin, the limit of its rule as hi -> 0.
 *
 * Clip search (p->clip_search): for each group, ratios 1.00, 0.99, ..., 0.50 shrink the range
 * (lo and hi alike) and the ratio whose codes reconstruct the group with the least sum of squared
 * error wins; ties keep the larger ratio, so the result is deterministic.
 */
#include <math.h>

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

/* scale and zero of one group with range [lo, hi] (already shrunk by the clip ratio) */
static void int_qparams(float lo, float hi, int qmin, int qmax, int asym, lq_scale_dtype d,
                        float *scale, float *zero) {
    lo = lo < 0.0f ? lo : 0.0f;
    hi = hi > 0.0f ? hi : 0.0f;
    const float range = (float)(qmax - qmin);
    if (!asym) {
        const float amax = -lo > hi ? -lo : hi;
        *scale = lq_quant_round_scale(amax / (range / 2.0f), d);
        *zero = 0.0f;
        return;
    }
    const float s = (hi - lo) / range;
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

static double int_sse(const float *x, int64_t n, float s, float z, int qmin, int qmax) {
    double e = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float deq = ((float)lq_quant_int_code(x[i], s, z, qmin, qmax) - z) * s;
        const double d = (double)deq - (double)x[i];
        e += d * d;
    }
    return e;
}

void lq_quant_int_params(const float *x, int64_t n, int bits, int asym, const lq_quant_params *p,
                         float *scale, float *zero) {
    const int qmin = -(1 << (bits - 1)), qmax = (1 << (bits - 1)) - 1;
    float lo = 0.0f, hi = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    int_qparams(lo, hi, qmin, qmax, asym, p->scale_dtype, scale, zero);
    if (!p->clip_search) return;
    double best = int_sse(x, n, *scale, *zero, qmin, qmax);
    for (int k = 1; k < CLIP_STEPS; k++) {
        const float ratio = (float)(1.0 - 0.01 * k);
        float s, z;
        int_qparams(lo * ratio, hi * ratio, qmin, qmax, asym, p->scale_dtype, &s, &z);
        const double e = int_sse(x, n, s, z, qmin, qmax);
        if (e < best) { best = e; *scale = s; *zero = z; }
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
