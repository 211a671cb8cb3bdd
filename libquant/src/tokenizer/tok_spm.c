/* tok_spm.c - SentencePiece-style BPE with byte fallback (Llama 1/2), as llama.cpp's
 * llm_tokenizer_spm does it:
 *   1. spaces become "▁" and the dummy prefix "▁" is prepended (start of text / after a special);
 *   2. the text is split into UTF-8 characters (symbols in a linked list);
 *   3. every adjacent pair whose concatenation is a vocabulary piece goes into a max-heap keyed
 *      by that piece's score (ties: leftmost pair); the best pair is merged and its new
 *      neighbours are pushed, until the heap is empty;
 *   4. each final symbol is emitted as its piece, or byte by byte as <0xNN> tokens.
 * O(n log n) in the text length: the whole of WikiText-2 is one call. */
#include "tok_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Pieces that merging may produce: SentencePiece never forms control, unknown, byte or unused
 * pieces out of ordinary text. */
static bool mergeable(const lq_tokenizer *t, int32_t id) {
    int ty = t->type[id];
    return ty == TOK_TYPE_NORMAL || ty == TOK_TYPE_USER_DEFINED || ty == TOK_TYPE_UNDEFINED;
}

static bool try_add(const lq_tokenizer *t, const char *buf, const tok_sym *sym, int64_t l, int64_t r,
                    tok_heap *h) {
    if (l < 0 || r < 0) return true;
    size_t n = sym[l].n + sym[r].n;
    int32_t id = tok_find(t, buf + sym[l].off, n);
    if (id < 0 || !mergeable(t, id) || isinf(t->score[id]) || isnan(t->score[id])) return true;
    return tok_heap_push(h, (tok_bigram){t->score[id], l, r, n, id});
}

lq_status tok_spm_encode(const lq_tokenizer *t, const char *text, size_t len, bool prefix, tok_ids *out) {
    static const char ws[] = "\xe2\x96\x81"; /* U+2581 "▁" */
    if (len == 0) return LQ_OK;
    if (len > (SIZE_MAX - 3) / 3) return lq_fail(LQ_ERR_INVALID_ARG, "tokenizer: text too long");
    prefix = prefix && t->add_space_prefix;
    char *buf = malloc(3 * len + 3);
    tok_sym *sym = malloc((len + 1) * sizeof *sym);
    tok_heap h = {0};
    lq_status st = LQ_OK;
    if (!buf || !sym) {
        st = lq_fail(LQ_ERR_NOMEM, "tokenizer: out of memory encoding %zu bytes", len);
        goto done;
    }
    size_t n = 0;
    if (prefix) {
        memcpy(buf, ws, 3);
        n = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(buf + n, ws, 3);
            n += 3;
        } else {
            buf[n++] = text[i];
        }
    }

    /* symbols = UTF-8 characters; with spm_word_split the list is cut before every "▁" that
     * follows another character, and each word is merged on its own */
    int64_t ns = 0;
    for (size_t off = 0; off < n;) {
        size_t cl = tok_utf8_len((const unsigned char *)buf + off, n - off);
        bool cut = t->spm_word_split && ns > 0 && cl == 3 && memcmp(buf + off, ws, 3) == 0 &&
                   !(sym[ns - 1].n == 3 && memcmp(buf + sym[ns - 1].off, ws, 3) == 0);
        sym[ns] = (tok_sym){cut ? -1 : ns - 1, -1, off, cl, -1};
        if (ns > 0 && !cut) sym[ns - 1].next = ns;
        ns++;
        off += cl;
    }
    for (int64_t w = 0; w < ns;) {
        /* the word is the chain starting at w; its symbols are w .. w_end-1 */
        int64_t w_end = w + 1;
        while (w_end < ns && sym[w_end].prev >= 0) w_end++;
        h.n = 0;
        for (int64_t i = w + 1; i < w_end; i++)
            if (!try_add(t, buf, sym, i - 1, i, &h)) goto nomem;
        tok_bigram b;
        while (tok_heap_pop(&h, &b)) {
            tok_sym *L = &sym[b.left], *R = &sym[b.right];
            /* stale: one side was merged away or grew since this pair was pushed */
            if (L->n == 0 || R->n == 0 || L->n + R->n != b.size) continue;
            L->n += R->n;
            R->n = 0;
            L->next = R->next;
            if (R->next >= 0) sym[R->next].prev = b.left;
            if (!try_add(t, buf, sym, L->prev, b.left, &h) || !try_add(t, buf, sym, b.left, L->next, &h))
                goto nomem;
        }
        for (int64_t i = w; i >= 0; i = sym[i].next) {
            int32_t id = tok_find(t, buf + sym[i].off, sym[i].n);
            if (id >= 0) {
                if (!tok_ids_push(out, id)) goto nomem;
                continue;
            }
            for (size_t k = 0; k < sym[i].n; k++) {
                int32_t bid = t->byte_id[(unsigned char)buf[sym[i].off + k]];
                if (bid < 0) bid = t->unk;
                if (bid >= 0 && !tok_ids_push(out, bid)) goto nomem;
            }
        }
        w = w_end;
    }
    goto done;
nomem:
    st = lq_fail(LQ_ERR_NOMEM, "tokenizer: out of memory encoding %zu bytes", len);
done:
    free(buf);
    free(sym);
    free(h.v);
    return st;
}
