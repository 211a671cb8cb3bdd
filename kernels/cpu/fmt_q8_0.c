/* fmt_q8_0.c - GGUF Q8_0: blocks of 32 int8 codes and a binary16 scale (lq_blocks.h). The block
 * codec: ggml's dequantize_row_q8_0 and quantize_row_q8_0_ref (the quantizer llama-quantize runs
 * for Q8_0, with or without an importance matrix), the same f32 operations in the same order.
 *
 * Quantize: amax = max |x|, d = amax / 127, id = 1 / d (0 when d is 0), q = roundf(x * id)
 * (halves away from zero); the stored scale is d rounded to binary16, the codes come from the
 * unrounded d, as in ggml. */
#include <math.h>

#include "kern_internal.h"
#include "lq_blocks.h"

static void q8_0_decode(const uint8_t *b, float *out) {
    const float d = lq_blk_f16(b);
    for (int j = 0; j < LQ_QK; j++) out[j] = (float)(int8_t)b[2 + j] * d;
}

static void q8_0_encode(const float *x, uint8_t *b) {
    float amax = 0.0f;
    for (int j = 0; j < LQ_QK; j++) {
        const float a = fabsf(x[j]);
        amax = amax > a ? amax : a; /* ggml's MAX(amax, fabsf(v)) */
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    lq_blk_put_f16(b, d);
    for (int j = 0; j < LQ_QK; j++) b[2 + j] = (uint8_t)lq_ggml_ftoi8(roundf(x[j] * id));
}

static const lq_blk_codec k_q8_0 = {.bytes = sizeof(lq_block_q8_0), .decode = q8_0_decode, .encode = q8_0_encode};
LQ_BLK_REF_DEFINE(q8_0, k_q8_0)
