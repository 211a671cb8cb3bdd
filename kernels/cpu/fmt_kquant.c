/* fmt_kquant.c - llama.cpp's K-quant super-block formats (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS):
 * the scalar spec of dequant and matvec, and the quantize_ref entry points.
 *
 * A weight's data is its rows of 256-weight blocks (lq_blocks.h), no aux. dequant_ref is ggml's
 * dequantize_row_q*_K value for value: the same f32 products in the same order (d * sc first,
 * then times the code, then minus the min term), so the floats are llama.cpp's bit for bit (the
 * file is compiled with -ffp-contract=off: ggml's CPU-independent dequantizers are not fused).
 * matvec_ref sums those f32 weights times x in double, as the other formats' specs do.
 * quantize_ref is ggml's reference quantizer without an importance matrix (kq_quantize.c), or,
 * when p->col_weight is set, ggml's quantizer with that importance matrix (llama-quantize
 * --imatrix: quantize_row_*_impl with quant_weights, kq_quantize_imat.c).
 */
#include <string.h>

#include "kern_internal.h"
#include "kq_internal.h"

/* ---- one block -> 256 floats (ggml's order of operations) ----------------------------------- */

void lq_kq_dequant_q2_K(const lq_block_q2_K *b, float *y) {
    const float d = lq_f16_to_f32(b->d), min = lq_f16_to_f32(b->dmin);
    const uint8_t *q = b->qs;
    int is = 0;
    for (int n = 0; n < LQ_QK_K; n += 128) {
        for (int shift = 0; shift < 8; shift += 2) {
            for (int half = 0; half < 2; half++) { /* sub-blocks of 16: q[0..15], q[16..31] */
                const uint8_t sc = b->scales[is++];
                const float dl = d * (float)(sc & 0xF), ml = min * (float)(sc >> 4);
                for (int l = 0; l < 16; ++l) *y++ = dl * (float)((q[l + 16 * half] >> shift) & 3) - ml;
            }
        }
        q += 32;
    }
}

void lq_kq_dequant_q3_K(const lq_block_q3_K *b, float *y) {
    const float d_all = lq_f16_to_f32(b->d);
    const uint8_t *q = b->qs;
    int is = 0;
    unsigned m = 1;
    for (int n = 0; n < LQ_QK_K; n += 128) {
        for (int shift = 0; shift < 8; shift += 2) {
            for (int half = 0; half < 2; half++) {
                const float dl = d_all * (float)lq_q3k_scale(is++, b->scales);
                for (int l = 16 * half; l < 16 * half + 16; ++l)
                    *y++ = dl * (float)(((q[l] >> shift) & 3) - ((b->hmask[l] & m) ? 0 : 4));
            }
            m <<= 1;
        }
        q += 32;
    }
}

void lq_kq_dequant_q4_K(const lq_block_q4_K *b, float *y) {
    const float d = lq_f16_to_f32(b->d), min = lq_f16_to_f32(b->dmin);
    const uint8_t *q = b->qs;
    for (int j = 0; j < 8; j += 2) {
        uint8_t sc, m;
        lq_kq_scale_min(j, b->scales, &sc, &m);
        const float d1 = d * (float)sc, m1 = min * (float)m;
        lq_kq_scale_min(j + 1, b->scales, &sc, &m);
        const float d2 = d * (float)sc, m2 = min * (float)m;
        for (int l = 0; l < 32; ++l) *y++ = d1 * (float)(q[l] & 0xF) - m1;
        for (int l = 0; l < 32; ++l) *y++ = d2 * (float)(q[l] >> 4) - m2;
        q += 32;
    }
}

void lq_kq_dequant_q5_K(const lq_block_q5_K *b, float *y) {
    const float d = lq_f16_to_f32(b->d), min = lq_f16_to_f32(b->dmin);
    const uint8_t *ql = b->qs, *qh = b->qh;
    unsigned u1 = 1, u2 = 2;
    for (int j = 0; j < 8; j += 2) {
        uint8_t sc, m;
        lq_kq_scale_min(j, b->scales, &sc, &m);
        const float d1 = d * (float)sc, m1 = min * (float)m;
        lq_kq_scale_min(j + 1, b->scales, &sc, &m);
        const float d2 = d * (float)sc, m2 = min * (float)m;
        for (int l = 0; l < 32; ++l) *y++ = d1 * (float)((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
        for (int l = 0; l < 32; ++l) *y++ = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        ql += 32;
        u1 <<= 2;
        u2 <<= 2;
    }
}

void lq_kq_dequant_q6_K(const lq_block_q6_K *b, float *y) {
    const float d = lq_f16_to_f32(b->d);
    const uint8_t *ql = b->ql, *qh = b->qh;
    const int8_t *sc = b->scales;
    for (int n = 0; n < LQ_QK_K; n += 128) {
        for (int l = 0; l < 32; ++l) {
            const int is = l / 16;
            const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * (float)sc[is] * (float)q1;
            y[l + 32] = d * (float)sc[is + 2] * (float)q2;
            y[l + 64] = d * (float)sc[is + 4] * (float)q3;
            y[l + 96] = d * (float)sc[is + 6] * (float)q4;
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

void lq_kq_dequant_iq4_xs(const lq_block_iq4_xs *b, float *y) {
    const float d = lq_f16_to_f32(b->d);
    const uint8_t *qs = b->qs;
    for (int ib = 0; ib < 8; ++ib) {
        const float dl = d * (float)lq_iq4xs_scale(ib, b);
        for (int j = 0; j < 16; ++j) {
            y[j] = dl * (float)lq_kq_iq4nl_values[qs[j] & 0xf];
            y[j + 16] = dl * (float)lq_kq_iq4nl_values[qs[j] >> 4];
        }
        y += 32;
        qs += 16;
    }
}

/* ---- traits entry points -------------------------------------------------------------------- */

int lq_kq_sizes(size_t block_bytes, int64_t rows, int64_t cols, size_t *row_bytes, int64_t *n_aux0,
                int64_t *n_aux1) {
    (void)rows;
    if (cols % LQ_QK_K != 0) return 0; /* super-blocks of 256 weights along a row */
    if (row_bytes) *row_bytes = (size_t)(cols / LQ_QK_K) * block_bytes;
    if (n_aux0) *n_aux0 = 0;
    if (n_aux1) *n_aux1 = 0;
    return 1;
}

/* One format's ref trio, from its block type and block functions. */
#define KQ_REFS(n, blk)                                                                            \
    void lq_dequant_##n##_ref(const lq_weight *w, int64_t r0, int64_t r1, float *out) {            \
        const int64_t nb = w->cols / LQ_QK_K;                                                      \
        for (int64_t r = r0; r < r1; r++) {                                                        \
            const blk *b = (const blk *)((const char *)w->data + (size_t)r * w->row_bytes);        \
            float *o = out + (size_t)(r - r0) * (size_t)w->cols;                                   \
            for (int64_t i = 0; i < nb; i++) lq_kq_dequant_##n(b + i, o + i * LQ_QK_K);            \
        }                                                                                          \
    }                                                                                              \
    void lq_matvec_##n##_ref(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) { \
        const int64_t nb = w->cols / LQ_QK_K;                                                      \
        float v[LQ_QK_K];                                                                          \
        for (int64_t r = r0; r < r1; r++) {                                                        \
            const blk *b = (const blk *)((const char *)w->data + (size_t)r * w->row_bytes);        \
            double s = 0.0;                                                                        \
            for (int64_t i = 0; i < nb; i++) {                                                     \
                lq_kq_dequant_##n(b + i, v);                                                       \
                for (int c = 0; c < LQ_QK_K; c++) s += (double)v[c] * (double)x[i * LQ_QK_K + c];  \
            }                                                                                      \
            y[r - r0] = (float)s;                                                                  \
        }                                                                                          \
    }                                                                                              \
    int lq_sizes_##n(int64_t rows, int64_t cols, const lq_quant_params *p, size_t *rb, int64_t *a0, \
                     int64_t *a1) {                                                                \
        (void)p;                                                                                   \
        return lq_kq_sizes(sizeof(blk), rows, cols, rb, a0, a1);                                   \
    }                                                                                              \
    void lq_quantize_##n##_ref(const float *src, const lq_quant_params *p, lq_weight *dst) {      \
        const float *qw = p ? p->col_weight : NULL; /* the imatrix: ggml's weighted quantizer */  \
        const int64_t nb = dst->cols / LQ_QK_K;                                                    \
        dst->group_size = 0;                                                                       \
        for (int64_t r = 0; r < dst->rows; r++) {                                                  \
            blk *b = (blk *)((char *)dst->data + (size_t)r * dst->row_bytes);                      \
            const float *x = src + (size_t)r * (size_t)dst->cols;                                  \
            for (int64_t i = 0; i < nb; i++) {                                                     \
                if (qw) lq_kq_quantize_w_##n(x + i * LQ_QK_K, qw + i * LQ_QK_K, b + i);            \
                else lq_kq_quantize_##n(x + i * LQ_QK_K, b + i);                                   \
            }                                                                                      \
        }                                                                                          \
    }

KQ_REFS(q2_K, lq_block_q2_K)
KQ_REFS(q3_K, lq_block_q3_K)
KQ_REFS(q4_K, lq_block_q4_K)
KQ_REFS(q5_K, lq_block_q5_K)
KQ_REFS(q6_K, lq_block_q6_K)
KQ_REFS(iq4_xs, lq_block_iq4_xs)
