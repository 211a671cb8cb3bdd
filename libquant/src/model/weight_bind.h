/* weight_bind.h - turn checkpoint tensors into lq_weight views for the matmul kernels.
 *
 * The one place that knows how a format's tensors are named and laid out in a checkpoint:
 *   - "<prefix>.weight" stored as F32/F16/BF16 (dense);
 *   - compressed-tensors (lq_ptq.h has the layout): "<prefix>.weight_packed" I32 +
 *     "weight_scale" + "weight_shape" (+ "weight_zero_point") -> W8A16 / W4A16;
 *     "<prefix>.weight" I8 + "weight_scale" -> W8A8; F8_E4M3 + "weight_scale" -> FP8.
 * Payloads stay views into the mapping; scales and zero points become f32 arrays owned by an
 * lq_bind_owner (the model's), because the kernels read f32 side tensors.
 */
#ifndef LQ_WEIGHT_BIND_H
#define LQ_WEIGHT_BIND_H

#include "libquant/lq_checkpoint.h"
#include "lq_format.h"

/* Derived buffers allocated while binding; freed together. Also holds the checkpoint's
 * quantization_config, parsed at the first lq_bind_linear: every binding is checked against it. */
typedef struct lq_bind_owner {
    void **ptrs;
    int64_t n, cap;
    struct lq_ct_plan *plan;   /* NULL: no quantization_config */
    bool plan_loaded;
} lq_bind_owner;

/* malloc(bytes) recorded in o; NULL on failure. */
void *lq_bind_owner_alloc(lq_bind_owner *o, size_t bytes);
/* Free every buffer and o itself. NULL is a no-op. */
void lq_bind_owner_free(lq_bind_owner *o);

/* Bind the linear layer `prefix` (e.g. "model.layers.0.self_attn.q_proj") expecting a
 * rows x cols matrix. LQ_ERR_NOT_FOUND if no binder recognizes it, LQ_ERR_FORMAT on a shape
 * mismatch (message names the tensor and the checkpoint). Side arrays go to `own`.
 * The binding must be what config.json's quantization_config says of the module (scheme, group
 * size, symmetry, ignore list; no quantized tensors without one): LQ_ERR_FORMAT naming the tensor
 * otherwise, so e.g. an asymmetric checkpoint whose zero points were deleted is refused instead
 * of running as symmetric. */
lq_status lq_bind_linear(const lq_checkpoint *c, const char *prefix, int64_t rows, int64_t cols,
                         lq_bind_owner *own, lq_weight *out);

/* Copy a 1-D F32/F16/BF16 tensor of n elements into a new f32 array (norm weights). */
lq_status lq_bind_vector_f32(const lq_checkpoint *c, const char *name, int64_t n, float **out);

/* Bytes one full pass over the weight reads (payload + side tensors). */
uint64_t lq_weight_bytes(const lq_weight *w);

#endif
