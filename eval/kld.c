/* kld.c - KL divergence of a model's next-token distributions against a baseline's, in the
 * manner of `llama-perplexity --kl-divergence` (llama.cpp tools/perplexity/perplexity.cpp).
 *
 * llama.cpp runs the baseline once, stores its log-probabilities for every scored token in a
 * file (16-bit, tens of GB for a real vocabulary), then runs the quantized model against it.
 * Here both models are loaded at once (their weights are mmapped) and evaluated chunk by chunk
 * over the same tokens, so nothing but two chunks of logits is ever held: the definitions are
 * llama.cpp's, computed in double on exact logits (no 16-bit quantization of the baseline).
 *
 * The chunks are exactly lq_eval_perplexity's (the same walk, eval_chunks.h), so PPL(base) here
 * equals the perplexity that quant-eval reports for the baseline alone.
 */
#include "eval_chunks.h"
#include "lq_eval.h"
#include "lq_ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KLD_DEFAULT_CTX 512

/* ---- the per-token math ------------------------------------------------------------------------ */

/* max and ln(sum exp(x - max)) of the logits, in double; *imax = first index of the max. */
static void log_sum_exp(const float *x, int n, double *mx_out, double *lse_out, int *imax) {
    double mx = x[0];
    int im = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > mx) {
            mx = x[i];
            im = i;
        }
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += exp((double)x[i] - mx);
    *mx_out = mx;
    *lse_out = log(sum);
    *imax = im;
}

void lq_eval_kld_token(const float *base_logits, const float *logits, int vocab, int target,
                       lq_kld_token *out) {
    double mp, lp, mq, lq;
    int ip, iq;
    log_sum_exp(base_logits, vocab, &mp, &lp, &ip);
    log_sum_exp(logits, vocab, &mq, &lq, &iq);
    /* ln p_i = x_i - mp - lp; ln q_i = y_i - mq - lq */
    double kl = 0.0;
    for (int i = 0; i < vocab; i++) {
        double lnp = (double)base_logits[i] - mp - lp;
        double p = exp(lnp);
        if (p == 0.0) continue; /* p ln p -> 0; also avoids 0 * inf when q_i underflows */
        double lnq = (double)logits[i] - mq - lq;
        kl += p * (lnp - lnq);
    }
    /* KL >= 0 mathematically (Gibbs); rounding can leave -1e-17 for identical inputs. The
     * clamp keeps "a model against itself is exactly 0" exact and never hides a real negative
     * (which would need |error| far above double rounding). */
    if (kl < 0.0) kl = 0.0;
    out->kld = kl;
    out->nll_base = -((double)base_logits[target] - mp - lp);
    out->nll = -((double)logits[target] - mq - lq);
    out->same_top = ip == iq;
}

double lq_eval_kld(const float *base_logits, const float *logits, int vocab) {
    lq_kld_token t;
    lq_eval_kld_token(base_logits, logits, vocab, 0, &t);
    return t.kld;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double lq_eval_percentile(const double *sorted, int64_t n, double fraction) {
    if (n <= 0) return 0.0;
    if (fraction <= 0) return sorted[0];
    if (fraction >= 1) return sorted[n - 1];
    double p = fraction * (double)(n - 1);
    int64_t ip = (int64_t)p;
    p -= (double)ip;
    int64_t next = ip + 1 < n ? ip + 1 : n - 1;
    return (1.0 - p) * sorted[ip] + p * sorted[next];
}

/* ---- accumulation ------------------------------------------------------------------------------- */

typedef struct kld_acc {
    double nll, nll2, nll_b, nll_b2, nll_nll_b;  /* for both PPLs and their covariance */
    double kld, kld2;
    double dp, dp2, dp4;
    int64_t same_top, n;
    double *klds, *ratios;  /* per token: KL and ln(q[t]/p[t]), n of them, cap allocated */
    int64_t cap;
} kld_acc;

static lq_status acc_push(kld_acc *a, const lq_kld_token *t) {
    if (a->n == a->cap) {
        int64_t nc = a->cap ? a->cap * 2 : 4096;
        double *k = realloc(a->klds, (size_t)nc * sizeof *k);
        if (!k) return lq_fail(LQ_ERR_NOMEM, "kl-divergence: cannot grow to %lld tokens",
                               (long long)nc);
        a->klds = k;
        double *r = realloc(a->ratios, (size_t)nc * sizeof *r);
        if (!r) return lq_fail(LQ_ERR_NOMEM, "kl-divergence: cannot grow to %lld tokens",
                               (long long)nc);
        a->ratios = r;
        a->cap = nc;
    }
    a->nll += t->nll;
    a->nll2 += t->nll * t->nll;
    a->nll_b += t->nll_base;
    a->nll_b2 += t->nll_base * t->nll_base;
    a->nll_nll_b += t->nll * t->nll_base;
    a->kld += t->kld;
    a->kld2 += t->kld * t->kld;
    double dp = exp(-t->nll) - exp(-t->nll_base);
    a->dp += dp;
    a->dp2 += dp * dp;
    a->dp4 += dp * dp * dp * dp;
    a->same_top += t->same_top;
    a->klds[a->n] = t->kld;
    a->ratios[a->n] = t->nll_base - t->nll;
    a->n++;
    return LQ_OK;
}

/* llama.cpp's mean_and_uncertainty: mean, and sqrt(var / (n - 1)) with var = E[x^2] - E[x]^2
 * (llama.cpp zeroes the uncertainty for n <= 10, where it means little; so do we). */
static void mean_unc(double sum, double sum2, int64_t n, double *mean, double *unc) {
    *mean = *unc = 0.0;
    if (n < 1) return;
    double f = sum / (double)n;
    double var = sum2 / (double)n - f * f;
    *mean = f;
    *unc = (var > 0 && n > 10) ? sqrt(var / (double)(n - 1)) : 0.0;
}

/* llama.cpp's covariance of the two mean NLLs. */
static double covariance(double sa, double sb, double sab, int64_t n) {
    if (n < 10) return 0.0;
    double nn = (double)n;
    return (sab / nn - (sa / nn) * (sb / nn)) / (nn - 1);
}

static void fill_ppl(double sum, double sum2, int64_t n, lq_ppl_result *r) {
    r->n_scored = n;
    r->nll_sum = sum;
    if (n == 0) return;
    double mean = sum / (double)n;
    double var = sum2 / (double)n - mean * mean;
    r->nll_mean = mean;
    r->ppl = exp(mean);
    /* the same stderr as lq_eval_perplexity, so PPL(base) prints identically */
    r->ppl_stderr = (var > 0 && n > 1) ? r->ppl * sqrt(var / (double)(n - 1)) : 0.0;
}

static lq_status finish(kld_acc *a, lq_kld_result *r) {
    int64_t n = a->n;
    r->n_scored = n;
    fill_ppl(a->nll_b, a->nll_b2, n, &r->base);
    fill_ppl(a->nll, a->nll2, n, &r->model);
    mean_unc(a->kld, a->kld2, n, &r->kld_mean, &r->kld_stderr);

    double lp, lpu, lb, lbu;
    mean_unc(a->nll, a->nll2, n, &lp, &lpu);
    mean_unc(a->nll_b, a->nll_b2, n, &lb, &lbu);
    double cov = covariance(a->nll, a->nll_b, a->nll_nll_b, n);
    r->ln_ppl_ratio = lp - lb;
    double v = lpu * lpu + lbu * lbu - 2.0 * cov;
    r->ln_ppl_ratio_stderr = v > 0 ? sqrt(v) : 0.0;
    r->ppl_ratio = exp(r->ln_ppl_ratio);
    r->ln_ppl_cor = (lpu > 0 && lbu > 0) ? cov / (lpu * lbu) : 1.0;
    double pq = exp(lp), pb = exp(lb), pqu = pq * lpu, pbu = pb * lbu;
    r->ppl_diff = pq - pb;
    double dv = pqu * pqu + pbu * pbu - 2.0 * pq * pb * cov;
    r->ppl_diff_stderr = dv > 0 ? sqrt(dv) : 0.0;
    r->ppl_diff_pct = pb > 0 ? 100.0 * r->ppl_diff / pb : 0.0;

    r->same_top = n ? (double)a->same_top / (double)n : 0.0;
    r->same_top_stderr = n > 1 ? sqrt(r->same_top * (1 - r->same_top) / (double)(n - 1)) : 0.0;

    mean_unc(a->dp, a->dp2, n, &r->dp_mean, &r->dp_stderr);
    double mse, mse_u;
    mean_unc(a->dp2, a->dp4, n, &mse, &mse_u);
    r->dp_rms = sqrt(mse);
    r->dp_rms_stderr = r->dp_rms > 0 ? 0.5 / r->dp_rms * mse_u : 0.0;

    qsort(a->klds, (size_t)n, sizeof *a->klds, cmp_double);
    qsort(a->ratios, (size_t)n, sizeof *a->ratios, cmp_double);
    const double *k = a->klds;
    r->kld_min = k[0];
    r->kld_max = k[n - 1];
    r->kld_median = (n % 2) ? k[n / 2] : 0.5 * (k[n / 2 - 1] + k[n / 2]);
    r->kld_p1 = lq_eval_percentile(k, n, 0.01);
    r->kld_p5 = lq_eval_percentile(k, n, 0.05);
    r->kld_p10 = lq_eval_percentile(k, n, 0.10);
    r->kld_p90 = lq_eval_percentile(k, n, 0.90);
    r->kld_p95 = lq_eval_percentile(k, n, 0.95);
    r->kld_p99 = lq_eval_percentile(k, n, 0.99);
    r->kld_p999 = lq_eval_percentile(k, n, 0.999);
    r->lr_p1 = lq_eval_percentile(a->ratios, n, 0.01);
    r->lr_p5 = lq_eval_percentile(a->ratios, n, 0.05);
    r->lr_p10 = lq_eval_percentile(a->ratios, n, 0.10);
    return LQ_OK;
}

/* ---- the two models over the same chunks ------------------------------------------------------ */

typedef struct kld_run {
    lq_session *sb, *sq;     /* baseline, model */
    float *lb, *lq;          /* the longest chunk's n x vocab logits of each (lq_eval_logits_room) */
    size_t cap_b, cap_q;
    int vocab;
    kld_acc acc;
    bool base_f32_act;
} kld_run;

/* lq_chunk_fn: forward tokens[0..n) through both models at position 0; compare predictions of
 * tokens[first+1 .. n). */
static lq_status compare_chunk(void *user, const int32_t *tokens, int n, int first) {
    kld_run *k = user;
    LQ_TRY(lq_eval_logits_room(&k->lb, &k->cap_b, n, k->vocab, "kl-divergence"));
    LQ_TRY(lq_eval_logits_room(&k->lq, &k->cap_q, n, k->vocab, "kl-divergence"));
    const lq_act_mode mode = lq_matmul_act_mode();
    if (k->base_f32_act) lq_matmul_set_act_mode(LQ_ACT_MODE_F32);
    lq_status st = lq_forward(k->sb, tokens, n, 0, k->lb, true);
    lq_matmul_set_act_mode(mode);
    LQ_TRY(st);
    LQ_TRY(lq_forward(k->sq, tokens, n, 0, k->lq, true));
    for (int i = first; i < n - 1; i++) {
        size_t off = (size_t)i * (size_t)k->vocab;
        lq_kld_token t;
        lq_eval_kld_token(k->lb + off, k->lq + off, k->vocab, tokens[i + 1], &t);
        LQ_TRY(acc_push(&k->acc, &t));
    }
    return LQ_OK;
}

lq_status lq_eval_kl_divergence(const lq_model *base, const lq_tokenizer *base_tok,
                                const lq_model *m, const lq_tokenizer *tok, lq_pool *pool,
                                const char *text, size_t len, const lq_ppl_opts *opts,
                                lq_kld_result *out) {
    memset(out, 0, sizeof *out);
    lq_ppl_opts o = {0};
    if (opts) o = *opts;
    if (!text || len == 0) return lq_fail(LQ_ERR_INVALID_ARG, "kl-divergence: the text is empty");
    /* Different tokenizers would score different token sequences: the distributions would not
     * be over the same events, and the numbers would mean nothing. */
    uint64_t hb = lq_tokenizer_hash(base_tok), hq = lq_tokenizer_hash(tok);
    if (hb != hq)
        return lq_fail(LQ_ERR_MISMATCH,
                       "kl-divergence: the baseline's tokenizer (hash %016llx) differs from the "
                       "model's (hash %016llx)", (unsigned long long)hb, (unsigned long long)hq);
    if (lq_model_config(base)->vocab_size != lq_model_config(m)->vocab_size)
        return lq_fail(LQ_ERR_MISMATCH,
                       "kl-divergence: the baseline's vocabulary has %d entries, the model's %d",
                       lq_model_config(base)->vocab_size, lq_model_config(m)->vocab_size);
    int max_ctx = lq_model_config(base)->max_seq_len < lq_model_config(m)->max_seq_len ? lq_model_config(base)->max_seq_len
                                                             : lq_model_config(m)->max_seq_len;
    int n_ctx = o.n_ctx > 0 ? o.n_ctx : (o.per_line ? max_ctx : KLD_DEFAULT_CTX);
    if (n_ctx > max_ctx) n_ctx = max_ctx;
    if (n_ctx < 2)
        return lq_fail(LQ_ERR_INVALID_ARG, "kl-divergence: context of %d tokens is too short",
                       n_ctx);

    kld_run k = {.vocab = lq_model_config(m)->vocab_size, .base_f32_act = o.base_f32_act};
    lq_status st = lq_session_create(base, n_ctx, pool, &k.sb);
    if (st == LQ_OK) st = lq_session_create(m, n_ctx, pool, &k.sq);
    double t0 = lq_eval_now();
    lq_chunk_walk w = {0};
    if (st == LQ_OK)
        st = lq_eval_walk_chunks(tok, text, len, n_ctx, &o, "kl-divergence", compare_chunk, &k, &w);
    out->seconds = lq_eval_now() - t0;
    out->base.seconds = out->model.seconds = out->seconds;
    out->base.n_tokens = out->model.n_tokens = w.n_tokens;
    out->base.n_chunks = out->model.n_chunks = w.n_chunks;
    if (st == LQ_OK && k.acc.n == 0)
        st = lq_fail(LQ_ERR_INVALID_ARG, "kl-divergence: no token could be scored");
    if (st == LQ_OK) st = finish(&k.acc, out);
    free(k.acc.klds);
    free(k.acc.ratios);
    free(k.lb);
    free(k.lq);
    lq_session_free(k.sb);
    lq_session_free(k.sq);
    return st;
}
