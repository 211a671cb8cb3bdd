/* fmt_w4a16_q16_avx512.c - W4A16 x Q16 activations, AVX-512 VNNI (spec: fmt_w4a16_q16.c).
 *
 * A row's 16 bytes per block of 32 columns hold column 2j in the low and 2j + 1 in the high
 * nibble of byte j, so 64 bytes are four blocks, and int16 lane m of those 64 bytes holds the
 * four columns 4(m % 8) .. 4(m % 8) + 3 of block m / 8 in its four nibbles. Four shift+masks
 * (v >> 4j & 15) give four vectors of int16 codes u in [0, 15], vector j holding the columns
 * that are j mod 4, and vpdpwssd multiplies each against the activation codes put in the same
 * order once per call (x[j]): no widening shuffles, and every 128-bit lane stays one block, so
 * int32 lanes 4k..4k+3 belong to block k as in the Q8_0 twin (fmt_w4a16_q8_avx2.c). The zero
 * point folds into the accumulator's start value, -(8 + z) S, S being the sum of the eight
 * activation codes an int32 lane meets (|lane| <= 8 * 15 * 32767 + 23 * 8 * 32767 < 2^23: exact,
 * and exactly converted to f32). Per lane the exact D times d_b s_g (block scale prepared once per
 * call, group scale gathered by a masked load and a vpermps whose index the call prepares: any
 * group size that is a multiple of 32, or one group per row), accumulated in f32, reduced once
 * per row. The last four blocks may be fewer: their missing lanes have codes, d and S of 0 and
 * the weights are not read (masked load).
 *
 * Group sizes that are not a multiple of 32 (and not one group per row) take the spec.
 *
 * Decode only (lq_wfmt_traits.act_decode_only): a prefill tile that unpacked each row once for
 * four tokens ran at the rate of dequantize + sgemm in bench_ct_int and at 0.72-0.80 of it at
 * SmolLM2's pp512 (per 128 columns and token: 4 vpdpwssd and 3 float ops, about one zmm op per
 * cycle, and the activations prepared again by every task), so it was measured and removed.
 */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "kern_internal.h"
#include "lq_blocks.h"

#define W4Q_STACK_QUADS 64 /* prepared activations on the stack up to 8192 columns */

typedef struct w4q_quad {
    __m512i x[4];     /* int16 activation codes: x[j] lane m = column 4 (m % 8) + j of block 4i + m / 8 */
    __m512i s8;       /* per int32 lane: -8 times the sum S of the codes it meets */
    __m512i s;        /* S itself (asymmetric rows scale it by 8 + z) */
    __m512 d;         /* d of block 4i + k in lanes 4k..4k+3; 0 past the last block */
    __m512i gidx;     /* per lane: its block's group minus g0 (vpermps index) */
    int64_t g0;       /* the first block's group */
    __mmask16 gmask;  /* the groups the four blocks touch: g0 .. g0 + popcount - 1 */
    __mmask64 wmask;  /* the weight bytes of the blocks that exist */
} w4q_quad;

static void w4q_prepare(const lq_block_q16 *xb, int64_t nb, int64_t bpg, w4q_quad *q) {
    const __m512i ones = _mm512_set1_epi16(1);
    for (int64_t i = 0; 4 * i < nb; i++) {
        _Alignas(64) int16_t x[4][32];
        _Alignas(64) float d[16] = {0};
        _Alignas(64) int32_t gi[16] = {0};
        memset(x, 0, sizeof x);
        const int64_t b0 = 4 * i, g0 = b0 / bpg;
        int nblk = 0;
        for (int k = 0; k < 4 && b0 + k < nb; k++, nblk++) {
            const lq_block_q16 *blk = &xb[b0 + k];
            for (int m = 0; m < 8; m++)
                for (int j = 0; j < 4; j++) x[j][8 * k + m] = blk->qs[4 * m + j];
            for (int l = 0; l < 4; l++) d[4 * k + l] = blk->d, gi[4 * k + l] = (int32_t)((b0 + k) / bpg - g0);
        }
        w4q_quad *p = &q[i];
        __m512i s = _mm512_setzero_si512();
        for (int j = 0; j < 4; j++) {
            p->x[j] = _mm512_load_si512(x[j]);
            s = _mm512_dpwssd_epi32(s, p->x[j], ones);
        }
        p->s = s;
        p->s8 = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(s, 3));
        p->d = _mm512_load_ps(d);
        p->gidx = _mm512_load_si512(gi);
        p->g0 = g0;
        p->gmask = (__mmask16)((1u << (gi[4 * (nblk - 1)] + 1)) - 1u);
        p->wmask = nblk == 4 ? ~(__mmask64)0 : (((__mmask64)1 << (16 * nblk)) - 1);
    }
}

/* The four int16 code vectors of one row's four blocks at wb (masked past the last block). */
static inline void w4q_codes(const uint8_t *wb, __mmask64 wmask, __m512i u[4]) {
    const __m512i m4 = _mm512_set1_epi16(0x000f);
    const __m512i v = _mm512_maskz_loadu_epi8(wmask, wb);
    u[0] = _mm512_and_si512(v, m4);
    u[1] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
    u[2] = _mm512_and_si512(_mm512_srli_epi16(v, 8), m4);
    u[3] = _mm512_srli_epi16(v, 12);
}

/* The exact D of each lane, from init (-(8 + z) S). */
static inline __m512i w4q_dot(const __m512i u[4], const w4q_quad *p, __m512i init) {
    __m512i acc = _mm512_dpwssd_epi32(init, u[0], p->x[0]);
    acc = _mm512_dpwssd_epi32(acc, u[1], p->x[1]);
    acc = _mm512_dpwssd_epi32(acc, u[2], p->x[2]);
    return _mm512_dpwssd_epi32(acc, u[3], p->x[3]);
}

/* Group scale (or zero point) of each lane's block: one masked load, one permute. */
static inline __m512 w4q_gather(const float *v, const w4q_quad *p) {
    return _mm512_permutexvar_ps(p->gidx, _mm512_maskz_loadu_ps(p->gmask, v + p->g0));
}

/* -(8 + z) S for a lane vector z of zero points */
static inline __m512i w4q_init_asym(__m512 z, __m512i s) {
    const __m512i off = _mm512_add_epi32(_mm512_cvtps_epi32(z), _mm512_set1_epi32(8));
    return _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_mullo_epi32(off, s));
}

static void w4q_rows(const lq_weight *w, const w4q_quad *q, int64_t nq, float *y, int64_t r0, int64_t r1) {
    const int64_t ng = w->cols / lq_w4_group(w);
    const float *scale = w->aux[0], *zero = w->aux[1];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *a = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        const float *sr = scale + r * ng, *zr = zero ? zero + r * ng : NULL;
        __m512 acc = _mm512_setzero_ps();
        for (int64_t i = 0; i < nq; i++) {
            const w4q_quad *p = &q[i];
            __m512i u[4];
            w4q_codes(a + 64 * i, p->wmask, u);
            const __m512i init = zr ? w4q_init_asym(w4q_gather(zr, p), p->s) : p->s8;
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(w4q_dot(u, p, init)), _mm512_mul_ps(p->d, w4q_gather(sr, p)), acc);
        }
        y[r - r0] = _mm512_reduce_add_ps(acc);
    }
}

void lq_matvec_q_w4a16_q16_avx512(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1) {
    const int64_t gs = lq_w4_group(w), nb = w->cols / LQ_QK, nq = (nb + 3) / 4;
    if (gs % LQ_QK != 0) {
        lq_matvec_q_w4a16_q16_ref(w, xq, y, r0, r1);
        return;
    }
    w4q_quad stack[W4Q_STACK_QUADS], *q = stack;
    if (nq > W4Q_STACK_QUADS && !(q = aligned_alloc(64, (size_t)nq * sizeof *q))) {
        lq_matvec_q_w4a16_q16_ref(w, xq, y, r0, r1); /* no memory: the spec needs none */
        return;
    }
    w4q_prepare(xq, nb, gs / LQ_QK, q);
    w4q_rows(w, q, nq, y, r0, r1);
    if (q != stack) free(q);
}
