/*
 * progress.h - a one-line progress bar on stderr, drawn only when stderr is a
 * terminal and the tool did not get -q.  Redraws at most ~10 times a second.
 *
 *   struct isq_progress pr;
 *   isq_progress_begin(&pr, "quantize", total_bytes, enabled);
 *   isq_progress_update(&pr, done_bytes);   // any thread-safe caller, monotonic
 *   isq_progress_end(&pr);                  // clears the line
 */
#ifndef ISQ_PROGRESS_H
#define ISQ_PROGRESS_H

#include "isq.h"

struct isq_progress {
	const char *label;
	uint64_t total;
	uint64_t done;
	double start, last_draw;
	int enabled;
};

/* enabled = the tool's wish (not quiet); the bar still stays off unless stderr is a tty. */
void isq_progress_begin(struct isq_progress *p, const char *label, uint64_t total, int enabled);
void isq_progress_update(struct isq_progress *p, uint64_t done);
void isq_progress_end(struct isq_progress *p);

/* Monotonic seconds, for timing. */
double isq_now(void);

#endif
