/* blk_quantize_imat.c - the GGUF legacy block quantizers WITH an importance matrix (what
 * llama-quantize --imatrix runs: ggml's quantize_row_q4_0_impl, q4_1, q5_0, q5_1 with
 * quant_weights): one block of 32 at a time, given the block's imatrix entries qw (the mean
 * squares of its columns over the calibration tokens) and sigma2, the mean square of the whole
 * ROW's weights (ggml computes it once per row, not per block). Each weight's squared error is
 * weighted by qw_j * sqrt(sigma2 + x_j^2); Q4_0 / Q5_0 search a symmetric scale (make_qx_quants),
 * Q4_1 / Q5_1 a scale and min (make_qkx3_quants). Q8_0 ignores the imatrix in ggml (its codec
 * has no encode_w); IQ4_NL's weighted encoder is in fmt_iq4_nl.c.
 *
 * ggml's f32 operations in ggml's order, compiled with -ffp-contract=off (CMakeLists.txt):
 * checked against ggml by scripts/gguf_vectors/make_imat_vectors.py, pinned in
 * tests/fixtures/gguf_blocks/imat_*.
 */
#include <math.h>
#include <string.h>

#include "kern_internal.h"
#include "kq_internal.h"

static void block_weights(const float *x, const float *qw, float sigma2, float *w) {
    for (int j = 0; j < LQ_QK; ++j) w[j] = qw[j] * sqrtf(sigma2 + x[j] * x[j]);
}

/* The 5th bits of 32 codes as ggml packs them: bit j of qh <- code j, bit j + 16 <- code j + 16. */
static void pack_q5(const uint8_t *L, uint8_t *qh_out, uint8_t *qs) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
        const uint8_t xi0 = L[j], xi1 = L[j + 16];
        qs[j] = (uint8_t)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
        qh |= ((xi0 & 0x10u) >> 4) << (j + 0);
        qh |= ((xi1 & 0x10u) >> 4) << (j + 16);
    }
    qh_out[0] = (uint8_t)qh;
    qh_out[1] = (uint8_t)(qh >> 8);
    qh_out[2] = (uint8_t)(qh >> 16);
    qh_out[3] = (uint8_t)(qh >> 24);
}

void lq_blk_encode_w_q4_0(const float *x, const float *qw, float sigma2, uint8_t *b) {
    float w[LQ_QK];
    int8_t L[LQ_QK];
    block_weights(x, qw, sigma2, w);
    const float d = lq_kq_make_qx(LQ_QK, 8, x, L, w);
    lq_blk_put_f16(b, d);
    for (int j = 0; j < 16; ++j) b[2 + j] = (uint8_t)(L[j] | (L[j + 16] << 4));
}

void lq_blk_encode_w_q4_1(const float *x, const float *qw, float sigma2, uint8_t *b) {
    float w[LQ_QK], min;
    uint8_t L[LQ_QK], Laux[LQ_QK];
    block_weights(x, qw, sigma2, w);
    const float d = lq_kq_make_qkx3(LQ_QK, 15, x, w, L, &min, Laux, -0.9f, 0.05f, 36);
    lq_blk_put_f16(b, d);
    lq_blk_put_f16(b + 2, -min);
    for (int j = 0; j < 16; ++j) b[4 + j] = (uint8_t)(L[j] | (L[j + 16] << 4));
}

void lq_blk_encode_w_q5_0(const float *x, const float *qw, float sigma2, uint8_t *b) {
    float w[LQ_QK];
    int8_t L[LQ_QK];
    block_weights(x, qw, sigma2, w);
    const float d = lq_kq_make_qx(LQ_QK, 16, x, L, w);
    lq_blk_put_f16(b, d);
    pack_q5((const uint8_t *)L, b + 2, b + 6);
}

void lq_blk_encode_w_q5_1(const float *x, const float *qw, float sigma2, uint8_t *b) {
    float w[LQ_QK], min;
    uint8_t L[LQ_QK], Laux[LQ_QK];
    block_weights(x, qw, sigma2, w);
    const float d = lq_kq_make_qkx3(LQ_QK, 31, x, w, L, &min, Laux, -0.9f, 0.05f, 36);
    lq_blk_put_f16(b, d);
    lq_blk_put_f16(b + 2, -min);
    pack_q5(L, b + 4, b + 8);
}
