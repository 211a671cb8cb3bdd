/* ct_layout.c - compressed-tensors presets, readers of the formats' storage descriptors, and the
 * dense int32 bit packing (lq_ptq.h).
 *
 * Packing follows compressed-tensors 0.19 / 0.20 compressors/pack_quantized/helpers.py: pack_to_int32
 * adds 2^(bits-1) to every signed code, then places element i of a line at global bit i*bits
 * (word i*bits/32, bit offset i*bits%32, spilling its high bits into the next word when it
 * straddles); a line of n codes takes ceil(n*bits/32) words. packed_dim 0 packs along rows
 * (the transpose is packed, then transposed back). Words are stored little-endian.
 */
#include "ct_internal.h"

#include <string.h>
#include <strings.h>

/* ---- presets ----------------------------------------------------------------------------------- */

/* The names users type, in recipes and on the command line: compressed-tensors' preset names
 * (quantization/quant_scheme.py). A preset is a format and its defaults; how the format is stored
 * is its traits row's (lq_ct_storage). */
static const lq_preset g_presets[] = {
    {"W8A16", LQ_WFMT_W8A16, 0, false},
    {"W4A16", LQ_WFMT_W4A16, 128, false},
    {"W4A16_ASYM", LQ_WFMT_W4A16, 128, true},
    /* compressed-tensors' W3A16 preset (_int_wnam(3): int, group 128, symmetric, static) */
    {"W3A16", LQ_WFMT_W3A16, 128, false},
    {"W8A8", LQ_WFMT_W8A8, 0, false},
    {"INT8", LQ_WFMT_W8A8, 0, false},
    /* weight-only FP8: FP8_DYNAMIC's weights (its dynamic activations are not ours to quantize) */
    {"FP8", LQ_WFMT_FP8_E4M3, 0, false},
    {"FP8_DYNAMIC", LQ_WFMT_FP8_E4M3, 0, false},
    {"none", LQ_WFMT_NONE, 0, false},
    {"dense", LQ_WFMT_NONE, 0, false},
};

const lq_preset *lq_preset_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof g_presets / sizeof g_presets[0]; i++)
        if (strcasecmp(name, g_presets[i].name) == 0) return &g_presets[i];
    return NULL;
}

const lq_preset *lq_preset_at(int i) {
    return i >= 0 && (size_t)i < sizeof g_presets / sizeof g_presets[0] ? &g_presets[i] : NULL;
}

const char *lq_preset_name(lq_wfmt f, bool asym) {
    for (size_t i = 0; i < sizeof g_presets / sizeof g_presets[0]; i++)
        if (g_presets[i].fmt == f && g_presets[i].asym == asym) return g_presets[i].name;
    return lq_ptq_scheme_name(f);
}

const lq_ct_storage *lq_ct_storage_of(lq_wfmt f) {
    const lq_wfmt_traits *t = lq_wfmt_get(f);
    return t && t->ct.scheme ? &t->ct : NULL;
}

const char *lq_ptq_scheme_name(lq_wfmt f) {
    if (f == LQ_WFMT_NONE) return "none";
    const lq_ct_storage *ct = lq_ct_storage_of(f);
    const lq_wfmt_traits *t = lq_wfmt_get(f);
    return ct ? ct->scheme : t ? t->name : "?";
}

bool lq_ct_packed(lq_wfmt f) {
    const lq_ct_storage *ct = lq_ct_storage_of(f);
    return ct && ct->packed;
}

bool lq_ct_grouped(lq_wfmt f) {
    const lq_ct_storage *ct = lq_ct_storage_of(f);
    return ct && ct->grouped;
}

int lq_ct_bits(lq_wfmt f) {
    const lq_ct_storage *ct = lq_ct_storage_of(f);
    return ct ? ct->bits : 0;
}

const char *lq_ct_format_name(lq_wfmt f) {
    const lq_ct_storage *ct = lq_ct_storage_of(f);
    return ct ? ct->format : "dense";
}

uint64_t lq_ct_weight_bytes(lq_wfmt f, int32_t group_size, bool asym, int64_t rows, int64_t cols,
                            int scale_bytes) {
    const lq_ct_storage *ct = lq_ct_storage_of(f);
    if (!ct || rows <= 0 || cols <= 0) return 0;
    const uint64_t r = (uint64_t)rows, groups = ct->grouped && group_size > 0 ? (uint64_t)((cols + group_size - 1) / group_size) : 1;
    uint64_t b = r * groups * (uint64_t)scale_bytes;
    if (!ct->packed) return b + r * (uint64_t)cols;
    b += r * (uint64_t)lq_ct_packed_words(cols, ct->bits) * 4 + 16;
    if (asym && ct->grouped) b += (uint64_t)lq_ct_packed_words(rows, ct->bits) * groups * 4;
    return b;
}

/* ---- packing ----------------------------------------------------------------------------------- */

int64_t lq_ct_packed_words(int64_t n, int bits) { return (n * bits + 31) / 32; }

/* Pack one line of n codes read with stride `stride` into words (stride `wstride`). */
static void pack_line(const int8_t *q, int64_t n, int64_t stride, int bits, uint32_t *w,
                      int64_t wstride) {
    int64_t nw = lq_ct_packed_words(n, bits);
    for (int64_t k = 0; k < nw; k++) w[k * wstride] = 0;
    uint32_t mask = (1u << bits) - 1u, off = 1u << (bits - 1);
    for (int64_t i = 0; i < n; i++) {
        uint32_t u = ((uint32_t)(int32_t)q[i * stride] + off) & mask;
        int64_t bit = i * bits, word = bit / 32;
        int sh = (int)(bit % 32);
        w[word * wstride] |= u << sh;
        if (sh + bits > 32) w[(word + 1) * wstride] |= u >> (32 - sh);
    }
}

static void unpack_line(const uint32_t *w, int64_t wstride, int64_t n, int bits, int8_t *q,
                        int64_t stride) {
    uint32_t mask = (1u << bits) - 1u;
    int32_t off = 1 << (bits - 1);
    for (int64_t i = 0; i < n; i++) {
        int64_t bit = i * bits, word = bit / 32;
        int sh = (int)(bit % 32);
        uint32_t u = w[word * wstride] >> sh;
        if (sh + bits > 32) u |= w[(word + 1) * wstride] << (32 - sh);
        q[i * stride] = (int8_t)((int32_t)(u & mask) - off);
    }
}

void lq_ct_pack_int32(const int8_t *q, int64_t rows, int64_t cols, int bits, int packed_dim,
                      int32_t *out) {
    uint32_t *w = (uint32_t *)out;
    if (packed_dim == 1) {
        int64_t nw = lq_ct_packed_words(cols, bits);
        for (int64_t r = 0; r < rows; r++) pack_line(q + r * cols, cols, 1, bits, w + r * nw, 1);
    } else {
        for (int64_t c = 0; c < cols; c++) pack_line(q + c, rows, cols, bits, w + c, cols);
    }
}

void lq_ct_unpack_int32(const int32_t *p, int64_t rows, int64_t cols, int bits, int packed_dim,
                        int8_t *out) {
    const uint32_t *w = (const uint32_t *)p;
    if (packed_dim == 1) {
        int64_t nw = lq_ct_packed_words(cols, bits);
        for (int64_t r = 0; r < rows; r++) unpack_line(w + r * nw, 1, cols, bits, out + r * cols, 1);
    } else {
        for (int64_t c = 0; c < cols; c++) unpack_line(w + c, cols, rows, bits, out + c, cols);
    }
}

bool lq_ct_format_matches(lq_wfmt f, const char *format) {
    const lq_ct_storage *ct = lq_ct_storage_of(f);
    if (!ct || !format) return false;
    if (strcmp(format, ct->format) == 0) return true;
    /* compressed-tensors registers NaiveQuantizationCompressor as "naive-quantized" and its int /
     * float subclasses under their own names: the tensors are the same (one code per byte). */
    return strcmp(format, "naive-quantized") == 0 && !ct->packed;
}
