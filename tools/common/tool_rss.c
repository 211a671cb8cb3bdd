/* tool_rss.c - peak resident set size, for the tools' summaries. */
#include "tool_progress.h"

#include <stdio.h>

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

uint64_t tool_peak_rss_bytes(void) {
    uint64_t best = 0;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0 && ru.ru_maxrss > 0)
        best = (uint64_t)ru.ru_maxrss * 1024u; /* Linux reports kilobytes */
    /* VmHWM is the same high-water mark; read it too because some kernels (and sanitizers
     * that re-exec) leave ru_maxrss stale. */
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "VmHWM:", 6) == 0) {
                unsigned long long kb = strtoull(line + 6, NULL, 10);
                if (kb * 1024u > best) best = kb * 1024u;
                break;
            }
        }
        fclose(f);
    }
    return best;
}
