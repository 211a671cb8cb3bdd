/* tool_sample.h - the decoding options quant-run and quant-distill share (lq_tool library):
 * greedy (default), sampling (--temperature, --top-k, --top-p, --min-p, --seed,
 * --repeat-penalty, --repeat-last-n) and beam search (--beams, --length-penalty, --n-best).
 *
 *     tool_sample_args s;
 *     tool_sample_args_init(&s);
 *     while (tool_args_next(&t)) {
 *         int rc;
 *         if (tool_sample_arg(&t, &s, &rc)) { if (rc) return rc; }
 *         else if ...
 *     }
 *     if ((rc = tool_sample_finish(&s, clock_seed)) != 0) return rc;
 *
 * Giving any sampling option turns sampling on; the others then take llama.cpp's defaults
 * (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05). Beam search scores raw log-probs, so it
 * takes no sampling or penalty option. */
#ifndef TOOL_SAMPLE_H
#define TOOL_SAMPLE_H

#include "libquant.h"
#include "tool_cli.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define TOOL_SAMPLE_DEF_TEMPERATURE 0.8f
#define TOOL_SAMPLE_DEF_TOP_K 40
#define TOOL_SAMPLE_DEF_TOP_P 0.95f
#define TOOL_SAMPLE_DEF_MIN_P 0.05f

typedef struct tool_sample_args {
    lq_sample_params sp;
    bool sampling; /* a sampling option was given (set by tool_sample_finish) */
    bool set_temp, set_k, set_p, set_minp, set_seed, set_penalty, set_beam_opts;
    int beams, n_best;
    float length_penalty;
} tool_sample_args;

/* Greedy, no penalty, 1 beam, n-best 1, length penalty 1. */
void tool_sample_args_init(tool_sample_args *s);

/* If the current argument is a decoding option, take it (and its value) and return true; *rc is
 * then 0, or the exit code of a bad value (already reported). False: not a decoding option. */
bool tool_sample_arg(tool_args *t, tool_sample_args *s, int *rc);

/* Check the combination and fill the sampling defaults. Without --seed: from the clock when
 * `clock_seed` (reported by the tool, so the run can be repeated), else 0. 0 or 2 (reported). */
int tool_sample_finish(tool_sample_args *s, bool clock_seed);

/* The usage lines of the options above (for a tool's --help). */
void tool_sample_usage(FILE *f);

/* A float option as the decimal the user typed (0.8, not 0.80000001192092896). */
json_t *tool_json_float(float x);

/* A JSON string of bytes that may not be UTF-8 (a byte-fallback piece can be half a character):
 * invalid bytes become U+FFFD; *lossy (may be NULL) tells whether any did. */
json_t *tool_json_text(const char *bytes, size_t len, bool *lossy);

#endif
