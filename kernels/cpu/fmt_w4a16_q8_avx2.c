/* fmt_w4a16_q8_avx2.c - W4A16 x Q8_0 activations, AVX2 (spec: fmt_w4a16_q8.c).
 *
 * A row's 16 bytes per 32 columns hold column 2k in the low and 2k + 1 in the high nibble of
 * byte k, so low nibbles then high nibbles are the even columns then the odd ones. Once per call
 * the activation blocks are put in that order (a vpshufb and a qword permute per block, shared by
 * every row of the call), two blocks at a time: [b even | b+1 even] and [b odd | b+1 odd], with
 * d_b and the blocks' code sums in the 8 int32 lanes madd produces (times 8 when symmetric). Per
 * row and block pair: one 256-bit load, a mask and a shift+mask (the nibbles of both blocks),
 * maddubs(u, q) for each half (u in [0, 15] unsigned, |q| <= 127: pairs <= 3810), the two added
 * in int16 (<= 7620), madd to int32 lanes (lanes 0-3 block b, 4-7 block b + 1), minus (8 + z)
 * times the lane sums (exact: the spec's D, lane by lane), converted and accumulated with
 * d_b * scale per half in f32. Four rows share the activation loads. An odd last block runs alone;
 * group sizes that are not a multiple of 32 (and are not one group per row) take the scalar spec.
 */
#include <immintrin.h>
#include <stdlib.h>

#include "kern_internal.h"
#include "lq_blocks.h"

#define W4Q_STACK_BLOCKS 256 /* prepared activations on the stack up to 8192 columns */

typedef struct w4q_act {
    __m256i q;   /* codes: even columns of the block, then odd ones */
    __m256i sum; /* per madd lane: the sum of the 4 codes it multiplies (times 8 if symmetric) */
} w4q_act;

static void w4q_prepare(const uint8_t *xb, int64_t nb, int sym, w4q_act *a, float *d) {
    const __m256i even_odd = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15,
                                              0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *ab = xb + (size_t)b * sizeof(lq_block_q8_0);
        __m256i q = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)(ab + 2)), even_odd);
        q = _mm256_permute4x64_epi64(q, _MM_SHUFFLE(3, 1, 2, 0));
        __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, q), ones16);
        a[b].q = q;
        a[b].sum = sym ? _mm256_slli_epi32(s, 3) : s;
        d[b] = _cvtsh_ss((unsigned short)(ab[0] | ab[1] << 8));
    }
}

static inline __m256i w4q_unpack(const uint8_t *p) {
    const __m128i t = _mm_loadu_si128((const __m128i *)p);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0f));
}

static inline float w4q_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* D of one row and block as 8 int32 lanes: u . q - off * sum (off = 8 + z; symmetric: the
 * prepared sums already carry the 8, off is NULL). */
static inline __m256 w4q_block(const uint8_t *wb, const w4q_act *a, const __m256i *off) {
    __m256i l = _mm256_madd_epi16(_mm256_maddubs_epi16(w4q_unpack(wb), a->q), _mm256_set1_epi16(1));
    l = _mm256_sub_epi32(l, off ? _mm256_mullo_epi32(a->sum, *off) : a->sum);
    return _mm256_cvtepi32_ps(l);
}

/* Two blocks b, b + 1 at once: one 256-bit load of their 32 bytes, low nibbles (the even columns
 * of both) and high nibbles (the odd ones) against the activation codes in the same order; the
 * two maddubs results add in int16 (each pair <= 3810, the sum <= 7620) before one madd, so lanes
 * 0-3 hold block b's D, lanes 4-7 block b + 1's. */
typedef struct w4q_pair {
    __m256i lo, hi; /* codes of [b even | b+1 even], [b odd | b+1 odd] */
    __m256i sum;    /* per madd lane: the sum of the codes it multiplies (times 8 if symmetric) */
    __m256 d;       /* d_b in lanes 0-3, d_{b+1} in lanes 4-7 */
} w4q_pair;

static void w4q_pairs(const w4q_act *a, const float *d, int64_t nb, int sym, w4q_pair *p) {
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (int64_t i = 0; i + 1 < nb; i += 2) {
        w4q_pair *q = &p[i / 2];
        q->lo = _mm256_permute2x128_si256(a[i].q, a[i + 1].q, 0x20);
        q->hi = _mm256_permute2x128_si256(a[i].q, a[i + 1].q, 0x31);
        const __m256i s = _mm256_madd_epi16(
            _mm256_add_epi16(_mm256_maddubs_epi16(ones8, q->lo), _mm256_maddubs_epi16(ones8, q->hi)), ones16);
        q->sum = sym ? _mm256_slli_epi32(s, 3) : s;
        q->d = _mm256_set_m128(_mm_set1_ps(d[i + 1]), _mm_set1_ps(d[i]));
    }
}

/* D of one row and block pair, converted: lanes 0-3 block b, 4-7 block b + 1 (off: 8 + z per
 * lane, NULL when symmetric: the prepared sums carry the 8). */
static inline __m256 w4q_pair_dot(const uint8_t *wb, const w4q_pair *q, const __m256i *off) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i v = _mm256_loadu_si256((const __m256i *)wb);
    const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    const __m256i p16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, q->lo), _mm256_maddubs_epi16(hi, q->hi));
    __m256i l = _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
    l = _mm256_sub_epi32(l, off ? _mm256_mullo_epi32(q->sum, *off) : q->sum);
    return _mm256_cvtepi32_ps(l);
}

/* Rows [r, r + 4) (n of them real; the rest repeat the last). Block pairs first (scale and, when
 * asymmetric, 8 + z per half, from each block's group), then an odd last block alone. */
static void w4q_rows4(const lq_weight *w, const w4q_act *a, const float *d, const w4q_pair *pr,
                      int64_t r, int n, float *y) {
    const int64_t nb = w->cols / LQ_QK, bpg = lq_w4_group(w) / LQ_QK, ng = nb / bpg;
    const float *scale = w->aux[0], *zero = w->aux[1];
    const uint8_t *wr[4];
    const float *sr[4], *zr[4];
    for (int k = 0; k < 4; k++) {
        const int64_t ri = r + (k < n ? k : n - 1);
        wr[k] = (const uint8_t *)w->data + (size_t)ri * w->row_bytes;
        sr[k] = scale + ri * ng;
        zr[k] = zero ? zero + ri * ng : NULL;
    }
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t b = 0; b + 1 < nb; b += 2) {
        const int64_t g0 = b / bpg, g1 = (b + 1) / bpg;
        const w4q_pair *q = &pr[b / 2];
        for (int k = 0; k < 4; k++) {
            const __m256 s = _mm256_mul_ps(q->d, _mm256_set_m128(_mm_set1_ps(sr[k][g1]), _mm_set1_ps(sr[k][g0])));
            __m256i off;
            if (zero)
                off = _mm256_set_m128i(_mm_set1_epi32(8 + (int)zr[k][g1]), _mm_set1_epi32(8 + (int)zr[k][g0]));
            acc[k] = _mm256_fmadd_ps(s, w4q_pair_dot(wr[k] + b * (LQ_QK / 2), q, zero ? &off : NULL), acc[k]);
        }
    }
    if (nb % 2) {
        const int64_t b = nb - 1, g = b / bpg;
        for (int k = 0; k < 4; k++) {
            __m256i off;
            if (zero) off = _mm256_set1_epi32(8 + (int)zr[k][g]);
            const __m256 s = _mm256_set1_ps(d[b] * sr[k][g]);
            acc[k] = _mm256_fmadd_ps(s, w4q_block(wr[k] + b * (LQ_QK / 2), &a[b], zero ? &off : NULL), acc[k]);
        }
    }
    for (int k = 0; k < n; k++) y[k] = w4q_hsum(acc[k]);
}

void lq_matvec_q_w4a16_avx2(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1) {
    const int64_t gs = lq_w4_group(w), nb = w->cols / LQ_QK;
    if (gs % LQ_QK != 0) {
        lq_matvec_q_w4a16_ref(w, xq, y, r0, r1);
        return;
    }
    w4q_act stack_a[W4Q_STACK_BLOCKS];
    w4q_pair stack_p[W4Q_STACK_BLOCKS / 2];
    float stack_d[W4Q_STACK_BLOCKS];
    w4q_act *a = stack_a;
    w4q_pair *p = stack_p;
    float *d = stack_d;
    if (nb > W4Q_STACK_BLOCKS) {
        a = aligned_alloc(32, (size_t)nb * sizeof *a);
        p = aligned_alloc(32, (size_t)(nb / 2 + 1) * sizeof *p);
        d = malloc((size_t)nb * sizeof *d);
        if (!a || !p || !d) { /* no memory: the spec needs none */
            free(a), free(p), free(d);
            lq_matvec_q_w4a16_ref(w, xq, y, r0, r1);
            return;
        }
    }
    const int sym = w->aux[1] == NULL;
    w4q_prepare(xq, nb, sym, a, d);
    w4q_pairs(a, d, nb, sym, p);
    for (int64_t r = r0; r < r1; r += 4)
        w4q_rows4(w, a, d, p, r, r1 - r < 4 ? (int)(r1 - r) : 4, y + (r - r0));
    if (a != stack_a) free(a), free(p), free(d);
}
