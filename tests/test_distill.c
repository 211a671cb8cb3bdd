/* test_distill.c - quant-distill and the lq_distill reader/writer.
 *
 * External references: the total NLL of stories260K on tinystories_sample.txt (per unit, BOS,
 * 1804 predicted tokens, 2284.659384; /work/shared/models/SOURCES.md) must come out of a file
 * written with k = vocab; everything else is checked against a fresh forward pass of the
 * teacher (the soft labels must be what the model says), against an uninterrupted run (resume)
 * and against hand-made corruptions.
 */
#include <criterion/criterion.h>

#include "lq_eval.h"
#include "lq_test_util.h"
#include "libquant/lq_distill.h"
#include "lq_blocks.h"

#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The tools' exit code for a bad input file (tool_exit_code(LQ_ERR_MISMATCH), tool_cli.h). */
#define EXIT_BAD_INPUT 3

#define REF_NLL_SUM 2284.659384
#define REF_SCORED 1804
/* relative 1e-5, as test_perplexity: the reference is an f32 forward pass; ours differs in
 * summation order; the stored log-probs add f32 rounding (~1e-7 relative each) on top. */
#define REL_TOL 1e-5
/* Stored log-prob vs a fresh forward's log-softmax (double): f32 rounding of a value of
 * magnitude <= ~30 is <= 2e-6; the forward itself is deterministic, but the pool splits
 * matmuls differently for other thread counts, so allow 1e-4 absolute. */
#define LOGP_ATOL 1e-4
/* f16 log-probs: 11-bit mantissa, |logp| < 32 -> half an ulp <= 2^-6. */
#define LOGP_F16_ATOL (1.0 / 64)

static char model_path[512], tok_path[512], corpus[512];
static char tmpdir[256];

static void setup(void) {
    lq_test_shared("models/stories260K/stories260K.bin", model_path, sizeof model_path);
    lq_test_shared("models/stories260K/tok512.bin", tok_path, sizeof tok_path);
    lq_test_shared("data/tinystories_sample.txt", corpus, sizeof corpus);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_distill.XXXXXX");
    cr_assert(mkdtemp(tmpdir) != NULL);
}

static void teardown(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_expect(system(cmd) == 0);
}

TestSuite(distill, .init = setup, .fini = teardown, .timeout = 120);

/* Run a built tool with NULL-terminated args; returns the wait status. stdout/stderr go to
 * <tmpdir>/out.txt / err.txt. */
static int run_tool(const char *tool, ...) {
    char path[512];
    lq_test_tool(tool, path, sizeof path);
    const char *argv[64];
    int n = 0;
    argv[n++] = path;
    va_list ap;
    va_start(ap, tool);
    const char *s;
    while ((s = va_arg(ap, const char *)) != NULL && n < 63) argv[n++] = s;
    va_end(ap);
    argv[n] = NULL;
    char out[300], err[300];
    snprintf(out, sizeof out, "%s/out.txt", tmpdir);
    snprintf(err, sizeof err, "%s/err.txt", tmpdir);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(out, "w", stdout) || !freopen(err, "w", stderr)) _exit(127);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return st;
}

static int exit_code(int st) { return WIFEXITED(st) ? WEXITSTATUS(st) : -1; }

static char *err_text(void) {
    char p[300];
    snprintf(p, sizeof p, "%s/err.txt", tmpdir);
    char *t = lq_test_read_file(p, NULL);
    return t ? t : strdup("");
}

static const char *sub(const char *name, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%s", tmpdir, name);
    return buf;
}

/* ---- soft labels against external and fresh references ---------------------------------------- */

Test(distill, nll_from_file_matches_reference) {
    char out[300];
    sub("full", out, sizeof out);
    int st = run_tool("quant-distill", "--model", model_path, "--tokenizer", tok_path, "--file",
                      corpus, "--out", out, "--per-line", "--separator", "<|endoftext|>", "--k",
                      "512", "--threads", "2", "--json", NULL);
    char *e = err_text();
    cr_assert_eq(exit_code(st), 0, "quant-distill failed: %s", e);
    free(e);
    lq_distill_reader *r = NULL;
    cr_assert_eq(lq_distill_open(out, &r), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_distill_count(r), 5);
    cr_assert_eq(lq_distill_reader_meta(r)->k, 512);
    double nll = 0;
    int64_t scored = 0;
    for (int64_t i = 0; i < lq_distill_count(r); i++) {
        lq_distill_record rec;
        cr_assert_eq(lq_distill_get(r, i, &rec), LQ_OK, "%s", lq_last_error());
        cr_assert_eq(rec.tokens[0], 1, "every unit starts with BOS");
        for (int t = 0; t + 1 < rec.n; t++) {
            const int32_t *ids = rec.topk_ids + (size_t)t * 512;
            const float *lp = rec.topk_logp + (size_t)t * 512;
            int hit = -1;
            for (int j = 0; j < 512; j++)
                if (ids[j] == rec.tokens[t + 1]) hit = j;
            cr_assert(hit >= 0, "k = vocab: every next token is in the top-k");
            nll -= lp[hit];
            scored++;
            cr_assert(isinf(rec.rest_logp[t]) && rec.rest_logp[t] < 0, "no mass outside k = vocab");
        }
    }
    cr_expect_eq(scored, REF_SCORED);
    cr_expect(fabs(nll - REF_NLL_SUM) <= REL_TOL * REF_NLL_SUM, "NLL from the file %.6f, "
              "reference %.6f", nll, REF_NLL_SUM);
    lq_distill_close(r);
}

/* log-softmax of one row in double */
static void log_softmax(const float *l, int v, double *out) {
    double mx = l[0], z = 0;
    for (int i = 1; i < v; i++) if (l[i] > mx) mx = l[i];
    for (int i = 0; i < v; i++) z += exp((double)l[i] - mx);
    double lz = log(z);
    for (int i = 0; i < v; i++) out[i] = (double)l[i] - mx - lz;
}

typedef struct hook_cap {
    float *x; /* (n_layers + 1, n, dim) */
    int dim;
    int n;
} hook_cap;

static void capture(void *user, int layer, const float *x, int n, int pos) {
    hook_cap *h = user;
    memcpy(h->x + ((size_t)layer * h->n + pos) * h->dim, x, (size_t)n * h->dim * sizeof *x);
}

/* Chunked mode, k = 32, two feature layers: every record against a fresh forward pass. */
static void check_against_forward(const char *logp_dtype, double atol) {
    char out[300];
    sub("chunks", out, sizeof out);
    int st = run_tool("quant-distill", "--model", model_path, "--tokenizer", tok_path, "--file",
                      corpus, "--out", out, "--ctx", "100", "--features", "0,5", "--logp-dtype",
                      logp_dtype, "--threads", "2", "--json", NULL);
    char *e = err_text();
    cr_assert_eq(exit_code(st), 0, "quant-distill failed: %s", e);
    free(e);
    lq_model *m = NULL;
    cr_assert_eq(lq_model_load(model_path, &m), LQ_OK);
    lq_session *s = NULL;
    cr_assert_eq(lq_session_create(m, 100, NULL, &s), LQ_OK);
    int v = lq_model_config(m)->vocab_size, dim = lq_model_config(m)->dim, nl = lq_model_config(m)->n_layers;
    hook_cap h = {.x = malloc(sizeof(float) * (size_t)(nl + 1) * 100 * dim), .dim = dim};
    lq_session_set_layer_hook(s, capture, &h);
    float *logits = malloc(sizeof(float) * 100 * (size_t)v);
    double *ls = malloc(sizeof(double) * (size_t)v);
    float *lsf = malloc(sizeof(float) * (size_t)v);
    lq_distill_reader *r = NULL;
    cr_assert_eq(lq_distill_open(out, &r), LQ_OK, "%s", lq_last_error());
    const lq_distill_meta *meta = lq_distill_reader_meta(r);
    cr_assert_eq(meta->k, 32);
    cr_assert_eq(meta->n_feat_layers, 2);
    cr_assert_eq(meta->teacher_id, lq_distill_teacher_id(m));
    int64_t total = 0;
    double max_kl = 0, max_err = 0;
    for (int64_t i = 0; i < lq_distill_count(r); i++) {
        lq_distill_record rec;
        cr_assert_eq(lq_distill_get(r, i, &rec), LQ_OK, "%s", lq_last_error());
        cr_assert(rec.n >= 1 && rec.n <= 100);
        cr_assert_eq(rec.tokens[0], 1, "chunks start with BOS");
        total += rec.n;
        h.n = rec.n;
        cr_assert_eq(lq_forward(s, rec.tokens, rec.n, 0, logits, true), LQ_OK);
        for (int t = 0; t < rec.n; t++) {
            log_softmax(logits + (size_t)t * v, v, ls);
            const int32_t *ids = rec.topk_ids + (size_t)t * 32;
            const float *lp = rec.topk_logp + (size_t)t * 32;
            double top = 0;
            for (int j = 0; j < 32; j++) {
                double d = fabs(lp[j] - ls[ids[j]]);
                if (d > max_err) max_err = d;
                cr_assert(d <= atol, "record %lld pos %d rank %d id %d: stored %.7f, forward "
                          "%.7f", (long long)i, t, j, ids[j], lp[j], ls[ids[j]]);
                if (j > 0) cr_assert(lp[j] <= lp[j - 1] + atol, "descending");
                top += exp(ls[ids[j]]);
            }
            /* nothing outside the stored ids beats the k-th (up to the tolerance: ties) */
            double kth = ls[ids[31]];
            for (int id = 0; id < v; id++) {
                bool in = false;
                for (int j = 0; j < 32; j++) in |= ids[j] == id;
                if (!in) cr_assert(ls[id] <= kth + atol, "id %d (%.6f) beats the k-th (%.6f)",
                                   id, ls[id], kth);
            }
            cr_assert(fabs(rec.rest_logp[t] - log(1 - top)) <= 1e-4, "rest %.7f vs %.7f",
                      rec.rest_logp[t], log(1 - top));
            for (int id = 0; id < v; id++) lsf[id] = (float)ls[id];
            double kl = lq_distill_kl(ids, lp, rec.rest_logp[t], 32, lsf);
            if (fabs(kl) > max_kl) max_kl = fabs(kl);
        }
        /* features: the residual stream after layers 0 and 5 (= final norm) as f16 */
        for (int f = 0; f < 2; f++) {
            int layer = meta->feat_layers[f];
            for (int64_t j = 0; j < (int64_t)rec.n * dim; j++) {
                float ref = h.x[((size_t)layer * rec.n) * dim + j];
                float got = lq_f16_to_f32(rec.features[(size_t)f * rec.n * dim + j]);
                /* f16 round to nearest: relative 2^-11; plus 1e-5 absolute because the tool's
                 * forward ran on 2 threads (another summation order) and this one on 1, and
                 * the residual stream is O(1) */
                cr_assert(fabs(got - ref) <= fabs(ref) * (1.0 / 2048) + 1e-5,
                          "feature layer %d elem %lld: %g vs %g", layer, (long long)j, got, ref);
            }
        }
    }
    cr_expect_eq(total, lq_distill_token_count(r));
    /* KL(teacher || student = teacher) from the file: only storage rounding remains */
    cr_expect(max_kl <= (atol > 1e-3 ? 2e-2 : 1e-5), "max |KL| %.3g", max_kl);
    cr_log_info("%s: %lld tokens, max |logp err| %.3g, max |KL| %.3g", logp_dtype,
                (long long)total, max_err, max_kl);
    lq_distill_close(r);
    free(logits);
    free(ls);
    free(lsf);
    free(h.x);
    lq_session_free(s);
    lq_model_free(m);
}

Test(distill, topk_and_features_match_fresh_forward_f32) { check_against_forward("f32", LOGP_ATOL); }
Test(distill, topk_match_fresh_forward_f16) { check_against_forward("f16", LOGP_F16_ATOL); }

Test(distill, topk_ref_handworked) {
    /* logits {0, ln 2, ln 3, ln 2}: p = {1,2,3,2}/8; top-2 = id 2 (3/8), then id 1 (2/8, lower id
     * than 3 on the tie); rest = 3/8 */
    float l[4] = {0.0f, (float)log(2.0), (float)log(3.0), (float)log(2.0)};
    int32_t ids[2];
    float lp[2], rest;
    lq_distill_topk(l, 4, 2, ids, lp, &rest);
    cr_expect_eq(ids[0], 2);
    cr_expect_eq(ids[1], 1);
    cr_expect(fabs(lp[0] - log(3.0 / 8)) < 1e-6);
    cr_expect(fabs(lp[1] - log(2.0 / 8)) < 1e-6);
    cr_expect(fabs(rest - log(3.0 / 8)) < 1e-6);
    /* a tiny tail: logits {0, -40, -40}: rest = 2e^-40 / (1 + 2e^-40), summed directly */
    float l2[3] = {0.0f, -40.0f, -40.0f};
    lq_distill_topk(l2, 3, 1, ids, lp, &rest);
    cr_expect_eq(ids[0], 0);
    cr_expect(fabs(rest - (log(2.0) - 40.0)) < 1e-5, "rest %.7f", rest);
}

/* ---- resume ----------------------------------------------------------------------------------- */

static void expect_same_records(const char *a, const char *b) {
    lq_distill_reader *ra = NULL, *rb = NULL;
    cr_assert_eq(lq_distill_open(a, &ra), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_distill_open(b, &rb), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_distill_count(ra), lq_distill_count(rb));
    cr_assert_eq(lq_distill_token_count(ra), lq_distill_token_count(rb));
    int k = lq_distill_reader_meta(ra)->k;
    for (int64_t i = 0; i < lq_distill_count(ra); i++) {
        lq_distill_record x, y;
        cr_assert_eq(lq_distill_get(ra, i, &x), LQ_OK);
        int32_t n = x.n;
        size_t nk = (size_t)n * k;
        int32_t *tok = malloc(n * 4), *ids = malloc(nk * 4);
        float *lp = malloc(nk * 4), *rest = malloc((size_t)n * 4);
        memcpy(tok, x.tokens, n * 4);
        memcpy(ids, x.topk_ids, nk * 4);
        memcpy(lp, x.topk_logp, nk * 4);
        memcpy(rest, x.rest_logp, (size_t)n * 4);
        uint64_t so = x.source_offset;
        cr_assert_eq(lq_distill_get(rb, i, &y), LQ_OK);
        cr_assert_eq(y.n, n, "record %lld", (long long)i);
        cr_assert_eq(y.source_offset, so);
        cr_assert(memcmp(y.tokens, tok, n * 4) == 0, "record %lld tokens", (long long)i);
        cr_assert(memcmp(y.topk_ids, ids, nk * 4) == 0, "record %lld ids", (long long)i);
        cr_assert(memcmp(y.topk_logp, lp, nk * 4) == 0, "record %lld logp", (long long)i);
        cr_assert(memcmp(y.rest_logp, rest, (size_t)n * 4) == 0, "record %lld rest", (long long)i);
        free(tok);
        free(ids);
        free(lp);
        free(rest);
    }
    lq_distill_close(ra);
    lq_distill_close(rb);
}

static void kill_and_resume(bool per_line) {
    char full[300], cut[300];
    sub("full", full, sizeof full);
    sub("cut", cut, sizeof cut);
    const char *mode = per_line ? "--per-line" : "--json";
    const char *ctx = per_line ? "96" : "40"; /* per-line: long units are cut into pieces */
    /* small blocks and shards: the kills land between commits, and shards roll over */
    int st = run_tool("quant-distill", "--model", model_path, "--tokenizer", tok_path, "--file",
                      corpus, "--out", full, "--ctx", ctx, "--k", "8", "--block-kib", "4",
                      "--shard-kib", "24", "--threads", "1", mode, NULL);
    cr_assert_eq(exit_code(st), 0);
    /* two crashes at different points, then a clean finish */
    const char *stops[] = {"3", "11"};
    for (int i = 0; i < 2; i++) {
        st = run_tool("quant-distill", "--model", model_path, "--tokenizer", tok_path, "--file",
                      corpus, "--out", cut, "--ctx", ctx, "--k", "8", "--block-kib", "4",
                      "--shard-kib", "24", "--threads", "1", mode, "--debug-stop-after",
                      stops[i], NULL);
        cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the run should die by SIGKILL");
    }
    /* a partial dataset reads up to its last commit */
    lq_distill_reader *r = NULL;
    cr_assert_eq(lq_distill_open(cut, &r), LQ_OK, "%s", lq_last_error());
    int64_t partial = lq_distill_count(r);
    lq_distill_close(r);
    st = run_tool("quant-distill", "--model", model_path, "--tokenizer", tok_path, "--file",
                  corpus, "--out", cut, "--ctx", ctx, "--k", "8", "--block-kib", "4",
                  "--shard-kib", "24", "--threads", "1", mode, NULL);
    char *e = err_text();
    cr_assert_eq(exit_code(st), 0, "resume failed: %s", e);
    free(e);
    cr_assert(lq_distill_open(full, &r) == LQ_OK);
    cr_expect(partial > 0 && partial < lq_distill_count(r), "partial %lld of %lld",
              (long long)partial, (long long)lq_distill_count(r));
    cr_expect(lq_distill_count(r) > 20);
    lq_distill_close(r);
    char shard1[400];
    snprintf(shard1, sizeof shard1, "%s/shard-00001.lqd", full);
    cr_expect(access(shard1, F_OK) == 0, "the run should span several shards");
    expect_same_records(full, cut);
    /* running the finished command again changes nothing */
    st = run_tool("quant-distill", "--model", model_path, "--tokenizer", tok_path, "--file",
                  corpus, "--out", cut, "--ctx", ctx, "--k", "8", "--block-kib", "4",
                  "--shard-kib", "24", "--threads", "1", mode, NULL);
    cr_assert_eq(exit_code(st), 0);
    expect_same_records(full, cut);
}

Test(distill, killed_and_resumed_equals_uninterrupted_chunks) { kill_and_resume(false); }
Test(distill, killed_and_resumed_equals_uninterrupted_per_line) { kill_and_resume(true); }

/* ---- bad input -------------------------------------------------------------------------------- */

Test(distill, k_larger_than_vocab_is_refused) {
    char out[300];
    sub("o", out, sizeof out);
    int st = run_tool("quant-distill", "--model", model_path, "--tokenizer", tok_path, "--file",
                      corpus, "--out", out, "--k", "513", NULL);
    cr_expect_eq(exit_code(st), 2);
    char *e = err_text();
    cr_expect(strstr(e, "quant-distill: error: --k 513 is larger than the vocabulary (512)"), "%s", e);
    free(e);
    cr_expect(access(out, F_OK) != 0, "nothing written");
}

Test(distill, empty_corpus_is_refused) {
    char out[300], empty[300];
    sub("o", out, sizeof out);
    sub("empty.txt", empty, sizeof empty);
    FILE *f = fopen(empty, "w");
    fclose(f);
    int st = run_tool("quant-distill", "--model", model_path, "--tokenizer", tok_path, "--file",
                      empty, "--out", out, NULL);
    cr_expect_eq(exit_code(st), 2);
    char *e = err_text();
    cr_expect(strstr(e, "the corpus is empty"), "%s", e);
    free(e);
    cr_expect(access(out, F_OK) != 0, "nothing written");
}

Test(distill, output_of_another_teacher_is_refused) {
    char out[300], synth[300];
    sub("o", out, sizeof out);
    sub("synth", synth, sizeof synth);
    cr_assert_eq(exit_code(run_tool("quant-synth", "--shape", "stories260K-like", "--seed", "7",
                                    "--out", synth, NULL)), 0);
    cr_assert_eq(exit_code(run_tool("quant-distill", "--model", model_path, "--tokenizer",
                                    tok_path, "--file", corpus, "--out", out, "--ctx", "64",
                                    "--block-kib", "1", "--debug-stop-after", "3", NULL)), -1,
                 "killed mid-run, after some commits");
    char manifest[400];
    snprintf(manifest, sizeof manifest, "%s/manifest.json", out);
    size_t len0 = 0;
    char *before = lq_test_read_file(manifest, &len0);
    /* same tokenizer, same corpus and settings, another model: refused, nothing touched */
    int st = run_tool("quant-distill", "--model", synth, "--tokenizer", tok_path, "--file",
                      corpus, "--out", out, "--ctx", "64", NULL);
    cr_expect_eq(exit_code(st), EXIT_BAD_INPUT);
    char *e = err_text();
    cr_expect(strstr(e, "written by another teacher"), "%s", e);
    free(e);
    char *after = lq_test_read_file(manifest, NULL);
    cr_expect(before && after && strcmp(before, after) == 0, "the manifest is untouched");
    free(before);
    free(after);
    /* another k on the same teacher: refused too (records would mix settings) */
    st = run_tool("quant-distill", "--model", model_path, "--tokenizer", tok_path, "--file",
                  corpus, "--out", out, "--ctx", "64", "--k", "16", NULL);
    cr_expect_eq(exit_code(st), EXIT_BAD_INPUT);
}

Test(distill, corrupt_shard_names_file_and_offset) {
    char out[300], shard[400];
    sub("o", out, sizeof out);
    cr_assert_eq(exit_code(run_tool("quant-distill", "--model", model_path, "--tokenizer",
                                    tok_path, "--file", corpus, "--out", out, "--json", NULL)), 0);
    snprintf(shard, sizeof shard, "%s/shard-00000.lqd", out);
    size_t len = 0;
    char *data = lq_test_read_file(shard, &len);
    cr_assert(data && len > 1000);
    /* flip one byte of the first block's compressed payload (block header at 256, 32 bytes) */
    data[256 + 32 + 100] ^= 0x40;
    FILE *f = fopen(shard, "wb");
    fwrite(data, 1, len, f);
    fclose(f);
    lq_distill_reader *r = NULL;
    cr_assert_eq(lq_distill_open(out, &r), LQ_OK, "headers and index are intact");
    lq_distill_record rec;
    cr_expect_eq(lq_distill_get(r, 0, &rec), LQ_ERR_FORMAT);
    const char *msg = lq_last_error();
    cr_expect(strstr(msg, "shard-00000.lqd: offset 256: corrupt block"), "%s", msg);
    lq_distill_close(r);
    int st = run_tool("quant-distill", "--inspect", out, NULL);
    cr_expect_eq(exit_code(st), 3);
    char *e = err_text();
    cr_expect(strstr(e, "quant-distill: error: ") == e && strchr(e, '\n') == e + strlen(e) - 1,
              "one line: %s", e);
    cr_expect(strstr(e, "offset 256"), "%s", e);
    free(e);
    /* a truncated shard file: the header's index points past the end */
    cr_assert_eq(lq_distill_open_mem(data, len / 2, "half.lqd", &r), LQ_ERR_FORMAT);
    cr_expect(strstr(lq_last_error(), "half.lqd: offset "), "%s", lq_last_error());
    /* header damage */
    data[20] ^= 1;
    cr_assert_eq(lq_distill_open_mem(data, len, "hdr.lqd", &r), LQ_ERR_FORMAT);
    cr_expect(strstr(lq_last_error(), "hdr.lqd: offset 252: header checksum"), "%s",
              lq_last_error());
    free(data);
}

Test(distill, inspect_prints_a_record) {
    char out[300];
    sub("o", out, sizeof out);
    cr_assert_eq(exit_code(run_tool("quant-distill", "--model", model_path, "--tokenizer",
                                    tok_path, "--file", corpus, "--out", out, "--per-line",
                                    "--separator", "<|endoftext|>", "--json", NULL)), 0);
    cr_assert_eq(exit_code(run_tool("quant-distill", "--inspect", out, "--record", "4", "--json",
                                    NULL)), 0);
    char p[300];
    snprintf(p, sizeof p, "%s/out.txt", tmpdir);
    char *t = lq_test_read_file(p, NULL);
    cr_assert(t);
    cr_expect(strstr(t, "\"records\":5"), "%.200s", t);
    cr_expect(strstr(t, "\"index\":4"));
    cr_expect(strstr(t, "\"tokens\":[1,"), "BOS first");
    free(t);
    cr_expect_eq(exit_code(run_tool("quant-distill", "--inspect", out, "--record", "5", NULL)), 2);
}

/* ---- chunked mode: the token stream of the whole text ----------------------------------------- */

/* The first ~`bytes` of WikiText-2 (cut after a newline) into <tmpdir>/name; returns its size. */
static size_t wiki_head(const char *name, size_t bytes, char *path, size_t cap) {
    char src[512];
    lq_test_shared("data/wikitext-2-raw-v1.test.hfjoin.txt", src, sizeof src);
    size_t len = 0;
    char *all = lq_test_read_file(src, &len);
    cr_assert(all && len > bytes + 10000, "%s", src);
    size_t n = bytes;
    while (n < len && all[n - 1] != '\n') n++;
    sub(name, path, cap);
    FILE *f = fopen(path, "wb");
    cr_assert(f && fwrite(all, 1, n, f) == n);
    fclose(f);
    free(all);
    return n;
}

static int32_t *encode_all(const lq_tokenizer *tok, const char *text, size_t len, int64_t *n) {
    cr_assert_eq(lq_tokenizer_encode(tok, text, len, false, false, NULL, 0, n), LQ_ERR_INVALID_ARG);
    int32_t *ids = malloc((size_t)*n * sizeof *ids);
    cr_assert_eq(lq_tokenizer_encode(tok, text, len, false, false, ids, *n, n), LQ_OK);
    return ids;
}

/* Segments from lq_corpus_next_segment, encoded one by one (the first with the dummy prefix),
 * against lq_tokenizer_encode of the whole text: the reference is the whole-text encoding
 * quant-eval uses (test_tokenizer_* tie it to llama.cpp's and HF's token ids). */
static void expect_segments_equal_whole(const lq_tokenizer *tok, const char *path, size_t window,
                                        const char *what) {
    size_t len = 0;
    char *text = lq_test_read_file(path, &len);
    int64_t n_ref = 0;
    int32_t *ref = encode_all(tok, text, len, &n_ref);
    lq_corpus *c = NULL;
    cr_assert_eq(lq_corpus_open(path, 0, &c), LQ_OK);
    int64_t at = 0, segs = 0;
    uint64_t expect_off = 0;
    int32_t *ids = malloc(sizeof *ids * (window * 2 + 16));
    for (;;) {
        const char *s;
        size_t sl;
        uint64_t off, next;
        cr_assert_eq(lq_corpus_next_segment(c, tok, window, &s, &sl, &off, &next), LQ_OK, "%s",
                     lq_last_error());
        if (!s) break;
        cr_assert_eq(off, expect_off);
        cr_assert(sl <= window || next == len, "%s: segment of %zu bytes", what, sl);
        int64_t n = 0;
        lq_status st = off == 0 ? lq_tokenizer_encode(tok, s, sl, false, false, ids, (int64_t)window * 2 + 16, &n)
                                : lq_tokenizer_encode_next(tok, s, sl, ids, (int64_t)window * 2 + 16, &n);
        cr_assert_eq(st, LQ_OK, "%s", lq_last_error());
        for (int64_t i = 0; i < n; i++)
            cr_assert(at + i < n_ref && ids[i] == ref[at + i], "%s: segment at byte %llu, token %lld:"
                      " %d, whole text %d", what, (unsigned long long)off, (long long)i, ids[i],
                      at + i < n_ref ? ref[at + i] : -1);
        at += n;
        segs++;
        expect_off = next;
    }
    cr_expect_eq(at, n_ref, "%s: %lld tokens from segments, %lld whole", what, (long long)at,
                 (long long)n_ref);
    cr_expect(segs > (int64_t)(len / window / 2), "%s: %lld segments of %zu bytes", what,
              (long long)segs, window);
    cr_log_info("%s: %lld segments, %lld tokens", what, (long long)segs, (long long)n_ref);
    lq_corpus_close(c);
    free(ids);
    free(ref);
    free(text);
}

Test(distill, segments_tokenize_as_the_whole_text) {
    char wiki[300], p[512];
    wiki_head("wiki.txt", 200000, wiki, sizeof wiki);
    lq_tokenizer *tok = NULL;
    cr_assert_eq(lq_tokenizer_load_llama2c(tok_path, 512, &tok), LQ_OK);
    expect_segments_equal_whole(tok, wiki, 4096, "tok512");
    expect_segments_equal_whole(tok, wiki, 64, "tok512 small windows");
    lq_tokenizer_free(tok);
    cr_assert_eq(lq_tokenizer_load_llama2c(lq_test_shared("models/llama2-tokenizer/tokenizer.bin",
                                                          p, sizeof p), 32000, &tok), LQ_OK);
    expect_segments_equal_whole(tok, wiki, 4096, "llama2 32k");
    lq_tokenizer_free(tok);
    cr_assert_eq(lq_tokenizer_load_hf_json(lq_test_shared("models/gpt2-tokenizer/tokenizer.json",
                                                          p, sizeof p), &tok), LQ_OK, "%s", lq_last_error());
    expect_segments_equal_whole(tok, wiki, 4096, "gpt2");
    lq_tokenizer_free(tok);
}

Test(distill, safe_cut_rules) {
    lq_tokenizer *tok = NULL;
    cr_assert_eq(lq_tokenizer_load_llama2c(tok_path, 512, &tok), LQ_OK);
    /* SPM: before the last space that follows a non-space, or after a newline */
    cr_expect_eq(lq_tokenizer_safe_cut(tok, "ab cd  ef", 9), 5);
    cr_expect_eq(lq_tokenizer_safe_cut(tok, "abc\ndef", 7), 4);
    cr_expect_eq(lq_tokenizer_safe_cut(tok, "abcdef", 6), 0);
    cr_expect_eq(lq_tokenizer_safe_cut(tok, "a ", 1), 0, "never at the end: the next byte counts");
    /* a literal U+2581 before the space is a "▁" symbol: no word starts there */
    cr_expect_eq(lq_tokenizer_safe_cut(tok, "x\xe2\x96\x81 y", 6), 0);
    lq_tokenizer_free(tok);
    char p[512];
    cr_assert_eq(lq_tokenizer_load_hf_json(lq_test_shared("models/gpt2-tokenizer/tokenizer.json",
                                                          p, sizeof p), &tok), LQ_OK);
    /* GPT-2: before a space followed by a printable character only ("a \n b": the space before
     * the newline is part of a whitespace run whose split depends on what follows) */
    cr_expect_eq(lq_tokenizer_safe_cut(tok, "one two", 7), 3);
    cr_expect_eq(lq_tokenizer_safe_cut(tok, "a\n\nb", 4), 0);
    cr_expect_eq(lq_tokenizer_safe_cut(tok, "a \n b", 5), 3);
    lq_tokenizer_free(tok);
}

Test(distill, chunked_tokens_are_the_whole_text_tokens) {
    char wiki[300], out[300];
    /* 5 KB (~3k tokens: the teacher runs over all of them, ~25 s under ASan on a loaded
     * machine; the 200 KB check of the same segmentation is
     * segments_tokenize_as_the_whole_text), small segments: ~25 cuts */
    size_t len = wiki_head("wiki.txt", 5000, wiki, sizeof wiki);
    sub("wiki-distill", out, sizeof out);
    int st = run_tool("quant-distill", "--model", model_path, "--tokenizer", tok_path, "--file",
                      wiki, "--out", out, "--k", "1", "--ctx", "512", "--threads", "2",
                      "--debug-piece-bytes", "200", "--json", NULL);
    char *e = err_text();
    cr_assert_eq(exit_code(st), 0, "quant-distill failed: %s", e);
    free(e);
    char *text = lq_test_read_file(wiki, NULL);
    lq_tokenizer *tok = NULL;
    cr_assert_eq(lq_tokenizer_load_llama2c(tok_path, 512, &tok), LQ_OK);
    int64_t n_ref = 0;
    int32_t *ref = encode_all(tok, text, len, &n_ref);
    lq_distill_reader *r = NULL;
    cr_assert_eq(lq_distill_open(out, &r), LQ_OK, "%s", lq_last_error());
    int64_t at = 0;
    for (int64_t i = 0; i < lq_distill_count(r); i++) {
        lq_distill_record rec;
        cr_assert_eq(lq_distill_get(r, i, &rec), LQ_OK);
        cr_assert_eq(rec.tokens[0], 1, "BOS first");
        for (int t = 1; t < rec.n; t++, at++)
            cr_assert(at < n_ref && rec.tokens[t] == ref[at], "record %lld token %d: %d, whole "
                      "text %d", (long long)i, t, rec.tokens[t], at < n_ref ? ref[at] : -1);
    }
    cr_expect_eq(at, n_ref, "%lld tokens in the records, %lld in the whole text", (long long)at,
                 (long long)n_ref);
    lq_distill_close(r);
    lq_tokenizer_free(tok);
    free(ref);
    free(text);
}

/* ---- sequences -------------------------------------------------------------------------------- */

#include <jansson.h>

/* greedy from BOS, /work/shared/models/SOURCES.md (llama2.c run.c -t 0.0) */
#define REF_GREEDY "Once upon a time, there was a little girl named Lily. She loved to play " \
                   "outside in the park. One day, she saw a big, red ball."

static const char *prompts_file(void) {
    static char p[300];
    sub("prompts.txt", p, sizeof p);
    FILE *f = fopen(p, "w");
    cr_assert(f);
    fputs("Once upon a time\n\nThe cat sat\nLily and Tom\n", f); /* 3 prompts: blank skipped */
    fclose(f);
    return p;
}

static char *jsonl(const char *dir, size_t *len) {
    char p[400];
    snprintf(p, sizeof p, "%s/sequences.jsonl", dir);
    char *t = lq_test_read_file(p, len);
    cr_assert(t, "%s", p);
    return t;
}

/* Parse line i of a JSONL text. */
static json_t *jsonl_line(const char *text, int i) {
    const char *p = text;
    for (int k = 0; k < i; k++) {
        p = strchr(p, '\n');
        cr_assert(p, "line %d missing", i);
        p++;
    }
    const char *e = strchr(p, '\n');
    cr_assert(e);
    json_error_t err;
    json_t *j = json_loadb(p, (size_t)(e - p), 0, &err);
    cr_assert(j, "line %d: %s", i, err.text);
    return j;
}

static int count_lines(const char *t) {
    int n = 0;
    for (; *t; t++) n += *t == '\n';
    return n;
}

Test(distill, sequences_greedy_empty_prompt_is_llama2c_sample) {
    char out[300];
    sub("seq", out, sizeof out);
    int st = run_tool("quant-distill", "--model", model_path, "--tokenizer", tok_path, "--prompt",
                      "", "--sequences", "1", "--max-tokens", "64", "--out", out, "--json", NULL);
    char *e = err_text();
    cr_assert_eq(exit_code(st), 0, "%s", e);
    free(e);
    char *t = jsonl(out, NULL);
    cr_assert_eq(count_lines(t), 1);
    json_t *j = jsonl_line(t, 0);
    const char *text = json_string_value(json_object_get(j, "text"));
    cr_assert(text && strncmp(text, REF_GREEDY, strlen(REF_GREEDY)) == 0, "got: %s", text);
    cr_expect_str_eq(json_string_value(json_object_get(j, "mode")), "greedy");
    cr_expect_eq(json_array_size(json_object_get(j, "prompt_tokens")), 1, "BOS only");
    cr_expect_eq(json_array_size(json_object_get(j, "tokens")), 64);
    cr_expect_str_eq(json_string_value(json_object_get(j, "stop")), "max_tokens");
    json_decref(j);
    free(t);
}

static int run_seq(const char *out, const char *seed, const char *stop) {
    return run_tool("quant-distill", "--model", model_path, "--tokenizer", tok_path, "--prompts",
                    prompts_file(), "--sequences", "3", "--max-tokens", "24", "--temperature",
                    "1.0", "--top-k", "50", "--seed", seed, "--threads", "1", "--out", out,
                    "--json", stop ? "--debug-stop-after" : NULL, stop, NULL);
}

typedef struct gen_capture {
    int32_t ids[64];
    int n;
} gen_capture;

static bool on_gen(void *user, const lq_sample_info *t) {
    gen_capture *g = user;
    if (g->n < 64) g->ids[g->n++] = t->id;
    return true;
}

Test(distill, sequences_deterministic_per_seed) {
    char a[300], b[300], c[300];
    cr_assert_eq(exit_code(run_seq(sub("a", a, sizeof a), "7", NULL)), 0);
    cr_assert_eq(exit_code(run_seq(sub("b", b, sizeof b), "7", NULL)), 0);
    cr_assert_eq(exit_code(run_seq(sub("c", c, sizeof c), "8", NULL)), 0);
    char *ta = jsonl(a, NULL), *tb = jsonl(b, NULL), *tc = jsonl(c, NULL);
    cr_assert_eq(count_lines(ta), 9, "3 prompts x 3 sequences");
    cr_expect_str_eq(ta, tb, "same seed, same records");
    cr_expect(strcmp(ta, tc) != 0, "another seed, other records");
    /* records carry their index, prompt, own seed and the options; samples of one prompt differ */
    json_t *r0 = jsonl_line(ta, 0), *r1 = jsonl_line(ta, 1), *r4 = jsonl_line(ta, 4);
    cr_expect_eq(json_integer_value(json_object_get(r4, "prompt_index")), 1);
    cr_expect_eq(json_integer_value(json_object_get(r4, "sample")), 1);
    cr_expect_str_eq(json_string_value(json_object_get(r4, "prompt")), "The cat sat");
    cr_expect_str_eq(json_string_value(json_object_get(r0, "mode")), "sample");
    json_t *p = json_object_get(r0, "params");
    cr_expect_str_eq(json_string_value(json_object_get(p, "seed")), "7");
    cr_expect_eq(json_integer_value(json_object_get(p, "top_k")), 50);
    cr_expect(fabs(json_real_value(json_object_get(p, "temperature")) - 1.0) < 1e-9);
    char s0[32];
    snprintf(s0, sizeof s0, "%llu", (unsigned long long)lq_seq_record_seed(7, 0, 0));
    cr_expect_str_eq(json_string_value(json_object_get(r0, "seed")), s0);
    cr_expect(!json_equal(json_object_get(r0, "tokens"), json_object_get(r1, "tokens")),
              "two samples of one prompt should differ");
    /* the record is what lq_sample_generate gives with that seed (library = file) */
    lq_model *m = NULL;
    lq_tokenizer *tok = NULL;
    cr_assert_eq(lq_model_load(model_path, &m), LQ_OK);
    cr_assert_eq(lq_tokenizer_load_llama2c(tok_path, 512, &tok), LQ_OK);
    lq_session *s = NULL;
    cr_assert_eq(lq_session_create(m, lq_model_config(m)->max_seq_len, NULL, &s), LQ_OK);
    lq_sample_params sp = lq_sample_params_default();
    sp.temperature = 1.0f;
    sp.top_k = 50;
    sp.top_p = 0.95f;
    sp.min_p = 0.05f;
    sp.seed = lq_seq_record_seed(7, 1, 1);
    lq_sampler *smp = NULL;
    cr_assert_eq(lq_sampler_create(&sp, &smp), LQ_OK);
    int32_t prompt[64];
    int64_t np = 0;
    cr_assert_eq(lq_tokenizer_encode(tok, "The cat sat", 11, true, false, prompt, 64, &np), LQ_OK);
    json_t *pt = json_object_get(r4, "prompt_tokens");
    cr_assert_eq((int64_t)json_array_size(pt), np);
    for (int64_t i = 0; i < np; i++) cr_expect_eq(json_integer_value(json_array_get(pt, i)), prompt[i]);
    int32_t stop[2] = {2, 1};
    lq_sample_gen_opts o = {.max_new = 24, .stop_ids = stop, .n_stop = 2, .vocab = 512};
    lq_sample_gen_result gr;
    gen_capture gc = {0};
    cr_assert_eq(lq_sample_generate(m, s, smp, prompt, (int)np, &o, on_gen, &gc, &gr), LQ_OK);
    json_t *toks = json_object_get(r4, "tokens");
    cr_assert_eq((int64_t)json_array_size(toks), gr.n_generated);
    for (int i = 0; i < gc.n; i++)
        cr_expect_eq(json_integer_value(json_array_get(toks, i)), gc.ids[i], "token %d", i);
    lq_sampler_free(smp);
    lq_session_free(s);
    lq_tokenizer_free(tok);
    lq_model_free(m);
    json_decref(r0);
    json_decref(r1);
    json_decref(r4);
    free(ta);
    free(tb);
    free(tc);
}

Test(distill, sequences_killed_and_resumed_equals_uninterrupted) {
    char full[300], cut[300];
    cr_assert_eq(exit_code(run_seq(sub("full", full, sizeof full), "11", NULL)), 0);
    sub("cut", cut, sizeof cut);
    int st = run_seq(cut, "11", "2");
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the run should die by SIGKILL");
    st = run_seq(cut, "11", "4"); /* dies again, inside the second prompt */
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    /* a torn write after the last commit: half a line the manifest does not count */
    char p[400];
    snprintf(p, sizeof p, "%s/sequences.jsonl", cut);
    FILE *f = fopen(p, "ab");
    fputs("{\"index\":6,\"prom", f);
    fclose(f);
    /* another seed is other settings: refused, nothing touched */
    cr_expect_eq(exit_code(run_seq(cut, "12", NULL)), EXIT_BAD_INPUT);
    st = run_seq(cut, "11", NULL);
    char *e = err_text();
    cr_assert_eq(exit_code(st), 0, "resume failed: %s", e);
    free(e);
    size_t la = 0, lb = 0;
    char *a = jsonl(full, &la), *b = jsonl(cut, &lb);
    cr_expect_eq(la, lb);
    cr_expect_str_eq(a, b, "resumed run = uninterrupted run, byte for byte");
    free(a);
    free(b);
    /* the finished run again: nothing to do */
    cr_assert_eq(exit_code(run_seq(cut, "11", NULL)), 0);
    b = jsonl(cut, &lb);
    cr_expect_eq(la, lb);
    free(b);
}

Test(distill, sequences_beams_are_the_beam_search_hypotheses) {
    char out[300];
    sub("beam", out, sizeof out);
    int st = run_tool("quant-distill", "--model", model_path, "--tokenizer", tok_path, "--prompts",
                      prompts_file(), "--sequences", "2", "--beams", "4", "--max-tokens", "20",
                      "--out", out, "--json", NULL);
    char *e = err_text();
    cr_assert_eq(exit_code(st), 0, "%s", e);
    free(e);
    char *t = jsonl(out, NULL);
    cr_assert_eq(count_lines(t), 6);
    lq_model *m = NULL;
    cr_assert_eq(lq_model_load(model_path, &m), LQ_OK);
    for (int i = 0; i < 6; i++) {
        json_t *j = jsonl_line(t, i);
        cr_expect_str_eq(json_string_value(json_object_get(j, "mode")), "beam");
        if (i % 2 == 0) { /* the prompt's search, through the library */
            json_t *pt = json_object_get(j, "prompt_tokens");
            int np = (int)json_array_size(pt);
            int32_t prompt[64];
            for (int k = 0; k < np; k++) prompt[k] = (int32_t)json_integer_value(json_array_get(pt, k));
            int32_t stop[2] = {2, 1};
            lq_beam_opts o = {.n_beams = 4, .n_best = 2, .length_penalty = 1.0f, .max_new = 20,
                              .stop_ids = stop, .n_stop = 2, .vocab = 512};
            lq_beam_result r;
            cr_assert_eq(lq_beam_search(m, NULL, prompt, np, &o, &r), LQ_OK);
            cr_assert_eq(r.n_hyps, 2);
            for (int h = 0; h < 2; h++) {
                json_t *jh = h == 0 ? json_incref(j) : jsonl_line(t, i + 1);
                json_t *toks = json_object_get(jh, "tokens");
                int n = r.hyps[h].n - (r.hyps[h].finished ? 1 : 0);
                cr_assert_eq((int)json_array_size(toks), n, "record %d", i + h);
                for (int k = 0; k < n; k++)
                    cr_expect_eq(json_integer_value(json_array_get(toks, k)), r.hyps[h].tokens[k]);
                cr_expect(fabs(json_real_value(json_object_get(jh, "score")) - r.hyps[h].score) < 1e-9);
                json_decref(jh);
            }
            lq_beam_result_free(&r);
        }
        json_decref(j);
    }
    lq_model_free(m);
    free(t);
    /* more sequences than beams, or sampling with beams: bad arguments */
    cr_expect_eq(exit_code(run_tool("quant-distill", "--model", model_path, "--tokenizer", tok_path,
                                    "--prompt", "x", "--sequences", "5", "--beams", "4", "--out",
                                    out, NULL)), 2);
    cr_expect_eq(exit_code(run_tool("quant-distill", "--model", model_path, "--tokenizer", tok_path,
                                    "--prompt", "x", "--sequences", "2", "--beams", "4",
                                    "--temperature", "0.5", "--out", out, NULL)), 2);
}

Test(distill, sequences_of_another_teacher_are_refused) {
    char out[300], synth[300];
    sub("seq", out, sizeof out);
    sub("synth", synth, sizeof synth);
    cr_assert_eq(exit_code(run_tool("quant-synth", "--shape", "stories260K-like", "--seed", "7",
                                    "--out", synth, NULL)), 0);
    cr_assert_eq(exit_code(run_tool("quant-distill", "--model", model_path, "--tokenizer", tok_path,
                                    "--prompt", "", "--sequences", "2", "--max-tokens", "8",
                                    "--out", out, NULL)), 0);
    int st = run_tool("quant-distill", "--model", synth, "--tokenizer", tok_path, "--prompt", "",
                      "--sequences", "2", "--max-tokens", "8", "--out", out, NULL);
    cr_expect_eq(exit_code(st), EXIT_BAD_INPUT);
    char *e = err_text();
    cr_expect(strstr(e, "written by another teacher"), "%s", e);
    free(e);
    /* a soft-label run into a sequences directory: refused too (another kind of output) */
    st = run_tool("quant-distill", "--model", model_path, "--tokenizer", tok_path, "--file",
                  corpus, "--out", out, NULL);
    cr_expect_neq(exit_code(st), 0);
}

/* Issue 10 defect 16: a prompt too long for the context is reported against the prompts file and
 * its line (it named the output directory). Line 4 below (line 2 is blank), and with a separator
 * the line the unit's text starts on, after the blank lines that follow the separator. */
static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

Test(distill, sequences_long_prompt_names_file_and_line) {
    char prompts[300], out[300], out2[300];
    sub("prompts.txt", prompts, sizeof prompts);
    sub("seq", out, sizeof out);
    sub("seq2", out2, sizeof out2);
    char *text = malloc(4096);
    strcpy(text, "Once upon a time\n\nThe cat\n");
    for (int i = 0; i < 400; i++) strcat(text, "dog ");
    strcat(text, "\nA bird\n");
    write_text(prompts, text);
    int st = run_tool("quant-distill", "--model", model_path, "--tokenizer", tok_path, "--prompts", prompts,
                      "--sequences", "1", "--max-tokens", "4", "--out", out, NULL);
    cr_expect_eq(exit_code(st), 2);
    char *e = err_text(), want[400];
    snprintf(want, sizeof want, "quant-distill: error: %s:4: prompt 2 ", prompts);
    cr_expect(strncmp(e, want, strlen(want)) == 0, "want '%s...', got: %s", want, e);
    cr_expect(strstr(e, "context of 512"), "%s", e);
    cr_expect_null(strstr(e, "/seq"), "names the output directory: %s", e);
    free(e);
    /* separator units: the long one starts on line 3, after "\n\n" */
    strcpy(text, "Once upon a time<|e|>\n\n");
    for (int i = 0; i < 400; i++) strcat(text, "dog ");
    write_text(prompts, text);
    st = run_tool("quant-distill", "--model", model_path, "--tokenizer", tok_path, "--prompts", prompts,
                  "--separator", "<|e|>", "--sequences", "1", "--max-tokens", "4", "--out", out2, NULL);
    cr_expect_eq(exit_code(st), 2);
    e = err_text();
    snprintf(want, sizeof want, "quant-distill: error: %s:3: prompt 1 ", prompts);
    cr_expect(strncmp(e, want, strlen(want)) == 0, "want '%s...', got: %s", want, e);
    free(e);
    free(text);
}
