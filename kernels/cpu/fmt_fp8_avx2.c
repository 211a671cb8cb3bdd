/* fmt_fp8_avx2.c - FP8 E4M3 fast paths. An E4M3 code becomes the binary16 with the same sign,
 * exponent and mantissa bits one position lower (s eeee mmm -> s 0eeee mmm0000000), which is the
 * E4M3 value times 2^-8 for normals and subnormals alike (exponent bias 15 vs 7); F16C converts
 * that exactly, and the 2^8 is folded into the row scale (a power of two: no rounding). The NaN
 * codes (S.1111.111) are patched to an f16 NaN by dequant, and send matvec's rows to the ref. So
 * every weight converts exactly, as in the ref. */
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

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* matvec, 32 codes (one 256-bit load) per step and row:
 *   - unpacking the bytes against zero gives the words code << 8 directly (no widening and
 *     shift): 16 per unpack, lane-interleaved (unpacklo: bytes 0-7 and 16-23, unpackhi: 8-15
 *     and 24-31), so the x vectors are simply taken at offsets 0, 16, 8, 24;
 *   - an arithmetic shift by one and a mask make the binary16 s 0eeee mmm0000000 (as fp8_load8);
 *   - NaN codes (S.1111.111) are not patched per element: a running byte max of code & 0x7F per
 *     group of four rows sees them, and a group that met one is redone by the ref (which gives
 *     NaN exactly where it should). 2 ops per 32 codes instead of 4 per 16.
 * ~9.5 ops per 16 weights, down from 13. Four rows share each x load (x as memory operands, as
 * in fmt_w4a16_avx2.c: eight accumulators, the constants and the temporaries fill the
 * registers), two chains per row. */
#define FP8_ROW_STEP(p, a, b)                                                                     \
    do {                                                                                        \
        const float *xr_ = xc;                                                                  \
        __asm__ volatile("" : "+r"(xr_)); /* a fresh pointer per row: GCC must not hoist x */     \
        const __m256i c_ = _mm256_loadu_si256((const __m256i *)(p));                            \
        nanmax = _mm256_max_epu8(nanmax, _mm256_and_si256(c_, m7f));                            \
        const __m256i h0_ = _mm256_and_si256(_mm256_srai_epi16(_mm256_unpacklo_epi8(zero, c_), 1), mh); \
        const __m256i h1_ = _mm256_and_si256(_mm256_srai_epi16(_mm256_unpackhi_epi8(zero, c_), 1), mh); \
        a = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(h0_)), _mm256_loadu_ps(xr_), a); \
        b = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(h1_)), _mm256_loadu_ps(xr_ + 8), b); \
        a = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(h0_, 1)), _mm256_loadu_ps(xr_ + 16), a); \
        b = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(h1_, 1)), _mm256_loadu_ps(xr_ + 24), b); \
    } while (0)

/* sum_c e4m3(W[r][c]) 2^-8 x[c] for four rows (w[i], which may repeat) -> out[0..3]; returns
 * whether one of them holds a NaN code (out is then not meaningful). xt is x[full..cols) zero
 * padded to 32 floats. */
static int fp8_quad(const uint8_t *const w[4], const float *x, const float *xt, int64_t cols,
                    float out[4]) {
    const int64_t full = cols & ~(int64_t)31, rest = cols - full;
    const __m256i zero = _mm256_setzero_si256(), m7f = _mm256_set1_epi8(0x7f);
    const __m256i mh = _mm256_set1_epi16((short)0xBFFF); /* clears bit 14, the sign's copy */
    __m256i nanmax = zero;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int64_t c = 0; c < full; c += 32) {
        const float *xc = x + c;
        FP8_ROW_STEP(w[0] + c, a0, b0);
        FP8_ROW_STEP(w[1] + c, a1, b1);
        FP8_ROW_STEP(w[2] + c, a2, b2);
        FP8_ROW_STEP(w[3] + c, a3, b3);
    }
    if (rest) { /* the last cols % 32 codes of each row, zero padded (code 0 is +0) */
        uint8_t t[4][32];
        memset(t, 0, sizeof t);
        for (int i = 0; i < 4; i++) memcpy(t[i], w[i] + full, (size_t)rest);
        const float *xc = xt;
        FP8_ROW_STEP(t[0], a0, b0);
        FP8_ROW_STEP(t[1], a1, b1);
        FP8_ROW_STEP(t[2], a2, b2);
        FP8_ROW_STEP(t[3], a3, b3);
    }
    out[0] = hsum8(_mm256_add_ps(a0, b0));
    out[1] = hsum8(_mm256_add_ps(a1, b1));
    out[2] = hsum8(_mm256_add_ps(a2, b2));
    out[3] = hsum8(_mm256_add_ps(a3, b3));
    return _mm256_movemask_epi8(_mm256_cmpeq_epi8(nanmax, m7f)) != 0;
}
#undef FP8_ROW_STEP

void lq_matvec_fp8_avx2(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    const float *scale = w->aux[0];
    const int64_t cols = w->cols, full = cols & ~(int64_t)31;
    const char *base = (const char *)w->data;
    float xt[32] = {0}; /* x[full..cols), zero padded to a whole step */
    memcpy(xt, x + full, (size_t)(cols - full) * sizeof(float));
    for (int64_t r = r0; r < r1; r += 4) {
        const uint8_t *wr[4];
        for (int i = 0; i < 4; i++) { /* 1..3 leftover rows repeat the last one (not stored) */
            const int64_t ri = r + i < r1 ? r + i : r1 - 1;
            wr[i] = (const uint8_t *)(base + (size_t)ri * w->row_bytes);
        }
        float out[4];
        const int n = r1 - r < 4 ? (int)(r1 - r) : 4;
        if (fp8_quad(wr, x, xt, cols, out)) { /* a NaN code: rare, exact in the ref */
            lq_matvec_fp8_ref(w, x, y + (r - r0), r, r + n);
            continue;
        }
        for (int i = 0; i < n; i++) y[r + i - r0] = out[i] * (scale[r + i] * 256.0f);
    }
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
