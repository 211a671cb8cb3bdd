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
 *   QV_CODES4(w, o, lo, hi)  the blocks at w[k] + o of four rows -> two zmm of unsigned codes u:
 *                     lo = elements 0-15 of rows 0..3 (16 bytes each, row k in 128-bit lane k),
 *                     hi = elements 16-31 likewise
 *
 * Why this shape:
 *  - One zmm holds the same half block of four rows, so the activation's half block is simply
 *    broadcast to the four 128-bit lanes (straight from memory) and each 128-bit lane of the
 *    int32 result belongs to one row: no horizontal fold across rows, one cvt and one FMA per
 *    4 rows and block. (Zen 4 runs a zmm op as two 256-bit halves; the win is the number of
 *    instructions: a nibble format needs 2 dpbusd + 3 bit ops for four rows.)
 *  - vpdpbusd multiplies unsigned u by signed y and adds 4 products into an int32 lane, one
 *    instruction for AVX2's maddubs + madd, with no int16 saturation. The offset comes back out
 *    exactly through the accumulator's start value, -o * (lane sums of y), computed once per
 *    activation block and shared by the four rows: sum (u - o) y = sum code * y, no sign tricks.
 *  - The four rows' f16 scales (and Q4_1 / Q5_1 minimums, which sit right after d) are read as
 *    one dword per row and converted by one vcvtph2ps, instead of a scalar conversion per row.
 * Per row, token and block the float steps are fixed: the row's 4 int32 lanes (exact, converted
 * exactly) times fl(d_w * d_x), added by FMA into the row's 4 lanes in block order; the
 * minimum's m * s in its own chain; at the end the 4 lanes by qv_sum4's tree, then + the
 * minimums. gemm runs the same steps per (row, token), so it equals matvec bit for bit
 * (lq_format.h); against the ref only the f32 order of the block sums differs (format_table.c's
 * tol_rtol bounds it). Leftover rows repeat the last real row's pointer; only real rows are
 * stored. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "blk_q8_avx2.h"
#include "blk_q8_avx512.h"
#include "kern_internal.h"

#undef QV_ABYTES
#if QV_Q81
#define QV_ABYTES 36
#else
#define QV_ABYTES 34
#endif


/* One activation block at ab: its two half blocks broadcast to the four lanes (ylo, yhi), the
 * accumulator start -o * (lane sums of y), d_x and (Q8_1) s_x. */
#if QV_OFF
#define QV_CORR(ylo, yhi)                                                                          \
    _mm512_sub_epi32(_mm512_setzero_si512(),                                                       \
                     _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)QV_OFF), ylo), \
                                         _mm512_set1_epi8((char)QV_OFF), yhi))
#else
#define QV_CORR(ylo, yhi) _mm512_setzero_si512()
#endif
#define QV_ACT(ab, ylo, yhi, c0, dx, sx)                                                           \
    const __m512i ylo = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)((ab) + QV_ABYTES - 32))); \
    const __m512i yhi = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)((ab) + QV_ABYTES - 16))); \
    const __m512i c0 = QV_CORR(ylo, yhi);                                                          \
    const __m512 dx = _mm512_set1_ps(qd_f16(ab));                                                  \
    const __m128 sx = _mm_set1_ps(QV_Q81 ? qd_f16((ab) + 2) : 0.0f)


/* the rows' sums, plus the minimums' chain (Q8_1) */
static inline __m128 QV_CAT(QV_NAME, _out)(__m512 acc, __m128 ms) {
    const __m128 s = qv_sum4(acc);
    return QV_Q81 ? _mm_add_ps(s, ms) : s;
}

void QV_NAME(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1) {
    const int64_t nb = w->cols / LQ_QK;
    const uint8_t *xb = xq, *base = w->data;
    const size_t rb = w->row_bytes;
    int64_t r = r0;
    /* eight rows (two groups of four) per activation block load while they last: the block's
     * broadcasts, offset correction and d_x serve twice as many rows, and the two groups' FMA
     * chains overlap. Each row's float steps are those of the four-row loop below. */
    for (; r + 8 <= r1; r += 8) {
        QV_ROWS(wa, base, r, 4, rb);
        QV_ROWS(wb, base, r + 4, 4, rb);
        __m512 acca = _mm512_setzero_ps(), accb = acca;
        __m128 msa = _mm_setzero_ps(), msb = msa;
        const rp_rows pf = rp_begin(base + (size_t)(r + 8) * rb, rp_next_group_bytes(r, r1, rb, 8), nb);
        for (int64_t i = 0; i < nb; i++) {
            rp_step(&pf, i);
            const uint8_t *ab = xb + i * QV_ABYTES;
            QV_ACT(ab, ylo, yhi, c0, dx, sx);
            const size_t o = (size_t)i * QV_WBYTES;
            __m512i loa, hia, lob, hib;
            QV_CODES4(wa, o, loa, hia);
            QV_CODES4(wb, o, lob, hib);
            const __m256 fa = qv_scales4(wa, o), fb = qv_scales4(wb, o);
            const __m512i sa = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(c0, loa, ylo), hia, yhi);
            const __m512i sb = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(c0, lob, ylo), hib, yhi);
            acca = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sa), _mm512_mul_ps(qv_dvec(fa), dx), acca);
            accb = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sb), _mm512_mul_ps(qv_dvec(fb), dx), accb);
            if (QV_Q81) {
                msa = _mm_fmadd_ps(qv_mvec(fa), sx, msa);
                msb = _mm_fmadd_ps(qv_mvec(fb), sx, msb);
            }
            (void)sx;
        }
        _mm_storeu_ps(y + (r - r0), QV_CAT(QV_NAME, _out)(acca, msa));
        _mm_storeu_ps(y + (r - r0) + 4, QV_CAT(QV_NAME, _out)(accb, msb));
    }
    for (; r < r1; r += 4) {
        const int64_t n = r1 - r < 4 ? r1 - r : 4;
        QV_ROWS(wr, base, r, n, rb);
        __m512 acc = _mm512_setzero_ps();
        __m128 ms = _mm_setzero_ps();
        for (int64_t i = 0; i < nb; i++) {
            const uint8_t *ab = xb + i * QV_ABYTES;
            QV_ACT(ab, ylo, yhi, c0, dx, sx);
            const size_t o = (size_t)i * QV_WBYTES;
            __m512i lo, hi;
            QV_CODES4(wr, o, lo, hi);
            const __m256 f = qv_scales4(wr, o);
            const __m512i s = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(c0, lo, ylo), hi, yhi);
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(qv_dvec(f), dx), acc);
            if (QV_Q81) ms = _mm_fmadd_ps(qv_mvec(f), sx, ms);
            (void)sx;
        }
        float out[4];
        _mm_storeu_ps(out, QV_CAT(QV_NAME, _out)(acc, ms));
        for (int k = 0; k < n; k++) y[r + k - r0] = out[k];
    }
}

/* gemm's tables for a tile of 4 tokens: each token's blocks' accumulator start (the offset
 * correction, the same 4 int32 in every 128-bit lane), d_x and s_x, made once per token tile
 * instead of once per row group (a prefill task's few hundred rows are ~100 row groups): the
 * values QV_ACT makes, so the float steps and the bits are unchanged. Rows longer than
 * QV_PRE_MAX blocks (cols > 16384) take the per-token matvec, the same bits again. */
#ifndef QV_PRE_MAX
#define QV_PRE_MAX 512
#endif
/* tokens per tile: 8 where the accumulators fit the 32 zmm (16 of them for 8 rows), 4 where a
 * minimum's chain (Q8_1) needs 16 more registers */
#undef QV_TT
#define QV_TT (QV_Q81 ? 4 : 8)
#undef QV_ACTP
#define QV_ACTP(k, ylo, yhi, c0, dx)                                                               \
    const uint8_t *ab_##k = xk[k] + i * QV_ABYTES;                                                 \
    const __m512i ylo = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(ab_##k + QV_ABYTES - 32))); \
    const __m512i yhi = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(ab_##k + QV_ABYTES - 16))); \
    const __m512i c0 = QV_OFF ? _mm512_broadcast_i32x4(c0s[k][i]) : _mm512_setzero_si512();       \
    const __m512 dx = _mm512_set1_ps(dxs[k][i])

/* One token k of the 4 x 4 tile: the four rows' codes lo, hi (scales dv, minimums mv) meet its
 * block; the same float steps as QV_NAME. */
#define QV_TOK(k)                                                                                  \
    do {                                                                                           \
        QV_ACTP(k, ylo_, yhi_, c_, dx_);                                                           \
        const __m512i s_ = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(c_, lo, ylo_), hi, yhi_);       \
        acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s_), _mm512_mul_ps(dv, dx_), acc[k]);          \
        if (QV_Q81) ms[k] = _mm_fmadd_ps(mv, _mm_set1_ps(sxs[k][i]), ms[k]);                       \
    } while (0)

/* The same for two groups of four rows (a, b): the token's broadcasts, correction and d_x serve
 * eight rows. */
#define QV_TOK8(k)                                                                                 \
    do {                                                                                           \
        QV_ACTP(k, ylo_, yhi_, c_, dx_);                                                           \
        const __m512i sa_ = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(c_, loa, ylo_), hia, yhi_);    \
        const __m512i sb_ = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(c_, lob, ylo_), hib, yhi_);    \
        acca[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sa_), _mm512_mul_ps(dva, dx_), acca[k]);      \
        accb[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sb_), _mm512_mul_ps(dvb, dx_), accb[k]);      \
        if (QV_Q81) {                                                                              \
            const __m128 sx_ = _mm_set1_ps(sxs[k][i]);                                             \
            msa[k] = _mm_fmadd_ps(mva, sx_, msa[k]);                                               \
            msb[k] = _mm_fmadd_ps(mvb, sx_, msb[k]);                                               \
        }                                                                                          \
    } while (0)

/* gemm: tiles of 8 (then 4) rows x 4 tokens, so each weight block is decoded (and its scales
 * converted) once for four tokens and each token's block prepared once for eight rows; the
 * tokens left over run QV_NAME. */
void QV_GEMM(const lq_weight *w, const void *Xq, size_t xq_bytes, int64_t n, float *Y, int64_t ldy,
             int64_t r0, int64_t r1) {
    const int64_t nb = w->cols / LQ_QK;
    const uint8_t *X = Xq, *base = w->data;
    const size_t rb = w->row_bytes;
    int64_t t = 0;
    __m128i c0s[QV_TT][QV_PRE_MAX];
    float dxs[QV_TT][QV_PRE_MAX], sxs[QV_TT][QV_PRE_MAX];
    for (; nb <= QV_PRE_MAX && t + QV_TT <= n; t += QV_TT) {
        const uint8_t *xk[QV_TT];
        for (int k = 0; k < QV_TT; k++) xk[k] = X + (size_t)(t + k) * xq_bytes;
        for (int k = 0; k < QV_TT; k++)
            for (int64_t i = 0; i < nb; i++) {
                const uint8_t *ab = xk[k] + i * QV_ABYTES;
                QV_ACT(ab, ylo, yhi, c0, dx, sx);
                (void)ylo, (void)yhi;
                c0s[k][i] = _mm512_castsi512_si128(c0);
                dxs[k][i] = _mm512_cvtss_f32(dx);
                sxs[k][i] = _mm_cvtss_f32(sx);
            }
        int64_t r = r0;
        for (; r + 8 <= r1; r += 8) {
            QV_ROWS(wa, base, r, 4, rb);
            QV_ROWS(wb, base, r + 4, 4, rb);
            __m512 acca[QV_TT], accb[QV_TT];
            __m128 msa[QV_TT], msb[QV_TT];
            for (int k = 0; k < QV_TT; k++) {
                acca[k] = accb[k] = _mm512_setzero_ps();
                msa[k] = msb[k] = _mm_setzero_ps();
            }
            for (int64_t i = 0; i < nb; i++) {
                const size_t o = (size_t)i * QV_WBYTES;
                __m512i loa, hia, lob, hib;
                QV_CODES4(wa, o, loa, hia);
                QV_CODES4(wb, o, lob, hib);
                const __m256 fa = qv_scales4(wa, o), fb = qv_scales4(wb, o);
                const __m512 dva = qv_dvec(fa), dvb = qv_dvec(fb);
                const __m128 mva = qv_mvec(fa), mvb = qv_mvec(fb);
                (void)mva, (void)mvb;
#pragma GCC unroll 8
                for (int k = 0; k < QV_TT; k++) QV_TOK8(k);
            }
            for (int k = 0; k < QV_TT; k++) {
                float *yk = Y + (size_t)(t + k) * (size_t)ldy + (size_t)(r - r0);
                _mm_storeu_ps(yk, QV_CAT(QV_NAME, _out)(acca[k], msa[k]));
                _mm_storeu_ps(yk + 4, QV_CAT(QV_NAME, _out)(accb[k], msb[k]));
            }
        }
        for (; r < r1; r += 4) {
            const int64_t nr = r1 - r < 4 ? r1 - r : 4;
            QV_ROWS(wr, base, r, nr, rb);
            __m512 acc[QV_TT];
            __m128 ms[QV_TT];
            for (int k = 0; k < QV_TT; k++) {
                acc[k] = _mm512_setzero_ps();
                ms[k] = _mm_setzero_ps();
            }
            for (int64_t i = 0; i < nb; i++) {
                const size_t o = (size_t)i * QV_WBYTES;
                __m512i lo, hi;
                QV_CODES4(wr, o, lo, hi);
                const __m256 f = qv_scales4(wr, o);
                const __m512 dv = qv_dvec(f);
                const __m128 mv = qv_mvec(f);
                (void)mv;
#pragma GCC unroll 8
                for (int k = 0; k < QV_TT; k++) QV_TOK(k);
            }
            for (int k = 0; k < QV_TT; k++) {
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
#undef QV_CODES4
#undef QV_CORR
#undef QV_ACT
#undef QV_TOK
#undef QV_TOK8
#undef QV_ACTP
