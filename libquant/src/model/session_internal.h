/* session_internal.h - the lq_session behind the opaque handle, shared by the layer program's
 * files (forward.c: attention and the dense MLP; forward_moe.c: the sparse-MoE FFN). Internal to
 * model/. */
#ifndef LQ_SESSION_INTERNAL_H
#define LQ_SESSION_INTERNAL_H

#include "kv_paged.h"
#include "model_internal.h"

/* Buffers of the sparse-MoE FFN, grown with the batch (forward_moe.c). "table" = the backend
 * table's memory, "host" = host memory (the router's choices schedule the experts). */
typedef struct lq_moe_buffers {
    int cap;                    /* tokens they hold */
    float *x, *y, *out;         /* table: (cap, dim) an expert's gathered input / its output / the sum */
    float *g, *u;               /* table: (cap, widest expert) gate / up */
    float *logits;              /* table: (cap, n_experts) router logits */
    int32_t *ids, *rows;        /* host: (cap, k) chosen experts; (cap) tokens of one expert */
    float *w, *rw, *gate;       /* host: (cap, k) routing weights; (cap) one expert's; (cap) shared gate */
    unsigned char *seen;        /* host: (cap) whether a token's output row has a first term */
} lq_moe_buffers;

struct lq_session {
    const lq_model *m;
    const lq_backend_model *bm; /* the model's weights as this session's table holds them */
    const lq_backend_ops *ops;
    void *ctx;
    lq_pool *pool;              /* borrowed */
    int n_ctx;
    lq_kv_type kv_type;         /* element type of k_cache / v_cache rows (lq_kv.h) */
    size_t kv_row_max;          /* bytes of the widest layer's cache row */
    const float *kv_fixed;      /* the model's static scales (q8 / fp8), or NULL: per-row scales */
    void *k_cache, *v_cache;    /* (n_layers, n_ctx) rows of kv_row_max bytes; a layer's rows are
                                   packed at its own row size (lq_kv_row_bytes) */
    int cap;                    /* batch rows the buffers below hold */
    float *x;                   /* (cap, dim) residual stream */
    float *xb;                  /* (cap, max(dim, q_dim)) normed input / projection output */
    float *q, *att;             /* (cap, q_dim) queries, attention output */
    float *hb, *hb2;            /* (cap, hidden) gate / up */
    int32_t *ids;               /* (cap) token ids in the table's memory */
    float *logits;              /* (logits_rows, vocab) on a device table; unused on the host */
    int logits_rows;
    lq_layer_hook hook;         /* optional observer of the residual stream (host tables) */
    void *hook_user;
    lq_linear_hook lhook;       /* optional observer of every Linear's input (any table) */
    bool observe_only;          /* lq_session_observe_layer: the down projections are not computed */
    void *lhook_user;
    float *lhook_buf;           /* host copy of a device table's Linear input for lhook */
    size_t lhook_cap;           /* floats lhook_buf holds */
    lq_moe_buffers moe;         /* sparse-MoE scratch (forward_moe.c) */
    /* batch sessions (forward_batch.c): the paged cache replaces k_cache / v_cache (NULL) */
    lq_kv_pages *kv;            /* NULL: a single-sequence session on the contiguous cache */
    float *kb, *vb;             /* (cap, kv_dim_max) this step's K / V rows, stored after RoPE
                                   (batch sessions and compact contiguous caches) */
    const lq_attn_seq *pseq;    /* (n_pseq) the step's sequences: rows, positions, pages */
    lq_kv_seq *const *pkv;      /* (n_pseq) their block tables */
    int n_pseq;
};

/* A session; `cache` false leaves out the contiguous KV cache (a batch session pages it). */
lq_status lq_session_open(const lq_model *m, int n_ctx, lq_pool *pool, lq_device device, bool cache,
                          lq_session **out);
/* Grow the batch buffers to n rows and a device table's logits to logits_rows rows. */
lq_status lq_session_ensure_batch(lq_session *s, int n, int logits_rows);
/* Decoder layer l over the n rows of s->x (forward.c: the layer program). */
lq_status lq_fwd_layer(lq_session *s, int l, int n, int pos);
/* The paged part of layer l's attention block: RoPE of q (s->q) and k (s->kb) per sequence, the
 * K / V rows into their pages as the layer's rows r, attention_paged into s->att
 * (forward_batch.c). */
lq_status lq_fwd_attend_paged(lq_session *s, int l, int n, const lq_kv_layer_rows *r);

/* Y = X W^T (+ bias) for role r of layer l (expert e of a per-expert role, else -1) on n rows;
 * the linear hook sees X first. */
lq_status lq_fwd_linear(lq_session *s, int l, lq_role r, int e, const float *X, int n, int64_t rows, float *Y);

/* lq_fwd_linear for several roles of layer l (no experts) that take the same X, fused where the
 * table has matmul_multi; rows[i] and Y[i] as lq_fwd_linear's rows and Y. */
lq_status lq_fwd_linear_multi(lq_session *s, int l, const lq_role *r, int nw, const float *X, int n,
                              const int64_t *rows, float *const *Y);

/* Layer l's sparse-MoE FFN of the n normed rows s->xb: the result in *out (n, dim), table memory. */
lq_status lq_moe_ffn(lq_session *s, int l, int n, float **out);
void lq_moe_buffers_free(lq_session *s);

#endif
