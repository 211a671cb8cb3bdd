/* fmt_q5.c - GGUF Q5_0 and Q5_1: blocks of 32 5-bit codes, the low 4 bits packed as Q4 (byte j:
 * element j low nibble, element j + 16 high nibble), the fifth bit of element j at bit j of the
 * little-endian word qh, after a binary16 scale d (Q5_1: and minimum m) (lq_blocks.h). The block
 * codecs: ggml's dequantize_row_q5_0/q5_1 and quantize_row_q5_0_ref/q5_1_ref (what llama-quantize
 * runs without an importance matrix), the same f32 operations in the same order.
 *
 * Q5_0 quantize: m = the first element of largest |x|, d = m / -16, u = min(31, (int8)(x * id +
 * 16.5)). Q5_1: d = (max - min) / 31, u = min(31, (int8)((x - min) * id + 0.5)), m = min. */
#include <math.h>

#include "kern_internal.h"
#include "lq_blocks.h"

static void put_f16(uint8_t *b, float v) {
    const lq_f16 h = lq_f32_to_f16(v);
    b[0] = (uint8_t)(h & 0xff);
    b[1] = (uint8_t)(h >> 8);
}

/* code j of a block whose qh word starts at p (qs follows qh) */
static void q5_codes(const uint8_t *p, int *u) {
    const uint32_t qh = lq_blk_u32(p);
    for (int j = 0; j < 16; j++) {
        u[j] = (p[4 + j] & 0x0f) | (int)((qh >> j) & 1u) << 4;
        u[j + 16] = (p[4 + j] >> 4) | (int)((qh >> (j + 16)) & 1u) << 4;
    }
}

/* 32 codes (each < 32, or wrapped as ggml's uint8_t would) -> qh word and nibbles at p. */
static void q5_pack(const uint8_t *u, uint8_t *p) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        p[4 + j] = (uint8_t)((u[j] & 0x0f) | (u[j + 16] & 0x0f) << 4);
        qh |= (uint32_t)((u[j] & 0x10u) >> 4) << j;
        qh |= (uint32_t)((u[j + 16] & 0x10u) >> 4) << (j + 16);
    }
    for (int k = 0; k < 4; k++) p[k] = (uint8_t)(qh >> (8 * k));
}

static void q5_0_decode(const uint8_t *b, float *out) {
    const float d = lq_blk_f16(b);
    int u[LQ_QK];
    q5_codes(b + 2, u);
    for (int j = 0; j < LQ_QK; j++) out[j] = (float)(u[j] - 16) * d;
}

static void q5_0_encode(const float *x, uint8_t *b) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < LQ_QK; j++) {
        if (amax < fabsf(x[j])) { /* strict: the first of equal magnitudes wins */
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    const float d = max / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_f16(b, d);
    uint8_t u[LQ_QK];
    for (int j = 0; j < LQ_QK; j++) {
        const float s = x[j] * id; /* its own statement: no fused multiply-add, as in ggml */
        const int q = lq_ggml_ftoi8(s + 16.5f);
        u[j] = (uint8_t)(q < 31 ? q : 31);
    }
    q5_pack(u, b + 2);
}

static void q5_1_decode(const uint8_t *b, float *out) {
    const float d = lq_blk_f16(b), m = lq_blk_f16(b + 2);
    int u[LQ_QK];
    q5_codes(b + 4, u);
    for (int j = 0; j < LQ_QK; j++) {
        const float p = (float)u[j] * d;
        out[j] = p + m; /* product rounded, then the sum: ggml's x0*d + m, never fused */
    }
}

static void q5_1_encode(const float *x, uint8_t *b) {
    float min = 3.402823466e38f, max = -3.402823466e38f; /* FLT_MAX */
    for (int j = 0; j < LQ_QK; j++) {
        if (x[j] < min) min = x[j];
        if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / 31.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_f16(b, d);
    put_f16(b + 2, min);
    uint8_t u[LQ_QK];
    for (int j = 0; j < LQ_QK; j++) {
        const float s = (x[j] - min) * id;
        const int q = lq_ggml_ftoi8(s + 0.5f);
        u[j] = (uint8_t)(q < 31 ? q : 31);
    }
    q5_pack(u, b + 4);
}

static const lq_blk_codec k_q5_0 = {.bytes = sizeof(lq_block_q5_0), .decode = q5_0_decode, .encode = q5_0_encode};
static const lq_blk_codec k_q5_1 = {.bytes = sizeof(lq_block_q5_1), .decode = q5_1_decode, .encode = q5_1_encode};
LQ_BLK_REF_DEFINE(q5_0, k_q5_0)
LQ_BLK_REF_DEFINE(q5_1, k_q5_1)
