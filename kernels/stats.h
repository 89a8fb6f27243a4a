/*
 * stats.h - summary statistics of a tensor of any type (isq-inspect --stats).
 *
 * Values are decoded with the type's dequantizer (or widened for float and
 * integer types) and accumulated in double precision per chunk; chunk results
 * are combined in chunk order, so the figures do not depend on the thread
 * count.  NaN and Inf are counted and left out of every other figure.
 */
#ifndef ISQ_STATS_H
#define ISQ_STATS_H

#include "thread.h"
#include "types.h"

struct isq_stats {
	uint64_t n;         /* elements examined */
	uint64_t n_finite;
	uint64_t n_nan;
	uint64_t n_inf;
	double min, max;    /* over finite values (0 when there are none) */
	double mean, std;   /* population standard deviation */
	double absmax;
	double frac_6sigma; /* fraction of finite values with |x - mean| > 6 std */
};

/*
 * Statistics of n elements of type t at data (n a multiple of the block size).
 * pool may be NULL (single-threaded).  Returns 0, ISQ_EUNSUPPORTED for a type
 * with no decoder, or ISQ_ENOMEM.
 */
int isq_stats_compute(enum isq_type t, const void *data, uint64_t n, struct isq_pool *pool,
		      struct isq_stats *out);

/* Decode n elements of type t into float (widening F64/int types); 0 or ISQ_EUNSUPPORTED. */
int isq_decode_to_float(enum isq_type t, const void *src, float *dst, uint64_t n);

#endif
