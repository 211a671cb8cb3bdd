/* ct_layout.c - compressed-tensors scheme names and the dense int32 bit packing (lq_ptq.h).
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

/* ---- schemes ----------------------------------------------------------------------------------- */

/* One row per scheme: its name, the engine's format, the compressed-tensors storage, the weights'
 * num_bits and whether it is grouped (group / channel strategy, symmetric or not). */
static const struct {
    const char *name;
    lq_wfmt fmt;
    const char *ct_format;
    int bits;
    bool grouped;
} g_schemes[LQ_PTQ_SCHEME_COUNT] = {
    [LQ_PTQ_NONE] = {"none", LQ_WFMT_COUNT, "dense", 0, false},
    [LQ_PTQ_W8A16] = {"W8A16", LQ_WFMT_W8A16, "pack-quantized", 8, false},
    [LQ_PTQ_W4A16] = {"W4A16", LQ_WFMT_W4A16, "pack-quantized", 4, true},
    /* Weight-only FP8: compressed-tensors' FloatQuantizationCompressor is the naive compressor
     * (weight stored as float8_e4m3fn, weight_scale beside it), registered as float-quantized. */
    [LQ_PTQ_FP8] = {"FP8", LQ_WFMT_FP8_E4M3, "float-quantized", 8, false},
    [LQ_PTQ_W8A8] = {"W8A8", LQ_WFMT_W8A8, "int-quantized", 8, false},
    /* compressed-tensors' W3A16 preset (_int_wnam(3): int, group 128, symmetric, static); packed
     * densely, 32 codes in 3 words (pack_to_int32 of 0.19). */
    [LQ_PTQ_W3A16] = {"W3A16", LQ_WFMT_W3A16, "pack-quantized", 3, true},
};

const char *lq_ptq_scheme_name(lq_ptq_scheme s) {
    return (s >= 0 && s < LQ_PTQ_SCHEME_COUNT) ? g_schemes[s].name : "?";
}

bool lq_ptq_scheme_parse(const char *s, lq_ptq_scheme *out) {
    if (!s) return false;
    for (int i = 0; i < LQ_PTQ_SCHEME_COUNT; i++)
        if (strcasecmp(s, g_schemes[i].name) == 0) {
            *out = (lq_ptq_scheme)i;
            return true;
        }
    if (strcasecmp(s, "dense") == 0) {
        *out = LQ_PTQ_NONE;
        return true;
    }
    return false;
}

lq_wfmt lq_ptq_scheme_wfmt(lq_ptq_scheme s) {
    return (s >= 0 && s < LQ_PTQ_SCHEME_COUNT) ? g_schemes[s].fmt : LQ_WFMT_COUNT;
}

const char *lq_ptq_scheme_ct_format(lq_ptq_scheme s) {
    return (s >= 0 && s < LQ_PTQ_SCHEME_COUNT) ? g_schemes[s].ct_format : "dense";
}

int lq_ptq_scheme_bits(lq_ptq_scheme s) {
    return (s >= 0 && s < LQ_PTQ_SCHEME_COUNT) ? g_schemes[s].bits : 0;
}

bool lq_ptq_scheme_grouped(lq_ptq_scheme s) {
    return s >= 0 && s < LQ_PTQ_SCHEME_COUNT && g_schemes[s].grouped;
}

bool lq_ptq_scheme_packed(lq_ptq_scheme s) {
    return s > LQ_PTQ_NONE && s < LQ_PTQ_SCHEME_COUNT && strcmp(g_schemes[s].ct_format, "pack-quantized") == 0;
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

bool lq_ct_format_matches(lq_ptq_scheme s, const char *format) {
    if (s <= LQ_PTQ_NONE || s >= LQ_PTQ_SCHEME_COUNT || !format) return false;
    if (strcmp(format, g_schemes[s].ct_format) == 0) return true;
    /* compressed-tensors registers NaiveQuantizationCompressor as "naive-quantized" and its int /
     * float subclasses under their own names: the tensors are the same (one code per byte). */
    return strcmp(format, "naive-quantized") == 0 && (s == LQ_PTQ_FP8 || s == LQ_PTQ_W8A8);
}
