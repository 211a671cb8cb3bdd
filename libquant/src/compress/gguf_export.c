/* gguf_export.c - a checkpoint as a GGUF file, float or quantized (lq_gguf_quant.h).
 *
 * One tensor at a time: its rows are read as f32 (dequantized when the input is quantized, the
 * llama q/k rows permuted into llama.cpp's interleaved rotary order when the input has HF's
 * halves), converted to the planned type (F32 / F16 / BF16 here, block formats through their
 * traits row's quantize_ref: ggml's reference quantizers) across the pool, and streamed to the
 * writer. Tensors go in llama.cpp's loader order (layer, then name), llama-quantize's order.
 * A config with llama3 RoPE scaling adds the tensor llama.cpp's converter adds for it,
 * rope_freqs.weight (F32, head_dim / 2 factors, io/rope_freqs.c); a GGUF input's copy passes through.
 */
#include "gguf_internal.h"

#include "float_input.h"
#include "libquant/lq_calib.h"
#include "lq_blocks.h"
#include <math.h>
#include "lq_format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct xt {
    const lq_tensor *src;
    char name[96];
    int role, layer;
    int64_t rows, cols;
    int perm_hd;       /* > 0: permute rows HF halves -> interleaved pairs, heads of this size */
} xt;

static int loader_cmp(const void *a, const void *b) {
    const xt *x = a, *y = b;
    if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* convert_hf_to_gguf.py LlamaModel.permute: out[h*hd + 2i + j] = in[h*hd + j*hd/2 + i]. */
static int64_t src_row(const xt *t, int64_t r) {
    if (t->perm_hd <= 0) return r;
    int64_t hd = t->perm_hd, h = r / hd, j = r % hd;
    return h * hd + (j % 2) * (hd / 2) + j / 2;
}

/* ---- conversion across the pool ------------------------------------------------------------- */

typedef struct conv_job {
    const float *src;
    uint8_t *dst;
    int64_t rows, cols, chunk;
    size_t row_bytes;
    int type;
    const lq_wfmt_traits *row;
    const float *qw; /* the tensor's imatrix entry (cols floats) or NULL */
} conv_job;

static void conv_task(void *ctx, int64_t task, int tid) {
    (void)tid;
    const conv_job *j = ctx;
    int64_t r0 = task * j->chunk, r1 = r0 + j->chunk < j->rows ? r0 + j->chunk : j->rows;
    const float *s = j->src + r0 * j->cols;
    uint8_t *d = j->dst + (size_t)r0 * j->row_bytes;
    int64_t n = (r1 - r0) * j->cols;
    if (j->type == LQ_GGML_F32) {
        memcpy(d, s, (size_t)n * 4);
    } else if (j->type == LQ_GGML_F16) {
        for (int64_t i = 0; i < n; i++) {
            lq_f16 h = lq_f32_to_f16(s[i]);
            memcpy(d + 2 * i, &h, 2);
        }
    } else if (j->type == LQ_GGML_BF16) {
        for (int64_t i = 0; i < n; i++) {
            lq_bf16 h = lq_f32_to_bf16(s[i]);
            memcpy(d + 2 * i, &h, 2);
        }
    } else {
        lq_quant_params p = {.col_weight = j->qw};
        lq_weight w = {.fmt = lq_wfmt_from_gguf_type(j->type), .rows = r1 - r0, .cols = j->cols,
                       .data = d, .row_bytes = j->row_bytes};
        j->row->quantize_ref(s, &p, &w);
    }
}

/* The traits row that quantizes a block type; NULL (and a message) when this build has none. */
static const lq_wfmt_traits *block_row(int type, const char *tensor, lq_status *st) {
    lq_wfmt f = lq_wfmt_from_gguf_type(type);
    const lq_wfmt_traits *r = f < LQ_WFMT_COUNT ? lq_wfmt_get(f) : NULL;
    if (!r || !r->quantize_ref) {
        const char *n = lq_ggml_type_name(type);
        *st = lq_fail(LQ_ERR_UNSUPPORTED, "tensor '%s': ggml type %s has no block format in this build",
                      tensor, n ? n : "?");
        return NULL;
    }
    return r;
}

/* ---- the driver ------------------------------------------------------------------------------ */

typedef struct exporter {
    const char *in, *out;
    const lq_gguf_export_opts *o;
    lq_checkpoint *c;
    const lq_config *cfg;
    const lq_arch *arch;
    xt *t;
    int64_t n;
    lq_gguf_plan_tensor *plan;
    lq_gguf_writer *w;
    float *rope_freqs;    /* owned: the factors of a llama3 rope_scaling (head_dim / 2) */
    lq_tensor rope_t;     /* their view, written as rope_freqs.weight */
} exporter;

/* convert_hf_to_gguf.py's extra tensor for a llama3 rope_scaling, as one more source tensor. */
static lq_status add_rope_freqs(exporter *e) {
    const lq_config *c = e->cfg;
    if (lq_checkpoint_find(e->c, LQ_ROPE_FREQS_TENSOR))
        return c->rope_type == LQ_ROPE_LLAMA3
                   ? lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s' and a llama3 rope_scaling in the config would both "
                             "scale RoPE", e->in, LQ_ROPE_FREQS_TENSOR)
                   : LQ_OK;
    if (c->rope_type != LQ_ROPE_LLAMA3) return LQ_OK;
    if (!(e->arch->features & LQ_AF_GGUF_ROPE_FREQS))
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: llama3 RoPE scaling: llama.cpp reads no rope_freqs tensor for "
                       "architecture %s", e->in, e->arch->gguf_name);
    const int half = c->head_dim / 2;
    if (!(e->rope_freqs = malloc((size_t)half * sizeof *e->rope_freqs))) return lq_fail(LQ_ERR_NOMEM, "out of memory");
    lq_rope_llama3_factors(c, e->rope_freqs);
    e->rope_t = (lq_tensor){.name = LQ_ROPE_FREQS_TENSOR, .dtype = LQ_DTYPE_F32, .ndim = 1, .shape = {half},
                            .data = e->rope_freqs, .nbytes = (size_t)half * sizeof(float)};
    xt *x = &e->t[e->n++];
    snprintf(x->name, sizeof x->name, "%s", LQ_ROPE_FREQS_TENSOR);
    x->src = &e->rope_t;
    x->role = -1;
    x->layer = -1;
    x->rows = 1;
    x->cols = half;
    return LQ_OK;
}

static lq_status collect(exporter *e) {
    const lq_config *c = e->cfg;
    int64_t n = lq_checkpoint_count(e->c) + 1; /* + rope_freqs.weight made from the config */
    if (!(e->t = calloc((size_t)n, sizeof *e->t)) || !(e->plan = calloc((size_t)n, sizeof *e->plan)))
        return lq_fail(LQ_ERR_NOMEM, "out of memory");
    bool permute = strcmp(e->arch->gguf_name, "llama") == 0 && !c->rope_interleaved;
    for (int64_t i = 0; i < n - 1; i++) {
        const lq_tensor *s = lq_checkpoint_get(e->c, i);
        xt *x = &e->t[e->n];
        if (!lq_gguf_name_of(e->arch, s->name, x->name, sizeof x->name, &x->role, &x->layer))
            return lq_fail(LQ_ERR_UNSUPPORTED, "%s: tensor '%s': no GGUF name for it in architecture %s",
                           e->in, s->name, e->arch->gguf_name);
        if (strcmp(x->name, "output.weight") == 0 && c->tied_embeddings) {
            /* A tied model has no output tensor in GGUF; transformers may have stored the one
             * matrix under lm_head.weight only (the embedding is its alias). */
            if (lq_checkpoint_find(e->c, "model.embed_tokens.weight")) continue;
            snprintf(x->name, sizeof x->name, "token_embd.weight");
        }
        if (s->ndim < 1 || s->ndim > 2)
            return lq_fail(LQ_ERR_UNSUPPORTED, "%s: tensor '%s': %d dimensions", e->in, s->name, s->ndim);
        x->src = s;
        x->rows = s->ndim == 2 ? s->shape[0] : 1;
        x->cols = s->shape[s->ndim - 1];
        if (permute && (x->role == LQ_ROLE_Q || x->role == LQ_ROLE_K) && s->ndim == 2) x->perm_hd = c->head_dim;
        if (x->layer < 0) x->layer = -1;
        e->n++;
    }
    LQ_TRY(add_rope_freqs(e));
    qsort(e->t, (size_t)e->n, sizeof *e->t, loader_cmp);
    for (int64_t i = 0; i < e->n; i++) {
        const xt *x = &e->t[i];
        e->plan[i] = (lq_gguf_plan_tensor){.name = x->name, .n_dims = x->src->ndim,
                                           .ne = {x->cols, x->rows, 1, 1}};
    }
    return LQ_OK;
}

/* llama-quantize's record of the imatrix (its kv overrides, strings cut at 127 bytes). */
static lq_status imatrix_keys(lq_gguf_writer *w, const lq_gguf_export_opts *o) {
    const char *file = o->imatrix_path ? o->imatrix_path : "";
    lq_status s = lq_gguf_writer_kv_strn(w, "quantize.imatrix.file", file, strlen(file) < 127 ? strlen(file) : 127);
    const char *ds = lq_imatrix_dataset(o->imatrix, 0);
    if (s == LQ_OK && ds) s = lq_gguf_writer_kv_strn(w, "quantize.imatrix.dataset", ds, strlen(ds) < 127 ? strlen(ds) : 127);
    if (s == LQ_OK) s = lq_gguf_writer_kv_u32(w, "quantize.imatrix.entries_count", (uint32_t)lq_imatrix_count(o->imatrix));
    if (s == LQ_OK && lq_imatrix_chunk_count(o->imatrix) > 0)
        s = lq_gguf_writer_kv_u32(w, "quantize.imatrix.chunks_count", (uint32_t)lq_imatrix_chunk_count(o->imatrix));
    return s;
}

static lq_status metadata(exporter *e, const lq_gguf_ftype *ft) {
    lq_gguf_writer *w = e->w;
    lq_status s = LQ_OK;
    if (lq_gguf_is_file(e->in)) { /* llama-quantize: every input pair, then its own two */
        lq_gguf *g;
        LQ_TRY(lq_gguf_open(e->in, &g));
        for (int64_t i = 0; s == LQ_OK && i < lq_gguf_kv_count(g); i++) {
            const char *k = lq_gguf_kv_key(g, i);
            if (strncmp(k, "split.", 6) == 0) continue;
            if (e->o->tokenizer && strncmp(k, "tokenizer.", 10) == 0) continue;
            s = lq_gguf_writer_kv_copy(w, g, i);
        }
        lq_gguf_close(g);
        if (s == LQ_OK && e->o->tokenizer) s = lq_gguf_meta_tokenizer(w, e->in, e->o->tokenizer, e->cfg);
    } else {
        s = lq_gguf_meta_arch(w, e->arch, e->cfg, e->in);
        if (s == LQ_OK) {
            const char *base = strrchr(e->in, '/');
            char name[256];
            snprintf(name, sizeof name, "%s", e->o->name ? e->o->name : base && base[1] ? base + 1 : e->in);
            size_t l = strlen(name);
            while (l > 1 && name[l - 1] == '/') name[--l] = 0;
            s = lq_gguf_writer_kv_str(w, "general.name", name);
        }
        if (s == LQ_OK) s = lq_gguf_meta_tokenizer(w, e->in, e->o->tokenizer, e->cfg);
    }
    if (s == LQ_OK) s = lq_gguf_writer_kv_u32(w, "general.quantization_version", 2);
    if (s == LQ_OK) s = lq_gguf_writer_kv_u32(w, "general.file_type", (uint32_t)ft->ftype);
    if (s == LQ_OK && e->o->imatrix) s = imatrix_keys(w, e->o);
    return s;
}

/* The imatrix entry llama-quantize would use for tensor x: the one of its GGUF name, NULL when
 * there is none (quantized without, as llama-quantize does). A width that differs is an error
 * except for the token embedding (llama.cpp's rule); so is a non-finite value. */
static const float *imatrix_of(exporter *e, const xt *x, lq_status *st) {
    int64_t cols = 0, nt;
    const double *sums;
    const char *name;
    for (int64_t i = 0; lq_imatrix_entry(e->o->imatrix, i, &name, &cols, &nt, &sums); i++) {
        if (strcmp(name, x->name) != 0) continue;
        if (cols != x->cols) {
            if (strcmp(x->name, "token_embd.weight") == 0) return NULL;
            *st = lq_fail(LQ_ERR_MISMATCH, "%s: imatrix size %lld is different from tensor size %lld for %s",
                          e->o->imatrix_path ? e->o->imatrix_path : "imatrix", (long long)cols, (long long)x->cols, x->name);
            return NULL;
        }
        const float *qw = lq_imatrix_get(e->o->imatrix, x->name, x->cols, NULL);
        for (int64_t j = 0; qw && j < cols; j++)
            if (!isfinite(qw[j])) {
                *st = lq_fail(LQ_ERR_FORMAT, "%s: imatrix entry '%s' has a non-finite value",
                              e->o->imatrix_path ? e->o->imatrix_path : "imatrix", x->name);
                return NULL;
            }
        return qw;
    }
    return NULL;
}

static lq_status write_tensor(exporter *e, int64_t i, float *f32, uint8_t *buf, lq_gguf_export_tensor *st) {
    const xt *x = &e->t[i];
    int type = e->plan[i].type;
    uint64_t be, bb;
    lq_ggml_type_layout((uint32_t)type, &be, &bb);
    size_t row_bytes = (size_t)((uint64_t)x->cols / be * bb);
    lq_status s = LQ_OK;
    const lq_wfmt_traits *row = NULL;
    if (type != LQ_GGML_F32 && type != LQ_GGML_F16 && type != LQ_GGML_BF16 && !(row = block_row(type, x->name, &s)))
        return s;
    const float *qw = NULL;
    if (row && e->o->imatrix && !(qw = imatrix_of(e, x, &s)) && s != LQ_OK) return s;
    for (int64_t r = 0; r < x->rows; r++)
        lq_tensor_read_f32(x->src, src_row(x, r) * x->cols, x->cols, f32 + r * x->cols);
    int threads = lq_pool_size(e->o->pool);
    int64_t chunk = x->rows / (4 * threads) > 0 ? x->rows / (4 * threads) : 1;
    conv_job j = {f32, buf, x->rows, x->cols, chunk, row_bytes, type, row, qw};
    lq_pool_run(e->o->pool, conv_task, &j, (x->rows + chunk - 1) / chunk);
    uint64_t nbytes = (uint64_t)row_bytes * (uint64_t)x->rows;
    snprintf(st->name, sizeof st->name, "%s", x->name);
    st->type = type;
    st->rows = x->rows;
    st->cols = x->cols;
    st->bytes = nbytes;
    st->fell_back = e->plan[i].fell_back;
    return lq_gguf_writer_write(e->w, buf, (size_t)nbytes);
}

static bool is_float(int type) { return type == LQ_GGML_F32 || type == LQ_GGML_F16 || type == LQ_GGML_BF16; }

/* --target-bpw: replace the plan's block types by the knapsack's choice (gguf_automix.c). */
static lq_status automix(exporter *e, lq_gguf_export_summary *sum) {
    lq_automix_tensor *t = calloc((size_t)(e->n ? e->n : 1), sizeof *t);
    int64_t *idx = calloc((size_t)(e->n ? e->n : 1), sizeof *idx);
    lq_status s = t && idx ? LQ_OK : lq_fail(LQ_ERR_NOMEM, "out of memory");
    uint64_t fixed = 0, params = 0;
    int64_t n = 0;
    for (int64_t i = 0; s == LQ_OK && i < e->n; i++) {
        const xt *x = &e->t[i];
        params += (uint64_t)(x->rows * x->cols);
        if (is_float(e->plan[i].type)) {
            uint64_t be, bb;
            lq_ggml_type_layout((uint32_t)e->plan[i].type, &be, &bb);
            fixed += (uint64_t)x->rows * ((uint64_t)x->cols / be * bb);
            continue;
        }
        const float *qw = e->o->imatrix ? imatrix_of(e, x, &s) : NULL;
        t[n] = (lq_automix_tensor){.name = x->name, .src = x->src, .rows = x->rows, .cols = x->cols, .qw = qw};
        idx[n++] = i;
    }
    const double want = e->o->target_bpw * (double)params / 8.0;
    if (s == LQ_OK && want <= (double)fixed)
        s = lq_fail(LQ_ERR_INVALID_ARG, "--target-bpw %.3f: the float tensors alone take %.3f bits per weight",
                    e->o->target_bpw, 8.0 * (double)fixed / (double)params);
    lq_automix_summary as = {.progress = e->o->progress, .user = e->o->user};
    if (s == LQ_OK) s = lq_gguf_automix(t, n, (uint64_t)(want - (double)fixed), e->o->pool, &as);
    for (int64_t k = 0; s == LQ_OK && k < n; k++) {
        e->plan[idx[k]].type = t[k].type;
        e->plan[idx[k]].fell_back = false;
        sum->tensors[idx[k]].automix_err = t[k].err;
    }
    if (s == LQ_OK) {
        sum->automix_budget = as.budget;
        sum->automix_bytes = as.bytes;
        sum->automix_max_step = as.max_step;
        sum->automix_err = as.err_total;
    }
    free(t);
    free(idx);
    return s;
}

static lq_status run(exporter *e, lq_gguf_export_summary *sum) {
    const lq_gguf_export_opts *o = e->o;
    const lq_gguf_ftype *ft = lq_gguf_ftype_find(o->type ? o->type : "F32");
    if (!ft) return lq_fail(LQ_ERR_INVALID_ARG, "unknown GGUF type '%s' (%s)", o->type, lq_gguf_ftype_list());
    LQ_TRY(lq_checkpoint_open(e->in, &e->c));
    e->cfg = lq_checkpoint_config(e->c);
    LQ_TRY(lq_check_float_input(e->c, "convert"));
    LQ_TRY(lq_arch_for_config(e->cfg, e->in, &e->arch));
    LQ_TRY(collect(e));
    lq_gguf_plan_opts po = {.ftype = ft, .rules = o->rules, .n_rules = o->n_rules, .pure = o->pure,
                            .output_type = o->output_type, .token_embd_type = o->token_embd_type,
                            .falcon = strcmp(e->arch->gguf_name, "falcon") == 0,
                            .n_layers = e->cfg->n_layers, .n_head = e->cfg->n_heads,
                            .n_head_kv = e->cfg->n_kv_heads, .has_imatrix = o->imatrix != NULL};
    LQ_TRY(lq_gguf_plan(&po, e->plan, e->n));
    lq_status s = LQ_OK;
    sum->ftype = ft->ftype;
    if (!(sum->tensors = calloc((size_t)(e->n ? e->n : 1), sizeof *sum->tensors)))
        return lq_fail(LQ_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < e->n; i++) sum->tensors[i].automix_err = -1;
    if (o->target_bpw > 0) LQ_TRY(automix(e, sum));
    int64_t max_elems = 0, total = 0;
    for (int64_t i = 0; i < e->n; i++) {
        if (e->plan[i].type != LQ_GGML_F32 && e->plan[i].type != LQ_GGML_F16 && e->plan[i].type != LQ_GGML_BF16 &&
            !block_row(e->plan[i].type, e->t[i].name, &s))
            return s; /* refuse before writing anything */
        int64_t ne = e->t[i].rows * e->t[i].cols;
        max_elems = ne > max_elems ? ne : max_elems;
        total += ne;
    }
    LQ_TRY(lq_gguf_writer_create(e->out, &e->w));
    s = metadata(e, ft);
    for (int64_t i = 0; s == LQ_OK && i < e->n; i++)
        s = lq_gguf_writer_tensor(e->w, e->t[i].name, e->plan[i].n_dims, e->plan[i].ne, (uint32_t)e->plan[i].type);
    float *f32 = s == LQ_OK ? malloc((size_t)(max_elems ? max_elems : 1) * sizeof *f32) : NULL;
    uint8_t *buf = f32 ? malloc((size_t)(max_elems ? max_elems : 1) * 4) : NULL;
    if (s == LQ_OK && !buf) s = lq_fail(LQ_ERR_NOMEM, "%s: out of memory", e->out);
    int64_t done = 0;
    for (int64_t i = 0; s == LQ_OK && i < e->n; i++) {
        s = write_tensor(e, i, f32, buf, &sum->tensors[i]);
        sum->n_tensors++;
        sum->bytes_in += e->t[i].src->nbytes;
        sum->bytes_out += sum->tensors[i].bytes;
        sum->params += e->t[i].rows * e->t[i].cols;
        if (e->plan[i].type >= 0 && e->plan[i].type < 32) sum->n_by_type[e->plan[i].type]++;
        done += e->t[i].rows * e->t[i].cols;
        if (o->progress) o->progress(o->user, done, total, e->t[i].name);
    }
    free(f32);
    free(buf);
    if (s != LQ_OK) {
        lq_gguf_writer_abort(e->w);
        e->w = NULL;
        return s;
    }
    s = lq_gguf_writer_commit(e->w);
    e->w = NULL;
    sum->bits_per_weight = sum->params ? 8.0 * (double)sum->bytes_out / (double)sum->params : 0;
    return s;
}

lq_status lq_gguf_export(const char *model_path, const char *out_path, const lq_gguf_export_opts *opts,
                         lq_gguf_export_summary *summary) {
    lq_gguf_export_summary local;
    lq_gguf_export_summary *sum = summary ? summary : &local;
    memset(sum, 0, sizeof *sum);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    exporter e = {.in = model_path, .out = out_path, .o = opts};
    lq_status s = run(&e, sum);
    lq_checkpoint_close(e.c);
    free(e.t);
    free(e.plan);
    free(e.rope_freqs);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    sum->seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (s != LQ_OK || !summary) lq_gguf_export_summary_free(sum);
    return s;
}

void lq_gguf_export_summary_free(lq_gguf_export_summary *s) {
    if (!s) return;
    free(s->tensors);
    s->tensors = NULL;
}
