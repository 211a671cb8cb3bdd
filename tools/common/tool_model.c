/* tool_model.c - model + tokenizer loading and JSON output for the tools (tool_model.h). */
#include "tool_model.h"

#include "lq_eval.h"
#include "tool_cli.h"

#include <stdio.h>
#include <stdlib.h>

int tool_load_model(const char *path, const char *tok_path, lq_model **m, lq_tokenizer **tok) {
    *m = NULL;
    *tok = NULL;
    lq_status s = lq_model_load(path, m);
    if (s != LQ_OK) return tool_fail(s);
    s = lq_eval_load_tokenizer(*m, path, tok_path, tok);
    if (s != LQ_OK) {
        lq_model_free(*m);
        *m = NULL;
        return tool_fail(s);
    }
    return 0;
}

bool tool_print_json(json_t *j) {
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!s) return false;
    printf("%s\n", s);
    free(s);
    return true;
}
