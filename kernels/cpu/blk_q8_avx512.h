/* blk_q8_avx512.h - AVX-512 helpers of the legacy blocks' integer-activation kernels
 * (blk_q8_avx512_tmpl.h and the block decoders of fmt_legacy_avx512.c). */
#ifndef LQ_BLK_Q8_AVX512_H
#define LQ_BLK_Q8_AVX512_H
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define QV_CAT_(a, b) a##b
#define QV_CAT(a, b) QV_CAT_(a, b)
static inline uint32_t qv_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
/* the 4 row pointers of the group of 4 rows at r, n of them real: leftover rows repeat the last
 * real row's pointer (its results are computed but not stored) */
#define QV_ROWS(wr, base, r, n, rb)                                                                \
    const uint8_t *wr[4] = {(base) + (size_t)(r) * (rb), (base) + (size_t)((r) + ((n) > 1)) * (rb),   \
                            (base) + (size_t)((r) + ((n) > 2) * 2) * (rb),                         \
                            (base) + (size_t)((r) + ((n) > 3) * 3) * (rb)}

/* the 16 bytes at p0..p3 -> the four 128-bit lanes of a zmm */
static inline __m512i qv_load4x16(const uint8_t *p0, const uint8_t *p1, const uint8_t *p2, const uint8_t *p3) {
    const __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)p0));
    return _mm512_inserti32x4(_mm512_inserti32x4(_mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)p1), 1),
                                                 _mm_loadu_si128((const __m128i *)p2), 2),
                              _mm_loadu_si128((const __m128i *)p3), 3);
}
/* the first dword of each row's block at offset o -> [d0 e0 d1 e1 d2 e2 d3 e3] as floats, where e
 * is the block's minimum m (Q4_1 / Q5_1) or two code bytes read as a half (ignored) */
static inline __m256 qv_scales4(const uint8_t *const *w, size_t o) {
    const __m128i v = _mm_setr_epi32((int)qv_u32(w[0] + o), (int)qv_u32(w[1] + o), (int)qv_u32(w[2] + o),
                                     (int)qv_u32(w[3] + o));
    return _mm256_cvtph_ps(v);
}
/* d of row k in the 4 lanes of 128-bit lane k */
static inline __m512 qv_dvec(__m256 f) {
    return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2, 4, 4, 4, 4, 6, 6, 6, 6),
                                 _mm512_castps256_ps512(f));
}
static inline __m128 qv_mvec(__m256 f) {
    return _mm256_castps256_ps128(_mm256_permutevar8x32_ps(f, _mm256_setr_epi32(1, 3, 5, 7, 1, 3, 5, 7)));
}
/* the 4 lanes of each 128-bit lane summed, (l0 + l2) + (l1 + l3) -> one float per row */
static inline __m128 qv_sum4(__m512 a) {
    const __m512 s = _mm512_add_ps(a, _mm512_permute_ps(a, 0x4E));
    const __m512 t = _mm512_add_ps(s, _mm512_permute_ps(s, 0xB1));
    return _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12), t));
}

#endif
