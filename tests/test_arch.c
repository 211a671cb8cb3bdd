/* test_arch.c - every architecture the engine supports, against transformers.
 *
 * External reference: tests/fixtures/arch/<name>/ holds a tiny random-weight checkpoint that
 * transformers built from the architecture's real config class (scripts/arch_fixtures/
 * make_fixtures.py, run by hand with torch; never in CI) and reference.json with transformers'
 * logits rows and greedy ids for three prompts given as token ids, for the f32 model and for the
 * model whose Linear weights are replaced by their W8A16 round trip (compressed-tensors' rule).
 *
 * What is checked, per fixture:
 *   f32:   lq_model_load of the directory; prefill each prompt (the logits row at its last
 *          position), then greedy decode 16 tokens one at a time (the ids exactly, and the logits
 *          row of the last step);
 *   w8a16: lq_ptq_quantize with the default options (the same set of tensors the script
 *          quantized: every Linear but lm_head), loaded and checked the same way against the
 *          W8A16 reference; the tools (quant-info, quant-ptq, quant-prune, quant-eval,
 *          quant-run) once on each fixture.
 *
 * Tolerance: |ours - transformers| <= LOGIT_RTOL * max_j |transformers_j| on every logit of a
 * row. Both sides compute in f32 from the same weights; they differ in summation order (our AVX2
 * FMA chains and OpenBLAS vs torch's kernels) and the reference keeps 7 significant digits. Each
 * dot (<= 48 long) rounds to a few ulps (2^-24) of its absolute sum; through the norms, sharp
 * softmaxes and residuals of 2 layers that grows to ~1e-6 of the logits' scale (measured: at
 * most 4.1e-6, llama2 f32, 6.3e-5 on logits up to 19.3), and printing adds <= 5e-8. 2e-5 (~170
 * ulps) leaves a factor ~5 over that, yet is far below what a wrong op does (reference.json's
 * "ablation": llama3 rope scaling off moves logits by 2.6, Mistral's window off by 4.1, Gemma's
 * local layers made global by 0.7; a missing bias or norm by whole units). The script keeps every
 * greedy step's top-1/top-2 margin >= 2e-3, and the test asserts 2 x tolerance stays below the
 * row's smallest margin, so the greedy ids must match exactly. W8A16 uses the same bound: its
 * format row (kernels/cpu/format_table.c) has the F32 row's matvec tolerance, because the codes
 * convert exactly and are summed in the same f32 chains, and the reference already contains the
 * quantization error (transformers ran the round-tripped weights), so only f32 rounding is left.
 * The test asserts that the two rows agree, so a looser W8A16 row would show up here.
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libquant/lq_model.h"
#include "libquant/lq_ptq.h"
#include "lq_format.h"
#include "lq_ops.h"
#include "lq_test_util.h"

#define LOGIT_RTOL 2e-5
#define N_CTX 64

static char g_root[256];

static void setup(void) {
    /* transformers computes the quantized models with f32 activations (compressed-tensors
     * dequantizes the weights): compare that path; the int8-activation path's own error is
     * checked against it in test_int_act / test_ct_int_act and measured end to end (KLD) */
    lq_matmul_set_act_mode(LQ_ACT_MODE_F32);
    char tmpl[] = "/tmp/lq_test_arch_XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    snprintf(g_root, sizeof g_root, "%s", tmpl);
}

static void teardown(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(arch, .init = setup, .fini = teardown);

static const char *fixture_dir(const char *name, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/arch/%s", LQ_FIXTURES_DIR, name);
    return buf;
}

static json_t *load_reference(const char *name) {
    char dir[1024], path[1100];
    snprintf(path, sizeof path, "%s/reference.json", fixture_dir(name, dir, sizeof dir));
    json_error_t jerr;
    json_t *r = json_load_file(path, 0, &jerr);
    cr_assert_not_null(r, "%s: %s (line %d)", path, jerr.text, jerr.line);
    return r;
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* vocab_size of config.json (read here, not from lq_model, whose layout is the engine's) */
static int config_vocab(const char *dir) {
    char path[1100];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_error_t jerr;
    json_t *c = json_load_file(path, 0, &jerr);
    cr_assert_not_null(c, "%s: %s", path, jerr.text);
    int v = (int)json_integer_value(json_object_get(c, "vocab_size"));
    json_decref(c);
    cr_assert(v > 0, "%s: no vocab_size", path);
    return v;
}

typedef struct cmp_stat {
    double abs, rel; /* largest |ours - transformers| and that over the row's max |logit| */
} cmp_stat;

/* Compare one logits row within LOGIT_RTOL of its scale; check that the tolerance cannot flip a
 * greedy pick (2 x tolerance below the smallest top-1/top-2 margin the script recorded). */
static void compare_row(const char *what, const float *got, const json_t *want, int vocab, double margin,
                        cmp_stat *st) {
    cr_assert_eq((int)json_array_size(want), vocab, "%s: reference row has %zu logits, model %d", what,
                 json_array_size(want), vocab);
    double worst = 0.0, scale = 0.0;
    for (int i = 0; i < vocab; i++) {
        double w = json_number_value(json_array_get(want, (size_t)i));
        double d = fabs((double)got[i] - w);
        worst = d > worst ? d : worst;
        scale = fabs(w) > scale ? fabs(w) : scale;
    }
    cr_assert(2.0 * LOGIT_RTOL * scale < margin, "%s: tolerance %.3g could flip a greedy pick (margin %.3g)", what,
              LOGIT_RTOL * scale, margin);
    cr_expect(worst <= LOGIT_RTOL * scale, "%s: logits differ by %.3g (%.3g of the row's max |logit| %.3g; tolerance %g)",
              what, worst, worst / scale, scale, LOGIT_RTOL);
    st->abs = worst > st->abs ? worst : st->abs;
    st->rel = worst / scale > st->rel ? worst / scale : st->rel;
}

/* Run every prompt of the reference's `variant` ("f32" / "w8a16") through the model at
 * model_dir: prefill, then greedy decode. Returns the largest logit difference seen. */
static void check_model(const char *name, const char *model_dir, const char *variant) {
    json_t *ref = load_reference(name);
    lq_model *m;
    cr_assert_eq(lq_model_load(model_dir, &m), LQ_OK, "%s: %s", name, lq_last_error());
    const int vocab = config_vocab(model_dir);
    float *logits = malloc((size_t)N_CTX * (size_t)vocab * sizeof(float));
    cr_assert_not_null(logits);
    cmp_stat st = {0};
    char what[256];
    size_t pi;
    json_t *p;
    json_array_foreach(json_object_get(ref, "prompts"), pi, p) {
        const json_t *ids = json_object_get(p, "ids"), *v = json_object_get(p, variant);
        const json_t *greedy = json_object_get(v, "greedy"), *pos = json_object_get(v, "positions");
        const json_t *rows = json_object_get(v, "logits");
        const double margin = json_number_value(json_object_get(v, "min_margin"));
        int n = (int)json_array_size(ids), n_gen = (int)json_array_size(greedy);
        cr_assert(n > 0 && n_gen > 0 && n + n_gen <= N_CTX && json_array_size(pos) == 2);
        int32_t tok[N_CTX];
        for (int i = 0; i < n; i++) tok[i] = (int32_t)json_integer_value(json_array_get(ids, (size_t)i));
        const int pos_prefill = (int)json_integer_value(json_array_get(pos, 0));
        const int pos_decode = (int)json_integer_value(json_array_get(pos, 1));
        cr_assert_eq(pos_prefill, n - 1);
        cr_assert_eq(pos_decode, n + n_gen - 2);

        lq_session *s;
        cr_assert_eq(lq_session_create(m, N_CTX, NULL, &s), LQ_OK, "%s", lq_last_error());
        cr_assert_eq(lq_forward(s, tok, n, 0, logits, true), LQ_OK, "%s", lq_last_error());
        const float *last = logits + (size_t)(n - 1) * (size_t)vocab;
        snprintf(what, sizeof what, "%s %s prompt %zu prefill", name, variant, pi);
        compare_row(what, last, json_array_get(rows, 0), vocab, margin, &st);
        int next = argmax(last, vocab);
        for (int g = 0; g < n_gen; g++) {
            int want = (int)json_integer_value(json_array_get(greedy, (size_t)g));
            cr_assert_eq(next, want, "%s %s prompt %zu: greedy id %d is %d, transformers %d", name, variant, pi,
                         g, next, want);
            if (g == n_gen - 1) break;
            int32_t t = next;
            cr_assert_eq(lq_forward(s, &t, 1, n + g, logits, false), LQ_OK, "%s", lq_last_error());
            if (n + g == pos_decode) {
                snprintf(what, sizeof what, "%s %s prompt %zu decode", name, variant, pi);
                compare_row(what, logits, json_array_get(rows, 1), vocab, margin, &st);
            }
            next = argmax(logits, vocab);
        }
        lq_session_free(s);
    }
    free(logits);
    lq_model_free(m);
    json_decref(ref);
    fprintf(stderr, "test_arch: %s %s: max |logit - transformers| = %.3g (%.3g of the row's max |logit|)\n",
            name, variant, st.abs, st.rel);
}

static void check_f32(const char *name) {
    char dir[1024];
    check_model(name, fixture_dir(name, dir, sizeof dir), "f32");
}

/* The W8A16 row promises the F32 row's matvec bound (see the top comment). */
static void check_w8a16_tolerance_row(void) {
    const lq_wfmt_traits *f = lq_wfmt_get(LQ_WFMT_F32), *q = lq_wfmt_get(LQ_WFMT_W8A16);
    cr_assert(q->tol_rtol <= f->tol_rtol && q->tol_atol <= f->tol_atol,
              "W8A16 row tolerance (%g, %g) is looser than F32's (%g, %g): revisit LOGIT_RTOL", q->tol_atol,
              q->tol_rtol, f->tol_atol, f->tol_rtol);
}

/* lq_ptq_quantize with the default options into <root>/<name>-w8a16; the quantized tensors must
 * be the set the script round-tripped on transformers' side: every Linear but lm_head and, in a
 * sparse MoE, its routers (experts one by one). */
static void quantize_default(const char *name, char *out, size_t cap) {
    char dir[1024];
    snprintf(out, cap, "%s/%s-w8a16", g_root, name);
    cr_assert_eq(mkdir(out, 0755), 0);
    lq_ptq_opts o = {.scheme = LQ_WFMT_W8A16};
    lq_ptq_summary sum;
    cr_assert_eq(lq_ptq_quantize(fixture_dir(name, dir, sizeof dir), out, &o, &sum), LQ_OK, "%s: %s", name,
                 lq_last_error());
    json_t *ref = load_reference(name);
    const json_t *want = json_object_get(ref, "w8a16_params");
    cr_assert_eq(sum.n_quantized, (int64_t)json_array_size(want), "%s: quantized %lld tensors, reference %zu",
                 name, (long long)sum.n_quantized, json_array_size(want));
    for (int64_t i = 0; i < sum.n_quantized; i++) {
        char full[200];
        snprintf(full, sizeof full, "%s.weight", sum.tensors[i].name);
        bool found = false;
        for (size_t k = 0; k < json_array_size(want); k++)
            found |= strcmp(json_string_value(json_array_get(want, k)), full) == 0;
        cr_expect(found, "%s: quant-ptq quantized %s, the reference did not", name, full);
    }
    lq_ptq_summary_free(&sum);
    json_decref(ref);
}

static void check_w8a16(const char *name) {
    check_w8a16_tolerance_row();
    char out[512];
    quantize_default(name, out, sizeof out);
    check_model(name, out, "w8a16");
}

/* Every tool once on the fixture; each result is checked against the reference where it has
 * one (quant-ptq's output, quant-run's greedy ids), else for a clean exit and valid JSON. */
static json_t *tool_json(const char *tool, const char *args) {
    char err[2048];
    int code = lq_test_run_tool(tool, args, g_root, err, sizeof err);
    cr_assert_eq(code, 0, "%s %s: exit %d: %s", tool, args, code, err);
    char path[512];
    snprintf(path, sizeof path, "%s/stdout.txt", g_root);
    char *text = lq_test_read_file(path, NULL);
    cr_assert_not_null(text);
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    cr_assert_not_null(j, "%s: stdout is not JSON: %s", tool, jerr.text);
    free(text);
    return j;
}

static void check_tools(const char *name) {
    char dir[1024], args[4096], out[512], tok[1024];
    fixture_dir(name, dir, sizeof dir);
    json_t *ref = load_reference(name);

    snprintf(args, sizeof args, "'%s' --json", dir);
    json_t *j = tool_json("quant-info", args);
    cr_expect_str_eq(json_string_value(json_object_get(j, "architecture")),
                     json_string_value(json_object_get(ref, "architecture")));
    json_decref(j);

    snprintf(out, sizeof out, "%s/ptq", g_root);
    snprintf(args, sizeof args, "--model '%s' --scheme W8A16 --out '%s' --threads 2 --json", dir, out);
    json_decref(tool_json("quant-ptq", args));
    check_model(name, out, "w8a16");

    snprintf(out, sizeof out, "%s/pruned", g_root);
    snprintf(args, sizeof args, "--model '%s' --method magnitude --sparsity 0.5 --out '%s' --json", dir, out);
    json_decref(tool_json("quant-prune", args));
    snprintf(args, sizeof args, "--model '%s' --bench --n-prompt 8 --n-gen 4 --reps 1 --threads 1 --json", out);
    json_decref(tool_json("quant-eval", args));

    /* quant-run from BOS alone (prompt 0 of the reference is [1]) with stories260K's
     * tokenizer, whose ids 0..127 decode to text and whose BOS is id 1: generation stops at
     * BOS/EOS (ids 1, 2), so the ids are compared up to the first of them. */
    const json_t *p0 = json_array_get(json_object_get(ref, "prompts"), 0);
    cr_assert_eq(json_array_size(json_object_get(p0, "ids")), 1u);
    cr_assert_eq(json_integer_value(json_array_get(json_object_get(p0, "ids"), 0)), 1, "prompt 0 is not [1]");
    const json_t *greedy = json_object_get(json_object_get(p0, "f32"), "greedy");
    snprintf(args, sizeof args, "--model '%s' --tokenizer '%s' --prompt '' --max-tokens %zu --threads 1 --json",
             dir, lq_test_shared("models/stories260K/tok512.bin", tok, sizeof tok), json_array_size(greedy));
    j = tool_json("quant-run", args);
    const json_t *toks = json_object_get(j, "tokens");
    cr_assert(json_is_array(toks), "quant-run --json has no \"tokens\"");
    size_t n_want = 0;
    while (n_want < json_array_size(greedy)) {
        json_int_t t = json_integer_value(json_array_get(greedy, n_want));
        if (t == 1 || t == 2) break;
        n_want++;
    }
    cr_assert_eq(json_array_size(toks), n_want, "quant-run made %zu tokens, transformers %zu before a stop id",
                 json_array_size(toks), n_want);
    for (size_t i = 0; i < n_want; i++)
        cr_expect_eq(json_integer_value(json_object_get(json_array_get(toks, i), "id")),
                     json_integer_value(json_array_get(greedy, i)), "quant-run id %zu", i);
    json_decref(j);
    json_decref(ref);
}

/* One f32, one W8A16 and one tools test per supported architecture. An architecture joins
 * this list when the engine supports it (its fixture exists for every family). */
#define ARCH_TESTS(name)                                  \
    Test(arch, name##_f32) { check_f32(#name); }          \
    Test(arch, name##_w8a16) { check_w8a16(#name); }      \
    Test(arch, name##_tools) { check_tools(#name); }

ARCH_TESTS(llama2)
ARCH_TESTS(llama3_tf4)
ARCH_TESTS(llama3)
ARCH_TESTS(mistral)
ARCH_TESTS(qwen2)
ARCH_TESTS(qwen3)
ARCH_TESTS(gemma3)

/* Sparse MoE: experts quantized per expert, routers (and Qwen2-MoE's shared-expert gate) kept in
 * float; quantize_default checks that set against the reference's w8a16_params. */
ARCH_TESTS(mixtral)
ARCH_TESTS(qwen2_moe)
ARCH_TESTS(qwen2_moe_mixed) /* layer 0 dense (mlp_only_layers), norm_topk_prob */
