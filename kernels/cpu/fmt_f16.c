/* fmt_f16.c - F16 weights: scalar spec of matvec and dequant.
 *
 * Each weight goes through the exact lq_f16_to_f32 (lq_blocks.h); products and the sum are in
 * double (see fmt_f32.c), so the spec is the true dot product of the stored values. */
#include "kern_internal.h"
#include "lq_blocks.h"

void lq_matvec_f16_ref(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
        const uint16_t *wr = (const uint16_t *)((const char *)w->data + (size_t)r * w->row_bytes);
        double s = 0.0;
        for (int64_t c = 0; c < w->cols; c++) s += (double)lq_f16_to_f32(wr[c]) * (double)x[c];
        y[r - r0] = (float)s;
    }
}

void lq_dequant_f16_ref(const lq_weight *w, int64_t r0, int64_t r1, float *out) {
    for (int64_t r = r0; r < r1; r++) {
        const uint16_t *wr = (const uint16_t *)((const char *)w->data + (size_t)r * w->row_bytes);
        float *o = out + (size_t)(r - r0) * (size_t)w->cols;
        for (int64_t c = 0; c < w->cols; c++) o[c] = lq_f16_to_f32(wr[c]);
    }
}
