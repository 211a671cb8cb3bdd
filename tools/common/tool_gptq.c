/* tool_gptq.c - quant-ptq --method gptq (tool_gptq.h). */
#include "tool_gptq.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tool_output.h"
#include "tool_progress.h"

bool tool_gptq_arg(tool_args *a, tool_gptq *g, int *rc) {
    *rc = 0;
    int v;
    float f;
    if (tool_args_value(a, "--method")) {
        if (strcmp(a->value, "gptq") == 0) g->on = true;
        else if (strcmp(a->value, "rtn") == 0) g->on = false;
        else *rc = tool_bad_args("--method must be rtn or gptq, not '%s'", a->value);
    } else if (tool_calib_sample_arg(a, &g->o.calib, rc)) {
    } else if (tool_args_value(a, "--dampening")) {
        if (!tool_parse_float(a->value, 1e-6f, 10.0f, &f)) *rc = tool_args_bad_value(a);
        g->o.damp = f;
    } else if (tool_args_value(a, "--block-size")) {
        if (!tool_parse_int(a->value, 1, &v)) *rc = tool_args_bad_value(a);
        g->o.block_size = v;
    } else if (tool_args_value(a, "--pattern")) {
        if (!tool_parse_nm(a->value, &g->o.nm_n, &g->o.nm_m) || g->o.nm_n > g->o.nm_m || g->o.nm_m > 64)
            *rc = tool_bad_args("--pattern expects N:M with 0 < N <= M <= 64 (2:4 keeps 2 of every 4), not '%s'",
                                a->value);
    } else if (tool_args_value(a, "--actorder")) {
        if (!lq_gptq_actorder_parse(a->value, &g->o.actorder))
            *rc = tool_bad_args("--actorder must be none, weight or static, not '%s'", a->value);
    } else {
        return false;
    }
    return true;
}

int tool_gptq_check(const tool_gptq *g, const lq_ptq_opts *o) {
    if (!g->on) {
        if (g->o.calib.n_samples || g->o.calib.sample_len || g->o.damp > 0 || g->o.block_size || g->o.actorder ||
            g->o.calib.seed || g->o.nm_m)
            return tool_bad_args("--calib-samples, --calib-len, --calib-seed, --dampening, --actorder, "
                                 "--block-size and --pattern go with --method gptq");
        return 0;
    }
    if (g->n_calib == 0) return tool_bad_args("--method gptq needs calibration text (--calib FILE)");
    if (o->clip_search) return tool_bad_args("--clip-search is RTN's; GPTQ uses the min/max scales");
    if (g->o.nm_m && g->o.actorder) return tool_bad_args("--pattern (joint N:M pruning) needs --actorder none");
    if (g->o.nm_m && (g->o.block_size > 0 ? g->o.block_size : 128) % g->o.nm_m != 0)
        return tool_bad_args("--pattern %d:%d: M must divide the block size (%d)", g->o.nm_n, g->o.nm_m,
                             g->o.block_size > 0 ? g->o.block_size : 128);
    if (!lq_ct_packed(o->scheme))
        return tool_bad_args("--method gptq writes W4A16, W3A16 or W8A16, not %s", lq_ptq_scheme_name(o->scheme));
    return 0;
}

typedef struct prog {
    bool show;
} prog;

/* One line per layer with the ETA (layers cost about the same). */
static void on_layer(void *user, int layer, int n_layers, double seconds) {
    const prog *p = user;
    if (!p->show) return;
    double eta = seconds / (layer + 1) * (n_layers - layer - 1);
    fprintf(stderr, "gptq: layer %d/%d done, %.1f s, ETA %.0f s\n", layer + 1, n_layers, seconds, eta);
}

lq_status tool_gptq_run(tool_gptq *g, const char *model, const char *out_dir, const char *tok_path,
                        const lq_ptq_opts *o, bool show_progress) {
    prog p = {.show = show_progress};
    g->o.ptq = *o;
    g->o.calib.files = g->calib;
    g->o.calib.n_files = g->n_calib;
    g->o.calib.tokenizer = tok_path;
    g->o.progress = on_layer;
    g->o.user = &p;
    return lq_gptq_quantize(model, out_dir, &g->o, &g->sum);
}

void tool_gptq_print(const tool_gptq *g, bool json) {
    const lq_gptq_summary *s = &g->sum;
    double sr = 0.0, sg = 0.0;
    for (int64_t i = 0; i < s->n_linears; i++) {
        sr += s->linears[i].rel_err_rtn;
        sg += s->linears[i].rel_err_gptq;
    }
    const double n = s->n_linears > 0 ? (double)s->n_linears : 1.0;
    if (json) {
        printf(", \"gptq\": {\"samples\": %lld, \"sample_len\": %lld, \"windows\": %lld, \"actorder\": \"%s\", "
               "\"calib_seconds\": %.3f, \"retried\": %lld, \"rtn_fallback\": %lld, \"mean_out_err_rtn\": %.6g, "
               "\"mean_out_err_gptq\": %.6g, \"linears\": [",
               (long long)s->n_samples, (long long)s->sample_len, (long long)s->n_windows,
               lq_gptq_actorder_name(g->o.actorder), s->calib_seconds, (long long)s->n_retried,
               (long long)s->n_fallback, sr / n, sg / n);
        for (int64_t i = 0; i < s->n_linears; i++) {
            const lq_gptq_stat *l = &s->linears[i];
            printf("%s{\"name\": ", i ? ", " : "");
            tool_print_json_string(l->name);
            printf(", \"out_err_rtn\": %.6g, \"out_err_gptq\": %.6g, \"damp\": %.6g, \"retries\": %d, "
                   "\"rtn_fallback\": %s, \"dead_cols\": %lld, \"loss\": %.6g, \"pruned\": %lld}",
                   l->rel_err_rtn, l->rel_err_gptq, l->g.damp, l->g.retries, l->g.rtn_fallback ? "true" : "false",
                   (long long)l->g.dead_cols, l->g.loss, (long long)l->g.pruned);
        }
        printf("]}");
        return;
    }
    printf("  gptq        %lld samples x %lld tokens (of %lld windows), actorder %s, %.1f s layer by layer\n",
           (long long)s->n_samples, (long long)s->sample_len, (long long)s->n_windows,
           lq_gptq_actorder_name(g->o.actorder), s->calib_seconds);
    if (g->o.nm_m) {
        int64_t pruned = 0, params = 0;
        for (int64_t i = 0; i < s->n_linears; i++) pruned += s->linears[i].g.pruned, params += s->linears[i].rows * s->linears[i].cols;
        printf("  pruned      %d:%d in the same sweep: %lld of %lld weights of the GPTQ Linears (%.1f%%)\n", g->o.nm_n,
               g->o.nm_m, (long long)pruned, (long long)params, params ? 100.0 * (double)pruned / (double)params : 0.0);
    }
    printf("  output err  ||WX-QX||/||WX|| on the calibration inputs, mean RTN %.5f -> GPTQ %.5f:\n", sr / n, sg / n);
    for (int64_t i = 0; i < s->n_linears; i++) {
        const lq_gptq_stat *l = &s->linears[i];
        printf("              %-40s %.5f -> %.5f", l->name, l->rel_err_rtn, l->rel_err_gptq);
        if (l->g.retries) printf("  (damp %.3g after %d retries%s)", l->g.damp, l->g.retries,
                                 l->g.rtn_fallback ? ", RTN fallback" : "");
        if (l->g.dead_cols) printf("  (%lld dead columns)", (long long)l->g.dead_cols);
        printf("\n");
    }
}

void tool_gptq_free(tool_gptq *g) { lq_gptq_summary_free(&g->sum); }
