/* gguf_config.c - a GGUF file's "<arch>.*" metadata as an lq_config, read as llama.cpp reads it
 * (src/llama-model.cpp load_hparams and the per-arch load_arch_hparams, llama.cpp 0c1e57098):
 *   block_count, embedding_length, context_length: required;
 *   feed_forward_length, attention.head_count(_kv): a number or one per layer (get_key_or_arr);
 *   attention.key_length / value_length (default embedding_length / head_count): must agree;
 *   rope.dimension_count (default key_length): partial rotary is refused;
 *   rope.freq_base (default 10000); rope.scaling.type "none" | "linear" (default "linear" with
 *   factor 0 = none) and rope.scaling.factor (or the old rope.scale_linear); other types refused;
 *   attention.layer_norm_rms_epsilon.
 * Per architecture: gemma3 reads attention.sliding_window, its layer pattern
 * (attention.sliding_window_pattern: a period, default 6, or one bool per layer), the sliding
 * layers' RoPE base (rope.freq_base_swa, default 10000) and refuses final_logit_softcapping; its
 * scores are scaled by 1/sqrt(key_length) (1/sqrt(embedding_length / head_count) for the 62-layer
 * 27B), as llama.cpp's gemma3.cpp does. llama.cpp reads no sliding window for llama / qwen2 /
 * qwen3, so neither do we (a Mistral GGUF runs with full attention there too). */
#include "checkpoint_internal.h"
#include "arch.h"
#include "libquant/lq_gguf.h"

#include <stdio.h>
#include <string.h>

typedef struct gcfg {
    const lq_gguf *g;
    const char *arch; /* general.architecture */
    const char *path;
    char key[160];
} gcfg;

static const char *k(gcfg *c, const char *suffix) {
    snprintf(c->key, sizeof c->key, "%s.%s", c->arch, suffix);
    return c->key;
}

static bool has(gcfg *c, const char *suffix) { return lq_gguf_find(c->g, k(c, suffix)) >= 0; }

/* A positive int key (required, or def when absent). */
static lq_status get_int(gcfg *c, const char *suffix, bool required, int def, int *out) {
    if (!has(c, suffix)) {
        if (required) return lq_fail(LQ_ERR_FORMAT, "%s: missing key '%s'", c->path, c->key);
        *out = def;
        return LQ_OK;
    }
    int64_t v;
    LQ_TRY(lq_gguf_get_i64(c->g, c->key, &v));
    if (v <= 0 || v > (1 << 30)) return lq_fail(LQ_ERR_FORMAT, "%s: key '%s' = %lld is out of range", c->path, c->key, (long long)v);
    *out = (int)v;
    return LQ_OK;
}

static lq_status get_float(gcfg *c, const char *suffix, float def, float *out) {
    *out = def;
    if (!has(c, suffix)) return LQ_OK;
    double v;
    LQ_TRY(lq_gguf_get_f64(c->g, c->key, &v));
    if (!(v >= 0.0) || v > 1e30) return lq_fail(LQ_ERR_FORMAT, "%s: key '%s' = %g is out of range", c->path, c->key, v);
    *out = (float)v;
    return LQ_OK;
}

/* A number, or an array of n_layers numbers (llama.cpp's get_key_or_arr): the per-layer values go
 * to layer[] and the uniform value is their largest (lq_config's convention); *uniform keeps def
 * when the key is absent and not required. */
static lq_status get_int_or_layers(gcfg *c, const char *suffix, int n_layers, bool required, int def,
                                   int *uniform, int *layer) {
    int64_t i = lq_gguf_find(c->g, k(c, suffix));
    lq_gguf_type et;
    int64_t n;
    if (i < 0 || lq_gguf_kv_type(c->g, i, &et, &n) != LQ_GGUF_TYPE_ARRAY)
        return get_int(c, suffix, required, def, uniform);
    if (n != n_layers)
        return lq_fail(LQ_ERR_FORMAT, "%s: key '%s' has %lld values for %d layers", c->path, c->key, (long long)n, n_layers);
    int mx = 0;
    int vals[LQ_MAX_LAYERS];
    for (int l = 0; l < n_layers; l++) {
        int64_t v;
        LQ_TRY(lq_gguf_arr_i64(c->g, c->key, l, &v));
        if (v <= 0 || v > (1 << 30))
            return lq_fail(LQ_ERR_FORMAT, "%s: key '%s'[%d] = %lld is out of range", c->path, c->key, l, (long long)v);
        vals[l] = (int)v;
        if (vals[l] > mx) mx = vals[l];
    }
    *uniform = mx;
    for (int l = 0; l < n_layers; l++) layer[l] = vals[l] == mx ? 0 : vals[l];
    return LQ_OK;
}

static lq_status rope_scaling(gcfg *c, lq_config *cfg) {
    char type[32] = "linear";
    if (has(c, "rope.scaling.type")) {
        lq_gguf_str s;
        LQ_TRY(lq_gguf_get_str(c->g, c->key, &s));
        snprintf(type, sizeof type, "%.*s", (int)(s.len < 31 ? s.len : 31), s.data);
    }
    float factor = 0.0f;
    LQ_TRY(get_float(c, "rope.scaling.factor", 0.0f, &factor));
    if (!has(c, "rope.scaling.factor")) LQ_TRY(get_float(c, "rope.scale_linear", 0.0f, &factor));
    if (strcmp(type, "none") == 0 || ((strcmp(type, "linear") == 0) && (factor == 0.0f || factor == 1.0f)))
        return LQ_OK;
    if (strcmp(type, "linear") != 0)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: key '%s.rope.scaling.type' = \"%s\" is not supported (none, linear)",
                       c->path, c->arch, type);
    cfg->rope_type = LQ_ROPE_LINEAR;
    cfg->rope_scale_factor = factor;
    return LQ_OK;
}

/* Gemma 3's interleaved local/global layers (llama.cpp gemma3.cpp, load_swa_pattern). */
static lq_status gemma3_layers(gcfg *c, lq_config *cfg) {
    if (has(c, "final_logit_softcapping")) {
        float cap;
        LQ_TRY(get_float(c, "final_logit_softcapping", 0.0f, &cap));
        if (cap != 0.0f)
            return lq_fail(LQ_ERR_UNSUPPORTED, "%s: key '%s' (final logit soft-capping) is not supported", c->path, c->key);
    }
    cfg->attn_scalar = cfg->n_layers == 62 ? (float)(cfg->dim / cfg->n_heads) : (float)cfg->head_dim;
    int window = 0;
    LQ_TRY(get_int(c, "attention.sliding_window", false, 0, &window));
    if (window <= 0) return LQ_OK;
    cfg->sliding_window = window;
    LQ_TRY(get_float(c, "rope.freq_base_swa", 10000.0f, &cfg->rope_local_theta));
    int64_t i = lq_gguf_find(c->g, k(c, "attention.sliding_window_pattern"));
    lq_gguf_type et;
    int64_t n;
    if (i >= 0 && lq_gguf_kv_type(c->g, i, &et, &n) == LQ_GGUF_TYPE_ARRAY) { /* is_swa per layer */
        if (n != cfg->n_layers)
            return lq_fail(LQ_ERR_FORMAT, "%s: key '%s' has %lld values for %d layers", c->path, c->key, (long long)n, cfg->n_layers);
        for (int l = 0; l < cfg->n_layers; l++) {
            int64_t v;
            LQ_TRY(lq_gguf_arr_i64(c->g, c->key, l, &v));
            cfg->layer_full_attention[l] = v == 0;
        }
        return LQ_OK;
    }
    int period = 6;
    if (i >= 0) {
        int64_t v;
        LQ_TRY(lq_gguf_get_i64(c->g, c->key, &v));
        if (v < 0 || v > (1 << 20)) return lq_fail(LQ_ERR_FORMAT, "%s: key '%s' = %lld is out of range", c->path, c->key, (long long)v);
        period = (int)v;
    }
    /* llama_hparams::set_swa_pattern: period 0 = every layer sliding, else the last of each period
     * is global */
    for (int l = 0; l < cfg->n_layers; l++) cfg->layer_full_attention[l] = period != 0 && l % period == period - 1;
    return LQ_OK;
}

lq_status lq_gguf_read_config(const lq_gguf *g, const char *arch_name, const lq_arch *a, lq_config *cfg) {
    gcfg c = {.g = g, .arch = arch_name, .path = lq_gguf_path(g)};
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->arch, sizeof cfg->arch, "%s", a->hf_name);
    snprintf(cfg->model_type, sizeof cfg->model_type, "%s", strcmp(arch_name, "gemma3") == 0 ? "gemma3_text" : arch_name);
    LQ_TRY(get_int(&c, "block_count", true, 0, &cfg->n_layers));
    if (cfg->n_layers > LQ_MAX_LAYERS)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: %d layers (at most %d supported)", c.path, cfg->n_layers, LQ_MAX_LAYERS);
    LQ_TRY(get_int(&c, "embedding_length", true, 0, &cfg->dim));
    LQ_TRY(get_int(&c, "context_length", true, 0, &cfg->max_seq_len));
    LQ_TRY(get_int_or_layers(&c, "feed_forward_length", cfg->n_layers, true, 0, &cfg->hidden_dim, cfg->layer_hidden_dim));
    LQ_TRY(get_int_or_layers(&c, "attention.head_count", cfg->n_layers, true, 0, &cfg->n_heads, cfg->layer_n_heads));
    bool has_kv = has(&c, "attention.head_count_kv");
    LQ_TRY(get_int_or_layers(&c, "attention.head_count_kv", cfg->n_layers, false, cfg->n_heads, &cfg->n_kv_heads,
                             cfg->layer_n_kv_heads));
    if (!has_kv) memcpy(cfg->layer_n_kv_heads, cfg->layer_n_heads, sizeof cfg->layer_n_kv_heads);
    int vlen = 0, rot = 0;
    /* Without attention.key_length the head size is embedding_length / head_count, as llama.cpp
     * takes it: a head count that does not divide the width leaves no head size (fuzz_gguf_model
     * found head_count 331179095 giving head size 0). */
    if (!has(&c, "attention.key_length") && cfg->dim % cfg->n_heads != 0)
        return lq_fail(LQ_ERR_FORMAT, "%s: attention.head_count %d does not divide embedding_length %d and "
                       "there is no attention.key_length", c.path, cfg->n_heads, cfg->dim);
    LQ_TRY(get_int(&c, "attention.key_length", false, cfg->dim / cfg->n_heads, &cfg->head_dim));
    LQ_TRY(get_int(&c, "attention.value_length", false, cfg->dim / cfg->n_heads, &vlen));
    if (vlen != cfg->head_dim)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: attention.value_length %d differs from key_length %d (not supported)",
                       c.path, vlen, cfg->head_dim);
    LQ_TRY(get_int(&c, "rope.dimension_count", false, cfg->head_dim, &rot));
    if (rot != cfg->head_dim)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: rope.dimension_count %d: partial rotary (head size %d) is not supported",
                       c.path, rot, cfg->head_dim);
    LQ_TRY(get_float(&c, "rope.freq_base", 10000.0f, &cfg->rope_theta));
    LQ_TRY(get_float(&c, "attention.layer_norm_rms_epsilon", 1e-5f, &cfg->norm_eps));
    LQ_TRY(rope_scaling(&c, cfg));
    /* llama.cpp's converter permutes this architecture's q/k rows so rotary pairs are adjacent
     * (LLAMA_ROPE_TYPE_NORM); the engine rotates them in place instead of un-permuting. */
    cfg->rope_interleaved = (a->features & LQ_AF_GGUF_QK_PERMUTED) != 0;
    /* ... and stores (1 + w) for the norms of architectures whose RMSNorm adds one (Gemma). */
    cfg->norm_offset_folded = a->norm_offset != 0.0f;
    if (strcmp(arch_name, "gemma3") == 0) LQ_TRY(gemma3_layers(&c, cfg));
    cfg->bos_id = cfg->eos_id = -1;
    int64_t v;
    if (lq_gguf_find(g, "tokenizer.ggml.bos_token_id") >= 0 && lq_gguf_get_i64(g, "tokenizer.ggml.bos_token_id", &v) == LQ_OK)
        cfg->bos_id = v >= 0 && v < (1 << 30) ? (int)v : -1;
    if (lq_gguf_find(g, "tokenizer.ggml.eos_token_id") >= 0 && lq_gguf_get_i64(g, "tokenizer.ggml.eos_token_id", &v) == LQ_OK)
        cfg->eos_id = v >= 0 && v < (1 << 30) ? (int)v : -1;
    return LQ_OK;
}
