/* sample_rng.c - PCG32, the sampler's portable generator: integer arithmetic only, so a seed
 * gives the same stream on every machine and compiler (no rand(), no libm). */
#include "libquant/lq_sample.h"

#define PCG32_MULT 6364136223846793005ULL

uint32_t lq_rng_u32(lq_rng *r) {
    uint64_t old = r->state;
    r->state = old * PCG32_MULT + r->inc;
    /* XSH-RR: xorshift the high bits down, then rotate by the top 5 bits */
    uint32_t x = (uint32_t)(((old >> 18) ^ old) >> 27);
    uint32_t rot = (uint32_t)(old >> 59);
    return (x >> rot) | (x << ((32u - rot) & 31u));
}

void lq_rng_seed(lq_rng *r, uint64_t seed, uint64_t stream) {
    /* the reference pcg32_srandom_r sequence, step for step */
    r->state = 0;
    r->inc = (stream << 1) | 1u;
    (void)lq_rng_u32(r);
    r->state += seed;
    (void)lq_rng_u32(r);
}

double lq_rng_uniform(lq_rng *r) {
    uint64_t hi = lq_rng_u32(r), lo = lq_rng_u32(r);
    /* 53 bits fill a double's mantissa exactly: every value is k * 2^-53, k < 2^53, so the
     * result is < 1 and identical everywhere (no rounding happens). */
    return (double)(((hi << 32) | lo) >> 11) * (1.0 / 9007199254740992.0);
}
