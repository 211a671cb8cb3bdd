/* test_cuda_module.c - the CUDA backend is a module loaded on demand, and every way of not
 * loading it is one line.
 *
 * Runs everywhere, GPU or not, in every build: the tools must not link a CUDA library (asked of
 * the dynamic loader itself, LD_TRACE_LOADED_OBJECTS, the mechanism under ldd: every library a
 * start maps, transitively); --device cuda with LQ_CUDA_MODULE naming a missing file or a library
 * that is not the module is one error line and exit 3; where the module was built, the tool finds
 * it by itself and, without a GPU, stops at the same "no CUDA device" line as before the module
 * existed (with a GPU the run succeeds, which is accepted too). The tools run as child processes
 * so that each loads (or fails to load) the module once, as a user's process does.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lq_test_util.h"

static char g_model[1024], g_tok[1024], g_run[1024];

static void paths(void) {
    lq_test_shared("models/stories260K/stories260K.bin", g_model, sizeof g_model);
    lq_test_shared("models/stories260K/tok512.bin", g_tok, sizeof g_tok);
    lq_test_tool("quant-run", g_run, sizeof g_run);
}

/* Runs cmd (through sh), returns its exit code (-1: killed by a signal); what it wrote to
 * stream 1 or 2 (which) goes to buf, NUL-terminated. */
static int run_capture(const char *cmd, int which, char *buf, size_t cap) {
    char path[] = "/tmp/lq_test_cuda_module_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    char full[4096];
    if (which == 1) snprintf(full, sizeof full, "%s >%s 2>/dev/null", cmd, path);
    else snprintf(full, sizeof full, "%s 2>%s >/dev/null", cmd, path);
    int rc = lq_test_exit_code(system(full));
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = 0;
    if (f) fclose(f);
    remove(path);
    return rc;
}

/* quant-run on stories260K with --device cuda, env prepended (e.g. "LQ_CUDA_MODULE=x"). From /,
 * so that a module in the working directory (the build dir, where ctest runs) is not found by
 * accident of the tools' RUNPATH. */
static int run_cuda(const char *env, char *err, size_t cap) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd / && env -u LQ_CUDA_MODULE %s '%s' --model '%s' --tokenizer '%s' --prompt '' --max-tokens 2 --device cuda",
             env, g_run, g_model, g_tok);
    return run_capture(cmd, 2, err, cap);
}

static void expect_one_error_line(const char *err) {
    cr_expect(strncmp(err, "quant-run: error: ", 18) == 0, "stderr: %s", err);
    const char *nl = strchr(err, '\n');
    cr_expect(nl && nl[1] == 0, "one line expected: %s", err);
}

Test(cuda_module, tools_link_no_cuda_library) {
    static const char *const tools[] = {"quant-ptq", "quant-eval", "quant-run", "quant-info", "quant-recipe"};
    for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++) {
        char tool[1024], cmd[2048], out[16384];
        lq_test_tool(tools[i], tool, sizeof tool);
        /* The loader lists what the binary maps at start and exits before main. */
        snprintf(cmd, sizeof cmd, "LD_TRACE_LOADED_OBJECTS=1 '%s'", tool);
        cr_assert_eq(run_capture(cmd, 1, out, sizeof out), 0, "%s: the loader could not list it", tools[i]);
        cr_assert(strstr(out, "libc.so") != NULL, "%s: no library list: %s", tools[i], out);
        cr_expect(strstr(out, "libcudart") == NULL && strstr(out, "libcublas") == NULL,
                  "%s maps CUDA libraries at start:\n%s", tools[i], out);
    }
}

/* A path that does not exist: the one line names it and the loader's reason. */
Test(cuda_module, missing_module_is_one_line, .init = paths) {
    char err[4096];
    int rc = run_cuda("LQ_CUDA_MODULE=/nonexistent/libquant_cuda.so", err, sizeof err);
    cr_expect_eq(rc, 3, "exit code %d, stderr: %s", rc, err);
    expect_one_error_line(err);
    cr_expect(strstr(err, "cuda") != NULL, "stderr: %s", err);
#ifdef LQ_CUDA_MODULE_BUILT
    cr_expect(strstr(err, "LQ_CUDA_MODULE=/nonexistent/libquant_cuda.so") != NULL, "stderr: %s", err);
    cr_expect(strstr(err, "No such file") != NULL, "the loader's reason expected: %s", err);
#else
    cr_expect(strstr(err, "this build has no CUDA backend") != NULL, "stderr: %s", err);
#endif
}

#ifdef LQ_CUDA_MODULE_BUILT
/* A library that loads but is not the module (libm has no entry symbol): refused by name. */
Test(cuda_module, not_the_module_is_one_line, .init = paths) {
    char err[4096];
    int rc = run_cuda("LQ_CUDA_MODULE=libm.so.6", err, sizeof err);
    cr_expect_eq(rc, 3, "exit code %d, stderr: %s", rc, err);
    expect_one_error_line(err);
    cr_expect(strstr(err, "no lq_cuda_module_api symbol") != NULL, "stderr: %s", err);
}

/* The module found by itself (next to the tool) or named: without a GPU the error is the one the
 * backend gave before it was a module; with one, the run succeeds. Never a crash. */
static void expect_loaded(const char *env) {
    char err[4096];
    int rc = run_cuda(env, err, sizeof err);
    cr_assert_neq(rc, -1, "quant-run was killed by a signal; stderr: %s", err);
    if (rc == 0) return; /* a GPU: the module ran the model */
    cr_expect_eq(rc, 3, "exit code %d, stderr: %s", rc, err);
    expect_one_error_line(err);
    cr_expect(strstr(err, "--device cuda: no CUDA device found") != NULL, "stderr: %s", err);
}

Test(cuda_module, found_next_to_the_tool, .init = paths) { expect_loaded(""); }
Test(cuda_module, found_by_env, .init = paths) { expect_loaded("LQ_CUDA_MODULE=" LQ_CUDA_MODULE_BUILT); }
#endif
