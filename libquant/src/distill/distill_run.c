/* distill_run.c - lq_distill_run: the one distillation driver (quant-distill and quant-recipe's
 * distill_stage both call it, so a recipe's dataset is byte for byte quant-distill's).
 *
 * This file sets a run up (meta, writer, buffers, session) and forwards one record at a time;
 * distill_run_loop.c cuts the corpus into records and keeps the resume cursor. */
#include "distill_run_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "libquant/lq_file.h"
#include "lq_blocks.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t fnv1a_str(uint64_t h, const char *s) {
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

lq_status lq_distill_corpus_id(const char *path, const char *separator, bool chunks, uint64_t *id,
                               uint64_t *size) {
    FILE *f;
    LQ_TRY(lq_file_fopen_input(path, &f)); /* refuses a FIFO instead of blocking on it */
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return lq_fail(LQ_ERR_IO, "%s: not a regular file", path);
    }
    fseeko(f, 0, SEEK_END);
    off_t sz = ftello(f);
    *size = sz > 0 ? (uint64_t)sz : 0;
    uint64_t h = 0xcbf29ce484222325ull;
    unsigned char b[4096];
    off_t starts[2] = {0, sz > (64 << 10) ? sz - (64 << 10) : 0};
    for (int s = 0; s < 2; s++) {
        fseeko(f, starts[s], SEEK_SET);
        size_t total = 0, got;
        while (total < (64 << 10) && (got = fread(b, 1, sizeof b, f)) > 0) {
            for (size_t i = 0; i < got; i++) h = (h ^ b[i]) * 0x100000001b3ull;
            total += got;
        }
    }
    fclose(f);
    h = (h ^ (uint64_t)sz) * 0x100000001b3ull;
    h = fnv1a_str(h, separator ? separator : "");
    if (chunks) h = fnv1a_str(h, "segments/safe-cut");
    *id = h;
    return LQ_OK;
}

/* ---- one record ---------------------------------------------------------------------------- */

static void feature_hook(void *user, int layer, const float *x, int n, int pos) {
    lqd_run *r = user;
    const lq_distill_meta *m = &r->meta;
    for (int l = 0; l < m->n_feat_layers; l++) {
        if (m->feat_layers[l] != layer) continue;
        size_t dim = (size_t)m->dim;
        uint16_t *dst = r->feat + ((size_t)l * (size_t)r->cur_n + (size_t)pos) * dim;
        for (size_t i = 0; i < (size_t)n * dim; i++) dst[i] = lq_f32_to_f16(x[i]);
    }
}

static void topk_task(void *ctx, int64_t t, int tid) {
    (void)tid;
    lqd_run *r = ctx;
    lq_distill_topk(r->logits + (size_t)t * (size_t)r->vocab, r->vocab, r->k,
                    r->ids + (size_t)t * (size_t)r->k, r->logp + (size_t)t * (size_t)r->k,
                    r->rest + t);
}

lq_status lqd_run_emit(lqd_run *r, const int32_t *tokens, int n, uint64_t source_offset) {
    r->cur_n = n;
    LQ_TRY(lq_forward(r->sess, tokens, n, 0, r->logits, true));
    lq_pool_run(r->pool, topk_task, r, n);
    lq_distill_record rec = {.n = n, .source_offset = source_offset, .tokens = tokens,
                             .topk_ids = r->ids, .topk_logp = r->logp, .rest_logp = r->rest,
                             .features = r->meta.n_feat_layers ? r->feat : NULL};
    LQ_TRY(lq_distill_writer_add(r->w, &rec));
    r->added++;
    if (r->o->hooks.record) r->o->hooks.record(r->o->hooks.user, r->added);
    return LQ_OK;
}

void lqd_run_progress(lqd_run *r, uint64_t done) {
    if (r->o->hooks.progress)
        r->o->hooks.progress(r->o->hooks.user, (int64_t)done, (int64_t)r->corpus_size, "distill");
}

/* ---- set-up -------------------------------------------------------------------------------- */

static lq_status fill_meta(lqd_run *r, const lq_model *m, const lq_tokenizer *tok,
                           uint64_t *corpus_size) {
    const lq_distill_run_opts *o = r->o;
    lq_distill_meta *meta = &r->meta;
    if (o->k < 1 || o->k > r->vocab)
        return lq_fail(LQ_ERR_INVALID_ARG, "k %d is not in 1 .. the vocabulary (%d)", o->k,
                       r->vocab);
    if (o->n_feat_layers < 0 || o->n_feat_layers > LQ_DISTILL_MAX_FEAT_LAYERS)
        return lq_fail(LQ_ERR_INVALID_ARG, "features: at most %d layers",
                       LQ_DISTILL_MAX_FEAT_LAYERS);
    for (int l = 0; l < o->n_feat_layers; l++) {
        if (o->feat_layers[l] < 0 || o->feat_layers[l] > lq_model_config(m)->n_layers)
            return lq_fail(LQ_ERR_INVALID_ARG, "features: layer %d of a %d-layer teacher "
                           "(layers are 0 .. %d)", o->feat_layers[l], lq_model_config(m)->n_layers,
                           lq_model_config(m)->n_layers);
        meta->feat_layers[l] = o->feat_layers[l];
    }
    meta->n_feat_layers = o->n_feat_layers;
    LQ_TRY(lq_distill_corpus_id(o->corpus, o->separator, !o->per_unit, &meta->run_id,
                                corpus_size));
    if (*corpus_size == 0) return lq_fail(LQ_ERR_INVALID_ARG, "%s: the corpus is empty", o->corpus);
    meta->teacher_id = lq_distill_teacher_id(m);
    meta->tokenizer_hash = lq_tokenizer_hash(tok);
    meta->vocab = r->vocab;
    meta->k = o->k;
    meta->dim = lq_model_config(m)->dim;
    meta->n_ctx = r->ctx;
    meta->mode = o->per_unit ? LQ_DISTILL_MODE_PER_UNIT : LQ_DISTILL_MODE_CHUNKS;
    meta->logp_dtype = o->logp_f16 ? LQ_DTYPE_F16 : LQ_DTYPE_F32;
    snprintf(meta->teacher_name, sizeof meta->teacher_name, "%s",
             o->teacher_name ? o->teacher_name : "");
    return LQ_OK;
}

static lq_status alloc_buffers(lqd_run *r, const lq_model *m) {
    size_t nl = (size_t)r->ctx * (size_t)r->vocab, nk = (size_t)r->ctx * (size_t)r->k;
    size_t nf = (size_t)r->meta.n_feat_layers * (size_t)r->ctx * (size_t)r->meta.dim;
    r->logits = malloc(nl * sizeof *r->logits);
    r->ids = malloc(nk * sizeof *r->ids);
    r->logp = malloc(nk * sizeof *r->logp);
    r->rest = malloc((size_t)r->ctx * sizeof *r->rest);
    r->feat = nf ? malloc(nf * sizeof *r->feat) : NULL;
    if (!r->logits || !r->ids || !r->logp || !r->rest || (nf && !r->feat))
        return lq_fail(LQ_ERR_NOMEM, "cannot allocate buffers for ctx %d x vocab %d", r->ctx,
                       r->vocab);
    LQ_TRY(lq_session_create(m, r->ctx, r->pool, &r->sess));
    if (r->meta.n_feat_layers) lq_session_set_layer_hook(r->sess, feature_hook, r);
    return LQ_OK;
}

static void run_free(lqd_run *r) {
    lq_session_free(r->sess);
    lq_distill_writer_free(r->w);
    free(r->logits);
    free(r->ids);
    free(r->logp);
    free(r->rest);
    free(r->feat);
}

/* The finished dataset's size, from the files themselves. */
static lq_status summarize(const char *out, lq_distill_run_result *res) {
    lq_distill_reader *rd = NULL;
    LQ_TRY(lq_distill_open(out, &rd));
    res->records = lq_distill_count(rd);
    res->tokens = lq_distill_token_count(rd);
    res->bytes = lq_distill_file_bytes(rd);
    lq_distill_close(rd);
    return LQ_OK;
}

lq_status lq_distill_run(const lq_model *m, const lq_tokenizer *tok, const lq_distill_run_opts *o,
                         lq_distill_run_result *res) {
    lq_distill_run_result dummy;
    if (!res) res = &dummy;
    *res = (lq_distill_run_result){0};
    lqd_run r = {.o = o, .tok = tok, .pool = o->pool, .vocab = lq_model_config(m)->vocab_size, .k = o->k};
    int max_ctx = lq_model_config(m)->max_seq_len;
    r.ctx = o->ctx > 0 ? o->ctx : (o->per_unit ? max_ctx : 512);
    if (r.ctx > max_ctx) r.ctx = max_ctx;
    lq_status s = fill_meta(&r, m, tok, &r.corpus_size);
    lq_distill_writer_opts wo = {.block_bytes = o->block_bytes, .shard_bytes = o->shard_bytes};
    if (s == LQ_OK) s = lq_distill_writer_open(o->out, &r.meta, &wo, &r.w);
    if (s == LQ_OK) {
        res->resumed_from = lq_distill_writer_records(r.w);
        res->already_complete = lq_distill_writer_complete(r.w);
    }
    if (s == LQ_OK && !res->already_complete) {
        s = alloc_buffers(&r, m);
        if (s == LQ_OK && o->hooks.begin)
            o->hooks.begin(o->hooks.user, res->resumed_from, r.corpus_size);
        double t0 = now_s();
        if (s == LQ_OK) s = o->per_unit ? lqd_run_units(&r) : lqd_run_chunks(&r);
        res->seconds = now_s() - t0;
        res->added = r.added;
    }
    run_free(&r); /* closes the writer (and its lock) before the summary reads the files */
    if (s == LQ_OK) s = summarize(o->out, res);
    return s;
}
