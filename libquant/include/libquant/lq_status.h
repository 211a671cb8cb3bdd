/* lq_status.h - status codes and the per-thread error message.
 *
 * Every fallible libquant function returns an lq_status. On failure it also records a one-line,
 * human-readable message (naming the file, tensor or line at fault) that lq_last_error() returns.
 * The library never exits or aborts on bad input: the tools turn a status into one stderr line
 * and a non-zero exit code (tool_exit_code in tools/common/tool_cli.h).
 */
#ifndef LQ_STATUS_H
#define LQ_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lq_status {
    LQ_OK = 0,
    LQ_ERR_IO = 1,          /* open/read/write/mmap/rename failed */
    LQ_ERR_FORMAT = 2,      /* the input file is malformed (truncated, corrupt, inconsistent) */
    LQ_ERR_UNSUPPORTED = 3, /* well-formed but something we do not handle (dtype, architecture) */
    LQ_ERR_INVALID_ARG = 4, /* caller error: bad option value, out-of-range argument */
    LQ_ERR_NOMEM = 5,       /* allocation failed */
    LQ_ERR_NOT_FOUND = 6,   /* a named tensor / key / file is missing */
    LQ_ERR_MISMATCH = 7,    /* two inputs disagree (tokenizer vs model vocab, shapes) */
    LQ_ERR_EXISTS = 8,      /* an output already exists and overwriting was not requested */
    LQ_ERR_INTERRUPTED = 9, /* stopped by a signal; nothing partial was left behind */
    LQ_STATUS_COUNT
} lq_status;

/* Short stable name of a status ("io", "format", ...). Never NULL. */
const char *lq_status_name(lq_status s);

/* The message recorded by the last failing call on this thread ("" if none). Valid until the
 * next failing call on the same thread. */
const char *lq_last_error(void);

/* Record a failure message (printf-style) for this thread and return `s`, so library code can
 * write `return lq_fail(LQ_ERR_FORMAT, "%s: tensor '%s': ...", path, name);`. Control
 * characters in the result (a newline inside a name read from a file) become spaces: the
 * message is always one line. */
lq_status lq_fail(lq_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Propagate a failing status to the caller. */
#define LQ_TRY(expr)                          \
    do {                                      \
        lq_status lq_try_s_ = (expr);         \
        if (lq_try_s_ != LQ_OK) return lq_try_s_; \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
