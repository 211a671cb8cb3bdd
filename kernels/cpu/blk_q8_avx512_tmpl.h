/* blk_q8_avx512_tmpl.h - the AVX-512 VNNI integer-activation loops of the GGUF legacy blocks
 * (weights x Q8_0 / Q8_1 activation blocks; scalar specs in fmt_legacy_dot.c and fmt_q8_0.c, the
 * AVX2 twins in blk_q8_tmpl.h).
 *
 * Included by fmt_legacy_avx512.c after defining:
 *   QV_NAME, QV_GEMM  the lq_matvec_q_fn / lq_gemm_q_fn to define
 *   QV_WBYTES         weight block bytes (d at byte 0; Q4_1 / Q5_1: m at byte 2)
 *   QV_Q81            1: Q8_1 activations (36-byte blocks, s at byte 2) and a weight minimum m,
 *                     added as m * s per block (ggml's summs); 0: Q8_0 (34-byte blocks)
 *   QV_OFF            the offset o that makes every code unsigned: u = code + o in 0..255
 *                     (0 for Q4_1 / Q5_1, 8 Q4_0, 16 Q5_0, 128 Q8_0 and IQ4_NL)
 *   QV_CODES(b)       the block at b -> its 32 unsigned codes u as bytes, in activation order
 *
 * Why this shape (all 256-bit: Zen 4 runs a zmm op as two ymm halves, so the win is in the
 * number of instructions, not the width):
 *  - vpdpbusd multiplies unsigned u by signed y and adds 4 products into an int32 lane, one
 *    instruction for AVX2's maddubs + madd, with no int16 saturation. The offset comes back out
 *    exactly through the accumulator's start value, -o * (lane sums of y), computed once per
 *    activation block and shared by every row: sum (u - o) y = sum (code) y, no sign tricks.
 *  - Four rows share each activation block. Their 4 x 8 int32 lane sums fold with three vphaddd
 *    into one vector [A B C D | A B C D] (lanes k: row k's elements 0-15, k + 4: 16-31), which
 *    is converted and scaled once: one cvt + one FMA per 4 rows and block instead of per row.
 *  - The 4 rows' f16 scales (and Q4_1 / Q5_1 minimums, which sit right after d) are read as one
 *    dword per row and converted by one vcvtph2ps, instead of a scalar conversion per row.
 * Per row, token and block, the float steps are fixed: lo / hi partial sums (exact int32,
 * converted exactly) times fl(d_w * d_x), added by FMA into that row's two lanes in block order;
 * the minimum's m * s in its own lane chain; at the end lo + hi, then + the minimums. gemm runs
 * the same steps per (row, token), so it equals matvec bit for bit (lq_format.h); against the
 * ref only the f32 order of the block sums differs (format_table.c's tol_rtol bounds it).
 * Leftover rows repeat the last real row's pointer; only real rows are stored. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "blk_q8_avx2.h"
#include "kern_internal.h"

#undef QV_ABYTES
#if QV_Q81
#define QV_ABYTES 36
#else
#define QV_ABYTES 34
#endif

#ifndef QV_HELPERS
#define QV_HELPERS
#define QV_CAT_(a, b) a##b
#define QV_CAT(a, b) QV_CAT_(a, b)
static inline uint32_t qv_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
/* the first dword of each row's block at offset o -> [d0 e0 d1 e1 d2 e2 d3 e3] as floats, where e
 * is the block's minimum m (Q4_1 / Q5_1) or two code bytes read as a half (ignored) */
static inline __m256 qv_scales4(const uint8_t *const *w, size_t o) {
    const __m128i v = _mm_setr_epi32((int)qv_u32(w[0] + o), (int)qv_u32(w[1] + o), (int)qv_u32(w[2] + o),
                                     (int)qv_u32(w[3] + o));
    return _mm256_cvtph_ps(v);
}
/* the four rows' int32 lane sums -> [A B C D | A B C D]: lanes k sum row k's low 128 bits
 * (elements 0-15), lanes k + 4 its high 128 bits (elements 16-31) */
static inline __m256 qv_fold4(__m256i a, __m256i b, __m256i c, __m256i d) {
    return _mm256_cvtepi32_ps(_mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d)));
}
#endif

/* One activation block at ab: its codes y, the accumulator start -o * (lane sums of y) and
 * d_x (and Q8_1's s as s_x). */
#if QV_OFF
#define QV_ACT(ab, y, c0, dx, sx)                                                                  \
    const __m256i y = _mm256_loadu_si256((const __m256i *)((ab) + QV_ABYTES - 32));                \
    const __m256i c0 = _mm256_sub_epi32(_mm256_setzero_si256(),                                    \
                                        _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8((char)QV_OFF), y)); \
    const __m256 dx = _mm256_set1_ps(qd_f16(ab));                                                  \
    const __m128 sx = _mm_set1_ps(QV_Q81 ? qd_f16((ab) + 2) : 0.0f)
#else
#define QV_ACT(ab, y, c0, dx, sx)                                                                  \
    const __m256i y = _mm256_loadu_si256((const __m256i *)((ab) + QV_ABYTES - 32));                \
    const __m256i c0 = _mm256_setzero_si256();                                                     \
    const __m256 dx = _mm256_set1_ps(qd_f16(ab));                                                  \
    const __m128 sx = _mm_set1_ps(QV_Q81 ? qd_f16((ab) + 2) : 0.0f)
#endif

/* d of the four rows in both halves [dA dB dC dD dA dB dC dD], and their minimums m */
#define QV_DVEC(f) _mm256_permutevar8x32_ps((f), _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6))
#define QV_MVEC(f) _mm256_castps256_ps128(_mm256_permutevar8x32_ps((f), _mm256_setr_epi32(1, 3, 5, 7, 1, 3, 5, 7)))

/* the 4 real-or-repeated row pointers of the group at r (n real rows) */
#define QV_ROWS(wr, base, r, n, rb)                                                                \
    const uint8_t *wr[4] = {(base) + (size_t)(r) * (rb), (base) + (size_t)((r) + ((n) > 1)) * (rb),   \
                            (base) + (size_t)((r) + ((n) > 2) * 2) * (rb),                         \
                            (base) + (size_t)((r) + ((n) > 3) * 3) * (rb)}

/* lo + hi of each row, plus the minimums' chain (Q8_1) */
static inline __m128 QV_CAT(QV_NAME, _out)(__m256 acc, __m128 ms) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    return QV_Q81 ? _mm_add_ps(s, ms) : s;
}

void QV_NAME(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1) {
    const int64_t nb = w->cols / LQ_QK;
    const uint8_t *xb = xq, *base = w->data;
    const size_t rb = w->row_bytes;
    for (int64_t r = r0; r < r1; r += 4) {
        const int64_t n = r1 - r < 4 ? r1 - r : 4;
        QV_ROWS(wr, base, r, n, rb);
        __m256 acc = _mm256_setzero_ps();
        __m128 ms = _mm_setzero_ps();
        for (int64_t i = 0; i < nb; i++) {
            const uint8_t *ab = xb + i * QV_ABYTES;
            QV_ACT(ab, yv, c0, dx, sx);
            const size_t o = (size_t)i * QV_WBYTES;
            const __m256 f = qv_scales4(wr, o);
            const __m256 t = qv_fold4(_mm256_dpbusd_epi32(c0, QV_CODES(wr[0] + o), yv),
                                      _mm256_dpbusd_epi32(c0, QV_CODES(wr[1] + o), yv),
                                      _mm256_dpbusd_epi32(c0, QV_CODES(wr[2] + o), yv),
                                      _mm256_dpbusd_epi32(c0, QV_CODES(wr[3] + o), yv));
            acc = _mm256_fmadd_ps(t, _mm256_mul_ps(QV_DVEC(f), dx), acc);
            if (QV_Q81) ms = _mm_fmadd_ps(QV_MVEC(f), sx, ms);
            (void)sx;
        }
        float out[4];
        _mm_storeu_ps(out, QV_CAT(QV_NAME, _out)(acc, ms));
        for (int k = 0; k < n; k++) y[r + k - r0] = out[k];
    }
}

/* One token k of the 4 x 4 tile: the four rows' codes u0..u3 (scales dv, minimums mv) meet its
 * block; the same float steps as QV_NAME. */
#define QV_TOK(k)                                                                                  \
    do {                                                                                           \
        const uint8_t *ab_ = xk[k] + i * QV_ABYTES;                                                \
        QV_ACT(ab_, y_, c_, dx_, sx_);                                                             \
        const __m256 t_ = qv_fold4(_mm256_dpbusd_epi32(c_, u0, y_), _mm256_dpbusd_epi32(c_, u1, y_), \
                                   _mm256_dpbusd_epi32(c_, u2, y_), _mm256_dpbusd_epi32(c_, u3, y_)); \
        acc[k] = _mm256_fmadd_ps(t_, _mm256_mul_ps(dv, dx_), acc[k]);                              \
        if (QV_Q81) ms[k] = _mm_fmadd_ps(mv, sx_, ms[k]);                                          \
        (void)sx_;                                                                                 \
    } while (0)

/* gemm: a tile of 4 rows x 4 tokens, so each weight block is decoded (and its scales converted)
 * once for four tokens; the tokens left over run QV_NAME. */
void QV_GEMM(const lq_weight *w, const void *Xq, size_t xq_bytes, int64_t n, float *Y, int64_t ldy,
             int64_t r0, int64_t r1) {
    const int64_t nb = w->cols / LQ_QK;
    const uint8_t *X = Xq, *base = w->data;
    const size_t rb = w->row_bytes;
    int64_t t = 0;
    for (; t + 4 <= n; t += 4) {
        const uint8_t *xk[4] = {X + (size_t)t * xq_bytes, X + (size_t)(t + 1) * xq_bytes,
                                X + (size_t)(t + 2) * xq_bytes, X + (size_t)(t + 3) * xq_bytes};
        for (int64_t r = r0; r < r1; r += 4) {
            const int64_t nr = r1 - r < 4 ? r1 - r : 4;
            QV_ROWS(wr, base, r, nr, rb);
            __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
            __m128 ms[4] = {_mm_setzero_ps(), _mm_setzero_ps(), _mm_setzero_ps(), _mm_setzero_ps()};
            for (int64_t i = 0; i < nb; i++) {
                const size_t o = (size_t)i * QV_WBYTES;
                const __m256i u0 = QV_CODES(wr[0] + o), u1 = QV_CODES(wr[1] + o);
                const __m256i u2 = QV_CODES(wr[2] + o), u3 = QV_CODES(wr[3] + o);
                const __m256 f = qv_scales4(wr, o), dv = QV_DVEC(f);
                const __m128 mv = QV_MVEC(f);
                (void)mv;
                QV_TOK(0);
                QV_TOK(1);
                QV_TOK(2);
                QV_TOK(3);
            }
            for (int k = 0; k < 4; k++) {
                float out[4];
                _mm_storeu_ps(out, QV_CAT(QV_NAME, _out)(acc[k], ms[k]));
                for (int j = 0; j < nr; j++) Y[(size_t)(t + k) * (size_t)ldy + (size_t)(r + j - r0)] = out[j];
            }
        }
    }
    for (; t < n; t++) QV_NAME(w, X + (size_t)t * xq_bytes, Y + (size_t)t * (size_t)ldy, r0, r1);
}

#undef QV_NAME
#undef QV_GEMM
#undef QV_WBYTES
#undef QV_Q81
#undef QV_OFF
#undef QV_CODES
#undef QV_ACT
#undef QV_TOK
