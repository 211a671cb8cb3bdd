/* ct_automix.c - compressed-tensors schemes per Linear to hit a size (lq_ptq_automix.h).
 *
 * For every planned Linear and every candidate its shape allows: quantize a sample of its rows
 * with the candidate's own quantize_ref (the arithmetic the writer will use: same group size,
 * symmetry, scale dtype, rounding and clip search), dequantize, and measure the column-weighted
 * relative error (the header says why that is the output error). Bytes are lq_ct_weight_bytes of
 * the whole tensor, what the writer will store. The choice is the multiple-choice knapsack of
 * mckp.c, shared with GGUF's --target-bpw. */
#include "arch.h"
#include "ct_internal.h"
#include "float_input.h"
#include "mckp.h"

#include "libquant/lq_ptq_automix.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows sampled from a tensor above this many weights: every AUTOMIX_ROW_STEP-th (errors of a
 * scheme are alike across rows; small tensors are measured whole). */
#define AUTOMIX_SAMPLE_ABOVE ((int64_t)1 << 20)
#define AUTOMIX_ROW_STEP 8

/* ---- candidates ------------------------------------------------------------------------------ */

int lq_ptq_automix_defaults(lq_ptq_candidate *out, int max) {
    static const lq_ptq_candidate def[] = {
        {LQ_WFMT_W8A16, 0, false}, {LQ_WFMT_W4A16, 128, false}, {LQ_WFMT_W4A16, 32, false}, {LQ_WFMT_W3A16, 128, false}};
    int n = 0;
    for (; n < (int)(sizeof def / sizeof def[0]) && n < max; n++) out[n] = def[n];
    return n;
}

bool lq_ptq_candidate_parse(const char *s, lq_ptq_candidate *out) {
    char name[32];
    const char *colon = strchr(s, ':');
    size_t len = colon ? (size_t)(colon - s) : strlen(s);
    if (len == 0 || len >= sizeof name) return false;
    memcpy(name, s, len);
    name[len] = 0;
    const lq_preset *p = lq_preset_find(name);
    if (!p || p->fmt == LQ_WFMT_NONE || !lq_ct_storage_of(p->fmt)) return false;
    lq_ptq_candidate c = {p->fmt, lq_ct_grouped(p->fmt) ? p->group_size : 0, p->asym};
    if (colon) {
        char *end;
        long g = strtol(colon + 1, &end, 10);
        if (!lq_ct_grouped(p->fmt) || *end || end == colon + 1 || g < 1 || g > 1 << 20) return false;
        c.group_size = (int32_t)g;
    }
    *out = c;
    return true;
}

void lq_ptq_candidate_name(const lq_ptq_candidate *c, char *buf, size_t n) {
    if (lq_ct_grouped(c->fmt)) snprintf(buf, n, "%s g%d", lq_preset_name(c->fmt, c->asym), (int)c->group_size);
    else snprintf(buf, n, "%s", lq_preset_name(c->fmt, c->asym));
}

void lq_ptq_automix_free(lq_ptq_automix_plan *p) {
    if (!p) return;
    free(p->tensors);
    free(p->rules);
    p->tensors = NULL;
    p->rules = NULL;
    p->n = 0;
}

lq_status lq_ptq_automix_apply(const lq_ptq_automix_plan *plan, lq_ptq_opts *opts, lq_ptq_rule **owned) {
    const int64_t n = opts->n_overrides + plan->n;
    lq_ptq_rule *rules = calloc((size_t)(n > 0 ? n : 1), sizeof *rules);
    if (!rules) return lq_fail(LQ_ERR_NOMEM, "out of memory for the mixed-precision plan");
    if (opts->n_overrides > 0) memcpy(rules, opts->overrides, (size_t)opts->n_overrides * sizeof *rules);
    if (plan->n > 0) memcpy(rules + opts->n_overrides, plan->rules, (size_t)plan->n * sizeof *rules);
    opts->overrides = rules;
    opts->n_overrides = (int)n;
    *owned = rules;
    return LQ_OK;
}

/* ---- the error proxy ------------------------------------------------------------------------- */

typedef struct err_job {
    const lq_ptq_candidate *cand;
    const lq_ptq_opts *o;
    const float *x;              /* sampled rows x cols */
    const float *qw;             /* column weights (cols) or NULL: uniform */
    int64_t rows, cols;
    lq_scale_dtype sdt;
    double signal;               /* sum qw[c] x^2 */
    lq_mckp_point *pt;           /* one per candidate; id -1: not applicable */
    lq_status st;
} err_job;

static void err_task(void *ctx, int64_t k, int tid) {
    (void)tid;
    err_job *j = ctx;
    const lq_ptq_candidate *c = &j->cand[k];
    lq_mckp_point *p = &j->pt[k];
    p->id = -1;
    if (lq_ct_grouped(c->fmt) && j->cols % c->group_size != 0) return; /* no partial groups */
    lq_quant_params qp = {.group_size = c->group_size, .asym = c->asym, .scale_dtype = j->sdt,
                          .rounding = j->o->rounding, .clip_search = j->o->clip_search,
                          .col_weight = j->o->clip_search ? j->qw : NULL};
    size_t rb;
    int64_t na0, na1;
    const lq_wfmt_traits *tr = lq_wfmt_get(c->fmt);
    if (!tr || !tr->quantize_ref || !lq_wfmt_sizes(c->fmt, j->rows, j->cols, &qp, &rb, &na0, &na1)) return;
    uint8_t *q = malloc((size_t)j->rows * rb);
    float *a0 = malloc((size_t)(na0 + 1) * sizeof *a0), *a1 = malloc((size_t)(na1 + 1) * sizeof *a1);
    float *d = malloc((size_t)(j->rows * j->cols) * sizeof *d);
    if (q && a0 && a1 && d) {
        lq_weight w = {.fmt = c->fmt, .rows = j->rows, .cols = j->cols, .data = q, .row_bytes = rb,
                       .group_size = c->group_size, .aux = {a0, na1 ? a1 : NULL}};
        tr->quantize_ref(j->x, &qp, &w);
        tr->dequant_ref(&w, 0, j->rows, d);
        double e = 0;
        for (int64_t r = 0; r < j->rows; r++)
            for (int64_t col = 0; col < j->cols; col++) {
                const double diff = (double)j->x[r * j->cols + col] - d[r * j->cols + col];
                e += (j->qw ? j->qw[col] : 1.0) * diff * diff;
            }
        p->err = j->signal > 0 ? e / j->signal : 0;
        p->id = (int)k;
    } else {
        j->st = LQ_ERR_NOMEM;
    }
    free(q);
    free(a0);
    free(a1);
    free(d);
}

/* The hull of one tensor's candidates into hull[0..n_cand); returns its size (0: none fits). */
static int tensor_hull(const lq_tensor *t, const char *module, const lq_ptq_opts *o, const lq_ptq_candidate *cand,
                       int n_cand, lq_mckp_point *hull, bool *calibrated, lq_status *st) {
    const int64_t rows = t->shape[0], cols = t->shape[1];
    const int64_t step = rows * cols > AUTOMIX_SAMPLE_ABOVE ? AUTOMIX_ROW_STEP : 1, n_rows = (rows + step - 1) / step;
    const float *qw = o->calib && o->calib->find ? o->calib->find(o->calib->user, module, cols) : NULL;
    *calibrated = qw != NULL;
    float *x = malloc((size_t)(n_rows * cols) * sizeof *x);
    if (!x) {
        *st = lq_fail(LQ_ERR_NOMEM, "out of memory");
        return 0;
    }
    double signal = 0;
    for (int64_t i = 0; i < n_rows; i++) {
        lq_tensor_read_f32(t, i * step * cols, cols, x + i * cols);
        for (int64_t c = 0; c < cols; c++) signal += (qw ? qw[c] : 1.0) * (double)x[i * cols + c] * x[i * cols + c];
    }
    const lq_scale_dtype sdt = t->dtype == LQ_DTYPE_F16 ? LQ_SCALE_F16 : t->dtype == LQ_DTYPE_BF16 ? LQ_SCALE_BF16 : LQ_SCALE_F32;
    lq_mckp_point pt[LQ_PTQ_AUTOMIX_MAX_CAND];
    err_job j = {cand, o, x, qw, n_rows, cols, sdt, signal, pt, LQ_OK};
    lq_pool_run(o->pool, err_task, &j, n_cand);
    free(x);
    if (j.st != LQ_OK) {
        *st = lq_fail(j.st, "out of memory");
        return 0;
    }
    int n = 0;
    for (int k = 0; k < n_cand; k++) {
        if (pt[k].id < 0) continue;
        pt[k].bytes = lq_ct_weight_bytes(cand[k].fmt, cand[k].group_size, cand[k].asym, rows, cols, (int)lq_dtype_size(t->dtype));
        hull[n++] = pt[k];
    }
    return lq_mckp_hull(hull, n);
}

/* The Linears opts quantizes, as lq_ptq_quantize plans them: 2-D "*.weight" tensors other than
 * the embedding, plus a tied model's quantized head (the embedding planned as "lm_head"). */
static lq_status collect(const lq_checkpoint *c, const lq_ptq_opts *o, lq_ptq_automix_plan *p,
                         const lq_tensor **src) {
    const lq_arch *arch = lq_arch_find(lq_checkpoint_config(c)->arch);
    for (int64_t i = 0; i <= lq_checkpoint_count(c); i++) {
        const bool head = i == lq_checkpoint_count(c);
        const lq_tensor *t = head ? lq_checkpoint_find(c, "model.embed_tokens.weight") : lq_checkpoint_get(c, i);
        if (head && (!t || !lq_checkpoint_config(c)->tied_embeddings)) break;
        const size_t len = strlen(t->name);
        if (t->ndim != 2 || len < 7 || strcmp(t->name + len - 7, ".weight") != 0) continue;
        if (!head && (strcmp(t->name, "model.embed_tokens.weight") == 0 ||
                      (strcmp(t->name, "lm_head.weight") == 0 && lq_checkpoint_config(c)->tied_embeddings)))
            continue;
        lq_ptq_automix_tensor *e = &p->tensors[p->n];
        if (len - 7 >= sizeof e->module)
            return lq_fail(LQ_ERR_UNSUPPORTED, "%s: tensor '%s': name too long", lq_checkpoint_path(c), t->name);
        snprintf(e->module, sizeof e->module, "%.*s", head ? 7 : (int)(len - 7), head ? "lm_head" : t->name);
        if (lq_ptq_module_scheme(o, arch, e->module) == LQ_WFMT_NONE) continue;
        e->rows = t->shape[0];
        e->cols = t->shape[1];
        src[p->n++] = t;
    }
    return LQ_OK;
}

static lq_status check_candidates(const lq_ptq_candidate *cand, int n_cand) {
    if (n_cand < 1 || n_cand > LQ_PTQ_AUTOMIX_MAX_CAND)
        return lq_fail(LQ_ERR_INVALID_ARG, "%d candidate schemes (1 to %d)", n_cand, LQ_PTQ_AUTOMIX_MAX_CAND);
    for (int k = 0; k < n_cand; k++) {
        if (!lq_ct_storage_of(cand[k].fmt))
            return lq_fail(LQ_ERR_INVALID_ARG, "candidate %s has no compressed-tensors storage", lq_ptq_scheme_name(cand[k].fmt));
        if (lq_ct_grouped(cand[k].fmt) && cand[k].group_size < 1)
            return lq_fail(LQ_ERR_INVALID_ARG, "candidate %s: group size %d", lq_ptq_scheme_name(cand[k].fmt), (int)cand[k].group_size);
    }
    return LQ_OK;
}

/* Hulls of every tensor, the knapsack, and the plan's choices and rules. */
static lq_status solve(const lq_checkpoint *c, const lq_ptq_opts *o, const lq_ptq_candidate *cand, int n_cand,
                       double target_bpw, const lq_tensor **src, lq_ptq_automix_plan *p) {
    const int64_t n = p->n ? p->n : 1;
    lq_mckp_point *hull = malloc((size_t)n * (size_t)n_cand * sizeof *hull);
    int *nh = calloc((size_t)n, sizeof *nh), *at = calloc((size_t)n, sizeof *at);
    lq_status s = hull && nh && at ? LQ_OK : lq_fail(LQ_ERR_NOMEM, "out of memory");
    p->calibrated = p->n > 0;
    for (int64_t i = 0; s == LQ_OK && i < p->n; i++) {
        bool cal;
        nh[i] = tensor_hull(src[i], p->tensors[i].module, o, cand, n_cand, hull + i * n_cand, &cal, &s);
        p->calibrated = p->calibrated && cal;
        p->params += p->tensors[i].rows * p->tensors[i].cols;
        if (s == LQ_OK && nh[i] == 0)
            s = lq_fail(LQ_ERR_UNSUPPORTED, "%s: tensor '%s': no candidate scheme fits its %lld columns",
                        lq_checkpoint_path(c), src[i]->name, (long long)p->tensors[i].cols);
    }
    p->budget = (uint64_t)floor(target_bpw * (double)p->params / 8.0);
    lq_mckp_result r = {0};
    if (s == LQ_OK) s = lq_mckp_solve(hull, n_cand, nh, p->n, p->budget, at, &r);
    for (int64_t i = 0; s == LQ_OK && i < p->n; i++) {
        const lq_mckp_point *pt = &hull[i * n_cand + at[i]];
        const lq_ptq_candidate *k = &cand[pt->id];
        lq_ptq_automix_tensor *e = &p->tensors[i];
        e->choice = pt->id;
        e->bytes = pt->bytes;
        e->err = pt->err;
        p->rules[i] = (lq_ptq_rule){.pattern = e->module, .scheme = k->fmt, .own_params = true,
                                    .group_size = k->group_size, .asym = k->asym};
    }
    p->bytes = r.bytes;
    p->max_step = r.max_step;
    p->err_total = r.err;
    free(hull);
    free(nh);
    free(at);
    return s;
}

lq_status lq_ptq_automix(const char *model_path, const lq_ptq_opts *opts, const lq_ptq_candidate *cand,
                         int n_cand, double target_bpw, lq_ptq_automix_plan *out) {
    memset(out, 0, sizeof *out);
    LQ_TRY(check_candidates(cand, n_cand));
    if (!(target_bpw > 0))
        return lq_fail(LQ_ERR_INVALID_ARG, "target %g bits per weight (a positive number)", target_bpw);
    lq_checkpoint *c = NULL;
    LQ_TRY(lq_checkpoint_open(model_path, &c));
    lq_status s = lq_check_float_input(c, "quantize");
    lq_release_checkpoint(c);
    const int64_t cap = lq_checkpoint_count(c) + 1;
    lq_ptq_automix_plan p = {0};
    const lq_tensor **src = calloc((size_t)cap, sizeof *src);
    p.tensors = calloc((size_t)cap, sizeof *p.tensors);
    p.rules = calloc((size_t)cap, sizeof *p.rules);
    if (s == LQ_OK && (!src || !p.tensors || !p.rules)) s = lq_fail(LQ_ERR_NOMEM, "out of memory");
    if (s == LQ_OK) s = collect(c, opts, &p, src);
    if (s == LQ_OK && p.n == 0) s = lq_fail(LQ_ERR_INVALID_ARG, "%s: no Linear to quantize", model_path);
    if (s == LQ_OK) s = solve(c, opts, cand, n_cand, target_bpw, src, &p);
    free(src);
    lq_checkpoint_close(c);
    if (s == LQ_OK) *out = p;
    else lq_ptq_automix_free(&p);
    return s;
}
