/* recipe_avail.c - modifier and scheme names, what this build can run, scheme storage sizes. */
#include <stdio.h>

#include "libquant/lq_recipe.h"

/* What this build can run: a modifier is available once the library API that implements it has
 * landed and recipe_run.c dispatches to it; until then `check` says so instead of pretending. */

static const char *const g_mod_names[LQ_MOD_COUNT] = {
    [LQ_MOD_QUANTIZATION] = "QuantizationModifier",
    [LQ_MOD_GPTQ] = "GPTQModifier",
    [LQ_MOD_AWQ] = "AWQModifier",
    [LQ_MOD_SMOOTHQUANT] = "SmoothQuantModifier",
    [LQ_MOD_MAGNITUDE_PRUNING] = "MagnitudePruningModifier",
    [LQ_MOD_CONSTANT_PRUNING] = "ConstantPruningModifier",
    [LQ_MOD_STRUCTURED_PRUNING] = "StructuredPruningModifier",
    [LQ_MOD_SPARSEGPT] = "SparseGPTModifier",
    [LQ_MOD_WANDA] = "WandaPruningModifier",
};

const char *lq_modifier_name(lq_modifier_kind k) {
    return (int)k >= 0 && k < LQ_MOD_COUNT ? g_mod_names[k] : "?";
}

bool lq_modifier_available(lq_modifier_kind k) {
    switch (k) {
    case LQ_MOD_QUANTIZATION: return true;      /* lq_ptq_quantize */
    case LQ_MOD_MAGNITUDE_PRUNING: return true; /* lq_prune_run: magnitude, N:M */
    case LQ_MOD_STRUCTURED_PRUNING: return true; /* lq_prune_run: ffn, heads */
    case LQ_MOD_GPTQ: return true;              /* lq_gptq_quantize */
    case LQ_MOD_SPARSEGPT:
    case LQ_MOD_WANDA: return true;             /* lq_sparse_prune */
    case LQ_MOD_AWQ: return true;               /* lq_smooth_transform (+ lq_ptq_quantize) */
    case LQ_MOD_SMOOTHQUANT: return true;       /* lq_smooth_transform */
    /* ConstantPruning needs mask-preserving fine-tuning: no library API */
    default: return false;
    }
}

bool lq_modifier_needs_calibration(lq_modifier_kind k) {
    return k == LQ_MOD_GPTQ || k == LQ_MOD_SPARSEGPT || k == LQ_MOD_WANDA || k == LQ_MOD_AWQ ||
           k == LQ_MOD_SMOOTHQUANT;
}

lq_status lq_recipe_check_available(const lq_recipe *r) {
    for (int i = 0; i < r->n_stages; i++) {
        const lq_recipe_stage *st = &r->stages[i];
        /* eval_stage and distill_stage run in quant-recipe itself (lq_eval, lq_distill) */
        for (int j = 0; j < st->n_mods; j++) {
            const lq_recipe_modifier *m = &st->mods[j];
            if (!lq_modifier_available(m->kind))
                return lq_fail(LQ_ERR_UNSUPPORTED,
                               "modifier %s is not available in this build (at %s:%d:%d)",
                               lq_modifier_name(m->kind), r->path, m->pos.line, m->pos.col);
        }
    }
    return LQ_OK;
}
