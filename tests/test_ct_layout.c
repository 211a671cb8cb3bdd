/* test_ct_layout.c - the compressed-tensors layout, against hand-worked examples.
 *
 * Reference: compressed-tensors 0.20, compressors/pack_quantized/helpers.py. pack_to_int32 adds
 * 2^(bits-1) to each signed code and puts element i of a line at global bit i*bits, low bits
 * first, spilling into the next int32 word (unpack_from_int32 reads `value_g[:, word_idx] >>
 * bit_offset` and ORs the next word's low bits when `lo_bits < num_bits`); a line of n codes
 * takes ceil(n*bits/32) words. Zero points are packed with packed_dim=0 (along rows). Every
 * expected word below is worked out by hand from that rule, not produced by our code.
 * The quantization_config examples are the shape llm-compressor writes (RedHatAI
 * "...-quantized.w4a16" and "...-FP8-dynamic" model cards' config.json).
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <string.h>

#include "libquant/lq_ptq.h"

static void expect_words(const int32_t *got, const uint32_t *want, int n) {
    for (int i = 0; i < n; i++)
        cr_expect_eq((uint32_t)got[i], want[i], "word %d: got 0x%08x, want 0x%08x", i,
                     (uint32_t)got[i], want[i]);
}

Test(ct_pack, int4_row_of_eight) {
    /* u = q + 8 = 0 1 2 3 4 5 6 7 -> nibble i holds u_i -> 0x76543210 */
    const int8_t q[8] = {-8, -7, -6, -5, -4, -3, -2, -1};
    int32_t w[1];
    lq_ct_pack_int32(q, 1, 8, 4, 1, w);
    expect_words(w, (const uint32_t[]){0x76543210u}, 1);
    int8_t back[8];
    lq_ct_unpack_int32(w, 1, 8, 4, 1, back);
    cr_expect_arr_eq(back, q, 8);
}

Test(ct_pack, int4_mixed_signs) {
    /* u = 7 8 9 15 0 8 8 8 -> nibbles from the top: 8 8 8 0 F 9 8 7 */
    const int8_t q[8] = {-1, 0, 1, 7, -8, 0, 0, 0};
    int32_t w[1];
    lq_ct_pack_int32(q, 1, 8, 4, 1, w);
    expect_words(w, (const uint32_t[]){0x8880F987u}, 1);
}

Test(ct_pack, int4_tail_pads_with_zero_bits) {
    /* 10 codes of 4 bits = 40 bits -> 2 words; codes 8, 9 in the low byte of word 1, the rest 0.
     * Two rows: row 1 starts at word 2 (rows never share a word). */
    const int8_t q[20] = {0, 0, 0, 0, 0, 0, 0, 0, 3, -3, /* row 1 */ 7, 7, 7, 7, 7, 7, 7, 7, -8, 7};
    int32_t w[4];
    cr_assert_eq(lq_ct_packed_words(10, 4), 2);
    lq_ct_pack_int32(q, 2, 10, 4, 1, w);
    /* row 0: u = 8 x8 -> 0x88888888; u8 = 11 (0xB), u9 = 5 -> 0x5B. row 1: 0xFFFFFFFF; u = 0, 15 */
    expect_words(w, (const uint32_t[]){0x88888888u, 0x0000005Bu, 0xFFFFFFFFu, 0x000000F0u}, 4);
    int8_t back[20];
    lq_ct_unpack_int32(w, 2, 10, 4, 1, back);
    cr_expect_arr_eq(back, q, 20);
}

Test(ct_pack, int8_bytes_are_code_plus_128) {
    /* u = 0 127 128 255 -> bytes 00 7F 80 FF -> little-endian word 0xFF807F00 */
    const int8_t q[4] = {-128, -1, 0, 127};
    int32_t w[1];
    lq_ct_pack_int32(q, 1, 4, 8, 1, w);
    expect_words(w, (const uint32_t[]){0xFF807F00u}, 1);
    /* 5 codes -> 2 words, the second holding one byte */
    const int8_t r[5] = {1, 2, 3, 4, 5};
    int32_t v[2];
    lq_ct_pack_int32(r, 1, 5, 8, 1, v);
    expect_words(v, (const uint32_t[]){0x84838281u, 0x00000085u}, 2);
}

Test(ct_pack, straddling_three_bit_code) {
    /* bits = 3, offset 4: 11 codes = 33 bits -> 2 words. Codes 0..9 are -4 (u = 0); code 10 is
     * 3 (u = 7 = 0b111) at bits 30..32: word 0 gets its two low bits at 30, 31 (0xC0000000),
     * word 1 its high bit at bit 0. */
    int8_t q[11];
    memset(q, -4, sizeof q);
    q[10] = 3;
    int32_t w[2];
    cr_assert_eq(lq_ct_packed_words(11, 3), 2);
    lq_ct_pack_int32(q, 1, 11, 3, 1, w);
    expect_words(w, (const uint32_t[]){0xC0000000u, 0x00000001u}, 2);
    int8_t back[11];
    lq_ct_unpack_int32(w, 1, 11, 3, 1, back);
    cr_expect_arr_eq(back, q, 11);
}

Test(ct_pack, zero_points_pack_along_rows) {
    /* zero points [rows = 9][groups = 2], packed_dim 0 -> [ceil(9*4/32) = 2][2]. Column g is one
     * line: zp[0..7][g] fill word [0][g], zp[8][g] the low nibble of word [1][g]. */
    int8_t zp[9][2];
    for (int r = 0; r < 9; r++) {
        zp[r][0] = (int8_t)(r - 8); /* u = r: 0..8 */
        zp[r][1] = 7;               /* u = 15 */
    }
    int32_t w[2][2];
    lq_ct_pack_int32(&zp[0][0], 9, 2, 4, 0, &w[0][0]);
    expect_words(&w[0][0], (const uint32_t[]){0x76543210u, 0xFFFFFFFFu, 0x00000008u, 0x0000000Fu}, 4);
    int8_t back[9][2];
    lq_ct_unpack_int32(&w[0][0], 9, 2, 4, 0, &back[0][0]);
    cr_expect_arr_eq(&back[0][0], &zp[0][0], 18);
}

/* ---- quantization_config ------------------------------------------------------------------------ */

static const char *W4A16_CONFIG =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"quantization_config\": {"
    "\"config_groups\": {\"group_0\": {\"input_activations\": null, \"output_activations\": null,"
    " \"targets\": [\"Linear\"], \"weights\": {\"actorder\": null, \"block_structure\": null,"
    " \"dynamic\": false, \"group_size\": 128, \"num_bits\": 4, \"observer\": \"minmax\","
    " \"observer_kwargs\": {}, \"strategy\": \"group\", \"symmetric\": true, \"type\": \"int\"}}},"
    " \"format\": \"pack-quantized\", \"global_compression_ratio\": 1.89, \"ignore\": [\"lm_head\"],"
    " \"kv_cache_scheme\": null, \"quant_method\": \"compressed-tensors\","
    " \"quantization_status\": \"compressed\"}}";

static const char *FP8_DYNAMIC_CONFIG =
    "{\"quantization_config\": {\"config_groups\": {\"group_0\": {"
    " \"input_activations\": {\"dynamic\": true, \"num_bits\": 8, \"observer\": null,"
    " \"strategy\": \"token\", \"symmetric\": true, \"type\": \"float\"},"
    " \"targets\": [\"Linear\"], \"weights\": {\"dynamic\": false, \"num_bits\": 8,"
    " \"observer\": \"minmax\", \"strategy\": \"channel\", \"symmetric\": true, \"type\": \"float\"}}},"
    " \"format\": \"float-quantized\", \"ignore\": [\"lm_head\"],"
    " \"quant_method\": \"compressed-tensors\", \"quantization_status\": \"compressed\"}}";

static const char *W8A8_CONFIG =
    "{\"quantization_config\": {\"config_groups\": {\"group_0\": {"
    " \"input_activations\": {\"dynamic\": true, \"num_bits\": 8, \"strategy\": \"token\","
    " \"symmetric\": true, \"type\": \"int\"}, \"targets\": [\"Linear\"],"
    " \"weights\": {\"dynamic\": false, \"num_bits\": 8, \"strategy\": \"channel\","
    " \"symmetric\": true, \"type\": \"int\"}}}, \"format\": \"int-quantized\","
    " \"ignore\": [\"lm_head\"], \"quant_method\": \"compressed-tensors\","
    " \"quantization_status\": \"compressed\"}}";

Test(ct_config, llm_compressor_w4a16) {
    lq_ct_config c;
    cr_assert_eq(lq_ct_config_parse(W4A16_CONFIG, "w4a16/config.json", &c), LQ_OK, "%s", lq_last_error());
    cr_expect_str_eq(c.format, "pack-quantized");
    cr_expect_str_eq(c.status, "compressed");
    cr_assert_eq(c.n_groups, 1);
    cr_expect_eq(c.groups[0].scheme, LQ_WFMT_W4A16);
    cr_expect_eq(c.groups[0].group_size, 128);
    cr_expect_not(c.groups[0].asym);
    cr_expect_eq(c.groups[0].n_targets, 1);
    cr_expect_eq(c.n_ignore, 1);
}

Test(ct_config, fp8_dynamic_and_w8a8) {
    lq_ct_config c;
    /* FP8_DYNAMIC quantizes activations to FP8 per token; our FP8 is weight-only, so running it
     * would compute something else than the checkpoint means: refused, naming the key. */
    cr_assert_eq(lq_ct_config_parse(FP8_DYNAMIC_CONFIG, "fp8", &c), LQ_ERR_UNSUPPORTED);
    cr_expect(strstr(lq_last_error(), "input_activations") != NULL, "%s", lq_last_error());
    cr_assert_eq(lq_ct_config_parse(W8A8_CONFIG, "w8a8", &c), LQ_OK, "%s", lq_last_error());
    cr_expect_eq(c.groups[0].scheme, LQ_WFMT_W8A8);
    cr_expect_str_eq(c.format, "int-quantized");
}

Test(ct_pack, three_bit_zero_points_pack_along_rows) {
    /* zero points [rows = 11][groups = 2] of 3 bits, packed_dim 0 -> [ceil(11*3/32) = 2][2].
     * Column 0: rows 0..9 are -4 (u = 0), row 10 is 3 (u = 0b111 at bits 30..32): word [0][0] =
     * 0xC0000000, word [1][0] = 0x1. Column 1: every zp -3 (u = 1 at bits 0, 3, ..., 30):
     * word [0][1] = 0x49249249, word [1][1] = 0 (row 10's u = 1 is bit 30, nothing spills). */
    int8_t zp[11][2];
    for (int r = 0; r < 11; r++) {
        zp[r][0] = r == 10 ? 3 : -4;
        zp[r][1] = -3;
    }
    int32_t w[2][2];
    cr_assert_eq(lq_ct_packed_words(11, 3), 2);
    lq_ct_pack_int32(&zp[0][0], 11, 2, 3, 0, &w[0][0]);
    expect_words(&w[0][0], (const uint32_t[]){0xC0000000u, 0x49249249u, 0x00000001u, 0x00000000u}, 4);
    int8_t back[11][2];
    lq_ct_unpack_int32(&w[0][0], 11, 2, 3, 0, &back[0][0]);
    cr_expect_arr_eq(&back[0][0], &zp[0][0], 22);
}

/* compressed-tensors 0.19's W3A16 preset (_int_wnam(3)) as llm-compressor writes it: num_bits 3,
 * int, group 128, symmetric. */
Test(ct_config, w3a16_preset) {
    const char *cfg = "{\"quantization_config\": {\"quant_method\": \"compressed-tensors\","
                      " \"format\": \"pack-quantized\", \"quantization_status\": \"compressed\","
                      " \"ignore\": [\"lm_head\"], \"config_groups\": {\"group_0\": {\"targets\": [\"Linear\"],"
                      " \"format\": \"pack-quantized\", \"input_activations\": null, \"output_activations\": null,"
                      " \"weights\": {\"actorder\": null, \"block_structure\": null, \"dynamic\": false,"
                      " \"group_size\": 128, \"num_bits\": 3, \"observer\": \"minmax\", \"observer_kwargs\": {},"
                      " \"strategy\": \"group\", \"symmetric\": true, \"type\": \"int\"}}}}}";
    lq_ct_config c;
    cr_assert_eq(lq_ct_config_parse(cfg, "w3", &c), LQ_OK, "%s", lq_last_error());
    cr_expect_eq(c.groups[0].scheme, LQ_WFMT_W3A16);
    cr_expect_eq(c.groups[0].group_size, 128);
    cr_expect_not(c.groups[0].asym);
}

Test(ct_config, absent_foreign_and_unsupported) {
    lq_ct_config c;
    cr_expect_eq(lq_ct_config_parse("{\"hidden_size\": 64}", "plain", &c), LQ_ERR_NOT_FOUND);
    cr_expect_eq(lq_ct_config_parse("{\"quantization_config\": {\"quant_method\": \"gptq\", \"bits\": 4}}",
                                    "gptq/config.json", &c),
                 LQ_ERR_UNSUPPORTED);
    cr_expect(strstr(lq_last_error(), "gptq/config.json") != NULL, "%s", lq_last_error());
    /* 2-bit weights: well-formed, but no format of ours holds them */
    const char *w2 = "{\"quantization_config\": {\"quant_method\": \"compressed-tensors\","
                     " \"config_groups\": {\"group_0\": {\"targets\": [\"Linear\"], \"weights\":"
                     " {\"num_bits\": 2, \"type\": \"int\", \"strategy\": \"group\", \"group_size\": 64}}}}}";
    cr_expect_eq(lq_ct_config_parse(w2, "w2", &c), LQ_ERR_UNSUPPORTED);
    cr_expect(strstr(lq_last_error(), "group_0") != NULL, "%s", lq_last_error());
    /* a weights type that is neither int nor float: refused, not read as int */
    const char *uint4 = "{\"quantization_config\": {\"quant_method\": \"compressed-tensors\","
                        " \"config_groups\": {\"group_0\": {\"targets\": [\"Linear\"], \"weights\":"
                        " {\"num_bits\": 4, \"type\": \"uint\", \"strategy\": \"group\", \"group_size\": 64}}}}}";
    cr_expect_eq(lq_ct_config_parse(uint4, "uint4", &c), LQ_ERR_UNSUPPORTED);
    cr_expect(strstr(lq_last_error(), "uint 4-bit") != NULL, "%s", lq_last_error());
    cr_expect_eq(lq_ct_config_parse("{\"quantization_config\": ", "bad", &c), LQ_ERR_FORMAT);
}

Test(ct_scheme, names_round_trip) {
    /* every preset's format and symmetry print as a name that finds the same format and symmetry */
    int n = 0;
    for (const lq_preset *p; (p = lq_preset_at(n)); n++) {
        const lq_preset *back = lq_preset_find(lq_preset_name(p->fmt, p->asym));
        cr_assert(back, "%s", p->name);
        cr_expect(back->fmt == p->fmt && back->asym == p->asym, "%s", p->name);
        cr_expect(p->fmt == LQ_WFMT_NONE || lq_ct_storage_of(p->fmt), "%s has compressed-tensors storage", p->name);
    }
    cr_expect_geq(n, 8);
    const lq_preset *x = lq_preset_find("w4a16");
    cr_expect(x && x->fmt == LQ_WFMT_W4A16 && !x->asym && x->group_size == 128);
    x = lq_preset_find("W4A16_asym");
    cr_expect(x && x->fmt == LQ_WFMT_W4A16 && x->asym);
    x = lq_preset_find("w3a16");
    cr_expect(x && x->fmt == LQ_WFMT_W3A16);
    x = lq_preset_find("INT8");
    cr_expect(x && x->fmt == LQ_WFMT_W8A8);
    x = lq_preset_find("dense");
    cr_expect(x && x->fmt == LQ_WFMT_NONE);
    cr_expect_null(lq_preset_find("W2A16"));
    cr_expect_str_eq(lq_ptq_scheme_name(LQ_WFMT_FP8_E4M3), "FP8");
    cr_expect_str_eq(lq_ptq_scheme_name(LQ_WFMT_NONE), "none");
    /* the float and GGUF formats have no compressed-tensors storage */
    cr_expect_null(lq_ct_storage_of(LQ_WFMT_F32));
    cr_expect_null(lq_ct_storage_of(LQ_WFMT_Q4_0));
    /* num_bits as compressed-tensors' presets say; W4A16 and W3A16 are the grouped ones */
    cr_expect_eq(lq_ct_bits(LQ_WFMT_W3A16), 3);
    cr_expect_eq(lq_ct_bits(LQ_WFMT_W4A16), 4);
    cr_expect_eq(lq_ct_bits(LQ_WFMT_W8A16), 8);
    cr_expect(lq_ct_grouped(LQ_WFMT_W3A16) && lq_ct_grouped(LQ_WFMT_W4A16));
    cr_expect(!lq_ct_grouped(LQ_WFMT_W8A16) && !lq_ct_grouped(LQ_WFMT_FP8_E4M3));
    cr_expect(lq_ct_packed(LQ_WFMT_W3A16) && lq_ct_packed(LQ_WFMT_W8A16));
    cr_expect(!lq_ct_packed(LQ_WFMT_W8A8) && !lq_ct_packed(LQ_WFMT_NONE));
    cr_expect_str_eq(lq_ct_format_name(LQ_WFMT_W3A16), "pack-quantized");
    cr_expect_str_eq(lq_ct_format_name(LQ_WFMT_W8A16), "pack-quantized");
    cr_expect_str_eq(lq_ct_format_name(LQ_WFMT_W8A8), "int-quantized");
    cr_expect_str_eq(lq_ct_format_name(LQ_WFMT_FP8_E4M3), "float-quantized");
}
