/* test_matmul_multi.c - lq_matmul_multi (several weights over one input, one pool run) equals
 * lq_matmul on each weight bit for bit.
 *
 * The fusion only regroups work: each weight keeps the row blocks and kernel calls lq_matmul
 * gives it, and the shared activation quantization is the same function on the same row. So the
 * contract is exact equality, checked for every format row, every ISA level the CPU has, the
 * three activation modes, decode (n = 1) and prefill (n = 9: the pool quantizes X), and 1-3
 * threads, on shapes like q/k/v and gate/up and on awkward ones (rows not a multiple of the
 * 16-row blocks). lq_matmul itself is tested against the formats' _ref (test_int_act,
 * test_formats); the F32 case here is also checked against the product computed in double from
 * the definition.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lq_blocks.h"
#include "lq_format.h"
#include "lq_ops.h"
#include "lq_pool.h"

#define KT_RNG_SEED 0x3f1a9eull
#include "kern_test_util.h"

enum { COLS = 512, MAX_N = 9 };

/* Weights of one group: nw formats (one per weight) and row counts, all COLS wide. */
typedef struct group {
    int nw;
    lq_wfmt fmt[LQ_MATMUL_MULTI_MAX];
    int64_t rows[LQ_MATMUL_MULTI_MAX];
} group;

/* A rows x COLS weight of format f from src: quantize_ref, or the values stored for the float
 * formats (which have no quantizer). 0 if the format refuses the shape. */
static int make_weight(lq_wfmt f, const float *src, int64_t rows, qweight *q) {
    const lq_quant_params p = {.group_size = 32};
    if (lq_wfmt_get(f)->quantize_ref) return kt_quantize(f, src, rows, COLS, &p, q);
    memset(q, 0, sizeof *q);
    const size_t rb = (size_t)COLS * (f == LQ_WFMT_F32 ? 4 : 2);
    q->data = malloc((size_t)rows * rb);
    cr_assert(q->data);
    for (int64_t i = 0; i < rows * COLS; i++) {
        if (f == LQ_WFMT_F32) ((float *)q->data)[i] = src[i];
        else if (f == LQ_WFMT_F16) ((uint16_t *)q->data)[i] = lq_f32_to_f16(src[i]);
        else ((uint16_t *)q->data)[i] = lq_f32_to_bf16(src[i]);
    }
    q->w = (lq_weight){.fmt = f, .rows = rows, .cols = COLS, .data = q->data, .row_bytes = rb};
    return 1;
}

/* fused vs unfused on every pool and n, under the current ISA level and activation mode */
static void compare(const group *g, const lq_weight *const *w, const float *X, float **yf, float **yu,
                    const char *label) {
    const int threads[] = {1, 2, 3};
    const int64_t ns[] = {1, MAX_N};
    for (size_t k = 0; k < 3; k++) {
        lq_pool *pool = threads[k] == 1 ? NULL : lq_pool_create(threads[k]);
        for (size_t m = 0; m < 2; m++) {
            const int64_t n = ns[m];
            for (int i = 0; i < g->nw; i++) {
                for (int64_t j = 0; j < n * g->rows[i]; j++) yf[i][j] = NAN, yu[i][j] = -NAN;
                cr_assert_eq(lq_matmul(pool, w[i], X, n, yu[i]), LQ_KERNEL_OK);
            }
            cr_assert_eq(lq_matmul_multi(pool, w, g->nw, X, n, yf), LQ_KERNEL_OK);
            for (int i = 0; i < g->nw; i++)
                for (int64_t j = 0; j < n * g->rows[i]; j++)
                    cr_assert(memcmp(&yf[i][j], &yu[i][j], sizeof(float)) == 0,
                              "%s: weight %d (%s, %lld rows), n=%lld, %d threads, isa %d, act mode %d: y[%lld] "
                              "fused %.9g != unfused %.9g",
                              label, i, lq_wfmt_get(g->fmt[i])->name, (long long)g->rows[i], (long long)n,
                              threads[k], (int)lq_kernels_isa(), (int)lq_matmul_act_mode(), (long long)j, yf[i][j],
                              yu[i][j]);
        }
        lq_pool_free(pool);
    }
}

/* Makes the group's weights once, then compares fused and unfused at every ISA level this CPU
 * runs (AVX2, and AVX-512 where present) and every activation mode. Returns 0 if a format
 * refuses the shape. */
static int check_group(const group *g, const char *label) {
    qweight q[LQ_MATMUL_MULTI_MAX];
    const lq_weight *w[LQ_MATMUL_MULTI_MAX];
    float *yf[LQ_MATMUL_MULTI_MAX], *yu[LQ_MATMUL_MULTI_MAX];
    int ok = 1;
    for (int i = 0; i < g->nw; i++) {
        float *src = malloc((size_t)(g->rows[i] * COLS) * sizeof *src);
        fill(src, g->rows[i] * COLS, -1.0f, 1.0f);
        if (!make_weight(g->fmt[i], src, g->rows[i], &q[i])) ok = 0; /* q[i] zeroed: kt_qfree is safe */
        free(src);
        w[i] = &q[i].w;
        yf[i] = malloc((size_t)(MAX_N * g->rows[i]) * sizeof(float));
        yu[i] = malloc((size_t)(MAX_N * g->rows[i]) * sizeof(float));
    }
    float *X = malloc((size_t)(MAX_N * COLS) * sizeof *X);
    fill(X, MAX_N * COLS, -2.0f, 2.0f);
    const lq_isa best = lq_cpu_isa();
    const lq_act_mode modes[] = {LQ_ACT_MODE_AUTO, LQ_ACT_MODE_F32, LQ_ACT_MODE_ALL};
    for (int isa = best >= LQ_ISA_AVX2 ? LQ_ISA_AVX2 : LQ_ISA_SCALAR; ok && isa <= (int)best; isa++) {
        cr_assert_eq(lq_kernels_set_isa((lq_isa)isa), (lq_isa)isa);
        for (size_t md = 0; md < 3; md++) {
            lq_matmul_set_act_mode(modes[md]);
            compare(g, w, X, yf, yu, label);
        }
    }
    lq_matmul_set_act_mode(LQ_ACT_MODE_AUTO);
    lq_kernels_set_isa(best);
    for (int i = 0; i < g->nw; i++) {
        kt_qfree(&q[i]);
        free(yf[i]);
        free(yu[i]);
    }
    free(X);
    return ok;
}

/* Every format row: a q/k/v-like group (q parallel alone, k and v below the parallel threshold
 * alone), a gate/up-like group, an awkward one (rows not a multiple of 16) and one small enough
 * to stay on the caller. */
Test(matmul_multi, equals_unfused_for_every_format) {
    int checked = 0;
    for (int f = 0; f < LQ_WFMT_COUNT; f++) {
        const lq_wfmt fm = (lq_wfmt)f;
        const group shapes[] = {
            {3, {fm, fm, fm}, {192, 64, 64}},
            {2, {fm, fm}, {160, 160}},
            {3, {fm, fm, fm}, {67, 5, 129}},
            {2, {fm, fm}, {4, 3}},
        };
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            char label[96];
            snprintf(label, sizeof label, "%s, shape %zu", lq_wfmt_get(fm)->name, s);
            checked += check_group(&shapes[s], label);
        }
    }
    cr_assert_geq(checked, 4 * 10, "most format rows take 512 columns (%d groups checked)", checked);
}

/* Weights on different activation formats (Q8_0: int8 activations, F32: none) cannot share a
 * quantized X: the group falls back to one lq_matmul each, still equal. */
Test(matmul_multi, mixed_activation_formats_fall_back) {
    lq_matmul_set_act_mode(LQ_ACT_MODE_AUTO);
    const group g = {3, {LQ_WFMT_Q8_0, LQ_WFMT_F32, LQ_WFMT_Q4_K}, {96, 80, 33}};
    cr_assert(check_group(&g, "mixed Q8_0 / F32 / Q4_K"));
}

/* F32 weights, f32 activations: each fused output against sum_c W[r][c] X[t][c] in double (the
 * definition), within the f32 summation error 1e-5 * sum |W X|. */
Test(matmul_multi, f32_equals_the_definition) {
    lq_matmul_set_act_mode(LQ_ACT_MODE_F32);
    const int64_t rows[2] = {96, 40}, n = 3;
    float *W[2], *Y[2], *X = malloc((size_t)(n * COLS) * sizeof *X);
    lq_weight w[2];
    fill(X, n * COLS, -1.0f, 1.0f);
    for (int i = 0; i < 2; i++) {
        W[i] = malloc((size_t)(rows[i] * COLS) * sizeof(float));
        Y[i] = malloc((size_t)(n * rows[i]) * sizeof(float));
        fill(W[i], rows[i] * COLS, -1.0f, 1.0f);
        w[i] = (lq_weight){.fmt = LQ_WFMT_F32, .rows = rows[i], .cols = COLS, .data = W[i],
                           .row_bytes = COLS * sizeof(float)};
    }
    lq_pool *pool = lq_pool_create(2);
    const lq_weight *wp[2] = {&w[0], &w[1]};
    for (int64_t nn = 1; nn <= n; nn += n - 1) {
        cr_assert_eq(lq_matmul_multi(pool, wp, 2, X, nn, Y), LQ_KERNEL_OK);
        for (int i = 0; i < 2; i++)
            for (int64_t t = 0; t < nn; t++)
                for (int64_t r = 0; r < rows[i]; r++) {
                    double ref = 0, mag = 0;
                    for (int64_t c = 0; c < COLS; c++) {
                        ref += (double)W[i][r * COLS + c] * X[t * COLS + c];
                        mag += fabs((double)W[i][r * COLS + c] * X[t * COLS + c]);
                    }
                    const float got = Y[i][t * rows[i] + r];
                    cr_assert(fabs(got - ref) <= 1e-5 * mag, "n=%lld weight %d y[%lld][%lld] = %.9g, definition %.9g",
                              (long long)nn, i, (long long)t, (long long)r, got, ref);
                }
    }
    lq_pool_free(pool);
    for (int i = 0; i < 2; i++) free(W[i]), free(Y[i]);
    free(X);
    lq_matmul_set_act_mode(LQ_ACT_MODE_AUTO);
}
