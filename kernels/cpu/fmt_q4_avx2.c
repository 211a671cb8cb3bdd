/* fmt_q4_avx2.c - GGUF Q4_0, Q4_1 and IQ4_NL fast paths (loops in blk_avx2_tmpl.h). A block's 16
 * code bytes split into elements 0-15 (low nibbles) and 16-31 (high nibbles) with one mask and
 * one shift; Q4_0 subtracts 8 in bytes, IQ4_NL looks its grid values up with one pshufb, then
 * the signed bytes widen to exact floats. */
#include <immintrin.h>

#include "blk_q8_avx2.h"
#include "kern_internal.h"
#include "lq_blocks.h"

/* the 16 bytes at qs -> low nibbles (elements 0..15) and high nibbles (16..31) */
static inline void q4_nibbles(const uint8_t *qs, __m128i *lo, __m128i *hi) {
    const __m128i v = _mm_loadu_si128((const __m128i *)qs), m = _mm_set1_epi8(0x0f);
    *lo = _mm_and_si128(v, m);
    *hi = _mm_and_si128(_mm_srli_epi16(v, 4), m);
}

/* 16 signed bytes -> two vectors of 8 exact floats */
static inline void q4_widen(__m128i v, __m256 *c) {
    c[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
    c[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v, 8)));
}

static inline void q4_0_codes(const uint8_t *b, __m256 *c) {
    __m128i lo, hi;
    q4_nibbles(b + 2, &lo, &hi);
    const __m128i eight = _mm_set1_epi8(8);
    q4_widen(_mm_sub_epi8(lo, eight), c);
    q4_widen(_mm_sub_epi8(hi, eight), c + 2);
}

static inline void q4_1_codes(const uint8_t *b, __m256 *c) {
    __m128i lo, hi;
    q4_nibbles(b + 4, &lo, &hi);
    q4_widen(lo, c);
    q4_widen(hi, c + 2);
}

static inline void iq4_nl_codes(const uint8_t *b, __m256 *c) {
    const __m128i grid = _mm_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
    __m128i lo, hi;
    q4_nibbles(b + 2, &lo, &hi);
    q4_widen(_mm_shuffle_epi8(grid, lo), c);
    q4_widen(_mm_shuffle_epi8(grid, hi), c + 2);
}

#define BLK_MATVEC lq_matvec_q4_0_avx2
#define BLK_DEQUANT lq_dequant_q4_0_avx2
#define BLK_BYTES 18
#define BLK_MIN 0
#define BLK_CODES(p, c) q4_0_codes((p), (c))
#include "blk_avx2_tmpl.h"

#define BLK_MATVEC lq_matvec_q4_1_avx2
#define BLK_DEQUANT lq_dequant_q4_1_avx2
#define BLK_BYTES 20
#define BLK_MIN 1
#define BLK_CODES(p, c) q4_1_codes((p), (c))
#include "blk_avx2_tmpl.h"

#define BLK_MATVEC lq_matvec_iq4_nl_avx2
#define BLK_DEQUANT lq_dequant_iq4_nl_avx2
#define BLK_BYTES 18
#define BLK_MIN 0
#define BLK_CODES(p, c) iq4_nl_codes((p), (c))
#include "blk_avx2_tmpl.h"

/* ---- integer activations (blk_q8_tmpl.h) ----
 * Q4_0: the unsigned nibbles u meet y in maddubs, minus the pair sums of 8 y (computed once per
 * activation block for all rows): (u - 8) y exactly, one sign trick fewer than ggml's.
 * Q4_1: u y directly (Q8_1; the minimum comes in as m * s). IQ4_NL: the grid values (signed,
 * |v| <= 127) by one pshufb, then the sign trick. */
static inline __m256i q4_0_prep(__m256i y) { return _mm256_maddubs_epi16(_mm256_set1_epi8(8), y); }
static inline __m256i iq4_nl_grid(const uint8_t *b) {
    const __m256i grid = _mm256_broadcastsi128_si256(
        _mm_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113));
    return _mm256_shuffle_epi8(grid, qd_nibbles(b + 2));
}

#define QD_NAME lq_matvec_q_q4_0_avx2
#define QD_GEMM lq_gemm_q_q4_0_avx2
#define QD_WBYTES 18
#define QD_Q81 0
#define QD_CODES(b) qd_nibbles((b) + 2)
#define QD_PREP(y) q4_0_prep(y)
#define QD_MUL(c, y, a) qd_dot_us_off((c), (y), (a))
#include "blk_q8_tmpl.h"

#define QD_NAME lq_matvec_q_q4_1_avx2
#define QD_GEMM lq_gemm_q_q4_1_avx2
#define QD_WBYTES 20
#define QD_Q81 1
#define QD_CODES(b) qd_nibbles((b) + 4)
#define QD_PREP(y) _mm256_setzero_si256()
#define QD_MUL(c, y, a) qd_dot_us((c), (y))
#include "blk_q8_tmpl.h"

#define QD_NAME lq_matvec_q_iq4_nl_avx2
#define QD_GEMM lq_gemm_q_iq4_nl_avx2
#define QD_WBYTES 18
#define QD_Q81 0
#define QD_CODES(b) iq4_nl_grid(b)
#define QD_PREP(y) _mm256_setzero_si256()
#define QD_MUL(c, y, a) qd_dot_ss((c), (y))
#include "blk_q8_tmpl.h"
