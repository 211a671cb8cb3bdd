/* fmt_w8a16_q8_avx512.c - W8A16 x Q8_0 activations, AVX-512 VNNI (spec: fmt_w8a16_q8.c).
 *
 * A row stores u = q + 128 (unsigned), which is exactly what vpdpbusd wants as its unsigned
 * operand: dpbusd(acc, u, x) adds the four products u * x of each int32 lane to it (u <= 255,
 * |x| <= 127: no saturation, no overflow). Since sum u x = sum q x + 128 sum x, each lane's
 * accumulator starts at -128 times the sum of the four activation codes it meets, computed once
 * per call (another dpbusd, of the bytes 0x80 with the codes) and shared by every row: one
 * instruction per 64 weights and row gives the spec's exact D_b, lane by lane. Two blocks per
 * 512-bit step (lanes 0-7 block b, 8-15 block b + 1), converted and accumulated with d_b in f32
 * the row's scale multiplies once. An odd last block is a pair whose second half is masked off
 * (codes and d zero, weights not read). One row at a time (the prepared activations stay in L1):
 * the rows are contiguous, so that is one sequential stream for the hardware prefetcher
 * (matvec_avx2_tmpl.h has the reason and the measurement); the AVX2 twin's four interleaved
 * rows needed a software prefetch at every 4-row jump, without which it lost end to end.
 */
#include <immintrin.h>
#include <stdlib.h>

#include "kern_internal.h"
#include "lq_blocks.h"

#define W8V_STACK_PAIRS 128 /* prepared activations on the stack up to 8192 columns */

typedef struct w8v_pair {
    __m512i q;    /* the codes of blocks b and b + 1 (zero past the last block) */
    __m512i corr; /* per int32 lane: -128 times the sum of its four codes */
    __m512 d;     /* d_b in lanes 0-7, d_{b+1} in lanes 8-15 (0 past the last block) */
} w8v_pair;

static void w8v_prepare(const uint8_t *xb, int64_t nb, w8v_pair *p) {
    const __m512i k80 = _mm512_set1_epi8((char)0x80);
    for (int64_t b = 0; b < nb; b += 2) {
        const uint8_t *a0 = xb + (size_t)b * sizeof(lq_block_q8_0), *a1 = a0 + sizeof(lq_block_q8_0);
        const int two = b + 1 < nb;
        const __m256i q0 = _mm256_loadu_si256((const __m256i *)(a0 + 2));
        const __m256i q1 = two ? _mm256_loadu_si256((const __m256i *)(a1 + 2)) : _mm256_setzero_si256();
        w8v_pair *o = &p[b / 2];
        o->q = _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1);
        o->corr = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), k80, o->q));
        const float d0 = _cvtsh_ss((unsigned short)(a0[0] | a0[1] << 8));
        const float d1 = two ? _cvtsh_ss((unsigned short)(a1[0] | a1[1] << 8)) : 0.0f;
        o->d = _mm512_insertf32x8(_mm512_set1_ps(d0), _mm256_set1_ps(d1), 1);
    }
}

static inline __m512 w8v_step(const uint8_t *wb, __mmask64 m, const w8v_pair *p, __m512 acc) {
    const __m512i u = _mm512_maskz_loadu_epi8(m, wb);
    return _mm512_fmadd_ps(p->d, _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(p->corr, u, p->q)), acc);
}

void lq_matvec_q_w8a16_avx512(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1) {
    const int64_t nb = w->cols / LQ_QK, np = (nb + 1) / 2;
    const uint8_t *base = w->data;
    const size_t rb = w->row_bytes;
    const float *scale = w->aux[0];
    w8v_pair stack[W8V_STACK_PAIRS], *p = stack;
    if (np > W8V_STACK_PAIRS && !(p = aligned_alloc(64, (size_t)np * sizeof *p))) {
        lq_matvec_q_w8a16_ref(w, xq, y, r0, r1); /* no memory: the spec needs none */
        return;
    }
    w8v_prepare(xq, nb, p);
    const __mmask64 last = (nb & 1) ? (__mmask64)0xffffffffu : ~(__mmask64)0;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *a = base + (size_t)r * rb;
        __m512 s0 = _mm512_setzero_ps(), s1 = s0; /* two chains: even and odd pairs */
        int64_t i = 0;
        for (; i + 2 < np; i += 2) {
            s0 = w8v_step(a + (size_t)i * 2 * LQ_QK, ~(__mmask64)0, &p[i], s0);
            s1 = w8v_step(a + (size_t)(i + 1) * 2 * LQ_QK, ~(__mmask64)0, &p[i + 1], s1);
        }
        for (; i < np; i++)
            s0 = w8v_step(a + (size_t)i * 2 * LQ_QK, i + 1 < np ? ~(__mmask64)0 : last, &p[i], s0);
        y[r - r0] = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) * scale[r];
    }
    if (p != stack) free(p);
}

/* Prefill (lq_gemm_q_fn): four tokens per pass over a row, so each 64-byte weight load serves
 * four vpdpbusd; every token's sums run in the very order of lq_matvec_q_w8a16_avx512 (the same
 * two chains, the same FMA per pair, the same reduction), so the result equals it bit for bit.
 * Leftover tokens (n % 4) take matvec_q itself. The activations of the four tokens are prepared
 * once per call and row range (4 x 192 bytes per 64 columns, in L1/L2 beside the rows). */
#define W8V_STEP(t, s, u, i) s = _mm512_fmadd_ps(pt[t][i].d, _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(pt[t][i].corr, u, pt[t][i].q)), s)
void lq_gemm_q_w8a16_avx512(const lq_weight *w, const void *xq, size_t xq_stride, int64_t n, float *y,
                            int64_t ldy, int64_t r0, int64_t r1) {
    const int64_t nb = w->cols / LQ_QK, np = (nb + 1) / 2, n4 = n & ~(int64_t)3;
    const uint8_t *base = w->data, *xb = xq;
    const size_t rb = w->row_bytes;
    const float *scale = w->aux[0];
    w8v_pair *buf = n4 ? aligned_alloc(64, (size_t)(4 * np) * sizeof *buf) : NULL;
    int64_t t0 = 0;
    if (buf) {
        const w8v_pair *pt[4] = {buf, buf + np, buf + 2 * np, buf + 3 * np};
        const __mmask64 last = (nb & 1) ? (__mmask64)0xffffffffu : ~(__mmask64)0;
        for (; t0 < n4; t0 += 4) {
            for (int t = 0; t < 4; t++) w8v_prepare(xb + (size_t)(t0 + t) * xq_stride, nb, buf + t * np);
            for (int64_t r = r0; r < r1; r++) {
                const uint8_t *a = base + (size_t)r * rb;
                __m512 a0 = _mm512_setzero_ps(), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0;
                int64_t i = 0;
                for (; i + 2 < np; i += 2) {
                    const __m512i u = _mm512_loadu_si512(a + (size_t)i * 2 * LQ_QK);
                    const __m512i v = _mm512_loadu_si512(a + (size_t)(i + 1) * 2 * LQ_QK);
                    W8V_STEP(0, a0, u, i); W8V_STEP(1, b0, u, i); W8V_STEP(2, c0, u, i); W8V_STEP(3, d0, u, i);
                    W8V_STEP(0, a1, v, i + 1); W8V_STEP(1, b1, v, i + 1); W8V_STEP(2, c1, v, i + 1); W8V_STEP(3, d1, v, i + 1);
                }
                for (; i < np; i++) {
                    const __m512i u = _mm512_maskz_loadu_epi8(i + 1 < np ? ~(__mmask64)0 : last, a + (size_t)i * 2 * LQ_QK);
                    W8V_STEP(0, a0, u, i); W8V_STEP(1, b0, u, i); W8V_STEP(2, c0, u, i); W8V_STEP(3, d0, u, i);
                }
                float *yr = y + (r - r0);
                yr[(t0 + 0) * ldy] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) * scale[r];
                yr[(t0 + 1) * ldy] = _mm512_reduce_add_ps(_mm512_add_ps(b0, b1)) * scale[r];
                yr[(t0 + 2) * ldy] = _mm512_reduce_add_ps(_mm512_add_ps(c0, c1)) * scale[r];
                yr[(t0 + 3) * ldy] = _mm512_reduce_add_ps(_mm512_add_ps(d0, d1)) * scale[r];
            }
        }
        free(buf);
    }
    for (; t0 < n; t0++) /* leftover tokens, or no memory for the four-token buffer */
        lq_matvec_q_w8a16_avx512(w, xb + (size_t)t0 * xq_stride, y + t0 * ldy, r0, r1);
}
#undef W8V_STEP
