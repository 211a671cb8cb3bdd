/* gguf_write.c - streaming GGUF v3 writer (see lq_gguf_write.h).
 *
 * Each pair is encoded to its on-disk value bytes when it is set (so a replaced value is just a
 * new buffer), the key and type are prefixed when the header is written. Tensor offsets are
 * assigned at header time: consecutive, each rounded up to the alignment, as ggml does.
 */
#include "libquant/lq_gguf_write.h"
#include "libquant/lq_file.h"

#include <stdlib.h>
#include <string.h>

typedef struct wkv {
    char *key;
    lq_gguf_type type;
    uint8_t *val; /* encoded value (for arrays: elem type, count, elements) */
    size_t len;
} wkv;

typedef struct wtensor {
    char *name;
    int n_dims;
    int64_t ne[4];
    uint32_t type;
    uint64_t nbytes, offset;
} wtensor;

struct lq_gguf_writer {
    char *path;
    lq_file_out out;
    bool header_done, failed;
    wkv *kv;
    int64_t n_kv, cap_kv;
    wtensor *t;
    int64_t n_t, cap_t;
    uint32_t alignment;
    int64_t cur;       /* tensor receiving payload bytes */
    uint64_t cur_done; /* its bytes so far */
    uint64_t pos;      /* bytes written to the file */
};

/* ---- byte buffers ---------------------------------------------------------------------------- */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} buf;

static void buf_put(buf *b, const void *src, size_t n) {
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t nc = b->cap ? b->cap : 64;
        while (nc < b->n + n) nc *= 2;
        uint8_t *np = realloc(b->p, nc);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void buf_u32(buf *b, uint32_t v) { buf_put(b, &v, 4); }
static void buf_u64(buf *b, uint64_t v) { buf_put(b, &v, 8); }
static void buf_str(buf *b, const char *s, size_t n) {
    buf_u64(b, (uint64_t)n);
    buf_put(b, s, n);
}


/* ---- create / abort -------------------------------------------------------------------------- */

lq_status lq_gguf_writer_create(const char *path, lq_gguf_writer **out) {
    *out = NULL;
    lq_gguf_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(path))) {
        free(w);
        return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
    }
    w->out.fd = -1;
    w->alignment = 32;
    lq_status s = lq_file_begin(&w->out, path);
    if (s != LQ_OK) {
        free(w->path);
        free(w);
        return s;
    }
    *out = w;
    return LQ_OK;
}

void lq_gguf_writer_abort(lq_gguf_writer *w) {
    if (!w) return;
    lq_file_abort(&w->out);
    for (int64_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val);
    }
    for (int64_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w->path);
    free(w);
}

static lq_status check_open(lq_gguf_writer *w, const char *what, const char *name) {
    if (w->failed) return lq_fail(LQ_ERR_INVALID_ARG, "%s: writer already failed", w->path);
    if (w->header_done)
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: %s '%s' added after the first tensor bytes", w->path, what, name);
    return LQ_OK;
}

/* ---- key/value pairs ------------------------------------------------------------------------- */

/* Store key -> (type, encoded value); takes ownership of b's bytes. */
static lq_status kv_set(lq_gguf_writer *w, const char *key, lq_gguf_type type, buf *b) {
    lq_status s = check_open(w, "key", key);
    if (s == LQ_OK && b->oom) s = lq_fail(LQ_ERR_NOMEM, "%s: out of memory", w->path);
    if (s == LQ_OK && !key[0]) s = lq_fail(LQ_ERR_INVALID_ARG, "%s: empty key", w->path);
    if (s != LQ_OK) {
        free(b->p);
        return s;
    }
    for (int64_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, key) != 0) continue;
        free(w->kv[i].val);
        w->kv[i].type = type;
        w->kv[i].val = b->p;
        w->kv[i].len = b->n;
        return LQ_OK;
    }
    if (w->n_kv == w->cap_kv) {
        int64_t nc = w->cap_kv ? 2 * w->cap_kv : 32;
        wkv *nk = realloc(w->kv, (size_t)nc * sizeof *nk);
        if (!nk) {
            free(b->p);
            return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", w->path);
        }
        w->kv = nk;
        w->cap_kv = nc;
    }
    char *k = strdup(key);
    if (!k) {
        free(b->p);
        return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", w->path);
    }
    w->kv[w->n_kv++] = (wkv){k, type, b->p, b->n};
    return LQ_OK;
}

lq_status lq_gguf_writer_kv(lq_gguf_writer *w, const char *key, lq_gguf_type type, const void *value) {
    buf b = {0};
    if (type == LQ_GGUF_TYPE_STRING) {
        const char *s = value;
        buf_str(&b, s, strlen(s));
    } else {
        size_t n = lq_gguf_scalar_size(type);
        if (n == 0) return lq_fail(LQ_ERR_INVALID_ARG, "%s: key '%s': type %d is not a scalar", w->path, key, (int)type);
        uint8_t one;
        if (type == LQ_GGUF_TYPE_BOOL) { /* GGUF bools are one byte, 0 or 1 */
            one = *(const uint8_t *)value ? 1 : 0;
            value = &one;
        }
        buf_put(&b, value, n);
    }
    if (strcmp(key, "general.alignment") == 0) {
        uint32_t a = 0;
        if (type == LQ_GGUF_TYPE_UINT32) memcpy(&a, value, 4);
        if (a == 0 || (a & (a - 1)) != 0) {
            free(b.p);
            return lq_fail(LQ_ERR_INVALID_ARG, "%s: general.alignment must be a u32 power of two", w->path);
        }
        lq_status s = kv_set(w, key, type, &b);
        if (s == LQ_OK) w->alignment = a;
        return s;
    }
    return kv_set(w, key, type, &b);
}

lq_status lq_gguf_writer_kv_u32(lq_gguf_writer *w, const char *key, uint32_t v) {
    return lq_gguf_writer_kv(w, key, LQ_GGUF_TYPE_UINT32, &v);
}
lq_status lq_gguf_writer_kv_i32(lq_gguf_writer *w, const char *key, int32_t v) {
    return lq_gguf_writer_kv(w, key, LQ_GGUF_TYPE_INT32, &v);
}
lq_status lq_gguf_writer_kv_f32(lq_gguf_writer *w, const char *key, float v) {
    return lq_gguf_writer_kv(w, key, LQ_GGUF_TYPE_FLOAT32, &v);
}
lq_status lq_gguf_writer_kv_bool(lq_gguf_writer *w, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    return lq_gguf_writer_kv(w, key, LQ_GGUF_TYPE_BOOL, &b);
}
lq_status lq_gguf_writer_kv_str(lq_gguf_writer *w, const char *key, const char *v) {
    return lq_gguf_writer_kv(w, key, LQ_GGUF_TYPE_STRING, v);
}
lq_status lq_gguf_writer_kv_strn(lq_gguf_writer *w, const char *key, const char *v, size_t len) {
    buf b = {0};
    buf_str(&b, v, len);
    return kv_set(w, key, LQ_GGUF_TYPE_STRING, &b);
}

lq_status lq_gguf_writer_kv_arr(lq_gguf_writer *w, const char *key, lq_gguf_type elem_type,
                                const void *data, int64_t n) {
    size_t es = lq_gguf_scalar_size(elem_type);
    if (es == 0 || n < 0)
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: key '%s': bad array element type or count", w->path, key);
    buf b = {0};
    buf_u32(&b, (uint32_t)elem_type);
    buf_u64(&b, (uint64_t)n);
    if (n) buf_put(&b, data, (size_t)n * es);
    return kv_set(w, key, LQ_GGUF_TYPE_ARRAY, &b);
}

lq_status lq_gguf_writer_kv_arr_str(lq_gguf_writer *w, const char *key, const char *const *strs,
                                    const size_t *lens, int64_t n) {
    if (n < 0) return lq_fail(LQ_ERR_INVALID_ARG, "%s: key '%s': negative count", w->path, key);
    buf b = {0};
    buf_u32(&b, (uint32_t)LQ_GGUF_TYPE_STRING);
    buf_u64(&b, (uint64_t)n);
    for (int64_t i = 0; i < n; i++) buf_str(&b, strs[i], lens ? lens[i] : strlen(strs[i]));
    return kv_set(w, key, LQ_GGUF_TYPE_ARRAY, &b);
}

lq_status lq_gguf_writer_kv_copy(lq_gguf_writer *w, const lq_gguf *src, int64_t i) {
    const char *key = lq_gguf_kv_key(src, i);
    if (!key) return lq_fail(LQ_ERR_INVALID_ARG, "%s: pair %lld out of range", lq_gguf_path(src), (long long)i);
    lq_gguf_type elem;
    int64_t n;
    lq_gguf_type t = lq_gguf_kv_type(src, i, &elem, &n);
    buf b = {0};
    if (t == LQ_GGUF_TYPE_STRING) {
        lq_gguf_str s;
        LQ_TRY(lq_gguf_get_str(src, key, &s));
        buf_str(&b, s.data, (size_t)s.len);
    } else if (t == LQ_GGUF_TYPE_ARRAY) {
        buf_u32(&b, (uint32_t)elem);
        buf_u64(&b, (uint64_t)n);
        if (elem == LQ_GGUF_TYPE_STRING) {
            for (int64_t j = 0; j < n; j++) {
                lq_gguf_str s;
                lq_status st = lq_gguf_arr_str(src, key, j, &s);
                if (st != LQ_OK) {
                    free(b.p);
                    return st;
                }
                buf_str(&b, s.data, (size_t)s.len);
            }
        } else if (n) {
            buf_put(&b, lq_gguf_arr_data(src, key), (size_t)n * lq_gguf_scalar_size(elem));
        }
    } else {
        /* Scalars through the reader's getters, stored back in the pair's own type (a u64 above
         * INT64_MAX is refused by the getter: no such key exists in llama.cpp's files). */
        size_t es = lq_gguf_scalar_size(t);
        if (es == 0) return lq_fail(LQ_ERR_FORMAT, "%s: key '%s': unknown type %d", lq_gguf_path(src), key, (int)t);
        uint8_t v[8] = {0};
        if (t == LQ_GGUF_TYPE_FLOAT32 || t == LQ_GGUF_TYPE_FLOAT64) {
            double d;
            LQ_TRY(lq_gguf_get_f64(src, key, &d));
            float f = (float)d;
            if (t == LQ_GGUF_TYPE_FLOAT32) memcpy(v, &f, 4);
            else memcpy(v, &d, 8);
        } else if (t == LQ_GGUF_TYPE_BOOL) {
            bool bv;
            LQ_TRY(lq_gguf_get_bool(src, key, &bv));
            v[0] = bv ? 1 : 0;
        } else {
            int64_t iv;
            LQ_TRY(lq_gguf_get_i64(src, key, &iv));
            memcpy(v, &iv, es); /* little-endian: the low bytes are the value */
        }
        buf_put(&b, v, es);
    }
    return kv_set(w, key, t, &b);
}

void lq_gguf_writer_kv_remove(lq_gguf_writer *w, const char *key) {
    for (int64_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, key) != 0) continue;
        free(w->kv[i].key);
        free(w->kv[i].val);
        memmove(&w->kv[i], &w->kv[i + 1], (size_t)(w->n_kv - i - 1) * sizeof *w->kv);
        w->n_kv--;
        if (strcmp(key, "general.alignment") == 0) w->alignment = 32;
        return;
    }
}

/* ---- tensors --------------------------------------------------------------------------------- */

lq_status lq_gguf_writer_tensor(lq_gguf_writer *w, const char *name, int n_dims, const int64_t *ne,
                                uint32_t ggml_type) {
    LQ_TRY(check_open(w, "tensor", name));
    uint64_t blck, bb;
    if (!lq_ggml_type_layout(ggml_type, &blck, &bb))
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: tensor '%s': unknown ggml type %u", w->path, name, ggml_type);
    if (n_dims < 1 || n_dims > 4 || strlen(name) >= 64)
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: tensor '%s': %d dimensions or a name of 64+ bytes", w->path, name, n_dims);
    uint64_t numel = 1;
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] <= 0 || (uint64_t)ne[d] > (UINT64_MAX >> 8) / numel)
            return lq_fail(LQ_ERR_INVALID_ARG, "%s: tensor '%s': bad dimension %lld", w->path, name, (long long)ne[d]);
        numel *= (uint64_t)ne[d];
    }
    if ((uint64_t)ne[0] % blck != 0)
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: tensor '%s': %lld columns are not a multiple of the block size %llu",
                       w->path, name, (long long)ne[0], (unsigned long long)blck);
    for (int64_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return lq_fail(LQ_ERR_INVALID_ARG, "%s: tensor '%s' declared twice", w->path, name);
    if (w->n_t == w->cap_t) {
        int64_t nc = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *nt = realloc(w->t, (size_t)nc * sizeof *nt);
        if (!nt) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", w->path);
        w->t = nt;
        w->cap_t = nc;
    }
    wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", w->path);
    t->n_dims = n_dims;
    for (int d = 0; d < 4; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    t->type = ggml_type;
    t->nbytes = numel / blck * bb;
    w->n_t++;
    return LQ_OK;
}

uint64_t lq_gguf_writer_tensor_nbytes(const lq_gguf_writer *w, int64_t i) {
    return i >= 0 && i < w->n_t ? w->t[i].nbytes : 0;
}

/* ---- streaming ------------------------------------------------------------------------------- */

static lq_status raw_write(lq_gguf_writer *w, const void *p, size_t n) {
    lq_status s = lq_file_write(&w->out, p, n);
    if (s != LQ_OK) {
        lq_file_abort(&w->out);
        w->failed = true;
        return s;
    }
    w->pos += n;
    return LQ_OK;
}

static lq_status pad_to(lq_gguf_writer *w, uint64_t align) {
    static const uint8_t zeros[64];
    uint64_t n = (align - w->pos % align) % align;
    while (n) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        LQ_TRY(raw_write(w, zeros, k));
        n -= k;
    }
    return LQ_OK;
}

static lq_status write_header(lq_gguf_writer *w) {
    buf b = {0};
    buf_put(&b, "GGUF", 4);
    buf_u32(&b, 3);
    buf_u64(&b, (uint64_t)w->n_t);
    buf_u64(&b, (uint64_t)w->n_kv);
    for (int64_t i = 0; i < w->n_kv; i++) {
        buf_str(&b, w->kv[i].key, strlen(w->kv[i].key));
        buf_u32(&b, (uint32_t)w->kv[i].type);
        buf_put(&b, w->kv[i].val, w->kv[i].len);
    }
    uint64_t off = 0, a = w->alignment;
    for (int64_t i = 0; i < w->n_t; i++) {
        wtensor *t = &w->t[i];
        buf_str(&b, t->name, strlen(t->name));
        buf_u32(&b, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++) buf_u64(&b, (uint64_t)t->ne[d]);
        buf_u32(&b, t->type);
        t->offset = off;
        buf_u64(&b, off);
        off += (t->nbytes + a - 1) / a * a;
    }
    w->header_done = true;
    if (b.oom) {
        free(b.p);
        lq_file_abort(&w->out);
        w->failed = true;
        return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", w->path);
    }
    lq_status s = raw_write(w, b.p, b.n);
    free(b.p);
    /* A file without tensors ends after the infos (llama.cpp's vocab files do): no data section. */
    if (s == LQ_OK && w->n_t > 0) s = pad_to(w, a);
    return s;
}

/* Move past finished tensors (padding each), so cur is the one receiving bytes. */
static lq_status advance(lq_gguf_writer *w) {
    while (w->cur < w->n_t && w->cur_done == w->t[w->cur].nbytes) {
        LQ_TRY(pad_to(w, w->alignment));
        w->cur++;
        w->cur_done = 0;
    }
    return LQ_OK;
}

lq_status lq_gguf_writer_write(lq_gguf_writer *w, const void *data, size_t n) {
    if (w->failed) return lq_fail(LQ_ERR_INVALID_ARG, "%s: writer already failed", w->path);
    if (!w->header_done) LQ_TRY(write_header(w));
    const uint8_t *p = data;
    while (n) {
        LQ_TRY(advance(w));
        if (w->cur >= w->n_t) {
            w->failed = true;
            lq_file_abort(&w->out);
            return lq_fail(LQ_ERR_INVALID_ARG, "%s: more payload bytes than the tensors declared", w->path);
        }
        uint64_t room = w->t[w->cur].nbytes - w->cur_done;
        size_t k = n < room ? n : (size_t)room;
        LQ_TRY(raw_write(w, p, k));
        w->cur_done += k;
        p += k;
        n -= k;
    }
    return LQ_OK;
}

lq_status lq_gguf_writer_commit(lq_gguf_writer *w) {
    lq_status s = LQ_OK;
    if (w->failed) s = lq_fail(LQ_ERR_INVALID_ARG, "%s: writer already failed", w->path);
    if (s == LQ_OK && !w->header_done) s = write_header(w);
    if (s == LQ_OK) s = advance(w);
    if (s == LQ_OK && w->cur < w->n_t)
        s = lq_fail(LQ_ERR_INVALID_ARG, "%s: tensor '%s': %llu of %llu bytes written", w->path,
                    w->t[w->cur].name, (unsigned long long)w->cur_done, (unsigned long long)w->t[w->cur].nbytes);
    if (s == LQ_OK) s = lq_file_commit(&w->out);
    lq_gguf_writer_abort(w); /* frees; the file is renamed already (abort is then a no-op on it) */
    return s;
}
