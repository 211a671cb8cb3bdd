/* sparsegpt_run.c - Wanda and SparseGPT, decoder layer by decoder layer (lq_sparse_prune).
 *
 * The sequential pipeline is layerwise.c's (Hessians for SparseGPT, their diagonal for Wanda);
 * this file is its compress callback, then lq_prune_run writes the checkpoint with the masks
 * (and SparseGPT's updated values) taken through an lq_prune_source, so quant-prune's magnitude,
 * N:M and calibrated outputs share one writer and one config.json convention.
 * Each pruned Linear is put into the model as f32 (lq_model_replace_linear), so the samples
 * reach the next layer through the pruned weights, as llm-compressor's pipeline does.
 */
#include "libquant/lq_sparsegpt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "float_input.h"
#include "gptq_internal.h"
#include "layerwise.h"
#include "libquant/lq_model.h"
#include "libquant/lq_targets.h"


typedef struct plin {           /* one pruned Linear */
    char name[160];
    int64_t rows, cols;
    float *w;                   /* rows x cols f32: what the model computes with */
    uint8_t *bits;              /* packed keep mask (lq_bitmask_pack) */
} plin;

typedef struct run {
    const lq_sparse_opts *o;
    const lq_arch *arch;
    lq_target **tg, **ig;
    plin *lin;
    int64_t n_lin, cap_lin;
    lq_sparse_summary *sum;
} run;

static const char *const g_names[LQ_SPARSE_METHOD_COUNT] = {"wanda", "sparsegpt"};

const char *lq_sparse_method_name(lq_sparse_method m) {
    return m >= 0 && m < LQ_SPARSE_METHOD_COUNT ? g_names[m] : "?";
}

bool lq_sparse_method_parse(const char *s, lq_sparse_method *out) {
    for (int i = 0; s && i < LQ_SPARSE_METHOD_COUNT; i++)
        if (strcmp(s, g_names[i]) == 0) {
            *out = (lq_sparse_method)i;
            return true;
        }
    return false;
}

void lq_sparse_summary_free(lq_sparse_summary *s) {
    if (!s) return;
    lq_prune_summary_free(&s->prune);
    free(s->linears);
    s->linears = NULL;
    s->n_linears = 0;
}

/* The same decision as lq_prune_run's plan: targets (default: every Linear but lm_head and MoE
 * routers) minus ignores. */
static bool is_target(const run *r, const char *module) {
    const lq_prune_opts *p = &r->o->prune;
    bool tg = false;
    if (p->n_targets == 0) tg = strcmp(module, "lm_head") != 0 && !lq_arch_is_router(r->arch, module);
    for (int i = 0; i < p->n_targets; i++) tg |= lq_target_match(r->tg[i], module, LQ_MODULE_LINEAR);
    for (int i = 0; i < p->n_ignore; i++)
        if (lq_target_match(r->ig[i], module, LQ_MODULE_LINEAR)) tg = false;
    return tg;
}

/* Relative output errors of the mask alone and of SparseGPT's result, from H. */
static lq_status output_errors(const float *W0, const float *W1, const uint8_t *keep, int64_t rows, int64_t cols,
                               const double *H, lq_pool *pool, lq_sparse_stat *out) {
    float *D = malloc((size_t)(rows * cols) * sizeof *D);
    if (!D) return lq_fail(LQ_ERR_NOMEM, "sparsegpt: out of memory for the output error");
    double s[3];
    lq_status st = LQ_OK;
    for (int k = 0; k < 3 && st == LQ_OK; k++) {
        for (int64_t i = 0; i < rows * cols; i++)
            D[i] = k == 0 ? W0[i] : k == 1 ? (keep[i] ? 0.0f : W0[i]) : (float)((double)W0[i] - (double)W1[i]);
        st = lq_gptq_hform(D, rows, cols, H, pool, &s[k]);
    }
    free(D);
    LQ_TRY(st);
    out->rel_err_mask = s[0] > 0.0 ? sqrt(fmax(s[1], 0.0) / s[0]) : 0.0;
    out->rel_err_after = s[0] > 0.0 ? sqrt(fmax(s[2], 0.0) / s[0]) : 0.0;
    return LQ_OK;
}

static lq_status new_plin(run *r, const char *name, plin **out) {
    if (r->n_lin == r->cap_lin) {
        int64_t nc = r->cap_lin ? 2 * r->cap_lin : 64;
        plin *p = realloc(r->lin, (size_t)nc * sizeof *p);
        if (!p) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", lq_sparse_method_name(r->o->method));
        r->lin = p;
        r->cap_lin = nc;
    }
    plin *g = &r->lin[r->n_lin++];
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", name);
    *out = g;
    return LQ_OK;
}

/* Prune W (f32, in place) by the method; keep gets the mask. */
static lq_status prune_one(const run *r, const lq_lw_linear *lin, float *W, int64_t rows, int64_t cols,
                           uint8_t *keep, lq_sparse_stat *st) {
    const lq_sparse_opts *o = r->o;
    const bool nm = o->prune.method == LQ_PRUNE_NM;
    if (nm && cols % o->prune.nm_m != 0)
        return lq_fail(LQ_ERR_INVALID_ARG, "'%s': N:M %d:%d needs its %lld columns (input features) to be a "
                       "multiple of %d (--ignore it, or choose another M)", lin->module, o->prune.nm_n,
                       o->prune.nm_m, (long long)cols, o->prune.nm_m);
    if (o->method == LQ_SPARSE_WANDA) {
        if (!lq_wanda_mask(W, rows, cols, lin->sumsq, o->prune.sparsity, nm ? o->prune.nm_n : 0,
                           nm ? o->prune.nm_m : 0, keep))
            return lq_fail(LQ_ERR_NOMEM, "wanda: '%s': out of memory", lin->module);
        for (int64_t i = 0; i < rows * cols; i++)
            if (!keep[i]) W[i] = 0.0f;
        return LQ_OK;
    }
    float *W0 = malloc((size_t)(rows * cols) * sizeof *W0);
    if (!W0) return lq_fail(LQ_ERR_NOMEM, "sparsegpt: '%s': out of memory", lin->module);
    memcpy(W0, W, (size_t)(rows * cols) * sizeof *W0);
    lq_sparsegpt_params p = {.sparsity = o->prune.sparsity, .nm_n = nm ? o->prune.nm_n : 0,
                             .nm_m = nm ? o->prune.nm_m : 0, .damp = o->damp, .block_size = o->block_size,
                             .pool = o->prune.pool};
    lq_status s = lq_sparsegpt_prune_linear(W, rows, cols, lin->H, &p, keep, &st->g);
    if (s == LQ_OK) s = output_errors(W0, W, keep, rows, cols, lin->H, o->prune.pool, st);
    free(W0);
    return s;
}

/* layerwise.c's callback: prune one Linear of the current layer, put it into the model. */
static lq_status compress(void *user, lq_model *m, const lq_lw_linear *lin) {
    run *r = user;
    if (!is_target(r, lin->module)) return LQ_OK;
    const lq_weight *w = lq_model_find_linear(m, lin->module);
    if (!w) return lq_fail(LQ_ERR_NOT_FOUND, "%s: no weight for '%s'", lq_sparse_method_name(r->o->method), lin->module);
    const int64_t rows = w->rows, cols = w->cols;
    plin *g = NULL;
    LQ_TRY(new_plin(r, lin->module, &g));
    g->rows = rows, g->cols = cols;
    g->w = malloc((size_t)(rows * cols) * sizeof *g->w);
    g->bits = malloc((size_t)(rows * lq_bitmask_row_bytes(cols)) + 1);
    uint8_t *keep = malloc((size_t)(rows * cols));
    lq_sparse_stat st = {0};
    lq_status s = g->w && g->bits && keep ? LQ_OK : lq_fail(LQ_ERR_NOMEM, "'%s': out of memory", lin->module);
    if (s == LQ_OK) {
        lq_wfmt_get(w->fmt)->dequant_ref(w, 0, rows, g->w);
        s = prune_one(r, lin, g->w, rows, cols, keep, &st);
    }
    if (s == LQ_OK) {
        lq_bitmask_pack(keep, rows, cols, g->bits);
        for (int64_t i = 0; i < rows * cols; i++) st.pruned += !keep[i];
        snprintf(st.name, sizeof st.name, "%s", lin->module);
        st.rows = rows, st.cols = cols;
        lq_weight q = {.fmt = LQ_WFMT_F32, .rows = rows, .cols = cols, .data = g->w, .row_bytes = (size_t)cols * 4};
        s = lq_model_replace_linear(m, lin->module, &q);
    }
    free(keep);
    lq_sparse_summary *sum = r->sum;
    lq_sparse_stat *p = s == LQ_OK ? realloc(sum->linears, (size_t)(sum->n_linears + 1) * sizeof *p) : NULL;
    if (s == LQ_OK && !p) s = lq_fail(LQ_ERR_NOMEM, "out of memory");
    if (s != LQ_OK) return s;
    sum->linears = p;
    sum->linears[sum->n_linears++] = st;
    sum->n_retried += st.g.retries > 0;
    sum->n_fallback += st.g.fallback;
    return LQ_OK;
}

static lq_status source_get(void *user, const char *module, int64_t rows, int64_t cols, uint8_t *keep,
                            const float **values) {
    run *r = user;
    for (int64_t i = 0; i < r->n_lin; i++) {
        const plin *g = &r->lin[i];
        if (strcmp(g->name, module) != 0) continue;
        if (g->rows != rows || g->cols != cols)
            return lq_fail(LQ_ERR_MISMATCH, "'%s': %lld x %lld calibrated, %lld x %lld stored", module,
                           (long long)g->rows, (long long)g->cols, (long long)rows, (long long)cols);
        lq_bitmask_unpack(g->bits, rows, cols, keep);
        *values = r->o->method == LQ_SPARSE_SPARSEGPT ? g->w : NULL; /* Wanda keeps the stored values */
        return LQ_OK;
    }
    return lq_fail(LQ_ERR_NOT_FOUND, "%s: '%s' is not a decoder Linear the calibration reaches (lm_head, an MoE "
                   "expert): --ignore it", lq_sparse_method_name(r->o->method), module);
}

static lq_status compile_all(const char *const *specs, int n, lq_target ***out) {
    *out = calloc((size_t)n + 1, sizeof **out);
    if (!*out) return lq_fail(LQ_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) LQ_TRY(lq_target_compile(specs[i], &(*out)[i]));
    return LQ_OK;
}

static void free_all(lq_target **t, int n) {
    for (int i = 0; t && i < n; i++) lq_target_free(t[i]);
    free(t);
}

static lq_status check_opts(const char *model_path, const lq_sparse_opts *o, const lq_arch **arch) {
    const lq_prune_opts *p = &o->prune;
    if (o->method < 0 || o->method >= LQ_SPARSE_METHOD_COUNT)
        return lq_fail(LQ_ERR_INVALID_ARG, "unknown calibrated pruning method %d", (int)o->method);
    if (p->method != LQ_PRUNE_MAGNITUDE && p->method != LQ_PRUNE_NM)
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: unstructured or N:M masks only", lq_sparse_method_name(o->method));
    if (p->method == LQ_PRUNE_MAGNITUDE && !(p->sparsity >= 0.0f && p->sparsity < 1.0f))
        return lq_fail(LQ_ERR_INVALID_ARG, "sparsity %g is outside [0, 1)", (double)p->sparsity);
    if (p->method == LQ_PRUNE_NM && !(p->nm_n > 0 && p->nm_n <= p->nm_m && p->nm_m <= 64))
        return lq_fail(LQ_ERR_INVALID_ARG, "N:M %d:%d: need 0 < N <= M <= 64", p->nm_n, p->nm_m);
    const int B = o->block_size > 0 ? o->block_size : 128;
    if (o->method == LQ_SPARSE_SPARSEGPT && p->method == LQ_PRUNE_NM && B % p->nm_m != 0)
        return lq_fail(LQ_ERR_INVALID_ARG, "sparsegpt: block size %d is not a multiple of M = %d", B, p->nm_m);
    if (o->damp < 0.0 || o->damp >= 1.0)
        return lq_fail(LQ_ERR_INVALID_ARG, "dampening fraction %g is outside [0, 1)", o->damp);
    if (p->global || p->n_overrides > 0 || p->weight_score || p->source)
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: global thresholds, overrides and scores do not apply",
                       lq_sparse_method_name(o->method));
    lq_checkpoint *ck;
    LQ_TRY(lq_checkpoint_open(model_path, &ck));
    lq_status s = lq_check_float_input(ck, "prune");
    if (s == LQ_OK) *arch = lq_arch_find(lq_checkpoint_config(ck)->arch);
    /* a pattern that names nothing fails now, not after the calibration (lq_prune_run's rule) */
    for (int k = 0; s == LQ_OK && k < p->n_targets + p->n_ignore; k++) {
        const char *spec = k < p->n_targets ? p->targets[k] : p->ignore[k - p->n_targets];
        lq_target *t = NULL;
        if ((s = lq_target_compile(spec, &t)) != LQ_OK) break;
        bool hit = false;
        for (int64_t i = 0; !hit && i < lq_checkpoint_count(ck); i++) {
            char mod[160];
            lq_module_class cls = lq_module_of_tensor(lq_checkpoint_get(ck, i), mod, sizeof mod);
            hit = lq_target_match(t, mod, cls);
        }
        lq_target_free(t);
        if (!hit)
            s = lq_fail(LQ_ERR_INVALID_ARG, "%s '%s' matches no module of %s", k < p->n_targets ? "target" :
                        "ignore pattern", spec, model_path);
    }
    lq_checkpoint_close(ck);
    return s;
}

lq_status lq_sparse_prune(const char *model_path, const char *out_dir, const lq_sparse_opts *opts,
                          lq_sparse_summary *summary) {
    lq_sparse_summary sum = {0};
    run r = {.o = opts, .sum = &sum};
    LQ_TRY(check_opts(model_path, opts, &r.arch));
    lq_status st = compile_all(opts->prune.targets, opts->prune.n_targets, &r.tg);
    if (st == LQ_OK) st = compile_all(opts->prune.ignore, opts->prune.n_ignore, &r.ig);
    lq_lw_opts so = {.calib = opts->calib, .diag_only = opts->method == LQ_SPARSE_WANDA, .who = lq_sparse_method_name(opts->method),
                     .pool = opts->prune.pool, .compress = compress, .user = &r, .progress = opts->progress,
                     .progress_user = opts->user};
    lq_lw_info info = {0};
    if (st == LQ_OK) st = lq_layerwise_run(model_path, &so, &info);
    sum.n_samples = info.n_samples;
    sum.sample_len = info.sample_len;
    sum.n_windows = info.n_windows;
    sum.calib_seconds = info.seconds;
    if (st == LQ_OK) {
        lq_prune_source src = {.get = source_get, .user = &r};
        lq_prune_opts po = opts->prune;
        po.source = &src;
        st = lq_prune_run(model_path, out_dir, &po, &sum.prune);
    }
    for (int64_t i = 0; i < r.n_lin; i++) {
        free(r.lin[i].w);
        free(r.lin[i].bits);
    }
    free(r.lin);
    free_all(r.tg, opts->prune.n_targets);
    free_all(r.ig, opts->prune.n_ignore);
    if (st == LQ_OK && summary) *summary = sum;
    else lq_sparse_summary_free(&sum);
    return st;
}
