/* tok_load_gguf.c - the vocabulary of a GGUF file (tokenizer.ggml.* keys, llama.cpp layout).
 *   model "llama" -> SPM: tokens, scores, token_type, bos/eos/unknown ids, add_space_prefix;
 *   model "gpt2"  -> byte-level BPE: tokens, merges ("a b"), token_type; tokenizer.ggml.pre
 *                    names the pre-tokenizer regexes (as llama.cpp's llama-vocab.cpp maps them). */
#include "tok_internal.h"
#include "libquant/lq_gguf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const re_llama3 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char *const re_qwen2 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?"
    "[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char *const re_starcoder =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";

static bool str_is(lq_gguf_str s, const char *lit) {
    return s.len == strlen(lit) && memcmp(s.data, lit, s.len) == 0;
}

static lq_status set_pretokenizer(lq_tokenizer *t, const lq_gguf *g, const char *path) {
    lq_gguf_str pre = {"default", 7};
    if (lq_gguf_find(g, "tokenizer.ggml.pre") >= 0) LQ_TRY(lq_gguf_get_str(g, "tokenizer.ggml.pre", &pre));
    if (str_is(pre, "default") || str_is(pre, "gpt-2") || str_is(pre, "gpt2"))
        return tok_add_regex(t, tok_re_gpt2, path);
    if (str_is(pre, "llama-bpe") || str_is(pre, "llama3") || str_is(pre, "llama-v3")) {
        t->ignore_merges = true;
        return tok_add_regex(t, re_llama3, path);
    }
    if (str_is(pre, "qwen2")) return tok_add_regex(t, re_qwen2, path);
    if (str_is(pre, "smollm") || str_is(pre, "starcoder") || str_is(pre, "refact")) {
        LQ_TRY(tok_add_regex(t, "\\p{N}", path));
        return tok_add_regex(t, re_starcoder, path);
    }
    return lq_fail(LQ_ERR_UNSUPPORTED, "%s: tokenizer.ggml.pre '%.*s' is not supported", path,
                   (int)(pre.len > 64 ? 64 : pre.len), pre.data);
}

static lq_status opt_id(const lq_gguf *g, const char *key, int32_t *out) {
    if (lq_gguf_find(g, key) < 0) return LQ_OK;
    int64_t v;
    LQ_TRY(lq_gguf_get_i64(g, key, &v));
    *out = (v >= 0 && v < TOK_MAX_VOCAB) ? (int32_t)v : -1;
    return LQ_OK;
}

static lq_status opt_bool(const lq_gguf *g, const char *key, bool *out) {
    if (lq_gguf_find(g, key) < 0) return LQ_OK;
    return lq_gguf_get_bool(g, key, out);
}

static lq_status load(const lq_gguf *g, const char *path, lq_tokenizer **out) {
    lq_gguf_str model;
    lq_status st = lq_gguf_get_str(g, "tokenizer.ggml.model", &model);
    if (st != LQ_OK) return st;
    lq_tok_kind kind;
    if (str_is(model, "llama")) kind = LQ_TOK_SPM;
    else if (str_is(model, "gpt2")) kind = LQ_TOK_BPE_BYTES;
    else
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: tokenizer.ggml.model '%.*s' is not supported", path,
                       (int)(model.len > 64 ? 64 : model.len), model.data);
    lq_gguf_type et;
    int64_t n;
    LQ_TRY(lq_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n));
    if (et != LQ_GGUF_TYPE_STRING) return lq_fail(LQ_ERR_FORMAT, "%s: tokenizer.ggml.tokens is not a string array", path);
    bool has_scores = lq_gguf_find(g, "tokenizer.ggml.scores") >= 0;
    bool has_types = lq_gguf_find(g, "tokenizer.ggml.token_type") >= 0;
    int64_t m;
    if (has_scores) {
        LQ_TRY(lq_gguf_get_arr(g, "tokenizer.ggml.scores", &et, &m));
        if (m != n) return lq_fail(LQ_ERR_FORMAT, "%s: tokenizer.ggml.scores has %lld entries, tokens %lld", path, (long long)m, (long long)n);
    }
    if (has_types) {
        LQ_TRY(lq_gguf_get_arr(g, "tokenizer.ggml.token_type", &et, &m));
        if (m != n) return lq_fail(LQ_ERR_FORMAT, "%s: tokenizer.ggml.token_type has %lld entries, tokens %lld", path, (long long)m, (long long)n);
    }
    lq_tokenizer *t;
    LQ_TRY(tok_new(kind, n, path, &t));
    for (int64_t i = 0; st == LQ_OK && i < n; i++) {
        lq_gguf_str s;
        double score = 0;
        int64_t type = TOK_TYPE_NORMAL;
        st = lq_gguf_arr_str(g, "tokenizer.ggml.tokens", i, &s);
        if (st == LQ_OK && has_scores) st = lq_gguf_arr_f64(g, "tokenizer.ggml.scores", i, &score);
        if (st == LQ_OK && has_types) st = lq_gguf_arr_i64(g, "tokenizer.ggml.token_type", i, &type);
        if (st == LQ_OK && (type < 0 || type > TOK_TYPE_BYTE)) type = TOK_TYPE_UNDEFINED;
        if (st == LQ_OK && isnan(score)) st = lq_fail(LQ_ERR_FORMAT, "%s: token %lld: NaN score", path, (long long)i);
        if (st == LQ_OK) st = tok_set_piece(t, (int32_t)i, s.data, (size_t)s.len, (float)score, (int)type, path);
    }
    if (st == LQ_OK) st = opt_id(g, "tokenizer.ggml.bos_token_id", &t->bos);
    if (st == LQ_OK) st = opt_id(g, "tokenizer.ggml.eos_token_id", &t->eos);
    if (st == LQ_OK) st = opt_id(g, "tokenizer.ggml.unknown_token_id", &t->unk);
    t->add_bos = kind == LQ_TOK_SPM;
    t->add_space_prefix = kind == LQ_TOK_SPM;
    if (st == LQ_OK) st = opt_bool(g, "tokenizer.ggml.add_bos_token", &t->add_bos);
    if (st == LQ_OK) st = opt_bool(g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix);
    if (st == LQ_OK) st = tok_finalize(t, path);
    if (st == LQ_OK && kind == LQ_TOK_BPE_BYTES) {
        st = set_pretokenizer(t, g, path);
        int64_t nm = 0;
        if (st == LQ_OK) st = lq_gguf_get_arr(g, "tokenizer.ggml.merges", &et, &nm);
        if (st == LQ_OK && et != LQ_GGUF_TYPE_STRING)
            st = lq_fail(LQ_ERR_FORMAT, "%s: tokenizer.ggml.merges is not a string array", path);
        if (st == LQ_OK) st = tok_merges_reserve(t, nm, path);
        for (int64_t i = 0; st == LQ_OK && i < nm; i++) {
            lq_gguf_str s;
            st = lq_gguf_arr_str(g, "tokenizer.ggml.merges", i, &s);
            if (st != LQ_OK) break;
            /* split at the first space after the first byte, as llama.cpp does */
            const char *sp = s.len > 1 ? memchr(s.data + 1, ' ', s.len - 1) : NULL;
            if (!sp) {
                st = lq_fail(LQ_ERR_FORMAT, "%s: merge %lld has no space", path, (long long)i);
                break;
            }
            size_t ll = (size_t)(sp - s.data);
            st = tok_add_merge(t, s.data, ll, sp + 1, s.len - ll - 1, path, i);
        }
    }
    if (st != LQ_OK) {
        lq_tokenizer_free(t);
        return st;
    }
    *out = t;
    return LQ_OK;
}

lq_status lq_tokenizer_load_gguf(const char *path, lq_tokenizer **out) {
    *out = NULL;
    lq_gguf *g;
    LQ_TRY(lq_gguf_open(path, &g));
    lq_status st = load(g, path, out);
    lq_gguf_close(g);
    return st;
}
