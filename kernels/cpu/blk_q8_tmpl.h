/* blk_q8_tmpl.h - the AVX2 integer-activation loops shared by the GGUF legacy blocks (weights x
 * Q8_0 / Q8_1 activation blocks; scalar specs in fmt_legacy_dot.c and fmt_q8_0.c).
 *
 * Included by fmt_<family>_avx2.c after defining:
 *   QD_NAME          the lq_matvec_q_fn to define (one token)
 *   QD_GEMM          the lq_gemm_q_fn to define (several tokens; lq_format.h: bit-identical to
 *                    QD_NAME, the same per-row block order and the same horizontal-sum tree)
 *   QD_WBYTES        weight block bytes (d at byte 0; Q4_1 / Q5_1: m at byte 2)
 *   QD_Q81           1: Q8_1 activations (36-byte blocks, s at byte 2) and a weight minimum m,
 *                    folded in as m * s per block (ggml's summs); 0: Q8_0 (34-byte blocks)
 *   QD_CODES(b)      the block at b -> its 32 codes as bytes, in activation order
 *   QD_PREP(y)       per activation block, once for all rows: an __m256i the rows reuse (e.g. the
 *                    int16 pair sums of 8 * y that turn an unsigned code u into u - 8), or zero
 *   QD_MUL(c, y, a)  codes c against the 32 activation codes y: 8 int32 lane sums of code * y
 *                    (exact: every int16 pair stays below 2 * 127 * 127 in maddubs)
 * matvec: four rows share each activation block load (x is small and stays in L1; the weights
 * stream). gemm: a tile of 2 rows x 4 tokens per inner loop, so each weight block is decoded
 * once for four tokens (prefill is compute bound: the decode is a third of the work per
 * block). Per row, token and block: the exact int32 block sum, converted once and scaled by
 * d_w * d_x into an f32 accumulator, as ggml's AVX2 vec_dot does; only the f32 order of the
 * block sums differs from the ref (format_table.c's tol_rtol bounds it). Leftover rows repeat
 * the last real row's pointer; only real rows are stored. */
#include <immintrin.h>
#include <stdint.h>

#include "blk_q8_avx2.h"
#include "kern_internal.h"

#undef QD_ABYTES
#if QD_Q81
#define QD_ABYTES 36
#else
#define QD_ABYTES 34
#endif
#ifndef QD_PRE_MAX
#define QD_PRE_MAX 512
#endif
#define QD_DOT(b, y, a) QD_MUL(QD_CODES(b), (y), (a))
#ifndef QD_CAT
#define QD_CAT_(a, b) a##b
#define QD_CAT(a, b) QD_CAT_(a, b)
#endif

/* The minimums' sum, over the blocks of m_w * s_x (Q8_1 formats; 0 otherwise): per (row, token)
 * one chain s = fma(m_w, s_x, s) in block order, run four chains per vector, so matvec (four rows,
 * QD_MSR4) and gemm (four tokens, QD_MS4) round alike. One scalar chain per row and token was half
 * of the Q4_1 / Q5_1 gemm's samples. QD_MS4: one row, the tile's four tokens, s_x in sx[i][k]. */
#define QD_MS4 QD_CAT(QD_NAME, _ms4)
static inline __m128 QD_MS4(const uint8_t *wrow, const float (*sx)[4], int64_t nb) {
    __m128 ms = _mm_setzero_ps();
#if QD_Q81
    for (int64_t i = 0; i < nb; i++)
        ms = _mm_fmadd_ps(_mm_set1_ps(qd_f16(wrow + i * QD_WBYTES + 2)), _mm_loadu_ps(sx[i]), ms);
#else
    (void)wrow, (void)sx, (void)nb;
#endif
    return ms;
}

/* four rows against one token: lane k is row k's chain */
#define QD_MSR4 QD_CAT(QD_NAME, _msr4)
static inline __m128 QD_MSR4(const uint8_t *w0, const uint8_t *w1, const uint8_t *w2, const uint8_t *w3,
                             const uint8_t *xrow, int64_t nb) {
    __m128 ms = _mm_setzero_ps();
#if QD_Q81
    for (int64_t i = 0; i < nb; i++) {
        const size_t o = (size_t)i * QD_WBYTES + 2;
        const __m128 m = _mm_setr_ps(qd_f16(w0 + o), qd_f16(w1 + o), qd_f16(w2 + o), qd_f16(w3 + o));
        ms = _mm_fmadd_ps(m, _mm_set1_ps(qd_f16(xrow + i * QD_ABYTES + 2)), ms);
    }
#else
    (void)w0, (void)w1, (void)w2, (void)w3, (void)xrow, (void)nb;
#endif
    return ms;
}

#define QD_ROW(b, acc)                                                                             \
    acc = _mm256_fmadd_ps(_mm256_set1_ps(qd_f16(b) * dx), _mm256_cvtepi32_ps(QD_DOT((b), yv, aux)), acc)

void QD_NAME(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1) {
    const int64_t nb = w->cols / LQ_QK;
    const uint8_t *xb = xq, *base = w->data;
    const size_t rb = w->row_bytes;
    for (int64_t r = r0; r < r1; r += 4) {
        const int64_t n = r1 - r < 4 ? r1 - r : 4;
        const uint8_t *w0 = base + (size_t)r * rb, *w1 = base + (size_t)(r + (n > 1)) * rb;
        const uint8_t *w2 = base + (size_t)(r + (n > 2) * 2) * rb, *w3 = base + (size_t)(r + (n > 3) * 3) * rb;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        const rp_rows pf = rp_begin(base + (size_t)(r + 4) * rb, rp_next_group_bytes(r, r1, rb, 4), nb);
        for (int64_t i = 0; i < nb; i++) {
            rp_step(&pf, i);
            const uint8_t *ab = xb + i * QD_ABYTES;
            const __m256i yv = _mm256_loadu_si256((const __m256i *)(ab + QD_ABYTES - 32));
            const __m256i aux = QD_PREP(yv);
            (void)aux;
            const float dx = qd_f16(ab);
            const size_t o = (size_t)i * QD_WBYTES;
            QD_ROW(w0 + o, a0);
            QD_ROW(w1 + o, a1);
            QD_ROW(w2 + o, a2);
            QD_ROW(w3 + o, a3);
        }
        float out[4];
        _mm_storeu_ps(out, _mm_add_ps(qd_hsum4(a0, a1, a2, a3), QD_MSR4(w0, w1, w2, w3, xb, nb)));
        for (int k = 0; k < n; k++) y[r + k - r0] = out[k];
    }
}

/* gemm's tables for a tile of 4 tokens: each token's blocks' QD_PREP value and d_x, made once
 * per token tile instead of once per pair of rows (a prefill task's few hundred rows are ~100
 * pairs): the same values, so the float steps and the bits are unchanged. Rows longer than
 * QD_PRE_MAX blocks (cols > 16384) take the per-token matvec, the same bits again. */

/* One token k of the 2 x 4 tile: both rows' codes c0, c1 (scales d0, d1) meet its block. */
#define QD_TOK(k)                                                                                  \
    do {                                                                                           \
        const uint8_t *ab_ = xk[k] + i * QD_ABYTES;                                                \
        const __m256i y_ = _mm256_loadu_si256((const __m256i *)(ab_ + QD_ABYTES - 32));            \
        const __m256i a_ = aux[k][i];                                                              \
        (void)a_;                                                                                  \
        const float dx_ = dxs[k][i];                                                               \
        p0##k = _mm256_fmadd_ps(_mm256_set1_ps(d0 * dx_), _mm256_cvtepi32_ps(QD_MUL(c0, y_, a_)), p0##k); \
        p1##k = _mm256_fmadd_ps(_mm256_set1_ps(d1 * dx_), _mm256_cvtepi32_ps(QD_MUL(c1, y_, a_)), p1##k); \
    } while (0)

void QD_GEMM(const lq_weight *w, const void *Xq, size_t xq_bytes, int64_t n, float *Y, int64_t ldy,
             int64_t r0, int64_t r1) {
    const int64_t nb = w->cols / LQ_QK;
    const uint8_t *X = Xq, *base = w->data;
    const size_t rb = w->row_bytes;
    int64_t t = 0;
    __m256i aux[4][QD_PRE_MAX];
    float dxs[4][QD_PRE_MAX], sxs[QD_PRE_MAX][4];
    for (; nb <= QD_PRE_MAX && t + 4 <= n; t += 4) {
        const uint8_t *xk[4] = {X + (size_t)t * xq_bytes, X + (size_t)(t + 1) * xq_bytes,
                                X + (size_t)(t + 2) * xq_bytes, X + (size_t)(t + 3) * xq_bytes};
        for (int k = 0; k < 4; k++)
            for (int64_t i = 0; i < nb; i++) {
                const uint8_t *ab = xk[k] + i * QD_ABYTES;
                aux[k][i] = QD_PREP(_mm256_loadu_si256((const __m256i *)(ab + QD_ABYTES - 32)));
                dxs[k][i] = qd_f16(ab);
                sxs[i][k] = QD_Q81 ? qd_f16(ab + 2) : 0.0f;
            }
        for (int64_t r = r0; r < r1; r += 2) {
            const int two = r + 1 < r1;
            const uint8_t *w0 = base + (size_t)r * rb, *w1 = base + (size_t)(r + two) * rb;
            __m256 p00 = _mm256_setzero_ps(), p01 = p00, p02 = p00, p03 = p00;
            __m256 p10 = p00, p11 = p00, p12 = p00, p13 = p00;
            for (int64_t i = 0; i < nb; i++) {
                const uint8_t *b0 = w0 + (size_t)i * QD_WBYTES, *b1 = w1 + (size_t)i * QD_WBYTES;
                const __m256i c0 = QD_CODES(b0), c1 = QD_CODES(b1);
                const float d0 = qd_f16(b0), d1 = qd_f16(b1);
                QD_TOK(0);
                QD_TOK(1);
                QD_TOK(2);
                QD_TOK(3);
            }
            float o0[4], o1[4];
            _mm_storeu_ps(o0, qd_hsum4(p00, p01, p02, p03));
            _mm_storeu_ps(o1, qd_hsum4(p10, p11, p12, p13));
            float m0[4], m1[4];
            _mm_storeu_ps(m0, QD_MS4(w0, (const float (*)[4])sxs, nb));
            _mm_storeu_ps(m1, QD_MS4(w1, (const float (*)[4])sxs, nb));
            for (int k = 0; k < 4; k++) {
                Y[(size_t)(t + k) * (size_t)ldy + (size_t)(r - r0)] = o0[k] + m0[k];
                if (two) Y[(size_t)(t + k) * (size_t)ldy + (size_t)(r - r0) + 1] = o1[k] + m1[k];
            }
        }
    }
    for (; t < n; t++) QD_NAME(w, X + (size_t)t * xq_bytes, Y + (size_t)t * (size_t)ldy, r0, r1);
}

#undef QD_NAME
#undef QD_GEMM
#undef QD_MS4
#undef QD_MSR4
#undef QD_WBYTES
#undef QD_Q81
#undef QD_CODES
#undef QD_PREP
#undef QD_MUL
#undef QD_DOT
#undef QD_ROW
#undef QD_TOK
