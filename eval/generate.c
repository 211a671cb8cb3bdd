/* generate.c - greedy decoding: the deterministic path tests compare with reference text.
 * The loop is libquant's (lq_sample_generate with a temperature-0 sampler, which picks the lowest
 * id on ties); this file adds the stop rule for llama2.c models and decodes each token's bytes. */
#include "lq_eval.h"

#include "libquant/lq_sample.h"

int lq_eval_argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

typedef struct greedy_ctx {
    const lq_tokenizer *tok;
    int32_t prev; /* the token before the one decoded (SentencePiece strips a space after BOS) */
    lq_gen_token_fn cb;
    void *user;
} greedy_ctx;

static bool on_token(void *user, const lq_sample_info *t) {
    greedy_ctx *g = user;
    char piece[256];
    size_t n = lq_tokenizer_decode_token(g->tok, g->prev, t->id, piece, sizeof piece);
    if (n > sizeof piece) n = sizeof piece; /* pieces are short; never overrun */
    g->prev = t->id;
    return g->cb(g->user, t->id, piece, n);
}

lq_status lq_eval_generate_greedy(const lq_model *m, lq_session *s, const lq_tokenizer *tok,
                                  const int32_t *prompt, int n_prompt, int max_new,
                                  lq_gen_token_fn cb, void *user, lq_gen_result *out) {
    if (out) *out = (lq_gen_result){0};
    /* llama2.c models end a story with BOS; HF models with EOS */
    int32_t stop[2];
    int n_stop = 0;
    if (lq_tokenizer_eos(tok) >= 0) stop[n_stop++] = (int32_t)lq_tokenizer_eos(tok);
    if (lq_tokenizer_bos(tok) >= 0) stop[n_stop++] = (int32_t)lq_tokenizer_bos(tok);
    /* Choose only among ids the tokenizer can decode: checkpoints may pad the vocabulary. */
    lq_sample_gen_opts o = {.max_new = max_new, .stop_ids = stop, .n_stop = n_stop,
                            .vocab = lq_tokenizer_vocab_size(tok)};
    lq_sample_params p = lq_sample_params_default(); /* temperature 0: greedy, no penalty */
    lq_sampler *smp = NULL;
    LQ_TRY(lq_sampler_create(&p, &smp));
    greedy_ctx g = {.tok = tok, .prev = n_prompt > 0 ? prompt[n_prompt - 1] : 0, .cb = cb, .user = user};
    lq_sample_gen_result r;
    lq_status st = lq_sample_generate(m, s, smp, prompt, n_prompt, &o, cb ? on_token : NULL, &g, &r);
    lq_sampler_free(smp);
    if (out)
        *out = (lq_gen_result){.n_prompt = r.n_prompt, .n_generated = r.n_generated, .prefill_s = r.prefill_s,
                               .n_decode = r.n_decode, .decode_s = r.decode_s, .hit_eos = r.hit_stop};
    return st;
}
