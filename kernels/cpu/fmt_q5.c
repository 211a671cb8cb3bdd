/* fmt_q5.c - GGUF Q5_0 and Q5_1: blocks of 32 5-bit codes, the low 4 bits packed as Q4 (byte j:
 * element j low nibble, element j + 16 high nibble), the fifth bit of element j at bit j of the
 * little-endian word qh, after a binary16 scale d (Q5_1: and minimum m) (lq_blocks.h). The block
 * codecs: ggml's dequantize_row_q5_0/q5_1 and quantize_row_q5_0_ref/q5_1_ref (what llama-quantize
 * runs without an importance matrix), the same f32 operations in the same order.
 *
 * Q5_0 quantize: m = the first element of largest |x|, d = m / -16, u = min(31, (int8)(x * id +
 * 16.5)). Q5_1: d = (max - min) / 31, u = min(31, (int8)((x - min) * id + 0.5)), m = min. */
#include "kern_internal.h"
#include "lq_blocks.h"

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
    uint8_t u[LQ_QK];
    lq_blk_codes_absmax(x, 16, b, u);
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
    uint8_t u[LQ_QK];
    lq_blk_codes_minmax(x, 31, b, u);
    q5_pack(u, b + 4);
}

static const lq_blk_codec k_q5_0 = {.bytes = sizeof(lq_block_q5_0), .decode = q5_0_decode, .encode = q5_0_encode,
                                   .encode_w = lq_blk_encode_w_q5_0};
static const lq_blk_codec k_q5_1 = {.bytes = sizeof(lq_block_q5_1), .decode = q5_1_decode, .encode = q5_1_encode,
                                   .encode_w = lq_blk_encode_w_q5_1};
LQ_BLK_REF_DEFINE(q5_0, k_q5_0)
LQ_BLK_REF_DEFINE(q5_1, k_q5_1)

/* Integer activations (fmt_legacy_dot.c): Q5_0 x Q8_0 with codes u - 16 (ggml's
 * vec_dot_q5_0_q8_0), Q5_1 x Q8_1 with codes u and the minimum folded into m * s
 * (vec_dot_q5_1_q8_1). */
static void q5_0_icodes(const uint8_t *b, int *q) {
    q5_codes(b + 2, q);
    for (int j = 0; j < LQ_QK; j++) q[j] -= 16;
}

static void q5_1_icodes(const uint8_t *b, int *q) { q5_codes(b + 4, q); }

static const lq_blk_dot k_dot_q5_0 = {.bytes = 22, .act = LQ_ACT_Q8_0, .codes = q5_0_icodes,
                                      .formula = LQ_DOT_DWDX_SUMI};
static const lq_blk_dot k_dot_q5_1 = {.bytes = 24, .act = LQ_ACT_Q8_1, .codes = q5_1_icodes,
                                      .formula = LQ_DOT_DWDX_SUMI_MS};

void lq_matvec_q_q5_0_ref(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1) {
    lq_blk_dot_ref(&k_dot_q5_0, w, xq, y, r0, r1);
}

void lq_matvec_q_q5_1_ref(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1) {
    lq_blk_dot_ref(&k_dot_q5_1, w, xq, y, r0, r1);
}
