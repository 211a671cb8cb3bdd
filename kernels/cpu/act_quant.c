/* act_quant.c - the activation quantizers of the integer-activation path (lq_act_fmt), scalar
 * specs, and their table.
 *
 * They are the quantizers a llama.cpp x86 build runs on the activation row of a matmul
 * (ggml-cpu quantize_row_q8_0 / q8_1 / q8_K), the same f32 operations in the same order, so a GGUF
 * model's products here are llama.cpp's: Q8_0 and Q8_1 take amax over the block, d = amax / 127
 * (stored binary16), multiply by id = 127 / amax (not by 1 / d: that rounds differently) and round
 * half to even (_mm256_round_ps); ggml's own scalar reference (quantize_row_q8_0_ref) rounds half
 * away from zero with 1 / d and is not what its AVX2 build runs. Q8_K is ggml's
 * quantize_row_q8_K_ref, which its x86 build calls as is. Q16 is ours (lq_format.h).
 * act_quant_avx2.c has the fast twins;
 * they are bit-identical to these (tests/test_int_act.c).
 */
#include <math.h>
#include <string.h>

#include "kern_internal.h"
#include "lq_blocks.h"

/* ggml's nearest_int: round half to even through the f32 mantissa (|v| <= 4194303). */
static inline int act_nearest_int(float v) {
    float s = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &s, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

static float block_amax(const float *x, int n) {
    float amax = 0.0f;
    for (int j = 0; j < n; j++) {
        const float a = fabsf(x[j]);
        amax = a > amax ? a : amax;
    }
    return amax;
}

/* One block of 32: the codes and d (f32, before binary16 rounding); returns sum of the codes. */
static int q8_block(const float *x, int8_t *qs, float *d_out) {
    const float amax = block_amax(x, LQ_QK);
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (int j = 0; j < LQ_QK; j++) {
        const float v = x[j] * id; /* its own statement: no FMA contraction */
        const int q = (int)nearbyintf(v);
        qs[j] = (int8_t)q;
        sum += q;
    }
    *d_out = d;
    return sum;
}

void lq_act_quantize_q8_0_ref(const float *x, int64_t n, void *out) {
    uint8_t *b = out;
    for (int64_t i = 0; i < n / LQ_QK; i++, b += sizeof(lq_block_q8_0), x += LQ_QK) {
        float d;
        q8_block(x, (int8_t *)(b + 2), &d);
        lq_blk_put_f16(b, d);
    }
}

void lq_act_quantize_q8_1_ref(const float *x, int64_t n, void *out) {
    uint8_t *b = out;
    for (int64_t i = 0; i < n / LQ_QK; i++, b += sizeof(lq_block_q8_1), x += LQ_QK) {
        float d;
        const int sum = q8_block(x, (int8_t *)(b + 4), &d);
        lq_blk_put_f16(b, d);
        lq_blk_put_f16(b + 2, d * (float)sum);
    }
}

void lq_act_quantize_q8_K_ref(const float *x, int64_t n, void *out) {
    lq_block_q8_K *y = out;
    for (int64_t i = 0; i < n / 256; i++, x += 256) {
        float max = 0.0f, amax = 0.0f;
        for (int j = 0; j < 256; j++) {
            const float ax = fabsf(x[j]);
            if (ax > amax) { amax = ax; max = x[j]; }
        }
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < 256; j++) {
            const float v = iscale * x[j];
            const int q = act_nearest_int(v);
            y[i].qs[j] = (int8_t)(q < 127 ? q : 127);
        }
        for (int j = 0; j < 16; j++) {
            int sum = 0;
            for (int k = 0; k < 16; k++) sum += y[i].qs[16 * j + k];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1.0f / iscale;
    }
}

/* Q16 (ours): the Q8_0 rule with 32767 for 127 and d kept in f32: d = amax / 32767, codes
 * x * (32767 / amax) rounded half to even; |x * id| <= 32767 up to an ulp, so no clamp. */
void lq_act_quantize_q16_ref(const float *x, int64_t n, void *out) {
    lq_block_q16 *y = out;
    for (int64_t i = 0; i < n / LQ_QK; i++, x += LQ_QK) {
        const float amax = block_amax(x, LQ_QK);
        const float id = amax != 0.0f ? 32767.0f / amax : 0.0f;
        for (int j = 0; j < LQ_QK; j++) {
            const float v = x[j] * id; /* its own statement: no FMA contraction */
            y[i].qs[j] = (int16_t)nearbyintf(v);
        }
        y[i].d = amax / 32767.0f;
    }
}

static void act_dequant_q16_ref(const void *blocks, int64_t n, float *out) {
    const lq_block_q16 *y = blocks;
    for (int64_t i = 0; i < n / LQ_QK; i++)
        for (int j = 0; j < LQ_QK; j++) *out++ = (float)y[i].qs[j] * y[i].d;
}

static void act_dequant_q8_0_ref(const void *blocks, int64_t n, float *out) {
    const uint8_t *b = blocks;
    for (int64_t i = 0; i < n / LQ_QK; i++, b += sizeof(lq_block_q8_0)) {
        const float d = lq_blk_f16(b);
        for (int j = 0; j < LQ_QK; j++) *out++ = (float)(int8_t)b[2 + j] * d;
    }
}

static void act_dequant_q8_1_ref(const void *blocks, int64_t n, float *out) {
    const uint8_t *b = blocks;
    for (int64_t i = 0; i < n / LQ_QK; i++, b += sizeof(lq_block_q8_1)) {
        const float d = lq_blk_f16(b);
        for (int j = 0; j < LQ_QK; j++) *out++ = (float)(int8_t)b[4 + j] * d;
    }
}

static void act_dequant_q8_K_ref(const void *blocks, int64_t n, float *out) {
    const lq_block_q8_K *y = blocks;
    for (int64_t i = 0; i < n / 256; i++)
        for (int j = 0; j < 256; j++) *out++ = (float)y[i].qs[j] * y[i].d;
}

/* err: half a step of amax / 127, the step itself off by the binary16 rounding of d (2^-11
 * relative; absolute 2^-25 below binary16's normal range, which amax_floor = 127 * 2^-14
 * covers) and a few f32 roundings of x * id; a value's own f32 roundings add err_rel. */
static lq_act_traits g_act[LQ_ACT_COUNT] = {
    [LQ_ACT_Q8_0] = {.name = "q8_0", .block = LQ_QK, .block_bytes = sizeof(lq_block_q8_0),
                     .quantize_ref = lq_act_quantize_q8_0_ref, .dequant_ref = act_dequant_q8_0_ref,
                     .err_amax = 0.5 / 127.0 * (1.0 + 1.0 / 1024), .err_rel = 1.0 / 2048 + 1e-6,
                     .amax_floor = 127.0 / 16384},
    [LQ_ACT_Q8_1] = {.name = "q8_1", .block = LQ_QK, .block_bytes = sizeof(lq_block_q8_1),
                     .quantize_ref = lq_act_quantize_q8_1_ref, .dequant_ref = act_dequant_q8_1_ref,
                     .err_amax = 0.5 / 127.0 * (1.0 + 1.0 / 1024), .err_rel = 1.0 / 2048 + 1e-6,
                     .amax_floor = 127.0 / 16384},
    [LQ_ACT_Q8_K] = {.name = "q8_K", .block = 256, .block_bytes = sizeof(lq_block_q8_K),
                     .quantize_ref = lq_act_quantize_q8_K_ref, .dequant_ref = act_dequant_q8_K_ref,
                     .err_amax = 0.5 / 127.0 * (1.0 + 1e-5), .err_rel = 1e-6, .amax_floor = 0},
    /* f32 d: half a step of amax / 32767 and f32 roundings only (amax_floor: d's subnormals) */
    [LQ_ACT_Q16] = {.name = "q16", .block = LQ_QK, .block_bytes = sizeof(lq_block_q16),
                    .quantize_ref = lq_act_quantize_q16_ref, .dequant_ref = act_dequant_q16_ref,
                    .err_amax = 0.5 / 32767.0 * (1.0 + 1e-5), .err_rel = 1e-6, .amax_floor = 32767.0 * 0x1p-126},
};

/* The fast quantizers, chosen once (format_table.c's lq_kernels_init order: called from there). */
void lq_act_select(int avx2) {
    for (int f = 1; f < LQ_ACT_COUNT; f++) g_act[f].quantize = g_act[f].quantize_ref;
    if (!avx2) return;
    g_act[LQ_ACT_Q8_0].quantize = lq_act_quantize_q8_0_avx2;
    g_act[LQ_ACT_Q8_1].quantize = lq_act_quantize_q8_1_avx2;
    g_act[LQ_ACT_Q8_K].quantize = lq_act_quantize_q8_K_avx2;
    g_act[LQ_ACT_Q16].quantize = lq_act_quantize_q16_avx2;
}

const lq_act_traits *lq_act_get(lq_act_fmt f) {
    if ((int)f <= (int)LQ_ACT_NONE || (int)f >= (int)LQ_ACT_COUNT) return NULL;
    lq_wfmt_get(LQ_WFMT_F32); /* the table's one-time init selects the fast paths */
    return &g_act[f];
}

size_t lq_act_row_bytes(lq_act_fmt f, int64_t n) {
    const lq_act_traits *a = lq_act_get(f);
    if (!a || n <= 0 || n % a->block != 0) return 0;
    return (size_t)(n / a->block) * a->block_bytes;
}
