/* test_legacy_dot.c - the GGUF legacy blocks' integer-activation path against llama.cpp itself.
 *
 * External reference: tests/fixtures/gguf_blocks/vecdot.txt, printed by
 * scripts/gguf_vectors/ggml_vecdot.c linked against ggml-cpu from the llama-cpp-python sdist's
 * vendor/llama.cpp (x86 build; scripts/gguf_vectors/make_dot_vectors.sh). Per type (Q8_0, Q4_0,
 * Q4_1, Q5_0, Q5_1, IQ4_NL): activation rows X, the blocks ggml-cpu's quantize_row_q8_0 / q8_1
 * made of them (A), weight rows from ggml_quantize_chunk (W) and ggml's vec_dot of every W with
 * every A (Y). Checks: our activation quantizer (fast and ref) gives A byte for byte; matvec_q and
 * matvec_q_ref on (W, A) give Y within the row's tol_atol + tol_rtol * sum_c |W[c] xq[c]|, the
 * summation-order bound (ggml sums the same exact int32 block sums in another f32 order). The
 * blocks include an all-zero activation block, a binary16-subnormal scale, a large one and exact
 * .5 ties of x * 127 / amax. Every test runs at each ISA level the CPU has (AVX2, and AVX-512 VNNI
 * where present: lq_kernels_set_isa), so both sets of fast paths meet the same references. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KT_RNG_SEED 17
#include "kern_test_util.h"
#include "lq_format.h"
#include "lq_ops.h"
#include "lq_pool.h"

#define MAXC 256
#define MAXR 8
#define MAXT 8

typedef struct vset {
    char type[16];
    int rows, cols, tokens;
    float X[MAXT][MAXC];
    uint8_t A[MAXT][MAXC / 32 * 36];
    uint8_t W[MAXR][MAXC / 32 * 34];
    float Y[MAXR * MAXT];
} vset;

static int hexval(int c) { return c <= '9' ? c - '0' : (c | 32) - 'a' + 10; }

static void parse_bytes(const char *p, uint8_t *out, size_t n, int line) {
    while (*p == ' ') p++;
    for (size_t i = 0; i < n; i++, p += 2) {
        cr_assert(p[0] && p[1] && p[0] != '\n', "vecdot.txt:%d: %zu bytes expected", line, n);
        out[i] = (uint8_t)(hexval(p[0]) << 4 | hexval(p[1]));
    }
}

static void parse_floats(const char *p, float *out, int n, int line) {
    for (int i = 0; i < n; i++) {
        char *end;
        const unsigned long v = strtoul(p, &end, 16);
        cr_assert(end != p, "vecdot.txt:%d: %d floats expected", line, n);
        const uint32_t b = (uint32_t)v;
        memcpy(&out[i], &b, 4);
        p = end;
    }
}

/* Reads every T block of the file into sets; returns how many. */
static int load(vset *sets, int max) {
    char path[512];
    snprintf(path, sizeof path, "%s/gguf_blocks/vecdot.txt", LQ_FIXTURES_DIR);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s: cannot open", path);
    size_t cap = 1 << 16;
    char *buf = malloc(cap);
    int n = -1, line = 0, nx = 0, na = 0, nw = 0;
    while (fgets(buf, (int)cap, f)) {
        line++;
        vset *s = n >= 0 ? &sets[n] : NULL;
        switch (buf[0]) {
        case 'T':
            cr_assert(n + 1 < max, "vecdot.txt: too many sets");
            s = &sets[++n];
            cr_assert_eq(sscanf(buf, "T %15s %d %d %d", s->type, &s->rows, &s->cols, &s->tokens), 4);
            cr_assert(s->rows <= MAXR && s->cols <= MAXC && s->tokens <= MAXT && s->cols % 32 == 0);
            nx = na = nw = 0;
            break;
        case 'X': parse_floats(buf + 1, s->X[nx++], s->cols, line); break;
        case 'A': {
            const lq_wfmt_traits *t = lq_wfmt_get(lq_wfmt_from_name(s->type));
            parse_bytes(buf + 1, s->A[na++], lq_act_row_bytes(t->act, s->cols), line);
            break;
        }
        case 'W': {
            size_t rb = 0;
            cr_assert(lq_wfmt_sizes(lq_wfmt_from_name(s->type), 1, s->cols, &(lq_quant_params){0}, &rb, NULL, NULL));
            parse_bytes(buf + 1, s->W[nw++], rb, line);
            break;
        }
        case 'Y': parse_floats(buf + 1, s->Y, s->rows * s->tokens, line); break;
        default: break;
        }
    }
    free(buf);
    fclose(f);
    return n + 1;
}

/* fn at every ISA level this CPU runs (the scalar level too where there is no AVX2) */
static void each_level(void (*fn)(void)) {
    const lq_isa best = lq_cpu_isa();
    for (int isa = best >= LQ_ISA_AVX2 ? LQ_ISA_AVX2 : LQ_ISA_SCALAR; isa <= (int)best; isa++) {
        cr_assert_eq(lq_kernels_set_isa((lq_isa)isa), (lq_isa)isa);
        fn();
    }
    lq_kernels_set_isa(best);
}

static void vectors_at_level(void) {
    static vset sets[8];
    const int n = load(sets, 8);
    cr_assert_eq(n, 6, "six legacy types expected, got %d", n);
    for (int k = 0; k < n; k++) {
        const vset *s = &sets[k];
        const lq_wfmt f = lq_wfmt_from_name(s->type);
        cr_assert(f != LQ_WFMT_COUNT, "%s: no traits row", s->type);
        const lq_wfmt_traits *t = lq_wfmt_get(f);
        cr_assert(t->act != LQ_ACT_NONE, "%s: no integer path", s->type);
        const lq_act_traits *a = lq_act_get(t->act);
        const size_t arb = lq_act_row_bytes(t->act, s->cols);
        size_t wrb = 0;
        lq_wfmt_sizes(f, 1, s->cols, &(lq_quant_params){0}, &wrb, NULL, NULL);
        /* the weight rows side by side as one matrix */
        uint8_t *W = malloc(wrb * (size_t)s->rows);
        for (int r = 0; r < s->rows; r++) memcpy(W + r * wrb, s->W[r], wrb);
        const lq_weight w = {.fmt = f, .rows = s->rows, .cols = s->cols, .data = W, .row_bytes = wrb};
        float *wd = malloc(sizeof(float) * (size_t)(s->rows * s->cols));
        t->dequant_ref(&w, 0, s->rows, wd);
        for (int tk = 0; tk < s->tokens; tk++) {
            uint8_t qf[MAXC / 32 * 36], qr[MAXC / 32 * 36];
            a->quantize(s->X[tk], s->cols, qf);
            a->quantize_ref(s->X[tk], s->cols, qr);
            for (size_t i = 0; i < arb; i++) {
                cr_assert_eq(qf[i], s->A[tk][i], "%s token %d: activation byte %zu: fast %02x, ggml %02x",
                             s->type, tk, i, qf[i], s->A[tk][i]);
                cr_assert_eq(qr[i], s->A[tk][i], "%s token %d: activation byte %zu: ref %02x, ggml %02x",
                             s->type, tk, i, qr[i], s->A[tk][i]);
            }
            float xd[MAXC], yf[MAXR], yr[MAXR], want[MAXR];
            double scale[MAXR];
            a->dequant_ref(s->A[tk], s->cols, xd);
            for (int r = 0; r < s->rows; r++) {
                double sc = 0;
                for (int c = 0; c < s->cols; c++) sc += fabs((double)wd[r * s->cols + c] * xd[c]);
                scale[r] = sc;
                want[r] = s->Y[r * s->tokens + tk];
            }
            t->matvec_q(&w, s->A[tk], yf, 0, s->rows);
            t->matvec_q_ref(&w, s->A[tk], yr, 0, s->rows);
            char what[96];
            snprintf(what, sizeof what, "%.15s token %d matvec_q vs ggml vec_dot", s->type, tk);
            EXPECT_CLOSE(what, yf, want, scale, s->rows, t->tol_atol, t->tol_rtol);
            snprintf(what, sizeof what, "%.15s token %d matvec_q_ref vs ggml vec_dot", s->type, tk);
            EXPECT_CLOSE(what, yr, want, scale, s->rows, t->tol_atol, t->tol_rtol);
        }
        free(W);
        free(wd);
    }
}

Test(legacy_dot, llama_cpp_vectors) { each_level(vectors_at_level); }

/* lq_matmul's prefill (n > 1 tokens: the format's multi-token tile where it has one) against the
 * per-token scalar spec on the same quantized activations: within the row's summation-order
 * tolerance, for token counts around the tile's 4 (1..9) and row counts around its 2 and the
 * matvec's 4, at 1 and 2 threads. */
static const lq_wfmt g_fmts[] = {LQ_WFMT_Q8_0, LQ_WFMT_Q4_0, LQ_WFMT_Q4_1, LQ_WFMT_Q5_0, LQ_WFMT_Q5_1, LQ_WFMT_IQ4_NL};

static void prefill_at_level(void) {
    const int64_t rows = 37, cols = 256, nmax = 9;
    float *src = malloc(sizeof(float) * (size_t)(rows * cols)), *X = malloc(sizeof(float) * (size_t)(nmax * cols));
    float *Y = malloc(sizeof(float) * (size_t)(nmax * rows)), *yr = malloc(sizeof(float) * (size_t)rows);
    double *scale = malloc(sizeof(double) * (size_t)rows);
    float *wd = malloc(sizeof(float) * (size_t)(rows * cols)), *xd = malloc(sizeof(float) * (size_t)cols);
    fill(src, rows * cols, -1.0f, 1.0f);
    fill(X, nmax * cols, -3.0f, 3.0f);
    lq_matmul_set_act_mode(LQ_ACT_MODE_AUTO);
    for (size_t k = 0; k < sizeof g_fmts / sizeof g_fmts[0]; k++) {
        const lq_wfmt_traits *t = lq_wfmt_get(g_fmts[k]);
        const lq_act_traits *a = lq_act_get(t->act);
        qweight q;
        cr_assert(kt_quantize(g_fmts[k], src, rows, cols, &(lq_quant_params){.group_size = 32}, &q));
        t->dequant_ref(&q.w, 0, rows, wd);
        uint8_t *xq = malloc(lq_act_row_bytes(t->act, cols));
        for (int th = 1; th <= 2; th++) {
            lq_pool *pool = lq_pool_create(th);
            for (int64_t n = 2; n <= nmax; n++) {
                cr_assert_eq(lq_matmul(pool, &q.w, X, n, Y), LQ_KERNEL_OK);
                for (int64_t i = 0; i < n; i++) {
                    a->quantize(X + i * cols, cols, xq);
                    a->dequant_ref(xq, cols, xd);
                    t->matvec_q_ref(&q.w, xq, yr, 0, rows);
                    for (int64_t r = 0; r < rows; r++) {
                        double s = 0;
                        for (int64_t c = 0; c < cols; c++) s += fabs((double)wd[r * cols + c] * xd[c]);
                        scale[r] = s;
                    }
                    char what[96];
                    snprintf(what, sizeof what, "%s n=%lld token %lld threads %d", t->name, (long long)n,
                             (long long)i, th);
                    EXPECT_CLOSE(what, Y + i * rows, yr, scale, rows, t->tol_atol, t->tol_rtol);
                }
            }
            lq_pool_free(pool);
        }
        free(xq);
        kt_qfree(&q);
    }
    free(src), free(X), free(Y), free(yr), free(scale), free(wd), free(xd);
}

Test(legacy_dot, prefill_tile_equals_per_token_spec) { each_level(prefill_at_level); }

/* lq_format.h: gemm_q equals the same level's matvec_q bit for bit. Token counts around the
 * tiles' 4 and 8 (1, 3, 4, 5, 8, 9, 17), a row sub-range (2..17: groups of 4 with a partial one,
 * and a start that is not a multiple of 4), a y stride wider than the range; matvec_q one row at
 * a time, so a row computes the same wherever it sits in a group. Two widths: 768 columns, and
 * 16416 (513 blocks), past the AVX-512 tiles' per-token tables (QV_PRE_MAX), where they take
 * the per-token loop. */
static void gemm_at_level(void) {
    enum { NMAX = 17, LDY = 23 };
    const int64_t rows = 19, widths[] = {768, 16416};
    for (size_t c = 0; c < 2; c++)
    for (size_t k = 0; k < sizeof g_fmts / sizeof g_fmts[0]; k++) {
        const int64_t cols = widths[c];
        const lq_wfmt_traits *tr = lq_wfmt_get(g_fmts[k]);
        const lq_act_traits *a = lq_act_get(tr->act);
        if (!tr->gemm_q) continue;
        float *src = malloc(sizeof(float) * rows * cols), *x = malloc(sizeof(float) * NMAX * cols);
        fill(src, rows * cols, -1.0f, 1.0f);
        fill(x, NMAX * cols, -3.0f, 3.0f);
        qweight q;
        cr_assert(kt_quantize(g_fmts[k], src, rows, cols, &(lq_quant_params){.group_size = 32}, &q));
        const size_t xs = lq_act_row_bytes(tr->act, cols);
        uint8_t *xq = malloc(xs * NMAX);
        for (int64_t t = 0; t < NMAX; t++) a->quantize(x + t * cols, cols, xq + t * xs);
        float y[NMAX * LDY], want;
        const int64_t ns[] = {1, 3, 4, 5, 8, 9, 17};
        for (size_t m = 0; m < sizeof ns / sizeof ns[0]; m++) {
            for (int i = 0; i < NMAX * LDY; i++) y[i] = NAN;
            tr->gemm_q(&q.w, xq, xs, ns[m], y, LDY, 2, 17);
            for (int64_t t = 0; t < ns[m]; t++)
                for (int64_t r = 2; r < 17; r++) {
                    tr->matvec_q(&q.w, xq + t * xs, &want, r, r + 1);
                    cr_assert(memcmp(&y[t * LDY + r - 2], &want, 4) == 0,
                              "%s %s %lld cols n=%lld token %lld row %lld: gemm_q %.9g vs matvec_q %.9g", tr->name,
                              lq_isa_name(lq_kernels_isa()), (long long)cols, (long long)ns[m], (long long)t,
                              (long long)r, y[t * LDY + r - 2], want);
                }
            for (int64_t t = 0; t < ns[m]; t++) cr_assert(isnan(y[t * LDY + 15]), "%s: wrote past r1", tr->name);
        }
        free(src), free(x), free(xq);
        kt_qfree(&q);
    }
}

Test(legacy_dot, gemm_q_equals_matvec_q_every_level) { each_level(gemm_at_level); }
