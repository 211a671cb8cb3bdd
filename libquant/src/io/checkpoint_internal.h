/* checkpoint_internal.h - private plumbing shared by the checkpoint loaders.
 *
 * lq_checkpoint is one struct whatever the on-disk format: the loaders (checkpoint_hf.c,
 * checkpoint_llama2c.c) fill the config and append tensor views; checkpoint.c owns dispatch
 * and lookup (the tensor set is validated at model load, against the architecture descriptor).
 */
#ifndef LQ_CHECKPOINT_INTERNAL_H
#define LQ_CHECKPOINT_INTERNAL_H

#include "libquant/lq_checkpoint.h"
#include "libquant/lq_safetensors.h"

struct lq_checkpoint {
    lq_ckpt_kind kind;
    char *path;            /* as given to lq_checkpoint_open */
    lq_config cfg;
    char *config_json;     /* raw config.json text (HF), NULL for llama2.c */

    lq_st_file **shards;   /* HF: the mapped safetensors files (owned) */
    int n_shards;

    void *map;             /* llama2.c: the whole mapped .bin (owned) */
    size_t map_size;
    char *name_arena;      /* llama2.c, GGUF: storage of the synthesized HF tensor names (owned) */
    struct lq_gguf *gguf;  /* GGUF: the mapped, validated file (owned) */

    lq_tensor *tensors;    /* views, in a stable order; names borrowed from shards / arena */
    int64_t n_tensors, cap_tensors;
    uint64_t file_bytes;   /* bytes of the weight files (shards or .bin) */
    /* Dense buffers of decompressed sparse tensors (io/sparse_bitmask_load.c; owned). */
    struct lq_sparse_store *sparse;
};

/* Append a view (copied by value). */
lq_status lq_ckpt_push(lq_checkpoint *c, const lq_tensor *t);

/* Loaders: fill c (kind, cfg, tensors, file_bytes) from a directory / a .bin file. */
lq_status lq_ckpt_load_hf(lq_checkpoint *c, const char *dir);
lq_status lq_ckpt_load_llama2c(lq_checkpoint *c, const char *file);
lq_status lq_ckpt_load_gguf(lq_checkpoint *c, const char *file);

/* The "<arch>.*" metadata of a GGUF file as a config (io/gguf_config.c); `a` is the descriptor
 * general.architecture selected. */
struct lq_gguf;
struct lq_arch;
lq_status lq_gguf_read_config(const struct lq_gguf *g, const char *arch_name, const struct lq_arch *a,
                              lq_config *cfg);

/* Read a whole small text file (config.json, index) into a NUL-terminated buffer. */
lq_status lq_read_text_file(const char *path, size_t max_bytes, char **out, size_t *len);

#endif
