/* prune_layout.c - pruning masks and the compressed-tensors sparse layouts (lq_prune.h).
 *
 * Everything here is scalar reference code: masks decide what a checkpoint contains, so they
 * must be the same on every machine, and the layouts are byte formats other programs read.
 */
#include "libquant/lq_prune.h"

#include <stdlib.h>
#include <string.h>

/* ---- masks ------------------------------------------------------------------------------------ */

static void swapf(float *a, float *b) {
    float t = *a;
    *a = *b;
    *b = t;
}

/* The k-th smallest (0-based) of v[0..n), reordering v: quickselect with a median-of-three pivot
 * and a three-way partition, so runs of equal scores (common: pruned zeros) stay linear. */
static float select_kth(float *v, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (v[mid] < v[lo]) swapf(&v[mid], &v[lo]);
        if (v[hi] < v[lo]) swapf(&v[hi], &v[lo]);
        if (v[hi] < v[mid]) swapf(&v[hi], &v[mid]);
        float p = v[mid];
        /* [lo, lt) < p, [lt, i) == p, (gt, hi] > p */
        int64_t lt = lo, i = lo, gt = hi;
        while (i <= gt) {
            if (v[i] < p) swapf(&v[lt++], &v[i++]);
            else if (v[i] > p) swapf(&v[i], &v[gt--]);
            else i++;
        }
        if (k < lt) hi = lt - 1;
        else if (k > gt) lo = gt + 1;
        else return p;
    }
    return v[k];
}

bool lq_prune_mask_topk(const float *score, int64_t n, int64_t k, uint8_t *keep) {
    if (k <= 0) {
        memset(keep, 1, (size_t)n);
        return true;
    }
    if (k >= n) {
        memset(keep, 0, (size_t)n);
        return true;
    }
    float *v = malloc((size_t)n * sizeof *v);
    if (!v) return false;
    memcpy(v, score, (size_t)n * sizeof *v);
    float t = select_kth(v, n, k - 1);
    free(v);
    /* Everything below the k-th score goes; equal scores go in index order until k are gone. */
    int64_t below = 0;
    for (int64_t i = 0; i < n; i++) below += score[i] < t;
    int64_t ties = k - below;
    for (int64_t i = 0; i < n; i++) {
        if (score[i] < t) keep[i] = 0;
        else if (score[i] == t && ties > 0) {
            keep[i] = 0;
            ties--;
        } else keep[i] = 1;
    }
    return true;
}

void lq_prune_mask_nm(const float *score, int64_t rows, int64_t cols, int n, int m, uint8_t *keep) {
    for (int64_t g = 0; g < rows * cols; g += m) {
        const float *s = score + g;
        uint8_t *k = keep + g;
        memset(k, 0, (size_t)m);
        /* n passes of "largest not yet kept"; m is small (4, 8, 16). Strict > keeps the lower
         * column on a tie. */
        for (int j = 0; j < n; j++) {
            int best = -1;
            for (int i = 0; i < m; i++)
                if (!k[i] && (best < 0 || s[i] > s[best])) best = i;
            k[best] = 1;
        }
    }
}

/* ---- bitmask ------------------------------------------------------------------------------------ */

int64_t lq_bitmask_row_bytes(int64_t cols) { return (cols + 7) / 8; }

void lq_bitmask_pack(const uint8_t *mask, int64_t rows, int64_t cols, uint8_t *bits) {
    int64_t rb = lq_bitmask_row_bytes(cols);
    memset(bits, 0, (size_t)(rows * rb));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            if (mask[r * cols + c]) bits[r * rb + c / 8] |= (uint8_t)(1u << (c % 8));
}

void lq_bitmask_unpack(const uint8_t *bits, int64_t rows, int64_t cols, uint8_t *mask) {
    int64_t rb = lq_bitmask_row_bytes(cols);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) mask[r * cols + c] = (bits[r * rb + c / 8] >> (c % 8)) & 1u;
}

/* ---- compress / decompress ---------------------------------------------------------------------- */

/* torch's `tensor != 0`: float compare for float dtypes (so -0.0 is zero, NaN is not), any set
 * bit otherwise (compressed-tensors views FP8 as int8 before comparing). */
static bool is_nonzero(const uint8_t *p, lq_dtype dt) {
    switch (dt) {
    case LQ_DTYPE_F32: {
        float f;
        memcpy(&f, p, sizeof f);
        return f != 0.0f;
    }
    case LQ_DTYPE_F64: {
        double d;
        memcpy(&d, p, sizeof d);
        return d != 0.0;
    }
    case LQ_DTYPE_F16:
    case LQ_DTYPE_BF16: {
        uint16_t h;
        memcpy(&h, p, sizeof h);
        return (h & 0x7fffu) != 0; /* +-0 are the only zeros; NaN has mantissa bits */
    }
    default:
        for (size_t i = 0; i < lq_dtype_size(dt); i++)
            if (p[i]) return true;
        return false;
    }
}

int64_t lq_sparse_compress(const void *dense, lq_dtype dt, int64_t rows, int64_t cols,
                           const uint8_t *keep, void *values, uint8_t *bitmask, int64_t *row_offsets) {
    size_t es = lq_dtype_size(dt);
    const uint8_t *d = dense;
    uint8_t *out = values;
    int64_t rb = lq_bitmask_row_bytes(cols), nnz = 0;
    memset(bitmask, 0, (size_t)(rows * rb));
    for (int64_t r = 0; r < rows; r++) {
        if (row_offsets) row_offsets[r] = nnz;
        for (int64_t c = 0; c < cols; c++) {
            const uint8_t *p = d + (size_t)(r * cols + c) * es;
            if (keep ? !keep[r * cols + c] : !is_nonzero(p, dt)) continue;
            bitmask[r * rb + c / 8] |= (uint8_t)(1u << (c % 8));
            memcpy(out + (size_t)nnz * es, p, es);
            nnz++;
        }
    }
    return nnz;
}

lq_status lq_sparse_decompress(const void *values, int64_t n_values, const uint8_t *bitmask,
                               const void *row_offsets, lq_dtype dt, int64_t rows, int64_t cols,
                               void *dense, const char *what) {
    size_t es = lq_dtype_size(dt);
    const uint8_t *v = values;
    uint8_t *d = dense;
    int64_t rb = lq_bitmask_row_bytes(cols), k = 0;
    memset(d, 0, (size_t)(rows * cols) * es);
    for (int64_t r = 0; r < rows; r++) {
        /* row_offsets may point into an unaligned safetensors payload: read through memcpy */
        int64_t ro = k;
        if (row_offsets) memcpy(&ro, (const char *)row_offsets + (size_t)r * sizeof ro, sizeof ro);
        if (ro != k)
            return lq_fail(LQ_ERR_FORMAT, "%s: row_offsets[%lld] = %lld, but the bitmask has %lld "
                           "values before that row", what, (long long)r, (long long)ro, (long long)k);
        for (int64_t c = 0; c < cols; c++) {
            if (!((bitmask[r * rb + c / 8] >> (c % 8)) & 1u)) continue;
            if (k == n_values)
                return lq_fail(LQ_ERR_FORMAT, "%s: the bitmask marks more than the %lld stored values",
                               what, (long long)n_values);
            memcpy(d + (size_t)(r * cols + c) * es, v + (size_t)k * es, es);
            k++;
        }
    }
    if (k != n_values)
        return lq_fail(LQ_ERR_FORMAT, "%s: the bitmask marks %lld values but %lld are stored", what,
                       (long long)k, (long long)n_values);
    return LQ_OK;
}
