/* kv_rows_avx2.c - the attention loops over f32 / f16 / q8 / fp8 cache rows (lq_kv.h), 8 values
 * at a time: f16 by F16C, q8 sign-extended to int32, fp8 through a 256-entry table of its values
 * (a gather), each row's per-head scale applied once per row. Specs: lq_kv_*_rows_ref. */
#include <immintrin.h>
#include <string.h>

#include "kern_internal.h"

/* E4M3 code -> value, filled on first use (every code's value is exact in f32). */
static float e4m3_lut[256];
static int e4m3_lut_ready;

static const float *fp8_table(void) {
    if (!__atomic_load_n(&e4m3_lut_ready, __ATOMIC_ACQUIRE)) {
        /* racing fillers write the same values */
        for (int c = 0; c < 256; c++) e4m3_lut[c] = lq_e4m3_to_f32((lq_e4m3)c);
        __atomic_store_n(&e4m3_lut_ready, 1, __ATOMIC_RELEASE);
    }
    return e4m3_lut;
}

/* ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)): the lane order of lq_dot_f32_rows (ops_rows_avx2.c), so a
 * row of f16 values dots to the bits of the same values in an f32 row */
static inline float hsum_pairwise(__m256 v) {
    const __m256 t = _mm256_hadd_ps(v, v), u = _mm256_hadd_ps(t, t);
    return _mm_cvtss_f32(_mm_add_ss(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1)));
}

/* 8 values of a row starting at element i, unscaled. */
static inline __m256 load8(lq_kv_type t, const void *row, int64_t i, const float *lut) {
    switch (t) {
    case LQ_KV_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + i)));
    case LQ_KV_Q8: {
        __m128i c = _mm_loadl_epi64((const __m128i *)((const uint8_t *)row + i));
        return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(c));
    }
    case LQ_KV_FP8: {
        __m128i c = _mm_loadl_epi64((const __m128i *)((const uint8_t *)row + i));
        return _mm256_i32gather_ps(lut, _mm256_cvtepu8_epi32(c), 4);
    }
    default: return _mm256_loadu_ps((const float *)row + i);
    }
}

static inline float load1(lq_kv_type t, const void *row, int64_t i, const float *lut) {
    switch (t) {
    case LQ_KV_F16: return lq_f16_to_f32(((const uint16_t *)row)[i]);
    case LQ_KV_Q8: return (float)(int8_t)((const uint8_t *)row)[i];
    case LQ_KV_FP8: return lut[((const uint8_t *)row)[i]];
    default: return ((const float *)row)[i];
    }
}

/* The per-head scale of head h: static, read from the row, or 1 for f32 / f16 rows. */
static inline float head_scale(lq_kv_type t, const void *row, int h, int n_heads, int head_dim, const float *fixed) {
    if (t != LQ_KV_Q8 && t != LQ_KV_FP8) return 1.0f;
    if (fixed) return fixed[h];
    float s;
    memcpy(&s, (const char *)row + lq_kv_scale_off(n_heads, head_dim) + (size_t)h * sizeof(float), sizeof s);
    return s;
}

void lq_kv_dot_rows_avx2(lq_kv_type t, const float *q, const void *rows, size_t row_bytes, int64_t n_rows,
                         int head, int n_heads, int head_dim, const float *fixed, float scale, float *out) {
    const float *lut = t == LQ_KV_FP8 ? fp8_table() : NULL;
    const int64_t base = (int64_t)head * head_dim, n8 = head_dim & ~7;
    for (int64_t r = 0; r < n_rows; r++) {
        const void *row = (const char *)rows + (size_t)r * row_bytes;
        __m256 acc = _mm256_setzero_ps();
        for (int64_t j = 0; j < n8; j += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + j), load8(t, row, base + j, lut), acc);
        if (n8 < head_dim) { /* the tail as a zero-padded vector, as the f32 rows' masked loads */
            float qt[8] = {0}, kt[8] = {0};
            for (int64_t j = n8; j < head_dim; j++) qt[j - n8] = q[j], kt[j - n8] = load1(t, row, base + j, lut);
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(qt), _mm256_loadu_ps(kt), acc);
        }
        out[r] = hsum_pairwise(acc) * head_scale(t, row, head, n_heads, head_dim, fixed) * scale;
    }
}

void lq_kv_axpy_rows_avx2(lq_kv_type t, float *y, const float *w, const void *rows, size_t row_bytes,
                          int64_t n_rows, int head, int n_heads, int head_dim, const float *fixed) {
    const float *lut = t == LQ_KV_FP8 ? fp8_table() : NULL;
    const int64_t base = (int64_t)head * head_dim, n8 = head_dim & ~7;
    for (int64_t r = 0; r < n_rows; r++) {
        const void *row = (const char *)rows + (size_t)r * row_bytes;
        const float a = w[r] * head_scale(t, row, head, n_heads, head_dim, fixed);
        const __m256 va = _mm256_set1_ps(a);
        for (int64_t j = 0; j < n8; j += 8)
            _mm256_storeu_ps(y + j, _mm256_fmadd_ps(va, load8(t, row, base + j, lut), _mm256_loadu_ps(y + j)));
        for (int64_t j = n8; j < head_dim; j++) y[j] += a * load1(t, row, base + j, lut);
    }
}
