/* lq_bandwidth.h - measured memory read bandwidth, the yardstick for memory-bound kernels.
 *
 * Decode is a matvec over every weight once per token, so its ceiling is the bandwidth of a
 * read-only streaming pass. Benchmarks call this in the same run as the kernel they time, so the
 * "achieved / measured bandwidth" ratio compares numbers taken on the same machine and load.
 */
#ifndef LQ_BANDWIDTH_H
#define LQ_BANDWIDTH_H

#include <stddef.h>
#include "lq_pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Median GB/s (1e9 bytes per second) of `reps` read-only passes over a freshly allocated buffer
 * of `bytes` bytes, split across every thread of `pool` (NULL: the caller alone), using AVX2
 * loads when the CPU has them. The buffer is written once (in parallel, so its pages land near
 * the threads that read them) and freed before returning. Use a buffer much larger than the
 * last-level cache (e.g. 512 MB) to measure DRAM. reps < 1 is treated as 1.
 * Returns 0.0 if the buffer cannot be allocated. Not thread-safe with other runs on `pool`. */
double lq_measure_read_bandwidth(lq_pool *pool, size_t bytes, int reps);

#ifdef __cplusplus
}
#endif
#endif
