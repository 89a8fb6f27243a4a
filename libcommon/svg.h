/*
 * svg.h - a small SVG chart writer for report tools (isq-bench --plot).
 *
 *   struct isq_plot_point pts[] = {
 *           { "q4_K", "7B", 4.5, 0.012 },
 *           { "q8_0", "7B", 8.5, 0.001 },
 *   };
 *   struct isq_buf svg = ISQ_BUF_INIT;
 *   int rc = isq_svg_scatter(&svg, "KL vs size", "bits per weight",
 *                            "mean KLD", pts, 2, 0, 1);
 *   ... write svg.data (svg.len bytes) ...
 *   isq_buf_release(&svg);
 *
 * The output is one self-contained SVG 1.1 document (no scripts, no external
 * fonts or styles), so it opens in a browser and embeds in Markdown as is.
 *
 * Layout: a title on top, the plot area with "nice" ticks (1, 2, 5 x 10^k on
 * linear axes; decades on log axes, with 2 and 5 in between when the range is
 * narrow), a grid, axis labels, and a legend on the right with one colour and
 * marker shape per series, in order of first appearance.  Each point carries
 * its label next to it; labels that would overlap an earlier one are moved
 * to another side of their point, and dropped only as a last resort (the
 * point is still drawn, and its label is kept in a <title> tooltip).
 *
 * All text (title, axis labels, series names, point labels) is XML-escaped.
 * NULL title/xlabel/ylabel/series/label count as "".
 */
#ifndef ISQ_SVG_H
#define ISQ_SVG_H

#include "isq.h"
#include "buf.h"

/* One point of a scatter chart.  The strings are borrowed for the call. */
struct isq_plot_point {
	const char *series; /* legend entry; points with equal names share a marker */
	const char *label;  /* printed next to the point; NULL or "" for none */
	double x, y;
};

/*
 * Scatter chart, one colour/marker per series, each point labelled; log_x /
 * log_y pick log (base 10) axes.  Appends SVG text to OUT.
 *
 * n = 0 gives an empty, labelled frame; a single point or equal values get a
 * range padded around them.  Returns 0, ISQ_EINVAL (pts NULL with n > 0, a
 * non-finite coordinate, or a value <= 0 on a log axis), or ISQ_ENOMEM.  On
 * failure OUT keeps its old contents.
 */
int isq_svg_scatter(struct isq_buf *out, const char *title, const char *xlabel,
		    const char *ylabel, const struct isq_plot_point *pts, size_t n,
		    int log_x, int log_y);

/*
 * The tick values a linear axis over [lo, hi] gets: about `target` (>= 2)
 * "nice" values (1, 2, 2.5 or 5 x 10^k steps) covering the range.  Writes at
 * most `max` ticks to ticks[] and returns how many, and sets *step.  Exposed
 * for tests and for callers that draw their own axes.
 */
int isq_svg_nice_ticks(double lo, double hi, int target, double *ticks, int max,
		       double *step);

#endif
