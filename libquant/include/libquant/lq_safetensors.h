/* lq_safetensors.h - read (mmap, zero-copy) and write (atomic, streaming) safetensors files.
 *
 * Format: u64 little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
 * then the data section; offsets are relative to the start of the data section.
 *
 * The reader validates everything before handing out a view: header length inside the file,
 * well-formed JSON, known dtype, shape product without overflow and equal to the byte size,
 * offsets inside the data section, no two tensors overlapping. Any violation is LQ_ERR_FORMAT
 * with a message naming the file and the tensor.
 */
#ifndef LQ_SAFETENSORS_H
#define LQ_SAFETENSORS_H

#include "lq_status.h"
#include "lq_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- reading -------------------------------------------------------------------------------- */

typedef struct lq_st_file lq_st_file;

/* Map `path` read-only and validate it. On success *out owns the mapping. */
lq_status lq_st_open(const char *path, lq_st_file **out);
/* Unmap. NULL is a no-op. Views obtained from the file become invalid. */
void lq_st_close(lq_st_file *f);

const char *lq_st_path(const lq_st_file *f);
int64_t lq_st_count(const lq_st_file *f);
/* i-th tensor in file order (sorted by data offset). */
const lq_tensor *lq_st_get(const lq_st_file *f, int64_t i);
/* Tensor by name, NULL if absent. */
const lq_tensor *lq_st_find(const lq_st_file *f, const char *name);
/* String value of __metadata__[key], NULL if absent. */
const char *lq_st_metadata(const lq_st_file *f, const char *key);
/* The i-th __metadata__ entry (key and string value, owned by f), in file order; false past the
 * last. */
bool lq_st_metadata_at(const lq_st_file *f, int64_t i, const char **key, const char **value);
/* Total file size in bytes. */
size_t lq_st_file_size(const lq_st_file *f);

/* ---- writing -------------------------------------------------------------------------------- *
 * Streaming: declare every tensor first (name, dtype, shape), then write their payloads in the
 * declared order, then commit. Data goes to "<path>.tmp.<pid>"; commit fsyncs and renames it
 * over `path`; abort (or a failure) unlinks it, so no partial file is ever visible at `path`.
 * Peak memory: the header only; payloads are streamed through.
 */

typedef struct lq_st_writer lq_st_writer;

lq_status lq_st_writer_create(const char *path, lq_st_writer **out);
/* Add a `__metadata__` string entry (before the first write). */
lq_status lq_st_writer_metadata(lq_st_writer *w, const char *key, const char *value);
/* Declare a tensor (before the first write). Payload bytes = dtype size * numel. */
lq_status lq_st_writer_declare(lq_st_writer *w, const char *name, lq_dtype dtype, int ndim,
                               const int64_t *shape);
/* Append payload bytes of the tensors in declaration order. May be called several times per
 * tensor (chunks); the writer checks the total against the declarations. */
lq_status lq_st_writer_write(lq_st_writer *w, const void *data, size_t nbytes);
/* Check every declared byte was written, fsync, rename to the final path, free the writer. */
lq_status lq_st_writer_commit(lq_st_writer *w);
/* Remove the temporary file and free the writer. NULL is a no-op. */
void lq_st_writer_abort(lq_st_writer *w);

/* Convenience: write a whole set of in-memory tensors (views) atomically. */
lq_status lq_st_save(const char *path, const lq_tensor *tensors, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
