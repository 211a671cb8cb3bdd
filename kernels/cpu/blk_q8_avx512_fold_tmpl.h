/* blk_q8_avx512_fold_tmpl.h - the 256-bit AVX-512 VNNI integer-activation loops of the GGUF
 * legacy blocks whose codes are cheapest to build one row at a time (Q8_0: a plain 32-byte load;
 * Q5_0 / Q5_1: the fifth bits as one 32-bit byte mask per row), rows folded after the dot
 * products. The nibble formats use blk_q8_avx512_tmpl.h (four rows per zmm); bench_legacy_q
 * measured each format both ways and this file's shape is the faster one for these three.
 * Scalar specs in fmt_legacy_dot.c and fmt_q8_0.c, the AVX2 twins in blk_q8_tmpl.h.
 *
 * Included by fmt_legacy_avx512.c after defining (QF_ here, QV_ in blk_q8_avx512_tmpl.h):
 *   QF_NAME, QF_GEMM  the lq_matvec_q_fn / lq_gemm_q_fn to define
 *   QF_WBYTES         weight block bytes (d at byte 0; Q4_1 / Q5_1: m at byte 2)
 *   QF_Q81            1: Q8_1 activations (36-byte blocks, s at byte 2) and a weight minimum m,
 *                     added as m * s per block (ggml's summs); 0: Q8_0 (34-byte blocks)
 *   QF_OFF            the offset o that makes every code unsigned: u = code + o in 0..255
 *                     (0 for Q4_1 / Q5_1, 8 Q4_0, 16 Q5_0, 128 Q8_0 and IQ4_NL)
 *   QF_CODES(b)       the block at b -> its 32 unsigned codes u as bytes, in activation order
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
#include "blk_q8_avx512.h"
#include "kern_internal.h"

#undef QF_ABYTES
#if QF_Q81
#define QF_ABYTES 36
#else
#define QF_ABYTES 34
#endif


/* One activation block at ab: its codes y, the accumulator start -o * (lane sums of y) and
 * d_x (and Q8_1's s as s_x). */
#if QF_OFF
#define QF_ACT(ab, y, c0, dx, sx)                                                                  \
    const __m256i y = _mm256_loadu_si256((const __m256i *)((ab) + QF_ABYTES - 32));                \
    const __m256i c0 = _mm256_sub_epi32(_mm256_setzero_si256(),                                    \
                                        _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8((char)QF_OFF), y)); \
    const __m256 dx = _mm256_set1_ps(qd_f16(ab));                                                  \
    const __m128 sx = _mm_set1_ps(QF_Q81 ? qd_f16((ab) + 2) : 0.0f)
#else
#define QF_ACT(ab, y, c0, dx, sx)                                                                  \
    const __m256i y = _mm256_loadu_si256((const __m256i *)((ab) + QF_ABYTES - 32));                \
    const __m256i c0 = _mm256_setzero_si256();                                                     \
    const __m256 dx = _mm256_set1_ps(qd_f16(ab));                                                  \
    const __m128 sx = _mm_set1_ps(QF_Q81 ? qd_f16((ab) + 2) : 0.0f)
#endif

/* d of the four rows in both halves [dA dB dC dD dA dB dC dD], and their minimums m */
#undef QF_DVEC
#undef QF_MVEC
#define QF_DVEC(f) _mm256_permutevar8x32_ps((f), _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6))
#define QF_MVEC(f) _mm256_castps256_ps128(_mm256_permutevar8x32_ps((f), _mm256_setr_epi32(1, 3, 5, 7, 1, 3, 5, 7)))


/* lo + hi of each row, plus the minimums' chain (Q8_1) */
static inline __m128 QV_CAT(QF_NAME, _out)(__m256 acc, __m128 ms) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    return QF_Q81 ? _mm_add_ps(s, ms) : s;
}

void QF_NAME(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1) {
    const int64_t nb = w->cols / LQ_QK;
    const uint8_t *xb = xq, *base = w->data;
    const size_t rb = w->row_bytes;
    int64_t r = r0;
    /* eight rows (two groups of four) per activation block load while they last: the block's
     * load, offset correction and d_x serve twice as many rows, and the two groups' chains
     * overlap. Each row's float steps are those of the four-row loop below. */
    for (; r + 8 <= r1; r += 8) {
        QV_ROWS(wa, base, r, 4, rb);
        QV_ROWS(wb, base, r + 4, 4, rb);
        __m256 acca = _mm256_setzero_ps(), accb = acca;
        __m128 msa = _mm_setzero_ps(), msb = msa;
        const rp_rows pf = rp_begin(base + (size_t)(r + 8) * rb, rp_next_group_bytes(r, r1, rb, 8), nb);
        for (int64_t i = 0; i < nb; i++) {
            rp_step(&pf, i);
            const uint8_t *ab = xb + i * QF_ABYTES;
            QF_ACT(ab, yv, c0, dx, sx);
            const size_t o = (size_t)i * QF_WBYTES;
            const __m256 fa = qv_scales4(wa, o), fb = qv_scales4(wb, o);
            const __m256 ta = qv_fold4(_mm256_dpbusd_epi32(c0, QF_CODES(wa[0] + o), yv),
                                       _mm256_dpbusd_epi32(c0, QF_CODES(wa[1] + o), yv),
                                       _mm256_dpbusd_epi32(c0, QF_CODES(wa[2] + o), yv),
                                       _mm256_dpbusd_epi32(c0, QF_CODES(wa[3] + o), yv));
            const __m256 tb = qv_fold4(_mm256_dpbusd_epi32(c0, QF_CODES(wb[0] + o), yv),
                                       _mm256_dpbusd_epi32(c0, QF_CODES(wb[1] + o), yv),
                                       _mm256_dpbusd_epi32(c0, QF_CODES(wb[2] + o), yv),
                                       _mm256_dpbusd_epi32(c0, QF_CODES(wb[3] + o), yv));
            acca = _mm256_fmadd_ps(ta, _mm256_mul_ps(QF_DVEC(fa), dx), acca);
            accb = _mm256_fmadd_ps(tb, _mm256_mul_ps(QF_DVEC(fb), dx), accb);
            if (QF_Q81) {
                msa = _mm_fmadd_ps(QF_MVEC(fa), sx, msa);
                msb = _mm_fmadd_ps(QF_MVEC(fb), sx, msb);
            }
            (void)sx;
        }
        _mm_storeu_ps(y + (r - r0), QV_CAT(QF_NAME, _out)(acca, msa));
        _mm_storeu_ps(y + (r - r0) + 4, QV_CAT(QF_NAME, _out)(accb, msb));
    }
    for (; r < r1; r += 4) {
        const int64_t n = r1 - r < 4 ? r1 - r : 4;
        QV_ROWS(wr, base, r, n, rb);
        __m256 acc = _mm256_setzero_ps();
        __m128 ms = _mm_setzero_ps();
        for (int64_t i = 0; i < nb; i++) {
            const uint8_t *ab = xb + i * QF_ABYTES;
            QF_ACT(ab, yv, c0, dx, sx);
            const size_t o = (size_t)i * QF_WBYTES;
            const __m256 f = qv_scales4(wr, o);
            const __m256 t = qv_fold4(_mm256_dpbusd_epi32(c0, QF_CODES(wr[0] + o), yv),
                                      _mm256_dpbusd_epi32(c0, QF_CODES(wr[1] + o), yv),
                                      _mm256_dpbusd_epi32(c0, QF_CODES(wr[2] + o), yv),
                                      _mm256_dpbusd_epi32(c0, QF_CODES(wr[3] + o), yv));
            acc = _mm256_fmadd_ps(t, _mm256_mul_ps(QF_DVEC(f), dx), acc);
            if (QF_Q81) ms = _mm_fmadd_ps(QF_MVEC(f), sx, ms);
            (void)sx;
        }
        float out[4];
        _mm_storeu_ps(out, QV_CAT(QF_NAME, _out)(acc, ms));
        for (int k = 0; k < n; k++) y[r + k - r0] = out[k];
    }
}

/* One token k of the 4 x 4 tile: the four rows' codes u0..u3 (scales dv, minimums mv) meet its
 * block; the same float steps as QF_NAME. */
#define QF_TOK(k)                                                                                  \
    do {                                                                                           \
        const uint8_t *ab_ = xk[k] + i * QF_ABYTES;                                                \
        QF_ACT(ab_, y_, c_, dx_, sx_);                                                             \
        const __m256 t_ = qv_fold4(_mm256_dpbusd_epi32(c_, u0, y_), _mm256_dpbusd_epi32(c_, u1, y_), \
                                   _mm256_dpbusd_epi32(c_, u2, y_), _mm256_dpbusd_epi32(c_, u3, y_)); \
        acc[k] = _mm256_fmadd_ps(t_, _mm256_mul_ps(dv, dx_), acc[k]);                              \
        if (QF_Q81) ms[k] = _mm_fmadd_ps(mv, sx_, ms[k]);                                          \
        (void)sx_;                                                                                 \
    } while (0)

/* The same for two groups of four rows (codes a0..a3, b0..b3): the token's block load,
 * correction and d_x serve eight rows. */
#define QF_TOK8(k)                                                                                 \
    do {                                                                                           \
        const uint8_t *ab_ = xk[k] + i * QF_ABYTES;                                                \
        QF_ACT(ab_, y_, c_, dx_, sx_);                                                             \
        const __m256 ta_ = qv_fold4(_mm256_dpbusd_epi32(c_, a0, y_), _mm256_dpbusd_epi32(c_, a1, y_), \
                                    _mm256_dpbusd_epi32(c_, a2, y_), _mm256_dpbusd_epi32(c_, a3, y_)); \
        const __m256 tb_ = qv_fold4(_mm256_dpbusd_epi32(c_, b0, y_), _mm256_dpbusd_epi32(c_, b1, y_), \
                                    _mm256_dpbusd_epi32(c_, b2, y_), _mm256_dpbusd_epi32(c_, b3, y_)); \
        acca[k] = _mm256_fmadd_ps(ta_, _mm256_mul_ps(dva, dx_), acca[k]);                          \
        accb[k] = _mm256_fmadd_ps(tb_, _mm256_mul_ps(dvb, dx_), accb[k]);                          \
        if (QF_Q81) {                                                                              \
            msa[k] = _mm_fmadd_ps(mva, sx_, msa[k]);                                               \
            msb[k] = _mm_fmadd_ps(mvb, sx_, msb[k]);                                               \
        }                                                                                          \
        (void)sx_;                                                                                 \
    } while (0)

/* gemm: tiles of 8 (then 4) rows x 4 tokens, so each weight block is decoded (and its scales
 * converted) once for four tokens and each token's block prepared once for eight rows; the
 * tokens left over run QF_NAME. */
void QF_GEMM(const lq_weight *w, const void *Xq, size_t xq_bytes, int64_t n, float *Y, int64_t ldy,
             int64_t r0, int64_t r1) {
    const int64_t nb = w->cols / LQ_QK;
    const uint8_t *X = Xq, *base = w->data;
    const size_t rb = w->row_bytes;
    int64_t t = 0;
    for (; t + 4 <= n; t += 4) {
        const uint8_t *xk[4] = {X + (size_t)t * xq_bytes, X + (size_t)(t + 1) * xq_bytes,
                                X + (size_t)(t + 2) * xq_bytes, X + (size_t)(t + 3) * xq_bytes};
        int64_t r = r0;
        for (; r + 8 <= r1; r += 8) {
            QV_ROWS(wa, base, r, 4, rb);
            QV_ROWS(wb, base, r + 4, 4, rb);
            __m256 acca[4], accb[4];
            __m128 msa[4], msb[4];
            for (int k = 0; k < 4; k++) {
                acca[k] = accb[k] = _mm256_setzero_ps();
                msa[k] = msb[k] = _mm_setzero_ps();
            }
            for (int64_t i = 0; i < nb; i++) {
                const size_t o = (size_t)i * QF_WBYTES;
                const __m256i a0 = QF_CODES(wa[0] + o), a1 = QF_CODES(wa[1] + o);
                const __m256i a2 = QF_CODES(wa[2] + o), a3 = QF_CODES(wa[3] + o);
                const __m256i b0 = QF_CODES(wb[0] + o), b1 = QF_CODES(wb[1] + o);
                const __m256i b2 = QF_CODES(wb[2] + o), b3 = QF_CODES(wb[3] + o);
                const __m256 fa = qv_scales4(wa, o), fb = qv_scales4(wb, o);
                const __m256 dva = QF_DVEC(fa), dvb = QF_DVEC(fb);
                const __m128 mva = QF_MVEC(fa), mvb = QF_MVEC(fb);
                (void)mva, (void)mvb;
                QF_TOK8(0);
                QF_TOK8(1);
                QF_TOK8(2);
                QF_TOK8(3);
            }
            for (int k = 0; k < 4; k++) {
                float *yk = Y + (size_t)(t + k) * (size_t)ldy + (size_t)(r - r0);
                _mm_storeu_ps(yk, QV_CAT(QF_NAME, _out)(acca[k], msa[k]));
                _mm_storeu_ps(yk + 4, QV_CAT(QF_NAME, _out)(accb[k], msb[k]));
            }
        }
        for (; r < r1; r += 4) {
            const int64_t nr = r1 - r < 4 ? r1 - r : 4;
            QV_ROWS(wr, base, r, nr, rb);
            __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
            __m128 ms[4] = {_mm_setzero_ps(), _mm_setzero_ps(), _mm_setzero_ps(), _mm_setzero_ps()};
            for (int64_t i = 0; i < nb; i++) {
                const size_t o = (size_t)i * QF_WBYTES;
                const __m256i u0 = QF_CODES(wr[0] + o), u1 = QF_CODES(wr[1] + o);
                const __m256i u2 = QF_CODES(wr[2] + o), u3 = QF_CODES(wr[3] + o);
                const __m256 f = qv_scales4(wr, o), dv = QF_DVEC(f);
                const __m128 mv = QF_MVEC(f);
                (void)mv;
                QF_TOK(0);
                QF_TOK(1);
                QF_TOK(2);
                QF_TOK(3);
            }
            for (int k = 0; k < 4; k++) {
                float out[4];
                _mm_storeu_ps(out, QV_CAT(QF_NAME, _out)(acc[k], ms[k]));
                for (int j = 0; j < nr; j++) Y[(size_t)(t + k) * (size_t)ldy + (size_t)(r + j - r0)] = out[j];
            }
        }
    }
    for (; t < n; t++) QF_NAME(w, X + (size_t)t * xq_bytes, Y + (size_t)t * (size_t)ldy, r0, r1);
}

#undef QF_NAME
#undef QF_GEMM
#undef QF_WBYTES
#undef QF_Q81
#undef QF_OFF
#undef QF_CODES
#undef QF_ACT
#undef QF_TOK
#undef QF_TOK8
