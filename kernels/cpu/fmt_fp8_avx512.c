/* fmt_fp8_avx512.c - FP8 E4M3 matvec (f32 activations), AVX-512 twin of fmt_fp8_avx2.c.
 *
 * The conversion of fmt_fp8_avx2.c (an E4M3 code c becomes the binary16 s 0eeee mmm0000000, the
 * E4M3 value times 2^-8 for normals and subnormals alike; vcvtph2ps converts it exactly and the
 * 2^8 goes into the row scale, a power of two), 16 codes at a time: vpmovzxbw, a shift left by 8
 * and an arithmetic shift right by 1 (the sign copied into bit 14, which the mask clears), then
 * one 512-bit conversion and FMA. NaN codes (S.1111.111) are not patched per element: a running
 * byte max of c & 0x7F per row sees them, and such a row is redone by the ref (NaN exactly where
 * it should be). One row at a time, four accumulators (64 columns a step), a masked tail: the
 * rows are contiguous, so that is one sequential stream for the hardware prefetcher
 * (matvec_avx2_tmpl.h has the measurement). Every product is e4m3 x 2^-8 exactly: the F32
 * bound of format_table.c holds, as for the AVX2 twin.
 */
#include <immintrin.h>

#include "kern_internal.h"
#include "lq_blocks.h"

/* 16 codes c -> 16 floats e4m3(c) 2^-8 (NaN codes give finite garbage: the caller checks). */
static inline __m512 fp8x_cvt16(__m128i c) {
    const __m256i h = _mm256_srai_epi16(_mm256_slli_epi16(_mm256_cvtepu8_epi16(c), 8), 1);
    return _mm512_cvtph_ps(_mm256_and_si256(h, _mm256_set1_epi16((short)0xBF80)));
}

void lq_matvec_fp8_avx512(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    const float *scale = w->aux[0];
    const int64_t cols = w->cols;
    const __m128i m7f = _mm_set1_epi8(0x7f);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *a = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        __m128i nm = _mm_setzero_si128();
#define FP8X(off, acc)                                                                              \
    do {                                                                                          \
        const __m128i c_ = _mm_loadu_si128((const __m128i *)(a + c + (off)));                     \
        nm = _mm_max_epu8(nm, _mm_and_si128(c_, m7f));                                            \
        acc = _mm512_fmadd_ps(fp8x_cvt16(c_), _mm512_loadu_ps(x + c + (off)), acc);               \
    } while (0)
        int64_t c = 0;
        for (; c + 64 <= cols; c += 64) {
            FP8X(0, s0);
            FP8X(16, s1);
            FP8X(32, s2);
            FP8X(48, s3);
        }
        for (; c + 16 <= cols; c += 16) FP8X(0, s1);
#undef FP8X
        if (c < cols) { /* masked: the codes past the row are not read, read as 0 (+0) */
            const __mmask16 m = (__mmask16)((1u << (cols - c)) - 1u);
            const __m128i t = _mm_maskz_loadu_epi8(m, a + c);
            nm = _mm_max_epu8(nm, _mm_and_si128(t, m7f));
            s2 = _mm512_fmadd_ps(fp8x_cvt16(t), _mm512_maskz_loadu_ps(m, x + c), s2);
        }
        if (_mm_movemask_epi8(_mm_cmpeq_epi8(nm, m7f))) { /* a NaN code: rare, exact in the ref */
            lq_matvec_fp8_ref(w, x, y + (r - r0), r, r + 1);
            continue;
        }
        const float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
        y[r - r0] = sum * (scale[r] * 256.0f);
    }
}
