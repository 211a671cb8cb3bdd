/* generate.c - greedy decoding: the deterministic path tests compare with reference text.
 * Sampling strategies (temperature, top-p) belong in libquant, not here. */
#include "lq_eval.h"

#include <stdlib.h>

int lq_eval_argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

lq_status lq_eval_generate_greedy(const lq_model *m, lq_session *s, const lq_tokenizer *tok,
                                  const int32_t *prompt, int n_prompt, int max_new,
                                  lq_gen_token_fn cb, void *user, lq_gen_result *out) {
    lq_gen_result r = {0};
    if (out) *out = r;
    if (n_prompt < 1)
        return lq_fail(LQ_ERR_INVALID_ARG, "generate: the prompt is empty (BOS at least)");
    int n_ctx = lq_session_n_ctx(s);
    if (n_prompt > n_ctx)
        return lq_fail(LQ_ERR_INVALID_ARG, "generate: prompt of %d tokens exceeds context %d",
                       n_prompt, n_ctx);
    /* Choose only among ids the tokenizer can decode: checkpoints may pad the vocabulary. */
    int vocab = lq_tokenizer_vocab_size(tok);
    if (vocab > m->cfg.vocab_size) vocab = m->cfg.vocab_size;
    int eos = lq_tokenizer_eos(tok), bos = lq_tokenizer_bos(tok);
    float *logits = malloc((size_t)m->cfg.vocab_size * sizeof *logits);
    if (!logits) return lq_fail(LQ_ERR_NOMEM, "generate: cannot allocate logits");

    double t0 = lq_eval_now();
    lq_status st = lq_forward(s, prompt, n_prompt, 0, logits, false);
    r.prefill_s = lq_eval_now() - t0;
    r.n_prompt = n_prompt;
    int pos = n_prompt;
    int prev = prompt[n_prompt - 1];
    double t1 = lq_eval_now();
    while (st == LQ_OK && r.n_generated < max_new) {
        int32_t next = (int32_t)lq_eval_argmax(logits, vocab);
        /* llama2.c models end a story with BOS; HF models with EOS */
        if (next == eos || (next == bos && bos >= 0)) {
            r.hit_eos = true;
            break;
        }
        r.n_generated++;
        if (cb) {
            char piece[256];
            size_t n = lq_tokenizer_decode_token(tok, prev, next, piece, sizeof piece);
            if (n > sizeof piece) n = sizeof piece; /* pieces are short; never overrun */
            if (!cb(user, next, piece, n)) break;
        }
        prev = next;
        if (r.n_generated >= max_new || pos >= n_ctx) break;
        st = lq_forward(s, &next, 1, pos, logits, false);
        pos++;
        r.n_decode++;
    }
    r.decode_s = lq_eval_now() - t1;
    free(logits);
    if (out) *out = r;
    return st;
}
