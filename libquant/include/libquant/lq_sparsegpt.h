/* lq_sparsegpt.h - calibrated pruning: Wanda (Sun et al. 2023) and SparseGPT (Frantar &
 * Alistarh 2023), layer by layer, written like quant-prune's magnitude / N:M output.
 *
 * Both follow llm-compressor 0.14 (modifiers/pruning/wanda/wanda_sparsify.py,
 * modifiers/pruning/sparsegpt/sgpt_sparsify.py):
 *   Wanda: score |W_rc| * ||X_c||_2 (X_c: column c of the Linear's calibration input), the
 *     comparison group one output row: unstructured prunes floor(cols * sparsity) lowest scores
 *     of every row (ties: lower column first, as a stable sort); N:M keeps the n highest of every
 *     m consecutive columns of a row. No weight update.
 *   SparseGPT: H = 2 X^T X; dead columns (diag 0) get H_ii = 1 and a zero weight column;
 *     H += damp * mean(diag H) * I; U = upper Cholesky factor of H^-1 (GPTQ's factorization,
 *     shared); columns swept in blocks of block_size: at the start of each block, unstructured
 *     masks prune the floor(rows * count * sparsity) lowest w^2 / U_ii^2 of the whole block (all
 *     rows: llm-compressor prunes the ones <= the value at that index, one more); N:M chooses at
 *     each group's first column, from the weights as updated so far, the m - n lowest of the
 *     group per row; each column i: q = mask ? 0 : w, err = (w - q) / U_ii, the rest of the
 *     block w_j -= err U_ij, the columns after the block once per block (lazy batch).
 * N:M here counts KEPT weights (nm_n of every nm_m, as lq_prune.h's --nm); llm-compressor's
 * mask_structure "N:M" counts pruned ones (the recipe layer converts; 2:4 is both).
 * Bytes are the same at any thread count: rows are swept independently and the masks of a
 * SparseGPT block are chosen serially.
 */
#ifndef LQ_SPARSEGPT_H
#define LQ_SPARSEGPT_H

#include <stdbool.h>
#include <stdint.h>

#include "lq_gptq.h"
#include "lq_pool.h"
#include "lq_prune.h"
#include "lq_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- one Linear ------------------------------------------------------------------------------- */

/* Wanda's mask of W (rows x cols f32) from sumsq (cols: sum over calibration tokens of x_c^2).
 * nm_m > 0: N:M (keep nm_n of every nm_m; cols % nm_m == 0), else unstructured at `sparsity`
 * in [0, 1). keep gets 1 for kept weights, 0 for pruned. false on allocation failure. */
bool lq_wanda_mask(const float *W, int64_t rows, int64_t cols, const double *sumsq, double sparsity, int nm_n,
                   int nm_m, uint8_t *keep);

typedef struct lq_sparsegpt_params {
    double sparsity;             /* unstructured: fraction pruned, [0, 1) */
    int nm_n, nm_m;              /* nm_m > 0: keep nm_n of every nm_m (block_size % nm_m == 0) */
    double damp;                 /* dampening fraction of mean(diag H); 0 = 0.01 */
    int block_size;              /* 0 = 128 */
    lq_pool *pool;               /* rows are swept across it; NULL ok */
} lq_sparsegpt_params;

typedef struct lq_sparsegpt_stat {
    double damp;                 /* dampening that factorized (after retries) */
    int retries;                 /* Cholesky failures before it (each damp x 10) */
    bool fallback;               /* every retry failed: H^-1 taken as I (magnitude-like) */
    int64_t dead_cols;           /* columns never active: weights zeroed */
    double loss;                 /* sum over rows of sum_i err_i^2 / 2 (llm-compressor's) */
} lq_sparsegpt_stat;

/* Prune W (rows x cols f32, in place: the updated surviving weights, zeros where pruned)
 * against H (cols x cols, full; not modified). keep (rows x cols) gets the mask. */
lq_status lq_sparsegpt_prune_linear(float *W, int64_t rows, int64_t cols, const double *H,
                                    const lq_sparsegpt_params *p, uint8_t *keep, lq_sparsegpt_stat *stat);

/* ---- the sequential driver ------------------------------------------------------------------------ */

typedef enum lq_sparse_method {
    LQ_SPARSE_WANDA = 0,
    LQ_SPARSE_SPARSEGPT = 1,
    LQ_SPARSE_METHOD_COUNT
} lq_sparse_method;

/* "wanda", "sparsegpt" */
const char *lq_sparse_method_name(lq_sparse_method m);
bool lq_sparse_method_parse(const char *s, lq_sparse_method *out);

typedef struct lq_sparse_opts {
    lq_sparse_method method;
    /* the output and what is pruned, as quant-prune's magnitude / nm: prune.method
     * LQ_PRUNE_MAGNITUDE (unstructured, prune.sparsity) or LQ_PRUNE_NM (prune.nm_n:nm_m),
     * targets, ignore, bitmask_output, pool, progress (of the writer). global, overrides and
     * scores do not apply (refused). */
    lq_prune_opts prune;
    lq_calib_source calib;       /* the calibration samples */
    double damp;                 /* SparseGPT; 0 = 0.01 */
    int block_size;              /* SparseGPT; 0 = 128 */
    lq_gptq_progress_fn progress; /* after each decoder layer */
    void *user;
} lq_sparse_opts;

/* One pruned Linear. rel_err_* = ||W X - W' X||_F / ||W X||_F on its calibration inputs (from
 * H; SparseGPT only, 0 for Wanda): mask = the mask applied without the update, after = the
 * output. */
typedef struct lq_sparse_stat {
    char name[160];
    int64_t rows, cols, pruned;
    double rel_err_mask, rel_err_after;
    lq_sparsegpt_stat g;
} lq_sparse_stat;

typedef struct lq_sparse_summary {
    lq_prune_summary prune;      /* what the writer wrote */
    lq_sparse_stat *linears;     /* n_linears, model order */
    int64_t n_linears;
    int64_t n_samples, sample_len, n_windows;
    int64_t n_retried, n_fallback;
    double calib_seconds;
} lq_sparse_summary;

void lq_sparse_summary_free(lq_sparse_summary *s);

/* Wanda / SparseGPT of the Hugging Face directory model_path into out_dir (config.json +
 * model.safetensors, as lq_prune_run writes them: dense with the sparsity recorded in
 * config.json, or the bitmask layouts). Every targeted module must be a decoder Linear the
 * calibration reaches (lm_head and MoE experts are refused by name). Memory: the mapped input,
 * the samples' hidden states, one layer's statistics and the pruned f32 weights so far. */
lq_status lq_sparse_prune(const char *model_path, const char *out_dir, const lq_sparse_opts *opts,
                          lq_sparse_summary *summary);

#ifdef __cplusplus
}
#endif
#endif
