/* safetensors_write.c - streaming, atomic safetensors writer.
 *
 * Tensors are declared first so the header (and every offset) is known before any payload byte;
 * payloads then stream straight to the temporary file of an lq_file_out (lq_file.h) in
 * declaration order. Commit fsyncs, renames and fsyncs the directory, so readers only ever see a
 * complete file at `path`. Any failure removes the temporary file at once; abort does the same.
 */
#include "libquant/lq_file.h"
#include "libquant/lq_safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct st_decl {
    char *name;
    lq_dtype dtype;
    int ndim;
    int64_t shape[LQ_MAX_DIMS];
    uint64_t nbytes;
} st_decl;

struct lq_st_writer {
    char *path;
    lq_file_out out;      /* the temporary file until commit */
    bool failed;          /* a write failed: the temporary is already gone */
    bool header_written;
    json_t *metadata;     /* string -> string */
    st_decl *decls;
    int64_t n_decls, cap_decls;
    int64_t cur;          /* tensor receiving the next payload bytes */
    uint64_t cur_done;    /* bytes of decls[cur] written so far */
};

/* Mark the writer failed and remove its temporary file; returns s for chaining. */
static lq_status writer_fail(lq_st_writer *w, lq_status s) {
    lq_file_abort(&w->out);
    w->failed = true;
    return s;
}

static lq_status write_all(lq_st_writer *w, const void *buf, size_t n) {
    lq_status s = lq_file_write(&w->out, buf, n);
    return s == LQ_OK ? s : writer_fail(w, s);
}

lq_status lq_st_writer_create(const char *path, lq_st_writer **out) {
    *out = NULL;
    lq_st_writer *w = calloc(1, sizeof *w);
    if (!w) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
    w->out.fd = -1;
    w->path = strdup(path);
    w->metadata = json_object();
    if (!w->path || !w->metadata) {
        lq_st_writer_abort(w);
        return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
    }
    lq_status s = lq_file_begin(&w->out, path);
    if (s != LQ_OK) {
        lq_st_writer_abort(w);
        return s;
    }
    *out = w;
    return LQ_OK;
}

lq_status lq_st_writer_metadata(lq_st_writer *w, const char *key, const char *value) {
    if (w->failed) return lq_fail(LQ_ERR_INVALID_ARG, "%s: writer already failed", w->path);
    if (w->header_written)
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: metadata '%s' added after the first write", w->path, key);
    json_t *v = json_string(value);
    if (!v || json_object_set_new(w->metadata, key, v) != 0)
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: metadata '%s' is not valid UTF-8", w->path, key);
    return LQ_OK;
}

lq_status lq_st_writer_declare(lq_st_writer *w, const char *name, lq_dtype dtype, int ndim,
                               const int64_t *shape) {
    if (w->failed) return lq_fail(LQ_ERR_INVALID_ARG, "%s: writer already failed", w->path);
    if (w->header_written)
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: tensor '%s' declared after the first write", w->path, name);
    if (strcmp(name, "__metadata__") == 0 || lq_dtype_size(dtype) == 0 || ndim < 0 || ndim > LQ_MAX_DIMS)
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: tensor '%s': bad name, dtype or rank", w->path, name);
    int64_t numel = lq_shape_numel(ndim, shape);
    if (numel < 0 || (uint64_t)numel > UINT64_MAX / lq_dtype_size(dtype))
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: tensor '%s': negative or overflowing shape", w->path, name);
    for (int64_t i = 0; i < w->n_decls; i++)
        if (strcmp(w->decls[i].name, name) == 0)
            return lq_fail(LQ_ERR_INVALID_ARG, "%s: tensor '%s' declared twice", w->path, name);
    if (w->n_decls == w->cap_decls) {
        int64_t nc = w->cap_decls ? 2 * w->cap_decls : 64;
        st_decl *nd = realloc(w->decls, (size_t)nc * sizeof *nd);
        if (!nd) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", w->path);
        w->decls = nd;
        w->cap_decls = nc;
    }
    st_decl *d = &w->decls[w->n_decls];
    memset(d, 0, sizeof *d);
    if (!(d->name = strdup(name))) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", w->path);
    d->dtype = dtype;
    d->ndim = ndim;
    for (int i = 0; i < ndim; i++) d->shape[i] = shape[i];
    d->nbytes = (uint64_t)numel * lq_dtype_size(dtype);
    w->n_decls++;
    return LQ_OK;
}

/* Header JSON: __metadata__ first, then tensors in declaration order with consecutive offsets,
 * padded with spaces so the data section starts 8-byte aligned (as the Rust crate does). */
static lq_status write_header(lq_st_writer *w) {
    json_t *root = json_object();
    if (!root) return writer_fail(w, lq_fail(LQ_ERR_NOMEM, "%s: out of memory", w->path));
    lq_status st = LQ_OK;
    if (json_object_size(w->metadata) > 0) json_object_set(root, "__metadata__", w->metadata);
    uint64_t off = 0;
    for (int64_t i = 0; i < w->n_decls && st == LQ_OK; i++) {
        const st_decl *d = &w->decls[i];
        json_t *shape = json_array();
        for (int k = 0; k < d->ndim; k++) json_array_append_new(shape, json_integer(d->shape[k]));
        json_t *e = json_pack("{s:s, s:o, s:[I,I]}", "dtype", lq_dtype_name(d->dtype), "shape", shape,
                              "data_offsets", (json_int_t)off, (json_int_t)(off + d->nbytes));
        if (!e || json_object_set_new(root, d->name, e) != 0)
            st = lq_fail(LQ_ERR_INVALID_ARG, "%s: tensor '%s': name is not valid UTF-8", w->path, d->name);
        off += d->nbytes;
    }
    char *text = st == LQ_OK ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (st != LQ_OK) return writer_fail(w, st);
    if (!text) return writer_fail(w, lq_fail(LQ_ERR_NOMEM, "%s: out of memory", w->path));
    size_t n = strlen(text);
    size_t padded = (n + 7) & ~(size_t)7;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    st = write_all(w, len8, 8);
    if (st == LQ_OK) st = write_all(w, text, n);
    free(text);
    if (st == LQ_OK && padded > n) st = write_all(w, "        ", padded - n);
    if (st != LQ_OK) return st;
    w->header_written = true;
    w->cur = 0;
    w->cur_done = 0;
    return LQ_OK;
}

/* Skip past tensors that are complete (including zero-byte ones). */
static void advance(lq_st_writer *w) {
    while (w->cur < w->n_decls && w->cur_done == w->decls[w->cur].nbytes) {
        w->cur++;
        w->cur_done = 0;
    }
}

lq_status lq_st_writer_write(lq_st_writer *w, const void *data, size_t nbytes) {
    if (w->failed) return lq_fail(LQ_ERR_INVALID_ARG, "%s: writer already failed", w->path);
    if (!w->header_written) LQ_TRY(write_header(w));
    const char *p = data;
    while (nbytes > 0) {
        advance(w);
        if (w->cur >= w->n_decls)
            return writer_fail(w, lq_fail(LQ_ERR_INVALID_ARG, "%s: %zu payload bytes beyond the declared tensors",
                                          w->path, nbytes));
        uint64_t room = w->decls[w->cur].nbytes - w->cur_done;
        size_t k = nbytes < room ? nbytes : (size_t)room;
        LQ_TRY(write_all(w, p, k));
        w->cur_done += k;
        p += k;
        nbytes -= k;
    }
    return LQ_OK;
}

lq_status lq_st_writer_commit(lq_st_writer *w) {
    lq_status st = LQ_OK;
    if (w->failed) {
        st = lq_fail(LQ_ERR_INVALID_ARG, "%s: writer already failed", w->path);
        goto out;
    }
    if (!w->header_written && (st = write_header(w)) != LQ_OK) goto out;
    advance(w);
    if (w->cur < w->n_decls) {
        st = writer_fail(w, lq_fail(LQ_ERR_INVALID_ARG, "%s: tensor '%s': %llu of %llu payload bytes written",
                                    w->path, w->decls[w->cur].name, (unsigned long long)w->cur_done,
                                    (unsigned long long)w->decls[w->cur].nbytes));
        goto out;
    }
    st = lq_file_commit(&w->out); /* releases the temporary, renamed or removed */
    w->failed = true;            /* nothing left to write or unlink */
out:
    if (st != LQ_OK) writer_fail(w, st);
    lq_st_writer_abort(w);
    return st;
}

void lq_st_writer_abort(lq_st_writer *w) {
    if (!w) return;
    writer_fail(w, LQ_OK);
    for (int64_t i = 0; i < w->n_decls; i++) free(w->decls[i].name);
    free(w->decls);
    json_decref(w->metadata);
    free(w->path);
    free(w);
}

lq_status lq_st_save(const char *path, const lq_tensor *tensors, int64_t n) {
    lq_st_writer *w;
    LQ_TRY(lq_st_writer_create(path, &w));
    lq_status st = LQ_OK;
    for (int64_t i = 0; i < n && st == LQ_OK; i++)
        st = lq_st_writer_declare(w, tensors[i].name, tensors[i].dtype, tensors[i].ndim, tensors[i].shape);
    for (int64_t i = 0; i < n && st == LQ_OK; i++) {
        size_t need = lq_dtype_size(tensors[i].dtype) * (size_t)lq_tensor_numel(&tensors[i]);
        if (tensors[i].nbytes != need)
            st = lq_fail(LQ_ERR_INVALID_ARG, "%s: tensor '%s': nbytes %zu, shape needs %zu", path,
                         tensors[i].name, tensors[i].nbytes, need);
        else if (need > 0)
            st = lq_st_writer_write(w, tensors[i].data, need);
    }
    if (st != LQ_OK) {
        lq_st_writer_abort(w);
        return st;
    }
    return lq_st_writer_commit(w);
}
