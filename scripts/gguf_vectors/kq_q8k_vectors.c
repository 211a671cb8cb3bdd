/* kq_q8k_vectors.c - llama.cpp's integer-activation products for the K-quants, as test vectors
 * (tests/fixtures/gguf_blocks/kq_q8k_dot.txt, read by tests/test_kquant_q8k.c). Run by hand through
 * make_kq_q8k_vectors.sh; never built by CMake, never a test dependency.
 *
 * Linked against a llama.cpp build's static ggml (libggml-cpu.a + libggml-base.a, the code
 * llama-perplexity runs): ggml-cpu's type traits give from_float (quantize_row_q8_K, the Q8_K
 * activation quantizer of its vec_dot_type) and vec_dot (ggml_vec_dot_<type>_q8_K of the build's
 * CPU: AVX2 / AVX-512 on x86); weights are ggml_quantize_chunk's reference blocks (no imatrix).
 * Output (text, one record per line, numbers as hex so nothing is rounded):
 *   act A COLS                    activation row A
 *   x A <COLS f32 bit patterns>
 *   q8k A <Q8_K bytes>            ggml's quantize_row_q8_K of row A
 *   w TYPE R COLS <block bytes>   weight row R of TYPE
 *   dot TYPE R A <f32 bits>       ggml's vec_dot(weight row R, q8k A)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-cpu.h"
#include "ggml.h"

#define COLS 512
#define NACT 3
#define NW 4

static uint64_t g_s = 0x9e3779b97f4a7c15ull;
static float urand(void) { /* xorshift64*, uniform in [-1, 1) */
    g_s ^= g_s >> 12, g_s ^= g_s << 25, g_s ^= g_s >> 27;
    return (float)((double)((g_s * 2685821657736338717ull) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void put_f32s(const char *tag, int a, const float *v, int n) {
    printf("%s %d", tag, a);
    for (int i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        printf(" %08x", u);
    }
    printf("\n");
}

static void put_bytes(const uint8_t *b, size_t n) {
    printf(" ");
    for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
    printf("\n");
}

/* Three activation rows: uniform; per-32 magnitudes 1e-3 / 30 / 1 with a +-max tie in each
 * super-block (negative first, then positive first: the signed max is the first one); a zero
 * super-block then halves that round to even (max 127 -> iscale -1). */
static void make_acts(float x[NACT][COLS]) {
    for (int i = 0; i < COLS; i++) x[0][i] = urand();
    for (int i = 0; i < COLS; i++) {
        const int b = i / 32;
        const float s = b % 3 == 0 ? 1e-3f : b % 3 == 1 ? 30.0f : 1.0f;
        x[1][i] = s * urand();
    }
    x[1][5] = -31.0f, x[1][100] = 31.0f;
    x[1][256 + 7] = 31.0f, x[1][256 + 200] = -31.0f;
    for (int i = 0; i < 256; i++) x[2][i] = 0.0f;
    for (int i = 256; i < COLS; i++) x[2][i] = (float)((i % 64) - 32) * 0.5f;
    x[2][256 + 3] = 127.0f;
}

int main(void) {
    ggml_cpu_init();
    static float x[NACT][COLS];
    make_acts(x);
    const struct ggml_type_traits_cpu *q8 = ggml_get_type_traits_cpu(GGML_TYPE_Q8_K);
    static uint8_t q8k[NACT][COLS / 256 * 292];
    printf("# llama.cpp ggml-cpu quantize_row_q8_K + vec_dot_<type>_q8_K (kq_q8k_vectors.c)\n");
    for (int a = 0; a < NACT; a++) {
        q8->from_float(x[a], q8k[a], COLS);
        printf("act %d %d\n", a, COLS);
        put_f32s("x", a, x[a], COLS);
        printf("q8k %d", a);
        put_bytes(q8k[a], sizeof q8k[a]);
    }
    const struct { const char *name; enum ggml_type t; } types[] = {
        {"q2_K", GGML_TYPE_Q2_K}, {"q3_K", GGML_TYPE_Q3_K}, {"q4_K", GGML_TYPE_Q4_K},
        {"q5_K", GGML_TYPE_Q5_K}, {"q6_K", GGML_TYPE_Q6_K}, {"iq4_xs", GGML_TYPE_IQ4_XS},
    };
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const enum ggml_type t = types[k].t;
        const struct ggml_type_traits_cpu *tc = ggml_get_type_traits_cpu(t);
        if (tc->vec_dot_type != GGML_TYPE_Q8_K) {
            fprintf(stderr, "%s: vec_dot_type is not Q8_K\n", types[k].name);
            return 1;
        }
        ggml_quantize_init(t);
        static float src[NW * COLS];
        for (int i = 0; i < NW * COLS; i++) src[i] = urand() * (i < COLS ? 0.05f : 1.0f);
        const size_t rb = ggml_row_size(t, COLS);
        uint8_t *wq = malloc(rb * NW);
        ggml_quantize_chunk(t, src, wq, 0, NW, COLS, NULL);
        for (int r = 0; r < NW; r++) {
            printf("w %s %d %d", types[k].name, r, COLS);
            put_bytes(wq + r * rb, rb);
        }
        for (int r = 0; r < NW; r++)
            for (int a = 0; a < NACT; a++) {
                float s;
                tc->vec_dot(COLS, &s, 0, wq + r * rb, 0, q8k[a], 0, 1);
                uint32_t u;
                memcpy(&u, &s, 4);
                printf("dot %s %d %d %08x\n", types[k].name, r, a, u);
            }
        free(wq);
    }
    return 0;
}
