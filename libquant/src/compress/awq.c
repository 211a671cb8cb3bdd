/* awq.c - AWQ's grid search of one mapping (llm-compressor 0.14, modifiers/transform/awq/
 * base.py _compute_best_scale): candidate scales from the activations' and the weights' mean
 * magnitudes, the balance weights fake-quantized as Q(W s) / s, the parent's output compared
 * with the float one; the least mean square error wins.
 *
 * The parent's output: for q/k/v (gate/up) the attention (MLP) block, re-run by the engine on
 * the samples' block inputs with the fake-quantized weights swapped in (lq_model_replace_linear),
 * against the float block output; for o (down) the Linear alone, whose error over the calibration
 * tokens is exact from H = 2 sum x x^T: sum_t |D x_t|^2 = sum_r d_r H d_r^T / 2 with D = W - W'.
 * Everything else in the block keeps its float weights, as in llm-compressor (its quantization
 * is off while it calibrates). */
#include "gptq_internal.h"
#include "smooth_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- fake quantization ----------------------------------------------------------------------- */

#define FQ_ROWS 32

typedef struct fq_job {
    const float *W, *s;
    float *out;
    int64_t rows, cols, g;      /* g: group width (cols when one per row) */
    int bits;
    lq_quant_params qp;
    bool nomem;
} fq_job;

/* out = Q(W diag(s)) diag(s)^-1, Q the integer RTN of each group (lq_quant_int_params). */
static void fq_task(void *ctx, int64_t task, int tid) {
    (void)tid;
    fq_job *j = ctx;
    const int qmin = -(1 << (j->bits - 1)), qmax = (1 << (j->bits - 1)) - 1;
    float *v = malloc((size_t)j->g * sizeof *v);
    if (!v) {
        j->nomem = true;
        return;
    }
    const int64_t r1 = (task + 1) * FQ_ROWS < j->rows ? (task + 1) * FQ_ROWS : j->rows;
    for (int64_t r = task * FQ_ROWS; r < r1; r++)
        for (int64_t c0 = 0; c0 < j->cols; c0 += j->g) {
            const float *w = j->W + r * j->cols + c0;
            for (int64_t k = 0; k < j->g; k++) v[k] = w[k] * j->s[c0 + k];
            float sc, z;
            lq_quant_int_params(v, NULL, j->g, j->bits, j->qp.asym, &j->qp, &sc, &z);
            float *o = j->out + r * j->cols + c0;
            for (int64_t k = 0; k < j->g; k++)
                o[k] = ((float)lq_quant_int_code(v[k], sc, z, qmin, qmax) - z) * sc / j->s[c0 + k];
        }
    free(v);
}

static int64_t group_of(const awq_job *j) {
    const int32_t g = j->o->group_size == 0 ? 128 : j->o->group_size;
    return g > 0 && j->cols % g == 0 ? g : j->cols; /* a group that does not divide: one per row */
}

static lq_status fake_quant(const awq_job *j, int i, const float *s, float *out) {
    fq_job f = {.W = j->W[i], .s = s, .out = out, .rows = j->rows[i], .cols = j->cols, .g = group_of(j),
                .bits = j->o->bits > 0 ? j->o->bits : 4};
    f.qp = (lq_quant_params){.group_size = (int32_t)f.g, .asym = j->o->asym, .rounding = j->o->rounding,
                             .scale_dtype = j->scale_dtype};
    lq_pool_run(j->o->pool, fq_task, &f, (f.rows + FQ_ROWS - 1) / FQ_ROWS);
    return f.nomem ? lq_fail(LQ_ERR_NOMEM, "awq: out of memory") : LQ_OK;
}

/* ---- the two losses ---------------------------------------------------------------------------- */

/* Mean square error of the block output over every sample with the balance weights Wq. */
static lq_status block_loss(const awq_job *j, float *const *Wq, float *tmp, double *loss) {
    lq_weight orig[SM_MAX_BAL];
    lq_status st = LQ_OK;
    int n_set = 0;
    for (int i = 0; i < j->sp->n_bal && st == LQ_OK; i++, n_set++) {
        orig[i] = *lq_model_find_linear(j->m, j->module[i]);
        lq_weight w = {.fmt = LQ_WFMT_F32, .rows = j->rows[i], .cols = j->cols, .data = Wq[i],
                       .row_bytes = (size_t)j->cols * sizeof(float)};
        st = lq_model_replace_linear(j->m, j->module[i], &w);
    }
    double sum = 0.0;
    for (int64_t k = 0; k < j->n_samples && st == LQ_OK; k++) {
        memcpy(tmp, j->in + k * j->stride, (size_t)j->stride * sizeof *tmp);
        st = lq_session_forward_block(j->ses, j->layer, (lq_layer_block)j->sp->block, tmp, j->len, 0);
        const float *ref = j->ref + k * j->stride;
        for (int64_t e = 0; e < j->stride && st == LQ_OK; e++) {
            const double d = (double)tmp[e] - (double)ref[e];
            sum += d * d;
        }
    }
    for (int i = 0; i < n_set; i++) {
        lq_status r = lq_model_replace_linear(j->m, j->module[i], &orig[i]);
        if (st == LQ_OK) st = r;
    }
    *loss = sum / ((double)j->n_samples * (double)j->stride);
    return st;
}

/* Mean square error of the Linear's output over the calibration tokens, from H. */
static lq_status linear_loss(const awq_job *j, const float *Wq, double *loss) {
    const int64_t rows = j->rows[0], cols = j->cols;
    float *D = malloc((size_t)(rows * cols) * sizeof *D);
    if (!D) return lq_fail(LQ_ERR_NOMEM, "awq: out of memory for the output error");
    for (int64_t i = 0; i < rows * cols; i++) D[i] = (float)((double)j->W[0][i] - (double)Wq[i]);
    double sum = 0.0;
    lq_status st = lq_gptq_hform(D, rows, cols, j->H, j->o->pool, &sum);
    free(D);
    LQ_TRY(st);
    *loss = 0.5 * sum / ((double)(j->n_tok > 0 ? j->n_tok : 1) * (double)rows);
    return LQ_OK;
}

/* ---- the grid --------------------------------------------------------------------------------- */

/* Mean over every balance row of |w| / (max |w| of its group + 1e-6), per column
 * (_compute_layer_means). */
static void weight_means(const awq_job *j, float *wm) {
    const int64_t g = group_of(j);
    double *sum = calloc((size_t)j->cols, sizeof *sum);
    int64_t count = 0;
    if (!sum) { /* without memory the weights cannot take part: activations alone */
        for (int64_t c = 0; c < j->cols; c++) wm[c] = 1.0f;
        return;
    }
    for (int i = 0; i < j->sp->n_bal; i++) {
        for (int64_t r = 0; r < j->rows[i]; r++)
            for (int64_t c0 = 0; c0 < j->cols; c0 += g) {
                const float *w = j->W[i] + r * j->cols + c0;
                float mx = 0.0f;
                for (int64_t k = 0; k < g; k++) mx = fabsf(w[k]) > mx ? fabsf(w[k]) : mx;
                for (int64_t k = 0; k < g; k++) sum[c0 + k] += fabsf(w[k]) / (mx + 1e-6f);
            }
        count += j->rows[i];
    }
    for (int64_t c = 0; c < j->cols; c++) wm[c] = (float)(sum[c] / (double)count);
    free(sum);
}

/* The (ratio, duo) points of _get_grid_search_params. */
static int grid_points(lq_awq_duo duo, int n_grid, float *ratio, bool *use_duo) {
    int n = 0;
    if (duo == LQ_AWQ_DUO_BOTH) {
        const int h = n_grid / 2;
        for (int g = 0; g < h; g++)
            for (int d = 0; d < 2; d++) ratio[n] = h > 1 ? (float)g / (float)(h - 1) : 0.0f, use_duo[n++] = d;
    } else if (duo == LQ_AWQ_DUO_FALSE) {
        for (int g = 0; g < n_grid; g++) ratio[n] = (float)g / (float)(n_grid - 1), use_duo[n++] = false;
    } else {
        ratio[n] = 0.0f, use_duo[n++] = false; /* identity: plain RTN is always a candidate */
        for (int g = 0; g < n_grid - 1; g++)
            ratio[n] = n_grid > 2 ? (float)g / (float)(n_grid - 2) : 0.0f, use_duo[n++] = true;
    }
    return n;
}

static void candidate(const float *xm, const float *wm, int64_t n, float ratio, bool duo, float *s) {
    float mx = 0.0f, mn = INFINITY;
    for (int64_t c = 0; c < n; c++) {
        float v = powf(xm[c], ratio);
        if (duo) v = v / (powf(wm[c], 1.0f - ratio) + 1e-4f);
        s[c] = v > 1e-4f ? v : 1e-4f;
        mx = s[c] > mx ? s[c] : mx;
        mn = s[c] < mn ? s[c] : mn;
    }
    const float norm = sqrtf(mx * mn);
    for (int64_t c = 0; c < n; c++) {
        s[c] /= norm;
        if (!isfinite(s[c])) s[c] = 1.0f;
    }
}

lq_status lq_awq_search(const awq_job *j, float *s, lq_smooth_stat *st) {
    const int64_t n = j->cols;
    const int n_grid = j->o->n_grid > 0 ? j->o->n_grid : 20;
    float ratio[2 * 64 + 2];
    bool use_duo[2 * 64 + 2];
    if (n_grid < 2 || n_grid > 128)
        return lq_fail(LQ_ERR_INVALID_ARG, "awq: n_grid %d (2 .. 128)", n_grid);
    const int n_pts = grid_points(j->o->duo, n_grid, ratio, use_duo);
    float *xm = malloc((size_t)n * sizeof *xm), *wm = malloc((size_t)n * sizeof *wm);
    float *cand = malloc((size_t)n * sizeof *cand), *Wq[SM_MAX_BAL] = {0};
    float *tmp = j->sp->block >= 0 ? malloc((size_t)j->stride * sizeof *tmp) : NULL;
    lq_status rc = xm && wm && cand && (j->sp->block < 0 || tmp) ? LQ_OK : LQ_ERR_NOMEM;
    for (int i = 0; i < j->sp->n_bal && rc == LQ_OK; i++)
        if (!(Wq[i] = malloc((size_t)(j->rows[i] * n) * sizeof(float)))) rc = LQ_ERR_NOMEM;
    if (rc != LQ_OK) {
        rc = lq_fail(LQ_ERR_NOMEM, "awq: out of memory");
        goto done;
    }
    for (int64_t c = 0; c < n; c++) xm[c] = (float)(j->abs_sum[c] / (double)(j->n_tok > 0 ? j->n_tok : 1));
    weight_means(j, wm);
    double best = INFINITY;
    for (int p = 0; p < n_pts && rc == LQ_OK; p++) {
        candidate(xm, wm, n, ratio[p], use_duo[p], cand);
        for (int i = 0; i < j->sp->n_bal && rc == LQ_OK; i++) rc = fake_quant(j, i, cand, Wq[i]);
        double loss = INFINITY;
        if (rc == LQ_OK) rc = j->sp->block >= 0 ? block_loss(j, Wq, tmp, &loss) : linear_loss(j, Wq[0], &loss);
        if (rc != LQ_OK) break;
        if (p == 0) st->err_rtn = loss;
        if (loss < best) {
            best = loss;
            st->ratio = ratio[p];
            st->duo = use_duo[p];
            memcpy(s, cand, (size_t)n * sizeof *s);
        }
    }
    if (rc == LQ_OK && !isfinite(best))
        rc = lq_fail(LQ_ERR_FORMAT, "awq: layer %d (%s): no finite output error in the grid", j->layer, j->module[0]);
    st->err_best = best;
done:
    free(xm);
    free(wm);
    free(cand);
    free(tmp);
    for (int i = 0; i < SM_MAX_BAL; i++) free(Wq[i]);
    return rc;
}
