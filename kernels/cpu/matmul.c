/* matmul.c - Y = X W^T for any weight format (lq_ops.h lq_matmul / lq_matmul_ref).
 *
 * n == 1 (decode): memory bound. The format's matvec runs over row blocks, several blocks per
 * thread so a thread that starts late (or shares its core) does not leave the rest idle; block
 * sizes are multiples of 16 rows so each block fills whole 4-row groups of the AVX2 kernel and
 * writes whole 64-byte lines of y (no false sharing between threads).
 * n > 1 (prefill): compute bound. Each task takes a tile of rows of W, dequantizes it into the
 * thread's scratch (F32 is used in place) and multiplies with sgemm: Y[:, tile] = X . tile^T.
 * OpenBLAS is pinned to one thread because the pool already uses every core. A format with a
 * matmul_tile (W8A8) computes its tiles itself, because dequantize + sgemm would skip its
 * activation quantization.
 * 1 < n <= LQ_GEMM_SMALL_MAX (a batched decode step) on f32 activations: row blocks as for decode,
 * each multiplied by every token by the row's gemm straight from the mapping (the float formats),
 * or dequantized 8 rows at a time into L1 and multiplied by the f32 gemm (the others); sgemm would
 * copy each tile into its packed layout as well, which cost more than the product at these n.
 * Integer activations (a row with lq_wfmt_traits.act, unless LQ_ACT_MODE_F32): the caller
 * quantizes X once into the row's int8 blocks (in a buffer of the calling thread), then every
 * task runs the format's matvec_q on it; prefill tiles are sized by packed bytes and loop over the
 * tokens, so a tile of W stays in cache while every token meets it (llama.cpp's mul_mat order);
 * a row with gemm_q (lq_format.h) takes the tile's tokens itself, several per weight unpack.
 * Several weights over one input (q/k/v, gate/up: lq_matmul_multi): each weight is planned
 * exactly as lq_matmul plans it alone (same task function, same row blocks), and the tasks of all
 * of them go to ONE pool run after ONE activation quantization. A decode step of a small model is
 * a few hundred short matmuls, so each run's publish / join and each quantization is a visible
 * share of the token (docs/PERFORMANCE.md, "Per-token overheads"); the results are those of
 * lq_matmul bit for bit, because the same kernel calls compute the same rows.
 */
#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "lq_ops.h"
#ifdef LQ_HAVE_OPENBLAS
#include <cblas.h>
#endif

#define MM_ROW_ALIGN 16                /* rows per block are a multiple of this */
#define MM_TASKS_PER_THREAD 8          /* matvec blocks per thread, for load balance */
#define MM_TILE_BYTES (256 * 1024)     /* dequantized W tile: stays in L2 during its sgemm */
#define MM_F32_TILES 4                 /* f32 prefill: at least this many tiles (any thread count) */
/* Below this many multiply-adds a matmul takes a few microseconds on one core, about what waking
 * and joining the other threads costs, so it stays on the caller (tiny models, small heads). */
#define MM_MIN_PARALLEL_MACS (64 * 1024)

/* One weight's share of a pool run: what each of its tasks does (fn) over which rows (block). */
typedef struct mm_ctx {
    const lq_weight *w;
    const lq_wfmt_traits *t;
    lq_pool *pool;     /* the pool the tasks run on (its per-thread scratch), maybe NULL */
    const float *X;    /* (n, cols) */
    float *Y;          /* (n, rows) */
    int64_t n;
    int64_t block;     /* rows per task */
    const uint8_t *Xq; /* integer path: n rows of quantized activations, xq_bytes each; else NULL */
    size_t xq_bytes;
    lq_task_fn fn;     /* matvec_task, matvec_q_task, gemm_small(_dq)_task, gemm_task or gemm_q_task */
    int64_t n_tasks;
} mm_ctx;

static int64_t round_up(int64_t v, int64_t a) { return (v + a - 1) / a * a; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* ---- integer activations -------------------------------------------------------------------- */

static atomic_int g_act_mode = -1; /* -1: not read from the environment yet */

lq_act_mode lq_matmul_act_mode(void) {
    int m = atomic_load_explicit(&g_act_mode, memory_order_relaxed);
    if (m < 0) {
        const char *e = getenv("LQ_F32_ACT");
        const char *all = getenv("LQ_INT_ACT");
        m = (e && *e && strcmp(e, "0") != 0)   ? LQ_ACT_MODE_F32
            : (all && strcmp(all, "all") == 0) ? LQ_ACT_MODE_ALL
                                               : LQ_ACT_MODE_AUTO;
        int expect = -1;
        atomic_compare_exchange_strong(&g_act_mode, &expect, m);
        m = atomic_load(&g_act_mode);
    }
    return (lq_act_mode)m;
}

void lq_matmul_set_act_mode(lq_act_mode m) { atomic_store(&g_act_mode, (int)m); }

int lq_matmul_uses_int_act(const lq_weight *w) {
    const lq_wfmt_traits *t = w ? lq_wfmt_get(w->fmt) : NULL;
    if (!t || t->act == LQ_ACT_NONE || !t->matvec_q || lq_act_row_bytes(t->act, w->cols) == 0) return 0;
    const lq_act_mode m = lq_matmul_act_mode();
    return m == LQ_ACT_MODE_ALL || (m == LQ_ACT_MODE_AUTO && !t->act_opt_in);
}

/* The integer path for this call: the row's path, unless it serves decode only and n > 1. */
static int int_act_for(const lq_weight *w, int64_t n) {
    return lq_matmul_uses_int_act(w) && !(n > 1 && lq_wfmt_get(w->fmt)->act_decode_only);
}

/* The quantized activations live in a buffer of the calling thread (workers only read it while
 * the caller waits in lq_pool_run), freed when that thread exits. */
static pthread_key_t g_xq_key;
static pthread_once_t g_xq_once = PTHREAD_ONCE_INIT;
typedef struct xq_buf { void *p; size_t cap; } xq_buf;
static void xq_free(void *v) {
    xq_buf *b = v;
    free(b->p);
    free(b);
}
static void xq_key_init(void) { pthread_key_create(&g_xq_key, xq_free); }

static void *xq_buffer(size_t bytes) {
    pthread_once(&g_xq_once, xq_key_init);
    xq_buf *b = pthread_getspecific(g_xq_key);
    if (!b) {
        b = calloc(1, sizeof *b);
        if (!b || pthread_setspecific(g_xq_key, b) != 0) {
            free(b);
            return NULL;
        }
    }
    if (b->cap < bytes) {
        void *np = malloc(bytes);
        if (!np) return NULL;
        free(b->p);
        b->p = np;
        b->cap = bytes;
    }
    return b->p;
}

typedef struct xq_ctx {
    lq_act_quantize_fn quantize;
    const float *X;
    int64_t cols, per_task, n;
    uint8_t *Xq;
    size_t xq_bytes;
} xq_ctx;

static void xq_task(void *vctx, int64_t task, int tid) {
    (void)tid;
    const xq_ctx *c = vctx;
    for (int64_t t = task * c->per_task; t < c->n && t < (task + 1) * c->per_task; t++)
        c->quantize(c->X + (size_t)t * (size_t)c->cols, c->cols, c->Xq + (size_t)t * c->xq_bytes);
}

static void matvec_q_task(void *vctx, int64_t task, int tid) {
    (void)tid;
    const mm_ctx *c = vctx;
    const int64_t r0 = task * c->block, r1 = min64(c->w->rows, r0 + c->block);
    c->t->matvec_q(c->w, c->Xq, c->Y + r0, r0, r1);
}

static void gemm_q_task(void *vctx, int64_t task, int tid) {
    (void)tid;
    const mm_ctx *c = vctx;
    const int64_t rows = c->w->rows, r0 = task * c->block, r1 = min64(rows, r0 + c->block);
    if (c->t->gemm_q) { /* the format's multi-token tile: each weight block unpacked once per few tokens */
        c->t->gemm_q(c->w, c->Xq, c->xq_bytes, c->n, c->Y + r0, rows, r0, r1);
        return;
    }
    for (int64_t t = 0; t < c->n; t++)
        c->t->matvec_q(c->w, c->Xq + (size_t)t * c->xq_bytes, c->Y + (size_t)t * (size_t)rows + r0, r0, r1);
}

/* The integer path's prologue: X quantized once into the act format's blocks, in a buffer of the
 * calling thread. NULL when that buffer cannot be had: the caller then takes the f32 path, still
 * a right answer. */
static const uint8_t *quantize_x(lq_pool *pool, lq_act_fmt act, const float *X, int64_t n, int64_t cols,
                                 size_t *xq_bytes) {
    const lq_act_traits *a = lq_act_get(act);
    const size_t xrb = lq_act_row_bytes(act, cols);
    uint8_t *Xq = xq_buffer(xrb * (size_t)n);
    if (!Xq) return NULL;
    const int nth = lq_pool_size(pool);
    xq_ctx q = {.quantize = a->quantize, .X = X, .cols = cols, .n = n, .Xq = Xq, .xq_bytes = xrb};
    q.per_task = (n + 2 * nth - 1) / (2 * nth);
    if (n < 8) q.per_task = n; /* a few rows: cheaper than waking the pool */
    lq_pool_run(n < 8 ? NULL : pool, xq_task, &q, (n + q.per_task - 1) / q.per_task);
    *xq_bytes = xrb;
    return Xq;
}

static void matvec_task(void *vctx, int64_t task, int tid) {
    (void)tid;
    const mm_ctx *c = vctx;
    const int64_t r0 = task * c->block, r1 = min64(c->w->rows, r0 + c->block);
    c->t->matvec(c->w, c->X, c->Y + r0, r0, r1);
}

static void gemm_small_task(void *vctx, int64_t task, int tid) {
    (void)tid;
    const mm_ctx *c = vctx;
    const int64_t rows = c->w->rows, r0 = task * c->block, r1 = min64(rows, r0 + c->block);
    c->t->gemm(c->w, c->X, c->n, c->Y + r0, rows, r0, r1);
}

/* A format without its own gemm (W8A16, W4A16, FP8 ... on f32 activations): MM_DQ_ROWS rows at a
 * time dequantized into the thread's scratch (L1-sized), then the f32 row's gemm on them. The
 * copy is the dequantization the sgemm path makes anyway, without sgemm's own packing copy; each
 * element is still one chain over the dequantized row, the same in any tiling. */
#define MM_DQ_ROWS 8
static void gemm_small_dq_task(void *vctx, int64_t task, int tid) {
    const mm_ctx *c = vctx;
    const lq_weight *w = c->w;
    const int64_t rows = w->rows, cols = w->cols, r0 = task * c->block, r1 = min64(rows, r0 + c->block);
    float *tile = lq_pool_scratch(c->pool, tid, (size_t)MM_DQ_ROWS * (size_t)cols * sizeof(float));
    const lq_wfmt_traits *f32 = lq_wfmt_get(LQ_WFMT_F32);
    for (int64_t r = r0; r < r1; r += MM_DQ_ROWS) {
        const int64_t nr = min64(MM_DQ_ROWS, r1 - r);
        if (!tile) { /* no memory for the rows: still the right answer, one matvec per token */
            for (int64_t t = 0; t < c->n; t++)
                c->t->matvec(w, c->X + (size_t)t * (size_t)cols, c->Y + (size_t)t * (size_t)rows + r, r, r + nr);
            continue;
        }
        c->t->dequant(w, r, r + nr, tile);
        const lq_weight dq = {.fmt = LQ_WFMT_F32, .rows = nr, .cols = cols, .data = tile,
                              .row_bytes = (size_t)cols * sizeof(float)};
        f32->gemm(&dq, c->X, c->n, c->Y + r, rows, 0, nr);
    }
}

/* The largest n that takes a row's gemm: LQ_GEMM_SMALL_MAX, or LQ_GEMM_SMALL from the environment
 * (0 turns the path off: the A/B of docs/PERFORMANCE.md). */
static int64_t gemm_small_max(void) {
    static atomic_int cached = -1;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v < 0) {
        const char *e = getenv("LQ_GEMM_SMALL");
        v = e && *e ? atoi(e) : LQ_GEMM_SMALL_MAX;
        if (v < 0) v = 0;
        atomic_store(&cached, v);
    }
    return v;
}

#ifdef LQ_HAVE_OPENBLAS
static pthread_once_t g_blas_once = PTHREAD_ONCE_INIT;
static void blas_single_thread(void) { openblas_set_num_threads(1); }
#endif

/* Y[t][r0 .. r0+nr) for every t, from the f32 tile B (nr rows, leading dimension ldb). */
static void tile_product(const mm_ctx *c, const float *B, int64_t ldb, int64_t r0, int64_t nr) {
    const int64_t rows = c->w->rows, cols = c->w->cols;
#ifdef LQ_HAVE_OPENBLAS
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)c->n, (int)nr, (int)cols, 1.0f,
                c->X, (int)cols, B, (int)ldb, 0.0f, c->Y + r0, (int)rows);
#else
    /* Blocked loop: the tile is an F32 matrix; its matvec shares each x load over 4 rows. */
    const lq_weight tile = {.fmt = LQ_WFMT_F32, .rows = nr, .cols = cols, .data = B,
                            .row_bytes = (size_t)ldb * sizeof(float)};
    const lq_wfmt_traits *f32 = lq_wfmt_get(LQ_WFMT_F32);
    for (int64_t t = 0; t < c->n; t++)
        f32->matvec(&tile, c->X + (size_t)t * (size_t)cols, c->Y + (size_t)t * (size_t)rows + r0, 0, nr);
#endif
}

static void gemm_task(void *vctx, int64_t task, int tid) {
    const mm_ctx *c = vctx;
    const lq_weight *w = c->w;
    const int64_t rows = w->rows, cols = w->cols;
    const int64_t r0 = task * c->block, nr = min64(rows, r0 + c->block) - r0;
    if (c->t->matmul_tile) {
        /* The format's product is not that of its dequantized weights (W8A8 quantizes the
         * activations): its own tile keeps prefill identical to decode. */
        c->t->matmul_tile(w, c->X, c->n, c->Y, r0, r0 + nr);
        return;
    }
    if (w->fmt == LQ_WFMT_F32 && w->row_bytes % sizeof(float) == 0) {
        /* Already f32 in memory: multiply the mapping directly, no copy. */
        tile_product(c, (const float *)((const char *)w->data + (size_t)r0 * w->row_bytes),
                     (int64_t)(w->row_bytes / sizeof(float)), r0, nr);
        return;
    }
    float *tile = lq_pool_scratch(c->pool, tid, (size_t)nr * (size_t)cols * sizeof(float));
    if (!tile) {
        /* No memory for the tile: still produce the right answer, one matvec per token. */
        for (int64_t t = 0; t < c->n; t++)
            c->t->matvec(w, c->X + (size_t)t * (size_t)cols, c->Y + (size_t)t * (size_t)rows + r0,
                         r0, r0 + nr);
        return;
    }
    c->t->dequant(w, r0, r0 + nr, tile);
    tile_product(c, tile, cols, r0, nr);
}

/* Debug builds (CMAKE_BUILD_TYPE=Debug, the ASan + UBSan CI run) also stop at a payload the
 * shape does not fit, a group size the format refuses or missing buffers, instead of reading past
 * the payload; release builds (NDEBUG) compile these away. The engine validates checkpoints
 * before it builds an lq_weight, so none of these can come from a bad file. */
static void debug_layout(const lq_weight *w, const float *X, int64_t n, const float *Y) {
    (void)w, (void)X, (void)n, (void)Y;
    assert(w->data && "lq_matmul: weight has no payload");
    assert((n == 0 || (X && Y)) && "lq_matmul: X or Y is NULL");
#ifndef NDEBUG
    size_t rb = 0;
    int ok = lq_wfmt_sizes(w->fmt, w->rows, w->cols, &(lq_quant_params){.group_size = w->group_size},
                           &rb, NULL, NULL);
    assert(ok && "lq_matmul: the format cannot hold this shape / group size");
    assert(w->row_bytes >= rb && "lq_matmul: row_bytes smaller than one packed row");
#endif
}

/* The entry checks of lq_matmul / lq_matmul_ref. */
static lq_kstatus check_entry(const lq_weight *w, const float *X, int64_t n, const float *Y,
                              const lq_wfmt_traits **t) {
    assert(w && n >= 0 && w->rows > 0 && w->cols > 0 && "lq_matmul: bad shape");
    if (!w || n < 0 || w->rows <= 0 || w->cols <= 0) return LQ_KERNEL_BAD_SHAPE;
    *t = lq_wfmt_get(w->fmt);
    assert(*t && "lq_matmul: weight format without a traits row");
    if (!*t) return LQ_KERNEL_BAD_FORMAT;
    debug_layout(w, X, n, Y);
    return LQ_KERNEL_OK;
}

/* Rows per decode task: several blocks per thread (load balance), multiples of MM_ROW_ALIGN. */
static int64_t matvec_block(int64_t rows, int nth) {
    if (nth == 1) return rows; /* one task: the caller runs the whole matvec, no pool run */
    return max64(MM_ROW_ALIGN, round_up((rows + nth * MM_TASKS_PER_THREAD - 1) / (nth * MM_TASKS_PER_THREAD),
                                        MM_ROW_ALIGN));
}

/* Plan c's tasks as if it ran alone on nth threads (the weight's own thread count: a small
 * weight plans for one even inside a fused run, so its row blocks never change). c->Xq set: the
 * integer path. Prefill tiles hold MM_TILE_BYTES of W (packed on the integer path, dequantized
 * f32 otherwise), at least 2 per thread on the integer path and MM_F32_TILES on the f32 one. */
static void plan(mm_ctx *c, int nth) {
    const lq_weight *w = c->w;
    const int64_t rows = w->rows;
    if (c->n == 1) {
        c->block = matvec_block(rows, nth);
        c->fn = c->Xq ? matvec_q_task : matvec_task;
    } else if (!c->Xq && !c->t->matmul_tile && lq_wfmt_get(LQ_WFMT_F32)->gemm && c->n <= gemm_small_max()) {
        c->block = matvec_block(rows, nth); /* even: gemm's row pairs never straddle two tasks */
        c->fn = c->t->gemm ? gemm_small_task : gemm_small_dq_task;
    } else {
        /* the integer paths and a format's own tile (W8A8) read the packed rows; sgemm a f32 copy */
        const bool packed = c->Xq || c->t->matmul_tile;
        const int64_t tile_row = packed ? (int64_t)w->row_bytes : w->cols * (int64_t)sizeof(float);
        const int64_t by_cache = MM_TILE_BYTES / max64(tile_row, 1);
        /* Our integer kernels compute a row the same way in any tile, but sgemm does not: OpenBLAS
         * 0.3.21's Haswell/Zen kernels give an output element different bits for different call
         * shapes (docs/PERFORMANCE.md), so the f32 path's tiles depend on the shape alone, never on
         * the thread count, and a prefill writes the same bytes on 1 or 16 threads. */
        const int split = packed ? 2 * nth : MM_F32_TILES;
        const int64_t by_balance = (rows + split - 1) / split;
        c->block = max64(MM_ROW_ALIGN, round_up(min64(by_cache, by_balance), MM_ROW_ALIGN));
        c->fn = c->Xq ? gemm_q_task : gemm_task;
#ifdef LQ_HAVE_OPENBLAS
        if (!c->Xq) pthread_once(&g_blas_once, blas_single_thread);
#endif
    }
    c->n_tasks = (rows + c->block - 1) / c->block;
}

/* The pool a weight's matmul runs on alone: none below MM_MIN_PARALLEL_MACS. */
static lq_pool *pool_for(lq_pool *pool, const lq_weight *w, int64_t n) {
    return n * w->rows * w->cols < MM_MIN_PARALLEL_MACS ? NULL : pool;
}

lq_kstatus lq_matmul(lq_pool *pool, const lq_weight *w, const float *X, int64_t n, float *Y) {
    const lq_wfmt_traits *t = NULL;
    lq_kstatus ks = check_entry(w, X, n, Y, &t);
    if (ks != LQ_KERNEL_OK || n == 0) return ks;
    pool = pool_for(pool, w, n);
    mm_ctx c = {.w = w, .t = t, .pool = pool, .X = X, .Y = Y, .n = n};
    if (int_act_for(w, n)) c.Xq = quantize_x(pool, t->act, X, n, w->cols, &c.xq_bytes);
    plan(&c, lq_pool_size(pool));
    lq_pool_run(pool, c.fn, &c, c.n_tasks);
    return LQ_KERNEL_OK;
}

/* ---- several weights over one input ---------------------------------------------------------- */

typedef struct multi_ctx {
    mm_ctx part[LQ_MATMUL_MULTI_MAX];
    int64_t first[LQ_MATMUL_MULTI_MAX + 1]; /* part i owns tasks first[i] .. first[i+1]-1 */
    int n_parts;
} multi_ctx;

static void multi_task(void *vctx, int64_t task, int tid) {
    multi_ctx *m = vctx;
    int i = 0;
    while (task >= m->first[i + 1]) i++;
    m->part[i].fn(&m->part[i], task - m->first[i], tid);
}

/* Whether the weights can share one quantized X: all on the f32 path, or all on the integer
 * path with one act format. *act is that format (LQ_ACT_NONE: f32). */
static bool one_input_kind(const lq_weight *const *w, int nw, int64_t n, lq_act_fmt *act) {
    *act = int_act_for(w[0], n) ? lq_wfmt_get(w[0]->fmt)->act : LQ_ACT_NONE;
    for (int i = 1; i < nw; i++) {
        const lq_act_fmt a = int_act_for(w[i], n) ? lq_wfmt_get(w[i]->fmt)->act : LQ_ACT_NONE;
        if (a != *act) return false;
    }
    return true;
}

lq_kstatus lq_matmul_multi(lq_pool *pool, const lq_weight *const *w, int nw, const float *X, int64_t n,
                           float *const *Y) {
    assert(w && Y && nw >= 1 && nw <= LQ_MATMUL_MULTI_MAX && "lq_matmul_multi: 1..LQ_MATMUL_MULTI_MAX weights");
    if (!w || !Y || nw < 1 || nw > LQ_MATMUL_MULTI_MAX) return LQ_KERNEL_BAD_SHAPE;
    multi_ctx m = {.n_parts = nw};
    int64_t macs = 0;
    for (int i = 0; i < nw; i++) {
        const lq_wfmt_traits *t = NULL;
        lq_kstatus ks = check_entry(w[i], X, n, Y[i], &t);
        if (ks == LQ_KERNEL_OK && w[i]->cols != w[0]->cols) ks = LQ_KERNEL_BAD_SHAPE;
        assert(ks == LQ_KERNEL_OK && "lq_matmul_multi: every weight must take X (equal cols)");
        if (ks != LQ_KERNEL_OK) return ks;
        m.part[i] = (mm_ctx){.w = w[i], .t = t, .X = X, .Y = Y[i], .n = n};
        macs += n * w[i]->rows * w[i]->cols;
    }
    if (n == 0) return LQ_KERNEL_OK;
    lq_act_fmt act;
    if (nw == 1 || !one_input_kind(w, nw, n, &act)) {
        /* Different activation formats: no shared prologue to save. */
        for (int i = 0; i < nw; i++) lq_matmul(pool, w[i], X, n, Y[i]);
        return LQ_KERNEL_OK;
    }
    /* Small together: the caller does it all, as lq_matmul would do each one. */
    lq_pool *run = macs < MM_MIN_PARALLEL_MACS ? NULL : pool;
    const uint8_t *Xq = NULL;
    size_t xq_bytes = 0;
    if (act != LQ_ACT_NONE) Xq = quantize_x(run, act, X, n, w[0]->cols, &xq_bytes);
    m.first[0] = 0;
    for (int i = 0; i < nw; i++) {
        mm_ctx *c = &m.part[i];
        c->pool = run;
        c->Xq = Xq;
        c->xq_bytes = xq_bytes;
        plan(c, lq_pool_size(pool_for(run, w[i], n)));
        m.first[i + 1] = m.first[i] + c->n_tasks;
    }
    lq_pool_run(run, multi_task, &m, m.first[nw]);
    return LQ_KERNEL_OK;
}

lq_kstatus lq_matmul_ref(const lq_weight *w, const float *X, int64_t n, float *Y) {
    const lq_wfmt_traits *t = NULL;
    lq_kstatus ks = check_entry(w, X, n, Y, &t);
    if (ks != LQ_KERNEL_OK) return ks;
    for (int64_t i = 0; i < n; i++)
        t->matvec_ref(w, X + (size_t)i * (size_t)w->cols, Y + (size_t)i * (size_t)w->rows, 0, w->rows);
    return LQ_KERNEL_OK;
}
