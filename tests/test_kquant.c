/* test_kquant.c - llama.cpp's K-quant super-block formats (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS).
 *
 * External reference: tests/fixtures/gguf_blocks/<type>.{in.f32,q,deq.f32}, six super-blocks per
 * type (typical, all zero, one outlier, all negative, tiny values, ties + zero sub-blocks)
 * quantized and dequantized by llama.cpp's own ggml-quants.c (quantize_row_<type>_ref;
 * quantize_iq4_xs without an importance matrix) and checked there against the gguf PyPI
 * package's numpy dequantizers: scripts/gguf_vectors/make_kquant_vectors.py. Our quantize_ref
 * must give ggml's bytes and dequant_ref (and the fast dequant) ggml's floats bit for bit. Then
 * the table's promises: fast matvec within the row's tolerance of matvec_ref (on quantized and
 * on arbitrary block bytes), the round-trip bound, sizes, and lq_matmul on a pool.
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

#define KT_RNG_SEED 0x6a09e667f3bcc908ull
#include "kern_test_util.h"

typedef struct kq_case {
    lq_wfmt fmt;
    const char *name; /* llama.cpp's spelling, also the fixture prefix */
    size_t block_bytes;
    double bpw;
    int gguf_type;
    int has_min;       /* Q2_K, Q4_K, Q5_K: w = d sc q - dmin m */
    int d_off[2];      /* offsets of the f16 super-scales in a block (-1: none) */
} kq_case;

static const kq_case k_kq[] = {
    {LQ_WFMT_Q2_K, "q2_K", 84, 2.625, 10, 1, {80, 82}},
    {LQ_WFMT_Q3_K, "q3_K", 110, 3.4375, 11, 0, {108, -1}},
    {LQ_WFMT_Q4_K, "q4_K", 144, 4.5, 12, 1, {0, 2}},
    {LQ_WFMT_Q5_K, "q5_K", 176, 5.5, 13, 1, {0, 2}},
    {LQ_WFMT_Q6_K, "q6_K", 210, 6.5625, 14, 0, {208, -1}},
    {LQ_WFMT_IQ4_XS, "iq4_xs", 136, 4.25, 23, 0, {0, -1}},
};
#define N_KQ (sizeof k_kq / sizeof k_kq[0])

static void *read_fixture(const char *name, const char *ext, size_t *n) {
    char path[512];
    snprintf(path, sizeof path, "%s/gguf_blocks/%s.%s", LQ_FIXTURES_DIR, name, ext);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "fixture %s missing", path);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc(*n);
    cr_assert(p && fread(p, 1, *n, f) == *n, "fixture %s unreadable", path);
    fclose(f);
    return p;
}

/* Float bit patterns equal (the fixtures are ggml's floats; -0 vs +0 counts). */
static void expect_same_floats(const float *got, const float *want, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(memcmp(&got[i], &want[i], 4), 0, "%s: float %zu (block %zu) is %.9g, ggml %.9g", what, i,
                     i / 256, got[i], want[i]);
}

/* A weight over a fresh buffer of rows x cols in format c (payload exactly rows * row_bytes). */
static lq_weight make_weight(const kq_case *c, int64_t rows, int64_t cols, void **buf) {
    size_t rb;
    cr_assert(lq_wfmt_sizes(c->fmt, rows, cols, NULL, &rb, NULL, NULL), "%s refused %lld", c->name, (long long)cols);
    *buf = malloc((size_t)rows * rb);
    cr_assert_not_null(*buf);
    memset(*buf, 0xA5, (size_t)rows * rb); /* quantize_ref must write every byte */
    return (lq_weight){.fmt = c->fmt, .rows = rows, .cols = cols, .data = *buf, .row_bytes = rb};
}

/* ---- ggml's vectors -------------------------------------------------------------------------- */

Test(kquant, ggml_vectors_bit_exact) {
    for (size_t t = 0; t < N_KQ; t++) {
        const kq_case *c = &k_kq[t];
        const lq_wfmt_traits *tr = lq_wfmt_get(c->fmt);
        size_t nin, nq, nd;
        float *in = read_fixture(c->name, "in.f32", &nin);
        uint8_t *want_q = read_fixture(c->name, "q", &nq);
        float *want_d = read_fixture(c->name, "deq.f32", &nd);
        const int64_t nb = (int64_t)(nin / 1024);
        cr_assert(nb >= 6 && nq == (size_t)nb * c->block_bytes && nd == nin, "%s fixture sizes", c->name);
        /* as one row of nb blocks, and as nb rows of one block */
        for (int shape = 0; shape < 2; shape++) {
            const int64_t rows = shape ? nb : 1, cols = shape ? 256 : 256 * nb;
            void *buf;
            lq_weight w = make_weight(c, rows, cols, &buf);
            tr->quantize_ref(in, &(lq_quant_params){0}, &w);
            for (size_t i = 0; i < nq; i++)
                cr_assert_eq(((uint8_t *)buf)[i], want_q[i], "%s quantize: byte %zu (block %zu, offset %zu) is %02X, ggml %02X",
                             c->name, i, i / c->block_bytes, i % c->block_bytes, ((uint8_t *)buf)[i], want_q[i]);
            free(buf);
        }
        lq_weight w = {.fmt = c->fmt, .rows = nb, .cols = 256, .data = want_q, .row_bytes = c->block_bytes};
        float *out = malloc(nd);
        tr->dequant_ref(&w, 0, nb, out);
        expect_same_floats(out, want_d, nd / 4, c->name);
        memset(out, 0, nd);
        tr->dequant(&w, 0, nb, out);
        expect_same_floats(out, want_d, nd / 4, c->name);
        /* matvec of ggml's weights: the double dot of ggml's floats, within the row's tolerance */
        float x[256], y[2][16];
        fill(x, 256, -1.0f, 1.0f);
        tr->matvec_ref(&w, x, y[0], 0, nb);
        tr->matvec(&w, x, y[1], 0, nb);
        for (int64_t r = 0; r < nb; r++) {
            double dot = 0, abs = 0;
            for (int i = 0; i < 256; i++) {
                dot += (double)want_d[r * 256 + i] * x[i];
                abs += fabs((double)want_d[r * 256 + i] * x[i]);
            }
            cr_assert_eq(y[0][r], (float)dot, "%s matvec_ref block %lld", c->name, (long long)r);
            cr_assert(fabs(y[1][r] - dot) <= tr->tol_atol + tr->tol_rtol * abs, "%s matvec block %lld: %.9g vs %.9g",
                      c->name, (long long)r, y[1][r], dot);
        }
        free(out); free(in); free(want_q); free(want_d);
    }
}

/* The worked example of lq_blocks.h: 6-bit scales and mins of Q4_K/Q5_K. */
Test(kquant, scale_min_worked_example) {
    const uint8_t s[12] = {0x41, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x9A, 0, 0, 0};
    uint8_t sc, m;
    lq_kq_scale_min(0, s, &sc, &m);
    cr_assert(sc == 1 && m == 5, "sub-block 0: %u %u", sc, m);
    lq_kq_scale_min(4, s, &sc, &m);
    cr_assert(sc == 26 && m == 9, "sub-block 4: %u %u", sc, m);
    /* all bits set: every scale and min is 63 */
    uint8_t f[12];
    memset(f, 0xFF, sizeof f);
    for (int j = 0; j < 8; j++) {
        lq_kq_scale_min(j, f, &sc, &m);
        cr_assert(sc == 63 && m == 63);
    }
}

/* ---- table rows and sizes -------------------------------------------------------------------- */

Test(kquant, rows_and_sizes) {
    for (size_t t = 0; t < N_KQ; t++) {
        const kq_case *c = &k_kq[t];
        const lq_wfmt_traits *tr = lq_wfmt_get(c->fmt);
        cr_assert_str_eq(tr->name, c->name);
        cr_assert_eq(lq_wfmt_from_name(c->name), c->fmt);
        cr_assert_eq(tr->bits_per_weight, c->bpw);
        cr_assert_eq(tr->bits_per_weight, (double)c->block_bytes * 8 / 256);
        cr_assert_eq(tr->gguf_type, c->gguf_type);
        cr_assert_eq(lq_wfmt_from_gguf_type(c->gguf_type), c->fmt);
        size_t rb;
        int64_t a0 = -1, a1 = -1;
        cr_assert(lq_wfmt_sizes(c->fmt, 3, 512, NULL, &rb, &a0, &a1));
        cr_assert(rb == 2 * c->block_bytes && a0 == 0 && a1 == 0, "%s sizes", c->name);
        const int64_t bad[] = {1, 255, 257, 300, 576 + 32};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
            cr_assert_eq(lq_wfmt_sizes(c->fmt, 3, bad[i], NULL, &rb, NULL, NULL), 0, "%s took %lld cols", c->name,
                         (long long)bad[i]);
    }
}

/* ---- fast vs ref ----------------------------------------------------------------------------- */

/* sum_c |W[r][c] x[c]| of the ref's weights */
static void abs_sums(const lq_weight *w, const float *x, int64_t r0, int64_t r1, double *s) {
    float *row = malloc((size_t)w->cols * sizeof(float));
    for (int64_t r = r0; r < r1; r++) {
        lq_wfmt_get(w->fmt)->dequant_ref(w, r, r + 1, row);
        double a = 0;
        for (int64_t c = 0; c < w->cols; c++) a += fabs((double)row[c] * x[c]);
        s[r - r0] = a;
    }
    free(row);
}

static void check_fast(const kq_case *c, const lq_weight *w, const char *what) {
    const lq_wfmt_traits *tr = lq_wfmt_get(c->fmt);
    const int64_t rows = w->rows, cols = w->cols;
    float *x = malloc((size_t)cols * sizeof(float)), *yf = malloc((size_t)rows * sizeof(float));
    float *yr = malloc((size_t)rows * sizeof(float));
    double *s = malloc((size_t)rows * sizeof(double));
    fill(x, cols, -1.0f, 1.0f);
    for (int pass = 0; pass < 2; pass++) {
        const int64_t r0 = pass ? rows / 3 : 0, r1 = pass ? rows - rows / 4 : rows;
        if (r1 <= r0) continue;
        tr->matvec(w, x, yf, r0, r1);
        tr->matvec_ref(w, x, yr, r0, r1);
        abs_sums(w, x, r0, r1, s);
        char msg[160];
        snprintf(msg, sizeof msg, "%s %s matvec rows [%lld,%lld) of %lld x %lld", c->name, what, (long long)r0,
                 (long long)r1, (long long)rows, (long long)cols);
        EXPECT_CLOSE(msg, yf, yr, s, r1 - r0, tr->tol_atol, tr->tol_rtol);
    }
    float *df = malloc((size_t)(rows * cols) * sizeof(float)), *dr = malloc((size_t)(rows * cols) * sizeof(float));
    tr->dequant(w, 0, rows, df);
    tr->dequant_ref(w, 0, rows, dr);
    cr_assert_eq(memcmp(df, dr, (size_t)(rows * cols) * sizeof(float)), 0, "%s %s dequant %lld x %lld: fast differs",
                 c->name, what, (long long)rows, (long long)cols);
    free(x); free(yf); free(yr); free(s); free(df); free(dr);
}

Test(kquant, fast_vs_ref) {
    const int64_t colss[] = {256, 512, 768, 1536, 2304};
    const int64_t rowss[] = {1, 3, 4, 5, 17, 67};
    for (size_t t = 0; t < N_KQ; t++) {
        const kq_case *c = &k_kq[t];
        for (size_t ci = 0; ci < sizeof colss / sizeof colss[0]; ci++) {
            for (size_t ri = 0; ri < sizeof rowss / sizeof rowss[0]; ri++) {
                const int64_t rows = rowss[ri], cols = colss[ci];
                void *buf;
                lq_weight w = make_weight(c, rows, cols, &buf);
                float *src = malloc((size_t)(rows * cols) * sizeof(float));
                for (int64_t r = 0; r < rows; r++) fill(src + r * cols, cols, r % 4 == 3 ? -0.2f : -1.0f, 1.0f + (float)(r % 5));
                lq_wfmt_get(c->fmt)->quantize_ref(src, &(lq_quant_params){0}, &w);
                check_fast(c, &w, "quantized");
                /* arbitrary bytes: every code and scale pattern, super-scales kept finite */
                uint8_t *b = buf;
                for (size_t i = 0; i < (size_t)rows * w.row_bytes; i++) b[i] = (uint8_t)rng_u32();
                for (int64_t k = 0; k < rows * (cols / 256); k++)
                    for (int o = 0; o < 2; o++)
                        if (c->d_off[o] >= 0) b[k * c->block_bytes + c->d_off[o] + 1] &= 0x3b; /* |d| < 2^0 */
                check_fast(c, &w, "random bytes");
                free(src); free(buf);
            }
        }
    }
}

/* ---- round trip ------------------------------------------------------------------------------ */

/* |dequant(quantize(w)) - w| <= roundtrip_rtol * max |w| of the super-block, on uniform, normal
 * and heavy-tailed (u^5) blocks whose super-scales are normal binary16 (amplitudes 1..100). */
Test(kquant, roundtrip_bound) {
    for (size_t t = 0; t < N_KQ; t++) {
        const kq_case *c = &k_kq[t];
        const lq_wfmt_traits *tr = lq_wfmt_get(c->fmt);
        const int64_t rows = 48, cols = 512;
        void *buf;
        lq_weight w = make_weight(c, rows, cols, &buf);
        float *src = malloc((size_t)(rows * cols) * sizeof(float)), *out = malloc((size_t)(rows * cols) * sizeof(float));
        for (int64_t i = 0; i < rows * cols; i++) {
            const float amp = powf(10.0f, (float)((i / 256) % 5) * 0.5f), u = rng_f(-1.0f, 1.0f);
            const int kind = (int)((i / 256) % 3);
            src[i] = amp * (kind == 0 ? u : kind == 1 ? u * u * u * u * u : (rng_f(-1, 1) + rng_f(-1, 1) + rng_f(-1, 1)));
        }
        tr->quantize_ref(src, &(lq_quant_params){0}, &w);
        tr->dequant_ref(&w, 0, rows, out);
        for (int64_t b0 = 0; b0 < rows * cols; b0 += 256) {
            float amax = 0;
            for (int64_t i = b0; i < b0 + 256; i++) amax = fmaxf(amax, fabsf(src[i]));
            for (int64_t i = b0; i < b0 + 256; i++)
                cr_assert(fabs((double)out[i] - src[i]) <= tr->roundtrip_rtol * amax, "%s element %lld: %.9g -> %.9g (max %.3g)",
                          c->name, (long long)i, src[i], out[i], amax);
        }
        free(src); free(out); free(buf);
    }
}

/* ---- lq_matmul on a pool --------------------------------------------------------------------- */

/* The f32-activation path (its tolerance is the row's); the integer path is test_int_act's and
 * test_kquant_q8k's. */
Test(kquant, matmul_decode_and_prefill) {
    lq_matmul_set_act_mode(LQ_ACT_MODE_F32);
    lq_pool *pool = lq_pool_create(3);
    cr_assert_not_null(pool);
    for (size_t t = 0; t < N_KQ; t++) {
        const kq_case *c = &k_kq[t];
        const lq_wfmt_traits *tr = lq_wfmt_get(c->fmt);
        const int64_t rows = 131, cols = 768;
        void *buf;
        lq_weight w = make_weight(c, rows, cols, &buf);
        float *src = malloc((size_t)(rows * cols) * sizeof(float));
        fill(src, rows * cols, -1.0f, 1.0f);
        tr->quantize_ref(src, &(lq_quant_params){0}, &w);
        const int64_t ns[] = {1, 5};
        for (size_t k = 0; k < 2; k++) {
            const int64_t n = ns[k];
            float *X = malloc((size_t)(n * cols) * sizeof(float)), *Y = malloc((size_t)(n * rows) * sizeof(float));
            float *Yr = malloc((size_t)(n * rows) * sizeof(float));
            double *s = malloc((size_t)(n * rows) * sizeof(double));
            fill(X, n * cols, -1.0f, 1.0f);
            for (int64_t i = 0; i < n * rows; i++) Y[i] = NAN;
            cr_assert_eq(lq_matmul(pool, &w, X, n, Y), LQ_KERNEL_OK);
            lq_matmul_ref(&w, X, n, Yr);
            for (int64_t i = 0; i < n; i++) abs_sums(&w, X + i * cols, 0, rows, s + i * rows);
            char msg[96];
            snprintf(msg, sizeof msg, "%s lq_matmul n=%lld", c->name, (long long)n);
            EXPECT_CLOSE(msg, Y, Yr, s, n * rows, tr->tol_atol, tr->tol_rtol);
            free(X); free(Y); free(Yr); free(s);
        }
        free(src); free(buf);
    }
    lq_pool_free(pool);
    lq_matmul_set_act_mode(LQ_ACT_MODE_AUTO);
}
