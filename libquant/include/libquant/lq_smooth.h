/* lq_smooth.h - activation-aware smoothing before quantization: AWQ (Lin et al. 2023) and
 * SmoothQuant (Xiao et al. 2022), as llm-compressor 0.14's AWQModifier / SmoothQuantModifier.
 *
 * Both are transforms: per input channel j of a group of Linears that read the same activation
 * (the "balance" layers), the weights' column j is multiplied by s_j and the op before them (the
 * "smooth" layer: an RMSNorm's weight, or the rows of the Linear that produced the activation)
 * divided by s_j, so the float model computes the same function (to f32 rounding) while the
 * weights become easier to quantize. The mappings come from the architecture descriptor
 * (roles, not module names), in llm-compressor's default order:
 *     attn norm -> q, k, v      (AWQ, SmoothQuant)
 *     v -> o                    (AWQ; skipped when v's rows != o's columns: GQA)
 *     ffn norm -> gate, up      (AWQ, SmoothQuant)
 *     up -> down                (AWQ)
 * Layers with sparse-MoE experts keep their FFN unsmoothed.
 *
 * AWQ chooses s per mapping by grid search: x = the mean |activation| per channel over the
 * calibration tokens, w = the mean over rows of |W| / (max |W| of its quantization group),
 * candidates s = x^r (or with duo scaling x^r / (w^(1-r) + 1e-4)), clamped >= 1e-4 and divided
 * by sqrt(max s * min s); the candidate whose fake-quantized weights Q(W s) / s give the least
 * mean square error of the parent's output (the attention block for q/k/v, the MLP block for
 * gate/up, the Linear's own output for o and down) on the calibration inputs wins. The grid
 * always holds scales 1 (plain RTN). Q is the RTN of the scheme the checkpoint is then written
 * with (lq_quant_int_params), so the search scores what is stored.
 *
 * SmoothQuant: s_j = range_j^a / (2 max_k |W_kj|)^(1-a), range_j = max - min of the norm's output
 * channel j over the calibration tokens, the weight max over every balance layer's rows,
 * clamped >= 1e-5 (llm-compressor's formula, including its range and factor 2).
 *
 * The result is a float Hugging Face directory of the input's dtypes (config.json, one
 * model.safetensors, the tokenizer files); quant-ptq then quantizes it (RTN, GPTQ, GGUF types)
 * as any float model, so every writer serves. Layer by layer as GPTQ: the samples' hidden states
 * (3 copies for AWQ: a layer's input and both blocks' outputs) plus f32 copies of the smoothed
 * weights.
 */
#ifndef LQ_SMOOTH_H
#define LQ_SMOOTH_H

#include <stdbool.h>
#include <stdint.h>

#include "lq_format.h"
#include "lq_gptq.h"
#include "lq_pool.h"
#include "lq_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lq_smooth_method {
    LQ_SMOOTH_AWQ = 0,
    LQ_SMOOTH_SMOOTHQUANT = 1,
    LQ_SMOOTH_METHOD_COUNT
} lq_smooth_method;

/* AWQModifier's duo_scaling: true (default: weights and activations; the grid is (0, false)
 * then n_grid - 1 duo points), false (activations only), "both" (n_grid / 2 ratios, each
 * without and with). */
typedef enum lq_awq_duo {
    LQ_AWQ_DUO_TRUE = 0,
    LQ_AWQ_DUO_FALSE = 1,
    LQ_AWQ_DUO_BOTH = 2,
    LQ_AWQ_DUO_COUNT
} lq_awq_duo;

/* "true", "false", "both"; parse also accepts "on"/"off". */
const char *lq_awq_duo_name(lq_awq_duo d);
bool lq_awq_duo_parse(const char *s, lq_awq_duo *out);

typedef void (*lq_smooth_progress_fn)(void *user, int layer, int n_layers, double seconds);

typedef struct lq_smooth_opts {
    lq_smooth_method method;
    lq_calib_source calib;       /* the calibration samples (lq_calib_samples) */
    /* AWQ: the integer RTN its search simulates (what the checkpoint is written with) */
    int bits;                    /* 4 or 8; 0 = 4 */
    int32_t group_size;          /* > 0 groups along cols (0 = 128); -1 one per row. A group that
                                  * does not divide a Linear's columns scores it per row */
    bool asym;
    lq_rounding rounding;
    int n_grid;                  /* 0 = 20 (at least 2) */
    lq_awq_duo duo;
    /* SmoothQuant */
    double alpha;                /* smoothing_strength in [0, 1]; negative = 0.5 */
    lq_pool *pool;               /* borrowed; NULL ok */
    lq_smooth_progress_fn progress; /* after each decoder layer */
    void *user;
} lq_smooth_opts;

/* AWQ's simulated RTN from the scheme the checkpoint is then written with (its format row's
 * compressed-tensors storage): that num_bits; grouped formats group_size as given (0 = 128, -1
 * one per row) and zero points, the others one group per row, symmetric; a format without storage
 * gets bits 4, one group per row, symmetric. Only AWQ reads them (it refuses bits other than 4, 8). */
void lq_smooth_set_scheme(lq_smooth_opts *o, lq_wfmt scheme, int32_t group_size, bool asym);

/* One mapping of one layer. */
typedef struct lq_smooth_stat {
    char smooth[160];            /* the smoothed module: "model.layers.3.input_layernorm" */
    char balance[64];            /* its balance roles: "q,k,v" */
    int64_t channels;
    double scale_min, scale_max; /* the applied s */
    double ratio;                /* AWQ: chosen grid ratio, and whether with duo scaling */
    bool duo;
    double err_rtn, err_best;    /* AWQ: output MSE with scales 1 (plain RTN) / with the chosen s */
} lq_smooth_stat;

typedef struct lq_smooth_summary {
    lq_smooth_stat *maps;        /* n_maps, layer order then mapping order */
    int64_t n_maps;
    int64_t n_skipped;           /* mappings the shapes do not allow (GQA v -> o) */
    int64_t n_samples, sample_len, n_windows;
    double seconds;
} lq_smooth_summary;

void lq_smooth_summary_free(lq_smooth_summary *s);

/* Smooth the float Hugging Face checkpoint directory model_path into the existing directory
 * out_dir (config.json, model.safetensors in the input's dtypes, the tokenizer files). Refuses a
 * llama2.c .bin (convert first), an already quantized input, an architecture without the roles
 * of any mapping, calibration text without one whole sample, NaN/Inf activations (naming the
 * layer). The input is only read. */
lq_status lq_smooth_transform(const char *model_path, const char *out_dir, const lq_smooth_opts *opts,
                              lq_smooth_summary *summary);

#ifdef __cplusplus
}
#endif
#endif
