/* prune.c - the streaming pruning driver (lq_prune.h).
 *
 * Three steps, like quant-ptq's driver:
 *   plan     decide every tensor's fate and check every option and shape before a byte is
 *            written (bad options fail fast and name the tensor or pattern);
 *   masks    unstructured / N:M: score each targeted matrix, decide its keep mask (kept packed,
 *            1 bit a weight) and count what will be stored, because the sparse layout's
 *            "compressed" shape (the non-zero count) must be declared before any payload;
 *            structured: score each layer's units and choose the kept ones;
 *   stream   one tensor at a time from the mapped input: zero the pruned weights (in the stored
 *            dtype, so kept weights are bit-identical) and write it dense or compressed, or
 *            slice its kept rows / columns; lq_st_writer commits atomically.
 * Global magnitude needs every targeted score at once to find one threshold: that step holds
 * about 9 bytes per targeted weight.
 */
#include "prune_internal_drv.h"
#include "float_input.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arch.h"
#include "libquant/lq_safetensors.h"
#include "libquant/lq_targets.h"
#include "lq_blocks.h"

typedef struct item {
    const lq_tensor *t;
    char module[160];
    lq_module_class cls;
    bool target;           /* magnitude / nm: this matrix is pruned */
    float sparsity;        /* magnitude: its sparsity */
    bool sparse_out;       /* written in the compressed-tensors sparse layout */
    uint8_t *keep;         /* target: packed keep mask, rows x ceil(cols/8) */
    const float *values;   /* target with a source's new values (rows x cols f32, borrowed) */
    int64_t rows, cols;
    int64_t nnz_out;       /* sparse layout: values stored */
    int64_t nonzero_in, nonzero_out;
    lq_slice slice;        /* structured */
} item;

typedef struct ctx {
    const lq_prune_opts *o;
    lq_checkpoint *c;
    const lq_config *cfg;
    item *items;
    int64_t n;
    lq_target **tg, **ig, **ov;   /* compiled patterns */
    bool nm24;                    /* 2:4 -> the sparse-24-bitmask layout */
    lq_struct_plan plan;
} ctx;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- names -------------------------------------------------------------------------------------- */

static const char *const g_method_names[LQ_PRUNE_METHOD_COUNT] = {"magnitude", "nm", "ffn", "heads"};

const char *lq_prune_method_name(lq_prune_method m) {
    return m >= 0 && m < LQ_PRUNE_METHOD_COUNT ? g_method_names[m] : "?";
}

bool lq_prune_method_parse(const char *s, lq_prune_method *out) {
    for (int i = 0; s && i < LQ_PRUNE_METHOD_COUNT; i++)
        if (strcmp(s, g_method_names[i]) == 0) {
            *out = (lq_prune_method)i;
            return true;
        }
    return false;
}

void lq_prune_summary_free(lq_prune_summary *s) {
    if (!s) return;
    for (int l = 0; s->layer_kept && l < s->n_layers; l++) free(s->layer_kept[l]);
    free(s->layer_kept);
    free(s->layer_units_in);
    free(s->layer_units_out);
    free(s->tensors);
    memset(s, 0, sizeof *s);
}

/* ---- options and plan -------------------------------------------------------------------------- */

static lq_status check_opts(const lq_prune_opts *o) {
    if (o->method < 0 || o->method >= LQ_PRUNE_METHOD_COUNT)
        return lq_fail(LQ_ERR_INVALID_ARG, "unknown pruning method %d", (int)o->method);
    if (o->method == LQ_PRUNE_MAGNITUDE && !(o->sparsity >= 0.0f && o->sparsity < 1.0f))
        return lq_fail(LQ_ERR_INVALID_ARG, "sparsity %g is outside [0, 1)", (double)o->sparsity);
    for (int i = 0; i < o->n_overrides; i++)
        if (!(o->overrides[i].sparsity >= 0.0f && o->overrides[i].sparsity < 1.0f))
            return lq_fail(LQ_ERR_INVALID_ARG, "override '%s': sparsity %g is outside [0, 1)",
                           o->overrides[i].pattern, (double)o->overrides[i].sparsity);
    if (o->method == LQ_PRUNE_NM && !(o->nm_n > 0 && o->nm_m > 0 && o->nm_n <= o->nm_m && o->nm_m <= 64))
        return lq_fail(LQ_ERR_INVALID_ARG, "N:M %d:%d: need 0 < N <= M <= 64", o->nm_n, o->nm_m);
    if (o->source && (!(o->method == LQ_PRUNE_MAGNITUDE || o->method == LQ_PRUNE_NM) || o->global ||
                      o->n_overrides > 0 || o->weight_score))
        return lq_fail(LQ_ERR_INVALID_ARG, "calibrated pruning takes unstructured or N:M masks, without global "
                       "thresholds, overrides or scores");
    if (o->method == LQ_PRUNE_FFN || o->method == LQ_PRUNE_HEADS) {
        if (!(o->keep > 0.0f && o->keep <= 1.0f))
            return lq_fail(LQ_ERR_INVALID_ARG, "keep ratio %g is outside (0, 1] (sparsity must be in [0, 1))",
                           (double)o->keep);
        for (int l = 0; o->layer_keep && l < o->n_layer_keep; l++)
            if (o->layer_keep[l] >= 0.0f && !(o->layer_keep[l] > 0.0f && o->layer_keep[l] <= 1.0f))
                return lq_fail(LQ_ERR_INVALID_ARG, "layer %d: keep ratio %g is outside (0, 1]", l,
                               (double)o->layer_keep[l]);
    }
    return LQ_OK;
}

/* A keep ratio for a layer the model does not have is a typo (or the wrong model): refuse it
 * rather than prune every real layer with the default. */
static lq_status check_layer_keep(const lq_prune_opts *o, const lq_config *cfg, const char *model) {
    for (int l = cfg->n_layers; o->layer_keep && l < o->n_layer_keep; l++)
        if (o->layer_keep[l] >= 0.0f)
            return lq_fail(LQ_ERR_INVALID_ARG, "%s: --layer-keep %d=%g: the model has %d layers (0..%d)", model,
                           l, (double)o->layer_keep[l], cfg->n_layers, cfg->n_layers - 1);
    return LQ_OK;
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

static bool match_any(lq_target **t, int n, const item *it) {
    for (int i = 0; i < n; i++)
        if (lq_target_match(t[i], it->module, it->cls)) return true;
    return false;
}

/* Every pattern must name at least one module: a typo would otherwise prune (or spare) nothing
 * without a word. */
static lq_status check_matches(ctx *x, lq_target **t, int n, const char *kind) {
    for (int i = 0; i < n; i++) {
        bool hit = false;
        for (int64_t j = 0; !hit && j < x->n; j++) hit = lq_target_match(t[i], x->items[j].module, x->items[j].cls);
        if (!hit)
            return lq_fail(LQ_ERR_INVALID_ARG, "%s '%s' matches no module of %s", kind, lq_target_spec(t[i]),
                           lq_checkpoint_path(x->c));
    }
    return LQ_OK;
}

static lq_status plan(ctx *x) {
    const lq_prune_opts *o = x->o;
    bool unstructured = o->method == LQ_PRUNE_MAGNITUDE || o->method == LQ_PRUNE_NM;
    const lq_arch *arch = lq_arch_find(x->cfg->arch); /* NULL: no descriptor, no routers */
    for (int64_t i = 0; i < x->n; i++) {
        item *it = &x->items[i];
        it->t = lq_checkpoint_get(x->c, i);
        it->cls = lq_module_of_tensor(it->t, it->module, sizeof it->module);
        it->rows = it->t->ndim >= 1 ? it->t->shape[0] : 1;
        it->cols = it->t->ndim == 2 ? it->t->shape[1] : 1;
        it->slice.n_rows = it->rows;
        it->slice.n_cols = it->cols;
        if (!unstructured || it->cls != LQ_MODULE_LINEAR) continue;
        /* Default targets: every Linear except the output head (the embedding is not a Linear)
         * and sparse-MoE routers (experts are pruned one by one). */
        bool tg = o->n_targets > 0 ? match_any(x->tg, o->n_targets, it)
                                   : strcmp(it->module, "lm_head") != 0 && !lq_arch_is_router(arch, it->module);
        if (match_any(x->ig, o->n_ignore, it)) tg = false;
        it->sparsity = o->sparsity;
        for (int r = 0; o->method == LQ_PRUNE_MAGNITUDE && r < o->n_overrides; r++)
            if (lq_target_match(x->ov[r], it->module, it->cls)) {
                tg = true;
                it->sparsity = o->overrides[r].sparsity;
            }
        if (tg && o->method == LQ_PRUNE_MAGNITUDE && it->sparsity == 0.0f) tg = false;
        if (!tg) continue;
        if (!lq_prune_is_float(it->t->dtype))
            return lq_fail(LQ_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s cannot be pruned (prune the float "
                           "model, then quantize)", lq_checkpoint_path(x->c), it->t->name,
                           lq_dtype_name(it->t->dtype));
        if (o->method == LQ_PRUNE_NM && it->cols % o->nm_m != 0)
            return lq_fail(LQ_ERR_INVALID_ARG, "%s: tensor '%s': N:M %d:%d needs the %lld columns (input "
                           "features) to be a multiple of %d (--ignore it, or choose another M)",
                           lq_checkpoint_path(x->c), it->t->name, o->nm_n, o->nm_m, (long long)it->cols, o->nm_m);
        it->target = true;
        it->sparse_out = o->bitmask_output;
    }
    LQ_TRY(check_matches(x, x->tg, o->n_targets, "target"));
    LQ_TRY(check_matches(x, x->ig, o->n_ignore, "ignore pattern"));
    LQ_TRY(check_matches(x, x->ov, o->n_overrides, "override"));
    if (!unstructured) {
        bool *ignored = calloc((size_t)x->cfg->n_layers + 1, sizeof *ignored);
        if (!ignored) return lq_fail(LQ_ERR_NOMEM, "out of memory");
        /* A layer is left whole when an ignore pattern names one of the modules it would lose
         * units from: the linear roles of the unit's group (architecture descriptor). */
        const lq_arch *a = NULL;
        lq_status as = lq_arch_for_config(x->cfg, lq_checkpoint_path(x->c), &a);
        if (as != LQ_OK) {
            free(ignored);
            return as;
        }
        for (int l = 0; l < x->cfg->n_layers; l++)
            for (int r = 0; r < LQ_ROLE_COUNT; r++) {
                lq_role_group g = lq_role_get((lq_role)r)->group;
                if (o->method == LQ_PRUNE_HEADS ? g != LQ_GROUP_ATTN
                                                : g != LQ_GROUP_FFN && g != LQ_GROUP_EXPERT && g != LQ_GROUP_SHARED_EXPERT)
                    continue;
                /* each expert of a per-expert role (e = -1: the role's one module) */
                for (int e = g == LQ_GROUP_EXPERT ? x->cfg->n_experts - 1 : -1; e >= -1; e--) {
                    item probe = {.cls = LQ_MODULE_LINEAR};
                    if (lq_arch_expert_module(a, (lq_role)r, l, e, probe.module, sizeof probe.module) &&
                        match_any(x->ig, o->n_ignore, &probe))
                        ignored[l] = true;
                }
            }
        lq_status s = lq_struct_plan_make(x->c, o, ignored, &x->plan);
        free(ignored);
        LQ_TRY(s);
        for (int64_t i = 0; i < x->n; i++)
            LQ_TRY(lq_struct_slice(x->cfg, &x->plan, o->method, x->items[i].t, &x->items[i].slice));
    }
    return LQ_OK;
}

/* ---- masks --------------------------------------------------------------------------------------- */

static int64_t count_nonzero(const lq_tensor *t, const uint8_t *keep_bits, int64_t cols) {
    if (!lq_prune_is_float(t->dtype)) return lq_tensor_numel(t);
    int64_t n = lq_tensor_numel(t), rb = lq_bitmask_row_bytes(cols), nz = 0;
    size_t es = lq_dtype_size(t->dtype);
    const uint8_t *p = t->data;
    for (int64_t i = 0; i < n; i++) {
        if (keep_bits && !((keep_bits[(i / cols) * rb + (i % cols) / 8] >> ((i % cols) % 8)) & 1u)) continue;
        bool z;
        if (es == 4) {
            float f;
            memcpy(&f, p + (size_t)i * 4, 4);
            z = f == 0.0f;
        } else {
            uint16_t h;
            memcpy(&h, p + (size_t)i * 2, 2);
            z = (h & 0x7fffu) == 0;
        }
        nz += !z;
    }
    return nz;
}

/* f32 copy and scores of a targeted matrix (finite: lq_check_float_input refused NaN/Inf weights
 * up front); a user score function that returns NaN is refused here. */
static lq_status scores_of(const ctx *x, const item *it, float *w, float *score) {
    int64_t n = it->rows * it->cols;
    lq_tensor_read_f32(it->t, 0, n, w);
    (x->o->weight_score ? x->o->weight_score : lq_prune_score_abs)(x->o->score_user, it->module, w, it->rows,
                                                                    it->cols, score);
    for (int64_t i = 0; i < n; i++)
        if (isnan(score[i]))
            return lq_fail(LQ_ERR_FORMAT, "tensor '%s': the score of weight %lld is NaN", it->t->name, (long long)i);
    return LQ_OK;
}

/* A source's value v in the stored dtype at dst (f32 / f16 / bf16: lq_prune_is_float). */
static void put_value(float v, lq_dtype dt, uint8_t *dst) {
    if (dt == LQ_DTYPE_F32) {
        memcpy(dst, &v, 4);
        return;
    }
    uint16_t h = dt == LQ_DTYPE_F16 ? lq_f32_to_f16(v) : lq_f32_to_bf16(v);
    memcpy(dst, &h, 2);
}

/* Non-zeros of the kept new values as they will be stored (a tiny f32 may round to 0 in f16). */
static int64_t count_values(const item *it, const uint8_t *keep) {
    int64_t nz = 0;
    uint8_t b[4];
    for (int64_t i = 0; i < it->rows * it->cols; i++) {
        if (!keep[i]) continue;
        put_value(it->values[i], it->t->dtype, b);
        uint32_t u = 0;
        memcpy(&u, b, lq_dtype_size(it->t->dtype));
        nz += (u & (it->t->dtype == LQ_DTYPE_F32 ? 0x7fffffffu : 0x7fffu)) != 0;
    }
    return nz;
}

static lq_status finish_mask(ctx *x, item *it, const uint8_t *keep) {
    int64_t rb = lq_bitmask_row_bytes(it->cols);
    if (!(it->keep = malloc((size_t)(it->rows * rb) + 1))) return lq_fail(LQ_ERR_NOMEM, "out of memory");
    lq_bitmask_pack(keep, it->rows, it->cols, it->keep);
    it->nonzero_out = it->values ? count_values(it, keep) : count_nonzero(it->t, it->keep, it->cols);
    /* sparse-24-bitmask stores every kept position (a kept zero included); sparse-bitmask the
     * non-zeros. */
    it->nnz_out = x->nm24 ? it->rows * it->cols / 2 : it->nonzero_out;
    return LQ_OK;
}

static lq_status make_masks(ctx *x) {
    const lq_prune_opts *o = x->o;
    bool global = o->method == LQ_PRUNE_MAGNITUDE && o->global;
    /* Global: one pool of every target at the global sparsity (overridden modules are pruned on
     * their own, at their own sparsity). */
    int64_t pool_n = 0;
    for (int64_t i = 0; global && i < x->n; i++)
        if (x->items[i].target && x->items[i].sparsity == o->sparsity) pool_n += x->items[i].rows * x->items[i].cols;
    float *pool_score = NULL;
    uint8_t *pool_keep = NULL;
    lq_status s = LQ_OK;
    if (pool_n > 0) {
        pool_score = malloc((size_t)pool_n * sizeof *pool_score);
        pool_keep = malloc((size_t)pool_n);
        if (!pool_score || !pool_keep) s = lq_fail(LQ_ERR_NOMEM, "global magnitude: out of memory for %lld scores",
                                                   (long long)pool_n);
    }
    int64_t off = 0;
    float *w = NULL, *score = NULL;
    uint8_t *keep = NULL;
    for (int pass = 0; pass < 2 && s == LQ_OK; pass++) {
        /* pass 0 gathers the global pool's scores; pass 1 builds every mask. */
        if (pass == 0 && pool_n == 0) continue;
        if (pass == 1 && pool_n > 0 && !lq_prune_mask_topk(pool_score, pool_n, lq_prune_count(o->sparsity, pool_n), pool_keep))
            s = lq_fail(LQ_ERR_NOMEM, "out of memory");
        off = 0;
        for (int64_t i = 0; s == LQ_OK && i < x->n; i++) {
            item *it = &x->items[i];
            if (!it->target) continue;
            int64_t n = it->rows * it->cols;
            bool in_pool = pool_n > 0 && it->sparsity == o->sparsity;
            if (pass == 0 && !in_pool) continue;
            free(w);
            free(score);
            free(keep);
            w = malloc((size_t)n * sizeof *w);
            score = malloc((size_t)n * sizeof *score);
            keep = malloc((size_t)n);
            if (!w || !score || !keep) {
                s = lq_fail(LQ_ERR_NOMEM, "tensor '%s': out of memory", it->t->name);
                break;
            }
            if (pass == 0) {
                s = scores_of(x, it, w, pool_score + off);
                off += n;
                continue;
            }
            if (in_pool) {
                memcpy(keep, pool_keep + off, (size_t)n);
                off += n;
            } else if (o->source) {
                s = o->source->get(o->source->user, it->module, it->rows, it->cols, keep, &it->values);
                if (s != LQ_OK) break;
            } else {
                s = scores_of(x, it, w, score);
                if (s != LQ_OK) break;
                if (o->method == LQ_PRUNE_NM) lq_prune_mask_nm(score, it->rows, it->cols, o->nm_n, o->nm_m, keep);
                else if (!lq_prune_mask_topk(score, n, lq_prune_count(it->sparsity, n), keep))
                    s = lq_fail(LQ_ERR_NOMEM, "out of memory");
            }
            if (s == LQ_OK) s = finish_mask(x, it, keep);
        }
    }
    free(w);
    free(score);
    free(keep);
    free(pool_score);
    free(pool_keep);
    return s;
}

/* ---- declarations and payloads ------------------------------------------------------------------ */

static lq_status declare(ctx *x, lq_st_writer *wr, const item *it) {
    const lq_tensor *t = it->t;
    if (!it->sparse_out) {
        int64_t shape[LQ_MAX_DIMS];
        memcpy(shape, t->shape, sizeof shape);
        if (t->ndim == 2) {
            shape[0] = it->slice.n_rows;
            shape[1] = it->slice.n_cols;
        } else if (t->ndim == 1) {
            shape[0] = it->slice.n_rows;
        }
        return lq_st_writer_declare(wr, t->name, t->dtype, t->ndim, shape);
    }
    char name[200];
    int64_t rb = lq_bitmask_row_bytes(it->cols);
    int64_t bshape[2] = {it->rows, rb};
    snprintf(name, sizeof name, "%s.bitmask", it->module);
    LQ_TRY(lq_st_writer_declare(wr, name, LQ_DTYPE_U8, 2, bshape));
    snprintf(name, sizeof name, "%s.compressed", it->module);
    if (x->nm24) {
        int64_t cs[2] = {it->rows, it->cols / 2};
        LQ_TRY(lq_st_writer_declare(wr, name, t->dtype, 2, cs));
        int64_t ss[2] = {2, 1};
        snprintf(name, sizeof name, "%s.shape", it->module);
        return lq_st_writer_declare(wr, name, LQ_DTYPE_I64, 2, ss);
    }
    LQ_TRY(lq_st_writer_declare(wr, name, t->dtype, 1, &it->nnz_out));
    snprintf(name, sizeof name, "%s.row_offsets", it->module);
    LQ_TRY(lq_st_writer_declare(wr, name, LQ_DTYPE_I64, 1, &it->rows));
    int64_t two = 2;
    snprintf(name, sizeof name, "%s.shape", it->module);
    return lq_st_writer_declare(wr, name, LQ_DTYPE_I64, 1, &two);
}

/* The dense bytes of a target with its pruned weights zeroed (stored dtype; kept bits untouched). */
static uint8_t *masked_copy(const item *it) {
    size_t es = lq_dtype_size(it->t->dtype);
    uint8_t *d = malloc(it->t->nbytes + 1);
    if (!d) return NULL;
    if (it->values)
        for (int64_t i = 0; i < it->rows * it->cols; i++) put_value(it->values[i], it->t->dtype, d + (size_t)i * es);
    else memcpy(d, it->t->data, it->t->nbytes);
    int64_t rb = lq_bitmask_row_bytes(it->cols);
    for (int64_t r = 0; r < it->rows; r++)
        for (int64_t c = 0; c < it->cols; c++)
            if (!((it->keep[r * rb + c / 8] >> (c % 8)) & 1u)) memset(d + (size_t)(r * it->cols + c) * es, 0, es);
    return d;
}

static lq_status write_item(ctx *x, lq_st_writer *wr, const item *it, uint64_t *bytes_out) {
    const lq_tensor *t = it->t;
    size_t es = lq_dtype_size(t->dtype);
    if (it->target) {
        uint8_t *d = masked_copy(it);
        if (!d) return lq_fail(LQ_ERR_NOMEM, "tensor '%s': out of memory", t->name);
        lq_status s;
        if (!it->sparse_out) {
            s = lq_st_writer_write(wr, d, t->nbytes);
            *bytes_out = t->nbytes;
            free(d);
            return s;
        }
        int64_t rb = lq_bitmask_row_bytes(it->cols);
        uint8_t *vals = malloc(t->nbytes + 1), *bits = malloc((size_t)(it->rows * rb) + 1);
        int64_t *ro = malloc((size_t)it->rows * sizeof *ro);
        uint8_t *keep = x->nm24 ? malloc((size_t)(it->rows * it->cols)) : NULL;
        if (!vals || !bits || !ro || (x->nm24 && !keep)) {
            s = lq_fail(LQ_ERR_NOMEM, "tensor '%s': out of memory", t->name);
        } else {
            if (keep) lq_bitmask_unpack(it->keep, it->rows, it->cols, keep);
            int64_t nnz = lq_sparse_compress(d, t->dtype, it->rows, it->cols, keep, vals, bits, ro);
            if (nnz != it->nnz_out) {
                s = lq_fail(LQ_ERR_FORMAT, "tensor '%s': %lld values, %lld declared", t->name, (long long)nnz,
                            (long long)it->nnz_out);
            } else {
                int64_t shape[2] = {it->rows, it->cols};
                s = lq_st_writer_write(wr, bits, (size_t)(it->rows * rb));
                if (s == LQ_OK) s = lq_st_writer_write(wr, vals, (size_t)nnz * es);
                if (s == LQ_OK && !x->nm24) s = lq_st_writer_write(wr, ro, (size_t)it->rows * sizeof *ro);
                if (s == LQ_OK) s = lq_st_writer_write(wr, shape, sizeof shape);
                *bytes_out = (uint64_t)(it->rows * rb) + (uint64_t)nnz * es + sizeof shape +
                             (x->nm24 ? 0 : (uint64_t)it->rows * sizeof *ro);
            }
        }
        free(d);
        free(vals);
        free(bits);
        free(ro);
        free(keep);
        return s;
    }
    const lq_slice *sl = &it->slice;
    if (!sl->rows && !sl->cols) {
        *bytes_out = t->nbytes;
        return lq_st_writer_write(wr, t->data, t->nbytes);
    }
    /* A structured slice: kept rows, or kept columns of every row. */
    size_t row_out = (size_t)sl->n_cols * es;
    uint8_t *buf = malloc(row_out + 1);
    if (!buf) return lq_fail(LQ_ERR_NOMEM, "tensor '%s': out of memory", t->name);
    const uint8_t *src = t->data;
    lq_status s = LQ_OK;
    for (int64_t r = 0; s == LQ_OK && r < sl->n_rows; r++) {
        int64_t rin = sl->rows ? sl->rows[r] : r;
        const uint8_t *row = src + (size_t)(rin * it->cols) * es;
        if (!sl->cols) memcpy(buf, row, row_out);
        else
            for (int64_t c = 0; c < sl->n_cols; c++) memcpy(buf + (size_t)c * es, row + (size_t)sl->cols[c] * es, es);
        s = lq_st_writer_write(wr, buf, row_out);
    }
    free(buf);
    *bytes_out = (uint64_t)sl->n_rows * row_out;
    return s;
}

/* ---- config.json ------------------------------------------------------------------------------------ */

static json_t *base_config(const ctx *x) {
    const char *cj = lq_checkpoint_config_json(x->c);
    char *own = NULL;
    if (!cj && lq_config_to_json(x->cfg, &own) != LQ_OK) return NULL;
    json_error_t err;
    json_t *root = json_loads(cj ? cj : own, 0, &err);
    free(own);
    return root;
}

/* The experts' sizes after FFN pruning of a sparse MoE: config.json has one expert size and one
 * shared-expert size for every layer, so every sparse layer must keep the same counts. Mixtral's
 * experts are "intermediate_size" wide (it has no dense layers), Qwen2-MoE's
 * "moe_intermediate_size". */
static lq_status moe_sizes(const ctx *x, json_t *root) {
    const lq_struct_plan *p = &x->plan;
    int k = -1, ks = -1;
    bool dense_layers = false;
    for (int l = 0; l < p->n_layers; l++) {
        if (!p->xkept[l]) {
            dense_layers = true;
            continue;
        }
        if ((k >= 0 && p->units_out[l] != k) || (ks >= 0 && p->shared_out[l] != ks))
            return lq_fail(LQ_ERR_UNSUPPORTED, "%s: layer %d: its experts would keep %d neurons, layer 0's %d: "
                           "config.json has one expert size for every layer (use one keep ratio)",
                           lq_checkpoint_path(x->c), l, p->units_out[l], k);
        k = p->units_out[l], ks = p->shared_out[l];
    }
    if (k < 0) return LQ_OK;
    const char *key = json_object_get(root, "moe_intermediate_size") ? "moe_intermediate_size" : "intermediate_size";
    if (!strcmp(key, "intermediate_size") && dense_layers)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: its experts and dense layers share intermediate_size: FFN pruning "
                       "would resize both", lq_checkpoint_path(x->c));
    json_object_set_new(root, key, json_integer(k));
    if (x->cfg->shared_hidden_dim > 0) json_object_set_new(root, "shared_expert_intermediate_size", json_integer(ks));
    return LQ_OK;
}

static lq_status write_config(ctx *x, const char *out_dir, double global_sparsity) {
    const lq_prune_opts *o = x->o;
    json_t *root = base_config(x);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return lq_fail(LQ_ERR_FORMAT, "%s: cannot read its config", lq_checkpoint_path(x->c));
    }
    json_object_del(root, "sparsity_config"); /* the input's, if it was pruned before */
    bool any_sparse = false, any_target = false;
    for (int64_t i = 0; i < x->n; i++) {
        any_sparse |= x->items[i].sparse_out;
        any_target |= x->items[i].target;
    }
    if (any_target) {
        json_t *ign = json_array();
        for (int64_t i = 0; i < x->n; i++)
            if (x->items[i].cls == LQ_MODULE_LINEAR && !x->items[i].target)
                json_array_append_new(ign, json_string(x->items[i].module));
        char structure[32];
        if (o->method == LQ_PRUNE_NM) snprintf(structure, sizeof structure, "%d:%d", o->nm_n, o->nm_m);
        else snprintf(structure, sizeof structure, "unstructured");
        const char *fmt = !any_sparse ? "dense" : x->nm24 ? "sparse-24-bitmask" : "sparse-bitmask";
        json_t *sc = json_pack("{s:s, s:f, s:s, s:[s], s:o}", "format", fmt, "global_sparsity",
                               global_sparsity, "sparsity_structure", structure, "targets", "Linear", "ignore", ign);
        if (any_sparse) {
            /* What compressed-tensors' ModelCompressor.update_config writes for a sparse-only model. */
            json_t *qc = json_pack("{s:s, s:s, s:o}", "quant_method", "compressed-tensors", "version", "0.10.2",
                                   "sparsity_config", sc);
            json_object_set_new(root, "quantization_config", qc);
        } else {
            /* Dense weights: the sparsity is metadata only. Not inside quantization_config:
             * transformers 5 refuses a quantization_config without config_groups (and a later
             * quant-ptq writes its own); every loader ignores this top-level key. */
            json_object_set_new(root, "sparsity_config", sc);
        }
    }
    if (o->method == LQ_PRUNE_FFN || o->method == LQ_PRUNE_HEADS) {
        lq_config nc = *x->cfg;
        int top_h = 0, top_nh = 0, top_kv = 0;
        /* a sparse-MoE layer has no dense MLP: its intermediate_size entry follows the first dense
         * layer's, so a model whose dense layers stay equal keeps one plain intermediate_size */
        int moe_h = -1;
        for (int l = 0; l < nc.n_layers && moe_h < 0; l++)
            if (!x->plan.xkept[l]) moe_h = o->method == LQ_PRUNE_FFN ? x->plan.units_out[l] : lq_config_layer_hidden(x->cfg, l);
        for (int l = 0; l < nc.n_layers; l++) {
            int u = x->plan.units_out[l];
            int h = x->plan.xkept[l] ? (moe_h > 0 ? moe_h : lq_config_layer_hidden(x->cfg, l))
                    : o->method == LQ_PRUNE_FFN ? u : lq_config_layer_hidden(x->cfg, l);
            int kv = o->method == LQ_PRUNE_HEADS ? u : lq_config_layer_kv_heads(x->cfg, l);
            int nh = o->method == LQ_PRUNE_HEADS ? u * x->plan.group : lq_config_layer_heads(x->cfg, l);
            if (l < LQ_MAX_LAYERS) {
                nc.layer_hidden_dim[l] = h;
                nc.layer_n_heads[l] = nh;
                nc.layer_n_kv_heads[l] = kv;
            }
            top_h = h > top_h ? h : top_h;
            top_nh = nh > top_nh ? nh : top_nh;
            top_kv = kv > top_kv ? kv : top_kv;
        }
        nc.hidden_dim = top_h;
        nc.n_heads = top_nh;
        nc.n_kv_heads = top_kv;
        json_object_set_new(root, "intermediate_size", json_integer(top_h));
        json_object_set_new(root, "num_attention_heads", json_integer(top_nh));
        json_object_set_new(root, "num_key_value_heads", json_integer(top_kv));
        /* dim / n_heads no longer gives the head size */
        json_object_set_new(root, "head_dim", json_integer(nc.head_dim));
        const char *keys[3] = {"layer_intermediate_sizes", "layer_num_attention_heads", "layer_num_key_value_heads"};
        for (int k = 0; k < 3; k++) json_object_del(root, keys[k]);
        if (lq_config_has_layer_sizes(&nc)) {
            if (nc.n_layers > LQ_MAX_LAYERS) {
                json_decref(root);
                return lq_fail(LQ_ERR_UNSUPPORTED, "per-layer sizes for more than %d layers", LQ_MAX_LAYERS);
            }
            json_t *a[3] = {json_array(), json_array(), json_array()};
            for (int l = 0; l < nc.n_layers; l++) {
                json_array_append_new(a[0], json_integer(lq_config_layer_hidden(&nc, l)));
                json_array_append_new(a[1], json_integer(lq_config_layer_heads(&nc, l)));
                json_array_append_new(a[2], json_integer(lq_config_layer_kv_heads(&nc, l)));
            }
            for (int k = 0; k < 3; k++) json_object_set_new(root, keys[k], a[k]);
        }
    }
    if (o->method == LQ_PRUNE_FFN && x->plan.n_experts > 0) {
        lq_status ms = moe_sizes(x, root);
        if (ms != LQ_OK) {
            json_decref(root);
            return ms;
        }
    }
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(root);
    if (!text) return lq_fail(LQ_ERR_NOMEM, "out of memory");
    lq_status s = lq_config_json_save(out_dir, text);
    free(text);
    return s;
}

/* ---- driver ------------------------------------------------------------------------------------------ */

static lq_status run(ctx *x, const char *out_dir, lq_prune_summary *sum) {
    const lq_prune_opts *o = x->o;
    LQ_TRY(compile_all(o->targets, o->n_targets, &x->tg));
    LQ_TRY(compile_all(o->ignore, o->n_ignore, &x->ig));
    const char **ov = calloc((size_t)o->n_overrides + 1, sizeof *ov);
    if (!ov) return lq_fail(LQ_ERR_NOMEM, "out of memory");
    for (int i = 0; i < o->n_overrides; i++) ov[i] = o->overrides[i].pattern;
    lq_status s = compile_all(ov, o->n_overrides, &x->ov);
    free(ov);
    LQ_TRY(s);
    x->nm24 = o->method == LQ_PRUNE_NM && o->nm_n == 2 && o->nm_m == 4;
    LQ_TRY(plan(x));
    LQ_TRY(make_masks(x));

    sum->tensors = calloc((size_t)x->n + 1, sizeof *sum->tensors);
    if (!sum->tensors) return lq_fail(LQ_ERR_NOMEM, "out of memory");
    sum->n_tensors = x->n;
    int64_t zeros_out = 0;
    for (int64_t i = 0; i < x->n; i++) {
        item *it = &x->items[i];
        lq_prune_tensor_stat *st = &sum->tensors[i];
        snprintf(st->name, sizeof st->name, "%s", it->t->name);
        st->rows_in = it->rows, st->cols_in = it->cols;
        st->rows_out = it->slice.n_rows, st->cols_out = it->slice.n_cols;
        st->sparse = it->sparse_out;
        it->nonzero_in = count_nonzero(it->t, NULL, it->cols);
        if (!it->target) {
            /* a slice keeps the zeros it had, in proportion; count the kept part exactly */
            it->nonzero_out = it->nonzero_in;
            if (it->slice.rows || it->slice.cols) {
                int64_t nz = 0;
                size_t es = lq_dtype_size(it->t->dtype);
                const uint8_t *p = it->t->data;
                for (int64_t r = 0; r < it->slice.n_rows; r++)
                    for (int64_t c = 0; c < it->slice.n_cols; c++) {
                        int64_t rr = it->slice.rows ? it->slice.rows[r] : r, cc = it->slice.cols ? it->slice.cols[c] : c;
                        lq_tensor one = *it->t;
                        one.data = p + (size_t)(rr * it->cols + cc) * es;
                        one.ndim = 1, one.shape[0] = 1, one.nbytes = es;
                        nz += count_nonzero(&one, NULL, 1);
                    }
                it->nonzero_out = nz;
            }
        }
        int64_t numel_out = it->slice.n_rows * it->slice.n_cols;
        if (it->t->ndim > 2 || it->t->ndim == 0) numel_out = lq_tensor_numel(it->t);
        st->nonzero_in = it->nonzero_in, st->nonzero_out = it->nonzero_out;
        st->bytes_in = it->t->nbytes;
        sum->params_in += lq_tensor_numel(it->t);
        sum->params_out += numel_out;
        sum->nonzero_in += it->nonzero_in;
        sum->nonzero_out += it->nonzero_out;
        zeros_out += numel_out - it->nonzero_out;
        if (it->target) {
            sum->target_params += it->rows * it->cols;
            sum->target_zeros += it->rows * it->cols - it->nonzero_out;
        }
    }
    sum->global_sparsity = sum->params_out > 0 ? (double)zeros_out / (double)sum->params_out : 0.0;

    lq_st_writer *wr = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
    LQ_TRY(lq_st_writer_create(path, &wr));
    s = lq_st_writer_metadata(wr, "format", "pt");
    for (int64_t i = 0; s == LQ_OK && i < x->n; i++) s = declare(x, wr, &x->items[i]);
    int64_t done = 0;
    for (int64_t i = 0; s == LQ_OK && i < x->n; i++) {
        uint64_t b = 0;
        s = write_item(x, wr, &x->items[i], &b);
        sum->tensors[i].bytes_out = b;
        sum->bytes_in += x->items[i].t->nbytes;
        sum->bytes_out += b;
        done += lq_tensor_numel(x->items[i].t);
        if (s == LQ_OK && o->progress) o->progress(o->user, done, sum->params_in, x->items[i].t->name);
    }
    if (s == LQ_OK) {
        s = lq_st_writer_commit(wr);
        wr = NULL;
    }
    lq_st_writer_abort(wr);
    if (s == LQ_OK) s = write_config(x, out_dir, sum->global_sparsity);
    if (s != LQ_OK) remove(path); /* weights without their config are useless */
    return s;
}

lq_status lq_prune_run(const char *model_path, const char *out_dir, const lq_prune_opts *opts,
                       lq_prune_summary *summary) {
    double t0 = now_s();
    LQ_TRY(check_opts(opts));
    ctx x = {.o = opts};
    LQ_TRY(lq_checkpoint_open(model_path, &x.c));
    x.cfg = lq_checkpoint_config(x.c);
    x.n = lq_checkpoint_count(x.c);
    lq_prune_summary sum = {.method = opts->method};
    lq_status s = lq_check_float_input(x.c, "prune");
    if (s == LQ_OK) s = check_layer_keep(opts, x.cfg, model_path);
    if (s == LQ_OK && !(x.items = calloc((size_t)x.n + 1, sizeof *x.items))) s = lq_fail(LQ_ERR_NOMEM, "out of memory");
    if (s == LQ_OK) s = run(&x, out_dir, &sum);
    if (s == LQ_OK && x.plan.n_layers > 0) {
        /* hand the structured plan to the summary */
        sum.n_layers = x.plan.n_layers;
        sum.layer_units_in = x.plan.units_in;
        sum.layer_units_out = x.plan.units_out;
        sum.layer_kept = x.plan.kept;
        x.plan.units_in = x.plan.units_out = NULL; /* handed over; the rest is freed below */
        x.plan.kept = NULL;
    }
    lq_struct_plan_free(&x.plan);
    for (int64_t i = 0; x.items && i < x.n; i++) {
        free(x.items[i].keep);
        lq_slice_free(&x.items[i].slice);
    }
    free(x.items);
    free_all(x.tg, opts->n_targets);
    free_all(x.ig, opts->n_ignore);
    free_all(x.ov, opts->n_overrides);
    lq_checkpoint_close(x.c);
    sum.seconds = now_s() - t0;
    if (s == LQ_OK && summary) *summary = sum;
    else lq_prune_summary_free(&sum);
    return s;
}

const char *lq_prune_bitmask_readers(void) {
    return "sparse-bitmask layouts are read by libquant and compressed-tensors <= 0.14 (with "
           "transformers < 5); compressed-tensors >= 0.20 dropped them and transformers then loads "
           "the directory without error as random weights; vLLM reads only sparse-24-bitmask on "
           "some GPUs. Omit --bitmask for a dense output every loader reads";
}
