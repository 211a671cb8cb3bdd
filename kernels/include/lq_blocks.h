/* lq_blocks.h - packed element and block layouts, shared by the CPU and CUDA kernels.
 *
 * This header is plain C that nvcc also compiles: no libc beyond <stdint.h>, no host-only types.
 * Every packed block gets a _Static_assert on its size, so the C and CUDA views of a checkpoint
 * can never drift apart. The quantized formats store the exact bytes of compressed-tensors'
 * tensors (so a checkpoint runs zero-copy); their layouts, each with a worked example, and the
 * exact OCP FP8 E4M3 conversions are at the end of this file.
 */
#ifndef LQ_BLOCKS_H
#define LQ_BLOCKS_H

#include <stdint.h>

#if defined(__CUDACC__)
#define LQ_HD __host__ __device__ static inline
#else
#define LQ_HD static inline
#endif

/* IEEE binary16 and bfloat16 are stored as their raw 16-bit patterns. */
typedef uint16_t lq_f16;
typedef uint16_t lq_bf16;

/* Exact conversion binary16 -> binary32 (handles subnormals, Inf, NaN). This is the spec the
 * F16C fast path (_cvtph_ps) is tested against. */
LQ_HD float lq_f16_to_f32(lq_f16 h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalize */
            int e = -1;
            do { man <<= 1; e++; } while ((man & 0x400u) == 0);
            man &= 0x3ffu;
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | (man << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    union { uint32_t u; float f; } v;
    v.u = bits;
    return v.f;
}

/* binary32 -> binary16, round to nearest even, overflow to Inf, NaN kept quiet. */
LQ_HD lq_f16 lq_f32_to_f16(float f) {
    union { float f; uint32_t u; } v;
    v.f = f;
    uint32_t x = v.u;
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) /* Inf or NaN */
        return (lq_f16)(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0u));
    if (absx >= 0x477ff000u) /* rounds to >= 65520: overflow */
        return (lq_f16)(sign | 0x7c00u);
    if (absx < 0x38800000u) { /* below the smallest normal half: subnormal or zero */
        if (absx < 0x33000000u) return (lq_f16)sign; /* < 2^-25: rounds to 0 */
        uint32_t e = absx >> 23;
        uint32_t m = (absx & 0x7fffffu) | 0x800000u;
        /* value = m * 2^(e-150); half subnormal unit = 2^-24 -> q = m * 2^(e-126) */
        uint32_t s = 126 - e;              /* right shift count, 14..25 */
        uint32_t q = m >> s;
        uint32_t rem = m & ((1u << s) - 1u);
        uint32_t halfway = 1u << (s - 1);
        if (rem > halfway || (rem == halfway && (q & 1u))) q++;
        return (lq_f16)(sign | q);
    }
    uint32_t r = absx + 0xfffu + ((absx >> 13) & 1u); /* round to nearest even on bit 13 */
    return (lq_f16)(sign | ((r - 0x38000000u) >> 13));
}

/* bfloat16 is the top half of a binary32. */
LQ_HD float lq_bf16_to_f32(lq_bf16 h) {
    union { uint32_t u; float f; } v;
    v.u = (uint32_t)h << 16;
    return v.f;
}

/* binary32 -> bfloat16, round to nearest even, NaN kept quiet. */
LQ_HD lq_bf16 lq_f32_to_bf16(float f) {
    union { float f; uint32_t u; } v;
    v.f = f;
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (lq_bf16)((v.u >> 16) | 0x40u);
    uint32_t r = v.u + 0x7fffu + ((v.u >> 16) & 1u);
    return (lq_bf16)(r >> 16);
}

/* ==== compressed-tensors packed integer rows ==================================================
 *
 * "pack-quantized" (compressed-tensors compressors/pack_quantized/helpers.py, pack_to_int32):
 * a B-bit code q in [-2^(B-1), 2^(B-1)) is offset to unsigned u = q + 2^(B-1), and 32/B codes
 * are packed per int32 word, element i of the row at bits [B*i, B*i + B) of word i / (32/B).
 * Each row is padded to whole int32 words with u = 0 (the padding is applied after the offset,
 * so it decodes as q = -2^(B-1): kernels must never let padding reach a sum). safetensors stores
 * the int32 words little-endian, so at the byte level (host-independent):
 *
 *   4 bits (W4A16): row_bytes = ceil(cols / 8) * 4; byte k holds element 2k in its low nibble and
 *     element 2k+1 in its high nibble, u = q + 8.
 *     Example: the 1x8 row q = [-8 -7 -6 -5 -4 -3 -2 -1] has u = [0 1 2 3 4 5 6 7]:
 *     word = 0x76543210 (u_i << 4i summed), bytes 10 32 54 76. The row q = [-1 0 1 7 -8 0 0 0]
 *     has u = [7 8 9 15 0 8 8 8]: nibbles u7..u0 = 8 8 8 0 F 9 8 7, word 0x8880F987, bytes
 *     87 F9 80 88.
 *   3 bits (W3A16): row_bytes = ceil(3 * cols / 32) * 4. 32 codes fill exactly 3 words, so a
 *     code may straddle two words (bits 30..32 of element 10, 63..65 of element 21); read as one
 *     little-endian bit string, element c is bits [3c, 3c + 3) of the row, u = q + 4. Every 8
 *     codes are 3 whole bytes (24 bits), so columns 8j .. 8j + 7 are bytes 3j .. 3j + 2.
 *     Example: the 1x11 row u = [0 1 2 3 4 5 6 7 7 7 5] (q = u - 4): u_i << 3i over the first
 *     ten is 0x3FFAC688; u_10 = 0b101 starts at bit 30, so its low two bits (01) give word 0 =
 *     0x7FFAC688 and its top bit spills into bit 0 of word 1 (u_10 >> 2 = 1): words 0x7FFAC688,
 *     0x00000001, bytes 88 C6 FA 7F 01 00 00 00 (ceil(33 / 32) = 2 words).
 *   8 bits (W8A16): row_bytes = ceil(cols / 4) * 4; byte k = q_k + 128.
 *     Example: the row [-128 -1 0 127] -> u = [0 127 128 255] -> word 0xFF807F00, bytes 00 7F 80 FF;
 *     a 1x5 row [1 2 3 4 5] -> bytes 81 82 83 84 85 00 00 00 (padded to two words).
 *
 * Asymmetric zero points ("weight_zero_point", int8 in [-8, 7], shape [rows][n_groups]) are packed
 * the same way but along dim 0 (pack_to_int32(zp, 4, packed_dim=0)): the stored tensor is
 * [ceil(rows / 8)][n_groups] int32, word [k][g] holding zp[8k + i][g] + 8 at bits 4i. The binder
 * unpacks them to the f32 aux[1] array the kernels read (as it widens bf16/f16 scales to f32).
 *
 * "int-quantized" (W8A8) stores the int8 "weight" tensor as is: row_bytes = cols, byte = q as
 * two's complement. "float-quantized" (FP8) stores float8_e4m3fn "weight": one byte per element.
 */

/* Row sizes of the packed layouts. */
#define LQ_PACK4_ROW_BYTES(cols) ((((int64_t)(cols) + 7) / 8) * 4)
#define LQ_PACK8_ROW_BYTES(cols) ((((int64_t)(cols) + 3) / 4) * 4)
#define LQ_PACK3_ROW_BYTES(cols) (((3 * (int64_t)(cols) + 31) / 32) * 4)

/* One packed word: 8 int4 or 4 int8 codes. Kept as bytes in the kernels (endian-free reads). */
typedef uint32_t lq_pack_word;
#ifdef __cplusplus /* nvcc compiles .cu files as C++ */
static_assert(sizeof(lq_pack_word) == 4, "pack-quantized words are int32");
#else
_Static_assert(sizeof(lq_pack_word) == 4, "pack-quantized words are int32");
#endif

/* Code c of a pack-quantized int4 row (signed, [-8, 7]). */
LQ_HD int lq_int4_get(const uint8_t *row, int64_t c) {
    return (int)((row[c >> 1] >> ((c & 1) * 4)) & 0xfu) - 8;
}
/* Store code q in [-8, 7] at column c (the other nibble of the byte is kept). */
LQ_HD void lq_int4_set(uint8_t *row, int64_t c, int q) {
    const unsigned sh = (unsigned)(c & 1) * 4u;
    row[c >> 1] = (uint8_t)((row[c >> 1] & ~(0xfu << sh)) | ((unsigned)(q + 8) & 0xfu) << sh);
}
/* Code c of a pack-quantized int3 row (signed, [-4, 3]): bits [3c, 3c + 3) of the row's
 * little-endian bit string, which may straddle a byte (never past the row: the code's last bit
 * is inside it). */
LQ_HD int lq_int3_get(const uint8_t *row, int64_t c) {
    const int64_t bit = 3 * c, b = bit >> 3;
    const unsigned sh = (unsigned)(bit & 7);
    unsigned v = row[b] >> sh;
    if (sh > 5) v |= (unsigned)row[b + 1] << (8u - sh);
    return (int)(v & 7u) - 4;
}
/* Store code q in [-4, 3] at column c (the other bits of the bytes are kept). */
LQ_HD void lq_int3_set(uint8_t *row, int64_t c, int q) {
    const int64_t bit = 3 * c, b = bit >> 3;
    const unsigned sh = (unsigned)(bit & 7), u = (unsigned)(q + 4) & 7u;
    row[b] = (uint8_t)((row[b] & ~(7u << sh)) | (u << sh));
    if (sh > 5) row[b + 1] = (uint8_t)((row[b + 1] & ~(7u >> (8u - sh))) | (u >> (8u - sh)));
}
/* Code c of a pack-quantized int8 row (signed, [-128, 127]). */
LQ_HD int lq_int8p_get(const uint8_t *row, int64_t c) { return (int)row[c] - 128; }
LQ_HD void lq_int8p_set(uint8_t *row, int64_t c, int q) { row[c] = (uint8_t)(q + 128); }

/* ==== OCP FP8 E4M3 ("E4M3FN", torch.float8_e4m3fn) ===========================================
 *
 * s eeee mmm, exponent bias 7, no infinities; only S.1111.111 (0x7F, 0xFF) is NaN, so the largest
 * finite value is S.1111.110 = 1.75 * 2^8 = 448. Normal (e >= 1): (-1)^s 2^(e-7) (1 + m/8);
 * subnormal (e = 0): (-1)^s 2^-6 (m/8) = m * 2^-9. Examples: 0x38 = 1.0, 0x7E = 448, 0x08 = 2^-6
 * (smallest normal), 0x01 = 2^-9 (smallest subnormal), 0xC0 = -2.0, 0x80 = -0.0.
 */
typedef uint8_t lq_e4m3;
#define LQ_E4M3_MAX 448.0f

/* Exact E4M3 -> binary32 (every E4M3 value is a binary32 value). */
LQ_HD float lq_e4m3_to_f32(lq_e4m3 c) {
    const uint32_t sign = (uint32_t)(c & 0x80u) << 24;
    const uint32_t e = (c >> 3) & 0xfu, m = c & 7u;
    union { uint32_t u; float f; } v;
    if (e == 15 && m == 7) {
        v.u = sign | 0x7fc00000u; /* NaN */
    } else if (e == 0) {
        v.f = (float)m * 0.001953125f; /* m * 2^-9, exact */
        v.u |= sign;
    } else {
        v.u = sign | ((e + 120u) << 23) | (m << 20); /* rebias 7 -> 127 */
    }
    return v.f;
}

/* binary32 -> E4M3, round to nearest even, saturating: |x| > 448 (and +-Inf) give +-448, as
 * compressed-tensors clamps to finfo(float8_e4m3fn).max before its cast; NaN gives 0x7F | sign.
 * Integer-only, so the host and the device round identically. */
LQ_HD lq_e4m3 lq_f32_to_e4m3(float f) {
    union { float f; uint32_t u; } v;
    v.f = f;
    const uint32_t sign = (v.u >> 24) & 0x80u;
    const uint32_t a = v.u & 0x7fffffffu;
    if (a > 0x7f800000u) return (lq_e4m3)(sign | 0x7fu); /* NaN */
    if (a >= 0x43e00000u) return (lq_e4m3)(sign | 0x7eu); /* >= 448 (and Inf): saturate */
    if (a < 0x3c800000u) { /* below 2^-6: subnormal grid of 2^-9 (or zero) */
        const uint32_t e = a >> 23;
        if (e < 116u) return (lq_e4m3)sign; /* < 2^-11, below half the smallest subnormal */
        const uint32_t m = (a & 0x7fffffu) | 0x800000u;
        /* value = m * 2^(e-150); in units of 2^-9: m * 2^(e-141), i.e. shift right by 141-e */
        const uint32_t s = 141u - e; /* 21..25 */
        uint32_t q = m >> s;
        const uint32_t rem = m & ((1u << s) - 1u), half = 1u << (s - 1u);
        if (rem > half || (rem == half && (q & 1u))) q++;
        return (lq_e4m3)(sign | q); /* q == 8 is exactly the smallest normal, code 0x08 */
    }
    /* normal: keep 3 mantissa bits, RNE on bit 20; a carry into the exponent is correct */
    const uint32_t r = a + 0x7ffffu + ((a >> 20) & 1u);
    return (lq_e4m3)(sign | ((r >> 20) - (120u << 3)));
}


/* ==== GGUF / ggml "legacy" blocks (ggml-common.h block_q8_0 ... block_iq4_nl) =================
 *
 * A row of cols weights (cols a multiple of 32) is cols / 32 blocks back to back, no padding and
 * no side tensors: a GGUF tensor's bytes run as is. Every block starts with its scale d, an IEEE
 * binary16 stored as raw little-endian bits (lq_f16); Q4_1/Q5_1 follow it with the block minimum
 * m (binary16). The 4-bit formats split a block in halves: byte j (j < 16) holds element j in its
 * low nibble and element j + 16 in its high nibble. Q5 stores the fifth bit of element j at bit j
 * of the little-endian 32-bit word qh. Values (ggml's dequantize_row_*, all in f32 with d and m
 * widened exactly):
 *   Q8_0   (34 B): W = q * d,           q = qs[j] as int8
 *   Q4_0   (18 B): W = (u - 8) * d,     u = nibble
 *   Q4_1   (20 B): W = u * d + m        (a product, then a sum: two f32 roundings)
 *   Q5_0   (22 B): W = (u - 16) * d,    u = nibble | qh bit << 4
 *   Q5_1   (24 B): W = u * d + m
 *   IQ4_NL (18 B): W = kvalues[u] * d,  kvalues = LQ_IQ4NL_VALUES (a non-uniform 4-bit grid)
 * Worked examples (hand-checked against those formulas):
 *   Q8_0 block 00 3C | 01 FF 80 00 ...: d = 0x3C00 = 1.0, W = [1, -1, -128, 0, ...].
 *   Q4_0 block 00 40 | 98 0F ...: d = 0x4000 = 2.0; byte 0 = 0x98: element 0 = (8 - 8) * 2 = 0,
 *     element 16 = (9 - 8) * 2 = 2; byte 1 = 0x0F: element 1 = (15 - 8) * 2 = 14, element 17 =
 *     (0 - 8) * 2 = -16.
 *   Q4_1 block 00 38 | 00 BC | 21 ...: d = 0.5, m = -1.0; byte 0 = 0x21: element 0 = 1 * 0.5 - 1
 *     = -0.5, element 16 = 2 * 0.5 - 1 = 0.
 *   Q5_0 block 00 3C | 01 00 01 00 | 00 ...: d = 1, qh = 0x00010001: element 0 = (0 | 16) - 16 = 0,
 *     element 16 = 16 - 16 = 0, element 1 = 0 - 16 = -16.
 *   IQ4_NL block 00 3C | 80 ...: d = 1; byte 0 = 0x80: element 0 = kvalues[0] = -127, element
 *     16 = kvalues[8] = 1.
 */
#define LQ_QK 32 /* elements per legacy block */

typedef struct lq_block_q8_0 { lq_f16 d; int8_t qs[32]; } lq_block_q8_0;
typedef struct lq_block_q4_0 { lq_f16 d; uint8_t qs[16]; } lq_block_q4_0;
typedef struct lq_block_q4_1 { lq_f16 d, m; uint8_t qs[16]; } lq_block_q4_1;
typedef struct lq_block_q5_0 { lq_f16 d; uint8_t qh[4]; uint8_t qs[16]; } lq_block_q5_0;
typedef struct lq_block_q5_1 { lq_f16 d, m; uint8_t qh[4]; uint8_t qs[16]; } lq_block_q5_1;
typedef struct lq_block_iq4_nl { lq_f16 d; uint8_t qs[16]; } lq_block_iq4_nl;
#ifdef __cplusplus
#define LQ_BLOCK_ASSERT(c, m) static_assert(c, m)
#else
#define LQ_BLOCK_ASSERT(c, m) _Static_assert(c, m)
#endif
LQ_BLOCK_ASSERT(sizeof(lq_block_q8_0) == 34, "block_q8_0 is 34 bytes");
LQ_BLOCK_ASSERT(sizeof(lq_block_q4_0) == 18, "block_q4_0 is 18 bytes");
LQ_BLOCK_ASSERT(sizeof(lq_block_q4_1) == 20, "block_q4_1 is 20 bytes");
LQ_BLOCK_ASSERT(sizeof(lq_block_q5_0) == 22, "block_q5_0 is 22 bytes");
LQ_BLOCK_ASSERT(sizeof(lq_block_q5_1) == 24, "block_q5_1 is 24 bytes");
LQ_BLOCK_ASSERT(sizeof(lq_block_iq4_nl) == 18, "block_iq4_nl is 18 bytes");

/* Activation blocks of the integer-activation path (lq_act_fmt; ggml's block_q8_1 / block_q8_K):
 * a row of activations quantized once per matmul, never stored in a file. Q8_0 activations use
 * lq_block_q8_0. q8_1's s = d * sum(qs) (binary16) lets a weight block's minimum m fold into m * s;
 * q8_K's bsums are the sums of each 16 consecutive codes (K-quant sub-block minimums use them). */
typedef struct lq_block_q8_1 { lq_f16 d, s; int8_t qs[32]; } lq_block_q8_1;
typedef struct lq_block_q8_K { float d; int8_t qs[256]; int16_t bsums[16]; } lq_block_q8_K;
LQ_BLOCK_ASSERT(sizeof(lq_block_q8_1) == 36, "block_q8_1 is 36 bytes");
LQ_BLOCK_ASSERT(sizeof(lq_block_q8_K) == 292, "block_q8_K is 292 bytes");
/* Q16 activations (ours, no ggml counterpart): d = amax / 32767 in f32 and 32 int16 codes. */
typedef struct lq_block_q16 { float d; int16_t qs[32]; } lq_block_q16;
LQ_BLOCK_ASSERT(sizeof(lq_block_q16) == 68, "block_q16 is 68 bytes");

/* ggml's kvalues_iq4nl: the IQ4_NL code -> value grid (times the block scale d). */
#define LQ_IQ4NL_VALUES {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

/* A block's binary16 at byte p (little-endian, any alignment: blocks of 18 or 34 bytes are only
 * 2-aligned, and the kernels read bytes so a view may start at any address). */
LQ_HD float lq_blk_f16(const uint8_t *p) { return lq_f16_to_f32((lq_f16)(p[0] | (p[1] << 8))); }
LQ_HD uint32_t lq_blk_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ==== llama.cpp K-quant super-blocks (ggml-common.h, QK_K = 256) ==============================
 *
 * A GGUF tensor in one of these formats is its rows of consecutive blocks, each block 256 weights
 * of one row (row_bytes = cols / 256 * sizeof block; cols must be a multiple of 256). Every block
 * has one or two f16 super-scales; inside it, sub-blocks of 16 or 32 weights carry small integer
 * scales (and mins) relative to them. Byte order and field order are ggml's, so a block here is
 * the same bytes as in a .gguf file. Values (ggml's dequantize_row_*, with f32 arithmetic in this
 * order):
 *
 *   Q4_K  8 sub-blocks of 32: w = (d * sc[j]) * q - (dmin * m[j]), q in [0, 15].
 *         qs: 4 chunks of 32 bytes; chunk k covers weights 64k..64k+63, byte l holding weight
 *         64k + l in its low nibble and 64k + 32 + l in its high nibble (sub-blocks 2k, 2k+1).
 *   Q5_K  as Q4_K with q in [0, 31]: the low 4 bits as Q4_K's qs, bit 4 of weight 64k + l in bit
 *         2k of qh[l] and of weight 64k + 32 + l in bit 2k + 1.
 *   sc/m of Q4_K/Q5_K are 6-bit, packed in 12 bytes (lq_kq_scale_min): sub-blocks 0-3 in the low
 *         6 bits of bytes 0-3 (scales) and 4-7 (mins); sub-blocks 4-7 keep their low 4 bits in
 *         bytes 8-11 (scale low nibble, min high nibble) and their top 2 bits in the top 2 bits of
 *         bytes 0-3 (scales) and 4-7 (mins).
 *         Worked: scales = {0x41, 02 03 04, 0x05, 06 07 08, 0x9A, ...}: sub-block 0 has sc = 0x41 & 63
 *         = 1, m = 0x05 & 63 = 5; sub-block 4 has sc = (0x9A & 0xF) | (0x41 >> 6) << 4 = 10 + 16 = 26,
 *         m = (0x9A >> 4) | (0x05 >> 6) << 4 = 9.
 *   Q6_K  16 sub-blocks of 16, signed 8-bit scales: w = (d * sc[j]) * (q - 32), q in [0, 63].
 *         Two halves of 128 weights, each with 64 bytes of ql and 32 of qh; in half h, for
 *         l < 32: weight l = ql[l] low | qh[l] bits 0-1, l + 32 = ql[l + 32] low | qh bits 2-3,
 *         l + 64 = ql[l] high | qh bits 4-5, l + 96 = ql[l + 32] high | qh bits 6-7 (the qh pair
 *         is the top 2 of the 6 bits); weight i of the block uses sc[i / 16].
 *   Q3_K  16 sub-blocks of 16, 6-bit scales stored + 32: w = (d * (s[j] - 32)) * (q - 4), q in
 *         [0, 7]. Low 2 bits: qs as Q2_K; bit 2 of weight 32k' + l (k' = 0..7) is bit k' of
 *         hmask[l] (set = +4, i.e. q = low2 + 4; clear = low2). Scales: the low 4 bits of s[j]
 *         are the low nibble of scales[j] (j < 8) or the high nibble of scales[j - 8]; the top 2
 *         bits are bits 2(j / 4)..+1 of scales[8 + j % 4].
 *   Q2_K  16 sub-blocks of 16: w = (d * (sc & 15)) * q - (dmin * (sc >> 4)), q in [0, 3], one
 *         byte sc per sub-block. qs: two halves of 32 bytes; in half h, weight 128h + 32s + l
 *         (s = 0..3) is bits 2s..2s+1 of qs[32h + l].
 *   IQ4_XS 8 sub-blocks of 32: w = (d * (ls - 32)) * kvalues[q], q a 4-bit index into ggml's
 *         fixed non-linear table kvalues_iq4nl (LQ_IQ4NL_VALUES, as IQ4_NL); ls 6-bit: low nibble of scales_l[j / 2] (j even: low,
 *         odd: high), top 2 bits at bits 2j..2j+1 of scales_h. qs: 8 x 16 bytes; sub-block j byte
 *         l holds weight 32j + l (low nibble) and 32j + 16 + l (high nibble).
 */
#define LQ_QK_K 256

typedef struct lq_block_q2_K {
    uint8_t scales[16]; /* low nibble scale, high nibble min, per sub-block of 16 */
    uint8_t qs[64];     /* 2-bit codes */
    lq_f16 d, dmin;     /* super-scales of the scales and of the mins */
} lq_block_q2_K;

typedef struct lq_block_q3_K {
    uint8_t hmask[32];  /* bit 2 of each code */
    uint8_t qs[64];     /* low 2 bits */
    uint8_t scales[12]; /* 16 6-bit scales, + 32 */
    lq_f16 d;
} lq_block_q3_K;

typedef struct lq_block_q4_K {
    lq_f16 d, dmin;
    uint8_t scales[12]; /* 8 6-bit scales and 8 6-bit mins (lq_kq_scale_min) */
    uint8_t qs[128];
} lq_block_q4_K;

typedef struct lq_block_q5_K {
    lq_f16 d, dmin;
    uint8_t scales[12];
    uint8_t qh[32];     /* bit 4 of each code */
    uint8_t qs[128];    /* low 4 bits, as Q4_K */
} lq_block_q5_K;

typedef struct lq_block_q6_K {
    uint8_t ql[128];    /* low 4 bits */
    uint8_t qh[64];     /* top 2 bits */
    int8_t scales[16];  /* signed 8-bit scale per sub-block of 16 */
    lq_f16 d;
} lq_block_q6_K;

typedef struct lq_block_iq4_xs {
    lq_f16 d;
    uint16_t scales_h;  /* top 2 bits of the 8 6-bit scales */
    uint8_t scales_l[4]; /* low 4 bits */
    uint8_t qs[128];    /* 4-bit indices into kvalues_iq4nl */
} lq_block_iq4_xs;

#define LQ_KQ_ASSERT(t, n) LQ_BLOCK_ASSERT(sizeof(t) == (n), #t " size")
LQ_KQ_ASSERT(lq_block_q2_K, 84);  /* 2.625 bits per weight */
LQ_KQ_ASSERT(lq_block_q3_K, 110); /* 3.4375 */
LQ_KQ_ASSERT(lq_block_q4_K, 144); /* 4.5 */
LQ_KQ_ASSERT(lq_block_q5_K, 176); /* 5.5 */
LQ_KQ_ASSERT(lq_block_q6_K, 210); /* 6.5625 */
LQ_KQ_ASSERT(lq_block_iq4_xs, 136); /* 4.25 */
#undef LQ_KQ_ASSERT

/* Scale sc and min m (6 bits each) of sub-block j (0..7) of a Q4_K / Q5_K block from its 12
 * packed bytes s (layout above; ggml's get_scale_min_k4). */
LQ_HD void lq_kq_scale_min(int j, const uint8_t *s, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = (uint8_t)(s[j] & 63);
        *m = (uint8_t)(s[j + 4] & 63);
    } else {
        *sc = (uint8_t)((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
        *m = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

/* Scale j (0..15) of a Q3_K block, already minus 32: [-32, 31]. */
LQ_HD int lq_q3k_scale(int j, const uint8_t *s) {
    const int lo = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
    return (lo | (((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
}

/* Scale j (0..7) of an IQ4_XS block, already minus 32: [-32, 31]. */
LQ_HD int lq_iq4xs_scale(int j, const lq_block_iq4_xs *b) {
    return (((b->scales_l[j / 2] >> (4 * (j % 2))) & 0xF) | (((b->scales_h >> (2 * j)) & 3) << 4)) - 32;
}

#endif
