/* speculative.c - the speculative decoding loop (lq_spec.h): draft K, verify K + 1 in one target
 * forward, keep the accepted prefix, roll both caches back to it.
 *
 * State between cycles: ctx[0..n) is the text (prompt + emitted tokens). The last token ctx[n-1]
 * is in neither cache yet; the target's cache holds positions 0..n-2, the draft's 0..d_pos-1
 * (d_pos <= n - 1: after a fully accepted cycle it lacks the last draft token, and catches up at
 * the start of the next cycle). One cycle:
 *   draft:  forward ctx[d_pos..n) -> q_1, choose x_1; forward x_1 -> q_2, ...; x_K (K forwards
 *           after the catch-up, the last proposal never forwarded)
 *   target: forward [ctx[n-1], x_1 .. x_K] at n-1 -> p_1 .. p_{K+1}
 *   judge:  x_i in order until the first rejection, which is replaced by the target's token;
 *           if none is rejected, a bonus token from p_{K+1}
 *   rollback: the target keeps positions < n' - 1 and the draft positions < min(d_pos, n' - 1),
 *           n' the new text length. */
#include "speculative_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Everything one generation holds. */
typedef struct spec_run {
    lq_spec_lm *t, *d;
    const lq_sample_params *sp;
    const lq_spec_opts *o;
    int V;                  /* logits row width */
    int vocab;              /* candidate ids 0..vocab-1 */
    int K;
    bool greedy;
    int32_t *ctx;           /* (cap) prompt + emitted + this cycle's proposals */
    int n, d_pos;
    float *tl;              /* (K + 1, V) target logits of a cycle */
    float *dl;              /* (K, V) draft logits, row i for proposal i */
    double *q;              /* (K, vocab) sampling: the draft's processed distributions */
    double *p;              /* (vocab) sampling: the target's processed distribution */
    lq_candidate *cand;     /* (V) scratch for the processors */
    lq_rng rng;
    lq_sample_token_fn cb;
    void *user;
    lq_spec_result r;
    bool done;
} spec_run;

static bool is_stop(const lq_spec_opts *o, int32_t id) {
    for (int i = 0; i < o->n_stop; i++)
        if (o->stop_ids[i] == id) return true;
    return false;
}

/* The repetition penalty's window for a choice at text index j: the tokens before it. */
static const int32_t *window(const spec_run *s, int j, int64_t *n_recent) {
    int64_t w = s->sp->repeat_last_n;
    int64_t from = j > w ? j - w : 0;
    *n_recent = j - from;
    return s->ctx + from;
}

/* The target's choice at text index j from logits row l (greedy or a draw from p; fills s->p
 * when sampling). */
static int32_t target_choice(spec_run *s, const float *l, int j) {
    int64_t nr;
    const int32_t *rec = window(s, j, &nr);
    if (s->greedy) return lq_spec_greedy(s->sp, l, s->vocab, rec, nr, s->cand);
    lq_spec_probs(s->sp, l, s->vocab, rec, nr, s->cand, s->p);
    return lq_spec_draw(s->p, s->vocab, &s->rng);
}

/* Append token id chosen from target logits l; false when generation ends. */
static bool emit(spec_run *s, int32_t id, const float *l) {
    if (is_stop(s->o, id)) {
        s->r.hit_stop = true;
        return false;
    }
    s->ctx[s->n++] = id;
    s->r.n_generated++;
    if (s->cb) {
        lq_sample_info info = {.id = id, .n_candidates = 1};
        info.logprob = lq_spec_logprob(l, s->vocab, id);
        if (!s->greedy) {
            info.logprob_processed = log(s->p[id]);
            info.n_candidates = 0;
            for (int i = 0; i < s->vocab; i++) info.n_candidates += s->p[i] > 0;
        }
        if (!s->cb(s->user, &info)) return false;
    }
    return s->r.n_generated < s->o->max_new;
}

/* Draft proposals x_1..x_k into ctx[n..n+k), their logits in s->dl (and q when sampling). */
static lq_status draft(spec_run *s, int k) {
    double t0 = now_s();
    LQ_TRY(s->d->truncate(s->d, s->d_pos));
    /* catch up: every text token the draft's cache lacks, in one forward */
    LQ_TRY(s->d->forward(s->d, s->ctx + s->d_pos, s->n - s->d_pos, s->d_pos, s->dl, false));
    s->r.n_draft_fwd++;
    s->d_pos = s->n;
    for (int i = 0; i < k; i++) {
        float *l = s->dl + (size_t)i * s->V;
        if (i > 0) {
            LQ_TRY(s->d->forward(s->d, s->ctx + s->n + i - 1, 1, s->n + i - 1, l, false));
            s->r.n_draft_fwd++;
            s->d_pos = s->n + i;
        }
        int64_t nr;
        const int32_t *rec = window(s, s->n + i, &nr);
        int32_t x;
        if (s->greedy) {
            x = lq_spec_greedy(s->sp, l, s->vocab, rec, nr, s->cand);
        } else {
            double *q = s->q + (size_t)i * s->vocab;
            lq_spec_probs(s->sp, l, s->vocab, rec, nr, s->cand, q);
            x = lq_spec_draw(q, s->vocab, &s->rng);
        }
        s->ctx[s->n + i] = x;
    }
    s->r.n_drafted += k;
    s->r.draft_s += now_s() - t0;
    return LQ_OK;
}

/* Judge the k proposals against the target logits s->tl; emit the accepted ones and the
 * correction or bonus token. */
static void judge(spec_run *s, int k) {
    const int n0 = s->n;
    for (int i = 0; i < k; i++) {
        const float *l = s->tl + (size_t)i * s->V;
        int32_t x = s->ctx[n0 + i], c;
        bool ok;
        if (s->o->measure_alpha)
            s->r.alpha_sum += lq_spec_alpha(l, s->dl + (size_t)i * s->V, s->vocab);
        s->r.n_judged++;
        if (s->greedy) {
            c = target_choice(s, l, n0 + i);
            ok = c == x;
        } else {
            int64_t nr;
            const int32_t *rec = window(s, n0 + i, &nr);
            lq_spec_probs(s->sp, l, s->vocab, rec, nr, s->cand, s->p);
            ok = lq_spec_accept(s->p, s->q + (size_t)i * s->vocab, s->vocab, x, &s->rng, &c);
        }
        /* emit() appends at ctx[n]: for an accepted x that is where x already is */
        if (ok) {
            s->r.n_accepted++;
            if (!emit(s, x, l)) { s->done = true; return; }
            continue;
        }
        if (!emit(s, c, l)) s->done = true;
        return;
    }
    const float *l = s->tl + (size_t)k * s->V;
    if (!emit(s, target_choice(s, l, s->n), l)) s->done = true;
}

/* One draft-verify cycle. */
static lq_status cycle(spec_run *s) {
    const int n0 = s->n;
    /* room: proposals must fit the target's forward (positions n0-1 .. n0-1+k) and the draft's
     * (up to n0+k-2), and leave the last of max_new to the bonus token */
    int k = s->K;
    int left = s->o->max_new - (int)s->r.n_generated;
    if (k > left - 1) k = left - 1;
    if (k > s->t->n_ctx - n0) k = s->t->n_ctx - n0;
    if (k > s->d->n_ctx - n0 + 1) k = s->d->n_ctx - n0 + 1;
    if (k < 0) k = 0;
    if (k > 0) LQ_TRY(draft(s, k));
    double t0 = now_s();
    LQ_TRY(s->t->truncate(s->t, n0 - 1));
    LQ_TRY(s->t->forward(s->t, s->ctx + n0 - 1, k + 1, n0 - 1, s->tl, true));
    s->r.verify_s += now_s() - t0;
    s->r.n_cycles++;
    judge(s, k);
    /* rollback: ctx[0..n-1) is what both caches may keep; a paged cache returns the rest now */
    if (s->d_pos > s->n - 1) s->d_pos = s->n - 1;
    LQ_TRY(s->t->truncate(s->t, s->n - 1));
    return s->d->truncate(s->d, s->d_pos);
}

static lq_status run_alloc(spec_run *s, int n_prompt) {
    size_t cap = (size_t)n_prompt + (size_t)s->o->max_new + (size_t)s->K + 2;
    s->ctx = malloc(cap * sizeof *s->ctx);
    s->tl = malloc((size_t)(s->K + 1) * s->V * sizeof *s->tl);
    s->dl = malloc((size_t)s->K * s->V * sizeof *s->dl);
    s->cand = malloc((size_t)s->V * sizeof *s->cand);
    if (!s->greedy) {
        s->q = malloc((size_t)s->K * s->vocab * sizeof *s->q);
        s->p = malloc((size_t)s->vocab * sizeof *s->p);
    }
    if (!s->ctx || !s->tl || !s->dl || !s->cand || (!s->greedy && (!s->q || !s->p)))
        return lq_fail(LQ_ERR_NOMEM, "speculative: out of memory for %d draft tokens of %d logits",
                       s->K, s->V);
    return LQ_OK;
}

static void run_free(spec_run *s) {
    free(s->ctx);
    free(s->tl);
    free(s->dl);
    free(s->cand);
    free(s->q);
    free(s->p);
}

static lq_status check_args(const lq_spec_lm *t, const lq_spec_lm *d, const lq_sample_params *sp,
                            int n_prompt, const lq_spec_opts *o) {
    if (t->n_vocab != d->n_vocab)
        return lq_fail(LQ_ERR_MISMATCH, "speculative: the target has %d tokens, the draft %d",
                       t->n_vocab, d->n_vocab);
    if (o->draft_max < 1)
        return lq_fail(LQ_ERR_INVALID_ARG, "speculative: draft-max %d must be >= 1", o->draft_max);
    if (n_prompt < 1)
        return lq_fail(LQ_ERR_INVALID_ARG, "speculative: the prompt is empty (BOS at least)");
    if (n_prompt > t->n_ctx || n_prompt > d->n_ctx)
        return lq_fail(LQ_ERR_INVALID_ARG, "speculative: prompt of %d tokens exceeds a context of %d",
                       n_prompt, t->n_ctx < d->n_ctx ? t->n_ctx : d->n_ctx);
    lq_sampler *check = NULL; /* the sampler's own parameter checks, one set of messages */
    lq_status st = lq_sampler_create(sp, &check);
    lq_sampler_free(check);
    return st;
}

lq_status lq_spec_generate(lq_spec_lm *t, lq_spec_lm *d, const lq_sample_params *sp,
                           const int32_t *prompt, int n_prompt, const lq_spec_opts *o,
                           lq_sample_token_fn cb, void *user, lq_spec_result *out) {
    if (out) memset(out, 0, sizeof *out);
    LQ_TRY(check_args(t, d, sp, n_prompt, o));
    spec_run s = {.t = t, .d = d, .sp = sp, .o = o, .V = t->n_vocab, .K = o->draft_max,
                  .greedy = sp->temperature == 0.0f, .cb = cb, .user = user};
    s.vocab = o->vocab > 0 && o->vocab < s.V ? o->vocab : s.V;
    lq_rng_seed(&s.rng, sp->seed, 0);
    lq_status st = run_alloc(&s, n_prompt);
    if (st != LQ_OK) goto done;
    memcpy(s.ctx, prompt, (size_t)n_prompt * sizeof *prompt);
    s.n = n_prompt;
    s.r.n_prompt = n_prompt;
    double t0 = now_s();
    if ((st = t->truncate(t, 0)) != LQ_OK) goto done;
    st = t->forward(t, prompt, n_prompt, 0, s.tl, false);
    /* the draft's prompt too (the first cycle then catches up on one token): prefill cost, not
     * decode cost, as plain decoding's prompt forward is */
    if (st == LQ_OK && o->max_new > 1 && (st = d->truncate(d, 0)) == LQ_OK &&
        (st = d->forward(d, prompt, n_prompt, 0, s.dl, false)) == LQ_OK) {
        s.d_pos = n_prompt;
        s.r.n_draft_fwd++;
    }
    s.r.prefill_s = now_s() - t0;
    if (st != LQ_OK || o->max_new <= 0) goto done;
    double t1 = now_s();
    /* the first token is the target's, from its prompt forward. A cycle forwards ctx[n-1] at
     * position n-1: the text ends at n_ctx + 1 tokens, as lq_sample_generate's does */
    if (emit(&s, target_choice(&s, s.tl, s.n), s.tl))
        while (!s.done && s.n <= t->n_ctx && (st = cycle(&s)) == LQ_OK) {}
    s.r.decode_s = now_s() - t1;
done:
    run_free(&s);
    if (out) *out = s.r;
    return st;
}
