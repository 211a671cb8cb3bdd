/* sched.c - the continuous-batching scheduler (lq_sched.h): which rows each lq_batch step runs. */
#include <stdlib.h>
#include <string.h>

#include "libquant/lq_sched.h"

#define SCHED_BUDGET 256
#define SCHED_MAX_SEQS 64

typedef enum req_state { REQ_WAITING = 0, REQ_PREFILL, REQ_DECODE, REQ_DONE } req_state;

typedef struct request {
    int32_t *prompt;    /* (n_prompt) owned until the prompt is prefilled */
    int n_prompt, max_new;
    int n_fed;          /* prompt tokens in the cache */
    int n_gen;          /* tokens generated */
    int32_t next;       /* the last generated token: the next decode step's input */
    int seq;            /* its lq_batch sequence while running */
    int64_t pages;      /* pages reserved for it: prompt + max_new tokens */
    req_state state;
} request;

struct lq_sched {
    lq_batch *b;
    lq_sched_opts o;
    int page_tokens;
    int64_t max_pages, reserved;
    request *req;       /* (n_req) in submission order */
    int n_req, cap_req;
    int first_waiting;  /* every request before it has been admitted */
    int *run;           /* (max_seqs) running requests, in admission order */
    int n_run;
    lq_batch_item *items; /* (max_seqs) this step's items */
    int *item_req;      /* (max_seqs) the request of each item */
    float *logits;      /* (max_seqs, vocab) */
    int vocab;
};

lq_status lq_sched_create(lq_batch *b, const lq_sched_opts *o, lq_sched **out) {
    *out = NULL;
    lq_sched *s = calloc(1, sizeof *s);
    if (!s) return lq_fail(LQ_ERR_NOMEM, "scheduler: out of memory");
    s->b = b;
    s->o = o ? *o : (lq_sched_opts){0};
    if (s->o.token_budget <= 0) s->o.token_budget = SCHED_BUDGET;
    if (s->o.token_budget > lq_batch_max_rows(b)) s->o.token_budget = lq_batch_max_rows(b);
    if (s->o.max_seqs <= 0) s->o.max_seqs = SCHED_MAX_SEQS;
    if (s->o.max_seqs > s->o.token_budget) s->o.max_seqs = s->o.token_budget; /* every decode fits a step */
    if (s->o.prefill_chunk <= 0 || s->o.prefill_chunk > s->o.token_budget) s->o.prefill_chunk = s->o.token_budget;
    lq_kv_stats ks;
    lq_batch_kv_stats(b, &ks);
    s->page_tokens = ks.page_tokens;
    s->max_pages = ks.max_pages;
    s->vocab = lq_model_config(lq_batch_model(b))->vocab_size;
    const size_t ms = (size_t)s->o.max_seqs;
    s->run = malloc(ms * sizeof *s->run);
    s->items = malloc(ms * sizeof *s->items);
    s->item_req = malloc(ms * sizeof *s->item_req);
    s->logits = malloc(ms * (size_t)s->vocab * sizeof *s->logits);
    if (!s->run || !s->items || !s->item_req || !s->logits) {
        lq_sched_free(s);
        return lq_fail(LQ_ERR_NOMEM, "scheduler: out of memory for %d sequences", s->o.max_seqs);
    }
    *out = s;
    return LQ_OK;
}

void lq_sched_free(lq_sched *s) {
    if (!s) return;
    for (int i = 0; i < s->n_req; i++) {
        if (s->req[i].state == REQ_PREFILL || s->req[i].state == REQ_DECODE) lq_batch_seq_close(s->b, s->req[i].seq);
        free(s->req[i].prompt);
    }
    free(s->req);
    free(s->run);
    free(s->items);
    free(s->item_req);
    free(s->logits);
    free(s);
}

static int64_t pages_for(const lq_sched *s, int tokens) { return (tokens + s->page_tokens - 1) / s->page_tokens; }

lq_status lq_sched_submit(lq_sched *s, const int32_t *prompt, int n_prompt, int max_new, int *req) {
    *req = -1;
    if (n_prompt <= 0 || max_new <= 0)
        return lq_fail(LQ_ERR_INVALID_ARG, "scheduler: a request of %d prompt tokens, %d new", n_prompt, max_new);
    if ((int64_t)n_prompt + max_new > lq_batch_n_ctx(s->b))
        return lq_fail(LQ_ERR_INVALID_ARG, "scheduler: %d prompt + %d new tokens exceed the context of %d", n_prompt,
                       max_new, lq_batch_n_ctx(s->b));
    const int64_t pages = pages_for(s, n_prompt + max_new);
    if (pages > s->max_pages)
        return lq_fail(LQ_ERR_INVALID_ARG, "scheduler: a request of %d tokens needs %lld pages, the pool has %lld",
                       n_prompt + max_new, (long long)pages, (long long)s->max_pages);
    for (int t = 0; t < n_prompt; t++)
        if (prompt[t] < 0 || prompt[t] >= s->vocab)
            return lq_fail(LQ_ERR_INVALID_ARG, "scheduler: token id %d out of range [0, %d)", prompt[t], s->vocab);
    if (s->n_req == s->cap_req) {
        int cap = s->cap_req ? 2 * s->cap_req : 64;
        request *r = realloc(s->req, (size_t)cap * sizeof *r);
        if (!r) return lq_fail(LQ_ERR_NOMEM, "scheduler: out of memory for %d requests", cap);
        s->req = r;
        s->cap_req = cap;
    }
    request *r = &s->req[s->n_req];
    *r = (request){.n_prompt = n_prompt, .max_new = max_new, .seq = -1, .pages = pages, .state = REQ_WAITING};
    if (!(r->prompt = malloc((size_t)n_prompt * sizeof *r->prompt)))
        return lq_fail(LQ_ERR_NOMEM, "scheduler: out of memory for a prompt of %d tokens", n_prompt);
    memcpy(r->prompt, prompt, (size_t)n_prompt * sizeof *r->prompt);
    *req = s->n_req++;
    return LQ_OK;
}

bool lq_sched_idle(const lq_sched *s) { return s->n_run == 0 && s->first_waiting == s->n_req; }
int lq_sched_waiting(const lq_sched *s) { return s->n_req - s->first_waiting; }
int lq_sched_running(const lq_sched *s) { return s->n_run; }

static void add_item(lq_sched *s, int *ni, int r, const int32_t *tok, int n, lq_batch_logits lg) {
    s->items[*ni] = (lq_batch_item){.seq = s->req[r].seq, .tokens = tok, .n = n, .logits = lg};
    s->item_req[*ni] = r;
    (*ni)++;
}

/* A prompt chunk of at most `room` tokens for request r. */
static int add_prefill(lq_sched *s, int *ni, int r, int room) {
    request *q = &s->req[r];
    int n = q->n_prompt - q->n_fed;
    if (n > s->o.prefill_chunk) n = s->o.prefill_chunk;
    if (n > room) n = room;
    if (n <= 0) return 0;
    add_item(s, ni, r, q->prompt + q->n_fed, n, q->n_fed + n == q->n_prompt ? LQ_BATCH_LOGITS_LAST : LQ_BATCH_LOGITS_NONE);
    return n;
}

/* Fill this step's items within the budget (the order of lq_sched.h). */
static lq_status plan(lq_sched *s, int *ni, int *rows) {
    int budget = s->o.token_budget;
    *ni = 0;
    /* 1. decode: every decoding request one token (max_seqs <= token_budget: they all fit) */
    for (int k = 0; k < s->n_run; k++) {
        const int r = s->run[k];
        if (s->req[r].state != REQ_DECODE) continue;
        add_item(s, ni, r, &s->req[r].next, 1, LQ_BATCH_LOGITS_LAST);
        budget--;
    }
    /* 2. prompt chunks of running requests, oldest first */
    for (int k = 0; k < s->n_run && budget > 0; k++)
        if (s->req[s->run[k]].state == REQ_PREFILL) budget -= add_prefill(s, ni, s->run[k], budget);
    /* 3. admission, first come first served: the oldest waiting request or nobody */
    while (budget > 0 && s->n_run < s->o.max_seqs && s->first_waiting < s->n_req) {
        const int r = s->first_waiting;
        request *q = &s->req[r];
        if (s->reserved + q->pages > s->max_pages) break;
        LQ_TRY(lq_batch_seq_open(s->b, &q->seq));
        q->state = REQ_PREFILL;
        s->reserved += q->pages;
        s->run[s->n_run++] = r;
        s->first_waiting++;
        budget -= add_prefill(s, ni, r, budget);
    }
    *rows = s->o.token_budget - budget;
    return LQ_OK;
}

static int32_t argmax(const float *x, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static bool is_stop(const lq_sched *s, int32_t t) {
    for (int i = 0; i < s->o.n_stop; i++)
        if (s->o.stop_ids[i] == t) return true;
    return false;
}

static void finish(lq_sched *s, int r) {
    request *q = &s->req[r];
    lq_batch_seq_close(s->b, q->seq);
    q->state = REQ_DONE;
    s->reserved -= q->pages;
    int k = 0;
    while (s->run[k] != r) k++;
    memmove(s->run + k, s->run + k + 1, (size_t)(s->n_run - k - 1) * sizeof *s->run);
    s->n_run--;
}

lq_status lq_sched_step(lq_sched *s, lq_sched_event *ev, int *n_ev, int *rows) {
    *n_ev = 0;
    int ni, nr;
    LQ_TRY(plan(s, &ni, &nr));
    if (rows) *rows = nr;
    if (ni == 0) return LQ_OK;
    LQ_TRY(lq_batch_forward(s->b, s->items, ni, s->logits));
    const float *lg = s->logits;
    for (int i = 0; i < ni; i++) {
        const int r = s->item_req[i];
        request *q = &s->req[r];
        if (q->state == REQ_PREFILL) {
            q->n_fed += s->items[i].n;
            if (q->n_fed < q->n_prompt) continue; /* a middle chunk: no logits */
            q->state = REQ_DECODE;
            free(q->prompt);
            q->prompt = NULL;
        }
        const int32_t t = s->o.pick ? s->o.pick(s->o.pick_user, r, lg, s->vocab) : argmax(lg, s->vocab);
        lg += s->vocab;
        q->next = t;
        const bool done = ++q->n_gen == q->max_new || is_stop(s, t);
        ev[(*n_ev)++] = (lq_sched_event){.req = r, .token = t, .index = q->n_gen - 1, .done = done};
    }
    for (int i = 0; i < *n_ev; i++)
        if (ev[i].done) finish(s, ev[i].req);
    return LQ_OK;
}
