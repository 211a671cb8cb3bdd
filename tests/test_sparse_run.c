/* test_sparse_run.c - Wanda and SparseGPT layer by layer on stories260K (lq_sparse_prune,
 * quant-prune --method wanda|sparsegpt).
 *
 * References: at 50% unstructured both calibrated methods must beat magnitude pruning on
 * perplexity, all three computed here by quant-eval's library from the written files,
 * calibrating on WikiText-2 and scoring the TinyStories sample (never the same text); the
 * written zeros are counted from the files (exact sparsity, every 2:4 group); the bytes do not
 * depend on the thread count; bad input is refused with one line naming the culprit.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "libquant/lq_checkpoint.h"
#include "libquant/lq_model.h"
#include "libquant/lq_sparsegpt.h"
#include "lq_eval.h"
#include "lq_test_ppl.h"
#include "lq_test_util.h"

static char g_root[256], g_fp32[512], g_calib[512];

static void setup(void) {
    char tmpl[] = "/tmp/lq_test_sparse_XXXXXX";
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

TestSuite(sparse_run, .init = setup, .fini = teardown);

static double ppl_of(const char *dir) { return lq_test_story_ppl(dir, g_fp32); }

static void out_dir(const char *name, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%s", g_root, name);
    cr_assert_eq(mkdir(buf, 0755), 0);
}

static lq_sparse_opts opts(lq_sparse_method m, lq_pool *pool) {
    static const char *calib[1];
    calib[0] = g_calib;
    lq_sparse_opts o = {.method = m, .calib = {.files = calib, .n_files = 1, .n_samples = 16, .sample_len = 128, .seed = 1}};
    o.prune = (lq_prune_opts){.method = LQ_PRUNE_MAGNITUDE, .sparsity = 0.5f, .nm_n = 2, .nm_m = 4, .pool = pool};
    return o;
}

/* Zeros of every pruned matrix, counted in the file; N:M groups checked when m > 0. */
static void count_zeros(const char *dir, int n, int m, int64_t *zeros, int64_t *total) {
    lq_checkpoint *c;
    cr_assert_eq(lq_checkpoint_open(dir, &c), LQ_OK, "%s", lq_last_error());
    *zeros = *total = 0;
    for (int64_t i = 0; i < lq_checkpoint_count(c); i++) {
        const lq_tensor *t = lq_checkpoint_get(c, i);
        if (!strstr(t->name, "model.layers.") || t->ndim != 2) continue;
        const float *w = t->data;
        const int64_t rows = t->shape[0], cols = t->shape[1];
        for (int64_t k = 0; k < rows * cols; k++) *zeros += w[k] == 0.0f;
        *total += rows * cols;
        for (int64_t r = 0; m > 0 && r < rows; r++)
            for (int64_t g = 0; g < cols; g += m) {
                int nz = 0;
                for (int j = 0; j < m; j++) nz += w[r * cols + g + j] != 0.0f;
                cr_assert_eq(nz, n, "%s row %lld group %lld: %d non-zeros", t->name, (long long)r, (long long)g, nz);
            }
    }
    lq_checkpoint_close(c);
}

Test(sparse_run, wanda_and_sparsegpt_beat_magnitude_at_half, .timeout = 600) {
    char mag[600], wa[600], sg[600];
    out_dir("mag", mag, sizeof mag);
    out_dir("wanda", wa, sizeof wa);
    out_dir("sgpt", sg, sizeof sg);
    lq_sparse_opts o = opts(LQ_SPARSE_WANDA, NULL);
    cr_assert_eq(lq_prune_run(g_fp32, mag, &o.prune, NULL), LQ_OK, "%s", lq_last_error());
    lq_sparse_summary s;
    cr_assert_eq(lq_sparse_prune(g_fp32, wa, &o, &s), LQ_OK, "%s", lq_last_error());
    cr_expect_eq(s.n_linears, 35);
    cr_expect_eq(s.n_samples, 16);
    lq_sparse_summary_free(&s);
    o.method = LQ_SPARSE_SPARSEGPT;
    cr_assert_eq(lq_sparse_prune(g_fp32, sg, &o, &s), LQ_OK, "%s", lq_last_error());
    double em = 0.0, ea = 0.0;
    for (int64_t i = 0; i < s.n_linears; i++) {
        em += s.linears[i].rel_err_mask;
        ea += s.linears[i].rel_err_after;
    }
    cr_expect_lt(ea, 0.95 * em, "the update lowers the output error: %.5f vs mask only %.5f", ea / 35, em / 35);
    lq_sparse_summary_free(&s);
    int64_t z, n;
    count_zeros(wa, 0, 0, &z, &n);
    cr_expect_eq(z, n / 2, "wanda: %lld zeros of %lld", (long long)z, (long long)n);
    count_zeros(sg, 0, 0, &z, &n);
    cr_expect_eq(z, n / 2, "sparsegpt: %lld zeros of %lld", (long long)z, (long long)n);
    double pf = ppl_of(g_fp32), pm = ppl_of(mag), pw = ppl_of(wa), ps = ppl_of(sg);
    cr_expect_lt(pw, pm, "PPL Wanda %.4f vs magnitude %.4f (f32 %.4f)", pw, pm, pf);
    cr_expect_lt(ps, pm, "PPL SparseGPT %.4f vs magnitude %.4f (f32 %.4f)", ps, pm, pf);
    cr_expect_gt(pw, pf);
    cr_expect_gt(ps, pf);
}

/* 2:4 through the driver: every group of 4 of every pruned matrix keeps exactly 2, the config
 * says so, and SparseGPT's bytes are the same at 1 and 2 threads. */
Test(sparse_run, two_four_pattern_and_threads, .timeout = 600) {
    char a[600], b[600];
    out_dir("sg24a", a, sizeof a);
    out_dir("sg24b", b, sizeof b);
    lq_sparse_opts o = opts(LQ_SPARSE_SPARSEGPT, NULL);
    o.prune.method = LQ_PRUNE_NM;
    cr_assert_eq(lq_sparse_prune(g_fp32, a, &o, NULL), LQ_OK, "%s", lq_last_error());
    lq_pool *pool = lq_pool_create(2);
    o = opts(LQ_SPARSE_SPARSEGPT, pool);
    o.prune.method = LQ_PRUNE_NM;
    cr_assert_eq(lq_sparse_prune(g_fp32, b, &o, NULL), LQ_OK, "%s", lq_last_error());
    lq_pool_free(pool);
    int64_t z, n;
    count_zeros(a, 2, 4, &z, &n);
    cr_expect_eq(z, n / 2);
    char p1[700], p2[700];
    snprintf(p1, sizeof p1, "%s/model.safetensors", a);
    snprintf(p2, sizeof p2, "%s/model.safetensors", b);
    size_t n1 = 0, n2 = 0;
    char *b1 = lq_test_read_file(p1, &n1), *b2 = lq_test_read_file(p2, &n2);
    cr_expect(n1 == n2 && memcmp(b1, b2, n1) == 0, "1 and 2 threads wrote different bytes");
    free(b1);
    free(b2);
    snprintf(p1, sizeof p1, "%s/config.json", a);
    char *cfg = lq_test_read_file(p1, &n1);
    cr_expect(cfg && strstr(cfg, "\"sparsity_structure\": \"2:4\"") != NULL, "%s", cfg ? cfg : "(none)");
    free(cfg);
    /* Wanda 2:4 keeps the stored values of the weights it keeps, bit for bit */
    out_dir("wa24", a, sizeof a);
    o = opts(LQ_SPARSE_WANDA, NULL);
    o.prune.method = LQ_PRUNE_NM;
    cr_assert_eq(lq_sparse_prune(g_fp32, a, &o, NULL), LQ_OK, "%s", lq_last_error());
    count_zeros(a, 2, 4, &z, &n);
    lq_checkpoint *c0, *c1;
    cr_assert_eq(lq_checkpoint_open(g_fp32, &c0), LQ_OK);
    cr_assert_eq(lq_checkpoint_open(a, &c1), LQ_OK);
    const lq_tensor *t0 = lq_checkpoint_find(c0, "model.layers.2.mlp.down_proj.weight");
    const lq_tensor *t1 = lq_checkpoint_find(c1, "model.layers.2.mlp.down_proj.weight");
    cr_assert(t0 && t1);
    const float *w0 = t0->data, *w1 = t1->data;
    for (int64_t i = 0; i < lq_tensor_numel(t0); i++)
        if (w1[i] != 0.0f) cr_assert_eq(w1[i], w0[i], "weight %lld changed", (long long)i);
    lq_checkpoint_close(c0);
    lq_checkpoint_close(c1);
}

Test(sparse_run, refusals) {
    char out[600], bin[1024];
    out_dir("x", out, sizeof out);
    lq_sparse_opts o = opts(LQ_SPARSE_WANDA, NULL);
    cr_expect_eq(lq_sparse_prune(lq_test_shared("models/stories260K/stories260K.bin", bin, sizeof bin), out, &o, NULL),
                 LQ_ERR_UNSUPPORTED);
    cr_expect(strstr(lq_last_error(), "quant-convert") != NULL, "%s", lq_last_error());
    const char *tg[] = {"model.layers.9.mlp.up_proj"}; /* 5 layers */
    o.prune.targets = tg;
    o.prune.n_targets = 1;
    cr_expect_eq(lq_sparse_prune(g_fp32, out, &o, NULL), LQ_ERR_INVALID_ARG);
    cr_expect(strstr(lq_last_error(), "target 'model.layers.9.mlp.up_proj' matches no module") != NULL, "%s", lq_last_error());
    const char *ig[] = {"re:.*\\.nothing"};
    o.prune.targets = NULL;
    o.prune.n_targets = 0;
    o.prune.ignore = ig;
    o.prune.n_ignore = 1;
    cr_expect_eq(lq_sparse_prune(g_fp32, out, &o, NULL), LQ_ERR_INVALID_ARG);
    cr_expect(strstr(lq_last_error(), "ignore pattern") != NULL, "%s", lq_last_error());
    o = opts(LQ_SPARSE_SPARSEGPT, NULL);
    o.prune.method = LQ_PRUNE_NM;
    o.prune.nm_n = 3, o.prune.nm_m = 6; /* 6 divides neither 128 (the block) nor 64 */
    cr_expect_eq(lq_sparse_prune(g_fp32, out, &o, NULL), LQ_ERR_INVALID_ARG);
    cr_expect(strstr(lq_last_error(), "block size") != NULL, "%s", lq_last_error());
    o = opts(LQ_SPARSE_WANDA, NULL);
    o.prune.global = true;
    cr_expect_eq(lq_sparse_prune(g_fp32, out, &o, NULL), LQ_ERR_INVALID_ARG);
}

/* quant-prune's calibrated options: one line and exit 2 where they do not apply. */
Test(sparse_run, cli_refusals) {
    char err[1024], *args = malloc(2048);
    static const struct { const char *extra, *want; } cases[] = {
        {"--method wanda --sparsity 0.5", "needs calibration text"},
        {"--method sparsegpt --calib C", "needs --sparsity S or --pattern N:M"},
        {"--method wanda --calib C --sparsity 0.5 --dampening 0.1", "SparseGPT's"},
        {"--method sparsegpt --calib C --pattern 2:4 --sparsity 0.3", "contradicts --pattern 2:4"},
        {"--method magnitude --sparsity 0.5 --calib C", "go with --method wanda or sparsegpt"},
        {"--method wanda --calib C --sparsity 0.5 --global", "apply to --method magnitude only"},
        {"--method obs --calib C", "unknown method 'obs'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char extra[512];
        snprintf(extra, sizeof extra, "%s", cases[i].extra);
        char *c = strstr(extra, " C");
        if (c && (c[2] == ' ' || c[2] == 0)) {
            char tail[256];
            snprintf(tail, sizeof tail, "%s", c + 2);
            snprintf(c, sizeof extra - (size_t)(c - extra), " '%s'%s", g_calib, tail);
        }
        snprintf(args, 2048, "--model '%s' --out '%s/cli' %s", g_fp32, g_root, extra);
        cr_expect_eq(lq_test_run_tool("quant-prune", args, g_root, err, sizeof err), 2, "%s", args);
        cr_expect(strstr(err, cases[i].want) != NULL, "%s: %s", args, err);
    }
    free(args);
}
