/* fmt_w4a16_avx2.c - W4A16 fast paths.
 *
 * matvec works on chunks of 64 columns = 32 bytes of a row (one 256-bit load): lane 0 holds
 * columns 0..31 of the chunk, lane 1 columns 32..63, byte j the codes of columns 2j (low nibble)
 * and 2j+1 (high nibble). Per chunk and row:
 *   - byte ops turn the 32 bytes into 32 even and 32 odd signed bytes v = (q - zero) * 2^k,
 *     exactly: asymmetric, and / shift+and isolate u and one subtraction of 8 + zero each gives
 *     q - zero (|.| <= 15, k = 0); symmetric, u ^ 8 is q's 4-bit two's complement, so
 *     (b ^ 0x88) & 0xf0 and ((b ^ 0x88) << 4) & 0xf0 are 16 q (k = 4), no offset needed;
 *   - vpshufb moves 4 of those bytes per lane into the TOP byte of a dword (zeros below): the
 *     int32 v * 2^24, sign included, which cvtdq2ps converts exactly;
 *   - one FMA per 8 codes with x.
 * About 7.5 vector ops per 16 weights (the previous kernel: 12, widening, converting and
 * subtracting every code in f32). The dword order vpshufb produces is not column order, so x is
 * permuted ONCE per call to match (xp: 3 ops per 8 floats) and multiplied there by 2^-(24 + k),
 * so each product is exactly (q - zero) * x as in the ref (exact unless |x| < 2^-98, where the
 * scaled x loses low bits: an absolute error < 2^-120 per product, far below the table's atol).
 * Four rows share every x load; each group's sum (two chains per row: even and odd codes) is
 * multiplied by its scale once. A lane is 32 columns, so group sizes that are multiples of 32
 * (compressed-tensors: 32, 64, 128) work by giving each lane its own zero point and scale: a
 * chunk may straddle two groups of 32. The runs of chunks that share groups are listed once per
 * call (w4_segments), so the row loop does no divisions.
 *
 * Zero points: the binder unpacks them from int4 (lq_format.h: integers in [-8, 7]); the byte
 * subtraction relies on that. Padding: a row's last chunk is copied into a zeroed 32-byte
 * buffer; its padding codes decode to finite values and meet x = 0 (xp is zero padded).
 * Other group sizes (not a multiple of 32, not one group per row) dequantize a row at a time
 * and take an f32 dot product.
 */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "kern_internal.h"
#include "lq_blocks.h"

#define W4_CHUNK 64           /* columns per step */
#define W4_STACK_COLS 8192    /* permuted x on the stack for rows up to this wide, else malloc */

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* vpshufb control: dword i of each lane takes byte 4k + i of that lane in its top byte, zeros
 * (index 0x80) below. */
static inline __m256i w4_idx(int k) {
    const int b = 4 * k;
    const int d0 = (int)(0x00808080u | ((unsigned)b << 24)), d1 = (int)(0x00808080u | ((unsigned)(b + 1) << 24));
    const int d2 = (int)(0x00808080u | ((unsigned)(b + 2) << 24)), d3 = (int)(0x00808080u | ((unsigned)(b + 3) << 24));
    return _mm256_setr_epi32(d0, d1, d2, d3, d0, d1, d2, d3);
}

/* xp = x permuted into the order the chunk loop consumes, times f, zero padded to whole
 * chunks. For chunk c and k = 0..3: xp[64c + 16k + 0..7] are the x of the even codes that
 * w4_idx(k) extracts (columns 64c + 8k + {0,2,4,6} in lane 0, 64c + 32 + 8k + {0,2,4,6} in
 * lane 1), xp[64c + 16k + 8..15] those of the odd codes (the same columns + 1). xpad is
 * scratch for the zero padded copy of x (nch * 64 floats, as xp). */
static void w4_permute_x(const float *x, int64_t cols, int64_t nch, float f, float *xpad, float *xp) {
    memcpy(xpad, x, (size_t)cols * sizeof(float));
    memset(xpad + cols, 0, (size_t)(nch * W4_CHUNK - cols) * sizeof(float));
    const __m256 k2m24 = _mm256_set1_ps(f);
    for (int64_t c = 0; c < nch; c++) {
        const float *src = xpad + c * W4_CHUNK;
        float *dst = xp + c * W4_CHUNK;
        for (int k = 0; k < 4; k++) {
            const __m256 a = _mm256_loadu_ps(src + 8 * k), b = _mm256_loadu_ps(src + 32 + 8 * k);
            /* per lane [a0 a2 b0 b2 | a4 a6 b4 b6]; the qword permute makes [a0 a2 a4 a6 | b0 b2 b4 b6] */
            const __m256 ev = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
            const __m256 od = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
            const __m256 ev2 = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), _MM_SHUFFLE(3, 1, 2, 0)));
            const __m256 od2 = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(od), _MM_SHUFFLE(3, 1, 2, 0)));
            _mm256_storeu_ps(dst + 16 * k, _mm256_mul_ps(ev2, k2m24));
            _mm256_storeu_ps(dst + 16 * k + 8, _mm256_mul_ps(od2, k2m24));
        }
    }
}

/* A run of chunks [c0, c1) whose lane 0 lies in group g0 and lane 1 in group g1 throughout:
 * accumulated, then scaled once. */
typedef struct w4_seg {
    int64_t c0, c1, g0, g1;
} w4_seg;

typedef struct w4_job {
    size_t packed;          /* bytes of codes per row */
    int64_t ng, nfull;      /* groups per row, whole 32-byte chunks */
    const float *xp;        /* permuted x */
    const w4_seg *seg;      /* the row's runs, in order */
    int64_t nseg;
    size_t pf;              /* prefetch distance in bytes: the next 4-row group */
} w4_job;

/* Splits nch chunks into runs (at most nch) for group size gs (a multiple of 32, or cols):
 * done once per call, so the row loop has no divisions. The partial last chunk (c >= nfull) is
 * always a run of its own, since it takes the copying path. */
static int64_t w4_segments(int64_t nch, int64_t nfull, int64_t gs, int64_t ng, w4_seg *seg) {
    int64_t n = 0;
    for (int64_t c = 0; c < nch;) {
        int64_t g0 = 2 * c * 32 / gs, g1 = (2 * c + 1) * 32 / gs;
        g0 = g0 < ng ? g0 : ng - 1; /* the last chunk's second half may lie past the end */
        g1 = g1 < ng ? g1 : ng - 1;
        int64_t e = c + 1;
        if (g0 == g1 && c < nfull) {
            e = (g0 + 1) * gs / W4_CHUNK;
            e = e < c + 1 ? c + 1 : e > nfull ? nfull : e;
        }
        seg[n++] = (w4_seg){c, e, g0, g1};
        c = e;
    }
    return n;
}

/* Per-lane byte offsets 8 + zero (lane 0: group g0, lane 1: group g1) of one row. */
static inline __m256i w4_offsets(const float *z, int64_t g0, int64_t g1) {
    if (g0 == g1) return _mm256_set1_epi8((char)(8 + (int)z[g0]));
    return _mm256_setr_m128i(_mm_set1_epi8((char)(8 + (int)z[g0])), _mm_set1_epi8((char)(8 + (int)z[g1])));
}

static inline __m256 w4_scales(const float *s, int64_t g0, int64_t g1) {
    if (g0 == g1) return _mm256_set1_ps(s[g0]);
    return _mm256_setr_m128(_mm_set1_ps(s[g0]), _mm_set1_ps(s[g1]));
}

/* One row's 64 codes at p into the even/odd accumulators. x (xr) and the offsets (off, 32
 * bytes) are memory operands: with eight accumulators, the constants and the temporaries there
 * are not enough registers for eight x vectors as well, and GCC, given them, spilled the
 * accumulators instead (a store and a reload in every chain, 1.4x slower). */
#define W4_ROW_STEP(p, off, ae, ao)                                                              \
    do {                                                                                        \
        const float *xr_ = xc;                                                                  \
        __asm__ volatile("" : "+r"(xr_)); /* a fresh pointer per row: GCC must not hoist the x loads */  \
        const __m256i b_ = _mm256_loadu_si256((const __m256i *)(p));                            \
        __m256i lo_, hi_;                                                                       \
        if (asym) {                                                                             \
            const __m256i o_ = _mm256_loadu_si256((const __m256i *)(off));                      \
            lo_ = _mm256_sub_epi8(_mm256_and_si256(b_, m0f), o_);                               \
            hi_ = _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(b_, 4), m0f), o_);         \
        } else {                                                                                \
            const __m256i s_ = _mm256_xor_si256(b_, m88);                                       \
            hi_ = _mm256_and_si256(s_, mf0);                                                    \
            lo_ = _mm256_and_si256(_mm256_slli_epi16(s_, 4), mf0);                              \
        }                                                                                       \
        ae = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_shuffle_epi8(lo_, i0)), _mm256_loadu_ps(xr_), ae); \
        ao = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_shuffle_epi8(hi_, i0)), _mm256_loadu_ps(xr_ + 8), ao); \
        ae = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_shuffle_epi8(lo_, i1)), _mm256_loadu_ps(xr_ + 16), ae); \
        ao = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_shuffle_epi8(hi_, i1)), _mm256_loadu_ps(xr_ + 24), ao); \
        ae = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_shuffle_epi8(lo_, i2)), _mm256_loadu_ps(xr_ + 32), ae); \
        ao = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_shuffle_epi8(hi_, i2)), _mm256_loadu_ps(xr_ + 40), ao); \
        ae = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_shuffle_epi8(lo_, i3)), _mm256_loadu_ps(xr_ + 48), ae); \
        ao = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_shuffle_epi8(hi_, i3)), _mm256_loadu_ps(xr_ + 56), ao); \
    } while (0)

/* Four rows (w[i] codes, s[i] scales, z[i] zero points or NULL) -> out[0..3]. Rows may repeat
 * (the caller's leftover rows). Written with named accumulators, not arrays of vectors: GCC
 * keeps arrays of __m256 in memory, which put a store/load on every update and ran 10x slower.
 * always_inline with a constant `asym` gives a symmetric copy that needs no offsets. */
static inline __attribute__((always_inline)) void
w4_quad(const w4_job *j, const uint8_t *const w[4], const float *const s[4], const float *const z[4],
        float out[4], const int asym) {
    const __m256i m0f = _mm256_set1_epi8(0x0f), mf0 = _mm256_set1_epi8((char)0xf0);
    const __m256i m88 = _mm256_set1_epi8((char)0x88);
    const __m256i i0 = w4_idx(0), i1 = w4_idx(1), i2 = w4_idx(2), i3 = w4_idx(3);
    /* offsets 8 + zero per row and lane, and the row totals: in memory (see W4_ROW_STEP) */
    uint8_t off[4][32];
    memset(off, 8, sizeof off);
    __m256 t[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t si = 0; si < j->nseg; si++) {
        const int64_t g0 = j->seg[si].g0, g1 = j->seg[si].g1, e = j->seg[si].c1;
        int64_t c = j->seg[si].c0;
        if (asym) {
            for (int i = 0; i < 4; i++) _mm256_storeu_si256((__m256i *)off[i], w4_offsets(z[i], g0, g1));
        }
        __m256 ae0 = _mm256_setzero_ps(), ae1 = ae0, ae2 = ae0, ae3 = ae0;
        __m256 ao0 = ae0, ao1 = ae0, ao2 = ae0, ao3 = ae0;
        for (; c < e; c++) {
            const float *xc = j->xp + c * W4_CHUNK;
            const uint8_t *p0 = w[0] + 32 * c, *p1 = w[1] + 32 * c, *p2 = w[2] + 32 * c, *p3 = w[3] + 32 * c;
            if ((c & 1) == 0) {
                /* The hardware prefetcher follows each row but stalls at the jump to the next
                 * 4-row group; fetching that group one group ahead keeps DRAM busy (measured:
                 * cold W8A16/W4A16 matvec ~1.4x, docs/PERFORMANCE.md). A hint: never faults. */
                _mm_prefetch((const char *)(p0 + j->pf), _MM_HINT_T0);
                _mm_prefetch((const char *)(p1 + j->pf), _MM_HINT_T0);
                _mm_prefetch((const char *)(p2 + j->pf), _MM_HINT_T0);
                _mm_prefetch((const char *)(p3 + j->pf), _MM_HINT_T0);
            }
            uint8_t tail[4][32];
            if (c >= j->nfull) { /* the partial last chunk: only the rows' own bytes */
                const size_t av = j->packed - (size_t)(32 * c);
                memset(tail, 0, sizeof tail);
                memcpy(tail[0], p0, av); memcpy(tail[1], p1, av);
                memcpy(tail[2], p2, av); memcpy(tail[3], p3, av);
                p0 = tail[0]; p1 = tail[1]; p2 = tail[2]; p3 = tail[3];
            }
            W4_ROW_STEP(p0, off[0], ae0, ao0);
            W4_ROW_STEP(p1, off[1], ae1, ao1);
            W4_ROW_STEP(p2, off[2], ae2, ao2);
            W4_ROW_STEP(p3, off[3], ae3, ao3);
        }
        t[0] = _mm256_fmadd_ps(_mm256_add_ps(ae0, ao0), w4_scales(s[0], g0, g1), t[0]);
        t[1] = _mm256_fmadd_ps(_mm256_add_ps(ae1, ao1), w4_scales(s[1], g0, g1), t[1]);
        t[2] = _mm256_fmadd_ps(_mm256_add_ps(ae2, ao2), w4_scales(s[2], g0, g1), t[2]);
        t[3] = _mm256_fmadd_ps(_mm256_add_ps(ae3, ao3), w4_scales(s[3], g0, g1), t[3]);
    }
    for (int i = 0; i < 4; i++) out[i] = hsum8(t[i]);
}
#undef W4_ROW_STEP

static void w4_quad_sym(const w4_job *j, const uint8_t *const w[4], const float *const s[4],
                        float out[4]) {
    w4_quad(j, w, s, NULL, out, 0);
}

static void w4_quad_asym(const w4_job *j, const uint8_t *const w[4], const float *const s[4],
                         const float *const z[4], float out[4]) {
    w4_quad(j, w, s, z, out, 1);
}

/* Group sizes the chunk loop cannot take: dequantize one row at a time and dot it with x (one
 * more rounding per product, well inside the tolerance; see format_table.c). */
static void w4_rows_dequant_dot(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    float *row = malloc((size_t)w->cols * sizeof(float));
    if (!row) { lq_matvec_w4a16_ref(w, x, y, r0, r1); return; } /* no memory: still correct */
    for (int64_t r = r0; r < r1; r++) {
        lq_dequant_w4a16_avx2(w, r, r + 1, row);
        y[r - r0] = lq_dot_f32_avx2(row, x, w->cols);
    }
    free(row);
}

void lq_matvec_w4a16_avx2(const lq_weight *w, const float *x, float *y, int64_t r0, int64_t r1) {
    const int64_t cols = w->cols, gs = lq_w4_group(w);
    if (r1 <= r0) return;
    if (gs != cols && gs % 32 != 0) { w4_rows_dequant_dot(w, x, y, r0, r1); return; }
    const int64_t nch = (cols + W4_CHUNK - 1) / W4_CHUNK, ng = cols / gs;
    const size_t packed = (size_t)LQ_PACK4_ROW_BYTES(cols);
    /* xp, the zero padded copy of x, then the runs (nch of them at most) */
    const size_t need = (size_t)(2 * nch * W4_CHUNK) * sizeof(float) + (size_t)nch * sizeof(w4_seg);
    _Alignas(32) float stack[2 * W4_STACK_COLS + W4_STACK_COLS / W4_CHUNK * sizeof(w4_seg) / sizeof(float)];
    float *buf = need <= sizeof stack ? stack : malloc(need);
    if (!buf) { lq_matvec_w4a16_ref(w, x, y, r0, r1); return; } /* no memory: still correct */
    float *xp = buf, *xpad = buf + nch * W4_CHUNK;
    w4_seg *seg = (w4_seg *)(xpad + nch * W4_CHUNK);
    const float *scale = w->aux[0], *zero = w->aux[1];
    w4_permute_x(x, cols, nch, zero ? 0x1p-24f : 0x1p-28f, xpad, xp);
    const int64_t nfull = (int64_t)(packed / 32);
    const w4_job j = {.packed = packed, .ng = ng, .nfull = nfull, .xp = xp, .seg = seg,
                      .nseg = w4_segments(nch, nfull, gs, ng, seg), .pf = 4 * w->row_bytes};
    for (int64_t r = r0; r < r1; r += 4) {
        /* 1..3 leftover rows repeat the last one (computed, not stored) */
        const uint8_t *wr[4];
        const float *sr[4], *zr[4];
        for (int i = 0; i < 4; i++) {
            const int64_t ri = r + i < r1 ? r + i : r1 - 1;
            wr[i] = (const uint8_t *)w->data + (size_t)ri * w->row_bytes;
            sr[i] = scale + ri * ng;
            zr[i] = zero ? zero + ri * ng : NULL;
        }
        float out[4];
        if (zero) w4_quad_asym(&j, wr, sr, zr, out);
        else w4_quad_sym(&j, wr, sr, out);
        for (int i = 0; i < 4 && r + i < r1; i++) y[r + i - r0] = out[i];
    }
    if (buf != stack) free(buf);
}

/* ((float)u - (8 + zero)) * scale: the subtraction is exact, then one rounding, as in the ref. */
void lq_dequant_w4a16_avx2(const lq_weight *w, int64_t r0, int64_t r1, float *out) {
    const int64_t cols = w->cols, gs = lq_w4_group(w), ng = cols / gs;
    if (gs != cols && gs % 16 != 0) { lq_dequant_w4a16_ref(w, r0, r1, out); return; }
    const float *scale = w->aux[0], *zero = w->aux[1];
    const int64_t full = cols & ~(int64_t)15;
    const __m128i m = _mm_set1_epi8(0x0f);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        float *o = out + (size_t)(r - r0) * (size_t)cols;
        for (int64_t g = 0; g < ng; g++) {
            const float zf = zero ? zero[r * ng + g] : 0.0f, sf = scale[r * ng + g];
            const __m256 off = _mm256_set1_ps(8.0f + zf), s = _mm256_set1_ps(sf);
            const int64_t c1 = (g + 1) * gs;
            int64_t c = g * gs;
            for (; c < c1 && c < full; c += 16) {
                const __m128i b = _mm_loadl_epi64((const __m128i *)(wr + c / 2));
                const __m128i lo = _mm_and_si128(b, m), hi = _mm_and_si128(_mm_srli_epi16(b, 4), m);
                const __m128i u = _mm_unpacklo_epi8(lo, hi); /* 16 codes in column order */
                const __m256 f0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(u));
                const __m256 f1 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(u, 8)));
                _mm256_storeu_ps(o + c, _mm256_mul_ps(_mm256_sub_ps(f0, off), s));
                _mm256_storeu_ps(o + c + 8, _mm256_mul_ps(_mm256_sub_ps(f1, off), s));
            }
            for (; c < c1; c++) o[c] = ((float)lq_int4_get(wr, c) - zf) * sf;
        }
    }
}
