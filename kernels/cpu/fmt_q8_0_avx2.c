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

/* Q8_0 x Q8_0 activations: exact int8 products (maddubs on |w| and sign(w) x: |x| <= 127, so a
 * pair sums to at most 2 * 128 * 127 and never saturates int16), pairs widened to int32 (madd),
 * each block's 8 lane sums converted and scaled by d_w d_x into the row's f32 accumulator, as
 * ggml's AVX2 vec_dot_q8_0_q8_0 does. Four rows share each activation block load. */
static inline __m256 q8q8_block(const uint8_t *wb, __m256i xv, float dx, __m256 acc) {
    const __m256i wv = _mm256_loadu_si256((const __m256i *)(wb + 2));
    const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv));
    const __m256 s = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
    return _mm256_fmadd_ps(_mm256_set1_ps(blk_d(wb) * dx), s, acc);
}

static inline float q8q8_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

void lq_matvec_q_q8_0_avx2(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1) {
    const int64_t nb = w->cols / LQ_QK;
    const uint8_t *xb = xq, *base = w->data;
    const size_t rb = w->row_bytes;
    for (int64_t r = r0; r < r1; r += 4) {
        /* leftover rows (1..3) repeat the last row's pointer; only real rows are stored */
        const int64_t n = r1 - r < 4 ? r1 - r : 4;
        const uint8_t *w0 = base + (size_t)r * rb, *w1 = base + (size_t)(r + (n > 1)) * rb;
        const uint8_t *w2 = base + (size_t)(r + (n > 2) * 2) * rb, *w3 = base + (size_t)(r + (n > 3) * 3) * rb;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t i = 0; i < nb; i++) {
            const uint8_t *ab = xb + i * 34;
            const __m256i xv = _mm256_loadu_si256((const __m256i *)(ab + 2));
            const float dx = blk_d(ab);
            const size_t o = (size_t)i * 34;
            a0 = q8q8_block(w0 + o, xv, dx, a0);
            a1 = q8q8_block(w1 + o, xv, dx, a1);
            a2 = q8q8_block(w2 + o, xv, dx, a2);
            a3 = q8q8_block(w3 + o, xv, dx, a3);
        }
        y[r - r0] = q8q8_hsum(a0);
        if (n > 1) y[r - r0 + 1] = q8q8_hsum(a1);
        if (n > 2) y[r - r0 + 2] = q8q8_hsum(a2);
        if (n > 3) y[r - r0 + 3] = q8q8_hsum(a3);
    }
}
