/* lq_checkpoint.h - a model checkpoint as a config plus a set of named, mapped tensors.
 *
 * Every on-disk format is loaded into the same shape: an lq_config and tensors named the Hugging
 * Face way ("model.layers.3.self_attn.q_proj.weight"). Loaders:
 *   - Hugging Face directory: config.json + model.safetensors, or the sharded
 *     model.safetensors.index.json; tensors are views into the mmapped shards.
 *   - llama2.c legacy .bin (7 x int32 header; negative vocab_size = separate classifier): the
 *     stacked arrays are sliced into per-layer views of the mapped file, named as HF names them.
 *     llama2.c stores q/k rows with interleaved rotary pairs, so such a checkpoint has
 *     config.rope_interleaved = true (the engine then rotates adjacent pairs); HF layout rotates
 *     the two halves of each head.
 *   - GGUF v2/v3 (detected by its magic; io/checkpoint_gguf.c): the config from "<arch>.*"
 *     metadata, tensors renamed from GGUF ("blk.3.attn_q.weight") to HF names through the
 *     architecture descriptor; dims reversed (GGUF ne[0] is the row length). F32/F16/BF16 keep
 *     their dtype; block formats (Q8_0, Q4_K, ...) are LQ_DTYPE_BLOCKS views naming their
 *     lq_wfmt. llama.cpp permutes "llama" q/k rows as llama2.c does, so those set
 *     rope_interleaved; a missing "output.weight" is a tied head.
 * Nothing is copied: the weights stay in the mapping, in their stored dtype.
 */
#ifndef LQ_CHECKPOINT_H
#define LQ_CHECKPOINT_H

#include "lq_status.h"
#include "lq_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Most layers a per-layer size list may describe (Llama 3.1 405B has 126). */
#define LQ_MAX_LAYERS 256

/* RoPE frequency scaling (HF rope_type). */
typedef enum lq_rope_type { LQ_ROPE_DEFAULT = 0, LQ_ROPE_LLAMA3, LQ_ROPE_LINEAR } lq_rope_type;

/* Architecture hyper-parameters (HF config.json names in comments). Architecture-neutral:
 * which tensors a model has is the architecture descriptor's business (model load), so
 * checkpoints of any decoder whose config has these keys open. */
typedef struct lq_config {
    char arch[64];          /* "LlamaForCausalLM" (architectures[0]) */
    char model_type[32];    /* "llama" (model_type; written back by lq_config_to_json) */
    int dim;                /* hidden_size */
    int hidden_dim;         /* intermediate_size */
    int n_layers;           /* num_hidden_layers */
    int n_heads;            /* num_attention_heads */
    int n_kv_heads;         /* num_key_value_heads (defaults to n_heads) */
    int head_dim;           /* head_dim (defaults to dim / n_heads) */
    int vocab_size;         /* vocab_size */
    int max_seq_len;        /* max_position_embeddings */
    float rope_theta;       /* rope_theta, or rope_parameters.rope_theta (transformers 5); 10000 */
    float norm_eps;         /* rms_norm_eps (default 1e-5) */
    bool tied_embeddings;   /* tie_word_embeddings: output head = embedding matrix */
    bool rope_interleaved;  /* true: rotate pairs (2i, 2i+1) (llama2.c / GGUF); false: HF halves */
    /* The norm weights already hold the architecture's norm offset (GGUF: llama.cpp's converter
     * stores Gemma's (1 + w)), so binding must not add it again. Not a config.json key. */
    bool norm_offset_folded;
    /* rope_scaling (transformers < 5) or rope_parameters (5): {"rope_type": "llama3" | "linear",
     * "factor", ...}; LQ_ROPE_DEFAULT (factor 0) = none. Other types are refused by name. */
    lq_rope_type rope_type;
    float rope_scale_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_orig_max_pos;
    /* Sliding-window attention: a query at position p sees keys p - sliding_window + 1 .. p on
     * the layers it applies to (0 = none). "sliding_window" (Mistral, Qwen2 with
     * use_sliding_window), per layer from "layer_types" or Qwen2's "max_window_layers";
     * layer_full_attention[l] = 1 exempts layer l. Read it through lq_config_layer_window(). */
    int sliding_window;
    unsigned char layer_full_attention[LQ_MAX_LAYERS];
    /* RoPE base of the sliding-window layers when it differs from the global one (Gemma 3:
     * rope_parameters.sliding_attention.rope_theta, transformers < 5 "rope_local_base_freq");
     * 0 = the same tables everywhere. Always the default rope type (no scaling). */
    float rope_local_theta;
    /* Attention scores are q.k / sqrt(query_pre_attn_scalar) (Gemma); 0 = head_dim. */
    float attn_scalar;
    int bos_id, eos_id;     /* bos_token_id / eos_token_id (-1 unknown) */
    /* Per-layer sizes of a structurally pruned model (config.json "layer_intermediate_sizes",
     * "layer_num_attention_heads", "layer_num_key_value_heads"; lists of num_hidden_layers
     * ints). An entry 0 (or n_layers > LQ_MAX_LAYERS) means the uniform value above, which is
     * then the largest of the layer values, so buffers sized by it fit every layer. Read them
     * through lq_config_layer_*(). */
    int layer_hidden_dim[LQ_MAX_LAYERS];
    int layer_n_heads[LQ_MAX_LAYERS];
    int layer_n_kv_heads[LQ_MAX_LAYERS];
    /* Sparse mixture of experts (Mixtral, Qwen2-MoE); n_experts 0 = a dense model.
     * n_experts = "num_local_experts" (Mixtral) or "num_experts" (Qwen2-MoE); n_experts_used =
     * "num_experts_per_tok"; expert_hidden_dim = "moe_intermediate_size" (Mixtral's experts are
     * "intermediate_size" wide); shared_hidden_dim = "shared_expert_intermediate_size" (0: no
     * shared expert); norm_topk_prob: renormalise the k routing weights to sum 1. A layer has
     * experts unless layer_dense_ffn[l] ("mlp_only_layers", "decoder_sparse_step"): then it has
     * the plain MLP of intermediate_size. Read it through lq_config_layer_moe(). */
    int n_experts, n_experts_used, expert_hidden_dim, shared_hidden_dim;
    bool norm_topk_prob;
    unsigned char layer_dense_ffn[LQ_MAX_LAYERS];
} lq_config;

/* A layer's size: the per-layer value when set, else the uniform one. */
static inline int lq_config_layer_hidden(const lq_config *c, int l) {
    return l >= 0 && l < LQ_MAX_LAYERS && c->layer_hidden_dim[l] > 0 ? c->layer_hidden_dim[l] : c->hidden_dim;
}
static inline int lq_config_layer_heads(const lq_config *c, int l) {
    return l >= 0 && l < LQ_MAX_LAYERS && c->layer_n_heads[l] > 0 ? c->layer_n_heads[l] : c->n_heads;
}
static inline int lq_config_layer_kv_heads(const lq_config *c, int l) {
    return l >= 0 && l < LQ_MAX_LAYERS && c->layer_n_kv_heads[l] > 0 ? c->layer_n_kv_heads[l] : c->n_kv_heads;
}
/* Sliding window of layer l (0: full causal attention). */
static inline int lq_config_layer_window(const lq_config *c, int l) {
    if (c->sliding_window <= 0) return 0;
    return l >= 0 && l < LQ_MAX_LAYERS && c->layer_full_attention[l] ? 0 : c->sliding_window;
}
/* Whether layer l's FFN is a sparse mixture of experts. */
static inline bool lq_config_layer_moe(const lq_config *c, int l) {
    return c->n_experts > 0 && !(l >= 0 && l < LQ_MAX_LAYERS && c->layer_dense_ffn[l]);
}
/* "default", "llama3", "linear". */
const char *lq_rope_type_name(lq_rope_type t);
/* Whether any layer differs from the uniform sizes. */
bool lq_config_has_layer_sizes(const lq_config *c);

typedef enum lq_ckpt_kind {
    LQ_CKPT_HF_DIR = 0,
    LQ_CKPT_LLAMA2C = 1,
    LQ_CKPT_GGUF = 2,
} lq_ckpt_kind;

typedef struct lq_checkpoint lq_checkpoint;

/* Open a checkpoint: a directory (Hugging Face), a GGUF file (by its magic) or a llama2.c .bin.
 * Validates the config and each tensor against its file; whether the tensor set is a model the
 * engine runs is checked by lq_model_load (the architecture descriptor), so tools that only
 * rewrite Linear layers work on any architecture. A checkpoint without an lm_head tensor is
 * marked tied_embeddings. */
lq_status lq_checkpoint_open(const char *path, lq_checkpoint **out);
void lq_checkpoint_close(lq_checkpoint *c);

lq_ckpt_kind lq_checkpoint_kind(const lq_checkpoint *c);
const char *lq_checkpoint_path(const lq_checkpoint *c);
const lq_config *lq_checkpoint_config(const lq_checkpoint *c);
int64_t lq_checkpoint_count(const lq_checkpoint *c);
/* Tensors in a stable order (file order; for llama2.c, HF order by layer). */
const lq_tensor *lq_checkpoint_get(const lq_checkpoint *c, int64_t i);
const lq_tensor *lq_checkpoint_find(const lq_checkpoint *c, const char *name);
/* Total bytes of the checkpoint's files on disk. */
uint64_t lq_checkpoint_file_bytes(const lq_checkpoint *c);
/* LQ_ERR_FORMAT naming the checkpoint, the tensor and the element when a float weight is NaN or
 * Inf ("refusing to <verb> a model with NaN/Inf weights"); LQ_OK for c == NULL. The one refusal
 * of non-finite weights: quant-ptq and quant-prune as input (lq_check_float_input), every tool
 * that runs a model at load (lq_model_load) (issue 10: refuse, not warn). */
lq_status lq_checkpoint_check_finite(const lq_checkpoint *c, const char *verb);
/* ---- RoPE frequency factors (llama.cpp's rope_freqs tensor) -------------------------------- *
 * llama.cpp stores Llama 3's RoPE scaling not as metadata but as a tensor of head_dim / 2 F32
 * factors: pair i turns by pos * base^(-2i / head_dim) / f[i] (ggml_rope_ext's freq_factors).
 * A GGUF checkpoint keeps the tensor under its GGUF name (Hugging Face has no such tensor; its
 * config says rope_scaling {"rope_type": "llama3", ...} instead). */
#define LQ_ROPE_FREQS_TENSOR "rope_freqs.weight"

/* The factors of checkpoint c into out (head_dim / 2 floats), *present = whether c has the
 * tensor. LQ_ERR_FORMAT naming the tensor when it is not F32, not 1-D of head_dim / 2 values, or
 * holds a value that is not finite and > 0. */
lq_status lq_checkpoint_rope_freqs(const lq_checkpoint *c, float *out, bool *present);
/* The factors llama.cpp's convert_hf_to_gguf.py (LlamaModel.generate_extra_tensors) writes for
 * cfg's llama3 rope_scaling (rope_theta, head_dim, factor, low/high_freq_factor,
 * original_max_position_embeddings), head_dim / 2 floats, computed in f32 as its torch code does
 * (io/rope_freqs.c says how far from bit-exact that can be). */
void lq_rope_llama3_factors(const lq_config *cfg, float *out);
/* The inverse for GGUF -> Hugging Face: a llama3 rope_scaling reproducing the factors f
 * (head_dim / 2) within 4e-6 relative, set in cfg (rope_type, factor, low/high_freq_factor,
 * rope_orig_max_pos); all factors 1: cfg unchanged (no scaling). LQ_ERR_UNSUPPORTED naming the
 * tensor and `path` when no llama3 scaling gives them. */
lq_status lq_rope_llama3_from_factors(const float *f, lq_config *cfg, const char *path);

/* Raw JSON text of config.json (HF dirs), NULL for llama2.c. Lets writers carry unknown keys. */
const char *lq_checkpoint_config_json(const lq_checkpoint *c);

/* Parse an HF config.json (text) into cfg. `path` is used in error messages only. */
lq_status lq_config_parse_json(const char *json_text, const char *path, lq_config *cfg);
/* Render cfg as an HF config.json (architectures = [cfg->arch]); caller frees the string. */
lq_status lq_config_to_json(const lq_config *cfg, char **out_json);
/* Write `json_text` (a newline added if it lacks one) as <dir>/config.json, durably (lq_file.h):
 * the one config.json writer every tool and driver uses. */
lq_status lq_config_json_save(const char *dir, const char *json_text);
/* Copy the files a Hugging Face directory carries besides weights and config.json (tokenizer.json,
 * tokenizer_config.json, generation_config.json, special_tokens_map.json), those `model_dir` has,
 * into `dir` durably, so a written model loads with its tokenizer. A llama2.c file: nothing. */
lq_status lq_checkpoint_copy_side_files(const char *model_dir, const char *dir);

#ifdef __cplusplus
}
#endif
#endif
