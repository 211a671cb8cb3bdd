/* format_table.c - the traits table: one row per weight format (lq_format.h).
 *
 * The rows are static data written with designated initializers; only the two "fastest" slots
 * are filled once at first use, from the fast row below when the CPU has AVX2/FMA/F16C (and
 * LQ_FORCE_REF is unset), else from the _ref functions.
 *
 * Tolerance of matvec vs matvec_ref (|fast - ref| <= atol + rtol * sum_c |W[r][c] x[c]|):
 * the ref sums exact products in double (essentially the true value); the fast path sums in f32
 * with FMA, 8 lanes x 2 chains per row (the float formats now 4 chains of 8 or 16 lanes: fewer),
 * then a 5-level horizontal reduction, so each product passes through at most cols/16 + 5
 * roundings of 2^-24. For cols <= ~5000 that worst case is
 * <= 2e-5 of the absolute sum; real rounding errors are random and land one to two orders of
 * magnitude lower. rtol = 2e-5 still catches any wrong or dropped element (one product of a
 * 4099-wide row is ~2.4e-4 of the absolute sum). atol covers rows whose absolute sum is 0 or
 * denormal. F16/BF16 widen exactly to f32, so they get the same bound as F32.
 *
 * The weight-only quantized formats (W8A16, W4A16, FP8) convert every code exactly too (to
 * q - zero, or e4m3 / 2^8) and sum in the same f32 FMA chains; the scale is then applied once
 * per row (W8A16, FP8) or per group (W4A16: one more FMA per group), which adds one or two
 * roundings per product (W4A16: the per-group partial sums see gs/16 + 1 roundings and the
 * group total n_groups more, fewer than cols/16 in all). So the F32 bound holds with the same
 * margin. W8A8 is exact integer math in both paths with the same final f32 expression, so its
 * tolerance is 0: fast == ref bit for bit.
 *
 * roundtrip_rtol bounds |dequant(quantize(w)) - w| / max|w| of a group (row, or whole tensor
 * for FP8 per-tensor), for any scale dtype. Round to nearest errs by at most half a step, but a
 * scale rounded down to its dtype (relative error u <= 2^-8 for bf16) pushes the largest value
 * up to (qmax + 1/2)(1 + u) steps, which the clamp cuts to qmax: the worst error is
 * s_r (1/2 + (qmax + 1/2) u) with s_r <= amax (1 + u) / (qmax + 1/2):
 *   int8 (qmax + 1/2 = 127.5): (1 + u)(0.5 + 0.498) / 127.5 = 0.00786 -> 0.008;
 *   int4 symmetric: (1 + u)(0.5 + 0.029) / 7.5 = 0.0709; asymmetric, whose zero point is rounded
 *   from the unrounded scale, shifts the ends by up to 15u more steps of range/15 <= 2 amax/15:
 *   (1 + u)(0.5 + 15u) 2 / 15 = 0.0748 -> 0.075;
 *   E4M3: 3 mantissa bits, steps of 32 on [256, 448]: half a step is 16 of 448 scale units,
 *   16 / 448 (1 + u) = 0.0359 (the clamp's 448 u = 1.75 units is smaller) -> 0.036.
 *
 * GGUF legacy blocks (Q8_0 ... IQ4_NL, 32 weights, scale d and minimum m stored as binary16):
 * matvec/dequant tolerances as F32: every code times d is exact in f32 (<= 8-bit code times an
 * 11-bit significand), Q4_1/Q5_1 add m with one more rounding (2^-24 relative, as ggml does),
 * and the fast paths sum those values (or d times the block's sum of q x) in the same f32 FMA
 * chains, so the F32 bound holds; the fast dequant is bit-exact. Round trip, relative to the
 * block's max |w| = a, with the codes computed from the unrounded d but the binary16 d (and m)
 * stored (relative error 2^-11 while d is a normal binary16, i.e. a >= 0.008 for Q8_0):
 *   Q8_0: d = a / 127, rounding errs d / 2, the stored d moves the largest code by 127 d 2^-11:
 *     (0.5 + 0.062) / 127 = 0.0044 -> 0.005;
 *   Q4_0: d = m / -8 maps m to -8; a value of the other sign and the same magnitude would be +8,
 *     clamped to 7: one whole step, a / 8, plus 8 d 2^-11: 0.1255 -> 0.126;
 *   Q5_0: the same with 16 steps: 1/16 (1 + 16 2^-11) = 0.0630 -> 0.064;
 *   Q4_1: d = (max - min) / 15 <= 2a / 15, half a step plus 15 d 2^-11 plus m's a 2^-11:
 *     1/15 + 2 (15/15) 2^-11 + 2^-11 = 0.0681 -> 0.07;
 *   Q5_1: 1/31 + 2 2^-11 + 2^-11 = 0.0337 -> 0.035;
 *   IQ4_NL has no closed form: its scale is a least-squares fit weighted by x^2 over 15 trial
 *   scales and may clip the largest values; measured worst 0.139 over 60000 random blocks
 *   (uniform, u^5, normal) -> 0.15.
 *
 * K-quant super-blocks (Q2_K ... Q6_K, IQ4_XS; 256 weights, f16 super-scales d/dmin, small integer
 * sub-block scales sc and mins m). The ref's weights are ggml's f32 values, w = fl(fl(d sc) q)
 * (minus fl(dmin m) with one more rounding for Q2_K/Q4_K/Q5_K). The fast path sums code * x per
 * sub-block of 16/32 in f32 (4 chains of <= 8 FMAs, a 3-level add) and multiplies that sum by the
 * same fl(d sc) once; the sub-block totals run through two FMA chains of cols/64 links and a
 * 5-level reduction. Without a min every product sees at most cols/64 + 15 roundings, within the
 * F32 bound: Q3_K, Q6_K, IQ4_XS keep rtol 2e-5. With a min the fast path computes
 * sum_j fl(d sc_j) sum_{c in j} q_c x_c - sum_j fl(dmin m_j) sum_{c in j} x_c (llama.cpp's own
 * factoring), so its error is relative to sum_c (|d sc q_c x_c| + |dmin m x_c|) <= sum |w x| +
 * 2 sum |dmin m x|, not to sum |w x| alone: the min term of a symmetric sub-block is about its max
 * |w|, 2-3 times its mean |w|, so the error bound grows by about 5-7x -> rtol 5e-5 for Q2_K, Q4_K,
 * Q5_K (a contrived sub-block of 31 zeros and one negative outlier could need more; measured
 * errors on uniform and on arbitrary-byte blocks stay below 1e-7, and 5e-5 still catches a wrong
 * or dropped product of a 4096-wide row). dequant: same operations in the same order, bit-exact.
 * roundtrip_rtol (relative to the super-block's max |w|) has no closed form: scales come from
 * ggml's weighted searches, which may clip, and a sub-block's scale has 4-8 bits relative to the
 * super-scale; measured worst over 60000 random blocks per format (uniform, normal, u^5,
 * amplitudes 1-100 so the f16 super-scales are normal), times ~1.15: Q2_K 0.453 -> 0.5, Q3_K
 * 0.279 -> 0.32, Q4_K 0.113 -> 0.13, Q5_K 0.067 -> 0.08, Q6_K 0.023 -> 0.027, IQ4_XS 0.152 ->
 * 0.18. (With f16-subnormal super-scales, blocks of max |w| below ~0.03-0.25, the stored d loses
 * precision and the bound does not hold; ggml behaves the same.)

 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kern_internal.h"
#include "kq_internal.h"
#include "lq_blocks.h"

/* ---- buffer sizes: one function per layout, referenced by its rows ---------------------------- */

/* The widest W8A8 row whose int32 accumulation cannot overflow: 131072 * 128 * 127 < 2^31. */
#define W8A8_MAX_COLS 131072

static int set_sizes(size_t rb, int64_t a0, int64_t a1, size_t *row_bytes, int64_t *n_aux0, int64_t *n_aux1) {
    if (row_bytes) *row_bytes = rb;
    if (n_aux0) *n_aux0 = a0;
    if (n_aux1) *n_aux1 = a1;
    return 1;
}

static int sizes_f32(int64_t rows, int64_t cols, const lq_quant_params *p, size_t *rb, int64_t *a0, int64_t *a1) {
    (void)rows, (void)p;
    return set_sizes((size_t)cols * 4, 0, 0, rb, a0, a1);
}

static int sizes_16bit(int64_t rows, int64_t cols, const lq_quant_params *p, size_t *rb, int64_t *a0, int64_t *a1) {
    (void)rows, (void)p;
    return set_sizes((size_t)cols * 2, 0, 0, rb, a0, a1);
}

/* int8 codes packed in int32 words, one scale per row */
static int sizes_w8a16(int64_t rows, int64_t cols, const lq_quant_params *p, size_t *rb, int64_t *a0, int64_t *a1) {
    (void)p;
    return set_sizes((size_t)LQ_PACK8_ROW_BYTES(cols), rows, 0, rb, a0, a1);
}

/* one byte per weight, one scale per row (FP8 E4M3) */
static int sizes_byte(int64_t rows, int64_t cols, const lq_quant_params *p, size_t *rb, int64_t *a0, int64_t *a1) {
    (void)p;
    return set_sizes((size_t)cols, rows, 0, rb, a0, a1);
}

static int sizes_w8a8(int64_t rows, int64_t cols, const lq_quant_params *p, size_t *rb, int64_t *a0, int64_t *a1) {
    if (cols > W8A8_MAX_COLS) return 0;
    return sizes_byte(rows, cols, p, rb, a0, a1);
}

/* int4 codes packed in int32 words, a scale (and a zero point when asymmetric) per group */
static int sizes_w4a16(int64_t rows, int64_t cols, const lq_quant_params *p, size_t *rb, int64_t *a0, int64_t *a1) {
    const int64_t gs = (p && p->group_size > 0) ? p->group_size : cols;
    if (gs > cols || cols % gs != 0) return 0; /* compressed-tensors refuses a tail group */
    const int64_t n = rows * (cols / gs);
    return set_sizes((size_t)LQ_PACK4_ROW_BYTES(cols), n, (p && p->asym) ? n : 0, rb, a0, a1);
}

/* int3 codes packed densely in int32 words, a scale (and a zero point when asymmetric) per group */
static int sizes_w3a16(int64_t rows, int64_t cols, const lq_quant_params *p, size_t *rb, int64_t *a0, int64_t *a1) {
    const int64_t gs = (p && p->group_size > 0) ? p->group_size : cols;
    if (gs > cols || cols % gs != 0) return 0; /* compressed-tensors refuses a tail group */
    const int64_t n = rows * (cols / gs);
    return set_sizes((size_t)LQ_PACK3_ROW_BYTES(cols), n, (p && p->asym) ? n : 0, rb, a0, a1);
}

/* GGUF legacy blocks: cols / 32 blocks of B bytes per row (ggml refuses a partial block), no aux */
static int sizes_blocks(int64_t cols, size_t bytes, size_t *rb, int64_t *a0, int64_t *a1) {
    if (cols % LQ_QK != 0) return 0;
    return set_sizes((size_t)(cols / LQ_QK) * bytes, 0, 0, rb, a0, a1);
}
#define SIZES_BLK(B)                                                                               \
    static int sizes_blk##B(int64_t rows, int64_t cols, const lq_quant_params *p, size_t *rb,      \
                            int64_t *a0, int64_t *a1) {                                            \
        (void)rows, (void)p;                                                                       \
        return sizes_blocks(cols, B, rb, a0, a1);                                                  \
    }
SIZES_BLK(34) /* Q8_0 */
SIZES_BLK(18) /* Q4_0, IQ4_NL */
SIZES_BLK(20) /* Q4_1 */
SIZES_BLK(22) /* Q5_0 */
SIZES_BLK(24) /* Q5_1 */

static lq_wfmt_traits g_traits[LQ_WFMT_COUNT] = {
    [LQ_WFMT_F32] = {
        .name = "f32",
        .bits_per_weight = 32.0,
        .matvec_ref = lq_matvec_f32_ref,
        .dequant_ref = lq_dequant_f32_ref,
        .tol_atol = 1e-6,
        .tol_rtol = 2e-5,
        .sizes = sizes_f32,
        .gguf_type = 0,
    },
    [LQ_WFMT_F16] = {
        .name = "f16",
        .bits_per_weight = 16.0,
        .matvec_ref = lq_matvec_f16_ref,
        .dequant_ref = lq_dequant_f16_ref,
        .tol_atol = 1e-6,
        .tol_rtol = 2e-5,
        .sizes = sizes_16bit,
        .gguf_type = 1,
    },
    [LQ_WFMT_BF16] = {
        .name = "bf16",
        .bits_per_weight = 16.0,
        .matvec_ref = lq_matvec_bf16_ref,
        .dequant_ref = lq_dequant_bf16_ref,
        .tol_atol = 1e-6,
        .tol_rtol = 2e-5,
        .sizes = sizes_16bit,
        .gguf_type = 30,
    },
    /* bits_per_weight of the quantized rows: payload plus one bf16 scale per row of 4096 (per
     * channel) or per group of 128 (W4A16), the common configurations. */
    [LQ_WFMT_W8A16] = {
        .name = "w8a16",
        .bits_per_weight = 8.0 + 16.0 / 4096,
        .matvec_ref = lq_matvec_w8a16_ref,
        .dequant_ref = lq_dequant_w8a16_ref,
        .tol_atol = 1e-6,
        .tol_rtol = 2e-5,
        .quantize_ref = lq_quantize_w8a16_ref,
        .roundtrip_rtol = 0.008,
        .sizes = sizes_w8a16,
        .gguf_type = -1,
        .ct = {.scheme = "W8A16", .format = "pack-quantized", .bits = 8, .packed = 1},
    },
    [LQ_WFMT_W4A16] = {
        .name = "w4a16",
        .bits_per_weight = 4.0 + 16.0 / 128,
        .matvec_ref = lq_matvec_w4a16_ref,
        .dequant_ref = lq_dequant_w4a16_ref,
        .tol_atol = 1e-6,
        .tol_rtol = 2e-5,
        .quantize_ref = lq_quantize_w4a16_ref,
        .roundtrip_rtol = 0.075,
        .sizes = sizes_w4a16,
        .gguf_type = -1,
        .ct = {.scheme = "W4A16", .format = "pack-quantized", .bits = 4, .packed = 1, .grouped = 1},
    },
    /* As W4A16, with half-step bounds of 3.5 steps (symmetric: amax / 3.5; asymmetric: range / 7
     * and a zero point rounded from the unrounded scale, 7u more steps):
     *   symmetric (1 + u)(0.5 + 3.5u) / 3.5 = 0.1473; asymmetric (1 + u)(0.5 + 7u) 2 / 7 = 0.1513
     *   -> 0.152. matvec: the W4A16 argument (a per-group f32 sum scaled once). */
    [LQ_WFMT_W3A16] = {
        .name = "w3a16",
        .bits_per_weight = 3.0 + 16.0 / 128,
        .matvec_ref = lq_matvec_w3a16_ref,
        .dequant_ref = lq_dequant_w3a16_ref,
        .tol_atol = 1e-6,
        .tol_rtol = 2e-5,
        .quantize_ref = lq_quantize_w3a16_ref,
        .roundtrip_rtol = 0.152,
        .sizes = sizes_w3a16,
        .gguf_type = -1,
        .ct = {.scheme = "W3A16", .format = "pack-quantized", .bits = 3, .packed = 1, .grouped = 1},
    },
    [LQ_WFMT_FP8_E4M3] = {
        .name = "fp8_e4m3",
        .bits_per_weight = 8.0 + 16.0 / 4096,
        .matvec_ref = lq_matvec_fp8_ref,
        .dequant_ref = lq_dequant_fp8_ref,
        .tol_atol = 1e-6,
        .tol_rtol = 2e-5,
        .quantize_ref = lq_quantize_fp8_ref,
        .roundtrip_rtol = 0.036,
        .sizes = sizes_byte,
        .gguf_type = -1,
        .ct = {.scheme = "FP8", .format = "float-quantized", .bits = 8, .float_type = 1},
    },
    [LQ_WFMT_W8A8] = {
        .name = "w8a8",
        .bits_per_weight = 8.0 + 16.0 / 4096,
        .matvec_ref = lq_matvec_w8a8_ref,
        .dequant_ref = lq_dequant_w8a8_ref,
        .tol_atol = 0.0,
        .tol_rtol = 0.0,
        .quantize_ref = lq_quantize_w8a8_ref,
        .roundtrip_rtol = 0.008,
        .sizes = sizes_w8a8,
        .gguf_type = -1,
        .ct = {.scheme = "W8A8", .format = "int-quantized", .bits = 8, .dynamic_token_act = 1},
    },
    /* GGUF legacy blocks: 32 weights per block, the scale (and minimum) inside it, so
     * bits_per_weight is exact: (block bytes * 8) / 32. */
    [LQ_WFMT_Q8_0] = {
        .name = "q8_0",
        .bits_per_weight = 8.5,
        .matvec_ref = lq_matvec_q8_0_ref,
        .dequant_ref = lq_dequant_q8_0_ref,
        .tol_atol = 1e-6,
        .tol_rtol = 2e-5,
        .quantize_ref = lq_quantize_q8_0_ref,
        .roundtrip_rtol = 0.005,
        .sizes = sizes_blk34,
        .gguf_type = 8,
    },
    [LQ_WFMT_Q4_0] = {
        .name = "q4_0",
        .bits_per_weight = 4.5,
        .matvec_ref = lq_matvec_q4_0_ref,
        .dequant_ref = lq_dequant_q4_0_ref,
        .tol_atol = 1e-6,
        .tol_rtol = 2e-5,
        .quantize_ref = lq_quantize_q4_0_ref,
        .roundtrip_rtol = 0.126,
        .sizes = sizes_blk18,
        .gguf_type = 2,
    },
    [LQ_WFMT_Q4_1] = {
        .name = "q4_1",
        .bits_per_weight = 5.0,
        .matvec_ref = lq_matvec_q4_1_ref,
        .dequant_ref = lq_dequant_q4_1_ref,
        .tol_atol = 1e-6,
        .tol_rtol = 2e-5,
        .quantize_ref = lq_quantize_q4_1_ref,
        .roundtrip_rtol = 0.07,
        .sizes = sizes_blk20,
        .gguf_type = 3,
    },
    [LQ_WFMT_Q5_0] = {
        .name = "q5_0",
        .bits_per_weight = 5.5,
        .matvec_ref = lq_matvec_q5_0_ref,
        .dequant_ref = lq_dequant_q5_0_ref,
        .tol_atol = 1e-6,
        .tol_rtol = 2e-5,
        .quantize_ref = lq_quantize_q5_0_ref,
        .roundtrip_rtol = 0.064,
        .sizes = sizes_blk22,
        .gguf_type = 6,
    },
    [LQ_WFMT_Q5_1] = {
        .name = "q5_1",
        .bits_per_weight = 6.0,
        .matvec_ref = lq_matvec_q5_1_ref,
        .dequant_ref = lq_dequant_q5_1_ref,
        .tol_atol = 1e-6,
        .tol_rtol = 2e-5,
        .quantize_ref = lq_quantize_q5_1_ref,
        .roundtrip_rtol = 0.035,
        .sizes = sizes_blk24,
        .gguf_type = 7,
    },
    [LQ_WFMT_IQ4_NL] = {
        .name = "iq4_nl",
        .bits_per_weight = 4.5,
        .matvec_ref = lq_matvec_iq4_nl_ref,
        .dequant_ref = lq_dequant_iq4_nl_ref,
        .tol_atol = 1e-6,
        .tol_rtol = 2e-5,
        .quantize_ref = lq_quantize_iq4_nl_ref,
        .roundtrip_rtol = 0.15,
        .sizes = sizes_blk18,
        .gguf_type = 20,
    },    /* llama.cpp's K-quant super-blocks (fmt_kquant.c, fmt_kquant_avx2.c, kq_quantize.c): 256
     * weights per block with every scale inside it, so bits_per_weight is exact: block bytes * 8 /
     * 256. Tolerances and round-trip bounds: the comment at the top of this file. */
    [LQ_WFMT_Q2_K] = {
        .name = "q2_K",
        .bits_per_weight = 2.625,
        .matvec_ref = lq_matvec_q2_K_ref,
        .dequant_ref = lq_dequant_q2_K_ref,
        .tol_atol = 1e-6,
        .tol_rtol = 5e-5,
        .quantize_ref = lq_quantize_q2_K_ref,
        .roundtrip_rtol = 0.5,
        .sizes = lq_sizes_q2_K,
        .gguf_type = 10,
    },
    [LQ_WFMT_Q3_K] = {
        .name = "q3_K",
        .bits_per_weight = 3.4375,
        .matvec_ref = lq_matvec_q3_K_ref,
        .dequant_ref = lq_dequant_q3_K_ref,
        .tol_atol = 1e-6,
        .tol_rtol = 2e-5,
        .quantize_ref = lq_quantize_q3_K_ref,
        .roundtrip_rtol = 0.32,
        .sizes = lq_sizes_q3_K,
        .gguf_type = 11,
    },
    [LQ_WFMT_Q4_K] = {
        .name = "q4_K",
        .bits_per_weight = 4.5,
        .matvec_ref = lq_matvec_q4_K_ref,
        .dequant_ref = lq_dequant_q4_K_ref,
        .tol_atol = 1e-6,
        .tol_rtol = 5e-5,
        .quantize_ref = lq_quantize_q4_K_ref,
        .roundtrip_rtol = 0.13,
        .sizes = lq_sizes_q4_K,
        .gguf_type = 12,
    },
    [LQ_WFMT_Q5_K] = {
        .name = "q5_K",
        .bits_per_weight = 5.5,
        .matvec_ref = lq_matvec_q5_K_ref,
        .dequant_ref = lq_dequant_q5_K_ref,
        .tol_atol = 1e-6,
        .tol_rtol = 5e-5,
        .quantize_ref = lq_quantize_q5_K_ref,
        .roundtrip_rtol = 0.08,
        .sizes = lq_sizes_q5_K,
        .gguf_type = 13,
    },
    [LQ_WFMT_Q6_K] = {
        .name = "q6_K",
        .bits_per_weight = 6.5625,
        .matvec_ref = lq_matvec_q6_K_ref,
        .dequant_ref = lq_dequant_q6_K_ref,
        .tol_atol = 1e-6,
        .tol_rtol = 2e-5,
        .quantize_ref = lq_quantize_q6_K_ref,
        .roundtrip_rtol = 0.027,
        .sizes = lq_sizes_q6_K,
        .gguf_type = 14,
    },
    [LQ_WFMT_IQ4_XS] = {
        .name = "iq4_xs",
        .bits_per_weight = 4.25,
        .matvec_ref = lq_matvec_iq4_xs_ref,
        .dequant_ref = lq_dequant_iq4_xs_ref,
        .tol_atol = 1e-6,
        .tol_rtol = 2e-5,
        .quantize_ref = lq_quantize_iq4_xs_ref,
        .roundtrip_rtol = 0.18,
        .sizes = lq_sizes_iq4_xs,
        .gguf_type = 23,
    },
};

/* Prefill tiles of the formats whose product is not "dequantize, then sgemm" (ref, fast). */
static const struct {
    lq_matmul_tile_fn ref, fast;
} g_tiles[LQ_WFMT_COUNT] = {
    [LQ_WFMT_W8A8] = {.ref = lq_matmul_tile_w8a8_ref, .fast = lq_matmul_tile_w8a8_avx2},
};

/* The integer-activation path of each row (lq_wfmt_traits.act, matvec_q, matvec_q_ref, act_tol;
 * empty: f32 activations only). act_tol: the activation's quantization error weighted by |W|
 * (lq_act_traits.err_amax + err_rel, as every code can sit at its block's amax) plus the row's
 * own block arithmetic on top. Grouped by family so rows added at the same time stay apart. */
/* Q8_K: half a step of amax / 127 (d is f32: no binary16 rounding), plus the f32 block sums. */
#define ACT_TOL_Q8K (0.5 / 127.0 * (1.0 + 1e-5) + 1e-6 + 1e-5)
#define ACT_TOL_Q8 (0.5 / 127.0 * (1.0 + 1.0 / 1024) + 1.0 / 2048 + 2e-6)
static const struct {
    lq_act_fmt act;
    lq_matvec_q_fn ref, fast;
    double tol;
    lq_gemm_q_fn gemm; /* fast multi-token twin of `fast` (bit-identical), optional */
    /* Taken only under LQ_ACT_MODE_ALL (LQ_INT_ACT=all): the path's end-to-end loss exceeds the budget (KLD of the
     * integer path against f32 activations on SmolLM2-135M <= 1e-4; docs/RESULTS.md), so the
     * format keeps f32 activations by default; the row stays for measurement. */
    int opt_in;
} g_int[LQ_WFMT_COUNT] = {
    /* -- GGUF legacy blocks x Q8_0 / Q8_1 activations (fmt_q*.c, fmt_iq4_nl.c) -- */
    [LQ_WFMT_Q8_0] = {.act = LQ_ACT_Q8_0, .ref = lq_matvec_q_q8_0_ref, .fast = lq_matvec_q_q8_0_avx2,
                      .tol = ACT_TOL_Q8, .gemm = lq_gemm_q_q8_0_avx2},
    [LQ_WFMT_Q4_0] = {.act = LQ_ACT_Q8_0, .ref = lq_matvec_q_q4_0_ref, .fast = lq_matvec_q_q4_0_avx2,
                      .tol = ACT_TOL_Q8, .gemm = lq_gemm_q_q4_0_avx2},
    [LQ_WFMT_Q5_0] = {.act = LQ_ACT_Q8_0, .ref = lq_matvec_q_q5_0_ref, .fast = lq_matvec_q_q5_0_avx2,
                      .tol = ACT_TOL_Q8, .gemm = lq_gemm_q_q5_0_avx2},
    [LQ_WFMT_IQ4_NL] = {.act = LQ_ACT_Q8_0, .ref = lq_matvec_q_iq4_nl_ref,
                        .fast = lq_matvec_q_iq4_nl_avx2, .tol = ACT_TOL_Q8,
                        .gemm = lq_gemm_q_iq4_nl_avx2},
    /* the minimum m meets Q8_1's s = d_x sum(q_x) rounded to binary16 (half an ulp: 2^-11 of
     * |s| <= 32 amax): |m| amax / 64 more, and sum_c |W| >= |m| (the minimum's own element is m
     * exactly), so 1/64 on top of ACT_TOL_Q8 covers even a block of zeros and one minimum. */
    [LQ_WFMT_Q4_1] = {.act = LQ_ACT_Q8_1, .ref = lq_matvec_q_q4_1_ref, .fast = lq_matvec_q_q4_1_avx2,
                      .tol = ACT_TOL_Q8 + 1.0 / 64, .gemm = lq_gemm_q_q4_1_avx2},
    [LQ_WFMT_Q5_1] = {.act = LQ_ACT_Q8_1, .ref = lq_matvec_q_q5_1_ref, .fast = lq_matvec_q_q5_1_avx2,
                      .tol = ACT_TOL_Q8 + 1.0 / 64, .gemm = lq_gemm_q_q5_1_avx2},


    /* -- K-quant super-blocks and IQ4_XS x Q8_K activations (fmt_kquant*.c) -- */
    [LQ_WFMT_Q2_K] = {.act = LQ_ACT_Q8_K, .ref = lq_matvec_q_q2_K_ref, .fast = lq_matvec_q_q2_K_avx2,
                        .tol = ACT_TOL_Q8K},
    [LQ_WFMT_Q3_K] = {.act = LQ_ACT_Q8_K, .ref = lq_matvec_q_q3_K_ref, .fast = lq_matvec_q_q3_K_avx2,
                        .tol = ACT_TOL_Q8K},
    [LQ_WFMT_Q4_K] = {.act = LQ_ACT_Q8_K, .ref = lq_matvec_q_q4_K_ref, .fast = lq_matvec_q_q4_K_avx2,
                        .tol = ACT_TOL_Q8K, .gemm = lq_gemm_q_q4_K_avx2},
    [LQ_WFMT_Q5_K] = {.act = LQ_ACT_Q8_K, .ref = lq_matvec_q_q5_K_ref, .fast = lq_matvec_q_q5_K_avx2,
                        .tol = ACT_TOL_Q8K, .gemm = lq_gemm_q_q5_K_avx2},
    [LQ_WFMT_Q6_K] = {.act = LQ_ACT_Q8_K, .ref = lq_matvec_q_q6_K_ref, .fast = lq_matvec_q_q6_K_avx2,
                        .tol = ACT_TOL_Q8K, .gemm = lq_gemm_q_q6_K_avx2},
    [LQ_WFMT_IQ4_XS] = {.act = LQ_ACT_Q8_K, .ref = lq_matvec_q_iq4_xs_ref, .fast = lq_matvec_q_iq4_xs_avx2,
                        .tol = ACT_TOL_Q8K},


    /* -- compressed-tensors formats (fmt_w8a16*.c, fmt_w4a16*.c, fmt_fp8*.c, fmt_w8a8*.c) -- */
    /* the weights' codes are exact integers, so act_tol is the Q8_0 activation error alone.
     * Opt-in: Q8_0 activations cost SmolLM2-135M a KLD of 4e-3 against f32 activations (W4A16
     * g32; llama.cpp's whole Q8_0 model costs 4.2e-3), 40x the budget. */
    [LQ_WFMT_W8A16] = {.act = LQ_ACT_Q8_0, .ref = lq_matvec_q_w8a16_ref, .fast = lq_matvec_q_w8a16_avx2,
                       .tol = ACT_TOL_Q8, .opt_in = 1},
    [LQ_WFMT_W4A16] = {.act = LQ_ACT_Q8_0, .ref = lq_matvec_q_w4a16_ref, .fast = lq_matvec_q_w4a16_avx2,
                       .tol = ACT_TOL_Q8, .opt_in = 1},


};

/* The AVX2 twins of each row (NULL: the format has no fast path yet). */
static const struct {
    lq_matvec_fn matvec;
    lq_dequant_fn dequant;
    lq_gemm_fn gemm; /* batched decode without sgemm's tile copy (gemm_small_avx2_tmpl.h) */
} g_fast[LQ_WFMT_COUNT] = {
    [LQ_WFMT_F32] = {.matvec = lq_matvec_f32_avx2, .dequant = lq_dequant_f32_avx2, .gemm = lq_gemm_f32_avx2},
    [LQ_WFMT_F16] = {.matvec = lq_matvec_f16_avx2, .dequant = lq_dequant_f16_avx2, .gemm = lq_gemm_f16_avx2},
    [LQ_WFMT_BF16] = {.matvec = lq_matvec_bf16_avx2, .dequant = lq_dequant_bf16_avx2, .gemm = lq_gemm_bf16_avx2},
    [LQ_WFMT_W8A16] = {.matvec = lq_matvec_w8a16_avx2, .dequant = lq_dequant_w8a16_avx2},
    [LQ_WFMT_W4A16] = {.matvec = lq_matvec_w4a16_avx2, .dequant = lq_dequant_w4a16_avx2},
    [LQ_WFMT_W3A16] = {.matvec = lq_matvec_w3a16_avx2, .dequant = lq_dequant_w3a16_avx2},
    [LQ_WFMT_FP8_E4M3] = {.matvec = lq_matvec_fp8_avx2, .dequant = lq_dequant_fp8_avx2},
    [LQ_WFMT_W8A8] = {.matvec = lq_matvec_w8a8_avx2, .dequant = lq_dequant_w8a8_avx2},
    [LQ_WFMT_Q8_0] = {.matvec = lq_matvec_q8_0_avx2, .dequant = lq_dequant_q8_0_avx2},
    [LQ_WFMT_Q4_0] = {.matvec = lq_matvec_q4_0_avx2, .dequant = lq_dequant_q4_0_avx2},
    [LQ_WFMT_Q4_1] = {.matvec = lq_matvec_q4_1_avx2, .dequant = lq_dequant_q4_1_avx2},
    [LQ_WFMT_Q5_0] = {.matvec = lq_matvec_q5_0_avx2, .dequant = lq_dequant_q5_0_avx2},
    [LQ_WFMT_Q5_1] = {.matvec = lq_matvec_q5_1_avx2, .dequant = lq_dequant_q5_1_avx2},
    [LQ_WFMT_IQ4_NL] = {.matvec = lq_matvec_iq4_nl_avx2, .dequant = lq_dequant_iq4_nl_avx2},
    [LQ_WFMT_Q2_K] = {.matvec = lq_matvec_q2_K_avx2, .dequant = lq_dequant_q2_K_avx2},
    [LQ_WFMT_Q3_K] = {.matvec = lq_matvec_q3_K_avx2, .dequant = lq_dequant_q3_K_avx2},
    [LQ_WFMT_Q4_K] = {.matvec = lq_matvec_q4_K_avx2, .dequant = lq_dequant_q4_K_avx2},
    [LQ_WFMT_Q5_K] = {.matvec = lq_matvec_q5_K_avx2, .dequant = lq_dequant_q5_K_avx2},
    [LQ_WFMT_Q6_K] = {.matvec = lq_matvec_q6_K_avx2, .dequant = lq_dequant_q6_K_avx2},
    [LQ_WFMT_IQ4_XS] = {.matvec = lq_matvec_iq4_xs_avx2, .dequant = lq_dequant_iq4_xs_avx2},
};

/* The AVX-512 (F/BW/VL/VNNI) twins, *_avx512.c: each non-NULL slot replaces the AVX2 one on a
 * CPU that has them; a NULL slot keeps the AVX2 path. They meet the same tolerances as the AVX2
 * twins (tests run both levels against the _ref). */
static const struct {
    lq_matvec_fn matvec;
    lq_matvec_q_fn matvec_q;
    lq_gemm_q_fn gemm_q;
    lq_matmul_tile_fn tile; /* replaces g_tiles' fast tile */
    lq_gemm_fn gemm;        /* replaces g_fast's batched-decode gemm */
} g_fast512[LQ_WFMT_COUNT] = {
    /* -- float and compressed-tensors formats (fmt_w8a16*_avx512.c, fmt_w4a16*_avx512.c, fmt_fp8_avx512.c) -- */
    /* F32/F16/BF16 have no matvec twin: it is memory bound, and once the AVX2 loop walked one
     * row at a time (matvec_avx2_tmpl.h) a 512-bit twin measured no faster (bench_isa cold,
     * 0.8-1.2x in noise: Zen 4 runs 512-bit ops as two 256-bit halves). Their batched-decode
     * gemm is compute bound from B = 8 on, and an Intel Xeon's two 512-bit FMA units run it at
     * twice the AVX2 rate (fmt_float_gemm_avx512.c). */
    [LQ_WFMT_F32] = {.gemm = lq_gemm_f32_avx512},
    [LQ_WFMT_F16] = {.gemm = lq_gemm_f16_avx512},
    [LQ_WFMT_BF16] = {.gemm = lq_gemm_bf16_avx512},
    [LQ_WFMT_W8A16] = {.matvec = lq_matvec_w8a16_avx512, .matvec_q = lq_matvec_q_w8a16_avx512,
                       .gemm_q = lq_gemm_q_w8a16_avx512 /* runs only under LQ_INT_ACT=all */},
    [LQ_WFMT_W4A16] = {.matvec = lq_matvec_w4a16_avx512 /* integer path: g_int512 */},
    [LQ_WFMT_FP8_E4M3] = {.matvec = lq_matvec_fp8_avx512},
    /* vpdpbusd: 64 int8 products per instruction where AVX2 needs four for 32; bit-exact */
    [LQ_WFMT_W8A8] = {.matvec = lq_matvec_w8a8_avx512, .tile = lq_matmul_tile_w8a8_avx512},


    /* -- GGUF legacy blocks x Q8_0 / Q8_1 (fmt_legacy_avx512.c) -- */
    /* same tolerances as the AVX2 rows: exact int32 block sums (vpdpbusd), only the f32 order
     * of the scaled block sums differs from the ref; gemm_q equals matvec_q bit for bit */
#define LEGACY512(F, n) [LQ_WFMT_##F] = {.matvec_q = lq_matvec_q_##n##_avx512, .gemm_q = lq_gemm_q_##n##_avx512}
    LEGACY512(Q8_0, q8_0),
    LEGACY512(Q4_0, q4_0),
    LEGACY512(Q4_1, q4_1),
    LEGACY512(Q5_0, q5_0),
    LEGACY512(Q5_1, q5_1),
    LEGACY512(IQ4_NL, iq4_nl),
#undef LEGACY512


    /* -- K-quant super-blocks and IQ4_XS x Q8_K (fmt_kquant_avx512.c, fmt_kquant_lo_avx512.c):
     * maddubs + VNNI vpdpwssd on 64 codes, 16 f32 lanes per token (kq_avx512_tmpl.h); the int32
     * block sums are exact, fewer f32 roundings than the AVX2 twins, same ACT_TOL_Q8K. Q2_K,
     * Q3_K and IQ4_XS also get the multi-token gemm_q the AVX2 level lacks. -- */
    [LQ_WFMT_Q2_K] = {.matvec_q = lq_matvec_q_q2_K_avx512, .gemm_q = lq_gemm_q_q2_K_avx512},
    [LQ_WFMT_Q3_K] = {.matvec_q = lq_matvec_q_q3_K_avx512, .gemm_q = lq_gemm_q_q3_K_avx512},
    [LQ_WFMT_Q4_K] = {.matvec_q = lq_matvec_q_q4_K_avx512, .gemm_q = lq_gemm_q_q4_K_avx512},
    [LQ_WFMT_Q5_K] = {.matvec_q = lq_matvec_q_q5_K_avx512, .gemm_q = lq_gemm_q_q5_K_avx512},
    [LQ_WFMT_Q6_K] = {.matvec_q = lq_matvec_q_q6_K_avx512, .gemm_q = lq_gemm_q_q6_K_avx512},
    [LQ_WFMT_IQ4_XS] = {.matvec_q = lq_matvec_q_iq4_xs_avx512, .gemm_q = lq_gemm_q_iq4_xs_avx512},

};

/* Integer paths the AVX-512 level runs instead of the row's g_int entry (act layout, spec and
 * tolerance included): W4A16 x Q16 activations (fmt_w4a16_q16*.c), on by default. Its measured
 * end-to-end loss is within issue 17's budget (docs/RESULTS.md, "Q16 activations"), and vpdpwssd
 * runs int16 pairs at twice the rate of f32 FMAs; the AVX2 level has no such instruction
 * (vpmaddwd is one f32 FMA's rate), so it keeps f32 activations, Q8_0 opt-in. */
#define ACT_TOL_Q16 (0.5 / 32767.0 * (1.0 + 1e-5) + 1e-6 + 2e-6)
static const struct {
    lq_act_fmt act;
    lq_matvec_q_fn ref, fast;
    double tol;
    int decode_only;
} g_int512[LQ_WFMT_COUNT] = {
    /* decode only: a Q16 prefill tile (4 vpdpwssd + 3 float ops per 128 columns and token) ran at
     * sgemm's rate in bench_ct_int but 0.72-0.80 of dequantize + sgemm at pp512 on SmolLM2
     * (docs/PERFORMANCE.md "Q16 activations"), so prefill keeps f32 activations */
    [LQ_WFMT_W4A16] = {.act = LQ_ACT_Q16, .ref = lq_matvec_q_w4a16_q16_ref, .fast = lq_matvec_q_w4a16_q16_avx512,
                       .tol = ACT_TOL_Q16, .decode_only = 1},
};

/* The rows as each ISA level runs them, filled once; lq_wfmt_get serves the level in use. */
static lq_wfmt_traits g_rows[LQ_ISA_COUNT][LQ_WFMT_COUNT];
static atomic_int g_isa;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void fill_level(lq_isa isa) {
    const int fast = isa >= LQ_ISA_AVX2, wide = isa >= LQ_ISA_AVX512;
    for (int f = 0; f < LQ_WFMT_COUNT; f++) {
        lq_wfmt_traits *t = &g_rows[isa][f];
        *t = g_traits[f];
        t->matvec = (fast && g_fast[f].matvec) ? g_fast[f].matvec : t->matvec_ref;
        t->dequant = (fast && g_fast[f].dequant) ? g_fast[f].dequant : t->dequant_ref;
        t->gemm = fast ? g_fast[f].gemm : NULL;
        t->matmul_tile = (fast && g_tiles[f].fast) ? g_tiles[f].fast : g_tiles[f].ref;
        t->act = g_int[f].act;
        t->act_opt_in = g_int[f].opt_in;
        t->matvec_q_ref = g_int[f].ref;
        t->matvec_q = (fast && g_int[f].fast) ? g_int[f].fast : g_int[f].ref;
        t->act_tol = g_int[f].tol;
        t->gemm_q = fast ? g_int[f].gemm : NULL;
        if (!wide) continue;
        if (g_fast512[f].matvec) t->matvec = g_fast512[f].matvec;
        if (g_fast512[f].tile) t->matmul_tile = g_fast512[f].tile;
        if (g_fast512[f].gemm) t->gemm = g_fast512[f].gemm;
        if (g_fast512[f].matvec_q && t->act != LQ_ACT_NONE) t->matvec_q = g_fast512[f].matvec_q;
        if (g_fast512[f].gemm_q && t->act != LQ_ACT_NONE) t->gemm_q = g_fast512[f].gemm_q;
        if (g_int512[f].act != LQ_ACT_NONE) {
            t->act = g_int512[f].act;
            t->act_opt_in = 0;
            t->matvec_q_ref = g_int512[f].ref;
            t->matvec_q = g_int512[f].fast;
            t->gemm_q = NULL;
            t->act_tol = g_int512[f].tol;
            t->act_decode_only = g_int512[f].decode_only;
        }
    }
}

static void choose_paths(void) {
    const lq_isa best = lq_cpu_isa();
    for (int i = 0; i <= (int)best; i++) fill_level((lq_isa)i);
    atomic_store(&g_isa, (int)best);
    lq_act_select(best >= LQ_ISA_AVX2);
}

const lq_wfmt_traits *lq_wfmt_get(lq_wfmt f) {
    if ((int)f < 0 || f >= LQ_WFMT_COUNT) return NULL;
    pthread_once(&g_once, choose_paths);
    return &g_rows[atomic_load_explicit(&g_isa, memory_order_relaxed)][f];
}

lq_isa lq_kernels_isa(void) {
    pthread_once(&g_once, choose_paths);
    return (lq_isa)atomic_load(&g_isa);
}

lq_isa lq_kernels_set_isa(lq_isa isa) {
    pthread_once(&g_once, choose_paths);
    const lq_isa best = lq_cpu_isa();
    if ((int)isa < 0) isa = LQ_ISA_SCALAR;
    if (isa > best) isa = best;
    atomic_store(&g_isa, (int)isa);
    lq_act_select(isa >= LQ_ISA_AVX2);
    return isa;
}

lq_wfmt lq_wfmt_from_gguf_type(int ggml_type) {
    if (ggml_type < 0) return LQ_WFMT_COUNT;
    for (int f = 0; f < LQ_WFMT_COUNT; f++)
        if (g_traits[f].gguf_type == ggml_type) return (lq_wfmt)f;
    return LQ_WFMT_COUNT;
}

lq_wfmt lq_wfmt_from_name(const char *name) {
    if (!name) return LQ_WFMT_COUNT;
    for (int f = 0; f < LQ_WFMT_COUNT; f++)
        if (g_traits[f].name && strcmp(g_traits[f].name, name) == 0) return (lq_wfmt)f;
    return LQ_WFMT_COUNT;
}

/* ---- buffer sizes ---------------------------------------------------------------------------- */

int lq_wfmt_sizes(lq_wfmt f, int64_t rows, int64_t cols, const lq_quant_params *p,
                  size_t *row_bytes, int64_t *n_aux0, int64_t *n_aux1) {
    if ((int)f < 0 || f >= LQ_WFMT_COUNT || !g_traits[f].sizes || rows <= 0 || cols <= 0) return 0;
    return g_traits[f].sizes(rows, cols, p, row_bytes, n_aux0, n_aux1);
}
