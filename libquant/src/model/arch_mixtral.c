/* arch_mixtral.c - Mixtral (MixtralForCausalLM; transformers models/mixtral): Llama's attention
 * and a sparse MoE FFN in every layer: router block_sparse_moe.gate (num_local_experts x dim),
 * softmax over all experts, the top num_experts_per_tok renormalised to sum 1 (always:
 * LQ_AF_MOE_NORM_TOPK), experts w1 = gate, w3 = up, w2 = down of intermediate_size. The HF Hub
 * layout has one tensor per expert ("block_sparse_moe.experts.E.w1.weight"); llama.cpp converts
 * Mixtral as general.architecture "llama" with llama.expert_count and stacked [E, rows, cols]
 * "ffn_*_exps" tensors (lq_arch_find_gguf("llama") keeps returning Llama: a GGUF binder picks
 * this table from expert_count). */
#include "arch.h"

static const lq_role_spec g_roles[] = {
    {LQ_ROLE_ATTN_NORM, "input_layernorm", "attn_norm", LQ_SYM_DIM, LQ_SYM_NONE, 0},
    {LQ_ROLE_Q, "self_attn.q_proj", "attn_q", LQ_SYM_QDIM, LQ_SYM_DIM, 0},
    {LQ_ROLE_K, "self_attn.k_proj", "attn_k", LQ_SYM_KVDIM, LQ_SYM_DIM, 0},
    {LQ_ROLE_V, "self_attn.v_proj", "attn_v", LQ_SYM_KVDIM, LQ_SYM_DIM, 0},
    {LQ_ROLE_O, "self_attn.o_proj", "attn_output", LQ_SYM_DIM, LQ_SYM_QDIM, 0},
    {LQ_ROLE_FFN_NORM, "post_attention_layernorm", "ffn_norm", LQ_SYM_DIM, LQ_SYM_NONE, 0},
    {LQ_ROLE_ROUTER, "block_sparse_moe.gate", "ffn_gate_inp", LQ_SYM_EXPERTS, LQ_SYM_DIM, LQ_RF_SPARSE_LAYER},
    {LQ_ROLE_EXP_GATE, "block_sparse_moe.experts.%d.w1", "ffn_gate_exps", LQ_SYM_EXPERT_HIDDEN, LQ_SYM_DIM,
     LQ_RF_PER_EXPERT | LQ_RF_SPARSE_LAYER},
    {LQ_ROLE_EXP_UP, "block_sparse_moe.experts.%d.w3", "ffn_up_exps", LQ_SYM_EXPERT_HIDDEN, LQ_SYM_DIM,
     LQ_RF_PER_EXPERT | LQ_RF_SPARSE_LAYER},
    {LQ_ROLE_EXP_DOWN, "block_sparse_moe.experts.%d.w2", "ffn_down_exps", LQ_SYM_DIM, LQ_SYM_EXPERT_HIDDEN,
     LQ_RF_PER_EXPERT | LQ_RF_SPARSE_LAYER},
};

const lq_arch lq_arch_mixtral = {
    .hf_name = "MixtralForCausalLM",
    .gguf_name = "llama",
    .roles = g_roles,
    .n_roles = sizeof g_roles / sizeof g_roles[0],
    .act = LQ_ACT_SILU,
    .features = LQ_AF_MOE_NORM_TOPK,
};
