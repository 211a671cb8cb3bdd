/* imatrix_internal.h - the lq_imatrix object shared by calib.c (collection, lookups) and
 * imatrix_file.c (llama.cpp's GGUF and legacy .dat files). */
#ifndef LQ_IMATRIX_INTERNAL_H
#define LQ_IMATRIX_INTERNAL_H

#include "arch.h"
#include "libquant/lq_calib.h"

typedef struct im_entry {
    char module[160]; /* the hook's HF module name, or a file's GGUF tensor name */
    int64_t cols, n_tokens;
    double *sum;      /* cols: sum over tokens of x^2 (a legacy .dat entry: its stored values) */
    float *mean;      /* cols: sum / n_tokens, refreshed by lq_imatrix_get */
} im_entry;

struct lq_imatrix {
    im_entry *e;
    int64_t n, cap;
    lq_status status;
    char bad[200];
    /* llama.cpp's metadata (imatrix.datasets, imatrix.chunk_count, imatrix.chunk_size) */
    char **datasets;
    int64_t n_datasets;
    int64_t chunk_count, chunk_size;
    const lq_arch *arch; /* set by lq_imatrix_set_config: maps HF module names <-> GGUF names */
};

/* A new entry (zeroed sums); NULL when out of memory. */
im_entry *lq_imatrix_add(lq_imatrix *im, const char *name, int64_t cols);
im_entry *lq_imatrix_find_entry(const lq_imatrix *im, const char *name);

#endif
