/* tok_save_hf_json.c - write an HF tokenizer.json that lq_tokenizer_load_hf_json (and HF
 * tokenizers) read back as the same tokenizer.
 *   SPM: the Llama-2 layout: normalizer Prepend("▁") + Replace(" " -> "▁"), model BPE with
 *        byte_fallback, decoder Replace/ByteFallback/Fuse/Strip. SentencePiece has no merge list,
 *        so we generate one as HF's converter does: every split of every piece into two pieces,
 *        ordered by the merged piece's score (highest first).
 *   Byte-level: ByteLevel (or Split regexes + ByteLevel) pre-tokenizer and decoder, merges in
 *        rank order. Control / user-defined tokens become added_tokens. */
#include "tok_internal.h"

#include "libquant/lq_file.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct spm_merge {
    float score;
    int32_t merged, left, right;
} spm_merge;

static int cmp_spm_merge(const void *a, const void *b) {
    const spm_merge *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->merged != y->merged) return x->merged < y->merged ? -1 : 1;
    if (x->left != y->left) return x->left < y->left ? -1 : 1;
    return (x->right > y->right) - (x->right < y->right);
}

static bool is_added(const lq_tokenizer *t, int32_t id) {
    int ty = t->type[id];
    return ty == TOK_TYPE_CONTROL || ty == TOK_TYPE_USER_DEFINED || ty == TOK_TYPE_UNKNOWN;
}

/* Every (left, right) split of every mergeable SPM piece, sorted by merged score. */
static lq_status spm_merges(const lq_tokenizer *t, spm_merge **out, size_t *n_out) {
    size_t n = 0, cap = 1024;
    spm_merge *m = malloc(cap * sizeof *m);
    if (!m) return lq_fail(LQ_ERR_NOMEM, "tokenizer: out of memory");
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (t->type[id] != TOK_TYPE_NORMAL && t->type[id] != TOK_TYPE_UNDEFINED) continue;
        const char *p = t->piece[id];
        size_t len = t->piece_len[id];
        for (size_t k = tok_utf8_len((const unsigned char *)p, len); k < len;
             k += tok_utf8_len((const unsigned char *)p + k, len - k)) {
            int32_t l = tok_find(t, p, k), r = tok_find(t, p + k, len - k);
            if (l < 0 || r < 0 || is_added(t, l) || is_added(t, r)) continue;
            if (n == cap) {
                spm_merge *nm = realloc(m, 2 * cap * sizeof *m);
                if (!nm) {
                    free(m);
                    return lq_fail(LQ_ERR_NOMEM, "tokenizer: out of memory");
                }
                m = nm;
                cap *= 2;
            }
            m[n++] = (spm_merge){t->score[id], id, l, r};
        }
    }
    qsort(m, n, sizeof *m, cmp_spm_merge);
    *out = m;
    *n_out = n;
    return LQ_OK;
}

static json_t *str_pair(const lq_tokenizer *t, int32_t l, int32_t r) {
    size_t ll = t->piece_len[l], rl = t->piece_len[r];
    char *s = malloc(ll + rl + 2);
    if (!s) return NULL;
    memcpy(s, t->piece[l], ll);
    s[ll] = ' ';
    memcpy(s + ll + 1, t->piece[r], rl);
    json_t *j = json_stringn(s, ll + rl + 1);
    free(s);
    return j;
}

/* A jansson constructor's result, or json_null() with ok cleared if it failed (evaluates x once). */
static json_t *chk(json_t *x, bool *ok) {
    if (x) return x;
    *ok = false;
    return json_null();
}
#define J(x) chk((x), &ok)

/* The "model" object: the BPE vocabulary and merges (an SPM vocabulary's merges recovered from
 * its scores). *okp becomes false when something could not be built. */
static json_t *build_model(const lq_tokenizer *t, bool spm, bool *okp) {
    bool ok = true;
    json_t *model = json_object(), *vocab = json_object(), *merges = json_array();
    if (model && vocab && merges) {
        json_object_set_new(model, "type", json_string("BPE"));
        json_object_set_new(model, "dropout", json_null());
        json_object_set_new(model, "unk_token", t->unk >= 0 ? J(json_string(t->piece[t->unk])) : json_null());
        json_object_set_new(model, "continuing_subword_prefix", json_null());
        json_object_set_new(model, "end_of_word_suffix", json_null());
        json_object_set_new(model, "fuse_unk", json_boolean(spm));
        json_object_set_new(model, "byte_fallback", json_boolean(spm));
        if (!spm) json_object_set_new(model, "ignore_merges", json_boolean(t->ignore_merges));
        for (int32_t id = 0; id < t->n_vocab && ok; id++) {
            if (t->piece_len[id] == 0 || t->type[id] == TOK_TYPE_UNUSED) continue;
            if (tok_find(t, t->piece[id], t->piece_len[id]) != id) continue; /* duplicate text */
            json_t *k = json_integer(id);
            if (!k || json_object_setn_new(vocab, t->piece[id], t->piece_len[id], k) != 0) ok = false;
        }
        if (spm) {
            spm_merge *m = NULL;
            size_t n = 0;
            if (spm_merges(t, &m, &n) != LQ_OK) ok = false;
            for (size_t i = 0; i < n && ok; i++) json_array_append_new(merges, J(str_pair(t, m[i].left, m[i].right)));
            free(m);
        } else {
            for (int64_t i = 0; i < t->n_merges && ok; i++)
                json_array_append_new(merges, J(str_pair(t, t->merges[i][0], t->merges[i][1])));
        }
    }
    json_object_set_new(model, "vocab", J(vocab));
    json_object_set_new(model, "merges", J(merges));
    if (!ok) *okp = false;
    return model;
}

static json_t *build(const lq_tokenizer *t, bool *okp) {
    bool ok = true;
    bool spm = t->kind == LQ_TOK_SPM;
    json_t *root = json_object();
    if (!root) {
        *okp = false;
        return NULL;
    }
    json_object_set_new(root, "version", json_string("1.0"));
    json_object_set_new(root, "truncation", json_null());
    json_object_set_new(root, "padding", json_null());

    json_t *added = json_array();
    for (int32_t id = 0; id < t->n_vocab && added; id++) {
        if (!is_added(t, id) || t->piece_len[id] == 0) continue;
        json_t *a = json_pack("{s:i, s:s%, s:b, s:b, s:b, s:b, s:b}", "id", (json_int_t)id, "content", t->piece[id],
                              (size_t)t->piece_len[id], "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0,
                              "special", t->type[id] != TOK_TYPE_USER_DEFINED);
        json_array_append_new(added, J(a));
    }
    json_object_set_new(root, "added_tokens", J(added));

    if (spm) {
        json_t *norm = t->add_space_prefix
            ? json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:{s:s}, s:s}]}", "type", "Sequence", "normalizers", "type",
                        "Prepend", "prepend", "\xe2\x96\x81", "type", "Replace", "pattern", "String", " ", "content",
                        "\xe2\x96\x81")
            : json_pack("{s:s, s:{s:s}, s:s}", "type", "Replace", "pattern", "String", " ", "content", "\xe2\x96\x81");
        json_object_set_new(root, "normalizer", J(norm));
        json_object_set_new(root, "pre_tokenizer", json_null());
    } else {
        json_t *pre;
        if (t->n_re == 1 && strcmp(t->re_src[0], tok_re_gpt2) == 0) {
            pre = json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 1,
                            "use_regex", 1);
        } else {
            json_t *seq = json_array();
            for (int i = 0; i < t->n_re && seq; i++)
                json_array_append_new(seq, J(json_pack("{s:s, s:{s:s}, s:s, s:b}", "type", "Split", "pattern", "Regex",
                                                       t->re_src[i], "behavior", "Isolated", "invert", 0)));
            json_array_append_new(seq, J(json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 0,
                                                   "trim_offsets", 1, "use_regex", 0)));
            pre = json_pack("{s:s, s:o}", "type", "Sequence", "pretokenizers", J(seq));
        }
        json_object_set_new(root, "normalizer", json_null());
        json_object_set_new(root, "pre_tokenizer", J(pre));
    }

    json_t *post;
    if (t->add_bos && t->bos >= 0) {
        const char *b = t->piece[t->bos];
        post = json_pack("{s:s, s:[{s:{s:s, s:i}}, {s:{s:s, s:i}}], s:[{s:{s:s, s:i}}, {s:{s:s, s:i}}, {s:{s:s, s:i}}, "
                         "{s:{s:s, s:i}}], s:{s:{s:s, s:[i], s:[s]}}}",
                         "type", "TemplateProcessing", "single", "SpecialToken", "id", b, "type_id", 0, "Sequence", "id",
                         "A", "type_id", 0, "pair", "SpecialToken", "id", b, "type_id", 0, "Sequence", "id", "A",
                         "type_id", 0, "SpecialToken", "id", b, "type_id", 1, "Sequence", "id", "B", "type_id", 1,
                         "special_tokens", b, "id", b, "ids", (json_int_t)t->bos, "tokens", b);
    } else if (!spm) {
        post = json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 1, "trim_offsets", 0,
                         "use_regex", 1);
    } else {
        post = json_null();
    }
    json_object_set_new(root, "post_processor", J(post));

    json_t *dec = spm
        ? json_pack("{s:s, s:[{s:s, s:{s:s}, s:s}, {s:s}, {s:s}, {s:s, s:s, s:i, s:i}]}", "type", "Sequence",
                    "decoders", "type", "Replace", "pattern", "String", "\xe2\x96\x81", "content", " ", "type",
                    "ByteFallback", "type", "Fuse", "type", "Strip", "content", " ", "start", t->add_space_prefix ? 1 : 0,
                    "stop", 0)
        : json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 1, "trim_offsets", 1,
                    "use_regex", 1);
    json_object_set_new(root, "decoder", J(dec));

    json_object_set_new(root, "model", J(build_model(t, spm, &ok)));
    *okp = ok;
    return root;
}

lq_status lq_tokenizer_save_hf_json(const lq_tokenizer *t, const char *path) {
    /* a tokenizer.json's pipeline (normalizers, pre-tokenizers, added-token flags) is not kept
     * in a form we could write back: copy that file instead of re-writing it */
    if (t->hf)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: the tokenizer was loaded from %s: copy that file instead", path,
                       t->src_path);
    bool ok = true;
    json_t *root = build(t, &ok);
    if (!root || !ok) {
        json_decref(root);
        return lq_fail(LQ_ERR_FORMAT, "%s: cannot represent the tokenizer as JSON (a piece is not valid UTF-8?)", path);
    }
    char *text = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    if (!text) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
    lq_status s = lq_file_write_all(path, text, strlen(text)); /* durable: temp, fsync, rename */
    free(text);
    return s;
}
