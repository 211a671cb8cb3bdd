/* smooth_map.c - the mappings AWQ and SmoothQuant smooth (from the architecture descriptor), the
 * f32 overlay of the tensors they change, the fold of one mapping's scales, and the writer of the
 * smoothed float checkpoint (smooth_internal.h). */
#include "smooth_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "libquant/lq_file.h"
#include "libquant/lq_safetensors.h"
#include "lq_blocks.h"

/* llm-compressor 0.14's default mappings (modifiers/transform/awq/mappings.py default_mappings,
 * smoothquant/utils.py DEFAULT_SMOOTHQUANT_MAPPINGS), in its order, by role. */
const sm_spec lq_sm_specs[] = {
    {LQ_ROLE_ATTN_NORM, {LQ_ROLE_Q, LQ_ROLE_K, LQ_ROLE_V}, 3, LQ_BLOCK_ATTN, true},
    {LQ_ROLE_V, {LQ_ROLE_O}, 1, -1, false},
    {LQ_ROLE_FFN_NORM, {LQ_ROLE_GATE, LQ_ROLE_UP}, 2, LQ_BLOCK_FFN, true},
    {LQ_ROLE_UP, {LQ_ROLE_DOWN}, 1, -1, false},
};
const int lq_sm_n_specs = (int)(sizeof lq_sm_specs / sizeof lq_sm_specs[0]);

bool lq_sm_tensor(const lq_arch *a, lq_role r, int l, bool bias, char *buf, size_t cap) {
    if (!lq_arch_module(a, r, l, buf, cap)) return false;
    size_t n = strlen(buf);
    return (size_t)snprintf(buf + n, cap - n, bias ? ".bias" : ".weight") < cap - n;
}

bool lq_sm_applies(const lq_model *m, const lq_arch *a, const sm_spec *sp, int l) {
    const lq_config *c = lq_model_config(m);
    const lq_checkpoint *ck = lq_model_checkpoint(m);
    char name[192];
    if (sp->block == LQ_BLOCK_FFN || sp->smooth == LQ_ROLE_UP)
        if (lq_config_layer_moe(c, l)) return false; /* experts: not smoothed here */
    int64_t cols = -1;
    for (int i = 0; i < sp->n_bal; i++) {
        if (!lq_arch_role(a, sp->bal[i]) || !lq_arch_module(a, sp->bal[i], l, name, sizeof name)) return false;
        const lq_weight *w = lq_model_find_linear(m, name);
        if (!w || (cols >= 0 && w->cols != cols)) return false;
        cols = w->cols;
    }
    if (!lq_arch_role(a, sp->smooth) || !lq_sm_tensor(a, sp->smooth, l, false, name, sizeof name)) return false;
    const lq_tensor *t = lq_checkpoint_find(ck, name);
    if (!t) return false;
    if (lq_role_get(sp->smooth)->kind == LQ_KIND_NORM) return t->ndim == 1 && t->shape[0] == cols;
    /* a Linear smooth layer: its output features are the balance inputs (GQA v -> o is not) */
    return t->ndim == 2 && t->shape[0] == cols;
}

lq_status lq_sm_get(sm_overlay *o, const char *name, float **out, int64_t *n) {
    for (int64_t i = 0; i < o->n; i++)
        if (strcmp(o->b[i].name, name) == 0) {
            if (n) *n = o->b[i].n;
            *out = o->b[i].data;
            return LQ_OK;
        }
    const lq_tensor *t = lq_checkpoint_find(o->c, name);
    if (!t || (t->dtype != LQ_DTYPE_F32 && t->dtype != LQ_DTYPE_F16 && t->dtype != LQ_DTYPE_BF16))
        return lq_fail(LQ_ERR_NOT_FOUND, "smooth: no float tensor '%s'", name);
    if (o->n == o->cap) {
        int64_t nc = o->cap ? 2 * o->cap : 64;
        sm_buf *p = realloc(o->b, (size_t)nc * sizeof *p);
        if (!p) goto nomem;
        o->b = p;
        o->cap = nc;
    }
    sm_buf *b = &o->b[o->n];
    b->n = lq_tensor_numel(t);
    if (!(b->data = malloc((size_t)b->n * sizeof *b->data))) goto nomem;
    snprintf(b->name, sizeof b->name, "%s", name);
    lq_tensor_read_f32(t, 0, b->n, b->data);
    o->n++;
    if (n) *n = b->n;
    *out = b->data;
    return LQ_OK;
nomem:
    return lq_fail(LQ_ERR_NOMEM, "smooth: out of memory for '%s'", name);
}

void lq_sm_overlay_free(sm_overlay *o) {
    for (int64_t i = 0; i < o->n; i++) free(o->b[i].data);
    free(o->b);
    memset(o, 0, sizeof *o);
}

lq_status lq_sm_fold(sm_overlay *o, const lq_arch *a, const sm_spec *sp, int l, const float *s, int64_t n,
                     float norm_offset) {
    char name[192];
    int64_t len;
    for (int i = 0; i < sp->n_bal; i++) {
        lq_sm_tensor(a, sp->bal[i], l, false, name, sizeof name);
        float *W;
        LQ_TRY(lq_sm_get(o, name, &W, &len));
        for (int64_t r = 0; r < len / n; r++)
            for (int64_t c = 0; c < n; c++) W[r * n + c] *= s[c];
    }
    lq_sm_tensor(a, sp->smooth, l, false, name, sizeof name);
    float *S;
    LQ_TRY(lq_sm_get(o, name, &S, &len));
    if (lq_role_get(sp->smooth)->kind == LQ_KIND_NORM) {
        /* the model multiplies by stored + offset (Gemma: 1 + w): that product is what is divided */
        for (int64_t c = 0; c < n; c++) S[c] = (S[c] + norm_offset) / s[c] - norm_offset;
        return LQ_OK;
    }
    const int64_t cols = len / n;
    for (int64_t r = 0; r < n; r++)
        for (int64_t c = 0; c < cols; c++) S[r * cols + c] /= s[r];
    lq_sm_tensor(a, sp->smooth, l, true, name, sizeof name);
    if (lq_checkpoint_find(o->c, name)) {
        float *bias;
        LQ_TRY(lq_sm_get(o, name, &bias, &len));
        for (int64_t r = 0; r < n && r < len; r++) bias[r] /= s[r];
    }
    return LQ_OK;
}

#define COPY_CHUNK ((size_t)16 << 20)

static lq_status write_tensor(lq_st_writer *wr, const lq_tensor *t, const float *f) {
    if (!f) {
        const char *p = t->data;
        for (size_t off = 0; off < t->nbytes; off += COPY_CHUNK)
            LQ_TRY(lq_st_writer_write(wr, p + off, t->nbytes - off < COPY_CHUNK ? t->nbytes - off : COPY_CHUNK));
        return LQ_OK;
    }
    const int64_t n = lq_tensor_numel(t);
    if (t->dtype == LQ_DTYPE_F32) return lq_st_writer_write(wr, f, (size_t)n * sizeof *f);
    uint16_t *h = malloc((size_t)n * sizeof *h);
    if (!h) return lq_fail(LQ_ERR_NOMEM, "smooth: out of memory writing '%s'", t->name);
    for (int64_t i = 0; i < n; i++)
        h[i] = t->dtype == LQ_DTYPE_BF16 ? lq_f32_to_bf16(f[i]) : lq_f32_to_f16(f[i]);
    lq_status s = lq_st_writer_write(wr, h, (size_t)n * sizeof *h);
    free(h);
    return s;
}

/* The overlay's copy of tensor t, or NULL (t unchanged). */
static const float *changed(const sm_overlay *o, const lq_tensor *t) {
    for (int64_t i = 0; i < o->n; i++)
        if (strcmp(o->b[i].name, t->name) == 0) return o->b[i].data;
    return NULL;
}

/* A tied head stored once for two names (the safetensors alias transformers writes, in either
 * direction): lm_head.weight sharing its bytes with another tensor is left out, so the output
 * holds model.embed_tokens.weight, which tie_word_embeddings in config.json ties back. */
static bool is_alias(const lq_checkpoint *c, int64_t i) {
    const lq_tensor *t = lq_checkpoint_get(c, i);
    if (strcmp(t->name, "lm_head.weight") != 0 || t->nbytes == 0) return false;
    for (int64_t k = 0; k < lq_checkpoint_count(c); k++)
        if (k != i && lq_checkpoint_get(c, k)->data == t->data) return true;
    return false;
}

lq_status lq_sm_write(const sm_overlay *o, const char *model_path, const char *out_dir) {
    const lq_checkpoint *c = o->c;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/model.safetensors", out_dir) >= (int)sizeof path)
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: path too long", out_dir);
    lq_st_writer *wr = NULL;
    LQ_TRY(lq_st_writer_create(path, &wr));
    lq_status s = lq_st_writer_metadata(wr, "format", "pt");
    const int64_t n = lq_checkpoint_count(c);
    for (int64_t i = 0; s == LQ_OK && i < n; i++) {
        const lq_tensor *t = lq_checkpoint_get(c, i);
        if (!is_alias(c, i)) s = lq_st_writer_declare(wr, t->name, t->dtype, t->ndim, t->shape);
    }
    for (int64_t i = 0; s == LQ_OK && i < n; i++)
        if (!is_alias(c, i)) s = write_tensor(wr, lq_checkpoint_get(c, i), changed(o, lq_checkpoint_get(c, i)));
    if (s == LQ_OK) {
        s = lq_st_writer_commit(wr);
        wr = NULL;
    }
    lq_st_writer_abort(wr);
    if (s == LQ_OK) s = lq_config_json_save(out_dir, lq_checkpoint_config_json(c));
    if (s == LQ_OK) s = lq_checkpoint_copy_side_files(model_path, out_dir);
    /* the chat template travels too: a GGUF written from this directory embeds it */
    char src[4096], dst[4096];
    struct stat sb;
    if (s == LQ_OK && snprintf(src, sizeof src, "%s/chat_template.jinja", model_path) < (int)sizeof src &&
        snprintf(dst, sizeof dst, "%s/chat_template.jinja", out_dir) < (int)sizeof dst && stat(src, &sb) == 0)
        s = lq_file_copy(src, dst);
    if (s != LQ_OK) remove(path);
    return s;
}
