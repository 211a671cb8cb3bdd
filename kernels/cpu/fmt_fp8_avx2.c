/* fmt_fp8_avx2.c - FP8 E4M3 fast paths. An E4M3 code becomes the binary16 with the same sign,
 * exponent and mantissa bits one position lower (s eeee mmm -> s 0eeee mmm0000000), which is the
 * E4M3 value times 2^-8 for normals and subnormals alike (exponent bias 15 vs 7); F16C converts
 * that exactly, and the 2^8 is folded into the row scale (a power of two: no rounding). The NaN
 * codes (S.1111.111) are patched to an f16 NaN. So every weight converts exactly, as in the ref. */
#include <immintrin.h>
#include <string.h>

#include "kern_internal.h"
#include "lq_blocks.h"

static inline __m256 fp8_load8(const uint8_t *p) {
    const __m128i b = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)p));
    /* b << 8 puts the code in the top byte; >> 1 arithmetic copies the sign into bit 14, which
     * the mask clears: bits 15 | 13..7 = s | eeee mmm */
    __m128i h = _mm_and_si128(_mm_srai_epi16(_mm_slli_epi16(b, 8), 1), _mm_set1_epi16((short)0xBF80));
    const __m128i nan = _mm_cmpeq_epi16(_mm_and_si128(b, _mm_set1_epi16(0x7F)), _mm_set1_epi16(0x7F));
    h = _mm_or_si128(h, _mm_and_si128(nan, _mm_set1_epi16(0x7E00)));
    return _mm256_cvtph_ps(h);
}

static inline __m256 fp8_loadn(const uint8_t *p, int64_t k) {
    uint8_t t[8] = {0};
    memcpy(t, p, (size_t)k);
    return fp8_load8(t);
}

/* 16 codes at once in 16-bit lanes (half the integer work per code of fp8_load8), as two
 * vectors of 8 floats (times 2^-8). */
static inline void fp8_load16(const uint8_t *p, __m256 *lo, __m256 *hi) {
    const __m256i b = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p));
    __m256i h = _mm256_and_si256(_mm256_srai_epi16(_mm256_slli_epi16(b, 8), 1),
                                 _mm256_set1_epi16((short)0xBF80));
    const __m256i nan = _mm256_cmpeq_epi16(_mm256_and_si256(b, _mm256_set1_epi16(0x7F)),
                                           _mm256_set1_epi16(0x7F));
    h = _mm256_or_si256(h, _mm256_and_si256(nan, _mm256_set1_epi16(0x7E00)));
    *lo = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
    *hi = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
}

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* sum_c e4m3(W[r][c]) 2^-8 x[c] per row: four rows share each x load, two chains per row, the
 * last cols % 16 columns through the 8-wide loader with masked x (as matvec_avx2_tmpl.h). */
static void fp8_sums(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    const int64_t cols = w->cols, full = cols & ~(int64_t)15;
    const char *base = (const char *)w->data;
    const size_t rb = w->row_bytes;
    /* tail: up to two 8-wide pieces, zero-padded codes and masked x */
    const int64_t t0n = cols - full > 8 ? 8 : cols - full, t1n = cols - full - t0n;
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)t0n), idx);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)t1n), idx);
    const __m256 xt0 = t0n ? _mm256_maskload_ps(x + full, m0) : _mm256_setzero_ps();
    const __m256 xt1 = t1n ? _mm256_maskload_ps(x + full + 8, m1) : _mm256_setzero_ps();
#define FP8_ROW_TAIL(wr, a, b)                                                                    \
    do {                                                                                        \
        if (t0n) a = _mm256_fmadd_ps(fp8_loadn((wr) + full, t0n), xt0, a);                      \
        if (t1n) b = _mm256_fmadd_ps(fp8_loadn((wr) + full + 8, t1n), xt1, b);                  \
    } while (0)
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const uint8_t *w0 = (const uint8_t *)(base + (size_t)r * rb), *w1 = w0 + rb, *w2 = w1 + rb, *w3 = w2 + rb;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        for (int64_t c = 0; c < full; c += 16) {
            const __m256 x0 = _mm256_loadu_ps(x + c), x1 = _mm256_loadu_ps(x + c + 8);
            __m256 lo, hi;
            fp8_load16(w0 + c, &lo, &hi); a0 = _mm256_fmadd_ps(lo, x0, a0); b0 = _mm256_fmadd_ps(hi, x1, b0);
            fp8_load16(w1 + c, &lo, &hi); a1 = _mm256_fmadd_ps(lo, x0, a1); b1 = _mm256_fmadd_ps(hi, x1, b1);
            fp8_load16(w2 + c, &lo, &hi); a2 = _mm256_fmadd_ps(lo, x0, a2); b2 = _mm256_fmadd_ps(hi, x1, b2);
            fp8_load16(w3 + c, &lo, &hi); a3 = _mm256_fmadd_ps(lo, x0, a3); b3 = _mm256_fmadd_ps(hi, x1, b3);
        }
        FP8_ROW_TAIL(w0, a0, b0); FP8_ROW_TAIL(w1, a1, b1);
        FP8_ROW_TAIL(w2, a2, b2); FP8_ROW_TAIL(w3, a3, b3);
        y[r - r0] = hsum8(_mm256_add_ps(a0, b0));
        y[r + 1 - r0] = hsum8(_mm256_add_ps(a1, b1));
        y[r + 2 - r0] = hsum8(_mm256_add_ps(a2, b2));
        y[r + 3 - r0] = hsum8(_mm256_add_ps(a3, b3));
    }
    for (; r < r1; r++) {
        const uint8_t *w0 = (const uint8_t *)(base + (size_t)r * rb);
        __m256 a0 = _mm256_setzero_ps(), b0 = a0;
        for (int64_t c = 0; c < full; c += 16) {
            __m256 lo, hi;
            fp8_load16(w0 + c, &lo, &hi);
            a0 = _mm256_fmadd_ps(lo, _mm256_loadu_ps(x + c), a0);
            b0 = _mm256_fmadd_ps(hi, _mm256_loadu_ps(x + c + 8), b0);
        }
        FP8_ROW_TAIL(w0, a0, b0);
        y[r - r0] = hsum8(_mm256_add_ps(a0, b0));
    }
#undef FP8_ROW_TAIL
}

void lq_matvec_fp8_avx2(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    const float *scale = w->aux[0];
    fp8_sums(w, x, y, r0, r1); /* sum e4m3 * 2^-8 * x per row */
    for (int64_t r = r0; r < r1; r++) y[r - r0] *= scale[r] * 256.0f;
}

/* (e4m3 * 2^-8) * (scale * 2^8) is the exact product e4m3 * scale rounded once: bit-identical to
 * lq_dequant_fp8_ref. */
void lq_dequant_fp8_avx2(const lq_weight *w, int64_t r0, int64_t r1, float *out) {
    const float *scale = w->aux[0];
    const int64_t cols = w->cols;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        float *o = out + (size_t)(r - r0) * (size_t)cols;
        const __m256 s = _mm256_set1_ps(scale[r] * 256.0f);
        int64_t c = 0;
        for (; c + 8 <= cols; c += 8) _mm256_storeu_ps(o + c, _mm256_mul_ps(fp8_load8(wr + c), s));
        for (; c < cols; c++) o[c] = lq_e4m3_to_f32(wr[c]) * scale[r];
    }
}
