/* imatrix_file.c - llama.cpp's importance-matrix files (lq_calib.h): llama-imatrix's GGUF format
 * and its legacy .dat, read and written as tools/imatrix/imatrix.cpp and common/imatrix-loader.cpp
 * (llama.cpp 0c1e57098) do.
 *
 * GGUF: "general.type" = "imatrix", "imatrix.datasets" (string array), "imatrix.chunk_count" and
 *   "imatrix.chunk_size" (u32); per entry, sorted by name, "<name>.in_sum2" (F32, the sums of
 *   x^2 per input column) and "<name>.counts" (F32, the tokens summed). ggml writes a tensor with
 *   n_dims = ggml_n_dims, so a dense entry's [cols x 1] and [1 x 1] are 1-D: we write the same.
 * .dat (little-endian): i32 n_entries; per entry i32 len, name, i32 ncall, i32 nval, nval f32 =
 *   (sum / count) * ncall with ncall = ceil(count / chunk_size); then (optional) i32 chunk count,
 *   i32 len + the dataset name. Read back, sum = the stored values and count = ncall, so the mean
 *   is what llama-quantize divides out (values / ncall; ncall 0 keeps the values).
 */
#include "gguf_internal.h"
#include "imatrix_internal.h"

#include "libquant/lq_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- names and metadata ----------------------------------------------------------------------- */

lq_status lq_imatrix_set_config(lq_imatrix *im, const lq_config *c) {
    return lq_arch_for_config(c, "imatrix", &im->arch);
}

bool lq_imatrix_gguf_name(const lq_imatrix *im, const char *module, char *buf, size_t cap) {
    int role, layer;
    char hf[200];
    if (im->arch && snprintf(hf, sizeof hf, "%s.weight", module) < (int)sizeof hf &&
        lq_gguf_name_of(im->arch, hf, buf, cap, &role, &layer))
        return true;
    if (strncmp(module, "model.", 6) == 0 || strcmp(module, "lm_head") == 0) return false; /* HF, unmapped */
    return snprintf(buf, cap, "%s", module) < (int)cap;
}

bool lq_imatrix_entry(const lq_imatrix *im, int64_t i, const char **name, int64_t *cols, int64_t *n_tokens,
                      const double **sums) {
    if (i < 0 || i >= im->n) return false;
    if (name) *name = im->e[i].module;
    if (cols) *cols = im->e[i].cols;
    if (n_tokens) *n_tokens = im->e[i].n_tokens;
    if (sums) *sums = im->e[i].sum;
    return true;
}

void lq_imatrix_set_chunks(lq_imatrix *im, int64_t chunk_count, int64_t chunk_size) {
    im->chunk_count = chunk_count;
    im->chunk_size = chunk_size;
}

lq_status lq_imatrix_add_dataset(lq_imatrix *im, const char *name) {
    char **d = realloc(im->datasets, (size_t)(im->n_datasets + 1) * sizeof *d);
    if (!d) return lq_fail(LQ_ERR_NOMEM, "out of memory");
    im->datasets = d;
    if (!(d[im->n_datasets] = strdup(name))) return lq_fail(LQ_ERR_NOMEM, "out of memory");
    im->n_datasets++;
    return LQ_OK;
}

int64_t lq_imatrix_chunk_count(const lq_imatrix *im) { return im->chunk_count; }
int64_t lq_imatrix_chunk_size(const lq_imatrix *im) { return im->chunk_size; }
int64_t lq_imatrix_dataset_count(const lq_imatrix *im) { return im->n_datasets; }
const char *lq_imatrix_dataset(const lq_imatrix *im, int64_t i) {
    return i >= 0 && i < im->n_datasets ? im->datasets[i] : NULL;
}

/* ---- writing ------------------------------------------------------------------------------------ */

typedef struct named {
    char name[200];
    const im_entry *e;
} named;

static int named_cmp(const void *a, const void *b) { return strcmp(((const named *)a)->name, ((const named *)b)->name); }

/* The entries to store, GGUF-named and sorted (std::sort of the names: byte order). Only
 * decoder-layer tensors, as llama-imatrix collects without --process-output. */
static lq_status sorted_entries(const lq_imatrix *im, const char *path, named **out, int64_t *n_out) {
    named *v = calloc((size_t)(im->n ? im->n : 1), sizeof *v);
    if (!v) return lq_fail(LQ_ERR_NOMEM, "out of memory");
    int64_t n = 0;
    for (int64_t i = 0; i < im->n; i++) {
        const im_entry *e = &im->e[i];
        if (!lq_imatrix_gguf_name(im, e->module, v[n].name, sizeof v[n].name)) {
            if (strcmp(e->module, "lm_head") == 0) continue; /* the head: output.weight, not collected */
            free(v);
            return lq_fail(LQ_ERR_UNSUPPORTED, "%s: imatrix entry '%s' has no GGUF tensor name%s", path, e->module,
                           strstr(e->module, "expert") ? " (MoE experts are not supported yet)" : "");
        }
        if (strncmp(v[n].name, "blk.", 4) != 0) continue;
        v[n++].e = e;
    }
    qsort(v, (size_t)n, sizeof *v, named_cmp);
    *out = v;
    *n_out = n;
    return LQ_OK;
}

static lq_status save_gguf(const lq_imatrix *im, const char *path, const named *v, int64_t n) {
    lq_gguf_writer *w;
    LQ_TRY(lq_gguf_writer_create(path, &w));
    lq_status s = lq_gguf_writer_kv_str(w, "general.type", "imatrix");
    if (s == LQ_OK)
        s = lq_gguf_writer_kv_arr_str(w, "imatrix.datasets", (const char *const *)im->datasets, NULL,
                                      im->n_datasets);
    if (s == LQ_OK) s = lq_gguf_writer_kv_u32(w, "imatrix.chunk_count", (uint32_t)im->chunk_count);
    if (s == LQ_OK) s = lq_gguf_writer_kv_u32(w, "imatrix.chunk_size", (uint32_t)im->chunk_size);
    char tn[220];
    for (int64_t i = 0; s == LQ_OK && i < n; i++) {
        const int64_t ne_sum[2] = {v[i].e->cols, 1}, ne_cnt[2] = {1, 1};
        snprintf(tn, sizeof tn, "%s.in_sum2", v[i].name);
        s = lq_gguf_writer_tensor(w, tn, 1, ne_sum, 0);
        snprintf(tn, sizeof tn, "%s.counts", v[i].name);
        if (s == LQ_OK) s = lq_gguf_writer_tensor(w, tn, 1, ne_cnt, 0);
    }
    float *buf = NULL;
    for (int64_t i = 0; s == LQ_OK && i < n; i++) {
        const im_entry *e = v[i].e;
        float *b = realloc(buf, (size_t)e->cols * sizeof *b);
        if (!b) {
            s = lq_fail(LQ_ERR_NOMEM, "out of memory");
            break;
        }
        buf = b;
        for (int64_t j = 0; j < e->cols; j++) buf[j] = (float)e->sum[j];
        s = lq_gguf_writer_write(w, buf, (size_t)e->cols * sizeof *buf);
        const float cnt = (float)e->n_tokens;
        if (s == LQ_OK) s = lq_gguf_writer_write(w, &cnt, sizeof cnt);
    }
    free(buf);
    if (s != LQ_OK) {
        lq_gguf_writer_abort(w);
        return s;
    }
    return lq_gguf_writer_commit(w);
}

static lq_status put_i32(lq_file_out *f, int64_t v) {
    const int32_t x = (int32_t)v;
    return lq_file_write(f, &x, sizeof x);
}

static lq_status save_dat(const lq_imatrix *im, const char *path, const named *v, int64_t n) {
    const int64_t chunk = im->chunk_size > 0 ? im->chunk_size : 512;
    lq_file_out f;
    LQ_TRY(lq_file_begin(&f, path));
    lq_status s = put_i32(&f, n);
    float *tmp = NULL;
    for (int64_t i = 0; s == LQ_OK && i < n; i++) {
        const im_entry *e = v[i].e;
        const int64_t len = (int64_t)strlen(v[i].name);
        const int64_t ncall = (e->n_tokens + chunk - 1) / chunk; /* ceiling: no accidental zeros */
        s = put_i32(&f, len);
        if (s == LQ_OK) s = lq_file_write(&f, v[i].name, (size_t)len);
        if (s == LQ_OK) s = put_i32(&f, ncall);
        if (s == LQ_OK) s = put_i32(&f, e->cols);
        float *t = s == LQ_OK ? realloc(tmp, (size_t)e->cols * sizeof *t) : NULL;
        if (s == LQ_OK && !t) s = lq_fail(LQ_ERR_NOMEM, "out of memory");
        if (s != LQ_OK) break;
        tmp = t;
        for (int64_t j = 0; j < e->cols; j++) {
            float count = (float)e->n_tokens, value = (float)e->sum[j];
            if (count == 0.0f) value = count = 1.0f; /* "store 1 for partial data" */
            tmp[j] = (value / count) * (float)ncall;
        }
        s = lq_file_write(&f, tmp, (size_t)e->cols * sizeof *tmp);
    }
    free(tmp);
    if (s == LQ_OK) s = put_i32(&f, im->chunk_count);
    const char *ds = im->n_datasets ? im->datasets[im->n_datasets - 1] : "";
    if (s == LQ_OK) s = put_i32(&f, (int64_t)strlen(ds));
    if (s == LQ_OK) s = lq_file_write(&f, ds, strlen(ds));
    if (s != LQ_OK) {
        lq_file_abort(&f);
        return s;
    }
    return lq_file_commit(&f);
}

lq_status lq_imatrix_save(const lq_imatrix *im, const char *path, lq_imatrix_format fmt) {
    named *v = NULL;
    int64_t n = 0;
    LQ_TRY(sorted_entries(im, path, &v, &n));
    lq_status s = n == 0 ? lq_fail(LQ_ERR_INVALID_ARG, "%s: the imatrix has no decoder-layer entries", path)
                  : fmt == LQ_IMATRIX_DAT ? save_dat(im, path, v, n)
                                          : save_gguf(im, path, v, n);
    free(v);
    return s;
}

/* ---- reading ------------------------------------------------------------------------------------ */

/* Entry name (len bytes) as a C string into buf; false if too long or has a NUL. */
static bool copy_name(const char *p, uint64_t len, char *buf, size_t cap) {
    if (len == 0 || len >= cap || memchr(p, 0, (size_t)len)) return false;
    memcpy(buf, p, (size_t)len);
    buf[len] = 0;
    return true;
}

static lq_status load_gguf(const char *path, lq_imatrix *im) {
    lq_gguf *g;
    LQ_TRY(lq_gguf_open(path, &g));
    lq_status s = LQ_OK;
    int64_t v;
    if (lq_gguf_get_i64(g, "imatrix.chunk_count", &v) == LQ_OK) im->chunk_count = v;
    if (lq_gguf_get_i64(g, "imatrix.chunk_size", &v) == LQ_OK) im->chunk_size = v;
    lq_gguf_type et;
    int64_t nd = 0;
    if (lq_gguf_get_arr(g, "imatrix.datasets", &et, &nd) == LQ_OK && et == LQ_GGUF_TYPE_STRING) {
        for (int64_t i = 0; s == LQ_OK && i < nd; i++) {
            lq_gguf_str str;
            char buf[4096];
            s = lq_gguf_arr_str(g, "imatrix.datasets", i, &str);
            if (s == LQ_OK && str.len < sizeof buf) {
                memcpy(buf, str.data, (size_t)str.len);
                buf[str.len] = 0;
                s = lq_imatrix_add_dataset(im, buf);
            }
        }
    }
    const uint8_t *base = lq_gguf_file_data(g);
    for (int64_t i = 0; s == LQ_OK && i < lq_gguf_tensor_count(g); i++) {
        const lq_gguf_tensor_info *t = lq_gguf_tensor(g, i);
        size_t nl = strlen(t->name);
        if (nl <= 8 || strcmp(t->name + nl - 8, ".in_sum2") != 0) continue;
        char name[160], cn[180];
        if (!copy_name(t->name, nl - 8, name, sizeof name)) {
            s = lq_fail(LQ_ERR_FORMAT, "%s: imatrix tensor '%s': name too long", path, t->name);
            break;
        }
        snprintf(cn, sizeof cn, "%s.counts", name);
        const lq_gguf_tensor_info *c = lq_gguf_find_tensor(g, cn);
        if (!c) {
            s = lq_fail(LQ_ERR_FORMAT, "%s: imatrix entry '%s': sums without counts", path, name);
            break;
        }
        if (t->type != 0 || c->type != 0) {
            s = lq_fail(LQ_ERR_FORMAT, "%s: imatrix entry '%s': sums and counts must be F32", path, name);
            break;
        }
        const int64_t nmat = c->ne[0] * c->ne[1] * c->ne[2] * c->ne[3];
        const int64_t nval = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        if (nmat != 1) {
            s = lq_fail(LQ_ERR_UNSUPPORTED, "%s: imatrix entry '%s': %lld matrices (MoE experts are not supported yet)",
                        path, name, (long long)nmat);
            break;
        }
        if (nval < 1 || lq_imatrix_find_entry(im, name)) {
            s = lq_fail(LQ_ERR_FORMAT, "%s: imatrix entry '%s': %s", path, name, nval < 1 ? "empty" : "twice");
            break;
        }
        im_entry *e = lq_imatrix_add(im, name, nval);
        if (!e) {
            s = lq_fail(LQ_ERR_NOMEM, "out of memory");
            break;
        }
        float f;
        for (int64_t j = 0; j < nval; j++) {
            memcpy(&f, base + t->offset + (uint64_t)j * 4, 4);
            e->sum[j] = f;
        }
        memcpy(&f, base + c->offset, 4);
        if (!(f >= 0.0f && f < 9.2e18f)) { /* NaN too */
            s = lq_fail(LQ_ERR_FORMAT, "%s: imatrix entry '%s': count %g", path, name, (double)f);
            break;
        }
        e->n_tokens = (int64_t)(f + 0.5f); /* std::lround */
    }
    if (s == LQ_OK && im->n == 0) s = lq_fail(LQ_ERR_FORMAT, "%s: no imatrix entries (no '<name>.in_sum2' tensors)", path);
    lq_gguf_close(g);
    return s;
}

typedef struct rd {
    const uint8_t *p;
    size_t n, at;
} rd;

static bool rd_i32(rd *r, int32_t *v) {
    if (r->n - r->at < 4) return false;
    memcpy(v, r->p + r->at, 4);
    r->at += 4;
    return true;
}

static lq_status load_dat(const char *path, const uint8_t *p, size_t n, lq_imatrix *im) {
    rd r = {p, n, 0};
    int32_t n_entries;
    if (!rd_i32(&r, &n_entries) || n_entries < 1)
        return lq_fail(LQ_ERR_FORMAT, "%s: not an imatrix (neither GGUF nor a .dat with entries)", path);
    for (int32_t i = 0; i < n_entries; i++) {
        int32_t len, ncall, nval;
        char name[160];
        if (!rd_i32(&r, &len) || len < 1 || (size_t)len > r.n - r.at || !copy_name((const char *)p + r.at, (uint64_t)len, name, sizeof name))
            return lq_fail(LQ_ERR_FORMAT, "%s: imatrix entry %d: bad name", path, i + 1);
        r.at += (size_t)len;
        if (!rd_i32(&r, &ncall) || !rd_i32(&r, &nval) || nval < 1 || ncall < 0)
            return lq_fail(LQ_ERR_FORMAT, "%s: imatrix entry '%s': bad call or value count", path, name);
        if ((size_t)nval > (r.n - r.at) / 4)
            return lq_fail(LQ_ERR_FORMAT, "%s: imatrix entry '%s': %d values past the end of the file", path, name, nval);
        if (lq_imatrix_find_entry(im, name)) return lq_fail(LQ_ERR_FORMAT, "%s: imatrix entry '%s' twice", path, name);
        im_entry *e = lq_imatrix_add(im, name, nval);
        if (!e) return lq_fail(LQ_ERR_NOMEM, "out of memory");
        for (int32_t j = 0; j < nval; j++) {
            float f;
            memcpy(&f, p + r.at, 4);
            r.at += 4;
            e->sum[j] = f;
        }
        e->n_tokens = ncall > 0 ? ncall : 1; /* llama-quantize: values / ncall, or as they are */
    }
    int32_t chunks, dlen;
    if (rd_i32(&r, &chunks)) {
        im->chunk_count = chunks;
        if (rd_i32(&r, &dlen) && dlen > 0 && (size_t)dlen <= r.n - r.at) {
            char *d = malloc((size_t)dlen + 1);
            if (!d) return lq_fail(LQ_ERR_NOMEM, "out of memory");
            memcpy(d, p + r.at, (size_t)dlen);
            d[dlen] = 0;
            lq_status s = lq_imatrix_add_dataset(im, d);
            free(d);
            LQ_TRY(s);
        }
    }
    return LQ_OK;
}

lq_status lq_imatrix_load(const char *path, lq_imatrix **out) {
    *out = NULL;
    FILE *f;
    LQ_TRY(lq_file_fopen_input(path, &f));
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            uint8_t *b = realloc(buf, cap);
            if (!b) {
                free(buf);
                fclose(f);
                return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
            }
            buf = b;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0) break;
    }
    bool err = ferror(f) != 0;
    fclose(f);
    lq_imatrix *im = NULL;
    lq_status s = err ? lq_fail(LQ_ERR_IO, "%s: read error", path) : lq_imatrix_create(&im);
    if (s == LQ_OK) s = n >= 4 && memcmp(buf, "GGUF", 4) == 0 ? load_gguf(path, im) : load_dat(path, buf, n, im);
    free(buf);
    if (s != LQ_OK) {
        lq_imatrix_free(im);
        return s;
    }
    *out = im;
    return LQ_OK;
}
