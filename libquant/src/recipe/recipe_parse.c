/* recipe_parse.c - YAML recipe -> validated lq_recipe (lq_recipe.h, docs/RECIPES.md).
 *
 * The walker follows the schema top-down: recipe mapping -> stages -> modifier groups ->
 * modifiers -> arguments. Every message ends with "at <file>:<line>:<col>" of the node at fault
 * (the key for unknown or misspelled keys, the value for wrong types and ranges, the modifier for
 * missing arguments), plus "; did you mean 'X'?" when a known name is close.
 */
#include "recipe_parse_internal.h"
#include "libquant/lq_file.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_STAGES 64
#define MAX_MODS 64

/* ---- stages ------------------------------------------------------------------------------------- */

static void free_modifier(lq_recipe_modifier *m) {
    rp_free_list(m->targets, m->n_targets);
    rp_free_list(m->ignore, m->n_ignore);
}

/* One "<x>_modifiers" group: a mapping of modifier class -> arguments. */
static lq_status parse_group(const pctx *c, const entry *ge, lq_recipe_stage *st) {
    entry *e;
    int n;
    char what[128];
    snprintf(what, sizeof what, "modifier group '%.60s'", ge->name);
    LQ_TRY(rp_map_entries(c, ge->val, what, &e, &n));
    lq_status s = LQ_OK;
    if (n == 0) s = rp_fail_at(c, LQ_ERR_FORMAT, ge->key, NULL, "%s has no modifiers", what);
    for (int i = 0; s == LQ_OK && i < n; i++) {
        if (st->n_mods >= MAX_MODS) {
            s = rp_fail_at(c, LQ_ERR_FORMAT, e[i].key, NULL, "more than %d modifiers in stage '%s'", MAX_MODS, st->name);
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
        m->scheme = LQ_WFMT_NONE;
        snprintf(m->group, sizeof m->group, "%s", ge->name);
        rp_one_line(m->group);
        s = rp_parse_modifier(c, &e[i], m);
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
    LQ_TRY(rp_map_entries(c, se->val, what, &e, &n));
    lq_status s = LQ_OK;
    for (int i = 0; s == LQ_OK && i < n; i++) {
        if (!strcmp(e[i].name, "run_type")) {
            const char *v = ry_scalar(e[i].val);
            if (!v || strcmp(v, "oneshot") != 0)
                s = rp_fail_at(c, LQ_ERR_UNSUPPORTED, e[i].val, NULL, "run_type must be 'oneshot' (training stages are distill_stage)");
        } else if (rp_ends_with(e[i].name, "_modifiers")) {
            s = parse_group(c, &e[i], st);
        } else {
            char b[80];
            s = rp_fail_at(c, LQ_ERR_FORMAT, e[i].key, lq_suggest(e[i].name, g_stage_keys, 5),
                        "unknown key %s in %s (expected '<name>_modifiers' or run_type)", rp_shown(e[i].key, b, sizeof b), what);
        }
    }
    if (s == LQ_OK && st->n_mods == 0) s = rp_fail_at(c, LQ_ERR_FORMAT, se->key, NULL, "%s has no modifiers", what);
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
    LQ_TRY(rp_map_entries(c, se->val, "eval_stage", &e, &n));
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
            if ((s = rp_get_list(c, v, what, false, &ev->files, &ev->n_files)) == LQ_OK && ev->n_files == 0)
                s = rp_fail_at(c, LQ_ERR_INVALID_ARG, v, NULL, "%s is empty", what);
        } else if (!strcmp(k, "ctx")) s = rp_get_int(c, v, what, 2, 1 << 20, &ev->ctx);
        else if (!strcmp(k, "per_line")) s = rp_get_bool(c, v, what, &ev->per_line);
        else if (!strcmp(k, "separator")) s = rp_get_str(c, v, what, ev->separator, sizeof ev->separator);
        else if (!strcmp(k, "baseline")) {
            const char *b = ry_scalar(v);
            if (b && !strcmp(b, "original")) ev->baseline = LQ_EVAL_BASE_ORIGINAL;
            else if (b && !strcmp(b, "previous")) ev->baseline = LQ_EVAL_BASE_PREVIOUS;
            else {
                static const char *const names[] = {"original", "previous"};
                char sb[80];
                s = rp_fail_at(c, LQ_ERR_FORMAT, v, b ? lq_suggest(b, names, 2) : NULL,
                            "%s must be original or previous, got %s", what, rp_shown(v, sb, sizeof sb));
            }
        } else if (!strcmp(k, "max_ppl_increase")) {
            /* "2%" is relative to the baseline's PPL; a plain number is PPL points */
            const char *t = ry_scalar(v);
            ev->ppl_increase_relative = t && *t && t[strlen(t) - 1] == '%';
            s = rp_get_number(c, v, what, true, 0, 1e6, false, &ev->max_ppl_increase);
        } else if (!strcmp(k, "max_mean_kld") || !strcmp(k, "max_kld")) {
            if (kld_seen)
                s = rp_fail_at(c, LQ_ERR_FORMAT, e[i].key, NULL, "max_kld and max_mean_kld are the same gate: give one");
            else s = rp_get_number(c, v, what, false, 0, 1e6, false, &ev->max_kld);
            kld_seen = true;
        } else if (!strcmp(k, "min_top1_agreement")) s = rp_get_number(c, v, what, true, 0, 1, false, &ev->min_top1);
        else {
            char b[80];
            s = rp_fail_at(c, LQ_ERR_FORMAT, e[i].key, lq_suggest(k, g_eval_keys, N_EVAL_KEYS),
                        "unknown key %s in eval_stage", rp_shown(e[i].key, b, sizeof b));
        }
    }
    if (s == LQ_OK && !files) s = rp_fail_at(c, LQ_ERR_FORMAT, se->key, NULL, "eval_stage needs 'files'");
    if (s == LQ_OK && ev->separator[0] && !ev->per_line)
        s = rp_fail_at(c, LQ_ERR_INVALID_ARG, se->key, NULL, "eval_stage: 'separator' needs 'per_line: true'");
    free(e);
    return s;
}

/* "features: [0, 5]" or "features: 0,5" (the quant-distill spelling); layer numbers are checked
 * against the teacher when the stage runs. */
static lq_status get_layers(const pctx *c, yaml_node_t *v, const char *what, lq_recipe_distill *ds) {
    char **l;
    int n;
    LQ_TRY(rp_get_list(c, v, what, false, &l, &n));
    lq_status s = LQ_OK;
    for (int i = 0; s == LQ_OK && i < n; i++) {
        for (char *p = l[i]; s == LQ_OK && *p;) {
            char *end;
            errno = 0;
            long x = strtol(p, &end, 10);
            if (end == p || errno || x < 0 || x > 4096 || (*end && *end != ','))
                s = rp_fail_at(c, LQ_ERR_FORMAT, v, NULL, "%s must be layer numbers (0, 1, ...), got '%s'", what, l[i]);
            else if (ds->n_feat_layers == (int)(sizeof ds->feat_layers / sizeof *ds->feat_layers))
                s = rp_fail_at(c, LQ_ERR_INVALID_ARG, v, NULL, "%s: at most %d layers", what,
                            (int)(sizeof ds->feat_layers / sizeof *ds->feat_layers));
            else ds->feat_layers[ds->n_feat_layers++] = (int32_t)x;
            p = *end ? end + 1 : end;
        }
    }
    rp_free_list(l, n);
    return s;
}

/* Keys an earlier draft guessed: quant-distill records soft labels, nothing here trains. */
static const char *const g_training_keys[] = {"steps", "lr", "temperature", "epochs", "learning_rate"};

static lq_status parse_distill_stage(const pctx *c, const entry *se, lq_recipe_distill *ds) {
    entry *e;
    int n;
    LQ_TRY(rp_map_entries(c, se->val, "distill_stage", &e, &n));
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
            if ((s = rp_want_scalar(c, v, what, "a path")) == LQ_OK && !(l = calloc(2, sizeof *l)))
                s = lq_fail(LQ_ERR_NOMEM, "out of memory reading %s", c->path);
            if (s == LQ_OK && !(l[0] = strdup(ry_scalar(v)))) {
                free(l);
                s = lq_fail(LQ_ERR_NOMEM, "out of memory reading %s", c->path);
            }
            if (s == LQ_OK) {
                ds->files = l;
                ds->n_files = 1;
            }
        } else if (!strcmp(k, "model")) s = rp_get_str(c, v, what, ds->teacher, sizeof ds->teacher);
        else if (!strcmp(k, "tokenizer")) s = rp_get_str(c, v, what, ds->tokenizer, sizeof ds->tokenizer);
        else if (!strcmp(k, "ctx")) s = rp_get_int(c, v, what, 2, 1 << 20, &ds->ctx);
        else if (!strcmp(k, "k")) s = rp_get_int(c, v, what, 1, 1 << 20, &ds->k);
        else if (!strcmp(k, "per_line")) s = rp_get_bool(c, v, what, &ds->per_line);
        else if (!strcmp(k, "separator")) s = rp_get_str(c, v, what, ds->separator, sizeof ds->separator);
        else if (!strcmp(k, "features")) s = get_layers(c, v, what, ds);
        else if (!strcmp(k, "logp_dtype")) {
            const char *t = ry_scalar(v);
            if (t && !strcmp(t, "f16")) ds->logp_f16 = true;
            else if (!t || strcmp(t, "f32") != 0) {
                char b[80];
                s = rp_fail_at(c, LQ_ERR_FORMAT, v, NULL, "%s must be f32 or f16, got %s", what, rp_shown(v, b, sizeof b));
            }
        } else if (training) {
            s = rp_fail_at(c, LQ_ERR_UNSUPPORTED, e[i].key, NULL,
                        "distill_stage '%s': this build records the teacher's soft labels (quant-distill) "
                        "and does not train a student", k);
        } else {
            char b[80];
            s = rp_fail_at(c, LQ_ERR_FORMAT, e[i].key, lq_suggest(k, g_distill_keys, N_DISTILL_KEYS),
                        "unknown key %s in distill_stage", rp_shown(e[i].key, b, sizeof b));
        }
    }
    if (s == LQ_OK && !file) s = rp_fail_at(c, LQ_ERR_FORMAT, se->key, NULL, "distill_stage needs 'file'");
    if (s == LQ_OK && ds->separator[0] && !ds->per_line)
        s = rp_fail_at(c, LQ_ERR_INVALID_ARG, se->key, NULL, "distill_stage: 'separator' needs 'per_line: true'");
    free(e);
    return s;
}

static void free_stage(lq_recipe_stage *st) {
    for (int j = 0; j < st->n_mods; j++) free_modifier(&st->mods[j]);
    free(st->mods);
    rp_free_list(st->eval.files, st->eval.n_files);
    rp_free_list(st->distill.files, st->distill.n_files);
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
            if (rp_is_prune(p->kind) && p->mask == LQ_MASK_NM && rp_is_quant(q->kind) && q->group_size > 0 &&
                q->group_size % p->mask_m != 0)
                return lq_fail(LQ_ERR_INVALID_ARG,
                               "impossible combination: %d:%d sparsity (%s at %s:%d:%d) with group_size %d "
                               "(%s at %s:%d:%d): each quantization group must hold whole %d-weight blocks",
                               p->mask_n, p->mask_m, lq_modifier_name(p->kind), r->path, p->pos.line,
                               p->pos.col, q->group_size, lq_modifier_name(q->kind), r->path, q->pos.line,
                               q->pos.col, p->mask_m);
            if (p->kind == LQ_MOD_SMOOTHQUANT && rp_is_quant(q->kind) && b < a)
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
    LQ_TRY(rp_map_entries(c, root, "a recipe", &e, &n));
    lq_status s = LQ_OK;
    for (int i = 0; s == LQ_OK && i < n; i++) {
        const char *k = e[i].name;
        if (!strcmp(k, "version")) continue; /* llm-compressor files carry one; nothing depends on it */
        bool stage = rp_ends_with(k, "_stage"), group = rp_ends_with(k, "_modifiers");
        if (!stage && !group) {
            char b[80];
            s = rp_fail_at(c, LQ_ERR_FORMAT, e[i].key, lq_suggest(k, g_top_keys, 7),
                        "unknown top-level key %s (expected '<name>_stage' or '<name>_modifiers')",
                        rp_shown(e[i].key, b, sizeof b));
            break;
        }
        if (r->n_stages >= MAX_STAGES) {
            s = rp_fail_at(c, LQ_ERR_FORMAT, e[i].key, NULL, "more than %d stages", MAX_STAGES);
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
        rp_one_line(st->name);
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
