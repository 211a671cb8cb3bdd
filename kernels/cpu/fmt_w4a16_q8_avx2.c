/* fmt_w4a16_q8_avx2.c - W4A16 x Q8_0 activations, AVX2 (spec: fmt_w4a16_q8.c).
 *
 * A row's 16 bytes per 32 columns hold column 2k in the low and 2k + 1 in the high nibble of
 * byte k, so low nibbles then high nibbles (one shift and one mask: ggml's bytes_from_nibbles_32)
 * are the even columns then the odd ones. Once per call the activation blocks are put in that
 * order (a vpshufb and a qword permute per block, shared by every row of the call) together with
 * d_b and the block's code sums in the 8 int32 lanes madd produces, times 8 when symmetric. Per
 * row and block: maddubs(u, q) (u in [0, 15] unsigned, |q| <= 127: pairs <= 3810, no
 * saturation), madd to int32 lanes, minus (8 + z) times the lane sums (exact: this is D of the
 * spec, lane by lane), converted and accumulated with d_b in f32 (the d_b broadcast is shared
 * by four rows); a group's sum is multiplied by its scale once. Group sizes that are not a
 * multiple of 32 (and are not one group per row) take the scalar spec.
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

/* Rows [r, r + 4) (n of them real; the rest repeat the last) over all groups. */
static void w4q_rows4(const lq_weight *w, const w4q_act *a, const float *d, int64_t r, int n,
                      float *y) {
    const int64_t gs = lq_w4_group(w), ng = w->cols / gs, bpg = gs / LQ_QK;
    const float *scale = w->aux[0], *zero = w->aux[1];
    const uint8_t *wr[4];
    int64_t ri[4];
    for (int k = 0; k < 4; k++) {
        ri[k] = r + (k < n ? k : n - 1);
        wr[k] = (const uint8_t *)w->data + (size_t)ri[k] * w->row_bytes;
    }
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t g = 0; g < ng; g++) {
        __m256i off[4];
        if (zero)
            for (int k = 0; k < 4; k++) off[k] = _mm256_set1_epi32(8 + (int)zero[ri[k] * ng + g]);
        __m256 ga[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int64_t b = g * bpg; b < (g + 1) * bpg; b++) {
            const __m256 db = _mm256_set1_ps(d[b]);
            const size_t o = (size_t)b * (LQ_QK / 2);
            for (int k = 0; k < 4; k++)
                ga[k] = _mm256_fmadd_ps(db, w4q_block(wr[k] + o, &a[b], zero ? &off[k] : NULL), ga[k]);
        }
        for (int k = 0; k < 4; k++)
            acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(scale[ri[k] * ng + g]), ga[k], acc[k]);
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
    float stack_d[W4Q_STACK_BLOCKS];
    w4q_act *a = stack_a;
    float *d = stack_d;
    if (nb > W4Q_STACK_BLOCKS) {
        a = aligned_alloc(32, (size_t)nb * sizeof *a);
        d = malloc((size_t)nb * sizeof *d);
        if (!a || !d) { /* no memory: the spec needs none */
            free(a), free(d);
            lq_matvec_q_w4a16_ref(w, xq, y, r0, r1);
            return;
        }
    }
    w4q_prepare(xq, nb, w->aux[1] == NULL, a, d);
    for (int64_t r = r0; r < r1; r += 4)
        w4q_rows4(w, a, d, r, r1 - r < 4 ? (int)(r1 - r) : 4, y + (r - r0));
    if (a != stack_a) free(a), free(d);
}
