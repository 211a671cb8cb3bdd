/* tensor.c - dtype table and small tensor helpers. */
#include "libquant/lq_tensor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "lq_blocks.h"
#include "lq_format.h"

static const struct {
    const char *name;
    size_t size;
} g_dtypes[LQ_DTYPE_COUNT] = {
    [LQ_DTYPE_F32] = {"F32", 4},     [LQ_DTYPE_F16] = {"F16", 2},  [LQ_DTYPE_BF16] = {"BF16", 2},
    [LQ_DTYPE_F64] = {"F64", 8},     [LQ_DTYPE_I8] = {"I8", 1},    [LQ_DTYPE_U8] = {"U8", 1},
    [LQ_DTYPE_I16] = {"I16", 2},     [LQ_DTYPE_I32] = {"I32", 4},  [LQ_DTYPE_I64] = {"I64", 8},
    [LQ_DTYPE_F8_E4M3] = {"F8_E4M3", 1}, [LQ_DTYPE_BOOL] = {"BOOL", 1},
    [LQ_DTYPE_BLOCKS] = {"BLOCKS", 0},
};

size_t lq_dtype_size(lq_dtype t) { return (unsigned)t < LQ_DTYPE_COUNT ? g_dtypes[t].size : 0; }

const char *lq_dtype_name(lq_dtype t) {
    return (unsigned)t < LQ_DTYPE_COUNT ? g_dtypes[t].name : "?";
}

bool lq_dtype_parse(const char *s, lq_dtype *out) {
    for (int i = 0; i < LQ_DTYPE_COUNT; i++) {
        if (g_dtypes[i].size && strcmp(s, g_dtypes[i].name) == 0) { /* BLOCKS is no file dtype */
            *out = (lq_dtype)i;
            return true;
        }
    }
    return false;
}

int64_t lq_shape_numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] != 0 && n > INT64_MAX / shape[i]) return -1;
        n *= shape[i];
    }
    return n;
}

const char *lq_tensor_type_name(const lq_tensor *t) {
    if (t->dtype == LQ_DTYPE_BLOCKS) {
        const lq_wfmt_traits *tr = lq_wfmt_get((lq_wfmt)t->block_fmt);
        return tr ? tr->name : "?";
    }
    return lq_dtype_name(t->dtype);
}

/* Elements [i0, i0 + n) of a block tensor: the rows that cover them are dequantized (the
 * format's dequant_ref) into a scratch buffer. Rows are the last dimension. */
static void read_blocks(const lq_tensor *t, int64_t i0, int64_t n, float *out) {
    const lq_wfmt_traits *tr = lq_wfmt_get((lq_wfmt)t->block_fmt);
    int64_t cols = t->ndim > 0 ? t->shape[t->ndim - 1] : 1, numel = lq_tensor_numel(t);
    if (!tr || cols <= 0 || numel <= 0) {
        memset(out, 0, (size_t)n * sizeof *out);
        return;
    }
    int64_t rows = numel / cols, r0 = i0 / cols, r1 = (i0 + n + cols - 1) / cols;
    lq_weight w = {.fmt = (lq_wfmt)t->block_fmt, .rows = rows, .cols = cols, .data = t->data,
                   .row_bytes = t->nbytes / (size_t)rows};
    float *tmp = malloc((size_t)((r1 - r0) * cols) * sizeof *tmp);
    if (!tmp) { /* callers read a row at a time: a failure here is an out-of-memory machine */
        memset(out, 0, (size_t)n * sizeof *out);
        return;
    }
    tr->dequant_ref(&w, r0, r1, tmp);
    memcpy(out, tmp + (i0 - r0 * cols), (size_t)n * sizeof *out);
    free(tmp);
}

float lq_tensor_get_f32(const lq_tensor *t, int64_t i) {
    switch (t->dtype) {
    case LQ_DTYPE_BLOCKS: { float v; read_blocks(t, i, 1, &v); return v; }
    case LQ_DTYPE_F32: { float v; memcpy(&v, (const char *)t->data + 4 * i, 4); return v; }
    case LQ_DTYPE_F16: { uint16_t h; memcpy(&h, (const char *)t->data + 2 * i, 2); return lq_f16_to_f32(h); }
    case LQ_DTYPE_BF16: { uint16_t h; memcpy(&h, (const char *)t->data + 2 * i, 2); return lq_bf16_to_f32(h); }
    default: return 0.0f;
    }
}

void lq_tensor_read_f32(const lq_tensor *t, int64_t i0, int64_t n, float *out) {
    if (t->dtype == LQ_DTYPE_BLOCKS) {
        read_blocks(t, i0, n, out);
    } else if (t->dtype == LQ_DTYPE_F32) {
        memcpy(out, (const float *)t->data + i0, (size_t)n * sizeof *out);
    } else if (t->dtype == LQ_DTYPE_F16) {
        const lq_f16 *h = (const lq_f16 *)t->data + i0;
        for (int64_t i = 0; i < n; i++) out[i] = lq_f16_to_f32(h[i]);
    } else {
        const lq_bf16 *h = (const lq_bf16 *)t->data + i0;
        for (int64_t i = 0; i < n; i++) out[i] = lq_bf16_to_f32(h[i]);
    }
}

int64_t lq_tensor_first_nonfinite(const lq_tensor *t) {
    const unsigned char *p = t->data;
    switch (t->dtype) {
    case LQ_DTYPE_F32:
        for (size_t i = 0; i + 4 <= t->nbytes; i += 4) {
            float v;
            memcpy(&v, p + i, 4);
            if (!isfinite(v)) return (int64_t)(i / 4);
        }
        return -1;
    case LQ_DTYPE_F64:
        for (size_t i = 0; i + 8 <= t->nbytes; i += 8) {
            double v;
            memcpy(&v, p + i, 8);
            if (!isfinite(v)) return (int64_t)(i / 8);
        }
        return -1;
    case LQ_DTYPE_F16: /* exponent 0x1f: Inf or NaN */
    case LQ_DTYPE_BF16: /* exponent 0xff */
        for (size_t i = 0; i + 2 <= t->nbytes; i += 2) {
            unsigned h = (unsigned)p[i] | (unsigned)p[i + 1] << 8;
            unsigned mask = t->dtype == LQ_DTYPE_F16 ? 0x7c00u : 0x7f80u;
            if ((h & mask) == mask) return (int64_t)(i / 2);
        }
        return -1;
    case LQ_DTYPE_F8_E4M3: /* e4m3fn has no Inf; S.1111.111 is NaN */
        for (size_t i = 0; i < t->nbytes; i++)
            if ((p[i] & 0x7f) == 0x7f) return (int64_t)i;
        return -1;
    default:
        return -1;
    }
}
