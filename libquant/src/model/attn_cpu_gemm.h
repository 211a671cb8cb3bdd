/* attn_cpu_gemm.h - the CPU table's prefill attention through sgemm (attn_cpu_gemm.c; internal). */
#ifndef LQ_ATTN_CPU_GEMM_H
#define LQ_ATTN_CPU_GEMM_H

#include <stdbool.h>

#include "backend.h"
#include "lq_pool.h"

/* Whether this build has it (OpenBLAS); without, the CPU table keeps its per-row loop. */
bool lq_attn_gemm_available(void);
/* a->out = causal attention of a's query rows, as backend_cpu.c's attn_task defines it, on pool.
 * att_scratch: (pool threads, n_ctx) score rows, used only if a thread's tile scratch cannot be
 * allocated. */
void lq_attn_gemm(lq_pool *pool, const lq_attn_args *a, float *att_scratch, int n_ctx);

#endif
