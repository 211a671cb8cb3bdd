/* distill_write.c - the resumable shard writer.
 *
 * Commit protocol (what makes a killed run resumable without losing or duplicating records):
 *   1. the buffered records are compressed into one block and written at the shard's committed
 *      end, then the shard is fdatasync'ed;
 *   2. a full shard is sealed (index appended, header rewritten with counts, fsync);
 *   3. manifest.json is written to a temp name, fsynced and renamed over the old one, and the
 *      directory is fsynced.
 * The manifest is the only source of truth: bytes past a shard's committed size, and shard files
 * it does not list, are leftovers of an interrupted commit and are dropped on reopen.
 */
#include "distill_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/file.h>
#include <zlib.h>

#include "libquant/lq_file.h"
#include "libquant/lq_tensor.h"
#include "lq_blocks.h"

#define DEFAULT_BLOCK_BYTES ((size_t)1 << 20)
#define DEFAULT_SHARD_BYTES ((uint64_t)256 << 20)
#define MAX_CURSOR (64 * 1024)

typedef struct shard_entry {
    uint64_t bytes, records, tokens;
    bool sealed;
} shard_entry;

typedef struct block_ref {
    uint64_t offset, first_record;
} block_ref;

struct lq_distill_writer {
    char dir[PATH_MAX];
    lq_distill_meta meta;
    lq_distill_writer_opts opts;
    bool complete;
    char *cursor;
    int64_t n_records; /* committed */
    int64_t n_tokens;
    shard_entry *shards; /* manifest's list; only the last may be unsealed */
    int n_shards, cap_shards;
    int fd;              /* the open (unsealed) shard, -1 if none */
    int lock_fd;         /* flock on dir/.lock, -1 if none */
    block_ref *blocks;   /* blocks of the open shard */
    uint32_t n_blocks, cap_blocks;
    uint8_t *buf;        /* pending raw records */
    size_t buf_len, buf_cap;
    uint32_t buf_records;
    int64_t buf_tokens;
    uint8_t *zbuf;
    size_t zcap;
};

static void shard_path(const lq_distill_writer *w, int i, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/shard-%05d.lqd", w->dir, i);
}

/* ---- output directory (shared with distill_seq.c) ---------------------------------------- */

lq_status lqd_open_regular(const char *path, int flags, int *fd_out) {
    *fd_out = -1;
    int fd = open(path, flags | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 && errno == ELOOP)
        return lq_fail(LQ_ERR_IO, "%s: is a symbolic link; refusing to write through it", path);
    if (fd < 0) return lq_fail(LQ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return lq_fail(LQ_ERR_IO, "%s: not a regular file; refusing to write to it", path);
    }
    *fd_out = fd;
    return LQ_OK;
}

lq_status lqd_replace_file(const char *dir, const char *name, const char *text) {
    char fin[PATH_MAX + 32];
    snprintf(fin, sizeof fin, "%s/%s", dir, name);
    lq_file_out f; /* temp, fsync, rename, fsync the directory */
    LQ_TRY(lq_file_begin(&f, fin));
    lq_status st = lq_file_write(&f, text, strlen(text));
    if (st == LQ_OK) st = lq_file_write(&f, "\n", 1);
    if (st != LQ_OK) {
        lq_file_abort(&f);
        return st;
    }
    return lq_file_commit(&f);
}

lq_status lqd_load_json(const char *path, json_t **out) {
    *out = NULL;
    FILE *f;
    LQ_TRY(lq_file_fopen_input(path, &f));
    json_error_t err;
    *out = json_loadf(f, 0, &err);
    fclose(f);
    if (!*out) return lq_fail(LQ_ERR_FORMAT, "%s: line %d: %s", path, err.line, err.text);
    return LQ_OK;
}

/* Empty but for our own lock file. */
static bool dir_is_empty(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return false;
    bool empty = true;
    struct dirent *e;
    while (empty && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
            strcmp(e->d_name, LQD_LOCK) != 0)
            empty = false;
    closedir(d);
    return empty;
}

/* flock(2) on dir/.lock, holding our pid for the message a second writer gets. The lock dies
 * with the process, so a killed run never blocks its resume; the file is removed on close. */
static lq_status lock_dir(const char *dir, int *out) {
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/" LQD_LOCK, dir);
    for (int attempt = 0; attempt < 8; attempt++) {
        int fd;
        LQ_TRY(lqd_open_regular(p, O_RDWR | O_CREAT, &fd));
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            char b[32] = {0};
            ssize_t n = pread(fd, b, sizeof b - 1, 0);
            close(fd);
            long pid = n > 0 ? strtol(b, NULL, 10) : 0;
            if (e == EWOULDBLOCK && pid > 0)
                return lq_fail(LQ_ERR_EXISTS, "%s: in use by pid %ld (another run is writing "
                               "it); wait for it or choose another --out", dir, pid);
            if (e == EWOULDBLOCK)
                return lq_fail(LQ_ERR_EXISTS, "%s: in use by another process; wait for it or "
                               "choose another --out", dir);
            return lq_fail(LQ_ERR_IO, "%s: flock: %s", p, strerror(e));
        }
        /* the previous holder may have removed the file between our open and our flock: then
         * we hold a lock nobody else can see; take the file that is there now */
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(p, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
            char pid[32];
            int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
            if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
                close(fd);
                return lq_fail(LQ_ERR_IO, "%s: cannot write: %s", p, strerror(errno));
            }
            *out = fd;
            return LQ_OK;
        }
        close(fd);
    }
    return lq_fail(LQ_ERR_IO, "%s: cannot take the lock (it keeps being replaced)", p);
}

void lqd_unlock_dir(const char *dir, int fd) {
    if (fd < 0) return;
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/" LQD_LOCK, dir);
    unlink(p); /* while still holding it: nobody can take a file about to vanish */
    close(fd);
}

lq_status lqd_open_out_dir(const char *dir, const char *manifest, const char *what_dir,
                           const char *what_output, bool *fresh, int *lock_fd) {
    *fresh = false;
    *lock_fd = -1;
    if (!dir[0]) return lq_fail(LQ_ERR_INVALID_ARG, "the output directory name is empty");
    char mpath[PATH_MAX + 32];
    snprintf(mpath, sizeof mpath, "%s/%s", dir, manifest);
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        if (mkdir(dir, 0755) != 0)
            return lq_fail(LQ_ERR_IO, "%s: cannot create directory: %s", dir, strerror(errno));
    } else if (!S_ISDIR(sb.st_mode)) {
        return lq_fail(LQ_ERR_EXISTS, "%s: exists and is not %s", dir, what_dir);
    }
    /* lock before looking inside: a second run must not read a live run's half-made state */
    LQ_TRY(lock_dir(dir, lock_fd));
    if (stat(mpath, &sb) != 0) {
        if (!dir_is_empty(dir)) {
            lqd_unlock_dir(dir, *lock_fd);
            *lock_fd = -1;
            return lq_fail(LQ_ERR_EXISTS, "%s: exists, is not empty and has no %s (not a %s "
                           "output)", dir, manifest, what_output);
        }
        *fresh = true;
    }
    return LQ_OK;
}

/* ---- manifest ------------------------------------------------------------------------------ */

static void hex64(char *buf, uint64_t v) { snprintf(buf, 17, "%016llx", (unsigned long long)v); }

static bool parse_hex64(const char *s, uint64_t *out) {
    if (!s || strlen(s) != 16) return false;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 16);
    if (errno || *end) return false;
    *out = v;
    return true;
}

static lq_status write_manifest(lq_distill_writer *w) {
    const lq_distill_meta *m = &w->meta;
    char h[17];
    json_t *j = json_object();
    json_object_set_new(j, "format", json_string("lq-distill"));
    json_object_set_new(j, "version", json_integer(LQ_DISTILL_VERSION));
    hex64(h, m->teacher_id);
    json_object_set_new(j, "teacher_id", json_string(h));
    hex64(h, m->tokenizer_hash);
    json_object_set_new(j, "tokenizer_hash", json_string(h));
    hex64(h, m->run_id);
    json_object_set_new(j, "run_id", json_string(h));
    json_object_set_new(j, "teacher_name", json_string(m->teacher_name));
    json_object_set_new(j, "vocab", json_integer(m->vocab));
    json_object_set_new(j, "k", json_integer(m->k));
    json_object_set_new(j, "dim", json_integer(m->dim));
    json_object_set_new(j, "n_ctx", json_integer(m->n_ctx));
    json_object_set_new(j, "mode", json_integer(m->mode));
    json_object_set_new(j, "logp_dtype", json_string(lq_dtype_name(m->logp_dtype)));
    json_t *fl = json_array();
    for (int i = 0; i < m->n_feat_layers; i++) json_array_append_new(fl, json_integer(m->feat_layers[i]));
    json_object_set_new(j, "feat_layers", fl);
    json_object_set_new(j, "complete", json_boolean(w->complete));
    json_object_set_new(j, "records", json_integer(w->n_records));
    json_object_set_new(j, "tokens", json_integer(w->n_tokens));
    json_object_set_new(j, "cursor", json_string(w->cursor ? w->cursor : ""));
    json_t *sh = json_array();
    for (int i = 0; i < w->n_shards; i++) {
        char name[32];
        snprintf(name, sizeof name, "shard-%05d.lqd", i);
        json_t *e = json_object();
        json_object_set_new(e, "file", json_string(name));
        json_object_set_new(e, "bytes", json_integer((json_int_t)w->shards[i].bytes));
        json_object_set_new(e, "records", json_integer((json_int_t)w->shards[i].records));
        json_object_set_new(e, "tokens", json_integer((json_int_t)w->shards[i].tokens));
        json_object_set_new(e, "sealed", json_boolean(w->shards[i].sealed));
        json_array_append_new(sh, e);
    }
    json_object_set_new(j, "shards", sh);
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!text) return lq_fail(LQ_ERR_NOMEM, "%s: cannot render the manifest", w->dir);

    lq_status st = lqd_replace_file(w->dir, LQD_MANIFEST, text);
    free(text);
    return st;
}

static int jint(json_t *o, const char *key, json_int_t dflt) {
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int)json_integer_value(v) : (int)dflt;
}

/* Read the manifest of an existing run into w (meta from it in *mm). */
static lq_status read_manifest(lq_distill_writer *w, const char *path, lq_distill_meta *mm) {
    json_t *j;
    LQ_TRY(lqd_load_json(path, &j));
    lq_status st = LQ_OK;
    memset(mm, 0, sizeof *mm);
    const char *fmt = json_string_value(json_object_get(j, "format"));
    if (!fmt || strcmp(fmt, "lq-distill") != 0 || jint(j, "version", -1) != LQ_DISTILL_VERSION) {
        st = lq_fail(LQ_ERR_FORMAT, "%s: not an lq-distill manifest of version %d", path,
                     LQ_DISTILL_VERSION);
        goto done;
    }
    if (!parse_hex64(json_string_value(json_object_get(j, "teacher_id")), &mm->teacher_id) ||
        !parse_hex64(json_string_value(json_object_get(j, "tokenizer_hash")),
                     &mm->tokenizer_hash) ||
        !parse_hex64(json_string_value(json_object_get(j, "run_id")), &mm->run_id)) {
        st = lq_fail(LQ_ERR_FORMAT, "%s: bad teacher_id / tokenizer_hash / run_id", path);
        goto done;
    }
    const char *tn = json_string_value(json_object_get(j, "teacher_name"));
    snprintf(mm->teacher_name, sizeof mm->teacher_name, "%s", tn ? tn : "");
    mm->vocab = jint(j, "vocab", -1);
    mm->k = jint(j, "k", -1);
    mm->dim = jint(j, "dim", -1);
    mm->n_ctx = jint(j, "n_ctx", -1);
    mm->mode = jint(j, "mode", -1);
    const char *ld = json_string_value(json_object_get(j, "logp_dtype"));
    if (!ld || !lq_dtype_parse(ld, &mm->logp_dtype)) mm->logp_dtype = LQ_DTYPE_COUNT;
    json_t *fl = json_object_get(j, "feat_layers");
    size_t nfl = json_array_size(fl);
    if (nfl > LQ_DISTILL_MAX_FEAT_LAYERS) {
        st = lq_fail(LQ_ERR_FORMAT, "%s: too many feature layers", path);
        goto done;
    }
    mm->n_feat_layers = (int32_t)nfl;
    for (size_t i = 0; i < nfl; i++)
        mm->feat_layers[i] = (int32_t)json_integer_value(json_array_get(fl, i));
    w->complete = json_is_true(json_object_get(j, "complete"));
    w->n_records = jint(j, "records", 0);
    w->n_tokens = json_integer_value(json_object_get(j, "tokens"));
    const char *cur = json_string_value(json_object_get(j, "cursor"));
    w->cursor = strdup(cur ? cur : "");
    json_t *sh = json_object_get(j, "shards");
    size_t ns = json_array_size(sh);
    w->shards = calloc(ns ? ns : 1, sizeof *w->shards);
    if (!w->cursor || !w->shards) {
        st = lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    w->cap_shards = (int)(ns ? ns : 1);
    w->n_shards = (int)ns;
    uint64_t sum = 0;
    for (size_t i = 0; i < ns; i++) {
        json_t *e = json_array_get(sh, i);
        shard_entry *s = &w->shards[i];
        s->bytes = (uint64_t)json_integer_value(json_object_get(e, "bytes"));
        s->records = (uint64_t)json_integer_value(json_object_get(e, "records"));
        s->tokens = (uint64_t)json_integer_value(json_object_get(e, "tokens"));
        s->sealed = json_is_true(json_object_get(e, "sealed"));
        if ((!s->sealed && i + 1 != ns) || s->bytes < LQD_HEADER_SIZE) {
            st = lq_fail(LQ_ERR_FORMAT, "%s: shard %zu: inconsistent entry", path, i);
            goto done;
        }
        sum += s->records;
    }
    if (sum != (uint64_t)w->n_records)
        st = lq_fail(LQ_ERR_FORMAT, "%s: shard record counts do not add up to %lld", path,
                     (long long)w->n_records);
done:
    json_decref(j);
    return st;
}

/* ---- shards ---------------------------------------------------------------------------------- */

static lq_status pwrite_all(int fd, const void *p, size_t n, uint64_t off, const char *path) {
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t k = pwrite(fd, b, n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0)
            return lq_fail(LQ_ERR_IO, "%s: write at offset %llu: %s", path,
                           (unsigned long long)off, k < 0 ? strerror(errno) : "short write");
        b += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return LQ_OK;
}

static uint64_t first_record_of(const lq_distill_writer *w, int shard) {
    uint64_t r = 0;
    for (int i = 0; i < shard; i++) r += w->shards[i].records;
    return r;
}

static lq_status write_header(lq_distill_writer *w, const lqd_shard_state *ss) {
    uint8_t h[LQD_HEADER_SIZE];
    lqd_header_encode(&w->meta, ss, h);
    char path[PATH_MAX + 32];
    shard_path(w, w->n_shards - 1, path, sizeof path);
    return pwrite_all(w->fd, h, sizeof h, 0, path);
}

static lq_status push_block_ref(lq_distill_writer *w, uint64_t off, uint64_t first) {
    if (w->n_blocks == w->cap_blocks) {
        uint32_t nc = w->cap_blocks ? w->cap_blocks * 2 : 64;
        block_ref *nb = realloc(w->blocks, nc * sizeof *nb);
        if (!nb) return lq_fail(LQ_ERR_NOMEM, "%s: cannot grow the block index", w->dir);
        w->blocks = nb;
        w->cap_blocks = nc;
    }
    w->blocks[w->n_blocks++] = (block_ref){off, first};
    return LQ_OK;
}

/* Start shard n_shards as an unsealed, empty shard (header only). */
static lq_status new_shard(lq_distill_writer *w) {
    if (w->n_shards == w->cap_shards) {
        int nc = w->cap_shards ? w->cap_shards * 2 : 8;
        shard_entry *ns = realloc(w->shards, (size_t)nc * sizeof *ns);
        if (!ns) return lq_fail(LQ_ERR_NOMEM, "%s: cannot grow the shard list", w->dir);
        w->shards = ns;
        w->cap_shards = nc;
    }
    char path[PATH_MAX + 32];
    shard_path(w, w->n_shards, path, sizeof path);
    int fd;
    LQ_TRY(lqd_open_regular(path, O_RDWR | O_CREAT | O_TRUNC, &fd));
    w->fd = fd;
    w->shards[w->n_shards++] = (shard_entry){.bytes = LQD_HEADER_SIZE};
    w->n_blocks = 0;
    lqd_shard_state ss = {.shard_index = (uint32_t)(w->n_shards - 1),
                          .first_record = first_record_of(w, w->n_shards - 1)};
    return write_header(w, &ss);
}

/* Append the index, rewrite the header with the counts, fsync. */
static lq_status seal_shard(lq_distill_writer *w) {
    shard_entry *e = &w->shards[w->n_shards - 1];
    char path[PATH_MAX + 32];
    shard_path(w, w->n_shards - 1, path, sizeof path);
    size_t n = (size_t)w->n_blocks * LQD_INDEX_ENTRY_SIZE;
    uint8_t *idx = malloc(n ? n : 1);
    if (!idx) return lq_fail(LQ_ERR_NOMEM, "%s: cannot allocate the index", path);
    for (uint32_t i = 0; i < w->n_blocks; i++) {
        lqd_put64(idx + 16 * i, w->blocks[i].offset);
        lqd_put64(idx + 16 * i + 8, w->blocks[i].first_record);
    }
    lqd_shard_state ss = {.shard_index = (uint32_t)(w->n_shards - 1), .n_blocks = w->n_blocks,
                          .first_record = first_record_of(w, w->n_shards - 1),
                          .n_records = e->records, .n_tokens = e->tokens,
                          .index_offset = e->bytes, .index_crc = lqd_crc32(idx, n)};
    lq_status st = pwrite_all(w->fd, idx, n, e->bytes, path);
    free(idx);
    if (st == LQ_OK) st = write_header(w, &ss);
    if (st == LQ_OK && fsync(w->fd) != 0)
        st = lq_fail(LQ_ERR_IO, "%s: fsync: %s", path, strerror(errno));
    if (st != LQ_OK) return st;
    close(w->fd);
    w->fd = -1;
    e->bytes += n;
    e->sealed = true;
    return LQ_OK;
}

/* Reopen the unsealed last shard of a resumed run: drop everything past the committed size, put
 * back an unsealed header (a seal may have been cut short) and rebuild the block list. */
static lq_status reopen_shard(lq_distill_writer *w) {
    shard_entry *e = &w->shards[w->n_shards - 1];
    char path[PATH_MAX + 32];
    shard_path(w, w->n_shards - 1, path, sizeof path);
    /* the open shard is truncated and rewritten: never through a link to a file elsewhere */
    int fd;
    LQ_TRY(lqd_open_regular(path, O_RDWR, &fd));
    w->fd = fd;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || (uint64_t)sb.st_size < e->bytes)
        return lq_fail(LQ_ERR_FORMAT, "%s: shorter (%lld bytes) than its committed size %llu",
                       path, (long long)sb.st_size, (unsigned long long)e->bytes);
    if (ftruncate(fd, (off_t)e->bytes) != 0)
        return lq_fail(LQ_ERR_IO, "%s: truncate: %s", path, strerror(errno));
    uint8_t h[LQD_HEADER_SIZE];
    if (pread(fd, h, sizeof h, 0) != (ssize_t)sizeof h)
        return lq_fail(LQ_ERR_IO, "%s: cannot read the header", path);
    lq_distill_meta hm;
    lqd_shard_state ss;
    LQ_TRY(lqd_header_decode(h, path, &hm, &ss));
    if (!lqd_meta_same(&hm, &w->meta))
        return lq_fail(LQ_ERR_MISMATCH, "%s: header disagrees with the manifest", path);
    uint64_t first = first_record_of(w, w->n_shards - 1), off = LQD_HEADER_SIZE, rec = first;
    while (off < e->bytes) {
        uint8_t bh[LQD_BLOCK_HEADER_SIZE];
        lqd_block_header b;
        if (off + LQD_BLOCK_HEADER_SIZE > e->bytes ||
            pread(fd, bh, sizeof bh, (off_t)off) != (ssize_t)sizeof bh)
            return lq_fail(LQ_ERR_FORMAT, "%s: offset %llu: truncated block header", path,
                           (unsigned long long)off);
        LQ_TRY(lqd_block_header_decode(bh, path, off, &b));
        if (b.first_record != rec)
            return lq_fail(LQ_ERR_FORMAT, "%s: offset %llu: block starts at record %llu, "
                           "expected %llu", path, (unsigned long long)off,
                           (unsigned long long)b.first_record, (unsigned long long)rec);
        LQ_TRY(push_block_ref(w, off, rec));
        rec += b.n_records;
        off += LQD_BLOCK_HEADER_SIZE + (uint64_t)b.comp_size;
    }
    if (off != e->bytes || rec - first != e->records)
        return lq_fail(LQ_ERR_FORMAT, "%s: blocks do not match the manifest (%llu records)",
                       path, (unsigned long long)e->records);
    lqd_shard_state fresh = {.shard_index = (uint32_t)(w->n_shards - 1), .first_record = first};
    LQ_TRY(write_header(w, &fresh));
    if (fsync(fd) != 0) return lq_fail(LQ_ERR_IO, "%s: fsync: %s", path, strerror(errno));
    return LQ_OK;
}

/* ---- public API ------------------------------------------------------------------------------ */

static lq_status validate_meta(const lq_distill_meta *m) {
    if (m->vocab < 1 || m->k < 1 || m->k > m->vocab)
        return lq_fail(LQ_ERR_INVALID_ARG, "distill: k = %d must be in 1 .. vocab (%d)", m->k,
                       m->vocab);
    if (m->logp_dtype != LQ_DTYPE_F32 && m->logp_dtype != LQ_DTYPE_F16)
        return lq_fail(LQ_ERR_INVALID_ARG, "distill: log-probs are stored as F32 or F16");
    if (m->n_feat_layers < 0 || m->n_feat_layers > LQ_DISTILL_MAX_FEAT_LAYERS ||
        (m->n_feat_layers > 0 && m->dim < 1))
        return lq_fail(LQ_ERR_INVALID_ARG, "distill: bad feature layers (%d, dim %d)",
                       m->n_feat_layers, m->dim);
    if (m->n_ctx < 1 || m->mode < 0 || m->mode > LQ_DISTILL_MODE_PER_UNIT)
        return lq_fail(LQ_ERR_INVALID_ARG, "distill: bad n_ctx %d / mode %d", m->n_ctx, m->mode);
    return LQ_OK;
}

lq_status lq_distill_writer_open(const char *dir, const lq_distill_meta *meta,
                                 const lq_distill_writer_opts *opts, lq_distill_writer **out) {
    *out = NULL;
    LQ_TRY(validate_meta(meta));
    if (strlen(dir) >= PATH_MAX - 64)
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: path too long", dir);
    lq_distill_writer *w = calloc(1, sizeof *w);
    if (!w) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", dir);
    snprintf(w->dir, sizeof w->dir, "%s", dir);
    w->meta = *meta;
    w->fd = -1;
    w->lock_fd = -1;
    if (opts) w->opts = *opts;
    if (w->opts.block_bytes == 0) w->opts.block_bytes = DEFAULT_BLOCK_BYTES;
    if (w->opts.shard_bytes == 0) w->opts.shard_bytes = DEFAULT_SHARD_BYTES;
    if (w->opts.zlib_level < 1 || w->opts.zlib_level > 9) w->opts.zlib_level = 1;

    char mpath[PATH_MAX + 32];
    snprintf(mpath, sizeof mpath, "%s/" LQD_MANIFEST, dir);
    bool fresh = false;
    lq_status st = lqd_open_out_dir(dir, LQD_MANIFEST, "a distillation directory", "distillation", &fresh,
                                    &w->lock_fd);
    if (st == LQ_OK && fresh) {
        w->cursor = strdup("");
    } else if (st == LQ_OK) {
        lq_distill_meta mm;
        st = read_manifest(w, mpath, &mm);
        if (st == LQ_OK && mm.teacher_id != meta->teacher_id)
            st = lq_fail(LQ_ERR_MISMATCH,
                         "%s: written by another teacher (%016llx '%s', this one is %016llx); "
                         "never mixing teachers: choose another --out", dir,
                         (unsigned long long)mm.teacher_id, mm.teacher_name,
                         (unsigned long long)meta->teacher_id);
        else if (st == LQ_OK && !lqd_meta_same(&mm, meta))
            st = lq_fail(LQ_ERR_MISMATCH,
                         "%s: written with another tokenizer, corpus or settings (k, ctx, mode, "
                         "features, dtype); rerun the same command or choose another --out", dir);
        if (st == LQ_OK) {
            /* shard files past the manifest's list come from a commit that never finished */
            for (int i = w->n_shards;; i++) {
                char p[PATH_MAX + 32];
                shard_path(w, i, p, sizeof p);
                if (unlink(p) != 0) break;
            }
            if (!w->complete && w->n_shards > 0 && !w->shards[w->n_shards - 1].sealed)
                st = reopen_shard(w);
        }
    }
    if (st == LQ_OK && !w->cursor) st = lq_fail(LQ_ERR_NOMEM, "%s: out of memory", dir);
    if (st != LQ_OK) {
        lq_distill_writer_free(w);
        return st;
    }
    *out = w;
    return LQ_OK;
}

int64_t lq_distill_writer_records(const lq_distill_writer *w) { return w->n_records; }
const char *lq_distill_writer_cursor(const lq_distill_writer *w) { return w->cursor; }
bool lq_distill_writer_complete(const lq_distill_writer *w) { return w->complete; }

static lq_status reserve(lq_distill_writer *w, size_t extra) {
    if (w->buf_len + extra <= w->buf_cap) return LQ_OK;
    size_t nc = w->buf_cap ? w->buf_cap : 4096;
    while (nc < w->buf_len + extra) nc *= 2;
    uint8_t *nb = realloc(w->buf, nc);
    if (!nb) return lq_fail(LQ_ERR_NOMEM, "%s: cannot grow the block buffer to %zu", w->dir, nc);
    w->buf = nb;
    w->buf_cap = nc;
    return LQ_OK;
}

lq_status lq_distill_writer_add(lq_distill_writer *w, const lq_distill_record *r) {
    const lq_distill_meta *m = &w->meta;
    if (w->complete)
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: the dataset is already complete", w->dir);
    uint64_t size = lqd_record_size(m, r->n > 0 ? (uint64_t)r->n : 0);
    if (r->n < 1 || size == 0 || r->n > m->n_ctx)
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: record of %d tokens (1 .. n_ctx %d)", w->dir,
                       r->n, m->n_ctx);
    if (m->n_feat_layers > 0 && !r->features)
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: record without its features", w->dir);
    int64_t nk = (int64_t)r->n * m->k;
    for (int i = 0; i < r->n; i++)
        if (r->tokens[i] < 0 || r->tokens[i] >= m->vocab)
            return lq_fail(LQ_ERR_INVALID_ARG, "%s: token id %d out of range", w->dir,
                           r->tokens[i]);
    for (int64_t i = 0; i < nk; i++)
        if (r->topk_ids[i] < 0 || r->topk_ids[i] >= m->vocab)
            return lq_fail(LQ_ERR_INVALID_ARG, "%s: top-k id %d out of range", w->dir,
                           r->topk_ids[i]);
    if (size > LQD_MAX_BLOCK_RAW / 2)
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: record of %llu bytes is too large", w->dir,
                       (unsigned long long)size);
    /* a block holds whole records; flush first if this one would overflow the raw size limit */
    if (w->buf_len + size > LQD_MAX_BLOCK_RAW)
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: block overflow: commit more often", w->dir);
    LQ_TRY(reserve(w, (size_t)size));
    uint8_t *p = w->buf + w->buf_len;
    lqd_put32(p, (uint32_t)r->n);
    lqd_put32(p + 4, 0);
    lqd_put64(p + 8, r->source_offset);
    p += LQD_RECORD_HEADER_SIZE;
    /* x86-64 and every target we build for are little-endian: arrays go out as they are */
    memcpy(p, r->tokens, (size_t)r->n * 4);
    p += (size_t)r->n * 4;
    memcpy(p, r->topk_ids, (size_t)nk * 4);
    p += (size_t)nk * 4;
    if (m->logp_dtype == LQ_DTYPE_F16) {
        for (int64_t i = 0; i < nk; i++) {
            uint16_t h = lq_f32_to_f16(r->topk_logp[i]);
            memcpy(p + 2 * i, &h, 2);
        }
        p += (size_t)nk * 2;
    } else {
        memcpy(p, r->topk_logp, (size_t)nk * 4);
        p += (size_t)nk * 4;
    }
    memcpy(p, r->rest_logp, (size_t)r->n * 4);
    p += (size_t)r->n * 4;
    size_t fb = (size_t)m->n_feat_layers * (size_t)r->n * (size_t)m->dim * 2;
    if (fb) memcpy(p, r->features, fb);
    w->buf_len += (size_t)size;
    w->buf_records++;
    w->buf_tokens += r->n;
    return LQ_OK;
}

/* Steps 1-2 of the commit protocol for the buffered records. */
static lq_status flush_block(lq_distill_writer *w) {
    if (w->buf_records == 0) return LQ_OK;
    if (w->fd < 0) LQ_TRY(new_shard(w));
    char path[PATH_MAX + 32];
    shard_path(w, w->n_shards - 1, path, sizeof path);
    uLong bound = compressBound((uLong)w->buf_len);
    if (w->zcap < LQD_BLOCK_HEADER_SIZE + bound) {
        uint8_t *nz = realloc(w->zbuf, LQD_BLOCK_HEADER_SIZE + bound);
        if (!nz) return lq_fail(LQ_ERR_NOMEM, "%s: cannot allocate a block", path);
        w->zbuf = nz;
        w->zcap = LQD_BLOCK_HEADER_SIZE + bound;
    }
    uLongf zlen = bound;
    int zr = compress2(w->zbuf + LQD_BLOCK_HEADER_SIZE, &zlen, w->buf, (uLong)w->buf_len,
                       w->opts.zlib_level);
    if (zr != Z_OK) return lq_fail(LQ_ERR_IO, "%s: zlib compress failed (%d)", path, zr);
    shard_entry *e = &w->shards[w->n_shards - 1];
    lqd_block_header b = {.n_records = w->buf_records, .first_record = (uint64_t)w->n_records,
                          .raw_size = (uint32_t)w->buf_len, .comp_size = (uint32_t)zlen,
                          .payload_crc = lqd_crc32(w->zbuf + LQD_BLOCK_HEADER_SIZE, zlen)};
    lqd_block_header_encode(&b, w->zbuf);
    uint64_t off = e->bytes;
    LQ_TRY(pwrite_all(w->fd, w->zbuf, LQD_BLOCK_HEADER_SIZE + zlen, off, path));
    if (fdatasync(w->fd) != 0) return lq_fail(LQ_ERR_IO, "%s: fdatasync: %s", path, strerror(errno));
    LQ_TRY(push_block_ref(w, off, (uint64_t)w->n_records));
    e->bytes += LQD_BLOCK_HEADER_SIZE + zlen;
    e->records += w->buf_records;
    e->tokens += (uint64_t)w->buf_tokens;
    w->n_records += w->buf_records;
    w->n_tokens += w->buf_tokens;
    w->buf_len = 0;
    w->buf_records = 0;
    w->buf_tokens = 0;
    if (e->bytes >= w->opts.shard_bytes) LQ_TRY(seal_shard(w));
    return LQ_OK;
}

static lq_status set_cursor(lq_distill_writer *w, const char *cursor) {
    if (!cursor || strlen(cursor) >= MAX_CURSOR)
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: bad cursor", w->dir);
    char *c = strdup(cursor);
    if (!c) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", w->dir);
    free(w->cursor);
    w->cursor = c;
    return LQ_OK;
}

lq_status lq_distill_writer_commit(lq_distill_writer *w, const char *cursor, bool force) {
    if (w->complete)
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: the dataset is already complete", w->dir);
    if (w->buf_records == 0 || (!force && w->buf_len < w->opts.block_bytes)) return LQ_OK;
    LQ_TRY(flush_block(w));
    LQ_TRY(set_cursor(w, cursor));
    return write_manifest(w);
}

lq_status lq_distill_writer_finish(lq_distill_writer *w, const char *cursor) {
    if (w->complete) return LQ_OK;
    LQ_TRY(flush_block(w));
    if (w->fd >= 0) LQ_TRY(seal_shard(w));
    LQ_TRY(set_cursor(w, cursor));
    w->complete = true;
    return write_manifest(w);
}

void lq_distill_writer_free(lq_distill_writer *w) {
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    lqd_unlock_dir(w->dir, w->lock_fd);
    free(w->cursor);
    free(w->shards);
    free(w->blocks);
    free(w->buf);
    free(w->zbuf);
    free(w);
}
