/* lq_test_util.h - helpers shared by the Criterion suites. */
#ifndef LQ_TEST_UTIL_H
#define LQ_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Directory of the shared models and data: $LQ_SHARED, else ../shared next to the source tree. */
static inline const char *lq_test_shared_dir(void) {
    const char *e = getenv("LQ_SHARED");
    return (e && *e) ? e : LQ_SHARED_DEFAULT;
}

/* Join the shared dir and a relative path into a static buffer (one per call site is enough). */
static inline const char *lq_test_shared(const char *rel, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%s", lq_test_shared_dir(), rel);
    return buf;
}

/* Path of a built tool (quant-info, ...) for end-to-end tests. */
static inline const char *lq_test_tool(const char *name, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%s", LQ_TOOLS_DIR, name);
    return buf;
}

/* Read a whole file into a NUL-terminated malloc'd buffer; NULL on failure. */
static inline char *lq_test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    fclose(f);
    if (buf) { buf[n] = 0; if (len) *len = (size_t)n; }
    return buf;
}

#endif
