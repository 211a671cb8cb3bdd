/* distill_read.c - random access to the records of a distillation dataset (directory through
 * its manifest, one shard file, or one shard in memory). Every offset and size read from a file
 * is checked against the bytes actually there before use. */
#include "distill_internal.h"
#include "libquant/lq_file.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "lq_blocks.h"

typedef struct rblock {
    uint64_t offset, first_record;
    uint32_t n_records, raw_size, comp_size, payload_crc;
} rblock;

typedef struct rshard {
    char name[PATH_MAX];
    const uint8_t *data;
    size_t len;      /* bytes that belong to the shard (committed size) */
    void *map;       /* owned mapping (NULL for lq_distill_open_mem) */
    size_t map_len;
    uint64_t first_record, n_records, n_tokens;
    rblock *blocks;
    uint32_t n_blocks;
} rshard;

struct lq_distill_reader {
    lq_distill_meta meta;
    rshard *shards;
    int n_shards;
    int64_t n_records, n_tokens;
    uint64_t file_bytes;
    int cache_shard;          /* block whose raw bytes are in `raw` (-1: none) */
    int64_t cache_block;
    uint8_t *raw;
    size_t raw_cap;
    int32_t *tokens, *ids;    /* typed copies handed out by lq_distill_get */
    float *logp, *rest;
    uint16_t *feat;
    size_t cap_pos;           /* positions the typed buffers hold */
};

/* ---- one shard ------------------------------------------------------------------------------- */

static lq_status push_block(rshard *s, uint32_t *cap, const rblock *b) {
    if (s->n_blocks == *cap) {
        uint32_t nc = *cap ? *cap * 2 : 16;
        rblock *nb = realloc(s->blocks, (size_t)nc * sizeof *nb);
        if (!nb) return lq_fail(LQ_ERR_NOMEM, "%s: cannot grow the block list", s->name);
        s->blocks = nb;
        *cap = nc;
    }
    s->blocks[s->n_blocks++] = *b;
    return LQ_OK;
}

/* Block header at `off`, checked to lie (with its payload) inside the shard's first `end` bytes. */
static lq_status read_block(const rshard *s, uint64_t off, uint64_t end, rblock *out) {
    if (off < LQD_HEADER_SIZE || off > end || end - off < LQD_BLOCK_HEADER_SIZE)
        return lq_fail(LQ_ERR_FORMAT, "%s: offset %llu: truncated block header", s->name,
                       (unsigned long long)off);
    lqd_block_header b;
    LQ_TRY(lqd_block_header_decode(s->data + off, s->name, off, &b));
    if (b.comp_size > end - off - LQD_BLOCK_HEADER_SIZE)
        return lq_fail(LQ_ERR_FORMAT, "%s: offset %llu: block of %u bytes runs past the end "
                       "(%llu)", s->name, (unsigned long long)off, b.comp_size,
                       (unsigned long long)end);
    *out = (rblock){off, b.first_record, b.n_records, b.raw_size, b.comp_size, b.payload_crc};
    return LQ_OK;
}

static lq_status parse_shard(rshard *s, lq_distill_meta *meta) {
    if (s->len < LQD_HEADER_SIZE)
        return lq_fail(LQ_ERR_FORMAT, "%s: offset 0: %zu bytes, shorter than the %d-byte header",
                       s->name, s->len, LQD_HEADER_SIZE);
    lqd_shard_state st;
    LQ_TRY(lqd_header_decode(s->data, s->name, meta, &st));
    s->first_record = st.first_record;
    uint32_t cap = 0;
    uint64_t rec = st.first_record;
    uint64_t end = s->len;
    if (st.index_offset != 0) {
        /* sealed: the index says where every block is */
        uint64_t ib = (uint64_t)st.n_blocks * LQD_INDEX_ENTRY_SIZE;
        if (st.index_offset < LQD_HEADER_SIZE || st.index_offset > s->len ||
            ib > s->len - st.index_offset)
            return lq_fail(LQ_ERR_FORMAT, "%s: offset %d: index (%u blocks at %llu) outside the "
                           "file (%zu bytes)", s->name, LQD_H_INDEX_OFF, st.n_blocks,
                           (unsigned long long)st.index_offset, s->len);
        const uint8_t *ix = s->data + st.index_offset;
        if (lqd_crc32(ix, (size_t)ib) != st.index_crc)
            return lq_fail(LQ_ERR_FORMAT, "%s: offset %llu: index checksum mismatch", s->name,
                           (unsigned long long)st.index_offset);
        end = st.index_offset;
        for (uint32_t i = 0; i < st.n_blocks; i++) {
            rblock b;
            uint64_t off = lqd_get64(ix + 16 * (size_t)i);
            LQ_TRY(read_block(s, off, end, &b));
            if (b.first_record != rec || lqd_get64(ix + 16 * (size_t)i + 8) != rec)
                return lq_fail(LQ_ERR_FORMAT, "%s: offset %llu: block starts at record %llu, "
                               "expected %llu", s->name, (unsigned long long)off,
                               (unsigned long long)b.first_record, (unsigned long long)rec);
            LQ_TRY(push_block(s, &cap, &b));
            rec += b.n_records;
        }
        if (rec - st.first_record != st.n_records)
            return lq_fail(LQ_ERR_FORMAT, "%s: offset %d: header says %llu records, blocks hold "
                           "%llu", s->name, LQD_H_NRECORDS, (unsigned long long)st.n_records,
                           (unsigned long long)(rec - st.first_record));
        s->n_tokens = st.n_tokens;
    } else {
        /* unsealed (a run in progress or interrupted): walk the blocks up to the end */
        uint64_t off = LQD_HEADER_SIZE;
        while (off < end) {
            rblock b;
            LQ_TRY(read_block(s, off, end, &b));
            if (b.first_record != rec)
                return lq_fail(LQ_ERR_FORMAT, "%s: offset %llu: block starts at record %llu, "
                               "expected %llu", s->name, (unsigned long long)off,
                               (unsigned long long)b.first_record, (unsigned long long)rec);
            LQ_TRY(push_block(s, &cap, &b));
            rec += b.n_records;
            off += LQD_BLOCK_HEADER_SIZE + (uint64_t)b.comp_size;
        }
    }
    s->n_records = rec - st.first_record;
    return LQ_OK;
}

static void free_shard(rshard *s) {
    if (s->map) munmap(s->map, s->map_len);
    free(s->blocks);
}

static lq_status map_file(rshard *s, const char *path, uint64_t limit) {
    snprintf(s->name, sizeof s->name, "%s", path);
    int fd;
    LQ_TRY(lq_file_open_input(path, &fd, NULL));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return lq_fail(LQ_ERR_IO, "%s: not a regular file", path);
    }
    size_t n = (size_t)sb.st_size;
    if (limit != UINT64_MAX) {
        if ((uint64_t)n < limit) {
            close(fd);
            return lq_fail(LQ_ERR_FORMAT, "%s: %zu bytes, the manifest says %llu committed", path,
                           n, (unsigned long long)limit);
        }
        n = (size_t)limit; /* bytes past the last commit are not part of the dataset */
    }
    if (n > 0) {
        void *p = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return lq_fail(LQ_ERR_IO, "%s: mmap: %s", path, strerror(errno));
        }
        s->map = p;
        s->map_len = n;
        s->data = p;
    }
    close(fd);
    s->len = n;
    return LQ_OK;
}

/* ---- reader ---------------------------------------------------------------------------------- */

static lq_distill_reader *reader_new(int n_shards) {
    lq_distill_reader *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->shards = calloc((size_t)(n_shards > 0 ? n_shards : 1), sizeof *r->shards);
    if (!r->shards) {
        free(r);
        return NULL;
    }
    r->cache_shard = -1;
    return r;
}

/* Add shard i (already mapped) to the reader: same dataset as the others, records in sequence. */
static lq_status add_shard(lq_distill_reader *r, int i) {
    rshard *s = &r->shards[i];
    lq_distill_meta m;
    LQ_TRY(parse_shard(s, &m));
    if (i == 0) {
        r->meta = m;
    } else if (!lqd_meta_same(&m, &r->meta)) {
        return lq_fail(LQ_ERR_MISMATCH, "%s: header disagrees with the first shard", s->name);
    }
    if (s->first_record != (uint64_t)r->n_records)
        return lq_fail(LQ_ERR_FORMAT, "%s: offset %d: first record %llu, expected %lld", s->name,
                       LQD_H_FIRST_RECORD, (unsigned long long)s->first_record,
                       (long long)r->n_records);
    r->n_records += (int64_t)s->n_records;
    r->n_tokens += (int64_t)s->n_tokens;
    r->file_bytes += s->len;
    r->n_shards = i + 1;
    return LQ_OK;
}

lq_status lq_distill_open_mem(const void *data, size_t len, const char *name,
                              lq_distill_reader **out) {
    *out = NULL;
    lq_distill_reader *r = reader_new(1);
    if (!r) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", name);
    snprintf(r->shards[0].name, sizeof r->shards[0].name, "%s", name);
    r->shards[0].data = data;
    r->shards[0].len = len;
    r->n_shards = 1;
    lq_status st = add_shard(r, 0);
    if (st != LQ_OK) {
        lq_distill_close(r);
        return st;
    }
    *out = r;
    return LQ_OK;
}

static lq_status open_dir(const char *dir, lq_distill_reader **out) {
    char mpath[PATH_MAX + 32];
    snprintf(mpath, sizeof mpath, "%s/" LQD_MANIFEST, dir);
    json_t *j;
    LQ_TRY(lqd_load_json(mpath, &j));
    json_t *sh = json_object_get(j, "shards");
    int ns = (int)json_array_size(sh);
    lq_distill_reader *r = reader_new(ns);
    lq_status st = r ? LQ_OK : lq_fail(LQ_ERR_NOMEM, "%s: out of memory", dir);
    int64_t tokens = (int64_t)json_integer_value(json_object_get(j, "tokens"));
    for (int i = 0; i < ns && st == LQ_OK; i++) {
        json_t *e = json_array_get(sh, (size_t)i);
        const char *file = json_string_value(json_object_get(e, "file"));
        json_int_t bytes = json_integer_value(json_object_get(e, "bytes"));
        if (!file || strchr(file, '/') || bytes < LQD_HEADER_SIZE) {
            st = lq_fail(LQ_ERR_FORMAT, "%s: shard %d: bad entry", mpath, i);
            break;
        }
        char path[PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", dir, file);
        r->n_shards = i + 1; /* so close() unmaps it on failure */
        st = map_file(&r->shards[i], path, (uint64_t)bytes);
        if (st == LQ_OK) st = add_shard(r, i);
    }
    if (st == LQ_OK && ns == 0) {
        /* a finished run over nothing, or one that never committed: no header to read */
        st = lq_fail(LQ_ERR_FORMAT, "%s: the dataset has no shard (no record was committed)",
                     mpath);
    }
    json_decref(j);
    if (st != LQ_OK) {
        lq_distill_close(r);
        return st;
    }
    r->n_tokens = tokens; /* unsealed shards do not know their token count; the manifest does */
    *out = r;
    return LQ_OK;
}

lq_status lq_distill_open(const char *path, lq_distill_reader **out) {
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) return lq_fail(LQ_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return open_dir(path, out);
    lq_distill_reader *r = reader_new(1);
    if (!r) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
    r->n_shards = 1;
    lq_status st = map_file(&r->shards[0], path, UINT64_MAX);
    if (st == LQ_OK) st = add_shard(r, 0);
    if (st != LQ_OK) {
        lq_distill_close(r);
        return st;
    }
    *out = r;
    return LQ_OK;
}

void lq_distill_close(lq_distill_reader *r) {
    if (!r) return;
    for (int i = 0; i < r->n_shards; i++) free_shard(&r->shards[i]);
    free(r->shards);
    free(r->raw);
    free(r->tokens);
    free(r->ids);
    free(r->logp);
    free(r->rest);
    free(r->feat);
    free(r);
}

const lq_distill_meta *lq_distill_reader_meta(const lq_distill_reader *r) { return &r->meta; }
int64_t lq_distill_count(const lq_distill_reader *r) { return r->n_records; }
int64_t lq_distill_token_count(const lq_distill_reader *r) { return r->n_tokens; }
uint64_t lq_distill_file_bytes(const lq_distill_reader *r) { return r->file_bytes; }

/* ---- records --------------------------------------------------------------------------------- */

/* Decompress block b of shard si into r->raw and check that its records tile it exactly. */
static lq_status load_block(lq_distill_reader *r, int si, int64_t bi) {
    if (r->cache_shard == si && r->cache_block == bi) return LQ_OK;
    const rshard *s = &r->shards[si];
    const rblock *b = &s->blocks[bi];
    r->cache_shard = -1;
    const uint8_t *payload = s->data + b->offset + LQD_BLOCK_HEADER_SIZE;
    if (lqd_crc32(payload, b->comp_size) != b->payload_crc)
        return lq_fail(LQ_ERR_FORMAT, "%s: offset %llu: corrupt block (payload checksum "
                       "mismatch)", s->name, (unsigned long long)b->offset);
    if (r->raw_cap < b->raw_size) {
        uint8_t *nr = realloc(r->raw, b->raw_size);
        if (!nr) return lq_fail(LQ_ERR_NOMEM, "%s: cannot allocate %u bytes", s->name,
                                b->raw_size);
        r->raw = nr;
        r->raw_cap = b->raw_size;
    }
    uLongf got = b->raw_size;
    int zr = uncompress(r->raw, &got, payload, b->comp_size);
    if (zr != Z_OK || got != b->raw_size)
        return lq_fail(LQ_ERR_FORMAT, "%s: offset %llu: corrupt block (zlib %d, %lu of %u bytes)",
                       s->name, (unsigned long long)b->offset, zr, (unsigned long)got,
                       b->raw_size);
    uint64_t off = 0;
    for (uint32_t i = 0; i < b->n_records; i++) {
        uint64_t n = off + 4 <= b->raw_size ? lqd_get32(r->raw + off) : 0;
        uint64_t sz = lqd_record_size(&r->meta, n);
        if (off + 4 > b->raw_size || sz == 0 || n > (uint64_t)r->meta.n_ctx ||
            sz > b->raw_size - off)
            return lq_fail(LQ_ERR_FORMAT, "%s: offset %llu: corrupt block (record %u of %llu "
                           "tokens at raw byte %llu)", s->name, (unsigned long long)b->offset,
                           i, (unsigned long long)n, (unsigned long long)off);
        off += sz;
    }
    if (off != b->raw_size)
        return lq_fail(LQ_ERR_FORMAT, "%s: offset %llu: corrupt block (%llu trailing bytes)",
                       s->name, (unsigned long long)b->offset,
                       (unsigned long long)(b->raw_size - off));
    r->cache_shard = si;
    r->cache_block = bi;
    return LQ_OK;
}

static lq_status ensure_typed(lq_distill_reader *r, size_t n) {
    if (n <= r->cap_pos) return LQ_OK;
    const lq_distill_meta *m = &r->meta;
    size_t k = (size_t)m->k, f = (size_t)m->n_feat_layers * (size_t)m->dim;
    free(r->tokens);
    free(r->ids);
    free(r->logp);
    free(r->rest);
    free(r->feat);
    r->tokens = malloc(n * 4);
    r->ids = malloc(n * k * 4);
    r->logp = malloc(n * k * 4);
    r->rest = malloc(n * 4);
    r->feat = f ? malloc(n * f * 2) : NULL;
    r->cap_pos = 0;
    if (!r->tokens || !r->ids || !r->logp || !r->rest || (f && !r->feat))
        return lq_fail(LQ_ERR_NOMEM, "distill reader: cannot allocate %zu positions", n);
    r->cap_pos = n;
    return LQ_OK;
}

lq_status lq_distill_get(lq_distill_reader *r, int64_t i, lq_distill_record *rec) {
    memset(rec, 0, sizeof *rec);
    if (i < 0 || i >= r->n_records)
        return lq_fail(LQ_ERR_INVALID_ARG, "distill: record %lld out of range (0 .. %lld)",
                       (long long)i, (long long)r->n_records - 1);
    int si = 0;
    while ((uint64_t)i >= r->shards[si].first_record + r->shards[si].n_records) si++;
    const rshard *s = &r->shards[si];
    /* binary search: last block whose first record <= i */
    int64_t lo = 0, hi = (int64_t)s->n_blocks - 1;
    while (lo < hi) {
        int64_t mid = (lo + hi + 1) / 2;
        if (s->blocks[mid].first_record <= (uint64_t)i) lo = mid;
        else hi = mid - 1;
    }
    LQ_TRY(load_block(r, si, lo));
    const rblock *b = &s->blocks[lo];
    const lq_distill_meta *m = &r->meta;
    uint64_t off = 0;
    for (uint64_t j = b->first_record; j < (uint64_t)i; j++)
        off += lqd_record_size(m, lqd_get32(r->raw + off));
    const uint8_t *p = r->raw + off;
    size_t n = lqd_get32(p), k = (size_t)m->k, nk = n * k;
    LQ_TRY(ensure_typed(r, n));
    rec->n = (int32_t)n;
    rec->source_offset = lqd_get64(p + 8);
    p += LQD_RECORD_HEADER_SIZE;
    memcpy(r->tokens, p, n * 4);
    p += n * 4;
    memcpy(r->ids, p, nk * 4);
    p += nk * 4;
    if (m->logp_dtype == LQ_DTYPE_F16) {
        for (size_t t = 0; t < nk; t++) {
            uint16_t h;
            memcpy(&h, p + 2 * t, 2);
            r->logp[t] = lq_f16_to_f32(h);
        }
        p += nk * 2;
    } else {
        memcpy(r->logp, p, nk * 4);
        p += nk * 4;
    }
    memcpy(r->rest, p, n * 4);
    p += n * 4;
    size_t fb = (size_t)m->n_feat_layers * n * (size_t)m->dim * 2;
    if (fb) memcpy(r->feat, p, fb);
    /* ids index the consumer's arrays: never hand out one outside the vocabulary */
    for (size_t t = 0; t < n; t++)
        if (r->tokens[t] < 0 || r->tokens[t] >= m->vocab)
            return lq_fail(LQ_ERR_FORMAT, "%s: offset %llu: record %lld: token id %d out of range",
                           s->name, (unsigned long long)b->offset, (long long)i, r->tokens[t]);
    for (size_t t = 0; t < nk; t++)
        if (r->ids[t] < 0 || r->ids[t] >= m->vocab)
            return lq_fail(LQ_ERR_FORMAT, "%s: offset %llu: record %lld: top-k id %d out of "
                           "range", s->name, (unsigned long long)b->offset, (long long)i,
                           r->ids[t]);
    rec->tokens = r->tokens;
    rec->topk_ids = r->ids;
    rec->topk_logp = r->logp;
    rec->rest_logp = r->rest;
    rec->features = fb ? r->feat : NULL;
    return LQ_OK;
}
