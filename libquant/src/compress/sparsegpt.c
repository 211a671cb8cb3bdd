/* sparsegpt.c - SparseGPT of one Linear (lq_sparsegpt.h): the OBS column sweep with lazy
 * blocks, after llm-compressor 0.14's sgpt_sparsify.py, in double where it runs f32.
 *
 * The unstructured mask of a block compares all rows at once (one threshold per block), so
 * each block is three steps: the mask (serial, over the rows' weights as updated so far), the
 * in-block sweep of every row (rows in fixed chunks across the pool: a row's update reads only
 * itself and U), the lazy update of the columns after the block (same chunks). N:M masks are
 * chosen per row inside the sweep, at each group's first column, from the updated weights.
 */
#include "libquant/lq_sparsegpt.h"
#include "gptq_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ROWS_PER_TASK 16

typedef struct sjob {
    double *w;             /* rows x cols, the working weights */
    uint8_t *keep;         /* rows x cols */
    const double *U;       /* cols x cols upper factor of H^-1 */
    int64_t rows, cols, i1, i2;
    int nm_n, nm_m;
    double *E;             /* rows x (i2 - i1): the block's errors */
    double *loss;          /* per row */
} sjob;

typedef struct skey {
    double s;
    int64_t i;
} skey;

static int cmp_asc(const void *a, const void *b) {
    const skey *x = a, *y = b;
    if (x->s != y->s) return x->s < y->s ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* N:M at the group starting at column g of row w: prune the m - n lowest w^2 / U_jj^2. */
static void nm_group(const sjob *j, const double *w, uint8_t *kr, int64_t g) {
    skey k[64];
    for (int q = 0; q < j->nm_m; q++) {
        const double d = j->U[(g + q) * j->cols + g + q];
        k[q] = (skey){w[g + q] * w[g + q] / (d * d), g + q};
    }
    qsort(k, (size_t)j->nm_m, sizeof *k, cmp_asc);
    for (int q = 0; q < j->nm_m - j->nm_n; q++) kr[k[q].i] = 0;
}

/* Rows of one task: the sweep of block [i1, i2). */
static void sweep_task(void *ctx, int64_t task, int tid) {
    (void)tid;
    const sjob *j = ctx;
    const int64_t cols = j->cols, B = j->i2 - j->i1;
    const int64_t r0 = task * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK < j->rows ? r0 + ROWS_PER_TASK : j->rows;
    for (int64_t r = r0; r < r1; r++) {
        double *w = j->w + r * cols, *er = j->E + r * B;
        uint8_t *kr = j->keep + r * cols;
        double loss = 0.0;
        for (int64_t i = j->i1; i < j->i2; i++) {
            if (j->nm_m > 0 && (i - j->i1) % j->nm_m == 0) nm_group(j, w, kr, i);
            const double *u = j->U + i * cols;
            const double q = kr[i] ? w[i] : 0.0;
            const double err = (w[i] - q) / u[i];
            loss += err * err;
            w[i] = q;
            er[i - j->i1] = err;
            for (int64_t c = i + 1; c < j->i2; c++) w[c] -= err * u[c];
        }
        j->loss[r] += loss / 2.0;
    }
}

/* Rows of one task: the columns after the block get its errors at once. */
static void lazy_task(void *ctx, int64_t task, int tid) {
    (void)tid;
    const sjob *j = ctx;
    const int64_t cols = j->cols, B = j->i2 - j->i1;
    const int64_t r0 = task * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK < j->rows ? r0 + ROWS_PER_TASK : j->rows;
    lq_gptq_lazy_update(j->w + r0 * cols, j->E + r0 * B, B, j->U, r1 - r0, cols, j->i1, j->i2);
}

/* Unstructured: the floor(rows * count * sparsity) lowest w^2 / U_ii^2 of the block are
 * pruned (ties: lower row-major index within the block first). */
static bool block_mask(const sjob *j, double sparsity, skey *k) {
    const int64_t count = j->i2 - j->i1, n = j->rows * count;
    const int64_t n_prune = (int64_t)((double)n * sparsity);
    for (int64_t r = 0; r < j->rows; r++)
        for (int64_t c = 0; c < count; c++) {
            const int64_t i = j->i1 + c;
            const double d = j->U[i * j->cols + i], w = j->w[r * j->cols + i];
            k[r * count + c] = (skey){w * w / (d * d), r * count + c};
        }
    qsort(k, (size_t)n, sizeof *k, cmp_asc);
    for (int64_t q = 0; q < n_prune; q++)
        j->keep[(k[q].i / count) * j->cols + j->i1 + k[q].i % count] = 0;
    return true;
}

lq_status lq_sparsegpt_prune_linear(float *W, int64_t rows, int64_t cols, const double *H,
                                    const lq_sparsegpt_params *p, uint8_t *keep, lq_sparsegpt_stat *stat) {
    memset(stat, 0, sizeof *stat);
    const int64_t B = p->block_size > 0 ? p->block_size : 128;
    if (p->nm_m > 0 && (p->nm_n < 0 || p->nm_n > p->nm_m || p->nm_m > 64 || cols % p->nm_m != 0 || B % p->nm_m != 0))
        return lq_fail(LQ_ERR_INVALID_ARG, "sparsegpt: N:M %d:%d needs 0 <= N <= M <= 64 dividing the %lld columns "
                       "and the block size %lld", p->nm_n, p->nm_m, (long long)cols, (long long)B);
    if (p->nm_m <= 0 && !(p->sparsity >= 0.0 && p->sparsity < 1.0))
        return lq_fail(LQ_ERR_INVALID_ARG, "sparsegpt: sparsity %g is outside [0, 1)", p->sparsity);
    double *Hd = malloc((size_t)(cols * cols) * sizeof *Hd);
    double *w = malloc((size_t)(rows * cols) * sizeof *w);
    double *E = malloc((size_t)(rows * B) * sizeof *E);
    double *loss = calloc((size_t)rows, sizeof *loss);
    skey *k = p->nm_m > 0 ? NULL : malloc((size_t)(rows * B) * sizeof *k);
    lq_status st = LQ_OK;
    if (!Hd || !w || !E || !loss || (p->nm_m <= 0 && !k)) {
        st = lq_fail(LQ_ERR_NOMEM, "sparsegpt: out of memory for a %lld x %lld Linear", (long long)rows,
                     (long long)cols);
        goto done;
    }
    memcpy(Hd, H, (size_t)(cols * cols) * sizeof *Hd);
    for (int64_t i = 0; i < rows * cols; i++) w[i] = (double)W[i];
    memset(keep, 1, (size_t)(rows * cols));
    for (int64_t c = 0; c < cols; c++)
        if (Hd[c * cols + c] == 0.0) {
            Hd[c * cols + c] = 1.0;
            for (int64_t r = 0; r < rows; r++) w[r * cols + c] = 0.0;
            stat->dead_cols++;
        }
    lq_gptq_linear_stat gs = {0};
    if ((st = lq_gptq_factorize(Hd, cols, p->damp > 0.0 ? p->damp : 0.01, &gs)) != LQ_OK) goto done;
    stat->damp = gs.damp;
    stat->retries = gs.retries;
    stat->fallback = gs.rtn_fallback;
    const int64_t n_tasks = (rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
    for (int64_t i1 = 0; i1 < cols; i1 += B) {
        sjob j = {.w = w, .keep = keep, .U = Hd, .rows = rows, .cols = cols, .i1 = i1,
                  .i2 = i1 + B < cols ? i1 + B : cols, .nm_n = p->nm_n, .nm_m = p->nm_m, .E = E, .loss = loss};
        if (p->nm_m <= 0) block_mask(&j, p->sparsity, k);
        lq_pool_run(p->pool, sweep_task, &j, n_tasks);
        if (j.i2 < cols) lq_pool_run(p->pool, lazy_task, &j, n_tasks);
    }
    for (int64_t r = 0; r < rows; r++) stat->loss += loss[r];
    for (int64_t i = 0; i < rows * cols; i++) W[i] = keep[i] ? (float)w[i] : 0.0f;
done:
    free(Hd);
    free(w);
    free(E);
    free(loss);
    free(k);
    return st;
}
