/* format_table.c - the traits table: one row per weight format (lq_format.h).
 *
 * The rows are static data written with designated initializers; only the two "fastest" slots
 * are filled once at first use, from the fast row below when the CPU has AVX2/FMA/F16C (and
 * LQ_FORCE_REF is unset), else from the _ref functions.
 *
 * Tolerance of matvec vs matvec_ref (|fast - ref| <= atol + rtol * sum_c |W[r][c] x[c]|):
 * the ref sums exact products in double (essentially the true value); the fast path sums in f32
 * with FMA, 8 lanes x 2 chains per row, then a 5-level horizontal reduction, so each product
 * passes through at most cols/16 + 5 roundings of 2^-24. For cols <= ~5000 that worst case is
 * <= 2e-5 of the absolute sum; real rounding errors are random and land one to two orders of
 * magnitude lower. rtol = 2e-5 still catches any wrong or dropped element (one product of a
 * 4099-wide row is ~2.4e-4 of the absolute sum). atol covers rows whose absolute sum is 0 or
 * denormal. F16/BF16 widen exactly to f32, so they get the same bound as F32.
 */
#include <pthread.h>
#include <string.h>

#include "kern_internal.h"

static lq_wfmt_traits g_traits[LQ_WFMT_COUNT] = {
    [LQ_WFMT_F32] = {
        .name = "f32",
        .bits_per_weight = 32.0,
        .matvec_ref = lq_matvec_f32_ref,
        .dequant_ref = lq_dequant_f32_ref,
        .tol_atol = 1e-6,
        .tol_rtol = 2e-5,
    },
    [LQ_WFMT_F16] = {
        .name = "f16",
        .bits_per_weight = 16.0,
        .matvec_ref = lq_matvec_f16_ref,
        .dequant_ref = lq_dequant_f16_ref,
        .tol_atol = 1e-6,
        .tol_rtol = 2e-5,
    },
    [LQ_WFMT_BF16] = {
        .name = "bf16",
        .bits_per_weight = 16.0,
        .matvec_ref = lq_matvec_bf16_ref,
        .dequant_ref = lq_dequant_bf16_ref,
        .tol_atol = 1e-6,
        .tol_rtol = 2e-5,
    },
};

/* The AVX2 twins of each row (NULL: the format has no fast path yet). */
static const struct {
    lq_matvec_fn matvec;
    lq_dequant_fn dequant;
} g_fast[LQ_WFMT_COUNT] = {
    [LQ_WFMT_F32] = {.matvec = lq_matvec_f32_avx2, .dequant = lq_dequant_f32_avx2},
    [LQ_WFMT_F16] = {.matvec = lq_matvec_f16_avx2, .dequant = lq_dequant_f16_avx2},
    [LQ_WFMT_BF16] = {.matvec = lq_matvec_bf16_avx2, .dequant = lq_dequant_bf16_avx2},
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void choose_paths(void) {
    const int fast = lq_cpu_has_avx2();
    for (int f = 0; f < LQ_WFMT_COUNT; f++) {
        lq_wfmt_traits *t = &g_traits[f];
        t->matvec = (fast && g_fast[f].matvec) ? g_fast[f].matvec : t->matvec_ref;
        t->dequant = (fast && g_fast[f].dequant) ? g_fast[f].dequant : t->dequant_ref;
    }
}

const lq_wfmt_traits *lq_wfmt_get(lq_wfmt f) {
    if ((int)f < 0 || f >= LQ_WFMT_COUNT) return NULL;
    pthread_once(&g_once, choose_paths);
    return &g_traits[f];
}

lq_wfmt lq_wfmt_from_name(const char *name) {
    if (!name) return LQ_WFMT_COUNT;
    for (int f = 0; f < LQ_WFMT_COUNT; f++)
        if (g_traits[f].name && strcmp(g_traits[f].name, name) == 0) return (lq_wfmt)f;
    return LQ_WFMT_COUNT;
}
