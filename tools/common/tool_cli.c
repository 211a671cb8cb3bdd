/* tool_cli.c - error lines, exit codes, option values and the argument loop (tool_cli.h). */
#include "tool_cli.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lq_ops.h"

static const char *g_name = "quant-?";
static void (*g_usage)(FILE *f);

/* ---- identity and errors --------------------------------------------------------------------- */

/* OpenBLAS picked its SSE3 fallback kernels on a CPU it does not know (lq_blas_core_hint): run
 * this same command again with OPENBLAS_CORETYPE set, before any work or output. The new process
 * sees the variable set and goes on; if anything fails here, this process goes on as it is. */
static void reexec_for_blas(void) {
    const char *core = lq_blas_core_hint();
    if (!core) return;
    FILE *f = fopen("/proc/self/cmdline", "rb");
    if (!f) return;
    static char buf[1 << 16];
    const size_t n = fread(buf, 1, sizeof buf - 1, f);
    const int whole = feof(f);
    fclose(f);
    if (!whole || n == 0) return; /* a command line longer than the buffer: not worth the risk */
    buf[n] = 0;
    char *args[4096];
    size_t k = 0;
    size_t i = 0;
    for (; i < n && k + 1 < sizeof args / sizeof args[0]; i += strlen(buf + i) + 1) args[k++] = buf + i;
    if (i < n) return; /* more arguments than args holds: never run a command with some dropped */
    args[k] = NULL;
    if (setenv("OPENBLAS_CORETYPE", core, 1) != 0) return;
    fflush(NULL);
    execv("/proc/self/exe", args);
    unsetenv("OPENBLAS_CORETYPE"); /* exec failed: go on with the kernels we have */
}

void tool_init(const char *name, void (*usage)(FILE *f)) {
    g_name = name;
    g_usage = usage;
    reexec_for_blas();
}

const char *tool_name(void) { return g_name; }

int tool_exit_code(lq_status s) {
    switch (s) {
    case LQ_OK: return 0;
    case LQ_ERR_INVALID_ARG: return 2;
    case LQ_ERR_FORMAT:
    case LQ_ERR_UNSUPPORTED:
    case LQ_ERR_MISMATCH:
    case LQ_ERR_NOT_FOUND: return 3;
    case LQ_ERR_IO:
    case LQ_ERR_EXISTS: return 4;
    default: return 1;
    }
}

int tool_fail(lq_status s) {
    fprintf(stderr, "%s: error: %s\n", g_name, lq_last_error());
    return tool_exit_code(s);
}

int tool_fail_at(const char *what, const char *path, lq_status s) {
    fprintf(stderr, "%s: error: %s (%s): %s\n", g_name, what, path ? path : "-", lq_last_error());
    return tool_exit_code(s);
}

/* Formats the whole line first so it reaches stderr in one write, not three. */
static void verror(const char *fmt, va_list ap) {
    char msg[8192];
    vsnprintf(msg, sizeof msg, fmt, ap);
    fprintf(stderr, "%s: error: %s\n", g_name, msg);
}

int tool_error(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    verror(fmt, ap);
    va_end(ap);
    return code;
}

int tool_bad_args(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    verror(fmt, ap);
    va_end(ap);
    if (g_usage) g_usage(stderr);
    return 2;
}

int tool_finish_stdout(void) {
    errno = 0;
    if (fflush(stdout) != 0 || ferror(stdout))
        return tool_error(4, "cannot write output (stdout): %s", errno ? strerror(errno) : "write error");
    return 0;
}

/* ---- option values ----------------------------------------------------------------------------- */

/* strto* skip leading white space; an option value with it is a typo, not a number. */
static bool starts_clean(const char *s) { return s && *s && !isspace((unsigned char)*s); }

bool tool_parse_int(const char *s, int min, int *out) {
    if (!starts_clean(s)) return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end || errno || v < min || v > INT_MAX) return false;
    *out = (int)v;
    return true;
}

bool tool_parse_u64(const char *s, uint64_t *out) {
    /* strtoull accepts a leading '-' (and wraps it): refuse any sign up front. */
    if (!starts_clean(s) || *s == '-' || *s == '+') return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno) return false;
    *out = (uint64_t)v;
    return true;
}

bool tool_parse_float(const char *s, float min, float max, float *out) {
    if (!starts_clean(s)) return false;
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (*end || errno || !isfinite(v) || v < min || v > max) return false;
    *out = v;
    return true;
}

bool tool_parse_nm(const char *s, int *n, int *m) {
    const char *colon = s ? strchr(s, ':') : NULL;
    if (!colon) return false;
    char nb[16];
    size_t k = (size_t)(colon - s);
    if (k == 0 || k >= sizeof nb) return false;
    memcpy(nb, s, k);
    nb[k] = 0;
    return tool_parse_int(nb, 1, n) && tool_parse_int(colon + 1, 1, m);
}

bool tool_parse_dtype(const char *s, lq_dtype *out) {
    if (!s) return false;
    if (strcmp(s, "f32") == 0) *out = LQ_DTYPE_F32;
    else if (strcmp(s, "f16") == 0) *out = LQ_DTYPE_F16;
    else if (strcmp(s, "bf16") == 0) *out = LQ_DTYPE_BF16;
    else return false;
    return true;
}

/* ---- argument loop ------------------------------------------------------------------------------ */

tool_args tool_args_begin(int argc, char **argv) {
    return (tool_args){.argc = argc, .argv = argv, .i = 0};
}

bool tool_args_next(tool_args *a) {
    if (a->i + 1 >= a->argc) return false;
    a->i++;
    a->arg = a->argv[a->i];
    a->value = NULL;
    a->missing = false;
    return true;
}

bool tool_args_help(const tool_args *a) { return strcmp(a->arg, "--help") == 0 || strcmp(a->arg, "-h") == 0; }

bool tool_args_flag(const tool_args *a, const char *name) { return strcmp(a->arg, name) == 0; }

bool tool_args_value(tool_args *a, const char *name) {
    if (strcmp(a->arg, name) != 0) return false;
    if (a->i + 1 >= a->argc) {
        a->missing = true;
        return false;
    }
    a->i++;
    a->value = a->argv[a->i];
    return true;
}

bool tool_args_positional(const tool_args *a) { return a->arg[0] != '-' || a->arg[1] == 0; }

int tool_args_unknown(const tool_args *a) {
    if (a->missing) return tool_bad_args("option %s needs a value", a->arg);
    return tool_bad_args("unknown argument '%s'", a->arg);
}

int tool_args_bad_value(const tool_args *a) { return tool_bad_args("bad value for %s: '%s'", a->arg, a->value); }

bool tool_calib_sample_arg(tool_args *a, lq_calib_source *src, int *rc) {
    int v;
    *rc = 0;
    if (tool_args_value(a, "--calib-samples")) {
        if (tool_parse_int(a->value, 1, &v)) src->n_samples = v;
        else *rc = tool_args_bad_value(a);
    } else if (tool_args_value(a, "--calib-len")) {
        if (tool_parse_int(a->value, 2, &v)) src->sample_len = v;
        else *rc = tool_args_bad_value(a);
    } else if (tool_args_value(a, "--calib-seed")) {
        if (!tool_parse_u64(a->value, &src->seed)) *rc = tool_args_bad_value(a);
    } else {
        return false;
    }
    return true;
}
