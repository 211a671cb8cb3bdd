/* test_int_act.c - the integer-activation path: activation quantizers (lq_act_fmt) and every
 * format row's matvec_q, and lq_matmul taking it.
 *
 * External references: the activation quantizers are those of a llama.cpp x86 (AVX2) build,
 * ggml-cpu's quantize_row_q8_0 / q8_1 (amax / 127 stored binary16, x * (127 / amax) rounded half to
 * even by _mm256_round_ps) and ggml's quantize_row_q8_K_ref (iscale = -127 / signed max, ggml's
 * nearest_int, min(127, q), d = 1 / iscale, bsums of 16); the hand-worked blocks below follow
 * those formulas by hand, ties included (62.5 -> 62, where ggml's scalar roundf gives 63).
 * Then, for every row with an integer path: fast == ref quantizers byte for byte; the
 * quantization error within lq_act_traits' bound; matvec_q fast vs matvec_q_ref within the row's
 * tol; matvec_q_ref on quantized activations vs matvec_ref on the f32 ones within the row's
 * act_tol; lq_matmul (decode and prefill, 1-3 threads) vs lq_matmul_ref within the same bound,
 * and LQ_ACT_MODE_F32 turning the path off.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lq_blocks.h"
#include "lq_format.h"
#include "lq_ops.h"
#include "lq_pool.h"

#define KT_RNG_SEED 0x1a7ac7ull
#include "kern_test_util.h"

static float f16_at(const uint8_t *p) { return lq_f16_to_f32((lq_f16)(p[0] | p[1] << 8)); }

Test(act_quant, q8_0_and_q8_1_hand_worked) {
    float x[32] = {127.0f, 62.5f, -0.5f, 1.5f, -63.5f, 2.5f};
    /* amax 127: d = 1, id = 1; ties round to even: 62.5 -> 62, -0.5 -> 0, 1.5 -> 2, -63.5 -> -64,
     * 2.5 -> 2 */
    const int8_t want[6] = {127, 62, 0, 2, -64, 2};
    uint8_t b0[34], b1[36];
    const lq_act_traits *a0 = lq_act_get(LQ_ACT_Q8_0), *a1 = lq_act_get(LQ_ACT_Q8_1);
    cr_assert(a0 && a1 && a0->block_bytes == 34 && a1->block_bytes == 36);
    for (int fast = 0; fast < 2; fast++) {
        (fast ? a0->quantize : a0->quantize_ref)(x, 32, b0);
        (fast ? a1->quantize : a1->quantize_ref)(x, 32, b1);
        cr_assert_eq(f16_at(b0), 1.0f);
        cr_assert_eq(f16_at(b1), 1.0f);
        cr_assert_eq(f16_at(b1 + 2), 127.0f + 62 + 0 + 2 - 64 + 2, "q8_1 s = d * sum(q)");
        for (int j = 0; j < 32; j++) {
            const int w = j < 6 ? want[j] : 0;
            cr_assert_eq((int8_t)b0[2 + j], w, "q8_0 code %d (fast %d)", j, fast);
            cr_assert_eq((int8_t)b1[4 + j], w, "q8_1 code %d (fast %d)", j, fast);
        }
    }
    /* an all-zero block: d = 0, codes 0 (id = 0, not a division by zero) */
    memset(x, 0, sizeof x);
    a0->quantize(x, 32, b0);
    cr_assert_eq(f16_at(b0), 0.0f);
    for (int j = 0; j < 32; j++) cr_assert_eq(b0[2 + j], 0);
}

Test(act_quant, q8_K_hand_worked) {
    float x[256] = {-2.0f, 1.0f, 0.5f, 2.0f};
    /* signed max -2: iscale = -127 / -2 = 63.5; 1 -> 63.5 -> 64 (even), 0.5 -> 31.75 -> 32,
     * 2 -> 127; -2 -> -127; d = 1 / 63.5 */
    lq_block_q8_K b;
    const lq_act_traits *a = lq_act_get(LQ_ACT_Q8_K);
    cr_assert(a && a->block == 256 && a->block_bytes == sizeof b);
    a->quantize(x, 256, &b);
    cr_assert_eq(b.d, 1.0f / 63.5f);
    cr_assert_eq(b.qs[0], -127);
    cr_assert_eq(b.qs[1], 64);
    cr_assert_eq(b.qs[2], 32);
    cr_assert_eq(b.qs[3], 127);
    cr_assert_eq(b.bsums[0], -127 + 64 + 32 + 127);
    for (int j = 1; j < 16; j++) cr_assert_eq(b.bsums[j], 0);
}

/* Random rows at several magnitudes (a block of zeros, tiny and large values). */
static void fill_acts(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const int64_t blk = i / 32;
        const float s = blk % 5 == 0 ? 1e-3f : blk % 5 == 1 ? 30.0f : 1.0f;
        x[i] = blk % 7 == 3 ? 0.0f : rng_f(-s, s);
    }
}

Test(act_quant, fast_equals_ref_and_error_bound) {
    const int64_t n = 256 * 6;
    float *x = malloc(n * sizeof *x), *back = malloc(n * sizeof *back);
    uint8_t *qf = malloc(n * 3), *qr = malloc(n * 3); /* >= every layout's bytes (Q16: 68 per 32) */
    for (int f = LQ_ACT_NONE + 1; f < LQ_ACT_COUNT; f++) {
        const lq_act_traits *a = lq_act_get((lq_act_fmt)f);
        cr_assert_not_null(a);
        for (int rep = 0; rep < 20; rep++) {
            fill_acts(x, n);
            const size_t bytes = lq_act_row_bytes((lq_act_fmt)f, n);
            cr_assert_eq(bytes, (size_t)(n / a->block) * a->block_bytes);
            a->quantize(x, n, qf);
            a->quantize_ref(x, n, qr);
            cr_assert(memcmp(qf, qr, bytes) == 0, "%s: fast quantizer differs from the ref", a->name);
            a->dequant_ref(qr, n, back);
            for (int64_t i = 0; i < n; i++) {
                float amax = 0;
                const int64_t b0 = i / a->block * a->block;
                for (int64_t j = b0; j < b0 + a->block; j++) amax = fmaxf(amax, fabsf(x[j]));
                const double bound = a->err_amax * fmax(amax, a->amax_floor) + a->err_rel * fabs(x[i]);
                cr_assert(fabs((double)back[i] - x[i]) <= bound, "%s: value %lld: %.9g -> %.9g (bound %.3g)",
                          a->name, (long long)i, x[i], back[i], bound);
            }
        }
        cr_assert_eq(lq_act_row_bytes((lq_act_fmt)f, a->block + 1), 0, "partial blocks are refused");
    }
    cr_assert_null(lq_act_get(LQ_ACT_NONE));
    free(x); free(back); free(qf); free(qr);
}

/* sum_c |W[r][c]| * max(amax(activation block of c), amax_floor), per row: act_tol's weight. */
static void act_scale(const lq_weight *w, const float *x, const lq_act_traits *a, double *out) {
    const int64_t block = a->block;
    float *row = malloc((size_t)w->cols * sizeof *row);
    const lq_wfmt_traits *t = lq_wfmt_get(w->fmt);
    for (int64_t r = 0; r < w->rows; r++) {
        t->dequant_ref(w, r, r + 1, row);
        double s = 0;
        for (int64_t b = 0; b < w->cols; b += block) {
            float amax = 0;
            for (int64_t c = b; c < b + block; c++) amax = fmaxf(amax, fabsf(x[c]));
            for (int64_t c = b; c < b + block; c++) s += fabs((double)row[c]) * fmax(amax, a->amax_floor);
        }
        out[r] = s;
    }
    free(row);
}

/* sum_c |W[r][c] x[c]| per row (the f32 summation-order tolerance's weight). */
static void abs_scale(const lq_weight *w, const float *x, double *out) {
    float *row = malloc((size_t)w->cols * sizeof *row);
    for (int64_t r = 0; r < w->rows; r++) {
        lq_wfmt_get(w->fmt)->dequant_ref(w, r, r + 1, row);
        double s = 0;
        for (int64_t c = 0; c < w->cols; c++) s += fabs((double)row[c] * x[c]);
        out[r] = s;
    }
    free(row);
}

static void check_row(lq_wfmt f, int64_t rows, int64_t cols) {
    const lq_wfmt_traits *t = lq_wfmt_get(f);
    const lq_act_traits *a = lq_act_get(t->act);
    const lq_quant_params p = {.group_size = 32};
    float *src = malloc((size_t)(rows * cols) * sizeof *src);
    fill(src, rows * cols, -1.0f, 1.0f);
    qweight q;
    if (!kt_quantize(f, src, rows, cols, &p, &q)) {
        free(src);
        return;
    }
    const int64_t n = 5;
    const size_t xrb = lq_act_row_bytes(t->act, cols);
    float *X = malloc((size_t)(n * cols) * sizeof *X), *xd = malloc((size_t)cols * sizeof *xd);
    float *yf = malloc((size_t)(n * rows) * sizeof *yf), *yr = malloc((size_t)(n * rows) * sizeof *yr);
    double *sa = malloc((size_t)(n * rows) * sizeof *sa), *sq = malloc((size_t)rows * sizeof *sq);
    uint8_t *xq = malloc(xrb);
    fill_acts(X, n * cols);
    char what[160];
    /* matvec_q fast vs ref on the same quantized row; its scale is |W| |x quantized| */
    a->quantize(X, cols, xq);
    a->dequant_ref(xq, cols, xd);
    abs_scale(&q.w, xd, sq);
    t->matvec_q(&q.w, xq, yf, 0, rows);
    t->matvec_q_ref(&q.w, xq, yr, 0, rows);
    snprintf(what, sizeof what, "%s matvec_q fast vs ref %lld x %lld", t->name, (long long)rows, (long long)cols);
    EXPECT_CLOSE(what, yf, yr, sq, rows, t->tol_atol, t->tol_rtol);
    /* lq_matmul (integer path) vs lq_matmul_ref (f32 activations): act_tol * sum |W| amax */
    for (int64_t i = 0; i < n; i++) act_scale(&q.w, X + i * cols, a, sa + i * rows);
    lq_matmul_set_act_mode(LQ_ACT_MODE_AUTO);
    cr_assert_eq(lq_matmul_uses_int_act(&q.w), !t->act_opt_in, "%s: AUTO takes every row but the opt-in ones", t->name);
    lq_matmul_set_act_mode(LQ_ACT_MODE_ALL);
    cr_assert(lq_matmul_uses_int_act(&q.w));
    const int threads[] = {1, 2, 3};
    const int64_t ns[] = {1, n};
    for (size_t k = 0; k < 3; k++) {
        lq_pool *pool = lq_pool_create(threads[k]);
        for (size_t m = 0; m < 2; m++) {
            for (int64_t i = 0; i < ns[m] * rows; i++) yf[i] = NAN;
            cr_assert_eq(lq_matmul(pool, &q.w, X, ns[m], yf), LQ_KERNEL_OK);
            lq_matmul_ref(&q.w, X, ns[m], yr);
            snprintf(what, sizeof what, "%s int8 matmul n=%lld threads=%d vs f32 ref", t->name,
                     (long long)ns[m], threads[k]);
            EXPECT_CLOSE(what, yf, yr, sa, ns[m] * rows, t->tol_atol + 1e-6, t->act_tol);
        }
        lq_pool_free(pool);
    }
    lq_matmul_set_act_mode(LQ_ACT_MODE_F32);
    cr_assert(!lq_matmul_uses_int_act(&q.w), "LQ_ACT_MODE_F32 turns the integer path off");
    lq_matmul_set_act_mode(LQ_ACT_MODE_AUTO);
    free(src); free(X); free(xd); free(yf); free(yr); free(sa); free(sq); free(xq);
    kt_qfree(&q);
}

/* Every ISA level this CPU runs (AVX2, and AVX-512 where present) against the same _ref. */
Test(int_act, every_row_with_an_integer_path) {
    const lq_isa best = lq_cpu_isa();
    for (int isa = best >= LQ_ISA_AVX2 ? LQ_ISA_AVX2 : LQ_ISA_SCALAR; isa <= (int)best; isa++) {
        cr_assert_eq(lq_kernels_set_isa((lq_isa)isa), (lq_isa)isa);
        int rows_with = 0;
        for (int f = 0; f < LQ_WFMT_COUNT; f++) {
            const lq_wfmt_traits *t = lq_wfmt_get((lq_wfmt)f);
            if (t->act == LQ_ACT_NONE) {
                cr_assert(!t->matvec_q && !t->matvec_q_ref, "%s: matvec_q without an act layout", t->name);
                continue;
            }
            cr_assert(t->matvec_q && t->matvec_q_ref && t->act_tol > 0 && t->act_tol < 0.05, "%s", t->name);
            rows_with++;
            check_row((lq_wfmt)f, 67, 512);
            check_row((lq_wfmt)f, 33, 1536);
        }
        cr_assert(rows_with >= 1);
    }
    lq_kernels_set_isa(best);
}

/* One Q8_0 block by hand: weight codes 1..32 (d_w = 1) times activations 127, 1, 1, ... (amax
 * 127: d_x = 1, codes equal the values): 1 * 127 + (2 + ... + 32) = 127 + 527, times d_w d_x. */
Test(int_act, q8_0_hand_worked) {
    uint8_t wb[34], xb[34];
    wb[0] = 0x00, wb[1] = 0x3C; /* d_w = 1.0 */
    for (int j = 0; j < 32; j++) wb[2 + j] = (uint8_t)(j + 1);
    float x[32];
    for (int j = 0; j < 32; j++) x[j] = j == 0 ? 127.0f : 1.0f; /* codes 127, 1, 1, ... (d_x 1) */
    lq_act_get(LQ_ACT_Q8_0)->quantize(x, 32, xb);
    const lq_weight w = {.fmt = LQ_WFMT_Q8_0, .rows = 1, .cols = 32, .data = wb, .row_bytes = 34};
    const lq_wfmt_traits *t = lq_wfmt_get(LQ_WFMT_Q8_0);
    float y[2];
    t->matvec_q_ref(&w, xb, &y[0], 0, 1);
    t->matvec_q(&w, xb, &y[1], 0, 1);
    const float want = 127.0f * 1 + (528.0f - 1);
    cr_assert_eq(y[0], want);
    cr_assert_eq(y[1], want);
}
