/* gptq_internal.h - what GPTQ's kernel shares with SparseGPT's (compress/sparsegpt.c). Not public. */
#ifndef LQ_GPTQ_INTERNAL_H
#define LQ_GPTQ_INTERNAL_H

#include "libquant/lq_gptq.h"

/* H (n x n, full, dead columns already set to 1 on the diagonal) in place -> U, the upper
 * Cholesky factor of (H + damp * mean(diag H) * I)^-1, zeros below the diagonal. A failed
 * factorization is retried with damp x 10 up to 4 times, then U = I (st->rtn_fallback);
 * st->damp and st->retries say what happened. LQ_ERR_UNSUPPORTED without LAPACKE. */
lq_status lq_gptq_factorize(double *H, int64_t n, double damp, lq_gptq_linear_stat *st);

#endif
