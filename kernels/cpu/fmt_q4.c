/* fmt_q4.c - GGUF Q4_0 and Q4_1: blocks of 32 4-bit codes, byte j holding element j (low nibble)
 * and element j + 16 (high nibble), after a binary16 scale d (Q4_1: and minimum m) (lq_blocks.h).
 * The block codecs: ggml's dequantize_row_q4_0/q4_1 and quantize_row_q4_0_ref/q4_1_ref (what
 * llama-quantize runs without an importance matrix), the same f32 operations in the same order.
 *
 * Q4_0 quantize: m = the first element of largest |x| (sign kept), d = m / -8, id = 1 / d (0 when
 * d is 0), u = min(15, (int8)(x * id + 8.5)) (truncation: round half up of x * id + 8), so m
 * itself maps to u = 0 exactly.
 * Q4_1 quantize: d = (max - min) / 15, u = min(15, (int8)((x - min) * id + 0.5)); m = min. */
#include "kern_internal.h"
#include "lq_blocks.h"

/* 32 codes (each < 16) into 16 bytes, element j low and j + 16 high. */
static void pack_nibbles(const uint8_t *u, uint8_t *qs) {
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)(u[j] | u[j + 16] << 4);
}

static void q4_0_decode(const uint8_t *b, float *out) {
    const float d = lq_blk_f16(b);
    for (int j = 0; j < 16; j++) {
        out[j] = (float)((b[2 + j] & 0x0f) - 8) * d;
        out[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
    }
}

static void q4_0_encode(const float *x, uint8_t *b) {
    uint8_t u[LQ_QK];
    lq_blk_codes_absmax(x, 8, b, u);
    pack_nibbles(u, b + 2);
}

static void q4_1_decode(const uint8_t *b, float *out) {
    const float d = lq_blk_f16(b), m = lq_blk_f16(b + 2);
    for (int j = 0; j < 16; j++) {
        const float p0 = (float)(b[4 + j] & 0x0f) * d, p1 = (float)(b[4 + j] >> 4) * d;
        out[j] = p0 + m; /* product rounded, then the sum: ggml's x0*d + m, never fused */
        out[j + 16] = p1 + m;
    }
}

static void q4_1_encode(const float *x, uint8_t *b) {
    uint8_t u[LQ_QK];
    lq_blk_codes_minmax(x, 15, b, u);
    pack_nibbles(u, b + 4);
}

static const lq_blk_codec k_q4_0 = {.bytes = sizeof(lq_block_q4_0), .decode = q4_0_decode, .encode = q4_0_encode,
                                   .encode_w = lq_blk_encode_w_q4_0};
static const lq_blk_codec k_q4_1 = {.bytes = sizeof(lq_block_q4_1), .decode = q4_1_decode, .encode = q4_1_encode,
                                   .encode_w = lq_blk_encode_w_q4_1};
LQ_BLK_REF_DEFINE(q4_0, k_q4_0)
LQ_BLK_REF_DEFINE(q4_1, k_q4_1)

/* Integer activations (fmt_legacy_dot.c): Q4_0 x Q8_0 with codes u - 8 (ggml's
 * vec_dot_q4_0_q8_0), Q4_1 x Q8_1 with codes u and the minimum folded into m * s
 * (vec_dot_q4_1_q8_1). */
static void q4_0_icodes(const uint8_t *b, int *q) {
    for (int j = 0; j < 16; j++) {
        q[j] = (b[2 + j] & 0x0f) - 8;
        q[j + 16] = (b[2 + j] >> 4) - 8;
    }
}

static void q4_1_icodes(const uint8_t *b, int *q) {
    for (int j = 0; j < 16; j++) {
        q[j] = b[4 + j] & 0x0f;
        q[j + 16] = b[4 + j] >> 4;
    }
}

static const lq_blk_dot k_dot_q4_0 = {.bytes = 18, .act = LQ_ACT_Q8_0, .codes = q4_0_icodes,
                                      .formula = LQ_DOT_SUMI_DW_DX};
static const lq_blk_dot k_dot_q4_1 = {.bytes = 20, .act = LQ_ACT_Q8_1, .codes = q4_1_icodes,
                                      .formula = LQ_DOT_DWDX_SUMI_MS};

void lq_matvec_q_q4_0_ref(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1) {
    lq_blk_dot_ref(&k_dot_q4_0, w, xq, y, r0, r1);
}

void lq_matvec_q_q4_1_ref(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1) {
    lq_blk_dot_ref(&k_dot_q4_1, w, xq, y, r0, r1);
}
