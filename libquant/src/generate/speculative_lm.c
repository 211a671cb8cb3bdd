/* speculative_lm.c - an lq_session seen as an lq_spec_lm: the one place the speculative decoder
 * touches the KV cache.
 *
 * On the contiguous cache a position is a row addressed by its index, and lq_forward at pos
 * overwrites rows pos.. and attends to rows < pos + n only, so forgetting positions >= n_pos
 * needs no work: the next forward at n_pos writes over them. A paged cache frees their pages
 * here instead (its truncate call replaces the check below). */
#include "libquant/lq_spec.h"

static lq_status session_forward(void *impl, const int32_t *tokens, int n, int pos,
                                 float *logits, bool all_logits) {
    return lq_forward(impl, tokens, n, pos, logits, all_logits);
}

static lq_status session_truncate(void *impl, int n_pos) {
    if (n_pos < 0 || n_pos > lq_session_n_ctx(impl))
        return lq_fail(LQ_ERR_INVALID_ARG, "speculative: cannot truncate a cache of %d positions to %d",
                       lq_session_n_ctx(impl), n_pos);
    return LQ_OK;
}

lq_spec_lm lq_spec_lm_session(lq_session *s, const lq_model *m) {
    return (lq_spec_lm){.impl = s, .n_vocab = lq_model_config(m)->vocab_size,
                        .n_ctx = lq_session_n_ctx(s), .forward = session_forward,
                        .truncate = session_truncate};
}
