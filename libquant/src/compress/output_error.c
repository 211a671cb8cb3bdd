/* output_error.c - sum over rows of d_r^T H d_r, i.e. ||D X^T||^2 when H = 2 X^T X: the output
 * errors GPTQ and SparseGPT report per Linear and AWQ's grid objective, from the Hessian the
 * calibration already accumulated (no second pass over the activations).
 *
 * In f32: the GEMM runs at twice double's rate and in a GPTQ run this product costs as much as
 * half the Hessian's accumulation; its users need 4-5 digits (a report, a comparison between
 * grid points). Rows in fixed chunks, partial sums in double added in chunk order: the result
 * does not depend on the pool's size.
 */
#include "gptq_internal.h"

#include <math.h>
#include <stdlib.h>

#ifdef LQ_HAVE_OPENBLAS
#include <cblas.h>
#endif

#define ROWS_PER_TASK 32

typedef struct qjob {
    const float *D, *H;
    int64_t rows, cols;
    double *part;              /* per task */
} qjob;

static void qform_task(void *ctx, int64_t task, int tid) {
    (void)tid;
    const qjob *j = ctx;
    const int64_t c = j->cols, r0 = task * ROWS_PER_TASK;
    const int64_t r1 = r0 + ROWS_PER_TASK < j->rows ? r0 + ROWS_PER_TASK : j->rows;
    float *V = malloc((size_t)((r1 - r0) * c) * sizeof *V);
    if (!V) {
        j->part[task] = NAN;
        return;
    }
#ifdef LQ_HAVE_OPENBLAS
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(r1 - r0), (int)c, (int)c, 1.0f, j->D + r0 * c,
                (int)c, j->H, (int)c, 0.0f, V, (int)c);
#else
    for (int64_t r = r0; r < r1; r++)
        for (int64_t a = 0; a < c; a++) {
            float v = 0.0f;
            for (int64_t b = 0; b < c; b++) v += j->D[r * c + b] * j->H[b * c + a];
            V[(r - r0) * c + a] = v;
        }
#endif
    double acc = 0.0;
    for (int64_t i = 0; i < (r1 - r0) * c; i++) acc += (double)V[i] * j->D[r0 * c + i];
    j->part[task] = acc;
    free(V);
}

lq_status lq_gptq_hform(const float *D, int64_t rows, int64_t cols, const double *H, lq_pool *pool, double *out) {
    const int64_t n_tasks = (rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
    float *Hf = malloc((size_t)(cols * cols) * sizeof *Hf);
    double *part = malloc((size_t)(n_tasks > 0 ? n_tasks : 1) * sizeof *part);
    if (!Hf || !part) {
        free(Hf);
        free(part);
        return lq_fail(LQ_ERR_NOMEM, "out of memory for the output error of a %lld x %lld Linear", (long long)rows,
                       (long long)cols);
    }
    for (int64_t i = 0; i < cols * cols; i++) Hf[i] = (float)H[i];
    qjob j = {.D = D, .H = Hf, .rows = rows, .cols = cols, .part = part};
    lq_gptq_blas_single();
    lq_pool_run(pool, qform_task, &j, n_tasks);
    double sum = 0.0;
    for (int64_t t = 0; t < n_tasks; t++) sum += part[t];
    free(Hf);
    free(part);
    if (isnan(sum)) return lq_fail(LQ_ERR_NOMEM, "out of memory for the output error");
    *out = sum;
    return LQ_OK;
}
