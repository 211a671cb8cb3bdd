/* fmt_w8a16_avx2.c - W8A16 fast paths: the shared float matvec loop (matvec_avx2_tmpl.h) over
 * codes widened to f32 (u8 -> i32, - 128, -> f32: exact), then the row's scale applied once.
 * Decode reads 1 byte per weight: about 4x less than f32, so the loop must stay memory bound
 * (5 uops per 8 weights, well under the 4-wide issue budget at DRAM speed). */
#include <immintrin.h>
#include <string.h>

#include "kern_internal.h"
#include "lq_blocks.h"

static inline __m256 w8_load8(const uint8_t *p) {
    __m128i b = _mm_loadl_epi64((const __m128i *)p);
    return _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(b), _mm256_set1_epi32(128)));
}

/* k < 8 codes; the rest are multiplied by masked-out (zero) x, so their value only has to be
 * finite: 0 bytes decode to -128. Copying avoids reading past the row. */
static inline __m256 w8_loadn(const uint8_t *p, int64_t k) {
    uint8_t t[8] = {0};
    memcpy(t, p, (size_t)k);
    return w8_load8(t);
}

void lq_matvec_w8a16_sum_avx2(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1);
#define MV_NAME lq_matvec_w8a16_sum_avx2
#define MV_T uint8_t
#define MV_LOAD8(p) w8_load8(p)
#define MV_LOADN(p, k) w8_loadn((p), (k))
#include "matvec_avx2_tmpl.h"

void lq_matvec_w8a16_avx2(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    const float *scale = w->aux[0];
    lq_matvec_w8a16_sum_avx2(w, x, y, r0, r1); /* sum q * x per row */
    for (int64_t r = r0; r < r1; r++) y[r - r0] *= scale[r];
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
