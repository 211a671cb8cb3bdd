/* lq_ops.h - CPU compute kernels used by the forward pass.
 *
 * Every kernel with a fast path has a scalar _ref twin with the same signature; the unsuffixed
 * name dispatches to the fast path when the CPU has AVX2/FMA (and LQ_FORCE_REF is not set).
 */
#ifndef LQ_OPS_H
#define LQ_OPS_H

#include <stdint.h>
#include "lq_format.h"
#include "lq_pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a kernel entry reports (the kernels library has no error messages of its own: the caller
 * turns a non-zero status into an lq_status naming the tensor). */
typedef enum lq_kstatus {
    LQ_KERNEL_OK = 0,
    LQ_KERNEL_BAD_FORMAT = 1, /* w->fmt has no row in the traits table: Y is not written */
    LQ_KERNEL_BAD_SHAPE = 2,  /* NULL weight, n < 0, or rows / cols <= 0: Y is not written */
} lq_kstatus;

/* Y[t][r] = sum_c W[r][c] * X[t][c] for t < n: X is n x w->cols, Y is n x w->rows (row-major).
 * n == 1 uses the format's matvec split over threads by rows; larger n dequantizes row tiles
 * and multiplies them with OpenBLAS sgemm (or a blocked loop of matvecs without BLAS).
 * n == 0 is a no-op. Never returns with Y silently unwritten: a format without a row or a bad
 * shape is a status (and an assert in debug builds, as both are programmer errors). */
lq_kstatus lq_matmul(lq_pool *pool, const lq_weight *w, const float *X, int64_t n, float *Y);
/* Y[i] = X W[i]^T for nw (1..LQ_MATMUL_MULTI_MAX) weights that take the same input X (equal
 * cols: q/k/v, gate/up): one activation quantization and one pool run for all of them instead of
 * one each. Y[i] equals lq_matmul(pool, w[i], X, n, Y[i]) bit for bit: every weight is split into
 * the row blocks lq_matmul would give it and computed by the same kernel calls. Weights on
 * different activation formats (lq_matmul_uses_int_act) fall back to one lq_matmul each. */
#define LQ_MATMUL_MULTI_MAX 4
lq_kstatus lq_matmul_multi(lq_pool *pool, const lq_weight *const *w, int nw, const float *X, int64_t n,
                           float *const *Y);
/* Same result through the format's matvec_ref only, single-threaded: the spec of lq_matmul. */
lq_kstatus lq_matmul_ref(const lq_weight *w, const float *X, int64_t n, float *Y);

/* Which activations lq_matmul feeds a format that has an integer path (lq_wfmt_traits.act):
 * LQ_ACT_MODE_AUTO (the default) quantizes them to the row's int8 blocks, as llama.cpp does;
 * LQ_ACT_MODE_F32 multiplies f32 activations (lq_matmul_ref's semantics), e.g. to measure what
 * the integer path costs in quality. Process-wide; LQ_F32_ACT=1 in the environment selects F32
 * at startup. Not to be changed while a matmul runs. */
typedef enum lq_act_mode {
    LQ_ACT_MODE_AUTO = 0, /* every row with a path, except the opt-in ones (act_opt_in) */
    LQ_ACT_MODE_F32 = 1,  /* no row: f32 activations everywhere (LQ_F32_ACT=1) */
    LQ_ACT_MODE_ALL = 2,  /* every row with a path, the opt-in ones too (LQ_INT_ACT=all) */
} lq_act_mode;
void lq_matmul_set_act_mode(lq_act_mode m);
lq_act_mode lq_matmul_act_mode(void);
/* Whether lq_matmul on w takes the integer-activation path now. */
int lq_matmul_uses_int_act(const lq_weight *w);

/* out = x / sqrt(mean(x^2) + eps) * weight */
void lq_rmsnorm(float *out, const float *x, const float *weight, int64_t n, float eps);
void lq_rmsnorm_ref(float *out, const float *x, const float *weight, int64_t n, float eps);

/* Dot product of two f32 vectors. */
float lq_dot_f32(const float *a, const float *b, int64_t n);
float lq_dot_f32_ref(const float *a, const float *b, int64_t n);
/* y += a * x */
void lq_axpy_f32(float *y, float a, const float *x, int64_t n);
void lq_axpy_f32_ref(float *y, float a, const float *x, int64_t n);

/* Attention's per-key loops: out[i] = (q . (k + i * stride)) * scale for i < rows, summed in
 * lq_dot_f32_rows_ref's order (eight f32 lanes, a fixed pairwise reduction: the same bits on every
 * CPU, for any number of keys); and y += w[i] * (x + i * stride) for i = 0, 1, ... in order, the
 * bits of lq_axpy_f32 called per key. Both run register-blocked over the keys (ops_rows_avx2.c). */
void lq_dot_f32_rows(const float *q, const float *k, int64_t stride, int64_t rows, int64_t n, float scale, float *out);
void lq_dot_f32_rows_ref(const float *q, const float *k, int64_t stride, int64_t rows, int64_t n, float scale,
                         float *out);
void lq_axpy_f32_rows(float *y, const float *w, const float *x, int64_t stride, int64_t rows, int64_t n);

/* In-place softmax over n values (max-subtracted, double-free f32 sum). */
void lq_softmax(float *x, int64_t n);
void lq_softmax_ref(float *x, int64_t n);

/* SwiGLU: gate[i] = silu(gate[i]) * up[i]. */
void lq_swiglu(float *gate, const float *up, int64_t n);
void lq_swiglu_ref(float *gate, const float *up, int64_t n);

/* GeGLU (Gemma): gate[i] = gelu_tanh(gate[i]) * up[i], the tanh approximation of GELU
 * (transformers' gelu_pytorch_tanh). Scalar only: it runs once per layer on the MLP width. */
void lq_geglu_tanh_ref(float *gate, const float *up, int64_t n);

/* Rotary embedding of one head vector x[head_dim] at position pos, in place.
 * inv_freq[i] (i < head_dim/2) is the angle per position of pair i.
 * interleaved: pairs (2i, 2i+1) (llama2.c, GGUF); else pairs (i, i + head_dim/2) (HF). */
void lq_rope_ref(float *x, int head_dim, int pos, const float *inv_freq, int interleaved);
/* lq_rope_ref in two steps, bit for bit the same, so one position's angles serve every head and
 * every layer of a decode step (each head would otherwise take head_dim / 2 sinf + cosf again):
 * cs[2i], cs[2i + 1] = cos, sin of (float)pos * inv_freq[i] for i < head_dim / 2, then x rotated
 * by them. */
void lq_rope_cos_sin(float *cs, int head_dim, int pos, const float *inv_freq);
void lq_rope_apply(float *x, int head_dim, const float *cs, int interleaved);

/* Convert n f16 / bf16 values to f32 (used for embedding rows and norm vectors). */
void lq_f16_to_f32_row(const uint16_t *src, float *dst, int64_t n);
void lq_bf16_to_f32_row(const uint16_t *src, float *dst, int64_t n);
/* Scalar specs of the two above (lq_f16_to_f32 / lq_bf16_to_f32 of lq_blocks.h per element). */
void lq_f16_to_f32_row_ref(const uint16_t *src, float *dst, int64_t n);
void lq_bf16_to_f32_row_ref(const uint16_t *src, float *dst, int64_t n);
/* Convert n f32 values to f16 / bf16, round to nearest even (writers of f16/bf16 tensors).
 * The _ref twins apply lq_f32_to_f16 / lq_f32_to_bf16 per element and are bit-identical to the
 * fast path except for NaN payloads (both stay NaN). */
void lq_f32_to_f16_row(const float *src, uint16_t *dst, int64_t n);
void lq_f32_to_f16_row_ref(const float *src, uint16_t *dst, int64_t n);
void lq_f32_to_bf16_row(const float *src, uint16_t *dst, int64_t n);
void lq_f32_to_bf16_row_ref(const float *src, uint16_t *dst, int64_t n);

/* ---- OpenBLAS's kernels (blas_core.c) ---- */

/* The OPENBLAS_CORETYPE this process should run with, or NULL when OpenBLAS already uses AVX2 (or
 * better) kernels, the CPU has no AVX2, OPENBLAS_CORETYPE is set, or the build has no OpenBLAS
 * or one without DYNAMIC_ARCH (which ignores the variable).
 * OpenBLAS 0.3.21 runs SSE3 kernels on CPU models it does not know (Emerald Rapids: sgemm 3.6x
 * slower); the choice is made when the library loads, so acting on it means re-executing
 * (the quant-* tools do, tool_cli.c); a program that links libquant itself must set
 * OPENBLAS_CORETYPE before it starts. */
const char *lq_blas_core_hint(void);
/* The same rule for OpenBLAS kernels named `loaded` (its core name), whatever the environment. */
const char *lq_blas_core_hint_for(const char *loaded);

#ifdef __cplusplus
}
#endif
#endif
