/* ops_dispatch.c - the unsuffixed lq_ops.h kernels: fast path when the CPU has it, else _ref. */
#include "kern_internal.h"
#include "lq_ops.h"

#include <assert.h>

/* Programmer errors at kernel entry, checked in debug builds only (NDEBUG removes them): a
 * negative length, or a missing buffer for a non-empty one. */
#define LQ_CHECK_LEN(n, ...) assert((n) >= 0 && "negative length"), assert(((n) == 0 || (__VA_ARGS__)) && "NULL buffer")

void lq_rmsnorm(float *out, const float *x, const float *weight, int64_t n, float eps) {
    assert(n > 0 && "lq_rmsnorm: empty row (mean of nothing)");
    LQ_CHECK_LEN(n, out && x && weight);
    if (lq_cpu_has_avx2()) lq_rmsnorm_avx2(out, x, weight, n, eps);
    else lq_rmsnorm_ref(out, x, weight, n, eps);
}

float lq_dot_f32(const float *a, const float *b, int64_t n) {
    LQ_CHECK_LEN(n, a && b);
    return lq_cpu_has_avx2() ? lq_dot_f32_avx2(a, b, n) : lq_dot_f32_ref(a, b, n);
}

void lq_axpy_f32(float *y, float a, const float *x, int64_t n) {
    LQ_CHECK_LEN(n, y && x);
    if (lq_cpu_has_avx2()) lq_axpy_f32_avx2(y, a, x, n);
    else lq_axpy_f32_ref(y, a, x, n);
}

void lq_dot_f32_rows(const float *q, const float *k, int64_t stride, int64_t rows, int64_t n, float scale,
                     float *out) {
    LQ_CHECK_LEN(rows, q && k && out);
    if (lq_cpu_has_avx2()) lq_dot_f32_rows_avx2(q, k, stride, rows, n, scale, out);
    else lq_dot_f32_rows_ref(q, k, stride, rows, n, scale, out);
}

void lq_axpy_f32_rows(float *y, const float *w, const float *x, int64_t stride, int64_t rows, int64_t n) {
    LQ_CHECK_LEN(rows, y && w && x);
    if (lq_cpu_has_avx2())
        lq_axpy_f32_rows_avx2(y, w, x, stride, rows, n);
    else
        for (int64_t i = 0; i < rows; i++) lq_axpy_f32_ref(y, w[i], x + i * stride, n);
}

void lq_softmax(float *x, int64_t n) {
    assert(n > 0 && "lq_softmax: empty row");
    LQ_CHECK_LEN(n, x);
    if (lq_cpu_has_avx2()) lq_softmax_avx2(x, n);
    else lq_softmax_ref(x, n);
}

void lq_swiglu(float *gate, const float *up, int64_t n) {
    LQ_CHECK_LEN(n, gate && up);
    if (lq_cpu_has_avx2()) lq_swiglu_avx2(gate, up, n);
    else lq_swiglu_ref(gate, up, n);
}

void lq_f16_to_f32_row(const uint16_t *src, float *dst, int64_t n) {
    LQ_CHECK_LEN(n, src && dst);
    if (lq_cpu_has_avx2()) lq_f16_to_f32_row_avx2(src, dst, n);
    else lq_f16_to_f32_row_ref(src, dst, n);
}

void lq_bf16_to_f32_row(const uint16_t *src, float *dst, int64_t n) {
    LQ_CHECK_LEN(n, src && dst);
    if (lq_cpu_has_avx2()) lq_bf16_to_f32_row_avx2(src, dst, n);
    else lq_bf16_to_f32_row_ref(src, dst, n);
}

void lq_f32_to_f16_row(const float *src, uint16_t *dst, int64_t n) {
    LQ_CHECK_LEN(n, src && dst);
    if (lq_cpu_has_avx2()) lq_f32_to_f16_row_avx2(src, dst, n);
    else lq_f32_to_f16_row_ref(src, dst, n);
}

void lq_f32_to_bf16_row(const float *src, uint16_t *dst, int64_t n) {
    LQ_CHECK_LEN(n, src && dst);
    if (lq_cpu_has_avx2()) lq_f32_to_bf16_row_avx2(src, dst, n);
    else lq_f32_to_bf16_row_ref(src, dst, n);
}
