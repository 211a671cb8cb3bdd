/* fmt_legacy_avx512.c - the GGUF legacy blocks (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL) times
 * Q8_0 / Q8_1 activation blocks with AVX-512 VNNI (loops in blk_q8_avx512_tmpl.h: four rows per
 * zmm; scalar specs in fmt_legacy_dot.c and fmt_q8_0.c). Each format only says how the blocks of
 * four rows become 2 x 64 unsigned bytes u = code + offset (elements 0-15 and 16-31, row k in
 * 128-bit lane k); vpdpbusd takes u unsigned, and the offset comes back out through the
 * accumulator's start value, once per activation block.
 * Until 2026-12-04 Q8_0 and Q5_0 / Q5_1 built their codes one 256-bit row at a time and folded
 * four rows' lane sums with three vphaddd per token and block: their prefill (gemm_q) was the
 * slowest of the legacy types. Four rows per zmm needs no fold: bench_legacy_q 1536 x 576, 64
 * tokens, hot, gemm_q G weights/s: Q8_0 36-54 -> 65-67, Q5_0 31-39 -> 56-62, matvec_q within the
 * noise of a shared machine. */
#include <immintrin.h>
#include <stdint.h>

#include "blk_q8_avx2.h"
#include "blk_q8_avx512.h"
#include "kern_internal.h"
#include "lq_blocks.h"

#define LV_AT(w, o, k) ((w)[0] + (o) + (k)), ((w)[1] + (o) + (k)), ((w)[2] + (o) + (k)), ((w)[3] + (o) + (k))

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

/* four rows per zmm (blk_q8_avx512_tmpl.h): Q4_0, Q4_1, IQ4_NL, Q8_0 */

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

/* Q5_0 / Q5_1, four rows: the nibbles at byte q, plus 16 where the element's bit of qh (the
 * dword at byte h) is set. The four rows' halves of qh make one 64-bit byte mask per zmm
 * (AVX-512BW), so one masked move adds the fifth bits of four rows. */
static inline void lv_q5x4(const uint8_t *const *w, size_t o, int h, int q, __m512i *lo, __m512i *hi) {
    lv_nib(w, o, q, lo, hi);
    uint64_t mlo = 0, mhi = 0;
    for (int k = 0; k < 4; k++) {
        const uint32_t qh = lq_blk_u32(w[k] + o + h);
        mlo |= (uint64_t)(qh & 0xffffu) << (16 * k);
        mhi |= (uint64_t)(qh >> 16) << (16 * k);
    }
    const __m512i c16 = _mm512_set1_epi8(16);
    *lo = _mm512_or_si512(*lo, _mm512_maskz_mov_epi8((__mmask64)mlo, c16));
    *hi = _mm512_or_si512(*hi, _mm512_maskz_mov_epi8((__mmask64)mhi, c16));
}

#define QV_NAME lq_matvec_q_q5_0_avx512
#define QV_GEMM lq_gemm_q_q5_0_avx512
#define QV_WBYTES 22
#define QV_Q81 0
#define QV_OFF 16
#define QV_CODES4(w, o, lo, hi) lv_q5x4((w), (o), 2, 6, &(lo), &(hi))
#include "blk_q8_avx512_tmpl.h"

#define QV_NAME lq_matvec_q_q5_1_avx512
#define QV_GEMM lq_gemm_q_q5_1_avx512
#define QV_WBYTES 24
#define QV_Q81 1
#define QV_OFF 0
#define QV_CODES4(w, o, lo, hi) lv_q5x4((w), (o), 4, 8, &(lo), &(hi))
#include "blk_q8_avx512_tmpl.h"
