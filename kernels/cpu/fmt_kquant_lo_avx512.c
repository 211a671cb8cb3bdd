/* fmt_kquant_lo_avx512.c - AVX-512 (BW + VNNI) twins of the Q2_K, Q3_K and IQ4_XS
 * integer-activation kernels (matvec_q, and a gemm_q the AVX2 level lacks; AVX2:
 * fmt_kquant_q_avx2.c, spec: fmt_kquant_q.c): the unpacking of one super-block into kq512_blk;
 * the token loop, and why it is exact up to the f32 order the rows' tol covers, is
 * kq_avx512_tmpl.h.
 *
 * Q2_K and Q3_K keep four 2-bit codes per byte, x codes 128j + 32s + l in bits 2s..2s+1 of byte
 * 32j + l: byte run j shifted by 0 | 2 gives vector 2j, shifted by 4 | 6 vector 2j + 1.
 */
#include "kq_avx512_tmpl.h"

#include <string.h>

/* vector 2j (s = 0, 1) and 2j + 1 (s = 2, 3) of the 2-bit codes of qs */
static inline void codes2(const uint8_t *qs, __m512i *c) {
    const __m512i m3 = _mm512_set1_epi8(3);
    _Pragma("GCC unroll 4")
    for (int j = 0; j < 2; j++) {
        const __m256i b = _mm256_loadu_si256((const __m256i *)(qs + 32 * j));
        const __m512i bb = kq512_cat(b, _mm256_srli_epi16(b, 2));
        c[2 * j] = _mm512_and_si512(bb, m3);
        c[2 * j + 1] = _mm512_and_si512(_mm512_srli_epi16(bb, 4), m3);
    }
}

/* Q2_K: scale (low nibble) and min (high nibble) per sub-block of 16; the mins meet bsums */
static inline void unpack_q2_K(const lq_block_q2_K *b, kq512_blk *u) {
    u->d = kq512_h2f(b->d);
    u->dmin = kq512_h2f(b->dmin);
    const __m128i sm = _mm_loadu_si128((const __m128i *)b->scales), m4 = _mm_set1_epi8(0xF);
    const __m128i sc8 = _mm_and_si128(sm, m4);
    _Pragma("GCC unroll 4")
    for (int k = 0; k < 4; k++) u->s[k] = kq512_quad8(sc8, 4 * k, 0);
    u->bk = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sm, 4), m4));
    codes2(b->qs, u->c);
}

/* Q3_K: code = low 2 bits - 4 where the hmask bit is clear; stored here as low + 4 * hbit
 * (0..7) with the -4 folded into bsums; 16 6-bit scales - 32 (lq_q3k_scale), unpacked in vector
 * lanes: low 4 bits = nibble j % 8 of bytes 0..7 (low nibbles first), high 2 bits = bits
 * 2 (j / 4) of byte 8 + j % 4 (the 12 bytes are read as 8 + 4: a 16-byte load would pass the
 * block's end) */
static inline void unpack_q3_K(const lq_block_q3_K *b, kq512_blk *u) {
    uint32_t s8_11;
    memcpy(&s8_11, b->scales + 8, 4);
    const __m128i v = _mm_loadl_epi64((const __m128i *)b->scales), m4 = _mm_set1_epi8(0xF);
    const __m128i lo = _mm_unpacklo_epi64(_mm_and_si128(v, m4), _mm_and_si128(_mm_srli_epi16(v, 4), m4));
    const __m128i hi = _mm_and_si128(_mm_srlv_epi32(_mm_set1_epi32((int)s8_11), _mm_set_epi32(6, 4, 2, 0)),
                                     _mm_set1_epi8(3));
    const __m128i s8 = _mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi16(hi, 4)), _mm_set1_epi8(32));
    const __m256i sc16 = _mm256_cvtepi8_epi16(s8);
    u->d = kq512_h2f(b->d);
    u->dmin = 0.0f;
    _Pragma("GCC unroll 4")
    for (int k = 0; k < 4; k++) u->s[k] = kq512_quad8(s8, 4 * k, 1);
    u->bk = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(sc16, 2)); /* -4 * scale */
    codes2(b->qs, u->c);
    /* vector k holds x codes 64k.. : shifts s = 2k % 4, +1 of byte run k / 2, hmask bits 2k, 2k+1 */
    const __m512i hm = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)b->hmask));
    const __m512i four = _mm512_set1_epi8(4);
    _Pragma("GCC unroll 4")
    for (int k = 0; k < 4; k++) {
        const __m512i sel = kq512_cat(_mm256_set1_epi8((char)(1 << (2 * k))), _mm256_set1_epi8((char)(1 << (2 * k + 1))));
        u->c[k] = _mm512_mask_add_epi8(u->c[k], _mm512_test_epi8_mask(hm, sel), u->c[k], four);
    }
}

/* IQ4_XS: signed levels from the 16-entry grid, 8 6-bit scales - 32 per sub-block of 32; sub-block
 * ib's 32 codes are the low then the high nibbles of qs[16 ib .. 16 ib + 15] */
static inline void unpack_iq4_xs(const lq_block_iq4_xs *b, kq512_blk *u) {
    u->d = kq512_h2f(b->d);
    u->dmin = 0.0f;
    /* lq_iq4xs_scale for ib = 0..7 in int16 lanes: low nibble ib of scales_l (4 bits at 4 (ib %
     * 4) of its 16-bit half ib / 4), 2 bits at 2 ib of scales_h, minus 32 (vector shifts: no
     * store-and-reload of scalars, which stalls store forwarding) */
    uint32_t sl;
    memcpy(&sl, b->scales_l, 4);
    const __m128i lo = _mm_and_si128(_mm_srlv_epi16(_mm_set_epi16((short)(sl >> 16), (short)(sl >> 16), (short)(sl >> 16),
                                                                  (short)(sl >> 16), (short)sl, (short)sl, (short)sl, (short)sl),
                                                    _mm_set_epi16(12, 8, 4, 0, 12, 8, 4, 0)),
                                     _mm_set1_epi16(0xF));
    const __m128i hi = _mm_and_si128(_mm_srlv_epi16(_mm_set1_epi16((short)b->scales_h), _mm_set_epi16(14, 12, 10, 8, 6, 4, 2, 0)),
                                     _mm_set1_epi16(3));
    const __m128i ls = _mm_sub_epi16(_mm_or_si128(lo, _mm_slli_epi16(hi, 4)), _mm_set1_epi16(32));
    _Pragma("GCC unroll 4")
    for (int k = 0; k < 4; k++) u->s[k] = kq512_pair16(ls, 2 * k, 2 * k + 1);
    u->bk = _mm256_setzero_si256();
    const __m512i grid = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)lq_kq_iq4nl_values));
    const __m512i m4 = _mm512_set1_epi8(0xF);
    _Pragma("GCC unroll 4")
    for (int k = 0; k < 4; k++) {
        /* [qa | qb] = bytes of sub-blocks 2k, 2k+1 -> 128-bit lanes qa, qa >> 4, qb, qb >> 4 */
        const __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * k));
        const __m512i z = kq512_cat(q, _mm256_srli_epi16(q, 4));
        const __m512i idx = _mm512_and_si512(_mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0)), m4);
        const __m512i w = _mm512_shuffle_epi8(grid, idx);
        u->neg[k] = _mm512_movepi8_mask(w);
        u->c[k] = _mm512_abs_epi8(w);
    }
}

KQ512_DEFINE(q2_K, lq_block_q2_K, unpack_q2_K, KQ512_MIN)
KQ512_DEFINE(q3_K, lq_block_q3_K, unpack_q3_K, KQ512_FOLD)
KQ512_DEFINE(iq4_xs, lq_block_iq4_xs, unpack_iq4_xs, KQ512_SIGN)
