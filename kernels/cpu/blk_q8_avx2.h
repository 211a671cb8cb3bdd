/* blk_q8_avx2.h - AVX2 helpers of the legacy blocks' integer-activation kernels (blk_q8_tmpl.h and
 * the fmt_*_avx2.c files that define their block dot products with them). */
#ifndef LQ_BLK_Q8_AVX2_H
#define LQ_BLK_Q8_AVX2_H
#include <immintrin.h>
#include <stdint.h>

static inline float qd_f16(const uint8_t *p) { return _cvtsh_ss((unsigned short)(p[0] | p[1] << 8)); }

/* the 16 nibble bytes at p -> 32 bytes 0..15: elements 0-15 (low nibbles) in the low lane,
 * 16-31 (high nibbles) in the high lane, the order of the activation codes */
static inline __m256i qd_nibbles(const uint8_t *p) {
    const __m128i v = _mm_loadu_si128((const __m128i *)p);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0f));
}

#include "row_prefetch.h"

/* signed x signed bytes -> 8 int32 lane sums (|w| moved onto the unsigned side, its sign onto y) */
static inline __m256i qd_dot_ss(__m256i w, __m256i y) {
    const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(y, w));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

/* unsigned u x signed y -> 8 int32 lane sums (|pair| <= 2 * 31 * 127 for codes below 32) */
static inline __m256i qd_dot_us(__m256i u, __m256i y) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, y), _mm256_set1_epi16(1));
}

/* unsigned u x signed y, minus the int16 pair sums a of (offset * y): codes u - offset */
static inline __m256i qd_dot_us_off(__m256i u, __m256i y, __m256i a) {
    const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(u, y), a);
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

static inline __m128 qd_hsum4(__m256 a, __m256 b, __m256 c, __m256 d) {
    const __m256 ab = _mm256_hadd_ps(a, b), cd = _mm256_hadd_ps(c, d);
    const __m256 abcd = _mm256_hadd_ps(ab, cd);
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

#endif
