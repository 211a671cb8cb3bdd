/* gptq_run.c - the sequential GPTQ driver: decoder layer by decoder layer (lq_gptq_quantize).
 *
 * Memory: the mapped input (each layer's weight pages released once it is done), the samples'
 * hidden states X (n_samples x len x dim f32, updated in place layer after layer), one layer's
 * Hessians (one per distinct Linear input: q/k/v share one, gate/up another) and the packed
 * codes of every quantized Linear so far (the output being written).
 * Per layer l:
 *   1. every sample runs through layer l with its original weights; the linear hook adds each
 *      input to its Hessian (a copy of X's rows, so X itself is not advanced);
 *   2. each Linear of l is quantized (lq_gptq_quantize_linear) and replaced in the model by its
 *      packed codes (lq_model_replace_linear: the engine's W4A16 / W8A16 kernels run them);
 *   3. every sample runs through layer l again, now quantized, advancing X to layer l + 1.
 * Then lq_ptq_quantize writes the checkpoint, taking these codes through an lq_ptq_source.
 */
#include "libquant/lq_gptq.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arch.h"
#include "ct_internal.h"
#include "libquant/lq_model.h"

#ifdef LQ_HAVE_OPENBLAS
#include <cblas.h>
#endif

#define MAX_SITES 8

typedef struct site {
    char role[16];              /* the role whose input it is ("q" also serves k and v) */
    lq_gptq_hessian h;
} site;

typedef struct glin {           /* one Linear seen by the hook */
    char name[160];
    char site[16];
    int layer;
    lq_weight q;                /* packed codes (owned buffers below), once quantized */
    void *payload;
    float *aux0, *aux1;
} glin;

typedef struct run {
    const lq_gptq_opts *o;
    lq_model *m;
    lq_pool *pool;
    int layer;
    site sites[MAX_SITES];
    int n_sites;
    glin *lin;
    int64_t n_lin, cap_lin;
    lq_status st;               /* the hook's first failure (it cannot return one) */
} run;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* k and v multiply q's input, up multiplies gate's: one Hessian each. */
static const char *site_of(const char *role) {
    if (strcmp(role, "k") == 0 || strcmp(role, "v") == 0) return "q";
    if (strcmp(role, "up") == 0) return "gate";
    return role;
}

static site *find_site(run *r, const char *role) {
    for (int i = 0; i < r->n_sites; i++)
        if (strcmp(r->sites[i].role, role) == 0) return &r->sites[i];
    return NULL;
}

static lq_status note_linear(run *r, const lq_linear_input *in) {
    for (int64_t i = 0; i < r->n_lin; i++)
        if (strcmp(r->lin[i].name, in->module) == 0) return LQ_OK;
    if (r->n_lin == r->cap_lin) {
        int64_t nc = r->cap_lin ? 2 * r->cap_lin : 64;
        glin *p = realloc(r->lin, (size_t)nc * sizeof *p);
        if (!p) return lq_fail(LQ_ERR_NOMEM, "gptq: out of memory");
        r->lin = p;
        r->cap_lin = nc;
    }
    glin *g = &r->lin[r->n_lin++];
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", in->module);
    snprintf(g->site, sizeof g->site, "%s", site_of(in->role));
    g->layer = in->layer;
    return LQ_OK;
}

static void hook(void *user, const lq_linear_input *in) {
    run *r = user;
    if (r->st != LQ_OK || in->layer != r->layer || in->expert >= 0) return;
    if ((r->st = note_linear(r, in)) != LQ_OK) return;
    const char *sr = site_of(in->role);
    if (strcmp(sr, in->role) != 0) return; /* the same input as its site's role: counted once */
    site *s = find_site(r, sr);
    if (!s) {
        if (r->n_sites == MAX_SITES) {
            r->st = lq_fail(LQ_ERR_UNSUPPORTED, "gptq: layer %d has more than %d Linear inputs", in->layer, MAX_SITES);
            return;
        }
        s = &r->sites[r->n_sites++];
        snprintf(s->role, sizeof s->role, "%s", sr);
        if ((r->st = lq_gptq_hessian_init(&s->h, in->cols)) != LQ_OK) return;
    }
    char what[224];
    snprintf(what, sizeof what, "layer %d (%s)", in->layer, in->module);
    r->st = lq_gptq_hessian_add(&s->h, in->x, in->n_tokens, r->pool, what);
}

/* ---- one Linear ------------------------------------------------------------------------------- */

/* sum over rows of d_r^T H d_r for one matrix D (rows3 x cols): ||D X^T||^2 up to H's factor 2.
 * Rows in fixed chunks, partial sums added in task order: the result does not depend on the
 * pool. */
typedef struct qjob {
    const double *D, *H;
    int64_t rows3, cols;
    double *part;              /* per task */
} qjob;

#define QF_ROWS 32

static void qform_task(void *ctx, int64_t task, int tid) {
    (void)tid;
    const qjob *j = ctx;
    const int64_t c = j->cols, r0 = task * QF_ROWS, r1 = r0 + QF_ROWS < j->rows3 ? r0 + QF_ROWS : j->rows3;
    double *V = malloc((size_t)((r1 - r0) * c) * sizeof *V);
    double acc = 0.0;
    if (!V) {
        j->part[task] = NAN;
        return;
    }
#ifdef LQ_HAVE_OPENBLAS
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(r1 - r0), (int)c, (int)c, 1.0, j->D + r0 * c,
                (int)c, j->H, (int)c, 0.0, V, (int)c);
#else
    for (int64_t r = r0; r < r1; r++)
        for (int64_t a = 0; a < c; a++) {
            double v = 0.0;
            for (int64_t b = 0; b < c; b++) v += j->D[r * c + b] * j->H[b * c + a];
            V[(r - r0) * c + a] = v;
        }
#endif
    for (int64_t r = r0; r < r1; r++)
        for (int64_t a = 0; a < c; a++) acc += V[(r - r0) * c + a] * j->D[r * c + a];
    j->part[task] = acc;
    free(V);
}

static lq_status output_errors(const float *W, const int8_t *codes, const float *sc, const float *zp, int64_t rows,
                               int64_t cols, int64_t ng, const lq_gptq_params *gp, const double *H, lq_pool *pool,
                               double *rel_rtn, double *rel_gptq) {
    const int64_t gs = cols / ng;
    const int qmin = -(1 << (gp->bits - 1)), qmax = (1 << (gp->bits - 1)) - 1;
    double *D = malloc((size_t)(3 * rows * cols) * sizeof *D);
    int64_t n_tasks = (rows + QF_ROWS - 1) / QF_ROWS;
    double *part = malloc((size_t)n_tasks * sizeof *part);
    if (!D || !part) {
        free(D);
        free(part);
        return lq_fail(LQ_ERR_NOMEM, "gptq: out of memory for the output error");
    }
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            const float s = sc[r * ng + c / gs], z = zp[r * ng + c / gs], w = W[r * cols + c];
            const float rtn = ((float)lq_quant_int_code(w, s, z, qmin, qmax) - z) * s;
            const float gq = ((float)codes[r * cols + c] - z) * s;
            D[r * cols + c] = w;
            D[(rows + r) * cols + c] = (double)w - rtn;
            D[(2 * rows + r) * cols + c] = (double)w - gq;
        }
    double sum[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) {
        qjob j = {.D = D + k * rows * cols, .H = H, .rows3 = rows, .cols = cols, .part = part};
        lq_pool_run(pool, qform_task, &j, n_tasks);
        for (int64_t t = 0; t < n_tasks; t++) sum[k] += part[t];
    }
    free(D);
    free(part);
    *rel_rtn = sum[0] > 0.0 ? sqrt(fmax(sum[1], 0.0) / sum[0]) : 0.0;
    *rel_gptq = sum[0] > 0.0 ? sqrt(fmax(sum[2], 0.0) / sum[0]) : 0.0;
    return LQ_OK;
}

/* Per-module parameters the ptq plan would use; *skip when GPTQ leaves the module to the plan. */
static lq_status module_params(const lq_gptq_opts *o, const lq_arch *arch, const char *name, const lq_weight *w, lq_gptq_params *gp,
                               lq_wfmt *fmt, bool *skip) {
    *skip = false;
    lq_ptq_scheme sch = lq_ptq_module_scheme(&o->ptq, arch, name);
    if (sch == LQ_PTQ_NONE) {
        *skip = true;
        return LQ_OK;
    }
    if (sch != LQ_PTQ_W4A16 && sch != LQ_PTQ_W8A16)
        return lq_fail(LQ_ERR_UNSUPPORTED, "gptq: '%s': scheme %s (GPTQ writes W4A16 and W8A16)", name,
                       lq_ptq_scheme_name(sch));
    *fmt = lq_ptq_scheme_wfmt(sch);
    gp->bits = sch == LQ_PTQ_W4A16 ? 4 : 8;
    gp->asym = sch == LQ_PTQ_W4A16 && o->ptq.asym;
    gp->group_size = 0;
    if (sch == LQ_PTQ_W4A16) {
        int32_t g = o->ptq.group_size == 0 ? 128 : o->ptq.group_size;
        if (g > 0 && w->cols % g != 0) {
            if (o->ptq.group_fallback == LQ_PTQ_FALLBACK_REFUSE)
                return lq_fail(LQ_ERR_INVALID_ARG, "gptq: '%s': group size %d does not divide its %lld columns "
                               "(choose a divisor, or a --group-fallback)", name, (int)g, (long long)w->cols);
            if (o->ptq.group_fallback == LQ_PTQ_FALLBACK_IGNORE) *skip = true;
            g = 0; /* channel fallback: one group per row */
        }
        gp->group_size = g > 0 ? g : 0;
    }
    gp->scale_dtype = w->fmt == LQ_WFMT_F16 ? LQ_SCALE_F16 : w->fmt == LQ_WFMT_BF16 ? LQ_SCALE_BF16 : LQ_SCALE_F32;
    gp->damp = o->damp > 0.0 ? o->damp : 0.01;
    gp->block_size = o->block_size > 0 ? o->block_size : 128;
    gp->actorder = o->actorder;
    gp->pool = o->ptq.pool;
    return LQ_OK;
}

/* GPTQ one Linear of the current layer and put its codes into the model. */
static lq_status quantize_one(run *r, glin *g, lq_gptq_stat *out) {
    const lq_weight *w = lq_model_find_linear(r->m, g->name);
    site *s = find_site(r, g->site);
    if (!w || !s) return lq_fail(LQ_ERR_NOT_FOUND, "gptq: no weight or inputs for '%s'", g->name);
    lq_gptq_params gp;
    lq_wfmt fmt = LQ_WFMT_COUNT;
    bool skip;
    LQ_TRY(module_params(r->o, lq_arch_find(lq_model_config(r->m)->arch), g->name, w, &gp, &fmt, &skip));
    if (skip) return LQ_OK;
    const int64_t rows = w->rows, cols = w->cols, ng = gp.group_size > 0 ? cols / gp.group_size : 1;
    lq_quant_params qp = {.group_size = gp.group_size, .asym = gp.asym, .scale_dtype = gp.scale_dtype};
    size_t row_bytes;
    int64_t n0, n1;
    if (!lq_wfmt_sizes(fmt, rows, cols, &qp, &row_bytes, &n0, &n1) || n0 != rows * ng)
        return lq_fail(LQ_ERR_UNSUPPORTED, "gptq: '%s': %lld x %lld has no %s layout", g->name, (long long)rows,
                       (long long)cols, lq_wfmt_get(fmt)->name);
    float *W = malloc((size_t)(rows * cols) * sizeof *W);
    int8_t *codes = malloc((size_t)(rows * cols));
    float *sc = malloc((size_t)(rows * ng) * sizeof *sc), *zp = malloc((size_t)(rows * ng) * sizeof *zp);
    g->payload = malloc((size_t)rows * row_bytes);
    lq_status st = W && codes && sc && zp && g->payload ? LQ_OK : lq_fail(LQ_ERR_NOMEM, "gptq: '%s': out of memory",
                                                                          g->name);
    if (st == LQ_OK) lq_wfmt_get(w->fmt)->dequant_ref(w, 0, rows, W);
    if (st == LQ_OK) st = lq_gptq_quantize_linear(W, rows, cols, s->h.h, &gp, codes, sc, zp, &out->g);
    if (st == LQ_OK)
        st = output_errors(W, codes, sc, zp, rows, cols, ng, &gp, s->h.h, r->pool, &out->rel_err_rtn,
                           &out->rel_err_gptq);
    if (st == LQ_OK) {
        snprintf(out->name, sizeof out->name, "%s", g->name);
        out->rows = rows;
        out->cols = cols;
        lq_ct_pack_int32(codes, rows, cols, gp.bits, 1, g->payload);
        lq_release_range(w->data, (size_t)rows * w->row_bytes); /* the original is not read again */
        g->q = (lq_weight){.fmt = fmt, .rows = rows, .cols = cols, .data = g->payload, .row_bytes = row_bytes,
                           .group_size = gp.group_size};
        g->aux0 = sc;
        g->q.aux[0] = sc;
        sc = NULL;
        if (gp.asym) {
            g->aux1 = zp;
            g->q.aux[1] = zp;
            zp = NULL;
        }
        st = lq_model_replace_linear(r->m, g->name, &g->q);
    }
    free(W);
    free(codes);
    free(sc);
    free(zp);
    return st;
}

/* ---- the driver ------------------------------------------------------------------------------ */

static lq_status source_get(void *user, const char *module, lq_weight *w) {
    run *r = user;
    for (int64_t i = 0; i < r->n_lin; i++) {
        const glin *g = &r->lin[i];
        if (strcmp(g->name, module) != 0 || !g->q.data) continue;
        if (g->q.fmt != w->fmt || g->q.row_bytes != w->row_bytes || g->q.group_size != w->group_size)
            return lq_fail(LQ_ERR_MISMATCH, "gptq: '%s': the writer planned another layout", module);
        const int64_t ng = w->group_size > 0 ? w->cols / w->group_size : 1;
        memcpy((void *)w->data, g->payload, (size_t)w->rows * w->row_bytes);
        memcpy((void *)w->aux[0], g->aux0, (size_t)(w->rows * ng) * sizeof(float));
        if (g->aux1 && w->aux[1]) memcpy((void *)w->aux[1], g->aux1, (size_t)(w->rows * ng) * sizeof(float));
        return LQ_OK;
    }
    return LQ_ERR_NOT_FOUND;
}

static void free_sites(run *r) {
    for (int i = 0; i < r->n_sites; i++) lq_gptq_hessian_free(&r->sites[i].h);
    r->n_sites = 0;
}

void lq_gptq_summary_free(lq_gptq_summary *s) {
    if (!s) return;
    lq_ptq_summary_free(&s->ptq);
    free(s->linears);
    s->linears = NULL;
    s->n_linears = 0;
}

/* Layer l: Hessians with the original weights, GPTQ of its Linears, then X through the
 * quantized layer. */
static lq_status run_layer(run *r, lq_session *ses, float *X, float *tmp, const lq_calib_set *cs, int dim,
                           lq_gptq_summary *sum) {
    const int64_t stride = (int64_t)cs->len * dim;
    int64_t first = r->n_lin;
    lq_session_set_linear_hook(ses, hook, r);
    for (int64_t k = 0; k < cs->n_samples && r->st == LQ_OK; k++) {
        memcpy(tmp, X + k * stride, (size_t)stride * sizeof *tmp);
        LQ_TRY(lq_session_forward_layer(ses, r->layer, tmp, cs->len, 0));
    }
    lq_session_set_linear_hook(ses, NULL, NULL);
    LQ_TRY(r->st);
    for (int i = 0; i < r->n_sites; i++) lq_gptq_hessian_finish(&r->sites[i].h);
    for (int64_t i = first; i < r->n_lin; i++) {
        lq_gptq_stat st = {0};
        LQ_TRY(quantize_one(r, &r->lin[i], &st));
        if (!r->lin[i].q.data) continue;
        lq_gptq_stat *p = realloc(sum->linears, (size_t)(sum->n_linears + 1) * sizeof *p);
        if (!p) return lq_fail(LQ_ERR_NOMEM, "gptq: out of memory");
        sum->linears = p;
        sum->linears[sum->n_linears++] = st;
        sum->n_retried += st.g.retries > 0;
        sum->n_fallback += st.g.rtn_fallback;
    }
    free_sites(r);
    for (int64_t k = 0; k < cs->n_samples; k++) LQ_TRY(lq_session_forward_layer(ses, r->layer, X + k * stride, cs->len, 0));
    return LQ_OK;
}

static lq_status calibrate(run *r, const char *model_path, lq_gptq_summary *sum) {
    const lq_gptq_opts *o = r->o;
    const lq_config *c = lq_model_config(r->m);
    lq_tokenizer *tok = NULL;
    lq_calib_set cs = {0};
    lq_session *ses = NULL;
    float *X = NULL, *tmp = NULL;
    lq_status st = lq_tokenizer_load_for_model(model_path, o->tokenizer, c->vocab_size, &tok);
    if (st == LQ_OK)
        st = lq_calib_samples(tok, o->calib, o->n_calib, o->n_samples > 0 ? o->n_samples : 128,
                              o->sample_len > 0 ? o->sample_len : 512, o->seed, &cs);
    lq_tokenizer_free(tok);
    if (st == LQ_OK) st = lq_session_create(r->m, cs.len, r->pool, &ses);
    const int64_t stride = (int64_t)cs.len * c->dim;
    if (st == LQ_OK) {
        X = malloc((size_t)(cs.n_samples * stride) * sizeof *X);
        tmp = malloc((size_t)stride * sizeof *tmp);
        if (!X || !tmp) st = lq_fail(LQ_ERR_NOMEM, "gptq: out of memory for %lld x %d hidden states",
                                     (long long)cs.n_samples, cs.len);
    }
    for (int64_t k = 0; st == LQ_OK && k < cs.n_samples; k++)
        st = lq_session_embed(ses, cs.ids + k * cs.len, cs.len, X + k * stride);
    sum->n_samples = cs.n_samples;
    sum->sample_len = cs.len;
    sum->n_windows = cs.n_windows;
    double t0 = now_s();
    for (int l = 0; st == LQ_OK && l < c->n_layers; l++) {
        r->layer = l;
        st = run_layer(r, ses, X, tmp, &cs, c->dim, sum);
        if (st == LQ_OK && o->progress) o->progress(o->user, l, c->n_layers, now_s() - t0);
    }
    free_sites(r);
    sum->calib_seconds = now_s() - t0;
    free(X);
    free(tmp);
    lq_session_free(ses);
    lq_calib_set_free(&cs);
    return st;
}

lq_status lq_gptq_quantize(const char *model_path, const char *out_dir, const lq_gptq_opts *opts,
                           lq_gptq_summary *summary) {
    lq_gptq_summary sum = {0};
    if (opts->ptq.scheme != LQ_PTQ_W4A16 && opts->ptq.scheme != LQ_PTQ_W8A16)
        return lq_fail(LQ_ERR_UNSUPPORTED, "gptq: scheme %s (GPTQ writes W4A16 and W8A16)",
                       lq_ptq_scheme_name(opts->ptq.scheme));
    if (opts->actorder < 0 || opts->actorder >= LQ_GPTQ_ACTORDER_COUNT)
        return lq_fail(LQ_ERR_INVALID_ARG, "gptq: unknown activation order %d", (int)opts->actorder);
    lq_checkpoint *ck;
    LQ_TRY(lq_checkpoint_open(model_path, &ck));
    bool l2c = lq_checkpoint_kind(ck) == LQ_CKPT_LLAMA2C;
    lq_checkpoint_close(ck);
    if (l2c)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: a llama2.c checkpoint; convert it to a Hugging Face directory with "
                       "quant-convert first", model_path);
    run r = {.o = opts, .pool = opts->ptq.pool};
    lq_status st = lq_model_load(model_path, &r.m);
    /* loading checked every weight for NaN: release those pages, layers fault theirs back in turn */
    if (st == LQ_OK) lq_release_checkpoint(lq_model_checkpoint(r.m));
    if (st == LQ_OK) st = calibrate(&r, model_path, &sum);
    lq_model_free(r.m); /* the codes stay in r.lin; the writer maps the input again */
    if (st == LQ_OK) {
        lq_ptq_source src = {.get = source_get, .user = &r};
        lq_ptq_opts po = opts->ptq;
        po.source = &src;
        po.clip_search = false; /* GPTQ's scales are the plain min/max ones */
        st = lq_ptq_quantize(model_path, out_dir, &po, &sum.ptq);
    }
    for (int64_t i = 0; i < r.n_lin; i++) {
        free(r.lin[i].payload);
        free(r.lin[i].aux0);
        free(r.lin[i].aux1);
    }
    free(r.lin);
    if (st == LQ_OK && summary) *summary = sum;
    else lq_gptq_summary_free(&sum);
    return st;
}
