/* test_spec.c - speculative decoding (lq_spec.h).
 *
 * References: greedy speculative text against the target's own greedy text (lq_sample_generate,
 * itself pinned to llama2.c's documented stories260K sample in test_generate.c, and checked here
 * against that text too); the sampling rule against distributions computed in this file by hand
 * (softmax, temperature, top-k written out) with a chi-square test at a fixed seed; the Wilson-
 * Hilferty approximation for the chi-square quantile (Wilson & Hilferty 1931). */
#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "libquant/lq_ptq.h"
#include "lq_eval.h"
#include "lq_test_util.h"

#define REF_TEXT "Once upon a time, there was a little girl named Lily. She loved to play " \
                 "outside in the park. One day, she saw a big, red ball."

/* chi-square quantile for df degrees of freedom at the upper-tail z (3.09: p = 0.001) */
static double chi2_crit(int df, double z) {
    double a = 2.0 / (9.0 * df);
    return df * pow(1 - a + z * sqrt(a), 3);
}

/* ---- the rejection rule alone ------------------------------------------------------------------ */

static int32_t draw_by_hand(const double *p, int n, lq_rng *r) {
    double u = lq_rng_uniform(r), c = 0;
    for (int i = 0; i < n; i++) {
        c += p[i];
        if (u < c) return i;
    }
    return n - 1;
}

/* x ~ q, then the rule: the output must be distributed as p, whatever q is. */
Test(spec_rule, output_follows_target) {
    const double p[5] = {0.5, 0.2, 0.2, 0.1, 0.0};
    const double q[5] = {0.1, 0.3, 0.1, 0.2, 0.3};
    enum { N = 200000 };
    long cnt[5] = {0}, accepted = 0;
    lq_rng r;
    lq_rng_seed(&r, 1234, 7);
    for (int i = 0; i < N; i++) {
        int32_t x = draw_by_hand(q, 5, &r), y = -1;
        if (lq_spec_accept(p, q, 5, x, &r, &y)) {
            y = x;
            accepted++;
        }
        cr_assert(y >= 0 && y < 5);
        cnt[y]++;
    }
    cr_expect_eq(cnt[4], 0, "a token of target probability 0 was emitted %ld times", cnt[4]);
    double chi2 = 0;
    for (int i = 0; i < 4; i++) chi2 += pow(cnt[i] - N * p[i], 2) / (N * p[i]);
    cr_expect(chi2 < chi2_crit(3, 3.09), "chi2 %.2f (df 3)", chi2);
    /* acceptance probability = sum min(p, q) = 0.1 + 0.2 + 0.1 + 0.1 = 0.5 (Leviathan's alpha) */
    double acc = (double)accepted / N, se = sqrt(0.25 / N);
    cr_expect(fabs(acc - 0.5) < 4 * se, "acceptance %.4f, expected 0.5", acc);
}

/* ---- a synthetic model pair: whole-loop distribution and rollback -------------------------------- */

/* Logits depend on the last token and on the parity of 3s in the whole context, so a cache that
 * keeps a rejected token changes them. forward refuses a position that is not the next one. */
enum { SV = 4, SCAP = 64 };
typedef struct synth_lm {
    const float (*table)[2][SV];  /* [last][parity] -> logits */
    int32_t cache[SCAP];
    int valid;
    int errors;
} synth_lm;

static const float k_target[SV][2][SV] = {
    {{1.0f, 0.2f, -0.5f, 0.3f}, {-0.2f, 0.9f, 0.4f, 0.0f}},
    {{0.1f, -1.0f, 1.2f, 0.5f}, {0.7f, 0.3f, -0.3f, 1.1f}},
    {{0.0f, 0.6f, 0.2f, -0.8f}, {1.3f, -0.4f, 0.5f, 0.2f}},
    {{-0.6f, 0.4f, 0.9f, 0.1f}, {0.2f, 1.0f, -1.1f, 0.6f}},
};
/* deliberately different: rejections and residual draws happen often */
static const float k_draft[SV][2][SV] = {
    {{0.2f, 1.0f, 0.1f, -0.4f}, {0.5f, -0.3f, 0.9f, 0.2f}},
    {{1.1f, 0.0f, -0.2f, 0.4f}, {-0.5f, 0.8f, 0.6f, 0.1f}},
    {{0.3f, -0.2f, 1.0f, 0.7f}, {0.0f, 0.5f, -0.6f, 1.2f}},
    {{0.9f, -0.7f, 0.2f, 0.5f}, {0.4f, 0.1f, 0.8f, -0.9f}},
};

static void synth_row(const synth_lm *m, int upto, float *out) {
    int par = 0;
    for (int i = 0; i <= upto; i++) par ^= m->cache[i] == 3;
    memcpy(out, m->table[m->cache[upto]][par], SV * sizeof *out);
}

static lq_status synth_forward(const lq_spec_lm *lm, const int32_t *tok, int n, int pos,
                               float *logits, bool all) {
    synth_lm *m = lm->impl;
    if (pos != m->valid || pos + n > SCAP) {
        m->errors++;
        return lq_fail(LQ_ERR_INVALID_ARG, "synthetic: forward at %d, cache holds %d", pos, m->valid);
    }
    memcpy(m->cache + pos, tok, (size_t)n * sizeof *tok);
    m->valid = pos + n;
    for (int r = all ? 0 : n - 1; r < n; r++) synth_row(m, pos + r, logits + (all ? r : 0) * SV);
    return LQ_OK;
}

static lq_status synth_truncate(const lq_spec_lm *lm, int n_pos) {
    synth_lm *m = lm->impl;
    if (n_pos > m->valid) {
        m->errors++;
        return lq_fail(LQ_ERR_INVALID_ARG, "synthetic: truncate to %d of %d", n_pos, m->valid);
    }
    m->valid = n_pos;
    return LQ_OK;
}

static lq_spec_lm synth(synth_lm *m) {
    return (lq_spec_lm){.impl = m, .n_vocab = SV, .n_ctx = SCAP, .forward = synth_forward,
                        .truncate = synth_truncate};
}

/* p(next | context) under temperature t and top-k k, written out by hand */
static void hand_probs(const float (*table)[2][SV], const int32_t *ctx, int n, double t, int k,
                       double *p) {
    int par = 0;
    for (int i = 0; i < n; i++) par ^= ctx[i] == 3;
    const float *l = table[ctx[n - 1]][par];
    double mx = -1e30, s = 0;
    for (int i = 0; i < SV; i++) mx = fmax(mx, l[i]);
    for (int i = 0; i < SV; i++) {
        int better = 0; /* rank: how many beat i (ties to the lower id) */
        for (int j = 0; j < SV; j++) better += l[j] > l[i] || (l[j] == l[i] && j < i);
        p[i] = k > 0 && better >= k ? 0 : exp((l[i] - mx) / t);
        s += p[i];
    }
    for (int i = 0; i < SV; i++) p[i] /= s;
}

typedef struct seq_rec {
    int32_t ids[8];
    int n;
} seq_rec;

static bool record(void *user, const lq_sample_info *t) {
    seq_rec *s = user;
    if (s->n < 8) s->ids[s->n++] = t->id;
    return true;
}

/* The joint distribution of the first 3 tokens after prompt [0] must be the target's, for a
 * draft-max that makes cycles end in rejections, full acceptance and the max_new cut. */
static void check_joint(double temp, int top_k, int K) {
    enum { G = 3, N = 60000, CELLS = SV * SV * SV };
    lq_sample_params sp = lq_sample_params_default();
    sp.temperature = (float)temp;
    sp.top_k = top_k;
    sp.repeat_last_n = 0;
    static long cnt[CELLS];
    memset(cnt, 0, sizeof cnt);
    long drafted = 0, accepted = 0;
    int32_t prompt[1] = {0};
    lq_spec_opts o = {.draft_max = K, .max_new = G};
    for (int i = 0; i < N; i++) {
        synth_lm tm = {.table = k_target}, dm = {.table = k_draft};
        lq_spec_lm t = synth(&tm), d = synth(&dm);
        sp.seed = 1000003ull * (uint64_t)i + 17;
        seq_rec rec = {.n = 0};
        lq_spec_result r;
        cr_assert_eq(lq_spec_generate(&t, &d, &sp, prompt, 1, &o, record, &rec, &r), LQ_OK, "%s",
                     lq_last_error());
        cr_assert_eq(tm.errors + dm.errors, 0, "cache contract broken: %s", lq_last_error());
        cr_assert_eq(rec.n, G);
        cnt[(rec.ids[0] * SV + rec.ids[1]) * SV + rec.ids[2]]++;
        drafted += r.n_drafted;
        accepted += r.n_accepted;
    }
    cr_expect(accepted > 0 && accepted < drafted, "accepted %ld of %ld", accepted, drafted);
    double chi2 = 0, chi2_draft = 0;
    int df = -1;
    for (int c = 0; c < CELLS; c++) {
        int32_t seq[4] = {0, c / (SV * SV), (c / SV) % SV, c % SV};
        double e = 1, ed = 1, p[SV];
        for (int j = 1; j <= G; j++) {
            hand_probs(k_target, seq, j, temp, top_k, p);
            e *= p[seq[j]];
            hand_probs(k_draft, seq, j, temp, top_k, p);
            ed *= p[seq[j]];
        }
        if (e == 0) {
            cr_expect_eq(cnt[c], 0, "sequence %d has target probability 0, drawn %ld times", c, cnt[c]);
            continue;
        }
        chi2 += pow(cnt[c] - N * e, 2) / (N * e);
        if (ed > 0) chi2_draft += pow(cnt[c] - N * ed, 2) / (N * ed);
        df++;
    }
    double crit = chi2_crit(df, 3.09);
    cr_expect(chi2 < crit, "T %.2f top-k %d K %d: chi2 %.1f >= %.1f (df %d)", temp, top_k, K, chi2,
              crit, df);
    /* power: the same counts are far from the draft's own distribution */
    cr_expect(chi2_draft > 10 * crit, "chi2 against the draft only %.1f", chi2_draft);
}

Test(spec_rule, whole_loop_joint_t1_k2, .timeout = 120) { check_joint(1.0, 0, 2); }
Test(spec_rule, whole_loop_joint_t07_topk3_k3, .timeout = 120) { check_joint(0.7, 3, 3); }

Test(spec_rule, vocab_mismatch_refused) {
    synth_lm tm = {.table = k_target}, dm = {.table = k_draft};
    lq_spec_lm t = synth(&tm), d = synth(&dm);
    d.n_vocab = SV + 1;
    lq_sample_params sp = lq_sample_params_default();
    lq_spec_opts o = {.draft_max = 2, .max_new = 4};
    int32_t prompt[1] = {0};
    cr_expect_eq(lq_spec_generate(&t, &d, &sp, prompt, 1, &o, NULL, NULL, NULL), LQ_ERR_MISMATCH);
    cr_expect(strstr(lq_last_error(), "4") && strstr(lq_last_error(), "5"), "%s", lq_last_error());
}

/* Greedy on the synthetic pair: the target's argmax chain, whatever the draft proposes. */
Test(spec_rule, greedy_synthetic_equals_argmax_chain) {
    synth_lm tm = {.table = k_target}, dm = {.table = k_draft};
    lq_spec_lm t = synth(&tm), d = synth(&dm);
    lq_sample_params sp = lq_sample_params_default();
    lq_spec_opts o = {.draft_max = 3, .max_new = 8};
    int32_t ctx[16] = {2};
    seq_rec rec = {.n = 0};
    lq_spec_result r;
    cr_assert_eq(lq_spec_generate(&t, &d, &sp, ctx, 1, &o, record, &rec, &r), LQ_OK, "%s",
                 lq_last_error());
    cr_assert_eq(rec.n, 8);
    for (int j = 1; j <= 8; j++) {
        double p[SV];
        hand_probs(k_target, ctx, j, 1.0, 0, p);
        int best = 0;
        for (int i = 1; i < SV; i++)
            if (p[i] > p[best]) best = i;
        ctx[j] = best;
        cr_expect_eq(rec.ids[j - 1], best, "token %d: %d, want %d", j, rec.ids[j - 1], best);
    }
    cr_expect(r.n_accepted < r.n_drafted, "the draft should miss sometimes");
    cr_expect_eq(r.n_generated, 8);
}

/* ---- stories260K: greedy speculative = greedy alone, rollback of the session cache ---------------- */

static char g_root[256], g_fp32[300], g_w4[300];

static void setup(void) {
    char tmpl[] = "/tmp/lq_test_spec_XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    snprintf(g_root, sizeof g_root, "%s", tmpl);
    snprintf(g_fp32, sizeof g_fp32, "%s/fp32", g_root);
    snprintf(g_w4, sizeof g_w4, "%s/w4", g_root);
    char cmd[4096];
    cr_assert_eq(lq_test_convert_stories260k(g_fp32, cmd, sizeof cmd), 0, "quant-convert failed: %s", cmd);
    /* 4-bit per row: a draft that is right most of the time and wrong often enough to roll back */
    cr_assert_eq(mkdir(g_w4, 0755), 0);
    lq_ptq_opts po = {.scheme = LQ_WFMT_W4A16, .group_size = -1};
    cr_assert_eq(lq_ptq_quantize(g_fp32, g_w4, &po, NULL), LQ_OK, "%s", lq_last_error());
    /* the library writes the weights and config; the tokenizer travels as quant-ptq copies it */
    snprintf(cmd, sizeof cmd, "cp '%s/tokenizer.json' '%s/'", g_fp32, g_w4);
    cr_assert_eq(system(cmd), 0);
}

static void teardown(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(spec, .init = setup, .fini = teardown);

typedef struct ids_rec {
    int32_t ids[512];
    int n;
} ids_rec;

static bool record_ids(void *user, const lq_sample_info *t) {
    ids_rec *s = user;
    if (s->n < 512) s->ids[s->n++] = t->id;
    return true;
}

static void greedy_alone(const lq_model *m, int max_new, ids_rec *out) {
    lq_session *s = NULL;
    cr_assert_eq(lq_session_create(m, 0, NULL, &s), LQ_OK, "%s", lq_last_error());
    lq_sample_params sp = lq_sample_params_default();
    lq_sampler *smp = NULL;
    cr_assert_eq(lq_sampler_create(&sp, &smp), LQ_OK);
    int32_t bos = 1;
    lq_sample_gen_opts o = {.max_new = max_new};
    out->n = 0;
    cr_assert_eq(lq_sample_generate(m, s, smp, &bos, 1, &o, record_ids, out, NULL), LQ_OK, "%s",
                 lq_last_error());
    lq_sampler_free(smp);
    lq_session_free(s);
}

static lq_spec_result spec_run(const lq_model *tm, const lq_model *dm, int K, int max_new,
                               const lq_sample_params *sp, ids_rec *out) {
    lq_session *ts = NULL, *ds = NULL;
    cr_assert_eq(lq_session_create(tm, 0, NULL, &ts), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_session_create(dm, 0, NULL, &ds), LQ_OK, "%s", lq_last_error());
    lq_spec_lm t = lq_spec_lm_session(ts, tm), d = lq_spec_lm_session(ds, dm);
    int32_t bos = 1;
    lq_spec_opts o = {.draft_max = K, .max_new = max_new, .measure_alpha = true};
    lq_spec_result r;
    out->n = 0;
    cr_assert_eq(lq_spec_generate(&t, &d, sp, &bos, 1, &o, record_ids, out, &r), LQ_OK, "%s",
                 lq_last_error());
    lq_session_free(ds);
    lq_session_free(ts);
    return r;
}

Test(spec, greedy_equals_greedy_alone, .timeout = 120) {
    lq_model *tm = NULL, *dm = NULL;
    cr_assert_eq(lq_model_load(g_fp32, &tm), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_model_load(g_w4, &dm), LQ_OK, "%s", lq_last_error());
    enum { MAX_NEW = 200 };
    ids_rec ref;
    greedy_alone(tm, MAX_NEW, &ref);
    cr_assert_eq(ref.n, MAX_NEW);
    /* the reference itself is llama2.c's documented sample */
    lq_tokenizer *tok = NULL;
    cr_assert_eq(lq_eval_load_tokenizer(tm, g_fp32, NULL, &tok), LQ_OK, "%s", lq_last_error());
    char text[4096];
    size_t len = 0;
    int32_t prev = 1;
    for (int i = 0; i < ref.n && len + 64 < sizeof text; i++) {
        len += lq_tokenizer_decode_token(tok, prev, ref.ids[i], text + len, sizeof text - len);
        prev = ref.ids[i];
    }
    text[len] = 0;
    cr_expect(strncmp(text, REF_TEXT, strlen(REF_TEXT)) == 0, "reference text: %s", text);
    lq_tokenizer_free(tok);
    lq_sample_params sp = lq_sample_params_default();
    const int ks[] = {1, 3, 8};
    for (size_t k = 0; k < sizeof ks / sizeof *ks; k++) {
        ids_rec got;
        lq_spec_result r = spec_run(tm, dm, ks[k], MAX_NEW, &sp, &got);
        cr_expect_eq(got.n, ref.n, "K %d: %d tokens, want %d", ks[k], got.n, ref.n);
        for (int i = 0; i < got.n && i < ref.n; i++)
            if (got.ids[i] != ref.ids[i]) {
                cr_expect_fail("K %d: token %d is %d, greedy alone %d", ks[k], i, got.ids[i], ref.ids[i]);
                break;
            }
        cr_log_info("K %d: accepted %lld of %lld, %lld cycles, alpha %.3f", ks[k], (long long)r.n_accepted, (long long)r.n_drafted, (long long)r.n_cycles, r.alpha_sum / r.n_judged);
        /* rollback was exercised: some proposals rejected, most accepted */
        cr_expect(r.n_accepted < r.n_drafted && 2 * r.n_accepted > r.n_drafted,
                  "K %d: accepted %lld of %lld", ks[k], (long long)r.n_accepted, (long long)r.n_drafted);
        cr_expect(r.n_cycles < MAX_NEW, "K %d: %lld target forwards for %d tokens", ks[k],
                  (long long)r.n_cycles, MAX_NEW);
        /* every cycle emits its accepted tokens plus one: generated = 1 (prefill) + accepted + cycles */
        cr_expect_eq(r.n_generated, 1 + r.n_accepted + r.n_cycles);
        cr_expect(r.alpha_sum > 0 && r.alpha_sum <= r.n_judged + 1e-9);
    }
    /* a model drafting for itself: every greedy proposal accepted */
    ids_rec self;
    lq_spec_result r = spec_run(tm, tm, 4, 64, &sp, &self);
    cr_expect_eq(r.n_accepted, r.n_drafted, "self-draft accepted %lld of %lld",
                 (long long)r.n_accepted, (long long)r.n_drafted);
    cr_expect(fabs(r.alpha_sum - (double)r.n_judged) < 1e-3 * r.n_judged, "self alpha %f of %lld",
              r.alpha_sum, (long long)r.n_judged);
    lq_model_free(dm);
    lq_model_free(tm);
}

/* Sampling on the real pair runs, honours max_new and stays within the target's vocabulary. */
Test(spec, sampling_runs, .timeout = 60) {
    lq_model *tm = NULL, *dm = NULL;
    cr_assert_eq(lq_model_load(g_fp32, &tm), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_model_load(g_w4, &dm), LQ_OK, "%s", lq_last_error());
    lq_sample_params sp = lq_sample_params_default();
    sp.temperature = 0.8f;
    sp.top_k = 40;
    sp.top_p = 0.95f;
    sp.seed = 5;
    ids_rec got;
    lq_spec_result r = spec_run(tm, dm, 4, 100, &sp, &got);
    cr_expect_eq(got.n, 100);
    cr_expect(r.n_accepted > 0 && r.n_accepted <= r.n_drafted);
    for (int i = 0; i < got.n; i++) cr_expect(got.ids[i] >= 0 && got.ids[i] < 512);
    lq_model_free(dm);
    lq_model_free(tm);
}

/* Rollback on a session: positions forgotten by truncate must not leak into later logits.
 * Forward [a b] and [c d], truncate to 2, forward [x y]: the logits equal those of a session that
 * only ever saw [a b] then [x y] (calls of the same shapes, so bit for bit: one forward of
 * [a b c d] would not do, because sgemm may round a token's row differently in a 4-row call
 * than in a 2-row one, as OpenBLAS's Haswell/Zen kernels do). */
Test(spec, session_truncate_forgets) {
    lq_model *m = NULL;
    cr_assert_eq(lq_model_load(g_fp32, &m), LQ_OK, "%s", lq_last_error());
    lq_session *s1 = NULL, *s2 = NULL;
    cr_assert_eq(lq_session_create(m, 32, NULL, &s1), LQ_OK);
    cr_assert_eq(lq_session_create(m, 32, NULL, &s2), LQ_OK);
    lq_spec_lm a = lq_spec_lm_session(s1, m), b = lq_spec_lm_session(s2, m);
    const int32_t abcd[4] = {1, 403, 261, 370}, xy[2] = {79, 5};
    int V = a.n_vocab;
    float *l1 = malloc(2 * (size_t)V * sizeof *l1), *l2 = malloc(4 * (size_t)V * sizeof *l2);
    cr_assert_eq(a.forward(&a, abcd, 2, 0, l2, true), LQ_OK);
    cr_assert_eq(a.forward(&a, abcd + 2, 2, 2, l2, true), LQ_OK);
    cr_assert_eq(a.truncate(&a, 2), LQ_OK);
    cr_assert_eq(a.forward(&a, xy, 2, 2, l1, true), LQ_OK);
    cr_assert_eq(b.forward(&b, abcd, 2, 0, l2, true), LQ_OK);
    cr_assert_eq(b.forward(&b, xy, 2, 2, l2, true), LQ_OK);
    cr_expect_arr_eq(l1, l2, 2 * (size_t)V * sizeof *l1, "logits after a rollback differ");
    cr_expect_neq(a.truncate(&a, 33), LQ_OK);
    free(l1);
    free(l2);
    lq_session_free(s1);
    lq_session_free(s2);
    lq_model_free(m);
}

/* ---- quant-run --draft ----------------------------------------------------------------------- */

Test(spec, quant_run_draft_greedy_and_refusal, .timeout = 60) {
    char args[1600], err[4096], out[1024];
    snprintf(args, sizeof args, "--model '%s' --draft '%s' --draft-max 3 --prompt 'Once upon a time' --max-tokens 60",
             g_fp32, g_w4);
    cr_assert_eq(lq_test_run_tool("quant-run", args, g_root, err, sizeof err), 0, "%s", err);
    cr_expect(strstr(err, "output identical to the target alone's") != NULL, "%s", err);
    cr_expect(strstr(err, "accepted ") && strstr(err, "mean accepted length"), "%s", err);
    snprintf(out, sizeof out, "%s/stdout.txt", g_root);
    char *text = lq_test_read_file(out, NULL);
    cr_assert_not_null(text);
    cr_expect(strncmp(text, REF_TEXT, strlen(REF_TEXT)) == 0, "%s", text);
    free(text);
    /* a draft with another vocabulary (TinyStories-656K: 2048 tokens): one line naming both */
    char other[512];
    lq_test_shared("models/TinyStories-656K", other, sizeof other);
    snprintf(args, sizeof args, "--model '%s' --draft '%s' --prompt 'Once' --max-tokens 5", g_fp32, other);
    int code = lq_test_run_tool("quant-run", args, g_root, err, sizeof err);
    cr_expect_eq(code, 3, "exit %d: %s", code, err);
    cr_expect(strstr(err, g_fp32) && strstr(err, other) && strstr(err, "512") && strstr(err, "2048"),
              "%s", err);
    cr_expect(strchr(err, '\n') == err + strlen(err) - 1, "more than one line: %s", err);
}

/* ---- lq_eval_draft ---------------------------------------------------------------------------- */

Test(spec, draft_eval_self_and_quantized, .timeout = 60) {
    lq_model *tm = NULL, *dm = NULL;
    cr_assert_eq(lq_model_load(g_fp32, &tm), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_model_load(g_w4, &dm), LQ_OK, "%s", lq_last_error());
    lq_tokenizer *tt = NULL, *dt = NULL;
    cr_assert_eq(lq_eval_load_tokenizer(tm, g_fp32, NULL, &tt), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_eval_load_tokenizer(dm, g_w4, NULL, &dt), LQ_OK, "%s", lq_last_error());
    char path[1024];
    size_t len = 0;
    char *text = lq_test_read_file(lq_test_shared("data/tinystories_sample.txt", path, sizeof path), &len);
    cr_assert_not_null(text);
    lq_draft_eval_opts o = {.n_prompt = 32, .n_gen = 48, .draft_max = 4};
    o.chunks.max_chunks = 2;
    lq_draft_eval_result self, w4;
    cr_assert_eq(lq_eval_draft(tm, tt, tm, tt, NULL, text, len, &o, &self), LQ_OK, "%s", lq_last_error());
    /* the model as its own draft: every greedy guess accepted, p = q everywhere */
    cr_expect_eq(self.n_chunks, 2);
    cr_expect_eq(self.n_generated, 2 * 48);
    cr_expect_eq(self.accept_rate, 1.0);
    cr_expect(fabs(self.alpha - 1.0) < 1e-4, "alpha %f", self.alpha);
    cr_assert_eq(lq_eval_draft(tm, tt, dm, dt, NULL, text, len, &o, &w4), LQ_OK, "%s", lq_last_error());
    cr_expect(w4.accept_rate > 0.3 && w4.accept_rate < 1.0, "W4 acceptance %f", w4.accept_rate);
    cr_expect(w4.accept_pos >= w4.accept_rate && w4.alpha < 1.0);
    cr_expect_eq(w4.n_generated, self.n_generated);
    /* another tokenizer: refused */
    lq_tokenizer *other = NULL;
    char tok656[1024];
    lq_test_shared("models/TinyStories-656K/tokenizer.json", tok656, sizeof tok656);
    cr_assert_eq(lq_tokenizer_load_for_model(NULL, tok656, 2048, &other), LQ_OK, "%s", lq_last_error());
    cr_expect_eq(lq_eval_draft(tm, tt, dm, other, NULL, text, len, &o, &w4), LQ_ERR_MISMATCH);
    lq_tokenizer_free(other);
    free(text);
    lq_tokenizer_free(dt);
    lq_tokenizer_free(tt);
    lq_model_free(dm);
    lq_model_free(tm);
}

/* ---- over the paged cache (lq_batch.h) ---------------------------------------------------------- */

/* Greedy speculative decoding with target and draft as sequences of two paged batches: the text
 * of the target alone, the rejected positions returned to the pool by truncate. */
Test(spec, greedy_over_paged_batches, .timeout = 60) {
    lq_model *tm = NULL, *dm = NULL;
    cr_assert_eq(lq_model_load(g_fp32, &tm), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_model_load(g_w4, &dm), LQ_OK, "%s", lq_last_error());
    enum { MAX_NEW = 120 };
    ids_rec ref, got;
    greedy_alone(tm, MAX_NEW, &ref);
    lq_batch_opts bo = {.page_tokens = 4, .n_ctx = 256};
    lq_batch *tb = NULL, *db = NULL;
    cr_assert_eq(lq_batch_create(tm, &bo, NULL, &tb), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_batch_create(dm, &bo, NULL, &db), LQ_OK, "%s", lq_last_error());
    int ts = -1, ds = -1;
    cr_assert_eq(lq_batch_seq_open(tb, &ts), LQ_OK);
    cr_assert_eq(lq_batch_seq_open(db, &ds), LQ_OK);
    lq_spec_lm t = lq_spec_lm_batch(tb, ts), d = lq_spec_lm_batch(db, ds);
    lq_sample_params sp = lq_sample_params_default();
    lq_spec_opts o = {.draft_max = 3, .max_new = MAX_NEW};
    int32_t bos = 1;
    lq_spec_result r;
    got.n = 0;
    cr_assert_eq(lq_spec_generate(&t, &d, &sp, &bos, 1, &o, record_ids, &got, &r), LQ_OK, "%s",
                 lq_last_error());
    cr_expect_eq(got.n, ref.n);
    cr_expect_arr_eq(got.ids, ref.ids, (size_t)ref.n * sizeof *ref.ids, "paged speculative text differs");
    cr_expect(r.n_accepted < r.n_drafted, "no rejection: rollback not exercised");
    /* the caches hold the accepted text only: the target all but the last token */
    cr_expect_eq(lq_batch_seq_len(tb, ts), 1 + MAX_NEW - 1, "target holds %d", lq_batch_seq_len(tb, ts));
    cr_expect(lq_batch_seq_len(db, ds) <= 1 + MAX_NEW - 1, "draft holds %d", lq_batch_seq_len(db, ds));
    lq_kv_stats st;
    lq_batch_kv_stats(tb, &st);
    cr_expect_eq(st.pages_in_use, (st.tokens_held + 3) / 4, "%lld pages for %lld tokens",
                 (long long)st.pages_in_use, (long long)st.tokens_held);
    lq_batch_free(db);
    lq_batch_free(tb);
    lq_model_free(dm);
    lq_model_free(tm);
}

/* quant-eval --draft-eval and --compare --draft-eval: the numbers lq_eval_draft gives, printed */
Test(spec, quant_eval_draft_eval_cli, .timeout = 60) {
    char args[1600], err[4096], path[512], out[1024];
    lq_test_shared("data/tinystories_sample.txt", path, sizeof path);
    snprintf(args, sizeof args, "--model '%s' --file '%s' --draft-eval '%s' --chunks 1 --json", g_fp32, path, g_fp32);
    cr_assert_eq(lq_test_run_tool("quant-eval", args, g_root, err, sizeof err), 0, "%s", err);
    snprintf(out, sizeof out, "%s/stdout.txt", g_root);
    char *j = lq_test_read_file(out, NULL);
    cr_assert_not_null(j);
    cr_expect(strstr(j, "\"acceptance_rate\": 1.0") != NULL, "self-draft: %s", j);
    free(j);
    snprintf(args, sizeof args, "--compare '%s' '%s' --file '%s' --chunks 1 --draft-eval --html '%s/r.html'",
             g_fp32, g_w4, path, g_root);
    cr_assert_eq(lq_test_run_tool("quant-eval", args, g_root, err, sizeof err), 0, "%s", err);
    char *md = lq_test_read_file(out, NULL);
    cr_assert_not_null(md);
    cr_expect(strstr(md, "| accept % | alpha |") != NULL, "%s", md);
    free(md);
    snprintf(out, sizeof out, "%s/r.html", g_root);
    char *html = lq_test_read_file(out, NULL);
    cr_assert_not_null(html);
    cr_expect(strstr(html, "draft accept %") != NULL);
    free(html);
    /* --draft-eval without a text, or with --kld: refused as bad arguments */
    snprintf(args, sizeof args, "--model '%s' --draft-eval '%s'", g_fp32, g_fp32);
    cr_expect_eq(lq_test_run_tool("quant-eval", args, g_root, err, sizeof err), 2, "%s", err);
}
