/* bench_ct_int.c - one lq_matmul of a compressed-tensors weight with integer activations (the
 * row's layout at this ISA level: Q8_0, opt-in; W4A16's Q16 at AVX-512, on by default; forced on
 * here with LQ_ACT_MODE_ALL) against f32 activations (LQ_ACT_MODE_F32), in the calling
 * thread's CPU time (CLOCK_THREAD_CPUTIME_ID: on a shared machine, wall time measures the other
 * processes), best of 5. Not a test: numbers go to docs/PERFORMANCE.md.
 *
 *   LQ_INT_ACT=all build/bench_ct_int FMT ROWS COLS N [GROUP]   (FMT: w4a16, w8a16, w8a8; 1 thread)
 * W8A8 always runs its own integer tile (both lines then time the same path).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lq_format.h"
#include "lq_ops.h"
#include "lq_pool.h"
#include "bench_util.h"


/* W8A8 has no separate activation layout: its own tile quantizes per token */
static const char *act_name(lq_wfmt fmt) {
    const lq_act_traits *a = lq_act_get(lq_wfmt_get(fmt)->act);
    return a ? a->name : lq_wfmt_get(fmt)->matmul_tile ? "own-tile" : "none";
}

static float frand(void) { return (float)rand() / (float)RAND_MAX - 0.5f; }

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: LQ_INT_ACT=all bench_ct_int w4a16|w8a16 ROWS COLS N [GROUP]\n");
        return 2;
    }
    const lq_wfmt fmt = lq_wfmt_from_name(argv[1]);
    const int64_t rows = atoll(argv[2]), cols = atoll(argv[3]), n = atoll(argv[4]);
    const lq_quant_params p = {.group_size = argc > 5 ? atoi(argv[5]) : 32};
    size_t rb;
    int64_t a0, a1;
    if (fmt == LQ_WFMT_COUNT || n < 1 || !lq_wfmt_sizes(fmt, rows, cols, &p, &rb, &a0, &a1)) {
        fprintf(stderr, "bench_ct_int: bad format or shape\n");
        return 2;
    }
    float *src = malloc((size_t)(rows * cols) * sizeof *src);
    float *X = malloc((size_t)(n * cols) * sizeof *X), *Y = malloc((size_t)(n * rows) * sizeof *Y);
    void *data = malloc((size_t)rows * rb);
    float *s0 = malloc((size_t)(a0 + 1) * sizeof *s0), *s1 = a1 ? malloc((size_t)a1 * sizeof *s1) : NULL;
    if (!src || !X || !Y || !data || !s0) return 1;
    for (int64_t i = 0; i < rows * cols; i++) src[i] = frand();
    for (int64_t i = 0; i < n * cols; i++) X[i] = frand();
    lq_weight w = {.fmt = fmt, .rows = rows, .cols = cols, .data = data, .row_bytes = rb, .aux = {s0, s1}};
    lq_wfmt_get(fmt)->quantize_ref(src, &p, &w);
    for (int mode = 0; mode < 2; mode++) {
        lq_matmul_set_act_mode(mode ? LQ_ACT_MODE_F32 : LQ_ACT_MODE_ALL); /* the CT rows are opt-in */
        double best = 1e30;
        for (int r = 0; r < 5; r++) {
            const double t0 = cpu_now();
            lq_matmul(NULL, &w, X, n, Y);
            const double t = cpu_now() - t0;
            best = t < best ? t : best;
        }
        printf("%-6s %5lld x %-5lld n=%-4lld %-9s %9.3f ms %7.1f GMAC/s%s\n", argv[1], (long long)rows,
               (long long)cols, (long long)n, mode ? "f32-act" : act_name(fmt), best * 1e3,
               (double)(rows * cols * n) / best * 1e-9,
               !mode && !lq_matmul_uses_int_act(&w) && !lq_wfmt_get(fmt)->matmul_tile ? "  (no int path: set LQ_INT_ACT=all)" : "");
    }
    free(src), free(X), free(Y), free(data), free(s0), free(s1);
    return 0;
}
