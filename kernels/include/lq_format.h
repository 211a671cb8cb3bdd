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
    /* Quantized formats. Payload layouts are the bytes of the compressed-tensors tensors, so a
     * checkpoint is run without conversion (exact layouts: lq_blocks.h). Side tensors are f32
     * arrays the binder derives from the checkpoint's scale/zero-point tensors. */
    /* W[r][c] = q[r][c] * scale[r]; q pack-quantized 8-bit. aux[0] = scale[rows] */
    LQ_WFMT_W8A16 = 3,
    /* W[r][c] = (q[r][c] - zero[r][g]) * scale[r][g], g = c / group_size; q pack-quantized 4-bit.
     * aux[0] = scale[rows][n_groups], aux[1] = zero[rows][n_groups] (integers in [-8, 7]) or NULL
     * (symmetric). group_size must divide cols (compressed-tensors refuses other shapes);
     * group_size <= 0 (or == cols) is one group per row, any cols. */
    LQ_WFMT_W4A16 = 4,
    /* W[r][c] = e4m3(code[r][c]) * scale[r]. aux[0] = scale[rows] (per-tensor: all equal) */
    LQ_WFMT_FP8_E4M3 = 5,
    /* int8 weights per channel x int8 activations quantized per token inside the kernel
     * (symmetric, scale_x = max|x| / 127), int32 accumulation, y = acc * scale_x * scale[r].
     * aux[0] = scale[rows]. Its results are NOT those of the dequantized weights. */
    LQ_WFMT_W8A8 = 6,
    /* GGUF / ggml block formats: a row is cols / 32 self-describing blocks (scale inside the
     * block, lq_blocks.h), no aux; the bytes of a GGUF tensor run as they are. Results equal
     * ggml's dequantize_row_* value for value; quantize_ref equals ggml's reference quantizer
     * (what llama-quantize runs without an importance matrix) byte for byte, or with
     * lq_quant_params.col_weight set ggml's quantizer with that importance matrix (llama-quantize
     * --imatrix, ggml_quantize_chunk(type, ..., imatrix)). */
    LQ_WFMT_Q8_0 = 7,
    LQ_WFMT_Q4_0 = 8,
    LQ_WFMT_Q4_1 = 9,
    LQ_WFMT_Q5_0 = 10,
    LQ_WFMT_Q5_1 = 11,
    LQ_WFMT_IQ4_NL = 12,
    /* llama.cpp's K-quant super-blocks: a row is cols / 256 blocks (cols must be a multiple of
     * 256, QK_K; lq_wfmt_sizes refuses other widths), each with its f16 super-scale(s) and the
     * small integer scales of its 16- or 32-weight sub-blocks inside (lq_blocks.h), no aux. The
     * same contract as the legacy blocks above: ggml's dequantize_row_* value for value,
     * quantize_ref = ggml's reference quantizer without an importance matrix, byte for byte. */
    LQ_WFMT_Q2_K = 13,
    LQ_WFMT_Q3_K = 14,
    LQ_WFMT_Q4_K = 15,
    LQ_WFMT_Q5_K = 16,
    LQ_WFMT_Q6_K = 17,
    LQ_WFMT_IQ4_XS = 18,
    /* W4A16's layout and arithmetic with 3-bit codes: W[r][c] = (q[r][c] - zero[r][g]) *
     * scale[r][g], q pack-quantized 3-bit (compressed-tensors num_bits 3, densely packed: a code
     * may straddle two int32 words, lq_blocks.h). aux[0] = scale[rows][n_groups], aux[1] =
     * zero[rows][n_groups] (integers in [-4, 3]) or NULL (symmetric). Group sizes as W4A16. */
    LQ_WFMT_W3A16 = 19,
    LQ_WFMT_COUNT
} lq_wfmt;

/* "No quantized format": a tensor a PTQ plan or recipe keeps in its stored dtype (lq_wfmt_get
 * returns NULL for it, as for any value out of range). A fixed value far past the formats, not
 * LQ_WFMT_COUNT, so a program built against this header keeps its meaning when formats are
 * appended. */
#define LQ_WFMT_NONE ((lq_wfmt)0x7fff)

/* How compressed-tensors stores a format: the storage half of its traits row, read by the PTQ
 * writer, the quantization_config writer and reader, the binder and the recipe size estimate,
 * so a new compressed-tensors format is this descriptor in its row, not a branch in each. A row
 * without one (scheme NULL: the float and GGUF formats) has no compressed-tensors storage. */
typedef struct lq_ct_storage {
    const char *scheme;     /* the preset name printed and written ("W4A16"); NULL: none */
    const char *format;     /* quantization_config "format": "pack-quantized", "int-quantized",
                             * "float-quantized" */
    int bits;               /* weights num_bits */
    int float_type;         /* weights "type" "float" (E4M3 codes in .weight), else "int" */
    int packed;             /* codes in int32 words: .weight_packed + .weight_shape, and zero
                             * points packed along rows (else one code a byte in .weight) */
    int grouped;            /* "group" strategy along cols and asymmetric zero points allowed
                             * (else "channel", symmetric; a float type also takes "tensor") */
    int dynamic_token_act;  /* input_activations: int8, dynamic, per token (W8A8) */
} lq_ct_storage;

/* Integer activations (llama.cpp's vec_dot_type). A format row with an integer path quantizes
 * the activation row once per matmul into blocks of one of these layouts (lq_blocks.h), shared by
 * every row tile and thread, and runs int8 dot products with int32 accumulation against its
 * codes; the block scales are applied per block in f32. The quantizers are those of a llama.cpp
 * x86 build (AVX2), so a GGUF model computes what llama.cpp computes. Values are append-only. */
typedef enum lq_act_fmt {
    LQ_ACT_NONE = 0, /* the row multiplies f32 activations only */
    /* 32 values: d = amax / 127 stored as binary16, q = round-half-even(x * (127 / amax)) */
    LQ_ACT_Q8_0 = 1,
    /* Q8_0's codes plus s = d * sum(q) (binary16): a block minimum folds into m * s */
    LQ_ACT_Q8_1 = 2,
    /* 256 values: m = the signed value of largest magnitude, q = min(127, round-half-even(x *
     * (-127 / m))), d = 1 / (-127 / m) in f32, and the sums of each 16 codes (int16) */
    LQ_ACT_Q8_K = 3,
    /* 32 values: d = amax / 32767 in f32, q = round-half-even(x * (32767 / amax)) as int16 (no
     * llama.cpp counterpart): a step 258 times finer than Q8_0's, for the compressed-tensors rows
     * whose 16-bit activations Q8_0 rounds past issue 17's KLD budget (docs/RESULTS.md) */
    LQ_ACT_Q16 = 4,
    LQ_ACT_COUNT
} lq_act_fmt;

/* Quantize n activations (n a multiple of the layout's block) into blocks at out. */
typedef void (*lq_act_quantize_fn)(const float *x, int64_t n, void *out);
/* The values the blocks stand for: out[i] = q[i] * d (f32). */
typedef void (*lq_act_dequant_fn)(const void *blocks, int64_t n, float *out);

typedef struct lq_act_traits {
    const char *name;            /* "q8_0", "q8_1", "q8_K" (ggml's names), "q16" */
    int block;                   /* values per block: 32 or 256 */
    size_t block_bytes;          /* 34, 36, 292, 68 */
    lq_act_quantize_fn quantize; /* fastest (chosen at startup); bit-identical to the ref */
    lq_act_quantize_fn quantize_ref;
    lq_act_dequant_fn dequant_ref;
    /* |dequant(quantize(x))[i] - x[i]| <= err_amax * max(amax(block of i), amax_floor) +
     * err_rel * |x[i]|: half a step of the block's range, plus the scale's rounding (binary16
     * for Q8_0 / Q8_1, whose subnormals below amax_floor = 127 * 2^-14 round d absolutely). */
    double err_amax, err_rel, amax_floor;
} lq_act_traits;

/* The layout's row (NULL if out of range or LQ_ACT_NONE). */
const lq_act_traits *lq_act_get(lq_act_fmt f);
/* Bytes of one row of n activations in layout f (n a multiple of its block; 0 otherwise). */
size_t lq_act_row_bytes(lq_act_fmt f, int64_t n);

/* How a tool asks for a tensor to be quantized (ignored by the float formats). */
typedef enum lq_scale_dtype { LQ_SCALE_F32 = 0, LQ_SCALE_F16 = 1, LQ_SCALE_BF16 = 2 } lq_scale_dtype;

/* The scale rule of symmetric integer groups (quant_common.c has the arithmetic). */
typedef enum lq_rounding {
    /* compressed-tensors / llm-compressor: scale = max|x| / ((qmax - qmin) / 2), e.g. amax / 7.5
     * for int4, codes clamped to [-8, 7]: the positive extreme is clipped by half a step. Our
     * bytes equal llm-compressor's RTN with it. */
    LQ_ROUND_AMAX = 0,
    /* llama.cpp Q4_0: m = the signed value of largest magnitude, scale = m / qmin (m / -8 for
     * int4; negative when m > 0), so m is represented exactly and the other sign gets the full
     * 2^(B-1) - 1 steps. */
    LQ_ROUND_SIGNED_MAX = 1,
    LQ_ROUND_COUNT
} lq_rounding;

/* What a clip search chose for the groups it saw (summed over calls; see lq_quant_params). */
typedef struct lq_clip_stats {
    int64_t groups, clipped;   /* groups searched / given a ratio below 1 */
    double ratio_sum;          /* sum of the chosen ratios (mean = ratio_sum / groups) */
    double ratio_min;          /* smallest ratio chosen (1 when none clipped; 0 = unset) */
    double err_plain, err_chosen; /* weighted squared error without clipping / as chosen */
} lq_clip_stats;

typedef struct lq_quant_params {
    int32_t group_size;        /* W4A16 / W3A16: 32, 64, 128 ... (<= 0: one group per row) */
    int asym;                  /* W4A16 / W3A16: asymmetric with a zero point */
    int per_tensor;            /* FP8: one scale for the whole tensor (else per channel) */
    int clip_search;           /* search the clipping ratio that minimizes each group's error */
    lq_rounding rounding;      /* symmetric integer scale rule (asymmetric and FP8 ignore it) */
    /* Clip search error weights, one per input column (cols floats): the calibration data's mean
     * square activation of that column (llama.cpp's imatrix), so the searched error is the
     * layer's expected output error. NULL: no data (quant_common.c says what is used then).
     * The GGUF block formats take it as ggml takes quant_weights (llama-quantize --imatrix). */
    const float *col_weight;
    lq_clip_stats *clip_stats; /* optional: where a clip search adds what it chose (not thread
                                * safe: one per concurrent quantize call) */
    lq_scale_dtype scale_dtype; /* scales are rounded to this before codes are computed, so the
                                 * stored (e.g. bf16) scale is the one the codes were made with */
} lq_quant_params;

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

/* Y[t * w->rows + r] = row r of the product for token t < n, r in [r0, r1): a format whose
 * product is not "dequantize, then multiply" (W8A8) computes prefill tiles with this, so n > 1
 * keeps the same semantics as decode. X is n x w->cols. */
typedef void (*lq_matmul_tile_fn)(const lq_weight *w, const float *X, int64_t n, float *Y,
                                  int64_t r0, int64_t r1);

/* A few tokens over the stored weights (a batched decode step): Y[t * ldy + (r - r0)] = row r of
 * W times token t's row X + t * w->cols, t in [0, n), r in [r0, r1); each element computed the same
 * way in any row range (the same bits whatever the tiling). Spec: matvec_ref per token, within the
 * row's tol_atol / tol_rtol. lq_matmul uses it for 1 < n <= LQ_GEMM_SMALL_MAX instead of sgemm. */
typedef void (*lq_gemm_fn)(const lq_weight *w, const float *X, int64_t n, float *Y, int64_t ldy,
                           int64_t r0, int64_t r1);
#define LQ_GEMM_SMALL_MAX 16

/* Quantize the f32 matrix src (rows x cols, row-major) into dst, whose fmt/rows/cols are set and
 * whose data (rows * row_bytes) and aux arrays point to writable buffers sized by lq_wfmt_sizes
 * (call it first: a shape it refuses must not be quantized). Sets dst->group_size. Codes and
 * scales follow compressed-tensors' calculate_qparams / quantize (kernels/cpu/quant_common.c).
 * Deterministic: the same input gives the same bytes on every machine. Non-finite inputs give
 * unspecified (but deterministic) codes: callers reject them first. */
typedef void (*lq_quantize_fn)(const float *src, const lq_quant_params *p, lq_weight *dst);

/* Buffer sizes of a rows x cols matrix with params p (lq_wfmt_sizes); 0 if the layout cannot
 * hold that shape. */
typedef int (*lq_sizes_fn)(int64_t rows, int64_t cols, const lq_quant_params *p, size_t *row_bytes,
                           int64_t *n_aux0, int64_t *n_aux1);

/* y[r - r0] = sum_c W[r][c] * xq[c] for r in [r0, r1), xq = one activation row already quantized
 * in the row's lq_act_fmt (lq_act_row_bytes(act, w->cols) bytes). */
typedef void (*lq_matvec_q_fn)(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1);

/* Several tokens at once (prefill): y[t * ldy + (r - r0)] = matvec_q of row r with token t's
 * quantized row xq + t * xq_stride, for t in [0, n) and r in [r0, r1), equal to matvec_q bit for
 * bit (a kernel that unpacks each weight block once for several tokens). */
typedef void (*lq_gemm_q_fn)(const lq_weight *w, const void *xq, size_t xq_stride, int64_t n, float *y,
                             int64_t ldy, int64_t r0, int64_t r1);

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
    lq_quantize_fn quantize_ref; /* NULL for float formats (they are stored, not quantized) */
    /* Bound on the round-trip error of quantize_ref -> dequant_ref, relative to each group's
     * max |w| (RTN: half a quantization step of the group's range). */
    double roundtrip_rtol;
    /* Prefill tile (lq_matmul n > 1) when dequantize + sgemm would change the result; NULL for
     * the weight-only formats. The fastest available path, chosen with matvec. */
    lq_matmul_tile_fn matmul_tile;
    /* Several tokens without a tile copy (lq_gemm_fn); NULL: lq_matmul's sgemm tiles serve every n. */
    lq_gemm_fn gemm;
    /* Payload bytes per row and side-tensor sizes: the layout's own arithmetic (lq_blocks.h). */
    lq_sizes_fn sizes;
    /* ggml's type id of this exact layout (GGUF tensor type: F32 0, F16 1, Q8_0 8, BF16 30, ...);
     * -1 when GGUF has no such type (the compressed-tensors formats, whose scales are aux
     * tensors). Every row sets it explicitly: 0 would mean F32. */
    int gguf_type;
    /* The integer-activation path (LQ_ACT_NONE, NULL: none). lq_matmul takes it unless the
     * process asked for f32 activations (lq_matmul_set_act_mode). matvec_q vs matvec_q_ref on the
     * same quantized row: tol_atol + tol_rtol * sum_c |W[r][c] xq[c]| (only the order of the f32
     * block sums differs). Against f32 activations (matvec_ref): additionally
     * act_tol * sum_c |W[r][c]| * max(amax(activation block of c), amax_floor), the activation's quantization
     * error (lq_act_traits.err_amax and err_rel folded together, plus what the row's own block
     * arithmetic adds, e.g. a minimum times Q8_1's binary16 sum). */
    lq_act_fmt act;
    lq_matvec_q_fn matvec_q;     /* fastest */
    lq_matvec_q_fn matvec_q_ref; /* scalar spec: int32 block dot products, ggml's block formula */
    double act_tol;
    /* 1: lq_matmul takes the path only under LQ_ACT_MODE_ALL (lq_ops.h), because its measured
     * end-to-end loss is over the budget; the row and its tests exist all the same. */
    int act_opt_in;
    lq_gemm_q_fn gemm_q; /* optional (NULL: prefill loops matvec_q over the tokens) */
    /* 1: the integer path serves decode (n == 1) only and prefill multiplies f32 activations
     * (dequantize + sgemm), where that measured faster end to end (W4A16 x Q16: format_table.c) */
    int act_decode_only;
    lq_ct_storage ct;    /* compressed-tensors storage (ct.scheme NULL: none) */
} lq_wfmt_traits;

/* Buffer sizes of a rows x cols matrix in format f with params p: payload bytes per row and the
 * number of floats in aux[0] and aux[1] (0 when unused). Returns 0 if the format cannot hold
 * that shape (e.g. a group size that does not divide cols when the format requires it). */
int lq_wfmt_sizes(lq_wfmt f, int64_t rows, int64_t cols, const lq_quant_params *p,
                  size_t *row_bytes, int64_t *n_aux0, int64_t *n_aux1);

/* The integer RTN arithmetic every integer format's quantize_ref uses (kernels/cpu/
 * quant_common.c, compressed-tensors' rules): one group's scale and zero point from its values
 * x[0..n) (imp: clip-search weights or NULL), and one code. Public so a calibration algorithm
 * (GPTQ) makes its scales and codes exactly as RTN does. */
void lq_quant_int_params(const float *x, const float *imp, int64_t n, int bits, int asym,
                         const lq_quant_params *p, float *scale, float *zero);
int lq_quant_int_code(float x, float scale, float zero, int qmin, int qmax);

/* The row for a format (NULL if out of range). */
const lq_wfmt_traits *lq_wfmt_get(lq_wfmt f);
/* Look a format up by name; LQ_WFMT_COUNT if unknown. */
lq_wfmt lq_wfmt_from_name(const char *name);
/* The format whose row has this ggml type id (lq_wfmt_traits.gguf_type); LQ_WFMT_COUNT if none
 * (a GGUF type we cannot run, or a negative id). */
lq_wfmt lq_wfmt_from_gguf_type(int ggml_type);

/* Whether the CPU has AVX2+FMA+F16C (the fast paths); false forces the _ref paths, which tests
 * and LQ_FORCE_REF=1 in the environment use. */
int lq_cpu_has_avx2(void);

/* Instruction-set levels of the kernels. AVX2 (+FMA, F16C) is the baseline fast path; AVX512
 * (F, BW, VL, VNNI) rows override some AVX2 slots and fall back to them elsewhere. */
typedef enum { LQ_ISA_SCALAR = 0, LQ_ISA_AVX2 = 1, LQ_ISA_AVX512 = 2, LQ_ISA_COUNT } lq_isa;
/* The best level this CPU runs, capped by LQ_FORCE_REF=1 (scalar) or LQ_FORCE_AVX2=1. */
lq_isa lq_cpu_isa(void);
const char *lq_isa_name(lq_isa isa);
/* The level whose rows lq_wfmt_get returns now (lq_cpu_isa() unless set). */
lq_isa lq_kernels_isa(void);
/* Use the rows of `isa`, clamped to lq_cpu_isa(); returns the level in use. For tests and benches
 * that compare levels in one process; not meant to change while kernels run on other threads. */
lq_isa lq_kernels_set_isa(lq_isa isa);

#ifdef __cplusplus
}
#endif
#endif
