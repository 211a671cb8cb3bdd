/* arch.h - architecture descriptors: what a decoder layer is made of, by role (internal).
 *
 * One table per architecture (arch_<name>.c) names every tensor by its *role* (Q, K, V, O, GATE,
 * UP, DOWN, the norms, optional biases, q/k norms), gives its Hugging Face module name (under
 * "model.layers.N.") and its GGUF name (under "blk.N."), its shape in symbols resolved against
 * the config (dim, hidden, q_dim, kv_dim, head_dim), and flags (optional, bias allowed / required).
 * config.json's architectures[0] (later GGUF's general.architecture) selects the table
 * (lq_arch_find). Everything that used to spell the seven projections reads this instead:
 *   - model.c binds and validates the tensor set from it (at model load, not checkpoint open, so
 *     tools that never run the model accept any checkpoint whose Linear layers they can name);
 *   - forward.c runs ONE layer program over the bound roles (a step runs when its role is bound);
 *   - pruning units and recipe plans ask for role groups (lq_arch_group_module: the FFN neuron
 *     group is {GATE, UP} by rows + {DOWN} by columns, the KV group {Q, K, V} + {O}), and the
 *     SmoothQuant set is "every linear whose input is a norm" (lq_role_info.input_norm).
 * Roles are generic (their kind, group and pruning axis are in lq_role_info, one row per role);
 * an architecture only says which roles it has and what they are called.
 *
 * Gemma 3 (arch_gemma3.c) shows how a family with new steps fits: roles POST_ATTN_NORM and
 *   POST_FFN_NORM (steps of the layer program; its HF names differ: its FFN_NORM is
 *   "pre_feedforward_layernorm", its POST_ATTN_NORM "post_attention_layernorm"); feature flag
 *   LQ_AF_EMBED_SCALE (x *= sqrt(dim) after the lookup: the tables' scale op) and norm_offset = 1
 *   ((1 + w) RMSNorm, folded into the f32 norm copy at bind time, so no new op); act =
 *   LQ_ACT_GELU_TANH (the glu op's activation argument); Q_NORM/K_NORM as Qwen3; per-layer sliding
 *   window and RoPE table from the config (layer_types or sliding_window_pattern; the sliding
 *   layers' base fills lq_model.rope_inv_freq[LQ_ROPE_LOCAL]); query_pre_attn_scalar is the
 *   attention op's `scale` argument.
 * Sparse MoE (arch_mixtral.c, arch_qwen2_moe.c; the FFN step in forward_moe.c): roles ROUTER
 *   (rows = n_experts), EXP_GATE/UP/DOWN with flag LQ_RF_PER_EXPERT (the HF name holds the expert
 *   index as "%d": "block_sparse_moe.experts.%d.w1"; lq_arch_expert_module names one expert; the
 *   GGUF name is llama.cpp's stacked [E, rows, cols] tensor, "ffn_gate_exps"), SHEXP_GATE/UP/DOWN
 *   (Qwen2-MoE's shared expert, a dense MLP) and SHEXP_ROUTER (its sigmoid gate, one row).
 *   LQ_RF_SPARSE_LAYER roles exist only in layers with experts, LQ_RF_DENSE_LAYER ones only in
 *   the others (lq_config_layer_moe: Qwen2-MoE's mlp_only_layers / decoder_sparse_step). The
 *   layer binds an array of lq_weight per expert role; the FFN step becomes "router matmul ->
 *   router_topk op (softmax over all experts, top-k, renormalised when norm_topk_prob or
 *   LQ_AF_MOE_NORM_TOPK) -> per expert, the tokens routed to it gathered, the same gate/up/glu/down
 *   steps on them, scaled by their weights and added back -> + sigmoid(shared gate) * shared MLP".
 *   What transformers 5.17 computes (models/mixtral, models/qwen2_moe; fixtures in
 *   tests/fixtures/arch/{mixtral,qwen2_moe}): router logits = Linear(x) (no bias), softmax in
 *   f32 over ALL experts, top-k of the probabilities, then Mixtral always renormalises the k
 *   weights to sum 1, Qwen2-MoE only when norm_topk_prob (default false); out = sum_k w_k *
 *   down(silu(gate(x)) * up(x)) of expert k (Mixtral w1 = gate, w3 = up, w2 = down), accumulated
 *   expert by expert in index order. Qwen2-MoE adds sigmoid(shared_expert_gate(x)) *
 *   shared_expert(x) (a dense MLP of shared_expert_intermediate_size) and has q/k/v biases.
 *   quant-ptq keeps the routers and shared_expert_gate in float (compress/ptq.c).
 */
#ifndef LQ_ARCH_H
#define LQ_ARCH_H

#include <stdbool.h>
#include <stdint.h>

#include "libquant/lq_checkpoint.h"

/* What a tensor of a decoder layer does. Append-only. */
typedef enum lq_role {
    LQ_ROLE_ATTN_NORM = 0, /* RMSNorm before attention */
    LQ_ROLE_Q,
    LQ_ROLE_K,
    LQ_ROLE_V,
    LQ_ROLE_O,
    LQ_ROLE_Q_NORM,        /* per-head RMSNorm of q (head_dim) */
    LQ_ROLE_K_NORM,        /* per-head RMSNorm of k (head_dim) */
    LQ_ROLE_POST_ATTN_NORM, /* RMSNorm of the attention output before the residual add */
    LQ_ROLE_FFN_NORM,      /* RMSNorm before the MLP */
    LQ_ROLE_GATE,
    LQ_ROLE_UP,
    LQ_ROLE_DOWN,
    LQ_ROLE_POST_FFN_NORM, /* RMSNorm of the MLP output before the residual add */
    LQ_ROLE_ROUTER,        /* sparse MoE: expert logits (n_experts x dim) */
    LQ_ROLE_EXP_GATE,      /* one per expert (LQ_RF_PER_EXPERT) */
    LQ_ROLE_EXP_UP,
    LQ_ROLE_EXP_DOWN,
    LQ_ROLE_SHEXP_GATE,    /* the shared expert (Qwen2-MoE): a dense MLP beside the experts */
    LQ_ROLE_SHEXP_UP,
    LQ_ROLE_SHEXP_DOWN,
    LQ_ROLE_SHEXP_ROUTER,  /* its gate: sigmoid(1 x dim Linear) scales the shared MLP's output */
    LQ_ROLE_COUNT
} lq_role;

typedef enum lq_role_kind { LQ_KIND_NORM = 0, LQ_KIND_LINEAR } lq_role_kind;

/* Groups of linear roles that pruning and recipes treat together. */
typedef enum lq_role_group {
    LQ_GROUP_NONE = 0,
    LQ_GROUP_ATTN,
    LQ_GROUP_FFN,
    LQ_GROUP_EXPERT,        /* the FFN group of one expert (its gate/up rows + down columns) */
    LQ_GROUP_SHARED_EXPERT, /* the shared expert's FFN group */
} lq_role_group;

/* Which axis of a linear holds a structured-pruning unit, and how wide one unit is on it. */
typedef enum lq_unit_axis { LQ_AXIS_NONE = 0, LQ_AXIS_ROWS, LQ_AXIS_COLS } lq_unit_axis;
typedef enum lq_unit_width { LQ_WIDTH_ONE = 0, LQ_WIDTH_HEAD, LQ_WIDTH_QGROUP } lq_unit_width;

/* Shape symbols, resolved per layer against the config (lq_arch_sym_value). */
typedef enum lq_sym {
    LQ_SYM_NONE = 0,
    LQ_SYM_DIM,      /* hidden_size */
    LQ_SYM_HIDDEN,   /* the layer's intermediate_size */
    LQ_SYM_QDIM,     /* the layer's num_attention_heads * head_dim */
    LQ_SYM_KVDIM,    /* the layer's num_key_value_heads * head_dim */
    LQ_SYM_HEAD_DIM, /* head_dim */
    LQ_SYM_VOCAB,    /* vocab_size */
    LQ_SYM_EXPERTS,  /* n_experts */
    LQ_SYM_EXPERT_HIDDEN, /* an expert's intermediate size */
    LQ_SYM_SHARED_HIDDEN, /* the shared expert's intermediate size */
    LQ_SYM_ONE       /* 1 (the shared expert's gate) */
} lq_sym;

/* Generic facts about a role (one row per role, arch.c). */
typedef struct lq_role_info {
    const char *name;       /* "q", "gate", "attn_norm": messages, --json */
    lq_role_kind kind;
    lq_role_group group;
    lq_unit_axis unit_axis; /* structured pruning: where the group's unit lies in this tensor */
    lq_unit_width unit_width;
    int input_norm;         /* the norm role whose output this linear reads, or -1 */
} lq_role_info;

/* Role flags of one architecture. */
enum {
    LQ_RF_OPTIONAL = 1u << 0,      /* may be absent (the layer program skips its step) */
    LQ_RF_BIAS = 1u << 1,          /* a "<module>.bias" is bound when present */
    LQ_RF_BIAS_REQUIRED = 1u << 2, /* ... and must be present (Qwen2 q/k/v) */
    LQ_RF_PER_EXPERT = 1u << 3,    /* one tensor per expert: the HF name has "%d" for its index */
    LQ_RF_SPARSE_LAYER = 1u << 4,  /* only in layers with experts (lq_config_layer_moe) */
    LQ_RF_DENSE_LAYER = 1u << 5,   /* only in layers without them */
};

/* One role of one architecture. */
typedef struct lq_role_spec {
    lq_role role;
    const char *hf;   /* module under "model.layers.N.": "self_attn.q_proj" (+ ".weight") */
    const char *gguf; /* tensor under "blk.N.": "attn_q" (+ ".weight") */
    lq_sym rows, cols; /* cols == LQ_SYM_NONE: a vector of `rows` */
    uint32_t flags;
} lq_role_spec;

/* Activation of the gated MLP: act(gate) * up. */
typedef enum lq_act { LQ_ACT_SILU = 0, LQ_ACT_GELU_TANH } lq_act;

/* Architecture feature flags. */
enum {
    LQ_AF_EMBED_SCALE = 1u << 0, /* x = embedding * sqrt(dim) (Gemma) */
    LQ_AF_MOE_NORM_TOPK = 1u << 1, /* renormalise the top-k routing weights always (Mixtral) */
    /* llama.cpp's converter permutes q/k rows of this architecture so rotary pairs are adjacent
     * (convert_hf_to_gguf.py LlamaModel.permute; llama.cpp rotates with LLAMA_ROPE_TYPE_NORM): a
     * GGUF checkpoint of it runs with rope_interleaved, the weights untouched. */
    LQ_AF_GGUF_QK_PERMUTED = 1u << 2,
    /* llama.cpp reads RoPE frequency factors (LQ_ROPE_FREQS_TENSOR, Llama 3's scaling) for this
     * architecture (llama-model.cpp: rope_freqs, TENSOR_NOT_REQUIRED), and its converter writes
     * them from a llama3 rope_scaling (LlamaModel.generate_extra_tensors). */
    LQ_AF_GGUF_ROPE_FREQS = 1u << 3,
};

typedef struct lq_arch {
    const char *hf_name;   /* config.json architectures[0]: "LlamaForCausalLM" */
    const char *gguf_name; /* GGUF general.architecture: "llama" */
    const lq_role_spec *roles;
    int n_roles;
    lq_act act;
    float norm_offset;     /* RMSNorm weight = stored + norm_offset (Gemma: 1) */
    uint32_t features;     /* LQ_AF_* */
} lq_arch;

/* The descriptor for config.json's architectures[0], or NULL. */
const lq_arch *lq_arch_find(const char *hf_name);
/* The descriptor for a GGUF file's general.architecture ("llama", "qwen2"), or NULL. Several
 * HF architectures may share a GGUF name (llama.cpp writes Mistral as "llama"): the first
 * registered wins, and per-model differences (sliding window) come from the file's metadata. */
const lq_arch *lq_arch_find_gguf(const char *gguf_name);
/* "LlamaForCausalLM, MistralForCausalLM, ..." for messages. */
const char *lq_arch_known_list(void);
const lq_role_info *lq_role_get(lq_role r);
/* The arch's spec of role r, or NULL when it has none. */
const lq_role_spec *lq_arch_role(const lq_arch *a, lq_role r);
/* Value of a shape symbol for layer l (0 for LQ_SYM_NONE). */
int64_t lq_arch_sym_value(const lq_config *c, lq_sym s, int l);
/* The HF module name of role r in layer l ("model.layers.3.mlp.up_proj") into buf; false when
 * the arch has no such role (or r is per expert: lq_arch_expert_module). */
bool lq_arch_module(const lq_arch *a, lq_role r, int l, char *buf, size_t cap);
/* The attention module of layer l (the parent of its q projection: "model.layers.3.self_attn"),
 * where compressed-tensors keeps the KV-cache scales k_scale / v_scale. */
bool lq_arch_attn_module(const lq_arch *a, int l, char *buf, size_t cap);
/* ... of expert e of a per-expert role ("model.layers.3.block_sparse_moe.experts.5.w1"). */
bool lq_arch_expert_module(const lq_arch *a, lq_role r, int l, int e, char *buf, size_t cap);
/* Whether layer l of a model with config c has role spec sp (LQ_RF_SPARSE_LAYER / DENSE_LAYER). */
bool lq_arch_layer_has(const lq_role_spec *sp, const lq_config *c, int l);
/* Which role a per-layer HF tensor or module name is ("model.layers.3.mlp.up_proj.weight" ->
 * UP, layer 3); -1 when it is none of a's roles. */
int lq_arch_role_of(const lq_arch *a, const char *name, int *layer);
/* ... and the expert index of a per-expert role (-1 for the others); expert may be NULL. */
int lq_arch_role_of_expert(const lq_arch *a, const char *name, int *layer, int *expert);

/* Whether `module` is a sparse-MoE router of a (ROUTER, SHEXP_ROUTER; when a is NULL, by
 * llm-compressor's MoE ignore patterns): quant-prune leaves them dense by default and quant-ptq
 * leaves them float (llm-compressor's MoE recipes ignore "re:.*mlp.gate$"): a small change there
 * changes which experts run. The one rule both use. */
bool lq_arch_is_router(const lq_arch *a, const char *module);
/* The role of a linear module of a (NULL when a is NULL or it is none), for the callers that
 * only hold a name: pruning and recipe plans. */
const lq_role_info *lq_arch_linear_info(const lq_arch *a, const char *module);
/* Width in rows/cols of one structured-pruning unit of a role: 1, head_dim, or the query heads
 * of one KV group (group * head_dim). */
int64_t lq_unit_width_value(lq_unit_width w, int64_t head_dim, int group);

/* The descriptor a checkpoint's config selects; LQ_ERR_UNSUPPORTED naming the architecture. */
lq_status lq_arch_for_config(const lq_config *c, const char *path, const lq_arch **out);

#endif
