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

void lq_matvec_fp8_sum_avx2(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1);
#define MV_NAME lq_matvec_fp8_sum_avx2
#define MV_T uint8_t
#define MV_LOAD8(p) fp8_load8(p)
#define MV_LOADN(p, k) fp8_loadn((p), (k))
#include "matvec_avx2_tmpl.h"

void lq_matvec_fp8_avx2(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    const float *scale = w->aux[0];
    lq_matvec_fp8_sum_avx2(w, x, y, r0, r1); /* sum e4m3 * 2^-8 * x per row */
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
