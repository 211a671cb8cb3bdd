/* fmt_iq4_nl.c - GGUF IQ4_NL: blocks of 32 4-bit indices into a fixed non-uniform grid of 16
 * values (LQ_IQ4NL_VALUES), nibbles packed as Q4_0, after a binary16 scale d (lq_blocks.h).
 * W = d * grid[u]. The block codec: ggml's dequantize_row_iq4_nl and quantize_iq4_nl without an
 * importance matrix (quantize_row_iq4_nl_ref calls the same; llama-quantize runs quantize_iq4_nl
 * with quant_weights NULL when it has no imatrix), i.e. quantize_row_iq4_nl_impl with one block
 * per super-block, ntry = 7, the same f32 operations in the same order:
 *   weights w = x^2; m = the first element of largest |x|; a block with |m| < 1e-15 gets d = 0;
 *   d = m / 127, codes = nearest grid point of x / d, then the least-squares scale
 *   d = sum w q x / sum w q^2 for those codes (0 if sum w q^2 is 0), and 15 more candidates id = (t - 127) / m,
 *   t = -7..7, each kept when it lowers the weighted error (sumqx^2 > best * sumq2); the stored
 *   d is the winner rounded to binary16, and the final codes are nearest(x / winner). */
#include <math.h>

#include "kern_internal.h"
#include "lq_blocks.h"

static const int8_t k_values[16] = LQ_IQ4NL_VALUES;

#define IQ4NL_NTRY 7
#define IQ4NL_EPS 1e-15f /* ggml's GROUP_MAX_EPS */

static void iq4_nl_decode(const uint8_t *b, float *out) {
    const float d = lq_blk_f16(b);
    for (int j = 0; j < 16; j++) {
        out[j] = d * (float)k_values[b[2 + j] & 0x0f];
        out[j + 16] = d * (float)k_values[b[2 + j] >> 4];
    }
}

/* Index of the grid value nearest v (ggml's best_index_int8: a tie goes to the upper one). */
static int nearest_index(float v) {
    if (v <= (float)k_values[0]) return 0;
    if (v >= (float)k_values[15]) return 15;
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (v < (float)k_values[mid]) hi = mid;
        else lo = mid;
    }
    return v - (float)k_values[hi - 1] < (float)k_values[hi] - v ? hi - 1 : hi;
}

/* sum w q x and sum w q^2 over the block for the codes nearest id * x, each product rounded in
 * ggml's order ((w q) x, (w q) q) and summed in f32. */
static void weighted_sums(const float *x, const float *w, float id, float *sumqx, float *sumq2) {
    float sx = 0.0f, s2 = 0.0f;
    for (int j = 0; j < LQ_QK; j++) {
        const float q = (float)k_values[nearest_index(id * x[j])];
        const float wq = w[j] * q;
        const float a = wq * x[j], c = wq * q;
        sx += a;
        s2 += c;
    }
    *sumqx = sx;
    *sumq2 = s2;
}

/* The block's scale (before rounding to binary16) for error weights w; 0 for a block of (near)
 * zeros. */
static float iq4_nl_scale(const float *x, const float *w) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < LQ_QK; j++) {
        const float a = fabsf(x[j]);
        if (a > amax) {
            amax = a;
            max = x[j];
        }
    }
    if (amax < IQ4NL_EPS) return 0.0f;
    float d = -max / (float)k_values[0];
    float sumqx, sumq2;
    weighted_sums(x, w, 1.0f / d, &sumqx, &sumq2);
    d = sumq2 > 0 ? sumqx / sumq2 : 0.0f; /* sumq2 is 0 when every x^2 underflows */
    float best = d * sumqx;
    for (int t = -IQ4NL_NTRY; t <= IQ4NL_NTRY; t++) {
        const float id = (float)(t + k_values[0]) / max;
        weighted_sums(x, w, id, &sumqx, &sumq2);
        const float lhs = sumqx * sumqx, rhs = best * sumq2;
        if (sumq2 > 0 && lhs > rhs) {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    return d;
}

static void iq4_nl_put(const float *x, float d, uint8_t *b) {
    lq_blk_put_f16(b, d);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    uint8_t u[LQ_QK];
    for (int j = 0; j < LQ_QK; j++) u[j] = (uint8_t)nearest_index(id * x[j]);
    for (int j = 0; j < 16; j++) b[2 + j] = (uint8_t)(u[j] | u[j + 16] << 4);
}

static void iq4_nl_encode(const float *x, uint8_t *b) {
    float w[LQ_QK];
    for (int j = 0; j < LQ_QK; j++) w[j] = x[j] * x[j];
    iq4_nl_put(x, iq4_nl_scale(x, w), b);
}

/* With an imatrix (quantize_iq4_nl with quant_weights): w = qw * sqrt(sigma2 + x^2), sigma2 =
 * 2 / 32 * sum x^2 over this block (ggml's super-block is the block here; the row's sigma2 the
 * caller passes is not used). */
static void iq4_nl_encode_w(const float *x, const float *qw, float row_sigma2, uint8_t *b) {
    (void)row_sigma2;
    float w[LQ_QK], sigma2 = 0.0f;
    for (int j = 0; j < LQ_QK; j++) {
        const float sq = x[j] * x[j];
        sigma2 += sq;
    }
    sigma2 *= 2.f / LQ_QK;
    for (int j = 0; j < LQ_QK; j++) {
        const float sq = x[j] * x[j];
        w[j] = qw[j] * sqrtf(sigma2 + sq);
    }
    iq4_nl_put(x, iq4_nl_scale(x, w), b);
}

static const lq_blk_codec k_iq4_nl = {.bytes = sizeof(lq_block_iq4_nl), .decode = iq4_nl_decode,
                                      .encode = iq4_nl_encode, .encode_w = iq4_nl_encode_w};
LQ_BLK_REF_DEFINE(iq4_nl, k_iq4_nl)

/* Integer activations (fmt_legacy_dot.c): IQ4_NL x Q8_0 over the grid values (ggml's
 * vec_dot_iq4_nl_q8_0). */
static void iq4_nl_icodes(const uint8_t *b, int *q) {
    for (int j = 0; j < 16; j++) {
        q[j] = k_values[b[2 + j] & 0x0f];
        q[j + 16] = k_values[b[2 + j] >> 4];
    }
}

static const lq_blk_dot k_dot_iq4_nl = {.bytes = 18, .act = LQ_ACT_Q8_0, .codes = iq4_nl_icodes,
                                        .formula = LQ_DOT_DXDW_SUMI};

void lq_matvec_q_iq4_nl_ref(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1) {
    lq_blk_dot_ref(&k_dot_iq4_nl, w, xq, y, r0, r1);
}
