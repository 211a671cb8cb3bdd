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
    free(p->kept);
    free(p->units_in);
    free(p->units_out);
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

lq_status lq_struct_plan_make(const lq_checkpoint *c, const lq_prune_opts *o, const bool *ignored,
                              lq_struct_plan *p) {
    const lq_config *cfg = lq_checkpoint_config(c);
    memset(p, 0, sizeof *p);
    p->n_layers = cfg->n_layers;
    p->units_in = calloc((size_t)cfg->n_layers, sizeof *p->units_in);
    p->units_out = calloc((size_t)cfg->n_layers, sizeof *p->units_out);
    p->kept = calloc((size_t)cfg->n_layers, sizeof *p->kept);
    if (!p->units_in || !p->units_out || !p->kept) return lq_fail(LQ_ERR_NOMEM, "out of memory");
    bool ffn = o->method == LQ_PRUNE_FFN;
    lq_prune_unit_score_fn score_fn = o->unit_score ? o->unit_score : lq_prune_score_norm;
    const int64_t D = cfg->dim, hd = cfg->head_dim;
    const lq_arch *a;
    LQ_TRY(lq_arch_for_config(cfg, lq_checkpoint_path(c), &a));
    for (int l = 0; l < cfg->n_layers; l++) {
        int nh = lq_config_layer_heads(cfg, l), nkv = lq_config_layer_kv_heads(cfg, l);
        int n = ffn ? lq_config_layer_hidden(cfg, l) : nkv;
        if (!ffn) p->group = nh / nkv;
        double keep = o->keep;
        if (o->layer_keep && l < o->n_layer_keep && o->layer_keep[l] >= 0.0f) keep = o->layer_keep[l];
        int k = ignored[l] ? n : (int)lq_prune_count(keep, n);
        if (k <= 0)
            return lq_fail(LQ_ERR_INVALID_ARG, "layer %d: keeping %g of %d %s removes every one (a layer "
                           "needs at least one)", l, keep, n, ffn ? "FFN neurons" : "KV head groups");
        p->units_in[l] = n;
        p->units_out[l] = k;
        double *score = calloc((size_t)n, sizeof *score);
        if (!score) return lq_fail(LQ_ERR_NOMEM, "out of memory");
        float *w[4] = {NULL, NULL, NULL, NULL};
        char name[192];
        lq_status s = LQ_OK;
        lq_prune_units u = {.layer = l, .n_units = n, .dim = D};
        if (k < n) {
            /* the group's roles in role order: row-sliced ones are the unit's inputs (gate, up /
             * q, k, v), the column-sliced one its output (down / o) */
            for (int r = 0; s == LQ_OK && r < LQ_ROLE_COUNT; r++) {
                const lq_role_info *ri = lq_role_get((lq_role)r);
                const lq_role_spec *sp = lq_arch_role(a, (lq_role)r);
                if (!sp || ri->group != (ffn ? LQ_GROUP_FFN : LQ_GROUP_ATTN)) continue;
                int64_t rows = lq_arch_sym_value(cfg, sp->rows, l), cols = lq_arch_sym_value(cfg, sp->cols, l);
                int64_t width = lq_unit_width_value(ri->unit_width, hd, p->group);
                float *wf = NULL;
                snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, sp->hf);
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
                                lq_checkpoint_path(c), l, a->hf_name, ffn ? "FFN" : "attention");
                }
            }
            if (s == LQ_OK) score_fn(o->score_user, &u, score);
            for (int i = 0; s == LQ_OK && i < n; i++)
                if (isnan(score[i])) s = lq_fail(LQ_ERR_FORMAT, "layer %d: unit %d has a NaN score", l, i);
        }
        for (int i = 0; i < 4; i++) free(w[i]);
        if (s == LQ_OK) s = keep_best(score, n, k, &p->kept[l]);
        free(score);
        LQ_TRY(s);
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
    int l = -1;
    int role = a ? lq_arch_role_of(a, t->name, &l) : -1;
    if (role < 0 || l >= p->n_layers || p->units_out[l] == p->units_in[l]) return LQ_OK;
    const lq_role_info *ri = lq_role_get((lq_role)role);
    if (ri->group != (m == LQ_PRUNE_FFN ? LQ_GROUP_FFN : LQ_GROUP_ATTN)) return LQ_OK;
    const int32_t *kept = p->kept[l];
    int k = p->units_out[l];
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
