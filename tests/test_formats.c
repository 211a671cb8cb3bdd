/* test_formats.c - the quantized weight formats (W8A16, W4A16, FP8 E4M3, W8A8).
 *
 * External references: the compressed-tensors byte layouts and quantization rules (hand-worked
 * examples below, each derived in its comment from pack_to_int32 / calculate_qparams, inputs
 * chosen so every scale is exact in f32), the OCP 8-bit floating point spec for E4M3 (exhaustive
 * over the 256 codes against its formula). Then the properties every format must keep: the
 * round-trip error bound of its table row, fast == ref within the row's tolerance (bit-exact
 * dequant), lq_matmul == lq_matmul_ref, and W8A8 prefill == decode.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lq_blocks.h"
#include "lq_format.h"
#include "lq_ops.h"
#include "lq_pool.h"

#define KT_RNG_SEED 0x243f6a8885a308d3ull
#include "kern_test_util.h"

/* ---- helpers -------------------------------------------------------------------------------- */


static void expect_bytes(const void *got, const uint8_t *want, size_t n, const char *what) {
    const uint8_t *g = got;
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(g[i], want[i], "%s: byte %zu is %02X, want %02X", what, i, g[i], want[i]);
}

static const lq_quant_params k_p0 = {0};

/* ---- compressed-tensors layouts, hand-worked -------------------------------------------------- */

/* int4, one group per row, symmetric. Row 0: max|x| = 7.5 so scale = 7.5 / 7.5 = 1 exactly and
 * the codes are round(x): -7.5 -> -8 (tie to even), the rest are integers: q = -8..7, u = q + 8 =
 * 0..15, packed 8 per int32 at bits 4i: words 0x76543210, 0xFEDCBA98, bytes (little-endian)
 * 10 32 54 76 98 BA DC FE. */
Test(layout, int4_row_hand_worked) {
    float src[16] = {-7.5f, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7};
    qweight q;
    cr_assert(kt_quantize(LQ_WFMT_W4A16, src, 1, 16, &k_p0, &q));
    cr_assert_eq(q.w.row_bytes, 8u);
    const uint8_t want[8] = {0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE};
    expect_bytes(q.data, want, 8, "int4 row");
    uint32_t w0, w1;
    memcpy(&w0, q.data, 4); memcpy(&w1, (char *)q.data + 4, 4);
    cr_assert_eq(w0, 0x76543210u); cr_assert_eq(w1, 0xFEDCBA98u); /* x86 is little-endian too */
    cr_assert_eq(q.aux0[0], 1.0f);
    for (int c = 0; c < 16; c++) cr_assert_eq(lq_int4_get(q.data, c), c - 8);
    kt_qfree(&q);
}

/* int4 ties and the clamp, 8 columns (one word), scale 1 (max|x| = 7.5):
 * x = [0.5 1.5 2.5 -0.5 -1.5 7.5 -3.5 6.5] -> round half even [0 2 2 0 -2 8->clamp 7 -4 6]
 * (compressed-tensors clamps to [-8, 7] then rounds: 7.5 -> 7), u = [8 10 10 8 6 15 4 14],
 * bytes u0|u1<<4 ... = A8 8A F6 E4. A 1x12 row pads to 2 words with u = 0. */
Test(layout, int4_ties_and_padding) {
    float src[8] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 7.5f, -3.5f, 6.5f};
    qweight q;
    cr_assert(kt_quantize(LQ_WFMT_W4A16, src, 1, 8, &k_p0, &q));
    const uint8_t want[4] = {0xA8, 0x8A, 0xF6, 0xE4};
    expect_bytes(q.data, want, 4, "int4 ties");
    kt_qfree(&q);
    /* 12 columns: [7.5, 0 x 11] -> codes [7, 0 ...]: bytes 8F 88 88 88 88 88, then the pad 00 00 */
    float s12[12] = {7.5f};
    cr_assert(kt_quantize(LQ_WFMT_W4A16, s12, 1, 12, &k_p0, &q));
    cr_assert_eq(q.w.row_bytes, 8u);
    const uint8_t want12[8] = {0x8F, 0x88, 0x88, 0x88, 0x88, 0x88, 0x00, 0x00};
    expect_bytes(q.data, want12, 8, "int4 padded row");
    kt_qfree(&q);
}

/* int4 asymmetric: x = [-2 -1 0 1 2 3 4 13]: lo = -2, hi = 13, scale = 15 / 15 = 1,
 * zero = round(-8 - (-2) / 1) = -6, q = round(x / 1 + (-6)) = [-8 -7 -6 -5 -4 -3 -2 7],
 * u = [0 1 2 3 4 5 6 15]: bytes 10 32 54 F6; dequant (q - zero) * scale = x exactly.
 * Then a row of non-negative values [0 .. 15 step 1 as 0,3,5,7,8,10,14,15]: lo = 0 (the range
 * always includes 0), scale 1, zero = -8, q = x - 8, u = x: bytes 30 75 A8 FE. */
Test(layout, int4_asym_hand_worked) {
    const lq_quant_params pa = {.asym = 1};
    float src[16] = {-2, -1, 0, 1, 2, 3, 4, 13, 0, 3, 5, 7, 8, 10, 14, 15};
    qweight q;
    cr_assert(kt_quantize(LQ_WFMT_W4A16, src, 2, 8, &pa, &q));
    cr_assert_not_null(q.aux1);
    const uint8_t want0[4] = {0x10, 0x32, 0x54, 0xF6}, want1[4] = {0x30, 0x75, 0xA8, 0xFE};
    expect_bytes(q.data, want0, 4, "asym row 0");
    expect_bytes((char *)q.data + 4, want1, 4, "asym row 1");
    cr_assert_eq(q.aux0[0], 1.0f); cr_assert_eq(q.aux1[0], -6.0f);
    cr_assert_eq(q.aux0[1], 1.0f); cr_assert_eq(q.aux1[1], -8.0f);
    float out[16];
    lq_wfmt_get(LQ_WFMT_W4A16)->dequant_ref(&q.w, 0, 2, out);
    for (int i = 0; i < 16; i++) cr_assert_eq(out[i], src[i], "asym dequant %d: %g", i, out[i]);
    kt_qfree(&q);
}

/* int4 groups of 32 along a 64-wide row: group 0 max|x| = 7.5 (scale 1), group 1 max|x| = 15
 * (scale 15 / 7.5 = 2): x[32 + i] = 2 q gives code q. Scales are [rows][n_groups]. */
Test(layout, int4_groups) {
    const lq_quant_params pg = {.group_size = 32};
    float src[64] = {0};
    src[0] = -7.5f; src[1] = 3.0f; src[32] = 15.0f; src[33] = -4.0f; src[63] = -15.0f;
    qweight q;
    cr_assert(kt_quantize(LQ_WFMT_W4A16, src, 1, 64, &pg, &q));
    cr_assert_eq(q.w.group_size, 32);
    cr_assert_eq(q.aux0[0], 1.0f); cr_assert_eq(q.aux0[1], 2.0f);
    const uint8_t *row = q.data;
    /* byte 0 = codes (-8, 3) -> u (0, 11) = 0xB0; byte 16 = codes (15/2 = 7.5 -> clamp 7, -2)
     * -> u (15, 6) = 0x6F; byte 31 = codes (0, -7.5 -> -8) -> u (8, 0) = 0x08 */
    cr_assert_eq(row[0], 0xB0); cr_assert_eq(row[16], 0x6F); cr_assert_eq(row[31], 0x08);
    kt_qfree(&q);
}

/* int3 (W3A16), compressed-tensors 0.19's dense packing (pack_to_int32 / unpack_from_int32 in
 * compressors/pack_quantized/helpers.py): element i of a row at global bit 3i (word 3i / 32, bit
 * 3i % 32, its high bits in the next word when it straddles), u = q + 4, ceil(3 cols / 32) words.
 * Hand-written words, decoded by that definition:
 *   [0xFFFFFFFF, 0x00000000, 0xFFFFFFFF] (bits 0-31 set, 32-63 clear, 64-95 set): elements 0-9
 *   (bits 0-29) u = 7, q = 3; element 10 = bits 30, 31, 32 = 1, 1, 0: u = 3, q = -1; elements
 *   11-20 (bits 33-62) q = -4; element 21 = bits 63, 64, 65 = 0, 1, 1: u = 6, q = 2; 22-31 q = 3.
 *   [0x49249249, 0x92492492, 0x24924924] = bits 0, 3, 6, ..., 93 set: every u = 1, q = -3.
 * (compressed-tensors' unpack_from_int32(..., num_bits=3) gives exactly these codes.) Both the
 * scalar decoder and the fast dequant (scale 0.5, zero 0 and zero -2 asymmetric) must read them. */
Test(layout, int3_hand_written_words) {
    const uint32_t words[2][3] = {{0xFFFFFFFFu, 0x00000000u, 0xFFFFFFFFu},
                                  {0x49249249u, 0x92492492u, 0x24924924u}};
    int want[2][32];
    for (int c = 0; c < 32; c++) {
        want[0][c] = c < 10 ? 3 : c == 10 ? -1 : c < 21 ? -4 : c == 21 ? 2 : 3;
        want[1][c] = -3;
    }
    uint8_t rows[24];
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < 3; k++)
            for (int b = 0; b < 4; b++) rows[12 * r + 4 * k + b] = (uint8_t)(words[r][k] >> (8 * b)); /* LE */
    cr_assert_eq(LQ_PACK3_ROW_BYTES(32), 12);
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 32; c++)
            cr_assert_eq(lq_int3_get(rows + 12 * r, c), want[r][c], "row %d col %d: %d, want %d", r, c,
                         lq_int3_get(rows + 12 * r, c), want[r][c]);
    float scale[2] = {0.5f, 0.5f}, zero[2] = {-2.0f, -2.0f}, out[64];
    const lq_isa best = lq_cpu_isa();
    for (int isa = LQ_ISA_SCALAR; isa <= (int)best; isa++) {
        lq_kernels_set_isa((lq_isa)isa);
        for (int asym = 0; asym < 2; asym++) {
            lq_weight w = {.fmt = LQ_WFMT_W3A16, .rows = 2, .cols = 32, .data = rows, .row_bytes = 12,
                           .aux = {scale, asym ? zero : NULL}};
            lq_wfmt_get(LQ_WFMT_W3A16)->dequant(&w, 0, 2, out);
            for (int i = 0; i < 64; i++)
                cr_assert_eq(out[i], (float)(want[i / 32][i % 32] + (asym ? 2 : 0)) * 0.5f,
                             "isa %d asym %d element %d: %g", isa, asym, i, out[i]);
        }
    }
    lq_kernels_set_isa(best);
}

/* int3 quantize + pack, one group per row, symmetric: max|x| = 3.5 so scale = 3.5 / 3.5 = 1
 * (compressed-tensors: amax / ((qmax - qmin) / 2) = amax / 3.5); codes round(x) clamped to
 * [-4, 3]: -3.5 -> -4 (tie to even); q = [-4 -3 -2 -1 0 1 2 3 3 3 1], u = [0 .. 7 7 7 5]: the
 * lq_blocks.h example, words 0x7FFAC688 0x00000001 (element 10 straddles: its top bit is bit 0
 * of word 1), bytes 88 C6 FA 7F 01 00 00 00. Asymmetric: x = [-1 0 1 2 3 4 5 6]: lo -1, hi 6,
 * scale 7 / 7 = 1, zero = round(-4 - (-1)) = -3, q = x - 3 = [-4 .. 3], u = 0 .. 7: bytes 88 C6 FA
 * and the padding 00; dequant (q - zero) * scale gives x back exactly. */
Test(layout, int3_row_hand_worked) {
    float src[11] = {-3.5f, -3, -2, -1, 0, 1, 2, 3, 3, 3, 1};
    qweight q;
    cr_assert(kt_quantize(LQ_WFMT_W3A16, src, 1, 11, &k_p0, &q));
    cr_assert_eq(q.w.row_bytes, 8u);
    const uint8_t want[8] = {0x88, 0xC6, 0xFA, 0x7F, 0x01, 0x00, 0x00, 0x00};
    expect_bytes(q.data, want, 8, "int3 row");
    cr_assert_eq(q.aux0[0], 1.0f);
    kt_qfree(&q);
    const lq_quant_params pa = {.asym = 1};
    float sa[8] = {-1, 0, 1, 2, 3, 4, 5, 6};
    cr_assert(kt_quantize(LQ_WFMT_W3A16, sa, 1, 8, &pa, &q));
    const uint8_t wa[4] = {0x88, 0xC6, 0xFA, 0x00};
    expect_bytes(q.data, wa, 4, "int3 asym row");
    cr_assert_eq(q.aux0[0], 1.0f); cr_assert_eq(q.aux1[0], -3.0f);
    float out[8];
    lq_wfmt_get(LQ_WFMT_W3A16)->dequant_ref(&q.w, 0, 1, out);
    for (int i = 0; i < 8; i++) cr_assert_eq(out[i], sa[i], "asym dequant %d: %g", i, out[i]);
    kt_qfree(&q);
}

/* W3A16 one group per row at awkward widths (the vector loop's octets, then scalar codes; the
 * last octet of a row whose bits end on a word boundary must not be read past the row: the
 * buffer is exactly rows * row_bytes, so ASan would see it): fast vs ref at every ISA level. */
Test(fast, w3a16_awkward_widths) {
    const int64_t widths[] = {1, 3, 7, 8, 11, 31, 32, 33, 127, 129, 1023};
    const lq_wfmt_traits *tr = lq_wfmt_get(LQ_WFMT_W3A16);
    const lq_isa best = lq_cpu_isa();
    for (int isa = LQ_ISA_SCALAR; isa <= (int)best; isa++) {
        lq_kernels_set_isa((lq_isa)isa);
        for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++) {
            for (int asym = 0; asym < 2; asym++) {
                const int64_t rows = 5, cols = widths[i];
                const lq_quant_params p = {.asym = asym};
                float *src = malloc((size_t)(rows * cols) * sizeof(float)), *x = malloc((size_t)cols * sizeof(float));
                float y[5], yr[5], *df = malloc((size_t)(rows * cols) * 4), *dr = malloc((size_t)(rows * cols) * 4);
                double scale[5];
                fill(src, rows * cols, -2.0f, 2.0f);
                fill(x, cols, -1.0f, 1.0f);
                qweight q;
                cr_assert(kt_quantize(LQ_WFMT_W3A16, src, rows, cols, &p, &q));
                tr->matvec(&q.w, x, y, 0, rows);
                tr->matvec_ref(&q.w, x, yr, 0, rows);
                tr->dequant(&q.w, 0, rows, df);
                tr->dequant_ref(&q.w, 0, rows, dr);
                for (int64_t r = 0; r < rows; r++) {
                    scale[r] = 0;
                    for (int64_t c = 0; c < cols; c++) scale[r] += fabs((double)dr[r * cols + c] * x[c]);
                }
                char what[96];
                snprintf(what, sizeof what, "w3a16 isa %d asym %d 5 x %lld", isa, asym, (long long)cols);
                EXPECT_CLOSE(what, y, yr, scale, rows, tr->tol_atol, tr->tol_rtol);
                cr_assert_eq(memcmp(df, dr, (size_t)(rows * cols) * 4), 0, "%s: dequant differs", what);
                kt_qfree(&q);
                free(src); free(x); free(df); free(dr);
            }
        }
    }
    lq_kernels_set_isa(best);
}

/* 8-bit pack-quantized (W8A16): x = [-127.5 -1 0 127.5]: scale = 127.5 / 127.5 = 1 (the int8
 * symmetric rule is amax / ((127 - (-128)) / 2)), codes [-128 (tie to even) -1 0 127 (clamp)],
 * u = q + 128 = [0 127 128 255]: word 0xFF807F00, bytes 00 7F 80 FF. A 1x5 row
 * [0.5 1 1.5 2 127.5] -> codes [0 1 2 2 127] -> bytes 80 81 82 82 FF, padded 00 00 00.
 * The same codes as int-quantized (W8A8) int8 bytes: 80 FF 00 7F. */
Test(layout, int8_hand_worked) {
    float src[4] = {-127.5f, -1, 0, 127.5f};
    qweight q;
    cr_assert(kt_quantize(LQ_WFMT_W8A16, src, 1, 4, &k_p0, &q));
    const uint8_t want[4] = {0x00, 0x7F, 0x80, 0xFF};
    expect_bytes(q.data, want, 4, "int8 packed row");
    uint32_t w0;
    memcpy(&w0, q.data, 4);
    cr_assert_eq(w0, 0xFF807F00u);
    cr_assert_eq(q.aux0[0], 1.0f);
    kt_qfree(&q);
    float s5[5] = {0.5f, 1, 1.5f, 2, 127.5f};
    cr_assert(kt_quantize(LQ_WFMT_W8A16, s5, 1, 5, &k_p0, &q));
    cr_assert_eq(q.w.row_bytes, 8u);
    const uint8_t want5[8] = {0x80, 0x81, 0x82, 0x82, 0xFF, 0, 0, 0};
    expect_bytes(q.data, want5, 8, "int8 padded row");
    kt_qfree(&q);
    cr_assert(kt_quantize(LQ_WFMT_W8A8, src, 1, 4, &k_p0, &q));
    cr_assert_eq(q.w.row_bytes, 4u);
    const uint8_t want8[4] = {0x80, 0xFF, 0x00, 0x7F};
    expect_bytes(q.data, want8, 4, "int8 int-quantized row");
    kt_qfree(&q);
}

/* FP8 per channel: max|x| = 448 -> scale 448 / 448 = 1: 448 -> 0x7E, -1 -> 0xB8, 0.5 -> 0x30,
 * 2^-9 -> 0x01, 0 -> 0x00, 17 (the tie between 16 = 2^4: e = 11, m = 0: 0x58, and
 * 18 = 1.125 * 2^4: 0x59) -> 0x58 (even).
 * Row 1, max|x| = 896: scale 2, 3 -> 1.5 = 0x3C. Per tensor: both rows get scale 2. */
Test(layout, fp8_hand_worked) {
    float src[12] = {448, -1, 0.5f, 0.001953125f, 0, 17, 896, 3, 0, 0, 0, 0};
    qweight q;
    cr_assert(kt_quantize(LQ_WFMT_FP8_E4M3, src, 2, 6, &k_p0, &q));
    const uint8_t want[12] = {0x7E, 0xB8, 0x30, 0x01, 0x00, 0x58, 0x7E, 0x3C, 0, 0, 0, 0};
    expect_bytes(q.data, want, 12, "fp8 per channel");
    cr_assert_eq(q.aux0[0], 1.0f); cr_assert_eq(q.aux0[1], 2.0f);
    kt_qfree(&q);
    const lq_quant_params pt = {.per_tensor = 1};
    cr_assert(kt_quantize(LQ_WFMT_FP8_E4M3, src, 2, 6, &pt, &q));
    cr_assert_eq(q.aux0[0], 2.0f); cr_assert_eq(q.aux0[1], 2.0f);
    /* 448 / 2 = 224 = 1.75 * 2^7 -> e = 14, m = 6: 0x76 */
    cr_assert_eq(((uint8_t *)q.data)[0], 0x76);
    kt_qfree(&q);
}

/* Scales are rounded to their storage dtype before the codes are computed: max|x| = 1.1 gives
 * 1.1 / 7.5 = 0.14666668 in f32, rounded to bf16 0x3E16 = 0.14648438 (down). The codes use the
 * bf16 value: 1.1 / 0.14648438 = 7.509 -> clamp 7, -1.1 -> -7.509 -> -8 (with the f32 scale both
 * would be 7.5 -> 7 and -7.5 -> -8). A zero row gets the dtype's epsilon (bf16: 2^-7). */
Test(layout, scale_dtype_rounding) {
    const lq_quant_params pb = {.scale_dtype = LQ_SCALE_BF16};
    float src[16] = {1.1f, -1.1f, 0.5f};
    qweight q;
    cr_assert(kt_quantize(LQ_WFMT_W4A16, src, 2, 8, &pb, &q));
    cr_assert_eq(q.aux0[0], lq_bf16_to_f32(0x3E16), "scale %.9g", q.aux0[0]);
    cr_assert_eq(lq_int4_get(q.data, 0), 7);
    cr_assert_eq(lq_int4_get(q.data, 1), -8);
    /* 0.5 / 0.14648438 = 3.413 -> 3 */
    cr_assert_eq(lq_int4_get(q.data, 2), 3);
    cr_assert_eq(q.aux0[1], 0.0078125f, "zero row: scale %g", q.aux0[1]);
    kt_qfree(&q);
}

Test(layout, sizes) {
    size_t rb;
    int64_t a0, a1;
    lq_quant_params p = {.group_size = 32};
    /* group sizes must divide cols (compressed-tensors refuses a tail group) */
    cr_assert_eq(lq_wfmt_sizes(LQ_WFMT_W4A16, 3, 40, &p, &rb, &a0, &a1), 0);
    cr_assert_eq(lq_wfmt_sizes(LQ_WFMT_W4A16, 3, 136, &p, &rb, &a0, &a1), 0);
    cr_assert(lq_wfmt_sizes(LQ_WFMT_W4A16, 3, 96, &p, &rb, &a0, &a1));
    cr_assert_eq(rb, 48u); cr_assert_eq(a0, 9); cr_assert_eq(a1, 0);
    p.asym = 1;
    cr_assert(lq_wfmt_sizes(LQ_WFMT_W4A16, 3, 96, &p, &rb, &a0, &a1));
    cr_assert_eq(a1, 9);
    p = (lq_quant_params){0}; /* one group per row: any width */
    cr_assert(lq_wfmt_sizes(LQ_WFMT_W4A16, 3, 41, &p, &rb, &a0, &a1));
    cr_assert_eq(rb, 24u); cr_assert_eq(a0, 3);
    cr_assert(lq_wfmt_sizes(LQ_WFMT_W8A16, 2, 5, &p, &rb, &a0, &a1));
    cr_assert_eq(rb, 8u); cr_assert_eq(a0, 2); cr_assert_eq(a1, 0);
    cr_assert(lq_wfmt_sizes(LQ_WFMT_FP8_E4M3, 2, 5, &p, &rb, &a0, &a1));
    cr_assert_eq(rb, 5u);
    cr_assert(lq_wfmt_sizes(LQ_WFMT_W8A8, 2, 5, &p, &rb, &a0, &a1));
    cr_assert_eq(rb, 5u);
    cr_assert_eq(lq_wfmt_sizes(LQ_WFMT_W8A8, 2, 131073, &p, &rb, &a0, &a1), 0); /* int32 sums */
    cr_assert(lq_wfmt_sizes(LQ_WFMT_BF16, 2, 5, NULL, &rb, &a0, &a1));
    cr_assert_eq(rb, 10u); cr_assert_eq(a0, 0);
    cr_assert_eq(lq_wfmt_sizes(LQ_WFMT_W8A16, 0, 5, &p, &rb, &a0, &a1), 0);
    /* 3 bits: ceil(3 cols / 32) words: 32 columns in 3 words, 33 in 4, 128 in 12 */
    cr_assert(lq_wfmt_sizes(LQ_WFMT_W3A16, 2, 32, &p, &rb, &a0, &a1));
    cr_assert_eq(rb, 12u); cr_assert_eq(a0, 2);
    cr_assert(lq_wfmt_sizes(LQ_WFMT_W3A16, 2, 33, &p, &rb, &a0, &a1));
    cr_assert_eq(rb, 16u);
    p = (lq_quant_params){.group_size = 64, .asym = 1};
    cr_assert(lq_wfmt_sizes(LQ_WFMT_W3A16, 2, 128, &p, &rb, &a0, &a1));
    cr_assert_eq(rb, 48u); cr_assert_eq(a0, 4); cr_assert_eq(a1, 4);
    cr_assert_eq(lq_wfmt_sizes(LQ_WFMT_W3A16, 2, 96, &p, &rb, &a0, &a1), 0);
    cr_assert_eq(lq_wfmt_sizes(LQ_WFMT_COUNT, 2, 5, &p, &rb, &a0, &a1), 0);
}

/* ---- E4M3 against the OCP spec -------------------------------------------------------------- */

/* The OCP 8-bit floating point spec (v1.0, E4M3): bias 7; normal (-1)^s 2^(e-7) (1 + m/8),
 * subnormal (-1)^s 2^-6 (m/8); S.1111.111 is NaN; no infinities. */
static double e4m3_spec(unsigned c) {
    unsigned s = c >> 7, e = (c >> 3) & 15, m = c & 7;
    if (e == 15 && m == 7) return NAN;
    double v = e == 0 ? ldexp(m / 8.0, -6) : ldexp(1.0 + m / 8.0, (int)e - 7);
    return s ? -v : v;
}

Test(e4m3, decode_exhaustive) {
    for (unsigned c = 0; c < 256; c++) {
        const float got = lq_e4m3_to_f32((lq_e4m3)c);
        const double want = e4m3_spec(c);
        if (isnan(want)) { cr_assert(isnan(got), "code %02X must be NaN, got %g", c, got); continue; }
        cr_assert_eq((double)got, want, "code %02X: got %.9g, want %.9g", c, got, want);
        cr_assert_eq(signbit(got) != 0, (c & 0x80) != 0, "code %02X sign", c);
    }
    /* known values from the spec's tables */
    cr_assert_eq(lq_e4m3_to_f32(0x7E), 448.0f);
    cr_assert_eq(lq_e4m3_to_f32(0x38), 1.0f);
    cr_assert_eq(lq_e4m3_to_f32(0x08), 0.015625f);
    cr_assert_eq(lq_e4m3_to_f32(0x01), 0.001953125f);
    cr_assert_eq(lq_e4m3_to_f32(0x07), 0.013671875f); /* largest subnormal 7 * 2^-9 */
    cr_assert_eq(lq_e4m3_to_f32(0xFE), -448.0f);
}

Test(e4m3, encode_roundtrip_every_code) {
    for (unsigned c = 0; c < 256; c++) {
        if ((c & 0x7F) == 0x7F) continue;
        const lq_e4m3 e = lq_f32_to_e4m3(lq_e4m3_to_f32((lq_e4m3)c));
        cr_assert_eq(e, c, "encode(decode(%02X)) = %02X", c, e);
    }
    cr_assert_eq(lq_f32_to_e4m3(0.0f), 0x00);
    cr_assert_eq(lq_f32_to_e4m3(-0.0f), 0x80);
}

/* Between adjacent codes c and c+1 (same sign): the midpoint goes to the even code, anything a
 * hair off it to the nearer one. Covers the subnormal/normal boundary and binade carries. */
Test(e4m3, midpoints_round_to_even) {
    for (unsigned sign = 0; sign <= 0x80; sign += 0x80) {
        for (unsigned c = 0; c < 0x7E; c++) {
            const float a = lq_e4m3_to_f32((lq_e4m3)(sign | c)), b = lq_e4m3_to_f32((lq_e4m3)(sign | (c + 1)));
            const float mid = (a + b) / 2; /* exact: both have few significant bits */
            cr_assert_eq((double)mid, ((double)a + (double)b) / 2);
            const unsigned even = (c & 1) ? c + 1 : c;
            cr_assert_eq(lq_f32_to_e4m3(mid), sign | even, "midpoint of %02X/%02X -> %02X", sign | c,
                         sign | (c + 1), lq_f32_to_e4m3(mid));
            const float toward_a = nextafterf(mid, a), toward_b = nextafterf(mid, b);
            cr_assert_eq(lq_f32_to_e4m3(toward_a), sign | c, "just below the midpoint of %02X", sign | c);
            cr_assert_eq(lq_f32_to_e4m3(toward_b), sign | (c + 1), "just above the midpoint of %02X", sign | c);
        }
    }
    /* below half the smallest subnormal (2^-10): zero; 2^-10 itself is a tie -> 0 (even) */
    cr_assert_eq(lq_f32_to_e4m3(0.0009765625f), 0x00);
    cr_assert_eq(lq_f32_to_e4m3(nextafterf(0.0009765625f, 1.0f)), 0x01);
    cr_assert_eq(lq_f32_to_e4m3(1e-30f), 0x00);
    cr_assert_eq(lq_f32_to_e4m3(-1e-45f), 0x80); /* f32 subnormal */
}

Test(e4m3, saturation_and_nan) {
    const float big[] = {448.0f, 449.0f, 463.99f, 464.0f, 480.0f, 1e10f, INFINITY};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        cr_assert_eq(lq_f32_to_e4m3(big[i]), 0x7E, "%g must saturate to 448", big[i]);
        cr_assert_eq(lq_f32_to_e4m3(-big[i]), 0xFE, "%g must saturate to -448", -big[i]);
    }
    cr_assert_eq(lq_f32_to_e4m3(NAN) & 0x7F, 0x7F);
    cr_assert(isnan(lq_e4m3_to_f32(lq_f32_to_e4m3(NAN))));
    cr_assert(isnan(lq_e4m3_to_f32(0x7F)) && isnan(lq_e4m3_to_f32(0xFF)));
}

/* ---- round trip ------------------------------------------------------------------------------ */

static const int64_t k_cols[] = {8, 24, 40, 136, 520, 1000, 64, 96, 384, 1024};
#define N_COLS (sizeof k_cols / sizeof k_cols[0])
static const int64_t k_rows[] = {1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 33};
#define N_ROWS (sizeof k_rows / sizeof k_rows[0])

/* The parameter sets each format is exercised with (groups only matter for W4A16). */
typedef struct pcase { lq_wfmt fmt; lq_quant_params p; } pcase;
static const pcase k_cases[] = {
    {LQ_WFMT_W8A16, {0}},
    {LQ_WFMT_W8A16, {.scale_dtype = LQ_SCALE_BF16}},
    {LQ_WFMT_W8A8, {.scale_dtype = LQ_SCALE_F16}},
    {LQ_WFMT_FP8_E4M3, {0}},
    {LQ_WFMT_FP8_E4M3, {.per_tensor = 1, .scale_dtype = LQ_SCALE_BF16}},
    {LQ_WFMT_W4A16, {.group_size = 0}},
    {LQ_WFMT_W4A16, {.group_size = 32}},
    {LQ_WFMT_W4A16, {.group_size = 64, .asym = 1, .scale_dtype = LQ_SCALE_BF16}},
    {LQ_WFMT_W4A16, {.group_size = 128, .scale_dtype = LQ_SCALE_F16}},
    {LQ_WFMT_W4A16, {.group_size = 0, .asym = 1}},
    {LQ_WFMT_W4A16, {.group_size = 8}}, /* not a multiple of 16: the fast path falls back */
    {LQ_WFMT_W3A16, {.group_size = 0}},
    {LQ_WFMT_W3A16, {.group_size = 32}},
    {LQ_WFMT_W3A16, {.group_size = 64, .asym = 1, .scale_dtype = LQ_SCALE_BF16}},
    {LQ_WFMT_W3A16, {.group_size = 128, .scale_dtype = LQ_SCALE_F16}},
    {LQ_WFMT_W3A16, {.group_size = 0, .asym = 1}},
    {LQ_WFMT_W3A16, {.group_size = 8, .asym = 1}}, /* octet groups: the vector loop's smallest */
    {LQ_WFMT_W3A16, {.group_size = 4}}, /* not whole octets: the fast path falls back */
    /* GGUF blocks: no parameters (block of 32 built in; cols not a multiple of 32 refused) */
    {LQ_WFMT_Q8_0, {0}},
    {LQ_WFMT_Q4_0, {0}},
    {LQ_WFMT_Q4_1, {0}},
    {LQ_WFMT_Q5_0, {0}},
    {LQ_WFMT_Q5_1, {0}},
    {LQ_WFMT_IQ4_NL, {0}},
};
#define N_CASES (sizeof k_cases / sizeof k_cases[0])

/* Values: a mix of scales per row, so groups differ; a few rows skewed positive for asym. */
static void fill_weights(float *v, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++) {
        const float amp = 0.01f + 2.0f * (float)(r % 5);
        const float lo = (r % 4 == 3) ? -0.1f * amp : -amp;
        fill(v + r * cols, cols, lo, amp);
    }
}

/* GGUF legacy blocks: 32 weights per block, scale inside */
static int is_legacy_block(lq_wfmt f) { return f >= LQ_WFMT_Q8_0 && f <= LQ_WFMT_IQ4_NL; }

/* the group that column c of row r belongs to: start and length */
static int64_t group_len(const pcase *k, const lq_weight *w) {
    if (k->fmt == LQ_WFMT_FP8_E4M3 && k->p.per_tensor) return w->rows * w->cols;
    if ((k->fmt == LQ_WFMT_W4A16 || k->fmt == LQ_WFMT_W3A16) && w->group_size > 0) return w->group_size;
    if (is_legacy_block(k->fmt)) return LQ_QK; /* GGUF blocks */
    return w->cols;
}

Test(roundtrip, every_format_within_table_bound) {
    for (size_t k = 0; k < N_CASES; k++) {
        const pcase *pc = &k_cases[k];
        const lq_wfmt_traits *tr = lq_wfmt_get(pc->fmt);
        for (size_t ci = 0; ci < N_COLS; ci++) {
            for (size_t ri = 0; ri < N_ROWS; ri++) {
                const int64_t rows = k_rows[ri], cols = k_cols[ci];
                float *src = malloc((size_t)(rows * cols) * sizeof(float));
                float *out = malloc((size_t)(rows * cols) * sizeof(float));
                fill_weights(src, rows, cols);
                qweight q;
                if (!kt_quantize(pc->fmt, src, rows, cols, &pc->p, &q)) {
                    /* only a W4A16 group size that does not divide cols is refused, and a
                     * GGUF block format's partial block */
                    cr_assert(((pc->fmt == LQ_WFMT_W4A16 || pc->fmt == LQ_WFMT_W3A16) && pc->p.group_size > 0 &&
                               cols % pc->p.group_size != 0) ||
                              (is_legacy_block(pc->fmt) && cols % LQ_QK != 0),
                              "%s refused %lld x %lld", tr->name, (long long)rows, (long long)cols);
                    free(src); free(out);
                    continue;
                }
                tr->dequant_ref(&q.w, 0, rows, out);
                const int64_t gl = group_len(pc, &q.w);
                for (int64_t g0 = 0; g0 < rows * cols; g0 += gl) {
                    float amax = 0;
                    for (int64_t i = g0; i < g0 + gl; i++) amax = fmaxf(amax, fabsf(src[i]));
                    for (int64_t i = g0; i < g0 + gl; i++) {
                        const double err = fabs((double)out[i] - (double)src[i]);
                        cr_assert(err <= tr->roundtrip_rtol * amax,
                                  "%s case %zu %lldx%lld: element %lld: %.9g -> %.9g (err %.3g > "
                                  "%.3g * %.3g)", tr->name, k, (long long)rows, (long long)cols,
                                  (long long)i, src[i], out[i], err, tr->roundtrip_rtol, amax);
                    }
                }
                kt_qfree(&q);
                free(src); free(out);
            }
        }
    }
}

/* Clip search never loses to plain min/max under its own weighting (ratio 1 is a candidate and
 * only a strictly lower error replaces it), group by group; and it is deterministic. The integer
 * formats weight each element by w^2 + mean(w^2) of its group without calibration data
 * (quant_common.c clip_weights), FP8 by 1; the test recomputes those errors itself. On
 * heavy-tailed int4 groups of 32 and FP8 rows clipping pays, so there the total drops. */
Test(roundtrip, clip_search) {
    const lq_wfmt fmts[] = {LQ_WFMT_W4A16, LQ_WFMT_W8A16, LQ_WFMT_FP8_E4M3, LQ_WFMT_W8A8};
    const int64_t rows = 6, cols = 128;
    float src[6 * 128], out[2][6 * 128];
    /* heavy-tailed values (u^5): most near 0, a few large, where clipping the range pays */
    for (int64_t i = 0; i < rows * cols; i++) {
        const float u = rng_f(-1.0f, 1.0f);
        src[i] = u * u * u * u * u;
    }
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++) {
        lq_quant_params p0 = {.group_size = 32}, p1 = {.group_size = 32, .clip_search = 1};
        qweight a, b, c;
        cr_assert(kt_quantize(fmts[f], src, rows, cols, &p0, &a));
        cr_assert(kt_quantize(fmts[f], src, rows, cols, &p1, &b));
        cr_assert(kt_quantize(fmts[f], src, rows, cols, &p1, &c));
        cr_assert_eq(memcmp(b.data, c.data, (size_t)rows * b.w.row_bytes), 0, "clip search not deterministic");
        const lq_wfmt_traits *tr = lq_wfmt_get(fmts[f]);
        tr->dequant_ref(&a.w, 0, rows, out[0]);
        tr->dequant_ref(&b.w, 0, rows, out[1]);
        const int64_t gs = fmts[f] == LQ_WFMT_W4A16 ? 32 : cols;
        const int fp8 = fmts[f] == LQ_WFMT_FP8_E4M3;
        double tot[2] = {0, 0};
        for (int64_t g0 = 0; g0 < rows * cols; g0 += gs) {
            double s2 = 0, e[2] = {0, 0};
            for (int64_t i = g0; i < g0 + gs; i++) s2 += (double)src[i] * src[i];
            s2 /= (double)gs;
            for (int k = 0; k < 2; k++)
                for (int64_t i = g0; i < g0 + gs; i++) {
                    const double w = fp8 ? 1.0 : (double)(float)((double)src[i] * src[i] + s2);
                    e[k] += w * pow((double)out[k][i] - src[i], 2);
                }
            cr_assert(e[1] <= e[0] * (1 + 1e-12), "%s group at %lld: clipped error %.6g above plain %.6g",
                      tr->name, (long long)g0, e[1], e[0]);
            tot[0] += e[0];
            tot[1] += e[1];
        }
        if (fmts[f] == LQ_WFMT_W4A16 || fp8)
            cr_assert(tot[1] < tot[0], "%s: clip search error %.6g not below plain %.6g", tr->name,
                      tot[1], tot[0]);
        kt_qfree(&a); kt_qfree(&b); kt_qfree(&c);
    }
}

/* ---- fast vs ref ----------------------------------------------------------------------------- */

/* scale[r] = sum_c |W[r][c] x[c]| with W the exact dequantized weights */
static void abs_sums(const lq_weight *w, const float *x, int64_t r0, int64_t r1, double *scale) {
    float *row = malloc((size_t)w->cols * sizeof(float));
    for (int64_t r = r0; r < r1; r++) {
        lq_wfmt_get(w->fmt)->dequant_ref(w, r, r + 1, row);
        double s = 0;
        for (int64_t c = 0; c < w->cols; c++) s += fabs((double)row[c] * x[c]);
        scale[r - r0] = s;
    }
    free(row);
}

static void check_fast_vs_ref(void) {
    for (size_t k = 0; k < N_CASES; k++) {
        const pcase *pc = &k_cases[k];
        const lq_wfmt_traits *tr = lq_wfmt_get(pc->fmt);
        for (size_t ci = 0; ci < N_COLS; ci++) {
            for (size_t ri = 0; ri < N_ROWS; ri++) {
                const int64_t rows = k_rows[ri], cols = k_cols[ci];
                float *src = malloc((size_t)(rows * cols) * sizeof(float));
                fill_weights(src, rows, cols);
                qweight q;
                if (!kt_quantize(pc->fmt, src, rows, cols, &pc->p, &q)) { free(src); continue; }
                float *x = malloc((size_t)cols * sizeof(float));
                float *yf = malloc((size_t)rows * sizeof(float)), *yr = malloc((size_t)rows * sizeof(float));
                double *scale = malloc((size_t)rows * sizeof(double));
                fill(x, cols, -1.0f, 1.0f);
                for (int pass = 0; pass < 2; pass++) {
                    const int64_t r0 = pass ? rows / 3 : 0, r1 = pass ? rows - rows / 5 : rows;
                    if (r1 <= r0) continue;
                    tr->matvec(&q.w, x, yf, r0, r1);
                    tr->matvec_ref(&q.w, x, yr, r0, r1);
                    abs_sums(&q.w, x, r0, r1, scale);
                    char what[128];
                    snprintf(what, sizeof what, "%s case %zu matvec rows [%lld,%lld) of %lld x %lld",
                             tr->name, k, (long long)r0, (long long)r1, (long long)rows, (long long)cols);
                    EXPECT_CLOSE(what, yf, yr, scale, r1 - r0, tr->tol_atol, tr->tol_rtol);
                }
                /* dequant: every code converts exactly and the scale multiplies once in both */
                float *df = malloc((size_t)(rows * cols) * sizeof(float));
                float *dr = malloc((size_t)(rows * cols) * sizeof(float));
                tr->dequant(&q.w, 0, rows, df);
                tr->dequant_ref(&q.w, 0, rows, dr);
                cr_assert_eq(memcmp(df, dr, (size_t)(rows * cols) * sizeof(float)), 0,
                             "%s case %zu dequant %lld x %lld: fast differs from ref", tr->name, k,
                             (long long)rows, (long long)cols);
                free(df); free(dr); free(x); free(yf); free(yr); free(scale); free(src);
                kt_qfree(&q);
            }
        }
    }
}

/* Every ISA level this CPU runs (AVX2, and AVX-512 where present) against the same _ref; on a
 * CPU without AVX-512 only the AVX2 level runs (as in test_int_act.c). */
Test(fast, matvec_and_dequant_vs_ref) {
    const lq_isa best = lq_cpu_isa();
    for (int isa = best >= LQ_ISA_AVX2 ? LQ_ISA_AVX2 : LQ_ISA_SCALAR; isa <= (int)best; isa++) {
        cr_assert_eq(lq_kernels_set_isa((lq_isa)isa), (lq_isa)isa);
        check_fast_vs_ref();
    }
    lq_kernels_set_isa(best);
}

/* NaN codes must give NaN in both FP8 paths (the fast path patches them explicitly). */
static void check_fp8_nan_code(void) {
    uint8_t row[16] = {0x38, 0x7F, 0x38, 0x38, 0x38, 0x38, 0x38, 0x38, 0x38, 0x38, 0x38, 0x38, 0x38, 0x38, 0x38, 0xFF};
    float scale = 1.0f, x[16], out[16], y;
    for (int i = 0; i < 16; i++) x[i] = 1.0f;
    lq_weight w = {.fmt = LQ_WFMT_FP8_E4M3, .rows = 1, .cols = 16, .data = row, .row_bytes = 16, .aux = {&scale}};
    const lq_wfmt_traits *tr = lq_wfmt_get(LQ_WFMT_FP8_E4M3);
    tr->dequant(&w, 0, 1, out);
    cr_assert(isnan(out[1]) && isnan(out[15]) && out[0] == 1.0f);
    tr->matvec(&w, x, &y, 0, 1);
    cr_assert(isnan(y));
}

/* A NaN code in one row must not touch the others: the AVX2 matvec notices NaN codes per group of
 * four rows and redoes that group with the ref. Rows 1 (NaN in the 32-wide main loop) and 5 (NaN
 * in the tail, in a group of two leftover rows) are NaN; the rest agree with the ref. */
static void check_fp8_nan_rows_isolated(void) {
    enum { ROWS = 6, COLS = 100 };
    uint8_t data[ROWS * COLS];
    float scale[ROWS], x[COLS], y[ROWS], yr[ROWS];
    for (int i = 0; i < ROWS * COLS; i++) data[i] = (uint8_t)((i * 37) % 0x7f); /* finite codes */
    for (int r = 0; r < ROWS; r++) scale[r] = 0.5f + 0.25f * (float)r;
    for (int c = 0; c < COLS; c++) x[c] = (float)((c % 7) - 3) * 0.125f;
    data[1 * COLS + 40] = 0x7F;
    data[5 * COLS + 98] = 0xFF;
    lq_weight w = {.fmt = LQ_WFMT_FP8_E4M3, .rows = ROWS, .cols = COLS, .data = data,
                   .row_bytes = COLS, .aux = {scale}};
    const lq_wfmt_traits *tr = lq_wfmt_get(LQ_WFMT_FP8_E4M3);
    tr->matvec(&w, x, y, 0, ROWS);
    tr->matvec_ref(&w, x, yr, 0, ROWS);
    for (int r = 0; r < ROWS; r++) {
        if (r == 1 || r == 5) {
            cr_assert(isnan(y[r]) && isnan(yr[r]), "row %d: fast %g ref %g, want NaN", r, y[r], yr[r]);
            continue;
        }
        double abs_sum = 0; /* the table's tolerance, as in matvec_and_dequant_vs_ref */
        for (int c = 0; c < COLS; c++)
            abs_sum += fabs((double)lq_e4m3_to_f32(data[r * COLS + c]) * scale[r] * x[c]);
        cr_assert(fabs((double)y[r] - yr[r]) <= tr->tol_atol + tr->tol_rtol * abs_sum,
                  "row %d: fast %.9g vs ref %.9g", r, y[r], yr[r]);
    }
}

/* Both NaN checks at every ISA level this CPU runs (the AVX-512 twin checks NaN codes per row,
 * the AVX2 one per group of four rows). */
Test(fast, fp8_nan_every_level) {
    const lq_isa best = lq_cpu_isa();
    for (int isa = best >= LQ_ISA_AVX2 ? LQ_ISA_AVX2 : LQ_ISA_SCALAR; isa <= (int)best; isa++) {
        cr_assert_eq(lq_kernels_set_isa((lq_isa)isa), (lq_isa)isa);
        check_fp8_nan_code();
        check_fp8_nan_rows_isolated();
    }
    lq_kernels_set_isa(best);
}

/* ---- lq_matmul ------------------------------------------------------------------------------- */

static void check_matmul(const pcase *pc, int64_t rows, int64_t cols) {
    const int64_t ns[] = {1, 3, 64};
    const int threads[] = {1, 3};
    const lq_wfmt_traits *tr = lq_wfmt_get(pc->fmt);
    float *src = malloc((size_t)(rows * cols) * sizeof(float));
    fill_weights(src, rows, cols);
    qweight q;
    cr_assert(kt_quantize(pc->fmt, src, rows, cols, &pc->p, &q));
    /* f32 activations: lq_matmul_ref's semantics (the integer-activation path, whose products
     * differ by the activations' quantization, is checked in test_int_act.c) */
    lq_matmul_set_act_mode(LQ_ACT_MODE_F32);
    for (size_t a = 0; a < sizeof threads / sizeof threads[0]; a++) {
        lq_pool *pool = lq_pool_create(threads[a]);
        cr_assert_not_null(pool);
        for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++) {
            const int64_t n = ns[b];
            float *X = malloc((size_t)(n * cols) * sizeof(float));
            float *Y = malloc((size_t)(n * rows) * sizeof(float)), *Yr = malloc((size_t)(n * rows) * sizeof(float));
            double *scale = malloc((size_t)(n * rows) * sizeof(double));
            fill(X, n * cols, -1.0f, 1.0f);
            for (int64_t i = 0; i < n * rows; i++) Y[i] = NAN; /* every output must be written */
            lq_matmul(pool, &q.w, X, n, Y);
            lq_matmul_ref(&q.w, X, n, Yr);
            for (int64_t i = 0; i < n; i++) abs_sums(&q.w, X + i * cols, 0, rows, scale + i * rows);
            /* prefill's sgemm on dequantized f32 weights sums the same products (each weight's
             * f32 value differs from the exact (q - z) s by <= 2^-24 relative), so the row
             * tolerance holds; W8A8 runs its own integer tile: bit-exact */
            char what[128];
            snprintf(what, sizeof what, "%s matmul n=%lld %lld x %lld threads=%d", tr->name,
                     (long long)n, (long long)rows, (long long)cols, threads[a]);
            EXPECT_CLOSE(what, Y, Yr, scale, n * rows, tr->tol_atol, tr->tol_rtol);
            free(X); free(Y); free(Yr); free(scale);
        }
        lq_pool_free(pool);
    }
    kt_qfree(&q);
    free(src);
}

Test(matmul, every_format) {
    for (size_t k = 0; k < N_CASES; k++) {
        check_matmul(&k_cases[k], 67, 128);
        check_matmul(&k_cases[k], 257, 768);
    }
}

/* W8A8 prefill quantizes every token's activations exactly as decode does: lq_matmul with n
 * tokens equals n one-token calls bit for bit, on several threads and widths. */
Test(matmul, w8a8_prefill_equals_decode) {
    const int64_t shapes[][2] = {{67, 129}, {300, 1000}, {64, 4099}};
    lq_pool *pool = lq_pool_create(3);
    for (size_t s = 0; s < 3; s++) {
        const int64_t rows = shapes[s][0], cols = shapes[s][1], n = 17;
        float *src = malloc((size_t)(rows * cols) * sizeof(float));
        fill_weights(src, rows, cols);
        qweight q;
        cr_assert(kt_quantize(LQ_WFMT_W8A8, src, rows, cols, &k_p0, &q));
        float *X = malloc((size_t)(n * cols) * sizeof(float));
        float *Y = malloc((size_t)(n * rows) * sizeof(float)), *Yd = malloc((size_t)(n * rows) * sizeof(float));
        fill(X, n * cols, -2.0f, 2.0f);
        for (int64_t c = 0; c < cols; c++) X[2 * cols + c] = 0.0f; /* an all-zero token */
        lq_matmul(pool, &q.w, X, n, Y);
        for (int64_t t = 0; t < n; t++) lq_matmul(pool, &q.w, X + t * cols, 1, Yd + t * rows);
        cr_assert_eq(memcmp(Y, Yd, (size_t)(n * rows) * sizeof(float)), 0,
                     "w8a8 %lld x %lld: prefill differs from decode", (long long)rows, (long long)cols);
        for (int64_t r = 0; r < rows; r++) cr_assert_eq(Y[2 * rows + r], 0.0f);
        free(X); free(Y); free(Yd); free(src);
        kt_qfree(&q);
    }
    lq_pool_free(pool);
}

/* W8A8 hand-worked: weights q = [1 -2 3 127] (scale 0.5), x = [0.5 -1 0.25 127]:
 * max|x| = 127 -> scale_x = 1, codes round(x * 127/127) = [0 (tie to even) -1 0 127],
 * acc = 1*0 + (-2)(-1) + 3*0 + 127*127 = 16131, y = 16131 * 1 * 0.5 = 8065.5 (both paths). The
 * dequantized product would be 0.5 (0.5 + 2 + 0.75 + 16129) = 8066.125: W8A8 differs on purpose. */
Test(matmul, w8a8_hand_worked) {
    int8_t row[4] = {1, -2, 3, 127};
    float scale = 0.5f, x[4] = {0.5f, -1.0f, 0.25f, 127.0f}, y = 0, yr = 0;
    lq_weight w = {.fmt = LQ_WFMT_W8A8, .rows = 1, .cols = 4, .data = row, .row_bytes = 4, .aux = {&scale}};
    const lq_wfmt_traits *tr = lq_wfmt_get(LQ_WFMT_W8A8);
    tr->matvec(&w, x, &y, 0, 1);
    tr->matvec_ref(&w, x, &yr, 0, 1);
    cr_assert_eq(yr, 8065.5f, "ref %.9g", yr);
    cr_assert_eq(y, 8065.5f, "fast %.9g", y);
}

/* W8A8's own tile (prefill and batched decode) at every ISA level this CPU runs, against the
 * scalar ref bit for bit: weights with the extreme codes -128 and 127, activations whose codes hit
 * +-127, row and token counts off the 4 x 4 tile (every remainder of 1..3 rows), column tails off
 * 32 and 64, and rows of 131072 columns (the widest lq_wfmt_sizes allows) against a token of codes
 * -127: -128 x -127 (2^31 - 2^24, whose offset term is 0) and 127 x -127, whose offset sum
 * 255 x -127 x 131072 wraps int32, so the AVX-512 path's correction must wrap back exactly;
 * with 4 tokens, so the 4 x 4 vector epilogue sees them. */
Test(matmul, w8a8_tile_every_level_equals_ref) {
    const int64_t shapes[][2] = {{13, 64}, {7, 577}, {21, 1000}, {8, 200}, {5, 131072}};
    const int64_t ns[] = {1, 2, 3, 4, 5, 8, 16, 17, 33};
    const lq_isa best = lq_cpu_isa();
    lq_kernels_set_isa(LQ_ISA_SCALAR); /* the scalar level runs the spec */
    const lq_matmul_tile_fn ref = lq_wfmt_get(LQ_WFMT_W8A8)->matmul_tile;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t rows = shapes[s][0], cols = shapes[s][1], nmax = cols > 4096 ? 4 : 33;
        int8_t *wq = malloc((size_t)(rows * cols));
        float *scale = malloc((size_t)rows * sizeof(float));
        for (int64_t r = 0; r < rows; r++) {
            scale[r] = 0.001f * (float)(r + 1);
            for (int64_t c = 0; c < cols; c++)
                wq[r * cols + c] = cols > 4096 ? (int8_t)(r == 0 ? -128 : r == 1 ? 127 : (c * 7 + r) % 256 - 128)
                                                : (int8_t)((c * 37 + r * 11) % 256 - 128);
        }
        const lq_weight w = {.fmt = LQ_WFMT_W8A8, .rows = rows, .cols = cols, .data = wq,
                             .row_bytes = (size_t)cols, .aux = {scale}};
        float *X = malloc((size_t)(nmax * cols) * sizeof(float));
        fill(X, nmax * cols, -2.0f, 2.0f);
        for (int64_t t = 0; t < nmax; t++) X[t * cols + (t * 5) % cols] = 3.0f; /* code +127 */
        if (cols > 4096)
            for (int64_t c = 0; c < cols; c++) X[c] = -1.0f; /* token 0: every code -127 */
        float *Y = malloc((size_t)(nmax * rows) * sizeof(float)), *Yr = malloc((size_t)(nmax * rows) * sizeof(float));
        for (int isa = best >= LQ_ISA_AVX2 ? LQ_ISA_AVX2 : LQ_ISA_SCALAR; isa <= (int)best; isa++) {
            cr_assert_eq(lq_kernels_set_isa((lq_isa)isa), (lq_isa)isa);
            const lq_wfmt_traits *tr = lq_wfmt_get(LQ_WFMT_W8A8);
            for (size_t b = 0; b < sizeof ns / sizeof ns[0] && ns[b] <= nmax; b++) {
                const int64_t n = ns[b], r0 = rows > 4 && cols <= 4096 ? 1 : 0;
                for (int64_t i = 0; i < n * rows; i++) Y[i] = Yr[i] = NAN;
                tr->matmul_tile(&w, X, n, Y, r0, rows);
                ref(&w, X, n, Yr, r0, rows);
                for (int64_t t = 0; t < n; t++)
                    cr_assert_eq(memcmp(Y + t * rows + r0, Yr + t * rows + r0, (size_t)(rows - r0) * sizeof(float)), 0,
                                 "isa %d: %lld x %lld, n %lld, token %lld differs from ref", isa, (long long)rows,
                                 (long long)cols, (long long)n, (long long)t);
            }
        }
        if (cols > 4096) { /* the extreme rows: (-128 | 127) * -127 * 131072, times 1/127 and the row scale */
            cr_assert_eq(Yr[0], (float)2130706432 * (1.0f / 127.0f) * 0.001f, "ref %.9g", (double)Yr[0]);
            cr_assert_eq(Yr[1], (float)-2114060288 * (1.0f / 127.0f) * 0.002f, "ref %.9g", (double)Yr[1]);
        }
        lq_kernels_set_isa(best);
        free(wq); free(scale); free(X); free(Y); free(Yr);
    }
    if (best < LQ_ISA_AVX512) cr_log_warn("no AVX-512 VNNI on this CPU: its W8A8 tile was not run");
}
