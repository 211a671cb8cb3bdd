/* calib_text.c - the calibration chunker: text files -> seeded samples of L tokens (lq_gptq.h).
 *
 * Each file is read through the distillation corpus reader (lq_corpus_next_segment: segments
 * ending at the tokenizer's safe cuts, so segment-by-segment encoding gives the ids of the
 * whole file) and cut into consecutive windows; the draw is a seeded Fisher-Yates shuffle
 * (splitmix64), reproduced by scripts/gptq_llmc.py for llm-compressor.
 */
#include "libquant/lq_gptq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libquant/lq_distill.h"

#define SEGMENT_BYTES ((size_t)1 << 20)

/* All ids of one file, appended to *ids (grown as needed). */
static lq_status encode_file(const lq_tokenizer *t, const char *path, int32_t **ids, int64_t *n, int64_t *cap) {
    lq_corpus *c;
    LQ_TRY(lq_corpus_open(path, 0, &c));
    lq_status st = LQ_OK;
    bool first = true;
    for (;;) {
        const char *text;
        size_t len;
        uint64_t off, next;
        if ((st = lq_corpus_next_segment(c, t, SEGMENT_BYTES, &text, &len, &off, &next)) != LQ_OK || !text) break;
        int64_t need = 0;
        /* the first segment carries the SPM dummy prefix, the others continue it */
        if (first) lq_tokenizer_encode(t, text, len, false, false, NULL, 0, &need);
        else lq_tokenizer_encode_next(t, text, len, NULL, 0, &need);
        if (*n + need > *cap) {
            int64_t nc = (*n + need) * 2 + 1024;
            int32_t *p = realloc(*ids, (size_t)nc * sizeof *p);
            if (!p) {
                st = lq_fail(LQ_ERR_NOMEM, "%s: out of memory for %lld token ids", path, (long long)nc);
                break;
            }
            *ids = p;
            *cap = nc;
        }
        int64_t got;
        st = first ? lq_tokenizer_encode(t, text, len, false, false, *ids + *n, *cap - *n, &got)
                   : lq_tokenizer_encode_next(t, text, len, *ids + *n, *cap - *n, &got);
        if (st != LQ_OK) break;
        *n += got;
        first = false;
    }
    lq_corpus_close(c);
    return st;
}

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

void lq_calib_set_free(lq_calib_set *s) {
    if (!s) return;
    free(s->ids);
    memset(s, 0, sizeof *s);
}

lq_status lq_calib_samples(const lq_tokenizer *t, const char *const *paths, int n_paths, int64_t n_samples,
                           int len, uint64_t seed, lq_calib_set *out) {
    memset(out, 0, sizeof *out);
    if (n_paths <= 0) return lq_fail(LQ_ERR_INVALID_ARG, "calibration: no text file given");
    if (len < 2 || n_samples < 1)
        return lq_fail(LQ_ERR_INVALID_ARG, "calibration: %lld samples of %d tokens: need at least 1 sample of 2",
                       (long long)n_samples, len);
    int32_t *all = NULL;
    int64_t n = 0, cap = 0;
    /* window w of the global list starts at starts[w] in `all` */
    int64_t *starts = NULL, n_win = 0;
    lq_status st = LQ_OK;
    for (int f = 0; f < n_paths && st == LQ_OK; f++) {
        int64_t at = n;
        if ((st = encode_file(t, paths[f], &all, &n, &cap)) != LQ_OK) break;
        int64_t w = (n - at) / len;
        int64_t *p = realloc(starts, (size_t)(n_win + w + 1) * sizeof *p);
        if (!p) {
            st = lq_fail(LQ_ERR_NOMEM, "calibration: out of memory");
            break;
        }
        starts = p;
        for (int64_t k = 0; k < w; k++) starts[n_win++] = at + k * len;
    }
    if (st == LQ_OK && n_win == 0)
        st = lq_fail(LQ_ERR_INVALID_ARG, "calibration text %s%s: %lld tokens, shorter than one sample of %d tokens",
                     paths[0], n_paths > 1 ? " (and the others)" : "", (long long)n, len);
    if (st == LQ_OK) {
        uint64_t s = seed;
        for (int64_t i = n_win - 1; i > 0; i--) {
            int64_t j = (int64_t)(splitmix64(&s) % (uint64_t)(i + 1));
            int64_t x = starts[i];
            starts[i] = starts[j];
            starts[j] = x;
        }
        out->n_samples = n_samples < n_win ? n_samples : n_win;
        qsort(starts, (size_t)out->n_samples, sizeof *starts, cmp_i64);
        out->ids = malloc((size_t)(out->n_samples * len) * sizeof *out->ids);
        if (!out->ids) st = lq_fail(LQ_ERR_NOMEM, "calibration: out of memory");
    }
    if (st == LQ_OK) {
        for (int64_t k = 0; k < out->n_samples; k++)
            memcpy(out->ids + k * len, all + starts[k], (size_t)len * sizeof *all);
        out->len = len;
        out->n_windows = n_win;
        out->n_tokens = n;
    } else {
        lq_calib_set_free(out);
    }
    free(all);
    free(starts);
    return st;
}
