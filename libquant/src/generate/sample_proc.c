/* sample_proc.c - the logit processors: repetition penalty, temperature, top-k, top-p, min-p,
 * softmax and the draw. Each works on an lq_candidates list in place; the order they run in is
 * the sampler's business (sample_sampler.c). */
#include "libquant/lq_sample.h"

#include <math.h>
#include <stdlib.h>

void lq_candidates_init(lq_candidates *c, const float *logits, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        c->data[i].id = (int32_t)i;
        c->data[i].logit = logits[i];
        c->data[i].p = 0;
    }
    c->n = n;
    c->sorted = false;
}

/* ---- repetition penalty ----------------------------------------------------------------------- */

static lq_candidate *find_id(lq_candidates *c, int32_t id) {
    /* Fresh lists hold id i at index i (the penalty runs first, so this is the usual case). */
    if (id >= 0 && id < c->n && c->data[id].id == id) return &c->data[id];
    for (int64_t i = 0; i < c->n; i++)
        if (c->data[i].id == id) return &c->data[i];
    return NULL;
}

void lq_sample_repetition_penalty(lq_candidates *c, const int32_t *recent, int64_t n_recent,
                                  float penalty) {
    if (penalty == 1.0f || n_recent <= 0) return;
    for (int64_t i = 0; i < n_recent; i++) {
        /* once per distinct id: skip ids seen earlier in the window. Quadratic, but the window
         * is short (64 by default) and this allocates nothing. */
        bool seen = false;
        for (int64_t j = 0; j < i && !seen; j++) seen = recent[j] == recent[i];
        if (seen) continue;
        lq_candidate *t = find_id(c, recent[i]);
        if (!t) continue;
        /* CTRL: dividing a negative logit would raise it, so negative ones are multiplied */
        if (t->logit > 0) t->logit /= penalty;
        else t->logit *= penalty;
    }
}

/* ---- temperature ------------------------------------------------------------------------------ */

void lq_sample_temperature(lq_candidates *c, float t) {
    for (int64_t i = 0; i < c->n; i++) c->data[i].logit /= t;
}

/* ---- ordering --------------------------------------------------------------------------------- */

/* Whether a ranks before b: larger logit first, then lower id. A total order (ids are distinct),
 * so sorting and selection give the same set on every machine and with every qsort. */
static bool ranks_before(const lq_candidate *a, const lq_candidate *b) {
    if (a->logit != b->logit) return a->logit > b->logit;
    return a->id < b->id;
}

static int cmp_rank(const void *pa, const void *pb) {
    const lq_candidate *a = pa, *b = pb;
    return ranks_before(a, b) ? -1 : ranks_before(b, a) ? 1 : 0;
}

static void sort_all(lq_candidates *c) {
    if (c->sorted) return;
    qsort(c->data, (size_t)c->n, sizeof *c->data, cmp_rank);
    c->sorted = true;
}

/* Heap of the k best seen so far, rooted at the worst of them (so it is the one replaced). */
static void sift_down(lq_candidate *h, int64_t k, int64_t i) {
    for (;;) {
        int64_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < k && ranks_before(&h[w], &h[l])) w = l;
        if (r < k && ranks_before(&h[w], &h[r])) w = r;
        if (w == i) return;
        lq_candidate t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

/* ---- truncation ------------------------------------------------------------------------------- */

/* Arrange data[0..k) to be the k best, sorted; the others stay in data[k..n) in some order (the
 * list is still a permutation, so a bigger k can be selected later). O(n log k) heap selection:
 * a 32k vocabulary with k = 40 costs a fraction of a full sort. */
static void select_top(lq_candidates *c, int64_t k) {
    lq_candidate *h = c->data;
    for (int64_t i = k / 2 - 1; i >= 0; i--) sift_down(h, k, i);
    for (int64_t i = k; i < c->n; i++) {
        if (ranks_before(&c->data[i], &h[0])) {
            lq_candidate t = h[0];
            h[0] = c->data[i];
            c->data[i] = t;
            sift_down(h, k, 0);
        }
    }
    qsort(h, (size_t)k, sizeof *h, cmp_rank);
}

void lq_sample_top_k(lq_candidates *c, int64_t k) {
    if (k <= 0) return;
    if (k >= c->n) {
        sort_all(c);
        return;
    }
    if (!c->sorted) select_top(c, k);
    c->sorted = true;
    c->n = k;
}

void lq_sample_softmax(lq_candidates *c) {
    if (c->n <= 0) return;
    double mx = -INFINITY;
    for (int64_t i = 0; i < c->n; i++)
        if (c->data[i].logit > mx) mx = c->data[i].logit;
    if (mx == -INFINITY) { /* every candidate masked: nothing to prefer */
        for (int64_t i = 0; i < c->n; i++) c->data[i].p = 1.0 / (double)c->n;
        return;
    }
    double sum = 0;
    for (int64_t i = 0; i < c->n; i++) {
        c->data[i].p = exp((double)c->data[i].logit - mx);
        sum += c->data[i].p;
    }
    for (int64_t i = 0; i < c->n; i++) c->data[i].p /= sum;
}

/* Index + 1 of the first prefix of the ranked data[0..m) whose mass reaches p, or 0. */
static int64_t nucleus_cut(const lq_candidates *c, int64_t m, double p) {
    double cum = 0;
    for (int64_t i = 0; i < m; i++) {
        cum += c->data[i].p;
        if (cum >= p) return i + 1; /* the first prefix that reaches p: the smallest such set */
    }
    return 0;
}

void lq_sample_top_p(lq_candidates *c, double p) {
    if (p >= 1.0 || c->n <= 1) return;
    /* probabilities over all current candidates; they travel with the entries when reordered */
    lq_sample_softmax(c);
    if (!c->sorted) {
        /* The nucleus is usually a small head of the list: select growing heads instead of
         * sorting a whole vocabulary. Same ranking, same sums, so the same cut as a full sort. */
        for (int64_t k = 256; k < c->n / 2; k *= 4) {
            select_top(c, k);
            int64_t cut = nucleus_cut(c, k, p);
            if (cut > 0) {
                c->sorted = true;
                c->n = cut;
                return;
            }
        }
        sort_all(c);
    }
    int64_t cut = nucleus_cut(c, c->n, p);
    if (cut > 0) c->n = cut; /* 0: rounding left the total just below p; keep everything */
}

void lq_sample_min_p(lq_candidates *c, double min_p) {
    if (min_p <= 0 || c->n <= 1) return;
    double mx = -INFINITY;
    for (int64_t i = 0; i < c->n; i++)
        if (c->data[i].logit > mx) mx = c->data[i].logit;
    if (mx == -INFINITY) return;
    /* p_i / p_max = exp(l_i - l_max): the softmax denominator cancels. Filter first, then sort
     * only the survivors (the threshold does not depend on order). */
    int64_t keep = 0;
    for (int64_t i = 0; i < c->n; i++)
        if (exp((double)c->data[i].logit - mx) >= min_p) c->data[keep++] = c->data[i];
    c->n = keep; /* >= 1: the max itself passes (exp(0) = 1 >= min_p) */
    sort_all(c); /* compaction kept the order: a sorted list stays sorted */
}

/* ---- draw ------------------------------------------------------------------------------------- */

int64_t lq_sample_draw(const lq_candidates *c, lq_rng *r) {
    double total = 0;
    for (int64_t i = 0; i < c->n; i++) total += c->data[i].p;
    double u = lq_rng_uniform(r) * total;
    double cum = 0;
    int64_t last = 0;
    for (int64_t i = 0; i < c->n; i++) {
        if (c->data[i].p <= 0) continue; /* a zero-probability token is never drawn */
        cum += c->data[i].p;
        last = i;
        if (cum > u) return i;
    }
    return last; /* u landed on the rounding slack at the very top */
}
