/* mckp.c - the multiple-choice knapsack of --target-bpw (mckp.h).
 *
 * Per tensor only the lower convex hull of its (bytes, error) points matters: a point above the
 * segment between two neighbours is never the best use of its bytes. Along a hull the error
 * saved per byte falls step by step, so the greedy that always takes the steepest affordable step
 * of any tensor is the Lagrangian solution: optimal except for the last budget it cannot spend,
 * which is less than one tensor's next step. */
#include "mckp.h"

static void sort_points(lq_mckp_point *v, int n) {
    for (int a = 1; a < n; a++)
        for (int b = a; b > 0 && (v[b].bytes < v[b - 1].bytes || (v[b].bytes == v[b - 1].bytes && v[b].err < v[b - 1].err)); b--) {
            lq_mckp_point tmp = v[b];
            v[b] = v[b - 1];
            v[b - 1] = tmp;
        }
}

int lq_mckp_hull(lq_mckp_point *v, int n) {
    sort_points(v, n);
    int h = 0; /* h <= a throughout, so the hull overwrites only points already read */
    for (int a = 0; a < n; a++) {
        if (h > 0 && v[a].err >= v[h - 1].err) continue; /* costs more, no better */
        while (h >= 2) { /* drop v[h-1] if it lies on or above the segment v[h-2] -> v[a] */
            const lq_mckp_point *p0 = &v[h - 2], *p1 = &v[h - 1];
            const double s01 = (p0->err - p1->err) / (double)(p1->bytes - p0->bytes);
            const double s02 = (p0->err - v[a].err) / (double)(v[a].bytes - p0->bytes);
            if (s01 <= s02) h--;
            else break;
        }
        v[h++] = v[a];
    }
    return h;
}

lq_status lq_mckp_solve(const lq_mckp_point *pts, int stride, const int *nh, int64_t n, uint64_t budget,
                        int *at, lq_mckp_result *r) {
    uint64_t used = 0, max_step = 0;
    for (int64_t i = 0; i < n; i++) {
        at[i] = 0;
        used += pts[i * stride].bytes;
        for (int k = 1; k < nh[i]; k++) {
            const uint64_t s = pts[i * stride + k].bytes - pts[i * stride + k - 1].bytes;
            max_step = s > max_step ? s : max_step;
        }
    }
    if (used > budget)
        return lq_fail(LQ_ERR_INVALID_ARG, "target too small: the smallest choices already take %.3f MiB, the budget is %.3f MiB",
                       used / 1048576.0, budget / 1048576.0);
    /* a tensor's steps come in hull order, and a step that does not fit ends that tensor's
     * upgrades (its later steps are less efficient) */
    for (;;) {
        int64_t best = -1;
        double best_slope = 0;
        for (int64_t i = 0; i < n; i++) {
            if (at[i] + 1 >= nh[i]) continue;
            const lq_mckp_point *p0 = &pts[i * stride + at[i]], *p1 = p0 + 1;
            if (used + (p1->bytes - p0->bytes) > budget) continue;
            const double slope = (p0->err - p1->err) / (double)(p1->bytes - p0->bytes);
            if (best < 0 || slope > best_slope) {
                best = i;
                best_slope = slope;
            }
        }
        if (best < 0) break;
        const lq_mckp_point *p0 = &pts[best * stride + at[best]];
        used += (p0 + 1)->bytes - p0->bytes;
        at[best]++;
    }
    double err = 0;
    for (int64_t i = 0; i < n; i++) err += pts[i * stride + at[i]].err;
    *r = (lq_mckp_result){.bytes = used, .max_step = max_step, .err = err};
    return LQ_OK;
}
