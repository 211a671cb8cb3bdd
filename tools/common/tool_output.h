/* tool_output.h - the steps of a model -> model tool (quant-ptq, quant-prune) around its library
 * call (lq_tool library): start the atomic output directory, carry the tokenizer files over,
 * print JSON strings in the summary.
 *
 *     tool_outdir od;
 *     if ((rc = tool_output_start(&od, out_dir, model, force)) != 0) goto out;   reported
 *     tool_progress prog;  ... opts.progress = tool_progress_cb; opts.user = &prog;  (tool_progress.h)
 *     s = lq_xxx_run(model, od.tmp, &opts, &sum);
 *     if (s == LQ_OK) s = tool_output_copy_side_files(&od, model);
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

/* Copy the regular file src to dst, durably (lq_file.h); retries EINTR. */
lq_status tool_copy_file(const char *src, const char *dst);

/* Tokenizer and generation files next to the weights (tokenizer.json, tokenizer_config.json,
 * generation_config.json, special_tokens_map.json, when present) into od->tmp unchanged. A model
 * that is not a directory (a llama2.c .bin) has none. */
lq_status tool_output_copy_side_files(const tool_outdir *od, const char *model);

/* `s` as a JSON string on stdout: '"' and '\\' escaped, control bytes as \u00XX, other bytes as
 * they are. */
void tool_print_json_string(const char *s);

#endif
