/* fmt_w8a16_avx2.c - W8A16 fast paths.
 *
 * matvec: decode reads 1 byte per weight, so the loop must do little per weight to stay memory
 * bound. Per 8 weights it does one vpmovzxbd from memory (8 codes u = q + 128 -> int32), one
 * cvtdq2ps (exact) and one FMA with x: the "- 128" is folded out of the loop, since
 *   sum_c q x = sum_c u x - 128 sum_c x,
 * and sum x is accumulated beside the products from the x loads the four rows share (2 adds per
 * 64 weights). That leaves 3 FP-pipe ops per 8 weights instead of 4 (the previous loop also
 * subtracted 128 from every code: 1.3x faster hot, see the commit message for the numbers).
 *
 * Accuracy: u x (u in [0, 255]) are larger than q x, so a long running sum of them would round
 * relative to sum |u x| instead of sum |q x|. The correction is therefore applied every
 * W8_FOLD columns (acc -= 128 * sum of that block's x), which keeps each accumulator within one
 * block's excursion of the true partial sum sum q x: the rounding error stays that of a plain
 * f32 dot product over q (the traits table's rtol), not one growing with 128 * sum |x|.
 * Four rows share every x load; each row has two accumulators (cols in steps of 16): 8
 * independent FMA chains cover the FMA latency. The row scale multiplies once at the end.
 * Tails (cols % 8) take a masked x load and a zero-padded copy of the codes (padding meets
 * x = 0). Leftover rows (1..3) repeat a row pointer instead of a second loop. */
#include <immintrin.h>
#include <string.h>

#include "kern_internal.h"
#include "lq_blocks.h"

#define W8_FOLD 128 /* columns between corrections: a multiple of 16 */

/* 8 codes at p as floats u (not yet minus 128). */
static inline __m256 w8_u8(const uint8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

/* k < 8 codes; the rest read as 0 and meet masked-out (zero) x. Copying avoids reading past the
 * row. */
static inline __m256 w8_u8n(const uint8_t *p, int64_t k) {
    uint8_t t[8] = {0};
    memcpy(t, p, (size_t)k);
    return w8_u8(t);
}

static inline __m128 w8_hsum4(__m256 a, __m256 b, __m256 c, __m256 d) {
    __m256 ab = _mm256_hadd_ps(a, b);
    __m256 cd = _mm256_hadd_ps(c, d);
    __m256 abcd = _mm256_hadd_ps(ab, cd); /* a0-3 b0-3 c0-3 d0-3 | a4-7 b4-7 c4-7 d4-7 */
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

/* sum_c q[r][c] x[c] for the four rows w0..w3 (may repeat) -> out[0..3]. */
static inline void w8_quad(const uint8_t *w0, const uint8_t *w1, const uint8_t *w2, const uint8_t *w3,
                           const float *x, int64_t cols, __m256i tmask, size_t pf, float out[4]) {
    const __m256 m128 = _mm256_set1_ps(128.0f);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    __m256 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    int64_t c = 0;
    const int64_t c16 = cols & ~(int64_t)15;
    while (c < c16) {
        const int64_t e = c + W8_FOLD < c16 ? c + W8_FOLD : c16;
        __m256 sa = _mm256_setzero_ps(), sb = sa; /* this block's x, by lane */
        for (; c < e; c += 16) {
            if ((c & 63) == 0) {
                /* One line per row of the NEXT 4-row group (pf bytes on): the hardware
                 * prefetcher follows each row but stalls at the jump to the next group
                 * (measured: cold matvec 7 -> 10 GB/s, docs/PERFORMANCE.md). A hint: never
                 * faults, so the last group may point past the matrix. */
                _mm_prefetch((const char *)(w0 + pf + c), _MM_HINT_T0);
                _mm_prefetch((const char *)(w1 + pf + c), _MM_HINT_T0);
                _mm_prefetch((const char *)(w2 + pf + c), _MM_HINT_T0);
                _mm_prefetch((const char *)(w3 + pf + c), _MM_HINT_T0);
            }
            const __m256 x0 = _mm256_loadu_ps(x + c), x1 = _mm256_loadu_ps(x + c + 8);
            sa = _mm256_add_ps(sa, x0);
            sb = _mm256_add_ps(sb, x1);
            a0 = _mm256_fmadd_ps(w8_u8(w0 + c), x0, a0);
            a1 = _mm256_fmadd_ps(w8_u8(w1 + c), x0, a1);
            a2 = _mm256_fmadd_ps(w8_u8(w2 + c), x0, a2);
            a3 = _mm256_fmadd_ps(w8_u8(w3 + c), x0, a3);
            b0 = _mm256_fmadd_ps(w8_u8(w0 + c + 8), x1, b0);
            b1 = _mm256_fmadd_ps(w8_u8(w1 + c + 8), x1, b1);
            b2 = _mm256_fmadd_ps(w8_u8(w2 + c + 8), x1, b2);
            b3 = _mm256_fmadd_ps(w8_u8(w3 + c + 8), x1, b3);
        }
        sa = _mm256_mul_ps(sa, m128); /* exact: a power of two */
        sb = _mm256_mul_ps(sb, m128);
        a0 = _mm256_sub_ps(a0, sa); a1 = _mm256_sub_ps(a1, sa);
        a2 = _mm256_sub_ps(a2, sa); a3 = _mm256_sub_ps(a3, sa);
        b0 = _mm256_sub_ps(b0, sb); b1 = _mm256_sub_ps(b1, sb);
        b2 = _mm256_sub_ps(b2, sb); b3 = _mm256_sub_ps(b3, sb);
    }
    if (c + 8 <= cols) {
        const __m256 x0 = _mm256_loadu_ps(x + c), s = _mm256_mul_ps(x0, m128);
        a0 = _mm256_sub_ps(_mm256_fmadd_ps(w8_u8(w0 + c), x0, a0), s);
        a1 = _mm256_sub_ps(_mm256_fmadd_ps(w8_u8(w1 + c), x0, a1), s);
        a2 = _mm256_sub_ps(_mm256_fmadd_ps(w8_u8(w2 + c), x0, a2), s);
        a3 = _mm256_sub_ps(_mm256_fmadd_ps(w8_u8(w3 + c), x0, a3), s);
        c += 8;
    }
    const int64_t rem = cols - c;
    if (rem) {
        const __m256 xt = _mm256_maskload_ps(x + c, tmask), s = _mm256_mul_ps(xt, m128);
        b0 = _mm256_sub_ps(_mm256_fmadd_ps(w8_u8n(w0 + c, rem), xt, b0), s);
        b1 = _mm256_sub_ps(_mm256_fmadd_ps(w8_u8n(w1 + c, rem), xt, b1), s);
        b2 = _mm256_sub_ps(_mm256_fmadd_ps(w8_u8n(w2 + c, rem), xt, b2), s);
        b3 = _mm256_sub_ps(_mm256_fmadd_ps(w8_u8n(w3 + c, rem), xt, b3), s);
    }
    _mm_storeu_ps(out, w8_hsum4(_mm256_add_ps(a0, b0), _mm256_add_ps(a1, b1), _mm256_add_ps(a2, b2),
                                _mm256_add_ps(a3, b3)));
}

void lq_matvec_w8a16_avx2(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    const float *scale = w->aux[0];
    const uint8_t *base = (const uint8_t *)w->data;
    const size_t rb = w->row_bytes;
    const __m256i tmask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(w->cols & 7)),
                                             _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for (int64_t r = r0; r < r1; r += 4) {
        const uint8_t *p[4];
        for (int i = 0; i < 4; i++) p[i] = base + (size_t)(r + i < r1 ? r + i : r1 - 1) * rb;
        float out[4];
        w8_quad(p[0], p[1], p[2], p[3], x, w->cols, tmask, 4 * rb, out);
        for (int i = 0; i < 4 && r + i < r1; i++) y[r + i - r0] = out[i] * scale[r + i];
    }
}

/* 8 codes at p as q (u - 128: exact). */
static inline __m256 w8_load8(const uint8_t *p) {
    __m128i b = _mm_loadl_epi64((const __m128i *)p);
    return _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(b), _mm256_set1_epi32(128)));
}

/* (float)q * scale, one rounding: bit-identical to lq_dequant_w8a16_ref. */
void lq_dequant_w8a16_avx2(const lq_weight *w, int64_t r0, int64_t r1, float *out) {
    const float *scale = w->aux[0];
    const int64_t cols = w->cols;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        float *o = out + (size_t)(r - r0) * (size_t)cols;
        const __m256 s = _mm256_set1_ps(scale[r]);
        int64_t c = 0;
        for (; c + 8 <= cols; c += 8) _mm256_storeu_ps(o + c, _mm256_mul_ps(w8_load8(wr + c), s));
        for (; c < cols; c++) o[c] = (float)lq_int8p_get(wr, c) * scale[r];
    }
}
