/* test_kld.c - KL divergence against a baseline and the comparison table.
 *
 * References: the KL formula on hand-worked distributions, llama.cpp's percentile definition on
 * a hand-worked list, the llama2.c reference perplexity of stories260K
 * (shared/models/SOURCES.md: 1804 tokens, PPL 3.548202), and the identities KL(P || P) = 0,
 * KL >= 0 (Gibbs' inequality).
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lq_eval.h"
#include "lq_test_util.h"

static char g_bin[1024], g_tok[1024], g_text[1024], g_eval[1024], g_convert[1024];
static char g_tmp[64], g_f32[128], g_bf16[128];

static int sh(const char *cmd) {
    int rc = system(cmd);
    return (rc != -1 && WIFEXITED(rc)) ? WEXITSTATUS(rc) : -1;
}

static void setup(void) {
    lq_test_shared("models/stories260K/stories260K.bin", g_bin, sizeof g_bin);
    lq_test_shared("models/stories260K/tok512.bin", g_tok, sizeof g_tok);
    lq_test_shared("data/tinystories_sample.txt", g_text, sizeof g_text);
    lq_test_tool("quant-eval", g_eval, sizeof g_eval);
    lq_test_tool("quant-convert", g_convert, sizeof g_convert);
    strcpy(g_tmp, "/tmp/lq_test_kld_XXXXXX");
    cr_assert_not_null(mkdtemp(g_tmp));
    snprintf(g_f32, sizeof g_f32, "%s/f32", g_tmp);
    snprintf(g_bf16, sizeof g_bf16, "%s/bf16", g_tmp);
}

static void teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    cr_expect_eq(sh(cmd), 0);
}

/* stories260K as an HF directory in dtype `dt` (quant-convert), at `out`. */
static void convert(const char *dt, const char *out) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' --llama2c '%s' --tokenizer '%s' --dtype %s --out '%s' "
             ">/dev/null", g_convert, g_bin, g_tok, dt, out);
    cr_assert_eq(sh(cmd), 0, "%s", cmd);
}

/* Logits whose softmax is exactly p (ln p; a constant shift must not matter). */
static void log_probs(const double *p, int n, double shift, float *out) {
    for (int i = 0; i < n; i++) out[i] = (float)(log(p[i]) + shift);
}

TestSuite(kld, .init = setup, .fini = teardown, .timeout = 120);

/* ---- the math ------------------------------------------------------------------------------------ */

Test(kld, formula_on_hand_worked_distributions) {
    /* P = (1/2, 1/2), Q = (1/4, 3/4): KL = 1/2 ln(2) + 1/2 ln(2/3) = 1/2 ln(4/3) */
    double p[2] = {0.5, 0.5}, q[2] = {0.25, 0.75};
    float lp[2], lq[2];
    log_probs(p, 2, 0.0, lp);
    log_probs(q, 2, 7.0, lq); /* softmax is shift-invariant */
    double want = 0.5 * log(4.0 / 3.0); /* 0.143841036... */
    double got = lq_eval_kld(lp, lq, 2);
    cr_expect(fabs(got - want) <= 1e-6, "KL %.9f, want %.9f", got, want);
    /* and the other way round: KL(Q || P) = 1/4 ln(1/2) + 3/4 ln(3/2), a different number */
    double back = lq_eval_kld(lq, lp, 2), want_back = 0.25 * log(0.5) + 0.75 * log(1.5);
    cr_expect(fabs(back - want_back) <= 1e-6, "KL %.9f, want %.9f", back, want_back);

    /* P = (0.7, 0.2, 0.1), Q = (0.1, 0.2, 0.7): KL = 0.7 ln 7 + 0.1 ln(1/7) = 0.6 ln 7 */
    double p3[3] = {0.7, 0.2, 0.1}, q3[3] = {0.1, 0.2, 0.7};
    float lp3[3], lq3[3];
    log_probs(p3, 3, -3.0, lp3);
    log_probs(q3, 3, 0.0, lq3);
    lq_kld_token t;
    lq_eval_kld_token(lp3, lq3, 3, 1, &t);
    cr_expect(fabs(t.kld - 0.6 * log(7.0)) <= 1e-6, "KL %.9f", t.kld);
    cr_expect(fabs(t.nll_base - (-log(0.2))) <= 1e-6, "nll_base %.9f", t.nll_base);
    cr_expect(fabs(t.nll - (-log(0.2))) <= 1e-6, "nll %.9f", t.nll);
    cr_expect(!t.same_top, "argmax 0 vs 2");
}

Test(kld, zero_probability_terms_contribute_nothing) {
    /* P = (1, 0) with the second logit -inf: KL(P || Q) = ln(1 / q_0) whatever q_1 is */
    float lp[2] = {0.0f, -INFINITY};
    double q[2] = {0.8, 0.2};
    float lq[2];
    log_probs(q, 2, 0.0, lq);
    double got = lq_eval_kld(lp, lq, 2);
    cr_expect(isfinite(got) && fabs(got - log(1.0 / 0.8)) <= 1e-6, "KL %.9f", got);
}

Test(kld, self_is_zero_and_random_pairs_are_nonnegative) {
    enum { V = 257, N = 200 };
    static float a[V], b[V];
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (int k = 0; k < N; k++) {
        /* logits spread over +-8 (peaked and flat distributions both occur) */
        for (int i = 0; i < V; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            a[i] = (float)((double)(x >> 11) / 9007199254740992.0 * 16.0 - 8.0) * (k % 3 + 1);
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            b[i] = a[i] + (float)((double)(x >> 11) / 9007199254740992.0 - 0.5) * (k % 5);
        }
        lq_kld_token t;
        lq_eval_kld_token(a, a, V, k % V, &t);
        cr_assert_eq(t.kld, 0.0, "KL(P||P) = %g at pair %d", t.kld, k);
        cr_assert(t.same_top);
        cr_assert_eq(t.nll, t.nll_base);
        double kl = lq_eval_kld(a, b, V);
        cr_assert(kl >= 0.0 && isfinite(kl), "KL %g at pair %d", kl, k);
        if (k % 5) cr_assert(kl > 0.0, "distinct logits gave KL 0 at pair %d", k);
    }
}

Test(kld, percentile_interpolates_like_llama_cpp) {
    /* llama.cpp: p = fraction * (n - 1), linear between neighbours */
    double v[5] = {1, 2, 3, 4, 5};
    cr_expect(fabs(lq_eval_percentile(v, 5, 0.9) - 4.6) < 1e-12);
    cr_expect(fabs(lq_eval_percentile(v, 5, 0.5) - 3.0) < 1e-12);
    cr_expect(fabs(lq_eval_percentile(v, 5, 0.01) - 1.04) < 1e-12);
    cr_expect_eq(lq_eval_percentile(v, 5, 0.0), 1.0);
    cr_expect_eq(lq_eval_percentile(v, 5, 1.0), 5.0);
    cr_expect_eq(lq_eval_percentile(v, 0, 0.5), 0.0);
}

/* ---- two models over the same text --------------------------------------------------------------- */

static char *read_text(size_t *len) {
    char *text = NULL;
    cr_assert_eq(lq_text_read_file(g_text, &text, len), LQ_OK, "%s", lq_last_error());
    return text;
}

static const lq_ppl_opts k_per_story = {.per_line = true, .separator = "<|endoftext|>"};

Test(kld, model_against_itself_is_exactly_zero) {
    lq_model *m = NULL;
    lq_tokenizer *tok = NULL;
    cr_assert_eq(lq_model_load(g_bin, &m), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_eval_load_tokenizer(m, g_bin, g_tok, &tok), LQ_OK, "%s", lq_last_error());
    size_t len = 0;
    char *text = read_text(&len);
    lq_pool *pool = lq_pool_create(2);
    lq_kld_result r;
    cr_assert_eq(lq_eval_kl_divergence(m, tok, m, tok, pool, text, len, &k_per_story, &r), LQ_OK,
                 "%s", lq_last_error());
    /* SOURCES.md reference for this protocol: 1804 tokens, PPL 3.548202 */
    cr_expect_eq(r.n_scored, 1804);
    cr_expect(fabs(r.base.ppl - 3.548202) <= 1e-5 * 3.548202, "PPL(base) %.6f", r.base.ppl);
    cr_expect_eq(r.model.ppl, r.base.ppl);
    cr_expect_eq(r.kld_mean, 0.0, "mean KLD %g", r.kld_mean);
    cr_expect_eq(r.kld_max, 0.0, "max KLD %g", r.kld_max);
    cr_expect_eq(r.same_top, 1.0, "same top %.6f", r.same_top);
    cr_expect_eq(r.ppl_diff, 0.0);
    cr_expect_eq(r.dp_rms, 0.0);
    lq_pool_free(pool);
    free(text);
    lq_tokenizer_free(tok);
    lq_model_free(m);
}

Test(kld, bf16_conversion_is_close_to_f32) {
    convert("f32", g_f32);
    convert("bf16", g_bf16);
    lq_model *a = NULL, *b = NULL;
    lq_tokenizer *ta = NULL, *tb = NULL;
    cr_assert_eq(lq_model_load(g_f32, &a), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_model_load(g_bf16, &b), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_eval_load_tokenizer(a, g_f32, NULL, &ta), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_eval_load_tokenizer(b, g_bf16, NULL, &tb), LQ_OK, "%s", lq_last_error());
    size_t len = 0;
    char *text = read_text(&len);
    lq_kld_result r;
    cr_assert_eq(lq_eval_kl_divergence(a, ta, b, tb, NULL, text, len, &k_per_story, &r), LQ_OK,
                 "%s", lq_last_error());
    cr_expect_eq(r.n_scored, 1804);
    cr_expect(fabs(r.base.ppl - 3.548202) <= 1e-5 * 3.548202, "PPL(base) %.6f", r.base.ppl);
    /* bf16 keeps 8 significant bits: each weight moves by at most 2^-9 of itself, so each logit
     * moves by a small delta (~1e-2 here) and, for small deltas, KL ~ Var_P(delta) / 2, of order
     * 1e-4 or less. Positive (the weights did change), and 1e-3 leaves a 3x margin on delta.
     * The argmax flips only where the top two logits are closer than delta: on this text the
     * model is mostly confident, and 95% bounds the share of near-ties generously. */
    cr_expect(r.kld_mean > 0.0 && r.kld_mean < 1e-3, "mean KLD %g", r.kld_mean);
    cr_expect(r.kld_min >= 0.0);
    cr_expect(r.same_top > 0.95, "same top %.4f", r.same_top);
    cr_expect(fabs(r.ppl_diff_pct) < 1.0, "dPPL %.3f%%", r.ppl_diff_pct);
    free(text);
    lq_tokenizer_free(ta);
    lq_tokenizer_free(tb);
    lq_model_free(a);
    lq_model_free(b);
}

/* A copy of `src` whose tokenizer.json swaps the ids of two pieces: same pieces, same size,
 * another tokenizer (another hash; the model would read the wrong embedding rows). */
static void make_other_tokenizer_dir(const char *src, const char *dst) {
    char cmd[4096], path[512];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s/config.json' '%s/' && ln -s "
             "'%s/model.safetensors' '%s/model.safetensors'", dst, src, dst, src, dst);
    cr_assert_eq(sh(cmd), 0);
    snprintf(path, sizeof path, "%s/tokenizer.json", src);
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    cr_assert_not_null(j, "%s: %s", path, err.text);
    json_t *vocab = json_object_get(json_object_get(j, "model"), "vocab");
    json_t *a = json_object_get(vocab, "he"), *b = json_object_get(vocab, "\xe2\x96\x81t");
    cr_assert(json_is_integer(a) && json_is_integer(b), "no pieces 'he' / '\u2581t' in %s", path);
    json_int_t ia = json_integer_value(a), ib = json_integer_value(b);
    json_integer_set(a, ib);
    json_integer_set(b, ia);
    snprintf(path, sizeof path, "%s/tokenizer.json", dst);
    cr_assert_eq(json_dump_file(j, path, 0), 0);
    json_decref(j);
}

Test(kld, mismatched_tokenizers_are_refused) {
    convert("f32", g_f32);
    char other[192];
    snprintf(other, sizeof other, "%s/other_tok", g_tmp);
    make_other_tokenizer_dir(g_f32, other);

    /* the library */
    lq_model *m = NULL;
    lq_tokenizer *ta = NULL, *tb = NULL;
    cr_assert_eq(lq_model_load(g_f32, &m), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_eval_load_tokenizer(m, g_f32, NULL, &ta), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_eval_load_tokenizer(m, other, NULL, &tb), LQ_OK, "%s", lq_last_error());
    cr_assert_neq(lq_tokenizer_hash(ta), lq_tokenizer_hash(tb));
    size_t len = 0;
    char *text = read_text(&len);
    lq_kld_result r;
    cr_expect_eq(lq_eval_kl_divergence(m, ta, m, tb, NULL, text, len, &k_per_story, &r),
                 LQ_ERR_MISMATCH);
    cr_expect(strstr(lq_last_error(), "tokenizer") != NULL, "%s", lq_last_error());
    free(text);
    lq_tokenizer_free(ta);
    lq_tokenizer_free(tb);
    lq_model_free(m);

    /* the tool: one error line, exit 3 (mismatch), nothing on stdout */
    char cmd[4096], out[128], errp[128];
    snprintf(out, sizeof out, "%s/stdout", g_tmp);
    snprintf(errp, sizeof errp, "%s/stderr", g_tmp);
    snprintf(cmd, sizeof cmd, "'%s' --model '%s' --kld '%s' --file '%s' --per-line >'%s' 2>'%s'",
             g_eval, other, g_f32, g_text, out, errp);
    cr_expect_eq(sh(cmd), 3);
    char *so = lq_test_read_file(out, NULL), *se = lq_test_read_file(errp, NULL);
    cr_assert(so && se);
    cr_expect_eq(so[0], 0, "stdout: %s", so);
    cr_expect(strncmp(se, "quant-eval: error: ", 19) == 0 && strstr(se, "tokenizer") &&
                  strchr(se, '\n') == se + strlen(se) - 1,
              "stderr: %s", se);
    free(so);
    free(se);
}

Test(kld, compare_json_has_one_full_row_per_dir) {
    convert("f32", g_f32);
    convert("bf16", g_bf16);
    char cmd[4096], out[128];
    snprintf(out, sizeof out, "%s/compare.json", g_tmp);
    snprintf(cmd, sizeof cmd, "'%s' --compare '%s' '%s' --file '%s' --per-line --separator "
             "'<|endoftext|>' --bench --n-prompt 16 --n-gen 4 --reps 1 --threads 2 --json >'%s'",
             g_eval, g_f32, g_bf16, g_text, out);
    cr_assert_eq(sh(cmd), 0, "%s", cmd);
    json_error_t err;
    json_t *j = json_load_file(out, 0, &err);
    cr_assert_not_null(j, "bad JSON: %s", err.text);
    cr_expect(fabs(json_real_value(json_object_get(j, "baseline_ppl")) - 3.548202) < 4e-5);
    json_t *rows = json_object_get(j, "rows");
    cr_assert(json_is_array(rows));
    cr_assert_eq(json_array_size(rows), 2);
    static const char *const fields[] = {
        "name", "path", "baseline", "format", "disk_bytes", "params", "bpw_linear", "bpw_overall",
        "ppl", "ppl_stderr", "delta_ppl", "delta_ppl_pct", "kld_mean", "kld_stderr", "same_top",
        "tokens_scored", "prefill_tok_s", "decode_tok_s", "weight_bytes_per_token",
        "decode_bandwidth_ratio"};
    for (size_t i = 0; i < 2; i++) {
        json_t *r = json_array_get(rows, i);
        for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++)
            cr_expect_not_null(json_object_get(r, fields[f]), "row %zu lacks %s", i, fields[f]);
        cr_expect(json_real_value(json_object_get(r, "decode_tok_s")) > 0);
        cr_expect_eq(json_integer_value(json_object_get(r, "tokens_scored")), 1804);
        /* stories260K: 260032 parameters (llama2.c's model card: 260K) */
        cr_expect_eq(json_integer_value(json_object_get(r, "params")), 260032);
    }
    json_t *r0 = json_array_get(rows, 0), *r1 = json_array_get(rows, 1);
    cr_expect(json_is_true(json_object_get(r0, "baseline")));
    cr_expect_str_eq(json_string_value(json_object_get(r0, "format")), "f32");
    cr_expect_str_eq(json_string_value(json_object_get(r1, "format")), "bf16");
    /* storage cost: f32 and bf16 are 32 and 16 bits per weight, exactly */
    cr_expect_eq(json_real_value(json_object_get(r0, "bpw_linear")), 32.0);
    cr_expect_eq(json_real_value(json_object_get(r1, "bpw_linear")), 16.0);
    cr_expect_eq(json_real_value(json_object_get(r1, "bpw_overall")), 16.0);
    cr_expect_eq(json_real_value(json_object_get(r0, "kld_mean")), 0.0);
    cr_expect_eq(json_real_value(json_object_get(r0, "same_top")), 1.0);
    cr_expect(json_real_value(json_object_get(r1, "kld_mean")) > 0.0);
    json_decref(j);
}

Test(kld, bad_arguments_exit_2) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' --compare --file '%s' 2>/dev/null", g_eval, g_text);
    cr_expect_eq(sh(cmd), 2); /* no checkpoint */
    snprintf(cmd, sizeof cmd, "'%s' --model '%s' --tokenizer '%s' --kld '%s' 2>/dev/null",
             g_eval, g_bin, g_tok, g_bin);
    cr_expect_eq(sh(cmd), 2); /* no --file */
    snprintf(cmd, sizeof cmd, "'%s' --compare '%s' --file '%s' --json --markdown 2>/dev/null",
             g_eval, g_bin, g_text);
    cr_expect_eq(sh(cmd), 2);
}
