/* weight_bind.c - binders from checkpoint tensors to lq_weight views (see weight_bind.h). */
#include "weight_bind.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ct_internal.h"
#include "libquant/lq_ptq.h"

/* ---- owner list ------------------------------------------------------------------------------- */

void *lq_bind_owner_alloc(lq_bind_owner *o, size_t bytes) {
    if (o->n == o->cap) {
        int64_t cap = o->cap ? 2 * o->cap : 64;
        void **p = realloc(o->ptrs, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        o->ptrs = p;
        o->cap = cap;
    }
    void *b = malloc(bytes ? bytes : 1);
    if (b) o->ptrs[o->n++] = b;
    return b;
}

void lq_bind_owner_free(lq_bind_owner *o) {
    if (!o) return;
    for (int64_t i = 0; i < o->n; i++) free(o->ptrs[i]);
    free(o->ptrs);
    lq_ct_plan_free(o->plan);
    free(o);
}

/* A binder recognizes one storage convention. It returns LQ_ERR_NOT_FOUND when the convention's
 * tensors are absent, so the next binder can try. */
typedef lq_status (*lq_binder_fn)(const lq_checkpoint *c, const char *prefix, int64_t rows,
                                  int64_t cols, lq_bind_owner *own, lq_weight *out);

static const lq_tensor *find_part(const lq_checkpoint *c, const char *prefix, const char *suffix,
                                  char *name, size_t cap) {
    snprintf(name, cap, "%s.%s", prefix, suffix);
    return lq_checkpoint_find(c, name);
}

/* ---- dense float ------------------------------------------------------------------------------ */

/* Dense "<prefix>.weight" in a float dtype: the view is the tensor itself. */
static lq_status bind_dense_float(const lq_checkpoint *c, const char *prefix, int64_t rows,
                                  int64_t cols, lq_bind_owner *own, lq_weight *out) {
    (void)own;
    char name[512];
    const lq_tensor *t = find_part(c, prefix, "weight", name, sizeof name);
    if (!t) return LQ_ERR_NOT_FOUND;
    static const struct { lq_dtype dtype; lq_wfmt fmt; } map[] = {
        {LQ_DTYPE_F32, LQ_WFMT_F32}, {LQ_DTYPE_F16, LQ_WFMT_F16}, {LQ_DTYPE_BF16, LQ_WFMT_BF16},
    };
    lq_wfmt fmt = LQ_WFMT_COUNT;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (map[i].dtype == t->dtype) fmt = map[i].fmt;
    if (fmt == LQ_WFMT_COUNT)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s is not a supported weight dtype",
                       lq_checkpoint_path(c), name, lq_dtype_name(t->dtype));
    if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols)
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': expected shape [%lld, %lld]",
                       lq_checkpoint_path(c), name, (long long)rows, (long long)cols);
    memset(out, 0, sizeof *out);
    out->fmt = fmt;
    out->rows = rows;
    out->cols = cols;
    out->data = t->data;
    out->row_bytes = (size_t)cols * lq_dtype_size(t->dtype);
    return LQ_OK;
}

/* ---- GGUF block formats ----------------------------------------------------------------------- */

static lq_status check_row_bytes(const lq_checkpoint *c, const char *name, lq_wfmt fmt, int64_t rows,
                                 int64_t cols, int32_t group_size, size_t have, lq_weight *out);

/* A GGUF block tensor (LQ_DTYPE_BLOCKS, io/checkpoint_gguf.c): the view is its blocks, the format
 * the one the file names; row_bytes from the format's own layout arithmetic, no side tensors. */
static lq_status bind_gguf_blocks(const lq_checkpoint *c, const char *prefix, int64_t rows, int64_t cols,
                                  lq_bind_owner *own, lq_weight *out) {
    (void)own;
    char name[512];
    const lq_tensor *t = find_part(c, prefix, "weight", name, sizeof name);
    if (!t || t->dtype != LQ_DTYPE_BLOCKS) return LQ_ERR_NOT_FOUND;
    if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols)
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': expected shape [%lld, %lld]",
                       lq_checkpoint_path(c), name, (long long)rows, (long long)cols);
    memset(out, 0, sizeof *out);
    out->fmt = (lq_wfmt)t->block_fmt;
    out->rows = rows;
    out->cols = cols;
    out->data = t->data;
    return check_row_bytes(c, name, out->fmt, rows, cols, 0, t->nbytes / (size_t)rows, out);
}

/* ---- compressed-tensors ---------------------------------------------------------------------- */

static bool is_float_dtype(lq_dtype d) {
    return d == LQ_DTYPE_F32 || d == LQ_DTYPE_F16 || d == LQ_DTYPE_BF16;
}

/* "<prefix>.weight_scale" as f32: [rows, n_groups], [rows] or (per tensor) [1] / [] broadcast to
 * every row. Scales must be finite and positive: a zero or NaN scale would silently zero or
 * poison the layer's output. */
static lq_status bind_scales(const lq_checkpoint *c, const char *prefix, int64_t rows,
                             int64_t n_groups, lq_bind_owner *own, float **out) {
    char name[512];
    const lq_tensor *t = find_part(c, prefix, "weight_scale", name, sizeof name);
    if (!t) return lq_fail(LQ_ERR_NOT_FOUND, "%s: missing tensor '%s'", lq_checkpoint_path(c), name);
    if (!is_float_dtype(t->dtype))
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s not supported for scales",
                       lq_checkpoint_path(c), name, lq_dtype_name(t->dtype));
    int64_t n = lq_tensor_numel(t);
    bool per_tensor = n == 1 && n_groups == 1;
    bool ok = per_tensor || (n == rows * n_groups && t->ndim >= 1 && t->shape[0] == rows &&
                             (t->ndim == 1 ? n_groups == 1 : t->ndim == 2 && t->shape[1] == n_groups));
    if (!ok)
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': expected shape [%lld, %lld]",
                       lq_checkpoint_path(c), name, (long long)rows, (long long)n_groups);
    float *s = lq_bind_owner_alloc(own, (size_t)(rows * n_groups) * sizeof *s);
    if (!s) return lq_fail(LQ_ERR_NOMEM, "out of memory binding '%s'", name);
    for (int64_t i = 0; i < rows * n_groups; i++) {
        s[i] = lq_tensor_get_f32(t, per_tensor ? 0 : i);
        /* Negative is valid: w = (q - zero) * scale holds for either sign, and the signed-max
         * rule (llama.cpp Q4_0's d = max / -8) writes one for every group whose extreme is
         * positive. Zero or non-finite never comes from a quantizer. */
        if (!isfinite(s[i]) || s[i] == 0.0f)
            return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': scale %lld is %g (must be finite and non-zero)",
                           lq_checkpoint_path(c), name, (long long)i, (double)s[i]);
    }
    *out = s;
    return LQ_OK;
}

/* The engine's row_bytes for fmt must be exactly the checkpoint's bytes per row: the payload is
 * used in place. */
static lq_status check_row_bytes(const lq_checkpoint *c, const char *name, lq_wfmt fmt, int64_t rows,
                                 int64_t cols, int32_t group_size, size_t have, lq_weight *out) {
    lq_quant_params p = {.group_size = group_size};
    size_t rb = 0;
    int64_t a0 = 0, a1 = 0;
    if (!lq_wfmt_sizes(fmt, rows, cols, &p, &rb, &a0, &a1) || rb != have)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: tensor '%s': %lld x %lld %s layout not supported "
                       "(%zu bytes per row)", lq_checkpoint_path(c), name, (long long)rows,
                       (long long)cols, lq_wfmt_get(fmt) ? lq_wfmt_get(fmt)->name : "?", have);
    out->row_bytes = rb;
    return LQ_OK;
}

/* The format whose compressed-tensors storage is packed or one code a byte, float or int codes, of
 * this width (the first in table order: among the one-byte int formats W8A8, as quantization_config
 * W8A16 is always packed); LQ_WFMT_NONE if none. */
static lq_wfmt storage_fmt(bool packed, bool float_type, int bits) {
    for (int f = 0; f < LQ_WFMT_COUNT; f++) {
        const lq_ct_storage *ct = lq_ct_storage_of((lq_wfmt)f);
        if (ct && (ct->packed != 0) == packed && (ct->float_type != 0) == float_type && ct->bits == bits)
            return (lq_wfmt)f;
    }
    return LQ_WFMT_NONE;
}

/* The num_bits of a pack-quantized module: its quantization_config group's, when the config names
 * one (so a payload of another width is refused naming the tensor: e.g. a 3-bit tensor packed 10
 * codes a word, as compressed-tensors did before its dense packing, is not read as 4-bit), else
 * the width its words imply (8, then 4, then 3; check_binding then refuses the missing group). */
static lq_status packed_bits(const lq_checkpoint *c, const lq_bind_owner *own, const char *prefix,
                             const char *name, int64_t words, int64_t cols, int *bits) {
    const char *path = lq_checkpoint_path(c);
    const lq_ct_group *g = NULL;
    if (own->plan) LQ_TRY(lq_ct_plan_lookup(own->plan, path, prefix, LQ_MODULE_LINEAR, &g));
    if (g && lq_ct_packed(g->scheme)) {
        *bits = lq_ct_bits(g->scheme);
        if (words != lq_ct_packed_words(cols, *bits))
            return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': %lld words per row, but %d-bit packing of %lld "
                           "columns (quantization_config group '%s', %s) takes %lld", path, name,
                           (long long)words, *bits, (long long)cols, g->name, lq_ptq_scheme_name(g->scheme),
                           (long long)lq_ct_packed_words(cols, *bits));
        return LQ_OK;
    }
    for (int f = 0; f < LQ_WFMT_COUNT; f++) /* the packed formats' widths, in table order */
        if (lq_ct_packed((lq_wfmt)f) && words == lq_ct_packed_words(cols, lq_ct_bits((lq_wfmt)f))) {
            *bits = lq_ct_bits((lq_wfmt)f);
            return LQ_OK;
        }
    return lq_fail(LQ_ERR_UNSUPPORTED, "%s: tensor '%s': %lld words per row is not 8-, 4- or 3-bit packing "
                   "of %lld columns", path, name, (long long)words, (long long)cols);
}

/* pack-quantized: "<prefix>.weight_packed" I32 [rows, ceil(cols*bits/32)], bits 8 (W8A16, per
 * channel, symmetric), 4 (W4A16) or 3 (W3A16) (per group, zero points optional). */
static lq_status bind_ct_packed(const lq_checkpoint *c, const char *prefix, int64_t rows,
                                int64_t cols, lq_bind_owner *own, lq_weight *out) {
    char name[512], sname[512];
    const lq_tensor *t = find_part(c, prefix, "weight_packed", name, sizeof name);
    if (!t) return LQ_ERR_NOT_FOUND;
    const char *path = lq_checkpoint_path(c);
    if (t->dtype != LQ_DTYPE_I32 || t->ndim != 2 || t->shape[0] != rows)
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': expected I32 [%lld, packed cols]", path, name,
                       (long long)rows);
    const lq_tensor *shp = find_part(c, prefix, "weight_shape", sname, sizeof sname);
    if (shp) {
        int64_t v[2] = {0, 0};
        bool ok = lq_tensor_numel(shp) == 2 && (shp->dtype == LQ_DTYPE_I64 || shp->dtype == LQ_DTYPE_I32);
        /* safetensors does not align tensor data: read through memcpy (UBSan: misaligned load) */
        for (int i = 0; ok && i < 2; i++) {
            if (shp->dtype == LQ_DTYPE_I64) {
                memcpy(&v[i], (const char *)shp->data + 8 * i, 8);
            } else {
                int32_t w;
                memcpy(&w, (const char *)shp->data + 4 * i, 4);
                v[i] = w;
            }
        }
        if (!ok || v[0] != rows || v[1] != cols)
            return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': expected [%lld, %lld]", path, sname,
                           (long long)rows, (long long)cols);
    }
    int bits = 0;
    LQ_TRY(packed_bits(c, own, prefix, name, t->shape[1], cols, &bits));
    snprintf(sname, sizeof sname, "%s.weight_scale", prefix);
    const lq_tensor *sc = lq_checkpoint_find(c, sname);
    if (!sc) return lq_fail(LQ_ERR_NOT_FOUND, "%s: missing tensor '%s'", path, sname);
    int64_t n_groups = sc->ndim == 2 ? sc->shape[1] : 1;
    if (n_groups <= 0 || cols % n_groups != 0)
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': %lld groups do not divide %lld columns", path,
                       sname, (long long)n_groups, (long long)cols);
    const lq_tensor *zp = find_part(c, prefix, "weight_zero_point", sname, sizeof sname);
    memset(out, 0, sizeof *out);
    out->rows = rows;
    out->cols = cols;
    out->data = t->data;
    out->fmt = storage_fmt(true, false, bits);
    if (out->fmt == LQ_WFMT_NONE)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: tensor '%s': no format stores %d-bit packing", path, name, bits);
    if (lq_ct_grouped(out->fmt)) {
        out->group_size = (int32_t)(cols / n_groups);
    } else if (n_groups != 1 || zp) {
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: tensor '%s': %d-bit packing is supported per "
                       "channel and symmetric only", path, name, bits);
    }
    LQ_TRY(check_row_bytes(c, name, out->fmt, rows, cols, out->group_size,
                           (size_t)t->shape[1] * sizeof(int32_t), out));
    float *scale;
    LQ_TRY(bind_scales(c, prefix, rows, n_groups, own, &scale));
    out->aux[0] = scale;
    if (zp) {
        /* Zero points are packed along rows: [ceil(rows*bits/32), n_groups]. */
        if (zp->dtype != LQ_DTYPE_I32 || zp->ndim != 2 || zp->shape[0] != lq_ct_packed_words(rows, bits) ||
            zp->shape[1] != n_groups)
            return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': expected I32 [%lld, %lld]", path, sname,
                           (long long)lq_ct_packed_words(rows, bits), (long long)n_groups);
        int8_t *q = malloc((size_t)(rows * n_groups));
        float *z = lq_bind_owner_alloc(own, (size_t)(rows * n_groups) * sizeof *z);
        if (!q || !z) {
            free(q);
            return lq_fail(LQ_ERR_NOMEM, "out of memory binding '%s'", sname);
        }
        lq_ct_unpack_int32(zp->data, rows, n_groups, bits, 0, q);
        for (int64_t i = 0; i < rows * n_groups; i++) z[i] = (float)q[i];
        free(q);
        out->aux[1] = z;
    }
    return LQ_OK;
}

/* int-quantized / float-quantized: "<prefix>.weight" I8 (W8A8) or F8_E4M3 (FP8) + per-channel
 * or per-tensor "<prefix>.weight_scale". */
static lq_status bind_ct_naive(const lq_checkpoint *c, const char *prefix, int64_t rows, int64_t cols,
                               lq_bind_owner *own, lq_weight *out) {
    char name[512];
    const lq_tensor *t = find_part(c, prefix, "weight", name, sizeof name);
    if (!t || (t->dtype != LQ_DTYPE_I8 && t->dtype != LQ_DTYPE_F8_E4M3)) return LQ_ERR_NOT_FOUND;
    if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols)
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': expected shape [%lld, %lld]",
                       lq_checkpoint_path(c), name, (long long)rows, (long long)cols);
    memset(out, 0, sizeof *out);
    out->fmt = storage_fmt(false, t->dtype == LQ_DTYPE_F8_E4M3, 8);
    out->rows = rows;
    out->cols = cols;
    out->data = t->data;
    LQ_TRY(check_row_bytes(c, name, out->fmt, rows, cols, 0, (size_t)cols, out));
    float *scale;
    LQ_TRY(bind_scales(c, prefix, rows, 1, own, &scale));
    out->aux[0] = scale;
    return LQ_OK;
}

/* Tried in order; quantized formats go before the dense fallback. */
static const lq_binder_fn g_binders[] = {
    bind_gguf_blocks,
    bind_ct_packed,
    bind_ct_naive,
    bind_dense_float,
};

/* ---- the binding against quantization_config ---------------------------------------------------- */

static bool is_float_fmt(lq_wfmt f) { return f == LQ_WFMT_F32 || f == LQ_WFMT_F16 || f == LQ_WFMT_BF16; }

/* The tensor that holds a bound weight's payload, for messages. */
static const char *payload_suffix(lq_wfmt f) { return lq_ct_packed(f) ? "weight_packed" : "weight"; }

static lq_status check_binding(const lq_checkpoint *c, const lq_bind_owner *own, const char *prefix,
                               const lq_weight *w) {
    const char *path = lq_checkpoint_path(c), *pay = payload_suffix(w->fmt);
    char name[512];
    const lq_ct_group *g = NULL;
    /* A GGUF file states each tensor's format itself; there is no quantization_config. */
    if (lq_checkpoint_kind(c) == LQ_CKPT_GGUF) return LQ_OK;
    if (!own->plan) {
        if (is_float_fmt(w->fmt)) return LQ_OK;
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s.%s' is quantized (%s) but config.json has no "
                       "quantization_config", path, prefix, pay, lq_wfmt_get(w->fmt)->name);
    }
    lq_module_class cls = strcmp(prefix, "model.embed_tokens") == 0 ? LQ_MODULE_EMBEDDING : LQ_MODULE_LINEAR;
    LQ_TRY(lq_ct_plan_lookup(own->plan, path, prefix, cls, &g));
    if (!g) {
        if (is_float_fmt(w->fmt)) return LQ_OK;
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s.%s' is quantized (%s) but quantization_config keeps "
                       "module '%s' in float (ignored or not targeted)", path, prefix, pay,
                       lq_wfmt_get(w->fmt)->name, prefix);
    }
    const char *scheme = lq_ptq_scheme_name(g->scheme);
    if (w->fmt != g->scheme)
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s.%s' is %s but quantization_config group '%s' says %s",
                       path, prefix, pay, lq_wfmt_get(w->fmt)->name, g->name, scheme);
    if (lq_ct_grouped(g->scheme)) {
        int32_t want = g->group_size > 0 ? g->group_size : (int32_t)w->cols;
        if (w->group_size != want)
            return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s.weight_scale' has groups of %d columns but "
                           "quantization_config group '%s' says %s %d", path, prefix, (int)w->group_size,
                           g->name, g->group_size > 0 ? "group_size" : "channel strategy, groups of", (int)want);
        if (g->asym && !w->aux[1])
            return lq_fail(LQ_ERR_FORMAT, "%s: missing tensor '%s.weight_zero_point': quantization_config "
                           "group '%s' is asymmetric", path, prefix, g->name);
        if (!g->asym && w->aux[1])
            return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s.weight_zero_point' in a symmetric "
                           "quantization_config group '%s'", path, prefix, g->name);
    }
    if (lq_ct_storage_of(w->fmt)->float_type) {
        const lq_tensor *sc = find_part(c, prefix, "weight_scale", name, sizeof name);
        if (sc && (lq_tensor_numel(sc) == 1) != g->per_tensor && w->rows > 1)
            return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s' has %lld scales but quantization_config group "
                           "'%s' says strategy %s", path, name, (long long)lq_tensor_numel(sc), g->name,
                           g->per_tensor ? "tensor" : "channel");
    }
    /* Column permutations (actorder "group") are refused by the config reader; a stray g_idx
     * would be silently ignored otherwise. */
    if (find_part(c, prefix, "weight_g_idx", name, sizeof name))
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: tensor '%s': activation-order column permutation (g_idx) is "
                       "not supported", path, name);
    return LQ_OK;
}

lq_status lq_bind_linear(const lq_checkpoint *c, const char *prefix, int64_t rows, int64_t cols,
                         lq_bind_owner *own, lq_weight *out) {
    if (!own->plan_loaded) {
        LQ_TRY(lq_ct_plan_load(lq_checkpoint_config_json(c), lq_checkpoint_path(c), &own->plan));
        own->plan_loaded = true;
    }
    for (size_t i = 0; i < sizeof g_binders / sizeof g_binders[0]; i++) {
        lq_status s = g_binders[i](c, prefix, rows, cols, own, out);
        if (s == LQ_OK) return check_binding(c, own, prefix, out);
        if (s != LQ_ERR_NOT_FOUND) return s;
    }
    return lq_fail(LQ_ERR_NOT_FOUND, "%s: no weight tensor for '%s'", lq_checkpoint_path(c), prefix);
}

lq_status lq_bind_vector_f32(const lq_checkpoint *c, const char *name, int64_t n, float **out) {
    const lq_tensor *t = lq_checkpoint_find(c, name);
    if (!t) return lq_fail(LQ_ERR_NOT_FOUND, "%s: missing tensor '%s'", lq_checkpoint_path(c), name);
    if (!is_float_dtype(t->dtype))
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s not supported for a norm",
                       lq_checkpoint_path(c), name, lq_dtype_name(t->dtype));
    if (lq_tensor_numel(t) != n)
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': expected %lld elements",
                       lq_checkpoint_path(c), name, (long long)n);
    float *v = malloc((size_t)n * sizeof *v);
    if (!v) return lq_fail(LQ_ERR_NOMEM, "out of memory binding '%s'", name);
    for (int64_t i = 0; i < n; i++) v[i] = lq_tensor_get_f32(t, i);
    *out = v;
    return LQ_OK;
}

uint64_t lq_weight_bytes(const lq_weight *w) {
    /* Side tensors are accounted by the format's nominal bits per weight beyond the payload. */
    const lq_wfmt_traits *tr = lq_wfmt_get(w->fmt);
    uint64_t payload = (uint64_t)w->rows * w->row_bytes;
    if (!tr) return payload;
    uint64_t nominal = (uint64_t)((double)w->rows * (double)w->cols * tr->bits_per_weight / 8.0);
    return nominal > payload ? nominal : payload;
}
