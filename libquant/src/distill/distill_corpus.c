/* distill_corpus.c - incremental reading of a text corpus in units or line-aligned pieces. */
#include "libquant/lq_distill.h"
#include "libquant/lq_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define READ_STEP ((size_t)64 << 10)
#define MAX_UNIT ((size_t)256 << 20)

struct lq_corpus {
    FILE *f;
    char path[4096];
    uint64_t size;
    char *buf;          /* buffered bytes [head, tail) of the file from offset base */
    size_t head, tail, cap;
    uint64_t base;      /* file offset of buf[0] */
    bool eof;
};

lq_status lq_corpus_open(const char *path, uint64_t start, lq_corpus **out) {
    *out = NULL;
    FILE *f;
    LQ_TRY(lq_file_fopen_input(path, &f));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return lq_fail(LQ_ERR_IO, "%s: not a regular file", path);
    }
    if (start > (uint64_t)sb.st_size || fseeko(f, (off_t)start, SEEK_SET) != 0) {
        fclose(f);
        return lq_fail(LQ_ERR_MISMATCH, "%s: cannot resume at byte %llu (the file has %lld): "
                       "was it changed?", path, (unsigned long long)start,
                       (long long)sb.st_size);
    }
    lq_corpus *c = calloc(1, sizeof *c);
    if (!c) {
        fclose(f);
        return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
    }
    c->f = f;
    snprintf(c->path, sizeof c->path, "%s", path);
    c->size = (uint64_t)sb.st_size;
    c->base = start;
    *out = c;
    return LQ_OK;
}

void lq_corpus_close(lq_corpus *c) {
    if (!c) return;
    if (c->f) fclose(c->f);
    free(c->buf);
    free(c);
}

uint64_t lq_corpus_size(const lq_corpus *c) { return c->size; }

/* Read up to READ_STEP more bytes; false at end of file. Consumed bytes are dropped first. */
static lq_status fill(lq_corpus *c, bool *got) {
    *got = false;
    if (c->eof) return LQ_OK;
    if (c->head > 0) {
        memmove(c->buf, c->buf + c->head, c->tail - c->head);
        c->base += c->head;
        c->tail -= c->head;
        c->head = 0;
    }
    if (c->tail + READ_STEP + 1 > c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 2 * READ_STEP;
        while (nc < c->tail + READ_STEP + 1) nc *= 2;
        char *nb = realloc(c->buf, nc);
        if (!nb) return lq_fail(LQ_ERR_NOMEM, "%s: cannot buffer %zu bytes", c->path, nc);
        c->buf = nb;
        c->cap = nc;
    }
    size_t n = fread(c->buf + c->tail, 1, READ_STEP, c->f);
    if (n == 0) {
        if (ferror(c->f)) return lq_fail(LQ_ERR_IO, "%s: read error", c->path);
        c->eof = true;
        return LQ_OK;
    }
    c->tail += n;
    c->buf[c->tail] = 0;
    *got = true;
    return LQ_OK;
}

static bool is_strip(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; }

lq_status lq_corpus_next_unit(lq_corpus *c, const char *sep, const char **text, size_t *len,
                              uint64_t *unit_off, uint64_t *next_off) {
    const char *s = (sep && *sep) ? sep : "\n";
    size_t sl = strlen(s);
    *text = NULL;
    *len = 0;
    for (;;) {
        /* find the separator in the buffered bytes, reading more until it shows up or EOF */
        size_t scan_from = c->head;
        char *hit = NULL;
        for (;;) {
            size_t avail = c->tail - scan_from;
            hit = avail >= sl ? memmem(c->buf + scan_from, avail, s, sl) : NULL;
            if (hit) break;
            if (c->tail - c->head > MAX_UNIT)
                return lq_fail(LQ_ERR_UNSUPPORTED, "%s: offset %llu: a unit longer than %zu "
                               "bytes (wrong --separator?)", c->path,
                               (unsigned long long)(c->base + c->head), MAX_UNIT);
            size_t keep = c->tail - c->head > sl ? c->tail - c->head - sl + 1 : 0;
            bool got;
            LQ_TRY(fill(c, &got));
            if (!got) break;
            scan_from = c->head + keep; /* a separator may straddle the old end */
        }
        size_t b = c->head, e = hit ? (size_t)(hit - c->buf) : c->tail;
        if (!hit && b == e) return LQ_OK; /* end of file */
        size_t next = hit ? e + sl : e;
        *unit_off = c->base + b;
        *next_off = c->base + next;
        c->head = next;
        while (b < e && is_strip(c->buf[b])) b++;
        while (e > b && is_strip(c->buf[e - 1])) e--;
        if (e > b) {
            *text = c->buf + b;
            *len = e - b;
            return LQ_OK;
        }
        if (!hit) return LQ_OK; /* a blank tail */
    }
}

lq_status lq_corpus_next_piece(lq_corpus *c, size_t max_bytes, const char **text, size_t *len,
                               uint64_t *off, uint64_t *next_off) {
    *text = NULL;
    *len = 0;
    if (max_bytes < 8) max_bytes = 8;
    while (c->tail - c->head < max_bytes) {
        bool got;
        LQ_TRY(fill(c, &got));
        if (!got) break;
    }
    size_t avail = c->tail - c->head;
    if (avail == 0) return LQ_OK;
    size_t n = avail;
    if (n > max_bytes) {
        n = max_bytes;
        const char *nl = memrchr(c->buf + c->head, '\n', n);
        if (nl) {
            n = (size_t)(nl - (c->buf + c->head)) + 1;
        } else {
            /* no newline: do not cut a UTF-8 character (continuation bytes are 10xxxxxx) */
            while (n > 1 && ((unsigned char)c->buf[c->head + n] & 0xC0) == 0x80) n--;
        }
    }
    *text = c->buf + c->head;
    *len = n;
    *off = c->base + c->head;
    *next_off = *off + n;
    c->head += n;
    return LQ_OK;
}

lq_status lq_corpus_next_segment(lq_corpus *c, const lq_tokenizer *t, size_t max_bytes,
                                 const char **text, size_t *len, uint64_t *off,
                                 uint64_t *next_off) {
    *text = NULL;
    *len = 0;
    if (max_bytes < 8) max_bytes = 8;
    size_t want = max_bytes, n = 0;
    for (;;) {
        /* one byte past the window: the cut rules look at the byte after the cut */
        bool got = true;
        while (c->tail - c->head <= want && got) LQ_TRY(fill(c, &got));
        size_t avail = c->tail - c->head;
        if (avail == 0) return LQ_OK;
        if (avail <= want) { /* the rest of the file fits: it is the last segment */
            n = avail;
            break;
        }
        n = lq_tokenizer_safe_cut(t, c->buf + c->head, want + 1);
        if (n > 0) break;
        /* no safe cut in the window: widen it (the cut stays a function of the start offset) */
        if (want >= MAX_UNIT)
            return lq_fail(LQ_ERR_UNSUPPORTED, "%s: offset %llu: no position in %zu bytes where "
                           "the tokenizer can cut the text without changing its tokens (use "
                           "--per-line)", c->path, (unsigned long long)(c->base + c->head),
                           MAX_UNIT);
        want *= 2;
    }
    *text = c->buf + c->head;
    *len = n;
    *off = c->base + c->head;
    *next_off = *off + n;
    c->head += n;
    return LQ_OK;
}
