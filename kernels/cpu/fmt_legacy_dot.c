/* fmt_legacy_dot.c - the scalar specs of the GGUF legacy blocks' integer-activation products
 * (Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL weights x Q8_0 / Q8_1 activation blocks): ggml-cpu's generic
 * ggml_vec_dot_<type>_q8_0 / _q8_1 (ggml-cpu/quants.c), block by block, the same f32 expression
 * per block in the same order:
 *   Q4_0:          sumf += sumi * d_w * d_x              (left to right: (sumi d_w) d_x)
 *   Q5_0:          sumf += (d_w * d_x) * sumi
 *   Q4_1, Q5_1:    sumf += (d_w * d_x) * sumi + m * s    (s = Q8_1's binary16 d_x * sum(q_x))
 *   IQ4_NL:        sumf += (d_x * d_w) * sumi            (sumi over grid values, not indices)
 * sumi is the exact int32 sum of the block's 32 code products. Each format file passes its block
 * layout (the codes as small integers) and which of these formulas; the fast twins
 * (fmt_*_avx2.c through blk_q8_tmpl.h) sum the same int32 block sums in another f32 order. */
#include "kern_internal.h"
#include "lq_blocks.h"

void lq_blk_dot_ref(const lq_blk_dot *k, const lq_weight *w, const void *xq, float *y, int64_t r0,
                    int64_t r1) {
    const int64_t nb = w->cols / LQ_QK;
    const int q81 = k->act == LQ_ACT_Q8_1;
    const size_t abytes = q81 ? sizeof(lq_block_q8_1) : sizeof(lq_block_q8_0);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *b = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        float sumf = 0.0f;
        for (int64_t i = 0; i < nb; i++) {
            const uint8_t *wb = b + i * k->bytes, *ab = (const uint8_t *)xq + i * abytes;
            const int8_t *qx = (const int8_t *)(ab + (q81 ? 4 : 2));
            int q[LQ_QK];
            k->codes(wb, q);
            int32_t sumi = 0;
            for (int j = 0; j < LQ_QK; j++) sumi += q[j] * qx[j];
            const float dw = lq_blk_f16(wb), dx = lq_blk_f16(ab);
            switch (k->formula) {
            case LQ_DOT_SUMI_DW_DX: sumf += (float)sumi * dw * dx; break;
            case LQ_DOT_DWDX_SUMI: sumf += (dw * dx) * (float)sumi; break;
            case LQ_DOT_DWDX_SUMI_MS: {
                const float p = (dw * dx) * (float)sumi, ms = lq_blk_f16(wb + 2) * lq_blk_f16(ab + 2);
                sumf += p + ms;
                break;
            }
            case LQ_DOT_DXDW_SUMI: sumf += (dx * dw) * (float)sumi; break;
            }
        }
        y[r - r0] = sumf;
    }
}
