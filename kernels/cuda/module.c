/* module.c - the entry point of libquant_cuda.so: the table of lq_cuda.h calls (lq_cuda_module.h).
 *
 * Compiled into the module only (the static lq_cuda that test_cuda and the workbench link has no
 * use for it). The module is linked with --exclude-libs,ALL, so this is its one exported symbol:
 * the kernels' and lq_kernels' globals stay private to it and never meet libquant's own copies.
 */
#include "lq_cuda_module.h"

static const lq_cuda_api g_api = {
    .abi = LQ_CUDA_MODULE_ABI,
    .size = sizeof(lq_cuda_api),
    .last_error = lq_cuda_last_error,
    .device_count = lq_cuda_device_count,
    .ctx_create = lq_cuda_ctx_create,
    .ctx_free = lq_cuda_ctx_free,
    .sync = lq_cuda_sync,
    .alloc = lq_cuda_alloc,
    .free = lq_cuda_free,
    .upload = lq_cuda_upload,
    .download = lq_cuda_download,
    .copy = lq_cuda_copy,
    .weight_upload = lq_cuda_weight_upload,
    .weight_free = lq_cuda_weight_free,
    .matmul = lq_cuda_matmul,
    .dequant_rows = lq_cuda_dequant_rows,
    .rmsnorm = lq_cuda_rmsnorm,
    .rope = lq_cuda_rope,
    .swiglu = lq_cuda_swiglu,
    .add = lq_cuda_add,
    .add_bias = lq_cuda_add_bias,
    .attention = lq_cuda_attention,
};

__attribute__((visibility("default"))) const lq_cuda_api *lq_cuda_module_api(void) { return &g_api; }
