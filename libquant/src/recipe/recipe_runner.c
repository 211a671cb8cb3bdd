/* recipe_runner.c - lq_recipe_run: the stages of a recipe, in order (docs/RECIPES.md).
 *
 * Modifier stages stream one checkpoint into the next (lq_recipe_apply_modifier), eval_stages
 * hold the current model to the recipe's thresholds, distill_stages run lq_distill_run (the
 * driver quant-distill uses). What a gate measures (perplexity, KL divergence) is the
 * evaluation harness's job, above this library: the caller passes it in (lq_recipe_measure),
 * so the library keeps its layer and the gate logic, the records and the report stay here. */
#include "recipe_runner_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "libquant/lq_distill.h"
#include "libquant/lq_model.h"
#include "libquant/lq_ptq.h"
#include "libquant/lq_tokenizer.h"

double rr_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void rr_note(const rr_runner *rn, const char *fmt, ...) {
    if (!rn->o->note) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    rn->o->note(rn->o->user, line);
}

lq_status rr_path(char *buf, size_t cap, const char *dir, const char *name) {
    if (snprintf(buf, cap, "%s/%s", dir, name) >= (int)cap)
        return lq_fail(LQ_ERR_INVALID_ARG, "path too long: %s/%s", dir, name);
    return LQ_OK;
}

/* ---- modifier stages ------------------------------------------------------------------------ */

/* Each modifier reads the previous step's directory and writes a fresh one: the drivers stream
 * tensor by tensor, so peak memory stays one tensor whatever the number of steps. */
static lq_status run_modifier_stage(rr_runner *rn, int i, json_t *rec) {
    const lq_recipe_stage *st = &rn->r->stages[i];
    char stage_in[PATH_MAX];
    snprintf(stage_in, sizeof stage_in, "%s", rn->cur);
    json_t *mods = json_array();
    json_object_set_new(rec, "modifiers", mods);
    for (int j = 0; j < st->n_mods; j++) {
        const lq_recipe_modifier *m = &st->mods[j];
        char dir[PATH_MAX], name[16], what[512];
        snprintf(name, sizeof name, "%02d", rn->n_steps++);
        LQ_TRY(rr_path(dir, sizeof dir, rn->steps, name));
        if (mkdir(dir, 0755) != 0) return lq_fail(LQ_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
        lq_recipe_describe_modifier(m, what, sizeof what);
        rr_note(rn, "stage %d/%d %s: %s", i + 1, rn->r->n_stages, st->name, what);
        lq_recipe_step_opts so = {.pool = rn->o->pool, .progress = rn->o->progress, .user = rn->o->user,
                                  .bitmask_output = rn->o->bitmask_output, .calib = rn->o->calib};
        if (!so.calib.tokenizer) so.calib.tokenizer = rn->o->tokenizer; /* the run's tokenizer */
        lq_recipe_step_result res;
        LQ_TRY(lq_recipe_apply_modifier(rn->r, m, rn->cur, dir, &so, &res));
        LQ_TRY(lq_checkpoint_copy_side_files(rn->o->model, dir));
        snprintf(rn->cur, sizeof rn->cur, "%s", dir);
        json_t *o = json_object();
        json_object_set_new(o, "modifier", json_string(lq_modifier_name(m->kind)));
        if (m->target_bpw > 0) { /* the plan chose the schemes: the target and its candidates */
            json_object_set_new(o, "target_bpw", json_real(m->target_bpw));
            json_t *cand = json_array();
            for (int k = 0; cand && k < m->n_cand; k++) {
                char name[64];
                lq_ptq_candidate_name(&m->cand[k], name, sizeof name);
                json_array_append_new(cand, json_string(name));
            }
            json_object_set_new(o, "candidates", cand);
        } else if (m->scheme != LQ_WFMT_NONE) {
            json_object_set_new(o, "scheme", json_string(lq_preset_name(m->scheme, m->asym)));
        }
        json_object_set_new(o, "tensors", json_integer(res.n_tensors));
        json_object_set_new(o, "params", json_integer(res.params));
        json_object_set_new(o, "bytes_in", json_integer((json_int_t)res.bytes_in));
        json_object_set_new(o, "bytes_out", json_integer((json_int_t)res.bytes_out));
        json_object_set_new(o, "seconds", json_real(res.seconds));
        json_array_append_new(mods, o);
        rr_note(rn, "  %lld tensors, %.3f MB -> %.3f MB in %.2f s", (long long)res.n_tensors, res.bytes_in / 1e6,
                res.bytes_out / 1e6, res.seconds);
    }
    snprintf(rn->prev, sizeof rn->prev, "%s", stage_in);
    rn->changed = true;
    return LQ_OK;
}

/* ---- eval_stage ------------------------------------------------------------------------------ */

/* The first gate that `k` fails, as one line; false when every gate holds. */
static bool gate_fails(const lq_recipe_eval *ev, const lq_recipe_compare *k, const char *file, char *why,
                       size_t cap) {
    double base = k->base_ppl, ppl = k->ppl;
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

static json_t *compare_json(const char *file, const lq_recipe_compare *k) {
    json_t *o = json_object();
    json_object_set_new(o, "file", json_string(file));
    json_object_set_new(o, "baseline_ppl", json_real(k->base_ppl));
    json_object_set_new(o, "ppl", json_real(k->ppl));
    json_object_set_new(o, "delta_ppl_pct", json_real(k->delta_ppl_pct));
    json_object_set_new(o, "kld_mean", json_real(k->kld_mean));
    json_object_set_new(o, "same_top", json_real(k->same_top));
    json_object_set_new(o, "tokens_scored", json_integer(k->n_scored));
    return o;
}

static lq_status run_eval_stage(rr_runner *rn, int i, json_t *rec) {
    const lq_recipe_stage *st = &rn->r->stages[i];
    const lq_recipe_eval *ev = &st->eval;
    const lq_recipe_measure *me = &rn->o->measure;
    bool previous = ev->baseline == LQ_EVAL_BASE_PREVIOUS;
    const char *base_path = previous && rn->changed ? rn->prev : rn->o->model;
    rr_note(rn, "stage %d/%d %s: %d file%s against the %s model", i + 1, rn->r->n_stages, st->name, ev->n_files,
            ev->n_files == 1 ? "" : "s", previous ? "previous" : "original");
    json_t *files = json_array();
    json_object_set_new(rec, "baseline", json_string(previous ? "previous" : "original"));
    json_object_set_new(rec, "files", files);
    if (!me->compare)
        return lq_fail(LQ_ERR_INVALID_ARG, "eval_stage at %s:%d:%d: no evaluator was given", rn->r->path,
                       st->pos.line, st->pos.col);
    for (int f = 0; f < ev->n_files; f++) {
        lq_recipe_compare k;
        lq_status s = me->compare(me->user, base_path, rn->cur, ev->files[f], ev->ctx, ev->per_line, ev->separator, &k);
        if (s != LQ_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", lq_last_error());
            return lq_fail(s, "eval_stage at %s:%d:%d: %s: %s", rn->r->path, st->pos.line, st->pos.col, ev->files[f],
                           msg);
        }
        json_t *o = compare_json(ev->files[f], &k);
        json_array_append_new(files, o);
        rr_note(rn, "  %s: PPL %.4f (baseline %.4f, %+.2f%%), mean KLD %.6f, top-1 %.2f%%", ev->files[f], k.ppl,
                k.base_ppl, k.delta_ppl_pct, k.kld_mean, 100.0 * k.same_top);
        char why[600];
        if (gate_fails(ev, &k, ev->files[f], why, sizeof why)) {
            json_object_set_new(o, "failed", json_string(why));
            rn->gate_failed = true;
            return lq_fail(LQ_ERR_MISMATCH, "eval_stage at %s:%d:%d failed: %s; nothing was written to %s",
                           rn->r->path, st->pos.line, st->pos.col, why, rn->o->out);
        }
    }
    return LQ_OK;
}

/* ---- distill_stage --------------------------------------------------------------------------- */

/* lq_distill_run, as quant-distill runs it: the same records, byte for byte. A recipe run is all
 * or nothing, so the dataset is never resumed here (it lives in the fresh work_dir). */
static lq_status run_distill_stage(rr_runner *rn, int i, json_t *rec) {
    const lq_recipe_stage *st = &rn->r->stages[i];
    const lq_recipe_distill *ds = &st->distill;
    const char *teacher = ds->teacher[0] ? ds->teacher : rn->o->model;
    char name[32], dir[PATH_MAX];
    snprintf(name, sizeof name, rn->n_distill ? "distill-%d" : "distill", rn->n_distill + 1);
    rn->n_distill++;
    LQ_TRY(rr_path(dir, sizeof dir, rn->o->work_dir, name));
    rr_note(rn, "stage %d/%d %s: teacher %s on %s -> %s/", i + 1, rn->r->n_stages, st->name, teacher, ds->files[0],
            name);
    lq_model *m = NULL;
    lq_tokenizer *tok = NULL;
    lq_status s = lq_model_load(teacher, &m);
    if (s == LQ_OK)
        s = lq_tokenizer_load_for_model(teacher, ds->tokenizer[0] ? ds->tokenizer : rn->o->tokenizer,
                                        lq_model_config(m)->vocab_size, &tok);
    lq_distill_run_result res = {0};
    if (s == LQ_OK) {
        const char *b = strrchr(teacher, '/');
        lq_distill_run_opts o = {.corpus = ds->files[0], .out = dir, .teacher_name = b && b[1] ? b + 1 : teacher,
                                 .k = ds->k, .ctx = ds->ctx, .per_unit = ds->per_line, .separator = ds->separator,
                                 .feat_layers = ds->feat_layers, .n_feat_layers = ds->n_feat_layers,
                                 .logp_f16 = ds->logp_f16, .pool = rn->o->pool,
                                 .hooks = {.progress = rn->o->progress, .user = rn->o->user}};
        s = lq_distill_run(m, tok, &o, &res);
    }
    if (s != LQ_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", lq_last_error());
        s = lq_fail(s, "distill_stage at %s:%d:%d: %s", rn->r->path, st->pos.line, st->pos.col, msg);
    } else {
        json_object_set_new(rec, "dataset", json_string(name));
        json_object_set_new(rec, "teacher", json_string(teacher));
        json_object_set_new(rec, "file", json_string(ds->files[0]));
        json_object_set_new(rec, "records", json_integer(res.records));
        json_object_set_new(rec, "tokens", json_integer(res.tokens));
        rr_note(rn, "  %lld records, %lld tokens in %.2f s", (long long)res.records, (long long)res.tokens,
                res.seconds);
    }
    lq_tokenizer_free(tok);
    lq_model_free(m);
    return s;
}

/* ---- the driver ------------------------------------------------------------------------------ */

static const char *stage_kind_name(lq_stage_kind k) {
    return k == LQ_STAGE_EVAL ? "eval" : k == LQ_STAGE_DISTILL ? "distill" : "modifiers";
}

lq_status lq_recipe_run(const lq_recipe *r, const lq_recipe_run_opts *o, lq_recipe_run_result *res) {
    *res = (lq_recipe_run_result){0};
    LQ_TRY(lq_recipe_check_available(r));
    LQ_TRY(lq_recipe_check_inputs(r, o->model, o->tokenizer, o->report_file));
    double t0 = rr_now();
    rr_runner rn = {.r = r, .o = o, .log = json_array()};
    snprintf(rn.cur, sizeof rn.cur, "%s", o->model);
    snprintf(rn.prev, sizeof rn.prev, "%s", o->model);
    lq_status s = rn.log ? rr_path(rn.steps, sizeof rn.steps, o->work_dir, ".steps")
                         : lq_fail(LQ_ERR_NOMEM, "out of memory");
    if (s == LQ_OK && mkdir(rn.steps, 0755) != 0)
        s = lq_fail(LQ_ERR_IO, "cannot create %s: %s", rn.steps, strerror(errno));
    for (int i = 0; s == LQ_OK && i < r->n_stages; i++) {
        const lq_recipe_stage *st = &r->stages[i];
        json_t *rec = json_object();
        json_object_set_new(rec, "stage", json_string(st->name));
        json_object_set_new(rec, "kind", json_string(stage_kind_name(st->kind)));
        json_array_append_new(rn.log, rec);
        double ts = rr_now();
        switch (st->kind) {
        case LQ_STAGE_MODIFIERS: s = run_modifier_stage(&rn, i, rec); break;
        case LQ_STAGE_EVAL: s = run_eval_stage(&rn, i, rec); break;
        case LQ_STAGE_DISTILL: s = run_distill_stage(&rn, i, rec); break;
        }
        json_object_set_new(rec, "seconds", json_real(rr_now() - ts));
    }
    if (s == LQ_OK) s = rr_finish(&rn, t0, &res->json);
    res->gate_failed = rn.gate_failed;
    json_decref(rn.log);
    return s;
}
