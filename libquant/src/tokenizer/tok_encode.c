/* tok_encode.c - lq_tokenizer_encode: BOS, special-token splitting, dispatch to the model. */
#include "tok_internal.h"

#include <stdlib.h>
#include <string.h>

/* Longest special token that starts at text[i] (specials are sorted longest first), or -1. */
static int32_t special_at(const lq_tokenizer *t, const char *text, size_t len, size_t i) {
    for (int32_t k = 0; k < t->n_special; k++) {
        int32_t id = t->special[k];
        size_t n = t->piece_len[id];
        if (n <= len - i && memcmp(text + i, t->piece[id], n) == 0) return id;
    }
    return -1;
}

static lq_status encode_raw(const lq_tokenizer *t, const char *s, size_t n, bool prefix, tok_ids *ids) {
    if (t->kind == LQ_TOK_SPM) return tok_spm_encode(t, s, n, prefix, ids);
    return tok_bpe_encode(t, s, n, ids);
}

/* `lead_prefix`: whether the text starts a document (SPM dummy prefix at its start) or continues
 * one after a safe cut (lq_tokenizer_encode_next). */
static lq_status encode_impl(const lq_tokenizer *t, const char *text, size_t len, bool add_bos,
                             bool parse_special, bool lead_prefix, int32_t *out, int64_t cap,
                             int64_t *n_out) {
    tok_ids ids = {0};
    lq_status st = LQ_OK;
    if (n_out) *n_out = 0;
    if (!text && len) return lq_fail(LQ_ERR_INVALID_ARG, "lq_tokenizer_encode: NULL text");
    if (add_bos && t->bos >= 0 && !tok_ids_push(&ids, t->bos)) {
        st = lq_fail(LQ_ERR_NOMEM, "tokenizer: out of memory");
        goto done;
    }
    if (t->hf) { /* tokenizer.json: the file's own pipeline, added tokens included */
        st = tok_hf_encode(t, text, len, lead_prefix, parse_special, &ids);
        goto finish;
    }
    /* SPM prepends the dummy prefix at the start and after each special token (llama.cpp) */
    bool prev_special = lead_prefix;
    size_t start = 0;
    if (parse_special && t->n_special > 0) {
        bool first[256] = {false};
        for (int32_t k = 0; k < t->n_special; k++) first[(unsigned char)t->piece[t->special[k]][0]] = true;
        for (size_t i = 0; i < len; i++) {
            if (!first[(unsigned char)text[i]]) continue;
            int32_t id = special_at(t, text, len, i);
            if (id < 0) continue;
            if (i > start) {
                st = encode_raw(t, text + start, i - start, prev_special, &ids);
                if (st != LQ_OK) goto done;
            }
            if (!tok_ids_push(&ids, id)) {
                st = lq_fail(LQ_ERR_NOMEM, "tokenizer: out of memory");
                goto done;
            }
            prev_special = true;
            start = i + t->piece_len[id];
            i = start - 1;
            continue;
        }
    }
    if (len > start) st = encode_raw(t, text + start, len - start, prev_special, &ids);
finish:
    if (st != LQ_OK) goto done;
    if (n_out) *n_out = ids.n;
    if (ids.n > 0 && out && cap > 0) memcpy(out, ids.v, (size_t)(cap < ids.n ? cap : ids.n) * sizeof *out);
    if (cap < ids.n)
        st = lq_fail(LQ_ERR_INVALID_ARG, "lq_tokenizer_encode: %lld ids do not fit in %lld", (long long)ids.n,
                     (long long)cap);
done:
    free(ids.v);
    return st;
}

lq_status lq_tokenizer_encode(const lq_tokenizer *t, const char *text, size_t len, bool add_bos,
                              bool parse_special, int32_t *out, int64_t cap, int64_t *n_out) {
    return encode_impl(t, text, len, add_bos, parse_special, true, out, cap, n_out);
}

lq_status lq_tokenizer_encode_next(const lq_tokenizer *t, const char *text, size_t len,
                                   int32_t *out, int64_t cap, int64_t *n_out) {
    return encode_impl(t, text, len, false, false, false, out, cap, n_out);
}
