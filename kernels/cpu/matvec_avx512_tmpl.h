/* matvec_avx512_tmpl.h - the AVX-512 matvec loop shared by the float formats (F32, F16, BF16).
 *
 * Included by fmt_<name>_avx512.c after defining:
 *   MV5_NAME           function name to define
 *   MV5_T              stored element type (float, uint16_t)
 *   MV5_LOAD16(p)      16 elements at p as __m512 (unaligned)
 *   MV5_LOADM(p, m)    the elements of mask m (a __mmask16) at p, the rest zero; masked-off
 *                      elements are not read (AVX-512 masked loads do not fault on them)
 * The AVX2 template (matvec_avx2_tmpl.h) with twice the lanes: four rows share every x load, two
 * accumulators per row (cols in steps of 32), 8 independent FMA chains. Zen 4 executes a 512-bit
 * FMA as two 256-bit halves, so the arithmetic rate is the AVX2 one; what the wider vectors save
 * is instructions (one load+convert+FMA per 16 weights instead of per 8), and a tail of any length
 * is one masked load instead of a copy.
 *
 * Prefetch: the hardware prefetcher follows each of the four rows but stalls at the jump to the
 * next 4-row group (as measured for the W8A16/W4A16 kernels, docs/PERFORMANCE.md), so each step
 * touches the next group's same columns (pf bytes on) once per 64-byte line. A hint: never faults,
 * so the last group may point past the matrix.
 *
 * Rounding: each product passes through at most cols/32 + 6 roundings (chain, then the
 * reduction), fewer than the AVX2 path's, so the F32 tolerance of format_table.c holds.
 */
#include <immintrin.h>
#include <stdint.h>

#include "lq_format.h"

#ifndef MV5_TMPL_HELPERS
#define MV5_TMPL_HELPERS
/* Lanes [0, k) set: the mask of a tail of k < 16 elements. */
static inline __mmask16 mv5_tail_mask(int64_t k) { return (__mmask16)((1u << k) - 1u); }

/* [sum(a), sum(b), sum(c), sum(d)]: halve each to 256 bits, then the AVX2 hadd tree. */
static inline __m128 mv5_hsum4(__m512 a, __m512 b, __m512 c, __m512 d) {
#define MV5_HALF(v) _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1))
    const __m256 ab = _mm256_hadd_ps(MV5_HALF(a), MV5_HALF(b));
    const __m256 cd = _mm256_hadd_ps(MV5_HALF(c), MV5_HALF(d));
#undef MV5_HALF
    const __m256 abcd = _mm256_hadd_ps(ab, cd);
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}
#endif

void MV5_NAME(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    const int64_t cols = w->cols;
    const char *base = (const char *)w->data;
    const size_t rb = w->row_bytes, pf = 4 * rb;
    const int64_t rem = cols & 15;
    const __mmask16 tmask = mv5_tail_mask(rem);
    /* one prefetch per 64-byte line of each row: every step for 4-byte elements, every other
     * step for 2-byte ones (a step is 32 elements) */
    const int64_t pf_step = sizeof(MV5_T) >= 4 ? 16 : 32;
    for (int64_t r = r0; r < r1; r += 4) {
        /* 1..3 leftover rows repeat the last one (computed, not stored) */
        const int64_t n = r1 - r < 4 ? r1 - r : 4;
        const MV5_T *w0 = (const MV5_T *)(base + (size_t)r * rb);
        const MV5_T *w1 = (const MV5_T *)(base + (size_t)(r + (n > 1)) * rb);
        const MV5_T *w2 = (const MV5_T *)(base + (size_t)(r + (n > 2) * 2) * rb);
        const MV5_T *w3 = (const MV5_T *)(base + (size_t)(r + (n > 3) * 3) * rb);
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        __m512 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        int64_t c = 0;
        for (; c + 32 <= cols; c += 32) {
            for (int64_t k = 0; MV5_PREFETCH && k < 32; k += pf_step) {
                _mm_prefetch((const char *)(w0 + c + k) + pf, _MM_HINT_T0);
                _mm_prefetch((const char *)(w1 + c + k) + pf, _MM_HINT_T0);
                _mm_prefetch((const char *)(w2 + c + k) + pf, _MM_HINT_T0);
                _mm_prefetch((const char *)(w3 + c + k) + pf, _MM_HINT_T0);
            }
            const __m512 x0 = _mm512_loadu_ps(x + c), x1 = _mm512_loadu_ps(x + c + 16);
            a0 = _mm512_fmadd_ps(MV5_LOAD16(w0 + c), x0, a0);
            a1 = _mm512_fmadd_ps(MV5_LOAD16(w1 + c), x0, a1);
            a2 = _mm512_fmadd_ps(MV5_LOAD16(w2 + c), x0, a2);
            a3 = _mm512_fmadd_ps(MV5_LOAD16(w3 + c), x0, a3);
            b0 = _mm512_fmadd_ps(MV5_LOAD16(w0 + c + 16), x1, b0);
            b1 = _mm512_fmadd_ps(MV5_LOAD16(w1 + c + 16), x1, b1);
            b2 = _mm512_fmadd_ps(MV5_LOAD16(w2 + c + 16), x1, b2);
            b3 = _mm512_fmadd_ps(MV5_LOAD16(w3 + c + 16), x1, b3);
        }
        if (c + 16 <= cols) {
            const __m512 x0 = _mm512_loadu_ps(x + c);
            a0 = _mm512_fmadd_ps(MV5_LOAD16(w0 + c), x0, a0);
            a1 = _mm512_fmadd_ps(MV5_LOAD16(w1 + c), x0, a1);
            a2 = _mm512_fmadd_ps(MV5_LOAD16(w2 + c), x0, a2);
            a3 = _mm512_fmadd_ps(MV5_LOAD16(w3 + c), x0, a3);
            c += 16;
        }
        if (rem) {
            const __m512 xt = _mm512_maskz_loadu_ps(tmask, x + c);
            b0 = _mm512_fmadd_ps(MV5_LOADM(w0 + c, tmask), xt, b0);
            b1 = _mm512_fmadd_ps(MV5_LOADM(w1 + c, tmask), xt, b1);
            b2 = _mm512_fmadd_ps(MV5_LOADM(w2 + c, tmask), xt, b2);
            b3 = _mm512_fmadd_ps(MV5_LOADM(w3 + c, tmask), xt, b3);
        }
        float out[4];
        _mm_storeu_ps(out, mv5_hsum4(_mm512_add_ps(a0, b0), _mm512_add_ps(a1, b1),
                                     _mm512_add_ps(a2, b2), _mm512_add_ps(a3, b3)));
        for (int64_t i = 0; i < n; i++) y[r - r0 + i] = out[i];
    }
}

#undef MV5_NAME
#undef MV5_T
#undef MV5_LOAD16
#undef MV5_LOADM
#undef MV5_PREFETCH
