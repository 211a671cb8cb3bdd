/* bandwidth_avx2.c - the inner loop of the read-bandwidth probe (AVX2 loads). */
#include <immintrin.h>
#include "kern_internal.h"

double lq_read_sum_avx2(const float *p, size_t n) {
    /* Four independent accumulators so the adds never limit the load rate. */
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + i + 24));
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    float lanes[8];
    _mm256_storeu_ps(lanes, s);
    double t = 0;
    for (int k = 0; k < 8; k++) t += lanes[k];
    for (; i < n; i++) t += p[i];
    return t;
}
