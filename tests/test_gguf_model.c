/* test_gguf_model.c - GGUF models in (io/checkpoint_gguf.c), and transformers' tied-embedding
 * alias in safetensors __metadata__ (io/checkpoint_hf.c).
 *
 * External references:
 *   - tests/fixtures/gguf/<name>.gguf are the tiny transformers fixtures of tests/fixtures/arch
 *     written as llama.cpp's converter writes them (scripts/gguf_fixtures/make_gguf_fixtures.py:
 *     gguf-py's tensor names, llama's permuted q/k rows, Gemma's 1 + w norms, F32), so the logits
 *     transformers recorded in tests/fixtures/arch/<name>/reference.json must come out of the GGUF
 *     too: that checks the naming, the reversed dims, rope_interleaved for "llama", the norm offset
 *     not added twice for "gemma3" and the config read from metadata. Tolerance as test_arch.c.
 *   - TinyStories-656K (shared, written by transformers 4.41): greedy ids of "Once upon a time"
 *     from transformers 5.17 / torch 2.14 in float64 (model.generate, do_sample=False):
 *     [1, 80, 147, 201, 282, 57] -> 313 598 303 1049 1468 267 628 333 94 1210 263 251 604 94 ...
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libquant.h"
#include "lq_eval.h"
#include "lq_format.h"
#include "lq_test_util.h"

#define LOGIT_RTOL 2e-5
#define N_CTX 64

static const char *fixture(const char *rel, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%s", LQ_FIXTURES_DIR, rel);
    return buf;
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static void compare_row(const char *what, const float *got, const json_t *want, int vocab, double margin) {
    cr_assert_eq((int)json_array_size(want), vocab, "%s: reference row has %zu logits, model %d", what,
                 json_array_size(want), vocab);
    double worst = 0.0, scale = 0.0;
    for (int i = 0; i < vocab; i++) {
        double w = json_number_value(json_array_get(want, (size_t)i));
        worst = fmax(worst, fabs((double)got[i] - w));
        scale = fmax(scale, fabs(w));
    }
    cr_assert(2.0 * LOGIT_RTOL * scale < margin, "%s: tolerance could flip a greedy pick", what);
    cr_expect(worst <= LOGIT_RTOL * scale, "%s: logits differ by %.3g (row max |logit| %.3g)", what, worst, scale);
}

/* Every prompt of the f32 reference of tests/fixtures/arch/<name> through the model at gpath (the
 * GGUF fixture, or an HF directory made of it). */
static void check_model(const char *name, const char *gpath, const char *gguf_arch_hf) {
    char rpath[1024], rel[256];
    snprintf(rel, sizeof rel, "arch/%s/reference.json", name);
    json_error_t jerr;
    json_t *ref = json_load_file(fixture(rel, rpath, sizeof rpath), 0, &jerr);
    cr_assert_not_null(ref, "%s: %s", rpath, jerr.text);
    lq_model *m;
    cr_assert_eq(lq_model_load(gpath, &m), LQ_OK, "%s", lq_last_error());
    const lq_config *cfg = lq_model_config(m);
    cr_assert_str_eq(cfg->arch, gguf_arch_hf);
    const int vocab = cfg->vocab_size;
    float *logits = malloc((size_t)N_CTX * (size_t)vocab * sizeof(float));
    cr_assert_not_null(logits);
    size_t pi;
    json_t *p;
    char what[128];
    json_array_foreach(json_object_get(ref, "prompts"), pi, p) {
        const json_t *ids = json_object_get(p, "ids"), *v = json_object_get(p, "f32");
        const json_t *greedy = json_object_get(v, "greedy"), *rows = json_object_get(v, "logits");
        const int pos_decode = (int)json_integer_value(json_array_get(json_object_get(v, "positions"), 1));
        const double margin = json_number_value(json_object_get(v, "min_margin"));
        int n = (int)json_array_size(ids), n_gen = (int)json_array_size(greedy);
        cr_assert(n > 0 && n + n_gen <= N_CTX);
        int32_t tok[N_CTX];
        for (int i = 0; i < n; i++) tok[i] = (int32_t)json_integer_value(json_array_get(ids, (size_t)i));
        lq_session *s;
        cr_assert_eq(lq_session_create(m, N_CTX, NULL, &s), LQ_OK, "%s", lq_last_error());
        cr_assert_eq(lq_forward(s, tok, n, 0, logits, true), LQ_OK, "%s", lq_last_error());
        const float *last = logits + (size_t)(n - 1) * (size_t)vocab;
        snprintf(what, sizeof what, "%s.gguf prompt %zu prefill", name, pi);
        compare_row(what, last, json_array_get(rows, 0), vocab, margin);
        int next = argmax(last, vocab);
        for (int g = 0; g < n_gen; g++) {
            int want = (int)json_integer_value(json_array_get(greedy, (size_t)g));
            cr_assert_eq(next, want, "%s.gguf prompt %zu: greedy id %d is %d, transformers %d", name, pi, g, next, want);
            if (g == n_gen - 1) break;
            int32_t t = next;
            cr_assert_eq(lq_forward(s, &t, 1, n + g, logits, false), LQ_OK, "%s", lq_last_error());
            if (n + g == pos_decode) {
                snprintf(what, sizeof what, "%s.gguf prompt %zu decode", name, pi);
                compare_row(what, logits, json_array_get(rows, 1), vocab, margin);
            }
            next = argmax(logits, vocab);
        }
        lq_session_free(s);
    }
    free(logits);
    lq_model_free(m);
    json_decref(ref);
}

static void check_gguf_fixture(const char *name, const char *gguf_arch_hf) {
    char gpath[1024], rel[256];
    snprintf(rel, sizeof rel, "gguf/%s.gguf", name);
    check_model(name, fixture(rel, gpath, sizeof gpath), gguf_arch_hf);
}

Test(gguf_model, llama_permuted_qk_matches_transformers) { check_gguf_fixture("llama2", "LlamaForCausalLM"); }
Test(gguf_model, qwen2_matches_transformers) { check_gguf_fixture("qwen2", "Qwen2ForCausalLM"); }
Test(gguf_model, qwen3_matches_transformers) { check_gguf_fixture("qwen3", "Qwen3ForCausalLM"); }
Test(gguf_model, gemma3_folded_norms_match_transformers) { check_gguf_fixture("gemma3_gguf", "Gemma3ForCausalLM"); }

/* What the checkpoint makes of the llama fixture: HF names, reversed dims, config, tied head,
 * and the vocabulary the model's own file carries. */
Test(gguf_model, llama_checkpoint_names_config_tokenizer) {
    char path[1024];
    fixture("gguf/llama2.gguf", path, sizeof path);
    lq_checkpoint *c;
    cr_assert_eq(lq_checkpoint_open(path, &c), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_checkpoint_kind(c), LQ_CKPT_GGUF);
    const lq_config *g = lq_checkpoint_config(c);
    /* tests/fixtures/arch/llama2/config.json */
    cr_expect_eq(g->dim, 32);
    cr_expect_eq(g->hidden_dim, 48);
    cr_expect_eq(g->n_layers, 2);
    cr_expect_eq(g->n_heads, 4);
    cr_expect_eq(g->n_kv_heads, 2);
    cr_expect_eq(g->head_dim, 8);
    cr_expect_eq(g->vocab_size, 128);
    cr_expect_eq(g->max_seq_len, 128);
    cr_expect(fabsf(g->norm_eps - 1e-5f) < 1e-12f);
    cr_expect_eq(g->rope_theta, 10000.0f);
    cr_expect(g->rope_interleaved);
    cr_expect(!g->tied_embeddings); /* llama2 fixture: untied head, output.weight present */
    const lq_tensor *t = lq_checkpoint_find(c, "model.layers.1.mlp.down_proj.weight");
    cr_assert_not_null(t);
    cr_expect_eq(t->ndim, 2);
    cr_expect_eq(t->shape[0], 32); /* rows = out features; GGUF ne = {48, 32} */
    cr_expect_eq(t->shape[1], 48);
    cr_expect_eq(t->dtype, LQ_DTYPE_F32);
    cr_expect_not_null(lq_checkpoint_find(c, "lm_head.weight"));
    cr_expect_not_null(lq_checkpoint_find(c, "model.norm.weight"));
    cr_expect_null(lq_checkpoint_find(c, "blk.0.attn_q.weight"));
    lq_checkpoint_close(c);

    lq_model *m;
    cr_assert_eq(lq_model_load(path, &m), LQ_OK, "%s", lq_last_error());
    lq_tokenizer *tok;
    cr_assert_eq(lq_eval_load_tokenizer(m, path, NULL, &tok), LQ_OK, "%s", lq_last_error());
    cr_expect_eq(lq_tokenizer_vocab_size(tok), 128);
    cr_expect_eq(lq_tokenizer_bos(tok), 1);
    lq_tokenizer_free(tok);
    lq_model_free(m);
}

Test(gguf_model, gemma3_config_from_metadata) {
    char path[1024];
    lq_checkpoint *c;
    cr_assert_eq(lq_checkpoint_open(fixture("gguf/gemma3_gguf.gguf", path, sizeof path), &c), LQ_OK, "%s",
                 lq_last_error());
    const lq_config *g = lq_checkpoint_config(c);
    cr_expect(!g->rope_interleaved); /* llama.cpp runs gemma3 with NEOX rotation, unpermuted */
    cr_expect(g->norm_offset_folded);
    cr_expect(g->tied_embeddings);
    cr_expect_eq(g->head_dim, 16);
    cr_expect_eq(g->sliding_window, 8);
    cr_expect_eq(lq_config_layer_window(g, 0), 8);
    cr_expect_eq(lq_config_layer_window(g, 1), 0);
    cr_expect_eq(g->rope_theta, 1000000.0f);
    cr_expect_eq(g->rope_local_theta, 10000.0f);
    cr_expect_eq(g->attn_scalar, 16.0f);
    lq_checkpoint_close(c);
}

/* Bad input: one line naming the file and what is wrong, exit 3 from the tools. */
static void expect_refused(const char *path, const char *needle) {
    lq_checkpoint *c = NULL;
    cr_assert_neq(lq_checkpoint_open(path, &c), LQ_OK, "%s opened", path);
    cr_expect_null(c);
    const char *msg = lq_last_error();
    cr_expect(strstr(msg, path) && strstr(msg, needle), "message '%s' lacks '%s'", msg, needle);
    cr_expect_null(strchr(msg, '\n'), "message has several lines: %s", msg);
    char tool[1024], cmd[2300];
    snprintf(cmd, sizeof cmd, "'%s' '%s' >/dev/null 2>&1", lq_test_tool("quant-info", tool, sizeof tool), path);
    cr_expect_eq(lq_test_exit_code(system(cmd)), 3, "%s", cmd);
}

Test(gguf_model, unsupported_type_named) {
    char p[1024];
    expect_refused(fixture("gguf/bad_type.gguf", p, sizeof p), "tensor 'blk.0.attn_q.weight': GGUF type IQ2_XXS");
}

Test(gguf_model, unknown_architecture_named) {
    char p[1024];
    expect_refused(fixture("gguf/bad_arch.gguf", p, sizeof p), "general.architecture \"mamba\" is not supported");
}

Test(gguf_model, vocab_mismatch_one_line) {
    char p[1024];
    expect_refused(fixture("gguf/bad_vocab.gguf", p, sizeof p),
                   "tokenizer.ggml.tokens has 127 tokens but token_embd.weight has 128 rows");
}

Test(gguf_model, truncated_file_refused) {
    char src[1024], dst[64];
    fixture("gguf/llama2.gguf", src, sizeof src);
    size_t n;
    char *bytes = lq_test_read_file(src, &n);
    cr_assert_not_null(bytes);
    snprintf(dst, sizeof dst, "/tmp/lq_gguf_trunc_%d.gguf", (int)getpid());
    FILE *f = fopen(dst, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(bytes, 1, n - 100, f), n - 100); /* the last tensor's data cut short */
    fclose(f);
    free(bytes);
    expect_refused(dst, "past the end of the file");
    unlink(dst);
}

/* fuzz_gguf_model's finding (CI smoke run, 2026-12-04): the qwen2 fixture with
 * qwen2.attention.head_count = 331179095 and no key_length opened with head size 0 (32 / n). */
Test(gguf_model, head_count_not_dividing_the_width_refused) {
    char src[1024], dst[64];
    fixture("gguf/qwen2.gguf", src, sizeof src);
    size_t n;
    char *bytes = lq_test_read_file(src, &n);
    cr_assert_not_null(bytes);
    /* the key as GGUF stores it (u64 length, bytes), then its u32 type and u32 value */
    const char key[] = "qwen2.attention.head_count";
    char pat[8 + sizeof key - 1];
    const uint64_t len = sizeof key - 1;
    memcpy(pat, &len, 8);
    memcpy(pat + 8, key, len);
    char *at = memmem(bytes, n, pat, sizeof pat);
    cr_assert_not_null(at, "key not found in the fixture");
    uint32_t type, v = 331179095u;
    memcpy(&type, at + sizeof pat, 4);
    cr_assert(type == 4 || type == 5, "head_count has GGUF type %u", type); /* UINT32 / INT32 */
    memcpy(at + sizeof pat + 4, &v, 4);
    snprintf(dst, sizeof dst, "/tmp/lq_gguf_heads_%d.gguf", (int)getpid());
    FILE *f = fopen(dst, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(bytes, 1, n, f), n);
    fclose(f);
    free(bytes);
    expect_refused(dst, "attention.head_count 331179095 does not divide embedding_length 32");
    unlink(dst);
}

/* fuzz_gguf_model's finding of 2026-12-04 (docs/FUZZING.md): a gemma3 file whose token_embd.weight
 * has 0 rows, whose vocab_size key says 0 and whose tokenizer.ggml.tokens key is misspelt opened
 * with vocab_size 0. The reproducer is the fuzzer's input, kept in its corpus. */
Test(gguf_model, embedding_without_rows_refused) {
    char src[1024];
    fixture("../fuzz/corpus/gguf_model/repro_embedding_without_rows.gguf", src, sizeof src);
    expect_refused(src, "token_embd.weight has no rows");
}

/* ---- safetensors tied-embedding alias ----------------------------------------------------- */

typedef struct ids_buf {
    int32_t ids[64];
    int n;
} ids_buf;

static bool collect_ids(void *user, int32_t id, const char *bytes, size_t len) {
    (void)bytes;
    (void)len;
    ids_buf *b = user;
    if (b->n < 64) b->ids[b->n++] = id;
    return true;
}

Test(gguf_model, tinystories_tied_alias_generates_transformers_ids) {
    char dir[1024];
    lq_test_shared("models/TinyStories-656K", dir, sizeof dir);
    lq_checkpoint *c;
    cr_assert_eq(lq_checkpoint_open(dir, &c), LQ_OK, "%s", lq_last_error());
    const lq_tensor *e = lq_checkpoint_find(c, "model.embed_tokens.weight"), *h = lq_checkpoint_find(c, "lm_head.weight");
    cr_assert(e && h);
    cr_expect_eq(e->data, h->data); /* one tensor, two names: nothing copied */
    lq_checkpoint_close(c);

    lq_model *m;
    cr_assert_eq(lq_model_load(dir, &m), LQ_OK, "%s", lq_last_error());
    lq_tokenizer *tok;
    cr_assert_eq(lq_eval_load_tokenizer(m, dir, NULL, &tok), LQ_OK, "%s", lq_last_error());
    int32_t *prompt = NULL;
    int64_t np = 0;
    const char *text = "Once upon a time";
    cr_assert_eq(lq_eval_encode_text(tok, text, strlen(text), true, "prompt", &prompt, &np), LQ_OK, "%s",
                 lq_last_error());
    static const int32_t want_prompt[] = {1, 80, 147, 201, 282, 57};
    cr_assert_eq(np, 6);
    for (int i = 0; i < 6; i++) cr_expect_eq(prompt[i], want_prompt[i]);
    lq_session *s;
    cr_assert_eq(lq_session_create(m, 0, NULL, &s), LQ_OK, "%s", lq_last_error());
    ids_buf out = {.n = 0};
    lq_gen_result r;
    cr_assert_eq(lq_eval_generate_greedy(m, s, tok, prompt, (int)np, 24, collect_ids, &out, &r), LQ_OK, "%s",
                 lq_last_error());
    static const int32_t want[] = {313, 598, 303, 1049, 1468, 267, 628, 333, 94, 1210, 263, 251,
                                   604, 94, 1030, 94, 1030, 94, 436, 220, 1053, 615, 303, 328};
    cr_assert_eq(out.n, 24);
    for (int i = 0; i < 24; i++) cr_expect_eq(out.ids[i], want[i], "id %d: %d, transformers %d", i, out.ids[i], want[i]);
    free(prompt);
    lq_session_free(s);
    lq_tokenizer_free(tok);
    lq_model_free(m);
}

/* An alias whose target is not in the file: one line naming both. */
Test(gguf_model, tied_alias_pointing_nowhere) {
    char dir[64], path[128], cfg_src[1024];
    snprintf(dir, sizeof dir, "/tmp/lq_alias_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    lq_st_writer *w;
    cr_assert_eq(lq_st_writer_create(path, &w), LQ_OK);
    cr_assert_eq(lq_st_writer_metadata(w, "model.embed_tokens.weight", "lm_head.weigth"), LQ_OK);
    int64_t shape[1] = {4};
    cr_assert_eq(lq_st_writer_declare(w, "model.norm.weight", LQ_DTYPE_F32, 1, shape), LQ_OK);
    float v[4] = {1, 1, 1, 1};
    cr_assert_eq(lq_st_writer_write(w, v, sizeof v), LQ_OK);
    cr_assert_eq(lq_st_writer_commit(w), LQ_OK, "%s", lq_last_error());
    lq_test_shared("models/TinyStories-656K/config.json", cfg_src, sizeof cfg_src);
    char *cfg = lq_test_read_file(cfg_src, NULL);
    cr_assert_not_null(cfg);
    cr_assert_eq(lq_config_json_save(dir, cfg), LQ_OK);
    free(cfg);
    lq_checkpoint *c = NULL;
    cr_assert_neq(lq_checkpoint_open(dir, &c), LQ_OK);
    cr_expect(strstr(lq_last_error(), "'model.embed_tokens.weight' an alias of 'lm_head.weigth', which is not in the file"),
              "%s", lq_last_error());
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

/* ---- SmolLM2-135M-Instruct Q4_1 (shared): Q4_1 matrices + Q8_0 embedding, run natively -------- */

/* Expected ids from llama.cpp 0c1e57098 (the peer build, /work/llama.cpp), with its
 * examples/simple/simple.cpp made to print ids (greedy sampler; tokenized with add_special and
 * parse_special), 2 threads:
 *   simple_ids -m SmolLM2-135M-Instruct.Q4_1.gguf -n 12 $'<|im_start|>user\nWhat is the capital
 *   of France?<|im_end|>\n<|im_start|>assistant\n'
 * prompt 1 4093 198 1780 314 260 3575 282 4649 47 2 198 1 520 9531 198 (also the float64
 * reference of shared/models/SOURCES.md), generated 504 3575 282 4649 314 7042 30 ("The capital
 * of France is Paris.") and then an end-of-generation token. */
Test(gguf_model, smollm2_q4_1_chat_answer_equals_llama_cpp) {
    char path[1024];
    lq_test_shared("models/SmolLM2-135M-Instruct-Q4_1/SmolLM2-135M-Instruct.Q4_1.gguf", path, sizeof path);
    lq_model *m;
    cr_assert_eq(lq_model_load(path, &m), LQ_OK, "%s", lq_last_error());
    const lq_weight *q = lq_test_linear(m, 0, "self_attn.q_proj");
    cr_assert_not_null(q);
    cr_expect_str_eq(lq_wfmt_get(q->fmt)->name, "q4_1"); /* packed blocks, not expanded */
    lq_tokenizer *tok;
    cr_assert_eq(lq_eval_load_tokenizer(m, path, NULL, &tok), LQ_OK, "%s", lq_last_error());
    const char *text = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n";
    int32_t prompt[64];
    int64_t np = 0;
    cr_assert_eq(lq_tokenizer_encode(tok, text, strlen(text), false, true, prompt, 64, &np), LQ_OK, "%s",
                 lq_last_error());
    static const int32_t want_prompt[] = {1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198};
    cr_assert_eq(np, 16);
    for (int i = 0; i < 16; i++) cr_expect_eq(prompt[i], want_prompt[i], "prompt id %d", i);
    lq_session *s;
    cr_assert_eq(lq_session_create(m, 64, NULL, &s), LQ_OK, "%s", lq_last_error());
    ids_buf out = {.n = 0};
    lq_gen_result r;
    cr_assert_eq(lq_eval_generate_greedy(m, s, tok, prompt, (int)np, 12, collect_ids, &out, &r), LQ_OK, "%s",
                 lq_last_error());
    static const int32_t want[] = {504, 3575, 282, 4649, 314, 7042, 30};
    cr_assert_eq(out.n, 7, "generated %d ids", out.n);
    for (int i = 0; i < 7; i++) cr_expect_eq(out.ids[i], want[i], "id %d: %d, llama.cpp %d", i, out.ids[i], want[i]);
    cr_expect(r.hit_eos);
    lq_session_free(s);
    lq_tokenizer_free(tok);
    lq_model_free(m);
}

/* quant-eval and quant-info on TinyStories-656K end to end. Reference: the llama.cpp protocol
 * (ctx 256: BOS replaces each chunk's first token, the second half scored) run in Python on the
 * ids of the `tokenizers` library 0.23.3 (the library our tokenizer.json port follows; the text's
 * U+201C is <unk> there) through transformers 5.17 in float64: 3 chunks, 381 tokens, PPL
 * 56.249751. (transformers' AutoTokenizer drops that character instead: 886 ids, PPL 57.409.) */
Test(gguf_model, tinystories_quant_eval_and_info) {
    char dir[1024], text[1024], tool[1024], cmd[4200];
    lq_test_shared("models/TinyStories-656K", dir, sizeof dir);
    lq_test_shared("data/tinystories_sample.txt", text, sizeof text);
    snprintf(cmd, sizeof cmd, "'%s' --model '%s' --file '%s' --ctx 256 --threads 1 --json 2>/dev/null",
             lq_test_tool("quant-eval", tool, sizeof tool), dir, text);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    json_error_t jerr;
    json_t *j = json_loadf(p, 0, &jerr);
    cr_expect_eq(lq_test_exit_code(pclose(p)), 0, "%s", cmd);
    cr_assert_not_null(j, "%s: %s", cmd, jerr.text);
    double ppl = json_number_value(json_object_get(j, "ppl"));
    cr_expect_eq(json_integer_value(json_object_get(j, "tokens_scored")), 381);
    cr_expect(fabs(ppl - 56.249751) <= 1e-5 * 56.249751, "PPL %.6f, reference 56.249751", ppl);
    json_decref(j);
    snprintf(cmd, sizeof cmd, "'%s' '%s' --json 2>/dev/null", lq_test_tool("quant-info", tool, sizeof tool), dir);
    p = popen(cmd, "r");
    cr_assert_not_null(p);
    j = json_loadf(p, 0, &jerr);
    cr_expect_eq(lq_test_exit_code(pclose(p)), 0, "%s", cmd);
    cr_assert_not_null(j, "%s: %s", cmd, jerr.text);
    /* SOURCES.md: 656,000 parameters; the alias is one tensor, counted once */
    cr_expect_eq(json_integer_value(json_object_get(j, "parameters")), 656000);
    json_decref(j);
}

/* GGUF -> HF (quant-convert --model F.gguf --out DIR, tools/common/tool_convert_hf.c): each
 * fixture comes back as the transformers checkpoint it was made from (tests/fixtures/arch/<name>:
 * llama's q/k rows un-permuted, Gemma's 1 + w norms back to w within the f32 rounding of the
 * + 1, which is at most half an ulp of 1 + w), and the directory reproduces transformers' logits. */
static void check_gguf_to_hf(const char *name, const char *arch) {
    char gpath[1024], opath[1024], rel[256], dir[256], args[2048], err[512];
    snprintf(rel, sizeof rel, "gguf/%s.gguf", name);
    fixture(rel, gpath, sizeof gpath);
    snprintf(rel, sizeof rel, "arch/%s", name);
    fixture(rel, opath, sizeof opath);
    snprintf(dir, sizeof dir, "/tmp/lq_test_gguf_hf_%d_%s", (int)getpid(), name);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    cr_assert_eq(system(cmd), 0);
    snprintf(args, sizeof args, "--model '%s' --out '%s/hf'", gpath, dir);
    cr_assert_eq(lq_test_run_tool("quant-convert", args, dir, err, sizeof err), 0, "%s", err);
    snprintf(rel, sizeof rel, "%s/hf", dir);
    lq_checkpoint *a, *o, *g;
    cr_assert_eq(lq_checkpoint_open(gpath, &g), LQ_OK, "%s", lq_last_error());
    const bool folded = lq_checkpoint_config(g)->norm_offset_folded;
    lq_checkpoint_close(g);
    cr_assert_eq(lq_checkpoint_open(rel, &a), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_checkpoint_open(opath, &o), LQ_OK, "%s", lq_last_error());
    cr_expect(!lq_checkpoint_config(a)->rope_interleaved && !lq_checkpoint_config(a)->norm_offset_folded);
    for (int64_t i = 0; i < lq_checkpoint_count(o); i++) {
        const lq_tensor *to = lq_checkpoint_get(o, i), *ta = lq_checkpoint_find(a, to->name);
        cr_assert(ta, "%s: %s missing", name, to->name);
        const int64_t n = lq_tensor_numel(to);
        cr_assert_eq(lq_tensor_numel(ta), n, "%s", to->name);
        for (int64_t k = 0; k < n; k++) {
            const float w = lq_tensor_get_f32(to, k), got = lq_tensor_get_f32(ta, k);
            const double tol = folded && strstr(to->name, "norm.weight") ? 0.5 * ldexp(1.0, -23) * (1.0 + fabs(w) + 1.0)
                                                                       : 0.0;
            cr_assert(fabs((double)got - w) <= tol, "%s: %s[%lld] = %.9g, transformers %.9g", name, to->name,
                      (long long)k, got, w);
        }
    }
    lq_checkpoint_close(a);
    lq_checkpoint_close(o);
    check_model(name, rel, arch);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    (void)system(cmd);
}

Test(gguf_model, llama_gguf_to_hf_is_the_transformers_checkpoint) { check_gguf_to_hf("llama2", "LlamaForCausalLM"); }
Test(gguf_model, qwen2_gguf_to_hf_is_the_transformers_checkpoint) { check_gguf_to_hf("qwen2", "Qwen2ForCausalLM"); }
Test(gguf_model, qwen3_gguf_to_hf_is_the_transformers_checkpoint) { check_gguf_to_hf("qwen3", "Qwen3ForCausalLM"); }
Test(gguf_model, gemma3_gguf_to_hf_unfolds_the_norms) { check_gguf_to_hf("gemma3_gguf", "Gemma3ForCausalLM"); }
