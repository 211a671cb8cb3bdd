/* recipe_run.c - one recipe modifier applied to one checkpoint (lq_recipe_apply_modifier).
 *
 * The recipe's targets/ignore language (lq_targets.h: classes, regexes, __ALL__) is richer than
 * what each library driver takes, so the modifier is first resolved against the checkpoint it
 * will read (lq_recipe_plan on a recipe holding just this modifier) and the driver is then told
 * the exact module names. That keeps one matcher as the truth for both `check` and `run`.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "libquant/lq_calib.h"
#include "libquant/lq_gptq.h"
#include "libquant/lq_prune.h"
#include "libquant/lq_ptq.h"
#include "libquant/lq_recipe.h"
#include "libquant/lq_smooth.h"
#include "libquant/lq_sparsegpt.h"

_Static_assert((int)LQ_GROUP_FALLBACK_CHANNEL == (int)LQ_PTQ_FALLBACK_CHANNEL &&
                   (int)LQ_GROUP_FALLBACK_IGNORE == (int)LQ_PTQ_FALLBACK_IGNORE,
               "lq_recipe_group_fallback mirrors lq_ptq_group_fallback");

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The plan of `m` alone against the checkpoint at `path`. */
static lq_status plan_one(const lq_recipe *r, const lq_recipe_modifier *m, const char *path, lq_checkpoint **ck,
                          lq_plan *plan) {
    lq_recipe_stage st = {.kind = LQ_STAGE_MODIFIERS, .mods = (lq_recipe_modifier *)m, .n_mods = 1};
    snprintf(st.name, sizeof st.name, "step");
    lq_recipe one = {.stages = &st, .n_stages = 1};
    snprintf(one.path, sizeof one.path, "%s", r->path);
    LQ_TRY(lq_checkpoint_open(path, ck));
    lq_status s = lq_recipe_plan(&one, *ck, plan);
    if (s != LQ_OK) {
        lq_checkpoint_close(*ck);
        *ck = NULL;
    }
    return s;
}

/* The modifier's kv_cache_scheme calibrated on the run's text (lq_kv_calibrate), or nothing. */
static lq_status calib_kv(const lq_recipe_modifier *m, const char *in_path, const lq_recipe_step_opts *o,
                          lq_ptq_kv *kv) {
    memset(kv, 0, sizeof *kv);
    if (!m->kv_cache) return LQ_OK;
    if (!o || o->calib.n_files == 0)
        return lq_fail(LQ_ERR_INVALID_ARG, "%s (at line %d): kv_cache_scheme needs calibration text (quant-recipe run "
                       "--calib FILE)", lq_modifier_name(m->kind), m->pos.line);
    lq_calib_source src = o->calib;
    if (src.n_samples == 0) src.n_samples = 32; /* maxima: a few thousand tokens pin them (quant-ptq's default) */
    return lq_kv_calibrate(in_path, &src, o->pool, m->kv_cache == 2, m->kv_per_head, kv);
}

static lq_status apply_quantization(const lq_recipe_modifier *m, const lq_plan_modifier *pm, const char *in_path,
                                    const char *out_dir, const lq_recipe_step_opts *o, lq_recipe_step_result *res) {
    if (!lq_ct_storage_of(m->scheme))
        return lq_fail(LQ_ERR_INVALID_ARG, "QuantizationModifier without a scheme");
    /* Nothing by default; one exact-name override per planned module (module = tensor name
     * without ".weight"): the recipe's matcher decided, the driver only executes. */
    lq_ptq_rule *rules = calloc((size_t)pm->n_tensors + 1, sizeof *rules);
    char **names = calloc((size_t)pm->n_tensors + 1, sizeof *names);
    lq_status s = rules && names ? LQ_OK : lq_fail(LQ_ERR_NOMEM, "out of memory planning %s", in_path);
    for (int64_t i = 0; s == LQ_OK && i < pm->n_tensors; i++) {
        const char *t = pm->tensors[i].name;
        size_t n = strlen(t);
        if (n > 7 && !strcmp(t + n - 7, ".weight")) n -= 7;
        if (!(names[i] = strndup(t, n))) s = lq_fail(LQ_ERR_NOMEM, "out of memory planning %s", in_path);
        else rules[i] = (lq_ptq_rule){.pattern = names[i], .scheme = m->scheme};
    }
    lq_ptq_summary sum = {0};
    lq_ptq_kv kv;
    lq_ptq_automix_plan plan = {0};
    lq_ptq_rule *mixed = NULL;
    if (s == LQ_OK) s = calib_kv(m, in_path, o, &kv);
    if (s == LQ_OK) {
        lq_ptq_opts po = {
            .kv = m->kv_cache ? &kv : NULL,
            .scheme = LQ_WFMT_NONE,
            .group_size = m->group_size, /* -1: per channel (config_groups strategy channel) */
            .asym = m->asym,
            .clip_search = m->clip_search,
            .group_fallback = (lq_ptq_group_fallback)m->group_fallback,
            .overrides = rules,
            .n_overrides = (int)pm->n_tensors,
            .pool = o ? o->pool : NULL,
            .progress = o ? o->progress : NULL,
            .user = o ? o->user : NULL,
        };
        if (m->target_bpw > 0) { /* as quant-ptq --target-bpw: the plan decides each module's scheme */
            s = lq_ptq_automix(in_path, &po, m->cand, m->n_cand, m->target_bpw, &plan);
            if (s == LQ_OK) s = lq_ptq_automix_apply(&plan, &po, &mixed);
        }
        if (s == LQ_OK) s = lq_ptq_quantize(in_path, out_dir, &po, &sum);
        lq_ptq_kv_free(&kv);
    }
    free(mixed);
    lq_ptq_automix_free(&plan);
    if (s == LQ_OK && res) {
        res->n_tensors = sum.n_quantized;
        res->params = sum.params_quantized;
        res->bytes_in = sum.bytes_in;
        res->bytes_out = sum.bytes_out;
    }
    lq_ptq_summary_free(&sum);
    for (int64_t i = 0; names && i < pm->n_tensors; i++) free(names[i]);
    free(names);
    free(rules);
    return s;
}

/* Module names (tensor names without ".weight") of the planned tensors; free with free_names. */
static char **module_names(const lq_plan_modifier *pm) {
    char **names = calloc((size_t)pm->n_tensors + 1, sizeof *names);
    for (int64_t i = 0; names && i < pm->n_tensors; i++) {
        const char *t = pm->tensors[i].name;
        size_t n = strlen(t);
        if (n > 7 && !strcmp(t + n - 7, ".weight")) n -= 7;
        if (!(names[i] = strndup(t, n))) {
            for (int64_t j = 0; j < i; j++) free(names[j]);
            free(names);
            return NULL;
        }
    }
    return names;
}

static void free_names(char **names, int64_t n) {
    for (int64_t i = 0; names && i < n; i++) free(names[i]);
    free(names);
}

/* The number after "model.layers." in a tensor name, or -1. */
static int layer_of(const char *name) {
    int l = -1;
    return sscanf(name, "model.layers.%d.", &l) == 1 ? l : -1;
}

/* Magnitude (unstructured or N:M) and structured pruning through lq_prune_run. Magnitude / N:M
 * write dense weights with the sparsity as config.json metadata, or (opts->bitmask_output) the
 * compressed-tensors sparse layouts, which the checkpoint reader decompresses, so a following
 * QuantizationModifier reads a dense model either way. */
static lq_status apply_pruning(const lq_recipe_modifier *m, const lq_plan_modifier *pm, const lq_checkpoint *ck,
                               const char *in_path, const char *out_dir, const lq_recipe_step_opts *o,
                               lq_recipe_step_result *res) {
    lq_prune_opts po = {.pool = o ? o->pool : NULL, .progress = o ? o->progress : NULL, .user = o ? o->user : NULL,
                        .bitmask_output = o && o->bitmask_output && m->kind != LQ_MOD_STRUCTURED_PRUNING};
    char **names = NULL;
    float *layer_keep = NULL;
    lq_status s = LQ_OK;
    if (m->kind == LQ_MOD_STRUCTURED_PRUNING) {
        po.method = m->structure == LQ_STRUCTURE_FFN ? LQ_PRUNE_FFN : LQ_PRUNE_HEADS;
        po.keep = (float)(1.0 - m->sparsity);
        /* ignore: a layer none of whose planned tensors remain is kept whole */
        int n_layers = 0;
        for (int64_t i = 0; i < lq_checkpoint_count(ck); i++) {
            int l = layer_of(lq_checkpoint_get(ck, i)->name);
            if (l + 1 > n_layers) n_layers = l + 1;
        }
        if (!(layer_keep = calloc((size_t)n_layers + 1, sizeof *layer_keep)))
            return lq_fail(LQ_ERR_NOMEM, "out of memory planning %s", in_path);
        for (int l = 0; l < n_layers; l++) layer_keep[l] = 1.0f;
        for (int64_t i = 0; i < pm->n_tensors; i++) {
            int l = layer_of(pm->tensors[i].name);
            if (l >= 0 && l < n_layers) layer_keep[l] = -1.0f; /* = keep */
        }
        po.layer_keep = layer_keep;
        po.n_layer_keep = n_layers;
    } else {
        /* the recipe's mask_n counts zeros ("2:4": 2 zeros in 4); lq_prune's nm_n counts kept */
        po.method = m->mask == LQ_MASK_NM ? LQ_PRUNE_NM : LQ_PRUNE_MAGNITUDE;
        po.sparsity = (float)m->sparsity;
        po.nm_n = m->mask_m - m->mask_n;
        po.nm_m = m->mask_m;
        if (!(names = module_names(pm))) return lq_fail(LQ_ERR_NOMEM, "out of memory planning %s", in_path);
        po.targets = (const char *const *)names;
        po.n_targets = (int)pm->n_tensors;
    }
    lq_prune_summary sum = {0};
    s = lq_prune_run(in_path, out_dir, &po, &sum);
    if (s == LQ_OK && res) {
        for (int64_t i = 0; i < sum.n_tensors; i++)
            if (sum.tensors[i].nonzero_out != sum.tensors[i].nonzero_in ||
                sum.tensors[i].rows_out != sum.tensors[i].rows_in || sum.tensors[i].cols_out != sum.tensors[i].cols_in)
                res->n_tensors++;
        res->params = sum.target_params;
        res->bytes_in = sum.bytes_in;
        res->bytes_out = sum.bytes_out;
    }
    lq_prune_summary_free(&sum);
    free_names(names, pm->n_tensors);
    free(layer_keep);
    return s;
}

/* ---- calibrated modifiers ---------------------------------------------------------------------- */

static lq_status need_calib(const lq_recipe *r, const lq_recipe_modifier *m, const lq_recipe_step_opts *o) {
    if (o && o->calib.n_files > 0) return LQ_OK;
    return lq_fail(LQ_ERR_INVALID_ARG, "%s (at %s:%d:%d) needs calibration text (quant-recipe run --calib FILE)",
                   lq_modifier_name(m->kind), r->path, m->pos.line, m->pos.col);
}

/* GPTQModifier: lq_gptq_quantize on exactly the planned modules (everything else stays float:
 * a catch-all override first, the planned names after it; the last match wins). */
static lq_status apply_gptq(const lq_recipe *r, const lq_recipe_modifier *m, const lq_plan_modifier *pm,
                            const char *in_path, const char *out_dir, const lq_recipe_step_opts *o,
                            lq_recipe_step_result *res) {
    LQ_TRY(need_calib(r, m, o));
    /* the pack-quantized integer schemes: GPTQ's rounding grid is the scheme's */
    const lq_wfmt sch = m->scheme;
    if (!lq_ct_packed(sch))
        return lq_fail(LQ_ERR_UNSUPPORTED, "GPTQModifier (at %s:%d:%d): scheme %s: GPTQ writes W4A16, W4A16_ASYM, "
                       "W3A16 and W8A16", r->path, m->pos.line, m->pos.col, lq_preset_name(m->scheme, m->asym));
    lq_gptq_actorder ao = LQ_GPTQ_ACTORDER_NONE;
    if (m->actorder[0] && !lq_gptq_actorder_parse(m->actorder, &ao))
        return lq_fail(LQ_ERR_UNSUPPORTED, "GPTQModifier (at %s:%d:%d): actorder '%s' is not available (static "
                       "or weight)", r->path, m->pos.line, m->pos.col, m->actorder);
    char **names = module_names(pm);
    lq_ptq_rule *rules = calloc((size_t)pm->n_tensors + 2, sizeof *rules);
    lq_status s = names && rules ? LQ_OK : lq_fail(LQ_ERR_NOMEM, "out of memory planning %s", in_path);
    lq_ptq_kv kv = {0};
    if (s == LQ_OK) s = calib_kv(m, in_path, o, &kv);
    if (s == LQ_OK) {
        rules[0] = (lq_ptq_rule){.pattern = "re:.*", .scheme = LQ_WFMT_NONE};
        for (int64_t i = 0; i < pm->n_tensors; i++) rules[i + 1] = (lq_ptq_rule){.pattern = names[i], .scheme = sch};
        lq_gptq_opts go = {
            .ptq = {.scheme = sch, .group_size = m->group_size,
                    .asym = m->asym, .group_fallback = (lq_ptq_group_fallback)m->group_fallback,
                    .overrides = rules, .n_overrides = (int)pm->n_tensors + 1, .pool = o->pool,
                    .progress = o->progress, .user = o->user, .kv = m->kv_cache ? &kv : NULL},
            .calib = o->calib, .damp = m->dampening_frac, .block_size = m->block_size, .actorder = ao};
        lq_gptq_summary sum = {0};
        s = lq_gptq_quantize(in_path, out_dir, &go, &sum);
        if (s == LQ_OK && res) {
            res->n_tensors = sum.ptq.n_quantized;
            res->params = sum.ptq.params_quantized;
            res->bytes_in = sum.ptq.bytes_in;
            res->bytes_out = sum.ptq.bytes_out;
        }
        lq_gptq_summary_free(&sum);
    }
    lq_ptq_kv_free(&kv);
    free_names(names, pm->n_tensors);
    free(rules);
    return s;
}

/* SparseGPTModifier / WandaPruningModifier: lq_sparse_prune on the planned modules. The
 * recipe's mask_structure "N:M" counts pruned weights (llm-compressor's), lq_prune's kept. */
static lq_status apply_sparse(const lq_recipe *r, const lq_recipe_modifier *m, const lq_plan_modifier *pm,
                              const char *in_path, const char *out_dir, const lq_recipe_step_opts *o,
                              lq_recipe_step_result *res) {
    LQ_TRY(need_calib(r, m, o));
    char **names = module_names(pm);
    if (!names) return lq_fail(LQ_ERR_NOMEM, "out of memory planning %s", in_path);
    lq_sparse_opts so = {
        .method = m->kind == LQ_MOD_WANDA ? LQ_SPARSE_WANDA : LQ_SPARSE_SPARSEGPT,
        .prune = {.method = m->mask == LQ_MASK_NM ? LQ_PRUNE_NM : LQ_PRUNE_MAGNITUDE, .sparsity = (float)m->sparsity,
                  .nm_n = m->mask_m - m->mask_n, .nm_m = m->mask_m, .targets = (const char *const *)names,
                  .n_targets = (int)pm->n_tensors, .bitmask_output = o->bitmask_output, .pool = o->pool,
                  .progress = o->progress, .user = o->user},
        .calib = o->calib, .damp = m->dampening_frac, .block_size = m->block_size};
    lq_sparse_summary sum = {0};
    lq_status s = lq_sparse_prune(in_path, out_dir, &so, &sum);
    if (s == LQ_OK && res) {
        for (int64_t i = 0; i < sum.prune.n_tensors; i++)
            res->n_tensors += sum.prune.tensors[i].nonzero_out != sum.prune.tensors[i].nonzero_in;
        res->params = sum.prune.target_params;
        res->bytes_in = sum.prune.bytes_in;
        res->bytes_out = sum.prune.bytes_out;
    }
    lq_sparse_summary_free(&sum);
    free_names(names, pm->n_tensors);
    return s;
}

/* The first quantizing modifier with a scheme after m in r (llm-compressor's AWQModifier without a
 * scheme reads the one the following QuantizationModifier attached), or NULL. */
static const lq_recipe_modifier *next_quant(const lq_recipe *r, const lq_recipe_modifier *m) {
    bool after = false;
    for (int i = 0; i < r->n_stages; i++)
        for (int j = 0; j < r->stages[i].n_mods; j++) {
            const lq_recipe_modifier *q = &r->stages[i].mods[j];
            if (q == m) after = true;
            else if (after && (q->kind == LQ_MOD_QUANTIZATION || q->kind == LQ_MOD_GPTQ) && q->scheme != LQ_WFMT_NONE)
                return q;
        }
    return NULL;
}

/* Remove the flat directory of a smoothed float model (its files, then itself). */
static void remove_flat_dir(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[4096];
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && snprintf(p, sizeof p, "%s/%s", dir, e->d_name) < (int)sizeof p)
            unlink(p);
    if (d) closedir(d);
    rmdir(dir);
}

/* AWQModifier / SmoothQuantModifier: lq_smooth_transform on the step's calibration text. The
 * smoothed float model is the step's output; an AWQModifier with its own scheme (llm-compressor's
 * older all-in-one form) then quantizes it as a QuantizationModifier would. */
static lq_status apply_smooth(const lq_recipe *r, const lq_recipe_modifier *m, const lq_plan_modifier *pm,
                              const char *in_path, const char *out_dir, const lq_recipe_step_opts *o,
                              lq_recipe_step_result *res) {
    LQ_TRY(need_calib(r, m, o));
    const lq_recipe_modifier *q = m->scheme != LQ_WFMT_NONE ? m : next_quant(r, m);
    lq_smooth_opts so = {.method = m->kind == LQ_MOD_AWQ ? LQ_SMOOTH_AWQ : LQ_SMOOTH_SMOOTHQUANT,
                         .calib = o->calib, .alpha = m->smoothing_strength,
                         .duo = (lq_awq_duo)m->duo_scaling, .n_grid = m->n_grid, .pool = o->pool};
    /* 3 bits for W3A16 (lq_smooth_run refuses it by name: AWQ searches at 4 or 8) */
    if (q) lq_smooth_set_scheme(&so, q->scheme, q->group_size, q->asym);
    if (m->kind == LQ_MOD_SMOOTHQUANT || m->scheme == LQ_WFMT_NONE) {
        LQ_TRY(lq_smooth_transform(in_path, out_dir, &so, NULL));
        if (res) res->n_tensors = 0;
        return LQ_OK;
    }
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s/.smoothed", out_dir) >= (int)sizeof tmp || mkdir(tmp, 0755) != 0)
        return lq_fail(LQ_ERR_IO, "%s/.smoothed: cannot create", out_dir);
    lq_status s = lq_smooth_transform(in_path, tmp, &so, NULL);
    if (s == LQ_OK) s = apply_quantization(m, pm, tmp, out_dir, o, res);
    remove_flat_dir(tmp);
    return s;
}

lq_status lq_recipe_apply_modifier(const lq_recipe *r, const lq_recipe_modifier *m, const char *in_path,
                                   const char *out_dir, const lq_recipe_step_opts *opts,
                                   lq_recipe_step_result *res) {
    double t0 = now_s();
    if (res) memset(res, 0, sizeof *res);
    if (!lq_modifier_available(m->kind))
        return lq_fail(LQ_ERR_UNSUPPORTED, "modifier %s is not available in this build (at %s:%d:%d)",
                       lq_modifier_name(m->kind), r->path, m->pos.line, m->pos.col);
    lq_checkpoint *ck = NULL;
    lq_plan plan = {0};
    LQ_TRY(plan_one(r, m, in_path, &ck, &plan));
    /* The drivers open the input themselves; the plan keeps borrowed names, so close after. */
    lq_status s;
    switch (m->kind) {
    case LQ_MOD_QUANTIZATION: s = apply_quantization(m, &plan.mods[0], in_path, out_dir, opts, res); break;
    case LQ_MOD_AWQ:
    case LQ_MOD_SMOOTHQUANT: s = apply_smooth(r, m, &plan.mods[0], in_path, out_dir, opts, res); break;
    case LQ_MOD_MAGNITUDE_PRUNING:
    case LQ_MOD_STRUCTURED_PRUNING: s = apply_pruning(m, &plan.mods[0], ck, in_path, out_dir, opts, res); break;
    case LQ_MOD_GPTQ: s = apply_gptq(r, m, &plan.mods[0], in_path, out_dir, opts, res); break;
    case LQ_MOD_SPARSEGPT:
    case LQ_MOD_WANDA: s = apply_sparse(r, m, &plan.mods[0], in_path, out_dir, opts, res); break;
    default:
        s = lq_fail(LQ_ERR_UNSUPPORTED, "modifier %s is not available in this build (at %s:%d:%d)",
                    lq_modifier_name(m->kind), r->path, m->pos.line, m->pos.col);
        break;
    }
    lq_plan_free(&plan);
    lq_checkpoint_close(ck);
    if (res) res->seconds = now_s() - t0;
    return s;
}
