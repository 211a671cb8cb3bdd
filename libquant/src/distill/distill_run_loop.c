/* distill_run_loop.c - how lq_distill_run cuts a corpus into records, and how it resumes.
 *
 * A resumed run trusts nothing it has not checked: the manifest's cursor says where in the
 * corpus the committed records end, and before continuing there the last committed record is
 * compared with the corpus at that point (its tokens must be the tokens the cursor says were
 * consumed). An edited cursor, or a corpus changed in the middle where the run identity (its
 * first and last 64 KiB and size) cannot see it, is refused instead of silently skipping or
 * repeating records. */
#include "distill_run_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Raw text per tokenizer call in chunked mode (a segment, cut where the tokenizer provably gives
 * the same ids as on the whole text): big enough to amortize, small enough to bound memory
 * whatever the corpus size. */
#define SEGMENT_BYTES ((size_t)64 << 10)

/* A unit longer than this (--per-line) is encoded in safe-cut segments of this size
 * (lq_tokenizer_encode_long): one call over a 50 MB line peaked at 2.2 GB. */
#define LONG_UNIT_BYTES ((size_t)1 << 20)

lq_status lqd_encode(const lq_tokenizer *tok, const char *text, size_t len, bool bos, bool next,
                     int32_t **ids, int64_t *cap, int64_t *n) {
    if (!next && len > LONG_UNIT_BYTES) {
        int32_t *all = NULL;
        LQ_TRY(lq_tokenizer_encode_long(tok, text, len, bos, LONG_UNIT_BYTES, &all, n));
        free(*ids);
        *ids = all;
        *cap = *n;
        return LQ_OK;
    }
    int64_t need = 0;
    lq_status s = next ? lq_tokenizer_encode_next(tok, text, len, *ids, *cap, &need)
                       : lq_tokenizer_encode(tok, text, len, bos, false, *ids, *cap, &need);
    if (s == LQ_ERR_INVALID_ARG && need > *cap) {
        int32_t *nb = realloc(*ids, (size_t)need * sizeof *nb);
        if (!nb) return lq_fail(LQ_ERR_NOMEM, "cannot allocate %lld token ids", (long long)need);
        *ids = nb;
        *cap = need;
        s = next ? lq_tokenizer_encode_next(tok, text, len, *ids, *cap, &need)
                 : lq_tokenizer_encode(tok, text, len, bos, false, *ids, *cap, &need);
    }
    *n = need;
    return s;
}

/* ---- the resume cursor ------------------------------------------------------------------------ */

/* Strict unsigned decimal at *p (digits only, no overflow); advances *p. */
static bool parse_u64(const char **p, uint64_t *out) {
    const char *s = *p;
    uint64_t x = 0;
    if (*s < '0' || *s > '9') return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (x > (UINT64_MAX - (uint64_t)(*s - '0')) / 10) return false;
        x = x * 10 + (uint64_t)(*s - '0');
    }
    *p = s;
    *out = x;
    return true;
}

/* "u OFFSET" (per unit) or "c OFFSET TOKENS" (chunks), nothing else. */
static bool parse_cursor(const char *c, char kind, uint64_t *a, uint64_t *b) {
    if (c[0] != kind || c[1] != ' ') return false;
    const char *p = c + 2;
    if (!parse_u64(&p, a)) return false;
    if (kind == 'c' && (*p++ != ' ' || !parse_u64(&p, b) || *b > INT64_MAX)) return false;
    return *p == 0;
}

static lq_status bad_cursor(const lqd_run *r, const char *why) {
    return lq_fail(LQ_ERR_MISMATCH, "%s: the resume cursor '%s' does not match %s: %s; was the "
                   "corpus or the manifest changed? rerun into another --out",
                   r->o->out, lq_distill_writer_cursor(r->w), r->o->corpus, why);
}

/* The last committed record (tokens copied into *tokens, malloc'd). */
typedef struct last_record {
    int32_t *tokens;
    int n;
    uint64_t source_offset;
} last_record;

static lq_status read_last_record(const lqd_run *r, last_record *out) {
    *out = (last_record){0};
    lq_distill_reader *rd = NULL;
    LQ_TRY(lq_distill_open(r->o->out, &rd));
    int64_t n = lq_distill_count(rd);
    lq_distill_record rec;
    lq_status s = n == lq_distill_writer_records(r->w)
                      ? lq_distill_get(rd, n - 1, &rec)
                      : lq_fail(LQ_ERR_FORMAT, "%s: %lld records readable, the manifest says %lld",
                                r->o->out, (long long)n, (long long)lq_distill_writer_records(r->w));
    if (s == LQ_OK && !(out->tokens = malloc((size_t)rec.n * sizeof *out->tokens)))
        s = lq_fail(LQ_ERR_NOMEM, "out of memory");
    if (s == LQ_OK) {
        memcpy(out->tokens, rec.tokens, (size_t)rec.n * sizeof *out->tokens);
        out->n = rec.n;
        out->source_offset = rec.source_offset;
    }
    lq_distill_close(rd);
    return s;
}

/* Per unit: the last record must be the last piece of the unit that ends at the cursor. */
static lq_status check_unit_cursor(const lqd_run *r, uint64_t start, bool bos) {
    last_record last;
    LQ_TRY(read_last_record(r, &last));
    lq_corpus *c = NULL;
    lq_status s = last.source_offset < start ? lq_corpus_open(r->o->corpus, last.source_offset, &c)
                                             : bad_cursor(r, "the last record starts after it");
    const char *text = NULL;
    size_t len = 0;
    uint64_t uoff = 0, noff = 0;
    if (s == LQ_OK) s = lq_corpus_next_unit(c, r->o->separator, &text, &len, &uoff, &noff);
    if (s == LQ_OK && (!text || uoff != last.source_offset || noff != start))
        s = bad_cursor(r, "the last committed unit does not end there");
    int32_t *ids = NULL;
    int64_t cap = 0, n = 0;
    if (s == LQ_OK) s = lqd_encode(r->tok, text, len, bos, false, &ids, &cap, &n);
    if (s == LQ_OK) {
        int64_t p = n > 0 ? (n - 1) / r->ctx * r->ctx : 0;
        if (n - p != last.n || memcmp(ids + p, last.tokens, (size_t)last.n * sizeof *ids) != 0)
            s = bad_cursor(r, "the last committed record is not the unit's last piece");
    }
    free(ids);
    lq_corpus_close(c);
    free(last.tokens);
    return s;
}

/* ---- one record per unit ---------------------------------------------------------------------- */

lq_status lqd_run_units(lqd_run *r) {
    const lq_distill_run_opts *o = r->o;
    bool bos = lq_tokenizer_bos(r->tok) >= 0;
    const char *cur = lq_distill_writer_cursor(r->w);
    uint64_t start = 0, unused;
    if (lq_distill_writer_records(r->w) > 0) {
        if (!parse_cursor(cur, 'u', &start, &unused)) return bad_cursor(r, "not 'u OFFSET'");
        LQ_TRY(check_unit_cursor(r, start, bos));
    } else if (*cur) {
        return bad_cursor(r, "no record was committed");
    }
    lq_corpus *c = NULL;
    LQ_TRY(lq_corpus_open(o->corpus, start, &c));
    int32_t *ids = NULL;
    int64_t cap = 0, n = 0;
    char cursor[64];
    lq_status st = LQ_OK;
    for (;;) {
        const char *text;
        size_t len;
        uint64_t uoff, noff;
        st = lq_corpus_next_unit(c, o->separator, &text, &len, &uoff, &noff);
        if (st != LQ_OK || !text) break;
        st = lqd_encode(r->tok, text, len, bos, false, &ids, &cap, &n);
        for (int64_t p = 0; p < n && st == LQ_OK; p += r->ctx) {
            int piece = (int)(n - p < r->ctx ? n - p : r->ctx);
            st = lqd_run_emit(r, ids + p, piece, uoff);
        }
        if (st != LQ_OK) break;
        snprintf(cursor, sizeof cursor, "u %llu", (unsigned long long)noff);
        st = lq_distill_writer_commit(r->w, cursor, false);
        if (st != LQ_OK) break;
        lqd_run_progress(r, noff);
    }
    if (st == LQ_OK) {
        snprintf(cursor, sizeof cursor, "u %llu", (unsigned long long)lq_corpus_size(c));
        st = lq_distill_writer_finish(r->w, cursor);
    }
    free(ids);
    lq_corpus_close(c);
    return st;
}

/* ---- chunks of the whole text ----------------------------------------------------------------- */

/* Chunked mode keeps an invariant that makes its cursor small: after each record, the tokens
 * left over are a suffix of the last segment read (a record takes `body` tokens, and a segment
 * is read only while fewer than `body` are buffered, so a record always swallows every earlier
 * segment). The cursor is "c <offset of that segment> <its tokens already consumed>"; a resumed
 * run re-reads and re-encodes the segment (segments are cut the same way from the same offset,
 * lq_corpus_next_segment) and drops the consumed tokens, after checking that the last committed
 * record ends with exactly those tokens. Segments end at safe cuts of the tokenizer, so their
 * ids, concatenated, are the ids of the whole text. */
typedef struct chunker {
    lqd_run *r;
    lq_corpus *c;
    int32_t *buf;           /* buf[0] is the BOS slot; buf[1 .. 1 + have) buffered text tokens */
    int64_t bcap, have;
    int32_t *ids;           /* the last segment's ids */
    int64_t icap, n;
    uint64_t last_off;      /* offset of the last segment read */
    int64_t last_n;         /* its tokens */
    uint64_t rec_off;       /* segment holding the next record's first text token */
    int64_t skip;           /* resume: tokens of the first segment already committed */
    last_record last;       /* resume: the last committed record, checked against them */
    bool resumed, eof;
} chunker;

/* The resumed run's first segment: the committed record must end with its first `skip` ids. */
static lq_status check_chunk_cursor(chunker *k, bool bos) {
    if (k->skip > k->n) return bad_cursor(k->r, "more tokens consumed than the segment holds");
    int64_t body = k->last.n - (bos ? 1 : 0), m = k->skip < body ? k->skip : body;
    if (memcmp(k->last.tokens + (k->last.n - m), k->ids + (k->skip - m),
               (size_t)m * sizeof *k->ids) != 0)
        return bad_cursor(k->r, "the last committed record does not end with those tokens");
    return LQ_OK;
}

/* Read segments until a record's worth of tokens is buffered (or the text ends). */
static lq_status fill(chunker *k, int body, bool bos) {
    const lq_distill_run_opts *o = k->r->o;
    while (k->have < body && !k->eof) {
        const char *text;
        size_t len;
        uint64_t poff, noff;
        LQ_TRY(lq_corpus_next_segment(k->c, k->r->tok, o->segment_bytes ? o->segment_bytes
                                                                         : SEGMENT_BYTES,
                                      &text, &len, &poff, &noff));
        if (!text) {
            k->eof = true;
            if (k->resumed && k->skip > 0) return bad_cursor(k->r, "it is past the end");
            break;
        }
        /* the whole text's encoding, segment by segment: only the corpus start gets the dummy
         * prefix */
        LQ_TRY(lqd_encode(k->r->tok, text, len, false, poff != 0, &k->ids, &k->icap, &k->n));
        if (k->resumed) {
            LQ_TRY(check_chunk_cursor(k, bos));
            k->resumed = false;
        }
        int64_t drop = k->skip;
        k->skip = 0;
        if (k->have == 0) k->rec_off = poff;
        if (1 + k->have + k->n > k->bcap) {
            int64_t nc = 1 + k->have + k->n;
            int32_t *nb = realloc(k->buf, (size_t)nc * sizeof *nb);
            if (!nb) return lq_fail(LQ_ERR_NOMEM, "cannot grow the token buffer");
            k->buf = nb;
            k->bcap = nc;
        }
        memcpy(k->buf + 1 + k->have, k->ids + drop, (size_t)(k->n - drop) * sizeof *k->ids);
        k->have += k->n - drop;
        k->last_off = poff;
        k->last_n = k->n;
        lqd_run_progress(k->r, noff);
    }
    return LQ_OK;
}

static lq_status chunk_loop(chunker *k, int body, bool bos, int bos_id) {
    char cur[64];
    for (;;) {
        LQ_TRY(fill(k, body, bos));
        if (k->have == 0) break;
        int take = (int)(k->have < body ? k->have : body);
        if (bos) k->buf[0] = (int32_t)bos_id;
        LQ_TRY(lqd_run_emit(k->r, bos ? k->buf : k->buf + 1, bos ? take + 1 : take, k->rec_off));
        memmove(k->buf + 1, k->buf + 1 + take, (size_t)(k->have - take) * sizeof *k->buf);
        k->have -= take;
        if (k->have > k->last_n)
            return lq_fail(LQ_ERR_INVALID_ARG, "chunk cursor invariant broken (%lld > %lld)",
                           (long long)k->have, (long long)k->last_n);
        if (k->have > 0) k->rec_off = k->last_off;
        snprintf(cur, sizeof cur, "c %llu %lld", (unsigned long long)k->last_off,
                 (long long)(k->last_n - k->have));
        LQ_TRY(lq_distill_writer_commit(k->r->w, cur, false));
    }
    snprintf(cur, sizeof cur, "c %llu %lld", (unsigned long long)k->last_off,
             (long long)k->last_n);
    return lq_distill_writer_finish(k->r->w, cur);
}

lq_status lqd_run_chunks(lqd_run *r) {
    int bos_id = lq_tokenizer_bos(r->tok);
    bool bos = bos_id >= 0 && lq_tokenizer_add_bos_default(r->tok);
    int body = bos ? r->ctx - 1 : r->ctx; /* text tokens per record */
    if (body < 1) return lq_fail(LQ_ERR_INVALID_ARG, "ctx %d leaves no room after BOS", r->ctx);
    chunker k = {.r = r, .bcap = (int64_t)r->ctx + 1};
    const char *cur = lq_distill_writer_cursor(r->w);
    lq_status s = LQ_OK;
    if (lq_distill_writer_records(r->w) > 0) {
        uint64_t skip = 0;
        if (!parse_cursor(cur, 'c', &k.last_off, &skip)) return bad_cursor(r, "not 'c OFFSET TOKENS'");
        k.skip = (int64_t)skip;
        k.resumed = true;
        LQ_TRY(read_last_record(r, &k.last));
        if (k.last.source_offset > k.last_off)
            s = bad_cursor(r, "the last record starts after it");
    } else if (*cur) {
        return bad_cursor(r, "no record was committed");
    }
    k.rec_off = k.last_off;
    if (s == LQ_OK && !(k.buf = malloc((size_t)k.bcap * sizeof *k.buf)))
        s = lq_fail(LQ_ERR_NOMEM, "cannot allocate the token buffer");
    if (s == LQ_OK) s = lq_corpus_open(r->o->corpus, k.last_off, &k.c);
    if (s == LQ_OK) s = chunk_loop(&k, body, bos, bos_id);
    free(k.last.tokens);
    free(k.ids);
    free(k.buf);
    lq_corpus_close(k.c);
    return s;
}
