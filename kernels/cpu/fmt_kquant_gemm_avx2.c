/* fmt_kquant_gemm_avx2.c - the K-quants' multi-token products on the integer path (prefill:
 * lq_wfmt_traits.gemm_q) for Q4_K, Q5_K and Q6_K, the types of llama.cpp's K mixes.
 *
 * matvec_q unpacks a row's codes and scales for every token it meets; here a block's codes and
 * scale vectors are unpacked once and multiplied with up to four tokens' Q8_K blocks (kept in L1
 * while the row tile sits in L2, as matmul.c's prefill tiles are sized). Per token every operation
 * is that of fmt_kquant_q_avx2.c's single-token kernel in the same order (the int32 sums are
 * exact, and each f32 step - d_w d_x, the FMA into the block accumulator, the final sums - is
 * the same), so gemm_q equals matvec_q bit for bit: decode and prefill give the same logits.
 * The single-token matvec_q of these types is the same code with T = 1.
 */
#include <immintrin.h>
#include <string.h>

#include "kern_internal.h"
#include "kq_internal.h"

#define KQ_T 4 /* tokens per pass over a row */

static inline float hsum8(__m256 x) {
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

static inline __m256i ld(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline float h2f(lq_f16 h) { return _cvtsh_ss(h); }
static inline __m256i shuf_k4(int i) { return _mm256_set1_epi16((short)(2 * i | (2 * i + 1) << 8)); }
#define SET_M128I(hi, lo) _mm256_inserti128_si256(_mm256_castsi128_si256(lo), (hi), 1)

static inline const lq_block_q8_K *tok(const void *xq, size_t stride, int64_t t) {
    return (const lq_block_q8_K *)((const char *)xq + (size_t)t * stride);
}

/* Q4_K / Q5_K: ggml's scale/min unpacking (utmp) */
static inline __m256i q45_scales_mins(const uint8_t *s12) {
    uint32_t utmp[4];
    lq_kq_q45_utmp(s12, utmp);
    return _mm256_cvtepu8_epi16(_mm_set_epi32((int)utmp[3], (int)utmp[2], (int)utmp[1], (int)utmp[0]));
}

static inline __m128i q45_min_prod(__m256i ms, const int16_t *bsums) {
    const __m256i q8sums = ld(bsums);
    const __m128i q8s = _mm_hadd_epi16(_mm256_extracti128_si256(q8sums, 0), _mm256_extracti128_si256(q8sums, 1));
    return _mm_madd_epi16(_mm256_extracti128_si256(ms, 1), q8s);
}

/* 8 code vectors (sub-blocks of 32) and their 8 scale vectors of one Q4_K / Q5_K block */
static inline void q4_codes(const lq_block_q4_K *b, __m256i *c) {
    const __m256i m4 = _mm256_set1_epi8(0xF);
    for (int j = 0; j < 4; j++) {
        const __m256i bits = ld(b->qs + 32 * j);
        c[2 * j] = _mm256_and_si256(bits, m4);
        c[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
    }
}

static inline void q5_codes(const lq_block_q5_K *b, __m256i *c) {
    const __m256i m4 = _mm256_set1_epi8(0xF), hbits = ld(b->qh);
    __m256i hmask = _mm256_set1_epi8(1);
    int bit = 0;
    for (int j = 0; j < 4; j++) {
        const __m256i bits = ld(b->qs + 32 * j);
        const __m256i h0 = _mm256_slli_epi16(_mm256_srli_epi16(_mm256_and_si256(hbits, hmask), bit++), 4);
        hmask = _mm256_slli_epi16(hmask, 1);
        const __m256i h1 = _mm256_slli_epi16(_mm256_srli_epi16(_mm256_and_si256(hbits, hmask), bit++), 4);
        hmask = _mm256_slli_epi16(hmask, 1);
        c[2 * j] = _mm256_add_epi8(_mm256_and_si256(bits, m4), h0);
        c[2 * j + 1] = _mm256_add_epi8(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4), h1);
    }
}

/* sum over the 8 sub-blocks of scale * (codes . x codes), int32 lanes (ggml's sumi) */
static inline __m256i q45_sumi(const __m256i *c, const __m256i *s, const int8_t *q8) {
    __m256i sumi = _mm256_setzero_si256();
    for (int j = 0; j < 4; j++) {
        const __m256i pl = _mm256_madd_epi16(s[2 * j], _mm256_maddubs_epi16(c[2 * j], ld(q8 + 64 * j)));
        const __m256i ph = _mm256_madd_epi16(s[2 * j + 1], _mm256_maddubs_epi16(c[2 * j + 1], ld(q8 + 64 * j + 32)));
        sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
    }
    return sumi;
}

/* One Q4_K row times T tokens (ggml's AVX2 vec_dot_q4_K_q8_K per token). */
static inline __attribute__((always_inline)) void q4K_row(const lq_block_q4_K *x, int64_t nb, const void *xq,
                                                          size_t xs, int T, float *y, int64_t ldy) {
    __m256 acc[KQ_T];
    __m128 acc_m[KQ_T];
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps(), acc_m[t] = _mm_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
        const float dw = h2f(x[i].d), dmw = h2f(x[i].dmin);
        const __m256i ms = q45_scales_mins(x[i].scales);
        const __m128i sc128 = _mm256_extracti128_si256(ms, 0);
        const __m256i scales = SET_M128I(sc128, sc128);
        __m256i c[8], s[8];
        q4_codes(&x[i], c);
        for (int j = 0; j < 8; j++) s[j] = _mm256_shuffle_epi8(scales, shuf_k4(j));
        for (int t = 0; t < T; t++) {
            const lq_block_q8_K *yb = tok(xq, xs, t) + i;
            const float d = yb->d * dw, dmin = -yb->d * dmw;
            acc_m[t] = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(q45_min_prod(ms, yb->bsums)), acc_m[t]);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(q45_sumi(c, s, yb->qs)), acc[t]);
        }
    }
    for (int t = 0; t < T; t++) {
        __m128 m = _mm_add_ps(acc_m[t], _mm_movehl_ps(acc_m[t], acc_m[t]));
        m = _mm_add_ss(m, _mm_movehdup_ps(m));
        y[t * ldy] = hsum8(acc[t]) + _mm_cvtss_f32(m);
    }
}

/* One Q5_K row times T tokens (ggml's AVX2 vec_dot_q5_K_q8_K per token: the min term as a
 * scalar summs). */
static inline __attribute__((always_inline)) void q5K_row(const lq_block_q5_K *x, int64_t nb, const void *xq,
                                                          size_t xs, int T, float *y, int64_t ldy) {
    const __m128i mzero = _mm_setzero_si128();
    __m256 acc[KQ_T];
    float summs[KQ_T];
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps(), summs[t] = 0.f;
    for (int64_t i = 0; i < nb; ++i) {
        const float dw = h2f(x[i].d), dmw = h2f(x[i].dmin);
        const __m256i ms = q45_scales_mins(x[i].scales);
        const __m128i sc128 = _mm256_extracti128_si256(ms, 0);
        const __m256i scales = SET_M128I(sc128, sc128);
        __m256i c[8], s[8];
        q5_codes(&x[i], c);
        for (int j = 0; j < 8; j++) s[j] = _mm256_shuffle_epi8(scales, shuf_k4(j));
        for (int t = 0; t < T; t++) {
            const lq_block_q8_K *yb = tok(xq, xs, t) + i;
            const float d = yb->d * dw, dmin = -yb->d * dmw;
            const __m128i prod = q45_min_prod(ms, yb->bsums);
            const __m128i hsum = _mm_hadd_epi32(_mm_hadd_epi32(prod, mzero), mzero);
            summs[t] += dmin * (float)_mm_extract_epi32(hsum, 0);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(q45_sumi(c, s, yb->qs)), acc[t]);
        }
    }
    for (int t = 0; t < T; t++) y[t * ldy] = hsum8(acc[t]) + summs[t];
}

static inline __m128i shuf_q6(int i) {
    const char a = (char)(2 * i), b = (char)(2 * i + 1);
    return _mm_set_epi8(b, b, b, b, b, b, b, b, a, a, a, a, a, a, a, a);
}

/* One Q6_K row times T tokens (ggml's AVX2 vec_dot_q6_K_q8_K per token). */
static inline __attribute__((always_inline)) void q6K_row(const lq_block_q6_K *x, int64_t nb, const void *xq,
                                                          size_t xs, int T, float *y, int64_t ldy) {
    const __m256i m3 = _mm256_set1_epi8(3), m15 = _mm256_set1_epi8(15);
    __m256 acc[KQ_T];
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
        const float dw = h2f(x[i].d);
        const __m128i scales = _mm_loadu_si128((const __m128i *)x[i].scales);
        const __m256i sc16 = _mm256_cvtepi8_epi16(scales);
        __m256i c[8], s[8];
        for (int j = 0; j < 2; j++) {
            const __m256i b1 = ld(x[i].ql + 64 * j), b2 = ld(x[i].ql + 64 * j + 32), bh = ld(x[i].qh + 32 * j);
            const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(bh, m3), 4);
            const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(bh, _mm256_set1_epi8(12)), 2);
            const __m256i h2 = _mm256_and_si256(bh, _mm256_set1_epi8(48));
            const __m256i h3 = _mm256_srli_epi16(_mm256_and_si256(bh, _mm256_set1_epi8(-64)), 2);
            c[4 * j + 0] = _mm256_or_si256(_mm256_and_si256(b1, m15), h0);
            c[4 * j + 1] = _mm256_or_si256(_mm256_and_si256(b2, m15), h1);
            c[4 * j + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b1, 4), m15), h2);
            c[4 * j + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b2, 4), m15), h3);
        }
        for (int k = 0; k < 8; k++) s[k] = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales, shuf_q6(k)));
        for (int t = 0; t < T; t++) {
            const lq_block_q8_K *yb = tok(xq, xs, t) + i;
            const float d = yb->d * dw;
            __m256i sumi = _mm256_setzero_si256();
            for (int k = 0; k < 8; k++)
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(s[k], _mm256_maddubs_epi16(c[k], ld(yb->qs + 32 * k))));
            /* the -32 of every code: 32 * scale * bsum */
            sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(_mm256_madd_epi16(ld(yb->bsums), sc16), 5));
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc[t]);
        }
    }
    for (int t = 0; t < T; t++) y[t * ldy] = hsum8(acc[t]);
}

/* Rows r0..r1 times tokens 0..n-1: groups of KQ_T tokens, every row of the range per group (the
 * row range is a tile that stays in L2 across the groups). */
#define KQ_GEMM(n, blk, rowfn)                                                                     \
    void lq_gemm_q_##n##_avx2(const lq_weight *w, const void *xq, size_t xs, int64_t nt, float *y,  \
                              int64_t ldy, int64_t r0, int64_t r1) {                               \
        const int64_t nb = w->cols / LQ_QK_K;                                                      \
        for (int64_t t0 = 0; t0 < nt; t0 += KQ_T) {                                                \
            const void *xt = (const char *)xq + (size_t)t0 * xs;                                   \
            float *yt = y + t0 * ldy;                                                              \
            for (int64_t r = r0; r < r1; r++) {                                                    \
                const blk *x = (const blk *)((const char *)w->data + (size_t)r * w->row_bytes);    \
                if (nt - t0 >= KQ_T)                                                               \
                    rowfn(x, nb, xt, xs, KQ_T, yt + (r - r0), ldy);                                \
                else                                                                               \
                    rowfn(x, nb, xt, xs, (int)(nt - t0), yt + (r - r0), ldy);                      \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    void lq_matvec_q_##n##_avx2(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1) { \
        const int64_t nb = w->cols / LQ_QK_K;                                                      \
        for (int64_t r = r0; r < r1; r++)                                                          \
            rowfn((const blk *)((const char *)w->data + (size_t)r * w->row_bytes), nb, xq, 0, 1,    \
                  y + (r - r0), 0);                                                                \
    }

KQ_GEMM(q4_K, lq_block_q4_K, q4K_row)
KQ_GEMM(q5_K, lq_block_q5_K, q5K_row)
KQ_GEMM(q6_K, lq_block_q6_K, q6K_row)
