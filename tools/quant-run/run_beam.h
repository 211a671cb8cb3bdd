/* run_beam.h - quant-run --beams N: beam search (lq_beam_search) from the prompt's ids, the best
 * hypothesis (or the --n-best best) printed when the search ends, or as one JSON object. */
#ifndef RUN_BEAM_H
#define RUN_BEAM_H

#include "libquant.h"
#include "tool_sample.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Search with dec's beams, n-best and length penalty for at most max_tokens tokens after ids (n
 * of them, the tokens of prompt, plen bytes); print the prompt and each hypothesis on stdout
 * (json: one object instead) and the speed on stderr. 0 or an exit code. */
int tool_beam_run(const tool_sample_args *dec, int max_tokens, bool json, const lq_model *m,
                  lq_pool *pool, const lq_tokenizer *tok, const int32_t *ids, int n,
                  const char *prompt, size_t plen);

#endif
