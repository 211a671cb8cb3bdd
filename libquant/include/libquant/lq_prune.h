/* lq_prune.h - pruning: magnitude, N:M and structured (FFN neurons, attention heads), written as
 * compressed-tensors sparse checkpoints or smaller dense models that the engine runs.
 *
 * Three parts:
 *   1. Masks: which weights of a matrix survive, from a score per weight (|w| by default; a
 *      calibration-aware score such as Wanda plugs in as an lq_prune_weight_score_fn).
 *   2. The compressed-tensors sparse layouts (compressed-tensors 0.10,
 *      compressors/sparse_compressors/sparse_bitmask.py and sparse_24_bitmask.py), per Linear
 *      module <m> (names are the module's, without ".weight"):
 *        sparse-bitmask ("unstructured", any N:M):
 *          <m>.shape        I64 [2] = {rows, cols}
 *          <m>.compressed   dtype [nnz]   the non-zeros (w != 0, so -0.0 counts as zero) in row order
 *          <m>.bitmask      U8 [rows, ceil(cols/8)]  numpy.packbits(w != 0, axis=-1,
 *                           bitorder="little"): column c of a row is bit (c % 8) of byte c / 8
 *          <m>.row_offsets  I64 [rows]    index into compressed of each row's first non-zero
 *        sparse-24-bitmask (2:4 only):
 *          <m>.shape        I64 [2, 1]
 *          <m>.compressed   dtype [rows, cols/2]  the two kept values of every group of 4, in order
 *          <m>.bitmask      U8 [rows, ceil(cols/8)]  the kept positions (may hold a zero value)
 *      and config.json "quantization_config": {"quant_method": "compressed-tensors", "version",
 *      "sparsity_config": {"format", "global_sparsity", "sparsity_structure", "targets",
 *      "ignore"}}.
 *      Written only on request (lq_prune_opts.bitmask_output); the default output is dense.
 *      Reading: lq_checkpoint_open decompresses every such module into a dense "<m>.weight" it
 *      owns (see io/sparse_bitmask_load.c), so the engine, quant-ptq and every tool see a dense model.
 *   3. The streaming driver behind quant-prune.
 */
#ifndef LQ_PRUNE_H
#define LQ_PRUNE_H

#include <stdbool.h>
#include <stdint.h>

#include "lq_pool.h"
#include "lq_status.h"
#include "lq_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- masks ------------------------------------------------------------------------------------ */

/* Zero exactly k of n weights: those with the smallest score; among equal scores the lower index
 * is zeroed first (deterministic). keep[i] = 1 for survivors, 0 for pruned. Scores must not be
 * NaN. Returns false on allocation failure. */
bool lq_prune_mask_topk(const float *score, int64_t n, int64_t k, uint8_t *keep);

/* N:M along rows: in every group of m consecutive columns keep the n highest scores (ties: lower
 * column kept). cols % m must be 0 and 0 < n <= m. */
void lq_prune_mask_nm(const float *score, int64_t rows, int64_t cols, int n, int m, uint8_t *keep);

/* ---- compressed-tensors sparse layout --------------------------------------------------------- */

/* Bytes per row of a packed bitmask: ceil(cols / 8). */
int64_t lq_bitmask_row_bytes(int64_t cols);
/* mask (rows x cols bytes, non-zero = set) -> rows x lq_bitmask_row_bytes(cols) bytes, numpy
 * packbits bitorder "little" (pad bits 0). */
void lq_bitmask_pack(const uint8_t *mask, int64_t rows, int64_t cols, uint8_t *bits);
/* The inverse; pad bits are ignored (numpy unpackbits count=cols). mask gets 0/1. */
void lq_bitmask_unpack(const uint8_t *bits, int64_t rows, int64_t cols, uint8_t *mask);

/* Compress a dense rows x cols matrix of dtype dt (any dtype; "zero" is the value compare w != 0
 * for float dtypes, a zero byte pattern otherwise). keep: the positions to store (2:4 layout),
 * or NULL for the non-zeros (sparse-bitmask). values receives nnz elements (room for
 * rows*cols), bitmask the packed mask, row_offsets (may be NULL) rows entries. Returns nnz. */
int64_t lq_sparse_compress(const void *dense, lq_dtype dt, int64_t rows, int64_t cols,
                           const uint8_t *keep, void *values, uint8_t *bitmask, int64_t *row_offsets);

/* Scatter values back: dense (rows x cols of dt) is zeroed, then the i-th set bit in row-major
 * order receives values[i]. LQ_ERR_FORMAT if the bitmask has more or fewer set bits than
 * n_values, or row_offsets (rows int64 values, may be NULL, need not be aligned: safetensors
 * payloads are packed without padding) disagree with it; `what` names the tensor in messages. */
lq_status lq_sparse_decompress(const void *values, int64_t n_values, const uint8_t *bitmask,
                               const void *row_offsets, lq_dtype dt, int64_t rows, int64_t cols,
                               void *dense, const char *what);

/* ---- the driver --------------------------------------------------------------------------------- */

typedef enum lq_prune_method {
    LQ_PRUNE_MAGNITUDE = 0, /* unstructured: zero the lowest scores to a target sparsity */
    LQ_PRUNE_NM = 1,        /* semi-structured N:M along the input dimension */
    LQ_PRUNE_FFN = 2,       /* remove FFN intermediate neurons: a smaller dense model */
    LQ_PRUNE_HEADS = 3,     /* remove attention heads (whole KV groups with their query heads) */
    LQ_PRUNE_METHOD_COUNT
} lq_prune_method;

/* "magnitude", "nm", "ffn", "heads". */
const char *lq_prune_method_name(lq_prune_method m);
bool lq_prune_method_parse(const char *s, lq_prune_method *out);

/* Score of every weight of one matrix (rows x cols, f32); higher = more important. Default:
 * |w|. Wanda would be |w| * ||x_col||, SparseGPT its own saliency, from calibration. */
typedef void (*lq_prune_weight_score_fn)(void *user, const char *module, const float *w,
                                         int64_t rows, int64_t cols, float *score);

/* The weights of one layer's prunable units, f32 row-major. Unit u owns rows
 * [u * in_rows[i], (u + 1) * in_rows[i]) of every in[i] (gate/up for FFN neurons; q/k/v for a KV
 * group: its query heads' rows, its k and v rows) and columns [u * out_cols, (u+1) * out_cols)
 * of out (down_proj / o_proj, out_rows x n_units * out_cols). */
typedef struct lq_prune_units {
    int layer;
    int expert;         /* sparse MoE: the expert (n_experts: the shared expert); else -1 */
    int64_t n_units, dim;
    int n_in;
    const float *in[3];
    int64_t in_rows[3];
    const float *out;
    int64_t out_rows, out_cols;
} lq_prune_units;

/* Score of every unit (n_units entries); higher = more important. Default (norm score):
 * FFN neuron i: ||gate_i|| * ||up_i|| * ||down[:, i]|| (the size of what the neuron can add to the
 * residual); KV group: ||W_v rows|| * ||W_o columns|| (its value path), Frobenius norms. */
typedef void (*lq_prune_unit_score_fn)(void *user, const lq_prune_units *u, double *score);

/* Per-module sparsity override (magnitude): matching modules get `sparsity` (0 = left dense). */
typedef struct lq_prune_rule {
    const char *pattern;  /* lq_targets.h syntax */
    float sparsity;
} lq_prune_rule;

typedef void (*lq_prune_progress_fn)(void *user, int64_t done, int64_t total, const char *tensor);

/* Calibrated pruning (lq_sparsegpt.h): the mask of each targeted module, and optionally its new
 * values, come from here instead of a score. get fills keep (rows x cols, 1 = kept) and sets
 * *values to rows x cols f32 values (borrowed, alive until lq_prune_run returns; pruned
 * positions are written zero whatever they hold) or NULL to keep the stored values;
 * LQ_ERR_NOT_FOUND (with a message) for a module it has nothing for. */
typedef struct lq_prune_source {
    lq_status (*get)(void *user, const char *module, int64_t rows, int64_t cols, uint8_t *keep,
                     const float **values);
    void *user;
} lq_prune_source;

typedef struct lq_prune_opts {
    lq_prune_method method;
    float sparsity;             /* magnitude: fraction zeroed, [0, 1) */
    bool global;                /* magnitude: one threshold over every targeted weight */
    int nm_n, nm_m;             /* N:M (default 2:4) */
    float keep;                 /* ffn / heads: fraction of units kept, (0, 1] */
    const float *layer_keep;    /* optional: keep ratio of layer l (n_layer_keep entries; < 0 =
                                 * `keep`); layers of different sizes get per-layer config keys */
    int n_layer_keep;
    /* Linear modules pruned by magnitude / nm (default: every Linear but lm_head and sparse-MoE
     * routers of the architectures the engine knows: Mixtral "*.block_sparse_moe.gate", Qwen2-MoE
     * "*.mlp.gate" and "*.mlp.shared_expert_gate"); each pattern
     * must match something. */
    const char *const *targets;
    int n_targets;
    const char *const *ignore;  /* modules left alone (each must match something) */
    int n_ignore;
    const lq_prune_rule *overrides; /* magnitude only; last match wins; may name lm_head */
    int n_overrides;
    /* magnitude / nm: write compressed-tensors' sparse-bitmask / sparse-24-bitmask layouts.
     * Default (false): dense weights with the zeros in place, and the sparsity recorded as
     * metadata in config.json's top-level "sparsity_config" (compressed-tensors' dense
     * SparsityCompressionConfig fields), the way llm-compressor 0.14 writes pruned models (dense)
     * and the one every loader reads: compressed-tensors >= 0.20 dropped the bitmask
     * compressors, and transformers then loads a bitmask directory WITHOUT error as random
     * weights. lq_prune_bitmask_readers() says which loaders still read the bitmask layouts. */
    bool bitmask_output;
    lq_prune_weight_score_fn weight_score; /* NULL: |w| */
    lq_prune_unit_score_fn unit_score;     /* NULL: the norm score */
    const lq_prune_source *source;         /* magnitude / nm without global or overrides: masks
                                            * (and values) from calibration; NULL: scores */
    void *score_user;
    lq_pool *pool;              /* borrowed; NULL ok */
    lq_prune_progress_fn progress;
    void *user;
} lq_prune_opts;

typedef struct lq_prune_tensor_stat {
    char name[160];             /* tensor name ("model.layers.0.mlp.up_proj.weight") */
    int64_t rows_in, cols_in, rows_out, cols_out;
    int64_t nonzero_in, nonzero_out;
    bool sparse;                /* stored in the sparse layout */
    uint64_t bytes_in, bytes_out;
} lq_prune_tensor_stat;

typedef struct lq_prune_summary {
    lq_prune_method method;
    int64_t n_tensors;
    int64_t params_in, params_out;      /* elements of every tensor, before / after */
    int64_t nonzero_in, nonzero_out;    /* non-zero elements, before / after */
    int64_t target_params, target_zeros; /* the pruned matrices: elements, zeros after */
    double global_sparsity;             /* zeros / elements over the whole output model */
    uint64_t bytes_in, bytes_out;       /* tensor payloads */
    lq_prune_tensor_stat *tensors;      /* n_tensors entries, input order */
    /* structured: units kept per layer, in original order (ffn: neuron ids; heads: KV group ids) */
    int n_layers;
    int *layer_units_in, *layer_units_out;
    int32_t **layer_kept;
    double seconds;
} lq_prune_summary;

void lq_prune_summary_free(lq_prune_summary *s);

/* One line naming the loaders that read the sparse-bitmask layouts (for tools to print when
 * they write them). */
const char *lq_prune_bitmask_readers(void);

/* Prune the checkpoint at model_path (HF directory or llama2.c .bin; a sparse input is read
 * decompressed) into the existing directory out_dir: out_dir/config.json and
 * out_dir/model.safetensors (atomically). Everything is checked before a byte is written:
 * sparsity outside [0, 1), keep outside (0, 1], an N:M whose M does not divide a targeted
 * tensor's columns, a keep ratio that removes every unit of a layer, a target or ignore pattern
 * that matches no module are LQ_ERR_INVALID_ARG naming the culprit. `summary` may be NULL. */
lq_status lq_prune_run(const char *model_path, const char *out_dir, const lq_prune_opts *opts,
                       lq_prune_summary *summary);

#ifdef __cplusplus
}
#endif
#endif
