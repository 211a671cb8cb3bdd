/* kq_crosscheck.c - ggml's K-quant reference functions against ours, for
 * make_kquant_vectors.py (run by hand; never built by CMake, never a test dependency).
 *
 * Built by the script from llama.cpp's ggml/src/ggml-quants.c (the llama-cpp-python sdist's
 * vendor/llama.cpp) and our kernels/cpu/kq_quantize.c + fmt_kquant.c, all with
 * -ffp-contract=off like ggml-base. Modes:
 *   campaign N SEED         N random super-blocks per type (mixed distributions, edge cases):
 *                           our quantize bytes == ggml's, our dequant floats == ggml's (bits),
 *                           also on random-byte blocks; f32 -> f16 over every float; exit 1 on
 *                           any difference
 *   quantize TYPE IN OUT    ggml's blocks of the f32 file IN (n * 256 floats)
 *   dequant TYPE IN OUT     ggml's floats of the block file IN
 *   oquantize / odequant    the same with our functions (to compare with another build of
 *                           ggml, e.g. llama.cpp's own libggml-base through ggml-qref)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-quants.h"
#include "ggml-impl.h"
#include "kq_internal.h"

/* ggml symbols ggml-quants.c references that these paths never reach */
void ggml_abort(const char *file, int line, const char *fmt, ...) { fprintf(stderr, "ggml_abort %s:%d %s\n", file, line, fmt); abort(); }
size_t ggml_row_size(enum ggml_type t, int64_t n) { (void)t; (void)n; return 0; }
const char *ggml_type_name(enum ggml_type t) { (void)t; return "?"; }
size_t ggml_type_size(enum ggml_type t) { (void)t; return 0; }

typedef struct kq_type {
    const char *name;
    size_t bytes;
    void (*g_quant)(const float *x, void *y);      /* ggml */
    void (*g_deq)(const void *b, float *y);
    void (*o_quant)(const float *x, void *y);      /* ours */
    void (*o_deq)(const void *b, float *y);
    int f16_offsets[2];                             /* where the f16 scales sit (-1: none) */
} kq_type;

#define G_WRAP(n)                                                                                  \
    static void g_q_##n(const float *x, void *y) { quantize_row_##n##_ref(x, y, 256); }             \
    static void g_d_##n(const void *b, float *y) { dequantize_row_##n(b, y, 256); }                \
    static void o_q_##n(const float *x, void *y) { lq_kq_quantize_##n(x, y); }                     \
    static void o_d_##n(const void *b, float *y) { lq_kq_dequant_##n(b, y); }
G_WRAP(q2_K)
G_WRAP(q3_K)
G_WRAP(q4_K)
G_WRAP(q5_K)
G_WRAP(q6_K)
/* llama-quantize without an imatrix: quantize_iq4_xs(..., NULL) (= quantize_row_iq4_xs_ref) */
static void g_q_iq4_xs(const float *x, void *y) { quantize_iq4_xs(x, y, 1, 256, NULL); }
static void g_d_iq4_xs(const void *b, float *y) { dequantize_row_iq4_xs(b, y, 256); }
static void o_q_iq4_xs(const float *x, void *y) { lq_kq_quantize_iq4_xs(x, y); }
static void o_d_iq4_xs(const void *b, float *y) { lq_kq_dequant_iq4_xs(b, y); }

static const kq_type k_types[] = {
    {"q2_K", 84, g_q_q2_K, g_d_q2_K, o_q_q2_K, o_d_q2_K, {80, 82}},
    {"q3_K", 110, g_q_q3_K, g_d_q3_K, o_q_q3_K, o_d_q3_K, {108, -1}},
    {"q4_K", 144, g_q_q4_K, g_d_q4_K, o_q_q4_K, o_d_q4_K, {0, 2}},
    {"q5_K", 176, g_q_q5_K, g_d_q5_K, o_q_q5_K, o_d_q5_K, {0, 2}},
    {"q6_K", 210, g_q_q6_K, g_d_q6_K, o_q_q6_K, o_d_q6_K, {208, -1}},
    {"iq4_xs", 136, g_q_iq4_xs, g_d_iq4_xs, o_q_iq4_xs, o_d_iq4_xs, {0, -1}},
};
#define N_TYPES (sizeof k_types / sizeof k_types[0])

static const kq_type *find_type(const char *n) {
    for (size_t i = 0; i < N_TYPES; i++)
        if (!strcmp(k_types[i].name, n)) return &k_types[i];
    fprintf(stderr, "unknown type %s\n", n);
    exit(2);
}

static uint64_t g_s;
static uint32_t rnd(void) { g_s ^= g_s >> 12; g_s ^= g_s << 25; g_s ^= g_s >> 27; return (uint32_t)((g_s * 0x2545f4914f6cdd1dull) >> 32); }
static float unif(void) { return (float)(rnd() >> 8) / 16777216.0f; }
static float gauss(void) { float u = unif() + 1e-7f, v = unif(); return sqrtf(-2 * logf(u)) * cosf(6.2831853f * v); }

/* One block of 256 inputs of kind k (the edge cases the vectors pin, and mixes of them). */
static void gen_block(float *x, int k) {
    const float sc = powf(10.f, -4.f + 5.f * unif());
    switch (k % 12) {
    case 0: for (int i = 0; i < 256; i++) x[i] = sc * gauss(); break;
    case 1: for (int i = 0; i < 256; i++) x[i] = sc * (2 * unif() - 1); break;
    case 2: for (int i = 0; i < 256; i++) { float g = gauss(); x[i] = sc * g * g * g; } break;
    case 3: for (int i = 0; i < 256; i++) x[i] = -sc * unif(); break;                   /* all negative */
    case 4: for (int i = 0; i < 256; i++) x[i] = sc * unif(); break;                    /* all positive */
    case 5: for (int i = 0; i < 256; i++) x[i] = (rnd() % 10 < 7) ? 0.f : sc * gauss(); break;
    case 6: for (int i = 0; i < 256; i++) x[i] = sc * gauss(); x[rnd() % 256] *= 100; break; /* outlier */
    case 7: { const float t = powf(10.f, -30.f + 24.f * unif()); for (int i = 0; i < 256; i++) x[i] = t * gauss(); } break;
    case 8: for (int i = 0; i < 256; i++) x[i] = (float)((int)(rnd() % 9) - 4) * (sc > 1 ? 1.f : 0.25f); break; /* ties */
    case 9: for (int i = 0; i < 256; i++) x[i] = ((i / 16) % 3 == 0) ? 0.f : sc * gauss(); break; /* zero sub-blocks */
    case 10: { const float c = sc * gauss(); for (int i = 0; i < 256; i++) x[i] = c; } break; /* constant */
    default: for (int i = 0; i < 256; i++) x[i] = powf(10.f, 4.f * unif()) * gauss(); break; /* wide range */
    }
}

static int same_floats(const float *a, const float *b, int n, int *at) {
    for (int i = 0; i < n; i++) {
        if (isnan(a[i]) && isnan(b[i])) continue;
        if (memcmp(&a[i], &b[i], 4) != 0) { *at = i; return 0; }
    }
    return 1;
}

static int campaign(long n, uint64_t seed) {
    int bad = 0;
    /* f32 -> f16: ggml's conversion (ggml-impl.h) and ours agree on every non-NaN float */
    long f16_bad = 0;
    for (uint64_t u = 0; u <= 0xffffffffull; u++) {
        float f; uint32_t b = (uint32_t)u; memcpy(&f, &b, 4);
        if (isnan(f)) continue;
        if (ggml_compute_fp32_to_fp16(f) != lq_f32_to_f16(f)) { if (!f16_bad++) printf("f16 differs at %08x\n", b); }
    }
    printf("f32->f16: %ld of 2^32 - NaNs differ\n", f16_bad);
    bad |= f16_bad != 0;
    float x[256], yg[256], yo[256];
    uint8_t bg[256], bo[256];
    for (size_t t = 0; t < N_TYPES; t++) {
        const kq_type *T = &k_types[t];
        g_s = seed * 0x9E3779B97F4A7C15ull + t + 1;
        long qbad = 0, dbad = 0, rbad = 0;
        for (long i = 0; i < n; i++) {
            gen_block(x, (int)(i % 12) == 11 ? (int)(rnd() % 12) : (int)(i % 12));
            memset(bg, 0x5A, sizeof bg); memset(bo, 0xA5, sizeof bo);
            T->g_quant(x, bg);
            T->o_quant(x, bo);
            if (memcmp(bg, bo, T->bytes)) { if (!qbad++) { size_t k = 0; while (bg[k] == bo[k]) k++; printf("%s block %ld kind %ld: byte %zu ggml %02x ours %02x\n", T->name, i, i % 12, k, bg[k], bo[k]); } }
            T->g_deq(bg, yg);
            T->o_deq(bg, yo);
            int at;
            if (!same_floats(yg, yo, 256, &at)) { if (!dbad++) printf("%s block %ld: dequant %d ggml %.9g ours %.9g\n", T->name, i, at, yg[at], yo[at]); }
            /* random bytes (finite f16 scales): dequant must agree on any block */
            for (size_t k = 0; k < T->bytes; k++) bg[k] = (uint8_t)rnd();
            for (int o = 0; o < 2; o++)
                if (T->f16_offsets[o] >= 0) bg[T->f16_offsets[o] + 1] &= 0x7b; /* exponent < 31 */
            T->g_deq(bg, yg);
            T->o_deq(bg, yo);
            if (!same_floats(yg, yo, 256, &at)) { if (!rbad++) printf("%s random block %ld: dequant %d ggml %.9g ours %.9g\n", T->name, i, at, yg[at], yo[at]); }
        }
        printf("%-6s %ld blocks: quantize bytes differ in %ld, dequant differs in %ld, random-byte dequant differs in %ld\n",
               T->name, n, qbad, dbad, rbad);
        bad |= qbad || dbad || rbad;
    }
    return bad;
}

static void *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    fseek(f, 0, SEEK_END); *n = (size_t)ftell(f); fseek(f, 0, SEEK_SET);
    void *p = malloc(*n ? *n : 1);
    if (fread(p, 1, *n, f) != *n) { perror(path); exit(2); }
    fclose(f);
    return p;
}

static void spit(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f)) { perror(path); exit(2); }
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "campaign")) return campaign(atol(argv[2]), strtoull(argv[3], 0, 0));
    const int ours = argc == 5 && argv[1][0] == 'o';
    if (argc == 5 && (!strcmp(argv[1] + ours, "quantize") || !strcmp(argv[1] + ours, "dequant"))) {
        const kq_type *T = find_type(argv[2]);
        size_t n;
        uint8_t *in = slurp(argv[3], &n);
        const int q = !strcmp(argv[1] + ours, "quantize");
        const size_t nb = q ? n / 1024 : n / T->bytes;
        uint8_t *out = malloc(nb * (q ? T->bytes : 1024));
        for (size_t i = 0; i < nb; i++) {
            if (q) (ours ? T->o_quant : T->g_quant)((const float *)(in + i * 1024), out + i * T->bytes);
            else (ours ? T->o_deq : T->g_deq)(in + i * T->bytes, (float *)(out + i * 1024));
        }
        spit(argv[4], out, nb * (q ? T->bytes : 1024));
        return 0;
    }
    fprintf(stderr, "usage: kq_crosscheck campaign N SEED | [o]quantize|[o]dequant TYPE IN OUT\n");
    return 2;
}
