/* checkpoint_gguf.c - a GGUF model file (llama.cpp) as an lq_checkpoint.
 *
 * lq_gguf (io/gguf.c) maps the file and has already checked every tensor's range, alignment,
 * dims, overflow and name uniqueness against the file size. Here each tensor becomes a view named
 * the HF way through the architecture descriptor of general.architecture:
 *   token_embd.weight -> model.embed_tokens.weight, output_norm.weight -> model.norm.weight,
 *   output.weight -> lm_head.weight (absent: tied to the embedding),
 *   blk.N.<gguf role>.{weight,bias} -> model.layers.N.<hf role>.{weight,bias}.
 * llama.cpp's RoPE frequency factors (rope_freqs.weight: Llama 3's scaling, io/rope_freqs.c)
 * keep their name (HF has no such tensor; binding divides the RoPE frequencies by them) where the
 * descriptor says llama.cpp reads them (LQ_AF_GGUF_ROPE_FREQS), and must be F32 with head_dim / 2
 * finite positive values. Any other tensor is refused by name: ignoring one could run the model
 * wrong. Dims are reversed (GGUF ne[0] is the contiguous row length).
 * F32/F16/BF16 (and integer) tensors keep their dtype; a block type with an lq_wfmt row
 * (lq_wfmt_from_gguf_type) is an LQ_DTYPE_BLOCKS view of its blocks; any other type is refused
 * naming tensor and type. No tensor is copied or expanded.
 */
#include "checkpoint_internal.h"
#include "arch.h"
#include "lq_format.h"
#include "libquant/lq_gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ggml type names (ggml.c type_traits), for messages. */
static const char *ggml_type_name(uint32_t t) {
    static const char *const names[] = {
        [0] = "F32", [1] = "F16", [2] = "Q4_0", [3] = "Q4_1", [6] = "Q5_0", [7] = "Q5_1", [8] = "Q8_0",
        [9] = "Q8_1", [10] = "Q2_K", [11] = "Q3_K", [12] = "Q4_K", [13] = "Q5_K", [14] = "Q6_K",
        [15] = "Q8_K", [16] = "IQ2_XXS", [17] = "IQ2_XS", [18] = "IQ3_XXS", [19] = "IQ1_S",
        [20] = "IQ4_NL", [21] = "IQ3_S", [22] = "IQ2_S", [23] = "IQ4_XS", [24] = "I8", [25] = "I16",
        [26] = "I32", [27] = "I64", [28] = "F64", [29] = "IQ1_M", [30] = "BF16", [34] = "TQ1_0",
        [35] = "TQ2_0", [39] = "MXFP4",
    };
    return t < sizeof names / sizeof names[0] && names[t] ? names[t] : "unknown";
}

/* Plain element types: the lq_dtype with the same bytes. */
static bool plain_dtype(uint32_t t, lq_dtype *out) {
    switch (t) {
    case 0: *out = LQ_DTYPE_F32; return true;
    case 1: *out = LQ_DTYPE_F16; return true;
    case 30: *out = LQ_DTYPE_BF16; return true;
    case 24: *out = LQ_DTYPE_I8; return true;
    case 25: *out = LQ_DTYPE_I16; return true;
    case 26: *out = LQ_DTYPE_I32; return true;
    case 27: *out = LQ_DTYPE_I64; return true;
    case 28: *out = LQ_DTYPE_F64; return true;
    default: return false;
    }
}

/* The HF name of GGUF tensor `g` into out; false when it is none of the architecture's. */
static bool hf_name(const lq_arch *a, const char *g, char *out, size_t cap) {
    static const struct { const char *gguf, *hf; } fixed[] = {
        {"token_embd.weight", "model.embed_tokens.weight"},
        {"output_norm.weight", "model.norm.weight"},
        {"output.weight", "lm_head.weight"},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (strcmp(g, fixed[i].gguf) == 0) return (size_t)snprintf(out, cap, "%s", fixed[i].hf) < cap;
    int l = -1, pos = 0;
    if (sscanf(g, "blk.%d.%n", &l, &pos) != 1 || pos == 0 || l < 0) return false;
    const char *rest = g + pos;
    for (int i = 0; i < a->n_roles; i++) {
        const char *gn = a->roles[i].gguf;
        size_t n = gn ? strlen(gn) : 0;
        if (!gn || strncmp(rest, gn, n) != 0) continue;
        if (strcmp(rest + n, ".weight") == 0 || strcmp(rest + n, ".bias") == 0)
            return (size_t)snprintf(out, cap, "model.layers.%d.%s%s", l, a->roles[i].hf, rest + n) < cap;
    }
    return false;
}

/* The view of one tensor info (name set by the caller). */
static lq_status make_view(const lq_gguf *g, const lq_gguf_tensor_info *ti, lq_tensor *t) {
    const char *path = lq_gguf_path(g);
    memset(t, 0, sizeof *t);
    t->ndim = (int)ti->n_dims;
    for (int d = 0; d < t->ndim; d++) t->shape[d] = ti->ne[t->ndim - 1 - d];
    t->data = (const char *)lq_gguf_file_data(g) + ti->offset;
    t->nbytes = (size_t)ti->nbytes;
    if (plain_dtype(ti->type, &t->dtype)) return LQ_OK;
    lq_wfmt f = lq_wfmt_from_gguf_type((int)ti->type);
    const lq_wfmt_traits *tr = lq_wfmt_get(f);
    int64_t rows = lq_tensor_numel(t) / (ti->ne[0] > 0 ? ti->ne[0] : 1);
    lq_quant_params p = {0};
    size_t rb = 0;
    int64_t a0 = 0, a1 = 0;
    if (!tr || f == LQ_WFMT_F32 || f == LQ_WFMT_F16 || f == LQ_WFMT_BF16 || ti->nbytes == 0)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: tensor '%s': GGUF type %s (%u) is not supported", path, ti->name,
                       ggml_type_name(ti->type), ti->type);
    /* the format's own layout arithmetic must give the bytes lq_gguf validated */
    if (!lq_wfmt_sizes(f, rows, ti->ne[0], &p, &rb, &a0, &a1) || a0 || a1 || (uint64_t)rb * (uint64_t)rows != ti->nbytes)
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': %s payload of %llu bytes does not match %lld rows of %lld",
                       path, ti->name, ggml_type_name(ti->type), (unsigned long long)ti->nbytes, (long long)rows,
                       (long long)ti->ne[0]);
    t->dtype = LQ_DTYPE_BLOCKS;
    t->block_fmt = (int)f;
    return LQ_OK;
}

/* The vocabulary the tokenizer metadata promises must be the embedding's row count. */
static lq_status check_vocab(const lq_gguf *g, const char *arch, const lq_config *cfg) {
    const char *path = lq_gguf_path(g);
    int64_t n;
    lq_gguf_type et;
    if (lq_gguf_find(g, "tokenizer.ggml.tokens") >= 0) {
        LQ_TRY(lq_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n));
        if (n != cfg->vocab_size)
            return lq_fail(LQ_ERR_MISMATCH, "%s: tokenizer.ggml.tokens has %lld tokens but token_embd.weight has %d rows",
                           path, (long long)n, cfg->vocab_size);
    }
    char key[96];
    snprintf(key, sizeof key, "%s.vocab_size", arch);
    if (lq_gguf_find(g, key) >= 0) {
        LQ_TRY(lq_gguf_get_i64(g, key, &n));
        if (n != cfg->vocab_size)
            return lq_fail(LQ_ERR_MISMATCH, "%s: %s is %lld but token_embd.weight has %d rows", path, key, (long long)n,
                           cfg->vocab_size);
    }
    return LQ_OK;
}

lq_status lq_ckpt_load_gguf(lq_checkpoint *c, const char *file) {
    c->kind = LQ_CKPT_GGUF;
    LQ_TRY(lq_gguf_open(file, &c->gguf));
    const lq_gguf *g = c->gguf;
    c->file_bytes = lq_gguf_file_size(g);
    lq_gguf_str s;
    if (lq_gguf_find(g, "general.architecture") < 0)
        return lq_fail(LQ_ERR_FORMAT, "%s: no general.architecture key", file);
    LQ_TRY(lq_gguf_get_str(g, "general.architecture", &s));
    char arch[64];
    snprintf(arch, sizeof arch, "%.*s", (int)(s.len < 63 ? s.len : 63), s.data);
    const lq_arch *a = lq_arch_find_gguf(arch);
    if (!a || strlen(arch) != s.len)
        return lq_fail(LQ_ERR_UNSUPPORTED, "%s: general.architecture \"%s\" is not supported (known: llama, qwen2, "
                       "qwen3, gemma3)", file, arch);
    LQ_TRY(lq_gguf_read_config(g, arch, a, &c->cfg));

    int64_t n = lq_gguf_tensor_count(g);
    size_t cap = 0;
    for (int64_t i = 0; i < n; i++) cap += strlen(lq_gguf_tensor(g, i)->name) + 64;
    char *arena = c->name_arena = malloc(cap ? cap : 1);
    if (!arena) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", file);
    size_t used = 0;
    for (int64_t i = 0; i < n; i++) {
        const lq_gguf_tensor_info *ti = lq_gguf_tensor(g, i);
        const bool rope_freqs = (a->features & LQ_AF_GGUF_ROPE_FREQS) && strcmp(ti->name, LQ_ROPE_FREQS_TENSOR) == 0;
        if (rope_freqs && ti->type != 0)
            return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': GGUF type %s (llama.cpp's RoPE frequency factors are "
                           "F32)", file, ti->name, ggml_type_name(ti->type));
        if (rope_freqs)
            snprintf(arena + used, cap - used, "%s", ti->name);
        else if (!hf_name(a, ti->name, arena + used, cap - used))
            return lq_fail(LQ_ERR_UNSUPPORTED, "%s: tensor '%s' is not a tensor of the %s architecture this reader "
                           "knows", file, ti->name, arch);
        lq_tensor t;
        LQ_TRY(make_view(g, ti, &t));
        t.name = arena + used;
        used += strlen(t.name) + 1;
        LQ_TRY(lq_ckpt_push(c, &t));
    }
    const lq_tensor *emb = lq_checkpoint_find(c, "model.embed_tokens.weight");
    if (!emb || emb->ndim != 2)
        return lq_fail(LQ_ERR_FORMAT, "%s: tensor 'token_embd.weight' %s", file, emb ? "is not 2-D" : "is missing");
    if (emb->shape[0] > (1 << 30)) return lq_fail(LQ_ERR_FORMAT, "%s: token_embd.weight has too many rows", file);
    /* an empty vocabulary passes check_vocab when no tokenizer array says otherwise (and
     * <arch>.vocab_size says 0): refused here, as the other sizes are by the config reader */
    if (emb->shape[0] < 1) return lq_fail(LQ_ERR_FORMAT, "%s: token_embd.weight has no rows (an empty vocabulary)", file);
    c->cfg.vocab_size = (int)emb->shape[0];
    LQ_TRY(check_vocab(g, arch, &c->cfg));
    /* shape and values of the RoPE factors now, so a bad tensor fails at open, naming it */
    float *ff = malloc((size_t)(c->cfg.head_dim / 2 + 1) * sizeof *ff);
    bool present;
    if (!ff) return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", file);
    lq_status s2 = lq_checkpoint_rope_freqs(c, ff, &present);
    free(ff);
    return s2;
}
