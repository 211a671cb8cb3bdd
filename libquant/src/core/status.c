/* status.c - status names and the per-thread last-error message. */
#include "libquant/lq_status.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char g_last_error[1024];

const char *lq_status_name(lq_status s) {
    static const char *const names[LQ_STATUS_COUNT] = {
        [LQ_OK] = "ok",
        [LQ_ERR_IO] = "io",
        [LQ_ERR_FORMAT] = "format",
        [LQ_ERR_UNSUPPORTED] = "unsupported",
        [LQ_ERR_INVALID_ARG] = "invalid-argument",
        [LQ_ERR_NOMEM] = "out-of-memory",
        [LQ_ERR_NOT_FOUND] = "not-found",
        [LQ_ERR_MISMATCH] = "mismatch",
        [LQ_ERR_EXISTS] = "exists",
        [LQ_ERR_INTERRUPTED] = "interrupted",
    };
    if ((unsigned)s >= LQ_STATUS_COUNT) return "unknown";
    return names[s];
}

const char *lq_last_error(void) { return g_last_error; }

lq_status lq_fail(lq_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_last_error, sizeof g_last_error, fmt, ap);
    va_end(ap);
    /* Messages echo names read from files (JSON keys and strings, tensor names); a newline in
     * one would split the tool's one-line error (found by fuzz_config_json). */
    for (char *p = g_last_error; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = ' ';
    return s;
}
