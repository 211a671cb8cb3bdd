/* test_llmc_fixtures.c - checkpoints written by llm-compressor 0.14 (compressed-tensors 0.19) load
 * and score what transformers + compressed-tensors score on them; and config.json's
 * quantization_config is checked against the tensors (issue 10 A and C).
 *
 * The fixtures (tests/fixtures/llmc/<scheme>/) and each reference.json (PPL of the shared
 * TinyStories sample scored in PyTorch, and the command that produced it) were made once by
 * scripts/ct_fixtures/make_llmc_fixtures.py; nothing here runs Python.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libquant/lq_checkpoint.h"
#include "libquant/lq_model.h"
#include "libquant/lq_safetensors.h"
#include "lq_eval.h"
#include "lq_ops.h"
#include "lq_test_util.h"

/* PyTorch (f32, its own summation order) and our engine differ by float rounding only: the
 * measured gaps are below 1e-6 of the PPL. */
#define REL_TOL 1e-5

static void fixture(const char *name, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/llmc/%s", LQ_FIXTURES_DIR, name);
}

static double ref_number(const char *dir, const char *key) {
    char path[1024];
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

static lq_status score(const char *dir, lq_ppl_result *r) {
    /* transformers scored these with f32 activations (compressed-tensors dequantizes the
     * weights; W8A8 quantizes its own activations either way): compare that path, not the
     * int8-activation one (its error: test_int_act, test_ct_int_act, KLD in docs/RESULTS.md) */
    lq_matmul_set_act_mode(LQ_ACT_MODE_F32);
    char text_path[1024];
    lq_test_shared("data/tinystories_sample.txt", text_path, sizeof text_path);
    lq_model *m = NULL;
    LQ_TRY(lq_model_load(dir, &m));
    lq_tokenizer *tok = NULL;
    lq_status s = lq_eval_load_tokenizer(m, dir, NULL, &tok);
    char *text = NULL;
    size_t len = 0;
    if (s == LQ_OK) s = lq_text_read_file(text_path, &text, &len);
    lq_ppl_opts o = {.per_line = true, .separator = "<|endoftext|>"};
    if (s == LQ_OK) s = lq_eval_perplexity(m, tok, NULL, text, len, &o, r);
    free(text);
    lq_tokenizer_free(tok);
    lq_model_free(m);
    return s;
}

static void check_fixture(const char *name, const char *ref_key, double rel_tol) {
    char dir[1024];
    fixture(name, dir, sizeof dir);
    lq_ppl_result r;
    cr_assert_eq(score(dir, &r), LQ_OK, "%s: %s", name, lq_last_error());
    double ref = ref_number(dir, ref_key);
    cr_expect_eq(r.n_scored, (int64_t)ref_number(dir, "tokens"), "%s: scored %lld tokens", name,
                 (long long)r.n_scored);
    cr_expect(fabs(r.ppl - ref) <= rel_tol * ref, "%s: PPL %.7f, transformers %.7f", name, r.ppl, ref);
}

Test(llmc, w8a16) { check_fixture("w8a16", "ppl", REL_TOL); }
Test(llmc, w4a16_sym_group32_and_channel) { check_fixture("w4a16_sym_g32", "ppl", REL_TOL); }
Test(llmc, w4a16_asym_group32_and_channel) { check_fixture("w4a16_asym_g32", "ppl", REL_TOL); }
Test(llmc, w4a16_gptq_actorder_weight) { check_fixture("w4a16_gptq_actorder", "ppl", REL_TOL); }
Test(llmc, fp8_naive_quantized) { check_fixture("fp8", "ppl", REL_TOL); }
Test(llmc, pruned_dense) { check_fixture("pruned_dense", "ppl", REL_TOL); }
/* Our W8A8 kernel quantizes activations with max|x| / 127 per token, as vLLM does, where
 * compressed-tensors' fake quantization uses max|x| / 127.5: the reference for our semantics
 * ("ppl_act_scale_127") is transformers with that one scale patched (make_llmc_fixtures.py).
 * A gap of a few 1e-4 of the PPL remains against it, moving with the attention's summation order
 * (below): the bounds are set just above the gaps measured, so a regression still shows, and the
 * gap is reported (see docs/RESULTS.md). */
Test(llmc, w8a8_dynamic_int8_per_token) {
    /* Per-token int8 activations turn ulp-level differences into whole-code flips, so this small
     * model's PPL moves with the attention's summation order alone. Measured against 3.546579:
     * the per-row loop 3.548138 (4.4e-4) while its key dots summed like lq_dot_f32, 3.549258
     * (7.6e-4) since they sum eight lanes pairwise (lq_dot_f32_rows_ref, main df187b5); the
     * sgemm tiles of the default prefill 3.550872 (1.2e-3) and then 3.547695 (3.1e-4). All these
     * orders are equally accurate against a double evaluation (test_backend, test_dot_rows). The
     * loop keeps its bound just above its gap; the default path's stays at 1.5e-3, still short of
     * the 2.5e-3 that separates it from compressed-tensors' own /127.5 scale ("ppl"). */
    setenv("LQ_ATTN_GEMM", "0", 1);
    check_fixture("w8a8", "ppl_act_scale_127", 8e-4);
    unsetenv("LQ_ATTN_GEMM");
    check_fixture("w8a8", "ppl_act_scale_127", 1.5e-3);
}

/* ---- the config against the tensors (defect 2 / issue 10 C) --------------------------------- */

typedef struct tmpdir {
    char path[512];
} tmpdir;

static void tmp_copy(const char *name, tmpdir *t) {
    char src[1024], cmd[2400];
    fixture(name, src, sizeof src);
    snprintf(t->path, sizeof t->path, "/tmp/lq_test_llmc_XXXXXX");
    cr_assert(mkdtemp(t->path));
    snprintf(cmd, sizeof cmd, "cp '%s'/* '%s'/ && chmod u+w '%s'/*", src, t->path, t->path);
    cr_assert_eq(system(cmd), 0);
}

static void tmp_remove(tmpdir *t) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->path);
    cr_assert_eq(system(cmd), 0);
}

/* Rewrite <dir>/model.safetensors without the tensors whose names end in `drop`. */
static void drop_tensors(const char *dir, const char *drop) {
    char in[1024], out[1024];
    snprintf(in, sizeof in, "%s/model.safetensors", dir);
    snprintf(out, sizeof out, "%s/new.safetensors", dir);
    lq_checkpoint *c = NULL;
    cr_assert_eq(lq_checkpoint_open(dir, &c), LQ_OK, "%s", lq_last_error());
    lq_st_writer *w = NULL;
    cr_assert_eq(lq_st_writer_create(out, &w), LQ_OK, "%s", lq_last_error());
    size_t n = strlen(drop);
    int dropped = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int64_t i = 0; i < lq_checkpoint_count(c); i++) {
            const lq_tensor *t = lq_checkpoint_get(c, i);
            size_t k = strlen(t->name);
            if (k >= n && strcmp(t->name + k - n, drop) == 0) {
                dropped += pass == 0;
                continue;
            }
            if (pass == 0) cr_assert_eq(lq_st_writer_declare(w, t->name, t->dtype, t->ndim, t->shape), LQ_OK);
            else cr_assert_eq(lq_st_writer_write(w, t->data, t->nbytes), LQ_OK);
        }
    cr_assert_eq(lq_st_writer_commit(w), LQ_OK, "%s", lq_last_error());
    lq_checkpoint_close(c);
    cr_assert(dropped > 0, "no tensor ends in %s", drop);
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

static void expect_refused(const char *dir, const char *needle) {
    lq_model *m = NULL;
    lq_status s = lq_model_load(dir, &m);
    lq_model_free(m);
    cr_expect_neq(s, LQ_OK, "loaded; expected a refusal naming '%s'", needle);
    cr_expect(strstr(lq_last_error(), needle) != NULL, "message '%s' does not name '%s'", lq_last_error(),
              needle);
}

Test(llmc_config, asym_without_zero_points_is_refused) {
    /* Before: bound as symmetric, ran and exited 0 (PPL 4.16 -> garbage). */
    tmpdir t;
    tmp_copy("w4a16_asym_g32", &t);
    drop_tensors(t.path, ".weight_zero_point");
    expect_refused(t.path, "weight_zero_point");
    tmp_remove(&t);
}

Test(llmc_config, zero_points_in_a_symmetric_group_are_refused) {
    tmpdir t;
    tmp_copy("w4a16_asym_g32", &t);
    edit_config(t.path, "\"symmetric\": false", "\"symmetric\": true");
    expect_refused(t.path, "model.layers.0.self_attn.q_proj.weight_zero_point");
    tmp_remove(&t);
}

Test(llmc_config, group_size_disagreeing_with_scales_is_refused) {
    tmpdir t;
    tmp_copy("w4a16_sym_g32", &t);
    edit_config(t.path, "\"group_size\": 32", "\"group_size\": 16");
    expect_refused(t.path, "model.layers.0.self_attn.q_proj.weight_scale");
    tmp_remove(&t);
}

Test(llmc_config, quantized_module_in_ignore_is_refused) {
    tmpdir t;
    tmp_copy("w8a16", &t);
    edit_config(t.path, "\"lm_head\"", "\"lm_head\", \"re:.*layers\\\\.2\\\\.mlp\\\\.up_proj$\"");
    expect_refused(t.path, "model.layers.2.mlp.up_proj.weight_packed");
    tmp_remove(&t);
}

Test(llmc_config, scheme_disagreeing_with_tensors_is_refused) {
    tmpdir t;
    tmp_copy("w8a16", &t);
    edit_config(t.path, "\"num_bits\": 8", "\"num_bits\": 4");
    expect_refused(t.path, "model.layers.0.self_attn.q_proj.weight_packed");
    tmp_remove(&t);
}

Test(llmc_config, quantized_tensors_without_config_are_refused) {
    tmpdir t;
    tmp_copy("fp8", &t);
    edit_config(t.path, "\"quantization_config\"", "\"was_quantization_config\"");
    expect_refused(t.path, "quantization_config");
    tmp_remove(&t);
}

Test(llmc_config, math_changing_keys_are_refused_by_name) {
    static const struct { const char *fixture, *from, *to, *needle; } cases[] = {
        {"w8a16", "\"transform_config\": {}", "\"transform_config\": {\"config_groups\": {}}", "transform_config"},
        {"w8a16", "\"kv_cache_scheme\": null", "\"kv_cache_scheme\": {\"num_bits\": 8}", "kv_cache_scheme"},
        {"w8a16", "\"actorder\": null", "\"actorder\": \"group\"", "actorder"},
        {"w8a16", "\"block_structure\": null", "\"block_structure\": [128, 128]", "block_structure"},
        {"w8a16", "\"zp_dtype\": null", "\"zp_dtype\": null, \"new_math\": 1", "new_math"},
        {"w8a16", "\"output_activations\": null", "\"output_activations\": {\"num_bits\": 8}", "output_activations"},
        {"w8a16", "\"quantization_status\": \"compressed\"", "\"quantization_status\": \"frozen\"",
         "quantization_status"},
        {"fp8", "\"input_activations\": null",
         "\"input_activations\": {\"num_bits\": 8, \"type\": \"float\", \"strategy\": \"token\", \"dynamic\": true}",
         "input_activations"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tmpdir t;
        tmp_copy(cases[i].fixture, &t);
        edit_config(t.path, cases[i].from, cases[i].to);
        expect_refused(t.path, cases[i].needle);
        tmp_remove(&t);
    }
}

Test(llmc_config, metadata_keys_are_accepted) {
    /* Observers, side-tensor dtypes and sparsity metadata over dense weights change nothing. */
    tmpdir t;
    tmp_copy("w4a16_sym_g32", &t);
    edit_config(t.path, "\"observer\": \"memoryless_minmax\"", "\"observer\": \"mse\"");
    edit_config(t.path, "\"scale_dtype\": null", "\"scale_dtype\": \"torch.bfloat16\"");
    edit_config(t.path, "\"sparsity_config\": {}",
                "\"sparsity_config\": {\"format\": \"dense\", \"global_sparsity\": 0.0}");
    lq_ppl_result r;
    cr_assert_eq(score(t.path, &r), LQ_OK, "%s", lq_last_error());
    double ref = ref_number(t.path, "ppl");
    cr_expect(fabs(r.ppl - ref) <= REL_TOL * ref, "PPL %.7f, transformers %.7f", r.ppl, ref);
    tmp_remove(&t);
}
