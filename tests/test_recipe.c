/* test_recipe.c - the recipe language: every error class with its exact file:line:col, did-you-mean,
 * the target matcher (llm-compressor semantics), the plan on stories260K (tensor counts and sizes
 * from the llama2.c header documented in ../shared/models/SOURCES.md), and every example recipe. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "libquant.h"
#include "libquant/lq_recipe.h"
#include "libquant/lq_targets.h"
#include "lq_test_util.h"

/* Parse `text` (named "t.yaml") and expect failure with exactly `msg`. */
static void expect_error(const char *text, lq_status want, const char *msg) {
    lq_recipe r;
    lq_status s = lq_recipe_parse(text, strlen(text), "t.yaml", &r);
    cr_assert_eq(s, want, "status %s, want %s (%s)", lq_status_name(s), lq_status_name(want), lq_last_error());
    cr_assert_str_eq(lq_last_error(), msg);
    cr_assert_eq(r.n_stages, 0);
    cr_assert_null(r.stages);
}

static lq_recipe parse_ok(const char *text) {
    lq_recipe r;
    lq_status s = lq_recipe_parse(text, strlen(text), "t.yaml", &r);
    cr_assert_eq(s, LQ_OK, "%s", lq_last_error());
    return r;
}

/* ---- the llm-compressor shape ------------------------------------------------------------------ */

Test(recipe, llm_compressor_w4a16_shape) {
    /* The W4A16 recipe of llm-compressor's examples, with our group_size spelled out. */
    lq_recipe r = parse_ok("quant_stage:\n"
                           "  quant_modifiers:\n"
                           "    QuantizationModifier:\n"
                           "      scheme: W4A16\n"
                           "      targets: Linear\n"
                           "      ignore: [\"lm_head\", \"re:.*mlp.down_proj$\"]\n");
    cr_assert_eq(r.n_stages, 1);
    cr_assert_str_eq(r.stages[0].name, "quant_stage");
    cr_assert_eq(r.stages[0].n_mods, 1);
    const lq_recipe_modifier *m = &r.stages[0].mods[0];
    cr_assert_eq(m->kind, LQ_MOD_QUANTIZATION);
    cr_assert_eq(m->scheme, LQ_WFMT_W4A16);
    cr_assert(!m->asym);
    cr_assert_eq(m->group_size, 128, "the W4A16 preset's group size");
    cr_assert_eq(m->pos.line, 3);
    cr_assert_eq(m->pos.col, 5);
    cr_assert_str_eq(m->group, "quant_modifiers");
    cr_assert_eq(m->n_targets, 1);
    cr_assert_str_eq(m->targets[0], "Linear");
    cr_assert_eq(m->n_ignore, 2);
    cr_assert_str_eq(m->ignore[1], "re:.*mlp.down_proj$");
    lq_recipe_free(&r);
}

/* compressed-tensors' W3A16 preset (_int_wnam(3): group 128, symmetric) in both quantizing
 * modifiers, and its compressed size: ceil(3 cols / 32) words a row plus a scale per group. */
Test(recipe, w3a16_preset) {
    lq_recipe r = parse_ok("quant_stage:\n"
                           "  quant_modifiers:\n"
                           "    GPTQModifier: {scheme: w3a16, targets: Linear, ignore: [lm_head]}\n");
    const lq_recipe_modifier *m = &r.stages[0].mods[0];
    cr_assert_eq(m->kind, LQ_MOD_GPTQ);
    cr_assert_eq(m->scheme, LQ_WFMT_W3A16);
    cr_assert_str_eq(lq_preset_name(m->scheme, m->asym), "W3A16");
    cr_assert_eq(m->group_size, 128, "the W3A16 preset's group size");
    lq_recipe_free(&r);
    /* 64 x 256, g128, f32 scales: 64 * 24 words * 4 + 64 * 2 * 4 + 16 (weight_shape) */
    cr_expect_eq(lq_ct_weight_bytes(LQ_WFMT_W3A16, 128, false, 64, 256, 4), 64u * 24 * 4 + 64 * 2 * 4 + 16);
}

Test(recipe, defaults_and_stage_kinds) {
    lq_recipe r = parse_ok("version: 1.1\n"
                           "sparsity_stage:\n"
                           "  run_type: oneshot\n"
                           "  sparsity_modifiers:\n"
                           "    SparseGPTModifier: {mask_structure: \"2:4\"}\n"
                           "quant_modifiers:\n"
                           "  GPTQModifier: {scheme: w8a16, actorder: false}\n"
                           "eval_stage:\n"
                           "  files: [a.txt, b.txt]\n"
                           "  max_ppl_increase: 2%\n"
                           "  max_kld: 0.05\n"
                           "distill_stage:\n"
                           "  file: c.txt\n");
    cr_assert_eq(r.n_stages, 4);
    const lq_recipe_modifier *sp = &r.stages[0].mods[0];
    cr_assert_eq(sp->mask, LQ_MASK_NM);
    cr_assert_eq(sp->mask_n, 2);
    cr_assert_eq(sp->mask_m, 4);
    cr_assert_float_eq(sp->sparsity, 0.5, 1e-12);
    cr_assert_str_eq(sp->targets[0], "Linear", "default targets");
    cr_assert_str_eq(r.stages[1].name, "default_stage");
    const lq_recipe_modifier *g = &r.stages[1].mods[0];
    cr_assert_eq(g->scheme, LQ_WFMT_W8A16, "scheme names are case-insensitive");
    cr_assert_eq(g->group_size, 0);
    cr_assert_eq(g->block_size, 128);
    cr_assert_float_eq(g->dampening_frac, 0.01, 1e-12);
    cr_assert_eq(r.stages[2].kind, LQ_STAGE_EVAL);
    cr_assert_eq(r.stages[2].eval.n_files, 2);
    cr_assert_float_eq(r.stages[2].eval.max_ppl_increase, 0.02, 1e-12);
    cr_assert_float_eq(r.stages[2].eval.max_kld, 0.05, 1e-12);
    cr_assert_eq(r.stages[2].eval.ctx, 512);
    cr_assert_eq(r.stages[3].kind, LQ_STAGE_DISTILL);
    cr_assert_eq(r.stages[3].distill.k, 32, "quant-distill's --k default");
    cr_assert_str_eq(r.stages[3].distill.files[0], "c.txt");
    lq_recipe_free(&r);
}

/* ---- error classes, exact positions ------------------------------------------------------------- */

Test(recipe, unknown_modifier_did_you_mean) {
    expect_error("quant_stage:\n"
                 "  quant_modifiers:\n"
                 "    GPTQModifer:\n"
                 "      scheme: W4A16\n",
                 LQ_ERR_FORMAT,
                 "unknown modifier 'GPTQModifer' at t.yaml:3:5; did you mean 'GPTQModifier'?");
}

Test(recipe, unknown_argument_did_you_mean) {
    expect_error("quant_stage:\n"
                 "  quant_modifiers:\n"
                 "    QuantizationModifier:\n"
                 "      scheme: W8A16\n"
                 "      ignored: [lm_head]\n",
                 LQ_ERR_FORMAT,
                 "unknown argument 'ignored' of QuantizationModifier at t.yaml:5:7; did you mean 'ignore'?");
}

Test(recipe, unknown_keys_everywhere) {
    expect_error("quant_stag:\n  quant_modifiers: {QuantizationModifier: {scheme: W8A16}}\n", LQ_ERR_FORMAT,
                 "unknown top-level key 'quant_stag' (expected '<name>_stage' or '<name>_modifiers') at "
                 "t.yaml:1:1; did you mean 'quant_stage'?");
    expect_error("quant_stage:\n  quant_modifier:\n    QuantizationModifier: {scheme: W8A16}\n", LQ_ERR_FORMAT,
                 "unknown key 'quant_modifier' in stage 'quant_stage' (expected '<name>_modifiers' or run_type) "
                 "at t.yaml:2:3; did you mean 'quant_modifiers'?");
    expect_error("eval_stage:\n  files: [a]\n  max_ppl_increse: 2%\n", LQ_ERR_FORMAT,
                 "unknown key 'max_ppl_increse' in eval_stage at t.yaml:3:3; did you mean 'max_ppl_increase'?");
    /* Nothing close: no suggestion. */
    expect_error("foo: 1\n", LQ_ERR_FORMAT,
                 "unknown top-level key 'foo' (expected '<name>_stage' or '<name>_modifiers') at t.yaml:1:1");
}

Test(recipe, wrong_types) {
    expect_error("quant_stage:\n  quant_modifiers:\n    QuantizationModifier:\n      scheme: W4A16\n"
                 "      group_size: abc\n",
                 LQ_ERR_FORMAT,
                 "argument 'group_size' of QuantizationModifier must be an integer, got 'abc' at t.yaml:5:19");
    expect_error("quant_stage:\n  quant_modifiers:\n    QuantizationModifier:\n      scheme: [W4A16]\n",
                 LQ_ERR_FORMAT, "argument 'scheme' of QuantizationModifier must be a scheme name, got a list at t.yaml:4:15");
    expect_error("quant_stage:\n  quant_modifiers:\n    QuantizationModifier:\n      scheme: W8A16\n"
                 "      targets: [Linear, [q_proj]]\n",
                 LQ_ERR_FORMAT,
                 "argument 'targets' of QuantizationModifier must be a string or a list of strings, got a list "
                 "in the list at t.yaml:5:25");
    expect_error("quant_stage: [1, 2]\n", LQ_ERR_FORMAT, "stage 'quant_stage' must be a mapping, got a list at t.yaml:1:14");
    expect_error("eval_stage:\n  files: a.txt\n  per_line: maybe\n", LQ_ERR_FORMAT,
                 "eval_stage 'per_line' must be true or false, got 'maybe' at t.yaml:3:13");
    expect_error("sparsity_stage:\n  sparsity_modifiers:\n    WandaPruningModifier: {sparsity: half}\n",
                 LQ_ERR_FORMAT,
                 "argument 'sparsity' of WandaPruningModifier must be a number or a percentage, got 'half' at t.yaml:3:38");
}

Test(recipe, out_of_range) {
    expect_error("sparsity_stage:\n  sparsity_modifiers:\n    MagnitudePruningModifier:\n      sparsity: 1.5\n",
                 LQ_ERR_INVALID_ARG,
                 "argument 'sparsity' of MagnitudePruningModifier must be in (0, 0.99], got '1.5' at t.yaml:4:17");
    expect_error("sparsity_stage:\n  sparsity_modifiers:\n    MagnitudePruningModifier:\n      mask_structure: \"4:4\"\n",
                 LQ_ERR_INVALID_ARG,
                 "argument 'mask_structure' of MagnitudePruningModifier '4:4': need 1 <= N < M <= 256 (N zeros in "
                 "every M weights) at t.yaml:4:23");
}

/* Audit defect 10: sscanf("%d:%d") wrapped 4294967300 to 4, so '2:4294967300' read as 2:4.
 * Every integer in a recipe is parsed strictly: digits only, no overflow, no sign or space. */
Test(recipe, mask_structure_integers_are_strict) {
    const char *bad[] = {"2:4294967300", "4294967298:4", "2:+4", "+2:4", " 2:4", "2: 4", "2:4 ", "-1:4",
                         "2:99999999999999999999", "2:"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char text[256], msg[256];
        snprintf(text, sizeof text, "s_stage:\n  s_modifiers:\n    MagnitudePruningModifier: {mask_structure: \"%s\"}\n",
                 bad[i]);
        snprintf(msg, sizeof msg,
                 "argument 'mask_structure' of MagnitudePruningModifier must be 'unstructured' or 'N:M' (e.g. '2:4'), "
                 "got '%s' at t.yaml:3:48", bad[i]);
        expect_error(text, LQ_ERR_FORMAT, msg);
    }
    lq_recipe r = parse_ok("s_stage:\n  s_modifiers:\n    MagnitudePruningModifier: {mask_structure: \"16:256\"}\n");
    cr_assert_eq(r.stages[0].mods[0].mask_n, 16);
    cr_assert_eq(r.stages[0].mods[0].mask_m, 256);
    lq_recipe_free(&r);
}

Test(recipe, missing_required) {
    expect_error("quant_stage:\n  quant_modifiers:\n    QuantizationModifier:\n      targets: [Linear]\n",
                 LQ_ERR_FORMAT, "QuantizationModifier needs argument 'scheme' at t.yaml:3:5");
    expect_error("p_stage:\n  p_modifiers:\n    MagnitudePruningModifier: {targets: Linear}\n", LQ_ERR_FORMAT,
                 "MagnitudePruningModifier needs argument 'sparsity' (or an N:M mask_structure) at t.yaml:3:5");
    expect_error("p_stage:\n  p_modifiers:\n    StructuredPruningModifier: {sparsity: 0.25}\n", LQ_ERR_FORMAT,
                 "StructuredPruningModifier needs argument 'structure' (ffn or heads) at t.yaml:3:5");
    expect_error("eval_stage:\n  ctx: 128\n", LQ_ERR_FORMAT, "eval_stage needs 'files' at t.yaml:1:1");
}

Test(recipe, impossible_combinations) {
    /* 2:4 blocks split by a group size of 6. */
    expect_error("sparsity_stage:\n"
                 "  sparsity_modifiers:\n"
                 "    MagnitudePruningModifier: {mask_structure: \"2:4\"}\n"
                 "quant_stage:\n"
                 "  quant_modifiers:\n"
                 "    QuantizationModifier: {scheme: W4A16, group_size: 6}\n",
                 LQ_ERR_INVALID_ARG,
                 "impossible combination: 2:4 sparsity (MagnitudePruningModifier at t.yaml:3:5) with group_size 6 "
                 "(QuantizationModifier at t.yaml:6:5): each quantization group must hold whole 4-weight blocks");
    expect_error("s_stage:\n  s_modifiers:\n    WandaPruningModifier: {mask_structure: \"2:4\", sparsity: 0.6}\n",
                 LQ_ERR_INVALID_ARG,
                 "impossible combination: sparsity 0.6 with mask_structure '2:4' (which prunes 0.5) at t.yaml:3:61");
    expect_error("q_stage:\n  q_modifiers:\n    QuantizationModifier: {scheme: W8A16, group_size: 128}\n",
                 LQ_ERR_INVALID_ARG,
                 "group_size applies to the W4A16 and W3A16 schemes only (W8A16 is per channel) at t.yaml:3:55");
    expect_error("q_stage:\n  q_modifiers:\n    QuantizationModifier: {scheme: W8A8}\n"
                 "s_stage:\n  s_modifiers:\n    SmoothQuantModifier: {smoothing_strength: 0.8}\n",
                 LQ_ERR_INVALID_ARG,
                 "SmoothQuantModifier at t.yaml:6:5 comes after QuantizationModifier at t.yaml:3:5: smoothing must "
                 "precede the quantization it prepares");
}

Test(recipe, schemes) {
    expect_error("q_stage:\n  q_modifiers:\n    QuantizationModifier: {scheme: NVFP4}\n", LQ_ERR_UNSUPPORTED,
                 "scheme 'NVFP4' is not available in this build (have W8A16, W4A16, W4A16_ASYM, W3A16, W8A8, FP8) at "
                 "t.yaml:3:36");
    expect_error("q_stage:\n  q_modifiers:\n    QuantizationModifier: {scheme: W4A61}\n", LQ_ERR_FORMAT,
                 "unknown scheme 'W4A61' at t.yaml:3:36; did you mean 'W4A16'?");
}

/* config_groups, as llm-compressor's example recipes name a scheme: one group, mapped onto the
 * preset it equals (compressed-tensors' QuantizationArgs defaults: int, 8 bits, symmetric). */
static lq_recipe_modifier first_mod(const char *text, lq_recipe *r) {
    *r = parse_ok(text);
    return r->stages[0].mods[0];
}

Test(recipe, config_groups) {
    lq_recipe r;
    lq_recipe_modifier m = first_mod(
        "q_stage:\n  q_modifiers:\n    GPTQModifier:\n      ignore: [lm_head]\n      config_groups:\n"
        "        group_0:\n          weights: {num_bits: 4, type: int, symmetric: true, strategy: group, "
        "group_size: 64, actorder: weight}\n          targets: [Linear]\n", &r);
    cr_expect_eq(m.scheme, LQ_WFMT_W4A16);
    cr_expect_eq(m.group_size, 64);
    cr_expect(!m.asym);
    cr_expect_str_eq(m.actorder, "weight");
    cr_assert_eq(m.n_targets, 1);
    cr_expect_str_eq(m.targets[0], "Linear");
    lq_recipe_free(&r);
    /* per channel, asymmetric, targets from the group */
    m = first_mod("q_stage:\n  q_modifiers:\n    QuantizationModifier:\n      config_groups:\n        g:\n"
                  "          targets: ['re:.*mlp.*']\n"
                  "          weights: {num_bits: 4, symmetric: false, strategy: channel}\n", &r);
    cr_expect_eq(m.scheme, LQ_WFMT_W4A16);
    cr_expect_eq(m.group_size, -1);
    cr_expect(m.asym);
    cr_assert_eq(m.n_targets, 1);
    cr_expect_str_eq(m.targets[0], "re:.*mlp.*");
    lq_recipe_free(&r);
    /* llm-compressor's examples/quantization_w8a8_int8 group: int8 channel + int8 dynamic per token */
    m = first_mod("q_stage:\n  q_modifiers:\n    GPTQModifier:\n      config_groups:\n        group_0:\n"
                  "          weights: {num_bits: 8, type: int, symmetric: true, strategy: channel}\n"
                  "          input_activations: {num_bits: 8, type: int, symmetric: true, dynamic: true, "
                  "strategy: token}\n          targets: [Linear]\n", &r);
    cr_expect_eq(m.scheme, LQ_WFMT_W8A8);
    cr_expect_eq(m.group_size, 0);
    lq_recipe_free(&r);
    m = first_mod("q_stage:\n  q_modifiers:\n    QuantizationModifier:\n      config_groups:\n        group_0:\n"
                  "          weights: {num_bits: 8, type: int, strategy: channel}\n          targets: Linear\n", &r);
    cr_expect_eq(m.scheme, LQ_WFMT_W8A16);
    lq_recipe_free(&r);
    m = first_mod("q_stage:\n  q_modifiers:\n    QuantizationModifier:\n      config_groups:\n        group_0:\n"
                  "          weights: {num_bits: 8, type: float, strategy: channel}\n"
                  "          input_activations: {num_bits: 8, type: float, dynamic: true, strategy: token}\n", &r);
    cr_expect_eq(m.scheme, LQ_WFMT_FP8_E4M3);
    lq_recipe_free(&r);

    expect_error("q_stage:\n  q_modifiers:\n    QuantizationModifier:\n      config_groups: {}\n",
                 LQ_ERR_UNSUPPORTED,
                 "argument 'config_groups' of QuantizationModifier: 0 groups; one config group per modifier "
                 "(split the groups into one modifier each) at t.yaml:4:22");
    expect_error("q_stage:\n  q_modifiers:\n    QuantizationModifier:\n      config_groups:\n        a: {weights: "
                 "{num_bits: 4, strategy: group, group_size: 128}}\n        b: {weights: {num_bits: 8, strategy: "
                 "channel}}\n", LQ_ERR_UNSUPPORTED,
                 "argument 'config_groups' of QuantizationModifier: 2 groups; one config group per modifier "
                 "(split the groups into one modifier each) at t.yaml:5:9");
    /* W4A8 (int8 activations with int4 weights): no kernels here */
    expect_error("q_stage:\n  q_modifiers:\n    QuantizationModifier:\n      config_groups:\n        g:\n"
                 "          weights: {num_bits: 4, strategy: group, group_size: 128}\n"
                 "          input_activations: {num_bits: 8, dynamic: true, strategy: token}\n",
                 LQ_ERR_UNSUPPORTED,
                 "config group 'g' of QuantizationModifier: int 4-bit group weights with these input activations "
                 "is not a scheme this build has (W8A16, W4A16[_ASYM] and W3A16 by group or channel, W8A8 with "
                 "int8 dynamic per-token activations, FP8) at t.yaml:6:20");
    expect_error("q_stage:\n  q_modifiers:\n    QuantizationModifier:\n      scheme: W4A16\n      config_groups:\n"
                 "        g: {weights: {num_bits: 8, strategy: channel}}\n", LQ_ERR_FORMAT,
                 "QuantizationModifier: give 'config_groups' or 'scheme' / 'group_size', not both at t.yaml:6:9");
    expect_error("q_stage:\n  q_modifiers:\n    QuantizationModifier:\n      config_groups:\n"
                 "        g: {weights: {num_bits: 8, strategy: channel, observer: mse, bogus: 1}}\n",
                 LQ_ERR_FORMAT, "config group 'g' of QuantizationModifier: weights: unknown key 'bogus' at t.yaml:5:70");
}

Test(recipe, yaml_level_errors) {
    expect_error("quant_stage:\n  quant_modifiers: [a\n", LQ_ERR_FORMAT,
                 "YAML syntax error at t.yaml:3:1: did not find expected ',' or ']' (while parsing a flow sequence at line 2)");
    expect_error("", LQ_ERR_FORMAT, "recipe t.yaml is empty: expected stages such as 'quant_stage:'");
    expect_error("q_stage:\n  q_modifiers:\n    QuantizationModifier: {scheme: W8A16}\n"
                 "q_stage:\n  q_modifiers:\n    QuantizationModifier: {scheme: W8A16}\n",
                 LQ_ERR_FORMAT, "duplicate key 'q_stage' (first at line 1) at t.yaml:4:1");
    expect_error("a_stage: {}\n---\nb_stage: {}\n", LQ_ERR_FORMAT,
                 "second YAML document at t.yaml:2:1: a recipe is one document");
    expect_error("q_stage:\n  q_modifiers:\n    QuantizationModifier: {scheme: W8A16, targets: [\"re:(\"]}\n",
                 LQ_ERR_INVALID_ARG,
                 "argument 'targets' of QuantizationModifier: target 're:(': bad regex at offset 1: missing "
                 "closing parenthesis at t.yaml:3:53");
}

Test(recipe, hostile_yaml) {
    /* Deep nesting stops at the event pass: the top-level mapping is level 1, so the 32nd '['
     * (column 10 + 31) is level 33. */
    char deep[512];
    int n = 0;
    n += snprintf(deep + n, sizeof deep - n, "a_stage: ");
    for (int i = 0; i < 40; i++) deep[n++] = '[';
    deep[n] = 0;
    lq_recipe r;
    cr_assert_eq(lq_recipe_parse(deep, strlen(deep), "t.yaml", &r), LQ_ERR_FORMAT);
    cr_assert_str_eq(lq_last_error(), "nesting deeper than 32 levels at t.yaml:1:41");
    /* Aliases work where a value is expected (a shared ignore list). */
    lq_recipe ok = parse_ok("q_stage:\n  q_modifiers:\n"
                            "    QuantizationModifier: {scheme: W8A16, ignore: &ig [lm_head, re:.*down_proj]}\n"
                            "    GPTQModifier: {scheme: W8A16, ignore: *ig}\n");
    cr_assert_eq(ok.stages[0].mods[1].n_ignore, 2);
    lq_recipe_free(&ok);
    /* An alias bomb runs out of visits instead of time. */
    char *bomb = malloc(1 << 16);
    n = sprintf(bomb, "x: &l0 [a, a, a, a, a, a, a, a]\n");
    for (int i = 1; i < 8; i++) n += sprintf(bomb + n, "y%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]\n", i,
                                             i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
    cr_assert_neq(lq_recipe_parse(bomb, (size_t)n, "t.yaml", &r), LQ_OK);
    free(bomb);
    /* A huge scalar is shortened in the message. */
    size_t big = 1 << 20;
    char *huge = malloc(big + 16);
    memset(huge, 'x', big);
    memcpy(huge + big, ": 1\n", 5);
    cr_assert_eq(lq_recipe_parse(huge, strlen(huge), "t.yaml", &r), LQ_ERR_FORMAT);
    cr_assert_lt(strlen(lq_last_error()), 300);
    free(huge);
}

/* ---- spelling ------------------------------------------------------------------------------------ */

Test(recipe, edit_distance) {
    /* Textbook values: kitten/sitting (Wikipedia "Levenshtein distance"); CA -> ABC is 3 under
     * optimal string alignment, which never edits a substring twice (Wikipedia
     * "Damerau-Levenshtein distance"); an adjacent swap is one edit. */
    cr_assert_eq(lq_edit_distance("kitten", "sitting"), 3);
    cr_assert_eq(lq_edit_distance("flaw", "lawn"), 2);
    cr_assert_eq(lq_edit_distance("", "abc"), 3);
    cr_assert_eq(lq_edit_distance("CA", "ABC"), 3);
    cr_assert_eq(lq_edit_distance("W4A61", "W4A16"), 1);
    cr_assert_eq(lq_edit_distance("GPTQModifer", "GPTQModifier"), 1);
    static const char *const names[] = {"ignore", "targets", "scheme"};
    cr_assert_str_eq(lq_suggest("tragets", names, 3), "targets");
    cr_assert_null(lq_suggest("zzzzzz", names, 3));
}

/* ---- target matching ----------------------------------------------------------------------------- */

static bool match(const char *spec, const char *module, lq_module_class cls) {
    bool m = false;
    cr_assert_eq(lq_target_match_spec(spec, module, cls, &m), LQ_OK, "%s", lq_last_error());
    return m;
}

Test(recipe, targets_llm_compressor_semantics) {
    const char *q = "model.layers.0.self_attn.q_proj";
    /* compressed-tensors match_name: "re:" is re.match, anchored at the start only. */
    cr_assert(match("re:.*q_proj", q, LQ_MODULE_LINEAR));
    cr_assert(match("re:model\\.layers\\.0\\.", q, LQ_MODULE_LINEAR), "a prefix match is a match (re.match)");
    cr_assert_not(match("re:layers", q, LQ_MODULE_LINEAR), "anchored at the start");
    cr_assert(match("re:.*mlp.down_proj$", "model.layers.3.mlp.down_proj", LQ_MODULE_LINEAR));
    cr_assert_not(match("re:.*mlp.down_proj$", "model.layers.3.mlp.down_proj_x", LQ_MODULE_LINEAR));
    /* match_class */
    cr_assert(match("Linear", q, LQ_MODULE_LINEAR));
    cr_assert_not(match("Linear", "model.embed_tokens", LQ_MODULE_EMBEDDING));
    cr_assert(match("Embedding", "model.embed_tokens", LQ_MODULE_EMBEDDING));
    /* exact and bare names */
    cr_assert(match("lm_head", "lm_head", LQ_MODULE_LINEAR));
    cr_assert(match(q, q, LQ_MODULE_LINEAR));
    cr_assert_not(match("model.layers.0.self_attn", q, LQ_MODULE_LINEAR), "exact names are exact");
    cr_assert(match("q_proj", q, LQ_MODULE_LINEAR));
    cr_assert_not(match("proj", q, LQ_MODULE_LINEAR));
    lq_target *t;
    cr_assert_eq(lq_target_compile("re:[", &t), LQ_ERR_INVALID_ARG);
    cr_assert_eq(lq_target_compile("", &t), LQ_ERR_INVALID_ARG);
}

Test(recipe, module_of_tensor) {
    char m[64];
    lq_tensor t = {.name = "model.layers.1.mlp.up_proj.weight", .ndim = 2, .shape = {172, 64}};
    cr_assert_eq(lq_module_of_tensor(&t, m, sizeof m), LQ_MODULE_LINEAR);
    cr_assert_str_eq(m, "model.layers.1.mlp.up_proj");
    lq_tensor e = {.name = "model.embed_tokens.weight", .ndim = 2, .shape = {512, 64}};
    cr_assert_eq(lq_module_of_tensor(&e, m, sizeof m), LQ_MODULE_EMBEDDING);
    lq_tensor n = {.name = "model.layers.1.input_layernorm.weight", .ndim = 1, .shape = {64}};
    cr_assert_eq(lq_module_of_tensor(&n, m, sizeof m), LQ_MODULE_NORM);
}

/* ---- against stories260K ------------------------------------------------------------------------- */

/* stories260K converted to an HF directory once per process. */
static const char *s260(void) {
    static char dir[256];
    if (dir[0]) return dir;
    snprintf(dir, sizeof dir, "/tmp/lq_test_recipe_%d", (int)getpid());
    char conv[512], bin[512], tok[512], cmd[4096];
    lq_test_tool("quant-convert", conv, sizeof conv);
    lq_test_shared("models/stories260K/stories260K.bin", bin, sizeof bin);
    lq_test_shared("models/stories260K/tok512.bin", tok, sizeof tok);
    snprintf(cmd, sizeof cmd, "rm -rf %s && %s --llama2c %s --tokenizer %s --out %s >/dev/null 2>&1", dir, conv, bin,
             tok, dir);
    int rc = system(cmd);
    cr_assert(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "quant-convert failed: %s", cmd);
    return dir;
}

static void rm_s260(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf /tmp/lq_test_recipe_%d", (int)getpid());
    if (system(cmd) != 0) fprintf(stderr, "could not remove the converted model\n");
}

TestSuite(recipe_model, .fini = rm_s260);

/* SOURCES.md header of stories260K: dim 64, hidden 172, 5 layers, 8 heads, 4 kv heads (kv dim
 * 32), vocab 512, tied classifier; 260,032 trainable parameters, all f32. */
#define L 5
#define LINEAR_PARAMS (L * (64 * 64 + 32 * 64 + 32 * 64 + 64 * 64 + 3 * 172 * 64)) /* 226,560 */

Test(recipe_model, plan_w8a16_counts_and_size) {
    lq_checkpoint *ck;
    cr_assert_eq(lq_checkpoint_open(s260(), &ck), LQ_OK, "%s", lq_last_error());
    lq_recipe r = parse_ok("q_stage:\n  q_modifiers:\n    QuantizationModifier:\n"
                           "      {scheme: W8A16, targets: [Linear], ignore: [lm_head, re:.*layers\\.4\\.]}\n");
    lq_plan p;
    cr_assert_eq(lq_recipe_plan(&r, ck, &p), LQ_OK, "%s", lq_last_error());
    cr_assert_eq(p.n_mods, 1);
    cr_assert_eq(p.mods[0].n_tensors, 4 * 7, "7 Linear per layer, layer 4 ignored, no lm_head (tied)");
    cr_assert_eq(p.params_total, 260032);
    cr_assert_eq(p.params_quantized, LINEAR_PARAMS / 5 * 4);
    cr_assert_eq(p.bytes_in, 260032ull * 4);
    /* W8A16 pack-quantized: cols/4 int32 words per row (cols 64, 172 are multiples of 4), an f32
     * scale per row, 16 bytes of weight_shape; 600 rows per layer (64+32+32+64+172+172+64). */
    const uint64_t q = (uint64_t)LINEAR_PARAMS / 5 * 4 + 4 * 600 * 4 + 4 * 7 * 16;
    cr_assert_eq(p.bytes_out, q + (260032ull - LINEAR_PARAMS / 5 * 4) * 4);
    lq_plan_free(&p);
    lq_recipe_free(&r);
    lq_checkpoint_close(ck);
}

static lq_status plan_text(const char *text, lq_plan *p) {
    lq_checkpoint *ck;
    cr_assert_eq(lq_checkpoint_open(s260(), &ck), LQ_OK, "%s", lq_last_error());
    lq_recipe r = parse_ok(text);
    lq_status s = lq_recipe_plan(&r, ck, p);
    lq_recipe_free(&r);
    lq_checkpoint_close(ck);
    return s;
}

Test(recipe_model, plan_errors_name_the_tensor) {
    lq_plan p;
    cr_assert_eq(plan_text("q_stage:\n  q_modifiers:\n    QuantizationModifier: {scheme: W4A16, group_size: 32}\n", &p),
                 LQ_ERR_INVALID_ARG);
    cr_assert_str_eq(lq_last_error(), "group_size 32 does not divide the 172 columns of model.layers.0.mlp.down_proj.weight "
                                      "(QuantizationModifier at t.yaml:3:5); add group_fallback: channel or ignore, "
                                      "or choose a divisor");
    cr_assert_eq(plan_text("q_stage:\n  q_modifiers:\n    QuantizationModifier: {scheme: W8A16, targets: [re:.*o_proj]}\n"
                           "    GPTQModifier: {scheme: W8A16, targets: [o_proj]}\n", &p),
                 LQ_ERR_INVALID_ARG);
    cr_assert_str_eq(lq_last_error(), "tensor model.layers.0.self_attn.o_proj.weight is quantized twice: by "
                                      "QuantizationModifier at t.yaml:3:5 and GPTQModifier at t.yaml:4:5");
    cr_assert_eq(plan_text("q_stage:\n  q_modifiers:\n    QuantizationModifier: {scheme: W8A16}\n"
                           "p_stage:\n  p_modifiers:\n    WandaPruningModifier: {sparsity: 50%, targets: down_proj}\n", &p),
                 LQ_ERR_INVALID_ARG);
    cr_assert_str_eq(lq_last_error(), "WandaPruningModifier at t.yaml:6:5 changes model.layers.0.mlp.down_proj.weight after "
                                      "QuantizationModifier at t.yaml:3:5 quantized it: prune and smooth before quantizing");
    cr_assert_eq(plan_text("p_stage:\n  p_modifiers:\n    MagnitudePruningModifier: {mask_structure: \"3:8\"}\n", &p),
                 LQ_ERR_INVALID_ARG);
    cr_assert_str_eq(lq_last_error(), "3:8 sparsity needs the columns of model.layers.0.mlp.down_proj.weight (172) to be a "
                                      "multiple of 8 (MagnitudePruningModifier at t.yaml:3:5)");
    cr_assert_eq(plan_text("q_stage:\n  q_modifiers:\n    QuantizationModifier: {scheme: W8A16, targets: lm_head}\n", &p),
                 LQ_ERR_INVALID_ARG);
    cr_assert(strstr(lq_last_error(), "QuantizationModifier at t.yaml:3:5 matches no tensor of "), "%s", lq_last_error());
}

Test(recipe_model, structured_ffn_touches_mlp) {
    lq_plan p;
    cr_assert_eq(plan_text("p_stage:\n  p_modifiers:\n    StructuredPruningModifier: {structure: ffn, sparsity: 0.25}\n", &p),
                 LQ_OK, "%s", lq_last_error());
    cr_assert_eq(p.mods[0].n_tensors, 3 * L);
    cr_assert_eq(p.mods[0].params, 3 * L * 172 * 64);
    cr_assert_eq(p.params_quantized, 0);
    cr_assert_eq(p.bytes_out, p.bytes_in, "pruning alone keeps dense storage");
    lq_plan_free(&p);
}

/* Every example in recipes/: quant-recipe check against stories260K either passes or stops at a
 * modifier this build lacks. */
Test(recipe_model, every_example_recipe) {
    char dir[600], tool[512];
    /* The recipes in the source tree (not via __FILE__, which ccache may make relative). */
    snprintf(dir, sizeof dir, "%s/recipes", LQ_SOURCE_DIR);
    lq_test_tool("quant-recipe", tool, sizeof tool);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s", dir);
    int n = 0;
    struct dirent *e;
    const char *model = s260();
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml")) continue;
        char path[1200], cmd[4096], out[1400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        lq_recipe r;
        cr_assert_eq(lq_recipe_load(path, &r), LQ_OK, "%s", lq_last_error());
        lq_recipe_free(&r);
        snprintf(out, sizeof out, "%s.err", model);
        snprintf(cmd, sizeof cmd, "%s check %s --model %s >/dev/null 2>%s", tool, path, model, out);
        int rc = system(cmd);
        cr_assert(rc != -1 && WIFEXITED(rc));
        char *err = lq_test_read_file(out, NULL);
        cr_assert_not_null(err);
        /* the W4A16 g128 examples carry group_fallback: channel, so 64/172-wide layers plan */
        if (WEXITSTATUS(rc) != 0)
            cr_assert(strstr(err, "is not available in this build"), "%s: %s", e->d_name, err);
        free(err);
        n++;
    }
    closedir(d);
    cr_assert_geq(n, 7, "the seven example recipes");
}
