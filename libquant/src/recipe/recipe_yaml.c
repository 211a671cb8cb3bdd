/* recipe_yaml.c - load a recipe's YAML document with libyaml, refusing hostile shapes early.
 *
 * libyaml's loader builds the whole node graph; aliases become shared references. Two things
 * would make a malicious file expensive: deep nesting (the loader and our walker recurse) and
 * alias fan-out (a node reachable through many aliases is walked once per path). A first pass
 * over the event stream bounds the depth before anything is built; the walker's visit budget
 * (ry_visit) bounds the fan-out.
 */
#include "recipe_internal.h"

#include <string.h>

static lq_status syntax_error(yaml_parser_t *p, const char *path) {
    const yaml_mark_t m = p->problem_mark;
    const char *problem = p->problem ? p->problem : "malformed YAML";
    if (p->context)
        return lq_fail(LQ_ERR_FORMAT, "YAML syntax error at %s:%zu:%zu: %s (%s at line %zu)", path,
                       m.line + 1, m.column + 1, problem, p->context, p->context_mark.line + 1);
    return lq_fail(LQ_ERR_FORMAT, "YAML syntax error at %s:%zu:%zu: %s", path, m.line + 1,
                   m.column + 1, problem);
}

/* Event pass: syntax, depth and document count, without building anything. */
static lq_status check_events(const char *text, size_t len, const char *path) {
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) return lq_fail(LQ_ERR_NOMEM, "%s: cannot start the YAML parser", path);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    lq_status s = LQ_OK;
    int depth = 0, docs = 0;
    for (;;) {
        yaml_event_t e;
        if (!yaml_parser_parse(&p, &e)) {
            s = syntax_error(&p, path);
            break;
        }
        const yaml_event_type_t t = e.type;
        const yaml_mark_t m = e.start_mark;
        yaml_event_delete(&e);
        if (t == YAML_STREAM_END_EVENT) break;
        if (t == YAML_DOCUMENT_START_EVENT && ++docs > 1) {
            s = lq_fail(LQ_ERR_FORMAT, "second YAML document at %s:%zu:%zu: a recipe is one document",
                        path, m.line + 1, m.column + 1);
            break;
        }
        if (t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT) {
            if (++depth > RY_MAX_DEPTH) {
                s = lq_fail(LQ_ERR_FORMAT, "nesting deeper than %d levels at %s:%zu:%zu",
                            RY_MAX_DEPTH, path, m.line + 1, m.column + 1);
                break;
            }
        } else if (t == YAML_MAPPING_END_EVENT || t == YAML_SEQUENCE_END_EVENT) {
            depth--;
        }
    }
    yaml_parser_delete(&p);
    return s;
}

lq_status ry_load(ry_doc *d, const char *text, size_t len, const char *path) {
    memset(d, 0, sizeof *d);
    d->path = path;
    LQ_TRY(check_events(text, len, path));
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) return lq_fail(LQ_ERR_NOMEM, "%s: cannot start the YAML parser", path);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    lq_status s = LQ_OK;
    if (!yaml_parser_load(&p, &d->doc))
        s = syntax_error(&p, path);
    else
        d->loaded = true;
    yaml_parser_delete(&p);
    return s;
}

void ry_free(ry_doc *d) {
    if (d->loaded) yaml_document_delete(&d->doc);
    d->loaded = false;
}

yaml_node_t *ry_root(ry_doc *d) { return d->loaded ? yaml_document_get_root_node(&d->doc) : NULL; }

yaml_node_t *ry_node(ry_doc *d, int index) { return yaml_document_get_node(&d->doc, index); }

lq_recipe_pos ry_pos(const yaml_node_t *n) {
    lq_recipe_pos p = {(int)n->start_mark.line + 1, (int)n->start_mark.column + 1};
    return p;
}

const char *ry_scalar(const yaml_node_t *n) {
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

bool ry_is_null(const yaml_node_t *n) {
    if (!n || n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)n->data.scalar.value;
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

const char *ry_kind_name(const yaml_node_t *n) {
    if (!n) return "nothing";
    switch (n->type) {
    case YAML_MAPPING_NODE: return "a mapping";
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_SCALAR_NODE: return ry_is_null(n) ? "null" : "a scalar";
    default: return "nothing";
    }
}

lq_status ry_visit(ry_doc *d, const yaml_node_t *n) {
    if (++d->visits > RY_MAX_VISITS) {
        lq_recipe_pos p = ry_pos(n);
        return lq_fail(LQ_ERR_FORMAT,
                       "recipe expands to more than %d nodes at %s:%d:%d (aliases of aliases?)",
                       RY_MAX_VISITS, d->path, p.line, p.col);
    }
    return LQ_OK;
}
