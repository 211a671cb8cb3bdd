/* kern_internal.h - symbols shared between the kernel sources only (not a public contract).
 *
 * The *_avx2 functions are compiled with -mavx2 -mfma -mf16c and must only be called after
 * lq_cpu_has_avx2() said yes; the dispatchers (format_table.c, ops_dispatch.c) do that.
 */
#ifndef LQ_KERN_INTERNAL_H
#define LQ_KERN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "lq_blocks.h"
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
void lq_gemm_f32_avx2(const lq_weight *w, const float *X, int64_t n, float *Y, int64_t ldy, int64_t r0, int64_t r1);
void lq_gemm_f16_avx2(const lq_weight *w, const float *X, int64_t n, float *Y, int64_t ldy, int64_t r0, int64_t r1);
void lq_gemm_bf16_avx2(const lq_weight *w, const float *X, int64_t n, float *Y, int64_t ldy, int64_t r0, int64_t r1);
void lq_dequant_f32_avx2(const lq_weight *w, int64_t r0, int64_t r1, float *out);
void lq_dequant_f16_avx2(const lq_weight *w, int64_t r0, int64_t r1, float *out);
void lq_dequant_bf16_avx2(const lq_weight *w, int64_t r0, int64_t r1, float *out);

/* ---- quantized formats (fmt_w8a16*.c, fmt_w4a16*.c, fmt_fp8*.c, fmt_w8a8*.c) ---- */
void lq_matvec_w8a16_ref(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1);
void lq_dequant_w8a16_ref(const lq_weight *w, int64_t r0, int64_t r1, float *out);
void lq_quantize_w8a16_ref(const float *src, const lq_quant_params *p, lq_weight *dst);
void lq_matvec_w8a16_avx2(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1);
void lq_dequant_w8a16_avx2(const lq_weight *w, int64_t r0, int64_t r1, float *out);

void lq_matvec_w4a16_ref(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1);
void lq_dequant_w4a16_ref(const lq_weight *w, int64_t r0, int64_t r1, float *out);
void lq_quantize_w4a16_ref(const float *src, const lq_quant_params *p, lq_weight *dst);
void lq_matvec_w4a16_avx2(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1);
void lq_dequant_w4a16_avx2(const lq_weight *w, int64_t r0, int64_t r1, float *out);
/* fmt_w3a16*.c */
void lq_matvec_w3a16_ref(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1);
void lq_dequant_w3a16_ref(const lq_weight *w, int64_t r0, int64_t r1, float *out);
void lq_quantize_w3a16_ref(const float *src, const lq_quant_params *p, lq_weight *dst);
void lq_matvec_w3a16_avx2(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1);
void lq_dequant_w3a16_avx2(const lq_weight *w, int64_t r0, int64_t r1, float *out);

void lq_matvec_fp8_ref(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1);
void lq_dequant_fp8_ref(const lq_weight *w, int64_t r0, int64_t r1, float *out);
void lq_quantize_fp8_ref(const float *src, const lq_quant_params *p, lq_weight *dst);
void lq_matvec_fp8_avx2(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1);
void lq_dequant_fp8_avx2(const lq_weight *w, int64_t r0, int64_t r1, float *out);

void lq_matvec_w8a8_ref(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1);
void lq_dequant_w8a8_ref(const lq_weight *w, int64_t r0, int64_t r1, float *out);
void lq_quantize_w8a8_ref(const float *src, const lq_quant_params *p, lq_weight *dst);
void lq_matmul_tile_w8a8_ref(const lq_weight *w, const float *X, int64_t n, float *Y, int64_t r0,
                             int64_t r1);
void lq_matvec_w8a8_avx2(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1);
void lq_dequant_w8a8_avx2(const lq_weight *w, int64_t r0, int64_t r1, float *out);
void lq_matmul_tile_w8a8_avx2(const lq_weight *w, const float *X, int64_t n, float *Y, int64_t r0,
                              int64_t r1);
void lq_matvec_w8a8_avx512(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1);
void lq_gemm_f32_avx512(const lq_weight *w, const float *X, int64_t n, float *Y, int64_t ldy, int64_t r0, int64_t r1);
void lq_gemm_f16_avx512(const lq_weight *w, const float *X, int64_t n, float *Y, int64_t ldy, int64_t r0, int64_t r1);
void lq_gemm_bf16_avx512(const lq_weight *w, const float *X, int64_t n, float *Y, int64_t ldy, int64_t r0, int64_t r1);
void lq_matmul_tile_w8a8_avx512(const lq_weight *w, const float *X, int64_t n, float *Y, int64_t r0,
                                int64_t r1);

/* ---- integer activations (act_quant*.c; lq_act_fmt) ---- */
void lq_act_select(int avx2); /* fills lq_act_traits.quantize (format_table.c's init calls it) */
void lq_act_quantize_q8_0_ref(const float *x, int64_t n, void *out);
void lq_act_quantize_q8_1_ref(const float *x, int64_t n, void *out);
void lq_act_quantize_q8_K_ref(const float *x, int64_t n, void *out);
void lq_act_quantize_q8_0_avx2(const float *x, int64_t n, void *out);
void lq_act_quantize_q8_1_avx2(const float *x, int64_t n, void *out);
void lq_act_quantize_q8_K_avx2(const float *x, int64_t n, void *out);
void lq_act_quantize_q16_ref(const float *x, int64_t n, void *out);
void lq_act_quantize_q16_avx2(const float *x, int64_t n, void *out);

/* ---- integer-activation matvecs (lq_matvec_q_fn), by family ---- */
/* legacy blocks x Q8_0 / Q8_1 */
#define LQ_MATVEC_Q_DECL(n)                                                                       \
    void lq_matvec_q_##n##_ref(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1); \
    void lq_matvec_q_##n##_avx2(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1); \
    void lq_gemm_q_##n##_avx2(const lq_weight *w, const void *Xq, size_t xq_bytes, int64_t n, float *Y, \
                              int64_t ldy, int64_t r0, int64_t r1);
LQ_MATVEC_Q_DECL(q8_0)
LQ_MATVEC_Q_DECL(q4_0)
LQ_MATVEC_Q_DECL(q4_1)
LQ_MATVEC_Q_DECL(q5_0)
LQ_MATVEC_Q_DECL(q5_1)
LQ_MATVEC_Q_DECL(iq4_nl)
/* The scalar spec shared by those (fmt_legacy_dot.c): ggml's generic vec_dot block formula. */
typedef enum lq_dot_formula {
    LQ_DOT_SUMI_DW_DX,   /* sumi * d_w * d_x (Q4_0) */
    LQ_DOT_DWDX_SUMI,    /* (d_w * d_x) * sumi (Q5_0) */
    LQ_DOT_DWDX_SUMI_MS, /* (d_w * d_x) * sumi + m * s (Q4_1, Q5_1 x Q8_1) */
    LQ_DOT_DXDW_SUMI     /* (d_x * d_w) * sumi (IQ4_NL) */
} lq_dot_formula;
typedef struct lq_blk_dot {
    int bytes;                                /* weight block bytes (d at byte 0, m at 2) */
    lq_act_fmt act;                           /* LQ_ACT_Q8_0 or LQ_ACT_Q8_1 */
    void (*codes)(const uint8_t *blk, int *q); /* the 32 integer codes the block's d scales */
    lq_dot_formula formula;
} lq_blk_dot;
void lq_blk_dot_ref(const lq_blk_dot *k, const lq_weight *w, const void *xq, float *y, int64_t r0,
                    int64_t r1);


/* K-quants x Q8_K */
void lq_gemm_q_q4_K_avx2(const lq_weight *w, const void *xq, size_t xs, int64_t n, float *y, int64_t ldy,
                          int64_t r0, int64_t r1);
void lq_gemm_q_q5_K_avx2(const lq_weight *w, const void *xq, size_t xs, int64_t n, float *y, int64_t ldy,
                          int64_t r0, int64_t r1);
void lq_gemm_q_q6_K_avx2(const lq_weight *w, const void *xq, size_t xs, int64_t n, float *y, int64_t ldy,
                          int64_t r0, int64_t r1);
void lq_matvec_q_q2_K_ref(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1);
void lq_matvec_q_q2_K_avx2(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1);
void lq_matvec_q_q3_K_ref(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1);
void lq_matvec_q_q3_K_avx2(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1);
void lq_matvec_q_q4_K_ref(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1);
void lq_matvec_q_q4_K_avx2(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1);
void lq_matvec_q_q5_K_ref(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1);
void lq_matvec_q_q5_K_avx2(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1);
void lq_matvec_q_q6_K_ref(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1);
void lq_matvec_q_q6_K_avx2(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1);
void lq_matvec_q_iq4_xs_ref(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1);
void lq_matvec_q_iq4_xs_avx2(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1);


/* compressed-tensors formats x Q8_0 (fmt_w4a16_q8*.c, fmt_w8a16_q8*.c) */
void lq_matvec_q_w4a16_ref(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1);
void lq_matvec_q_w4a16_avx2(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1);
void lq_matvec_q_w4a16_q16_ref(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1);
/* the W4A16 integer-activation specs' shared loop (fmt_w4a16_q8.c): a column's activation code and
 * a block's d read through the layout's accessors */
typedef int (*lq_act_code_fn)(const void *xq, int64_t c);
typedef double (*lq_act_d_fn)(const void *xq, int64_t b);
void lq_w4a16_pieces_ref(const lq_weight *w, const void *xq, lq_act_code_fn code, lq_act_d_fn dblk, float *y,
                         int64_t r0, int64_t r1);
void lq_matvec_q_w8a16_ref(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1);
void lq_matvec_q_w8a16_avx2(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1);


/* ---- GGUF legacy blocks (fmt_gguf_blocks.c loops over each format's block codec) ---- */
typedef struct lq_blk_codec {
    int bytes;                                    /* bytes per block of LQ_QK = 32 elements */
    void (*decode)(const uint8_t *blk, float *out);  /* 32 values, ggml's dequantize_row_* */
    void (*encode)(const float *x, uint8_t *blk);    /* ggml's reference quantizer, one block */
    /* ggml's quantizer with an importance matrix (llama-quantize --imatrix), one block: qw = the
     * block's 32 imatrix entries, sigma2 = mean square of the whole row. NULL: the format
     * ignores the imatrix (Q8_0), encode is used. blk_quantize_imat.c, fmt_iq4_nl.c. */
    void (*encode_w)(const float *x, const float *qw, float sigma2, uint8_t *blk);
} lq_blk_codec;
void lq_blk_matvec_ref(const lq_blk_codec *k, const lq_weight *w, const float *x, float *y,
                       int64_t r0, int64_t r1);
void lq_blk_dequant_ref(const lq_blk_codec *k, const lq_weight *w, int64_t r0, int64_t r1, float *out);
/* col_weight: the imatrix (dst->cols floats) or NULL (ggml's reference quantizer). */
void lq_blk_quantize_ref(const lq_blk_codec *k, const float *src, const float *col_weight, lq_weight *dst);
void lq_blk_encode_w_q4_0(const float *x, const float *qw, float sigma2, uint8_t *b);
void lq_blk_encode_w_q4_1(const float *x, const float *qw, float sigma2, uint8_t *b);
void lq_blk_encode_w_q5_0(const float *x, const float *qw, float sigma2, uint8_t *b);
void lq_blk_encode_w_q5_1(const float *x, const float *qw, float sigma2, uint8_t *b);

/* float -> int32 as x86's cvttss2si (truncation; NaN and out of range give INT32_MIN), which is
 * what ggml's compiled (int8_t)(float) conversions do: the reference quantizers then stay
 * defined (and equal to ggml) even where a scale overflows to Inf on a subnormal block. */
static inline int32_t lq_ggml_ftoi(float v) {
    return (v > -2147483648.0f && v < 2147483648.0f) ? (int32_t)v : INT32_MIN;
}
/* ggml's (int8_t)(float): the low byte of that int32, as a signed byte. */
static inline int lq_ggml_ftoi8(float v) {
    const uint8_t b = (uint8_t)((uint32_t)lq_ggml_ftoi(v) & 0xffu);
    return b < 128 ? (int)b : (int)b - 256;
}

/* The two code rules of the legacy integer blocks, shared by Q4 and Q5 (fmt_gguf_blocks.c):
 * ggml's quantize_row_q{4,5}_0_ref: d = m / -half (m the first element of largest |x|, sign
 *   kept), u = min(2 half - 1, (int8)(x * id + half + 0.5)); d is stored as binary16 at hdr;
 * ggml's quantize_row_q{4,5}_1_ref: d = (max - min) / qmax, u = min(qmax, (int8)((x - min) * id
 *   + 0.5)); d and min as binary16 at hdr and hdr + 2.
 * u gets the 32 unpacked codes; each format packs them its own way. */
void lq_blk_codes_absmax(const float *x, int half, uint8_t *hdr, uint8_t *u);
void lq_blk_codes_minmax(const float *x, int qmax, uint8_t *hdr, uint8_t *u);
/* binary16 of v, little-endian at b (a block's scale or minimum) */
static inline void lq_blk_put_f16(uint8_t *b, float v) {
    const lq_f16 h = lq_f32_to_f16(v);
    b[0] = (uint8_t)(h & 0xff);
    b[1] = (uint8_t)(h >> 8);
}

#define LQ_BLK_FMT_DECL(n)                                                                        \
    void lq_matvec_##n##_ref(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1); \
    void lq_dequant_##n##_ref(const lq_weight *w, int64_t r0, int64_t r1, float *out);              \
    void lq_quantize_##n##_ref(const float *src, const lq_quant_params *p, lq_weight *dst);         \
    void lq_matvec_##n##_avx2(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1); \
    void lq_dequant_##n##_avx2(const lq_weight *w, int64_t r0, int64_t r1, float *out);
/* The three _ref entry points of a block format, given its codec. */
#define LQ_BLK_REF_DEFINE(n, codec)                                                               \
    void lq_matvec_##n##_ref(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) { \
        lq_blk_matvec_ref(&(codec), w, x, y, r0, r1);                                             \
    }                                                                                             \
    void lq_dequant_##n##_ref(const lq_weight *w, int64_t r0, int64_t r1, float *out) {           \
        lq_blk_dequant_ref(&(codec), w, r0, r1, out);                                             \
    }                                                                                             \
    void lq_quantize_##n##_ref(const float *src, const lq_quant_params *p, lq_weight *dst) {      \
        /* ggml's quantizers take one parameter: the imatrix (col_weight) */                      \
        lq_blk_quantize_ref(&(codec), src, p ? p->col_weight : NULL, dst);                        \
    }
LQ_BLK_FMT_DECL(q8_0)
LQ_BLK_FMT_DECL(q4_0)
LQ_BLK_FMT_DECL(q4_1)
LQ_BLK_FMT_DECL(q5_0)
LQ_BLK_FMT_DECL(q5_1)
LQ_BLK_FMT_DECL(iq4_nl)

/* W8A8 activation code of one element, given inv = 127 / max|x| (0 when max|x| is 0). The
 * clamps are written as the AVX2 max/min instructions behave (NaN -> -127), and the multiply and
 * rounding are single f32 operations, so the AVX2 path produces the identical codes. */
static inline int lq_w8a8_xcode(float x, float inv) {
    float v = x * inv;
    v = v > -127.0f ? v : -127.0f;
    v = v < 127.0f ? v : 127.0f;
    return (int)__builtin_nearbyintf(v);
}
/* Per-token activation scale of W8A8: amax = max |x| (NaN ignored, as max_ps does). */
static inline float lq_w8a8_amax(const float *x, int64_t n) {
    float m = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float a = __builtin_fabsf(x[i]);
        m = a > m ? a : m;
    }
    return m;
}

/* W4A16 / W3A16 group size of a weight: group_size <= 0 means one group per row. */
static inline int64_t lq_w4_group(const lq_weight *w) {
    return (w->group_size > 0 && w->group_size < w->cols) ? w->group_size : w->cols;
}

/* ---- quantization helpers (quant_common.c; rules documented there) ---- */
float lq_quant_round_scale(float s, lq_scale_dtype d);
float lq_quant_rne(float v);
int lq_quant_int_code(float x, float scale, float zero, int qmin, int qmax);
/* x: one group of n weights; imp: their columns' calibration weights (p->col_weight at the
 * group's first column) or NULL */
void lq_quant_int_params(const float *x, const float *imp, int64_t n, int bits, int asym,
                         const lq_quant_params *p, float *scale, float *zero);
uint8_t lq_quant_fp8_code(float x, float scale);
float lq_quant_fp8_scale(const float *x, int64_t n, const lq_quant_params *p);

/* ---- element-wise ops (ops_avx2.c); the dispatchers live in ops_dispatch.c ---- */
void lq_rmsnorm_avx2(float *out, const float *x, const float *weight, int64_t n, float eps);
float lq_dot_f32_avx2(const float *a, const float *b, int64_t n);
void lq_axpy_f32_avx2(float *y, float a, const float *x, int64_t n);
void lq_dot_f32_rows_avx2(const float *q, const float *k, int64_t stride, int64_t rows, int64_t n, float scale,
                          float *out);
void lq_axpy_f32_rows_avx2(float *y, const float *w, const float *x, int64_t stride, int64_t rows, int64_t n);
void lq_softmax_avx2(float *x, int64_t n);
void lq_swiglu_avx2(float *gate, const float *up, int64_t n);
void lq_f16_to_f32_row_avx2(const uint16_t *src, float *dst, int64_t n);
void lq_bf16_to_f32_row_avx2(const uint16_t *src, float *dst, int64_t n);
void lq_f32_to_f16_row_avx2(const float *src, uint16_t *dst, int64_t n);
void lq_f32_to_bf16_row_avx2(const float *src, uint16_t *dst, int64_t n);

/* ---- AVX-512 (F/BW/VL/VNNI) twins (*_avx512.c; format_table.c's g_fast512), by family ---- */
/* float and compressed-tensors formats */
void lq_matvec_w8a16_avx512(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1);
void lq_matvec_q_w8a16_avx512(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1);
void lq_gemm_q_w8a16_avx512(const lq_weight *w, const void *xq, size_t xq_stride, int64_t n, float *y,
                            int64_t ldy, int64_t r0, int64_t r1);
/* W4A16 x Q16 activations (fmt_w4a16_q16*.c): the AVX-512 level's integer path of W4A16 */
void lq_matvec_q_w4a16_q16_avx512(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1);
void lq_matvec_w4a16_avx512(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1);
void lq_matvec_fp8_avx512(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1);


/* GGUF legacy blocks */
/* x Q8_0 / Q8_1 with vpdpbusd (fmt_legacy_avx512.c, loops in blk_q8_avx512_tmpl.h) */
#define LQ_MATVEC_Q512_DECL(n)                                                                    \
    void lq_matvec_q_##n##_avx512(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1); \
    void lq_gemm_q_##n##_avx512(const lq_weight *w, const void *Xq, size_t xq_bytes, int64_t n, float *Y, \
                                int64_t ldy, int64_t r0, int64_t r1);
LQ_MATVEC_Q512_DECL(q8_0)
LQ_MATVEC_Q512_DECL(q4_0)
LQ_MATVEC_Q512_DECL(q4_1)
LQ_MATVEC_Q512_DECL(q5_0)
LQ_MATVEC_Q512_DECL(q5_1)
LQ_MATVEC_Q512_DECL(iq4_nl)


/* K-quants x Q8_K (fmt_kquant_avx512.c: Q4_K, Q5_K, Q6_K; fmt_kquant_lo_avx512.c: Q2_K, Q3_K,
 * IQ4_XS; the shared token loop kq_avx512_tmpl.h) */
#define LQ_KQ512_DECL(n)                                                                          \
    void lq_matvec_q_##n##_avx512(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1); \
    void lq_gemm_q_##n##_avx512(const lq_weight *w, const void *xq, size_t xs, int64_t n, float *y,      \
                                int64_t ldy, int64_t r0, int64_t r1);
LQ_KQ512_DECL(q2_K)
LQ_KQ512_DECL(q3_K)
LQ_KQ512_DECL(q4_K)
LQ_KQ512_DECL(q5_K)
LQ_KQ512_DECL(q6_K)
LQ_KQ512_DECL(iq4_xs)

/* ---- KV-cache rows (kv_rows.c, kv_rows_avx2.c) ---- */
#include "lq_kv.h"
/* Where the per-head scales of a dynamic q8 / fp8 row start: after the codes, 4-byte aligned. */
static inline size_t lq_kv_scale_off(int n_heads, int head_dim) {
    return ((size_t)n_heads * (size_t)head_dim + 3u) & ~(size_t)3u;
}
void lq_kv_dot_rows_avx2(lq_kv_type t, const float *q, const void *rows, size_t row_bytes, int64_t n_rows,
                         int head, int n_heads, int head_dim, const float *fixed, float scale, float *out);
void lq_kv_axpy_rows_avx2(lq_kv_type t, float *y, const float *w, const void *rows, size_t row_bytes,
                          int64_t n_rows, int head, int n_heads, int head_dim, const float *fixed);

#endif
