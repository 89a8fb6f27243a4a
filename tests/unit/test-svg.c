/*
 * test-svg.c - the SVG chart writer (svg.h): well-formed output, escaping,
 * tick choice, and the inputs it must refuse.
 */
#include "test.h"

#include "svg.h"

/*
 * A small well-formedness check: every tag closes in order, attributes are
 * quoted, and '&' only starts one of the five predefined entities.  Returns
 * NULL when S is well formed, else what is wrong.
 */
static const char *xml_check(const char *s)
{
	static char why[128];
	const char *stack[256];
	size_t lens[256];
	int depth = 0, roots = 0;
	if (!strncmp(s, "<?xml", 5)) {
		s = strstr(s, "?>");
		if (!s)
			return "unterminated declaration";
		s += 2;
	}
	for (const char *p = s; *p; p++) {
		if (*p == '&') {
			static const char *const ents[] = { "&amp;", "&lt;", "&gt;", "&quot;", "&apos;" };
			int ok = 0;
			for (size_t i = 0; i < ISQ_ARRAY_SIZE(ents); i++)
				ok |= !strncmp(p, ents[i], strlen(ents[i]));
			if (!ok)
				return "bare '&'";
			continue;
		}
		if (*p == '>')
			return "bare '>' in text";
		if (*p != '<')
			continue;
		const char *q = p + 1;
		int closing = *q == '/';
		q += closing;
		size_t n = strcspn(q, " \t\n/>");
		if (!n)
			return "empty tag name";
		const char *name = q;
		q += n;
		/* attributes: name="value" with no '<' inside */
		while (*q && *q != '>' && *q != '/') {
			q += strspn(q, " \t\n");
			if (*q == '>' || *q == '/')
				break;
			size_t an = strcspn(q, "=> \t\n");
			if (!an || q[an] != '=' || q[an + 1] != '"')
				return "unquoted attribute";
			q += an + 2;
			const char *e = strchr(q, '"');
			if (!e || memchr(q, '<', (size_t)(e - q)))
				return "bad attribute value";
			q = e + 1;
		}
		int empty = *q == '/';
		if (empty)
			q++;
		if (*q != '>')
			return "unterminated tag";
		if (closing) {
			if (!depth || lens[depth - 1] != n || strncmp(stack[depth - 1], name, n)) {
				snprintf(why, sizeof(why), "mismatched </%.*s>", (int)n, name);
				return why;
			}
			depth--;
		} else if (!empty) {
			if (depth == 256)
				return "too deep";
			if (!depth)
				roots++;
			stack[depth] = name;
			lens[depth++] = n;
		} else if (!depth) {
			roots++;
		}
		p = q;
	}
	if (depth)
		return "unclosed element";
	return roots == 1 ? NULL : "not exactly one root element";
}

static size_t count(const char *s, const char *what)
{
	size_t n = 0;
	for (const char *p = s; (p = strstr(p, what)); p++)
		n++;
	return n;
}

TEST(svg_checker_catches_errors)
{
	/* the checker is the oracle of the tests below: it must be able to fail */
	CHECK(xml_check("<svg><g></g></svg>") == NULL);
	CHECK(xml_check("<svg><g></svg>") != NULL);
	CHECK(xml_check("<svg><text>a & b</text></svg>") != NULL);
	CHECK(xml_check("<svg x=1/>") != NULL);
	CHECK(xml_check("<svg/><svg/>") != NULL);
}

TEST(svg_scatter_well_formed)
{
	struct isq_plot_point pts[] = {
		{ "isq", "q8_0", 8.5, 0.0012 }, { "isq", "q6_k", 6.56, 0.004 }, { "isq", "q4_k_m", 4.8, 0.03 },
		{ "llama.cpp", "q8_0", 8.5, 0.0013 }, { "llama.cpp", "q4_k_m", 4.8, 0.031 },
		{ "isq + imatrix", "q4_k_m", 4.8, 0.021 },
	};
	struct isq_buf b = ISQ_BUF_INIT;
	CHECK_EQ_INT(isq_svg_scatter(&b, "KL", "bits per weight", "mean KL", pts, ISQ_ARRAY_SIZE(pts), 0, 1), 0);
	const char *why = xml_check(b.data);
	CHECK_MSG(why == NULL, "%s", why);
	CHECK(strstr(b.data, "<svg xmlns=\"http://www.w3.org/2000/svg\"") != NULL);
	CHECK(strstr(b.data, "width=\"") != NULL && strstr(b.data, "height=\"") != NULL);
	/* one tooltip per point, and each series in the legend */
	CHECK_EQ_INT(count(b.data, "<title>"), ISQ_ARRAY_SIZE(pts));
	CHECK(count(b.data, ">isq + imatrix<") == 1);
	CHECK(count(b.data, ">llama.cpp<") == 1);
	CHECK(strstr(b.data, "mean KL (log scale)") != NULL);
	/* log axis over 0.0012..0.031: 1-2-5 ticks, ending at the ticks next to the data */
	CHECK(strstr(b.data, ">0.001<") != NULL && strstr(b.data, ">0.01<") != NULL);
	CHECK(strstr(b.data, ">0.05<") != NULL && strstr(b.data, ">0.1<") == NULL);
	isq_buf_reset(&b);
	/* a label with its own unit in parentheses gets the log note inside them */
	CHECK_EQ_INT(isq_svg_scatter(&b, "KL", "bpw", "KL (nats)", pts, ISQ_ARRAY_SIZE(pts), 0, 1), 0);
	CHECK(strstr(b.data, ">KL (nats; log scale)<") != NULL);
	isq_buf_release(&b);
}

TEST(svg_scatter_escapes_text)
{
	struct isq_plot_point p = { "a<b>&\"c\"", "x'y & <z>", 1, 2 };
	struct isq_buf b = ISQ_BUF_INIT;
	CHECK_EQ_INT(isq_svg_scatter(&b, "t & <t>", "x \x01 label", "y\xff", &p, 1, 0, 0), 0);
	const char *why = xml_check(b.data);
	CHECK_MSG(why == NULL, "%s", why);
	CHECK(strstr(b.data, "a&lt;b&gt;&amp;&quot;c&quot;") != NULL);
	CHECK(strstr(b.data, "x&apos;y &amp; &lt;z&gt;") != NULL);
	CHECK(strstr(b.data, "t &amp; &lt;t&gt;") != NULL);
	/* a control character and a broken UTF-8 byte would make the file unreadable */
	CHECK(strchr(b.data, '\x01') == NULL);
	CHECK(strchr(b.data, '\xff') == NULL);
	isq_buf_release(&b);
}

TEST(svg_scatter_edge_cases)
{
	struct isq_buf b = ISQ_BUF_INIT;
	/* no points: an empty frame that says so */
	CHECK_EQ_INT(isq_svg_scatter(&b, "empty", "x", "y", NULL, 0, 0, 0), 0);
	CHECK(xml_check(b.data) == NULL);
	CHECK(strstr(b.data, "no data") != NULL);
	isq_buf_reset(&b);
	CHECK_EQ_INT(isq_svg_scatter(&b, "empty", "x", "y", NULL, 0, 1, 1), 0);
	CHECK(xml_check(b.data) == NULL);
	isq_buf_reset(&b);
	/* equal values: a padded range, no division by zero (no nan/inf in coordinates) */
	struct isq_plot_point same[] = { { "s", "a", 3, 7 }, { "s", "b", 3, 7 } };
	CHECK_EQ_INT(isq_svg_scatter(&b, "same", "x", "y", same, 2, 0, 0), 0);
	CHECK(xml_check(b.data) == NULL);
	CHECK(strstr(b.data, "nan") == NULL && strstr(b.data, "inf") == NULL);
	isq_buf_reset(&b);
	CHECK_EQ_INT(isq_svg_scatter(&b, "same", "x", "y", same, 1, 1, 1), 0);
	CHECK(xml_check(b.data) == NULL);
	CHECK(strstr(b.data, "nan") == NULL && strstr(b.data, "inf") == NULL);
	isq_buf_reset(&b);
	/* zero on a linear axis is fine */
	struct isq_plot_point zero = { NULL, NULL, 0, 0 };
	CHECK_EQ_INT(isq_svg_scatter(&b, NULL, NULL, NULL, &zero, 1, 0, 0), 0);
	CHECK(xml_check(b.data) == NULL);
	isq_buf_release(&b);
}

TEST(svg_scatter_errors_keep_buffer)
{
	struct isq_buf b = ISQ_BUF_INIT;
	CHECK_EQ_INT(isq_buf_puts(&b, "keep"), 0);
	struct isq_plot_point neg = { "s", "a", 1, -1 }, zero = { "s", "a", 0, 1 }, nan_ = { "s", "a", NAN, 1 };
	CHECK_EQ_INT(isq_svg_scatter(&b, "t", "x", "y", &neg, 1, 0, 1), ISQ_EINVAL);
	CHECK_EQ_INT(isq_svg_scatter(&b, "t", "x", "y", &zero, 1, 1, 0), ISQ_EINVAL);
	CHECK_EQ_INT(isq_svg_scatter(&b, "t", "x", "y", &nan_, 1, 0, 0), ISQ_EINVAL);
	CHECK_EQ_INT(isq_svg_scatter(&b, "t", "x", "y", NULL, 3, 0, 0), ISQ_EINVAL);
	CHECK_EQ_INT(isq_svg_scatter(NULL, "t", "x", "y", &neg, 1, 0, 0), ISQ_EINVAL);
	CHECK_STR(b.data, "keep");
	/* the same negative value is fine on a linear axis */
	CHECK_EQ_INT(isq_svg_scatter(&b, "t", "x", "y", &neg, 1, 0, 0), 0);
	isq_buf_release(&b);
}

TEST(svg_nice_ticks)
{
	double t[32], step;
	int n = isq_svg_nice_ticks(0, 1, 5, t, 32, &step);
	CHECK_NEAR(step, 0.2, 1e-12);
	CHECK_EQ_INT(n, 6);
	CHECK_NEAR(t[0], 0, 1e-12);
	CHECK_NEAR(t[n - 1], 1, 1e-12);
	/* covering: first tick <= lo, last >= hi, steps of 1, 2, 2.5 or 5 x 10^k */
	n = isq_svg_nice_ticks(7.71, 8.43, 5, t, 32, &step);
	CHECK(t[0] <= 7.71 && t[n - 1] >= 8.43);
	CHECK_NEAR(step, 0.1, 1e-12);
	CHECK_NEAR(t[1], 7.8, 1e-9);
	n = isq_svg_nice_ticks(-3, 1234, 6, t, 32, &step);
	CHECK_NEAR(step, 200, 1e-9);
	CHECK(t[0] <= -3 && t[n - 1] >= 1234);
	n = isq_svg_nice_ticks(0.0001, 0.00035, 4, t, 32, &step);
	CHECK_NEAR(step, 0.00005, 1e-15);
	/* no drift: ticks are exact multiples of the step */
	n = isq_svg_nice_ticks(0, 3, 30, t, 32, &step);
	CHECK_NEAR(step, 0.1, 1e-12);
	CHECK(t[3] == 3 * 0.1);
	/* zero stays zero, not -0 or 1e-17 */
	n = isq_svg_nice_ticks(-0.3, 0.3, 6, t, 32, &step);
	int has_zero = 0;
	for (int i = 0; i < n; i++)
		has_zero |= t[i] == 0 && !signbit(t[i]);
	CHECK(has_zero);
	/* a single value gets a range around it */
	n = isq_svg_nice_ticks(5, 5, 5, t, 32, &step);
	CHECK(n >= 2 && t[0] < 5 && t[n - 1] > 5);
	/* max bounds the count */
	CHECK_EQ_INT(isq_svg_nice_ticks(0, 1000, 1000, t, 4, &step), 4);
}

TEST(svg_tick_labels)
{
	/* a narrow log axis (PPL 7.7 .. 8.4) gets readable values, and linear labels print with the step's precision */
	struct isq_plot_point p[] = { { "s", "a", 2.5, 7.7 }, { "s", "b", 4.75, 8.4 } };
	struct isq_buf b = ISQ_BUF_INIT;
	CHECK_EQ_INT(isq_svg_scatter(&b, "t", "x", "y", p, 2, 0, 1), 0);
	CHECK(strstr(b.data, ">8<") != NULL || strstr(b.data, ">8.0<") != NULL);
	CHECK(strstr(b.data, ">7.8<") != NULL);
	CHECK(strstr(b.data, ">2.5<") != NULL);
	CHECK(strstr(b.data, ">0.000") == NULL);
	isq_buf_release(&b);
}

TEST(svg_labels_avoid_overlap)
{
	/* two points at the same x, close in y: both labels shown, on different spots */
	struct isq_plot_point p[] = {
		{ "isq", "q4_k_m", 4.8, 0.030 }, { "isq + imatrix", "q4_k_m", 4.8, 0.0301 }, { "isq", "q8_0", 8.5, 0.001 },
	};
	struct isq_buf b = ISQ_BUF_INIT;
	CHECK_EQ_INT(isq_svg_scatter(&b, "t", "x", "y", p, 3, 0, 0), 0);
	/* visible labels are <text ... font-size="11" ...>; the two q4_k_m ones must not share a y */
	double ys[4];
	int n = 0;
	for (const char *s = b.data; (s = strstr(s, "font-size=\"11\"")) && n < 4; s++) {
		const char *t = s;
		while (t > b.data && strncmp(t, "<text", 5))
			t--;
		const char *y = strstr(t, " y=\"");
		ys[n++] = strtod(y + 4, NULL);
	}
	CHECK_EQ_INT(n, 3);
	if (n == 3)
		CHECK_MSG(fabs(ys[0] - ys[1]) >= 10, "labels at y %.1f and %.1f", ys[0], ys[1]);
	isq_buf_release(&b);
}
