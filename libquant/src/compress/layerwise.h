/* layerwise.h - the sequential calibration driver shared by GPTQ, SparseGPT and Wanda
 * (compress/layerwise.c). Not public.
 *
 * llm-compressor's sequential pipeline, decoder layer by decoder layer:
 *   1. every calibration sample runs through layer l with its current weights (layers < l are
 *      already compressed); the per-Linear input hook accumulates one statistic per distinct
 *      Linear input ("site": q/k/v share q's, gate/up share gate's): H = 2 X^T X (GPTQ,
 *      SparseGPT) or only its diagonal's half, sum_t x_tc^2 (Wanda);
 *   2. the caller's compress callback compresses each Linear of layer l (in the order the layer
 *      program shows them) and puts the result into the model (lq_model_replace_linear);
 *   3. every sample runs through layer l again, through the compressed weights, to give layer
 *      l + 1 its inputs.
 * Memory: the mapped input (pages released after the load's NaN check), the samples' hidden
 * states (n_samples x len x dim f32, advanced in place), one layer's statistics.
 * MoE experts are not hooked (their tokens are routed); the caller decides what they get.
 */
#ifndef LQ_LAYERWISE_H
#define LQ_LAYERWISE_H

#include <stdbool.h>
#include <stdint.h>

#include "libquant/lq_gptq.h"
#include "libquant/lq_model.h"

/* One Linear of the current layer and its input statistic. Exactly one of H / sumsq is set. */
typedef struct lq_lw_linear {
    const char *module;        /* "model.layers.3.mlp.up_proj" */
    const char *role;          /* "q", "k", ..., "down" */
    int layer;
    int64_t cols;
    const double *H;           /* cols x cols, full (symmetric): 2 sum_t x_t x_t^T; NULL in diag mode */
    const double *sumsq;       /* cols: sum_t x_tc^2; NULL in Hessian mode */
    int64_t n_tokens;
} lq_lw_linear;

/* Compress one Linear of the model and replace it (lq_model_replace_linear); the buffers it
 * hands the model must outlive lq_layerwise_run. */
typedef lq_status (*lq_lw_compress_fn)(void *user, lq_model *m, const lq_lw_linear *lin);

typedef struct lq_lw_opts {
    lq_calib_source calib;     /* the calibration samples */
    bool diag_only;            /* accumulate sumsq (Wanda) instead of H */
    const char *who;           /* "gptq", "sparsegpt", "wanda": the prefix of messages */
    lq_pool *pool;
    lq_lw_compress_fn compress;
    void *user;
    lq_gptq_progress_fn progress;  /* after each layer */
    void *progress_user;
} lq_lw_opts;

typedef struct lq_lw_info {
    int64_t n_samples, sample_len, n_windows;
    double seconds;            /* the sequential pass */
} lq_lw_info;

/* Load model_path (an HF directory; a llama2.c .bin is refused: convert first), draw the
 * calibration samples and run the pipeline above. The model is freed before returning. */
lq_status lq_layerwise_run(const char *model_path, const lq_lw_opts *o, lq_lw_info *info);

#endif
