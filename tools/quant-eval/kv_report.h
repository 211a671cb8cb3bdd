/* kv_report.h - how quant-eval names the KV cache --model runs with, in every mode's JSON
 * (perplexity, --kld, --bench, --serve-bench, --batch-curve): one spelling of the keys. */
#ifndef QUANT_EVAL_KV_REPORT_H
#define QUANT_EVAL_KV_REPORT_H

#include <jansson.h>
#include <stdbool.h>

#include "libquant.h"

/* Whether m's cache is q8 / fp8 with static scales (a checkpoint's kv_cache_scheme). */
bool quant_eval_kv_static(const lq_model *m);
/* "kv_cache" (f32 / f16 / q8 / fp8), "kv_cache_scales" (none / per-token / static) and
 * "kv_cache_bytes_per_pos" (K and V of every layer, scales included) into j. */
void quant_eval_kv_json(json_t *j, const lq_model *m);

#endif
