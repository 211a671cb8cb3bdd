/* bandwidth.c - multi-threaded read-only bandwidth probe (lq_bandwidth.h). */
#include "lq_bandwidth.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kern_internal.h"

/* Chunks per pass: many more than threads so a descheduled thread does not stall the pass,
 * few enough that each chunk is a long stream (>= 1 MB for a 512 MB buffer). */
#define LQ_BW_CHUNKS 256

typedef struct bw_ctx {
    float *buf;
    size_t n;          /* floats in buf */
    size_t chunk;      /* floats per task */
    int use_avx2;
    double sink[LQ_BW_CHUNKS]; /* per-task sums, so the reads cannot be optimized away */
} bw_ctx;

static double read_sum_scalar(const float *p, size_t n) {
    float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) { a0 += p[i]; a1 += p[i + 1]; a2 += p[i + 2]; a3 += p[i + 3]; }
    for (; i < n; i++) a0 += p[i];
    return (double)a0 + a1 + a2 + a3;
}

static void chunk_range(const bw_ctx *c, int64_t task, size_t *lo, size_t *hi) {
    *lo = (size_t)task * c->chunk;
    *hi = *lo + c->chunk;
    if (*lo > c->n) *lo = c->n;
    if (*hi > c->n) *hi = c->n;
}

static void touch_task(void *ctx, int64_t task, int tid) {
    (void)tid;
    bw_ctx *c = ctx;
    size_t lo, hi;
    chunk_range(c, task, &lo, &hi);
    for (size_t i = lo; i < hi; i++) c->buf[i] = (float)(i & 1023) * 0.001f;
}

static void read_task(void *ctx, int64_t task, int tid) {
    (void)tid;
    bw_ctx *c = ctx;
    size_t lo, hi;
    chunk_range(c, task, &lo, &hi);
    c->sink[task] = c->use_avx2 ? lq_read_sum_avx2(c->buf + lo, hi - lo)
                                : read_sum_scalar(c->buf + lo, hi - lo);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double lq_measure_read_bandwidth(lq_pool *pool, size_t bytes, int reps) {
    if (reps < 1) reps = 1;
    size_t n = bytes / sizeof(float);
    if (n < LQ_BW_CHUNKS * 8) n = LQ_BW_CHUNKS * 8;
    size_t alloc = (n * sizeof(float) + 63) & ~(size_t)63;
    bw_ctx *c = calloc(1, sizeof *c);
    double *gbs = malloc((size_t)reps * sizeof *gbs);
    float *buf = aligned_alloc(64, alloc);
    if (!c || !gbs || !buf) { free(c); free(gbs); free(buf); return 0.0; }
    c->buf = buf;
    c->n = n;
    c->chunk = ((n + LQ_BW_CHUNKS - 1) / LQ_BW_CHUNKS + 15) & ~(size_t)15; /* 64-byte multiple */
    c->use_avx2 = lq_cpu_has_avx2();
    lq_pool_run(pool, touch_task, c, LQ_BW_CHUNKS);
    lq_pool_run(pool, read_task, c, LQ_BW_CHUNKS); /* warm-up: page tables, worker wake-up */
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        lq_pool_run(pool, read_task, c, LQ_BW_CHUNKS);
        double dt = now_s() - t0;
        gbs[r] = dt > 0 ? (double)(n * sizeof(float)) / dt * 1e-9 : 0.0;
    }
    qsort(gbs, (size_t)reps, sizeof *gbs, cmp_double);
    double med = (reps & 1) ? gbs[reps / 2] : 0.5 * (gbs[reps / 2 - 1] + gbs[reps / 2]);
    free(buf);
    free(gbs);
    free(c);
    return med;
}
