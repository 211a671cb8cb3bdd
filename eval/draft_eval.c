/* draft_eval.c - a compressed model measured as the draft of its own baseline: how many of its
 * greedy guesses the baseline accepts during speculative decoding on a text (lq_eval_draft).
 *
 * Why not teacher forcing on the text itself: a draft's guess is judged after the baseline's own
 * continuation, not after the text's, and on the text the argmax agreement is KLD's "same top"
 * already. Speculative decoding's accepted prefix IS the baseline's greedy text, so the counts
 * of a real run are the metric conditioned as speculation sees it; alpha (sum min(p, q), the
 * acceptance probability of speculative sampling at temperature 1) comes from the same
 * positions. */
#include "eval_chunks.h"

#include <string.h>

#define DRAFT_DEFAULT_CTX 512
#define DRAFT_DEFAULT_PROMPT 64
#define DRAFT_DEFAULT_GEN 64
#define DRAFT_DEFAULT_K 4

typedef struct draft_run {
    lq_spec_lm t, d;
    lq_sample_params sp;
    lq_spec_opts so;
    int n_prompt;
    lq_draft_eval_result *r;
} draft_run;

static lq_status draft_chunk(void *user, const int32_t *tokens, int n, int first) {
    (void)first;
    draft_run *k = user;
    int np = n < k->n_prompt ? n : k->n_prompt;
    lq_spec_result sr;
    LQ_TRY(lq_spec_generate(&k->t, &k->d, &k->sp, tokens, np, &k->so, NULL, NULL, &sr));
    lq_draft_eval_result *r = k->r;
    r->n_generated += sr.n_generated;
    r->n_drafted += sr.n_drafted;
    r->n_accepted += sr.n_accepted;
    r->n_judged += sr.n_judged;
    r->n_cycles += sr.n_cycles;
    r->alpha += sr.alpha_sum; /* a sum until the end */
    return LQ_OK;
}

static lq_status check_pair(const lq_model *base, const lq_tokenizer *base_tok, const lq_model *m,
                            const lq_tokenizer *tok) {
    uint64_t hb = lq_tokenizer_hash(base_tok), hq = lq_tokenizer_hash(tok);
    if (hb != hq)
        return lq_fail(LQ_ERR_MISMATCH,
                       "draft-eval: the baseline's tokenizer (hash %016llx) differs from the "
                       "model's (hash %016llx)", (unsigned long long)hb, (unsigned long long)hq);
    if (lq_model_config(base)->vocab_size != lq_model_config(m)->vocab_size)
        return lq_fail(LQ_ERR_MISMATCH,
                       "draft-eval: the baseline's vocabulary has %d entries, the model's %d",
                       lq_model_config(base)->vocab_size, lq_model_config(m)->vocab_size);
    return LQ_OK;
}

lq_status lq_eval_draft(const lq_model *base, const lq_tokenizer *base_tok, const lq_model *m,
                        const lq_tokenizer *tok, lq_pool *pool, const char *text, size_t len,
                        const lq_draft_eval_opts *opts, lq_draft_eval_result *out) {
    memset(out, 0, sizeof *out);
    if (!text || len == 0) return lq_fail(LQ_ERR_INVALID_ARG, "draft-eval: the text is empty");
    LQ_TRY(check_pair(base, base_tok, m, tok));
    lq_draft_eval_opts o = *opts;
    if (o.n_prompt <= 0) o.n_prompt = DRAFT_DEFAULT_PROMPT;
    if (o.n_gen <= 0) o.n_gen = DRAFT_DEFAULT_GEN;
    if (o.draft_max <= 0) o.draft_max = DRAFT_DEFAULT_K;
    int bmax = lq_model_config(base)->max_seq_len, mmax = lq_model_config(m)->max_seq_len;
    int max_ctx = bmax < mmax ? bmax : mmax;
    int n_ctx = o.chunks.n_ctx > 0 ? o.chunks.n_ctx : (o.chunks.per_line ? max_ctx : DRAFT_DEFAULT_CTX);
    if (n_ctx > max_ctx) n_ctx = max_ctx;
    if (o.n_prompt > n_ctx) o.n_prompt = n_ctx;
    /* the generation needs prompt + n_gen positions; a context shorter than that stops early */
    int need = o.n_prompt + o.n_gen;
    int s_ctx = need < max_ctx ? need : max_ctx;
    if (s_ctx < 2) return lq_fail(LQ_ERR_INVALID_ARG, "draft-eval: context of %d tokens is too short", s_ctx);
    lq_session *ts = NULL, *ds = NULL;
    LQ_TRY(lq_session_create(base, s_ctx, pool, &ts));
    lq_status st = lq_session_create(m, s_ctx, pool, &ds);
    if (st != LQ_OK) {
        lq_session_free(ts);
        return st;
    }
    draft_run k = {.t = lq_spec_lm_session(ts, base), .d = lq_spec_lm_session(ds, m),
                   .sp = lq_sample_params_default(), .n_prompt = o.n_prompt, .r = out};
    /* no stop tokens: every chunk generates n_gen tokens, so chunks weigh the same */
    k.so = (lq_spec_opts){.draft_max = o.draft_max, .max_new = o.n_gen,
                          .vocab = lq_tokenizer_vocab_size(base_tok), .measure_alpha = true};
    lq_chunk_walk w = {0};
    st = lq_eval_walk_chunks(base_tok, text, len, n_ctx, &o.chunks, "draft-eval", draft_chunk, &k, &w);
    lq_session_free(ds);
    lq_session_free(ts);
    out->n_chunks = w.n_chunks;
    out->seconds = w.seconds;
    double alpha_sum = out->alpha;
    out->alpha = out->n_judged > 0 ? alpha_sum / (double)out->n_judged : 0;
    if (out->n_drafted > 0) out->accept_rate = (double)out->n_accepted / (double)out->n_drafted;
    if (out->n_judged > 0) out->accept_pos = (double)out->n_accepted / (double)out->n_judged;
    if (out->n_cycles > 0) out->mean_accepted = (double)out->n_accepted / (double)out->n_cycles;
    return st;
}
