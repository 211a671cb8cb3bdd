/* fmt_f32_avx2.c - F32 weights: AVX2/FMA matvec, multi-token gemm and dequant. */
#include <string.h>
#include "kern_internal.h"

#define MV_NAME lq_matvec_f32_avx2
#define MV_T float
#define MV_LOAD8(p) _mm256_loadu_ps(p)
#define MV_LOADN(p, k) _mm256_maskload_ps((p), lq_avx2_tail_mask(k))
#include "matvec_avx2_tmpl.h"

#define GS_NAME lq_gemm_f32_avx2
#define GS_T float
#define GS_LOAD8(p) _mm256_loadu_ps(p)
#define GS_LOADN(p, k) _mm256_maskload_ps((p), lq_avx2_tail_mask(k))
#include "gemm_small_avx2_tmpl.h"

void lq_dequant_f32_avx2(const lq_weight *w, int64_t r0, int64_t r1, float *out) {
    /* Already f32: a row copy is the fastest "dequant" there is. */
    const size_t n = (size_t)w->cols * sizeof(float);
    for (int64_t r = r0; r < r1; r++)
        memcpy(out + (size_t)(r - r0) * (size_t)w->cols,
               (const char *)w->data + (size_t)r * w->row_bytes, n);
}
