/* openblas_shapes.c - does OpenBLAS's sgemm give one output element the same bits whatever the
 * call's shape? (docs/PERFORMANCE.md, "f32 prefill tiles that do not depend on the thread count").
 * Row-major X (M x K) times W^T (W: N x K, K = 576), one thread, the same X rows and W rows in
 * every call; prints which calls differ from the reference call's bits.
 *   cc -O2 scripts/openblas_shapes.c -o /tmp/openblas_shapes -lopenblas && /tmp/openblas_shapes
 * Not a test: it measures the BLAS the machine has (the answer depends on OpenBLAS's core type). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K 576
static float X[64 * K], W[256 * K], Y[64 * 256], R[256];

int main(void) {
    srand(1);
    for (int i = 0; i < 64 * K; i++) X[i] = rand() / (float)RAND_MAX - 0.5f;
    for (int i = 0; i < 256 * K; i++) W[i] = rand() / (float)RAND_MAX - 0.5f;
    openblas_set_num_threads(1);
    printf("%s\n", openblas_get_config());
    /* 1. row 0 of an M-row call against the one-row call */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, 1, 256, K, 1.0f, X, K, W, K, 0.0f, R, 256);
    for (int M = 2; M <= 8; M++) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, 256, K, 1.0f, X, K, W, K, 0.0f, Y, 256);
        printf("M = %d: row 0 %s the M = 1 result\n", M, memcmp(Y, R, sizeof R) ? "differs from" : "equals");
    }
    /* 2. M a multiple of 4, N a multiple of 16 at any offset, against M = 4, N = 256 */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, 4, 256, K, 1.0f, X, K, W, K, 0.0f, Y, 256);
    memcpy(R, Y, sizeof R);
    int bad = 0, tot = 0;
    for (int M = 4; M <= 64; M += 4)
        for (int N = 16; N <= 256; N += 16)
            for (int n0 = 0; n0 + N <= 256; n0 += 16, tot++) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, X, K, W + n0 * K, K, 0.0f, Y, N);
                bad += memcmp(Y, R + n0, (size_t)N * sizeof(float)) != 0;
            }
    printf("(M, N, offset) shapes whose row 0 differs from the M = 4, N = 256 call: %d of %d\n", bad, tot);
    return 0;
}
