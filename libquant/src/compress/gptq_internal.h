/* gptq_internal.h - what GPTQ's kernel shares with SparseGPT's (compress/sparsegpt.c) and AWQ's
 * (compress/awq.c). Not public. */
#ifndef LQ_GPTQ_INTERNAL_H
#define LQ_GPTQ_INTERNAL_H

#include "libquant/lq_gptq.h"

/* H (n x n, full, dead columns already set to 1 on the diagonal) in place -> U, the upper
 * Cholesky factor of (H + damp * mean(diag H) * I)^-1, zeros below the diagonal. A failed
 * factorization is retried with damp x 10 up to 4 times, then U = I (st->rtn_fallback);
 * st->damp and st->retries say what happened. LQ_ERR_UNSUPPORTED without LAPACKE. */
lq_status lq_gptq_factorize(double *H, int64_t n, double damp, lq_gptq_linear_stat *st);

/* The lazy batch of a sweep over the block [i1, i2): the later columns of nr rows get the
 * block's errors at once, w[r][i2:cols] -= sum_k E[r][k] * U[i1 + k][i2:cols] (w: rows of
 * stride cols, E: rows of stride ldE). One single-threaded GEMM: callers run it inside pool
 * tasks with a fixed row split, so the bytes do not depend on the thread count. */
void lq_gptq_lazy_update(double *w, const double *E, int64_t ldE, const double *U, int64_t nr, int64_t cols,
                         int64_t i1, int64_t i2);


/* sum over the rows d_r of D (rows x cols, f32) of d_r^T H d_r: ||D X^T||^2 when H = 2 X^T X
 * (output_error.c; in f32, pool-independent). LQ_ERR_NOMEM names the Linear's shape. */
lq_status lq_gptq_hform(const float *D, int64_t rows, int64_t cols, const double *H, lq_pool *pool, double *out);

/* OpenBLAS single-threaded, once per process: the pool splits the work, and BLAS threads inside
 * a task would make sums depend on its thread count. A no-op without OpenBLAS. */
void lq_gptq_blas_single(void);

#endif
