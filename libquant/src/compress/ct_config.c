/* ct_config.c - the compressed-tensors "quantization_config" block: write and parse.
 *
 * Field names and values follow compressed-tensors 0.20: QuantizationConfig
 * (quantization/quant_config.py: config_groups, quant_method, kv_cache_scheme, format,
 * quantization_status, global_compression_ratio, ignore), QuantizationScheme (quant_scheme.py:
 * targets, weights, input_activations, output_activations, format; extra keys forbidden) and
 * QuantizationArgs (quant_args.py: num_bits, type, symmetric, group_size, strategy, dynamic,
 * actorder, observer; extra keys forbidden). The presets we mirror: W4A16 and W3A16 (_int_wnam(4)
 * and _int_wnam(3): int, group strategy, symmetric, static), INT8_W8A8 (weights int8 channel; input activations int8 token,
 * dynamic), FP8_DYNAMIC's weights (float8 channel) without activation quantization (our FP8 is
 * weight-only, which vLLM runs as its W8A16-FP8 scheme). W8A16 is written per channel.
 */
#include "ct_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libquant/lq_targets.h"

/* ---- writing ----------------------------------------------------------------------------------- */

static json_t *weight_args(const lq_ct_group_spec *g) {
    const lq_ct_storage *ct = lq_ct_storage_of(g->scheme);
    bool is_float = ct->float_type;
    int bits = ct->bits;
    bool group = ct->grouped && g->group_size > 0;
    /* compressed-tensors accepts an actorder with the group strategies only (quant_args.py) */
    json_t *actorder = group && g->actorder ? json_string(g->actorder) : json_null();
    return json_pack("{s:i, s:s, s:b, s:o, s:s, s:b, s:o, s:s}", "num_bits", bits, "type",
                     is_float ? "float" : "int", "symmetric", !g->asym, "group_size",
                     group ? json_integer(g->group_size) : json_null(), "strategy",
                     group ? "group" : "channel", "dynamic", 0, "actorder", actorder, "observer", "minmax");
}

static json_t *input_args(const lq_ct_group_spec *g) {
    if (!lq_ct_storage_of(g->scheme)->dynamic_token_act) return json_null();
    /* INT8_W8A8: per-token scales computed at run time, so no observer and no stored scale. */
    return json_pack("{s:i, s:s, s:b, s:n, s:s, s:b, s:n, s:n}", "num_bits", 8, "type", "int",
                     "symmetric", 1, "group_size", "strategy", "token", "dynamic", 1, "actorder",
                     "observer");
}

json_t *lq_ct_config_build(const lq_ct_group_spec *groups, int n_groups, const char **ignore,
                           int64_t n_ignore) {
    json_t *cfg = json_object(), *cg = json_object(), *ign = json_array();
    if (!cfg || !cg || !ign) goto fail;
    const char *global_format = NULL;
    for (int i = 0; i < n_groups; i++) {
        const lq_ct_group_spec *g = &groups[i];
        const char *fmt = lq_ct_format_name(g->scheme);
        if (!global_format) global_format = fmt;
        else if (strcmp(global_format, fmt) != 0) global_format = "mixed-precision";
        json_t *targets = json_array();
        if (!targets) goto fail;
        if (g->all_linear) json_array_append_new(targets, json_string("Linear"));
        for (int64_t t = 0; !g->all_linear && t < g->n_targets; t++)
            json_array_append_new(targets, json_string(g->targets[t]));
        json_t *scheme = json_pack("{s:o, s:o, s:o, s:n, s:s}", "targets", targets, "weights",
                                   weight_args(g), "input_activations", input_args(g),
                                   "output_activations", "format", fmt);
        char name[32];
        snprintf(name, sizeof name, "group_%d", i);
        if (!scheme || json_object_set_new(cg, name, scheme) != 0) goto fail;
    }
    for (int64_t i = 0; i < n_ignore; i++)
        if (json_array_append_new(ign, json_string(ignore[i])) != 0) goto fail;
    if (json_object_set_new(cfg, "config_groups", cg) != 0) {
        cg = NULL;
        goto fail;
    }
    cg = NULL;
    if (json_object_set_new(cfg, "ignore", ign) != 0) {
        ign = NULL;
        goto fail;
    }
    ign = NULL;
    json_object_set_new(cfg, "format", json_string(global_format ? global_format : "dense"));
    json_object_set_new(cfg, "global_compression_ratio", json_null());
    json_object_set_new(cfg, "kv_cache_scheme", json_null());
    json_object_set_new(cfg, "quant_method", json_string("compressed-tensors"));
    json_object_set_new(cfg, "quantization_status", json_string("compressed"));
    /* The compressed-tensors release whose layout this follows (informational; loaders ignore
     * unknown keys). */
    json_object_set_new(cfg, "version", json_string("0.20.0"));
    return cfg;
fail:
    json_decref(cg);
    json_decref(ign);
    json_decref(cfg);
    return NULL;
}

/* ---- parsing ----------------------------------------------------------------------------------- */

/* What the reader does with each key llm-compressor 0.14 / compressed-tensors 0.19 writes: keys
 * that do not change the math are accepted whatever their value (observers, dtypes of the stored
 * side tensors, which the binder reads from the tensors themselves); the others are checked below
 * and refused, naming the key, when the engine would compute something else. A key no release
 * writes is refused by name too: it may change the math, and we cannot tell. */
static const char *const g_args_keys[] = {
    "num_bits", "type", "symmetric", "group_size", "strategy", "dynamic", "actorder",
    "block_structure", "observer", "observer_kwargs", "scale_dtype", "zp_dtype",
};
static const char *const g_scheme_keys[] = {
    "targets", "weights", "input_activations", "output_activations", "format",
};
static const char *const g_config_keys[] = {
    "quant_method", "format", "quantization_status", "global_compression_ratio", "ignore",
    "config_groups", "kv_cache_scheme", "sparsity_config", "transform_config", "version",
    "run_compressed",
};

static const char *str_or(json_t *o, const char *key, const char *dflt) {
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : dflt;
}

static bool is_empty(json_t *v) { return !v || json_is_null(v) || (json_is_object(v) && json_object_size(v) == 0); }

static lq_status check_keys(const char *path, const char *where, json_t *o, const char *const *keys,
                            size_t n_keys) {
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val) {
        size_t i = 0;
        while (i < n_keys && strcmp(keys[i], key) != 0) i++;
        if (i == n_keys)
            return lq_fail(LQ_ERR_UNSUPPORTED, "%s: quantization_config%s: key '%s' is not understood "
                           "(it may change the math)", path, where, key);
    }
    return LQ_OK;
}

/* One QuantizationArgs object (weights or input_activations). */
typedef struct ct_args {
    int bits;
    const char *type, *strategy, *actorder;
    bool asym, dynamic;
    int32_t group_size; /* > 0 or 0 */
} ct_args;

static lq_status parse_args(const char *path, const char *group, const char *what, json_t *a, ct_args *o) {
    char where[96];
    snprintf(where, sizeof where, " group '%s' %s", group, what);
    LQ_TRY(check_keys(path, where, a, g_args_keys, sizeof g_args_keys / sizeof g_args_keys[0]));
    json_t *nb = json_object_get(a, "num_bits"), *gs = json_object_get(a, "group_size");
    json_t *sym = json_object_get(a, "symmetric"), *bs = json_object_get(a, "block_structure");
    o->bits = json_is_integer(nb) ? (int)json_integer_value(nb) : 8;
    o->type = str_or(a, "type", "int");
    o->asym = json_is_boolean(sym) && !json_is_true(sym);
    o->dynamic = json_is_true(json_object_get(a, "dynamic"));
    o->group_size = json_is_integer(gs) && json_integer_value(gs) > 0 ? (int32_t)json_integer_value(gs) : 0;
    o->strategy = str_or(a, "strategy", NULL);
    if (!o->strategy) o->strategy = o->group_size > 0 ? "group" : (json_is_integer(gs) ? "channel" : "tensor");
    o->actorder = str_or(a, "actorder", NULL);
    if (!is_empty(bs))
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: quantization_config%s: key 'block_structure' (block "
                       "quantization) is not supported", path, where);
    /* "weight" (alias "static") ordering only changes the order GPTQ visits columns: the stored
     * groups stay contiguous. "group" (alias "dynamic") stores a weight_g_idx permutation. */
    if (o->actorder && strcmp(o->actorder, "weight") != 0 && strcmp(o->actorder, "static") != 0)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: quantization_config%s: key 'actorder' = '%s' (weight_g_idx "
                       "column order) is not supported", path, where, o->actorder);
    return LQ_OK;
}

/* The format whose compressed-tensors storage holds these weight arguments (LQ_WFMT_NONE: none
 * does): its type and num_bits, and a strategy it stores ("channel" always; "group" and zero
 * points when grouped; "tensor" for a float type, whose per-channel scales repeat one value).
 * Input activations pick between formats the weights alone do not tell apart (8-bit int channel
 * weights: W8A8 with them, W8A16 without); the caller refuses activations its format lacks. */
static lq_wfmt storage_for(const char *type, int bits, const char *strategy, bool asym, bool has_in) {
    const bool channel = strcmp(strategy, "channel") == 0, group = strcmp(strategy, "group") == 0;
    const bool is_float = strcmp(type, "float") == 0, tensor = strcmp(strategy, "tensor") == 0;
    if (!is_float && strcmp(type, "int") != 0) return LQ_WFMT_NONE; /* compressed-tensors has no other */
    for (int pass = 0; pass < 2; pass++)
        for (int f = 0; f < LQ_WFMT_COUNT; f++) {
            const lq_ct_storage *ct = lq_ct_storage_of((lq_wfmt)f);
            if (!ct || ct->bits != bits || is_float != (ct->float_type != 0)) continue;
            if (pass == 0 && (ct->dynamic_token_act != 0) != has_in) continue;
            if (ct->grouped ? (channel || group) : (!asym && (channel || (ct->float_type && tensor))))
                return (lq_wfmt)f;
        }
    return LQ_WFMT_NONE;
}

lq_status lq_ct_parse_group(const char *path, const char *name, json_t *sch, lq_ct_group *g) {
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", name);
    char where[64];
    snprintf(where, sizeof where, " group '%s'", name);
    LQ_TRY(check_keys(path, where, sch, g_scheme_keys, sizeof g_scheme_keys / sizeof g_scheme_keys[0]));
    json_t *w = json_object_get(sch, "weights");
    json_t *in = json_object_get(sch, "input_activations");
    json_t *targets = json_object_get(sch, "targets");
    if (!json_is_object(w))
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: quantization_config group '%s': no weight quantization",
                       path, name);
    if (!is_empty(json_object_get(sch, "output_activations")))
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: quantization_config group '%s': key 'output_activations' "
                       "(output quantization) is not supported", path, name);
    g->n_targets = json_is_array(targets) ? (int64_t)json_array_size(targets) : 0;
    ct_args wa, ia = {0};
    LQ_TRY(parse_args(path, name, "weights", w, &wa));
    bool has_in = !is_empty(in);
    if (has_in && !json_is_object(in))
        return lq_fail(LQ_ERR_FORMAT, "%s: quantization_config group '%s': input_activations is not an "
                       "object", path, name);
    if (has_in) LQ_TRY(parse_args(path, name, "input_activations", in, &ia));
    if (wa.dynamic)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: quantization_config group '%s' weights: key 'dynamic' = "
                       "true is not supported", path, name);
    g->asym = wa.asym;
    g->group_size = wa.group_size;
    g->per_tensor = strcmp(wa.strategy, "tensor") == 0;
    g->actorder = wa.actorder != NULL;
    const char *type = wa.type, *strategy = wa.strategy;
    bool channel = strcmp(strategy, "channel") == 0;
    g->scheme = storage_for(type, wa.bits, strategy, g->asym, has_in);
    if (g->scheme == LQ_WFMT_NONE)
        return lq_fail(LQ_ERR_UNSUPPORTED,
                       "%s: quantization_config group '%s': %s %d-bit %s%s weights are not supported",
                       path, name, type, wa.bits, g->asym ? "asymmetric " : "", strategy);
    if (strcmp(strategy, "group") == 0 && g->group_size <= 0)
        return lq_fail(LQ_ERR_FORMAT, "%s: quantization_config group '%s' weights: strategy 'group' "
                       "without a group_size", path, name);
    if (channel) g->group_size = 0;
    /* W8A8 is the one scheme whose activations we quantize: dynamic symmetric int8 per token,
     * exactly what the kernel does. Anything else there changes the product. */
    if (has_in && (!lq_ct_storage_of(g->scheme)->dynamic_token_act || strcmp(ia.type, "int") != 0 || ia.bits != 8 || ia.asym ||
                   !ia.dynamic || strcmp(ia.strategy, "token") != 0))
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: quantization_config group '%s': key 'input_activations' "
                       "(%s %d-bit %s%s activations) is not supported with %s weights", path, name,
                       ia.type, ia.bits, ia.dynamic ? "dynamic " : "static ", ia.strategy,
                       lq_ptq_scheme_name(g->scheme));
    /* The per-group format, when present, must be the storage our binder reads for the scheme. */
    const char *fmt = str_or(sch, "format", NULL);
    if (fmt && !lq_ct_format_matches(g->scheme, fmt))
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: quantization_config group '%s': key 'format' = '%s' is "
                       "not a storage of %s weights", path, name, fmt, lq_ptq_scheme_name(g->scheme));
    return LQ_OK;
}

/* kv_cache_scheme: QuantizationArgs of the K / V states. The engine's compact caches hold 8-bit
 * symmetric codes, int8 or E4M3, with static scales per tensor or per kv head, or per token. */
static lq_status parse_kv_scheme(const char *path, json_t *kv, lq_ct_kv_scheme *out) {
    memset(out, 0, sizeof *out);
    if (is_empty(kv)) return LQ_OK;
    ct_args a;
    LQ_TRY(parse_args(path, "kv_cache_scheme", "", kv, &a));
    if (a.bits != 8 || (strcmp(a.type, "float") != 0 && strcmp(a.type, "int") != 0))
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: quantization_config: kv_cache_scheme: %d-bit %s is not supported "
                       "(8-bit int or float)", path, a.bits, a.type);
    if (a.asym)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: quantization_config: kv_cache_scheme: key 'symmetric' = false "
                       "(zero points) is not supported", path);
    const bool head = strcmp(a.strategy, "attn_head") == 0;
    if (!a.dynamic && strcmp(a.strategy, "tensor") != 0 && !head)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: quantization_config: kv_cache_scheme: key 'strategy' = '%s' is "
                       "not supported (tensor or attn_head)", path, a.strategy);
    *out = (lq_ct_kv_scheme){.present = true, .is_float = strcmp(a.type, "float") == 0, .dynamic = a.dynamic,
                             .per_head = head};
    return LQ_OK;
}

/* Checks of the top-level keys that change what the checkpoint holds or computes. */
static lq_status check_top(const char *path, json_t *qc) {
    LQ_TRY(check_keys(path, "", qc, g_config_keys, sizeof g_config_keys / sizeof g_config_keys[0]));
    if (!is_empty(json_object_get(qc, "transform_config")))
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: quantization_config: key 'transform_config' (rotations "
                       "applied to weights and activations) is not supported", path);
    const char *st = str_or(qc, "quantization_status", "compressed");
    if (strcmp(st, "compressed") != 0)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: quantization_config: key 'quantization_status' = '%s': only "
                       "'compressed' checkpoints are supported", path, st);
    /* sparsity_config is read (and removed) by the checkpoint loader (sparse_bitmask_load.c). */
    return LQ_OK;
}

/* Parse into out; *root_out (when not NULL) receives the JSON document, for the plan. */
static lq_status parse_config(const char *config_json, const char *path, lq_ct_config *out, json_t **root_out) {
    memset(out, 0, sizeof *out);
    if (!path) path = "config.json";
    if (!config_json) return lq_fail(LQ_ERR_NOT_FOUND, "%s: no config.json", path);
    json_error_t err;
    json_t *root = json_loads(config_json, 0, &err);
    if (!root) return lq_fail(LQ_ERR_FORMAT, "%s:%d: %s", path, err.line, err.text);
    lq_status s = LQ_OK;
    json_t *qc = json_object_get(root, "quantization_config");
    if (!qc || json_is_null(qc)) {
        s = lq_fail(LQ_ERR_NOT_FOUND, "%s: no quantization_config", path);
        goto done;
    }
    const char *method = str_or(qc, "quant_method", "");
    if (!json_is_object(qc) || strcmp(method, "compressed-tensors") != 0) {
        s = lq_fail(LQ_ERR_UNSUPPORTED, "%s: quantization_config: quant_method '%s' is not "
                    "compressed-tensors", path, method);
        goto done;
    }
    if ((s = check_top(path, qc)) != LQ_OK) goto done;
    if ((s = parse_kv_scheme(path, json_object_get(qc, "kv_cache_scheme"), &out->kv)) != LQ_OK) goto done;
    snprintf(out->format, sizeof out->format, "%s", str_or(qc, "format", ""));
    snprintf(out->status, sizeof out->status, "%s", str_or(qc, "quantization_status", ""));
    json_t *ign = json_object_get(qc, "ignore");
    out->n_ignore = json_is_array(ign) ? (int64_t)json_array_size(ign) : 0;
    json_t *groups = json_object_get(qc, "config_groups");
    if (out->kv.present && (is_empty(groups) || (json_is_object(groups) && json_object_size(groups) == 0)))
        goto done; /* the KV cache alone is quantized */
    if (!json_is_object(groups) || json_object_size(groups) == 0) {
        s = lq_fail(LQ_ERR_FORMAT, "%s: quantization_config: no config_groups", path);
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(groups, key, val) {
        if (out->n_groups == LQ_CT_MAX_GROUPS) {
            s = lq_fail(LQ_ERR_UNSUPPORTED, "%s: quantization_config: more than %d config groups", path,
                        LQ_CT_MAX_GROUPS);
            goto done;
        }
        if (!json_is_object(val)) {
            s = lq_fail(LQ_ERR_UNSUPPORTED, "%s: quantization_config group '%s': preset names are not "
                        "supported", path, key);
            goto done;
        }
        s = lq_ct_parse_group(path, key, val, &out->groups[out->n_groups]);
        if (s != LQ_OK) goto done;
        out->n_groups++;
    }
done:
    if (s == LQ_OK && root_out) *root_out = root;
    else json_decref(root);
    return s;
}

lq_status lq_ct_config_parse(const char *config_json, const char *path, lq_ct_config *out) {
    return parse_config(config_json, path, out, NULL);
}

/* ---- the plan: which group quantizes each module ------------------------------------------------ */

struct lq_ct_plan {
    lq_ct_config cfg;
    lq_target **targets[LQ_CT_MAX_GROUPS]; /* cfg.groups[g].n_targets compiled patterns */
    lq_target **ignore;
    int64_t n_ignore;
};

void lq_ct_plan_free(lq_ct_plan *p) {
    if (!p) return;
    for (int g = 0; g < p->cfg.n_groups; g++) {
        for (int64_t i = 0; p->targets[g] && i < p->cfg.groups[g].n_targets; i++) lq_target_free(p->targets[g][i]);
        free(p->targets[g]);
    }
    for (int64_t i = 0; p->ignore && i < p->n_ignore; i++) lq_target_free(p->ignore[i]);
    free(p->ignore);
    free(p);
}

/* Compile a JSON array of pattern strings (n entries) into *out. */
static lq_status compile_list(const char *path, const char *what, json_t *arr, int64_t n, lq_target ***out) {
    *out = calloc((size_t)n + 1, sizeof **out);
    if (!*out) return lq_fail(LQ_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, (size_t)i);
        if (!json_is_string(v))
            return lq_fail(LQ_ERR_FORMAT, "%s: quantization_config %s: entry %lld is not a string", path, what,
                           (long long)i);
        if (lq_target_compile(json_string_value(v), &(*out)[i]) != LQ_OK)
            return lq_fail(LQ_ERR_FORMAT, "%s: quantization_config %s: %s", path, what, lq_last_error());
    }
    return LQ_OK;
}

lq_status lq_ct_plan_load(const char *config_json, const char *path, lq_ct_plan **out) {
    *out = NULL;
    lq_ct_plan *p = calloc(1, sizeof *p);
    if (!p) return lq_fail(LQ_ERR_NOMEM, "out of memory");
    json_t *root = NULL;
    lq_status s = parse_config(config_json, path, &p->cfg, &root);
    if (s == LQ_ERR_NOT_FOUND) {
        free(p);
        return LQ_OK; /* an unquantized model */
    }
    json_t *qc = json_object_get(root, "quantization_config");
    json_t *groups = json_object_get(qc, "config_groups"), *ign = json_object_get(qc, "ignore");
    for (int g = 0; s == LQ_OK && g < p->cfg.n_groups; g++) {
        char what[64];
        snprintf(what, sizeof what, "group '%s' targets", p->cfg.groups[g].name);
        json_t *t = json_object_get(json_object_get(groups, p->cfg.groups[g].name), "targets");
        s = compile_list(path, what, t, p->cfg.groups[g].n_targets, &p->targets[g]);
    }
    p->n_ignore = p->cfg.n_ignore;
    if (s == LQ_OK) s = compile_list(path, "ignore", ign, p->n_ignore, &p->ignore);
    json_decref(root);
    if (s != LQ_OK) {
        lq_ct_plan_free(p);
        return s;
    }
    *out = p;
    return LQ_OK;
}

lq_status lq_ct_plan_lookup(const lq_ct_plan *p, const char *path, const char *module, lq_module_class cls,
                            const lq_ct_group **out) {
    *out = NULL;
    for (int64_t i = 0; i < p->n_ignore; i++)
        if (lq_target_match(p->ignore[i], module, cls)) return LQ_OK;
    for (int g = 0; g < p->cfg.n_groups; g++)
        for (int64_t i = 0; i < p->cfg.groups[g].n_targets; i++) {
            if (!lq_target_match(p->targets[g][i], module, cls)) continue;
            if (*out && *out != &p->cfg.groups[g])
                return lq_fail(LQ_ERR_UNSUPPORTED, "%s: quantization_config: module '%s' is targeted by "
                               "groups '%s' and '%s'", path, module, (*out)->name, p->cfg.groups[g].name);
            *out = &p->cfg.groups[g];
        }
    return LQ_OK;
}
