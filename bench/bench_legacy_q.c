/* bench_legacy_q.c - the GGUF legacy blocks' integer-activation kernels (matvec_q for decode,
 * gemm_q for prefill) at each ISA level this CPU has, single thread, hot cache (one weight
 * matrix that stays in L2), levels interleaved burst by burst so a shared machine's load hits
 * both alike. Time is the thread's CPU time (CLOCK_THREAD_CPUTIME_ID: time spent descheduled by
 * other processes is not counted). Prints G weights/s per level, median (best) of the bursts,
 * and the 1-minute load average before and after. Not a test: numbers go to docs/PERFORMANCE.md.
 *
 * usage: bench_legacy_q [ROWS=1536 COLS=576 [TOKENS=16 [BURSTS=61]]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lq_format.h"
#include "bench_util.h"

#define MAXB 1001


int main(int argc, char **argv) {
    const int64_t rows = argc > 2 ? atoll(argv[1]) : 1536, cols = argc > 2 ? atoll(argv[2]) : 576;
    const int64_t ntok = argc > 3 ? atoll(argv[3]) : 16;
    const int bursts = argc > 4 ? atoi(argv[4]) : 61;
    if (rows < 1 || cols < 32 || cols % 32 || ntok < 1 || bursts < 1 || bursts > MAXB) {
        fprintf(stderr, "bench_legacy_q: usage: bench_legacy_q [ROWS COLS [TOKENS [BURSTS<=%d]]]\n", MAXB);
        return 2;
    }
    const lq_wfmt fmts[] = {LQ_WFMT_Q8_0, LQ_WFMT_Q4_0, LQ_WFMT_Q4_1, LQ_WFMT_Q5_0, LQ_WFMT_Q5_1, LQ_WFMT_IQ4_NL};
    const lq_isa best = lq_cpu_isa();
    const int lo = LQ_ISA_AVX2, nlev = best >= LQ_ISA_AVX2 ? (int)best - lo + 1 : 0;
    if (!nlev) {
        fprintf(stderr, "bench_legacy_q: no AVX2 on this CPU\n");
        return 2;
    }
    printf("bench_legacy_q %lld x %lld, gemm %lld tokens, %d bursts, 1 thread, load %.2f\n", (long long)rows,
           (long long)cols, (long long)ntok, bursts, load1());
    printf("%-7s %-6s %-7s %22s %22s\n", "format", "kernel", "isa", "G weights/s median", "(best)");
    float *src = malloc(sizeof(float) * (size_t)(rows * cols)), *X = malloc(sizeof(float) * (size_t)(ntok * cols));
    float *Y = malloc(sizeof(float) * (size_t)(ntok * rows));
    for (int64_t i = 0; i < rows * cols; i++) src[i] = rnd();
    for (int64_t i = 0; i < ntok * cols; i++) X[i] = 3.0f * rnd();
    static double g[LQ_ISA_COUNT][2][MAXB];
    for (size_t k = 0; k < sizeof fmts / sizeof fmts[0]; k++) {
        size_t rb = 0;
        const lq_quant_params p = {.group_size = 32};
        if (!lq_wfmt_sizes(fmts[k], rows, cols, &p, &rb, NULL, NULL)) continue;
        void *data = malloc(rb * (size_t)rows);
        lq_weight w = {.fmt = fmts[k], .rows = rows, .cols = cols, .data = data, .row_bytes = rb};
        const lq_wfmt_traits *t0 = lq_wfmt_get(fmts[k]);
        t0->quantize_ref(src, &p, &w);
        const lq_act_traits *a = lq_act_get(t0->act);
        const size_t xs = lq_act_row_bytes(t0->act, cols);
        uint8_t *xq = malloc(xs * (size_t)ntok);
        for (int64_t i = 0; i < ntok; i++) a->quantize(X + i * cols, cols, xq + (size_t)i * xs);
        /* calls per burst: about 2e7 weights (a few ms) */
        const int reps = (int)(2e7 / (double)(rows * cols)) + 1, greps = reps / (int)ntok + 1;
        for (int b = 0; b < bursts; b++)
            for (int l = 0; l < nlev; l++) {
                lq_kernels_set_isa((lq_isa)(lo + l));
                const lq_wfmt_traits *t = lq_wfmt_get(fmts[k]);
                double c0 = cpu_now();
                for (int r = 0; r < reps; r++) t->matvec_q(&w, xq, Y, 0, rows);
                double c1 = cpu_now();
                g[l][0][b] = (double)(rows * cols) * reps / (c1 - c0) * 1e-9;
                c0 = cpu_now();
                for (int r = 0; r < greps; r++) t->gemm_q(&w, xq, xs, ntok, Y, rows, 0, rows);
                c1 = cpu_now();
                g[l][1][b] = (double)(rows * cols) * (double)ntok * greps / (c1 - c0) * 1e-9;
            }
        for (int kind = 0; kind < 2; kind++) {
            double med[LQ_ISA_COUNT];
            for (int l = 0; l < nlev; l++) {
                qsort(g[l][kind], (size_t)bursts, sizeof(double), cmp_d);
                med[l] = g[l][kind][bursts / 2];
                printf("%-7s %-6s %-7s %22.2f %21.2f)", t0->name, kind ? "gemm_q" : "matv_q", lq_isa_name((lq_isa)(lo + l)),
                       med[l], g[l][kind][bursts - 1]);
                if (l) printf("   x%.2f vs %s", med[l] / med[0], lq_isa_name((lq_isa)lo));
                printf("\n");
            }
        }
        free(data), free(xq);
    }
    lq_kernels_set_isa(best);
    printf("load after %.2f\n", load1());
    free(src), free(X), free(Y);
    return 0;
}
