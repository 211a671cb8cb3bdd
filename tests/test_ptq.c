/* test_ptq.c - quant-ptq end to end on stories260K, and its bad-input refusals.
 *
 * References: the fp32 perplexity 3.548202 of stories260K on tinystories_sample.txt
 * (shared/models/SOURCES.md, llama2.c forward pass); the targets are W8A16 within 0.5% of
 * it and FP8 within 2%. The stored codes are checked against compressed-tensors' dequantization
 * formula w = (q - zero) * scale (forward_helpers.py `_dequantize`) applied to the original
 * weights: round to nearest leaves every in-range weight within half a step (scale / 2).
 */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libquant/lq_ptq.h"
#include "lq_eval.h"
#include "lq_test_util.h"

#define REF_PPL 3.548202

static const char *const k_linears[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                        "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                        "mlp.down_proj"};
static char g_root[256], g_fp32[512];

/* A fresh temp dir holding stories260K converted to an HF directory (f32). */
static void setup(void) {
    char tmpl[] = "/tmp/lq_test_ptq_XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    snprintf(g_root, sizeof g_root, "%s", tmpl);
    snprintf(g_fp32, sizeof g_fp32, "%s/fp32", g_root);
    char cmd[4096];
    cr_assert_eq(lq_test_convert_stories260k(g_fp32, cmd, sizeof cmd), 0, "quant-convert failed: %s", cmd);
}

static void teardown(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(ptq, .init = setup, .fini = teardown);

/* Run quant-ptq with `args`; returns the exit code, stderr in err (first line). */
static int run_ptq(const char *args, char *err, size_t cap) {
    int code = lq_test_run_tool("quant-ptq", args, g_root, err, cap);
    cr_assert(code >= 0, "quant-ptq %s did not exit", args);
    return code;
}

static double ppl_of(const lq_model *m, const char *dir) {
    lq_tokenizer *tok;
    cr_assert_eq(lq_eval_load_tokenizer(m, dir, NULL, &tok), LQ_OK, "%s", lq_last_error());
    char path[1024];
    char *text = NULL;
    size_t len = 0;
    lq_test_shared("data/tinystories_sample.txt", path, sizeof path);
    cr_assert_eq(lq_text_read_file(path, &text, &len), LQ_OK);
    lq_ppl_opts o = {.per_line = true, .separator = "<|endoftext|>"};
    lq_ppl_result r;
    lq_status s = lq_eval_perplexity(m, tok, NULL, text, len, &o, &r);
    free(text);
    lq_tokenizer_free(tok);
    cr_assert_eq(s, LQ_OK, "%s", lq_last_error());
    cr_expect_eq(r.n_scored, 1804);
    return r.ppl;
}

/* Quantize with `flags`, load the result and check config, bindings and perplexity. */
static double quantize_and_check(const char *name, const char *flags, lq_wfmt scheme, lq_wfmt fmt) {
    char out[600], args[2048], err[1024];
    snprintf(out, sizeof out, "%s/%s", g_root, name);
    snprintf(args, sizeof args, "--model '%s' --out '%s' %s", g_fp32, out, flags);
    int rc = run_ptq(args, err, sizeof err);
    cr_assert_eq(rc, 0, "quant-ptq %s: exit %d: %s", args, rc, err);
    /* config.json carries a quantization_config we parse back to the scheme */
    char cpath[700];
    snprintf(cpath, sizeof cpath, "%s/config.json", out);
    char *cj = lq_test_read_file(cpath, NULL);
    cr_assert_not_null(cj);
    lq_ct_config ct;
    cr_assert_eq(lq_ct_config_parse(cj, cpath, &ct), LQ_OK, "%s", lq_last_error());
    free(cj);
    cr_assert_eq(ct.n_groups, 1);
    cr_expect_eq(ct.groups[0].scheme, scheme);
    cr_expect_str_eq(ct.format, lq_ct_format_name(scheme));
    cr_expect_str_eq(ct.status, "compressed");
    /* the tied head has no tensor of its own, yet a loader builds an lm_head Linear and matches
     * "Linear" targets against it: it must be listed in ignore (transformers + compressed-tensors
     * fail to load the model otherwise; scripts/hf_crosscheck.py) */
    cr_expect_eq(ct.n_ignore, 1, "%s: ignore should be [\"lm_head\"]", name);
    snprintf(cpath, sizeof cpath, "%s/tokenizer.json", out);
    cr_expect(lq_test_exists(cpath), "tokenizer.json not carried over");
    /* every linear layer bound in the scheme's format; the tied embedding stays f32 */
    lq_model *m;
    cr_assert_eq(lq_model_load(out, &m), LQ_OK, "%s", lq_last_error());
    for (int l = 0; l < lq_model_config(m)->n_layers; l++) {
        const lq_weight *ws[7];
        for (int i = 0; i < 7; i++) ws[i] = lq_test_linear(m, l, k_linears[i]);
        for (int i = 0; i < 7; i++) cr_expect_eq(ws[i]->fmt, fmt, "layer %d weight %d: fmt %d", l, i, ws[i]->fmt);
    }
    cr_expect_eq(lq_model_find_linear(m, "model.embed_tokens")->fmt, LQ_WFMT_F32);
    /* the default ignore list is ["lm_head"]: the head stays the (tied) embedding */
    cr_expect(lq_model_config(m)->tied_embeddings && lq_model_find_linear(m, "lm_head")->data == lq_model_find_linear(m, "model.embed_tokens")->data, "%s: the head was untied", name);
    double ppl = ppl_of(m, out);
    lq_model_free(m);
    cr_expect(isfinite(ppl) && ppl > 1.0, "%s: ppl %f", name, ppl);
    return ppl;
}

Test(ptq, w8a16_within_half_a_percent, .timeout = 120) {
    double ppl = quantize_and_check("w8a16", "--scheme W8A16", LQ_WFMT_W8A16, LQ_WFMT_W8A16);
    cr_expect(fabs(ppl / REF_PPL - 1.0) <= 0.005, "W8A16 ppl %.6f vs fp32 %.6f", ppl, REF_PPL);
}

Test(ptq, fp8_within_two_percent, .timeout = 120) {
    double ppl = quantize_and_check("fp8", "--scheme FP8", LQ_WFMT_FP8_E4M3, LQ_WFMT_FP8_E4M3);
    cr_expect(fabs(ppl / REF_PPL - 1.0) <= 0.02, "FP8 ppl %.6f vs fp32 %.6f", ppl, REF_PPL);
}

Test(ptq, w8a8_runs, .timeout = 120) {
    /* int8 per-token activations on top of W8A16's weights: no published target, so only
     * "close to fp32" (the same 2% as FP8, a much looser bound than 8-bit errors warrant). */
    double ppl = quantize_and_check("w8a8", "--scheme W8A8", LQ_WFMT_W8A8, LQ_WFMT_W8A8);
    cr_expect(fabs(ppl / REF_PPL - 1.0) <= 0.02, "W8A8 ppl %.6f", ppl);
}

Test(ptq, w4a16_sym_and_asym_run, .timeout = 120) {
    /* 4 divides both 64 and 172 (stories260K's dim and hidden dim). 4-bit RTN of a 260K model
     * has no published reference: finite and below the uniform baseline (vocab 512). */
    double p1 = quantize_and_check("w4", "--scheme W4A16 --group-size 4", LQ_WFMT_W4A16, LQ_WFMT_W4A16);
    double p2 = quantize_and_check("w4a", "--scheme W4A16 --group-size 4 --asym", LQ_WFMT_W4A16, LQ_WFMT_W4A16);
    cr_expect(p1 < 512.0 && p2 < 512.0, "%f %f", p1, p2);
}

/* ---- stored codes against the compressed-tensors formula ------------------------------------ */

static const lq_tensor *need(const lq_st_file *f, const char *name, lq_dtype dt, int ndim) {
    const lq_tensor *t = lq_st_find(f, name);
    cr_assert_not_null(t, "missing %s", name);
    cr_assert_eq(t->dtype, dt, "%s: dtype %s", name, lq_dtype_name(t->dtype));
    cr_assert_eq(t->ndim, ndim, "%s: ndim %d", name, t->ndim);
    return t;
}

Test(ptq, w4a16_asym_codes_dequantize_to_the_weights, .timeout = 60) {
    char out[600], args[2048], err[1024], p[700];
    snprintf(out, sizeof out, "%s/w4a", g_root);
    snprintf(args, sizeof args, "--model '%s' --out '%s' --scheme W4A16 --group-size 4 --asym", g_fp32, out);
    cr_assert_eq(run_ptq(args, err, sizeof err), 0, "%s", err);
    lq_st_file *in, *q;
    snprintf(p, sizeof p, "%s/model.safetensors", g_fp32);
    cr_assert_eq(lq_st_open(p, &in), LQ_OK);
    snprintf(p, sizeof p, "%s/model.safetensors", out);
    cr_assert_eq(lq_st_open(p, &q), LQ_OK);
    const char *m = "model.layers.2.mlp.down_proj"; /* 64 x 172 */
    char n[200];
    snprintf(n, sizeof n, "%s.weight", m);
    const lq_tensor *w = need(in, n, LQ_DTYPE_F32, 2);
    cr_expect_null(lq_st_find(q, n), "the float weight must be replaced");
    snprintf(n, sizeof n, "%s.weight_packed", m);
    const lq_tensor *pk = need(q, n, LQ_DTYPE_I32, 2);
    cr_assert(pk->shape[0] == 64 && pk->shape[1] == 22, "packed [%lld, %lld]", (long long)pk->shape[0],
              (long long)pk->shape[1]); /* ceil(172 * 4 / 32) = 22 */
    snprintf(n, sizeof n, "%s.weight_scale", m);
    const lq_tensor *sc = need(q, n, LQ_DTYPE_F32, 2);
    cr_assert(sc->shape[0] == 64 && sc->shape[1] == 43);
    snprintf(n, sizeof n, "%s.weight_zero_point", m);
    const lq_tensor *zp = need(q, n, LQ_DTYPE_I32, 2);
    cr_assert(zp->shape[0] == 8 && zp->shape[1] == 43); /* ceil(64 * 4 / 32) = 8 rows of words */
    snprintf(n, sizeof n, "%s.weight_shape", m);
    const lq_tensor *sh = need(q, n, LQ_DTYPE_I64, 1);
    cr_expect(((const int64_t *)sh->data)[0] == 64 && ((const int64_t *)sh->data)[1] == 172);
    int8_t *codes = malloc(64 * 172), *zeros = malloc(64 * 43);
    lq_ct_unpack_int32(pk->data, 64, 172, 4, 1, codes);
    lq_ct_unpack_int32(zp->data, 64, 43, 4, 0, zeros);
    const float *wf = w->data, *s = sc->data;
    int64_t bad = 0;
    for (int64_t r = 0; r < 64; r++)
        for (int64_t c = 0; c < 172; c++) {
            float scale = s[r * 43 + c / 4];
            float deq = ((float)codes[r * 172 + c] - (float)zeros[r * 43 + c / 4]) * scale;
            /* half a step, plus f32 rounding of the products */
            if (fabsf(deq - wf[r * 172 + c]) > 0.5f * scale * (1.0f + 1e-5f) + 1e-7f) bad++;
        }
    cr_expect_eq(bad, 0, "%lld weights farther than half a step from their dequantized code", (long long)bad);
    free(codes);
    free(zeros);
    lq_st_close(in);
    lq_st_close(q);
}

Test(ptq, w8a16_codes_dequantize_to_the_weights, .timeout = 60) {
    char out[600], args[2048], err[1024], p[700];
    snprintf(out, sizeof out, "%s/w8", g_root);
    snprintf(args, sizeof args, "--model '%s' --out '%s' --scheme W8A16", g_fp32, out);
    cr_assert_eq(run_ptq(args, err, sizeof err), 0, "%s", err);
    lq_st_file *in, *q;
    snprintf(p, sizeof p, "%s/model.safetensors", g_fp32);
    cr_assert_eq(lq_st_open(p, &in), LQ_OK);
    snprintf(p, sizeof p, "%s/model.safetensors", out);
    cr_assert_eq(lq_st_open(p, &q), LQ_OK);
    const lq_tensor *w = need(in, "model.layers.0.self_attn.k_proj.weight", LQ_DTYPE_F32, 2); /* 32 x 64 */
    const lq_tensor *pk = need(q, "model.layers.0.self_attn.k_proj.weight_packed", LQ_DTYPE_I32, 2);
    const lq_tensor *sc = need(q, "model.layers.0.self_attn.k_proj.weight_scale", LQ_DTYPE_F32, 2);
    cr_assert(pk->shape[0] == 32 && pk->shape[1] == 16 && sc->shape[0] == 32 && sc->shape[1] == 1);
    cr_expect_null(lq_st_find(q, "model.layers.0.self_attn.k_proj.weight_zero_point"));
    int8_t codes[32 * 64];
    lq_ct_unpack_int32(pk->data, 32, 64, 8, 1, codes);
    const float *wf = w->data, *s = sc->data;
    int64_t bad = 0;
    for (int64_t r = 0; r < 32; r++)
        for (int64_t c = 0; c < 64; c++)
            if (fabsf((float)codes[r * 64 + c] * s[r] - wf[r * 64 + c]) > 0.5f * s[r] * (1.0f + 1e-5f) + 1e-7f)
                bad++;
    cr_expect_eq(bad, 0, "%lld weights farther than half a step", (long long)bad);
    lq_st_close(in);
    lq_st_close(q);
}

/* ---- mixed precision, ignore, --json ------------------------------------------------------------ */

Test(ptq, ignore_and_override_write_two_groups, .timeout = 120) {
    /* --ignore replaces the default ["lm_head"] (as a recipe's `ignore:` does), so the tied head
     * is quantized too: W4A16 g4 like the other 64-column linears, written as its own lm_head. */
    char out[600], args[2048], err[1024], p[700];
    snprintf(out, sizeof out, "%s/mixed", g_root);
    snprintf(args, sizeof args, "--model '%s' --out '%s' --scheme W4A16 --group-size 4 --ignore q_proj "
             "--override 're:.*down_proj$=FP8' --json", g_fp32, out);
    cr_assert_eq(run_ptq(args, err, sizeof err), 0, "%s", err);
    snprintf(p, sizeof p, "%s/config.json", out);
    char *cj = lq_test_read_file(p, NULL);
    lq_ct_config ct;
    cr_assert_eq(lq_ct_config_parse(cj, p, &ct), LQ_OK, "%s", lq_last_error());
    free(cj);
    cr_expect_str_eq(ct.format, "mixed-precision");
    cr_assert_eq(ct.n_groups, 2);
    cr_expect_eq(ct.n_ignore, 5); /* the five q_proj modules */
    int64_t targets = ct.groups[0].n_targets + ct.groups[1].n_targets;
    cr_expect_eq(targets, 31, "5 layers x (k, v, o, gate, up, down) + lm_head");
    lq_model *m;
    cr_assert_eq(lq_model_load(out, &m), LQ_OK, "%s", lq_last_error());
    cr_expect_eq(lq_test_linear(m, 0, "self_attn.q_proj")->fmt, LQ_WFMT_F32);
    cr_expect_eq(lq_test_linear(m, 0, "self_attn.k_proj")->fmt, LQ_WFMT_W4A16);
    cr_expect_eq(lq_test_linear(m, 4, "mlp.down_proj")->fmt, LQ_WFMT_FP8_E4M3);
    cr_expect_not(lq_model_config(m)->tied_embeddings);
    cr_expect_eq(lq_model_find_linear(m, "lm_head")->fmt, LQ_WFMT_W4A16);
    cr_expect_eq(lq_model_find_linear(m, "model.embed_tokens")->fmt, LQ_WFMT_F32);
    lq_model_free(m);
    /* --json: the summary as one object */
    snprintf(p, sizeof p, "%s/stdout.txt", g_root);
    json_error_t je;
    json_t *j = json_load_file(p, 0, &je);
    cr_assert_not_null(j, "stdout is not JSON: %s", je.text);
    cr_expect_eq(json_integer_value(json_object_get(j, "quantized")), 31);
    cr_expect_eq(json_array_size(json_object_get(j, "per_tensor")), 31);
    double worst = json_real_value(json_object_get(j, "worst_rel_err"));
    cr_expect(worst > 0.0 && worst < 0.2, "worst relative error %f", worst);
    json_decref(j);
}

/* ---- bad input: one line, non-zero exit, nothing left behind --------------------------------------- */

static void expect_refusal(const char *args, int want_rc, const char *needle, const char *out) {
    char err[2048];
    int rc = run_ptq(args, err, sizeof err);
    cr_expect_eq(rc, want_rc, "exit %d (want %d) for %s: %s", rc, want_rc, args, err);
    cr_expect(strncmp(err, "quant-ptq: error: ", 18) == 0, "stderr: %s", err);
    cr_expect(strstr(err, needle) != NULL, "stderr lacks '%s': %s", needle, err);
    if (out) {
        cr_expect_not(lq_test_exists(out), "%s was created", out);
        cr_expect_not(lq_test_leftovers(out), "a temp dir was left next to %s", out);
    }
}

Test(ptq, unknown_scheme) {
    char args[2048], out[600];
    snprintf(out, sizeof out, "%s/o", g_root);
    /* W2A16 is a compressed-tensors preset we have no format for */
    snprintf(args, sizeof args, "--model '%s' --out '%s' --scheme W2A16", g_fp32, out);
    expect_refusal(args, 2, "unknown scheme 'W2A16'", out);
}

Test(ptq, group_size_that_does_not_divide_names_the_tensor) {
    char args[2048], out[600];
    snprintf(out, sizeof out, "%s/o", g_root);
    /* 8 divides 64 but not 172: the first tensor with 172 columns is layer 0's down_proj */
    snprintf(args, sizeof args, "--model '%s' --out '%s' --scheme W4A16 --group-size 8", g_fp32, out);
    expect_refusal(args, 2, "model.layers.0.mlp.down_proj.weight", out);
    /* the previous message stays the first line; a second line names the option that helps */
    expect_refusal(args, 2, "does not divide its 172 columns", out);
    expect_refusal(args, 2, "\nquant-ptq: hint: --group-fallback channel", out);
    snprintf(args, sizeof args, "--model '%s' --out '%s' --scheme W4A16 --group-size 8 --group-fallback refuse",
             g_fp32, out);
    expect_refusal(args, 2, "model.layers.0.mlp.down_proj.weight", out);
    snprintf(args, sizeof args, "--model '%s' --out '%s' --scheme W4A16 --group-fallback drop", g_fp32, out);
    expect_refusal(args, 2, "--group-fallback must be refuse, channel or ignore, not 'drop'", out);
}

Test(ptq, library_refuses_indivisible_group_by_default) {
    /* a zero-initialised lq_ptq_opts keeps the refusal (group 128 does not divide 64 columns) */
    char out[600];
    snprintf(out, sizeof out, "%s/lib", g_root);
    cr_assert_eq(mkdir(out, 0755), 0);
    lq_ptq_opts o = {.scheme = LQ_WFMT_W4A16};
    cr_expect_eq(lq_ptq_quantize(g_fp32, out, &o, NULL), LQ_ERR_INVALID_ARG);
    cr_expect(strstr(lq_last_error(), "model.layers.0.self_attn.q_proj.weight") != NULL, "%s", lq_last_error());
    char p[700];
    snprintf(p, sizeof p, "%s/model.safetensors", out);
    cr_expect_not(lq_test_exists(p), "weights written before the refusal");
    o.group_fallback = (lq_ptq_group_fallback)7;
    cr_expect_eq(lq_ptq_quantize(g_fp32, out, &o, NULL), LQ_ERR_INVALID_ARG);
    lq_ptq_group_fallback f;
    cr_expect(lq_ptq_group_fallback_parse("channel", &f) && f == LQ_PTQ_FALLBACK_CHANNEL);
    cr_expect(lq_ptq_group_fallback_parse("ignore", &f) && f == LQ_PTQ_FALLBACK_IGNORE);
    cr_expect(lq_ptq_group_fallback_parse("refuse", &f) && f == LQ_PTQ_FALLBACK_REFUSE);
    cr_expect_not(lq_ptq_group_fallback_parse("Channel", &f));
    cr_expect_str_eq(lq_ptq_group_fallback_name(LQ_PTQ_FALLBACK_IGNORE), "ignore");
}

Test(ptq, nan_weight_names_the_tensor) {
    /* A copy of the model with one NaN in layer 1's up_proj. */
    char bad[600], p[700], cmd[2048];
    snprintf(bad, sizeof bad, "%s/nan", g_root);
    cr_assert_eq(mkdir(bad, 0755), 0);
    snprintf(cmd, sizeof cmd, "cp '%s/config.json' '%s/tokenizer.json' '%s/'", g_fp32, g_fp32, bad);
    cr_assert_eq(system(cmd), 0);
    lq_st_file *in;
    snprintf(p, sizeof p, "%s/model.safetensors", g_fp32);
    cr_assert_eq(lq_st_open(p, &in), LQ_OK);
    int64_t n = lq_st_count(in);
    lq_tensor *ts = calloc((size_t)n, sizeof *ts);
    float *copy = NULL;
    for (int64_t i = 0; i < n; i++) {
        ts[i] = *lq_st_get(in, i);
        if (strcmp(ts[i].name, "model.layers.1.mlp.up_proj.weight") == 0) {
            copy = malloc(ts[i].nbytes);
            memcpy(copy, ts[i].data, ts[i].nbytes);
            copy[100] = NAN;
            ts[i].data = copy;
        }
    }
    cr_assert_not_null(copy);
    snprintf(p, sizeof p, "%s/model.safetensors", bad);
    cr_assert_eq(lq_st_save(p, ts, n), LQ_OK, "%s", lq_last_error());
    free(copy);
    free(ts);
    lq_st_close(in);
    char args[2048], out[600];
    snprintf(out, sizeof out, "%s/o", g_root);
    snprintf(args, sizeof args, "--model '%s' --out '%s' --scheme W8A16", bad, out);
    expect_refusal(args, 3, "model.layers.1.mlp.up_proj.weight", out);
}

Test(ptq, already_quantized_input) {
    char q[600], args[2048], err[1024], out[600];
    snprintf(q, sizeof q, "%s/q", g_root);
    snprintf(args, sizeof args, "--model '%s' --out '%s' --scheme W8A16", g_fp32, q);
    cr_assert_eq(run_ptq(args, err, sizeof err), 0, "%s", err);
    snprintf(out, sizeof out, "%s/o", g_root);
    snprintf(args, sizeof args, "--model '%s' --out '%s' --scheme W4A16", q, out);
    expect_refusal(args, 3, "already quantized", out);
}

Test(ptq, unwritable_output) {
    char file[600], out[700], args[1600];
    snprintf(file, sizeof file, "%s/a-file", g_root);
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    fclose(f);
    snprintf(out, sizeof out, "%s/sub", file); /* a directory below a regular file */
    snprintf(args, sizeof args, "--model '%s' --out '%s' --scheme W8A16", g_fp32, out);
    expect_refusal(args, 4, "cannot create output", out);
}

Test(ptq, existing_output_needs_force_and_input_is_untouched) {
    char out[600], args[1200], err[1024], p[700];
    snprintf(p, sizeof p, "%s/model.safetensors", g_fp32);
    size_t n0 = 0;
    char *before = lq_test_read_file(p, &n0);
    snprintf(out, sizeof out, "%s/o", g_root);
    cr_assert_eq(mkdir(out, 0755), 0);
    snprintf(args, sizeof args, "--model '%s' --out '%s' --scheme FP8", g_fp32, out);
    expect_refusal(args, 4, "exists", NULL);
    snprintf(args, sizeof args, "--model '%s' --out '%s' --scheme FP8 --force", g_fp32, out);
    cr_assert_eq(run_ptq(args, err, sizeof err), 0, "%s", err);
    snprintf(args, sizeof args, "--model '%s' --out '%s/sub' --scheme FP8", g_fp32, g_fp32);
    expect_refusal(args, 2, "input", NULL);
    size_t n1 = 0;
    char *after = lq_test_read_file(p, &n1);
    cr_assert(before && after && n0 == n1 && memcmp(before, after, n0) == 0, "the input changed");
    free(before);
    free(after);
}

Test(ptq, llama2c_input_is_refused) {
    /* its q/k rows keep rotary pairs interleaved: an HF config over them would be a wrong model */
    char bin[1024], args[2048], out[600];
    lq_test_shared("models/stories260K/stories260K.bin", bin, sizeof bin);
    snprintf(out, sizeof out, "%s/o", g_root);
    snprintf(args, sizeof args, "--model '%s' --out '%s' --scheme W8A16", bin, out);
    expect_refusal(args, 3, "quant-convert", out);
}

/* ---- group sizes that do not divide a layer's columns (--group-fallback) ------------------------ */

/* Quantize W4A16 with `flags`, check the config has `n_groups` W4A16 groups, and return the
 * perplexity of the result. */
static double quantize_and_check_groups(const char *name, const char *flags, int n_groups) {
    char out[600], args[2048], err[1024], cpath[700];
    snprintf(out, sizeof out, "%s/%s", g_root, name);
    snprintf(args, sizeof args, "--model '%s' --out '%s' %s", g_fp32, out, flags);
    int rc = run_ptq(args, err, sizeof err);
    cr_assert_eq(rc, 0, "quant-ptq %s: exit %d: %s", args, rc, err);
    snprintf(cpath, sizeof cpath, "%s/config.json", out);
    char *cj = lq_test_read_file(cpath, NULL);
    cr_assert_not_null(cj);
    lq_ct_config ct;
    cr_assert_eq(lq_ct_config_parse(cj, cpath, &ct), LQ_OK, "%s", lq_last_error());
    free(cj);
    cr_assert_eq(ct.n_groups, n_groups);
    for (int g = 0; g < n_groups; g++) cr_expect_eq(ct.groups[g].scheme, LQ_WFMT_W4A16);
    lq_model *m;
    cr_assert_eq(lq_model_load(out, &m), LQ_OK, "%s", lq_last_error());
    double ppl = ppl_of(m, out);
    lq_model_free(m);
    cr_expect(isfinite(ppl) && ppl > 1.0, "%s: ppl %f", name, ppl);
    return ppl;
}

/* stories260K's linears have 64 columns (q, k, v, o, gate, up) or 172 (down). compressed-tensors
 * refuses a group size that does not divide the columns (forward_helpers.py _process_group), so
 * g128 divides nothing and g32 divides all but the five down_proj. */



/* The quantization_config object of out/config.json (new reference). */
static json_t *ct_config_of(const char *out) {
    char p[700];
    snprintf(p, sizeof p, "%s/config.json", out);
    json_error_t je;
    json_t *root = json_load_file(p, 0, &je);
    cr_assert_not_null(root, "%s: %s", p, je.text);
    json_t *qc = json_incref(json_object_get(root, "quantization_config"));
    json_decref(root);
    cr_assert_not_null(qc, "%s: no quantization_config", p);
    return qc;
}

/* The summary quant-ptq --json printed (new reference). */
static json_t *stdout_json(void) {
    char p[700];
    snprintf(p, sizeof p, "%s/stdout.txt", g_root);
    json_error_t je;
    json_t *j = json_load_file(p, 0, &je);
    cr_assert_not_null(j, "stdout is not JSON: %s", je.text);
    return j;
}

static bool same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    char *x = lq_test_read_file(a, &na), *y = lq_test_read_file(b, &nb);
    bool same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

Test(ptq, group_fallback_channel_g128_is_per_channel, .timeout = 120) {
    /* Every linear falls back, so the result must be exactly W4A16 per channel (--group-size -1):
     * the same weights file byte for byte and one "channel" config group over every Linear. */
    char out[600], ch[600], a[700], b[700];
    double p_fb = quantize_and_check("g128ch", "--scheme W4A16 --group-size 128 --group-fallback channel --json",
                                     LQ_WFMT_W4A16, LQ_WFMT_W4A16);
    json_t *j = stdout_json();
    json_t *fb = json_object_get(j, "fallback");
    cr_expect_str_eq(json_string_value(json_object_get(j, "group_fallback")), "channel");
    cr_assert_eq(json_array_size(fb), 35, "5 layers x 7 linears fell back");
    for (size_t i = 0; i < json_array_size(fb); i++) {
        json_t *e = json_array_get(fb, i);
        cr_expect_str_eq(json_string_value(json_object_get(e, "action")), "channel");
        cr_expect_eq(json_integer_value(json_object_get(e, "group_size")), 128);
    }
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(fb, 0), "name")),
                     "model.layers.0.self_attn.q_proj");
    cr_expect_eq(json_integer_value(json_object_get(j, "quantized")), 35);
    json_decref(j);
    /* identical weights and config mean an identical perplexity: no second evaluation needed */
    char err[1024], args[2048];
    snprintf(out, sizeof out, "%s/g128ch", g_root);
    snprintf(ch, sizeof ch, "%s/ch", g_root);
    snprintf(args, sizeof args, "--model '%s' --out '%s' --scheme W4A16 --group-size -1", g_fp32, ch);
    cr_assert_eq(run_ptq(args, err, sizeof err), 0, "%s", err);
    snprintf(a, sizeof a, "%s/model.safetensors", out);
    snprintf(b, sizeof b, "%s/model.safetensors", ch);
    cr_expect(same_file(a, b), "g128 + channel fallback weights differ from --group-size -1");
    snprintf(a, sizeof a, "%s/config.json", out);
    snprintf(b, sizeof b, "%s/config.json", ch);
    cr_expect(same_file(a, b), "g128 + channel fallback config differs from --group-size -1");
    json_t *qc = ct_config_of(out);
    json_t *groups = json_object_get(qc, "config_groups");
    cr_assert_eq(json_object_size(groups), 1);
    json_t *w = json_object_get(json_object_get(groups, "group_0"), "weights");
    cr_expect_str_eq(json_string_value(json_object_get(w, "strategy")), "channel");
    cr_expect(json_is_null(json_object_get(w, "group_size")));
    cr_expect_eq(json_integer_value(json_object_get(w, "num_bits")), 4);
    json_decref(qc);
    /* per-row scales, and the engine binds each as one group per row */
    lq_model *m;
    cr_assert_eq(lq_model_load(out, &m), LQ_OK, "%s", lq_last_error());
    for (int l = 0; l < lq_model_config(m)->n_layers; l++) {
        const lq_weight *ws[7];
        for (int i = 0; i < 7; i++) ws[i] = lq_test_linear(m, l, k_linears[i]);
        for (int i = 0; i < 7; i++)
            cr_expect_eq(ws[i]->group_size, ws[i]->cols, "layer %d %s: group %d of %lld columns", l,
                         k_linears[i], ws[i]->group_size, (long long)ws[i]->cols);
    }
    lq_model_free(m);
    /* 4-bit per channel on a 260K model: no published number; finite and well below uniform */
    cr_expect(p_fb < 512.0, "ppl %f", p_fb);
}

Test(ptq, group_fallback_channel_g32_writes_two_groups, .timeout = 120) {
    char out[600], p[700], err[1024], args[2048];
    double p_fb = quantize_and_check_groups("g32ch", "--scheme W4A16 --group-size 32 --asym --group-fallback channel "
                                            "--json", 2);
    json_t *j = stdout_json();
    json_t *fb = json_object_get(j, "fallback");
    cr_assert_eq(json_array_size(fb), 5);
    for (size_t i = 0; i < 5; i++) {
        char want[64];
        snprintf(want, sizeof want, "model.layers.%zu.mlp.down_proj", i);
        json_t *e = json_array_get(fb, i);
        cr_expect_str_eq(json_string_value(json_object_get(e, "name")), want);
        cr_expect_eq(json_integer_value(json_object_get(e, "cols")), 172);
        cr_expect_str_eq(json_string_value(json_object_get(e, "action")), "channel");
    }
    json_t *pt = json_object_get(j, "per_tensor");
    cr_assert_eq(json_array_size(pt), 35);
    for (size_t i = 0; i < 35; i++) {
        json_t *e = json_array_get(pt, i);
        bool down = strstr(json_string_value(json_object_get(e, "name")), "down_proj") != NULL;
        cr_expect_eq(json_integer_value(json_object_get(e, "group_size")), down ? 0 : 32);
        cr_expect_eq(json_is_true(json_object_get(e, "fell_back")), down);
    }
    json_decref(j);
    /* config: group_0 = group strategy over the 30 divisible modules, group_1 = channel over
     * exactly the five down_proj, both asymmetric 4-bit */
    snprintf(out, sizeof out, "%s/g32ch", g_root);
    json_t *qc = ct_config_of(out);
    json_t *groups = json_object_get(qc, "config_groups");
    cr_assert_eq(json_object_size(groups), 2);
    json_t *g0 = json_object_get(groups, "group_0"), *g1 = json_object_get(groups, "group_1");
    cr_assert(g0 && g1);
    json_t *w0 = json_object_get(g0, "weights"), *w1 = json_object_get(g1, "weights");
    cr_expect_str_eq(json_string_value(json_object_get(w0, "strategy")), "group");
    cr_expect_eq(json_integer_value(json_object_get(w0, "group_size")), 32);
    cr_expect_str_eq(json_string_value(json_object_get(w1, "strategy")), "channel");
    cr_expect(json_is_null(json_object_get(w1, "group_size")));
    cr_expect(json_is_false(json_object_get(w1, "symmetric")));
    cr_expect_eq(json_integer_value(json_object_get(w1, "num_bits")), 4);
    cr_expect_str_eq(json_string_value(json_object_get(qc, "format")), "pack-quantized");
    json_t *t1 = json_object_get(g1, "targets");
    cr_assert_eq(json_array_size(t1), 5);
    for (size_t i = 0; i < 5; i++) {
        char want[64];
        snprintf(want, sizeof want, "model.layers.%zu.mlp.down_proj", i);
        cr_expect_str_eq(json_string_value(json_array_get(t1, i)), want);
    }
    cr_expect_eq(json_array_size(json_object_get(g0, "targets")), 30);
    json_t *ign0 = json_object_get(qc, "ignore");
    cr_assert_eq(json_array_size(ign0), 1, "only the tied lm_head is ignored");
    cr_expect_str_eq(json_string_value(json_array_get(ign0, 0)), "lm_head");
    json_decref(qc);
    /* tensors: [64, 1] scales and [8, 1] packed zero points for down_proj, [64, 2] for q_proj;
     * the fallback codes dequantize with compressed-tensors' formula to within half a step */
    lq_st_file *in, *q;
    snprintf(p, sizeof p, "%s/model.safetensors", g_fp32);
    cr_assert_eq(lq_st_open(p, &in), LQ_OK);
    snprintf(p, sizeof p, "%s/model.safetensors", out);
    cr_assert_eq(lq_st_open(p, &q), LQ_OK);
    const lq_tensor *qs = need(q, "model.layers.0.self_attn.q_proj.weight_scale", LQ_DTYPE_F32, 2);
    cr_expect(qs->shape[0] == 64 && qs->shape[1] == 2);
    const lq_tensor *w = need(in, "model.layers.3.mlp.down_proj.weight", LQ_DTYPE_F32, 2);
    const lq_tensor *pk = need(q, "model.layers.3.mlp.down_proj.weight_packed", LQ_DTYPE_I32, 2);
    const lq_tensor *sc = need(q, "model.layers.3.mlp.down_proj.weight_scale", LQ_DTYPE_F32, 2);
    const lq_tensor *zp = need(q, "model.layers.3.mlp.down_proj.weight_zero_point", LQ_DTYPE_I32, 2);
    cr_assert(pk->shape[0] == 64 && pk->shape[1] == 22);
    cr_assert(sc->shape[0] == 64 && sc->shape[1] == 1, "scale [%lld, %lld]", (long long)sc->shape[0],
              (long long)sc->shape[1]);
    cr_assert(zp->shape[0] == 8 && zp->shape[1] == 1);
    int8_t *codes = malloc(64 * 172), zeros[64];
    lq_ct_unpack_int32(pk->data, 64, 172, 4, 1, codes);
    lq_ct_unpack_int32(zp->data, 64, 1, 4, 0, zeros);
    const float *wf = w->data, *s = sc->data;
    int64_t bad = 0;
    for (int64_t r = 0; r < 64; r++)
        for (int64_t c = 0; c < 172; c++) {
            float deq = ((float)codes[r * 172 + c] - (float)zeros[r]) * s[r];
            if (fabsf(deq - wf[r * 172 + c]) > 0.5f * s[r] * (1.0f + 1e-5f) + 1e-7f) bad++;
        }
    cr_expect_eq(bad, 0, "%lld weights farther than half a step", (long long)bad);
    free(codes);
    lq_st_close(in);
    lq_st_close(q);
    /* quality: close to W4A16 per channel, as the issue asks. g32 on 30 of 35 layers lowers the
     * weight error, but a 260K model's PPL moves a few percent either way with it (4.158 vs 4.318
     * asymmetric, 4.130 vs 4.089 symmetric), so the bound is two-sided: within 5% */
    snprintf(args, sizeof args, "--model '%s' --out '%s/chasym' --scheme W4A16 --group-size -1 --asym", g_fp32,
             g_root);
    cr_assert_eq(run_ptq(args, err, sizeof err), 0, "%s", err);
    snprintf(p, sizeof p, "%s/chasym", g_root);
    lq_model *m;
    cr_assert_eq(lq_model_load(p, &m), LQ_OK, "%s", lq_last_error());
    double p_ch = ppl_of(m, p);
    lq_model_free(m);
    cr_expect(fabs(p_fb / p_ch - 1.0) <= 0.05, "g32 + channel ppl %.6f vs per-channel %.6f", p_fb, p_ch);
}

Test(ptq, group_fallback_ignore_keeps_float, .timeout = 120) {
    char out[600], p[700];
    double ppl = quantize_and_check_groups("g32ign", "--scheme W4A16 --group-size 32 --group-fallback ignore --json", 1);
    cr_expect(ppl < 512.0, "ppl %f", ppl);
    json_t *j = stdout_json();
    json_t *fb = json_object_get(j, "fallback");
    cr_assert_eq(json_array_size(fb), 5);
    for (size_t i = 0; i < 5; i++)
        cr_expect_str_eq(json_string_value(json_object_get(json_array_get(fb, i), "action")), "ignore");
    cr_expect_eq(json_integer_value(json_object_get(j, "quantized")), 30);
    json_decref(j);
    snprintf(out, sizeof out, "%s/g32ign", g_root);
    json_t *qc = ct_config_of(out);
    json_t *ign = json_object_get(qc, "ignore");
    cr_assert_eq(json_array_size(ign), 6, "five down_proj + the tied lm_head");
    for (size_t i = 0; i < 5; i++) {
        char want[64];
        snprintf(want, sizeof want, "model.layers.%zu.mlp.down_proj", i);
        cr_expect_str_eq(json_string_value(json_array_get(ign, i)), want);
    }
    cr_expect_str_eq(json_string_value(json_array_get(ign, 5)), "lm_head");
    json_t *g0 = json_object_get(json_object_get(qc, "config_groups"), "group_0");
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(g0, "weights"), "group_size")), 32);
    json_decref(qc);
    /* the ignored weights are the input's f32 tensors, unchanged */
    lq_st_file *in, *q;
    snprintf(p, sizeof p, "%s/model.safetensors", g_fp32);
    cr_assert_eq(lq_st_open(p, &in), LQ_OK);
    snprintf(p, sizeof p, "%s/model.safetensors", out);
    cr_assert_eq(lq_st_open(p, &q), LQ_OK);
    for (int l = 0; l < 5; l++) {
        char n[96];
        snprintf(n, sizeof n, "model.layers.%d.mlp.down_proj.weight", l);
        const lq_tensor *a = need(in, n, LQ_DTYPE_F32, 2), *b = need(q, n, LQ_DTYPE_F32, 2);
        cr_expect(a->nbytes == b->nbytes && memcmp(a->data, b->data, a->nbytes) == 0, "%s changed", n);
        snprintf(n, sizeof n, "model.layers.%d.mlp.down_proj.weight_packed", l);
        cr_expect_null(lq_st_find(q, n));
    }
    lq_st_close(in);
    lq_st_close(q);
    lq_model *m;
    cr_assert_eq(lq_model_load(out, &m), LQ_OK, "%s", lq_last_error());
    for (int l = 0; l < lq_model_config(m)->n_layers; l++) {
        cr_expect_eq(lq_test_linear(m, l, "mlp.down_proj")->fmt, LQ_WFMT_F32, "layer %d down_proj", l);
        cr_expect_eq(lq_test_linear(m, l, "mlp.up_proj")->fmt, LQ_WFMT_W4A16, "layer %d up_proj", l);
        cr_expect_eq(lq_test_linear(m, l, "mlp.up_proj")->group_size, 32);
    }
    lq_model_free(m);
}

/* ---- Ctrl-C ----------------------------------------------------------------------------------------- */

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* SIGINT while the quantized weights stream into "<out>.tmp.<pid>" kills quant-ptq by the signal
 * and leaves neither the output nor its temp directory (tools/common/tool_outdir's handler). A
 * stories110M-shaped f32 model (418 MiB, synthetic) takes seconds, so it is still running when the
 * partial weights file is seen growing; the signal waits for that, not for a fixed delay. */
Test(ptq, sigint_leaves_no_output, .timeout = 300) {
    char tool[1024], big[600], out[600], cmd[2048], part[900];
    snprintf(big, sizeof big, "%s/s110", g_root);
    snprintf(cmd, sizeof cmd, "'%s' --shape stories110M --dtype f32 --out '%s' >/dev/null",
             lq_test_tool("quant-synth", tool, sizeof tool), big);
    int rc = system(cmd);
    cr_assert(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "quant-synth failed: %s", cmd);
    snprintf(out, sizeof out, "%s/s110-w8", g_root);
    lq_test_tool("quant-ptq", tool, sizeof tool);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        /* default SIGINT and an empty mask, whatever Criterion's worker has */
        signal(SIGINT, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execl(tool, tool, "--model", big, "--scheme", "W8A16", "--out", out, "--threads", "1", (char *)NULL);
        _exit(127);
    }
    snprintf(part, sizeof part, "%s.tmp.%ld/model.safetensors.tmp.%ld", out, (long)pid, (long)pid);
    bool seen = false;
    int st = 0;
    for (int t = 0; t < 120000 && !seen; t += 5) { /* up to 2 min: ASan builds on a loaded machine */
        struct stat sb;
        if (stat(part, &sb) == 0 && sb.st_size > (1 << 20)) seen = true;
        else if (waitpid(pid, &st, WNOHANG) == pid) break;
        else sleep_ms(5);
    }
    if (!seen && kill(pid, 0) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    cr_assert(seen, "quant-ptq finished (status %d) before its partial output was seen", st);
    cr_assert_eq(kill(pid, SIGINT), 0);
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == SIGINT, "status %d: expected death by SIGINT", st);
    cr_expect_not(lq_test_exists(out), "%s was created", out);
    cr_expect_not(lq_test_leftovers(out), "a temp dir was left next to %s", out);
}

/* ---- the output head ------------------------------------------------------------------------------
 * stories260K ties its head to the embedding (llama2.c "shared classifier"; no lm_head.weight).
 * A quantized head is written the way transformers / vLLM load an untied compressed-tensors head:
 * its own lm_head.weight_packed / _scale / _shape, the embedding dense, tie_word_embeddings false.
 */

static json_t *config_of(const char *out) {
    char p[700];
    snprintf(p, sizeof p, "%s/config.json", out);
    json_error_t je;
    json_t *root = json_load_file(p, 0, &je);
    cr_assert_not_null(root, "%s: %s", p, je.text);
    return root;
}

Test(ptq, head_w8a16_untied_within_one_percent, .timeout = 120) {
    char out[600], args[2048], err[1024], p[700];
    snprintf(out, sizeof out, "%s/head8", g_root);
    snprintf(args, sizeof args, "--model '%s' --out '%s' --scheme W8A16 --override lm_head=W8A16", g_fp32, out);
    cr_assert_eq(run_ptq(args, err, sizeof err), 0, "%s", err);
    json_t *root = config_of(out);
    cr_expect(json_is_false(json_object_get(root, "tie_word_embeddings")), "config still tied");
    json_t *ign = json_object_get(json_object_get(root, "quantization_config"), "ignore");
    cr_expect_eq(json_array_size(ign), 0, "lm_head is quantized, nothing is ignored");
    json_decref(root);
    /* tensors: a quantized lm_head beside the unchanged dense embedding */
    lq_st_file *in, *q;
    snprintf(p, sizeof p, "%s/model.safetensors", g_fp32);
    cr_assert_eq(lq_st_open(p, &in), LQ_OK);
    snprintf(p, sizeof p, "%s/model.safetensors", out);
    cr_assert_eq(lq_st_open(p, &q), LQ_OK);
    const lq_tensor *emb = need(in, "model.embed_tokens.weight", LQ_DTYPE_F32, 2); /* 512 x 64 */
    const lq_tensor *emb_q = need(q, "model.embed_tokens.weight", LQ_DTYPE_F32, 2);
    cr_expect(emb_q->nbytes == emb->nbytes && memcmp(emb_q->data, emb->data, emb->nbytes) == 0,
              "the embedding must be copied unchanged");
    cr_expect_null(lq_st_find(q, "lm_head.weight"));
    const lq_tensor *pk = need(q, "lm_head.weight_packed", LQ_DTYPE_I32, 2);
    const lq_tensor *sc = need(q, "lm_head.weight_scale", LQ_DTYPE_F32, 2);
    const lq_tensor *sh = need(q, "lm_head.weight_shape", LQ_DTYPE_I64, 1);
    cr_assert(pk->shape[0] == 512 && pk->shape[1] == 16 && sc->shape[0] == 512 && sc->shape[1] == 1);
    int64_t shape[2];
    memcpy(shape, sh->data, sizeof shape); /* safetensors data need not be 8-byte aligned */
    cr_expect(shape[0] == 512 && shape[1] == 64);
    /* compressed-tensors' w = q * scale lands within half a step of the embedding (the matrix a
     * tied model multiplies by) */
    int8_t *codes = malloc(512 * 64);
    cr_assert_not_null(codes);
    lq_ct_unpack_int32(pk->data, 512, 64, 8, 1, codes);
    const float *wf = emb->data, *s = sc->data;
    int64_t bad = 0;
    for (int64_t r = 0; r < 512; r++)
        for (int64_t c = 0; c < 64; c++)
            if (fabsf((float)codes[r * 64 + c] * s[r] - wf[r * 64 + c]) > 0.5f * s[r] * (1.0f + 1e-5f) + 1e-7f)
                bad++;
    cr_expect_eq(bad, 0, "%lld head weights farther than half a step", (long long)bad);
    free(codes);
    lq_st_close(in);
    lq_st_close(q);
    /* the engine binds lm_head in W8A16, apart from the f32 embedding */
    lq_model *m;
    cr_assert_eq(lq_model_load(out, &m), LQ_OK, "%s", lq_last_error());
    cr_expect_not(lq_model_config(m)->tied_embeddings);
    cr_expect_eq(lq_model_find_linear(m, "lm_head")->fmt, LQ_WFMT_W8A16);
    cr_expect_eq(lq_model_find_linear(m, "model.embed_tokens")->fmt, LQ_WFMT_F32);
    cr_expect_neq(lq_model_find_linear(m, "lm_head")->data, lq_model_find_linear(m, "model.embed_tokens")->data);
    for (int l = 0; l < lq_model_config(m)->n_layers; l++) cr_expect_eq(lq_test_linear(m, l, "mlp.down_proj")->fmt, LQ_WFMT_W8A16);
    double ppl = ppl_of(m, out);
    lq_model_free(m);
    /* the W8A16 target is 0.5% with the head in f32; an 8-bit head adds one more
     * rounded matrix, so 1% (measured: 3.5451, -0.09%) */
    cr_expect(fabs(ppl / REF_PPL - 1.0) <= 0.01, "W8A16 + W8A16 head ppl %.6f vs fp32 %.6f", ppl, REF_PPL);
}

Test(ptq, ignore_list_naming_lm_head_keeps_it_tied, .timeout = 60) {
    char out[600], args[2048], err[1024], p[700];
    snprintf(out, sizeof out, "%s/keep", g_root);
    snprintf(args, sizeof args, "--model '%s' --out '%s' --scheme W8A16 --ignore lm_head --ignore q_proj --json",
             g_fp32, out);
    cr_assert_eq(run_ptq(args, err, sizeof err), 0, "%s", err);
    json_t *root = config_of(out);
    cr_expect(json_is_true(json_object_get(root, "tie_word_embeddings")));
    json_decref(root);
    json_t *j = stdout_json();
    cr_expect_eq(json_integer_value(json_object_get(j, "quantized")), 30, "5 layers x (k, v, o, gate, up, down)");
    json_decref(j);
    lq_st_file *q;
    snprintf(p, sizeof p, "%s/model.safetensors", out);
    cr_assert_eq(lq_st_open(p, &q), LQ_OK);
    cr_expect_null(lq_st_find(q, "lm_head.weight_packed"));
    cr_expect_null(lq_st_find(q, "lm_head.weight"));
    lq_st_close(q);
}

Test(ptq, head_the_group_fallback_ignores_stays_tied, .timeout = 60) {
    /* g128 does not divide the head's 64 columns; "ignore" keeps it in float, i.e. tied: no
     * second copy of the embedding, no lm_head tensors, config unchanged. */
    char out[600], args[2048], err[1024], p[700];
    snprintf(out, sizeof out, "%s/fbhead", g_root);
    snprintf(args, sizeof args, "--model '%s' --out '%s' --scheme W4A16 --group-size 128 --group-fallback ignore "
             "--override lm_head=W4A16", g_fp32, out);
    cr_assert_eq(run_ptq(args, err, sizeof err), 0, "%s", err);
    json_t *root = config_of(out);
    cr_expect(json_is_true(json_object_get(root, "tie_word_embeddings")));
    json_decref(root);
    lq_st_file *in, *q;
    snprintf(p, sizeof p, "%s/model.safetensors", g_fp32);
    cr_assert_eq(lq_st_open(p, &in), LQ_OK);
    snprintf(p, sizeof p, "%s/model.safetensors", out);
    cr_assert_eq(lq_st_open(p, &q), LQ_OK);
    cr_expect_eq(lq_st_count(q), lq_st_count(in), "every tensor kept, none added");
    cr_expect_null(lq_st_find(q, "lm_head.weight_packed"));
    lq_st_close(in);
    lq_st_close(q);
}

Test(ptq, tied_head_is_written_as_the_untied_model_would_be, .timeout = 60) {
    /* The same model stored untied (lm_head.weight = a copy of the embedding, placed last as HF
     * does, tie_word_embeddings false) is what transformers builds from the tied one; quantizing
     * either must give the same files, byte for byte. */
    char un[600], a[600], b[600], args[2048], err[1024], p[700], p2[700];
    snprintf(un, sizeof un, "%s/untied", g_root);
    cr_assert_eq(mkdir(un, 0755), 0);
    lq_st_file *in;
    snprintf(p, sizeof p, "%s/model.safetensors", g_fp32);
    cr_assert_eq(lq_st_open(p, &in), LQ_OK);
    int64_t n = lq_st_count(in);
    lq_tensor *ts = calloc((size_t)n + 1, sizeof *ts);
    cr_assert_not_null(ts);
    for (int64_t i = 0; i < n; i++) ts[i] = *lq_st_get(in, i);
    ts[n] = *lq_st_find(in, "model.embed_tokens.weight");
    ts[n].name = "lm_head.weight";
    snprintf(p2, sizeof p2, "%s/model.safetensors", un);
    cr_assert_eq(lq_st_save(p2, ts, n + 1), LQ_OK, "%s", lq_last_error());
    free(ts);
    lq_st_close(in);
    json_t *root = config_of(g_fp32);
    json_object_set_new(root, "tie_word_embeddings", json_false());
    snprintf(p2, sizeof p2, "%s/config.json", un);
    cr_assert_eq(json_dump_file(root, p2, JSON_INDENT(2) | JSON_PRESERVE_ORDER), 0);
    json_decref(root);
    snprintf(a, sizeof a, "%s/from_tied", g_root);
    snprintf(b, sizeof b, "%s/from_untied", g_root);
    const char *const pair[2][2] = {{g_fp32, a}, {un, b}};
    for (int k = 0; k < 2; k++) {
        snprintf(args, sizeof args, "--model '%s' --out '%s' --scheme W8A16 --override lm_head=W8A16",
                 pair[k][0], pair[k][1]);
        cr_assert_eq(run_ptq(args, err, sizeof err), 0, "%s", err);
    }
    snprintf(p, sizeof p, "%s/model.safetensors", a);
    snprintf(p2, sizeof p2, "%s/model.safetensors", b);
    cr_expect(same_file(p, p2), "weights differ between the tied and the untied input");
    json_t *ca = config_of(a), *cb = config_of(b);
    cr_expect(json_equal(ca, cb), "configs differ between the tied and the untied input");
    json_decref(ca);
    json_decref(cb);
}
