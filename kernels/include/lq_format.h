/* lq_format.h - weight formats and the one traits table that drives every matmul.
 *
 * The engine never switches on a format: it holds lq_weight views and calls lq_matmul(), which
 * looks up the format's row in the traits table. Adding a format (INT8, INT4, FP8, ...) means:
 * a block layout in lq_blocks.h, kernels in kernels/cpu/fmt_<name>.c (ref + fast), one row in
 * the table (kernels/cpu/format_table.c), and a binder in libquant that recognizes its tensors.
 */
#ifndef LQ_FORMAT_H
#define LQ_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Weight formats. Values are append-only. */
typedef enum lq_wfmt {
    LQ_WFMT_F32 = 0,
    LQ_WFMT_F16 = 1,
    LQ_WFMT_BF16 = 2,
    LQ_WFMT_COUNT
} lq_wfmt;

/* A 2-D weight W[rows][cols] (rows = output features, cols = input features; y = W x), as a
 * view into a mapped checkpoint. Never owns its memory. */
typedef struct lq_weight {
    lq_wfmt fmt;
    int64_t rows, cols;
    const void *data;      /* packed payload, row r starts at (char*)data + r * row_bytes */
    size_t row_bytes;
    const void *aux[4];    /* format side tensors (scales, zero points); NULL for float formats */
    int32_t group_size;    /* format parameter (quant group along cols); 0 if unused */
} lq_weight;

/* y[r - r0] = sum_c W[r][c] * x[c] for r in [r0, r1). x has w->cols floats. */
typedef void (*lq_matvec_fn)(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1);
/* out[(r - r0) * cols + c] = W[r][c] as f32, r in [r0, r1). */
typedef void (*lq_dequant_fn)(const lq_weight *w, int64_t r0, int64_t r1, float *out);

typedef struct lq_wfmt_traits {
    const char *name;          /* "f32", "f16", "bf16", ... */
    double bits_per_weight;    /* storage cost including side tensors (nominal) */
    lq_matvec_fn matvec;       /* fastest path available on this CPU (chosen at startup) */
    lq_matvec_fn matvec_ref;   /* scalar spec: the fast path is tested against it */
    lq_dequant_fn dequant;     /* fastest */
    lq_dequant_fn dequant_ref; /* scalar spec */
    /* Tolerance of matvec vs matvec_ref: |fast - ref| <= atol + rtol * sum_c |W[r][c] x[c]|.
     * Both sum the same exactly-converted products in a different order, so the bound is a few
     * f32 ulps of the absolute sum. */
    double tol_atol, tol_rtol;
} lq_wfmt_traits;

/* The row for a format (NULL if out of range). */
const lq_wfmt_traits *lq_wfmt_get(lq_wfmt f);
/* Look a format up by name; LQ_WFMT_COUNT if unknown. */
lq_wfmt lq_wfmt_from_name(const char *name);

/* Whether the CPU has AVX2+FMA+F16C (the fast paths); false forces the _ref paths, which tests
 * and LQ_FORCE_REF=1 in the environment use. */
int lq_cpu_has_avx2(void);

#ifdef __cplusplus
}
#endif
#endif
