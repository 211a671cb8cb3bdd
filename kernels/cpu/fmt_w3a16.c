/* fmt_w3a16.c - W3A16: int3 weights with a scale (and optional zero point) per group of
 * group_size columns (compressed-tensors pack-quantized, num_bits 3), f32 activations. Scalar
 * spec of matvec, dequant and quantize (the loops: fmt_packed_ref_tmpl.h, shared with W4A16).
 *
 * Layout (lq_blocks.h): row r is LQ_PACK3_ROW_BYTES(cols) bytes, a little-endian bit string in
 * which column c is bits [3c, 3c + 3), u = q + 4 (compressed-tensors 0.19 packs densely: 32 codes
 * in 3 words, codes straddling words), padding bits 0; zero an integer in [-4, 3].
 * compressed-tensors' RTN with 3 bits: symmetric scale = amax / 3.5 (codes clamped to [-4, 3]),
 * asymmetric scale = range / 7 with zero = round(-4 - min / scale) (quant_common.c). */
#define PK_MATVEC lq_matvec_w3a16_ref
#define PK_DEQUANT lq_dequant_w3a16_ref
#define PK_QUANTIZE lq_quantize_w3a16_ref
#define PK_GET(row, c) lq_int3_get((row), (c))
#define PK_SET(row, c, q) lq_int3_set((row), (c), (q))
#define PK_BITS 3
#define PK_QMIN (-4)
#define PK_QMAX 3
#include "fmt_packed_ref_tmpl.h"
