/* test_moe.c - every compression tool on a sparse MoE (the Mixtral fixture; Qwen2-MoE's shared
 * expert where it differs), its output read back and checked against the input it came from.
 *
 * test_arch.c checks the engine against transformers (f32, W8A16, greedy ids through quant-run);
 * this suite checks what the tools write for an MoE: experts quantized one by one with the
 * routers left float (and named in the config's ignore list, as llm-compressor writes it);
 * magnitude and 2:4 pruning of every expert Linear with the routers left dense, the sparsity
 * exact and the kept weights the largest of the input; structured FFN pruning of each expert
 * (the kept neurons the best by the documented norm score, the config's expert size updated),
 * each output loaded and run by the engine; a recipe doing both.
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libquant/lq_checkpoint.h"
#include "libquant/lq_model.h"
#include "lq_test_util.h"

#define N_LAYERS 2
#define N_EXPERTS 4

static char g_root[256];

static void setup(void) {
    char tmpl[] = "/tmp/lq_test_moe_XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    snprintf(g_root, sizeof g_root, "%s", tmpl);
}

static void teardown(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(moe, .init = setup, .fini = teardown);

static const char *fixture(const char *name, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/arch/%s", LQ_FIXTURES_DIR, name);
    return buf;
}

static void run_tool(const char *tool, const char *args) {
    char err[2048];
    int code = lq_test_run_tool(tool, args, g_root, err, sizeof err);
    cr_assert_eq(code, 0, "%s %s: exit %d: %s", tool, args, code, err);
}

static lq_checkpoint *open_ckpt(const char *dir) {
    lq_checkpoint *c;
    cr_assert_eq(lq_checkpoint_open(dir, &c), LQ_OK, "%s: %s", dir, lq_last_error());
    return c;
}

static float *read_f32(const lq_checkpoint *c, const char *name, int64_t *rows, int64_t *cols) {
    const lq_tensor *t = lq_checkpoint_find(c, name);
    cr_assert_not_null(t, "%s: no tensor %s", lq_checkpoint_path(c), name);
    cr_assert(t->ndim == 2 && t->dtype == LQ_DTYPE_F32, "%s: not a 2-D f32 tensor", name);
    float *f = malloc((size_t)lq_tensor_numel(t) * sizeof *f);
    cr_assert_not_null(f);
    lq_tensor_read_f32(t, 0, lq_tensor_numel(t), f);
    *rows = t->shape[0];
    *cols = t->shape[1];
    return f;
}

/* Mixtral's expert Linear `w` (1..3) of expert e in layer l, and a router. */
static const char *expert_name(int l, int e, int w, char *buf, size_t cap) {
    snprintf(buf, cap, "model.layers.%d.block_sparse_moe.experts.%d.w%d.weight", l, e, w);
    return buf;
}
static const char *router_name(int l, char *buf, size_t cap) {
    snprintf(buf, cap, "model.layers.%d.block_sparse_moe.gate.weight", l);
    return buf;
}

/* The routers of `out` are the input's, bit for bit. */
static void expect_routers_unchanged(const lq_checkpoint *in, const lq_checkpoint *out) {
    char name[128];
    for (int l = 0; l < N_LAYERS; l++) {
        const lq_tensor *a = lq_checkpoint_find(in, router_name(l, name, sizeof name));
        const lq_tensor *b = lq_checkpoint_find(out, name);
        cr_assert(a && b, "%s missing", name);
        cr_expect(a->nbytes == b->nbytes && b->dtype == LQ_DTYPE_F32 && memcmp(a->data, b->data, a->nbytes) == 0,
                  "%s: the router changed", name);
    }
}

/* The model at dir loads and a prompt runs to finite logits. */
static void expect_runs(const char *dir) {
    lq_model *m;
    cr_assert_eq(lq_model_load(dir, &m), LQ_OK, "%s: %s", dir, lq_last_error());
    lq_session *s;
    cr_assert_eq(lq_session_create(m, 32, NULL, &s), LQ_OK, "%s", lq_last_error());
    int32_t tok[5] = {1, 17, 40, 99, 5};
    const int vocab = lq_model_config(m)->vocab_size;
    float *logits = malloc((size_t)5 * (size_t)vocab * sizeof(float));
    cr_assert_eq(lq_forward(s, tok, 5, 0, logits, true), LQ_OK, "%s", lq_last_error());
    for (int i = 0; i < 5 * vocab; i++) cr_assert(isfinite(logits[i]), "%s: logit %d is %g", dir, i, logits[i]);
    free(logits);
    lq_session_free(s);
    lq_model_free(m);
}

Test(moe, ptq_quantizes_experts_one_by_one_and_ignores_routers) {
    char dir[1024], out[512], args[2048], name[160];
    snprintf(out, sizeof out, "%s/w8a16", g_root);
    snprintf(args, sizeof args, "--model '%s' --scheme W8A16 --out '%s'", fixture("mixtral", dir, sizeof dir), out);
    run_tool("quant-ptq", args);
    lq_checkpoint *in = open_ckpt(dir), *q = open_ckpt(out);
    for (int l = 0; l < N_LAYERS; l++)
        for (int e = 0; e < N_EXPERTS; e++)
            for (int w = 1; w <= 3; w++) {
                char mod[128];
                expert_name(l, e, w, mod, sizeof mod);
                mod[strlen(mod) - strlen(".weight")] = 0;
                snprintf(name, sizeof name, "%s.weight_scale", mod);
                const lq_tensor *sc = lq_checkpoint_find(q, name);
                cr_assert_not_null(sc, "%s missing: expert %d of layer %d not quantized", name, e, l);
                cr_expect_eq(sc->shape[0], w == 2 ? 32 : 24, "%s: one scale per output row", name);
            }
    expect_routers_unchanged(in, q);
    /* the config says so: the routers and lm_head in the ignore list, nothing else */
    char path[600];
    snprintf(path, sizeof path, "%s/config.json", out);
    json_error_t jerr;
    json_t *cfg = json_load_file(path, 0, &jerr);
    cr_assert_not_null(cfg, "%s: %s", path, jerr.text);
    const json_t *ig = json_object_get(json_object_get(cfg, "quantization_config"), "ignore");
    cr_assert_eq(json_array_size(ig), N_LAYERS + 1u);
    for (int l = 0; l < N_LAYERS; l++) {
        router_name(l, name, sizeof name);
        name[strlen(name) - strlen(".weight")] = 0;
        cr_expect_str_eq(json_string_value(json_array_get(ig, (size_t)l)), name);
    }
    cr_expect_str_eq(json_string_value(json_array_get(ig, N_LAYERS)), "lm_head");
    json_decref(cfg);
    lq_checkpoint_close(in);
    lq_checkpoint_close(q);
}

/* Every expert Linear lost exactly `zeros` of each group of `group` weights along a row (group
 * = cols: per tensor), and the weights kept are the largest |w| of the input group, unchanged. */
static void expect_pruned(const lq_checkpoint *in, const lq_checkpoint *out, int64_t group, int64_t zeros) {
    char name[160];
    for (int l = 0; l < N_LAYERS; l++)
        for (int e = 0; e < N_EXPERTS; e++)
            for (int w = 1; w <= 3; w++) {
                int64_t r, c, r2, c2;
                float *a = read_f32(in, expert_name(l, e, w, name, sizeof name), &r, &c);
                float *b = read_f32(out, name, &r2, &c2);
                cr_assert(r == r2 && c == c2);
                const int64_t g = group > 0 ? group : r * c;
                for (int64_t i0 = 0; i0 < r * c; i0 += g) {
                    int64_t nz = 0;
                    float max_cut = 0.0f, min_kept = INFINITY;
                    for (int64_t i = i0; i < i0 + g; i++) {
                        cr_assert_neq(a[i], 0.0f, "the fixture has no zero weights");
                        if (b[i] == 0.0f) {
                            nz++;
                            max_cut = fmaxf(max_cut, fabsf(a[i]));
                        } else {
                            cr_assert_eq(b[i], a[i], "%s[%lld]: a kept weight changed", name, (long long)i);
                            min_kept = fminf(min_kept, fabsf(a[i]));
                        }
                    }
                    cr_assert_eq(nz, zeros, "%s: group at %lld has %lld zeros, want %lld", name, (long long)i0,
                                 (long long)nz, (long long)zeros);
                    cr_assert(max_cut < min_kept, "%s: a pruned |w| %g exceeds a kept one %g", name, max_cut, min_kept);
                }
                free(a);
                free(b);
            }
}

Test(moe, prune_magnitude_every_expert_routers_dense) {
    char dir[1024], out[512], args[2048];
    snprintf(out, sizeof out, "%s/mag", g_root);
    snprintf(args, sizeof args, "--model '%s' --method magnitude --sparsity 0.5 --out '%s'",
             fixture("mixtral", dir, sizeof dir), out);
    run_tool("quant-prune", args);
    lq_checkpoint *in = open_ckpt(dir), *p = open_ckpt(out);
    expect_pruned(in, p, 0, 24 * 32 / 2);
    expect_routers_unchanged(in, p);
    lq_checkpoint_close(in);
    lq_checkpoint_close(p);
    expect_runs(out);
}

Test(moe, prune_2_4_every_expert_routers_dense) {
    char dir[1024], out[512], args[2048];
    snprintf(out, sizeof out, "%s/nm", g_root);
    snprintf(args, sizeof args, "--model '%s' --method nm --nm 2:4 --out '%s'", fixture("mixtral", dir, sizeof dir),
             out);
    run_tool("quant-prune", args);
    lq_checkpoint *in = open_ckpt(dir), *p = open_ckpt(out);
    expect_pruned(in, p, 4, 2);
    expect_routers_unchanged(in, p);
    lq_checkpoint_close(in);
    lq_checkpoint_close(p);
    expect_runs(out);
}

static double row_norm(const float *w, int64_t cols, int64_t i) {
    double s = 0.0;
    for (int64_t j = 0; j < cols; j++) s += (double)w[i * cols + j] * w[i * cols + j];
    return sqrt(s);
}

/* The k neurons of expert e (layer l) with the largest ||w1_i|| ||w3_i|| ||w2[:, i]|| (the
 * documented default score, lq_prune.h), in increasing order, into kept. */
static void best_neurons(const lq_checkpoint *c, int l, int e, int k, int *kept) {
    char name[160];
    int64_t r1, c1, r2, c2, r3, c3;
    float *w1 = read_f32(c, expert_name(l, e, 1, name, sizeof name), &r1, &c1);
    float *w2 = read_f32(c, expert_name(l, e, 2, name, sizeof name), &r2, &c2);
    float *w3 = read_f32(c, expert_name(l, e, 3, name, sizeof name), &r3, &c3);
    double score[64];
    cr_assert(r1 <= 64 && c2 == r1 && r3 == r1);
    for (int64_t i = 0; i < r1; i++) {
        double d = 0.0;
        for (int64_t j = 0; j < r2; j++) d += (double)w2[j * c2 + i] * w2[j * c2 + i];
        score[i] = row_norm(w1, c1, i) * row_norm(w3, c3, i) * sqrt(d);
    }
    int n = 0;
    for (int64_t i = 0; i < r1; i++) {
        int better = 0;
        for (int64_t j = 0; j < r1; j++) better += score[j] > score[i];
        if (better < k) kept[n++] = (int)i;
    }
    cr_assert_eq(n, k, "layer %d expert %d: ties in the scores", l, e);
    free(w1);
    free(w2);
    free(w3);
}

Test(moe, prune_ffn_each_expert) {
    char dir[1024], out[512], args[2048], name[160];
    snprintf(out, sizeof out, "%s/ffn", g_root);
    snprintf(args, sizeof args, "--model '%s' --method ffn --keep 0.5 --out '%s'", fixture("mixtral", dir, sizeof dir),
             out);
    run_tool("quant-prune", args);
    lq_checkpoint *in = open_ckpt(dir), *p = open_ckpt(out);
    cr_expect_eq(lq_checkpoint_config(p)->expert_hidden_dim, 12, "config.json: the experts' new size");
    cr_expect_eq(lq_checkpoint_config(p)->hidden_dim, 12, "Mixtral's expert size is intermediate_size");
    for (int l = 0; l < N_LAYERS; l++)
        for (int e = 0; e < N_EXPERTS; e++) {
            int kept[12];
            best_neurons(in, l, e, 12, kept);
            int64_t r, c, rp, cp;
            for (int w = 1; w <= 3; w++) {
                float *a = read_f32(in, expert_name(l, e, w, name, sizeof name), &r, &c);
                float *b = read_f32(p, name, &rp, &cp);
                if (w == 2) { /* down: the kept neurons' columns */
                    cr_assert(rp == r && cp == 12, "%s: shape [%lld, %lld]", name, (long long)rp, (long long)cp);
                    for (int64_t i = 0; i < r; i++)
                        for (int j = 0; j < 12; j++) cr_assert_eq(b[i * 12 + j], a[i * c + kept[j]], "%s", name);
                } else { /* gate / up: their rows */
                    cr_assert(rp == 12 && cp == c, "%s: shape [%lld, %lld]", name, (long long)rp, (long long)cp);
                    for (int j = 0; j < 12; j++)
                        cr_assert(memcmp(b + j * c, a + kept[j] * c, (size_t)c * sizeof(float)) == 0, "%s", name);
                }
                free(a);
                free(b);
            }
        }
    expect_routers_unchanged(in, p);
    lq_checkpoint_close(in);
    lq_checkpoint_close(p);
    expect_runs(out);
}

Test(moe, prune_ffn_qwen2_moe_shared_expert) {
    char dir[1024], out[512], args[2048];
    snprintf(out, sizeof out, "%s/ffn-qwen", g_root);
    snprintf(args, sizeof args, "--model '%s' --method ffn --keep 0.5 --out '%s'",
             fixture("qwen2_moe", dir, sizeof dir), out);
    run_tool("quant-prune", args);
    lq_checkpoint *p = open_ckpt(out);
    const lq_config *c = lq_checkpoint_config(p);
    cr_expect_eq(c->expert_hidden_dim, 12);
    cr_expect_eq(c->shared_hidden_dim, 24);
    cr_expect_eq(c->hidden_dim, 48, "the dense intermediate_size is not the experts'");
    const lq_tensor *t = lq_checkpoint_find(p, "model.layers.1.mlp.shared_expert.down_proj.weight");
    cr_assert(t && t->shape[0] == 32 && t->shape[1] == 24);
    t = lq_checkpoint_find(p, "model.layers.1.mlp.experts.3.up_proj.weight");
    cr_assert(t && t->shape[0] == 12 && t->shape[1] == 32);
    lq_checkpoint_close(p);
    expect_runs(out);
}

/* A recipe: each expert's FFN pruned, then W8A16 with llm-compressor's MoE ignore list. */
Test(moe, recipe_prune_then_quantize) {
    char dir[1024], out[512], args[4096], yaml[512];
    snprintf(yaml, sizeof yaml, "%s/moe.yaml", g_root);
    FILE *f = fopen(yaml, "w");
    cr_assert_not_null(f);
    fputs("prune_stage:\n  prune_modifiers:\n    StructuredPruningModifier:\n      structure: ffn\n"
          "      sparsity: 0.5\nquant_stage:\n  quant_modifiers:\n    QuantizationModifier:\n"
          "      scheme: W8A16\n      targets: Linear\n"
          "      ignore: [\"lm_head\", \"re:.*block_sparse_moe.gate$\"]\n", f);
    cr_assert_eq(fclose(f), 0);
    snprintf(out, sizeof out, "%s/recipe", g_root);
    snprintf(args, sizeof args, "run '%s' --model '%s' --out '%s' --threads 1", yaml,
             fixture("mixtral", dir, sizeof dir), out);
    run_tool("quant-recipe", args);
    lq_checkpoint *in = open_ckpt(dir), *p = open_ckpt(out);
    cr_expect_eq(lq_checkpoint_config(p)->expert_hidden_dim, 12);
    cr_expect_not_null(lq_checkpoint_find(p, "model.layers.1.block_sparse_moe.experts.2.w2.weight_scale"));
    expect_routers_unchanged(in, p);
    lq_checkpoint_close(in);
    lq_checkpoint_close(p);
    expect_runs(out);
}

/* Qwen2-MoE with a dense layer (mlp_only_layers [0]): the dense MLP shrinks like any FFN and the
 * sparse layer's experts like Mixtral's, and the config stays plain (no per-layer lists, which
 * transformers would not read): intermediate_size 48 -> 24, moe 24 -> 12, shared 16 -> 8. */
Test(moe, prune_ffn_dense_and_sparse_layers) {
    char dir[1024], out[512], args[2048];
    snprintf(out, sizeof out, "%s/ffn-mixed", g_root);
    snprintf(args, sizeof args, "--model '%s' --method ffn --keep 0.5 --out '%s'",
             fixture("qwen2_moe_mixed", dir, sizeof dir), out);
    run_tool("quant-prune", args);
    lq_checkpoint *p = open_ckpt(out);
    const lq_config *c = lq_checkpoint_config(p);
    cr_expect_eq(c->hidden_dim, 24);
    cr_expect_eq(c->expert_hidden_dim, 12);
    cr_expect_eq(c->shared_hidden_dim, 8);
    cr_expect(!lq_config_has_layer_sizes(c), "per-layer sizes written");
    const lq_tensor *t = lq_checkpoint_find(p, "model.layers.0.mlp.down_proj.weight");
    cr_assert(t && t->shape[0] == 32 && t->shape[1] == 24);
    t = lq_checkpoint_find(p, "model.layers.1.mlp.experts.0.gate_proj.weight");
    cr_assert(t && t->shape[0] == 12 && t->shape[1] == 32);
    lq_checkpoint_close(p);
    expect_runs(out);
}

/* quant-eval's perplexity on the MoE fixtures against transformers: a character tokenizer
 * (tokenizer.json written here: ids 3.. for PPL_CHARS, BOS 1) and three lines scored per line
 * (BOS, then every token after the first). Reference: transformers 5.17's total NLL over the same
 * 128 tokens (scripts/moe_hf_check.py --ppl, which mirrors this text and vocabulary). Both sides
 * compute in f32 from the same weights; the logits agree to ~1e-6 of their scale (test_arch), so
 * the sum of 128 log-probabilities agrees to ~1e-5; 1e-7 relative (~7e-5 absolute) is 10x that. */
#define PPL_CHARS "abcdefghijklmnopqrstuvwxyz .,ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!?'-"

static void write_char_tokenizer(const char *path) {
    json_t *vocab = json_object(), *added = json_array();
    const char *special[3] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3; i++) {
        json_object_set_new(vocab, special[i], json_integer(i));
        json_array_append_new(added, json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", i, "content", special[i],
                                               "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0, "special", 1));
    }
    for (size_t i = 0; i < strlen(PPL_CHARS); i++) {
        char c[2] = {PPL_CHARS[i], 0};
        json_object_set_new(vocab, c, json_integer((json_int_t)i + 3));
    }
    json_t *bos = json_pack("{s:{s:s, s:i}}", "SpecialToken", "id", "<s>", "type_id", 0);
    json_t *seq = json_pack("{s:{s:s, s:i}}", "Sequence", "id", "A", "type_id", 0);
    json_t *post = json_pack("{s:s, s:[O, O], s:[O, O], s:{s:{s:s, s:[i], s:[s]}}}", "type", "TemplateProcessing",
                             "single", bos, seq, "pair", bos, seq, "special_tokens", "<s>", "id", "<s>", "ids", 1,
                             "tokens", "<s>");
    json_t *model = json_pack("{s:s, s:s, s:b, s:b, s:o, s:[]}", "type", "BPE", "unk_token", "<unk>", "fuse_unk", 0,
                              "byte_fallback", 0, "vocab", vocab, "merges");
    json_t *tok = json_pack("{s:s, s:o, s:n, s:n, s:o, s:n, s:o}", "version", "1.0", "added_tokens", added,
                            "normalizer", "pre_tokenizer", "post_processor", post, "decoder", "model", model);
    cr_assert_eq(json_dump_file(tok, path, 0), 0);
    json_decref(bos);
    json_decref(seq);
    json_decref(tok);
}

static void check_ppl(const char *name, double want_nll) {
    char dir[1024], tok[512], text[512], args[4096];
    snprintf(tok, sizeof tok, "%s/tokenizer.json", g_root);
    snprintf(text, sizeof text, "%s/lines.txt", g_root);
    write_char_tokenizer(tok);
    FILE *f = fopen(text, "w");
    cr_assert_not_null(f);
    fputs("once upon a time there was a little girl.\nshe liked to play with her red ball in the park!\n"
          "the sun was warm, and the sky was blue.\n", f);
    cr_assert_eq(fclose(f), 0);
    snprintf(args, sizeof args, "--model '%s' --tokenizer '%s' --file '%s' --per-line --threads 1 --json",
             fixture(name, dir, sizeof dir), tok, text);
    run_tool("quant-eval", args);
    char out[600];
    snprintf(out, sizeof out, "%s/stdout.txt", g_root);
    json_error_t jerr;
    json_t *j = json_load_file(out, 0, &jerr);
    cr_assert_not_null(j, "quant-eval --json: %s", jerr.text);
    cr_assert_eq(json_integer_value(json_object_get(j, "tokens_scored")), 128);
    double nll = json_number_value(json_object_get(j, "nll_sum"));
    cr_expect(fabs(nll - want_nll) <= 1e-7 * want_nll, "%s: total NLL %.9f, transformers %.9f", name, nll, want_nll);
    fprintf(stderr, "test_moe: %s quant-eval total NLL %.9f, transformers %.9f (diff %.2g)\n", name, nll, want_nll,
            nll - want_nll);
    json_decref(j);
}

Test(moe, eval_perplexity_mixtral) { check_ppl("mixtral", 691.142674400); }
Test(moe, eval_perplexity_qwen2_moe) { check_ppl("qwen2_moe", 660.897482792); }
Test(moe, eval_perplexity_qwen2_moe_mixed) { check_ppl("qwen2_moe_mixed", 647.456056623); }
