/* recipe_parse_groups.c - a quantizing modifier's `config_groups` (compressed-tensors'
 * QuantizationScheme per group, the way llm-compressor's own example recipes name a scheme) into
 * the preset it equals: scheme, symmetry, group size and the group's targets.
 *
 * One group per modifier: a preset applies to every target of its modifier (split several groups
 * into several modifiers). What maps, with compressed-tensors' QuantizationArgs defaults
 * (num_bits 8, type int, symmetric true, dynamic false; strategy from group_size when absent):
 *   weights int 8 channel, symmetric                       -> W8A16
 *   weights int 4 / 3 group G (or channel), either symmetry -> W4A16 / W3A16 (_ASYM), group G
 *   + input_activations int 8 dynamic token, symmetric     -> W8A8 (weights int 8 channel)
 *   weights float 8 channel or tensor (+ float 8 dynamic token activations) -> FP8
 * Anything else is refused in one line naming the group.
 */
#include "recipe_parse_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libquant/lq_ptq.h"

typedef struct qargs {          /* one QuantizationArgs mapping */
    bool present;
    int32_t bits;
    bool is_float, sym, dynamic;
    char strategy[16];          /* "" = not given */
    int32_t group_size;         /* 0 = not given */
    char actorder[16];          /* "" = none */
} qargs;

static lq_status parse_qargs(const pctx *c, yaml_node_t *v, const char *what, qargs *q) {
    *q = (qargs){.bits = 8, .sym = true};
    if (ry_is_null(v)) return LQ_OK;
    q->present = true;
    entry *e;
    int n;
    LQ_TRY(rp_map_entries(c, v, what, &e, &n));
    lq_status s = LQ_OK;
    char b[80];
    for (int i = 0; s == LQ_OK && i < n; i++) {
        const char *k = e[i].name, *t = ry_scalar(e[i].val);
        yaml_node_t *x = e[i].val;
        if (!strcmp(k, "num_bits")) {
            s = rp_get_int(c, x, what, 1, 64, &q->bits);
        } else if (!strcmp(k, "type")) {
            if (t && !strcmp(t, "float")) q->is_float = true;
            else if (!t || strcmp(t, "int"))
                s = rp_fail_at(c, LQ_ERR_FORMAT, x, NULL, "%s: type must be int or float, got %s", what,
                               rp_shown(x, b, sizeof b));
        } else if (!strcmp(k, "symmetric")) {
            s = rp_get_bool(c, x, what, &q->sym);
        } else if (!strcmp(k, "dynamic")) {
            if (t && !strcmp(t, "local"))
                s = rp_fail_at(c, LQ_ERR_UNSUPPORTED, x, NULL, "%s: dynamic 'local' is not supported", what);
            else s = rp_get_bool(c, x, what, &q->dynamic);
        } else if (!strcmp(k, "strategy")) {
            if (!ry_is_null(x)) s = rp_get_str(c, x, what, q->strategy, sizeof q->strategy);
        } else if (!strcmp(k, "group_size")) {
            if (!ry_is_null(x)) s = rp_get_int(c, x, what, 1, 1 << 20, &q->group_size);
        } else if (!strcmp(k, "actorder")) {
            if (!ry_is_null(x) && !(t && !strcasecmp(t, "false")))
                s = rp_get_str(c, x, what, q->actorder, sizeof q->actorder);
        } else if (!strcmp(k, "block_structure")) {
            if (!ry_is_null(x))
                s = rp_fail_at(c, LQ_ERR_UNSUPPORTED, x, NULL, "%s: block_structure is not supported", what);
        } else if (strcmp(k, "observer") && strcmp(k, "observer_kwargs") && strcmp(k, "scale_dtype") &&
                   strcmp(k, "zp_dtype")) {
            s = rp_fail_at(c, LQ_ERR_FORMAT, e[i].key, NULL, "%s: unknown key '%s'", what, k);
        }
    }
    free(e);
    if (s == LQ_OK && !q->strategy[0]) /* QuantizationArgs' validator: a group size means "group" */
        snprintf(q->strategy, sizeof q->strategy, "%s", q->group_size > 0 ? "group" : "tensor");
    return s;
}

/* The preset name weights w (+ activations a) equal, or NULL. */
static const char *preset_of(const qargs *w, const qargs *a) {
    const bool channel = !strcmp(w->strategy, "channel"), group = !strcmp(w->strategy, "group");
    if (!a->present) {
        if (!w->is_float && w->bits == 8 && channel && w->sym) return "W8A16";
        if (!w->is_float && w->bits == 4 && (group || channel)) return w->sym ? "W4A16" : "W4A16_ASYM";
        if (!w->is_float && w->bits == 3 && (group || channel)) return "W3A16";
        if (w->is_float && w->bits == 8 && (channel || !strcmp(w->strategy, "tensor"))) return "FP8";
        return NULL;
    }
    const bool token_dyn = a->bits == 8 && a->dynamic && a->sym && !strcmp(a->strategy, "token");
    if (!w->is_float && !a->is_float && w->bits == 8 && channel && w->sym && token_dyn) return "W8A8";
    if (w->is_float && a->is_float && w->bits == 8 && (channel || !strcmp(w->strategy, "tensor")) && token_dyn)
        return "FP8";
    return NULL;
}

lq_status rp_parse_config_groups(const pctx *c, yaml_node_t *v, const char *mod, bool have_targets,
                                 lq_recipe_modifier *m) {
    char what[160];
    snprintf(what, sizeof what, "argument 'config_groups' of %s", mod);
    entry *g;
    int ng;
    LQ_TRY(rp_map_entries(c, v, what, &g, &ng));
    lq_status s = LQ_OK;
    if (ng != 1)
        s = rp_fail_at(c, LQ_ERR_UNSUPPORTED, v, NULL, "%s: %d groups; one config group per modifier (split the "
                       "groups into one modifier each)", what, ng);
    entry *e = NULL;
    int n = 0;
    if (s == LQ_OK) {
        snprintf(what, sizeof what, "config group '%s' of %s", g[0].name, mod);
        s = rp_map_entries(c, g[0].val, what, &e, &n);
    }
    qargs w = {0}, a = {0};
    yaml_node_t *targets = NULL, *wnode = NULL;
    char sub[224];
    for (int i = 0; s == LQ_OK && i < n; i++) {
        const char *k = e[i].name;
        if ((s = ry_visit(c->d, e[i].val)) != LQ_OK) break;
        snprintf(sub, sizeof sub, "%s: %s", what, k);
        if (!strcmp(k, "weights")) {
            wnode = e[i].val;
            s = parse_qargs(c, e[i].val, sub, &w);
        } else if (!strcmp(k, "input_activations")) {
            s = parse_qargs(c, e[i].val, sub, &a);
        } else if (!strcmp(k, "output_activations")) {
            if (!ry_is_null(e[i].val))
                s = rp_fail_at(c, LQ_ERR_UNSUPPORTED, e[i].val, NULL, "%s: output activations are not quantized "
                               "by this build", what);
        } else if (!strcmp(k, "targets")) {
            targets = e[i].val;
        } else if (strcmp(k, "format")) {
            s = rp_fail_at(c, LQ_ERR_FORMAT, e[i].key, NULL, "%s: unknown key '%s'", what, k);
        }
    }
    if (s == LQ_OK && !wnode)
        s = rp_fail_at(c, LQ_ERR_FORMAT, g[0].key, NULL, "%s has no 'weights'", what);
    const char *name = s == LQ_OK ? preset_of(&w, &a) : NULL;
    if (s == LQ_OK && !name)
        s = rp_fail_at(c, LQ_ERR_UNSUPPORTED, wnode, NULL, "%s: %s %d-bit %s%s weights%s is not a scheme this build "
                       "has (W8A16, W4A16[_ASYM] and W3A16 by group or channel, W8A8 with int8 dynamic per-token "
                       "activations, FP8)", what, w.is_float ? "float" : "int", (int)w.bits, w.strategy,
                       w.sym ? "" : " asymmetric", a.present ? " with these input activations" : "");
    if (s == LQ_OK) {
        const lq_preset *p = lq_preset_find(name);
        m->scheme = p->fmt;
        m->asym = !w.sym && !w.is_float;
        /* -1: one group per row (lq_ptq_opts) */
        m->group_size = !strcmp(w.strategy, "group") ? w.group_size : lq_ct_grouped(p->fmt) ? -1 : 0;
        if (!strcmp(w.strategy, "group") && w.group_size <= 0)
            s = rp_fail_at(c, LQ_ERR_FORMAT, wnode, NULL, "%s: strategy group needs a group_size", what);
    }
    if (s == LQ_OK && w.actorder[0]) {
        if (m->kind != LQ_MOD_GPTQ)
            s = rp_fail_at(c, LQ_ERR_UNSUPPORTED, wnode, NULL, "%s: actorder applies to GPTQModifier only", what);
        else if (strcmp(w.actorder, "static") && strcmp(w.actorder, "group") && strcmp(w.actorder, "weight"))
            s = rp_fail_at(c, LQ_ERR_FORMAT, wnode, NULL, "%s: actorder must be static, group, weight or null, got "
                           "'%s'", what, w.actorder);
        else snprintf(m->actorder, sizeof m->actorder, "%s", w.actorder);
    }
    if (s == LQ_OK && targets) {
        if (have_targets)
            s = rp_fail_at(c, LQ_ERR_FORMAT, targets, NULL, "%s: targets given both here and in the modifier", what);
        else s = rp_get_list(c, targets, what, true, &m->targets, &m->n_targets);
    }
    free(e);
    free(g);
    return s;
}
