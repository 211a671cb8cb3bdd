/* tool_model.h - loading a model with its tokenizer, and printing JSON results, as the quant-*
 * tools that run a model do (lq_tool library). */
#ifndef TOOL_MODEL_H
#define TOOL_MODEL_H

#include "libquant.h"

#include <jansson.h>
#include <stdbool.h>

/* lq_model_load(path), then its tokenizer (lq_eval_load_tokenizer: tok_path when given, else the
 * one next to the model). 0, or the exit code after "<tool>: error: ..." (then *m and *tok are
 * NULL and nothing is held). */
int tool_load_model(const char *path, const char *tok_path, lq_model **m, lq_tokenizer **tok);

/* Print j on stdout indented by 2 in insertion order with a newline, and drop the reference.
 * False (nothing printed) when jansson could not format it. */
bool tool_print_json(json_t *j);

#endif
