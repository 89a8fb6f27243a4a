/*
 * svg.c - scatter charts as standalone SVG.
 *
 * Text widths are estimated (no font metrics offline): 0.6 em per character
 * is a little wider than most sans-serif glyphs, so boxes err on the side of
 * avoiding overlaps rather than allowing them.
 */
#include "svg.h"

#include <math.h>

#define PLOT_W 560.0
#define PLOT_H 380.0
#define TOP 56.0
#define BOTTOM 64.0
#define FONT 12.0
#define LABEL_FONT 11.0
#define CHAR_W 0.6 /* em per character, see above */

/* Okabe-Ito: distinguishable by people with the common colour-vision deficiencies. */
static const char *const colours[] = {
	"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#999999",
};
enum { N_COLOURS = 8, N_MARKERS = 6 };

struct axis {
	int log;
	double lo, hi; /* in plot space (log10 of the value on a log axis) */
	double ticks[64];
	int n_ticks;
	double step;   /* value step of linear ticks, for their precision */
};

struct box {
	double x0, y0, x1, y1;
};

/* ---- text ---------------------------------------------------------------------- */

/* Length in bytes of a valid UTF-8 sequence at S (max N bytes), or 0. */
static int utf8_len(const unsigned char *s, size_t n)
{
	int len = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
	if (!len || (size_t)len > n || (len == 2 && s[0] < 0xC2))
		return 0;
	for (int i = 1; i < len; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	return len;
}

/*
 * XML-escaped S.  Bytes XML 1.0 forbids (control characters, broken UTF-8)
 * become '?' so that one odd label cannot make the whole file unreadable.
 */
static int put_text(struct isq_buf *b, const char *s)
{
	int rc = 0;
	size_t n = s ? strlen(s) : 0;
	for (size_t i = 0; i < n && !rc;) {
		unsigned char c = (unsigned char)s[i];
		int len = utf8_len((const unsigned char *)s + i, n - i);
		if (c == '&')
			rc = isq_buf_puts(b, "&amp;");
		else if (c == '<')
			rc = isq_buf_puts(b, "&lt;");
		else if (c == '>')
			rc = isq_buf_puts(b, "&gt;");
		else if (c == '"')
			rc = isq_buf_puts(b, "&quot;");
		else if (c == '\'')
			rc = isq_buf_puts(b, "&apos;");
		else if (!len || (c < 0x20 && c != '\t'))
			rc = isq_buf_putc(b, '?');
		else
			rc = isq_buf_append(b, s + i, (size_t)len);
		i += len ? (size_t)len : 1;
	}
	return rc;
}

/* Characters as a reader sees them: UTF-8 continuation bytes do not count. */
static double text_width(const char *s, double font)
{
	size_t n = 0;
	for (; s && *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return (double)n * font * CHAR_W;
}

/* ---- ticks --------------------------------------------------------------------- */

int isq_svg_nice_ticks(double lo, double hi, int target, double *ticks, int max, double *step)
{
	if (hi < lo) {
		double t = lo;
		lo = hi;
		hi = t;
	}
	if (target < 2)
		target = 2;
	double range = hi - lo;
	if (!(range > 0))
		range = lo != 0 ? fabs(lo) * 0.2 : 1, lo -= range / 2, hi += range / 2;
	double raw = range / (double)target, mag = pow(10, floor(log10(raw))), f = raw / mag;
	double s = (f < 1.5 ? 1 : f < 2.25 ? 2 : f < 3.5 ? 2.5 : f < 7.5 ? 5 : 10) * mag;
	double k0 = floor(lo / s + 1e-9), k1 = ceil(hi / s - 1e-9);
	int n = 0;
	for (double k = k0; k <= k1 && n < max; k++) {
		double v = k * s; /* from the index, not by adding: no drift */
		ticks[n++] = fabs(v) < s * 1e-9 ? 0 : v;
	}
	if (step)
		*step = s;
	return n;
}

/* Digits after the point that V needs (0..12), so that 0.25 prints as 0.25 and 2 as 2. */
static int decimals(double v)
{
	v = fabs(v);
	for (int d = 0; d < 12; d++) {
		double x = v * pow(10, d);
		if (fabs(x - round(x)) < 1e-6 * (x > 1 ? x : 1))
			return d;
	}
	return 12;
}

/* A tick value printed with the precision of its axis's step; exponent form for extreme magnitudes. */
static void fmt_tick(char *out, size_t n, double v, double step)
{
	double a = fabs(v);
	if (a != 0 && (a >= 1e6 || a < 1e-4)) {
		snprintf(out, n, "%.3g", v);
		return;
	}
	snprintf(out, n, "%.*f", decimals(step), v);
}

/*
 * Axis range and ticks.  Linear: the nice ticks that cover the data (a 4%
 * margin first, so no point sits on the frame).  Log: whole decades when the
 * data spans one or more (every k-th decade past 8), 1-2-5 in between for up
 * to three decades, and for less than a decade linear nice values placed on
 * the log scale: a PPL axis from 7.7 to 8.4 reads 7.8, 8, 8.2, not 10^0.9.
 */
static void axis_fit(struct axis *a, double lo, double hi)
{
	if (a->log) {
		lo = log10(lo);
		hi = log10(hi);
	}
	if (hi - lo < 1e-12 * (fabs(lo) > 1 ? fabs(lo) : 1)) {
		double pad = a->log ? 0.5 : lo != 0 ? fabs(lo) * 0.1 : 1;
		lo -= pad;
		hi += pad;
	}
	if (!a->log) {
		double m = 0.04 * (hi - lo);
		a->n_ticks = isq_svg_nice_ticks(lo - m, hi + m, 6, a->ticks, 64, &a->step);
		a->lo = a->ticks[0];
		a->hi = a->ticks[a->n_ticks - 1];
		return;
	}
	double span = hi - lo;
	a->n_ticks = 0;
	if (span >= 1) {
		/*
		 * The axis ends at the ticks next to the data, not at whole
		 * decades: 0.0005 .. 0.2 rather than 0.0001 .. 1, which would
		 * leave a third of the plot empty.
		 */
		double d0 = floor(lo + 1e-9), d1 = ceil(hi - 1e-9);
		int every = (int)ceil((d1 - d0) / 8), fine = span <= 3;
		if (every < 1)
			every = 1;
		double t[64];
		int n = 0;
		for (double d = d0; d <= d1 && n < 60; d += every) {
			t[n++] = pow(10, d);
			if (fine && d < d1) {
				t[n++] = 2 * pow(10, d);
				t[n++] = 5 * pow(10, d);
			}
		}
		int first = 0, last = n - 1;
		while (first + 1 < n && log10(t[first + 1]) <= lo + 1e-9)
			first++;
		while (last > first + 1 && log10(t[last - 1]) >= hi - 1e-9)
			last--;
		for (int i = first; i <= last; i++)
			a->ticks[a->n_ticks++] = t[i];
		a->lo = log10(t[first]);
		a->hi = log10(t[last]);
		a->step = 0;
		return;
	}
	double m = 0.06 * span;
	a->lo = lo - m;
	a->hi = hi + m;
	double t[64];
	int n = isq_svg_nice_ticks(pow(10, a->lo), pow(10, a->hi), 5, t, 64, &a->step);
	for (int i = 0; i < n; i++)
		if (t[i] > 0 && log10(t[i]) >= a->lo - 1e-12 && log10(t[i]) <= a->hi + 1e-12)
			a->ticks[a->n_ticks++] = t[i];
}

/* Position of value V along the axis, 0..1. */
static double axis_frac(const struct axis *a, double v)
{
	double p = a->log ? log10(v) : v;
	return (p - a->lo) / (a->hi - a->lo);
}

static void axis_label(const struct axis *a, double v, char *out, size_t n)
{
	fmt_tick(out, n, v, a->log && !a->step ? v : a->step);
}

/* ---- layout -------------------------------------------------------------------- */

static double overlap(const struct box *a, const struct box *b)
{
	double w = fmin(a->x1, b->x1) - fmax(a->x0, b->x0), h = fmin(a->y1, b->y1) - fmax(a->y0, b->y0);
	return w > 0 && h > 0 ? w * h : 0;
}

/* Area of B outside the rectangle R. */
static double outside(const struct box *b, const struct box *r)
{
	return (b->x1 - b->x0) * (b->y1 - b->y0) - overlap(b, r);
}

/* Series index of each point, by first appearance; returns the number of series. */
static size_t index_series(const struct isq_plot_point *pts, size_t n, size_t *idx, const char **names)
{
	size_t ns = 0;
	for (size_t i = 0; i < n; i++) {
		const char *s = pts[i].series ? pts[i].series : "";
		size_t j = 0;
		while (j < ns && strcmp(names[j], s))
			j++;
		if (j == ns)
			names[ns++] = s;
		idx[i] = j;
	}
	return ns;
}

static int marker(struct isq_buf *b, int shape, double x, double y, const char *colour)
{
	double r = 4.5;
	switch (shape) {
	case 0:
		return isq_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"/>", x, y, r, colour);
	case 1:
		return isq_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>",
				      x - r * 0.85, y - r * 0.85, r * 1.7, r * 1.7, colour);
	case 2:
		return isq_buf_printf(b, "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fZ\" fill=\"%s\"/>", x, y - r * 1.15,
				      x + r, y + r * 0.8, x - r, y + r * 0.8, colour);
	case 3:
		return isq_buf_printf(b, "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fL%.1f %.1fZ\" fill=\"%s\"/>", x,
				      y - r * 1.2, x + r * 1.2, y, x, y + r * 1.2, x - r * 1.2, y, colour);
	case 4:
		return isq_buf_printf(b, "<path d=\"M%.1f %.1fL%.1f %.1fM%.1f %.1fL%.1f %.1f\" stroke=\"%s\" "
				      "stroke-width=\"2.2\"/>", x - r, y - r, x + r, y + r, x - r, y + r, x + r, y - r,
				      colour);
	default:
		return isq_buf_printf(b, "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fZ\" fill=\"none\" stroke=\"%s\" "
				      "stroke-width=\"1.8\"/>", x, y + r * 1.15, x + r, y - r * 0.8, x - r,
				      y - r * 0.8, colour);
	}
}

/* Candidate spots for a label around its point: right, left, above, below, then the diagonals. */
static const struct {
	double dx, dy;
	int anchor; /* 0 start, 1 middle, 2 end */
} spots[] = {
	{ 8, 4, 0 }, { -8, 4, 2 }, { 0, -9, 1 }, { 0, 17, 1 },
	{ 7, -7, 0 }, { 7, 15, 0 }, { -7, -7, 2 }, { -7, 15, 2 },
};

static struct box label_box(double x, double y, int spot, double w)
{
	double bx = x + spots[spot].dx, by = y + spots[spot].dy;
	double x0 = spots[spot].anchor == 0 ? bx : spots[spot].anchor == 1 ? bx - w / 2 : bx - w;
	return (struct box){ x0, by - LABEL_FONT * 0.8, x0 + w, by + LABEL_FONT * 0.25 };
}

/*
 * Greedy placement, points in order: the first spot that overlaps no placed
 * label, marker or the frame wins; failing that the least-overlapping spot,
 * if it overlaps by less than a fifth of the label.  Otherwise the label is
 * dropped (spot -1); the point's tooltip still names it.
 */
static void place_labels(const struct isq_plot_point *pts, size_t n, const double *px, const double *py,
			 const struct box *area, int *spot, struct box *boxes)
{
	for (size_t i = 0; i < n; i++) {
		spot[i] = -1;
		const char *l = pts[i].label;
		if (!l || !*l)
			continue;
		double w = text_width(l, LABEL_FONT), best = INFINITY;
		for (int s = 0; s < (int)ISQ_ARRAY_SIZE(spots); s++) {
			struct box b = label_box(px[i], py[i], s, w);
			double cost = 2 * outside(&b, area);
			for (size_t j = 0; j < n; j++) {
				struct box m = { px[j] - 5, py[j] - 5, px[j] + 5, py[j] + 5 };
				cost += overlap(&b, &m);
				if (j < i && spot[j] >= 0)
					cost += overlap(&b, &boxes[j]);
			}
			if (cost < best) {
				best = cost;
				spot[i] = s;
				boxes[i] = b;
				if (cost == 0)
					break;
			}
		}
		if (best > 0.2 * w * LABEL_FONT)
			spot[i] = -1;
	}
}

/* ---- the chart ----------------------------------------------------------------- */

struct chart {
	struct axis ax, ay;
	double left, right, width, height; /* plot area x range, canvas size */
};

/* An axis label and its closing tag; a log axis says so, inside the label's own parentheses if it ends with some. */
static int put_label(struct isq_buf *b, const char *label, int log)
{
	size_t n = label ? strlen(label) : 0;
	if (!log)
		return put_text(b, label) || isq_buf_puts(b, "</text>\n") ? ISQ_ENOMEM : 0;
	if (n && label[n - 1] == ')') {
		char *head = strndup(label, n - 1);
		int rc = head ? put_text(b, head) : ISQ_ENOMEM;
		free(head);
		return rc ? rc : isq_buf_puts(b, "; log scale)</text>\n");
	}
	return put_text(b, label) || isq_buf_puts(b, " (log scale)</text>\n") ? ISQ_ENOMEM : 0;
}

static int draw_axes(struct isq_buf *b, const struct chart *c, const char *xlabel, const char *ylabel)
{
	double top = TOP, bot = TOP + PLOT_H;
	char t[64];
	int rc = isq_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fcfcfc\" "
				"stroke=\"#444\"/>\n", c->left, top, PLOT_W, PLOT_H);
	for (int i = 0; i < c->ax.n_ticks && !rc; i++) {
		double x = c->left + axis_frac(&c->ax, c->ax.ticks[i]) * PLOT_W;
		axis_label(&c->ax, c->ax.ticks[i], t, sizeof(t));
		rc = isq_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e3e3\"/>"
				    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>"
				    "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
				    x, top, x, bot, x, bot, x, bot + 5, x, bot + 18, t);
	}
	for (int i = 0; i < c->ay.n_ticks && !rc; i++) {
		double y = bot - axis_frac(&c->ay, c->ay.ticks[i]) * PLOT_H;
		axis_label(&c->ay, c->ay.ticks[i], t, sizeof(t));
		rc = isq_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e3e3\"/>"
				    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>"
				    "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
				    c->left, y, c->right, y, c->left - 5, y, c->left, y, c->left - 8, y + 4, t);
	}
	rc = rc ? rc : isq_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", c->left + PLOT_W / 2,
				      bot + 44);
	rc = rc ? rc : put_label(b, xlabel, c->ax.log);
	rc = rc ? rc : isq_buf_printf(b, "<text transform=\"translate(18 %.1f) rotate(-90)\" text-anchor=\"middle\">",
				      top + PLOT_H / 2);
	rc = rc ? rc : put_label(b, ylabel, c->ay.log);
	return rc;
}

static int draw_points(struct isq_buf *b, const struct chart *c, const struct isq_plot_point *pts, size_t n,
		       const size_t *sidx)
{
	double *px = isq_mallocarray(n ? n : 1, 2 * sizeof(double));
	int *spot = isq_mallocarray(n ? n : 1, sizeof(int));
	struct box *boxes = isq_mallocarray(n ? n : 1, sizeof(struct box));
	int rc = px && spot && boxes ? 0 : ISQ_ENOMEM;
	double *py = px ? px + n : NULL;
	if (!rc) {
		for (size_t i = 0; i < n; i++) {
			px[i] = c->left + axis_frac(&c->ax, pts[i].x) * PLOT_W;
			py[i] = TOP + PLOT_H - axis_frac(&c->ay, pts[i].y) * PLOT_H;
		}
		struct box area = { c->left, TOP, c->right, TOP + PLOT_H };
		place_labels(pts, n, px, py, &area, spot, boxes);
	}
	for (size_t i = 0; i < n && !rc; i++) {
		const char *col = colours[sidx[i] % N_COLOURS];
		rc = isq_buf_puts(b, "<g><title>");
		rc = rc ? rc : put_text(b, pts[i].series);
		rc = rc ? rc : isq_buf_puts(b, ": ");
		rc = rc ? rc : put_text(b, pts[i].label);
		rc = rc ? rc : isq_buf_printf(b, " (%g, %g)</title>", pts[i].x, pts[i].y);
		rc = rc ? rc : marker(b, (int)(sidx[i] % N_MARKERS), px[i], py[i], col);
		if (!rc && spot[i] >= 0) {
			static const char *const anchor[] = { "start", "middle", "end" };
			int s = spot[i];
			rc = isq_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"%g\" "
					    "fill=\"#222\">", px[i] + spots[s].dx, py[i] + spots[s].dy,
					    anchor[spots[s].anchor], LABEL_FONT);
			rc = rc ? rc : put_text(b, pts[i].label);
			rc = rc ? rc : isq_buf_puts(b, "</text>");
		}
		rc = rc ? rc : isq_buf_puts(b, "</g>\n");
	}
	free(boxes);
	free(spot);
	free(px);
	return rc;
}

static int draw_legend(struct isq_buf *b, const struct chart *c, const char **names, size_t ns)
{
	int rc = 0;
	double x = c->right + 20, y = TOP + 10;
	for (size_t i = 0; i < ns && !rc; i++, y += 20) {
		rc = marker(b, (int)(i % N_MARKERS), x + 5, y, colours[i % N_COLOURS]);
		rc = rc ? rc : isq_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">", x + 16, y + 4);
		rc = rc ? rc : put_text(b, names[i][0] ? names[i] : "(unnamed)");
		rc = rc ? rc : isq_buf_puts(b, "</text>\n");
	}
	return rc;
}

int isq_svg_scatter(struct isq_buf *out, const char *title, const char *xlabel, const char *ylabel,
		    const struct isq_plot_point *pts, size_t n, int log_x, int log_y)
{
	if (!out || (n && !pts))
		return ISQ_EINVAL;
	struct chart c = { .ax.log = !!log_x, .ay.log = !!log_y };
	double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
	for (size_t i = 0; i < n; i++) {
		double x = pts[i].x, y = pts[i].y;
		if (!isfinite(x) || !isfinite(y) || (log_x && x <= 0) || (log_y && y <= 0))
			return ISQ_EINVAL;
		x0 = fmin(x0, x), x1 = fmax(x1, x), y0 = fmin(y0, y), y1 = fmax(y1, y);
	}
	if (!n) {
		x0 = y0 = 1;
		x1 = log_x ? 10 : 1;
		y1 = log_y ? 10 : 1;
		if (!log_x)
			x0 = 0;
		if (!log_y)
			y0 = 0;
	}
	axis_fit(&c.ax, x0, x1);
	axis_fit(&c.ay, y0, y1);

	size_t *sidx = isq_mallocarray(n ? n : 1, sizeof(size_t));
	const char **names = isq_mallocarray(n ? n : 1, sizeof(char *));
	struct isq_buf b = ISQ_BUF_INIT;
	int rc = sidx && names ? 0 : ISQ_ENOMEM;
	size_t ns = rc ? 0 : index_series(pts, n, sidx, names);

	/* room for the widest y tick label, the legend and the title */
	double ylw = 0, legw = 0;
	char t[64];
	for (int i = 0; i < c.ay.n_ticks; i++) {
		axis_label(&c.ay, c.ay.ticks[i], t, sizeof(t));
		ylw = fmax(ylw, text_width(t, FONT));
	}
	for (size_t i = 0; i < ns; i++)
		legw = fmax(legw, text_width(names[i][0] ? names[i] : "(unnamed)", FONT) + 40);
	c.left = 36 + ylw + 12;
	c.right = c.left + PLOT_W;
	c.width = c.right + (ns ? legw : 0) + 24;
	c.width = fmax(c.width, fmin(text_width(title, 16) + 40, 1600));
	c.height = TOP + PLOT_H + BOTTOM;

	rc = rc ? rc : isq_buf_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
				      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
				      "viewBox=\"0 0 %.0f %.0f\" font-family=\"Helvetica, Arial, sans-serif\" "
				      "font-size=\"%g\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
				      "<text x=\"%.1f\" y=\"30\" text-anchor=\"middle\" font-size=\"16\" "
				      "font-weight=\"bold\">", ceil(c.width), c.height, ceil(c.width), c.height, FONT,
				      c.width / 2);
	rc = rc ? rc : put_text(&b, title);
	rc = rc ? rc : isq_buf_puts(&b, "</text>\n");
	rc = rc ? rc : draw_axes(&b, &c, xlabel, ylabel);
	if (!rc && !n)
		rc = isq_buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#888\">no data"
				    "</text>\n", c.left + PLOT_W / 2, TOP + PLOT_H / 2);
	rc = rc ? rc : draw_points(&b, &c, pts, n, sidx);
	rc = rc ? rc : draw_legend(&b, &c, names, ns);
	rc = rc ? rc : isq_buf_puts(&b, "</svg>\n");
	rc = rc ? rc : isq_buf_append(out, b.data, b.len);
	isq_buf_release(&b);
	free(names);
	free(sidx);
	return rc;
}
