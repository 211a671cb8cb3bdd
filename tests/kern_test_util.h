/* kern_test_util.h - helpers shared by the kernel / format suites: a deterministic random fill and
 * the fast-vs-ref comparison with a first-mismatch message.
 *
 * Define KT_RNG_SEED before including: each suite keeps its own seed, so its inputs stay the ones
 * it has always drawn. */
#ifndef KERN_TEST_UTIL_H
#define KERN_TEST_UTIL_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lq_format.h"

#ifndef KT_RNG_SEED
#error "define KT_RNG_SEED before including kern_test_util.h"
#endif

static uint64_t g_rng = KT_RNG_SEED;
static inline uint32_t rng_u32(void) { /* xorshift64*: deterministic across runs and machines */
    g_rng ^= g_rng >> 12; g_rng ^= g_rng << 25; g_rng ^= g_rng >> 27;
    return (uint32_t)((g_rng * 0x2545f4914f6cdd1dull) >> 32);
}
static inline float rng_f(float lo, float hi) { return lo + (hi - lo) * (float)(rng_u32() >> 8) * (1.0f / 16777216.0f); }
static inline void fill(float *v, int64_t n, float lo, float hi) { for (int64_t i = 0; i < n; i++) v[i] = rng_f(lo, hi); }

/* First index where |got - ref| > atol + rtol * scale[i] (scale NULL: |ref|), or -1. A zero
 * tolerance (atol == rtol == 0) means bit-exact. */
static inline int64_t first_mismatch(const float *got, const float *ref, const double *scale, int64_t n,
                                     double atol, double rtol) {
    for (int64_t i = 0; i < n; i++) {
        if (atol == 0 && rtol == 0) {
            if (memcmp(&got[i], &ref[i], sizeof(float)) != 0) return i;
            continue;
        }
        const double s = scale ? scale[i] : fabs((double)ref[i]);
        const double d = fabs((double)got[i] - (double)ref[i]);
        if (!(d <= atol + rtol * s)) return i; /* also catches NaN */
    }
    return -1;
}

static inline double tol_at(const float *ref, const double *scale, int64_t i, double atol, double rtol) {
    return atol + rtol * (scale ? scale[i] : fabs((double)ref[i]));
}

#define EXPECT_CLOSE(what, got, ref, scale, n, atol, rtol)                                        \
    do {                                                                                        \
        int64_t bad_ = first_mismatch((got), (ref), (scale), (n), (atol), (rtol));              \
        int64_t at_ = bad_ < 0 ? 0 : bad_;                                                      \
        cr_assert_eq(bad_, -1, "%s: first mismatch at index %lld: fast %.9g vs ref %.9g "       \
                     "(tol %.3g)", (what), (long long)bad_, (got)[at_], (ref)[at_],              \
                     tol_at((ref), (scale), at_, (atol), (rtol)));                               \
    } while (0)

/* A quantized weight with its own buffers (payload exactly rows * row_bytes: ASan sees any read
 * past the last row). */
typedef struct qweight {
    lq_weight w;
    void *data;
    float *aux0, *aux1;
} qweight;

/* Quantize src (rows x cols) into fmt; returns 0 if lq_wfmt_sizes refuses the shape. */
static inline int kt_quantize(lq_wfmt fmt, const float *src, int64_t rows, int64_t cols,
                    const lq_quant_params *p, qweight *q) {
    memset(q, 0, sizeof *q);
    size_t rb;
    int64_t a0, a1;
    if (!lq_wfmt_sizes(fmt, rows, cols, p, &rb, &a0, &a1)) return 0;
    q->data = malloc((size_t)rows * rb);
    q->aux0 = malloc((size_t)(a0 > 0 ? a0 : 1) * sizeof(float));
    q->aux1 = a1 > 0 ? malloc((size_t)a1 * sizeof(float)) : NULL;
    cr_assert(q->data && q->aux0);
    memset(q->data, 0xA5, (size_t)rows * rb); /* quantize_ref must write every byte */
    q->w = (lq_weight){.fmt = fmt, .rows = rows, .cols = cols, .data = q->data, .row_bytes = rb,
                       .aux = {q->aux0, q->aux1}};
    lq_wfmt_get(fmt)->quantize_ref(src, p, &q->w);
    return 1;
}

static inline void kt_qfree(qweight *q) { free(q->data); free(q->aux0); free(q->aux1); }

#endif
