/* fmt_w8a8.c - W8A8: int8 weights per output channel (compressed-tensors int-quantized) times int8
 * activations quantized per token inside the kernel. Scalar spec of matvec, dequant, quantize
 * and the prefill tile.
 *
 * Layout: row r is cols bytes of two's-complement q[r][c]; aux[0] = scale[rows] f32.
 * Activations: amax = max|x|, scale_x = amax / 127, code = round_half_even(x * (127 / amax))
 * clamped to [-127, 127] (as vLLM's dynamic per-token int8 quantization; compressed-tensors'
 * fake-quant would use amax / 127.5, but real W8A8 runtimes compute this), all codes 0 when
 * amax = 0. Then acc = sum q_w * q_x exactly (int32 in the fast path: cols <= 131072 cannot
 * overflow, lq_wfmt_sizes refuses wider rows) and y = (float)acc * scale_x * scale[r], in that
 * order. The AVX2 and AVX-512 VNNI paths (fmt_w8a8_avx2.c, fmt_w8a8_avx512.c) do the same
 * integer math, so fast == ref bit for bit. */
#include <string.h>

#include "kern_internal.h"

static const int8_t *row_at(const lq_weight *w, int64_t r) {
    return (const int8_t *)w->data + (size_t)r * w->row_bytes;
}

void lq_matvec_w8a8_ref(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    const float *scale = w->aux[0];
    const float amax = lq_w8a8_amax(x, w->cols);
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f, sx = amax / 127.0f;
    for (int64_t r = r0; r < r1; r++) {
        const int8_t *wr = row_at(w, r);
        int64_t acc = 0;
        for (int64_t c = 0; c < w->cols; c++) acc += (int64_t)wr[c] * lq_w8a8_xcode(x[c], inv);
        y[r - r0] = (float)acc * sx * scale[r];
    }
}

void lq_matmul_tile_w8a8_ref(const lq_weight *w, const float *X, int64_t n, float *Y, int64_t r0,
                             int64_t r1) {
    for (int64_t t = 0; t < n; t++)
        lq_matvec_w8a8_ref(w, X + (size_t)t * (size_t)w->cols, Y + (size_t)t * (size_t)w->rows + r0,
                           r0, r1);
}

/* The weights alone (what a tool inspecting the file sees; the product is not X . dequant^T). */
void lq_dequant_w8a8_ref(const lq_weight *w, int64_t r0, int64_t r1, float *out) {
    const float *scale = w->aux[0];
    for (int64_t r = r0; r < r1; r++) {
        const int8_t *wr = row_at(w, r);
        float *o = out + (size_t)(r - r0) * (size_t)w->cols;
        for (int64_t c = 0; c < w->cols; c++) o[c] = (float)wr[c] * scale[r];
    }
}

void lq_quantize_w8a8_ref(const float *src, const lq_quant_params *p, lq_weight *dst) {
    float *scale = (float *)dst->aux[0];
    dst->group_size = 0;
    for (int64_t r = 0; r < dst->rows; r++) {
        const float *x = src + (size_t)r * (size_t)dst->cols;
        int8_t *row = (int8_t *)dst->data + (size_t)r * dst->row_bytes;
        float s, z;
        lq_quant_int_params(x, p->col_weight, dst->cols, 8, 0, p, &s, &z);
        memset(row, 0, dst->row_bytes);
        for (int64_t c = 0; c < dst->cols; c++)
            row[c] = (int8_t)lq_quant_int_code(x[c], s, 0.0f, -128, 127);
        scale[r] = s;
    }
}
