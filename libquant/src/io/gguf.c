/* gguf.c - validating GGUF v2/v3 reader (see lq_gguf.h).
 *
 * The header is walked exactly once at open time with a bounds-checked cursor; everything the
 * getters later touch (value offsets, string-array element offsets, tensor ranges) was checked
 * against the file size there, so the getters themselves need no further bounds logic.
 */
#include "libquant/lq_gguf.h"
#include "libquant/lq_file.h"
#include "libquant/lq_gguf_write.h" /* lq_ggml_type_layout */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct gguf_kv {
    char *key;
    lq_gguf_type type;
    lq_gguf_type elem;   /* arrays only */
    int64_t n;           /* arrays only: element count */
    uint64_t off;        /* scalars: value; strings: the u64 length; arrays: first element */
    uint64_t *str_off;   /* string arrays: offset of each element's u64 length */
} gguf_kv;

struct lq_gguf {
    char *path;
    const uint8_t *data;
    size_t size;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_off;
    int64_t n_kv;
    gguf_kv *kv;
    int64_t n_tensors;
    lq_gguf_tensor_info *tensors;
};

/* ---- bounds-checked cursor ------------------------------------------------------------------ */

typedef struct cursor {
    const uint8_t *p;
    uint64_t size, pos;
} cursor;

static bool cur_take(cursor *c, uint64_t n, uint64_t *at) {
    if (n > c->size - c->pos) return false;
    if (at) *at = c->pos;
    c->pos += n;
    return true;
}
static bool cur_u32(cursor *c, uint32_t *v) {
    uint64_t at;
    if (!cur_take(c, 4, &at)) return false;
    memcpy(v, c->p + at, 4);
    return true;
}
static bool cur_u64(cursor *c, uint64_t *v) {
    uint64_t at;
    if (!cur_take(c, 8, &at)) return false;
    memcpy(v, c->p + at, 8);
    return true;
}
/* A string: u64 length then bytes; *at receives the offset of the length field. */
static bool cur_str(cursor *c, uint64_t *at, uint64_t *len) {
    uint64_t start = c->pos, n;
    if (!cur_u64(c, &n) || !cur_take(c, n, NULL)) return false;
    if (at) *at = start;
    if (len) *len = n;
    return true;
}

size_t lq_gguf_scalar_size(lq_gguf_type t) {
    switch (t) {
    case LQ_GGUF_TYPE_UINT8: case LQ_GGUF_TYPE_INT8: case LQ_GGUF_TYPE_BOOL: return 1;
    case LQ_GGUF_TYPE_UINT16: case LQ_GGUF_TYPE_INT16: return 2;
    case LQ_GGUF_TYPE_UINT32: case LQ_GGUF_TYPE_INT32: case LQ_GGUF_TYPE_FLOAT32: return 4;
    case LQ_GGUF_TYPE_UINT64: case LQ_GGUF_TYPE_INT64: case LQ_GGUF_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

/* Block size and bytes per block of the ggml types whose layout we know (ggml-common.h). */
bool lq_ggml_type_layout(uint32_t type, uint64_t *blck, uint64_t *bytes) {
    static const struct { uint16_t blck, bytes; } tab[] = {
        [0] = {1, 4},      /* F32 */
        [1] = {1, 2},      /* F16 */
        [2] = {32, 18},    /* Q4_0: f16 d + 16 bytes */
        [3] = {32, 20},    /* Q4_1: f16 d, m + 16 bytes */
        [6] = {32, 22},    /* Q5_0 */
        [7] = {32, 24},    /* Q5_1 */
        [8] = {32, 34},    /* Q8_0: f16 d + 32 int8 */
        [9] = {32, 36},    /* Q8_1 */
        [10] = {256, 84},  /* Q2_K */
        [11] = {256, 110}, /* Q3_K */
        [12] = {256, 144}, /* Q4_K */
        [13] = {256, 176}, /* Q5_K */
        [14] = {256, 210}, /* Q6_K */
        [15] = {256, 292}, /* Q8_K */
        [20] = {32, 18},   /* IQ4_NL */
        [23] = {256, 136}, /* IQ4_XS: f16 d, u16 scales_h, 4 scales_l, 128 nibbles */
        [24] = {1, 1},     /* I8 */
        [25] = {1, 2},     /* I16 */
        [26] = {1, 4},     /* I32 */
        [27] = {1, 8},     /* I64 */
        [28] = {1, 8},     /* F64 */
        [30] = {1, 2},     /* BF16 */
    };
    if (type >= sizeof tab / sizeof tab[0] || tab[type].blck == 0) return false;
    *blck = tab[type].blck;
    *bytes = tab[type].bytes;
    return true;
}

/* ---- open / close --------------------------------------------------------------------------- */

void lq_gguf_close(lq_gguf *g) {
    if (!g) return;
    for (int64_t i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].str_off);
    }
    free(g->kv);
    for (int64_t i = 0; i < g->n_tensors; i++) free((char *)g->tensors[i].name);
    free(g->tensors);
    if (g->data && g->size) munmap((void *)g->data, g->size);
    free(g->path);
    free(g);
}

static char *dup_n(const uint8_t *s, uint64_t n) {
    char *r = malloc(n + 1);
    if (!r) return NULL;
    memcpy(r, s, n);
    r[n] = 0;
    return r;
}

/* Parse one KV value at the cursor into kv (key already set). */
static lq_status parse_value(lq_gguf *g, cursor *c, gguf_kv *kv) {
    const char *path = g->path;
    uint32_t type;
    if (!cur_u32(c, &type)) return lq_fail(LQ_ERR_FORMAT, "%s: key '%s': truncated type", path, kv->key);
    if (type >= LQ_GGUF_TYPE_COUNT)
        return lq_fail(LQ_ERR_FORMAT, "%s: key '%s': unknown value type %u", path, kv->key, type);
    kv->type = (lq_gguf_type)type;
    if (type == LQ_GGUF_TYPE_STRING) {
        if (!cur_str(c, &kv->off, NULL))
            return lq_fail(LQ_ERR_FORMAT, "%s: key '%s': string past the end of the file", path, kv->key);
        return LQ_OK;
    }
    if (type != LQ_GGUF_TYPE_ARRAY) {
        if (!cur_take(c, lq_gguf_scalar_size(kv->type), &kv->off))
            return lq_fail(LQ_ERR_FORMAT, "%s: key '%s': value past the end of the file", path, kv->key);
        return LQ_OK;
    }
    uint32_t et;
    uint64_t n;
    if (!cur_u32(c, &et) || !cur_u64(c, &n))
        return lq_fail(LQ_ERR_FORMAT, "%s: key '%s': truncated array header", path, kv->key);
    if (et >= LQ_GGUF_TYPE_COUNT)
        return lq_fail(LQ_ERR_FORMAT, "%s: key '%s': unknown array element type %u", path, kv->key, et);
    if (et == LQ_GGUF_TYPE_ARRAY)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: key '%s': nested arrays are not supported", path, kv->key);
    kv->elem = (lq_gguf_type)et;
    kv->off = c->pos;
    uint64_t left = c->size - c->pos;
    if (et == LQ_GGUF_TYPE_STRING) {
        /* each element needs at least its 8-byte length: bounds n before allocating */
        if (n > left / 8)
            return lq_fail(LQ_ERR_FORMAT, "%s: key '%s': array of %llu strings past the end of the file",
                           path, kv->key, (unsigned long long)n);
        kv->str_off = malloc((n ? n : 1) * sizeof *kv->str_off);
        if (!kv->str_off) return lq_fail(LQ_ERR_NOMEM, "%s: key '%s': out of memory", path, kv->key);
        for (uint64_t i = 0; i < n; i++) {
            if (!cur_str(c, &kv->str_off[i], NULL))
                return lq_fail(LQ_ERR_FORMAT, "%s: key '%s': string %llu past the end of the file", path,
                               kv->key, (unsigned long long)i);
        }
    } else {
        uint64_t es = lq_gguf_scalar_size(kv->elem);
        if (n > left / es)
            return lq_fail(LQ_ERR_FORMAT, "%s: key '%s': array of %llu elements past the end of the file",
                           path, kv->key, (unsigned long long)n);
        c->pos += n * es;
    }
    kv->n = (int64_t)n;
    return LQ_OK;
}

static lq_status parse_tensor(lq_gguf *g, cursor *c, int64_t idx, lq_gguf_tensor_info *t) {
    const char *path = g->path;
    uint64_t at, len;
    if (!cur_str(c, &at, &len))
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor info %lld: name past the end of the file", path, (long long)idx);
    t->name = dup_n(c->p + at + 8, len);
    if (!t->name) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
    if (!cur_u32(c, &t->n_dims))
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': truncated", path, t->name);
    if (t->n_dims < 1 || t->n_dims > 4)
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': %u dimensions (1..4 allowed)", path, t->name, t->n_dims);
    int64_t numel = 1;
    for (int d = 0; d < 4; d++) {
        uint64_t ne = 1;
        if ((uint32_t)d < t->n_dims && !cur_u64(c, &ne))
            return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': truncated shape", path, t->name);
        if (ne > (uint64_t)INT64_MAX || (ne && numel > INT64_MAX / (int64_t)ne))
            return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': element count overflows", path, t->name);
        t->ne[d] = (int64_t)ne;
        numel *= (int64_t)ne;
    }
    uint64_t rel;
    if (!cur_u32(c, &t->type) || !cur_u64(c, &rel))
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': truncated", path, t->name);
    t->offset = rel; /* made absolute once the data section start is known */
    uint64_t blck, bytes;
    t->nbytes = 0;
    if (lq_ggml_type_layout(t->type, &blck, &bytes)) {
        if (t->ne[0] % (int64_t)blck != 0)
            return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': ne[0]=%lld is not a multiple of the block size %llu",
                           path, t->name, (long long)t->ne[0], (unsigned long long)blck);
        uint64_t blocks = (uint64_t)numel / blck;
        if (blocks && bytes > UINT64_MAX / blocks)
            return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': byte size overflows", path, t->name);
        t->nbytes = blocks * bytes;
    }
    return LQ_OK;
}

static lq_status gguf_parse(lq_gguf *g) {
    const char *path = g->path;
    cursor c = {g->data, g->size, 0};
    uint32_t magic;
    uint64_t n_tensors, n_kv;
    if (!cur_u32(&c, &magic) || memcmp(g->data, "GGUF", 4) != 0)
        return lq_fail(LQ_ERR_FORMAT, "%s: not a GGUF file (bad magic)", path);
    if (!cur_u32(&c, &g->version) || !cur_u64(&c, &n_tensors) || !cur_u64(&c, &n_kv))
        return lq_fail(LQ_ERR_FORMAT, "%s: truncated GGUF header", path);
    if (g->version < 2 || g->version > 3)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: GGUF version %u (only 2 and 3 are supported)", path, g->version);
    /* smallest KV: 8-byte key length + 4-byte type + 1-byte value; smallest tensor info: 32 */
    if (n_kv > (g->size - c.pos) / 13 || n_tensors > (g->size - c.pos) / 32)
        return lq_fail(LQ_ERR_FORMAT, "%s: %llu keys / %llu tensors cannot fit in %zu bytes", path,
                       (unsigned long long)n_kv, (unsigned long long)n_tensors, g->size);

    g->kv = calloc(n_kv ? n_kv : 1, sizeof *g->kv);
    if (!g->kv) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
    for (uint64_t i = 0; i < n_kv; i++) {
        gguf_kv *kv = &g->kv[i];
        uint64_t at, len;
        if (!cur_str(&c, &at, &len))
            return lq_fail(LQ_ERR_FORMAT, "%s: key %llu: name past the end of the file", path, (unsigned long long)i);
        kv->key = dup_n(g->data + at + 8, len);
        if (!kv->key) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
        g->n_kv = (int64_t)i + 1; /* so close() frees what was parsed so far */
        if (strlen(kv->key) != len)
            return lq_fail(LQ_ERR_FORMAT, "%s: key %llu contains a NUL byte", path, (unsigned long long)i);
        for (uint64_t j = 0; j < i; j++)
            if (strcmp(g->kv[j].key, kv->key) == 0)
                return lq_fail(LQ_ERR_FORMAT, "%s: duplicate key '%s'", path, kv->key);
        LQ_TRY(parse_value(g, &c, kv));
    }

    g->alignment = 32;
    int64_t ai = lq_gguf_find(g, "general.alignment");
    if (ai >= 0) {
        int64_t a;
        LQ_TRY(lq_gguf_get_i64(g, "general.alignment", &a));
        if (a <= 0 || a > (1 << 30) || (a & (a - 1)) != 0)
            return lq_fail(LQ_ERR_FORMAT, "%s: general.alignment %lld is not a power of two", path, (long long)a);
        g->alignment = (uint32_t)a;
    }

    g->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *g->tensors);
    if (!g->tensors) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
    for (uint64_t i = 0; i < n_tensors; i++) {
        g->n_tensors = (int64_t)i + 1;
        LQ_TRY(parse_tensor(g, &c, (int64_t)i, &g->tensors[i]));
    }
    uint64_t a = g->alignment;
    g->data_off = (c.pos + a - 1) / a * a;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        lq_gguf_tensor_info *t = &g->tensors[i];
        if (t->offset % a != 0)
            return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': offset %llu is not aligned to %u", path, t->name,
                           (unsigned long long)t->offset, g->alignment);
        if (g->data_off > g->size || t->offset > g->size - g->data_off ||
            t->nbytes > g->size - g->data_off - t->offset)
            return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': data [%llu, +%llu) past the end of the file (%zu bytes)",
                           path, t->name, (unsigned long long)t->offset, (unsigned long long)t->nbytes, g->size);
        t->offset += g->data_off;
        for (int64_t j = 0; j < i; j++)
            if (strcmp(g->tensors[j].name, t->name) == 0)
                return lq_fail(LQ_ERR_FORMAT, "%s: duplicate tensor '%s'", path, t->name);
    }
    return LQ_OK;
}

lq_status lq_gguf_open(const char *path, lq_gguf **out) {
    *out = NULL;
    lq_gguf *g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(path))) {
        free(g);
        return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
    }
    int fd;
    lq_status os = lq_file_open_input(path, &fd, NULL);
    if (os != LQ_OK) {
        lq_gguf_close(g);
        return os;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        lq_gguf_close(g);
        return lq_fail(LQ_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size < 24) {
        close(fd);
        lq_gguf_close(g);
        return lq_fail(LQ_ERR_FORMAT, "%s: %lld bytes is too short for a GGUF header", path, (long long)st.st_size);
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        lq_gguf_close(g);
        return lq_fail(LQ_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
    }
    g->data = m;
    g->size = (size_t)st.st_size;
    lq_status s = gguf_parse(g);
    if (s != LQ_OK) {
        lq_gguf_close(g);
        return s;
    }
    *out = g;
    return LQ_OK;
}

/* ---- accessors ------------------------------------------------------------------------------ */

const char *lq_gguf_path(const lq_gguf *g) { return g->path; }
uint32_t lq_gguf_version(const lq_gguf *g) { return g->version; }
size_t lq_gguf_file_size(const lq_gguf *g) { return g->size; }
const void *lq_gguf_file_data(const lq_gguf *g) { return g->data; }
int64_t lq_gguf_kv_count(const lq_gguf *g) { return g->n_kv; }
int64_t lq_gguf_tensor_count(const lq_gguf *g) { return g->n_tensors; }
uint32_t lq_gguf_alignment(const lq_gguf *g) { return g->alignment; }
uint64_t lq_gguf_data_offset(const lq_gguf *g) { return g->data_off; }

int64_t lq_gguf_find(const lq_gguf *g, const char *key) {
    for (int64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key && strcmp(g->kv[i].key, key) == 0) return i;
    return -1;
}

const char *lq_gguf_kv_key(const lq_gguf *g, int64_t i) {
    return (i >= 0 && i < g->n_kv) ? g->kv[i].key : NULL;
}

lq_gguf_type lq_gguf_kv_type(const lq_gguf *g, int64_t i, lq_gguf_type *elem_type, int64_t *n) {
    if (i < 0 || i >= g->n_kv) return LQ_GGUF_TYPE_COUNT;
    if (elem_type) *elem_type = g->kv[i].elem;
    if (n) *n = g->kv[i].n;
    return g->kv[i].type;
}

const lq_gguf_tensor_info *lq_gguf_tensor(const lq_gguf *g, int64_t i) {
    return (i >= 0 && i < g->n_tensors) ? &g->tensors[i] : NULL;
}

const lq_gguf_tensor_info *lq_gguf_find_tensor(const lq_gguf *g, const char *name) {
    for (int64_t i = 0; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i].name, name) == 0) return &g->tensors[i];
    return NULL;
}

/* Read one numeric value of type t at p as int64 (ok=false for floats) and as double. */
static void read_num(lq_gguf_type t, const uint8_t *p, int64_t *iv, double *dv, bool *is_int) {
    *is_int = true;
    switch (t) {
    case LQ_GGUF_TYPE_UINT8: case LQ_GGUF_TYPE_BOOL: *iv = p[0]; break;
    case LQ_GGUF_TYPE_INT8: *iv = (int8_t)p[0]; break;
    case LQ_GGUF_TYPE_UINT16: { uint16_t v; memcpy(&v, p, 2); *iv = v; break; }
    case LQ_GGUF_TYPE_INT16: { int16_t v; memcpy(&v, p, 2); *iv = v; break; }
    case LQ_GGUF_TYPE_UINT32: { uint32_t v; memcpy(&v, p, 4); *iv = v; break; }
    case LQ_GGUF_TYPE_INT32: { int32_t v; memcpy(&v, p, 4); *iv = v; break; }
    case LQ_GGUF_TYPE_INT64: { int64_t v; memcpy(&v, p, 8); *iv = v; break; }
    case LQ_GGUF_TYPE_UINT64: {
        uint64_t v;
        memcpy(&v, p, 8);
        *dv = (double)v;
        *iv = v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
        if (v > (uint64_t)INT64_MAX) *is_int = false; /* does not fit: refuse as integer */
        return;
    }
    case LQ_GGUF_TYPE_FLOAT32: { float v; memcpy(&v, p, 4); *dv = v; *is_int = false; return; }
    case LQ_GGUF_TYPE_FLOAT64: { double v; memcpy(&v, p, 8); *dv = v; *is_int = false; return; }
    default: *is_int = false; *dv = 0; return;
    }
    *dv = (double)*iv;
}

static lq_status find_typed(const lq_gguf *g, const char *key, const gguf_kv **out) {
    int64_t i = lq_gguf_find(g, key);
    if (i < 0) return lq_fail(LQ_ERR_NOT_FOUND, "%s: key '%s' not found", g->path, key);
    *out = &g->kv[i];
    return LQ_OK;
}

static bool is_numeric(lq_gguf_type t) {
    return lq_gguf_scalar_size(t) > 0 && t != LQ_GGUF_TYPE_BOOL;
}

lq_status lq_gguf_get_i64(const lq_gguf *g, const char *key, int64_t *out) {
    const gguf_kv *kv = NULL;
    LQ_TRY(find_typed(g, key, &kv));
    int64_t iv = 0;
    double dv;
    bool is_int = false;
    if (is_numeric(kv->type)) read_num(kv->type, g->data + kv->off, &iv, &dv, &is_int);
    if (!is_int) return lq_fail(LQ_ERR_FORMAT, "%s: key '%s' is not an integer", g->path, key);
    *out = iv;
    return LQ_OK;
}

lq_status lq_gguf_get_f64(const lq_gguf *g, const char *key, double *out) {
    const gguf_kv *kv = NULL;
    LQ_TRY(find_typed(g, key, &kv));
    if (!is_numeric(kv->type)) return lq_fail(LQ_ERR_FORMAT, "%s: key '%s' is not a number", g->path, key);
    int64_t iv;
    bool is_int;
    read_num(kv->type, g->data + kv->off, &iv, out, &is_int);
    return LQ_OK;
}

lq_status lq_gguf_get_bool(const lq_gguf *g, const char *key, bool *out) {
    const gguf_kv *kv = NULL;
    LQ_TRY(find_typed(g, key, &kv));
    if (kv->type != LQ_GGUF_TYPE_BOOL) return lq_fail(LQ_ERR_FORMAT, "%s: key '%s' is not a bool", g->path, key);
    *out = g->data[kv->off] != 0;
    return LQ_OK;
}

lq_status lq_gguf_get_str(const lq_gguf *g, const char *key, lq_gguf_str *out) {
    const gguf_kv *kv = NULL;
    LQ_TRY(find_typed(g, key, &kv));
    if (kv->type != LQ_GGUF_TYPE_STRING) return lq_fail(LQ_ERR_FORMAT, "%s: key '%s' is not a string", g->path, key);
    memcpy(&out->len, g->data + kv->off, 8);
    out->data = (const char *)g->data + kv->off + 8;
    return LQ_OK;
}

static lq_status find_arr(const lq_gguf *g, const char *key, const gguf_kv **out) {
    LQ_TRY(find_typed(g, key, out));
    if ((*out)->type != LQ_GGUF_TYPE_ARRAY) return lq_fail(LQ_ERR_FORMAT, "%s: key '%s' is not an array", g->path, key);
    return LQ_OK;
}

lq_status lq_gguf_get_arr(const lq_gguf *g, const char *key, lq_gguf_type *elem_type, int64_t *n) {
    const gguf_kv *kv = NULL;
    LQ_TRY(find_arr(g, key, &kv));
    if (elem_type) *elem_type = kv->elem;
    if (n) *n = kv->n;
    return LQ_OK;
}

lq_status lq_gguf_arr_str(const lq_gguf *g, const char *key, int64_t i, lq_gguf_str *out) {
    const gguf_kv *kv = NULL;
    LQ_TRY(find_arr(g, key, &kv));
    if (kv->elem != LQ_GGUF_TYPE_STRING)
        return lq_fail(LQ_ERR_FORMAT, "%s: key '%s' is not a string array", g->path, key);
    if (i < 0 || i >= kv->n)
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: key '%s': index %lld out of range", g->path, key, (long long)i);
    memcpy(&out->len, g->data + kv->str_off[i], 8);
    out->data = (const char *)g->data + kv->str_off[i] + 8;
    return LQ_OK;
}

static lq_status arr_num(const lq_gguf *g, const char *key, int64_t i, int64_t *iv, double *dv, bool *is_int) {
    const gguf_kv *kv = NULL;
    LQ_TRY(find_arr(g, key, &kv));
    if (!is_numeric(kv->elem) && kv->elem != LQ_GGUF_TYPE_BOOL)
        return lq_fail(LQ_ERR_FORMAT, "%s: key '%s' is not a numeric array", g->path, key);
    if (i < 0 || i >= kv->n)
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: key '%s': index %lld out of range", g->path, key, (long long)i);
    read_num(kv->elem, g->data + kv->off + (uint64_t)i * lq_gguf_scalar_size(kv->elem), iv, dv, is_int);
    return LQ_OK;
}

lq_status lq_gguf_arr_i64(const lq_gguf *g, const char *key, int64_t i, int64_t *out) {
    double dv;
    bool is_int;
    LQ_TRY(arr_num(g, key, i, out, &dv, &is_int));
    if (!is_int) return lq_fail(LQ_ERR_FORMAT, "%s: key '%s' is not an integer array", g->path, key);
    return LQ_OK;
}

lq_status lq_gguf_arr_f64(const lq_gguf *g, const char *key, int64_t i, double *out) {
    int64_t iv;
    bool is_int;
    return arr_num(g, key, i, &iv, out, &is_int);
}

const void *lq_gguf_arr_data(const lq_gguf *g, const char *key) {
    int64_t i = lq_gguf_find(g, key);
    if (i < 0 || g->kv[i].type != LQ_GGUF_TYPE_ARRAY || g->kv[i].elem == LQ_GGUF_TYPE_STRING) return NULL;
    return g->data + g->kv[i].off;
}
