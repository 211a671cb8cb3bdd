/* kq_internal.h - llama.cpp's K-quant formats (Q2_K..Q6_K, IQ4_XS): symbols shared between
 * their kernel sources (fmt_kquant*.c, kq_quantize.c) and the traits table. Not a public
 * contract. Block layouts: lq_blocks.h. */
#ifndef LQ_KQ_INTERNAL_H
#define LQ_KQ_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "lq_blocks.h"
#include "lq_format.h"

/* ggml's kvalues_iq4nl (ggml-common.h): the 16 levels of IQ4_NL / IQ4_XS. */
extern const int8_t lq_kq_iq4nl_values[16];

#define LQ_KQ_GROUP_MAX_EPS 1e-15f /* ggml: a group with max |x| below this is all zero */

static inline int lq_kq_min(int a, int b) { return a < b ? a : b; }
static inline int lq_kq_max(int a, int b) { return a > b ? a : b; }

/* Round to nearest, ties to even, for |v| <= 2^22: adding 1.5 * 2^23 leaves the integer in the
 * low mantissa bits (ggml's nearest_int; the rounding is the f32 addition's). */
static inline int lq_kq_nearest_int(float v) {
    const float t = v + 12582912.f;
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* Index of the table level nearest to v (ties to the upper level; ggml best_index_int8). */
static inline int lq_kq_best_index(const int8_t *val, float v) {
    if (v <= (float)val[0]) return 0;
    if (v >= (float)val[15]) return 15;
    int ml = 0, mu = 15;
    while (mu - ml > 1) {
        const int mav = (ml + mu) / 2;
        if (v < (float)val[mav]) mu = mav;
        else ml = mav;
    }
    return v - (float)val[mu - 1] < (float)val[mu] - v ? mu - 1 : mu;
}

/* ggml make_qx_quants(n, nmax, x, L, rmse_type = 1, qw): symmetric codes L + nmax in [0, 2 nmax)
 * with the error weighted by qw (x^2 when qw is NULL), 18 inverse scales searched around
 * -nmax / max. Returns the scale. kq_quantize.c. */
float lq_kq_make_qx(int n, int nmax, const float *x, int8_t *L, const float *qw);

/* ---- one super-block of 256 weights (kq_quantize.c): ggml's quantize_row_*_ref without an
 * importance matrix, the same f32 operations in the same order ---- */
void lq_kq_quantize_q2_K(const float *x, lq_block_q2_K *y);
void lq_kq_quantize_q3_K(const float *x, lq_block_q3_K *y);
void lq_kq_quantize_q4_K(const float *x, lq_block_q4_K *y);
void lq_kq_quantize_q5_K(const float *x, lq_block_q5_K *y);
void lq_kq_quantize_q6_K(const float *x, lq_block_q6_K *y);
void lq_kq_quantize_iq4_xs(const float *x, lq_block_iq4_xs *y);

/* ---- one super-block of 256 weights with an importance matrix (llama-quantize --imatrix):
 * ggml's quantize_row_*_impl / quantize_iq4_xs with quant_weights, qw = the block's 256 weights
 * (the imatrix's mean squares of those columns). Q6_K and IQ4_XS: kq_quantize.c; the others, whose
 * search differs from the unweighted one (make_qkx3_quants, make_qp_quants), kq_quantize_imat.c. */
void lq_kq_quantize_w_q2_K(const float *x, const float *qw, lq_block_q2_K *y);
void lq_kq_quantize_w_q3_K(const float *x, const float *qw, lq_block_q3_K *y);
void lq_kq_quantize_w_q4_K(const float *x, const float *qw, lq_block_q4_K *y);
void lq_kq_quantize_w_q5_K(const float *x, const float *qw, lq_block_q5_K *y);
void lq_kq_quantize_w_q6_K(const float *x, const float *qw, lq_block_q6_K *y);
void lq_kq_quantize_w_iq4_xs(const float *x, const float *qw, lq_block_iq4_xs *y);

/* ggml make_qkx2_quants (kq_quantize.c) and make_qkx3_quants (kq_quantize_imat.c: the same search
 * with use_mad 0), weights never NULL: asymmetric codes in [0, nmax] for x ~ scale * L - min;
 * returns the scale, *the_min = -min. */
float lq_kq_make_qkx2(int n, int nmax, const float *x, const float *weights, uint8_t *L, float *the_min,
                      uint8_t *Laux, float rmin, float rdelta, int nstep, int use_mad);
float lq_kq_make_qkx3(int n, int nmax, const float *x, const float *weights, uint8_t *L, float *the_min,
                      uint8_t *Laux, float rmin, float rdelta, int nstep);

/* ---- one super-block to 256 floats (fmt_kquant.c): ggml's dequantize_row_* ---- */
void lq_kq_dequant_q2_K(const lq_block_q2_K *b, float *y);
void lq_kq_dequant_q3_K(const lq_block_q3_K *b, float *y);
void lq_kq_dequant_q4_K(const lq_block_q4_K *b, float *y);
void lq_kq_dequant_q5_K(const lq_block_q5_K *b, float *y);
void lq_kq_dequant_q6_K(const lq_block_q6_K *b, float *y);
void lq_kq_dequant_iq4_xs(const lq_block_iq4_xs *b, float *y);

/* ---- traits-table entry points (ref: fmt_kquant.c; avx2: fmt_kquant_avx2.c) ---- */
#define LQ_KQ_DECLARE(n)                                                                            \
    void lq_matvec_##n##_ref(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1); \
    void lq_dequant_##n##_ref(const lq_weight *w, int64_t r0, int64_t r1, float *out);             \
    void lq_quantize_##n##_ref(const float *src, const lq_quant_params *p, lq_weight *dst);         \
    void lq_matvec_##n##_avx2(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1); \
    void lq_dequant_##n##_avx2(const lq_weight *w, int64_t r0, int64_t r1, float *out);             \
    int lq_sizes_##n(int64_t rows, int64_t cols, const lq_quant_params *p, size_t *rb, int64_t *a0, \
                     int64_t *a1);
LQ_KQ_DECLARE(q2_K)
LQ_KQ_DECLARE(q3_K)
LQ_KQ_DECLARE(q4_K)
LQ_KQ_DECLARE(q5_K)
LQ_KQ_DECLARE(q6_K)
LQ_KQ_DECLARE(iq4_xs)
#undef LQ_KQ_DECLARE

/* Buffer sizes (lq_sizes_<type>, the table's sizes slot): cols must be a multiple of 256. */
int lq_kq_sizes(size_t block_bytes, int64_t rows, int64_t cols, size_t *row_bytes, int64_t *n_aux0,
                int64_t *n_aux1);

/* Q4_K / Q5_K: ggml's unpacking of the 12 scale bytes (its utmp, as the x86 vec_dot does):
 * bytes 0..7 of out the eight 6-bit sub-block scales, bytes 8..15 the eight 6-bit mins. Shared by
 * the AVX2 and AVX-512 kernels, which widen it each their own way. */
static inline void lq_kq_q45_utmp(const uint8_t *s12, uint32_t out[4]) {
    const uint32_t kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
    uint32_t u[4];
    memcpy(u, s12, 12);
    u[3] = ((u[2] >> 4) & kmask2) | (((u[1] >> 6) & kmask3) << 4);
    const uint32_t uaux = u[1] & kmask1;
    u[1] = (u[2] & kmask2) | (((u[0] >> 6) & kmask3) << 4);
    u[2] = uaux;
    u[0] &= kmask1;
    memcpy(out, u, sizeof u);
}

#endif
