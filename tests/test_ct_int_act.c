/* test_ct_int_act.c - the integer-activation paths of the compressed-tensors formats (W4A16 sym
 * and asym, W8A16) beyond what test_int_act checks for every row (group 32, symmetric).
 *
 * External references: hand-worked blocks (the formula of lq_format.h: W[r][c] = (q - z) s times
 * the Q8_0 activation q_x d, worked by hand below); and ggml's vec_dot_q8_0_q8_0 as our Q8_0 row
 * runs it (test_int_act pins that row to ggml's formula): a W8A16 row with codes q and a scale
 * that binary16 holds exactly is the Q8_0 row with d = scale and the same codes, so the two
 * integer paths must agree to f32 rounding. Then fast vs ref and lq_matmul vs the f32 reference
 * for group sizes 32, 64, 128, one group per row, and 16 (not a multiple of 32: the scalar
 * path), symmetric and asymmetric, odd row counts.
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

#define KT_RNG_SEED 0xc7a1c8ull
#include "kern_test_util.h"

/* These rows' integer path is opt-in (format_table.c): turn it on before the table's first use
 * (each test runs in its own process). */
static void opt_in(void) { lq_matmul_set_act_mode(LQ_ACT_MODE_ALL); }
TestSuite(ct_int_act, .init = opt_in);

/* Activations 127, 1, 1, ... (amax 127: d_x = 1, codes equal the values, act_quant.c). */
static void ones_block(uint8_t *xb) {
    float x[32];
    for (int j = 0; j < 32; j++) x[j] = j == 0 ? 127.0f : 1.0f;
    lq_act_get(LQ_ACT_Q8_0)->quantize(x, 32, xb);
}

/* W4A16, 32 columns, one group: codes q_c = c % 16 - 8, scale 0.5, zero z. Columns 1..15 hold
 * -7..7 (sum 0), columns 16..31 hold -8..7 (sum -8), so
 * sum_c (q_c - z) x_c = (q_0 - z) 127 + sum_{c >= 1} (q_c - z) = (-8 - z) 127 + (-8 - 31 z). */
Test(ct_int_act, w4a16_hand_worked_sym_and_asym) {
    /* the Q8_0 path: W4A16's integer path below AVX-512 (there it takes Q16, tested below) */
    const lq_isa best = lq_cpu_isa();
    lq_kernels_set_isa(best < LQ_ISA_AVX2 ? best : LQ_ISA_AVX2);
    cr_assert_eq(lq_wfmt_get(LQ_WFMT_W4A16)->act, LQ_ACT_Q8_0);
    uint8_t row[16], xb[34];
    for (int c = 0; c < 32; c++) lq_int4_set(row, c, c % 16 - 8);
    ones_block(xb);
    const float scale = 0.5f;
    for (int z = -3; z <= 2; z += 5) {
        const float zero = (float)z;
        const lq_weight w = {.fmt = LQ_WFMT_W4A16, .rows = 1, .cols = 32, .data = row, .row_bytes = 16,
                             .aux = {&scale, z ? &zero : NULL}, .group_size = 32};
        const lq_wfmt_traits *t = lq_wfmt_get(LQ_WFMT_W4A16);
        float y[2];
        t->matvec_q_ref(&w, xb, &y[0], 0, 1);
        t->matvec_q(&w, xb, &y[1], 0, 1);
        const float want = 0.5f * (float)((-8 - z) * 127 + (-8 - 31 * z));
        cr_assert_eq(y[0], want, "zero %d: ref %g want %g", z, y[0], want);
        cr_assert_eq(y[1], want, "zero %d: fast %g want %g", z, y[1], want);
    }
    lq_kernels_set_isa(best);
}

/* The same row against Q16 activations 32767, 1, 1, ... (the quantizer checked on every CPU, the
 * row where the AVX-512 level runs it) (amax 32767: d_x = 1, codes equal the
 * values, act_quant.c): sum_c (q_c - z) x_c = (-8 - z) 32767 + (-8 - 31 z), times 0.5; and a
 * block of 96 columns (three blocks: the masked last quad of the AVX-512 kernel) whose second and
 * third blocks repeat the first, with activations 32767 / 2^k: d_x = 2^-k, the same codes. */
Test(ct_int_act, w4a16_q16_hand_worked_sym_and_asym) {
    const lq_act_traits *a = lq_act_get(LQ_ACT_Q16);
    float x[96];
    for (int c = 0; c < 96; c++) x[c] = ldexpf(c % 32 == 0 ? 32767.0f : 1.0f, -(c / 32));
    lq_block_q16 xb[3];
    a->quantize(x, 96, xb);
    for (int b = 0; b < 3; b++) {
        cr_assert_eq(xb[b].d, ldexpf(1.0f, -b), "block %d: d %g", b, (double)xb[b].d);
        for (int j = 0; j < 32; j++) cr_assert_eq(xb[b].qs[j], j == 0 ? 32767 : 1);
    }
    uint8_t row[48];
    for (int c = 0; c < 96; c++) lq_int4_set(row, c, c % 16 - 8);
    const float scale = 0.5f;
    for (int z = -3; z <= 2; z += 5) {
        const float zero = (float)z;
        const double blk = (double)((-8 - z) * 32767 + (-8 - 31 * z)); /* one block's integer D */
        for (int cols = 32; cols <= 96; cols += 64) {
            const lq_weight w = {.fmt = LQ_WFMT_W4A16, .rows = 1, .cols = cols, .data = row, .row_bytes = (size_t)cols / 2,
                                 .aux = {&scale, z ? &zero : NULL}, .group_size = 0};
            const double want = 0.5 * blk * (cols == 32 ? 1.0 : 1.0 + 0.5 + 0.25);
            /* the Q16 row exists at the AVX-512 level only (format_table.c's g_int512) */
            if (lq_cpu_isa() < LQ_ISA_AVX512) continue;
            lq_kernels_set_isa(LQ_ISA_AVX512);
            const lq_wfmt_traits *t = lq_wfmt_get(LQ_WFMT_W4A16);
            cr_assert_eq(t->act, LQ_ACT_Q16);
            cr_assert_eq(t->act_opt_in, 0);
            float y[2];
            t->matvec_q_ref(&w, xb, &y[0], 0, 1);
            t->matvec_q(&w, xb, &y[1], 0, 1);
            cr_assert_eq(y[0], (float)want, "zero %d, %d cols: ref %.9g want %.9g", z, cols, (double)y[0], want);
            cr_assert_eq(y[1], (float)want, "zero %d, %d cols: avx512 %.9g want %.9g", z, cols, (double)y[1], want);
        }
    }
}

/* W8A16, 32 columns: codes -128 (the one code whose magnitude is 128), then 2, 3, ..., 32
 * (c + 1), scale 0.25: 0.25 (-128 * 127 + (2 + ... + 32)) = 0.25 (-16256 + 527). */
Test(ct_int_act, w8a16_hand_worked) {
    uint8_t row[32], xb[34];
    for (int c = 0; c < 32; c++) lq_int8p_set(row, c, c == 0 ? -128 : c + 1);
    ones_block(xb);
    const float scale = 0.25f;
    const lq_weight w = {.fmt = LQ_WFMT_W8A16, .rows = 1, .cols = 32, .data = row, .row_bytes = 32,
                         .aux = {&scale}};
    const lq_wfmt_traits *t = lq_wfmt_get(LQ_WFMT_W8A16);
    float y[2];
    t->matvec_q_ref(&w, xb, &y[0], 0, 1);
    t->matvec_q(&w, xb, &y[1], 0, 1);
    const float want = 0.25f * (float)(-128 * 127 + 527);
    cr_assert_eq(y[0], want);
    cr_assert_eq(y[1], want);
}

/* W8A16 with a binary16-exact scale = the Q8_0 row with d = scale: ggml's block dot product. */
Test(ct_int_act, w8a16_equals_q8_0_row) {
    const int64_t rows = 13, cols = 256, nb = cols / 32;
    uint8_t *w8 = malloc((size_t)(rows * cols)), *q8 = malloc((size_t)(rows * nb * 34));
    float *scale = malloc((size_t)rows * sizeof *scale), *x = malloc((size_t)cols * sizeof *x);
    for (int64_t r = 0; r < rows; r++) {
        scale[r] = ldexpf(1.0f + (float)(rng_u32() % 1024) / 1024.0f, -(int)(rng_u32() % 8));
        const lq_f16 h = lq_f32_to_f16(scale[r]);
        cr_assert_eq(lq_f16_to_f32(h), scale[r]);
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *blk = q8 + (size_t)(r * nb + b) * 34;
            blk[0] = (uint8_t)(h & 0xff), blk[1] = (uint8_t)(h >> 8);
            for (int j = 0; j < 32; j++) {
                const int q = (int)(rng_u32() % 256) - 128;
                blk[2 + j] = (uint8_t)(int8_t)q;
                lq_int8p_set(w8 + (size_t)r * cols, b * 32 + j, q);
            }
        }
    }
    fill(x, cols, -3.0f, 3.0f);
    uint8_t *xq = malloc(lq_act_row_bytes(LQ_ACT_Q8_0, cols));
    lq_act_get(LQ_ACT_Q8_0)->quantize(x, cols, xq);
    const lq_weight ww = {.fmt = LQ_WFMT_W8A16, .rows = rows, .cols = cols, .data = w8,
                          .row_bytes = (size_t)cols, .aux = {scale}};
    const lq_weight wq = {.fmt = LQ_WFMT_Q8_0, .rows = rows, .cols = cols, .data = q8,
                          .row_bytes = (size_t)nb * 34};
    float y8[13], yq[13];
    double sc[13];
    lq_wfmt_get(LQ_WFMT_W8A16)->matvec_q(&ww, xq, y8, 0, rows);
    lq_wfmt_get(LQ_WFMT_Q8_0)->matvec_q_ref(&wq, xq, yq, 0, rows);
    float xd[256];
    lq_act_get(LQ_ACT_Q8_0)->dequant_ref(xq, cols, xd);
    for (int64_t r = 0; r < rows; r++) {
        sc[r] = 0;
        for (int64_t c = 0; c < cols; c++) sc[r] += fabs((double)lq_int8p_get(w8 + r * cols, c) * scale[r] * xd[c]);
    }
    EXPECT_CLOSE("w8a16 vs q8_0 (ggml's vec_dot)", y8, yq, sc, rows, 1e-6, 2e-5);
    free(w8); free(q8); free(scale); free(x); free(xq);
}

static void fill_acts(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const int64_t blk = i / 32;
        const float s = blk % 5 == 0 ? 1e-3f : blk % 5 == 1 ? 30.0f : 1.0f;
        x[i] = blk % 7 == 3 ? 0.0f : rng_f(-s, s);
    }
}

/* gemm_q (several tokens per weight load) must equal matvec_q bit for bit (lq_format.h): 7 tokens
 * (a whole tile of 4 and 3 left over), whole range and a slice starting mid-matrix. */
static void check_gemm_q(const lq_wfmt_traits *t, const lq_weight *w) {
    const int64_t n = 7, rows = w->rows, cols = w->cols;
    const size_t xrb = lq_act_row_bytes(t->act, cols);
    float *X = malloc((size_t)(n * cols) * sizeof *X);
    float *yg = malloc((size_t)(n * rows) * sizeof *yg), *ym = malloc((size_t)rows * sizeof *ym);
    uint8_t *xq = malloc(xrb * (size_t)n);
    fill_acts(X, n * cols);
    for (int64_t i = 0; i < n; i++) lq_act_get(t->act)->quantize(X + i * cols, cols, xq + (size_t)i * xrb);
    const int64_t r0s[] = {0, 5}, r1s[] = {rows, rows - 2};
    for (int k = 0; k < 2; k++) {
        const int64_t r0 = r0s[k], r1 = r1s[k];
        if (r1 <= r0) continue;
        for (int64_t i = 0; i < n * rows; i++) yg[i] = NAN;
        t->gemm_q(w, xq, xrb, n, yg, rows, r0, r1);
        for (int64_t i = 0; i < n; i++) {
            t->matvec_q(w, xq + (size_t)i * xrb, ym, r0, r1);
            cr_assert_eq(memcmp(yg + i * rows, ym, (size_t)(r1 - r0) * sizeof *ym), 0,
                         "%s %lldx%lld gemm_q token %lld rows [%lld,%lld) differs from matvec_q", t->name,
                         (long long)rows, (long long)cols, (long long)i, (long long)r0, (long long)r1);
        }
    }
    free(X); free(yg); free(ym); free(xq);
}

/* fast vs ref on the same quantized row; lq_matmul (int path) vs lq_matmul_ref (f32) within
 * act_tol * sum |W| max(amax, floor). */
static void check(lq_wfmt f, int64_t rows, int64_t cols, int gs, int asym) {
    const lq_wfmt_traits *t = lq_wfmt_get(f);
    const lq_act_traits *a = lq_act_get(t->act);
    const lq_quant_params p = {.group_size = gs, .asym = asym};
    float *src = malloc((size_t)(rows * cols) * sizeof *src);
    fill(src, rows * cols, -1.0f, 0.6f); /* lopsided: asymmetric zero points are not all 0 */
    qweight q;
    cr_assert(kt_quantize(f, src, rows, cols, &p, &q), "%s gs %d", t->name, gs);
    const int64_t n = 3;
    float *X = malloc((size_t)(n * cols) * sizeof *X), *xd = malloc((size_t)cols * sizeof *xd);
    float *yf = malloc((size_t)(n * rows) * sizeof *yf), *yr = malloc((size_t)(n * rows) * sizeof *yr);
    float *wd = malloc((size_t)cols * sizeof *wd);
    double *sa = malloc((size_t)(n * rows) * sizeof *sa), *sq = malloc((size_t)rows * sizeof *sq);
    uint8_t *xq = malloc(lq_act_row_bytes(t->act, cols));
    fill_acts(X, n * cols);
    a->quantize(X, cols, xq);
    a->dequant_ref(xq, cols, xd);
    for (int64_t r = 0; r < rows; r++) {
        t->dequant_ref(&q.w, r, r + 1, wd);
        sq[r] = 0;
        for (int64_t c = 0; c < cols; c++) sq[r] += fabs((double)wd[c] * xd[c]);
        for (int64_t i = 0; i < n; i++) {
            double s = 0;
            for (int64_t b = 0; b < cols; b += 32) {
                float amax = 0;
                for (int64_t c = b; c < b + 32; c++) amax = fmaxf(amax, fabsf(X[i * cols + c]));
                for (int64_t c = b; c < b + 32; c++) s += fabs((double)wd[c]) * fmax(amax, a->amax_floor);
            }
            sa[i * rows + r] = s;
        }
    }
    char what[160];
    snprintf(what, sizeof what, "%s gs %d asym %d fast vs ref", t->name, gs, asym);
    t->matvec_q(&q.w, xq, yf, 0, rows);
    t->matvec_q_ref(&q.w, xq, yr, 0, rows);
    EXPECT_CLOSE(what, yf, yr, sq, rows, t->tol_atol, t->tol_rtol);
    /* a slice that starts mid-matrix and ends on a partial group of 4 rows */
    t->matvec_q(&q.w, xq, yf, 5, rows - 2);
    EXPECT_CLOSE(what, yf, yr + 5, sq + 5, rows - 7, t->tol_atol, t->tol_rtol);
    lq_matmul_set_act_mode(LQ_ACT_MODE_AUTO);
    cr_assert_eq(lq_matmul_uses_int_act(&q.w), !t->act_opt_in, "%s (%s): taken by default iff not opt-in",
                 t->name, lq_act_get(t->act)->name);
    lq_matmul_set_act_mode(LQ_ACT_MODE_ALL);
    cr_assert(lq_matmul_uses_int_act(&q.w));
    lq_pool *pool = lq_pool_create(2);
    for (int64_t m = 1; m <= n; m += n - 1) {
        cr_assert_eq(lq_matmul(pool, &q.w, X, m, yf), LQ_KERNEL_OK);
        lq_matmul_ref(&q.w, X, m, yr);
        snprintf(what, sizeof what, "%s gs %d asym %d matmul n=%lld vs f32", t->name, gs, asym, (long long)m);
        EXPECT_CLOSE(what, yf, yr, sa, m * rows, t->tol_atol + 1e-6, t->act_tol);
    }
    lq_pool_free(pool);
    if (t->gemm_q) check_gemm_q(t, &q.w);
    free(src); free(X); free(xd); free(yf); free(yr); free(wd); free(sa); free(sq); free(xq);
    kt_qfree(&q);
}

/* Every ISA level this CPU runs (AVX2, and AVX-512 where present), as test_int_act.c. */
#define EVERY_LEVEL(body)                                                                          \
    do {                                                                                          \
        const lq_isa best_ = lq_cpu_isa();                                                        \
        for (int isa_ = best_ >= LQ_ISA_AVX2 ? LQ_ISA_AVX2 : LQ_ISA_SCALAR; isa_ <= (int)best_; isa_++) { \
            cr_assert_eq(lq_kernels_set_isa((lq_isa)isa_), (lq_isa)isa_);                         \
            body;                                                                                 \
        }                                                                                         \
        lq_kernels_set_isa(best_);                                                                \
    } while (0)

Test(ct_int_act, w4a16_group_sizes_sym_asym) {
    const int gs[] = {32, 64, 128, 0, 16};
    EVERY_LEVEL(for (size_t i = 0; i < sizeof gs / sizeof gs[0]; i++) for (int asym = 0; asym < 2; asym++) {
        check(LQ_WFMT_W4A16, 37, 384, gs[i], asym);
        check(LQ_WFMT_W4A16, 19, 1536, gs[i], asym);
        check(LQ_WFMT_W4A16, 13, 544, gs[i] == 16 ? 16 : 32, asym); /* 17 blocks: a partial 4-block step */
    });
}

/* W4A16 at the AVX-512 level: Q16 activations for decode only (act_decode_only): lq_matmul with
 * n > 1 gives the f32-activation path's bits, n = 1 the integer path's (matvec_q on the row
 * quantized by the layout's quantizer). */
Test(ct_int_act, w4a16_q16_decode_only) {
    if (lq_cpu_isa() < LQ_ISA_AVX512) return; /* the Q16 row exists at the AVX-512 level only */
    lq_kernels_set_isa(LQ_ISA_AVX512);
    const lq_wfmt_traits *t = lq_wfmt_get(LQ_WFMT_W4A16);
    cr_assert(t->act == LQ_ACT_Q16 && t->act_decode_only && !t->gemm_q);
    enum { ROWS = 70, COLS = 384, N = 5 };
    float *src = malloc(sizeof(float) * ROWS * COLS), *X = malloc(sizeof(float) * N * COLS);
    float *y = malloc(sizeof(float) * N * ROWS), *yf = malloc(sizeof(float) * N * ROWS), yq[ROWS];
    fill(src, ROWS * COLS, -1.0f, 0.6f);
    fill_acts(X, N * COLS);
    qweight q;
    cr_assert(kt_quantize(LQ_WFMT_W4A16, src, ROWS, COLS, &(lq_quant_params){.group_size = 32}, &q));
    lq_matmul_set_act_mode(LQ_ACT_MODE_AUTO);
    cr_assert(lq_matmul_uses_int_act(&q.w));
    cr_assert_eq(lq_matmul(NULL, &q.w, X, N, y), LQ_KERNEL_OK);
    cr_assert_eq(lq_matmul(NULL, &q.w, X, 1, yq), LQ_KERNEL_OK);
    lq_matmul_set_act_mode(LQ_ACT_MODE_F32);
    cr_assert_eq(lq_matmul(NULL, &q.w, X, N, yf), LQ_KERNEL_OK);
    cr_assert(memcmp(y, yf, sizeof(float) * N * ROWS) == 0, "prefill is not the f32-activation path");
    uint8_t *xq = malloc(lq_act_row_bytes(LQ_ACT_Q16, COLS));
    lq_act_get(LQ_ACT_Q16)->quantize(X, COLS, xq);
    float want[ROWS];
    t->matvec_q(&q.w, xq, want, 0, ROWS);
    cr_assert(memcmp(yq, want, sizeof want) == 0, "decode is not the Q16 path");
    cr_assert(memcmp(yq, yf, sizeof yq) != 0, "decode equals the f32 path bit for bit: the Q16 path did not run");
    lq_matmul_set_act_mode(LQ_ACT_MODE_ALL);
    free(src), free(X), free(y), free(yf), free(xq);
    kt_qfree(&q);
}

Test(ct_int_act, w8a16_shapes) {
    EVERY_LEVEL({
        check(LQ_WFMT_W8A16, 37, 384, 0, 0);
        check(LQ_WFMT_W8A16, 70, 576, 0, 0);
        check(LQ_WFMT_W8A16, 13, 544, 0, 0); /* 17 blocks: an odd last block */
        check(LQ_WFMT_W8A16, 9, 9216, 0, 0); /* wider than the W4A16 stack buffer's 8192 */
        check(LQ_WFMT_W4A16, 9, 9216, 32, 1);
    });
}
