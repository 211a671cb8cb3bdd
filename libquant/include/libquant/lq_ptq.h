/* lq_ptq.h - post-training quantization into compressed-tensors checkpoints.
 *
 * Two parts:
 *   1. The compressed-tensors layout (the format llm-compressor writes and vLLM / transformers
 *      load): scheme names, the dense int32 bit packing, and the `quantization_config` block of
 *      config.json. Tensor naming per quantized Linear module `<m>` (compressed-tensors 0.20,
 *      compressors/pack_quantized/base.py and naive_quantized/base.py):
 *        W8A16, W4A16, W3A16 ("pack-quantized"):
 *          <m>.weight_packed     I32 [rows, ceil(cols * bits / 32)]  codes + 2^(bits-1), packed
 *                                densely along cols (element i at bit i*bits of the row)
 *          <m>.weight_scale      model dtype [rows, n_groups]  (channel strategy: [rows, 1])
 *          <m>.weight_shape      I64 [2] = {rows, cols}
 *          <m>.weight_zero_point I32 [ceil(rows * bits / 32), n_groups], asymmetric only: int
 *                                zero points + 2^(bits-1), packed along rows (packed_dim = 0)
 *        W8A8 ("int-quantized"):  <m>.weight I8 [rows, cols] + <m>.weight_scale [rows, 1]
 *        FP8 ("float-quantized"): <m>.weight F8_E4M3 [rows, cols] + <m>.weight_scale [rows, 1]
 *      Dequantization is w = (q - zero) * scale (forward_helpers.py `_dequantize`).
 *   2. The streaming quantization driver: plan which Linear gets which scheme, then quantize one
 *      tensor at a time (read the mapped view, convert to f32, the format's quantize_ref, write
 *      through lq_st_writer, free). Peak memory is about one tensor plus the mapped input.
 */
#ifndef LQ_PTQ_H
#define LQ_PTQ_H

#include <stdbool.h>
#include <stdint.h>

#include "lq_format.h"
#include "lq_pool.h"
#include "lq_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- schemes: formats and presets -------------------------------------------------------------- */

/* A quantized Linear's scheme is its weight format (lq_wfmt, the one format identity): its traits
 * row says how compressed-tensors stores it (lq_ct_storage), and the writer, the config reader and
 * writer, the binder and the recipes read that row. LQ_WFMT_NONE keeps a Linear in float. The
 * names users type are presets over it, in one table (ct_layout.c): compressed-tensors' preset
 * names "W8A16", "W4A16", "W4A16_ASYM", "W3A16", "W8A8" / "INT8", "FP8" / "FP8_DYNAMIC" (whose
 * weights are FP8's), and "none" / "dense". */
typedef struct lq_preset {
    const char *name;
    lq_wfmt fmt;             /* LQ_WFMT_NONE for "none" */
    int32_t group_size;      /* grouped formats: compressed-tensors' default 128; else 0 */
    bool asym;               /* zero points (W4A16_ASYM) */
} lq_preset;

/* The preset of a name (case-insensitive); NULL if unknown. */
const lq_preset *lq_preset_find(const char *name);
/* The table's i-th preset (for listing and suggestions); NULL past the end. */
const lq_preset *lq_preset_at(int i);
/* The preset name of a format and symmetry: "W4A16", "W4A16_ASYM", "none" (LQ_WFMT_NONE); a
 * format without compressed-tensors storage prints its traits name. */
const char *lq_preset_name(lq_wfmt f, bool asym);
/* The scheme name of a format, the symmetry left out ("W4A16", "FP8", "none"). */
const char *lq_ptq_scheme_name(lq_wfmt f);
/* The compressed-tensors storage of format f; NULL when it has none (LQ_WFMT_NONE, the float and
 * the GGUF formats). */
const lq_ct_storage *lq_ct_storage_of(lq_wfmt f);
/* Shorthands over lq_ct_storage_of: false / 0 / "dense" when f has no storage. */
bool lq_ct_packed(lq_wfmt f);   /* codes in int32 words (W8A16, W4A16, W3A16) */
bool lq_ct_grouped(lq_wfmt f);  /* group strategy and zero points apply (W4A16, W3A16) */
int lq_ct_bits(lq_wfmt f);
const char *lq_ct_format_name(lq_wfmt f);
/* Storage bytes of a rows x cols weight stored as format f with compressed-tensors' tensors:
 * codes (packed words or a byte each), scales of scale_bytes each (one per row and group), the
 * packed zero points (asym) and the 16-byte weight_shape of a packed format. 0 for a format without
 * compressed-tensors storage. */
uint64_t lq_ct_weight_bytes(lq_wfmt f, int32_t group_size, bool asym, int64_t rows, int64_t cols,
                            int scale_bytes);

/* ---- dense int32 packing (compressed-tensors pack_to_int32 / unpack_from_int32) ---------------- */

/* Words per packed line of n codes: ceil(n * bits / 32). */
int64_t lq_ct_packed_words(int64_t n, int bits);

/* Pack signed codes q (rows x cols, row-major, each in [-2^(bits-1), 2^(bits-1) - 1]) of
 * 1..8 bits. Each code is offset by 2^(bits-1) to unsigned; along the packed dimension, element
 * i of a line lands at bit i*bits of the line (low bits first, a code may straddle two words).
 * packed_dim 1: out is rows x lq_ct_packed_words(cols); packed_dim 0: the same along rows, out
 * is lq_ct_packed_words(rows) x cols. */
void lq_ct_pack_int32(const int8_t *q, int64_t rows, int64_t cols, int bits, int packed_dim,
                      int32_t *out);
/* The inverse: out receives rows x cols signed codes. */
void lq_ct_unpack_int32(const int32_t *p, int64_t rows, int64_t cols, int bits, int packed_dim,
                        int8_t *out);

/* ---- quantization_config ------------------------------------------------------------------------ */

#define LQ_CT_MAX_GROUPS 8

typedef struct lq_ct_group {
    char name[32];          /* "group_0" */
    lq_wfmt scheme;         /* the format its tensors bind as */
    int32_t group_size;     /* W4A16 group strategy; 0 for channel */
    bool asym;
    bool per_tensor;        /* weights strategy "tensor" */
    bool actorder;          /* GPTQ "weight" activation ordering (storage unchanged) */
    int64_t n_targets;      /* entries of "targets" */
} lq_ct_group;

/* A quantized KV cache (kv_cache_scheme): 8-bit, symmetric; float = E4M3 (vLLM's fp8 cache),
 * else int8. Static scales live in each attention module's k_scale / v_scale tensors (one value:
 * strategy "tensor", or one per kv head: "attn_head"); dynamic means scales per token. */
typedef struct lq_ct_kv_scheme {
    bool present;
    bool is_float;
    bool dynamic;
    bool per_head;
} lq_ct_kv_scheme;

typedef struct lq_ct_config {
    char format[32];        /* "pack-quantized", "mixed-precision", ... */
    char status[32];        /* quantization_status: "compressed" */
    int n_groups;           /* 0 only when the config quantizes the KV cache alone */
    lq_ct_group groups[LQ_CT_MAX_GROUPS];
    int64_t n_ignore;
    lq_ct_kv_scheme kv;
} lq_ct_config;

/* Parse the "quantization_config" of a config.json text. LQ_ERR_NOT_FOUND when the key is absent
 * (an unquantized model), LQ_ERR_UNSUPPORTED for a quant_method other than compressed-tensors or
 * a config group no scheme of ours describes, LQ_ERR_FORMAT for malformed JSON. */
lq_status lq_ct_config_parse(const char *config_json, const char *path, lq_ct_config *out);

/* ---- the driver ---------------------------------------------------------------------------------- */

/* A per-module rule: modules matching `pattern` get `scheme` (LQ_WFMT_NONE = keep float).
 * Patterns, as llm-compressor spells them: "re:<regex>" (PCRE, anchored at the start of the
 * module name like Python's re.match), "Linear" (every linear layer), an exact module name
 * ("model.layers.0.mlp.down_proj"), or a bare component name ("q_proj", "lm_head") matching
 * every module whose last dotted component equals it. */
typedef struct lq_ptq_rule {
    const char *pattern;
    lq_wfmt scheme;
    /* false: group size and symmetry are the options' (group_size, asym). true: this rule's
     * (a mixed plan gives W4A16 g32 to some modules and g128 to others; lq_ptq_automix.h). */
    bool own_params;
    int32_t group_size;          /* own_params, grouped formats: > 0 */
    bool asym;                   /* own_params, grouped formats */
} lq_ptq_rule;

/* What to do with a W4A16 tensor whose column count the group size does not divide.
 * compressed-tensors 0.20 cannot represent it: the group forward path raises ("tensor column
 * shape must be divisble by the given group_size", forward_helpers.py _process_group) and
 * strategy_cdiv suggests "reducing the group/block size or ignoring modules with weights not
 * divisible". Small models hit this for every group size (stories260K: 64 and 172 columns). */
typedef enum lq_ptq_group_fallback {
    LQ_PTQ_FALLBACK_REFUSE = 0,  /* fail before writing, naming the first such tensor (default) */
    LQ_PTQ_FALLBACK_CHANNEL = 1, /* same bit width, one group per output row (strategy "channel"),
                                  * written as its own config group targeting exactly those
                                  * modules, so the checkpoint stays loadable by vLLM et al. */
    LQ_PTQ_FALLBACK_IGNORE = 2,  /* keep them in float (listed in the config's "ignore") */
    LQ_PTQ_FALLBACK_COUNT
} lq_ptq_group_fallback;

/* "refuse", "channel", "ignore". */
const char *lq_ptq_group_fallback_name(lq_ptq_group_fallback f);
/* Exact lower-case names above; false if unknown. */
bool lq_ptq_group_fallback_parse(const char *s, lq_ptq_group_fallback *out);

/* Symmetric integer scale rules: "amax" (LQ_ROUND_AMAX, compressed-tensors' amax / 7.5, what
 * llm-compressor writes) and "signed-max" (LQ_ROUND_SIGNED_MAX, llama.cpp Q4_0's max / -8). */
const char *lq_rounding_name(lq_rounding r);
/* Exact names above; false if unknown. */
bool lq_rounding_parse(const char *s, lq_rounding *out);

/* Calibration statistics for the clip search: per Linear module, the mean square of each input
 * column over the calibration tokens (llama.cpp's imatrix). find returns the module's cols
 * floats, or NULL when it has none (that module is searched as without data). */
typedef struct lq_ptq_calib {
    const float *(*find)(void *user, const char *module, int64_t cols);
    void *user;
} lq_ptq_calib;

/* Codes computed elsewhere (GPTQ, lq_gptq.h): get fills w, whose fmt, rows, cols, row_bytes and
 * group_size are set and whose data / aux[0] (scales, f32) / aux[1] (zero points as floats,
 * asymmetric only) point to buffers of the format's layout (lq_wfmt_sizes), with the module's
 * quantized weight; the writer then stores it as it stores RTN's. LQ_ERR_NOT_FOUND: quantize this
 * module by RTN; any other error stops the write. */
typedef struct lq_ptq_source {
    lq_status (*get)(void *user, const char *module, lq_weight *w);
    void *user;
} lq_ptq_source;

/* Called after each tensor is written (done counts parameters of every tensor so far). */
typedef void (*lq_ptq_progress_fn)(void *user, int64_t done, int64_t total, const char *tensor);

/* A quantized KV cache written with the weights: compressed-tensors' kv_cache_scheme (8 bits,
 * symmetric, static: "minmax" scales = max |K| or |V| over the calibration tokens / 448 (E4M3)
 * or / 127.5 (int8)) and each attention module's k_scale / v_scale tensors, shape [1] (strategy "tensor") or
 * [n_kv_heads, 1, 1] ("attn_head"), f32. vLLM runs a float (E4M3) one as its fp8 cache; our
 * engine runs both (lq_kv.h). lq_kv_calibrate (lq_calib.h) fills one. */
typedef struct lq_ptq_kv {
    bool is_float;           /* E4M3; false: int8 */
    bool per_head;           /* "attn_head": n_kv_heads scales per tensor; else "tensor": one */
    int n_layers, n_kv_heads;
    float *k_scale, *v_scale;  /* (n_layers, per_head ? n_kv_heads : 1) */
    char (*modules)[192];      /* (n_layers) attention module names, "model.layers.3.self_attn" */
} lq_ptq_kv;
void lq_ptq_kv_free(lq_ptq_kv *kv); /* frees the arrays; NULL ok */

typedef struct lq_ptq_opts {
    lq_wfmt scheme;              /* default for every Linear not ignored or overridden: a format
                                  * with compressed-tensors storage (lq_ct_storage_of), or
                                  * LQ_WFMT_NONE (only the overrides quantize); 0 is LQ_WFMT_F32,
                                  * which has none, so a zeroed struct is refused */
    int32_t group_size;          /* W4A16 / W3A16 group size; 0 = 128; -1 = one group per row */
    bool asym;                   /* W4A16 / W3A16: asymmetric (zero points) */
    bool clip_search;            /* search each group's clipping ratio (lower error, slower) */
    lq_rounding rounding;        /* symmetric integer scale rule; 0 = amax (compressed-tensors) */
    const lq_ptq_calib *calib;   /* clip search weights per module; NULL: none (borrowed) */
    const lq_ptq_kv *kv;         /* a calibrated KV-cache scheme to write too; NULL: none (borrowed) */
    lq_ptq_group_fallback group_fallback; /* W4A16 tensors group_size does not divide; 0 = refuse */
    /* Modules kept in float. By default `ignore` adds to the default list ["lm_head"] (plus the
     * routers of a sparse MoE, "*.block_sparse_moe.gate", "*.mlp.gate", "*.mlp.shared_expert_gate",
     * as llm-compressor's MoE recipes ignore them); with
     * ignore_replaces_default it IS the list (an llm-compressor recipe's `ignore:` works that way:
     * recipes spell out `ignore: ["lm_head"]`), so a list without lm_head quantizes the head
     * with `scheme`. model.embed_tokens is not a Linear and is never quantized. */
    const char *const *ignore;
    int n_ignore;
    bool ignore_replaces_default;
    /* Applied in order, the last match wins; overrides beat the ignore list, default included
     * (`lm_head` -> W8A16 quantizes the head). */
    const lq_ptq_rule *overrides;
    int n_overrides;
    lq_pool *pool;               /* borrowed; rows of a tensor are quantized across it; NULL ok */
    lq_ptq_progress_fn progress;
    void *user;
    const lq_ptq_source *source; /* NULL: every module by RTN (borrowed) */
    /* The weights' "actorder" to record in every group-strategy config group (GPTQ's column
     * order, e.g. "weight"; the storage does not change). NULL: none. compressed-tensors refuses
     * an actorder on any other strategy, so channel groups never get it. */
    const char *actorder;
} lq_ptq_opts;

typedef struct lq_ptq_tensor_stat {
    char name[160];              /* module name ("model.layers.0.self_attn.q_proj") */
    lq_wfmt scheme;
    int64_t rows, cols;
    uint64_t bytes_in, bytes_out;  /* the float weight vs payload + scales + zero points */
    double rel_err;              /* ||W - deq(Q(W))||_F / ||W||_F */
    int32_t group_size;          /* W4A16 group size used; 0 per channel (and other schemes) */
    bool fell_back;              /* quantized per channel by LQ_PTQ_FALLBACK_CHANNEL */
    bool calibrated;             /* the clip search used calibration weights */
    lq_clip_stats clip;          /* what the clip search chose (all zero without a search) */
} lq_ptq_tensor_stat;

/* A tensor the group fallback applied to (either action). */
typedef struct lq_ptq_fallback_stat {
    char name[160];              /* module name */
    int64_t rows, cols;
    int32_t group_size;          /* the group size that does not divide cols */
    lq_ptq_group_fallback action; /* CHANNEL or IGNORE */
} lq_ptq_fallback_stat;

typedef struct lq_ptq_summary {
    int64_t n_tensors;           /* tensors in the input */
    int64_t n_quantized;         /* linear weights quantized */
    int64_t params_total, params_quantized;
    uint64_t bytes_in, bytes_out;  /* every tensor's payload in the input / output */
    uint64_t qbytes_in, qbytes_out; /* the quantized tensors only */
    double bits_per_weight;      /* qbytes_out * 8 / params_quantized */
    double mean_rel_err, worst_rel_err;
    char worst_tensor[160];
    lq_ptq_tensor_stat *tensors; /* n_quantized entries, input order; free with _summary_free */
    int64_t n_fallback;          /* tensors the group fallback applied to */
    lq_ptq_fallback_stat *fallback; /* n_fallback entries, input order; freed with the summary */
    double seconds;
} lq_ptq_summary;

void lq_ptq_summary_free(lq_ptq_summary *s);

/* Quantize the Hugging Face checkpoint directory model_path into the existing
 * directory out_dir: writes out_dir/config.json (the input's, plus quantization_config) and
 * out_dir/model.safetensors (atomically, through lq_st_writer). Reads the input only.
 * The output head of a tied model (tie_word_embeddings, or no lm_head.weight): when the plan
 * quantizes module "lm_head", it is written as its own quantized lm_head (lm_head.weight_packed,
 * ... quantized from model.embed_tokens.weight, the matrix the tied model multiplies by), the
 * embedding stays dense, and config.json says "tie_word_embeddings": false: what transformers /
 * vLLM expect of an untied quantized head. A head left in float stays tied.
 * Refuses, before writing anything: a llama2.c .bin (LQ_ERR_UNSUPPORTED: convert it first) or an
 * input that is already quantized (LQ_ERR_UNSUPPORTED), a
 * group size that does not divide a tensor's columns (LQ_ERR_INVALID_ARG naming the tensor;
 * unless opts->group_fallback says otherwise).
 * While streaming: NaN/Inf in a weight is LQ_ERR_FORMAT naming the tensor (nothing committed).
 * `summary` may be NULL. */
lq_status lq_ptq_quantize(const char *model_path, const char *out_dir, const lq_ptq_opts *opts,
                          lq_ptq_summary *summary);

#ifdef __cplusplus
}
#endif
#endif
