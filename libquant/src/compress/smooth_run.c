/* smooth_run.c - the AWQ / SmoothQuant driver (lq_smooth_transform): decoder layer by decoder
 * layer over the calibration samples (seq_calib.h), as llm-compressor's sequential pipeline.
 *
 * Per layer l:
 *   1. the samples run through l with its float weights; the linear hook records, for the
 *      input of each mapping's first balance Linear, the per-channel sum of |x| (AWQ), min and
 *      max (SmoothQuant) and, where AWQ scores a Linear alone (o, down), H = 2 sum x x^T. AWQ
 *      keeps each block's input and float output;
 *   2. each mapping in order gets its scales (lq_awq_search / lq_sq_scales) from the weights
 *      as smoothed so far, and they are folded into the f32 copies (lq_sm_fold);
 *   3. the next layer's input is this layer's float output: smoothing leaves the float function
 *      unchanged, so the engine keeps running the original weights.
 * Then the smoothed copies are written with every other tensor as it was (lq_sm_write). */
#include "libquant/lq_smooth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "float_input.h"
#include "seq_calib.h"
#include "smooth_internal.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *lq_awq_duo_name(lq_awq_duo d) {
    return d == LQ_AWQ_DUO_FALSE ? "false" : d == LQ_AWQ_DUO_BOTH ? "both" : "true";
}

bool lq_awq_duo_parse(const char *s, lq_awq_duo *out) {
    if (strcmp(s, "true") == 0 || strcmp(s, "on") == 0) *out = LQ_AWQ_DUO_TRUE;
    else if (strcmp(s, "false") == 0 || strcmp(s, "off") == 0) *out = LQ_AWQ_DUO_FALSE;
    else if (strcmp(s, "both") == 0) *out = LQ_AWQ_DUO_BOTH;
    else return false;
    return true;
}

void lq_smooth_summary_free(lq_smooth_summary *s) {
    if (!s) return;
    free(s->maps);
    s->maps = NULL;
    s->n_maps = 0;
}

/* ---- statistics of one layer ------------------------------------------------------------------ */

typedef struct site {
    const sm_spec *sp;           /* the mapping whose first balance Linear's input this is */
    int64_t cols, n_tok;
    double *abs_sum;             /* AWQ */
    float *mn, *mx;              /* SmoothQuant */
    lq_gptq_hessian h;           /* AWQ, Linear mappings */
    bool want_h;
} site;

typedef struct run {
    const lq_smooth_opts *o;
    lq_model *m;
    const lq_arch *a;
    int layer;
    site sites[8];
    int n_sites;
    lq_status st;                /* the hook's first failure */
} run;

static void site_add(run *r, site *s, const lq_linear_input *in) {
    const int64_t c = in->cols;
    if (!s->abs_sum && !s->mn) {
        s->cols = c;
        if (r->o->method == LQ_SMOOTH_AWQ) s->abs_sum = calloc((size_t)c, sizeof *s->abs_sum);
        else s->mn = malloc((size_t)c * sizeof *s->mn), s->mx = malloc((size_t)c * sizeof *s->mx);
        if ((r->o->method == LQ_SMOOTH_AWQ && !s->abs_sum) || (r->o->method != LQ_SMOOTH_AWQ && (!s->mn || !s->mx))) {
            r->st = lq_fail(LQ_ERR_NOMEM, "smooth: out of memory");
            return;
        }
        for (int64_t j = 0; s->mn && j < c; j++) s->mn[j] = INFINITY, s->mx[j] = -INFINITY;
        if (s->want_h && (r->st = lq_gptq_hessian_init(&s->h, c)) != LQ_OK) return;
    }
    for (int64_t t = 0; t < in->n_tokens; t++) {
        const float *x = in->x + t * c;
        for (int64_t j = 0; j < c; j++) {
            if (!isfinite(x[j])) {
                r->st = lq_fail(LQ_ERR_FORMAT, "layer %d (%s): NaN or Inf in the calibration activations", in->layer,
                                in->module);
                return;
            }
            if (s->abs_sum) s->abs_sum[j] += fabsf(x[j]);
            if (s->mn) s->mn[j] = x[j] < s->mn[j] ? x[j] : s->mn[j], s->mx[j] = x[j] > s->mx[j] ? x[j] : s->mx[j];
        }
    }
    s->n_tok += in->n_tokens;
    if (s->want_h) {
        char what[224];
        snprintf(what, sizeof what, "layer %d (%s)", in->layer, in->module);
        r->st = lq_gptq_hessian_add(&s->h, in->x, in->n_tokens, r->o->pool, what);
    }
}

static void hook(void *user, const lq_linear_input *in) {
    run *r = user;
    if (r->st != LQ_OK || in->layer != r->layer || in->expert >= 0) return;
    for (int i = 0; i < r->n_sites; i++)
        if (strcmp(lq_role_get(r->sites[i].sp->bal[0])->name, in->role) == 0) site_add(r, &r->sites[i], in);
}

static void free_sites(run *r) {
    for (int i = 0; i < r->n_sites; i++) {
        free(r->sites[i].abs_sum);
        free(r->sites[i].mn);
        free(r->sites[i].mx);
        lq_gptq_hessian_free(&r->sites[i].h);
    }
    memset(r->sites, 0, sizeof r->sites);
    r->n_sites = 0;
}

/* ---- one layer -------------------------------------------------------------------------------- */

typedef struct bufs {
    lq_seq sq;
    float *R1, *R2;              /* AWQ: the attention block's / the whole layer's float output */
    float *s;                    /* scales, the widest channel count */
    sm_overlay ov;
    lq_smooth_summary *sum;
} bufs;

static lq_scale_dtype scale_dtype_of(const lq_checkpoint *c, const char *name) {
    const lq_tensor *t = lq_checkpoint_find(c, name);
    return !t ? LQ_SCALE_F32 : t->dtype == LQ_DTYPE_F16 ? LQ_SCALE_F16 : t->dtype == LQ_DTYPE_BF16 ? LQ_SCALE_BF16
                                                                                             : LQ_SCALE_F32;
}

/* Scales of site s's mapping from the statistics and the weights as they are now, folded. */
static lq_status smooth_one(run *r, bufs *b, site *s) {
    const sm_spec *sp = s->sp;
    const int l = r->layer;
    lq_smooth_stat st = {.channels = s->cols, .ratio = NAN, .err_rtn = NAN, .err_best = NAN};
    lq_arch_module(r->a, sp->smooth, l, st.smooth, sizeof st.smooth);
    for (int i = 0; i < sp->n_bal; i++) {
        size_t k = strlen(st.balance);
        snprintf(st.balance + k, sizeof st.balance - k, "%s%s", i ? "," : "", lq_role_get(sp->bal[i])->name);
    }
    awq_job j = {.o = r->o, .m = r->m, .ses = b->sq.ses, .sp = sp, .layer = l, .cols = s->cols,
                 .abs_sum = s->abs_sum, .n_tok = s->n_tok, .n_samples = b->sq.cs.n_samples, .stride = b->sq.stride,
                 .len = b->sq.cs.len, .H = s->want_h ? s->h.h : NULL};
    for (int i = 0; i < sp->n_bal; i++) {
        char name[192];
        int64_t n;
        lq_sm_tensor(r->a, sp->bal[i], l, false, name, sizeof name);
        LQ_TRY(lq_sm_get(&b->ov, name, &j.W[i], &n));
        j.rows[i] = n / s->cols;
        lq_arch_module(r->a, sp->bal[i], l, j.module[i], sizeof j.module[i]);
        if (i == 0) j.scale_dtype = scale_dtype_of(b->ov.c, name);
    }
    if (s->n_tok == 0) return LQ_OK; /* never reached (cannot happen for dense layers): left as is */
    if (r->o->method == LQ_SMOOTH_AWQ) {
        j.in = sp->block == LQ_BLOCK_ATTN ? b->sq.X : b->R1;
        j.ref = sp->block == LQ_BLOCK_ATTN ? b->R1 : b->R2;
        LQ_TRY(lq_awq_search(&j, b->s, &st));
    } else {
        for (int64_t c = 0; c < s->cols; c++) s->mx[c] -= s->mn[c]; /* the range */
        lq_sq_scales(s->mx, j.W, j.rows, sp->n_bal, s->cols, r->o->alpha < 0 ? 0.5 : r->o->alpha, b->s);
    }
    st.scale_min = INFINITY;
    for (int64_t c = 0; c < s->cols; c++) {
        st.scale_min = fmin(st.scale_min, b->s[c]);
        st.scale_max = fmax(st.scale_max, b->s[c]);
    }
    LQ_TRY(lq_sm_fold(&b->ov, r->a, sp, l, b->s, s->cols, r->a->norm_offset));
    lq_smooth_stat *p = realloc(b->sum->maps, (size_t)(b->sum->n_maps + 1) * sizeof *p);
    if (!p) return lq_fail(LQ_ERR_NOMEM, "smooth: out of memory");
    b->sum->maps = p;
    p[b->sum->n_maps++] = st;
    return LQ_OK;
}

static lq_status run_layer(run *r, bufs *b) {
    const bool awq = r->o->method == LQ_SMOOTH_AWQ;
    const lq_seq *q = &b->sq;
    for (int i = 0; i < lq_sm_n_specs; i++) {
        const sm_spec *sp = &lq_sm_specs[i];
        if (!awq && !sp->smoothquant) continue;
        if (!lq_sm_applies(r->m, r->a, sp, r->layer)) {
            b->sum->n_skipped++;
            continue;
        }
        r->sites[r->n_sites++] = (site){.sp = sp, .want_h = awq && sp->block < 0};
    }
    lq_session_set_linear_hook(q->ses, hook, r);
    lq_status st = LQ_OK;
    for (int64_t k = 0; k < q->cs.n_samples && st == LQ_OK && r->st == LQ_OK; k++) {
        float *x = q->X + k * q->stride;
        if (!awq) {
            st = lq_session_forward_layer(q->ses, r->layer, x, q->cs.len, 0);
            continue;
        }
        float *r1 = b->R1 + k * q->stride, *r2 = b->R2 + k * q->stride;
        memcpy(r1, x, (size_t)q->stride * sizeof *r1);
        st = lq_session_forward_block(q->ses, r->layer, LQ_BLOCK_ATTN, r1, q->cs.len, 0);
        memcpy(r2, r1, (size_t)q->stride * sizeof *r2);
        if (st == LQ_OK) st = lq_session_forward_block(q->ses, r->layer, LQ_BLOCK_FFN, r2, q->cs.len, 0);
    }
    lq_session_set_linear_hook(q->ses, NULL, NULL);
    if (st == LQ_OK) st = r->st;
    for (int i = 0; i < r->n_sites && st == LQ_OK; i++) {
        if (r->sites[i].want_h) lq_gptq_hessian_finish(&r->sites[i].h);
        st = smooth_one(r, b, &r->sites[i]);
    }
    free_sites(r);
    if (st == LQ_OK && awq) { /* the float output is the next layer's input */
        float *t = b->sq.X;
        b->sq.X = b->R2;
        b->R2 = t;
    }
    return st;
}

/* ---- the driver ------------------------------------------------------------------------------- */

void lq_smooth_set_scheme(lq_smooth_opts *o, lq_wfmt scheme, int32_t group_size, bool asym) {
    const lq_ct_storage *ct = lq_ct_storage_of(scheme);
    const bool grouped = ct && ct->grouped;
    o->bits = ct ? ct->bits : 4;
    o->group_size = grouped ? group_size : -1;
    o->asym = grouped && asym;
}

static lq_status check_opts(const lq_smooth_opts *o) {
    if (o->method < 0 || o->method >= LQ_SMOOTH_METHOD_COUNT)
        return lq_fail(LQ_ERR_INVALID_ARG, "smooth: unknown method %d", (int)o->method);
    if (o->method == LQ_SMOOTH_AWQ && o->bits != 0 && o->bits != 4 && o->bits != 8) /* SmoothQuant ignores it */
        return lq_fail(LQ_ERR_INVALID_ARG, "awq: %d bits (4 or 8)", o->bits);
    if (o->duo < 0 || o->duo >= LQ_AWQ_DUO_COUNT) return lq_fail(LQ_ERR_INVALID_ARG, "awq: unknown duo_scaling");
    if (o->n_grid != 0 && (o->n_grid < 2 || o->n_grid > 128))
        return lq_fail(LQ_ERR_INVALID_ARG, "awq: n_grid %d (2 .. 128)", o->n_grid);
    if (o->alpha > 1.0 || isnan(o->alpha))
        return lq_fail(LQ_ERR_INVALID_ARG, "smoothquant: smoothing_strength %g (0 .. 1)", o->alpha);
    if (o->calib.n_files <= 0) return lq_fail(LQ_ERR_INVALID_ARG, "smooth: no calibration text");
    return LQ_OK;
}

static lq_status transform(const lq_smooth_opts *o, const char *model_path, const char *out_dir, run *r, bufs *b) {
    const lq_config *c = lq_model_config(r->m);
    r->a = lq_arch_find(c->arch);
    bool any = false;
    for (int i = 0; r->a && i < lq_sm_n_specs; i++)
        for (int l = 0; l < c->n_layers && !any; l++) any = lq_sm_applies(r->m, r->a, &lq_sm_specs[i], l);
    if (!any)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: architecture %s has no norm -> Linear pair to smooth", model_path,
                       c->arch);
    LQ_TRY(lq_seq_begin(r->m, model_path, &o->calib, o->pool, o->method == LQ_SMOOTH_AWQ ? "awq" : "smoothquant",
                        &b->sq));
    b->sum->n_samples = b->sq.cs.n_samples;
    b->sum->sample_len = b->sq.cs.len;
    b->sum->n_windows = b->sq.cs.n_windows;
    const size_t xb = (size_t)(b->sq.cs.n_samples * b->sq.stride) * sizeof(float);
    int64_t widest = c->dim;
    for (int l = 0; l < c->n_layers; l++) {
        widest = lq_config_layer_hidden(c, l) > widest ? lq_config_layer_hidden(c, l) : widest;
        widest = (int64_t)lq_config_layer_heads(c, l) * c->head_dim > widest ? (int64_t)lq_config_layer_heads(c, l) * c->head_dim : widest;
    }
    b->s = malloc((size_t)widest * sizeof *b->s);
    if (o->method == LQ_SMOOTH_AWQ) b->R1 = malloc(xb), b->R2 = malloc(xb);
    if (!b->s || (o->method == LQ_SMOOTH_AWQ && (!b->R1 || !b->R2)))
        return lq_fail(LQ_ERR_NOMEM, "smooth: out of memory for 3 x %lld x %d hidden states",
                       (long long)b->sq.cs.n_samples, b->sq.cs.len);
    const double t0 = now_s();
    for (int l = 0; l < c->n_layers; l++) {
        r->layer = l;
        LQ_TRY(run_layer(r, b));
        if (o->progress) o->progress(o->user, l, c->n_layers, now_s() - t0);
    }
    return lq_sm_write(&b->ov, model_path, out_dir);
}

lq_status lq_smooth_transform(const char *model_path, const char *out_dir, const lq_smooth_opts *opts,
                              lq_smooth_summary *summary) {
    const double t0 = now_s();
    LQ_TRY(check_opts(opts));
    lq_checkpoint *ck;
    LQ_TRY(lq_checkpoint_open(model_path, &ck));
    lq_status st = lq_checkpoint_kind(ck) == LQ_CKPT_LLAMA2C
                       ? lq_fail(LQ_ERR_UNSUPPORTED, "%s: a llama2.c checkpoint; convert it to a Hugging Face "
                                 "directory with quant-convert first", model_path)
                       : lq_check_float_input(ck, "smooth");
    lq_smooth_summary sum = {0};
    run r = {.o = opts};
    bufs b = {.ov = {.c = ck}, .sum = &sum};
    if (st == LQ_OK) st = lq_model_load(model_path, &r.m);
    if (st == LQ_OK) st = transform(opts, model_path, out_dir, &r, &b);
    free_sites(&r);
    free(b.R1);
    free(b.R2);
    free(b.s);
    lq_seq_end(&b.sq);
    lq_sm_overlay_free(&b.ov);
    lq_model_free(r.m);
    lq_checkpoint_close(ck);
    sum.seconds = now_s() - t0;
    if (st == LQ_OK && summary) *summary = sum;
    else lq_smooth_summary_free(&sum);
    return st;
}
