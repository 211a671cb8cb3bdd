/* matvec_avx2_tmpl.h - the AVX2 matvec loop shared by every float format.
 *
 * Included by fmt_<name>_avx2.c after defining:
 *   MV_NAME            function name to define
 *   MV_T               stored element type (float, uint16_t)
 *   MV_LOAD8(p)        8 elements at p as __m256 (unaligned)
 *   MV_LOADN(p, k)     k < 8 elements at p, the rest zero, as __m256 (never reads past p + k)
 * The formats differ only in how 8 weights become 8 floats, so the loop lives here once.
 *
 * Why this shape: decode matvec is memory bound; the loop must keep enough loads in flight to
 * saturate DRAM and never wait on an FMA latency chain. Four rows share each load of x (x stays
 * in L1), and each row has two accumulators (cols in steps of 16), i.e. 8 independent FMA
 * chains, enough to cover FMA latency (4-5 cycles) at 2 FMAs per cycle. Tails of any length
 * use a masked/zero-padded load instead of a scalar loop, so odd widths cost nothing extra.
 */
#include <immintrin.h>
#include <stdint.h>

#include "lq_format.h"

#ifndef MV_TMPL_HELPERS
#define MV_TMPL_HELPERS
/* Lanes [0, k) all-ones: the maskload mask for a tail of k < 8 floats. */
static inline __m256i mv_tail_mask(int64_t k) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)k), idx);
}

/* [sum(a), sum(b), sum(c), sum(d)] */
static inline __m128 mv_hsum4(__m256 a, __m256 b, __m256 c, __m256 d) {
    __m256 ab = _mm256_hadd_ps(a, b);     /* a01 a23 b01 b23 | a45 a67 b45 b67 */
    __m256 cd = _mm256_hadd_ps(c, d);
    __m256 abcd = _mm256_hadd_ps(ab, cd); /* a0-3 b0-3 c0-3 d0-3 | a4-7 b4-7 c4-7 d4-7 */
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

static inline float mv_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif

void MV_NAME(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    const int64_t cols = w->cols;
    const char *base = (const char *)w->data;
    const size_t rb = w->row_bytes;
    const int64_t rem = cols & 7;
    const __m256i tmask = mv_tail_mask(rem);
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const MV_T *w0 = (const MV_T *)(base + (size_t)r * rb);
        const MV_T *w1 = (const MV_T *)(base + (size_t)(r + 1) * rb);
        const MV_T *w2 = (const MV_T *)(base + (size_t)(r + 2) * rb);
        const MV_T *w3 = (const MV_T *)(base + (size_t)(r + 3) * rb);
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        __m256 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        int64_t c = 0;
        for (; c + 16 <= cols; c += 16) {
            const __m256 x0 = _mm256_loadu_ps(x + c), x1 = _mm256_loadu_ps(x + c + 8);
            a0 = _mm256_fmadd_ps(MV_LOAD8(w0 + c), x0, a0);
            a1 = _mm256_fmadd_ps(MV_LOAD8(w1 + c), x0, a1);
            a2 = _mm256_fmadd_ps(MV_LOAD8(w2 + c), x0, a2);
            a3 = _mm256_fmadd_ps(MV_LOAD8(w3 + c), x0, a3);
            b0 = _mm256_fmadd_ps(MV_LOAD8(w0 + c + 8), x1, b0);
            b1 = _mm256_fmadd_ps(MV_LOAD8(w1 + c + 8), x1, b1);
            b2 = _mm256_fmadd_ps(MV_LOAD8(w2 + c + 8), x1, b2);
            b3 = _mm256_fmadd_ps(MV_LOAD8(w3 + c + 8), x1, b3);
        }
        if (c + 8 <= cols) {
            const __m256 x0 = _mm256_loadu_ps(x + c);
            a0 = _mm256_fmadd_ps(MV_LOAD8(w0 + c), x0, a0);
            a1 = _mm256_fmadd_ps(MV_LOAD8(w1 + c), x0, a1);
            a2 = _mm256_fmadd_ps(MV_LOAD8(w2 + c), x0, a2);
            a3 = _mm256_fmadd_ps(MV_LOAD8(w3 + c), x0, a3);
            c += 8;
        }
        if (rem) {
            const __m256 xt = _mm256_maskload_ps(x + c, tmask);
            b0 = _mm256_fmadd_ps(MV_LOADN(w0 + c, rem), xt, b0);
            b1 = _mm256_fmadd_ps(MV_LOADN(w1 + c, rem), xt, b1);
            b2 = _mm256_fmadd_ps(MV_LOADN(w2 + c, rem), xt, b2);
            b3 = _mm256_fmadd_ps(MV_LOADN(w3 + c, rem), xt, b3);
        }
        _mm_storeu_ps(y + (r - r0), mv_hsum4(_mm256_add_ps(a0, b0), _mm256_add_ps(a1, b1),
                                             _mm256_add_ps(a2, b2), _mm256_add_ps(a3, b3)));
    }
    for (; r < r1; r++) { /* 1..3 leftover rows: one row, four chains */
        const MV_T *w0 = (const MV_T *)(base + (size_t)r * rb);
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int64_t c = 0;
        for (; c + 32 <= cols; c += 32) {
            a0 = _mm256_fmadd_ps(MV_LOAD8(w0 + c), _mm256_loadu_ps(x + c), a0);
            a1 = _mm256_fmadd_ps(MV_LOAD8(w0 + c + 8), _mm256_loadu_ps(x + c + 8), a1);
            a2 = _mm256_fmadd_ps(MV_LOAD8(w0 + c + 16), _mm256_loadu_ps(x + c + 16), a2);
            a3 = _mm256_fmadd_ps(MV_LOAD8(w0 + c + 24), _mm256_loadu_ps(x + c + 24), a3);
        }
        for (; c + 8 <= cols; c += 8)
            a0 = _mm256_fmadd_ps(MV_LOAD8(w0 + c), _mm256_loadu_ps(x + c), a0);
        if (rem)
            a1 = _mm256_fmadd_ps(MV_LOADN(w0 + c, rem), _mm256_maskload_ps(x + c, tmask), a1);
        y[r - r0] = mv_hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    }
}

#undef MV_NAME
#undef MV_T
#undef MV_LOAD8
#undef MV_LOADN
