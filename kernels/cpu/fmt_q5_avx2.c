/* fmt_q5_avx2.c - GGUF Q5_0 and Q5_1 fast paths (loops in blk_avx2_tmpl.h). The low 4 bits come
 * as in Q4 (mask, shift); the fifth bits (qh, bit j for element j) spread to bytes with a pshufb
 * that copies each qh byte to 8 lanes, an AND with the lane's bit and a compare; Q5_0 then
 * subtracts 16 in bytes, and the signed bytes widen to exact floats. */
#include <immintrin.h>

#include "blk_q8_avx2.h"
#include "kern_internal.h"
#include "lq_blocks.h"

/* the 32 bits of qh (bit j for element j) -> 32 bytes, 0x10 where the bit is set: each qh byte
 * copied to 8 lanes, AND with the lane's bit, compare. Lanes 0-15 are elements 0-15 (low 128 bits),
 * 16-31 elements 16-31. */
static inline __m256i q5_high(uint32_t bits) {
    const __m256i v = _mm256_set1_epi32((int)bits);
    const __m256i spread = _mm256_shuffle_epi8(v, _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                                                   2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(0x10));
}

static inline void q5_widen(__m128i v, __m256 *c) {
    c[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
    c[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v, 8)));
}

/* the 32 codes of the qh word + 16 nibble bytes at p, minus off */
static inline void q5_codes(const uint8_t *p, int off, __m256 *c) {
    const uint32_t qh = lq_blk_u32(p);
    const __m128i v = _mm_loadu_si128((const __m128i *)(p + 4)), m = _mm_set1_epi8(0x0f);
    const __m128i o = _mm_set1_epi8((char)off);
    const __m256i h = q5_high(qh);
    const __m128i lo = _mm_or_si128(_mm_and_si128(v, m), _mm256_castsi256_si128(h));
    const __m128i hi = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm256_extracti128_si256(h, 1));
    q5_widen(_mm_sub_epi8(lo, o), c);
    q5_widen(_mm_sub_epi8(hi, o), c + 2);
}

#define BLK_MATVEC lq_matvec_q5_0_avx2
#define BLK_DEQUANT lq_dequant_q5_0_avx2
#define BLK_BYTES 22
#define BLK_MIN 0
#define BLK_CODES(p, c) q5_codes((p) + 2, 16, (c))
#include "blk_avx2_tmpl.h"

#define BLK_MATVEC lq_matvec_q5_1_avx2
#define BLK_DEQUANT lq_dequant_q5_1_avx2
#define BLK_BYTES 24
#define BLK_MIN 1
#define BLK_CODES(p, c) q5_codes((p) + 4, 0, (c))
#include "blk_avx2_tmpl.h"

/* ---- integer activations (blk_q8_tmpl.h) ----
 * The 5-bit codes u (nibbles | fifth bit, 0..31) meet y unsigned in maddubs; Q5_0 subtracts the
 * pair sums of 16 y (once per activation block for all rows): (u - 16) y exactly, pairs at most
 * 2 * 31 * 127. Q5_1 takes u y directly (Q8_1; the minimum comes in as m * s). */
static inline __m256i q5_u(const uint8_t *p) {
    return _mm256_or_si256(qd_nibbles(p + 4), q5_high(lq_blk_u32(p)));
}
static inline __m256i q5_0_prep(__m256i y) { return _mm256_maddubs_epi16(_mm256_set1_epi8(16), y); }

#define QD_NAME lq_matvec_q_q5_0_avx2
#define QD_GEMM lq_gemm_q_q5_0_avx2
#define QD_WBYTES 22
#define QD_Q81 0
#define QD_CODES(b) q5_u((b) + 2)
#define QD_PREP(y) q5_0_prep(y)
#define QD_MUL(c, y, a) qd_dot_us_off((c), (y), (a))
#include "blk_q8_tmpl.h"

#define QD_NAME lq_matvec_q_q5_1_avx2
#define QD_GEMM lq_gemm_q_q5_1_avx2
#define QD_WBYTES 24
#define QD_Q81 1
#define QD_CODES(b) q5_u((b) + 4)
#define QD_PREP(y) _mm256_setzero_si256()
#define QD_MUL(c, y, a) qd_dot_us((c), (y))
#include "blk_q8_tmpl.h"
