/* fmt_w4a16_q8.c - W4A16 x Q8_0 activations (the integer-activation path, lq_format.h), scalar spec.
 *
 * The activation row arrives as Q8_0 blocks (32 codes q_j, binary16 d_b, act_quant.c). A weight
 * column c of row r holds u_c = q + 8 in [0, 15] (lq_blocks.h pack-quantized int4) and its group g
 * has scale s_g and zero point z_g (0 when symmetric). The product is that of the dequantized
 * weights and the dequantized activations, W[r][c] * (q_c d_b), computed the llama.cpp way:
 *   y = sum over the pieces p of the row cut at every block and group boundary of
 *       s_g * d_b * D_p,  D_p = sum_{c in p} (u_c - 8 - z_g) q_c   (an exact integer),
 * so every piece is one int32 dot product and one scaling. The fast path computes D_p as
 * sum u q - (8 + z) sum q (the zero point folded into the block's sum of activation codes, as
 * Q4_1 x Q8_1 folds its minimum into s), which is the same integer. The spec sums the scaled
 * pieces in double; the AVX2 twin in f32 (tolerance in format_table.c). */
#include "kern_internal.h"
#include "lq_blocks.h"

/* The pieces loop shared with the Q16 spec (fmt_w4a16_q16.c): the activation layouts differ only
 * in how a column's code and a block's d are read. */
void lq_w4a16_pieces_ref(const lq_weight *w, const void *xq, lq_act_code_fn code, lq_act_d_fn dblk, float *y,
                         int64_t r0, int64_t r1) {
    const int64_t gs = lq_w4_group(w), ng = w->cols / gs, cols = w->cols;
    const float *scale = w->aux[0], *zero = w->aux[1];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        double s = 0.0;
        int64_t c = 0;
        while (c < cols) {
            const int64_t b = c / LQ_QK, g = c / gs;
            int64_t end = (b + 1) * LQ_QK; /* the piece ends at the next block or group edge */
            if ((g + 1) * gs < end) end = (g + 1) * gs;
            const int off = 8 + (zero ? (int)zero[r * ng + g] : 0);
            int64_t d = 0;
            for (; c < end; c++) d += (int64_t)((lq_int4_get(wr, c) + 8) - off) * code(xq, c);
            s += (double)scale[r * ng + g] * dblk(xq, b) * (double)d;
        }
        y[r - r0] = (float)s;
    }
}

static int q8_code(const void *xq, int64_t c) {
    return (int8_t)((const uint8_t *)xq)[(size_t)(c / LQ_QK) * sizeof(lq_block_q8_0) + 2 + (size_t)(c % LQ_QK)];
}
static double q8_d(const void *xq, int64_t b) {
    return (double)lq_blk_f16((const uint8_t *)xq + (size_t)b * sizeof(lq_block_q8_0));
}

void lq_matvec_q_w4a16_ref(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1) {
    lq_w4a16_pieces_ref(w, xq, q8_code, q8_d, y, r0, r1);
}
