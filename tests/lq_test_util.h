/* lq_test_util.h - helpers shared by the Criterion suites. */
#ifndef LQ_TEST_UTIL_H
#define LQ_TEST_UTIL_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "libquant/lq_model.h"

/* Directory of the shared models and data: $LQ_SHARED, else ../shared next to the source tree. */
/* Linear `part` ("mlp.up_proj") of layer l of a loaded model (NULL if absent). */
static inline const lq_weight *lq_test_linear(const lq_model *m, int l, const char *part) {
    char name[128];
    snprintf(name, sizeof name, "model.layers.%d.%s", l, part);
    return lq_model_find_linear(m, name);
}

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

/* Whether anything exists at path. */
static inline bool lq_test_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Exit code of a system() status; -1 when the shell could not run or the command did not exit
 * normally (killed by a signal). */
static inline int lq_test_exit_code(int status) {
    return (status != -1 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
}

/* Whether a "<out>.tmp.*" directory (an unfinished tool output) was left next to out. */
static inline bool lq_test_leftovers(const char *out) {
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "ls -d '%s'.tmp.* >/dev/null 2>&1", out);
    return system(cmd) == 0;
}

/* Convert stories260K (llama2.c .bin + tok512.bin from the shared dir) into the HF directory
 * `out` with the built quant-convert. Returns its exit code (-1: did not exit); cmd receives the
 * command line for the failure message. */
static inline int lq_test_convert_stories260k(const char *out, char *cmd, size_t cap) {
    char bin[1024], tok[1024], tool[1024];
    lq_test_shared("models/stories260K/stories260K.bin", bin, sizeof bin);
    lq_test_shared("models/stories260K/tok512.bin", tok, sizeof tok);
    snprintf(cmd, cap, "'%s' --llama2c '%s' --tokenizer '%s' --out '%s' >/dev/null",
             lq_test_tool("quant-convert", tool, sizeof tool), bin, tok, out);
    return lq_test_exit_code(system(cmd));
}

/* The calibration suites' fixture, in the directory `root` (already created): stories260K as an HF
 * directory <root>/fp32 and the first calib_bytes of WikiText-2 test as <root>/calib.txt (text
 * none of them evaluates on). Paths go to fp32 / calib (512 bytes each). Returns 0, or non-zero
 * with cmd (cmd_cap bytes) saying what failed. */
static inline int lq_test_calib_fixture(const char *root, size_t calib_bytes, char *fp32, char *calib,
                                        char *cmd, size_t cmd_cap) {
    char wiki[1024];
    snprintf(fp32, 512, "%s/fp32", root);
    snprintf(calib, 512, "%s/calib.txt", root);
    int rc = lq_test_convert_stories260k(fp32, cmd, cmd_cap);
    if (rc != 0) return rc;
    size_t len;
    char *text = lq_test_read_file(lq_test_shared("data/wikitext-2-raw-v1.test.hfjoin.txt", wiki, sizeof wiki), &len);
    FILE *f = text ? fopen(calib, "wb") : NULL;
    snprintf(cmd, cmd_cap, "cannot write %s from %s", calib, wiki);
    const size_t n = text && len < calib_bytes ? len : calib_bytes;
    rc = !f || fwrite(text, 1, n, f) != n;
    if (f && fclose(f) != 0) rc = 1;
    free(text);
    return rc;
}

/* Run the built tool `name` with `args` (already shell-quoted) through the shell: stdout to
 * <dir>/stdout.txt, stderr to <dir>/stderr.txt; the stderr text (truncated to cap) into err when
 * err is not NULL. Returns the exit code, -1 when it did not exit normally. */
static inline int lq_test_run_tool(const char *name, const char *args, const char *dir, char *err,
                                   size_t cap) {
    char tool[1024], cmd[4096], errf[1024];
    snprintf(errf, sizeof errf, "%s/stderr.txt", dir);
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s/stdout.txt' 2>'%s'", lq_test_tool(name, tool, sizeof tool), args,
             dir, errf);
    int code = lq_test_exit_code(system(cmd));
    if (err) {
        char *e = lq_test_read_file(errf, NULL);
        snprintf(err, cap, "%s", e ? e : "");
        free(e);
    }
    return code;
}

#endif
