/* tok_load_hf_json.c - Hugging Face tokenizer.json (model.type "BPE").
 *
 * Which algorithm: byte_fallback, a Prepend/Metaspace "▁" normalizer or pre-tokenizer mean
 * SentencePiece-style BPE (Llama 2); a ByteLevel pre-tokenizer/decoder means byte-level BPE.
 * SPM files carry merges but no scores: a piece's score is minus the rank of the first merge
 * that produces it (HF's Llama converter writes merges ordered by the merged piece's score, so
 * the order is the same), and pieces no merge produces are never formed by merging.
 * Byte-level files: merges ("a b" strings or [a, b] pairs) give ranks.
 * Encoding follows the file's own pipeline (normalizers, pre-tokenizers, added tokens, BPE
 * options) through tok_hf_*.c, whichever of the two kinds it is; the kind only decides how ids
 * decode back to text. */
#include "tok_hf.h"
#include "libquant/lq_file.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Does `j` (a normalizer / pre-tokenizer / decoder, possibly a Sequence) contain `type`? */
static const json_t *find_type(const json_t *j, const char *type) {
    if (!json_is_object(j)) return NULL;
    const char *ty = json_string_value(json_object_get(j, "type"));
    if (ty && strcmp(ty, type) == 0) return j;
    static const char *const lists[] = {"normalizers", "pretokenizers", "decoders", "processors"};
    for (size_t k = 0; k < sizeof lists / sizeof lists[0]; k++) {
        const json_t *arr = json_object_get(j, lists[k]);
        size_t i;
        const json_t *e;
        json_array_foreach(arr, i, e) {
            const json_t *r = find_type(e, type);
            if (r) return r;
        }
    }
    return NULL;
}

/* One merge entry: "a b" or ["a", "b"]. */
static bool merge_parts(const json_t *m, const char **l, size_t *ll, const char **r, size_t *rl) {
    if (json_is_string(m)) {
        const char *s = json_string_value(m);
        size_t n = json_string_length(m);
        const char *sp = n > 1 ? memchr(s + 1, ' ', n - 1) : NULL;
        if (!sp) return false;
        *l = s;
        *ll = (size_t)(sp - s);
        *r = sp + 1;
        *rl = n - *ll - 1;
        return true;
    }
    if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
        json_is_string(json_array_get(m, 1))) {
        *l = json_string_value(json_array_get(m, 0));
        *ll = json_string_length(json_array_get(m, 0));
        *r = json_string_value(json_array_get(m, 1));
        *rl = json_string_length(json_array_get(m, 1));
        return true;
    }
    return false;
}

static int32_t find_cstr(const lq_tokenizer *t, const char *s) { return s ? tok_find(t, s, strlen(s)) : -1; }

static int32_t first_of(const lq_tokenizer *t, const char *const *names) {
    for (; *names; names++) {
        int32_t id = find_cstr(t, *names);
        if (id >= 0) return id;
    }
    return -1;
}

/* model.merges, in rank order; in SPM layout each merge's rank also scores the piece it makes
 * (the first merge to reach a piece gives its score). */
static lq_status load_merges(lq_tokenizer *t, const json_t *model, bool spm, const char *path) {
    const json_t *merges = json_object_get(model, "merges");
    size_t nm = json_is_array(merges) ? json_array_size(merges) : 0;
    lq_status st = tok_merges_reserve(t, (int64_t)nm, path);
    const json_t *csp = json_object_get(model, "continuing_subword_prefix");
    size_t r_skip = json_is_string(csp) ? json_string_length(csp) : 0;
    for (size_t r = 0; st == LQ_OK && r < nm; r++) {
        const char *l, *rr;
        size_t ll, rl;
        if (!merge_parts(json_array_get(merges, r), &l, &ll, &rr, &rl)) {
            st = lq_fail(LQ_ERR_FORMAT, "%s: model.merges[%zu] is not \"a b\" or [a, b]", path, r);
            break;
        }
        st = tok_add_merge_ex(t, l, ll, rr, rl, r_skip, true, path, (int64_t)r);
        if (st != LQ_OK || !spm) continue;
        char stack[512];
        char *cat = ll + rl <= sizeof stack ? stack : malloc(ll + rl);
        if (!cat) {
            st = lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        size_t skip = r_skip < rl ? r_skip : rl;
        memcpy(cat, l, ll);
        memcpy(cat + ll, rr + skip, rl - skip);
        int32_t id = tok_find(t, cat, ll + rl - skip);
        if (cat != stack) free(cat);
        if (id < 0) {
            st = lq_fail(LQ_ERR_FORMAT, "%s: model.merges[%zu]: merged piece is not in the vocabulary", path, r);
            break;
        }
        if (isinf(t->score[id])) t->score[id] = -(float)r;
    }
    return st;
}

/* BOS: the special token a TemplateProcessing post-processor puts first, else by name; EOS by
 * name. */
static void set_bos_eos(lq_tokenizer *t, const json_t *root, const json_t *model, bool spm) {
    const json_t *tp = find_type(json_object_get(root, "post_processor"), "TemplateProcessing");
    const json_t *first = tp ? json_array_get(json_object_get(tp, "single"), 0) : NULL;
    const json_t *sp = json_object_get(first, "SpecialToken");
    if (sp) {
        t->bos = find_cstr(t, json_string_value(json_object_get(sp, "id")));
        t->add_bos = t->bos >= 0;
    } else {
        static const char *const bos_names[] = {"<s>", "<|begin_of_text|>", "<|endoftext|>", NULL};
        t->bos = first_of(t, bos_names);
        /* Llama-2 files without a post-processor: transformers' LlamaTokenizerFast adds BOS */
        t->add_bos = spm && json_is_true(json_object_get(model, "byte_fallback")) &&
                     !json_object_get(root, "post_processor") && t->bos >= 0;
    }
    static const char *const eos_names[] = {"</s>", "<|end_of_text|>", "<|endoftext|>", "<|im_end|>", NULL};
    t->eos = first_of(t, eos_names);
}

static lq_status load(const json_t *root, const char *path, lq_tokenizer **out) {
    if (!json_is_object(root)) return lq_fail(LQ_ERR_FORMAT, "%s: not a JSON object", path);
    const json_t *model = json_object_get(root, "model");
    if (!json_is_object(model)) return lq_fail(LQ_ERR_FORMAT, "%s: no \"model\" object", path);
    const char *mtype = json_string_value(json_object_get(model, "type"));
    if (mtype && strcmp(mtype, "BPE") != 0)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: model.type '%s' is not supported (only BPE)", path, mtype);
    const json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab)) return lq_fail(LQ_ERR_FORMAT, "%s: model.vocab is missing or not an object", path);
    const json_t *merges = json_object_get(model, "merges");
    if (merges && !json_is_array(merges) && !json_is_null(merges))
        return lq_fail(LQ_ERR_FORMAT, "%s: model.merges is not an array", path);
    const json_t *norm = json_object_get(root, "normalizer"), *pre = json_object_get(root, "pre_tokenizer");
    const json_t *dec = json_object_get(root, "decoder"), *added = json_object_get(root, "added_tokens");

    const json_t *meta = find_type(pre, "Metaspace");
    bool spm = json_is_true(json_object_get(model, "byte_fallback")) || find_type(norm, "Prepend") || meta ||
               find_type(dec, "ByteFallback");
    bool bytelevel = find_type(pre, "ByteLevel") || find_type(dec, "ByteLevel");
    /* BPE over plain characters (no byte fallback, no byte-level alphabet: e.g. a Whitespace
     * pre-tokenizer with continuing_subword_prefix) encodes through the same pipeline and
     * decodes by the SPM rules ("▁" -> space, pieces concatenated) */
    if (!bytelevel) spm = true;
    /* a ByteLevel pre-tokenizer (or normalizer) maps bytes to the GPT-2 alphabet: the pieces are
     * byte-level whatever else the file says (transformers' conversion of a GGUF vocabulary
     * writes byte_fallback and a ByteFallback decoder next to it, as for SmolLM2) */
    if (find_type(pre, "ByteLevel") || find_type(norm, "ByteLevel")) spm = false;

    int64_t max_id = -1;
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)vocab, key, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= TOK_MAX_VOCAB)
            return lq_fail(LQ_ERR_FORMAT, "%s: model.vocab['%.64s']: id is not an integer in range", path, key);
        if (json_integer_value(v) > max_id) max_id = json_integer_value(v);
    }
    if (added && !json_is_array(added) && !json_is_null(added))
        return lq_fail(LQ_ERR_FORMAT, "%s: added_tokens is not an array", path);
    size_t i;
    json_array_foreach(added, i, v) {
        const json_t *id = json_object_get(v, "id");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= TOK_MAX_VOCAB ||
            !json_is_string(json_object_get(v, "content")))
            return lq_fail(LQ_ERR_FORMAT, "%s: added_tokens[%zu]: needs an integer id in range and a content string",
                           path, i);
        if (json_integer_value(id) > max_id) max_id = json_integer_value(id);
    }
    if (max_id < 0) return lq_fail(LQ_ERR_FORMAT, "%s: model.vocab is empty", path);
    /* Every id up to the largest gets a slot (tens of bytes each), so one stray id of 10^7 in a
     * few-entry file would cost hundreds of MB (a fuzzing finding). Real vocabularies number their
     * entries densely; allow generous holes, refuse the rest. */
    const int64_t entries = (int64_t)json_object_size(vocab) + (int64_t)json_array_size(added);
    if (max_id >= 2 * entries + TOK_MAX_ID_GAP)
        return lq_fail(LQ_ERR_FORMAT, "%s: token ids go up to %lld for %lld entries (ids this sparse are not a "
                       "vocabulary)", path, (long long)max_id, (long long)entries);

    lq_tokenizer *t;
    LQ_TRY(tok_new(spm ? LQ_TOK_SPM : LQ_TOK_BPE_BYTES, max_id + 1, path, &t));
    lq_status st = LQ_OK;
    const char *unk = json_string_value(json_object_get(model, "unk_token"));
    json_object_foreach((json_t *)vocab, key, v) {
        size_t n = strlen(key);
        int type = TOK_TYPE_NORMAL;
        if (spm && tok_parse_byte_piece(key, n) >= 0) type = TOK_TYPE_BYTE;
        if (unk && strcmp(unk, key) == 0) type = TOK_TYPE_UNKNOWN;
        st = tok_set_piece(t, (int32_t)json_integer_value(v), key, n, spm ? -INFINITY : 0.0f, type, path);
        if (st != LQ_OK) break;
    }
    json_array_foreach(added, i, v) {
        if (st != LQ_OK) break;
        const json_t *c = json_object_get(v, "content");
        int32_t id = (int32_t)json_integer_value(json_object_get(v, "id"));
        int type = json_is_true(json_object_get(v, "special")) ? TOK_TYPE_CONTROL : TOK_TYPE_USER_DEFINED;
        if (unk && strcmp(unk, json_string_value(c)) == 0) type = TOK_TYPE_UNKNOWN;
        st = tok_set_piece(t, id, json_string_value(c), json_string_length(c), 0.0f, type, path);
    }
    if (st == LQ_OK) st = tok_finalize(t, path);
    t->unk = find_cstr(t, unk);

    if (st == LQ_OK) st = load_merges(t, model, spm, path);

    if (st == LQ_OK) {
        t->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
        st = tok_hf_load(t, root, path);
    }
    if (st == LQ_OK && spm) {
        /* dummy prefix: Prepend("▁") normalizer (Llama 2 layout) or Metaspace prepend_scheme */
        t->add_space_prefix = find_type(norm, "Prepend") != NULL;
        if (meta) {
            const char *ps = json_string_value(json_object_get(meta, "prepend_scheme"));
            if (ps ? strcmp(ps, "never") != 0 : json_is_true(json_object_get(meta, "add_prefix_space")))
                t->add_space_prefix = true;
        }
    }
    set_bos_eos(t, root, model, spm);
    if (st != LQ_OK) {
        lq_tokenizer_free(t);
        return st;
    }
    *out = t;
    return LQ_OK;
}

lq_status lq_tokenizer_load_hf_json(const char *path, lq_tokenizer **out) {
    *out = NULL;
    FILE *f;
    LQ_TRY(lq_file_fopen_input(path, &f));
    json_error_t err;
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &err);
    fclose(f);
    if (!root) return lq_fail(LQ_ERR_FORMAT, "%s: line %d: invalid JSON: %s", path, err.line, err.text);
    lq_status st = load(root, path, out);
    json_decref(root);
    return st;
}
