/* beam.c - beam search (lq_beam.h): the beams are sequences of one lq_batch, the prompt is
 * prefilled once and shared copy-on-write by every fork, and each step extends all beams in one
 * batched forward. The scoring and stopping rules are stated in lq_beam.h. */
#include "libquant/lq_batch.h"
#include "libquant/lq_beam.h"
#include "libquant/lq_sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A live beam. tok/lp point into a store of n_beams x max_new slots owned by the search. */
typedef struct beam {
    int32_t *tok;  /* (max_new) generated tokens */
    double *lp;    /* (max_new) their log-probabilities */
    double sum;
    int seq;       /* its lq_batch sequence (the KV cache of its prompt + tokens) */
    int parent;    /* index of the beam it extends (previous step) */
} beam;

/* One extension of one beam by one token. */
typedef struct cand {
    double score; /* parent's sum + lp */
    double lp;
    int beam;
    int32_t id;
} cand;

static int cmp_cand(const void *pa, const void *pb) {
    const cand *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    if (a->beam != b->beam) return a->beam < b->beam ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

typedef struct fin_hyp {
    lq_beam_hyp h;
    int64_t seq;  /* insertion order: ties in score go to the earlier hypothesis */
} fin_hyp;

static int cmp_fin(const void *pa, const void *pb) {
    const fin_hyp *a = pa, *b = pb;
    if (a->h.score != b->h.score) return a->h.score > b->h.score ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

typedef struct search {
    int n_beams, max_new;
    double alpha;
    fin_hyp *fin;  /* (n_beams) the best hypotheses so far */
    int n_fin;
    int64_t seq;
} search;

static void hyp_free(lq_beam_hyp *h) {
    free(h->tokens);
    free(h->logprobs);
    h->tokens = NULL;
    h->logprobs = NULL;
}

/* Offer beam b (len tokens), optionally extended by stop token `extra` (>= 0), as a hypothesis.
 * Kept when fewer than n_beams are held or it beats the worst held (which it then replaces). */
static lq_status offer(search *S, const beam *b, int len, int32_t extra, double extra_lp,
                       bool finished) {
    int n = len + (extra >= 0);
    if (n <= 0) return LQ_OK;
    double sum = b->sum + (extra >= 0 ? extra_lp : 0);
    double score = sum / pow((double)n, S->alpha);
    int slot = S->n_fin;
    if (S->n_fin == S->n_beams) {
        slot = 0;
        for (int i = 1; i < S->n_fin; i++)
            if (cmp_fin(&S->fin[i], &S->fin[slot]) > 0) slot = i; /* the worst */
        if (!(score > S->fin[slot].h.score)) return LQ_OK;
        hyp_free(&S->fin[slot].h);
    }
    lq_beam_hyp h = {.n = n, .logprob_sum = sum, .score = score, .finished = finished};
    h.tokens = malloc((size_t)n * sizeof *h.tokens);
    h.logprobs = malloc((size_t)n * sizeof *h.logprobs);
    if (!h.tokens || !h.logprobs) {
        hyp_free(&h);
        if (slot < S->n_fin) S->fin[slot] = S->fin[--S->n_fin]; /* drop the freed slot */
        return lq_fail(LQ_ERR_NOMEM, "beam search: out of memory for a hypothesis");
    }
    memcpy(h.tokens, b->tok, (size_t)len * sizeof *h.tokens);
    memcpy(h.logprobs, b->lp, (size_t)len * sizeof *h.logprobs);
    if (extra >= 0) {
        h.tokens[len] = extra;
        h.logprobs[len] = extra_lp;
    }
    S->fin[slot] = (fin_hyp){.h = h, .seq = S->seq++};
    if (slot == S->n_fin) S->n_fin++;
    return LQ_OK;
}

static bool is_stop(const lq_beam_opts *o, int32_t id) {
    for (int i = 0; i < o->n_stop; i++)
        if (o->stop_ids[i] == id) return true;
    return false;
}

/* log sum exp of row[0..n) in double */
static double log_sum_exp(const float *row, int n) {
    double mx = -INFINITY;
    for (int i = 0; i < n; i++)
        if (row[i] > mx) mx = row[i];
    double s = 0;
    for (int i = 0; i < n; i++) s += exp((double)row[i] - mx);
    return mx + log(s);
}

/* Give each new beam a sequence holding its parent's cache of positions [0, pos): a parent's
 * first child takes over the parent's sequence, the others fork it (copy-on-write: the shared
 * pages are copied only where a child writes); parents without children are closed. */
static lq_status assign_seqs(lq_batch *b, const beam *cur, int n_cur, beam *next, int n_next, bool *claimed) {
    memset(claimed, 0, (size_t)n_cur * sizeof *claimed);
    for (int j = 0; j < n_next; j++) {
        const int p = next[j].parent;
        if (!claimed[p]) {
            next[j].seq = cur[p].seq;
            claimed[p] = true;
        } else {
            LQ_TRY(lq_batch_seq_fork(b, cur[p].seq, &next[j].seq));
        }
    }
    for (int p = 0; p < n_cur; p++)
        if (!claimed[p]) lq_batch_seq_close(b, cur[p].seq);
    return LQ_OK;
}

void lq_beam_result_free(lq_beam_result *r) {
    if (!r) return;
    for (int i = 0; i < r->n_hyps; i++) hyp_free(&r->hyps[i]);
    free(r->hyps);
    r->hyps = NULL;
    r->n_hyps = 0;
}

lq_status lq_beam_search(const lq_model *m, lq_pool *pool, const int32_t *prompt, int n_prompt,
                         const lq_beam_opts *o, lq_beam_result *out) {
    memset(out, 0, sizeof *out);
    const int V = lq_model_config(m)->vocab_size;
    int vocab = o->vocab > 0 && o->vocab < V ? o->vocab : V;
    int nb = o->n_beams, n_best = o->n_best > 0 ? o->n_best : 1;
    if (nb < 1 || n_best > nb)
        return lq_fail(LQ_ERR_INVALID_ARG, "beam search: %d beams, %d best (need 1 <= best <= beams)",
                       nb, n_best);
    if (o->max_new < 1 || n_prompt < 1)
        return lq_fail(LQ_ERR_INVALID_ARG, "beam search: prompt of %d and max_new %d must be >= 1",
                       n_prompt, o->max_new);
    if (!isfinite(o->length_penalty))
        return lq_fail(LQ_ERR_INVALID_ARG, "beam search: length penalty must be finite");
    int64_t want = (int64_t)n_prompt + o->max_new;
    int n_ctx = lq_model_config(m)->max_seq_len > 0 && want > lq_model_config(m)->max_seq_len ? lq_model_config(m)->max_seq_len : (int)want;
    if (n_prompt > n_ctx)
        return lq_fail(LQ_ERR_INVALID_ARG, "beam search: prompt of %d tokens exceeds context %d",
                       n_prompt, n_ctx);

    search S = {.n_beams = nb, .max_new = o->max_new, .alpha = o->length_penalty};
    int kk = 2 * nb; /* HF keeps 2 x beams candidates so stop tokens cannot starve the beams */
    lq_status st = LQ_OK;
    lq_batch *bt = NULL;
    lq_batch_item *items = malloc((size_t)nb * sizeof *items);
    float *logits = malloc((size_t)nb * (size_t)V * sizeof *logits);
    beam *cur = calloc((size_t)nb, sizeof *cur), *next = calloc((size_t)nb, sizeof *next);
    int32_t *tok_store = malloc((size_t)2 * nb * o->max_new * sizeof *tok_store);
    double *lp_store = malloc((size_t)2 * nb * o->max_new * sizeof *lp_store);
    lq_candidate *scratch = malloc((size_t)vocab * sizeof *scratch);
    cand *cands = malloc((size_t)nb * kk * sizeof *cands);
    bool *claimed = calloc((size_t)nb, sizeof *claimed);
    S.fin = calloc((size_t)nb, sizeof *S.fin);
    if (!items || !logits || !cur || !next || !tok_store || !lp_store || !scratch || !cands ||
        !claimed || !S.fin) {
        st = lq_fail(LQ_ERR_NOMEM, "beam search: out of memory for %d beams", nb);
        goto done;
    }
    for (int i = 0; i < nb; i++) {
        cur[i].tok = tok_store + (size_t)i * o->max_new;
        cur[i].lp = lp_store + (size_t)i * o->max_new;
        next[i].tok = tok_store + (size_t)(nb + i) * o->max_new;
        next[i].lp = lp_store + (size_t)(nb + i) * o->max_new;
    }
    /* the pool: every beam's own pages at the longest, plus the prompt's */
    const int pages_per_seq = (n_ctx + 15) / 16;
    lq_batch_opts bo = {.page_tokens = 16, .n_ctx = n_ctx, .max_rows = n_prompt > nb ? n_prompt : nb,
                        .max_pages = (int64_t)(nb + 1) * pages_per_seq};
    if ((st = lq_batch_create(m, &bo, pool, &bt)) != LQ_OK) goto done;
    if ((st = lq_batch_seq_open(bt, &cur[0].seq)) != LQ_OK) goto done;

    double t0 = now_s();
    items[0] = (lq_batch_item){.seq = cur[0].seq, .tokens = prompt, .n = n_prompt};
    if ((st = lq_batch_forward(bt, items, 1, logits)) != LQ_OK) goto done;
    out->n_prompt = n_prompt;
    out->prefill_s = now_s() - t0;
    double t1 = now_s();

    cur[0].sum = 0;
    int n_cur = 1, len = 0;
    bool done = false;
    while (n_cur > 0 && len < o->max_new) {
        /* every live beam's best kk extensions */
        int nc = 0;
        for (int b = 0; b < n_cur; b++) {
            const float *row = logits + (size_t)b * V;
            double lse = log_sum_exp(row, vocab);
            lq_candidates c = {.data = scratch};
            lq_candidates_init(&c, row, vocab);
            lq_sample_top_k(&c, kk);
            for (int64_t i = 0; i < c.n; i++) {
                double lp = (double)c.data[i].logit - lse;
                cands[nc++] = (cand){.score = cur[b].sum + lp, .lp = lp, .beam = b,
                                     .id = c.data[i].id};
            }
        }
        qsort(cands, (size_t)nc, sizeof *cands, cmp_cand);
        int n_next = 0;
        for (int r = 0; r < nc && n_next < nb; r++) {
            const cand *c = &cands[r];
            if (is_stop(o, c->id)) {
                if (r < nb && (st = offer(&S, &cur[c->beam], len, c->id, c->lp, true)) != LQ_OK)
                    goto done;
                continue;
            }
            beam *nx = &next[n_next++];
            memcpy(nx->tok, cur[c->beam].tok, (size_t)len * sizeof *nx->tok);
            memcpy(nx->lp, cur[c->beam].lp, (size_t)len * sizeof *nx->lp);
            nx->tok[len] = c->id;
            nx->lp[len] = c->lp;
            nx->sum = c->score;
            nx->parent = c->beam;
        }
        len++;
        done = S.n_fin >= nb;
        if (done || n_next == 0) {
            n_cur = 0;
            break;
        }
        int pos = n_prompt + len - 1; /* where the new tokens go; the parents cache [0, pos) */
        /* complete, or no room for another position: the new beams need no forward */
        bool last = len == o->max_new || pos >= n_ctx;
        if (!last && (st = assign_seqs(bt, cur, n_cur, next, n_next, claimed)) != LQ_OK) goto done;
        beam *t = cur;
        cur = next;
        next = t;
        n_cur = n_next;
        if (last) break;
        for (int j = 0; j < n_cur; j++)
            items[j] = (lq_batch_item){.seq = cur[j].seq, .tokens = &cur[j].tok[len - 1], .n = 1};
        if ((st = lq_batch_forward(bt, items, n_cur, logits)) != LQ_OK) goto done;
        out->n_forward += n_cur;
    }
    /* not enough finished hypotheses: the live beams compete too (HF's finalize) */
    if (!done)
        for (int b = 0; b < n_cur; b++)
            if ((st = offer(&S, &cur[b], len, -1, 0, false)) != LQ_OK) goto done;
    out->decode_s = now_s() - t1;

    qsort(S.fin, (size_t)S.n_fin, sizeof *S.fin, cmp_fin);
    out->n_hyps = S.n_fin < n_best ? S.n_fin : n_best;
    out->hyps = calloc((size_t)(out->n_hyps > 0 ? out->n_hyps : 1), sizeof *out->hyps);
    if (!out->hyps) {
        out->n_hyps = 0;
        st = lq_fail(LQ_ERR_NOMEM, "beam search: out of memory for the result");
        goto done;
    }
    for (int i = 0; i < out->n_hyps; i++) {
        out->hyps[i] = S.fin[i].h;
        S.fin[i].h.tokens = NULL; /* moved */
        S.fin[i].h.logprobs = NULL;
    }
done:
    if (S.fin)
        for (int i = 0; i < S.n_fin; i++) hyp_free(&S.fin[i].h);
    if (st != LQ_OK) lq_beam_result_free(out);
    lq_batch_free(bt);
    free(items);
    free(logits);
    /* cur and next may have been swapped: free both arrays, they hold no owned memory */
    free(cur);
    free(next);
    free(tok_store);
    free(lp_store);
    free(scratch);
    free(cands);
    free(claimed);
    free(S.fin);
    return st;
}
