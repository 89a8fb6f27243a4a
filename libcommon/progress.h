/*
 * progress.h - a one-line progress bar on stderr, drawn only when stderr is a
 * terminal and the tool did not get -q.
 *
 *   struct isq_progress pr;
 *   isq_progress_begin(&pr, "quantize", total_bytes, enabled);
 *   isq_progress_update(&pr, done_bytes);   // from any thread
 *   isq_progress_end(&pr);                  // clears the line
 *
 * The line reads "LABEL [#####.....]  42%  120.5/286.9 MB  35.2 MB/s  ETA 0:04"
 * (MB = 10^6 bytes), fitted to the terminal's width, redrawn in place with
 * "\r" and erase-to-end-of-line.  Redraws happen at most every 100 ms, so
 * calling update per tensor or per row is cheap: between redraws it is one
 * atomic max and one clock read.  With total = 0 (unknown) the bar,
 * percentage and ETA are left out.
 */
#ifndef ISQ_PROGRESS_H
#define ISQ_PROGRESS_H

#include "isq.h"

struct isq_progress {
	const char *label; /* borrowed: must live until isq_progress_end */
	uint64_t total;
	/* private; accessed atomically */
	uint64_t done;    /* the largest value given to update */
	int64_t last_ns;  /* monotonic time of the last redraw (or of begin) */
	double start;
	int enabled;
};

/*
 * enabled = the tool's wish (not quiet); the bar still stays off unless
 * stderr is a terminal.  Draws nothing yet: a job shorter than 100 ms never
 * shows a bar.
 */
void isq_progress_begin(struct isq_progress *p, const char *label, uint64_t total, int enabled);
/*
 * Record that `done` bytes (of total) are finished.  Safe from several
 * threads at once; a smaller value than one already given is ignored, so
 * workers may report out of order.
 */
void isq_progress_update(struct isq_progress *p, uint64_t done);
/*
 * Erase the line (when the bar is enabled) and disable further updates.  Call it
 * after the threads that update have finished, and before printing anything
 * else to stderr.
 */
void isq_progress_end(struct isq_progress *p);

/* Monotonic seconds (CLOCK_MONOTONIC), for timing. */
double isq_now(void);

#endif
