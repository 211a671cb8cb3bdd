/* chat_template_read.c - where a model's chat template comes from: GGUF
 * `tokenizer.chat_template`; in an HF directory chat_template.jinja (where transformers >= 4.47
 * saves it, and which it prefers), else `chat_template` in tokenizer_config.json (a string, or a
 * list of {"name", "template"} whose "default" entry is the chat template). */
#include "libquant/lq_chat.h"
#include "libquant/lq_file.h"
#include "libquant/lq_gguf.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static lq_status read_gguf(const char *path, char **out) {
    lq_gguf *g = NULL;
    lq_status s = lq_gguf_open(path, &g);
    if (s != LQ_OK) return s;
    lq_gguf_str v;
    s = lq_gguf_get_str(g, "tokenizer.chat_template", &v);
    if (s == LQ_ERR_NOT_FOUND)
        s = lq_fail(LQ_ERR_NOT_FOUND, "%s: no tokenizer.chat_template in the GGUF file", path);
    if (s == LQ_OK && memchr(v.data, 0, (size_t)v.len))
        s = lq_fail(LQ_ERR_FORMAT, "%s: tokenizer.chat_template holds a NUL byte", path);
    if (s == LQ_OK) {
        char *t = malloc((size_t)v.len + 1);
        if (!t) {
            s = lq_fail(LQ_ERR_NOMEM, "%s: out of memory for the chat template", path);
        } else {
            memcpy(t, v.data, (size_t)v.len);
            t[v.len] = 0;
            *out = t;
        }
    }
    lq_gguf_close(g);
    return s;
}

static lq_status read_jinja(const char *path, char **out) {
    FILE *f;
    lq_status s = lq_file_fopen_input(path, &f);
    if (s != LQ_OK) return s;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        char *b = cap < ((size_t)64 << 20) ? realloc(buf, cap * 2) : NULL; /* templates are KBs */
        if (!b) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = b;
        cap *= 2;
    }
    bool bad = ferror(f);
    fclose(f);
    if (!buf) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory (or over 64 MiB)", path);
    if (bad) {
        free(buf);
        return lq_fail(LQ_ERR_IO, "%s: read error", path);
    }
    buf[n] = 0;
    if (strlen(buf) != n) {
        free(buf);
        return lq_fail(LQ_ERR_FORMAT, "%s: the template holds a NUL byte", path);
    }
    *out = buf;
    return LQ_OK;
}

static lq_status read_config(const char *path, char **out) {
    FILE *f;
    lq_status s = lq_file_fopen_input(path, &f);
    if (s != LQ_OK) return s;
    json_error_t err;
    /* model_max_length is often 1e30 written as an integer: read integers as reals */
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &err);
    fclose(f);
    if (!root) return lq_fail(LQ_ERR_FORMAT, "%s: line %d: invalid JSON: %s", path, err.line, err.text);
    json_t *ct = json_object_get(root, "chat_template");
    const char *text = NULL;
    if (json_is_string(ct)) {
        text = json_string_value(ct);
    } else if (json_is_array(ct)) {
        size_t i;
        json_t *e;
        json_array_foreach(ct, i, e) {
            const char *name = json_string_value(json_object_get(e, "name"));
            if (name && strcmp(name, "default") == 0)
                text = json_string_value(json_object_get(e, "template"));
        }
    }
    if (!text) {
        s = ct && !json_is_null(ct)
                ? lq_fail(LQ_ERR_FORMAT, "%s: chat_template is neither a string nor a list with "
                          "a \"default\" entry", path)
                : lq_fail(LQ_ERR_NOT_FOUND, "%s: no chat_template (pass --chat-template)", path);
    } else if (!(*out = strdup(text))) {
        s = lq_fail(LQ_ERR_NOMEM, "%s: out of memory for the chat template", path);
    }
    json_decref(root);
    return s;
}

lq_status lq_chat_template_read(const char *model_path, const char *tok_path, char **out) {
    *out = NULL;
    if (tok_path && ends_with(tok_path, ".gguf")) return read_gguf(tok_path, out);
    if (ends_with(model_path, ".gguf")) return read_gguf(model_path, out);
    struct stat st;
    if (stat(model_path, &st) != 0 || !S_ISDIR(st.st_mode))
        return lq_fail(LQ_ERR_NOT_FOUND, "%s: no chat template with a llama2.c checkpoint (pass "
                       "--chat-template)", model_path);
    size_t n = strlen(model_path) + sizeof "/tokenizer_config.json";
    char *p = malloc(n);
    if (!p) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", model_path);
    snprintf(p, n, "%s/chat_template.jinja", model_path);
    if (stat(p, &st) == 0) {
        lq_status s = read_jinja(p, out);
        free(p);
        return s;
    }
    snprintf(p, n, "%s/tokenizer_config.json", model_path);
    lq_status s = stat(p, &st) == 0
                      ? read_config(p, out)
                      : lq_fail(LQ_ERR_NOT_FOUND, "%s: no tokenizer_config.json, so no chat "
                                "template (pass --chat-template)", model_path);
    free(p);
    return s;
}
