/* fmt_w3a16_avx2.c - W3A16 fast paths.
 *
 * Eight 3-bit codes are 24 bits, so the codes of columns 8j .. 8j + 7 are the three whole bytes
 * 3j .. 3j + 2 of the row (lq_blocks.h): one 32-bit load, broadcast to the eight lanes, a
 * per-lane shift by 0, 3, ..., 21 (vpsrlvd) and a mask by 7 give the eight u = q + 4, from which
 * one integer subtraction of 4 + zero leaves q - zero (|.| <= 7), converted exactly to f32 and
 * multiplied into x by one FMA. Per 8 weights: broadcast load, shift, and, sub, convert, FMA.
 * The fourth byte of the load belongs to the next octet (or to the row's padding) and is shifted
 * out by the mask; the one load that could read past the end of a row (the last octet of a row
 * whose code bits end on a word boundary, e.g. cols = 32) takes its three bytes one by one.
 *
 * A group is a whole number of octets when group_size is a multiple of 8 (compressed-tensors'
 * 32, 64, 128), or there is one group per row (any width: the columns after the last whole octet
 * take the scalar decoder). Each group's sum (two FMA chains) is multiplied by its scale once,
 * so the products and roundings are those the F32 bound of format_table.c covers. Other group
 * sizes run the scalar spec.
 *
 * dequant: the same decode, then (q - zero) * scale, one multiply as in the ref: bit-exact.
 */
#include <immintrin.h>
#include <string.h>

#include "kern_internal.h"
#include "lq_blocks.h"

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* The 24 code bits of octet j (bits 0..23 of the result; bits 24..31 are garbage): a 4-byte
 * load while it stays inside the row's row_bytes, else the three bytes. */
static inline uint32_t w3_octet(const uint8_t *row, int64_t j, size_t row_bytes) {
    const size_t b = (size_t)(3 * j);
    if (b + 4 <= row_bytes) {
        uint32_t v;
        memcpy(&v, row + b, 4);
        return v;
    }
    return (uint32_t)row[b] | (uint32_t)row[b + 1] << 8 | (uint32_t)row[b + 2] << 16;
}

/* q - zero for the eight codes of one octet, as int32 lanes. */
static inline __m256i w3_codes(uint32_t bits, __m256i shifts, __m256i mask, __m256i off) {
    const __m256i v = _mm256_srlv_epi32(_mm256_set1_epi32((int)bits), shifts);
    return _mm256_sub_epi32(_mm256_and_si256(v, mask), off);
}

/* Whether the vector loops can walk this weight's groups octet by octet. */
static inline int w3_vector_ok(int64_t gs, int64_t ng) { return ng == 1 || gs % 8 == 0; }

void lq_matvec_w3a16_avx2(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    const int64_t gs = lq_w4_group(w), ng = w->cols / gs;
    if (!w3_vector_ok(gs, ng)) {
        lq_matvec_w3a16_ref(w, x, y, r0, r1);
        return;
    }
    const float *scale = w->aux[0], *zero = w->aux[1];
    const __m256i shifts = _mm256_setr_epi32(0, 3, 6, 9, 12, 15, 18, 21), mask = _mm256_set1_epi32(7);
    const int64_t oct_per_group = gs / 8; /* whole octets of a group (all of it unless ng == 1) */
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        float s = 0.0f;
        for (int64_t g = 0; g < ng; g++) {
            const int zi = zero ? (int)zero[r * ng + g] : 0;
            const __m256i off = _mm256_set1_epi32(4 + zi);
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
            int64_t j = g * oct_per_group;
            const int64_t j1 = j + oct_per_group;
            for (; j + 1 < j1; j += 2) {
                const __m256i q0 = w3_codes(w3_octet(row, j, w->row_bytes), shifts, mask, off);
                const __m256i q1 = w3_codes(w3_octet(row, j + 1, w->row_bytes), shifts, mask, off);
                a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q0), _mm256_loadu_ps(x + 8 * j), a0);
                a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q1), _mm256_loadu_ps(x + 8 * j + 8), a1);
            }
            if (j < j1) {
                const __m256i q0 = w3_codes(w3_octet(row, j, w->row_bytes), shifts, mask, off);
                a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q0), _mm256_loadu_ps(x + 8 * j), a0);
            }
            float gsum = hsum8(_mm256_add_ps(a0, a1));
            /* one group per row of a width that is not a multiple of 8: the last codes */
            for (int64_t c = 8 * j1; c < (g + 1) * gs; c++)
                gsum += (float)(lq_int3_get(row, c) - zi) * x[c];
            s += gsum * scale[r * ng + g];
        }
        y[r - r0] = s;
    }
}

void lq_dequant_w3a16_avx2(const lq_weight *w, int64_t r0, int64_t r1, float *out) {
    const int64_t gs = lq_w4_group(w), ng = w->cols / gs;
    if (!w3_vector_ok(gs, ng)) {
        lq_dequant_w3a16_ref(w, r0, r1, out);
        return;
    }
    const float *scale = w->aux[0], *zero = w->aux[1];
    const __m256i shifts = _mm256_setr_epi32(0, 3, 6, 9, 12, 15, 18, 21), mask = _mm256_set1_epi32(7);
    const int64_t oct_per_group = gs / 8;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        float *o = out + (size_t)(r - r0) * (size_t)w->cols;
        for (int64_t g = 0; g < ng; g++) {
            const float sc = scale[r * ng + g], z = zero ? zero[r * ng + g] : 0.0f;
            /* codes - (4 + zero) in the integer lanes, then one multiply: as the ref's
             * ((float)q - zero) * scale, whose subtraction is exact too */
            const __m256i off = _mm256_set1_epi32(4 + (int)z);
            const __m256 vs = _mm256_set1_ps(sc);
            const int64_t j0 = g * oct_per_group, j1 = j0 + oct_per_group;
            for (int64_t j = j0; j < j1; j++) {
                const __m256i q = w3_codes(w3_octet(row, j, w->row_bytes), shifts, mask, off);
                _mm256_storeu_ps(o + 8 * j, _mm256_mul_ps(_mm256_cvtepi32_ps(q), vs));
            }
            for (int64_t c = 8 * j1; c < (g + 1) * gs; c++) o[c] = ((float)lq_int3_get(row, c) - z) * sc;
        }
    }
}
