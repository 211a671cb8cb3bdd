/* test_bad_input.c - every malformed input is refused with the right status and a message that
 * names the file and, where there is one, the tensor. Files are crafted by hand in a temp dir. */
#include <criterion/criterion.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libquant.h"
#include "libquant/lq_ptq.h"
#include "lq_test_util.h"

static char g_dir[64];

static void setup(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/lq_bad_XXXXXX");
    cr_assert_not_null(mkdtemp(g_dir));
}

static int rm_cb(const char *p, const struct stat *sb, int f, struct FTW *ftw) {
    (void)sb; (void)f; (void)ftw;
    return remove(p);
}

static void teardown(void) { nftw(g_dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS); }

TestSuite(bad_input, .init = setup, .fini = teardown);

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* A safetensors file with the given header text, declared header length (0 = real length) and
 * `data_len` zero bytes of data. Returns the path in buf. */
static const char *craft(char *buf, size_t cap, const char *name, const char *header, uint64_t claimed,
                         size_t data_len) {
    snprintf(buf, cap, "%s/%s", g_dir, name);
    size_t hl = strlen(header);
    uint64_t n = claimed ? claimed : hl;
    unsigned char *b = calloc(1, 8 + hl + data_len);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(n >> (8 * i));
    memcpy(b + 8, header, hl);
    write_bytes(buf, b, 8 + hl + data_len);
    free(b);
    return buf;
}

/* Open must fail with `want`, and the message must mention every non-NULL needle. */
static void expect_st_fail(const char *path, lq_status want, const char *needle1, const char *needle2) {
    lq_st_file *f = (lq_st_file *)0x1;
    lq_status s = lq_st_open(path, &f);
    cr_assert_eq(s, want, "status %s, message: %s", lq_status_name(s), lq_last_error());
    cr_assert_null(f);
    cr_assert(strstr(lq_last_error(), path), "message does not name the file: %s", lq_last_error());
    if (needle1) cr_assert(strstr(lq_last_error(), needle1), "missing '%s' in: %s", needle1, lq_last_error());
    if (needle2) cr_assert(strstr(lq_last_error(), needle2), "missing '%s' in: %s", needle2, lq_last_error());
}

/* ---- safetensors ---------------------------------------------------------------------------- */

Test(bad_input, header_length_past_end) {
    char p[128];
    craft(p, sizeof p, "a.safetensors", "{}", 1000, 0);
    expect_st_fail(p, LQ_ERR_FORMAT, "past the end", NULL);
    /* Huge value that would wrap a naive 8 + N computation. */
    craft(p, sizeof p, "b.safetensors", "{}", UINT64_MAX - 3, 0);
    expect_st_fail(p, LQ_ERR_FORMAT, "past the end", NULL);
}

Test(bad_input, file_shorter_than_length_prefix) {
    char p[128];
    snprintf(p, sizeof p, "%s/tiny.safetensors", g_dir);
    write_bytes(p, "\x02\0\0", 3);
    expect_st_fail(p, LQ_ERR_FORMAT, "too short", NULL);
}

Test(bad_input, header_not_json) {
    char p[128];
    craft(p, sizeof p, "a.safetensors", "{\"w\": {\"dtype\": \"F32\", ", 0, 0);
    expect_st_fail(p, LQ_ERR_FORMAT, "not valid JSON", NULL);
    craft(p, sizeof p, "b.safetensors", "[1, 2]", 0, 0);
    expect_st_fail(p, LQ_ERR_FORMAT, "not a JSON object", NULL);
}

Test(bad_input, unknown_dtype) {
    char p[128];
    craft(p, sizeof p, "a.safetensors", "{\"w\":{\"dtype\":\"F31\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8);
    expect_st_fail(p, LQ_ERR_FORMAT, "tensor 'w'", "unknown dtype 'F31'");
}

Test(bad_input, shape_disagrees_with_bytes) {
    char p[128];
    craft(p, sizeof p, "a.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 0, 20);
    expect_st_fail(p, LQ_ERR_FORMAT, "tensor 'w'", "needs 24 bytes");
}

Test(bad_input, overflowing_dims) {
    char p[128];
    craft(p, sizeof p, "a.safetensors",
          "{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4611686018427387904],\"data_offsets\":[0,0]}}", 0, 0);
    expect_st_fail(p, LQ_ERR_FORMAT, "tensor 'w'", "overflow");
    /* numel fits int64 but numel * 4 bytes does not. */
    craft(p, sizeof p, "b.safetensors",
          "{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,2],\"data_offsets\":[0,0]}}", 0, 0);
    expect_st_fail(p, LQ_ERR_FORMAT, "tensor 'w'", "overflow");
    craft(p, sizeof p, "c.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0, 0);
    expect_st_fail(p, LQ_ERR_FORMAT, "tensor 'w'", "shape[0]");
}

Test(bad_input, offsets_out_of_range) {
    char p[128];
    craft(p, sizeof p, "a.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 0, 16);
    expect_st_fail(p, LQ_ERR_FORMAT, "tensor 'w'", "out of range");
    craft(p, sizeof p, "b.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 0, 16);
    expect_st_fail(p, LQ_ERR_FORMAT, "tensor 'w'", "reversed");
    craft(p, sizeof p, "c.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 0, 4);
    expect_st_fail(p, LQ_ERR_FORMAT, "tensor 'w'", "data_offsets");
}

Test(bad_input, overlapping_offsets) {
    char p[128];
    craft(p, sizeof p, "a.safetensors",
          "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
          "\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 0, 16);
    expect_st_fail(p, LQ_ERR_FORMAT, "tensor 'y'", "overlap");
}

Test(bad_input, offsets_not_covering_data) {
    char p[128];
    craft(p, sizeof p, "a.safetensors",
          "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
          "\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 0, 20);
    expect_st_fail(p, LQ_ERR_FORMAT, "tensor 'y'", "hole");
    craft(p, sizeof p, "b.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 12);
    expect_st_fail(p, LQ_ERR_FORMAT, "trailing", NULL);
}

Test(bad_input, duplicate_tensor_name) {
    char p[128];
    craft(p, sizeof p, "a.safetensors",
          "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
          "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 0, 8);
    expect_st_fail(p, LQ_ERR_FORMAT, "not valid JSON", NULL);
}

Test(bad_input, missing_file) {
    char p[128];
    snprintf(p, sizeof p, "%s/nope.safetensors", g_dir);
    expect_st_fail(p, LQ_ERR_NOT_FOUND, "cannot open", NULL);
}

/* ---- config.json ------------------------------------------------------------------------------ */

static void expect_cfg_fail(const char *json, lq_status want, const char *needle) {
    lq_config cfg;
    lq_status s = lq_config_parse_json(json, "/m/config.json", &cfg);
    cr_assert_eq(s, want, "status %s for %s: %s", lq_status_name(s), json, lq_last_error());
    cr_assert(strstr(lq_last_error(), "/m/config.json"), "%s", lq_last_error());
    cr_assert(strstr(lq_last_error(), needle), "missing '%s' in: %s", needle, lq_last_error());
}

#define CFG_HEAD "{\"architectures\":[\"LlamaForCausalLM\"],\"intermediate_size\":16,\"num_hidden_layers\":1,\"vocab_size\":8,"

Test(bad_input, malformed_config_json) {
    expect_cfg_fail("{\"hidden_size\": 8,", LQ_ERR_FORMAT, "not valid JSON");
    expect_cfg_fail(CFG_HEAD "\"num_attention_heads\":2}", LQ_ERR_FORMAT, "hidden_size");
    expect_cfg_fail(CFG_HEAD "\"hidden_size\":10,\"num_attention_heads\":4}", LQ_ERR_FORMAT, "does not divide");
    expect_cfg_fail(CFG_HEAD "\"hidden_size\":8,\"num_attention_heads\":4,\"num_key_value_heads\":3}", LQ_ERR_FORMAT,
                    "does not divide");
    expect_cfg_fail(CFG_HEAD "\"hidden_size\":-8,\"num_attention_heads\":2}", LQ_ERR_FORMAT, "hidden_size");
    expect_cfg_fail(CFG_HEAD "\"hidden_size\":8,\"num_attention_heads\":\"2\"}", LQ_ERR_FORMAT, "num_attention_heads");
    expect_cfg_fail(CFG_HEAD "\"hidden_size\":8,\"num_attention_heads\":2,\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4}}",
                    LQ_ERR_UNSUPPORTED, "yarn");
    expect_cfg_fail("{\"architectures\":[\"GPT2LMHeadModel\"]}", LQ_ERR_UNSUPPORTED, "GPT2LMHeadModel");
    expect_cfg_fail("{\"hidden_size\": 8}", LQ_ERR_FORMAT, "architectures");
}

/* ---- checkpoints ---------------------------------------------------------------------------- */

static void write_text(const char *dir, const char *name, const char *text) {
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    write_bytes(p, text, strlen(text));
}

/* A valid 1-layer Llama (dim 4, hidden 8, 2 heads, 1 kv head, vocab 6), optionally leaving one
 * tensor out or giving one a wrong shape. */
static void make_tiny_llama(const char *dir, const char *omit, const char *misshape) {
    static const struct { const char *name; int nd; int64_t r, c; } ts[] = {
        {"model.embed_tokens.weight", 2, 6, 4},
        {"model.layers.0.input_layernorm.weight", 1, 4, 0},
        {"model.layers.0.self_attn.q_proj.weight", 2, 4, 4},
        {"model.layers.0.self_attn.k_proj.weight", 2, 2, 4},
        {"model.layers.0.self_attn.v_proj.weight", 2, 2, 4},
        {"model.layers.0.self_attn.o_proj.weight", 2, 4, 4},
        {"model.layers.0.post_attention_layernorm.weight", 1, 4, 0},
        {"model.layers.0.mlp.gate_proj.weight", 2, 8, 4},
        {"model.layers.0.mlp.up_proj.weight", 2, 8, 4},
        {"model.layers.0.mlp.down_proj.weight", 2, 4, 8},
        {"model.norm.weight", 1, 4, 0},
    };
    mkdir(dir, 0755);
    write_text(dir, "config.json",
               "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":4,\"intermediate_size\":8,"
               "\"num_hidden_layers\":1,\"num_attention_heads\":2,\"num_key_value_heads\":1,\"vocab_size\":6}");
    char p[256];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    static float zeros[64];
    lq_tensor t[16];
    int n = 0;
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        if (omit && strcmp(ts[i].name, omit) == 0) continue;
        lq_tensor v = {.name = ts[i].name, .dtype = LQ_DTYPE_F32, .ndim = ts[i].nd, .data = zeros};
        v.shape[0] = ts[i].r;
        v.shape[1] = ts[i].c;
        if (misshape && strcmp(ts[i].name, misshape) == 0) v.shape[0] += 1;
        v.nbytes = (size_t)lq_tensor_numel(&v) * 4;
        t[n++] = v;
    }
    cr_assert_eq(lq_st_save(p, t, n), LQ_OK, "%s", lq_last_error());
}

static void expect_ckpt_fail(const char *path, lq_status want, const char *needle1, const char *needle2) {
    lq_checkpoint *c = (lq_checkpoint *)0x1;
    lq_status s = lq_checkpoint_open(path, &c);
    cr_assert_eq(s, want, "status %s: %s", lq_status_name(s), lq_last_error());
    cr_assert_null(c);
    if (needle1) cr_assert(strstr(lq_last_error(), needle1), "missing '%s' in: %s", needle1, lq_last_error());
    if (needle2) cr_assert(strstr(lq_last_error(), needle2), "missing '%s' in: %s", needle2, lq_last_error());
}

/* The tensor set is the architecture descriptor's business: the checkpoint opens (tools that
 * only rewrite Linear layers accept it) and lq_model_load refuses it, naming the tensor. */
static void expect_model_fail(const char *path, lq_status want, const char *needle1, const char *needle2) {
    lq_checkpoint *c;
    cr_assert_eq(lq_checkpoint_open(path, &c), LQ_OK, "%s", lq_last_error());
    lq_checkpoint_close(c);
    lq_model *m = (lq_model *)0x1;
    lq_status s = lq_model_load(path, &m);
    cr_assert_eq(s, want, "status %s: %s", lq_status_name(s), lq_last_error());
    cr_assert_null(m);
    if (needle1) cr_assert(strstr(lq_last_error(), needle1), "missing '%s' in: %s", needle1, lq_last_error());
    if (needle2) cr_assert(strstr(lq_last_error(), needle2), "missing '%s' in: %s", needle2, lq_last_error());
}

Test(bad_input, tiny_llama_control_opens) {
    char d[128];
    snprintf(d, sizeof d, "%s/ok", g_dir);
    make_tiny_llama(d, NULL, NULL);
    lq_checkpoint *c;
    cr_assert_eq(lq_checkpoint_open(d, &c), LQ_OK, "%s", lq_last_error());
    cr_assert(lq_checkpoint_config(c)->tied_embeddings, "no lm_head.weight: tied");
    lq_checkpoint_close(c);
}

Test(bad_input, missing_tensor) {
    char d[128];
    snprintf(d, sizeof d, "%s/miss", g_dir);
    make_tiny_llama(d, "model.layers.0.mlp.up_proj.weight", NULL);
    expect_model_fail(d, LQ_ERR_NOT_FOUND, "tensor 'model.layers.0.mlp.up_proj.weight'", d);
}

/* A decoder we have no descriptor for: its Linear layers are a checkpoint like any other (the
 * tools that rewrite them open it), but the engine refuses to run it, naming the architecture. */
Test(bad_input, unknown_architecture_at_model_load) {
    char d[128];
    snprintf(d, sizeof d, "%s/arch", g_dir);
    make_tiny_llama(d, NULL, NULL);
    write_text(d, "config.json",
               "{\"architectures\":[\"FancyForCausalLM\"],\"hidden_size\":4,\"intermediate_size\":8,"
               "\"num_hidden_layers\":1,\"num_attention_heads\":2,\"num_key_value_heads\":1,\"vocab_size\":6}");
    expect_model_fail(d, LQ_ERR_UNSUPPORTED, "FancyForCausalLM", "LlamaForCausalLM");
    /* quant-ptq names its Linear layers from the tensors alone, so it quantizes it */
    char out[160];
    snprintf(out, sizeof out, "%s/arch-w8a16", g_dir);
    mkdir(out, 0755);
    lq_ptq_opts o = {.scheme = LQ_WFMT_W8A16};
    lq_ptq_summary sum;
    cr_assert_eq(lq_ptq_quantize(d, out, &o, &sum), LQ_OK, "%s", lq_last_error());
    cr_expect_eq(sum.n_quantized, 7, "the 7 projections of the one layer");
    lq_ptq_summary_free(&sum);
}

Test(bad_input, tensor_shape_vs_config) {
    char d[128];
    snprintf(d, sizeof d, "%s/shape", g_dir);
    make_tiny_llama(d, NULL, "model.layers.0.self_attn.k_proj.weight");
    expect_model_fail(d, LQ_ERR_MISMATCH, "tensor 'model.layers.0.self_attn.k_proj.weight'", "[3, 4]");
}

Test(bad_input, hf_dir_config_problems) {
    char d[128];
    snprintf(d, sizeof d, "%s/cfg", g_dir);
    make_tiny_llama(d, NULL, NULL);
    write_text(d, "config.json", "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 4,");
    expect_ckpt_fail(d, LQ_ERR_FORMAT, "config.json", "not valid JSON");
    char p[256];
    snprintf(p, sizeof p, "%s/config.json", d);
    unlink(p);
    expect_ckpt_fail(d, LQ_ERR_NOT_FOUND, "config.json", NULL);
}

Test(bad_input, sharded_index_problems) {
    char d[128];
    snprintf(d, sizeof d, "%s/shard", g_dir);
    make_tiny_llama(d, NULL, NULL);
    char a[256], b[256];
    snprintf(a, sizeof a, "%s/model.safetensors", d);
    snprintf(b, sizeof b, "%s/model-00001-of-00001.safetensors", d);
    cr_assert_eq(rename(a, b), 0);
    write_text(d, "model.safetensors.index.json",
               "{\"weight_map\": {\"model.norm.weight\": \"model-00001-of-00001.safetensors\","
               " \"model.ghost.weight\": \"model-00001-of-00001.safetensors\"}}");
    expect_ckpt_fail(d, LQ_ERR_FORMAT, "tensor 'model.ghost.weight'", "model.safetensors.index.json");
    write_text(d, "model.safetensors.index.json", "{\"weight_map\": {\"model.norm.weight\": \"../evil.safetensors\"}}");
    expect_ckpt_fail(d, LQ_ERR_FORMAT, "tensor 'model.norm.weight'", "bad shard file name");
    write_text(d, "model.safetensors.index.json", "{\"weight_map\": {\"model.norm.weight\": \"absent.safetensors\"}}");
    expect_ckpt_fail(d, LQ_ERR_NOT_FOUND, "absent.safetensors", NULL);
}

/* ---- llama2.c ---------------------------------------------------------------------------- */

Test(bad_input, truncated_llama2c) {
    char src[512], p[128];
    size_t len = 0;
    char *raw = lq_test_read_file(lq_test_shared("models/stories260K/stories260K.bin", src, sizeof src), &len);
    cr_assert_not_null(raw, "missing shared model %s", src);
    snprintf(p, sizeof p, "%s/trunc.bin", g_dir);
    write_bytes(p, raw, len - 4);
    expect_ckpt_fail(p, LQ_ERR_FORMAT, p, "truncated");
    write_bytes(p, raw, 20); /* not even a header */
    expect_ckpt_fail(p, LQ_ERR_FORMAT, p, "28-byte");
    /* Trailing garbage is as wrong as a missing tail. */
    char *longer = malloc(len + 4);
    memcpy(longer, raw, len);
    memset(longer + len, 0, 4);
    write_bytes(p, longer, len + 4);
    expect_ckpt_fail(p, LQ_ERR_FORMAT, p, "implies 1056540");
    /* Corrupt header: n_heads = 0. */
    int32_t zero = 0;
    memcpy(raw + 12, &zero, 4);
    write_bytes(p, raw, len);
    expect_ckpt_fail(p, LQ_ERR_FORMAT, p, "non-positive");
    free(longer);
    free(raw);
}

/* fuzz_config_json's first finding: a quant_method string holding a newline was echoed into the
 * message, which then spanned two lines. Every message is one line (lq_fail). */
Test(bad_input, names_with_control_characters_stay_one_line) {
    const char *cfg = "{\"quantization_config\": {\"quant_method\": \"compressed-t\\nsors\\r\\u0007\"}}";
    lq_ct_config ct;
    cr_assert_eq(lq_ct_config_parse(cfg, "x/config.json", &ct), LQ_ERR_UNSUPPORTED);
    const char *msg = lq_last_error();
    cr_expect_null(strchr(msg, '\n'), "%s", msg);
    cr_expect_null(strchr(msg, '\r'), "%s", msg);
    cr_expect_null(strchr(msg, '\a'), "%s", msg);
    cr_expect_not_null(strstr(msg, "x/config.json"), "%s", msg);
    cr_expect_not_null(strstr(msg, "compressed-t sors"), "%s", msg);
}
