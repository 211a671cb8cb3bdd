/* fmt_q8_0_avx2.c - GGUF Q8_0 fast paths (loops in blk_avx2_tmpl.h): a block's 32 int8 codes
 * widen straight from memory (vpmovsxbd) to exact floats. */
#include <immintrin.h>

#include "blk_q8_avx2.h"
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

/* Q8_0 x Q8_0 activations (blk_q8_tmpl.h): exact int8 products by the sign trick (maddubs on
 * |w| and sign(w) y: |y| <= 127, so a pair sums to at most 2 * 128 * 127 and never saturates
 * int16), pairs widened to int32 (madd), each block's 8 lane sums converted and scaled by
 * d_w d_x into the f32 accumulator, as ggml's AVX2 vec_dot_q8_0_q8_0 does. */
#define QD_NAME lq_matvec_q_q8_0_avx2
#define QD_GEMM lq_gemm_q_q8_0_avx2
#define QD_WBYTES 34
#define QD_Q81 0
#define QD_CODES(b) _mm256_loadu_si256((const __m256i *)((b) + 2))
#define QD_PREP(y) _mm256_setzero_si256()
#define QD_MUL(c, y, a) qd_dot_ss((c), (y))
#include "blk_q8_tmpl.h"
