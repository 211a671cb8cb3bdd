/* test_rope_split.c - RoPE in two steps (lq_rope_cos_sin once per position, lq_rope_apply per
 * head: what the CPU table runs, sharing one position's angles over every head and layer of a
 * decode step) equals lq_rope_ref bit for bit. lq_rope_ref itself is checked against transformers
 * end to end (test_arch, test_llmc_fixtures). */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "lq_ops.h"

#define KT_RNG_SEED 0x70be5ull
#include "kern_test_util.h"

Test(rope_split, equals_rope_ref) {
    const int dims[] = {2, 6, 64, 128, 256};
    const int positions[] = {0, 1, 7, 511, 1000, 32767};
    float inv_freq[128], cs[256], a[256], b[256];
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
        const int hd = dims[d];
        for (int i = 0; i < hd / 2; i++) inv_freq[i] = powf(10000.0f, -2.0f * (float)i / (float)hd);
        for (size_t p = 0; p < sizeof positions / sizeof positions[0]; p++) {
            lq_rope_cos_sin(cs, hd, positions[p], inv_freq);
            for (int il = 0; il < 2; il++) {
                for (int head = 0; head < 3; head++) { /* one table, several heads */
                    fill(a, hd, -3.0f, 3.0f);
                    memcpy(b, a, (size_t)hd * sizeof *a);
                    lq_rope_ref(a, hd, positions[p], inv_freq, il);
                    lq_rope_apply(b, hd, cs, il);
                    for (int i = 0; i < hd; i++)
                        cr_assert(memcmp(&a[i], &b[i], sizeof(float)) == 0,
                                  "head_dim %d pos %d interleaved %d: x[%d] ref %.9g, split %.9g", hd, positions[p],
                                  il, i, a[i], b[i]);
                }
            }
        }
    }
}
