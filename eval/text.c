/* text.c - read text files, split them into evaluation units, pick a model's tokenizer. */
#include "lq_eval.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

lq_status lq_text_read_file(const char *path, char **out, size_t *len) {
    *out = NULL;
    if (len) *len = 0;
    FILE *f;
    LQ_TRY(lq_file_fopen_input(path, &f));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return lq_fail(LQ_ERR_IO, "%s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        return lq_fail(LQ_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, n + 1);
    }
    size_t got = fread(buf, 1, n, f);
    int err = ferror(f);
    fclose(f);
    if (got != n || err) {
        free(buf);
        return lq_fail(LQ_ERR_IO, "%s: short read (%zu of %zu bytes)", path, got, n);
    }
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return LQ_OK;
}

static bool is_strip_char(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Append the stripped [b, e) to the growing unit array unless it is empty. */
static lq_status push_unit(const char *b, const char *e, lq_text_unit **arr, int64_t *n,
                           int64_t *cap) {
    while (b < e && is_strip_char(*b)) b++;
    while (e > b && is_strip_char(e[-1])) e--;
    if (b == e) return LQ_OK;
    if (*n == *cap) {
        int64_t nc = *cap ? *cap * 2 : 64;
        lq_text_unit *na = realloc(*arr, (size_t)nc * sizeof *na);
        if (!na) return lq_fail(LQ_ERR_NOMEM, "text split: cannot grow unit list to %lld",
                                (long long)nc);
        *arr = na;
        *cap = nc;
    }
    (*arr)[*n].text = b;
    (*arr)[*n].len = (size_t)(e - b);
    (*n)++;
    return LQ_OK;
}

lq_status lq_text_split(const char *text, size_t len, const char *separator, lq_text_unit **out,
                        int64_t *n_out) {
    *out = NULL;
    *n_out = 0;
    const char *sep = (separator && *separator) ? separator : "\n";
    size_t sep_len = strlen(sep);
    lq_text_unit *arr = NULL;
    int64_t n = 0, cap = 0;
    const char *p = text, *end = text + len;
    while (p <= end) {
        /* memmem, not strstr: the text may contain NUL bytes */
        const char *hit = memmem(p, (size_t)(end - p), sep, sep_len);
        const char *stop = hit ? hit : end;
        lq_status s = push_unit(p, stop, &arr, &n, &cap);
        if (s != LQ_OK) {
            free(arr);
            return s;
        }
        if (!hit) break;
        p = hit + sep_len;
    }
    *out = arr;
    *n_out = n;
    return LQ_OK;
}

lq_status lq_eval_load_tokenizer(const lq_model *m, const char *model_path, const char *tok_path,
                                 lq_tokenizer **out) {
    return lq_tokenizer_load_for_model(model_path, tok_path, lq_model_config(m)->vocab_size, out);
}
