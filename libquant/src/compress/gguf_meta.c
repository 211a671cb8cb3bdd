/* gguf_meta.c - tensor names and metadata of a GGUF file written from a checkpoint.
 *
 * Keys as llama.cpp's convert_hf_to_gguf.py writes them for a decoder (TextModel /
 * LlamaModel.set_gguf_parameters, gguf-py constants.py Keys.LLM / Keys.Attention / Keys.Rope):
 * "<arch>.context_length", ".embedding_length", ".block_count", ".feed_forward_length",
 * ".attention.head_count(_kv)", ".attention.layer_norm_rms_epsilon", ".rope.freq_base",
 * ".rope.dimension_count", ".attention.key_length"/".value_length" when head_dim is not
 * dim / heads, ".vocab_size", linear RoPE scaling as ".rope.scaling.type"/".factor".
 * llama3 RoPE scaling has no key: the converter writes it as the rope_freqs tensor
 * (gguf_export.c, io/rope_freqs.c) and context_length stays max_position_embeddings.
 */
#include "gguf_internal.h"

#include "libquant/lq_file.h"
#include "libquant/lq_tokenizer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool lq_gguf_is_file(const char *path) {
    int fd;
    uint64_t size;
    if (lq_file_open_input(path, &fd, &size) != LQ_OK) return false;
    char m[4] = {0};
    bool yes = size >= 4 && read(fd, m, 4) == 4 && memcmp(m, "GGUF", 4) == 0;
    close(fd);
    return yes;
}

/* ---- names ----------------------------------------------------------------------------------- */

bool lq_gguf_name_of(const lq_arch *a, const char *hf, char *buf, size_t cap, int *role, int *layer) {
    static const char *const global[][2] = {
        {"model.embed_tokens.weight", "token_embd.weight"},
        {"model.norm.weight", "output_norm.weight"},
        {"lm_head.weight", "output.weight"},
    };
    *role = -1;
    *layer = -1;
    for (size_t i = 0; i < sizeof global / sizeof global[0]; i++)
        if (strcmp(hf, global[i][0]) == 0) return snprintf(buf, cap, "%s", global[i][1]) < (int)cap;
    /* a GGUF input's RoPE factors keep their name (only where llama.cpp reads them) */
    if (strcmp(hf, LQ_ROPE_FREQS_TENSOR) == 0)
        return (a->features & LQ_AF_GGUF_ROPE_FREQS) && snprintf(buf, cap, "%s", hf) < (int)cap;
    size_t n = strlen(hf);
    const char *suffix = n > 7 && strcmp(hf + n - 7, ".weight") == 0 ? ".weight"
                         : n > 5 && strcmp(hf + n - 5, ".bias") == 0 ? ".bias" : NULL;
    if (!suffix) return false;
    char module[256];
    if (n - strlen(suffix) >= sizeof module) return false;
    memcpy(module, hf, n - strlen(suffix));
    module[n - strlen(suffix)] = 0;
    int l, r = lq_arch_role_of(a, module, &l);
    const lq_role_spec *spec = r >= 0 ? lq_arch_role(a, (lq_role)r) : NULL;
    char expect[300];
    /* the whole module must be the role's (role_of also accepts a longer name) */
    if (!spec || !lq_arch_module(a, (lq_role)r, l, expect, sizeof expect) || strcmp(expect, module) != 0)
        return false;
    *role = r;
    *layer = l;
    return snprintf(buf, cap, "blk.%d.%s%s", l, spec->gguf, suffix) < (int)cap;
}

/* ---- architecture ---------------------------------------------------------------------------- */

static lq_status kv_u32(lq_gguf_writer *w, const char *arch, const char *key, uint32_t v) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    return lq_gguf_writer_kv_u32(w, k, v);
}

static lq_status kv_f32(lq_gguf_writer *w, const char *arch, const char *key, float v) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    return lq_gguf_writer_kv_f32(w, k, v);
}

lq_status lq_gguf_meta_arch(lq_gguf_writer *w, const lq_arch *a, const lq_config *c, const char *path) {
    const char *g = a->gguf_name;
    if (a->norm_offset != 0.0f)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: %s: writing this architecture from a Hugging Face "
                       "directory is not supported (only GGUF input keeps its metadata)", path, c->arch);
    if (lq_config_has_layer_sizes(c))
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: per-layer sizes (a structurally pruned model) cannot be "
                       "written as GGUF", path);
    if (c->rope_type == LQ_ROPE_LLAMA3 && !(a->features & LQ_AF_GGUF_ROPE_FREQS))
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: llama3 RoPE scaling: llama.cpp reads no rope_freqs tensor for "
                       "architecture %s", path, g);
    lq_status s = lq_gguf_writer_kv_str(w, "general.architecture", g);
    if (s == LQ_OK) s = lq_gguf_writer_kv_str(w, "general.type", "model");
    if (s == LQ_OK) s = kv_u32(w, g, "vocab_size", (uint32_t)c->vocab_size);
    if (s == LQ_OK) s = kv_u32(w, g, "context_length", (uint32_t)c->max_seq_len);
    if (s == LQ_OK) s = kv_u32(w, g, "embedding_length", (uint32_t)c->dim);
    if (s == LQ_OK) s = kv_u32(w, g, "block_count", (uint32_t)c->n_layers);
    if (s == LQ_OK) s = kv_u32(w, g, "feed_forward_length", (uint32_t)c->hidden_dim);
    if (s == LQ_OK) s = kv_u32(w, g, "attention.head_count", (uint32_t)c->n_heads);
    if (s == LQ_OK) s = kv_u32(w, g, "attention.head_count_kv", (uint32_t)c->n_kv_heads);
    if (s == LQ_OK) s = kv_f32(w, g, "rope.freq_base", c->rope_theta);
    if (s == LQ_OK) s = kv_f32(w, g, "attention.layer_norm_rms_epsilon", c->norm_eps);
    if (s == LQ_OK) s = kv_u32(w, g, "rope.dimension_count", (uint32_t)c->head_dim);
    if (s == LQ_OK && c->head_dim * c->n_heads != c->dim) {
        s = kv_u32(w, g, "attention.key_length", (uint32_t)c->head_dim);
        if (s == LQ_OK) s = kv_u32(w, g, "attention.value_length", (uint32_t)c->head_dim);
    }
    if (s == LQ_OK && c->rope_type == LQ_ROPE_LINEAR) {
        char k[128];
        snprintf(k, sizeof k, "%s.rope.scaling.type", g);
        s = lq_gguf_writer_kv_str(w, k, "linear");
        if (s == LQ_OK) s = kv_f32(w, g, "rope.scaling.factor", c->rope_scale_factor);
    }
    return s;
}

/* ---- tokenizer ------------------------------------------------------------------------------- */

static char *read_text(const char *path) {
    FILE *f;
    if (lq_file_fopen_input(path, &f) != LQ_OK) return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0, k;
    char tmp[65536];
    while ((k = fread(tmp, 1, sizeof tmp, f)) > 0) {
        if (n + k + 1 > cap) {
            cap = (n + k + 1) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        memcpy(buf + n, tmp, k);
        n += k;
    }
    fclose(f);
    if (buf) buf[n] = 0;
    return buf;
}

/* tokenizer.ggml.pre of a tokenizer.json, from its pre-tokenizer (llama.cpp hashes the encoding
 * of a test text instead; these are the families whose regexes tok_load_gguf.c knows). */
static const char *pre_of_json(const char *json_path) {
    json_error_t err;
    json_t *root = json_load_file(json_path, 0, &err);
    const char *pre = "default";
    if (!root) return pre;
    char *s = json_dumps(json_object_get(root, "pre_tokenizer"), JSON_COMPACT);
    if (s) {
        if (strstr(s, "\"Digits\"") && strstr(s, "\"individual_digits\":true") && strstr(s, "ByteLevel"))
            pre = "smollm";
        else if (strstr(s, "\\\\p{N}{1,3}")) pre = "llama-bpe";
        else if (strstr(s, "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}|")) pre = "qwen2";
        else if (strstr(s, "ByteLevel")) pre = "gpt-2";
        free(s);
    }
    json_decref(root);
    return pre;
}

/* The chat template an HF directory carries: chat_template.jinja, else tokenizer_config.json's
 * "chat_template" string. NULL if none (caller frees). */
static char *chat_template_of(const char *dir) {
    char p[4096];
    snprintf(p, sizeof p, "%s/chat_template.jinja", dir);
    char *t = read_text(p);
    if (t) return t;
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    json_error_t err;
    json_t *root = json_load_file(p, 0, &err);
    const char *s = json_string_value(json_object_get(root, "chat_template"));
    t = s ? strdup(s) : NULL;
    json_decref(root);
    return t;
}

static lq_status copy_tokenizer_kv(lq_gguf_writer *w, const char *gguf_path) {
    lq_gguf *g;
    LQ_TRY(lq_gguf_open(gguf_path, &g));
    lq_status s = LQ_OK;
    for (int64_t i = 0; s == LQ_OK && i < lq_gguf_kv_count(g); i++)
        if (strncmp(lq_gguf_kv_key(g, i), "tokenizer.", 10) == 0) s = lq_gguf_writer_kv_copy(w, g, i);
    lq_gguf_close(g);
    return s;
}

lq_status lq_gguf_meta_tokenizer(lq_gguf_writer *w, const char *model_path, const char *tok_path,
                                 const lq_config *c) {
    if (tok_path && lq_gguf_is_file(tok_path)) return copy_tokenizer_kv(w, tok_path);
    if (!tok_path && lq_gguf_is_file(model_path)) return copy_tokenizer_kv(w, model_path);
    lq_tokenizer *t;
    LQ_TRY(lq_tokenizer_load_for_model(model_path, tok_path, c->vocab_size, &t));
    char json[4096];
    const char *pre = "default";
    if (tok_path && strlen(tok_path) > 5 && strcmp(tok_path + strlen(tok_path) - 5, ".json") == 0)
        pre = pre_of_json(tok_path);
    else if (!tok_path && snprintf(json, sizeof json, "%s/tokenizer.json", model_path) < (int)sizeof json)
        pre = pre_of_json(json);
    if (lq_tokenizer_kind(t) == LQ_TOK_SPM) pre = "default";
    lq_status s = lq_tokenizer_write_gguf(t, w, pre, c->bos_id, c->eos_id);
    lq_tokenizer_free(t);
    char *tmpl = s == LQ_OK ? chat_template_of(model_path) : NULL;
    if (tmpl) s = lq_gguf_writer_kv_str(w, "tokenizer.chat_template", tmpl);
    free(tmpl);
    return s;
}
