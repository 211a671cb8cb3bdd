/* fmt_q8_0_avx2.c - GGUF Q8_0 fast paths (loops in blk_avx2_tmpl.h): a block's 32 int8 codes
 * widen straight from memory (vpmovsxbd) to exact floats. */
#include <immintrin.h>

#include "kern_internal.h"

static inline void q8_0_codes(const uint8_t *b, __m256 *c) {
    c[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b + 2))));
    c[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b + 10))));
    c[2] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b + 18))));
    c[3] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b + 26))));
}

#define BLK_MATVEC lq_matvec_q8_0_avx2
#define BLK_DEQUANT lq_dequant_q8_0_avx2
#define BLK_BYTES 34
#define BLK_MIN 0
#define BLK_CODES(p, c) q8_0_codes((p), (c))
#include "blk_avx2_tmpl.h"
