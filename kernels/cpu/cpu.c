/* cpu.c - run-time CPU feature detection for the fast paths. */
#include "lq_format.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

static int g_has_avx2, g_has_avx512;
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
            if (ymm_saved && __get_cpuid_count(7, 0, &a, &b, &c, &d)) {
                ok = (b >> 5) & 1; /* AVX2 */
                /* The *_avx512.c files use AVX-512 F, BW, VL, DQ and VNNI (vpdpbusd; they are
                 * compiled with -mavx512dq), all five and the OS saving the opmask and ZMM state
                 * (XCR0 bits 5-7). */
                const int f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1,
                          vnni = (c >> 11) & 1;
                const int zmm_saved = (xlo & 0xE6u) == 0xE6u;
                g_has_avx512 = ok && f && dq && bw && vl && vnni && zmm_saved;
            }
        }
    }
    g_has_avx2 = ok;
    /* LQ_FORCE_AVX2=1 keeps the AVX2 baseline on an AVX-512 machine (what a CPU without AVX-512
     * runs), for comparisons and reproducible runs. */
    const char *cap = getenv("LQ_FORCE_AVX2");
    if (cap && *cap && strcmp(cap, "0") != 0) g_has_avx512 = 0;
#else
    g_has_avx2 = 0;
#endif
}

int lq_cpu_has_avx2(void) {
    pthread_once(&g_once, detect);
    return g_has_avx2;
}

lq_isa lq_cpu_isa(void) {
    pthread_once(&g_once, detect);
    return g_has_avx512 ? LQ_ISA_AVX512 : g_has_avx2 ? LQ_ISA_AVX2 : LQ_ISA_SCALAR;
}

const char *lq_isa_name(lq_isa isa) {
    switch (isa) {
    case LQ_ISA_SCALAR: return "scalar";
    case LQ_ISA_AVX2: return "avx2";
    case LQ_ISA_AVX512: return "avx512";
    default: return "?";
    }
}
