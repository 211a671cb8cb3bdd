/* tok_hf_load.c - compile a tokenizer.json's normalizer, pre_tokenizer, added_tokens and BPE
 * model options into the pipeline of tok_hf.h.
 *
 * Supported normalizers: Sequence, Prepend, Replace (String / Regex), Lowercase, Strip,
 * StripAccents, NFC, NFD, NFKC, NFKD, ByteLevel.
 * Supported pre-tokenizers: Sequence, Metaspace, Split (String / Regex, every behavior, invert),
 * ByteLevel, Whitespace, WhitespaceSplit, Punctuation, Digits, BertPreTokenizer,
 * CharDelimiterSplit.
 * Anything else (Precompiled, BertNormalizer, Nmt, Replace with an empty pattern, UnicodeScripts,
 * FixedLength, a non-zero BPE dropout, ...) is refused by name: tokenizing with a step left out
 * gives other ids than the model was trained on, silently. */
#include "tok_hf.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Rust regex's \w (Alphabetic, marks, decimal digits, connector punctuation, joiners) and \s
 * (White_Space), for the Whitespace pre-tokenizer's `\w+|[^\w\s]+`. */
#define RE_W "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}"
static const char re_whitespace[] = "[" RE_W "]+|[^" RE_W "\\p{White_Space}]+";

void tok_hf_free(tok_hf *h) {
    if (!h) return;
    for (int i = 0; i < h->n_norm; i++) {
        free(h->norm[i].s);
        free(h->norm[i].s2);
        free(h->norm[i].re_src);
        pcre2_code_free(h->norm[i].re);
    }
    for (int i = 0; i < h->n_pre; i++) {
        free(h->pre[i].s);
        free(h->pre[i].re_src);
        pcre2_code_free(h->pre[i].re);
    }
    for (int i = 0; i < h->n_added; i++) free(h->added[i].content);
    free(h->norm);
    free(h->pre);
    free(h->added);
    free(h->cont_prefix);
    free(h->eow_suffix);
    free(h);
}

static lq_status nomem(const char *path) { return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path); }

static char *dup_n(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

/* Compile a pattern (`literal`: match the text as is). `what` names the place in messages. */
static lq_status compile(const char *src, size_t n, bool literal, const char *what, const char *path,
                         pcre2_code **out, char **src_out) {
    int err;
    PCRE2_SIZE off;
    uint32_t opts = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
#ifdef PCRE2_MATCH_INVALID_UTF
    opts |= PCRE2_MATCH_INVALID_UTF; /* text that is not UTF-8 never matches instead of erroring */
#endif
    /* onig (the library's regex engine) reads \uHHHH; PCRE2 does with ALT_BSUX, and
     * EXTRA_ALT_BSUX keeps \x{...} */
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    if (!cc) return nomem(path);
    if (!literal) {
        opts |= PCRE2_ALT_BSUX;
        pcre2_set_compile_extra_options(cc, PCRE2_EXTRA_ALT_BSUX);
    }
    *out = pcre2_compile((PCRE2_SPTR)src, n, opts, &err, &off, cc);
    pcre2_compile_context_free(cc);
    if (!*out) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return lq_fail(LQ_ERR_FORMAT, "%s: %s regex '%.*s': offset %zu: %s", path, what, (int)(n > 200 ? 200 : n),
                       src, (size_t)off, (const char *)msg);
    }
    (void)pcre2_jit_compile(*out, PCRE2_JIT_COMPLETE); /* a speed-up; the interpreter is the fallback */
    *src_out = dup_n(src, n);
    return *src_out ? LQ_OK : nomem(path);
}

/* {"String": s} or {"Regex": r}: the pattern text and whether it is literal. */
static lq_status pattern(const json_t *j, const char *what, const char *path, const char **s, size_t *n, bool *literal) {
    const json_t *v = json_object_get(j, "String");
    *literal = v != NULL;
    if (!v) v = json_object_get(j, "Regex");
    if (!json_is_string(v))
        return lq_fail(LQ_ERR_FORMAT, "%s: %s: pattern is not {\"String\": ...} or {\"Regex\": ...}", path, what);
    *s = json_string_value(v);
    *n = json_string_length(v);
    if (*n == 0) return lq_fail(LQ_ERR_UNSUPPORTED, "%s: %s with an empty pattern is not supported", path, what);
    return LQ_OK;
}

static const char *type_of(const json_t *j) { return json_string_value(json_object_get(j, "type")); }

/* ---- normalizers ---------------------------------------------------------------------------- */

static hf_norm *new_norm(tok_hf *h, hf_norm_kind k) {
    hf_norm *v = realloc(h->norm, (size_t)(h->n_norm + 1) * sizeof *v);
    if (!v) return NULL;
    h->norm = v;
    v[h->n_norm] = (hf_norm){.kind = k};
    return &v[h->n_norm++];
}

static lq_status add_normalizer(tok_hf *h, const json_t *j, const char *path, int depth) {
    if (!j || json_is_null(j)) return LQ_OK;
    const char *ty = type_of(j);
    if (!ty) return lq_fail(LQ_ERR_FORMAT, "%s: normalizer without a type", path);
    if (depth > 8) return lq_fail(LQ_ERR_UNSUPPORTED, "%s: normalizer Sequences nested too deep", path);
    if (strcmp(ty, "Sequence") == 0) {
        const json_t *arr = json_object_get(j, "normalizers"), *e;
        if (!json_is_array(arr)) return lq_fail(LQ_ERR_FORMAT, "%s: normalizer Sequence without a list", path);
        size_t i;
        json_array_foreach(arr, i, e) LQ_TRY(add_normalizer(h, e, path, depth + 1));
        return LQ_OK;
    }
    static const struct { const char *name; hf_norm_kind k; } plain[] = {
        {"Lowercase", HFN_LOWERCASE}, {"StripAccents", HFN_STRIP_ACCENTS}, {"NFC", HFN_NFC}, {"NFD", HFN_NFD},
        {"NFKC", HFN_NFKC},           {"NFKD", HFN_NFKD},                  {"ByteLevel", HFN_BYTELEVEL},
    };
    for (size_t k = 0; k < sizeof plain / sizeof plain[0]; k++)
        if (strcmp(ty, plain[k].name) == 0) return new_norm(h, plain[k].k) ? LQ_OK : nomem(path);
    if (strcmp(ty, "Prepend") == 0) {
        const json_t *p = json_object_get(j, "prepend");
        if (!json_is_string(p)) return lq_fail(LQ_ERR_FORMAT, "%s: Prepend normalizer without a string", path);
        hf_norm *nm = new_norm(h, HFN_PREPEND);
        if (!nm || !(nm->s = dup_n(json_string_value(p), json_string_length(p)))) return nomem(path);
        nm->n = json_string_length(p);
        return LQ_OK;
    }
    if (strcmp(ty, "Strip") == 0) {
        hf_norm *nm = new_norm(h, HFN_STRIP);
        if (!nm) return nomem(path);
        nm->left = json_is_true(json_object_get(j, "strip_left"));
        nm->right = json_is_true(json_object_get(j, "strip_right"));
        return LQ_OK;
    }
    if (strcmp(ty, "Replace") == 0) {
        const char *s;
        size_t n;
        bool lit;
        LQ_TRY(pattern(json_object_get(j, "pattern"), "Replace normalizer", path, &s, &n, &lit));
        const json_t *c = json_object_get(j, "content");
        if (!json_is_string(c)) return lq_fail(LQ_ERR_FORMAT, "%s: Replace normalizer without a content string", path);
        hf_norm *nm = new_norm(h, lit ? HFN_REPLACE_STR : HFN_REPLACE_RE);
        if (!nm || !(nm->s = dup_n(s, n)) || !(nm->s2 = dup_n(json_string_value(c), json_string_length(c))))
            return nomem(path);
        nm->n = n;
        nm->n2 = json_string_length(c);
        return lit ? LQ_OK : compile(s, n, false, "Replace normalizer", path, &nm->re, &nm->re_src);
    }
    return lq_fail(LQ_ERR_UNSUPPORTED, "%s: normalizer type '%s' is not supported", path, ty);
}

/* ---- pre-tokenizers ------------------------------------------------------------------------- */

static hf_pre *new_pre(tok_hf *h, hf_pre_kind k) {
    hf_pre *v = realloc(h->pre, (size_t)(h->n_pre + 1) * sizeof *v);
    if (!v) return NULL;
    h->pre = v;
    v[h->n_pre] = (hf_pre){.kind = k};
    return &v[h->n_pre++];
}

static lq_status behavior(const json_t *j, hf_split_beh dflt, const char *what, const char *path, hf_split_beh *out) {
    const char *b = json_string_value(json_object_get(j, "behavior"));
    static const char *const names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    *out = dflt;
    if (!b) return LQ_OK;
    for (int k = 0; k < 5; k++)
        if (strcmp(b, names[k]) == 0) {
            *out = (hf_split_beh)k;
            return LQ_OK;
        }
    return lq_fail(LQ_ERR_UNSUPPORTED, "%s: %s behavior '%s' is not supported", path, what, b);
}

static lq_status add_char_split(tok_hf *h, hf_char_class cls, uint32_t cp, hf_split_beh beh, const char *path) {
    hf_pre *p = new_pre(h, HFP_SPLIT_CHAR);
    if (!p) return nomem(path);
    p->cls = cls;
    p->cp = cp;
    p->beh = beh;
    return LQ_OK;
}

static lq_status add_re_split(tok_hf *h, const char *re, size_t n, bool literal, hf_split_beh beh, bool invert,
                              const char *what, const char *path) {
    hf_pre *p = new_pre(h, HFP_SPLIT_RE);
    if (!p) return nomem(path);
    p->beh = beh;
    p->invert = invert;
    return compile(re, n, literal, what, path, &p->re, &p->re_src);
}

/* The one code point of a string, or -1. */
static int32_t single_cp(const char *s, size_t n) {
    size_t k = n ? tok_utf8_len((const unsigned char *)s, n) : 0;
    if (k == 0 || k != n) return -1;
    if (k == 1) return (unsigned char)s[0];
    int32_t c = (unsigned char)s[0] & (0x7F >> k);
    for (size_t i = 1; i < k; i++) c = c << 6 | ((unsigned char)s[i] & 0x3F);
    return c;
}

static lq_status add_metaspace(tok_hf *h, const json_t *j, const char *path) {
    const json_t *r = json_object_get(j, "replacement");
    const char *rs = json_string_value(r);
    int32_t cp = rs ? single_cp(rs, json_string_length(r)) : -1;
    if (cp < 0) return lq_fail(LQ_ERR_FORMAT, "%s: Metaspace replacement must be one character", path);
    hf_prepend_scheme sc = HFS_ALWAYS;
    const char *ps = json_string_value(json_object_get(j, "prepend_scheme"));
    if (ps) {
        if (strcmp(ps, "always") == 0) sc = HFS_ALWAYS;
        else if (strcmp(ps, "first") == 0) sc = HFS_FIRST;
        else if (strcmp(ps, "never") == 0) sc = HFS_NEVER;
        else return lq_fail(LQ_ERR_UNSUPPORTED, "%s: Metaspace prepend_scheme '%s' is not supported", path, ps);
    } else if (json_is_false(json_object_get(j, "add_prefix_space"))) {
        sc = HFS_NEVER; /* the older layout: add_prefix_space instead of prepend_scheme */
    }
    hf_pre *p = new_pre(h, HFP_METASPACE);
    if (!p || !(p->s = dup_n(rs, json_string_length(r)))) return nomem(path);
    p->n = json_string_length(r);
    p->scheme = sc;
    const json_t *split = json_object_get(j, "split");
    if (split && !json_is_true(split)) return LQ_OK;
    return add_char_split(h, HFC_CHAR, (uint32_t)cp, HFB_MERGED_NEXT, path);
}

static lq_status add_pre(tok_hf *h, const json_t *j, const char *path, int depth) {
    if (!j || json_is_null(j)) return LQ_OK;
    const char *ty = type_of(j);
    if (!ty) return lq_fail(LQ_ERR_FORMAT, "%s: pre_tokenizer without a type", path);
    if (depth > 8) return lq_fail(LQ_ERR_UNSUPPORTED, "%s: pre_tokenizer Sequences nested too deep", path);
    hf_split_beh beh;
    if (strcmp(ty, "Sequence") == 0) {
        const json_t *arr = json_object_get(j, "pretokenizers"), *e;
        if (!json_is_array(arr)) return lq_fail(LQ_ERR_FORMAT, "%s: pre_tokenizer Sequence without a list", path);
        size_t i;
        json_array_foreach(arr, i, e) LQ_TRY(add_pre(h, e, path, depth + 1));
        return LQ_OK;
    }
    if (strcmp(ty, "Metaspace") == 0) return add_metaspace(h, j, path);
    if (strcmp(ty, "ByteLevel") == 0) {
        const json_t *aps = json_object_get(j, "add_prefix_space"), *ur = json_object_get(j, "use_regex");
        if (!json_is_boolean(aps)) /* the library refuses the file too */
            return lq_fail(LQ_ERR_FORMAT, "%s: ByteLevel pre-tokenizer without add_prefix_space", path);
        if (json_is_true(aps) && !new_pre(h, HFP_PREFIX_SPACE)) return nomem(path);
        if (!ur || json_is_true(ur))
            LQ_TRY(add_re_split(h, tok_re_gpt2, strlen(tok_re_gpt2), false, HFB_ISOLATED, false, "ByteLevel", path));
        return new_pre(h, HFP_BYTEMAP) ? LQ_OK : nomem(path);
    }
    if (strcmp(ty, "Split") == 0) {
        const char *s;
        size_t n;
        bool lit;
        LQ_TRY(pattern(json_object_get(j, "pattern"), "Split pre-tokenizer", path, &s, &n, &lit));
        LQ_TRY(behavior(j, HFB_ISOLATED, "Split pre-tokenizer", path, &beh));
        if (!json_object_get(j, "behavior"))
            return lq_fail(LQ_ERR_FORMAT, "%s: Split pre-tokenizer without a behavior", path);
        return add_re_split(h, s, n, lit, beh, json_is_true(json_object_get(j, "invert")), "Split pre-tokenizer", path);
    }
    if (strcmp(ty, "Whitespace") == 0)
        return add_re_split(h, re_whitespace, strlen(re_whitespace), false, HFB_REMOVED, true, "Whitespace", path);
    if (strcmp(ty, "WhitespaceSplit") == 0) return add_char_split(h, HFC_WHITESPACE, 0, HFB_REMOVED, path);
    if (strcmp(ty, "Punctuation") == 0) {
        LQ_TRY(behavior(j, HFB_ISOLATED, "Punctuation pre-tokenizer", path, &beh));
        return add_char_split(h, HFC_PUNCT, 0, beh, path);
    }
    if (strcmp(ty, "Digits") == 0)
        return add_char_split(h, HFC_NUMERIC, 0,
                              json_is_true(json_object_get(j, "individual_digits")) ? HFB_ISOLATED : HFB_CONTIGUOUS, path);
    if (strcmp(ty, "BertPreTokenizer") == 0) {
        LQ_TRY(add_char_split(h, HFC_WHITESPACE, 0, HFB_REMOVED, path));
        return add_char_split(h, HFC_PUNCT, 0, HFB_ISOLATED, path);
    }
    if (strcmp(ty, "CharDelimiterSplit") == 0) {
        const json_t *d = json_object_get(j, "delimiter");
        int32_t cp = json_is_string(d) ? single_cp(json_string_value(d), json_string_length(d)) : -1;
        if (cp < 0) return lq_fail(LQ_ERR_FORMAT, "%s: CharDelimiterSplit delimiter must be one character", path);
        return add_char_split(h, HFC_CHAR, (uint32_t)cp, HFB_REMOVED, path);
    }
    return lq_fail(LQ_ERR_UNSUPPORTED, "%s: pre_tokenizer type '%s' is not supported", path, ty);
}

/* ---- added tokens and the model ------------------------------------------------------------- */

static int cmp_added(const void *a, const void *b) {
    const hf_added *x = a, *y = b;
    if (x->n != y->n) return x->n > y->n ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static lq_status load_added(lq_tokenizer *t, const json_t *added, const char *path) {
    tok_hf *h = t->hf;
    size_t n = json_is_array(added) ? json_array_size(added) : 0;
    h->added = calloc(n ? n : 1, sizeof *h->added);
    if (!h->added) return nomem(path);
    hf_buf b = {0};
    lq_status st = LQ_OK;
    for (size_t i = 0; i < n && st == LQ_OK; i++) {
        const json_t *e = json_array_get(added, i), *c = json_object_get(e, "content");
        hf_added *a = &h->added[h->n_added];
        a->id = (int32_t)json_integer_value(json_object_get(e, "id"));
        a->special = json_is_true(json_object_get(e, "special"));
        /* the library's default: normalized unless special */
        const json_t *nz = json_object_get(e, "normalized");
        a->normalized = nz ? json_is_true(nz) : !a->special;
        a->lstrip = json_is_true(json_object_get(e, "lstrip"));
        a->rstrip = json_is_true(json_object_get(e, "rstrip"));
        a->single_word = json_is_true(json_object_get(e, "single_word"));
        const char *s = json_string_value(c);
        size_t sn = json_string_length(c);
        if (a->normalized) {
            bool lead0 = true;
            st = tok_hf_normalize(t, s, sn, false, &b, &lead0);
            s = b.p;
            sn = b.n;
        }
        if (st == LQ_OK && sn == 0) continue; /* never matches */
        if (st == LQ_OK && !(a->content = dup_n(s, sn))) st = nomem(path);
        a->n = sn;
        if (st == LQ_OK) h->added_first[a->normalized][(unsigned char)a->content[0]] = true;
        if (st == LQ_OK) h->n_added++;
    }
    free(b.p);
    qsort(h->added, (size_t)h->n_added, sizeof *h->added, cmp_added);
    return st;
}

static lq_status opt_string(const json_t *model, const char *key, const char *path, char **out, size_t *n) {
    const json_t *v = json_object_get(model, key);
    *out = NULL;
    *n = 0;
    if (!v || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0)) return LQ_OK; /* "" = none */
    if (!json_is_string(v)) return lq_fail(LQ_ERR_FORMAT, "%s: model.%s is not a string", path, key);
    *n = json_string_length(v);
    *out = dup_n(json_string_value(v), *n);
    return *out ? LQ_OK : nomem(path);
}

lq_status tok_hf_load(lq_tokenizer *t, const json_t *root, const char *path) {
    const json_t *model = json_object_get(root, "model");
    tok_hf *h = calloc(1, sizeof *h);
    if (!h) return nomem(path);
    t->hf = h;
    const json_t *dropout = json_object_get(model, "dropout");
    if (dropout && !json_is_null(dropout) && !(json_is_number(dropout) && json_number_value(dropout) == 0.0))
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: model.dropout is set (random merges): not supported", path);
    h->fuse_unk = json_is_true(json_object_get(model, "fuse_unk"));
    h->byte_fallback = json_is_true(json_object_get(model, "byte_fallback"));
    h->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
    LQ_TRY(opt_string(model, "continuing_subword_prefix", path, &h->cont_prefix, &h->cont_n));
    LQ_TRY(opt_string(model, "end_of_word_suffix", path, &h->eow_suffix, &h->eow_n));
    const json_t *unk = json_object_get(model, "unk_token");
    h->unk = -1;
    if (json_is_string(unk)) {
        h->unk = tok_find(t, json_string_value(unk), json_string_length(unk));
        h->unk_missing = h->unk < 0;
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        h->byte_tok[b] = tok_find(t, name, 6);
    }
    LQ_TRY(add_normalizer(h, json_object_get(root, "normalizer"), path, 0));
    LQ_TRY(add_pre(h, json_object_get(root, "pre_tokenizer"), path, 0));
    return load_added(t, json_object_get(root, "added_tokens"), path);
}

bool tok_hf_cut_rules(const lq_tokenizer *t, bool *words, bool *lines) {
    const tok_hf *h = t->hf;
    static const char ws[] = "\xe2\x96\x81";
    *words = *lines = false;
    if (h->n_added && h->added[0].n) { /* added tokens are cut out of the text: no rule covers them */
        for (int i = 0; i < h->n_added; i++)
            if (!h->added[i].special) return false;
    }
    if (t->kind == LQ_TOK_BPE_BYTES)
        return h->n_norm == 0 && h->n_pre == 2 && h->pre[0].kind == HFP_SPLIT_RE &&
               strcmp(h->pre[0].re_src, tok_re_gpt2) == 0 && h->pre[0].beh == HFB_ISOLATED && !h->pre[0].invert &&
               h->pre[1].kind == HFP_BYTEMAP && !h->ignore_merges && (*words = true);
    bool llama2 = h->n_norm == 2 && h->norm[0].kind == HFN_PREPEND && h->norm[0].n == 3 &&
                  memcmp(h->norm[0].s, ws, 3) == 0 && h->norm[1].kind == HFN_REPLACE_STR && h->norm[1].n == 1 &&
                  h->norm[1].s[0] == ' ' && h->norm[1].n2 == 3 && memcmp(h->norm[1].s2, ws, 3) == 0 && h->n_pre == 0;
    bool meta = h->n_norm == 0 && h->n_pre >= 1 && h->n_pre <= 2 && h->pre[0].kind == HFP_METASPACE &&
                h->pre[0].n == 3 && memcmp(h->pre[0].s, ws, 3) == 0 && h->pre[0].scheme == HFS_FIRST &&
                (h->n_pre == 1 || (h->pre[1].kind == HFP_SPLIT_CHAR && h->pre[1].beh == HFB_MERGED_NEXT));
    if (!llama2 && !meta) return false;
    if (h->cont_prefix || h->eow_suffix || h->ignore_merges) return false;
    *words = tok_find(t, ws, 3) >= 0;
    *lines = tok_find(t, "\n", 1) >= 0;
    return true;
}
