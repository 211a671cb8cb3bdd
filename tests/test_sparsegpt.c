/* test_sparsegpt.c - Wanda's mask and SparseGPT's sweep of one Linear against plain
 * double-precision implementations written here from the papers / llm-compressor 0.14's
 * wanda_sparsify.py and sgpt_sparsify.py: no lazy batching, no LAPACK (Gauss-Jordan inverse and
 * a textbook Cholesky), every update applied to every later column at once.
 * Properties checked on every output: exact sparsity (per row for Wanda, per block for
 * SparseGPT), every N:M group holding exactly N kept weights, pruned weights exactly 0.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libquant/lq_sparsegpt.h"

static uint64_t g_rng = 0x1234567ull;

static double urand(void) { /* splitmix64 -> [0, 1) */
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

static double nrand(void) { return sqrt(-2.0 * log(urand() + 1e-300)) * cos(6.283185307179586 * urand()); }

static void rand_w(float *W, int64_t n) {
    for (int64_t i = 0; i < n; i++) W[i] = (float)(nrand() * 0.1);
}

/* X: n x cols with per-column scales (some columns matter far more than others), column `dead`
 * all zero (-1: none); H = 2 X^T X. */
static void make_h(int64_t n, int64_t cols, int64_t dead, double *H, double *sumsq) {
    double *X = malloc((size_t)(n * cols) * sizeof *X), *sc = malloc((size_t)cols * sizeof *sc);
    for (int64_t c = 0; c < cols; c++) sc[c] = exp(2.0 * nrand());
    for (int64_t t = 0; t < n; t++)
        for (int64_t c = 0; c < cols; c++) X[t * cols + c] = c == dead ? 0.0 : sc[c] * nrand();
    for (int64_t a = 0; a < cols; a++) {
        if (sumsq) sumsq[a] = 0.0;
        for (int64_t b = 0; b < cols; b++) {
            double s = 0.0;
            for (int64_t t = 0; t < n; t++) s += X[t * cols + a] * X[t * cols + b];
            if (H) H[a * cols + b] = 2.0 * s;
            if (sumsq && a == b) sumsq[a] = s;
        }
    }
    free(X);
    free(sc);
}

/* rank of element j among n scores (ascending, ties by index): the k lowest are those of rank < k */
static int64_t rank_of(const double *s, int64_t n, int64_t j) {
    int64_t r = 0;
    for (int64_t i = 0; i < n; i++) r += s[i] < s[j] || (s[i] == s[j] && i < j);
    return r;
}

/* ---- Wanda ------------------------------------------------------------------------------------- */

static void wanda_ref(const float *W, int64_t rows, int64_t cols, const double *sumsq, double sp, int n, int m,
                      uint8_t *keep) {
    double s[256];
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++) s[c] = fabs((double)W[r * cols + c]) * sqrt(sumsq[c]);
        if (m > 0) {
            for (int64_t g = 0; g < cols; g += m)
                for (int j = 0; j < m; j++) keep[r * cols + g + j] = rank_of(s + g, m, j) >= m - n;
        } else {
            int64_t k = (int64_t)(cols * sp);
            for (int64_t c = 0; c < cols; c++) keep[r * cols + c] = rank_of(s, cols, c) >= k;
        }
    }
}

static void check_nm(const uint8_t *keep, int64_t rows, int64_t cols, int n, int m) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t g = 0; g < cols; g += m) {
            int k = 0;
            for (int j = 0; j < m; j++) k += keep[r * cols + g + j];
            cr_assert_eq(k, n, "row %lld group at %lld keeps %d, not %d", (long long)r, (long long)g, k, n);
        }
}

Test(wanda, unstructured_matches_reference_per_row) {
    enum { R = 7, C = 33 };
    float W[R * C];
    double ss[C];
    uint8_t got[R * C], want[R * C];
    rand_w(W, R * C);
    make_h(50, C, 3, NULL, ss); /* column 3 never active: its weights score 0 */
    for (int k = 0; k < 3; k++) {
        const double sp = k == 0 ? 0.5 : k == 1 ? 0.3 : 0.9;
        cr_assert(lq_wanda_mask(W, R, C, ss, sp, 0, 0, got));
        wanda_ref(W, R, C, ss, sp, 0, 0, want);
        for (int i = 0; i < R * C; i++) cr_assert_eq(got[i], want[i], "sparsity %g: weight %d", sp, i);
        for (int r = 0; r < R; r++) {
            int kept = 0;
            for (int c = 0; c < C; c++) kept += got[r * C + c];
            cr_assert_eq(kept, C - (int)(C * sp), "row %d keeps %d", r, kept);
            cr_assert_eq(got[r * C + 3], 0, "the dead column is pruned first");
        }
    }
}

Test(wanda, nm_matches_reference_every_group) {
    enum { R = 5, C = 32 };
    float W[R * C];
    double ss[C];
    uint8_t got[R * C], want[R * C];
    rand_w(W, R * C);
    make_h(40, C, -1, NULL, ss);
    static const int nm[][2] = {{2, 4}, {3, 8}, {1, 4}};
    for (int k = 0; k < 3; k++) {
        cr_assert(lq_wanda_mask(W, R, C, ss, 0.0, nm[k][0], nm[k][1], got));
        wanda_ref(W, R, C, ss, 0.0, nm[k][0], nm[k][1], want);
        for (int i = 0; i < R * C; i++) cr_assert_eq(got[i], want[i], "%d:%d weight %d", nm[k][0], nm[k][1], i);
        check_nm(got, R, C, nm[k][0], nm[k][1]);
    }
}

/* The activation norm changes the choice: a weight twice as large on a column ten times quieter
 * is pruned first (magnitude alone would prune the other). */
Test(wanda, activations_outweigh_magnitude) {
    const float W[4] = {0.2f, 0.1f, 0.5f, 0.6f};
    const double ss[4] = {1.0, 100.0, 100.0, 100.0};
    uint8_t keep[4];
    cr_assert(lq_wanda_mask(W, 1, 4, ss, 0.25, 0, 0, keep));
    cr_expect(keep[0] == 0 && keep[1] == 1, "pruned |0.2|*1 before |0.1|*10");
}

/* ---- SparseGPT ------------------------------------------------------------------------------- */

/* A (n x n) -> its inverse by Gauss-Jordan with partial pivoting. */
static void inverse(const double *A, int64_t n, double *inv) {
    double *M = malloc((size_t)(n * 2 * n) * sizeof *M);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < 2 * n; j++) M[i * 2 * n + j] = j < n ? A[i * n + j] : (j - n == i);
    for (int64_t c = 0; c < n; c++) {
        int64_t p = c;
        for (int64_t i = c + 1; i < n; i++)
            if (fabs(M[i * 2 * n + c]) > fabs(M[p * 2 * n + c])) p = i;
        for (int64_t j = 0; j < 2 * n; j++) {
            double t = M[c * 2 * n + j];
            M[c * 2 * n + j] = M[p * 2 * n + j];
            M[p * 2 * n + j] = t;
        }
        const double d = M[c * 2 * n + c];
        for (int64_t j = 0; j < 2 * n; j++) M[c * 2 * n + j] /= d;
        for (int64_t i = 0; i < n; i++) {
            if (i == c) continue;
            const double f = M[i * 2 * n + c];
            for (int64_t j = 0; j < 2 * n; j++) M[i * 2 * n + j] -= f * M[c * 2 * n + j];
        }
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) inv[i * n + j] = M[i * 2 * n + n + j];
    free(M);
}

/* U upper with A = U^T U (textbook Cholesky of A, transposed). */
static void upper_cholesky(const double *A, int64_t n, double *U) {
    memset(U, 0, (size_t)(n * n) * sizeof *U);
    for (int64_t j = 0; j < n; j++) {
        double s = A[j * n + j];
        for (int64_t k = 0; k < j; k++) s -= U[k * n + j] * U[k * n + j];
        U[j * n + j] = sqrt(s);
        for (int64_t i = j + 1; i < n; i++) {
            double t = A[j * n + i];
            for (int64_t k = 0; k < j; k++) t -= U[k * n + j] * U[k * n + i];
            U[j * n + i] = t / U[j * n + j];
        }
    }
}

/* SparseGPT, directly: every column's error applied to all later columns at once. */
static void sparsegpt_ref(const float *W0, int64_t rows, int64_t cols, const double *H0, double sp, int n, int m,
                          double damp, int64_t B, float *Wout, uint8_t *keep) {
    double *H = malloc((size_t)(cols * cols) * sizeof *H), *Hi = malloc((size_t)(cols * cols) * sizeof *Hi);
    double *U = malloc((size_t)(cols * cols) * sizeof *U), *w = malloc((size_t)(rows * cols) * sizeof *w);
    double *s = malloc((size_t)(rows * B) * sizeof *s);
    memcpy(H, H0, (size_t)(cols * cols) * sizeof *H);
    for (int64_t i = 0; i < rows * cols; i++) w[i] = W0[i];
    for (int64_t c = 0; c < cols; c++)
        if (H[c * cols + c] == 0.0) {
            H[c * cols + c] = 1.0;
            for (int64_t r = 0; r < rows; r++) w[r * cols + c] = 0.0;
        }
    double mean = 0.0;
    for (int64_t c = 0; c < cols; c++) mean += H[c * cols + c] / (double)cols;
    for (int64_t c = 0; c < cols; c++) H[c * cols + c] += damp * mean;
    inverse(H, cols, Hi);
    upper_cholesky(Hi, cols, U);
    memset(keep, 1, (size_t)(rows * cols));
    for (int64_t i1 = 0; i1 < cols; i1 += B) {
        const int64_t i2 = i1 + B < cols ? i1 + B : cols, cnt = i2 - i1;
        if (m == 0) {
            for (int64_t r = 0; r < rows; r++)
                for (int64_t c = 0; c < cnt; c++) {
                    const double d = U[(i1 + c) * cols + i1 + c], x = w[r * cols + i1 + c];
                    s[r * cnt + c] = x * x / (d * d);
                }
            const int64_t k = (int64_t)((double)(rows * cnt) * sp);
            for (int64_t j = 0; j < rows * cnt; j++)
                if (rank_of(s, rows * cnt, j) < k) keep[(j / cnt) * cols + i1 + j % cnt] = 0;
        }
        for (int64_t i = i1; i < i2; i++) {
            for (int64_t r = 0; r < rows; r++) {
                double *wr = w + r * cols;
                if (m > 0 && (i - i1) % m == 0) {
                    double g[64];
                    for (int j = 0; j < m; j++) {
                        const double d = U[(i + j) * cols + i + j];
                        g[j] = wr[i + j] * wr[i + j] / (d * d);
                    }
                    for (int j = 0; j < m; j++) keep[r * cols + i + j] = rank_of(g, m, j) >= m - n;
                }
                const double q = keep[r * cols + i] ? wr[i] : 0.0, err = (wr[i] - q) / U[i * cols + i];
                wr[i] = q;
                for (int64_t j = i + 1; j < cols; j++) wr[j] -= err * U[i * cols + j];
            }
        }
    }
    for (int64_t i = 0; i < rows * cols; i++) Wout[i] = keep[i] ? (float)w[i] : 0.0f;
    free(H);
    free(Hi);
    free(U);
    free(w);
    free(s);
}

static void check_sparsegpt(int64_t dead, double sp, int n, int m, lq_pool *pool) {
    enum { R = 9, C = 40, B = 16 };
    static float W0[R * C], got[R * C], want[R * C];
    static double H[C * C];
    static uint8_t kg[R * C], kw[R * C];
    rand_w(W0, R * C);
    make_h(80, C, dead, H, NULL);
    memcpy(got, W0, sizeof W0);
    lq_sparsegpt_params p = {.sparsity = sp, .nm_n = n, .nm_m = m, .damp = 0.01, .block_size = B, .pool = pool};
    lq_sparsegpt_stat st;
    cr_assert_eq(lq_sparsegpt_prune_linear(got, R, C, H, &p, kg, &st), LQ_OK, "%s", lq_last_error());
    sparsegpt_ref(W0, R, C, H, sp, n, m, 0.01, B, want, kw);
    cr_expect_eq(st.dead_cols, dead >= 0 ? 1 : 0);
    cr_expect_eq(st.retries, 0);
    for (int i = 0; i < R * C; i++) {
        cr_assert_eq(kg[i], kw[i], "mask differs at row %d col %d", i / C, i % C);
        cr_assert(fabsf(got[i] - want[i]) <= 1e-6f + 1e-5f * fabsf(want[i]), "weight %d: %.9g vs reference %.9g", i,
                  (double)got[i], (double)want[i]);
        if (!kg[i]) cr_assert_eq(got[i], 0.0f);
    }
    if (m > 0) {
        check_nm(kg, R, C, n, m);
    } else {
        for (int64_t i1 = 0; i1 < C; i1 += B) { /* exact per block: floor(rows * count * sparsity) */
            int64_t cnt = i1 + B < C ? B : C - i1, z = 0;
            for (int64_t r = 0; r < R; r++)
                for (int64_t c = i1; c < i1 + cnt; c++) z += !kg[r * C + c];
            cr_assert_eq(z, (int64_t)(R * cnt * sp), "block at %lld prunes %lld", (long long)i1, (long long)z);
        }
    }
    /* the update makes up for what was pruned: the kept weights moved */
    int moved = 0;
    for (int i = 0; i < R * C; i++) moved += kg[i] && got[i] != W0[i];
    cr_expect_gt(moved, R * C / 4);
}

Test(sparsegpt, unstructured_matches_reference) { check_sparsegpt(-1, 0.5, 0, 0, NULL); }
Test(sparsegpt, unstructured_dead_column_matches_reference) { check_sparsegpt(5, 0.5, 0, 0, NULL); }
Test(sparsegpt, other_sparsity_matches_reference) { check_sparsegpt(-1, 0.3, 0, 0, NULL); }
Test(sparsegpt, two_four_matches_reference) { check_sparsegpt(-1, 0.0, 2, 4, NULL); }
Test(sparsegpt, four_eight_dead_column_two_threads) {
    lq_pool *pool = lq_pool_create(2);
    check_sparsegpt(7, 0.0, 4, 8, pool);
    lq_pool_free(pool);
}

/* Bytes do not depend on the pool. */
Test(sparsegpt, same_bytes_at_any_thread_count) {
    enum { R = 40, C = 48 };
    static float W0[R * C], a[R * C], b[R * C];
    static double H[C * C];
    static uint8_t ka[R * C], kb[R * C];
    rand_w(W0, R * C);
    make_h(100, C, -1, H, NULL);
    memcpy(a, W0, sizeof W0);
    memcpy(b, W0, sizeof W0);
    lq_sparsegpt_params p = {.sparsity = 0.5, .block_size = 16};
    lq_sparsegpt_stat st;
    cr_assert_eq(lq_sparsegpt_prune_linear(a, R, C, H, &p, ka, &st), LQ_OK);
    lq_pool *pool = lq_pool_create(3);
    p.pool = pool;
    cr_assert_eq(lq_sparsegpt_prune_linear(b, R, C, H, &p, kb, &st), LQ_OK);
    lq_pool_free(pool);
    cr_expect_eq(memcmp(a, b, sizeof a), 0);
    cr_expect_eq(memcmp(ka, kb, sizeof ka), 0);
}

Test(sparsegpt, bad_parameters_refused) {
    float W[8] = {0};
    double H[16] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
    uint8_t k[8];
    lq_sparsegpt_stat st;
    lq_sparsegpt_params p = {.sparsity = 1.0};
    cr_expect_eq(lq_sparsegpt_prune_linear(W, 2, 4, H, &p, k, &st), LQ_ERR_INVALID_ARG);
    p = (lq_sparsegpt_params){.nm_n = 2, .nm_m = 3};
    cr_expect_eq(lq_sparsegpt_prune_linear(W, 2, 4, H, &p, k, &st), LQ_ERR_INVALID_ARG);
    cr_expect(strstr(lq_last_error(), "2:3") != NULL, "%s", lq_last_error());
}
