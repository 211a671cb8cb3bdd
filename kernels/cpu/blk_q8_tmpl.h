/* blk_q8_tmpl.h - the AVX2 integer-activation matvec loop shared by the GGUF legacy blocks
 * (weights x Q8_0 / Q8_1 activation blocks; scalar specs in fmt_legacy_dot.c).
 *
 * Included by fmt_<family>_avx2.c after defining:
 *   QD_NAME          the lq_matvec_q_fn to define
 *   QD_WBYTES        weight block bytes (d at byte 0; Q4_1 / Q5_1: m at byte 2)
 *   QD_Q81           1: Q8_1 activations (36-byte blocks, s at byte 2) and a weight minimum m,
 *                    folded in as m * s per block (ggml's summs); 0: Q8_0 (34-byte blocks)
 *   QD_PREP(y)       per activation block, once for all rows: an __m256i the rows reuse (e.g. the
 *                    int16 pair sums of 8 * y that turn an unsigned code u into u - 8), or zero
 *   QD_DOT(b, y, a)  the block at b against the 32 activation codes y: 8 int32 lane sums of
 *                    code * y (exact: |pair| <= 2 * 127 * 127 fits int16 in maddubs)
 * Four rows share each activation block load (x is small and stays in L1; the weights stream).
 * Per row and block: the exact int32 block sum, converted once and scaled by d_w * d_x into the
 * row's f32 accumulator, as ggml's AVX2 vec_dot does; only the f32 order of the block sums
 * differs from the ref (format_table.c's tol_rtol bounds it). Leftover rows (1..3) repeat the
 * last real row's pointer; only real rows are stored. */
#include <immintrin.h>
#include <stdint.h>

#include "kern_internal.h"

#include "blk_q8_avx2.h"

#undef QD_ABYTES
#if QD_Q81
#define QD_ABYTES 36
#define QD_ROW(b, acc, sm)                                                                         \
    do {                                                                                           \
        acc = _mm256_fmadd_ps(_mm256_set1_ps(qd_f16(b) * dx),                                      \
                              _mm256_cvtepi32_ps(QD_DOT((b), yv, aux)), acc);                      \
        sm += qd_f16((b) + 2) * sx;                                                                \
    } while (0)
#else
#define QD_ABYTES 34
#define QD_ROW(b, acc, sm)                                                                         \
    acc = _mm256_fmadd_ps(_mm256_set1_ps(qd_f16(b) * dx), _mm256_cvtepi32_ps(QD_DOT((b), yv, aux)), acc)
#endif

void QD_NAME(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1) {
    const int64_t nb = w->cols / LQ_QK;
    const uint8_t *xb = xq, *base = w->data;
    const size_t rb = w->row_bytes;
    for (int64_t r = r0; r < r1; r += 4) {
        const int64_t n = r1 - r < 4 ? r1 - r : 4;
        const uint8_t *w0 = base + (size_t)r * rb, *w1 = base + (size_t)(r + (n > 1)) * rb;
        const uint8_t *w2 = base + (size_t)(r + (n > 2) * 2) * rb, *w3 = base + (size_t)(r + (n > 3) * 3) * rb;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
        for (int64_t i = 0; i < nb; i++) {
            const uint8_t *ab = xb + i * QD_ABYTES;
            const __m256i yv = _mm256_loadu_si256((const __m256i *)(ab + QD_ABYTES - 32));
            const __m256i aux = QD_PREP(yv);
            (void)aux;
            const float dx = qd_f16(ab);
#if QD_Q81
            const float sx = qd_f16(ab + 2);
#endif
            const size_t o = (size_t)i * QD_WBYTES;
            QD_ROW(w0 + o, a0, s0);
            QD_ROW(w1 + o, a1, s1);
            QD_ROW(w2 + o, a2, s2);
            QD_ROW(w3 + o, a3, s3);
        }
        (void)s0, (void)s1, (void)s2, (void)s3;
        float out[4];
        _mm_storeu_ps(out, qd_hsum4(a0, a1, a2, a3));
        const float sm[4] = {s0, s1, s2, s3};
        for (int k = 0; k < n; k++) y[r + k - r0] = out[k] + sm[k];
    }
}

#undef QD_NAME
#undef QD_WBYTES
#undef QD_Q81
#undef QD_PREP
#undef QD_DOT
#undef QD_ROW
