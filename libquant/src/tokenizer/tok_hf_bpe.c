/* tok_hf_bpe.c - the BPE model of tokenizer.json on one pre-tokenized word, as the `tokenizers`
 * library's BPE::merge_word + Word::merge_all do it (tokenizers/src/models/bpe):
 *
 *   - ignore_merges: a word found whole in the vocabulary is that token;
 *   - each character (with continuing_subword_prefix unless first, end_of_word_suffix if last)
 *     is its vocabulary id; if absent, with byte_fallback, its bytes as <0xNN> tokens when ALL
 *     of them exist; otherwise the unknown token, fused with the previous unknown if fuse_unk.
 *     A pending unknown is emitted only when the next character is found in the vocabulary (or
 *     at the end), so byte-fallback tokens can come before it: the library does exactly that;
 *   - pairs merge by lowest merge rank, ties to the leftmost; a queued pair is stale unless the
 *     pair now at its position still merges into the same id.
 * Without unk_token, unknown characters are dropped, as in the library. */
#include "tok_hf.h"

#include <stdlib.h>
#include <string.h>

typedef struct hsym {
    int32_t id;
    size_t len; /* bytes of the word; 0 once merged into its left neighbour */
    int64_t prev, next;
} hsym;

typedef struct hword {
    hsym *v;
    int64_t n, cap;
} hword;

static bool add_sym(hword *w, int32_t id, size_t len) {
    if (w->n == w->cap) {
        int64_t cap = w->cap ? w->cap * 2 : 64;
        hsym *v = realloc(w->v, (size_t)cap * sizeof *v);
        if (!v) return false;
        w->v = v;
        w->cap = cap;
    }
    w->v[w->n] = (hsym){id, len, w->n - 1, -1};
    if (w->n > 0) w->v[w->n - 1].next = w->n;
    w->n++;
    return true;
}

/* Look up prefix + s + suffix. */
static int32_t find3(const lq_tokenizer *t, hf_buf *b, const char *pre, size_t pn, const char *s, size_t n,
                     const char *suf, size_t sn, bool *nomem) {
    if (!pn && !sn) return tok_find(t, s, n);
    b->n = 0;
    if (!hf_buf_put(b, pre, pn) || !hf_buf_put(b, s, n) || !hf_buf_put(b, suf, sn)) {
        *nomem = true;
        return -1;
    }
    return tok_find(t, b->p, b->n);
}

static lq_status unk_missing(const lq_tokenizer *t) {
    return lq_fail(LQ_ERR_FORMAT, "%s: model.unk_token is not in the vocabulary (needed for an unknown character)",
                   t->src_path);
}

/* The merge queue: a binary min-heap on key = rank << 32 | position (lowest rank first, then
 * leftmost, as the library's Merge ordering). 16-byte entries: a word without pre-tokenizer
 * (TinyStories-656K) is the whole text, a heap of a million pairs, and pops are cache misses. */
typedef struct hmerge {
    uint64_t key;
    int32_t id; /* merged id */
} hmerge;

typedef struct hheap {
    hmerge *v;
    size_t n, cap;
} hheap;

static bool hh_push(hheap *h, uint32_t rank, int64_t pos, int32_t id) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        hmerge *v = realloc(h->v, cap * sizeof *v);
        if (!v) return false;
        h->v = v;
        h->cap = cap;
    }
    hmerge e = {(uint64_t)rank << 32 | (uint64_t)pos, id};
    size_t i = h->n++;
    while (i > 0 && h->v[(i - 1) / 2].key > e.key) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = e;
    return true;
}

static hmerge hh_pop(hheap *h) {
    hmerge top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && h->v[c + 1].key < h->v[c].key) c++;
        if (h->v[c].key >= last.key) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n > 0) h->v[i] = last;
    return top;
}

/* Word::merge_all. */
static bool merge_all(const lq_tokenizer *t, hword *w, hheap *h) {
    h->n = 0;
    int32_t rank, id;
    for (int64_t i = 0; i + 1 < w->n; i++)
        if (tok_merge_find(t, w->v[i].id, w->v[i + 1].id, &rank, &id) && !hh_push(h, (uint32_t)rank, i, id))
            return false;
    while (h->n > 0) {
        hmerge b = hh_pop(h);
        int64_t pos = (int64_t)(b.key & 0xffffffffu);
        hsym *L = &w->v[pos];
        if (L->len == 0 || L->next < 0) continue;
        int64_t r = L->next;
        if (!tok_merge_find(t, L->id, w->v[r].id, &rank, &id) || id != b.id) continue; /* stale */
        L->id = b.id;
        L->len += w->v[r].len;
        L->next = w->v[r].next;
        w->v[r].len = 0;
        if (L->next >= 0) w->v[L->next].prev = pos;
        if (L->prev >= 0 && tok_merge_find(t, w->v[L->prev].id, L->id, &rank, &id) &&
            !hh_push(h, (uint32_t)rank, L->prev, id))
            return false;
        if (L->next >= 0 && tok_merge_find(t, L->id, w->v[L->next].id, &rank, &id) && !hh_push(h, (uint32_t)rank, pos, id))
            return false;
    }
    return true;
}

lq_status tok_hf_bpe_word(const lq_tokenizer *t, const char *s, size_t n, tok_ids *out) {
    const tok_hf *h = t->hf;
    if (n == 0) return LQ_OK;
    if (n > UINT32_MAX) return lq_fail(LQ_ERR_INVALID_ARG, "tokenizer: a pre-token of %zu bytes (at most 4 GiB)", n);
    if (h->ignore_merges) {
        int32_t id = tok_find(t, s, n);
        if (id >= 0) return tok_ids_push(out, id) ? LQ_OK : lq_fail(LQ_ERR_NOMEM, "tokenizer: out of memory");
    }
    hword w = {0};
    hf_buf b = {0};
    hheap heap = {0};
    lq_status st = LQ_OK;
    bool nomem = false, have_unk = false;
    size_t unk_len = 0;
    for (size_t i = 0; i < n && !nomem && st == LQ_OK;) {
        size_t cl = tok_utf8_len((const unsigned char *)s + i, n - i);
        bool first = i == 0, last = i + cl == n;
        const char *pre = first ? NULL : h->cont_prefix, *suf = last ? h->eow_suffix : NULL;
        size_t pn = pre ? h->cont_n : 0, sn = suf ? h->eow_n : 0;
        int32_t id = find3(t, &b, pre, pn, s + i, cl, suf, sn, &nomem);
        if (id >= 0) {
            if (have_unk && !add_sym(&w, h->unk, unk_len)) nomem = true;
            have_unk = false;
            if (!add_sym(&w, id, cl)) nomem = true;
            i += cl;
            continue;
        }
        if (h->byte_fallback) {
            /* the bytes of the looked-up string, prefix and suffix included */
            const char *q = (pn || sn) ? b.p : s + i;
            size_t qn = (pn || sn) ? b.n : cl;
            bool all = true;
            for (size_t k = 0; k < qn && all; k++) all = h->byte_tok[(unsigned char)q[k]] >= 0;
            if (all) {
                for (size_t k = 0; k < qn && !nomem; k++)
                    if (!add_sym(&w, h->byte_tok[(unsigned char)q[k]], 1)) nomem = true;
                i += cl;
                continue;
            }
        }
        if (h->unk >= 0 || h->unk_missing) {
            if (have_unk && h->fuse_unk) {
                unk_len += cl;
            } else {
                if (h->unk_missing) st = unk_missing(t);
                else if (have_unk && !add_sym(&w, h->unk, unk_len)) nomem = true;
                have_unk = true;
                unk_len = cl;
            }
        }
        i += cl;
    }
    if (st == LQ_OK && !nomem && have_unk && !add_sym(&w, h->unk, unk_len)) nomem = true;
    if (st == LQ_OK && !nomem && !merge_all(t, &w, &heap)) nomem = true;
    for (int64_t i = 0; st == LQ_OK && !nomem && i < w.n; i++)
        if (w.v[i].len > 0 && !tok_ids_push(out, w.v[i].id)) nomem = true;
    if (nomem && st == LQ_OK) st = lq_fail(LQ_ERR_NOMEM, "tokenizer: out of memory");
    free(w.v);
    free(b.p);
    free(heap.v);
    return st;
}
