/* checkpoint_llama2c.c - llama2.c legacy (v0) .bin: 7 x int32 header then stacked f32 arrays.
 *
 * Header: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size (negative = separate
 * classifier at the end), seq_len. Arrays, all f32, in this order:
 *   token_embedding[vocab][dim], rms_att[L][dim], wq[L][n_heads*hd][dim], wk[L][kv_dim][dim],
 *   wv[L][kv_dim][dim], wo[L][dim][n_heads*hd], rms_ffn[L][dim], w1[L][hidden][dim],
 *   w2[L][dim][hidden], w3[L][hidden][dim], rms_final[dim], freq_cis_real[seq][hd/2],
 *   freq_cis_imag[seq][hd/2], then wcls[vocab][dim] if unshared.
 * The stacked arrays are sliced into per-layer views named the HF way (w1 = gate_proj,
 * w3 = up_proj, w2 = down_proj). q/k rows keep llama2.c's interleaved rotary pairs.
 */
#include "checkpoint_internal.h"
#include "libquant/lq_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define L2C_HEADER_BYTES 28

/* Per-layer arrays in file order: HF name suffix, rows, cols (cols 0 = vector). */
typedef struct l2c_array {
    const char *suffix;
    int64_t rows, cols;
} l2c_array;

/* a * b with overflow detection on non-negative values. */
static bool mul_ok(uint64_t a, uint64_t b, uint64_t *out) {
    if (a != 0 && b > UINT64_MAX / a) return false;
    *out = a * b;
    return true;
}

typedef struct l2c_cursor {
    lq_checkpoint *c;
    const unsigned char *base;
    uint64_t off;        /* next unread byte */
    char *names;         /* arena */
    size_t names_used, names_cap;
} l2c_cursor;

/* Append a view of `count` consecutive f32 tensors of shape (rows[, cols]) starting at the
 * cursor, named by fmt with the layer index. Offsets were bounds-checked against the file size
 * before any view is made. */
static lq_status add_views(l2c_cursor *cur, const char *fmt, int count, int64_t rows, int64_t cols) {
    for (int l = 0; l < count; l++) {
        int n = snprintf(cur->names + cur->names_used, cur->names_cap - cur->names_used, fmt, l);
        if (n < 0 || (size_t)n + 1 > cur->names_cap - cur->names_used)
            return lq_fail(LQ_ERR_NOMEM, "%s: name arena exhausted", cur->c->path);
        lq_tensor t = {0};
        t.name = cur->names + cur->names_used;
        cur->names_used += (size_t)n + 1;
        t.dtype = LQ_DTYPE_F32;
        t.ndim = cols > 0 ? 2 : 1;
        t.shape[0] = rows;
        t.shape[1] = cols;
        t.nbytes = (size_t)(rows * (cols > 0 ? cols : 1)) * 4;
        t.data = cur->base + cur->off;
        cur->off += t.nbytes;
        LQ_TRY(lq_ckpt_push(cur->c, &t));
    }
    return LQ_OK;
}

/* The file size the header implies must be the file's size (a truncated or padded file is not
 * a checkpoint). h: the header; vocab: its |vocab|; hd: head dim. */
static lq_status check_size(const char *file, size_t map_size, const int32_t *h, int vocab, int hd,
                            int64_t kv_dim, bool shared) {
    int dim = h[0], hidden = h[1], nl = h[2], seq = h[6];
    /* Expected size, in f32 elements; 64-bit products of 32-bit values cannot overflow, sums of a
     * few such terms are checked. */
    uint64_t L = (uint64_t)nl, D = (uint64_t)dim, H = (uint64_t)hidden, V = (uint64_t)vocab;
    uint64_t terms[] = {V * D, L * D, L * D * 0, 0, 0, 0, L * D, 0, 0, 0, D, (uint64_t)seq * (uint64_t)hd, 0};
    bool ok = mul_ok(L * D, D, &terms[2]) && mul_ok(L * (uint64_t)kv_dim, D, &terms[3]) &&
              mul_ok(L * (uint64_t)kv_dim, D, &terms[4]) && mul_ok(L * D, D, &terms[5]) &&
              mul_ok(L * H, D, &terms[7]) && mul_ok(L * D, H, &terms[8]) && mul_ok(L * H, D, &terms[9]);
    terms[12] = shared ? 0 : V * D;
    uint64_t total = 0;
    for (size_t i = 0; ok && i < sizeof terms / sizeof terms[0]; i++) {
        if (terms[i] > (UINT64_MAX / 4 - total)) ok = false;
        else total += terms[i];
    }
    uint64_t expect = L2C_HEADER_BYTES + 4 * total;
    if (!ok || total > UINT64_MAX / 8)
        return lq_fail(LQ_ERR_FORMAT, "%s: header sizes overflow", file);
    if (expect != (uint64_t)map_size)
        return lq_fail(LQ_ERR_FORMAT,
                       "%s: file is %zu bytes but the header (dim %d, layers %d, vocab %d%s) implies %llu%s",
                       file, map_size, dim, nl, vocab, shared ? "" : ", unshared classifier",
                       (unsigned long long)expect, (uint64_t)map_size < expect ? " (truncated?)" : "");
    return LQ_OK;
}

/* lq_config of a llama2.c header (run.c's constants for what the header lacks). */
static void set_config(lq_config *cfg, const int32_t *h, int hd, int vocab, bool shared) {
    int dim = h[0], hidden = h[1], nl = h[2], nh = h[3], nkv = h[4], seq = h[6];
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->arch, sizeof cfg->arch, "LlamaForCausalLM");
    snprintf(cfg->model_type, sizeof cfg->model_type, "llama");
    cfg->dim = dim;
    cfg->hidden_dim = hidden;
    cfg->n_layers = nl;
    cfg->n_heads = nh;
    cfg->n_kv_heads = nkv;
    cfg->head_dim = hd;
    cfg->vocab_size = vocab;
    cfg->max_seq_len = seq;
    cfg->rope_theta = 10000.0f;
    cfg->norm_eps = 1e-5f;      /* llama2.c run.c hard-codes 1e-5 */
    cfg->tied_embeddings = shared;
    cfg->rope_interleaved = true;
    cfg->bos_id = 1;
    cfg->eos_id = 2;
}

lq_status lq_ckpt_load_llama2c(lq_checkpoint *c, const char *file) {
    c->kind = LQ_CKPT_LLAMA2C;
    int fd;
    if (lq_file_open_input(file, &fd, NULL) != LQ_OK) return errno == ENOENT ? LQ_ERR_NOT_FOUND : LQ_ERR_IO;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return lq_fail(LQ_ERR_IO, "%s: not a regular file", file);
    }
    if (sb.st_size < L2C_HEADER_BYTES) {
        close(fd);
        return lq_fail(LQ_ERR_FORMAT, "%s: %lld bytes, too short for the 28-byte llama2.c header", file,
                       (long long)sb.st_size);
    }
    c->map_size = (size_t)sb.st_size;
    c->map = mmap(NULL, c->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (c->map == MAP_FAILED) {
        c->map = NULL;
        return lq_fail(LQ_ERR_IO, "%s: mmap failed: %s", file, strerror(errno));
    }
    c->file_bytes = c->map_size;
    int32_t h[7];
    memcpy(h, c->map, sizeof h); /* little-endian hosts only, as llama2.c itself */
    int dim = h[0], hidden = h[1], nl = h[2], nh = h[3], nkv = h[4], vocab = h[5], seq = h[6];
    bool shared = vocab > 0;
    if (vocab < 0 && vocab != INT32_MIN) vocab = -vocab;
    if (dim <= 0 || hidden <= 0 || nl <= 0 || nh <= 0 || nkv <= 0 || vocab <= 0 || seq <= 0)
        return lq_fail(LQ_ERR_FORMAT,
                       "%s: not a llama2.c checkpoint: header has a non-positive size (dim %d hidden %d layers %d heads %d kv %d vocab %d seq %d)",
                       file, h[0], h[1], h[2], h[3], h[4], h[5], h[6]);
    if (dim % nh != 0 || nh % nkv != 0 || (dim / nh) % 2 != 0)
        return lq_fail(LQ_ERR_FORMAT, "%s: not a llama2.c checkpoint: header heads %d / kv heads %d do not divide dim %d into even heads",
                       file, nh, nkv, dim);
    int hd = dim / nh;
    int64_t kv_dim = (int64_t)nkv * hd;

    LQ_TRY(check_size(file, c->map_size, h, vocab, hd, kv_dim, shared));
    set_config(&c->cfg, h, hd, vocab, shared);

    /* One arena for all names: each is < 64 bytes. */
    l2c_cursor cur = {.c = c, .base = c->map, .off = L2C_HEADER_BYTES};
    cur.names_cap = (size_t)(9 * nl + 4) * 64;
    if (!(c->name_arena = cur.names = malloc(cur.names_cap)))
        return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", file);

    /* Walk the file in storage order, collecting per-array start offsets, then emit the views
     * in HF order (by layer). */
    const int64_t qdim = (int64_t)nh * hd;
    const l2c_array arrays[] = {
        {"input_layernorm.weight", dim, 0},        {"self_attn.q_proj.weight", qdim, dim},
        {"self_attn.k_proj.weight", kv_dim, dim},  {"self_attn.v_proj.weight", kv_dim, dim},
        {"self_attn.o_proj.weight", dim, qdim},    {"post_attention_layernorm.weight", dim, 0},
        {"mlp.gate_proj.weight", hidden, dim},     {"mlp.down_proj.weight", dim, hidden},
        {"mlp.up_proj.weight", hidden, dim},
    };
    enum { N_ARR = sizeof arrays / sizeof arrays[0] };
    uint64_t start[N_ARR];
    LQ_TRY(add_views(&cur, "model.embed_tokens.weight", 1, vocab, dim));
    for (int a = 0; a < N_ARR; a++) {
        start[a] = cur.off;
        cur.off += (uint64_t)nl * (uint64_t)(arrays[a].rows * (arrays[a].cols ? arrays[a].cols : 1)) * 4;
    }
    uint64_t final_norm = cur.off;
    uint64_t wcls = final_norm + (uint64_t)dim * 4 + 2 * (uint64_t)seq * (uint64_t)(hd / 2) * 4;
    /* HF per-layer order: norm, q, k, v, o, norm, gate, up, down. */
    static const int hf_order[N_ARR] = {0, 1, 2, 3, 4, 5, 6, 8, 7};
    char fmt[96];
    for (int l = 0; l < nl; l++) {
        for (int k = 0; k < N_ARR; k++) {
            const l2c_array *ar = &arrays[hf_order[k]];
            uint64_t each = (uint64_t)(ar->rows * (ar->cols ? ar->cols : 1)) * 4;
            cur.off = start[hf_order[k]] + (uint64_t)l * each;
            snprintf(fmt, sizeof fmt, "model.layers.%d.%s", l, ar->suffix);
            LQ_TRY(add_views(&cur, fmt, 1, ar->rows, ar->cols));
        }
    }
    cur.off = final_norm;
    LQ_TRY(add_views(&cur, "model.norm.weight", 1, dim, 0));
    if (!shared) {
        cur.off = wcls;
        LQ_TRY(add_views(&cur, "lm_head.weight", 1, vocab, dim));
    }
    return LQ_OK;
}
