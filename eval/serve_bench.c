/* serve_bench.c - the engine under load: a request trace replayed through the continuous-batching
 * scheduler (lq_sched.h) in real time, and llama-batched-bench's batch-size curve on lq_batch. */
#include "lq_eval.h"
#include "libquant/lq_sched.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct trace_req {
    double arrival;
    int n_prompt, n_gen;
} trace_req;

static uint64_t next_rand(uint64_t *state) { /* xorshift64*, as bench.c */
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}
static double rand01(uint64_t *st) { return (double)(next_rand(st) >> 11) * (1.0 / 9007199254740992.0); }
static int rand_in(uint64_t *st, int lo, int hi) { return lo + (int)(next_rand(st) % (uint64_t)(hi - lo + 1)); }

static lq_status trace_file(const char *path, trace_req **out, int *n) {
    char *text = NULL;
    size_t len = 0;
    LQ_TRY(lq_text_read_file(path, &text, &len));
    int cap = 64, cnt = 0, line = 0;
    trace_req *t = malloc((size_t)cap * sizeof *t);
    lq_status st = t ? LQ_OK : lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
    for (char *p = text; st == LQ_OK && p && *p;) {
        char *eol = strchr(p, '\n');
        if (eol) *eol = 0;
        line++;
        char *hash = strchr(p, '#');
        if (hash) *hash = 0;
        double a;
        int np, ng, used = 0;
        char extra;
        const int k = sscanf(p, " %lf %d %d %n%c", &a, &np, &ng, &used, &extra);
        if (k == EOF) { /* blank or comment */
        } else if (k != 3 || !isfinite(a) || a < 0 || np < 1 || ng < 1) {
            st = lq_fail(LQ_ERR_FORMAT, "%s:%d: want 'ARRIVAL_S PROMPT_LEN GEN_LEN' (>= 0, >= 1, >= 1)", path, line);
        } else {
            if (cnt == cap) {
                trace_req *g = realloc(t, (size_t)(cap *= 2) * sizeof *g);
                if (!g) { st = lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path); break; }
                t = g;
            }
            t[cnt++] = (trace_req){a, np, ng};
        }
        p = eol ? eol + 1 : NULL;
    }
    free(text);
    if (st == LQ_OK && cnt == 0) st = lq_fail(LQ_ERR_FORMAT, "%s: no requests in the trace", path);
    if (st != LQ_OK) {
        free(t);
        return st;
    }
    for (int i = 1; i < cnt; i++)
        if (t[i].arrival < t[i - 1].arrival)
            return free(t), lq_fail(LQ_ERR_FORMAT, "%s: arrivals must not decrease (request %d)", path, i + 1);
    *out = t;
    *n = cnt;
    return LQ_OK;
}

static lq_status trace_make(const lq_serve_opts *o, uint64_t *rng, trace_req **out, int *n) {
    if (o->trace) return trace_file(o->trace, out, n);
    const int N = o->n_requests > 0 ? o->n_requests : 32;
    const int pmin = o->prompt_min > 0 ? o->prompt_min : 32, pmax = o->prompt_max > 0 ? o->prompt_max : 256;
    const int gmin = o->gen_min > 0 ? o->gen_min : 16, gmax = o->gen_max > 0 ? o->gen_max : 128;
    if (pmax < pmin || gmax < gmin)
        return lq_fail(LQ_ERR_INVALID_ARG, "serve-bench: prompt lengths %d..%d, output lengths %d..%d", pmin, pmax,
                       gmin, gmax);
    trace_req *t = malloc((size_t)N * sizeof *t);
    if (!t) return lq_fail(LQ_ERR_NOMEM, "serve-bench: out of memory for %d requests", N);
    double at = 0;
    for (int i = 0; i < N; i++) {
        if (o->rate > 0 && i > 0) at += -log(1.0 - rand01(rng)) / o->rate; /* exponential gaps */
        t[i] = (trace_req){at, rand_in(rng, pmin, pmax), rand_in(rng, gmin, gmax)};
    }
    *out = t;
    *n = N;
    return LQ_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of sorted v (nearest rank). */
static double pct(const double *v, int64_t n, double q) {
    if (n <= 0) return 0;
    int64_t k = (int64_t)ceil(q * (double)n) - 1;
    return v[k < 0 ? 0 : k >= n ? n - 1 : k];
}

static void summarize(double *v, int64_t n, double *mean, double *p50, double *p90, double *p99) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += v[i];
    *mean = n ? s / (double)n : 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    *p50 = pct(v, n, 0.5);
    *p90 = pct(v, n, 0.9);
    *p99 = pct(v, n, 0.99);
}

static void sleep_s(double s) {
    if (s <= 0) return;
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

typedef struct serve_run {
    const lq_serve_opts *o;
    const trace_req *t;
    int n;
    lq_batch *b;
    lq_sched *s;
    int32_t *ids;      /* (longest prompt) */
    double *last;      /* (n) time of each request's latest token */
    double *ttft, *itl;
    int64_t n_itl;
    uint64_t rng;
} serve_run;

static lq_status serve_loop(serve_run *R, lq_serve_result *r, int vocab) {
    const int max_seqs = R->o->max_seqs > 0 ? R->o->max_seqs : 64;
    lq_sched_event *ev = malloc((size_t)max_seqs * sizeof *ev);
    if (!ev) return lq_fail(LQ_ERR_NOMEM, "serve-bench: out of memory");
    lq_status st = LQ_OK;
    int next = 0, done = 0;
    double kv_sum = 0;
    const double t0 = lq_eval_now();
    while (st == LQ_OK && done < R->n) {
        double now = lq_eval_now() - t0;
        for (; next < R->n && R->t[next].arrival <= now && st == LQ_OK; next++) {
            for (int i = 0; i < R->t[next].n_prompt; i++) R->ids[i] = (int32_t)(next_rand(&R->rng) % (uint64_t)vocab);
            int id;
            st = lq_sched_submit(R->s, R->ids, R->t[next].n_prompt, R->t[next].n_gen, &id);
        }
        if (st != LQ_OK) break;
        if (lq_sched_idle(R->s)) {
            if (next == R->n) break; /* cannot happen: every request submitted has finished */
            sleep_s(R->t[next].arrival - now);
            continue;
        }
        int n_ev = 0, rows = 0;
        st = lq_sched_step(R->s, ev, &n_ev, &rows);
        const double at = lq_eval_now() - t0;
        r->steps++;
        if (lq_sched_running(R->s) > r->max_running) r->max_running = lq_sched_running(R->s);
        lq_kv_stats ks;
        lq_batch_kv_stats(R->b, &ks);
        kv_sum += (double)ks.pages_in_use * (double)ks.page_bytes;
        if (ks.pages_in_use > r->kv_peak_pages) {
            r->kv_peak_pages = ks.pages_in_use;
            r->kv_peak_tokens = ks.tokens_held;
        }
        for (int i = 0; i < n_ev; i++) {
            const int q = ev[i].req;
            if (ev[i].index == 0) R->ttft[q] = at - R->t[q].arrival;
            else R->itl[R->n_itl++] = at - R->last[q];
            R->last[q] = at;
            r->gen_tokens++;
            if (!ev[i].done) continue;
            done++;
            if (R->o->progress) R->o->progress(R->o->progress_user, done, R->n, "serve-bench");
        }
    }
    r->seconds = lq_eval_now() - t0 - R->t[0].arrival;
    r->kv_mean_bytes = r->steps ? kv_sum / (double)r->steps : 0;
    free(ev);
    return st;
}

lq_status lq_eval_serve_bench(const lq_model *m, lq_pool *pool, const lq_serve_opts *o, lq_serve_result *r) {
    memset(r, 0, sizeof *r);
    serve_run R = {.o = o, .rng = o->seed ? o->seed : 42};
    trace_req *t = NULL;
    LQ_TRY(trace_make(o, &R.rng, &t, &R.n));
    R.t = t;
    const int vocab = lq_model_config(m)->vocab_size;
    int longest = 0, pmax = 0;
    for (int i = 0; i < R.n; i++) {
        if (t[i].n_prompt + t[i].n_gen > longest) longest = t[i].n_prompt + t[i].n_gen;
        if (t[i].n_prompt > pmax) pmax = t[i].n_prompt;
        r->prompt_tokens += t[i].n_prompt;
    }
    const int pt = o->page_tokens > 0 ? o->page_tokens : 16, max_seqs = o->max_seqs > 0 ? o->max_seqs : 64;
    const int64_t pages = o->max_pages > 0 ? o->max_pages : (int64_t)max_seqs * ((longest + pt - 1) / pt);
    const int budget = o->token_budget > 0 ? o->token_budget : 256;
    lq_batch_opts bo = {.page_tokens = pt, .max_pages = pages, .max_rows = budget, .n_ctx = longest};
    lq_sched_opts so = {.token_budget = budget, .max_seqs = max_seqs, .prefill_chunk = o->prefill_chunk};
    lq_status st = lq_batch_create(m, &bo, pool, &R.b);
    if (st == LQ_OK) st = lq_sched_create(R.b, &so, &R.s);
    R.ids = malloc((size_t)pmax * sizeof *R.ids);
    R.last = calloc((size_t)R.n, sizeof *R.last);
    R.ttft = calloc((size_t)R.n, sizeof *R.ttft);
    int64_t gen = 0;
    for (int i = 0; i < R.n; i++) gen += t[i].n_gen;
    R.itl = malloc((size_t)(gen > 0 ? gen : 1) * sizeof *R.itl);
    if (st == LQ_OK && (!R.ids || !R.last || !R.ttft || !R.itl)) st = lq_fail(LQ_ERR_NOMEM, "serve-bench: out of memory");
    if (st == LQ_OK) st = serve_loop(&R, r, vocab);
    if (st == LQ_OK) {
        lq_kv_stats ks;
        lq_batch_kv_stats(R.b, &ks);
        r->n_requests = R.n;
        r->page_tokens = ks.page_tokens;
        r->page_bytes = ks.page_bytes;
        r->kv_type = ks.kv_type;
        r->kv_pages_allocated = ks.pages_allocated;
        r->gen_tok_s = r->seconds > 0 ? (double)r->gen_tokens / r->seconds : 0;
        r->total_tok_s = r->seconds > 0 ? (double)(r->gen_tokens + r->prompt_tokens) / r->seconds : 0;
        summarize(R.ttft, R.n, &r->ttft_mean, &r->ttft_p50, &r->ttft_p90, &r->ttft_p99);
        summarize(R.itl, R.n_itl, &r->itl_mean, &r->itl_p50, &r->itl_p90, &r->itl_p99);
    }
    lq_sched_free(R.s);
    lq_batch_free(R.b);
    free(R.ids);
    free(R.last);
    free(R.ttft);
    free(R.itl);
    free(t);
    return st;
}

/* ---- the batch-size curve --------------------------------------------------------------------- */

#define CURVE_ROWS 512

static lq_status curve_point(lq_batch *b, int B, int n_prompt, int n_gen, uint64_t *rng, int vocab, float *logits,
                             lq_batch_point *pt) {
    int *seq = malloc((size_t)B * sizeof *seq);
    int32_t *ids = malloc((size_t)B * (size_t)(n_prompt > 1 ? n_prompt : 1) * sizeof *ids);
    lq_batch_item *it = malloc((size_t)(B > CURVE_ROWS ? B : CURVE_ROWS) * sizeof *it);
    lq_status st = seq && ids && it ? LQ_OK : lq_fail(LQ_ERR_NOMEM, "batch curve: out of memory");
    int opened = 0;
    for (; st == LQ_OK && opened < B; opened++) st = lq_batch_seq_open(b, &seq[opened]);
    for (int64_t i = 0; st == LQ_OK && i < (int64_t)B * n_prompt; i++) ids[i] = (int32_t)(next_rand(rng) % (uint64_t)vocab);
    /* prefill: every prompt, in steps of at most CURVE_ROWS rows */
    double t0 = lq_eval_now();
    for (int i = 0, fed = 0; st == LQ_OK && i < B;) {
        int ni = 0, rows = 0;
        while (i < B && rows < CURVE_ROWS) {
            int n = n_prompt - fed < CURVE_ROWS - rows ? n_prompt - fed : CURVE_ROWS - rows;
            it[ni++] = (lq_batch_item){.seq = seq[i], .tokens = ids + (size_t)i * n_prompt + fed, .n = n,
                                       .logits = fed + n == n_prompt ? LQ_BATCH_LOGITS_LAST : LQ_BATCH_LOGITS_NONE};
            rows += n;
            fed += n;
            if (fed == n_prompt) { i++; fed = 0; }
        }
        st = lq_batch_forward(b, it, ni, logits);
    }
    pt->pp_s = lq_eval_now() - t0;
    /* decode: n_gen steps of one token per sequence (its greedy next token) */
    int32_t *next = ids; /* reuse: B slots */
    for (int i = 0; i < B; i++) next[i] = (int32_t)(next_rand(rng) % (uint64_t)vocab);
    t0 = lq_eval_now();
    for (int g = 0; st == LQ_OK && g < n_gen; g++) {
        for (int i = 0; i < B; i++) it[i] = (lq_batch_item){.seq = seq[i], .tokens = &next[i], .n = 1};
        st = lq_batch_forward(b, it, B, logits);
        for (int i = 0; st == LQ_OK && i < B; i++) next[i] = lq_eval_argmax(logits + (size_t)i * vocab, vocab);
    }
    pt->tg_s = lq_eval_now() - t0;
    lq_kv_stats ks; /* every sequence at its longest, before they close */
    lq_batch_kv_stats(b, &ks);
    pt->kv_bytes = (int64_t)ks.pages_in_use * (int64_t)ks.page_bytes;
    pt->batch = B;
    pt->pp_tok_s = pt->pp_s > 0 ? (double)B * n_prompt / pt->pp_s : 0;
    pt->tg_tok_s = pt->tg_s > 0 ? (double)B * n_gen / pt->tg_s : 0;
    for (int i = 0; i < opened; i++) lq_batch_seq_close(b, seq[i]);
    free(seq);
    free(ids);
    free(it);
    return st;
}

lq_status lq_eval_batch_curve(const lq_model *m, lq_pool *pool, const int *batch, int n_batch, int n_prompt,
                              int n_gen, uint64_t seed, lq_batch_point *out) {
    int bmax = 0;
    for (int i = 0; i < n_batch; i++) {
        if (batch[i] < 1) return lq_fail(LQ_ERR_INVALID_ARG, "batch curve: batch size %d", batch[i]);
        if (batch[i] > bmax) bmax = batch[i];
    }
    if (n_prompt < 1 || n_gen < 1)
        return lq_fail(LQ_ERR_INVALID_ARG, "batch curve: %d prompt and %d generated tokens (each >= 1)", n_prompt,
                       n_gen);
    const int vocab = lq_model_config(m)->vocab_size, ctx = n_prompt + n_gen;
    lq_batch_opts bo = {.max_rows = bmax > CURVE_ROWS ? bmax : CURVE_ROWS, .n_ctx = ctx,
                        .max_pages = (int64_t)bmax * ((ctx + 15) / 16)};
    lq_batch *b = NULL;
    LQ_TRY(lq_batch_create(m, &bo, pool, &b));
    float *logits = malloc((size_t)(bmax > CURVE_ROWS ? bmax : CURVE_ROWS) * (size_t)vocab * sizeof *logits);
    lq_status st = logits ? LQ_OK : lq_fail(LQ_ERR_NOMEM, "batch curve: out of memory for logits");
    uint64_t rng = seed ? seed : 42;
    /* warm-up (as llama-batched-bench): one short step first, so B = 1 does not pay for the
     * first touch of the mapped weights */
    lq_batch_point warm;
    if (st == LQ_OK) st = curve_point(b, 1, 1, 1, &rng, vocab, logits, &warm);
    for (int i = 0; st == LQ_OK && i < n_batch; i++) st = curve_point(b, batch[i], n_prompt, n_gen, &rng, vocab, logits, &out[i]);
    free(logits);
    lq_batch_free(b);
    return st;
}
