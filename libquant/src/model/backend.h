/* backend.h - backends as tables of operations (internal).
 *
 * The layer program (forward.c) is written once against lq_backend_ops: every step of a forward
 * pass is one op of the selected table (matmul of a weight in its stored format, RMSNorm, RoPE,
 * causal attention over the KV cache, the gated activation, add / bias add), and memory (the KV
 * cache, activations) is allocated, uploaded, downloaded and copied through it too. The CPU table
 * (backend_cpu.c: lq_ops.h kernels + the thread pool) is the reference; the CUDA table
 * (backend_cuda.c) is op glue over kernels/include/lq_cuda.h. A new backend is one more table:
 * no copy of the layer program.
 *
 * `supports(op)` says which ops a table has; a model needs a set of ops (lq_model_ops_needed:
 * bias adds only with biases, the windowed attention only with a sliding window, ...) and a
 * session on a table that lacks one is refused with a message naming the op.
 *
 * Pointers named "device" below are the table's memory: host memory for the CPU table
 * (host_memory = true: the program then writes logits in place and may show activations to
 * hooks), GPU memory for CUDA.
 */
#ifndef LQ_BACKEND_H
#define LQ_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch.h"
#include "libquant/lq_model.h"
#include "lq_kv.h"

/* Operations a layer program may need. Append-only (names in backend.c). */
typedef enum lq_op {
    LQ_OP_EMBED = 0,        /* rows of the embedding matrix (any weight format) */
    LQ_OP_MATMUL,           /* Y = X W^T for a weight in its stored format */
    LQ_OP_RMSNORM,
    LQ_OP_ROPE,
    LQ_OP_ATTENTION,        /* causal grouped-query attention over the cache */
    LQ_OP_ATTENTION_WINDOW, /* ... restricted to a sliding window */
    LQ_OP_SWIGLU,           /* silu(gate) * up */
    LQ_OP_GEGLU_TANH,       /* gelu_tanh(gate) * up (Gemma) */
    LQ_OP_ADD,              /* x += y (residual) */
    LQ_OP_ADD_BIAS,         /* y[t] += b for every row t */
    LQ_OP_SCALE,            /* x *= s (Gemma's embedding scale; MoE routing weights) */
    LQ_OP_ROUTER_TOPK,      /* sparse MoE: softmax of router logits, top-k experts and weights */
    LQ_OP_ATTENTION_PAGED,  /* causal GQA attention of a batch of sequences over a paged cache */
    LQ_OP_COUNT
} lq_op;

const char *lq_op_name(lq_op op);

/* Causal attention of n_tok query rows at positions pos0 .. pos0+n_tok-1 over cache rows
 * max(0, p - window + 1) .. p (window 0: all of 0 .. p); scores are q.k * scale. */
typedef struct lq_attn_args {
    float *out;              /* (n_tok, n_heads * head_dim) */
    const float *q;          /* (n_tok, n_heads * head_dim) */
    const float *kc, *vc;    /* this layer's cache rows, (n_ctx, n_kv_heads * head_dim) */
    int n_tok, pos0, n_heads, n_kv_heads, head_dim, window;
    float scale;
    /* A compact cache (kv != LQ_KV_F32; tables with kv_store only): kc / vc are NULL and the
     * rows are kq / vq, kv_row_bytes apart, in lq_kv.h's layout; k_fixed / v_fixed the static
     * per-head scales (NULL: per row). */
    lq_kv_type kv;
    const void *kq, *vq;
    size_t kv_row_bytes;
    const float *k_fixed, *v_fixed;
} lq_attn_args;

/* One sequence's rows in a paged attention call: query rows row0 .. row0+n_tok-1 at positions
 * pos0 .. pos0+n_tok-1; its cache position i lies in page i / page_tokens, row i % page_tokens. */
typedef struct lq_attn_seq {
    int row0, n_tok, pos0;
    void *const *pages;      /* host array of page base pointers (table memory), in position order */
} lq_attn_seq;

/* Causal attention of every sequence's rows over its own pages (the batched decode / chunked
 * prefill of lq_batch). A page is one block of table memory holding page_tokens positions of
 * every layer's K and V; this layer's K rows start k_off bytes into a page, its V rows v_off,
 * kv_row_bytes apart. Rows are f32 (kv == LQ_KV_F32: n_kv_heads * head_dim floats) or a compact
 * type in lq_kv.h's layout, with k_fixed / v_fixed its static per-head scales (NULL: per row),
 * as lq_attn_args' compact rows. Same scores and window rule as lq_attn_args. */
typedef struct lq_attn_paged_args {
    float *out;              /* (n_rows, n_heads * head_dim) */
    const float *q;          /* (n_rows, n_heads * head_dim) */
    const lq_attn_seq *seqs; /* (n_seqs), ascending row0, rows contiguous: together 0 .. n_rows-1 */
    int n_seqs, n_rows;
    int64_t k_off, v_off;
    int page_tokens, n_heads, n_kv_heads, head_dim, window;
    float scale;
    lq_kv_type kv;
    size_t kv_row_bytes;
    const float *k_fixed, *v_fixed;
} lq_attn_paged_args;

enum { LQ_FWD_MULTI_MAX = 4 }; /* weights one matmul_multi takes (lq_matmul_multi's limit) */

typedef struct lq_backend_ops {
    const char *name;
    lq_device device;
    bool host_memory;
    bool (*supports)(lq_op op);

    /* model: weights and constant vectors, uploaded once (the CPU table keeps views) */
    lq_status (*open)(void **impl);
    void (*close)(void *impl);
    lq_status (*upload_weight)(void *impl, const lq_weight *w, const char *what, void **out);
    void (*free_weight)(void *impl, void *w);
    lq_status (*upload_f32)(void *impl, const float *v, int64_t n, const char *what, float **out);
    void (*free_f32)(void *impl, float *v);

    /* session: a stream / thread pool, and memory in the table's address space */
    lq_status (*ctx_create)(void *impl, int n_ctx, lq_pool *pool, void **ctx);
    void (*ctx_free)(void *ctx);
    lq_status (*alloc)(void *ctx, size_t bytes, void **out); /* zero-filled */
    void (*free)(void *ctx, void *p);
    lq_status (*upload)(void *ctx, void *dst, const void *host_src, size_t bytes);
    lq_status (*download)(void *ctx, void *host_dst, const void *src, size_t bytes); /* waits */
    lq_status (*copy)(void *ctx, void *dst, const void *src, size_t bytes);
    lq_status (*sync)(void *ctx);

    /* compute: x is (rows, dim) row-major, f32 */
    lq_status (*embed)(void *ctx, const void *w, const int32_t *ids, int n, float *x);
    lq_status (*matmul)(void *ctx, const void *w, const float *X, int64_t n, float *Y);
    lq_status (*rmsnorm)(void *ctx, float *out, const float *x, const float *w, int64_t rows,
                         int64_t dim, float eps);
    lq_status (*rope)(void *ctx, float *x, int n_tok, int64_t row_stride, int n_heads, int head_dim,
                      int pos0, const float *inv_freq, bool interleaved);
    lq_status (*attention)(void *ctx, const lq_attn_args *a);
    lq_status (*glu)(void *ctx, lq_act act, float *gate, const float *up, int64_t n);
    lq_status (*add)(void *ctx, float *x, const float *y, int64_t n);
    lq_status (*add_bias)(void *ctx, float *y, const float *b, int64_t rows, int64_t cols);
    lq_status (*scale)(void *ctx, float *x, float s, int64_t n);
    /* For each of n_tok rows of router logits (n_tok, n_experts): softmax over all experts, the
     * k most probable (ties: the lower expert index), their probabilities renormalised to sum 1
     * when `renorm`. ids and weights (n_tok, k), in descending probability, are HOST memory: the
     * layer program schedules the experts from them. */
    lq_status (*router_topk)(void *ctx, const float *logits, int64_t n_tok, int n_experts, int k, bool renorm,
                             int32_t *ids, float *weights);
    /* Paged attention (lq_batch); NULL where supports(LQ_OP_ATTENTION_PAGED) is false. */
    lq_status (*attention_paged)(void *ctx, const lq_attn_paged_args *a);
    /* Optional fusion (NULL: the program calls matmul once per weight): Y[i] = X W[i]^T for nw
     * (<= LQ_FWD_MULTI_MAX) weights that take the same X (q/k/v, gate/up), each Y[i] exactly what
     * matmul would write. The CPU table runs them as one activation quantization and one pool
     * run (lq_matmul_multi): decode pays those per matmul, hundreds of times per token. */
    lq_status (*matmul_multi)(void *ctx, void *const *w, int nw, const float *X, int64_t n, float *const *Y);
    /* Optional (NULL: the table keeps f32 caches only): encode n rows of src (each n_heads *
     * head_dim floats, packed) as cache rows of type t, row_bytes apart from dst (lq_kv.h). */
    lq_status (*kv_store)(void *ctx, lq_kv_type t, void *dst, size_t row_bytes, const float *src, int n,
                          int n_heads, int head_dim, const float *fixed);
} lq_backend_ops;

/* The table of device d; LQ_ERR_UNSUPPORTED with a one-line reason when this build has none. */
lq_status lq_backend_for(lq_device d, const lq_backend_ops **out);
extern const lq_backend_ops lq_backend_cpu;
#ifdef LQ_HAVE_CUDA
extern const lq_backend_ops lq_backend_cuda;
#endif

/* RoPE tables: global layers, and local (sliding-window) layers of models with two bases. */
enum { LQ_ROPE_GLOBAL = 0, LQ_ROPE_LOCAL = 1, LQ_ROPE_TABLES = 2 };

/* A model's weights as one table holds them (handles returned by upload_weight/upload_f32). */
typedef struct lq_backend_layer {
    void *w[LQ_ROLE_COUNT];
    void **xw[LQ_ROLE_COUNT]; /* per-expert roles: one handle per expert */
    int n_experts;
    float *vec[LQ_ROLE_COUNT];
    float *bias[LQ_ROLE_COUNT];
} lq_backend_layer;

typedef struct lq_backend_model {
    const lq_backend_ops *ops;
    void *impl;
    int n_layers;
    lq_backend_layer *layers;
    void *tok_emb, *output;
    float *final_norm;
    float *rope[LQ_ROPE_TABLES];
} lq_backend_model;

/* Upload every bound tensor of m through ops. */
lq_status lq_backend_model_create(const lq_model *m, const lq_backend_ops *ops, lq_backend_model **out);
void lq_backend_model_free(lq_backend_model *bm); /* NULL is a no-op */
/* LQ_ERR_UNSUPPORTED naming the first op m needs that ops lacks. */
lq_status lq_backend_check(const lq_model *m, const lq_backend_ops *ops);

#endif
