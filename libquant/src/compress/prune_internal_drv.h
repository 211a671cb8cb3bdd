/* prune_internal_drv.h - what the pruning driver's files share (prune.c, prune_struct.c,
 * prune_score.c). Not public. */
#ifndef LQ_PRUNE_INTERNAL_DRV_H
#define LQ_PRUNE_INTERNAL_DRV_H

#include "libquant/lq_checkpoint.h"
#include "libquant/lq_prune.h"

/* Read a F32/F16/BF16 tensor as f32 (n elements from element i0). */
bool lq_prune_is_float(lq_dtype d);

/* Default scores. */
void lq_prune_score_abs(void *user, const char *module, const float *w, int64_t rows, int64_t cols,
                        float *score);
void lq_prune_score_norm(void *user, const lq_prune_units *u, double *score);

/* Round-half-up of r * n, the unit / weight count every method uses. */
int64_t lq_prune_count(double r, int64_t n);

/* Structured plan: which units of each layer survive. */
typedef struct lq_struct_plan {
    int n_layers;
    int *units_in, *units_out;  /* per layer (a sparse-MoE layer: one expert's, below) */
    int32_t **kept;             /* per layer, units_out ids in increasing order (NULL: MoE layer) */
    int group;                  /* heads: query heads per KV group */
    /* FFN pruning of a sparse MoE: each expert of a layer keeps the same number of its own
     * neurons (units_out[l] of units_in[l]), the shared expert shared_out[l] of shared_in[l];
     * xkept[l][e] lists expert e's, xkept[l][n_experts] the shared expert's (NULL: none). */
    int n_experts;
    int *shared_in, *shared_out;
    int32_t ***xkept;           /* per layer: NULL (dense layer), else n_experts + 1 lists */
} lq_struct_plan;

/* Score every layer's units and keep the best (ffn / heads). ignored[l]: keep layer l whole. */
lq_status lq_struct_plan_make(const lq_checkpoint *c, const lq_prune_opts *o, const bool *ignored,
                              lq_struct_plan *p);
void lq_struct_plan_free(lq_struct_plan *p);

/* How a tensor of a structured model is sliced: rows kept (NULL: all), cols kept (NULL: all). */
typedef struct lq_slice {
    int64_t n_rows, n_cols;
    int64_t *rows, *cols;       /* owned index lists (NULL: identity) */
} lq_slice;

/* The slice of tensor t under plan p (method ffn or heads); identity for tensors not touched. */
lq_status lq_struct_slice(const lq_config *cfg, const lq_struct_plan *p, lq_prune_method m,
                          const lq_tensor *t, lq_slice *s);
void lq_slice_free(lq_slice *s);

#endif
