/* ct_internal.h - building the compressed-tensors quantization_config (ct_config.c). */
#ifndef LQ_CT_INTERNAL_H
#define LQ_CT_INTERNAL_H

#include <jansson.h>

#include "libquant/lq_ptq.h"

/* One config group to write: its scheme and parameters, and the modules it targets. */
typedef struct lq_ct_group_spec {
    lq_ptq_scheme scheme;
    int32_t group_size;      /* W4A16: > 0 group strategy, <= 0 channel */
    bool asym;
    bool all_linear;         /* targets ["Linear"] (every linear not in ignore) */
    const char **targets;    /* else: these exact module names */
    int64_t n_targets;
} lq_ct_group_spec;

/* The quantization_config object (new reference) for groups + ignore (exact module names).
 * NULL on allocation failure. */
json_t *lq_ct_config_build(const lq_ct_group_spec *groups, int n_groups, const char **ignore,
                           int64_t n_ignore);

#endif
