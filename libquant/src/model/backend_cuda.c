/* backend_cuda.c - the CUDA op table: glue from lq_backend_ops to kernels/include/lq_cuda.h.
 *
 * Weights are uploaded once (lq_model_to_device); the KV cache and activations live on the
 * device, and a forward call copies in the token ids and copies out the logits, nothing else
 * (the layer program in forward.c is the same one the CPU runs). Every op is one asynchronous
 * launch on the session's stream; decode (n <= 8) runs the fused GEMV of each weight format,
 * prefill dequantizes tiles for cuBLAS (lq_cuda_matmul decides).
 *
 * The kernels are not linked in: every lq_cuda.h call goes through the table of the CUDA module
 * (lq_cuda_module.h), loaded by cu_open, the first step of putting a model on the device (so the
 * other ops never run without it). Compiled only with LQ_HAVE_CUDA (CMake builds the module);
 * lq_backend_for(LQ_DEVICE_CUDA) refuses otherwise.
 */
#ifdef LQ_HAVE_CUDA

#include <stdio.h>
#include <stdlib.h>

#include "backend.h"
#include "cuda_module.h"

/* The loaded module's table: only called after cu_open succeeded, so never NULL there. */
static const lq_cuda_api *cu(void) {
    const lq_cuda_api *api = NULL;
    (void)lq_cuda_module_get(&api);
    return api;
}

static lq_status cuda_status(int rc, const char *what) {
    switch (rc) {
    case LQ_CUDA_OK: return LQ_OK;
    case LQ_CUDA_ERR_NO_DEVICE: return lq_fail(LQ_ERR_UNSUPPORTED, "cuda: %s: %s", what, cu()->last_error());
    case LQ_CUDA_ERR_NOMEM: return lq_fail(LQ_ERR_NOMEM, "cuda: %s: %s", what, cu()->last_error());
    case LQ_CUDA_ERR_ARG: return lq_fail(LQ_ERR_UNSUPPORTED, "cuda: %s: %s", what, cu()->last_error());
    default: return lq_fail(LQ_ERR_IO, "cuda: %s: %s", what, cu()->last_error());
    }
}

/* No router_topk yet: a sparse-MoE model is refused on CUDA naming that op (lq_backend_check).
 * No paged attention either: the kernels read one contiguous cache, so lq_batch_create refuses a
 * CUDA batch naming 'attention_paged' (lq_forward's single sequence runs here unchanged). */
static bool cu_supports(lq_op op) {
    return (int)op >= 0 && op < LQ_OP_COUNT && op != LQ_OP_GEGLU_TANH && op != LQ_OP_SCALE &&
           op != LQ_OP_ROUTER_TOPK && op != LQ_OP_ATTENTION_PAGED;
}

/* The model side needs no state of its own: one device, the runtime's default. */
static lq_status cu_open(void **impl) {
    *impl = NULL;
    const lq_cuda_api *api;
    LQ_TRY(lq_cuda_module_get(&api));
    if (api->device_count() <= 0)
        return lq_fail(LQ_ERR_UNSUPPORTED, "--device cuda: no CUDA device found (cudaGetDeviceCount)");
    return LQ_OK;
}
static void cu_close(void *impl) { (void)impl; }

static lq_status cu_upload_weight(void *impl, const lq_weight *w, const char *what, void **out) {
    (void)impl;
    *out = NULL;
    lq_cuda_weight *d = calloc(1, sizeof *d);
    if (!d) return lq_fail(LQ_ERR_NOMEM, "out of memory uploading %s", what);
    int rc = cu()->weight_upload(w, d);
    if (rc != LQ_CUDA_OK) {
        free(d);
        char msg[128];
        snprintf(msg, sizeof msg, "uploading %s", what);
        return cuda_status(rc, msg);
    }
    *out = d;
    return LQ_OK;
}

static void cu_free_weight(void *impl, void *w) {
    (void)impl;
    if (!w) return;
    cu()->weight_free(w);
    free(w);
}

static lq_status cu_upload_f32(void *impl, const float *v, int64_t n, const char *what, float **out) {
    (void)impl;
    *out = NULL;
    int rc = cu()->alloc((void **)out, (size_t)n * sizeof(float));
    lq_cuda_ctx *ctx = NULL;
    if (rc == LQ_CUDA_OK) rc = cu()->ctx_create(&ctx);
    if (rc == LQ_CUDA_OK) rc = cu()->upload(ctx, *out, v, (size_t)n * sizeof(float));
    if (rc == LQ_CUDA_OK) rc = cu()->sync(ctx);
    cu()->ctx_free(ctx);
    if (rc != LQ_CUDA_OK) {
        cu()->free(*out);
        *out = NULL;
    }
    return cuda_status(rc, what);
}
/* The free functions return before touching the table on NULL: a model whose cu_open failed
 * (no module) is freed through them with nothing uploaded. */
static void cu_free_f32(void *impl, float *v) {
    (void)impl;
    if (v) cu()->free(v);
}

static lq_status cu_ctx_create(void *impl, int n_ctx, lq_pool *pool, void **out) {
    (void)impl; (void)n_ctx; (void)pool;
    return cuda_status(cu()->ctx_create((lq_cuda_ctx **)out), "creating a session");
}
static void cu_ctx_free(void *ctx) {
    if (ctx) cu()->ctx_free(ctx);
}

static lq_status cu_alloc(void *ctx, size_t bytes, void **out) {
    (void)ctx;
    return cuda_status(cu()->alloc(out, bytes), "allocating session memory");
}
static void cu_free(void *ctx, void *p) {
    (void)ctx;
    if (p) cu()->free(p);
}
static lq_status cu_upload(void *ctx, void *dst, const void *src, size_t bytes) {
    return cuda_status(cu()->upload(ctx, dst, src, bytes), "uploading tokens");
}
static lq_status cu_download(void *ctx, void *dst, const void *src, size_t bytes) {
    return cuda_status(cu()->download(ctx, dst, src, bytes), "downloading logits");
}
static lq_status cu_copy(void *ctx, void *dst, const void *src, size_t bytes) {
    return cuda_status(cu()->copy(ctx, dst, src, bytes), "copy_cache");
}
static lq_status cu_sync(void *ctx) { return cuda_status(cu()->sync(ctx), "sync"); }

static lq_status cu_embed(void *ctx, const void *w, const int32_t *ids, int n, float *x) {
    return cuda_status(cu()->dequant_rows(ctx, w, ids, 0, n, x), "embedding");
}
static lq_status cu_matmul(void *ctx, const void *w, const float *X, int64_t n, float *Y) {
    return cuda_status(cu()->matmul(ctx, w, X, n, Y), "matmul");
}
static lq_status cu_rmsnorm(void *ctx, float *out, const float *x, const float *w, int64_t rows, int64_t dim,
                            float eps) {
    return cuda_status(cu()->rmsnorm(ctx, out, x, w, rows, dim, eps), "rmsnorm");
}
static lq_status cu_rope(void *ctx, float *x, int n_tok, int64_t stride, int n_heads, int hd, int pos0,
                         const float *inv_freq, bool interleaved) {
    return cuda_status(cu()->rope(ctx, x, n_tok, stride, n_heads, hd, pos0, inv_freq, interleaved), "rope");
}
static lq_status cu_attention(void *ctx, const lq_attn_args *a) {
    return cuda_status(cu()->attention(ctx, a->out, a->q, a->kc, a->vc, a->n_tok, a->pos0, a->n_heads,
                                         a->n_kv_heads, a->head_dim, a->window, a->scale),
                       "attention");
}
static lq_status cu_glu(void *ctx, lq_act act, float *gate, const float *up, int64_t n) {
    if (act != LQ_ACT_SILU) return lq_fail(LQ_ERR_UNSUPPORTED, "cuda backend: activation %d not available", (int)act);
    return cuda_status(cu()->swiglu(ctx, gate, up, n), "swiglu");
}
static lq_status cu_add(void *ctx, float *x, const float *y, int64_t n) {
    return cuda_status(cu()->add(ctx, x, y, n), "add");
}
static lq_status cu_add_bias(void *ctx, float *y, const float *b, int64_t rows, int64_t cols) {
    return cuda_status(cu()->add_bias(ctx, y, b, rows, cols), "add_bias");
}

const lq_backend_ops lq_backend_cuda = {
    .name = "cuda",
    .device = LQ_DEVICE_CUDA,
    .host_memory = false,
    .supports = cu_supports,
    .open = cu_open,
    .close = cu_close,
    .upload_weight = cu_upload_weight,
    .free_weight = cu_free_weight,
    .upload_f32 = cu_upload_f32,
    .free_f32 = cu_free_f32,
    .ctx_create = cu_ctx_create,
    .ctx_free = cu_ctx_free,
    .alloc = cu_alloc,
    .free = cu_free,
    .upload = cu_upload,
    .download = cu_download,
    .copy = cu_copy,
    .sync = cu_sync,
    .embed = cu_embed,
    .matmul = cu_matmul,
    .rmsnorm = cu_rmsnorm,
    .rope = cu_rope,
    .attention = cu_attention,
    .glu = cu_glu,
    .add = cu_add,
    .add_bias = cu_add_bias,
};

#else
/* Without CUDA this file is empty: backend.c refuses --device cuda with a one-line reason. */
typedef int lq_backend_cuda_unused;
#endif
