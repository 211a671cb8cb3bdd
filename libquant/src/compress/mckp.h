/* mckp.h - the multiple-choice knapsack behind --target-bpw (GGUF block types in gguf_automix.c,
 * compressed-tensors schemes in ct_automix.c): each tensor picks one of its (bytes, error)
 * candidates so that the summed bytes fit a budget and the summed error is least. */
#ifndef LQ_MCKP_H
#define LQ_MCKP_H

#include <stdint.h>

#include "libquant/lq_status.h"

typedef struct lq_mckp_point {
    uint64_t bytes;
    double err;
    int id;              /* the caller's candidate (a ggml type, a preset index) */
} lq_mckp_point;

/* Sort v[0..n) by bytes (then error), drop points that cost more for no less error, and keep the
 * lower convex hull, in place: the only points the greedy below can reach optimally. Returns the
 * number kept (v[0] is then the cheapest). */
int lq_mckp_hull(lq_mckp_point *v, int n);

typedef struct lq_mckp_result {
    uint64_t bytes;      /* chosen bytes, <= budget */
    uint64_t max_step;   /* largest single hull step of any tensor: budget - bytes < it */
    double err;          /* summed error of the choice */
} lq_mckp_result;

/* Tensor i's hull is pts[i * stride .. i * stride + nh[i]) (each nh[i] >= 1). Start every tensor
 * at its cheapest point, then take hull steps in order of error saved per byte while they fit
 * (the Lagrangian / greedy solution). at[i] receives the chosen hull index. LQ_ERR_INVALID_ARG
 * when even the cheapest points exceed the budget. */
lq_status lq_mckp_solve(const lq_mckp_point *pts, int stride, const int *nh, int64_t n, uint64_t budget,
                        int *at, lq_mckp_result *r);

#endif
