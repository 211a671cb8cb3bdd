/* test_recipe_calib.c - the calibrated modifiers in recipes: SparseGPTModifier,
 * WandaPruningModifier and GPTQModifier with llm-compressor 0.14's argument names and defaults
 * (modifiers/pruning/sparsegpt/base.py, wanda/base.py, modifiers/gptq/base.py), run by
 * quant-recipe with --calib on stories260K.
 */
#include <criterion/criterion.h>
#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "libquant/lq_model.h"
#include "libquant/lq_recipe.h"
#include "lq_format.h"
#include "lq_test_util.h"

static char g_root[256], g_fp32[512], g_calib[512];

static void setup(void) {
    char tmpl[] = "/tmp/lq_test_rcal_XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    snprintf(g_root, sizeof g_root, "%s", tmpl);
    char cmd[4096];
    cr_assert_eq(lq_test_calib_fixture(g_root, 32768, g_fp32, g_calib, cmd, sizeof cmd), 0, "calibration fixture: %s", cmd);
}

static void teardown(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(recipe_calib, .init = setup, .fini = teardown);

/* The shapes llm-compressor's examples write (sparsity_stage / quant_stage, dampening_frac,
 * block_size, mask_structure as a string, actorder). */
Test(recipe_calib, llm_compressor_arguments_parse) {
    static const char yaml[] =
        "sparsity_stage:\n"
        "  sparsity_modifiers:\n"
        "    SparseGPTModifier:\n"
        "      sparsity: 0.5\n"
        "      mask_structure: \"2:4\"\n"
        "      dampening_frac: 0.001\n"
        "      block_size: 64\n"
        "      targets: ['Linear']\n"
        "      ignore: ['re:.*lm_head']\n"
        "wanda_stage:\n"
        "  wanda_modifiers:\n"
        "    WandaPruningModifier: {sparsity: 0.3, mask_structure: \"0:0\", targets: [Linear]}\n"
        "quant_stage:\n"
        "  quant_modifiers:\n"
        "    GPTQModifier:\n"
        "      scheme: W4A16\n"
        "      targets: Linear\n"
        "      ignore: [lm_head]\n"
        "      dampening_frac: 0.05\n"
        "      block_size: 32\n";
    lq_recipe r;
    cr_assert_eq(lq_recipe_parse(yaml, strlen(yaml), "t.yaml", &r), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(r.n_stages, 3);
    const lq_recipe_modifier *s = &r.stages[0].mods[0], *w = &r.stages[1].mods[0], *g = &r.stages[2].mods[0];
    cr_expect_eq(s->kind, LQ_MOD_SPARSEGPT);
    cr_expect_eq(s->mask, LQ_MASK_NM);
    cr_expect(s->mask_n == 2 && s->mask_m == 4);
    cr_expect_float_eq(s->sparsity, 0.5, 1e-12);
    cr_expect_float_eq(s->dampening_frac, 0.001, 1e-12);
    cr_expect_eq(s->block_size, 64);
    cr_expect_str_eq(s->ignore[0], "re:.*lm_head");
    cr_expect_eq(w->kind, LQ_MOD_WANDA);
    cr_expect_eq(w->mask, LQ_MASK_UNSTRUCTURED);
    cr_expect_float_eq(w->sparsity, 0.3, 1e-12);
    cr_expect_eq(g->kind, LQ_MOD_GPTQ);
    cr_expect_eq(g->scheme, LQ_WFMT_W4A16);
    cr_expect_eq(g->group_size, 128, "the W4A16 preset's group");
    cr_expect_str_eq(g->actorder, "static", "llm-compressor 0.14's default activation order");
    cr_expect_float_eq(g->dampening_frac, 0.05, 1e-12);
    cr_expect_eq(g->block_size, 32);
    cr_expect_eq(lq_recipe_check_available(&r), LQ_OK, "%s", lq_last_error());
    for (int k = LQ_MOD_GPTQ; k <= LQ_MOD_WANDA; k++)
        if (k == LQ_MOD_GPTQ || k == LQ_MOD_SPARSEGPT || k == LQ_MOD_WANDA)
            cr_expect(lq_modifier_needs_calibration((lq_modifier_kind)k));
    cr_expect(!lq_modifier_needs_calibration(LQ_MOD_MAGNITUDE_PRUNING));
    lq_recipe_free(&r);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static int run_recipe(const char *name, const char *yaml, const char *extra, char *out, size_t cap, char *err,
                      size_t ecap) {
    char path[600], *args = malloc(2048); /* heap: its size is not the compiler's to bound */
    snprintf(path, sizeof path, "%s/%s.yaml", g_root, name);
    write_file(path, yaml);
    snprintf(out, cap, "%s/out-%s", g_root, name);
    snprintf(args, 2048, "run '%s' --model '%s' --out '%s' --threads 2 %s", path, g_fp32, out, extra);
    int rc = lq_test_run_tool("quant-recipe", args, g_root, err, ecap);
    free(args);
    return rc;
}

/* Every group of 4 of every decoder Linear (dequantized) holds at least 2 zeros; returns the
 * number of Linears checked. */
static int check_two_four(lq_model *m, lq_wfmt want) {
    int n_lin = 0;
    for (int i = 0;; i++) {
        char name[160];
        const lq_weight *w = lq_model_linear(m, i, name, sizeof name);
        if (!w) break;
        if (!strncmp(name, "lm_head", 7) || !strstr(name, "layers.")) continue;
        cr_expect_eq(w->fmt, want, "%s", name);
        float *d = malloc((size_t)(w->rows * w->cols) * sizeof *d);
        lq_wfmt_get(w->fmt)->dequant_ref(w, 0, w->rows, d);
        for (int64_t r = 0; r < w->rows; r++)
            for (int64_t g = 0; g < w->cols; g += 4) {
                int z = 0;
                for (int j = 0; j < 4; j++) z += d[r * w->cols + g + j] == 0.0f;
                cr_assert_geq(z, 2, "%s row %lld group %lld: %d zeros", name, (long long)r, (long long)g, z);
            }
        free(d);
        n_lin++;
    }
    return n_lin;
}

/* SparseGPT 2:4 then a quantizer (llm-compressor's "2:4 sparse + quantized" recipe shape): the
 * zeros survive quantization, every group of 4 of the dequantized weights holds at least 2 of
 * them. RTN: symmetric int maps a zero to code 0. GPTQ: its error feedback would move pruned
 * weights off zero (1.6% of them on stories260K before it kept them), so it keeps them. */
static void two_four_then(const char *name, const char *quant_modifier, lq_wfmt want) {
    char out[700], err[2048], extra[1024], recipe[1024];
    snprintf(extra, sizeof extra, "--calib '%s' --calib-samples 8 --calib-len 128", g_calib);
    snprintf(recipe, sizeof recipe, "sparsity_stage:\n  sparsity_modifiers:\n    SparseGPTModifier:\n"
                                    "      sparsity: 0.5\n      mask_structure: \"2:4\"\n      targets: [Linear]\n"
                                    "      ignore: [lm_head]\n"
                                    "quant_stage:\n  quant_modifiers:\n%s", quant_modifier);
    int rc = run_recipe(name, recipe, extra, out, sizeof out, err, sizeof err);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, err);
    lq_model *m;
    cr_assert_eq(lq_model_load(out, &m), LQ_OK, "%s", lq_last_error());
    cr_expect_eq(check_two_four(m, want), 35);
    lq_model_free(m);
    /* the 2:4 sparsity recorded where llm-compressor writes it for a quantized model: inside
     * quantization_config (dense storage), not at the root where quant-prune alone keeps it */
    char cfg[1100];
    snprintf(cfg, sizeof cfg, "%s/config.json", out);
    json_t *root = json_load_file(cfg, 0, NULL);
    cr_assert_not_null(root);
    json_t *sc = json_object_get(json_object_get(root, "quantization_config"), "sparsity_config");
    cr_expect_str_eq(json_string_value(json_object_get(sc, "sparsity_structure")), "2:4");
    cr_expect_str_eq(json_string_value(json_object_get(sc, "format")), "dense");
    cr_expect_null(json_object_get(root, "sparsity_config"), "a second copy at the root");
    json_decref(root);
}

Test(recipe_calib, sparsegpt_two_four_then_w8a16, .timeout = 600) {
    two_four_then("sg24", "    QuantizationModifier:\n      scheme: W8A16\n      targets: [Linear]\n"
                          "      ignore: [lm_head]\n", LQ_WFMT_W8A16);
}

/* the shape of llm-compressor's examples/quantization_2of4_sparse_w4a16 (its group 128, in
 * config_groups; here the preset, group 32, per channel on stories260K's 172-column down_proj) */
Test(recipe_calib, sparsegpt_two_four_then_gptq_w4a16, .timeout = 600) {
    two_four_then("sg24g", "    GPTQModifier:\n      scheme: W4A16\n      group_size: 32\n"
                           "      group_fallback: channel\n      targets: [Linear]\n      ignore: [lm_head]\n",
                  LQ_WFMT_W4A16);
}

/* The llm-compressor recipes copied under recipes/llm-compressor/ run as they are (config_groups,
 * their stage and modifier names) on TinyStories-656K, whose 128 / 384 columns take group 128. */
Test(recipe_calib, llm_compressor_recipes_run_unchanged, .timeout = 600) {
    static const struct {
        const char *file, *strategy;
        bool two_four;
    } rec[] = {{"gptq-w4a16-actorder-weight.yaml", "\"group_size\": 128", false},
               {"gptq-w4a16-channel.yaml", "\"strategy\": \"channel\"", false},
               {"sparsegpt-2of4.yaml", "\"group_size\": 128", true}};
    char model[1024];
    lq_test_shared("models/TinyStories-656K", model, sizeof model);
    for (size_t i = 0; i < sizeof rec / sizeof *rec; i++) {
        char args[4096], out[700], err[2048], cfg[800];
        snprintf(out, sizeof out, "%s/out-llmc-%zu", g_root, i);
        snprintf(args, sizeof args, "run '%s/recipes/llm-compressor/%s' --model '%s' --out '%s' --threads 2 "
                 "--calib '%s' --calib-samples 8 --calib-len 128", LQ_SOURCE_DIR, rec[i].file, model, out, g_calib);
        int rc = lq_test_run_tool("quant-recipe", args, g_root, err, sizeof err);
        cr_assert_eq(rc, 0, "%s: exit %d: %s", rec[i].file, rc, err);
        snprintf(cfg, sizeof cfg, "%s/config.json", out);
        char *text = lq_test_read_file(cfg, NULL);
        cr_assert_not_null(text);
        cr_expect(strstr(text, "\"num_bits\": 4") && strstr(text, rec[i].strategy), "%s: %s", rec[i].file, text);
        free(text);
        lq_model *m;
        cr_assert_eq(lq_model_load(out, &m), LQ_OK, "%s", lq_last_error());
        if (rec[i].two_four) cr_expect_eq(check_two_four(m, LQ_WFMT_W4A16), 14, "%s", rec[i].file);
        lq_model_free(m);
    }
}

/* Wanda and GPTQ modifiers run; without --calib they are refused before any work. */
Test(recipe_calib, wanda_and_gptq_run_and_need_calibration, .timeout = 600) {
    char out[700], err[2048], extra[1024];
    static const char wanda[] = "s_stage:\n  s_modifiers:\n    WandaPruningModifier: {sparsity: 0.5, targets: [Linear]}\n";
    static const char gptq[] = "q_stage:\n  q_modifiers:\n    GPTQModifier: {scheme: W8A16, targets: [Linear], "
                               "ignore: [lm_head], actorder: false}\n";
    cr_expect_eq(run_recipe("w_nocal", wanda, "", out, sizeof out, err, sizeof err), 2);
    cr_expect(strstr(err, "WandaPruningModifier (at ") && strstr(err, "needs calibration text"), "%s", err);
    snprintf(extra, sizeof extra, "--calib '%s' --calib-samples 8 --calib-len 128", g_calib);
    int rc = run_recipe("w", wanda, extra, out, sizeof out, err, sizeof err);
    cr_expect_eq(rc, 0, "exit %d: %s", rc, err);
    rc = run_recipe("g", gptq, extra, out, sizeof out, err, sizeof err);
    cr_expect_eq(rc, 0, "exit %d: %s", rc, err);
    char cfg[800];
    snprintf(cfg, sizeof cfg, "%s/config.json", out);
    char *text = lq_test_read_file(cfg, NULL);
    cr_expect(text && strstr(text, "\"num_bits\": 8"), "%s", text ? text : "(no config)");
    free(text);
    /* calibrating on the text an eval_stage scores is refused */
    char eval[2048];
    snprintf(eval, sizeof eval, "%seval_stage:\n  files: ['%s']\n  max_ppl_increase: 1000%%\n", wanda, g_calib);
    cr_expect_eq(run_recipe("w_eval", eval, extra, out, sizeof out, err, sizeof err), 2);
    cr_expect(strstr(err, "is also scored by eval_stage"), "%s", err);
}
