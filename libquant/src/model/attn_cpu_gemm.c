/* attn_cpu_gemm.c - the CPU table's causal attention for a block of query rows (prefill) as two
 * sgemm per (head, tile of query rows): S = scale * Q K^T over the keys the tile sees, a causal
 * (and window) mask with a softmax per row, then O = S V.
 *
 * Why: the per-(token, head) loop of backend_cpu.c's attn_task makes one dot product and one
 * axpy call per key, each a short AVX2 call with a horizontal sum or a load/store of the whole
 * output row; on SmolLM2's pp512 that was ~30% of the prefill's samples (perf, docs/
 * PERFORMANCE.md "Per-token overheads"). OpenBLAS's sgemm does the same arithmetic in register
 * blocks. The scores of keys a row may not see are computed and then dropped (a tile's keys
 * end at its last row), which costs at most a tile's triangle per head.
 *
 * Same definition as attn_task (softmax of q.k * scale over positions lo..p, weighted sum of v),
 * a different summation order: results agree to f32 rounding (tests/test_backend.c checks it
 * against attn_task and against a double-precision evaluation of the definition: max error
 * 3.7e-8 vs the loop's 3.6e-8 there). Decode (one row) keeps attn_task. The default for
 * prefill; LQ_ATTN_GEMM=0 at session start keeps the per-row loop.
 */
#include "attn_cpu_gemm.h"

#ifdef LQ_HAVE_OPENBLAS
#include <cblas.h>
#include <pthread.h>
#include <string.h>

#include "lq_ops.h"

#define ATTN_TILE_ROWS 32 /* query rows per task: S is 32 x span floats of the thread's scratch */

typedef struct gemm_job {
    const lq_attn_args *a;
    lq_pool *pool;
    int64_t n_tiles;   /* per head */
    float *att_scratch; /* (threads, n_ctx): the fallback's score rows */
    int n_ctx;
} gemm_job;

static pthread_once_t g_blas_once = PTHREAD_ONCE_INIT;
/* The pool already uses every core: OpenBLAS threads of its own would oversubscribe them. */
static void blas_single_thread(void) { openblas_set_num_threads(1); }

static int lo_of(const lq_attn_args *a, int p) { return a->window > 0 && p - a->window + 1 > 0 ? p - a->window + 1 : 0; }

static void gemm_task(void *arg, int64_t task, int tid) {
    const gemm_job *j = arg;
    const lq_attn_args *a = j->a;
    const int hd = a->head_dim;
    const int64_t kv_dim = (int64_t)a->n_kv_heads * hd, q_dim = (int64_t)a->n_heads * hd;
    const int h = (int)(task / j->n_tiles), t0 = (int)(task % j->n_tiles) * ATTN_TILE_ROWS;
    const int rows = a->n_tok - t0 < ATTN_TILE_ROWS ? a->n_tok - t0 : ATTN_TILE_ROWS;
    const int kvh = h / (a->n_heads / a->n_kv_heads); /* grouped-query: heads share a kv head */
    const int p0 = a->pos0 + t0, p1 = p0 + rows - 1;
    const int lo = lo_of(a, p0), span = p1 - lo + 1;
    float *S = lq_pool_scratch(j->pool, tid, (size_t)rows * (size_t)span * sizeof(float));
    const float *q = a->q + (int64_t)t0 * q_dim + (int64_t)h * hd;
    const float *k = a->kc + (int64_t)lo * kv_dim + (int64_t)kvh * hd;
    const float *v = a->vc + (int64_t)lo * kv_dim + (int64_t)kvh * hd;
    float *o = a->out + (int64_t)t0 * q_dim + (int64_t)h * hd;
    if (!S) { /* no memory for the tile: attn_task's loop, one key at a time into its score row */
        float *sc = j->att_scratch + (size_t)tid * (size_t)j->n_ctx;
        for (int r = 0; r < rows; r++) {
            const int p = p0 + r, lr = lo_of(a, p);
            float *orow = o + (int64_t)r * q_dim;
            for (int i = lr; i <= p; i++)
                sc[i - lr] = lq_dot_f32(q + (int64_t)r * q_dim, a->kc + (int64_t)i * kv_dim + (int64_t)kvh * hd, hd) *
                             a->scale;
            lq_softmax(sc, p - lr + 1);
            memset(orow, 0, (size_t)hd * sizeof(float));
            for (int i = lr; i <= p; i++) lq_axpy_f32(orow, sc[i - lr], a->vc + (int64_t)i * kv_dim + (int64_t)kvh * hd, hd);
        }
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, span, hd, a->scale, q, (int)q_dim, k, (int)kv_dim,
                0.0f, S, span);
    for (int r = 0; r < rows; r++) {
        const int p = p0 + r, first = lo_of(a, p) - lo, last = p - lo; /* the keys row r sees */
        float *srow = S + (int64_t)r * span;
        if (first > 0) memset(srow, 0, (size_t)first * sizeof(float));
        lq_softmax(srow + first, last - first + 1);
        if (last + 1 < span) memset(srow + last + 1, 0, (size_t)(span - last - 1) * sizeof(float));
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hd, span, 1.0f, S, span, v, (int)kv_dim, 0.0f, o,
                (int)q_dim);
}

bool lq_attn_gemm_available(void) { return true; }

void lq_attn_gemm(lq_pool *pool, const lq_attn_args *a, float *att_scratch, int n_ctx) {
    pthread_once(&g_blas_once, blas_single_thread);
    gemm_job j = {.a = a, .pool = pool, .n_tiles = (a->n_tok + ATTN_TILE_ROWS - 1) / ATTN_TILE_ROWS,
                  .att_scratch = att_scratch, .n_ctx = n_ctx};
    lq_pool_run(pool, gemm_task, &j, j.n_tiles * a->n_heads);
}

#else /* no BLAS: backend_cpu.c keeps its per-row loop */

bool lq_attn_gemm_available(void) { return false; }
void lq_attn_gemm(lq_pool *pool, const lq_attn_args *a, float *att_scratch, int n_ctx) {
    (void)pool, (void)a, (void)att_scratch, (void)n_ctx;
}

#endif
