/* fmt_w4a16_avx512.c - W4A16 matvec (f32 activations), AVX-512 twin of fmt_w4a16_avx2.c.
 *
 * 32 columns = 16 bytes of a row per step: vpmovzxbd widens the bytes to 16 int32 lanes, lane j
 * holding column 2j in its low nibble and 2j + 1 in the next; a mask and a shift give the two
 * codes u, and subtracting 8 + z (the group's offset: 8 when symmetric) gives q - z exactly, as
 * the ref. vcvtdq2ps is exact, and one FMA each with x of the even / odd columns: x is split
 * into those two halves once per call (two vpermt2ps per 32 columns, zero padded to whole
 * steps), so every product is (q - z) x as in the ref. 9 vector ops per 32 weights (the AVX2
 * twin: ~7.5 per 16). A group's sum (two chains) is multiplied by its scale once, into one of two
 * row totals (even / odd groups, so the group chains overlap). Group sizes: any multiple of 32,
 * or one group per row (any width: the last step is a masked load of the row's own bytes, its
 * padding nibbles meet x = 0); other sizes, and symmetric rows (see the function), take the AVX2
 * twin.
 *
 * One row at a time (the split x stays in L1): the rows are contiguous, so that is one
 * sequential stream for the hardware prefetcher (matvec_avx2_tmpl.h has the measurement);
 * the AVX2 twin's four interleaved rows of 288 bytes (SmolLM2) need a software prefetch instead.
 * Rounding: per product one FMA per step chain (gs/32 links) and the group totals' ng/2 links,
 * fewer than the AVX2 twin's: the F32 bound of format_table.c holds.
 */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "kern_internal.h"
#include "lq_blocks.h"

#define W4X_STACK_COLS 8192 /* split x on the stack for rows up to this wide, else malloc */

/* xe / xo: x of the even / odd columns of each 32-column step, nst steps, zero padded. */
static void w4x_split(const float *x, int64_t cols, int64_t nst, float *xe, float *xo) {
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for (int64_t t = 0; t < nst; t++) {
        const int64_t c = 32 * t, n0 = cols - c, n1 = cols - c - 16;
        const __mmask16 m0 = n0 >= 16 ? 0xffff : (__mmask16)((1u << n0) - 1u);
        const __mmask16 m1 = n1 >= 16 ? 0xffff : n1 <= 0 ? 0 : (__mmask16)((1u << n1) - 1u);
        const __m512 a = _mm512_maskz_loadu_ps(m0, x + c), b = _mm512_maskz_loadu_ps(m1, x + c + 16);
        _mm512_storeu_ps(xe + 16 * t, _mm512_permutex2var_ps(a, ie, b));
        _mm512_storeu_ps(xo + 16 * t, _mm512_permutex2var_ps(a, io, b));
    }
}

/* One step: the 32 codes of the 16 bytes at p (masked by m) minus off, times x, into a. */
static inline __m512 w4x_step(const uint8_t *p, __mmask16 m, __m512i off, const float *xe,
                              const float *xo, __m512 a) {
    const __m512i v = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p));
    const __m512i lo = _mm512_sub_epi32(_mm512_and_si512(v, _mm512_set1_epi32(15)), off);
    const __m512i hi = _mm512_sub_epi32(_mm512_srli_epi32(v, 4), off);
    a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lo), _mm512_loadu_ps(xe), a);
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(hi), _mm512_loadu_ps(xo), a);
}

void lq_matvec_w4a16_avx512(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    const int64_t cols = w->cols, gs = lq_w4_group(w), ng = cols / gs;
    if (r1 <= r0) return;
    /* Symmetric rows keep the AVX2 twin: its byte tricks (no offset to subtract, codes placed in
     * the top byte so the conversion needs no widening) do a 16-weight step in ~7.5 256-bit ops,
     * and Zen 4 runs a 512-bit op as two 256-bit halves, so this loop (9 ops of 512 bits per 32
     * weights, plus a group's scaling every step at g32) measured 0.68x of it on a hot cache
     * (bench_isa, W4A16 g32); asymmetric ones, where the AVX2 twin pays a byte subtraction per
     * 32 codes and 32-byte offset tables per group, measured 1.2-1.6x hot and 1.35x cold here. */
    if (!w->aux[1] || (gs != cols && gs % 32 != 0)) { lq_matvec_w4a16_avx2(w, x, y, r0, r1); return; }
    const int64_t nst = (cols + 31) / 32, spg = gs == cols ? nst : gs / 32; /* steps per group */
    _Alignas(64) float stack[W4X_STACK_COLS];
    float *xe = nst * 32 <= W4X_STACK_COLS ? stack : malloc((size_t)nst * 32 * sizeof(float));
    if (!xe) { lq_matvec_w4a16_ref(w, x, y, r0, r1); return; } /* no memory: still correct */
    float *xo = xe + nst * 16;
    w4x_split(x, cols, nst, xe, xo);
    /* the last step's bytes (fewer than 16 when cols % 32 != 0; only with one group per row) */
    const int64_t last_bytes = (cols - 32 * (nst - 1) + 1) / 2;
    const __mmask16 mlast = last_bytes >= 16 ? 0xffff : (__mmask16)((1u << last_bytes) - 1u);
    const float *scale = w->aux[0], *zero = w->aux[1];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *a = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        const float *sr = scale + r * ng, *zr = zero ? zero + r * ng : NULL;
        __m512 t0 = _mm512_setzero_ps(), t1 = t0;
        int64_t st = 0;
        for (int64_t g = 0; g < ng; g++) {
            const __m512i off = _mm512_set1_epi32(8 + (zr ? (int)zr[g] : 0));
            __m512 a0 = _mm512_setzero_ps(), a1 = a0;
            const int64_t e = st + spg;
            for (; st + 2 <= e; st += 2) {
                const __mmask16 m1 = st + 1 == nst - 1 ? mlast : 0xffff;
                a0 = w4x_step(a + 16 * st, 0xffff, off, xe + 16 * st, xo + 16 * st, a0);
                a1 = w4x_step(a + 16 * (st + 1), m1, off, xe + 16 * (st + 1), xo + 16 * (st + 1), a1);
            }
            if (st < e) {
                a0 = w4x_step(a + 16 * st, st == nst - 1 ? mlast : 0xffff, off, xe + 16 * st, xo + 16 * st, a0);
                st++;
            }
            const __m512 sum = _mm512_add_ps(a0, a1), s = _mm512_set1_ps(sr[g]);
            if (g & 1) t1 = _mm512_fmadd_ps(sum, s, t1);
            else t0 = _mm512_fmadd_ps(sum, s, t0);
        }
        y[r - r0] = _mm512_reduce_add_ps(_mm512_add_ps(t0, t1));
    }
    if (xe != stack) free(xe);
}
