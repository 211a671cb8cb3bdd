/* test_kquant_q8k.c - the K-quant rows' integer-activation path against llama.cpp.
 *
 * External reference: tests/fixtures/gguf_blocks/kq_q8k_dot.txt, made by
 * scripts/gguf_vectors/make_kq_q8k_vectors.sh from a llama.cpp build's own ggml-cpu (the code
 * llama-perplexity runs): three activation rows (uniform; magnitudes 1e-3 / 30 / 1 with +-max ties
 * in both orders; a zero super-block and exact halves), ggml's quantize_row_q8_K bytes of each,
 * four weight rows per type (Q2_K..Q6_K, IQ4_XS; ggml's reference quantizer) and ggml's
 * vec_dot_<type>_q8_K of every pair. Checked: our Q8_K quantizer (ref and fast) equals ggml's
 * bytes; our matvec_q (ref and fast) on ggml's bytes equals ggml's dot within the row's tol (the
 * int32 block sums are exact; only the f32 order of the block sums may differ). The fast paths
 * are checked at every ISA level this CPU runs (AVX2, and AVX-512 where present).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lq_blocks.h"
#include "lq_format.h"

#define COLS 512
#define NACT 3
#define NW 4
#define QBYTES (COLS / 256 * 292)

typedef struct fixture {
    float x[NACT][COLS];
    uint8_t q8k[NACT][QBYTES];
    struct { char name[16]; uint8_t w[NW][COLS / 256 * 256]; float dot[NW][NACT]; } types[6];
    int ntypes;
} fixture;

static int hexbytes(const char *s, uint8_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) return 0;
        out[i] = (uint8_t)v;
    }
    return s[2 * n] == '\n' || s[2 * n] == 0;
}

static float bits_f32(unsigned u) {
    float f;
    uint32_t v = u;
    memcpy(&f, &v, 4);
    return f;
}

static int type_index(fixture *fx, const char *name) {
    for (int i = 0; i < fx->ntypes; i++)
        if (strcmp(fx->types[i].name, name) == 0) return i;
    cr_assert(fx->ntypes < 6, "fixture: too many types");
    snprintf(fx->types[fx->ntypes].name, sizeof fx->types[0].name, "%s", name);
    return fx->ntypes++;
}

static void load(fixture *fx) {
    char path[1024];
    snprintf(path, sizeof path, "%s/gguf_blocks/kq_q8k_dot.txt", LQ_FIXTURES_DIR);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "fixture %s missing", path);
    static char line[16384];
    int n_x = 0, n_q = 0, n_w = 0, n_dot = 0;
    while (fgets(line, sizeof line, f)) {
        char name[16];
        int a, r, cols, off;
        unsigned u;
        if (line[0] == '#' || strncmp(line, "act ", 4) == 0) continue;
        if (sscanf(line, "x %d%n", &a, &off) == 1) {
            cr_assert(a >= 0 && a < NACT);
            const char *p = line + off;
            for (int i = 0; i < COLS; i++) {
                int used;
                cr_assert(sscanf(p, " %x%n", &u, &used) == 1, "x %d value %d", a, i);
                fx->x[a][i] = bits_f32(u);
                p += used;
            }
            n_x++;
        } else if (sscanf(line, "q8k %d %n", &a, &off) == 1) {
            cr_assert(a >= 0 && a < NACT && hexbytes(line + off, fx->q8k[a], QBYTES), "q8k %d", a);
            n_q++;
        } else if (sscanf(line, "w %15s %d %d %n", name, &r, &cols, &off) == 3) {
            const int t = type_index(fx, name);
            const lq_wfmt fmt = lq_wfmt_from_name(name);
            size_t rb = 0;
            cr_assert(fmt != LQ_WFMT_COUNT && cols == COLS && r >= 0 && r < NW, "w %s", name);
            cr_assert(lq_wfmt_sizes(fmt, 1, COLS, &(lq_quant_params){0}, &rb, NULL, NULL));
            cr_assert(rb <= sizeof fx->types[t].w[r] && hexbytes(line + off, fx->types[t].w[r], rb), "w %s %d", name, r);
            n_w++;
        } else if (sscanf(line, "dot %15s %d %d %x", name, &r, &a, &u) == 4) {
            const int t = type_index(fx, name);
            cr_assert(r >= 0 && r < NW && a >= 0 && a < NACT);
            fx->types[t].dot[r][a] = bits_f32(u);
            n_dot++;
        }
    }
    fclose(f);
    cr_assert(n_x == NACT && n_q == NACT && fx->ntypes == 6 && n_w == 6 * NW && n_dot == 6 * NW * NACT,
              "fixture incomplete: %d x, %d q8k, %d types, %d w, %d dot", n_x, n_q, fx->ntypes, n_w, n_dot);
}

static fixture g_fx;

Test(kquant_q8k, activation_bytes_equal_llama_cpp) {
    load(&g_fx);
    const lq_act_traits *a = lq_act_get(LQ_ACT_Q8_K);
    uint8_t got[QBYTES];
    for (int r = 0; r < NACT; r++)
        for (int fast = 0; fast < 2; fast++) {
            memset(got, 0xAA, sizeof got);
            (fast ? a->quantize : a->quantize_ref)(g_fx.x[r], COLS, got);
            for (int i = 0; i < QBYTES; i++)
                cr_assert_eq(got[i], g_fx.q8k[r][i], "row %d (fast %d): byte %d is %02x, ggml's %02x", r, fast, i,
                             got[i], g_fx.q8k[r][i]);
        }
}

/* The ISA levels the fast paths are checked at: AVX2 .. lq_cpu_isa() (the scalar level alone on a
 * CPU without AVX2). */
static int first_level(void) { return lq_cpu_isa() >= LQ_ISA_AVX2 ? LQ_ISA_AVX2 : LQ_ISA_SCALAR; }

static void dots_at_level(void);

Test(kquant_q8k, dot_products_equal_llama_cpp) {
    load(&g_fx);
    for (int isa = first_level(); isa <= (int)lq_cpu_isa(); isa++) {
        cr_assert_eq(lq_kernels_set_isa((lq_isa)isa), (lq_isa)isa);
        dots_at_level();
    }
    lq_kernels_set_isa(lq_cpu_isa());
}

static void dots_at_level(void) {
    const lq_act_traits *a = lq_act_get(LQ_ACT_Q8_K);
    const char *level = lq_isa_name(lq_kernels_isa());
    float xd[COLS], wd[COLS];
    for (int t = 0; t < g_fx.ntypes; t++) {
        const lq_wfmt fmt = lq_wfmt_from_name(g_fx.types[t].name);
        const lq_wfmt_traits *tr = lq_wfmt_get(fmt);
        cr_assert_eq(tr->act, LQ_ACT_Q8_K, "%s: integer path on Q8_K", tr->name);
        size_t rb = 0;
        lq_wfmt_sizes(fmt, 1, COLS, &(lq_quant_params){0}, &rb, NULL, NULL);
        for (int r = 0; r < NW; r++) {
            const lq_weight w = {.fmt = fmt, .rows = 1, .cols = COLS, .data = g_fx.types[t].w[r], .row_bytes = rb};
            tr->dequant_ref(&w, 0, 1, wd);
            for (int ai = 0; ai < NACT; ai++) {
                a->dequant_ref(g_fx.q8k[ai], COLS, xd);
                double scale = 0;
                for (int c = 0; c < COLS; c++) scale += fabs((double)wd[c] * xd[c]);
                const double tol = tr->tol_atol + tr->tol_rtol * scale;
                const float want = g_fx.types[t].dot[r][ai];
                float got[2];
                tr->matvec_q_ref(&w, g_fx.q8k[ai], &got[0], 0, 1);
                tr->matvec_q(&w, g_fx.q8k[ai], &got[1], 0, 1);
                for (int k = 0; k < 2; k++)
                    cr_assert(fabs((double)got[k] - want) <= tol, "%s w%d x%d %s (%s): %.9g vs ggml %.9g (tol %.3g)",
                              tr->name, r, ai, k ? "fast" : "ref", level, got[k], want, tol);
            }
        }
    }
}

/* Every row with a multi-token kernel (gemm_q): equal to matvec_q token by token, bit for bit
 * (token counts around the token groups: 4 at AVX2, 8 at AVX-512; a row sub-range, a y stride wider than the range), at
 * every ISA level: AVX2 has gemm_q for Q4_K/Q5_K/Q6_K, AVX-512 for all six K-quant rows. */
static int gemm_rows_at_level(void);

Test(kquant_q8k, gemm_q_equals_matvec_q) {
    for (int isa = first_level(); isa <= (int)lq_cpu_isa(); isa++) {
        cr_assert_eq(lq_kernels_set_isa((lq_isa)isa), (lq_isa)isa);
        const int with = gemm_rows_at_level();
        if (isa >= LQ_ISA_AVX2) cr_assert(with >= 3, "Q4_K, Q5_K and Q6_K have gemm_q (%s)", lq_isa_name((lq_isa)isa));
        if (isa >= LQ_ISA_AVX512) {
            static const lq_wfmt kq[] = {LQ_WFMT_Q2_K, LQ_WFMT_Q3_K, LQ_WFMT_Q4_K, LQ_WFMT_Q5_K, LQ_WFMT_Q6_K, LQ_WFMT_IQ4_XS};
            for (size_t i = 0; i < sizeof kq / sizeof kq[0]; i++)
                cr_assert(lq_wfmt_get(kq[i])->gemm_q, "%s has gemm_q at AVX-512", lq_wfmt_get(kq[i])->name);
        }
    }
    lq_kernels_set_isa(lq_cpu_isa());
}

static int gemm_rows_at_level(void) {
    int with = 0;
    for (int f = 0; f < LQ_WFMT_COUNT; f++) {
        const lq_wfmt_traits *tr = lq_wfmt_get((lq_wfmt)f);
        if (!tr->gemm_q) continue;
        /* rows with side tensors (the compressed-tensors W8A16/W4A16 scales and zero points) need
         * buffers this check does not make; test_ct_int_act checks their gemm_q per level */
        int64_t n_aux0 = 0;
        if (!lq_wfmt_sizes((lq_wfmt)f, 19, 768, &(lq_quant_params){.group_size = 32}, NULL, &n_aux0, NULL) || n_aux0 > 0)
            continue;
        with++;
        const lq_act_traits *a = lq_act_get(tr->act);
        const int64_t rows = 19, cols = 768, nmax = 17, ldy = 23;
        size_t rb = 0;
        cr_assert(lq_wfmt_sizes((lq_wfmt)f, rows, cols, &(lq_quant_params){.group_size = 32}, &rb, NULL, NULL));
        uint8_t *wd = malloc(rb * rows);
        float *src = malloc(sizeof(float) * rows * cols), *x = malloc(sizeof(float) * nmax * cols);
        for (int64_t i = 0; i < rows * cols; i++) src[i] = (float)((i * 7919) % 2001 - 1000) / 1000.0f;
        for (int64_t i = 0; i < nmax * cols; i++) x[i] = (float)((i * 104729) % 3001 - 1500) / 100.0f;
        lq_weight w = {.fmt = (lq_wfmt)f, .rows = rows, .cols = cols, .data = wd, .row_bytes = rb};
        tr->quantize_ref(src, &(lq_quant_params){.group_size = 32}, &w);
        const size_t xs = lq_act_row_bytes(tr->act, cols);
        uint8_t *xq = malloc(xs * nmax);
        for (int64_t t = 0; t < nmax; t++) a->quantize(x + t * cols, cols, xq + t * xs);
        float y[17 * 23], want;
        const int64_t ns[] = {1, 3, 4, 5, 8, 9, 17};
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
            for (int i = 0; i < 17 * 23; i++) y[i] = NAN;
            tr->gemm_q(&w, xq, xs, ns[k], y, ldy, 2, 17);
            for (int64_t t = 0; t < ns[k]; t++)
                for (int64_t r = 2; r < 17; r++) {
                    tr->matvec_q(&w, xq + t * xs, &want, r, r + 1);
                    cr_assert(memcmp(&y[t * ldy + r - 2], &want, 4) == 0, "%s (%s) n=%lld token %lld row %lld: %.9g vs %.9g",
                              tr->name, lq_isa_name(lq_kernels_isa()), (long long)ns[k], (long long)t, (long long)r, y[t * ldy + r - 2], want);
                }
        }
        free(wd); free(src); free(x); free(xq);
    }
    return with;
}
