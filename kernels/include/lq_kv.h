/* lq_kv.h - KV-cache rows in a compact element type (the engine's --kv-cache).
 *
 * One cache row is one token's K (or V) in one layer: n_heads heads of head_dim values.
 *   f32, f16  the values (f16: IEEE half, round to nearest even).
 *   q8        int8 codes, then one f32 scale per head: x = code * scale with scale = max|x| / 127
 *             of that head of that token (llama.cpp's -ctk q8_0 with one block per head; codes
 *             round half away from zero as ggml's quantize_row_q8_0 does).
 *   fp8       E4M3 codes (lq_blocks.h), then one f32 scale per head: x = e4m3(code) * scale with
 *             scale = max|x| / 448, the same dynamic per-head range as q8.
 * Scales are per token (dynamic): nothing to calibrate, a row's range is its own. The scales
 * follow the codes at a 4-byte aligned offset (lq_kv_row_bytes counts them).
 *
 * Static scales (`fixed`, n_heads floats; compressed-tensors' kv_cache_scheme with calibrated
 * k_scale / v_scale, as vLLM runs it): every row of a layer uses the same per-head scales, so a
 * row is its codes alone (one byte per value: half of f16); q8 codes are then compressed-tensors'
 * int8 (round half to even, clamped to [-128, 127]) and fp8 saturates at 448. Every function
 * below takes `fixed`: NULL for dynamic rows (and f32 / f16).
 *
 * Attention reads a cache through lq_kv_dot_rows (scores of one query head against one kv head of
 * many rows) and lq_kv_axpy_rows (the weighted sum of V). Both have scalar _ref twins; the
 * unsuffixed names use AVX2 where the CPU has it. Only lq_kv_store_row writes a row: one scalar
 * implementation, so every path writes the same bytes.
 */
#ifndef LQ_KV_H
#define LQ_KV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lq_kv_type { LQ_KV_F32 = 0, LQ_KV_F16, LQ_KV_Q8, LQ_KV_FP8, LQ_KV_TYPE_COUNT } lq_kv_type;

/* "f32", "f16", "q8", "fp8"; NULL for an out-of-range value. */
const char *lq_kv_type_name(lq_kv_type t);
/* Inverse of lq_kv_type_name (also "q8_0" and "fp8_e4m3"); 0 on success, -1 for an unknown name. */
int lq_kv_type_parse(const char *name, lq_kv_type *out);
/* Bytes of one row of n_heads heads of head_dim values. */
size_t lq_kv_row_bytes(lq_kv_type t, int n_heads, int head_dim, const float *fixed);

/* Encode x (n_heads * head_dim floats) into one row. */
void lq_kv_store_row(lq_kv_type t, void *row, const float *x, int n_heads, int head_dim, const float *fixed);
/* Decode one row into x (n_heads * head_dim floats). */
void lq_kv_load_row(lq_kv_type t, const void *row, float *x, int n_heads, int head_dim, const float *fixed);

/* out[i] = scale * dot(q, head `head` of row i) for i < n_rows; row i starts at
 * (const char *)rows + i * row_bytes. q has head_dim floats. */
void lq_kv_dot_rows(lq_kv_type t, const float *q, const void *rows, size_t row_bytes, int64_t n_rows,
                    int head, int n_heads, int head_dim, const float *fixed, float scale, float *out);
void lq_kv_dot_rows_ref(lq_kv_type t, const float *q, const void *rows, size_t row_bytes, int64_t n_rows,
                        int head, int n_heads, int head_dim, const float *fixed, float scale, float *out);
/* y[j] += sum_i w[i] * (head `head` of row i)[j], rows in ascending i. y has head_dim floats. */
void lq_kv_axpy_rows(lq_kv_type t, float *y, const float *w, const void *rows, size_t row_bytes, int64_t n_rows,
                     int head, int n_heads, int head_dim, const float *fixed);
void lq_kv_axpy_rows_ref(lq_kv_type t, float *y, const float *w, const void *rows, size_t row_bytes,
                         int64_t n_rows, int head, int n_heads, int head_dim, const float *fixed);

#ifdef __cplusplus
}
#endif
#endif
