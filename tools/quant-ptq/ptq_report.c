/* ptq_report.c - quant-ptq's summary (text and --json) and the clip search's calibration inputs
 * (ptq_report.h). */
#include "ptq_report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libquant/lq_tokenizer.h"
#include "lq_eval.h"
#include "tool_cli.h"
#include "tool_output.h"
#include "tool_progress.h"

#define TOOL "quant-ptq"

/* ---- summary ------------------------------------------------------------------------------------ */

/* Text summary: which tensors the group fallback applied to; long lists are cut (--json has all). */
#define FALLBACK_SHOWN 8

static void print_fallback_text(const lq_ptq_summary *r) {
    for (int act = LQ_PTQ_FALLBACK_CHANNEL; act <= LQ_PTQ_FALLBACK_IGNORE; act++) {
        int64_t n = 0, shown = 0;
        for (int64_t i = 0; i < r->n_fallback; i++) n += r->fallback[i].action == (lq_ptq_group_fallback)act;
        if (n == 0) continue;
        printf("  fallback    %lld tensor%s %s (group size does not divide their columns):\n",
               (long long)n, n == 1 ? "" : "s",
               act == LQ_PTQ_FALLBACK_CHANNEL ? "quantized per output channel" : "kept in float");
        for (int64_t i = 0; i < r->n_fallback; i++) {
            const lq_ptq_fallback_stat *f = &r->fallback[i];
            if (f->action != (lq_ptq_group_fallback)act) continue;
            if (shown++ == FALLBACK_SHOWN) {
                printf("              ... and %lld more (--json lists all)\n", (long long)(n - FALLBACK_SHOWN));
                break;
            }
            printf("              %s (%lld x %lld, group %d)\n", f->name, (long long)f->rows,
                   (long long)f->cols, (int)f->group_size);
        }
    }
}

/* Text summary of the clip search: totals, then one line per tensor (what it chose). */
static void print_clip_text(const lq_ptq_summary *r) {
    lq_clip_stats tot = {0};
    int64_t n = 0;
    for (int64_t i = 0; i < r->n_quantized; i++) {
        const lq_clip_stats *c = &r->tensors[i].clip;
        if (!c->groups) continue;
        n++;
        tot.groups += c->groups;
        tot.clipped += c->clipped;
        tot.ratio_sum += c->ratio_sum;
    }
    if (!n) return;
    printf("  clip search %lld of %lld groups clipped, mean ratio %.4f; per tensor (clipped groups, "
           "mean / min ratio, weighted error vs no clipping):\n", (long long)tot.clipped,
           (long long)tot.groups, tot.ratio_sum / (double)tot.groups);
    for (int64_t i = 0; i < r->n_quantized; i++) {
        const lq_ptq_tensor_stat *t = &r->tensors[i];
        const lq_clip_stats *c = &t->clip;
        if (!c->groups) continue;
        printf("              %s%s: %lld/%lld, %.4f / %.2f, %+.2f%%\n", t->name,
               t->calibrated ? " (calibrated)" : "", (long long)c->clipped, (long long)c->groups,
               c->ratio_sum / (double)c->groups, c->ratio_min,
               c->err_plain > 0 ? 100.0 * (c->err_chosen / c->err_plain - 1.0) : 0.0);
    }
}

void ptq_print_summary(const lq_ptq_summary *r, const lq_ptq_opts *o, const char *out, bool json,
                       const tool_gptq *gq, const ptq_smooth *sm, const ptq_kv *kv, const ptq_automix *mx) {
    /* a --target-bpw plan gives every module its own scheme: the options' default names none */
    const char *scheme = mx && mx->target > 0 ? "mixed" : lq_ptq_scheme_name(o->scheme), *fallback = lq_ptq_group_fallback_name(o->group_fallback);
    uint64_t rss = tool_peak_rss_bytes();
    if (json) {
        printf("{\"out\": ");
        tool_print_json_string(out);
        printf(", \"scheme\": \"%s\", \"rounding\": \"%s\", \"clip_search\": \"%s\", \"group_fallback\": \"%s\", "
               "\"fallback\": [", scheme, lq_rounding_name(o->rounding),
               !o->clip_search ? "none" : o->calib ? "calibrated" : "weighted", fallback);
        for (int64_t i = 0; i < r->n_fallback; i++) {
            const lq_ptq_fallback_stat *f = &r->fallback[i];
            printf("%s{\"name\": ", i ? ", " : "");
            tool_print_json_string(f->name);
            printf(", \"rows\": %lld, \"cols\": %lld, \"group_size\": %d, \"action\": \"%s\"}",
                   (long long)f->rows, (long long)f->cols, (int)f->group_size,
                   lq_ptq_group_fallback_name(f->action));
        }
        printf("], \"tensors\": %lld, \"quantized\": %lld, \"params\": %lld, "
               "\"params_quantized\": %lld, \"bytes_in\": %llu, \"bytes_out\": %llu, "
               "\"quantized_bytes_in\": %llu, \"quantized_bytes_out\": %llu, \"bits_per_weight\": %.4f, "
               "\"mean_rel_err\": %.6g, \"worst_rel_err\": %.6g, \"worst_tensor\": ",
               (long long)r->n_tensors, (long long)r->n_quantized, (long long)r->params_total,
               (long long)r->params_quantized, (unsigned long long)r->bytes_in,
               (unsigned long long)r->bytes_out, (unsigned long long)r->qbytes_in,
               (unsigned long long)r->qbytes_out, r->bits_per_weight, r->mean_rel_err, r->worst_rel_err);
        tool_print_json_string(r->worst_tensor);
        printf(", \"seconds\": %.3f, \"peak_rss\": %llu, \"per_tensor\": [", r->seconds,
               (unsigned long long)rss);
        for (int64_t i = 0; i < r->n_quantized; i++) {
            const lq_ptq_tensor_stat *t = &r->tensors[i];
            printf("%s{\"name\": ", i ? ", " : "");
            tool_print_json_string(t->name);
            printf(", \"scheme\": \"%s\", \"group_size\": %d, \"fell_back\": %s, \"rows\": %lld, "
                   "\"cols\": %lld, \"bytes_in\": %llu, \"bytes_out\": %llu, \"rel_err\": %.6g",
                   lq_ptq_scheme_name(t->scheme), (int)t->group_size, t->fell_back ? "true" : "false",
                   (long long)t->rows, (long long)t->cols,
                   (unsigned long long)t->bytes_in, (unsigned long long)t->bytes_out, t->rel_err);
            if (t->clip.groups > 0)
                printf(", \"clip\": {\"calibrated\": %s, \"groups\": %lld, \"clipped\": %lld, "
                       "\"mean_ratio\": %.4f, \"min_ratio\": %.2f, \"err_plain\": %.6g, "
                       "\"err_chosen\": %.6g}",
                       t->calibrated ? "true" : "false", (long long)t->clip.groups,
                       (long long)t->clip.clipped, t->clip.ratio_sum / (double)t->clip.groups,
                       t->clip.ratio_min, t->clip.err_plain, t->clip.err_chosen);
            printf("}");
        }
        printf("]");
        if (gq) tool_gptq_print(gq, true);
        if (sm) ptq_smooth_print(sm, true);
        ptq_kv_print(kv, true);
        ptq_automix_print(mx, true);
        printf("}\n");
        return;
    }
    printf("%s: %lld of %lld tensors quantized (%s, rounding %s), %lld of %lld parameters\n", out,
           (long long)r->n_quantized, (long long)r->n_tensors, scheme, lq_rounding_name(o->rounding),
           (long long)r->params_quantized, (long long)r->params_total);
    printf("  size        %.2f MiB -> %.2f MiB (quantized tensors %.2f -> %.2f MiB, %.3f bits/weight)\n",
           r->bytes_in / 1048576.0, r->bytes_out / 1048576.0, r->qbytes_in / 1048576.0,
           r->qbytes_out / 1048576.0, r->bits_per_weight);
    printf("  rel. error  ||W-Q||/||W|| mean %.5f, worst %.5f (%s)\n", r->mean_rel_err,
           r->worst_rel_err, r->worst_tensor[0] ? r->worst_tensor : "-");
    print_fallback_text(r);
    print_clip_text(r);
    if (gq) tool_gptq_print(gq, false);
    if (sm) ptq_smooth_print(sm, false);
    ptq_kv_print(kv, false);
    ptq_automix_print(mx, false);
    printf("  time        %.2f s%s, peak RSS %.1f MiB\n",
           r->seconds + (gq ? gq->sum.calib_seconds : 0.0) + (sm ? sm->sum.seconds : 0.0),
           gq || sm ? " (calibration included)" : "", rss / 1048576.0);
}

/* ---- calibration ------------------------------------------------------------------------------ */

#define CALIB_CTX 512

/* Run the first max_tokens tokens of text_path through the model and collect its imatrix.
 * Returns 0 or the exit code (the error printed). */
int ptq_collect_calib(const char *model, const char *tok_path, const char *text_path, int max_tokens,
                      lq_pool *pool, lq_imatrix **out) {
    lq_model *m = NULL;
    lq_tokenizer *tok = NULL;
    lq_session *s = NULL;
    char *text = NULL;
    int32_t *ids = NULL;
    size_t len = 0;
    int64_t n = 0;
    const char *what = "cannot load", *where = model;
    lq_status st = lq_model_load(model, &m);
    if (st == LQ_OK) st = lq_tokenizer_load_for_model(model, tok_path, lq_model_config(m)->vocab_size, &tok);
    if (st == LQ_OK) {
        what = "cannot read calibration text";
        where = text_path;
        st = lq_text_read_file(text_path, &text, &len);
    }
    if (st == LQ_OK) st = lq_tokenizer_encode(tok, text, len, false, false, NULL, 0, &n);
    if (st == LQ_ERR_INVALID_ARG) st = LQ_OK; /* cap 0: n is the count */
    if (st == LQ_OK && n < 2) st = lq_fail(LQ_ERR_FORMAT, "%lld tokens: too short to calibrate", (long long)n);
    if (st == LQ_OK && !(ids = malloc((size_t)n * sizeof *ids))) st = lq_fail(LQ_ERR_NOMEM, "out of memory");
    if (st == LQ_OK) st = lq_tokenizer_encode(tok, text, len, false, false, ids, n, &n);
    int ctx = CALIB_CTX;
    if (m && lq_model_config(m)->max_seq_len < ctx) ctx = lq_model_config(m)->max_seq_len;
    if (st == LQ_OK) {
        what = "cannot calibrate";
        where = model;
        st = lq_session_create(m, ctx, pool, &s);
    }
    if (st == LQ_OK) st = lq_imatrix_create(out);
    if (st == LQ_OK) {
        int32_t bos = lq_tokenizer_add_bos_default(tok) ? lq_tokenizer_bos(tok) : -1;
        st = lq_imatrix_collect(m, s, ids, n < max_tokens ? n : max_tokens, ctx, bos, *out);
    }
    lq_session_free(s);
    free(ids);
    free(text);
    lq_tokenizer_free(tok);
    lq_model_free(m);
    if (st == LQ_OK) return 0;
    lq_imatrix_free(*out);
    *out = NULL;
    return tool_fail_at(what, where, st);
}

/* An imatrix file for the clip search; its GGUF names found by HF module name through the
 * model's architecture. Returns 0 or the exit code (the error printed). */
int ptq_load_imatrix(const char *model, const char *path, lq_imatrix **out) {
    lq_checkpoint *c = NULL;
    lq_status st = lq_imatrix_load(path, out);
    if (st != LQ_OK) return tool_fail_at("cannot read imatrix", path, st);
    st = lq_checkpoint_open(model, &c);
    if (st == LQ_OK) st = lq_imatrix_set_config(*out, lq_checkpoint_config(c));
    lq_checkpoint_close(c);
    if (st == LQ_OK) return 0;
    lq_imatrix_free(*out);
    *out = NULL;
    return tool_fail_at("cannot load", model, st);
}
