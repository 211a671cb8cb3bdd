/* cuda_module.c - dlopen of the CUDA module on the first request for a CUDA device.
 *
 * The module is never unloaded: device memory, streams and cuBLAS handles made through it may
 * live until exit, and unloading cudart under them is not supported by the runtime.
 */
#ifdef LQ_HAVE_CUDA

#include "cuda_module.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef LQ_CUDA_MODULE_REL
#define LQ_CUDA_MODULE_REL "../lib/libquant" /* CMake passes the install's bin -> lib/libquant */
#endif

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static const lq_cuda_api *g_api; /* set once by load_once, read-only afterwards */
static char g_why[1024];         /* load_once's one-line failure, repeated to every caller */

/* Directory of path (in place: cuts at the last '/'); false when there is none. */
static bool cut_dir(char *path) {
    char *slash = strrchr(path, '/');
    if (!slash) return false;
    *slash = 0;
    return true;
}

/* dlopen + dlsym + ABI check of one file. NULL with *why set on failure. */
static const lq_cuda_api *try_open(const char *file, char *why, size_t cap) {
    void *h = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(why, cap, "%s", dlerror());
        return NULL;
    }
    lq_cuda_module_api_fn entry = (lq_cuda_module_api_fn)(uintptr_t)dlsym(h, LQ_CUDA_MODULE_ENTRY);
    const lq_cuda_api *api = entry ? entry() : NULL;
    if (!api) {
        snprintf(why, cap, "%s: no %s symbol", file, LQ_CUDA_MODULE_ENTRY);
    } else if (api->abi != LQ_CUDA_MODULE_ABI || api->size < sizeof(lq_cuda_api)) {
        snprintf(why, cap, "%s: module ABI %u (table %u bytes), this libquant needs ABI %d (%zu bytes)", file,
                 api->abi, api->size, LQ_CUDA_MODULE_ABI, sizeof(lq_cuda_api));
        api = NULL;
    }
    if (!api) dlclose(h);
    return api;
}

static void load_once(void) {
    const char *env = getenv("LQ_CUDA_MODULE");
    if (env && *env) { /* an explicit choice: no fallback that would hide a wrong path */
        char why[512];
        if (!(g_api = try_open(env, why, sizeof why)))
            snprintf(g_why, sizeof g_why, "--device cuda: cannot load the CUDA module LQ_CUDA_MODULE=%s: %s", env, why);
        return;
    }
    /* Candidates: the build tree puts the module next to the tools; an install puts it in
     * <libdir>/libquant, reached from <bindir> by LQ_CUDA_MODULE_REL, or from a shared
     * libquant.so's own directory (an application linking it); last, the loader's path. */
    char cand[4][PATH_MAX + 64];
    int n = 0;
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = 0;
        if (cut_dir(exe)) {
            snprintf(cand[n++], sizeof cand[0], "%s/%s", exe, LQ_CUDA_MODULE_FILE);
            snprintf(cand[n++], sizeof cand[0], "%s/%s/%s", exe, LQ_CUDA_MODULE_REL, LQ_CUDA_MODULE_FILE);
        }
    }
    Dl_info info;
    char self[PATH_MAX] = "", exe_real[PATH_MAX] = "";
    if (dladdr((void *)(uintptr_t)lq_cuda_module_get, &info) && info.dli_fname &&
        realpath(info.dli_fname, self) && realpath("/proc/self/exe", exe_real) && strcmp(self, exe_real) != 0 &&
        cut_dir(self))
        snprintf(cand[n++], sizeof cand[0], "%s/libquant/%s", self, LQ_CUDA_MODULE_FILE);
    snprintf(cand[n++], sizeof cand[0], "%s", LQ_CUDA_MODULE_FILE);

    /* The reason reported is the first existing file's (why it would not load: a missing
     * libcudart, an ABI change), else the last lookup's (the soname's "cannot open"). */
    char tried[sizeof cand + 8] = "", first_existing[512] = "", last[512] = "";
    for (int i = 0; i < n; i++) {
        if ((g_api = try_open(cand[i], last, sizeof last))) return;
        if (!*first_existing && strchr(cand[i], '/') && access(cand[i], F_OK) == 0)
            snprintf(first_existing, sizeof first_existing, "%s", last);
        size_t t = strlen(tried);
        snprintf(tried + t, sizeof tried - t, "%s%s", t ? ", " : "", cand[i]);
    }
    snprintf(g_why, sizeof g_why, "--device cuda: cannot load the CUDA module (tried %s; or set LQ_CUDA_MODULE to its path): %s",
             tried, *first_existing ? first_existing : last);
}

lq_status lq_cuda_module_get(const lq_cuda_api **out) {
    pthread_once(&g_once, load_once);
    *out = g_api;
    return g_api ? LQ_OK : lq_fail(LQ_ERR_UNSUPPORTED, "%s", g_why);
}

#else
/* Without CUDA this file is empty: backend.c refuses --device cuda with a one-line reason. */
typedef int lq_cuda_module_unused;
#endif
