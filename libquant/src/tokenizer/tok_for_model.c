/* tok_for_model.c - which tokenizer goes with a model (every tool, the recipe runner and the
 * distillation driver agree on one rule). */
#include "libquant/lq_tokenizer.h"
#include "libquant/lq_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static bool is_gguf(const char *path) {
    FILE *f;
    if (lq_file_fopen_input(path, &f) != LQ_OK) return false;
    char m[4] = {0};
    bool yes = fread(m, 1, 4, f) == 4 && memcmp(m, "GGUF", 4) == 0;
    fclose(f);
    return yes;
}

lq_status lq_tokenizer_load_for_model(const char *model_path, const char *tok_path, int vocab_size,
                                      lq_tokenizer **out) {
    *out = NULL;
    lq_tokenizer *t = NULL;
    lq_status s;
    if (tok_path && *tok_path) {
        if (ends_with(tok_path, ".json"))
            s = lq_tokenizer_load_hf_json(tok_path, &t);
        else if (ends_with(tok_path, ".gguf"))
            s = lq_tokenizer_load_gguf(tok_path, &t);
        else
            s = lq_tokenizer_load_llama2c(tok_path, vocab_size, &t);
    } else if (is_gguf(model_path)) {
        s = lq_tokenizer_load_gguf(model_path, &t); /* a GGUF model carries its vocabulary */
    } else {
        struct stat st;
        if (stat(model_path, &st) != 0 || !S_ISDIR(st.st_mode))
            return lq_fail(LQ_ERR_INVALID_ARG,
                           "%s: a llama2.c checkpoint has no tokenizer inside: pass --tokenizer "
                           "FILE (tokenizer.bin)", model_path);
        s = lq_tokenizer_load_dir(model_path, &t);
    }
    if (s != LQ_OK) return s;
    /* A larger tokenizer would produce ids past the embedding table; a smaller one is fine
     * (checkpoints often pad the vocabulary to a multiple of 64). */
    int tv = lq_tokenizer_vocab_size(t);
    if (tv > vocab_size) {
        lq_tokenizer_free(t);
        return lq_fail(LQ_ERR_MISMATCH,
                       "%s: tokenizer has %d tokens but the model's vocabulary has %d",
                       tok_path && *tok_path ? tok_path : model_path, tv, vocab_size);
    }
    *out = t;
    return LQ_OK;
}

/* Here, not in tok_core.c: it calls the HF loader, which is built on tok_core (no file circle). */
lq_status lq_tokenizer_load_dir(const char *dir, lq_tokenizer **out) {
    *out = NULL;
    size_t n = strlen(dir) + sizeof "/tokenizer.json";
    char *p = malloc(n);
    if (!p) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", dir);
    snprintf(p, n, "%s/tokenizer.json", dir);
    struct stat sb; /* existence only: the loader opens it (and refuses a non-regular file) */
    if (stat(p, &sb) != 0) {
        free(p);
        return lq_fail(LQ_ERR_NOT_FOUND, "%s: no tokenizer.json in the model directory", dir);
    }
    lq_status s = lq_tokenizer_load_hf_json(p, out);
    free(p);
    return s;
}
