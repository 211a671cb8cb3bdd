/* test_rtn.c - issue 18 (round to nearest done right) and issue 10 defect 7.
 *
 * External references: llama.cpp's Q4_0 rule (ggml-quants.c quantize_row_q4_0_ref: the signed
 * value of largest magnitude max, d = max / -8, codes x / d + 8 truncated after + 0.5) and
 * compressed-tensors' amax / 7.5 rule, worked by hand on groups chosen so every scale is exact in
 * f32; the clip search checked against errors the test computes itself; the safetensors header
 * and file size of a quant-ptq output read independently (jansson over the raw header).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "libquant/lq_model.h"
#include "lq_blocks.h"
#include "lq_format.h"
#include "lq_test_util.h"

typedef struct qw {
    lq_weight w;
    uint8_t data[256];
    float scale[64], zero[64];
} qw;

static void quant(lq_wfmt fmt, const float *src, int64_t rows, int64_t cols, const lq_quant_params *p,
                  qw *q) {
    size_t rb;
    int64_t a0, a1;
    cr_assert(lq_wfmt_sizes(fmt, rows, cols, p, &rb, &a0, &a1));
    cr_assert(rows * rb <= sizeof q->data && a0 <= 64);
    memset(q, 0, sizeof *q);
    q->w = (lq_weight){.fmt = fmt, .rows = rows, .cols = cols, .data = q->data, .row_bytes = rb,
                       .aux = {q->scale, a1 > 0 ? q->zero : NULL}};
    lq_wfmt_get(fmt)->quantize_ref(src, p, &q->w);
}

/* ---- the signed-max rule, hand-worked ----------------------------------------------------------- */

/* x = [1 -2 3 -4 0.5 8 -6 7]: the largest magnitude is 8 (positive), so Q4_0's d = 8 / -8 = -1
 * and q = round(x / d) = [-1 2 -3 4 -0.5->0 (tie to even; Q4_0's trunc(0.5 + 8.5) - 8 = 1 here,
 * the one documented difference) -8 6 -7]: 8 itself is exact (-8 * -1). u = q + 8 =
 * [7 10 5 12 8 0 14 1] -> bytes u0|u1<<4: A7 C5 08 1E.
 * The amax rule on the same group: scale = 8 / 7.5, 8 / scale = 7.5 -> clamp 7, so 8 comes back
 * as 7 * 8 / 7.5 = 7.4667: the half step issue 18 is about. */
Test(signed_max, int4_positive_extreme) {
    const float x[8] = {1, -2, 3, -4, 0.5f, 8, -6, 7};
    const lq_quant_params p = {.rounding = LQ_ROUND_SIGNED_MAX};
    qw q;
    quant(LQ_WFMT_W4A16, x, 1, 8, &p, &q);
    cr_assert_eq(q.scale[0], -1.0f, "scale %g, want -1", q.scale[0]);
    const uint8_t want[4] = {0xA7, 0xC5, 0x08, 0x1E};
    for (int i = 0; i < 4; i++) cr_assert_eq(q.data[i], want[i], "byte %d: %02X want %02X", i, q.data[i], want[i]);
    float out[8];
    lq_wfmt_get(LQ_WFMT_W4A16)->dequant_ref(&q.w, 0, 1, out);
    cr_assert_eq(out[5], 8.0f, "the extreme must be exact, got %g", out[5]);
    const lq_quant_params pa = {.rounding = LQ_ROUND_AMAX};
    quant(LQ_WFMT_W4A16, x, 1, 8, &pa, &q);
    cr_assert_eq(q.scale[0], 8.0f / 7.5f);
    cr_assert_eq(lq_int4_get(q.data, 5), 7, "amax clamps 7.5 to 7");
}

/* Negative extreme, and a tie in magnitude. x = [2 -8 7.5 -1]: max = -8, d = 1, q = [2 -8
 * 7.5->clamp 7 -1] (Q4_0: trunc(7.5 + 8.5) = 16 -> MIN 15 -> 7 too). y = [-4 4 1 3]: |-4| = |4|;
 * Q4_0 keeps the first (its test is amax < |v|, strict), -4: d = 0.5, q = [-8 8->7 2 6]. */
Test(signed_max, int4_negative_extreme_and_tie) {
    const lq_quant_params p = {.rounding = LQ_ROUND_SIGNED_MAX};
    const float x[4] = {2, -8, 7.5f, -1}, y[4] = {-4, 4, 1, 3};
    qw q;
    quant(LQ_WFMT_W4A16, x, 1, 4, &p, &q);
    cr_assert_eq(q.scale[0], 1.0f);
    const int qx[4] = {2, -8, 7, -1}, qy[4] = {-8, 7, 2, 6};
    for (int i = 0; i < 4; i++) cr_assert_eq(lq_int4_get(q.data, i), qx[i], "x code %d", i);
    quant(LQ_WFMT_W4A16, y, 1, 4, &p, &q);
    cr_assert_eq(q.scale[0], 0.5f);
    for (int i = 0; i < 4; i++) cr_assert_eq(lq_int4_get(q.data, i), qy[i], "y code %d", i);
}

/* int8 (W8A16 and W8A8 share the rule): x = [-2 1 1.5 0.0078125]: max = -2, d = -2 / -128 =
 * 1/64, q = [-128 64 96 0.5->0]; amax would give scale 2 / 127.5 and no code -128. Groups of 4
 * along a row of 8 in W4A16 use their own extremes: [0.5 0 0 0 | -3 0 0 1.5] -> d = 0.5 / -8 =
 * -0.0625 and -3 / -8 = 0.375; codes [-8 0 0 0 | -8 0 0 4]. */
Test(signed_max, int8_and_groups) {
    const lq_quant_params p = {.rounding = LQ_ROUND_SIGNED_MAX};
    const float x[4] = {-2, 1, 1.5f, 0.0078125f};
    qw q;
    quant(LQ_WFMT_W8A16, x, 1, 4, &p, &q);
    cr_assert_eq(q.scale[0], 1.0f / 64);
    const int want[4] = {-128, 64, 96, 0};
    for (int i = 0; i < 4; i++) cr_assert_eq(lq_int8p_get(q.data, i), want[i], "int8 code %d", i);
    const lq_quant_params pg = {.rounding = LQ_ROUND_SIGNED_MAX, .group_size = 4};
    const float g[8] = {0.5f, 0, 0, 0, -3, 0, 0, 1.5f};
    quant(LQ_WFMT_W4A16, g, 1, 8, &pg, &q);
    cr_assert_eq(q.scale[0], -0.0625f);
    cr_assert_eq(q.scale[1], 0.375f);
    const int wg[8] = {-8, 0, 0, 0, -8, 0, 0, 4};
    for (int i = 0; i < 8; i++) cr_assert_eq(lq_int4_get(q.data, i), wg[i], "group code %d", i);
}

/* ---- clip search weighting ------------------------------------------------------------------------ */

/* One group of 8 with an outlier: x = [10 1 1.2 -0.9 0.7 -1.1 0.4 0.8], signed-max (d = -1.25).
 * Calibration weight 0 on column 0: clipping costs the outlier nothing and the seven small
 * weights' rounding error (up to d / 2 = 0.625 at ratio 1) shrinks with the step, so the search
 * must clip. Weight 1e6 on column 0: any ratio r < 1 maps 10 to code -8, i.e. 10 r, an error of
 * at least (10 * 0.01)^2 * 1e6 = 1e4, far above anything the seven can gain (< 8 * 0.625^2),
 * so the search must keep ratio 1: the plain RTN bytes. */
Test(clip, calibrated_weights_decide) {
    const float x[8] = {10, 1, 1.2f, -0.9f, 0.7f, -1.1f, 0.4f, 0.8f};
    const float w0[8] = {0, 1, 1, 1, 1, 1, 1, 1}, w1[8] = {1e6f, 1, 1, 1, 1, 1, 1, 1};
    lq_clip_stats st = {0};
    lq_quant_params p = {.rounding = LQ_ROUND_SIGNED_MAX, .clip_search = 1, .col_weight = w0,
                         .clip_stats = &st};
    qw plain, a, b;
    const lq_quant_params pr = {.rounding = LQ_ROUND_SIGNED_MAX};
    quant(LQ_WFMT_W4A16, x, 1, 8, &pr, &plain);
    cr_assert_eq(plain.scale[0], -1.25f);
    quant(LQ_WFMT_W4A16, x, 1, 8, &p, &a);
    cr_assert(fabsf(a.scale[0]) < 1.25f, "zero weight on the outlier: expected a clip, scale %g", a.scale[0]);
    cr_assert_eq(st.groups, 1);
    cr_assert_eq(st.clipped, 1);
    cr_assert(st.ratio_min < 1.0 && st.err_chosen < st.err_plain);
    /* the test's own weighted error of both answers */
    float da[8], dp[8];
    lq_wfmt_get(LQ_WFMT_W4A16)->dequant_ref(&a.w, 0, 1, da);
    lq_wfmt_get(LQ_WFMT_W4A16)->dequant_ref(&plain.w, 0, 1, dp);
    double ea = 0, ep = 0;
    for (int i = 0; i < 8; i++) {
        ea += w0[i] * pow(da[i] - x[i], 2);
        ep += w0[i] * pow(dp[i] - x[i], 2);
    }
    cr_assert(ea < ep, "clipped error %g not below plain %g", ea, ep);
    memset(&st, 0, sizeof st);
    p.col_weight = w1;
    quant(LQ_WFMT_W4A16, x, 1, 8, &p, &b);
    cr_assert_eq(b.scale[0], -1.25f);
    cr_assert_eq(memcmp(b.data, plain.data, 4), 0, "heavy outlier weight: bytes must be plain RTN's");
    cr_assert_eq(st.clipped, 0);
    cr_assert_eq(st.ratio_min, 1.0);
}

/* Without data the weights are x^2 + mean(x^2) per group (quant_common.c clip_weights): on the
 * same group the outlier's weight 100 + 13.5 dominates, so no clip is taken either. */
Test(clip, no_data_keeps_a_dominant_outlier) {
    const float x[8] = {10, 1, 1.2f, -0.9f, 0.7f, -1.1f, 0.4f, 0.8f};
    lq_clip_stats st = {0};
    const lq_quant_params p = {.rounding = LQ_ROUND_SIGNED_MAX, .clip_search = 1, .clip_stats = &st};
    qw q;
    quant(LQ_WFMT_W4A16, x, 1, 8, &p, &q);
    cr_assert_eq(q.scale[0], -1.25f);
    cr_assert_eq(st.groups, 1);
    cr_assert_eq(st.clipped, 0);
}

/* ---- issue 10 defect 7: asymmetric scales near FLT_MAX ----------------------------------------- */

/* x = [-3e38 3e38 0 1e38]: hi - lo = 6e38 overflows f32 (max 3.4028e38), and compressed-tensors'
 * formula gave an inf scale. In double: scale = 6e38 / 15 = 4e37, zero = round(-8 + 3e38 / 4e37)
 * = round(-0.5) = 0 (tie to even), codes [-7.5 -> -8, 7.5 -> clamp 7, 0, 2.5 -> 2], all finite:
 * dequantized within one step (clamp) of x. */
Test(asym, near_flt_max_scale_is_finite) {
    const float x[4] = {-3e38f, 3e38f, 0, 1e38f};
    const lq_quant_params p = {.asym = 1};
    qw q;
    quant(LQ_WFMT_W4A16, x, 1, 4, &p, &q);
    cr_assert(isfinite(q.scale[0]) && q.scale[0] > 0, "scale %g", q.scale[0]);
    cr_assert(fabs(q.scale[0] - 4e37) < 1e31, "scale %g, want 4e37", q.scale[0]);
    cr_assert_eq(q.zero[0], 0.0f);
    const int want[4] = {-8, 7, 0, 2};
    for (int i = 0; i < 4; i++) cr_assert_eq(lq_int4_get(q.data, i), want[i], "code %d", i);
    float out[4];
    lq_wfmt_get(LQ_WFMT_W4A16)->dequant_ref(&q.w, 0, 1, out);
    for (int i = 0; i < 4; i++)
        cr_assert(isfinite(out[i]) && fabs((double)out[i] - x[i]) <= 4e37 * 1.0001, "deq %d: %g", i, out[i]);
}

/* ---- quant-ptq output: metadata and bytes per token ---------------------------------------------- */

/* The raw safetensors header of dir/model.safetensors (u64 length + JSON), parsed here without
 * the library; *data_bytes = file size - 8 - header length. */
static json_t *read_header(const char *dir, uint64_t *data_bytes) {
    char path[1024];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    uint64_t n = 0;
    cr_assert_eq(fread(&n, 8, 1, f), 1u);
    char *h = malloc(n + 1);
    cr_assert_eq(fread(h, 1, n, f), n);
    h[n] = 0;
    fclose(f);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    *data_bytes = (uint64_t)sb.st_size - 8 - n;
    json_error_t err;
    json_t *j = json_loads(h, 0, &err);
    free(h);
    cr_assert_not_null(j, "%s: %s", path, err.text);
    return j;
}

static uint64_t tensor_bytes(json_t *h, const char *name) {
    json_t *o = json_object_get(json_object_get(h, name), "data_offsets");
    cr_assert(json_is_array(o), "no tensor %s", name);
    return (uint64_t)(json_integer_value(json_array_get(o, 1)) - json_integer_value(json_array_get(o, 0)));
}

/* Bytes per token by the file: every stored byte is read once per token except the 16-byte
 * weight_shape tensors (metadata) and the embedding table, of which one row is read; a tied head
 * reads the whole embedding again. */
static uint64_t expected_bytes_per_token(json_t *h, uint64_t data_bytes, bool tied) {
    uint64_t b = data_bytes, emb = tensor_bytes(h, "model.embed_tokens.weight");
    const char *k;
    json_t *v;
    json_object_foreach(h, k, v) {
        const char *suf = ".weight_shape";
        if (strlen(k) > strlen(suf) && strcmp(k + strlen(k) - strlen(suf), suf) == 0) b -= tensor_bytes(h, k);
    }
    int64_t vocab = json_integer_value(json_array_get(
        json_object_get(json_object_get(h, "model.embed_tokens.weight"), "shape"), 0));
    return b - emb + emb / (uint64_t)vocab + (tied ? emb : 0);
}

static void check_output(const char *dir, const char *rounding, bool tied) {
    uint64_t data_bytes;
    json_t *h = read_header(dir, &data_bytes);
    json_t *meta = json_object_get(h, "__metadata__");
    if (rounding) {
        cr_assert_str_eq(json_string_value(json_object_get(meta, "lq.rounding")), rounding);
        cr_assert_str_eq(json_string_value(json_object_get(meta, "format")), "pt");
    }
    json_object_del(h, "__metadata__");
    lq_model *m = NULL;
    cr_assert_eq(lq_model_load(dir, &m), LQ_OK, "%s: %s", dir, lq_last_error());
    uint64_t want = expected_bytes_per_token(h, data_bytes, tied), got = lq_model_weight_bytes_per_token(m);
    cr_assert_eq(got, want, "%s: bytes per token %llu, the file says %llu", dir, (unsigned long long)got,
                 (unsigned long long)want);
    lq_model_free(m);
    json_decref(h);
}

/* stories260K: the f32 conversion (tied head), W4A16 g32 signed-max with per-channel fallback
 * and a quantized head, and the asymmetric one (zero points): every byte counted as the file
 * holds it. The nominal count (4 bits + f32 scale per 32) misses the per-channel rows' scales,
 * the zero points and the packing's padding. */
Test(ptq_output, metadata_and_bytes_per_token, .timeout = 300) {
    char tmp[] = "/tmp/lq_test_rtn_XXXXXX";
    cr_assert_not_null(mkdtemp(tmp));
    char f32[256], cmd[4096], args[1024], err[2048], out[256];
    snprintf(f32, sizeof f32, "%s/f32", tmp);
    cr_assert_eq(lq_test_convert_stories260k(f32, cmd, sizeof cmd), 0, "%s", cmd);
    check_output(f32, NULL, true);
    const char *variants[][2] = {{"sym", "--rounding signed-max"}, {"asym", "--asym"}};
    for (int v = 0; v < 2; v++) {
        snprintf(out, sizeof out, "%s/%s", tmp, variants[v][0]);
        snprintf(args, sizeof args, "--model '%s' --out '%s' --scheme W4A16 --group-size 32 "
                 "--group-fallback channel --override lm_head=W4A16 --clip-search %s", f32, out,
                 variants[v][1]);
        cr_assert_eq(lq_test_run_tool("quant-ptq", args, tmp, err, sizeof err), 0, "%s", err);
        check_output(out, v == 0 ? "signed-max" : "amax", false);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    cr_assert_eq(system(cmd), 0);
}
