/* act_quant_avx2.c - the AVX2 twins of act_quant.c's Q8_0 / Q8_1 (and Q16) activation quantizers: the same
 * operations as ggml-cpu's x86 quantize_row_q8_0 / q8_1 (amax of |x|, x * (127 / amax) rounded
 * half to even by _mm256_round_ps), so the codes and binary16 scales equal the scalar spec's bit
 * for bit; Q8_K's twin is ggml's reference quantizer vectorized, equal bit for bit too. */
#include <immintrin.h>
#include <string.h>

#include "kern_internal.h"
#include "lq_blocks.h"

/* round half to even; a macro, not a const int, because -O0 builds (the ASan + UBSan CI run)
 * must still see the intrinsic's immediate as a constant */
#define ACT_RND (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

/* One block of 32 values: codes to qs, returns d (f32) and the codes' sum. */
static inline float q8_block_avx2(const float *x, int8_t *qs, int *sum) {
    __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
    __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_andnot_ps(sign, v0);
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v1));
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v2));
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v3));
    __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const float d = amax / 127.0f;
    const __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
    const __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, id), ACT_RND));
    const __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, id), ACT_RND));
    const __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, id), ACT_RND));
    const __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, id), ACT_RND));
    __m256i s = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
    *sum = _mm_cvtsi128_si32(s4);
    /* int32 -> int16 -> int8 packs work per 128-bit lane: the permute restores the order */
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    _mm256_storeu_si256((__m256i *)qs, _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    return d;
}

void lq_act_quantize_q8_0_avx2(const float *x, int64_t n, void *out) {
    uint8_t *b = out;
    for (int64_t i = 0; i < n / LQ_QK; i++, b += sizeof(lq_block_q8_0), x += LQ_QK) {
        int sum;
        lq_blk_put_f16(b, q8_block_avx2(x, (int8_t *)(b + 2), &sum));
    }
}

void lq_act_quantize_q8_1_avx2(const float *x, int64_t n, void *out) {
    uint8_t *b = out;
    for (int64_t i = 0; i < n / LQ_QK; i++, b += sizeof(lq_block_q8_1), x += LQ_QK) {
        int sum;
        const float d = q8_block_avx2(x, (int8_t *)(b + 4), &sum);
        lq_blk_put_f16(b, d);
        lq_blk_put_f16(b + 2, d * (float)sum);
    }
}

/* Q8_K (ggml's quantize_row_q8_K_ref, which llama.cpp's x86 build runs as is): the signed value of
 * largest magnitude (the first one, as the ref's strict > keeps it), iscale = -127 / max, codes
 * x * iscale rounded half to even (cvtps under the default rounding mode = ggml's nearest_int),
 * min(127, q), d = 1 / iscale, bsums of 16 codes. */
void lq_act_quantize_q8_K_avx2(const float *x, int64_t n, void *out) {
    lq_block_q8_K *y = out;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7), c127 = _mm256_set1_epi32(127);
    for (int64_t i = 0; i < n / 256; i++, x += 256) {
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < 256; j += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)));
        __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        float max = 0.0f;
        const __m256 va = _mm256_set1_ps(amax);
        for (int j = 0; j < 256; j += 8) {
            const int mask = _mm256_movemask_ps(
                _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)), va, _CMP_EQ_OQ));
            if (mask) {
                max = x[j + __builtin_ctz((unsigned)mask)];
                break;
            }
        }
        const float iscale = -127.0f / max;
        const __m256 vs = _mm256_set1_ps(iscale);
        for (int j = 0; j < 256; j += 32) {
            __m256i q[4];
            for (int k = 0; k < 4; k++)
                q[k] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(vs, _mm256_loadu_ps(x + j + 8 * k))), c127);
            /* two bsums of 16: lanes of q[0] + q[1] and of q[2] + q[3] */
            const __m256i s01 = _mm256_add_epi32(q[0], q[1]), s23 = _mm256_add_epi32(q[2], q[3]);
            __m256i h = _mm256_hadd_epi32(s01, s23); /* per 128-bit lane: s01 pairs, s23 pairs */
            h = _mm256_hadd_epi32(h, h);
            const __m128i t = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
            y[i].bsums[j / 16] = (int16_t)_mm_cvtsi128_si32(t);
            y[i].bsums[j / 16 + 1] = (int16_t)_mm_extract_epi32(t, 1);
            const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
            _mm256_storeu_si256((__m256i *)(y[i].qs + j), _mm256_permutevar8x32_epi32(p, perm));
        }
        y[i].d = 1.0f / iscale;
    }
}

/* Q16: q8_block_avx2's steps with 32767 for 127, d in f32; the int32 -> int16 pack works per
 * 128-bit lane, so the permute restores the order (|code| <= 32767: the saturation never acts). */
void lq_act_quantize_q16_avx2(const float *x, int64_t n, void *out) {
    lq_block_q16 *y = out;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < n / LQ_QK; i++, x += LQ_QK) {
        __m256 v[4], m = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[k]));
        }
        __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const __m256 id = _mm256_set1_ps(amax != 0.0f ? 32767.0f / amax : 0.0f);
        __m256i q[4];
        for (int k = 0; k < 4; k++) q[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], id), ACT_RND));
        const __m256i p01 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[0], q[1]), 0xd8);
        const __m256i p23 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[2], q[3]), 0xd8);
        _mm256_storeu_si256((__m256i *)y[i].qs, p01);
        _mm256_storeu_si256((__m256i *)(y[i].qs + 16), p23);
        y[i].d = amax / 32767.0f;
    }
}
