/* sparse_bitmask_load.c - present a compressed-tensors sparse checkpoint as a dense one.
 *
 * Decision: a sparse module is decompressed once, at open, into a dense buffer the checkpoint
 * owns (an anonymous mapping, so a streaming reader such as quant-ptq can drop its pages with
 * madvise once written). The engine then runs it with the dense kernels: sparsity saves disk,
 * not decode time (docs/PERFORMANCE.md, "Pruning", measures this). The cost is that the dense
 * copies of the sparse modules are resident from open.
 */
#include "prune_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "libquant/lq_prune.h"

struct lq_sparse_store {
    void **maps;
    size_t *sizes;
    char **names;
    int64_t n, cap;
};

void lq_sparse_store_free(lq_sparse_store *s) {
    if (!s) return;
    for (int64_t i = 0; i < s->n; i++) {
        if (s->maps[i]) munmap(s->maps[i], s->sizes[i]);
        free(s->names[i]);
    }
    free(s->maps);
    free(s->sizes);
    free(s->names);
    free(s);
}

static lq_status store_add(lq_sparse_store *s, size_t bytes, const char *name, void **buf, char **nm) {
    if (s->n == s->cap) {
        int64_t cap = s->cap ? 2 * s->cap : 32;
        void **m = realloc(s->maps, (size_t)cap * sizeof *m);
        if (m) s->maps = m;
        size_t *z = realloc(s->sizes, (size_t)cap * sizeof *z);
        if (z) s->sizes = z;
        char **n = realloc(s->names, (size_t)cap * sizeof *n);
        if (n) s->names = n;
        if (!m || !z || !n) return lq_fail(LQ_ERR_NOMEM, "out of memory");
        s->cap = cap;
    }
    void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *dup = strdup(name);
    if (p == MAP_FAILED || !dup) {
        if (p != MAP_FAILED) munmap(p, bytes ? bytes : 1);
        free(dup);
        return lq_fail(LQ_ERR_NOMEM, "out of memory decompressing '%s' (%zu bytes)", name, bytes);
    }
    s->maps[s->n] = p;
    s->sizes[s->n] = bytes ? bytes : 1;
    s->names[s->n] = dup;
    s->n++;
    *buf = p;
    *nm = dup;
    return LQ_OK;
}

static bool has_suffix(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

static const char *const g_parts[] = {".bitmask", ".compressed", ".shape", ".row_offsets"};

/* Whether t is a part of the sparse module `prefix`. */
static bool is_part_of(const char *name, const char *prefix) {
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) != 0) return false;
    for (size_t i = 0; i < sizeof g_parts / sizeof g_parts[0]; i++)
        if (strcmp(name + n, g_parts[i]) == 0) return true;
    return false;
}

/* Decompress the module whose bitmask tensor is bm into a new dense view. */
static lq_status expand_one(lq_checkpoint *c, const lq_tensor *bm, lq_tensor *out) {
    char prefix[256], name[300];
    size_t plen = strlen(bm->name) - strlen(".bitmask");
    if (plen >= sizeof prefix) return lq_fail(LQ_ERR_UNSUPPORTED, "%s: tensor '%s': name too long", c->path, bm->name);
    memcpy(prefix, bm->name, plen);
    prefix[plen] = 0;
    snprintf(name, sizeof name, "%s.shape", prefix);
    const lq_tensor *shp = lq_checkpoint_find(c, name);
    snprintf(name, sizeof name, "%s.compressed", prefix);
    const lq_tensor *val = lq_checkpoint_find(c, name);
    snprintf(name, sizeof name, "%s.row_offsets", prefix);
    const lq_tensor *ro = lq_checkpoint_find(c, name);
    if (!shp || !val)
        return lq_fail(LQ_ERR_FORMAT, "%s: sparse module '%s': missing '%s.%s'", c->path, prefix, prefix,
                       shp ? "compressed" : "shape");
    int64_t dims[2] = {0, 0};
    if (lq_tensor_numel(shp) != 2 || (shp->dtype != LQ_DTYPE_I64 && shp->dtype != LQ_DTYPE_I32))
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s.shape': expected 2 integers", c->path, prefix);
    /* safetensors does not align tensor data: read through memcpy (UBSan: misaligned load) */
    for (int i = 0; i < 2; i++) {
        if (shp->dtype == LQ_DTYPE_I64) {
            memcpy(&dims[i], (const char *)shp->data + 8 * i, 8);
        } else {
            int32_t v;
            memcpy(&v, (const char *)shp->data + 4 * i, 4);
            dims[i] = v;
        }
    }
    int64_t rows = dims[0], cols = dims[1];
    if (rows <= 0 || cols <= 0 || rows > ((int64_t)1 << 31) || cols > ((int64_t)1 << 31))
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s.shape': bad shape [%lld, %lld]", c->path, prefix,
                       (long long)rows, (long long)cols);
    if (bm->dtype != LQ_DTYPE_U8 || bm->ndim != 2 || bm->shape[0] != rows ||
        bm->shape[1] != lq_bitmask_row_bytes(cols))
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': expected U8 [%lld, %lld]", c->path, bm->name,
                       (long long)rows, (long long)lq_bitmask_row_bytes(cols));
    size_t es = lq_dtype_size(val->dtype);
    if (es == 0 || val->dtype == LQ_DTYPE_BOOL)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s", c->path, val->name,
                       lq_dtype_name(val->dtype));
    if (ro && (ro->dtype != LQ_DTYPE_I64 || lq_tensor_numel(ro) != rows))
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': expected I64 [%lld]", c->path, ro->name, (long long)rows);
    void *buf = NULL;
    char *wname = NULL;
    snprintf(name, sizeof name, "%s.weight", prefix);
    size_t bytes = (size_t)(rows * cols) * es;
    LQ_TRY(store_add(c->sparse, bytes, name, &buf, &wname));
    LQ_TRY(lq_sparse_decompress(val->data, lq_tensor_numel(val), bm->data, ro ? ro->data : NULL, val->dtype,
                                rows, cols, buf, bm->name));
    memset(out, 0, sizeof *out);
    out->name = wname;
    out->dtype = val->dtype;
    out->ndim = 2;
    out->shape[0] = rows;
    out->shape[1] = cols;
    out->data = buf;
    out->nbytes = bytes;
    return LQ_OK;
}

/* Drop sparsity_config from the config text (and quantization_config when nothing else is in
 * it but metadata). */
static lq_status strip_config(lq_checkpoint *c, json_t *root, json_t *qc) {
    json_object_del(qc, "sparsity_config");
    if (!json_object_get(qc, "config_groups")) json_object_del(root, "quantization_config");
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    char *dup = text ? strdup(text) : NULL;
    free(text);
    if (!dup) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", c->path);
    free(c->config_json);
    c->config_json = dup;
    return LQ_OK;
}

lq_status lq_sparse_expand(lq_checkpoint *c) {
    if (!c->config_json) return LQ_OK;
    json_error_t err;
    json_t *root = json_loads(c->config_json, 0, &err);
    if (!root) return LQ_OK; /* the config parser already accepted it; nothing of ours inside */
    json_t *qc = json_object_get(root, "quantization_config");
    json_t *sc = json_is_object(qc) ? json_object_get(qc, "sparsity_config") : NULL;
    lq_status s = LQ_OK;
    lq_tensor *nt = NULL;
    if (!sc) goto done;
    json_t *fmt = json_object_get(sc, "format");
    const char *f = json_is_string(fmt) ? json_string_value(fmt) : "";
    /* llm-compressor 0.14 writes "sparsity_config": {} into every quantized checkpoint; an empty,
     * null or format-less sparsity_config, like a "dense" one (sparsity recorded as metadata over
     * dense weights), means the tensors are stored dense: nothing to expand. */
    if (json_is_null(sc) || (json_is_object(sc) && (!fmt || json_is_null(fmt) || strcmp(f, "dense") == 0))) {
        s = strip_config(c, root, qc);
        goto done;
    }
    if (!json_is_object(sc) || !json_is_string(fmt)) {
        s = lq_fail(LQ_ERR_FORMAT, "%s: quantization_config: sparsity_config is not an object with a "
                    "string format", c->path);
        goto done;
    }
    if (strcmp(f, "sparse-bitmask") != 0 && strcmp(f, "sparse-24-bitmask") != 0) {
        s = lq_fail(LQ_ERR_UNSUPPORTED, "%s: sparsity_config format '%s' is not supported (sparse-bitmask, "
                    "sparse-24-bitmask)", c->path, f);
        goto done;
    }
    if (!(c->sparse = calloc(1, sizeof *c->sparse))) {
        s = lq_fail(LQ_ERR_NOMEM, "%s: out of memory", c->path);
        goto done;
    }
    /* New tensor list: a module's dense view takes the place of its bitmask; its other parts go. */
    nt = calloc((size_t)c->n_tensors + 1, sizeof *nt);
    if (!nt) {
        s = lq_fail(LQ_ERR_NOMEM, "%s: out of memory", c->path);
        goto done;
    }
    int64_t k = 0;
    for (int64_t i = 0; s == LQ_OK && i < c->n_tensors; i++) {
        const lq_tensor *t = &c->tensors[i];
        bool part = false;
        for (size_t p = 0; !part && p < sizeof g_parts / sizeof g_parts[0]; p++) {
            if (!has_suffix(t->name, g_parts[p])) continue;
            char prefix[256], bname[300];
            size_t plen = strlen(t->name) - strlen(g_parts[p]);
            if (plen >= sizeof prefix) continue;
            memcpy(prefix, t->name, plen);
            prefix[plen] = 0;
            snprintf(bname, sizeof bname, "%s.bitmask", prefix);
            part = is_part_of(t->name, prefix) && lq_checkpoint_find(c, bname) != NULL;
        }
        if (!part) nt[k++] = *t;
        else if (has_suffix(t->name, ".bitmask")) s = expand_one(c, t, &nt[k++]);
    }
    if (s == LQ_OK) {
        free(c->tensors);
        c->tensors = nt;
        c->n_tensors = k;
        c->cap_tensors = c->n_tensors + 1;
        nt = NULL;
        s = strip_config(c, root, qc);
    }
done:
    free(nt);
    json_decref(root);
    return s;
}
