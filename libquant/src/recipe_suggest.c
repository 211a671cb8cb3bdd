/* recipe_suggest.c - "did you mean" for misspelled recipe names (Levenshtein distance). */
#include <string.h>

#include "libquant/lq_recipe.h"

int lq_edit_distance(const char *a, const char *b) {
    /* Names longer than this are not typos of a recipe keyword; capping keeps the row on the
     * stack and the cost bounded for fuzzed megabyte keys. */
    enum { CAP = 255 };
    size_t n = strlen(a), m = strlen(b);
    if (n > CAP || m > CAP) return CAP;
    unsigned char row[CAP + 1];
    for (size_t j = 0; j <= m; j++) row[j] = (unsigned char)j;
    for (size_t i = 1; i <= n; i++) {
        unsigned diag = row[0]; /* D[i-1][j-1] */
        row[0] = (unsigned char)i;
        for (size_t j = 1; j <= m; j++) {
            unsigned up = row[j]; /* D[i-1][j] */
            unsigned best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if ((unsigned)row[j - 1] + 1 < best) best = row[j - 1] + 1u;
            diag = up;
            row[j] = (unsigned char)(best > CAP ? CAP : best);
        }
    }
    return row[m];
}

const char *lq_suggest(const char *word, const char *const *candidates, int n) {
    const char *best = NULL;
    int best_d = 1 << 30;
    for (int i = 0; i < n; i++) {
        int d = lq_edit_distance(word, candidates[i]);
        if (d < best_d) {
            best_d = d;
            best = candidates[i];
        }
    }
    if (!best) return NULL;
    size_t lw = strlen(word), lc = strlen(best);
    int limit = (int)((lw > lc ? lw : lc) / 3);
    if (limit < 1) limit = 1;
    return best_d <= limit ? best : NULL;
}
