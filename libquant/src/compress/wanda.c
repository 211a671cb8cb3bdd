/* wanda.c - Wanda's mask of one Linear (lq_sparsegpt.h): |W_rc| * ||X_c||_2, compared within
 * each output row (llm-compressor 0.14's wanda_sparsify.py). Scores in double; the order among
 * equal scores is the stable sort's (lower column pruned first), so the mask is deterministic.
 */
#include "libquant/lq_sparsegpt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct scol {
    double s;
    int64_t c;
} scol;

static int cmp_asc(const void *a, const void *b) {
    const scol *x = a, *y = b;
    if (x->s != y->s) return x->s < y->s ? -1 : 1;
    return (x->c > y->c) - (x->c < y->c);
}

bool lq_wanda_mask(const float *W, int64_t rows, int64_t cols, const double *sumsq, double sparsity, int nm_n,
                   int nm_m, uint8_t *keep) {
    scol *k = malloc((size_t)cols * sizeof *k);
    double *norm = malloc((size_t)cols * sizeof *norm);
    if (!k || !norm) {
        free(k);
        free(norm);
        return false;
    }
    for (int64_t c = 0; c < cols; c++) norm[c] = sqrt(sumsq[c]);
    /* llm-compressor: int(cols * sparsity) per row */
    const int64_t n_prune = nm_m > 0 ? 0 : (int64_t)((double)cols * sparsity);
    for (int64_t r = 0; r < rows; r++) {
        const float *w = W + r * cols;
        uint8_t *kr = keep + r * cols;
        memset(kr, 1, (size_t)cols);
        if (nm_m > 0) {
            for (int64_t g = 0; g < cols; g += nm_m) {
                for (int j = 0; j < nm_m; j++) k[j] = (scol){fabs((double)w[g + j]) * norm[g + j], g + j};
                qsort(k, (size_t)nm_m, sizeof *k, cmp_asc);
                for (int j = 0; j < nm_m - nm_n; j++) kr[k[j].c] = 0;
            }
        } else {
            for (int64_t c = 0; c < cols; c++) k[c] = (scol){fabs((double)w[c]) * norm[c], c};
            qsort(k, (size_t)cols, sizeof *k, cmp_asc);
            for (int64_t j = 0; j < n_prune; j++) kr[k[j].c] = 0;
        }
    }
    free(k);
    free(norm);
    return true;
}
