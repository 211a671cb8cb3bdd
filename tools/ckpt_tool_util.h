/* ckpt_tool_util.h - helpers shared by quant-info, quant-convert and quant-synth (header-only:
 * the build makes one executable per tools/quant-*.c, so shared tool code lives in a header).
 *
 * Output directories are built atomically: everything is written into "<DIR>.tmp.<pid>", then
 * renamed to DIR. With --force an existing DIR is first moved aside and removed only after the
 * new one is in place, so a failure never leaves a half-written DIR behind.
 */
#ifndef CKPT_TOOL_UTIL_H
#define CKPT_TOOL_UTIL_H

#include "libquant.h"
#include "lq_blocks.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One stderr line: "<tool>: error: <what> (<path>): <detail>"; returns the exit code. */
static inline int tool_fail(const char *tool, const char *what, const char *path, lq_status s) {
    fprintf(stderr, "%s: error: %s (%s): %s\n", tool, what, path ? path : "-", lq_last_error());
    return lq_status_exit_code(s);
}

static int tool_rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* rm -rf, not following symlinks. */
static inline int tool_rm_rf(const char *path) {
    return nftw(path, tool_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Write a text file and fsync it. */
static inline lq_status tool_write_text(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return lq_fail(LQ_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    size_t n = strlen(text);
    const char *p = text;
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            int e = errno;
            close(fd);
            return lq_fail(LQ_ERR_IO, "%s: write failed: %s", path, strerror(e));
        }
        p += k;
        n -= (size_t)k;
    }
    if (fsync(fd) != 0 || close(fd) != 0) return lq_fail(LQ_ERR_IO, "%s: fsync/close failed", path);
    return LQ_OK;
}

/* Start an output directory: refuse an existing `dir` unless force, create the temp dir. */
static inline lq_status tool_outdir_begin(const char *dir, bool force, char *tmp, size_t cap) {
    struct stat sb;
    if (!force && lstat(dir, &sb) == 0)
        return lq_fail(LQ_ERR_EXISTS, "%s: already exists (use --force to replace it)", dir);
    snprintf(tmp, cap, "%s.tmp.%ld", dir, (long)getpid());
    if (mkdir(tmp, 0755) != 0) return lq_fail(LQ_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    return LQ_OK;
}

/* Move the finished temp dir to `dir` (replacing an existing one). */
static inline lq_status tool_outdir_commit(const char *dir, const char *tmp) {
    char old[PATH_MAX];
    struct stat sb;
    bool had = lstat(dir, &sb) == 0;
    snprintf(old, sizeof old, "%s.old.%ld", dir, (long)getpid());
    if (had && rename(dir, old) != 0)
        return lq_fail(LQ_ERR_IO, "%s: cannot move the old output aside: %s", dir, strerror(errno));
    if (rename(tmp, dir) != 0) {
        int e = errno;
        if (had) (void)rename(old, dir);
        return lq_fail(LQ_ERR_IO, "%s: cannot rename from %s: %s", dir, tmp, strerror(e));
    }
    if (had) (void)tool_rm_rf(old);
    return LQ_OK;
}

/* Whether `inner` (an existing path) lies inside or at directory `outer` (which may not exist). */
static inline bool tool_path_inside(const char *inner, const char *outer) {
    char a[PATH_MAX], b[PATH_MAX];
    if (!realpath(inner, a) || !realpath(outer, b)) return false;
    size_t n = strlen(b);
    return strncmp(a, b, n) == 0 && (a[n] == 0 || a[n] == '/' || n == 1);
}

static inline bool tool_parse_dtype(const char *s, lq_dtype *out) {
    if (strcmp(s, "f32") == 0) *out = LQ_DTYPE_F32;
    else if (strcmp(s, "f16") == 0) *out = LQ_DTYPE_F16;
    else if (strcmp(s, "bf16") == 0) *out = LQ_DTYPE_BF16;
    else return false;
    return true;
}

/* HF's torch_dtype spelling of a storage dtype. */
static inline const char *tool_torch_dtype(lq_dtype t) {
    return t == LQ_DTYPE_F16 ? "float16" : t == LQ_DTYPE_BF16 ? "bfloat16" : "float32";
}

/* config.json text for cfg with "torch_dtype" added before the closing brace. Caller frees. */
static inline lq_status tool_config_text(const lq_config *cfg, lq_dtype dt, char **out) {
    char *js;
    LQ_TRY(lq_config_to_json(cfg, &js));
    char *end = strrchr(js, '}');
    size_t n = strlen(js) + 64;
    char *o = malloc(n);
    if (!end || !o) {
        free(js);
        free(o);
        return lq_fail(LQ_ERR_NOMEM, "config.json: out of memory");
    }
    *end = 0;
    /* Strip trailing whitespace of the last member before appending a new one. */
    size_t k = strlen(js);
    while (k > 0 && (js[k - 1] == '\n' || js[k - 1] == ' ')) js[--k] = 0;
    snprintf(o, n, "%s,\n  \"torch_dtype\": \"%s\"\n}\n", js, tool_torch_dtype(dt));
    free(js);
    *out = o;
    return LQ_OK;
}

static inline lq_status tool_write_generation_config(const char *dir, const lq_config *cfg) {
    char path[PATH_MAX + 32], text[256];
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    snprintf(text, sizeof text, "{\n  \"_from_model_config\": true,\n  \"bos_token_id\": %d,\n  \"eos_token_id\": %d\n}\n",
             cfg->bos_id, cfg->eos_id);
    return tool_write_text(path, text);
}

/* Convert n f32 values to dtype dt into out (n * dtype size bytes). */
static inline void tool_convert_f32(const float *in, int64_t n, lq_dtype dt, void *out) {
    if (dt == LQ_DTYPE_F32) {
        memcpy(out, in, (size_t)n * 4);
        return;
    }
    uint16_t *o = out;
    for (int64_t i = 0; i < n; i++) o[i] = dt == LQ_DTYPE_F16 ? lq_f32_to_f16(in[i]) : lq_f32_to_bf16(in[i]);
}

#endif
