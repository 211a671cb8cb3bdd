/* report_html.c - quant-eval --compare --html (report_html.h). The page is built in memory
 * (open_memstream) and written once through lq_file_write_all, so a reader never sees half a
 * page and a failed run leaves the old file in place. */
#include "report_html.h"
#include "svg_plot.h"

#include "libquant/lq_file.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Okabe-Ito colors (distinguishable with the common color-vision deficiencies), lighter in the
 * dark scheme; markers also differ in shape. */
static const char CSS[] =
    ":root{color-scheme:light dark;--fg:#1f2328;--bg:#ffffff;--muted:#59636e;--grid:#d8dee4;"
    "--rule:#d1d9e0;--head:#f6f8fa;--c0:#0072b2;--c1:#d55e00;--c2:#009e73;--c3:#cc79a7;"
    "--c4:#e69f00;--c5:#56b4e9;--c6:#8c564b;--c7:#6e7781}\n"
    "@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--muted:#9198a1;"
    "--grid:#262c36;--rule:#3d444d;--head:#151b23;--c0:#58a6ff;--c1:#ff8a4c;--c2:#3fd0a0;"
    "--c3:#e7a3d2;--c4:#f2c14e;--c5:#8fd3f7;--c6:#c9a193;--c7:#b1bac4}}\n"
    "body{background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,-apple-system,"
    "'Segoe UI',Roboto,sans-serif;margin:2em auto;max-width:1400px;padding:0 1.2em}\n"
    "h1{font-size:1.5em;margin:0 0 .3em}h2{font-size:1.15em;margin:1.6em 0 .5em}\n"
    ".meta{color:var(--muted);margin:.2em 0}code{font:13px ui-monospace,monospace}\n"
    ".scroll{overflow-x:auto}table{border-collapse:collapse;font-variant-numeric:tabular-nums;"
    "margin:.6em 0;font-size:14px}\n"
    "th,td{border-bottom:1px solid var(--rule);padding:.3em .55em;text-align:right;white-space:nowrap}\n"
    "th{background:var(--head);font-weight:600;white-space:normal;vertical-align:bottom}td:first-child,th:first-child,td:nth-child(2),"
    "th:nth-child(2){text-align:left}tr.base td{font-weight:600}\n"
    ".swatch{display:inline-block;width:.8em;height:.8em;border-radius:50%;margin-right:.4em;"
    "vertical-align:-.05em}\n"
    ".plots{display:flex;flex-wrap:wrap;gap:1.2em}.plots figure{margin:0}"
    "figcaption{color:var(--muted);font-size:13px;max-width:600px}\n"
    "svg text{fill:var(--fg);font:12px system-ui,sans-serif}svg .tick{fill:var(--muted)}"
    "svg .title{font-weight:600;font-size:14px}svg .label{font-size:13px}\n"
    "svg .grid{stroke:var(--grid);stroke-width:1}svg .ax{stroke:var(--fg);stroke-width:1}"
    "svg .frame{fill:none;stroke:var(--fg);stroke-width:1}\n"
    "svg .pt{stroke:var(--bg);stroke-width:1.2}\n"
    ".s0{fill:var(--c0);background:var(--c0)}.s1{fill:var(--c1);background:var(--c1)}"
    ".s2{fill:var(--c2);background:var(--c2)}.s3{fill:var(--c3);background:var(--c3)}"
    ".s4{fill:var(--c4);background:var(--c4)}.s5{fill:var(--c5);background:var(--c5)}"
    ".s6{fill:var(--c6);background:var(--c6)}.s7{fill:var(--c7);background:var(--c7)}\n";

static void esc(FILE *f, const char *s) { svg_escape(f, s ? s : ""); }

static void table(FILE *f, const lq_report *r) {
    fputs("<div class=\"scroll\"><table>\n<thead><tr><th>model</th><th>format</th><th>size MiB</th><th>bpw linear</th>"
          "<th>bpw all</th><th>PPL</th><th>&#916;PPL</th><th>&#916;PPL %</th><th>mean KLD</th>"
          "<th>same top %</th>", f);
    if (r->draft_eval) fprintf(f, "<th>draft accept %% (K %d)</th><th>draft &#945;</th>", r->draft_max);
    if (r->bench)
        fprintf(f, "<th>pp%d tok/s</th><th>tg%d tok/s</th><th>tg / BW bound</th>", r->n_prompt,
                r->n_gen);
    fputs("</tr></thead>\n<tbody>\n", f);
    for (int i = 0; i < r->n_rows; i++) {
        const lq_report_row *w = &r->rows[i];
        fprintf(f, "<tr%s><td><span class=\"swatch s%d\"></span>", w->is_baseline ? " class=\"base\"" : "",
                i % SVG_PLOT_SERIES);
        esc(f, w->name);
        fputs("</td><td>", f);
        esc(f, w->format);
        fprintf(f, "</td><td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%.4f</td><td>%+.4f</td>"
                   "<td>%+.2f</td><td>%.6f</td><td>%.2f</td>",
                w->disk_bytes / (1024.0 * 1024.0), w->bpw_linear, w->bpw_overall, w->ppl,
                w->delta_ppl, w->delta_ppl_pct, w->kld_mean, 100.0 * w->same_top);
        if (r->draft_eval && w->drafted)
            fprintf(f, "<td>%.2f</td><td>%.4f</td>", 100.0 * w->draft_accept, w->draft_alpha);
        else if (r->draft_eval)
            fputs("<td>-</td><td>-</td>", f);
        if (r->bench && w->benched)
            fprintf(f, "<td>%.1f</td><td>%.1f</td><td>%.0f%%</td>", w->prefill_tok_s,
                    w->decode_tok_s, 100.0 * w->bw_ratio);
        else if (r->bench)
            fputs("<td>-</td><td>-</td><td>-</td>", f);
        fputs("</tr>\n", f);
    }
    fputs("</tbody>\n</table></div>\n", f);
}

typedef enum plot_kind { PLOT_KLD, PLOT_DPPL, PLOT_DECODE, PLOT_PREFILL } plot_kind;

/* One plot of the rows; the caption says what the axes hold and what was left out. */
static void figure(FILE *f, const lq_report *r, plot_kind k, svg_point *pts) {
    int n = 0, skipped = 0;
    double ymin = INFINITY, ymax = 0;
    for (int i = 0; i < r->n_rows; i++) {
        const lq_report_row *w = &r->rows[i];
        double x = k <= PLOT_DPPL ? w->bpw_linear : w->disk_bytes / (1024.0 * 1024.0);
        double y = k == PLOT_KLD ? w->kld_mean : k == PLOT_DPPL ? w->delta_ppl_pct
                   : k == PLOT_DECODE ? w->decode_tok_s : w->prefill_tok_s;
        if (k >= PLOT_DECODE && !w->benched) continue;
        if (k == PLOT_KLD && !w->is_baseline && y > 0) {
            ymin = fmin(ymin, y);
            ymax = fmax(ymax, y);
        }
        pts[n++] = (svg_point){.x = x, .y = y, .label = w->name, .series = i};
    }
    /* KLDs of 8- and 4-bit formats differ by orders of magnitude: a log axis shows both; the
     * baseline (KLD 0 against itself) has no place on it */
    bool ylog = k == PLOT_KLD && ymax > 0 && ymax / ymin >= 30;
    for (int i = 0; ylog && i < n; i++) skipped += pts[i].y <= 0;
    static const char *const ids[] = {"plot-kld", "plot-dppl", "plot-decode", "plot-prefill"};
    static const char *const titles[] = {"Mean KL divergence vs bits per weight",
                                         "\xce\x94PPL vs bits per weight",
                                         "Decode speed vs size", "Prefill speed vs size"};
    char ylabel[64];
    if (k == PLOT_KLD) snprintf(ylabel, sizeof ylabel, "mean KLD%s", ylog ? " (log scale)" : "");
    else if (k == PLOT_DPPL) snprintf(ylabel, sizeof ylabel, "\xce\x94PPL vs baseline (%%)");
    else snprintf(ylabel, sizeof ylabel, "%s tok/s (%s%d)", k == PLOT_DECODE ? "decode" : "prefill",
                  k == PLOT_DECODE ? "tg" : "pp", k == PLOT_DECODE ? r->n_gen : r->n_prompt);
    svg_plot p = {.id = ids[k], .title = titles[k],
                  .xlabel = k <= PLOT_DPPL ? "bits per weight (linear layers)" : "size on disk (MiB)",
                  .ylabel = ylabel, .ylog = ylog, .pts = pts, .n = n};
    fputs("<figure>\n", f);
    svg_plot_write(f, &p);
    fputs("<figcaption>", f);
    if (k == PLOT_KLD)
        fputs("KL(P<sub>baseline</sub> || Q<sub>model</sub>) of the next-token distributions, "
              "mean over the scored tokens.", f);
    else if (k == PLOT_DPPL)
        fputs("100 &#215; (PPL &#8722; PPL<sub>baseline</sub>) / PPL<sub>baseline</sub> on the "
              "same tokens.", f);
    else
        fprintf(f, "Median of the runs, %d threads.", r->threads);
    if (skipped)
        fprintf(f, " %d point%s with KLD 0 (the baseline) not shown on the log axis.", skipped,
                skipped > 1 ? "s" : "");
    fputs("</figcaption>\n</figure>\n", f);
}

static void page(FILE *f, const lq_report *r, svg_point *pts) {
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<title>libquant comparison: ", f);
    esc(f, r->file);
    fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>Quantization comparison</h1>\n",
            CSS);
    fputs("<p class=\"meta\">text <code>", f);
    esc(f, r->file);
    fprintf(f, "</code> (%s), baseline <code>", r->mode ? r->mode : "chunks");
    esc(f, r->baseline);
    fprintf(f, "</code> (PPL %.4f), %d threads", r->baseline_ppl, r->threads);
    if (r->bench && r->bandwidth_gb_s > 0)
        fprintf(f, ", read bandwidth %.2f GB/s (measured in this run)", r->bandwidth_gb_s);
    fputs("</p>\n", f);
    if (r->command) {
        fputs("<p class=\"meta\">made by <code>", f);
        esc(f, r->command);
        fputs("</code></p>\n", f);
    }
    table(f, r);
    fputs("<h2>Quality against size</h2>\n<div class=\"plots\">\n", f);
    figure(f, r, PLOT_KLD, pts);
    figure(f, r, PLOT_DPPL, pts);
    fputs("</div>\n", f);
    if (r->bench) {
        fputs("<h2>Speed against size</h2>\n<div class=\"plots\">\n", f);
        figure(f, r, PLOT_DECODE, pts);
        figure(f, r, PLOT_PREFILL, pts);
        fputs("</div>\n", f);
    }
    fputs("</body>\n</html>\n", f);
}

lq_status lq_report_html(const lq_report *r, char **out, size_t *len) {
    *out = NULL;
    if (len) *len = 0;
    svg_point *pts = calloc((size_t)(r->n_rows > 0 ? r->n_rows : 1), sizeof *pts);
    char *buf = NULL;
    size_t n = 0;
    FILE *f = pts ? open_memstream(&buf, &n) : NULL;
    if (!f) {
        free(pts);
        return lq_fail(LQ_ERR_NOMEM, "report: out of memory");
    }
    page(f, r, pts);
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad) {
        free(buf);
        free(pts);
        return lq_fail(LQ_ERR_NOMEM, "report: out of memory building the page");
    }
    free(pts);
    *out = buf;
    if (len) *len = n;
    return LQ_OK;
}

lq_status lq_report_write_html(const lq_report *r, const char *path) {
    char *buf = NULL;
    size_t n = 0;
    lq_status s = lq_report_html(r, &buf, &n);
    if (s == LQ_OK) s = lq_file_write_all(path, buf, n);
    free(buf);
    return s;
}
