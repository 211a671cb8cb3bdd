/* fmt_float_gemm_avx512.c - batched-decode gemm of F32, F16 and BF16 weights with 16-lane FMAs
 * (gemm_small_avx512_tmpl.h): the AVX-512 twins of the gemm slots of fmt_{f32,f16,bf16}_avx2.c.
 * Conversions are exact, as in the AVX2 loads: F16 through vcvtph2ps, BF16 by a 16-bit shift. */
#include <immintrin.h>

#include "kern_internal.h"

/* masked loads read nothing past p + k, so tails never touch bytes beyond the row */
static inline __m512 f32_loadn(const float *p, int64_t k) { return _mm512_maskz_loadu_ps((__mmask16)((1u << k) - 1u), p); }

static inline __m512 f16_load16(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
static inline __m512 f16_loadn(const uint16_t *p, int64_t k) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16((__mmask16)((1u << k) - 1u), p));
}

static inline __m512 bf16_widen(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
static inline __m512 bf16_load16(const uint16_t *p) { return bf16_widen(_mm256_loadu_si256((const __m256i *)p)); }
static inline __m512 bf16_loadn(const uint16_t *p, int64_t k) {
    return bf16_widen(_mm256_maskz_loadu_epi16((__mmask16)((1u << k) - 1u), p));
}

#define GS5_NAME lq_gemm_f32_avx512
#define GS5_T float
#define GS5_LOAD16(p) _mm512_loadu_ps(p)
#define GS5_LOADN(p, k) f32_loadn((p), (k))
#include "gemm_small_avx512_tmpl.h"

#define GS5_NAME lq_gemm_f16_avx512
#define GS5_T uint16_t
#define GS5_LOAD16(p) f16_load16(p)
#define GS5_LOADN(p, k) f16_loadn((p), (k))
#include "gemm_small_avx512_tmpl.h"

#define GS5_NAME lq_gemm_bf16_avx512
#define GS5_T uint16_t
#define GS5_LOAD16(p) bf16_load16(p)
#define GS5_LOADN(p, k) bf16_loadn((p), (k))
#include "gemm_small_avx512_tmpl.h"
