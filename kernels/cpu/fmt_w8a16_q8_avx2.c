/* fmt_w8a16_q8_avx2.c - W8A16 x Q8_0 activations, AVX2 (spec: fmt_w8a16_q8.c).
 *
 * A row stores q + 128; xor 0x80 gives the signed code. Per block and row, as ggml's AVX2
 * vec_dot_q8_0_q8_0: maddubs(|q_w|, sign(q_w) x) (|q_w| <= 128 read unsigned, |x| <= 127: a pair
 * is at most 2 * 128 * 127 = 32512, no saturation), madd to int32 lanes (exact D_b), converted
 * and accumulated with d_b in f32; the row's scale multiplies the row's sum once. Four rows share
 * each activation block load and d_b broadcast.
 *
 * Prefetch: one line per row of the NEXT 4-row group per block (pf bytes on). Without it the
 * kernel, 1.4-1.56x faster than the f32-activation one on a hot cache (bench_ct_int), was 0.7x of
 * it reading from DRAM (bench_isa cold: 149 vs 106 us per 1536 x 576 matvec) and decode with
 * LQ_INT_ACT=all ran slower end to end: the hardware prefetcher follows each of the four rows but
 * stalls at the jump to the next group, which the f32-activation W8A16 kernel already covered.
 */
#include <immintrin.h>

#include "kern_internal.h"
#include "lq_blocks.h"

static inline float w8q_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __m256 w8q_block(const uint8_t *wb, __m256i xv, __m256 db, __m256 acc) {
    const __m256i wv = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)wb), _mm256_set1_epi8((char)0x80));
    const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv));
    return _mm256_fmadd_ps(db, _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1))), acc);
}

void lq_matvec_q_w8a16_avx2(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1) {
    const int64_t nb = w->cols / LQ_QK;
    const uint8_t *xb = xq, *base = w->data;
    const size_t rb = w->row_bytes, pf = 4 * rb;
    const float *scale = w->aux[0];
    for (int64_t r = r0; r < r1; r += 4) {
        /* leftover rows (1..3) repeat the last row's pointer; only real rows are stored */
        const int64_t n = r1 - r < 4 ? r1 - r : 4;
        const uint8_t *w0 = base + (size_t)r * rb, *w1 = base + (size_t)(r + (n > 1)) * rb;
        const uint8_t *w2 = base + (size_t)(r + (n > 2) * 2) * rb, *w3 = base + (size_t)(r + (n > 3) * 3) * rb;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *ab = xb + (size_t)b * sizeof(lq_block_q8_0);
            const __m256i xv = _mm256_loadu_si256((const __m256i *)(ab + 2));
            const __m256 db = _mm256_set1_ps(_cvtsh_ss((unsigned short)(ab[0] | ab[1] << 8)));
            const size_t o = (size_t)b * LQ_QK;
            if ((b & 1) == 0) { /* a hint (never faults): the last group may point past the matrix */
                _mm_prefetch((const char *)(w0 + pf + o), _MM_HINT_T0);
                _mm_prefetch((const char *)(w1 + pf + o), _MM_HINT_T0);
                _mm_prefetch((const char *)(w2 + pf + o), _MM_HINT_T0);
                _mm_prefetch((const char *)(w3 + pf + o), _MM_HINT_T0);
            }
            a0 = w8q_block(w0 + o, xv, db, a0);
            a1 = w8q_block(w1 + o, xv, db, a1);
            a2 = w8q_block(w2 + o, xv, db, a2);
            a3 = w8q_block(w3 + o, xv, db, a3);
        }
        y[r - r0] = w8q_hsum(a0) * scale[r];
        if (n > 1) y[r - r0 + 1] = w8q_hsum(a1) * scale[r + 1];
        if (n > 2) y[r - r0 + 2] = w8q_hsum(a2) * scale[r + 2];
        if (n > 3) y[r - r0 + 3] = w8q_hsum(a3) * scale[r + 3];
    }
}
