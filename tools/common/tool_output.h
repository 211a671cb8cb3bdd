/* tool_output.h - the steps of a model -> model tool (quant-ptq, quant-prune) around its library
 * call (lq_tool library): start the atomic output directory, print JSON strings in the summary.
 * The tokenizer files are carried over by the library (lq_checkpoint_copy_side_files).
 *
 *     tool_outdir od;
 *     if ((rc = tool_output_start(&od, out_dir, model, force)) != 0) goto out;   reported
 *     tool_progress prog;  ... opts.progress = tool_progress_cb; opts.user = &prog;  (tool_progress.h)
 *     s = lq_xxx_run(model, od.tmp, &opts, &sum);
 *     if (s == LQ_OK) s = lq_checkpoint_copy_side_files(model, od.tmp);
 *     if (s == LQ_OK) s = tool_outdir_commit(&od);
 */
#ifndef TOOL_OUTPUT_H
#define TOOL_OUTPUT_H

#include "tool_outdir.h"

#include <stdbool.h>
#include <stdint.h>

/* Refuse an output that could touch the model ("refusing to write into the input"), check that
 * the model exists ("cannot open model"), then tool_outdir_begin ("cannot create output").
 * 0, or the exit code of the failure (already reported as one error line). */
int tool_output_start(tool_outdir *od, const char *out_dir, const char *model, bool force);

/* `s` as a JSON string on stdout: '"' and '\\' escaped, control bytes as \u00XX, other bytes as
 * they are. */
void tool_print_json_string(const char *s);

#endif
