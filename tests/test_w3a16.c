/* test_w3a16.c - the 3-bit scheme (W3A16) end to end on TinyStories-656K: quant-ptq's RTN
 * output in compressed-tensors' layout, GPTQ against RTN, and malformed 3-bit checkpoints.
 *
 * References: compressed-tensors 0.19 (compressors/pack_quantized: weight_packed I32
 * [rows, ceil(3 cols / 32)] packed densely, weight_zero_point packed along rows, weight_shape;
 * quant_scheme.py's W3A16 preset = _int_wnam(3): int, group 128, symmetric) and its dequantization
 * w = (q - zero) * scale, applied here to the stored codes and compared with the original weights;
 * perplexities computed by this test from the written files (calibrating on WikiText-2,
 * evaluating on the TinyStories sample: never the same text); checkpoints written by
 * compressed-tensors' own compressor (tests/fixtures/ct_w3a16), which we read and score as PyTorch
 * does and which quant-ptq reproduces byte for byte.
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "libquant/lq_checkpoint.h"
#include "libquant/lq_gptq.h"
#include "libquant/lq_model.h"
#include "libquant/lq_ptq.h"
#include "libquant/lq_safetensors.h"
#include "lq_eval.h"
#include "lq_test_ppl.h"
#include "lq_test_util.h"

static char g_root[256], g_s260[512], g_calib[512], g_model[1024];

/* TinyStories-656K (dims 128 and 384: g128 divides every Linear) from the shared dir, and the
 * first 48 KiB of WikiText-2 as calibration text. */
static void setup(void) {
    char tmpl[] = "/tmp/lq_test_w3_XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    snprintf(g_root, sizeof g_root, "%s", tmpl);
    char cmd[4096];
    cr_assert_eq(lq_test_calib_fixture(g_root, 49152, g_s260, g_calib, cmd, sizeof cmd), 0, "calibration fixture: %s",
                 cmd);
    lq_test_shared("models/TinyStories-656K", g_model, sizeof g_model);
}

static void teardown(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(w3a16, .init = setup, .fini = teardown);

static void out_dir(const char *name, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%s", g_root, name);
    cr_assert_eq(mkdir(buf, 0755), 0);
}

static double ppl_of(const char *dir) { return lq_test_story_ppl(dir, g_model); }

static const lq_tensor *need(const lq_st_file *f, const char *name, lq_dtype dt, int64_t d0, int64_t d1) {
    const lq_tensor *t = lq_st_find(f, name);
    cr_assert_not_null(t, "missing %s", name);
    cr_assert_eq(t->dtype, dt, "%s: dtype %s", name, lq_dtype_name(t->dtype));
    cr_assert(t->ndim == 2 && t->shape[0] == d0 && t->shape[1] == d1, "%s: shape [%lld, %lld], want [%lld, %lld]",
              name, (long long)t->shape[0], (long long)(t->ndim > 1 ? t->shape[1] : 0), (long long)d0, (long long)d1);
    return t;
}

/* ---- RTN: config, tensors, codes ------------------------------------------------------------------ */

/* quant-ptq --scheme W3A16 (default group 128), sym and asym: the config group is the W3A16 preset,
 * the tensors have compressed-tensors' shapes, every code dequantizes by (q - zero) * scale to
 * within half a step of the original weight, and the engine binds every Linear as w3a16. */
static void check_rtn(const char *name, const char *flags, bool asym) {
    char out[600], args[2048], err[1024], p[1200];
    snprintf(out, sizeof out, "%s/%s", g_root, name);
    snprintf(args, sizeof args, "--model '%s' --out '%s' --scheme W3A16 %s", g_model, out, flags);
    cr_assert_eq(lq_test_run_tool("quant-ptq", args, g_root, err, sizeof err), 0, "%s: %s", args, err);
    /* config: one group, num_bits 3, group strategy of 128, symmetric as asked */
    snprintf(p, sizeof p, "%s/config.json", out);
    json_error_t je;
    json_t *root = json_load_file(p, 0, &je);
    cr_assert_not_null(root, "%s: %s", p, je.text);
    json_t *w = json_object_get(json_object_get(json_object_get(json_object_get(root, "quantization_config"),
                                                                "config_groups"), "group_0"), "weights");
    cr_assert(json_is_object(w), "no config_groups.group_0.weights");
    cr_expect_eq(json_integer_value(json_object_get(w, "num_bits")), 3);
    cr_expect_str_eq(json_string_value(json_object_get(w, "type")), "int");
    cr_expect_str_eq(json_string_value(json_object_get(w, "strategy")), "group");
    cr_expect_eq(json_integer_value(json_object_get(w, "group_size")), 128);
    cr_expect_eq(json_is_true(json_object_get(w, "symmetric")), !asym);
    json_decref(root);
    char *cj = lq_test_read_file(p, NULL);
    lq_ct_config ct;
    cr_assert_eq(lq_ct_config_parse(cj, p, &ct), LQ_OK, "%s", lq_last_error());
    free(cj);
    cr_expect_eq(ct.groups[0].scheme, LQ_WFMT_W3A16);
    cr_expect_str_eq(ct.format, "pack-quantized");
    /* tensors of down_proj (128 x 384: 3 groups, 36 words a row) against the f32 weights */
    lq_st_file *in, *q;
    snprintf(p, sizeof p, "%s/model.safetensors", g_model);
    cr_assert_eq(lq_st_open(p, &in), LQ_OK, "%s", lq_last_error());
    snprintf(p, sizeof p, "%s/model.safetensors", out);
    cr_assert_eq(lq_st_open(p, &q), LQ_OK, "%s", lq_last_error());
    const int64_t rows = 128, cols = 384, ng = 3;
    const lq_tensor *wt = need(in, "model.layers.1.mlp.down_proj.weight", LQ_DTYPE_F32, rows, cols);
    const lq_tensor *pk = need(q, "model.layers.1.mlp.down_proj.weight_packed", LQ_DTYPE_I32, rows, 36);
    const lq_tensor *sc = need(q, "model.layers.1.mlp.down_proj.weight_scale", LQ_DTYPE_F32, rows, ng);
    const lq_tensor *sh = lq_st_find(q, "model.layers.1.mlp.down_proj.weight_shape");
    cr_assert(sh && sh->dtype == LQ_DTYPE_I64 && lq_tensor_numel(sh) == 2);
    int64_t shape[2];
    memcpy(shape, sh->data, sizeof shape);
    cr_expect(shape[0] == rows && shape[1] == cols, "weight_shape [%lld, %lld]", (long long)shape[0], (long long)shape[1]);
    const lq_tensor *zp = lq_st_find(q, "model.layers.1.mlp.down_proj.weight_zero_point");
    int8_t *codes = malloc((size_t)(rows * cols)), zeros[128 * 3] = {0};
    lq_ct_unpack_int32(pk->data, rows, cols, 3, 1, codes);
    if (asym) {
        /* zero points packed along rows: ceil(128 * 3 / 32) = 12 rows of words */
        zp = need(q, "model.layers.1.mlp.down_proj.weight_zero_point", LQ_DTYPE_I32, 12, ng);
        lq_ct_unpack_int32(zp->data, rows, ng, 3, 0, zeros);
    } else {
        cr_expect_null(zp, "a symmetric scheme writes no zero points");
    }
    const float *wf = wt->data, *s = sc->data;
    int64_t bad = 0, lo = 0, hi = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            const float scale = s[r * ng + c / 128], z = (float)zeros[r * ng + c / 128];
            const float deq = ((float)codes[r * cols + c] - z) * scale;
            lo += codes[r * cols + c] == -4;
            hi += codes[r * cols + c] == 3;
            /* half a step, plus f32 rounding; symmetric amax / 3.5 clips the positive extreme by
             * half a step (code 3 stands for up to 3.5 steps): still half a step */
            if (fabsf(deq - wf[r * cols + c]) > 0.5f * fabsf(scale) * (1.0f + 1e-5f) + 1e-7f) bad++;
        }
    cr_expect_eq(bad, 0, "%s: %lld weights farther than half a step from their code", name, (long long)bad);
    cr_expect(lo > 0 && hi > 0, "%s: codes do not span [-4, 3] (%lld at -4, %lld at 3)", name, (long long)lo,
              (long long)hi);
    free(codes);
    lq_st_close(in);
    lq_st_close(q);
    /* the engine binds every Linear of the decoder as w3a16 g128 */
    lq_model *m;
    cr_assert_eq(lq_model_load(out, &m), LQ_OK, "%s", lq_last_error());
    static const char *const parts[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
    for (int l = 0; l < 2; l++)
        for (int i = 0; i < 7; i++) {
            const lq_weight *lw = lq_test_linear(m, l, parts[i]);
            cr_expect_eq(lw->fmt, LQ_WFMT_W3A16, "layer %d %s: fmt %d", l, parts[i], lw->fmt);
            cr_expect_eq(lw->group_size, 128);
            cr_expect_eq(lw->aux[1] != NULL, asym);
        }
    lq_model_free(m);
}

Test(w3a16, rtn_sym_layout_codes_and_binding, .timeout = 120) { check_rtn("rtn_sym", "", false); }
Test(w3a16, rtn_asym_layout_codes_and_binding, .timeout = 120) { check_rtn("rtn_asym", "--asym", true); }

/* ---- GPTQ against RTN ------------------------------------------------------------------------------ */

static lq_gptq_opts w3_g128(bool asym) {
    static const char *calib[1];
    calib[0] = g_calib;
    lq_gptq_opts o = {.calib = {.files = calib, .n_files = 1, .n_samples = 32, .sample_len = 256, .seed = 1}};
    o.ptq = (lq_ptq_opts){.scheme = LQ_WFMT_W3A16, .group_size = 128, .asym = asym};
    return o;
}

/* GPTQ W3A16 g128 beats RTN at the same settings, symmetric and asymmetric, on the perplexity of
 * the written files (which stay above the f32 model's). */
Test(w3a16, gptq_beats_rtn, .timeout = 600) {
    double pf = ppl_of(g_model);
    for (int asym = 0; asym < 2; asym++) {
        char rtn[600], gq[600];
        out_dir(asym ? "rtn_a" : "rtn_s", rtn, sizeof rtn);
        out_dir(asym ? "gptq_a" : "gptq_s", gq, sizeof gq);
        lq_gptq_opts o = w3_g128(asym);
        cr_assert_eq(lq_ptq_quantize(g_model, rtn, &o.ptq, NULL), LQ_OK, "%s", lq_last_error());
        lq_gptq_summary s;
        cr_assert_eq(lq_gptq_quantize(g_model, gq, &o, &s), LQ_OK, "%s", lq_last_error());
        cr_expect_eq(s.n_linears, 14);
        double er = 0.0, eg = 0.0;
        for (int64_t i = 0; i < s.n_linears; i++) {
            er += s.linears[i].rel_err_rtn;
            eg += s.linears[i].rel_err_gptq;
        }
        cr_expect_lt(eg, 0.9 * er, "asym %d: mean output error GPTQ %.5f vs RTN %.5f", asym, eg / 14, er / 14);
        lq_gptq_summary_free(&s);
        double pr = ppl_of(rtn), pg = ppl_of(gq);
        cr_expect_lt(pg, pr, "asym %d: PPL GPTQ %.4f vs RTN %.4f (f32 %.4f)", asym, pg, pr, pf);
        cr_expect_gt(pg, pf, "asym %d: PPL GPTQ %.4f below f32 %.4f", asym, pg, pf);
    }
}

/* ---- malformed 3-bit checkpoints ----------------------------------------------------------------- */

static void expect_refused(const char *dir, const char *needle1, const char *needle2) {
    lq_model *m = NULL;
    lq_status s = lq_model_load(dir, &m);
    lq_model_free(m);
    cr_expect_neq(s, LQ_OK, "loaded; expected a refusal naming '%s'", needle1);
    cr_expect(strstr(lq_last_error(), needle1) != NULL, "message '%s' does not name '%s'", lq_last_error(), needle1);
    cr_expect(strchr(lq_last_error(), '\n') == NULL, "not one line: '%s'", lq_last_error());
    if (needle2)
        cr_expect(strstr(lq_last_error(), needle2) != NULL, "message '%s' does not say '%s'", lq_last_error(), needle2);
}

/* Copy <dir>/model.safetensors with tensor `name` (I32 [rows, k]) replaced by I32 [rows, words]
 * of zeros. */
static void reshape_packed(const char *dir, const char *name, int64_t words) {
    char in[1024], out[1024];
    snprintf(in, sizeof in, "%s/model.safetensors", dir);
    snprintf(out, sizeof out, "%s/new.safetensors", dir);
    lq_checkpoint *c = NULL;
    cr_assert_eq(lq_checkpoint_open(dir, &c), LQ_OK, "%s", lq_last_error());
    lq_st_writer *w = NULL;
    cr_assert_eq(lq_st_writer_create(out, &w), LQ_OK, "%s", lq_last_error());
    int found = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int64_t i = 0; i < lq_checkpoint_count(c); i++) {
            const lq_tensor *t = lq_checkpoint_get(c, i);
            bool hit = strcmp(t->name, name) == 0;
            int64_t shape[2] = {t->shape[0], words};
            found += hit && pass == 0;
            if (pass == 0) {
                cr_assert_eq(lq_st_writer_declare(w, t->name, t->dtype, t->ndim, hit ? shape : t->shape), LQ_OK);
            } else if (hit) {
                void *z = calloc((size_t)(t->shape[0] * words), 4);
                cr_assert_eq(lq_st_writer_write(w, z, (size_t)(t->shape[0] * words) * 4), LQ_OK);
                free(z);
            } else {
                cr_assert_eq(lq_st_writer_write(w, t->data, t->nbytes), LQ_OK);
            }
        }
    cr_assert_eq(lq_st_writer_commit(w), LQ_OK, "%s", lq_last_error());
    lq_checkpoint_close(c);
    cr_assert_eq(found, 1, "no tensor %s", name);
    cr_assert_eq(rename(out, in), 0);
}

/* Replace the first occurrence of `from` in <dir>/config.json with `to`. */
static void edit_config(const char *dir, const char *from, const char *to) {
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", dir);
    size_t len = 0;
    char *text = lq_test_read_file(path, &len);
    cr_assert(text);
    char *at = strstr(text, from);
    cr_assert(at, "config.json has no '%s'", from);
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    fwrite(text, 1, (size_t)(at - text), f);
    fputs(to, f);
    fputs(at + strlen(from), f);
    fclose(f);
    free(text);
}

/* A 3-bit tensor whose packed shape is wrong is refused naming it: 128 columns packed 10 codes a
 * word (compressed-tensors' packing before the dense one: ceil(128 / 10) = 13 words, not 12), and
 * 4-bit words (16 a row) under a config that says num_bits 3. */
Test(w3a16, wrong_packed_shape_refused_naming_the_tensor, .timeout = 120) {
    char out[600], args[2048], err[1024];
    snprintf(out, sizeof out, "%s/bad10", g_root);
    snprintf(args, sizeof args, "--model '%s' --out '%s' --scheme W3A16", g_model, out);
    cr_assert_eq(lq_test_run_tool("quant-ptq", args, g_root, err, sizeof err), 0, "%s", err);
    reshape_packed(out, "model.layers.0.self_attn.v_proj.weight_packed", 13);
    expect_refused(out, "model.layers.0.self_attn.v_proj.weight_packed", "3-bit packing of 128 columns");
    snprintf(out, sizeof out, "%s/bad4", g_root);
    snprintf(args, sizeof args, "--model '%s' --out '%s' --scheme W4A16", g_model, out);
    cr_assert_eq(lq_test_run_tool("quant-ptq", args, g_root, err, sizeof err), 0, "%s", err);
    edit_config(out, "\"num_bits\": 4", "\"num_bits\": 3");
    expect_refused(out, "model.layers.0.self_attn.q_proj.weight_packed", "16 words per row");
}

/* quant-ptq --method gptq takes W3A16 (scheme names are case-insensitive). */
Test(w3a16, cli_gptq_takes_w3a16, .timeout = 120) {
    char out[600], args[4096], err[1024];
    snprintf(out, sizeof out, "%s/cli_gptq", g_root);
    snprintf(args, sizeof args, "--model '%s' --out '%s' --scheme w3a16 --method gptq --calib '%s' "
             "--calib-samples 4 --calib-len 64", g_model, out, g_calib);
    cr_expect_eq(lq_test_run_tool("quant-ptq", args, g_root, err, sizeof err), 0, "%s: %s", args, err);
    lq_model *m;
    cr_assert_eq(lq_model_load(out, &m), LQ_OK, "%s", lq_last_error());
    cr_expect_eq(lq_test_linear(m, 0, "mlp.up_proj")->fmt, LQ_WFMT_W3A16);
    lq_model_free(m);
}

/* A recipe naming the W3A16 preset runs GPTQ at 3 bits (quant-recipe run, the llm-compressor
 * shape). */
Test(w3a16, recipe_gptq_w3a16, .timeout = 120) {
    char recipe[600], out[600], args[4096], err[1024];
    snprintf(recipe, sizeof recipe, "%s/w3.yaml", g_root);
    FILE *f = fopen(recipe, "w");
    cr_assert_not_null(f);
    fputs("quant_stage:\n  quant_modifiers:\n    GPTQModifier: {scheme: W3A16, targets: Linear, ignore: [lm_head]}\n", f);
    fclose(f);
    snprintf(out, sizeof out, "%s/recipe_out", g_root);
    snprintf(args, sizeof args, "run '%s' --model '%s' --out '%s' --calib '%s' --calib-samples 4 --calib-len 64",
             recipe, g_model, out, g_calib);
    cr_assert_eq(lq_test_run_tool("quant-recipe", args, g_root, err, sizeof err), 0, "%s: %s", args, err);
    lq_model *m;
    cr_assert_eq(lq_model_load(out, &m), LQ_OK, "%s", lq_last_error());
    for (int l = 0; l < 2; l++) {
        const lq_weight *w = lq_test_linear(m, l, "mlp.down_proj");
        cr_expect_eq(w->fmt, LQ_WFMT_W3A16);
        cr_expect_eq(w->group_size, 128);
    }
    lq_model_free(m);
}

/* ---- against compressed-tensors' own compressor (tests/fixtures/ct_w3a16) ------------------------- */

/* The fixtures were written from stories260K by compressed-tensors 0.19 itself
 * (scripts/ct_fixtures/make_ct_w3a16_fixtures.py: apply_quantization_config, calculate_qparams
 * on each group's min/max, ModelCompressor.compress_model "pack-quantized"), and reference.json
 * scored in PyTorch on the weights its PackedQuantizationCompressor.decompress returns. */
static double fixture_ref(const char *dir, const char *key) {
    char path[1200];
    snprintf(path, sizeof path, "%s/reference.json", dir);
    json_error_t err;
    json_t *r = json_load_file(path, 0, &err);
    cr_assert(r, "%s: %s", path, err.text);
    json_t *v = json_object_get(r, key);
    cr_assert(json_is_number(v), "%s: no number '%s'", path, key);
    double d = json_number_value(v);
    json_decref(r);
    return d;
}

static void check_ct_fixture(const char *name, const char *flags) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/ct_w3a16/%s", LQ_FIXTURES_DIR, name);
    /* 1. our engine reads compressed-tensors' bytes and scores what PyTorch scored (float
     *    rounding only: 1e-5 of the PPL, as test_llmc_fixtures) */
    lq_model *m;
    cr_assert_eq(lq_model_load(dir, &m), LQ_OK, "%s", lq_last_error());
    cr_expect_eq(lq_test_linear(m, 0, "mlp.down_proj")->fmt, LQ_WFMT_W3A16);
    lq_model_free(m);
    const lq_ppl_result r = lq_test_story_score(dir, dir);
    const double ref = fixture_ref(dir, "ppl");
    cr_expect_eq(r.n_scored, (int64_t)fixture_ref(dir, "tokens"));
    cr_expect(fabs(r.ppl - ref) <= 1e-5 * ref, "%s: PPL %.7f, compressed-tensors + PyTorch %.7f", name, r.ppl, ref);
    /* 2. quant-ptq writes the same tensors, byte for byte, from the same f32 model */
    char out[600], args[4096], err[1024], path[1100];
    snprintf(out, sizeof out, "%s/%s", g_root, name);
    snprintf(args, sizeof args, "--model '%s' --out '%s' --scheme W3A16 %s", g_s260, out, flags);
    cr_assert_eq(lq_test_run_tool("quant-ptq", args, g_root, err, sizeof err), 0, "%s: %s", args, err);
    lq_st_file *a, *b;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    cr_assert_eq(lq_st_open(path, &a), LQ_OK, "%s", lq_last_error());
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    cr_assert_eq(lq_st_open(path, &b), LQ_OK, "%s", lq_last_error());
    cr_expect_eq(lq_st_count(a), lq_st_count(b), "%s: tensor counts differ", name);
    for (int64_t i = 0; i < lq_st_count(a); i++) {
        const lq_tensor *t = lq_st_get(a, i), *u = lq_st_find(b, t->name);
        cr_assert_not_null(u, "%s: we wrote no %s", name, t->name);
        cr_expect(t->dtype == u->dtype && t->ndim == u->ndim && t->nbytes == u->nbytes &&
                  memcmp(t->shape, u->shape, sizeof(int64_t) * (size_t)t->ndim) == 0,
                  "%s: %s: dtype/shape differ", name, t->name);
        if (t->nbytes == u->nbytes)
            cr_expect_eq(memcmp(t->data, u->data, t->nbytes), 0, "%s: %s: bytes differ", name, t->name);
    }
    lq_st_close(a);
    lq_st_close(b);
}

Test(w3a16, ct_fixture_sym_channel, .timeout = 120) { check_ct_fixture("w3a16_sym_channel", "--group-size -1"); }
Test(w3a16, ct_fixture_asym_group4, .timeout = 120) { check_ct_fixture("w3a16_asym_g4", "--group-size 4 --asym"); }
