/* kern_internal.h - symbols shared between the kernel sources only (not a public contract).
 *
 * The *_avx2 functions are compiled with -mavx2 -mfma -mf16c and must only be called after
 * lq_cpu_has_avx2() said yes; the dispatchers (format_table.c, ops_dispatch.c) do that.
 */
#ifndef LQ_KERN_INTERNAL_H
#define LQ_KERN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "lq_format.h"

/* ---- bandwidth probe ---- */
double lq_read_sum_avx2(const float *p, size_t n); /* sum of n floats, streaming loads */

/* ---- per-format matvec / dequant (fmt_*.c, fmt_*_avx2.c) ---- */
void lq_matvec_f32_ref(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1);
void lq_matvec_f16_ref(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1);
void lq_matvec_bf16_ref(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1);
void lq_dequant_f32_ref(const lq_weight *w, int64_t r0, int64_t r1, float *out);
void lq_dequant_f16_ref(const lq_weight *w, int64_t r0, int64_t r1, float *out);
void lq_dequant_bf16_ref(const lq_weight *w, int64_t r0, int64_t r1, float *out);

void lq_matvec_f32_avx2(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1);
void lq_matvec_f16_avx2(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1);
void lq_matvec_bf16_avx2(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1);
void lq_dequant_f32_avx2(const lq_weight *w, int64_t r0, int64_t r1, float *out);
void lq_dequant_f16_avx2(const lq_weight *w, int64_t r0, int64_t r1, float *out);
void lq_dequant_bf16_avx2(const lq_weight *w, int64_t r0, int64_t r1, float *out);

/* ---- element-wise ops (ops_avx2.c); the dispatchers live in ops_dispatch.c ---- */
void lq_rmsnorm_avx2(float *out, const float *x, const float *weight, int64_t n, float eps);
float lq_dot_f32_avx2(const float *a, const float *b, int64_t n);
void lq_axpy_f32_avx2(float *y, float a, const float *x, int64_t n);
void lq_softmax_avx2(float *x, int64_t n);
void lq_swiglu_avx2(float *gate, const float *up, int64_t n);
void lq_f16_to_f32_row_avx2(const uint16_t *src, float *dst, int64_t n);
void lq_bf16_to_f32_row_avx2(const uint16_t *src, float *dst, int64_t n);
void lq_f32_to_f16_row_avx2(const float *src, uint16_t *dst, int64_t n);
void lq_f32_to_bf16_row_avx2(const float *src, uint16_t *dst, int64_t n);

#endif
