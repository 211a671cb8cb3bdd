/* prune_calib.h - quant-prune --method wanda|sparsegpt: the calibration options, the run with
 * per-layer progress and ETA, and the per-Linear summary. The work is lq_sparse_prune
 * (libquant/include/libquant/lq_sparsegpt.h); this keeps it out of quant-prune.c. */
#ifndef PRUNE_CALIB_H
#define PRUNE_CALIB_H

#include <stdbool.h>

#include "libquant/lq_sparsegpt.h"
#include "tool_cli.h"

#define PRUNE_CALIB_MAX 16

typedef struct prune_calib {
    bool on;                     /* --method wanda or sparsegpt */
    const char *calib[PRUNE_CALIB_MAX];
    int n_calib;
    bool have_damp, have_block;
    lq_sparse_opts o;            /* everything but the prune part, filled by the options */
    lq_sparse_summary sum;
} prune_calib;

/* --method wanda|sparsegpt: true when `method` names one (sets g->on and the method). */
bool prune_calib_method(prune_calib *g, const char *method);
/* Consume --calib, --calib-samples, --calib-len, --calib-seed, --dampening, --block-size,
 * --tokenizer. Returns true when consumed; *rc then holds 0 or the bad-arguments exit code. */
bool prune_calib_arg(tool_args *a, prune_calib *g, int *rc);
/* After the loop: 0, or the exit code for options that do not go together. */
int prune_calib_check(const prune_calib *g);
/* Run into out_dir with the prune options p; per-layer progress with ETA when show_progress. */
lq_status prune_calib_run(prune_calib *g, const char *model, const char *out_dir, const lq_prune_opts *p,
                          bool show_progress);
/* The calibration lines (text), or the fields to add to the JSON object (", \"calibrated\": {...}"). */
void prune_calib_print(const prune_calib *g, bool json);
void prune_calib_free(prune_calib *g);

#endif
