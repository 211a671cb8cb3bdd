/* test_recipe_run.c - quant-recipe run end to end on stories260K: every example recipe in
 * recipes/, eval_stage gates, distill_stage, the atomic output and its recipe.yaml + JSON.
 *
 * References: the fp32 perplexity 3.548202 of stories260K on tinystories_sample.txt (per unit
 * split on <|endoftext|>, shared/models/SOURCES.md, llama2.c forward pass), and the issue's
 * bounds for the schemes (W8A16 within 0.5% of it, FP8 and W8A8 within 2%, as test_ptq).
 * The distill_stage records are checked against quant-distill's (another implementation of
 * the same record layout) and the teacher identity against the input model.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libquant.h"
#include "libquant/lq_distill.h"
#include "libquant/lq_ptq.h"
#include "libquant/lq_recipe.h"
#include "lq_eval.h"
#include "lq_test_util.h"

#define REF_PPL 3.548202

static char g_root[256], g_fp32[512], g_text[512];

static void setup(void) {
    char tmpl[] = "/tmp/lq_test_recipe_run_XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    snprintf(g_root, sizeof g_root, "%s", tmpl);
    snprintf(g_fp32, sizeof g_fp32, "%s/fp32", g_root);
    lq_test_shared("data/tinystories_sample.txt", g_text, sizeof g_text);
    char cmd[4096];
    cr_assert_eq(lq_test_convert_stories260k(g_fp32, cmd, sizeof cmd), 0, "quant-convert failed: %s", cmd);
}

static void teardown(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(recipe_run, .init = setup, .fini = teardown);

/* quant-recipe with `args` (run from g_root); exit code, stderr into err, stdout kept in
 * g_root/stdout.txt. */
static int recipe(const char *args, char *err, size_t cap) {
    char tool[1024], cmd[4096], errf[600];
    snprintf(errf, sizeof errf, "%s/stderr.txt", g_root);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s >'%s/stdout.txt' 2>'%s'", g_root,
             lq_test_tool("quant-recipe", tool, sizeof tool), args, g_root, errf);
    int rc = system(cmd);
    cr_assert(rc != -1 && WIFEXITED(rc), "%s", cmd);
    char *e = lq_test_read_file(errf, NULL);
    snprintf(err, cap, "%s", e ? e : "");
    free(e);
    return WEXITSTATUS(rc);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

/* A recipe file in g_root from text; returns its path. */
static const char *recipe_file(const char *name, const char *text) {
    static char path[700];
    snprintf(path, sizeof path, "%s/%s", g_root, name);
    write_file(path, text);
    return path;
}

/* Perplexity of a result on the reference protocol (1804 tokens scored). */
static double ppl_of(const char *dir) {
    lq_model *m;
    cr_assert_eq(lq_model_load(dir, &m), LQ_OK, "%s", lq_last_error());
    lq_tokenizer *tok;
    cr_assert_eq(lq_eval_load_tokenizer(m, dir, NULL, &tok), LQ_OK, "%s", lq_last_error());
    char *text = NULL;
    size_t len = 0;
    cr_assert_eq(lq_text_read_file(g_text, &text, &len), LQ_OK);
    lq_ppl_opts o = {.per_line = true, .separator = "<|endoftext|>"};
    lq_ppl_result r;
    lq_status s = lq_eval_perplexity(m, tok, NULL, text, len, &o, &r);
    free(text);
    lq_tokenizer_free(tok);
    lq_model_free(m);
    cr_assert_eq(s, LQ_OK, "%s", lq_last_error());
    cr_expect_eq(r.n_scored, 1804);
    return r.ppl;
}

static json_t *load_json(const char *path) {
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    cr_assert_not_null(j, "%s: %s", path, e.text);
    return j;
}

/* The output of a successful run: the model, its tokenizer, the recipe byte for byte, and
 * quant-recipe.json naming this tool version with a timing per stage. */
static json_t *check_output(const char *out, const char *recipe_path, int n_stages) {
    char p[1200];
    const char *need[] = {"config.json", "model.safetensors", "tokenizer.json", "recipe.yaml", "quant-recipe.json"};
    for (size_t i = 0; i < sizeof need / sizeof *need; i++) {
        snprintf(p, sizeof p, "%s/%s", out, need[i]);
        cr_expect(lq_test_exists(p), "%s missing", p);
    }
    snprintf(p, sizeof p, "%s/.steps", out);
    cr_expect(!lq_test_exists(p), "intermediate steps left in the output");
    cr_expect(!lq_test_leftovers(out), "temp dir left next to %s", out);
    snprintf(p, sizeof p, "%s/recipe.yaml", out);
    char *a = lq_test_read_file(p, NULL), *b = lq_test_read_file(recipe_path, NULL);
    cr_assert(a && b);
    cr_expect_str_eq(a, b, "recipe.yaml is not the recipe");
    free(a);
    free(b);
    snprintf(p, sizeof p, "%s/quant-recipe.json", out);
    json_t *j = load_json(p);
    cr_expect_str_eq(json_string_value(json_object_get(j, "tool")), "quant-recipe");
    cr_expect_str_eq(json_string_value(json_object_get(j, "version")), LQ_VERSION_STRING);
    json_t *st = json_object_get(j, "stages");
    cr_expect_eq(json_array_size(st), (size_t)n_stages);
    for (size_t i = 0; i < json_array_size(st); i++)
        cr_expect(json_is_real(json_object_get(json_array_get(st, i), "seconds")), "stage %zu has no timing", i);
    cr_expect(json_is_real(json_object_get(j, "seconds")));
    return j;
}

static lq_ct_config ct_config(const char *out) {
    char p[1200];
    snprintf(p, sizeof p, "%s/config.json", out);
    char *cj = lq_test_read_file(p, NULL);
    cr_assert_not_null(cj);
    lq_ct_config ct;
    cr_assert_eq(lq_ct_config_parse(cj, p, &ct), LQ_OK, "%s", lq_last_error());
    free(cj);
    return ct;
}

/* ---- every example recipe --------------------------------------------------------------------- */

typedef enum expect_kind { RUNS, UNAVAILABLE, REFUSED_GROUP } expect_kind;

typedef struct example {
    const char *file;
    expect_kind kind;
    lq_wfmt scheme;   /* RUNS: the scheme in the result's quantization_config */
    double ppl_rel;         /* RUNS: |PPL / 3.548202 - 1| bound; < 0: none */
} example;

/* Every file in recipes/ must be listed: a new example without an expectation fails. Pruning
 * recipes stay UNAVAILABLE until quant-prune is wired (then they move to RUNS). stories260K's
 * layers are 64 and 172 columns wide: group 128 divides neither and compressed-tensors has no
 * partial groups, so the g128 examples say group_fallback: channel (without it the run is
 * refused by name: recipe_errors_abort_before_work). */
static const example g_examples[] = {
    {"w8a16.yaml", RUNS, LQ_WFMT_W8A16, 0.005},
    {"fp8.yaml", RUNS, LQ_WFMT_FP8_E4M3, 0.02},
    {"w8a8.yaml", RUNS, LQ_WFMT_W8A8, 0.02},
    /* int4 with one scale per row (group_fallback: channel) on a 260K-parameter model: a sanity
     * bound (no external target exists for it), loose on purpose */
    {"w4a16-g128.yaml", RUNS, LQ_WFMT_W4A16, 0.35},
    /* pruning without fine-tuning wrecks a 260K-parameter model (2:4 alone: PPL ~116); there is
     * no external number to hold these to, so only that they run, with the right scheme: their
     * pruning step is held to quant-prune's output in prune_steps_match_quant_prune */
    {"magnitude50-w4a16.yaml", RUNS, LQ_WFMT_W4A16, -1},
    {"2of4-w8a16.yaml", RUNS, LQ_WFMT_W8A16, -1},
    {"ffn-structured-w8a16.yaml", RUNS, LQ_WFMT_W8A16, -1},
};

static const example *find_example(const char *name) {
    for (size_t i = 0; i < sizeof g_examples / sizeof *g_examples; i++)
        if (!strcmp(g_examples[i].file, name)) return &g_examples[i];
    return NULL;
}

Test(recipe_run, every_example_recipe, .timeout = 300) {
    /* absolute: recipe() runs the tool from g_root (__FILE__ is relative under ccache's
     * CCACHE_BASEDIR) */
    char dir[600];
    snprintf(dir, sizeof dir, "%s/../../recipes", LQ_FIXTURES_DIR);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s", dir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml")) continue;
        const example *ex = find_example(e->d_name);
        cr_assert_not_null(ex, "recipes/%s has no expectation in test_recipe_run.c", e->d_name);
        char path[1200], out[1200], args[4096], err[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        snprintf(out, sizeof out, "%s/out-%s", g_root, e->d_name);
        snprintf(args, sizeof args, "run '%s' --model '%s' --out '%s' --threads 2", path, g_fp32, out);
        int rc = recipe(args, err, sizeof err);
        if (ex->kind == RUNS) {
            cr_assert_eq(rc, 0, "%s: exit %d: %s", e->d_name, rc, err);
            lq_recipe r;
            cr_assert_eq(lq_recipe_load(path, &r), LQ_OK, "%s", lq_last_error());
            json_decref(check_output(out, path, r.n_stages));
            lq_recipe_free(&r);
            lq_ct_config ct = ct_config(out);
            cr_expect_eq(ct.n_groups, 1, "%s", e->d_name);
            cr_expect_eq(ct.groups[0].scheme, ex->scheme, "%s", e->d_name);
            double ppl = ppl_of(out);
            cr_expect(isfinite(ppl) && ppl > 1.0, "%s: PPL %f", e->d_name, ppl);
            if (ex->ppl_rel >= 0)
                cr_expect(fabs(ppl / REF_PPL - 1.0) <= ex->ppl_rel, "%s: PPL %.6f vs fp32 %.6f (bound %g)", e->d_name,
                      ppl, REF_PPL, ex->ppl_rel);
        } else {
            /* refused by the same checks `check` makes, before any work: nothing written */
            cr_expect(!lq_test_exists(out) && !lq_test_leftovers(out), "%s: output written", e->d_name);
            if (ex->kind == UNAVAILABLE) {
                cr_expect_eq(rc, 3, "%s: exit %d: %s", e->d_name, rc, err);
                cr_expect(strstr(err, "is not available in this build"), "%s: %s", e->d_name, err);
            } else {
                cr_expect_eq(rc, 2, "%s: exit %d: %s", e->d_name, rc, err);
                cr_expect(strstr(err, "quant-recipe: error: group_size 128 does not divide the 64 columns of "
                                      "model.layers.0.self_attn.q_proj.weight"), "%s: %s", e->d_name, err);
            }
        }
        n++;
    }
    closedir(d);
    cr_expect_eq(n, (int)(sizeof g_examples / sizeof *g_examples), "every listed example exists");
}

/* ---- eval_stage --------------------------------------------------------------------------------- */

/* A passing gate: the eval_stage's baseline PPL is the reference number (same protocol), the
 * report's baseline row agrees, and --json prints what quant-recipe.json holds. */
Test(recipe_run, eval_stage_passes_and_reports, .timeout = 240) {
    char text[2048], out[700], args[4096], err[2048];
    snprintf(text, sizeof text,
             "quant_stage:\n"
             "  quant_modifiers:\n"
             "    QuantizationModifier: {scheme: W8A16, ignore: [lm_head]}\n"
             "eval_stage:\n"
             "  files: ['%s']\n"
             "  per_line: true\n"
             "  separator: '<|endoftext|>'\n"
             "  max_ppl_increase: 0.5%%\n"
             "  max_mean_kld: 0.01\n"
             "  min_top1_agreement: 90%%\n",
             g_text);
    const char *rp = recipe_file("gate-ok.yaml", text);
    snprintf(out, sizeof out, "%s/gate-ok", g_root);
    snprintf(args, sizeof args, "run '%s' --model '%s' --out '%s' --json", rp, g_fp32, out);
    cr_assert_eq(recipe(args, err, sizeof err), 0, "%s", err);
    json_t *j = check_output(out, rp, 2);
    json_t *f0 = json_array_get(json_object_get(json_array_get(json_object_get(j, "stages"), 1), "files"), 0);
    cr_assert_not_null(f0);
    cr_expect(fabs(json_real_value(json_object_get(f0, "baseline_ppl")) - REF_PPL) < 1e-4, "baseline PPL %.6f",
              json_real_value(json_object_get(f0, "baseline_ppl")));
    cr_expect_eq(json_integer_value(json_object_get(f0, "tokens_scored")), 1804);
    json_t *rows = json_object_get(json_object_get(j, "report"), "rows");
    cr_assert_eq(json_array_size(rows), 2);
    cr_expect(fabs(json_real_value(json_object_get(json_array_get(rows, 0), "ppl")) - REF_PPL) < 1e-4);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(rows, 0), "format")), "f32");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(rows, 1), "format")), "W8A16");
    /* stdout under --json is the same document */
    char p[800];
    snprintf(p, sizeof p, "%s/stdout.txt", g_root);
    json_t *so = load_json(p);
    cr_expect(json_equal(json_object_get(so, "report"), json_object_get(j, "report")));
    json_decref(so);
    json_decref(j);
}

/* A failing gate: exit 1, one line saying why and that nothing was written, no output. */
Test(recipe_run, failing_threshold_writes_nothing, .timeout = 240) {
    char text[2048], out[700], args[4096], err[2048];
    snprintf(text, sizeof text,
             "quant_stage:\n"
             "  quant_modifiers:\n"
             "    QuantizationModifier: {scheme: FP8}\n"
             "eval_stage:\n"
             "  files: ['%s']\n"
             "  ctx: 128\n"
             "  max_mean_kld: 0.0000001\n",
             g_text);
    const char *rp = recipe_file("gate-fail.yaml", text);
    snprintf(out, sizeof out, "%s/gate-fail", g_root);
    snprintf(args, sizeof args, "run '%s' --model '%s' --out '%s'", rp, g_fp32, out);
    int rc = recipe(args, err, sizeof err);
    cr_expect_eq(rc, 1, "exit %d: %s", rc, err);
    cr_expect(strstr(err, "quant-recipe: error: eval_stage at "), "%s", err);
    cr_expect(strstr(err, "gate-fail.yaml:4:1 failed: mean KLD "), "%s", err);
    cr_expect(strstr(err, "exceeds max_mean_kld 1e-07; nothing was written to "), "%s", err);
    cr_expect(!lq_test_exists(out), "output committed despite the failed gate");
    cr_expect(!lq_test_leftovers(out), "temp dir left behind");
    /* an absolute PPL gate: PPL points, not percent */
    snprintf(text, sizeof text,
             "q_stage:\n  q_modifiers:\n    QuantizationModifier: {scheme: W8A8}\n"
             "eval_stage:\n  files: ['%s']\n  ctx: 128\n  max_ppl_increase: 0\n",
             g_text);
    rp = recipe_file("gate-abs.yaml", text);
    snprintf(args, sizeof args, "run '%s' --model '%s' --out '%s'", rp, g_fp32, out);
    rc = recipe(args, err, sizeof err);
    if (rc == 1) cr_expect(strstr(err, "(max_ppl_increase 0); nothing was written"), "%s", err);
    else cr_expect_eq(rc, 0, "W8A8 may only pass an increase-0 gate by improving PPL: %s", err);
    cr_expect(!lq_test_leftovers(out));
}

/* ---- errors before any work --------------------------------------------------------------------- */

Test(recipe_run, recipe_errors_abort_before_work) {
    char out[700], args[4096], err[2048];
    snprintf(out, sizeof out, "%s/never", g_root);
    const char *bad = recipe_file("bad.yaml", "quant_stage:\n  quant_modifiers:\n    QuantizationModifier: {scheme: W8A16, "
                                              "group_sise: 4}\n");
    snprintf(args, sizeof args, "run '%s' --model '%s' --out '%s'", bad, g_fp32, out);
    cr_expect_eq(recipe(args, err, sizeof err), 3, "%s", err);
    cr_expect(strstr(err, "did you mean 'group_size'?"), "%s", err);
    cr_expect(!lq_test_exists(out) && !lq_test_leftovers(out));
    /* a missing eval file is found before the quantization runs */
    const char *nofile = recipe_file("nofile.yaml", "quant_stage:\n  quant_modifiers:\n    QuantizationModifier: "
                                                    "{scheme: W8A16}\neval_stage:\n  files: [does-not-exist.txt]\n");
    snprintf(args, sizeof args, "run '%s' --model '%s' --out '%s'", nofile, g_fp32, out);
    cr_expect_eq(recipe(args, err, sizeof err), 4, "%s", err);
    cr_expect(strstr(err, "does-not-exist.txt (eval_stage at "), "%s", err);
    cr_expect(!lq_test_exists(out) && !lq_test_leftovers(out));
    /* the output may not be inside the input */
    const char *ok = recipe_file("ok.yaml", "quant_stage:\n  quant_modifiers:\n    QuantizationModifier: {scheme: W8A16}\n");
    snprintf(args, sizeof args, "run '%s' --model '%s' --out '%s/sub'", ok, g_fp32, g_fp32);
    cr_expect_eq(recipe(args, err, sizeof err), 2, "%s", err);
    /* an existing output is refused without --force */
    mkdir(out, 0755);
    snprintf(args, sizeof args, "run '%s' --model '%s' --out '%s'", ok, g_fp32, out);
    cr_expect_eq(recipe(args, err, sizeof err), 4, "%s", err);
    /* group 128 on 64-wide layers without a fallback: refused by name before any work */
    const char *g128 = recipe_file("g128.yaml", "quant_stage:\n  quant_modifiers:\n    QuantizationModifier: "
                                                "{scheme: W4A16, group_size: 128}\n");
    snprintf(args, sizeof args, "run '%s' --model '%s' --out '%s/g128'", g128, g_fp32, g_root);
    cr_expect_eq(recipe(args, err, sizeof err), 2, "%s", err);
    cr_expect(strstr(err, "quant-recipe: error: group_size 128 does not divide the 64 columns of "
                          "model.layers.0.self_attn.q_proj.weight"), "%s", err);
    /* a training key an earlier draft guessed is refused with the reason */
    const char *train = recipe_file("train.yaml", "distill_stage:\n  file: a.txt\n  steps: 100\n");
    snprintf(args, sizeof args, "check '%s'", train);
    cr_expect_eq(recipe(args, err, sizeof err), 3, "%s", err);
    cr_expect(strstr(err, "does not train a student"), "%s", err);
}

/* Audit defect 8: `check --model` passed what `run` failed on after the work was done. Each
 * case is refused by check (naming the recipe position) and by run before anything is written. */
static void expect_check_and_run_refuse(const char *name, const char *text, const char *model, int code,
                                        const char *want) {
    char out[700], args[4096], err[2048];
    const char *rp = recipe_file(name, text);
    snprintf(args, sizeof args, "check '%s' --model '%s'", rp, model);
    cr_expect_eq(recipe(args, err, sizeof err), code, "check %s: %s", name, err);
    cr_expect(strstr(err, want), "check %s: '%s' in: %s", name, want, err);
    snprintf(out, sizeof out, "%s/never-%s", g_root, name);
    snprintf(args, sizeof args, "run '%s' --model '%s' --out '%s'", rp, model, out);
    cr_expect_eq(recipe(args, err, sizeof err), code, "run %s: %s", name, err);
    cr_expect(strstr(err, want), "run %s: '%s' in: %s", name, want, err);
    cr_expect(!lq_test_exists(out) && !lq_test_leftovers(out), "run %s wrote nothing", name);
}

Test(recipe_run, check_finds_what_run_would, .timeout = 120) {
    char text[2048], bare[700], cmd[4096];
    /* the model without its tokenizer.json */
    snprintf(bare, sizeof bare, "%s/no-tokenizer", g_root);
    snprintf(cmd, sizeof cmd, "mkdir '%s' && cp '%s/config.json' '%s/model.safetensors' '%s/'", bare, g_fp32, g_fp32,
             bare);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    snprintf(text, sizeof text,
             "quant_stage:\n  quant_modifiers:\n    QuantizationModifier: {scheme: W8A16}\n"
             "eval_stage:\n  files: ['%s']\n",
             g_text);
    expect_check_and_run_refuse("notok.yaml", text, bare, 3, "tokenizer.json");
    snprintf(text, sizeof text, "distill_stage:\n  file: '%s'\n  k: 4\n", g_text);
    expect_check_and_run_refuse("notok-distill.yaml", text, bare, 3, "tokenizer.json");
    /* k above the teacher's vocabulary (stories260K: 512) */
    snprintf(text, sizeof text, "distill_stage:\n  file: '%s'\n  k: 513\n", g_text);
    expect_check_and_run_refuse("k.yaml", text, g_fp32, 2, "distill_stage k 513 is larger than the vocabulary (512)");
    /* a feature layer the teacher does not have (5 layers: 0 .. 5 are valid) */
    snprintf(text, sizeof text, "distill_stage:\n  file: '%s'\n  features: [0, 6]\n", g_text);
    expect_check_and_run_refuse("features.yaml", text, g_fp32, 2, "layer 6 of a 5-layer teacher");
    /* a missing eval file, with no --model at all */
    char args[4096], err[2048];
    const char *nofile = recipe_file("nofile-check.yaml", "eval_stage:\n  files: [does-not-exist.txt]\n");
    snprintf(args, sizeof args, "check '%s'", nofile);
    cr_expect_eq(recipe(args, err, sizeof err), 4, "%s", err);
    cr_expect(strstr(err, "does-not-exist.txt (eval_stage at "), "%s", err);
}

/* ---- targets are the recipe's, not the driver's defaults ------------------------------------------ */

Test(recipe_run, targets_and_group_size_honored, .timeout = 120) {
    char out[700], args[4096], err[2048];
    snprintf(out, sizeof out, "%s/mlp-w4", g_root);
    /* group 4 divides both 64 and 172; only the MLP is targeted */
    const char *rp = recipe_file("mlp.yaml", "quant_stage:\n  quant_modifiers:\n    QuantizationModifier:\n"
                                             "      scheme: W4A16\n      group_size: 4\n"
                                             "      targets: ['re:.*mlp\\..*']\n");
    snprintf(args, sizeof args, "run '%s' --model '%s' --out '%s'", rp, g_fp32, out);
    cr_assert_eq(recipe(args, err, sizeof err), 0, "%s", err);
    json_decref(check_output(out, rp, 1));
    lq_ct_config ct = ct_config(out);
    cr_expect_eq(ct.groups[0].scheme, LQ_WFMT_W4A16);
    cr_expect_eq(ct.groups[0].group_size, 4);
    lq_model *m;
    cr_assert_eq(lq_model_load(out, &m), LQ_OK, "%s", lq_last_error());
    for (int l = 0; l < lq_model_config(m)->n_layers; l++) {
        cr_expect_eq(lq_test_linear(m, l, "mlp.down_proj")->fmt, LQ_WFMT_W4A16, "layer %d down", l);
        cr_expect_eq(lq_test_linear(m, l, "self_attn.q_proj")->fmt, LQ_WFMT_F32, "layer %d q_proj is not targeted", l);
    }
    lq_model_free(m);
}

/* target_bpw (ours, quant-ptq --target-bpw in a recipe): the plan mixes the candidates under
 * the target, the result's bits per weight over the Linears is at or under it, both schemes are
 * written, and the clashing or malformed forms are refused by name before any work. */
Test(recipe_run, target_bpw_mixes_candidates_under_the_target, .timeout = 120) {
    char out[700], args[4096], err[2048];
    snprintf(out, sizeof out, "%s/mix", g_root);
    /* W4A16 g32 (5 bits per weight with its f32 scales) fits stories260K's 64-column inputs, not
     * its 172-column down_proj, which can only be W8A16 (8.5): 7 bits needs a mix */
    const char *rp = recipe_file("mix.yaml", "quant_stage:\n  quant_modifiers:\n    QuantizationModifier:\n"
                                             "      targets: [Linear]\n      target_bpw: 7\n"
                                             "      candidates: [W8A16, 'W4A16:32']\n");
    snprintf(args, sizeof args, "check '%s' --model '%s'", rp, g_fp32);
    cr_assert_eq(recipe(args, err, sizeof err), 0, "%s", err);
    char so[700];
    snprintf(so, sizeof so, "%s/stdout.txt", g_root);
    char *text = lq_test_read_file(so, NULL);
    cr_expect(text && strstr(text, "target_bpw=7 candidates=[W8A16, W4A16 g32]"), "%s", text ? text : "");
    free(text);
    snprintf(args, sizeof args, "run '%s' --model '%s' --out '%s'", rp, g_fp32, out);
    cr_assert_eq(recipe(args, err, sizeof err), 0, "%s", err);
    json_t *j = check_output(out, rp, 1);
    json_t *mod = json_array_get(json_object_get(json_array_get(json_object_get(j, "stages"), 0), "modifiers"), 0);
    cr_expect_eq(json_real_value(json_object_get(mod, "target_bpw")), 7.0);
    json_t *result = json_array_get(json_object_get(json_object_get(j, "report"), "rows"), 1);
    const double bpw = json_real_value(json_object_get(result, "bpw_linear"));
    cr_expect(bpw > 5.0 && bpw <= 7.0, "bits per weight over the Linears %g, target 7", bpw);
    json_decref(j);
    lq_ct_config ct = ct_config(out);
    bool w8 = false, w4 = false;
    for (int g = 0; g < ct.n_groups; g++) {
        w8 |= ct.groups[g].scheme == LQ_WFMT_W8A16;
        w4 |= ct.groups[g].scheme == LQ_WFMT_W4A16 && ct.groups[g].group_size == 32;
    }
    cr_expect(w8 && w4, "both candidates written (%d groups)", ct.n_groups);
    static const struct {
        const char *args, *want;
    } bad[] = {{"scheme: W8A16, target_bpw: 6", "'scheme' does not go with 'target_bpw'"},
               {"candidates: [W8A16]", "'candidates' needs 'target_bpw'"},
               {"target_bpw: 6, candidates: [W5A16]", "unknown scheme 'W5A16'"},
               {"target_bpw: 0", "target_bpw"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char body[512], name[32];
        snprintf(body, sizeof body, "quant_stage:\n  quant_modifiers:\n    QuantizationModifier: {%s}\n", bad[i].args);
        snprintf(name, sizeof name, "bad_mix%zu.yaml", i);
        snprintf(out, sizeof out, "%s/never_mix", g_root);
        snprintf(args, sizeof args, "run '%s' --model '%s' --out '%s'", recipe_file(name, body), g_fp32, out);
        const int rc = recipe(args, err, sizeof err);
        cr_expect(rc == 2 || rc == 3, "%s: exit %d", bad[i].args, rc);
        cr_expect(strstr(err, bad[i].want), "%s: %s", bad[i].args, err);
        cr_expect(!lq_test_exists(out));
    }
}

/* ---- distill_stage ------------------------------------------------------------------------------ */

/* The stage writes the teacher's soft labels into <out>/distill; per-line records equal
 * quant-distill --per-line on the same file (both tokenize each unit whole). */
Test(recipe_run, distill_stage_matches_quant_distill, .timeout = 240) {
    char text[2048], out[700], args[4096], err[2048], tool[1024], cmd[8192], ref[700];
    snprintf(text, sizeof text,
             "quant_stage:\n  quant_modifiers:\n    QuantizationModifier: {scheme: W8A16}\n"
             "distill_stage:\n  file: '%s'\n  k: 8\n  per_line: true\n  separator: '<|endoftext|>'\n"
             "  features: [0, 5]\n",
             g_text);
    const char *rp = recipe_file("distill.yaml", text);
    snprintf(out, sizeof out, "%s/with-distill", g_root);
    snprintf(args, sizeof args, "run '%s' --model '%s' --out '%s'", rp, g_fp32, out);
    cr_assert_eq(recipe(args, err, sizeof err), 0, "%s", err);
    json_decref(check_output(out, rp, 2));
    snprintf(ref, sizeof ref, "%s/ref-distill", g_root);
    snprintf(cmd, sizeof cmd, "'%s' --model '%s' --file '%s' --out '%s' --k 8 --per-line --separator '<|endoftext|>' "
             "--features 0,5 >/dev/null 2>&1",
             lq_test_tool("quant-distill", tool, sizeof tool), g_fp32, g_text, ref);
    int rc = system(cmd);
    cr_assert(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "%s", cmd);
    char ds[800];
    snprintf(ds, sizeof ds, "%s/distill", out);
    lq_distill_reader *a, *b;
    cr_assert_eq(lq_distill_open(ds, &a), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(lq_distill_open(ref, &b), LQ_OK, "%s", lq_last_error());
    const lq_distill_meta *ma = lq_distill_reader_meta(a), *mb = lq_distill_reader_meta(b);
    cr_expect_eq(ma->teacher_id, mb->teacher_id, "the teacher is the input model, not the quantized one");
    cr_expect_eq(ma->tokenizer_hash, mb->tokenizer_hash);
    cr_expect_eq(ma->k, 8);
    cr_expect_eq(ma->n_feat_layers, 2);
    cr_assert_eq(lq_distill_count(a), lq_distill_count(b));
    cr_expect_eq(lq_distill_count(a), 5, "one record per story");
    for (int64_t i = 0; i < lq_distill_count(a); i++) {
        lq_distill_record ra, rb;
        cr_assert_eq(lq_distill_get(a, i, &ra), LQ_OK);
        cr_assert_eq(lq_distill_get(b, i, &rb), LQ_OK);
        cr_assert_eq(ra.n, rb.n, "record %lld", (long long)i);
        cr_expect_eq(memcmp(ra.tokens, rb.tokens, (size_t)ra.n * sizeof *ra.tokens), 0);
        cr_expect_eq(memcmp(ra.topk_ids, rb.topk_ids, (size_t)ra.n * 8 * sizeof *ra.topk_ids), 0);
        cr_expect_eq(memcmp(ra.topk_logp, rb.topk_logp, (size_t)ra.n * 8 * sizeof *ra.topk_logp), 0);
        cr_expect_eq(memcmp(ra.features, rb.features, (size_t)2 * ra.n * ma->dim * sizeof *ra.features), 0);
    }
    lq_distill_close(a);
    lq_distill_close(b);
}

/* dir_a/file and dir_b/file both read and hold the same bytes; `ref` names the tool that wrote
 * dir_b (the reference) in the message. */
static void expect_same_file(const char *dir_a, const char *dir_b, const char *file, const char *ref) {
    char pa[1000], pb[1000];
    snprintf(pa, sizeof pa, "%s/%s", dir_a, file);
    snprintf(pb, sizeof pb, "%s/%s", dir_b, file);
    size_t na = 0, nb = 0;
    char *a = lq_test_read_file(pa, &na), *b = lq_test_read_file(pb, &nb);
    cr_assert(a && b, "%s: cannot read %s or %s", ref, pa, pb);
    cr_expect(na == nb && memcmp(a, b, na) == 0, "%s differs from %s's (%zu vs %zu bytes)", file, ref, na, nb);
    free(a);
    free(b);
}

/* One driver (lq_distill_run) under both tools: a chunked distill_stage writes the very bytes
 * quant-distill writes with the same settings (before, the recipe tokenized the file at once and
 * could cut chunks differently). */
Test(recipe_run, distill_stage_is_quant_distill_byte_for_byte, .timeout = 240) {
    char text[2048], out[700], args[4096], err[2048], tool[1024], cmd[8192], ref[700];
    snprintf(text, sizeof text, "distill_stage:\n  file: '%s'\n  k: 4\n  ctx: 64\n", g_text);
    const char *rp = recipe_file("distill-chunks.yaml", text);
    snprintf(out, sizeof out, "%s/chunks-distill", g_root);
    snprintf(args, sizeof args, "run '%s' --model '%s' --out '%s'", rp, g_fp32, out);
    cr_assert_eq(recipe(args, err, sizeof err), 0, "%s", err);
    snprintf(ref, sizeof ref, "%s/ref-chunks", g_root);
    snprintf(cmd, sizeof cmd, "'%s' --model '%s' --file '%s' --out '%s' --k 4 --ctx 64 >/dev/null 2>&1",
             lq_test_tool("quant-distill", tool, sizeof tool), g_fp32, g_text, ref);
    int rc = system(cmd);
    cr_assert(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "%s", cmd);
    char dist[800];
    snprintf(dist, sizeof dist, "%s/distill", out);
    expect_same_file(dist, ref, "manifest.json", "quant-distill");
    expect_same_file(dist, ref, "shard-00000.lqd", "quant-distill");
}

/* ---- pruning steps ------------------------------------------------------------------------------- */

/* A pruning modifier is quant-prune with the recipe's arguments: the same bytes. (The recipe's
 * "2:4" counts zeros, quant-prune's --nm counts kept weights; for 2:4 both read the same, so
 * 1:4 is checked too: one zero in four = --nm 3:4.) */
Test(recipe_run, prune_steps_match_quant_prune, .timeout = 240) {
    static const struct {
        const char *name, *yaml, *flags;
    } cases[] = {
        {"nm24", "s_stage:\n  m_modifiers:\n    MagnitudePruningModifier: {mask_structure: \"2:4\"}\n", "--method nm --nm 2:4"},
        {"nm14", "s_stage:\n  m_modifiers:\n    MagnitudePruningModifier: {mask_structure: \"1:4\"}\n", "--method nm --nm 3:4"},
        {"mag", "s_stage:\n  m_modifiers:\n    MagnitudePruningModifier: {sparsity: 30%}\n", "--method magnitude --sparsity 0.3"},
        {"ffn", "s_stage:\n  m_modifiers:\n    StructuredPruningModifier: {structure: ffn, sparsity: 0.25}\n",
         "--method ffn --keep 0.75"},
        {"heads", "s_stage:\n  m_modifiers:\n    StructuredPruningModifier: {structure: heads, sparsity: 0.5}\n",
         "--method heads --keep 0.5"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char name[64], out[700], ref[700], args[4096], err[2048], tool[1024], cmd[8192];
        snprintf(name, sizeof name, "%s.yaml", cases[i].name);
        const char *rp = recipe_file(name, cases[i].yaml);
        snprintf(out, sizeof out, "%s/r-%s", g_root, cases[i].name);
        snprintf(ref, sizeof ref, "%s/p-%s", g_root, cases[i].name);
        snprintf(args, sizeof args, "run '%s' --model '%s' --out '%s'", rp, g_fp32, out);
        cr_assert_eq(recipe(args, err, sizeof err), 0, "%s: %s", cases[i].name, err);
        snprintf(cmd, sizeof cmd, "'%s' --model '%s' --out '%s' %s >/dev/null 2>&1",
                 lq_test_tool("quant-prune", tool, sizeof tool), g_fp32, ref, cases[i].flags);
        int rc = system(cmd);
        cr_assert(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "%s", cmd);
        char label[96];
        snprintf(label, sizeof label, "quant-prune (%s)", cases[i].name);
        expect_same_file(out, ref, "model.safetensors", label);
        expect_same_file(out, ref, "config.json", label);
    }
}
