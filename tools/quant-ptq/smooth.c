/* smooth.c - quant-ptq --method awq | smoothquant[+gptq] (see ptq_smooth.h). */
#include "quant-ptq/ptq_smooth.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "tool_outdir.h"
#include "tool_output.h"

void ptq_smooth_usage(FILE *f) {
    fprintf(f,
            "  --method awq       AWQ (llm-compressor's AWQModifier) before RTN: per mapping\n"
            "                     (attn norm -> q/k/v, v -> o when shapes allow, ffn norm ->\n"
            "                     gate/up, up -> down) a grid of --awq-grid N scale exponents\n"
            "                     (default 20) scored by the output error with the scaled weights\n"
            "                     quantized as --scheme / --group-size / --sym|--asym say;\n"
            "                     --duo-scaling true|false|both (default true). Calibration as\n"
            "                     GPTQ: --calib TEXT... --calib-samples N --calib-len L --calib-seed S\n"
            "  --method smoothquant, --smoothquant A   SmoothQuant (SmoothQuantModifier) with\n"
            "                     smoothing_strength A (default 0.5; also --smoothing-strength A)\n"
            "                     folded into the norms, then RTN of --scheme (W8A8 is its scheme)\n"
            "  --method smoothquant+gptq, awq+gptq   the smoothing, then GPTQ\n");
}

bool ptq_smooth_arg(tool_args *a, ptq_smooth *s, tool_gptq *g, int *rc) {
    *rc = 0;
    int v;
    float f;
    static const struct { const char *name; lq_smooth_method m; bool gptq; } methods[] = {
        {"awq", LQ_SMOOTH_AWQ, false}, {"awq+gptq", LQ_SMOOTH_AWQ, true},
        {"smoothquant", LQ_SMOOTH_SMOOTHQUANT, false}, {"smoothquant+gptq", LQ_SMOOTH_SMOOTHQUANT, true}};
    if (tool_args_value(a, "--method")) {
        size_t k = 0;
        while (k < sizeof methods / sizeof methods[0] && strcmp(methods[k].name, a->value) != 0) k++;
        if (k == sizeof methods / sizeof methods[0]) {
            if (strcmp(a->value, "rtn") != 0 && strcmp(a->value, "gptq") != 0)
                *rc = tool_bad_args("--method must be rtn, gptq, awq, awq+gptq, smoothquant or smoothquant+gptq, "
                                    "not '%s'", a->value);
            else s->on = false, g->on = strcmp(a->value, "gptq") == 0;
            return true;
        }
        if (s->alpha_set && methods[k].m == LQ_SMOOTH_AWQ)
            *rc = tool_bad_args("--smoothquant / --smoothing-strength is SmoothQuant's, not AWQ's");
        s->on = true;
        s->o.method = methods[k].m;
        g->on = methods[k].gptq;
    } else if (tool_args_value(a, "--smoothquant") || tool_args_value(a, "--smoothing-strength")) {
        if (!tool_parse_float(a->value, 0.0f, 1.0f, &f)) *rc = tool_bad_args("--smoothquant / --smoothing-strength must be in [0, 1], not '%s'", a->value);
        if (s->on && s->o.method == LQ_SMOOTH_AWQ)
            *rc = tool_bad_args("--smoothquant / --smoothing-strength is SmoothQuant's, not AWQ's");
        s->on = true;
        s->o.method = LQ_SMOOTH_SMOOTHQUANT;
        s->o.alpha = f;
        s->alpha_set = true;
    } else if (tool_args_value(a, "--duo-scaling")) {
        if (!lq_awq_duo_parse(a->value, &s->o.duo)) *rc = tool_bad_args("--duo-scaling must be true, false or both, not '%s'", a->value);
        s->duo_set = true;
    } else if (tool_args_value(a, "--awq-grid")) {
        if (!tool_parse_int(a->value, 2, &v) || v > 128) *rc = tool_bad_args("--awq-grid must be 2 .. 128, not '%s'", a->value);
        s->o.n_grid = v;
        s->grid_set = true;
    } else {
        return false;
    }
    return true;
}

int ptq_smooth_check(ptq_smooth *s, tool_gptq *g, const lq_ptq_opts *o, int n_calib, const char **calib) {
    if (!s->on) {
        if (s->duo_set || s->grid_set) return tool_bad_args("--duo-scaling and --awq-grid go with --method awq");
        return 0;
    }
    const bool awq = s->o.method == LQ_SMOOTH_AWQ;
    if ((s->duo_set || s->grid_set) && !awq) return tool_bad_args("--duo-scaling and --awq-grid go with --method awq");
    if (s->alpha_set && awq) return tool_bad_args("--smoothquant / --smoothing-strength is SmoothQuant's, not AWQ's");
    if (n_calib == 0) return tool_bad_args("--method %s needs calibration text (--calib FILE)", awq ? "awq" : "smoothquant");
    if (awq && o->scheme != LQ_WFMT_W4A16 && o->scheme != LQ_WFMT_W8A16)
        return tool_bad_args("--method awq searches for W4A16 or W8A16, not %s", lq_ptq_scheme_name(o->scheme));
    if (!s->alpha_set) s->o.alpha = -1.0;
    s->o.calib = g->o.calib; /* --calib-samples / --calib-len / --calib-seed, parsed into GPTQ's */
    s->o.calib.files = calib;
    s->o.calib.n_files = n_calib;
    if (!g->on) g->o.calib = (lq_calib_source){0}; /* the smoothing's, not GPTQ's */
    lq_smooth_set_scheme(&s->o, o->scheme, o->group_size, o->asym);
    s->o.rounding = o->rounding;
    return 0;
}

typedef struct prog {
    bool show;
    const char *what;
} prog;

static void on_layer(void *user, int layer, int n_layers, double seconds) {
    const prog *p = user;
    if (!p->show) return;
    double eta = seconds / (layer + 1) * (n_layers - layer - 1);
    fprintf(stderr, "%s: layer %d/%d done, %.1f s, ETA %.0f s\n", p->what, layer + 1, n_layers, seconds, eta);
}

lq_status ptq_smooth_run(ptq_smooth *s, const char *model, const char *parent, const char *tok_path,
                         bool show_progress) {
    if (snprintf(s->dir, sizeof s->dir, "%s/.smoothed", parent) >= (int)sizeof s->dir)
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: path too long", parent);
    if (mkdir(s->dir, 0755) != 0) {
        s->dir[0] = 0;
        return lq_fail(LQ_ERR_IO, "%s/.smoothed: cannot create", parent);
    }
    prog p = {.show = show_progress, .what = s->o.method == LQ_SMOOTH_AWQ ? "awq" : "smoothquant"};
    s->o.calib.tokenizer = tok_path;
    s->o.progress = on_layer;
    s->o.user = &p;
    return lq_smooth_transform(model, s->dir, &s->o, &s->sum);
}

void ptq_smooth_print(const ptq_smooth *s, bool json) {
    const lq_smooth_summary *r = &s->sum;
    const bool awq = s->o.method == LQ_SMOOTH_AWQ;
    double er = 0.0, eb = 0.0;
    for (int64_t i = 0; i < r->n_maps; i++) er += r->maps[i].err_rtn, eb += r->maps[i].err_best;
    if (json) {
        printf(", \"%s\": {\"samples\": %lld, \"sample_len\": %lld, \"windows\": %lld, \"seconds\": %.3f, "
               "\"skipped\": %lld, ", awq ? "awq" : "smoothquant", (long long)r->n_samples, (long long)r->sample_len,
               (long long)r->n_windows, r->seconds, (long long)r->n_skipped);
        if (awq) printf("\"duo_scaling\": \"%s\", \"n_grid\": %d, \"sum_err_rtn\": %.6g, \"sum_err_awq\": %.6g, ",
                        lq_awq_duo_name(s->o.duo), s->o.n_grid ? s->o.n_grid : 20, er, eb);
        else printf("\"smoothing_strength\": %g, ", s->o.alpha < 0 ? 0.5 : s->o.alpha);
        printf("\"mappings\": [");
        for (int64_t i = 0; i < r->n_maps; i++) {
            const lq_smooth_stat *m = &r->maps[i];
            printf("%s{\"smooth\": ", i ? ", " : "");
            tool_print_json_string(m->smooth);
            printf(", \"balance\": \"%s\", \"channels\": %lld, \"scale_min\": %.6g, \"scale_max\": %.6g", m->balance,
                   (long long)m->channels, m->scale_min, m->scale_max);
            if (awq) printf(", \"ratio\": %.4f, \"duo\": %s, \"err_rtn\": %.6g, \"err_awq\": %.6g", m->ratio,
                            m->duo ? "true" : "false", m->err_rtn, m->err_best);
            printf("}");
        }
        printf("]}");
        return;
    }
    printf("  %-11s %lld samples x %lld tokens (of %lld windows), %lld mappings (%lld skipped: shapes), %.1f s\n",
           awq ? "awq" : "smoothquant", (long long)r->n_samples, (long long)r->sample_len, (long long)r->n_windows,
           (long long)r->n_maps, (long long)r->n_skipped, r->seconds);
    if (!awq) {
        printf("              smoothing_strength %g\n", s->o.alpha < 0 ? 0.5 : s->o.alpha);
        return;
    }
    printf("  output err  block/Linear output MSE on the calibration inputs, sum RTN %.5g -> AWQ %.5g "
           "(duo_scaling %s):\n", er, eb, lq_awq_duo_name(s->o.duo));
    for (int64_t i = 0; i < r->n_maps; i++) {
        const lq_smooth_stat *m = &r->maps[i];
        printf("              %-40s -> %-6s %.4g -> %.4g (ratio %.3f%s)\n", m->smooth, m->balance, m->err_rtn,
               m->err_best, m->ratio, m->duo ? ", duo" : "");
    }
}

lq_status ptq_smooth_drop_dir(ptq_smooth *s) {
    if (s->dir[0] && tool_rm_tree(s->dir) != 0) return lq_fail(LQ_ERR_IO, "%s: cannot remove", s->dir);
    s->dir[0] = 0;
    return LQ_OK;
}

void ptq_smooth_cleanup(ptq_smooth *s) {
    if (s->dir[0]) tool_rm_tree(s->dir);
    s->dir[0] = 0;
    lq_smooth_summary_free(&s->sum);
}
