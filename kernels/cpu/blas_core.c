/* blas_core.c - which OpenBLAS kernels this process should ask for.
 *
 * Why: OpenBLAS (DYNAMIC_ARCH) picks its kernels from the CPU model number when the library
 * loads, and a model it does not know gets its oldest x86-64 kernels. Debian's 0.3.21 does not
 * know Intel's Emerald Rapids Xeons (family 6, model 207), which then run sgemm through
 * "Prescott" SSE3 kernels: SmolLM2's f32 prefill measured 218 tok/s there against 780 with
 * OPENBLAS_CORETYPE=SkylakeX (docs/PERFORMANCE.md). The choice cannot be changed once the library
 * has loaded, so the tools re-execute themselves with OPENBLAS_CORETYPE set
 * (tools/common/tool_cli.c) when this says so; a user's own OPENBLAS_CORETYPE always wins. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lq_format.h"
#include "lq_ops.h"

#ifdef LQ_HAVE_OPENBLAS
char *openblas_get_corename(void);
char *openblas_get_config(void);
#endif

/* OpenBLAS 0.3.x cores with AVX2 (or better) kernels; anything else on an AVX2 CPU is a fallback */
static int is_modern_core(const char *name) {
    static const char *const k[] = {"haswell", "skylakex", "cooperlake", "sapphirerapids", "zen"};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (strcasecmp(name, k[i]) == 0) return 1;
    return 0;
}

const char *lq_blas_core_hint_for(const char *loaded) {
    if (!loaded || is_modern_core(loaded)) return NULL;
    const lq_isa isa = lq_cpu_isa();
    return isa >= LQ_ISA_AVX512 ? "SkylakeX" : isa >= LQ_ISA_AVX2 ? "Haswell" : NULL;
}

const char *lq_blas_core_hint(void) {
#ifdef LQ_HAVE_OPENBLAS
    const char *env = getenv("OPENBLAS_CORETYPE");
    if (env && *env) return NULL; /* the user's choice (or ours, after the re-exec) */
    /* only a DYNAMIC_ARCH build reads OPENBLAS_CORETYPE: a library built for one old target
     * would be re-executed for nothing */
    const char *cfg = openblas_get_config();
    if (!cfg || !strstr(cfg, "DYNAMIC_ARCH")) return NULL;
    return lq_blas_core_hint_for(openblas_get_corename());
#else
    return NULL;
#endif
}
