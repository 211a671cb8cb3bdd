/* checkpoint_util.c - what the loaders (checkpoint_hf.c, checkpoint_llama2c.c) use to fill an
 * lq_checkpoint. Kept apart from checkpoint.c, which calls the loaders, so the loaders never
 * depend on the file that dispatches to them (no file circle). */
#include "checkpoint_internal.h"
#include "libquant/lq_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

lq_status lq_ckpt_push(lq_checkpoint *c, const lq_tensor *t) {
    if (c->n_tensors == c->cap_tensors) {
        int64_t nc = c->cap_tensors ? 2 * c->cap_tensors : 64;
        lq_tensor *nt = realloc(c->tensors, (size_t)nc * sizeof *nt);
        if (!nt) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", c->path);
        c->tensors = nt;
        c->cap_tensors = nc;
    }
    c->tensors[c->n_tensors++] = *t;
    return LQ_OK;
}

lq_status lq_read_text_file(const char *path, size_t max_bytes, char **out, size_t *len) {
    *out = NULL;
    FILE *f; /* a FIFO in place of config.json must be refused, not block */
    if (lq_file_fopen_input(path, &f) != LQ_OK) return errno == ENOENT ? LQ_ERR_NOT_FOUND : LQ_ERR_IO;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    lq_status st = LQ_OK;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 8192;
            char *nb = realloc(buf, cap);
            if (!nb) {
                st = lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            buf = nb;
        }
        size_t k = fread(buf + n, 1, cap - n - 1, f);
        n += k;
        if (n > max_bytes) {
            st = lq_fail(LQ_ERR_FORMAT, "%s: larger than %zu bytes", path, max_bytes);
            break;
        }
        if (k == 0) {
            if (ferror(f)) st = lq_fail(LQ_ERR_IO, "%s: read failed", path);
            break;
        }
    }
    fclose(f);
    if (st != LQ_OK) {
        free(buf);
        return st;
    }
    buf[n] = 0;
    if (strlen(buf) != n) {
        free(buf);
        return lq_fail(LQ_ERR_FORMAT, "%s: contains a NUL byte", path);
    }
    *out = buf;
    if (len) *len = n;
    return LQ_OK;
}

