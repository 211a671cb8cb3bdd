/* safetensors_read.c - map a safetensors file read-only and validate it before handing out views.
 *
 * Layout: u64 LE header length N | N bytes of JSON | data section. Every tensor entry is checked
 * (dtype known, shape sane, shape x dtype size == byte range, range inside the data section) and
 * then, sorted by offset, the ranges must tile the data section exactly: no overlap, no hole,
 * nothing trailing. That is what the reference Rust implementation enforces, and it means a
 * view can never reach outside the mapping.
 */
#include "libquant/lq_safetensors.h"
#include "libquant/lq_file.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The Rust crate refuses headers above 100 MB; a header that big is an attack, not a model. */
#define LQ_ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

struct lq_st_file {
    char *path;
    void *map;
    size_t size;
    lq_tensor *tensors;   /* sorted by data offset */
    char **names;         /* owned copies, names[i] == tensors[i].name */
    int64_t n;
    json_t *metadata;     /* __metadata__ object (owned reference) or NULL */
};

typedef struct st_entry {
    uint64_t begin, end;
    int64_t index;        /* position in the unsorted array, for a stable tie-break */
} st_entry;

static int entry_cmp(const void *a, const void *b) {
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

/* A JSON integer >= 0 (jansson integers are long long). */
static bool json_u64(const json_t *v, uint64_t *out) {
    if (!json_is_integer(v)) return false;
    json_int_t i = json_integer_value(v);
    if (i < 0) return false;
    *out = (uint64_t)i;
    return true;
}

/* Parse one "name": {dtype, shape, data_offsets} entry into t and its byte range. */
static lq_status parse_entry(const char *path, const char *name, json_t *obj, uint64_t data_len,
                             lq_tensor *t, st_entry *e) {
    if (!json_is_object(obj))
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': entry is not a JSON object", path, name);
    json_t *jd = json_object_get(obj, "dtype");
    json_t *js = json_object_get(obj, "shape");
    json_t *jo = json_object_get(obj, "data_offsets");
    if (!json_is_string(jd))
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': missing or non-string dtype", path, name);
    if (!lq_dtype_parse(json_string_value(jd), &t->dtype))
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%s'", path, name,
                       json_string_value(jd));
    if (!json_is_array(js))
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': missing or non-array shape", path, name);
    size_t nd = json_array_size(js);
    if (nd > LQ_MAX_DIMS)
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': %zu dimensions (at most %d supported)",
                       path, name, nd, LQ_MAX_DIMS);
    t->ndim = (int)nd;
    for (size_t d = 0; d < nd; d++) {
        uint64_t v;
        if (!json_u64(json_array_get(js, d), &v))
            return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': shape[%zu] is not a non-negative integer",
                           path, name, d);
        t->shape[d] = (int64_t)v;
    }
    int64_t numel = lq_shape_numel(t->ndim, t->shape);
    size_t esize = lq_dtype_size(t->dtype);
    if (numel < 0 || (uint64_t)numel > UINT64_MAX / esize)
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': shape product overflows", path, name);
    uint64_t nbytes = (uint64_t)numel * esize;
    if (!json_is_array(jo) || json_array_size(jo) != 2 || !json_u64(json_array_get(jo, 0), &e->begin) ||
        !json_u64(json_array_get(jo, 1), &e->end))
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': data_offsets must be two non-negative integers",
                       path, name);
    if (e->begin > e->end)
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] are reversed", path,
                       name, (unsigned long long)e->begin, (unsigned long long)e->end);
    if (e->end > data_len)
        return lq_fail(LQ_ERR_FORMAT,
                       "%s: tensor '%s': data_offsets [%llu, %llu] out of range (data section is %llu bytes)",
                       path, name, (unsigned long long)e->begin, (unsigned long long)e->end,
                       (unsigned long long)data_len);
    if (e->end - e->begin != nbytes)
        return lq_fail(LQ_ERR_FORMAT,
                       "%s: tensor '%s': shape x %s needs %llu bytes but data_offsets span %llu", path,
                       name, lq_dtype_name(t->dtype), (unsigned long long)nbytes,
                       (unsigned long long)(e->end - e->begin));
    t->nbytes = (size_t)nbytes;
    return LQ_OK;
}

/* Parse and validate the header; fills f->tensors / names / metadata. */
static lq_status parse_header(lq_st_file *f, const char *hdr, size_t hlen, uint64_t data_len,
                              const unsigned char *data) {
    json_error_t jerr;
    json_t *root = json_loadb(hdr, hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return lq_fail(LQ_ERR_FORMAT, "%s: header is not valid JSON (line %d col %d: %s)", f->path,
                       jerr.line, jerr.column, jerr.text);
    lq_status st = LQ_OK;
    st_entry *ents = NULL;
    if (!json_is_object(root)) {
        st = lq_fail(LQ_ERR_FORMAT, "%s: header is not a JSON object", f->path);
        goto done;
    }
    size_t cap = json_object_size(root);
    f->tensors = calloc(cap ? cap : 1, sizeof *f->tensors);
    f->names = calloc(cap ? cap : 1, sizeof *f->names);
    ents = calloc(cap ? cap : 1, sizeof *ents);
    if (!f->tensors || !f->names || !ents) {
        st = lq_fail(LQ_ERR_NOMEM, "%s: out of memory for %zu header entries", f->path, cap);
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(val)) {
                st = lq_fail(LQ_ERR_FORMAT, "%s: __metadata__ is not a JSON object", f->path);
                goto done;
            }
            const char *mk;
            json_t *mv;
            json_object_foreach(val, mk, mv) {
                if (!json_is_string(mv)) {
                    st = lq_fail(LQ_ERR_FORMAT, "%s: __metadata__ '%s' is not a string", f->path, mk);
                    goto done;
                }
            }
            f->metadata = json_incref(val);
            continue;
        }
        int64_t i = f->n;
        lq_tensor *t = &f->tensors[i];
        st = parse_entry(f->path, key, val, data_len, t, &ents[i]);
        if (st != LQ_OK) goto done;
        f->names[i] = strdup(key);
        if (!f->names[i]) {
            st = lq_fail(LQ_ERR_NOMEM, "%s: out of memory", f->path);
            goto done;
        }
        t->name = f->names[i];
        t->data = data + ents[i].begin;
        ents[i].index = i;
        f->n++;
    }
    /* Sorted by offset, the byte ranges must tile [0, data_len) exactly. */
    qsort(ents, (size_t)f->n, sizeof *ents, entry_cmp);
    uint64_t pos = 0;
    for (int64_t k = 0; k < f->n; k++) {
        const char *name = f->tensors[ents[k].index].name;
        if (ents[k].begin < pos) {
            st = lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] overlap another tensor",
                         f->path, name, (unsigned long long)ents[k].begin, (unsigned long long)ents[k].end);
            goto done;
        }
        if (ents[k].begin > pos) {
            st = lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': hole in the data section at bytes [%llu, %llu)",
                         f->path, name, (unsigned long long)pos, (unsigned long long)ents[k].begin);
            goto done;
        }
        pos = ents[k].end;
    }
    if (pos != data_len) {
        st = lq_fail(LQ_ERR_FORMAT, "%s: tensors cover %llu of %llu data bytes (trailing bytes)", f->path,
                     (unsigned long long)pos, (unsigned long long)data_len);
        goto done;
    }
    /* Reorder the views (and their names) into file order. */
    lq_tensor *sorted = malloc((size_t)(f->n ? f->n : 1) * sizeof *sorted);
    char **snames = malloc((size_t)(f->n ? f->n : 1) * sizeof *snames);
    if (!sorted || !snames) {
        free(sorted);
        free(snames);
        st = lq_fail(LQ_ERR_NOMEM, "%s: out of memory", f->path);
        goto done;
    }
    for (int64_t k = 0; k < f->n; k++) {
        sorted[k] = f->tensors[ents[k].index];
        snames[k] = f->names[ents[k].index];
    }
    free(f->tensors);
    free(f->names);
    f->tensors = sorted;
    f->names = snames;
done:
    free(ents);
    json_decref(root);
    return st;
}

lq_status lq_st_open(const char *path, lq_st_file **out) {
    *out = NULL;
    lq_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
    }
    lq_status st = LQ_OK;
    int fd;
    if (lq_file_open_input(path, &fd, NULL) != LQ_OK) {
        st = errno == ENOENT ? LQ_ERR_NOT_FOUND : LQ_ERR_IO;
        goto fail;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = lq_fail(LQ_ERR_IO, "%s: not a regular file", path);
        close(fd);
        goto fail;
    }
    if (sb.st_size < 8) {
        close(fd);
        st = lq_fail(LQ_ERR_FORMAT, "%s: file is %lld bytes, too short for the 8-byte header length",
                     path, (long long)sb.st_size);
        goto fail;
    }
    f->size = (size_t)sb.st_size;
    f->map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        st = lq_fail(LQ_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
        goto fail;
    }
    const unsigned char *p = f->map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | p[i];
    if (hlen > f->size - 8) {
        st = lq_fail(LQ_ERR_FORMAT, "%s: header length %llu runs past the end of the file (%zu bytes)",
                     path, (unsigned long long)hlen, f->size);
        goto fail;
    }
    if (hlen > LQ_ST_MAX_HEADER) {
        st = lq_fail(LQ_ERR_FORMAT, "%s: header length %llu exceeds the 100 MB limit", path,
                     (unsigned long long)hlen);
        goto fail;
    }
    st = parse_header(f, (const char *)p + 8, (size_t)hlen, f->size - 8 - hlen, p + 8 + hlen);
    if (st != LQ_OK) goto fail;
    *out = f;
    return LQ_OK;
fail:
    lq_st_close(f);
    return st;
}

void lq_st_close(lq_st_file *f) {
    if (!f) return;
    if (f->map) munmap(f->map, f->size);
    if (f->names)
        for (int64_t i = 0; i < f->n; i++) free(f->names[i]);
    free(f->names);
    free(f->tensors);
    json_decref(f->metadata);
    free(f->path);
    free(f);
}

const char *lq_st_path(const lq_st_file *f) { return f->path; }
int64_t lq_st_count(const lq_st_file *f) { return f->n; }
size_t lq_st_file_size(const lq_st_file *f) { return f->size; }

const lq_tensor *lq_st_get(const lq_st_file *f, int64_t i) {
    return (i >= 0 && i < f->n) ? &f->tensors[i] : NULL;
}

const lq_tensor *lq_st_find(const lq_st_file *f, const char *name) {
    for (int64_t i = 0; i < f->n; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

const char *lq_st_metadata(const lq_st_file *f, const char *key) {
    if (!f->metadata) return NULL;
    return json_string_value(json_object_get(f->metadata, key));
}

bool lq_st_metadata_at(const lq_st_file *f, int64_t i, const char **key, const char **value) {
    if (!f->metadata || i < 0) return false;
    void *it = json_object_iter(f->metadata);
    for (int64_t k = 0; it && k < i; k++) it = json_object_iter_next(f->metadata, it);
    if (!it) return false;
    *key = json_object_iter_key(it);
    *value = json_string_value(json_object_iter_value(it)); /* strings only: checked at open */
    return true;
}
