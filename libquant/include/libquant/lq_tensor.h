/* lq_tensor.h - storage dtypes and read-only tensor views.
 *
 * An lq_tensor is a view: `data` points into a mapped checkpoint (or a caller buffer); the view
 * never owns it. Element counts are int64_t: 7B+ models overflow int.
 */
#ifndef LQ_TENSOR_H
#define LQ_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Storage dtypes, as safetensors names them. Values are append-only (they may be persisted). */
typedef enum lq_dtype {
    LQ_DTYPE_F32 = 0,
    LQ_DTYPE_F16 = 1,
    LQ_DTYPE_BF16 = 2,
    LQ_DTYPE_F64 = 3,
    LQ_DTYPE_I8 = 4,
    LQ_DTYPE_U8 = 5,
    LQ_DTYPE_I16 = 6,
    LQ_DTYPE_I32 = 7,
    LQ_DTYPE_I64 = 8,
    LQ_DTYPE_F8_E4M3 = 9, /* safetensors "F8_E4M3" (torch.float8_e4m3fn) */
    LQ_DTYPE_BOOL = 10,
    /* Rows of quantized blocks in a GGUF format (Q8_0, Q4_1, Q4_K, ...): `block_fmt` names the
     * lq_wfmt; shape counts elements, nbytes the blocks' bytes. Not a safetensors dtype (size 0,
     * never parsed); lq_tensor_read_f32 / lq_tensor_get_f32 dequantize through the format. */
    LQ_DTYPE_BLOCKS = 11,
    LQ_DTYPE_COUNT
} lq_dtype;

#define LQ_MAX_DIMS 8

typedef struct lq_tensor {
    const char *name;            /* owned by whoever produced the view (the checkpoint) */
    lq_dtype dtype;
    int ndim;
    int64_t shape[LQ_MAX_DIMS];  /* row-major; shape[ndim-1] is contiguous */
    const void *data;            /* read-only view, aligned as the file allows */
    size_t nbytes;               /* == lq_dtype_size(dtype) * lq_tensor_numel(this) (BLOCKS: the
                                  * blocks' bytes) */
    int block_fmt;               /* LQ_DTYPE_BLOCKS: the lq_wfmt of the rows; else unused (0) */
} lq_tensor;

/* Bytes per element (F8 -> 1, BOOL -> 1). 0 for an invalid dtype. */
size_t lq_dtype_size(lq_dtype t);
/* safetensors spelling: "F32", "BF16", "F8_E4M3", ... */
const char *lq_dtype_name(lq_dtype t);
/* Parse the safetensors spelling; false if unknown. */
bool lq_dtype_parse(const char *s, lq_dtype *out);

/* Product of the shape; -1 if it overflows int64 or a dimension is negative. */
int64_t lq_shape_numel(int ndim, const int64_t *shape);
static inline int64_t lq_tensor_numel(const lq_tensor *t) { return lq_shape_numel(t->ndim, t->shape); }

/* dtype name, or for LQ_DTYPE_BLOCKS the block format's ("q4_1"): what tools print. */
const char *lq_tensor_type_name(const lq_tensor *t);

/* Read element i of a F32/F16/BF16/BLOCKS tensor as float (slow; for small vectors such as
 * norms). */
float lq_tensor_get_f32(const lq_tensor *t, int64_t i);

/* Convert elements [i0, i0 + n) of a F32/F16/BF16/BLOCKS tensor to f32 (the bulk path of
 * quantizers and pruners, which read whole rows; BLOCKS dequantize through the format's
 * dequant_ref, value for value ggml's dequantization). */
void lq_tensor_read_f32(const lq_tensor *t, int64_t i0, int64_t n, float *out);

/* Index of the first NaN or Inf element of a float tensor (F32, F64, F16, BF16, F8_E4M3), or -1
 * (also for integer dtypes). Reads the stored bits: no conversion, ~0.1 s per GB. */
int64_t lq_tensor_first_nonfinite(const lq_tensor *t);

#ifdef __cplusplus
}
#endif
#endif
