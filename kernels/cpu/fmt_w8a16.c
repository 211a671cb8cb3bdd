/* fmt_w8a16.c - W8A16: int8 weights per output channel (compressed-tensors pack-quantized, 8 bits),
 * f32 activations. Scalar spec of matvec, dequant and quantize.
 *
 * Layout (lq_blocks.h): row r is LQ_PACK8_ROW_BYTES(cols) bytes, byte c = q[r][c] + 128, padding
 * bytes 0; aux[0] = scale[rows] f32. W[r][c] = q[r][c] * scale[r]. The matvec spec sums the exact
 * products q * x in double and applies the row's scale once. */
#include <string.h>

#include "kern_internal.h"
#include "lq_blocks.h"

static const uint8_t *row_at(const lq_weight *w, int64_t r) {
    return (const uint8_t *)w->data + (size_t)r * w->row_bytes;
}

void lq_matvec_w8a16_ref(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    const float *scale = w->aux[0];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = row_at(w, r);
        double s = 0.0;
        for (int64_t c = 0; c < w->cols; c++) s += (double)lq_int8p_get(wr, c) * (double)x[c];
        y[r - r0] = (float)(s * (double)scale[r]);
    }
}

void lq_dequant_w8a16_ref(const lq_weight *w, int64_t r0, int64_t r1, float *out) {
    const float *scale = w->aux[0];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = row_at(w, r);
        float *o = out + (size_t)(r - r0) * (size_t)w->cols;
        for (int64_t c = 0; c < w->cols; c++) o[c] = (float)lq_int8p_get(wr, c) * scale[r];
    }
}

void lq_quantize_w8a16_ref(const float *src, const lq_quant_params *p, lq_weight *dst) {
    float *scale = (float *)dst->aux[0];
    dst->group_size = 0;
    for (int64_t r = 0; r < dst->rows; r++) {
        const float *x = src + (size_t)r * (size_t)dst->cols;
        uint8_t *row = (uint8_t *)dst->data + (size_t)r * dst->row_bytes;
        float s, z;
        lq_quant_int_params(x, p->col_weight, dst->cols, 8, 0, p, &s, &z);
        memset(row, 0, dst->row_bytes); /* pack_to_int32 pads with u = 0 */
        for (int64_t c = 0; c < dst->cols; c++)
            lq_int8p_set(row, c, lq_quant_int_code(x[c], s, 0.0f, -128, 127));
        scale[r] = s;
    }
}
