/* test_gptq.c - GPTQ: the kernel against a reference written here, the Hessian, the chunker,
 * the sequential driver on stories260K.
 *
 * The reference is the algorithm of Frantar et al. (2022, Algorithm 1) as llm-compressor 0.14
 * runs it (gptq_quantize.py), written the plain way: column by column with every later column
 * updated at once (no lazy batches), its own Cholesky factorizations, all in double; scales are
 * compressed-tensors' symmetric rule amax / 7.5 of the original weight per group. Perplexities
 * are computed by the test from the files (quant-eval's library), never hard-coded from output.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../libquant/src/compress/gptq_internal.h"
#include "libquant/lq_gptq.h"
#include "libquant/lq_model.h"
#include "lq_eval.h"
#include "lq_test_util.h"

/* ---- the reference -------------------------------------------------------------------------- */

static uint64_t g_rng = 0x1234567;
static double urand(void) { /* xorshift64*, [0, 1) */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return (double)((g_rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}
static double nrand(void) { return sqrt(-2.0 * log(urand() + 1e-300)) * cos(6.283185307179586 * urand()); }

/* A = L L^T, L lower (in place: the lower triangle of A becomes L). */
static void chol(double *A, int n) {
    for (int j = 0; j < n; j++) {
        double d = A[j * n + j];
        for (int k = 0; k < j; k++) d -= A[j * n + k] * A[j * n + k];
        cr_assert(d > 0.0, "reference Cholesky: not positive definite at %d", j);
        A[j * n + j] = sqrt(d);
        for (int i = j + 1; i < n; i++) {
            double v = A[i * n + j];
            for (int k = 0; k < j; k++) v -= A[i * n + k] * A[j * n + k];
            A[i * n + j] = v / A[j * n + j];
        }
        for (int i = 0; i < j; i++) A[i * n + j] = 0.0;
    }
}

/* The upper factor U of H^-1 (U^T U = H^-1), H dampened already. */
static void ref_hinv_upper(const double *H, int n, double *U) {
    double *L = malloc(sizeof(double) * n * n), *Li = calloc((size_t)n * n, sizeof(double));
    double *Hi = malloc(sizeof(double) * n * n);
    memcpy(L, H, sizeof(double) * n * n);
    chol(L, n);
    for (int j = 0; j < n; j++) { /* Li = L^-1 by forward substitution */
        Li[j * n + j] = 1.0 / L[j * n + j];
        for (int i = j + 1; i < n; i++) {
            double v = 0.0;
            for (int k = j; k < i; k++) v += L[i * n + k] * Li[k * n + j];
            Li[i * n + j] = -v / L[i * n + i];
        }
    }
    for (int a = 0; a < n; a++) /* H^-1 = L^-T L^-1 */
        for (int b = 0; b < n; b++) {
            double v = 0.0;
            for (int k = 0; k < n; k++) v += Li[k * n + a] * Li[k * n + b];
            Hi[a * n + b] = v;
        }
    chol(Hi, n);
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) U[a * n + b] = b >= a ? Hi[b * n + a] : 0.0;
    free(L);
    free(Li);
    free(Hi);
}

static float ref_scale(const float *x, int n) {
    float amax = 0.0f;
    for (int i = 0; i < n; i++) amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
    float s = amax / 7.5f;
    return s == 0.0f ? 1.1920928955078125e-7f : s;
}

static int ref_code(float x, float s) {
    float v = x / s;
    v = v < -8.0f ? -8.0f : v > 7.0f ? 7.0f : v;
    return (int)nearbyintf(v);
}

/* 4-bit symmetric GPTQ, group gs, damp 0.01, optional activation order (descending diag);
 * nm_m > 0 (no activation order): joint N:M pruning, at each group of nm_m columns the
 * nm_m - nm_n lowest w^2 / U_ii^2 (ties: lower column) get code 0, SparseGPT's rule. */
static void ref_gptq(const float *W, int rows, int cols, const double *H0, int gs, bool actorder, int nm_n, int nm_m,
                     int8_t *codes) {
    int n = cols, *perm = malloc(sizeof(int) * n);
    for (int i = 0; i < n; i++) perm[i] = i;
    if (actorder) /* insertion sort: descending diag, ties by index */
        for (int i = 1; i < n; i++)
            for (int k = i; k > 0 && H0[perm[k] * n + perm[k]] > H0[perm[k - 1] * n + perm[k - 1]]; k--) {
                int t = perm[k];
                perm[k] = perm[k - 1];
                perm[k - 1] = t;
            }
    double *H = malloc(sizeof(double) * n * n), *U = malloc(sizeof(double) * n * n);
    bool *dead = calloc((size_t)n, sizeof(bool));
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) H[a * n + b] = H0[perm[a] * n + perm[b]];
    double mean = 0.0;
    for (int a = 0; a < n; a++) {
        if (H[a * n + a] == 0.0) {
            H[a * n + a] = 1.0;
            dead[perm[a]] = true;
        }
        mean += H[a * n + a];
    }
    mean /= n;
    for (int a = 0; a < n; a++) H[a * n + a] += 0.01 * mean;
    ref_hinv_upper(H, n, U);
    double *w = malloc(sizeof(double) * n);
    for (int r = 0; r < rows; r++) {
        float *sc = malloc(sizeof(float) * (cols / gs));
        for (int g = 0; g < cols / gs; g++) sc[g] = ref_scale(W + r * cols + g * gs, gs);
        for (int p = 0; p < n; p++) w[p] = dead[perm[p]] ? 0.0 : W[r * cols + perm[p]];
        bool cut[64] = {false};
        for (int i = 0; i < n; i++) {
            if (nm_m > 0 && i % nm_m == 0)
                for (int a = 0; a < nm_m; a++) { /* cut a when nm_n or more of the group rank above it */
                    const double ka = w[i + a] * w[i + a] / (U[(i + a) * n + i + a] * U[(i + a) * n + i + a]);
                    int above = 0;
                    for (int b = 0; b < nm_m; b++) {
                        const double kb = w[i + b] * w[i + b] / (U[(i + b) * n + i + b] * U[(i + b) * n + i + b]);
                        above += kb > ka || (kb == ka && b > a);
                    }
                    cut[a] = above >= nm_n;
                }
            float s = sc[perm[i] / gs];
            int c = nm_m > 0 && cut[i % nm_m] ? 0 : ref_code((float)w[i], s);
            double q = (double)((float)c * s);
            double err = (w[i] - q) / U[i * n + i];
            for (int j = i + 1; j < n; j++) w[j] -= err * U[i * n + j];
            codes[r * cols + perm[i]] = (int8_t)c;
        }
        free(sc);
    }
    free(perm);
    free(H);
    free(U);
    free(dead);
    free(w);
}

/* X (n x cols) with correlated columns (a random mixing of a few factors), one column dead. */
static float *make_inputs(int n, int cols, int dead_col) {
    float *X = malloc(sizeof(float) * n * cols);
    for (int t = 0; t < n; t++) {
        double f[4] = {nrand(), nrand(), nrand(), nrand()};
        for (int c = 0; c < cols; c++)
            X[t * cols + c] = c == dead_col ? 0.0f
                                            : (float)(0.5 * nrand() + f[c % 4] * (1.0 + 0.1 * (c % 7)) +
                                                      0.3 * f[(c / 4) % 4]);
    }
    return X;
}

static void direct_hessian(const float *X, int n, int cols, double *H) {
    for (int a = 0; a < cols; a++)
        for (int b = 0; b < cols; b++) {
            double v = 0.0;
            for (int t = 0; t < n; t++) v += (double)X[t * cols + a] * X[t * cols + b];
            H[a * cols + b] = 2.0 * v;
        }
}

static void hessian_of(const float *X, int n, int cols, lq_pool *pool, lq_gptq_hessian *h) {
    cr_assert_eq(lq_gptq_hessian_init(h, cols), LQ_OK);
    /* in uneven pieces, as the hook delivers samples */
    for (int t0 = 0; t0 < n; t0 += 77) {
        int k = n - t0 < 77 ? n - t0 : 77;
        cr_assert_eq(lq_gptq_hessian_add(h, X + t0 * cols, k, pool, "test"), LQ_OK, "%s", lq_last_error());
    }
    lq_gptq_hessian_finish(h);
}

/* ---- the kernel ----------------------------------------------------------------------------- */

Test(gptq, hessian_is_2_xt_x) {
    const int n = 300, cols = 97;
    float *X = make_inputs(n, cols, 5);
    double *H = malloc(sizeof(double) * cols * cols);
    direct_hessian(X, n, cols, H);
    lq_gptq_hessian h;
    hessian_of(X, n, cols, NULL, &h);
    cr_expect_eq(h.n_tokens, n);
    /* each hook delivery (here 77 tokens) is one f32 GEMM: f32 rounding of sums of 77 products,
     * measured relative to sqrt(H_aa H_bb) (the scale of row a and column b) */
    double worst = 0.0;
    for (int a = 0; a < cols; a++)
        for (int b = 0; b < cols; b++) {
            const double scale = sqrt(H[a * cols + a] * H[b * cols + b]); /* 0 on the dead column */
            const double d = fabs(h.h[a * cols + b] - H[a * cols + b]), rel = scale > 0.0 ? d / scale : d;
            cr_assert(rel <= 1e-6, "H[%d][%d]: %.17g vs direct %.17g", a, b, h.h[a * cols + b], H[a * cols + b]);
            worst = fmax(worst, rel);
        }
    cr_expect_gt(worst, 0.0, "exactly the double sums: the f32 chunks are not in use?");
    lq_gptq_hessian_free(&h);
    free(H);
    free(X);
}

static void against_reference(bool actorder) {
    const int n = 400, rows = 24, cols = 96, gs = 32, dead_col = 40;
    g_rng = actorder ? 99 : 7;
    float *X = make_inputs(n, cols, dead_col);
    float *W = malloc(sizeof(float) * rows * cols);
    for (int i = 0; i < rows * cols; i++) W[i] = (float)(0.05 * nrand());
    double *H = malloc(sizeof(double) * cols * cols);
    direct_hessian(X, n, cols, H);
    int8_t *want = malloc((size_t)rows * cols), *got = malloc((size_t)rows * cols);
    ref_gptq(W, rows, cols, H, gs, actorder, 0, 0, want);
    float sc[24 * 3], zp[24 * 3];
    lq_gptq_params p = {.bits = 4, .group_size = gs, .damp = 0.01, .block_size = 32,
                        .actorder = actorder ? LQ_GPTQ_ACTORDER_WEIGHT : LQ_GPTQ_ACTORDER_NONE};
    lq_gptq_linear_stat st;
    cr_assert_eq(lq_gptq_quantize_linear(W, rows, cols, H, &p, got, sc, zp, &st), LQ_OK, "%s", lq_last_error());
    int diff = 0, moved = 0;
    for (int i = 0; i < rows * cols; i++) {
        diff += want[i] != got[i];
        moved += got[i] != ref_code(W[i], sc[(i / cols) * 3 + (i % cols) / gs]);
    }
    cr_expect_eq(diff, 0, "%d of %d codes differ from the reference", diff, rows * cols);
    cr_expect_gt(moved, rows * cols / 20, "GPTQ changed only %d codes from RTN", moved); /* it did work */
    cr_expect_eq(st.dead_cols, 1);
    cr_expect_eq(st.retries, 0);
    for (int r = 0; r < rows; r++) {
        cr_expect_eq(got[r * cols + dead_col], 0, "a dead column's weight is zeroed (code 0)");
        cr_expect_eq(sc[r * 3], ref_scale(W + r * cols, gs), "scales: RTN's of the original weight");
    }
    free(X);
    free(W);
    free(H);
    free(want);
    free(got);
}

Test(gptq, same_codes_as_reference) { against_reference(false); }
Test(gptq, same_codes_as_reference_actorder) { against_reference(true); }

/* Joint SparseGPT + GPTQ 2:4 (llm-compressor's 2:4 + W4A16 in one sweep): the same codes as the
 * reference, exactly 2 of every 4 weights pruned to the code of 0 in every row, and the kept ones
 * still GPTQ's (not RTN's). */
Test(gptq, joint_two_four_same_codes_as_reference) {
    const int n = 400, rows = 24, cols = 96, gs = 32;
    g_rng = 11;
    float *X = make_inputs(n, cols, -1);
    float *W = malloc(sizeof(float) * rows * cols);
    for (int i = 0; i < rows * cols; i++) W[i] = (float)(0.05 * nrand());
    double *H = malloc(sizeof(double) * cols * cols);
    direct_hessian(X, n, cols, H);
    int8_t *want = malloc((size_t)rows * cols), *got = malloc((size_t)rows * cols);
    ref_gptq(W, rows, cols, H, gs, false, 2, 4, want);
    float sc[24 * 3], zp[24 * 3];
    lq_gptq_params p = {.bits = 4, .group_size = gs, .damp = 0.01, .block_size = 32, .nm_n = 2, .nm_m = 4};
    lq_gptq_linear_stat st;
    cr_assert_eq(lq_gptq_quantize_linear(W, rows, cols, H, &p, got, sc, zp, &st), LQ_OK, "%s", lq_last_error());
    int diff = 0, moved = 0;
    for (int i = 0; i < rows * cols; i++) diff += want[i] != got[i];
    cr_expect_eq(diff, 0, "%d of %d codes differ from the reference", diff, rows * cols);
    cr_expect_eq(st.pruned, rows * cols / 2);
    for (int r = 0; r < rows; r++)
        for (int g = 0; g < cols; g += 4) {
            int zeros = 0;
            for (int q = 0; q < 4; q++) {
                const int i = r * cols + g + q;
                zeros += got[i] == 0;
                moved += got[i] != 0 && got[i] != ref_code(W[i], sc[r * 3 + (g + q) / gs]);
            }
            cr_assert_geq(zeros, 2, "row %d columns %d..%d: %d zeros", r, g, g + 3, zeros);
        }
    cr_expect_gt(moved, rows * cols / 20, "the kept weights moved from RTN in only %d places", moved);
    /* asymmetric groups: a pruned weight is the zero point's code, exactly 0 dequantized; and the
     * same codes on 1 and 2 threads */
    int8_t *one = malloc((size_t)rows * cols), *two = malloc((size_t)rows * cols);
    float zp1[24 * 3], sc1[24 * 3];
    p.asym = true;
    cr_assert_eq(lq_gptq_quantize_linear(W, rows, cols, H, &p, one, sc1, zp1, &st), LQ_OK, "%s", lq_last_error());
    cr_expect_eq(st.pruned, rows * cols / 2);
    lq_pool *pool = lq_pool_create(2);
    p.pool = pool;
    cr_assert_eq(lq_gptq_quantize_linear(W, rows, cols, H, &p, two, sc, zp, &st), LQ_OK, "%s", lq_last_error());
    lq_pool_free(pool);
    p.pool = NULL;
    cr_expect_eq(memcmp(one, two, (size_t)rows * cols), 0, "1 and 2 threads differ");
    for (int r = 0; r < rows; r++)
        for (int g = 0; g < cols; g += 4) {
            int exact_zeros = 0;
            for (int q = 0; q < 4; q++) {
                const int k = r * 3 + (g + q) / gs;
                exact_zeros += ((float)one[r * cols + g + q] - zp1[k]) * sc1[k] == 0.0f;
            }
            cr_assert_geq(exact_zeros, 2, "asym row %d columns %d..%d", r, g, g + 3);
        }
    free(one);
    free(two);
    p.asym = false;
    /* refused with activation order, or a group that does not divide the columns */
    p.actorder = LQ_GPTQ_ACTORDER_WEIGHT;
    cr_expect_eq(lq_gptq_quantize_linear(W, rows, cols, H, &p, got, sc, zp, &st), LQ_ERR_INVALID_ARG);
    p.actorder = LQ_GPTQ_ACTORDER_NONE;
    p.nm_m = 5;
    cr_expect_eq(lq_gptq_quantize_linear(W, rows, cols, H, &p, got, sc, zp, &st), LQ_ERR_INVALID_ARG);
    free(X);
    free(W);
    free(H);
    free(want);
    free(got);
}

/* A diagonal Hessian has no correlations to exploit: GPTQ is RTN, byte for byte the W4A16
 * format's own quantize_ref (so the packed codes are the layout the writer stores). */
Test(gptq, diagonal_hessian_is_rtn) {
    const int rows = 16, cols = 64;
    g_rng = 3;
    float *W = malloc(sizeof(float) * rows * cols);
    for (int i = 0; i < rows * cols; i++) W[i] = (float)nrand();
    double *H = calloc((size_t)cols * cols, sizeof(double));
    for (int i = 0; i < cols; i++) H[i * cols + i] = 1.0 + i;
    int8_t codes[16 * 64];
    float sc[16 * 2], zp[16 * 2];
    lq_gptq_params p = {.bits = 4, .group_size = 32, .asym = true};
    lq_gptq_linear_stat st;
    cr_assert_eq(lq_gptq_quantize_linear(W, rows, cols, H, &p, codes, sc, zp, &st), LQ_OK);
    lq_quant_params qp = {.group_size = 32, .asym = 1};
    size_t rb;
    int64_t n0, n1;
    cr_assert(lq_wfmt_sizes(LQ_WFMT_W4A16, rows, cols, &qp, &rb, &n0, &n1));
    uint8_t *pay = malloc(rows * rb), *mine = malloc(rows * rb);
    float *a0 = malloc(sizeof(float) * n0), *a1 = malloc(sizeof(float) * n1);
    lq_weight w = {.fmt = LQ_WFMT_W4A16, .rows = rows, .cols = cols, .row_bytes = rb, .data = pay};
    w.aux[0] = a0;
    w.aux[1] = a1;
    lq_wfmt_get(LQ_WFMT_W4A16)->quantize_ref(W, &qp, &w);
    lq_ct_pack_int32(codes, rows, cols, 4, 1, (int32_t *)mine);
    cr_expect_eq(memcmp(pay, mine, rows * rb), 0, "payload differs from quantize_ref's");
    cr_expect_eq(memcmp(a0, sc, sizeof(float) * n0), 0, "scales differ");
    cr_expect_eq(memcmp(a1, zp, sizeof(float) * n1), 0, "zero points differ");
    free(W);
    free(H);
    free(pay);
    free(mine);
    free(a0);
    free(a1);
}

Test(gptq, same_bytes_at_any_thread_count) {
    const int n = 333, rows = 70, cols = 130;
    g_rng = 11;
    float *X = make_inputs(n, cols, -1);
    float *W = malloc(sizeof(float) * rows * cols);
    for (int i = 0; i < rows * cols; i++) W[i] = (float)nrand();
    lq_pool *pool = lq_pool_create(3);
    cr_assert_not_null(pool);
    lq_gptq_hessian h1, h3;
    hessian_of(X, n, cols, NULL, &h1);
    hessian_of(X, n, cols, pool, &h3);
    cr_expect_eq(memcmp(h1.h, h3.h, sizeof(double) * cols * cols), 0, "Hessian bytes depend on the threads");
    int8_t *c1 = malloc((size_t)rows * cols), *c3 = malloc((size_t)rows * cols);
    float s1[70 * 2], s3[70 * 2], z1[70 * 2], z3[70 * 2];
    lq_gptq_params p = {.bits = 4, .group_size = 65, .actorder = LQ_GPTQ_ACTORDER_WEIGHT, .block_size = 16};
    lq_gptq_linear_stat st1, st3;
    cr_assert_eq(lq_gptq_quantize_linear(W, rows, cols, h1.h, &p, c1, s1, z1, &st1), LQ_OK);
    p.pool = pool;
    cr_assert_eq(lq_gptq_quantize_linear(W, rows, cols, h1.h, &p, c3, s3, z3, &st3), LQ_OK);
    cr_expect_eq(memcmp(c1, c3, (size_t)rows * cols), 0);
    cr_expect_eq(st1.loss, st3.loss);
    lq_pool_free(pool);
    lq_gptq_hessian_free(&h1);
    lq_gptq_hessian_free(&h3);
    free(X);
    free(W);
    free(c1);
    free(c3);
}

/* A Hessian that needs more dampening: the failed attempt is undone from H's untouched upper
 * triangle (no copy of H is kept), so the retry gives the very bytes of a first attempt at the
 * larger dampening, and U^T U is the inverse of the dampened H. */
Test(gptq, retry_after_failed_cholesky_starts_from_the_original) {
    enum { n = 24 };
    static double D[n], M[n * n], H[n * n], H1[n * n], H2[n * n];
    g_rng = 5;
    for (int i = 0; i < n; i++) D[i] = i == n - 1 ? -1.0 : 1.0 + 0.1 * i; /* one negative eigenvalue */
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) M[a * n + b] = a == b ? 1.0 : b < a ? 0.3 * nrand() : 0.0;
    for (int a = 0; a < n; a++) /* H = M D M^T: indefinite (Sylvester), symmetric */
        for (int b = 0; b < n; b++) {
            double v = 0.0;
            for (int k = 0; k < n; k++) v += M[a * n + k] * D[k] * M[b * n + k];
            H[a * n + b] = v;
        }
    for (int a = 0; a < n; a++)
        for (int b = 0; b < a; b++) H[a * n + b] = H[b * n + a]; /* exactly symmetric */
    memcpy(H1, H, sizeof H);
    lq_gptq_linear_stat st1 = {0}, st2 = {0};
    cr_assert_eq(lq_gptq_factorize(H1, n, 0.01, &st1), LQ_OK);
    cr_assert_geq(st1.retries, 1, "the construction must need a retry");
    cr_assert(!st1.rtn_fallback);
    memcpy(H2, H, sizeof H);
    cr_assert_eq(lq_gptq_factorize(H2, n, st1.damp, &st2), LQ_OK);
    cr_expect_eq(st2.retries, 0);
    cr_expect_eq(memcmp(H1, H2, sizeof H1), 0, "a retry differs from a first attempt at the same dampening");
    double mean = 0.0;
    for (int i = 0; i < n; i++) mean += H[i * n + i] / n;
    for (int a = 0; a < n; a++) /* (U^T U)(H + damp mean I) = I */
        for (int b = 0; b < n; b++) {
            double v = 0.0;
            for (int k = 0; k < n; k++) {
                double inv = 0.0; /* (U^T U)[a][k] */
                for (int q = 0; q <= (a < k ? a : k); q++) inv += H1[q * n + a] * H1[q * n + k];
                v += inv * (H[k * n + b] + (k == b ? st1.damp * mean : 0.0));
            }
            cr_assert(fabs(v - (a == b)) < 1e-8, "(U^T U) H_damp [%d][%d] = %.12g", a, b, v);
        }
    for (int a = 0; a < n; a++)
        for (int b = 0; b < a; b++) cr_assert_eq(H1[a * n + b], 0.0, "U has a nonzero below the diagonal");
}

/* An indefinite "Hessian" (not from any X): the retries are counted, then RTN. */
Test(gptq, failed_cholesky_retries_then_falls_back) {
    const int rows = 4, cols = 8;
    float W[32];
    for (int i = 0; i < 32; i++) W[i] = (float)(i % 5) - 2.0f;
    double H[64] = {0};
    for (int i = 0; i < cols; i++) H[i * cols + i] = 1.0;
    H[0 * cols + 1] = H[1 * cols + 0] = 1e6; /* far from positive definite */
    int8_t codes[32];
    float sc[4], zp[4];
    lq_gptq_params p = {.bits = 4, .group_size = 0};
    lq_gptq_linear_stat st;
    cr_assert_eq(lq_gptq_quantize_linear(W, rows, cols, H, &p, codes, sc, zp, &st), LQ_OK);
    cr_expect_eq(st.retries, 4);
    cr_expect(st.rtn_fallback);
    for (int i = 0; i < 32; i++) cr_expect_eq(codes[i], ref_code(W[i], sc[i / cols]));
}

Test(gptq, nan_activation_named) {
    lq_gptq_hessian h;
    cr_assert_eq(lq_gptq_hessian_init(&h, 4), LQ_OK);
    float x[8] = {1, 2, 3, 4, 5, NAN, 7, 8};
    cr_expect_eq(lq_gptq_hessian_add(&h, x, 2, NULL, "layer 3 (model.layers.3.mlp.down_proj)"), LQ_ERR_FORMAT);
    cr_expect(strstr(lq_last_error(), "layer 3 (model.layers.3.mlp.down_proj)") != NULL, "%s", lq_last_error());
    cr_expect(strstr(lq_last_error(), "token 1, column 1") != NULL, "%s", lq_last_error());
    lq_gptq_hessian_free(&h);
}
