/* fmt_w8a16_avx512.c - W8A16 matvec (f32 activations), AVX-512 twin of fmt_w8a16_avx2.c.
 *
 * The same loop with twice the lanes: per 16 weights one vpmovzxbd from memory (codes u = q + 128
 * -> int32), one vcvtdq2ps (exact) and one FMA with x; the "- 128" is folded out as in the AVX2
 * twin (sum_c q x = sum_c u x - 128 sum_c x, corrected every W8_FOLD columns so each accumulator
 * stays within one block's excursion of sum q x: the rounding stays that of an f32 dot product
 * over q, the table's rtol). Four rows share every x load, two accumulators per row (32 columns
 * a step): 8 independent FMA chains. The tail (cols % 16) is one masked byte load: the masked-off
 * codes are not read and read as 0, against masked-off (zero) x. Prefetch of the next 4-row
 * group one line per row per 64 columns, as the AVX2 twin (its comment has the measurement).
 */
#include <immintrin.h>

#include "kern_internal.h"
#include "lq_blocks.h"

#define W8_FOLD 128 /* columns between corrections: a multiple of 32 */

/* 16 codes at p as floats u (not yet minus 128). */
static inline __m512 w8x_u16(const uint8_t *p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p)));
}

static inline __m512 w8x_u16m(const uint8_t *p, __mmask16 m) {
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p)));
}

static inline __m128 w8x_hsum4(__m512 a, __m512 b, __m512 c, __m512 d) {
#define W8X_HALF(v) _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1))
    const __m256 ab = _mm256_hadd_ps(W8X_HALF(a), W8X_HALF(b));
    const __m256 cd = _mm256_hadd_ps(W8X_HALF(c), W8X_HALF(d));
#undef W8X_HALF
    const __m256 abcd = _mm256_hadd_ps(ab, cd);
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

/* sum_c q[r][c] x[c] for the four rows w0..w3 (may repeat) -> out[0..3]. */
static inline void w8x_quad(const uint8_t *w0, const uint8_t *w1, const uint8_t *w2, const uint8_t *w3,
                            const float *x, int64_t cols, size_t pf, float out[4]) {
    const __m512 m128 = _mm512_set1_ps(128.0f);
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    __m512 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    int64_t c = 0;
    const int64_t c32 = cols & ~(int64_t)31;
    while (c < c32) {
        const int64_t e = c + W8_FOLD < c32 ? c + W8_FOLD : c32;
        __m512 sa = _mm512_setzero_ps(), sb = sa; /* this block's x, by lane */
        for (; c < e; c += 32) {
            if ((c & 63) == 0) {
                _mm_prefetch((const char *)(w0 + pf + c), _MM_HINT_T0);
                _mm_prefetch((const char *)(w1 + pf + c), _MM_HINT_T0);
                _mm_prefetch((const char *)(w2 + pf + c), _MM_HINT_T0);
                _mm_prefetch((const char *)(w3 + pf + c), _MM_HINT_T0);
            }
            const __m512 x0 = _mm512_loadu_ps(x + c), x1 = _mm512_loadu_ps(x + c + 16);
            sa = _mm512_add_ps(sa, x0);
            sb = _mm512_add_ps(sb, x1);
            a0 = _mm512_fmadd_ps(w8x_u16(w0 + c), x0, a0);
            a1 = _mm512_fmadd_ps(w8x_u16(w1 + c), x0, a1);
            a2 = _mm512_fmadd_ps(w8x_u16(w2 + c), x0, a2);
            a3 = _mm512_fmadd_ps(w8x_u16(w3 + c), x0, a3);
            b0 = _mm512_fmadd_ps(w8x_u16(w0 + c + 16), x1, b0);
            b1 = _mm512_fmadd_ps(w8x_u16(w1 + c + 16), x1, b1);
            b2 = _mm512_fmadd_ps(w8x_u16(w2 + c + 16), x1, b2);
            b3 = _mm512_fmadd_ps(w8x_u16(w3 + c + 16), x1, b3);
        }
        sa = _mm512_mul_ps(sa, m128); /* exact: a power of two */
        sb = _mm512_mul_ps(sb, m128);
        a0 = _mm512_sub_ps(a0, sa); a1 = _mm512_sub_ps(a1, sa);
        a2 = _mm512_sub_ps(a2, sa); a3 = _mm512_sub_ps(a3, sa);
        b0 = _mm512_sub_ps(b0, sb); b1 = _mm512_sub_ps(b1, sb);
        b2 = _mm512_sub_ps(b2, sb); b3 = _mm512_sub_ps(b3, sb);
    }
    if (c + 16 <= cols) {
        const __m512 x0 = _mm512_loadu_ps(x + c), s = _mm512_mul_ps(x0, m128);
        a0 = _mm512_sub_ps(_mm512_fmadd_ps(w8x_u16(w0 + c), x0, a0), s);
        a1 = _mm512_sub_ps(_mm512_fmadd_ps(w8x_u16(w1 + c), x0, a1), s);
        a2 = _mm512_sub_ps(_mm512_fmadd_ps(w8x_u16(w2 + c), x0, a2), s);
        a3 = _mm512_sub_ps(_mm512_fmadd_ps(w8x_u16(w3 + c), x0, a3), s);
        c += 16;
    }
    const int64_t rem = cols - c;
    if (rem) {
        const __mmask16 m = (__mmask16)((1u << rem) - 1u);
        const __m512 xt = _mm512_maskz_loadu_ps(m, x + c), s = _mm512_mul_ps(xt, m128);
        b0 = _mm512_sub_ps(_mm512_fmadd_ps(w8x_u16m(w0 + c, m), xt, b0), s);
        b1 = _mm512_sub_ps(_mm512_fmadd_ps(w8x_u16m(w1 + c, m), xt, b1), s);
        b2 = _mm512_sub_ps(_mm512_fmadd_ps(w8x_u16m(w2 + c, m), xt, b2), s);
        b3 = _mm512_sub_ps(_mm512_fmadd_ps(w8x_u16m(w3 + c, m), xt, b3), s);
    }
    _mm_storeu_ps(out, w8x_hsum4(_mm512_add_ps(a0, b0), _mm512_add_ps(a1, b1), _mm512_add_ps(a2, b2),
                                 _mm512_add_ps(a3, b3)));
}

void lq_matvec_w8a16_avx512(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    const float *scale = w->aux[0];
    const uint8_t *base = (const uint8_t *)w->data;
    const size_t rb = w->row_bytes;
    for (int64_t r = r0; r < r1; r += 4) {
        /* 1..3 leftover rows repeat the last row (computed, not stored) */
        const uint8_t *p[4];
        for (int i = 0; i < 4; i++) p[i] = base + (size_t)(r + i < r1 ? r + i : r1 - 1) * rb;
        float out[4];
        w8x_quad(p[0], p[1], p[2], p[3], x, w->cols, 4 * rb, out);
        for (int i = 0; i < 4 && r + i < r1; i++) y[r + i - r0] = out[i] * scale[r + i];
    }
}
