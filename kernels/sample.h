/*
 * sample.h - picking the next token from a row of logits.
 *
 * temp <= 0 is greedy: the lowest id among the largest logits, no random
 * numbers drawn.  Otherwise the filters run in llama.cpp's default order:
 * top-k (k <= 0: off), top-p on the softmax of the raw logits (1: off),
 * min-p relative to the most likely token (0: off), then temperature and a
 * draw from the remaining distribution.  The random stream depends only on
 * the seed, so a seed reproduces a run on any machine.
 */
#ifndef ISQ_SAMPLE_H
#define ISQ_SAMPLE_H

#include "isq.h"

struct isq_sampler_params {
	double temp;  /* llama.cpp's default 0.8 */
	int top_k;    /* 40 */
	double top_p; /* 0.95 */
	double min_p; /* 0.05 */
	uint64_t seed;
};

struct isq_sampler_cand {
	int32_t id;
	float logit;
	float p;
};

struct isq_sampler {
	struct isq_sampler_params p;
	uint64_t state;
	struct isq_sampler_cand *cand; /* scratch, n_vocab entries */
	size_t cap;
};

/* Zero-initialize, then init.  Returns 0 or ISQ_ENOMEM. */
int isq_sampler_init(struct isq_sampler *s, const struct isq_sampler_params *p, size_t n_vocab);
void isq_sampler_release(struct isq_sampler *s);
/* The next token among n logits (n <= the n_vocab given to init). */
int32_t isq_sampler_sample(struct isq_sampler *s, const float *logits, size_t n);
/* Index of the largest value, the first on ties. */
int32_t isq_argmax(const float *x, size_t n);

#endif
