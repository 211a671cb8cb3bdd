/* kld.c - quant-eval --kld BASELINE (eval_modes.h): the baseline and --model over the same
 * chunks (lq_eval_kl_divergence), printed as llama-perplexity --kl-divergence prints it, or as
 * one JSON object. */
#include "quant-eval/eval_modes.h"
#include "quant-eval/kv_report.h"

#include "tool_cli.h"
#include "tool_model.h"
#include "tool_progress.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

static json_t *kld_json(const lq_kld_result *r) {
    json_t *j = json_object();
    json_object_set_new(j, "tokens_scored", json_integer(r->n_scored));
    json_object_set_new(j, "tokens_total", json_integer(r->base.n_tokens));
    json_object_set_new(j, "chunks", json_integer(r->base.n_chunks));
    json_object_set_new(j, "ppl", json_real(r->model.ppl));
    json_object_set_new(j, "ppl_stderr", json_real(r->model.ppl_stderr));
    json_object_set_new(j, "ppl_base", json_real(r->base.ppl));
    json_object_set_new(j, "ppl_base_stderr", json_real(r->base.ppl_stderr));
    json_object_set_new(j, "nll_sum", json_real(r->model.nll_sum));
    json_object_set_new(j, "nll_sum_base", json_real(r->base.nll_sum));
    json_object_set_new(j, "delta_ppl", json_real(r->ppl_diff));
    json_object_set_new(j, "delta_ppl_stderr", json_real(r->ppl_diff_stderr));
    json_object_set_new(j, "delta_ppl_pct", json_real(r->ppl_diff_pct));
    json_object_set_new(j, "ppl_ratio", json_real(r->ppl_ratio));
    json_object_set_new(j, "ln_ppl_ratio", json_real(r->ln_ppl_ratio));
    json_object_set_new(j, "ln_ppl_ratio_stderr", json_real(r->ln_ppl_ratio_stderr));
    json_object_set_new(j, "ln_ppl_correlation", json_real(r->ln_ppl_cor));
    json_t *k = json_object();
    json_object_set_new(k, "mean", json_real(r->kld_mean));
    json_object_set_new(k, "stderr", json_real(r->kld_stderr));
    json_object_set_new(k, "min", json_real(r->kld_min));
    json_object_set_new(k, "p1", json_real(r->kld_p1));
    json_object_set_new(k, "p5", json_real(r->kld_p5));
    json_object_set_new(k, "p10", json_real(r->kld_p10));
    json_object_set_new(k, "median", json_real(r->kld_median));
    json_object_set_new(k, "p90", json_real(r->kld_p90));
    json_object_set_new(k, "p95", json_real(r->kld_p95));
    json_object_set_new(k, "p99", json_real(r->kld_p99));
    json_object_set_new(k, "p99_9", json_real(r->kld_p999));
    json_object_set_new(k, "max", json_real(r->kld_max));
    json_object_set_new(j, "kld", k);
    json_object_set_new(j, "same_top", json_real(r->same_top));
    json_object_set_new(j, "same_top_stderr", json_real(r->same_top_stderr));
    json_t *p = json_object();
    json_object_set_new(p, "mean", json_real(r->dp_mean));
    json_object_set_new(p, "stderr", json_real(r->dp_stderr));
    json_object_set_new(p, "rms", json_real(r->dp_rms));
    json_object_set_new(p, "rms_stderr", json_real(r->dp_rms_stderr));
    json_object_set_new(j, "delta_p", p);
    json_t *lr = json_object();
    json_object_set_new(lr, "p1", json_real(r->lr_p1));
    json_object_set_new(lr, "p5", json_real(r->lr_p5));
    json_object_set_new(lr, "p10", json_real(r->lr_p10));
    json_object_set_new(j, "ln_p_ratio", lr);
    json_object_set_new(j, "seconds", json_real(r->seconds));
    return j;
}

static void kld_print(const lq_kld_result *r) {
    printf("tokens scored: %lld (%lld chunks), %.3f s\n\n", (long long)r->n_scored,
           (long long)r->base.n_chunks, r->seconds);
    printf("====== Perplexity statistics ======\n");
    printf("Mean PPL(Q)                   : %10.6f +/- %10.6f\n", r->model.ppl,
           r->model.ppl_stderr);
    printf("Mean PPL(base)                : %10.6f +/- %10.6f\n", r->base.ppl, r->base.ppl_stderr);
    printf("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", 100.0 * r->ln_ppl_cor);
    printf("Mean ln(PPL(Q)/PPL(base))     : %10.6f +/- %10.6f\n", r->ln_ppl_ratio,
           r->ln_ppl_ratio_stderr);
    printf("Mean PPL(Q)/PPL(base)         : %10.6f +/- %10.6f\n", r->ppl_ratio,
           r->ppl_ratio * r->ln_ppl_ratio_stderr);
    printf("Mean PPL(Q)-PPL(base)         : %10.6f +/- %10.6f (%+.3f%%)\n\n", r->ppl_diff,
           r->ppl_diff_stderr, r->ppl_diff_pct);
    printf("====== KL divergence statistics ======\n");
    printf("Mean    KLD: %10.6f +/- %10.6f\n", r->kld_mean, r->kld_stderr);
    printf("Maximum KLD: %10.6f\n", r->kld_max);
    printf("99.9%%   KLD: %10.6f\n", r->kld_p999);
    printf("99.0%%   KLD: %10.6f\n", r->kld_p99);
    printf("95.0%%   KLD: %10.6f\n", r->kld_p95);
    printf("90.0%%   KLD: %10.6f\n", r->kld_p90);
    printf("Median  KLD: %10.6f\n", r->kld_median);
    printf("10.0%%   KLD: %10.6f\n", r->kld_p10);
    printf(" 5.0%%   KLD: %10.6f\n", r->kld_p5);
    printf(" 1.0%%   KLD: %10.6f\n", r->kld_p1);
    printf("Minimum KLD: %10.6f\n\n", r->kld_min);
    printf("====== Token probability statistics ======\n");
    printf("Mean    dp: %6.3f +/- %5.3f %%\n", 100.0 * r->dp_mean, 100.0 * r->dp_stderr);
    printf("RMS dp    : %6.3f +/- %5.3f %%\n", 100.0 * r->dp_rms, 100.0 * r->dp_rms_stderr);
    printf("Same top p: %6.3f +/- %5.3f %%\n", 100.0 * r->same_top, 100.0 * r->same_top_stderr);
    printf(" 1.0%%   ln(q/p) of the correct token: %10.6f\n", r->lr_p1);
    printf(" 5.0%%   ln(q/p) of the correct token: %10.6f\n", r->lr_p5);
    printf("10.0%%   ln(q/p) of the correct token: %10.6f\n", r->lr_p10);
}

int quant_eval_run_kld(const quant_eval_args *a, const lq_model *m, lq_pool *pool) {
    lq_model *base = NULL;
    lq_tokenizer *btok = NULL, *tok = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = tool_load_model(a->kld, a->base_tokenizer, &base, &btok);
    if (rc) return rc;
    /* the baseline is the exact model: an f32 cache even where its checkpoint has a kv_cache_scheme */
    lq_status s0 = lq_model_set_kv_cache(base, LQ_KV_F32);
    if (s0 != LQ_OK) rc = tool_fail(s0);
    lq_status s = rc ? LQ_OK : lq_eval_load_tokenizer(m, a->model, a->tokenizer, &tok);
    if (s != LQ_OK) rc = tool_fail(s);
    if (!rc) rc = quant_eval_read_text(a->file, &text, &len);
    lq_kld_result r;
    if (!rc) {
        tool_progress bar;
        lq_ppl_opts o = quant_eval_ppl_opts(a, &bar, "kl-divergence");
        o.base_f32_act = a->base_f32_act;
        s = lq_eval_kl_divergence(base, btok, m, tok, pool, text, len, &o, &r);
        tool_progress_end(&bar);
        if (s != LQ_OK) rc = tool_error(tool_exit_code(s), "%s: %s", a->file, lq_last_error());
    }
    if (!rc) {
        if (a->json) {
            json_t *j = kld_json(&r);
            json_object_set_new(j, "model", json_string(a->model));
            json_object_set_new(j, "baseline", json_string(a->kld));
            json_object_set_new(j, "base_f32_act", json_boolean(a->base_f32_act));
            json_object_set_new(j, "file", json_string(a->file));
            json_object_set_new(j, "mode", json_string(a->per_line ? "per-line" : "chunks"));
            json_object_set_new(j, "threads", json_integer(lq_pool_size(pool)));
            quant_eval_kv_json(j, m);
            tool_print_json(j);
        } else {
            printf("model: %s\nbaseline: %s\n", a->model, a->kld);
            quant_eval_kv_print(a, m);
            kld_print(&r);
        }
    }
    free(text);
    lq_tokenizer_free(tok);
    lq_tokenizer_free(btok);
    lq_model_free(base);
    return rc;
}
