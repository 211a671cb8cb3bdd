/* ptq_internal.h - helpers of the quantization driver (ptq*.c). */
#ifndef LQ_PTQ_INTERNAL_H
#define LQ_PTQ_INTERNAL_H

#include "libquant/lq_ptq.h"

/* LQ_ERR_INVALID_ARG (message names the pattern) if a "re:" pattern does not compile. */
lq_status lq_ptq_pattern_check(const char *pattern);
/* Whether `module` (e.g. "model.layers.0.self_attn.q_proj") matches `pattern`. */
bool lq_ptq_pattern_match(const char *pattern, const char *module);

#endif
