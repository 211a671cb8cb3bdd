/* runtime.cu - errors, devices, contexts, memory, weight upload and timing of the CUDA backend. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <vector>

#include "lq_cuda_internal.cuh"

/* ==== errors ================================================================================ */

static thread_local char g_err[512];

int lq_cuda_fail(int rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    return rc;
}

const char *lq_cuda_last_error(void) { return g_err; }

/* ==== devices =============================================================================== */

int lq_cuda_device_count(void) {
    int n = 0;
    /* No driver or no GPU: cudaGetDeviceCount fails (cudaErrorNoDevice, InsufficientDriver). */
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError(); /* clear the sticky-free error so later calls start clean */
        return 0;
    }
    return n;
}

int lq_cuda_device_describe(char *buf, size_t cap) {
    if (lq_cuda_device_count() <= 0)
        return lq_cuda_fail(LQ_CUDA_ERR_NO_DEVICE, "no CUDA device (cudaGetDeviceCount found none)");
    int dev = 0;
    LQ_CU(cudaGetDevice(&dev));
    cudaDeviceProp p;
    LQ_CU(cudaGetDeviceProperties(&p, dev));
    snprintf(buf, cap, "%s (sm_%d%d, %.1f GiB)", p.name, p.major, p.minor,
             (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    return LQ_CUDA_OK;
}

/* ==== contexts ============================================================================== */

int lq_cuda_ctx_create(lq_cuda_ctx **out) {
    *out = NULL;
    if (lq_cuda_device_count() <= 0)
        return lq_cuda_fail(LQ_CUDA_ERR_NO_DEVICE, "no CUDA device (cudaGetDeviceCount found none)");
    lq_cuda_ctx *c = (lq_cuda_ctx *)calloc(1, sizeof *c);
    if (!c) return lq_cuda_fail(LQ_CUDA_ERR_NOMEM, "out of host memory for a CUDA context");
    int rc = LQ_CUDA_OK;
    cublasStatus_t bs;
    if (cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking) != cudaSuccess) {
        rc = lq_cuda_fail(LQ_CUDA_ERR_RUNTIME, "cudaStreamCreate failed: %s",
                          cudaGetErrorString(cudaGetLastError()));
    } else if ((bs = cublasCreate(&c->blas)) != CUBLAS_STATUS_SUCCESS) {
        c->blas = NULL;
        rc = lq_cuda_fail(LQ_CUDA_ERR_RUNTIME, "cublasCreate failed: status %d", (int)bs);
    } else if (cublasSetStream(c->blas, c->stream) != CUBLAS_STATUS_SUCCESS ||
               /* Plain FP32 GEMMs (no TF32): prefill must match the CPU within the stated
                * tolerance, and TF32 keeps only 10 mantissa bits of each input. */
               cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH) != CUBLAS_STATUS_SUCCESS) {
        rc = lq_cuda_fail(LQ_CUDA_ERR_RUNTIME, "cublasSetStream/SetMathMode failed");
    }
    if (rc != LQ_CUDA_OK) {
        lq_cuda_ctx_free(c);
        return rc;
    }
    *out = c;
    return LQ_CUDA_OK;
}

void lq_cuda_ctx_free(lq_cuda_ctx *ctx) {
    if (!ctx) return;
    if (ctx->stream) cudaStreamSynchronize(ctx->stream);
    cudaFree(ctx->scratch);
    if (ctx->blas) cublasDestroy(ctx->blas);
    if (ctx->stream) cudaStreamDestroy(ctx->stream);
    free(ctx);
}

int lq_cuda_sync(lq_cuda_ctx *ctx) {
    LQ_CU(cudaStreamSynchronize(ctx->stream));
    return LQ_CUDA_OK;
}

void *lq_cuda_ctx_stream(lq_cuda_ctx *ctx) { return (void *)ctx->stream; }

int lq_cuda_scratch(lq_cuda_ctx *ctx, size_t bytes, void **out) {
    if (bytes > ctx->scratch_bytes) {
        cudaFree(ctx->scratch);
        ctx->scratch = NULL;
        ctx->scratch_bytes = 0;
        LQ_CU(cudaMalloc(&ctx->scratch, bytes));
        ctx->scratch_bytes = bytes;
    }
    *out = ctx->scratch;
    return LQ_CUDA_OK;
}

/* ==== memory ================================================================================ */

int lq_cuda_alloc(void **dptr, size_t bytes) {
    *dptr = NULL;
    if (bytes == 0) bytes = 1;
    LQ_CU(cudaMalloc(dptr, bytes));
    cudaError_t e = cudaMemset(*dptr, 0, bytes);
    if (e != cudaSuccess) {
        cudaFree(*dptr);
        *dptr = NULL;
        return lq_cuda_fail(LQ_CUDA_ERR_RUNTIME, "cudaMemset of %zu bytes failed: %s", bytes,
                            cudaGetErrorString(e));
    }
    return LQ_CUDA_OK;
}

void lq_cuda_free(void *dptr) { cudaFree(dptr); }

int lq_cuda_upload(lq_cuda_ctx *ctx, void *dst, const void *src, size_t bytes) {
    LQ_CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx->stream));
    return LQ_CUDA_OK;
}

int lq_cuda_download(lq_cuda_ctx *ctx, void *dst, const void *src, size_t bytes) {
    LQ_CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ctx->stream));
    LQ_CU(cudaStreamSynchronize(ctx->stream));
    return LQ_CUDA_OK;
}

int lq_cuda_copy(lq_cuda_ctx *ctx, void *dst, const void *src, size_t bytes) {
    LQ_CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx->stream));
    return LQ_CUDA_OK;
}

/* ==== weights =============================================================================== */

void lq_cuda_weight_free(lq_cuda_weight *w) {
    if (!w) return;
    cudaFree(w->data);
    cudaFree(w->aux[0]);
    cudaFree(w->aux[1]);
    memset(w, 0, sizeof *w);
}

uint64_t lq_cuda_weight_bytes(const lq_cuda_weight *w) {
    /* The GEMV reads each row's payload up to cols (the padding is in the same 16-byte loads). */
    return (uint64_t)w->rows * w->row_bytes + 4ull * (uint64_t)(w->n_aux[0] + w->n_aux[1]);
}

int lq_cuda_weight_upload(const lq_weight *w, lq_cuda_weight *out) {
    memset(out, 0, sizeof *out);
    const lq_cuda_fmt_row *t = lq_cuda_fmt(w->fmt);
    if (!t)
        return lq_cuda_fail(LQ_CUDA_ERR_ARG, "weight upload: unknown format %d", (int)w->fmt);
    if (!t->gemv || !t->dequant) /* a row without device kernels (GGUF blocks for now) */
        return lq_cuda_fail(LQ_CUDA_ERR_ARG, "weight upload: format %s has no CUDA kernels (CPU only)",
                            lq_wfmt_get(w->fmt)->name);
    lq_quant_params p;
    memset(&p, 0, sizeof p);
    p.group_size = w->group_size;
    p.asym = w->aux[1] != NULL;
    size_t rb = 0;
    int64_t a0 = 0, a1 = 0;
    if (!lq_wfmt_sizes(w->fmt, w->rows, w->cols, &p, &rb, &a0, &a1) || rb > w->row_bytes)
        return lq_cuda_fail(LQ_CUDA_ERR_ARG, "weight upload: %s %lldx%lld (group %d) has no device layout",
                            lq_wfmt_get(w->fmt)->name, (long long)w->rows, (long long)w->cols,
                            (int)w->group_size);
    if ((a0 > 0 && !w->aux[0]) || (a1 > 0 && !w->aux[1]))
        return lq_cuda_fail(LQ_CUDA_ERR_ARG, "weight upload: %s weight without its scales",
                            lq_wfmt_get(w->fmt)->name);
    lq_cuda_weight d = {};
    d.fmt = w->fmt;
    d.rows = w->rows;
    d.cols = w->cols;
    d.group_size = w->group_size;
    d.row_bytes = (rb + 15) / 16 * 16;
    d.n_aux[0] = a0;
    d.n_aux[1] = a1;
    int rc = lq_cuda_alloc(&d.data, (size_t)d.rows * d.row_bytes); /* zeroed: padding is 0 */
    if (rc == LQ_CUDA_OK && a0 > 0) rc = lq_cuda_alloc((void **)&d.aux[0], (size_t)a0 * sizeof(float));
    if (rc == LQ_CUDA_OK && a1 > 0) rc = lq_cuda_alloc((void **)&d.aux[1], (size_t)a1 * sizeof(float));
    cudaError_t e = cudaSuccess;
    /* Host rows may be wider than rb (a view with a larger stride): copy rb bytes of each. */
    if (rc == LQ_CUDA_OK)
        e = cudaMemcpy2D(d.data, d.row_bytes, w->data, w->row_bytes, rb, (size_t)d.rows,
                         cudaMemcpyHostToDevice);
    if (rc == LQ_CUDA_OK && e == cudaSuccess && a0 > 0)
        e = cudaMemcpy(d.aux[0], w->aux[0], (size_t)a0 * sizeof(float), cudaMemcpyHostToDevice);
    if (rc == LQ_CUDA_OK && e == cudaSuccess && a1 > 0)
        e = cudaMemcpy(d.aux[1], w->aux[1], (size_t)a1 * sizeof(float), cudaMemcpyHostToDevice);
    if (rc == LQ_CUDA_OK && e != cudaSuccess)
        rc = lq_cuda_fail(LQ_CUDA_ERR_RUNTIME, "weight upload (%lldx%lld): %s", (long long)d.rows,
                          (long long)d.cols, cudaGetErrorString(e));
    if (rc != LQ_CUDA_OK) {
        lq_cuda_weight_free(&d);
        return rc;
    }
    *out = d;
    return LQ_CUDA_OK;
}

/* ==== timing ================================================================================ */

static double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n == 0 ? 0.0 : (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]));
}

int lq_cuda_copy_bandwidth(size_t bytes, int reps, double *bytes_per_s) {
    *bytes_per_s = 0;
    if (reps < 1) reps = 1;
    void *a = NULL, *b = NULL;
    LQ_TRY_CU(lq_cuda_alloc(&a, bytes));
    int rc = lq_cuda_alloc(&b, bytes);
    cudaEvent_t e0 = NULL, e1 = NULL;
    std::vector<double> t;
    if (rc == LQ_CUDA_OK && (cudaEventCreate(&e0) != cudaSuccess || cudaEventCreate(&e1) != cudaSuccess))
        rc = lq_cuda_fail(LQ_CUDA_ERR_RUNTIME, "cudaEventCreate failed");
    for (int r = -1; rc == LQ_CUDA_OK && r < reps; r++) { /* r = -1: warm-up */
        float ms = 0;
        if (cudaEventRecord(e0) != cudaSuccess ||
            cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice) != cudaSuccess ||
            cudaEventRecord(e1) != cudaSuccess || cudaEventSynchronize(e1) != cudaSuccess ||
            cudaEventElapsedTime(&ms, e0, e1) != cudaSuccess) {
            rc = lq_cuda_fail(LQ_CUDA_ERR_RUNTIME, "timing a device copy failed: %s",
                              cudaGetErrorString(cudaGetLastError()));
            break;
        }
        if (r >= 0) t.push_back(ms * 1e-3);
    }
    if (rc == LQ_CUDA_OK) {
        /* A copy reads and writes every byte: the traffic is 2 x bytes. */
        const double s = median(t);
        *bytes_per_s = s > 0 ? 2.0 * (double)bytes / s : 0.0;
    }
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    cudaFree(a);
    cudaFree(b);
    return rc;
}

int lq_cuda_time_matmul(lq_cuda_ctx *ctx, const lq_cuda_weight *w, const float *dX, int64_t n,
                        float *dY, lq_cuda_path path, int reps, double *secs) {
    *secs = 0;
    if (reps < 1) reps = 1;
    cudaEvent_t e0, e1;
    LQ_CU(cudaEventCreate(&e0));
    if (cudaEventCreate(&e1) != cudaSuccess) {
        cudaEventDestroy(e0);
        return lq_cuda_fail(LQ_CUDA_ERR_RUNTIME, "cudaEventCreate failed");
    }
    std::vector<double> t;
    int rc = lq_cuda_matmul_path(ctx, w, dX, n, dY, path); /* warm-up, sizes the scratch */
    if (rc == LQ_CUDA_OK) rc = lq_cuda_sync(ctx);
    for (int r = 0; rc == LQ_CUDA_OK && r < reps; r++) {
        float ms = 0;
        if (cudaEventRecord(e0, ctx->stream) != cudaSuccess) { rc = LQ_CUDA_ERR_RUNTIME; break; }
        if ((rc = lq_cuda_matmul_path(ctx, w, dX, n, dY, path)) != LQ_CUDA_OK) break;
        if (cudaEventRecord(e1, ctx->stream) != cudaSuccess || cudaEventSynchronize(e1) != cudaSuccess ||
            cudaEventElapsedTime(&ms, e0, e1) != cudaSuccess) {
            rc = lq_cuda_fail(LQ_CUDA_ERR_RUNTIME, "timing a matmul failed: %s",
                              cudaGetErrorString(cudaGetLastError()));
            break;
        }
        t.push_back(ms * 1e-3);
    }
    if (rc == LQ_CUDA_OK) *secs = median(t);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return rc;
}
