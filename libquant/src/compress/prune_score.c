/* prune_score.c - the default importance scores and small shared helpers of the pruning driver.
 * Calibration-aware scores (Wanda, SparseGPT) replace these through lq_prune_opts. */
#include "prune_internal_drv.h"

#include <math.h>
#include <string.h>

#include "lq_blocks.h"

bool lq_prune_is_float(lq_dtype d) {
    return d == LQ_DTYPE_F32 || d == LQ_DTYPE_F16 || d == LQ_DTYPE_BF16;
}

int64_t lq_prune_count(double r, int64_t n) { return (int64_t)floor(r * (double)n + 0.5); }

void lq_prune_score_abs(void *user, const char *module, const float *w, int64_t rows, int64_t cols,
                        float *score) {
    (void)user;
    (void)module;
    for (int64_t i = 0; i < rows * cols; i++) score[i] = fabsf(w[i]);
}

/* Frobenius norm of `n_rows` rows of a row-major matrix with `cols` columns. */
static double rows_norm(const float *w, int64_t r0, int64_t n_rows, int64_t cols) {
    double s = 0.0;
    for (int64_t i = r0 * cols; i < (r0 + n_rows) * cols; i++) s += (double)w[i] * w[i];
    return sqrt(s);
}

static double cols_norm(const float *w, int64_t rows, int64_t cols, int64_t c0, int64_t n_cols) {
    double s = 0.0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = c0; c < c0 + n_cols; c++) s += (double)w[r * cols + c] * w[r * cols + c];
    return sqrt(s);
}

void lq_prune_score_norm(void *user, const lq_prune_units *u, double *score) {
    (void)user;
    int64_t out_total = u->n_units * u->out_cols;
    for (int64_t i = 0; i < u->n_units; i++) {
        double out = cols_norm(u->out, u->out_rows, out_total, i * u->out_cols, u->out_cols);
        if (u->n_in == 3) {
            /* a KV group: its value path, ||W_v rows|| * ||W_o columns|| */
            score[i] = rows_norm(u->in[2], i * u->in_rows[2], u->in_rows[2], u->dim) * out;
        } else {
            double s = out;
            for (int j = 0; j < u->n_in; j++) s *= rows_norm(u->in[j], i * u->in_rows[j], u->in_rows[j], u->dim);
            score[i] = s;
        }
    }
}
