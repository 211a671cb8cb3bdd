/* test_batch.c - batched decoding over the paged KV cache (lq_batch.h).
 *
 * - a step of B sequences (different lengths, prefill chunks next to decode tokens) gives every
 *   sequence the logits lq_forward gives it alone on its own contiguous cache (the engine
 *   test_generate checks against llama2.c's documented sample), f32 and W8A8 (per-token
 *   activation quantization: a token's row must not see its neighbours), and with compact
 *   (f16 / q8 / fp8) caches against single sessions with the same cache type;
 * - the page pool: reuse after close, a clear error when exhausted that changes nothing, pages
 *   counted as tokens arrive;
 * - copy-on-write prefix sharing (fork) and truncation (speculative rollback);
 * - the tiled online-softmax attention against the two-pass attention and against the
 *   definition in doubles, over lengths that are not multiples of the tile, with a window.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../libquant/src/model/backend.h"
#include "libquant/lq_batch.h"
#include "lq_test_util.h"

static uint32_t g_rng = 12345u;
static uint32_t rnd(void) {
    g_rng = g_rng * 1664525u + 1013904223u;
    return g_rng >> 8;
}
static float rndf(void) { return (float)(rnd() % 20001) / 10000.0f - 1.0f; }

static lq_model *load_stories(void) {
    char bin[1024];
    lq_test_shared("models/stories260K/stories260K.bin", bin, sizeof bin);
    lq_model *m = NULL;
    cr_assert_eq(lq_model_load(bin, &m), LQ_OK, "%s", lq_last_error());
    return m;
}

/* max |a - b| over n values, and max |b| */
static void diff(const float *a, const float *b, int n, double *dmax, double *bmax) {
    *dmax = *bmax = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > *dmax || isnan(d)) *dmax = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > *bmax) *bmax = fabs(b[i]);
    }
}

enum { NSEQ = 5, MAXLEN = 80 };

/* B sequences through a batch, each step checked against lq_forward on one session per
 * sequence. rel_tol bounds max |logit diff| relative to the largest logit of the row. */
static double check_batch_vs_single(lq_model *m, lq_pool *pool, double rel_tol, const char *what) {
    double worst = 0;
    const lq_config *c = lq_model_config(m);
    const int V = c->vocab_size;
    /* prompt lengths around the page size (16): inside one page, exactly one, across two and three */
    const int plen[NSEQ] = {1, 5, 16, 17, 33};
    int32_t toks[NSEQ][MAXLEN];
    for (int i = 0; i < NSEQ; i++)
        for (int t = 0; t < MAXLEN; t++) toks[i][t] = 1 + (int32_t)(rnd() % (uint32_t)(V - 1));
    lq_session *single[NSEQ];
    for (int i = 0; i < NSEQ; i++) cr_assert_eq(lq_session_create(m, 128, pool, &single[i]), LQ_OK, "%s", lq_last_error());
    lq_batch *b = NULL;
    lq_batch_opts bo = {.n_ctx = 128};
    cr_assert_eq(lq_batch_create(m, &bo, pool, &b), LQ_OK, "%s", lq_last_error());
    int seq[NSEQ], len[NSEQ] = {0};
    for (int i = 0; i < NSEQ; i++) cr_assert_eq(lq_batch_seq_open(b, &seq[i]), LQ_OK);
    float *bl = malloc((size_t)NSEQ * 8 * (size_t)V * sizeof(float));
    float *sl = malloc((size_t)8 * (size_t)V * sizeof(float));
    /* steps: all prompts at once; decode all; a mixed step (seq 2 a 3-token chunk with all
     * logits, seq 4 skipped, the rest decode); decode all twice */
    const int steps[5][NSEQ] = {{1, 5, 16, 17, 33}, {1, 1, 1, 1, 1}, {1, 1, 3, 1, 0}, {1, 1, 1, 1, 1}, {2, 1, 1, 1, 1}};
    for (int st = 0; st < 5; st++) {
        lq_batch_item it[NSEQ];
        int ni = 0;
        for (int i = 0; i < NSEQ; i++) {
            if (!steps[st][i]) continue;
            it[ni++] = (lq_batch_item){.seq = seq[i], .tokens = &toks[i][len[i]], .n = steps[st][i],
                                       .logits = steps[st][i] > 1 && st > 0 ? LQ_BATCH_LOGITS_ALL : LQ_BATCH_LOGITS_LAST};
        }
        cr_assert_eq(lq_batch_forward(b, it, ni, bl), LQ_OK, "%s step %d: %s", what, st, lq_last_error());
        const float *row = bl;
        for (int k = 0; k < ni; k++) {
            int i = 0;
            while (seq[i] != it[k].seq) i++;
            bool all = it[k].logits == LQ_BATCH_LOGITS_ALL;
            cr_assert_eq(lq_forward(single[i], it[k].tokens, it[k].n, len[i], sl, all), LQ_OK, "%s", lq_last_error());
            int rows = all ? it[k].n : 1;
            for (int r = 0; r < rows; r++) {
                double d, mx;
                diff(row + (size_t)r * V, sl + (size_t)r * V, V, &d, &mx);
                cr_expect(d <= rel_tol * mx, "%s step %d seq %d row %d: max diff %g, max logit %g", what, st, i, r,
                          d, mx);
                worst = fmax(worst, d / mx);
            }
            row += (size_t)rows * V;
            len[i] += it[k].n;
            cr_expect_eq(lq_batch_seq_len(b, seq[i]), len[i]);
        }
    }
    (void)plen;
    lq_kv_stats ks;
    lq_batch_kv_stats(b, &ks);
    int64_t want_pages = 0, held = 0;
    for (int i = 0; i < NSEQ; i++) {
        want_pages += (len[i] + 15) / 16;
        held += len[i];
    }
    cr_expect_eq(ks.pages_in_use, want_pages, "pages in use %lld, want %lld", (long long)ks.pages_in_use,
                 (long long)want_pages);
    cr_expect_eq(ks.tokens_held, held);
    free(bl);
    free(sl);
    lq_batch_free(b);
    for (int i = 0; i < NSEQ; i++) lq_session_free(single[i]);
    return worst;
}

/* f32: the GEMM path sums the same products as the GEMV path in another order (a few f32 ulps
 * per layer), and the tiled softmax normalises once at the end; 1e-4 of the logit scale is
 * ~100x that rounding and far below any real difference (a wrong position shifts logits by O(1)). */
Test(batch, equals_single_decodes_f32) {
    lq_model *m = load_stories();
    lq_pool *pool = lq_pool_create(2);
    check_batch_vs_single(m, NULL, 1e-4, "f32 1 thread");
    check_batch_vs_single(m, pool, 1e-4, "f32 2 threads");

    lq_pool_free(pool);
    lq_model_free(m);
}

/* Compact caches (f16, q8, fp8; static scales too): the batch's pages hold rows of the same
 * type, encoded by the same kv_store op and read by the same lq_kv.h loops as a single session's
 * contiguous cache, so the two agree as f32 caches do, except where the batch's GEMM and the
 * single session's GEMV round a K / V value to either side of a code boundary: that value then
 * moves by one step of its grid (f16: 2^-10 of it; q8: 1/127 of its head's max; fp8: 1/8 of it).
 * 1e-2 of the logit scale, as W8A8's activation codes; measured on these schedules: f16 5e-5 to
 * 3.6e-4 (a few f16 flips), q8 and fp8 below 1e-6 (none). test_kv_cache checks the batch against the
 * f32 program over the encoded rows to f32 rounding. */
Test(batch, equals_single_decodes_compact_caches, .timeout = 120) {
    lq_model *m = load_stories();
    lq_pool *pool = lq_pool_create(2);
    for (int t = LQ_KV_F16; t < LQ_KV_TYPE_COUNT; t++) {
        cr_assert_eq(lq_model_set_kv_cache(m, (lq_kv_type)t), LQ_OK);
        const double w = check_batch_vs_single(m, pool, 1e-2, lq_kv_type_name((lq_kv_type)t));
        cr_log_info("%s cache: batch vs single, worst max |diff| / max |logit| %.3g", lq_kv_type_name((lq_kv_type)t), w);
    }
    /* static per-head scales (a checkpoint's kv_cache_scheme): one range of +-4 for every head of
     * every layer; values beyond it saturate, as the encoder specifies */
    const lq_config *c = lq_model_config(m);
    const int n = c->n_layers * c->n_kv_heads;
    float *ks = malloc((size_t)n * sizeof *ks), *vs = malloc((size_t)n * sizeof *vs);
    for (int t = LQ_KV_Q8; t <= LQ_KV_FP8; t++) {
        const float top = t == LQ_KV_Q8 ? 127.0f : 448.0f;
        for (int i = 0; i < n; i++) ks[i] = vs[i] = 4.0f / top;
        cr_assert_eq(lq_model_set_kv_scales(m, ks, vs), LQ_OK, "%s", lq_last_error());
        cr_assert_eq(lq_model_set_kv_cache(m, (lq_kv_type)t), LQ_OK);
        const double w = check_batch_vs_single(m, pool, 1e-2, t == LQ_KV_Q8 ? "static q8" : "static fp8");
        cr_log_info("static %s cache: batch vs single, worst %.3g", lq_kv_type_name((lq_kv_type)t), w);
    }
    free(ks);
    free(vs);
    lq_pool_free(pool);
    lq_model_free(m);
}

/* W8A8: a row's activation codes are its own (per-token scale); prefill equals decode bit for
 * bit (test_formats), so only attention's rounding differs, which can move an activation across
 * a code boundary: one step of 1/127 of a row's max in one value. 1e-2 of the logit scale. */
Test(batch, equals_single_decodes_w8a8) {
    char root[] = "/tmp/lq_test_batch_XXXXXX", fp32[512], w8[512], cmd[4096], args[2048];
    cr_assert_not_null(mkdtemp(root));
    snprintf(fp32, sizeof fp32, "%s/fp32", root);
    snprintf(w8, sizeof w8, "%s/w8a8", root);
    cr_assert_eq(lq_test_convert_stories260k(fp32, cmd, sizeof cmd), 0, "%s", cmd);
    snprintf(args, sizeof args, "--model '%s' --scheme W8A8 --out '%s'", fp32, w8);
    char err[512];
    cr_assert_eq(lq_test_run_tool("quant-ptq", args, root, err, sizeof err), 0, "%s", err);
    lq_model *m = NULL;
    cr_assert_eq(lq_model_load(w8, &m), LQ_OK, "%s", lq_last_error());
    check_batch_vs_single(m, NULL, 1e-2, "w8a8");
    lq_model_free(m);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    cr_expect_eq(system(cmd), 0);
}

Test(kv_pages, reuse_exhaustion_and_counts) {
    lq_model *m = load_stories();
    lq_batch *b = NULL;
    lq_batch_opts bo = {.page_tokens = 16, .max_pages = 4, .n_ctx = 256};
    cr_assert_eq(lq_batch_create(m, &bo, NULL, &b), LQ_OK, "%s", lq_last_error());
    int32_t toks[64];
    for (int i = 0; i < 64; i++) toks[i] = 1 + i;
    const int V = lq_model_config(m)->vocab_size;
    float *lg = malloc((size_t)V * sizeof(float));
    int a, c;
    cr_assert_eq(lq_batch_seq_open(b, &a), LQ_OK);
    lq_batch_item it = {.seq = a, .tokens = toks, .n = 17};
    cr_assert_eq(lq_batch_forward(b, &it, 1, lg), LQ_OK, "%s", lq_last_error());
    lq_kv_stats ks;
    lq_batch_kv_stats(b, &ks);
    cr_expect_eq(ks.pages_in_use, 2); /* memory follows the tokens: 17 positions, 2 pages */
    cr_expect_eq(ks.pages_allocated, 2);
    it = (lq_batch_item){.seq = a, .tokens = toks, .n = 47};
    cr_assert_eq(lq_batch_forward(b, &it, 1, lg), LQ_OK, "%s", lq_last_error()); /* 64 = 4 pages */
    cr_assert_eq(lq_batch_seq_open(b, &c), LQ_OK);
    it = (lq_batch_item){.seq = c, .tokens = toks, .n = 1};
    cr_assert_eq(lq_batch_forward(b, &it, 1, lg), LQ_ERR_NOMEM);
    cr_expect(strstr(lq_last_error(), "pool exhausted") && strstr(lq_last_error(), "4 pages"), "%s", lq_last_error());
    cr_expect_eq(lq_batch_seq_len(b, c), 0); /* the failed step changed nothing */
    /* truncation returns whole pages past the new length */
    cr_assert_eq(lq_batch_seq_truncate(b, a, 40), LQ_OK, "%s", lq_last_error());
    lq_batch_kv_stats(b, &ks);
    cr_expect_eq(ks.pages_in_use, 3);
    cr_expect_eq(lq_batch_seq_truncate(b, a, 41), LQ_ERR_INVALID_ARG); /* only shorter */
    /* two items, the second cannot get its pages: neither advances, its taken page goes back */
    lq_batch_item two[2] = {{.seq = a, .tokens = toks, .n = 1}, {.seq = c, .tokens = toks, .n = 17}};
    cr_assert_eq(lq_batch_forward(b, two, 2, lg), LQ_ERR_NOMEM);
    cr_expect_eq(lq_batch_seq_len(b, a), 40);
    cr_expect_eq(lq_batch_seq_len(b, c), 0);
    lq_batch_kv_stats(b, &ks);
    cr_expect_eq(ks.pages_in_use, 3);
    lq_batch_seq_close(b, a);
    lq_batch_kv_stats(b, &ks);
    cr_expect_eq(ks.pages_in_use, 0);
    cr_expect_eq(ks.pages_allocated, 4);
    it = (lq_batch_item){.seq = c, .tokens = toks, .n = 64};
    cr_assert_eq(lq_batch_forward(b, &it, 1, lg), LQ_OK, "%s", lq_last_error());
    lq_batch_kv_stats(b, &ks);
    cr_expect_eq(ks.pages_in_use, 4);
    cr_expect_eq(ks.pages_allocated, 4, "freed pages are reused, not reallocated");
    /* bad items: a closed sequence, a duplicate, a token out of range */
    it = (lq_batch_item){.seq = a, .tokens = toks, .n = 1};
    cr_expect_eq(lq_batch_forward(b, &it, 1, lg), LQ_ERR_INVALID_ARG);
    lq_batch_seq_close(b, c);
    lq_batch_seq_close(b, c); /* twice: a no-op */
    free(lg);
    lq_batch_free(b);
    lq_model_free(m);
}

/* Copy-on-write: a fork shares the prompt's pages; the first write into the shared last page
 * copies it, the full first page stays shared; each branch then decodes exactly as a session
 * that saw only its own tokens. Truncation rolls a branch back (rejected draft tokens). */
Test(kv_pages, fork_copy_on_write_and_truncate) {
    lq_model *m = load_stories();
    const int V = lq_model_config(m)->vocab_size;
    lq_batch *b = NULL;
    lq_batch_opts bo = {.n_ctx = 128};
    cr_assert_eq(lq_batch_create(m, &bo, NULL, &b), LQ_OK, "%s", lq_last_error());
    int32_t prompt[20], x = 7, y = 300, z[5] = {11, 12, 13, 14, 15};
    for (int i = 0; i < 20; i++) prompt[i] = 1 + (int32_t)(rnd() % (uint32_t)(V - 1));
    float *lg = malloc((size_t)2 * V * sizeof(float)), *ref = malloc((size_t)V * sizeof(float));
    int a, f, g;
    cr_assert_eq(lq_batch_seq_open(b, &a), LQ_OK);
    lq_batch_item it = {.seq = a, .tokens = prompt, .n = 20};
    cr_assert_eq(lq_batch_forward(b, &it, 1, lg), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_batch_seq_fork(b, a, &f), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_batch_seq_fork(b, a, &g), LQ_OK, "%s", lq_last_error());
    lq_kv_stats ks;
    lq_batch_kv_stats(b, &ks);
    cr_expect_eq(ks.pages_in_use, 2, "three sequences of 20 positions share 2 pages");
    cr_expect_eq(lq_batch_seq_len(b, f), 20);
    lq_batch_seq_close(b, g); /* a holder leaving does not free shared pages */
    lq_batch_item two[2] = {{.seq = a, .tokens = &x, .n = 1}, {.seq = f, .tokens = &y, .n = 1}};
    cr_assert_eq(lq_batch_forward(b, two, 2, lg), LQ_OK, "%s", lq_last_error());
    lq_batch_kv_stats(b, &ks);
    cr_expect_eq(ks.pages_in_use, 3, "page 0 shared, page 1 copied once");
    lq_session *s = NULL;
    cr_assert_eq(lq_session_create(m, 128, NULL, &s), LQ_OK);
    double d, mx;
    for (int k = 0; k < 2; k++) {
        int32_t seqtok[21];
        memcpy(seqtok, prompt, sizeof prompt);
        seqtok[20] = k == 0 ? x : y;
        cr_assert_eq(lq_forward(s, seqtok, 21, 0, ref, false), LQ_OK);
        diff(lg + (size_t)k * V, ref, V, &d, &mx);
        cr_expect(d <= 1e-4 * mx, "branch %d: max diff %g of %g", k, d, mx);
    }
    /* roll f back to 10 positions and continue with z: as if it had seen prompt[0..10) + z */
    cr_assert_eq(lq_batch_seq_truncate(b, f, 10), LQ_OK);
    it = (lq_batch_item){.seq = f, .tokens = z, .n = 5};
    cr_assert_eq(lq_batch_forward(b, &it, 1, lg), LQ_OK, "%s", lq_last_error());
    int32_t seqtok[15];
    memcpy(seqtok, prompt, 10 * sizeof *seqtok);
    memcpy(seqtok + 10, z, sizeof z);
    cr_assert_eq(lq_forward(s, seqtok, 15, 0, ref, false), LQ_OK);
    diff(lg, ref, V, &d, &mx);
    cr_expect(d <= 1e-4 * mx, "after truncate: max diff %g of %g", d, mx);
    /* a's cache was not touched by f's writes into what used to be their shared page 0 */
    it = (lq_batch_item){.seq = a, .tokens = &y, .n = 1};
    cr_assert_eq(lq_batch_forward(b, &it, 1, lg), LQ_OK, "%s", lq_last_error());
    int32_t at[22];
    memcpy(at, prompt, sizeof prompt);
    at[20] = x;
    at[21] = y;
    cr_assert_eq(lq_forward(s, at, 22, 0, ref, false), LQ_OK);
    diff(lg, ref, V, &d, &mx);
    cr_expect(d <= 1e-4 * mx, "parent after the child's rollback: max diff %g of %g", d, mx);
    lq_session_free(s);
    free(lg);
    free(ref);
    lq_batch_free(b);
    lq_model_free(m);
}

/* The CPU table's tiled attention_paged against its two-pass attention over one contiguous
 * cache: two sequences in one call (a decode-like tail of 3 rows, a prefill-like head of 4),
 * lengths that are not multiples of the tile, tiles of 16 and 7, full causal and a window of 5,
 * for every cache row type (f32, f16, q8 and fp8 with per-row scales, q8 and fp8 with static
 * ones): the pages hold the same encoded rows as the contiguous cache, read by the same lq_kv.h
 * loops. Both are f32 softmax-weighted sums of the same products; they differ in the order of
 * the exp/normalise steps only: 1e-5 absolute on outputs of magnitude <= 1. */
Test(attention, tiled_online_softmax_matches_two_pass) {
    const int n_heads = 6, n_kv = 2, hd = 40, kvd = n_kv * hd, qd = n_heads * hd, n_ctx = 64;
    const int lens[] = {1, 7, 15, 17, 33, 50}, tiles[] = {16, 7}, windows[] = {0, 5};
    const float statics[2] = {2.0f / 127, 1.5f / 448}; /* per kv head; some |K| = 2 values saturate fp8 */
    void *ctx = NULL;
    lq_pool *pool = lq_pool_create(2);
    cr_assert_eq(lq_backend_cpu.ctx_create(NULL, n_ctx, pool, &ctx), LQ_OK);
    cr_assert(lq_backend_cpu.supports(LQ_OP_ATTENTION_PAGED));
    cr_expect_str_eq(lq_op_name(LQ_OP_ATTENTION_PAGED), "attention_paged");
    float *kc = malloc((size_t)n_ctx * kvd * sizeof(float)), *vc = malloc((size_t)n_ctx * kvd * sizeof(float));
    char *kq = malloc((size_t)n_ctx * kvd * sizeof(float)), *vq = malloc((size_t)n_ctx * kvd * sizeof(float));
    float *q = malloc((size_t)8 * qd * sizeof(float));
    float *out = malloc((size_t)8 * qd * sizeof(float)), *ref = malloc((size_t)8 * qd * sizeof(float));
    for (int i = 0; i < n_ctx * kvd; i++) {
        kc[i] = 2.0f * rndf();
        vc[i] = rndf();
    }
    for (int i = 0; i < 8 * qd; i++) q[i] = 2.0f * rndf();
    for (int tv = 0; tv < LQ_KV_TYPE_COUNT + 2; tv++) {
        const lq_kv_type t = tv < LQ_KV_TYPE_COUNT ? (lq_kv_type)tv : tv == LQ_KV_TYPE_COUNT ? LQ_KV_Q8 : LQ_KV_FP8;
        const float *fixed = tv >= LQ_KV_TYPE_COUNT ? statics : NULL;
        const size_t rb = lq_kv_row_bytes(t, n_kv, hd, fixed);
        for (int r = 0; r < n_ctx; r++) { /* the contiguous cache the two-pass attention reads */
            lq_kv_store_row(t, kq + (size_t)r * rb, kc + (size_t)r * kvd, n_kv, hd, fixed);
            lq_kv_store_row(t, vq + (size_t)r * rb, vc + (size_t)r * kvd, n_kv, hd, fixed);
        }
        for (size_t ti = 0; ti < 2; ti++) {
            const int pt = tiles[ti], n_pages = (n_ctx + pt - 1) / pt;
            void **pages = malloc((size_t)n_pages * sizeof *pages);
            for (int p = 0; p < n_pages; p++) { /* [K rows | V rows], as one layer of kv_paged.h */
                pages[p] = calloc((size_t)2 * pt, rb);
                for (int r = 0; r < pt && p * pt + r < n_ctx; r++) {
                    memcpy((char *)pages[p] + (size_t)r * rb, kq + (size_t)(p * pt + r) * rb, rb);
                    memcpy((char *)pages[p] + (size_t)(pt + r) * rb, vq + (size_t)(p * pt + r) * rb, rb);
                }
            }
            for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
                for (size_t wi = 0; wi < 2; wi++) {
                    const int L = lens[li], n0 = L < 3 ? L : 3, n1 = L < 4 ? L : 4;
                    lq_attn_seq seqs[2] = {{.row0 = 0, .n_tok = n0, .pos0 = L - n0, .pages = pages},
                                           {.row0 = n0, .n_tok = n1, .pos0 = 0, .pages = pages}};
                    lq_attn_paged_args a = {.out = out, .q = q, .seqs = seqs, .n_seqs = 2, .n_rows = n0 + n1,
                                            .k_off = 0, .v_off = (int64_t)pt * (int64_t)rb, .page_tokens = pt,
                                            .n_heads = n_heads, .n_kv_heads = n_kv, .head_dim = hd,
                                            .window = windows[wi], .scale = 1.0f / sqrtf((float)hd), .kv = t,
                                            .kv_row_bytes = rb, .k_fixed = fixed, .v_fixed = fixed};
                    cr_assert_eq(lq_backend_cpu.attention_paged(ctx, &a), LQ_OK, "%s", lq_last_error());
                    for (int k = 0; k < 2; k++) {
                        const bool f32 = t == LQ_KV_F32;
                        lq_attn_args r = {.out = ref + (size_t)seqs[k].row0 * qd, .q = q + (size_t)seqs[k].row0 * qd,
                                          .kc = f32 ? kc : NULL, .vc = f32 ? vc : NULL, .n_tok = seqs[k].n_tok,
                                          .pos0 = seqs[k].pos0, .n_heads = n_heads, .n_kv_heads = n_kv,
                                          .head_dim = hd, .window = windows[wi], .scale = a.scale, .kv = t,
                                          .kq = f32 ? NULL : kq, .vq = f32 ? NULL : vq, .kv_row_bytes = rb,
                                          .k_fixed = fixed, .v_fixed = fixed};
                        cr_assert_eq(lq_backend_cpu.attention(ctx, &r), LQ_OK);
                    }
                    for (int i = 0; i < (n0 + n1) * qd; i++)
                        cr_assert(fabsf(out[i] - ref[i]) <= 1e-5f, "%s%s len %d tile %d window %d: [%d] %g vs %g",
                                  lq_kv_type_name(t), fixed ? " static" : "", L, pt, windows[wi], i, out[i], ref[i]);
                }
            for (int p = 0; p < n_pages; p++) free(pages[p]);
            free(pages);
        }
    }
    free(kc); free(vc); free(kq); free(vq); free(q); free(out); free(ref);
    lq_backend_cpu.ctx_free(ctx);
    lq_pool_free(pool);
}
