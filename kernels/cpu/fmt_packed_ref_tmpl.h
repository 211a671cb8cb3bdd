/* fmt_packed_ref_tmpl.h - the scalar specs (matvec, dequant, quantize) of the compressed-tensors
 * pack-quantized formats, W3A16 and W4A16: they differ only in how a code is stored and in the
 * code range, which each including file names (fmt_w3a16.c, fmt_w4a16.c).
 *
 * Included after defining:
 *   PK_MATVEC, PK_DEQUANT, PK_QUANTIZE  the functions to define
 *   PK_GET(row, c), PK_SET(row, c, q)   code q of column c (lq_blocks.h's lq_int3_* / lq_int4_*)
 *   PK_BITS, PK_QMIN, PK_QMAX           num_bits and the symmetric code range
 *
 * W[r][c] = (q - zero[r][g]) * scale[r][g], g = c / group_size; aux[0] = scale[rows][n_groups],
 * aux[1] = zero[rows][n_groups] or NULL (symmetric), both f32. The matvec spec sums the exact
 * (q - zero) * x per group in double and applies the group's scale once. Quantization is
 * compressed-tensors' RTN with PK_BITS bits (quant_common.c). */
#include <string.h>

#include "kern_internal.h"
#include "lq_blocks.h"

void PK_MATVEC(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    const int64_t gs = lq_w4_group(w), ng = w->cols / gs;
    const float *scale = w->aux[0], *zero = w->aux[1];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        double s = 0.0;
        for (int64_t g = 0; g < ng; g++) {
            const double z = zero ? (double)zero[r * ng + g] : 0.0;
            double a = 0.0;
            for (int64_t c = g * gs; c < (g + 1) * gs; c++) a += ((double)PK_GET(wr, c) - z) * (double)x[c];
            s += a * (double)scale[r * ng + g];
        }
        y[r - r0] = (float)s;
    }
}

void PK_DEQUANT(const lq_weight *w, int64_t r0, int64_t r1, float *out) {
    const int64_t gs = lq_w4_group(w), ng = w->cols / gs;
    const float *scale = w->aux[0], *zero = w->aux[1];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        float *o = out + (size_t)(r - r0) * (size_t)w->cols;
        for (int64_t c = 0; c < w->cols; c++) {
            const int64_t g = r * ng + c / gs;
            o[c] = ((float)PK_GET(wr, c) - (zero ? zero[g] : 0.0f)) * scale[g];
        }
    }
}

void PK_QUANTIZE(const float *src, const lq_quant_params *p, lq_weight *dst) {
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
            lq_quant_int_params(x, p->col_weight ? p->col_weight + g * gs : NULL, gs, PK_BITS, p->asym, p, &s, &z);
            for (int64_t c = 0; c < gs; c++) PK_SET(row, g * gs + c, lq_quant_int_code(x[c], s, z, PK_QMIN, PK_QMAX));
            scale[r * ng + g] = s;
            if (zero) zero[r * ng + g] = z;
        }
    }
}

#undef PK_MATVEC
#undef PK_DEQUANT
#undef PK_QUANTIZE
#undef PK_GET
#undef PK_SET
#undef PK_BITS
#undef PK_QMIN
#undef PK_QMAX
