/* lq_gguf_write.h - a streaming GGUF v3 writer (the container llama.cpp loads; lq_gguf.h reads it).
 *
 * Layout written: "GGUF", u32 3, u64 n_tensors, u64 n_kv, the key/value pairs in the order they
 * were first set, the tensor infos in declaration order (offsets relative to the data section,
 * each aligned to general.alignment), zero padding to the alignment, then each tensor's bytes
 * followed by zero padding to the alignment (ggml's gguf_write_to_buf pads every tensor, the
 * last one too). All little-endian.
 *
 *     lq_gguf_writer *w;
 *     LQ_TRY(lq_gguf_writer_create(path, &w));
 *     lq_gguf_writer_kv_str(w, "general.architecture", "llama");   ... every pair
 *     lq_gguf_writer_tensor(w, "token_embd.weight", 2, ne, 0);      ... every tensor
 *     lq_gguf_writer_write(w, bytes, n);                            ... payloads, in order
 *     s = lq_gguf_writer_commit(w);                                 or lq_gguf_writer_abort(w)
 *
 * Pairs and tensor infos are held in memory until the first payload byte (the header needs every
 * offset); payloads stream to the temporary file of lq_file.h, renamed over `path` by commit, so
 * a reader never sees a half-written file and a failure leaves nothing behind. Setting a key
 * twice replaces its value in place (gguf_set_* does the same). "general.alignment" (u32, a power
 * of two) sets the alignment; 32 without it.
 */
#ifndef LQ_GGUF_WRITE_H
#define LQ_GGUF_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lq_gguf.h"
#include "lq_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lq_gguf_writer lq_gguf_writer;

/* Begin writing `path` (temporary "<path>.tmp.<pid>" until commit). */
lq_status lq_gguf_writer_create(const char *path, lq_gguf_writer **out);

/* A scalar pair: `value` points to one value of `type` (uint8_t .. double; bool as one byte
 * 0/1); for LQ_GGUF_TYPE_STRING it is a NUL-terminated `const char *`. */
lq_status lq_gguf_writer_kv(lq_gguf_writer *w, const char *key, lq_gguf_type type, const void *value);
lq_status lq_gguf_writer_kv_u32(lq_gguf_writer *w, const char *key, uint32_t v);
lq_status lq_gguf_writer_kv_i32(lq_gguf_writer *w, const char *key, int32_t v);
lq_status lq_gguf_writer_kv_f32(lq_gguf_writer *w, const char *key, float v);
lq_status lq_gguf_writer_kv_bool(lq_gguf_writer *w, const char *key, bool v);
lq_status lq_gguf_writer_kv_str(lq_gguf_writer *w, const char *key, const char *v);
/* A string of `len` bytes (may hold NULs; GGUF strings are not terminated). */
lq_status lq_gguf_writer_kv_strn(lq_gguf_writer *w, const char *key, const char *v, size_t len);
/* An array of n numeric (or bool) elements of elem_type, little-endian, packed. */
lq_status lq_gguf_writer_kv_arr(lq_gguf_writer *w, const char *key, lq_gguf_type elem_type,
                                const void *data, int64_t n);
/* An array of n strings; lens may be NULL (then each is NUL-terminated). */
lq_status lq_gguf_writer_kv_arr_str(lq_gguf_writer *w, const char *key, const char *const *strs,
                                    const size_t *lens, int64_t n);
/* Copy pair i of a file being read (any type, arrays of strings included) under its key. */
lq_status lq_gguf_writer_kv_copy(lq_gguf_writer *w, const lq_gguf *src, int64_t i);
/* Remove a pair (no-op when absent). */
void lq_gguf_writer_kv_remove(lq_gguf_writer *w, const char *key);

/* Declare a tensor: ne in ggml order (ne[0] contiguous), n_dims 1..4, ggml type id. Its size is
 * computed from the type (lq_ggml_type_layout): ne[0] must be a multiple of the block size. */
lq_status lq_gguf_writer_tensor(lq_gguf_writer *w, const char *name, int n_dims, const int64_t *ne,
                                uint32_t ggml_type);
/* Payload bytes of the declared tensor's size (what the next writes must total). */
uint64_t lq_gguf_writer_tensor_nbytes(const lq_gguf_writer *w, int64_t i);

/* Append payload bytes: the tensors' data in declaration order, any chunking; padding between
 * tensors is inserted by the writer. The first call writes the header (no pair or tensor may be
 * added after it). */
lq_status lq_gguf_writer_write(lq_gguf_writer *w, const void *data, size_t n);

/* Check every declared byte arrived, pad, fsync, rename over `path`. Frees w, success or not. */
lq_status lq_gguf_writer_commit(lq_gguf_writer *w);
/* Remove the temporary file and free w. NULL is a no-op. */
void lq_gguf_writer_abort(lq_gguf_writer *w);

/* Block size (elements) and bytes per block of a ggml type; false for a type GGUF readers here do
 * not know. */
bool lq_ggml_type_layout(uint32_t type, uint64_t *block_elems, uint64_t *block_bytes);

#ifdef __cplusplus
}
#endif
#endif
