/* fmt_f16_avx512.c - F16 weights: AVX-512 matvec; vcvtph2ps widens 16 halves exactly (as
 * lq_f16_to_f32), then the shared loop (matvec_avx512_tmpl.h). */
#include "kern_internal.h"

#define MV5_NAME lq_matvec_f16_avx512
#define MV5_T uint16_t
#define MV5_LOAD16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
#define MV5_LOADM(p, m) _mm512_cvtph_ps(_mm256_maskz_loadu_epi16((m), (p)))
#include "matvec_avx512_tmpl.h"
