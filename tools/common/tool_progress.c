/* tool_progress.c - a rate-limited progress bar with ETA on a TTY stderr, silent otherwise. */
#include "tool_progress.h"

#include "lq_eval.h"

#include <stdio.h>
#include <unistd.h>

/* Redraw at most this often: a bar that redraws per token would cost more than the work. */
#define TOOL_PROGRESS_MIN_INTERVAL_S 0.2
#define TOOL_PROGRESS_WIDTH 30

void tool_progress_begin(tool_progress *p, const char *label, int64_t total, bool enabled) {
    p->label = label ? label : "";
    p->total = total;
    p->active = enabled && total > 0 && isatty(STDERR_FILENO);
    p->t_start = lq_eval_now();
    p->t_last_draw = 0.0;
}

static void fmt_secs(double s, char *buf, size_t cap) {
    if (s < 0 || s != s) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, cap, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else
        snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
}

void tool_progress_update(tool_progress *p, int64_t done) {
    if (!p->active) return;
    double now = lq_eval_now();
    if (done < p->total && now - p->t_last_draw < TOOL_PROGRESS_MIN_INTERVAL_S) return;
    p->t_last_draw = now;
    double frac = (double)done / (double)p->total;
    if (frac > 1) frac = 1;
    int fill = (int)(frac * TOOL_PROGRESS_WIDTH);
    char bar[TOOL_PROGRESS_WIDTH + 1];
    for (int i = 0; i < TOOL_PROGRESS_WIDTH; i++) bar[i] = i < fill ? '#' : '.';
    bar[TOOL_PROGRESS_WIDTH] = 0;
    double el = now - p->t_start;
    double eta = done > 0 ? el * (double)(p->total - done) / (double)done : 0;
    char e1[32], e2[32];
    fmt_secs(el, e1, sizeof e1);
    fmt_secs(eta, e2, sizeof e2);
    fprintf(stderr, "\r%s [%s] %lld/%lld %3.0f%% %s elapsed, ETA %s ", p->label, bar,
            (long long)done, (long long)p->total, 100.0 * frac, e1, done > 0 ? e2 : "?");
    fflush(stderr);
}

void tool_progress_end(tool_progress *p) {
    if (!p->active) return;
    /* erase the bar so the result lines start clean */
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
    p->active = false;
}

void tool_progress_cb(void *user, int64_t done, int64_t total, const char *what) {
    (void)what;
    tool_progress *p = user;
    p->total = total;
    tool_progress_update(p, done);
}
