/* model_internal.h - the lq_model behind the opaque public handle (internal to model/).
 *
 * A model is its checkpoint, its architecture descriptor and, per layer, the tensors bound by
 * role (arch.h): weight views for linear roles, f32 copies for norms and biases. The layer
 * program (forward.c) runs on any backend table through lq_backend_model (backend.h); the CPU
 * one is made at load and only points at these views.
 */
#ifndef LQ_MODEL_INTERNAL_H
#define LQ_MODEL_INTERNAL_H

#include "arch.h"
#include "backend.h"
#include "libquant/lq_model.h"

typedef struct lq_layer {
    lq_weight w[LQ_ROLE_COUNT];  /* linear roles; .data NULL when the layer has none */
    float *vec[LQ_ROLE_COUNT];   /* norm roles as f32 (+ the arch's norm_offset); NULL: none */
    float *bias[LQ_ROLE_COUNT];  /* biases of linear roles as f32; NULL: none */
    lq_weight *xw[LQ_ROLE_COUNT]; /* per-expert roles (LQ_RF_PER_EXPERT): n_experts weights */
    int n_experts;               /* experts of this layer's FFN; 0: a dense MLP */
    int n_heads, n_kv_heads, hidden; /* this layer's sizes (structured pruning may shrink it) */
    int window;                  /* sliding window, 0 = full causal attention */
    int rope;                    /* LQ_ROPE_GLOBAL or LQ_ROPE_LOCAL */
} lq_layer;

struct lq_model {
    lq_config cfg;
    const lq_arch *arch;
    lq_checkpoint *ckpt;   /* owned: the mapping every view points into */
    lq_weight tok_emb;     /* (vocab, dim) model.embed_tokens */
    lq_layer *layers;      /* (n_layers) */
    float *final_norm;     /* (dim) model.norm */
    lq_weight output;      /* (vocab, dim) lm_head, or tok_emb when tied */
    float *rope_inv_freq[LQ_ROPE_TABLES]; /* (head_dim / 2) each; LOCAL may alias GLOBAL */
    int64_t q_dim_max, kv_dim_max, hidden_max; /* widest layer (buffer sizes, cache stride) */
    int64_t moe_hidden_max; /* widest expert or shared expert (forward_moe.c's buffers); 0: dense */
    float attn_scale;      /* attention scores scale: 1/sqrt(query_pre_attn_scalar or head_dim) */
    float embed_scale;     /* sqrt(dim) rounded to f32, used with LQ_AF_EMBED_SCALE (Gemma) */
    uint64_t ops_needed;   /* bit per lq_op the layer program runs for this model */
    struct lq_bind_owner *owned; /* derived buffers of the weight binders */
    lq_backend_model *cpu; /* the CPU table's view of the weights */
    lq_backend_model *dev; /* device copy (lq_model_to_device), or NULL */
    lq_kv_type kv_type;    /* element type of the KV cache of sessions made from now on */
    float *kv_fixed;       /* static q8 / fp8 cache scales, (n_layers, 2 = K, V, cfg.n_kv_heads), or NULL */
};

/* Roles the layer program has a step for; model load refuses an architecture with others. */
uint32_t lq_program_roles(void);

/* Bind every tensor of m's descriptor (model_bind.c). */
lq_status lq_model_bind(lq_model *m);
/* The checkpoint's kv_cache_scheme, if any, as m's KV-cache type and static scales (kv_scheme_bind.c). */
lq_status lq_model_bind_kv_scheme(lq_model *m);

#endif
