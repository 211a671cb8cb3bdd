/* lq_gguf_quant.h - writing a model as GGUF (llama.cpp's format), float or quantized.
 *
 * Two parts:
 *   1. llama-quantize's type choice (compress/gguf_mix.c): the file types as llama-quantize
 *      spells them ("Q4_K_M", "Q8_0", "F16", ...; general.file_type ids of llama.h), and per
 *      tensor the ggml type llama.cpp's llama_tensor_get_type (src/llama-quant.cpp, llama.cpp
 *      0c1e57098) picks: only 2-D "*weight" tensors other than norms are quantized; the output
 *      head (and a tied token embedding) gets Q6_K unless the file type is Q8_0; the K mixes bump
 *      attn_v / ffn_down / attn_output by use_more_bits(i, n); --tensor-type PATTERN=TYPE
 *      overrides (regex searched in the GGUF name, first match wins, as std::regex_search); a type
 *      whose block size does not divide the columns falls back (Q4_K -> Q5_0, Q6_K -> Q8_0, ...,
 *      then F16). llama.cpp walks the tensors in its loader's order (layer, then name) and its
 *      attn_v / ffn_down counters follow that walk, so the plan does too.
 *   2. The driver (compress/gguf_export.c): checkpoint in (HF directory, llama2.c, GGUF),
 *      GGUF out, through the block formats' quantize_ref (kernels' traits rows with gguf_type):
 *      the same float input gives llama-quantize's bytes.
 */
#ifndef LQ_GGUF_QUANT_H
#define LQ_GGUF_QUANT_H

#include <stdbool.h>
#include <stdint.h>

#include "lq_pool.h"
#include "lq_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ggml type ids (ggml.h) of the types the writer knows. */
enum {
    LQ_GGML_F32 = 0, LQ_GGML_F16 = 1, LQ_GGML_Q4_0 = 2, LQ_GGML_Q4_1 = 3, LQ_GGML_Q5_0 = 6,
    LQ_GGML_Q5_1 = 7, LQ_GGML_Q8_0 = 8, LQ_GGML_Q2_K = 10, LQ_GGML_Q3_K = 11, LQ_GGML_Q4_K = 12,
    LQ_GGML_Q5_K = 13, LQ_GGML_Q6_K = 14, LQ_GGML_IQ4_NL = 20, LQ_GGML_IQ4_XS = 23, LQ_GGML_BF16 = 30,
};

/* ggml's name of a type ("q4_K", "f16"); NULL if unknown. */
const char *lq_ggml_type_name(int type);
/* Case-insensitive ggml type name -> id; -1 if unknown. */
int lq_ggml_type_parse(const char *name);

/* A llama-quantize file type. */
typedef struct lq_gguf_ftype {
    const char *name;  /* "Q4_K_M" (llama-quantize's spelling) */
    int ftype;         /* general.file_type (llama_ftype) */
    int default_type;  /* ggml type of an ordinary weight */
} lq_gguf_ftype;

/* Case-insensitive lookup (aliases Q3_K, Q4_K, Q5_K = the _M mixes); NULL if unknown. */
const lq_gguf_ftype *lq_gguf_ftype_find(const char *name);
/* "F32, F16, BF16, Q8_0, ..." for messages. */
const char *lq_gguf_ftype_list(void);

/* --tensor-type PATTERN=TYPE (pattern lower-cased, as llama-quantize does). */
typedef struct lq_gguf_tensor_rule {
    const char *pattern;
    int type;
} lq_gguf_tensor_rule;

/* What the plan needs of a tensor: its GGUF name and ggml shape (ne[0] = columns). */
typedef struct lq_gguf_plan_tensor {
    const char *name;
    int n_dims;
    int64_t ne[4];
    int type;        /* out: the ggml type to write */
    bool fell_back;  /* out: the chosen type did not fit the columns */
} lq_gguf_plan_tensor;

typedef struct lq_gguf_plan_opts {
    const lq_gguf_ftype *ftype;
    const lq_gguf_tensor_rule *rules;
    int n_rules;
    bool pure;             /* llama-quantize --pure: no mix rules (fallback still applies) */
    int output_type;       /* --output-tensor-type; -1 = the mix's */
    int token_embd_type;   /* --token-embedding-type; -1 = the mix's */
    bool falcon;           /* general.architecture "falcon" (its own rules) */
    int n_layers;          /* block_count */
    int n_head, n_head_kv; /* attn_v rules use n_gqa = n_head / n_head_kv */
    int n_expert;          /* 0 or 1: dense */
    bool has_imatrix;      /* quantizing with an importance matrix (llama.cpp's qs.has_imatrix) */
} lq_gguf_plan_opts;

/* Fill t[i].type for every tensor. Tensors that are not quantized keep F32 (1-D, norms) or,
 * for a float file type, get it. LQ_ERR_INVALID_ARG for a bad --tensor-type regex (named). */
lq_status lq_gguf_plan(const lq_gguf_plan_opts *o, lq_gguf_plan_tensor *t, int64_t n);

/* ---- the driver ------------------------------------------------------------------------------ */

typedef void (*lq_gguf_progress_fn)(void *user, int64_t done, int64_t total, const char *tensor);

typedef struct lq_gguf_export_opts {
    const char *type;            /* llama-quantize file type name; NULL = "F32" */
    const lq_gguf_tensor_rule *rules;
    int n_rules;
    bool pure;
    int output_type, token_embd_type; /* -1: the mix's */
    const char *tokenizer;       /* tokenizer file to embed (tokenizer.json, llama2.c tokenizer.bin,
                                  * or a .gguf whose tokenizer.* pairs are copied); NULL: the
                                  * model's own (a GGUF input's pairs, an HF dir's tokenizer.json) */
    const char *name;            /* general.name; NULL: the input's base name */
    lq_pool *pool;               /* borrowed; NULL ok */
    /* Importance matrix (llama-quantize --imatrix; borrowed, NULL: none): each quantized tensor
     * with an entry of its GGUF name gets the weighted quantizers (lq_quant_params.col_weight),
     * the plan llama.cpp's imatrix rules, the file llama-quantize's quantize.imatrix.* keys.
     * imatrix_path is what quantize.imatrix.file records. */
    struct lq_imatrix *imatrix;
    const char *imatrix_path;
    /* > 0: choose each quantized tensor's block type to hit this many bits per weight over the
     * whole file's tensors (norms and other float tensors included), minimizing the summed
     * imatrix-weighted relative output error (compress/gguf_automix.c); the mix of `type` then
     * only says which tensors are quantized. */
    double target_bpw;
    lq_gguf_progress_fn progress;
    void *user;
} lq_gguf_export_opts;

typedef struct lq_gguf_export_tensor {
    char name[96];               /* GGUF name */
    int type;                    /* ggml type written */
    int64_t rows, cols;
    uint64_t bytes;
    bool fell_back;
    double automix_err;          /* --target-bpw: the error proxy of the chosen type; -1 otherwise */
} lq_gguf_export_tensor;

typedef struct lq_gguf_export_summary {
    int ftype;                   /* general.file_type */
    int64_t n_tensors;
    uint64_t bytes_in, bytes_out; /* tensor payloads */
    int64_t params;
    double bits_per_weight;      /* bytes_out * 8 / params */
    int64_t n_by_type[32];       /* tensors per ggml type (< 32) */
    lq_gguf_export_tensor *tensors; /* n_tensors entries, file order; lq_gguf_export_summary_free */
    double seconds;
    /* --target-bpw: the budget in bytes of the chosen tensors, what they take, the largest
     * single-tensor step (budget - taken < it), the summed error proxy */
    uint64_t automix_budget, automix_bytes, automix_max_step;
    double automix_err;
} lq_gguf_export_summary;

void lq_gguf_export_summary_free(lq_gguf_export_summary *s);

/* Write the checkpoint model_path (HF directory, llama2.c .bin with opts->tokenizer, or a GGUF
 * file) as the GGUF file out_path (temporary name + rename). Quantized inputs are dequantized to
 * f32 first (llama-quantize --allow-requantize). Metadata as llama.cpp writes it (general.*, the
 * architecture's keys, tokenizer.ggml.*); llama q/k rows in llama.cpp's interleaved order. */
lq_status lq_gguf_export(const char *model_path, const char *out_path, const lq_gguf_export_opts *opts,
                         lq_gguf_export_summary *summary);

#ifdef __cplusplus
}
#endif
#endif
