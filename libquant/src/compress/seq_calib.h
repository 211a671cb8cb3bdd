/* seq_calib.h - the start every sequential (layer-by-layer) calibration shares (internal):
 * draw the samples, open a session of their length, embed them. layerwise.c (GPTQ, SparseGPT,
 * Wanda) and smooth_run.c (AWQ, SmoothQuant) then walk the decoder layers over X, each its own way. */
#ifndef LQ_SEQ_CALIB_H
#define LQ_SEQ_CALIB_H

#include "libquant/lq_gptq.h"
#include "libquant/lq_model.h"

typedef struct lq_seq {
    lq_session *ses;             /* context = the sample length; CPU */
    lq_calib_set cs;             /* the samples (ids) */
    float *X;                    /* (n_samples, len, dim): the hidden states entering a layer */
    int dim;
    int64_t stride;              /* len * dim: floats per sample in X */
} lq_seq;

/* lq_calib_samples over src's files with the model's tokenizer (or src->tokenizer), n_samples
 * (0 = 128) windows of sample_len (0 = 512) tokens drawn with its seed; a session on m of that
 * context; X = every sample's embedding (lq_session_embed). `what` prefixes messages. */
lq_status lq_seq_begin(lq_model *m, const char *model_path, const lq_calib_source *src, lq_pool *pool,
                       const char *what, lq_seq *out);
void lq_seq_end(lq_seq *s); /* NULL-safe on a zeroed struct */

#endif
