/* arch_gemma3.c - Gemma 3 text models (Gemma3ForCausalLM; transformers models/gemma3):
 *   - the embedding is scaled by sqrt(hidden_size) in the model dtype (LQ_AF_EMBED_SCALE);
 *   - every RMSNorm multiplies by (1 + w) (norm_offset 1, folded into the f32 copy at bind time:
 *     torch computes 1.0 + w.float() in f32 too), the final norm and the q/k norms included;
 *   - four norms per layer: input_layernorm -> attention -> post_attention_layernorm -> residual,
 *     pre_feedforward_layernorm -> MLP -> post_feedforward_layernorm -> residual;
 *   - the MLP is gelu_pytorch_tanh(gate) * up -> down (GeGLU);
 *   - per-head q/k RMSNorm before RoPE (as Qwen3); head_dim is its own config key;
 *   - scores scale 1/sqrt(query_pre_attn_scalar), not 1/sqrt(head_dim) (lq_config.attn_scalar);
 *   - layer_types (or sliding_window_pattern) mark sliding-window and global layers, and the
 *     sliding ones rotate with their own base (rope_parameters.sliding_attention.rope_theta or
 *     rope_local_base_freq: lq_config.rope_local_theta, the LQ_ROPE_LOCAL table).
 * The HF names differ from Llama's: FFN_NORM is "pre_feedforward_layernorm" and
 * "post_attention_layernorm" is the POST_ATTN_NORM (after attention, not before the MLP). */
#include "arch.h"

static const lq_role_spec g_roles[] = {
    {LQ_ROLE_ATTN_NORM, "input_layernorm", "attn_norm", LQ_SYM_DIM, LQ_SYM_NONE, 0},
    {LQ_ROLE_Q, "self_attn.q_proj", "attn_q", LQ_SYM_QDIM, LQ_SYM_DIM, LQ_RF_BIAS},
    {LQ_ROLE_K, "self_attn.k_proj", "attn_k", LQ_SYM_KVDIM, LQ_SYM_DIM, LQ_RF_BIAS},
    {LQ_ROLE_V, "self_attn.v_proj", "attn_v", LQ_SYM_KVDIM, LQ_SYM_DIM, LQ_RF_BIAS},
    {LQ_ROLE_O, "self_attn.o_proj", "attn_output", LQ_SYM_DIM, LQ_SYM_QDIM, LQ_RF_BIAS},
    {LQ_ROLE_Q_NORM, "self_attn.q_norm", "attn_q_norm", LQ_SYM_HEAD_DIM, LQ_SYM_NONE, 0},
    {LQ_ROLE_K_NORM, "self_attn.k_norm", "attn_k_norm", LQ_SYM_HEAD_DIM, LQ_SYM_NONE, 0},
    {LQ_ROLE_POST_ATTN_NORM, "post_attention_layernorm", "post_attention_norm", LQ_SYM_DIM, LQ_SYM_NONE, 0},
    {LQ_ROLE_FFN_NORM, "pre_feedforward_layernorm", "ffn_norm", LQ_SYM_DIM, LQ_SYM_NONE, 0},
    {LQ_ROLE_GATE, "mlp.gate_proj", "ffn_gate", LQ_SYM_HIDDEN, LQ_SYM_DIM, 0},
    {LQ_ROLE_UP, "mlp.up_proj", "ffn_up", LQ_SYM_HIDDEN, LQ_SYM_DIM, 0},
    {LQ_ROLE_DOWN, "mlp.down_proj", "ffn_down", LQ_SYM_DIM, LQ_SYM_HIDDEN, 0},
    {LQ_ROLE_POST_FFN_NORM, "post_feedforward_layernorm", "post_ffw_norm", LQ_SYM_DIM, LQ_SYM_NONE, 0},
};

const lq_arch lq_arch_gemma3 = {
    .hf_name = "Gemma3ForCausalLM",
    .gguf_name = "gemma3",
    .roles = g_roles,
    .n_roles = sizeof g_roles / sizeof g_roles[0],
    .act = LQ_ACT_GELU_TANH,
    .norm_offset = 1.0f,
    .features = LQ_AF_EMBED_SCALE,
};
