/* lq_file.h - the one way libquant and its tools open inputs and write outputs.
 *
 * Inputs: every file read is opened with lq_file_open_input / lq_file_fopen_input, which refuse
 * anything but a regular file ("not a regular file") before reading a byte. The open itself is
 * non-blocking, so a FIFO or a device in place of config.json is refused instead of blocking the
 * process forever.
 *
 * Outputs: a file appears under its name complete or not at all, and once the call returns it
 * survives a crash or power cut. Bytes go to "<path>.tmp.<pid>" (same directory, so the rename
 * stays on one file system); commit fsyncs the file, renames it over `path` and fsyncs the
 * directory, so the new name is durable too. Any failure removes the temporary file.
 *
 *     lq_file_out f;
 *     LQ_TRY(lq_file_begin(&f, path));
 *     lq_status s = lq_file_write(&f, buf, n);      repeat as needed
 *     if (s == LQ_OK) s = lq_file_commit(&f);       releases f, success or not
 *     else lq_file_abort(&f);
 *
 * or, for a buffer in hand, lq_file_write_all(path, buf, n).
 */
#ifndef LQ_FILE_H
#define LQ_FILE_H

#include "lq_status.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- inputs ---------------------------------------------------------------------------------- */

/* Open `path` read-only (close-on-exec). LQ_ERR_IO if it cannot be opened (errno is then the
 * open's, ENOENT for a missing file, for callers that report that as LQ_ERR_NOT_FOUND) or is not
 * a regular file (a FIFO, socket, device or directory). On success *fd is a blocking descriptor
 * and *size (may be NULL) the file's size. */
lq_status lq_file_open_input(const char *path, int *fd, uint64_t *size);

/* The same as a stdio stream ("rb"). */
lq_status lq_file_fopen_input(const char *path, FILE **out);

/* ---- outputs --------------------------------------------------------------------------------- */

typedef struct lq_file_out {
    int fd;     /* the temporary file; -1 once closed */
    char *path; /* final name */
    char *tmp;  /* "<path>.tmp.<pid>"; NULL once renamed or removed */
} lq_file_out;

/* Create "<path>.tmp.<pid>" (mode 0644; an existing one of this process is replaced). On failure
 * nothing is left and *f needs no abort. */
lq_status lq_file_begin(lq_file_out *f, const char *path);

/* Write all n bytes (retrying short writes and EINTR). On failure the caller still owns f
 * (lq_file_abort). */
lq_status lq_file_write(lq_file_out *f, const void *buf, size_t n);

/* fsync, close, rename over `path`, fsync the directory. Releases f whether it succeeds or not;
 * on failure the temporary file is gone and `path` is untouched (unless only the directory fsync
 * failed: then `path` holds the new bytes but their name may not survive a power cut). */
lq_status lq_file_commit(lq_file_out *f);

/* Close and remove the temporary file; release f. Safe after commit or a failed begin (no-op). */
void lq_file_abort(lq_file_out *f);

/* begin + write + commit of one buffer. */
lq_status lq_file_write_all(const char *path, const void *buf, size_t n);

/* Copy the input file `src` (lq_file_open_input) to `dst` through begin + write + commit. */
lq_status lq_file_copy(const char *src, const char *dst);

/* fsync a directory so the names created, renamed or removed in it are durable. A file system
 * that cannot fsync directories (EINVAL) is not an error. */
lq_status lq_file_sync_dir(const char *dir);

/* lq_file_sync_dir of the directory holding `path` ("." for a bare name). */
lq_status lq_file_sync_parent(const char *path);

#ifdef __cplusplus
}
#endif
#endif
