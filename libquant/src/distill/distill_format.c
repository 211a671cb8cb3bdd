/* distill_format.c - shard header and block header (de)serialization, teacher identity, the
 * top-k summary of a logits row and KL from it. */
#include "distill_internal.h"

#include "libquant/lq_checkpoint.h"

#include <math.h>
#include <stdlib.h>
#include <zlib.h>

uint32_t lqd_crc32(const void *p, size_t n) {
    uLong c = crc32(0L, Z_NULL, 0);
    const uint8_t *b = p;
    /* zlib takes uInt lengths: feed huge buffers in pieces */
    while (n > 0) {
        uInt step = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, b, step);
        b += step;
        n -= step;
    }
    return (uint32_t)c;
}

uint64_t lqd_record_size(const lq_distill_meta *m, uint64_t n) {
    if (n == 0 || n > (1u << 24)) return 0;
    uint64_t k = (uint64_t)m->k;
    uint64_t per_pos = 4 + k * 4 + k * lqd_logp_size(m->logp_dtype) + 4 +
                       2 * (uint64_t)m->n_feat_layers * (uint64_t)m->dim;
    return LQD_RECORD_HEADER_SIZE + n * per_pos;
}

/* ---- shard header -------------------------------------------------------------------------- */

void lqd_header_encode(const lq_distill_meta *m, const lqd_shard_state *s, uint8_t *out) {
    memset(out, 0, LQD_HEADER_SIZE);
    memcpy(out, LQD_MAGIC, 8);
    lqd_put32(out + LQD_H_VERSION, LQ_DISTILL_VERSION);
    lqd_put32(out + LQD_H_HEADER_SIZE, LQD_HEADER_SIZE);
    lqd_put64(out + LQD_H_TEACHER, m->teacher_id);
    lqd_put64(out + LQD_H_TOKHASH, m->tokenizer_hash);
    lqd_put64(out + LQD_H_RUN, m->run_id);
    lqd_put32(out + LQD_H_VOCAB, (uint32_t)m->vocab);
    lqd_put32(out + LQD_H_K, (uint32_t)m->k);
    lqd_put32(out + LQD_H_DIM, (uint32_t)m->dim);
    lqd_put32(out + LQD_H_NCTX, (uint32_t)m->n_ctx);
    lqd_put32(out + LQD_H_MODE, (uint32_t)m->mode);
    lqd_put32(out + LQD_H_LOGP_DTYPE, (uint32_t)m->logp_dtype);
    lqd_put32(out + LQD_H_FEAT_DTYPE, (uint32_t)LQ_DTYPE_F16);
    lqd_put32(out + LQD_H_NFEAT, (uint32_t)m->n_feat_layers);
    for (int i = 0; i < LQ_DISTILL_MAX_FEAT_LAYERS; i++)
        lqd_put32(out + LQD_H_FEAT_LAYERS + 4 * i,
                  i < m->n_feat_layers ? (uint32_t)m->feat_layers[i] : 0);
    size_t nl = strnlen(m->teacher_name, sizeof m->teacher_name - 1);
    memcpy(out + LQD_H_NAME, m->teacher_name, nl);
    lqd_put32(out + LQD_H_SHARD, s->shard_index);
    lqd_put32(out + LQD_H_NBLOCKS, s->n_blocks);
    lqd_put64(out + LQD_H_FIRST_RECORD, s->first_record);
    lqd_put64(out + LQD_H_NRECORDS, s->n_records);
    lqd_put64(out + LQD_H_NTOKENS, s->n_tokens);
    lqd_put64(out + LQD_H_INDEX_OFF, s->index_offset);
    lqd_put32(out + LQD_H_INDEX_CRC, s->index_crc);
    lqd_put32(out + LQD_H_CRC, lqd_crc32(out, LQD_H_CRC));
}

lq_status lqd_header_decode(const uint8_t *in, const char *name, lq_distill_meta *m,
                            lqd_shard_state *s) {
    if (memcmp(in, LQD_MAGIC, 8) != 0)
        return lq_fail(LQ_ERR_FORMAT, "%s: offset 0: not a distillation shard (bad magic)",
                       name);
    uint32_t ver = lqd_get32(in + LQD_H_VERSION);
    if (ver != LQ_DISTILL_VERSION)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: offset %d: format version %u (this build reads %d)",
                       name, LQD_H_VERSION, ver, LQ_DISTILL_VERSION);
    if (lqd_get32(in + LQD_H_HEADER_SIZE) != LQD_HEADER_SIZE)
        return lq_fail(LQ_ERR_FORMAT, "%s: offset %d: header size %u, expected %d", name,
                       LQD_H_HEADER_SIZE, lqd_get32(in + LQD_H_HEADER_SIZE), LQD_HEADER_SIZE);
    if (lqd_get32(in + LQD_H_CRC) != lqd_crc32(in, LQD_H_CRC))
        return lq_fail(LQ_ERR_FORMAT, "%s: offset %d: header checksum mismatch", name, LQD_H_CRC);
    memset(m, 0, sizeof *m);
    m->teacher_id = lqd_get64(in + LQD_H_TEACHER);
    m->tokenizer_hash = lqd_get64(in + LQD_H_TOKHASH);
    m->run_id = lqd_get64(in + LQD_H_RUN);
    uint32_t vocab = lqd_get32(in + LQD_H_VOCAB), k = lqd_get32(in + LQD_H_K);
    uint32_t dim = lqd_get32(in + LQD_H_DIM), nctx = lqd_get32(in + LQD_H_NCTX);
    uint32_t mode = lqd_get32(in + LQD_H_MODE), ldt = lqd_get32(in + LQD_H_LOGP_DTYPE);
    uint32_t fdt = lqd_get32(in + LQD_H_FEAT_DTYPE), nf = lqd_get32(in + LQD_H_NFEAT);
    if (vocab < 1 || vocab > (1u << 24) || k < 1 || k > vocab)
        return lq_fail(LQ_ERR_FORMAT, "%s: offset %d: bad vocab %u / k %u", name, LQD_H_VOCAB,
                       vocab, k);
    if (dim > (1u << 20) || nctx > (1u << 24) || mode > LQ_DISTILL_MODE_PER_UNIT)
        return lq_fail(LQ_ERR_FORMAT, "%s: offset %d: bad dim %u / n_ctx %u / mode %u", name,
                       LQD_H_DIM, dim, nctx, mode);
    if ((ldt != LQ_DTYPE_F32 && ldt != LQ_DTYPE_F16) || fdt != LQ_DTYPE_F16)
        return lq_fail(LQ_ERR_FORMAT, "%s: offset %d: bad dtypes (log-probs %u, features %u)",
                       name, LQD_H_LOGP_DTYPE, ldt, fdt);
    if (nf > LQ_DISTILL_MAX_FEAT_LAYERS || (nf > 0 && dim == 0))
        return lq_fail(LQ_ERR_FORMAT, "%s: offset %d: bad feature layer count %u", name,
                       LQD_H_NFEAT, nf);
    m->vocab = (int32_t)vocab;
    m->k = (int32_t)k;
    m->dim = (int32_t)dim;
    m->n_ctx = (int32_t)nctx;
    m->mode = (int32_t)mode;
    m->logp_dtype = (lq_dtype)ldt;
    m->n_feat_layers = (int32_t)nf;
    for (uint32_t i = 0; i < nf; i++)
        m->feat_layers[i] = (int32_t)lqd_get32(in + LQD_H_FEAT_LAYERS + 4 * i);
    memcpy(m->teacher_name, in + LQD_H_NAME, sizeof m->teacher_name - 1);
    m->teacher_name[sizeof m->teacher_name - 1] = 0;
    s->shard_index = lqd_get32(in + LQD_H_SHARD);
    s->n_blocks = lqd_get32(in + LQD_H_NBLOCKS);
    s->first_record = lqd_get64(in + LQD_H_FIRST_RECORD);
    s->n_records = lqd_get64(in + LQD_H_NRECORDS);
    s->n_tokens = lqd_get64(in + LQD_H_NTOKENS);
    s->index_offset = lqd_get64(in + LQD_H_INDEX_OFF);
    s->index_crc = lqd_get32(in + LQD_H_INDEX_CRC);
    return LQ_OK;
}

/* ---- block header ---------------------------------------------------------------------------- */

void lqd_block_header_encode(const lqd_block_header *b, uint8_t *out) {
    lqd_put32(out, LQD_BLOCK_MAGIC);
    lqd_put32(out + 4, b->n_records);
    lqd_put64(out + 8, b->first_record);
    lqd_put32(out + 16, b->raw_size);
    lqd_put32(out + 20, b->comp_size);
    lqd_put32(out + 24, b->payload_crc);
    lqd_put32(out + 28, lqd_crc32(out, 28));
}

lq_status lqd_block_header_decode(const uint8_t *in, const char *name, uint64_t offset,
                                  lqd_block_header *b) {
    if (lqd_get32(in) != LQD_BLOCK_MAGIC)
        return lq_fail(LQ_ERR_FORMAT, "%s: offset %llu: bad block magic", name,
                       (unsigned long long)offset);
    if (lqd_get32(in + 28) != lqd_crc32(in, 28))
        return lq_fail(LQ_ERR_FORMAT, "%s: offset %llu: block header checksum mismatch", name,
                       (unsigned long long)offset);
    b->n_records = lqd_get32(in + 4);
    b->first_record = lqd_get64(in + 8);
    b->raw_size = lqd_get32(in + 16);
    b->comp_size = lqd_get32(in + 20);
    b->payload_crc = lqd_get32(in + 24);
    if (b->n_records == 0 || b->raw_size > LQD_MAX_BLOCK_RAW ||
        (uint64_t)b->n_records * LQD_RECORD_HEADER_SIZE > b->raw_size)
        return lq_fail(LQ_ERR_FORMAT, "%s: offset %llu: bad block (%u records, %u raw bytes)",
                       name, (unsigned long long)offset, b->n_records, b->raw_size);
    return LQ_OK;
}

bool lqd_meta_same(const lq_distill_meta *a, const lq_distill_meta *b) {
    if (a->teacher_id != b->teacher_id || a->tokenizer_hash != b->tokenizer_hash ||
        a->run_id != b->run_id || a->vocab != b->vocab || a->k != b->k || a->dim != b->dim ||
        a->n_ctx != b->n_ctx || a->mode != b->mode || a->logp_dtype != b->logp_dtype ||
        a->n_feat_layers != b->n_feat_layers)
        return false;
    for (int i = 0; i < a->n_feat_layers; i++)
        if (a->feat_layers[i] != b->feat_layers[i]) return false;
    return true;
}

/* ---- teacher identity ------------------------------------------------------------------------ */

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull
#define ID_SAMPLE 256 /* bytes hashed at the start, middle and end of every tensor */

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= FNV_PRIME;
    }
    return h;
}

static uint64_t fnv_u64(uint64_t h, uint64_t v) {
    uint8_t b[8];
    lqd_put64(b, v);
    return fnv(h, b, 8);
}

uint64_t lq_distill_teacher_id(const lq_model *m) {
    uint64_t h = FNV_OFFSET;
    char *cfg = NULL;
    /* the rendered config, not the file: a llama2.c .bin has none, and formatting-only edits of
     * config.json do not change the teacher */
    if (lq_config_to_json(lq_model_config(m), &cfg) == LQ_OK && cfg) {
        h = fnv(h, cfg, strlen(cfg));
        free(cfg);
    }
    int64_t n = lq_checkpoint_count(lq_model_checkpoint(m));
    for (int64_t i = 0; i < n; i++) {
        const lq_tensor *t = lq_checkpoint_get(lq_model_checkpoint(m), i);
        h = fnv(h, t->name, strlen(t->name) + 1);
        h = fnv_u64(h, (uint64_t)t->dtype);
        h = fnv_u64(h, (uint64_t)t->ndim);
        for (int d = 0; d < t->ndim; d++) h = fnv_u64(h, (uint64_t)t->shape[d]);
        const uint8_t *b = t->data;
        size_t nb = t->nbytes, s = nb < ID_SAMPLE ? nb : ID_SAMPLE;
        h = fnv(h, b, s);
        h = fnv(h, b + nb / 2 - (nb / 2 < s / 2 ? nb / 2 : s / 2), s);
        h = fnv(h, b + nb - s, s);
    }
    return h;
}

/* ---- top-k ----------------------------------------------------------------------------------- */

/* Strict order of (logit, id): larger logit first, then lower id. */
static inline bool before(float la, int32_t ia, float lb, int32_t ib) {
    return la > lb || (la == lb && ia < ib);
}

/* Min-heap on `before` (root = the entry that sorts last), over parallel arrays. */
static void sift_down(float *v, int32_t *id, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && before(v[w], id[w], v[l], id[l])) w = l;
        if (r < n && before(v[w], id[w], v[r], id[r])) w = r;
        if (w == i) return;
        float tv = v[i];
        v[i] = v[w];
        v[w] = tv;
        int32_t ti = id[i];
        id[i] = id[w];
        id[w] = ti;
        i = w;
    }
}

void lq_distill_topk(const float *logits, int vocab, int k, int32_t *ids, float *logp,
                     float *rest_logp) {
    /* logp doubles as the heap's value array until the end */
    float mx = logits[0];
    for (int i = 0; i < k; i++) {
        logp[i] = logits[i];
        ids[i] = i;
        if (logits[i] > mx) mx = logits[i];
    }
    for (int i = k / 2 - 1; i >= 0; i--) sift_down(logp, ids, k, i);
    for (int i = k; i < vocab; i++) {
        float l = logits[i];
        if (l > mx) mx = l;
        if (l > logp[0]) { /* ties never displace: a later id sorts after */
            logp[0] = l;
            ids[0] = i;
            sift_down(logp, ids, k, 0);
        }
    }
    /* heap sort: pop the last-sorting entry into the tail */
    for (int n = k - 1; n > 0; n--) {
        float tv = logp[0];
        logp[0] = logp[n];
        logp[n] = tv;
        int32_t ti = ids[0];
        ids[0] = ids[n];
        ids[n] = ti;
        sift_down(logp, ids, n, 0);
    }
    double z = 0.0;
    for (int i = 0; i < vocab; i++) z += exp((double)logits[i] - mx);
    double top = 0.0;
    for (int i = 0; i < k; i++) top += exp((double)logp[i] - mx);
    double rest = z - top;
    if (k == vocab) {
        rest = 0.0;
    } else if (rest < 1e-3 * z) {
        /* Z - top loses relative precision when the tail is tiny: sum the tail itself. An id is
         * in the top-k iff it sorts no later than the k-th entry. */
        float lk = logp[k - 1];
        int32_t ik = ids[k - 1];
        rest = 0.0;
        for (int i = 0; i < vocab; i++)
            if (!(logits[i] > lk || (logits[i] == lk && i <= ik)))
                rest += exp((double)logits[i] - mx);
    }
    double lz = log(z);
    for (int i = 0; i < k; i++) logp[i] = (float)((double)logp[i] - mx - lz);
    *rest_logp = rest > 0.0 ? (float)(log(rest) - lz) : -INFINITY;
}

double lq_distill_kl(const int32_t *ids, const float *logp, float rest_logp, int k,
                     const float *student_logsoftmax) {
    double kl = 0.0, q_top = 0.0;
    for (int i = 0; i < k; i++) {
        double lp = logp[i], lq = student_logsoftmax[ids[i]];
        kl += exp(lp) * (lp - lq);
        q_top += exp(lq);
    }
    if (isfinite(rest_logp)) {
        double q_rest = 1.0 - q_top;
        /* a student that puts (numerically) all its mass on the teacher's top-k: floor the tail
         * at the smallest positive double so the term stays finite and large */
        if (q_rest < 1e-300) q_rest = 1e-300;
        kl += exp((double)rest_logp) * ((double)rest_logp - log(q_rest));
    }
    return kl;
}
