/* run_chat.h - quant-run --chat: a conversation through the model's chat template (lq_chat.h),
 * one-shot (a prompt) or interactive (one user turn per stdin line, history kept), generation
 * ending at the template's end-of-turn token or EOS. */
#ifndef RUN_CHAT_H
#define RUN_CHAT_H

#include "libquant.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct tool_chat_opts {
    const char *model_path, *tok_path;
    const char *template_arg; /* --chat-template: a family name or a file; NULL = the model's */
    const char *system;       /* --system TEXT; "" = no system turn at all; NULL = default */
    int max_tokens;           /* per reply */
    lq_sample_params sp;      /* decoding; each turn's sampler gets seed + turn */
    bool json;                /* one-shot only: one JSON object instead of streaming */
} tool_chat_opts;

/* Run the chat. `prompt` (plen bytes) is the one user message; NULL reads user turns from stdin
 * until EOF or an empty line, printing "> " on stderr before each when stdin is a terminal.
 * Replies stream to stdout, one per turn, each ended by a newline; speed goes to stderr.
 * Returns 0 or the exit code after a one-line error. */
int tool_chat_run(const tool_chat_opts *o, const lq_model *m, const lq_tokenizer *tok,
                  lq_pool *pool, const char *prompt, size_t plen);

#endif
