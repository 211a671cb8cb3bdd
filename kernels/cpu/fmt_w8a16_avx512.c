/* fmt_w8a16_avx512.c - W8A16 matvec (f32 activations), AVX-512 twin of fmt_w8a16_avx2.c.
 *
 * One row at a time, for the reason matvec_avx2_tmpl.h gives: the rows are contiguous, so
 * walking them in order is one sequential stream for the hardware prefetcher, where the AVX2
 * twin's four interleaved rows (576 bytes each on SmolLM2) are four short streams that need a
 * software prefetch at every 4-row jump. x (a few KB) stays in L1.
 *
 * Per 16 weights: one 16-byte load, a xor with 0x80 (u = q + 128 -> q as a signed byte),
 * vpmovsxbd, vcvtdq2ps (exact) and one FMA with x: every product is q x as in the ref, with no
 * correction term. Four accumulators (64 columns a step) cover the FMA latency; the tail
 * (cols % 16) is one masked byte load (masked-off codes are not read) against masked x. The row
 * scale multiplies once at the end. Rounding: at most cols/64 + 6 roundings per product, within
 * the F32 bound of format_table.c.
 */
#include <immintrin.h>

#include "kern_internal.h"
#include "lq_blocks.h"

/* 16 codes at p (masked by m) as floats q = u - 128. */
static inline __m512 w8x_q16(__m128i u) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_xor_si128(u, _mm_set1_epi8((char)0x80))));
}

void lq_matvec_w8a16_avx512(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    const float *scale = w->aux[0];
    const uint8_t *base = (const uint8_t *)w->data;
    const size_t rb = w->row_bytes;
    const int64_t cols = w->cols;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *a = base + (size_t)r * rb;
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        int64_t c = 0;
        for (; c + 64 <= cols; c += 64) {
            s0 = _mm512_fmadd_ps(w8x_q16(_mm_loadu_si128((const __m128i *)(a + c))), _mm512_loadu_ps(x + c), s0);
            s1 = _mm512_fmadd_ps(w8x_q16(_mm_loadu_si128((const __m128i *)(a + c + 16))), _mm512_loadu_ps(x + c + 16), s1);
            s2 = _mm512_fmadd_ps(w8x_q16(_mm_loadu_si128((const __m128i *)(a + c + 32))), _mm512_loadu_ps(x + c + 32), s2);
            s3 = _mm512_fmadd_ps(w8x_q16(_mm_loadu_si128((const __m128i *)(a + c + 48))), _mm512_loadu_ps(x + c + 48), s3);
        }
        for (; c + 16 <= cols; c += 16)
            s1 = _mm512_fmadd_ps(w8x_q16(_mm_loadu_si128((const __m128i *)(a + c))), _mm512_loadu_ps(x + c), s1);
        if (c < cols) {
            const __mmask16 m = (__mmask16)((1u << (cols - c)) - 1u);
            /* masked-off codes read as 0 (q = -128) but meet x = 0 */
            s2 = _mm512_fmadd_ps(w8x_q16(_mm_maskz_loadu_epi8(m, a + c)), _mm512_maskz_loadu_ps(m, x + c), s2);
        }
        y[r - r0] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3))) * scale[r];
    }
}
