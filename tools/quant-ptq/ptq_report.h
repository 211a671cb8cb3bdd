/* ptq_report.h - what quant-ptq prints after a run (text or --json) and the clip search's
 * calibration inputs (its own imatrix from --calib text, or an --imatrix file). */
#ifndef PTQ_REPORT_H
#define PTQ_REPORT_H

#include <stdbool.h>

#include "libquant/lq_calib.h"
#include "lq_pool.h"
#include "libquant/lq_ptq.h"
#include "ptq_automix.h"
#include "ptq_kv.h"
#include "ptq_smooth.h"
#include "tool_gptq.h"

/* The run's summary on stdout: per-tensor errors, the group fallback, the clip search, the
 * calibrated methods' own lines (gq / sm NULL when they did not run). */
void ptq_print_summary(const lq_ptq_summary *r, const lq_ptq_opts *o, const char *out, bool json,
                       const tool_gptq *gq, const ptq_smooth *sm, const ptq_kv *kv, const ptq_automix *mx);

/* The imatrix of the first max_tokens tokens of text_path through the model, for the clip search.
 * Returns 0 or the exit code (the error printed). */
int ptq_collect_calib(const char *model, const char *tok_path, const char *text_path, int max_tokens,
                      lq_pool *pool, lq_imatrix **out);
/* An imatrix file for the clip search, its names resolved through the model's architecture.
 * Returns 0 or the exit code (the error printed). */
int ptq_load_imatrix(const char *model, const char *path, lq_imatrix **out);

#endif
