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
 * Choice: minimize sum_t e_t(k_t) subject to the bytes. Per tensor the (bytes, error) points'
 * lower convex hull; start every tensor at its cheapest hull point, then take hull steps in
 * order of error saved per byte while the budget allows (the Lagrangian / greedy solution of the
 * multiple-choice knapsack). The result is at or under the budget, and it misses the budget by
 * less than one tensor's next step (the largest step of any single tensor). */
#include "gguf_internal.h"

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

typedef struct point {
    uint64_t bytes;
    double err;
    int type;
} point;

typedef struct err_job {
    const float *x;      /* sampled rows x cols */
    const float *qw;     /* imatrix or NULL */
    int64_t rows, cols;
    double signal;
    point *pt;           /* N_CAND, type -1 = not applicable */
    lq_status st;
} err_job;

static void err_task(void *ctx, int64_t k, int tid) {
    (void)tid;
    err_job *j = ctx;
    point *p = &j->pt[k];
    const lq_wfmt f = lq_wfmt_from_gguf_type(k_candidates[k]);
    const lq_wfmt_traits *tr = f < LQ_WFMT_COUNT ? lq_wfmt_get(f) : NULL;
    size_t rb;
    p->type = -1;
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
    p->type = k_candidates[k];
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
    point v[N_CAND];
    for (int k = 0; k < N_CAND; k++) {
        if (pt[k].type < 0) continue;
        uint64_t be, bb;
        lq_ggml_type_layout((uint32_t)pt[k].type, &be, &bb);
        pt[k].bytes = (uint64_t)t->rows * ((uint64_t)t->cols / be * bb);
        v[n++] = pt[k];
    }
    /* sort by bytes (then error), keep the strictly improving ones, then the convex hull */
    for (int a = 1; a < n; a++)
        for (int b = a; b > 0 && (v[b].bytes < v[b - 1].bytes || (v[b].bytes == v[b - 1].bytes && v[b].err < v[b - 1].err)); b--) {
            point tmp = v[b];
            v[b] = v[b - 1];
            v[b - 1] = tmp;
        }
    int h = 0;
    for (int a = 0; a < n; a++) {
        if (h > 0 && v[a].err >= hull[h - 1].err) continue; /* costs more, no better */
        while (h >= 2) { /* drop hull[h-1] if it lies on or above the segment hull[h-2] -> v[a] */
            const point *p0 = &hull[h - 2], *p1 = &hull[h - 1];
            const double s01 = (p0->err - p1->err) / (double)(p1->bytes - p0->bytes);
            const double s02 = (p0->err - v[a].err) / (double)(v[a].bytes - p0->bytes);
            if (s01 <= s02) h--;
            else break;
        }
        hull[h++] = v[a];
    }
    return h;
}

lq_status lq_gguf_automix(lq_automix_tensor *t, int64_t n, uint64_t budget, lq_pool *pool, lq_automix_summary *sum) {
    point *hull = malloc((size_t)(n ? n : 1) * N_CAND * sizeof *hull);
    int *nh = calloc((size_t)(n ? n : 1), sizeof *nh), *at = calloc((size_t)(n ? n : 1), sizeof *at);
    lq_status st = hull && nh && at ? LQ_OK : lq_fail(LQ_ERR_NOMEM, "out of memory");
    uint64_t used = 0;
    for (int64_t i = 0; st == LQ_OK && i < n; i++) {
        nh[i] = tensor_hull(&t[i], pool, hull + i * N_CAND, &st);
        if (st == LQ_OK && nh[i] == 0)
            st = lq_fail(LQ_ERR_UNSUPPORTED, "tensor '%s': no block type fits %lld columns", t[i].name, (long long)t[i].cols);
        if (st == LQ_OK) used += hull[i * N_CAND].bytes;
        if (sum && sum->progress) sum->progress(sum->user, i + 1, n, t[i].name);
    }
    if (st == LQ_OK && used > budget)
        st = lq_fail(LQ_ERR_INVALID_ARG, "target too small: the smallest types already take %.3f MiB, the budget is %.3f MiB",
                     used / 1048576.0, budget / 1048576.0);
    uint64_t max_step = 0;
    for (int64_t i = 0; st == LQ_OK && i < n; i++)
        for (int k = 1; k < nh[i]; k++) {
            const uint64_t s = hull[i * N_CAND + k].bytes - hull[i * N_CAND + k - 1].bytes;
            max_step = s > max_step ? s : max_step;
        }
    /* greedy over hull steps by error saved per byte; a tensor's steps come in hull order, and
     * a step that does not fit ends that tensor's upgrades (its later steps are less efficient) */
    while (st == LQ_OK) {
        int64_t best = -1;
        double best_slope = 0;
        for (int64_t i = 0; i < n; i++) {
            if (at[i] + 1 >= nh[i]) continue;
            const point *p0 = &hull[i * N_CAND + at[i]], *p1 = p0 + 1;
            if (used + (p1->bytes - p0->bytes) > budget) continue;
            const double slope = (p0->err - p1->err) / (double)(p1->bytes - p0->bytes);
            if (best < 0 || slope > best_slope) {
                best = i;
                best_slope = slope;
            }
        }
        if (best < 0) break;
        const point *p0 = &hull[best * N_CAND + at[best]];
        used += (p0 + 1)->bytes - p0->bytes;
        at[best]++;
    }
    double err = 0;
    for (int64_t i = 0; st == LQ_OK && i < n; i++) {
        const point *p = &hull[i * N_CAND + at[i]];
        t[i].type = p->type;
        t[i].err = p->err;
        t[i].bytes = p->bytes;
        err += p->err;
    }
    if (st == LQ_OK && sum) {
        sum->bytes = used;
        sum->budget = budget;
        sum->max_step = max_step;
        sum->err_total = err;
    }
    free(hull);
    free(nh);
    free(at);
    return st;
}
