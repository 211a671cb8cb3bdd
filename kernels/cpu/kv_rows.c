/* kv_rows.c - KV-cache rows in f32 / f16 / q8 / fp8 (lq_kv.h): the row layout, the one encoder,
 * the scalar specs of the attention loops and their dispatch. */
#include <math.h>
#include <string.h>

#include "kern_internal.h"
#include "lq_kv.h"

static const char *const kv_names[LQ_KV_TYPE_COUNT] = {"f32", "f16", "q8", "fp8"};

const char *lq_kv_type_name(lq_kv_type t) {
    return (int)t >= 0 && t < LQ_KV_TYPE_COUNT ? kv_names[t] : NULL;
}

int lq_kv_type_parse(const char *name, lq_kv_type *out) {
    if (!name) return -1;
    for (int t = 0; t < LQ_KV_TYPE_COUNT; t++)
        if (strcmp(name, kv_names[t]) == 0) return *out = (lq_kv_type)t, 0;
    if (strcmp(name, "q8_0") == 0) return *out = LQ_KV_Q8, 0;
    if (strcmp(name, "fp8_e4m3") == 0) return *out = LQ_KV_FP8, 0;
    return -1;
}

size_t lq_kv_row_bytes(lq_kv_type t, int n_heads, int head_dim, const float *fixed) {
    const size_t n = (size_t)n_heads * (size_t)head_dim;
    switch (t) {
    case LQ_KV_F32: return n * 4u;
    case LQ_KV_F16: return n * 2u;
    case LQ_KV_Q8:
    case LQ_KV_FP8: return fixed ? n : lq_kv_scale_off(n_heads, head_dim) + (size_t)n_heads * sizeof(float);
    default: return 0;
    }
}

/* The scale of head h of a q8 / fp8 row: static, or read from the row (unaligned-safe). */
static float row_scale(const void *row, int h, int n_heads, int head_dim, const float *fixed) {
    if (fixed) return fixed[h];
    float s;
    memcpy(&s, (const char *)row + lq_kv_scale_off(n_heads, head_dim) + (size_t)h * sizeof(float), sizeof s);
    return s;
}

void lq_kv_store_row(lq_kv_type t, void *row, const float *x, int n_heads, int head_dim, const float *fixed) {
    const int64_t n = (int64_t)n_heads * head_dim;
    if (t == LQ_KV_F32) {
        memcpy(row, x, (size_t)n * sizeof(float));
        return;
    }
    if (t == LQ_KV_F16) {
        uint16_t *d = row;
        for (int64_t i = 0; i < n; i++) d[i] = lq_f32_to_f16(x[i]);
        return;
    }
    uint8_t *codes = row;
    char *scales = (char *)row + lq_kv_scale_off(n_heads, head_dim);
    const float qmax = t == LQ_KV_Q8 ? 127.0f : LQ_E4M3_MAX;
    for (int h = 0; h < n_heads; h++) {
        const float *xh = x + (int64_t)h * head_dim;
        float d = fixed ? fixed[h] : 0.0f;
        if (!fixed) {
            float amax = 0.0f;
            for (int j = 0; j < head_dim; j++) amax = fmaxf(amax, fabsf(xh[j]));
            d = amax / qmax;
        }
        const float id = d > 0.0f ? 1.0f / d : 0.0f;
        uint8_t *c = codes + (int64_t)h * head_dim;
        for (int j = 0; j < head_dim; j++) {
            const float v = xh[j] * id;
            if (t == LQ_KV_FP8) c[j] = lq_f32_to_e4m3(v); /* saturates at 448 */
            else if (!fixed) c[j] = (uint8_t)(int8_t)roundf(v); /* |v| <= 127 by construction */
            else /* compressed-tensors' int8: round half to even, clamp to [-128, 127] */
                c[j] = (uint8_t)(int8_t)fminf(fmaxf(nearbyintf(v), -128.0f), 127.0f);
        }
        if (!fixed) memcpy(scales + (size_t)h * sizeof(float), &d, sizeof d);
    }
}

/* Value j of head h of a row, decoded (the definition the _ref loops use). */
static float elem(lq_kv_type t, const void *row, int h, int j, int n_heads, int head_dim, const float *fixed) {
    const int64_t i = (int64_t)h * head_dim + j;
    switch (t) {
    case LQ_KV_F32: return ((const float *)row)[i];
    case LQ_KV_F16: return lq_f16_to_f32(((const uint16_t *)row)[i]);
    case LQ_KV_Q8: return (float)(int8_t)((const uint8_t *)row)[i] * row_scale(row, h, n_heads, head_dim, fixed);
    case LQ_KV_FP8: return lq_e4m3_to_f32(((const uint8_t *)row)[i]) * row_scale(row, h, n_heads, head_dim, fixed);
    default: return 0.0f;
    }
}

void lq_kv_load_row(lq_kv_type t, const void *row, float *x, int n_heads, int head_dim, const float *fixed) {
    for (int h = 0; h < n_heads; h++)
        for (int j = 0; j < head_dim; j++) x[(int64_t)h * head_dim + j] = elem(t, row, h, j, n_heads, head_dim, fixed);
}

void lq_kv_dot_rows_ref(lq_kv_type t, const float *q, const void *rows, size_t row_bytes, int64_t n_rows,
                        int head, int n_heads, int head_dim, const float *fixed, float scale, float *out) {
    for (int64_t i = 0; i < n_rows; i++) {
        const void *row = (const char *)rows + (size_t)i * row_bytes;
        double s = 0.0;
        for (int j = 0; j < head_dim; j++) s += (double)q[j] * (double)elem(t, row, head, j, n_heads, head_dim, fixed);
        out[i] = (float)s * scale;
    }
}

void lq_kv_axpy_rows_ref(lq_kv_type t, float *y, const float *w, const void *rows, size_t row_bytes,
                         int64_t n_rows, int head, int n_heads, int head_dim, const float *fixed) {
    for (int64_t i = 0; i < n_rows; i++) {
        const void *row = (const char *)rows + (size_t)i * row_bytes;
        for (int j = 0; j < head_dim; j++) y[j] += w[i] * elem(t, row, head, j, n_heads, head_dim, fixed);
    }
}

void lq_kv_dot_rows(lq_kv_type t, const float *q, const void *rows, size_t row_bytes, int64_t n_rows,
                    int head, int n_heads, int head_dim, const float *fixed, float scale, float *out) {
    if (n_rows <= 0) return;
    if (lq_cpu_has_avx2()) lq_kv_dot_rows_avx2(t, q, rows, row_bytes, n_rows, head, n_heads, head_dim, fixed, scale, out);
    else lq_kv_dot_rows_ref(t, q, rows, row_bytes, n_rows, head, n_heads, head_dim, fixed, scale, out);
}

void lq_kv_axpy_rows(lq_kv_type t, float *y, const float *w, const void *rows, size_t row_bytes, int64_t n_rows,
                     int head, int n_heads, int head_dim, const float *fixed) {
    if (n_rows <= 0) return;
    if (lq_cpu_has_avx2()) lq_kv_axpy_rows_avx2(t, y, w, rows, row_bytes, n_rows, head, n_heads, head_dim, fixed);
    else lq_kv_axpy_rows_ref(t, y, w, rows, row_bytes, n_rows, head, n_heads, head_dim, fixed);
}
