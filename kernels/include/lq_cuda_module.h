/* lq_cuda_module.h - the function table of the CUDA module (libquant_cuda.so).
 *
 * The CUDA kernels (kernels/cuda) and the CUDA libraries they need (cudart, cuBLAS, cuBLASLt:
 * ~200 MB mapped at every start) live in a module that libquant loads with dlopen only when a
 * CUDA device is asked for (libquant/src/model/cuda_module.c); libquant itself links no CUDA
 * library. The module exports one symbol, LQ_CUDA_MODULE_ENTRY, returning this table of the
 * lq_cuda.h calls the op glue (backend_cuda.c) makes.
 *
 * ABI: the table and the structs of lq_cuda.h it passes (lq_cuda_weight) are shared in memory
 * between two separately linked objects. Bump LQ_CUDA_MODULE_ABI whenever either changes; the
 * loader refuses a module whose abi differs or whose table is smaller than its own.
 */
#ifndef LQ_CUDA_MODULE_H
#define LQ_CUDA_MODULE_H

#include <stdint.h>

#include "lq_cuda.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LQ_CUDA_MODULE_ABI 1
#define LQ_CUDA_MODULE_FILE "libquant_cuda.so"
#define LQ_CUDA_MODULE_ENTRY "lq_cuda_module_api"

typedef struct lq_cuda_api {
    uint32_t abi;  /* LQ_CUDA_MODULE_ABI the module was built with */
    uint32_t size; /* sizeof(lq_cuda_api) in the module's build */
    const char *(*last_error)(void);
    int (*device_count)(void);
    int (*ctx_create)(lq_cuda_ctx **out);
    void (*ctx_free)(lq_cuda_ctx *ctx);
    int (*sync)(lq_cuda_ctx *ctx);
    int (*alloc)(void **dptr, size_t bytes);
    void (*free)(void *dptr);
    int (*upload)(lq_cuda_ctx *ctx, void *dst, const void *src, size_t bytes);
    int (*download)(lq_cuda_ctx *ctx, void *dst, const void *src, size_t bytes);
    int (*copy)(lq_cuda_ctx *ctx, void *dst, const void *src, size_t bytes);
    int (*weight_upload)(const lq_weight *w, lq_cuda_weight *out);
    void (*weight_free)(lq_cuda_weight *w);
    int (*matmul)(lq_cuda_ctx *ctx, const lq_cuda_weight *w, const float *dX, int64_t n, float *dY);
    int (*dequant_rows)(lq_cuda_ctx *ctx, const lq_cuda_weight *w, const int32_t *d_rows, int64_t r0,
                        int64_t n, float *dOut);
    int (*rmsnorm)(lq_cuda_ctx *ctx, float *out, const float *x, const float *weight, int64_t n_rows,
                   int64_t dim, float eps);
    int (*rope)(lq_cuda_ctx *ctx, float *x, int n_tok, int64_t row_stride, int n_heads, int head_dim,
                int pos0, const float *inv_freq, int interleaved);
    int (*swiglu)(lq_cuda_ctx *ctx, float *gate, const float *up, int64_t n);
    int (*add)(lq_cuda_ctx *ctx, float *x, const float *y, int64_t n);
    int (*add_bias)(lq_cuda_ctx *ctx, float *y, const float *b, int64_t rows, int64_t cols);
    int (*attention)(lq_cuda_ctx *ctx, float *out, const float *q, const float *kc, const float *vc,
                     int n_tok, int pos0, int n_heads, int n_kv_heads, int head_dim, int window,
                     float scale);
} lq_cuda_api;

/* The entry point (kernels/cuda/module.c), found with dlsym(handle, LQ_CUDA_MODULE_ENTRY). Never
 * fails; the table is static. */
const lq_cuda_api *lq_cuda_module_api(void);
typedef const lq_cuda_api *(*lq_cuda_module_api_fn)(void);

#ifdef __cplusplus
}
#endif
#endif
