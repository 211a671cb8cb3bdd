/* fmt_w8a16_q8.c - W8A16 x Q8_0 activations (the integer-activation path, lq_format.h), scalar spec.
 *
 * The activation row arrives as Q8_0 blocks (32 codes q_j, binary16 d_b, act_quant.c); the weight
 * row holds q_c (stored q + 128, lq_blocks.h pack-quantized int8) and one scale s_r. The product
 * is that of the dequantized weights and activations, computed as ggml's vec_dot_q8_0_q8_0 does:
 *   y = s_r * sum_b d_b * D_b,  D_b = sum_{c in b} q_c x_c   (an exact int32 per block),
 * the spec summing in double, the AVX2 twin in f32 (tolerance in format_table.c). */
#include "kern_internal.h"
#include "lq_blocks.h"

void lq_matvec_q_w8a16_ref(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1) {
    const int64_t nb = w->cols / LQ_QK;
    const float *scale = w->aux[0];
    const uint8_t *xb = xq;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        double s = 0.0;
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *ab = xb + (size_t)b * sizeof(lq_block_q8_0);
            int32_t d = 0;
            for (int j = 0; j < LQ_QK; j++) d += lq_int8p_get(wr, b * LQ_QK + j) * (int8_t)ab[2 + j];
            s += (double)lq_blk_f16(ab) * (double)d;
        }
        y[r - r0] = (float)(s * (double)scale[r]);
    }
}
