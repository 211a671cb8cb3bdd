/* speculative_lm.c - the caches the speculative decoder runs on, as lq_spec_lm: the one place it
 * touches a KV cache.
 *
 * lq_session (contiguous): a position is a row addressed by its index, and lq_forward at pos
 * overwrites rows pos.. and attends to rows < pos + n only, so forgetting positions >= n_pos
 * needs no work: the next forward at n_pos writes over them.
 * lq_batch (paged): a sequence grows by appending, and truncate returns its pages to the pool. */
#include "libquant/lq_spec.h"

/* ---- lq_session ------------------------------------------------------------------------------- */

static lq_status session_forward(const lq_spec_lm *lm, const int32_t *tokens, int n, int pos,
                                 float *logits, bool all_logits) {
    return lq_forward(lm->impl, tokens, n, pos, logits, all_logits);
}

static lq_status session_truncate(const lq_spec_lm *lm, int n_pos) {
    if (n_pos < 0 || n_pos > lm->n_ctx)
        return lq_fail(LQ_ERR_INVALID_ARG, "speculative: cannot truncate a cache of %d positions to %d",
                       lm->n_ctx, n_pos);
    return LQ_OK;
}

lq_spec_lm lq_spec_lm_session(lq_session *s, const lq_model *m) {
    return (lq_spec_lm){.impl = s, .n_vocab = lq_model_config(m)->vocab_size,
                        .n_ctx = lq_session_n_ctx(s), .forward = session_forward,
                        .truncate = session_truncate};
}

/* ---- lq_batch sequence ------------------------------------------------------------------------ */

static lq_status batch_forward(const lq_spec_lm *lm, const int32_t *tokens, int n, int pos,
                               float *logits, bool all_logits) {
    int len = lq_batch_seq_len(lm->impl, lm->seq);
    if (pos != len)
        return lq_fail(LQ_ERR_INVALID_ARG, "speculative: forward at position %d of a sequence of %d",
                       pos, len);
    lq_batch_item it = {.seq = lm->seq, .tokens = tokens, .n = n,
                        .logits = all_logits ? LQ_BATCH_LOGITS_ALL : LQ_BATCH_LOGITS_LAST};
    return lq_batch_forward(lm->impl, &it, 1, logits);
}

static lq_status batch_truncate(const lq_spec_lm *lm, int n_pos) {
    return lq_batch_seq_truncate(lm->impl, lm->seq, n_pos);
}

lq_spec_lm lq_spec_lm_batch(lq_batch *b, int seq) {
    return (lq_spec_lm){.impl = b, .seq = seq,
                        .n_vocab = lq_model_config(lq_batch_model(b))->vocab_size,
                        .n_ctx = lq_batch_n_ctx(b), .forward = batch_forward,
                        .truncate = batch_truncate};
}
