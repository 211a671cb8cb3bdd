/* cpu.c - run-time CPU feature detection for the fast paths. */
#include "lq_format.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

static int g_has_avx2;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void detect(void) {
    const char *force = getenv("LQ_FORCE_REF");
    if (force && *force && strcmp(force, "0") != 0) {
        g_has_avx2 = 0; /* reproducible runs on any machine: the _ref paths are the spec */
        return;
    }
#if defined(__x86_64__) || defined(__i386__)
    /* The *_avx2.c files are compiled with -mavx2 -mfma -mf16c: all three must be present, and
     * the OS must save the YMM registers. Raw CPUID rather than __builtin_cpu_supports, whose
     * "f16c" name clang 14 (the fuzzing compiler) does not know. */
    unsigned a, b, c, d;
    int ok = 0;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, f16c = (c >> 29) & 1, avx = (c >> 28) & 1;
        if (fma && osxsave && f16c && avx) {
            unsigned xlo, xhi;
            __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
            int ymm_saved = (xlo & 6u) == 6u;
            if (ymm_saved && __get_cpuid_count(7, 0, &a, &b, &c, &d)) ok = (b >> 5) & 1; /* AVX2 */
        }
    }
    g_has_avx2 = ok;
#else
    g_has_avx2 = 0;
#endif
}

int lq_cpu_has_avx2(void) {
    pthread_once(&g_once, detect);
    return g_has_avx2;
}
