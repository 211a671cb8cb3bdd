/* report_html.h - the comparison table of quant-eval --compare as one self-contained HTML page
 * (no scripts, no fonts or styles from the network): the table, then inline SVG plots of quality
 * against bits per weight (mean KLD, delta PPL vs the baseline) and, with --bench, of decode and
 * prefill speed against size on disk. Light and dark color schemes follow the reader's setting.
 */
#ifndef REPORT_HTML_H
#define REPORT_HTML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libquant/lq_status.h"

typedef struct lq_report_row {
    const char *name, *path, *format;
    bool is_baseline;
    uint64_t disk_bytes;
    double bpw_linear, bpw_overall;
    double ppl, ppl_stderr, delta_ppl, delta_ppl_pct, kld_mean, kld_stderr, same_top;
    bool benched;
    double prefill_tok_s, decode_tok_s, bw_ratio; /* when benched */
    bool drafted;                /* as speculative draft of the baseline (lq_eval_draft) */
    double draft_accept, draft_alpha; /* when drafted: acceptance rate, mean sum min(p, q) */
} lq_report_row;

typedef struct lq_report {
    const char *file, *mode;     /* the evaluation text and "chunks" / "per-line" */
    const char *baseline;        /* its path */
    double baseline_ppl;
    int threads;
    bool bench;
    int n_prompt, n_gen;         /* with bench */
    double bandwidth_gb_s;       /* with bench, 0 = not measured */
    const char *command;         /* the command line that produced it (may be NULL) */
    bool draft_eval;             /* rows carry draft acceptance columns */
    int draft_max;               /* with draft_eval: K */
    const lq_report_row *rows;
    int n_rows;
} lq_report;

/* The page as a malloc'd NUL-terminated string (*len may be NULL). */
lq_status lq_report_html(const lq_report *r, char **out, size_t *len);

/* The page written to `path` through the durable writer (temp name, fsync, rename). */
lq_status lq_report_write_html(const lq_report *r, const char *path);

#endif
