/* matvec_avx512_tmpl.h - the AVX-512 matvec loop shared by the float formats (F32, F16, BF16).
 *
 * Included by fmt_<name>_avx512.c after defining:
 *   MV5_NAME           function name to define
 *   MV5_T              stored element type (float, uint16_t)
 *   MV5_LOAD16(p)      16 elements at p as __m512 (unaligned)
 *   MV5_LOADM(p, m)    the elements of mask m (a __mmask16) at p, the rest zero; masked-off
 *                      elements are not read (AVX-512 masked loads do not fault on them)
 *
 * Why ONE row at a time (the AVX2 template interleaves four rows to share each x load): decode
 * reads the matrix from DRAM, and the rows are contiguous, so walking them in order is a single
 * sequential stream, which the hardware prefetcher runs at full speed; four interleaved rows are
 * four short streams that restart at every 4-row group (576 floats = 2.3 KB per SmolLM2 row).
 * Measured on this Zen 4 (bench_isa cold, 1536 x 576 F32, one thread, interleaved with the AVX2
 * kernel): 1.43-1.57x the four-row loop's best time, where a four-row AVX-512 loop, with or
 * without prefetching the next group, was no faster than AVX2 (docs/PERFORMANCE.md). x (a few KB)
 * stays in L1, so its extra loads cost no DRAM traffic. Four accumulators of 16 lanes (64 columns
 * a step) cover the FMA latency; a tail of any length is one masked load.
 *
 * Rounding: each product passes through at most cols/64 + 6 roundings (chain, then the
 * reduction), fewer than the AVX2 path's, so the F32 tolerance of format_table.c holds.
 */
#include <immintrin.h>
#include <stdint.h>

#include "lq_format.h"

void MV5_NAME(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    const int64_t cols = w->cols;
    const char *base = (const char *)w->data;
    const size_t rb = w->row_bytes;
    for (int64_t r = r0; r < r1; r++) {
        const MV5_T *a = (const MV5_T *)(base + (size_t)r * rb);
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        int64_t c = 0;
        for (; c + 64 <= cols; c += 64) {
            s0 = _mm512_fmadd_ps(MV5_LOAD16(a + c), _mm512_loadu_ps(x + c), s0);
            s1 = _mm512_fmadd_ps(MV5_LOAD16(a + c + 16), _mm512_loadu_ps(x + c + 16), s1);
            s2 = _mm512_fmadd_ps(MV5_LOAD16(a + c + 32), _mm512_loadu_ps(x + c + 32), s2);
            s3 = _mm512_fmadd_ps(MV5_LOAD16(a + c + 48), _mm512_loadu_ps(x + c + 48), s3);
        }
        for (; c + 16 <= cols; c += 16)
            s1 = _mm512_fmadd_ps(MV5_LOAD16(a + c), _mm512_loadu_ps(x + c), s1);
        if (c < cols) {
            const __mmask16 m = (__mmask16)((1u << (cols - c)) - 1u);
            s2 = _mm512_fmadd_ps(MV5_LOADM(a + c, m), _mm512_maskz_loadu_ps(m, x + c), s2);
        }
        y[r - r0] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    }
}

#undef MV5_NAME
#undef MV5_T
#undef MV5_LOAD16
#undef MV5_LOADM
