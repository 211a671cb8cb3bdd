/* matvec_avx2_tmpl.h - the AVX2 matvec loop shared by every float format.
 *
 * Included by fmt_<name>_avx2.c after defining:
 *   MV_NAME            function name to define
 *   MV_T               stored element type (float, uint16_t)
 *   MV_LOAD8(p)        8 elements at p as __m256 (unaligned)
 *   MV_LOADN(p, k)     k < 8 elements at p, the rest zero, as __m256 (never reads past p + k)
 * The formats differ only in how 8 weights become 8 floats, so the loop lives here once.
 *
 * Why this shape: decode matvec is memory bound, and the matrix's rows are contiguous, so the
 * loop walks ONE row at a time: the whole matrix is then one sequential stream, which the hardware
 * prefetcher runs at full speed. (It used to interleave four rows to share each x load: four
 * short streams restarting at every 4-row group, 2.3 KB each on SmolLM2; measured on this Zen 4,
 * bench_isa cold, 1536 x 576 F32, one thread: the one-row loop took 0.58-0.70x the time. x, a
 * few KB, stays in L1, so its extra loads cost no DRAM traffic.) Four accumulators of 8 lanes
 * (32 columns a step) cover the FMA latency (4-5 cycles) at 2 FMAs per cycle. Tails of any
 * length use a masked/zero-padded load instead of a scalar loop.
 */
#include <immintrin.h>
#include <stdint.h>

/* Software prefetch MV_PREFETCH bytes ahead of the loads: on an Intel Xeon (Emerald Rapids) the
 * hardware prefetcher alone (0: only the line being loaded) read a 460 MB f32 matrix at a median
 * 22.2 GB/s on 2 threads, 4096 bytes ahead 25.9 (2048: 24.5, 8192: 28.2 with a wider spread);
 * bench_matmul_n built with -DMV_PREFETCH=D, docs/PERFORMANCE.md. */
#ifndef MV_PREFETCH
#define MV_PREFETCH 4096
#endif

#include "avx2_lanes.h"
#include "lq_format.h"


void MV_NAME(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    const int64_t cols = w->cols;
    const char *base = (const char *)w->data;
    const size_t rb = w->row_bytes;
    const int64_t rem = cols & 7;
    const __m256i tmask = lq_avx2_tail_mask(rem);
    for (int64_t r = r0; r < r1; r++) {
        const MV_T *w0 = (const MV_T *)(base + (size_t)r * rb);
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int64_t c = 0;
        for (; c + 32 <= cols; c += 32) {
            _mm_prefetch((const char *)(w0 + c) + MV_PREFETCH, _MM_HINT_T0); /* never faults */
            if (sizeof(MV_T) == 4) /* 32 f32 weights span two lines; 32 halves one */
                _mm_prefetch((const char *)(w0 + c) + MV_PREFETCH + 64, _MM_HINT_T0);
            a0 = _mm256_fmadd_ps(MV_LOAD8(w0 + c), _mm256_loadu_ps(x + c), a0);
            a1 = _mm256_fmadd_ps(MV_LOAD8(w0 + c + 8), _mm256_loadu_ps(x + c + 8), a1);
            a2 = _mm256_fmadd_ps(MV_LOAD8(w0 + c + 16), _mm256_loadu_ps(x + c + 16), a2);
            a3 = _mm256_fmadd_ps(MV_LOAD8(w0 + c + 24), _mm256_loadu_ps(x + c + 24), a3);
        }
        for (; c + 8 <= cols; c += 8)
            a0 = _mm256_fmadd_ps(MV_LOAD8(w0 + c), _mm256_loadu_ps(x + c), a0);
        if (rem)
            a1 = _mm256_fmadd_ps(MV_LOADN(w0 + c, rem), _mm256_maskload_ps(x + c, tmask), a1);
        y[r - r0] = lq_avx2_hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    }
}

#undef MV_NAME
#undef MV_T
#undef MV_LOAD8
#undef MV_LOADN
#undef MV_PREFETCH
