/* cuda_module.h - finding and loading the CUDA module (libquant_cuda.so) on first use.
 *
 * libquant links no CUDA library: a process pays for cudart and cuBLAS (~200 MB mapped, 0.1 s of
 * relocations per start) only once it asks for a CUDA device. Built only with LQ_HAVE_CUDA.
 */
#ifndef LQ_CUDA_MODULE_LOAD_H
#define LQ_CUDA_MODULE_LOAD_H

#include "libquant/lq_status.h"
#include "lq_cuda_module.h"

/* The module's table, loaded once per process (later calls return the first call's outcome).
 * Search: $LQ_CUDA_MODULE alone when set; else libquant_cuda.so next to the executable, in the
 * install's library dir relative to it (LQ_CUDA_MODULE_REL), in libquant/ next to a shared
 * libquant.so, then by soname through the loader's path. LQ_ERR_UNSUPPORTED with one line naming
 * what was tried and the loader's reason when none loads or its table has another ABI.
 * Thread-safe. */
lq_status lq_cuda_module_get(const lq_cuda_api **out);

#endif
