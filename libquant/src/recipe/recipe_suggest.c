/* recipe_suggest.c - "did you mean" for misspelled recipe names (edit distance with adjacent swaps). */
#include <string.h>

#include "libquant/lq_recipe.h"

int lq_edit_distance(const char *a, const char *b) {
    /* Names longer than this are not typos of a recipe keyword; capping keeps the rows on the
     * stack and the cost bounded for fuzzed megabyte keys. */
    enum { CAP = 255 };
    size_t n = strlen(a), m = strlen(b);
    if (n > CAP || m > CAP) return CAP;
    /* Optimal string alignment: Levenshtein plus the swap of two adjacent characters, the most
     * common typo ("W4A61" for "W4A16" is one edit, not two). Rows i-2, i-1, i of the table. */
    int r0[CAP + 1], r1[CAP + 1], r2[CAP + 1];
    int *pp = r0, *prev = r1, *cur = r2;
    for (size_t j = 0; j <= m; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= m; j++) {
            int best = prev[j - 1] + (a[i - 1] != b[j - 1]);
            if (prev[j] + 1 < best) best = prev[j] + 1;
            if (cur[j - 1] + 1 < best) best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < best)
                best = pp[j - 2] + 1;
            cur[j] = best;
        }
        int *t = pp;
        pp = prev;
        prev = cur;
        cur = t;
    }
    return prev[m];
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
