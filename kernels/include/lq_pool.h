/* lq_pool.h - a fixed pool of worker threads for data-parallel kernels.
 *
 * lq_pool_run(pool, fn, ctx, n) calls fn(ctx, i, tid) for every task i in [0, n) across the
 * workers and the calling thread, and returns when all are done. Each thread has a private,
 * growable scratch buffer (lq_pool_scratch) so kernels need no allocation per call.
 * A NULL pool runs everything on the caller (tid 0).
 */
#ifndef LQ_POOL_H
#define LQ_POOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lq_pool lq_pool;
typedef void (*lq_task_fn)(void *ctx, int64_t task, int tid);

/* n_threads <= 0: number of online CPUs. Returns NULL on failure. */
lq_pool *lq_pool_create(int n_threads);
void lq_pool_free(lq_pool *p);
int lq_pool_size(const lq_pool *p); /* 1 for NULL */
void lq_pool_run(lq_pool *p, lq_task_fn fn, void *ctx, int64_t n_tasks);
/* Scratch of at least `bytes` (64-byte aligned) owned by thread `tid`; valid until the next call
 * with the same tid. NULL on allocation failure. */
void *lq_pool_scratch(lq_pool *p, int tid, size_t bytes);

#ifdef __cplusplus
}
#endif
#endif
