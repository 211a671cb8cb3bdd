/* avx2_lanes.h - the two 8-lane helpers every AVX2 float loop needs (kernel internals): the mask
 * of a tail's first k lanes (for masked loads that never read past an array) and the horizontal
 * sum in one fixed order, (l0+l4)+(l2+l6) + (l1+l5)+(l3+l7). Include only from *_avx2.c files. */
#ifndef LQ_AVX2_LANES_H
#define LQ_AVX2_LANES_H
#include <immintrin.h>
#include <stdint.h>

/* Lanes [0, k) all-ones: the maskload mask for a tail of k < 8 floats. */
static inline __m256i lq_avx2_tail_mask(int64_t k) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)k), idx);
}

static inline float lq_avx2_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif
