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
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libquant.h"
#include "libquant/lq_distill.h"
#include "libquant/lq_recipe.h"
#include "lq_blocks.h"
#include "lq_eval.h"
#include "tool_cli.h"
#include "tool_progress.h"
#include "tool_outdir.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: quant-recipe check RECIPE [--model DIR] [--json]\n"
            "       quant-recipe run RECIPE --model DIR --out DIR [--force] [--threads N]\n"
            "                        [--file TEXT] [--tokenizer FILE] [--json]\n"
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
            "  --threads N   worker threads (run; default: all cores)\n"
            "  --file TEXT   run: text for the final baseline-vs-result report (default: the first\n"
            "                eval_stage's first file; none: sizes only)\n"
            "  --tokenizer F tokenizer for every model loaded (default: tokenizer.json in its dir)\n"
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
    if (m->group_fallback != LQ_GROUP_FALLBACK_REFUSE)
        fprintf(f, " group_fallback=%s", m->group_fallback == LQ_GROUP_FALLBACK_CHANNEL ? "channel" : "ignore");
    if (m->kind == LQ_MOD_STRUCTURED_PRUNING)
        fprintf(f, " structure=%s", m->structure == LQ_STRUCTURE_FFN ? "ffn" : "heads");
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
            if (st->eval.max_ppl_increase >= 0) {
                if (st->eval.ppl_increase_relative) printf(", max PPL increase %.4g%%", st->eval.max_ppl_increase * 100);
                else printf(", max PPL increase %.4g", st->eval.max_ppl_increase);
            }
            if (st->eval.max_kld >= 0) printf(", max mean KLD %.4g", st->eval.max_kld);
            if (st->eval.min_top1 >= 0) printf(", min top-1 agreement %.4g%%", st->eval.min_top1 * 100);
            printf(", against the %s model\n", st->eval.baseline == LQ_EVAL_BASE_PREVIOUS ? "previous" : "original");
        } else if (st->kind == LQ_STAGE_DISTILL) {
            printf("  distill: teacher %s, file %s, k %d", st->distill.teacher[0] ? st->distill.teacher : "(input model)",
                   st->distill.files[0], st->distill.k);
            if (st->distill.ctx) printf(", ctx %d", st->distill.ctx);
            printf("%s, log-probs %s, %d feature layer%s\n", st->distill.per_line ? ", per line" : "",
                   st->distill.logp_f16 ? "f16" : "f32", st->distill.n_feat_layers,
                   st->distill.n_feat_layers == 1 ? "" : "s");
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

/* ---- run: shared state ---------------------------------------------------------------------------- */

/* Files a Hugging Face directory carries besides the weights; each step's directory gets them so
 * that every intermediate model loads with its tokenizer (eval_stage, distill_stage). */
static const char *const g_side_files[] = {"tokenizer.json", "tokenizer_config.json", "generation_config.json",
                                           "special_tokens_map.json"};

typedef struct runner {
    const lq_recipe *r;
    const char *recipe_path, *model, *tokenizer, *out, *report_file;
    bool json;
    lq_pool *pool;
    tool_outdir od;
    char steps[PATH_MAX];   /* <out>.tmp.<pid>/.steps: one directory per modifier applied */
    char cur[PATH_MAX];     /* the model the next stage reads */
    char prev[PATH_MAX];    /* the model before the last stage that changed it */
    int n_steps, n_distill;
    bool changed;           /* some modifier has run: cur is not the input */
    bool gate_failed;       /* an eval_stage threshold failed (message in lq_last_error) */
    json_t *log;            /* per-stage records for quant-recipe.json */
    tool_progress bar;
} runner;

static bool is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static lq_status copy_file(const char *from, const char *to) {
    FILE *f = fopen(from, "rb");
    if (!f) return lq_fail(LQ_ERR_IO, "cannot open %s: %s", from, strerror(errno));
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    char buf[8192];
    size_t k;
    while (m && (k = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, k, m);
    bool bad = ferror(f);
    fclose(f);
    if (!m || fclose(m) != 0 || bad) {
        free(text);
        return lq_fail(bad ? LQ_ERR_IO : LQ_ERR_NOMEM, "cannot copy %s", from);
    }
    /* tool_write_text writes up to the first NUL: fine for the YAML and JSON side files */
    lq_status s = tool_write_text(to, text);
    free(text);
    return s;
}

static lq_status copy_side_files(const char *model_dir, const char *dir) {
    for (size_t i = 0; i < sizeof g_side_files / sizeof *g_side_files; i++) {
        char src[PATH_MAX], dst[PATH_MAX];
        snprintf(src, sizeof src, "%s/%s", model_dir, g_side_files[i]);
        if (!is_file(src)) continue;
        if (snprintf(dst, sizeof dst, "%s/%s", dir, g_side_files[i]) >= (int)sizeof dst)
            return lq_fail(LQ_ERR_INVALID_ARG, "path too long: %s", dir);
        LQ_TRY(copy_file(src, dst));
    }
    return LQ_OK;
}

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

/* Tools print progress only for people: a bar on a TTY, nothing under --json. */
static void step_progress(void *user, int64_t done, int64_t total, const char *tensor) {
    (void)tensor;
    runner *rn = user;
    rn->bar.total = total;
    tool_progress_update(&rn->bar, done);
}

/* ---- run: modifier stages ---------------------------------------------------------------------- */

/* Each modifier reads the previous step's directory and writes a fresh one: the drivers stream
 * tensor by tensor, so peak memory stays one tensor whatever the number of steps. */
static lq_status run_modifier_stage(runner *rn, int i, json_t *rec) {
    const lq_recipe_stage *st = &rn->r->stages[i];
    char stage_in[PATH_MAX];
    snprintf(stage_in, sizeof stage_in, "%s", rn->cur);
    json_t *mods = json_array();
    json_object_set_new(rec, "modifiers", mods);
    for (int j = 0; j < st->n_mods; j++) {
        const lq_recipe_modifier *m = &st->mods[j];
        char dir[PATH_MAX], label[128];
        if (snprintf(dir, sizeof dir, "%s/%02d", rn->steps, rn->n_steps++) >= (int)sizeof dir)
            return lq_fail(LQ_ERR_INVALID_ARG, "output path too long: %s", rn->steps);
        if (mkdir(dir, 0755) != 0) return lq_fail(LQ_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
        snprintf(label, sizeof label, "stage %d/%d %s", i + 1, rn->r->n_stages, lq_modifier_name(m->kind));
        if (!rn->json) {
            fprintf(stderr, "quant-recipe: stage %d/%d %s: ", i + 1, rn->r->n_stages, st->name);
            describe_modifier(stderr, m);
            fprintf(stderr, "\n");
        }
        tool_progress_begin(&rn->bar, label, 1, !rn->json);
        lq_recipe_step_opts so = {.pool = rn->pool, .progress = step_progress, .user = rn};
        lq_recipe_step_result res;
        lq_status s = lq_recipe_apply_modifier(rn->r, m, rn->cur, dir, &so, &res);
        tool_progress_end(&rn->bar);
        LQ_TRY(s);
        LQ_TRY(copy_side_files(rn->model, dir));
        snprintf(rn->cur, sizeof rn->cur, "%s", dir);
        json_t *o = json_object();
        json_object_set_new(o, "modifier", json_string(lq_modifier_name(m->kind)));
        if (m->scheme != LQ_SCHEME_NONE) json_object_set_new(o, "scheme", json_string(lq_recipe_scheme_name(m->scheme)));
        json_object_set_new(o, "tensors", json_integer(res.n_tensors));
        json_object_set_new(o, "params", json_integer(res.params));
        json_object_set_new(o, "bytes_in", json_integer((json_int_t)res.bytes_in));
        json_object_set_new(o, "bytes_out", json_integer((json_int_t)res.bytes_out));
        json_object_set_new(o, "seconds", json_real(res.seconds));
        json_array_append_new(mods, o);
        if (!rn->json)
            fprintf(stderr, "quant-recipe:   %lld tensors, %.3f MB -> %.3f MB in %.2f s\n", (long long)res.n_tensors,
                    res.bytes_in / 1e6, res.bytes_out / 1e6, res.seconds);
    }
    snprintf(rn->prev, sizeof rn->prev, "%s", stage_in);
    rn->changed = true;
    return LQ_OK;
}

/* ---- run: eval_stage ------------------------------------------------------------------------------ */

/* Options of one KL run, drawing rn->bar (begun here; the caller ends it) unless --json. */
static lq_ppl_opts eval_opts(runner *rn, int32_t ctx, bool per_line, const char *sep) {
    tool_progress_begin(&rn->bar, "eval", 1, !rn->json);
    return (lq_ppl_opts){.n_ctx = ctx, .per_line = per_line, .separator = sep[0] ? sep : NULL,
                         .progress = tool_progress_cb, .progress_user = &rn->bar};
}

/* The first gate that `k` fails, as one line; false when every gate holds. */
static bool gate_fails(const lq_recipe_eval *ev, const lq_kld_result *k, const char *file, char *why, size_t cap) {
    double base = k->base.ppl, ppl = k->model.ppl;
    if (ev->max_ppl_increase >= 0) {
        bool bad = ev->ppl_increase_relative ? ppl > base * (1.0 + ev->max_ppl_increase)
                                             : ppl - base > ev->max_ppl_increase;
        if (bad) {
            if (ev->ppl_increase_relative)
                snprintf(why, cap, "PPL %.4f on %s is %+.2f%% from the baseline's %.4f (max_ppl_increase %g%%)", ppl,
                         file, 100.0 * (ppl - base) / base, base, 100.0 * ev->max_ppl_increase);
            else
                snprintf(why, cap, "PPL %.4f on %s is %+.4f from the baseline's %.4f (max_ppl_increase %g)", ppl, file,
                         ppl - base, base, ev->max_ppl_increase);
            return true;
        }
    }
    if (ev->max_kld >= 0 && k->kld_mean > ev->max_kld) {
        snprintf(why, cap, "mean KLD %.6f on %s exceeds max_mean_kld %g", k->kld_mean, file, ev->max_kld);
        return true;
    }
    if (ev->min_top1 >= 0 && k->same_top < ev->min_top1) {
        snprintf(why, cap, "top-1 agreement %.2f%% on %s is below min_top1_agreement %g%%", 100.0 * k->same_top, file,
                 100.0 * ev->min_top1);
        return true;
    }
    return false;
}

static lq_status run_eval_stage(runner *rn, int i, json_t *rec) {
    const lq_recipe_stage *st = &rn->r->stages[i];
    const lq_recipe_eval *ev = &st->eval;
    const char *base_path = ev->baseline == LQ_EVAL_BASE_PREVIOUS && rn->changed ? rn->prev : rn->model;
    if (!rn->json)
        fprintf(stderr, "quant-recipe: stage %d/%d %s: %d file%s against the %s model\n", i + 1, rn->r->n_stages,
                st->name, ev->n_files, ev->n_files == 1 ? "" : "s",
                ev->baseline == LQ_EVAL_BASE_PREVIOUS ? "previous" : "original");
    lq_model *bm = NULL, *mm = NULL;
    lq_tokenizer *bt = NULL, *mt = NULL;
    lq_status s = load_model(rn, base_path, &bm, &bt);
    if (s == LQ_OK) s = load_model(rn, rn->cur, &mm, &mt);
    json_t *files = json_array();
    json_object_set_new(rec, "baseline", json_string(ev->baseline == LQ_EVAL_BASE_PREVIOUS ? "previous" : "original"));
    json_object_set_new(rec, "files", files);
    for (int f = 0; s == LQ_OK && f < ev->n_files; f++) {
        char *text = NULL;
        size_t len = 0;
        if ((s = lq_text_read_file(ev->files[f], &text, &len)) != LQ_OK) break;
        lq_ppl_opts o = eval_opts(rn, ev->ctx, ev->per_line, ev->separator);
        lq_kld_result k;
        s = lq_eval_kl_divergence(bm, bt, mm, mt, rn->pool, text, len, &o, &k);
        tool_progress_end(&rn->bar);
        free(text);
        if (s != LQ_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", lq_last_error());
            s = lq_fail(s, "eval_stage at %s:%d:%d: %s: %s", rn->r->path, st->pos.line, st->pos.col, ev->files[f], msg);
            break;
        }
        json_t *o2 = json_object();
        json_object_set_new(o2, "file", json_string(ev->files[f]));
        json_object_set_new(o2, "baseline_ppl", json_real(k.base.ppl));
        json_object_set_new(o2, "ppl", json_real(k.model.ppl));
        json_object_set_new(o2, "delta_ppl_pct", json_real(k.ppl_diff_pct));
        json_object_set_new(o2, "kld_mean", json_real(k.kld_mean));
        json_object_set_new(o2, "same_top", json_real(k.same_top));
        json_object_set_new(o2, "tokens_scored", json_integer(k.n_scored));
        json_array_append_new(files, o2);
        if (!rn->json)
            fprintf(stderr, "quant-recipe:   %s: PPL %.4f (baseline %.4f, %+.2f%%), mean KLD %.6f, top-1 %.2f%%\n",
                    ev->files[f], k.model.ppl, k.base.ppl, k.ppl_diff_pct, k.kld_mean, 100.0 * k.same_top);
        char why[600];
        if (gate_fails(ev, &k, ev->files[f], why, sizeof why)) {
            json_object_set_new(o2, "failed", json_string(why));
            rn->gate_failed = true;
            s = lq_fail(LQ_ERR_MISMATCH, "eval_stage at %s:%d:%d failed: %s; nothing was written to %s", rn->r->path,
                        st->pos.line, st->pos.col, why, rn->out);
        }
    }
    lq_tokenizer_free(mt);
    lq_model_free(mm);
    lq_tokenizer_free(bt);
    lq_model_free(bm);
    return s;
}

/* ---- run: distill_stage ----------------------------------------------------------------------------- */

/* lq_distill_run, as quant-distill runs it: the same records, byte for byte. */
static void distill_progress(void *user, int64_t done, int64_t total, const char *what) {
    tool_progress_cb(&((runner *)user)->bar, done, total, what);
}

static lq_status run_distill_stage(runner *rn, int i, json_t *rec) {
    const lq_recipe_stage *st = &rn->r->stages[i];
    const lq_recipe_distill *ds = &st->distill;
    const char *teacher = ds->teacher[0] ? ds->teacher : rn->model;
    char name[32], dir[PATH_MAX];
    snprintf(name, sizeof name, rn->n_distill ? "distill-%d" : "distill", rn->n_distill + 1);
    rn->n_distill++;
    LQ_TRY(tool_outdir_file(&rn->od, name, dir, sizeof dir));
    if (!rn->json)
        fprintf(stderr, "quant-recipe: stage %d/%d %s: teacher %s on %s -> %s/\n", i + 1, rn->r->n_stages, st->name,
                teacher, ds->files[0], name);
    lq_model *m = NULL;
    lq_tokenizer *tok = NULL;
    lq_status s = lq_model_load(teacher, &m);
    if (s == LQ_OK) s = lq_eval_load_tokenizer(m, teacher, ds->tokenizer[0] ? ds->tokenizer : rn->tokenizer, &tok);
    if (s == LQ_OK && ds->k > m->cfg.vocab_size)
        s = lq_fail(LQ_ERR_INVALID_ARG, "distill_stage k %d is larger than the vocabulary (%d) at %s:%d:%d", ds->k,
                    m->cfg.vocab_size, rn->r->path, st->pos.line, st->pos.col);
    for (int l = 0; s == LQ_OK && l < ds->n_feat_layers; l++)
        if (ds->feat_layers[l] > m->cfg.n_layers)
            s = lq_fail(LQ_ERR_INVALID_ARG, "distill_stage features: layer %d of a %d-layer teacher at %s:%d:%d",
                        ds->feat_layers[l], m->cfg.n_layers, rn->r->path, st->pos.line, st->pos.col);
    lq_distill_run_result res = {0};
    if (s == LQ_OK) {
        const char *b = strrchr(teacher, '/');
        lq_distill_run_opts o = {.corpus = ds->files[0], .out = dir, .teacher_name = b && b[1] ? b + 1 : teacher,
                                 .k = ds->k, .ctx = ds->ctx, .per_unit = ds->per_line, .separator = ds->separator,
                                 .feat_layers = ds->feat_layers, .n_feat_layers = ds->n_feat_layers,
                                 .logp_f16 = ds->logp_f16, .pool = rn->pool,
                                 .hooks = {.progress = distill_progress, .user = rn}};
        char label[96];
        snprintf(label, sizeof label, "stage %d/%d distill", i + 1, rn->r->n_stages);
        tool_progress_begin(&rn->bar, label, 1, !rn->json);
        s = lq_distill_run(m, tok, &o, &res);
        tool_progress_end(&rn->bar);
    }
    if (s == LQ_OK) {
        json_object_set_new(rec, "dataset", json_string(name));
        json_object_set_new(rec, "teacher", json_string(teacher));
        json_object_set_new(rec, "file", json_string(ds->files[0]));
        json_object_set_new(rec, "records", json_integer(res.records));
        json_object_set_new(rec, "tokens", json_integer(res.tokens));
        if (!rn->json)
            fprintf(stderr, "quant-recipe:   %lld records, %lld tokens in %.2f s\n", (long long)res.records,
                    (long long)res.tokens, res.seconds);
    }
    lq_tokenizer_free(tok);
    lq_model_free(m);
    return s;
}

/* ---- run: the final report (quant-eval --compare's columns) ---------------------------------------- */

typedef struct report_row {
    const char *name;
    lq_model_info info;
    double ppl, delta_ppl, delta_ppl_pct, kld_mean, same_top;
} report_row;

/* The text the report scores: --file, else the first eval_stage's first file with its settings. */
static const lq_recipe_eval *report_source(const runner *rn, const char **file) {
    *file = rn->report_file;
    for (int i = 0; i < rn->r->n_stages; i++)
        if (rn->r->stages[i].kind == LQ_STAGE_EVAL) {
            if (!*file) *file = rn->r->stages[i].eval.files[0];
            return &rn->r->stages[i].eval;
        }
    return NULL;
}

static lq_status build_report(runner *rn, const char *result_dir, json_t *out) {
    const char *file = NULL;
    const lq_recipe_eval *ev = report_source(rn, &file);
    lq_model *bm = NULL, *mm = NULL;
    lq_tokenizer *bt = NULL, *mt = NULL;
    report_row rows[2] = {{.name = "baseline", .same_top = 1.0}, {.name = "result"}};
    lq_status s = load_model(rn, rn->model, &bm, &bt);
    if (s == LQ_OK) s = load_model(rn, result_dir, &mm, &mt);
    if (s == LQ_OK) s = lq_eval_model_info(bm, &rows[0].info);
    if (s == LQ_OK) s = lq_eval_model_info(mm, &rows[1].info);
    lq_kld_result k = {0};
    if (s == LQ_OK && file) {
        char *text = NULL;
        size_t len = 0;
        s = lq_text_read_file(file, &text, &len);
        lq_ppl_opts o = ev ? eval_opts(rn, ev->ctx, ev->per_line, ev->separator) : eval_opts(rn, 512, false, "");
        if (s == LQ_OK) s = lq_eval_kl_divergence(bm, bt, mm, mt, rn->pool, text, len, &o, &k);
        tool_progress_end(&rn->bar);
        free(text);
        rows[0].ppl = k.base.ppl;
        rows[1].ppl = k.model.ppl;
        rows[1].delta_ppl = k.ppl_diff;
        rows[1].delta_ppl_pct = k.ppl_diff_pct;
        rows[1].kld_mean = k.kld_mean;
        rows[1].same_top = k.same_top;
    }
    if (s == LQ_OK) {
        json_object_set_new(out, "file", file ? json_string(file) : json_null());
        json_object_set_new(out, "mode", json_string(ev && ev->per_line ? "per-line" : "chunks"));
        json_t *arr = json_array();
        for (int i = 0; i < 2; i++) {
            const report_row *r = &rows[i];
            json_t *o = json_object();
            json_object_set_new(o, "name", json_string(r->name));
            json_object_set_new(o, "path", json_string(i ? rn->out : rn->model));
            json_object_set_new(o, "format", json_string(r->info.format));
            json_object_set_new(o, "disk_bytes", json_integer((json_int_t)r->info.disk_bytes));
            json_object_set_new(o, "params", json_integer(r->info.n_params));
            json_object_set_new(o, "bpw_linear", json_real(r->info.bpw_linear));
            json_object_set_new(o, "bpw_overall", json_real(r->info.bpw_overall));
            json_object_set_new(o, "ppl", file ? json_real(r->ppl) : json_null());
            json_object_set_new(o, "delta_ppl", file ? json_real(r->delta_ppl) : json_null());
            json_object_set_new(o, "delta_ppl_pct", file ? json_real(r->delta_ppl_pct) : json_null());
            json_object_set_new(o, "kld_mean", file ? json_real(r->kld_mean) : json_null());
            json_object_set_new(o, "same_top", file ? json_real(r->same_top) : json_null());
            json_array_append_new(arr, o);
        }
        json_object_set_new(out, "rows", arr);
        if (file) json_object_set_new(out, "tokens_scored", json_integer(k.n_scored));
    }
    lq_tokenizer_free(mt);
    lq_model_free(mm);
    lq_tokenizer_free(bt);
    lq_model_free(bm);
    return s;
}

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

/* ---- run: the driver ------------------------------------------------------------------------------- */

/* Move every file of the last step's directory into the output's top level. */
static lq_status adopt_step(const char *step, const char *top) {
    DIR *d = opendir(step);
    if (!d) return lq_fail(LQ_ERR_IO, "cannot open %s: %s", step, strerror(errno));
    struct dirent *e;
    lq_status s = LQ_OK;
    while (s == LQ_OK && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char from[PATH_MAX], to[PATH_MAX];
        if (snprintf(from, sizeof from, "%s/%s", step, e->d_name) >= (int)sizeof from ||
            snprintf(to, sizeof to, "%s/%s", top, e->d_name) >= (int)sizeof to)
            s = lq_fail(LQ_ERR_INVALID_ARG, "path too long: %s/%s", top, e->d_name);
        else if (rename(from, to) != 0) s = lq_fail(LQ_ERR_IO, "cannot move %s: %s", from, strerror(errno));
    }
    closedir(d);
    return s;
}

/* Everything a run reads must exist before any work starts (a missing eval file found after an
 * hour of quantization would waste the hour). */
static lq_status check_run_inputs(const lq_recipe *r) {
    for (int i = 0; i < r->n_stages; i++) {
        const lq_recipe_stage *st = &r->stages[i];
        char **files = st->kind == LQ_STAGE_EVAL ? st->eval.files : st->distill.files;
        int n = st->kind == LQ_STAGE_EVAL ? st->eval.n_files : st->kind == LQ_STAGE_DISTILL ? st->distill.n_files : 0;
        for (int f = 0; f < n; f++)
            if (access(files[f], R_OK) != 0)
                return lq_fail(LQ_ERR_IO, "%s (%s at %s:%d:%d): %s", files[f], st->name, r->path, st->pos.line,
                               st->pos.col, strerror(errno));
        if (st->kind == LQ_STAGE_DISTILL && st->distill.teacher[0] && access(st->distill.teacher, R_OK) != 0)
            return lq_fail(LQ_ERR_IO, "teacher %s (%s at %s:%d:%d): %s", st->distill.teacher, st->name, r->path,
                           st->pos.line, st->pos.col, strerror(errno));
    }
    return LQ_OK;
}

static int cmd_run(runner *rn, bool force) {
    const lq_recipe *r = rn->r;
    lq_status s = check_run_inputs(r);
    if (s != LQ_OK) return tool_fail(s);
    const char *inputs[2 * 64 + 8];
    int ni = 0;
    inputs[ni++] = rn->model;
    inputs[ni++] = rn->recipe_path;
    if (rn->tokenizer) inputs[ni++] = rn->tokenizer;
    if (rn->report_file) inputs[ni++] = rn->report_file;
    for (int i = 0; i < r->n_stages && ni < (int)(sizeof inputs / sizeof *inputs) - 3; i++) {
        const lq_recipe_stage *st = &r->stages[i];
        if (st->kind == LQ_STAGE_EVAL) inputs[ni++] = st->eval.files[0];
        if (st->kind == LQ_STAGE_DISTILL) inputs[ni++] = st->distill.files[0];
        if (st->kind == LQ_STAGE_DISTILL && st->distill.teacher[0]) inputs[ni++] = st->distill.teacher;
    }
    inputs[ni] = NULL;
    if ((s = tool_outdir_check_inputs(rn->out, inputs)) != LQ_OK) return tool_fail(s);
    if ((s = tool_outdir_begin(&rn->od, rn->out, force)) != LQ_OK) return tool_fail_at("cannot create output", rn->out, s);
    double t0 = lq_eval_now();
    snprintf(rn->cur, sizeof rn->cur, "%s", rn->model);
    snprintf(rn->prev, sizeof rn->prev, "%s", rn->model);
    rn->log = json_array();
    s = tool_outdir_file(&rn->od, ".steps", rn->steps, sizeof rn->steps);
    if (s == LQ_OK && mkdir(rn->steps, 0755) != 0)
        s = lq_fail(LQ_ERR_IO, "cannot create %s: %s", rn->steps, strerror(errno));
    for (int i = 0; s == LQ_OK && i < r->n_stages; i++) {
        const lq_recipe_stage *st = &r->stages[i];
        json_t *rec = json_object();
        json_object_set_new(rec, "stage", json_string(st->name));
        json_object_set_new(rec, "kind", json_string(st->kind == LQ_STAGE_EVAL      ? "eval"
                                                     : st->kind == LQ_STAGE_DISTILL ? "distill"
                                                                                    : "modifiers"));
        json_array_append_new(rn->log, rec);
        double ts = lq_eval_now();
        switch (st->kind) {
        case LQ_STAGE_MODIFIERS: s = run_modifier_stage(rn, i, rec); break;
        case LQ_STAGE_EVAL: s = run_eval_stage(rn, i, rec); break;
        case LQ_STAGE_DISTILL: s = run_distill_stage(rn, i, rec); break;
        }
        json_object_set_new(rec, "seconds", json_real(lq_eval_now() - ts));
    }
    if (s == LQ_OK && rn->changed) s = adopt_step(rn->cur, rn->od.tmp);
    if (s == LQ_OK && tool_rm_tree(rn->steps) != 0) s = lq_fail(LQ_ERR_IO, "cannot remove %s", rn->steps);
    json_t *report = json_object();
    double tr = lq_eval_now();
    if (s == LQ_OK && rn->changed) {
        if (!rn->json) fprintf(stderr, "quant-recipe: report: baseline vs result\n");
        s = build_report(rn, rn->od.tmp, report);
    }
    json_object_set_new(report, "seconds", json_real(lq_eval_now() - tr));
    char path[PATH_MAX];
    if (s == LQ_OK && (s = tool_outdir_file(&rn->od, "recipe.yaml", path, sizeof path)) == LQ_OK)
        s = copy_file(rn->recipe_path, path);
    json_t *meta = json_object();
    json_object_set_new(meta, "tool", json_string("quant-recipe"));
    json_object_set_new(meta, "version", json_string(LQ_VERSION_STRING));
    json_object_set_new(meta, "recipe", json_string("recipe.yaml"));
    json_object_set_new(meta, "recipe_source", json_string(rn->recipe_path));
    json_object_set_new(meta, "model", json_string(rn->model));
    json_object_set_new(meta, "out", json_string(rn->out));
    json_object_set_new(meta, "threads", json_integer(lq_pool_size(rn->pool)));
    json_object_set_new(meta, "stages", rn->log);
    json_object_set_new(meta, "report", report);
    json_object_set_new(meta, "seconds", json_real(lq_eval_now() - t0));
    char *text = json_dumps(meta, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s == LQ_OK && !text) s = lq_fail(LQ_ERR_NOMEM, "cannot render quant-recipe.json");
    if (s == LQ_OK && (s = tool_outdir_file(&rn->od, "quant-recipe.json", path, sizeof path)) == LQ_OK) {
        size_t n = strlen(text);
        char *withnl = malloc(n + 2);
        if (!withnl) s = lq_fail(LQ_ERR_NOMEM, "out of memory");
        else {
            memcpy(withnl, text, n);
            memcpy(withnl + n, "\n", 2);
            s = tool_write_text(path, withnl);
            free(withnl);
        }
    }
    if (s == LQ_OK) s = tool_outdir_commit(&rn->od);
    int rc = 0;
    if (s != LQ_OK) {
        tool_outdir_abort(&rn->od);
        /* a failed gate is a verdict on the result, not an error of the inputs: exit 1 */
        rc = rn->gate_failed ? tool_error(1, "%s", lq_last_error()) : tool_fail(s);
    } else {
        if (rn->json) printf("%s\n", text);
        else {
            print_report(report);
            fprintf(stderr, "quant-recipe: wrote %s in %.2f s\n", rn->out, lq_eval_now() - t0);
        }
        rc = tool_finish_stdout();
    }
    free(text);
    json_decref(meta);
    return rc;
}

int main(int argc, char **argv) {
    tool_init("quant-recipe", usage);
    const char *cmd = NULL, *recipe_path = NULL, *model = NULL, *out = NULL, *file = NULL, *tokenizer = NULL;
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
        else if (tool_args_value(&a, "--file")) file = a.value;
        else if (tool_args_value(&a, "--tokenizer")) tokenizer = a.value;
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
    if (!run && (file || out)) return tool_bad_args("--file and --out go with run");
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
        rc = tool_error(tool_exit_code(avail), "%s", avail_msg);
    } else if (rc == 0 && run) {
        lq_checkpoint_close(ck); /* the stages open the model themselves */
        ck = NULL;
        runner rn = {.r = &r, .recipe_path = recipe_path, .model = model, .tokenizer = tokenizer, .out = out,
                     .report_file = file, .json = json, .pool = lq_pool_create(threads)};
        if (!rn.pool) rc = tool_error(1, "cannot start %d threads", threads);
        else rc = cmd_run(&rn, force);
        lq_pool_free(rn.pool);
    }
    lq_plan_free(&plan);
    lq_checkpoint_close(ck);
    lq_recipe_free(&r);
    return rc;
}
