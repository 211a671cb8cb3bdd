/* eval_modes.h - what quant-eval.c (the options, perplexity, dispatch) shares with the files of
 * its other modes: --bench (bench.c), --kld (kld.c) and --compare (compare.c). The parsed
 * arguments, the helpers several modes use, and each mode's run. */
#ifndef QUANT_EVAL_MODES_H
#define QUANT_EVAL_MODES_H

#include "lq_eval.h"
#include "tool_progress.h"

#include <stdbool.h>
#include <stddef.h>

/* Streaming buffer for the bandwidth yardstick: far larger than any last-level cache. */
#define BW_BYTES ((size_t)512 << 20)
#define BW_REPS 5

#define MAX_COMPARE 64

typedef struct quant_eval_args {
    const char *model, *tokenizer, *file, *separator;
    const char *kld, *base_tokenizer, *baseline, *html;
    const char *command;           /* the command line, for the --html page */
    const char *dirs[MAX_COMPARE]; /* --compare: the checkpoints, in table order */
    int n_dirs;
    int ctx, threads, chunks, n_prompt, n_gen, reps;
    bool per_line, json, bench, compare, markdown, base_f32_act;
    bool bench_sizes_set;          /* --n-prompt / --n-gen / --reps given */
    const char *draft_eval;        /* --draft-eval BASELINE (not with --compare) */
    bool draft_cmp;                /* --compare ... --draft-eval */
    int draft_max, draft_prompt, draft_gen;
    lq_device device;              /* --device: where --model runs */
    lq_kv_type kv_cache;           /* --kv-cache: element type of --model's KV cache */
    bool kv_cache_set;
} quant_eval_args;

/* ---- shared by the modes (quant-eval.c) ------------------------------------------------------ */

/* The "KV cache: ..." text line of --model's cache, unless it is the default f32 one. */
void quant_eval_kv_print(const quant_eval_args *a, const lq_model *m);
/* Options of a perplexity / KL run, drawing `bar` (begun here; the caller ends it) unless --json. */
lq_ppl_opts quant_eval_ppl_opts(const quant_eval_args *a, tool_progress *bar, const char *label);
/* --draft-eval's options: the perplexity chunks, the draft sizes (progress set by the caller) */
lq_draft_eval_opts quant_eval_draft_opts(const quant_eval_args *a);
/* Read a whole text file; an empty one is bad input (exit 2). 0 or an exit code. */
int quant_eval_read_text(const char *path, char **text, size_t *len);

/* ---- the modes: 0 or an exit code after a one-line error ------------------------------------ */

/* --bench: llama-bench style prefill / decode speed of m and the read-bandwidth ratio. */
int quant_eval_run_bench(const quant_eval_args *a, const lq_model *m, lq_pool *pool);
/* --kld BASELINE: KL divergence of m against the baseline on --file. */
int quant_eval_run_kld(const quant_eval_args *a, const lq_model *m, lq_pool *pool);
/* --compare DIR...: one table row per checkpoint (Markdown, --json, --html). */
int quant_eval_run_compare(const quant_eval_args *a, lq_pool *pool);

#endif
