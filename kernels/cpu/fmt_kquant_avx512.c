/* fmt_kquant_avx512.c - AVX-512 (BW + VNNI) twins of the Q4_K, Q5_K and Q6_K integer-activation
 * kernels (matvec_q and gemm_q; the AVX2 ones are fmt_kquant_gemm_avx2.c, the spec
 * fmt_kquant_q.c): the unpacking of one super-block into kq512_blk; the token loop, and why it
 * is exact up to the f32 order the rows' tol covers, is kq_avx512_tmpl.h.
 *
 * Byte order of the codes: Q4_K / Q5_K store sub-blocks 2j and 2j+1 as the low and high nibbles
 * of the same 32 bytes, Q6_K four 32-code groups as nibbles of two 32-byte runs plus 2-bit pairs
 * of qh; each is rearranged (128-bit lane shuffles, once per block) so that vector k holds x codes
 * 64k..64k+63 and a token's activations load straight from its Q8_K block.
 */
#include "kq_avx512_tmpl.h"

#include <string.h>

/* ggml's Q4_K / Q5_K scale and min unpacking (utmp): bytes 0..7 the 6-bit scales, 8..15 the
 * 6-bit mins */
static inline __m128i q45_sc_mins(const uint8_t *s12) {
    uint32_t utmp[4];
    lq_kq_q45_utmp(s12, utmp);
    return _mm_set_epi32((int)utmp[3], (int)utmp[2], (int)utmp[1], (int)utmp[0]);
}

/* the Q4_K / Q5_K parts shared: scales per sub-block of 32, mins per bsum (two per sub-block),
 * the low nibbles of qs */
static inline void q45_common(const uint8_t *scales, const uint8_t *qs, lq_f16 d, lq_f16 dmin, kq512_blk *u) {
    u->d = kq512_h2f(d);
    u->dmin = kq512_h2f(dmin);
    const __m128i sm = q45_sc_mins(scales);
    const __m128i sc16 = _mm_cvtepu8_epi16(sm); /* the 8 scales as int16 */
    _Pragma("GCC unroll 4")
    for (int k = 0; k < 4; k++) u->s[k] = kq512_pair16(sc16, 2 * k, 2 * k + 1);
    const __m128i mdup = _mm_set_epi8(15, 15, 14, 14, 13, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8);
    u->bk = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(sm, mdup));
    const __m512i m4 = _mm512_set1_epi8(0xF);
    _Pragma("GCC unroll 4")
    for (int p = 0; p < 2; p++) {
        /* bytes 0..31: sub-blocks 4p (low nibbles), 4p+1 (high); bytes 32..63: 4p+2, 4p+3 */
        const __m512i bits = _mm512_loadu_si512((const void *)(qs + 64 * p));
        const __m512i lo = _mm512_and_si512(bits, m4), hi = _mm512_and_si512(_mm512_srli_epi16(bits, 4), m4);
        u->c[2 * p] = _mm512_shuffle_i64x2(lo, hi, _MM_SHUFFLE(1, 0, 1, 0));     /* 4p | 4p+1 */
        u->c[2 * p + 1] = _mm512_shuffle_i64x2(lo, hi, _MM_SHUFFLE(3, 2, 3, 2)); /* 4p+2 | 4p+3 */
    }
}

static inline void unpack_q4_K(const lq_block_q4_K *b, kq512_blk *u) { q45_common(b->scales, b->qs, b->d, b->dmin, u); }

/* Q5_K: sub-block s takes bit s of qh[l] as its code's 16 */
static inline void unpack_q5_K(const lq_block_q5_K *b, kq512_blk *u) {
    q45_common(b->scales, b->qs, b->d, b->dmin, u);
    const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)b->qh));
    const __m512i sixteen = _mm512_set1_epi8(16);
    _Pragma("GCC unroll 4")
    for (int k = 0; k < 4; k++) {
        const __m512i sel = kq512_cat(_mm256_set1_epi8((char)(1 << (2 * k))), _mm256_set1_epi8((char)(1 << (2 * k + 1))));
        u->c[k] = _mm512_mask_add_epi8(u->c[k], _mm512_test_epi8_mask(qh, sel), u->c[k], sixteen);
    }
}

/* Q6_K: codes 0..63 (the -32 folds into bsums), 16 int8 scales of sub-blocks of 16 */
static inline void unpack_q6_K(const lq_block_q6_K *b, kq512_blk *u) {
    u->d = kq512_h2f(b->d);
    u->dmin = 0.0f;
    const __m128i sc8 = _mm_loadu_si128((const __m128i *)b->scales);
    const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
    _Pragma("GCC unroll 4")
    for (int k = 0; k < 4; k++) u->s[k] = kq512_quad8(sc8, 4 * k, 1);
    u->bk = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(sc16, 5)); /* -32 * scale */
    const __m512i m3 = _mm512_set1_epi8(3), m15 = _mm512_set1_epi8(15);
    _Pragma("GCC unroll 4")
    for (int j = 0; j < 2; j++) {
        /* x codes 128j + [0..31 | 32..63]: low nibbles of ql runs 1 | 2, qh bits 0-1 | 2-3;
         * 128j + [64..95 | 96..127]: their high nibbles, qh bits 4-5 | 6-7 */
        const __m512i ql = _mm512_loadu_si512((const void *)(b->ql + 64 * j));
        const __m256i bh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * j));
        const __m512i qh = kq512_cat(bh, _mm256_srli_epi16(bh, 2));
        u->c[2 * j] = _mm512_or_si512(_mm512_and_si512(ql, m15), _mm512_slli_epi16(_mm512_and_si512(qh, m3), 4));
        u->c[2 * j + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m15),
                                          _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(qh, 4), m3), 4));
    }
}

KQ512_DEFINE(q4_K, lq_block_q4_K, unpack_q4_K, KQ512_MIN)
KQ512_DEFINE(q5_K, lq_block_q5_K, unpack_q5_K, KQ512_MIN)
KQ512_DEFINE(q6_K, lq_block_q6_K, unpack_q6_K, KQ512_FOLD)
