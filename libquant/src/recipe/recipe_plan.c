/* recipe_plan.c - a recipe against a checkpoint: which tensors each modifier touches, the checks
 * that need shapes, and the estimated output size (lq_recipe_plan in lq_recipe.h). */
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "libquant/lq_ptq.h"
#include "libquant/lq_recipe.h"
#include "libquant/lq_targets.h"

/* An AWQModifier without a scheme (llm-compressor's transform form) only smooths: the following
 * QuantizationModifier quantizes. */
static bool is_quant(const lq_recipe_modifier *m) {
    return m->kind == LQ_MOD_QUANTIZATION || m->kind == LQ_MOD_GPTQ ||
           (m->kind == LQ_MOD_AWQ && m->scheme != LQ_WFMT_NONE);
}

static bool is_smooth(const lq_recipe_modifier *m) {
    return m->kind == LQ_MOD_SMOOTHQUANT || (m->kind == LQ_MOD_AWQ && m->scheme == LQ_WFMT_NONE);
}

static bool is_prune(lq_modifier_kind k) {
    return k == LQ_MOD_MAGNITUDE_PRUNING || k == LQ_MOD_CONSTANT_PRUNING ||
           k == LQ_MOD_STRUCTURED_PRUNING || k == LQ_MOD_SPARSEGPT || k == LQ_MOD_WANDA;
}

static lq_status compile_all(char **specs, int n, lq_target ***out) {
    *out = calloc((size_t)n + 1, sizeof **out);
    if (!*out) return lq_fail(LQ_ERR_NOMEM, "out of memory planning the recipe");
    for (int i = 0; i < n; i++) LQ_TRY(lq_target_compile(specs[i], &(*out)[i]));
    return LQ_OK;
}

static void free_all(lq_target **t, int n) {
    if (!t) return;
    for (int i = 0; i < n; i++) lq_target_free(t[i]);
    free(t);
}

/* Modifiers without targets act on role groups of the architecture descriptor: structured
 * pruning on the FFN or attention group, SmoothQuant on every Linear that reads a norm (it folds
 * scales into the norm and rescales those layers). */
static bool touches(const lq_arch *a, const lq_recipe_modifier *m, lq_target **tg, lq_target **ig,
                    const char *module, lq_module_class cls) {
    /* Only Linear weights are quantized or pruned; "__ALL__" does not drag norms in. */
    if (cls != LQ_MODULE_LINEAR) return false;
    for (int i = 0; i < m->n_ignore; i++)
        if (lq_target_match(ig[i], module, cls)) return false;
    switch (m->kind) {
    case LQ_MOD_STRUCTURED_PRUNING: {
        const lq_role_info *ri = lq_arch_linear_info(a, module);
        if (ri && m->structure == LQ_STRUCTURE_FFN) /* a sparse MoE's FFN: each expert's, the shared one's */
            return ri->group == LQ_GROUP_FFN || ri->group == LQ_GROUP_EXPERT || ri->group == LQ_GROUP_SHARED_EXPERT;
        return ri && ri->group == LQ_GROUP_ATTN;
    }
    case LQ_MOD_SMOOTHQUANT: {
        const lq_role_info *ri = lq_arch_linear_info(a, module);
        return ri && ri->input_norm >= 0;
    }
    default:
        for (int i = 0; i < m->n_targets; i++)
            if (lq_target_match(tg[i], module, cls)) return true;
        return false;
    }
}

void lq_plan_free(lq_plan *p) {
    if (!p) return;
    for (int i = 0; i < p->n_mods; i++) free(p->mods[i].tensors);
    free(p->mods);
    memset(p, 0, sizeof *p);
}

/* Shape checks of one modifier on one tensor; `by` holds, per tensor, the quantizing modifier. */
static lq_status check_tensor(const lq_recipe *r, const lq_recipe_modifier *m, const lq_tensor *t,
                              const lq_recipe_modifier **by) {
    const int64_t cols = t->shape[1];
    if (is_quant(m)) {
        if (*by)
            return lq_fail(LQ_ERR_INVALID_ARG,
                           "tensor %s is quantized twice: by %s at %s:%d:%d and %s at %s:%d:%d", t->name,
                           lq_modifier_name((*by)->kind), r->path, (*by)->pos.line, (*by)->pos.col,
                           lq_modifier_name(m->kind), r->path, m->pos.line, m->pos.col);
        if (m->group_size > 0 && cols % m->group_size != 0 && m->group_fallback == LQ_GROUP_FALLBACK_REFUSE)
            return lq_fail(LQ_ERR_INVALID_ARG,
                           "group_size %d does not divide the %lld columns of %s (%s at %s:%d:%d); "
                           "add group_fallback: channel or ignore, or choose a divisor",
                           m->group_size, (long long)cols, t->name, lq_modifier_name(m->kind), r->path,
                           m->pos.line, m->pos.col);
        *by = m;
    }
    if (is_prune(m->kind) || is_smooth(m)) {
        if (*by)
            return lq_fail(LQ_ERR_INVALID_ARG,
                           "%s at %s:%d:%d changes %s after %s at %s:%d:%d quantized it: prune and smooth "
                           "before quantizing",
                           lq_modifier_name(m->kind), r->path, m->pos.line, m->pos.col, t->name,
                           lq_modifier_name((*by)->kind), r->path, (*by)->pos.line, (*by)->pos.col);
        if (m->mask == LQ_MASK_NM && cols % m->mask_m != 0)
            return lq_fail(LQ_ERR_INVALID_ARG,
                           "%d:%d sparsity needs the columns of %s (%lld) to be a multiple of %d (%s at %s:%d:%d)",
                           m->mask_n, m->mask_m, t->name, (long long)cols, m->mask_m,
                           lq_modifier_name(m->kind), r->path, m->pos.line, m->pos.col);
    }
    return LQ_OK;
}

lq_status lq_recipe_plan(const lq_recipe *r, const lq_checkpoint *ck, lq_plan *out) {
    memset(out, 0, sizeof *out);
    const int64_t nt = lq_checkpoint_count(ck);
    const lq_arch *arch = lq_arch_find(lq_checkpoint_config(ck)->arch); /* NULL: no role groups */
    int n_mods = 0;
    for (int i = 0; i < r->n_stages; i++) n_mods += r->stages[i].n_mods;
    const lq_recipe_modifier **by = calloc((size_t)nt + 1, sizeof *by);
    /* the modifier that quantizes tensor k last (NULL: it stays as stored) and its group size */
    const lq_recipe_modifier **quant = calloc((size_t)nt + 1, sizeof *quant);
    int32_t *gsize = calloc((size_t)nt + 1, sizeof *gsize);
    out->mods = calloc((size_t)n_mods + 1, sizeof *out->mods);
    lq_status s = (by && quant && gsize && out->mods) ? LQ_OK
                                                       : lq_fail(LQ_ERR_NOMEM, "out of memory planning %s", r->path);
    char module[256];
    for (int i = 0; s == LQ_OK && i < r->n_stages; i++) {
        const lq_recipe_stage *st = &r->stages[i];
        for (int j = 0; s == LQ_OK && j < st->n_mods; j++) {
            const lq_recipe_modifier *m = &st->mods[j];
            lq_plan_modifier *pm = &out->mods[out->n_mods++];
            pm->mod = m;
            lq_target **tg = NULL, **ig = NULL;
            s = compile_all(m->targets, m->n_targets, &tg);
            if (s == LQ_OK) s = compile_all(m->ignore, m->n_ignore, &ig);
            if (s == LQ_OK && !(pm->tensors = calloc((size_t)nt + 1, sizeof *pm->tensors)))
                s = lq_fail(LQ_ERR_NOMEM, "out of memory planning %s", r->path);
            for (int64_t k = 0; s == LQ_OK && k < nt; k++) {
                const lq_tensor *t = lq_checkpoint_get(ck, k);
                lq_module_class cls = lq_module_of_tensor(t, module, sizeof module);
                if (t->ndim != 2 || !touches(arch, m, tg, ig, module, cls)) continue;
                if ((s = check_tensor(r, m, t, &by[k])) != LQ_OK) break;
                if (is_quant(m)) {
                    quant[k] = m;
                    gsize[k] = m->group_size < 0 ? (int32_t)t->shape[1] : m->group_size; /* -1: per channel */
                    /* the fallback's result: one group per row, or left as stored */
                    if (m->group_size > 0 && t->shape[1] % m->group_size != 0) {
                        if (m->group_fallback == LQ_GROUP_FALLBACK_CHANNEL) gsize[k] = (int32_t)t->shape[1];
                        else quant[k] = NULL;
                    }
                }
                pm->tensors[pm->n_tensors++] = (lq_plan_tensor){t->name, t->shape[0], t->shape[1]};
                pm->params += t->shape[0] * t->shape[1];
            }
            if (s == LQ_OK && pm->n_tensors == 0)
                s = lq_fail(LQ_ERR_INVALID_ARG, "%s at %s:%d:%d matches no tensor of %s (targets%s%s)",
                            lq_modifier_name(m->kind), r->path, m->pos.line, m->pos.col,
                            lq_checkpoint_path(ck), m->n_targets ? ": " : " are fixed",
                            m->n_targets ? m->targets[0] : "");
            free_all(tg, m->n_targets);
            free_all(ig, m->n_ignore);
        }
    }
    for (int64_t k = 0; s == LQ_OK && k < nt; k++) {
        const lq_tensor *t = lq_checkpoint_get(ck, k);
        const int64_t numel = lq_tensor_numel(t);
        out->bytes_in += t->nbytes;
        out->params_total += numel;
        if (quant[k]) {
            /* compressed-tensors stores scales in the weight's dtype; a target_bpw plan takes at
             * most that many bits per weight (the estimate is its bound) */
            if (quant[k]->target_bpw > 0)
                out->bytes_out += (uint64_t)((double)numel * quant[k]->target_bpw / 8.0);
            else
                out->bytes_out += lq_ct_weight_bytes(quant[k]->scheme, gsize[k], quant[k]->asym, t->shape[0],
                                                     t->shape[1], (int)lq_dtype_size(t->dtype));
            out->params_quantized += numel;
        } else {
            out->bytes_out += t->nbytes;
        }
    }
    free(by);
    free(quant);
    free(gsize);
    if (s != LQ_OK) lq_plan_free(out);
    return s;
}
