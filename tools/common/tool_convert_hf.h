/* tool_convert_hf.h - a llama2.c or GGUF checkpoint written as a Hugging Face directory.
 *
 * quant-convert's GGUF / llama2.c -> HF path, and the way quant-ptq and quant-prune take a GGUF
 * model: they convert it to a float HF directory inside their own temp output first
 * (tool_output_hf_source), run on that, and drop it before the commit. Without it their output would
 * keep llama.cpp's interleaved q/k rows under a config that transformers reads as HF's rotary
 * layout, and would carry no tokenizer.json.
 */
#ifndef TOOL_CONVERT_HF_H
#define TOOL_CONVERT_HF_H

#include <stdbool.h>
#include <stddef.h>

#include "libquant.h"
#include "tool_outdir.h"

/* Write `in` (a GGUF file when gguf, else a llama2.c .bin whose tokenizer.bin is tok; a GGUF's
 * tokenizer is its own unless tok names another) as the HF directory out_dir: config.json,
 * generation_config.json, model.safetensors (every tensor dequantized to dt; llama q/k rows
 * permuted from interleaved rotary pairs to HF's halves), tokenizer.json and the GGUF's chat
 * template as chat_template.jinja, built under a temp
 * name and renamed when complete (tool_outdir). On failure *what says which step failed and
 * *where names the path it failed on (in, tok or out_dir), for tool_fail_at. */
lq_status tool_convert_to_hf(const char *in, const char *tok, bool gguf, const char *out_dir, lq_dtype dt,
                             bool force, const char **what, const char **where);

/* For a tool that reads an HF directory and writes into od (started by tool_output_start): when
 * *model is a GGUF file, convert it (f32, its own tokenizer and chat template) into
 * "<od->tmp>/.from-gguf" (buf, cap bytes) and point *model there; otherwise leave *model and set
 * buf to "". Says on stderr what it did, and warns when the GGUF holds quantized tensors (the
 * output then re-quantizes values already rounded to that grid, as llama-quantize
 * --allow-requantize does). Returns 0, or the exit code after printing the error (naming the
 * GGUF) and aborting od. Remove buf with tool_rm_tree before committing od. */
int tool_output_hf_source(const char *tool, tool_outdir *od, const char **model, char *buf, size_t cap);

#endif
