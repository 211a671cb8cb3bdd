/* fmt_legacy_avx512.c - the GGUF legacy blocks (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL) times
 * Q8_0 / Q8_1 activation blocks with AVX-512 VNNI (loops in blk_q8_avx512_tmpl.h and
 * blk_q8_avx512_fold_tmpl.h; scalar specs in fmt_legacy_dot.c and fmt_q8_0.c). Each format only
 * says how a block becomes 32 unsigned bytes u = code + offset in activation order; vpdpbusd
 * takes u unsigned, and the offset comes back out through the accumulator's start value, once
 * per activation block. */
#include <immintrin.h>
#include <stdint.h>

#include "blk_q8_avx2.h"
#include "blk_q8_avx512.h"
#include "kern_internal.h"
#include "lq_blocks.h"

#define LV_AT(w, o, k) ((w)[0] + (o) + (k)), ((w)[1] + (o) + (k)), ((w)[2] + (o) + (k)), ((w)[3] + (o) + (k))

/* Q5, one row: the nibbles, plus 16 where the element's bit of qh (the dword at p) is set: the 32
 * bits are a byte mask (AVX-512BW), so one masked move replaces AVX2's spread-and-compare */
static inline __m256i lv_q5(const uint8_t *p) {
    return _mm256_or_si256(qd_nibbles(p + 4), _mm256_maskz_mov_epi8((__mmask32)lq_blk_u32(p), _mm256_set1_epi8(16)));
}

/* the 16 nibble bytes at byte q of each row's block: low nibbles (elements 0-15) and high
 * nibbles (16-31), 0..15 */
static inline void lv_nib(const uint8_t *const *w, size_t o, int q, __m512i *lo, __m512i *hi) {
    const __m512i v = qv_load4x16(LV_AT(w, o, q)), m = _mm512_set1_epi8(0x0f);
    *lo = _mm512_and_si512(v, m);
    *hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m);
}

/* IQ4_NL: ggml's kvalues_iq4nl grid plus 128 (1 .. 241), looked up by the nibbles with pshufb */
static inline void lv_iq4_nl(const uint8_t *const *w, size_t o, __m512i *lo, __m512i *hi) {
    const __m512i grid = _mm512_broadcast_i32x4(_mm_setr_epi8(
        1, 24, 45, 63, 79, 93, 106, 118, (char)129, (char)141, (char)153, (char)166, (char)181, (char)197, (char)217,
        (char)241));
    lv_nib(w, o, 2, lo, hi);
    *lo = _mm512_shuffle_epi8(grid, *lo);
    *hi = _mm512_shuffle_epi8(grid, *hi);
}

/* rows folded after the dot products (blk_q8_avx512_fold_tmpl.h): Q8_0, Q5_0, Q5_1 */

#define QF_NAME lq_matvec_q_q5_0_avx512
#define QF_GEMM lq_gemm_q_q5_0_avx512
#define QF_WBYTES 22
#define QF_Q81 0
#define QF_OFF 16
#define QF_CODES(b) lv_q5((b) + 2)
#include "blk_q8_avx512_fold_tmpl.h"

#define QF_NAME lq_matvec_q_q5_1_avx512
#define QF_GEMM lq_gemm_q_q5_1_avx512
#define QF_WBYTES 24
#define QF_Q81 1
#define QF_OFF 0
#define QF_CODES(b) lv_q5((b) + 4)
#include "blk_q8_avx512_fold_tmpl.h"

/* four rows per zmm (blk_q8_avx512_tmpl.h): Q4_0, Q4_1, IQ4_NL */

#define QV_NAME lq_matvec_q_q4_0_avx512
#define QV_GEMM lq_gemm_q_q4_0_avx512
#define QV_WBYTES 18
#define QV_Q81 0
#define QV_OFF 8
#define QV_CODES4(w, o, lo, hi) lv_nib((w), (o), 2, &(lo), &(hi))
#include "blk_q8_avx512_tmpl.h"

#define QV_NAME lq_matvec_q_q4_1_avx512
#define QV_GEMM lq_gemm_q_q4_1_avx512
#define QV_WBYTES 20
#define QV_Q81 1
#define QV_OFF 0
#define QV_CODES4(w, o, lo, hi) lv_nib((w), (o), 4, &(lo), &(hi))
#include "blk_q8_avx512_tmpl.h"


#define QV_NAME lq_matvec_q_iq4_nl_avx512
#define QV_GEMM lq_gemm_q_iq4_nl_avx512
#define QV_WBYTES 18
#define QV_Q81 0
#define QV_OFF 128
#define QV_CODES4(w, o, lo, hi) lv_iq4_nl((w), (o), &(lo), &(hi))
#include "blk_q8_avx512_tmpl.h"

/* Q8_0, four rows: bytes 0-15 and 16-31 of each row's codes, + 128 */
static inline void lv_q8x4(const uint8_t *const *w, size_t o, __m512i *lo, __m512i *hi) {
    const __m512i m = _mm512_set1_epi8((char)0x80);
    *lo = _mm512_xor_si512(qv_load4x16(LV_AT(w, o, 2)), m);
    *hi = _mm512_xor_si512(qv_load4x16(LV_AT(w, o, 18)), m);
}
#define QV_NAME lq_matvec_q_q8_0_avx512
#define QV_GEMM lq_gemm_q_q8_0_avx512
#define QV_WBYTES 34
#define QV_Q81 0
#define QV_OFF 128
#define QV_CODES4(w, o, lo, hi) lv_q8x4((w), (o), &(lo), &(hi))
#include "blk_q8_avx512_tmpl.h"
