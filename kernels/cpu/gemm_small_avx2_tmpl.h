/* gemm_small_avx2_tmpl.h - the AVX2 multi-token loop (lq_gemm_fn) shared by every float format.
 *
 * Included by fmt_<name>_avx2.c after defining GS_NAME (function to define), GS_T, GS_LOAD8 and
 * GS_LOADN (as matvec_avx2_tmpl.h's MV_*; the two templates can share one file).
 *
 * Why: a batched decode step (B sequences, B <= LQ_GEMM_SMALL_MAX) multiplies every weight by B
 * activation rows. Through sgemm each tile of W is first copied into OpenBLAS's packed layout and
 * then multiplied: on SmolLM2 f32 at B = 8 the copy took 50% of the step and the kernel 29%
 * (perf, docs/PERFORMANCE.md "Batched decode without sgemm's tile copy"). Here each weight vector,
 * loaded once from the mapping, feeds several tokens: with 8 or more tokens left, one row x 8
 * tokens (the row pair is then read as one sequential stream); else tiles of 2 rows x up to 4
 * tokens (2 weight + 4 activation loads per 8 FMAs). Either way 8 independent FMA chains are in
 * flight (the FMA latency times two pipes), and the row pair stays in L1 while every group of
 * tokens meets it. The rows GS_AHEAD pairs on are prefetched over the pair's steps: a pair read
 * side by side is two short streams the hardware prefetcher learns late (row_prefetch.h), and
 * even the one-row tiles' single stream waited on DRAM without it on an Intel Xeon.
 * Every output element is ONE chain: 8-lane FMAs over the columns in order, the masked tail, one
 * horizontal sum. No element depends on the tile it falls in, so the result is the same bits for
 * any row range, thread count or batch composition (tests/test_kernels.c checks it).
 */
#include <immintrin.h>
#include <stdint.h>

#include "avx2_lanes.h"
#include "lq_format.h"
#include "row_prefetch.h"

#define GS_CAT2(a, b) a##b
#define GS_CAT(a, b) GS_CAT2(a, b)
#define GS_TILE GS_CAT(GS_NAME, _tile)
#ifndef GS_AHEAD
#define GS_AHEAD 2
#endif

/* nr (1 or 2) rows from w0 (row stride rb) x nt (1..4; 8 with one row) tokens from X (stride
 * cols) into y[t * ldy + i], stepping the prefetch pf (NULL: none) from pf_base; called with
 * constant nr / nt so the compiler keeps acc in registers. */
static inline __attribute__((always_inline)) void GS_TILE(const char *w0, size_t rb, int nr, const float *X,
                                                          int64_t cols, int nt, float *y, int64_t ldy,
                                                          const rp_rows *pf, int64_t pf_base) {
    __m256 acc[2][8];
    _Pragma("GCC unroll 2") for (int i = 0; i < nr; i++)
        _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++) acc[i][j] = _mm256_setzero_ps();
    int64_t c = 0;
    /* weights in registers, each activation vector loaded once and used by both rows */
    for (; c + 8 <= cols; c += 8) {
        if (pf) rp_step(pf, pf_base + c / 8);
        __m256 wv[2];
        _Pragma("GCC unroll 2") for (int i = 0; i < nr; i++) wv[i] = GS_LOAD8((const GS_T *)(w0 + (size_t)i * rb) + c);
        _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++) {
            const __m256 xv = _mm256_loadu_ps(X + (size_t)j * (size_t)cols + c);
            _Pragma("GCC unroll 2") for (int i = 0; i < nr; i++) acc[i][j] = _mm256_fmadd_ps(wv[i], xv, acc[i][j]);
        }
    }
    if (c < cols) {
        const int64_t k = cols - c;
        const __m256i m = lq_avx2_tail_mask(k);
        __m256 wv[2];
        _Pragma("GCC unroll 2") for (int i = 0; i < nr; i++) wv[i] = GS_LOADN((const GS_T *)(w0 + (size_t)i * rb) + c, k);
        _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++) {
            const __m256 xv = _mm256_maskload_ps(X + (size_t)j * (size_t)cols + c, m);
            _Pragma("GCC unroll 2") for (int i = 0; i < nr; i++) acc[i][j] = _mm256_fmadd_ps(wv[i], xv, acc[i][j]);
        }
    }
    _Pragma("GCC unroll 2") for (int i = 0; i < nr; i++)
        _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++) y[(size_t)j * (size_t)ldy + (size_t)i] = lq_avx2_hsum(acc[i][j]);
}

void GS_NAME(const lq_weight *w, const float *X, int64_t n, float *Y, int64_t ldy, int64_t r0, int64_t r1) {
    const int64_t cols = w->cols;
    const size_t rb = w->row_bytes;
    const char *base = (const char *)w->data;
    for (int64_t r = r0; r < r1; r += 2) {
        const char *w0 = base + (size_t)r * rb;
        const int nr = r + 1 < r1 ? 2 : 1;
        /* the rows GS_AHEAD pairs on stream in while the first token group computes: a pair is
         * two short streams the hardware prefetcher does not learn (row_prefetch.h) */
        const rp_rows next = rp_begin(base + (size_t)(r + 2 * GS_AHEAD) * rb,
                                      rp_next_group_bytes(r + 2 * (GS_AHEAD - 1), r1, rb, 2),
                                      (cols / 8) * ((n + 3) / 4));
        for (int64_t t = 0; t < n; t += 4) {
            const rp_rows *pf = &next;
            const int64_t pf_base = (t / 4) * (cols / 8);
            const float *Xt = X + (size_t)t * (size_t)cols;
            float *y = Y + (size_t)t * (size_t)ldy + (size_t)(r - r0);
            const int64_t nt = n - t < 4 ? n - t : 4;
            /* constant (nr, nt) per call: nine specialized tiles */
            if (n - t >= 8) { /* one row at a time: the pair is read as one sequential stream */
                /* prefetched too: on an Intel Xeon (Emerald Rapids) the hardware prefetcher alone
                 * left this tile waiting on DRAM (49152 x 576 f32 at n = 8, one thread: 6.4 GB/s
                 * against 12.8 at n = 4; docs/PERFORMANCE.md) */
                GS_TILE(w0, rb, 1, Xt, cols, 8, y, ldy, pf, pf_base);
                if (nr == 2) GS_TILE(w0 + rb, rb, 1, Xt, cols, 8, y + 1, ldy, pf, pf_base + cols / 8);
                t += 4;
                continue;
            }
            if (nr == 2) {
                if (nt == 4) GS_TILE(w0, rb, 2, Xt, cols, 4, y, ldy, pf, pf_base);
                else if (nt == 3) GS_TILE(w0, rb, 2, Xt, cols, 3, y, ldy, pf, pf_base);
                else if (nt == 2) GS_TILE(w0, rb, 2, Xt, cols, 2, y, ldy, pf, pf_base);
                else GS_TILE(w0, rb, 2, Xt, cols, 1, y, ldy, pf, pf_base);
            } else {
                if (nt == 4) GS_TILE(w0, rb, 1, Xt, cols, 4, y, ldy, pf, pf_base);
                else if (nt == 3) GS_TILE(w0, rb, 1, Xt, cols, 3, y, ldy, pf, pf_base);
                else if (nt == 2) GS_TILE(w0, rb, 1, Xt, cols, 2, y, ldy, pf, pf_base);
                else GS_TILE(w0, rb, 1, Xt, cols, 1, y, ldy, pf, pf_base);
            }
        }
    }
}

#undef GS_TILE
#undef GS_CAT
#undef GS_CAT2
#undef GS_NAME
#undef GS_T
#undef GS_LOAD8
#undef GS_LOADN
