/* progress.c - a one-line progress bar on stderr, for terminals only. */
#include "progress.h"

#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

double isq_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Serializes redraws between threads; updates of `done` itself are atomic. */
static atomic_flag drawing = ATOMIC_FLAG_INIT;

void isq_progress_begin(struct isq_progress *p, const char *label, uint64_t total, int enabled)
{
	memset(p, 0, sizeof(*p));
	p->label = label;
	p->total = total;
	p->enabled = enabled && isatty(2);
	p->start = p->last_draw = isq_now();
}

static void draw(struct isq_progress *p, uint64_t done, double now)
{
	double el = now - p->start, frac = p->total ? (double)done / (double)p->total : 0.0;
	if (frac > 1)
		frac = 1;
	double rate = el > 0 ? (double)done / 1e6 / el : 0.0;
	double eta = frac > 0 && frac < 1 ? el * (1 - frac) / frac : 0.0;
	char bar[31];
	int fill = (int)(frac * 30);
	for (int i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[30] = '\0';
	fprintf(stderr, "\r%s [%s] %3.0f%% %.1f/%.1f MB %.1f MB/s ETA %.0fs \033[K", p->label, bar, frac * 100,
		(double)done / 1e6, (double)p->total / 1e6, rate, eta);
	fflush(stderr);
}

void isq_progress_update(struct isq_progress *p, uint64_t done)
{
	if (!p->enabled)
		return;
	__atomic_store_n(&p->done, done, __ATOMIC_RELAXED);
	double now = isq_now();
	if (now - p->last_draw < 0.1)
		return;
	if (atomic_flag_test_and_set(&drawing))
		return;
	p->last_draw = now;
	draw(p, done, now);
	atomic_flag_clear(&drawing);
}

void isq_progress_end(struct isq_progress *p)
{
	if (!p->enabled)
		return;
	fprintf(stderr, "\r\033[K");
	fflush(stderr);
	p->enabled = 0;
}
