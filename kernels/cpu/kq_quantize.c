/* kq_quantize.c - llama.cpp's reference quantizers of the K-quant super-blocks, one block of 256
 * weights at a time: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (quantize_row_q*_K_ref of ggml-quants.c) and
 * IQ4_XS (quantize_iq4_xs with no importance matrix, which is what llama-quantize runs without
 * --imatrix, as quantize_row_iq4_xs_ref does); with one, Q6_K and IQ4_XS here too (their weighted
 * paths differ only in the weights), the other K-quants in kq_quantize_imat.c.
 *
 * The goal is the same bytes as llama-quantize for the same floats, so every expression keeps
 * ggml's f32 operations in ggml's order: products and sums left to right as C parses them, int
 * codes converted to float where ggml's implicit conversions do it, the scale searches
 * (make_qkx2_quants, make_qx_quants, make_q3_quants) and nearest_int's 1.5 * 2^23 trick as they
 * are. The file is compiled with -ffp-contract=off (CMakeLists.txt): ggml-base builds
 * ggml-quants.c without FMA flags, so its a * b + c are two roundings, and a contracted FMA here
 * would change scales on ties. Checked against ggml's own functions on random blocks by
 * scripts/gguf_vectors/make_kquant_vectors.py (numbers in its header); pinned blocks in
 * tests/fixtures/gguf_blocks/. The structure is ggml's; the code is ours.
 */
#include <math.h>
#include <string.h>

#include "kq_internal.h"

const int8_t lq_kq_iq4nl_values[16] = LQ_IQ4NL_VALUES;

#define KQ_GROUP_MAX_EPS LQ_KQ_GROUP_MAX_EPS
#define kq_min lq_kq_min
#define kq_max lq_kq_max
#define kq_nearest_int lq_kq_nearest_int
#define kq_best_index lq_kq_best_index

/* ---- scale searches ------------------------------------------------------------------------- */

/* Asymmetric codes L in [0, nmax] for x ~ scale * L - min, weighted error search over nstep + 1
 * candidate inverse scales (ggml make_qkx2_quants; with use_mad 0 also make_qkx3_quants, the
 * imatrix search, whose only difference - `max <= min` for `max == min` - decides alike on every
 * input). Returns the scale, *the_min = -min >= 0. */
static float kq_qkx2(int n, int nmax, const float *x, const float *weights, uint8_t *L, float *the_min,
                     uint8_t *Laux, float rmin, float rdelta, int nstep, int use_mad) {
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = (float)nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; ++i) {
        const int l = kq_nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)kq_max(0, kq_min(nmax, l));
        float diff = scale * (float)L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            int l = kq_nearest_int(iscale * (x[i] - min));
            l = kq_max(0, kq_min(nmax, l));
            Laux[i] = (uint8_t)l;
            const float w = weights[i];
            sum_l += w * (float)l;
            sum_l2 += w * (float)l * (float)l;
            sum_xl += w * (float)l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; ++i) {
                float diff = this_scale * (float)Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

float lq_kq_make_qkx2(int n, int nmax, const float *x, const float *weights, uint8_t *L, float *the_min,
                      uint8_t *Laux, float rmin, float rdelta, int nstep, int use_mad) {
    return kq_qkx2(n, nmax, x, weights, L, the_min, Laux, rmin, rdelta, nstep, use_mad);
}

/* The first element of largest magnitude, sign kept; *amax gets its magnitude (0 for n = 0). */
static float kq_signed_max(int n, const float *x, float *amax) {
    float max = 0, a = 0;
    for (int i = 0; i < n; ++i) {
        const float ax = fabsf(x[i]);
        if (ax > a) { a = ax; max = x[i]; }
    }
    *amax = a;
    return max;
}

/* Symmetric codes L + nmax in [0, 2 nmax) weighted by qw (x^2 when NULL), searching 18 inverse
 * scales around -nmax / max (ggml make_qx_quants with rmse_type 1: Q6_K without an imatrix, and
 * with one Q3_K, Q4_0, Q5_0 and Q6_K). */
float lq_kq_make_qx(int n, int nmax, const float *x, int8_t *L, const float *qw) {
    float amax;
    const float max = kq_signed_max(n, x, &amax);
    if (amax < KQ_GROUP_MAX_EPS) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.f;
    }
    float iscale = (float)(-nmax) / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = kq_nearest_int(iscale * x[i]);
        l = kq_max(-nmax, kq_min(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        const float w = qw ? qw[i] : x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -((float)nmax + 0.1f * (float)is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; ++i) {
            int l = kq_nearest_int(iscale * x[i]);
            l = kq_max(-nmax, kq_min(nmax - 1, l));
            const float w = qw ? qw[i] : x[i] * x[i];
            sumlx += w * x[i] * (float)l;
            suml2 += w * (float)l * (float)l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i) {
                const int l = kq_nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + kq_max(-nmax, kq_min(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Symmetric codes L + nmax, then up to 5 passes moving single codes while the x^2-weighted fit
 * improves (ggml make_q3_quants with do_rmse, Q3_K's use). */
static float kq_q3(int n, int nmax, const float *x, int8_t *L) {
    float amax;
    const float max = kq_signed_max(n, x, &amax);
    if (amax < KQ_GROUP_MAX_EPS) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.f;
    }
    const float iscale = (float)(-nmax) / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = kq_nearest_int(iscale * x[i]);
        l = kq_max(-nmax, kq_min(nmax - 1, l));
        L[i] = (int8_t)l;
        const float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    for (int itry = 0; itry < 5; ++itry) {
        int n_changed = 0;
        for (int i = 0; i < n; ++i) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * (float)L[i] * (float)L[i];
                int new_l = kq_nearest_int(x[i] * sl2 / slx);
                new_l = kq_max(-nmax, kq_min(nmax - 1, new_l));
                if (new_l != L[i]) {
                    slx += w * x[i] * (float)new_l;
                    sl2 += w * (float)new_l * (float)new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        ++n_changed;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    for (int i = 0; i < n; ++i) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* ---- Q2_K ----------------------------------------------------------------------------------- */

void lq_kq_quantize_q2_K(const float *x, lq_block_q2_K *y) {
    uint8_t L[LQ_QK_K], Laux[16];
    float weights[16], mins[16], scales[16];
    const float q4scale = 15.f;
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 16; ++j) {
        for (int l = 0; l < 16; ++l) weights[l] = fabsf(x[16 * j + l]);
        scales[j] = kq_qkx2(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, 1);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    if (max_scale > 0) {
        const float iscale = q4scale / max_scale;
        for (int j = 0; j < 16; ++j) y->scales[j] = (uint8_t)kq_nearest_int(iscale * scales[j]);
        y->d = lq_f32_to_f16(max_scale / q4scale);
    } else {
        memset(y->scales, 0, sizeof y->scales);
        y->d = lq_f32_to_f16(0.f);
    }
    if (max_min > 0) {
        const float iscale = q4scale / max_min;
        for (int j = 0; j < 16; ++j) y->scales[j] |= (uint8_t)(kq_nearest_int(iscale * mins[j]) << 4);
        y->dmin = lq_f32_to_f16(max_min / q4scale);
    } else {
        y->dmin = lq_f32_to_f16(0.f);
    }
    for (int j = 0; j < 16; ++j) {
        const float d = lq_f16_to_f32(y->d) * (float)(y->scales[j] & 0xF);
        if (!d) continue; /* keeps the search's codes, as ggml does */
        const float dm = lq_f16_to_f32(y->dmin) * (float)(y->scales[j] >> 4);
        for (int ii = 0; ii < 16; ++ii) {
            const int l = kq_nearest_int((x[16 * j + ii] + dm) / d);
            L[16 * j + ii] = (uint8_t)kq_max(0, kq_min(3, l));
        }
    }
    for (int j = 0; j < LQ_QK_K; j += 128)
        for (int l = 0; l < 32; ++l)
            y->qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                         (L[j + l + 96] << 6));
}

/* ---- Q3_K ----------------------------------------------------------------------------------- */

void lq_kq_quantize_q3_K(const float *x, lq_block_q3_K *y) {
    int8_t L[LQ_QK_K];
    float scales[16];
    float max_scale = 0, amax = 0;
    for (int j = 0; j < 16; ++j) {
        scales[j] = kq_q3(16, 4, x + 16 * j, L + 16 * j);
        const float scale = fabsf(scales[j]);
        if (scale > amax) { amax = scale; max_scale = scales[j]; }
    }
    memset(y->scales, 0, sizeof y->scales);
    if (max_scale) {
        const float iscale = -32.f / max_scale;
        for (int j = 0; j < 16; ++j) {
            int8_t l = (int8_t)kq_nearest_int(iscale * scales[j]);
            l = (int8_t)(kq_max(-32, kq_min(31, l)) + 32);
            if (j < 8) y->scales[j] = (uint8_t)(l & 0xF);
            else y->scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
            l = (int8_t)(l >> 4);
            y->scales[j % 4 + 8] |= (uint8_t)(l << (2 * (j / 4)));
        }
        y->d = lq_f32_to_f16(1 / iscale);
    } else {
        y->d = lq_f32_to_f16(0.f);
    }
    for (int j = 0; j < 16; ++j) {
        const float d = lq_f16_to_f32(y->d) * (float)lq_q3k_scale(j, y->scales);
        if (!d) continue;
        for (int ii = 0; ii < 16; ++ii) {
            const int l = kq_nearest_int(x[16 * j + ii] / d);
            L[16 * j + ii] = (int8_t)(kq_max(-4, kq_min(3, l)) + 4);
        }
    }
    /* bit 2 of code j goes to bit j / 32 of hmask[j % 32] */
    memset(y->hmask, 0, sizeof y->hmask);
    for (int j = 0; j < LQ_QK_K; ++j) {
        if (L[j] > 3) {
            y->hmask[j % 32] |= (uint8_t)(1u << (j / 32));
            L[j] = (int8_t)(L[j] - 4);
        }
    }
    for (int j = 0; j < LQ_QK_K; j += 128)
        for (int l = 0; l < 32; ++l)
            y->qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                         (L[j + l + 96] << 6));
}

/* ---- Q4_K / Q5_K ---------------------------------------------------------------------------- */

/* The shared first half of Q4_K and Q5_K: per sub-block of 32 an asymmetric search (weights
 * av_x + |x|), 6-bit scales and mins relative to d and dmin, then the codes recomputed from the
 * stored (rounded) scales. nmax 15 or 31; rmin/nstep are the searches' settings. */
static void kq_quantize_k_asym(const float *x, int nmax, float rmin, int nstep, uint8_t scales_out[12],
                               lq_f16 *d_out, lq_f16 *dmin_out, uint8_t L[LQ_QK_K]) {
    uint8_t Laux[32];
    float weights[32], mins[8], scales[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; ++l) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = kq_qkx2(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep, 0);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < 8; ++j) {
        uint8_t ls = (uint8_t)kq_nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)kq_nearest_int(inv_min * mins[j]);
        ls = (uint8_t)kq_min(63, ls);
        lm = (uint8_t)kq_min(63, lm);
        if (j < 4) {
            scales_out[j] = ls;
            scales_out[j + 4] = lm;
        } else {
            scales_out[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            scales_out[j - 4] |= (uint8_t)((ls >> 4) << 6);
            scales_out[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *d_out = lq_f32_to_f16(max_scale / 63.f);
    *dmin_out = lq_f32_to_f16(max_min / 63.f);
    for (int j = 0; j < 8; ++j) {
        uint8_t sc, m;
        lq_kq_scale_min(j, scales_out, &sc, &m);
        const float d = lq_f16_to_f32(*d_out) * (float)sc;
        if (!d) continue;
        const float dm = lq_f16_to_f32(*dmin_out) * (float)m;
        for (int ii = 0; ii < 32; ++ii) {
            const int l = kq_nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)kq_max(0, kq_min(nmax, l));
        }
    }
}

void lq_kq_quantize_q4_K(const float *x, lq_block_q4_K *y) {
    uint8_t L[LQ_QK_K];
    memset(y->scales, 0, sizeof y->scales); /* (every byte is assigned before bits are or-ed in) */
    kq_quantize_k_asym(x, 15, -1.f, 20, y->scales, &y->d, &y->dmin, L);
    uint8_t *q = y->qs;
    for (int j = 0; j < LQ_QK_K; j += 64) {
        for (int l = 0; l < 32; ++l) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
        q += 32;
    }
}

void lq_kq_quantize_q5_K(const float *x, lq_block_q5_K *y) {
    uint8_t L[LQ_QK_K];
    memset(y->scales, 0, sizeof y->scales);
    kq_quantize_k_asym(x, 31, -0.5f, 15, y->scales, &y->d, &y->dmin, L);
    memset(y->qh, 0, sizeof y->qh);
    uint8_t *ql = y->qs;
    uint8_t m1 = 1, m2 = 2;
    for (int n = 0; n < LQ_QK_K; n += 64) {
        for (int j = 0; j < 32; ++j) {
            int l1 = L[n + j], l2 = L[n + j + 32];
            if (l1 > 15) { l1 -= 16; y->qh[j] |= m1; }
            if (l2 > 15) { l2 -= 16; y->qh[j] |= m2; }
            ql[j] = (uint8_t)(l1 | (l2 << 4));
        }
        m1 = (uint8_t)(m1 << 2);
        m2 = (uint8_t)(m2 << 2);
        ql += 32;
    }
}

/* ---- Q6_K ----------------------------------------------------------------------------------- */

/* qw NULL: quantize_row_q6_K_ref; else quantize_row_q6_K_impl with these quant_weights (used
 * as they are, not times sqrt(sigma2 + x^2) as the other types do). */
static void kq_q6_K(const float *x, const float *qw, lq_block_q6_K *y) {
    int8_t L[LQ_QK_K];
    float scales[16];
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < 16; ++ib) {
        const float scale = lq_kq_make_qx(16, 32, x + 16 * ib, L + 16 * ib, qw ? qw + 16 * ib : NULL);
        scales[ib] = scale;
        const float abs_scale = fabsf(scale);
        if (abs_scale > max_abs_scale) { max_abs_scale = abs_scale; max_scale = scale; }
    }
    if (max_abs_scale < KQ_GROUP_MAX_EPS) {
        memset(y, 0, sizeof *y);
        return;
    }
    const float iscale = -128.f / max_scale;
    y->d = lq_f32_to_f16(1 / iscale);
    for (int ib = 0; ib < 16; ++ib) y->scales[ib] = (int8_t)kq_min(127, kq_nearest_int(iscale * scales[ib]));
    for (int j = 0; j < 16; ++j) {
        const float d = lq_f16_to_f32(y->d) * (float)y->scales[j];
        if (!d) continue;
        for (int ii = 0; ii < 16; ++ii) {
            const int l = kq_nearest_int(x[16 * j + ii] / d);
            L[16 * j + ii] = (int8_t)(kq_max(-32, kq_min(31, l)) + 32);
        }
    }
    uint8_t *ql = y->ql, *qh = y->qh;
    for (int j = 0; j < LQ_QK_K; j += 128) {
        for (int l = 0; l < 32; ++l) {
            const uint8_t q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF;
            const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
            ql[l] = (uint8_t)(q1 | (q3 << 4));
            ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
            qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                              ((L[j + l + 96] >> 4) << 6));
        }
        ql += 64;
        qh += 32;
    }
}

void lq_kq_quantize_q6_K(const float *x, lq_block_q6_K *y) { kq_q6_K(x, NULL, y); }
void lq_kq_quantize_w_q6_K(const float *x, const float *qw, lq_block_q6_K *y) { kq_q6_K(x, qw, y); }

/* ---- IQ4_XS --------------------------------------------------------------------------------- */

/* ggml quantize_row_iq4_nl_impl(QK_K, 32, ..., quant_weights, ntry = 7): per sub-block of 32 the
 * weighted (x^2, or with an imatrix qw * sqrt(sigma2 + x^2)) best scale over 15 candidates,
 * then 6-bit sub-scales relative to d = -max_scale / 32 (the unrounded f32 d, as ggml uses it)
 * and the codes from them. */
static void kq_iq4_xs(const float *x, const float *qw, lq_block_iq4_xs *y) {
    const int8_t *values = lq_kq_iq4nl_values;
    const int ntry = 7;
    uint8_t L[LQ_QK_K];
    float scales[8], weight[32];
    float sigma2 = 0; /* used with an imatrix only */
    for (int j = 0; j < LQ_QK_K; ++j) sigma2 += x[j] * x[j];
    sigma2 *= 2.f / LQ_QK_K;
    memset(y->qs, 0, sizeof y->qs);
    y->d = lq_f32_to_f16(0.f);
    float max_scale = 0, amax_scale = 0;
    for (int ib = 0; ib < 8; ++ib) {
        const float *xb = x + ib * 32;
        uint8_t *Lb = L + ib * 32;
        if (qw) {
            const float *q = qw + ib * 32;
            for (int j = 0; j < 32; ++j) weight[j] = q[j] * sqrtf(sigma2 + xb[j] * xb[j]);
        } else {
            for (int j = 0; j < 32; ++j) weight[j] = xb[j] * xb[j];
        }
        float amax = 0, max = 0;
        for (int j = 0; j < 32; ++j) {
            const float ax = fabsf(xb[j]);
            if (ax > amax) { amax = ax; max = xb[j]; }
        }
        if (amax < KQ_GROUP_MAX_EPS) {
            scales[ib] = 0;
            continue;
        }
        float d = -max / (float)values[0];
        float id = 1 / d;
        float sumqx = 0, sumq2 = 0;
        for (int j = 0; j < 32; ++j) {
            const float al = id * xb[j];
            const int l = kq_best_index(values, al);
            Lb[j] = (uint8_t)l;
            const float q = (float)values[l], w = weight[j];
            sumqx += w * q * xb[j];
            sumq2 += w * q * q;
        }
        d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
        float best = d * sumqx;
        for (int itry = -ntry; itry <= ntry; ++itry) {
            id = (float)(itry + values[0]) / max;
            sumqx = sumq2 = 0;
            for (int j = 0; j < 32; ++j) {
                const float al = id * xb[j];
                const int l = kq_best_index(values, al);
                const float q = (float)values[l], w = weight[j];
                sumqx += w * q * xb[j];
                sumq2 += w * q * q;
            }
            if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        scales[ib] = d;
        const float abs_d = fabsf(d);
        if (abs_d > amax_scale) { amax_scale = abs_d; max_scale = d; }
    }
    y->scales_h = 0;
    const float d = -max_scale / 32;
    y->d = lq_f32_to_f16(d);
    const float id = d ? 1 / d : 0.f;
    for (int ib = 0; ib < 8; ++ib) {
        int l = kq_nearest_int(id * scales[ib]);
        l = kq_max(-32, kq_min(31, l));
        const float dl = d * (float)l;
        const float idl = dl ? 1 / dl : 0.f;
        uint8_t *Lb = L + ib * 32;
        const float *xb = x + ib * 32;
        for (int j = 0; j < 32; ++j) Lb[j] = (uint8_t)kq_best_index(values, idl * xb[j]);
        l += 32;
        const uint8_t l_l = (uint8_t)(l & 0xf), l_h = (uint8_t)(l >> 4);
        if (ib % 2 == 0) y->scales_l[ib / 2] = l_l;
        else y->scales_l[ib / 2] |= (uint8_t)(l_l << 4);
        y->scales_h |= (uint16_t)(l_h << 2 * (ib % 8));
    }
    for (int i = 0; i < 8; ++i)
        for (int j = 0; j < 16; ++j) y->qs[16 * i + j] = (uint8_t)(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
}

void lq_kq_quantize_iq4_xs(const float *x, lq_block_iq4_xs *y) { kq_iq4_xs(x, NULL, y); }
void lq_kq_quantize_w_iq4_xs(const float *x, const float *qw, lq_block_iq4_xs *y) { kq_iq4_xs(x, qw, y); }
