/* perplexity.c - perplexity in the llama.cpp protocol (chunked) and the llama2.c reference
 * protocol (per line / per unit).
 *
 * Both modes run each chunk with ONE lq_forward over all of its tokens (prefill as GEMM) and
 * score next-token predictions with a log-softmax in double: summing 32k-128k exponentials in
 * f32 loses the digits the reference comparisons need.
 */
#include "eval_chunks.h"
#include "lq_eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LQ_PPL_DEFAULT_CTX 512

double lq_eval_nll(const float *logits, int vocab, int target) {
    double mx = logits[0];
    for (int i = 1; i < vocab; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0.0;
    for (int i = 0; i < vocab; i++) sum += exp((double)logits[i] - mx);
    return -(((double)logits[target] - mx) - log(sum));
}

/* Running sums over scored tokens. */
typedef struct nll_acc {
    double sum, sum2;
    int64_t n;
} nll_acc;

/* One session and its logits; predictions scored into acc. */
typedef struct ppl_run {
    lq_session *s;
    float *logits; /* the longest chunk's n x vocab so far (lq_eval_logits_room) */
    size_t cap;
    int vocab;
    nll_acc acc;
} ppl_run;

/* lq_chunk_fn: forward tokens[0..n) at position 0 and score predictions of tokens[first+1 .. n). */
static lq_status score_chunk(void *user, const int32_t *tokens, int n, int first) {
    ppl_run *p = user;
    LQ_TRY(lq_eval_logits_room(&p->logits, &p->cap, n, p->vocab, "perplexity"));
    LQ_TRY(lq_forward(p->s, tokens, n, 0, p->logits, true));
    for (int i = first; i < n - 1; i++) {
        double v = lq_eval_nll(p->logits + (size_t)i * (size_t)p->vocab, p->vocab, tokens[i + 1]);
        p->acc.sum += v;
        p->acc.sum2 += v * v;
        p->acc.n++;
    }
    return LQ_OK;
}

static void finish(const nll_acc *acc, lq_ppl_result *r) {
    r->n_scored = acc->n;
    r->nll_sum = acc->sum;
    if (acc->n == 0) return;
    /* llama.cpp perplexity.cpp: PPL = exp(mean), error = PPL * sqrt(var / (n - 1)) with
     * var = E[nll^2] - E[nll]^2 (the standard error of the mean NLL, propagated through exp). */
    double mean = acc->sum / (double)acc->n;
    double var = acc->sum2 / (double)acc->n - mean * mean;
    r->nll_mean = mean;
    r->ppl = exp(mean);
    r->ppl_stderr = (var > 0 && acc->n > 1) ? r->ppl * sqrt(var / (double)(acc->n - 1)) : 0.0;
}

lq_status lq_eval_perplexity(const lq_model *m, const lq_tokenizer *tok, lq_pool *pool,
                             const char *text, size_t len, const lq_ppl_opts *opts,
                             lq_ppl_result *out) {
    memset(out, 0, sizeof *out);
    lq_ppl_opts o = {0};
    if (opts) o = *opts;
    if (len == 0 || !text)
        return lq_fail(LQ_ERR_INVALID_ARG, "perplexity: the text is empty");
    int max_ctx = lq_model_config(m)->max_seq_len;
    int n_ctx = o.n_ctx > 0 ? o.n_ctx : (o.per_line ? max_ctx : LQ_PPL_DEFAULT_CTX);
    if (n_ctx > max_ctx) n_ctx = max_ctx;
    if (n_ctx < 2)
        return lq_fail(LQ_ERR_INVALID_ARG, "perplexity: context of %d tokens is too short",
                       n_ctx);

    lq_session *s = NULL;
    LQ_TRY(lq_session_create(m, n_ctx, pool, &s));
    ppl_run p = {.s = s, .vocab = lq_model_config(m)->vocab_size};
    lq_chunk_walk w;
    lq_status st = lq_eval_walk_chunks(tok, text, len, n_ctx, &o, "perplexity", score_chunk, &p, &w);
    out->n_tokens = w.n_tokens;
    out->n_chunks = w.n_chunks;
    out->seconds = w.seconds;
    free(p.logits);
    lq_session_free(s);
    if (st != LQ_OK) return st;
    if (p.acc.n == 0)
        return lq_fail(LQ_ERR_INVALID_ARG, "perplexity: no token could be scored");
    finish(&p.acc, out);
    return LQ_OK;
}
