/* distill_run_internal.h - state of one lq_distill_run shared by its set-up (distill_run.c) and
 * its corpus loops (distill_run_loop.c). */
#ifndef LQ_DISTILL_RUN_INTERNAL_H
#define LQ_DISTILL_RUN_INTERNAL_H

#include "libquant/lq_distill.h"

typedef struct lqd_run {
    const lq_distill_run_opts *o;
    const lq_tokenizer *tok;
    lq_pool *pool;
    lq_session *sess;
    lq_distill_writer *w;
    lq_distill_meta meta;
    int vocab, k, ctx;
    float *logits;          /* (ctx, vocab) */
    int32_t *ids;           /* (ctx, k) */
    float *logp;            /* (ctx, k) */
    float *rest;            /* (ctx) */
    uint16_t *feat;         /* (n_feat_layers, ctx, dim) */
    int cur_n;              /* tokens of the record being computed (hook layout) */
    int64_t added;
    uint64_t corpus_size;   /* bytes (progress total) */
} lqd_run;

/* Forward one record's tokens at position 0 and add its soft labels (and features). */
lq_status lqd_run_emit(lqd_run *r, const int32_t *tokens, int n, uint64_t source_offset);
/* Report corpus bytes consumed. */
void lqd_run_progress(lqd_run *r, uint64_t done);

/* The two ways of cutting the corpus, each resuming at the writer's cursor. */
lq_status lqd_run_units(lqd_run *r);
lq_status lqd_run_chunks(lqd_run *r);

/* Encode text into a growing id buffer (*ids of *cap ids; realloc'd as needed); `next`: a segment
 * that continues the text at a safe cut (lq_tokenizer_encode_next, no dummy prefix). */
lq_status lqd_encode(const lq_tokenizer *tok, const char *text, size_t len, bool bos, bool next,
                     int32_t **ids, int64_t *cap, int64_t *n);

#endif
