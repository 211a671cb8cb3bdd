/* lq_chat.h - chat templates without Jinja: recognize the common template families from the
 * template string (as llama.cpp's llama-chat.cpp does) and render a conversation the way the
 * model's own Jinja template does under transformers' apply_chat_template.
 *
 * Families: chatml (with the default system prompt some templates insert, e.g. SmolLM2, Qwen2.5),
 * gemma (Gemma 1/2/3: a system message goes before the first user message), llama3 and
 * llama3.1 (the "Cutting Knowledge Date" system header), llama2 (Llama-2-chat <<SYS>>, and the
 * plain [INST] form), mistral-v1, mistral-v3, mistral-v3-tekken, mistral-v7, mistral-v7-tekken,
 * phi3, zephyr. Anything else is refused with a message that quotes the template's start.
 *
 * The rendered text holds the template's special tokens as text ("<|im_start|>", "<bos>"):
 * encode it with lq_tokenizer_encode(add_bos = false, parse_special = true), as transformers
 * tokenizes a rendered chat (the template decides where BOS goes).
 * Checked against transformers' rendering of real models' templates (tests/test_chat_template.c,
 * fixtures made by scripts/chat_fixtures/make_fixtures.py).
 */
#ifndef LQ_CHAT_H
#define LQ_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include "lq_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lq_chat_template lq_chat_template;

/* One message: role "system" (first message only), "user" or "assistant". */
typedef struct lq_chat_msg {
    const char *role;
    const char *content;
} lq_chat_msg;

/* Recognize `tmpl`: a Jinja chat template string, or one of the family names above ("chatml",
 * "gemma", "llama3", ...). LQ_ERR_UNSUPPORTED names the template's first characters when no
 * family matches. `what` names the template's origin in messages (a file; may be NULL). */
lq_status lq_chat_template_parse(const char *tmpl, const char *what, lq_chat_template **out);
void lq_chat_template_free(lq_chat_template *t);

/* The family's name ("chatml", "gemma", "llama3.1", "mistral-v7-tekken", ...). */
const char *lq_chat_template_name(const lq_chat_template *t);
/* The default system prompt the template inserts when the conversation has none; NULL if none. */
const char *lq_chat_template_default_system(const lq_chat_template *t);
/* Render without the template's default system prompt (quant-run --system ''): a conversation
 * without a system message then has no system turn at all. */
void lq_chat_template_drop_default_system(lq_chat_template *t);
/* Text of the token that ends an assistant turn ("<|im_end|>", "<end_of_turn>", "<|eot_id|>",
 * "<|end|>"); for families that end a turn with EOS (llama2, mistral, zephyr) `eos_text`. */
const char *lq_chat_template_end_of_turn(const lq_chat_template *t, const char *eos_text);

/* Render `n` messages into a malloc'd NUL-terminated string *out (free() it; *len may be NULL).
 * `bos_text` / `eos_text` are the tokenizer's BOS / EOS token texts ("" or NULL if it has none).
 * add_generation_prompt appends the header that opens the assistant's reply. A role other than
 * system/user/assistant, or a system message after the first, is LQ_ERR_INVALID_ARG. */
lq_status lq_chat_render(const lq_chat_template *t, const lq_chat_msg *msgs, int n,
                         const char *bos_text, const char *eos_text, bool add_generation_prompt,
                         char **out, size_t *len);

/* The chat template that ships with a model: GGUF `tokenizer.chat_template` when `tok_path` or
 * `model_path` is a .gguf file; else chat_template.jinja in the model directory (transformers
 * >= 4.47 saves it there), else `chat_template` of its tokenizer_config.json (a string, or the
 * entry named "default" of a list of {name, template}).
 * LQ_ERR_NOT_FOUND (naming the file) when the model has none. *out is malloc'd. */
lq_status lq_chat_template_read(const char *model_path, const char *tok_path, char **out);

#ifdef __cplusplus
}
#endif
#endif
