/* tool_gguf.h - the GGUF output of quant-ptq --format gguf and quant-convert: one library call
 * (lq_gguf_export) between the output-file checks and the summary. */
#ifndef TOOL_GGUF_H
#define TOOL_GGUF_H

#include <stdbool.h>
#include <stddef.h>

#include "libquant/lq_gguf_quant.h"

/* Parse llama-quantize's --tensor-type "PATTERN=TYPE" (type: a ggml type name, any case); the
 * pattern is copied into pat (cap bytes), which out->pattern then points to. Returns 0 or the exit
 * code (message printed). */
int tool_gguf_parse_rule(const char *arg, char *pat, size_t cap, lq_gguf_tensor_rule *out);

/* Export model -> out (a .gguf file): refuses an existing out without force and an out that is
 * an input, draws the progress bar, prints the summary (text or --json). Returns the exit code. */
int tool_gguf_run(const char *model, const char *out, lq_gguf_export_opts *o, bool force, bool json);

#endif
