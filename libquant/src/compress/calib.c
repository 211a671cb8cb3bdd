/* calib.c - lq_imatrix: per-Linear mean square input activations (lq_calib.h). */
#include "imatrix_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

lq_status lq_imatrix_create(lq_imatrix **out) {
    *out = calloc(1, sizeof **out);
    return *out ? LQ_OK : lq_fail(LQ_ERR_NOMEM, "out of memory");
}

void lq_imatrix_free(lq_imatrix *im) {
    if (!im) return;
    for (int64_t i = 0; i < im->n; i++) {
        free(im->e[i].sum);
        free(im->e[i].mean);
    }
    free(im->e);
    for (int64_t i = 0; i < im->n_datasets; i++) free(im->datasets[i]);
    free(im->datasets);
    free(im);
}

im_entry *lq_imatrix_find_entry(const lq_imatrix *im, const char *module) {
    for (int64_t i = 0; i < im->n; i++)
        if (strcmp(im->e[i].module, module) == 0) return &im->e[i];
    return NULL;
}

im_entry *lq_imatrix_add(lq_imatrix *im, const char *module, int64_t cols) {
    if (im->n == im->cap) {
        int64_t cap = im->cap ? 2 * im->cap : 64;
        im_entry *e = realloc(im->e, (size_t)cap * sizeof *e);
        if (!e) return NULL;
        im->e = e;
        im->cap = cap;
    }
    im_entry *e = &im->e[im->n];
    memset(e, 0, sizeof *e);
    if (strlen(module) >= sizeof e->module) return NULL;
    snprintf(e->module, sizeof e->module, "%s", module);
    e->cols = cols;
    e->sum = calloc((size_t)cols, sizeof *e->sum);
    e->mean = calloc((size_t)cols, sizeof *e->mean);
    if (!e->sum || !e->mean) {
        free(e->sum);
        free(e->mean);
        return NULL;
    }
    im->n++;
    return e;
}

void lq_imatrix_hook(void *user, const lq_linear_input *in) {
    lq_imatrix *im = user;
    if (im->status != LQ_OK) return;
    im_entry *e = lq_imatrix_find_entry(im, in->module);
    if (!e && !(e = lq_imatrix_add(im, in->module, in->cols))) {
        im->status = LQ_ERR_NOMEM;
        snprintf(im->bad, sizeof im->bad, "out of memory recording '%s'", in->module);
        return;
    }
    if (e->cols != in->cols) {
        im->status = LQ_ERR_MISMATCH;
        snprintf(im->bad, sizeof im->bad, "'%s' seen with %lld and %lld columns", in->module,
                 (long long)e->cols, (long long)in->cols);
        return;
    }
    for (int t = 0; t < in->n_tokens; t++) {
        const float *x = in->x + (int64_t)t * in->cols;
        for (int64_t j = 0; j < in->cols; j++) e->sum[j] += (double)x[j] * x[j];
    }
    e->n_tokens += in->n_tokens;
}

lq_status lq_imatrix_status(const lq_imatrix *im) {
    return im->status == LQ_OK ? LQ_OK : lq_fail(im->status, "imatrix: %s", im->bad);
}

lq_status lq_imatrix_collect(const lq_model *m, lq_session *s, const int32_t *ids, int64_t n, int ctx,
                             int32_t bos, lq_imatrix *im) {
    if (ctx < 2) return lq_fail(LQ_ERR_INVALID_ARG, "imatrix: context %d is too short", ctx);
    int32_t *chunk = malloc((size_t)ctx * sizeof *chunk);
    float *logits = malloc((size_t)ctx * (size_t)lq_model_config(m)->vocab_size * sizeof *logits);
    lq_status st = chunk && logits ? LQ_OK : lq_fail(LQ_ERR_NOMEM, "imatrix: out of memory");
    lq_session_set_linear_hook(s, lq_imatrix_hook, im);
    for (int64_t at = 0; st == LQ_OK && n - at >= 2; at += ctx) {
        int len = n - at < ctx ? (int)(n - at) : ctx;
        memcpy(chunk, ids + at, (size_t)len * sizeof *chunk);
        if (bos >= 0) chunk[0] = bos;
        st = lq_forward(s, chunk, len, 0, logits, true);
        if (st == LQ_OK) st = lq_imatrix_status(im);
    }
    lq_session_set_linear_hook(s, NULL, NULL);
    free(chunk);
    free(logits);
    return st;
}

/* The entry of module (an HF module name or a GGUF tensor name): by its own name, else, when the
 * imatrix knows the model's architecture, by the other spelling of the same tensor. */
static im_entry *lookup(const lq_imatrix *im, const char *module) {
    im_entry *e = lq_imatrix_find_entry(im, module);
    if (e || !im->arch) return e;
    char name[200];
    if (lq_imatrix_gguf_name(im, module, name, sizeof name)) return lq_imatrix_find_entry(im, name);
    return NULL;
}

const float *lq_imatrix_get(lq_imatrix *im, const char *module, int64_t cols, int64_t *n_tokens) {
    im_entry *e = lookup(im, module);
    if (!e || e->cols != cols) return NULL;
    /* A file's entry with count 0 (an MoE expert no token reached) weighs every column 1, as
     * llama-quantize does; one the hook never saw does not exist. */
    for (int64_t j = 0; j < cols; j++)
        e->mean[j] = e->n_tokens > 0 ? (float)(e->sum[j] / (double)e->n_tokens) : 1.0f;
    if (n_tokens) *n_tokens = e->n_tokens;
    return e->mean;
}

int64_t lq_imatrix_count(const lq_imatrix *im) { return im->n; }

static const float *ptq_find(void *user, const char *module, int64_t cols) {
    return lq_imatrix_get(user, module, cols, NULL);
}

lq_ptq_calib lq_imatrix_ptq_calib(lq_imatrix *im) {
    return (lq_ptq_calib){.find = ptq_find, .user = im};
}
