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

/* ggml's get_scale_shuffle_k4: one int16 scale over all 32 bytes. */
static inline __m256i shuf_k4(int i) { return _mm256_set1_epi16((short)(2 * i | (2 * i + 1) << 8)); }

/* Q6_K's get_scale_shuffle: int8 scales, 8 bytes each of two. */
static inline __m128i shuf_q6(int i) {
    return _mm_set_epi8((char)(2 * i + 1), (char)(2 * i + 1), (char)(2 * i + 1), (char)(2 * i + 1),
                        (char)(2 * i + 1), (char)(2 * i + 1), (char)(2 * i + 1), (char)(2 * i + 1),
                        (char)(2 * i), (char)(2 * i), (char)(2 * i), (char)(2 * i), (char)(2 * i),
                        (char)(2 * i), (char)(2 * i), (char)(2 * i));
}

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

/* Q4_K / Q5_K scale + min bytes as ggml unpacks them: utmp[0..1] = 8 scales, utmp[2..3] = 8 mins. */
static inline __m256i q45_scales_mins(const uint8_t *s12) {
    const uint32_t kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
    uint32_t utmp[4];
    memcpy(utmp, s12, 12);
    utmp[3] = ((utmp[2] >> 4) & kmask2) | (((utmp[1] >> 6) & kmask3) << 4);
    const uint32_t uaux = utmp[1] & kmask1;
    utmp[1] = (utmp[2] & kmask2) | (((utmp[0] >> 6) & kmask3) << 4);
    utmp[2] = uaux;
    utmp[0] &= kmask1;
    return _mm256_cvtepu8_epi16(_mm_set_epi32((int)utmp[3], (int)utmp[2], (int)utmp[1], (int)utmp[0]));
}

/* sum_j min_j * (bsum_{2j} + bsum_{2j+1}) as 4 int32 lanes */
static inline __m128i q45_min_prod(__m256i mins_and_scales, const int16_t *bsums) {
    const __m256i q8sums = ld(bsums);
    const __m128i q8s = _mm_hadd_epi16(_mm256_extracti128_si256(q8sums, 0), _mm256_extracti128_si256(q8sums, 1));
    return _mm_madd_epi16(_mm256_extracti128_si256(mins_and_scales, 1), q8s);
}

static float row_q4_K(const lq_block_q4_K *x, const lq_block_q8_K *y, int64_t nb) {
    const __m256i m4 = _mm256_set1_epi8(0xF);
    __m256 acc = _mm256_setzero_ps();
    __m128 acc_m = _mm_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
        const float d = y[i].d * h2f(x[i].d);
        const float dmin = -y[i].d * h2f(x[i].dmin);
        const __m256i ms = q45_scales_mins(x[i].scales);
        acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(q45_min_prod(ms, y[i].bsums)), acc_m);
        const __m128i sc128 = _mm256_extracti128_si256(ms, 0);
        const __m256i scales = SET_M128I(sc128, sc128);
        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < LQ_QK_K / 64; ++j, q4 += 32, q8 += 64) {
            const __m256i q4bits = ld(q4);
            __m256i pl = _mm256_maddubs_epi16(_mm256_and_si256(q4bits, m4), ld(q8));
            __m256i ph = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(q4bits, 4), m4), ld(q8 + 32));
            pl = _mm256_madd_epi16(_mm256_shuffle_epi8(scales, shuf_k4(2 * j)), pl);
            ph = _mm256_madd_epi16(_mm256_shuffle_epi8(scales, shuf_k4(2 * j + 1)), ph);
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    acc_m = _mm_add_ps(acc_m, _mm_movehl_ps(acc_m, acc_m));
    acc_m = _mm_add_ss(acc_m, _mm_movehdup_ps(acc_m));
    return hsum8(acc) + _mm_cvtss_f32(acc_m);
}

static float row_q5_K(const lq_block_q5_K *x, const lq_block_q8_K *y, int64_t nb) {
    const __m256i m4 = _mm256_set1_epi8(0xF), mone = _mm256_set1_epi8(1);
    const __m128i mzero = _mm_setzero_si128();
    __m256 acc = _mm256_setzero_ps();
    float summs = 0.f;
    for (int64_t i = 0; i < nb; ++i) {
        const float d = y[i].d * h2f(x[i].d);
        const float dmin = -y[i].d * h2f(x[i].dmin);
        const __m256i ms = q45_scales_mins(x[i].scales);
        const __m128i prod = q45_min_prod(ms, y[i].bsums);
        const __m128i hsum = _mm_hadd_epi32(_mm_hadd_epi32(prod, mzero), mzero);
        summs += dmin * (float)_mm_extract_epi32(hsum, 0);
        const __m128i sc128 = _mm256_extracti128_si256(ms, 0);
        const __m256i scales = SET_M128I(sc128, sc128);
        const __m256i hbits = ld(x[i].qh);
        __m256i hmask = mone;
        const uint8_t *q5 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        int bit = 0;
        for (int j = 0; j < LQ_QK_K / 64; ++j, q5 += 32, q8 += 64) {
            const __m256i q5bits = ld(q5);
            const __m256i q5h0 = _mm256_slli_epi16(_mm256_srli_epi16(_mm256_and_si256(hbits, hmask), bit++), 4);
            const __m256i q5_0 = _mm256_add_epi8(_mm256_and_si256(q5bits, m4), q5h0);
            hmask = _mm256_slli_epi16(hmask, 1);
            const __m256i q5h1 = _mm256_slli_epi16(_mm256_srli_epi16(_mm256_and_si256(hbits, hmask), bit++), 4);
            const __m256i q5_1 = _mm256_add_epi8(_mm256_and_si256(_mm256_srli_epi16(q5bits, 4), m4), q5h1);
            hmask = _mm256_slli_epi16(hmask, 1);
            __m256i p0 = _mm256_maddubs_epi16(q5_0, ld(q8));
            __m256i p1 = _mm256_maddubs_epi16(q5_1, ld(q8 + 32));
            p0 = _mm256_madd_epi16(_mm256_shuffle_epi8(scales, shuf_k4(2 * j)), p0);
            p1 = _mm256_madd_epi16(_mm256_shuffle_epi8(scales, shuf_k4(2 * j + 1)), p1);
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum8(acc) + summs;
}

static float row_q6_K(const lq_block_q6_K *x, const lq_block_q8_K *y, int64_t nb) {
    const __m256i m3 = _mm256_set1_epi8(3), m15 = _mm256_set1_epi8(15);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
        const float d = y[i].d * h2f(x[i].d);
        const uint8_t *q4 = x[i].ql, *qh = x[i].qh;
        const int8_t *q8 = y[i].qs;
        const __m128i scales = _mm_loadu_si128((const __m128i *)x[i].scales);
        const __m256i q8sclsub = _mm256_slli_epi32(_mm256_madd_epi16(ld(y[i].bsums), _mm256_cvtepi8_epi16(scales)), 5);
        __m256i sumi = _mm256_setzero_si256();
        int is = 0;
        for (int j = 0; j < LQ_QK_K / 128; ++j, q4 += 64, qh += 32, q8 += 128, is += 4) {
            const __m256i b1 = ld(q4), b2 = ld(q4 + 32), bh = ld(qh);
            const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(bh, m3), 4);
            const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(bh, _mm256_set1_epi8(12)), 2);
            const __m256i h2 = _mm256_and_si256(bh, _mm256_set1_epi8(48));
            const __m256i h3 = _mm256_srli_epi16(_mm256_and_si256(bh, _mm256_set1_epi8(-64)), 2);
            const __m256i c0 = _mm256_or_si256(_mm256_and_si256(b1, m15), h0);
            const __m256i c1 = _mm256_or_si256(_mm256_and_si256(b2, m15), h1);
            const __m256i c2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b1, 4), m15), h2);
            const __m256i c3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b2, 4), m15), h3);
            __m256i p0 = _mm256_maddubs_epi16(c0, ld(q8));
            __m256i p1 = _mm256_maddubs_epi16(c1, ld(q8 + 32));
            __m256i p2 = _mm256_maddubs_epi16(c2, ld(q8 + 64));
            __m256i p3 = _mm256_maddubs_epi16(c3, ld(q8 + 96));
            p0 = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales, shuf_q6(is + 0))), p0);
            p1 = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales, shuf_q6(is + 1))), p1);
            p2 = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales, shuf_q6(is + 2))), p2);
            p3 = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales, shuf_q6(is + 3))), p3);
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p2, p3));
        }
        sumi = _mm256_sub_epi32(sumi, q8sclsub); /* the -32 of every code: 32 * scale * bsum */
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum8(acc);
}

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
KQ_Q_AVX2(q4_K, lq_block_q4_K)
KQ_Q_AVX2(q5_K, lq_block_q5_K)
KQ_Q_AVX2(q6_K, lq_block_q6_K)
KQ_Q_AVX2(iq4_xs, lq_block_iq4_xs)
