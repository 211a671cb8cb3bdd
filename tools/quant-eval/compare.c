/* compare.c - quant-eval --compare DIR... (eval_modes.h): one row per checkpoint (format, size,
 * bits per weight, PPL and KLD against the baseline, with --draft-eval draft acceptance, with
 * --bench speed), as a Markdown table, one JSON object, and with --html a page (report_html.h). */
#include "quant-eval/eval_modes.h"

#include "lq_bandwidth.h"
#include "report_html.h"
#include "tool_cli.h"
#include "tool_model.h"
#include "tool_progress.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOOL "quant-eval"

typedef struct compare_row {
    const char *path;
    lq_model_info info;
    bool is_baseline;
    double base_ppl;  /* the baseline's PPL on the same tokens */
    double ppl, ppl_stderr, delta_ppl, delta_ppl_pct, kld_mean, kld_stderr, same_top;
    int64_t n_scored;
    bool benched;
    lq_bench_result bench;
    bool drafted;                 /* --draft-eval: the row as draft of the baseline */
    lq_draft_eval_result draft;
} compare_row;

static const char *base_name(const char *path) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;   /* "dir/" names the same as "dir" */
    static char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%.*s", (int)n, path);
    const char *slash = strrchr(buf, '/');
    return slash && slash[1] ? slash + 1 : buf;
}

static void row_name(const char *path, char *out, size_t cap) {
    snprintf(out, cap, "%s", base_name(path));
}

/* Quality (and speed) of one checkpoint against the loaded baseline. */
static int compare_one(const quant_eval_args *a, const lq_model *base,
                       const lq_tokenizer *btok, bool is_base, const char *text, size_t len,
                       lq_pool *pool, compare_row *row) {
    lq_model *m = NULL;
    lq_tokenizer *tok = NULL;
    int rc = tool_load_model(row->path, a->tokenizer, &m, &tok);
    if (rc) return rc;
    lq_status s = lq_eval_model_info(m, &row->info);
    tool_progress bar;
    lq_ppl_opts o = quant_eval_ppl_opts(a, &bar, "compare");
    row->is_baseline = is_base;
    if (s == LQ_OK && is_base) {
        /* KL of a distribution against itself is 0 and every argmax agrees: no second pass */
        lq_ppl_result p;
        s = lq_eval_perplexity(m, tok, pool, text, len, &o, &p);
        if (s == LQ_OK) {
            row->ppl = row->base_ppl = p.ppl;
            row->ppl_stderr = p.ppl_stderr;
            row->same_top = 1.0;
            row->n_scored = p.n_scored;
        }
    } else if (s == LQ_OK) {
        lq_kld_result r;
        s = lq_eval_kl_divergence(base, btok, m, tok, pool, text, len, &o, &r);
        if (s == LQ_OK) {
            row->ppl = r.model.ppl;
            row->base_ppl = r.base.ppl;
            row->ppl_stderr = r.model.ppl_stderr;
            row->delta_ppl = r.ppl_diff;
            row->delta_ppl_pct = r.ppl_diff_pct;
            row->kld_mean = r.kld_mean;
            row->kld_stderr = r.kld_stderr;
            row->same_top = r.same_top;
            row->n_scored = r.n_scored;
        }
    }
    tool_progress_end(&bar);
    if (s == LQ_OK && a->draft_cmp && is_base) {
        /* a model drafting for itself agrees everywhere: no second pass (as same_top = 1) */
        row->drafted = true;
        row->draft = (lq_draft_eval_result){.accept_rate = 1, .accept_pos = 1, .alpha = 1};
    } else if (s == LQ_OK && a->draft_cmp) {
        lq_draft_eval_opts d = quant_eval_draft_opts(a);
        tool_progress_begin(&bar, "draft-eval", 1, !a->json);
        d.chunks.progress = tool_progress_cb;
        d.chunks.progress_user = &bar;
        s = lq_eval_draft(base, btok, m, tok, pool, text, len, &d, &row->draft);
        tool_progress_end(&bar);
        row->drafted = s == LQ_OK;
    }
    if (s == LQ_OK && a->bench) {
        tool_progress_begin(&bar, "bench", 1, !a->json);
        lq_bench_opts bo = {.n_prompt = a->n_prompt, .n_gen = a->n_gen, .reps = a->reps,
                            .seed = 42, .progress = tool_progress_cb, .progress_user = &bar};
        s = lq_eval_bench(m, pool, &bo, &row->bench);
        tool_progress_end(&bar);
        row->benched = s == LQ_OK;
    }
    if (s != LQ_OK) rc = tool_fail_at("cannot evaluate", row->path, s);
    lq_tokenizer_free(tok);
    lq_model_free(m);
    return rc;
}

static double bw_ratio(const compare_row *r, double bw_gbs) {
    if (!r->benched || bw_gbs <= 0) return 0.0;
    return (double)r->bench.weight_bytes_per_token * r->bench.decode.median / 1e9 / bw_gbs;
}

static void compare_markdown(const quant_eval_args *a, const compare_row *rows, int n,
                             double base_ppl, const char *base_path, double bw_gbs) {
    printf("file: %s (%s), baseline: %s (PPL %.4f)\n\n", a->file,
           a->per_line ? "per-line" : "chunks", base_path, base_ppl);
    printf("| model | format | size MiB | bpw linear | bpw all | PPL | dPPL | dPPL %% | "
           "mean KLD | same top %% |");
    if (a->draft_cmp) printf(" accept %% | alpha |");
    if (a->bench) printf(" pp%d tok/s | tg%d tok/s | tg / BW bound |", a->n_prompt, a->n_gen);
    printf("\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    if (a->draft_cmp) printf(" ---: | ---: |");
    if (a->bench) printf(" ---: | ---: | ---: |");
    printf("\n");
    for (int i = 0; i < n; i++) {
        const compare_row *r = &rows[i];
        char name[PATH_MAX];
        row_name(r->path, name, sizeof name);
        printf("| %s | %s | %.2f | %.2f | %.2f | %.4f | %+.4f | %+.2f | %.6f | %.2f |", name,
               r->info.format, r->info.disk_bytes / (1024.0 * 1024.0), r->info.bpw_linear,
               r->info.bpw_overall, r->ppl, r->delta_ppl, r->delta_ppl_pct, r->kld_mean,
               100.0 * r->same_top);
        if (a->draft_cmp) printf(" %.2f | %.4f |", 100.0 * r->draft.accept_rate, r->draft.alpha);
        if (a->bench)
            printf(" %.1f | %.1f | %.0f%% |", r->bench.prefill.median, r->bench.decode.median,
                   100.0 * bw_ratio(r, bw_gbs));
        printf("\n");
    }
    if (a->bench)
        printf("\nread bandwidth %.2f GB/s (measured in this run), %d threads\n", bw_gbs,
               n ? rows[0].bench.threads : 0);
    if (a->draft_cmp)
        printf("\naccept %%: greedy speculative acceptance as draft of the baseline (draft-max %d, "
               "%d-token prompts, %d generated per chunk); alpha: mean sum min(p, q)\n",
               a->draft_max, a->draft_prompt, a->draft_gen);
}

static void compare_json(const quant_eval_args *a, const compare_row *rows, int n,
                         double base_ppl, const char *base_path, double bw_gbs, lq_pool *pool) {
    json_t *j = json_object();
    json_object_set_new(j, "file", json_string(a->file));
    json_object_set_new(j, "mode", json_string(a->per_line ? "per-line" : "chunks"));
    json_object_set_new(j, "baseline", json_string(base_path));
    json_object_set_new(j, "baseline_ppl", json_real(base_ppl));
    json_object_set_new(j, "threads", json_integer(lq_pool_size(pool)));
    if (a->bench) {
        json_object_set_new(j, "n_prompt", json_integer(a->n_prompt));
        json_object_set_new(j, "n_gen", json_integer(a->n_gen));
        json_object_set_new(j, "reps", json_integer(a->reps));
        json_object_set_new(j, "bandwidth_gb_s", json_real(bw_gbs));
    }
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        const compare_row *r = &rows[i];
        char name[PATH_MAX];
        row_name(r->path, name, sizeof name);
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(name));
        json_object_set_new(o, "path", json_string(r->path));
        json_object_set_new(o, "baseline", json_boolean(r->is_baseline));
        json_object_set_new(o, "format", json_string(r->info.format));
        json_object_set_new(o, "disk_bytes", json_integer((json_int_t)r->info.disk_bytes));
        json_object_set_new(o, "params", json_integer(r->info.n_params));
        json_object_set_new(o, "bpw_linear", json_real(r->info.bpw_linear));
        json_object_set_new(o, "bpw_overall", json_real(r->info.bpw_overall));
        json_object_set_new(o, "ppl", json_real(r->ppl));
        json_object_set_new(o, "ppl_stderr", json_real(r->ppl_stderr));
        json_object_set_new(o, "delta_ppl", json_real(r->delta_ppl));
        json_object_set_new(o, "delta_ppl_pct", json_real(r->delta_ppl_pct));
        json_object_set_new(o, "kld_mean", json_real(r->kld_mean));
        json_object_set_new(o, "kld_stderr", json_real(r->kld_stderr));
        json_object_set_new(o, "same_top", json_real(r->same_top));
        json_object_set_new(o, "tokens_scored", json_integer(r->n_scored));
        if (r->drafted) {
            json_object_set_new(o, "draft_acceptance_rate", json_real(r->draft.accept_rate));
            json_object_set_new(o, "draft_acceptance_per_position", json_real(r->draft.accept_pos));
            json_object_set_new(o, "draft_alpha", json_real(r->draft.alpha));
            json_object_set_new(o, "draft_mean_accepted_length", json_real(r->draft.mean_accepted));
        }
        if (r->benched) {
            json_object_set_new(o, "prefill_tok_s", json_real(r->bench.prefill.median));
            json_object_set_new(o, "decode_tok_s", json_real(r->bench.decode.median));
            json_object_set_new(o, "weight_bytes_per_token",
                                json_integer((json_int_t)r->bench.weight_bytes_per_token));
            json_object_set_new(o, "decode_bandwidth_ratio", json_real(bw_ratio(r, bw_gbs)));
        } else {
            json_object_set_new(o, "prefill_tok_s", json_null());
            json_object_set_new(o, "decode_tok_s", json_null());
        }
        json_array_append_new(arr, o);
    }
    json_object_set_new(j, "rows", arr);
    tool_print_json(j);
}

/* The --html page: the same rows as the table. */
static int compare_html(const quant_eval_args *a, const compare_row *rows, int n,
                        double base_ppl, const char *base_path, double bw_gbs, lq_pool *pool) {
    lq_report_row *rr = calloc((size_t)n, sizeof *rr);
    char (*names)[256] = calloc((size_t)n, sizeof *names);
    if (!rr || !names) {
        free(rr);
        free(names);
        return tool_error(1, "cannot allocate the report rows");
    }
    for (int i = 0; i < n; i++) {
        const compare_row *r = &rows[i];
        row_name(r->path, names[i], sizeof names[i]);
        rr[i] = (lq_report_row){
            .name = names[i], .path = r->path, .format = r->info.format,
            .is_baseline = r->is_baseline, .disk_bytes = r->info.disk_bytes,
            .bpw_linear = r->info.bpw_linear, .bpw_overall = r->info.bpw_overall, .ppl = r->ppl,
            .ppl_stderr = r->ppl_stderr, .delta_ppl = r->delta_ppl,
            .delta_ppl_pct = r->delta_ppl_pct, .kld_mean = r->kld_mean,
            .kld_stderr = r->kld_stderr, .same_top = r->same_top, .benched = r->benched,
            .prefill_tok_s = r->bench.prefill.median, .decode_tok_s = r->bench.decode.median,
            .bw_ratio = bw_ratio(r, bw_gbs), .drafted = r->drafted,
            .draft_accept = r->draft.accept_rate, .draft_alpha = r->draft.alpha};
    }
    lq_report rep = {.file = a->file, .mode = a->per_line ? "per-line" : "chunks",
                     .baseline = base_path, .baseline_ppl = base_ppl,
                     .threads = lq_pool_size(pool), .bench = a->bench, .n_prompt = a->n_prompt,
                     .n_gen = a->n_gen, .bandwidth_gb_s = bw_gbs, .command = a->command,
                     .draft_eval = a->draft_cmp, .draft_max = a->draft_max,
                     .rows = rr, .n_rows = n};
    lq_status s = lq_report_write_html(&rep, a->html);
    free(rr);
    free(names);
    return s == LQ_OK ? 0 : tool_fail_at("cannot write the report", a->html, s);
}

int quant_eval_run_compare(const quant_eval_args *a, lq_pool *pool) {
    const char *base_path = a->baseline ? a->baseline : a->dirs[0];
    lq_model *base = NULL;
    lq_tokenizer *btok = NULL;
    char *text = NULL;
    size_t len = 0;
    compare_row *rows = calloc((size_t)a->n_dirs, sizeof *rows);
    if (!rows) return tool_error(1, "cannot allocate %d rows", a->n_dirs);
    int rc = tool_load_model(base_path, a->tokenizer, &base, &btok);
    if (!rc) rc = quant_eval_read_text(a->file, &text, &len);
    double base_ppl = 0;
    for (int i = 0; i < a->n_dirs && !rc; i++) {
        rows[i].path = a->dirs[i];
        bool is_base = strcmp(a->dirs[i], base_path) == 0;
        if (!a->json && isatty(2)) fprintf(stderr, "%s: evaluating %s\n", TOOL, a->dirs[i]);
        rc = compare_one(a, base, btok, is_base, text, len, pool, &rows[i]);
        if (!rc) base_ppl = rows[i].base_ppl; /* the same for every row: same tokens */
    }
    double bw_gbs = 0;
    /* measured after every model ran, so its 512 MB buffer does not inflate their peak RSS */
    if (!rc && a->bench) bw_gbs = lq_measure_read_bandwidth(pool, BW_BYTES, BW_REPS);
    if (!rc) {
        if (a->json) compare_json(a, rows, a->n_dirs, base_ppl, base_path, bw_gbs, pool);
        else compare_markdown(a, rows, a->n_dirs, base_ppl, base_path, bw_gbs);
        if (a->html) rc = compare_html(a, rows, a->n_dirs, base_ppl, base_path, bw_gbs, pool);
    }
    free(rows);
    free(text);
    lq_tokenizer_free(btok);
    lq_model_free(base);
    return rc;
}
