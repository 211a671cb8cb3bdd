/* pool.c - persistent worker threads for data-parallel kernels (lq_pool.h).
 *
 * Decode calls lq_pool_run a few hundred times per token, so a run must cost microseconds, not a
 * thread create. Workers live for the pool's lifetime. A run publishes (fn, ctx, n_tasks), bumps a
 * generation counter and wakes the workers; every thread (caller included) then claims task
 * indices from one atomic counter, which balances uneven tasks without a schedule. Workers spin
 * briefly before sleeping on a condition variable: the next matmul usually arrives within
 * microseconds, and sleeping in between would add a futex wake to every call. The spin is short
 * because the machine may be shared and an idle spinner steals a core from real work.
 *
 * A run waits until every worker has checked in for its generation (not merely until all tasks
 * are done), so no worker can still be reading the previous run's fn/ctx when the next run
 * overwrites them. Concurrent lq_pool_run calls on one pool are serialized by run_mu.
 *
 * What a run costs when everyone is awake (decode: a few hundred runs per token): the publish and
 * the join touch only atomics, as ggml's threadpool barrier does (an atomic counter and a
 * generation word polled with relaxed loads); the mutex and the condition variables are taken
 * only when a thread has gone to sleep (the `sleepers` / `caller_asleep` flags, checked with
 * sequentially consistent operations on both sides, so a wake-up cannot be lost). The job fields
 * share the generation's cache line: a worker that sees the new generation has the job in the
 * same line transfer. Every task, the first included, is claimed from the shared counter: ggml
 * gives each thread its first chunk by id, which saves one atomic per thread, but on a shared
 * machine a worker that has lost its core would then hold its task (prefill runs have only a few
 * large tiles per thread), while with the counter the caller takes every task the worker has not
 * claimed. (Tried: no difference measurable under load 8-12 either way.)
 */
#include "lq_pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LQ_CPU_RELAX() _mm_pause()
#else
#define LQ_CPU_RELAX() ((void)0)
#endif

/* ~ tens of microseconds of polling before a worker or the caller goes to sleep. */
#define LQ_POOL_SPIN 4000

/* One per thread, padded so two threads' scratch descriptors never share a cache line. */
typedef struct lq_scratch {
    void *buf;
    size_t cap;
    char pad[64 - sizeof(void *) - sizeof(size_t)];
} lq_scratch;

typedef struct lq_worker {
    struct lq_pool *pool;
    int tid;
} lq_worker;

struct lq_pool {
    int n_threads;             /* workers + the caller */
    pthread_t *threads;        /* (n_threads - 1) */
    lq_worker *workers;        /* (n_threads - 1) */
    lq_scratch *scratch;       /* (n_threads) */

    pthread_mutex_t run_mu;    /* serializes lq_pool_run callers */
    pthread_mutex_t mu;        /* guards sleeping on the two condition variables */
    pthread_cond_t cv_start;   /* workers wait here for a new generation */
    pthread_cond_t cv_done;    /* the caller waits here for the last worker */

    /* The current job, in the generation's line: written by the caller before the generation
     * bump (release) and read by workers after they observe it (acquire). */
    _Alignas(64) atomic_uint_fast64_t generation;
    lq_task_fn fn;
    void *ctx;
    int64_t n_tasks;
    atomic_int stop;

    _Alignas(64) atomic_int_fast64_t next_task; /* the next task nobody has claimed */
    _Alignas(64) atomic_int pending;            /* workers that have not finished this generation */
    atomic_int caller_asleep;                   /* the caller waits on cv_done */
    _Alignas(64) atomic_int sleepers;           /* workers waiting (or about to) on cv_start */
};

static void run_tasks(lq_pool *p, int tid) {
    const int64_t n = p->n_tasks;
    lq_task_fn fn = p->fn;
    void *ctx = p->ctx;
    for (;;) {
        int64_t i = atomic_fetch_add_explicit(&p->next_task, 1, memory_order_relaxed);
        if (i >= n) break;
        fn(ctx, i, tid);
    }
}

static void *worker_main(void *arg) {
    lq_worker *w = arg;
    lq_pool *p = w->pool;
    uint64_t seen = 0;
    for (;;) {
        uint64_t g = atomic_load_explicit(&p->generation, memory_order_acquire);
        for (int spin = 0; g == seen && spin < LQ_POOL_SPIN; spin++) {
            LQ_CPU_RELAX();
            g = atomic_load_explicit(&p->generation, memory_order_acquire);
        }
        if (g == seen) {
            /* Announce the sleep before the last look at the generation (seq_cst, paired with
             * publish): either that look sees the new run or publish sees the sleeper. */
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while ((g = atomic_load(&p->generation)) == seen) pthread_cond_wait(&p->cv_start, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        seen = g;
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
        run_tasks(p, w->tid);
        if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->caller_asleep)) {
            /* Last one out and the caller sleeps: wake it under mu so the wake cannot fall between
             * its check of pending and its wait. */
            pthread_mutex_lock(&p->mu);
            pthread_cond_broadcast(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

/* Publish a new generation; wake sleepers if there are any. The bump and the look at `sleepers`
 * are seq_cst, the mirror of worker_main's announce-then-look: a worker that announced itself
 * before the bump is seen here and woken under mu (which it holds until it waits); one that
 * announces itself after the bump sees the new generation and does not wait. */
static void publish(lq_pool *p) {
    atomic_fetch_add(&p->generation, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv_start);
        pthread_mutex_unlock(&p->mu);
    }
}

lq_pool *lq_pool_create(int n_threads) {
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)n : 1;
    }
    lq_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = n_threads;
    p->scratch = calloc((size_t)n_threads, sizeof *p->scratch);
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    p->workers = calloc((size_t)n_threads, sizeof *p->workers);
    if (!p->scratch || !p->threads || !p->workers) {
        free(p->scratch); free(p->threads); free(p->workers); free(p);
        return NULL;
    }
    pthread_mutex_init(&p->run_mu, NULL);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_start, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    atomic_init(&p->generation, 0);
    atomic_init(&p->next_task, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->stop, 0);
    atomic_init(&p->caller_asleep, 0);
    atomic_init(&p->sleepers, 0);
    int started = 0;
    for (int i = 1; i < n_threads; i++) {
        p->workers[i - 1] = (lq_worker){.pool = p, .tid = i};
        if (pthread_create(&p->threads[i - 1], NULL, worker_main, &p->workers[i - 1]) != 0) break;
        started++;
    }
    if (started != n_threads - 1) {
        p->n_threads = started + 1; /* free() joins exactly the started workers */
        lq_pool_free(p);
        return NULL;
    }
    return p;
}

void lq_pool_free(lq_pool *p) {
    if (!p) return;
    atomic_store_explicit(&p->stop, 1, memory_order_release);
    publish(p);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->threads[i - 1], NULL);
    for (int i = 0; i < p->n_threads; i++) free(p->scratch[i].buf);
    pthread_cond_destroy(&p->cv_done);
    pthread_cond_destroy(&p->cv_start);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->run_mu);
    free(p->scratch);
    free(p->threads);
    free(p->workers);
    free(p);
}

int lq_pool_size(const lq_pool *p) { return p ? p->n_threads : 1; }

void lq_pool_run(lq_pool *p, lq_task_fn fn, void *ctx, int64_t n_tasks) {
    if (n_tasks <= 0) return;
    if (!p || p->n_threads == 1 || n_tasks == 1) {
        /* Nothing to share: skip the wake-up entirely. */
        for (int64_t i = 0; i < n_tasks; i++) fn(ctx, i, 0);
        return;
    }
    pthread_mutex_lock(&p->run_mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store_explicit(&p->next_task, 0, memory_order_relaxed);
    atomic_store_explicit(&p->pending, p->n_threads - 1, memory_order_relaxed);
    publish(p); /* release: the job fields above are visible to every worker that sees it */
    run_tasks(p, 0);
    for (int spin = 0; spin < LQ_POOL_SPIN; spin++) {
        if (atomic_load_explicit(&p->pending, memory_order_acquire) == 0) break;
        LQ_CPU_RELAX();
    }
    if (atomic_load_explicit(&p->pending, memory_order_acquire) != 0) {
        /* Same handshake as the workers': flag, then look (seq_cst), so the last worker either
         * is seen done here or sees the flag and wakes us. */
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->caller_asleep, 1);
        while (atomic_load(&p->pending) != 0) pthread_cond_wait(&p->cv_done, &p->mu);
        atomic_store(&p->caller_asleep, 0);
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_unlock(&p->run_mu);
}

/* Scratch for a NULL pool: one buffer per calling thread (reachable through TLS until exit). */
static _Thread_local lq_scratch tls_scratch;

void *lq_pool_scratch(lq_pool *p, int tid, size_t bytes) {
    lq_scratch *s;
    if (!p) {
        if (tid != 0) return NULL;
        s = &tls_scratch;
    } else {
        if (tid < 0 || tid >= p->n_threads) return NULL;
        s = &p->scratch[tid];
    }
    if (bytes == 0) bytes = 64;
    if (s->cap < bytes) {
        size_t cap = (bytes + 63) & ~(size_t)63; /* aligned_alloc wants a multiple of 64 */
        void *nb = aligned_alloc(64, cap);
        if (!nb) return NULL;
        free(s->buf);
        s->buf = nb;
        s->cap = cap;
    }
    return s->buf;
}
