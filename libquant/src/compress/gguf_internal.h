/* gguf_internal.h - the GGUF export driver's parts (gguf_meta.c, gguf_export.c). */
#ifndef LQ_GGUF_INTERNAL_H
#define LQ_GGUF_INTERNAL_H

#include <stdbool.h>

#include "arch.h"
#include "libquant/lq_checkpoint.h"
#include "libquant/lq_gguf.h"
#include "libquant/lq_gguf_quant.h"
#include "libquant/lq_gguf_write.h"

/* GGUF name of a checkpoint tensor (HF name) into buf: token_embd / output_norm / output,
 * rope_freqs (kept, where the architecture has it), or "blk.N.<role's gguf name>.weight|bias".
 * *role receives the lq_role (-1 for the global ones),
 * *layer the layer. False when the name is none of these (the caller names it). */
bool lq_gguf_name_of(const lq_arch *a, const char *hf, char *buf, size_t cap, int *role, int *layer);

/* general.* and "<arch>.*" pairs of a float checkpoint's config (convert_hf_to_gguf.py's keys).
 * LQ_ERR_UNSUPPORTED naming what GGUF (or this writer) cannot carry: per-layer sizes, llama3
 * RoPE scaling in an architecture without llama.cpp's rope_freqs tensor (where it has one the
 * scaling is that tensor, written by gguf_export.c, and no key), Gemma 3 from an HF directory. */
lq_status lq_gguf_meta_arch(lq_gguf_writer *w, const lq_arch *a, const lq_config *c, const char *path);

/* tokenizer.* pairs: copied from a GGUF file (`src`, every "tokenizer." key) when it is one, else
 * built from the tokenizer file (tokenizer.json, llama2.c tokenizer.bin) or the model directory's
 * tokenizer.json, plus the directory's chat template. */
lq_status lq_gguf_meta_tokenizer(lq_gguf_writer *w, const char *model_path, const char *tok_path,
                                 const lq_config *c);

/* ---- automatic mixed precision (gguf_automix.c) ---- */
typedef struct lq_automix_tensor {
    const char *name;
    const lq_tensor *src;  /* f32-readable; rows x cols */
    int64_t rows, cols;
    const float *qw;       /* imatrix entry (cols) or NULL */
    int type;              /* out: the chosen ggml type */
    double err;            /* out: its imatrix-weighted relative output error */
    uint64_t bytes;        /* out: its bytes */
} lq_automix_tensor;

typedef struct lq_automix_summary {
    uint64_t bytes, budget;  /* chosen bytes (<= budget) */
    uint64_t max_step;       /* largest single-tensor step: budget - bytes < max_step */
    double err_total;        /* sum of the chosen errors */
    lq_gguf_progress_fn progress;
    void *user;
} lq_automix_summary;

/* Choose t[i].type for every tensor to minimize the summed error proxy within budget bytes
 * (the header of gguf_automix.c says how). LQ_ERR_INVALID_ARG when even the smallest types do
 * not fit. */
lq_status lq_gguf_automix(lq_automix_tensor *t, int64_t n, uint64_t budget, lq_pool *pool, lq_automix_summary *sum);

/* Whether `path` is a regular file that starts with "GGUF". */
bool lq_gguf_is_file(const char *path);

#endif
