/* lq_cuda_internal.cuh - what the .cu files of the backend share (not a public contract).
 *
 * One checking macro for every CUDA / cuBLAS call (LQ_CU / LQ_CUBLAS): on failure it records
 * "<call> failed: <cuda error string> (file:line)" and returns from the enclosing function. */
#ifndef LQ_CUDA_INTERNAL_CUH
#define LQ_CUDA_INTERNAL_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "lq_blocks.h"
#include "lq_cuda.h"

/* Record the message of the current failure (printf-style) and return rc. */
int lq_cuda_fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LQ_CU(call)                                                                             \
    do {                                                                                        \
        cudaError_t lq_cu_e_ = (call);                                                          \
        if (lq_cu_e_ != cudaSuccess)                                                            \
            return lq_cuda_fail(lq_cu_e_ == cudaErrorMemoryAllocation ? LQ_CUDA_ERR_NOMEM       \
                                                                      : LQ_CUDA_ERR_RUNTIME,    \
                                "%s failed: %s (%s:%d)", #call, cudaGetErrorString(lq_cu_e_),   \
                                __FILE__, __LINE__);                                            \
    } while (0)

#define LQ_CUBLAS(call)                                                                         \
    do {                                                                                        \
        cublasStatus_t lq_cb_e_ = (call);                                                       \
        if (lq_cb_e_ != CUBLAS_STATUS_SUCCESS)                                                  \
            return lq_cuda_fail(LQ_CUDA_ERR_RUNTIME, "%s failed: cuBLAS status %d (%s:%d)",     \
                                #call, (int)lq_cb_e_, __FILE__, __LINE__);                      \
    } while (0)

/* A kernel launch: errors in the configuration show up at once, faults at the next sync. */
#define LQ_CU_LAUNCHED() LQ_CU(cudaGetLastError())

#define LQ_TRY_CU(expr)                     \
    do {                                    \
        int lq_try_rc_ = (expr);            \
        if (lq_try_rc_ != LQ_CUDA_OK) return lq_try_rc_; \
    } while (0)

struct lq_cuda_ctx {
    cudaStream_t stream;
    cublasHandle_t blas;
    void *scratch;        /* prefill tiles, W8A8 activation codes; grown on demand */
    size_t scratch_bytes;
};

/* Scratch of at least `bytes` (the old contents are dropped). cudaFree waits for the device, so
 * a kernel still reading the old buffer finishes first. */
int lq_cuda_scratch(lq_cuda_ctx *ctx, size_t bytes, void **out);

static inline unsigned lq_cuda_blocks(int64_t n, int per_block) {
    return (unsigned)((n + per_block - 1) / per_block);
}

/* ---- the device-side traits table (lq_cuda_fmt.cu): one row per lq_wfmt ------------------- */
typedef int (*lq_cuda_gemv_fn)(lq_cuda_ctx *ctx, const lq_cuda_weight *w, const float *dX, int nt,
                               float *dY);
typedef int (*lq_cuda_dequant_fn)(lq_cuda_ctx *ctx, const lq_cuda_weight *w, const int32_t *d_rows,
                                  int64_t r0, int64_t n, float *dOut);
typedef struct lq_cuda_fmt_row {
    lq_wfmt fmt;               /* must equal the row index (checked at compile time) */
    lq_cuda_gemv_fn gemv;      /* 1 <= nt <= LQ_CUDA_GEMV_MAX_BATCH tokens, the weight read once */
    lq_cuda_dequant_fn dequant;
    int gemm_by_gemv;          /* the product is not "dequantize, then multiply" (W8A8): prefill
                                * runs the GEMV over chunks of tokens, as the CPU's tile does */
    double atol, rtol;         /* vs matvec_ref, see lq_cuda_fmt.cu */
} lq_cuda_fmt_row;
const lq_cuda_fmt_row *lq_cuda_fmt(lq_wfmt f); /* NULL if out of range */

/* Launchers of gemv.cu / dequant.cu, one per format. */
#define LQ_CUDA_DECLARE_FMT(name)                                                              \
    int lq_cuda_gemv_##name(lq_cuda_ctx *, const lq_cuda_weight *, const float *, int, float *); \
    int lq_cuda_dequant_##name(lq_cuda_ctx *, const lq_cuda_weight *, const int32_t *, int64_t,  \
                               int64_t, float *);
LQ_CUDA_DECLARE_FMT(f32)
LQ_CUDA_DECLARE_FMT(f16)
LQ_CUDA_DECLARE_FMT(bf16)
LQ_CUDA_DECLARE_FMT(w8a16)
LQ_CUDA_DECLARE_FMT(w4a16)
LQ_CUDA_DECLARE_FMT(fp8)
LQ_CUDA_DECLARE_FMT(w8a8)

#endif
