/* recipe_parse_values.c - typed getters of the recipe parser: YAML node -> int, number,
 * percentage, bool, string, list of strings or patterns, mapping entries; each failure is one
 * line ending in "at <file>:<line>:<col>" of the node at fault.
 */
#include "recipe_parse_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "libquant/lq_targets.h"

/* ---- messages ----------------------------------------------------------------------------------- */

/* Keys and values may hold newlines (quoted or folded scalars); a message stays one line. */
void rp_one_line(char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) *s = ' ';
}

/* "<message> at file:line:col[; did you mean 'hint'?]" */
lq_status rp_fail_at(const pctx *c, lq_status s, const yaml_node_t *n, const char *hint,
                     const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rp_one_line(msg);
    lq_recipe_pos p = n ? ry_pos(n) : (lq_recipe_pos){1, 1};
    if (hint)
        return lq_fail(s, "%s at %s:%d:%d; did you mean '%s'?", msg, c->path, p.line, p.col, hint);
    return lq_fail(s, "%s at %s:%d:%d", msg, c->path, p.line, p.col);
}

/* A scalar quoted for a message, shortened so a fuzzed megabyte value stays one line. */
const char *rp_shown(const yaml_node_t *n, char *buf, size_t cap) {
    const char *s = ry_scalar(n);
    if (!s) return ry_kind_name(n);
    size_t len = strlen(s);
    if (len + 3 <= cap) {
        snprintf(buf, cap, "'%s'", s);
    } else {
        snprintf(buf, cap, "'%.*s...'", (int)(cap > 8 ? cap - 8 : 0), s);
    }
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    return buf;
}

/* ---- mappings --------------------------------------------------------------------------------- */

/* Check that `n` is a mapping with scalar, distinct keys; gives its entries. */
lq_status rp_map_entries(const pctx *c, yaml_node_t *n, const char *what, entry **out, int *count) {
    *out = NULL;
    *count = 0;
    LQ_TRY(ry_visit(c->d, n));
    if (n->type != YAML_MAPPING_NODE)
        return rp_fail_at(c, LQ_ERR_FORMAT, n, NULL, "%s must be a mapping, got %s", what, ry_kind_name(n));
    ptrdiff_t k = n->data.mapping.pairs.top - n->data.mapping.pairs.start;
    if (k > MAX_MAP_ENTRIES)
        return rp_fail_at(c, LQ_ERR_FORMAT, n, NULL, "%s has %td entries (at most %d)", what, k, MAX_MAP_ENTRIES);
    entry *e = calloc((size_t)k + 1, sizeof *e);
    if (!e) return lq_fail(LQ_ERR_NOMEM, "out of memory reading %s", c->path);
    int m = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *key = ry_node(c->d, p->key), *val = ry_node(c->d, p->value);
        if (!key || !val || !ry_scalar(key) || !*ry_scalar(key)) {
            free(e);
            return rp_fail_at(c, LQ_ERR_FORMAT, key ? key : n, NULL, "keys of %s must be names, got %s",
                           what, ry_kind_name(key));
        }
        for (int j = 0; j < m; j++) {
            if (strcmp(e[j].name, ry_scalar(key)) == 0) {
                lq_recipe_pos first = ry_pos(e[j].key);
                lq_status s = rp_fail_at(c, LQ_ERR_FORMAT, key, NULL, "duplicate key '%s' (first at line %d)",
                                      ry_scalar(key), first.line);
                free(e);
                return s;
            }
        }
        e[m].key = key;
        e[m].val = val;
        e[m].name = ry_scalar(key);
        m++;
    }
    *out = e;
    *count = m;
    return LQ_OK;
}

bool rp_ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* ---- scalar values ------------------------------------------------------------------------------ */

lq_status rp_want_scalar(const pctx *c, const yaml_node_t *v, const char *what, const char *type) {
    if (!ry_scalar(v) || ry_is_null(v))
        return rp_fail_at(c, LQ_ERR_FORMAT, v, NULL, "%s must be %s, got %s", what, type, ry_kind_name(v));
    return LQ_OK;
}

lq_status rp_get_int(const pctx *c, const yaml_node_t *v, const char *what, long long lo,
                         long long hi, int32_t *out) {
    LQ_TRY(rp_want_scalar(c, v, what, "an integer"));
    const char *s = ry_scalar(v);
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    char b[80];
    if (end == s || *end || errno)
        return rp_fail_at(c, LQ_ERR_FORMAT, v, NULL, "%s must be an integer, got %s", what, rp_shown(v, b, sizeof b));
    if (x < lo || x > hi)
        return rp_fail_at(c, LQ_ERR_INVALID_ARG, v, NULL, "%s must be in [%lld, %lld], got %lld", what, lo, hi, x);
    *out = (int32_t)x;
    return LQ_OK;
}

/* A number, or a percentage ("2%" = 0.02) when `percent` is allowed. */
lq_status rp_get_number(const pctx *c, const yaml_node_t *v, const char *what, bool percent,
                            double lo, double hi, bool lo_open, double *out) {
    LQ_TRY(rp_want_scalar(c, v, what, "a number"));
    const char *s = ry_scalar(v);
    char *end;
    double x = strtod(s, &end);
    bool pct = percent && end != s && *end == '%' && end[1] == 0;
    char b[80];
    if (end == s || (*end && !pct) || !isfinite(x))
        return rp_fail_at(c, LQ_ERR_FORMAT, v, NULL, "%s must be a number%s, got %s", what,
                       percent ? " or a percentage" : "", rp_shown(v, b, sizeof b));
    if (pct) x /= 100.0;
    if (x < lo || x > hi || (lo_open && x == lo))
        return rp_fail_at(c, LQ_ERR_INVALID_ARG, v, NULL, "%s must be in %c%g, %g], got %s", what,
                       lo_open ? '(' : '[', lo, hi, rp_shown(v, b, sizeof b));
    *out = x;
    return LQ_OK;
}

lq_status rp_get_bool(const pctx *c, const yaml_node_t *v, const char *what, bool *out) {
    LQ_TRY(rp_want_scalar(c, v, what, "true or false"));
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "on", "On"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "off", "Off"};
    const char *s = ry_scalar(v);
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        if (!strcmp(s, yes[i])) { *out = true; return LQ_OK; }
        if (!strcmp(s, no[i])) { *out = false; return LQ_OK; }
    }
    char b[80];
    return rp_fail_at(c, LQ_ERR_FORMAT, v, NULL, "%s must be true or false, got %s", what, rp_shown(v, b, sizeof b));
}

lq_status rp_get_str(const pctx *c, const yaml_node_t *v, const char *what, char *out, size_t cap) {
    LQ_TRY(rp_want_scalar(c, v, what, "a string"));
    const char *s = ry_scalar(v);
    if (strlen(s) >= cap)
        return rp_fail_at(c, LQ_ERR_INVALID_ARG, v, NULL, "%s is longer than %zu bytes", what, cap - 1);
    memcpy(out, s, strlen(s) + 1);
    return LQ_OK;
}

void rp_free_list(char **l, int n) {
    for (int i = 0; i < n; i++) free(l[i]);
    free(l);
}

/* A string or a list of strings ("targets: Linear" == "targets: [Linear]"). null -> empty. When
 * `patterns`, every entry must compile as a target (lq_targets.h). */
lq_status rp_get_list(const pctx *c, yaml_node_t *v, const char *what, bool patterns,
                          char ***out, int *n) {
    *out = NULL;
    *n = 0;
    if (ry_is_null(v)) return LQ_OK;
    yaml_node_t *one[1] = {v};
    yaml_node_t **items = one;
    int k = 1;
    yaml_node_t **tmp = NULL;
    if (v->type == YAML_SEQUENCE_NODE) {
        ptrdiff_t len = v->data.sequence.items.top - v->data.sequence.items.start;
        if (len > MAX_LIST)
            return rp_fail_at(c, LQ_ERR_FORMAT, v, NULL, "%s has %td entries (at most %d)", what, len, MAX_LIST);
        tmp = calloc((size_t)len + 1, sizeof *tmp);
        if (!tmp) return lq_fail(LQ_ERR_NOMEM, "out of memory reading %s", c->path);
        for (ptrdiff_t i = 0; i < len; i++) tmp[i] = ry_node(c->d, v->data.sequence.items.start[i]);
        items = tmp;
        k = (int)len;
    }
    char **l = calloc((size_t)k + 1, sizeof *l);
    lq_status s = l ? LQ_OK : lq_fail(LQ_ERR_NOMEM, "out of memory reading %s", c->path);
    int m = 0;
    for (int i = 0; s == LQ_OK && i < k; i++) {
        yaml_node_t *it = items[i];
        if ((s = ry_visit(c->d, it)) != LQ_OK) break;
        if (!ry_scalar(it) || ry_is_null(it) || !*ry_scalar(it)) {
            s = rp_fail_at(c, LQ_ERR_FORMAT, it, NULL, "%s must be a string or a list of strings, got %s%s",
                        what, ry_kind_name(it), v->type == YAML_SEQUENCE_NODE ? " in the list" : "");
            break;
        }
        if (patterns) {
            lq_target *t;
            if (lq_target_compile(ry_scalar(it), &t) != LQ_OK) {
                char why[300];
                snprintf(why, sizeof why, "%s", lq_last_error());
                s = rp_fail_at(c, LQ_ERR_INVALID_ARG, it, NULL, "%s: %s", what, why);
                break;
            }
            lq_target_free(t);
        }
        if (!(l[m] = strdup(ry_scalar(it)))) {
            s = lq_fail(LQ_ERR_NOMEM, "out of memory reading %s", c->path);
            break;
        }
        m++;
    }
    free(tmp);
    if (s != LQ_OK) {
        rp_free_list(l, m);
        return s;
    }
    *out = l;
    *n = m;
    return LQ_OK;
}
