/* tok_hf_norm.c - tokenizer.json normalizers, as the `tokenizers` library applies them to one
 * fragment of text (tokenizers/src/normalizers). Unicode data (case, categories, NF* forms)
 * comes from utf8proc rather than tables of our own.
 *
 * Our input may hold bytes that are not UTF-8 (the library only ever sees valid strings): such
 * a byte is passed through unchanged by every normalizer. */
#include "tok_hf.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

bool hf_buf_put(hf_buf *b, const void *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return false;
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return true;
}

bool hf_bytemap(const lq_tokenizer *t, const char *s, size_t n, hf_buf *out) {
    for (size_t i = 0; i < n; i++) {
        char u[2];
        if (!hf_buf_put(out, u, tok_byte_utf8(t, (unsigned char)s[i], u))) return false;
    }
    return true;
}

/* One code point at s[0..n): its length, or -1 (and *cp = -1) for a byte that starts no valid
 * UTF-8 sequence. */
static int next_cp(const char *s, size_t n, int32_t *cp) {
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, cp);
    if (k <= 0) {
        *cp = -1;
        return -1;
    }
    return (int)k;
}

/* Rust's char::is_whitespace: the Unicode White_Space property. */
bool tok_hf_is_white(int32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

static bool put_cp(hf_buf *b, int32_t c) {
    utf8proc_uint8_t u[4];
    utf8proc_ssize_t k = utf8proc_encode_char(c, u);
    return hf_buf_put(b, u, (size_t)k);
}

/* Lowercase: Rust's char::to_lowercase maps per character with the unconditional special
 * casings; U+0130 is the only one that lowercases to two code points. */
static bool lowercase(const char *s, size_t n, hf_buf *out) {
    for (size_t i = 0; i < n;) {
        int32_t c;
        int k = next_cp(s + i, n - i, &c);
        if (k < 0) {
            if (!hf_buf_put(out, s + i, 1)) return false;
            i++;
            continue;
        }
        i += (size_t)k;
        if (c == 0x130) {
            if (!hf_buf_put(out, "i\xcc\x87", 3)) return false;
        } else if (!put_cp(out, utf8proc_tolower(c))) {
            return false;
        }
    }
    return true;
}

static bool strip_accents(const char *s, size_t n, hf_buf *out) {
    for (size_t i = 0; i < n;) {
        int32_t c;
        int k = next_cp(s + i, n - i, &c);
        size_t step = k < 0 ? 1 : (size_t)k;
        if (k < 0 || !(utf8proc_category(c) >= UTF8PROC_CATEGORY_MN && utf8proc_category(c) <= UTF8PROC_CATEGORY_ME))
            if (!hf_buf_put(out, s + i, step)) return false;
        i += step;
    }
    return true;
}

/* NFC / NFD / NFKC / NFKD over each maximal run of valid UTF-8. */
static bool unicode_form(const char *s, size_t n, int opts, hf_buf *out) {
    size_t run = 0;
    for (size_t i = 0;;) {
        int32_t c;
        int k = i < n ? next_cp(s + i, n - i, &c) : -1;
        if (k > 0) {
            i += (size_t)k;
            continue;
        }
        if (i > run) {
            utf8proc_uint8_t *m = NULL;
            utf8proc_ssize_t mn = utf8proc_map((const utf8proc_uint8_t *)s + run, (utf8proc_ssize_t)(i - run), &m,
                                               (utf8proc_option_t)(UTF8PROC_STABLE | opts));
            bool ok = mn >= 0 && hf_buf_put(out, m, (size_t)mn);
            free(m);
            if (!ok) return false;
        }
        if (i >= n) return true;
        if (!hf_buf_put(out, s + i, 1)) return false;
        run = ++i;
    }
}

/* Replace every non-overlapping match, left to right (the pattern is never empty). */
static lq_status replace(const lq_tokenizer *t, const hf_norm *nm, const char *s, size_t n, hf_buf *out, bool *lead0) {
    size_t pos = 0;
    pcre2_match_data *md = nm->re ? pcre2_match_data_create_from_pattern(nm->re, NULL) : NULL;
    if (nm->re && !md) return lq_fail(LQ_ERR_NOMEM, "tokenizer: out of memory");
    lq_status st = LQ_OK;
    while (pos < n) {
        size_t ms, me;
        if (nm->re) {
            int rc = pcre2_match(nm->re, (PCRE2_SPTR)s, n, pos, 0, md, NULL);
            if (rc == PCRE2_ERROR_NOMATCH) break;
            if (rc < 0) {
                st = tok_regex_error(t, nm->re_src, rc, pos);
                break;
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            ms = ov[0];
            me = ov[1];
        } else {
            const char *f = memmem(s + pos, n - pos, nm->s, nm->n);
            if (!f) break;
            ms = (size_t)(f - s);
            me = ms + nm->n;
        }
        if (me == ms) { /* an empty regex match replaces nothing: step over one character */
            size_t k = tok_utf8_len((const unsigned char *)s + ms, n - ms);
            if (!hf_buf_put(out, s + pos, ms + k - pos)) goto nomem;
            pos = ms + k;
            continue;
        }
        if (ms == 0 && nm->n2 == 0) *lead0 = false;
        if (!hf_buf_put(out, s + pos, ms - pos) || !hf_buf_put(out, nm->s2, nm->n2)) goto nomem;
        pos = me;
    }
    if (st == LQ_OK && pos < n && !hf_buf_put(out, s + pos, n - pos)) goto nomem;
    pcre2_match_data_free(md);
    return st;
nomem:
    pcre2_match_data_free(md);
    return lq_fail(LQ_ERR_NOMEM, "tokenizer: out of memory");
}

static bool strip(const hf_norm *nm, const char *s, size_t n, hf_buf *out, bool *lead0) {
    size_t a = 0, b = n;
    while (nm->left && a < b) {
        int32_t c;
        int k = next_cp(s + a, b - a, &c);
        if (k < 0 || !tok_hf_is_white(c)) break;
        a += (size_t)k;
    }
    while (nm->right && b > a) {
        size_t p = b - 1;
        while (p > a && ((unsigned char)s[p] & 0xC0) == 0x80) p--;
        int32_t c;
        int k = next_cp(s + p, b - p, &c);
        if (k < 0 || (size_t)k != b - p || !tok_hf_is_white(c)) break;
        b = p;
    }
    if (a > 0) *lead0 = false;
    return hf_buf_put(out, s + a, b - a);
}

/* How far the normalizers may grow a text: every later step costs time linear in the normalized
 * bytes, and Replace steps multiply (a 2.3 KB tokenizer.json whose three chained Replace " "
 * normalizers carry 89, 79 and 4 spaces in their content turned 30 bytes into 8.3 MB, seconds of
 * encoding; one more such step is gigabytes). Real pipelines stay far below: NFKC is at most 18
 * code points per character, Replace " " -> U+2581 3x, ByteLevel 2x; Prepend adds a fixed string,
 * hence the constant. The `tokenizers` library has no limit; we refuse past it, by name. */
enum { HF_NORM_GROWTH = 64, HF_NORM_SLACK = 4096 };

lq_status tok_hf_normalize(const lq_tokenizer *t, const char *s, size_t n, bool cont, hf_buf *out, bool *lead0) {
    const tok_hf *h = t->hf;
    size_t limit = n > (SIZE_MAX - HF_NORM_SLACK) / HF_NORM_GROWTH ? SIZE_MAX : n * HF_NORM_GROWTH + HF_NORM_SLACK;
    hf_buf tmp = {0};
    out->n = 0;
    if (!hf_buf_put(out, s, n)) return lq_fail(LQ_ERR_NOMEM, "tokenizer: out of memory");
    lq_status st = LQ_OK;
    for (int i = 0; i < h->n_norm && st == LQ_OK; i++) {
        const hf_norm *nm = &h->norm[i];
        bool ok = true;
        tmp.n = 0;
        if (!hf_buf_put(&tmp, "", 0)) {
            st = lq_fail(LQ_ERR_NOMEM, "tokenizer: out of memory");
            break;
        }
        switch (nm->kind) {
        case HFN_PREPEND:
            /* a continuation chunk is not the start of a fragment */
            ok = (out->n == 0 || cont) ? hf_buf_put(&tmp, out->p, out->n)
                                       : hf_buf_put(&tmp, nm->s, nm->n) && hf_buf_put(&tmp, out->p, out->n);
            break;
        case HFN_REPLACE_STR:
        case HFN_REPLACE_RE: st = replace(t, nm, out->p, out->n, &tmp, lead0); break;
        case HFN_LOWERCASE: ok = lowercase(out->p, out->n, &tmp); break;
        case HFN_STRIP: ok = strip(nm, out->p, out->n, &tmp, lead0); break;
        case HFN_STRIP_ACCENTS: ok = strip_accents(out->p, out->n, &tmp); break;
        case HFN_NFC: ok = unicode_form(out->p, out->n, UTF8PROC_COMPOSE, &tmp); break;
        case HFN_NFD: ok = unicode_form(out->p, out->n, UTF8PROC_DECOMPOSE, &tmp); break;
        case HFN_NFKC: ok = unicode_form(out->p, out->n, UTF8PROC_COMPOSE | UTF8PROC_COMPAT, &tmp); break;
        case HFN_NFKD: ok = unicode_form(out->p, out->n, UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, &tmp); break;
        case HFN_BYTELEVEL: ok = hf_bytemap(t, out->p, out->n, &tmp); break;
        }
        if (!ok && st == LQ_OK) st = lq_fail(LQ_ERR_NOMEM, "tokenizer: out of memory");
        if (st == LQ_OK && tmp.n > limit)
            st = lq_fail(LQ_ERR_UNSUPPORTED,
                         "%s: normalizer step %d grows %zu bytes of text to %zu bytes (more than %dx + %d: refused)",
                         t->src_path ? t->src_path : "tokenizer", i, n, tmp.n, HF_NORM_GROWTH, HF_NORM_SLACK);
        hf_buf sw = *out;
        *out = tmp;
        tmp = sw;
    }
    free(tmp.p);
    return st;
}
