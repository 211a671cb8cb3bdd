/* bench_kquant.c - decode matvec of llama.cpp's K-quant formats on SmolLM2-135M shapes: GB/s of
 * block bytes against the measured read bandwidth, fast vs ref. Run by hand; numbers go to
 * docs/PERFORMANCE.md.
 *
 * usage: bench_kquant [threads=2] [bandwidth_MB=512]
 *
 * Shapes: the down_proj of SmolLM2-135M (576 x 1536) and of Gemma-3-270M (640 x 2048). Their other
 * matrices have 576 / 640 input columns, not a multiple of 256, so llama.cpp cannot store them
 * as K-quants (its Q4_K_M falls back to Q5_0 / Q8_0 there), and neither can we. Each timed
 * pass walks enough copies (>= 256 MB) that nothing is served from L3, as in a forward pass over
 * distinct layers: median of 7 passes (best in brackets). `hot` is one thread on one copy that
 * stays in L2, 301 bursts of 10 matvecs: the kernel's compute ceiling in G weights/s, median
 * (best). `hot int8` is the same for the integer-activation path of rows that have one (quantize x
 * into the row's activation blocks + matvec_q, as lq_matmul's decode does).
 *
 * usage: bench_kquant isa [bursts=301]
 *   the integer-activation kernels at each ISA level this CPU runs (AVX2 vs AVX-512), one thread,
 *   hot (one copy in L2), the levels' bursts interleaved so both see the same machine load:
 *   decode (matvec_q of one token, 10 per burst) and prefill (gemm_q of 64 tokens, or matvec_q
 *   per token where the row has no gemm_q), G weights x tokens / s, median (best); the load
 *   average is printed before and after.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lq_bandwidth.h"
#include "lq_format.h"
#include "lq_ops.h"
#include "lq_pool.h"
#include "bench_util.h"

#define COLD_BYTES (256u << 20)
#define RUNS 7
#define HOT_BURSTS 301


typedef struct ref_ctx { const lq_weight *w; const float *x; float *y; int64_t block; } ref_ctx;
static void ref_task(void *v, int64_t task, int tid) {
    (void)tid;
    ref_ctx *c = v;
    const int64_t r0 = task * c->block, r1 = r0 + c->block < c->w->rows ? r0 + c->block : c->w->rows;
    lq_wfmt_get(c->w->fmt)->matvec_ref(c->w, c->x, c->y + r0, r0, r1);
}

/* GB/s of one pass over all copies: median and best of RUNS */
static double run(lq_pool *pool, const lq_weight *w, int copies, const float *x, float *y, int ref, double *best) {
    double g[RUNS];
    const double bytes = (double)w[0].row_bytes * (double)w[0].rows * copies;
    for (int r = 0; r < RUNS; r++) {
        const double t0 = now_s();
        for (int c = 0; c < copies; c++) {
            if (!ref) { lq_matmul(pool, &w[c], x, 1, y); continue; }
            ref_ctx rc = {.w = &w[c], .x = x, .y = y, .block = 64};
            lq_pool_run(pool, ref_task, &rc, (w[c].rows + 63) / 64);
        }
        g[r] = bytes / (now_s() - t0) * 1e-9;
    }
    qsort(g, RUNS, sizeof g[0], cmp_d);
    if (best) *best = g[RUNS - 1];
    return g[RUNS / 2];
}


#define ISA_TOK 64 /* prefill tokens per gemm_q call */

/* one burst of the integer path at the level in use: decode (10 matvec_q) or prefill (one
 * gemm_q over ISA_TOK tokens); returns G weights x tokens / s */
static double isa_burst(const lq_weight *w, const uint8_t *xq, size_t xs, float *y, int prefill) {
    const lq_wfmt_traits *tr = lq_wfmt_get(w->fmt);
    const double t0 = now_s();
    if (!prefill) {
        for (int k = 0; k < 10; k++) tr->matvec_q(w, xq, y, 0, w->rows);
    } else if (tr->gemm_q) {
        tr->gemm_q(w, xq, xs, ISA_TOK, y, w->rows, 0, w->rows);
    } else {
        for (int t = 0; t < ISA_TOK; t++) tr->matvec_q(w, xq + (size_t)t * xs, y + (size_t)t * w->rows, 0, w->rows);
    }
    return (prefill ? ISA_TOK : 10) * (double)(w->rows * w->cols) / (now_s() - t0) * 1e-9;
}

static int isa_compare(int bursts) {
    const char *names[] = {"q4_K", "q6_K", "q5_K", "q3_K", "q2_K", "iq4_xs"};
    const int64_t shapes[][2] = {{576, 1536}, {640, 2048}};
    const lq_isa best = lq_cpu_isa();
    if (best < LQ_ISA_AVX2) return fprintf(stderr, "bench_kquant: no AVX2\n"), 1;
    double *g = malloc(sizeof(double) * (size_t)bursts * LQ_ISA_COUNT);
    if (!g) return 1;
    printf("load before: %.2f; levels AVX2..%s interleaved, 1 thread, hot, %d bursts each\n", load1(),
           lq_isa_name(best), bursts);
    printf("%-7s %-10s %-8s", "fmt", "rows x cols", "path");
    for (int l = LQ_ISA_AVX2; l <= (int)best; l++) printf(" %10s Gw/s (best)", lq_isa_name((lq_isa)l));
    printf(" %8s\n", "ratio");
    for (size_t f = 0; f < sizeof names / sizeof names[0]; f++) {
        const lq_wfmt fmt = lq_wfmt_from_name(names[f]);
        const lq_wfmt_traits *tr = lq_wfmt_get(fmt);
        for (size_t s = 0; s < 2; s++) {
            const int64_t rows = shapes[s][0], cols = shapes[s][1];
            size_t rb;
            if (!tr || !lq_wfmt_sizes(fmt, rows, cols, NULL, &rb, NULL, NULL)) return 1;
            const size_t xs = lq_act_row_bytes(tr->act, cols);
            float *src = malloc(sizeof(float) * (size_t)(rows * cols)), *x = malloc(sizeof(float) * (size_t)cols);
            float *y = malloc(sizeof(float) * (size_t)(rows * ISA_TOK));
            uint8_t *buf = malloc(rb * (size_t)rows), *xq = malloc(xs * ISA_TOK);
            if (!src || !x || !y || !buf || !xq) return 1;
            for (int64_t i = 0; i < rows * cols; i++) src[i] = 0.05f * rnd();
            const lq_weight w = {.fmt = fmt, .rows = rows, .cols = cols, .data = buf, .row_bytes = rb};
            tr->quantize_ref(src, &(lq_quant_params){0}, (lq_weight *)&w);
            for (int t = 0; t < ISA_TOK; t++) {
                for (int64_t i = 0; i < cols; i++) x[i] = rnd();
                lq_act_get(tr->act)->quantize(x, cols, xq + (size_t)t * xs);
            }
            for (int prefill = 0; prefill < 2; prefill++) {
                for (int r = 0; r < bursts; r++)
                    for (int l = LQ_ISA_AVX2; l <= (int)best; l++) {
                        lq_kernels_set_isa((lq_isa)l);
                        g[l * bursts + r] = isa_burst(&w, xq, xs, y, prefill);
                    }
                printf("%-7s %4lldx%-5lld %-8s", names[f], (long long)rows, (long long)cols, prefill ? "prefill" : "decode");
                for (int l = LQ_ISA_AVX2; l <= (int)best; l++) {
                    qsort(g + l * bursts, (size_t)bursts, sizeof *g, cmp_d);
                    printf(" %10.2f (%6.2f)     ", g[l * bursts + bursts / 2], g[l * bursts + bursts - 1]);
                }
                printf(" %8.2f\n", g[best * bursts + bursts / 2] / g[LQ_ISA_AVX2 * bursts + bursts / 2]);
            }
            free(src); free(x); free(y); free(buf); free(xq);
        }
    }
    lq_kernels_set_isa(best);
    printf("load after: %.2f\n", load1());
    free(g);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "isa") == 0) return isa_compare(argc > 2 ? atoi(argv[2]) : 301);
    const int threads = argc > 1 ? atoi(argv[1]) : 2;
    const size_t bw_mb = argc > 2 ? (size_t)atol(argv[2]) : 512;
    /* the K-quants, then the legacy blocks llama.cpp's Q4_K_M uses beside them (for comparison) */
    const char *names[] = {"q4_K", "q6_K", "q5_K", "q3_K", "q2_K", "iq4_xs", "q4_0", "q5_0", "q8_0"};
    const int64_t shapes[][2] = {{576, 1536}, {640, 2048}};
    lq_pool *pool = lq_pool_create(threads), *one = lq_pool_create(1);
    if (!pool || !one) return 1;
    const double bw = lq_measure_read_bandwidth(pool, bw_mb << 20, 5);
    printf("measured read bandwidth (%zu MB, %d threads, median of 5): %.2f GB/s\n\n", bw_mb, threads, bw);
    printf("%-7s %-10s %6s %16s %8s %8s %14s %16s\n", "fmt", "rows x cols", "copies", "fast GB/s (best)", "ref GB/s",
           "fast/bw", "hot 1T Gw/s", "hot int8 1T Gw/s");
    for (size_t f = 0; f < sizeof names / sizeof names[0]; f++) {
        const lq_wfmt fmt = lq_wfmt_from_name(names[f]);
        const lq_wfmt_traits *tr = lq_wfmt_get(fmt);
        for (size_t s = 0; s < 2; s++) {
            const int64_t rows = shapes[s][0], cols = shapes[s][1];
            size_t rb;
            if (!tr || !lq_wfmt_sizes(fmt, rows, cols, NULL, &rb, NULL, NULL)) return 1;
            const size_t bytes = rb * (size_t)rows;
            const int copies = (int)((COLD_BYTES + bytes - 1) / bytes);
            float *src = malloc((size_t)(rows * cols) * sizeof(float)), *x = malloc((size_t)cols * sizeof(float));
            float *y = malloc((size_t)rows * sizeof(float));
            uint8_t *buf = malloc(bytes * (size_t)copies);
            lq_weight *w = calloc((size_t)copies, sizeof *w);
            if (!src || !x || !y || !buf || !w) return 1;
            for (int64_t i = 0; i < rows * cols; i++) src[i] = 0.05f * rnd();
            for (int64_t i = 0; i < cols; i++) x[i] = rnd();
            lq_quant_params p = {0};
            w[0] = (lq_weight){.fmt = fmt, .rows = rows, .cols = cols, .data = buf, .row_bytes = rb};
            tr->quantize_ref(src, &p, &w[0]);
            for (int c = 1; c < copies; c++) {
                memcpy(buf + (size_t)c * bytes, buf, bytes);
                w[c] = w[0];
                w[c].data = buf + (size_t)c * bytes;
            }
            double best, hot_best;
            const double fast = run(pool, w, copies, x, y, 0, &best);
            const double ref = run(pool, w, copies < 8 ? copies : 8, x, y, 1, NULL);
            /* hot: one thread, one copy; HOT_BURSTS bursts of 10 matvecs, median and best (the
             * best burst is the least disturbed on a shared machine, as in bench_kernels hot) */
            double hg[HOT_BURSTS];
            for (int r = 0; r < HOT_BURSTS; r++) {
                const double t0 = now_s();
                for (int k = 0; k < 10; k++) tr->matvec(&w[0], x, y, 0, rows);
                hg[r] = 10.0 * (double)(rows * cols) / (now_s() - t0) * 1e-9;
            }
            qsort(hg, HOT_BURSTS, sizeof hg[0], cmp_d);
            hot_best = hg[HOT_BURSTS - 1];
            /* the integer-activation path the same way: quantize x (once per matmul, as
             * lq_matmul does) + matvec_q, one thread, hot */
            double hq[HOT_BURSTS];
            const lq_act_traits *at = lq_act_get(tr->act);
            uint8_t *xq = at ? malloc(lq_act_row_bytes(tr->act, cols)) : NULL;
            for (int r = 0; xq && r < HOT_BURSTS; r++) {
                const double t0 = now_s();
                for (int k = 0; k < 10; k++) {
                    at->quantize(x, cols, xq);
                    tr->matvec_q(&w[0], xq, y, 0, rows);
                }
                hq[r] = 10.0 * (double)(rows * cols) / (now_s() - t0) * 1e-9;
            }
            if (xq) qsort(hq, HOT_BURSTS, sizeof hq[0], cmp_d);
            free(xq);
            printf("%-7s %4lldx%-5lld %6d %8.2f (%5.2f) %8.2f %8.2f %8.2f (%5.2f)", names[f], (long long)rows,
                   (long long)cols, copies, fast, best, ref, fast / bw, hg[HOT_BURSTS / 2], hot_best);
            if (at) printf(" %8.2f (%5.2f)", hq[HOT_BURSTS / 2], hq[HOT_BURSTS - 1]);
            printf("\n");
            free(src); free(x); free(y); free(buf); free(w);
        }
    }
    lq_pool_free(pool);
    lq_pool_free(one);
    return 0;
}
