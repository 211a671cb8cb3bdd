/* bench_isa.c - each compressed-tensors / float format's decode kernels at the AVX2 level against
 * the AVX-512 level, in ONE run: bursts of the two levels (and of every format) interleaved, so a
 * change of load on a shared machine hits both alike; one thread, median and best time per
 * matvec, and the AVX-512 / AVX2 speed ratio of the medians. The load average is printed before
 * and after. Not a test: numbers go to docs/PERFORMANCE.md.
 *
 *   bench_isa [hot|cold] [reps]
 *     hot:  one 256 x 768 matrix per format (L2-resident): the kernel's compute ceiling
 *     cold: SmolLM2-135M's MLP shape 1536 x 576, as many copies as make >= 256 MB, each burst
 *           walks them all (every matvec reads its weights from DRAM, as decode does)
 * Rows: the f32-activation matvec of every format, and matvec_q (Q8_0 activations, the opt-in
 * LQ_INT_ACT=all path) of W8A16 and W4A16 ("+q8"). On a CPU without AVX-512 both columns run the
 * AVX2 kernel.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lq_blocks.h"
#include "lq_format.h"
#include "bench_util.h"

typedef struct bcase {
    const char *label;
    lq_wfmt fmt;
    lq_quant_params p;
    int int_act; /* 1: matvec_q with Q8_0 activations */
} bcase;

static const bcase k_cases[] = {
    {"f32", LQ_WFMT_F32, {0}, 0},
    {"f16", LQ_WFMT_F16, {0}, 0},
    {"bf16", LQ_WFMT_BF16, {0}, 0},
    {"w8a16", LQ_WFMT_W8A16, {0}, 0},
    {"w4a16g32", LQ_WFMT_W4A16, {.group_size = 32}, 0},
    {"w4a16g64a", LQ_WFMT_W4A16, {.group_size = 64, .asym = 1}, 0},
    {"fp8", LQ_WFMT_FP8_E4M3, {0}, 0},
    {"w8a16+q8", LQ_WFMT_W8A16, {0}, 1},
    {"w4a16g32+q8", LQ_WFMT_W4A16, {.group_size = 32}, 1},
    {"w4a16g64a+q8", LQ_WFMT_W4A16, {.group_size = 64, .asym = 1}, 1},
};
#define N_CASES (sizeof k_cases / sizeof k_cases[0])


typedef struct bw {
    lq_weight *w;
    void *buf;
    int copies;
    lq_matvec_fn mv[2];
    lq_matvec_q_fn mq[2];
} bw;

static bw make(const bcase *c, int64_t rows, int64_t cols, size_t min_total) {
    size_t rb;
    int64_t a0, a1;
    if (!lq_wfmt_sizes(c->fmt, rows, cols, &c->p, &rb, &a0, &a1)) { fprintf(stderr, "bench_isa: %s: bad shape\n", c->label); exit(1); }
    const size_t pay = (size_t)rows * rb, bytes = (pay + (size_t)(a0 + a1) * 4 + 63) & ~(size_t)63;
    bw b = {.copies = (int)((min_total + bytes - 1) / bytes)};
    if (b.copies < 1) b.copies = 1;
    b.buf = aligned_alloc(64, bytes * (size_t)b.copies);
    b.w = calloc((size_t)b.copies, sizeof *b.w);
    float *src = malloc((size_t)(rows * cols) * sizeof *src);
    if (!b.buf || !b.w || !src) { fprintf(stderr, "bench_isa: out of memory\n"); exit(1); }
    for (int64_t i = 0; i < rows * cols; i++) src[i] = rnd();
    const lq_wfmt_traits *t = lq_wfmt_get(c->fmt);
    for (int k = 0; k < b.copies; k++) {
        char *base = (char *)b.buf + (size_t)k * bytes;
        b.w[k] = (lq_weight){.fmt = c->fmt, .rows = rows, .cols = cols, .data = base, .row_bytes = rb,
                             .group_size = c->p.group_size,
                             .aux = {a0 ? base + pay : NULL, a1 ? base + pay + (size_t)a0 * 4 : NULL}};
        if (k > 0) { memcpy(base, b.buf, bytes); continue; }
        if (t->quantize_ref) { t->quantize_ref(src, &c->p, &b.w[0]); continue; }
        for (int64_t i = 0; i < rows * cols; i++) {
            if (c->fmt == LQ_WFMT_F32) ((float *)base)[i] = src[i];
            else if (c->fmt == LQ_WFMT_F16) ((uint16_t *)base)[i] = lq_f32_to_f16(src[i]);
            else ((uint16_t *)base)[i] = lq_f32_to_bf16(src[i]);
        }
    }
    free(src);
    const lq_isa lv[2] = {LQ_ISA_AVX2, LQ_ISA_AVX512};
    for (int l = 0; l < 2; l++) {
        lq_kernels_set_isa(lv[l]);
        b.mv[l] = lq_wfmt_get(c->fmt)->matvec;
        b.mq[l] = lq_wfmt_get(c->fmt)->matvec_q;
    }
    return b;
}

int main(int argc, char **argv) {
    const int cold = argc > 1 && strcmp(argv[1], "cold") == 0;
    const int reps = argc > 2 ? atoi(argv[2]) : (cold ? 15 : 201);
    if (reps < 1 || (argc > 1 && !cold && strcmp(argv[1], "hot") != 0)) {
        fprintf(stderr, "usage: bench_isa [hot|cold] [reps]\n");
        return 2;
    }
    const int64_t rows = cold ? 1536 : 256, cols = cold ? 576 : 768;
    const int burst = cold ? 0 : 10; /* cold: one matvec per copy */
    const lq_isa best = lq_cpu_isa();
    printf("# bench_isa %s: cpu level %s, %lldx%lld, 1 thread, %d reps, load %.2f\n", cold ? "cold" : "hot",
           lq_isa_name(best), (long long)rows, (long long)cols, reps, load1());
    bw b[N_CASES];
    float *x = malloc((size_t)cols * sizeof *x), *y = malloc((size_t)rows * sizeof *y);
    uint8_t *xq = malloc(lq_act_row_bytes(LQ_ACT_Q8_0, cols) + 64);
    for (int64_t i = 0; i < cols; i++) x[i] = rnd();
    lq_act_get(LQ_ACT_Q8_0)->quantize(x, cols, xq);
    for (size_t c = 0; c < N_CASES; c++) b[c] = make(&k_cases[c], rows, cols, cold ? (256u << 20) : 0);
    lq_kernels_set_isa(best);
    double *t = malloc(N_CASES * 2 * (size_t)reps * sizeof *t);
    for (int r = 0; r < reps; r++)
        for (size_t c = 0; c < N_CASES; c++)
            for (int l = 0; l < 2; l++) {
                const int n = cold ? b[c].copies : burst;
                const double t0 = now_s();
                for (int i = 0; i < n; i++) {
                    const lq_weight *w = &b[c].w[cold ? i : 0];
                    if (k_cases[c].int_act) b[c].mq[l](w, xq, y, 0, rows);
                    else b[c].mv[l](w, x, y, 0, rows);
                }
                t[(c * 2 + (size_t)l) * (size_t)reps + (size_t)r] = (now_s() - t0) / n;
            }
    printf("%-14s %11s %11s %11s %11s %9s %9s\n", "kernel", "avx2 us", "avx2 best", "avx512 us", "512 best",
           "x median", "x best");
    for (size_t c = 0; c < N_CASES; c++) {
        double med[2], bst[2];
        for (int l = 0; l < 2; l++) {
            double *tc = t + (c * 2 + (size_t)l) * (size_t)reps;
            qsort(tc, (size_t)reps, sizeof *tc, cmp_d);
            med[l] = tc[reps / 2] * 1e6;
            bst[l] = tc[0] * 1e6;
        }
        printf("%-14s %11.2f %11.2f %11.2f %11.2f %9.2f %9.2f\n", k_cases[c].label, med[0], bst[0], med[1],
               bst[1], med[0] / med[1], bst[0] / bst[1]);
    }
    printf("# load after: %.2f\n", load1());
    return 0;
}
