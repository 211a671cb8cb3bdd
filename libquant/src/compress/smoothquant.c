/* smoothquant.c - SmoothQuant's smoothing factors (llm-compressor 0.14,
 * modifiers/transform/smoothquant/base.py _calculate_smoothing_scales and _apply_smoothing):
 *     s_j = range_j^a / w_j^(1 - a),   w_j = 2 max over the balance rows of |W_kj|
 * (s_j = range_j where w_j = 0), then s_j >= 1e-5. range_j is max - min of the smooth layer's
 * output channel j over the calibration tokens, as its hook records it. */
#include "smooth_internal.h"

#include <math.h>

void lq_sq_scales(const float *range, float *const *W, const int64_t *rows, int n_bal, int64_t cols, double alpha,
                  float *s) {
    const float a = (float)alpha;
    for (int64_t c = 0; c < cols; c++) {
        float wmax = 0.0f;
        for (int i = 0; i < n_bal; i++)
            for (int64_t r = 0; r < rows[i]; r++) {
                const float v = fabsf(W[i][r * cols + c]);
                wmax = v > wmax ? v : wmax;
            }
        const float w = 2.0f * wmax;
        const float v = w > 0.0f ? powf(range[c], a) / powf(w, 1.0f - a) : range[c];
        s[c] = v > 1e-5f ? v : 1e-5f;
    }
}
