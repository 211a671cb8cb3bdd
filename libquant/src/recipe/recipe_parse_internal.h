/* recipe_parse_internal.h - what the recipe parser's files share: the walk context, mapping
 * entries, and the typed getters that turn a YAML node into a value or a one-line error ending
 * in "at <file>:<line>:<col>" (recipe_parse_values.c). recipe_parse_modifier.c parses one
 * modifier with them; recipe_parse.c walks stages and the recipe.
 */
#ifndef RECIPE_PARSE_INTERNAL_H
#define RECIPE_PARSE_INTERNAL_H

#include "recipe_internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAX_MAP_ENTRIES 1024
#define MAX_LIST 4096

typedef struct pctx {
    ry_doc *d;
    const char *path;
} pctx;

/* One key: value pair of a mapping; name is the key's scalar. */
typedef struct entry {
    yaml_node_t *key, *val;
    const char *name;
} entry;

/* Control characters to spaces, so a message stays one line. */
void rp_one_line(char *s);
/* "<message> at file:line:col[; did you mean 'hint'?]" recorded through lq_fail; returns s. */
lq_status rp_fail_at(const pctx *c, lq_status s, const yaml_node_t *n, const char *hint,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* A scalar quoted for a message (shortened into buf), or the node kind's name. */
const char *rp_shown(const yaml_node_t *n, char *buf, size_t cap);
/* n must be a mapping with distinct scalar keys; *out (free it) gets its entries. */
lq_status rp_map_entries(const pctx *c, yaml_node_t *n, const char *what, entry **out, int *count);
bool rp_ends_with(const char *s, const char *suffix);
lq_status rp_want_scalar(const pctx *c, const yaml_node_t *v, const char *what, const char *type);
lq_status rp_get_int(const pctx *c, const yaml_node_t *v, const char *what, long long lo,
                     long long hi, int32_t *out);
/* A number in [lo, hi] ((lo, hi] when lo_open), or a percentage ("2%") when `percent`. */
lq_status rp_get_number(const pctx *c, const yaml_node_t *v, const char *what, bool percent,
                        double lo, double hi, bool lo_open, double *out);
lq_status rp_get_bool(const pctx *c, const yaml_node_t *v, const char *what, bool *out);
lq_status rp_get_str(const pctx *c, const yaml_node_t *v, const char *what, char *out, size_t cap);
void rp_free_list(char **l, int n);
/* A string or a list of strings; null -> empty; `patterns`: each must compile as a target. */
lq_status rp_get_list(const pctx *c, yaml_node_t *v, const char *what, bool patterns,
                      char ***out, int *n);

static inline bool rp_is_prune(lq_modifier_kind k) {
    return k == LQ_MOD_MAGNITUDE_PRUNING || k == LQ_MOD_SPARSEGPT || k == LQ_MOD_WANDA;
}
static inline bool rp_is_quant(lq_modifier_kind k) {
    return k == LQ_MOD_QUANTIZATION || k == LQ_MOD_GPTQ || k == LQ_MOD_AWQ;
}

/* A quantizing modifier's config_groups (one group) into m's scheme, asym, group_size (-1: per
 * channel), GPTQ actorder and, unless have_targets, targets (recipe_parse_groups.c). */
lq_status rp_parse_config_groups(const pctx *c, yaml_node_t *v, const char *mod, bool have_targets,
                                 lq_recipe_modifier *m);

/* One modifier entry (class name -> arguments) into m, checked for requirements and
 * combinations inside the modifier (recipe_parse_modifier.c). */
lq_status rp_parse_modifier(const pctx *c, const entry *me, lq_recipe_modifier *m);

#endif
