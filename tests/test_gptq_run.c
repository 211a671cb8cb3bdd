/* test_gptq_run.c - the calibration chunker and the sequential GPTQ driver on stories260K.
 *
 * References: the chunker's samples must be windows of the ids of encoding the whole text in one
 * call (lq_tokenizer_encode, itself checked against the tokenizers library in test_tokenizer_*);
 * GPTQ must beat round-to-nearest at the same settings on perplexity, both computed here by
 * quant-eval's library from the written files, calibrating on WikiText-2 and evaluating on the
 * TinyStories sample (never the same text).
 */
#include <criterion/criterion.h>
#include <jansson.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "libquant/lq_gptq.h"
#include "libquant/lq_model.h"
#include "lq_eval.h"
#include "lq_test_ppl.h"
#include "lq_test_util.h"

static char g_root[256], g_fp32[512], g_calib[512];

/* stories260K as an HF directory, and the first 48 KiB of WikiText-2 as calibration text. */
static void setup(void) {
    char tmpl[] = "/tmp/lq_test_gptq_XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    snprintf(g_root, sizeof g_root, "%s", tmpl);
    char cmd[4096];
    cr_assert_eq(lq_test_calib_fixture(g_root, 49152, g_fp32, g_calib, cmd, sizeof cmd), 0, "calibration fixture: %s", cmd);
}

static void teardown(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(gptq_run, .init = setup, .fini = teardown);

static lq_tokenizer *tokenizer(void) {
    lq_tokenizer *t;
    cr_assert_eq(lq_tokenizer_load_for_model(g_fp32, NULL, 512, &t), LQ_OK, "%s", lq_last_error());
    return t;
}

Test(gptq_run, samples_are_seeded_windows_of_the_whole_text) {
    lq_tokenizer *t = tokenizer();
    size_t len = 0;
    char *text = lq_test_read_file(g_calib, &len);
    int64_t n = 0;
    lq_tokenizer_encode(t, text, len, false, false, NULL, 0, &n);
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    cr_assert_eq(lq_tokenizer_encode(t, text, len, false, false, ids, n, &n), LQ_OK);
    const char *paths[] = {g_calib};
    lq_calib_set a, b, c;
    cr_assert_eq(lq_calib_samples(t, paths, 1, 20, 100, 7, &a), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_calib_samples(t, paths, 1, 20, 100, 7, &b), LQ_OK);
    cr_assert_eq(lq_calib_samples(t, paths, 1, 20, 100, 8, &c), LQ_OK);
    cr_expect_eq(a.n_tokens, n);
    cr_expect_eq(a.n_windows, n / 100);
    cr_expect_eq(a.n_samples, 20);
    cr_expect_eq(memcmp(a.ids, b.ids, sizeof(int32_t) * 2000), 0, "same seed, same samples");
    cr_expect_neq(memcmp(a.ids, c.ids, sizeof(int32_t) * 2000), 0, "another seed, other samples");
    int64_t prev = -1;
    for (int k = 0; k < 20; k++) { /* each sample is a whole window, in position order */
        int64_t w = -1;
        for (int64_t s = prev + 1; s < n / 100 && w < 0; s++)
            if (memcmp(ids + s * 100, a.ids + k * 100, sizeof(int32_t) * 100) == 0) w = s;
        cr_expect_geq(w, 0, "sample %d is not a window after window %lld", k, (long long)prev);
        prev = w;
    }
    lq_calib_set_free(&a);
    lq_calib_set_free(&b);
    lq_calib_set_free(&c);
    free(ids);
    free(text);
    lq_tokenizer_free(t);
}

Test(gptq_run, text_shorter_than_one_sample_refused) {
    lq_tokenizer *t = tokenizer();
    char path[600];
    snprintf(path, sizeof path, "%s/short.txt", g_root);
    FILE *f = fopen(path, "w");
    fputs("Once upon a time there was a cat.", f);
    fclose(f);
    const char *paths[] = {path};
    lq_calib_set s;
    cr_expect_eq(lq_calib_samples(t, paths, 1, 4, 512, 0, &s), LQ_ERR_INVALID_ARG);
    cr_expect(strstr(lq_last_error(), "shorter than one sample of 512 tokens") != NULL, "%s", lq_last_error());
    cr_expect(strstr(lq_last_error(), "short.txt") != NULL, "%s", lq_last_error());
    lq_tokenizer_free(t);
}

static double ppl_of(const char *dir) { return lq_test_story_ppl(dir, g_fp32); }

static void out_dir(const char *name, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%s", g_root, name);
    cr_assert_eq(mkdir(buf, 0755), 0);
}

static lq_gptq_opts w4_g32(lq_pool *pool) {
    static const char *calib[1];
    calib[0] = g_calib;
    lq_gptq_opts o = {.calib = {.files = calib, .n_files = 1, .n_samples = 16, .sample_len = 128, .seed = 1}};
    o.ptq = (lq_ptq_opts){.scheme = LQ_WFMT_W4A16, .group_size = 32, .group_fallback = LQ_PTQ_FALLBACK_CHANNEL,
                          .pool = pool};
    return o;
}

/* GPTQ W4A16 g32 (down_proj, 172 columns, per channel) beats RTN at the same settings, and its
 * bytes do not depend on the thread count. */
Test(gptq_run, beats_rtn_on_stories260k, .timeout = 600) {
    char rtn[600], g1[600], g2[600];
    out_dir("rtn", rtn, sizeof rtn);
    out_dir("g1", g1, sizeof g1);
    out_dir("g2", g2, sizeof g2);
    lq_gptq_opts o = w4_g32(NULL);
    cr_assert_eq(lq_ptq_quantize(g_fp32, rtn, &o.ptq, NULL), LQ_OK, "%s", lq_last_error());
    lq_gptq_summary s;
    cr_assert_eq(lq_gptq_quantize(g_fp32, g1, &o, &s), LQ_OK, "%s", lq_last_error());
    cr_expect_eq(s.n_linears, 35);
    cr_expect_eq(s.n_samples, 16);
    double er = 0.0, eg = 0.0;
    for (int64_t i = 0; i < s.n_linears; i++) {
        er += s.linears[i].rel_err_rtn;
        eg += s.linears[i].rel_err_gptq;
    }
    cr_expect_lt(eg, 0.9 * er, "mean output error: GPTQ %.5f vs RTN %.5f", eg / 35, er / 35);
    lq_gptq_summary_free(&s);
    lq_pool *pool = lq_pool_create(2);
    o = w4_g32(pool);
    cr_assert_eq(lq_gptq_quantize(g_fp32, g2, &o, NULL), LQ_OK, "%s", lq_last_error());
    lq_pool_free(pool);
    char p1[700], p2[700];
    snprintf(p1, sizeof p1, "%s/model.safetensors", g1);
    snprintf(p2, sizeof p2, "%s/model.safetensors", g2);
    size_t n1 = 0, n2 = 0;
    char *b1 = lq_test_read_file(p1, &n1), *b2 = lq_test_read_file(p2, &n2);
    cr_expect(n1 == n2 && memcmp(b1, b2, n1) == 0, "1 and 2 threads wrote different bytes");
    free(b1);
    free(b2);
    double pf = ppl_of(g_fp32), pr = ppl_of(rtn), pg = ppl_of(g1);
    cr_expect_lt(pg, pr, "PPL GPTQ %.4f vs RTN %.4f (f32 %.4f)", pg, pr, pf);
    cr_expect_gt(pg, pf, "PPL GPTQ %.4f below f32 %.4f", pg, pf);
}

Test(gptq_run, refuses_rtn_only_schemes_and_llama2c) {
    char out[600];
    out_dir("x", out, sizeof out);
    lq_gptq_opts o = w4_g32(NULL);
    o.ptq.scheme = LQ_WFMT_FP8_E4M3;
    cr_expect_eq(lq_gptq_quantize(g_fp32, out, &o, NULL), LQ_ERR_UNSUPPORTED);
    o.ptq.scheme = LQ_WFMT_W4A16;
    char bin[1024];
    cr_expect_eq(lq_gptq_quantize(lq_test_shared("models/stories260K/stories260K.bin", bin, sizeof bin), out, &o, NULL),
                 LQ_ERR_UNSUPPORTED);
    cr_expect(strstr(lq_last_error(), "quant-convert") != NULL, "%s", lq_last_error());
}

/* How many config groups of dir's config.json with weights strategy `strategy` record
 * actorder "weight" (and none records any other value). */
static int count_actorder(const char *dir, const char *strategy) {
    char path[700];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_t *root = json_load_file(path, 0, NULL);
    cr_assert_not_null(root, "%s", path);
    json_t *groups = json_object_get(json_object_get(root, "quantization_config"), "config_groups");
    cr_assert(json_is_object(groups), "%s: no config_groups", path);
    const char *name;
    json_t *g;
    int n = 0;
    json_object_foreach(groups, name, g) {
        json_t *w = json_object_get(g, "weights"), *a = json_object_get(w, "actorder");
        cr_assert(json_is_null(a) || (json_is_string(a) && strcmp(json_string_value(a), "weight") == 0),
                  "%s %s: actorder", path, name);
        const char *st = json_string_value(json_object_get(w, "strategy"));
        if (json_is_string(a) && st && strcmp(st, strategy) == 0) n++;
    }
    json_decref(root);
    return n;
}

/* The other paths through the writer: asymmetric W4A16 with activation order (zero points from
 * the source) beats asymmetric RTN; W8A16 per channel stays within 1% of f32. */
Test(gptq_run, asym_actorder_and_w8a16, .timeout = 600) {
    char rtn[600], ga[600], g8[600];
    out_dir("rtn_asym", rtn, sizeof rtn);
    out_dir("g_asym", ga, sizeof ga);
    out_dir("g8", g8, sizeof g8);
    lq_gptq_opts o = w4_g32(NULL);
    o.ptq.asym = true;
    o.actorder = LQ_GPTQ_ACTORDER_WEIGHT;
    cr_assert_eq(lq_ptq_quantize(g_fp32, rtn, &o.ptq, NULL), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_gptq_quantize(g_fp32, ga, &o, NULL), LQ_OK, "%s", lq_last_error());
    o = w4_g32(NULL);
    o.ptq.scheme = LQ_WFMT_W8A16;
    cr_assert_eq(lq_gptq_quantize(g_fp32, g8, &o, NULL), LQ_OK, "%s", lq_last_error());
    /* the column order is recorded as llm-compressor records it, on the group-strategy groups
     * only (compressed-tensors refuses it on any other): stories260K's 172-column down_proj falls
     * back to a channel group without it; RTN records none */
    cr_expect_eq(count_actorder(ga, "group"), 1);
    cr_expect_eq(count_actorder(ga, "channel"), 0);
    cr_expect_eq(count_actorder(rtn, "group"), 0);
    double pf = ppl_of(g_fp32), pr = ppl_of(rtn), pa = ppl_of(ga), p8 = ppl_of(g8);
    cr_expect_lt(pa, pr, "asym PPL GPTQ %.4f vs RTN %.4f (f32 %.4f)", pa, pr, pf);
    cr_expect_lt(fabs(p8 / pf - 1.0), 0.01, "W8A16 GPTQ PPL %.4f vs f32 %.4f", p8, pf);
}

/* quant-ptq's GPTQ options: refused where they do not apply, with one line and exit 2. */
Test(gptq_run, cli_refusals) {
    char err[1024], *args = malloc(2048); /* heap: its size is not the compiler's to bound */
    static const struct { const char *extra, *want; } cases[] = {
        {"--method gptq", "needs calibration text"},
        {"--calib-samples 8", "go with --method gptq"},
        {"--method gptq --calib C --clip-search", "--clip-search is RTN's"},
        {"--method sgd", "--method must be rtn, gptq"},
        {"--method gptq --calib C --actorder group", "--actorder must be none, weight or static"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char extra[512];
        snprintf(extra, sizeof extra, "%s", cases[i].extra);
        char *c = strstr(extra, " C");
        if (c && (c[2] == ' ' || c[2] == 0)) { /* the calibration file's path for "C" */
            char tail[256];
            snprintf(tail, sizeof tail, "%s", c + 2);
            snprintf(c, sizeof extra - (size_t)(c - extra), " '%s'%s", g_calib, tail);
        }
        snprintf(args, 2048, "--model '%s' --scheme W4A16 --out '%s/cli' %s", g_fp32, g_root, extra);
        cr_expect_eq(lq_test_run_tool("quant-ptq", args, g_root, err, sizeof err), 2, "%s", args);
        cr_expect(strstr(err, cases[i].want) != NULL, "%s: %s", args, err);
    }
    free(args);
}
