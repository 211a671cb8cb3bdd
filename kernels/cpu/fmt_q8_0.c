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

/* Q8_0 weights x Q8_0 activations (ggml's vec_dot_q8_0_q8_0): per block the int32 sum of the 32
 * code products, times d_w * d_x, summed in f32 in block order. */
void lq_matvec_q_q8_0_ref(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1) {
    const int64_t nb = w->cols / LQ_QK;
    const uint8_t *xb = xq;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *b = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        float sum = 0.0f;
        for (int64_t i = 0; i < nb; i++) {
            const uint8_t *wb = b + i * 34, *ab = xb + i * 34;
            int32_t s = 0;
            for (int j = 0; j < LQ_QK; j++) s += (int32_t)(int8_t)wb[2 + j] * (int8_t)ab[2 + j];
            sum += (float)s * (lq_blk_f16(wb) * lq_blk_f16(ab));
        }
        y[r - r0] = sum;
    }
}
