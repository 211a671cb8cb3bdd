/* gguf_automix.c - per-tensor GGUF types chosen to hit a size (quant-ptq --format gguf
 * --target-bpw B; issue 14 item 5).
 *
 * Sensitivity proxy: for each quantized tensor and each candidate block type whose block divides
 * its columns, the imatrix-weighted relative output error
 *     e_t(k) = sum_r sum_c imat[c] (W[r][c] - Q_k(W)[r][c])^2 / sum_r sum_c imat[c] W[r][c]^2,
 * i.e. E||(W - Q(W)) x||^2 / E||W x||^2 under the imatrix's diagonal model of the inputs (every
 * column weight 1 when the tensor has no imatrix entry: the token embedding). Q_k is the type's
 * own quantizer with the imatrix (what the file will hold). Rows are sampled (every
 * AUTOMIX_ROW_STEP-th) to keep the search cheap.
 *
 * Choice: minimize sum_t e_t(k_t) subject to the bytes: the multiple-choice knapsack of mckp.c
 * (shared with compressed-tensors' ct_automix.c). The result is at or under the budget, and it
 * misses the budget by less than one tensor's next step (the largest step of any single tensor). */
#include "gguf_internal.h"
#include "mckp.h"

#include "lq_format.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define AUTOMIX_ROW_STEP 8

static const int k_candidates[] = {
    LQ_GGML_Q2_K, LQ_GGML_Q3_K, LQ_GGML_IQ4_XS, LQ_GGML_Q4_K, LQ_GGML_Q5_K, LQ_GGML_Q6_K,
    LQ_GGML_Q4_0, LQ_GGML_IQ4_NL, LQ_GGML_Q4_1, LQ_GGML_Q5_0, LQ_GGML_Q5_1, LQ_GGML_Q8_0,
};
#define N_CAND ((int)(sizeof k_candidates / sizeof k_candidates[0]))

typedef lq_mckp_point point; /* id: the ggml type, -1 = not applicable */

typedef struct err_job {
    const float *x;      /* sampled rows x cols */
    const float *qw;     /* imatrix or NULL */
    int64_t rows, cols;
    double signal;
    point *pt;           /* N_CAND */
    lq_status st;
} err_job;

static void err_task(void *ctx, int64_t k, int tid) {
    (void)tid;
    err_job *j = ctx;
    point *p = &j->pt[k];
    const lq_wfmt f = lq_wfmt_from_gguf_type(k_candidates[k]);
    const lq_wfmt_traits *tr = f < LQ_WFMT_COUNT ? lq_wfmt_get(f) : NULL;
    size_t rb;
    p->id = -1;
    if (!tr || !tr->quantize_ref || !lq_wfmt_sizes(f, j->rows, j->cols, NULL, &rb, NULL, NULL)) return;
    uint8_t *q = malloc((size_t)j->rows * rb);
    float *d = malloc((size_t)(j->rows * j->cols) * sizeof *d);
    if (!q || !d) {
        free(q);
        free(d);
        j->st = LQ_ERR_NOMEM;
        return;
    }
    lq_weight w = {.fmt = f, .rows = j->rows, .cols = j->cols, .data = q, .row_bytes = rb};
    tr->quantize_ref(j->x, &(lq_quant_params){.col_weight = j->qw}, &w);
    tr->dequant_ref(&w, 0, j->rows, d);
    double e = 0;
    for (int64_t r = 0; r < j->rows; r++)
        for (int64_t c = 0; c < j->cols; c++) {
            const double diff = (double)j->x[r * j->cols + c] - d[r * j->cols + c];
            e += (j->qw ? j->qw[c] : 1.0) * diff * diff;
        }
    p->err = j->signal > 0 ? e / j->signal : 0;
    p->id = k_candidates[k];
    free(q);
    free(d);
}

/* Candidate points of tensor t, sorted by bytes, reduced to the lower convex hull. Returns the
 * number of hull points (0: no candidate fits its columns). */
static int tensor_hull(const lq_automix_tensor *t, lq_pool *pool, point *hull, lq_status *st) {
    const int64_t n_rows = (t->rows + AUTOMIX_ROW_STEP - 1) / AUTOMIX_ROW_STEP;
    float *x = malloc((size_t)(n_rows * t->cols) * sizeof *x);
    if (!x) {
        *st = lq_fail(LQ_ERR_NOMEM, "out of memory");
        return 0;
    }
    double signal = 0;
    for (int64_t i = 0; i < n_rows; i++) {
        lq_tensor_read_f32(t->src, i * AUTOMIX_ROW_STEP * t->cols, t->cols, x + i * t->cols);
        for (int64_t c = 0; c < t->cols; c++) {
            const double v = x[i * t->cols + c];
            signal += (t->qw ? t->qw[c] : 1.0) * v * v;
        }
    }
    point pt[N_CAND];
    err_job j = {x, t->qw, n_rows, t->cols, signal, pt, LQ_OK};
    lq_pool_run(pool, err_task, &j, N_CAND);
    free(x);
    if (j.st != LQ_OK) {
        *st = lq_fail(j.st, "out of memory");
        return 0;
    }
    int n = 0;
    for (int k = 0; k < N_CAND; k++) {
        if (pt[k].id < 0) continue;
        uint64_t be, bb;
        lq_ggml_type_layout((uint32_t)pt[k].id, &be, &bb);
        pt[k].bytes = (uint64_t)t->rows * ((uint64_t)t->cols / be * bb);
        hull[n++] = pt[k];
    }
    return lq_mckp_hull(hull, n);
}

lq_status lq_gguf_automix(lq_automix_tensor *t, int64_t n, uint64_t budget, lq_pool *pool, lq_automix_summary *sum) {
    point *hull = malloc((size_t)(n ? n : 1) * N_CAND * sizeof *hull);
    int *nh = calloc((size_t)(n ? n : 1), sizeof *nh), *at = calloc((size_t)(n ? n : 1), sizeof *at);
    lq_status st = hull && nh && at ? LQ_OK : lq_fail(LQ_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; st == LQ_OK && i < n; i++) {
        nh[i] = tensor_hull(&t[i], pool, hull + i * N_CAND, &st);
        if (st == LQ_OK && nh[i] == 0)
            st = lq_fail(LQ_ERR_UNSUPPORTED, "tensor '%s': no block type fits %lld columns", t[i].name, (long long)t[i].cols);
        if (sum && sum->progress) sum->progress(sum->user, i + 1, n, t[i].name);
    }
    lq_mckp_result r = {0};
    if (st == LQ_OK) st = lq_mckp_solve(hull, N_CAND, nh, n, budget, at, &r);
    for (int64_t i = 0; st == LQ_OK && i < n; i++) {
        const point *p = &hull[i * N_CAND + at[i]];
        t[i].type = p->id;
        t[i].err = p->err;
        t[i].bytes = p->bytes;
    }
    if (st == LQ_OK && sum) {
        sum->bytes = r.bytes;
        sum->budget = budget;
        sum->max_step = r.max_step;
        sum->err_total = r.err;
    }
    free(hull);
    free(nh);
    free(at);
    return st;
}
