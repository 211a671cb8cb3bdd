/* distill_internal.h - on-disk layout of distillation shards shared by the writer and the
 * reader (docs/DISTILL_FORMAT.md describes the same bytes). Everything is little-endian. */
#ifndef LQ_DISTILL_INTERNAL_H
#define LQ_DISTILL_INTERNAL_H

#include "libquant/lq_distill.h"

#include <stdint.h>
#include <string.h>

#define LQD_MAGIC "LQDISTIL"        /* 8 bytes at offset 0 of every shard */
#define LQD_HEADER_SIZE 256
#define LQD_BLOCK_MAGIC 0x4244514cu /* "LQDB" read as a little-endian u32 */
#define LQD_BLOCK_HEADER_SIZE 32
#define LQD_INDEX_ENTRY_SIZE 16
#define LQD_RECORD_HEADER_SIZE 16
/* A block's raw size is bounded so a corrupt header cannot ask for a huge allocation. */
#define LQD_MAX_BLOCK_RAW ((uint64_t)1 << 30)
#define LQD_MANIFEST "manifest.json"
#define LQD_LOCK ".lock"           /* flock'ed by the writer of a directory (holds its pid) */

/* Header field offsets (see docs/DISTILL_FORMAT.md). */
enum {
    LQD_H_VERSION = 8, LQD_H_HEADER_SIZE = 12, LQD_H_TEACHER = 16, LQD_H_TOKHASH = 24,
    LQD_H_RUN = 32, LQD_H_VOCAB = 40, LQD_H_K = 44, LQD_H_DIM = 48, LQD_H_NCTX = 52,
    LQD_H_MODE = 56, LQD_H_LOGP_DTYPE = 60, LQD_H_FEAT_DTYPE = 64, LQD_H_NFEAT = 68,
    LQD_H_FEAT_LAYERS = 72, LQD_H_NAME = 136, LQD_H_SHARD = 200, LQD_H_NBLOCKS = 204,
    LQD_H_FIRST_RECORD = 208, LQD_H_NRECORDS = 216, LQD_H_NTOKENS = 224, LQD_H_INDEX_OFF = 232,
    LQD_H_INDEX_CRC = 240, LQD_H_CRC = 252,
};

/* What a shard header holds beyond the dataset's meta. */
typedef struct lqd_shard_state {
    uint32_t shard_index;
    uint32_t n_blocks;      /* 0 while unsealed */
    uint64_t first_record;
    uint64_t n_records;     /* 0 while unsealed */
    uint64_t n_tokens;      /* 0 while unsealed */
    uint64_t index_offset;  /* 0 = unsealed */
    uint32_t index_crc;
} lqd_shard_state;

typedef struct lqd_block_header {
    uint32_t n_records;
    uint64_t first_record;
    uint32_t raw_size, comp_size, payload_crc;
} lqd_block_header;

static inline void lqd_put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void lqd_put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t lqd_get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t lqd_get64(const uint8_t *p) {
    return (uint64_t)lqd_get32(p) | (uint64_t)lqd_get32(p + 4) << 32;
}

/* Bytes per stored log-prob (4 f32, 2 f16). */
static inline size_t lqd_logp_size(lq_dtype t) { return t == LQ_DTYPE_F16 ? 2 : 4; }

/* Raw bytes of a record of n tokens. 0 if it overflows. */
uint64_t lqd_record_size(const lq_distill_meta *m, uint64_t n);

/* Serialize / parse the 256-byte shard header (the CRC is computed / checked). */
void lqd_header_encode(const lq_distill_meta *m, const lqd_shard_state *s, uint8_t *out);
/* `name` for messages. Validates magic, version, CRC and every field's range. */
lq_status lqd_header_decode(const uint8_t *in, const char *name, lq_distill_meta *m,
                            lqd_shard_state *s);

void lqd_block_header_encode(const lqd_block_header *b, uint8_t *out);
lq_status lqd_block_header_decode(const uint8_t *in, const char *name, uint64_t offset,
                                  lqd_block_header *b);

/* Whether two metas describe the same dataset (teacher, tokenizer, run, shapes, dtypes). */
bool lqd_meta_same(const lq_distill_meta *a, const lq_distill_meta *b);

uint32_t lqd_crc32(const void *p, size_t n);

/* ---- output-directory plumbing shared by the soft-label writer (distill_write.c, where these
 * live) and the sequences writer (distill_seq.c): both commit through a manifest and resume. */

/* Replace dir/name with text plus a newline, atomically and durably (lq_file.h: temp, fsync,
 * rename, fsync dir). A kill leaves either the old file or the new one. */
lq_status lqd_replace_file(const char *dir, const char *name, const char *text);

/* Parse the manifest (any JSON file) at `path` into *out (caller json_decref's it). Opened with
 * lq_file_fopen_input, so a FIFO or directory in its place is refused rather than read; JSON
 * errors are LQ_ERR_FORMAT "path: line N: why". The one reader of every distill manifest. */
struct json_t; /* jansson's, declared here so this header does not pull jansson.h in */
lq_status lqd_load_json(const char *path, struct json_t **out);

/* Decide whether dir/manifest is a fresh output or a run to resume. Creates dir if missing and
 * locks it first (*lock_fd; LQ_ERR_EXISTS "in use by pid N" while another writer holds it).
 * *fresh = true for a new or empty directory; false when the manifest exists (the caller reads
 * it). Refuses a non-directory or a non-empty directory without a manifest; `what_dir` and
 * `what_output` name the kind of output in those messages ("a directory", "quant-distill"). */
lq_status lqd_open_out_dir(const char *dir, const char *manifest, const char *what_dir,
                           const char *what_output, bool *fresh, int *lock_fd);
/* Release the lock lqd_open_out_dir took (removes dir/.lock). fd < 0 is a no-op. */
void lqd_unlock_dir(const char *dir, int fd);

/* open(2) that refuses to follow a symbolic link and anything but a regular file, so a writer
 * never truncates or rewrites a file outside its directory (flags get O_NOFOLLOW). */
lq_status lqd_open_regular(const char *path, int flags, int *fd);

#endif
