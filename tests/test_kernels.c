/* test_kernels.c - every fast CPU kernel against its scalar _ref twin, and the f16/bf16
 * conversions against the IEEE definitions and known constants.
 *
 * Tolerances: matvec/matmul use the traits table (tol_atol + tol_rtol * sum|W x|, explained in
 * kernels/cpu/format_table.c). Element-wise ops state theirs next to each test. On failure the
 * first mismatching index and both values are printed.
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

#define KT_RNG_SEED 0x9e3779b97f4a7c15ull
#include "kern_test_util.h"

static const int64_t k_cols[] = {1, 3, 7, 8, 15, 16, 17, 31, 33, 127, 129, 1023, 4099};
#define N_COLS (sizeof k_cols / sizeof k_cols[0])

/* ---- helpers -------------------------------------------------------------------------------- */

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* A rows x cols weight of format fmt with random values in [-1, 1], plus the exact f32 values
 * it holds (for the per-row absolute sums that scale the tolerance). row_pad adds bytes after
 * each row to exercise the row_bytes stride. The buffer is exactly rows*row_bytes so ASan sees
 * any read past the last row. */
typedef struct test_weight {
    lq_weight w;
    void *buf;
    float *vals; /* (rows, cols) */
} test_weight;

static size_t elem_size(lq_wfmt f) { return f == LQ_WFMT_F32 ? 4 : 2; }

static test_weight make_weight(lq_wfmt fmt, int64_t rows, int64_t cols, size_t row_pad) {
    test_weight t = {0};
    size_t rb = (size_t)cols * elem_size(fmt) + row_pad;
    t.buf = malloc((size_t)rows * rb);
    t.vals = malloc((size_t)(rows * cols) * sizeof(float));
    cr_assert(t.buf && t.vals);
    for (int64_t r = 0; r < rows; r++) {
        char *row = (char *)t.buf + (size_t)r * rb;
        memset(row, 0xff, rb); /* padding is NaN-ish garbage: must never be read */
        for (int64_t c = 0; c < cols; c++) {
            float v = rng_f(-1.0f, 1.0f);
            if (fmt == LQ_WFMT_F32) { ((float *)row)[c] = v; }
            else if (fmt == LQ_WFMT_F16) { ((uint16_t *)row)[c] = lq_f32_to_f16(v); v = lq_f16_to_f32(lq_f32_to_f16(v)); }
            else { ((uint16_t *)row)[c] = lq_f32_to_bf16(v); v = lq_bf16_to_f32(lq_f32_to_bf16(v)); }
            t.vals[r * cols + c] = v;
        }
    }
    t.w = (lq_weight){.fmt = fmt, .rows = rows, .cols = cols, .data = t.buf, .row_bytes = rb};
    return t;
}

static void free_weight(test_weight *t) { free(t->buf); free(t->vals); }

/* scale[r] = sum_c |W[r][c] x[c]| for r in [r0, r1) */
static void abs_sums(const test_weight *t, const float *x, int64_t r0, int64_t r1, double *scale) {
    for (int64_t r = r0; r < r1; r++) {
        double s = 0;
        for (int64_t c = 0; c < t->w.cols; c++) s += fabs((double)t->vals[r * t->w.cols + c] * x[c]);
        scale[r - r0] = s;
    }
}

/* ---- traits table --------------------------------------------------------------------------- */

Test(format, table_rows) {
    const char *names[] = {"f32", "f16", "bf16", "w8a16", "w4a16", "fp8_e4m3", "w8a8",
                           "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl",
                           "q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "iq4_xs", "w3a16"};
    cr_assert_eq(sizeof names / sizeof names[0], (size_t)LQ_WFMT_COUNT, "a format without a test row");
    for (int f = 0; f < LQ_WFMT_COUNT; f++) {
        const lq_wfmt_traits *t = lq_wfmt_get((lq_wfmt)f);
        cr_assert_not_null(t);
        cr_assert_str_eq(t->name, names[f]);
        cr_assert(t->matvec && t->matvec_ref && t->dequant && t->dequant_ref);
        /* W8A8 is bit-exact (tolerance 0); every other row sums floats in a different order */
        cr_assert(t->tol_rtol >= 0 && t->tol_rtol < 1e-3);
        cr_assert(f == LQ_WFMT_W8A8 || t->tol_rtol > 0);
        /* the float formats are stored, the others quantized */
        cr_assert_eq(t->quantize_ref != NULL, f > LQ_WFMT_BF16, "%s quantize_ref", t->name);
        /* at most about a step of a 4-bit code (Q4_0: 1/8 of the block's max |w|; IQ4_NL's
         * least-squares scale may clip a little more, format_table.c); 2- and 3-bit codes
         * (Q2_K, Q3_K, W3A16) about a step of theirs */
        const double rt_max = (f == LQ_WFMT_Q2_K || f == LQ_WFMT_Q3_K || f == LQ_WFMT_W3A16) ? 0.6 : 0.2;
        cr_assert(f <= LQ_WFMT_BF16 || (t->roundtrip_rtol > 0 && t->roundtrip_rtol < rt_max));
        cr_assert_eq(lq_wfmt_from_name(names[f]), (lq_wfmt)f);
    }
    cr_assert_float_eq(lq_wfmt_get(LQ_WFMT_F16)->bits_per_weight, 16.0, 0.0);
    cr_assert_null(lq_wfmt_get(LQ_WFMT_COUNT));
    cr_assert_null(lq_wfmt_get((lq_wfmt)-1));
    cr_assert_eq(lq_wfmt_from_name("q4_k"), LQ_WFMT_COUNT);
    cr_assert_eq(lq_wfmt_from_name(NULL), LQ_WFMT_COUNT);
}

/* ---- matvec / dequant: fast vs ref ---------------------------------------------------------- */

static void check_matmul(lq_wfmt fmt, int64_t rows, int64_t cols);

static void check_matvec_format(lq_wfmt fmt) {
    const lq_wfmt_traits *tr = lq_wfmt_get(fmt);
    for (size_t ci = 0; ci < N_COLS; ci++) {
        const int64_t cols = k_cols[ci];
        /* all rows 1..67 for narrow matrices; a spread for the wide ones (keeps the ref fast) */
        for (int64_t rows = 1; rows <= 67; rows += (cols >= 1023 ? 11 : 1)) {
            test_weight t = make_weight(fmt, rows, cols, (rows % 3 == 0) ? 8 : 0);
            float *x = malloc((size_t)cols * sizeof(float));
            float *yf = malloc((size_t)rows * sizeof(float)), *yr = malloc((size_t)rows * sizeof(float));
            double *scale = malloc((size_t)rows * sizeof(double));
            fill(x, cols, -1.0f, 1.0f);
            /* whole range, then a sub-range starting at an odd row (as matmul blocks do) */
            for (int pass = 0; pass < 2; pass++) {
                int64_t r0 = pass ? rows / 3 : 0, r1 = pass ? rows - rows / 5 : rows;
                if (r1 <= r0) continue;
                tr->matvec(&t.w, x, yf, r0, r1);
                tr->matvec_ref(&t.w, x, yr, r0, r1);
                abs_sums(&t, x, r0, r1, scale);
                char what[96];
                snprintf(what, sizeof what, "%s matvec rows [%lld,%lld) of %lld x %lld", tr->name,
                         (long long)r0, (long long)r1, (long long)rows, (long long)cols);
                EXPECT_CLOSE(what, yf, yr, scale, r1 - r0, tr->tol_atol, tr->tol_rtol);
            }
            /* dequant: conversions are exact, so fast and ref must agree bit for bit, and both
             * must equal the exactly converted values we stored */
            float *df = malloc((size_t)(rows * cols) * sizeof(float));
            float *dr = malloc((size_t)(rows * cols) * sizeof(float));
            tr->dequant(&t.w, 0, rows, df);
            tr->dequant_ref(&t.w, 0, rows, dr);
            cr_assert_eq(memcmp(df, dr, (size_t)(rows * cols) * sizeof(float)), 0,
                         "%s dequant %lld x %lld: fast differs from ref", tr->name, (long long)rows,
                         (long long)cols);
            cr_assert_eq(memcmp(dr, t.vals, (size_t)(rows * cols) * sizeof(float)), 0,
                         "%s dequant_ref differs from the stored values", tr->name);
            free(df); free(dr);
            free(x); free(yf); free(yr); free(scale);
            free_weight(&t);
        }
    }
}

/* Every ISA level this CPU runs (AVX2, and AVX-512 where present) against the same _ref; on a
 * CPU without AVX-512 only the AVX2 level runs (as in test_int_act.c). */
static void check_matvec_every_level(lq_wfmt fmt) {
    const lq_isa best = lq_cpu_isa();
    for (int isa = best >= LQ_ISA_AVX2 ? LQ_ISA_AVX2 : LQ_ISA_SCALAR; isa <= (int)best; isa++) {
        cr_assert_eq(lq_kernels_set_isa((lq_isa)isa), (lq_isa)isa);
        check_matvec_format(fmt);
        check_matmul(fmt, 67, 129);
    }
    lq_kernels_set_isa(best);
}

Test(matvec, f32) { check_matvec_every_level(LQ_WFMT_F32); }
Test(matvec, f16) { check_matvec_every_level(LQ_WFMT_F16); }
Test(matvec, bf16) { check_matvec_every_level(LQ_WFMT_BF16); }

/* A row that cancels to ~0: the tolerance is relative to sum|W x|, not |y|, so tiny results
 * with large terms still pass, and a wrong product would not (it is ~1/cols of the sum). */
Test(matvec, cancellation) {
    const int64_t cols = 1000;
    float *w = malloc(cols * sizeof(float)), *x = malloc(cols * sizeof(float));
    for (int64_t c = 0; c < cols; c++) { w[c] = (c & 1) ? -1.0f : 1.0f; x[c] = 1.0f + (float)c; }
    /* exact answer: sum over pairs (c, c+1) of (1+c) - (2+c) = -1 each: -500 */
    lq_weight W = {.fmt = LQ_WFMT_F32, .rows = 1, .cols = cols, .data = w, .row_bytes = cols * 4};
    float y = 0;
    lq_wfmt_get(LQ_WFMT_F32)->matvec(&W, x, &y, 0, 1);
    cr_assert_float_eq(y, -500.0f, 0.0f, "alternating row: got %.9g, want -500", y);
    free(w); free(x);
}

/* ---- gemm (several tokens, lq_gemm_fn) vs matvec_ref per token ------------------------------ */

/* Every (row, token) element against matvec_ref within the row's tolerance; and, because each
 * element is one chain whatever its tile, bit for bit the same when the rows are cut at an odd
 * row and when each token runs alone (what makes a batched decode step independent of the batch
 * it shares and of the thread count). */
static void check_gemm_format(lq_wfmt fmt) {
    const lq_wfmt_traits *tr = lq_wfmt_get(fmt);
    if (!tr->gemm) return;
    const int64_t ns[] = {2, 3, 4, 5, 8, 13, LQ_GEMM_SMALL_MAX};
    for (size_t ci = 0; ci < N_COLS; ci++) {
        const int64_t cols = k_cols[ci], rows = cols >= 1023 ? 13 : 7 + (int64_t)ci;
        test_weight t = make_weight(fmt, rows, cols, ci % 2 ? 8 : 0);
        for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++) {
            const int64_t n = ns[b];
            float *X = malloc((size_t)(n * cols) * sizeof(float));
            float *Y = malloc((size_t)(n * rows) * sizeof(float)), *Ys = malloc((size_t)(n * rows) * sizeof(float));
            float *Yr = malloc((size_t)(n * rows) * sizeof(float));
            double *scale = malloc((size_t)(n * rows) * sizeof(double));
            fill(X, n * cols, -1.0f, 1.0f);
            for (int64_t i = 0; i < n * rows; i++) Y[i] = Ys[i] = NAN; /* every output must be written */
            tr->gemm(&t.w, X, n, Y, rows, 0, rows);
            for (int64_t i = 0; i < n; i++) {
                tr->matvec_ref(&t.w, X + i * cols, Yr + i * rows, 0, rows);
                abs_sums(&t, X + i * cols, 0, rows, scale + i * rows);
            }
            char what[96];
            snprintf(what, sizeof what, "%s gemm n=%lld %lld x %lld", tr->name, (long long)n, (long long)rows,
                     (long long)cols);
            EXPECT_CLOSE(what, Y, Yr, scale, n * rows, tr->tol_atol, tr->tol_rtol);
            const int64_t cut = 3; /* odd: the row pairs of the two calls differ from the whole's */
            tr->gemm(&t.w, X, n, Ys, rows, 0, cut);
            tr->gemm(&t.w, X, n, Ys + cut, rows, cut, rows);
            cr_assert_eq(memcmp(Y, Ys, (size_t)(n * rows) * sizeof(float)), 0, "%s: rows cut at %lld change bits",
                         what, (long long)cut);
            for (int64_t i = 0; i < n; i++) tr->gemm(&t.w, X + i * cols, 1, Ys + i * rows, rows, 0, rows);
            cr_assert_eq(memcmp(Y, Ys, (size_t)(n * rows) * sizeof(float)), 0, "%s: one token at a time changes bits",
                         what);
            free(X); free(Y); free(Ys); free(Yr); free(scale);
        }
        free_weight(&t);
    }
}

/* an AVX2 CPU has the path (the check above would otherwise pass vacuously) */
static void gemm_present(lq_wfmt f) {
    if (lq_cpu_isa() >= LQ_ISA_AVX2) cr_assert_not_null(lq_wfmt_get(f)->gemm, "%s: no gemm on an AVX2 CPU", lq_wfmt_get(f)->name);
}

/* at every ISA level this CPU runs (the AVX-512 level has its own 16-lane gemm) */
static void check_gemm_every_level(lq_wfmt f) {
    const lq_isa best = lq_cpu_isa();
    for (int isa = best >= LQ_ISA_AVX2 ? LQ_ISA_AVX2 : LQ_ISA_SCALAR; isa <= (int)best; isa++) {
        cr_assert_eq(lq_kernels_set_isa((lq_isa)isa), (lq_isa)isa);
        check_gemm_format(f);
        gemm_present(f);
    }
    lq_kernels_set_isa(best);
    if (best < LQ_ISA_AVX512) cr_log_warn("no AVX-512 on this CPU: the 16-lane gemm was not run");
}

Test(gemm, f32) { check_gemm_every_level(LQ_WFMT_F32); }
Test(gemm, f16) { check_gemm_every_level(LQ_WFMT_F16); }
Test(gemm, bf16) { check_gemm_every_level(LQ_WFMT_BF16); }

/* ---- lq_matmul vs lq_matmul_ref ------------------------------------------------------------- */

/* sgemm sums the same products as matvec in a different blocked order with FMA, so the table
 * tolerance (relative to sum|W x|) applies unchanged. */
static void check_matmul(lq_wfmt fmt, int64_t rows, int64_t cols) {
    const int64_t ns[] = {1, 2, 5, 64, 130};
    const int threads[] = {1, 3};
    const lq_wfmt_traits *tr = lq_wfmt_get(fmt);
    test_weight t = make_weight(fmt, rows, cols, 0);
    for (size_t a = 0; a < sizeof threads / sizeof threads[0]; a++) {
        lq_pool *pool = lq_pool_create(threads[a]);
        cr_assert_not_null(pool);
        for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++) {
            const int64_t n = ns[b];
            float *X = malloc((size_t)(n * cols) * sizeof(float));
            float *Y = malloc((size_t)(n * rows) * sizeof(float)), *Yr = malloc((size_t)(n * rows) * sizeof(float));
            double *scale = malloc((size_t)(n * rows) * sizeof(double));
            fill(X, n * cols, -1.0f, 1.0f);
            for (int64_t i = 0; i < n * rows; i++) Y[i] = NAN; /* every output must be written */
            lq_matmul(pool, &t.w, X, n, Y);
            lq_matmul_ref(&t.w, X, n, Yr);
            for (int64_t i = 0; i < n; i++) abs_sums(&t, X + i * cols, 0, rows, scale + i * rows);
            char what[96];
            snprintf(what, sizeof what, "%s matmul n=%lld %lld x %lld threads=%d", tr->name,
                     (long long)n, (long long)rows, (long long)cols, threads[a]);
            EXPECT_CLOSE(what, Y, Yr, scale, n * rows, tr->tol_atol, tr->tol_rtol);
            free(X); free(Y); free(Yr); free(scale);
        }
        lq_pool_free(pool);
    }
    free_weight(&t);
}

Test(matmul, f32) { check_matmul(LQ_WFMT_F32, 67, 129); check_matmul(LQ_WFMT_F32, 257, 768); }
Test(matmul, f16) { check_matmul(LQ_WFMT_F16, 67, 129); check_matmul(LQ_WFMT_F16, 257, 768); }
Test(matmul, bf16) { check_matmul(LQ_WFMT_BF16, 67, 129); check_matmul(LQ_WFMT_BF16, 257, 768); }

Test(matmul, null_pool) {
    test_weight t = make_weight(LQ_WFMT_F16, 45, 33, 2);
    float X[3 * 33], Y[3 * 45], Yr[3 * 45];
    double scale[3 * 45];
    fill(X, 3 * 33, -1, 1);
    lq_matmul(NULL, &t.w, X, 3, Y);
    lq_matmul_ref(&t.w, X, 3, Yr);
    for (int i = 0; i < 3; i++) abs_sums(&t, X + i * 33, 0, 45, scale + i * 45);
    const lq_wfmt_traits *tr = lq_wfmt_get(LQ_WFMT_F16);
    EXPECT_CLOSE("f16 matmul null pool", Y, Yr, scale, 3 * 45, tr->tol_atol, tr->tol_rtol);
    free_weight(&t);
}

/* ---- element-wise ops ----------------------------------------------------------------------- */

/* rmsnorm: fast sums squares in f32 over 8 lanes x 4 chains (<= n/32 + 5 roundings), ref in
 * double; the scale's relative error is half that of the sum, then two f32 multiplies:
 * rtol 1e-5 bounds n <= 4099 with margin (worst case (128 + 5) / 2 * 2^-24 + 2 ulp = 5e-6). */
Test(ops, rmsnorm) {
    for (size_t i = 0; i < N_COLS; i++) {
        int64_t n = k_cols[i];
        float *x = malloc(n * 4), *w = malloc(n * 4), *of = malloc(n * 4), *orf = malloc(n * 4);
        fill(x, n, -3, 3); fill(w, n, 0.5f, 1.5f);
        lq_rmsnorm(of, x, w, n, 1e-5f);
        lq_rmsnorm_ref(orf, x, w, n, 1e-5f);
        char what[64]; snprintf(what, sizeof what, "rmsnorm n=%lld", (long long)n);
        EXPECT_CLOSE(what, of, orf, NULL, n, 1e-30, 1e-5);
        free(x); free(w); free(of); free(orf);
    }
}

/* dot: same argument as the matvec table tolerance: 2e-5 of sum |a b|. */
Test(ops, dot) {
    for (size_t i = 0; i < N_COLS; i++) {
        int64_t n = k_cols[i];
        float *a = malloc(n * 4), *b = malloc(n * 4);
        fill(a, n, -1, 1); fill(b, n, -1, 1);
        double abs = 0;
        for (int64_t k = 0; k < n; k++) abs += fabs((double)a[k] * b[k]);
        float f = lq_dot_f32(a, b, n), r = lq_dot_f32_ref(a, b, n);
        char what[64]; snprintf(what, sizeof what, "dot n=%lld", (long long)n);
        EXPECT_CLOSE(what, &f, &r, &abs, 1, 1e-6, 2e-5);
        free(a); free(b);
    }
}

/* axpy: fast uses one FMA (one rounding), ref a multiply then an add (two): they differ by at
 * most 1 ulp of a*x plus 1/2 ulp of the result: 2^-23 * (|a x| + |y|) bounds it. */
Test(ops, axpy) {
    for (size_t i = 0; i < N_COLS; i++) {
        int64_t n = k_cols[i];
        float *x = malloc(n * 4), *yf = malloc(n * 4), *yr = malloc(n * 4);
        double *scale = malloc(n * sizeof(double));
        fill(x, n, -2, 2); fill(yf, n, -2, 2);
        memcpy(yr, yf, n * 4);
        for (int64_t k = 0; k < n; k++) scale[k] = fabs(0.37 * x[k]) + fabs((double)yf[k]);
        lq_axpy_f32(yf, 0.37f, x, n);
        lq_axpy_f32_ref(yr, 0.37f, x, n);
        char what[64]; snprintf(what, sizeof what, "axpy n=%lld", (long long)n);
        EXPECT_CLOSE(what, yf, yr, scale, n, 0.0, 2.0 / 8388608.0);
        free(x); free(yf); free(yr); free(scale);
    }
}

/* softmax: each exp is within 2 ulp of expf (the approximation's bound); the f32 sums differ in
 * order (8 lanes vs sequential), a typical relative error of sqrt(n) * 2^-24 <= 4e-6 for
 * n <= 4099; then one multiply. rtol 1e-5 of each probability, atol 1e-9 for the tiny ones
 * (values below e^-87 are flushed to 0 by the fast exp). */
Test(ops, softmax) {
    for (size_t i = 0; i < N_COLS; i++) {
        int64_t n = k_cols[i];
        float *xf = malloc(n * 4), *xr = malloc(n * 4);
        fill(xf, n, -20, 20);
        if (n > 4) xf[n / 2] = -200.0f; /* exp underflows: must give ~0, not garbage */
        memcpy(xr, xf, n * 4);
        lq_softmax(xf, n);
        lq_softmax_ref(xr, n);
        char what[64]; snprintf(what, sizeof what, "softmax n=%lld", (long long)n);
        EXPECT_CLOSE(what, xf, xr, NULL, n, 1e-9, 1e-5);
        double s = 0;
        for (int64_t k = 0; k < n; k++) s += xf[k];
        cr_assert(fabs(s - 1.0) < 1e-5, "softmax n=%lld sums to %.9g", (long long)n, s);
        free(xf); free(xr);
    }
}

/* The fast exp against libm over the whole useful range, through softmax of two values:
 * softmax([0, t]) = [1/(1+e^t), e^t/(1+e^t)]; instead test swiglu, whose silu(g) = g/(1+e^-g)
 * exercises exp(-g) directly. Tolerance: 2 ulp of exp + 1 ulp div + 1 ulp mul -> 4 * 2^-24
 * relative, rounded up to 6e-7; atol 1e-30 for results flushed near 0 (g < -87). */
Test(ops, swiglu) {
    for (size_t i = 0; i < N_COLS; i++) {
        int64_t n = k_cols[i];
        float *gf = malloc(n * 4), *gr = malloc(n * 4), *up = malloc(n * 4);
        fill(gf, n, -30, 30); fill(up, n, -2, 2);
        memcpy(gr, gf, n * 4);
        lq_swiglu(gf, up, n);
        lq_swiglu_ref(gr, up, n);
        char what[64]; snprintf(what, sizeof what, "swiglu n=%lld", (long long)n);
        EXPECT_CLOSE(what, gf, gr, NULL, n, 1e-30, 6e-7);
        free(gf); free(gr); free(up);
    }
    /* dense sweep of g over [-87, 87] (exp(-g) from 6e-39 to 6e37) */
    enum { M = 100003 };
    float *gf = malloc(M * 4), *gr = malloc(M * 4), *up = malloc(M * 4);
    for (int k = 0; k < M; k++) { gf[k] = gr[k] = -87.0f + 174.0f * (float)k / (M - 1); up[k] = 1.0f; }
    lq_swiglu(gf, up, M);
    lq_swiglu_ref(gr, up, M);
    EXPECT_CLOSE("swiglu sweep", gf, gr, NULL, M, 1e-30, 6e-7);
    free(gf); free(gr); free(up);
}

/* GeGLU tanh against torch 2.14 (f32): torch.nn.functional.gelu(g, approximate='tanh') * u for
 * the g and u below, printed with %.9g. Both sides evaluate the same f32 formula with their own
 * tanhf (a few ulp apart): 1e-6 relative; atol for the exact zeros (gelu(-6) underflows to -0). */
Test(ops, geglu_tanh_matches_torch) {
    float g[] = {-6.0f, -3.0f, -1.5f, -1.0f, -0.5f, -0.1f, 0.0f, 0.1f, 0.5f, 1.0f, 1.5f, 3.0f, 6.0f};
    const float u[] = {1.0f, 0.5f, -2.0f, 1.0f, 3.0f, -1.0f, 7.0f, 2.0f, -0.25f, 1.0f, 0.75f, -1.5f, 2.0f};
    const float torch[] = {-0.0f, -0.00181871653f, 0.200856864f, -0.158807993f, -0.462857991f, 0.0460172482f, 0.0f,
                           0.107965507f, -0.0864285007f, 0.841192007f, 1.04967868f, -4.49454403f, 12.0f};
    const int64_t n = sizeof g / sizeof g[0];
    lq_geglu_tanh_ref(g, u, n);
    EXPECT_CLOSE("geglu_tanh vs torch", g, torch, NULL, n, 1e-12, 1e-6);
}

/* RoPE against a hand-computed rotation: position 1, one frequency of pi/2 turns (a, b) into
 * (-b, a); the pairing differs between the interleaved and the half-split layouts. */
Test(ops, rope_ref) {
    const float inv_freq[2] = {(float)(M_PI / 2), 0.0f};
    float x[4] = {1, 2, 3, 4};
    lq_rope_ref(x, 4, 1, inv_freq, 1); /* pairs (0,1) rotate by pi/2, (2,3) by 0 */
    cr_assert(fabsf(x[0] + 2) < 1e-6f && fabsf(x[1] - 1) < 1e-6f && x[2] == 3 && x[3] == 4,
              "interleaved: %g %g %g %g", x[0], x[1], x[2], x[3]);
    float y[4] = {1, 2, 3, 4};
    lq_rope_ref(y, 4, 1, inv_freq, 0); /* pairs (0,2) by pi/2, (1,3) by 0 */
    cr_assert(fabsf(y[0] + 3) < 1e-6f && fabsf(y[2] - 1) < 1e-6f && y[1] == 2 && y[3] == 4,
              "half-split: %g %g %g %g", y[0], y[1], y[2], y[3]);
    float z[4] = {1, 2, 3, 4};
    lq_rope_ref(z, 4, 0, inv_freq, 0); /* position 0 is the identity */
    cr_assert(z[0] == 1 && z[1] == 2 && z[2] == 3 && z[3] == 4);
}

/* ---- f16 / bf16 conversions ----------------------------------------------------------------- */

/* IEEE binary16 value of a bit pattern, from the definition (not from the code under test). */
static double f16_value(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

Test(convert, f16_constants) {
    cr_assert_eq(lq_f16_to_f32(0x3c00), 1.0f);
    cr_assert_eq(lq_f16_to_f32(0xc000), -2.0f);
    cr_assert_eq(lq_f16_to_f32(0x7bff), 65504.0f);
    cr_assert_eq(lq_f16_to_f32(0x0001), ldexpf(1.0f, -24));
    cr_assert_eq(lq_f16_to_f32(0x03ff), ldexpf(1023.0f, -24)); /* largest subnormal */
    cr_assert_eq(lq_f16_to_f32(0x0400), ldexpf(1.0f, -14));    /* smallest normal */
    cr_assert_eq(lq_f16_to_f32(0x3555), 0.333251953125f);
    cr_assert_eq(f2u(lq_f16_to_f32(0x8000)), 0x80000000u);
    cr_assert(isinf(lq_f16_to_f32(0x7c00)) && lq_f16_to_f32(0x7c00) > 0);
    cr_assert(isinf(lq_f16_to_f32(0xfc00)) && lq_f16_to_f32(0xfc00) < 0);
    cr_assert(isnan(lq_f16_to_f32(0x7e00)));
    cr_assert_eq(lq_f32_to_f16(1.0f), 0x3c00);
    cr_assert_eq(lq_f32_to_f16(65504.0f), 0x7bff);
    cr_assert_eq(lq_f32_to_f16(65519.996f), 0x7bff); /* below the midpoint to 65536 */
    cr_assert_eq(lq_f32_to_f16(65520.0f), 0x7c00);   /* the tie rounds to even: Inf */
    cr_assert_eq(lq_f32_to_f16(ldexpf(1.0f, -24)), 0x0001);
    cr_assert_eq(lq_f32_to_f16(ldexpf(1.0f, -25)), 0x0000); /* tie between 0 and 2^-24: even */
    cr_assert_eq(lq_f32_to_f16(ldexpf(1.5f, -25)), 0x0001);
    cr_assert_eq(lq_f32_to_f16(ldexpf(3.0f, -25)), 0x0002); /* 1.5 units: tie -> even (2) */
    cr_assert_eq(lq_f32_to_f16(-0.0f), 0x8000);
    cr_assert_eq(lq_f32_to_f16(1e10f), 0x7c00);
    cr_assert_eq(lq_f32_to_f16(-INFINITY), 0xfc00);
    cr_assert_eq(lq_f32_to_f16(NAN) & 0x7e00, 0x7e00, "NaN must stay a quiet NaN");
}

/* Every f16 pattern: the scalar conversion matches the IEEE definition, the fast row conversion
 * matches the scalar one bit for bit (F16C quiets signalling NaNs: for NaN inputs we require a
 * NaN with the same sign and payload up to the quiet bit), and f32 -> f16 round-trips. */
Test(convert, f16_exhaustive) {
    static uint16_t h[65536], back[65536], back_ref[65536];
    static float fast[65536];
    for (int i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    lq_f16_to_f32_row(h, fast, 65536);
    for (int i = 0; i < 65536; i++) {
        float s = lq_f16_to_f32(h[i]);
        int is_nan = ((i >> 10) & 31) == 31 && (i & 1023);
        if (is_nan) {
            cr_assert(isnan(s) && isnan(fast[i]), "0x%04x: expected NaN", i);
            cr_assert_eq(f2u(fast[i]) | 0x00400000u, f2u(s) | 0x00400000u,
                         "0x%04x: NaN sign/payload: fast 0x%08x ref 0x%08x", i, f2u(fast[i]), f2u(s));
        } else {
            if (((i >> 10) & 31) != 31)
                cr_assert_eq((double)s, f16_value(h[i]), "0x%04x: scalar %.9g vs IEEE %.9g", i, s,
                             f16_value(h[i]));
            cr_assert_eq(f2u(fast[i]), f2u(s), "0x%04x: fast 0x%08x vs scalar 0x%08x", i,
                         f2u(fast[i]), f2u(s));
        }
    }
    lq_f32_to_f16_row(fast, back, 65536);
    lq_f32_to_f16_row_ref(fast, back_ref, 65536);
    for (int i = 0; i < 65536; i++) {
        int is_nan = ((i >> 10) & 31) == 31 && (i & 1023);
        if (is_nan) {
            cr_assert((back[i] & 0x7c00) == 0x7c00 && (back[i] & 0x3ff), "0x%04x: NaN lost", i);
            cr_assert((back_ref[i] & 0x7c00) == 0x7c00 && (back_ref[i] & 0x3ff), "0x%04x: NaN lost (ref)", i);
        } else {
            cr_assert_eq(back_ref[i], h[i], "0x%04x: scalar round trip gave 0x%04x", i, back_ref[i]);
            cr_assert_eq(back[i], h[i], "0x%04x: fast round trip gave 0x%04x", i, back[i]);
        }
    }
}

/* Round to nearest even at every tie: the midpoint between consecutive positive finite f16
 * values (exact in f32) goes to the one with an even significand; one f32 ulp either side goes
 * to the nearer. Checked for the scalar spec and the fast row path, both signs. */
Test(convert, f16_ties_to_even) {
    enum { N = 0x7bff };
    static float mids[3 * N];
    static uint16_t want[3 * N], got[3 * N];
    int k = 0;
    for (uint16_t h = 0; h < 0x7bff; h++) {
        float lo = lq_f16_to_f32(h), hi = lq_f16_to_f32((uint16_t)(h + 1));
        float mid = (float)(((double)lo + (double)hi) / 2);
        cr_assert_eq((double)mid, ((double)lo + hi) / 2, "midpoint not exact in f32");
        mids[k] = mid;                        want[k++] = (h & 1) ? (uint16_t)(h + 1) : h;
        mids[k] = nextafterf(mid, 0.0f);      want[k++] = h;
        mids[k] = nextafterf(mid, INFINITY);  want[k++] = (uint16_t)(h + 1);
    }
    for (int sign = 0; sign < 2; sign++) {
        for (int i = 0; i < k; i++) {
            uint16_t s = lq_f32_to_f16(mids[i]);
            cr_assert_eq(s, want[i], "scalar: %.9g -> 0x%04x, want 0x%04x", mids[i], s, want[i]);
        }
        lq_f32_to_f16_row(mids, got, k);
        for (int i = 0; i < k; i++)
            cr_assert_eq(got[i], want[i], "fast: %.9g -> 0x%04x, want 0x%04x", mids[i], got[i], want[i]);
        for (int i = 0; i < k; i++) { mids[i] = -mids[i]; want[i] |= 0x8000; }
    }
}

Test(convert, bf16_constants_and_ties) {
    cr_assert_eq(lq_bf16_to_f32(0x3f80), 1.0f);
    cr_assert_eq(lq_bf16_to_f32(0x4049), 3.140625f);
    cr_assert_eq(lq_bf16_to_f32(0xc2f7), -123.5f);
    cr_assert_eq(lq_bf16_to_f32(0x0001), ldexpf(1.0f, -133)); /* smallest subnormal */
    cr_assert_eq(lq_bf16_to_f32(0x7f7f), ldexpf(255.0f, 120)); /* largest finite: 0x1.fep127 */
    cr_assert(isinf(lq_bf16_to_f32(0x7f80)));
    cr_assert_eq(lq_f32_to_bf16(1.0f), 0x3f80);
    cr_assert_eq(lq_f32_to_bf16(3.14159265f), 0x4049);
    cr_assert_eq(lq_f32_to_bf16(u2f(0x3f808000u)), 0x3f80); /* tie, even below */
    cr_assert_eq(lq_f32_to_bf16(u2f(0x3f818000u)), 0x3f82); /* tie, even above */
    cr_assert_eq(lq_f32_to_bf16(u2f(0x3f808001u)), 0x3f81);
    cr_assert_eq(lq_f32_to_bf16(u2f(0x7f7fffffu)), 0x7f80); /* FLT_MAX rounds to Inf */
    cr_assert_eq(lq_f32_to_bf16(u2f(0x7f800001u)) & 0x7fc0, 0x7fc0, "sNaN must become quiet");
}

/* bf16 -> f32 of every pattern is a shift: fast must equal it bit for bit. f32 -> bf16: fast
 * equals the scalar spec bit for bit (including NaN) over every tie and its neighbours for each
 * bf16 value, plus random patterns. */
Test(convert, bf16_exhaustive) {
    static uint16_t h[65536];
    static float fast[65536];
    for (int i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    lq_bf16_to_f32_row(h, fast, 65536);
    for (int i = 0; i < 65536; i++)
        cr_assert_eq(f2u(fast[i]), (uint32_t)i << 16, "0x%04x: fast 0x%08x", i, f2u(fast[i]));
    enum { M = 65536 * 4 + 100000 };
    float *src = malloc(M * sizeof(float));
    uint16_t *a = malloc(M * 2), *b = malloc(M * 2);
    int k = 0;
    for (uint32_t i = 0; i < 65536; i++) {
        uint32_t base = i << 16;
        src[k++] = u2f(base | 0x8000u);
        src[k++] = u2f(base | 0x7fffu);
        src[k++] = u2f(base | 0x8001u);
        src[k++] = u2f(base | 0x0001u);
    }
    while (k < M) src[k++] = u2f(rng_u32());
    lq_f32_to_bf16_row(src, a, M);
    lq_f32_to_bf16_row_ref(src, b, M);
    for (int i = 0; i < M; i++)
        cr_assert_eq(a[i], b[i], "f32 0x%08x: fast 0x%04x vs scalar 0x%04x", f2u(src[i]), a[i], b[i]);
    /* ties went to even: the first pattern of each group is an exact tie */
    for (uint32_t i = 0; i < 65536; i++) {
        uint32_t e = (i >> 7) & 0xff;
        if (e == 0xff) continue; /* Inf/NaN patterns */
        uint16_t want = (i & 1) ? (uint16_t)(i + 1) : (uint16_t)i;
        cr_assert_eq(b[4 * i], want, "tie 0x%08x -> 0x%04x, want 0x%04x", (i << 16) | 0x8000u,
                     b[4 * i], want);
    }
    free(src); free(a); free(b);
}

/* f32 -> f16 of random bit patterns (all exponents: overflow, subnormals, NaN): fast equals
 * the scalar spec bit for bit except NaN payloads (both must be NaN). */
Test(convert, f16_random_patterns) {
    enum { M = 1 << 20 };
    float *src = malloc(M * sizeof(float));
    uint16_t *a = malloc(M * 2), *b = malloc(M * 2);
    for (int i = 0; i < M; i++) src[i] = u2f(rng_u32());
    for (int i = 0; i < 4096; i++) src[i] = u2f((rng_u32() & 0x87ffffffu) | 0x30000000u); /* near f16 range */
    lq_f32_to_f16_row(src, a, M);
    lq_f32_to_f16_row_ref(src, b, M);
    for (int i = 0; i < M; i++) {
        if (isnan(src[i])) {
            cr_assert((a[i] & 0x7c00) == 0x7c00 && (a[i] & 0x3ff), "NaN 0x%08x -> 0x%04x", f2u(src[i]), a[i]);
            continue;
        }
        cr_assert_eq(a[i], b[i], "f32 0x%08x: fast 0x%04x vs scalar 0x%04x", f2u(src[i]), a[i], b[i]);
    }
    free(src); free(a); free(b);
}

/* lq_matmul used to return with Y unwritten and no word when the format had no row. Release
 * builds report it; debug builds assert at the kernel entry (a programmer error). */
Test(matmul, unknown_format_is_a_status_not_a_silent_return) {
#ifdef NDEBUG
    lq_weight w = {.fmt = LQ_WFMT_COUNT, .rows = 2, .cols = 4};
    float X[4] = {1, 2, 3, 4}, Y[2] = {7.0f, 7.0f};
    cr_expect_eq(lq_matmul(NULL, &w, X, 1, Y), LQ_KERNEL_BAD_FORMAT);
    cr_expect_eq(lq_matmul_ref(&w, X, 1, Y), LQ_KERNEL_BAD_FORMAT);
    w.fmt = LQ_WFMT_F32;
    w.rows = 0;
    cr_expect_eq(lq_matmul(NULL, &w, X, 1, Y), LQ_KERNEL_BAD_SHAPE);
    cr_expect(Y[0] == 7.0f && Y[1] == 7.0f, "Y written");
    const float W[8] = {1, 0, 0, 0, 0, 1, 0, 0};
    w = (lq_weight){.fmt = LQ_WFMT_F32, .rows = 2, .cols = 4, .data = W, .row_bytes = 16};
    cr_expect_eq(lq_matmul(NULL, &w, X, 1, Y), LQ_KERNEL_OK);
    cr_expect(Y[0] == 1.0f && Y[1] == 2.0f);
#else
    cr_skip("debug build: the kernel entry asserts instead");
#endif
}
