/* test_gguf_export.c - checkpoints written as GGUF (lq_gguf_export), read back with lq_gguf.
 *
 * References from outside the writer: stories260K.bin (karpathy's export: q/k rows already in the
 * interleaved rotary order llama.cpp uses, header facts in models/SOURCES.md), the HF directory
 * quant-convert makes of it (halves order), and TinyStories-656K's own safetensors values. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libquant/lq_checkpoint.h"
#include "libquant/lq_gguf.h"
#include "libquant/lq_gguf_quant.h"
#include "lq_blocks.h"
#include "lq_test_util.h"

static char g_dir[256];

static void setup(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/lq_test_gguf_export_%d", (int)getpid());
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", g_dir, g_dir);
    cr_assert_eq(system(cmd), 0);
}

static void teardown(void) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    (void)system(cmd);
}

static lq_gguf *export_open(const char *model, const char *tok, const char *type, const char *out) {
    lq_gguf_export_opts o = {.type = type, .tokenizer = tok, .output_type = -1, .token_embd_type = -1};
    lq_status s = lq_gguf_export(model, out, &o, NULL);
    cr_assert_eq(s, LQ_OK, "%s", lq_last_error());
    lq_gguf *g;
    cr_assert_eq(lq_gguf_open(out, &g), LQ_OK, "%s", lq_last_error());
    return g;
}

static int64_t kv_i64(const lq_gguf *g, const char *key) {
    int64_t v = -1;
    cr_assert_eq(lq_gguf_get_i64(g, key, &v), LQ_OK, "%s: %s", key, lq_last_error());
    return v;
}

/* The GGUF name of stories260K's llama2.c arrays as the HF checkpoint names them. */
static const char *gguf_name(const char *hf, char *buf, size_t cap) {
    int l;
    char part[64];
    if (strcmp(hf, "model.embed_tokens.weight") == 0) return "token_embd.weight";
    if (strcmp(hf, "model.norm.weight") == 0) return "output_norm.weight";
    if (sscanf(hf, "model.layers.%d.%63s", &l, part) != 2) return NULL;
    static const char *const map[][2] = {
        {"input_layernorm.weight", "attn_norm"}, {"self_attn.q_proj.weight", "attn_q"},
        {"self_attn.k_proj.weight", "attn_k"},   {"self_attn.v_proj.weight", "attn_v"},
        {"self_attn.o_proj.weight", "attn_output"}, {"post_attention_layernorm.weight", "ffn_norm"},
        {"mlp.gate_proj.weight", "ffn_gate"},    {"mlp.up_proj.weight", "ffn_up"},
        {"mlp.down_proj.weight", "ffn_down"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(part, map[i][0]) == 0) {
            snprintf(buf, cap, "blk.%d.%s.weight", l, map[i][1]);
            return buf;
        }
    return NULL;
}

/* Every tensor of the llama2.c file, byte for byte, under its GGUF name; no output.weight (tied). */
static void expect_llama2c_tensors(const lq_gguf *g) {
    char bin[1024], nb[128];
    lq_checkpoint *c;
    cr_assert_eq(lq_checkpoint_open(lq_test_shared("models/stories260K/stories260K.bin", bin, sizeof bin), &c), LQ_OK);
    int64_t n = 0;
    for (int64_t i = 0; i < lq_checkpoint_count(c); i++) {
        const lq_tensor *t = lq_checkpoint_get(c, i);
        const char *name = gguf_name(t->name, nb, sizeof nb);
        cr_assert(name, "unexpected tensor %s", t->name);
        const lq_gguf_tensor_info *gi = lq_gguf_find_tensor(g, name);
        cr_assert(gi, "%s missing", name);
        cr_assert_eq(gi->type, 0, "%s: type %u", name, gi->type);
        cr_assert_eq(gi->ne[0], t->shape[t->ndim - 1]);
        cr_assert_eq(gi->nbytes, t->nbytes);
        cr_assert(memcmp((const char *)lq_gguf_file_data(g) + gi->offset, t->data, t->nbytes) == 0,
                  "%s: bytes differ from the llama2.c array", name);
        n++;
    }
    cr_assert_eq(lq_gguf_tensor_count(g), n);
    cr_assert_null(lq_gguf_find_tensor(g, "output.weight"));
    lq_checkpoint_close(c);
}

static void expect_stories_metadata(const lq_gguf *g) {
    lq_gguf_str s;
    cr_assert(lq_gguf_get_str(g, "general.architecture", &s) == LQ_OK && s.len == 5 && memcmp(s.data, "llama", 5) == 0);
    cr_assert_eq(kv_i64(g, "llama.embedding_length"), 64);
    cr_assert_eq(kv_i64(g, "llama.feed_forward_length"), 172);
    cr_assert_eq(kv_i64(g, "llama.block_count"), 5);
    cr_assert_eq(kv_i64(g, "llama.attention.head_count"), 8);
    cr_assert_eq(kv_i64(g, "llama.attention.head_count_kv"), 4);
    cr_assert_eq(kv_i64(g, "llama.context_length"), 512);
    cr_assert_eq(kv_i64(g, "llama.rope.dimension_count"), 8);
    cr_assert_eq(kv_i64(g, "general.file_type"), 0);
    cr_assert_eq(kv_i64(g, "general.quantization_version"), 2);
    cr_assert(lq_gguf_get_str(g, "tokenizer.ggml.model", &s) == LQ_OK && s.len == 5 && memcmp(s.data, "llama", 5) == 0);
    lq_gguf_type et;
    int64_t n;
    cr_assert(lq_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n) == LQ_OK && et == LQ_GGUF_TYPE_STRING && n == 512);
    cr_assert(lq_gguf_get_arr(g, "tokenizer.ggml.scores", &et, &n) == LQ_OK && et == LQ_GGUF_TYPE_FLOAT32 && n == 512);
    cr_assert_eq(lq_gguf_arr_str(g, "tokenizer.ggml.tokens", 1, &s), LQ_OK);
    cr_assert(s.len == 3 && memcmp(s.data, "<s>", 3) == 0);
}

TestSuite(gguf_export, .init = setup, .fini = teardown);

/* llama2.c straight to GGUF: the arrays are already in llama.cpp's row order. */
Test(gguf_export, llama2c_to_gguf_keeps_every_array) {
    char bin[1024], tok[1024], out[512];
    lq_test_shared("models/stories260K/stories260K.bin", bin, sizeof bin);
    lq_test_shared("models/stories260K/tok512.bin", tok, sizeof tok);
    snprintf(out, sizeof out, "%s/s260.gguf", g_dir);
    lq_gguf *g = export_open(bin, tok, "F32", out);
    expect_llama2c_tensors(g);
    expect_stories_metadata(g);
    lq_gguf_close(g);
}

/* Through the HF directory (q/k rows in HF's halves order) and back: the GGUF writer's permute
 * is the inverse of quant-convert's, so the llama2.c rows come back exactly. */
Test(gguf_export, hf_to_gguf_permutes_qk_back_to_llama2c_rows) {
    char hf[512], cmd[4096], out[512];
    snprintf(hf, sizeof hf, "%s/s260-hf", g_dir);
    cr_assert_eq(lq_test_convert_stories260k(hf, cmd, sizeof cmd), 0, "%s", cmd);
    snprintf(out, sizeof out, "%s/s260-hf.gguf", g_dir);
    lq_gguf *g = export_open(hf, NULL, "F32", out);
    expect_llama2c_tensors(g);
    expect_stories_metadata(g);
    lq_gguf_close(g);
}

/* TinyStories-656K (a transformers directory, GQA 8/4, head_dim 16) as F16: 2-D weights F16 of
 * the rows convert_hf_to_gguf.py's permute gives (reshape(n_head, 2, hd/2, cols).swapaxes(1, 2):
 * out row (h, i, j) = in row (h, j, i)), 1-D norms F32 as stored, the tied head absent. */
static void expect_f16_rows(const lq_gguf *g, const lq_checkpoint *c, const char *hf, const char *name, int hd) {
    const lq_tensor *t = lq_checkpoint_find(c, hf);
    if (!t && strcmp(hf, "model.embed_tokens.weight") == 0) t = lq_checkpoint_find(c, "lm_head.weight"); /* tied alias */
    const lq_gguf_tensor_info *gi = lq_gguf_find_tensor(g, name);
    cr_assert(t && gi, "%s", name);
    cr_assert_eq(gi->type, 1, "%s: type %u", name, gi->type);
    int64_t rows = t->shape[0], cols = t->shape[1];
    cr_assert(gi->ne[0] == cols && gi->ne[1] == rows);
    const uint16_t *h = (const uint16_t *)((const char *)lq_gguf_file_data(g) + gi->offset);
    for (int64_t r = 0; r < rows; r++) {
        int64_t src = r;
        if (hd) {
            int64_t head = r / hd, i = (r % hd) / 2, j = r % 2;
            src = head * hd + j * (hd / 2) + i;
        }
        for (int64_t k = 0; k < cols; k++) {
            uint16_t want = lq_f32_to_f16(lq_tensor_get_f32(t, src * cols + k)), got;
            memcpy(&got, h + r * cols + k, 2);
            cr_assert_eq(got, want, "%s[%lld][%lld]", name, (long long)r, (long long)k);
        }
    }
}

Test(gguf_export, hf_to_gguf_f16_values) {
    char dir[1024], out[512];
    lq_test_shared("models/TinyStories-656K", dir, sizeof dir);
    snprintf(out, sizeof out, "%s/ts.gguf", g_dir);
    lq_gguf *g = export_open(dir, NULL, "F16", out);
    lq_checkpoint *c;
    cr_assert_eq(lq_checkpoint_open(dir, &c), LQ_OK);
    cr_assert_eq(kv_i64(g, "general.file_type"), 1);
    double eps;
    cr_assert(lq_gguf_get_f64(g, "llama.attention.layer_norm_rms_epsilon", &eps) == LQ_OK && eps == (double)1e-6f);
    expect_f16_rows(g, c, "model.layers.1.self_attn.q_proj.weight", "blk.1.attn_q.weight", 16);
    expect_f16_rows(g, c, "model.layers.1.self_attn.k_proj.weight", "blk.1.attn_k.weight", 16);
    expect_f16_rows(g, c, "model.layers.1.self_attn.v_proj.weight", "blk.1.attn_v.weight", 0);
    expect_f16_rows(g, c, "model.embed_tokens.weight", "token_embd.weight", 0);
    const lq_gguf_tensor_info *n = lq_gguf_find_tensor(g, "blk.0.attn_norm.weight");
    const lq_tensor *tn = lq_checkpoint_find(c, "model.layers.0.input_layernorm.weight");
    cr_assert(n && tn && n->type == 0 && n->nbytes == tn->nbytes);
    cr_assert(memcmp((const char *)lq_gguf_file_data(g) + n->offset, tn->data, tn->nbytes) == 0);
    cr_assert_null(lq_gguf_find_tensor(g, "output.weight"));
    cr_assert_eq(lq_gguf_tensor_count(g), 2 + 2 * 9); /* embd, final norm, 9 per layer */
    lq_gguf_str s;
    cr_assert(lq_gguf_get_str(g, "tokenizer.ggml.model", &s) == LQ_OK && s.len == 5 && memcmp(s.data, "llama", 5) == 0); /* byte_fallback BPE = SPM */
    lq_checkpoint_close(c);
    lq_gguf_close(g);
}

/* One-line refusals, nothing written. */
Test(gguf_export, refusals) {
    char bin[1024], out[512];
    lq_test_shared("models/stories260K/stories260K.bin", bin, sizeof bin);
    snprintf(out, sizeof out, "%s/bad.gguf", g_dir);
    lq_gguf_export_opts o = {.type = "Q9_9", .output_type = -1, .token_embd_type = -1};
    cr_assert_eq(lq_gguf_export(bin, out, &o, NULL), LQ_ERR_INVALID_ARG);
    cr_assert(strstr(lq_last_error(), "Q9_9"), "%s", lq_last_error());
    o.type = "F32"; /* llama2.c without its tokenizer */
    cr_assert_neq(lq_gguf_export(bin, out, &o, NULL), LQ_OK);
    cr_assert_not(lq_test_exists(out));
    cr_assert_not(lq_test_leftovers(out));
}

/* GGUF -> HF (quant-convert --model FILE.gguf): llama2.c -> GGUF -> HF gives the very tensors of
 * the direct llama2.c -> HF conversion (the two q/k permutations cancel, f32 throughout). */
Test(gguf_export, llama2c_gguf_hf_round_trip) {
    char bin[1024], tok[1024], gg[512], hf[512], direct[512], cmd[4096], args[2048], err[512];
    lq_test_shared("models/stories260K/stories260K.bin", bin, sizeof bin);
    lq_test_shared("models/stories260K/tok512.bin", tok, sizeof tok);
    snprintf(gg, sizeof gg, "%s/s260.gguf", g_dir);
    snprintf(hf, sizeof hf, "%s/s260-back", g_dir);
    snprintf(direct, sizeof direct, "%s/s260-direct", g_dir);
    lq_gguf_close(export_open(bin, tok, "F32", gg));
    snprintf(args, sizeof args, "--model '%s' --out '%s'", gg, hf);
    cr_assert_eq(lq_test_run_tool("quant-convert", args, g_dir, err, sizeof err), 0, "%s", err);
    cr_assert_eq(lq_test_convert_stories260k(direct, cmd, sizeof cmd), 0, "%s", cmd);
    lq_checkpoint *a, *b;
    cr_assert_eq(lq_checkpoint_open(hf, &a), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_checkpoint_open(direct, &b), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_checkpoint_config(a)->rope_interleaved, false);
    int64_t n = 0;
    for (int64_t i = 0; i < lq_checkpoint_count(b); i++) {
        const lq_tensor *tb = lq_checkpoint_get(b, i), *ta = lq_checkpoint_find(a, tb->name);
        if (!ta && strcmp(tb->name, "lm_head.weight") == 0) continue; /* tied: the embedding */
        cr_assert(ta, "%s missing after the round trip", tb->name);
        cr_assert(ta->dtype == LQ_DTYPE_F32 && ta->nbytes == tb->nbytes, "%s", tb->name);
        cr_assert(memcmp(ta->data, tb->data, tb->nbytes) == 0, "%s differs", tb->name);
        n++;
    }
    cr_assert_eq(n, 2 + 5 * 9);
    lq_checkpoint_close(a);
    lq_checkpoint_close(b);
}

/* A transformers directory -> GGUF F16 -> HF f16: every value is the f16 of the original. */
Test(gguf_export, hf_gguf_f16_hf_round_trip) {
    char dir[1024], gg[512], hf[512], args[2048], err[512];
    lq_test_shared("models/TinyStories-656K", dir, sizeof dir);
    snprintf(gg, sizeof gg, "%s/ts16.gguf", g_dir);
    snprintf(hf, sizeof hf, "%s/ts16-back", g_dir);
    lq_gguf_close(export_open(dir, NULL, "F16", gg));
    snprintf(args, sizeof args, "--model '%s' --out '%s' --dtype f16", gg, hf);
    cr_assert_eq(lq_test_run_tool("quant-convert", args, g_dir, err, sizeof err), 0, "%s", err);
    lq_checkpoint *a, *o;
    cr_assert_eq(lq_checkpoint_open(hf, &a), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_checkpoint_open(dir, &o), LQ_OK, "%s", lq_last_error());
    for (int64_t i = 0; i < lq_checkpoint_count(o); i++) {
        const lq_tensor *to = lq_checkpoint_get(o, i), *ta = lq_checkpoint_find(a, to->name);
        if (!ta && strcmp(to->name, "lm_head.weight") == 0) ta = lq_checkpoint_find(a, "model.embed_tokens.weight");
        cr_assert(ta && ta->dtype == LQ_DTYPE_F16, "%s", to->name);
        int64_t n = lq_tensor_numel(to);
        cr_assert_eq(lq_tensor_numel(ta), n, "%s", to->name);
        const uint16_t *h = ta->data;
        for (int64_t k = 0; k < n; k++) {
            uint16_t got;
            memcpy(&got, h + k, 2);
            cr_assert_eq(got, lq_f32_to_f16(lq_tensor_get_f32(to, k)), "%s[%lld]", to->name, (long long)k);
        }
    }
    lq_checkpoint_close(a);
    lq_checkpoint_close(o);
}

/* Both files exist and hold the same bytes. */
static void expect_same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    char *x = lq_test_read_file(a, &na), *y = lq_test_read_file(b, &nb);
    cr_assert(x && y, "%s or %s unreadable", a, b);
    cr_expect(na == nb && memcmp(x, y, na) == 0, "%s and %s differ", a, b);
    free(x);
    free(y);
}

/* quant-ptq and quant-prune take a GGUF model (issue 12 item 4) as the HF directory quant-convert
 * makes of it: the same output bytes, q/k rows in HF's layout (not flagged rope_interleaved, which
 * transformers would ignore), the tokenizer carried, no conversion left behind. The GGUF holds
 * Q8_0 blocks, so the tools also say that they re-quantize. */
Test(gguf_export, ptq_and_prune_take_gguf_input) {
    char bin[1024], tok[1024], gg[512], hf[512], a[512], b[512], args[2048], err[512], fa[600], fb[600];
    lq_test_shared("models/stories260K/stories260K.bin", bin, sizeof bin);
    lq_test_shared("models/stories260K/tok512.bin", tok, sizeof tok);
    snprintf(gg, sizeof gg, "%s/s260-q8.gguf", g_dir);
    snprintf(hf, sizeof hf, "%s/s260-q8-hf", g_dir);
    lq_gguf_close(export_open(bin, tok, "Q8_0", gg));
    snprintf(args, sizeof args, "--model '%s' --out '%s'", gg, hf);
    cr_assert_eq(lq_test_run_tool("quant-convert", args, g_dir, err, sizeof err), 0, "%s", err);
    static const struct { const char *tool, *opts; } runs[] = {
        {"quant-ptq", "--scheme W8A16"},
        {"quant-prune", "--method magnitude --sparsity 0.5"},
    };
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        snprintf(a, sizeof a, "%s/%zu-from-gguf", g_dir, r);
        snprintf(b, sizeof b, "%s/%zu-from-hf", g_dir, r);
        snprintf(args, sizeof args, "--model '%s' %s --out '%s'", gg, runs[r].opts, a);
        cr_assert_eq(lq_test_run_tool(runs[r].tool, args, g_dir, err, sizeof err), 0, "%s: %s", runs[r].tool, err);
        cr_expect(strstr(err, "re-quantized") != NULL, "%s: no warning about a quantized GGUF: %s", runs[r].tool, err);
        snprintf(args, sizeof args, "--model '%s' %s --out '%s'", hf, runs[r].opts, b);
        cr_assert_eq(lq_test_run_tool(runs[r].tool, args, g_dir, err, sizeof err), 0, "%s: %s", runs[r].tool, err);
        static const char *const files[] = {"model.safetensors", "config.json", "tokenizer.json"};
        for (size_t f = 0; f < 3; f++) {
            snprintf(fa, sizeof fa, "%s/%s", a, files[f]);
            snprintf(fb, sizeof fb, "%s/%s", b, files[f]);
            expect_same_file(fa, fb);
        }
        snprintf(fa, sizeof fa, "%s/.from-gguf", a);
        cr_expect_not(lq_test_exists(fa), "%s left behind", fa);
        lq_checkpoint *c;
        cr_assert_eq(lq_checkpoint_open(a, &c), LQ_OK, "%s", lq_last_error());
        cr_expect_not(lq_checkpoint_config(c)->rope_interleaved, "%s: q/k rows not in HF's layout", a);
        lq_checkpoint_close(c);
    }
}
