/* ggml_vecdot.c - llama.cpp's own integer-activation products on fixed inputs, printed as test
 * vectors for tests/test_legacy_dot.c (never built in CI; scripts/gguf_vectors/make_dot_vectors.sh
 * builds it against ggml-cpu from the llama-cpp-python sdist's vendor/llama.cpp).
 *
 * For each legacy type T (q8_0 q4_0 q4_1 q5_0 q5_1 iq4_nl) it takes ggml-cpu's type traits
 * (ggml_get_type_traits_cpu): the activation quantizer of T's vec_dot_type (x86 AVX2
 * quantize_row_q8_0 / q8_1: what llama.cpp's mul_mat runs on the activations) and T's vec_dot
 * (ggml_vec_dot_T_q8_0 / _q8_1). Weights come from ggml_quantize_chunk (the reference quantizer
 * llama-quantize runs without an imatrix). Output, one record a line, floats as binary32 hex:
 *   T <type> <rows> <cols> <tokens>
 *   X <cols floats>          an activation row (f32)
 *   A <hex bytes>            ggml's quantized activation row (Q8_0 or Q8_1 blocks)
 *   W <hex bytes>            a weight row
 *   Y <rows x tokens floats> vec_dot(W[r], A[t]), row major over r
 * Inputs are a fixed xorshift stream (no libc rand), so the file is reproducible. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml.h"
#include "ggml-cpu.h"

static uint64_t g_s = 0x9e3779b97f4a7c15ull;
static double urand(void) { /* [0, 1) */
    g_s ^= g_s << 13, g_s ^= g_s >> 7, g_s ^= g_s << 17;
    return (double)(g_s >> 11) / 9007199254740992.0;
}
static float nrand(void) {
    double u = urand() + 1e-12, v = urand();
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

static void hexf(const char *tag, const float *v, int n) {
    printf("%s", tag);
    for (int i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &v[i], 4);
        printf(" %08x", b);
    }
    printf("\n");
}
static void hexb(const char *tag, const uint8_t *p, size_t n) {
    printf("%s ", tag);
    for (size_t i = 0; i < n; i++) printf("%02x", p[i]);
    printf("\n");
}

/* activation row t: each block of 32 has its own character (typical, outlier, all zero, tiny
 * (binary16-subnormal d), large (|s| near binary16's range), exact .5 ties of x * 127 / amax) */
static void act_row(float *x, int cols, int t) {
    for (int b = 0; b < cols / 32; b++) {
        float *p = x + b * 32;
        const int kind = (b + t) % 6;
        for (int j = 0; j < 32; j++) p[j] = nrand();
        if (kind == 1) p[(t * 7 + b) % 32] = 25.0f;
        if (kind == 2) memset(p, 0, 32 * sizeof *p);
        if (kind == 3) for (int j = 0; j < 32; j++) p[j] *= 1e-6f;
        if (kind == 4) for (int j = 0; j < 32; j++) p[j] = 60.0f + 4.0f * p[j];
        if (kind == 5) for (int j = 0; j < 32; j++) p[j] = (j == 0) ? 127.0f : (float)((j % 9) - 4) + 0.5f;
    }
}

int main(void) {
    ggml_cpu_init();
    const enum ggml_type types[] = {GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q4_1,
                                    GGML_TYPE_Q5_0, GGML_TYPE_Q5_1, GGML_TYPE_IQ4_NL};
    const int rows = 5, cols = 192, tokens = 4;
    printf("# ggml-cpu vec_dot vectors: scripts/gguf_vectors/ggml_vecdot.c, llama.cpp 0c1e57098 (llama-cpp-python 0.3.36 sdist), x86 -march=native\n");
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const enum ggml_type T = types[k];
        const struct ggml_type_traits_cpu *tc = ggml_get_type_traits_cpu(T);
        const struct ggml_type_traits_cpu *ta = ggml_get_type_traits_cpu(tc->vec_dot_type);
        const size_t wrb = ggml_row_size(T, cols), arb = ggml_row_size(tc->vec_dot_type, cols);
        float *src = malloc(sizeof(float) * rows * cols), *x = malloc(sizeof(float) * cols);
        uint8_t *W = malloc(wrb * rows), *A = malloc(arb * tokens);
        for (int i = 0; i < rows * cols; i++) src[i] = 0.02f * nrand();
        for (int j = 0; j < 32; j++) src[cols + 32 + j] = 0.05f + 0.01f * (float)urand(); /* one-signed block */
        ggml_quantize_chunk(T, src, W, 0, rows, cols, NULL);
        printf("T %s %d %d %d\n", ggml_type_name(T), rows, cols, tokens);
        for (int t = 0; t < tokens; t++) {
            act_row(x, cols, t);
            ta->from_float(x, A + t * arb, cols);
            hexf("X", x, cols);
            hexb("A", A + t * arb, arb);
        }
        for (int r = 0; r < rows; r++) hexb("W", W + r * wrb, wrb);
        float *Y = malloc(sizeof(float) * rows * tokens);
        for (int r = 0; r < rows; r++)
            for (int t = 0; t < tokens; t++)
                tc->vec_dot(cols, &Y[r * tokens + t], 0, W + r * wrb, 0, A + t * arb, 0, 1);
        hexf("Y", Y, rows * tokens);
        free(src), free(x), free(W), free(A), free(Y);
    }
    return 0;
}
