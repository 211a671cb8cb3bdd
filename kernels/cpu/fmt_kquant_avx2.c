/* fmt_kquant_avx2.c - AVX2/FMA fast paths of the K-quant formats (Q2_K..Q6_K, IQ4_XS).
 *
 * Every format decodes 32 consecutive weights of a block into one 256-bit vector of signed
 * bytes (the integer code of each weight, |code| <= 127: q, q - 32, q - 4 or the IQ4 level;
 * lane 0 = weights 0..15, lane 1 = weights 16..31), then kq_dot32 multiplies it with x:
 * vpshufb moves 4 bytes per lane into the TOP byte of four dwords (zeros below), which
 * cvtdq2ps turns into code * 2^24 exactly, and one FMA per 8 weights adds code * 2^24 * x.
 * x is permuted once per call into the dword order vpshufb produces (kq_permute_x), and the
 * 2^-24 goes into the sub-block scale, which stays exact (d * sc >= 2^-24, so d * sc * 2^-24 is
 * a normal f32). Each sub-block sum is then multiplied by its f32 scale d * sc (the ref's
 * rounding) per lane (sub-blocks of 16 take one scale per lane), and the formats with a min
 * subtract sum_j (dmin * m_j) * sum_{c in j} x_c with the sub-block sums of x, computed once per
 * call. So per 8 weights: one shuffle, one convert, one FMA, plus a few byte ops per 32 to
 * build the codes. Rows are consecutive blocks, one linear stream the hardware prefetcher
 * follows, so rows go one at a time with two accumulators (lo / hi sub-blocks) to halve the
 * loop-carried FMA chain.
 *
 * dequant must equal the ref bit for bit: the codes go through the same f32 products in the same
 * order (d * sc rounded, times the code, minus dmin * m rounded), no FMA (this file is compiled
 * with -ffp-contract=off so a multiply and a subtract stay two roundings), and the formats
 * without a min never subtract (x - 0 would turn the ref's -0 into +0).
 */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "kern_internal.h"
#include "kq_internal.h"

#define KQ_STACK_COLS 8192 /* permuted x and sub-block sums on the stack up to this width */

static inline float kq_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float kq_h2f(lq_f16 h) { return _cvtsh_ss(h); } /* exact, as lq_f16_to_f32 */

/* vpshufb control k: dword i of each lane = byte 4k + i of that lane in the top byte. */
static inline __m256i kq_idx(int k) {
    const unsigned b = 4u * (unsigned)k;
    const int d0 = (int)(0x00808080u | (b << 24)), d1 = (int)(0x00808080u | ((b + 1) << 24));
    const int d2 = (int)(0x00808080u | ((b + 2) << 24)), d3 = (int)(0x00808080u | ((b + 3) << 24));
    return _mm256_setr_epi32(d0, d1, d2, d3, d0, d1, d2, d3);
}

/* xp[32g + 8k + 0..3] = x[32g + 4k + 0..3], xp[32g + 8k + 4..7] = x[32g + 16 + 4k + 0..3]: the
 * columns kq_idx(k) extracts from lanes 0 and 1 of a 32-weight group. */
static void kq_permute_x(const float *x, int64_t cols, float *xp) {
    for (int64_t g = 0; g < cols; g += 32)
        for (int k = 0; k < 4; k++)
            _mm256_storeu_ps(xp + g + 8 * k, _mm256_set_m128(_mm_loadu_ps(x + g + 16 + 4 * k), _mm_loadu_ps(x + g + 4 * k)));
}

/* sums[i] = sum of x over columns [n i, n i + n) (n = 16 or 32), for the min terms. */
static void kq_group_sums(const float *x, int64_t cols, int n, float *sums) {
    for (int64_t g = 0; g < cols / n; g++) {
        __m256 s = _mm256_add_ps(_mm256_loadu_ps(x + g * n), _mm256_loadu_ps(x + g * n + 8));
        if (n == 32) s = _mm256_add_ps(s, _mm256_add_ps(_mm256_loadu_ps(x + g * n + 16), _mm256_loadu_ps(x + g * n + 24)));
        sums[g] = kq_hsum(s);
    }
}

typedef struct kq_consts {
    __m256i i0, i1, i2, i3;
} kq_consts;

static inline kq_consts kq_consts_make(void) {
    return (kq_consts){kq_idx(0), kq_idx(1), kq_idx(2), kq_idx(3)};
}

/* 32 codes (lane 0: weights 0..15, lane 1: 16..31) times permuted x: per lane the products of
 * that lane's 16 weights, scaled by 2^24. */
static inline __m256 kq_dot32(const kq_consts *k, __m256i q, const float *xp) {
    __m256 a = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_shuffle_epi8(q, k->i0)), _mm256_loadu_ps(xp));
    __m256 b = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_shuffle_epi8(q, k->i1)), _mm256_loadu_ps(xp + 8));
    a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_shuffle_epi8(q, k->i2)), _mm256_loadu_ps(xp + 16), a);
    b = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_shuffle_epi8(q, k->i3)), _mm256_loadu_ps(xp + 24), b);
    return _mm256_add_ps(a, b);
}

/* [a a a a b b b b] */
static inline __m256 kq_pair(float a, float b) { return _mm256_setr_m128(_mm_set1_ps(a), _mm_set1_ps(b)); }

#define KQ_2M24 0x1p-24f

/* ---- per-call scratch and the row loop shared by every format ------------------------------- */

typedef struct kq_job {
    const float *xp;   /* permuted x */
    const float *sums; /* x summed per sub-block of 16 or 32 (formats with a min) */
} kq_job;

typedef float (*kq_row_fn)(const kq_consts *k, const void *row, int64_t nb, const kq_job *j);

/* Permutes x (and sums it per group of `group` columns when group > 0), then one row at a time. */
static void kq_matvec(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1, int group,
                      kq_row_fn row_fn) {
    const int64_t cols = w->cols, nb = cols / LQ_QK_K;
    const size_t need = (size_t)cols + (size_t)(cols / 16);
    _Alignas(32) float stack[KQ_STACK_COLS + KQ_STACK_COLS / 16];
    float *buf = need <= sizeof stack / sizeof stack[0] ? stack : malloc(need * sizeof(float));
    if (!buf) { /* no memory: a dot product per row of the dequantized weights, still correct */
        lq_wfmt_get(w->fmt)->matvec_ref(w, x, y, r0, r1);
        return;
    }
    kq_job j = {.xp = buf, .sums = buf + cols};
    kq_permute_x(x, cols, buf);
    if (group > 0) kq_group_sums(x, cols, group, buf + cols);
    const kq_consts k = kq_consts_make();
    for (int64_t r = r0; r < r1; r++)
        y[r - r0] = row_fn(&k, (const char *)w->data + (size_t)r * w->row_bytes, nb, &j);
    if (buf != stack) free(buf);
}

/* 32 codes in column order (int8) -> out, with per-16 scales (s0, s1) and mins (m0, m1; only
 * when has_min): out = s * q (- m), the ref's operations. */
static inline void kq_emit32(__m256i q, __m256 s0, __m256 s1, __m256 m0, __m256 m1, int has_min, float *out) {
    _Alignas(32) int8_t c[32];
    _mm256_store_si256((__m256i *)c, q);
    for (int k = 0; k < 4; k++) {
        const __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(c + 8 * k))));
        __m256 v = _mm256_mul_ps(k < 2 ? s0 : s1, f);
        if (has_min) v = _mm256_sub_ps(v, k < 2 ? m0 : m1);
        _mm256_storeu_ps(out + 8 * k, v);
    }
}

/* ---- Q4_K / Q5_K ---------------------------------------------------------------------------- */

/* The 8 scales and 8 mins of a Q4_K/Q5_K block as bytes 0..7 and 8..15 (the 12-byte packing
 * undone 4 bytes at a time; same values as lq_kq_scale_min). */
static inline __m128i kq_scales_mins(const uint8_t *s) {
    uint32_t u[4];
    memcpy(u, s, 12);
    const uint32_t k1 = 0x3f3f3f3fu, k2 = 0x0f0f0f0fu, k3 = 0x03030303u;
    u[3] = ((u[2] >> 4) & k2) | (((u[1] >> 6) & k3) << 4); /* mins 4..7 */
    const uint32_t m03 = u[1] & k1;                        /* mins 0..3 */
    u[1] = (u[2] & k2) | (((u[0] >> 6) & k3) << 4);        /* scales 4..7 */
    u[2] = m03;
    u[0] &= k1;                                            /* scales 0..3 */
    return _mm_loadu_si128((const __m128i *)u);
}

/* d * sc and dmin * m of the 8 sub-blocks, as the ref rounds them. */
static inline void kq_q45_scales(lq_f16 d, lq_f16 dmin, const uint8_t *s, __m256 *dsc, __m256 *dm) {
    const __m128i b = kq_scales_mins(s);
    *dsc = _mm256_mul_ps(_mm256_set1_ps(kq_h2f(d)), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b)));
    *dm = _mm256_mul_ps(_mm256_set1_ps(kq_h2f(dmin)), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(b, 8))));
}

/* Codes of chunk c (weights 64c..64c+63) of a Q4_K (qh NULL) or Q5_K block. */
static inline void kq_q45_codes(const uint8_t *qs, const uint8_t *qh, int c, __m256i *lo, __m256i *hi) {
    const __m256i m0f = _mm256_set1_epi8(0x0f);
    const __m256i raw = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
    *lo = _mm256_and_si256(raw, m0f);
    *hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m0f);
    if (qh) {
        const __m256i h = _mm256_loadu_si256((const __m256i *)qh), b10 = _mm256_set1_epi8(0x10);
        /* bit 2c (lo) and 2c + 1 (hi) of each byte, moved to bit 4 */
        *lo = _mm256_or_si256(*lo, _mm256_and_si256(_mm256_slli_epi16(_mm256_srli_epi16(h, 2 * c), 4), b10));
        *hi = _mm256_or_si256(*hi, _mm256_and_si256(_mm256_slli_epi16(_mm256_srli_epi16(h, 2 * c + 1), 4), b10));
    }
}

static inline float kq_q45_row(const kq_consts *k, const uint8_t *blk, size_t bbytes, int q5, int64_t nb,
                               const kq_job *j) {
    __m256 t0 = _mm256_setzero_ps(), t1 = t0, tmin = t0;
    const __m256 two24 = _mm256_set1_ps(KQ_2M24);
    for (int64_t i = 0; i < nb; i++, blk += bbytes) {
        const lq_block_q4_K *b4 = (const lq_block_q4_K *)blk; /* d, dmin, scales: same offsets in Q5_K */
        const uint8_t *qh = q5 ? ((const lq_block_q5_K *)blk)->qh : NULL;
        const uint8_t *qs = q5 ? ((const lq_block_q5_K *)blk)->qs : b4->qs;
        __m256 dsc, dm;
        kq_q45_scales(b4->d, b4->dmin, b4->scales, &dsc, &dm);
        tmin = _mm256_fmadd_ps(dm, _mm256_loadu_ps(j->sums + 8 * i), tmin);
        _Alignas(32) float ds[8];
        _mm256_store_ps(ds, _mm256_mul_ps(dsc, two24));
        const float *xp = j->xp + LQ_QK_K * i;
        for (int c = 0; c < 4; c++) {
            __m256i lo, hi;
            kq_q45_codes(qs, qh, c, &lo, &hi);
            t0 = _mm256_fmadd_ps(kq_dot32(k, lo, xp + 64 * c), _mm256_set1_ps(ds[2 * c]), t0);
            t1 = _mm256_fmadd_ps(kq_dot32(k, hi, xp + 64 * c + 32), _mm256_set1_ps(ds[2 * c + 1]), t1);
        }
    }
    return kq_hsum(_mm256_add_ps(t0, t1)) - kq_hsum(tmin);
}

static float kq_q4k_row(const kq_consts *k, const void *row, int64_t nb, const kq_job *j) {
    return kq_q45_row(k, row, sizeof(lq_block_q4_K), 0, nb, j);
}
static float kq_q5k_row(const kq_consts *k, const void *row, int64_t nb, const kq_job *j) {
    return kq_q45_row(k, row, sizeof(lq_block_q5_K), 1, nb, j);
}

void lq_matvec_q4_K_avx2(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    kq_matvec(w, x, y, r0, r1, 32, kq_q4k_row);
}
void lq_matvec_q5_K_avx2(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    kq_matvec(w, x, y, r0, r1, 32, kq_q5k_row);
}

static void kq_q45_dequant(const lq_weight *w, int64_t r0, int64_t r1, float *out, int q5) {
    const int64_t nb = w->cols / LQ_QK_K;
    const size_t bb = q5 ? sizeof(lq_block_q5_K) : sizeof(lq_block_q4_K);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *blk = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        float *o = out + (size_t)(r - r0) * (size_t)w->cols;
        for (int64_t i = 0; i < nb; i++, blk += bb, o += LQ_QK_K) {
            const lq_block_q4_K *b4 = (const lq_block_q4_K *)blk;
            __m256 dsc, dm;
            kq_q45_scales(b4->d, b4->dmin, b4->scales, &dsc, &dm);
            _Alignas(32) float ds[8], ms[8];
            _mm256_store_ps(ds, dsc);
            _mm256_store_ps(ms, dm);
            const uint8_t *qs = q5 ? ((const lq_block_q5_K *)blk)->qs : b4->qs;
            const uint8_t *qh = q5 ? ((const lq_block_q5_K *)blk)->qh : NULL;
            for (int c = 0; c < 4; c++) {
                __m256i lo, hi;
                kq_q45_codes(qs, qh, c, &lo, &hi);
                const __m256 s0 = _mm256_set1_ps(ds[2 * c]), m0 = _mm256_set1_ps(ms[2 * c]);
                const __m256 s1 = _mm256_set1_ps(ds[2 * c + 1]), m1 = _mm256_set1_ps(ms[2 * c + 1]);
                kq_emit32(lo, s0, s0, m0, m0, 1, o + 64 * c);
                kq_emit32(hi, s1, s1, m1, m1, 1, o + 64 * c + 32);
            }
        }
    }
}

void lq_dequant_q4_K_avx2(const lq_weight *w, int64_t r0, int64_t r1, float *out) { kq_q45_dequant(w, r0, r1, out, 0); }
void lq_dequant_q5_K_avx2(const lq_weight *w, int64_t r0, int64_t r1, float *out) { kq_q45_dequant(w, r0, r1, out, 1); }

/* ---- Q6_K ----------------------------------------------------------------------------------- */

/* The four 32-weight code vectors (q - 32) of half h of a Q6_K block. */
static inline void kq_q6_codes(const lq_block_q6_K *b, int h, __m256i q[4]) {
    const __m256i m0f = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30), o32 = _mm256_set1_epi8(32);
    const __m256i l0 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h));
    const __m256i l1 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32));
    const __m256i qh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
    q[0] = _mm256_or_si256(_mm256_and_si256(l0, m0f), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
    q[1] = _mm256_or_si256(_mm256_and_si256(l1, m0f), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m0f), _mm256_and_si256(qh, m30));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m0f), _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
    for (int i = 0; i < 4; i++) q[i] = _mm256_sub_epi8(q[i], o32);
}

/* d * sc of the 16 sub-blocks (the ref's rounding), times f. */
static inline void kq_q6_scales(const lq_block_q6_K *b, float f, float ds[16]) {
    const __m256 d = _mm256_set1_ps(kq_h2f(b->d)), fv = _mm256_set1_ps(f);
    const __m128i s = _mm_loadu_si128((const __m128i *)b->scales);
    _mm256_storeu_ps(ds, _mm256_mul_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(s))), fv));
    _mm256_storeu_ps(ds + 8, _mm256_mul_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(s, 8)))), fv));
}

static float kq_q6k_row(const kq_consts *k, const void *row, int64_t nb, const kq_job *j) {
    const lq_block_q6_K *b = row;
    /* lane pairs [s_2v x4, s_2v+1 x4] of a half's 8 scales: one vpermps each */
    const __m256i p0 = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1), p1 = _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3);
    const __m256i p2 = _mm256_setr_epi32(4, 4, 4, 4, 5, 5, 5, 5), p3 = _mm256_setr_epi32(6, 6, 6, 6, 7, 7, 7, 7);
    __m256 t0 = _mm256_setzero_ps(), t1 = t0;
    for (int64_t i = 0; i < nb; i++, b++) {
        _Alignas(32) float ds[16];
        kq_q6_scales(b, KQ_2M24, ds);
        const float *xp = j->xp + LQ_QK_K * i;
        for (int h = 0; h < 2; h++) {
            __m256i q[4];
            kq_q6_codes(b, h, q);
            const __m256 s = _mm256_load_ps(ds + 8 * h);
            /* vector v covers weights 128h + 32v .. +31: sub-blocks 8h + 2v, 8h + 2v + 1 */
            t0 = _mm256_fmadd_ps(kq_dot32(k, q[0], xp + 128 * h), _mm256_permutevar8x32_ps(s, p0), t0);
            t1 = _mm256_fmadd_ps(kq_dot32(k, q[1], xp + 128 * h + 32), _mm256_permutevar8x32_ps(s, p1), t1);
            t0 = _mm256_fmadd_ps(kq_dot32(k, q[2], xp + 128 * h + 64), _mm256_permutevar8x32_ps(s, p2), t0);
            t1 = _mm256_fmadd_ps(kq_dot32(k, q[3], xp + 128 * h + 96), _mm256_permutevar8x32_ps(s, p3), t1);
        }
    }
    return kq_hsum(_mm256_add_ps(t0, t1));
}

void lq_matvec_q6_K_avx2(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    kq_matvec(w, x, y, r0, r1, 0, kq_q6k_row);
}

void lq_dequant_q6_K_avx2(const lq_weight *w, int64_t r0, int64_t r1, float *out) {
    const int64_t nb = w->cols / LQ_QK_K;
    const __m256 z = _mm256_setzero_ps();
    for (int64_t r = r0; r < r1; r++) {
        const lq_block_q6_K *b = (const lq_block_q6_K *)((const char *)w->data + (size_t)r * w->row_bytes);
        float *o = out + (size_t)(r - r0) * (size_t)w->cols;
        for (int64_t i = 0; i < nb; i++, b++, o += LQ_QK_K) {
            _Alignas(32) float ds[16];
            kq_q6_scales(b, 1.0f, ds);
            for (int h = 0; h < 2; h++) {
                __m256i q[4];
                kq_q6_codes(b, h, q);
                for (int v = 0; v < 4; v++)
                    kq_emit32(q[v], _mm256_set1_ps(ds[8 * h + 2 * v]), _mm256_set1_ps(ds[8 * h + 2 * v + 1]), z, z, 0,
                              o + 128 * h + 32 * v);
            }
        }
    }
}

/* ---- Q2_K / Q3_K ---------------------------------------------------------------------------- */

/* Codes of weights 128h + 32s .. +31 (sub-blocks 8h + 2s, 8h + 2s + 1): the 2-bit field s of
 * qs[32h + l]; Q3_K (hm non-NULL) adds 4 when bit 4h + s of hmask[l] is set, then subtracts 4. */
static inline __m256i kq_q23_codes(const uint8_t *qs, const uint8_t *hm, int h, int s) {
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256i q = _mm256_and_si256(_mm256_srli_epi16(_mm256_loadu_si256((const __m256i *)(qs + 32 * h)), 2 * s), m3);
    if (hm) {
        const __m256i bit = _mm256_set1_epi8((char)(1 << (4 * h + s)));
        const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_loadu_si256((const __m256i *)hm), bit), bit);
        q = _mm256_sub_epi8(q, _mm256_andnot_si256(set, _mm256_set1_epi8(4)));
    }
    return q;
}

/* Per-sub-block scales (and Q2_K mins) of a Q2_K or Q3_K block, as the ref rounds them. */
static inline void kq_q23_scales(const void *blk, int q3, float f, float ds[16], float ms[16]) {
    if (q3) {
        const lq_block_q3_K *b = blk;
        const float d = kq_h2f(b->d);
        for (int j = 0; j < 16; j++) ds[j] = d * (float)lq_q3k_scale(j, b->scales) * f;
        return;
    }
    const lq_block_q2_K *b = blk;
    const float d = kq_h2f(b->d), dmin = kq_h2f(b->dmin);
    for (int j = 0; j < 16; j++) {
        ds[j] = d * (float)(b->scales[j] & 0xF) * f;
        ms[j] = dmin * (float)(b->scales[j] >> 4);
    }
}

static inline float kq_q23_row(const kq_consts *k, const uint8_t *blk, int q3, int64_t nb, const kq_job *j) {
    __m256 t0 = _mm256_setzero_ps(), t1 = t0, tmin = t0;
    const size_t bb = q3 ? sizeof(lq_block_q3_K) : sizeof(lq_block_q2_K);
    for (int64_t i = 0; i < nb; i++, blk += bb) {
        _Alignas(32) float ds[16], ms[16];
        kq_q23_scales(blk, q3, KQ_2M24, ds, ms);
        const uint8_t *qs = q3 ? ((const lq_block_q3_K *)blk)->qs : ((const lq_block_q2_K *)blk)->qs;
        const uint8_t *hm = q3 ? ((const lq_block_q3_K *)blk)->hmask : NULL;
        if (!q3) {
            tmin = _mm256_fmadd_ps(_mm256_load_ps(ms), _mm256_loadu_ps(j->sums + 16 * i), tmin);
            tmin = _mm256_fmadd_ps(_mm256_load_ps(ms + 8), _mm256_loadu_ps(j->sums + 16 * i + 8), tmin);
        }
        const float *xp = j->xp + LQ_QK_K * i;
        for (int h = 0; h < 2; h++) {
            for (int s = 0; s < 4; s += 2) {
                const int a = 8 * h + 2 * s;
                t0 = _mm256_fmadd_ps(kq_dot32(k, kq_q23_codes(qs, hm, h, s), xp + 128 * h + 32 * s), kq_pair(ds[a], ds[a + 1]), t0);
                t1 = _mm256_fmadd_ps(kq_dot32(k, kq_q23_codes(qs, hm, h, s + 1), xp + 128 * h + 32 * s + 32),
                                     kq_pair(ds[a + 2], ds[a + 3]), t1);
            }
        }
    }
    return kq_hsum(_mm256_add_ps(t0, t1)) - kq_hsum(tmin);
}

static float kq_q2k_row(const kq_consts *k, const void *row, int64_t nb, const kq_job *j) { return kq_q23_row(k, row, 0, nb, j); }
static float kq_q3k_row(const kq_consts *k, const void *row, int64_t nb, const kq_job *j) { return kq_q23_row(k, row, 1, nb, j); }

void lq_matvec_q2_K_avx2(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    kq_matvec(w, x, y, r0, r1, 16, kq_q2k_row);
}
void lq_matvec_q3_K_avx2(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    kq_matvec(w, x, y, r0, r1, 0, kq_q3k_row);
}

static void kq_q23_dequant(const lq_weight *w, int64_t r0, int64_t r1, float *out, int q3) {
    const int64_t nb = w->cols / LQ_QK_K;
    const size_t bb = q3 ? sizeof(lq_block_q3_K) : sizeof(lq_block_q2_K);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *blk = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        float *o = out + (size_t)(r - r0) * (size_t)w->cols;
        for (int64_t i = 0; i < nb; i++, blk += bb, o += LQ_QK_K) {
            _Alignas(32) float ds[16], ms[16] = {0};
            kq_q23_scales(blk, q3, 1.0f, ds, ms);
            const uint8_t *qs = q3 ? ((const lq_block_q3_K *)blk)->qs : ((const lq_block_q2_K *)blk)->qs;
            const uint8_t *hm = q3 ? ((const lq_block_q3_K *)blk)->hmask : NULL;
            for (int h = 0; h < 2; h++)
                for (int s = 0; s < 4; s++) {
                    const int a = 8 * h + 2 * s;
                    kq_emit32(kq_q23_codes(qs, hm, h, s), _mm256_set1_ps(ds[a]), _mm256_set1_ps(ds[a + 1]),
                              _mm256_set1_ps(ms[a]), _mm256_set1_ps(ms[a + 1]), !q3, o + 128 * h + 32 * s);
                }
        }
    }
}

void lq_dequant_q2_K_avx2(const lq_weight *w, int64_t r0, int64_t r1, float *out) { kq_q23_dequant(w, r0, r1, out, 0); }
void lq_dequant_q3_K_avx2(const lq_weight *w, int64_t r0, int64_t r1, float *out) { kq_q23_dequant(w, r0, r1, out, 1); }

/* ---- IQ4_XS --------------------------------------------------------------------------------- */

/* The table levels of sub-block j's 32 weights: low nibbles are weights 0..15 (lane 0), high
 * nibbles 16..31 (lane 1), each looked up with vpshufb. */
static inline __m256i kq_iq4_codes(const lq_block_iq4_xs *b, int j, __m256i table) {
    const __m128i raw = _mm_loadu_si128((const __m128i *)(b->qs + 16 * j)), m = _mm_set1_epi8(0x0f);
    const __m256i idx = _mm256_setr_m128i(_mm_and_si128(raw, m), _mm_and_si128(_mm_srli_epi16(raw, 4), m));
    return _mm256_shuffle_epi8(table, idx);
}

static inline __m256i kq_iq4_table(void) {
    const __m128i t = _mm_loadu_si128((const __m128i *)lq_kq_iq4nl_values);
    return _mm256_setr_m128i(t, t);
}

static float kq_iq4xs_row(const kq_consts *k, const void *row, int64_t nb, const kq_job *j) {
    const lq_block_iq4_xs *b = row;
    const __m256i table = kq_iq4_table();
    __m256 t0 = _mm256_setzero_ps(), t1 = t0;
    for (int64_t i = 0; i < nb; i++, b++) {
        const float d = kq_h2f(b->d);
        const float *xp = j->xp + LQ_QK_K * i;
        for (int s = 0; s < 8; s += 2) {
            const float d0 = d * (float)lq_iq4xs_scale(s, b) * KQ_2M24, d1 = d * (float)lq_iq4xs_scale(s + 1, b) * KQ_2M24;
            t0 = _mm256_fmadd_ps(kq_dot32(k, kq_iq4_codes(b, s, table), xp + 32 * s), _mm256_set1_ps(d0), t0);
            t1 = _mm256_fmadd_ps(kq_dot32(k, kq_iq4_codes(b, s + 1, table), xp + 32 * s + 32), _mm256_set1_ps(d1), t1);
        }
    }
    return kq_hsum(_mm256_add_ps(t0, t1));
}

void lq_matvec_iq4_xs_avx2(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    kq_matvec(w, x, y, r0, r1, 0, kq_iq4xs_row);
}

void lq_dequant_iq4_xs_avx2(const lq_weight *w, int64_t r0, int64_t r1, float *out) {
    const int64_t nb = w->cols / LQ_QK_K;
    const __m256i table = kq_iq4_table();
    const __m256 z = _mm256_setzero_ps();
    for (int64_t r = r0; r < r1; r++) {
        const lq_block_iq4_xs *b = (const lq_block_iq4_xs *)((const char *)w->data + (size_t)r * w->row_bytes);
        float *o = out + (size_t)(r - r0) * (size_t)w->cols;
        for (int64_t i = 0; i < nb; i++, b++, o += LQ_QK_K)
            for (int s = 0; s < 8; s++) {
                const __m256 dl = _mm256_set1_ps(kq_h2f(b->d) * (float)lq_iq4xs_scale(s, b));
                kq_emit32(kq_iq4_codes(b, s, table), dl, dl, z, z, 0, o + 32 * s);
            }
    }
}
