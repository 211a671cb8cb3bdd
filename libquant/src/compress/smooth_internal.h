/* smooth_internal.h - AWQ and SmoothQuant's shared parts (internal): the mappings read from the
 * architecture descriptor, the f32 copies of the tensors a transform changes (the overlay), the
 * fold of one mapping's scales and the writer of the smoothed float checkpoint. */
#ifndef LQ_SMOOTH_INTERNAL_H
#define LQ_SMOOTH_INTERNAL_H

#include "arch.h"
#include "libquant/lq_checkpoint.h"
#include "libquant/lq_model.h"
#include "libquant/lq_smooth.h"

#define SM_MAX_BAL 3

/* One kind of mapping: the smooth role (a norm, or a Linear whose rows produce the activation)
 * and the balance Linears reading its output. block: the layer block whose output AWQ scores
 * (LQ_BLOCK_ATTN / LQ_BLOCK_FFN), or -1 when it is the balance Linear's own output. */
typedef struct sm_spec {
    lq_role smooth;
    lq_role bal[SM_MAX_BAL];
    int n_bal;
    int block;
    bool smoothquant;            /* in SmoothQuant's default mappings too */
} sm_spec;

extern const sm_spec lq_sm_specs[];
extern const int lq_sm_n_specs;

/* Whether layer l of model m can take spec sp: every role bound, a dense FFN for the FFN
 * mappings, and a Linear smooth layer whose rows equal the balance columns (GQA v -> o is not). */
bool lq_sm_applies(const lq_model *m, const lq_arch *a, const sm_spec *sp, int l);

/* f32 copies of the tensors a transform changes, loaded from the checkpoint on first use. */
typedef struct sm_buf {
    char name[192];              /* tensor name: "model.layers.3.self_attn.q_proj.weight" */
    float *data;
    int64_t n;
} sm_buf;

typedef struct sm_overlay {
    const lq_checkpoint *c;
    sm_buf *b;
    int64_t n, cap;
} sm_overlay;

/* The copy of tensor `name` (loaded on first use) into *out, its element count into *n (may be
 * NULL); LQ_ERR_NOT_FOUND when the checkpoint has no such float tensor. */
lq_status lq_sm_get(sm_overlay *o, const char *name, float **out, int64_t *n);
void lq_sm_overlay_free(sm_overlay *o);

/* The weight tensor name of role r in layer l ("...q_proj.weight"; ".bias" with bias). */
bool lq_sm_tensor(const lq_arch *a, lq_role r, int l, bool bias, char *buf, size_t cap);

/* Fold s (n channels) into mapping sp of layer l: every balance weight's column j times s_j, the
 * smooth norm's weight (as the model uses it: stored + norm_offset) or the smooth Linear's row
 * j and bias divided by s_j. */
lq_status lq_sm_fold(sm_overlay *o, const lq_arch *a, const sm_spec *sp, int l, const float *s, int64_t n,
                     float norm_offset);

/* Write the smoothed checkpoint into out_dir: every tensor of the input in its dtype (the
 * overlay's where it has one; a tied lm_head.weight stored as an alias of the embedding is left
 * out),
 * config.json and the tokenizer files. */
lq_status lq_sm_write(const sm_overlay *o, const char *model_path, const char *out_dir);

/* ---- AWQ's search of one mapping ----------------------------------------------------------- */

typedef struct awq_job {
    const lq_smooth_opts *o;
    lq_model *m;
    lq_session *ses;
    const sm_spec *sp;
    int layer;
    int64_t cols;                /* channels */
    float *W[SM_MAX_BAL];        /* the balance weights now (rows_i x cols) */
    int64_t rows[SM_MAX_BAL];
    char module[SM_MAX_BAL][160];
    lq_scale_dtype scale_dtype;  /* the checkpoint's dtype: scales rounded to it, as RTN */
    const double *abs_sum;       /* sum over tokens of |x_j| */
    int64_t n_tok;
    /* block mappings: the samples' block input and float output */
    const float *in, *ref;
    int64_t n_samples, stride;
    int len;
    /* Linear mappings: H = 2 sum x x^T of the balance Linear's input */
    const double *H;
} awq_job;

/* Grid search; s (cols floats) receives the best scales, st the chosen point and errors. */
lq_status lq_awq_search(const awq_job *j, float *s, lq_smooth_stat *st);

/* ---- SmoothQuant's scales ------------------------------------------------------------------ */

/* s_j from the activation range (max - min per channel) and the balance weights. */
void lq_sq_scales(const float *range, float *const *W, const int64_t *rows, int n_bal, int64_t cols, double alpha,
                  float *s);

#endif
