/* arch_llama.c - Llama (Llama 2, Llama 3 with llama3 RoPE scaling; llama2.c checkpoints). */
#include "arch.h"

/* attention_bias / mlp_bias (LlamaConfig) add optional biases to every projection. */
static const lq_role_spec g_roles[] = {
    {LQ_ROLE_ATTN_NORM, "input_layernorm", "attn_norm", LQ_SYM_DIM, LQ_SYM_NONE, 0},
    {LQ_ROLE_Q, "self_attn.q_proj", "attn_q", LQ_SYM_QDIM, LQ_SYM_DIM, LQ_RF_BIAS},
    {LQ_ROLE_K, "self_attn.k_proj", "attn_k", LQ_SYM_KVDIM, LQ_SYM_DIM, LQ_RF_BIAS},
    {LQ_ROLE_V, "self_attn.v_proj", "attn_v", LQ_SYM_KVDIM, LQ_SYM_DIM, LQ_RF_BIAS},
    {LQ_ROLE_O, "self_attn.o_proj", "attn_output", LQ_SYM_DIM, LQ_SYM_QDIM, LQ_RF_BIAS},
    {LQ_ROLE_FFN_NORM, "post_attention_layernorm", "ffn_norm", LQ_SYM_DIM, LQ_SYM_NONE, 0},
    {LQ_ROLE_GATE, "mlp.gate_proj", "ffn_gate", LQ_SYM_HIDDEN, LQ_SYM_DIM, LQ_RF_BIAS},
    {LQ_ROLE_UP, "mlp.up_proj", "ffn_up", LQ_SYM_HIDDEN, LQ_SYM_DIM, LQ_RF_BIAS},
    {LQ_ROLE_DOWN, "mlp.down_proj", "ffn_down", LQ_SYM_DIM, LQ_SYM_HIDDEN, LQ_RF_BIAS},
};

const lq_arch lq_arch_llama = {
    .hf_name = "LlamaForCausalLM",
    .gguf_name = "llama",
    .roles = g_roles,
    .n_roles = sizeof g_roles / sizeof g_roles[0],
    .act = LQ_ACT_SILU,
    .features = LQ_AF_GGUF_QK_PERMUTED | LQ_AF_GGUF_ROPE_FREQS,
};
