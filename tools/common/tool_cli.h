/* tool_cli.h - the command-line plumbing every quant-* tool shares (lq_tool library).
 *
 * Errors: one stderr line, "<tool>: error: ...", and an exit code from tool_exit_code
 * (0 ok, 2 bad arguments, 3 bad input file, 4 I/O, 1 other). Bad arguments also print the usage
 * text to stderr and exit 2. Option values are parsed strictly: junk, overflow or an out-of-range
 * value is a bad argument, never a silent default.
 *
 * An argument loop reads top to bottom, one branch per option:
 *
 *     tool_init("quant-x", usage);
 *     tool_args a = tool_args_begin(argc, argv);
 *     while (tool_args_next(&a)) {
 *         if (tool_args_help(&a)) { usage(stdout); return 0; }
 *         else if (tool_args_flag(&a, "--force")) force = true;
 *         else if (tool_args_value(&a, "--out")) out = a.value;
 *         else if (tool_args_value(&a, "--threads")) {
 *             if (!tool_parse_int(a.value, 1, &threads)) return tool_args_bad_value(&a);
 *         } else return tool_args_unknown(&a);
 *     }
 *
 * An option given as the last argument without its value matches no branch and reaches
 * tool_args_unknown, which then says "option --out needs a value".
 *
 * Not thread-safe: the tool name is process-wide state, set once in main before anything else.
 */
#ifndef TOOL_CLI_H
#define TOOL_CLI_H

#include "libquant.h"
#include "libquant/lq_gptq.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* ---- identity and errors --------------------------------------------------------------------- */

/* Record the tool's name (the prefix of every error line) and its usage printer. `name` must
 * outlive the process (a string literal). */
void tool_init(const char *name, void (*usage)(FILE *f));

/* The name given to tool_init ("quant-?" before it). */
const char *tool_name(void);

/* Exit code of a status: 0 ok, 2 bad arguments (LQ_ERR_INVALID_ARG), 3 bad input file (FORMAT,
 * UNSUPPORTED, MISMATCH, NOT_FOUND), 4 I/O (IO, EXISTS), 1 other. The library only returns
 * statuses; what a process exits with is the tools' convention. */
int tool_exit_code(lq_status s);

/* "<tool>: error: <lq_last_error()>"; returns tool_exit_code(s). */
int tool_fail(lq_status s);

/* "<tool>: error: <what> (<path>): <lq_last_error()>"; returns tool_exit_code(s). A NULL
 * path prints as "-". */
int tool_fail_at(const char *what, const char *path, lq_status s);

/* "<tool>: error: <printf message>"; returns `code`. For conditions that are not an lq_status. */
int tool_error(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* "<tool>: error: <printf message>", then the usage text on stderr; returns 2. */
int tool_bad_args(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Flush stdout and check it: 0, or "<tool>: error: cannot write output (stdout): ..." and 4
 * (a full disk or a closed pipe must not look like success). */
int tool_finish_stdout(void);

/* ---- option values ----------------------------------------------------------------------------- */

/* Decimal int in [min, INT_MAX]; false on NULL, empty, leading space, junk, overflow or below min. */
bool tool_parse_int(const char *s, int min, int *out);

/* Decimal unsigned 64-bit integer (no sign); false on NULL, empty, junk or overflow. */
bool tool_parse_u64(const char *s, uint64_t *out);

/* Finite float in [min, max] (strtof syntax); false on NULL, empty, junk, NaN/Inf or range. */
bool tool_parse_float(const char *s, float min, float max, float *out);

/* "N:M" (both decimal ints >= 1, as tool_parse_int); false otherwise. The caller checks N <= M. */
bool tool_parse_nm(const char *s, int *n, int *m);

/* Storage dtype by name: f32, f16 or bf16. False on anything else (NULL included). */
bool tool_parse_dtype(const char *s, lq_dtype *out);

/* ---- argument loop ------------------------------------------------------------------------------ */

typedef struct tool_args {
    int argc;
    char **argv;
    int i;             /* index of the current argument */
    const char *arg;   /* argv[i] */
    const char *value; /* the value taken by the last successful tool_args_value */
    bool missing;      /* the current argument named a value option but was the last one */
} tool_args;

tool_args tool_args_begin(int argc, char **argv);

/* Step to the next argument (a.arg); false when none is left. */
bool tool_args_next(tool_args *a);

/* Whether the current argument is --help or -h. */
bool tool_args_help(const tool_args *a);

/* Whether the current argument is exactly `name` (an option without a value). */
bool tool_args_flag(const tool_args *a, const char *name);

/* Whether the current argument is `name` followed by a value: the value becomes a->value and is
 * consumed (it may start with '-', so "--max-tokens -3" reaches the range check). When `name` is
 * the last argument, returns false and marks a->missing for tool_args_unknown. */
bool tool_args_value(tool_args *a, const char *name);

/* Whether the current argument is a positional one (does not start with '-', or is "-"). */
bool tool_args_positional(const tool_args *a);

/* Bad-arguments exit for the current argument: "option X needs a value" when it lacked one,
 * else "unknown argument 'X'". Returns 2. */
int tool_args_unknown(const tool_args *a);

/* Bad-arguments exit for the value just taken: "bad value for X: 'V'". Returns 2. */
int tool_args_bad_value(const tool_args *a);

/* The calibration sampling options every calibrated method shares (lq_calib_samples' arguments):
 * --calib-samples N (>= 1), --calib-len L (>= 2), --calib-seed S. Returns true when the current
 * argument is one of them (consumed; the value is stored only when it parses); *rc then holds 0
 * or the bad-value exit code. */
bool tool_calib_sample_arg(tool_args *a, lq_calib_source *src, int *rc);

#endif
