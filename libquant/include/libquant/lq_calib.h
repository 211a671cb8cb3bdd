/* lq_calib.h - calibration statistics for the quantizers.
 *
 * lq_imatrix: per Linear module, the mean square of each input column over the calibration
 * tokens, as llama.cpp's imatrix (tools/imatrix: for every matmul it adds x^2 of each input
 * column over the rows of the batch and divides by the token count). The clip search weights a
 * group's error by it (lq_ptq_opts.calib): sum_j E[x_j^2] e_j^2 is the expected squared error the
 * quantized row adds to the layer's output (the diagonal of X^T X / n).
 *
 * It is filled by a per-Linear input hook (lq_session_set_linear_hook, lq_model.h) while
 * lq_imatrix_collect runs a token stream through a session, or read from llama.cpp's files
 * (lq_imatrix_load: llama-imatrix's GGUF imatrix and its legacy .dat), and written as them
 * (lq_imatrix_save; compress/imatrix_file.c). The hook names entries by HF module
 * ("model.layers.3.mlp.up_proj"), llama.cpp's files by GGUF tensor ("blk.3.ffn_up.weight");
 * once lq_imatrix_set_config gave it the model's architecture, either spelling finds an entry,
 * and the files get GGUF names. Sparse-MoE experts (llama.cpp's 3-D *_exps entries) are not
 * supported yet: saving refuses them by name.
 */
#ifndef LQ_CALIB_H
#define LQ_CALIB_H

#include <stdint.h>

#include "lq_checkpoint.h"
#include "lq_model.h"
#include "lq_ptq.h"
#include "lq_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lq_imatrix lq_imatrix;

lq_status lq_imatrix_create(lq_imatrix **out);
void lq_imatrix_free(lq_imatrix *im); /* NULL is a no-op */

/* An lq_linear_hook; user is the lq_imatrix. Adds sum_t x[t][j]^2 (double) and n_tokens to the
 * module's entry. A hook cannot fail: out of memory, or a module seen with two widths, is kept
 * and returned by lq_imatrix_status. */
void lq_imatrix_hook(void *user, const lq_linear_input *in);
lq_status lq_imatrix_status(const lq_imatrix *im);

/* Run ids[0..n) through s (a session of m) in chunks of ctx tokens (the last, shorter one too if it has at least
 * 2), each from position 0 with every row's logits computed (so the output head sees every
 * token); bos >= 0 replaces each chunk's first token (llama-imatrix does the same when the
 * model adds BOS). The session's linear hook is set to im for the call and removed after. */
lq_status lq_imatrix_collect(const lq_model *m, lq_session *s, const int32_t *ids, int64_t n, int ctx,
                             int32_t bos, lq_imatrix *im);

/* The module's mean squares (cols floats, valid until the next hook call or free) and its token
 * count; NULL when the module was never seen or had another width. */
const float *lq_imatrix_get(lq_imatrix *im, const char *module, int64_t cols, int64_t *n_tokens);
/* Modules seen. */
int64_t lq_imatrix_count(const lq_imatrix *im);

/* The model the names refer to (its architecture maps HF module names to GGUF tensor names).
 * LQ_ERR_UNSUPPORTED for an architecture without a descriptor. */
lq_status lq_imatrix_set_config(lq_imatrix *im, const lq_config *c);
/* The GGUF tensor name of module (an HF module name, "lm_head" -> "output.weight"; a name that
 * is not one, e.g. already "blk.0.attn_q.weight", is copied). False when it has none or buf is
 * too small. Needs lq_imatrix_set_config for HF names. */
bool lq_imatrix_gguf_name(const lq_imatrix *im, const char *module, char *buf, size_t cap);

/* Entry i (0 <= i < lq_imatrix_count): its name, width, token count and raw sums of squares
 * (cols doubles, valid until the next hook call or free). False when i is out of range. */
bool lq_imatrix_entry(const lq_imatrix *im, int64_t i, const char **name, int64_t *cols, int64_t *n_tokens,
                      const double **sums);

/* llama.cpp's metadata: chunks of chunk_size tokens seen (imatrix.chunk_count, .chunk_size) and
 * the calibration files (imatrix.datasets). */
void lq_imatrix_set_chunks(lq_imatrix *im, int64_t chunk_count, int64_t chunk_size);
lq_status lq_imatrix_add_dataset(lq_imatrix *im, const char *name);
int64_t lq_imatrix_chunk_count(const lq_imatrix *im);
int64_t lq_imatrix_chunk_size(const lq_imatrix *im);
int64_t lq_imatrix_dataset_count(const lq_imatrix *im);
const char *lq_imatrix_dataset(const lq_imatrix *im, int64_t i);

typedef enum lq_imatrix_format {
    LQ_IMATRIX_GGUF = 0, /* llama-imatrix's default: general.type "imatrix", per entry the F32
                          * tensors "<name>.in_sum2" (sums of squares) and "<name>.counts" */
    LQ_IMATRIX_DAT = 1,  /* its legacy --output-format dat: per entry the mean square times the
                          * number of chunks, then the chunk count and the dataset name */
} lq_imatrix_format;

/* Write im as llama-imatrix does (entries sorted by name; only decoder-layer "blk." tensors, as
 * llama-imatrix without --process-output), temp file + rename. LQ_ERR_UNSUPPORTED naming an
 * entry that has no GGUF name (an MoE expert, or no lq_imatrix_set_config). */
lq_status lq_imatrix_save(const lq_imatrix *im, const char *path, lq_imatrix_format fmt);
/* Read a GGUF imatrix or a legacy .dat (told apart by the GGUF magic, as llama.cpp does) into a
 * new lq_imatrix; its names are the file's. One-line errors naming the file and entry. */
lq_status lq_imatrix_load(const char *path, lq_imatrix **out);

/* Static KV-cache scales of the model at model_path from the calibration samples of src: each
 * sample runs through an f32-cache session from position 0, and the scales are max |K|, |V|
 * (per kv head, or per layer when !per_head) over every token / 448 (is_float: E4M3) or / 127.5
 * (int8; compressed-tensors' symmetric minmax observer), with the attention module names, for lq_ptq_opts.kv. Free with lq_ptq_kv_free. */
struct lq_calib_source;
lq_status lq_kv_calibrate(const char *model_path, const struct lq_calib_source *src, lq_pool *pool, bool is_float,
                          bool per_head, lq_ptq_kv *out);

/* lq_ptq_opts.calib over im (borrowed: im must outlive the quantization). */
lq_ptq_calib lq_imatrix_ptq_calib(lq_imatrix *im);

#ifdef __cplusplus
}
#endif

#endif
