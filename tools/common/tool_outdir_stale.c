/* tool_outdir_stale.c - clean up after runs that were killed while building an output directory
 * (tool_outdir.h). A SIGKILL or a crash runs no handler, so "<out>.tmp.<pid>" (and, in the
 * fallback --force commit, "<out>.old.<pid>") stay behind; the next run on the same `out` finds
 * them here. A leftover of a pid that still runs belongs to a live run and is left alone. */
#include "tool_cli.h"
#include "tool_outdir.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct stale {
    char path[PATH_MAX];
    long pid;
    bool old; /* "<out>.old.<pid>": the previous output, not a half-written new one */
} stale;

/* The pid of "<base>.tmp.<pid>" / "<base>.old.<pid>", or 0 when `name` is not one of those. */
static long leftover_pid(const char *name, const char *base, bool *old) {
    size_t bl = strlen(base);
    if (strncmp(name, base, bl) != 0) return 0;
    const char *r = name + bl;
    if (strncmp(r, ".tmp.", 5) == 0) *old = false;
    else if (strncmp(r, ".old.", 5) == 0) *old = true;
    else return 0;
    r += 5;
    if (*r < '1' || *r > '9' || strlen(r) > 9) return 0;
    long pid = 0;
    for (; *r; r++) {
        if (*r < '0' || *r > '9') return 0;
        pid = pid * 10 + (*r - '0');
    }
    return pid;
}

static bool pid_gone(long pid) {
    return pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Leftovers of dead pids next to `dir`; *n_out of them in a malloc'd array (NULL when none). */
static stale *find_stale(const char *dir, int *n_out) {
    *n_out = 0;
    char parent[PATH_MAX];
    const char *base = tool_path_parent(dir, parent);
    DIR *d = opendir(parent);
    if (!d) return NULL;
    stale *list = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        bool old;
        long pid = leftover_pid(e->d_name, base, &old);
        if (pid <= 0 || !pid_gone(pid)) continue;
        if (n == cap) {
            stale *nl = realloc(list, (size_t)(cap = cap ? 2 * cap : 4) * sizeof *nl);
            if (!nl) break;
            list = nl;
        }
        int k = snprintf(list[n].path, sizeof list[n].path, "%s/%s", parent, e->d_name);
        if (k < 0 || (size_t)k >= sizeof list[n].path) continue;
        list[n].pid = pid;
        list[n].old = old;
        n++;
    }
    closedir(d);
    *n_out = n;
    return list;
}

void tool_outdir_clean_stale(const char *dir) {
    int n;
    stale *list = find_stale(dir, &n);
    struct stat sb;
    /* Killed between the two renames of a fallback --force commit: the old output is the only
     * complete one; put it back before anything else is removed. */
    for (int i = 0; i < n; i++) {
        if (!list[i].old || lstat(dir, &sb) == 0 || errno != ENOENT) continue;
        if (rename(list[i].path, dir) == 0) {
            fprintf(stderr, "%s: restored %s from %s (left by pid %ld, which is gone)\n", tool_name(),
                    dir, list[i].path, list[i].pid);
            list[i].path[0] = 0;
        }
    }
    for (int i = 0; i < n; i++) {
        if (!list[i].path[0]) continue;
        if (tool_rm_tree(list[i].path) == 0)
            fprintf(stderr, "%s: removed stale %s (left by pid %ld, which is gone)\n", tool_name(),
                    list[i].path, list[i].pid);
        else
            fprintf(stderr, "%s: warning: cannot remove stale %s: %s\n", tool_name(), list[i].path,
                    strerror(errno));
    }
    free(list);
}
