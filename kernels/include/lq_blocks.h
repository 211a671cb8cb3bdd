/* lq_blocks.h - packed element and block layouts, shared by the CPU and CUDA kernels.
 *
 * This header is plain C that nvcc also compiles: no libc beyond <stdint.h>, no host-only types.
 * Every packed block gets a _Static_assert on its size, so the C and CUDA views of a checkpoint
 * can never drift apart. Quantized formats (INT8 per channel, INT4 per group, FP8 E4M3) add their
 * blocks here when they arrive; the float formats need only the scalar conversions below.
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

#endif
