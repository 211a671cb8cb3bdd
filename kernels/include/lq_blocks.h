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

/* ggml's kvalues_iq4nl: the IQ4_NL code -> value grid (times the block scale d). */
#define LQ_IQ4NL_VALUES {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

/* A block's binary16 at byte p (little-endian, any alignment: blocks of 18 or 34 bytes are only
 * 2-aligned, and the kernels read bytes so a view may start at any address). */
LQ_HD float lq_blk_f16(const uint8_t *p) { return lq_f16_to_f32((lq_f16)(p[0] | (p[1] << 8))); }
LQ_HD uint32_t lq_blk_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#endif
