/* tool_outdir.h - atomic output directories for tools that write a checkpoint (lq_tool library).
 *
 * A tool never leaves a half-written output behind, and never writes into its input:
 *
 *     const char *inputs[] = {model_path, tokenizer_path, NULL};
 *     if ((s = tool_outdir_check_inputs(out, inputs)) != LQ_OK) ...   refuse before any work
 *     tool_outdir od;
 *     if ((s = tool_outdir_begin(&od, out, force)) != LQ_OK) ...      refuses an existing `out`
 *     s = tool_outdir_write_config(&od, &cfg, dtype);                  files go to od.tmp
 *     if (s == LQ_OK) s = tool_outdir_file(&od, "model.safetensors", path, sizeof path);
 *     if (s == LQ_OK) s = write_weights(path, ...);
 *     if (s == LQ_OK) s = tool_outdir_commit(&od);                     rename into place
 *     if (s != LQ_OK) tool_outdir_abort(&od);                          remove od.tmp
 *
 * Everything is written into "<out>.tmp.<pid>" (next to `out`, so the final rename stays on one
 * file system) and renamed to `out` only when complete. With --force an existing `out` is
 * exchanged with the new one in one atomic step (renameat2 RENAME_EXCHANGE) and then removed; on
 * a file system without the exchange it is moved aside to "<out>.old.<pid>" first.
 *
 * SIGKILL (or a crash) cannot be caught: it leaves "<out>.tmp.<pid>" (or "<out>.old.<pid>")
 * behind. The next begin on the same `out`, by any tool, removes those whose pid no longer runs
 * and says so on stderr; an "<out>.old.<pid>" whose `out` is missing (killed between the two
 * renames) is put back as `out` instead.
 *
 * Interruption: from begin until commit or abort, SIGINT, SIGTERM and SIGHUP run a handler that
 * removes the temp directory with async-signal-safe calls only (openat, getdents64, unlinkat,
 * close), restores the previous disposition and re-raises the signal, so the tool still dies
 * "by the signal" (exit status 128 + N in a shell) and nothing is left behind. A signal that the
 * process ignored before begin (nohup, a background job) stays ignored. A signal that arrives
 * during commit is held until the new directory is in place and the old one removed, then
 * re-raised: commit is never cut between its two renames.
 *
 * One output directory at a time per process (the handler's state is process-wide). Tools must
 * not chdir between begin and commit (a relative temp path is removed relative to the cwd).
 */
#ifndef TOOL_OUTDIR_H
#define TOOL_OUTDIR_H

#include "libquant.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tool_outdir {
    char dir[PATH_MAX]; /* final directory, without trailing '/' */
    char tmp[PATH_MAX]; /* "<dir>.tmp.<pid>": every file is written here until commit */
} tool_outdir;

/* ---- the directory ---------------------------------------------------------------------------- */

/* LQ_ERR_INVALID_ARG if writing `dir` could touch an input: an input (file or directory) lies at or
 * inside `dir` (--force would delete it), or `dir` lies inside an input directory. `inputs` is a
 * NULL-terminated list; NULL entries before the end are not allowed, missing paths are skipped
 * (opening them fails later with a better message). The message names both paths. */
lq_status tool_outdir_check_inputs(const char *dir, const char *const *inputs);

/* Start building `dir`: LQ_ERR_EXISTS if it exists and !force; creates o->tmp and installs the
 * signal handlers. On failure nothing was created and no handler is installed. */
lq_status tool_outdir_begin(tool_outdir *o, const char *dir, bool force);

/* "<o->tmp>/<name>" into buf; LQ_ERR_INVALID_ARG if it does not fit. */
lq_status tool_outdir_file(const tool_outdir *o, const char *name, char *buf, size_t cap);

/* fsync the temp directory, move an existing `dir` aside, rename the temp directory to `dir`,
 * remove the old one, uninstall the handlers. On failure the previous `dir` is back in place and
 * the temp directory still exists: call tool_outdir_abort. */
lq_status tool_outdir_commit(tool_outdir *o);

/* Remove the temp directory and uninstall the handlers. Safe after a failed begin or commit, and
 * after a successful commit (then a no-op). */
void tool_outdir_abort(tool_outdir *o);

/* Remove the leftovers of killed runs next to `dir` ("<dir>.tmp.<pid>", "<dir>.old.<pid>" of a pid
 * that no longer runs), or put an "<dir>.old.<pid>" back as `dir` when `dir` is missing. Prints
 * one line per leftover on stderr. Called by tool_outdir_begin. */
void tool_outdir_clean_stale(const char *dir);

/* Split `path` at its last '/': its directory into parent (PATH_MAX bytes; "." without a slash,
 * "/" at the root) and the base name it returns (a pointer into path). */
const char *tool_path_parent(const char *path, char *parent);

/* rm -rf `path` without following symlinks, with async-signal-safe calls only (what the
 * handler uses). 0, or -1 with errno set when something could not be removed. A missing path is
 * success. */
int tool_rm_tree(const char *path);

/* ---- files in it -------------------------------------------------------------------------------- */

/* Write a text file and fsync it. */
lq_status tool_write_text(const char *path, const char *text);

/* HF's torch_dtype spelling of a storage dtype ("float32", "float16", "bfloat16"). */
const char *tool_torch_dtype(lq_dtype t);

/* config.json text for cfg with "torch_dtype" added as the last member. Caller frees *out. */
lq_status tool_config_text(const lq_config *cfg, lq_dtype dt, char **out);

/* <dir>/generation_config.json with cfg's BOS and EOS ids (what transformers writes). */
lq_status tool_write_generation_config(const char *dir, const lq_config *cfg);

/* config.json and generation_config.json into o->tmp. */
lq_status tool_outdir_write_config(const tool_outdir *o, const lq_config *cfg, lq_dtype dt);

/* Convert n f32 values to storage dtype dt (F32, F16 or BF16; round to nearest even) into out,
 * which holds n * lq_dtype_size(dt) bytes. */
void tool_convert_f32(const float *in, int64_t n, lq_dtype dt, void *out);

#endif
