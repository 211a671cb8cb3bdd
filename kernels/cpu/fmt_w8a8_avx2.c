/* fmt_w8a8_avx2.c - W8A8 fast paths: the activation codes of lq_w8a8_xcode (same f32 multiply,
 * same clamps, same round-half-even conversion), then exact int8 x int8 dot products:
 * _mm256_maddubs_epi16 multiplies unsigned by signed bytes, so each weight's sign is moved onto
 * the activation (|w| * sign(w) x; |w| <= 128 fits u8 and |x| <= 127 never overflows when negated),
 * pairs are summed in int16 (<= 2 * 128 * 127 = 32512: no saturation), then widened to int32 with
 * _mm256_madd_epi16. int32 sums are exact for cols <= 131072 (lq_wfmt_sizes). The final
 * (float)acc * scale_x * scale[r] is the ref's expression, so fast == ref bit for bit.
 * Four rows share each 32-byte load of the activation codes.
 */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "kern_internal.h"
#include "row_prefetch.h"

#define W8A8_STACK 16384 /* activation codes on the stack: rows up to 16384 wide, else malloc */

/* codes of x[0..cols) into xq (zero padded to a multiple of 32); returns scale_x */
static float quantize_x(const float *x, int64_t cols, int8_t *xq, int64_t padded) {
    __m256 m = _mm256_setzero_ps();
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    int64_t c = 0;
    for (; c + 8 <= cols; c += 8) m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + c), absmask), m);
    float lanes[8], amax = 0.0f;
    _mm256_storeu_ps(lanes, m);
    for (int i = 0; i < 8; i++) amax = lanes[i] > amax ? lanes[i] : amax;
    for (; c < cols; c++) {
        const float a = __builtin_fabsf(x[c]);
        amax = a > amax ? a : amax;
    }
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    const __m256 vinv = _mm256_set1_ps(inv), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    c = 0;
    for (; c + 32 <= cols; c += 32) {
        __m256i q[4];
        for (int i = 0; i < 4; i++) {
            __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + c + 8 * i), vinv);
            v = _mm256_min_ps(_mm256_max_ps(v, lo), hi); /* (v > lo ? v : lo), (v < hi ? v : hi) */
            q[i] = _mm256_cvtps_epi32(v);                 /* round half to even (MXCSR default) */
        }
        const __m256i ab = _mm256_packs_epi32(q[0], q[1]), cd = _mm256_packs_epi32(q[2], q[3]);
        const __m256i b = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd), perm);
        _mm256_storeu_si256((__m256i *)(xq + c), b);
    }
    for (; c < cols; c++) xq[c] = (int8_t)lq_w8a8_xcode(x[c], inv);
    for (; c < padded; c++) xq[c] = 0;
    return amax / 127.0f;
}

static inline __m256i dot32(__m256i wv, __m256i xv) {
    const __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(wv), _mm256_sign_epi8(xv, wv));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

static inline int32_t hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* the last cols % 32 weights of a row, zero padded (the activation codes there are 0 too) */
static inline __m256i load_tail(const int8_t *p, int64_t k) {
    int8_t t[32] = {0};
    memcpy(t, p, (size_t)k);
    return _mm256_loadu_si256((const __m256i *)t);
}

static void w8a8_rows(const lq_weight *w, const int8_t *xq, float sx, float *y, int64_t r0, int64_t r1) {
    const int64_t cols = w->cols, full = cols & ~(int64_t)31, rem = cols - full;
    const float *scale = w->aux[0];
    const char *base = (const char *)w->data;
    const size_t rb = w->row_bytes;
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const int8_t *w0 = (const int8_t *)(base + (size_t)r * rb), *w1 = (const int8_t *)(base + (size_t)(r + 1) * rb);
        const int8_t *w2 = (const int8_t *)(base + (size_t)(r + 2) * rb), *w3 = (const int8_t *)(base + (size_t)(r + 3) * rb);
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        const rp_rows pf = rp_begin(base + (size_t)(r + 4) * rb, rp_next_group_bytes(r, r1, rb, 4), full / 32);
        for (int64_t c = 0; c < full; c += 32) {
            rp_step(&pf, c / 32);
            const __m256i xv = _mm256_loadu_si256((const __m256i *)(xq + c));
            a0 = _mm256_add_epi32(a0, dot32(_mm256_loadu_si256((const __m256i *)(w0 + c)), xv));
            a1 = _mm256_add_epi32(a1, dot32(_mm256_loadu_si256((const __m256i *)(w1 + c)), xv));
            a2 = _mm256_add_epi32(a2, dot32(_mm256_loadu_si256((const __m256i *)(w2 + c)), xv));
            a3 = _mm256_add_epi32(a3, dot32(_mm256_loadu_si256((const __m256i *)(w3 + c)), xv));
        }
        if (rem) {
            const __m256i xv = _mm256_loadu_si256((const __m256i *)(xq + full));
            a0 = _mm256_add_epi32(a0, dot32(load_tail(w0 + full, rem), xv));
            a1 = _mm256_add_epi32(a1, dot32(load_tail(w1 + full, rem), xv));
            a2 = _mm256_add_epi32(a2, dot32(load_tail(w2 + full, rem), xv));
            a3 = _mm256_add_epi32(a3, dot32(load_tail(w3 + full, rem), xv));
        }
        y[r - r0] = (float)hsum_i32(a0) * sx * scale[r];
        y[r + 1 - r0] = (float)hsum_i32(a1) * sx * scale[r + 1];
        y[r + 2 - r0] = (float)hsum_i32(a2) * sx * scale[r + 2];
        y[r + 3 - r0] = (float)hsum_i32(a3) * sx * scale[r + 3];
    }
    for (; r < r1; r++) {
        const int8_t *w0 = (const int8_t *)(base + (size_t)r * rb);
        __m256i a0 = _mm256_setzero_si256();
        for (int64_t c = 0; c < full; c += 32)
            a0 = _mm256_add_epi32(a0, dot32(_mm256_loadu_si256((const __m256i *)(w0 + c)),
                                            _mm256_loadu_si256((const __m256i *)(xq + c))));
        if (rem)
            a0 = _mm256_add_epi32(a0, dot32(load_tail(w0 + full, rem),
                                            _mm256_loadu_si256((const __m256i *)(xq + full))));
        y[r - r0] = (float)hsum_i32(a0) * sx * scale[r];
    }
}

/* One 32-column step of w8a8_tile: |w| once per row, then each token's codes against both rows. */
static inline __attribute__((always_inline)) void w8a8_step(const __m256i *wv, int nr, const int8_t *xq,
                                                            int64_t padded, int nt, __m256i acc[2][8]) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i wa[2];
    _Pragma("GCC unroll 2") for (int i = 0; i < nr; i++) wa[i] = _mm256_abs_epi8(wv[i]);
    _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++) {
        const __m256i xv = _mm256_loadu_si256((const __m256i *)(xq + (size_t)j * (size_t)padded));
        _Pragma("GCC unroll 2") for (int i = 0; i < nr; i++) {
            const __m256i p = _mm256_maddubs_epi16(wa[i], _mm256_sign_epi8(xv, wv[i]));
            acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(p, ones));
        }
    }
}

/* nr (1 or 2) rows x nt (1..4; 8 with one row) tokens of quantized activations (codes xq, stride padded; scales
 * sx) into y[t * ldy + i]: each weight vector is loaded and made absolute once for every token of
 * the group. Every element is its exact int32 sum times sx * scale, the ref's expression, so the
 * tile equals decode bit for bit. Constant nr / nt at each call keep acc in registers. */
static inline __attribute__((always_inline)) void w8a8_tile(const int8_t *w0, size_t rb, int nr, const int8_t *xq,
                                                            int64_t padded, const float *sx, int nt, int64_t cols,
                                                            const float *scale, float *y, int64_t ldy) {
    const int64_t full = cols & ~(int64_t)31, rem = cols - full;
    __m256i acc[2][8];
    _Pragma("GCC unroll 2") for (int i = 0; i < nr; i++)
        _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++) acc[i][j] = _mm256_setzero_si256();
    __m256i wv[2];
    for (int64_t c = 0; c < full; c += 32) {
        _Pragma("GCC unroll 2") for (int i = 0; i < nr; i++)
            wv[i] = _mm256_loadu_si256((const __m256i *)(w0 + (size_t)i * rb + c));
        w8a8_step(wv, nr, xq + c, padded, nt, acc);
    }
    if (rem) {
        _Pragma("GCC unroll 2") for (int i = 0; i < nr; i++) wv[i] = load_tail(w0 + (size_t)i * rb + full, rem);
        w8a8_step(wv, nr, xq + full, padded, nt, acc);
    }
    _Pragma("GCC unroll 2") for (int i = 0; i < nr; i++)
        _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++)
            y[(size_t)j * (size_t)ldy + (size_t)i] = (float)hsum_i32(acc[i][j]) * sx[j] * scale[i];
}

#define W8A8_TILE_TOKENS 16 /* tokens quantized at once (their codes stay in L1 with the row pair) */

/* Y rows [r0, r1) of n tokens: each token's activations quantized once per call exactly as decode
 * quantizes them, then each row pair against the tokens: one row x 8 tokens while 8 are left (the
 * pair read as one sequential stream), 2 rows x up to 4 after (w8a8_tile); identical to decode. */
void lq_matmul_tile_w8a8_avx2(const lq_weight *w, const float *X, int64_t n, float *Y, int64_t r0,
                              int64_t r1) {
    const int64_t cols = w->cols, padded = (cols + 31) / 32 * 32, rows = w->rows;
    const int64_t chunk = n < W8A8_TILE_TOKENS ? n : W8A8_TILE_TOKENS;
    /* every tile of a batched decode step comes here: the codes on the stack when they fit (all
     * of SmolLM2's: 16 x 1536), malloc only for wide rows */
    int8_t stack[W8A8_STACK * 2];
    const size_t need = (size_t)(chunk * padded);
    int8_t *xq = need <= sizeof stack ? stack : malloc(need);
    if (!xq) { lq_matmul_tile_w8a8_ref(w, X, n, Y, r0, r1); return; } /* no memory: still exact */
    const float *scale = w->aux[0];
    const char *base = (const char *)w->data;
    const size_t rb = w->row_bytes;
    float sx[W8A8_TILE_TOKENS];
    for (int64_t t0 = 0; t0 < n; t0 += chunk) {
        const int64_t m = n - t0 < chunk ? n - t0 : chunk;
        for (int64_t t = 0; t < m; t++)
            sx[t] = quantize_x(X + (size_t)(t0 + t) * (size_t)cols, cols, xq + (size_t)t * (size_t)padded, padded);
        for (int64_t r = r0; r < r1; r += 2) {
            const int8_t *w0 = (const int8_t *)(base + (size_t)r * rb);
            const int nr = r + 1 < r1 ? 2 : 1;
            for (int64_t t = 0; t < m; t += 4) {
                const int64_t nt = m - t < 4 ? m - t : 4;
                const int8_t *x = xq + (size_t)t * (size_t)padded;
                float *y = Y + (size_t)(t0 + t) * (size_t)rows + (size_t)r;
                if (m - t >= 8) { /* one row at a time: the pair is read as one sequential stream */
                    w8a8_tile(w0, rb, 1, x, padded, sx + t, 8, cols, scale + r, y, rows);
                    if (nr == 2) w8a8_tile(w0 + rb, rb, 1, x, padded, sx + t, 8, cols, scale + r + 1, y + 1, rows);
                    t += 4;
                    continue;
                }
                if (nr == 2) {
                    if (nt == 4) w8a8_tile(w0, rb, 2, x, padded, sx + t, 4, cols, scale + r, y, rows);
                    else if (nt == 3) w8a8_tile(w0, rb, 2, x, padded, sx + t, 3, cols, scale + r, y, rows);
                    else if (nt == 2) w8a8_tile(w0, rb, 2, x, padded, sx + t, 2, cols, scale + r, y, rows);
                    else w8a8_tile(w0, rb, 2, x, padded, sx + t, 1, cols, scale + r, y, rows);
                } else {
                    if (nt == 4) w8a8_tile(w0, rb, 1, x, padded, sx + t, 4, cols, scale + r, y, rows);
                    else if (nt == 3) w8a8_tile(w0, rb, 1, x, padded, sx + t, 3, cols, scale + r, y, rows);
                    else if (nt == 2) w8a8_tile(w0, rb, 1, x, padded, sx + t, 2, cols, scale + r, y, rows);
                    else w8a8_tile(w0, rb, 1, x, padded, sx + t, 1, cols, scale + r, y, rows);
                }
            }
        }
    }
    if (xq != stack) free(xq);
}

void lq_matvec_w8a8_avx2(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    const int64_t cols = w->cols, padded = (cols + 31) / 32 * 32;
    int8_t stack[W8A8_STACK];
    int8_t *xq = padded <= W8A8_STACK ? stack : malloc((size_t)padded);
    if (!xq) { lq_matvec_w8a8_ref(w, x, y, r0, r1); return; }
    const float sx = quantize_x(x, cols, xq, padded);
    w8a8_rows(w, xq, sx, y, r0, r1);
    if (xq != stack) free(xq);
}

void lq_dequant_w8a8_avx2(const lq_weight *w, int64_t r0, int64_t r1, float *out) {
    const float *scale = w->aux[0];
    const int64_t cols = w->cols;
    for (int64_t r = r0; r < r1; r++) {
        const int8_t *wr = (const int8_t *)w->data + (size_t)r * w->row_bytes;
        float *o = out + (size_t)(r - r0) * (size_t)cols;
        const __m256 s = _mm256_set1_ps(scale[r]);
        int64_t c = 0;
        for (; c + 8 <= cols; c += 8) {
            const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(wr + c)));
            _mm256_storeu_ps(o + c, _mm256_mul_ps(_mm256_cvtepi32_ps(q), s));
        }
        for (; c < cols; c++) o[c] = (float)wr[c] * scale[r];
    }
}
