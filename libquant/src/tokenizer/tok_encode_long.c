/* tok_encode_long.c - lq_tokenizer_encode_long: a whole text encoded in segments cut at safe
 * points (tok_cut.c), so the tokenizer's scratch is that of one segment, not of the text.
 *
 * Why: the merge scratch grows with what one encode call sees (about 45 bytes per input byte for
 * SPM), so a 50 MB line encoded in one call peaked at 2.2 GB in quant-eval and quant-distill
 * --per-line. The ids are exactly those of one call: that is what a safe cut guarantees. */
#include "libquant/lq_tokenizer.h"

#include <stdlib.h>

/* Append the ids of text[0..len) to *ids (*n used, *cap allocated): the first segment with
 * lq_tokenizer_encode (BOS, dummy prefix), the others with lq_tokenizer_encode_next. */
static lq_status append(const lq_tokenizer *t, const char *text, size_t len, bool first, bool add_bos,
                        int32_t **ids, int64_t *n, int64_t *cap) {
    for (;;) {
        int64_t room = *cap - *n, got = 0;
        lq_status s = first ? lq_tokenizer_encode(t, text, len, add_bos, false, *ids + *n, room, &got)
                            : lq_tokenizer_encode_next(t, text, len, *ids + *n, room, &got);
        if (s == LQ_OK) {
            *n += got;
            return LQ_OK;
        }
        if (s != LQ_ERR_INVALID_ARG || got <= room) return s;
        int64_t nc = *cap * 2 > *n + got ? *cap * 2 : *n + got;
        int32_t *nb = realloc(*ids, (size_t)nc * sizeof *nb);
        if (!nb) return lq_fail(LQ_ERR_NOMEM, "tokenizer: cannot allocate %lld token ids", (long long)nc);
        *ids = nb;
        *cap = nc;
    }
}

lq_status lq_tokenizer_encode_long(const lq_tokenizer *t, const char *text, size_t len, bool add_bos,
                                   size_t segment, int32_t **ids, int64_t *n) {
    if (segment < 2) segment = 2;
    int64_t cap = (int64_t)(len < segment ? len : segment) + 16;
    *n = 0;
    *ids = malloc((size_t)cap * sizeof **ids);
    if (!*ids) return lq_fail(LQ_ERR_NOMEM, "tokenizer: cannot allocate %lld token ids", (long long)cap);
    lq_status s = LQ_OK;
    size_t pos = 0;
    do { /* once for an empty text: BOS alone */
        size_t rest = len - pos, seg = rest;
        /* the window doubles while it holds no safe cut: a tokenizer without any gets one call */
        for (size_t win = segment; win < rest; win *= 2) {
            size_t c = lq_tokenizer_safe_cut(t, text + pos, win + 1); /* text[c] is inside */
            if (c > 0) {
                seg = c;
                break;
            }
        }
        s = append(t, text + pos, seg, pos == 0, add_bos, ids, n, &cap);
        pos += seg;
    } while (s == LQ_OK && pos < len);
    if (s != LQ_OK) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return s;
}
