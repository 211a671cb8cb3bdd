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

static const char *const g_scheme_names[LQ_SCHEME_COUNT] = {
    [LQ_SCHEME_NONE] = "none",   [LQ_SCHEME_W8A16] = "W8A16", [LQ_SCHEME_W4A16] = "W4A16",
    [LQ_SCHEME_W4A16_ASYM] = "W4A16_ASYM", [LQ_SCHEME_W8A8] = "W8A8", [LQ_SCHEME_FP8] = "FP8",
    [LQ_SCHEME_W3A16] = "W3A16",
};

const char *lq_recipe_scheme_name(lq_recipe_scheme s) {
    return (int)s >= 0 && s < LQ_SCHEME_COUNT ? g_scheme_names[s] : "?";
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

/* compressed-tensors layouts (lq_ptq.h): pack-quantized codes in int32 words along columns,
 * scales [rows, groups] in the model dtype, weight_shape I64[2]; asymmetric W4A16 adds int4 zero
 * points packed along rows; int-/float-quantized store one byte per weight and a scale per row. */
uint64_t lq_recipe_scheme_bytes(lq_recipe_scheme s, int32_t group_size, int64_t rows, int64_t cols,
                                int scale_bytes) {
    const uint64_t r = (uint64_t)rows, c = (uint64_t)cols, sb = (uint64_t)scale_bytes;
    switch (s) {
    case LQ_SCHEME_W8A16: return r * ((c * 8 + 31) / 32) * 4 + r * sb + 16;
    case LQ_SCHEME_W4A16:
    case LQ_SCHEME_W4A16_ASYM:
    case LQ_SCHEME_W3A16: {
        const uint64_t bits = s == LQ_SCHEME_W3A16 ? 3 : 4;
        uint64_t g = group_size > 0 ? ((c + (uint64_t)group_size - 1) / (uint64_t)group_size) : 1;
        uint64_t b = r * ((c * bits + 31) / 32) * 4 + r * g * sb + 16;
        if (s == LQ_SCHEME_W4A16_ASYM) b += ((r * 4 + 31) / 32) * g * 4;
        return b;
    }
    case LQ_SCHEME_W8A8:
    case LQ_SCHEME_FP8: return r * c + r * sb;
    default: return r * c * sb;
    }
}
