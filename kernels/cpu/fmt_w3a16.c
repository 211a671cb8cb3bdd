/* fmt_w3a16.c - W3A16: int3 weights with a scale (and optional zero point) per group of
 * group_size columns (compressed-tensors pack-quantized, num_bits 3), f32 activations. Scalar
 * spec of matvec, dequant and quantize.
 *
 * Layout (lq_blocks.h): row r is LQ_PACK3_ROW_BYTES(cols) bytes, a little-endian bit string in
 * which column c is bits [3c, 3c + 3), u = q + 4 (compressed-tensors 0.19 packs densely: 32 codes
 * in 3 words, codes straddling words), padding bits 0; aux[0] = scale[rows][n_groups],
 * aux[1] = zero[rows][n_groups] or NULL (symmetric), both f32, zero an integer in [-4, 3].
 * W[r][c] = (q - zero[r][g]) * scale[r][g], g = c / group_size. The matvec spec sums the exact
 * (q - zero) * x per group in double and applies the group's scale once (as W4A16's). */
#include <string.h>

#include "kern_internal.h"
#include "lq_blocks.h"

static const uint8_t *row_at(const lq_weight *w, int64_t r) {
    return (const uint8_t *)w->data + (size_t)r * w->row_bytes;
}

void lq_matvec_w3a16_ref(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    const int64_t gs = lq_w4_group(w), ng = w->cols / gs;
    const float *scale = w->aux[0], *zero = w->aux[1];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = row_at(w, r);
        double s = 0.0;
        for (int64_t g = 0; g < ng; g++) {
            const double z = zero ? (double)zero[r * ng + g] : 0.0;
            double a = 0.0;
            for (int64_t c = g * gs; c < (g + 1) * gs; c++)
                a += ((double)lq_int3_get(wr, c) - z) * (double)x[c];
            s += a * (double)scale[r * ng + g];
        }
        y[r - r0] = (float)s;
    }
}

void lq_dequant_w3a16_ref(const lq_weight *w, int64_t r0, int64_t r1, float *out) {
    const int64_t gs = lq_w4_group(w), ng = w->cols / gs;
    const float *scale = w->aux[0], *zero = w->aux[1];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = row_at(w, r);
        float *o = out + (size_t)(r - r0) * (size_t)w->cols;
        for (int64_t c = 0; c < w->cols; c++) {
            const int64_t g = r * ng + c / gs;
            o[c] = ((float)lq_int3_get(wr, c) - (zero ? zero[g] : 0.0f)) * scale[g];
        }
    }
}

/* compressed-tensors' RTN with 3 bits: symmetric scale = amax / 3.5 (codes clamped to [-4, 3]),
 * asymmetric scale = range / 7 with zero = round(-4 - min / scale) (quant_common.c). */
void lq_quantize_w3a16_ref(const float *src, const lq_quant_params *p, lq_weight *dst) {
    const int64_t cols = dst->cols;
    const int64_t gs = (p->group_size > 0 && p->group_size < cols) ? p->group_size : cols;
    const int64_t ng = cols / gs;
    float *scale = (float *)dst->aux[0], *zero = (float *)dst->aux[1];
    dst->group_size = (int32_t)(gs == cols ? 0 : gs);
    for (int64_t r = 0; r < dst->rows; r++) {
        uint8_t *row = (uint8_t *)dst->data + (size_t)r * dst->row_bytes;
        memset(row, 0, dst->row_bytes); /* pack_to_int32 pads with u = 0 */
        for (int64_t g = 0; g < ng; g++) {
            const float *x = src + (size_t)r * (size_t)cols + (size_t)(g * gs);
            float s, z;
            lq_quant_int_params(x, p->col_weight ? p->col_weight + g * gs : NULL, gs, 3, p->asym, p,
                                &s, &z);
            for (int64_t c = 0; c < gs; c++)
                lq_int3_set(row, g * gs + c, lq_quant_int_code(x[c], s, z, -4, 3));
            scale[r * ng + g] = s;
            if (zero) zero[r * ng + g] = z;
        }
    }
}
