/* sample.c - greedy and stochastic token selection. */
#include "sample.h"

#include <math.h>

int isq_sampler_init(struct isq_sampler *s, const struct isq_sampler_params *p, size_t n_vocab)
{
	memset(s, 0, sizeof(*s));
	s->p = *p;
	/* splitmix64 mixes the seed, so that seeds 0, 1, 2 give unrelated streams */
	s->state = p->seed;
	s->cand = isq_mallocarray(n_vocab ? n_vocab : 1, sizeof(*s->cand));
	if (!s->cand)
		return ISQ_ENOMEM;
	s->cap = n_vocab;
	return 0;
}

void isq_sampler_release(struct isq_sampler *s)
{
	free(s->cand);
	memset(s, 0, sizeof(*s));
}

static uint64_t next_u64(struct isq_sampler *s)
{
	uint64_t z = (s->state += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

int32_t isq_argmax(const float *x, size_t n)
{
	size_t best = 0;
	for (size_t i = 1; i < n; i++)
		if (x[i] > x[best])
			best = i;
	return (int32_t)best;
}

static int by_logit_desc(const void *a, const void *b)
{
	const struct isq_sampler_cand *x = a, *y = b;
	if (x->logit != y->logit)
		return x->logit > y->logit ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Softmax of the first n candidates' logits divided by t, into p. */
static void softmax(struct isq_sampler_cand *c, size_t n, double t)
{
	double mx = c[0].logit, sum = 0;
	for (size_t i = 1; i < n; i++)
		mx = c[i].logit > mx ? c[i].logit : mx;
	for (size_t i = 0; i < n; i++) {
		double v = exp(((double)c[i].logit - mx) / t);
		c[i].p = (float)v;
		sum += v;
	}
	for (size_t i = 0; i < n; i++)
		c[i].p = (float)(c[i].p / sum);
}

int32_t isq_sampler_sample(struct isq_sampler *s, const float *logits, size_t n)
{
	if (s->p.temp <= 0 || n <= 1)
		return isq_argmax(logits, n);
	ISQ_ASSERT(n <= s->cap);
	struct isq_sampler_cand *c = s->cand;
	for (size_t i = 0; i < n; i++)
		c[i] = (struct isq_sampler_cand){ (int32_t)i, logits[i], 0 };
	/* sorted candidates make every filter a cut of the list's tail */
	qsort(c, n, sizeof(*c), by_logit_desc);
	size_t m = n;
	if (s->p.top_k > 0 && (size_t)s->p.top_k < m)
		m = (size_t)s->p.top_k;
	if (s->p.top_p < 1.0) {
		softmax(c, m, 1.0);
		double cum = 0;
		size_t keep = m;
		for (size_t i = 0; i < m; i++) {
			cum += c[i].p;
			if (cum >= s->p.top_p) {
				keep = i + 1;
				break;
			}
		}
		m = keep;
	}
	if (s->p.min_p > 0) {
		/* p_i >= min_p * p_max  <=>  logit_i >= logit_max + ln(min_p) */
		double floor = (double)c[0].logit + log(s->p.min_p);
		size_t keep = 1;
		while (keep < m && (double)c[keep].logit >= floor)
			keep++;
		m = keep;
	}
	softmax(c, m, s->p.temp);
	double r = (double)(next_u64(s) >> 11) * (1.0 / 9007199254740992.0);
	double cum = 0;
	for (size_t i = 0; i < m; i++) {
		cum += c[i].p;
		if (r < cum)
			return c[i].id;
	}
	return c[m - 1].id;
}
