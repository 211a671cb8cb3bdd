/* fmt_w8a8_avx512.c - W8A8 matvec and prefill / batched-decode tile with AVX-512 VNNI, the twin of
 * fmt_w8a8_avx2.c: the same activation codes (lq_w8a8_xcode: the same f32 multiply, clamps and
 * round-half-even conversion), exact int32 dot products, and the ref's final expression
 * (float)acc * scale_x * scale[r], so fast == ref bit for bit.
 *
 * Why VNNI: on AVX2 an int8 x int8 product costs sign + maddubs + madd + add per 32 products, which
 * makes batched decode compute bound (docs/PERFORMANCE.md, "Batched decode without sgemm's tile
 * copy"); vpdpbusd does 64 products and the accumulation in one instruction.
 *
 * vpdpbusd multiplies unsigned by signed bytes. The weight byte is made unsigned once per load,
 * u = w + 128 (w ^ 0x80), and the activation codes stay signed:
 *     sum_c u_c x_c = sum_c w_c x_c + 128 sum_c x_c,
 * so each token's code sum (computed once when it is quantized) removes the offset for every row.
 * vpdpbusd does not saturate: the int32 lanes wrap, and since the true sum_c w_c x_c fits int32
 * (|w| <= 128, |x| <= 127, cols <= 131072: lq_wfmt_sizes), the wrapped difference is exact.
 *
 * Prefill / batched decode: tiles of up to 4 rows x 4 tokens, each 64-byte weight load feeding 4
 * tokens and each code load 4 rows, 16 accumulators whose horizontal sums are one transposing
 * reduction (red16); decode (matvec): 8 rows x 1 token. The column tail (cols % 64) is a masked
 * weight load against the zero padding of the codes. When 127 / amax overflows to infinity (a
 * tiny amax) the padding's code is -127, not 0: still exact, because the masked-off weight reads
 * as u = 128 and the token's code sum, which the correction subtracts 128 times, includes those
 * padding codes.
 */
#include <immintrin.h>
#include <stdlib.h>

#include "kern_internal.h"
#include "row_prefetch.h"

#define W8A8_STACK 16384  /* activation codes on the stack for rows up to this wide, else malloc */
#define W8A8_TOKENS 16    /* tokens quantized at once */

/* Codes of x[0..cols) into xq (zero padded to `padded`, a multiple of 64); returns scale_x and
 * stores the sum of the codes in *sum. */
static float quantize_x(const float *x, int64_t cols, int8_t *xq, int64_t padded, int32_t *sum) {
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    __m512 m = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 16 <= cols; c += 16) m = _mm512_max_ps(_mm512_and_ps(_mm512_loadu_ps(x + c), absmask), m);
    if (c < cols) {
        const __mmask16 k = (__mmask16)((1u << (cols - c)) - 1u);
        m = _mm512_max_ps(_mm512_and_ps(_mm512_maskz_loadu_ps(k, x + c), absmask), m);
    }
    /* max is exact in any order; NaN lanes were dropped by max_ps as lq_w8a8_amax drops them */
    float lanes[16], amax = 0.0f;
    _mm512_storeu_ps(lanes, m);
    for (int i = 0; i < 16; i++) amax = lanes[i] > amax ? lanes[i] : amax;
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    const __m512 vinv = _mm512_set1_ps(inv), lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    __m512i s = _mm512_setzero_si512();
    for (c = 0; c < padded; c += 16) {
        const int64_t left = cols - c;
        const __mmask16 k = left >= 16 ? (__mmask16)0xffff : left > 0 ? (__mmask16)((1u << left) - 1u) : 0;
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + c), vinv); /* padding: code 0 (-127 if inv is inf) */
        v = _mm512_min_ps(_mm512_max_ps(v, lo), hi); /* (v > lo ? v : lo), (v < hi ? v : hi) */
        const __m512i q = _mm512_cvtps_epi32(v);     /* round half to even (MXCSR default) */
        s = _mm512_add_epi32(s, q);
        _mm_storeu_si128((__m128i *)(xq + c), _mm512_cvtepi32_epi8(q)); /* |q| <= 127: no truncation */
    }
    *sum = _mm512_reduce_add_epi32(s);
    return amax / 127.0f;
}

/* out lane k = the sum of acc[k]'s 16 lanes (integer adds: exact in any order). */
static inline __attribute__((always_inline)) __m512i red16(const __m512i acc[16]) {
    __m512i p[8], q[4];
    _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) /* per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3] */
        p[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(acc[2 * i], acc[2 * i + 1]),
                                _mm512_unpackhi_epi32(acc[2 * i], acc[2 * i + 1]));
    _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) /* per 128-bit lane: [A, B, C, D] partial sums of acc[4j .. 4j+3] */
        q[j] = _mm512_add_epi32(_mm512_unpacklo_epi64(p[2 * j], p[2 * j + 1]),
                                _mm512_unpackhi_epi64(p[2 * j], p[2 * j + 1]));
    /* across the four 128-bit lanes: x = [q0 l0+l1, q0 l2+l3, q1 l0+l1, q1 l2+l3], y likewise */
    const __m512i x = _mm512_add_epi32(_mm512_shuffle_i32x4(q[0], q[1], 0x88), _mm512_shuffle_i32x4(q[0], q[1], 0xdd));
    const __m512i y = _mm512_add_epi32(_mm512_shuffle_i32x4(q[2], q[3], 0x88), _mm512_shuffle_i32x4(q[2], q[3], 0xdd));
    return _mm512_add_epi32(_mm512_shuffle_i32x4(x, y, 0x88), _mm512_shuffle_i32x4(x, y, 0xdd));
}

/* NR rows (from w0, stride rb) x NT tokens (codes xq, stride padded; scales sx; code sums xs) into
 * y[t * ldy + i]. NR * NT <= 16; constant at each call so acc stays in registers. */
static inline __attribute__((always_inline)) void tile(const int8_t *w0, size_t rb, int NR, const int8_t *xq,
                                                       int64_t padded, int NT, const float *sx, const int32_t *xs,
                                                       int64_t cols, const float *scale, float *y, int64_t ldy,
                                                       const rp_rows *pf) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const int64_t full = cols & ~(int64_t)63;
    __m512i acc[16];
    _Pragma("GCC unroll 16") for (int k = 0; k < 16; k++) acc[k] = _mm512_setzero_si512();
    __m512i u[16];
    for (int64_t c = 0; c < full; c += 64) {
        if (pf) rp_step(pf, c / 64);
        _Pragma("GCC unroll 16") for (int i = 0; i < NR; i++)
            u[i] = _mm512_xor_si512(_mm512_loadu_si512((const void *)(w0 + (size_t)i * rb + c)), flip);
        _Pragma("GCC unroll 4") for (int j = 0; j < NT; j++) {
            const __m512i xv = _mm512_loadu_si512((const void *)(xq + (size_t)j * (size_t)padded + c));
            _Pragma("GCC unroll 16") for (int i = 0; i < NR; i++)
                acc[i * NT + j] = _mm512_dpbusd_epi32(acc[i * NT + j], u[i], xv);
        }
    }
    if (full < cols) { /* masked-off weights read as 0 (u = 128) against codes 0: no product */
        const __mmask64 k = ((__mmask64)1 << (cols - full)) - 1;
        _Pragma("GCC unroll 16") for (int i = 0; i < NR; i++)
            u[i] = _mm512_xor_si512(_mm512_maskz_loadu_epi8(k, w0 + (size_t)i * rb + full), flip);
        _Pragma("GCC unroll 4") for (int j = 0; j < NT; j++) {
            const __m512i xv = _mm512_loadu_si512((const void *)(xq + (size_t)j * (size_t)padded + full));
            _Pragma("GCC unroll 16") for (int i = 0; i < NR; i++)
                acc[i * NT + j] = _mm512_dpbusd_epi32(acc[i * NT + j], u[i], xv);
        }
    }
    /* Lane k = i * NT + j of the sums is row i of token j. One vector does the ref's
     * (float)(acc - 128 sum_x) * sx * scale for every lane (the subtraction wraps as int32, exact
     * modulo 2^32); the per-lane token / row indices are constants once NR and NT are, and the
     * masked loads read only the NT token and NR row entries that exist. */
    int32_t tok[16], row[16];
    _Pragma("GCC unroll 16") for (int k = 0; k < 16; k++) {
        tok[k] = k < NR * NT ? k % NT : 0;
        row[k] = k < NR * NT ? k / NT : 0;
    }
    const __m512i vt = _mm512_loadu_si512((const void *)tok), vr = _mm512_loadu_si512((const void *)row);
    const __mmask16 mt = (__mmask16)((1u << NT) - 1u), mr = (__mmask16)((1u << NR) - 1u);
    const __m512i off = _mm512_slli_epi32(_mm512_permutexvar_epi32(vt, _mm512_maskz_loadu_epi32(mt, xs)), 7);
    const __m512 vsx = _mm512_permutexvar_ps(vt, _mm512_maskz_loadu_ps(mt, sx));
    const __m512 vsc = _mm512_permutexvar_ps(vr, _mm512_maskz_loadu_ps(mr, scale));
    const __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(red16(acc), off)), vsx), vsc);
    float o[16];
    _mm512_storeu_ps(o, v);
    _Pragma("GCC unroll 16") for (int i = 0; i < NR; i++)
        _Pragma("GCC unroll 4") for (int j = 0; j < NT; j++) y[(size_t)j * (size_t)ldy + (size_t)i] = o[i * NT + j];
}

/* Rows [r0, r1) of m (1..16) tokens: each group of 4 rows against every 4-token group while
 * its 2.3 KB (SmolLM2) are in L1, so the weights are one sequential read. Short rows defeat the
 * hardware prefetcher (row_prefetch.h), so the first token group fetches the next row group. */
static void rows_tokens(const lq_weight *w, const int8_t *xq, int64_t padded, int64_t m, const float *sx,
                        const int32_t *xs, float *Y, int64_t ldy, int64_t r0, int64_t r1) {
    const float *scale = w->aux[0];
    const char *base = (const char *)w->data;
    const size_t rb = w->row_bytes;
    const int64_t cols = w->cols, steps = cols / 64;
#define T(NR, NT, PF) tile((const int8_t *)(base + (size_t)r * rb), rb, NR, xq + (size_t)t * (size_t)padded, padded, NT, \
                           sx + t, xs + t, cols, scale + r, Y + (size_t)t * (size_t)ldy + r, ldy, PF)
#define ROWS(NR)                                                                                      \
    for (int64_t t = 0; t < m; t += 4) {                                                              \
        const int64_t nt = m - t < 4 ? m - t : 4;                                                     \
        const rp_rows *pf = t == 0 ? &next : NULL;                                                    \
        if (nt == 4) T(NR, 4, pf);                                                                    \
        else if (nt == 3) T(NR, 3, pf);                                                               \
        else if (nt == 2) T(NR, 2, pf);                                                               \
        else T(NR, 1, pf);                                                                            \
    }
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const rp_rows next = rp_begin(base + (size_t)(r + 4) * rb, rp_next_group_bytes(r, r1, rb, 4), steps);
        ROWS(4)
    }
    const rp_rows next = rp_begin(NULL, 0, 0);
    if (r1 - r == 3) { ROWS(3) }
    else if (r1 - r == 2) { ROWS(2) }
    else if (r1 - r == 1) { ROWS(1) }
#undef ROWS
#undef T
}

void lq_matmul_tile_w8a8_avx512(const lq_weight *w, const float *X, int64_t n, float *Y, int64_t r0,
                                int64_t r1) {
    const int64_t cols = w->cols, padded = (cols + 63) / 64 * 64, rows = w->rows;
    const int64_t chunk = n < W8A8_TOKENS ? n : W8A8_TOKENS;
    int8_t stack[W8A8_STACK * 2];
    const size_t need = (size_t)(chunk * padded);
    int8_t *xq = need <= sizeof stack ? stack : malloc(need);
    if (!xq) { lq_matmul_tile_w8a8_ref(w, X, n, Y, r0, r1); return; } /* no memory: still exact */
    float sx[W8A8_TOKENS];
    int32_t xs[W8A8_TOKENS];
    for (int64_t t0 = 0; t0 < n; t0 += chunk) {
        const int64_t m = n - t0 < chunk ? n - t0 : chunk;
        for (int64_t t = 0; t < m; t++)
            sx[t] = quantize_x(X + (size_t)(t0 + t) * (size_t)cols, cols, xq + (size_t)t * (size_t)padded, padded, &xs[t]);
        rows_tokens(w, xq, padded, m, sx, xs, Y + (size_t)t0 * (size_t)rows, rows, r0, r1);
    }
    if (xq != stack) free(xq);
}

void lq_matvec_w8a8_avx512(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    const int64_t cols = w->cols, padded = (cols + 63) / 64 * 64;
    int8_t stack[W8A8_STACK];
    int8_t *xq = padded <= W8A8_STACK ? stack : malloc((size_t)padded);
    if (!xq) { lq_matvec_w8a8_ref(w, x, y, r0, r1); return; }
    int32_t xs;
    const float sx = quantize_x(x, cols, xq, padded, &xs);
    const float *scale = w->aux[0];
    const char *base = (const char *)w->data;
    const size_t rb = w->row_bytes;
    int64_t r = r0;
    /* 8 rows a step: their contiguous bytes are one stream for the prefetcher */
    for (; r + 8 <= r1; r += 8)
        tile((const int8_t *)(base + (size_t)r * rb), rb, 8, xq, padded, 1, &sx, &xs, cols, scale + r, y + (r - r0), 1, NULL);
    for (; r < r1; r++)
        tile((const int8_t *)(base + (size_t)r * rb), rb, 1, xq, padded, 1, &sx, &xs, cols, scale + r, y + (r - r0), 1, NULL);
    if (xq != stack) free(xq);
}
