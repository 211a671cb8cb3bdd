/* clock.c - the monotonic clock every timing in lq_eval (and the tools' summaries) reads. */
#include "lq_eval.h"

#include <time.h>

double lq_eval_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
