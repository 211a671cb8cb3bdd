/* file.c - opening inputs and durable output files (lq_file.h). */
#include "libquant/lq_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- inputs ---------------------------------------------------------------------------------- */

lq_status lq_file_open_input(const char *path, int *fd, uint64_t *size) {
    *fd = -1;
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever. It has no
     * effect on regular files, and is cleared below so later reads behave as usual. */
    int d = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (d < 0) {
        int e = errno;
        lq_fail(LQ_ERR_IO, "%s: cannot open: %s", path, strerror(e));
        errno = e; /* callers tell a missing file (ENOENT) apart */
        return LQ_ERR_IO;
    }
    struct stat st;
    if (fstat(d, &st) != 0) {
        int e = errno;
        close(d);
        return lq_fail(LQ_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(d);
        errno = EINVAL;
        return lq_fail(LQ_ERR_IO, "%s: not a regular file (%s)", path,
                       S_ISDIR(st.st_mode)    ? "a directory"
                       : S_ISFIFO(st.st_mode) ? "a FIFO"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "a device");
    }
    int fl = fcntl(d, F_GETFL);
    if (fl < 0 || fcntl(d, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(d);
        return lq_fail(LQ_ERR_IO, "%s: fcntl: %s", path, strerror(e));
    }
    *fd = d;
    if (size) *size = (uint64_t)st.st_size;
    return LQ_OK;
}

lq_status lq_file_fopen_input(const char *path, FILE **out) {
    *out = NULL;
    int fd;
    LQ_TRY(lq_file_open_input(path, &fd, NULL));
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return lq_fail(LQ_ERR_NOMEM, "%s: cannot open a stream", path);
    }
    *out = f;
    return LQ_OK;
}

/* ---- outputs --------------------------------------------------------------------------------- */

static void release(lq_file_out *f) {
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    if (f->tmp) unlink(f->tmp);
    free(f->tmp);
    free(f->path);
    f->tmp = f->path = NULL;
}

lq_status lq_file_begin(lq_file_out *f, const char *path) {
    f->fd = -1;
    f->path = f->tmp = NULL;
    if (!path || !path[0]) return lq_fail(LQ_ERR_INVALID_ARG, "output file name is empty");
    size_t cap = strlen(path) + 32;
    f->path = strdup(path);
    char *tmp = malloc(cap);
    if (!f->path || !tmp) {
        free(tmp);
        release(f);
        return lq_fail(LQ_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(tmp, cap, "%s.tmp.%ld", path, (long)getpid());
    /* Never through a symlink (O_NOFOLLOW) or into a FIFO or device left at the temporary name
     * (O_NONBLOCK makes a FIFO without a reader fail instead of block; fstat refuses the rest). */
    f->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
    struct stat sb;
    if (f->fd < 0 || fstat(f->fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
        fcntl(f->fd, F_SETFL, fcntl(f->fd, F_GETFL) & ~O_NONBLOCK) != 0) {
        lq_status s = lq_fail(LQ_ERR_IO, "%s: cannot create: %s", tmp,
                              f->fd >= 0 ? "not a regular file" : strerror(errno));
        free(tmp); /* not ours: never unlink what we did not create */
        release(f);
        return s;
    }
    f->tmp = tmp;
    return LQ_OK;
}

lq_status lq_file_write(lq_file_out *f, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t k = write(f->fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return lq_fail(LQ_ERR_IO, "%s: write failed: %s", f->tmp, k < 0 ? strerror(errno) : "no progress");
        p += k;
        n -= (size_t)k;
    }
    return LQ_OK;
}

lq_status lq_file_commit(lq_file_out *f) {
    lq_status s = LQ_OK;
    if (fsync(f->fd) != 0) s = lq_fail(LQ_ERR_IO, "%s: fsync failed: %s", f->tmp, strerror(errno));
    int fd = f->fd;
    f->fd = -1;
    if (close(fd) != 0 && s == LQ_OK) s = lq_fail(LQ_ERR_IO, "%s: close failed: %s", f->tmp, strerror(errno));
    if (s == LQ_OK && rename(f->tmp, f->path) != 0)
        s = lq_fail(LQ_ERR_IO, "%s: rename from %s failed: %s", f->path, f->tmp, strerror(errno));
    if (s == LQ_OK) {
        free(f->tmp); /* renamed: nothing to unlink any more */
        f->tmp = NULL;
        s = lq_file_sync_parent(f->path);
    }
    release(f);
    return s;
}

void lq_file_abort(lq_file_out *f) { release(f); }

lq_status lq_file_write_all(const char *path, const void *buf, size_t n) {
    lq_file_out f;
    LQ_TRY(lq_file_begin(&f, path));
    lq_status s = lq_file_write(&f, buf, n);
    if (s != LQ_OK) {
        lq_file_abort(&f);
        return s;
    }
    return lq_file_commit(&f);
}

lq_status lq_file_copy(const char *src, const char *dst) {
    int in;
    LQ_TRY(lq_file_open_input(src, &in, NULL));
    lq_file_out out;
    lq_status s = lq_file_begin(&out, dst);
    if (s != LQ_OK) {
        close(in);
        return s;
    }
    char buf[1 << 16];
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            s = lq_fail(LQ_ERR_IO, "%s: read failed: %s", src, strerror(errno));
            break;
        }
        if ((s = lq_file_write(&out, buf, (size_t)n)) != LQ_OK) break;
    }
    close(in);
    if (s != LQ_OK) {
        lq_file_abort(&out);
        return s;
    }
    return lq_file_commit(&out);
}

lq_status lq_file_sync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return lq_fail(LQ_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    int r = fsync(fd);
    int e = errno;
    close(fd);
    /* Some file systems cannot fsync a directory (EINVAL); that is not a write failure. */
    if (r != 0 && e != EINVAL) return lq_fail(LQ_ERR_IO, "%s: fsync failed: %s", dir, strerror(e));
    return LQ_OK;
}

lq_status lq_file_sync_parent(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return lq_file_sync_dir(".");
    if (slash == path) return lq_file_sync_dir("/");
    size_t n = (size_t)(slash - path);
    char dir[PATH_MAX];
    if (n >= sizeof dir) return lq_fail(LQ_ERR_INVALID_ARG, "%s: path too long", path);
    memcpy(dir, path, n);
    dir[n] = 0;
    return lq_file_sync_dir(dir);
}
