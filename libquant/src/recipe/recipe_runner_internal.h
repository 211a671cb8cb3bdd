/* recipe_runner_internal.h - state of one lq_recipe_run shared by the stage runner
 * (recipe_runner.c) and what finishes a run (recipe_finish.c: report, files, quant-recipe.json). */
#ifndef LQ_RECIPE_RUNNER_INTERNAL_H
#define LQ_RECIPE_RUNNER_INTERNAL_H

#include <jansson.h>
#include <limits.h>

#include "libquant/lq_checkpoint.h"
#include "libquant/lq_file.h"
#include "libquant/lq_recipe.h"

typedef struct rr_runner {
    const lq_recipe *r;
    const lq_recipe_run_opts *o;
    char steps[PATH_MAX];   /* <work_dir>/.steps: one directory per modifier applied */
    char cur[PATH_MAX];     /* the model the next stage reads */
    char prev[PATH_MAX];    /* the model before the last stage that changed it */
    int n_steps, n_distill;
    bool changed;           /* some modifier has run: cur is not the input */
    bool gate_failed;       /* an eval_stage threshold failed (message in lq_last_error) */
    json_t *log;            /* per-stage records for quant-recipe.json */
} rr_runner;

/* One line for o->note (printf-style). */
void rr_note(const rr_runner *rn, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* dir/name into buf; LQ_ERR_INVALID_ARG when it does not fit. */
lq_status rr_path(char *buf, size_t cap, const char *dir, const char *name);

/* After the stages: move the last step's files to the top of work_dir, remove the steps, build
 * the report, copy the recipe and write quant-recipe.json (its text into *json). */
lq_status rr_finish(rr_runner *rn, double t0, char **json);

double rr_now(void);

#endif
