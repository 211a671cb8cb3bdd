/* fmt_w4a16_q8_avx512.c - W4A16 x Q8_0 activations, AVX-512 VNNI (spec: fmt_w4a16_q8.c).
 *
 * A row's 16 bytes per block of 32 columns hold column 2j in the low and 2j + 1 in the high
 * nibble of byte j, so 64 bytes are four blocks: after a mask (low nibbles) and a shift+mask
 * (high), 128-bit lane k holds the even (odd) columns' codes u in [0, 15] of block 4i + k. Once per
 * call the activation codes are put in the same order (xe: even columns, xo: odd ones, per lane),
 * and each int32 lane's sum S of the eight activation codes it meets is taken (a vpdpbusd with
 * ones). Per row and four blocks: two vpdpbusd (u unsigned, the codes signed: |.| <= 15 * 127 * 4
 * per lane, no saturation) starting from -(8 + z) S give the spec's exact D of each lane (sum u q
 * - (8 + z) sum q, as the AVX2 twin); symmetric rows start from the prepared -8 S, asymmetric ones
 * multiply S by their zero points. Converted, times d_b s_g (a 16-lane vector: each block's d
 * prepared once, each lane's group scale gathered by one masked load and a vpermps whose index
 * the call prepares: any group size that is a multiple of 32, or one group per row), and
 * accumulated in f32. The last four blocks may be fewer: their missing lanes have codes, d and S
 * of 0 and the weights are not read (masked load).
 *
 * One row at a time (the prepared activations stay in L1): the rows are contiguous, so that is
 * one sequential stream for the hardware prefetcher (matvec_avx2_tmpl.h). Group sizes that are
 * not a multiple of 32 (and not one group per row) take the AVX2 twin, which takes the spec.
 */
#include <immintrin.h>
#include <stdlib.h>

#include "kern_internal.h"
#include "lq_blocks.h"

#define W4V_STACK_QUADS 64 /* prepared activations on the stack up to 8192 columns */

typedef struct w4v_quad {
    __m512i xe, xo;   /* activation codes of the even / odd columns, lane k = block 4i + k */
    __m512i s8;       /* per int32 lane: -8 times the sum S of the codes it meets */
    __m512i s;        /* S itself (asymmetric rows scale it by 8 + z) */
    __m512 d;         /* d of block 4i + k in lanes 4k..4k+3; 0 past the last block */
    __m512i gidx;     /* per lane: its block's group minus g0 (vpermps index) */
    int64_t g0;       /* the first block's group */
    __mmask16 gmask;  /* the groups the four blocks touch: g0 .. g0 + popcount - 1 */
    __mmask64 wmask;  /* the weight bytes of the blocks that exist */
} w4v_quad;

static void w4v_prepare(const uint8_t *xb, int64_t nb, int64_t bpg, w4v_quad *q) {
    const __m128i even_odd = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    const __m512i ones = _mm512_set1_epi8(1);
    for (int64_t i = 0; 4 * i < nb; i++) {
        _Alignas(64) uint8_t e[64] = {0}, o[64] = {0};
        _Alignas(64) float d[16] = {0};
        _Alignas(64) int32_t gi[16] = {0};
        const int64_t b0 = 4 * i, g0 = b0 / bpg;
        int nblk = 0;
        for (int k = 0; k < 4 && b0 + k < nb; k++, nblk++) {
            const uint8_t *ab = xb + (size_t)(b0 + k) * sizeof(lq_block_q8_0);
            const __m128i lo = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(ab + 2)), even_odd);
            const __m128i hi = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(ab + 18)), even_odd);
            /* even columns: the low 8 bytes of each shuffled half; odd: the high 8 */
            _mm_storeu_si128((__m128i *)(e + 16 * k), _mm_unpacklo_epi64(lo, hi));
            _mm_storeu_si128((__m128i *)(o + 16 * k), _mm_unpackhi_epi64(lo, hi));
            const float dk = _cvtsh_ss((unsigned short)(ab[0] | ab[1] << 8));
            for (int l = 0; l < 4; l++) d[4 * k + l] = dk, gi[4 * k + l] = (int32_t)((b0 + k) / bpg - g0);
        }
        w4v_quad *p = &q[i];
        p->xe = _mm512_load_si512(e);
        p->xo = _mm512_load_si512(o);
        p->s = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, p->xe), ones, p->xo);
        p->s8 = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(p->s, 3));
        p->d = _mm512_load_ps(d);
        p->gidx = _mm512_load_si512(gi);
        p->g0 = g0;
        p->gmask = (__mmask16)((1u << (gi[4 * (nblk - 1)] + 1)) - 1u);
        p->wmask = nblk == 4 ? ~(__mmask64)0 : (((__mmask64)1 << (16 * nblk)) - 1);
    }
}

/* The exact D of each lane of one row's four blocks at wb, from init (-(8 + z) S). */
static inline __m512i w4v_dot(const uint8_t *wb, const w4v_quad *p, __m512i init) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i v = _mm512_maskz_loadu_epi8(p->wmask, wb);
    const __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
    return _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(init, lo, p->xe), hi, p->xo);
}

static void w4v_rows(const lq_weight *w, const w4v_quad *q, int64_t nq, float *y, int64_t r0, int64_t r1) {
    const int64_t ng = w->cols / lq_w4_group(w);
    const float *scale = w->aux[0], *zero = w->aux[1];
    const __m512i eight = _mm512_set1_epi32(8);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *a = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        const float *sr = scale + r * ng, *zr = zero ? zero + r * ng : NULL;
        __m512 acc = _mm512_setzero_ps();
        for (int64_t i = 0; i < nq; i++) {
            const w4v_quad *p = &q[i];
            __m512i init = p->s8;
            if (zr) { /* -(8 + z) S, z gathered per lane as the scales are */
                const __m512 z = _mm512_permutexvar_ps(p->gidx, _mm512_maskz_loadu_ps(p->gmask, zr + p->g0));
                init = _mm512_sub_epi32(_mm512_setzero_si512(),
                                        _mm512_mullo_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(z), eight), p->s));
            }
            const __m512 s = _mm512_permutexvar_ps(p->gidx, _mm512_maskz_loadu_ps(p->gmask, sr + p->g0));
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(w4v_dot(a + 64 * i, p, init)), _mm512_mul_ps(p->d, s), acc);
        }
        y[r - r0] = _mm512_reduce_add_ps(acc);
    }
}

void lq_matvec_q_w4a16_avx512(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1) {
    const int64_t gs = lq_w4_group(w), nb = w->cols / LQ_QK, nq = (nb + 3) / 4;
    if (gs % LQ_QK != 0) {
        lq_matvec_q_w4a16_avx2(w, xq, y, r0, r1);
        return;
    }
    w4v_quad stack[W4V_STACK_QUADS], *q = stack;
    if (nq > W4V_STACK_QUADS && !(q = aligned_alloc(64, (size_t)nq * sizeof *q))) {
        lq_matvec_q_w4a16_ref(w, xq, y, r0, r1); /* no memory: the spec needs none */
        return;
    }
    w4v_prepare(xq, nb, gs / LQ_QK, q);
    w4v_rows(w, q, nq, y, r0, r1);
    if (q != stack) free(q);
}

/* Prefill (lq_gemm_q_fn): four tokens per pass over a row, so each 64-byte weight load, its
 * nibble split, and the row's gathered scales (and zero points) serve four tokens; every token's
 * sum runs in the very order of w4v_rows (the same init, dpbusd pair, scaling and FMA per
 * quad, the same reduction), so the result equals matvec_q bit for bit. Leftover tokens (n % 4)
 * take matvec_q itself. */
static void w4v_rows4(const lq_weight *w, const w4v_quad *const qt[4], int64_t nq, float *y, int64_t ldy,
                      int64_t r0, int64_t r1) {
    const int64_t ng = w->cols / lq_w4_group(w);
    const float *scale = w->aux[0], *zero = w->aux[1];
    const __m512i eight = _mm512_set1_epi32(8), m4 = _mm512_set1_epi8(0x0f);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *a = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        const float *sr = scale + r * ng, *zr = zero ? zero + r * ng : NULL;
        __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
        for (int64_t i = 0; i < nq; i++) {
            const w4v_quad *p0 = &qt[0][i]; /* the per-call fields (masks, gidx, g0) are the same for all */
            const __m512i v = _mm512_maskz_loadu_epi8(p0->wmask, a + 64 * i);
            const __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
            const __m512 s = _mm512_permutexvar_ps(p0->gidx, _mm512_maskz_loadu_ps(p0->gmask, sr + p0->g0));
            __m512i off = eight;
            if (zr) {
                const __m512 z = _mm512_permutexvar_ps(p0->gidx, _mm512_maskz_loadu_ps(p0->gmask, zr + p0->g0));
                off = _mm512_add_epi32(_mm512_cvtps_epi32(z), eight);
            }
            for (int t = 0; t < 4; t++) {
                const w4v_quad *p = &qt[t][i];
                const __m512i init = zr ? _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_mullo_epi32(off, p->s)) : p->s8;
                const __m512i dot = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(init, lo, p->xe), hi, p->xo);
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(p->d, s), acc[t]);
            }
        }
        for (int t = 0; t < 4; t++) y[t * ldy + (r - r0)] = _mm512_reduce_add_ps(acc[t]);
    }
}

void lq_gemm_q_w4a16_avx512(const lq_weight *w, const void *xq, size_t xq_stride, int64_t n, float *y,
                            int64_t ldy, int64_t r0, int64_t r1) {
    const int64_t gs = lq_w4_group(w), nb = w->cols / LQ_QK, nq = (nb + 3) / 4, n4 = n & ~(int64_t)3;
    const uint8_t *xb = xq;
    w4v_quad *buf = (gs % LQ_QK == 0 && n4) ? aligned_alloc(64, (size_t)(4 * nq) * sizeof *buf) : NULL;
    int64_t t0 = 0;
    if (buf) {
        const w4v_quad *const qt[4] = {buf, buf + nq, buf + 2 * nq, buf + 3 * nq};
        for (; t0 < n4; t0 += 4) {
            for (int t = 0; t < 4; t++) w4v_prepare(xb + (size_t)(t0 + t) * xq_stride, nb, gs / LQ_QK, buf + t * nq);
            w4v_rows4(w, qt, nq, y + t0 * ldy, ldy, r0, r1);
        }
        free(buf);
    }
    for (; t0 < n; t0++) /* leftover tokens, other group sizes, or no memory */
        lq_matvec_q_w4a16_avx512(w, xb + (size_t)t0 * xq_stride, y + t0 * ldy, r0, r1);
}
