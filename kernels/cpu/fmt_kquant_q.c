/* fmt_kquant_q.c - K-quant super-blocks and IQ4_XS times Q8_K activations (the integer path of
 * the K-quant rows): the scalar spec, ggml's vec_dot_<type>_q8_K_generic (ggml-cpu/quants.c).
 *
 * A Q8_K activation block is 256 int8 codes, an f32 scale d and bsums (sums of 16 codes). Per
 * super-block the weight codes times the activation codes are summed in int32 per sub-block and
 * weighted by the sub-block's integer scale; the minimums of Q2_K / Q4_K / Q5_K fold into
 * min * bsums, so no weight is ever an f32. The f32 steps (d_w * d_x per block, the row sum) are
 * ggml's generic ones in ggml's order, which the llama.cpp build of any CPU without a SIMD
 * version runs; the AVX2 twins (fmt_kquant_q_avx2.c) sum the same exact int32 block sums in
 * another f32 order, within the row's tol.
 */
#include <string.h>

#include "kern_internal.h"
#include "kq_internal.h"

static const lq_block_q8_K *act_row(const void *xq) { return (const lq_block_q8_K *)xq; }

static float dot_q2_K(const lq_block_q2_K *x, const lq_block_q8_K *y, int64_t nb) {
    float sumf = 0;
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t *q2 = x[i].qs, *sc = x[i].scales;
        const int8_t *q8 = y[i].qs;
        int summs = 0;
        for (int j = 0; j < 16; ++j) summs += y[i].bsums[j] * (sc[j] >> 4);
        const float dall = y[i].d * lq_f16_to_f32(x[i].d);
        const float dmin = y[i].d * lq_f16_to_f32(x[i].dmin);
        int isum = 0, is = 0;
        for (int k = 0; k < LQ_QK_K / 128; ++k) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int half = 0; half < 2; half++) {
                    const int d = sc[is++] & 0xF;
                    int isuml = 0;
                    for (int l = 16 * half; l < 16 * half + 16; ++l) isuml += q8[l] * ((q2[l] >> shift) & 3);
                    isum += d * isuml;
                }
                q8 += 32;
            }
            q2 += 32;
        }
        sumf += dall * (float)isum - dmin * (float)summs;
    }
    return sumf;
}

/* Q3_K..Q6_K: ggml's generic code keeps 8 f32 lane sums across the row, each the int32 sum of
 * every 8th product of a block times d_w d_x, and adds the lanes at the end (aux32 / sums). */
static void lanes_add(float *sums, const int32_t *aux32, float d) {
    for (int l = 0; l < 8; ++l) sums[l] += d * (float)aux32[l];
}

/* aux32[l] += scale * a[l] * q8[l] over one sub-block of 16 (two halves of 8, as ggml). */
static void sub16(int32_t *aux32, const int8_t *a, const int8_t *q8, int scale) {
    for (int h = 0; h < 16; h += 8)
        for (int l = 0; l < 8; ++l) aux32[l] += scale * (int16_t)(q8[h + l] * a[h + l]);
}

static float dot_q3_K(const lq_block_q3_K *x, const lq_block_q8_K *y, int64_t nb) {
    float sums[8] = {0}, sumf = 0;
    int8_t aux8[LQ_QK_K];
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t *q3 = x[i].qs, *hm = x[i].hmask;
        int8_t *a = aux8;
        unsigned m = 1;
        for (int j = 0; j < LQ_QK_K; j += 128) {
            for (int shift = 0; shift < 8; shift += 2, m <<= 1, a += 32)
                for (int l = 0; l < 32; ++l) a[l] = (int8_t)(((q3[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
            q3 += 32;
        }
        int32_t aux32[8] = {0};
        for (int j = 0; j < LQ_QK_K / 16; ++j) sub16(aux32, aux8 + 16 * j, y[i].qs + 16 * j, lq_q3k_scale(j, x[i].scales));
        lanes_add(sums, aux32, lq_f16_to_f32(x[i].d) * y[i].d);
    }
    for (int l = 0; l < 8; ++l) sumf += sums[l];
    return sumf;
}

/* Q4_K / Q5_K: codes in aux8 (0..15 or 0..31), sub-blocks of 32 with one 6-bit scale, the mins
 * against bsums (two per sub-block). */
static float dot_q45_K(const int8_t *aux8, const uint8_t *scales12, lq_f16 d16, lq_f16 dmin16,
                       const lq_block_q8_K *y, float *sums) {
    uint8_t sc[8], mn[8];
    for (int j = 0; j < 8; j++) lq_kq_scale_min(j, scales12, &sc[j], &mn[j]);
    int sumi = 0;
    for (int j = 0; j < LQ_QK_K / 16; ++j) sumi += y->bsums[j] * mn[j / 2];
    int32_t aux32[8] = {0};
    for (int j = 0; j < LQ_QK_K / 32; ++j) {
        sub16(aux32, aux8 + 32 * j, y->qs + 32 * j, sc[j]);
        sub16(aux32, aux8 + 32 * j + 16, y->qs + 32 * j + 16, sc[j]);
    }
    lanes_add(sums, aux32, lq_f16_to_f32(d16) * y->d);
    const float dmin = lq_f16_to_f32(dmin16) * y->d;
    return dmin * (float)sumi; /* the caller subtracts it from the row sum, block by block */
}

static float dot_q4_K(const lq_block_q4_K *x, const lq_block_q8_K *y, int64_t nb) {
    float sums[8] = {0}, sumf = 0;
    int8_t aux8[LQ_QK_K];
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t *q4 = x[i].qs;
        for (int j = 0; j < LQ_QK_K / 64; ++j, q4 += 32)
            for (int l = 0; l < 32; ++l) {
                aux8[64 * j + l] = (int8_t)(q4[l] & 0xF);
                aux8[64 * j + 32 + l] = (int8_t)(q4[l] >> 4);
            }
        sumf -= dot_q45_K(aux8, x[i].scales, x[i].d, x[i].dmin, &y[i], sums);
    }
    for (int l = 0; l < 8; ++l) sumf += sums[l];
    return sumf;
}

static float dot_q5_K(const lq_block_q5_K *x, const lq_block_q8_K *y, int64_t nb) {
    float sums[8] = {0}, sumf = 0;
    int8_t aux8[LQ_QK_K];
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t *q4 = x[i].qs, *hm = x[i].qh;
        unsigned m = 1;
        for (int j = 0; j < LQ_QK_K / 64; ++j, q4 += 32, m <<= 2)
            for (int l = 0; l < 32; ++l) {
                aux8[64 * j + l] = (int8_t)((q4[l] & 0xF) + (hm[l] & m ? 16 : 0));
                aux8[64 * j + 32 + l] = (int8_t)((q4[l] >> 4) + (hm[l] & (m << 1) ? 16 : 0));
            }
        sumf -= dot_q45_K(aux8, x[i].scales, x[i].d, x[i].dmin, &y[i], sums);
    }
    for (int l = 0; l < 8; ++l) sumf += sums[l];
    return sumf;
}

static float dot_q6_K(const lq_block_q6_K *x, const lq_block_q8_K *y, int64_t nb) {
    float sums[8] = {0}, sumf = 0;
    int8_t aux8[LQ_QK_K];
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t *q4 = x[i].ql, *qh = x[i].qh;
        int8_t *a = aux8;
        for (int j = 0; j < LQ_QK_K; j += 128, a += 128, q4 += 64, qh += 32)
            for (int l = 0; l < 32; ++l) {
                a[l + 0] = (int8_t)(((q4[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                a[l + 32] = (int8_t)(((q4[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                a[l + 64] = (int8_t)(((q4[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                a[l + 96] = (int8_t)(((q4[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        int32_t aux32[8] = {0};
        for (int j = 0; j < LQ_QK_K / 16; ++j) sub16(aux32, aux8 + 16 * j, y[i].qs + 16 * j, x[i].scales[j]);
        lanes_add(sums, aux32, lq_f16_to_f32(x[i].d) * y[i].d);
    }
    for (int l = 0; l < 8; ++l) sumf += sums[l];
    return sumf;
}

static float dot_iq4_xs(const lq_block_iq4_xs *x, const lq_block_q8_K *y, int64_t nb) {
    float sumf = 0;
    for (int64_t ibl = 0; ibl < nb; ++ibl) {
        const float d4d8 = lq_f16_to_f32(x[ibl].d) * y[ibl].d;
        const uint8_t *qs = x[ibl].qs;
        const int8_t *q8 = y[ibl].qs;
        for (int ib = 0; ib < LQ_QK_K / 32; ++ib, qs += 16, q8 += 32) {
            const float dl = d4d8 * (float)lq_iq4xs_scale(ib, &x[ibl]);
            int sumi1 = 0, sumi2 = 0;
            for (int j = 0; j < 16; ++j) {
                sumi1 += q8[j] * lq_kq_iq4nl_values[qs[j] & 0xf];
                sumi2 += q8[j + 16] * lq_kq_iq4nl_values[qs[j] >> 4];
            }
            sumf += dl * (float)(sumi1 + sumi2);
        }
    }
    return sumf;
}

#define KQ_Q_REF(n, blk)                                                                           \
    void lq_matvec_q_##n##_ref(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1) { \
        const int64_t nb = w->cols / LQ_QK_K;                                                      \
        for (int64_t r = r0; r < r1; r++)                                                          \
            y[r - r0] = dot_##n((const blk *)((const char *)w->data + (size_t)r * w->row_bytes),    \
                                act_row(xq), nb);                                                  \
    }

KQ_Q_REF(q2_K, lq_block_q2_K)
KQ_Q_REF(q3_K, lq_block_q3_K)
KQ_Q_REF(q4_K, lq_block_q4_K)
KQ_Q_REF(q5_K, lq_block_q5_K)
KQ_Q_REF(q6_K, lq_block_q6_K)
KQ_Q_REF(iq4_xs, lq_block_iq4_xs)
