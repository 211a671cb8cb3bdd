/* layerwise.c - the sequential calibration driver (layerwise.h): decoder layer by decoder
 * layer, statistics from the per-Linear input hook, a compress callback per Linear, the samples
 * propagated through the compressed layer. GPTQ (gptq_run.c), SparseGPT and Wanda
 * (sparsegpt_run.c) are its callbacks.
 */
#include "layerwise.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ct_internal.h"
#include "seq_calib.h"

#define MAX_SITES 8
#define MAX_LINEARS 64

typedef struct site {
    char role[16];              /* the role whose input it is ("q" also serves k and v) */
    lq_gptq_hessian h;          /* Hessian mode */
    double *sumsq;              /* diag mode: cols */
    int64_t cols, n_tokens;
} site;

typedef struct slin {           /* one Linear of the current layer, in hook order */
    char module[160];
    char role[16];
    char site[16];
} slin;

typedef struct run {
    const lq_lw_opts *o;
    lq_model *m;
    int layer;
    site sites[MAX_SITES];
    int n_sites;
    slin lin[MAX_LINEARS];
    int n_lin;
    lq_status st;               /* the hook's first failure (it cannot return one) */
} run;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* k and v multiply q's input, up multiplies gate's: one statistic each. */
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
    for (int i = 0; i < r->n_lin; i++)
        if (strcmp(r->lin[i].module, in->module) == 0) return LQ_OK;
    if (r->n_lin == MAX_LINEARS)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: layer %d has more than %d Linears", r->o->who, in->layer, MAX_LINEARS);
    slin *g = &r->lin[r->n_lin++];
    snprintf(g->module, sizeof g->module, "%s", in->module);
    snprintf(g->role, sizeof g->role, "%s", in->role);
    snprintf(g->site, sizeof g->site, "%s", site_of(in->role));
    return LQ_OK;
}

static lq_status sumsq_add(site *s, const float *X, int64_t n, const char *what) {
    const int64_t cols = s->cols;
    for (int64_t t = 0; t < n; t++) {
        const float *x = X + t * cols;
        for (int64_t c = 0; c < cols; c++) {
            if (!isfinite(x[c]))
                return lq_fail(LQ_ERR_FORMAT, "%s: NaN or Inf in the calibration activations (token %lld, column %lld)",
                               what, (long long)t, (long long)c);
            s->sumsq[c] += (double)x[c] * (double)x[c];
        }
    }
    return LQ_OK;
}

static lq_status site_init(run *r, site *s, const char *role, int64_t cols) {
    memset(s, 0, sizeof *s);
    snprintf(s->role, sizeof s->role, "%s", role);
    s->cols = cols;
    if (!r->o->diag_only) return lq_gptq_hessian_init(&s->h, cols);
    s->sumsq = calloc((size_t)cols, sizeof *s->sumsq);
    return s->sumsq ? LQ_OK : lq_fail(LQ_ERR_NOMEM, "%s: out of memory", r->o->who);
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
            r->st = lq_fail(LQ_ERR_UNSUPPORTED, "%s: layer %d has more than %d Linear inputs", r->o->who, in->layer,
                            MAX_SITES);
            return;
        }
        s = &r->sites[r->n_sites++];
        if ((r->st = site_init(r, s, sr, in->cols)) != LQ_OK) return;
    }
    char what[224];
    snprintf(what, sizeof what, "layer %d (%s)", in->layer, in->module);
    s->n_tokens += in->n_tokens;
    r->st = r->o->diag_only ? sumsq_add(s, in->x, in->n_tokens, what)
                            : lq_gptq_hessian_add(&s->h, in->x, in->n_tokens, r->o->pool, what);
}

static void free_sites(run *r) {
    for (int i = 0; i < r->n_sites; i++) {
        lq_gptq_hessian_free(&r->sites[i].h);
        free(r->sites[i].sumsq);
    }
    r->n_sites = 0;
    r->n_lin = 0;
}

/* Layer l: statistics through its current weights, its Linears compressed, then X through it. */
static lq_status run_layer(run *r, lq_session *ses, float *X, const lq_calib_set *cs, int dim) {
    const int64_t stride = (int64_t)cs->len * dim;
    lq_session_set_linear_hook(ses, hook, r);
    for (int64_t k = 0; k < cs->n_samples && r->st == LQ_OK; k++)
        LQ_TRY(lq_session_observe_layer(ses, r->layer, X + k * stride, cs->len, 0));
    lq_session_set_linear_hook(ses, NULL, NULL);
    LQ_TRY(r->st);
    for (int i = 0; i < r->n_sites; i++)
        if (!r->o->diag_only) lq_gptq_hessian_finish(&r->sites[i].h);
    for (int i = 0; i < r->n_lin; i++) {
        const slin *g = &r->lin[i];
        const site *s = find_site(r, g->site);
        if (!s) return lq_fail(LQ_ERR_NOT_FOUND, "%s: no inputs for '%s'", r->o->who, g->module);
        lq_lw_linear sl = {.module = g->module, .role = g->role, .layer = r->layer, .cols = s->cols,
                            .H = r->o->diag_only ? NULL : s->h.h, .sumsq = s->sumsq, .n_tokens = s->n_tokens};
        LQ_TRY(r->o->compress(r->o->user, r->m, &sl));
    }
    free_sites(r);
    for (int64_t k = 0; k < cs->n_samples; k++) LQ_TRY(lq_session_forward_layer(ses, r->layer, X + k * stride, cs->len, 0));
    return LQ_OK;
}

static lq_status calibrate(run *r, const char *model_path, lq_lw_info *info) {
    const lq_lw_opts *o = r->o;
    const lq_config *c = lq_model_config(r->m);
    lq_seq sq;
    LQ_TRY(lq_seq_begin(r->m, model_path, &o->calib, o->pool, o->who, &sq));
    lq_status st = LQ_OK;
    info->n_samples = sq.cs.n_samples;
    info->sample_len = sq.cs.len;
    info->n_windows = sq.cs.n_windows;
    double t0 = now_s();
    for (int l = 0; st == LQ_OK && l < c->n_layers; l++) {
        r->layer = l;
        st = run_layer(r, sq.ses, sq.X, &sq.cs, c->dim);
        if (st == LQ_OK && o->progress) o->progress(o->progress_user, l, c->n_layers, now_s() - t0);
    }
    free_sites(r);
    info->seconds = now_s() - t0;
    lq_seq_end(&sq);
    return st;
}

lq_status lq_layerwise_run(const char *model_path, const lq_lw_opts *o, lq_lw_info *info) {
    memset(info, 0, sizeof *info);
    lq_checkpoint *ck;
    LQ_TRY(lq_checkpoint_open(model_path, &ck));
    bool l2c = lq_checkpoint_kind(ck) == LQ_CKPT_LLAMA2C;
    lq_checkpoint_close(ck);
    if (l2c)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: a llama2.c checkpoint; convert it to a Hugging Face directory with "
                       "quant-convert first", model_path);
    run r = {.o = o};
    lq_status st = lq_model_load(model_path, &r.m);
    /* loading checked every weight for NaN: release those pages, layers fault theirs back in turn */
    if (st == LQ_OK) lq_release_checkpoint(lq_model_checkpoint(r.m));
    if (st == LQ_OK) st = calibrate(&r, model_path, info);
    lq_model_free(r.m);
    return st;
}
