/* fmt_fp8.c - FP8 E4M3 weights (compressed-tensors float-quantized, torch.float8_e4m3fn) with a
 * per-channel or per-tensor scale, f32 activations. Scalar spec of matvec, dequant, quantize.
 *
 * Layout: row r is cols E4M3 codes (lq_blocks.h); aux[0] = scale[rows] f32 (per-tensor: every
 * entry equal). W[r][c] = e4m3(code) * scale[r]. Quantize: scale = amax / 448 over the row (or the
 * whole tensor with p->per_tensor), code = e4m3(clamp(x / scale, -448, 448)), round to nearest
 * even (lq_f32_to_e4m3). */
#include "kern_internal.h"
#include "lq_blocks.h"

static const uint8_t *row_at(const lq_weight *w, int64_t r) {
    return (const uint8_t *)w->data + (size_t)r * w->row_bytes;
}

void lq_matvec_fp8_ref(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    const float *scale = w->aux[0];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = row_at(w, r);
        double s = 0.0;
        for (int64_t c = 0; c < w->cols; c++) s += (double)lq_e4m3_to_f32(wr[c]) * (double)x[c];
        y[r - r0] = (float)(s * (double)scale[r]);
    }
}

void lq_dequant_fp8_ref(const lq_weight *w, int64_t r0, int64_t r1, float *out) {
    const float *scale = w->aux[0];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = row_at(w, r);
        float *o = out + (size_t)(r - r0) * (size_t)w->cols;
        for (int64_t c = 0; c < w->cols; c++) o[c] = lq_e4m3_to_f32(wr[c]) * scale[r];
    }
}

void lq_quantize_fp8_ref(const float *src, const lq_quant_params *p, lq_weight *dst) {
    float *scale = (float *)dst->aux[0];
    const int64_t cols = dst->cols;
    dst->group_size = 0;
    const float tensor_scale =
        p->per_tensor ? lq_quant_fp8_scale(src, dst->rows * cols, p) : 0.0f;
    for (int64_t r = 0; r < dst->rows; r++) {
        const float *x = src + (size_t)r * (size_t)cols;
        uint8_t *row = (uint8_t *)dst->data + (size_t)r * dst->row_bytes;
        const float s = p->per_tensor ? tensor_scale : lq_quant_fp8_scale(x, cols, p);
        for (int64_t c = 0; c < cols; c++) row[c] = lq_quant_fp8_code(x[c], s);
        scale[r] = s;
    }
}
