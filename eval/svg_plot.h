/* svg_plot.h - a scatter plot as inline SVG (no scripts, no external resources) for the HTML
 * report (report_html.c): axes, "nice" ticks (1/2/5 x 10^k, or decades on a log axis), grid,
 * axis labels, one marker per point with a <title> tooltip, and a legend.
 *
 * Colors come from CSS classes the page defines (.ax, .grid, .s0 .. .s7), so one SVG reads in
 * light and dark mode. Every point carries its data values (data-x, data-y) next to its pixel
 * position, so a test can check the picture against the table it was drawn from.
 */
#ifndef SVG_PLOT_H
#define SVG_PLOT_H

#include <stdbool.h>
#include <stdio.h>

#define SVG_PLOT_SERIES 8 /* colors / marker shapes before they repeat */

typedef struct svg_point {
    double x, y;
    const char *label; /* legend and tooltip text (escaped when written) */
    int series;        /* color and marker: one per model, repeating after SVG_PLOT_SERIES */
} svg_point;

typedef struct svg_plot {
    const char *id;              /* element id, e.g. "plot-kld" */
    const char *title, *xlabel, *ylabel;
    bool ylog;                   /* log10 y axis (points with y <= 0 are left out and counted) */
    const svg_point *pts;
    int n;
    const char *note;            /* a line under the plot (may be NULL) */
} svg_plot;

/* Plot geometry, shared with the test that checks point positions. */
#define SVG_W 600
#define SVG_H 380
#define SVG_LEFT 78   /* plot area: x in [SVG_LEFT, SVG_W - SVG_RIGHT] */
#define SVG_RIGHT 20
#define SVG_TOP 40    /* y in [SVG_TOP, SVG_H - SVG_BOTTOM] */
#define SVG_BOTTOM 56

/* Write the plot (an <svg> element) to f. Returns the number of points drawn. */
int svg_plot_write(FILE *f, const svg_plot *p);

/* Write s with &, <, >, " and ' escaped. */
void svg_escape(FILE *f, const char *s);

#endif
