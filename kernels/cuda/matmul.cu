/* matmul.cu - the device-side traits table and Y = X W^T (lq_cuda_matmul).
 *
 * One row per lq_wfmt, in enum order (checked at compile time below), mirroring kernels/cpu/format_table.c:
 * the GEMV launcher (decode, 1..8 tokens), the dequantizer (embedding rows, prefill tiles),
 * whether prefill must reuse the GEMV (W8A8), and the tolerance against matvec_ref.
 *
 * Tolerances (|cuda - ref| <= atol + rtol * sum_c |W[r][c] x[c]|). The ref sums exact products
 * in double. GEMV: every code is widened exactly; lane l sums its chunks' products with f32 FMA
 * (a chunk of E <= 32 elements, then one FMA into the accumulator), then 5 shuffle levels and
 * one row-scale multiply: a product passes at most E + cols/(32 E) + 7 roundings of 2^-24,
 * e.g. 32 + 16 + 7 = 55 for a 16384-wide W4A16 row, 3.3e-6 of the absolute sum; f32 rows
 * (E = 4) see 4 + cols/128 + 7 = 139 at 16384 columns, 8.3e-6. GEMM: cuBLAS does not document
 * its summation order; with f32 FMA chains over k in blocks, a product sees O(k / block) + log
 * roundings; we allow 1e-4 (1678 roundings), which still catches a dropped or wrong element of
 * a 4096-wide row (one product ~ 2.4e-4 of the absolute sum). The bound returned is the looser
 * one, so a test may apply it to either path. W8A8 is exact integer math with the CPU's final
 * expression in both paths: 0 (see w8a8.cu).
 */
#include "lq_cuda_internal.cuh"

/* Field designators (C++20; C++ has no array-index designators), so a row says what each value
 * is; the order check below replaces positional trust. */
static constexpr lq_cuda_fmt_row g_rows[] = {
    {.fmt = LQ_WFMT_F32, .gemv = lq_cuda_gemv_f32, .dequant = lq_cuda_dequant_f32, .gemm_by_gemv = 0,
     .atol = 1e-6, .rtol = 1e-4},
    {.fmt = LQ_WFMT_F16, .gemv = lq_cuda_gemv_f16, .dequant = lq_cuda_dequant_f16, .gemm_by_gemv = 0,
     .atol = 1e-6, .rtol = 1e-4},
    {.fmt = LQ_WFMT_BF16, .gemv = lq_cuda_gemv_bf16, .dequant = lq_cuda_dequant_bf16, .gemm_by_gemv = 0,
     .atol = 1e-6, .rtol = 1e-4},
    {.fmt = LQ_WFMT_W8A16, .gemv = lq_cuda_gemv_w8a16, .dequant = lq_cuda_dequant_w8a16, .gemm_by_gemv = 0,
     .atol = 1e-6, .rtol = 1e-4},
    {.fmt = LQ_WFMT_W4A16, .gemv = lq_cuda_gemv_w4a16, .dequant = lq_cuda_dequant_w4a16, .gemm_by_gemv = 0,
     .atol = 1e-6, .rtol = 1e-4},
    {.fmt = LQ_WFMT_FP8_E4M3, .gemv = lq_cuda_gemv_fp8, .dequant = lq_cuda_dequant_fp8, .gemm_by_gemv = 0,
     .atol = 1e-6, .rtol = 1e-4},
    {.fmt = LQ_WFMT_W8A8, .gemv = lq_cuda_gemv_w8a8, .dequant = lq_cuda_dequant_w8a8, .gemm_by_gemv = 1,
     .atol = 0.0, .rtol = 0.0},
    /* GGUF legacy blocks: no device kernels yet. NULL kernels make lq_cuda_weight_upload refuse
     * the weight by format name, so a model with them stays on the CPU with a clear message. */
    {.fmt = LQ_WFMT_Q8_0, .gemv = NULL, .dequant = NULL, .gemm_by_gemv = 0, .atol = 0.0, .rtol = 0.0},
    {.fmt = LQ_WFMT_Q4_0, .gemv = NULL, .dequant = NULL, .gemm_by_gemv = 0, .atol = 0.0, .rtol = 0.0},
    {.fmt = LQ_WFMT_Q4_1, .gemv = NULL, .dequant = NULL, .gemm_by_gemv = 0, .atol = 0.0, .rtol = 0.0},
    {.fmt = LQ_WFMT_Q5_0, .gemv = NULL, .dequant = NULL, .gemm_by_gemv = 0, .atol = 0.0, .rtol = 0.0},
    {.fmt = LQ_WFMT_Q5_1, .gemv = NULL, .dequant = NULL, .gemm_by_gemv = 0, .atol = 0.0, .rtol = 0.0},
    {.fmt = LQ_WFMT_IQ4_NL, .gemv = NULL, .dequant = NULL, .gemm_by_gemv = 0, .atol = 0.0, .rtol = 0.0},
    /* K-quant super-blocks: no device kernels yet either (refused by name the same way). */
    {.fmt = LQ_WFMT_Q2_K, .gemv = NULL, .dequant = NULL, .gemm_by_gemv = 0, .atol = 0.0, .rtol = 0.0},
    {.fmt = LQ_WFMT_Q3_K, .gemv = NULL, .dequant = NULL, .gemm_by_gemv = 0, .atol = 0.0, .rtol = 0.0},
    {.fmt = LQ_WFMT_Q4_K, .gemv = NULL, .dequant = NULL, .gemm_by_gemv = 0, .atol = 0.0, .rtol = 0.0},
    {.fmt = LQ_WFMT_Q5_K, .gemv = NULL, .dequant = NULL, .gemm_by_gemv = 0, .atol = 0.0, .rtol = 0.0},
    {.fmt = LQ_WFMT_Q6_K, .gemv = NULL, .dequant = NULL, .gemm_by_gemv = 0, .atol = 0.0, .rtol = 0.0},
    {.fmt = LQ_WFMT_IQ4_XS, .gemv = NULL, .dequant = NULL, .gemm_by_gemv = 0, .atol = 0.0, .rtol = 0.0},
    /* compressed-tensors 3-bit: no device kernels yet (refused by name, runs on the CPU). */
    {.fmt = LQ_WFMT_W3A16, .gemv = NULL, .dequant = NULL, .gemm_by_gemv = 0, .atol = 0.0, .rtol = 0.0},
};

/* Row i is format i, and every format has a row: a format added to lq_wfmt without its CUDA
 * row (or a row out of order) fails to compile. */
static constexpr bool rows_follow_the_enum() {
    if (sizeof g_rows / sizeof g_rows[0] != LQ_WFMT_COUNT) return false;
    for (int i = 0; i < LQ_WFMT_COUNT; i++)
        if (g_rows[i].fmt != (lq_wfmt)i) return false;
    return true;
}
static_assert(rows_follow_the_enum(), "a weight format was added: give it a row in g_rows (enum order)");

const lq_cuda_fmt_row *lq_cuda_fmt(lq_wfmt f) {
    if ((int)f < 0 || f >= LQ_WFMT_COUNT) return NULL;
    return &g_rows[f];
}

/* The row of a format that has device kernels; otherwise fails naming the format. */
static const lq_cuda_fmt_row *fmt_with_kernels(lq_wfmt f, const char *what) {
    const lq_cuda_fmt_row *t = lq_cuda_fmt(f);
    if (!t) {
        lq_cuda_fail(LQ_CUDA_ERR_ARG, "%s: unknown format %d", what, (int)f);
        return NULL;
    }
    if (!t->gemv || !t->dequant) {
        lq_cuda_fail(LQ_CUDA_ERR_ARG, "%s: format %s has no CUDA kernels (CPU only)", what,
                     lq_wfmt_get(f)->name);
        return NULL;
    }
    return t;
}

void lq_cuda_tolerance(lq_wfmt fmt, double *atol, double *rtol) {
    const lq_cuda_fmt_row *t = lq_cuda_fmt(fmt);
    *atol = t ? t->atol : 0.0;
    *rtol = t ? t->rtol : 0.0;
}

int lq_cuda_dequant_rows(lq_cuda_ctx *ctx, const lq_cuda_weight *w, const int32_t *d_rows,
                         int64_t r0, int64_t n, float *dOut) {
    const lq_cuda_fmt_row *t = fmt_with_kernels(w->fmt, "dequant");
    if (!t) return LQ_CUDA_ERR_ARG;
    if (!d_rows && (r0 < 0 || n < 0 || r0 + n > w->rows))
        return lq_cuda_fail(LQ_CUDA_ERR_ARG, "dequant: rows %lld..%lld outside %lld", (long long)r0,
                            (long long)(r0 + n), (long long)w->rows);
    return t->dequant(ctx, w, d_rows, r0, n, dOut);
}

/* Prefill tile: at most this many f32 of dequantized weight at once (64 MiB), so the scratch
 * stays small next to the weights while each sgemm is still large (>= 2048 x 8192). */
#define GEMM_TILE_FLOATS (16ll << 20)

static int gemm_tiled(lq_cuda_ctx *ctx, const lq_cuda_fmt_row *t, const lq_cuda_weight *w,
                      const float *dX, int64_t n, float *dY) {
    const int64_t rows = w->rows, cols = w->cols;
    int64_t tile = GEMM_TILE_FLOATS / cols;
    if (tile < 16) tile = 16;
    if (tile > rows) tile = rows;
    if (tile > 65535) tile = 65535;
    void *scr = NULL;
    LQ_TRY_CU(lq_cuda_scratch(ctx, (size_t)tile * (size_t)cols * sizeof(float), &scr));
    float *B = (float *)scr;
    const float one = 1.0f, zero = 0.0f;
    for (int64_t r0 = 0; r0 < rows; r0 += tile) {
        const int64_t nr = rows - r0 < tile ? rows - r0 : tile;
        LQ_TRY_CU(t->dequant(ctx, w, NULL, r0, nr, B));
        /* Row-major Y (n, rows) is column-major (rows, n); row-major B (nr, cols) is column-major
         * (cols, nr). Y[:, r0:r0+nr] = B^T-view^T X: C (nr x n) = op(A)=A^T (nr x cols) * X (cols x n). */
        LQ_CUBLAS(cublasSgemm(ctx->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)nr, (int)n, (int)cols, &one, B,
                              (int)cols, dX, (int)cols, &zero, dY + r0, (int)rows));
    }
    return LQ_CUDA_OK;
}

int lq_cuda_matmul_path(lq_cuda_ctx *ctx, const lq_cuda_weight *w, const float *dX, int64_t n,
                        float *dY, lq_cuda_path path) {
    const lq_cuda_fmt_row *t = fmt_with_kernels(w->fmt, "matmul");
    if (!t) return LQ_CUDA_ERR_ARG;
    if (n <= 0 || w->rows <= 0) return LQ_CUDA_OK;
    if (w->cols > INT32_MAX || w->rows > INT32_MAX || n > INT32_MAX)
        return lq_cuda_fail(LQ_CUDA_ERR_ARG, "matmul: %lldx%lld x %lld tokens exceeds cuBLAS int sizes",
                            (long long)w->rows, (long long)w->cols, (long long)n);
    if (path == LQ_CUDA_PATH_AUTO) path = n <= LQ_CUDA_GEMV_MAX_BATCH ? LQ_CUDA_PATH_GEMV : LQ_CUDA_PATH_GEMM;
    if (path == LQ_CUDA_PATH_GEMV || t->gemm_by_gemv) {
        /* Chunks of up to 8 tokens; W8A8 prefill lands here too (its product is not
         * dequantize-then-multiply, as on the CPU). */
        for (int64_t t0 = 0; t0 < n; t0 += LQ_CUDA_GEMV_MAX_BATCH) {
            const int nt = (int)(n - t0 < LQ_CUDA_GEMV_MAX_BATCH ? n - t0 : LQ_CUDA_GEMV_MAX_BATCH);
            LQ_TRY_CU(t->gemv(ctx, w, dX + (size_t)t0 * (size_t)w->cols, nt, dY + (size_t)t0 * (size_t)w->rows));
        }
        return LQ_CUDA_OK;
    }
    return gemm_tiled(ctx, t, w, dX, n, dY);
}

int lq_cuda_matmul(lq_cuda_ctx *ctx, const lq_cuda_weight *w, const float *dX, int64_t n, float *dY) {
    return lq_cuda_matmul_path(ctx, w, dX, n, dY, LQ_CUDA_PATH_AUTO);
}
