/* quant-recipe - validate and run YAML compression recipes (docs/RECIPES.md).
 *
 *   quant-recipe check RECIPE [--model DIR] [--json]
 *   quant-recipe run RECIPE --model DIR --out DIR [--force] [--threads N]
 *
 * check parses and validates the recipe (every error with file:line:col), and with --model prints
 * the plan: each stage, each modifier, the tensors it touches and the estimated output size.
 * run does everything check does before it starts any work, then runs the stages in order into an
 * atomic output directory that also receives the recipe and the tool version.
 */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libquant.h"
#include "libquant/lq_prune.h"
#include "libquant/lq_recipe.h"
#include "lq_eval.h"
#include "tool_cli.h"
#include "tool_progress.h"
#include "tool_outdir.h"
#include "quant-recipe/recipe_print.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: quant-recipe check RECIPE [--model DIR] [--json]\n"
            "       quant-recipe run RECIPE --model DIR --out DIR [--force] [--threads N]\n"
            "                        [--file TEXT] [--tokenizer FILE] [--bitmask] [--json]\n"
            "                        [--calib TEXT]... [--calib-samples N] [--calib-len L] [--calib-seed N]\n"
            "\n"
            "Validate (check) or run a YAML compression recipe in the llm-compressor shape\n"
            "(quant_stage: -> quant_modifiers: -> QuantizationModifier: {scheme: W4A16, ...}).\n"
            "Every error names file:line:column. Language reference: docs/RECIPES.md.\n"
            "\n"
            "  --model DIR   checkpoint (HF directory or llama2.c .bin): check prints which tensors\n"
            "                each modifier touches and the estimated output size\n"
            "  --out DIR     output directory (run); written atomically, with recipe.yaml and\n"
            "                quant-recipe.json (tool version, timings, stage results, report)\n"
            "  --force       replace an existing --out\n"
            "  --bitmask     run: magnitude / N:M pruning steps write compressed-tensors'\n"
            "                sparse-bitmask layouts instead of dense weights (the default, which\n"
            "                every loader reads; the tool prints which loaders read bitmasks)\n"
            "  --threads N   worker threads (run; default: all cores)\n"
            "  --file TEXT   run: text for the final baseline-vs-result report (default: the first\n"
            "                eval_stage's first file; none: sizes only)\n"
            "  --tokenizer F tokenizer for every model loaded (default: tokenizer.json in its dir)\n"
            "  --calib TEXT  run: calibration text of GPTQModifier, SparseGPTModifier and\n"
            "                WandaPruningModifier (repeatable; llm-compressor's oneshot dataset):\n"
            "                --calib-samples N windows (default 128) of --calib-len L tokens (default\n"
            "                512) drawn with --calib-seed (default 0); never an eval_stage's text\n"
            "  --json        check: the plan as JSON; run: quant-recipe.json on stdout\n"
            "  -h, --help    this text\n"
            "\n"
            "run executes the stages in order, each modifier streaming into a temporary directory\n"
            "inside the output's temp dir; the output is committed only when every stage, every\n"
            "eval_stage threshold included, has passed. It then prints the quant-eval --compare\n"
            "table for the input (baseline) and the result.\n"
            "Exit codes: 0 ok, 1 an eval_stage threshold failed (nothing written), 2 bad arguments\n"
            "or values, 3 bad recipe/model or not available in this build, 4 I/O.\n");
}

/* ---- run: what the library asks of the evaluation harness ----------------------------------------- */

typedef struct runner {
    const char *tokenizer;
    bool json;
    bool bitmask;               /* --bitmask: pruning steps write the sparse-bitmask layouts */
    lq_calib_source calib;      /* --calib: GPTQ / SparseGPT / Wanda modifiers */
    lq_pool *pool;
    tool_progress bar;
    char label[128];        /* the step the bar shows */
} runner;

static lq_status load_model(const runner *rn, const char *path, lq_model **m, lq_tokenizer **tok) {
    *m = NULL;
    *tok = NULL;
    LQ_TRY(lq_model_load(path, m));
    lq_status s = lq_eval_load_tokenizer(*m, path, rn->tokenizer, tok);
    if (s != LQ_OK) {
        lq_model_free(*m);
        *m = NULL;
    }
    return s;
}

/* A bar per step: a new label (a new step) restarts it. */
static void on_progress(void *user, int64_t done, int64_t total, const char *what) {
    runner *rn = user;
    if (what && strcmp(what, rn->label) != 0) {
        tool_progress_end(&rn->bar);
        snprintf(rn->label, sizeof rn->label, "%s", what);
        tool_progress_begin(&rn->bar, rn->label, total, !rn->json);
    }
    tool_progress_cb(&rn->bar, done, total, what);
}

static void on_note(void *user, const char *line) {
    runner *rn = user;
    tool_progress_end(&rn->bar);
    rn->label[0] = 0;
    if (!rn->json && line[0]) fprintf(stderr, "quant-recipe: %s\n", line);
}

static lq_status measure_compare(void *user, const char *baseline, const char *model, const char *file, int32_t ctx,
                                 bool per_line, const char *sep, lq_recipe_compare *out) {
    runner *rn = user;
    lq_model *bm = NULL, *mm = NULL;
    lq_tokenizer *bt = NULL, *mt = NULL;
    char *text = NULL;
    size_t len = 0;
    lq_kld_result k;
    lq_status s = load_model(rn, baseline, &bm, &bt);
    if (s == LQ_OK) s = load_model(rn, model, &mm, &mt);
    if (s == LQ_OK) s = lq_text_read_file(file, &text, &len);
    if (s == LQ_OK) {
        lq_ppl_opts o = {.n_ctx = ctx, .per_line = per_line, .separator = sep && sep[0] ? sep : NULL,
                         .progress = on_progress, .progress_user = rn};
        s = lq_eval_kl_divergence(bm, bt, mm, mt, rn->pool, text, len, &o, &k);
        on_note(rn, ""); /* ends the bar (an empty note prints nothing) */
    }
    if (s == LQ_OK)
        *out = (lq_recipe_compare){.base_ppl = k.base.ppl, .ppl = k.model.ppl, .delta_ppl = k.ppl_diff,
                                   .delta_ppl_pct = k.ppl_diff_pct, .kld_mean = k.kld_mean, .same_top = k.same_top,
                                   .n_scored = k.n_scored};
    free(text);
    lq_tokenizer_free(mt);
    lq_model_free(mm);
    lq_tokenizer_free(bt);
    lq_model_free(bm);
    return s;
}

static lq_status measure_summary(void *user, const char *path, lq_recipe_model_summary *out) {
    (void)user;
    lq_model *m = NULL;
    lq_model_info info;
    LQ_TRY(lq_model_load(path, &m));
    lq_status s = lq_eval_model_info(m, &info);
    lq_model_free(m);
    if (s == LQ_OK) {
        *out = (lq_recipe_model_summary){.disk_bytes = info.disk_bytes, .n_params = info.n_params,
                                         .bpw_linear = info.bpw_linear, .bpw_overall = info.bpw_overall};
        snprintf(out->format, sizeof out->format, "%s", info.format);
    }
    return s;
}

/* ---- run: the report -------------------------------------------------------------------------------- */

static double jnum(const json_t *o, const char *key) { return json_number_value(json_object_get(o, key)); }

/* The markdown table quant-eval --compare prints (without the speed columns). */
static void print_report(const json_t *rep) {
    const json_t *rows = json_object_get(rep, "rows");
    const char *file = json_string_value(json_object_get(rep, "file"));
    if (!rows) {
        printf("the recipe changed no weights: no comparison\n");
        return;
    }
    if (file)
        printf("file: %s (%s), baseline: %s (PPL %.4f)\n\n", file, json_string_value(json_object_get(rep, "mode")),
               json_string_value(json_object_get(json_array_get(rows, 0), "path")),
               jnum(json_array_get(rows, 0), "ppl"));
    else
        printf("no text to score (add an eval_stage or --file): size only\n\n");
    printf("| model | format | size MiB | bpw linear | bpw all | PPL | dPPL | dPPL %% | mean KLD | same top %% |\n");
    printf("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (size_t i = 0; i < json_array_size(rows); i++) {
        const json_t *r = json_array_get(rows, i);
        printf("| %s | %s | %.2f | %.2f | %.2f |", json_string_value(json_object_get(r, "name")),
               json_string_value(json_object_get(r, "format")), jnum(r, "disk_bytes") / (1024.0 * 1024.0),
               jnum(r, "bpw_linear"), jnum(r, "bpw_overall"));
        if (file)
            printf(" %.4f | %+.4f | %+.2f | %.6f | %.2f |\n", jnum(r, "ppl"), jnum(r, "delta_ppl"),
                   jnum(r, "delta_ppl_pct"), jnum(r, "kld_mean"), 100.0 * jnum(r, "same_top"));
        else
            printf(" - | - | - | - | - |\n");
    }
}

/* ---- run ------------------------------------------------------------------------------------------- */

/* The output may be none of the inputs, nor inside one (tool_outdir_check_inputs). */
static lq_status check_out(const lq_recipe *r, const char *recipe_path, const char *model, const char *tokenizer,
                           const char *report_file, const char *out) {
    const char *inputs[3 * 64 + 8];
    int ni = 0;
    inputs[ni++] = model;
    inputs[ni++] = recipe_path;
    if (tokenizer) inputs[ni++] = tokenizer;
    if (report_file) inputs[ni++] = report_file;
    for (int i = 0; i < r->n_stages && ni < (int)(sizeof inputs / sizeof *inputs) - 4; i++) {
        const lq_recipe_stage *st = &r->stages[i];
        if (st->kind == LQ_STAGE_EVAL) inputs[ni++] = st->eval.files[0];
        if (st->kind == LQ_STAGE_DISTILL) inputs[ni++] = st->distill.files[0];
        if (st->kind == LQ_STAGE_DISTILL && st->distill.teacher[0]) inputs[ni++] = st->distill.teacher;
    }
    inputs[ni] = NULL;
    return tool_outdir_check_inputs(out, inputs);
}

static int cmd_run(const lq_recipe *r, runner *rn, const char *model, const char *out, const char *report_file,
                   bool force) {
    tool_outdir od;
    lq_status s = tool_outdir_begin(&od, out, force);
    if (s != LQ_OK) return tool_fail_at("cannot create output", out, s);
    double t0 = lq_eval_now();
    lq_recipe_run_opts o = {.model = model, .tokenizer = rn->tokenizer, .work_dir = od.tmp, .out = out,
                            .report_file = report_file, .tool = "quant-recipe", .pool = rn->pool,
                            .measure = {.compare = measure_compare, .summary = measure_summary, .user = rn},
                            .progress = on_progress, .note = on_note, .user = rn,
                            .bitmask_output = rn->bitmask, .calib = rn->calib};
    lq_recipe_run_result res;
    s = lq_recipe_run(r, &o, &res);
    tool_progress_end(&rn->bar);
    if (s == LQ_OK) s = tool_outdir_commit(&od);
    int rc = 0;
    if (s != LQ_OK) {
        tool_outdir_abort(&od);
        /* a failed gate is a verdict on the result, not an error of the inputs: exit 1 */
        rc = res.gate_failed ? tool_error(1, "%s", lq_last_error()) : tool_fail(s);
    } else if (rn->json) {
        printf("%s\n", res.json);
        rc = tool_finish_stdout();
    } else {
        json_t *meta = json_loads(res.json, 0, NULL);
        print_report(json_object_get(meta, "report"));
        json_decref(meta);
        fprintf(stderr, "quant-recipe: wrote %s in %.2f s\n", out, lq_eval_now() - t0);
        if (rn->bitmask) fprintf(stderr, "quant-recipe: note: %s\n", lq_prune_bitmask_readers());
        rc = tool_finish_stdout();
    }
    free(res.json);
    return rc;
}

/* The --calib texts against the run: calibrating on the text a gate or the report scores would
 * flatter the result, and a calibrated modifier needs one. 0 or the exit code (the error printed). */
static int check_calib(const lq_recipe *r, const char *recipe_path, const char *const *calib, int n_calib,
                       const char *file, bool run) {
    int rc = 0;
    for (int k = 0; rc == 0 && k < n_calib; k++) {
        char a_real[PATH_MAX], b_real[PATH_MAX];
        if (!realpath(calib[k], a_real)) continue; /* missing: the run names it */
        if (file && realpath(file, b_real) && !strcmp(a_real, b_real))
            rc = tool_bad_args("--calib %s is also the report's --file: calibrate on other text", calib[k]);
        for (int i = 0; rc == 0 && i < r->n_stages; i++)
            for (int j = 0; rc == 0 && r->stages[i].kind == LQ_STAGE_EVAL && j < r->stages[i].eval.n_files; j++)
                if (realpath(r->stages[i].eval.files[j], b_real) && !strcmp(a_real, b_real))
                    rc = tool_bad_args("--calib %s is also scored by eval_stage '%s': calibrate on other text",
                                       calib[k], r->stages[i].name);
    }
    for (int i = 0; rc == 0 && run && n_calib == 0 && i < r->n_stages; i++)
        for (int j = 0; rc == 0 && j < r->stages[i].n_mods; j++)
            if (lq_modifier_needs_calibration(r->stages[i].mods[j].kind))
                rc = tool_bad_args("%s (at %s:%d:%d) needs calibration text: --calib FILE",
                                   lq_modifier_name(r->stages[i].mods[j].kind), recipe_path,
                                   r->stages[i].mods[j].pos.line, r->stages[i].mods[j].pos.col);
    return rc;
}

int main(int argc, char **argv) {
    tool_init("quant-recipe", usage);
    const char *cmd = NULL, *recipe_path = NULL, *model = NULL, *out = NULL, *file = NULL, *tokenizer = NULL;
    bool json = false, force = false, bitmask = false;
    int threads = 0, arg_rc = 0;
    const char *calib[16];
    lq_calib_source rc_calib = {.files = calib};
    tool_args a = tool_args_begin(argc, argv);
    while (tool_args_next(&a)) {
        if (tool_args_help(&a)) {
            usage(stdout);
            return 0;
        } else if (tool_args_flag(&a, "--json")) json = true;
        else if (tool_args_flag(&a, "--force")) force = true;
        else if (tool_args_flag(&a, "--bitmask")) bitmask = true;
        else if (tool_args_value(&a, "--model")) model = a.value;
        else if (tool_args_value(&a, "--out")) out = a.value;
        else if (tool_args_value(&a, "--file")) file = a.value;
        else if (tool_args_value(&a, "--tokenizer")) tokenizer = a.value;
        else if (tool_args_value(&a, "--calib")) {
            if (rc_calib.n_files == 16) return tool_bad_args("at most 16 --calib files");
            calib[rc_calib.n_files++] = a.value;
        } else if (tool_calib_sample_arg(&a, &rc_calib, &arg_rc)) {
            if (arg_rc) return arg_rc;
        } else if (tool_args_value(&a, "--threads")) {
            if (!tool_parse_int(a.value, 1, &threads)) return tool_args_bad_value(&a);
        } else if (tool_args_positional(&a) && !cmd) cmd = a.arg;
        else if (tool_args_positional(&a) && !recipe_path) recipe_path = a.arg;
        else return tool_args_unknown(&a);
    }
    if (!cmd) return tool_bad_args("missing command (check or run)");
    const bool run = !strcmp(cmd, "run");
    if (!run && strcmp(cmd, "check") != 0) return tool_bad_args("unknown command '%s' (check or run)", cmd);
    if (!recipe_path) return tool_bad_args("missing RECIPE");
    if (run && (!model || !out)) return tool_bad_args("run needs --model and --out");
    if (!run && (file || out || rc_calib.n_files)) return tool_bad_args("--file, --out and --calib go with run");
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }

    lq_recipe r;
    lq_status s = lq_recipe_load(recipe_path, &r);
    if (s != LQ_OK) return tool_fail(s);
    lq_checkpoint *ck = NULL;
    lq_plan plan = {0};
    bool have_plan = false;
    if (model) {
        if ((s = lq_checkpoint_open(model, &ck)) != LQ_OK) {
            lq_recipe_free(&r);
            return tool_fail_at("cannot open model", model, s);
        }
        if ((s = lq_recipe_plan(&r, ck, &plan)) != LQ_OK) {
            lq_checkpoint_close(ck);
            lq_recipe_free(&r);
            return tool_fail(s);
        }
        have_plan = true;
    }
    /* The plan is worth printing even when this build cannot run every modifier yet. */
    lq_status avail = lq_recipe_check_available(&r);
    char avail_msg[512];
    snprintf(avail_msg, sizeof avail_msg, "%s", lq_last_error());
    int rc = 0;
    if (!run) {
        if (json) recipe_print_json(&r, have_plan ? &plan : NULL, avail);
        else recipe_print_text(&r, have_plan ? &plan : NULL, ck);
        rc = tool_finish_stdout();
    }
    if (rc == 0 && avail != LQ_OK) rc = tool_error(tool_exit_code(avail), "%s", avail_msg);
    /* the same check run makes before its first step: check finds what run would */
    if (rc == 0 && (s = lq_recipe_check_inputs(&r, model, tokenizer, file)) != LQ_OK) rc = tool_fail(s);
    if (rc == 0 && run && (s = check_out(&r, recipe_path, model, tokenizer, file, out)) != LQ_OK) rc = tool_fail(s);
    if (rc == 0) rc = check_calib(&r, recipe_path, calib, rc_calib.n_files, file, run);
    if (rc == 0 && run) {
        lq_checkpoint_close(ck); /* the stages open the model themselves */
        ck = NULL;
        runner rn = {.tokenizer = tokenizer, .json = json, .bitmask = bitmask, .pool = lq_pool_create(threads),
                     .calib = rc_calib};
        if (!rn.pool) rc = tool_error(1, "cannot start %d threads", threads);
        else rc = cmd_run(&r, &rn, model, out, file, force);
        lq_pool_free(rn.pool);
    }
    lq_plan_free(&plan);
    lq_checkpoint_close(ck);
    lq_recipe_free(&r);
    return rc;
}
