/* ptq_smooth.h - quant-ptq --method awq | smoothquant[+gptq]: the options, the smoothing run into
 * a float directory inside the output's temp directory (lq_smooth_transform), which quant-ptq
 * then quantizes as any float model (RTN, GPTQ, GGUF types), and the per-mapping summary. */
#ifndef PTQ_SMOOTH_H
#define PTQ_SMOOTH_H

#include <limits.h>
#include <stdbool.h>

#include "libquant/lq_ptq.h"
#include "libquant/lq_smooth.h"
#include "tool_cli.h"
#include "tool_gptq.h"

typedef struct ptq_smooth {
    bool on;
    lq_smooth_opts o;
    bool duo_set, grid_set, alpha_set;
    lq_smooth_summary sum;
    char dir[PATH_MAX];          /* the smoothed float model (removed by ptq_smooth_cleanup) */
} ptq_smooth;

/* Consume --method awq|smoothquant|smoothquant+gptq|awq+gptq, --smoothquant A,
 * --smoothing-strength A, --duo-scaling V, --awq-grid N (other --method values are left to
 * tool_gptq_arg). True when consumed; *rc is then 0 or the bad-arguments exit code. */
bool ptq_smooth_arg(tool_args *a, ptq_smooth *s, tool_gptq *g, int *rc);
/* After the loop: take the calibration options from g (they belong to the smoothing when GPTQ
 * is off), check what goes together. 0 or the exit code. */
int ptq_smooth_check(ptq_smooth *s, tool_gptq *g, const lq_ptq_opts *o, int n_calib, const char **calib);
/* Smooth `model` into "<parent>/.smoothed" (parent: the output's temp directory, or any
 * directory that gets removed on failure); s->dir names it. Progress per layer on stderr. */
lq_status ptq_smooth_run(ptq_smooth *s, const char *model, const char *parent, const char *tok_path,
                         bool show_progress);
/* Text lines, or the JSON fields to add to the summary object (", \"awq\": {...}"). */
void ptq_smooth_print(const ptq_smooth *s, bool json);
/* Remove s->dir (before the output is committed). */
lq_status ptq_smooth_drop_dir(ptq_smooth *s);
/* Remove s->dir (if still there) and free the summary. */
void ptq_smooth_cleanup(ptq_smooth *s);
/* The --help paragraph. */
void ptq_smooth_usage(FILE *f);

#endif
