/* checkpoint.c - open dispatch and tensor lookup. */
#include "checkpoint_internal.h"
#include "libquant/lq_file.h"
#include "libquant/lq_gguf.h"
#include "prune_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

/* ---- output head ----------------------------------------------------------------------------- */

/* A missing output head means the embedding doubles as the head (what HF does when tied). A
 * compressed-tensors quantized head has no "lm_head.weight" but an "lm_head.weight_scale"
 * (quant-ptq writes one for an untied quantized head). Which other tensors a model needs is the
 * architecture descriptor's business, checked at model load (libquant/src/model/model_bind.c). */
static void detect_tied_head(lq_checkpoint *c) {
    if (!lq_checkpoint_find(c, "lm_head.weight") && !lq_checkpoint_find(c, "lm_head.weight_scale"))
        c->cfg.tied_embeddings = true;
}

/* ---- open / close / accessors ----------------------------------------------------------------- */

static bool has_suffix(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

/* A GGUF file is known by its magic, whatever its name. */
static bool is_gguf(const char *path) {
    FILE *f;
    if (lq_file_fopen_input(path, &f) != LQ_OK) return false; /* the loader reports the error */
    char m[4] = {0};
    bool yes = fread(m, 1, 4, f) == 4 && memcmp(m, "GGUF", 4) == 0;
    fclose(f);
    return yes;
}

lq_status lq_checkpoint_open(const char *path, lq_checkpoint **out) {
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return lq_fail(errno == ENOENT ? LQ_ERR_NOT_FOUND : LQ_ERR_IO, "%s: cannot open: %s", path,
                       strerror(errno));
    lq_checkpoint *c = calloc(1, sizeof *c);
    if (!c || !(c->path = strdup(path))) {
        free(c);
        return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
    }
    lq_status st;
    if (S_ISDIR(sb.st_mode)) {
        st = lq_ckpt_load_hf(c, path);
    } else if (has_suffix(path, ".safetensors") || has_suffix(path, ".json")) {
        /* A file inside an HF directory: open the directory it belongs to. */
        char *dir = strdup(path);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (!dir) st = lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
        else {
            if (slash) *slash = 0;
            st = lq_ckpt_load_hf(c, slash ? (dir[0] ? dir : "/") : ".");
        }
        free(dir);
    } else if (is_gguf(path)) {
        st = lq_ckpt_load_gguf(c, path);
    } else {
        st = lq_ckpt_load_llama2c(c, path);
    }
    /* A compressed-tensors sparse checkpoint is presented as the dense model it encodes. */
    if (st == LQ_OK) st = lq_sparse_expand(c);
    if (st == LQ_OK) detect_tied_head(c);
    if (st != LQ_OK) {
        lq_checkpoint_close(c);
        return st;
    }
    *out = c;
    return LQ_OK;
}

void lq_checkpoint_close(lq_checkpoint *c) {
    if (!c) return;
    for (int i = 0; i < c->n_shards; i++) lq_st_close(c->shards[i]);
    free(c->shards);
    if (c->map) munmap(c->map, c->map_size);
    free(c->name_arena);
    lq_gguf_close(c->gguf);
    lq_sparse_store_free(c->sparse);
    free(c->tensors);
    free(c->config_json);
    free(c->path);
    free(c);
}

lq_ckpt_kind lq_checkpoint_kind(const lq_checkpoint *c) { return c->kind; }
const char *lq_checkpoint_path(const lq_checkpoint *c) { return c->path; }
const lq_config *lq_checkpoint_config(const lq_checkpoint *c) { return &c->cfg; }
int64_t lq_checkpoint_count(const lq_checkpoint *c) { return c->n_tensors; }
uint64_t lq_checkpoint_file_bytes(const lq_checkpoint *c) { return c->file_bytes; }
const char *lq_checkpoint_config_json(const lq_checkpoint *c) { return c->config_json; }

const lq_tensor *lq_checkpoint_get(const lq_checkpoint *c, int64_t i) {
    return (i >= 0 && i < c->n_tensors) ? &c->tensors[i] : NULL;
}

/* Linear scan: a Llama checkpoint has ~10 tensors per layer, and lookups happen once at load. */
const lq_tensor *lq_checkpoint_find(const lq_checkpoint *c, const char *name) {
    for (int64_t i = 0; i < c->n_tensors; i++)
        if (strcmp(c->tensors[i].name, name) == 0) return &c->tensors[i];
    return NULL;
}

lq_status lq_checkpoint_check_finite(const lq_checkpoint *c, const char *verb) {
    for (int64_t i = 0; c && i < c->n_tensors; i++) {
        const lq_tensor *t = lq_checkpoint_get(c, i);
        int64_t at = lq_tensor_first_nonfinite(t);
        if (at >= 0)
            return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': non-finite weight at element %lld; refusing to %s "
                           "a model with NaN/Inf weights", c->path, t->name, (long long)at, verb);
    }
    return LQ_OK;
}
