/* recipe_internal.h - the YAML layer of the recipe parser (recipe_yaml.c) and shared helpers. */
#ifndef LQ_RECIPE_INTERNAL_H
#define LQ_RECIPE_INTERNAL_H

#include <yaml.h>

#include "libquant/lq_recipe.h"

/* Limits that keep hostile input cheap (the fuzz target relies on them): real recipes are a
 * few levels deep and a few dozen nodes. */
#define RY_MAX_DEPTH 32          /* nested collections */
#define RY_MAX_VISITS 200000     /* nodes the schema walker may visit (aliases re-visit) */

typedef struct ry_doc {
    yaml_document_t doc;
    bool loaded;
    const char *path;            /* for messages */
    int64_t visits;              /* schema-walker budget used so far */
} ry_doc;

/* Load `text` as one YAML document. LQ_ERR_FORMAT with "file:line:col" for a syntax error,
 * nesting deeper than RY_MAX_DEPTH, or more than one document. An empty text loads with a NULL
 * root. */
lq_status ry_load(ry_doc *d, const char *text, size_t len, const char *path);
void ry_free(ry_doc *d);

yaml_node_t *ry_root(ry_doc *d);
yaml_node_t *ry_node(ry_doc *d, int index);
/* 1-based position of a node. */
lq_recipe_pos ry_pos(const yaml_node_t *n);
/* The scalar text (NUL-terminated by libyaml), or NULL if n is not a scalar. */
const char *ry_scalar(const yaml_node_t *n);
/* Whether n is a null: an empty plain scalar, "~", "null", "Null", "NULL". */
bool ry_is_null(const yaml_node_t *n);
/* "a mapping", "a list", "a string" ... for "must be X, got Y" messages. */
const char *ry_kind_name(const yaml_node_t *n);
/* Count a visit; LQ_ERR_FORMAT once the budget is spent (alias bombs). */
lq_status ry_visit(ry_doc *d, const yaml_node_t *n);

#endif
