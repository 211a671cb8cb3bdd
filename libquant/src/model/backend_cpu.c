/* backend_cpu.c - the CPU op table: the lq_ops.h kernels, lq_matmul's format dispatch and the
 * thread pool. The reference every other table is tested against (tests/test_cuda.c). Weights
 * and constant vectors are not copied: the handles are the model's own views. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attn_cpu_gemm.h"
#include "backend.h"
#include "lq_ops.h"

_Static_assert(LQ_FWD_MULTI_MAX <= LQ_MATMUL_MULTI_MAX, "the program's fused groups must fit lq_matmul_multi");

/* Attention of a short context in a small model is a few microseconds: not worth a thread
 * wake-up below this many multiply-adds. */
#define ATTN_MIN_PARALLEL_MACS (64 * 1024)
/* From this many query rows (prefill) attention runs as sgemm tiles (attn_cpu_gemm.c). */
#define ATTN_GEMM_MIN_ROWS 8

/* RoPE angles of one position are kept for the next call: a decode step rotates q and k of every
 * layer at the same position with the same table, 2 x n_layers calls per token. */
#define ROPE_CACHE_DIM 512

typedef struct cpu_ctx {
    lq_pool *pool; /* borrowed; NULL = single thread */
    int n_ctx;
    float *att_scratch; /* (threads, n_ctx) attention scores, one row per thread */
    const float *rope_freq; /* the inv_freq table rope_cs was made from (NULL: none yet) */
    int rope_pos, rope_hd;
    float rope_cs[ROPE_CACHE_DIM]; /* (rope_hd / 2) cos, sin pairs of rope_pos */
    /* Prefill attention as sgemm tiles (attn_cpu_gemm.c), on unless LQ_ATTN_GEMM=0 at session
     * start: as accurate as attn_task (test_backend), ~25% less prefill CPU on SmolLM2 pp512
     * (docs/PERFORMANCE.md "Prefill attention through sgemm by default"). */
    bool attn_gemm;
} cpu_ctx;

static bool cpu_supports(lq_op op) { return (int)op >= 0 && op < LQ_OP_COUNT; }

static lq_status cpu_open(void **impl) {
    *impl = NULL;
    return LQ_OK;
}
static void cpu_close(void *impl) { (void)impl; }

static lq_status cpu_upload_weight(void *impl, const lq_weight *w, const char *what, void **out) {
    (void)impl; (void)what;
    *out = (void *)w;
    return LQ_OK;
}
static void cpu_free_weight(void *impl, void *w) { (void)impl; (void)w; }

static lq_status cpu_upload_f32(void *impl, const float *v, int64_t n, const char *what, float **out) {
    (void)impl; (void)n; (void)what;
    *out = (float *)v;
    return LQ_OK;
}
static void cpu_free_f32(void *impl, float *v) { (void)impl; (void)v; }

static lq_status cpu_ctx_create(void *impl, int n_ctx, lq_pool *pool, void **out) {
    (void)impl;
    *out = NULL;
    cpu_ctx *c = calloc(1, sizeof *c);
    if (c) c->att_scratch = malloc((size_t)lq_pool_size(pool) * (size_t)n_ctx * sizeof(float));
    if (!c || !c->att_scratch) {
        free(c);
        return lq_fail(LQ_ERR_NOMEM, "out of memory for the attention scratch of %d positions", n_ctx);
    }
    c->pool = pool;
    c->n_ctx = n_ctx;
    const char *e = getenv("LQ_ATTN_GEMM");
    c->attn_gemm = !(e && strcmp(e, "0") == 0);
    *out = c;
    return LQ_OK;
}

static void cpu_ctx_free(void *ctx) {
    cpu_ctx *c = ctx;
    if (!c) return;
    free(c->att_scratch);
    free(c);
}

static lq_status cpu_alloc(void *ctx, size_t bytes, void **out) {
    (void)ctx;
    *out = calloc(bytes ? bytes : 1, 1);
    return *out ? LQ_OK : lq_fail(LQ_ERR_NOMEM, "out of memory (%zu bytes)", bytes);
}
static void cpu_free(void *ctx, void *p) { (void)ctx; free(p); }

static lq_status cpu_copy(void *ctx, void *dst, const void *src, size_t bytes) {
    (void)ctx;
    if (bytes) memmove(dst, src, bytes);
    return LQ_OK;
}
static lq_status cpu_sync(void *ctx) { (void)ctx; return LQ_OK; }

static lq_status cpu_embed(void *ctx, const void *w, const int32_t *ids, int n, float *x) {
    (void)ctx;
    const lq_weight *e = w;
    const lq_wfmt_traits *tr = lq_wfmt_get(e->fmt);
    for (int t = 0; t < n; t++) tr->dequant(e, ids[t], ids[t] + 1, x + (int64_t)t * e->cols);
    return LQ_OK;
}

static lq_status cpu_matmul(void *ctx, const void *w, const float *X, int64_t n, float *Y) {
    const lq_weight *lw = w;
    lq_kstatus ks = lq_matmul(((cpu_ctx *)ctx)->pool, lw, X, n, Y);
    if (ks == LQ_KERNEL_BAD_FORMAT)
        return lq_fail(LQ_ERR_UNSUPPORTED, "matmul: weight format %d has no kernel", (int)lw->fmt);
    if (ks != LQ_KERNEL_OK)
        return lq_fail(LQ_ERR_INVALID_ARG, "matmul: bad shape (%lld x %lld, %lld tokens)",
                       (long long)lw->rows, (long long)lw->cols, (long long)n);
    return LQ_OK;
}

static lq_status cpu_matmul_multi(void *ctx, void *const *w, int nw, const float *X, int64_t n, float *const *Y) {
    const lq_weight *lw[LQ_MATMUL_MULTI_MAX];
    if (nw < 1 || nw > LQ_MATMUL_MULTI_MAX) return lq_fail(LQ_ERR_INVALID_ARG, "matmul_multi: %d weights", nw);
    for (int i = 0; i < nw; i++) lw[i] = w[i];
    lq_kstatus ks = lq_matmul_multi(((cpu_ctx *)ctx)->pool, lw, nw, X, n, Y);
    if (ks == LQ_KERNEL_BAD_FORMAT) return lq_fail(LQ_ERR_UNSUPPORTED, "matmul: a weight format has no kernel");
    if (ks != LQ_KERNEL_OK)
        return lq_fail(LQ_ERR_INVALID_ARG, "matmul_multi: bad shapes (%d weights of %lld columns, %lld tokens)", nw,
                       (long long)lw[0]->cols, (long long)n);
    return LQ_OK;
}

static lq_status cpu_rmsnorm(void *ctx, float *out, const float *x, const float *w, int64_t rows, int64_t dim,
                             float eps) {
    (void)ctx;
    for (int64_t t = 0; t < rows; t++) lq_rmsnorm(out + t * dim, x + t * dim, w, dim, eps);
    return LQ_OK;
}

static lq_status cpu_rope(void *ctx, float *x, int n_tok, int64_t stride, int n_heads, int hd, int pos0,
                          const float *inv_freq, bool interleaved) {
    cpu_ctx *c = ctx;
    for (int t = 0; t < n_tok; t++) {
        if (hd > ROPE_CACHE_DIM) {
            for (int h = 0; h < n_heads; h++) lq_rope_ref(x + t * stride + (int64_t)h * hd, hd, pos0 + t, inv_freq, interleaved);
            continue;
        }
        if (c->rope_freq != inv_freq || c->rope_pos != pos0 + t || c->rope_hd != hd) {
            lq_rope_cos_sin(c->rope_cs, hd, pos0 + t, inv_freq);
            c->rope_freq = inv_freq, c->rope_pos = pos0 + t, c->rope_hd = hd;
        }
        for (int h = 0; h < n_heads; h++) lq_rope_apply(x + t * stride + (int64_t)h * hd, hd, c->rope_cs, interleaved);
    }
    return LQ_OK;
}

static lq_status cpu_kv_store(void *ctx, lq_kv_type t, void *dst, size_t row_bytes, const float *src, int n,
                              int n_heads, int head_dim, const float *fixed) {
    (void)ctx;
    for (int i = 0; i < n; i++)
        lq_kv_store_row(t, (char *)dst + (size_t)i * row_bytes, src + (int64_t)i * n_heads * head_dim, n_heads, head_dim,
                        fixed);
    return LQ_OK;
}

typedef struct attn_job {
    const lq_attn_args *a;
    cpu_ctx *c;
} attn_job;

/* One (token, head) pair: causal softmax attention over positions lo..p of the cache. */
static void attn_task(void *arg, int64_t task, int tid) {
    const attn_job *j = arg;
    const lq_attn_args *a = j->a;
    const int hd = a->head_dim;
    const int64_t kv_dim = (int64_t)a->n_kv_heads * hd, q_dim = (int64_t)a->n_heads * hd;
    const int t = (int)(task / a->n_heads), h = (int)(task % a->n_heads);
    const int kvh = h / (a->n_heads / a->n_kv_heads); /* grouped-query: heads share a kv head */
    const int p = a->pos0 + t;
    const int lo = a->window > 0 && p - a->window + 1 > 0 ? p - a->window + 1 : 0;
    const float *q = a->q + (int64_t)t * q_dim + (int64_t)h * hd;
    float *sc = j->c->att_scratch + (size_t)tid * j->c->n_ctx;
    float *o = a->out + (int64_t)t * q_dim + (int64_t)h * hd;
    if (a->kv != LQ_KV_F32) { /* compact cache rows (lq_kv.h) */
        const char *k = (const char *)a->kq + (size_t)lo * a->kv_row_bytes;
        const char *v = (const char *)a->vq + (size_t)lo * a->kv_row_bytes;
        lq_kv_dot_rows(a->kv, q, k, a->kv_row_bytes, p - lo + 1, kvh, a->n_kv_heads, hd, a->k_fixed, a->scale, sc);
        lq_softmax(sc, p - lo + 1);
        memset(o, 0, (size_t)hd * sizeof(float));
        lq_kv_axpy_rows(a->kv, o, sc, v, a->kv_row_bytes, p - lo + 1, kvh, a->n_kv_heads, hd, a->v_fixed);
        return;
    }
    lq_dot_f32_rows(q, a->kc + (int64_t)lo * kv_dim + (int64_t)kvh * hd, kv_dim, p - lo + 1, hd, a->scale, sc);
    lq_softmax(sc, p - lo + 1);
    memset(o, 0, (size_t)hd * sizeof(float));
    lq_axpy_f32_rows(o, sc, a->vc + (int64_t)lo * kv_dim + (int64_t)kvh * hd, kv_dim, p - lo + 1, hd);
}

static lq_status cpu_attention(void *ctx, const lq_attn_args *a) {
    cpu_ctx *c = ctx;
    attn_job job = {.a = a, .c = c};
    int64_t span = a->window > 0 && a->window < a->pos0 + a->n_tok ? a->window : a->pos0 + a->n_tok;
    int64_t macs = (int64_t)a->n_tok * a->n_heads * span * a->head_dim * 2;
    lq_pool *pool = macs < ATTN_MIN_PARALLEL_MACS ? NULL : c->pool;
    if (c->attn_gemm && a->kv == LQ_KV_F32 && a->n_tok >= ATTN_GEMM_MIN_ROWS && lq_attn_gemm_available()) {
        lq_attn_gemm(pool, a, c->att_scratch, c->n_ctx);
        return LQ_OK;
    }
    lq_pool_run(pool, attn_task, &job, (int64_t)a->n_tok * a->n_heads);
    return LQ_OK;
}

/* ---- paged attention: tiles of one page, online softmax ------------------------------------
 * FlashAttention's recurrence over the pages of a sequence: a running max m, a running sum l of
 * exp(score - m) and an output accumulator rescaled by exp(m_old - m_new) whenever a tile raises
 * the max. Memory is one tile of scores and one head of output per task, whatever the context
 * (no n_ctx score row), and a tile's K and V rows are one page, contiguous. The two-pass
 * attn_task above is the reference it is tested against (tests/test_batch.c). */
#define PAGED_MAX_TILE 256
#define PAGED_MAX_HEAD 512

typedef struct paged_job {
    const lq_attn_paged_args *a;
} paged_job;

static const lq_attn_seq *seq_of_row(const lq_attn_paged_args *a, int row) {
    int lo = 0, hi = a->n_seqs - 1;
    while (lo < hi) { /* the last sequence whose row0 <= row */
        int mid = (lo + hi + 1) / 2;
        if (a->seqs[mid].row0 <= row) lo = mid;
        else hi = mid - 1;
    }
    return &a->seqs[lo];
}

/* One (row, head): attention over the row's sequence positions lo..p, a page at a time. A tile's
 * scores come from lq_dot_f32_rows (f32 pages) or lq_kv_dot_rows (compact rows, the loops the
 * contiguous cache uses), are turned into exp(score - m) in place, and weight the tile's V rows
 * through lq_axpy_f32_rows or lq_kv_axpy_rows (the same row-by-row FMAs as attn_task). */
static void paged_task(void *arg, int64_t task, int tid) {
    (void)tid;
    const lq_attn_paged_args *a = ((const paged_job *)arg)->a;
    const int hd = a->head_dim, pt = a->page_tokens;
    const int64_t kv_dim = (int64_t)a->n_kv_heads * hd, q_dim = (int64_t)a->n_heads * hd;
    const int row = (int)(task / a->n_heads), h = (int)(task % a->n_heads);
    const int kvh = h / (a->n_heads / a->n_kv_heads);
    const lq_attn_seq *sq = seq_of_row(a, row);
    const int p = sq->pos0 + (row - sq->row0);
    const int lo = a->window > 0 && p - a->window + 1 > 0 ? p - a->window + 1 : 0;
    const float *q = a->q + (int64_t)row * q_dim + (int64_t)h * hd;
    const bool compact = a->kv != LQ_KV_F32;
    const size_t rb = a->kv_row_bytes;
    float sc[PAGED_MAX_TILE], acc[PAGED_MAX_HEAD];
    memset(acc, 0, (size_t)hd * sizeof(float));
    float m = -INFINITY, l = 0.0f;
    for (int t0 = lo / pt * pt; t0 <= p; t0 += pt) {
        const char *page = sq->pages[t0 / pt];
        const int i0 = t0 > lo ? t0 : lo, i1 = t0 + pt - 1 < p ? t0 + pt - 1 : p, nt = i1 - i0 + 1;
        /* f32: head kvh of row i0; compact: row i0 (the kernels pick the head) */
        const float *kp = (const float *)(page + a->k_off) + (int64_t)(i0 - t0) * kv_dim + (int64_t)kvh * hd;
        const float *vp = (const float *)(page + a->v_off) + (int64_t)(i0 - t0) * kv_dim + (int64_t)kvh * hd;
        const char *kr = page + a->k_off + (size_t)(i0 - t0) * rb, *vr = page + a->v_off + (size_t)(i0 - t0) * rb;
        float mt = m;
        if (compact) lq_kv_dot_rows(a->kv, q, kr, rb, nt, kvh, a->n_kv_heads, hd, a->k_fixed, a->scale, sc);
        else lq_dot_f32_rows(q, kp, kv_dim, nt, hd, a->scale, sc);
        for (int i = 0; i < nt; i++)
            if (sc[i] > mt) mt = sc[i];
        if (mt > m) { /* a new max: earlier terms shrink by exp(m - mt) (0 on the first tile) */
            const float c = expf(m - mt);
            for (int d = 0; d < hd; d++) acc[d] *= c;
            l *= c;
            m = mt;
        }
        for (int i = 0; i < nt; i++) {
            sc[i] = expf(sc[i] - m);
            l += sc[i];
        }
        if (compact) lq_kv_axpy_rows(a->kv, acc, sc, vr, rb, nt, kvh, a->n_kv_heads, hd, a->v_fixed);
        else lq_axpy_f32_rows(acc, sc, vp, kv_dim, nt, hd); /* per-row lq_axpy_f32, one ISA check */
    }
    float *o = a->out + (int64_t)row * q_dim + (int64_t)h * hd;
    const float inv = 1.0f / l;
    for (int d = 0; d < hd; d++) o[d] = acc[d] * inv;
}

static lq_status cpu_attention_paged(void *ctx, const lq_attn_paged_args *a) {
    cpu_ctx *c = ctx;
    if (a->page_tokens <= 0 || a->page_tokens > PAGED_MAX_TILE || a->head_dim > PAGED_MAX_HEAD || a->n_seqs <= 0)
        return lq_fail(LQ_ERR_UNSUPPORTED, "attention_paged: pages of %d tokens, head_dim %d (limits %d, %d)",
                       a->page_tokens, a->head_dim, PAGED_MAX_TILE, PAGED_MAX_HEAD);
    int64_t macs = 0;
    for (int i = 0; i < a->n_seqs; i++) {
        const lq_attn_seq *sq = &a->seqs[i];
        int64_t span = sq->pos0 + sq->n_tok;
        if (a->window > 0 && a->window < span) span = a->window;
        macs += (int64_t)sq->n_tok * a->n_heads * span * a->head_dim * 2;
    }
    paged_job job = {.a = a};
    lq_pool_run(macs < ATTN_MIN_PARALLEL_MACS ? NULL : c->pool, paged_task, &job, (int64_t)a->n_rows * a->n_heads);
    return LQ_OK;
}

static lq_status cpu_glu(void *ctx, lq_act act, float *gate, const float *up, int64_t n) {
    (void)ctx;
    switch (act) {
    case LQ_ACT_SILU: lq_swiglu(gate, up, n); return LQ_OK;
    case LQ_ACT_GELU_TANH: lq_geglu_tanh_ref(gate, up, n); return LQ_OK;
    }
    return lq_fail(LQ_ERR_UNSUPPORTED, "cpu backend: activation %d not available", (int)act);
}

static lq_status cpu_scale(void *ctx, float *x, float s, int64_t n) {
    (void)ctx;
    for (int64_t i = 0; i < n; i++) x[i] *= s;
    return LQ_OK;
}

/* x += y and y[t] += b through lq_axpy_f32 with a = 1 (AVX2 when present): fma(1, y, x) rounds
 * once, to exactly x + y, so this is the plain sum; a scalar loop of unknown length is not
 * vectorized at -O2. */
static lq_status cpu_add(void *ctx, float *x, const float *y, int64_t n) {
    (void)ctx;
    lq_axpy_f32(x, 1.0f, y, n);
    return LQ_OK;
}

static lq_status cpu_add_bias(void *ctx, float *y, const float *b, int64_t rows, int64_t cols) {
    (void)ctx;
    for (int64_t t = 0; t < rows; t++) lq_axpy_f32(y + t * cols, 1.0f, b, cols);
    return LQ_OK;
}

/* transformers' TopKRouter: softmax in f32 over all experts (max-subtracted, as torch), then
 * torch.topk of the probabilities. torch.topk's order among equal values is unspecified (CPU
 * torch 2.14: topk([.1, .3, .3, .3], 2) -> ids 2, 3); ties here go to the lower expert index,
 * and the fixtures keep the k-th / (k+1)-th gap >= 2e-3 so no tie decides a choice. */
static lq_status cpu_router_topk(void *ctx, const float *logits, int64_t n_tok, int n_experts, int k, bool renorm,
                                 int32_t *ids, float *weights) {
    (void)ctx;
    if (k <= 0 || k > n_experts || n_experts > 4096)
        return lq_fail(LQ_ERR_INVALID_ARG, "router_topk: top-%d of %d experts", k, n_experts);
    float p[4096];
    for (int64_t t = 0; t < n_tok; t++) {
        memcpy(p, logits + t * n_experts, (size_t)n_experts * sizeof(float));
        lq_softmax(p, n_experts);
        int32_t *id = ids + t * k;
        float *w = weights + t * k, sum = 0.0f;
        for (int j = 0; j < k; j++) {
            int best = -1;
            for (int e = 0; e < n_experts; e++)
                if (p[e] >= 0.0f && (best < 0 || p[e] > p[best])) best = e;
            id[j] = best;
            w[j] = p[best];
            sum += p[best];
            p[best] = -1.0f; /* taken */
        }
        if (renorm)
            for (int j = 0; j < k; j++) w[j] /= sum;
    }
    return LQ_OK;
}

const lq_backend_ops lq_backend_cpu = {
    .name = "cpu",
    .device = LQ_DEVICE_CPU,
    .host_memory = true,
    .supports = cpu_supports,
    .open = cpu_open,
    .close = cpu_close,
    .upload_weight = cpu_upload_weight,
    .free_weight = cpu_free_weight,
    .upload_f32 = cpu_upload_f32,
    .free_f32 = cpu_free_f32,
    .ctx_create = cpu_ctx_create,
    .ctx_free = cpu_ctx_free,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .copy = cpu_copy,
    .sync = cpu_sync,
    .embed = cpu_embed,
    .matmul = cpu_matmul,
    .rmsnorm = cpu_rmsnorm,
    .rope = cpu_rope,
    .attention = cpu_attention,
    .glu = cpu_glu,
    .add = cpu_add,
    .add_bias = cpu_add_bias,
    .scale = cpu_scale,
    .router_topk = cpu_router_topk,
    .attention_paged = cpu_attention_paged,
    .kv_store = cpu_kv_store,
    .matmul_multi = cpu_matmul_multi,
};
