/* prune_calib.c - quant-prune --method wanda|sparsegpt (prune_calib.h). */
#include "prune_calib.h"

#include <stdio.h>
#include <string.h>

#include "tool_output.h"

bool prune_calib_method(prune_calib *g, const char *method) {
    if (!lq_sparse_method_parse(method, &g->o.method)) return false;
    g->on = true;
    return true;
}

bool prune_calib_arg(tool_args *a, prune_calib *g, int *rc) {
    *rc = 0;
    int v;
    float f;
    if (tool_args_value(a, "--calib")) {
        if (g->n_calib == PRUNE_CALIB_MAX) *rc = tool_bad_args("at most %d --calib files", PRUNE_CALIB_MAX);
        else g->calib[g->n_calib++] = a->value;
    } else if (tool_calib_sample_arg(a, &g->o.calib, rc)) {
    } else if (tool_args_value(a, "--dampening")) {
        if (!tool_parse_float(a->value, 1e-6f, 0.999f, &f)) *rc = tool_args_bad_value(a);
        g->o.damp = f;
        g->have_damp = true;
    } else if (tool_args_value(a, "--block-size")) {
        if (!tool_parse_int(a->value, 1, &v)) *rc = tool_args_bad_value(a);
        g->o.block_size = v;
        g->have_block = true;
    } else if (tool_args_value(a, "--tokenizer")) {
        g->o.calib.tokenizer = a->value;
    } else {
        return false;
    }
    return true;
}

int prune_calib_check(const prune_calib *g) {
    if (!g->on) {
        if (g->n_calib || g->o.calib.n_samples || g->o.calib.sample_len || g->o.calib.seed || g->have_damp ||
            g->have_block || g->o.calib.tokenizer)
            return tool_bad_args("--calib, --calib-samples, --calib-len, --calib-seed, --dampening, --block-size "
                                 "and --tokenizer go with --method wanda or sparsegpt");
        return 0;
    }
    if (g->n_calib == 0)
        return tool_bad_args("--method %s needs calibration text (--calib FILE)", lq_sparse_method_name(g->o.method));
    if (g->o.method == LQ_SPARSE_WANDA && (g->have_damp || g->have_block))
        return tool_bad_args("--dampening and --block-size are SparseGPT's (Wanda does not update weights)");
    return 0;
}

typedef struct prog {
    bool show;
    const char *who;
} prog;

static void on_layer(void *user, int layer, int n_layers, double seconds) {
    const prog *p = user;
    if (!p->show) return;
    double eta = seconds / (layer + 1) * (n_layers - layer - 1);
    fprintf(stderr, "%s: layer %d/%d done, %.1f s, ETA %.0f s\n", p->who, layer + 1, n_layers, seconds, eta);
}

lq_status prune_calib_run(prune_calib *g, const char *model, const char *out_dir, const lq_prune_opts *p,
                          bool show_progress) {
    prog pr = {.show = show_progress, .who = lq_sparse_method_name(g->o.method)};
    g->o.prune = *p;
    g->o.calib.files = g->calib;
    g->o.calib.n_files = g->n_calib;
    g->o.progress = on_layer;
    g->o.user = &pr;
    return lq_sparse_prune(model, out_dir, &g->o, &g->sum);
}

void prune_calib_print(const prune_calib *g, bool json) {
    const lq_sparse_summary *s = &g->sum;
    const bool sgpt = g->o.method == LQ_SPARSE_SPARSEGPT;
    double em = 0.0, ea = 0.0;
    for (int64_t i = 0; i < s->n_linears; i++) {
        em += s->linears[i].rel_err_mask;
        ea += s->linears[i].rel_err_after;
    }
    const double n = s->n_linears > 0 ? (double)s->n_linears : 1.0;
    if (json) {
        printf(", \"calibrated\": {\"method\": \"%s\", \"samples\": %lld, \"sample_len\": %lld, \"windows\": %lld, "
               "\"calib_seconds\": %.3f, \"retried\": %lld, \"fallback\": %lld",
               lq_sparse_method_name(g->o.method), (long long)s->n_samples, (long long)s->sample_len,
               (long long)s->n_windows, s->calib_seconds, (long long)s->n_retried, (long long)s->n_fallback);
        if (sgpt) printf(", \"mean_out_err_mask\": %.6g, \"mean_out_err_sparsegpt\": %.6g", em / n, ea / n);
        printf(", \"linears\": [");
        for (int64_t i = 0; i < s->n_linears; i++) {
            const lq_sparse_stat *l = &s->linears[i];
            printf("%s{\"name\": ", i ? ", " : "");
            tool_print_json_string(l->name);
            printf(", \"pruned\": %lld", (long long)l->pruned);
            if (sgpt)
                printf(", \"out_err_mask\": %.6g, \"out_err_sparsegpt\": %.6g, \"damp\": %.6g, \"retries\": %d, "
                       "\"fallback\": %s, \"dead_cols\": %lld, \"loss\": %.6g",
                       l->rel_err_mask, l->rel_err_after, l->g.damp, l->g.retries, l->g.fallback ? "true" : "false",
                       (long long)l->g.dead_cols, l->g.loss);
            printf("}");
        }
        printf("]}");
        return;
    }
    printf("  %-11s %lld samples x %lld tokens (of %lld windows), %.1f s layer by layer\n",
           lq_sparse_method_name(g->o.method), (long long)s->n_samples, (long long)s->sample_len,
           (long long)s->n_windows, s->calib_seconds);
    if (!sgpt) return;
    printf("  output err  ||WX-W'X||/||WX|| on the calibration inputs, mean mask only %.5f -> SparseGPT %.5f:\n",
           em / n, ea / n);
    for (int64_t i = 0; i < s->n_linears; i++) {
        const lq_sparse_stat *l = &s->linears[i];
        printf("              %-40s %.5f -> %.5f", l->name, l->rel_err_mask, l->rel_err_after);
        if (l->g.retries) printf("  (damp %.3g after %d retries%s)", l->g.damp, l->g.retries,
                                 l->g.fallback ? ", identity fallback" : "");
        if (l->g.dead_cols) printf("  (%lld dead columns)", (long long)l->g.dead_cols);
        printf("\n");
    }
}

void prune_calib_free(prune_calib *g) { lq_sparse_summary_free(&g->sum); }
