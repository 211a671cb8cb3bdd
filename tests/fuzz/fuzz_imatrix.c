/* fuzz_imatrix.c - libFuzzer target: arbitrary bytes as an imatrix file (llama.cpp's GGUF imatrix
 * or legacy .dat, lq_imatrix_load). Loading must fail cleanly or give entries whose every sum can
 * be read and whose means can be taken. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "libquant/lq_calib.h"

static volatile double g_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/lq_fuzz_imatrix_%d.dat", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    lq_imatrix *im = NULL;
    if (lq_imatrix_load(path, &im) == LQ_OK) {
        const char *name;
        int64_t cols, n;
        const double *sums;
        for (int64_t i = 0; lq_imatrix_entry(im, i, &name, &cols, &n, &sums); i++) {
            for (int64_t j = 0; j < cols; j++) g_sink += sums[j];
            const float *m = lq_imatrix_get(im, name, cols, NULL);
            if (m) g_sink += m[cols - 1];
        }
        for (int64_t i = 0; i < lq_imatrix_dataset_count(im); i++) g_sink += (double)lq_imatrix_dataset(im, i)[0];
        lq_imatrix_free(im);
    }
    unlink(path);
    return 0;
}
