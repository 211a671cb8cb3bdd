/* run_draft.h - quant-eval --draft-eval BASELINE: the model as speculative draft of its baseline
 * on a text (lq_eval_draft), printed or as JSON. */
#ifndef RUN_DRAFT_H
#define RUN_DRAFT_H

#include "lq_eval.h"

#include <stdbool.h>

typedef struct tool_draft_args {
    const char *model, *baseline, *tokenizer, *base_tokenizer, *file;
    lq_draft_eval_opts opts;  /* chunks, prompt / gen / K (all set: the printout shows them) */
    bool json;
} tool_draft_args;

/* Load the baseline, run lq_eval_draft of m against it, print. 0 or an exit code. */
int tool_draft_eval_run(const tool_draft_args *a, const lq_model *m, lq_pool *pool);

#endif
