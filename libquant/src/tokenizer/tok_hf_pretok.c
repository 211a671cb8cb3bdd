/* tok_hf_pretok.c - tokenizer.json pre-tokenizers, as the `tokenizers` library runs them
 * (tokenizers/src/pre_tokenizers and NormalizedString::split).
 *
 * Every pre-tokenizer was compiled at load time (tok_hf_load.c) into primitive steps; each step
 * maps every word of the current list to zero or more words of the next one. A split step
 * first lists the pattern's matches and the gaps between them, in order, then folds that list
 * by the SplitDelimiterBehavior exactly as NormalizedString::split does (empty pieces included
 * in the fold, dropped at the end), so Contiguous / MergedWith* agree on every corner. */
#include "tok_hf.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

bool hf_words_add(hf_words *w, const char *s, size_t n, bool first) {
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        size_t *o = realloc(w->off, cap * sizeof *o);
        if (!o) return false;
        w->off = o;
        size_t *l = realloc(w->len, cap * sizeof *l);
        if (!l) return false;
        w->len = l;
        bool *f = realloc(w->first, cap * sizeof *f);
        if (!f) return false;
        w->first = f;
        w->cap = cap;
    }
    w->off[w->n] = w->buf.n;
    w->len[w->n] = n;
    w->first[w->n] = first;
    if (!hf_buf_put(&w->buf, s, n)) return false;
    w->n++;
    return true;
}

void hf_words_free(hf_words *w) {
    free(w->buf.p);
    free(w->off);
    free(w->len);
    free(w->first);
    memset(w, 0, sizeof *w);
}

/* ---- match lists ---------------------------------------------------------------------------- */

typedef struct span {
    size_t a, b;
    bool m; /* a match (or, after the fold, a piece to remove) */
} span;

typedef struct spans {
    span *v;
    size_t n, cap;
} spans;

static bool spans_push(spans *s, size_t a, size_t b, bool m) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        span *v = realloc(s->v, cap * sizeof *v);
        if (!v) return false;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (span){a, b, m};
    return true;
}

static bool char_in_class(const hf_pre *p, int32_t c) {
    if (c < 0) return false;
    switch (p->cls) {
    case HFC_WHITESPACE: return tok_hf_is_white(c);
    case HFC_PUNCT: {
        /* tokenizers' is_punc: char::is_ascii_punctuation or a Unicode P* category */
        if (c < 0x80) return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
                             (c >= 0x7B && c <= 0x7E);
        utf8proc_category_t k = utf8proc_category(c);
        return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
    }
    case HFC_NUMERIC: {
        utf8proc_category_t k = utf8proc_category(c);
        return k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO;
    }
    case HFC_CHAR: return (uint32_t)c == p->cp;
    }
    return false;
}

/* Pattern `Fn(char) -> bool`: every matching character is a match of its own. */
static bool find_chars(const hf_pre *p, const char *s, size_t n, spans *out) {
    size_t last = 0;
    for (size_t i = 0; i < n;) {
        int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &c);
        if (k <= 0) {
            c = -1;
            k = 1;
        }
        if (char_in_class(p, c)) {
            if (last < i && !spans_push(out, last, i, false)) return false;
            if (!spans_push(out, i, i + (size_t)k, true)) return false;
            last = i + (size_t)k;
        }
        i += (size_t)k;
    }
    return last >= n || spans_push(out, last, n, false);
}

/* Pattern regex, as onig's find_iter: an empty match right where the previous match ended is
 * skipped (the search moves on by one character). */
static lq_status find_re(const lq_tokenizer *t, const hf_pre *p, pcre2_match_data *md, const char *s, size_t n,
                         spans *out) {
    size_t prev = 0, pos = 0;
    bool have_last = false;
    size_t last_end = 0;
    while (pos <= n) {
        int rc = pcre2_match(p->re, (PCRE2_SPTR)s, n, pos, 0, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) return tok_regex_error(t, p->re_src, rc, pos);
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (ms == me && have_last && last_end == me) {
            if (ms >= n) break;
            pos = ms + tok_utf8_len((const unsigned char *)s + ms, n - ms);
            continue;
        }
        if (prev != ms && !spans_push(out, prev, ms, false)) goto nomem;
        if (!spans_push(out, ms, me, true)) goto nomem;
        prev = me;
        have_last = true;
        last_end = me;
        pos = me;
    }
    if (prev != n && !spans_push(out, prev, n, false)) goto nomem;
    return LQ_OK;
nomem:
    return lq_fail(LQ_ERR_NOMEM, "tokenizer: out of memory");
}

/* Fold the match list by behavior into pieces (m = remove), in place. */
static void fold(spans *s, hf_split_beh beh, bool invert) {
    if (invert)
        for (size_t i = 0; i < s->n; i++) s->v[i].m = !s->v[i].m;
    size_t k = 0;
    bool prev = false;
    switch (beh) {
    case HFB_ISOLATED:
        for (size_t i = 0; i < s->n; i++) s->v[i].m = false;
        return;
    case HFB_REMOVED: return;
    case HFB_CONTIGUOUS:
        for (size_t i = 0; i < s->n; i++) {
            span e = s->v[i];
            if (e.m == prev && k > 0) s->v[k - 1].b = e.b;
            else s->v[k++] = (span){e.a, e.b, false};
            prev = e.m;
        }
        break;
    case HFB_MERGED_PREV:
        for (size_t i = 0; i < s->n; i++) {
            span e = s->v[i];
            if (e.m && !prev && k > 0) s->v[k - 1].b = e.b;
            else s->v[k++] = (span){e.a, e.b, false};
            prev = e.m;
        }
        break;
    case HFB_MERGED_NEXT:
        /* right to left, writing from the end: k counts pieces kept at the top */
        for (size_t i = s->n; i-- > 0;) {
            span e = s->v[i];
            if (e.m && !prev && k > 0) s->v[s->n - k].a = e.a;
            else {
                k++;
                s->v[s->n - k] = (span){e.a, e.b, false};
            }
            prev = e.m;
        }
        memmove(s->v, s->v + (s->n - k), k * sizeof *s->v);
        break;
    }
    s->n = k;
}

/* ---- steps ---------------------------------------------------------------------------------- */

static lq_status split_step(const lq_tokenizer *t, const hf_pre *p, const hf_words *in, hf_words *out) {
    spans sp = {0};
    pcre2_match_data *md = p->re ? pcre2_match_data_create_from_pattern(p->re, NULL) : NULL;
    lq_status st = LQ_OK;
    if (p->re && !md) goto nomem;
    for (size_t w = 0; w < in->n && st == LQ_OK; w++) {
        const char *s = in->buf.p + in->off[w];
        size_t n = in->len[w];
        sp.n = 0;
        if (p->kind == HFP_SPLIT_RE) st = find_re(t, p, md, s, n, &sp);
        else if (!find_chars(p, s, n, &sp)) goto nomem;
        if (st != LQ_OK) break;
        fold(&sp, p->beh, p->invert);
        for (size_t i = 0; i < sp.n; i++)
            if (!sp.v[i].m && sp.v[i].b > sp.v[i].a &&
                !hf_words_add(out, s + sp.v[i].a, sp.v[i].b - sp.v[i].a, in->first[w] && sp.v[i].a == 0))
                goto nomem;
    }
    free(sp.v);
    pcre2_match_data_free(md);
    return st;
nomem:
    free(sp.v);
    pcre2_match_data_free(md);
    return lq_fail(LQ_ERR_NOMEM, "tokenizer: out of memory");
}

/* One word through a non-splitting step into `b`. */
static bool map_word(const lq_tokenizer *t, const hf_pre *p, const char *s, size_t n, bool first, hf_buf *b) {
    b->n = 0;
    switch (p->kind) {
    case HFP_METASPACE: {
        hf_buf r = {0};
        bool ok = hf_buf_put(&r, "", 0);
        for (size_t i = 0; ok && i < n; i++) ok = s[i] == ' ' ? hf_buf_put(&r, p->s, p->n) : hf_buf_put(&r, s + i, 1);
        bool starts = r.n >= p->n && memcmp(r.p, p->s, p->n) == 0;
        bool pre = !starts && (p->scheme == HFS_ALWAYS || (p->scheme == HFS_FIRST && first));
        if (ok && pre) ok = hf_buf_put(b, p->s, p->n);
        if (ok) ok = hf_buf_put(b, r.p, r.n);
        free(r.p);
        return ok;
    }
    case HFP_PREFIX_SPACE:
        if (s[0] != ' ' && !hf_buf_put(b, " ", 1)) return false;
        return hf_buf_put(b, s, n);
    case HFP_BYTEMAP: return hf_buf_put(b, "", 0) && hf_bytemap(t, s, n, b);
    default: return false;
    }
}

lq_status tok_hf_pretokenize(const lq_tokenizer *t, hf_words *in, hf_words *scratch, hf_words **result) {
    const tok_hf *h = t->hf;
    hf_words *cur = in, *nxt = scratch;
    hf_buf b = {0};
    lq_status st = LQ_OK;
    for (int i = 0; i < h->n_pre && st == LQ_OK; i++) {
        const hf_pre *p = &h->pre[i];
        nxt->n = 0;
        nxt->buf.n = 0;
        if (p->kind == HFP_SPLIT_RE || p->kind == HFP_SPLIT_CHAR) {
            st = split_step(t, p, cur, nxt);
        } else {
            for (size_t w = 0; w < cur->n && st == LQ_OK; w++)
                if (!map_word(t, p, cur->buf.p + cur->off[w], cur->len[w], cur->first[w], &b) ||
                    !hf_words_add(nxt, b.p, b.n, cur->first[w]))
                    st = lq_fail(LQ_ERR_NOMEM, "tokenizer: out of memory");
        }
        hf_words *sw = cur;
        cur = nxt;
        nxt = sw;
    }
    free(b.p);
    *result = cur;
    return st;
}
