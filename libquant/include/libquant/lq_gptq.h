/* lq_gptq.h - calibration samples and GPTQ (Frantar et al. 2022), layer by layer.
 *
 * Three parts:
 *   1. The calibration chunker: text files -> N samples of L tokens, drawn deterministically
 *      (seeded), read through the distillation corpus reader (lq_corpus) and tokenized in
 *      segments at safe cuts, so the ids are exactly those of encoding each file whole.
 *   2. The GPTQ kernel of one Linear: a Hessian accumulator (H = 2 sum_t x_t x_t^T, f32 chunks
 *      summed in double) and
 *      the column sweep (llm-compressor 0.14's quantize_weight, modifiers/gptq/gptq_quantize.py:
 *      scales and zero points from the original weight's min/max per group, computed before
 *      the sweep as its observer does; dead columns zeroed; dampening; H^-1 through Cholesky;
 *      lazy-batch updates in blocks; activation order "weight"/"static", which keeps each column
 *      its own group's scale so the storage is unchanged).
 *   3. The sequential driver (lq_gptq_quantize): decoder layer by decoder layer, the samples'
 *      hidden states go through layer l with the original weights while the per-Linear input
 *      hook accumulates each Linear's H; the layer's Linears are quantized, replaced in the model
 *      by their quantized values (lq_model_replace_linear), and the samples run through the layer
 *      again to give layer l + 1 its inputs, as llm-compressor's sequential pipeline does. The
 *      codes are then written by the streaming compressed-tensors writer (lq_ptq_quantize with
 *      an lq_ptq_source), so RTN and GPTQ checkpoints share one writer.
 * Every result is the same bytes at any thread count: rows are swept independently and the
 * Hessian is summed over fixed tiles.
 */
#ifndef LQ_GPTQ_H
#define LQ_GPTQ_H

#include <stdbool.h>
#include <stdint.h>

#include "lq_format.h"
#include "lq_pool.h"
#include "lq_ptq.h"
#include "lq_status.h"
#include "lq_tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- calibration samples ---------------------------------------------------------------------- */

typedef struct lq_calib_set {
    int32_t *ids;        /* n_samples x len token ids (sample k at ids + k * len) */
    int64_t n_samples;   /* drawn: min(requested, n_windows) */
    int len;             /* tokens per sample */
    int64_t n_windows;   /* whole windows of len tokens in all files */
    int64_t n_tokens;    /* tokens in all files */
} lq_calib_set;

/* Tokenize each file whole (no BOS, no special tokens), cut each into consecutive windows of
 * `len` tokens (a file's tail shorter than len is dropped; windows never span two files), then
 * draw n_samples windows: the window list (file order, then position) is shuffled by
 * Fisher-Yates with splitmix64 seeded by `seed` (for i = W-1 .. 1: j = next() % (i + 1)), the
 * first n_samples are kept and sorted back into position order (scripts/gptq_llmc.py draws the
 * same for llm-compressor). Fewer windows than requested: all of them (out->n_samples says).
 * A text with no whole window is LQ_ERR_INVALID_ARG naming the file(s) and the token count. */
lq_status lq_calib_samples(const lq_tokenizer *t, const char *const *paths, int n_paths, int64_t n_samples,
                           int len, uint64_t seed, lq_calib_set *out);
void lq_calib_set_free(lq_calib_set *s); /* NULL ok */

/* Where a calibrating method's samples come from: the arguments of lq_calib_samples plus the
 * tokenizer, one struct in every method's options (GPTQ, SparseGPT / Wanda, AWQ / SmoothQuant,
 * recipes), as llm-compressor's oneshot dataset arguments. */
typedef struct lq_calib_source {
    const char *const *files;    /* calibration text files */
    int n_files;
    int64_t n_samples;           /* 0 = 128 */
    int sample_len;              /* 0 = 512 */
    uint64_t seed;
    const char *tokenizer;       /* NULL: the model directory's tokenizer */
} lq_calib_source;

/* ---- one Linear ---------------------------------------------------------------------------------- */

/* Accumulates H = 2 sum_t x_t x_t^T over the calibration tokens of one Linear's input: each
 * chunk of at most 512 tokens as an f32 GEMM, the running total in double. The error is one
 * chunk's f32 rounding (about 1e-7 of sqrt(H_aa H_bb) on SmolLM2's activations), not growing with
 * the sample count as a running f32 sum (llm-compressor's) does; at twice double's speed. */
typedef struct lq_gptq_hessian {
    int64_t cols;
    int64_t n_tokens;
    double *h;           /* cols x cols, row-major; upper triangle accumulated, full after _finish */
} lq_gptq_hessian;

lq_status lq_gptq_hessian_init(lq_gptq_hessian *h, int64_t cols);
void lq_gptq_hessian_free(lq_gptq_hessian *h);
/* H += 2 X^T X for X (n x cols, f32). Summed over tiles of H that do not depend on the pool, so
 * the bytes are the same at any thread count. NaN/Inf in X is LQ_ERR_FORMAT naming `what`. */
lq_status lq_gptq_hessian_add(lq_gptq_hessian *h, const float *X, int64_t n, lq_pool *pool, const char *what);
/* Mirror the upper triangle into the lower one (call once, before lq_gptq_quantize_linear). */
void lq_gptq_hessian_finish(lq_gptq_hessian *h);

typedef enum lq_gptq_actorder {
    LQ_GPTQ_ACTORDER_NONE = 0,
    LQ_GPTQ_ACTORDER_WEIGHT = 1, /* compressed-tensors "weight" (alias "static"): columns swept by
                                  * descending diag(H), each quantized with its own group's scale */
    LQ_GPTQ_ACTORDER_COUNT
} lq_gptq_actorder;

/* "none", "weight"; parse also accepts "static" (compressed-tensors' alias of weight). */
const char *lq_gptq_actorder_name(lq_gptq_actorder a);
bool lq_gptq_actorder_parse(const char *s, lq_gptq_actorder *out);

typedef struct lq_gptq_params {
    int bits;                    /* 3, 4 or 8 (any of 2..8) */
    int32_t group_size;          /* > 0: groups along cols (must divide cols); <= 0: one per row */
    bool asym;                   /* zero points */
    lq_scale_dtype scale_dtype;  /* scales rounded to this (the model dtype), as RTN does */
    double damp;                 /* dampening fraction of mean(diag H); 0 = 0.01 */
    int block_size;              /* lazy-batch width; 0 = 128 */
    lq_gptq_actorder actorder;
    lq_pool *pool;               /* rows are swept across it; NULL ok */
    /* Joint SparseGPT + GPTQ (nm_m > 0): N:M pruning inside the same sweep, keeping nm_n of every
     * nm_m consecutive columns of a row. At each group of nm_m columns the sweep prunes the
     * nm_m - nm_n lowest w^2 / U_ii^2 of the weights as updated so far (SparseGPT's N:M rule,
     * lq_sparsegpt.h); a pruned weight gets the code that stands for 0 (0 symmetric, the zero
     * point asymmetric: its dequantized value is exactly 0)
     * and its error propagates like a rounding error. Scales stay those of the original weight.
     * Needs actorder none, nm_m dividing cols and block_size, 0 <= nm_n <= nm_m <= 64. */
    int nm_n, nm_m;
} lq_gptq_params;

typedef struct lq_gptq_linear_stat {
    double damp;                 /* dampening fraction that factorized (after retries) */
    int retries;                 /* Cholesky failures before it (each retry damp x 10) */
    bool rtn_fallback;           /* every retry failed: H^-1 taken as identity (plain RTN) */
    int64_t dead_cols;           /* columns with diag(H) = 0 (never active): weights zeroed */
    double loss;                 /* GPTQ's loss: sum over rows of sum_i err_i^2 / 2 */
    int64_t pruned;              /* weights the joint N:M sweep set to 0 */
} lq_gptq_linear_stat;

/* Quantize W (rows x cols f32) against H (cols x cols, full; neither is modified; two working
 * copies of H are allocated). Writes signed codes (rows x cols, in [-2^(bits-1),
 * 2^(bits-1) - 1]), scales and zero points (rows x n_groups; zeros 0 when symmetric): the
 * dequantized weight is (code - zero) * scale. Dampening: H += damp * mean(diag H) * I; a
 * failed Cholesky is retried with damp x 10 up to 4 times, then falls back to RTN (llm-compressor
 * falls back at once). A weight that is exactly 0 in W keeps the code of 0 and its error feeds
 * the later columns like a pruned one's: a pruned model (SparseGPT, Wanda, N:M) keeps its
 * sparsity pattern through GPTQ (llm-compressor 0.14's GPTQ moves such weights off zero). */
lq_status lq_gptq_quantize_linear(const float *W, int64_t rows, int64_t cols, const double *H, const lq_gptq_params *p,
                                  int8_t *codes, float *scales, float *zeros, lq_gptq_linear_stat *stat);

/* ---- the sequential driver ------------------------------------------------------------------------ */

/* After each decoder layer: layer (0-based) of n_layers, seconds since the start. */
typedef void (*lq_gptq_progress_fn)(void *user, int layer, int n_layers, double seconds);

typedef struct lq_gptq_opts {
    lq_ptq_opts ptq;             /* scheme (W4A16 or W8A16), group size, asym, ignore, overrides,
                                  * group fallback, pool: as RTN; modules it quantizes get GPTQ */
    lq_calib_source calib;       /* the calibration samples */
    double damp;                 /* 0 = 0.01 */
    int block_size;              /* 0 = 128 */
    lq_gptq_actorder actorder;
    int nm_n, nm_m;              /* nm_m > 0: joint N:M pruning in the sweep (lq_gptq_params) of
                                  * every Linear GPTQ quantizes; a Linear whose columns nm_m does
                                  * not divide is refused by name */
    lq_gptq_progress_fn progress;
    void *user;
} lq_gptq_opts;

/* One Linear's result. rel_err_* = ||W X - W' X||_F / ||W X||_F over the calibration inputs
 * it saw (computed from H: (W - W') H (W - W')^T against W H W^T). */
typedef struct lq_gptq_stat {
    char name[160];
    int64_t rows, cols;
    double rel_err_rtn, rel_err_gptq;
    lq_gptq_linear_stat g;
} lq_gptq_stat;

typedef struct lq_gptq_summary {
    lq_ptq_summary ptq;          /* what the writer wrote (sizes, weight-space errors) */
    lq_gptq_stat *linears;       /* n_linears, model order */
    int64_t n_linears;
    int64_t n_samples, sample_len, n_windows;
    int64_t n_retried, n_fallback;
    double calib_seconds;        /* the sequential pass (the writer's time is ptq.seconds) */
} lq_gptq_summary;

void lq_gptq_summary_free(lq_gptq_summary *s);

/* GPTQ of the Hugging Face checkpoint directory model_path into out_dir (as lq_ptq_quantize:
 * config.json + model.safetensors, atomically). Refuses schemes other than W4A16/W8A16, a
 * llama2.c .bin (convert first), calibration text without one whole sample, NaN/Inf in the
 * activations (naming the layer and Linear). Memory: the mapped input, the samples' hidden
 * states (n_samples x sample_len x hidden f32), one layer's Hessians and the packed output. */
lq_status lq_gptq_quantize(const char *model_path, const char *out_dir, const lq_gptq_opts *opts,
                           lq_gptq_summary *summary);

#ifdef __cplusplus
}
#endif
#endif
