/* ops_rows_avx2.c - attention's per-key loops (lq_dot_f32_rows, lq_axpy_f32_rows), register-blocked.
 *
 * Why: a decode row attends over its keys one short vector at a time. Called once per key, a
 * 64-wide dot is 8 FMAs and then a horizontal sum as long as they, and an axpy loads and stores
 * the whole output row for 8 FMAs; in a batched decode step of SmolLM2 the two took 11% of the
 * samples (perf, docs/PERFORMANCE.md). Here the dot takes 8 keys at once (one query load feeds 8
 * chains, and one transposing reduction replaces 8 horizontal sums) and the axpy keeps the output
 * row in registers across the keys.
 * Bits: the dot sums each key's 8 lanes as ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)) after one FMA chain
 * per lane over the columns in order, exactly lq_dot_f32_rows_ref (ops_ref.c), whatever the number
 * of keys or a key's place in its block. The axpy does lq_axpy_f32's FMA per element per key in
 * key order, so it equals the per-key calls bit for bit.
 */
#include <immintrin.h>
#include <string.h>

#include "avx2_lanes.h"
#include "kern_internal.h"

/* s[j] lane sums for 8 keys, in key order, each ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)) */
static inline __m256 reduce8(const __m256 s[8]) {
    const __m256 t0 = _mm256_hadd_ps(s[0], s[1]), t1 = _mm256_hadd_ps(s[2], s[3]);
    const __m256 t2 = _mm256_hadd_ps(s[4], s[5]), t3 = _mm256_hadd_ps(s[6], s[7]);
    const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

void lq_dot_f32_rows_avx2(const float *q, const float *k, int64_t stride, int64_t rows, int64_t n, float scale,
                          float *out) {
    const int64_t full = n & ~(int64_t)7;
    const __m256i tm = lq_avx2_tail_mask(n - full);
    const __m256 vs = _mm256_set1_ps(scale);
    for (int64_t i = 0; i < rows; i += 8) {
        const float *kp[8];
        for (int j = 0; j < 8; j++) kp[j] = k + (i + j < rows ? i + j : i) * stride; /* pad with key i */
        __m256 s[8];
        _Pragma("GCC unroll 8") for (int j = 0; j < 8; j++) s[j] = _mm256_setzero_ps();
        for (int64_t c = 0; c < full; c += 8) {
            const __m256 qv = _mm256_loadu_ps(q + c);
            _Pragma("GCC unroll 8") for (int j = 0; j < 8; j++) s[j] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kp[j] + c), s[j]);
        }
        if (full < n) {
            const __m256 qv = _mm256_maskload_ps(q + full, tm);
            _Pragma("GCC unroll 8") for (int j = 0; j < 8; j++)
                s[j] = _mm256_fmadd_ps(qv, _mm256_maskload_ps(kp[j] + full, tm), s[j]);
        }
        const __m256 r = _mm256_mul_ps(reduce8(s), vs);
        if (rows - i >= 8) {
            _mm256_storeu_ps(out + i, r);
        } else {
            float tmp[8];
            _mm256_storeu_ps(tmp, r);
            memcpy(out + i, tmp, (size_t)(rows - i) * sizeof(float));
        }
    }
}

void lq_axpy_f32_rows_avx2(float *y, const float *w, const float *x, int64_t stride, int64_t rows, int64_t n) {
    int64_t c = 0;
    for (; c + 64 <= n; c += 64) { /* 64 outputs in 8 registers across every key */
        __m256 acc[8];
        _Pragma("GCC unroll 8") for (int v = 0; v < 8; v++) acc[v] = _mm256_loadu_ps(y + c + 8 * v);
        for (int64_t i = 0; i < rows; i++) {
            const __m256 wi = _mm256_broadcast_ss(w + i);
            const float *xr = x + i * stride + c;
            _Pragma("GCC unroll 8") for (int v = 0; v < 8; v++) acc[v] = _mm256_fmadd_ps(wi, _mm256_loadu_ps(xr + 8 * v), acc[v]);
        }
        _Pragma("GCC unroll 8") for (int v = 0; v < 8; v++) _mm256_storeu_ps(y + c + 8 * v, acc[v]);
    }
    if (c < n) /* the last n % 64 outputs: lq_axpy_f32 per key */
        for (int64_t i = 0; i < rows; i++) lq_axpy_f32_avx2(y + c, w[i], x + i * stride + c, n - c);
}
