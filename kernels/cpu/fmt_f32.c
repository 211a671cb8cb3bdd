/* fmt_f32.c - F32 weights: scalar spec of matvec and dequant.
 *
 * The ref accumulates in double: every f32*f32 product is exact in double and the sum is far
 * more accurate than any f32 order, so the spec is (nearly) the true dot product and the fast
 * path's tolerance measures only its own f32 rounding. */
#include <string.h>
#include "kern_internal.h"

void lq_matvec_f32_ref(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
        const float *wr = (const float *)((const char *)w->data + (size_t)r * w->row_bytes);
        double s = 0.0;
        for (int64_t c = 0; c < w->cols; c++) s += (double)wr[c] * (double)x[c];
        y[r - r0] = (float)s;
    }
}

void lq_dequant_f32_ref(const lq_weight *w, int64_t r0, int64_t r1, float *out) {
    for (int64_t r = r0; r < r1; r++) {
        const float *wr = (const float *)((const char *)w->data + (size_t)r * w->row_bytes);
        float *o = out + (size_t)(r - r0) * (size_t)w->cols;
        for (int64_t c = 0; c < w->cols; c++) o[c] = wr[c];
    }
}
