/* test_gguf_imat.c - the GGUF quantizers with an importance matrix (llama-quantize --imatrix).
 *
 * External reference: tests/fixtures/gguf_blocks/imat/: 4 rows x 512 weights (in.f32), a
 * 512-entry imatrix with zeros in it (imatrix.f32) and, per type, the blocks llama.cpp's own
 * ggml_quantize_chunk(type, ..., imatrix) wrote for them (<type>.q), made by
 * scripts/gguf_vectors/make_imat_vectors.py (which also cross-checks 144 random matrices against
 * ggml). Our quantize_ref with lq_quant_params.col_weight = that imatrix must give those bytes;
 * without it, ggml's unweighted bytes (a different result for every type that uses the imatrix).
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lq_format.h"

#define ROWS 4
#define COLS 512

static void *read_fixture(const char *name, size_t want) {
    char path[512];
    snprintf(path, sizeof path, "%s/gguf_blocks/imat/%s", LQ_FIXTURES_DIR, name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "fixture %s missing", path);
    void *p = malloc(want + 1);
    size_t got = p ? fread(p, 1, want + 1, f) : 0;
    fclose(f);
    cr_assert_eq(got, want, "fixture %s: %zu bytes, want %zu", path, got, want);
    return p;
}

static const struct {
    const char *name;
    int uses_imatrix; /* ggml's Q8_0 ignores it */
} k_types[] = {
    {"q4_0", 1}, {"q4_1", 1}, {"q5_0", 1}, {"q5_1", 1}, {"q8_0", 0}, {"iq4_nl", 1},
    {"q2_K", 1}, {"q3_K", 1}, {"q4_K", 1}, {"q5_K", 1}, {"q6_K", 1}, {"iq4_xs", 1},
};

Test(gguf_imat, weighted_quantizers_equal_ggml) {
    float *x = read_fixture("in.f32", ROWS * COLS * sizeof(float));
    float *im = read_fixture("imatrix.f32", COLS * sizeof(float));
    for (size_t t = 0; t < sizeof k_types / sizeof k_types[0]; t++) {
        const lq_wfmt f = lq_wfmt_from_name(k_types[t].name);
        cr_assert_neq(f, LQ_WFMT_COUNT, "%s", k_types[t].name);
        size_t rb;
        cr_assert(lq_wfmt_sizes(f, ROWS, COLS, NULL, &rb, NULL, NULL));
        char fname[64];
        snprintf(fname, sizeof fname, "%s.q", k_types[t].name);
        uint8_t *want = read_fixture(fname, ROWS * rb);
        uint8_t *got = calloc(ROWS, rb), *plain = calloc(ROWS, rb);
        lq_weight w = {.fmt = f, .rows = ROWS, .cols = COLS, .data = got, .row_bytes = rb};
        lq_wfmt_get(f)->quantize_ref(x, &(lq_quant_params){.col_weight = im}, &w);
        for (size_t i = 0; i < ROWS * rb; i++)
            cr_assert_eq(got[i], want[i], "%s with imatrix: byte %zu (row %zu) is %02X, ggml %02X",
                         k_types[t].name, i, i / rb, got[i], want[i]);
        w.data = plain;
        lq_wfmt_get(f)->quantize_ref(x, &(lq_quant_params){0}, &w);
        const int same = memcmp(plain, want, ROWS * rb) == 0;
        cr_assert_eq(same, !k_types[t].uses_imatrix, "%s: the imatrix %s the bytes", k_types[t].name,
                     same ? "did not change" : "changed");
        free(want);
        free(got);
        free(plain);
    }
    free(x);
    free(im);
}
