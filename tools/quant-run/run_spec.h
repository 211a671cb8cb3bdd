/* run_spec.h - quant-run --draft MODEL [--draft-max K]: speculative decoding (lq_spec.h) with a
 * draft model, then the target alone on the same prompt and options, for the speedup (and, for
 * greedy, a check that the text is the same). */
#ifndef RUN_SPEC_H
#define RUN_SPEC_H

#include "libquant.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

typedef struct tool_spec {
    const char *target_path, *draft_path;
    int draft_max;
    lq_model *draft;          /* owned */
    lq_tokenizer *draft_tok;  /* owned */
    lq_spec_result r;         /* the speculative run */
    /* the target alone: same prompt, parameters and max tokens */
    double base_decode_tok_s, base_total_s;
    int64_t base_generated;
    bool greedy;
    bool base_ran, identical; /* identical: greedy ids equal the target alone's */
    int32_t *ids;             /* (n_ids) the speculative run's tokens, for the comparison */
    int64_t n_ids, cap_ids;
} tool_spec;

/* Load the draft (its tokenizer: tok_path, as for the target, or the one beside it) and check
 * that it shares the target's vocabulary: the same vocab_size and the same tokenizer (hash);
 * else one line naming both models. 0 or an exit code. */
int tool_spec_load(tool_spec *sp, const char *target_path, const lq_model *target,
                   const lq_tokenizer *ttok, const char *draft_path, const char *tok_path,
                   int draft_max);
void tool_spec_free(tool_spec *sp);

/* Generate as lq_sample_generate does (same callback, options and result fields), speculatively
 * with the draft; then run the target alone on a fresh session for the comparison. */
lq_status tool_spec_generate(tool_spec *sp, const lq_model *m, lq_pool *pool,
                             const lq_sample_params *params, const int32_t *prompt, int n_prompt,
                             const lq_sample_gen_opts *o, lq_sample_token_fn cb, void *user,
                             lq_sample_gen_result *out);

/* The summary: a stderr line, or members of the --json object. */
void tool_spec_print(const tool_spec *sp, FILE *f);
void tool_spec_json(const tool_spec *sp, json_t *j);

#endif
