/* test_gguf_mix.c - our port of llama-quantize's per-tensor type choice against files that
 * llama-quantize wrote (fixtures from scripts/gguf_mix_fixture.py: each tensor's name, shape and
 * the type llama.cpp chose), plus the rules a fixture does not reach. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libquant/lq_gguf_quant.h"
#include "lq_test_util.h"

#define MAX_T 1024

typedef struct fixture {
    char type[16];
    int layers, heads, kv;
    int64_t n;
    char names[MAX_T][96];
    int want[MAX_T];
    lq_gguf_plan_tensor t[MAX_T];
} fixture;

static fixture *load(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/gguf_mix/%s", LQ_FIXTURES_DIR, name);
    FILE *f = fopen(path, "r");
    cr_assert(f, "%s", path);
    fixture *x = calloc(1, sizeof *x);
    cr_assert_eq(fscanf(f, "# %15s %d %d %d", x->type, &x->layers, &x->heads, &x->kv), 4);
    char tn[32];
    int nd;
    long long ne0, ne1;
    while (x->n < MAX_T && fscanf(f, "%95s %d %lld %lld %31s", x->names[x->n], &nd, &ne0, &ne1, tn) == 5) {
        x->want[x->n] = lq_ggml_type_parse(tn);
        cr_assert_geq(x->want[x->n], 0, "%s: type %s", x->names[x->n], tn);
        x->t[x->n] = (lq_gguf_plan_tensor){.name = x->names[x->n], .n_dims = nd, .ne = {ne0, ne1, 1, 1}};
        x->n++;
    }
    fclose(f);
    return x;
}

static void expect_plan(const char *file) {
    fixture *x = load(file);
    lq_gguf_plan_opts o = {.ftype = lq_gguf_ftype_find(x->type), .output_type = -1, .token_embd_type = -1,
                           .n_layers = x->layers, .n_head = x->heads, .n_head_kv = x->kv};
    cr_assert(o.ftype);
    cr_assert_eq(lq_gguf_plan(&o, x->t, x->n), LQ_OK, "%s", lq_last_error());
    for (int64_t i = 0; i < x->n; i++)
        cr_assert_eq(x->t[i].type, x->want[i], "%s: %s: ours %s, llama-quantize %s", file, x->names[i],
                     lq_ggml_type_name(x->t[i].type), lq_ggml_type_name(x->want[i]));
    free(x);
}

/* Gemma-3-270M Q4_K_M as published (GGUF-my-repo, llama-quantize): tied head (token_embd by
 * the output rule, 640 columns -> Q8_0), 640-column tensors falling back Q4_K -> Q5_0 and
 * Q6_K -> Q8_0, ffn_down (2048 columns) Q6_K on use_more_bits layers, n_gqa 4. */
Test(gguf_mix, gemma3_270m_q4_k_m) { expect_plan("gemma3_270m_q4_k_m.txt"); }

/* SmolLM2-135M Q4_K_M by llama-quantize (llama.cpp 0c1e57098) from our f32 GGUF
 * (scripts/gguf_bitexact.sh): llama, n_gqa 3, tied head, 576-column tensors falling back. */
Test(gguf_mix, smollm2_135m_q4_k_m) { expect_plan("smollm2_135m_q4_k_m.txt"); }

Test(gguf_mix, names_and_refusals) {
    cr_assert_eq(lq_ggml_type_parse("Q4_k"), LQ_GGML_Q4_K);
    cr_assert_str_eq(lq_ggml_type_name(LQ_GGML_IQ4_XS), "iq4_xs");
    cr_assert_eq(lq_gguf_ftype_find("q4_k")->ftype, 15); /* llama-quantize's alias for Q4_K_M */
    cr_assert_eq(lq_gguf_ftype_find("Q3_K")->ftype, 12);
    cr_assert_null(lq_gguf_ftype_find("Q4_K_X"));
    lq_gguf_tensor_rule bad = {"attn_(v", LQ_GGML_Q8_0};
    lq_gguf_plan_tensor t = {.name = "blk.0.attn_v.weight", .n_dims = 2, .ne = {256, 64, 1, 1}};
    lq_gguf_plan_opts o = {.ftype = lq_gguf_ftype_find("Q4_0"), .rules = &bad, .n_rules = 1,
                           .output_type = -1, .token_embd_type = -1, .n_layers = 1, .n_head = 1, .n_head_kv = 1};
    cr_assert_eq(lq_gguf_plan(&o, &t, 1), LQ_ERR_INVALID_ARG);
    cr_assert(strstr(lq_last_error(), "attn_(v"), "%s", lq_last_error());
}

/* --tensor-type: searched in the name, lower-cased, first match wins, then the fallback; 1-D
 * tensors and norms never quantized; --pure skips the mix (not the fallback). */
Test(gguf_mix, overrides_pure_fallback) {
    lq_gguf_tensor_rule rules[] = {{"ATTN_V", LQ_GGML_Q8_0}, {"attn", LQ_GGML_Q6_K}};
    lq_gguf_plan_tensor t[] = {
        {.name = "blk.0.attn_v.weight", .n_dims = 2, .ne = {512, 64, 1, 1}},
        {.name = "blk.0.attn_q.weight", .n_dims = 2, .ne = {576, 576, 1, 1}},  /* q6_K -> q8_0 */
        {.name = "blk.0.attn_norm.weight", .n_dims = 1, .ne = {576, 1, 1, 1}},
        {.name = "blk.0.ffn_down.weight", .n_dims = 2, .ne = {512, 576, 1, 1}},
        {.name = "output.weight", .n_dims = 2, .ne = {576, 100, 1, 1}},
    };
    lq_gguf_plan_opts o = {.ftype = lq_gguf_ftype_find("Q4_K_M"), .rules = rules, .n_rules = 2,
                           .output_type = -1, .token_embd_type = -1, .n_layers = 1, .n_head = 9, .n_head_kv = 3};
    cr_assert_eq(lq_gguf_plan(&o, t, 5), LQ_OK);
    cr_assert_eq(t[0].type, LQ_GGML_Q8_0);
    cr_assert_eq(t[1].type, LQ_GGML_Q8_0);
    cr_assert(t[1].fell_back);
    cr_assert_eq(t[2].type, LQ_GGML_F32);
    cr_assert_eq(t[3].type, LQ_GGML_Q6_K); /* layer 0 of 1: use_more_bits */
    cr_assert_eq(t[4].type, LQ_GGML_Q8_0); /* output: 576 % 256 != 0 */
    o.n_rules = 0;
    o.pure = true;
    cr_assert_eq(lq_gguf_plan(&o, t, 5), LQ_OK);
    cr_assert_eq(t[0].type, LQ_GGML_Q4_K);
    cr_assert_eq(t[3].type, LQ_GGML_Q4_K);
    cr_assert_eq(t[1].type, LQ_GGML_Q5_0);
    cr_assert_eq(t[4].type, LQ_GGML_Q5_0);
}
