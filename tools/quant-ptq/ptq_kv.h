/* ptq_kv.h - quant-ptq --kv-cache-scheme fp8|int8: calibrate static KV-cache scales on the float
 * model (the --calib texts) and write them with the weights as compressed-tensors'
 * kv_cache_scheme (lq_kv_calibrate, lq_ptq_opts.kv). */
#ifndef PTQ_KV_H
#define PTQ_KV_H

#include <stdbool.h>

#include "libquant/lq_gptq.h"
#include "libquant/lq_ptq.h"
#include "tool_cli.h"
#include "tool_gptq.h"

typedef struct ptq_kv {
    bool on;
    bool is_float, per_head;
    lq_calib_source src;   /* the --calib texts and sample options */
    lq_ptq_kv kv;          /* the calibrated scales */
} ptq_kv;

/* Consume --kv-cache-scheme fp8|int8 and --kv-cache-strategy tensor|attn_head. True when
 * consumed; *rc is then 0 or the bad-arguments exit code. */
bool ptq_kv_arg(tool_args *a, ptq_kv *k, int *rc);
/* After the loop, before tool_gptq_check: take the --calib texts and sample options from g
 * (they belong to the KV calibration when neither GPTQ nor smoothing runs). 0 or the exit code. */
int ptq_kv_check(ptq_kv *k, tool_gptq *g, bool smoothing, const char *tok_path);
/* Calibrate on the float model at `model`; then o->kv points at the scales. */
lq_status ptq_kv_run(ptq_kv *k, const char *model, lq_ptq_opts *o, bool show_progress);
/* One text line, or the JSON fields to add to the summary object (", \"kv_cache\": {...}"). */
void ptq_kv_print(const ptq_kv *k, bool json);
void ptq_kv_free(ptq_kv *k);

#endif
