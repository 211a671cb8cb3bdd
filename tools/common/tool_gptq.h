/* tool_gptq.h - quant-ptq --method gptq: its options, the run with per-layer progress and ETA,
 * and the per-Linear output-error table (lq_tool library). The work is lq_gptq_quantize
 * (libquant/include/libquant/lq_gptq.h); this is the CLI around it, kept out of quant-ptq.c. */
#ifndef TOOL_GPTQ_H
#define TOOL_GPTQ_H

#include <stdbool.h>

#include "libquant/lq_gptq.h"
#include "tool_cli.h"

#define TOOL_GPTQ_MAX_CALIB 16

typedef struct tool_gptq {
    bool on;                     /* --method gptq */
    const char *calib[TOOL_GPTQ_MAX_CALIB];
    int n_calib;
    lq_gptq_opts o;              /* everything but the ptq part, filled by the options */
    lq_gptq_summary sum;
} tool_gptq;

/* Consume the current argument if it is one of --method, --calib-samples, --calib-len,
 * --calib-seed, --dampening, --actorder, --block-size (and note every --calib). Returns true when
 * consumed; *rc then holds 0 or the bad-arguments exit code. */
bool tool_gptq_arg(tool_args *a, tool_gptq *g, int *rc);
/* After the loop: 0, or the exit code for options that do not go together. */
int tool_gptq_check(const tool_gptq *g, const lq_ptq_opts *o);
/* Run it into out_dir with the ptq options o; progress per layer with ETA on a TTY. */
lq_status tool_gptq_run(tool_gptq *g, const char *model, const char *out_dir, const char *tok_path,
                        const lq_ptq_opts *o, bool show_progress);
/* The per-Linear table (text), or the fields to add to the JSON summary object (", \"gptq\": {...}"). */
void tool_gptq_print(const tool_gptq *g, bool json);
void tool_gptq_free(tool_gptq *g);

#endif
