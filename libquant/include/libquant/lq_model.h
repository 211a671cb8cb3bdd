/* lq_model.h - a decoder model bound to its checkpoint, and the forward pass.
 *
 * lq_model holds weight views (lq_weight, one per linear layer) into the checkpoint mapping;
 * only small derived buffers (norm vectors and biases as f32, RoPE frequencies) are allocated.
 * Which tensors a model has is its architecture descriptor's (libquant/src/model/arch_*.c:
 * Llama, Mistral, ...); one layer program runs every architecture on every backend.
 * lq_session holds everything that changes while running: the KV cache and scratch activations.
 * Many sessions may share one model.
 *
 * Data flow of lq_forward for a batch of n tokens at positions pos..pos+n-1:
 *   embed rows -> per layer: rmsnorm -> q,k,v = matmul (+ bias) -> rope(q,k) -> append k,v to
 *   cache -> causal GQA attention (sliding window where configured) -> o matmul -> residual ->
 *   rmsnorm -> gate,up matmul -> swiglu -> down matmul -> residual -> final rmsnorm -> output
 *   head -> logits.
 * n > 1 (prefill) runs every matmul as one GEMM over the batch; n == 1 (decode) as GEMV.
 */
#ifndef LQ_MODEL_H
#define LQ_MODEL_H

#include "lq_status.h"
#include "lq_checkpoint.h"
#include "lq_format.h"
#include "lq_kv.h"
#include "lq_pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A model: its checkpoint, its architecture descriptor (chosen by config.json's
 * architectures[0]) and the tensors bound by role. Opaque; read it through the accessors. */
typedef struct lq_model lq_model;

/* Where a session computes. */
typedef enum lq_device { LQ_DEVICE_CPU = 0, LQ_DEVICE_CUDA = 1, LQ_DEVICE_COUNT } lq_device;

/* "cpu" / "cuda" -> the device (LQ_DEVICE_COUNT if unknown), and back. */
lq_device lq_device_from_name(const char *name);
const char *lq_device_name(lq_device d);

/* Open a checkpoint (HF directory or llama2.c .bin), select its architecture descriptor and
 * bind its weights; LQ_ERR_UNSUPPORTED naming the architecture when there is no descriptor, a
 * one-line error naming the tensor when the tensor set does not match it, or when a float
 * weight is NaN or Inf (lq_checkpoint_check_finite: a model that would print PPL = nan). */
lq_status lq_model_load(const char *path, lq_model **out);
void lq_model_free(lq_model *m);
const lq_config *lq_model_config(const lq_model *m);
const lq_checkpoint *lq_model_checkpoint(const lq_model *m);
/* Number of linear layers inside the decoder layers (every layer's projections). */
int lq_model_linear_count(const lq_model *m);
/* The i-th of them (layer order, then the architecture's role order); its module name
 * ("model.layers.0.self_attn.q_proj") into name when name is not NULL. NULL if out of range. */
const lq_weight *lq_model_linear(const lq_model *m, int i, char *name, size_t cap);
/* A linear layer by module name: "model.layers.3.mlp.down_proj", "lm_head" (the embedding when
 * tied) or "model.embed_tokens"; NULL when the model has none. */
const lq_weight *lq_model_find_linear(const lq_model *m, const char *module);
/* Bytes of every weight a decode step reads, counted from the stored tensors: every linear
 * layer's payload + scales + zero points + g_idx as they lie in the checkpoint, the head (its own
 * tensors, or the whole tied embedding), one embedding row and the norms. */
uint64_t lq_model_weight_bytes_per_token(const lq_model *m);
/* Number of parameters of the model (all tensors, tied head counted once). */
int64_t lq_model_param_count(const lq_model *m);

/* Mutable weights (sequential calibration): make the decoder Linear `module` compute with w
 * (same rows x cols, any format; the caller keeps w's buffers alive while m uses them, and may
 * replace it again). CPU models only (LQ_ERR_UNSUPPORTED after lq_model_to_device);
 * LQ_ERR_NOT_FOUND for a module the model has no decoder Linear of (lm_head included). */
lq_status lq_model_replace_linear(lq_model *m, const char *module, const lq_weight *w);

typedef struct lq_session lq_session;

/* n_ctx <= 0: the model's max_seq_len. pool may be NULL (single thread); it is borrowed. */
lq_status lq_session_create(const lq_model *m, int n_ctx, lq_pool *pool, lq_session **out);
void lq_session_free(lq_session *s);
int lq_session_n_ctx(const lq_session *s);

/* Run n tokens at positions pos .. pos+n-1 (the cache must hold positions < pos already).
 * logits: if all_logits, n x vocab floats (one row per token), else vocab floats for the last
 * token. Returns LQ_ERR_INVALID_ARG if pos + n exceeds n_ctx or a token id is out of range. */
lq_status lq_forward(lq_session *s, const int32_t *tokens, int n, int pos, float *logits,
                     bool all_logits);

/* Observe the residual stream x (n x dim, f32, row t = position pos + t) after every layer
 * (layer = 0 .. n_layers-1) and after the final norm (layer = n_layers): distillation features,
 * calibration statistics. The view is valid only during the call. NULL fn removes the hook. */
typedef void (*lq_layer_hook)(void *user, int layer, const float *x, int n, int pos);
void lq_session_set_layer_hook(lq_session *s, lq_layer_hook fn, void *user);

/* One Linear's input, shown before its matmul (lq_session_set_linear_hook): calibration
 * algorithms (imatrix statistics, GPTQ Hessians) observe exactly what each layer multiplies. */
typedef struct lq_linear_input {
    int layer;           /* decoder layer 0 .. n_layers-1; n_layers for the output head */
    const char *role;    /* "q", "k", "v", "o", "gate", "up", "down", "head" */
    const char *module;  /* Hugging Face module name: "model.layers.3.mlp.up_proj", "lm_head" */
    int expert;          /* expert of an MoE layer; -1 otherwise */
    const float *x;      /* (n_tokens, cols) row-major f32; valid during the call only */
    int n_tokens;        /* rows multiplied (the head of a last-logits forward: 1) */
    int64_t cols;        /* the Linear's input features */
} lq_linear_input;
typedef void (*lq_linear_hook)(void *user, const lq_linear_input *in);
/* Call fn before every Linear's matmul (q, k and v each see the same input). CPU sessions only:
 * lq_forward on a device session with a hook fails with LQ_ERR_UNSUPPORTED. NULL removes it. */
void lq_session_set_linear_hook(lq_session *s, lq_linear_hook fn, void *user);

/* One decoder layer at a time (sequential calibration; CPU sessions only). lq_session_embed
 * writes the residual stream lq_forward starts from (n x dim f32: embedding rows, scaled where
 * the architecture scales them); lq_session_forward_layer runs decoder layer `layer` on x
 * (n x dim, in place) at positions pos..pos+n-1, writing that layer's KV cache rows and showing
 * each Linear's input to the linear hook, exactly as inside lq_forward. */
lq_status lq_session_embed(lq_session *s, const int32_t *tokens, int n, float *x);
lq_status lq_session_forward_layer(lq_session *s, int layer, float *x, int n, int pos);
/* lq_session_forward_layer for the linear hook only: every Linear of the layer sees its input
 * as there, but x is left as it was and the layer's output is not computed. The MLP's down
 * projections (dense, expert and shared-expert) feed nothing but the residual stream, so their
 * matmuls are skipped: a calibration pass that only collects statistics saves about a quarter
 * of a dense layer's multiply work. */
lq_status lq_session_observe_layer(lq_session *s, int layer, const float *x, int n, int pos);
/* Half a decoder layer, in place on x as lq_session_forward_layer: LQ_BLOCK_ATTN is
 * x += attention(norm(x)) (writing the KV cache rows), LQ_BLOCK_FFN x += mlp(norm(x));
 * forward_layer is the two in turn. AWQ's grid search re-runs one block per candidate scale. */
typedef enum lq_layer_block { LQ_BLOCK_ATTN = 0, LQ_BLOCK_FFN = 1 } lq_layer_block;
lq_status lq_session_forward_block(lq_session *s, int layer, lq_layer_block block, float *x, int n, int pos);

/* Copy the KV cache of positions [0, n_pos) from src into dst (same model, dst->n_ctx >= n_pos):
 * beam search forks a hypothesis without recomputing its prefix. */
lq_status lq_session_copy_cache(lq_session *dst, const lq_session *src, int n_pos);

/* Upload the model's weights once to device d (LQ_DEVICE_CPU drops a device copy): from then
 * on lq_session_create makes sessions on d, so the eval harness and tools run there unchanged.
 * LQ_ERR_UNSUPPORTED with a one-line reason when the build has no CUDA or there is no GPU. */
lq_status lq_model_to_device(lq_model *m, lq_device d);
/* The device lq_session_create uses for m. */
lq_device lq_model_device(const lq_model *m);

/* lq_session_create on an explicit device. A CUDA session keeps its KV cache and activations
 * on the GPU (the model must have been moved there with lq_model_to_device); lq_forward then
 * uploads the token ids and downloads the logits, nothing else. Layer hooks are CPU-only:
 * lq_forward on a device session with a hook fails with LQ_ERR_UNSUPPORTED. */
lq_status lq_session_create_ex(const lq_model *m, int n_ctx, lq_pool *pool, lq_device device,
                               lq_session **out);
lq_device lq_session_device(const lq_session *s);

/* The element type of the KV cache of sessions created on m from now on (lq_kv.h: f32, f16,
 * q8 or fp8 with per-token per-head scales); like lq_model_to_device, tools set it once and the
 * eval harness runs unchanged. Compact caches are CPU sessions, single-sequence or batched
 * (lq_batch: its pages hold rows of the type); a session on a device table refuses any type but
 * f32 with a one-line reason naming the backend. */
lq_status lq_model_set_kv_cache(lq_model *m, lq_kv_type t);
lq_kv_type lq_model_kv_cache(const lq_model *m);
/* Static per-head scales of a q8 / fp8 cache (compressed-tensors' kv_cache_scheme: calibrated
 * k_scale / v_scale, which a checkpoint carrying them sets at load): k_scale and v_scale hold
 * n_layers * n_kv_heads floats (layer-major, the config's n_kv_heads), each > 0 and finite.
 * Rows are then their codes alone (1 byte per value). NULL, NULL: dynamic per-token scales. */
lq_status lq_model_set_kv_scales(lq_model *m, const float *k_scale, const float *v_scale);
/* Whether m has static cache scales (then read them with lq_model_kv_scale). */
bool lq_model_kv_static(const lq_model *m);
/* The static scale of kv head h of layer l, K (v false) or V; 0 when m has none. */
float lq_model_kv_scale(const lq_model *m, int layer, bool v, int head);
/* Largest |K| and |V| per (layer, kv head) over positions [0, n_pos) of an f32-cache session:
 * k_amax and v_amax (n_layers * n_kv_heads, layer-major) are raised to them, so calling this after
 * each calibration sample accumulates the maxima the static scales come from. */
lq_status lq_session_kv_absmax(const lq_session *s, int n_pos, float *k_amax, float *v_amax);
/* The session's KV-cache element type. */
lq_kv_type lq_session_kv_cache(const lq_session *s);
/* Bytes a cache of type t holds per position for m: K and V of every layer, scales included. */
size_t lq_model_kv_bytes_per_pos(const lq_model *m, lq_kv_type t);

#ifdef __cplusplus
}
#endif
#endif
