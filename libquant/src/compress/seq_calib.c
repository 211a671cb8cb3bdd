/* seq_calib.c - samples -> session -> embedded hidden states, the start of every sequential
 * calibration (seq_calib.h). */
#include "seq_calib.h"

#include <stdlib.h>
#include <string.h>

lq_status lq_seq_begin(lq_model *m, const char *model_path, const lq_calib_source *src, lq_pool *pool,
                       const char *what, lq_seq *out) {
    memset(out, 0, sizeof *out);
    const lq_config *c = lq_model_config(m);
    lq_tokenizer *tok = NULL;
    lq_status st = lq_tokenizer_load_for_model(model_path, src->tokenizer, c->vocab_size, &tok);
    if (st == LQ_OK)
        st = lq_calib_samples(tok, src->files, src->n_files, src->n_samples > 0 ? src->n_samples : 128,
                              src->sample_len > 0 ? src->sample_len : 512, src->seed, &out->cs);
    lq_tokenizer_free(tok);
    if (st == LQ_OK) st = lq_session_create(m, out->cs.len, pool, &out->ses);
    out->dim = c->dim;
    out->stride = (int64_t)out->cs.len * c->dim;
    if (st == LQ_OK && !(out->X = malloc((size_t)(out->cs.n_samples * out->stride) * sizeof *out->X)))
        st = lq_fail(LQ_ERR_NOMEM, "%s: out of memory for %lld x %d hidden states", what,
                     (long long)out->cs.n_samples, out->cs.len);
    for (int64_t k = 0; st == LQ_OK && k < out->cs.n_samples; k++)
        st = lq_session_embed(out->ses, out->cs.ids + k * out->cs.len, out->cs.len, out->X + k * out->stride);
    if (st != LQ_OK) lq_seq_end(out);
    return st;
}

void lq_seq_end(lq_seq *s) {
    free(s->X);
    lq_session_free(s->ses);
    lq_calib_set_free(&s->cs);
    memset(s, 0, sizeof *s);
}
