/* fmt_kquant_q_avx2.c - AVX2 twins of fmt_kquant_q.c: K-quants and IQ4_XS times Q8_K activations,
 * the operations of ggml's x86 AVX2 vec_dot_<type>_q8_K (ggml-cpu/arch/x86/quants.c).
 *
 * Weight codes are unsigned bytes (Q2_K 0..3, Q4_K 0..15, Q5_K 0..31, Q6_K 0..63; Q3_K's low two
 * bits with its high bit handled as a subtracted 4 * x) so maddubs(codes, x) multiplies them with
 * the signed activation codes exactly: a pair is at most 2 * 63 * 128 < 2^15, so it never
 * saturates. madd with the sub-block scale (int16) widens pairs to int32; the block's int32 lanes
 * become one f32 vector times d_w d_x. Q6_K's -32 and the mins of Q2_K / Q4_K / Q5_K fold into
 * bsums (scale * min * bsum), as in ggml. IQ4_XS's levels are signed: sign(x, w) with |w|.
 * Only the f32 order of the per-block sums differs from the scalar spec (the int32 sums are the
 * same exact integers), hence the row's tol.
 */
#include <immintrin.h>
#include <string.h>

#include "kern_internal.h"
#include "kq_internal.h"

static inline float hsum8(__m256 x) {
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

static inline float h2f(lq_f16 h) { return _cvtsh_ss(h); }

#define SET_M128I(hi, lo) _mm256_inserti128_si256(_mm256_castsi128_si256(lo), (hi), 1)

/* ggml's get_scale_shuffle_q3k: int16 scale pairs (2 per 32-byte step) spread over the lanes. */
static const uint8_t k_shuf_q3k[128] = {
    0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,         2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3,
    4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5,         6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7,
    8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9,         10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11,
    12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15,
};
static inline __m256i shuf_q3k(int i) { return _mm256_loadu_si256((const __m256i *)k_shuf_q3k + i); }



static inline __m256i ld(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

static float row_q2_K(const lq_block_q2_K *x, const lq_block_q8_K *y, int64_t nb) {
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m128i m4 = _mm_set1_epi8(0xF);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
        const float d = y[i].d * h2f(x[i].d);
        const float dmin = -y[i].d * h2f(x[i].dmin);
        const uint8_t *q2 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        const __m128i mins_and_scales = _mm_loadu_si128((const __m128i *)x[i].scales);
        const __m128i scales8 = _mm_and_si128(mins_and_scales, m4);
        const __m128i mins8 = _mm_and_si128(_mm_srli_epi16(mins_and_scales, 4), m4);
        const __m256i mins = _mm256_cvtepi8_epi16(mins8);
        const __m256i prod = _mm256_madd_epi16(mins, ld(y[i].bsums));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(prod), acc);
        const __m256i all_scales = _mm256_cvtepi8_epi16(scales8);
        const __m128i l_sc = _mm256_extracti128_si256(all_scales, 0), h_sc = _mm256_extracti128_si256(all_scales, 1);
        const __m256i scales[2] = {SET_M128I(l_sc, l_sc), SET_M128I(h_sc, h_sc)};
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < LQ_QK_K / 128; ++j, q2 += 32, q8 += 128) {
            const __m256i q2bits = ld(q2);
            __m256i p0 = _mm256_maddubs_epi16(_mm256_and_si256(q2bits, m3), ld(q8));
            __m256i p1 = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(q2bits, 2), m3), ld(q8 + 32));
            __m256i p2 = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(q2bits, 4), m3), ld(q8 + 64));
            __m256i p3 = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(q2bits, 6), m3), ld(q8 + 96));
            p0 = _mm256_madd_epi16(_mm256_shuffle_epi8(scales[j], shuf_q3k(0)), p0);
            p1 = _mm256_madd_epi16(_mm256_shuffle_epi8(scales[j], shuf_q3k(1)), p1);
            p2 = _mm256_madd_epi16(_mm256_shuffle_epi8(scales[j], shuf_q3k(2)), p2);
            p3 = _mm256_madd_epi16(_mm256_shuffle_epi8(scales[j], shuf_q3k(3)), p3);
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(_mm256_add_epi32(p0, p1), _mm256_add_epi32(p2, p3)));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum8(acc);
}

static float row_q3_K(const lq_block_q3_K *x, const lq_block_q8_K *y, int64_t nb) {
    const uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
    const __m256i m3 = _mm256_set1_epi8(3), mone = _mm256_set1_epi8(1);
    const __m128i m32 = _mm_set1_epi8(32);
    __m256 acc = _mm256_setzero_ps();
    uint32_t aux[3];
    for (int64_t i = 0; i < nb; ++i) {
        const float d = y[i].d * h2f(x[i].d);
        const uint8_t *q3 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        memcpy(aux, x[i].scales, 12);
        __m128i scales128 = _mm_set_epi32((int)(((aux[1] >> 4) & kmask2) | (((aux[2] >> 6) & kmask1) << 4)),
                                          (int)(((aux[0] >> 4) & kmask2) | (((aux[2] >> 4) & kmask1) << 4)),
                                          (int)((aux[1] & kmask2) | (((aux[2] >> 2) & kmask1) << 4)),
                                          (int)((aux[0] & kmask2) | (((aux[2] >> 0) & kmask1) << 4)));
        scales128 = _mm_sub_epi8(scales128, m32);
        const __m256i all_scales = _mm256_cvtepi8_epi16(scales128);
        const __m128i l_sc = _mm256_extracti128_si256(all_scales, 0), h_sc = _mm256_extracti128_si256(all_scales, 1);
        const __m256i scales[2] = {SET_M128I(l_sc, l_sc), SET_M128I(h_sc, h_sc)};
        const __m256i hbits = ld(x[i].hmask);
        __m256i sumi = _mm256_setzero_si256();
        int bit = 0;
        for (int j = 0; j < LQ_QK_K / 128; ++j, q3 += 32) {
            const __m256i q3bits = ld(q3);
            for (int k = 0; k < 4; ++k, ++bit, q8 += 32) {
                /* bit clear: code - 4, i.e. subtract 4 * x (maddubs of 4 or 0 with x) */
                const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(q3bits, 2 * k), m3);
                const __m256i hi = _mm256_slli_epi16(
                    _mm256_srli_epi16(_mm256_andnot_si256(hbits, _mm256_slli_epi16(mone, bit)), bit), 2);
                const __m256i q8v = ld(q8);
                __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(lo, q8v), _mm256_maddubs_epi16(hi, q8v));
                p16 = _mm256_madd_epi16(_mm256_shuffle_epi8(scales[j], shuf_q3k(k)), p16);
                sumi = _mm256_add_epi32(sumi, p16);
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum8(acc);
}

/* Q4_K, Q5_K, Q6_K: fmt_kquant_gemm_avx2.c (one kernel for one token and for several). */

static float row_iq4_xs(const lq_block_iq4_xs *x, const lq_block_q8_K *y, int64_t nb) {
    const __m128i values128 = _mm_loadu_si128((const __m128i *)lq_kq_iq4nl_values);
    const __m128i m4b = _mm_set1_epi8(0x0f);
    __m256 accum = _mm256_setzero_ps();
    for (int64_t ibl = 0; ibl < nb; ++ibl) {
        const uint8_t *qs = x[ibl].qs;
        const int8_t *q8 = y[ibl].qs;
        uint16_t sh = x[ibl].scales_h;
        __m256i sumi1 = _mm256_setzero_si256(), sumi2 = _mm256_setzero_si256();
        for (int ib = 0; ib < LQ_QK_K / 32; ib += 2, qs += 32, q8 += 64) {
            const __m128i b1 = _mm_loadu_si128((const __m128i *)qs), b2 = _mm_loadu_si128((const __m128i *)(qs + 16));
            const __m256i w1 = SET_M128I(_mm_shuffle_epi8(values128, _mm_and_si128(_mm_srli_epi16(b1, 4), m4b)),
                                         _mm_shuffle_epi8(values128, _mm_and_si128(b1, m4b)));
            const __m256i w2 = SET_M128I(_mm_shuffle_epi8(values128, _mm_and_si128(_mm_srli_epi16(b2, 4), m4b)),
                                         _mm_shuffle_epi8(values128, _mm_and_si128(b2, m4b)));
            const __m256i x1 = ld(q8), x2 = ld(q8 + 32);
            const __m256i p1 = _mm256_maddubs_epi16(_mm256_sign_epi8(w1, w1), _mm256_sign_epi8(x1, w1));
            const __m256i p2 = _mm256_maddubs_epi16(_mm256_sign_epi8(w2, w2), _mm256_sign_epi8(x2, w2));
            const int16_t ls1 = (int16_t)(((x[ibl].scales_l[ib / 2] & 0xf) | ((sh << 4) & 0x30)) - 32);
            const int16_t ls2 = (int16_t)(((x[ibl].scales_l[ib / 2] >> 4) | ((sh << 2) & 0x30)) - 32);
            sh >>= 4;
            sumi1 = _mm256_add_epi32(_mm256_madd_epi16(p1, _mm256_set1_epi16(ls1)), sumi1);
            sumi2 = _mm256_add_epi32(_mm256_madd_epi16(p2, _mm256_set1_epi16(ls2)), sumi2);
        }
        accum = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[ibl].d) * y[ibl].d),
                                _mm256_cvtepi32_ps(_mm256_add_epi32(sumi1, sumi2)), accum);
    }
    return hsum8(accum);
}

#define KQ_Q_AVX2(n, blk)                                                                          \
    void lq_matvec_q_##n##_avx2(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1) { \
        const int64_t nb = w->cols / LQ_QK_K;                                                      \
        for (int64_t r = r0; r < r1; r++)                                                          \
            y[r - r0] = row_##n((const blk *)((const char *)w->data + (size_t)r * w->row_bytes),    \
                                (const lq_block_q8_K *)xq, nb);                                    \
    }

KQ_Q_AVX2(q2_K, lq_block_q2_K)
KQ_Q_AVX2(q3_K, lq_block_q3_K)
KQ_Q_AVX2(iq4_xs, lq_block_iq4_xs)
