/* chunks.c - the chunk walk perplexity and KL divergence share (eval_chunks.h). */
#include "eval_chunks.h"

#include <stdlib.h>
#include <string.h>

/* Bytes per encode call of a long text (lq_tokenizer_encode_long): 1 MiB amortizes the call and
 * bounds the tokenizer's scratch. */
#define ENCODE_SEGMENT ((size_t)1 << 20)

lq_status lq_eval_encode_text(const lq_tokenizer *tok, const char *text, size_t len, bool add_bos,
                              const char *what, int32_t **ids, int64_t *n) {
    lq_status s = lq_tokenizer_encode_long(tok, text, len, add_bos, ENCODE_SEGMENT, ids, n);
    if (s == LQ_ERR_NOMEM) return lq_fail(s, "%s: %s", what, lq_last_error());
    return s;
}

/* llama.cpp: tokenize the whole text once, cut into chunks, BOS replaces each chunk's first. */
static lq_status walk_chunked(const lq_tokenizer *tok, const char *text, size_t len, int n_ctx,
                              const lq_ppl_opts *o, const char *what, lq_chunk_fn fn, void *user,
                              lq_chunk_walk *w) {
    bool add_bos = lq_tokenizer_add_bos_default(tok) && lq_tokenizer_bos(tok) >= 0;
    int32_t *ids = NULL;
    int64_t n = 0;
    LQ_TRY(lq_eval_encode_text(tok, text, len, add_bos, what, &ids, &n));
    w->n_tokens = n;
    int64_t n_chunks = n / n_ctx;
    if (n_chunks < 1) {
        free(ids);
        return lq_fail(LQ_ERR_INVALID_ARG,
                       "%s: the text has %lld tokens, fewer than one chunk of %d "
                       "(use --ctx to shorten chunks, or --per-line)", what, (long long)n, n_ctx);
    }
    if (o->max_chunks > 0 && o->max_chunks < n_chunks) n_chunks = o->max_chunks;
    double t0 = lq_eval_now();
    lq_status st = LQ_OK;
    for (int64_t c = 0; c < n_chunks && st == LQ_OK; c++) {
        int32_t *chunk = ids + c * n_ctx;
        int32_t saved = chunk[0];
        if (add_bos) chunk[0] = (int32_t)lq_tokenizer_bos(tok);
        st = fn(user, chunk, n_ctx, n_ctx / 2);
        chunk[0] = saved;
        w->n_chunks++;
        if (o->progress) o->progress(o->progress_user, c + 1, n_chunks, what);
    }
    w->seconds = lq_eval_now() - t0;
    free(ids);
    return st;
}

/* A unit as plain --per-line sees it: newline-split lines lose their CR, so a --separator unit
 * holding several CRLF lines gets LF endings too (else its \r bytes are scored: PPL 3.55 instead
 * of 6.25 on CRLF WikiText). *buf holds the copy when one was needed (free it). */
static lq_status unit_lf(const lq_text_unit *u, char **buf, const char **text, size_t *len) {
    *buf = NULL;
    *text = u->text;
    *len = u->len;
    if (!memmem(u->text, u->len, "\r\n", 2)) return LQ_OK;
    char *b = malloc(u->len);
    if (!b) return lq_fail(LQ_ERR_NOMEM, "cannot copy a unit of %zu bytes", u->len);
    size_t k = 0;
    for (size_t i = 0; i < u->len; i++)
        if (!(u->text[i] == '\r' && i + 1 < u->len && u->text[i + 1] == '\n')) b[k++] = u->text[i];
    *buf = b;
    *text = b;
    *len = k;
    return LQ_OK;
}

/* llama2.c reference: each unit encoded with BOS, pieces of n_ctx each at position 0. With
 * o->max_chunks, only the first max_chunks units are evaluated (each whole, in as many pieces as
 * it takes): a unit is what --per-line counts. */
static lq_status walk_per_line(const lq_tokenizer *tok, const char *text, size_t len, int n_ctx,
                               const lq_ppl_opts *o, const char *what, lq_chunk_fn fn, void *user,
                               lq_chunk_walk *w) {
    lq_text_unit *units = NULL;
    int64_t n_units = 0;
    LQ_TRY(lq_text_split(text, len, o->separator, &units, &n_units));
    if (n_units == 0) {
        free(units);
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: the text has no non-empty unit", what);
    }
    if (o->max_chunks > 0 && o->max_chunks < n_units) n_units = o->max_chunks;
    bool add_bos = lq_tokenizer_bos(tok) >= 0;
    double t0 = lq_eval_now();
    lq_status st = LQ_OK;
    for (int64_t u = 0; u < n_units && st == LQ_OK; u++) {
        int32_t *ids = NULL;
        int64_t n = 0;
        char *copy;
        const char *ut;
        size_t ul;
        st = unit_lf(&units[u], &copy, &ut, &ul);
        if (st == LQ_OK) st = lq_eval_encode_text(tok, ut, ul, add_bos, what, &ids, &n);
        free(copy);
        if (st != LQ_OK) break;
        w->n_tokens += n;
        for (int64_t p = 0; p < n && st == LQ_OK; p += n_ctx) {
            int64_t piece = n - p < n_ctx ? n - p : n_ctx;
            if (piece < 2) break; /* a lone token predicts nothing */
            st = fn(user, ids + p, (int)piece, 0);
            w->n_chunks++;
        }
        free(ids);
        if (o->progress) o->progress(o->progress_user, u + 1, n_units, what);
    }
    w->seconds = lq_eval_now() - t0;
    free(units);
    return st;
}

lq_status lq_eval_logits_room(float **buf, size_t *cap, int n, int vocab, const char *what) {
    const size_t need = (size_t)n * (size_t)vocab;
    if (need <= *cap) return LQ_OK;
    float *nb = realloc(*buf, need * sizeof *nb);
    if (!nb) return lq_fail(LQ_ERR_NOMEM, "%s: cannot allocate %zu logits", what, need);
    *buf = nb;
    *cap = need;
    return LQ_OK;
}

lq_status lq_eval_walk_chunks(const lq_tokenizer *tok, const char *text, size_t len, int n_ctx,
                              const lq_ppl_opts *o, const char *what, lq_chunk_fn fn, void *user,
                              lq_chunk_walk *w) {
    memset(w, 0, sizeof *w);
    return o->per_line ? walk_per_line(tok, text, len, n_ctx, o, what, fn, user, w)
                       : walk_chunked(tok, text, len, n_ctx, o, what, fn, user, w);
}
