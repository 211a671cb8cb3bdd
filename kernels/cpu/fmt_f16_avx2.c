/* fmt_f16_avx2.c - F16 weights: F16C conversion (exact, like lq_f16_to_f32) + FMA matvec. */
#include <immintrin.h>
#include <string.h>
#include "kern_internal.h"

static inline __m256 f16_load8(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

/* k < 8 halves, zero padded; copying avoids reading past the end of the mapping. */
static inline __m256 f16_loadn(const uint16_t *p, int64_t k) {
    uint16_t t[8] = {0};
    memcpy(t, p, (size_t)k * sizeof *p);
    return f16_load8(t);
}

#define MV_NAME lq_matvec_f16_avx2
#define MV_T uint16_t
#define MV_LOAD8(p) f16_load8(p)
#define MV_LOADN(p, k) f16_loadn((p), (k))
#include "matvec_avx2_tmpl.h"

#define GS_NAME lq_gemm_f16_avx2
#define GS_T uint16_t
#define GS_LOAD8(p) f16_load8(p)
#define GS_LOADN(p, k) f16_loadn((p), (k))
#include "gemm_small_avx2_tmpl.h"

void lq_dequant_f16_avx2(const lq_weight *w, int64_t r0, int64_t r1, float *out) {
    for (int64_t r = r0; r < r1; r++)
        lq_f16_to_f32_row_avx2((const uint16_t *)((const char *)w->data + (size_t)r * w->row_bytes),
                               out + (size_t)(r - r0) * (size_t)w->cols, w->cols);
}
