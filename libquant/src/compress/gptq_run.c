/* gptq_run.c - GPTQ, decoder layer by decoder layer (lq_gptq_quantize).
 *
 * The sequential pipeline is layerwise.c's (lq_layerwise_run: the samples through layer l, one Hessian
 * per distinct Linear input, the layer compressed, the samples through it again); this file is
 * its compress callback: each Linear of l is quantized (lq_gptq_quantize_linear) and replaced in
 * the model by its packed codes (lq_model_replace_linear: the engine's W4A16 / W8A16 kernels
 * run them). Memory beyond lq_layerwise_run's: the packed codes of every quantized Linear so far (the
 * output being written). Then lq_ptq_quantize writes the checkpoint, taking these codes through
 * an lq_ptq_source.
 */
#include "libquant/lq_gptq.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arch.h"
#include "ct_internal.h"
#include "gptq_internal.h"
#include "libquant/lq_model.h"
#include "layerwise.h"

#ifdef LQ_HAVE_OPENBLAS
#include <cblas.h>
#endif

typedef struct glin {           /* one quantized Linear */
    char name[160];
    lq_weight q;                /* packed codes (owned buffers below), once quantized */
    void *payload;
    float *aux0, *aux1;
} glin;

typedef struct run {
    const lq_gptq_opts *o;
    lq_pool *pool;
    glin *lin;
    int64_t n_lin, cap_lin;
    lq_gptq_summary *sum;
} run;

static lq_status new_glin(run *r, const char *name, glin **out) {
    if (r->n_lin == r->cap_lin) {
        int64_t nc = r->cap_lin ? 2 * r->cap_lin : 64;
        glin *p = realloc(r->lin, (size_t)nc * sizeof *p);
        if (!p) return lq_fail(LQ_ERR_NOMEM, "gptq: out of memory");
        r->lin = p;
        r->cap_lin = nc;
    }
    glin *g = &r->lin[r->n_lin++];
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", name);
    *out = g;
    return LQ_OK;
}

/* ---- one Linear ------------------------------------------------------------------------------- */

static lq_status output_errors(const float *W, const int8_t *codes, const float *sc, const float *zp, int64_t rows,
                               int64_t cols, int64_t ng, const lq_gptq_params *gp, const double *H, lq_pool *pool,
                               double *rel_rtn, double *rel_gptq) {
    const int64_t gs = cols / ng;
    const int qmin = -(1 << (gp->bits - 1)), qmax = (1 << (gp->bits - 1)) - 1;
    float *D = malloc((size_t)(3 * rows * cols) * sizeof *D);
    if (!D) return lq_fail(LQ_ERR_NOMEM, "gptq: out of memory for the output error");
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            const float s = sc[r * ng + c / gs], z = zp[r * ng + c / gs], w = W[r * cols + c];
            const float rtn = ((float)lq_quant_int_code(w, s, z, qmin, qmax) - z) * s;
            const float gq = ((float)codes[r * cols + c] - z) * s;
            D[r * cols + c] = w;
            D[(rows + r) * cols + c] = (float)((double)w - rtn);
            D[(2 * rows + r) * cols + c] = (float)((double)w - gq);
        }
    double sum[3] = {0, 0, 0};
    lq_status st = LQ_OK;
    for (int k = 0; k < 3 && st == LQ_OK; k++) st = lq_gptq_hform(D + k * rows * cols, rows, cols, H, pool, &sum[k]);
    free(D);
    LQ_TRY(st);
    *rel_rtn = sum[0] > 0.0 ? sqrt(fmax(sum[1], 0.0) / sum[0]) : 0.0;
    *rel_gptq = sum[0] > 0.0 ? sqrt(fmax(sum[2], 0.0) / sum[0]) : 0.0;
    return LQ_OK;
}

/* Per-module parameters the ptq plan would use; *skip when GPTQ leaves the module to the plan. */
static lq_status module_params(const lq_gptq_opts *o, const lq_arch *arch, const char *name, const lq_weight *w, lq_gptq_params *gp,
                               lq_wfmt *fmt, bool *skip) {
    *skip = false;
    lq_wfmt sch = lq_ptq_module_scheme(&o->ptq, arch, name);
    if (sch == LQ_WFMT_NONE) {
        *skip = true;
        return LQ_OK;
    }
    /* the pack-quantized integer schemes: GPTQ's rounding grid is the scheme's num_bits */
    if (!lq_ct_packed(sch))
        return lq_fail(LQ_ERR_UNSUPPORTED, "gptq: '%s': scheme %s (GPTQ writes W4A16, W3A16 and W8A16)", name,
                       lq_ptq_scheme_name(sch));
    *fmt = sch;
    gp->bits = lq_ct_bits(sch);
    gp->asym = lq_ct_grouped(sch) && o->ptq.asym;
    gp->group_size = 0;
    if (lq_ct_grouped(sch)) {
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
    gp->nm_n = o->nm_n;
    gp->nm_m = o->nm_m;
    if (o->nm_m > 0 && w->cols % o->nm_m != 0)
        return lq_fail(LQ_ERR_INVALID_ARG, "gptq: '%s': %d:%d pruning needs the %lld columns to be a multiple of %d",
                       name, o->nm_n, o->nm_m, (long long)w->cols, o->nm_m);
    return LQ_OK;
}

/* GPTQ one Linear of the current layer and put its codes into the model. */
static lq_status quantize_one(run *r, lq_model *m, const lq_lw_linear *lin, lq_gptq_stat *out, bool *done) {
    *done = false;
    const lq_weight *w = lq_model_find_linear(m, lin->module);
    if (!w) return lq_fail(LQ_ERR_NOT_FOUND, "gptq: no weight for '%s'", lin->module);
    lq_gptq_params gp;
    lq_wfmt fmt = LQ_WFMT_COUNT;
    bool skip;
    LQ_TRY(module_params(r->o, lq_arch_find(lq_model_config(m)->arch), lin->module, w, &gp, &fmt, &skip));
    if (skip) return LQ_OK;
    glin *g = NULL;
    LQ_TRY(new_glin(r, lin->module, &g));
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
    if (st == LQ_OK) st = lq_gptq_quantize_linear(W, rows, cols, lin->H, &gp, codes, sc, zp, &out->g);
    if (st == LQ_OK)
        st = output_errors(W, codes, sc, zp, rows, cols, ng, &gp, lin->H, r->pool, &out->rel_err_rtn,
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
        st = lq_model_replace_linear(m, g->name, &g->q);
        *done = st == LQ_OK;
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

void lq_gptq_summary_free(lq_gptq_summary *s) {
    if (!s) return;
    lq_ptq_summary_free(&s->ptq);
    free(s->linears);
    s->linears = NULL;
    s->n_linears = 0;
}

/* lq_layerwise_run's callback: GPTQ one Linear and record its result. */
static lq_status compress(void *user, lq_model *m, const lq_lw_linear *lin) {
    run *r = user;
    lq_gptq_summary *sum = r->sum;
    lq_gptq_stat st = {0};
    bool done;
    LQ_TRY(quantize_one(r, m, lin, &st, &done));
    if (!done) return LQ_OK;
    lq_gptq_stat *p = realloc(sum->linears, (size_t)(sum->n_linears + 1) * sizeof *p);
    if (!p) return lq_fail(LQ_ERR_NOMEM, "gptq: out of memory");
    sum->linears = p;
    sum->linears[sum->n_linears++] = st;
    sum->n_retried += st.g.retries > 0;
    sum->n_fallback += st.g.rtn_fallback;
    return LQ_OK;
}

lq_status lq_gptq_quantize(const char *model_path, const char *out_dir, const lq_gptq_opts *opts,
                           lq_gptq_summary *summary) {
    lq_gptq_summary sum = {0};
    if (!lq_ct_packed(opts->ptq.scheme))
        return lq_fail(LQ_ERR_UNSUPPORTED, "gptq: scheme %s (GPTQ writes W4A16, W3A16 and W8A16)",
                       lq_ptq_scheme_name(opts->ptq.scheme));
    if (opts->actorder < 0 || opts->actorder >= LQ_GPTQ_ACTORDER_COUNT)
        return lq_fail(LQ_ERR_INVALID_ARG, "gptq: unknown activation order %d", (int)opts->actorder);
    /* the joint N:M sweep's own limits, refused before any calibration work (gptq.c checks them too) */
    const int block = opts->block_size > 0 ? opts->block_size : 128;
    if (opts->nm_m < 0 || (opts->nm_m > 0 && (opts->nm_n < 0 || opts->nm_n > opts->nm_m || opts->nm_m > 64 ||
                                              block % opts->nm_m != 0 || opts->actorder != LQ_GPTQ_ACTORDER_NONE)))
        return lq_fail(LQ_ERR_INVALID_ARG, "gptq: joint N:M %d:%d needs 0 <= N <= M <= 64, M dividing the block "
                       "size %d, and no activation order", opts->nm_n, opts->nm_m, block);
    run r = {.o = opts, .pool = opts->ptq.pool, .sum = &sum};
    lq_lw_opts so = {.calib = opts->calib, .who = "gptq", .pool = opts->ptq.pool, .compress = compress, .user = &r,
                      .progress = opts->progress, .progress_user = opts->user};
    lq_lw_info info;
    lq_status st = lq_layerwise_run(model_path, &so, &info);
    sum.n_samples = info.n_samples;
    sum.sample_len = info.sample_len;
    sum.n_windows = info.n_windows;
    sum.calib_seconds = info.seconds;
    /* the codes stay in r.lin; the writer maps the input again */
    if (st == LQ_OK) {
        lq_ptq_source src = {.get = source_get, .user = &r};
        lq_ptq_opts po = opts->ptq;
        po.source = &src;
        po.clip_search = false; /* GPTQ's scales are the plain min/max ones */
        /* recorded as llm-compressor records it (the codes' storage is the same either way) */
        if (opts->actorder != LQ_GPTQ_ACTORDER_NONE) po.actorder = lq_gptq_actorder_name(opts->actorder);
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
