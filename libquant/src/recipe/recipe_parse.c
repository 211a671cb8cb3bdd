/* recipe_parse.c - YAML recipe -> validated lq_recipe (lq_recipe.h, docs/RECIPES.md).
 *
 * The walker follows the schema top-down: recipe mapping -> stages -> modifier groups ->
 * modifiers -> arguments. Every message ends with "at <file>:<line>:<col>" of the node at fault
 * (the key for unknown or misspelled keys, the value for wrong types and ranges, the modifier for
 * missing arguments), plus "; did you mean 'X'?" when a known name is close.
 */
#include "recipe_internal.h"
#include "libquant/lq_file.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "libquant/lq_targets.h"

#define MAX_STAGES 64
#define MAX_MODS 64
#define MAX_MAP_ENTRIES 1024
#define MAX_LIST 4096

typedef struct pctx {
    ry_doc *d;
    const char *path;
} pctx;

/* ---- messages ----------------------------------------------------------------------------------- */

/* Keys and values may hold newlines (quoted or folded scalars); a message stays one line. */
static void one_line(char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) *s = ' ';
}

static lq_status fail_at(const pctx *c, lq_status s, const yaml_node_t *n, const char *hint,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* "<message> at file:line:col[; did you mean 'hint'?]" */
static lq_status fail_at(const pctx *c, lq_status s, const yaml_node_t *n, const char *hint,
                         const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    one_line(msg);
    lq_recipe_pos p = n ? ry_pos(n) : (lq_recipe_pos){1, 1};
    if (hint)
        return lq_fail(s, "%s at %s:%d:%d; did you mean '%s'?", msg, c->path, p.line, p.col, hint);
    return lq_fail(s, "%s at %s:%d:%d", msg, c->path, p.line, p.col);
}

/* A scalar quoted for a message, shortened so a fuzzed megabyte value stays one line. */
static const char *shown(const yaml_node_t *n, char *buf, size_t cap) {
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

typedef struct entry {
    yaml_node_t *key, *val;
    const char *name;
} entry;

/* Check that `n` is a mapping with scalar, distinct keys; gives its entries. */
static lq_status map_entries(const pctx *c, yaml_node_t *n, const char *what, entry **out, int *count) {
    *out = NULL;
    *count = 0;
    LQ_TRY(ry_visit(c->d, n));
    if (n->type != YAML_MAPPING_NODE)
        return fail_at(c, LQ_ERR_FORMAT, n, NULL, "%s must be a mapping, got %s", what, ry_kind_name(n));
    ptrdiff_t k = n->data.mapping.pairs.top - n->data.mapping.pairs.start;
    if (k > MAX_MAP_ENTRIES)
        return fail_at(c, LQ_ERR_FORMAT, n, NULL, "%s has %td entries (at most %d)", what, k, MAX_MAP_ENTRIES);
    entry *e = calloc((size_t)k + 1, sizeof *e);
    if (!e) return lq_fail(LQ_ERR_NOMEM, "out of memory reading %s", c->path);
    int m = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *key = ry_node(c->d, p->key), *val = ry_node(c->d, p->value);
        if (!key || !val || !ry_scalar(key) || !*ry_scalar(key)) {
            free(e);
            return fail_at(c, LQ_ERR_FORMAT, key ? key : n, NULL, "keys of %s must be names, got %s",
                           what, ry_kind_name(key));
        }
        for (int j = 0; j < m; j++) {
            if (strcmp(e[j].name, ry_scalar(key)) == 0) {
                lq_recipe_pos first = ry_pos(e[j].key);
                lq_status s = fail_at(c, LQ_ERR_FORMAT, key, NULL, "duplicate key '%s' (first at line %d)",
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

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* ---- scalar values ------------------------------------------------------------------------------ */

static lq_status want_scalar(const pctx *c, const yaml_node_t *v, const char *what, const char *type) {
    if (!ry_scalar(v) || ry_is_null(v))
        return fail_at(c, LQ_ERR_FORMAT, v, NULL, "%s must be %s, got %s", what, type, ry_kind_name(v));
    return LQ_OK;
}

static lq_status get_int(const pctx *c, const yaml_node_t *v, const char *what, long long lo,
                         long long hi, int32_t *out) {
    LQ_TRY(want_scalar(c, v, what, "an integer"));
    const char *s = ry_scalar(v);
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    char b[80];
    if (end == s || *end || errno)
        return fail_at(c, LQ_ERR_FORMAT, v, NULL, "%s must be an integer, got %s", what, shown(v, b, sizeof b));
    if (x < lo || x > hi)
        return fail_at(c, LQ_ERR_INVALID_ARG, v, NULL, "%s must be in [%lld, %lld], got %lld", what, lo, hi, x);
    *out = (int32_t)x;
    return LQ_OK;
}

/* A number, or a percentage ("2%" = 0.02) when `percent` is allowed. */
static lq_status get_number(const pctx *c, const yaml_node_t *v, const char *what, bool percent,
                            double lo, double hi, bool lo_open, double *out) {
    LQ_TRY(want_scalar(c, v, what, "a number"));
    const char *s = ry_scalar(v);
    char *end;
    double x = strtod(s, &end);
    bool pct = percent && end != s && *end == '%' && end[1] == 0;
    char b[80];
    if (end == s || (*end && !pct) || !isfinite(x))
        return fail_at(c, LQ_ERR_FORMAT, v, NULL, "%s must be a number%s, got %s", what,
                       percent ? " or a percentage" : "", shown(v, b, sizeof b));
    if (pct) x /= 100.0;
    if (x < lo || x > hi || (lo_open && x == lo))
        return fail_at(c, LQ_ERR_INVALID_ARG, v, NULL, "%s must be in %c%g, %g], got %s", what,
                       lo_open ? '(' : '[', lo, hi, shown(v, b, sizeof b));
    *out = x;
    return LQ_OK;
}

static lq_status get_bool(const pctx *c, const yaml_node_t *v, const char *what, bool *out) {
    LQ_TRY(want_scalar(c, v, what, "true or false"));
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "on", "On"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "off", "Off"};
    const char *s = ry_scalar(v);
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        if (!strcmp(s, yes[i])) { *out = true; return LQ_OK; }
        if (!strcmp(s, no[i])) { *out = false; return LQ_OK; }
    }
    char b[80];
    return fail_at(c, LQ_ERR_FORMAT, v, NULL, "%s must be true or false, got %s", what, shown(v, b, sizeof b));
}

static lq_status get_str(const pctx *c, const yaml_node_t *v, const char *what, char *out, size_t cap) {
    LQ_TRY(want_scalar(c, v, what, "a string"));
    const char *s = ry_scalar(v);
    if (strlen(s) >= cap)
        return fail_at(c, LQ_ERR_INVALID_ARG, v, NULL, "%s is longer than %zu bytes", what, cap - 1);
    memcpy(out, s, strlen(s) + 1);
    return LQ_OK;
}

static void free_list(char **l, int n) {
    for (int i = 0; i < n; i++) free(l[i]);
    free(l);
}

/* A string or a list of strings ("targets: Linear" == "targets: [Linear]"). null -> empty. When
 * `patterns`, every entry must compile as a target (lq_targets.h). */
static lq_status get_list(const pctx *c, yaml_node_t *v, const char *what, bool patterns,
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
            return fail_at(c, LQ_ERR_FORMAT, v, NULL, "%s has %td entries (at most %d)", what, len, MAX_LIST);
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
            s = fail_at(c, LQ_ERR_FORMAT, it, NULL, "%s must be a string or a list of strings, got %s%s",
                        what, ry_kind_name(it), v->type == YAML_SEQUENCE_NODE ? " in the list" : "");
            break;
        }
        if (patterns) {
            lq_target *t;
            if (lq_target_compile(ry_scalar(it), &t) != LQ_OK) {
                char why[300];
                snprintf(why, sizeof why, "%s", lq_last_error());
                s = fail_at(c, LQ_ERR_INVALID_ARG, it, NULL, "%s: %s", what, why);
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
        free_list(l, m);
        return s;
    }
    *out = l;
    *n = m;
    return LQ_OK;
}

/* ---- modifiers ---------------------------------------------------------------------------------- */

typedef enum arg_id {
    A_TARGETS, A_IGNORE, A_SCHEME, A_GROUP_SIZE, A_CLIP_SEARCH, A_BLOCK_SIZE, A_DAMPENING,
    A_ACTORDER, A_SEQUENTIAL_UPDATE, A_OFFLOAD_HESSIANS, A_DUO_SCALING, A_SMOOTHING, A_SPARSITY,
    A_FINAL_SPARSITY, A_MASK_STRUCTURE, A_STRUCTURE, A_GROUP_FALLBACK, A_COUNT
} arg_id;

static const char *const g_arg_names[A_COUNT] = {
    "targets", "ignore", "scheme", "group_size", "clip_search", "block_size", "dampening_frac",
    "actorder", "sequential_update", "offload_hessians", "duo_scaling", "smoothing_strength",
    "sparsity", "final_sparsity", "mask_structure", "structure", "group_fallback",
};

#define B(a) (1u << (a))
static const unsigned g_allowed[LQ_MOD_COUNT] = {
    [LQ_MOD_QUANTIZATION] = B(A_TARGETS) | B(A_IGNORE) | B(A_SCHEME) | B(A_GROUP_SIZE) | B(A_CLIP_SEARCH) |
                            B(A_GROUP_FALLBACK),
    [LQ_MOD_GPTQ] = B(A_TARGETS) | B(A_IGNORE) | B(A_SCHEME) | B(A_GROUP_SIZE) | B(A_BLOCK_SIZE) |
                    B(A_DAMPENING) | B(A_ACTORDER) | B(A_SEQUENTIAL_UPDATE) | B(A_OFFLOAD_HESSIANS),
    [LQ_MOD_AWQ] = B(A_TARGETS) | B(A_IGNORE) | B(A_SCHEME) | B(A_GROUP_SIZE) | B(A_DUO_SCALING),
    [LQ_MOD_SMOOTHQUANT] = B(A_IGNORE) | B(A_SMOOTHING),
    [LQ_MOD_MAGNITUDE_PRUNING] = B(A_TARGETS) | B(A_IGNORE) | B(A_SPARSITY) | B(A_FINAL_SPARSITY) |
                                 B(A_MASK_STRUCTURE),
    [LQ_MOD_CONSTANT_PRUNING] = B(A_TARGETS) | B(A_IGNORE),
    [LQ_MOD_STRUCTURED_PRUNING] = B(A_IGNORE) | B(A_SPARSITY) | B(A_STRUCTURE),
    [LQ_MOD_SPARSEGPT] = B(A_TARGETS) | B(A_IGNORE) | B(A_SPARSITY) | B(A_MASK_STRUCTURE) |
                         B(A_BLOCK_SIZE) | B(A_DAMPENING),
    [LQ_MOD_WANDA] = B(A_TARGETS) | B(A_IGNORE) | B(A_SPARSITY) | B(A_MASK_STRUCTURE),
};

/* llm-compressor arguments we recognize but do not take, each with the reason. */
static const struct {
    const char *name, *why;
} g_refused[] = {
    {"config_groups", "config_groups is not supported: name a preset with 'scheme:' (W8A16, W4A16, W4A16_ASYM, W8A8, FP8)"},
    {"kv_cache_scheme", "kv_cache_scheme is not supported (the engine keeps an f32 KV cache)"},
    {"mappings", "custom mappings are not supported (the Llama layer mappings are built in)"},
    {"init_sparsity", "'init_sparsity' is a training-schedule argument; one-shot recipes take 'sparsity'"},
    {"start", "'start' is a training-schedule argument; recipes run each modifier once"},
    {"end", "'end' is a training-schedule argument; recipes run each modifier once"},
    {"update_frequency", "'update_frequency' is a training-schedule argument; recipes run each modifier once"},
    {"leave_enabled", "'leave_enabled' is a training-schedule argument; recipes run each modifier once"},
};

/* llm-compressor modifiers libquant does not implement at all. */
static const char *const g_foreign_mods[] = {
    "SpinQuantModifier", "QuIPModifier", "LogarithmicEqualizationModifier",
    "OutputDistillationModifier", "LayerPruningModifier",
};

static const struct {
    const char *name;
    lq_recipe_scheme scheme;
} g_schemes[] = {
    {"W8A16", LQ_SCHEME_W8A16}, {"W4A16", LQ_SCHEME_W4A16}, {"W4A16_ASYM", LQ_SCHEME_W4A16_ASYM},
    {"W8A8", LQ_SCHEME_W8A8},   {"INT8", LQ_SCHEME_W8A8},   {"FP8", LQ_SCHEME_FP8},
    {"FP8_DYNAMIC", LQ_SCHEME_FP8},
};
/* compressed-tensors presets whose formats this build has no kernels for. */
static const char *const g_lacking_schemes[] = {"W4A8", "FP8_BLOCK", "NVFP4", "NVFP4A16", "MXFP4", "MXFP4A16",
                                                "W4AFP8", "UNQUANTIZED"};

static lq_status parse_scheme(const pctx *c, const yaml_node_t *v, const char *mod, lq_recipe_scheme *out) {
    char what[96];
    snprintf(what, sizeof what, "argument 'scheme' of %s", mod);
    LQ_TRY(want_scalar(c, v, what, "a scheme name"));
    const char *s = ry_scalar(v);
    const int n = (int)(sizeof g_schemes / sizeof *g_schemes);
    for (int i = 0; i < n; i++)
        if (!strcasecmp(s, g_schemes[i].name)) {
            *out = g_schemes[i].scheme;
            return LQ_OK;
        }
    for (size_t i = 0; i < sizeof g_lacking_schemes / sizeof *g_lacking_schemes; i++)
        if (!strcasecmp(s, g_lacking_schemes[i]))
            return fail_at(c, LQ_ERR_UNSUPPORTED, v, NULL,
                           "scheme '%s' is not available in this build (have W8A16, W4A16, W4A16_ASYM, W8A8, FP8)",
                           g_lacking_schemes[i]);
    const char *names[sizeof g_schemes / sizeof *g_schemes];
    for (int i = 0; i < n; i++) names[i] = g_schemes[i].name;
    char b[80];
    return fail_at(c, LQ_ERR_FORMAT, v, lq_suggest(s, names, n), "unknown scheme %s", shown(v, b, sizeof b));
}

static bool is_prune(lq_modifier_kind k) {
    return k == LQ_MOD_MAGNITUDE_PRUNING || k == LQ_MOD_SPARSEGPT || k == LQ_MOD_WANDA;
}

static bool is_quant(lq_modifier_kind k) {
    return k == LQ_MOD_QUANTIZATION || k == LQ_MOD_GPTQ || k == LQ_MOD_AWQ;
}

/* Strict decimal: len > 0 bytes, digits only (no sign, space or base prefix), value <= INT_MAX.
 * sscanf("%d") wraps on overflow ("2:4294967300" read as 2:4) and skips spaces. */
static bool parse_dec(const char *s, size_t len, int *out) {
    if (len == 0 || len > 10) return false;
    long long x = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        x = x * 10 + (s[i] - '0');
    }
    if (x > INT_MAX) return false;
    *out = (int)x;
    return true;
}

static lq_status parse_mask(const pctx *c, const yaml_node_t *v, const char *what, lq_recipe_modifier *m) {
    LQ_TRY(want_scalar(c, v, what, "'unstructured' or 'N:M'"));
    const char *s = ry_scalar(v);
    if (!strcmp(s, "unstructured") || !strcmp(s, "0:0")) {
        m->mask = LQ_MASK_UNSTRUCTURED;
        return LQ_OK;
    }
    int n, mm;
    char b[80];
    const char *colon = strchr(s, ':');
    if (!colon || !parse_dec(s, (size_t)(colon - s), &n) || !parse_dec(colon + 1, strlen(colon + 1), &mm))
        return fail_at(c, LQ_ERR_FORMAT, v, NULL, "%s must be 'unstructured' or 'N:M' (e.g. '2:4'), got %s",
                       what, shown(v, b, sizeof b));
    if (n < 1 || mm < 2 || n >= mm || mm > 256)
        return fail_at(c, LQ_ERR_INVALID_ARG, v, NULL,
                       "%s '%s': need 1 <= N < M <= 256 (N zeros in every M weights)", what, s);
    m->mask = LQ_MASK_NM;
    m->mask_n = n;
    m->mask_m = mm;
    return LQ_OK;
}

static lq_status parse_modifier(const pctx *c, const entry *me, lq_recipe_modifier *m) {
    const char *name = me->name;
    int kind = -1;
    for (int k = 0; k < LQ_MOD_COUNT; k++)
        if (!strcmp(name, lq_modifier_name((lq_modifier_kind)k))) kind = k;
    if (kind < 0) {
        for (size_t i = 0; i < sizeof g_foreign_mods / sizeof *g_foreign_mods; i++)
            if (!strcmp(name, g_foreign_mods[i]))
                return fail_at(c, LQ_ERR_UNSUPPORTED, me->key, NULL, "modifier '%s' is not supported by libquant", name);
        const char *names[LQ_MOD_COUNT];
        for (int k = 0; k < LQ_MOD_COUNT; k++) names[k] = lq_modifier_name((lq_modifier_kind)k);
        char b[80];
        return fail_at(c, LQ_ERR_FORMAT, me->key, lq_suggest(name, names, LQ_MOD_COUNT), "unknown modifier %s",
                       shown(me->key, b, sizeof b));
    }
    m->kind = (lq_modifier_kind)kind;
    m->pos = ry_pos(me->key);
    m->dampening_frac = 0.01;
    m->block_size = 128;
    m->smoothing_strength = 0.5;
    m->sparsity = -1;

    entry *e = NULL;
    int n = 0;
    if (!ry_is_null(me->val)) {
        char what[96];
        snprintf(what, sizeof what, "the arguments of %s", name);
        LQ_TRY(map_entries(c, me->val, what, &e, &n));
    }
    lq_status s = LQ_OK;
    unsigned seen = 0;
    const yaml_node_t *arg_node[A_COUNT] = {0};
    for (int i = 0; s == LQ_OK && i < n; i++) {
        int a = -1;
        for (int k = 0; k < A_COUNT; k++)
            if (!strcmp(e[i].name, g_arg_names[k]) && (g_allowed[kind] & B(k))) a = k;
        if (a < 0) {
            for (size_t k = 0; k < sizeof g_refused / sizeof *g_refused; k++)
                if (!strcmp(e[i].name, g_refused[k].name)) {
                    s = fail_at(c, LQ_ERR_UNSUPPORTED, e[i].key, NULL, "%s: %s", name, g_refused[k].why);
                    break;
                }
            if (s != LQ_OK) break;
            const char *names[A_COUNT];
            int nn = 0;
            for (int k = 0; k < A_COUNT; k++)
                if (g_allowed[kind] & B(k)) names[nn++] = g_arg_names[k];
            char b[80];
            s = fail_at(c, LQ_ERR_FORMAT, e[i].key, lq_suggest(e[i].name, names, nn),
                        "unknown argument %s of %s", shown(e[i].key, b, sizeof b), name);
            break;
        }
        if ((s = ry_visit(c->d, e[i].val)) != LQ_OK) break;
        seen |= B(a);
        arg_node[a] = e[i].val;
        const yaml_node_t *v = e[i].val;
        char what[96];
        snprintf(what, sizeof what, "argument '%s' of %s", g_arg_names[a], name);
        bool unused;
        switch ((arg_id)a) {
        case A_TARGETS: s = get_list(c, e[i].val, what, true, &m->targets, &m->n_targets); break;
        case A_IGNORE: s = get_list(c, e[i].val, what, true, &m->ignore, &m->n_ignore); break;
        case A_SCHEME: s = parse_scheme(c, v, name, &m->scheme); break;
        case A_GROUP_SIZE: s = get_int(c, v, what, 1, 1 << 20, &m->group_size); break;
        case A_CLIP_SEARCH: s = get_bool(c, v, what, &m->clip_search); break;
        case A_GROUP_FALLBACK: {
            static const char *const fb[] = {"refuse", "channel", "ignore"};
            const char *t = ry_scalar(v);
            int k = -1;
            for (int q = 0; t && q < 3; q++)
                if (!strcmp(t, fb[q])) k = q;
            char b[80];
            if (k < 0)
                s = fail_at(c, LQ_ERR_FORMAT, v, t ? lq_suggest(t, fb, 3) : NULL,
                            "%s must be refuse, channel or ignore, got %s", what, shown(v, b, sizeof b));
            else m->group_fallback = (lq_recipe_group_fallback)k;
            break;
        }
        case A_BLOCK_SIZE: s = get_int(c, v, what, 1, 1 << 20, &m->block_size); break;
        case A_DAMPENING: s = get_number(c, v, what, false, 0, 1, false, &m->dampening_frac); break;
        case A_ACTORDER:
            if (ry_is_null(v) || (ry_scalar(v) && !strcasecmp(ry_scalar(v), "false"))) {
                m->actorder[0] = 0;
            } else if ((s = get_str(c, v, what, m->actorder, sizeof m->actorder)) == LQ_OK &&
                       strcmp(m->actorder, "static") && strcmp(m->actorder, "group") &&
                       strcmp(m->actorder, "weight")) {
                static const char *const orders[] = {"static", "group", "weight"};
                char b[80];
                s = fail_at(c, LQ_ERR_FORMAT, v, lq_suggest(m->actorder, orders, 3),
                            "%s must be static, group, weight or false, got %s", what, shown(v, b, sizeof b));
            }
            break;
        case A_SEQUENTIAL_UPDATE:
        case A_OFFLOAD_HESSIANS: s = get_bool(c, v, what, &unused); break; /* CPU: no meaning */
        case A_DUO_SCALING: s = get_bool(c, v, what, &unused); break;
        case A_SMOOTHING: s = get_number(c, v, what, false, 0, 1, true, &m->smoothing_strength); break;
        case A_SPARSITY:
        case A_FINAL_SPARSITY:
            if (a == A_FINAL_SPARSITY && (seen & B(A_SPARSITY))) {
                s = fail_at(c, LQ_ERR_FORMAT, e[i].key, NULL, "%s: give 'sparsity' or 'final_sparsity', not both", name);
                break;
            }
            if (a == A_SPARSITY && (seen & B(A_FINAL_SPARSITY))) {
                s = fail_at(c, LQ_ERR_FORMAT, e[i].key, NULL, "%s: give 'sparsity' or 'final_sparsity', not both", name);
                break;
            }
            s = get_number(c, v, what, true, 0, 0.99, true, &m->sparsity);
            break;
        case A_MASK_STRUCTURE: s = parse_mask(c, v, what, m); break;
        case A_STRUCTURE: {
            char st[16];
            if ((s = get_str(c, v, what, st, sizeof st)) != LQ_OK) {
                lq_recipe_pos p = ry_pos(v);
                s = lq_fail(LQ_ERR_FORMAT, "%s must be 'ffn' or 'heads' at %s:%d:%d", what, c->path, p.line, p.col);
            } else if (!strcmp(st, "ffn")) {
                m->structure = LQ_STRUCTURE_FFN;
            } else if (!strcmp(st, "heads")) {
                m->structure = LQ_STRUCTURE_HEADS;
            } else {
                static const char *const structs[] = {"ffn", "heads"};
                s = fail_at(c, LQ_ERR_FORMAT, v, lq_suggest(st, structs, 2), "%s must be 'ffn' or 'heads', got '%s'",
                            what, st);
            }
            break;
        }
        case A_COUNT: break;
        }
    }
    free(e);
    if (s != LQ_OK) return s;

    /* ---- requirements and combinations inside one modifier ---- */
    if (is_quant(m->kind)) {
        if (!(seen & B(A_SCHEME)))
            return fail_at(c, LQ_ERR_FORMAT, me->key, NULL, "%s needs argument 'scheme'", name);
        bool grouped = m->scheme == LQ_SCHEME_W4A16 || m->scheme == LQ_SCHEME_W4A16_ASYM;
        if ((seen & B(A_GROUP_SIZE)) && !grouped)
            return fail_at(c, LQ_ERR_INVALID_ARG, arg_node[A_GROUP_SIZE], NULL,
                           "group_size applies to the W4A16 schemes only (%s is per channel)",
                           lq_recipe_scheme_name(m->scheme));
        if (grouped && !(seen & B(A_GROUP_SIZE))) m->group_size = 128; /* the W4A16 preset */
        if ((seen & B(A_GROUP_FALLBACK)) && !grouped)
            return fail_at(c, LQ_ERR_INVALID_ARG, arg_node[A_GROUP_FALLBACK], NULL,
                           "group_fallback applies to the W4A16 schemes only (%s is per channel)",
                           lq_recipe_scheme_name(m->scheme));
    }
    if (is_prune(m->kind)) {
        if (m->mask == LQ_MASK_NM) {
            double implied = (double)m->mask_n / m->mask_m;
            const yaml_node_t *sp = arg_node[A_SPARSITY] ? arg_node[A_SPARSITY] : arg_node[A_FINAL_SPARSITY];
            if (sp && fabs(m->sparsity - implied) > 1e-9)
                return fail_at(c, LQ_ERR_INVALID_ARG, sp, NULL,
                               "impossible combination: sparsity %g with mask_structure '%d:%d' (which prunes %g)",
                               m->sparsity, m->mask_n, m->mask_m, implied);
            m->sparsity = implied;
        } else if (m->sparsity < 0) {
            return fail_at(c, LQ_ERR_FORMAT, me->key, NULL, "%s needs argument 'sparsity' (or an N:M mask_structure)", name);
        }
    }
    if (m->kind == LQ_MOD_STRUCTURED_PRUNING) {
        if (!(seen & B(A_STRUCTURE)))
            return fail_at(c, LQ_ERR_FORMAT, me->key, NULL, "%s needs argument 'structure' (ffn or heads)", name);
        if (m->sparsity < 0)
            return fail_at(c, LQ_ERR_FORMAT, me->key, NULL, "%s needs argument 'sparsity'", name);
    }
    if (!(seen & B(A_TARGETS)) && (g_allowed[kind] & B(A_TARGETS))) {
        m->targets = calloc(2, sizeof *m->targets);
        if (!m->targets || !(m->targets[0] = strdup("Linear")))
            return lq_fail(LQ_ERR_NOMEM, "out of memory reading %s", c->path);
        m->n_targets = 1;
    }
    if ((seen & B(A_TARGETS)) && m->n_targets == 0)
        return fail_at(c, LQ_ERR_INVALID_ARG, arg_node[A_TARGETS], NULL, "argument 'targets' of %s is empty", name);
    return LQ_OK;
}

/* ---- stages ------------------------------------------------------------------------------------- */

static void free_modifier(lq_recipe_modifier *m) {
    free_list(m->targets, m->n_targets);
    free_list(m->ignore, m->n_ignore);
}

/* One "<x>_modifiers" group: a mapping of modifier class -> arguments. */
static lq_status parse_group(const pctx *c, const entry *ge, lq_recipe_stage *st) {
    entry *e;
    int n;
    char what[128];
    snprintf(what, sizeof what, "modifier group '%.60s'", ge->name);
    LQ_TRY(map_entries(c, ge->val, what, &e, &n));
    lq_status s = LQ_OK;
    if (n == 0) s = fail_at(c, LQ_ERR_FORMAT, ge->key, NULL, "%s has no modifiers", what);
    for (int i = 0; s == LQ_OK && i < n; i++) {
        if (st->n_mods >= MAX_MODS) {
            s = fail_at(c, LQ_ERR_FORMAT, e[i].key, NULL, "more than %d modifiers in stage '%s'", MAX_MODS, st->name);
            break;
        }
        lq_recipe_modifier *grown = realloc(st->mods, (size_t)(st->n_mods + 1) * sizeof *grown);
        if (!grown) {
            s = lq_fail(LQ_ERR_NOMEM, "out of memory reading %s", c->path);
            break;
        }
        st->mods = grown;
        lq_recipe_modifier *m = &st->mods[st->n_mods];
        memset(m, 0, sizeof *m);
        snprintf(m->group, sizeof m->group, "%s", ge->name);
        one_line(m->group);
        s = parse_modifier(c, &e[i], m);
        if (s != LQ_OK) {
            free_modifier(m);
            break;
        }
        st->n_mods++;
    }
    free(e);
    return s;
}

static const char *const g_stage_keys[] = {"run_type", "quant_modifiers", "pruning_modifiers",
                                           "sparsity_modifiers", "smoothing_modifiers"};

static lq_status parse_mod_stage(const pctx *c, const entry *se, lq_recipe_stage *st) {
    entry *e;
    int n;
    char what[128];
    snprintf(what, sizeof what, "stage '%.60s'", se->name);
    LQ_TRY(map_entries(c, se->val, what, &e, &n));
    lq_status s = LQ_OK;
    for (int i = 0; s == LQ_OK && i < n; i++) {
        if (!strcmp(e[i].name, "run_type")) {
            const char *v = ry_scalar(e[i].val);
            if (!v || strcmp(v, "oneshot") != 0)
                s = fail_at(c, LQ_ERR_UNSUPPORTED, e[i].val, NULL, "run_type must be 'oneshot' (training stages are distill_stage)");
        } else if (ends_with(e[i].name, "_modifiers")) {
            s = parse_group(c, &e[i], st);
        } else {
            char b[80];
            s = fail_at(c, LQ_ERR_FORMAT, e[i].key, lq_suggest(e[i].name, g_stage_keys, 5),
                        "unknown key %s in %s (expected '<name>_modifiers' or run_type)", shown(e[i].key, b, sizeof b), what);
        }
    }
    if (s == LQ_OK && st->n_mods == 0) s = fail_at(c, LQ_ERR_FORMAT, se->key, NULL, "%s has no modifiers", what);
    free(e);
    return s;
}

static const char *const g_eval_keys[] = {"files", "ctx", "per_line", "separator", "baseline",
                                          "max_ppl_increase", "max_mean_kld", "max_kld", "min_top1_agreement"};
#define N_EVAL_KEYS ((int)(sizeof g_eval_keys / sizeof *g_eval_keys))
static const char *const g_distill_keys[] = {"file", "model", "tokenizer", "ctx", "k", "per_line",
                                             "separator", "features", "logp_dtype"};
#define N_DISTILL_KEYS ((int)(sizeof g_distill_keys / sizeof *g_distill_keys))

static lq_status parse_eval_stage(const pctx *c, const entry *se, lq_recipe_eval *ev) {
    entry *e;
    int n;
    LQ_TRY(map_entries(c, se->val, "eval_stage", &e, &n));
    ev->ctx = 512;
    ev->max_ppl_increase = -1;
    ev->max_kld = -1;
    ev->min_top1 = -1;
    lq_status s = LQ_OK;
    bool files = false, kld_seen = false;
    for (int i = 0; s == LQ_OK && i < n; i++) {
        const char *k = e[i].name;
        yaml_node_t *v = e[i].val;
        char what[96];
        snprintf(what, sizeof what, "eval_stage '%s'", k);
        if (!strcmp(k, "files")) {
            files = true;
            if ((s = get_list(c, v, what, false, &ev->files, &ev->n_files)) == LQ_OK && ev->n_files == 0)
                s = fail_at(c, LQ_ERR_INVALID_ARG, v, NULL, "%s is empty", what);
        } else if (!strcmp(k, "ctx")) s = get_int(c, v, what, 2, 1 << 20, &ev->ctx);
        else if (!strcmp(k, "per_line")) s = get_bool(c, v, what, &ev->per_line);
        else if (!strcmp(k, "separator")) s = get_str(c, v, what, ev->separator, sizeof ev->separator);
        else if (!strcmp(k, "baseline")) {
            const char *b = ry_scalar(v);
            if (b && !strcmp(b, "original")) ev->baseline = LQ_EVAL_BASE_ORIGINAL;
            else if (b && !strcmp(b, "previous")) ev->baseline = LQ_EVAL_BASE_PREVIOUS;
            else {
                static const char *const names[] = {"original", "previous"};
                char sb[80];
                s = fail_at(c, LQ_ERR_FORMAT, v, b ? lq_suggest(b, names, 2) : NULL,
                            "%s must be original or previous, got %s", what, shown(v, sb, sizeof sb));
            }
        } else if (!strcmp(k, "max_ppl_increase")) {
            /* "2%" is relative to the baseline's PPL; a plain number is PPL points */
            const char *t = ry_scalar(v);
            ev->ppl_increase_relative = t && *t && t[strlen(t) - 1] == '%';
            s = get_number(c, v, what, true, 0, 1e6, false, &ev->max_ppl_increase);
        } else if (!strcmp(k, "max_mean_kld") || !strcmp(k, "max_kld")) {
            if (kld_seen)
                s = fail_at(c, LQ_ERR_FORMAT, e[i].key, NULL, "max_kld and max_mean_kld are the same gate: give one");
            else s = get_number(c, v, what, false, 0, 1e6, false, &ev->max_kld);
            kld_seen = true;
        } else if (!strcmp(k, "min_top1_agreement")) s = get_number(c, v, what, true, 0, 1, false, &ev->min_top1);
        else {
            char b[80];
            s = fail_at(c, LQ_ERR_FORMAT, e[i].key, lq_suggest(k, g_eval_keys, N_EVAL_KEYS),
                        "unknown key %s in eval_stage", shown(e[i].key, b, sizeof b));
        }
    }
    if (s == LQ_OK && !files) s = fail_at(c, LQ_ERR_FORMAT, se->key, NULL, "eval_stage needs 'files'");
    if (s == LQ_OK && ev->separator[0] && !ev->per_line)
        s = fail_at(c, LQ_ERR_INVALID_ARG, se->key, NULL, "eval_stage: 'separator' needs 'per_line: true'");
    free(e);
    return s;
}

/* "features: [0, 5]" or "features: 0,5" (the quant-distill spelling); layer numbers are checked
 * against the teacher when the stage runs. */
static lq_status get_layers(const pctx *c, yaml_node_t *v, const char *what, lq_recipe_distill *ds) {
    char **l;
    int n;
    LQ_TRY(get_list(c, v, what, false, &l, &n));
    lq_status s = LQ_OK;
    for (int i = 0; s == LQ_OK && i < n; i++) {
        for (char *p = l[i]; s == LQ_OK && *p;) {
            char *end;
            errno = 0;
            long x = strtol(p, &end, 10);
            if (end == p || errno || x < 0 || x > 4096 || (*end && *end != ','))
                s = fail_at(c, LQ_ERR_FORMAT, v, NULL, "%s must be layer numbers (0, 1, ...), got '%s'", what, l[i]);
            else if (ds->n_feat_layers == (int)(sizeof ds->feat_layers / sizeof *ds->feat_layers))
                s = fail_at(c, LQ_ERR_INVALID_ARG, v, NULL, "%s: at most %d layers", what,
                            (int)(sizeof ds->feat_layers / sizeof *ds->feat_layers));
            else ds->feat_layers[ds->n_feat_layers++] = (int32_t)x;
            p = *end ? end + 1 : end;
        }
    }
    free_list(l, n);
    return s;
}

/* Keys an earlier draft guessed: quant-distill records soft labels, nothing here trains. */
static const char *const g_training_keys[] = {"steps", "lr", "temperature", "epochs", "learning_rate"};

static lq_status parse_distill_stage(const pctx *c, const entry *se, lq_recipe_distill *ds) {
    entry *e;
    int n;
    LQ_TRY(map_entries(c, se->val, "distill_stage", &e, &n));
    ds->k = 32; /* LQ_DISTILL_DEFAULT_K */
    lq_status s = LQ_OK;
    bool file = false;
    for (int i = 0; s == LQ_OK && i < n; i++) {
        const char *k = e[i].name;
        yaml_node_t *v = e[i].val;
        char what[96];
        snprintf(what, sizeof what, "distill_stage '%s'", k);
        bool training = false;
        for (size_t t = 0; t < sizeof g_training_keys / sizeof *g_training_keys; t++)
            training |= !strcmp(k, g_training_keys[t]);
        if (!strcmp(k, "file")) {
            file = true;
            char **l = NULL;
            if ((s = want_scalar(c, v, what, "a path")) == LQ_OK && !(l = calloc(2, sizeof *l)))
                s = lq_fail(LQ_ERR_NOMEM, "out of memory reading %s", c->path);
            if (s == LQ_OK && !(l[0] = strdup(ry_scalar(v)))) {
                free(l);
                s = lq_fail(LQ_ERR_NOMEM, "out of memory reading %s", c->path);
            }
            if (s == LQ_OK) {
                ds->files = l;
                ds->n_files = 1;
            }
        } else if (!strcmp(k, "model")) s = get_str(c, v, what, ds->teacher, sizeof ds->teacher);
        else if (!strcmp(k, "tokenizer")) s = get_str(c, v, what, ds->tokenizer, sizeof ds->tokenizer);
        else if (!strcmp(k, "ctx")) s = get_int(c, v, what, 2, 1 << 20, &ds->ctx);
        else if (!strcmp(k, "k")) s = get_int(c, v, what, 1, 1 << 20, &ds->k);
        else if (!strcmp(k, "per_line")) s = get_bool(c, v, what, &ds->per_line);
        else if (!strcmp(k, "separator")) s = get_str(c, v, what, ds->separator, sizeof ds->separator);
        else if (!strcmp(k, "features")) s = get_layers(c, v, what, ds);
        else if (!strcmp(k, "logp_dtype")) {
            const char *t = ry_scalar(v);
            if (t && !strcmp(t, "f16")) ds->logp_f16 = true;
            else if (!t || strcmp(t, "f32") != 0) {
                char b[80];
                s = fail_at(c, LQ_ERR_FORMAT, v, NULL, "%s must be f32 or f16, got %s", what, shown(v, b, sizeof b));
            }
        } else if (training) {
            s = fail_at(c, LQ_ERR_UNSUPPORTED, e[i].key, NULL,
                        "distill_stage '%s': this build records the teacher's soft labels (quant-distill) "
                        "and does not train a student", k);
        } else {
            char b[80];
            s = fail_at(c, LQ_ERR_FORMAT, e[i].key, lq_suggest(k, g_distill_keys, N_DISTILL_KEYS),
                        "unknown key %s in distill_stage", shown(e[i].key, b, sizeof b));
        }
    }
    if (s == LQ_OK && !file) s = fail_at(c, LQ_ERR_FORMAT, se->key, NULL, "distill_stage needs 'file'");
    if (s == LQ_OK && ds->separator[0] && !ds->per_line)
        s = fail_at(c, LQ_ERR_INVALID_ARG, se->key, NULL, "distill_stage: 'separator' needs 'per_line: true'");
    free(e);
    return s;
}

static void free_stage(lq_recipe_stage *st) {
    for (int j = 0; j < st->n_mods; j++) free_modifier(&st->mods[j]);
    free(st->mods);
    free_list(st->eval.files, st->eval.n_files);
    free_list(st->distill.files, st->distill.n_files);
}

void lq_recipe_free(lq_recipe *r) {
    if (!r) return;
    for (int i = 0; i < r->n_stages; i++) free_stage(&r->stages[i]);
    free(r->stages);
    r->stages = NULL;
    r->n_stages = 0;
}

/* ---- combinations across modifiers --------------------------------------------------------------- */

/* Checks that need no model: an N:M mask and a later W4A16 group size whose groups would split
 * M-blocks (the 2:4 kernels need whole blocks per group); SmoothQuant after the quantization it
 * is meant to prepare. */
static lq_status check_combinations(const lq_recipe *r) {
    const lq_recipe_modifier *all[MAX_STAGES * MAX_MODS];
    int n = 0;
    for (int i = 0; i < r->n_stages; i++)
        for (int j = 0; j < r->stages[i].n_mods; j++) all[n++] = &r->stages[i].mods[j];
    for (int a = 0; a < n; a++) {
        for (int b = 0; b < n; b++) {
            const lq_recipe_modifier *p = all[a], *q = all[b];
            if (is_prune(p->kind) && p->mask == LQ_MASK_NM && is_quant(q->kind) && q->group_size > 0 &&
                q->group_size % p->mask_m != 0)
                return lq_fail(LQ_ERR_INVALID_ARG,
                               "impossible combination: %d:%d sparsity (%s at %s:%d:%d) with group_size %d "
                               "(%s at %s:%d:%d): each quantization group must hold whole %d-weight blocks",
                               p->mask_n, p->mask_m, lq_modifier_name(p->kind), r->path, p->pos.line,
                               p->pos.col, q->group_size, lq_modifier_name(q->kind), r->path, q->pos.line,
                               q->pos.col, p->mask_m);
            if (p->kind == LQ_MOD_SMOOTHQUANT && is_quant(q->kind) && b < a)
                return lq_fail(LQ_ERR_INVALID_ARG,
                               "SmoothQuantModifier at %s:%d:%d comes after %s at %s:%d:%d: smoothing must "
                               "precede the quantization it prepares",
                               r->path, p->pos.line, p->pos.col, lq_modifier_name(q->kind), r->path,
                               q->pos.line, q->pos.col);
        }
    }
    return LQ_OK;
}

/* ---- the recipe ----------------------------------------------------------------------------------- */

static const char *const g_top_keys[] = {"quant_stage", "sparsity_stage", "pruning_stage", "eval_stage",
                                         "distill_stage", "quant_modifiers", "version"};

static lq_status parse_root(const pctx *c, yaml_node_t *root, lq_recipe *r) {
    if (!root || ry_is_null(root))
        return lq_fail(LQ_ERR_FORMAT, "recipe %s is empty: expected stages such as 'quant_stage:'", c->path);
    entry *e;
    int n;
    LQ_TRY(map_entries(c, root, "a recipe", &e, &n));
    lq_status s = LQ_OK;
    for (int i = 0; s == LQ_OK && i < n; i++) {
        const char *k = e[i].name;
        if (!strcmp(k, "version")) continue; /* llm-compressor files carry one; nothing depends on it */
        bool stage = ends_with(k, "_stage"), group = ends_with(k, "_modifiers");
        if (!stage && !group) {
            char b[80];
            s = fail_at(c, LQ_ERR_FORMAT, e[i].key, lq_suggest(k, g_top_keys, 7),
                        "unknown top-level key %s (expected '<name>_stage' or '<name>_modifiers')",
                        shown(e[i].key, b, sizeof b));
            break;
        }
        if (r->n_stages >= MAX_STAGES) {
            s = fail_at(c, LQ_ERR_FORMAT, e[i].key, NULL, "more than %d stages", MAX_STAGES);
            break;
        }
        lq_recipe_stage *grown = realloc(r->stages, (size_t)(r->n_stages + 1) * sizeof *grown);
        if (!grown) {
            s = lq_fail(LQ_ERR_NOMEM, "out of memory reading %s", c->path);
            break;
        }
        r->stages = grown;
        lq_recipe_stage *st = &r->stages[r->n_stages++];
        memset(st, 0, sizeof *st);
        snprintf(st->name, sizeof st->name, "%s", group ? "default_stage" : k);
        one_line(st->name);
        st->pos = ry_pos(e[i].key);
        if (group) {
            /* llm-compressor accepts modifier groups at the top level as one implicit stage. */
            st->kind = LQ_STAGE_MODIFIERS;
            s = parse_group(c, &e[i], st);
        } else if (!strcmp(k, "eval_stage")) {
            st->kind = LQ_STAGE_EVAL;
            s = parse_eval_stage(c, &e[i], &st->eval);
        } else if (!strcmp(k, "distill_stage")) {
            st->kind = LQ_STAGE_DISTILL;
            s = parse_distill_stage(c, &e[i], &st->distill);
        } else {
            st->kind = LQ_STAGE_MODIFIERS;
            s = parse_mod_stage(c, &e[i], st);
        }
    }
    free(e);
    if (s == LQ_OK && r->n_stages == 0)
        s = lq_fail(LQ_ERR_FORMAT, "recipe %s has no stages", c->path);
    if (s == LQ_OK) s = check_combinations(r);
    return s;
}

lq_status lq_recipe_parse(const char *text, size_t len, const char *path, lq_recipe *out) {
    memset(out, 0, sizeof *out);
    if (!path) path = "<recipe>";
    snprintf(out->path, sizeof out->path, "%s", path);
    ry_doc d;
    pctx c = {&d, out->path};
    lq_status s = ry_load(&d, text, len, out->path);
    if (s == LQ_OK) s = parse_root(&c, ry_root(&d), out);
    ry_free(&d);
    if (s != LQ_OK) {
        lq_recipe_free(out);
        memset(out, 0, sizeof *out);
    }
    return s;
}

lq_status lq_recipe_load(const char *path, lq_recipe *out) {
    memset(out, 0, sizeof *out);
    FILE *f;
    LQ_TRY(lq_file_fopen_input(path, &f)); /* refuses a FIFO instead of blocking on it */
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            if (cap >= (size_t)64 << 20) {
                fclose(f);
                free(buf);
                return lq_fail(LQ_ERR_FORMAT, "recipe %s is larger than 64 MiB", path);
            }
            cap = cap ? cap * 2 : 4096;
            char *g = realloc(buf, cap);
            if (!g) {
                fclose(f);
                free(buf);
                return lq_fail(LQ_ERR_NOMEM, "out of memory reading %s", path);
            }
            buf = g;
        }
        size_t k = fread(buf + len, 1, cap - len, f);
        len += k;
        if (k == 0) break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return lq_fail(LQ_ERR_IO, "cannot read recipe %s", path);
    }
    lq_status s = lq_recipe_parse(buf, len, path, out);
    free(buf);
    return s;
}
