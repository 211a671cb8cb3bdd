/* weight_bind.h - turn checkpoint tensors into lq_weight views for the matmul kernels.
 *
 * The one place that knows how a format's tensors are named and laid out in a checkpoint.
 * Today: "<prefix>.weight" stored as F32/F16/BF16. Quantized formats (compressed-tensors
 * "<prefix>.weight_packed" + "<prefix>.weight_scale", ...) add a binder to the table in
 * weight_bind.c; the engine stays unchanged.
 */
#ifndef LQ_WEIGHT_BIND_H
#define LQ_WEIGHT_BIND_H

#include "libquant/lq_checkpoint.h"
#include "lq_format.h"

/* Bind the linear layer `prefix` (e.g. "model.layers.0.self_attn.q_proj") expecting a
 * rows x cols matrix. LQ_ERR_NOT_FOUND if no binder recognizes it, LQ_ERR_FORMAT on a shape
 * mismatch (message names the tensor and the checkpoint). */
lq_status lq_bind_linear(const lq_checkpoint *c, const char *prefix, int64_t rows, int64_t cols,
                         lq_weight *out);

/* Copy a 1-D F32/F16/BF16 tensor of n elements into a new f32 array (norm weights). */
lq_status lq_bind_vector_f32(const lq_checkpoint *c, const char *name, int64_t n, float **out);

/* Bytes one full pass over the weight reads (payload + side tensors). */
uint64_t lq_weight_bytes(const lq_weight *w);

#endif
