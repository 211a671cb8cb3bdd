/* lq_gguf.h - a small, validating reader of GGUF v2/v3 files (llama.cpp's container format).
 *
 * Layout: "GGUF", u32 version, u64 n_tensors, u64 n_kv, then n_kv key/value pairs
 * (string key, u32 type, value), then n_tensors tensor infos (string name, u32 n_dims,
 * u64 ne[n_dims], u32 ggml type, u64 offset), padding to general.alignment (default 32), then
 * the data section. Strings are u64 length + bytes (no NUL). All little-endian.
 *
 * The file is mmapped read-only. lq_gguf_open walks the whole header once and checks every
 * length, count and offset against the file size (nothing is trusted), so later lookups cannot
 * read out of bounds. Nested arrays are rejected (LQ_ERR_UNSUPPORTED), as llama.cpp does.
 * Values are views into the mapping, valid until lq_gguf_close. A file is read-only after
 * opening: concurrent readers on several threads are fine.
 */
#ifndef LQ_GGUF_H
#define LQ_GGUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "lq_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Value types, as stored on disk. */
typedef enum lq_gguf_type {
    LQ_GGUF_TYPE_UINT8 = 0,
    LQ_GGUF_TYPE_INT8 = 1,
    LQ_GGUF_TYPE_UINT16 = 2,
    LQ_GGUF_TYPE_INT16 = 3,
    LQ_GGUF_TYPE_UINT32 = 4,
    LQ_GGUF_TYPE_INT32 = 5,
    LQ_GGUF_TYPE_FLOAT32 = 6,
    LQ_GGUF_TYPE_BOOL = 7,
    LQ_GGUF_TYPE_STRING = 8,
    LQ_GGUF_TYPE_ARRAY = 9,
    LQ_GGUF_TYPE_UINT64 = 10,
    LQ_GGUF_TYPE_INT64 = 11,
    LQ_GGUF_TYPE_FLOAT64 = 12,
    LQ_GGUF_TYPE_COUNT
} lq_gguf_type;

/* Bytes of one value of a fixed-size type (1, 2, 4 or 8); 0 for STRING, ARRAY and unknown types.
 * The reader and the writer (lq_gguf_write.h) size values with it. */
size_t lq_gguf_scalar_size(lq_gguf_type t);

/* A string view into the mapping: `len` bytes at `data`, not NUL-terminated. */
typedef struct lq_gguf_str {
    const char *data;
    uint64_t len;
} lq_gguf_str;

/* One tensor info. `offset` is absolute in the file (data section start + stored offset).
 * `nbytes` is 0 when the ggml type is not one this reader knows the block size of (then only
 * the offset was checked against the file size). */
typedef struct lq_gguf_tensor_info {
    const char *name;   /* NUL-terminated copy, owned by the lq_gguf */
    uint32_t n_dims;    /* 1..4 */
    int64_t ne[4];      /* ggml order: ne[0] is the contiguous dimension; unused dims are 1 */
    uint32_t type;      /* ggml_type (0 F32, 1 F16, 8 Q8_0, 30 BF16, ...) */
    uint64_t offset;    /* absolute byte offset in the file */
    uint64_t nbytes;    /* payload bytes, 0 if the type is unknown */
} lq_gguf_tensor_info;

typedef struct lq_gguf lq_gguf;

/* Map and validate `path`. On success *out owns the mapping. Errors: LQ_ERR_IO (open/mmap),
 * LQ_ERR_FORMAT (bad magic, a length or offset past the end, ...), LQ_ERR_UNSUPPORTED
 * (version 1 or > 3, nested arrays). The message names the file and the key / tensor. */
lq_status lq_gguf_open(const char *path, lq_gguf **out);
/* Unmap and free. NULL is a no-op. */
void lq_gguf_close(lq_gguf *g);

const char *lq_gguf_path(const lq_gguf *g);
uint32_t lq_gguf_version(const lq_gguf *g);
size_t lq_gguf_file_size(const lq_gguf *g);
const void *lq_gguf_file_data(const lq_gguf *g); /* start of the mapping */

/* ---- key/value pairs -------------------------------------------------------------------- */

int64_t lq_gguf_kv_count(const lq_gguf *g);
/* Index of `key`, -1 if absent. */
int64_t lq_gguf_find(const lq_gguf *g, const char *key);
/* Key of pair i (NUL-terminated copy owned by g); NULL if i is out of range. */
const char *lq_gguf_kv_key(const lq_gguf *g, int64_t i);
/* Type of pair i; for arrays, *elem_type and *n (may be NULL) receive the element type/count. */
lq_gguf_type lq_gguf_kv_type(const lq_gguf *g, int64_t i, lq_gguf_type *elem_type, int64_t *n);

/* Scalar getters by key. Integer getters accept any integer type whose value fits; the float
 * getter accepts any numeric type. LQ_ERR_NOT_FOUND if the key is absent, LQ_ERR_FORMAT if it
 * has another type (message names the file and key). */
lq_status lq_gguf_get_i64(const lq_gguf *g, const char *key, int64_t *out);
lq_status lq_gguf_get_f64(const lq_gguf *g, const char *key, double *out);
lq_status lq_gguf_get_bool(const lq_gguf *g, const char *key, bool *out);
lq_status lq_gguf_get_str(const lq_gguf *g, const char *key, lq_gguf_str *out);

/* Arrays by key: element type and count. LQ_ERR_FORMAT if the key is not an array. */
lq_status lq_gguf_get_arr(const lq_gguf *g, const char *key, lq_gguf_type *elem_type,
                          int64_t *n);
/* Element i of a string array (O(1): offsets are indexed when the file is opened). */
lq_status lq_gguf_arr_str(const lq_gguf *g, const char *key, int64_t i, lq_gguf_str *out);
/* Element i of a numeric array converted to int64 / double (LQ_ERR_FORMAT for float arrays in
 * the integer getter, or string arrays). */
lq_status lq_gguf_arr_i64(const lq_gguf *g, const char *key, int64_t i, int64_t *out);
lq_status lq_gguf_arr_f64(const lq_gguf *g, const char *key, int64_t i, double *out);
/* Raw little-endian payload of a numeric array (possibly unaligned: copy with memcpy). */
const void *lq_gguf_arr_data(const lq_gguf *g, const char *key);

/* ---- tensors ------------------------------------------------------------------------------ */

int64_t lq_gguf_tensor_count(const lq_gguf *g);
const lq_gguf_tensor_info *lq_gguf_tensor(const lq_gguf *g, int64_t i); /* NULL if out of range */
const lq_gguf_tensor_info *lq_gguf_find_tensor(const lq_gguf *g, const char *name);
/* general.alignment (32 if absent) and the absolute offset of the data section. */
uint32_t lq_gguf_alignment(const lq_gguf *g);
uint64_t lq_gguf_data_offset(const lq_gguf *g);

#ifdef __cplusplus
}
#endif
#endif
