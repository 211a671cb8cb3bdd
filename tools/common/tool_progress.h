/* tool_progress.h - what a tool shows a person while it works (lq_tool library): a progress bar
 * with ETA on a TTY stderr, and the process's peak resident memory for the summary.
 *
 *     tool_progress bar;
 *     tool_progress_begin(&bar, "quantizing", 1, !json);   total set by the first callback
 *     opts.progress = tool_progress_cb; opts.user = &bar;  lq_ptq/prune/recipe/eval callbacks
 *     ...
 *     tool_progress_end(&bar);
 *
 * Libraries (libquant, lq_eval) never draw: they report progress through a callback and the
 * tool decides whether a person is watching.
 */
#ifndef TOOL_PROGRESS_H
#define TOOL_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

/* A one-line progress bar with ETA on stderr. Draws only when enabled and stderr is a TTY, and
 * redraws at most a few times a second so it never costs measurable time. */
typedef struct tool_progress {
    const char *label;
    int64_t total;
    bool active;        /* drawing (enabled and stderr is a TTY) */
    double t_start;     /* seconds (monotonic) */
    double t_last_draw;
} tool_progress;

void tool_progress_begin(tool_progress *p, const char *label, int64_t total, bool enabled);
void tool_progress_update(tool_progress *p, int64_t done);
/* Clear the bar line (if one was drawn). */
void tool_progress_end(tool_progress *p);

/* Progress callback of lq_ptq_opts / lq_prune_opts / lq_recipe_step_opts / lq_ppl_opts /
 * lq_bench_opts: `user` is a tool_progress whose total is taken from the callback (known once
 * the driver has planned its work). The last argument (tensor or stage name) is not shown. */
void tool_progress_cb(void *user, int64_t done, int64_t total, const char *what);

/* Peak resident set size of this process in bytes (max of getrusage ru_maxrss and VmHWM in
 * /proc/self/status); 0 if neither is available. */
uint64_t tool_peak_rss_bytes(void);

#endif
