/* perplexity.c - perplexity in the llama.cpp protocol (chunked) and the llama2.c reference
 * protocol (per line / per unit).
 *
 * Both modes run each chunk with ONE lq_forward over all of its tokens (prefill as GEMM) and
 * score next-token predictions with a log-softmax in double: summing 32k-128k exponentials in
 * f32 loses the digits the reference comparisons need.
 */
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

/* Forward tokens[0..n) at position 0 and score predictions of tokens[first+1 .. n). */
static lq_status score_chunk(lq_session *s, const int32_t *tokens, int n, int first, int vocab,
                             float *logits, nll_acc *acc) {
    LQ_TRY(lq_forward(s, tokens, n, 0, logits, true));
    for (int i = first; i < n - 1; i++) {
        double v = lq_eval_nll(logits + (size_t)i * (size_t)vocab, vocab, tokens[i + 1]);
        acc->sum += v;
        acc->sum2 += v * v;
        acc->n++;
    }
    return LQ_OK;
}

/* Encode into a malloc'd id array (sized by a first counting call). */
static lq_status encode_all(const lq_tokenizer *tok, const char *text, size_t len, bool add_bos,
                            int32_t **ids, int64_t *n) {
    *ids = NULL;
    *n = 0;
    int64_t need = 0;
    lq_status s = lq_tokenizer_encode(tok, text, len, add_bos, false, NULL, 0, &need);
    if (s != LQ_OK && s != LQ_ERR_INVALID_ARG) return s;
    int32_t *buf = malloc((size_t)(need > 0 ? need : 1) * sizeof *buf);
    if (!buf) return lq_fail(LQ_ERR_NOMEM, "perplexity: cannot allocate %lld token ids",
                             (long long)need);
    int64_t got = 0;
    s = lq_tokenizer_encode(tok, text, len, add_bos, false, buf, need, &got);
    if (s != LQ_OK) {
        free(buf);
        return s;
    }
    *ids = buf;
    *n = got;
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

/* llama.cpp: tokenize the whole text once, cut into chunks, BOS replaces each chunk's first. */
static lq_status ppl_chunked(const lq_model *m, const lq_tokenizer *tok, lq_session *s,
                             const char *text, size_t len, int n_ctx, const lq_ppl_opts *o,
                             float *logits, lq_ppl_result *r, nll_acc *acc) {
    bool add_bos = lq_tokenizer_add_bos_default(tok) && lq_tokenizer_bos(tok) >= 0;
    int32_t *ids = NULL;
    int64_t n = 0;
    LQ_TRY(encode_all(tok, text, len, add_bos, &ids, &n));
    r->n_tokens = n;
    int64_t n_chunks = n / n_ctx;
    if (n_chunks < 1) {
        free(ids);
        return lq_fail(LQ_ERR_INVALID_ARG,
                       "perplexity: the text has %lld tokens, fewer than one chunk of %d "
                       "(use --ctx to shorten chunks, or --per-line)", (long long)n, n_ctx);
    }
    if (o->max_chunks > 0 && o->max_chunks < n_chunks) n_chunks = o->max_chunks;
    int first = n_ctx / 2;
    int vocab = m->cfg.vocab_size;
    lq_progress bar;
    lq_progress_begin(&bar, "perplexity", n_chunks, o->progress);
    double t0 = lq_eval_now();
    lq_status st = LQ_OK;
    for (int64_t c = 0; c < n_chunks && st == LQ_OK; c++) {
        int32_t *chunk = ids + c * n_ctx;
        int32_t saved = chunk[0];
        if (add_bos) chunk[0] = (int32_t)lq_tokenizer_bos(tok);
        st = score_chunk(s, chunk, n_ctx, first, vocab, logits, acc);
        chunk[0] = saved;
        r->n_chunks++;
        lq_progress_update(&bar, c + 1);
    }
    r->seconds = lq_eval_now() - t0;
    lq_progress_end(&bar);
    free(ids);
    return st;
}

/* llama2.c reference: each unit encoded with BOS, pieces of n_ctx each at position 0. */
static lq_status ppl_per_line(const lq_model *m, const lq_tokenizer *tok, lq_session *s,
                              const char *text, size_t len, int n_ctx, const lq_ppl_opts *o,
                              float *logits, lq_ppl_result *r, nll_acc *acc) {
    lq_text_unit *units = NULL;
    int64_t n_units = 0;
    LQ_TRY(lq_text_split(text, len, o->separator, &units, &n_units));
    if (n_units == 0) {
        free(units);
        return lq_fail(LQ_ERR_INVALID_ARG, "perplexity: the text has no non-empty unit");
    }
    bool add_bos = lq_tokenizer_bos(tok) >= 0;
    int vocab = m->cfg.vocab_size;
    lq_progress bar;
    lq_progress_begin(&bar, "perplexity", n_units, o->progress);
    double t0 = lq_eval_now();
    lq_status st = LQ_OK;
    for (int64_t u = 0; u < n_units && st == LQ_OK; u++) {
        int32_t *ids = NULL;
        int64_t n = 0;
        st = encode_all(tok, units[u].text, units[u].len, add_bos, &ids, &n);
        if (st != LQ_OK) break;
        r->n_tokens += n;
        for (int64_t p = 0; p < n && st == LQ_OK; p += n_ctx) {
            int64_t piece = n - p < n_ctx ? n - p : n_ctx;
            if (piece < 2) break; /* a lone token predicts nothing */
            st = score_chunk(s, ids + p, (int)piece, 0, vocab, logits, acc);
            r->n_chunks++;
        }
        free(ids);
        lq_progress_update(&bar, u + 1);
    }
    r->seconds = lq_eval_now() - t0;
    lq_progress_end(&bar);
    free(units);
    return st;
}

lq_status lq_eval_perplexity(const lq_model *m, const lq_tokenizer *tok, lq_pool *pool,
                             const char *text, size_t len, const lq_ppl_opts *opts,
                             lq_ppl_result *out) {
    memset(out, 0, sizeof *out);
    lq_ppl_opts o = {0};
    if (opts) o = *opts;
    if (len == 0 || !text)
        return lq_fail(LQ_ERR_INVALID_ARG, "perplexity: the text is empty");
    int max_ctx = m->cfg.max_seq_len;
    int n_ctx = o.n_ctx > 0 ? o.n_ctx : (o.per_line ? max_ctx : LQ_PPL_DEFAULT_CTX);
    if (n_ctx > max_ctx) n_ctx = max_ctx;
    if (n_ctx < 2)
        return lq_fail(LQ_ERR_INVALID_ARG, "perplexity: context of %d tokens is too short",
                       n_ctx);

    lq_session *s = NULL;
    LQ_TRY(lq_session_create(m, n_ctx, pool, &s));
    size_t n_logits = (size_t)n_ctx * (size_t)m->cfg.vocab_size;
    float *logits = malloc(n_logits * sizeof *logits);
    if (!logits) {
        lq_session_free(s);
        return lq_fail(LQ_ERR_NOMEM, "perplexity: cannot allocate %zu logits", n_logits);
    }
    nll_acc acc = {0};
    lq_status st = o.per_line
        ? ppl_per_line(m, tok, s, text, len, n_ctx, &o, logits, out, &acc)
        : ppl_chunked(m, tok, s, text, len, n_ctx, &o, logits, out, &acc);
    free(logits);
    lq_session_free(s);
    if (st != LQ_OK) return st;
    if (acc.n == 0)
        return lq_fail(LQ_ERR_INVALID_ARG, "perplexity: no token could be scored");
    finish(&acc, out);
    return LQ_OK;
}
