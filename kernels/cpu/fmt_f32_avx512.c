/* fmt_f32_avx512.c - F32 weights: AVX-512 matvec (the loop: matvec_avx512_tmpl.h). */
#include "kern_internal.h"

#define MV5_NAME lq_matvec_f32_avx512
#define MV5_T float
#define MV5_LOAD16(p) _mm512_loadu_ps(p)
#define MV5_LOADM(p, m) _mm512_maskz_loadu_ps((m), (p))
#include "matvec_avx512_tmpl.h"
