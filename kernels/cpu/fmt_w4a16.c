/* fmt_w4a16.c - W4A16: int4 weights with a scale (and optional zero point) per group of
 * group_size columns (compressed-tensors pack-quantized, 4 bits), f32 activations. Scalar spec
 * of matvec, dequant and quantize (the loops: fmt_packed_ref_tmpl.h, shared with W3A16).
 *
 * Layout (lq_blocks.h): row r is LQ_PACK4_ROW_BYTES(cols) bytes, byte k = u[2k] | u[2k+1] << 4,
 * u = q + 8, padding nibbles 0; zero an integer in [-8, 7]. */
#define PK_MATVEC lq_matvec_w4a16_ref
#define PK_DEQUANT lq_dequant_w4a16_ref
#define PK_QUANTIZE lq_quantize_w4a16_ref
#define PK_GET(row, c) lq_int4_get((row), (c))
#define PK_SET(row, c, q) lq_int4_set((row), (c), (q))
#define PK_BITS 4
#define PK_QMIN (-8)
#define PK_QMAX 7
#include "fmt_packed_ref_tmpl.h"
