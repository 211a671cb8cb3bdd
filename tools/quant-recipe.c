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
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libquant.h"
#include "libquant/lq_recipe.h"
#include "lq_eval.h"
#include "tool_cli.h"
#include "tool_outdir.h"
#if LQ_RECIPE_HAVE_PTQ
#include "libquant/lq_ptq.h"
#endif

static void usage(FILE *f) {
    fprintf(f,
            "usage: quant-recipe check RECIPE [--model DIR] [--json]\n"
            "       quant-recipe run RECIPE --model DIR --out DIR [--force] [--threads N]\n"
            "\n"
            "Validate (check) or run a YAML compression recipe in the llm-compressor shape\n"
            "(quant_stage: -> quant_modifiers: -> QuantizationModifier: {scheme: W4A16, ...}).\n"
            "Every error names file:line:column. Language reference: docs/RECIPES.md.\n"
            "\n"
            "  --model DIR   checkpoint (HF directory or llama2.c .bin): check prints which tensors\n"
            "                each modifier touches and the estimated output size\n"
            "  --out DIR     output directory (run); written atomically, with recipe.yaml and\n"
            "                quant-recipe.json (tool version)\n"
            "  --force       replace an existing --out\n"
            "  --threads N   worker threads (run; default: all cores)\n"
            "  --json        check: print the plan as JSON\n"
            "  -h, --help    this text\n");
}

/* ---- printing the plan -------------------------------------------------------------------------- */

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

static void describe_modifier(FILE *f, const lq_recipe_modifier *m) {
    fprintf(f, "%s", lq_modifier_name(m->kind));
    if (m->scheme != LQ_SCHEME_NONE) fprintf(f, " scheme=%s", lq_recipe_scheme_name(m->scheme));
    if (m->group_size > 0) fprintf(f, " group_size=%d", m->group_size);
    if (m->kind == LQ_MOD_STRUCTURED_PRUNING)
        fprintf(f, " structure=%s", m->structure == LQ_PRUNE_FFN ? "ffn" : "heads");
    if (m->sparsity >= 0 && m->kind != LQ_MOD_QUANTIZATION && m->kind != LQ_MOD_GPTQ && m->kind != LQ_MOD_AWQ &&
        m->kind != LQ_MOD_SMOOTHQUANT && m->kind != LQ_MOD_CONSTANT_PRUNING)
        fprintf(f, " sparsity=%g", m->sparsity);
    if (m->mask == LQ_MASK_NM) fprintf(f, " mask=%d:%d", m->mask_n, m->mask_m);
    if (m->kind == LQ_MOD_SMOOTHQUANT) fprintf(f, " smoothing_strength=%g", m->smoothing_strength);
    if (m->n_targets) {
        fprintf(f, " targets=[");
        for (int i = 0; i < m->n_targets; i++) fprintf(f, "%s%s", i ? ", " : "", m->targets[i]);
        fprintf(f, "]");
    }
    if (m->n_ignore) {
        fprintf(f, " ignore=[");
        for (int i = 0; i < m->n_ignore; i++) fprintf(f, "%s%s", i ? ", " : "", m->ignore[i]);
        fprintf(f, "]");
    }
}

static void print_text(const lq_recipe *r, const lq_plan *p, const lq_checkpoint *ck) {
    printf("recipe %s: %d stage%s\n", r->path, r->n_stages, r->n_stages == 1 ? "" : "s");
    int k = 0;
    for (int i = 0; i < r->n_stages; i++) {
        const lq_recipe_stage *st = &r->stages[i];
        printf("stage %d: %s (line %d)\n", i + 1, st->name, st->pos.line);
        if (st->kind == LQ_STAGE_EVAL) {
            printf("  eval: %d file%s, ctx %d%s", st->eval.n_files, st->eval.n_files == 1 ? "" : "s",
                   st->eval.ctx, st->eval.per_line ? ", per line" : "");
            if (st->eval.max_ppl_increase >= 0) printf(", max PPL increase %.4g%%", st->eval.max_ppl_increase * 100);
            if (st->eval.max_kld >= 0) printf(", max KLD %.4g", st->eval.max_kld);
            printf("\n");
        } else if (st->kind == LQ_STAGE_DISTILL) {
            printf("  distill: %d file%s, ctx %d, top_k %d, %d steps, lr %g\n", st->distill.n_files,
                   st->distill.n_files == 1 ? "" : "s", st->distill.ctx, st->distill.top_k,
                   st->distill.steps, st->distill.lr);
        }
        for (int j = 0; j < st->n_mods; j++, k++) {
            const lq_recipe_modifier *m = &st->mods[j];
            printf("  %s: ", m->group);
            describe_modifier(stdout, m);
            printf("%s\n", lq_modifier_available(m->kind) ? "" : "  [not available in this build]");
            if (!p) continue;
            const lq_plan_modifier *pm = &p->mods[k];
            printf("    touches %lld tensor%s, %lld parameters:\n", (long long)pm->n_tensors,
                   pm->n_tensors == 1 ? "" : "s", (long long)pm->params);
            for (int64_t t = 0; t < pm->n_tensors; t++)
                printf("      %s [%lld, %lld]\n", pm->tensors[t].name, (long long)pm->tensors[t].rows,
                       (long long)pm->tensors[t].cols);
        }
    }
    if (p) {
        printf("model %s: %lld parameters, %.3f MB\n", lq_checkpoint_path(ck), (long long)p->params_total,
               p->bytes_in / 1e6);
        printf("estimated output: %.3f MB (%.2fx smaller), %lld parameters quantized\n", p->bytes_out / 1e6,
               p->bytes_out ? (double)p->bytes_in / (double)p->bytes_out : 0.0, (long long)p->params_quantized);
    }
}

static void print_json(const lq_recipe *r, const lq_plan *p, lq_status avail) {
    printf("{\"recipe\": ");
    json_str(stdout, r->path);
    printf(", \"available\": %s, \"stages\": [", avail == LQ_OK ? "true" : "false");
    int k = 0;
    for (int i = 0; i < r->n_stages; i++) {
        const lq_recipe_stage *st = &r->stages[i];
        printf("%s{\"name\": ", i ? ", " : "");
        json_str(stdout, st->name);
        printf(", \"kind\": \"%s\", \"modifiers\": [",
               st->kind == LQ_STAGE_EVAL ? "eval" : st->kind == LQ_STAGE_DISTILL ? "distill" : "modifiers");
        for (int j = 0; j < st->n_mods; j++, k++) {
            const lq_recipe_modifier *m = &st->mods[j];
            printf("%s{\"modifier\": \"%s\", \"line\": %d, \"available\": %s", j ? ", " : "",
                   lq_modifier_name(m->kind), m->pos.line, lq_modifier_available(m->kind) ? "true" : "false");
            if (m->scheme != LQ_SCHEME_NONE) printf(", \"scheme\": \"%s\"", lq_recipe_scheme_name(m->scheme));
            if (p) {
                const lq_plan_modifier *pm = &p->mods[k];
                printf(", \"params\": %lld, \"tensors\": [", (long long)pm->params);
                for (int64_t t = 0; t < pm->n_tensors; t++) {
                    if (t) printf(", ");
                    json_str(stdout, pm->tensors[t].name);
                }
                printf("]");
            }
            printf("}");
        }
        printf("]}");
    }
    printf("]");
    if (p)
        printf(", \"params_total\": %lld, \"params_quantized\": %lld, \"bytes_in\": %llu, \"bytes_out_est\": %llu",
               (long long)p->params_total, (long long)p->params_quantized, (unsigned long long)p->bytes_in,
               (unsigned long long)p->bytes_out);
    printf("}\n");
}

/* ---- run ---------------------------------------------------------------------------------------- */

static lq_status copy_file(const char *from, const char *to) {
    FILE *f = fopen(from, "rb");
    if (!f) return lq_fail(LQ_ERR_IO, "cannot open %s: %s", from, strerror(errno));
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    char buf[8192];
    size_t k;
    while (m && (k = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, k, m);
    fclose(f);
    if (!m || fclose(m) != 0) {
        free(text);
        return lq_fail(LQ_ERR_NOMEM, "out of memory copying %s", from);
    }
    lq_status s = tool_write_text(to, text);
    free(text);
    return s;
}

/* One stage. Each modifier calls the library API that implements it; check has already refused
 * any this build lacks, so reaching the default branch is a programming error. */
static lq_status run_stage(const lq_recipe_stage *st, const char *model, const char *out_tmp, int threads) {
    (void)model;
    (void)out_tmp;
    (void)threads;
    for (int j = 0; j < st->n_mods; j++) {
        const lq_recipe_modifier *m = &st->mods[j];
        switch (m->kind) {
#if LQ_RECIPE_HAVE_PTQ
        case LQ_MOD_QUANTIZATION: {
            static const lq_ptq_scheme map[LQ_SCHEME_COUNT] = {
                [LQ_SCHEME_W8A16] = LQ_PTQ_W8A16, [LQ_SCHEME_W4A16] = LQ_PTQ_W4A16,
                [LQ_SCHEME_W4A16_ASYM] = LQ_PTQ_W4A16, [LQ_SCHEME_W8A8] = LQ_PTQ_W8A8,
                [LQ_SCHEME_FP8] = LQ_PTQ_FP8,
            };
            lq_ptq_opts o = {0};
            o.scheme = map[m->scheme];
            o.group_size = m->group_size;
            o.asym = m->scheme == LQ_SCHEME_W4A16_ASYM;
            o.clip_search = m->clip_search;
            o.ignore = (const char *const *)m->ignore;
            o.n_ignore = m->n_ignore;
            lq_pool *pool = lq_pool_create(threads);
            if (!pool) return lq_fail(LQ_ERR_NOMEM, "cannot start %d threads", threads);
            o.pool = pool;
            lq_status s = lq_ptq_quantize(model, out_tmp, &o, NULL);
            lq_pool_free(pool);
            LQ_TRY(s);
            break;
        }
#endif
        default:
            return lq_fail(LQ_ERR_UNSUPPORTED, "modifier %s is not available in this build",
                           lq_modifier_name(m->kind));
        }
    }
    return LQ_OK;
}

static int cmd_run(const lq_recipe *r, const char *recipe_path, const char *model, const char *out,
                   bool force, int threads) {
    const char *inputs[] = {model, recipe_path, NULL};
    lq_status s = tool_outdir_check_inputs(out, inputs);
    if (s != LQ_OK) return tool_fail(s);
    tool_outdir od;
    if ((s = tool_outdir_begin(&od, out, force)) != LQ_OK) return tool_fail_at("cannot create output", out, s);
    char path[PATH_MAX];
    for (int i = 0; s == LQ_OK && i < r->n_stages; i++) {
        fprintf(stderr, "quant-recipe: stage %d/%d: %s\n", i + 1, r->n_stages, r->stages[i].name);
        s = run_stage(&r->stages[i], model, od.tmp, threads);
    }
    if (s == LQ_OK && (s = tool_outdir_file(&od, "recipe.yaml", path, sizeof path)) == LQ_OK)
        s = copy_file(recipe_path, path);
    if (s == LQ_OK && (s = tool_outdir_file(&od, "quant-recipe.json", path, sizeof path)) == LQ_OK) {
        char meta[256];
        snprintf(meta, sizeof meta, "{\"tool\": \"quant-recipe\", \"version\": \"%s\", \"recipe\": \"recipe.yaml\"}\n",
                 LQ_VERSION_STRING);
        s = tool_write_text(path, meta);
    }
    if (s == LQ_OK) s = tool_outdir_commit(&od);
    if (s != LQ_OK) {
        tool_outdir_abort(&od);
        return tool_fail(s);
    }
    fprintf(stderr, "quant-recipe: wrote %s\n", out);
    return 0;
}

int main(int argc, char **argv) {
    tool_init("quant-recipe", usage);
    const char *cmd = NULL, *recipe_path = NULL, *model = NULL, *out = NULL;
    bool json = false, force = false;
    int threads = 0;
    tool_args a = tool_args_begin(argc, argv);
    while (tool_args_next(&a)) {
        if (tool_args_help(&a)) {
            usage(stdout);
            return 0;
        } else if (tool_args_flag(&a, "--json")) json = true;
        else if (tool_args_flag(&a, "--force")) force = true;
        else if (tool_args_value(&a, "--model")) model = a.value;
        else if (tool_args_value(&a, "--out")) out = a.value;
        else if (tool_args_value(&a, "--threads")) {
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
        if (json) print_json(&r, have_plan ? &plan : NULL, avail);
        else print_text(&r, have_plan ? &plan : NULL, ck);
        rc = tool_finish_stdout();
    }
    if (rc == 0 && avail != LQ_OK) {
        rc = tool_error(lq_status_exit_code(avail), "%s", avail_msg);
    } else if (rc == 0 && run) {
        lq_checkpoint_close(ck); /* the stages open the model themselves */
        ck = NULL;
        rc = cmd_run(&r, recipe_path, model, out, force, threads);
    }
    lq_plan_free(&plan);
    lq_checkpoint_close(ck);
    lq_recipe_free(&r);
    return rc;
}
