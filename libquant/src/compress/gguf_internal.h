/* gguf_internal.h - the GGUF export driver's parts (gguf_meta.c, gguf_export.c). */
#ifndef LQ_GGUF_INTERNAL_H
#define LQ_GGUF_INTERNAL_H

#include <stdbool.h>

#include "arch.h"
#include "libquant/lq_checkpoint.h"
#include "libquant/lq_gguf.h"
#include "libquant/lq_gguf_quant.h"
#include "libquant/lq_gguf_write.h"

/* GGUF name of a checkpoint tensor (HF name) into buf: token_embd / output_norm / output, or
 * "blk.N.<role's gguf name>.weight|bias". *role receives the lq_role (-1 for the global ones),
 * *layer the layer. False when the name is none of these (the caller names it). */
bool lq_gguf_name_of(const lq_arch *a, const char *hf, char *buf, size_t cap, int *role, int *layer);

/* general.* and "<arch>.*" pairs of a float checkpoint's config (convert_hf_to_gguf.py's keys).
 * LQ_ERR_UNSUPPORTED naming what GGUF (or this writer) cannot carry: per-layer sizes, llama3
 * RoPE scaling (llama.cpp stores it as a rope_freqs tensor), Gemma 3 from an HF directory. */
lq_status lq_gguf_meta_arch(lq_gguf_writer *w, const lq_arch *a, const lq_config *c, const char *path);

/* tokenizer.* pairs: copied from a GGUF file (`src`, every "tokenizer." key) when it is one, else
 * built from the tokenizer file (tokenizer.json, llama2.c tokenizer.bin) or the model directory's
 * tokenizer.json, plus the directory's chat template. */
lq_status lq_gguf_meta_tokenizer(lq_gguf_writer *w, const char *model_path, const char *tok_path,
                                 const lq_config *c);

/* Whether `path` is a regular file that starts with "GGUF". */
bool lq_gguf_is_file(const char *path);

#endif
