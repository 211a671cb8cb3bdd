/* cpu.c - run-time CPU feature detection for the fast paths. */
#include "lq_format.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static int g_has_avx2;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void detect(void) {
    const char *force = getenv("LQ_FORCE_REF");
    if (force && *force && strcmp(force, "0") != 0) {
        g_has_avx2 = 0; /* reproducible runs on any machine: the _ref paths are the spec */
        return;
    }
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    /* The *_avx2.c files are compiled with -mavx2 -mfma -mf16c: all three must be present. */
    g_has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                 __builtin_cpu_supports("f16c");
#else
    g_has_avx2 = 0;
#endif
}

int lq_cpu_has_avx2(void) {
    pthread_once(&g_once, detect);
    return g_has_avx2;
}
