/* kq_avx512_tmpl.h - the shared token loop of the AVX-512 (BW + VNNI) K-quant kernels x Q8_K
 * activations (fmt_kquant_avx512.c: Q4_K, Q5_K, Q6_K; fmt_kquant_lo_avx512.c: Q2_K, Q3_K,
 * IQ4_XS). Include only from *_avx512.c (compiled with -mavx512{f,bw,vl,dq,vnni}).
 *
 * Each format unpacks one super-block into the same shape (kq512_blk): its 256 weight codes as 4
 * vectors of 64 unsigned bytes in the activation order (vector k meets x codes 64k..64k+63), the
 * int16 sub-block scale of every pair of bytes beside them, and one int16 vector that meets the
 * 16 bsums of the Q8_K block (the mins, or the code offset times the scale). The unpacking is done
 * once per block and shared by up to KQ512_T = 8 tokens (gemm_q); per token the work is then
 *   maddubs(codes, x) -> int16 pairs, vpdpwssd(sumi, pairs, scales) -> int32 lanes
 * two instructions per 64 codes where AVX2 needs maddubs + madd + add per 32 (the VNNI gain).
 * maddubs cannot saturate: a pair is at most 2 * 63 * 127 (Q6_K) or 2 * 127 * 127 (IQ4_XS |w|),
 * below 2^15 (Q8_K codes are -127..127: ggml's and our quantizer scale by -127 / max). The
 * int32 lane sums are exact integers, the same ones the scalar spec forms; only the f32 order
 * of the per-block sums differs from the spec and from AVX2: 16 f32 lanes per token (block sums
 * times d_w d_x by FMA, cols/256 links per lane; the min term of Q2_K/Q4_K/Q5_K in 8 more lanes)
 * and one tree at the end (4 levels; 5 with the min lanes, added after the first two). That is no
 * more roundings per product than the F32 bound format_table.c derives for the K-quant rows
 * (cols/64 links + a 5-level tree), so the rows' tol covers it.
 *
 * The fixed loops carry `GCC unroll`: at -O2 GCC keeps 4-trip loops rolled, and then the
 * unpacked block (8 zmm) goes through the stack on every token (measured: Q2_K decode 31 -> 40
 * G weights/s unrolled).
 *
 * matvec_q is the T = 1 case of the gemm_q code: per token the same operations in the same
 * order, so gemm_q equals matvec_q bit for bit (decode and prefill give the same logits).
 */
#ifndef LQ_KQ_AVX512_TMPL_H
#define LQ_KQ_AVX512_TMPL_H

#include <immintrin.h>

#include "kern_internal.h"
#include "kq_internal.h"

#ifndef KQ512_T
#define KQ512_T 8 /* tokens per pass over a row (their Q8_K blocks stay in L1); 8 measured 1.05-1.2x 4 */
#endif

/* How a format's offsets reach the result:
 * MIN:  Q2_K / Q4_K / Q5_K subtract dmin * m * bsum (another f32 scale than d: a second FMA);
 * FOLD: Q3_K / Q6_K codes are stored with an offset (+4 / +32); bk = -offset * scale, so
 *       madd(bsums, bk) starts the int32 sum and the offset leaves exactly;
 * SIGN: IQ4_XS levels are signed: codes hold |w|, neg the lanes where w < 0, and the token's x
 *       is negated there (ggml's sign trick; AVX-512 has no vpsignb, a masked subtract does it). */
enum { KQ512_MIN, KQ512_FOLD, KQ512_SIGN };

typedef struct kq512_blk {
    __m512i c[4];      /* codes, unsigned bytes; c[k] meets x codes 64k..64k+63 */
    __m512i s[4];      /* int16 scale of each byte pair of c[k] */
    __m256i bk;        /* int16, one per bsum (16 x codes): mins (MIN) or -offset * scale (FOLD) */
    __mmask64 neg[4];  /* SIGN: bytes of c[k] whose level is negative */
    float d, dmin;     /* f16 super-scales as f32 */
} kq512_blk;

static inline float kq512_h2f(lq_f16 h) { return _cvtsh_ss(h); }

/* Sub-block scales into the int16 lanes of s[k], by in-lane byte shuffles (vpshufb: one cycle,
 * where vpermw is several) of a 128-bit source broadcast to the four lanes. */

/* v: 8 int16 scales of sub-blocks of 32; int16 lanes 0..15 = v[a], 16..31 = v[b] */
static inline __m512i kq512_pair16(__m128i v, int a, int b) {
    const int ca = (2 * a) | (2 * a + 1) << 8, cb = (2 * b) | (2 * b + 1) << 8;
    const __m512i ctrl = _mm512_set_epi32(cb * 0x10001, cb * 0x10001, cb * 0x10001, cb * 0x10001, cb * 0x10001,
                                          cb * 0x10001, cb * 0x10001, cb * 0x10001, ca * 0x10001, ca * 0x10001,
                                          ca * 0x10001, ca * 0x10001, ca * 0x10001, ca * 0x10001, ca * 0x10001,
                                          ca * 0x10001);
    return _mm512_shuffle_epi8(_mm512_broadcast_i32x4(v), ctrl);
}

/* v: 16 int8 scales of sub-blocks of 16; int16 lanes 8q..8q+7 = v[base + q], q = 0..3, sign- or
 * zero-extended: the byte lands in both halves of each int16, the shift by 8 extends it */
static inline __m512i kq512_quad8(__m128i v, int base, int is_signed) {
    const int b0 = (base + 0) * 0x01010101, b1 = (base + 1) * 0x01010101;
    const int b2 = (base + 2) * 0x01010101, b3 = (base + 3) * 0x01010101;
    const __m512i ctrl = _mm512_set_epi32(b3, b3, b3, b3, b2, b2, b2, b2, b1, b1, b1, b1, b0, b0, b0, b0);
    const __m512i x = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(v), ctrl);
    return is_signed ? _mm512_srai_epi16(x, 8) : _mm512_srli_epi16(x, 8);
}

/* 64 bytes from two 32-byte halves: [lo | hi] */
static inline __m512i kq512_cat(__m256i lo, __m256i hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* One token's Q8_K block against an unpacked weight block, added into acc (and, for the MIN
 * formats, the min term into accm: its 8 int32 lanes stay 256 bits wide, one single-pumped
 * convert and FMA on Zen 4 instead of two double-pumped 512-bit ones). */
static inline __attribute__((always_inline)) void kq512_token(const kq512_blk *u, const lq_block_q8_K *yb, int kind,
                                                               __m512 *acc, __m256 *accm) {
    const __m256i bsums = _mm256_loadu_si256((const __m256i *)yb->bsums);
    __m512i sumi = kind == KQ512_FOLD ? _mm512_zextsi256_si512(_mm256_madd_epi16(bsums, u->bk))
                                      : _mm512_setzero_si512();
    _Pragma("GCC unroll 4")
    for (int k = 0; k < 4; k++) {
        __m512i x = _mm512_loadu_si512((const void *)(yb->qs + 64 * k));
        if (kind == KQ512_SIGN) x = _mm512_mask_sub_epi8(x, u->neg[k], _mm512_setzero_si512(), x);
        sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(u->c[k], x), u->s[k]);
    }
    *acc = _mm512_fmadd_ps(_mm512_set1_ps(yb->d * u->d), _mm512_cvtepi32_ps(sumi), *acc);
    if (kind == KQ512_MIN)
        *accm = _mm256_fmadd_ps(_mm256_set1_ps(-yb->d * u->dmin), _mm256_cvtepi32_ps(_mm256_madd_epi16(bsums, u->bk)),
                                *accm);
}

/* the row's f32 result: 16 lanes (+ 8 min lanes) added as a tree */
static inline float kq512_finish(__m512 acc, __m256 accm, int kind) {
    if (kind != KQ512_MIN) return _mm512_reduce_add_ps(acc);
    const __m256 a = _mm256_add_ps(_mm512_castps512_ps256(acc), _mm512_extractf32x8_ps(acc, 1));
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    __m128 m = _mm_add_ps(_mm256_castps256_ps128(accm), _mm256_extractf128_ps(accm, 1));
    r = _mm_add_ps(r, m);
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

/* gemm_q and matvec_q of one format, given its block type and unpack(const blk *, kq512_blk *).
 * Rows r0..r1 times tokens in groups of KQ512_T, every row of the range per group (the range is a
 * tile that stays in L2 across the groups, as matmul.c sizes it). */
#define KQ512_DEFINE(n, blk, unpack, kind)                                                         \
    static inline __attribute__((always_inline)) void n##_row512(const blk *x, int64_t nb, const void *xq,      \
                                                                 size_t xs, int T, float *y, int64_t ldy) {     \
        __m512 acc[KQ512_T];                                                                       \
        __m256 accm[KQ512_T];                                                                      \
        _Pragma("GCC unroll 8") for (int t = 0; t < KQ512_T; t++) {                                \
            acc[t] = _mm512_setzero_ps();                                                          \
            accm[t] = _mm256_setzero_ps();                                                         \
        }                                                                                          \
        for (int64_t i = 0; i < nb; ++i) {                                                         \
            kq512_blk u;                                                                           \
            unpack(&x[i], &u);                                                                     \
            _Pragma("GCC unroll 8") for (int t = 0; t < T; t++)                                    \
                kq512_token(&u, (const lq_block_q8_K *)((const char *)xq + (size_t)t * xs) + i, kind, &acc[t], \
                            &accm[t]);                                                             \
        }                                                                                          \
        _Pragma("GCC unroll 8") for (int t = 0; t < T; t++) y[t * ldy] = kq512_finish(acc[t], accm[t], kind); \
    }                                                                                              \
    void lq_gemm_q_##n##_avx512(const lq_weight *w, const void *xq, size_t xs, int64_t nt, float *y, \
                                int64_t ldy, int64_t r0, int64_t r1) {                             \
        const int64_t nb = w->cols / LQ_QK_K;                                                      \
        for (int64_t t0 = 0; t0 < nt; t0 += KQ512_T) {                                             \
            const void *xt = (const char *)xq + (size_t)t0 * xs;                                   \
            float *yt = y + t0 * ldy;                                                              \
            for (int64_t r = r0; r < r1; r++) {                                                    \
                const blk *x = (const blk *)((const char *)w->data + (size_t)r * w->row_bytes);    \
                if (nt - t0 >= KQ512_T)                                                            \
                    n##_row512(x, nb, xt, xs, KQ512_T, yt + (r - r0), ldy);                        \
                else                                                                               \
                    n##_row512(x, nb, xt, xs, (int)(nt - t0), yt + (r - r0), ldy);                 \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    void lq_matvec_q_##n##_avx512(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1) { \
        const int64_t nb = w->cols / LQ_QK_K;                                                      \
        for (int64_t r = r0; r < r1; r++)                                                          \
            n##_row512((const blk *)((const char *)w->data + (size_t)r * w->row_bytes), nb, xq, 0, 1, \
                       y + (r - r0), 0);                                                           \
    }

#endif
