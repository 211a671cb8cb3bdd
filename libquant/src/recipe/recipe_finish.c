/* recipe_finish.c - the end of lq_recipe_run: the result's files at the top of the work
 * directory, the baseline-vs-result report (quant-eval --compare's columns), recipe.yaml and
 * quant-recipe.json. */
#include "recipe_runner_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libquant/lq_model.h"
#include "libquant.h"

/* ---- files ----------------------------------------------------------------------------------- */

/* text and a newline to `path`, durably (lq_file.h: temp, fsync, rename, fsync the dir). */
static lq_status write_line(const char *path, const char *text) {
    lq_file_out o;
    LQ_TRY(lq_file_begin(&o, path));
    lq_status s = lq_file_write(&o, text, strlen(text));
    if (s == LQ_OK) s = lq_file_write(&o, "\n", 1);
    if (s == LQ_OK) return lq_file_commit(&o);
    lq_file_abort(&o);
    return s;
}

/* Move every file of the last step's directory into the output's top level. */
static lq_status adopt_step(const char *step, const char *top) {
    DIR *d = opendir(step);
    if (!d) return lq_fail(LQ_ERR_IO, "cannot open %s: %s", step, strerror(errno));
    struct dirent *e;
    lq_status s = LQ_OK;
    while (s == LQ_OK && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char from[PATH_MAX], to[PATH_MAX];
        if ((s = rr_path(from, sizeof from, step, e->d_name)) == LQ_OK &&
            (s = rr_path(to, sizeof to, top, e->d_name)) == LQ_OK && rename(from, to) != 0)
            s = lq_fail(LQ_ERR_IO, "cannot move %s: %s", from, strerror(errno));
    }
    closedir(d);
    return s;
}

/* rm -r of the steps directory (only plain files and directories are ever made in it). */
static int rm_tree(const char *path) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(sb.st_mode)) return unlink(path);
    DIR *d = opendir(path);
    if (!d) return -1;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char sub[PATH_MAX];
        rc = snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >= (int)sizeof sub ? -1 : rm_tree(sub);
    }
    closedir(d);
    return rc == 0 ? rmdir(path) : rc;
}

/* ---- the report ------------------------------------------------------------------------------ */

/* The text the report scores: report_file, else the first eval_stage's first file with its
 * settings. */
static const lq_recipe_eval *report_source(const rr_runner *rn, const char **file) {
    *file = rn->o->report_file;
    for (int i = 0; i < rn->r->n_stages; i++)
        if (rn->r->stages[i].kind == LQ_STAGE_EVAL) {
            if (!*file) *file = rn->r->stages[i].eval.files[0];
            return &rn->r->stages[i].eval;
        }
    return NULL;
}

static json_t *report_row(const char *name, const char *path, const lq_recipe_model_summary *sm,
                          const lq_recipe_compare *k, bool base) {
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(name));
    json_object_set_new(o, "path", json_string(path));
    json_object_set_new(o, "format", json_string(sm->format));
    json_object_set_new(o, "disk_bytes", json_integer((json_int_t)sm->disk_bytes));
    json_object_set_new(o, "params", json_integer(sm->n_params));
    json_object_set_new(o, "bpw_linear", json_real(sm->bpw_linear));
    json_object_set_new(o, "bpw_overall", json_real(sm->bpw_overall));
    json_object_set_new(o, "ppl", k ? json_real(base ? k->base_ppl : k->ppl) : json_null());
    json_object_set_new(o, "delta_ppl", k ? json_real(base ? 0.0 : k->delta_ppl) : json_null());
    json_object_set_new(o, "delta_ppl_pct", k ? json_real(base ? 0.0 : k->delta_ppl_pct) : json_null());
    json_object_set_new(o, "kld_mean", k ? json_real(base ? 0.0 : k->kld_mean) : json_null());
    json_object_set_new(o, "same_top", k ? json_real(base ? 1.0 : k->same_top) : json_null());
    return o;
}

static lq_status build_report(rr_runner *rn, json_t *out) {
    const lq_recipe_measure *me = &rn->o->measure;
    const char *file = NULL;
    const lq_recipe_eval *ev = report_source(rn, &file);
    if (!me->summary || (file && !me->compare))
        return lq_fail(LQ_ERR_INVALID_ARG, "recipe report: no evaluator was given");
    lq_recipe_model_summary sb = {.disk_bytes = 0}, sm = {.disk_bytes = 0};
    lq_recipe_compare k = {0};
    LQ_TRY(me->summary(me->user, rn->o->model, &sb));
    LQ_TRY(me->summary(me->user, rn->o->work_dir, &sm));
    if (file)
        LQ_TRY(me->compare(me->user, rn->o->model, rn->o->work_dir, file, ev ? ev->ctx : 512, ev && ev->per_line,
                           ev ? ev->separator : "", &k));
    json_object_set_new(out, "file", file ? json_string(file) : json_null());
    json_object_set_new(out, "mode", json_string(ev && ev->per_line ? "per-line" : "chunks"));
    json_t *arr = json_array();
    json_array_append_new(arr, report_row("baseline", rn->o->model, &sb, file ? &k : NULL, true));
    json_array_append_new(arr, report_row("result", rn->o->out, &sm, file ? &k : NULL, false));
    json_object_set_new(out, "rows", arr);
    if (file) json_object_set_new(out, "tokens_scored", json_integer(k.n_scored));
    return LQ_OK;
}

/* ---- quant-recipe.json ----------------------------------------------------------------------- */

static json_t *run_record(const rr_runner *rn, json_t *report, double t0) {
    json_t *meta = json_object();
    json_object_set_new(meta, "tool", json_string(rn->o->tool ? rn->o->tool : "libquant"));
    json_object_set_new(meta, "version", json_string(LQ_VERSION_STRING));
    json_object_set_new(meta, "recipe", json_string("recipe.yaml"));
    json_object_set_new(meta, "recipe_source", json_string(rn->r->path));
    json_object_set_new(meta, "model", json_string(rn->o->model));
    json_object_set_new(meta, "out", json_string(rn->o->out));
    json_object_set_new(meta, "threads", json_integer(rn->o->pool ? lq_pool_size(rn->o->pool) : 1));
    json_object_set(meta, "stages", rn->log);
    json_object_set_new(meta, "report", report);
    json_object_set_new(meta, "seconds", json_real(rr_now() - t0));
    return meta;
}

lq_status rr_finish(rr_runner *rn, double t0, char **json) {
    *json = NULL;
    const char *top = rn->o->work_dir;
    lq_status s = rn->changed ? adopt_step(rn->cur, top) : LQ_OK;
    if (s == LQ_OK && rm_tree(rn->steps) != 0) s = lq_fail(LQ_ERR_IO, "cannot remove %s", rn->steps);
    json_t *report = json_object();
    double tr = rr_now();
    if (s == LQ_OK && rn->changed) {
        rr_note(rn, "report: baseline vs result");
        s = build_report(rn, report);
    }
    json_object_set_new(report, "seconds", json_real(rr_now() - tr));
    char path[PATH_MAX];
    if (s == LQ_OK && (s = rr_path(path, sizeof path, top, "recipe.yaml")) == LQ_OK) s = lq_file_copy(rn->r->path, path);
    json_t *meta = run_record(rn, report, t0);
    char *text = json_dumps(meta, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(meta);
    if (s == LQ_OK && !text) s = lq_fail(LQ_ERR_NOMEM, "cannot render quant-recipe.json");
    if (s == LQ_OK && (s = rr_path(path, sizeof path, top, "quant-recipe.json")) == LQ_OK)
        s = write_line(path, text);
    if (s == LQ_OK) *json = text;
    else free(text);
    return s;
}
