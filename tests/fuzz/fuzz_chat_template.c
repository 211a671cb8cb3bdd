/* fuzz_chat_template.c - libFuzzer target: arbitrary bytes as a chat template (GGUF
 * tokenizer.chat_template / tokenizer_config.json chat_template / --chat-template FILE).
 *
 * lq_chat_template_parse either refuses with one line naming the source or gives a template
 * that renders a conversation (system + user + the input as the assistant's reply + user) whose
 * text holds the system and user contents, without reading past any of them (the reply goes
 * through the families' whitespace trimming, UTF-8 or not). Seeds: the real
 * templates of tests/fixtures/chat (copied to tests/fuzz/corpus/chat_template).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libquant/lq_chat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define WHAT "dir/tokenizer_config.json"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0; /* a NUL inside ends the template, as a C string would */
    lq_chat_template *t = NULL;
    if (lq_chat_template_parse(text, WHAT, &t) != LQ_OK) {
        const char *msg = lq_last_error();
        if (!*msg || strchr(msg, '\n') || !strstr(msg, WHAT)) {
            fprintf(stderr, "bad message: '%s'\n", msg);
            abort();
        }
        free(text);
        return 0;
    }
    /* the input is also a reply: trimming sees arbitrary bytes (UTF-8 or not) */
    const lq_chat_msg conv[] = {{"system", "SYS"}, {"user", "U1"}, {"assistant", text},
                                {"user", "U2"}};
    char *out = NULL;
    size_t len = 0;
    if (lq_chat_render(t, conv, 4, "<s>", "</s>", true, &out, &len) != LQ_OK) abort();
    if (strlen(out) != len || !strstr(out, "U1") || !strstr(out, "U2") || !strstr(out, "SYS") ||
        !lq_chat_template_end_of_turn(t, "</s>")) {
        fprintf(stderr, "%s: rendered '%s'\n", lq_chat_template_name(t), out);
        abort();
    }
    free(out);
    lq_chat_template_free(t);
    free(text);
    return 0;
}
