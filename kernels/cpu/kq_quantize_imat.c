/* kq_quantize_imat.c - llama.cpp's K-quant quantizers WITH an importance matrix (what
 * llama-quantize --imatrix runs: ggml_quantize_chunk -> quantize_q*_K -> quantize_row_q*_K_impl
 * with quant_weights) for the types whose weighted search is not the unweighted one with other
 * weights: Q2_K, Q3_K, Q4_K, Q5_K. (Q6_K and IQ4_XS take their weights in kq_quantize.c.)
 *
 * The imatrix entry of a column is E[x_j^2] over the calibration tokens; ggml weights a weight's
 * squared error by qw_j * sqrt(sigma2 + w_j^2) (sigma2: the block's mean square weight, times 2
 * for Q3_K..Q5_K), searches each sub-block's scale and min with that (make_qkx3_quants or
 * make_qx_quants), then the super-block's d / dmin with the sub-blocks' summed weights
 * (make_qp_quants, make_qx_quants), and recomputes the codes from the stored scales.
 *
 * Same rules as kq_quantize.c: ggml's f32 operations in ggml's order, compiled with
 * -ffp-contract=off, so the bytes are llama-quantize's (scripts/gguf_vectors/make_imat_vectors.py
 * checks random blocks against ggml itself; tests/fixtures/gguf_blocks/imat_* pins some).
 */
#include <math.h>
#include <string.h>

#include "kq_internal.h"

#define kq_min lq_kq_min
#define kq_max lq_kq_max
#define kq_nearest_int lq_kq_nearest_int

/* ---- scale searches ------------------------------------------------------------------------- */

/* ggml's make_qkx3_quants = make_qkx2_quants without its use_mad option (kq_quantize.c). */
float lq_kq_make_qkx3(int n, int nmax, const float *x, const float *weights, uint8_t *L, float *the_min,
                      uint8_t *Laux, float rmin, float rdelta, int nstep) {
    return lq_kq_make_qkx2(n, nmax, x, weights, L, the_min, Laux, rmin, rdelta, nstep, 0);
}

/* ggml make_qp_quants: non-negative codes in [0, nmax] for the (non-negative) sub-block scales or
 * mins x, weighted by qw: 9 candidate inverse scales around nmax / max, then up to 5 passes moving
 * single codes while the weighted fit improves. Returns the super-scale. */
static float kq_qp(int n, int nmax, const float *x, uint8_t *L, const float *qw) {
    float max = 0;
    for (int i = 0; i < n; ++i) max = max > x[i] ? max : x[i];
    if (max < LQ_KQ_GROUP_MAX_EPS) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.f;
    }
    float iscale = (float)nmax / max;
    for (int i = 0; i < n; ++i) L[i] = (uint8_t)kq_nearest_int(iscale * x[i]);
    const float scale = 1 / iscale;
    float best_mse = 0;
    for (int i = 0; i < n; ++i) {
        const float diff = x[i] - scale * (float)L[i];
        best_mse += qw[i] * diff * diff;
    }
    for (int is = -4; is <= 4; ++is) {
        if (is == 0) continue;
        const float iscale_is = (0.1f * (float)is + (float)nmax) / max;
        const float scale_is = 1 / iscale_is;
        float mse = 0;
        for (int i = 0; i < n; ++i) {
            int l = kq_nearest_int(iscale_is * x[i]);
            l = kq_min(nmax, l);
            const float diff = x[i] - scale_is * (float)l;
            mse += qw[i] * diff * diff;
        }
        if (mse < best_mse) {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = kq_nearest_int(iscale * x[i]);
        l = kq_min(nmax, l);
        L[i] = (uint8_t)l;
        const float w = qw[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    for (int itry = 0; itry < 5; ++itry) {
        int n_changed = 0;
        for (int i = 0; i < n; ++i) {
            const float w = qw[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            float sl2 = suml2 - w * (float)L[i] * (float)L[i];
            if (slx > 0 && sl2 > 0) {
                int new_l = kq_nearest_int(x[i] * sl2 / slx);
                new_l = kq_min(nmax, new_l);
                if (new_l != L[i]) {
                    slx += w * x[i] * (float)new_l;
                    sl2 += w * (float)new_l * (float)new_l;
                    if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (uint8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        ++n_changed;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Sum of x^2 over a super-block, in ggml's order. */
static float kq_sum_x2(const float *x) {
    float s = 0;
    for (int j = 0; j < LQ_QK_K; ++j) s += x[j] * x[j];
    return s;
}

/* ---- Q2_K ----------------------------------------------------------------------------------- */

void lq_kq_quantize_w_q2_K(const float *x, const float *qw, lq_block_q2_K *y) {
    uint8_t L[LQ_QK_K], Laux[16], Ls[16], Lm[16];
    float mins[16], scales[16], sw[16], weight[16];
    memset(sw, 0, sizeof sw);
    const float sigma2 = kq_sum_x2(x) / LQ_QK_K;
    for (int j = 0; j < 16; ++j) {
        const float *q = qw + 16 * j;
        for (int l = 0; l < 16; ++l) weight[l] = q[l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
        for (int l = 0; l < 16; ++l) sw[j] += weight[l];
        scales[j] = lq_kq_make_qkx3(16, 3, x + 16 * j, weight, L + 16 * j, &mins[j], Laux, -0.9f, 0.05f, 36);
    }
    float dm = kq_qp(16, 15, scales, Ls, sw);
    float mm = kq_qp(16, 15, mins, Lm, sw);
    y->d = lq_f32_to_f16(dm);
    y->dmin = lq_f32_to_f16(mm);
    dm = lq_f16_to_f32(y->d);
    mm = lq_f16_to_f32(y->dmin);
    for (int j = 0; j < 16; ++j) y->scales[j] = (uint8_t)(Ls[j] | (Lm[j] << 4));
    for (int j = 0; j < 16; ++j) {
        const float d = dm * (float)(y->scales[j] & 0xF);
        if (!d) continue;
        const float m = mm * (float)(y->scales[j] >> 4);
        for (int ii = 0; ii < 16; ++ii) {
            const int l = kq_nearest_int((x[16 * j + ii] + m) / d);
            L[16 * j + ii] = (uint8_t)kq_max(0, kq_min(3, l));
        }
    }
    for (int j = 0; j < LQ_QK_K; j += 128)
        for (int l = 0; l < 32; ++l)
            y->qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                         (L[j + l + 96] << 6));
}

/* ---- Q3_K ----------------------------------------------------------------------------------- */

void lq_kq_quantize_w_q3_K(const float *x, const float *qw, lq_block_q3_K *y) {
    int8_t L[LQ_QK_K], Ls[16];
    float scales[16], weight[16], sw[16];
    const float sigma2 = 2 * kq_sum_x2(x) / LQ_QK_K;
    for (int j = 0; j < 16; ++j) {
        const float *q = qw + 16 * j;
        for (int l = 0; l < 16; ++l) weight[l] = q[l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
        float sumw = 0;
        for (int l = 0; l < 16; ++l) sumw += weight[l];
        sw[j] = sumw;
        scales[j] = lq_kq_make_qx(16, 4, x + 16 * j, L + 16 * j, weight);
    }
    memset(y->scales, 0, sizeof y->scales);
    const float d_block = lq_kq_make_qx(16, 32, scales, Ls, sw);
    for (int j = 0; j < 16; ++j) {
        int l = Ls[j];
        if (j < 8) y->scales[j] = (uint8_t)(l & 0xF);
        else y->scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
        l >>= 4;
        y->scales[j % 4 + 8] |= (uint8_t)(l << (2 * (j / 4)));
    }
    y->d = lq_f32_to_f16(d_block);
    for (int j = 0; j < 16; ++j) {
        const float d = lq_f16_to_f32(y->d) * (float)lq_q3k_scale(j, y->scales);
        if (!d) continue;
        for (int ii = 0; ii < 16; ++ii) {
            const int l = kq_nearest_int(x[16 * j + ii] / d);
            L[16 * j + ii] = (int8_t)(kq_max(-4, kq_min(3, l)) + 4);
        }
    }
    memset(y->hmask, 0, sizeof y->hmask); /* bit 2 of code j -> bit j / 32 of hmask[j % 32] */
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

/* Their shared first half: per sub-block of 32 make_qkx3 (nmax 15 or 31), 6-bit scales and mins
 * from make_qp over the sub-blocks' weight sums, codes recomputed from the stored scales. */
static void kq_w_k_asym(const float *x, const float *qw, int nmax, int clamp63, uint8_t scales_out[12],
                        lq_f16 *d_out, lq_f16 *dmin_out, uint8_t L[LQ_QK_K]) {
    uint8_t Laux[32], Ls[8], Lm[8];
    float weights[32], sw[8], mins[8], scales[8];
    const float sigma2 = 2 * kq_sum_x2(x) / LQ_QK_K;
    for (int j = 0; j < 8; ++j) {
        const float *q = qw + 32 * j;
        for (int l = 0; l < 32; ++l) weights[l] = q[l] * sqrtf(sigma2 + x[32 * j + l] * x[32 * j + l]);
        float sumw = 0;
        for (int l = 0; l < 32; ++l) sumw += weights[l];
        sw[j] = sumw;
        scales[j] = lq_kq_make_qkx3(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -0.9f, 0.05f, 36);
    }
    const float d_block = kq_qp(8, 63, scales, Ls, sw);
    const float m_block = kq_qp(8, 63, mins, Lm, sw);
    for (int j = 0; j < 8; ++j) {
        uint8_t ls = Ls[j], lm = Lm[j];
        if (clamp63) { /* ggml clamps in Q5_K only (a negative sub-scale wraps in both) */
            ls = (uint8_t)kq_min(63, ls);
            lm = (uint8_t)kq_min(63, lm);
        }
        if (j < 4) {
            scales_out[j] = ls;
            scales_out[j + 4] = lm;
        } else {
            scales_out[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            scales_out[j - 4] |= (uint8_t)((ls >> 4) << 6);
            scales_out[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *d_out = lq_f32_to_f16(d_block);
    *dmin_out = lq_f32_to_f16(m_block);
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

void lq_kq_quantize_w_q4_K(const float *x, const float *qw, lq_block_q4_K *y) {
    uint8_t L[LQ_QK_K];
    memset(y->scales, 0, sizeof y->scales);
    kq_w_k_asym(x, qw, 15, 0, y->scales, &y->d, &y->dmin, L);
    uint8_t *q = y->qs;
    for (int j = 0; j < LQ_QK_K; j += 64) {
        for (int l = 0; l < 32; ++l) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
        q += 32;
    }
}

void lq_kq_quantize_w_q5_K(const float *x, const float *qw, lq_block_q5_K *y) {
    uint8_t L[LQ_QK_K];
    memset(y->scales, 0, sizeof y->scales);
    kq_w_k_asym(x, qw, 31, 1, y->scales, &y->d, &y->dmin, L);
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
