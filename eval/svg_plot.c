/* svg_plot.c - scatter plots as inline SVG (svg_plot.h). */
#include "svg_plot.h"

#include <math.h>
#include <string.h>

void svg_escape(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* An axis: data range [lo, hi] (log10 of the values on a log axis) and its tick step. */
typedef struct axis {
    double lo, hi, step;
    bool log;
} axis;

/* 1, 2 or 5 x 10^k: the step that gives about `target` intervals over `span`. */
static double nice_step(double span, int target) {
    double raw = span / target;
    double mag = pow(10.0, floor(log10(raw)));
    double r = raw / mag;
    return (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10) * mag;
}

/* A linear axis over the values and 0 (a baseline and "no change" sit at 0, and speeds and sizes
 * read honestly from 0), widened to whole steps. */
static axis linear_axis(double mn, double mx) {
    axis a = {.lo = mn < 0 ? mn : 0, .hi = mx > 0 ? mx : 0};
    if (a.hi - a.lo <= 0) a.hi = a.lo + 1;
    a.step = nice_step(a.hi - a.lo, 5);
    a.lo = floor(a.lo / a.step + 1e-9) * a.step;
    a.hi = ceil(a.hi / a.step - 1e-9) * a.step;
    /* markers are drawn whole: room next to a point on the frame */
    if (a.hi - mx < 0.04 * (a.hi - a.lo)) a.hi += a.step;
    if (mn < 0 && mn - a.lo < 0.04 * (a.hi - a.lo)) a.lo -= a.step;
    return a;
}

static axis log_axis(double mn, double mx) {
    axis a = {.lo = floor(log10(mn)), .hi = ceil(log10(mx)), .step = 1, .log = true};
    if (a.hi <= a.lo) a.hi = a.lo + 1;
    return a;
}

static double frac(const axis *a, double v) {
    double t = a->log ? log10(v) : v;
    return (t - a->lo) / (a->hi - a->lo);
}

static double px_x(const axis *a, double v) {
    return SVG_LEFT + frac(a, v) * (SVG_W - SVG_LEFT - SVG_RIGHT);
}

static double px_y(const axis *a, double v) {
    return SVG_H - SVG_BOTTOM - frac(a, v) * (SVG_H - SVG_TOP - SVG_BOTTOM);
}

/* A tick label with the decimals the step needs ("0.25"; on a log axis 10 with the exponent
 * raised, as SVG text content). */
static void tick_label(const axis *a, double t, char *buf, size_t cap) {
    if (a->log) {
        int e = (int)lround(t);
        if (e == 0 || e == 1) snprintf(buf, cap, "%d", e ? 10 : 1);
        else snprintf(buf, cap, "10<tspan dy=\"-6\" font-size=\"9\">%d</tspan>", e);
        return;
    }
    int dec = a->step >= 1 ? 0 : (int)ceil(-log10(a->step) - 1e-9);
    if (fabs(t) < a->step * 1e-6) t = 0; /* no "-0" */
    snprintf(buf, cap, "%.*f", dec, t);
}

static void marker(FILE *f, int shape, double x, double y) {
    const double r = 5.5;
    switch (shape % 4) {
    case 0: fprintf(f, "M%.1f %.1fa%.1f %.1f 0 1 0 %.1f 0a%.1f %.1f 0 1 0 %.1f 0Z", x - r, y, r, r,
                    2 * r, r, r, -2 * r); break;
    case 1: fprintf(f, "M%.1f %.1fh%.1fv%.1fh%.1fZ", x - r, y - r, 2 * r, 2 * r, -2 * r); break;
    case 2: fprintf(f, "M%.1f %.1fL%.1f %.1fL%.1f %.1fZ", x, y - r * 1.2, x + r * 1.1, y + r * 0.8,
                    x - r * 1.1, y + r * 0.8); break;
    default: fprintf(f, "M%.1f %.1fL%.1f %.1fL%.1f %.1fL%.1f %.1fZ", x, y - r * 1.3, x + r, y, x,
                     y + r * 1.3, x - r, y); break;
    }
}

static void axes(FILE *f, const svg_plot *p, const axis *ax, const axis *ay) {
    const int x0 = SVG_LEFT, x1 = SVG_W - SVG_RIGHT, y0 = SVG_H - SVG_BOTTOM, y1 = SVG_TOP;
    char buf[96];
    int nx = (int)lround((ax->hi - ax->lo) / ax->step), ny = (int)lround((ay->hi - ay->lo) / ay->step);
    for (int i = 0; i <= nx; i++) {
        double t = ax->lo + i * ax->step, x = x0 + (double)i / nx * (x1 - x0);
        tick_label(ax, t, buf, sizeof buf);
        fprintf(f, "<line class=\"grid\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>"
                   "<line class=\"ax\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>"
                   "<text class=\"tick\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
                x, y1, x, y0, x, y0, x, y0 + 5, x, y0 + 19, buf);
    }
    for (int i = 0; i <= ny; i++) {
        double t = ay->lo + i * ay->step, y = y0 - (double)i / ny * (y0 - y1);
        tick_label(ay, t, buf, sizeof buf);
        fprintf(f, "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>"
                   "<line class=\"ax\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>"
                   "<text class=\"tick\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                x0, y, x1, y, x0 - 5, y, x0, y, x0 - 8, y + 4, buf);
    }
    fprintf(f, "<rect class=\"frame\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/>\n", x0, y1,
            x1 - x0, y0 - y1);
    fputs("<text class=\"title\" x=\"", f);
    fprintf(f, "%d\" y=\"22\" text-anchor=\"middle\">", (x0 + x1) / 2);
    svg_escape(f, p->title);
    fprintf(f, "</text>\n<text class=\"label\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">",
            (x0 + x1) / 2, SVG_H - 16);
    svg_escape(f, p->xlabel);
    fprintf(f, "</text>\n<text class=\"label\" transform=\"translate(18 %d) rotate(-90)\" "
               "text-anchor=\"middle\">", (y0 + y1) / 2);
    svg_escape(f, p->ylabel);
    fputs("</text>\n", f);
}

/* Legend columns: as wide as the longest label (about 7 px a character at 12 px). */
static int legend_col_w(const svg_plot *p) {
    size_t longest = 4;
    for (int i = 0; i < p->n; i++)
        if (p->pts[i].label && strlen(p->pts[i].label) > longest) longest = strlen(p->pts[i].label);
    int w = 30 + (int)(7 * longest);
    return w > SVG_W - SVG_LEFT ? SVG_W - SVG_LEFT : w;
}

/* Legend rows under the plot: one entry per distinct series, in order of first appearance. */
static int legend(FILE *f, const svg_plot *p, int y) {
    const int col_w = legend_col_w(p), per_row = (SVG_W - SVG_LEFT) / col_w;
    int k = 0;
    for (int i = 0; i < p->n; i++) {
        bool seen = false;
        for (int j = 0; j < i; j++) seen |= p->pts[j].series == p->pts[i].series;
        if (seen) continue;
        int x = SVG_LEFT + (k % per_row) * col_w, yy = y + (k / per_row) * 20;
        fprintf(f, "<g class=\"legend s%d\"><path d=\"", p->pts[i].series % SVG_PLOT_SERIES);
        marker(f, p->pts[i].series % SVG_PLOT_SERIES, x + 6, yy - 4);
        fprintf(f, "\"/><text x=\"%d\" y=\"%d\">", x + 18, yy);
        svg_escape(f, p->pts[i].label);
        fputs("</text></g>\n", f);
        k++;
    }
    return (k + per_row - 1) / per_row;
}

static int legend_rows(const svg_plot *p) {
    int k = 0;
    for (int i = 0; i < p->n; i++) {
        bool seen = false;
        for (int j = 0; j < i; j++) seen |= p->pts[j].series == p->pts[i].series;
        k += !seen;
    }
    int per_row = (SVG_W - SVG_LEFT) / legend_col_w(p);
    return (k + per_row - 1) / per_row;
}

int svg_plot_write(FILE *f, const svg_plot *p) {
    double xmn = INFINITY, xmx = -INFINITY, ymn = INFINITY, ymx = -INFINITY;
    int drawn = 0, skipped = 0;
    for (int i = 0; i < p->n; i++) {
        const svg_point *q = &p->pts[i];
        if (!isfinite(q->x) || !isfinite(q->y) || (p->ylog && q->y <= 0)) continue;
        xmn = fmin(xmn, q->x);
        xmx = fmax(xmx, q->x);
        ymn = fmin(ymn, q->y);
        ymx = fmax(ymx, q->y);
        drawn++;
    }
    if (drawn == 0) xmn = xmx = ymn = ymx = p->ylog ? 1 : 0;
    axis ax = linear_axis(xmn, xmx), ay = p->ylog ? log_axis(ymn, ymx) : linear_axis(ymn, ymx);
    int h = SVG_H + 20 * legend_rows(p) + 6;
    fprintf(f, "<svg id=\"%s\" class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
               "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"", p->id, SVG_W, h,
            SVG_W, h);
    svg_escape(f, p->title);
    fputs("\">\n", f);
    axes(f, p, &ax, &ay);
    for (int i = 0; i < p->n; i++) {
        const svg_point *q = &p->pts[i];
        if (!isfinite(q->x) || !isfinite(q->y) || (p->ylog && q->y <= 0)) {
            skipped++;
            continue;
        }
        double x = px_x(&ax, q->x), y = px_y(&ay, q->y);
        int s = q->series % SVG_PLOT_SERIES;
        fprintf(f, "<path class=\"pt s%d\" data-x=\"%.10g\" data-y=\"%.10g\" data-px=\"%.2f\" "
                   "data-py=\"%.2f\" d=\"", s, q->x, q->y, x, y);
        marker(f, s, x, y);
        fputs("\"><title>", f);
        svg_escape(f, q->label);
        fprintf(f, ": %s %.4g, %s %.4g</title></path>\n", p->xlabel, q->x, p->ylabel, q->y);
    }
    legend(f, p, SVG_H + 12);
    fputs("</svg>\n", f);
    (void)skipped;
    return drawn;
}
