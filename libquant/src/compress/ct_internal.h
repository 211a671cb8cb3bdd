/* ct_internal.h - building the compressed-tensors quantization_config (ct_config.c). */
#ifndef LQ_CT_INTERNAL_H
#define LQ_CT_INTERNAL_H

#include <jansson.h>

#include "libquant/lq_checkpoint.h"
#include "libquant/lq_ptq.h"
#include "libquant/lq_safetensors.h"
#include "libquant/lq_targets.h"

/* One config group to write: its scheme and parameters, and the modules it targets. */
typedef struct lq_ct_group_spec {
    lq_wfmt scheme;
    int32_t group_size;      /* W4A16: > 0 group strategy, <= 0 channel */
    bool asym;
    bool all_linear;         /* targets ["Linear"] (every linear not in ignore) */
    const char **targets;    /* else: these exact module names */
    int64_t n_targets;
    const char *actorder;    /* weights "actorder" when the group strategy is "group"; NULL: null */
} lq_ct_group_spec;

/* The quantization_config object (new reference) for groups + ignore (exact module names).
 * NULL on allocation failure. */
json_t *lq_ct_config_build(const lq_ct_group_spec *groups, int n_groups, const char **ignore,
                           int64_t n_ignore);

/* The kv_cache_scheme object (new reference) of kv, as llm-compressor writes QuantizationArgs;
 * NULL on allocation failure. Its scale tensors: declared and written by the next two, in the
 * writer's order (ct_kv.c). */
json_t *lq_ct_kv_scheme_json(const lq_ptq_kv *kv);
lq_status lq_ct_kv_declare(lq_st_writer *w, const lq_ptq_kv *kv);
lq_status lq_ct_kv_write(lq_st_writer *w, const lq_ptq_kv *kv);

/* Parse one config group object (a QuantizationScheme) into g; refuses, naming the key, what the
 * engine would compute differently. */
lq_status lq_ct_parse_group(const char *path, const char *name, json_t *sch, lq_ct_group *g);

/* Whether a compressed-tensors format name is a storage of scheme s ("naive-quantized" is the
 * old name of int-quantized and float-quantized). */
bool lq_ct_format_matches(lq_wfmt s, const char *format);

/* The quantization_config of a checkpoint, resolved per module (compressed-tensors' matching:
 * ignore first, then each group's targets). */
typedef struct lq_ct_plan lq_ct_plan;

/* *out = NULL (and LQ_OK) when config_json has no quantization_config; errors as
 * lq_ct_config_parse, or a target pattern that does not compile. */
lq_status lq_ct_plan_load(const char *config_json, const char *path, lq_ct_plan **out);
void lq_ct_plan_free(lq_ct_plan *p);
/* The group that quantizes `module` (NULL: it stays float: ignored or not targeted). Refuses a
 * module two groups target. */
lq_status lq_ct_plan_lookup(const lq_ct_plan *p, const char *path, const char *module, lq_module_class cls,
                            const lq_ct_group **out);

/* The scheme the ptq plan gives a Linear module (ignore list, then overrides; ptq.c), so a
 * calibration driver quantizes exactly the modules lq_ptq_quantize will write. */
struct lq_arch;
lq_wfmt lq_ptq_module_scheme(const lq_ptq_opts *o, const struct lq_arch *arch, const char *module);

/* Drop the whole pages of [p, p + n) of a read-only mapping from the resident set (they stay in
 * the page cache and fault back in if read again): a streaming pass over a mapped model keeps
 * its RSS at what it holds, not the whole file. */
void lq_release_range(const void *p, size_t n);
/* lq_release_range over every tensor of c (after a pass that read them all, e.g. the NaN check). */
void lq_release_checkpoint(const lq_checkpoint *c);

#endif
