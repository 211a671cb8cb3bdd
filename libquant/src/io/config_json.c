/* config_json.c - Hugging Face config.json <-> lq_config.
 *
 * Defaults follow transformers' LlamaConfig: num_key_value_heads = num_attention_heads,
 * head_dim = hidden_size / num_attention_heads, rope_theta 10000, rms_norm_eps 1e-6,
 * max_position_embeddings 2048, tie_word_embeddings false. Only rope_scaling of type "llama3" is
 * understood; any other scaling would silently change the model, so it is refused.
 */
#include "libquant/lq_checkpoint.h"
#include "libquant/lq_file.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Integer field: absent -> *out = dflt (or error if required); must be an integer in
 * [lo, INT_MAX]. Integral reals ("4096.0") are accepted since some exporters write them. */
static lq_status get_int(const json_t *root, const char *key, const char *path, bool required,
                         int dflt, int lo, int *out) {
    const json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (required) return lq_fail(LQ_ERR_FORMAT, "%s: missing required key \"%s\"", path, key);
        *out = dflt;
        return LQ_OK;
    }
    double d;
    if (json_is_integer(v)) d = (double)json_integer_value(v);
    else if (json_is_real(v) && floor(json_real_value(v)) == json_real_value(v)) d = json_real_value(v);
    else return lq_fail(LQ_ERR_FORMAT, "%s: \"%s\" is not an integer", path, key);
    if (d < lo || d > INT_MAX)
        return lq_fail(LQ_ERR_FORMAT, "%s: \"%s\" = %.0f out of range (must be >= %d)", path, key, d, lo);
    *out = (int)d;
    return LQ_OK;
}

static lq_status get_float(const json_t *root, const char *key, const char *path, float dflt,
                           float *out) {
    const json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return LQ_OK;
    }
    if (!json_is_number(v)) return lq_fail(LQ_ERR_FORMAT, "%s: \"%s\" is not a number", path, key);
    double d = json_number_value(v);
    if (!isfinite(d) || !isfinite((float)d))
        return lq_fail(LQ_ERR_FORMAT, "%s: \"%s\" is not a finite float", path, key);
    *out = (float)d;
    return LQ_OK;
}

/* bos/eos ids: an integer, or a list whose first entry is used (Llama 3.1 lists several eos). */
static lq_status get_token_id(const json_t *root, const char *key, const char *path, int *out) {
    const json_t *v = json_object_get(root, key);
    if (json_is_array(v)) v = json_array_get(v, 0);
    if (!v || json_is_null(v)) {
        *out = -1;
        return LQ_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT_MAX)
        return lq_fail(LQ_ERR_FORMAT, "%s: \"%s\" is not a token id", path, key);
    *out = (int)json_integer_value(v);
    return LQ_OK;
}

const char *lq_rope_type_name(lq_rope_type t) {
    switch (t) {
    case LQ_ROPE_DEFAULT: return "default";
    case LQ_ROPE_LLAMA3: return "llama3";
    case LQ_ROPE_LINEAR: return "linear";
    }
    return "?";
}

/* One RoPE object: transformers < 5 "rope_scaling" ({rope_type | type, factor, ...}) or
 * transformers 5 "rope_parameters" (the same keys plus rope_theta). `what` names it in errors. */
static lq_status parse_rope_obj(const json_t *rs, const char *what, const char *path, lq_config *cfg) {
    if (!json_is_object(rs)) return lq_fail(LQ_ERR_FORMAT, "%s: \"%s\" is not an object", path, what);
    if (json_object_get(rs, "rope_theta")) LQ_TRY(get_float(rs, "rope_theta", path, 10000.0f, &cfg->rope_theta));
    const json_t *type = json_object_get(rs, "rope_type");
    if (!type) type = json_object_get(rs, "type"); /* older transformers spelling */
    if (!type && json_object_get(rs, "rope_theta")) return LQ_OK; /* rope_parameters, default type */
    if (!json_is_string(type)) return lq_fail(LQ_ERR_FORMAT, "%s: \"%s\" has no rope_type", path, what);
    const char *t = json_string_value(type);
    if (strcmp(t, "default") == 0) return LQ_OK;
    if (strcmp(t, "linear") == 0) {
        cfg->rope_type = LQ_ROPE_LINEAR;
        LQ_TRY(get_float(rs, "factor", path, 0.0f, &cfg->rope_scale_factor));
        if (!(cfg->rope_scale_factor > 0.0f))
            return lq_fail(LQ_ERR_FORMAT, "%s: %s linear needs factor > 0", path, what);
        return LQ_OK;
    }
    if (strcmp(t, "llama3") != 0)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: %s type \"%s\" is not supported (default, linear, llama3)",
                       path, what, t);
    cfg->rope_type = LQ_ROPE_LLAMA3;
    LQ_TRY(get_float(rs, "factor", path, 0.0f, &cfg->rope_scale_factor));
    LQ_TRY(get_float(rs, "low_freq_factor", path, 1.0f, &cfg->rope_low_freq_factor));
    LQ_TRY(get_float(rs, "high_freq_factor", path, 4.0f, &cfg->rope_high_freq_factor));
    LQ_TRY(get_int(rs, "original_max_position_embeddings", path, false, 8192, 1, &cfg->rope_orig_max_pos));
    if (!(cfg->rope_scale_factor > 0.0f) || !(cfg->rope_high_freq_factor > cfg->rope_low_freq_factor))
        return lq_fail(LQ_ERR_FORMAT, "%s: %s llama3 needs factor > 0 and high_freq_factor > low_freq_factor",
                       path, what);
    return LQ_OK;
}

/* The RoPE of sliding-window layers (Gemma 3's rope_parameters.sliding_attention): its own base,
 * no scaling (transformers builds it with the default rope type; others are refused by name). */
static lq_status parse_rope_local(const json_t *local, const char *path, lq_config *cfg) {
    const char *t = json_string_value(json_object_get(local, "rope_type"));
    if (t && strcmp(t, "default") != 0)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: rope_parameters.sliding_attention type \"%s\" is not supported "
                       "(default)", path, t);
    return get_float(local, "rope_theta", path, 10000.0f, &cfg->rope_local_theta);
}

/* RoPE as every transformers version writes it: rope_theta + rope_scaling at the top level
 * (< 5), or rope_parameters (5; for models with local and global layers, an object per layer
 * type, of which the global "full_attention" one is read here). */
static lq_status parse_rope(const json_t *root, const char *path, lq_config *cfg) {
    LQ_TRY(get_float(root, "rope_theta", path, 10000.0f, &cfg->rope_theta));
    LQ_TRY(get_float(root, "rope_local_base_freq", path, 0.0f, &cfg->rope_local_theta));
    const json_t *rp = json_object_get(root, "rope_parameters");
    if (rp && !json_is_null(rp)) {
        const json_t *full = json_is_object(rp) ? json_object_get(rp, "full_attention") : NULL;
        LQ_TRY(parse_rope_obj(json_is_object(full) ? full : rp, "rope_parameters", path, cfg));
        const json_t *local = json_is_object(rp) ? json_object_get(rp, "sliding_attention") : NULL;
        if (json_is_object(local)) LQ_TRY(parse_rope_local(local, path, cfg));
    } else {
        const json_t *rs = json_object_get(root, "rope_scaling");
        if (rs && !json_is_null(rs)) LQ_TRY(parse_rope_obj(rs, "rope_scaling", path, cfg));
    }
    if (!(cfg->rope_theta > 0.0f)) return lq_fail(LQ_ERR_FORMAT, "%s: rope_theta must be > 0", path);
    /* 0: no local base (every layer uses rope_theta) */
    if (cfg->rope_local_theta < 0.0f)
        return lq_fail(LQ_ERR_FORMAT, "%s: the sliding layers' rope_theta (rope_local_base_freq or "
                       "rope_parameters.sliding_attention) must be > 0", path);
    return LQ_OK;
}

/* Sliding-window attention: "sliding_window" (null = none; Qwen2 only with use_sliding_window),
 * the layers it spares from "layer_types" ("full_attention" / "sliding_attention") or else
 * Qwen2's "max_window_layers" (layers below it are full). */
static lq_status parse_sliding_window(const json_t *root, const char *path, lq_config *cfg) {
    const json_t *use = json_object_get(root, "use_sliding_window");
    if (use && json_is_false(use)) return LQ_OK;
    LQ_TRY(get_int(root, "sliding_window", path, false, 0, 0, &cfg->sliding_window));
    if (cfg->sliding_window == 0) return LQ_OK;
    if (cfg->n_layers > LQ_MAX_LAYERS)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: sliding_window with more than %d layers", path, LQ_MAX_LAYERS);
    const json_t *lt = json_object_get(root, "layer_types");
    if (lt && !json_is_null(lt)) {
        if (!json_is_array(lt) || json_array_size(lt) != (size_t)cfg->n_layers)
            return lq_fail(LQ_ERR_FORMAT, "%s: \"layer_types\" is not a list of %d strings", path, cfg->n_layers);
        for (int l = 0; l < cfg->n_layers; l++) {
            const char *t = json_string_value(json_array_get(lt, (size_t)l));
            if (!t || (strcmp(t, "full_attention") && strcmp(t, "sliding_attention")))
                return lq_fail(LQ_ERR_UNSUPPORTED, "%s: layer_types[%d] \"%s\" is not supported "
                               "(full_attention, sliding_attention)", path, l, t ? t : "?");
            cfg->layer_full_attention[l] = strcmp(t, "full_attention") == 0;
        }
        return LQ_OK;
    }
    /* Gemma 3 configs of transformers < 4.53: every pattern-th layer is global */
    int pattern = 0;
    LQ_TRY(get_int(root, "sliding_window_pattern", path, false, 0, 0, &pattern));
    if (pattern > 0) {
        for (int l = 0; l < cfg->n_layers; l++) cfg->layer_full_attention[l] = (l + 1) % pattern == 0;
        return LQ_OK;
    }
    int mwl = 0;
    if (use) LQ_TRY(get_int(root, "max_window_layers", path, false, 0, 0, &mwl));
    for (int l = 0; l < cfg->n_layers && l < mwl; l++) cfg->layer_full_attention[l] = 1;
    return LQ_OK;
}

/* Per-layer sizes of a structurally pruned model: an optional list of n_layers integers, each in
 * [1, top] where top is the uniform key's value (the largest layer). */
static lq_status get_layer_list(const json_t *root, const char *key, const char *path, int n_layers,
                                int top, int *out) {
    const json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return LQ_OK;
    if (!json_is_array(v) || json_array_size(v) != (size_t)n_layers)
        return lq_fail(LQ_ERR_FORMAT, "%s: \"%s\" is not a list of %d integers (num_hidden_layers)", path,
                       key, n_layers);
    if (n_layers > LQ_MAX_LAYERS)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: \"%s\": per-layer sizes for more than %d layers", path,
                       key, LQ_MAX_LAYERS);
    for (int l = 0; l < n_layers; l++) {
        const json_t *e = json_array_get(v, (size_t)l);
        if (!json_is_integer(e) || json_integer_value(e) < 1 || json_integer_value(e) > top)
            return lq_fail(LQ_ERR_FORMAT, "%s: \"%s\"[%d] must be an integer in [1, %d]", path, key, l, top);
        out[l] = (int)json_integer_value(e);
    }
    return LQ_OK;
}

static lq_status parse_layer_sizes(const json_t *root, const char *path, lq_config *cfg) {
    LQ_TRY(get_layer_list(root, "layer_intermediate_sizes", path, cfg->n_layers, cfg->hidden_dim,
                          cfg->layer_hidden_dim));
    LQ_TRY(get_layer_list(root, "layer_num_attention_heads", path, cfg->n_layers, cfg->n_heads,
                          cfg->layer_n_heads));
    LQ_TRY(get_layer_list(root, "layer_num_key_value_heads", path, cfg->n_layers, cfg->n_kv_heads,
                          cfg->layer_n_kv_heads));
    for (int l = 0; l < cfg->n_layers && l < LQ_MAX_LAYERS; l++) {
        int h = lq_config_layer_heads(cfg, l), kv = lq_config_layer_kv_heads(cfg, l);
        if (h % kv != 0)
            return lq_fail(LQ_ERR_FORMAT, "%s: layer %d: %d key/value heads do not divide %d attention heads",
                           path, l, kv, h);
    }
    return LQ_OK;
}

bool lq_config_has_layer_sizes(const lq_config *c) {
    for (int l = 0; l < c->n_layers && l < LQ_MAX_LAYERS; l++)
        if (lq_config_layer_hidden(c, l) != c->hidden_dim || lq_config_layer_heads(c, l) != c->n_heads ||
            lq_config_layer_kv_heads(c, l) != c->n_kv_heads)
            return true;
    return false;
}

/* Sparse MoE keys (lq_config's n_experts ...): Mixtral's num_local_experts, Qwen2-MoE's
 * num_experts with moe_intermediate_size, shared_expert_intermediate_size, norm_topk_prob,
 * decoder_sparse_step and mlp_only_layers (transformers' Qwen2MoeDecoderLayer: layer l is sparse
 * iff l is not in mlp_only_layers and (l + 1) % decoder_sparse_step == 0). */
static lq_status parse_moe(const json_t *root, const char *path, lq_config *cfg) {
    const char *key = json_object_get(root, "num_local_experts") ? "num_local_experts" : "num_experts";
    LQ_TRY(get_int(root, key, path, false, 0, 0, &cfg->n_experts));
    if (cfg->n_experts == 0) return LQ_OK;
    LQ_TRY(get_int(root, "num_experts_per_tok", path, true, 0, 1, &cfg->n_experts_used));
    if (cfg->n_experts_used > cfg->n_experts)
        return lq_fail(LQ_ERR_FORMAT, "%s: num_experts_per_tok %d exceeds %s %d", path, cfg->n_experts_used, key,
                       cfg->n_experts);
    LQ_TRY(get_int(root, "moe_intermediate_size", path, false, cfg->hidden_dim, 1, &cfg->expert_hidden_dim));
    LQ_TRY(get_int(root, "shared_expert_intermediate_size", path, false, 0, 0, &cfg->shared_hidden_dim));
    const json_t *norm = json_object_get(root, "norm_topk_prob");
    if (norm && !json_is_boolean(norm)) return lq_fail(LQ_ERR_FORMAT, "%s: \"norm_topk_prob\" is not a boolean", path);
    cfg->norm_topk_prob = json_is_true(norm);
    int step;
    LQ_TRY(get_int(root, "decoder_sparse_step", path, false, 1, 1, &step));
    for (int l = 0; l < cfg->n_layers && l < LQ_MAX_LAYERS; l++) cfg->layer_dense_ffn[l] = (l + 1) % step != 0;
    const json_t *only = json_object_get(root, "mlp_only_layers");
    if (only && !json_is_null(only) && !json_is_array(only))
        return lq_fail(LQ_ERR_FORMAT, "%s: \"mlp_only_layers\" is not a list", path);
    size_t i;
    const json_t *e;
    json_array_foreach(only, i, e) {
        json_int_t l = json_integer_value(e);
        if (!json_is_integer(e) || l < 0 || l >= cfg->n_layers || l >= LQ_MAX_LAYERS)
            return lq_fail(LQ_ERR_FORMAT, "%s: \"mlp_only_layers\"[%zu] is not a layer index", path, i);
        cfg->layer_dense_ffn[l] = 1;
    }
    return LQ_OK;
}

static lq_status parse_root(const json_t *root, const char *path, lq_config *cfg) {
    if (!json_is_object(root)) return lq_fail(LQ_ERR_FORMAT, "%s: not a JSON object", path);
    const json_t *archs = json_object_get(root, "architectures");
    const json_t *a0 = json_is_array(archs) ? json_array_get(archs, 0) : NULL;
    const json_t *mt = json_object_get(root, "model_type");
    if (json_is_string(a0)) {
        snprintf(cfg->arch, sizeof cfg->arch, "%s", json_string_value(a0));
    } else if (json_is_string(mt) && strcmp(json_string_value(mt), "llama") == 0) {
        snprintf(cfg->arch, sizeof cfg->arch, "LlamaForCausalLM");
    } else {
        return lq_fail(LQ_ERR_FORMAT, "%s: no \"architectures\" list (and model_type is not \"llama\")", path);
    }
    snprintf(cfg->model_type, sizeof cfg->model_type, "%s", json_is_string(mt) ? json_string_value(mt) : "llama");
    /* Which architectures the engine runs is the descriptor registry's call (lq_model_load);
     * configs without the decoder keys below (GPT-2's n_embd, ...) are refused here. */
    if (!json_object_get(root, "hidden_size") && !json_object_get(root, "num_hidden_layers"))
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: architecture \"%s\" is not supported (no hidden_size / "
                       "num_hidden_layers)", path, cfg->arch);

    LQ_TRY(get_int(root, "hidden_size", path, true, 0, 1, &cfg->dim));
    LQ_TRY(get_int(root, "intermediate_size", path, true, 0, 1, &cfg->hidden_dim));
    LQ_TRY(get_int(root, "num_hidden_layers", path, true, 0, 1, &cfg->n_layers));
    LQ_TRY(get_int(root, "num_attention_heads", path, true, 0, 1, &cfg->n_heads));
    LQ_TRY(get_int(root, "num_key_value_heads", path, false, cfg->n_heads, 1, &cfg->n_kv_heads));
    LQ_TRY(get_int(root, "vocab_size", path, true, 0, 1, &cfg->vocab_size));
    LQ_TRY(get_int(root, "max_position_embeddings", path, false, 2048, 1, &cfg->max_seq_len));
    if (!json_object_get(root, "head_dim") || json_is_null(json_object_get(root, "head_dim"))) {
        if (cfg->dim % cfg->n_heads != 0)
            return lq_fail(LQ_ERR_FORMAT, "%s: num_attention_heads %d does not divide hidden_size %d", path,
                           cfg->n_heads, cfg->dim);
        cfg->head_dim = cfg->dim / cfg->n_heads;
    } else {
        LQ_TRY(get_int(root, "head_dim", path, true, 0, 1, &cfg->head_dim));
    }
    if (cfg->n_heads % cfg->n_kv_heads != 0)
        return lq_fail(LQ_ERR_FORMAT, "%s: num_key_value_heads %d does not divide num_attention_heads %d",
                       path, cfg->n_kv_heads, cfg->n_heads);
    if (cfg->head_dim % 2 != 0)
        return lq_fail(LQ_ERR_FORMAT, "%s: head_dim %d is odd (RoPE rotates pairs)", path, cfg->head_dim);
    if ((int64_t)cfg->n_heads * cfg->head_dim > INT_MAX)
        return lq_fail(LQ_ERR_FORMAT, "%s: num_attention_heads x head_dim overflows", path);
    LQ_TRY(parse_layer_sizes(root, path, cfg));
    LQ_TRY(parse_moe(root, path, cfg));
    LQ_TRY(get_float(root, "rms_norm_eps", path, 1e-6f, &cfg->norm_eps));
    if (!(cfg->norm_eps >= 0.0f)) return lq_fail(LQ_ERR_FORMAT, "%s: rms_norm_eps must be >= 0", path);
    const json_t *tie = json_object_get(root, "tie_word_embeddings");
    if (tie && !json_is_boolean(tie))
        return lq_fail(LQ_ERR_FORMAT, "%s: \"tie_word_embeddings\" is not a boolean", path);
    cfg->tied_embeddings = json_is_true(tie);
    /* Our own key (not HF's): a checkpoint whose q/k rows keep llama2.c's interleaved pairs. */
    cfg->rope_interleaved = json_is_true(json_object_get(root, "rope_interleaved"));
    LQ_TRY(parse_rope(root, path, cfg));
    LQ_TRY(parse_sliding_window(root, path, cfg));
    LQ_TRY(get_float(root, "query_pre_attn_scalar", path, 0.0f, &cfg->attn_scalar));
    if (cfg->attn_scalar < 0.0f) return lq_fail(LQ_ERR_FORMAT, "%s: query_pre_attn_scalar must be > 0", path);
    /* Gemma 2's tanh caps (null in Gemma 3): not in the layer program, so refused by name */
    static const char *const caps[] = {"final_logit_softcapping", "attn_logit_softcapping"};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        const json_t *v = json_object_get(root, caps[i]);
        if (v && !json_is_null(v))
            return lq_fail(LQ_ERR_UNSUPPORTED, "%s: \"%s\" is not supported", path, caps[i]);
    }
    LQ_TRY(get_token_id(root, "bos_token_id", path, &cfg->bos_id));
    LQ_TRY(get_token_id(root, "eos_token_id", path, &cfg->eos_id));
    return LQ_OK;
}

lq_status lq_config_parse_json(const char *json_text, const char *path, lq_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    if (!path) path = "config.json";
    json_error_t jerr;
    json_t *root = json_loads(json_text, 0, &jerr);
    if (!root)
        return lq_fail(LQ_ERR_FORMAT, "%s: not valid JSON (line %d col %d: %s)", path, jerr.line,
                       jerr.column, jerr.text);
    lq_status st = parse_root(root, path, cfg);
    json_decref(root);
    return st;
}

/* A float as the shortest decimal that reads back as the same float, so 1e-5f is written
 * "1e-05" and not "9.9999997473787516e-06". */
static json_t *json_float(float f) {
    char buf[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f) break;
    }
    return json_real(strtod(buf, NULL));
}

lq_status lq_config_to_json(const lq_config *cfg, char **out_json) {
    *out_json = NULL;
    json_t *r = json_object();
    if (!r) return lq_fail(LQ_ERR_NOMEM, "config.json: out of memory");
    json_object_set_new(r, "architectures", json_pack("[s]", cfg->arch[0] ? cfg->arch : "LlamaForCausalLM"));
    json_object_set_new(r, "model_type", json_string(cfg->model_type[0] ? cfg->model_type : "llama"));
    /* transformers' Gemma configs name their GeGLU activation "hidden_activation"; the Llama
     * family's SwiGLU is "hidden_act" */
    if (strncmp(cfg->model_type, "gemma", 5) == 0)
        json_object_set_new(r, "hidden_activation", json_string("gelu_pytorch_tanh"));
    else
        json_object_set_new(r, "hidden_act", json_string("silu"));
    json_object_set_new(r, "hidden_size", json_integer(cfg->dim));
    json_object_set_new(r, "intermediate_size", json_integer(cfg->hidden_dim));
    json_object_set_new(r, "num_hidden_layers", json_integer(cfg->n_layers));
    json_object_set_new(r, "num_attention_heads", json_integer(cfg->n_heads));
    json_object_set_new(r, "num_key_value_heads", json_integer(cfg->n_kv_heads));
    json_object_set_new(r, "head_dim", json_integer(cfg->head_dim));
    json_object_set_new(r, "vocab_size", json_integer(cfg->vocab_size));
    json_object_set_new(r, "max_position_embeddings", json_integer(cfg->max_seq_len));
    json_object_set_new(r, "rope_theta", json_float(cfg->rope_theta));
    json_object_set_new(r, "rms_norm_eps", json_float(cfg->norm_eps));
    json_object_set_new(r, "tie_word_embeddings", json_boolean(cfg->tied_embeddings));
    json_object_set_new(r, "attention_bias", json_false());
    json_object_set_new(r, "mlp_bias", json_false());
    if (cfg->rope_type != LQ_ROPE_DEFAULT) {
        json_t *rs = json_object();
        json_object_set_new(rs, "rope_type", json_string(lq_rope_type_name(cfg->rope_type)));
        json_object_set_new(rs, "factor", json_float(cfg->rope_scale_factor));
        if (cfg->rope_type == LQ_ROPE_LLAMA3) {
            json_object_set_new(rs, "low_freq_factor", json_float(cfg->rope_low_freq_factor));
            json_object_set_new(rs, "high_freq_factor", json_float(cfg->rope_high_freq_factor));
            json_object_set_new(rs, "original_max_position_embeddings", json_integer(cfg->rope_orig_max_pos));
        }
        json_object_set_new(r, "rope_scaling", rs);
    } else {
        json_object_set_new(r, "rope_scaling", json_null());
    }
    if (cfg->rope_interleaved) json_object_set_new(r, "rope_interleaved", json_true());
    if (cfg->rope_local_theta > 0.0f) json_object_set_new(r, "rope_local_base_freq", json_float(cfg->rope_local_theta));
    if (cfg->attn_scalar > 0.0f) /* transformers 5's Gemma 3 config types this one as an int */
        json_object_set_new(r, "query_pre_attn_scalar", cfg->attn_scalar == floorf(cfg->attn_scalar)
                                                            ? json_integer((json_int_t)cfg->attn_scalar)
                                                            : json_real(cfg->attn_scalar));
    if (cfg->sliding_window > 0) {
        json_object_set_new(r, "sliding_window", json_integer(cfg->sliding_window));
        json_t *lt = json_array();
        for (int l = 0; l < cfg->n_layers; l++)
            json_array_append_new(lt, json_string(lq_config_layer_window(cfg, l) ? "sliding_attention" : "full_attention"));
        json_object_set_new(r, "layer_types", lt);
    }
    if (lq_config_has_layer_sizes(cfg)) {
        /* Our keys (not HF's), for structurally pruned models whose layers differ in size. */
        json_t *hs = json_array(), *nh = json_array(), *nkv = json_array();
        for (int l = 0; l < cfg->n_layers; l++) {
            json_array_append_new(hs, json_integer(lq_config_layer_hidden(cfg, l)));
            json_array_append_new(nh, json_integer(lq_config_layer_heads(cfg, l)));
            json_array_append_new(nkv, json_integer(lq_config_layer_kv_heads(cfg, l)));
        }
        json_object_set_new(r, "layer_intermediate_sizes", hs);
        json_object_set_new(r, "layer_num_attention_heads", nh);
        json_object_set_new(r, "layer_num_key_value_heads", nkv);
    }
    if (cfg->bos_id >= 0) json_object_set_new(r, "bos_token_id", json_integer(cfg->bos_id));
    if (cfg->eos_id >= 0) json_object_set_new(r, "eos_token_id", json_integer(cfg->eos_id));
    char *text = json_dumps(r, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(r);
    if (!text) return lq_fail(LQ_ERR_NOMEM, "config.json: out of memory");
    /* Hand back a malloc'd copy with a trailing newline (json_dumps uses jansson's allocator). */
    size_t n = strlen(text);
    char *out = malloc(n + 2);
    if (!out) {
        free(text);
        return lq_fail(LQ_ERR_NOMEM, "config.json: out of memory");
    }
    memcpy(out, text, n);
    out[n] = '\n';
    out[n + 1] = 0;
    free(text);
    *out_json = out;
    return LQ_OK;
}

lq_status lq_config_json_save(const char *dir, const char *json_text) {
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/config.json", dir);
    if (n < 0 || (size_t)n >= sizeof path) return lq_fail(LQ_ERR_INVALID_ARG, "%s: path too long", dir);
    size_t len = strlen(json_text);
    lq_file_out f;
    LQ_TRY(lq_file_begin(&f, path));
    lq_status s = lq_file_write(&f, json_text, len);
    if (s == LQ_OK && (len == 0 || json_text[len - 1] != '\n')) s = lq_file_write(&f, "\n", 1);
    if (s != LQ_OK) {
        lq_file_abort(&f);
        return s;
    }
    return lq_file_commit(&f);
}

lq_status lq_checkpoint_copy_side_files(const char *model_dir, const char *dir) {
    static const char *const names[] = {"tokenizer.json", "tokenizer_config.json", "generation_config.json",
                                        "special_tokens_map.json", "chat_template.jinja"};
    struct stat sb;
    if (stat(model_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) return LQ_OK; /* a llama2.c .bin */
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char src[PATH_MAX], dst[PATH_MAX];
        if (snprintf(src, sizeof src, "%s/%s", model_dir, names[i]) >= (int)sizeof src ||
            snprintf(dst, sizeof dst, "%s/%s", dir, names[i]) >= (int)sizeof dst)
            return lq_fail(LQ_ERR_INVALID_ARG, "%s/%s: path too long", dir, names[i]);
        if (stat(src, &sb) != 0) continue; /* the model has none */
        LQ_TRY(lq_file_copy(src, dst));
    }
    return LQ_OK;
}
