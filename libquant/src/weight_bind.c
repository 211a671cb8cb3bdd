/* weight_bind.c - binders from checkpoint tensors to lq_weight views (see weight_bind.h). */
#include "weight_bind.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A binder recognizes one storage convention. It returns LQ_ERR_NOT_FOUND when the convention's
 * tensors are absent, so the next binder can try. */
typedef lq_status (*lq_binder_fn)(const lq_checkpoint *c, const char *prefix, int64_t rows,
                                  int64_t cols, lq_weight *out);

/* Dense "<prefix>.weight" in a float dtype: the view is the tensor itself. */
static lq_status bind_dense_float(const lq_checkpoint *c, const char *prefix, int64_t rows,
                                  int64_t cols, lq_weight *out) {
    char name[512];
    snprintf(name, sizeof name, "%s.weight", prefix);
    const lq_tensor *t = lq_checkpoint_find(c, name);
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

/* Tried in order; quantized formats go before the dense fallback. */
static const lq_binder_fn g_binders[] = {
    bind_dense_float,
};

lq_status lq_bind_linear(const lq_checkpoint *c, const char *prefix, int64_t rows, int64_t cols,
                         lq_weight *out) {
    for (size_t i = 0; i < sizeof g_binders / sizeof g_binders[0]; i++) {
        lq_status s = g_binders[i](c, prefix, rows, cols, out);
        if (s != LQ_ERR_NOT_FOUND) return s;
    }
    return lq_fail(LQ_ERR_NOT_FOUND, "%s: no weight tensor for '%s'", lq_checkpoint_path(c), prefix);
}

lq_status lq_bind_vector_f32(const lq_checkpoint *c, const char *name, int64_t n, float **out) {
    const lq_tensor *t = lq_checkpoint_find(c, name);
    if (!t) return lq_fail(LQ_ERR_NOT_FOUND, "%s: missing tensor '%s'", lq_checkpoint_path(c), name);
    if (t->dtype != LQ_DTYPE_F32 && t->dtype != LQ_DTYPE_F16 && t->dtype != LQ_DTYPE_BF16)
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
