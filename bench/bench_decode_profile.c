/* bench_decode_profile.c - where a decode step's time goes, op by op (issue 17 item 4).
 *
 *   bench_decode_profile MODEL [--n-gen 128] [--threads 2] [--reps 3]     (LQ_UNFUSED=1: no matmul_multi)
 *
 * Runs the bench protocol of quant-eval --bench / llama-bench tg (single-token decodes from an
 * empty context) with the session's op table swapped for a timing wrapper: each op's wall time is
 * summed per token, matmuls split by the role of their weight, and "program" is the rest of
 * lq_forward (checks, buffer setup, calls between ops). It prints the median over all tokens of
 * each bucket in microseconds per token. Then, for the overhead that no op shows by itself, it
 * times (a) an lq_pool_run of empty tasks (the publish / wake / join cost that every parallel
 * matmul pays) and (b) each weight's activation quantization (the integer path's per-matmul
 * prologue) in isolation.
 *
 * Not a test: run by hand, numbers go to docs/PERFORMANCE.md with the machine's load
 * (`cut -d' ' -f1 /proc/loadavg`): on a shared machine every bucket grows with preemption.
 * Uses the library's internal session (session_internal.h) to reach the op table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libquant/lq_model.h"
#include "lq_format.h"
#include "lq_ops.h"
#include "lq_pool.h"
#include "session_internal.h"
#include "bench_util.h"

enum {
    B_QKV, B_O, B_GATE_UP, B_DOWN, B_HEAD, B_MATMUL_OTHER, B_RMSNORM, B_ROPE, B_ATTN, B_GLU, B_ADD,
    B_EMBED, B_OTHER_OPS, B_PROGRAM, B_COUNT
};
static const char *const g_bucket_name[B_COUNT] = {
    "matmul q/k/v", "matmul o", "matmul gate/up", "matmul down", "matmul head", "matmul other",
    "rmsnorm", "rope", "attention", "glu", "add", "embed", "other ops", "program (rest)"};

static const lq_backend_ops *g_inner; /* the real table */
static const lq_session *g_sess;
static double g_acc[B_COUNT];         /* seconds of the current token */
static int64_t g_runs;                /* parallel-capable matmul + attention calls, this token */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The bucket of a weight handle: its role in the layer that holds it. A linear scan is fine:
 * the lookup happens outside the timed interval. */
static int matmul_bucket(const void *w) {
    const lq_backend_model *bm = g_sess->bm;
    if (w == bm->output) return B_HEAD;
    for (int l = 0; l < bm->n_layers; l++) {
        void *const *ws = bm->layers[l].w;
        if (w == ws[LQ_ROLE_Q] || w == ws[LQ_ROLE_K] || w == ws[LQ_ROLE_V]) return B_QKV;
        if (w == ws[LQ_ROLE_O]) return B_O;
        if (w == ws[LQ_ROLE_GATE] || w == ws[LQ_ROLE_UP]) return B_GATE_UP;
        if (w == ws[LQ_ROLE_DOWN]) return B_DOWN;
    }
    return B_MATMUL_OTHER;
}

#define TIMED(bucket, call)                   \
    do {                                      \
        double t0_ = now();                   \
        lq_status st_ = (call);               \
        g_acc[bucket] += now() - t0_;         \
        return st_;                           \
    } while (0)

static lq_status t_matmul(void *ctx, const void *w, const float *X, int64_t n, float *Y) {
    const int b = matmul_bucket(w);
    g_runs++;
    TIMED(b, g_inner->matmul(ctx, w, X, n, Y));
}
static lq_status t_matmul_multi(void *ctx, void *const *w, int nw, const float *X, int64_t n, float *const *Y) {
    const int b = matmul_bucket(w[0]); /* q/k/v or gate/up: the group has one bucket */
    g_runs++;
    TIMED(b, g_inner->matmul_multi(ctx, w, nw, X, n, Y));
}
static lq_status t_rmsnorm(void *ctx, float *out, const float *x, const float *w, int64_t rows, int64_t dim,
                           float eps) {
    TIMED(B_RMSNORM, g_inner->rmsnorm(ctx, out, x, w, rows, dim, eps));
}
static lq_status t_rope(void *ctx, float *x, int n_tok, int64_t stride, int n_heads, int hd, int pos0,
                        const float *inv_freq, bool interleaved) {
    TIMED(B_ROPE, g_inner->rope(ctx, x, n_tok, stride, n_heads, hd, pos0, inv_freq, interleaved));
}
static lq_status t_attention(void *ctx, const lq_attn_args *a) {
    g_runs++;
    TIMED(B_ATTN, g_inner->attention(ctx, a));
}
static lq_status t_glu(void *ctx, lq_act act, float *gate, const float *up, int64_t n) {
    TIMED(B_GLU, g_inner->glu(ctx, act, gate, up, n));
}
static lq_status t_add(void *ctx, float *x, const float *y, int64_t n) {
    TIMED(B_ADD, g_inner->add(ctx, x, y, n));
}
static lq_status t_add_bias(void *ctx, float *y, const float *b, int64_t rows, int64_t cols) {
    TIMED(B_ADD, g_inner->add_bias(ctx, y, b, rows, cols));
}
static lq_status t_embed(void *ctx, const void *w, const int32_t *ids, int n, float *x) {
    TIMED(B_EMBED, g_inner->embed(ctx, w, ids, n, x));
}
static lq_status t_upload(void *ctx, void *dst, const void *src, size_t bytes) {
    TIMED(B_OTHER_OPS, g_inner->upload(ctx, dst, src, bytes));
}
static lq_status t_scale(void *ctx, float *x, float s, int64_t n) {
    TIMED(B_OTHER_OPS, g_inner->scale(ctx, x, s, n));
}


static void empty_task(void *ctx, int64_t i, int tid) { (void)ctx, (void)i, (void)tid; }

/* Median microseconds of one lq_pool_run of n empty tasks (what a parallel matmul pays on top of
 * its kernel work when the threads arrive together). */
static double pool_run_us(lq_pool *pool, int64_t n_tasks) {
    enum { N = 2001 };
    static double v[N];
    for (int i = 0; i < 200; i++) lq_pool_run(pool, empty_task, NULL, n_tasks); /* wake everyone */
    for (int i = 0; i < N; i++) {
        double t0 = now();
        lq_pool_run(pool, empty_task, NULL, n_tasks);
        v[i] = now() - t0;
    }
    return median(v, N) * 1e6;
}

/* Median microseconds to quantize one activation row for weight w (0 if it has no integer path). */
static double act_quant_us(const lq_weight *w) {
    if (!lq_matmul_uses_int_act(w)) return 0;
    const lq_act_fmt af = lq_wfmt_get(w->fmt)->act;
    const lq_act_traits *a = lq_act_get(af);
    const size_t bytes = lq_act_row_bytes(af, w->cols);
    float *x = malloc((size_t)w->cols * sizeof *x);
    void *q = malloc(bytes);
    if (!x || !q) { free(x); free(q); return 0; }
    for (int64_t i = 0; i < w->cols; i++) x[i] = (float)((i * 7919) % 997) / 997.0f - 0.5f;
    enum { N = 1001 };
    static double v[N];
    for (int i = 0; i < N; i++) {
        double t0 = now();
        for (int k = 0; k < 10; k++) a->quantize(x, w->cols, q);
        v[i] = (now() - t0) / 10;
    }
    free(x);
    free(q);
    return median(v, N) * 1e6;
}

int main(int argc, char **argv) {
    const char *path = NULL;
    int n_gen = 128, threads = 2, reps = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--n-gen") && i + 1 < argc) n_gen = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (argv[i][0] != '-' && !path) path = argv[i];
        else {
            fprintf(stderr, "usage: %s MODEL [--n-gen N] [--threads N] [--reps N]\n", argv[0]);
            return 2;
        }
    }
    if (!path || n_gen < 1 || reps < 1 || threads < 1) {
        fprintf(stderr, "usage: %s MODEL [--n-gen N] [--threads N] [--reps N]\n", argv[0]);
        return 2;
    }
    lq_model *m = NULL;
    lq_status st = lq_model_load(path, &m);
    lq_pool *pool = st == LQ_OK ? lq_pool_create(threads) : NULL;
    lq_session *s = NULL;
    if (st == LQ_OK && pool) st = lq_session_create(m, n_gen, pool, &s);
    if (st != LQ_OK || !pool) {
        fprintf(stderr, "bench_decode_profile: error: %s (%s)\n", lq_last_error(), path);
        return 1;
    }
    const lq_config *c = lq_model_config(m);
    static lq_backend_ops timed;
    g_inner = s->ops;
    g_sess = s;
    timed = *s->ops;
    timed.matmul = t_matmul, timed.rmsnorm = t_rmsnorm, timed.rope = t_rope, timed.attention = t_attention;
    timed.glu = t_glu, timed.add = t_add, timed.add_bias = t_add_bias, timed.embed = t_embed;
    timed.upload = t_upload, timed.scale = t_scale;
    if (getenv("LQ_UNFUSED")) timed.matmul_multi = NULL; /* the program then runs one matmul per role */
    else if (timed.matmul_multi) timed.matmul_multi = t_matmul_multi;
    s->ops = &timed;

    float *logits = malloc((size_t)c->vocab_size * sizeof *logits);
    const int n_tok = n_gen * reps;
    double *per[B_COUNT + 1];
    for (int b = 0; b <= B_COUNT; b++) per[b] = malloc((size_t)n_tok * sizeof(double));
    int64_t runs = 0;
    for (int i = 0; i < 4; i++) lq_forward(s, &(int32_t){1}, 1, i, logits, false); /* warm-up */
    for (int r = 0; r < reps; r++) {
        for (int i = 0; i < n_gen; i++) {
            const int32_t id = (int32_t)((i * 2654435761u) % (uint32_t)c->vocab_size);
            memset(g_acc, 0, sizeof g_acc);
            g_runs = 0;
            double t0 = now();
            st = lq_forward(s, &id, 1, i, logits, false);
            double total = now() - t0;
            if (st != LQ_OK) {
                fprintf(stderr, "bench_decode_profile: error: %s\n", lq_last_error());
                return 1;
            }
            double ops = 0;
            for (int b = 0; b < B_PROGRAM; b++) ops += g_acc[b];
            g_acc[B_PROGRAM] = total - ops;
            const int k = r * n_gen + i;
            for (int b = 0; b < B_COUNT; b++) per[b][k] = g_acc[b] * 1e6;
            per[B_COUNT][k] = total * 1e6;
            runs = g_runs;
        }
    }
    const double tot = median(per[B_COUNT], n_tok);
    printf("%s: %d threads, %d tokens x %d reps (positions 0..%d), load %s\n", path, threads, n_gen, reps,
           n_gen - 1, getenv("LOAD") ? getenv("LOAD") : "?");
    printf("%-16s %10s %7s\n", "bucket", "us/token", "share");
    double sum = 0;
    for (int b = 0; b < B_COUNT; b++) {
        double v = median(per[b], n_tok);
        sum += v;
        if (v > 0) printf("%-16s %10.1f %6.1f%%\n", g_bucket_name[b], v, 100 * v / tot);
    }
    printf("%-16s %10.1f  (sum of medians %.1f; %.1f tok/s)\n", "token (median)", tot, sum, 1e6 / tot);
    printf("matmul + attention calls per token (last): %lld\n", (long long)runs);

    /* The pieces no op shows: a pool run's own cost, and each matmul's activation quantization. */
    const int64_t rows_q = s->m->layers[0].w[LQ_ROLE_Q].rows;
    printf("lq_pool_run of empty tasks: 1 task-per-thread %.2f us, 16 tasks %.2f us (q has %lld rows)\n",
           pool_run_us(pool, threads), pool_run_us(pool, 16), (long long)rows_q);
    const lq_layer *L = &s->m->layers[0];
    const lq_role roles[] = {LQ_ROLE_Q, LQ_ROLE_K, LQ_ROLE_V, LQ_ROLE_O, LQ_ROLE_GATE, LQ_ROLE_UP, LQ_ROLE_DOWN};
    double aq = 0;
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) aq += act_quant_us(&L->w[roles[i]]);
    printf("activation quantization, one layer's 7 matmuls: %.2f us (x %d layers = %.1f us/token)\n", aq,
           c->n_layers, aq * c->n_layers);
    for (int b = 0; b <= B_COUNT; b++) free(per[b]);
    free(logits);
    s->ops = g_inner;
    lq_session_free(s);
    lq_pool_free(pool);
    lq_model_free(m);
    return 0;
}
