/* lq_cuda.h - host API of the CUDA backend (plain C; the implementation is the kernels/cuda sources).
 *
 * Exists only in builds with nvcc (CMake target lq_cuda, which defines LQ_HAVE_CUDA for whoever
 * links it). Every call is asynchronous on the context's stream unless it says otherwise, so a
 * forward pass is a chain of launches with no host round trip; lq_cuda_download waits.
 *
 * Weights are uploaded once into device memory in the same byte layouts as on the host
 * (lq_blocks.h), each row padded to a multiple of 16 bytes so every lane can load 16-byte
 * vectors; padding bytes are zero and never reach a sum (kernels stop at cols). The CPU _ref
 * functions of the traits table are the spec every kernel here is tested against
 * (tests/test_cuda.c, bench/cuda_workbench).
 *
 * Errors: functions return LQ_CUDA_OK (0) or a negative lq_cuda_rc and record a one-line message
 * (lq_cuda_last_error, per thread) naming the call that failed. Nothing here exits.
 * Thread-safety: one context per thread; weights may be shared by contexts on the same device.
 */
#ifndef LQ_CUDA_H
#define LQ_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "lq_format.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lq_cuda_rc {
    LQ_CUDA_OK = 0,
    LQ_CUDA_ERR_NO_DEVICE = -1, /* no usable GPU (no driver, no device) */
    LQ_CUDA_ERR_NOMEM = -2,     /* device or host allocation failed */
    LQ_CUDA_ERR_ARG = -3,       /* shape/format the backend does not handle */
    LQ_CUDA_ERR_RUNTIME = -4    /* a CUDA / cuBLAS call failed */
} lq_cuda_rc;

/* The message of the last failing call on this thread ("" if none). */
const char *lq_cuda_last_error(void);

/* Number of usable devices; 0 when the runtime reports none or fails (no driver). Never fails. */
int lq_cuda_device_count(void);
/* "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)" into buf; LQ_CUDA_ERR_NO_DEVICE if none. */
int lq_cuda_device_describe(char *buf, size_t cap);

/* ---- context: a stream, a cuBLAS handle and a growable scratch for prefill tiles ---------- */
typedef struct lq_cuda_ctx lq_cuda_ctx;
int lq_cuda_ctx_create(lq_cuda_ctx **out);
void lq_cuda_ctx_free(lq_cuda_ctx *ctx); /* NULL is a no-op */
int lq_cuda_sync(lq_cuda_ctx *ctx);      /* wait for every launch; reports asynchronous errors */
/* The context's cudaStream_t (as void *, so this header stays plain C): for timing with events. */
void *lq_cuda_ctx_stream(lq_cuda_ctx *ctx);

/* ---- device memory ------------------------------------------------------------------------- */
int lq_cuda_alloc(void **dptr, size_t bytes); /* zero-filled */
void lq_cuda_free(void *dptr);                /* NULL is a no-op */
int lq_cuda_upload(lq_cuda_ctx *ctx, void *dst, const void *src, size_t bytes);
/* Copies and waits: the only host round trip of a forward pass (the logits). */
int lq_cuda_download(lq_cuda_ctx *ctx, void *dst, const void *src, size_t bytes);
int lq_cuda_copy(lq_cuda_ctx *ctx, void *dst, const void *src, size_t bytes); /* device->device */

/* ---- weights ------------------------------------------------------------------------------- */
typedef struct lq_cuda_weight {
    lq_wfmt fmt;
    int64_t rows, cols;
    int32_t group_size;     /* as lq_weight.group_size */
    size_t row_bytes;       /* device row stride: the host row bytes rounded up to 16 */
    void *data;             /* (rows, row_bytes) packed payload, device */
    float *aux[2];          /* device copies of lq_weight.aux[0..1] (NULL where unused) */
    int64_t n_aux[2];       /* floats in aux[i] */
} lq_cuda_weight;

/* Copy w (any format of the traits table) to the device; sizes of the side tensors come from
 * lq_wfmt_sizes. Synchronous. out is zeroed on failure. */
int lq_cuda_weight_upload(const lq_weight *w, lq_cuda_weight *out);
void lq_cuda_weight_free(lq_cuda_weight *w); /* frees the device buffers, zeroes *w */
/* Device bytes of the payload plus side tensors (what a GEMV reads). */
uint64_t lq_cuda_weight_bytes(const lq_cuda_weight *w);

/* Which product lq_cuda_matmul_path runs. */
typedef enum lq_cuda_path {
    LQ_CUDA_PATH_AUTO = 0, /* GEMV for n <= LQ_CUDA_GEMV_MAX_BATCH, else GEMM */
    LQ_CUDA_PATH_GEMV = 1, /* fused dequantize x activation, the weight read once per 8 tokens */
    LQ_CUDA_PATH_GEMM = 2  /* dequantize row tiles to f32 scratch + cublasSgemm (W8A8: its own
                            * int8 tile, as on the CPU) */
} lq_cuda_path;
#define LQ_CUDA_GEMV_MAX_BATCH 8

/* Y[t][r] = sum_c W[r][c] X[t][c], t < n: X (n, cols) and Y (n, rows) row-major, device.
 * Same semantics as lq_matmul (W8A8 quantizes each token's activations inside). */
int lq_cuda_matmul(lq_cuda_ctx *ctx, const lq_cuda_weight *w, const float *dX, int64_t n, float *dY);
int lq_cuda_matmul_path(lq_cuda_ctx *ctx, const lq_cuda_weight *w, const float *dX, int64_t n,
                        float *dY, lq_cuda_path path);
/* out[i][c] = W[row_i][c] as f32 for i < n, row_i = d_rows[i] (device int32 ids) or r0 + i when
 * d_rows is NULL. Embedding lookup and the GEMM tiles use it. */
int lq_cuda_dequant_rows(lq_cuda_ctx *ctx, const lq_cuda_weight *w, const int32_t *d_rows,
                         int64_t r0, int64_t n, float *dOut);

/* Tolerance of the device GEMV/GEMM against the format's matvec_ref:
 * |cuda - ref| <= atol + rtol * sum_c |W[r][c] x[c]| (derivation in kernels/cuda/lq_cuda_fmt.cu). */
void lq_cuda_tolerance(lq_wfmt fmt, double *atol, double *rtol);

/* ---- element-wise ops and attention (the forward pass), all device pointers, f32 ----------- */
/* out[t] = x[t] / sqrt(mean(x[t]^2) + eps) * weight, for n_rows rows of dim values. */
int lq_cuda_rmsnorm(lq_cuda_ctx *ctx, float *out, const float *x, const float *weight,
                    int64_t n_rows, int64_t dim, float eps);
/* Rotary embedding in place of x (n_tok rows of stride row_stride floats, each n_heads heads of
 * head_dim), token t at position pos0 + t; pairs as lq_rope_ref (interleaved or half-split). */
int lq_cuda_rope(lq_cuda_ctx *ctx, float *x, int n_tok, int64_t row_stride, int n_heads,
                 int head_dim, int pos0, const float *inv_freq, int interleaved);
/* gate[i] = silu(gate[i]) * up[i] */
int lq_cuda_swiglu(lq_cuda_ctx *ctx, float *gate, const float *up, int64_t n);
/* x[i] += y[i] */
int lq_cuda_add(lq_cuda_ctx *ctx, float *x, const float *y, int64_t n);
/* y[t][i] += b[i] for t < rows, i < cols (a linear layer's bias over a batch) */
int lq_cuda_add_bias(lq_cuda_ctx *ctx, float *y, const float *b, int64_t rows, int64_t cols);
/* Causal grouped-query attention of n_tok query rows at positions pos0 .. pos0+n_tok-1: the
 * query at p sees cache rows max(0, p - window + 1) .. p (window 0 = all of 0 .. p; kc, vc:
 * (n_ctx, n_kv_heads * head_dim)); q and out: (n_tok, n_heads * head_dim); scores are q.k * scale
 * (1 / sqrt(head_dim) for Llama, 1 / sqrt(query_pre_attn_scalar) for Gemma 3). Online softmax in
 * f32 (no score buffer, any context length); head_dim <= 256. */
int lq_cuda_attention(lq_cuda_ctx *ctx, float *out, const float *q, const float *kc,
                      const float *vc, int n_tok, int pos0, int n_heads, int n_kv_heads,
                      int head_dim, int window, float scale);

/* ---- timing (workbench, bench) ------------------------------------------------------------- */
/* Median device-to-device cudaMemcpy bandwidth in bytes/s over `reps` copies of `bytes`. */
int lq_cuda_copy_bandwidth(size_t bytes, int reps, double *bytes_per_s);
/* Median seconds of one lq_cuda_matmul_path call (after a warm-up), timed with CUDA events. */
int lq_cuda_time_matmul(lq_cuda_ctx *ctx, const lq_cuda_weight *w, const float *dX, int64_t n,
                        float *dY, lq_cuda_path path, int reps, double *secs);

#ifdef __cplusplus
}
#endif
#endif
