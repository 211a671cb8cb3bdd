/* lq_distill.h - distillation data: a teacher's soft labels (and optionally hidden states) for
 * every position of a corpus, stored so a student can be trained and evaluated from the files
 * alone.
 *
 * A dataset is a directory:
 *   manifest.json        the committed state (written atomically: temp file, fsync, rename)
 *   shard-00000.lqd ...  header | zlib blocks of records | index (once the shard is sealed)
 * The byte layout is documented in docs/DISTILL_FORMAT.md.
 *
 * A record is one sequence the teacher saw: n token ids (position 0 first), and for every
 * position t the teacher's distribution over the token at t + 1, summarized as the top-k ids
 * with their natural-log probabilities (descending; ties: lower id first) plus the log of the
 * probability mass outside the top-k ("rest", -inf when k == vocab). KL(teacher || student) and
 * the cross-entropy are computable from that alone: the student's mass outside the same ids is
 * one minus the sum of its probabilities on them.
 *
 * Writing is resumable: records are buffered into a block; a block is committed (appended,
 * fsynced, then the manifest renamed into place) only when the caller says its corpus position
 * (the "cursor") is consistent with the records added so far. Reopening a directory truncates
 * the open shard to the last committed byte and hands the cursor back.
 *
 * Teacher identity (lq_distill_teacher_id): FNV-1a 64 over the rendered config.json of the
 * model (lq_config_to_json), then for every tensor in checkpoint order its name, dtype, shape
 * and a sample of its bytes (the first and last 256 bytes and 256 bytes at the middle).
 *
 * Thread-safety: readers and writers are single-threaded objects; distinct objects are
 * independent.
 */
#ifndef LQ_DISTILL_H
#define LQ_DISTILL_H

#include "lq_status.h"
#include "lq_tensor.h"
#include "lq_model.h"
#include "lq_tokenizer.h"
#include "lq_sample.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LQ_DISTILL_VERSION 1
#define LQ_DISTILL_MAX_FEAT_LAYERS 16
#define LQ_DISTILL_DEFAULT_K 32

/* How the corpus was cut into records (informational; stored in the header). */
typedef enum lq_distill_mode {
    LQ_DISTILL_MODE_CHUNKS = 0,   /* BOS + n_ctx - 1 tokens of the continuous text per record */
    LQ_DISTILL_MODE_PER_UNIT = 1, /* one unit (line / separator) per record, BOS first, pieces of
                                   * n_ctx tokens when longer */
} lq_distill_mode;

/* What every shard of a dataset shares: who the teacher was and what a record holds. */
typedef struct lq_distill_meta {
    uint64_t teacher_id;     /* lq_distill_teacher_id */
    uint64_t tokenizer_hash; /* lq_tokenizer_hash */
    uint64_t run_id;         /* caller's hash of everything else that shapes the records
                              * (corpus identity, mode, separator, ctx): a resumed run must match */
    int32_t vocab;           /* teacher's vocabulary size */
    int32_t k;               /* top-k per position, 1 .. vocab */
    int32_t dim;             /* hidden size (features) */
    int32_t n_ctx;           /* tokens per record at most */
    int32_t mode;            /* lq_distill_mode */
    lq_dtype logp_dtype;     /* storage of top-k log-probs: LQ_DTYPE_F32 or LQ_DTYPE_F16 */
    int32_t n_feat_layers;   /* 0 .. LQ_DISTILL_MAX_FEAT_LAYERS; features are f16 */
    int32_t feat_layers[LQ_DISTILL_MAX_FEAT_LAYERS]; /* lq_layer_hook layer numbers, 0..n_layers */
    char teacher_name[64];   /* informational (model path basename), NUL-terminated */
} lq_distill_meta;

/* One record. From the reader the arrays are owned by the reader and valid until the next
 * lq_distill_get on it; given to the writer they are read during the call only. */
typedef struct lq_distill_record {
    int32_t n;                 /* tokens (>= 1) */
    uint64_t source_offset;    /* byte offset in the corpus of the text this record starts in */
    const int32_t *tokens;     /* (n) */
    const int32_t *topk_ids;   /* (n, k) */
    const float *topk_logp;    /* (n, k) natural log, descending */
    const float *rest_logp;    /* (n) log of the mass outside the top-k; -inf if none */
    const uint16_t *features;  /* (n_feat_layers, n, dim) f16 bits; NULL if no features */
} lq_distill_record;

/* ---- teacher side ---------------------------------------------------------------------------- */

/* Identity of the model's weights and architecture (see above). Never fails. */
uint64_t lq_distill_teacher_id(const lq_model *m);

/* Top-k of one row of logits (vocab floats): ids and natural-log probabilities in descending
 * order (ties: lower id first), and the log of the remaining mass. The normalizer and the rest
 * are summed in double; when the top-k holds nearly all the mass the rest is summed directly
 * over the other ids (no cancellation). Requires 1 <= k <= vocab. */
void lq_distill_topk(const float *logits, int vocab, int k, int32_t *ids, float *logp,
                     float *rest_logp);

/* ---- writer ---------------------------------------------------------------------------------- */

typedef struct lq_distill_writer lq_distill_writer;

typedef struct lq_distill_writer_opts {
    size_t block_bytes;  /* raw bytes per block before it is compressed (<= 0: 1 MiB) */
    uint64_t shard_bytes; /* a shard is sealed when it reaches this size (0: 256 MiB) */
    int zlib_level;      /* 1..9 (0: 1, fastest; records are floats and compress little better) */
} lq_distill_writer_opts;

/* Open `dir` for writing. If it does not exist it is created (fresh run). If it holds a
 * manifest: LQ_ERR_MISMATCH unless its teacher, tokenizer, run, k, dtypes and feature layers
 * equal `meta` (never mix teachers); otherwise the open shard is truncated to the last committed
 * byte and the run continues (lq_distill_writer_cursor gives the corpus position). A directory
 * without a manifest that is not empty is LQ_ERR_EXISTS. `opts` may be NULL. */
lq_status lq_distill_writer_open(const char *dir, const lq_distill_meta *meta,
                                 const lq_distill_writer_opts *opts, lq_distill_writer **out);

/* Records committed so far (a resumed run starts here). */
int64_t lq_distill_writer_records(const lq_distill_writer *w);
/* The cursor of the last commit ("" for a fresh run); valid until the next commit. */
const char *lq_distill_writer_cursor(const lq_distill_writer *w);
/* Whether the dataset was already finished (nothing left to do). */
bool lq_distill_writer_complete(const lq_distill_writer *w);

/* Buffer one record (validated: n >= 1, ids in range). */
lq_status lq_distill_writer_add(lq_distill_writer *w, const lq_distill_record *rec);

/* The records added so far end at corpus position `cursor` (a short caller string, < 64 KiB).
 * If the buffered block is full (or `force`), append it, fsync, and write the manifest with
 * this cursor: everything added so far is now durable. Otherwise nothing happens. */
lq_status lq_distill_writer_commit(lq_distill_writer *w, const char *cursor, bool force);

/* Commit what is buffered, seal the open shard (index + final header) and mark the manifest
 * complete. */
lq_status lq_distill_writer_finish(lq_distill_writer *w, const char *cursor);

/* Close without committing the buffer (what a crash leaves: the last commit). NULL is a no-op. */
void lq_distill_writer_free(lq_distill_writer *w);

/* ---- reader ---------------------------------------------------------------------------------- */

typedef struct lq_distill_reader lq_distill_reader;

/* Open a dataset directory (through its manifest; an unfinished run reads up to its last
 * commit) or one shard file. Shards are mmapped; headers, block headers and the index are
 * validated against the file size before use. */
lq_status lq_distill_open(const char *path, lq_distill_reader **out);

/* Open one shard held in memory (borrowed; must outlive the reader). `name` is used in error
 * messages. A shard without an index (unsealed) is scanned block by block. */
lq_status lq_distill_open_mem(const void *data, size_t len, const char *name,
                              lq_distill_reader **out);

void lq_distill_close(lq_distill_reader *r);

const lq_distill_meta *lq_distill_reader_meta(const lq_distill_reader *r);
int64_t lq_distill_count(const lq_distill_reader *r);
/* Total tokens over all records. */
int64_t lq_distill_token_count(const lq_distill_reader *r);
/* Total compressed bytes of the shards (headers, blocks and indexes). */
uint64_t lq_distill_file_bytes(const lq_distill_reader *r);

/* Record i (0 .. count-1). A corrupt block is LQ_ERR_FORMAT naming the shard file and the
 * block's byte offset. */
lq_status lq_distill_get(lq_distill_reader *r, int64_t i, lq_distill_record *rec);

/* KL(teacher || student) at one position, from the teacher's stored top-k and rest and the
 * student's full log-softmax row (vocab values): sum over the top-k of p (log p - log q) plus
 * rest-mass term P_rest (log P_rest - log Q_rest), Q_rest = 1 - sum of q over the top-k ids.
 * (The rest term treats the tail as one outcome: a lower bound of the full KL.) */
double lq_distill_kl(const int32_t *ids, const float *logp, float rest_logp, int k,
                     const float *student_logsoftmax);

/* ---- corpus streaming ------------------------------------------------------------------------ */

/* Reads a text file incrementally so memory stays bounded however large the corpus: only the
 * current unit (or piece) and a read-ahead buffer are held. Offsets are bytes from the file's
 * start, so a resumed run can continue at the offset its last commit recorded. */
typedef struct lq_corpus lq_corpus;

/* Open `path` and position it at byte `start` (<= file size). */
lq_status lq_corpus_open(const char *path, uint64_t start, lq_corpus **out);
void lq_corpus_close(lq_corpus *c);
/* File size in bytes (for progress). */
uint64_t lq_corpus_size(const lq_corpus *c);

/* Next non-empty unit, as lq_text_split cuts them: text up to `sep` (NULL or "": newline),
 * stripped of spaces, tabs, CR and LF. *text is NULL at the end (valid until the next call).
 * *unit_off: offset where the unit's raw text starts; *next_off: offset after its separator.
 * A unit longer than 256 MiB is LQ_ERR_UNSUPPORTED. */
lq_status lq_corpus_next_unit(lq_corpus *c, const char *sep, const char **text, size_t *len,
                              uint64_t *unit_off, uint64_t *next_off);

/* Next piece of raw text of at most max_bytes, cut after the last newline inside it (or at a
 * UTF-8 character boundary when it has none). *text is NULL at the end. */
lq_status lq_corpus_next_piece(lq_corpus *c, size_t max_bytes, const char **text, size_t *len,
                               uint64_t *off, uint64_t *next_off);

/* Next segment of raw text for streamed tokenization: from the current offset, the longest
 * prefix of at most max_bytes that ends at a safe cut of `t` (lq_tokenizer_safe_cut), so that
 * encoding the segments one after another (the first with lq_tokenizer_encode, the others with
 * lq_tokenizer_encode_next) gives exactly the ids of encoding the whole file. The window doubles
 * while it holds no safe cut (LQ_ERR_UNSUPPORTED past 256 MiB); the rest of the file, once it
 * fits, is the last segment. The cut depends only on the bytes from the start offset on, so a
 * resumed run that reopens the corpus at a segment's offset cuts the same segments. *text is
 * NULL at the end. */
lq_status lq_corpus_next_segment(lq_corpus *c, const lq_tokenizer *t, size_t max_bytes,
                                 const char **text, size_t *len, uint64_t *off,
                                 uint64_t *next_off);

/* ---- the driver: a teacher over a corpus (quant-distill, quant-recipe's distill_stage) ---- */

/* Identity of a corpus for lq_distill_meta.run_id: FNV-1a 64 over its first and last 64 KiB,
 * its size and `separator` (NULL = ""), plus a marker when `chunks` (chunked records were once
 * cut per line-aligned piece: such a partial run must not be resumed with whole-text tokens).
 * *size is the file size. */
lq_status lq_distill_corpus_id(const char *path, const char *separator, bool chunks, uint64_t *id,
                               uint64_t *size);

/* Progress and test hooks of lq_distill_run; every member may be NULL. The library prints
 * nothing: the caller decides what a person sees. */
typedef struct lq_distill_run_hooks {
    /* Once, before the first record, when work remains. */
    void (*begin)(void *user, int64_t resumed_records, uint64_t corpus_bytes);
    /* Corpus bytes consumed so far of `total` (monotonic); `what` is "distill". The shape of
     * every libquant progress callback (a tool passes its bar's). */
    void (*progress)(void *user, int64_t done, int64_t total, const char *what);
    /* After each record is added (not yet durable); `added` counts this call's records. */
    void (*record)(void *user, int64_t added);
    void *user;
} lq_distill_run_hooks;

typedef struct lq_distill_run_opts {
    const char *corpus;        /* text file, streamed: memory does not grow with its size */
    const char *out;           /* dataset directory: created, or an unfinished run resumed */
    const char *teacher_name;  /* stored in the header (informational); NULL = "" */
    int k;                     /* top-k per position, 1 .. vocab */
    int ctx;                   /* tokens per record; <= 0: 512 for chunks, the model's context
                                * per unit; capped at the model's context */
    bool per_unit;             /* one record per non-empty line / separator unit (BOS first, cut
                                * into pieces of ctx); false: the whole text's tokens cut into
                                * records of BOS + ctx - 1 */
    const char *separator;     /* per_unit: NULL or "" = newline */
    const int32_t *feat_layers; /* residual stream after these layers (0 .. n_layers), f16 */
    int n_feat_layers;          /* 0 .. LQ_DISTILL_MAX_FEAT_LAYERS */
    bool logp_f16;             /* store log-probs as f16 (else f32) */
    size_t block_bytes;        /* lq_distill_writer_opts; 0 = defaults */
    uint64_t shard_bytes;
    size_t segment_bytes;      /* chunks: raw bytes per tokenizer call; 0 = 64 KiB (tests use
                                * small values to put many cuts in a small text) */
    lq_pool *pool;             /* borrowed; NULL = one thread */
    lq_distill_run_hooks hooks;
} lq_distill_run_opts;

typedef struct lq_distill_run_result {
    int64_t resumed_from;      /* records committed before this call */
    bool already_complete;     /* nothing was left to do */
    int64_t added;             /* records this call added */
    int64_t records, tokens;   /* the finished dataset */
    uint64_t bytes;            /* its shard bytes */
    double seconds;            /* wall time of the record loop */
} lq_distill_run_result;

/* Run teacher `m` (with tokenizer `tok`) over o->corpus into o->out: for every position the
 * top-k next-token log-probs, the rest mass and the chosen features, in records cut as o says,
 * committed as the writer's blocks fill (docs/DISTILL_FORMAT.md). A directory holding an
 * unfinished run of the same teacher, tokenizer, corpus and settings continues after its last
 * commit; its cursor is checked against the corpus first (LQ_ERR_MISMATCH when the committed
 * records do not end where the cursor says). The same inputs give the same bytes whether or
 * not the run was interrupted. Errors: LQ_ERR_INVALID_ARG (k, ctx, feature layers, an empty
 * corpus), the writer's (another teacher, a directory in use), the tokenizer's and I/O. */
lq_status lq_distill_run(const lq_model *m, const lq_tokenizer *tok, const lq_distill_run_opts *o,
                         lq_distill_run_result *res);

/* ---- sequences (quant-distill --sequences) ------------------------------------------------- */

/* Continuations sampled from the teacher, one JSON object per line, in a directory:
 *   DIR/manifest.json    {"format": "lq-distill-sequences", "version": 1, "settings": {...},
 *                         "file": "sequences.jsonl", "records": N, "bytes": B, "complete": b}
 *   DIR/sequences.jsonl  the first B bytes are N committed records, each ending with "\n"
 * `settings` (a JSON object the caller chooses; a "teacher_id" member names the teacher) fixes
 * everything that shapes the records. Each record is committed on its own (appended, fdatasync,
 * manifest replaced atomically), so a resumed run starts at record N; on reopen the JSONL file
 * is truncated to B bytes. The record contents must be a function of their index for a resumed
 * run to equal an uninterrupted one (the tool derives every record's seed from its index). */
typedef struct lq_seq_writer lq_seq_writer;

/* Create `dir` (or an empty directory), or reopen a run: LQ_ERR_MISMATCH if its manifest names
 * another teacher ("written by another teacher") or other settings, or is another kind of
 * output; LQ_ERR_EXISTS for a non-empty directory without a manifest. */
lq_status lq_seq_writer_open(const char *dir, const char *settings_json, lq_seq_writer **out);
/* Records committed so far. */
int64_t lq_seq_writer_records(const lq_seq_writer *w);
/* Whether the run was finished (nothing left to do). */
bool lq_seq_writer_complete(const lq_seq_writer *w);
/* Append one record (`len` bytes of JSON, no newline inside) and commit it durably. */
lq_status lq_seq_writer_append(lq_seq_writer *w, const char *line, size_t len);
/* Mark the run complete. */
lq_status lq_seq_writer_finish(lq_seq_writer *w);
/* Close; what is committed stays. NULL is a no-op. */
void lq_seq_writer_free(lq_seq_writer *w);

/* Reading a sequences directory (quant-distill --inspect): the committed records only. */
typedef struct lq_seq_reader lq_seq_reader;

/* Whether `dir` holds a sequences output (its manifest says so); never fails. */
bool lq_seq_is_dataset(const char *dir);
/* Open a sequences directory: its manifest and the committed bytes of sequences.jsonl. */
lq_status lq_seq_open(const char *dir, lq_seq_reader **out);
void lq_seq_close(lq_seq_reader *r);
int64_t lq_seq_count(const lq_seq_reader *r);
bool lq_seq_is_complete(const lq_seq_reader *r);
/* The manifest's settings object as compact JSON text (owned by the reader). */
const char *lq_seq_settings(const lq_seq_reader *r);
/* Record i (0 .. count-1): its JSON line without the newline, valid while r is open. */
lq_status lq_seq_get(const lq_seq_reader *r, int64_t i, const char **line, size_t *len);

/* The driver of quant-distill --sequences: `sequences` continuations of every prompt. */
typedef struct lq_seq_run_opts {
    const char *prompts;       /* file of prompts (non-empty lines or separator units), or NULL */
    const char *prompt;        /* the one prompt (may be "": BOS only) when prompts is NULL */
    const char *separator;     /* units of `prompts`; NULL or "" = newline */
    const char *out;           /* directory: created, or an unfinished run resumed */
    const char *teacher_name;  /* informational, in the settings */
    int sequences;             /* records per prompt, >= 1 (with beams: the N best, <= beams) */
    int max_tokens;            /* tokens generated per record at most, >= 1 */
    lq_sample_params sp;       /* temperature 0 = greedy; seed: the run's (records derive theirs,
                                * lq_seq_record_seed) */
    int beams;                 /* > 1: beam search instead of sampling */
    float length_penalty;      /* beam search */
    lq_pool *pool;             /* borrowed; NULL = one thread */
    lq_distill_run_hooks hooks; /* progress counts records; begin's corpus_bytes is the total */
} lq_seq_run_opts;

typedef struct lq_seq_run_result {
    int64_t resumed_from, added, records, prompts;
    bool already_complete;
    const char *mode;          /* "greedy", "sample" or "beam" (static) */
    char *params_json;         /* the decoding options as stored in every record (free()) */
    double seconds;
} lq_seq_run_result;

/* Generate into o->out; a run killed and resumed with the same options ends with the same
 * bytes. Errors: LQ_ERR_INVALID_ARG (no prompts, an empty prompt without BOS, a prompt that
 * fills the context), LQ_ERR_MISMATCH (another teacher's or other options' directory, prompts
 * changed under a resumed run), the writer's. */
lq_status lq_seq_run(const lq_model *m, const lq_tokenizer *tok, const lq_seq_run_opts *o,
                     lq_seq_run_result *res);

/* The seed of record (prompt p, sample j) of a run seeded with `seed`: SplitMix64 steps over
 * the three values, so records are independent streams and a resumed run can start anywhere. */
uint64_t lq_seq_record_seed(uint64_t seed, uint64_t prompt, uint64_t sample);

#ifdef __cplusplus
}
#endif
#endif
