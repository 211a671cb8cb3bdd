/* tok_hf_encode.c - the tokenizer.json pipeline end to end (see tok_hf.h): added tokens cut out
 * of the raw text, normalizers, added tokens cut out of the normalized text, pre-tokenizers,
 * BPE per word.
 *
 * Added tokens are found as the library's AddedVocabulary does (aho-corasick, leftmost-longest,
 * non-overlapping; single_word / lstrip / rstrip applied to each match). Without parse_added
 * (our parse_special = false) special added tokens are text, as the library's
 * encode_special_tokens; non-special ones are always cut out, as in the library and llama.cpp. */
#include "tok_hf.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

typedef struct enc {
    const lq_tokenizer *t;
    tok_ids *out;
    bool lead, parse_added;
    hf_buf norm;
    hf_words a, b;
} enc;

static bool is_word_char(int32_t c) {
    if (c == '_') return true;
    utf8proc_category_t k = utf8proc_category(c);
    return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) || (k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO);
}

/* The code point ending at s[end) (or -1). */
static int32_t cp_before(const char *s, size_t end, size_t *start) {
    size_t p = end - 1;
    while (p > 0 && end - p < 4 && ((unsigned char)s[p] & 0xC0) == 0x80) p--;
    int32_t c;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + p, (utf8proc_ssize_t)(end - p), &c);
    *start = p;
    return (k > 0 && (size_t)k == end - p) ? c : -1;
}

static int32_t cp_at(const char *s, size_t n, size_t i, size_t *len) {
    int32_t c;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &c);
    *len = k > 0 ? (size_t)k : 1;
    return k > 0 ? c : -1;
}

/* Longest added token of the given `normalized` class matching at s[i], or NULL. */
static const hf_added *added_at(const enc *e, const char *s, size_t n, size_t i, bool normalized) {
    const tok_hf *h = e->t->hf;
    if (!h->added_first[normalized][(unsigned char)s[i]]) return NULL;
    for (int k = 0; k < h->n_added; k++) {
        const hf_added *a = &h->added[k];
        if (a->normalized != normalized || (a->special && !e->parse_added)) continue;
        if (a->n <= n - i && memcmp(s + i, a->content, a->n) == 0) return a;
    }
    return NULL;
}

typedef lq_status (*text_fn)(enc *e, const char *s, size_t n, bool at0);

/* Cut s[0..n) at the added tokens of one class; text between them goes to `fn` (at0: the piece
 * starts at s[0]). */
static lq_status cut_added(enc *e, const char *s, size_t n, bool normalized, text_fn fn) {
    const tok_hf *h = e->t->hf;
    bool any = false;
    for (int k = 0; k < h->n_added && !any; k++)
        any = h->added[k].normalized == normalized && (!h->added[k].special || e->parse_added);
    size_t start_off = 0;
    for (size_t i = 0; any && i < n;) {
        const hf_added *a = added_at(e, s, n, i, normalized);
        if (!a) {
            i++;
            continue;
        }
        size_t start = i, stop = i + a->n, len;
        i = stop;
        if (a->single_word) {
            size_t p;
            bool word_before = start > 0 && is_word_char(cp_before(s, start, &p));
            bool word_after = stop < n && is_word_char(cp_at(s, n, stop, &len));
            if (word_before || word_after) continue;
        }
        if (a->lstrip) {
            size_t p = start;
            while (p > start_off) {
                size_t q;
                int32_t c = cp_before(s, p, &q);
                if (c < 0 || !tok_hf_is_white(c)) break;
                p = q;
            }
            start = p;
        }
        if (a->rstrip) {
            while (stop < n) {
                int32_t c = cp_at(s, n, stop, &len);
                if (c < 0 || !tok_hf_is_white(c)) break;
                stop += len;
            }
            i = stop;
        }
        if (start > start_off) LQ_TRY(fn(e, s + start_off, start - start_off, start_off == 0));
        if (!tok_ids_push(e->out, a->id)) return lq_fail(LQ_ERR_NOMEM, "tokenizer: out of memory");
        start_off = stop;
    }
    if (n > start_off) return fn(e, s + start_off, n - start_off, start_off == 0);
    return LQ_OK;
}

/* Normalized text without added tokens: pre-tokenize, BPE each word. `first` is carried in
 * e->lead for this call (set by normalized_text). */
static lq_status words_of(enc *e, const char *s, size_t n, bool at0) {
    e->a.n = e->a.buf.n = 0;
    if (!hf_words_add(&e->a, s, n, at0 && e->lead)) return lq_fail(LQ_ERR_NOMEM, "tokenizer: out of memory");
    hf_words *w;
    LQ_TRY(tok_hf_pretokenize(e->t, &e->a, &e->b, &w));
    for (size_t i = 0; i < w->n; i++) LQ_TRY(tok_hf_bpe_word(e->t, w->buf.p + w->off[i], w->len[i], e->out));
    return LQ_OK;
}

/* A raw fragment between non-normalized added tokens. */
static lq_status raw_text(enc *e, const char *s, size_t n, bool at0) {
    bool lead0 = at0 && e->lead;
    LQ_TRY(tok_hf_normalize(e->t, s, n, at0 && !e->lead, &e->norm, &lead0));
    /* the normalized text is cut again: keep it out of e->norm, which the next fragment reuses */
    hf_buf mine = e->norm;
    e->norm = (hf_buf){0};
    bool saved = e->lead;
    e->lead = lead0;
    lq_status st = cut_added(e, mine.p ? mine.p : "", mine.n, true, words_of);
    e->lead = saved;
    free(mine.p);
    return st;
}

lq_status tok_hf_encode(const lq_tokenizer *t, const char *text, size_t len, bool lead, bool parse_added,
                        tok_ids *out) {
    enc e = {.t = t, .out = out, .lead = lead, .parse_added = parse_added};
    lq_status st = cut_added(&e, text, len, false, raw_text);
    free(e.norm.p);
    hf_words_free(&e.a);
    hf_words_free(&e.b);
    return st;
}
