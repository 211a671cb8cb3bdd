/* test_smooth.c - AWQ and SmoothQuant (lq_smooth_transform).
 *
 * References: the float model computes the same logits before and after smoothing (the transform
 * is an identity up to f32 rounding; its weights must have changed, else that proves nothing);
 * AWQ's search of one Linear mapping against a reference written here from the paper /
 * llm-compressor formulas (explicit tokens, not the H shortcut; its own RTN); the AWQ checkpoint's
 * logits are closer to the float model's than RTN's at the same scheme, measured here through the
 * engine; calibration on WikiText-2, the logit comparison on TinyStories text.
 * Models: stories260K (GQA: v -> o is skipped) and a synthetic 2-layer MHA model written here
 * (every mapping applies).
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "libquant/lq_checkpoint.h"
#include "libquant/lq_gptq.h"
#include "libquant/lq_model.h"
#include "libquant/lq_ptq.h"
#include "libquant/lq_recipe.h"
#include "libquant/lq_safetensors.h"
#include "libquant/lq_smooth.h"
#include "libquant/lq_tokenizer.h"
#include "lq_test_util.h"

static char g_root[256], g_260k[512], g_mha[512], g_calib[512];

static uint64_t g_rng;
static float frand(void) { /* uniform in [-1, 1) */
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((g_rng >> 40) & 0xFFFFFF) / 8388608.0f - 1.0f;
}

/* A 2-layer Llama with as many kv heads as heads (so v -> o applies): dim 64, 4 heads, hidden
 * 160, vocab 512 (stories260K's tokenizer). Norm weights vary and a few input channels are 8x
 * larger, as in real models, so the scales are far from 1. */
static void write_mha(const char *dir) {
    cr_assert_eq(mkdir(dir, 0755), 0);
    const char *cfg = "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64, \"intermediate_size\": 160, "
                      "\"num_attention_heads\": 4, \"num_key_value_heads\": 4, \"num_hidden_layers\": 2, "
                      "\"vocab_size\": 512, \"max_position_embeddings\": 256, \"rms_norm_eps\": 1e-5, "
                      "\"rope_theta\": 10000.0, \"tie_word_embeddings\": true, \"torch_dtype\": \"float32\", "
                      "\"hidden_act\": \"silu\", \"model_type\": \"llama\"}";
    cr_assert_eq(lq_config_json_save(dir, cfg), LQ_OK, "%s", lq_last_error());
    char path[700], tok[1600], src[700];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    lq_st_writer *w;
    cr_assert_eq(lq_st_writer_create(path, &w), LQ_OK);
    typedef struct { const char *name; int64_t r, c; } tspec;
    tspec t[32];
    int n = 0;
    t[n++] = (tspec){"model.embed_tokens.weight", 512, 64};
    t[n++] = (tspec){"model.norm.weight", 64, 0};
    static char names[2][9][96];
    const char *parts[9] = {"input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                            "self_attn.o_proj", "post_attention_layernorm", "mlp.gate_proj", "mlp.up_proj",
                            "mlp.down_proj"};
    const int64_t rows[9] = {64, 64, 64, 64, 64, 64, 160, 160, 64}, cols[9] = {0, 64, 64, 64, 64, 0, 64, 64, 160};
    for (int l = 0; l < 2; l++)
        for (int p = 0; p < 9; p++) {
            snprintf(names[l][p], sizeof names[l][p], "model.layers.%d.%s.weight", l, parts[p]);
            t[n++] = (tspec){names[l][p], rows[p], cols[p]};
        }
    for (int i = 0; i < n; i++) {
        int64_t shape[2] = {t[i].r, t[i].c};
        cr_assert_eq(lq_st_writer_declare(w, t[i].name, LQ_DTYPE_F32, t[i].c ? 2 : 1, shape), LQ_OK);
    }
    g_rng = 7;
    for (int i = 0; i < n; i++) {
        int64_t k = t[i].r * (t[i].c ? t[i].c : 1);
        float *v = malloc((size_t)k * sizeof *v);
        for (int64_t j = 0; j < k; j++) {
            if (!t[i].c) v[j] = 1.0f + 0.5f * frand();
            else v[j] = (strstr(t[i].name, "embed") ? 0.5f : 0.15f) * frand() * (j % t[i].c % 13 == 0 ? 8.0f : 1.0f);
        }
        cr_assert_eq(lq_st_writer_write(w, v, (size_t)k * sizeof *v), LQ_OK);
        free(v);
    }
    cr_assert_eq(lq_st_writer_commit(w), LQ_OK, "%s", lq_last_error());
    snprintf(src, sizeof src, "%s/tokenizer.json", g_260k);
    snprintf(tok, sizeof tok, "cp '%s' '%s/'", src, dir);
    cr_assert_eq(system(tok), 0);
}

static void setup(void) {
    char tmpl[] = "/tmp/lq_test_smooth_XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    snprintf(g_root, sizeof g_root, "%s", tmpl);
    snprintf(g_mha, sizeof g_mha, "%s/mha", g_root);
    char cmd[4096];
    cr_assert_eq(lq_test_calib_fixture(g_root, 32768, g_260k, g_calib, cmd, sizeof cmd), 0, "calibration fixture: %s", cmd);
    write_mha(g_mha);
}

static void teardown(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(smooth, .init = setup, .fini = teardown);

static const char *g_calib_list[1];

static lq_smooth_opts opts(lq_smooth_method m) {
    g_calib_list[0] = g_calib;
    return (lq_smooth_opts){.method = m, .calib = {.files = g_calib_list, .n_files = 1, .n_samples = 8,
                                                                .sample_len = 128, .seed = 1},
                            .group_size = 32, .alpha = -1.0};
}

static void out_dir(const char *name, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%s", g_root, name);
    cr_assert_eq(mkdir(buf, 0755), 0);
}

/* All logits of the first 96 tokens of the TinyStories sample (n x vocab, caller frees). */
static float *logits_of(const char *dir, int *n_out, int *vocab) {
    lq_model *m;
    cr_assert_eq(lq_model_load(dir, &m), LQ_OK, "%s", lq_last_error());
    lq_tokenizer *tok;
    cr_assert_eq(lq_tokenizer_load_for_model(g_260k, NULL, 512, &tok), LQ_OK, "%s", lq_last_error());
    char path[1024];
    size_t len = 0;
    char *text = lq_test_read_file(lq_test_shared("data/tinystories_sample.txt", path, sizeof path), &len);
    int32_t ids[96];
    int64_t n = 0;
    lq_status st = lq_tokenizer_encode(tok, text, len < 2000 ? len : 2000, false, false, ids, 96, &n);
    cr_assert(st == LQ_OK || st == LQ_ERR_INVALID_ARG);
    n = n < 96 ? n : 96;
    lq_session *s;
    cr_assert_eq(lq_session_create(m, 128, NULL, &s), LQ_OK);
    *vocab = lq_model_config(m)->vocab_size;
    float *lg = malloc((size_t)(n * *vocab) * sizeof *lg);
    cr_assert_eq(lq_forward(s, ids, (int)n, 0, lg, true), LQ_OK, "%s", lq_last_error());
    *n_out = (int)n;
    lq_session_free(s);
    lq_model_free(m);
    lq_tokenizer_free(tok);
    free(text);
    return lg;
}

/* Largest relative change of a tensor between two checkpoints. */
static double tensor_change(const char *a, const char *b, const char *name) {
    lq_checkpoint *ca, *cb;
    cr_assert_eq(lq_checkpoint_open(a, &ca), LQ_OK);
    cr_assert_eq(lq_checkpoint_open(b, &cb), LQ_OK);
    const lq_tensor *ta = lq_checkpoint_find(ca, name), *tb = lq_checkpoint_find(cb, name);
    cr_assert(ta && tb, "%s", name);
    double d = 0.0;
    for (int64_t i = 0; i < lq_tensor_numel(ta); i++) {
        double x = lq_tensor_get_f32(ta, i), y = lq_tensor_get_f32(tb, i);
        d = fmax(d, fabs(x - y) / (fabs(x) + 1e-6));
    }
    lq_checkpoint_close(ca);
    lq_checkpoint_close(cb);
    return d;
}

/* The smoothed float model's logits equal the original's to f32 rounding: each token's logit row
 * within 2e-5 of its max |logit| (a logit is a sum of ~64 products through 2-5 layers; f32's
 * 6e-8 per operation stays far below), while the norms and the o / down columns really moved. */
static void folding_keeps_logits(const char *model, lq_smooth_method meth, const char *name, bool mha) {
    char out[600];
    out_dir(name, out, sizeof out);
    lq_smooth_opts o = opts(meth);
    lq_smooth_summary sum;
    cr_assert_eq(lq_smooth_transform(model, out, &o, &sum), LQ_OK, "%s", lq_last_error());
    const lq_config *c;
    lq_checkpoint *ck;
    cr_assert_eq(lq_checkpoint_open(model, &ck), LQ_OK);
    c = lq_checkpoint_config(ck);
    const int64_t per_layer = meth == LQ_SMOOTH_SMOOTHQUANT ? 2 : mha ? 4 : 3;
    cr_expect_eq(sum.n_maps, per_layer * c->n_layers, "%lld mappings", (long long)sum.n_maps);
    cr_expect_eq(sum.n_skipped, meth == LQ_SMOOTH_AWQ && !mha ? c->n_layers : 0);
    lq_checkpoint_close(ck);
    cr_expect_gt(tensor_change(model, out, "model.layers.0.input_layernorm.weight"), 1e-2);
    cr_expect_gt(tensor_change(model, out, "model.layers.0.post_attention_layernorm.weight"), 1e-2);
    if (meth == LQ_SMOOTH_AWQ) cr_expect_gt(tensor_change(model, out, "model.layers.0.mlp.down_proj.weight"), 1e-2);
    if (meth == LQ_SMOOTH_AWQ && mha) cr_expect_gt(tensor_change(model, out, "model.layers.1.self_attn.o_proj.weight"), 1e-2);
    int n, v, n2, v2;
    float *a = logits_of(model, &n, &v), *b = logits_of(out, &n2, &v2);
    cr_assert(n == n2 && v == v2 && n > 32);
    for (int t = 0; t < n; t++) {
        double mx = 0.0, d = 0.0;
        for (int k = 0; k < v; k++) {
            mx = fmax(mx, fabs(a[t * v + k]));
            d = fmax(d, fabs(a[t * v + k] - b[t * v + k]));
        }
        cr_assert_leq(d, 2e-5 * mx, "token %d: logits moved by %g (max |logit| %g)", t, d, mx);
    }
    free(a);
    free(b);
    lq_smooth_summary_free(&sum);
}

Test(smooth, awq_folding_keeps_logits_stories260k, .timeout = 300) {
    folding_keeps_logits(g_260k, LQ_SMOOTH_AWQ, "awq260k", false);
}
Test(smooth, awq_folding_keeps_logits_mha, .timeout = 300) { folding_keeps_logits(g_mha, LQ_SMOOTH_AWQ, "awqmha", true); }
Test(smooth, smoothquant_folding_keeps_logits_stories260k, .timeout = 300) {
    folding_keeps_logits(g_260k, LQ_SMOOTH_SMOOTHQUANT, "sq260k", false);
}
Test(smooth, smoothquant_folding_keeps_logits_mha, .timeout = 300) {
    folding_keeps_logits(g_mha, LQ_SMOOTH_SMOOTHQUANT, "sqmha", true);
}

/* Mean square error of all logits against the float model's. */
static double logit_mse(const char *ref, const char *dir) {
    int n, v, n2, v2;
    float *a = logits_of(ref, &n, &v), *b = logits_of(dir, &n2, &v2);
    double e = 0.0;
    for (int64_t i = 0; i < (int64_t)n * v; i++) e += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    free(a);
    free(b);
    return e / ((double)n * v);
}

/* AWQ then W4A16 g32 RTN is closer to the float model than W4A16 g32 RTN alone, on text it did
 * not calibrate on; and on the calibration inputs every mapping's chosen error is at most
 * plain RTN's (the grid holds scales 1), strictly lower on most. */
Test(smooth, awq_beats_rtn, .timeout = 600) {
    char sm[600], awq[600], rtn[600];
    out_dir("awq_float", sm, sizeof sm);
    out_dir("awq_w4", awq, sizeof awq);
    out_dir("rtn_w4", rtn, sizeof rtn);
    lq_smooth_opts o = opts(LQ_SMOOTH_AWQ);
    o.calib.n_samples = 16;
    lq_smooth_summary sum;
    cr_assert_eq(lq_smooth_transform(g_260k, sm, &o, &sum), LQ_OK, "%s", lq_last_error());
    int lower = 0;
    for (int64_t i = 0; i < sum.n_maps; i++) {
        cr_expect_leq(sum.maps[i].err_best, sum.maps[i].err_rtn, "%s", sum.maps[i].smooth);
        lower += sum.maps[i].err_best < 0.99 * sum.maps[i].err_rtn;
    }
    cr_expect_geq(lower, sum.n_maps / 2, "%d of %lld mappings improved by AWQ", lower, (long long)sum.n_maps);
    lq_smooth_summary_free(&sum);
    lq_ptq_opts p = {.scheme = LQ_WFMT_W4A16, .group_size = 32, .group_fallback = LQ_PTQ_FALLBACK_CHANNEL};
    cr_assert_eq(lq_ptq_quantize(sm, awq, &p, NULL), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_ptq_quantize(g_260k, rtn, &p, NULL), LQ_OK, "%s", lq_last_error());
    double ea = logit_mse(g_260k, awq), er = logit_mse(g_260k, rtn);
    cr_expect_lt(ea, 0.95 * er, "logit MSE vs f32: AWQ %g, RTN %g", ea, er);
}

/* ---- AWQ's search against a reference written from llm-compressor's formulas ------------------- */

typedef struct cap {
    int layer;
    float *x;                    /* captured down_proj inputs (n x 160) */
    int64_t n, cap;
} cap;

static void capture_down(void *user, const lq_linear_input *in) {
    cap *c = user;
    if (in->layer != c->layer || strcmp(in->role, "down") != 0) return;
    if (c->n + in->n_tokens > c->cap) {
        c->cap = 2 * (c->n + in->n_tokens);
        c->x = realloc(c->x, (size_t)(c->cap * in->cols) * sizeof *c->x);
    }
    memcpy(c->x + c->n * in->cols, in->x, (size_t)(in->n_tokens * in->cols) * sizeof *c->x);
    c->n += in->n_tokens;
}

/* compressed-tensors' symmetric int4 group RTN: scale = max|v| / 7.5, q = clamp(round(v / scale)) */
static void ref_fake_quant(const float *W, int64_t rows, int64_t cols, int64_t g, const float *s, float *out) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c0 = 0; c0 < cols; c0 += g) {
            float amax = 0.0f;
            for (int64_t k = 0; k < g; k++) amax = fmaxf(amax, fabsf(W[r * cols + c0 + k] * s[c0 + k]));
            const float sc = amax / 7.5f;
            for (int64_t k = 0; k < g; k++) {
                float v = W[r * cols + c0 + k] * s[c0 + k];
                float q = sc > 0 ? fminf(fmaxf(rintf(v / sc), -8.0f), 7.0f) : 0.0f;
                out[r * cols + c0 + k] = q * sc / s[c0 + k];
            }
        }
}

/* The down_proj mapping (up -> down) of each layer of the MHA model: the reference collects
 * down_proj's float inputs itself (a plain forward with the linear hook over the same samples),
 * runs llm-compressor's grid (duo scaling: (0, false) then 19 ratios k / 18 with
 * s = x^r / (w^(1-r) + 1e-4), clamp 1e-4, / sqrt(max min)), scores each by the output MSE over the
 * explicit tokens, and the written down_proj must be the original times the winning scales. */
Test(smooth, awq_search_matches_reference, .timeout = 300) {
    char out[600];
    out_dir("awq_ref", out, sizeof out);
    lq_smooth_opts o = opts(LQ_SMOOTH_AWQ);
    cr_assert_eq(lq_smooth_transform(g_mha, out, &o, NULL), LQ_OK, "%s", lq_last_error());
    lq_model *m;
    cr_assert_eq(lq_model_load(g_mha, &m), LQ_OK);
    lq_tokenizer *tok;
    cr_assert_eq(lq_tokenizer_load_for_model(g_mha, NULL, 512, &tok), LQ_OK);
    lq_calib_set cs;
    cr_assert_eq(lq_calib_samples(tok, g_calib_list, 1, 8, 128, 1, &cs), LQ_OK);
    lq_checkpoint *c0, *c1;
    cr_assert_eq(lq_checkpoint_open(g_mha, &c0), LQ_OK);
    cr_assert_eq(lq_checkpoint_open(out, &c1), LQ_OK);
    const int64_t rows = 64, cols = 160, g = 32;
    for (int layer = 0; layer < 2; layer++) {
        cap cp = {.layer = layer};
        lq_session *s;
        cr_assert_eq(lq_session_create(m, 128, NULL, &s), LQ_OK);
        lq_session_set_linear_hook(s, capture_down, &cp);
        float *lg = malloc((size_t)(128 * 512) * sizeof *lg);
        for (int64_t k = 0; k < cs.n_samples; k++)
            cr_assert_eq(lq_forward(s, cs.ids + k * cs.len, cs.len, 0, lg, false), LQ_OK);
        free(lg);
        lq_session_free(s);
        char name[128];
        snprintf(name, sizeof name, "model.layers.%d.mlp.down_proj.weight", layer);
        float W[64 * 160], Wq[64 * 160], xm[160], wm[160], sc[160], best_s[160];
        lq_tensor_read_f32(lq_checkpoint_find(c0, name), 0, rows * cols, W);
        for (int64_t c = 0; c < cols; c++) {
            double a = 0.0, w = 0.0;
            for (int64_t t = 0; t < cp.n; t++) a += fabsf(cp.x[t * cols + c]);
            xm[c] = (float)(a / (double)cp.n);
            for (int64_t r = 0; r < rows; r++) {
                float gm = 0.0f;
                for (int64_t k = 0; k < g; k++) gm = fmaxf(gm, fabsf(W[r * cols + c / g * g + k]));
                w += fabsf(W[r * cols + c]) / (gm + 1e-6f);
            }
            wm[c] = (float)(w / (double)rows);
        }
        double best = INFINITY;
        for (int p = 0; p < 20; p++) {
            const bool duo = p > 0;
            const float ratio = p == 0 ? 0.0f : (float)(p - 1) / 18.0f;
            float mx = 0.0f, mn = INFINITY;
            for (int64_t c = 0; c < cols; c++) {
                float v = powf(xm[c], ratio);
                if (duo) v /= powf(wm[c], 1.0f - ratio) + 1e-4f;
                sc[c] = fmaxf(v, 1e-4f);
                mx = fmaxf(mx, sc[c]);
                mn = fminf(mn, sc[c]);
            }
            for (int64_t c = 0; c < cols; c++) sc[c] /= sqrtf(mx * mn);
            ref_fake_quant(W, rows, cols, g, sc, Wq);
            double e = 0.0;
            for (int64_t t = 0; t < cp.n; t++)
                for (int64_t r = 0; r < rows; r++) {
                    double y = 0.0;
                    for (int64_t c = 0; c < cols; c++) y += ((double)W[r * cols + c] - Wq[r * cols + c]) * cp.x[t * cols + c];
                    e += y * y;
                }
            e /= (double)(cp.n * rows);
            if (e < best) best = e, memcpy(best_s, sc, sizeof sc);
        }
        float moved = 0.0f; /* the winner is not scales 1, else this checks only the copy */
        for (int64_t c = 0; c < cols; c++) moved = fmaxf(moved, fabsf(best_s[c] - 1.0f));
        cr_expect_gt(moved, 0.05f, "layer %d: reference chose scales 1", layer);
        const lq_tensor *t1 = lq_checkpoint_find(c1, name);
        for (int64_t i = 0; i < rows * cols; i++) {
            const float want = W[i] * best_s[i % cols], got = lq_tensor_get_f32(t1, i);
            cr_assert_leq(fabsf(got - want), 1e-5f * fabsf(want) + 1e-9f, "layer %d %s[%lld]: %g, reference %g", layer,
                          name, (long long)i, got, want);
        }
        free(cp.x);
    }
    lq_checkpoint_close(c0);
    lq_checkpoint_close(c1);
    lq_calib_set_free(&cs);
    lq_tokenizer_free(tok);
    lq_model_free(m);
}

/* quant-ptq's smoothing options: refused where they do not apply, one line and exit 2. */
Test(smooth, cli_refusals) {
    char err[1024], *args = malloc(2048);
    static const struct { const char *scheme, *extra, *want; } cases[] = {
        {"W4A16", "--method awq", "needs calibration text"},
        {"W4A16", "--duo-scaling both", "go with --method awq"},
        {"W8A8", "--method awq --calib C", "searches for W4A16 or W8A16"},
        {"W8A8", "--smoothquant 1.5 --calib C", "must be in [0, 1]"},
        {"W4A16", "--method awq --calib C --smoothquant 0.5", "SmoothQuant's, not AWQ's"},
        {"W8A8", "--method smoothquant --calib C --awq-grid 10", "go with --method awq"},
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
        snprintf(args, 2048, "--model '%s' --scheme %s --out '%s/cli' %s", g_260k, cases[i].scheme, g_root, extra);
        cr_expect_eq(lq_test_run_tool("quant-ptq", args, g_root, err, sizeof err), 2, "%s", args);
        cr_expect(strstr(err, cases[i].want) != NULL, "%s: %s", args, err);
    }
    free(args);
}

/* The CLI end to end: --method smoothquant W8A8 writes a loadable int-quantized checkpoint and
 * leaves no smoothed temp directory behind. */
Test(smooth, cli_smoothquant_w8a8, .timeout = 300) {
    char err[1024], args[2048], out[600];
    snprintf(out, sizeof out, "%s/sq_cli", g_root);
    snprintf(args, sizeof args, "--model '%s' --scheme W8A8 --method smoothquant --calib '%s' --calib-samples 4 "
             "--calib-len 128 --out '%s' --json", g_260k, g_calib, out);
    cr_assert_eq(lq_test_run_tool("quant-ptq", args, g_root, err, sizeof err), 0, "%s: %s", args, err);
    char p[700];
    snprintf(p, sizeof p, "%s/.smoothed", out);
    cr_expect(!lq_test_exists(p), "%s left behind", p);
    lq_model *m;
    cr_assert_eq(lq_model_load(out, &m), LQ_OK, "%s", lq_last_error());
    lq_model_free(m);
}

/* ---- recipes ------------------------------------------------------------------------------------- */

/* llm-compressor's spellings (AWQModifier docstring and examples/awq, SmoothQuantModifier's
 * smoothing_strength): the transform-only AWQModifier followed by a QuantizationModifier, the
 * older all-in-one form with a scheme, SmoothQuant before W8A8; refusals name the argument. */
Test(smooth, recipes_parse_llm_compressor_yaml) {
    static const char awq_new[] = "quant_stage:\n  quant_modifiers:\n    AWQModifier:\n      duo_scaling: both\n"
                                  "      n_grid: 10\n    QuantizationModifier:\n      ignore: [\"lm_head\"]\n"
                                  "      scheme: W4A16\n      targets: [\"Linear\"]\n";
    static const char awq_old[] = "quant_stage:\n  quant_modifiers:\n    AWQModifier:\n      ignore: [\"lm_head\"]\n"
                                  "      scheme: W4A16_ASYM\n      targets: [\"Linear\"]\n      duo_scaling: false\n"
                                  "      offload_device: cpu\n";
    static const char sq[] = "sparsity_stage:\n  smoothing_modifiers:\n    SmoothQuantModifier:\n"
                             "      smoothing_strength: 0.8\n  quant_modifiers:\n    QuantizationModifier:\n"
                             "      scheme: W8A8\n      targets: Linear\n      ignore: [lm_head]\n";
    lq_recipe r;
    cr_assert_eq(lq_recipe_parse(awq_new, sizeof awq_new - 1, "awq_new.yaml", &r), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(r.n_stages, 1);
    cr_assert_eq(r.stages[0].n_mods, 2);
    const lq_recipe_modifier *m = &r.stages[0].mods[0];
    cr_expect_eq(m->kind, LQ_MOD_AWQ);
    cr_expect_eq(m->scheme, LQ_WFMT_NONE);
    cr_expect_eq(m->duo_scaling, (int)LQ_AWQ_DUO_BOTH);
    cr_expect_eq(m->n_grid, 10);
    cr_expect_eq(r.stages[0].mods[1].scheme, LQ_WFMT_W4A16);
    cr_expect(!r.stages[0].mods[1].asym);
    cr_expect(lq_modifier_available(LQ_MOD_AWQ) && lq_modifier_available(LQ_MOD_SMOOTHQUANT));
    lq_recipe_free(&r);
    cr_assert_eq(lq_recipe_parse(awq_old, sizeof awq_old - 1, "awq_old.yaml", &r), LQ_OK, "%s", lq_last_error());
    m = &r.stages[0].mods[0];
    cr_expect(m->scheme == LQ_WFMT_W4A16 && m->asym, "W4A16_ASYM is W4A16 with zero points");
    cr_expect_eq(m->group_size, 128);
    cr_expect_eq(m->duo_scaling, (int)LQ_AWQ_DUO_FALSE);
    cr_expect_eq(m->n_grid, 20);
    lq_recipe_free(&r);
    cr_assert_eq(lq_recipe_parse(sq, sizeof sq - 1, "sq.yaml", &r), LQ_OK, "%s", lq_last_error());
    cr_expect_eq(r.stages[0].mods[0].kind, LQ_MOD_SMOOTHQUANT);
    cr_expect_float_eq(r.stages[0].mods[0].smoothing_strength, 0.8, 1e-12);
    lq_recipe_free(&r);
    static const char bad[] = "quant_stage:\n  quant_modifiers:\n    AWQModifier:\n      mappings: []\n";
    cr_expect_eq(lq_recipe_parse(bad, sizeof bad - 1, "bad.yaml", &r), LQ_ERR_UNSUPPORTED);
    cr_expect(strstr(lq_last_error(), "mappings") && strstr(lq_last_error(), "bad.yaml:4"), "%s", lq_last_error());
    static const char bad2[] = "quant_stage:\n  quant_modifiers:\n    AWQModifier:\n      duo_scaling: maybe\n";
    cr_expect_neq(lq_recipe_parse(bad2, sizeof bad2 - 1, "bad2.yaml", &r), LQ_OK);
    cr_expect(strstr(lq_last_error(), "duo_scaling") != NULL, "%s", lq_last_error());
}

/* quant-recipe run: SmoothQuant then W8A8 writes a checkpoint the engine loads; without
 * calibration text the step is refused by name. */
Test(smooth, recipe_run_smoothquant_w8a8, .timeout = 300) {
    char path[600], args[4096], err[1024], out[600];
    snprintf(path, sizeof path, "%s/sq.yaml", g_root);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("quant_stage:\n  quant_modifiers:\n    SmoothQuantModifier:\n      smoothing_strength: 0.5\n"
          "    QuantizationModifier:\n      scheme: W8A8\n      targets: [Linear]\n      ignore: [lm_head]\n", f);
    fclose(f);
    snprintf(out, sizeof out, "%s/recipe_sq", g_root);
    snprintf(args, sizeof args, "run '%s' --model '%s' --out '%s'", path, g_260k, out);
    cr_expect_eq(lq_test_run_tool("quant-recipe", args, g_root, err, sizeof err), 2, "%s", err);
    cr_expect(strstr(err, "SmoothQuantModifier") && strstr(err, "needs calibration text"), "%s", err);
    snprintf(args, sizeof args, "run '%s' --model '%s' --out '%s' --calib '%s' --calib-samples 4 --calib-len 128",
             path, g_260k, out, g_calib);
    cr_assert_eq(lq_test_run_tool("quant-recipe", args, g_root, err, sizeof err), 0, "%s", err);
    lq_model *m;
    cr_assert_eq(lq_model_load(out, &m), LQ_OK, "%s", lq_last_error());
    lq_model_free(m);
}

/* quant-ptq --format gguf --method awq: the smoothed weights feed the GGUF writer; the file loads
 * and no temporary directory is left next to it. */
Test(smooth, cli_awq_gguf, .timeout = 300) {
    char err[1024], args[4096], out[600], cmd[1400];
    snprintf(out, sizeof out, "%s/awq.gguf", g_root);
    snprintf(args, sizeof args, "--format gguf --model '%s' --type Q8_0 --out '%s' --method awq --calib '%s' "
             "--calib-samples 4 --calib-len 128", g_260k, out, g_calib);
    cr_assert_eq(lq_test_run_tool("quant-ptq", args, g_root, err, sizeof err), 0, "%s: %s", args, err);
    lq_model *m;
    cr_assert_eq(lq_model_load(out, &m), LQ_OK, "%s", lq_last_error());
    lq_model_free(m);
    snprintf(cmd, sizeof cmd, "ls -d '%s'.smooth.* 2>/dev/null | grep -q .", out);
    cr_expect_neq(system(cmd), 0, "a temporary directory was left next to %s", out);
}
