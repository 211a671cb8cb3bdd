/* test_pool.c - lq_pool runs every task exactly once, on valid thread ids, under contention. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "lq_pool.h"

typedef struct count_ctx {
    atomic_int *hits;   /* (n) times each task ran */
    int n_threads;      /* valid tids are [0, n_threads) */
    atomic_int bad_tid;
    int spin;           /* busy work per task, to interleave threads */
} count_ctx;

static void count_task(void *vctx, int64_t task, int tid) {
    count_ctx *c = vctx;
    if (tid < 0 || tid >= c->n_threads) atomic_fetch_add(&c->bad_tid, 1);
    volatile int sink = 0;
    for (int i = 0; i < c->spin; i++) sink += i;
    atomic_fetch_add(&c->hits[task], 1);
}

/* Run `runs` rounds of n tasks; returns how many (round, task) pairs did not run exactly once
 * (and how many tids were out of range). No cr_assert inside: it is also called off the main
 * thread, where Criterion's assertions must not be used. */
static int count_errors(lq_pool *p, int64_t n, int runs, int spin, char *msg, size_t cap) {
    count_ctx c = {.hits = calloc((size_t)n, sizeof(atomic_int)), .n_threads = lq_pool_size(p),
                   .spin = spin};
    if (!c.hits) { snprintf(msg, cap, "out of memory"); return 1; }
    atomic_init(&c.bad_tid, 0);
    int errors = 0;
    for (int r = 1; r <= runs; r++) {
        lq_pool_run(p, count_task, &c, n);
        for (int64_t i = 0; i < n; i++) {
            int h = atomic_load(&c.hits[i]);
            if (h != r && errors++ == 0)
                snprintf(msg, cap, "run %d of %lld tasks: task %lld ran %d times in total, expected %d",
                         r, (long long)n, (long long)i, h, r);
        }
    }
    if (atomic_load(&c.bad_tid) && errors++ == 0)
        snprintf(msg, cap, "tasks saw a tid outside [0, %d)", c.n_threads);
    free(c.hits);
    return errors;
}

static void check_exactly_once(lq_pool *p, int64_t n, int runs, int spin) {
    char msg[256] = "";
    int e = count_errors(p, n, runs, spin, msg, sizeof msg);
    cr_assert_eq(e, 0, "%d errors; first: %s", e, msg);
}

Test(pool, sizes) {
    cr_assert_eq(lq_pool_size(NULL), 1);
    lq_pool *p = lq_pool_create(3);
    cr_assert_not_null(p);
    cr_assert_eq(lq_pool_size(p), 3);
    lq_pool_free(p);
    p = lq_pool_create(0);
    cr_assert_not_null(p);
    cr_assert_eq(lq_pool_size(p), (int)sysconf(_SC_NPROCESSORS_ONLN));
    lq_pool_free(p);
    lq_pool_free(NULL); /* no-op */
}

Test(pool, null_pool_runs_on_caller) {
    check_exactly_once(NULL, 1000, 3, 0);
}

Test(pool, every_task_once_many_small_runs) {
    /* Thousands of short runs is the decode pattern: stresses wake-up and completion races.
     * 4 and 8 threads on a 2-core machine oversubscribe the cores on purpose. */
    const int nth[] = {1, 2, 3, 4, 8};
    const int64_t ns[] = {1, 2, 3, 7, 64, 1001};
    for (size_t a = 0; a < sizeof nth / sizeof nth[0]; a++) {
        lq_pool *p = lq_pool_create(nth[a]);
        cr_assert_not_null(p);
        for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++)
            check_exactly_once(p, ns[b], 300, 0);
        lq_pool_free(p);
    }
}

Test(pool, every_task_once_uneven_work) {
    lq_pool *p = lq_pool_create(4);
    cr_assert_not_null(p);
    check_exactly_once(p, 5000, 20, 200);
    lq_pool_free(p);
}

Test(pool, zero_tasks_is_noop) {
    lq_pool *p = lq_pool_create(2);
    count_ctx c = {.hits = NULL, .n_threads = 2};
    lq_pool_run(p, count_task, &c, 0); /* would crash on hits == NULL if it called the task */
    lq_pool_free(p);
}

/* Two threads sharing one pool: runs are serialized, neither loses tasks. */
typedef struct hammer_arg {
    lq_pool *p;
    int errors;
    char msg[256];
} hammer_arg;

static void *hammer(void *arg) {
    hammer_arg *h = arg;
    h->errors = count_errors(h->p, 97, 200, 10, h->msg, sizeof h->msg);
    return NULL;
}

Test(pool, concurrent_callers) {
    lq_pool *p = lq_pool_create(3);
    cr_assert_not_null(p);
    hammer_arg a = {.p = p}, b = {.p = p};
    pthread_t ta, tb;
    cr_assert_eq(pthread_create(&ta, NULL, hammer, &a), 0);
    cr_assert_eq(pthread_create(&tb, NULL, hammer, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    lq_pool_free(p);
    cr_assert_eq(a.errors, 0, "caller A: %s", a.msg);
    cr_assert_eq(b.errors, 0, "caller B: %s", b.msg);
}

typedef struct scratch_ctx {
    lq_pool *pool;
    uintptr_t ptr[8];
    atomic_int misaligned;
} scratch_ctx;

static void scratch_task(void *vctx, int64_t task, int tid) {
    scratch_ctx *c = vctx;
    size_t bytes = 1000 + (size_t)task * 37;
    unsigned char *s = lq_pool_scratch(c->pool, tid, bytes);
    if (!s || ((uintptr_t)s & 63)) { atomic_fetch_add(&c->misaligned, 1); return; }
    for (size_t i = 0; i < bytes; i++) s[i] = (unsigned char)tid; /* ASan: whole size usable */
    for (size_t i = 0; i < bytes; i++)
        if (s[i] != (unsigned char)tid) atomic_fetch_add(&c->misaligned, 1); /* shared? */
}

Test(pool, scratch_private_aligned) {
    scratch_ctx c = {.pool = lq_pool_create(4)};
    atomic_init(&c.misaligned, 0);
    cr_assert_not_null(c.pool);
    for (int r = 0; r < 50; r++) lq_pool_run(c.pool, scratch_task, &c, 64);
    cr_assert_eq(atomic_load(&c.misaligned), 0);
    cr_assert_null(lq_pool_scratch(c.pool, 4, 16), "tid out of range must give NULL");
    void *a = lq_pool_scratch(c.pool, 1, 100), *b = lq_pool_scratch(c.pool, 2, 100);
    cr_assert_neq(a, b, "threads must not share scratch");
    lq_pool_free(c.pool);
    void *n0 = lq_pool_scratch(NULL, 0, 4096);
    cr_assert_not_null(n0);
    cr_assert_eq((uintptr_t)n0 & 63, 0);
}
