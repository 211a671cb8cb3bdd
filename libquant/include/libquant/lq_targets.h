/* lq_targets.h - which modules a target or ignore pattern names (llm-compressor semantics).
 *
 * Recipes, quant-ptq --ignore and quant-prune all say "these layers" the way llm-compressor does
 * (compressed-tensors utils/match.py, is_match = match_name or match_class):
 *   "re:<regex>"   PCRE2 regex over the module name, anchored at the start only (Python's
 *                  re.match): "re:.*q_proj" matches "model.layers.0.self_attn.q_proj".
 *   "Linear"       a module class: Linear (every projection and lm_head), Embedding,
 *                  LlamaRMSNorm; "__ALL__" is every module with a weight, "__ALL_PRUNABLE__"
 *                  every Linear (the sparseml spellings llm-compressor still accepts).
 *   exact name     "model.layers.0.mlp.down_proj", "lm_head".
 *   bare name      our one convenience: a name without dots ("q_proj", "down_proj") matches every
 *                  module whose last dotted component equals it.
 * Module names are the HF tensor names without ".weight" (lq_module_of_tensor).
 */
#ifndef LQ_TARGETS_H
#define LQ_TARGETS_H

#include <stdbool.h>
#include <stddef.h>

#include "lq_status.h"
#include "lq_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lq_module_class {
    LQ_MODULE_OTHER = 0,     /* not a module weight (a buffer, a bias we do not classify) */
    LQ_MODULE_LINEAR = 1,    /* 2-D projection: q/k/v/o, gate/up/down, lm_head */
    LQ_MODULE_EMBEDDING = 2, /* model.embed_tokens */
    LQ_MODULE_NORM = 3,      /* RMSNorm weights */
} lq_module_class;

/* torch class name of a module class: "Linear", "Embedding", "LlamaRMSNorm", "" for OTHER. */
const char *lq_module_class_name(lq_module_class c);

/* The module a checkpoint tensor belongs to: its name without the ".weight" suffix goes to
 * `module` (truncated to cap, always NUL-terminated) and its class is returned. Tensors not named
 * "<module>.weight" are LQ_MODULE_OTHER with the whole name as module. */
lq_module_class lq_module_of_tensor(const lq_tensor *t, char *module, size_t cap);

/* A compiled pattern (the regex is compiled once). */
typedef struct lq_target lq_target;

/* Compile `spec`. LQ_ERR_INVALID_ARG for an empty spec or a "re:" regex that does not compile
 * (the message names the pattern and the offset). */
lq_status lq_target_compile(const char *spec, lq_target **out);
void lq_target_free(lq_target *t);
const char *lq_target_spec(const lq_target *t);

/* Whether the module named `module`, of class `cls`, matches. */
bool lq_target_match(const lq_target *t, const char *module, lq_module_class cls);

/* One-shot form: compile, match, free. */
lq_status lq_target_match_spec(const char *spec, const char *module, lq_module_class cls,
                               bool *out);

#ifdef __cplusplus
}
#endif
#endif
