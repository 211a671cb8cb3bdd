/* distill_seq.c - sequences.jsonl: teacher continuations, one JSON record per line, written so
 * that a killed run resumed with the same command ends with the same bytes as an uninterrupted
 * one.
 *
 * Commit of one record: the line is written at the file's committed end and fdatasync'ed; then
 * manifest.json (records, bytes) goes to a temp file, is fsynced, renamed over the old one and
 * the directory fsynced. A kill anywhere leaves the old manifest or the new one; on reopen the
 * JSONL file is truncated to the manifest's byte count, so a half-written or uncommitted line
 * disappears and is written again (records are deterministic: per-record seeds). */
#include "distill_internal.h"
#include "libquant/lq_file.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEQ_FORMAT "lq-distill-sequences"
#define SEQ_VERSION 1
#define SEQ_MANIFEST "manifest.json"
#define SEQ_FILE "sequences.jsonl"

struct lq_seq_writer {
    char dir[PATH_MAX];
    json_t *settings;  /* owned */
    int fd;            /* sequences.jsonl */
    int lock_fd;       /* flock on dir/.lock */
    int64_t records;
    uint64_t bytes;    /* committed size of sequences.jsonl */
    bool complete;
};

static lq_status write_manifest(const lq_seq_writer *w) {
    json_t *j = json_object();
    json_object_set_new(j, "format", json_string(SEQ_FORMAT));
    json_object_set_new(j, "version", json_integer(SEQ_VERSION));
    json_object_set(j, "settings", w->settings);
    json_object_set_new(j, "file", json_string(SEQ_FILE));
    json_object_set_new(j, "records", json_integer(w->records));
    json_object_set_new(j, "bytes", json_integer((json_int_t)w->bytes));
    json_object_set_new(j, "complete", json_boolean(w->complete));
    char *txt = json_dumps(j, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!txt) return lq_fail(LQ_ERR_NOMEM, "%s: cannot format the manifest", w->dir);
    lq_status st = lqd_replace_file(w->dir, SEQ_MANIFEST, txt);
    free(txt);
    return st;
}

static lq_status read_manifest(lq_seq_writer *w, const char *path, const json_t *settings) {
    json_t *j;
    LQ_TRY(lqd_load_json(path, &j));
    lq_status st = LQ_OK;
    const char *fmt = json_string_value(json_object_get(j, "format"));
    json_t *old = json_object_get(j, "settings");
    json_t *rec = json_object_get(j, "records"), *by = json_object_get(j, "bytes");
    if (!fmt || strcmp(fmt, SEQ_FORMAT) != 0) {
        st = lq_fail(LQ_ERR_MISMATCH, "%s: holds another kind of output (format '%s', not "
                     SEQ_FORMAT "); choose another --out", w->dir, fmt ? fmt : "?");
    } else if (json_integer_value(json_object_get(j, "version")) != SEQ_VERSION ||
               !json_is_object(old) || !json_is_integer(rec) || !json_is_integer(by) ||
               json_integer_value(rec) < 0 || json_integer_value(by) < 0) {
        st = lq_fail(LQ_ERR_FORMAT, "%s: not an " SEQ_FORMAT " manifest of version %d", path,
                     SEQ_VERSION);
    } else if (!json_equal(json_object_get(old, "teacher_id"),
                           json_object_get(settings, "teacher_id"))) {
        const char *ot = json_string_value(json_object_get(old, "teacher_id"));
        const char *nt = json_string_value(json_object_get(settings, "teacher_id"));
        st = lq_fail(LQ_ERR_MISMATCH, "%s: written by another teacher (%s, this one is %s); "
                     "never mixing teachers: choose another --out", w->dir, ot ? ot : "?",
                     nt ? nt : "?");
    } else if (!json_equal(old, settings)) {
        st = lq_fail(LQ_ERR_MISMATCH, "%s: written with other prompts or options (tokenizer, "
                     "sampling, seed, beams, sequences, max tokens); rerun the same command or "
                     "choose another --out", w->dir);
    } else {
        w->records = (int64_t)json_integer_value(rec);
        w->bytes = (uint64_t)json_integer_value(by);
        w->complete = json_is_true(json_object_get(j, "complete"));
    }
    json_decref(j);
    return st;
}

void lq_seq_writer_free(lq_seq_writer *w) {
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    lqd_unlock_dir(w->dir, w->lock_fd);
    json_decref(w->settings);
    free(w);
}

lq_status lq_seq_writer_open(const char *dir, const char *settings_json, lq_seq_writer **out) {
    *out = NULL;
    if (strlen(dir) >= PATH_MAX - 64) return lq_fail(LQ_ERR_INVALID_ARG, "%s: path too long", dir);
    json_error_t err;
    json_t *settings = json_loads(settings_json, 0, &err);
    if (!json_is_object(settings)) {
        json_decref(settings);
        return lq_fail(LQ_ERR_INVALID_ARG, "sequences: settings are not a JSON object: %s",
                       err.text);
    }
    lq_seq_writer *w = calloc(1, sizeof *w);
    if (!w) {
        json_decref(settings);
        return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", dir);
    }
    snprintf(w->dir, sizeof w->dir, "%s", dir);
    w->settings = settings;
    w->fd = -1;
    w->lock_fd = -1;
    char mpath[PATH_MAX + 32], fpath[PATH_MAX + 32];
    snprintf(mpath, sizeof mpath, "%s/" SEQ_MANIFEST, dir);
    snprintf(fpath, sizeof fpath, "%s/" SEQ_FILE, dir);
    bool fresh = false;
    lq_status st = lqd_open_out_dir(dir, SEQ_MANIFEST, "a directory", "quant-distill", &fresh,
                                    &w->lock_fd);
    if (st == LQ_OK && !fresh) st = read_manifest(w, mpath, settings);
    if (st == LQ_OK) {
        st = lqd_open_regular(fpath, O_RDWR | O_CREAT, &w->fd); /* truncated below */
    }
    struct stat sb;
    if (st == LQ_OK && !fresh) {
        /* drop what the last commit did not cover (a line cut by the kill, or not committed) */
        if (fstat(w->fd, &sb) != 0 || (uint64_t)sb.st_size < w->bytes)
            st = lq_fail(LQ_ERR_FORMAT, "%s: shorter than the %llu committed bytes", fpath,
                         (unsigned long long)w->bytes);
        else if (ftruncate(w->fd, (off_t)w->bytes) != 0 || fsync(w->fd) != 0)
            st = lq_fail(LQ_ERR_IO, "%s: truncate: %s", fpath, strerror(errno));
    }
    if (st == LQ_OK && fresh) st = write_manifest(w);
    if (st != LQ_OK) {
        lq_seq_writer_free(w);
        return st;
    }
    *out = w;
    return LQ_OK;
}

int64_t lq_seq_writer_records(const lq_seq_writer *w) { return w->records; }
bool lq_seq_writer_complete(const lq_seq_writer *w) { return w->complete; }

lq_status lq_seq_writer_append(lq_seq_writer *w, const char *line, size_t len) {
    if (w->complete) return lq_fail(LQ_ERR_INVALID_ARG, "%s: the run is complete", w->dir);
    if (memchr(line, '\n', len))
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: record %lld holds a newline", w->dir,
                       (long long)w->records);
    uint64_t off = w->bytes;
    for (size_t done = 0; done <= len;) {
        /* the line, then its newline (done == len) */
        const char *p = done < len ? line + done : "\n";
        size_t n = done < len ? len - done : 1;
        ssize_t k = pwrite(w->fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0)
            return lq_fail(LQ_ERR_IO, "%s/" SEQ_FILE ": write: %s", w->dir,
                           k < 0 ? strerror(errno) : "no progress");
        off += (uint64_t)k;
        done += (size_t)k;
        if (done == len + 1) break;
    }
    if (fdatasync(w->fd) != 0)
        return lq_fail(LQ_ERR_IO, "%s/" SEQ_FILE ": fdatasync: %s", w->dir, strerror(errno));
    w->bytes = off;
    w->records++;
    return write_manifest(w);
}

lq_status lq_seq_writer_finish(lq_seq_writer *w) {
    w->complete = true;
    return write_manifest(w);
}

/* SplitMix64 (Steele, Lea, Flood 2014): the finalizer of a Weyl sequence, a bijection with good
 * avalanche, so nearby (seed, prompt, sample) give unrelated seeds. */
static uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t lq_seq_record_seed(uint64_t seed, uint64_t prompt, uint64_t sample) {
    return splitmix64(splitmix64(splitmix64(seed) ^ prompt) ^ sample);
}

/* ---- reading ------------------------------------------------------------------------------- */

struct lq_seq_reader {
    char *data;        /* the committed bytes of sequences.jsonl */
    size_t *starts;    /* (records + 1) line offsets; the last is the end */
    int64_t records;
    bool complete;
    char *settings;    /* compact JSON */
};

static lq_status load_seq_manifest(const char *dir, json_t **j) {
    char mpath[PATH_MAX + 32];
    snprintf(mpath, sizeof mpath, "%s/" SEQ_MANIFEST, dir);
    return lqd_load_json(mpath, j);
}

bool lq_seq_is_dataset(const char *dir) {
    json_t *j;
    if (load_seq_manifest(dir, &j) != LQ_OK) return false;
    const char *fmt = json_string_value(json_object_get(j, "format"));
    bool yes = fmt && strcmp(fmt, SEQ_FORMAT) == 0;
    json_decref(j);
    return yes;
}

void lq_seq_close(lq_seq_reader *r) {
    if (!r) return;
    free(r->data);
    free(r->starts);
    free(r->settings);
    free(r);
}

/* The first `bytes` bytes of the JSONL file, split into exactly `records` lines. */
static lq_status read_lines(lq_seq_reader *r, const char *dir, uint64_t bytes) {
    char fpath[PATH_MAX + 32];
    snprintf(fpath, sizeof fpath, "%s/" SEQ_FILE, dir);
    FILE *f;
    LQ_TRY(lq_file_fopen_input(fpath, &f));
    r->data = bytes < ((uint64_t)1 << 40) ? malloc((size_t)bytes + 1) : NULL;
    r->starts = malloc(((size_t)r->records + 1) * sizeof *r->starts);
    lq_status st = r->data && r->starts ? LQ_OK : lq_fail(LQ_ERR_NOMEM, "%s: out of memory", fpath);
    if (st == LQ_OK && fread(r->data, 1, (size_t)bytes, f) != (size_t)bytes)
        st = lq_fail(LQ_ERR_FORMAT, "%s: shorter than the %llu committed bytes", fpath, (unsigned long long)bytes);
    fclose(f);
    int64_t n = 0;
    for (size_t off = 0; st == LQ_OK && off < bytes; n++) {
        const char *nl = memchr(r->data + off, '\n', (size_t)bytes - off);
        if (!nl || n >= r->records) break;
        r->starts[n] = off;
        off = (size_t)(nl - r->data) + 1;
        r->starts[n + 1] = off;
    }
    if (st == LQ_OK && (n != r->records || (n > 0 && r->starts[n] != bytes) || (n == 0 && bytes != 0)))
        st = lq_fail(LQ_ERR_FORMAT, "%s: the committed bytes do not hold the manifest's %lld records", fpath,
                     (long long)r->records);
    return st;
}

lq_status lq_seq_open(const char *dir, lq_seq_reader **out) {
    *out = NULL;
    json_t *j;
    LQ_TRY(load_seq_manifest(dir, &j));
    const char *fmt = json_string_value(json_object_get(j, "format"));
    json_t *rec = json_object_get(j, "records"), *by = json_object_get(j, "bytes");
    json_t *set = json_object_get(j, "settings");
    lq_seq_reader *r = calloc(1, sizeof *r);
    lq_status st = r ? LQ_OK : lq_fail(LQ_ERR_NOMEM, "%s: out of memory", dir);
    if (st == LQ_OK && (!fmt || strcmp(fmt, SEQ_FORMAT) != 0 || !json_is_integer(rec) || !json_is_integer(by) ||
                        json_integer_value(rec) < 0 || json_integer_value(by) < 0 || !json_is_object(set)))
        st = lq_fail(LQ_ERR_FORMAT, "%s/" SEQ_MANIFEST ": not an " SEQ_FORMAT " manifest", dir);
    if (st == LQ_OK) {
        r->records = (int64_t)json_integer_value(rec);
        r->complete = json_is_true(json_object_get(j, "complete"));
        r->settings = json_dumps(set, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!r->settings) st = lq_fail(LQ_ERR_NOMEM, "%s: out of memory", dir);
    }
    if (st == LQ_OK) st = read_lines(r, dir, (uint64_t)json_integer_value(by));
    json_decref(j);
    if (st != LQ_OK) {
        lq_seq_close(r);
        return st;
    }
    *out = r;
    return LQ_OK;
}

int64_t lq_seq_count(const lq_seq_reader *r) { return r->records; }
bool lq_seq_is_complete(const lq_seq_reader *r) { return r->complete; }
const char *lq_seq_settings(const lq_seq_reader *r) { return r->settings; }

lq_status lq_seq_get(const lq_seq_reader *r, int64_t i, const char **line, size_t *len) {
    if (i < 0 || i >= r->records)
        return lq_fail(LQ_ERR_INVALID_ARG, "record %lld out of range (%lld records)", (long long)i,
                       (long long)r->records);
    *line = r->data + r->starts[i];
    *len = r->starts[i + 1] - r->starts[i] - 1;
    return LQ_OK;
}
