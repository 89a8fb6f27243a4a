/* progress.c - a one-line progress bar on stderr, for terminals only. */
#include "progress.h"

#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define REDRAW_NS 100000000LL

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

double isq_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void isq_progress_begin(struct isq_progress *p, const char *label, uint64_t total, int enabled)
{
	memset(p, 0, sizeof(*p));
	p->label = label ? label : "";
	p->total = total;
	p->start = isq_now();
	p->last_ns = now_ns();
	p->enabled = enabled && isatty(2);
}

static int term_width(void)
{
	struct winsize ws;
	if (ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
		return ws.ws_col;
	return 80;
}

static void fmt_eta(char *out, size_t n, double s)
{
	if (!(s >= 0) || s > 359999) {
		snprintf(out, n, "--:--");
		return;
	}
	unsigned t = (unsigned)(s + 0.5);
	if (t >= 3600)
		snprintf(out, n, "%u:%02u:%02u", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(out, n, "%u:%02u", t / 60, t % 60);
}

static void draw(const struct isq_progress *p, uint64_t done, double now)
{
	double el = now - p->start;
	double rate = el > 0 ? (double)done / 1e6 / el : 0.0;
	char tail[160], line[512];
	if (p->total) {
		double frac = done >= p->total ? 1.0 : (double)done / (double)p->total;
		char eta[32];
		fmt_eta(eta, sizeof(eta), frac > 0 && rate > 0 ? el * (1 - frac) / frac : -1);
		snprintf(tail, sizeof(tail), " %3d%%  %.1f/%.1f MB  %.1f MB/s  ETA %s", (int)(frac * 100),
			 (double)done / 1e6, (double)p->total / 1e6, rate, eta);
		/* the bar takes what the terminal has left, up to 30 cells; the last column stays free */
		int cols = term_width() - 1, fixed = (int)(strlen(p->label) + strlen(tail)) + 3;
		int w = ISQ_MIN(30, cols - fixed);
		char bar[40];
		if (w >= 5) {
			int fill = (int)(frac * w);
			for (int i = 0; i < w; i++)
				bar[i] = i < fill ? '#' : '.';
			bar[w] = '\0';
			snprintf(line, sizeof(line), "\r%s [%s]%s", p->label, bar, tail);
		} else {
			snprintf(line, sizeof(line), "\r%s%s", p->label, tail);
		}
		int len = (int)strlen(line);
		if (len - 1 > cols) /* still too wide: cut, rather than wrap and scroll */
			line[cols + 1] = '\0';
	} else {
		snprintf(line, sizeof(line), "\r%s  %.1f MB  %.1f MB/s", p->label, (double)done / 1e6, rate);
	}
	/* one write for the line and the erase, so that lines never interleave */
	size_t len = strlen(line);
	if (len + 3 < sizeof(line))
		memcpy(line + len, "\033[K", 4);
	fputs(line, stderr);
	fflush(stderr);
}

void isq_progress_update(struct isq_progress *p, uint64_t done)
{
	if (!__atomic_load_n(&p->enabled, __ATOMIC_RELAXED))
		return;
	uint64_t cur = __atomic_load_n(&p->done, __ATOMIC_RELAXED);
	while (done > cur && !__atomic_compare_exchange_n(&p->done, &cur, done, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	int64_t now = now_ns(), last = __atomic_load_n(&p->last_ns, __ATOMIC_RELAXED);
	if (now - last < REDRAW_NS)
		return;
	/* whoever moves last_ns forward draws; the others go back to work */
	if (!__atomic_compare_exchange_n(&p->last_ns, &last, now, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		return;
	draw(p, __atomic_load_n(&p->done, __ATOMIC_RELAXED), isq_now());
}

void isq_progress_end(struct isq_progress *p)
{
	if (!__atomic_exchange_n(&p->enabled, 0, __ATOMIC_RELAXED))
		return;
	fputs("\r\033[K", stderr);
	fflush(stderr);
}
