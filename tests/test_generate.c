/* test_generate.c - greedy decoding against llama2.c's documented stories260K sample
 * (karpathy/llama2.c doc/stories260K.md, quoted in shared/models/SOURCES.md), and KV-cache
 * correctness: one-token decode steps must reproduce the prefill logits of the same sequence. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "lq_eval.h"
#include "lq_test_util.h"

#define REF_TEXT "Once upon a time, there was a little girl named Lily. She loved to play " \
                 "outside in the park. One day, she saw a big, red ball."

static char g_bin[1024], g_tok[1024];

static void paths(void) {
    lq_test_shared("models/stories260K/stories260K.bin", g_bin, sizeof g_bin);
    lq_test_shared("models/stories260K/tok512.bin", g_tok, sizeof g_tok);
}

typedef struct text_buf {
    char data[4096];
    size_t len;
} text_buf;

static bool collect(void *user, int32_t id, const char *bytes, size_t len) {
    (void)id;
    text_buf *b = user;
    if (b->len + len >= sizeof b->data) return false;
    memcpy(b->data + b->len, bytes, len);
    b->len += len;
    b->data[b->len] = 0;
    return true;
}

static void check_greedy(const char *model_path, const char *tok_path) {
    lq_model *m = NULL;
    cr_assert_eq(lq_model_load(model_path, &m), LQ_OK, "%s", lq_last_error());
    lq_tokenizer *tok = NULL;
    cr_assert_eq(lq_eval_load_tokenizer(m, model_path, tok_path, &tok), LQ_OK, "%s",
                 lq_last_error());
    lq_session *s = NULL;
    cr_assert_eq(lq_session_create(m, 0, NULL, &s), LQ_OK, "%s", lq_last_error());
    int32_t bos = lq_tokenizer_bos(tok);
    cr_assert_eq(bos, 1);
    text_buf out = {.len = 0};
    lq_gen_result r;
    cr_assert_eq(lq_eval_generate_greedy(m, s, tok, &bos, 1, 60, collect, &out, &r), LQ_OK, "%s",
                 lq_last_error());
    cr_expect_eq(r.n_prompt, 1);
    cr_expect(r.n_generated > 0);
    cr_expect(strncmp(out.data, REF_TEXT, strlen(REF_TEXT)) == 0,
              "greedy text differs:\n got: %s\nwant: %s", out.data, REF_TEXT);
    lq_session_free(s);
    lq_tokenizer_free(tok);
    lq_model_free(m);
}

Test(generate, greedy_bin_matches_llama2c_sample, .init = paths) {
    check_greedy(g_bin, g_tok);
}

Test(generate, greedy_hf_dir_matches_llama2c_sample, .init = paths) {
    char tmpl[] = "/tmp/lq_test_gen_XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    char dir[64], cmd[8192];
    snprintf(dir, sizeof dir, "%s/stories260K", tmpl);
    cr_assert_eq(lq_test_convert_stories260k(dir, cmd, sizeof cmd), 0, "quant-convert failed: %s", cmd);
    check_greedy(dir, NULL);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
    cr_assert_eq(system(cmd), 0);
}

/* Decoding token by token through the KV cache must give the logits a single prefill of the
 * same sequence gives. The sequence is the first reference unit of tinystories_sample (token
 * ids from shared/data/reference), long enough (374 tokens) to exercise many cache positions.
 * Tolerance: prefill runs the matmuls as GEMM (BLAS) and decode as GEMV, so the f32 sums are
 * taken in different orders; over 5 layers of dim 64 that moves logits (|l| <= ~20) by a few
 * 1e-6 relative. |dec - pre| <= 1e-4 + 1e-4 |pre| leaves margin while still catching any
 * wrong position, stale cache row or GQA mix-up (those change logits by O(1)). */
Test(generate, decode_steps_match_prefill_logits, .init = paths) {
    char ref_path[1024];
    lq_test_shared("data/reference/stories260K_tok512.tinystories_sample.tokens.txt", ref_path,
                   sizeof ref_path);
    char *ref = lq_test_read_file(ref_path, NULL);
    cr_assert_not_null(ref);
    char *p = ref;
    long n = strtol(p, &p, 10);
    cr_assert(n > 100 && n <= 512, "unit length %ld", n);
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    for (long i = 0; i < n; i++) ids[i] = (int32_t)strtol(p, &p, 10);
    free(ref);

    lq_model *m = NULL;
    /* the status and message taken before the assertion formats them (a CI run under heavy load
     * once failed here with an empty message; see the session 8 note) */
    const lq_status ls = lq_model_load(g_bin, &m);
    char why[512];
    snprintf(why, sizeof why, "%s", lq_last_error());
    cr_assert_eq(ls, LQ_OK, "%s: %s (%s)", g_bin, lq_status_name(ls), why);
    int vocab = lq_model_config(m)->vocab_size;
    float *pre = malloc((size_t)n * (size_t)vocab * sizeof *pre);
    float *dec = malloc((size_t)vocab * sizeof *dec);
    lq_session *s = NULL;
    cr_assert_eq(lq_session_create(m, (int)n, NULL, &s), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_forward(s, ids, (int)n, 0, pre, true), LQ_OK, "%s", lq_last_error());
    lq_session *s2 = NULL;
    cr_assert_eq(lq_session_create(m, (int)n, NULL, &s2), LQ_OK, "%s", lq_last_error());
    double worst = 0;
    for (long t = 0; t < n; t++) {
        cr_assert_eq(lq_forward(s2, ids + t, 1, (int)t, dec, false), LQ_OK, "%s",
                     lq_last_error());
        const float *row = pre + (size_t)t * (size_t)vocab;
        for (int v = 0; v < vocab; v++) {
            double d = fabs((double)dec[v] - row[v]);
            double lim = 1e-4 + 1e-4 * fabs(row[v]);
            if (d / lim > worst) worst = d / lim;
            cr_assert(d <= lim, "position %ld, logit %d: decode %.7g, prefill %.7g", t, v,
                      dec[v], row[v]);
        }
        cr_expect_eq(lq_eval_argmax(dec, vocab), lq_eval_argmax(row, vocab), "position %ld", t);
    }
    cr_log_info("worst |decode - prefill| / tolerance = %.3f", worst);
    /* chunked prefill (two halves at positions 0 and n/2) must agree with one prefill too */
    int half = (int)n / 2;
    float *part = malloc((size_t)(n - half) * (size_t)vocab * sizeof *part);
    cr_assert_eq(lq_forward(s2, ids, half, 0, part, true), LQ_OK);
    cr_assert_eq(lq_forward(s2, ids + half, (int)n - half, half, part, true), LQ_OK);
    for (long t = half; t < n; t++)
        for (int v = 0; v < vocab; v++) {
            float a = part[(size_t)(t - half) * vocab + v], b = pre[(size_t)t * vocab + v];
            cr_assert(fabs((double)a - b) <= 1e-4 + 1e-4 * fabs(b),
                      "chunked prefill position %ld logit %d: %.7g vs %.7g", t, v, a, b);
        }
    /* out of range: the cache holds n positions */
    cr_expect_eq(lq_forward(s2, ids, 1, (int)n, dec, false), LQ_ERR_INVALID_ARG);
    free(part);
    lq_session_free(s);
    lq_session_free(s2);
    free(pre);
    free(dec);
    free(ids);
    lq_model_free(m);
}

Test(generate, argmax_takes_lowest_index_on_ties) {
    const float x[5] = {1.0f, 3.0f, -2.0f, 3.0f, 0.5f};
    cr_expect_eq(lq_eval_argmax(x, 5), 1);
    cr_expect_eq(lq_eval_argmax(x, 1), 0);
}
