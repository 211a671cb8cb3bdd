/* ptq.c - the streaming post-training quantization driver (lq_ptq.h).
 *
 * Two passes over the input's tensor list. The plan decides every tensor's scheme and checks
 * every shape before a byte is written, so bad options fail fast and name the tensor. The
 * stream then quantizes one tensor at a time: convert the mapped view to f32 (rows split across
 * the pool), run the format's quantize_ref on row blocks (rows are independent in every scheme
 * we write: per channel or per group along a row), measure the round-trip error with
 * dequant_ref, and write payload + side tensors through lq_st_writer, which commits atomically.
 * Peak memory: the f32 copy and packed payload of the largest tensor; the mapped input pages of
 * each tensor are released once it is written.
 */
#include "libquant/lq_ptq.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "arch.h"
#include "ct_internal.h"
#include "float_input.h"
#include "libquant/lq_targets.h"
#include "libquant/lq_checkpoint.h"
#include "libquant/lq_safetensors.h"
#include "lq_blocks.h"

#define PTQ_DEFAULT_GROUP 128

typedef struct plan_item {
    const lq_tensor *t;          /* input tensor (a view into the mapping) */
    char module[160];            /* name without ".weight" */
    lq_wfmt scheme;              /* the format written; LQ_WFMT_NONE: copied unchanged */
    lq_quant_params qp;
    int64_t rows, cols, n_groups;
    size_t row_bytes;
    int64_t n_aux0, n_aux1;
    lq_dtype scale_dtype;        /* the model dtype (compressed-tensors stores scales in it) */
    bool is_linear;
    bool fell_back;              /* the group fallback applied (scheme says which action) */
    int32_t fb_group;            /* the group size that did not divide cols */
} plan_item;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static bool has_suffix(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

/* Drop the mapped pages of a tensor we are done with from our resident set (they stay in the
 * page cache): without this, peak RSS grows to the whole input, since every page of the mapping
 * is read once. Only pages wholly inside the tensor are released; a shared boundary page simply
 * faults back in if the next tensor reads it. */
void lq_release_range(const void *p, size_t n) {
    long pg = sysconf(_SC_PAGESIZE);
    if (pg <= 0 || n == 0) return;
    uintptr_t a = (uintptr_t)p, b = a + n;
    uintptr_t lo = (a + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1), hi = b & ~((uintptr_t)pg - 1);
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

void lq_release_checkpoint(const lq_checkpoint *c) {
    for (int64_t i = 0; i < lq_checkpoint_count(c); i++) {
        const lq_tensor *t = lq_checkpoint_get(c, i);
        lq_release_range(t->data, t->nbytes);
    }
}

#define COPY_CHUNK ((size_t)16 << 20)

/* A tensor kept as is: streamed in chunks, each released once written, so even a 500 MB
 * embedding never becomes resident as a whole. */
static lq_status write_copy(lq_st_writer *wr, const lq_tensor *t) {
    const char *p = t->data;
    for (size_t off = 0; off < t->nbytes; off += COPY_CHUNK) {
        size_t n = t->nbytes - off < COPY_CHUNK ? t->nbytes - off : COPY_CHUNK;
        LQ_TRY(lq_st_writer_write(wr, p + off, n));
        lq_release_range(p + off, n);
    }
    return LQ_OK;
}

/* ---- plan -------------------------------------------------------------------------------------- */

/* lm_head and sparse-MoE routers (lq_arch_is_router) stay float unless the caller's ignore list
 * replaces that default; experts are ordinary Linears, quantized one by one. */
static lq_wfmt choose_scheme(const lq_ptq_opts *o, const lq_arch *arch, const char *module,
                             const lq_ptq_rule **rule) {
    lq_wfmt s = o->scheme;
    if (rule) *rule = NULL;
    if (!o->ignore_replaces_default && (strcmp(module, "lm_head") == 0 || lq_arch_is_router(arch, module))) s = LQ_WFMT_NONE;
    /* Patterns were validated by check_opts, so a match cannot fail here. Every module the
     * plan names is a Linear (projections and lm_head). */
    bool hit;
    for (int i = 0; i < o->n_ignore; i++)
        if (lq_target_match_spec(o->ignore[i], module, LQ_MODULE_LINEAR, &hit) == LQ_OK && hit)
            s = LQ_WFMT_NONE;
    for (int i = 0; i < o->n_overrides; i++)
        if (lq_target_match_spec(o->overrides[i].pattern, module, LQ_MODULE_LINEAR, &hit) == LQ_OK && hit) {
            s = o->overrides[i].scheme;
            if (rule) *rule = &o->overrides[i];
        }
    return s;
}

lq_wfmt lq_ptq_module_scheme(const lq_ptq_opts *o, const lq_arch *arch, const char *module) {
    return choose_scheme(o, arch, module, NULL);
}

static lq_scale_dtype to_scale_dtype(lq_dtype d) {
    return d == LQ_DTYPE_F16 ? LQ_SCALE_F16 : d == LQ_DTYPE_BF16 ? LQ_SCALE_BF16 : LQ_SCALE_F32;
}

/* Plan tensor t. as_head: t is the embedding of a tied model, planned as the Linear "lm_head". */
static lq_status plan_tensor(const lq_checkpoint *c, const lq_ptq_opts *o, const lq_tensor *t,
                             bool as_head, plan_item *it) {
    memset(it, 0, sizeof *it);
    it->scheme = LQ_WFMT_NONE;
    it->t = t;
    it->is_linear = t->ndim == 2 && has_suffix(t->name, ".weight") &&
                    (as_head || strcmp(t->name, "model.embed_tokens.weight") != 0);
    if (!it->is_linear) return LQ_OK;
    size_t n = as_head ? strlen("lm_head") : strlen(t->name) - strlen(".weight");
    if (n >= sizeof it->module)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: tensor '%s': name too long", lq_checkpoint_path(c), t->name);
    memcpy(it->module, as_head ? "lm_head" : t->name, n);
    it->module[n] = 0;
    const lq_ptq_rule *rule;
    it->scheme = choose_scheme(o, lq_arch_find(lq_checkpoint_config(c)->arch), it->module, &rule);
    const bool own = rule && rule->own_params; /* a mixed plan's group size and symmetry */
    if (it->scheme == LQ_WFMT_NONE) return LQ_OK;
    if (t->dtype != LQ_DTYPE_F32 && t->dtype != LQ_DTYPE_F16 && t->dtype != LQ_DTYPE_BF16)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s cannot be quantized",
                       lq_checkpoint_path(c), t->name, lq_dtype_name(t->dtype));
    it->rows = t->shape[0];
    it->cols = t->shape[1];
    it->scale_dtype = t->dtype;
    it->qp.scale_dtype = to_scale_dtype(t->dtype);
    it->qp.clip_search = o->clip_search;
    it->qp.rounding = o->rounding;
    if (o->clip_search && o->calib && o->calib->find)
        it->qp.col_weight = o->calib->find(o->calib->user, it->module, it->cols);
    it->n_groups = 1;
    if (lq_ct_grouped(it->scheme)) {
        int32_t g = own ? rule->group_size : o->group_size == 0 ? PTQ_DEFAULT_GROUP : o->group_size;
        it->qp.asym = own ? rule->asym : o->asym;
        if (g > 0 && it->cols % g != 0) {
            /* compressed-tensors has no partial last group (it raises on load), so such a tensor
             * is refused, quantized per output channel (group_size 0 below) or kept in float. */
            if (o->group_fallback == LQ_PTQ_FALLBACK_REFUSE)
                return lq_fail(LQ_ERR_INVALID_ARG, "%s: tensor '%s': group size %d does not divide its "
                               "%lld columns (choose a divisor, or --group-size -1 for one group per row)",
                               lq_checkpoint_path(c), t->name, (int)g, (long long)it->cols);
            it->fell_back = true;
            it->fb_group = g;
            if (o->group_fallback == LQ_PTQ_FALLBACK_IGNORE) {
                it->scheme = LQ_WFMT_NONE;
                return LQ_OK;
            }
        } else if (g > 0) {
            it->qp.group_size = g;
            it->n_groups = it->cols / g;
        }
    }
    if (!lq_wfmt_sizes(it->scheme, it->rows, it->cols, &it->qp, &it->row_bytes, &it->n_aux0, &it->n_aux1))
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: tensor '%s': %lld x %lld cannot be stored as %s",
                       lq_checkpoint_path(c), t->name, (long long)it->rows, (long long)it->cols,
                       lq_ptq_scheme_name(it->scheme));
    /* The payload must be the compressed-tensors tensor's bytes (I32 words or one byte a code). */
    bool packed = lq_ct_packed(it->scheme);
    int bits = lq_ct_bits(it->scheme);
    size_t want = packed ? (size_t)lq_ct_packed_words(it->cols, bits) * 4 : (size_t)it->cols;
    if (it->row_bytes != want || it->n_aux0 != it->rows * it->n_groups ||
        (it->qp.asym && it->n_aux1 != it->rows * it->n_groups))
        return lq_fail(LQ_ERR_UNSUPPORTED, "tensor '%s': the %s kernels' layout (%zu bytes per row, "
                       "%lld scales) is not the compressed-tensors one", t->name,
                       lq_ptq_scheme_name(it->scheme), it->row_bytes, (long long)it->n_aux0);
    return LQ_OK;
}

/* The output head of a tied model has no tensor of its own: the engine (and transformers)
 * multiply by model.embed_tokens.weight. If the plan quantizes "lm_head", the embedding is planned
 * a second time as that Linear, so the output holds a dense embedding (the lookup table) plus a
 * quantized lm_head, and the config is untied. A stored lm_head.weight under a tied config (some
 * exports keep both) is replaced: the embedding is the matrix the tied model really uses. A head
 * the plan keeps in float (the default, or the group fallback "ignore") leaves the model tied.
 * *n is the item count, grown by one when the head is appended; *untie says the config must
 * change. */
static lq_status plan_tied_head(const lq_checkpoint *c, const lq_ptq_opts *o, plan_item *items, int64_t *n,
                                bool *untie) {
    *untie = false;
    if (!lq_checkpoint_config(c)->tied_embeddings) return LQ_OK;
    const lq_tensor *emb = lq_checkpoint_find(c, "model.embed_tokens.weight");
    if (!emb || choose_scheme(o, NULL, "lm_head", NULL) == LQ_WFMT_NONE) return LQ_OK;
    plan_item head;
    LQ_TRY(plan_tensor(c, o, emb, true, &head));
    if (head.scheme == LQ_WFMT_NONE) return LQ_OK;
    int64_t at = *n;
    for (int64_t i = 0; i < *n; i++)
        if (strcmp(items[i].t->name, "lm_head.weight") == 0) at = i;
    items[at] = head;
    if (at == *n) (*n)++;
    *untie = true;
    return LQ_OK;
}

/* ---- declarations -------------------------------------------------------------------------------- */

static lq_status declare(lq_st_writer *w, const plan_item *it) {
    const lq_tensor *t = it->t;
    if (it->scheme == LQ_WFMT_NONE) return lq_st_writer_declare(w, t->name, t->dtype, t->ndim, t->shape);
    char name[200];
    int64_t scale_shape[2] = {it->rows, it->n_groups};
    if (lq_ct_packed(it->scheme)) {
        int bits = lq_ct_bits(it->scheme);
        int64_t ps[2] = {it->rows, lq_ct_packed_words(it->cols, bits)};
        snprintf(name, sizeof name, "%s.weight_packed", it->module);
        LQ_TRY(lq_st_writer_declare(w, name, LQ_DTYPE_I32, 2, ps));
        snprintf(name, sizeof name, "%s.weight_scale", it->module);
        LQ_TRY(lq_st_writer_declare(w, name, it->scale_dtype, 2, scale_shape));
        int64_t two = 2;
        snprintf(name, sizeof name, "%s.weight_shape", it->module);
        LQ_TRY(lq_st_writer_declare(w, name, LQ_DTYPE_I64, 1, &two));
        if (it->qp.asym) {
            int64_t zs[2] = {lq_ct_packed_words(it->rows, bits), it->n_groups};
            snprintf(name, sizeof name, "%s.weight_zero_point", it->module);
            LQ_TRY(lq_st_writer_declare(w, name, LQ_DTYPE_I32, 2, zs));
        }
        return LQ_OK;
    }
    snprintf(name, sizeof name, "%s.weight", it->module);
    LQ_TRY(lq_st_writer_declare(w, name, lq_ct_storage_of(it->scheme)->float_type ? LQ_DTYPE_F8_E4M3 : LQ_DTYPE_I8, 2,
                                t->shape));
    snprintf(name, sizeof name, "%s.weight_scale", it->module);
    return lq_st_writer_declare(w, name, it->scale_dtype, 2, scale_shape);
}

/* ---- quantizing one tensor ------------------------------------------------------------------------ */

#define ROWS_PER_TASK 64

typedef struct qjob {
    const plan_item *it;
    const lq_wfmt_traits *tr;
    lq_pool *pool;
    float *src;                  /* rows x cols f32 */
    uint8_t *payload;            /* rows x row_bytes */
    float *aux0, *aux1;
    double *sq_w, *sq_e;         /* per task: sum W^2, sum (W - deq)^2 */
    lq_clip_stats *clip;         /* per task: what the clip search chose */
    bool given;                  /* payload and aux came from an lq_ptq_source */
} qjob;

static void qjob_task(void *ctx, int64_t task, int tid) {
    qjob *j = ctx;
    const plan_item *it = j->it;
    int64_t r0 = task * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK < it->rows ? r0 + ROWS_PER_TASK : it->rows;
    int64_t cols = it->cols, n = (r1 - r0) * cols;
    float *src = j->src + r0 * cols;
    /* finite: lq_check_float_input refused NaN/Inf weights before any work */
    lq_tensor_read_f32(it->t, r0 * cols, n, src);
    /* A row block is a matrix of its own: every scheme here scales per row or per row-group. */
    int64_t per_row0 = it->n_aux0 / it->rows, per_row1 = it->n_aux1 / it->rows;
    lq_weight w = {.fmt = it->scheme, .rows = r1 - r0, .cols = cols, .row_bytes = it->row_bytes,
                   .group_size = it->qp.group_size};
    w.data = j->payload + (size_t)r0 * it->row_bytes;
    w.aux[0] = j->aux0 + r0 * per_row0;
    if (j->aux1) w.aux[1] = j->aux1 + r0 * per_row1;
    lq_quant_params qp = it->qp;
    qp.clip_stats = &j->clip[task];
    memset(qp.clip_stats, 0, sizeof *qp.clip_stats);
    if (!j->given) j->tr->quantize_ref(src, &qp, &w);
    float *deq = lq_pool_scratch(j->pool, tid, (size_t)n * sizeof *deq);
    double sw = 0.0, se = 0.0;
    if (deq) {
        j->tr->dequant_ref(&w, 0, w.rows, deq);
        for (int64_t i = 0; i < n; i++) {
            double d = (double)src[i] - (double)deq[i];
            sw += (double)src[i] * src[i];
            se += d * d;
        }
    } else {
        se = NAN; /* no scratch: report the error as unknown rather than guess */
    }
    j->sq_w[task] = sw;
    j->sq_e[task] = se;
}

static void convert_scales(const float *in, int64_t n, lq_dtype dt, void *out) {
    for (int64_t i = 0; i < n; i++) {
        if (dt == LQ_DTYPE_F16) ((lq_f16 *)out)[i] = lq_f32_to_f16(in[i]);
        else if (dt == LQ_DTYPE_BF16) ((lq_bf16 *)out)[i] = lq_f32_to_bf16(in[i]);
        else ((float *)out)[i] = in[i];
    }
}

/* Ask the source for the module's codes (j->given); a module it has none for is RTN's. */
static lq_status from_source(const lq_ptq_source *src, const plan_item *it, qjob *j) {
    if (!src || !src->get) return LQ_OK;
    lq_weight w = {.fmt = it->scheme, .rows = it->rows, .cols = it->cols, .row_bytes = it->row_bytes,
                   .group_size = it->qp.group_size, .data = j->payload};
    w.aux[0] = j->aux0;
    w.aux[1] = j->aux1;
    lq_status s = src->get(src->user, it->module, &w);
    if (s == LQ_ERR_NOT_FOUND) return LQ_OK;
    j->given = s == LQ_OK;
    return s;
}

static lq_status write_quantized(lq_st_writer *wr, const plan_item *it, lq_pool *pool,
                                 const lq_ptq_source *source, lq_ptq_tensor_stat *st) {
    const lq_wfmt_traits *tr = lq_wfmt_get(it->scheme);
    if (!tr || !tr->quantize_ref || !tr->dequant_ref)
        return lq_fail(LQ_ERR_UNSUPPORTED, "tensor '%s': no quantizer for %s", it->t->name,
                       lq_ptq_scheme_name(it->scheme));
    int64_t n_tasks = (it->rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
    qjob j = {.it = it, .tr = tr, .pool = pool};
    j.src = malloc((size_t)(it->rows * it->cols) * sizeof *j.src);
    j.payload = malloc((size_t)it->rows * it->row_bytes);
    j.aux0 = malloc((size_t)it->n_aux0 * sizeof *j.aux0);
    j.aux1 = it->n_aux1 > 0 ? malloc((size_t)it->n_aux1 * sizeof *j.aux1) : NULL;
    j.sq_w = malloc((size_t)n_tasks * sizeof *j.sq_w);
    j.sq_e = malloc((size_t)n_tasks * sizeof *j.sq_e);
    j.clip = calloc((size_t)n_tasks, sizeof *j.clip);
    /* scale bytes, or packed zero points: both at most rows * n_groups * 4 */
    void *side = malloc((size_t)(it->rows * it->n_groups) * 4 + 16);
    int8_t *zq = it->n_aux1 > 0 ? malloc((size_t)it->n_aux1) : NULL;
    lq_status s = LQ_OK;
    if (!j.src || !j.payload || !j.aux0 || (it->n_aux1 > 0 && (!j.aux1 || !zq)) || !j.sq_w || !j.sq_e ||
        !j.clip || !side) {
        s = lq_fail(LQ_ERR_NOMEM, "tensor '%s': out of memory", it->t->name);
        goto done;
    }
    if ((s = from_source(source, it, &j)) != LQ_OK) goto done;
    lq_pool_run(pool, qjob_task, &j, n_tasks);
    double sw = 0.0, se = 0.0;
    for (int64_t k = 0; k < n_tasks; k++) {
        sw += j.sq_w[k];
        se += j.sq_e[k];
        const lq_clip_stats *c = &j.clip[k];
        st->clip.groups += c->groups;
        st->clip.clipped += c->clipped;
        st->clip.ratio_sum += c->ratio_sum;
        if (c->groups && (st->clip.ratio_min == 0.0 || c->ratio_min < st->clip.ratio_min))
            st->clip.ratio_min = c->ratio_min;
        st->clip.err_plain += c->err_plain;
        st->clip.err_chosen += c->err_chosen;
    }
    st->calibrated = it->qp.col_weight != NULL;
    st->rel_err = sw > 0.0 ? sqrt(se / sw) : (se > 0.0 ? INFINITY : 0.0);
    /* payload */
    if ((s = lq_st_writer_write(wr, j.payload, (size_t)it->rows * it->row_bytes)) != LQ_OK) goto done;
    size_t ssz = lq_dtype_size(it->scale_dtype);
    convert_scales(j.aux0, it->n_aux0, it->scale_dtype, side);
    if ((s = lq_st_writer_write(wr, side, (size_t)it->n_aux0 * ssz)) != LQ_OK) goto done;
    uint64_t out_bytes = (uint64_t)it->rows * it->row_bytes + (uint64_t)it->n_aux0 * ssz;
    if (lq_ct_packed(it->scheme)) {
        int64_t shape[2] = {it->rows, it->cols};
        if ((s = lq_st_writer_write(wr, shape, sizeof shape)) != LQ_OK) goto done;
        out_bytes += sizeof shape;
        if (it->qp.asym) {
            int bits = lq_ct_bits(it->scheme);
            for (int64_t i = 0; i < it->n_aux1; i++) zq[i] = (int8_t)lrintf(j.aux1[i]);
            lq_ct_pack_int32(zq, it->rows, it->n_groups, bits, 0, side);
            size_t zb = (size_t)lq_ct_packed_words(it->rows, bits) * (size_t)it->n_groups * 4;
            if ((s = lq_st_writer_write(wr, side, zb)) != LQ_OK) goto done;
            out_bytes += zb;
        }
    }
    st->bytes_out = out_bytes;
done:
    free(j.src);
    free(j.payload);
    free(j.aux0);
    free(j.aux1);
    free(j.sq_w);
    free(j.sq_e);
    free(j.clip);
    free(side);
    free(zq);
    return s;
}

/* ---- config.json ---------------------------------------------------------------------------------- */

static bool same_group(const plan_item *a, const lq_ct_group_spec *g) {
    return a->scheme == g->scheme && a->qp.group_size == g->group_size && a->qp.asym == g->asym;
}

static lq_status write_config(const lq_checkpoint *c, const plan_item *items, int64_t n, bool untie,
                              const lq_ptq_kv *kv, const char *actorder, const char *out_dir) {
    lq_ct_group_spec groups[LQ_CT_MAX_GROUPS];
    int n_groups = 0;
    const char **names = calloc((size_t)n + 1, sizeof *names);
    const char **ignore = calloc((size_t)n + 1, sizeof *ignore);
    int64_t n_ign = 0;
    lq_status s = LQ_OK;
    json_t *root = NULL;
    char *text = NULL, *cfg_owned = NULL;
    if (!names || !ignore) {
        s = lq_fail(LQ_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < n; i++) {
        const plan_item *it = &items[i];
        if (!it->is_linear) continue;
        if (it->scheme == LQ_WFMT_NONE) {
            ignore[n_ign++] = it->module;
            continue;
        }
        int g = 0;
        while (g < n_groups && !same_group(it, &groups[g])) g++;
        if (g == n_groups) {
            if (n_groups == LQ_CT_MAX_GROUPS) {
                s = lq_fail(LQ_ERR_UNSUPPORTED, "more than %d distinct schemes", LQ_CT_MAX_GROUPS);
                goto done;
            }
            groups[g] = (lq_ct_group_spec){.scheme = it->scheme, .group_size = it->qp.group_size,
                                           .asym = it->qp.asym, .actorder = actorder};
            n_groups++;
        }
    }
    /* A tied head has no lm_head tensor of its own, so no plan item names it; but a loader
     * (transformers + compressed-tensors) builds an lm_head Linear and would match "Linear"
     * targets against it, expecting packed weights that are not there. llm-compressor lists it
     * in `ignore` for tied models too. */
    bool head_listed = false;
    for (int64_t i = 0; i < n; i++)
        if (items[i].is_linear && strcmp(items[i].module, "lm_head") == 0) head_listed = true;
    if (!untie && !head_listed) ignore[n_ign++] = "lm_head";
    /* One scheme: targets ["Linear"] minus the ignore list, as llm-compressor writes it. Several:
     * each group lists its modules by exact name, so no reader has to resolve overlaps. */
    int64_t used = 0;
    for (int g = 0; g < n_groups; g++) {
        groups[g].all_linear = n_groups == 1;
        groups[g].targets = names + used;
        for (int64_t i = 0; n_groups > 1 && i < n; i++)
            if (items[i].is_linear && items[i].scheme != LQ_WFMT_NONE && same_group(&items[i], &groups[g]))
                names[used++] = items[i].module;
        groups[g].n_targets = names + used - groups[g].targets;
    }
    const char *cj = lq_checkpoint_config_json(c);
    if (!cj) {
        if ((s = lq_config_to_json(lq_checkpoint_config(c), &cfg_owned)) != LQ_OK) goto done;
        cj = cfg_owned;
    }
    json_error_t err;
    root = json_loads(cj, 0, &err);
    if (!root || !json_is_object(root)) {
        s = lq_fail(LQ_ERR_FORMAT, "%s: config.json:%d: %s", lq_checkpoint_path(c), err.line, err.text);
        goto done;
    }
    if (n_groups > 0) {
        json_t *qc = lq_ct_config_build(groups, n_groups, ignore, n_ign);
        if (qc && kv && json_object_set_new(qc, "kv_cache_scheme", lq_ct_kv_scheme_json(kv)) != 0) {
            json_decref(qc);
            qc = NULL;
        }
        if (!qc || json_object_set_new(root, "quantization_config", qc) != 0) {
            s = lq_fail(LQ_ERR_NOMEM, "out of memory");
            goto done;
        }
        /* A pruned input's sparsity: quant-prune keeps it at the root while the weights are dense
         * (transformers refuses a quantization_config without config_groups, prune.c), but once
         * there is a quantization_config it belongs inside, where llm-compressor writes it and
         * compressed-tensors reads it. */
        json_t *sc = json_object_get(root, "sparsity_config");
        if (sc && !json_object_get(qc, "sparsity_config")) {
            if (json_object_set(qc, "sparsity_config", sc) != 0) {
                s = lq_fail(LQ_ERR_NOMEM, "out of memory");
                goto done;
            }
            json_object_del(root, "sparsity_config");
        }
    }
    /* A quantized head written apart from the embedding: a loader that still tied them would
     * overwrite lm_head with the dense embedding (or find no dense lm_head.weight to tie). */
    if (untie && json_object_set_new(root, "tie_word_embeddings", json_false()) != 0) {
        s = lq_fail(LQ_ERR_NOMEM, "out of memory");
        goto done;
    }
    text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    s = text ? lq_config_json_save(out_dir, text) : lq_fail(LQ_ERR_NOMEM, "out of memory");
done:
    free(text);
    free(cfg_owned);
    json_decref(root);
    free(names);
    free(ignore);
    return s;
}

/* ---- driver ---------------------------------------------------------------------------------------- */

void lq_ptq_summary_free(lq_ptq_summary *s) {
    if (!s) return;
    free(s->tensors);
    s->tensors = NULL;
    free(s->fallback);
    s->fallback = NULL;
    s->n_fallback = 0;
}

/* A pattern compiles (the shared matcher of lq_targets.h, as recipes and quant-prune use). */
static lq_status check_pattern(const char *spec) {
    lq_target *t;
    LQ_TRY(lq_target_compile(spec, &t));
    lq_target_free(t);
    return LQ_OK;
}

static lq_status check_opts(const lq_ptq_opts *o) {
    if (o->scheme != LQ_WFMT_NONE && !lq_ct_storage_of(o->scheme))
        return lq_fail(LQ_ERR_INVALID_ARG, "scheme %s: the format has no compressed-tensors storage",
                       lq_ptq_scheme_name(o->scheme));
    if (o->group_fallback < 0 || o->group_fallback >= LQ_PTQ_FALLBACK_COUNT)
        return lq_fail(LQ_ERR_INVALID_ARG, "unknown group fallback %d (refuse, channel or ignore)",
                       (int)o->group_fallback);
    if (o->rounding < 0 || o->rounding >= LQ_ROUND_COUNT)
        return lq_fail(LQ_ERR_INVALID_ARG, "unknown rounding rule %d (amax or signed-max)", (int)o->rounding);
    if (o->group_size < -1)
        return lq_fail(LQ_ERR_INVALID_ARG, "group size %d: use a positive size, 0 (default %d) or -1 "
                       "(one group per row)", (int)o->group_size, PTQ_DEFAULT_GROUP);
    for (int i = 0; i < o->n_ignore; i++) LQ_TRY(check_pattern(o->ignore[i]));
    for (int i = 0; i < o->n_overrides; i++) {
        LQ_TRY(check_pattern(o->overrides[i].pattern));
        if (o->overrides[i].scheme != LQ_WFMT_NONE && !lq_ct_storage_of(o->overrides[i].scheme))
            return lq_fail(LQ_ERR_INVALID_ARG, "override '%s': scheme %s has no compressed-tensors storage",
                           o->overrides[i].pattern, lq_ptq_scheme_name(o->overrides[i].scheme));
        if (o->overrides[i].own_params && lq_ct_grouped(o->overrides[i].scheme) && o->overrides[i].group_size < 1)
            return lq_fail(LQ_ERR_INVALID_ARG, "override '%s': group size %d (a positive size)",
                           o->overrides[i].pattern, (int)o->overrides[i].group_size);
    }
    return LQ_OK;
}

lq_status lq_ptq_quantize(const char *model_path, const char *out_dir, const lq_ptq_opts *opts,
                          lq_ptq_summary *summary) {
    double t0 = now_s();
    lq_ptq_summary sum = {0};
    LQ_TRY(check_opts(opts));
    lq_checkpoint *c = NULL;
    LQ_TRY(lq_checkpoint_open(model_path, &c));
    /* llama2.c rows keep rotary pairs interleaved; an HF config over them would be a silently
     * wrong model. quant-convert permutes them first. */
    lq_status s = lq_checkpoint_kind(c) == LQ_CKPT_LLAMA2C
                      ? lq_fail(LQ_ERR_UNSUPPORTED, "%s: a llama2.c checkpoint; convert it to a Hugging Face "
                                "directory with quant-convert first", model_path)
                      : lq_check_float_input(c, "quantize");
    /* the finiteness check read every page: give them back, the stream reads one tensor at a time */
    lq_release_checkpoint(c);
    int64_t n_in = lq_checkpoint_count(c), n = n_in;
    plan_item *items = calloc((size_t)n + 1, sizeof *items); /* + 1: a tied model's own lm_head */
    lq_st_writer *wr = NULL;
    bool untie = false;
    if (s == LQ_OK && !items) s = lq_fail(LQ_ERR_NOMEM, "out of memory");
    int64_t total_params = 0, total_work = 0;
    for (int64_t i = 0; s == LQ_OK && i < n_in; i++) {
        s = plan_tensor(c, opts, lq_checkpoint_get(c, i), false, &items[i]);
        total_params += lq_tensor_numel(lq_checkpoint_get(c, i));
    }
    if (s == LQ_OK) s = plan_tied_head(c, opts, items, &n, &untie);
    for (int64_t i = 0; s == LQ_OK && i < n; i++) {
        total_work += lq_tensor_numel(items[i].t);
        if (items[i].scheme != LQ_WFMT_NONE) sum.n_quantized++;
        if (items[i].fell_back) sum.n_fallback++;
    }
    if (s == LQ_OK) {
        sum.tensors = calloc((size_t)sum.n_quantized + 1, sizeof *sum.tensors);
        sum.fallback = calloc((size_t)sum.n_fallback + 1, sizeof *sum.fallback);
        if (!sum.tensors || !sum.fallback) s = lq_fail(LQ_ERR_NOMEM, "out of memory");
    }
    for (int64_t i = 0, f = 0; s == LQ_OK && i < n; i++) {
        const plan_item *it = &items[i];
        if (!it->fell_back) continue;
        lq_ptq_fallback_stat *fb = &sum.fallback[f++];
        snprintf(fb->name, sizeof fb->name, "%s", it->module);
        fb->rows = it->t->shape[0];
        fb->cols = it->t->shape[1];
        fb->group_size = it->fb_group;
        fb->action = it->scheme == LQ_WFMT_NONE ? LQ_PTQ_FALLBACK_IGNORE : LQ_PTQ_FALLBACK_CHANNEL;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
    if (s == LQ_OK) s = lq_st_writer_create(path, &wr);
    if (s == LQ_OK) s = lq_st_writer_metadata(wr, "format", "pt");
    /* How the codes were made, for readers that care (compressed-tensors reads only "format"):
     * the symmetric scale rule and the clip search with its weighting. */
    if (s == LQ_OK) s = lq_st_writer_metadata(wr, "lq.rounding", lq_rounding_name(opts->rounding));
    if (s == LQ_OK)
        s = lq_st_writer_metadata(wr, "lq.clip_search", !opts->clip_search ? "none"
                                  : opts->calib ? "calibrated" : "weighted");
    for (int64_t i = 0; s == LQ_OK && i < n; i++) s = declare(wr, &items[i]);
    if (s == LQ_OK && opts->kv) s = lq_ct_kv_declare(wr, opts->kv);

    int64_t done = 0, k = 0;
    sum.n_tensors = n_in;
    sum.params_total = total_params;
    for (int64_t i = 0; s == LQ_OK && i < n; i++) {
        const plan_item *it = &items[i];
        sum.bytes_in += it->t->nbytes;
        if (it->scheme == LQ_WFMT_NONE) {
            s = write_copy(wr, it->t);
            sum.bytes_out += it->t->nbytes;
        } else {
            lq_ptq_tensor_stat *st = &sum.tensors[k++];
            snprintf(st->name, sizeof st->name, "%s", it->module);
            st->scheme = it->scheme;
            st->rows = it->rows;
            st->cols = it->cols;
            st->bytes_in = it->t->nbytes;
            st->group_size = it->qp.group_size;
            st->fell_back = it->fell_back;
            s = write_quantized(wr, it, opts->pool, opts->source, st);
            sum.bytes_out += st->bytes_out;
            sum.qbytes_in += st->bytes_in;
            sum.qbytes_out += st->bytes_out;
            sum.params_quantized += it->rows * it->cols;
            sum.mean_rel_err += st->rel_err;
            if (st->rel_err > sum.worst_rel_err || k == 1) {
                sum.worst_rel_err = st->rel_err;
                snprintf(sum.worst_tensor, sizeof sum.worst_tensor, "%s", it->module);
            }
        }
        lq_release_range(it->t->data, it->t->nbytes);
        done += lq_tensor_numel(it->t);
        if (s == LQ_OK && opts->progress) opts->progress(opts->user, done, total_work, it->t->name);
    }
    if (s == LQ_OK && opts->kv) s = lq_ct_kv_write(wr, opts->kv);
    if (s == LQ_OK) {
        s = lq_st_writer_commit(wr);
        wr = NULL;
    }
    if (s == LQ_OK) s = write_config(c, items, n, untie, opts->kv, opts->actorder, out_dir);
    lq_st_writer_abort(wr);
    if (s != LQ_OK) remove(path); /* the committed weights are useless without their config */
    if (sum.n_quantized > 0) sum.mean_rel_err /= (double)sum.n_quantized;
    sum.bits_per_weight = sum.params_quantized > 0 ? 8.0 * (double)sum.qbytes_out / (double)sum.params_quantized : 0.0;
    sum.seconds = now_s() - t0;
    free(items);
    lq_checkpoint_close(c);
    if (s == LQ_OK && summary) *summary = sum;
    else lq_ptq_summary_free(&sum);
    return s;
}
