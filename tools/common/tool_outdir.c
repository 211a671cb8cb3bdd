/* tool_outdir.c - atomic output directories, interruption cleanup, config files (tool_outdir.h). */
#include "tool_outdir.h"

#include "lq_blocks.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ---- async-signal-safe rm -rf ------------------------------------------------------------------ *
 * nftw/opendir/readdir allocate and may hold locks, so they must not run in a signal handler. This
 * remover uses only openat, getdents64 (a raw system call), lseek, unlinkat and close, keeps its
 * buffers on the stack and bounds its depth. Tool output directories are flat; the bound only
 * keeps a hostile tree from exhausting the stack. */

enum { RM_MAX_DEPTH = 8, RM_MAX_PASSES = 8, RM_BUF = 2048 };

/* Kernel layout of one getdents64 record (linux_dirent64). */
typedef struct rm_dirent {
    uint64_t ino;
    int64_t off;
    unsigned short reclen;
    unsigned char type;
    char name[];
} rm_dirent;

/* Remove `name` relative to directory fd `at`: unlink a file or symlink (never followed), or
 * empty a directory depth-first and remove it. True when it is gone. */
static bool rm_at(int at, const char *name, int depth) {
    if (unlinkat(at, name, 0) == 0 || errno == ENOENT) return true;
    /* Linux says EISDIR for a directory; POSIX allows EPERM. */
    if ((errno != EISDIR && errno != EPERM) || depth >= RM_MAX_DEPTH) return false;
    int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return false;
    /* Removing entries while reading the directory may make a pass skip some, so passes repeat
     * until one finds nothing left or cannot remove anything. */
    for (int pass = 0; pass < RM_MAX_PASSES; pass++) {
        int seen = 0, removed = 0;
        if (lseek(fd, 0, SEEK_SET) != 0) break;
        _Alignas(8) char buf[RM_BUF];
        long n;
        while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
            for (long off = 0; off < n;) {
                const rm_dirent *d = (const rm_dirent *)(buf + off);
                off += d->reclen;
                if (d->name[0] == '.' && (d->name[1] == 0 || (d->name[1] == '.' && d->name[2] == 0))) continue;
                seen++;
                if (rm_at(fd, d->name, depth + 1)) removed++;
            }
        }
        if (seen == 0 || removed == 0) break;
    }
    close(fd);
    return unlinkat(at, name, AT_REMOVEDIR) == 0 || errno == ENOENT;
}

int tool_rm_tree(const char *path) {
    int e = errno;
    if (rm_at(AT_FDCWD, path, 0)) {
        errno = e;
        return 0;
    }
    return -1;
}

/* ---- signal handling ---------------------------------------------------------------------------- *
 * g_state says who owns the temp dir, and so what a signal may do:
 *   IDLE   no output directory: the handler is not installed (or is being removed); re-raise.
 *   ARMED  files are being written: the handler claims the dir (ARMED -> DYING), removes it and
 *          re-raises the signal with the previous disposition, which ends the process.
 *   BUSY   begin, commit or abort is working on the dir: the handler only records the signal;
 *          it is re-raised when that step is done (end_busy).
 *   DYING  a handler on some thread is removing the dir and will end the process; another
 *          signal meanwhile is ignored, and commit/abort wait for the end.
 * Every claim is a compare-and-swap, so a handler running on another thread (a process-directed
 * signal goes to any thread that does not block it, pool workers included) and commit/abort
 * never both act on the directory. A lock-free atomic int is async-signal-safe (C11 7.14.1.1). */

enum { ST_IDLE, ST_ARMED, ST_BUSY, ST_DYING };

static const int g_sigs[] = {SIGINT, SIGTERM, SIGHUP};
#define N_SIGS ((int)(sizeof g_sigs / sizeof g_sigs[0]))

static _Atomic int g_state = ST_IDLE;
static _Atomic int g_pending;           /* a signal held in state BUSY (0: none) */
static char g_sig_tmp[PATH_MAX];        /* the temp dir the handler removes; set before ARMED */
static struct sigaction g_old[N_SIGS];  /* dispositions before begin */
static bool g_installed[N_SIGS];        /* which of g_sigs carry our handler */

static void restore_and_raise(int sig) {
    for (int k = 0; k < N_SIGS; k++)
        if (g_sigs[k] == sig && g_installed[k]) sigaction(sig, &g_old[k], NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
}

static void on_signal(int sig) {
    int e = errno;
    int st = ST_ARMED;
    if (atomic_compare_exchange_strong(&g_state, &st, ST_DYING)) {
        (void)rm_at(AT_FDCWD, g_sig_tmp, 0);
        restore_and_raise(sig);
        /* Only reached when the previous disposition was a handler that returned: the output
         * is gone, the tool's next write or its commit fails. */
        atomic_store(&g_state, ST_IDLE);
    } else if (st == ST_BUSY) {
        atomic_store(&g_pending, sig);
    } else if (st == ST_IDLE) {
        restore_and_raise(sig);
    } /* ST_DYING: another thread is already ending the process */
    errno = e;
}

static void install_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (int k = 0; k < N_SIGS; k++) sigaddset(&sa.sa_mask, g_sigs[k]); /* one at a time per thread */
    for (int k = 0; k < N_SIGS; k++) {
        g_installed[k] = false;
        if (sigaction(g_sigs[k], NULL, &g_old[k]) != 0) continue;
        /* An ignored signal stays ignored (nohup, background jobs of a non-interactive shell). */
        if (!(g_old[k].sa_flags & SA_SIGINFO) && g_old[k].sa_handler == SIG_IGN) continue;
        g_installed[k] = sigaction(g_sigs[k], &sa, NULL) == 0;
    }
}

static void uninstall_handlers(void) {
    for (int k = 0; k < N_SIGS; k++) {
        if (g_installed[k]) sigaction(g_sigs[k], &g_old[k], NULL);
        g_installed[k] = false;
    }
}

/* Leave state BUSY for `to` (ARMED or IDLE) and deliver a signal held meanwhile: in ARMED our
 * handler then removes the temp dir, in IDLE the previous disposition acts. */
static void end_busy(int to) {
    if (to == ST_IDLE) uninstall_handlers();
    atomic_store(&g_state, to);
    int sig = atomic_exchange(&g_pending, 0);
    if (sig) raise(sig);
}

/* A handler on another thread owns the temp dir and is ending the process: wait for that. */
static void wait_while_dying(void) {
    const struct timespec ms = {0, 1000000};
    while (atomic_load(&g_state) == ST_DYING) nanosleep(&ms, NULL);
}

/* ---- the directory ---------------------------------------------------------------------------- */

const char *tool_path_parent(const char *path, char *parent) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(parent, PATH_MAX, ".");
    else if (slash == path) snprintf(parent, PATH_MAX, "/");
    else snprintf(parent, PATH_MAX, "%.*s", (int)(slash - path), path);
    return slash ? slash + 1 : path;
}

/* Absolute, symlink-free form of `path`, which may not exist yet (then its parent must). */
static bool resolve(const char *path, char *out) {
    if (realpath(path, out)) return true;
    if (errno != ENOENT) return false;
    char parent[PATH_MAX];
    const char *base = tool_path_parent(path, parent);
    char rp[PATH_MAX];
    if (!*base || !realpath(parent, rp)) return false;
    int n = snprintf(out, PATH_MAX, "%s/%s", strcmp(rp, "/") == 0 ? "" : rp, base);
    return n > 0 && n < PATH_MAX;
}

/* Whether resolved path `a` is `b` or lies below it. */
static bool under(const char *a, const char *b) {
    size_t n = strlen(b);
    if (n == 1 && b[0] == '/') return true;
    return strncmp(a, b, n) == 0 && (a[n] == 0 || a[n] == '/');
}

lq_status tool_outdir_check_inputs(const char *dir, const char *const *inputs) {
    char d[PATH_MAX], in[PATH_MAX];
    /* Trailing slashes would make the parent lookup below see an empty base name. */
    char clean[PATH_MAX];
    snprintf(clean, sizeof clean, "%s", dir);
    for (size_t k = strlen(clean); k > 1 && clean[k - 1] == '/'; k--) clean[k - 1] = 0;
    if (!resolve(clean, d)) return LQ_OK; /* begin reports an unusable path */
    for (const char *const *p = inputs; *p; p++) {
        struct stat sb;
        if (!realpath(*p, in) || stat(in, &sb) != 0) continue;
        if (under(in, d))
            return lq_fail(LQ_ERR_INVALID_ARG, "%s contains the input %s", dir, *p);
        if (S_ISDIR(sb.st_mode) && under(d, in))
            return lq_fail(LQ_ERR_INVALID_ARG, "%s lies inside the input directory %s", dir, *p);
    }
    return LQ_OK;
}

lq_status tool_outdir_begin(tool_outdir *o, const char *dir, bool force) {
    o->tmp[0] = 0; /* abort after a failed begin is a no-op */
    if (!dir[0]) return lq_fail(LQ_ERR_INVALID_ARG, "the output directory name is empty");
    int n = snprintf(o->dir, sizeof o->dir, "%s", dir);
    if (n <= 0 || (size_t)n >= sizeof o->dir) return lq_fail(LQ_ERR_INVALID_ARG, "%s: path too long", dir);
    /* "out/" must not put the temp dir inside "out". */
    while (n > 1 && o->dir[n - 1] == '/') o->dir[--n] = 0;
    if (strcmp(o->dir, "/") == 0 || strcmp(o->dir, ".") == 0 || strcmp(o->dir, "..") == 0)
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: not a usable output directory name", dir);
    tool_outdir_clean_stale(o->dir);
    struct stat sb;
    if (!force && lstat(o->dir, &sb) == 0)
        return lq_fail(LQ_ERR_EXISTS, "%s: already exists (use --force to replace it)", o->dir);
    char tmp[PATH_MAX];
    n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", o->dir, (long)getpid());
    if (n <= 0 || (size_t)n >= sizeof tmp) return lq_fail(LQ_ERR_INVALID_ARG, "%s: path too long", dir);
    int st = ST_IDLE;
    if (!atomic_compare_exchange_strong(&g_state, &st, ST_BUSY))
        return lq_fail(LQ_ERR_INVALID_ARG, "%s: another output directory is still being built", dir);
    /* Handlers first, directory second: a signal from here on is held (BUSY), then acted on
     * once the path is recorded, so there is no moment when the dir exists unguarded. */
    install_handlers();
    if (mkdir(tmp, 0755) != 0) {
        lq_status s = lq_fail(LQ_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        end_busy(ST_IDLE);
        return s;
    }
    memcpy(g_sig_tmp, tmp, (size_t)n + 1);
    memcpy(o->tmp, tmp, (size_t)n + 1);
    end_busy(ST_ARMED);
    return LQ_OK;
}

lq_status tool_outdir_file(const tool_outdir *o, const char *name, char *buf, size_t cap) {
    int n = snprintf(buf, cap, "%s/%s", o->tmp, name);
    if (n < 0 || (size_t)n >= cap) return lq_fail(LQ_ERR_INVALID_ARG, "%s/%s: path too long", o->tmp, name);
    return LQ_OK;
}

/* Put the complete o->tmp in place of the existing output o->dir (--force). One atomic exchange
 * when the file system has it: no kill, SIGKILL included, can then leave neither the old nor the
 * new output under the real name; the old one ends at o->tmp and is removed. Elsewhere two
 * renames through "<dir>.old.<pid>"; a SIGKILL between them is repaired by the next begin, which
 * puts the old output back (tool_outdir_clean_stale). */
static lq_status replace_existing(tool_outdir *o) {
    if (renameat2(AT_FDCWD, o->tmp, AT_FDCWD, o->dir, RENAME_EXCHANGE) == 0) {
        (void)tool_rm_tree(o->tmp);
        return LQ_OK;
    }
    if (errno != EINVAL && errno != ENOSYS)
        return lq_fail(LQ_ERR_IO, "%s: cannot exchange with %s: %s", o->dir, o->tmp, strerror(errno));
    char old[PATH_MAX + 32];
    snprintf(old, sizeof old, "%s.old.%ld", o->dir, (long)getpid());
    if (rename(o->dir, old) != 0)
        return lq_fail(LQ_ERR_IO, "%s: cannot move the old output aside: %s", o->dir, strerror(errno));
    if (rename(o->tmp, o->dir) != 0) {
        int e = errno;
        (void)rename(old, o->dir);
        return lq_fail(LQ_ERR_IO, "%s: cannot rename from %s: %s", o->dir, o->tmp, strerror(e));
    }
    (void)tool_rm_tree(old);
    return LQ_OK;
}

lq_status tool_outdir_commit(tool_outdir *o) {
    int st = ST_ARMED;
    if (!o->tmp[0] || !atomic_compare_exchange_strong(&g_state, &st, ST_BUSY)) {
        if (st == ST_DYING) wait_while_dying();
        return lq_fail(LQ_ERR_INTERRUPTED, "%s: interrupted before it was complete", o->dir);
    }
    lq_status s = lq_file_sync_dir(o->tmp);
    struct stat sb;
    if (s == LQ_OK && lstat(o->dir, &sb) == 0) s = replace_existing(o);
    else if (s == LQ_OK && rename(o->tmp, o->dir) != 0)
        s = lq_fail(LQ_ERR_IO, "%s: cannot rename from %s: %s", o->dir, o->tmp, strerror(errno));
    if (s != LQ_OK) {
        end_busy(ST_ARMED);
        return s;
    }
    o->tmp[0] = 0;
    (void)lq_file_sync_parent(o->dir); /* complete and in place; durability is best effort */
    end_busy(ST_IDLE);
    return LQ_OK;
}

void tool_outdir_abort(tool_outdir *o) {
    if (!o->tmp[0]) return; /* never begun, or committed */
    int st = ST_ARMED;
    if (atomic_compare_exchange_strong(&g_state, &st, ST_BUSY)) {
        (void)tool_rm_tree(o->tmp);
        o->tmp[0] = 0;
        end_busy(ST_IDLE);
        return;
    }
    if (st == ST_DYING) wait_while_dying();
    o->tmp[0] = 0;
}

/* ---- files in it -------------------------------------------------------------------------------- */

lq_status tool_write_text(const char *path, const char *text) {
    return lq_file_write_all(path, text, strlen(text));
}

const char *tool_torch_dtype(lq_dtype t) {
    return t == LQ_DTYPE_F16 ? "float16" : t == LQ_DTYPE_BF16 ? "bfloat16" : "float32";
}

lq_status tool_config_text(const lq_config *cfg, lq_dtype dt, char **out) {
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

lq_status tool_write_generation_config(const char *dir, const lq_config *cfg) {
    char path[PATH_MAX + 32], text[256];
    int n = snprintf(path, sizeof path, "%s/generation_config.json", dir);
    if (n < 0 || (size_t)n >= sizeof path) return lq_fail(LQ_ERR_INVALID_ARG, "%s: path too long", dir);
    snprintf(text, sizeof text,
             "{\n  \"_from_model_config\": true,\n  \"bos_token_id\": %d,\n  \"eos_token_id\": %d\n}\n",
             cfg->bos_id, cfg->eos_id);
    return tool_write_text(path, text);
}

lq_status tool_outdir_write_config(const tool_outdir *o, const lq_config *cfg, lq_dtype dt) {
    char *text = NULL;
    LQ_TRY(tool_config_text(cfg, dt, &text));
    lq_status s = lq_config_json_save(o->tmp, text);
    free(text);
    if (s != LQ_OK) return s;
    return tool_write_generation_config(o->tmp, cfg);
}

void tool_convert_f32(const float *in, int64_t n, lq_dtype dt, void *out) {
    if (dt == LQ_DTYPE_F32) {
        memcpy(out, in, (size_t)n * 4);
        return;
    }
    uint16_t *o = out;
    for (int64_t i = 0; i < n; i++) o[i] = dt == LQ_DTYPE_F16 ? lq_f32_to_f16(in[i]) : lq_f32_to_bf16(in[i]);
}
