/* fmt_w4a16_avx2.c - W4A16 fast paths.
 *
 * matvec: byte k of a row holds elements 2k (low nibble) and 2k+1 (high nibble). Instead of
 * re-interleaving nibbles for every row, x is split once per call into its even and odd
 * elements (xe[k] = x[2k], xo[k] = x[2k+1], zero padded to a multiple of 8): then 8 bytes of a
 * row give 8 low nibbles to multiply with xe[k..k+8) and 8 high nibbles with xo[k..k+8), with
 * only an and / shift to separate them. Per 16 weights and row: one 8-byte load, and, shift,
 * and, two u8 -> i32 widenings, two conversions, two subtractions of (8 + zero) (exact small
 * integers, so (q - zero) * x is formed exactly as in the ref) and two FMAs. Four rows share
 * every x load; each group's sum is multiplied by its scale once (one FMA per group and row).
 * The zero padding of xe/xo makes the padded tail of a row (decoding to finite garbage)
 * contribute exactly 0.
 *
 * Group sizes that are not multiples of 16 (other than one group per row) take the ref path:
 * compressed-tensors' are 32, 64, 128.
 */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "kern_internal.h"
#include "lq_blocks.h"

#define W4_STACK_HALF 4096 /* xe/xo floats on the stack: rows up to 8192 wide, else malloc */

/* 16 codes (8 bytes at p) as low-nibble (even) and high-nibble (odd) vectors of u - off. */
static inline void w4_load16(const uint8_t *p, __m256 off, __m256 *ev, __m256 *od) {
    const __m128i b = _mm_loadl_epi64((const __m128i *)p);
    const __m128i m = _mm_set1_epi8(0x0f);
    const __m128i lo = _mm_and_si128(b, m), hi = _mm_and_si128(_mm_srli_epi16(b, 4), m);
    *ev = _mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo)), off);
    *od = _mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi)), off);
}

/* The last chunk of a row whose width is not a multiple of 16: only the row's own bytes. */
static inline void w4_load16_tail(const uint8_t *p, size_t avail, __m256 off, __m256 *ev, __m256 *od) {
    uint8_t t[8] = {0};
    memcpy(t, p, avail < 8 ? avail : 8);
    w4_load16(t, off, ev, od);
}

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static void w4_rows(const lq_weight *w, const float *xe, const float *xo, float *y, int64_t r0,
                    int64_t r1) {
    const int64_t cols = w->cols, gs = lq_w4_group(w), ng = cols / gs;
    const float *scale = w->aux[0], *zero = w->aux[1];
    const size_t rb = w->row_bytes, packed = (size_t)LQ_PACK4_ROW_BYTES(cols);
    const int64_t full = cols & ~(int64_t)15; /* columns covered by whole 16-chunks */
    const char *base = (const char *)w->data;
    int64_t r = r0;
    /* Four rows at a time. Written out row by row (not as loops over arrays of vectors): GCC
     * keeps arrays of __m256 in memory, which put a store/load on every accumulator update and
     * ran 10x slower. */
#define W4_STEP(i, LOAD)                                                                          \
    do {                                                                                        \
        __m256 ev_, od_;                                                                        \
        LOAD;                                                                                   \
        ae##i = _mm256_fmadd_ps(ev_, xe8, ae##i);                                               \
        ao##i = _mm256_fmadd_ps(od_, xo8, ao##i);                                               \
    } while (0)
    for (; r + 4 <= r1; r += 4) {
        const uint8_t *w0 = (const uint8_t *)(base + (size_t)r * rb);
        const uint8_t *w1 = (const uint8_t *)(base + (size_t)(r + 1) * rb);
        const uint8_t *w2 = (const uint8_t *)(base + (size_t)(r + 2) * rb);
        const uint8_t *w3 = (const uint8_t *)(base + (size_t)(r + 3) * rb);
        const float *s0 = scale + r * ng, *s1 = s0 + ng, *s2 = s1 + ng, *s3 = s2 + ng;
        const float *z0 = zero ? zero + r * ng : NULL;
        __m256 t0 = _mm256_setzero_ps(), t1 = t0, t2 = t0, t3 = t0;
        for (int64_t g = 0; g < ng; g++) {
            const __m256 off0 = _mm256_set1_ps(8.0f + (z0 ? z0[g] : 0.0f));
            const __m256 off1 = _mm256_set1_ps(8.0f + (z0 ? z0[ng + g] : 0.0f));
            const __m256 off2 = _mm256_set1_ps(8.0f + (z0 ? z0[2 * ng + g] : 0.0f));
            const __m256 off3 = _mm256_set1_ps(8.0f + (z0 ? z0[3 * ng + g] : 0.0f));
            __m256 ae0 = _mm256_setzero_ps(), ae1 = ae0, ae2 = ae0, ae3 = ae0;
            __m256 ao0 = ae0, ao1 = ae0, ao2 = ae0, ao3 = ae0;
            const int64_t c1 = (g + 1) * gs;
            int64_t c = g * gs;
            for (; c < c1 && c < full; c += 16) {
                const __m256 xe8 = _mm256_loadu_ps(xe + c / 2), xo8 = _mm256_loadu_ps(xo + c / 2);
                W4_STEP(0, w4_load16(w0 + c / 2, off0, &ev_, &od_));
                W4_STEP(1, w4_load16(w1 + c / 2, off1, &ev_, &od_));
                W4_STEP(2, w4_load16(w2 + c / 2, off2, &ev_, &od_));
                W4_STEP(3, w4_load16(w3 + c / 2, off3, &ev_, &od_));
            }
            if (c < c1) { /* one group per row, cols % 16 != 0: the partial last chunk */
                const __m256 xe8 = _mm256_loadu_ps(xe + c / 2), xo8 = _mm256_loadu_ps(xo + c / 2);
                const size_t av = packed - (size_t)(c / 2);
                W4_STEP(0, w4_load16_tail(w0 + c / 2, av, off0, &ev_, &od_));
                W4_STEP(1, w4_load16_tail(w1 + c / 2, av, off1, &ev_, &od_));
                W4_STEP(2, w4_load16_tail(w2 + c / 2, av, off2, &ev_, &od_));
                W4_STEP(3, w4_load16_tail(w3 + c / 2, av, off3, &ev_, &od_));
            }
            t0 = _mm256_fmadd_ps(_mm256_add_ps(ae0, ao0), _mm256_set1_ps(s0[g]), t0);
            t1 = _mm256_fmadd_ps(_mm256_add_ps(ae1, ao1), _mm256_set1_ps(s1[g]), t1);
            t2 = _mm256_fmadd_ps(_mm256_add_ps(ae2, ao2), _mm256_set1_ps(s2[g]), t2);
            t3 = _mm256_fmadd_ps(_mm256_add_ps(ae3, ao3), _mm256_set1_ps(s3[g]), t3);
        }
        y[r - r0] = hsum8(t0);
        y[r + 1 - r0] = hsum8(t1);
        y[r + 2 - r0] = hsum8(t2);
        y[r + 3 - r0] = hsum8(t3);
    }
#undef W4_STEP
    for (; r < r1; r++) { /* 1..3 leftover rows */
        const uint8_t *wr = (const uint8_t *)(base + (size_t)r * rb);
        __m256 tot = _mm256_setzero_ps();
        for (int64_t g = 0; g < ng; g++) {
            const __m256 off = _mm256_set1_ps(8.0f + (zero ? zero[r * ng + g] : 0.0f));
            __m256 ae = _mm256_setzero_ps(), ao = ae;
            const int64_t c1 = (g + 1) * gs;
            int64_t c = g * gs;
            for (; c < c1 && c < full; c += 16) {
                __m256 ev, od;
                w4_load16(wr + c / 2, off, &ev, &od);
                ae = _mm256_fmadd_ps(ev, _mm256_loadu_ps(xe + c / 2), ae);
                ao = _mm256_fmadd_ps(od, _mm256_loadu_ps(xo + c / 2), ao);
            }
            if (c < c1) {
                __m256 ev, od;
                w4_load16_tail(wr + c / 2, packed - (size_t)(c / 2), off, &ev, &od);
                ae = _mm256_fmadd_ps(ev, _mm256_loadu_ps(xe + c / 2), ae);
                ao = _mm256_fmadd_ps(od, _mm256_loadu_ps(xo + c / 2), ao);
            }
            tot = _mm256_fmadd_ps(_mm256_add_ps(ae, ao), _mm256_set1_ps(scale[r * ng + g]), tot);
        }
        y[r - r0] = hsum8(tot);
    }
}

void lq_matvec_w4a16_avx2(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    const int64_t cols = w->cols, gs = lq_w4_group(w);
    if (gs != cols && gs % 16 != 0) { lq_matvec_w4a16_ref(w, x, y, r0, r1); return; }
    const int64_t half = (cols + 15) / 16 * 8; /* xe/xo length: whole 16-column chunks */
    float stack[2 * W4_STACK_HALF];
    float *buf = half <= W4_STACK_HALF ? stack : malloc((size_t)(2 * half) * sizeof(float));
    if (!buf) { lq_matvec_w4a16_ref(w, x, y, r0, r1); return; } /* no memory: still correct */
    float *xe = buf, *xo = buf + half;
    for (int64_t k = 0; k < half; k++) {
        xe[k] = 2 * k < cols ? x[2 * k] : 0.0f;
        xo[k] = 2 * k + 1 < cols ? x[2 * k + 1] : 0.0f;
    }
    w4_rows(w, xe, xo, y, r0, r1);
    if (buf != stack) free(buf);
}

/* ((float)u - (8 + zero)) * scale: the subtraction is exact, then one rounding, as in the ref. */
void lq_dequant_w4a16_avx2(const lq_weight *w, int64_t r0, int64_t r1, float *out) {
    const int64_t cols = w->cols, gs = lq_w4_group(w), ng = cols / gs;
    if (gs != cols && gs % 16 != 0) { lq_dequant_w4a16_ref(w, r0, r1, out); return; }
    const float *scale = w->aux[0], *zero = w->aux[1];
    const int64_t full = cols & ~(int64_t)15;
    const __m128i m = _mm_set1_epi8(0x0f);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        float *o = out + (size_t)(r - r0) * (size_t)cols;
        for (int64_t g = 0; g < ng; g++) {
            const float zf = zero ? zero[r * ng + g] : 0.0f, sf = scale[r * ng + g];
            const __m256 off = _mm256_set1_ps(8.0f + zf), s = _mm256_set1_ps(sf);
            const int64_t c1 = (g + 1) * gs;
            int64_t c = g * gs;
            for (; c < c1 && c < full; c += 16) {
                const __m128i b = _mm_loadl_epi64((const __m128i *)(wr + c / 2));
                const __m128i lo = _mm_and_si128(b, m), hi = _mm_and_si128(_mm_srli_epi16(b, 4), m);
                const __m128i u = _mm_unpacklo_epi8(lo, hi); /* 16 codes in column order */
                const __m256 f0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(u));
                const __m256 f1 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(u, 8)));
                _mm256_storeu_ps(o + c, _mm256_mul_ps(_mm256_sub_ps(f0, off), s));
                _mm256_storeu_ps(o + c + 8, _mm256_mul_ps(_mm256_sub_ps(f1, off), s));
            }
            for (; c < c1; c++) o[c] = ((float)lq_int4_get(wr, c) - zf) * sf;
        }
    }
}
