/* gemm_small_avx512_tmpl.h - the AVX-512 twin of gemm_small_avx2_tmpl.h (lq_gemm_fn, batched
 * decode of the float formats), the same prefetch with 16-lane vectors and, with 32 registers,
 * 2 rows x 8 tokens where the AVX2 level takes one row.
 *
 * Why: a batched decode step of f32 SmolLM2 at B >= 8 is compute bound, and a CPU with two
 * 512-bit FMA units (Intel Xeon: 113 GMAC/s per core against 55 with 256-bit FMAs, measured)
 * runs twice the products per instruction. On Zen 4 (512-bit ops as two 256-bit halves) it is
 * no slower. Defined per format by GS5_NAME, GS5_T, GS5_LOAD16 (16 elements as __m512) and
 * GS5_LOADN (k < 16 elements, the rest zero, never reading past p + k).
 * Every output element is ONE chain: 16-lane FMAs over the columns in order, the masked tail,
 * then _mm512_reduce_add_ps. No element depends on the tile it falls in, so the bits are the
 * same for any row range, thread count or batch composition (tests/test_kernels.c); they differ
 * from the AVX2 level's 8-lane chains within the row's tolerance.
 */
#include <immintrin.h>
#include <stdint.h>

#include "lq_format.h"
#include "row_prefetch.h"

#define GS5_CAT2(a, b) a##b
#define GS5_CAT(a, b) GS5_CAT2(a, b)
#define GS5_TILE GS5_CAT(GS5_NAME, _tile)
#define GS5_AHEAD 2

static inline __attribute__((always_inline)) void GS5_TILE(const char *w0, size_t rb, int nr, const float *X,
                                                           int64_t cols, int nt, float *y, int64_t ldy,
                                                           const rp_rows *pf, int64_t pf_base) {
    __m512 acc[2][8];
    _Pragma("GCC unroll 2") for (int i = 0; i < nr; i++)
        _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++) acc[i][j] = _mm512_setzero_ps();
    int64_t c = 0;
    const int pfk = nr == 2 && nt == 8 ? 2 : 1; /* a 2 x 8 tile covers two tiles' prefetch steps */
    for (; c + 16 <= cols; c += 16) {
        if (pf)
            _Pragma("GCC unroll 2") for (int q = 0; q < pfk; q++) rp_step(pf, pf_base + (c / 16) * pfk + q);
        __m512 wv[2];
        _Pragma("GCC unroll 2") for (int i = 0; i < nr; i++) wv[i] = GS5_LOAD16((const GS5_T *)(w0 + (size_t)i * rb) + c);
        _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++) {
            const __m512 xv = _mm512_loadu_ps(X + (size_t)j * (size_t)cols + c);
            _Pragma("GCC unroll 2") for (int i = 0; i < nr; i++) acc[i][j] = _mm512_fmadd_ps(wv[i], xv, acc[i][j]);
        }
    }
    if (c < cols) {
        const int64_t k = cols - c;
        const __mmask16 m = (__mmask16)((1u << k) - 1u);
        if (pf) /* the tail is a step of the prefetch plan too (steps = ceil(cols / 16)) */
            _Pragma("GCC unroll 2") for (int q = 0; q < pfk; q++) rp_step(pf, pf_base + (c / 16) * pfk + q);
        __m512 wv[2];
        _Pragma("GCC unroll 2") for (int i = 0; i < nr; i++) wv[i] = GS5_LOADN((const GS5_T *)(w0 + (size_t)i * rb) + c, k);
        _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++) {
            const __m512 xv = _mm512_maskz_loadu_ps(m, X + (size_t)j * (size_t)cols + c);
            _Pragma("GCC unroll 2") for (int i = 0; i < nr; i++) acc[i][j] = _mm512_fmadd_ps(wv[i], xv, acc[i][j]);
        }
    }
    _Pragma("GCC unroll 2") for (int i = 0; i < nr; i++)
        _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++) y[(size_t)j * (size_t)ldy + (size_t)i] = _mm512_reduce_add_ps(acc[i][j]);
}

void GS5_NAME(const lq_weight *w, const float *X, int64_t n, float *Y, int64_t ldy, int64_t r0, int64_t r1) {
    const int64_t cols = w->cols, steps = (cols + 15) / 16;
    const size_t rb = w->row_bytes;
    const char *base = (const char *)w->data;
    for (int64_t r = r0; r < r1; r += 2) {
        const char *w0 = base + (size_t)r * rb;
        const int nr = r + 1 < r1 ? 2 : 1;
        /* the rows GS5_AHEAD pairs on, spread over every tile of this pair (row_prefetch.h) */
        const rp_rows next = rp_begin(base + (size_t)(r + 2 * GS5_AHEAD) * rb,
                                      rp_next_group_bytes(r + 2 * (GS5_AHEAD - 1), r1, rb, 2),
                                      steps * ((n + 3) / 4));
        for (int64_t t = 0; t < n; t += 4) {
            const int64_t pf_base = (t / 4) * steps;
            const float *Xt = X + (size_t)t * (size_t)cols;
            float *y = Y + (size_t)t * (size_t)ldy + (size_t)(r - r0);
            const int64_t nt = n - t < 4 ? n - t : 4;
            if (n - t >= 8) { /* 2 rows x 8 tokens: 16 chains, 10 loads per 16 FMAs (the AVX2
                               * level's 1 x 8 tile, 9 loads per 8, would be load bound here) */
                if (nr == 2) GS5_TILE(w0, rb, 2, Xt, cols, 8, y, ldy, &next, pf_base);
                else GS5_TILE(w0, rb, 1, Xt, cols, 8, y, ldy, &next, pf_base);
                t += 4;
                continue;
            }
            if (nr == 2) {
                if (nt == 4) GS5_TILE(w0, rb, 2, Xt, cols, 4, y, ldy, &next, pf_base);
                else if (nt == 3) GS5_TILE(w0, rb, 2, Xt, cols, 3, y, ldy, &next, pf_base);
                else if (nt == 2) GS5_TILE(w0, rb, 2, Xt, cols, 2, y, ldy, &next, pf_base);
                else GS5_TILE(w0, rb, 2, Xt, cols, 1, y, ldy, &next, pf_base);
            } else {
                if (nt == 4) GS5_TILE(w0, rb, 1, Xt, cols, 4, y, ldy, &next, pf_base);
                else if (nt == 3) GS5_TILE(w0, rb, 1, Xt, cols, 3, y, ldy, &next, pf_base);
                else if (nt == 2) GS5_TILE(w0, rb, 1, Xt, cols, 2, y, ldy, &next, pf_base);
                else GS5_TILE(w0, rb, 1, Xt, cols, 1, y, ldy, &next, pf_base);
            }
        }
    }
}

#undef GS5_TILE
#undef GS5_AHEAD
#undef GS5_CAT
#undef GS5_CAT2
#undef GS5_NAME
#undef GS5_T
#undef GS5_LOAD16
#undef GS5_LOADN
