/* lq_recipe.h - YAML compression recipes in the llm-compressor shape (docs/RECIPES.md).
 *
 *     quant_stage:                       # a stage: any key ending in "_stage"
 *       quant_modifiers:                 # a modifier group: any key ending in "_modifiers"
 *         QuantizationModifier:          # a modifier class and its arguments
 *           scheme: W4A16
 *           targets: [Linear]
 *           ignore: [lm_head]
 *     eval_stage:                        # ours: perplexity / KL gates
 *       files: [data/sample.txt]
 *       max_ppl_increase: 2%
 *
 * lq_recipe_parse reads the text into a validated lq_recipe: every error (bad YAML, wrong type,
 * unknown key, missing argument, impossible combination) is one message with file:line:column
 * and the key, plus "did you mean" for a misspelled name. lq_recipe_plan then resolves the
 * modifiers against a checkpoint's tensors (which tensors each modifier touches, shape checks,
 * estimated output size). lq_recipe_apply_modifier runs one modifier on one checkpoint through
 * the library API that implements it (lq_ptq, lq_prune); quant-recipe run chains the steps and
 * runs eval_stage / distill_stage itself (they need lq_eval).
 *
 * Thread-safety: a recipe and a plan are plain data, safe to read from several threads.
 */
#ifndef LQ_RECIPE_H
#define LQ_RECIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lq_checkpoint.h"
#include "lq_gptq.h"
#include "lq_pool.h"
#include "lq_ptq_automix.h"
#include "lq_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- modifiers -------------------------------------------------------------------------------- */

/* Values are not persisted; order is the documentation order. */
typedef enum lq_modifier_kind {
    LQ_MOD_QUANTIZATION = 0,   /* QuantizationModifier: round-to-nearest PTQ (quant-ptq) */
    LQ_MOD_GPTQ,               /* GPTQModifier */
    LQ_MOD_AWQ,                /* AWQModifier */
    LQ_MOD_SMOOTHQUANT,        /* SmoothQuantModifier */
    LQ_MOD_MAGNITUDE_PRUNING,  /* MagnitudePruningModifier: unstructured or N:M by |w| */
    LQ_MOD_CONSTANT_PRUNING,   /* ConstantPruningModifier: keep an existing mask */
    LQ_MOD_STRUCTURED_PRUNING, /* StructuredPruningModifier (ours): FFN channels / heads */
    LQ_MOD_SPARSEGPT,          /* SparseGPTModifier */
    LQ_MOD_WANDA,              /* WandaPruningModifier */
    LQ_MOD_COUNT
} lq_modifier_kind;

/* The class name as written in recipes ("GPTQModifier"). */
const char *lq_modifier_name(lq_modifier_kind k);
/* Whether this build can run the modifier (its library API has landed). */
bool lq_modifier_available(lq_modifier_kind k);

typedef enum lq_mask_structure {
    LQ_MASK_UNSTRUCTURED = 0,
    LQ_MASK_NM = 1,            /* N zeros in every M consecutive weights of a row ("2:4") */
} lq_mask_structure;

/* A W4A16 layer whose input width the group size does not divide (compressed-tensors has no
 * partial groups): same values as lq_ptq.h's lq_ptq_group_fallback. */
typedef enum lq_recipe_group_fallback {
    LQ_GROUP_FALLBACK_REFUSE = 0,  /* plan error naming the tensor (default) */
    LQ_GROUP_FALLBACK_CHANNEL = 1, /* that layer gets one group per row (its own config group) */
    LQ_GROUP_FALLBACK_IGNORE = 2,  /* that layer stays float */
} lq_recipe_group_fallback;

/* Named apart from lq_prune.h's lq_prune_method (LQ_PRUNE_FFN ...) so both headers mix. */
typedef enum lq_prune_structure {
    LQ_STRUCTURE_FFN = 0,      /* whole FFN channels (rows of gate/up, columns of down) */
    LQ_STRUCTURE_HEADS = 1,    /* whole attention heads (q/k/v rows, o columns) */
} lq_prune_structure;

/* Position of a node in the recipe file, 1-based. */
typedef struct lq_recipe_pos {
    int line, col;
} lq_recipe_pos;

typedef struct lq_recipe_modifier {
    lq_modifier_kind kind;
    lq_recipe_pos pos;         /* of the modifier's class name */
    char group[64];            /* the "*_modifiers" key it sits under */
    char **targets;            /* patterns (lq_targets.h); default ["Linear"] */
    int n_targets;
    char **ignore;             /* patterns excluded from targets; default [] */
    int n_ignore;
    /* quantization (QuantizationModifier, GPTQModifier, AWQModifier) */
    /* the scheme preset (lq_preset_find: "W4A16_ASYM" is W4A16 with asym) */
    lq_wfmt scheme;            /* LQ_WFMT_NONE for the others */
    bool asym;                 /* zero points */
    int32_t group_size;        /* W4A16*: default 128; 0 for the per-channel schemes; -1 a W4A16 /
                                * W3A16 per channel (config_groups' strategy "channel") */
    bool clip_search;          /* ours: search the clipping ratio per group */
    /* ours (QuantizationModifier): mixed precision to a size, as quant-ptq --target-bpw: each
     * planned Linear gets one of `cand` (default lq_ptq_automix_defaults) so that the bits per
     * weight over them stay <= target_bpw, least summed weight-error proxy; 0: off. `scheme`
     * is then cand[0] (what the plan's size estimate uses) */
    double target_bpw;
    lq_ptq_candidate cand[LQ_PTQ_AUTOMIX_MAX_CAND];
    int n_cand;
    lq_recipe_group_fallback group_fallback; /* ours: W4A16 layers group_size does not divide */
    /* kv_cache_scheme (QuantizationModifier, GPTQModifier): 8-bit symmetric static scales,
     * calibrated on the run's text and written with the weights (lq_ptq_kv) */
    int kv_cache;              /* 0 none, 1 int8 ("type: int"), 2 fp8 ("type: float") */
    bool kv_per_head;          /* strategy "attn_head" (else "tensor") */
    /* GPTQ */
    int32_t block_size;        /* default 128 */
    double dampening_frac;     /* default 0.01 */
    char actorder[16];         /* "static", "group", "weight" or "" */
    /* SmoothQuant */
    double smoothing_strength; /* default 0.5, in (0, 1) */
    /* AWQ */
    int duo_scaling;           /* lq_awq_duo (lq_smooth.h): 0 true (default), 1 false, 2 "both" */
    int32_t n_grid;            /* default 20 */
    /* pruning */
    double sparsity;           /* fraction of weights zeroed (N/M for an N:M mask) */
    lq_mask_structure mask;
    int32_t mask_n, mask_m;    /* LQ_MASK_NM */
    lq_prune_structure structure; /* StructuredPruningModifier */
} lq_recipe_modifier;

/* ---- stages ------------------------------------------------------------------------------------ */

typedef enum lq_stage_kind {
    LQ_STAGE_MODIFIERS = 0,    /* llm-compressor stage: modifier groups */
    LQ_STAGE_EVAL = 1,         /* eval_stage */
    LQ_STAGE_DISTILL = 2,      /* distill_stage */
} lq_stage_kind;

/* What an eval_stage compares the current model with. */
typedef enum lq_eval_baseline {
    LQ_EVAL_BASE_ORIGINAL = 0, /* the recipe's input model (default) */
    LQ_EVAL_BASE_PREVIOUS = 1, /* the model before the last stage that changed it */
} lq_eval_baseline;

typedef struct lq_recipe_eval {
    char **files;              /* text files, relative to the working directory */
    int n_files;
    int32_t ctx;               /* tokens per chunk; default 512 */
    bool per_line;             /* score each line (or separator unit) on its own */
    char separator[64];        /* unit separator with per_line ("" = newline) */
    lq_eval_baseline baseline;
    /* Gates, each checked on every file; a failed gate fails the run and nothing is written.
     * max_ppl_increase: "2%" is relative (PPL(result) > PPL(base) * 1.02 fails), a plain
     * number is absolute (PPL(result) - PPL(base) > x fails). < 0 = no gate. */
    double max_ppl_increase;
    bool ppl_increase_relative;
    double max_kld;            /* mean KL(base || result) in nats ("max_mean_kld"); < 0 = none */
    double min_top1;           /* share of tokens whose argmax agrees, [0, 1]; < 0 = none */
} lq_recipe_eval;

/* The quant-distill options (tools/quant-distill.c flags with '-' spelled '_'): the teacher's
 * top-k soft labels over `file`, written to <out>/distill (docs/DISTILL_FORMAT.md). The model
 * itself passes through unchanged: this build records distillation data, it does not train. */
typedef struct lq_recipe_distill {
    char **files;              /* exactly one corpus file ("file") */
    int n_files;
    char teacher[512];         /* teacher model ("model"); "" = the recipe's input model */
    char tokenizer[512];       /* "" = the teacher directory's tokenizer.json */
    int32_t ctx;               /* 0 = quant-distill's default (512; per_line: model context) */
    int32_t k;                 /* soft labels kept per position; default 32 */
    bool per_line;
    char separator[64];        /* with per_line; "" = newline */
    int32_t feat_layers[16];   /* "features": residual stream after these layers */
    int n_feat_layers;
    bool logp_f16;             /* "logp_dtype: f16" */
} lq_recipe_distill;

typedef struct lq_recipe_stage {
    char name[64];             /* the YAML key ("quant_stage") */
    lq_recipe_pos pos;
    lq_stage_kind kind;
    lq_recipe_modifier *mods;  /* LQ_STAGE_MODIFIERS, in file order */
    int n_mods;
    lq_recipe_eval eval;       /* LQ_STAGE_EVAL */
    lq_recipe_distill distill; /* LQ_STAGE_DISTILL */
} lq_recipe_stage;

typedef struct lq_recipe {
    char path[512];            /* as given (used in messages) */
    lq_recipe_stage *stages;
    int n_stages;
} lq_recipe;

/* Parse and validate a recipe text of `len` bytes. `path` names it in messages ("w4.yaml:7:5").
 * Errors: LQ_ERR_FORMAT (not YAML, or not the recipe shape: wrong types, unknown keys, missing
 * arguments), LQ_ERR_INVALID_ARG (values out of range, impossible combinations),
 * LQ_ERR_UNSUPPORTED (a scheme this build lacks). On failure *out is left empty. */
lq_status lq_recipe_parse(const char *text, size_t len, const char *path, lq_recipe *out);
/* Read `path` and parse it (LQ_ERR_IO if unreadable). */
lq_status lq_recipe_load(const char *path, lq_recipe *out);
void lq_recipe_free(lq_recipe *r);

/* LQ_ERR_UNSUPPORTED "modifier X is not available in this build (at file:line:col)" for the first
 * modifier or stage this build cannot run; LQ_OK when every one can. */
lq_status lq_recipe_check_available(const lq_recipe *r);

/* ---- the plan: a recipe against a checkpoint ------------------------------------------------- */

typedef struct lq_plan_tensor {
    const char *name;          /* checkpoint tensor name (owned by the checkpoint) */
    int64_t rows, cols;
} lq_plan_tensor;

typedef struct lq_plan_modifier {
    const lq_recipe_modifier *mod; /* borrowed from the recipe */
    lq_plan_tensor *tensors;   /* the tensors it touches, checkpoint order */
    int64_t n_tensors;
    int64_t params;            /* elements of those tensors */
} lq_plan_modifier;

typedef struct lq_plan {
    lq_plan_modifier *mods;    /* one per modifier, in recipe order (stage, then file order) */
    int n_mods;
    uint64_t bytes_in;         /* every tensor's payload as stored */
    uint64_t bytes_out;        /* estimated: quantized tensors at their scheme's size, the rest
                                * as stored (pruning keeps dense storage) */
    int64_t params_total, params_quantized;
} lq_plan;

/* Resolve every modifier's targets minus ignores against the checkpoint's tensors and check what
 * depends on shapes: a modifier that matches nothing (LQ_ERR_INVALID_ARG naming the recipe
 * position), a group size or N:M block that does not divide a tensor's columns (naming the
 * tensor), a tensor quantized twice, a tensor pruned after it was quantized. */
lq_status lq_recipe_plan(const lq_recipe *r, const lq_checkpoint *ck, lq_plan *out);
void lq_plan_free(lq_plan *p);

/* ---- running one modifier ------------------------------------------------------------------- */

typedef void (*lq_recipe_progress_fn)(void *user, int64_t done, int64_t total, const char *tensor);

/* Whether the modifier runs on calibration data. */
bool lq_modifier_needs_calibration(lq_modifier_kind k);

typedef struct lq_recipe_step_opts {
    lq_pool *pool;             /* borrowed; NULL = one thread */
    lq_recipe_progress_fn progress;
    void *user;
    bool bitmask_output;       /* pruning: lq_prune_opts.bitmask_output (default: dense) */
    /* Calibration data of the modifiers that need it (GPTQModifier, SparseGPTModifier,
     * WandaPruningModifier, AWQ / SmoothQuant): like llm-compressor's oneshot dataset
     * arguments, given to the run, not written in the recipe; no files: such a modifier is
     * refused by name. */
    lq_calib_source calib;
} lq_recipe_step_opts;

typedef struct lq_recipe_step_result {
    int64_t n_tensors;         /* tensors the modifier changed */
    int64_t params;            /* their elements */
    uint64_t bytes_in, bytes_out; /* every tensor's payload, input and output */
    double seconds;
} lq_recipe_step_result;

/* Apply modifier `m` of recipe `r` to the checkpoint in_path, writing config.json and
 * model.safetensors into the existing directory out_dir (tokenizer files are the caller's).
 * The modifier's targets and ignores are resolved against in_path itself (lq_recipe_plan on a
 * one-modifier recipe), so a stage sees the shapes the previous one produced. Each modifier is
 * dispatched to its library API (QuantizationModifier: lq_ptq_quantize with exactly the planned
 * modules); LQ_ERR_UNSUPPORTED for one this build lacks. `res` may be NULL. */
lq_status lq_recipe_apply_modifier(const lq_recipe *r, const lq_recipe_modifier *m, const char *in_path,
                                   const char *out_dir, const lq_recipe_step_opts *opts,
                                   lq_recipe_step_result *res);

/* ---- running a whole recipe (quant-recipe run) --------------------------------------------- */

/* One modifier in words, as check and run print it: "QuantizationModifier scheme=W4A16
 * group_size=128 targets=[Linear] ignore=[lm_head]" (truncated to cap). */
void lq_recipe_describe_modifier(const lq_recipe_modifier *m, char *buf, size_t cap);

/* Everything `run` needs before any work, so that `check --model` finds what `run` would find:
 * every eval_stage and distill_stage file and teacher readable; a tokenizer for every model a
 * stage tokenizes with (`tokenizer` if given, else the model's tokenizer.json; NULL model = skip
 * the model-dependent checks); each distill_stage's k within its teacher's vocabulary and its
 * features within the teacher's layers. `report_file` (may be NULL) is the text the final
 * report scores. Errors name the recipe position. */
lq_status lq_recipe_check_inputs(const lq_recipe *r, const char *model, const char *tokenizer,
                                 const char *report_file);

/* What the caller measures for the runner: eval_stage gates and the final report compare two
 * models on a text, which is the evaluation harness's job (lq_eval, above this library); the
 * runner decides, records and reports. */
typedef struct lq_recipe_compare {
    double base_ppl, ppl;      /* perplexity of the baseline and of the model on the same tokens */
    double delta_ppl, delta_ppl_pct;
    double kld_mean;           /* mean KL(baseline || model) per scored token */
    double same_top;           /* fraction of tokens whose argmax agrees */
    int64_t n_scored;
} lq_recipe_compare;

typedef struct lq_recipe_model_summary {
    char format[48];           /* linear layers' format ("W4A16-g128", "f32", ...) */
    uint64_t disk_bytes;
    int64_t n_params;
    double bpw_linear, bpw_overall;
} lq_recipe_model_summary;

typedef struct lq_recipe_measure {
    /* Compare the checkpoint `model` against `baseline` on text file `file` (ctx, per_line and
     * separator as an eval_stage says; tokenizer: the run's, else each model's own). */
    lq_status (*compare)(void *user, const char *baseline, const char *model, const char *file,
                         int32_t ctx, bool per_line, const char *separator, lq_recipe_compare *out);
    lq_status (*summary)(void *user, const char *model, lq_recipe_model_summary *out);
    void *user;
} lq_recipe_measure;

typedef struct lq_recipe_run_opts {
    const char *model;         /* input checkpoint (HF directory or llama2.c .bin) */
    const char *tokenizer;     /* for every model loaded; NULL = each model's tokenizer.json */
    const char *work_dir;      /* existing, empty directory that receives the result (the
                                * caller commits it atomically under `out`) */
    const char *out;           /* the final name, for quant-recipe.json and messages */
    const char *report_file;   /* text of the final report; NULL = the first eval_stage's */
    const char *tool;          /* "quant-recipe": the "tool" of quant-recipe.json */
    lq_pool *pool;             /* borrowed; NULL = one thread */
    lq_recipe_measure measure; /* required when the recipe has an eval_stage or a report text */
    /* Progress of the current step ("stage 2/3 QuantizationModifier"), and one line per event a
     * person may want to read (a stage starting, its result); both may be NULL. */
    lq_recipe_progress_fn progress;
    void (*note)(void *user, const char *line);
    void *user;
    bool bitmask_output;       /* magnitude / N:M pruning: lq_prune_opts.bitmask_output */
    lq_calib_source calib;     /* GPTQ / SparseGPT / Wanda / AWQ / SmoothQuant modifiers */
} lq_recipe_run_opts;

typedef struct lq_recipe_run_result {
    char *json;                /* quant-recipe.json as written (malloc'd; NULL on failure) */
    bool gate_failed;          /* the failure is an eval_stage verdict (message in lq_last_error) */
} lq_recipe_run_result;

/* Run every stage of `r` in order into o->work_dir: each modifier streams the previous step's
 * checkpoint into a fresh one (peak memory one tensor), eval_stages compare through o->measure
 * and fail the run (LQ_ERR_MISMATCH, gate_failed) when a threshold is exceeded, distill_stages
 * run lq_distill_run into work_dir/distill[-N]. At the end the last step's files are moved to
 * the top of work_dir with recipe.yaml (a copy of r->path) and quant-recipe.json (stages,
 * results, the baseline-vs-result report). lq_recipe_check_inputs runs first: nothing starts
 * unless every input is there. Free res->json with free(). */
lq_status lq_recipe_run(const lq_recipe *r, const lq_recipe_run_opts *o, lq_recipe_run_result *res);

/* ---- spelling help ------------------------------------------------------------------------------ */

/* Edit distance between a and b (case-sensitive): insertions, deletions, substitutions and swaps
 * of two adjacent characters, each costing 1 (optimal string alignment). 255 if either string is
 * longer than 255 bytes. */
int lq_edit_distance(const char *a, const char *b);
/* The candidate closest to `word` when its distance is small enough to be a typo (at most 1/3 of
 * the longer length, at least 1), else NULL. */
const char *lq_suggest(const char *word, const char *const *candidates, int n);

#ifdef __cplusplus
}
#endif
#endif
