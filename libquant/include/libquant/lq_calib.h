/* lq_calib.h - calibration statistics for the quantizers.
 *
 * lq_imatrix: per Linear module, the mean square of each input column over the calibration
 * tokens, as llama.cpp's imatrix (tools/imatrix: for every matmul it adds x^2 of each input
 * column over the rows of the batch and divides by the token count). The clip search weights a
 * group's error by it (lq_ptq_opts.calib): sum_j E[x_j^2] e_j^2 is the expected squared error the
 * quantized row adds to the layer's output (the diagonal of X^T X / n).
 *
 * It is filled by a per-Linear input hook (lq_session_set_linear_hook, lq_model.h) while
 * lq_imatrix_collect runs a token stream through a session.
 */
#ifndef LQ_CALIB_H
#define LQ_CALIB_H

#include <stdint.h>

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

/* lq_ptq_opts.calib over im (borrowed: im must outlive the quantization). */
lq_ptq_calib lq_imatrix_ptq_calib(lq_imatrix *im);

#ifdef __cplusplus
}
#endif

#endif
