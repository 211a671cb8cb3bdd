/* run_output.h - what quant-run writes: the text it streams to stdout, and the log of generated
 * tokens behind --json and the beam-search printout (output.c); shared by greedy / sampling
 * (quant-run.c) and beam search (beam.c). */
#ifndef RUN_OUTPUT_H
#define RUN_OUTPUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What has gone to stdout so far: the text must end with a newline before the speed line goes
 * to stderr, or a terminal shows "...Lily.40 tokens, ..." on one line. */
typedef struct tool_out_state {
    size_t bytes;
    char last;
} tool_out_state;

/* Write len bytes to stdout, remembering the last one. */
void tool_out_write(tool_out_state *o, const char *bytes, size_t len);

/* Generated tokens with their decoded pieces, for --json and beam output. */
typedef struct tool_tok_log {
    int32_t *ids;
    double *lp, *lp_proc;
    size_t *off;  /* (n + 1) piece i is text[off[i] .. off[i+1]) */
    char *text;
    size_t len, cap_text;
    int n, cap;
} tool_tok_log;

/* Append one token and its piece (plen bytes); false when out of memory. */
bool tool_log_push(tool_tok_log *l, int32_t id, double lp, double lp_proc, const char *piece,
                   size_t plen);
/* Free the buffers and zero l. */
void tool_log_free(tool_tok_log *l);
/* [{"id", "text", ("bytes" when text is lossy), "logprob", ("logprob_processed")}] */
json_t *tool_log_json(const tool_tok_log *l, bool processed);
/* The sum of the logged tokens' log-probabilities ("logprob"). */
double tool_log_sum(const tool_tok_log *l);

/* "eos", "max_tokens" or "context": why generation ended, for --json's "stop". */
const char *tool_stop_reason(bool hit_stop, int64_t n, int max_tokens);

#endif
