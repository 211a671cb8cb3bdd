/* fuzz_safetensors.c - libFuzzer target for the safetensors reader.
 *
 * The input is written to an in-memory file (memfd) and opened through lq_st_open, the same
 * mmap path real files take. Whatever the bytes, open must either fail cleanly or hand out
 * views that lie inside the mapping: every byte of every view is read so ASan catches a view
 * that escapes. Build: CC=clang cmake -DQUANT_FUZZ=ON; run: ./fuzz_safetensors -max_total_time=60
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libquant/lq_safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int g_fd = -1;
static char g_path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (g_fd < 0) {
        g_fd = memfd_create("fuzz_safetensors", 0);
        if (g_fd < 0) return 0;
        snprintf(g_path, sizeof g_path, "/proc/self/fd/%d", g_fd);
    }
    if (ftruncate(g_fd, 0) != 0 || pwrite(g_fd, data, size, 0) != (ssize_t)size) return 0;
    lq_st_file *f;
    if (lq_st_open(g_path, &f) != LQ_OK) return 0;
    volatile unsigned sink = 0;
    for (int64_t i = 0; i < lq_st_count(f); i++) {
        const lq_tensor *t = lq_st_get(f, i);
        const unsigned char *p = t->data;
        for (size_t k = 0; k < t->nbytes; k++) sink += p[k];
        if (lq_st_find(f, t->name) == NULL) __builtin_trap(); /* every listed name must be findable */
        if (lq_tensor_numel(t) < 0) __builtin_trap();
    }
    (void)lq_st_metadata(f, "format");
    lq_st_close(f);
    (void)sink;
    return 0;
}
