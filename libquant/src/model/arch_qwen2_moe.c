/* arch_qwen2_moe.c - Qwen2-MoE (Qwen2MoeForCausalLM; transformers models/qwen2_moe): Qwen2's
 * attention (q/k/v biases) and, in the layers lq_config_layer_moe selects (not in
 * mlp_only_layers, (l + 1) % decoder_sparse_step == 0), a sparse MoE FFN: router mlp.gate
 * (num_experts x dim), softmax over all experts, top num_experts_per_tok, renormalised only when
 * norm_topk_prob; experts mlp.experts.E.{gate,up,down}_proj of moe_intermediate_size; plus the
 * shared expert mlp.shared_expert (a dense MLP of shared_expert_intermediate_size) scaled by
 * sigmoid(mlp.shared_expert_gate(x)). The other layers have the plain MLP of intermediate_size.
 * GGUF (llama.cpp "qwen2moe"): ffn_gate_inp, stacked ffn_{gate,up,down}_exps, ffn_*_shexp and
 * ffn_gate_inp_shexp. */
#include "arch.h"

static const lq_role_spec g_roles[] = {
    {LQ_ROLE_ATTN_NORM, "input_layernorm", "attn_norm", LQ_SYM_DIM, LQ_SYM_NONE, 0},
    {LQ_ROLE_Q, "self_attn.q_proj", "attn_q", LQ_SYM_QDIM, LQ_SYM_DIM, LQ_RF_BIAS_REQUIRED},
    {LQ_ROLE_K, "self_attn.k_proj", "attn_k", LQ_SYM_KVDIM, LQ_SYM_DIM, LQ_RF_BIAS_REQUIRED},
    {LQ_ROLE_V, "self_attn.v_proj", "attn_v", LQ_SYM_KVDIM, LQ_SYM_DIM, LQ_RF_BIAS_REQUIRED},
    {LQ_ROLE_O, "self_attn.o_proj", "attn_output", LQ_SYM_DIM, LQ_SYM_QDIM, 0},
    {LQ_ROLE_FFN_NORM, "post_attention_layernorm", "ffn_norm", LQ_SYM_DIM, LQ_SYM_NONE, 0},
    {LQ_ROLE_GATE, "mlp.gate_proj", "ffn_gate", LQ_SYM_HIDDEN, LQ_SYM_DIM, LQ_RF_DENSE_LAYER},
    {LQ_ROLE_UP, "mlp.up_proj", "ffn_up", LQ_SYM_HIDDEN, LQ_SYM_DIM, LQ_RF_DENSE_LAYER},
    {LQ_ROLE_DOWN, "mlp.down_proj", "ffn_down", LQ_SYM_DIM, LQ_SYM_HIDDEN, LQ_RF_DENSE_LAYER},
    {LQ_ROLE_ROUTER, "mlp.gate", "ffn_gate_inp", LQ_SYM_EXPERTS, LQ_SYM_DIM, LQ_RF_SPARSE_LAYER},
    {LQ_ROLE_EXP_GATE, "mlp.experts.%d.gate_proj", "ffn_gate_exps", LQ_SYM_EXPERT_HIDDEN, LQ_SYM_DIM,
     LQ_RF_PER_EXPERT | LQ_RF_SPARSE_LAYER},
    {LQ_ROLE_EXP_UP, "mlp.experts.%d.up_proj", "ffn_up_exps", LQ_SYM_EXPERT_HIDDEN, LQ_SYM_DIM,
     LQ_RF_PER_EXPERT | LQ_RF_SPARSE_LAYER},
    {LQ_ROLE_EXP_DOWN, "mlp.experts.%d.down_proj", "ffn_down_exps", LQ_SYM_DIM, LQ_SYM_EXPERT_HIDDEN,
     LQ_RF_PER_EXPERT | LQ_RF_SPARSE_LAYER},
    {LQ_ROLE_SHEXP_GATE, "mlp.shared_expert.gate_proj", "ffn_gate_shexp", LQ_SYM_SHARED_HIDDEN, LQ_SYM_DIM,
     LQ_RF_SPARSE_LAYER},
    {LQ_ROLE_SHEXP_UP, "mlp.shared_expert.up_proj", "ffn_up_shexp", LQ_SYM_SHARED_HIDDEN, LQ_SYM_DIM,
     LQ_RF_SPARSE_LAYER},
    {LQ_ROLE_SHEXP_DOWN, "mlp.shared_expert.down_proj", "ffn_down_shexp", LQ_SYM_DIM, LQ_SYM_SHARED_HIDDEN,
     LQ_RF_SPARSE_LAYER},
    {LQ_ROLE_SHEXP_ROUTER, "mlp.shared_expert_gate", "ffn_gate_inp_shexp", LQ_SYM_ONE, LQ_SYM_DIM,
     LQ_RF_SPARSE_LAYER},
};

const lq_arch lq_arch_qwen2_moe = {
    .hf_name = "Qwen2MoeForCausalLM",
    .gguf_name = "qwen2moe",
    .roles = g_roles,
    .n_roles = sizeof g_roles / sizeof g_roles[0],
    .act = LQ_ACT_SILU,
};
