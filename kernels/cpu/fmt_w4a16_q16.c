/* fmt_w4a16_q16.c - W4A16 x Q16 activations (lq_format.h LQ_ACT_Q16), scalar spec.
 *
 * The integer path of W4A16 at the AVX-512 level (format_table.c). Q8_0 activations (
 * fmt_w4a16_q8.c) cost SmolLM2 a mean KLD of 4e-3 against f32 activations, 40 times issue 17's
 * budget, because a block of 32 that holds one of its outlier channels is quantized with a step
 * of amax / 127 (docs/RESULTS.md). Q16 blocks keep 32 int16 codes and an f32 d = amax / 32767:
 * the step is 258 times finer, and vpdpwssd multiplies int16 pairs at twice the rate of f32 FMAs.
 *
 * The same pieces as the Q8_0 spec: a weight column c of row r holds u_c = q + 8 in [0, 15], its
 * group g has scale s_g and zero point z_g (0 when symmetric), and
 *   y = sum over the pieces p of the row cut at every block and group boundary of
 *       s_g * d_b * D_p,  D_p = sum_{c in p} (u_c - 8 - z_g) q_c   (an exact integer),
 * summed in double by the pieces loop the Q8_0 spec shares (lq_w4a16_pieces_ref); the AVX-512
 * twin sums in f32 (tolerance in format_table.c). */
#include "kern_internal.h"
#include "lq_blocks.h"

static int q16_code(const void *xq, int64_t c) { return ((const lq_block_q16 *)xq)[c / LQ_QK].qs[c % LQ_QK]; }
static double q16_d(const void *xq, int64_t b) { return (double)((const lq_block_q16 *)xq)[b].d; }

void lq_matvec_q_w4a16_q16_ref(const lq_weight *w, const void *xq, float *y, int64_t r0, int64_t r1) {
    lq_w4a16_pieces_ref(w, xq, q16_code, q16_d, y, r0, r1);
}
