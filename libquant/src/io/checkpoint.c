/* checkpoint.c - open dispatch, tensor lookup and the Llama tensor-set validation. */
#include "checkpoint_internal.h"
#include "prune_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

/* ---- small helpers shared by the loaders ------------------------------------------------------ */

lq_status lq_ckpt_push(lq_checkpoint *c, const lq_tensor *t) {
    if (c->n_tensors == c->cap_tensors) {
        int64_t nc = c->cap_tensors ? 2 * c->cap_tensors : 64;
        lq_tensor *nt = realloc(c->tensors, (size_t)nc * sizeof *nt);
        if (!nt) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", c->path);
        c->tensors = nt;
        c->cap_tensors = nc;
    }
    c->tensors[c->n_tensors++] = *t;
    return LQ_OK;
}

lq_status lq_read_text_file(const char *path, size_t max_bytes, char **out, size_t *len) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return lq_fail(errno == ENOENT ? LQ_ERR_NOT_FOUND : LQ_ERR_IO, "%s: cannot open: %s", path,
                       strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    lq_status st = LQ_OK;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 8192;
            char *nb = realloc(buf, cap);
            if (!nb) {
                st = lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            buf = nb;
        }
        size_t k = fread(buf + n, 1, cap - n - 1, f);
        n += k;
        if (n > max_bytes) {
            st = lq_fail(LQ_ERR_FORMAT, "%s: larger than %zu bytes", path, max_bytes);
            break;
        }
        if (k == 0) {
            if (ferror(f)) st = lq_fail(LQ_ERR_IO, "%s: read failed", path);
            break;
        }
    }
    fclose(f);
    if (st != LQ_OK) {
        free(buf);
        return st;
    }
    buf[n] = 0;
    if (strlen(buf) != n) {
        free(buf);
        return lq_fail(LQ_ERR_FORMAT, "%s: contains a NUL byte", path);
    }
    *out = buf;
    if (len) *len = n;
    return LQ_OK;
}

/* ---- Llama tensor set ---------------------------------------------------------------------- */

/* Symbolic dimensions, resolved against the config. */
typedef enum dimsym { D_NONE, D_DIM, D_HIDDEN, D_VOCAB, D_QDIM, D_KVDIM } dimsym;

typedef struct tensor_spec {
    const char *name;   /* printf pattern; "%d" is the layer index for per-layer tensors */
    bool per_layer;
    dimsym rows, cols;  /* cols == D_NONE: a vector of `rows` */
} tensor_spec;

static const tensor_spec g_llama_spec[] = {
    {"model.embed_tokens.weight", false, D_VOCAB, D_DIM},
    {"model.layers.%d.input_layernorm.weight", true, D_DIM, D_NONE},
    {"model.layers.%d.self_attn.q_proj.weight", true, D_QDIM, D_DIM},
    {"model.layers.%d.self_attn.k_proj.weight", true, D_KVDIM, D_DIM},
    {"model.layers.%d.self_attn.v_proj.weight", true, D_KVDIM, D_DIM},
    {"model.layers.%d.self_attn.o_proj.weight", true, D_DIM, D_QDIM},
    {"model.layers.%d.post_attention_layernorm.weight", true, D_DIM, D_NONE},
    {"model.layers.%d.mlp.gate_proj.weight", true, D_HIDDEN, D_DIM},
    {"model.layers.%d.mlp.up_proj.weight", true, D_HIDDEN, D_DIM},
    {"model.layers.%d.mlp.down_proj.weight", true, D_DIM, D_HIDDEN},
    {"model.norm.weight", false, D_DIM, D_NONE},
};

/* Sizes of layer l (per-layer sizes of a structurally pruned model; uniform otherwise). */
static int64_t dim_value(const lq_config *cfg, dimsym d, int l) {
    switch (d) {
    case D_DIM: return cfg->dim;
    case D_HIDDEN: return lq_config_layer_hidden(cfg, l);
    case D_VOCAB: return cfg->vocab_size;
    case D_QDIM: return (int64_t)lq_config_layer_heads(cfg, l) * cfg->head_dim;
    case D_KVDIM: return (int64_t)lq_config_layer_kv_heads(cfg, l) * cfg->head_dim;
    default: return 0;
    }
}

/* One weight or norm: present, stored in a float dtype, with the expected shape. This is the
 * single place later formats extend (e.g. accept a quantized payload + scales under the name). */
static lq_status check_tensor(const lq_checkpoint *c, const char *name, int64_t rows, int64_t cols) {
    /* A compressed-tensors quantized linear ("<m>.weight_packed" or an I8/F8 "<m>.weight", each
     * with "<m>.weight_scale"): its layout is validated by the binder that reads it
     * (weight_bind.c). */
    char scale_name[192];
    snprintf(scale_name, sizeof scale_name, "%s_scale", name);
    if (cols > 0 && lq_checkpoint_find(c, scale_name)) return LQ_OK;
    const lq_tensor *t = lq_checkpoint_find(c, name);
    if (!t) return lq_fail(LQ_ERR_NOT_FOUND, "%s: tensor '%s': missing", c->path, name);
    if (t->dtype != LQ_DTYPE_F32 && t->dtype != LQ_DTYPE_F16 && t->dtype != LQ_DTYPE_BF16)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s not supported (F32/F16/BF16)",
                       c->path, name, lq_dtype_name(t->dtype));
    int want_nd = cols > 0 ? 2 : 1;
    if (t->ndim != want_nd || t->shape[0] != rows || (want_nd == 2 && t->shape[1] != cols)) {
        char got[96] = "", want[48];
        int k = 0;
        for (int i = 0; i < t->ndim && k < (int)sizeof got - 24; i++)
            k += snprintf(got + k, sizeof got - (size_t)k, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        if (want_nd == 2) snprintf(want, sizeof want, "%lld, %lld", (long long)rows, (long long)cols);
        else snprintf(want, sizeof want, "%lld", (long long)rows);
        return lq_fail(LQ_ERR_MISMATCH, "%s: tensor '%s': shape [%s], config expects [%s]", c->path, name,
                       got, want);
    }
    return LQ_OK;
}

lq_status lq_ckpt_validate_llama(lq_checkpoint *c) {
    lq_config *cfg = &c->cfg;
    char name[160];
    for (size_t s = 0; s < sizeof g_llama_spec / sizeof g_llama_spec[0]; s++) {
        const tensor_spec *sp = &g_llama_spec[s];
        int nl = sp->per_layer ? cfg->n_layers : 1;
        for (int l = 0; l < nl; l++) {
            snprintf(name, sizeof name, sp->name, l);
            LQ_TRY(check_tensor(c, name, dim_value(cfg, sp->rows, l), dim_value(cfg, sp->cols, l)));
        }
    }
    /* A missing output head means the embedding doubles as the head (what HF does when tied).
     * A compressed-tensors quantized head has no "lm_head.weight" but an "lm_head.weight_scale"
     * (quant-ptq writes one for an untied quantized head). */
    if (!lq_checkpoint_find(c, "lm_head.weight") && !lq_checkpoint_find(c, "lm_head.weight_scale"))
        cfg->tied_embeddings = true;
    else LQ_TRY(check_tensor(c, "lm_head.weight", cfg->vocab_size, cfg->dim));
    return LQ_OK;
}

/* ---- open / close / accessors ----------------------------------------------------------------- */

static bool has_suffix(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

lq_status lq_checkpoint_open(const char *path, lq_checkpoint **out) {
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return lq_fail(errno == ENOENT ? LQ_ERR_NOT_FOUND : LQ_ERR_IO, "%s: cannot open: %s", path,
                       strerror(errno));
    lq_checkpoint *c = calloc(1, sizeof *c);
    if (!c || !(c->path = strdup(path))) {
        free(c);
        return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
    }
    lq_status st;
    if (S_ISDIR(sb.st_mode)) {
        st = lq_ckpt_load_hf(c, path);
    } else if (has_suffix(path, ".safetensors") || has_suffix(path, ".json")) {
        /* A file inside an HF directory: open the directory it belongs to. */
        char *dir = strdup(path);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (!dir) st = lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
        else {
            if (slash) *slash = 0;
            st = lq_ckpt_load_hf(c, slash ? (dir[0] ? dir : "/") : ".");
        }
        free(dir);
    } else {
        st = lq_ckpt_load_llama2c(c, path);
    }
    /* A compressed-tensors sparse checkpoint is presented as the dense model it encodes. */
    if (st == LQ_OK) st = lq_sparse_expand(c);
    if (st == LQ_OK) st = lq_ckpt_validate_llama(c);
    if (st != LQ_OK) {
        lq_checkpoint_close(c);
        return st;
    }
    *out = c;
    return LQ_OK;
}

void lq_checkpoint_close(lq_checkpoint *c) {
    if (!c) return;
    for (int i = 0; i < c->n_shards; i++) lq_st_close(c->shards[i]);
    free(c->shards);
    if (c->map) munmap(c->map, c->map_size);
    free(c->name_arena);
    lq_sparse_store_free(c->sparse);
    free(c->tensors);
    free(c->config_json);
    free(c->path);
    free(c);
}

lq_ckpt_kind lq_checkpoint_kind(const lq_checkpoint *c) { return c->kind; }
const char *lq_checkpoint_path(const lq_checkpoint *c) { return c->path; }
const lq_config *lq_checkpoint_config(const lq_checkpoint *c) { return &c->cfg; }
int64_t lq_checkpoint_count(const lq_checkpoint *c) { return c->n_tensors; }
uint64_t lq_checkpoint_file_bytes(const lq_checkpoint *c) { return c->file_bytes; }
const char *lq_checkpoint_config_json(const lq_checkpoint *c) { return c->config_json; }

const lq_tensor *lq_checkpoint_get(const lq_checkpoint *c, int64_t i) {
    return (i >= 0 && i < c->n_tensors) ? &c->tensors[i] : NULL;
}

/* Linear scan: a Llama checkpoint has ~10 tensors per layer, and lookups happen once at load. */
const lq_tensor *lq_checkpoint_find(const lq_checkpoint *c, const char *name) {
    for (int64_t i = 0; i < c->n_tensors; i++)
        if (strcmp(c->tensors[i].name, name) == 0) return &c->tensors[i];
    return NULL;
}
