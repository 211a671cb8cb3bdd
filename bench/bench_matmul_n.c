/* bench_matmul_n.c - lq_matmul of one F32 weight at n = 1, 2, 4, 8, 16 tokens (decode, batched
 * decode), wall time on a pool of THREADS, best of 7: the weight's read rate (GB/s) and the
 * multiply rate (GMAC/s). Not a test: numbers go to docs/PERFORMANCE.md. Pick ROWS x COLS well
 * above the last-level cache (an Emerald Rapids Xeon has hundreds of MB of L3) to measure DRAM.
 *
 *   build/bench_matmul_n ROWS COLS [THREADS=2]        e.g. 200000 576 2 (460 MB)
 *   LQ_FORCE_AVX2=1 build/bench_matmul_n ...           the AVX2 level on an AVX-512 CPU
 */
#include <stdio.h>
#include <stdlib.h>

#include "lq_format.h"
#include "lq_ops.h"
#include "lq_pool.h"
#include "bench_util.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_matmul_n ROWS COLS [THREADS=2]\n");
        return 2;
    }
    const int64_t rows = atoll(argv[1]), cols = atoll(argv[2]);
    const int threads = argc > 3 ? atoi(argv[3]) : 2;
    if (rows < 1 || cols < 1 || threads < 1) {
        fprintf(stderr, "bench_matmul_n: bad shape or thread count\n");
        return 2;
    }
    float *W = malloc((size_t)(rows * cols) * sizeof *W), *X = malloc((size_t)(16 * cols) * sizeof *X);
    float *Y = malloc((size_t)(16 * rows) * sizeof *Y);
    lq_pool *pool = lq_pool_create(threads);
    if (!W || !X || !Y || !pool) return 1;
    for (int64_t i = 0; i < rows * cols; i++) W[i] = (float)(i % 17) * 0.01f;
    for (int64_t i = 0; i < 16 * cols; i++) X[i] = 0.5f;
    const lq_weight w = {.fmt = LQ_WFMT_F32, .rows = rows, .cols = cols, .data = W, .row_bytes = (size_t)cols * 4};
    printf("f32 %lld x %lld, %d threads, ISA %s\n", (long long)rows, (long long)cols, threads,
           lq_isa_name(lq_kernels_isa()));
    const int ns[] = {1, 2, 4, 8, 16};
    for (int k = 0; k < 5; k++) {
        double best = 1e30;
        for (int r = 0; r < 7; r++) {
            const double t0 = now_s();
            lq_matmul(pool, &w, X, ns[k], Y);
            const double t = now_s() - t0;
            best = t < best ? t : best;
        }
        printf("n=%2d %9.3f ms %6.1f GB/s %6.1f GMAC/s\n", ns[k], best * 1e3, (double)(rows * cols) * 4 / best * 1e-9,
               (double)(rows * cols * ns[k]) / best * 1e-9);
    }
    lq_pool_free(pool);
    free(W), free(X), free(Y);
    return 0;
}
