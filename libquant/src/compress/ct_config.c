/* ct_config.c - the compressed-tensors "quantization_config" block: write and parse.
 *
 * Field names and values follow compressed-tensors 0.20: QuantizationConfig
 * (quantization/quant_config.py: config_groups, quant_method, kv_cache_scheme, format,
 * quantization_status, global_compression_ratio, ignore), QuantizationScheme (quant_scheme.py:
 * targets, weights, input_activations, output_activations, format; extra keys forbidden) and
 * QuantizationArgs (quant_args.py: num_bits, type, symmetric, group_size, strategy, dynamic,
 * actorder, observer; extra keys forbidden). The presets we mirror: W4A16 (_int_wnam: int, group
 * strategy, symmetric, static), INT8_W8A8 (weights int8 channel; input activations int8 token,
 * dynamic), FP8_DYNAMIC's weights (float8 channel) without activation quantization (our FP8 is
 * weight-only, which vLLM runs as its W8A16-FP8 scheme). W8A16 is written per channel.
 */
#include "ct_internal.h"

#include <stdio.h>
#include <string.h>

/* ---- writing ----------------------------------------------------------------------------------- */

static json_t *weight_args(const lq_ct_group_spec *g) {
    bool is_float = g->scheme == LQ_PTQ_FP8;
    int bits = g->scheme == LQ_PTQ_W4A16 ? 4 : 8;
    bool group = g->scheme == LQ_PTQ_W4A16 && g->group_size > 0;
    return json_pack("{s:i, s:s, s:b, s:o, s:s, s:b, s:n, s:s}", "num_bits", bits, "type",
                     is_float ? "float" : "int", "symmetric", !g->asym, "group_size",
                     group ? json_integer(g->group_size) : json_null(), "strategy",
                     group ? "group" : "channel", "dynamic", 0, "actorder", "observer", "minmax");
}

static json_t *input_args(const lq_ct_group_spec *g) {
    if (g->scheme != LQ_PTQ_W8A8) return json_null();
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
        const char *fmt = lq_ptq_scheme_ct_format(g->scheme);
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

static const char *str_or(json_t *o, const char *key, const char *dflt) {
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : dflt;
}

static lq_status parse_group(const char *path, const char *name, json_t *sch, lq_ct_group *g) {
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", name);
    json_t *w = json_object_get(sch, "weights");
    json_t *in = json_object_get(sch, "input_activations");
    json_t *targets = json_object_get(sch, "targets");
    if (!json_is_object(w))
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: quantization_config group '%s': no weight quantization",
                       path, name);
    g->n_targets = json_is_array(targets) ? (int64_t)json_array_size(targets) : 0;
    json_t *nb = json_object_get(w, "num_bits");
    int bits = json_is_integer(nb) ? (int)json_integer_value(nb) : 8;
    const char *type = str_or(w, "type", "int");
    const char *strategy = str_or(w, "strategy", NULL);
    json_t *gs = json_object_get(w, "group_size");
    json_t *sym = json_object_get(w, "symmetric");
    g->asym = json_is_boolean(sym) && !json_is_true(sym);
    g->group_size = json_is_integer(gs) && json_integer_value(gs) > 0 ? (int32_t)json_integer_value(gs) : 0;
    if (!strategy) strategy = g->group_size > 0 ? "group" : (json_is_integer(gs) ? "channel" : "tensor");
    g->per_tensor = strcmp(strategy, "tensor") == 0;
    bool has_in = json_is_object(in);
    if (strcmp(type, "float") == 0 && bits == 8 && !g->asym &&
        (g->per_tensor || strcmp(strategy, "channel") == 0))
        g->scheme = LQ_PTQ_FP8;
    else if (strcmp(type, "int") == 0 && bits == 8 && !g->asym && strcmp(strategy, "channel") == 0)
        g->scheme = has_in ? LQ_PTQ_W8A8 : LQ_PTQ_W8A16;
    else if (strcmp(type, "int") == 0 && bits == 4 && !has_in &&
             (strcmp(strategy, "group") == 0 || strcmp(strategy, "channel") == 0))
        g->scheme = LQ_PTQ_W4A16;
    else
        return lq_fail(LQ_ERR_UNSUPPORTED,
                       "%s: quantization_config group '%s': %s %d-bit %s weights%s are not supported",
                       path, name, type, bits, strategy, has_in ? " with activation quantization" : "");
    if (has_in && g->scheme != LQ_PTQ_W8A8 && g->scheme != LQ_PTQ_FP8)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: quantization_config group '%s': activation quantization "
                       "is not supported with this weight scheme", path, name);
    return LQ_OK;
}

lq_status lq_ct_config_parse(const char *config_json, const char *path, lq_ct_config *out) {
    memset(out, 0, sizeof *out);
    if (!path) path = "config.json";
    if (!config_json) return lq_fail(LQ_ERR_NOT_FOUND, "%s: no config.json", path);
    json_error_t err;
    json_t *root = json_loads(config_json, 0, &err);
    if (!root) return lq_fail(LQ_ERR_FORMAT, "%s:%d: %s", path, err.line, err.text);
    lq_status s = LQ_OK;
    json_t *qc = json_object_get(root, "quantization_config");
    if (!qc) {
        s = lq_fail(LQ_ERR_NOT_FOUND, "%s: no quantization_config", path);
        goto done;
    }
    const char *method = str_or(qc, "quant_method", "");
    if (!json_is_object(qc) || strcmp(method, "compressed-tensors") != 0) {
        s = lq_fail(LQ_ERR_UNSUPPORTED, "%s: quantization_config: quant_method '%s' is not "
                    "compressed-tensors", path, method);
        goto done;
    }
    snprintf(out->format, sizeof out->format, "%s", str_or(qc, "format", ""));
    snprintf(out->status, sizeof out->status, "%s", str_or(qc, "quantization_status", ""));
    json_t *ign = json_object_get(qc, "ignore");
    out->n_ignore = json_is_array(ign) ? (int64_t)json_array_size(ign) : 0;
    json_t *groups = json_object_get(qc, "config_groups");
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
        s = parse_group(path, key, val, &out->groups[out->n_groups]);
        if (s != LQ_OK) goto done;
        out->n_groups++;
    }
done:
    json_decref(root);
    return s;
}
