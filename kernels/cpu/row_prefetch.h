/* row_prefetch.h - software prefetch of the next group of weight rows (kernel internals).
 *
 * A matvec that walks a group of g rows side by side (one activation load shared by g rows)
 * reads g streams that are one row long and restart at the next group. For the short rows of
 * small models (a 576-column Q4_0 row is 324 bytes, 5 cache lines) the hardware prefetcher never
 * learns them, so every group waits on DRAM. These helpers fetch the next group's rows, which are
 * contiguous, as one sequential run while the current group computes. */
#ifndef LQ_ROW_PREFETCH_H
#define LQ_ROW_PREFETCH_H
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

/* The next group's rows, spread over the n steps of the current group's loop: step i prefetches
 * the lines of [i * step, (i + 1) * step). Prefetches never fault; 0 bytes fetch nothing. Set up
 * once per group (one division), so a step costs a multiply and a prefetch or two. */
typedef struct rp_rows {
    const char *next;
    size_t step, bytes;
} rp_rows;

static inline rp_rows rp_begin(const void *next, size_t bytes, int64_t n) {
    const rp_rows r = {.next = (const char *)next, .step = n > 0 ? (bytes + (size_t)n - 1) / (size_t)n : 0,
                       .bytes = bytes};
    return r;
}

static inline void rp_step(const rp_rows *r, int64_t i) {
    const size_t a = (size_t)i * r->step, b = a + r->step < r->bytes ? a + r->step : r->bytes;
    for (size_t o = a & ~(size_t)63; o < b; o += 64) _mm_prefetch(r->next + o, _MM_HINT_T0);
}

/* the bytes of the (up to g) rows after the group of g rows at r that [r0, r1) still holds */
static inline size_t rp_next_group_bytes(int64_t r, int64_t r1, size_t rb, int64_t g) {
    const int64_t left = r1 - (r + g);
    return left <= 0 ? 0 : (size_t)(left < g ? left : g) * rb;
}

#endif
