/* test_dot_rows.c - lq_dot_f32_rows / lq_axpy_f32_rows (attention's per-key loops, register-
 * blocked): the dot rows give the bits of their scalar spec lq_dot_f32_rows_ref whatever the number
 * of keys in the call, and agree with a double-precision dot (the definition) to f32 rounding; the
 * axpy rows give the bits of lq_axpy_f32 called per key. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "lq_ops.h"

#define KT_RNG_SEED 0xd07ull
#include "kern_test_util.h"

Test(dot_rows, equal_the_per_row_calls) {
    const int64_t lens[] = {1, 7, 8, 16, 63, 64, 65, 128};
    const int64_t row_counts[] = {0, 1, 5, 8, 16, 37};
    enum { MAX_ROWS = 37, MAX_N = 128, STRIDE = 3 * MAX_N };
    static float k[MAX_ROWS * STRIDE], q[MAX_N], w[MAX_ROWS], got[MAX_ROWS], want[MAX_ROWS];
    static float y1[MAX_N], y2[MAX_N];
    fill(k, MAX_ROWS * STRIDE, -1.0f, 1.0f);
    fill(q, MAX_N, -1.0f, 1.0f);
    fill(w, MAX_ROWS, 0.0f, 1.0f);
    for (size_t a = 0; a < sizeof lens / sizeof lens[0]; a++)
        for (size_t b = 0; b < sizeof row_counts / sizeof row_counts[0]; b++) {
            const int64_t n = lens[a], rows = row_counts[b];
            lq_dot_f32_rows(q, k, STRIDE, rows, n, 0.125f, got);
            lq_dot_f32_rows_ref(q, k, STRIDE, rows, n, 0.125f, want);
            for (int64_t i = 0; i < rows; i++) {
                float alone; /* the same key in a call of its own: a block of one padded key */
                lq_dot_f32_rows(q, k + i * STRIDE, STRIDE, 1, n, 0.125f, &alone);
                cr_assert(memcmp(&got[i], &alone, sizeof(float)) == 0, "dot n=%lld row %lld: %.9g in a block, %.9g alone",
                          (long long)n, (long long)i, got[i], alone);
                double d = 0, mag = 0;
                for (int64_t c = 0; c < n; c++) d += (double)q[c] * k[i * STRIDE + c], mag += fabs((double)q[c] * k[i * STRIDE + c]);
                cr_assert(memcmp(&got[i], &want[i], sizeof(float)) == 0, "dot n=%lld row %lld: %.9g vs %.9g",
                          (long long)n, (long long)i, got[i], want[i]);
                cr_assert(fabs(got[i] - 0.125 * d) <= 1e-6 * 0.125 * mag + 1e-30, "dot n=%lld row %lld: %.9g, definition %.9g",
                          (long long)n, (long long)i, got[i], 0.125 * d);
            }
            fill(y1, n, -1.0f, 1.0f);
            memcpy(y2, y1, (size_t)n * sizeof *y1);
            lq_axpy_f32_rows(y1, w, k, STRIDE, rows, n);
            for (int64_t i = 0; i < rows; i++) lq_axpy_f32(y2, w[i], k + i * STRIDE, n);
            for (int64_t c = 0; c < n; c++)
                cr_assert(memcmp(&y1[c], &y2[c], sizeof(float)) == 0, "axpy n=%lld rows %lld: y[%lld] %.9g vs %.9g",
                          (long long)n, (long long)rows, (long long)c, y1[c], y2[c]);
        }
}
