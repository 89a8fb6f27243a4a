/* stats.c - tensor statistics, threaded and deterministic. */
#include "stats.h"
#include "fp.h"

#include <math.h>

int isq_decode_to_float(enum isq_type t, const void *src, float *dst, uint64_t n)
{
	const uint8_t *b = src;
	switch (t) {
	case ISQ_TYPE_F32:
		memcpy(dst, src, n * 4);
		return 0;
	case ISQ_TYPE_F64:
		for (uint64_t i = 0; i < n; i++) {
			double d;
			memcpy(&d, b + 8 * i, 8);
			dst[i] = (float)d;
		}
		return 0;
	case ISQ_TYPE_I8:
		for (uint64_t i = 0; i < n; i++)
			dst[i] = (float)(int8_t)b[i];
		return 0;
	case ISQ_TYPE_I16:
		for (uint64_t i = 0; i < n; i++)
			dst[i] = (float)(int16_t)isq_le16(b + 2 * i);
		return 0;
	case ISQ_TYPE_I32:
		for (uint64_t i = 0; i < n; i++)
			dst[i] = (float)(int32_t)isq_le32(b + 4 * i);
		return 0;
	case ISQ_TYPE_I64:
		for (uint64_t i = 0; i < n; i++)
			dst[i] = (float)(int64_t)isq_le64(b + 8 * i);
		return 0;
	case ISQ_TYPE_FP8:
		for (uint64_t i = 0; i < n; i++)
			dst[i] = isq_e4m3_to_fp32(b[i]);
		return 0;
	default:
		break;
	}
	const struct isq_type_traits *tt = isq_type_traits(t);
	if (!tt || !tt->dequantize || tt->blck <= 0 || n % (uint64_t)tt->blck)
		return ISQ_EUNSUPPORTED;
	tt->dequantize(src, dst, (int64_t)n);
	return 0;
}

/* Elements per chunk: large enough to amortize, a multiple of every block size (256 | 4096). */
#define CHUNK 65536

struct partial {
	uint64_t n_finite, n_nan, n_inf, n_out;
	double mean, m2, min, max; /* m2 = sum of squared deviations from this chunk's mean */
};

struct job {
	enum isq_type t;
	const uint8_t *data;
	uint64_t n;
	size_t bytes_per_chunk;
	int64_t blck;
	struct partial *parts;
	double mean, thresh; /* second pass */
	int pass;
	int failed;
};

static void run_chunk(void *ctx, int64_t begin, int64_t end, int worker)
{
	struct job *j = ctx;
	static _Thread_local float buf[CHUNK];
	(void)worker;
	for (int64_t c = begin; c < end; c++) {
		uint64_t first = (uint64_t)c * CHUNK;
		uint64_t cnt = ISQ_MIN((uint64_t)CHUNK, j->n - first);
		if (isq_decode_to_float(j->t, j->data + (uint64_t)c * j->bytes_per_chunk, buf, cnt)) {
			j->failed = 1;
			return;
		}
		struct partial *p = &j->parts[c];
		if (j->pass == 0) {
			struct partial q = { 0, 0, 0, 0, 0.0, 0.0, INFINITY, -INFINITY };
			double sum = 0;
			for (uint64_t i = 0; i < cnt; i++) {
				float x = buf[i];
				if (isnan(x)) {
					q.n_nan++;
				} else if (isinf(x)) {
					q.n_inf++;
				} else {
					q.n_finite++;
					sum += x;
					if (x < q.min)
						q.min = x;
					if (x > q.max)
						q.max = x;
				}
			}
			/* deviations from the chunk mean: no cancellation for data far from zero */
			q.mean = q.n_finite ? sum / (double)q.n_finite : 0;
			for (uint64_t i = 0; i < cnt; i++)
				if (isfinite(buf[i]))
					q.m2 += ((double)buf[i] - q.mean) * ((double)buf[i] - q.mean);
			*p = q;
		} else {
			uint64_t out = 0;
			for (uint64_t i = 0; i < cnt; i++) {
				float x = buf[i];
				if (isfinite(x) && fabs((double)x - j->mean) > j->thresh)
					out++;
			}
			p->n_out = out;
		}
	}
}

int isq_stats_compute(enum isq_type t, const void *data, uint64_t n, struct isq_pool *pool,
		      struct isq_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->n = n;
	if (n == 0)
		return 0;
	uint64_t bytes_per_chunk;
	const struct isq_type_traits *tt = isq_type_traits(t);
	if (!tt || isq_type_row_size(t, CHUNK, &bytes_per_chunk) || n % (uint64_t)tt->blck)
		return ISQ_EUNSUPPORTED;
	uint64_t nchunks = (n + CHUNK - 1) / CHUNK;
	struct job j = { .t = t, .data = data, .n = n, .bytes_per_chunk = bytes_per_chunk, .blck = tt->blck };
	j.parts = calloc(nchunks, sizeof(*j.parts));
	if (!j.parts)
		return ISQ_ENOMEM;
	for (j.pass = 0; j.pass < 2; j.pass++) {
		if (pool)
			isq_pool_for(pool, (int64_t)nchunks, 1, run_chunk, &j);
		else
			run_chunk(&j, 0, (int64_t)nchunks, 0);
		if (j.failed) {
			free(j.parts);
			return ISQ_EUNSUPPORTED;
		}
		if (j.pass == 0) {
			/* Chan et al.'s pairwise combination of (count, mean, M2), in chunk order */
			double mean = 0, m2 = 0, mn = INFINITY, mx = -INFINITY;
			for (uint64_t c = 0; c < nchunks; c++) {
				const struct partial *p = &j.parts[c];
				out->n_nan += p->n_nan;
				out->n_inf += p->n_inf;
				if (!p->n_finite)
					continue;
				double na = (double)out->n_finite, nb = (double)p->n_finite, nt = na + nb;
				double delta = p->mean - mean;
				mean += delta * nb / nt;
				m2 += p->m2 + delta * delta * na * nb / nt;
				out->n_finite += p->n_finite;
				mn = p->min < mn ? p->min : mn;
				mx = p->max > mx ? p->max : mx;
			}
			if (out->n_finite == 0) {
				free(j.parts);
				return 0;
			}
			out->mean = mean;
			out->std = sqrt(m2 / (double)out->n_finite);
			out->min = mn;
			out->max = mx;
			out->absmax = fabs(mn) > fabs(mx) ? fabs(mn) : fabs(mx);
			j.mean = out->mean;
			j.thresh = 6.0 * out->std;
		}
	}
	uint64_t n_out = 0;
	for (uint64_t c = 0; c < nchunks; c++)
		n_out += j.parts[c].n_out;
	out->frac_6sigma = (double)n_out / (double)out->n_finite;
	free(j.parts);
	return 0;
}
