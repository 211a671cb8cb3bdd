/* test_report_html.c - quant-eval --compare --html: the page is well formed (every tag closed in
 * order, nothing loaded from elsewhere, no script) and each plot has one point per model whose
 * data values are the table's numbers and whose pixel position follows from them (a linear, or
 * on the KLD axis logarithmic, map: equal ratios between every pair of points).
 */
#include <criterion/criterion.h>
#include <math.h>

#include "libquant.h"
#include "lq_test_util.h"
#include "report_html.h"
#include "svg_plot.h"

/* ---- a small structural check of the page: tags balanced, no script, nothing external ------ */

static bool is_void(const char *name, size_t n) {
    return (n == 4 && !strncmp(name, "meta", 4)) || (n == 2 && !strncmp(name, "br", 2));
}

/* 0 when every element closes in order; else the offset of the first problem + 1. */
static size_t check_tags(const char *html) {
    char stack[64][16];
    int depth = 0;
    for (const char *p = html; (p = strchr(p, '<')); p++) {
        if (!strncmp(p, "<!DOCTYPE", 9) || !strncmp(p, "<!--", 4)) continue;
        bool close = p[1] == '/';
        const char *name = p + 1 + close;
        size_t n = strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
        const char *end = strchr(name, '>');
        if (n == 0 || n >= 16 || !end) return (size_t)(p - html) + 1;
        bool self = end[-1] == '/';
        if (close) {
            if (depth == 0 || strlen(stack[depth - 1]) != n || strncmp(stack[depth - 1], name, n))
                return (size_t)(p - html) + 1;
            depth--;
        } else if (!self && !is_void(name, n)) {
            if (depth == 64) return (size_t)(p - html) + 1;
            memcpy(stack[depth], name, n);
            stack[depth++][n] = 0;
        }
        p = end;
    }
    return depth == 0 ? 0 : strlen(html) + 1;
}

static void check_page(const char *html) {
    cr_assert(!strncmp(html, "<!DOCTYPE html>", 15));
    size_t bad = check_tags(html);
    cr_assert_eq(bad, 0, "tags unbalanced at offset %zu: %.80s", bad - 1,
                 bad ? html + (bad - 1 < strlen(html) ? bad - 1 : 0) : "");
    cr_expect_null(strstr(html, "<script"));
    cr_expect_null(strstr(html, "https://"));
    /* the SVG namespace is the one http:// allowed: an identifier, never fetched */
    for (const char *p = html; (p = strstr(p, "http://")); p++)
        cr_expect(!strncmp(p, "http://www.w3.org/2000/svg", 26), "external reference: %.60s", p);
    cr_expect_null(strstr(html, "src="));
    cr_expect_null(strstr(html, "@import"));
}

/* ---- points ---------------------------------------------------------------------------------- */

typedef struct pt {
    double x, y, px, py;
} pt;

static double attr(const char *p, const char *name) {
    char key[32];
    snprintf(key, sizeof key, " %s=\"", name);
    const char *q = strstr(p, key);
    cr_assert(q, "no %s in %.80s", name, p);
    return strtod(q + strlen(key), NULL);
}

/* The points of plot `id`, in order; returns their count. */
static int plot_points(const char *html, const char *id, pt *out, int cap) {
    char key[64];
    snprintf(key, sizeof key, "<svg id=\"%s\"", id);
    const char *p = strstr(html, key);
    if (!p) return -1;
    const char *end = strstr(p, "</svg>");
    cr_assert(end);
    int n = 0;
    for (const char *q = p; (q = strstr(q, "<path class=\"pt ")) && q < end; q++) {
        cr_assert_lt(n, cap);
        const char *tag_end = strchr(q, '>');
        cr_assert(tag_end);
        out[n++] = (pt){attr(q, "data-x"), attr(q, "data-y"), attr(q, "data-px"), attr(q, "data-py")};
    }
    return n;
}

static bool close_to(double a, double b, double rel) { return fabs(a - b) <= rel * fmax(1e-12, fmax(fabs(a), fabs(b))); }

/* Pixels from values: inside the plot area, and one scale for every pair (map f of the value). */
static void check_map(const pt *p, int n, bool ylog) {
    for (int i = 0; i < n; i++) {
        cr_expect(p[i].px >= SVG_LEFT - 0.01 && p[i].px <= SVG_W - SVG_RIGHT + 0.01, "px %g", p[i].px);
        cr_expect(p[i].py >= SVG_TOP - 0.01 && p[i].py <= SVG_H - SVG_BOTTOM + 0.01, "py %g", p[i].py);
    }
    /* the scales from the widest pairs (least rounding), then every pair against them */
    double sx = NAN, sy = NAN, wx = 0, wy = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double dx = p[i].x - p[j].x;
            double dy = ylog ? log10(p[i].y) - log10(p[j].y) : p[i].y - p[j].y;
            if (fabs(dx) > wx) { wx = fabs(dx); sx = (p[i].px - p[j].px) / dx; }
            if (fabs(dy) > wy) { wy = fabs(dy); sy = (p[i].py - p[j].py) / dy; }
        }
    if (wx > 0) cr_expect_gt(sx, 0, "x grows to the right");
    if (wy > 0) cr_expect_lt(sy, 0, "y grows upwards");
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double dx = p[i].x - p[j].x;
            double dy = ylog ? log10(p[i].y) - log10(p[j].y) : p[i].y - p[j].y;
            /* pixels are printed with 2 decimals: 0.01 per pair, a little more via the scale */
            if (wx > 0)
                cr_expect(fabs((p[i].px - p[j].px) - sx * dx) < 0.02 + fabs(dx / wx) * 0.01,
                          "x: %g px for %g (scale %g)", p[i].px - p[j].px, dx, sx);
            if (wy > 0)
                cr_expect(fabs((p[i].py - p[j].py) - sy * dy) < 0.02 + fabs(dy / wy) * 0.01,
                          "y: %g px for %g (scale %g)", p[i].py - p[j].py, dy, sy);
        }
}

/* Four rows as quant-eval fills them (the numbers of a stories260K comparison). */
static const lq_report_row ROWS[] = {
    {.name = "f32", .format = "f32", .is_baseline = true, .disk_bytes = 1048576, .bpw_linear = 32,
     .bpw_overall = 32, .ppl = 3.5482, .same_top = 1, .benched = true, .prefill_tok_s = 2524.6,
     .decode_tok_s = 27498.8, .bw_ratio = 4.33},
    {.name = "W8A16", .format = "W8A16", .disk_bytes = 387973, .bpw_linear = 8.44,
     .bpw_overall = 11.48, .ppl = 3.5451, .delta_ppl = -0.0031, .delta_ppl_pct = -0.09,
     .kld_mean = 0.000419, .same_top = 0.9845, .benched = true, .prefill_tok_s = 3041.1,
     .decode_tok_s = 16638.6, .bw_ratio = 0.94},
    {.name = "FP8 <b>&", .format = "FP8", .disk_bytes = 377487, .bpw_linear = 8.42,
     .bpw_overall = 11.46, .ppl = 3.5829, .delta_ppl = 0.0347, .delta_ppl_pct = 0.98,
     .kld_mean = 0.006244, .same_top = 0.9568, .benched = true, .prefill_tok_s = 2570.5,
     .decode_tok_s = 14773.8, .bw_ratio = 0.83},
    {.name = "W4A16", .format = "W4A16", .disk_bytes = 272629, .bpw_linear = 4.47,
     .bpw_overall = 8.01, .ppl = 4.0893, .delta_ppl = 0.5411, .delta_ppl_pct = 15.25,
     .kld_mean = 0.143661, .same_top = 0.8143, .benched = true, .prefill_tok_s = 3535.7,
     .decode_tok_s = 17973.3, .bw_ratio = 0.71},
};

Test(report_html, page_structure_and_points) {
    lq_report r = {.file = "data/t.txt", .mode = "chunks", .baseline = "f32", .baseline_ppl = 3.5482,
                   .threads = 2, .bench = true, .n_prompt = 128, .n_gen = 32,
                   .bandwidth_gb_s = 6.61, .command = "quant-eval --compare a b --html 'x y'",
                   .rows = ROWS, .n_rows = 4};
    char *html = NULL;
    cr_assert_eq(lq_report_html(&r, &html, NULL), LQ_OK);
    check_page(html);
    cr_expect(strstr(html, "FP8 &lt;b&gt;&amp;"), "names are escaped");
    int rows = 0;
    for (const char *p = strstr(html, "<tbody>"); p && (p = strstr(p, "<tr")); p++) rows++;
    cr_expect_eq(rows, 4);
    pt p[8];
    /* KLD 4e-4 .. 0.14: a log axis, without the baseline's 0 */
    int n = plot_points(html, "plot-kld", p, 8);
    cr_assert_eq(n, 3, "%d KLD points", n);
    for (int i = 0; i < 3; i++) {
        cr_expect(close_to(p[i].x, ROWS[i + 1].bpw_linear, 1e-8));
        cr_expect(close_to(p[i].y, ROWS[i + 1].kld_mean, 1e-8));
    }
    check_map(p, n, true);
    cr_expect(strstr(html, "1 point with KLD 0 (the baseline) not shown"));
    n = plot_points(html, "plot-dppl", p, 8);
    cr_assert_eq(n, 4);
    for (int i = 0; i < 4; i++) {
        cr_expect(close_to(p[i].x, ROWS[i].bpw_linear, 1e-8));
        cr_expect(close_to(p[i].y, ROWS[i].delta_ppl_pct, 1e-8) || (p[i].y == 0 && ROWS[i].delta_ppl_pct == 0));
    }
    check_map(p, n, false);
    n = plot_points(html, "plot-decode", p, 8);
    cr_assert_eq(n, 4);
    for (int i = 0; i < 4; i++) {
        cr_expect(close_to(p[i].x, ROWS[i].disk_bytes / 1048576.0, 1e-8));
        cr_expect(close_to(p[i].y, ROWS[i].decode_tok_s, 1e-8));
    }
    check_map(p, n, false);
    n = plot_points(html, "plot-prefill", p, 8);
    cr_assert_eq(n, 4);
    for (int i = 0; i < 4; i++) cr_expect(close_to(p[i].y, ROWS[i].prefill_tok_s, 1e-8));
    check_map(p, n, false);
    free(html);

    /* without --bench: no speed plots */
    r.bench = false;
    cr_assert_eq(lq_report_html(&r, &html, NULL), LQ_OK);
    check_page(html);
    cr_expect_eq(plot_points(html, "plot-decode", p, 8), -1);
    free(html);
}

/* quant-eval end to end: stories260K f32 + W8A16 (quant-ptq); the dPPL % and bits per weight
 * the page's points carry are the Markdown table's numbers of the same run. */
Test(report_html, quant_eval_writes_the_page) {
    const char *dir = "/tmp/lq_test_report_html";
    char cmd[4096], err[4096], args[2048], txt[1024];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(lq_test_convert_stories260k("/tmp/lq_test_report_html/f32", cmd, sizeof cmd), 0, "%s", cmd);
    snprintf(args, sizeof args, "--model %s/f32 --scheme W8A16 --out %s/w8", dir, dir);
    cr_assert_eq(lq_test_run_tool("quant-ptq", args, dir, err, sizeof err), 0, "%s", err);
    snprintf(args, sizeof args, "--compare %s/f32 %s/w8 --file '%s' --per-line --separator "
             "'<|endoftext|>' --threads 1 --html %s/report.html", dir, dir,
             lq_test_shared("data/tinystories_sample.txt", txt, sizeof txt), dir);
    cr_assert_eq(lq_test_run_tool("quant-eval", args, dir, err, sizeof err), 0, "%s", err);
    char *html = lq_test_read_file("/tmp/lq_test_report_html/report.html", NULL);
    char *md = lq_test_read_file("/tmp/lq_test_report_html/stdout.txt", NULL);
    cr_assert(html && md);
    check_page(html);
    cr_expect(!lq_test_leftovers("/tmp/lq_test_report_html/report.html"));
    const char *row = strstr(md, "| w8 | W8A16 |");
    cr_assert(row, "%s", md);
    double mib, bpw, bpw_all, ppl, dppl, dppl_pct, kld;
    cr_assert_eq(sscanf(row, "| w8 | W8A16 | %lf | %lf | %lf | %lf | %lf | %lf | %lf |", &mib, &bpw,
                        &bpw_all, &ppl, &dppl, &dppl_pct, &kld), 7, "%s", row);
    pt p[4];
    cr_assert_eq(plot_points(html, "plot-dppl", p, 4), 2);
    cr_expect(fabs(p[1].x - bpw) <= 0.005 && fabs(p[1].y - dppl_pct) <= 0.005,
              "point (%g, %g), table (%g, %g)", p[1].x, p[1].y, bpw, dppl_pct);
    cr_expect(p[0].x == 32 && p[0].y == 0, "baseline point (%g, %g)", p[0].x, p[0].y);
    /* one quantized model: nothing to span decades, so a linear KLD axis with both points */
    cr_assert_eq(plot_points(html, "plot-kld", p, 4), 2);
    cr_expect(fabs(p[1].y - kld) <= 5e-7, "KLD %g vs table %g", p[1].y, kld);
    cr_expect_eq(plot_points(html, "plot-decode", p, 4), -1, "no speed plots without --bench");
    free(html);
    free(md);
    /* --html alone is refused */
    snprintf(args, sizeof args, "--model %s/f32 --file '%s' --html %s/x.html", dir, txt, dir);
    cr_expect_eq(lq_test_run_tool("quant-eval", args, dir, err, sizeof err), 2);
    cr_expect(strstr(err, "--html goes with --compare"), "%s", err);
}
