/* tok_bpe_bytes.c - byte-level BPE (GPT-2, Llama 3, Qwen, SmolLM), as HF tokenizers and
 * llama.cpp's llm_tokenizer_bpe do it:
 *   1. the pre-tokenizer regexes split the text (each regex splits every piece the previous one
 *      produced; matches and the gaps between them both become pieces, HF "Isolated");
 *   2. each piece's bytes are mapped to printable code points (GPT-2 bytes_to_unicode);
 *   3. its characters are merged pairwise by lowest merge rank (ties: leftmost) with a heap;
 *   4. each final symbol is its vocabulary id (merging only ever produces vocabulary pieces).
 */
#include "tok_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct bpe_ctx {
    const lq_tokenizer *t;
    tok_ids *out;
    pcre2_match_data *md[TOK_MAX_REGEX];
    char *buf;          /* mapped text of the current piece */
    size_t buf_cap;
    tok_sym *sym;
    size_t sym_cap;
    tok_heap heap;
} bpe_ctx;

static bool try_add(bpe_ctx *c, int64_t l, int64_t r) {
    if (l < 0 || r < 0) return true;
    int32_t rank, id;
    if (!tok_merge_find(c->t, c->sym[l].id, c->sym[r].id, &rank, &id)) return true;
    return tok_heap_push(&c->heap, (tok_bigram){-(double)rank, l, r, c->sym[l].n + c->sym[r].n, id});
}

/* BPE on one pre-token (raw bytes). */
static lq_status bpe_word(bpe_ctx *c, const unsigned char *w, size_t len) {
    const lq_tokenizer *t = c->t;
    if (len == 0) return LQ_OK;
    /* every byte maps to a code point below U+0200: at most 2 UTF-8 bytes */
    if (2 * len > c->buf_cap || len > c->sym_cap) {
        size_t cap = 2 * len + 64;
        char *nb = realloc(c->buf, cap);
        if (!nb) goto nomem;
        c->buf = nb;
        c->buf_cap = cap;
        tok_sym *ns = realloc(c->sym, (len + 32) * sizeof *ns);
        if (!ns) goto nomem;
        c->sym = ns;
        c->sym_cap = len + 32;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        size_t k = tok_byte_utf8(t, w[i], c->buf + n);
        c->sym[i] = (tok_sym){(int64_t)i - 1, (i + 1 < len ? (int64_t)i + 1 : -1), n, k, -1};
        n += k;
        c->sym[i].id = tok_find(t, c->buf + c->sym[i].off, c->sym[i].n);
    }
    if (t->ignore_merges) {
        int32_t id = tok_find(t, c->buf, n);
        if (id >= 0) return tok_ids_push(c->out, id) ? LQ_OK : lq_fail(LQ_ERR_NOMEM, "tokenizer: out of memory");
    }
    c->heap.n = 0;
    for (size_t i = 1; i < len; i++)
        if (!try_add(c, (int64_t)i - 1, (int64_t)i)) goto nomem;
    tok_bigram b;
    while (tok_heap_pop(&c->heap, &b)) {
        tok_sym *L = &c->sym[b.left], *R = &c->sym[b.right];
        if (L->n == 0 || R->n == 0 || L->n + R->n != b.size) continue; /* stale */
        L->n += R->n;
        L->id = b.id;
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0) c->sym[R->next].prev = b.left;
        if (!try_add(c, L->prev, b.left) || !try_add(c, b.left, L->next)) goto nomem;
    }
    for (int64_t i = 0; i >= 0; i = c->sym[i].next) {
        int32_t id = c->sym[i].id >= 0 ? c->sym[i].id : t->unk; /* a byte missing from the vocab */
        if (id >= 0 && !tok_ids_push(c->out, id)) goto nomem;
    }
    return LQ_OK;
nomem:
    return lq_fail(LQ_ERR_NOMEM, "tokenizer: out of memory");
}

/* Split s[0..len) with regex `level` and recurse; past the last regex, run BPE. */
static lq_status split(bpe_ctx *c, int level, const char *s, size_t len) {
    if (level >= c->t->n_re) return bpe_word(c, (const unsigned char *)s, len);
    pcre2_code *re = c->t->re[level];
    pcre2_match_data *md = c->md[level];
    size_t pos = 0, gap = 0;
    while (pos < len) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, len, pos, 0, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) return tok_regex_error(c->t, c->t->re_src[level], rc, pos);
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (me == ms) { /* empty match: step over one character */
            pos = ms + tok_utf8_len((const unsigned char *)s + ms, len - ms);
            continue;
        }
        if (ms > gap) LQ_TRY(split(c, level + 1, s + gap, ms - gap));
        LQ_TRY(split(c, level + 1, s + ms, me - ms));
        gap = pos = me;
    }
    if (len > gap) LQ_TRY(split(c, level + 1, s + gap, len - gap));
    return LQ_OK;
}

lq_status tok_bpe_encode(const lq_tokenizer *t, const char *text, size_t len, tok_ids *out) {
    bpe_ctx c = {.t = t, .out = out};
    lq_status st = LQ_OK;
    for (int i = 0; i < t->n_re; i++) {
        c.md[i] = pcre2_match_data_create_from_pattern(t->re[i], NULL);
        if (!c.md[i]) st = lq_fail(LQ_ERR_NOMEM, "tokenizer: out of memory");
    }
    if (st == LQ_OK) st = split(&c, 0, text, len);
    for (int i = 0; i < t->n_re; i++) pcre2_match_data_free(c.md[i]);
    free(c.buf);
    free(c.sym);
    free(c.heap.v);
    return st;
}
