/* recipe_parse_modifier.c - one llm-compressor modifier (class name -> arguments) into an
 * lq_recipe_modifier: which arguments each class takes, the ones recognized but refused (with
 * the reason), the scheme presets, N:M masks, then the requirements inside one modifier.
 */
#include "recipe_parse_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "libquant/lq_ptq.h"
#include "libquant/lq_targets.h"

/* ---- modifiers ---------------------------------------------------------------------------------- */

typedef enum arg_id {
    A_TARGETS, A_IGNORE, A_SCHEME, A_GROUP_SIZE, A_CLIP_SEARCH, A_BLOCK_SIZE, A_DAMPENING,
    A_ACTORDER, A_SEQUENTIAL_UPDATE, A_OFFLOAD_HESSIANS, A_DUO_SCALING, A_SMOOTHING, A_SPARSITY,
    A_FINAL_SPARSITY, A_MASK_STRUCTURE, A_STRUCTURE, A_GROUP_FALLBACK, A_N_GRID, A_OFFLOAD_DEVICE,
    A_KV_CACHE_SCHEME, A_CONFIG_GROUPS, A_TARGET_BPW, A_CANDIDATES, A_COUNT
} arg_id;

static const char *const g_arg_names[A_COUNT] = {
    "targets", "ignore", "scheme", "group_size", "clip_search", "block_size", "dampening_frac",
    "actorder", "sequential_update", "offload_hessians", "duo_scaling", "smoothing_strength",
    "sparsity", "final_sparsity", "mask_structure", "structure", "group_fallback", "n_grid", "offload_device",
    "kv_cache_scheme", "config_groups", "target_bpw", "candidates",
};

#define B(a) (1u << (a))
static const unsigned g_allowed[LQ_MOD_COUNT] = {
    [LQ_MOD_QUANTIZATION] = B(A_TARGETS) | B(A_IGNORE) | B(A_SCHEME) | B(A_GROUP_SIZE) | B(A_CLIP_SEARCH) |
                            B(A_GROUP_FALLBACK) | B(A_KV_CACHE_SCHEME) | B(A_CONFIG_GROUPS) | B(A_TARGET_BPW) |
                            B(A_CANDIDATES),
    [LQ_MOD_GPTQ] = B(A_TARGETS) | B(A_IGNORE) | B(A_SCHEME) | B(A_GROUP_SIZE) | B(A_BLOCK_SIZE) |
                    B(A_DAMPENING) | B(A_ACTORDER) | B(A_SEQUENTIAL_UPDATE) | B(A_OFFLOAD_HESSIANS) |
                    B(A_GROUP_FALLBACK) | B(A_KV_CACHE_SCHEME) | B(A_CONFIG_GROUPS),
    [LQ_MOD_AWQ] = B(A_TARGETS) | B(A_IGNORE) | B(A_SCHEME) | B(A_GROUP_SIZE) | B(A_DUO_SCALING) | B(A_N_GRID) |
                   B(A_OFFLOAD_DEVICE) | B(A_CONFIG_GROUPS),
    [LQ_MOD_SMOOTHQUANT] = B(A_IGNORE) | B(A_SMOOTHING),
    [LQ_MOD_MAGNITUDE_PRUNING] = B(A_TARGETS) | B(A_IGNORE) | B(A_SPARSITY) | B(A_FINAL_SPARSITY) |
                                 B(A_MASK_STRUCTURE),
    [LQ_MOD_CONSTANT_PRUNING] = B(A_TARGETS) | B(A_IGNORE),
    [LQ_MOD_STRUCTURED_PRUNING] = B(A_IGNORE) | B(A_SPARSITY) | B(A_STRUCTURE),
    [LQ_MOD_SPARSEGPT] = B(A_TARGETS) | B(A_IGNORE) | B(A_SPARSITY) | B(A_MASK_STRUCTURE) |
                         B(A_BLOCK_SIZE) | B(A_DAMPENING),
    [LQ_MOD_WANDA] = B(A_TARGETS) | B(A_IGNORE) | B(A_SPARSITY) | B(A_MASK_STRUCTURE),
};

/* llm-compressor arguments we recognize but do not take, each with the reason. */
static const struct {
    const char *name, *why;
} g_refused[] = {
    {"mappings", "custom mappings are not supported (they come from the architecture descriptor: norm -> q/k/v, "
                 "v -> o, norm -> gate/up, up -> down)"},
    {"init_sparsity", "'init_sparsity' is a training-schedule argument; one-shot recipes take 'sparsity'"},
    {"start", "'start' is a training-schedule argument; recipes run each modifier once"},
    {"end", "'end' is a training-schedule argument; recipes run each modifier once"},
    {"update_frequency", "'update_frequency' is a training-schedule argument; recipes run each modifier once"},
    {"leave_enabled", "'leave_enabled' is a training-schedule argument; recipes run each modifier once"},
};

/* llm-compressor modifiers libquant does not implement at all. */
static const char *const g_foreign_mods[] = {
    "SpinQuantModifier", "QuIPModifier", "LogarithmicEqualizationModifier",
    "OutputDistillationModifier", "LayerPruningModifier",
};

/* compressed-tensors presets whose formats this build has no kernels for. */
static const char *const g_lacking_schemes[] = {"W4A8", "FP8_BLOCK", "NVFP4", "NVFP4A16", "MXFP4", "MXFP4A16",
                                                "W4AFP8", "UNQUANTIZED"};

/* A preset name (lq_preset_find; "none" is no scheme to quantize with) into m's scheme and asym. */
static lq_status parse_scheme(const pctx *c, const yaml_node_t *v, const char *mod, lq_recipe_modifier *m) {
    char what[96];
    snprintf(what, sizeof what, "argument 'scheme' of %s", mod);
    LQ_TRY(rp_want_scalar(c, v, what, "a scheme name"));
    const char *s = ry_scalar(v);
    const lq_preset *p = lq_preset_find(s);
    if (p && p->fmt != LQ_WFMT_NONE) {
        m->scheme = p->fmt;
        m->asym = p->asym;
        return LQ_OK;
    }
    for (size_t i = 0; i < sizeof g_lacking_schemes / sizeof *g_lacking_schemes; i++)
        if (!strcasecmp(s, g_lacking_schemes[i]))
            return rp_fail_at(c, LQ_ERR_UNSUPPORTED, v, NULL,
                           "scheme '%s' is not available in this build (have W8A16, W4A16, W4A16_ASYM, W3A16, W8A8, FP8)",
                           g_lacking_schemes[i]);
    const char *names[32];
    int n = 0;
    const lq_preset *q;
    for (int i = 0; n < 32 && (q = lq_preset_at(i)); i++)
        if (q->fmt != LQ_WFMT_NONE) names[n++] = q->name; /* "none" is not a scheme to quantize with */
    char b[80];
    return rp_fail_at(c, LQ_ERR_FORMAT, v, lq_suggest(s, names, n), "unknown scheme %s", rp_shown(v, b, sizeof b));
}

/* Strict decimal: len > 0 bytes, digits only (no sign, space or base prefix), value <= INT_MAX.
 * sscanf("%d") wraps on overflow ("2:4294967300" read as 2:4) and skips spaces. */
static bool parse_dec(const char *s, size_t len, int *out) {
    if (len == 0 || len > 10) return false;
    long long x = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        x = x * 10 + (s[i] - '0');
    }
    if (x > INT_MAX) return false;
    *out = (int)x;
    return true;
}

static lq_status parse_mask(const pctx *c, const yaml_node_t *v, const char *what, lq_recipe_modifier *m) {
    LQ_TRY(rp_want_scalar(c, v, what, "'unstructured' or 'N:M'"));
    const char *s = ry_scalar(v);
    if (!strcmp(s, "unstructured") || !strcmp(s, "0:0")) {
        m->mask = LQ_MASK_UNSTRUCTURED;
        return LQ_OK;
    }
    int n, mm;
    char b[80];
    const char *colon = strchr(s, ':');
    if (!colon || !parse_dec(s, (size_t)(colon - s), &n) || !parse_dec(colon + 1, strlen(colon + 1), &mm))
        return rp_fail_at(c, LQ_ERR_FORMAT, v, NULL, "%s must be 'unstructured' or 'N:M' (e.g. '2:4'), got %s",
                       what, rp_shown(v, b, sizeof b));
    if (n < 1 || mm < 2 || n >= mm || mm > 256)
        return rp_fail_at(c, LQ_ERR_INVALID_ARG, v, NULL,
                       "%s '%s': need 1 <= N < M <= 256 (N zeros in every M weights)", what, s);
    m->mask = LQ_MASK_NM;
    m->mask_n = n;
    m->mask_m = mm;
    return LQ_OK;
}

/* The modifier class the key names, or a one-line refusal (foreign class, or unknown with a
 * suggestion). */
static lq_status find_kind(const pctx *c, const entry *me, lq_modifier_kind *out) {
    const char *name = me->name;
    int kind = -1;
    for (int k = 0; k < LQ_MOD_COUNT; k++)
        if (!strcmp(name, lq_modifier_name((lq_modifier_kind)k))) kind = k;
    if (kind < 0) {
        for (size_t i = 0; i < sizeof g_foreign_mods / sizeof *g_foreign_mods; i++)
            if (!strcmp(name, g_foreign_mods[i]))
                return rp_fail_at(c, LQ_ERR_UNSUPPORTED, me->key, NULL, "modifier '%s' is not supported by libquant", name);
        const char *names[LQ_MOD_COUNT];
        for (int k = 0; k < LQ_MOD_COUNT; k++) names[k] = lq_modifier_name((lq_modifier_kind)k);
        char b[80];
        return rp_fail_at(c, LQ_ERR_FORMAT, me->key, lq_suggest(name, names, LQ_MOD_COUNT), "unknown modifier %s",
                       rp_shown(me->key, b, sizeof b));
    }
    *out = (lq_modifier_kind)kind;
    return LQ_OK;
}

/* Which argument of `kind` the entry is, or a one-line refusal: recognized but not taken (with
 * the reason), or unknown (with a suggestion among the class's arguments). */
static lq_status find_arg(const pctx *c, const entry *e, lq_modifier_kind kind, const char *name, arg_id *out) {
    for (int k = 0; k < A_COUNT; k++)
        if (!strcmp(e->name, g_arg_names[k]) && (g_allowed[kind] & B(k))) {
            *out = (arg_id)k;
            return LQ_OK;
        }
    for (size_t k = 0; k < sizeof g_refused / sizeof *g_refused; k++)
        if (!strcmp(e->name, g_refused[k].name))
            return rp_fail_at(c, LQ_ERR_UNSUPPORTED, e->key, NULL, "%s: %s", name, g_refused[k].why);
    const char *names[A_COUNT];
    int nn = 0;
    for (int k = 0; k < A_COUNT; k++)
        if (g_allowed[kind] & B(k)) names[nn++] = g_arg_names[k];
    char b[80];
    return rp_fail_at(c, LQ_ERR_FORMAT, e->key, lq_suggest(e->name, names, nn), "unknown argument %s of %s",
                      rp_shown(e->key, b, sizeof b), name);
}

/* kv_cache_scheme: QuantizationArgs of the K / V states, as llm-compressor's examples write them
 * ({num_bits: 8, type: float, strategy: tensor, dynamic: false, symmetric: true}). What the
 * engine and the writer take: 8 bits, symmetric, static, per tensor or attn_head. */
static lq_status parse_kv_scheme(const pctx *c, yaml_node_t *v, const char *what, lq_recipe_modifier *m) {
    if (ry_is_null(v)) return LQ_OK; /* no KV-cache quantization */
    entry *e;
    int n;
    LQ_TRY(rp_map_entries(c, v, what, &e, &n));
    lq_status s = LQ_OK;
    m->kv_cache = 1;
    for (int i = 0; s == LQ_OK && i < n; i++) {
        const char *k = e[i].name, *t = ry_scalar(e[i].val);
        char b[80];
        if (!strcmp(k, "num_bits")) {
            int32_t bits;
            if ((s = rp_get_int(c, e[i].val, what, 1, 64, &bits)) == LQ_OK && bits != 8)
                s = rp_fail_at(c, LQ_ERR_UNSUPPORTED, e[i].val, NULL, "%s: num_bits %d (the KV cache is 8-bit)", what, bits);
        } else if (!strcmp(k, "type")) {
            if (t && !strcmp(t, "float")) m->kv_cache = 2;
            else if (t && !strcmp(t, "int")) m->kv_cache = 1;
            else s = rp_fail_at(c, LQ_ERR_FORMAT, e[i].val, NULL, "%s: type must be int or float, got %s", what,
                                rp_shown(e[i].val, b, sizeof b));
        } else if (!strcmp(k, "strategy")) {
            if (t && !strcmp(t, "attn_head")) m->kv_per_head = true;
            else if (t && !strcmp(t, "tensor")) m->kv_per_head = false;
            else s = rp_fail_at(c, LQ_ERR_UNSUPPORTED, e[i].val, NULL, "%s: strategy %s is not supported (tensor or "
                                "attn_head)", what, rp_shown(e[i].val, b, sizeof b));
        } else if (!strcmp(k, "dynamic") || !strcmp(k, "symmetric")) {
            bool on;
            const bool want = !strcmp(k, "symmetric");
            if ((s = rp_get_bool(c, e[i].val, what, &on)) == LQ_OK && on != want)
                s = rp_fail_at(c, LQ_ERR_UNSUPPORTED, e[i].val, NULL, "%s: %s %s is not supported (static symmetric "
                               "scales)", what, k, on ? "true" : "false");
        } else if (!strcmp(k, "group_size") || !strcmp(k, "block_structure") || !strcmp(k, "actorder")) {
            if (!ry_is_null(e[i].val))
                s = rp_fail_at(c, LQ_ERR_UNSUPPORTED, e[i].val, NULL, "%s: %s is not supported for a KV cache", what, k);
        } else if (strcmp(k, "observer") && strcmp(k, "observer_kwargs") && strcmp(k, "scale_dtype") &&
                   strcmp(k, "zp_dtype")) {
            s = rp_fail_at(c, LQ_ERR_FORMAT, e[i].key, NULL, "%s: unknown key '%s'", what, k);
        }
    }
    free(e);
    return s;
}

/* candidates: the target_bpw plan's schemes, as quant-ptq --scheme lists them ("W4A16:32"). */
static lq_status parse_candidates(const pctx *c, yaml_node_t *v, const char *what, lq_recipe_modifier *m) {
    char **l = NULL;
    int n = 0;
    LQ_TRY(rp_get_list(c, v, what, false, &l, &n));
    lq_status s = LQ_OK;
    if (n == 0 || n > LQ_PTQ_AUTOMIX_MAX_CAND)
        s = rp_fail_at(c, LQ_ERR_INVALID_ARG, v, NULL, "%s: 1 to %d schemes, got %d", what, LQ_PTQ_AUTOMIX_MAX_CAND, n);
    for (int i = 0; s == LQ_OK && i < n; i++)
        if (!lq_ptq_candidate_parse(l[i], &m->cand[i]))
            s = rp_fail_at(c, LQ_ERR_INVALID_ARG, v, NULL, "%s: unknown scheme '%s' (W8A16, W4A16[:G], "
                           "W4A16_ASYM[:G], W3A16[:G], FP8, W8A8; G = group size)", what, l[i]);
    if (s == LQ_OK) m->n_cand = n;
    rp_free_list(l, n);
    return s;
}

/* One argument's value into m; `seen` holds the arguments read before it. */
static lq_status parse_arg(const pctx *c, arg_id a, const entry *e, unsigned seen, const char *name,
                           lq_recipe_modifier *m) {
    const yaml_node_t *v = e->val;
    char what[96];
    snprintf(what, sizeof what, "argument '%s' of %s", g_arg_names[a], name);
    bool unused;
    lq_status s = LQ_OK;
    switch ((arg_id)a) {
    case A_TARGETS:
        if ((seen & B(A_CONFIG_GROUPS)) && m->n_targets > 0)
            s = rp_fail_at(c, LQ_ERR_FORMAT, e->key, NULL, "%s: targets given both in config_groups and here", name);
        else s = rp_get_list(c, e->val, what, true, &m->targets, &m->n_targets);
        break;
    case A_CONFIG_GROUPS: s = rp_parse_config_groups(c, e->val, name, (seen & B(A_TARGETS)) != 0, m); break;
    case A_IGNORE: s = rp_get_list(c, e->val, what, true, &m->ignore, &m->n_ignore); break;
    case A_SCHEME: s = parse_scheme(c, v, name, m); break;
    case A_GROUP_SIZE: s = rp_get_int(c, v, what, 1, 1 << 20, &m->group_size); break;
    case A_CLIP_SEARCH: s = rp_get_bool(c, v, what, &m->clip_search); break;
    case A_GROUP_FALLBACK: {
        static const char *const fb[] = {"refuse", "channel", "ignore"};
        const char *t = ry_scalar(v);
        int k = -1;
        for (int q = 0; t && q < 3; q++)
            if (!strcmp(t, fb[q])) k = q;
        char b[80];
        if (k < 0)
            s = rp_fail_at(c, LQ_ERR_FORMAT, v, t ? lq_suggest(t, fb, 3) : NULL,
                        "%s must be refuse, channel or ignore, got %s", what, rp_shown(v, b, sizeof b));
        else m->group_fallback = (lq_recipe_group_fallback)k;
        break;
    }
    case A_BLOCK_SIZE: s = rp_get_int(c, v, what, 1, 1 << 20, &m->block_size); break;
    case A_DAMPENING: s = rp_get_number(c, v, what, false, 0, 1, false, &m->dampening_frac); break;
    case A_ACTORDER:
        if (ry_is_null(v) || (ry_scalar(v) && !strcasecmp(ry_scalar(v), "false"))) {
            m->actorder[0] = 0;
        } else if ((s = rp_get_str(c, v, what, m->actorder, sizeof m->actorder)) == LQ_OK &&
                   strcmp(m->actorder, "static") && strcmp(m->actorder, "group") &&
                   strcmp(m->actorder, "weight")) {
            static const char *const orders[] = {"static", "group", "weight"};
            char b[80];
            s = rp_fail_at(c, LQ_ERR_FORMAT, v, lq_suggest(m->actorder, orders, 3),
                        "%s must be static, group, weight or false, got %s", what, rp_shown(v, b, sizeof b));
        }
        break;
    case A_SEQUENTIAL_UPDATE:
    case A_OFFLOAD_HESSIANS: s = rp_get_bool(c, v, what, &unused); break; /* CPU: no meaning */
    case A_DUO_SCALING: /* true, false or "both" (llm-compressor's Literal) */
        if (ry_scalar(v) && !strcmp(ry_scalar(v), "both")) m->duo_scaling = 2;
        else if ((s = rp_get_bool(c, v, what, &unused)) == LQ_OK) m->duo_scaling = unused ? 0 : 1;
        break;
    case A_N_GRID: s = rp_get_int(c, v, what, 2, 128, &m->n_grid); break;
    case A_TARGET_BPW: s = rp_get_number(c, v, what, false, 0, 64, true, &m->target_bpw); break;
    case A_CANDIDATES: s = parse_candidates(c, e->val, what, m); break;
    case A_OFFLOAD_DEVICE: break; /* where torch keeps cached activations: no meaning here */
    case A_KV_CACHE_SCHEME: s = parse_kv_scheme(c, e->val, what, m); break;
    case A_SMOOTHING: s = rp_get_number(c, v, what, false, 0, 1, true, &m->smoothing_strength); break;
    case A_SPARSITY:
    case A_FINAL_SPARSITY:
        if (a == A_FINAL_SPARSITY && (seen & B(A_SPARSITY))) {
            s = rp_fail_at(c, LQ_ERR_FORMAT, e->key, NULL, "%s: give 'sparsity' or 'final_sparsity', not both", name);
            break;
        }
        if (a == A_SPARSITY && (seen & B(A_FINAL_SPARSITY))) {
            s = rp_fail_at(c, LQ_ERR_FORMAT, e->key, NULL, "%s: give 'sparsity' or 'final_sparsity', not both", name);
            break;
        }
        s = rp_get_number(c, v, what, true, 0, 0.99, true, &m->sparsity);
        break;
    case A_MASK_STRUCTURE: s = parse_mask(c, v, what, m); break;
    case A_STRUCTURE: {
        char st[16];
        if ((s = rp_get_str(c, v, what, st, sizeof st)) != LQ_OK) {
            lq_recipe_pos p = ry_pos(v);
            s = lq_fail(LQ_ERR_FORMAT, "%s must be 'ffn' or 'heads' at %s:%d:%d", what, c->path, p.line, p.col);
        } else if (!strcmp(st, "ffn")) {
            m->structure = LQ_STRUCTURE_FFN;
        } else if (!strcmp(st, "heads")) {
            m->structure = LQ_STRUCTURE_HEADS;
        } else {
            static const char *const structs[] = {"ffn", "heads"};
            s = rp_fail_at(c, LQ_ERR_FORMAT, v, lq_suggest(st, structs, 2), "%s must be 'ffn' or 'heads', got '%s'",
                        what, st);
        }
        break;
    }
    case A_COUNT: break;
    }
    return s;
}

/* Requirements and combinations inside one modifier, once all its arguments are read. */
static lq_status check_modifier(const pctx *c, const entry *me, unsigned seen,
                                const yaml_node_t *const arg_node[A_COUNT], lq_recipe_modifier *m) {
    const char *name = me->name;
    if (seen & B(A_CONFIG_GROUPS)) { /* the group named scheme, group size and maybe targets */
        if (seen & (B(A_SCHEME) | B(A_GROUP_SIZE)))
            return rp_fail_at(c, LQ_ERR_FORMAT, arg_node[A_CONFIG_GROUPS], NULL,
                              "%s: give 'config_groups' or 'scheme' / 'group_size', not both", name);
        seen |= B(A_SCHEME) | (lq_ct_grouped(m->scheme) ? B(A_GROUP_SIZE) : 0) | (m->n_targets > 0 ? B(A_TARGETS) : 0);
    }
    if ((seen & B(A_CANDIDATES)) && !(seen & B(A_TARGET_BPW)))
        return rp_fail_at(c, LQ_ERR_FORMAT, arg_node[A_CANDIDATES], NULL, "%s: 'candidates' needs 'target_bpw'", name);
    if (seen & B(A_TARGET_BPW)) { /* the plan picks every scheme and its group size */
        const arg_id clash[] = {A_SCHEME, A_GROUP_SIZE, A_CONFIG_GROUPS, A_CLIP_SEARCH, A_GROUP_FALLBACK};
        for (size_t i = 0; i < sizeof clash / sizeof clash[0]; i++)
            if (seen & B(clash[i]))
                return rp_fail_at(c, LQ_ERR_FORMAT, arg_node[clash[i]], NULL,
                                  "%s: '%s' does not go with 'target_bpw' (the plan picks each layer's scheme "
                                  "among 'candidates')", name, g_arg_names[clash[i]]);
        if (m->n_cand == 0) m->n_cand = lq_ptq_automix_defaults(m->cand, LQ_PTQ_AUTOMIX_MAX_CAND);
        m->scheme = m->cand[0].fmt;
        m->asym = m->cand[0].asym;
        m->group_size = m->cand[0].group_size;
        seen |= B(A_SCHEME) | (lq_ct_grouped(m->scheme) ? B(A_GROUP_SIZE) : 0);
    }
    if (rp_is_quant(m->kind)) {
        /* AWQModifier alone is the transform (llm-compressor >= 0.9): a QuantizationModifier follows */
        if (!(seen & B(A_SCHEME)) && m->kind != LQ_MOD_AWQ)
            return rp_fail_at(c, LQ_ERR_FORMAT, me->key, NULL, "%s needs argument 'scheme'", name);
        bool grouped = lq_ct_grouped(m->scheme);
        if ((seen & B(A_GROUP_SIZE)) && !grouped)
            return rp_fail_at(c, LQ_ERR_INVALID_ARG, arg_node[A_GROUP_SIZE], NULL,
                           "group_size applies to the W4A16 and W3A16 schemes only (%s is per channel)",
                           lq_preset_name(m->scheme, m->asym));
        if (grouped && !(seen & B(A_GROUP_SIZE))) m->group_size = lq_preset_find(lq_preset_name(m->scheme, m->asym))->group_size;
        if ((seen & B(A_GROUP_FALLBACK)) && !grouped)
            return rp_fail_at(c, LQ_ERR_INVALID_ARG, arg_node[A_GROUP_FALLBACK], NULL,
                           "group_fallback applies to the W4A16 and W3A16 schemes only (%s is per channel)",
                           lq_preset_name(m->scheme, m->asym));
    }
    if (rp_is_prune(m->kind)) {
        if (m->mask == LQ_MASK_NM) {
            double implied = (double)m->mask_n / m->mask_m;
            const yaml_node_t *sp = arg_node[A_SPARSITY] ? arg_node[A_SPARSITY] : arg_node[A_FINAL_SPARSITY];
            if (sp && fabs(m->sparsity - implied) > 1e-9)
                return rp_fail_at(c, LQ_ERR_INVALID_ARG, sp, NULL,
                               "impossible combination: sparsity %g with mask_structure '%d:%d' (which prunes %g)",
                               m->sparsity, m->mask_n, m->mask_m, implied);
            m->sparsity = implied;
        } else if (m->sparsity < 0) {
            return rp_fail_at(c, LQ_ERR_FORMAT, me->key, NULL, "%s needs argument 'sparsity' (or an N:M mask_structure)", name);
        }
    }
    if (m->kind == LQ_MOD_STRUCTURED_PRUNING) {
        if (!(seen & B(A_STRUCTURE)))
            return rp_fail_at(c, LQ_ERR_FORMAT, me->key, NULL, "%s needs argument 'structure' (ffn or heads)", name);
        if (m->sparsity < 0)
            return rp_fail_at(c, LQ_ERR_FORMAT, me->key, NULL, "%s needs argument 'sparsity'", name);
    }
    if (!(seen & B(A_TARGETS)) && (g_allowed[m->kind] & B(A_TARGETS))) {
        m->targets = calloc(2, sizeof *m->targets);
        if (!m->targets || !(m->targets[0] = strdup("Linear")))
            return lq_fail(LQ_ERR_NOMEM, "out of memory reading %s", c->path);
        m->n_targets = 1;
    }
    if ((seen & B(A_TARGETS)) && m->n_targets == 0)
        return rp_fail_at(c, LQ_ERR_INVALID_ARG, arg_node[A_TARGETS], NULL, "argument 'targets' of %s is empty", name);
    return LQ_OK;
}

lq_status rp_parse_modifier(const pctx *c, const entry *me, lq_recipe_modifier *m) {
    const char *name = me->name;
    lq_modifier_kind kind = LQ_MOD_COUNT;
    LQ_TRY(find_kind(c, me, &kind));
    m->kind = kind;
    m->pos = ry_pos(me->key);
    m->dampening_frac = 0.01;
    m->block_size = 128;
    m->smoothing_strength = 0.5;
    m->n_grid = 20;
    m->sparsity = -1;
    if (kind == LQ_MOD_GPTQ) snprintf(m->actorder, sizeof m->actorder, "static"); /* llm-compressor 0.14's default */

    entry *e = NULL;
    int n = 0;
    if (!ry_is_null(me->val)) {
        char what[96];
        snprintf(what, sizeof what, "the arguments of %s", name);
        LQ_TRY(rp_map_entries(c, me->val, what, &e, &n));
    }
    lq_status s = LQ_OK;
    unsigned seen = 0;
    const yaml_node_t *arg_node[A_COUNT] = {0};
    for (int i = 0; s == LQ_OK && i < n; i++) {
        arg_id a = A_COUNT;
        if ((s = find_arg(c, &e[i], kind, name, &a)) != LQ_OK) break;
        if ((s = ry_visit(c->d, e[i].val)) != LQ_OK) break;
        if ((s = parse_arg(c, a, &e[i], seen, name, m)) != LQ_OK) break;
        seen |= B(a);
        arg_node[a] = e[i].val;
    }
    free(e);
    if (s != LQ_OK) return s;
    return check_modifier(c, me, seen, arg_node, m);
}
