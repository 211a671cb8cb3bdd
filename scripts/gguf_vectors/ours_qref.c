/* ours_qref.c - our quantize_ref / dequant_ref as a program with ggml-qref's file interface, for
 * scripts/gguf_vectors/crosscheck_qref.py (compiled by it against build/liblq_kernels.a; not part
 * of the build).
 *   ours_qref quant TYPE ROWS COLS IN.f32 OUT.blocks OUT.deq.f32 [IMATRIX.f32]
 * With IMATRIX.f32 (COLS floats) it is quantize_ref with lq_quant_params.col_weight = the imatrix
 * (llama-quantize --imatrix; scripts/gguf_vectors/make_imat_vectors.py).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lq_format.h"

static int io(const char *path, const char *mode, void *buf, size_t n) {
    FILE *f = fopen(path, mode);
    if (!f) return 0;
    const size_t k = mode[0] == 'r' ? fread(buf, 1, n, f) : fwrite(buf, 1, n, f);
    return fclose(f) == 0 && k == n;
}

int main(int argc, char **argv) {
    if ((argc != 8 && argc != 9) || strcmp(argv[1], "quant") != 0) {
        fprintf(stderr, "usage: ours_qref quant TYPE ROWS COLS IN.f32 OUT.blocks OUT.deq.f32 [IMATRIX.f32]\n");
        return 2;
    }
    const lq_wfmt f = lq_wfmt_from_name(argv[2]);
    const int64_t rows = atoll(argv[3]), cols = atoll(argv[4]);
    size_t rb;
    if (f == LQ_WFMT_COUNT || !lq_wfmt_sizes(f, rows, cols, NULL, &rb, NULL, NULL)) {
        fprintf(stderr, "ours_qref: error: %s %lldx%lld: no such format or shape\n", argv[2],
                (long long)rows, (long long)cols);
        return 2;
    }
    float *x = malloc((size_t)(rows * cols) * 4), *y = malloc((size_t)(rows * cols) * 4);
    unsigned char *b = malloc((size_t)rows * rb);
    if (!x || !y || !b || !io(argv[5], "rb", x, (size_t)(rows * cols) * 4)) {
        fprintf(stderr, "ours_qref: error: reading %s\n", argv[5]);
        return 1;
    }
    lq_weight w = {.fmt = f, .rows = rows, .cols = cols, .data = b, .row_bytes = rb};
    float *imat = argc == 9 ? malloc((size_t)cols * 4) : NULL;
    if (argc == 9 && (!imat || !io(argv[8], "rb", imat, (size_t)cols * 4))) {
        fprintf(stderr, "ours_qref: error: reading %s\n", argv[8]);
        return 1;
    }
    lq_wfmt_get(f)->quantize_ref(x, &(lq_quant_params){.col_weight = imat}, &w);
    lq_wfmt_get(f)->dequant_ref(&w, 0, rows, y);
    if (!io(argv[6], "wb", b, (size_t)rows * rb) || !io(argv[7], "wb", y, (size_t)(rows * cols) * 4)) {
        fprintf(stderr, "ours_qref: error: writing outputs\n");
        return 1;
    }
    return 0;
}
