/* prune_struct.c - structured pruning: choose the FFN neurons / KV groups each layer keeps, and
 * the row / column slices that turn the dense model into the smaller one.
 *
 * Units come from the role groups of the architecture descriptor (arch.h, lq_role_info):
 * FFN neuron i of layer l is row i of the GATE and UP roles (gate_proj, up_proj) and column i of
 * DOWN (down_proj). An attention unit is a whole KV group g (grouped-query attention shares k/v
 * rows between `group` = n_heads / n_kv_heads query heads): rows g of K and V (head_dim each),
 * its query heads' rows of Q and those heads' columns of O; biases of the row-sliced roles are
 * sliced with them. Removing a whole group
 * keeps n_heads / n_kv_heads unchanged, so the engine's head-to-group mapping still holds.
 * Kept units stay in their original order, so the smaller model computes exactly what the dense
 * model computes with the removed units' contributions zeroed.
 */
#include "prune_internal_drv.h"

#include "arch.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lq_struct_plan_free(lq_struct_plan *p) {
    if (!p) return;
    for (int l = 0; p->kept && l < p->n_layers; l++) free(p->kept[l]);
    for (int l = 0; p->xkept && l < p->n_layers; l++) {
        for (int e = 0; p->xkept[l] && e <= p->n_experts; e++) free(p->xkept[l][e]);
        free(p->xkept[l]);
    }
    free(p->kept);
    free(p->xkept);
    free(p->units_in);
    free(p->units_out);
    free(p->shared_in);
    free(p->shared_out);
    memset(p, 0, sizeof *p);
}

static lq_status load_f32(const lq_checkpoint *c, const char *name, int64_t rows, int64_t cols,
                          float **out) {
    const lq_tensor *t = lq_checkpoint_find(c, name);
    if (!t) return lq_fail(LQ_ERR_NOT_FOUND, "%s: tensor '%s': missing", lq_checkpoint_path(c), name);
    if (!lq_prune_is_float(t->dtype) || t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: tensor '%s': structured pruning needs a float [%lld, %lld] "
                       "weight (prune before quantizing)", lq_checkpoint_path(c), name, (long long)rows,
                       (long long)cols);
    float *f = malloc((size_t)(rows * cols) * sizeof *f);
    if (!f) return lq_fail(LQ_ERR_NOMEM, "out of memory reading '%s'", name);
    lq_tensor_read_f32(t, 0, rows * cols, f);
    *out = f;
    return LQ_OK;
}

/* Keep the k highest-scoring of n units (ties: lower id), ids in increasing order. */
static lq_status keep_best(const double *score, int n, int k, int32_t **out) {
    int32_t *ids = malloc((size_t)(k > 0 ? k : 1) * sizeof *ids);
    uint8_t *taken = calloc((size_t)n, 1);
    if (!ids || !taken) {
        free(ids);
        free(taken);
        return lq_fail(LQ_ERR_NOMEM, "out of memory");
    }
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int i = 0; i < n; i++)
            if (!taken[i] && (best < 0 || score[i] > score[best])) best = i;
        taken[best] = 1;
    }
    int m = 0;
    for (int i = 0; i < n; i++)
        if (taken[i]) ids[m++] = i;
    free(taken);
    *out = ids;
    return LQ_OK;
}

/* Score the n units of one instance of role group g in layer l (expert e of a per-expert group,
 * else -1) and keep the best k of them in *kept. */
static lq_status plan_group(const lq_checkpoint *c, const lq_arch *a, const lq_prune_opts *o, int l,
                            lq_role_group g, int e, int n, int k, int group, int32_t **kept) {
    const lq_config *cfg = lq_checkpoint_config(c);
    double *score = calloc((size_t)n, sizeof *score);
    if (!score) return lq_fail(LQ_ERR_NOMEM, "out of memory");
    float *w[4] = {NULL, NULL, NULL, NULL};
    char mod[192], name[224];
    lq_status s = LQ_OK;
    lq_prune_units u = {.layer = l, .expert = e, .n_units = n, .dim = cfg->dim};
    if (g == LQ_GROUP_SHARED_EXPERT) u.expert = cfg->n_experts;
    if (k < n) {
        /* the group's roles in role order: row-sliced ones are the unit's inputs (gate, up /
         * q, k, v), the column-sliced one its output (down / o) */
        for (int r = 0; s == LQ_OK && r < LQ_ROLE_COUNT; r++) {
            const lq_role_info *ri = lq_role_get((lq_role)r);
            const lq_role_spec *sp = lq_arch_role(a, (lq_role)r);
            if (!sp || ri->group != g || !lq_arch_layer_has(sp, cfg, l)) continue;
            int64_t rows = lq_arch_sym_value(cfg, sp->rows, l), cols = lq_arch_sym_value(cfg, sp->cols, l);
            int64_t width = lq_unit_width_value(ri->unit_width, cfg->head_dim, group);
            float *wf = NULL;
            lq_arch_expert_module(a, (lq_role)r, l, g == LQ_GROUP_EXPERT ? e : -1, mod, sizeof mod);
            snprintf(name, sizeof name, "%s.weight", mod);
            s = load_f32(c, name, rows, cols, &wf);
            if (s != LQ_OK) break;
            if (ri->unit_axis == LQ_AXIS_ROWS && u.n_in < 3) {
                w[u.n_in] = wf;
                u.in[u.n_in] = wf;
                u.in_rows[u.n_in++] = width;
            } else if (ri->unit_axis == LQ_AXIS_COLS && !u.out) {
                w[3] = wf;
                u.out = wf, u.out_rows = rows, u.out_cols = width;
            } else {
                free(wf);
                s = lq_fail(LQ_ERR_UNSUPPORTED, "%s: layer %d: %s's %s group does not fit a pruning unit",
                            lq_checkpoint_path(c), l, a->hf_name, lq_role_get((lq_role)r)->name);
            }
        }
        if (s == LQ_OK && (u.n_in == 0 || !u.out))
            s = lq_fail(LQ_ERR_UNSUPPORTED, "%s: layer %d: %s has no such pruning group", lq_checkpoint_path(c), l,
                        a->hf_name);
        if (s == LQ_OK) (o->unit_score ? o->unit_score : lq_prune_score_norm)(o->score_user, &u, score);
        for (int i = 0; s == LQ_OK && i < n; i++)
            if (isnan(score[i])) s = lq_fail(LQ_ERR_FORMAT, "layer %d: unit %d has a NaN score", l, i);
    }
    for (int i = 0; i < 4; i++) free(w[i]);
    if (s == LQ_OK) s = keep_best(score, n, k, kept);
    free(score);
    return s;
}

/* How many of n units a layer keeps (all of an ignored layer's); refuses none. */
static lq_status keep_count(const lq_prune_opts *o, const bool *ignored, int l, int n, const char *what, int *k) {
    double keep = o->keep;
    if (o->layer_keep && l < o->n_layer_keep && o->layer_keep[l] >= 0.0f) keep = o->layer_keep[l];
    *k = ignored[l] ? n : (int)lq_prune_count(keep, n);
    if (*k <= 0)
        return lq_fail(LQ_ERR_INVALID_ARG, "layer %d: keeping %g of %d %s removes every one (a layer "
                       "needs at least one)", l, keep, n, what);
    return LQ_OK;
}

/* A sparse-MoE layer's FFN pruning: every expert keeps the same number of its own neurons, the
 * shared expert its share of its own. */
static lq_status plan_moe_layer(const lq_checkpoint *c, const lq_arch *a, const lq_prune_opts *o,
                                const bool *ignored, int l, lq_struct_plan *p) {
    const lq_config *cfg = lq_checkpoint_config(c);
    const int E = cfg->n_experts, n = cfg->expert_hidden_dim, ns = cfg->shared_hidden_dim;
    int k, ks = 0;
    LQ_TRY(keep_count(o, ignored, l, n, "expert FFN neurons", &k));
    if (ns > 0) LQ_TRY(keep_count(o, ignored, l, ns, "shared-expert FFN neurons", &ks));
    p->units_in[l] = n, p->units_out[l] = k;
    p->shared_in[l] = ns, p->shared_out[l] = ks;
    if (!(p->xkept[l] = calloc((size_t)E + 1, sizeof *p->xkept[l]))) return lq_fail(LQ_ERR_NOMEM, "out of memory");
    for (int e = 0; e < E; e++) LQ_TRY(plan_group(c, a, o, l, LQ_GROUP_EXPERT, e, n, k, 1, &p->xkept[l][e]));
    if (ns > 0) LQ_TRY(plan_group(c, a, o, l, LQ_GROUP_SHARED_EXPERT, -1, ns, ks, 1, &p->xkept[l][E]));
    return LQ_OK;
}

lq_status lq_struct_plan_make(const lq_checkpoint *c, const lq_prune_opts *o, const bool *ignored,
                              lq_struct_plan *p) {
    const lq_config *cfg = lq_checkpoint_config(c);
    memset(p, 0, sizeof *p);
    const int L = cfg->n_layers;
    p->n_layers = L;
    p->n_experts = cfg->n_experts;
    p->units_in = calloc((size_t)L, sizeof *p->units_in);
    p->units_out = calloc((size_t)L, sizeof *p->units_out);
    p->shared_in = calloc((size_t)L, sizeof *p->shared_in);
    p->shared_out = calloc((size_t)L, sizeof *p->shared_out);
    p->kept = calloc((size_t)L, sizeof *p->kept);
    p->xkept = calloc((size_t)L, sizeof *p->xkept);
    if (!p->units_in || !p->units_out || !p->shared_in || !p->shared_out || !p->kept || !p->xkept)
        return lq_fail(LQ_ERR_NOMEM, "out of memory");
    bool ffn = o->method == LQ_PRUNE_FFN;
    const lq_arch *a;
    LQ_TRY(lq_arch_for_config(cfg, lq_checkpoint_path(c), &a));
    for (int l = 0; l < L; l++) {
        if (ffn && lq_config_layer_moe(cfg, l)) {
            LQ_TRY(plan_moe_layer(c, a, o, ignored, l, p));
            continue;
        }
        int nh = lq_config_layer_heads(cfg, l), nkv = lq_config_layer_kv_heads(cfg, l);
        int n = ffn ? lq_config_layer_hidden(cfg, l) : nkv, k;
        if (!ffn) p->group = nh / nkv;
        LQ_TRY(keep_count(o, ignored, l, n, ffn ? "FFN neurons" : "KV head groups", &k));
        p->units_in[l] = n;
        p->units_out[l] = k;
        LQ_TRY(plan_group(c, a, o, l, ffn ? LQ_GROUP_FFN : LQ_GROUP_ATTN, -1, n, k, p->group, &p->kept[l]));
    }
    return LQ_OK;
}

void lq_slice_free(lq_slice *s) {
    if (!s) return;
    free(s->rows);
    free(s->cols);
    memset(s, 0, sizeof *s);
}

/* Index list of `n_units` kept units, each `width` consecutive indices. */
static int64_t *unit_indices(const int32_t *kept, int n_units, int64_t width) {
    int64_t *ix = malloc((size_t)(n_units * width) * sizeof *ix);
    if (!ix) return NULL;
    for (int u = 0; u < n_units; u++)
        for (int64_t j = 0; j < width; j++) ix[u * width + j] = (int64_t)kept[u] * width + j;
    return ix;
}

lq_status lq_struct_slice(const lq_config *cfg, const lq_struct_plan *p, lq_prune_method m,
                          const lq_tensor *t, lq_slice *s) {
    memset(s, 0, sizeof *s);
    s->n_rows = t->ndim >= 1 ? t->shape[0] : 1;
    s->n_cols = t->ndim == 2 ? t->shape[1] : 1;
    const lq_arch *a = lq_arch_find(cfg->arch);
    int l = -1, e = -1;
    int role = a ? lq_arch_role_of_expert(a, t->name, &l, &e) : -1;
    if (role < 0 || l >= p->n_layers) return LQ_OK;
    const lq_role_info *ri = lq_role_get((lq_role)role);
    const int32_t *kept;
    int k;
    if (m == LQ_PRUNE_FFN && ri->group == LQ_GROUP_EXPERT && p->xkept[l] && e >= 0 && e < p->n_experts) {
        kept = p->xkept[l][e], k = p->units_out[l];
        if (k == p->units_in[l]) return LQ_OK;
    } else if (m == LQ_PRUNE_FFN && ri->group == LQ_GROUP_SHARED_EXPERT && p->xkept[l] && p->xkept[l][p->n_experts]) {
        kept = p->xkept[l][p->n_experts], k = p->shared_out[l];
        if (k == p->shared_in[l]) return LQ_OK;
    } else {
        if (p->xkept[l] || p->units_out[l] == p->units_in[l]) return LQ_OK;
        if (ri->group != (m == LQ_PRUNE_FFN ? LQ_GROUP_FFN : LQ_GROUP_ATTN)) return LQ_OK;
        kept = p->kept[l], k = p->units_out[l];
    }
    /* a row-sliced role loses rows of its weight and of its bias; a column-sliced one loses
     * weight columns only (its bias has one entry per output row) */
    const char *suffix = t->name + strlen(t->name);
    while (suffix > t->name && suffix[-1] != '.') suffix--;
    bool is_bias = strcmp(suffix, "bias") == 0;
    bool rows = ri->unit_axis == LQ_AXIS_ROWS, cols = ri->unit_axis == LQ_AXIS_COLS && !is_bias;
    int64_t width = lq_unit_width_value(ri->unit_width, cfg->head_dim, p->group);
    if (!rows && !cols) return LQ_OK;
    int64_t *ix = unit_indices(kept, k, width);
    if (!ix) return lq_fail(LQ_ERR_NOMEM, "out of memory");
    if (rows) {
        s->rows = ix;
        s->n_rows = k * width;
    } else {
        s->cols = ix;
        s->n_cols = k * width;
    }
    return LQ_OK;
}
