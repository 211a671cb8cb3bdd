/* fmt_bf16_avx512.c - BF16 weights: AVX-512 matvec; a bf16 is the top half of its f32, so
 * widening to 32 bits and shifting left by 16 is exact; then the shared loop
 * (matvec_avx512_tmpl.h). */
#include <immintrin.h>

#include "kern_internal.h"

static inline __m512 bf16_widen16(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

#define MV5_NAME lq_matvec_bf16_avx512
#define MV5_T uint16_t
#define MV5_LOAD16(p) bf16_widen16(_mm256_loadu_si256((const __m256i *)(p)))
#define MV5_LOADM(p, m) bf16_widen16(_mm256_maskz_loadu_epi16((m), (p)))
#include "matvec_avx512_tmpl.h"
