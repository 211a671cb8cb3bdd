/* blk_avx2_tmpl.h - the AVX2 matvec and dequant loops shared by the GGUF legacy block formats.
 *
 * Included by fmt_<family>_avx2.c after defining:
 *   BLK_MATVEC, BLK_DEQUANT  function names to define
 *   BLK_BYTES                bytes per block of 32 weights
 *   BLK_MIN                  1 if the block stores a minimum m at byte 2 (W = q d + m), else 0
 *   BLK_CODES(p, c)          the block at p -> c[0..3]: its 32 codes q as floats (elements 0-7,
 *                            8-15, 16-23, 24-31), exact small integers (or grid values)
 * The formats differ only in how a block's bytes become 32 small integers, so the loops live here.
 *
 * matvec: decode reads 4.5 to 8.5 bits per weight, so it is memory bound once the decode costs
 * less than the load. Four rows share each load of x (x stays in L1); per row and block the 32
 * codes meet x in two FMA chains, then the block's d scales the block sum into the row's
 * accumulator (one FMA), so the 8 lanes x 4 rows give enough independent chains to hide the FMA
 * latency. With a minimum, sum_c (q d + m) x = d sum q x + m sum x, and sum x per block is
 * shared by the four rows. Leftover rows (1..3) repeat a row pointer instead of a second loop.
 * Results differ from matvec_ref only in summation order (format_table.c bounds it).
 * dequant: q * d (then + m, rounded separately: no FMA) per element, bit-exact with the ref. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kern_internal.h"
#include "lq_blocks.h"

#ifndef BLK_TMPL_HELPERS
#define BLK_TMPL_HELPERS
static inline float blk_d(const uint8_t *p) { return _cvtsh_ss((unsigned short)(p[0] | p[1] << 8)); }
/* d and m (the block's first two binary16) widened at once, as d, m, d, m, ... (exact) */
static inline __m256 blk_dm(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return _mm256_cvtph_ps(_mm_set1_epi32((int)v));
}

static inline __m128 blk_hsum4(__m256 a, __m256 b, __m256 c, __m256 d) {
    const __m256 ab = _mm256_hadd_ps(a, b), cd = _mm256_hadd_ps(c, d);
    const __m256 abcd = _mm256_hadd_ps(ab, cd);
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

/* 16 signed bytes -> their first and last 8 as 8 floats each */
static inline void blk_i8x16_to_ps(__m128i v, __m256 *lo, __m256 *hi) {
    *lo = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
    *hi = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v, 8)));
}
#endif

/* One row's block: acc += d * sum q x (and accm += m * sum x). Written out per row (no arrays
 * of vectors), so -O2 keeps every accumulator in a register. */
#undef BLK_ROW
#if BLK_MIN
#define BLK_ROW(b, acc, accm)                                                                      \
    do {                                                                                           \
        __m256 c_[4];                                                                              \
        BLK_CODES(b, c_);                                                                          \
        const __m256 s_ = _mm256_add_ps(_mm256_fmadd_ps(c_[1], x1, _mm256_mul_ps(c_[0], x0)),      \
                                        _mm256_fmadd_ps(c_[3], x3, _mm256_mul_ps(c_[2], x2)));     \
        const __m256 dm_ = blk_dm(b); /* d, m, d, m, ... */                                       \
        acc = _mm256_fmadd_ps(s_, _mm256_moveldup_ps(dm_), acc);                                   \
        accm = _mm256_fmadd_ps(xs, _mm256_movehdup_ps(dm_), accm);                                 \
    } while (0)
#else
#define BLK_ROW(b, acc, accm)                                                                      \
    do {                                                                                           \
        __m256 c_[4];                                                                              \
        BLK_CODES(b, c_);                                                                          \
        const __m256 s_ = _mm256_add_ps(_mm256_fmadd_ps(c_[1], x1, _mm256_mul_ps(c_[0], x0)),      \
                                        _mm256_fmadd_ps(c_[3], x3, _mm256_mul_ps(c_[2], x2)));     \
        acc = _mm256_fmadd_ps(s_, _mm256_set1_ps(blk_d(b)), acc);                                  \
    } while (0)
#endif

void BLK_MATVEC(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    const int64_t nb = w->cols / LQ_QK;
    const uint8_t *base = (const uint8_t *)w->data;
    const size_t rb = w->row_bytes;
    for (int64_t r = r0; r < r1; r += 4) {
        const uint8_t *p0 = base + (size_t)r * rb;
        const uint8_t *p1 = base + (size_t)(r + 1 < r1 ? r + 1 : r1 - 1) * rb;
        const uint8_t *p2 = base + (size_t)(r + 2 < r1 ? r + 2 : r1 - 1) * rb;
        const uint8_t *p3 = base + (size_t)(r + 3 < r1 ? r + 3 : r1 - 1) * rb;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        __m256 m0 = a0, m1 = a0, m2 = a0, m3 = a0;
        for (int64_t i = 0; i < nb; i++) {
            const float *xb = x + i * LQ_QK;
            const __m256 x0 = _mm256_loadu_ps(xb), x1 = _mm256_loadu_ps(xb + 8);
            const __m256 x2 = _mm256_loadu_ps(xb + 16), x3 = _mm256_loadu_ps(xb + 24);
#if BLK_MIN
            const __m256 xs = _mm256_add_ps(_mm256_add_ps(x0, x1), _mm256_add_ps(x2, x3));
#endif
            const size_t o = (size_t)i * BLK_BYTES;
            BLK_ROW(p0 + o, a0, m0);
            BLK_ROW(p1 + o, a1, m1);
            BLK_ROW(p2 + o, a2, m2);
            BLK_ROW(p3 + o, a3, m3);
        }
#if BLK_MIN
        a0 = _mm256_add_ps(a0, m0), a1 = _mm256_add_ps(a1, m1);
        a2 = _mm256_add_ps(a2, m2), a3 = _mm256_add_ps(a3, m3);
#else
        (void)m0, (void)m1, (void)m2, (void)m3;
#endif
        float out[4];
        _mm_storeu_ps(out, blk_hsum4(a0, a1, a2, a3));
        for (int k = 0; k < 4 && r + k < r1; k++) y[r + k - r0] = out[k];
    }
}

void BLK_DEQUANT(const lq_weight *w, int64_t r0, int64_t r1, float *out) {
    const int64_t nb = w->cols / LQ_QK;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *b = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        float *o = out + (size_t)(r - r0) * (size_t)w->cols;
        for (int64_t i = 0; i < nb; i++, b += BLK_BYTES, o += LQ_QK) {
            __m256 c[4];
            BLK_CODES(b, c);
            const __m256 d = _mm256_set1_ps(blk_d(b));
#if BLK_MIN
            const __m256 m = _mm256_set1_ps(blk_d(b + 2));
            _mm256_storeu_ps(o, _mm256_add_ps(_mm256_mul_ps(c[0], d), m));
            _mm256_storeu_ps(o + 8, _mm256_add_ps(_mm256_mul_ps(c[1], d), m));
            _mm256_storeu_ps(o + 16, _mm256_add_ps(_mm256_mul_ps(c[2], d), m));
            _mm256_storeu_ps(o + 24, _mm256_add_ps(_mm256_mul_ps(c[3], d), m));
#else
            _mm256_storeu_ps(o, _mm256_mul_ps(c[0], d));
            _mm256_storeu_ps(o + 8, _mm256_mul_ps(c[1], d));
            _mm256_storeu_ps(o + 16, _mm256_mul_ps(c[2], d));
            _mm256_storeu_ps(o + 24, _mm256_mul_ps(c[3], d));
#endif
        }
    }
}

#undef BLK_MATVEC
#undef BLK_DEQUANT
#undef BLK_BYTES
#undef BLK_MIN
#undef BLK_CODES
