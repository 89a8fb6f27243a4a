/*
 * forward-bench.c - llama-bench's pp/tg measurement over isq_fw_eval.
 */
#include "forward-bench.h"

#include "progress.h"

#include <math.h>
#include <time.h>

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int32_t rand_id(uint64_t *s, int64_t n_vocab)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return (int32_t)((*s >> 33) % (uint64_t)n_vocab);
}

static void mean_sd(const double *x, int n, double *mean, double *sd)
{
	double s = 0, q = 0;
	for (int i = 0; i < n; i++)
		s += x[i];
	*mean = n ? s / n : 0;
	for (int i = 0; i < n; i++)
		q += (x[i] - *mean) * (x[i] - *mean);
	*sd = n > 1 ? sqrt(q / (n - 1)) : 0;
}

int isq_fw_bench(const struct isq_fw_weights *w, struct isq_backend *be, const struct isq_fw_bench_params *p,
		 struct isq_fw_bench_result *r, struct isq_errbuf *e)
{
	memset(r, 0, sizeof(*r));
	if (p->n_prompt < 0 || p->n_gen < 0 || p->n_prompt + p->n_gen < 1)
		return isq_errbuf_set(e, ISQ_EINVAL, "nothing to measure: prompt and generation lengths are both 0");
	if (p->reps < 1 || p->reps > ISQ_FW_BENCH_MAX_REPS)
		return isq_errbuf_set(e, ISQ_EINVAL, "repetitions must be between 1 and %d", ISQ_FW_BENCH_MAX_REPS);
	int64_t nv = w->cfg.n_vocab, n_ctx = p->n_prompt > p->n_gen ? p->n_prompt : p->n_gen;
	struct isq_fw_params fp = { .n_ctx = n_ctx, .n_batch = p->n_prompt < 512 ? (p->n_prompt ? p->n_prompt : 1) : 512,
				    .kv_type = p->kv_type };
	struct isq_fw_ctx *fw = NULL;
	int rc = isq_fw_new(&fw, w, be, &fp, e);
	if (rc)
		return rc;
	size_t nr = (size_t)p->reps;
	int32_t *ids = isq_mallocarray(p->n_prompt ? (size_t)p->n_prompt : 1, sizeof(int32_t));
	float *logits = isq_mallocarray((size_t)nv, sizeof(float));
	double *rates = isq_mallocarray(4 * nr, sizeof(double));
	if (!ids || !logits || !rates) {
		rc = isq_errbuf_set(e, ISQ_ENOMEM, "out of memory");
		goto out;
	}
	double *pp = rates, *tg = rates + nr, *ppc = rates + 2 * nr, *tgc = rates + 3 * nr, start = isq_now();
	uint64_t seed = p->seed ? p->seed : 1234;
	/* rep -1 is the warm-up: first-touch page faults and cold caches are not the model's speed */
	for (int k = -1; k < p->reps && !rc; k++) {
		if (p->n_prompt) {
			ids[0] = 1;
			for (int i = 1; i < p->n_prompt; i++)
				ids[i] = rand_id(&seed, nv);
			double t0 = isq_now(), c0 = cpu_now();
			rc = isq_fw_eval(fw, ids, p->n_prompt, 0, logits, 0, e);
			double t1 = isq_now(), c1 = cpu_now();
			if (k >= 0) {
				pp[k] = p->n_prompt / fmax(t1 - t0, 1e-9);
				ppc[k] = p->n_prompt / fmax(c1 - c0, 1e-9);
			}
		}
		if (p->n_gen && !rc) {
			int32_t id = 1;
			double t0 = isq_now(), c0 = cpu_now();
			for (int i = 0; i < p->n_gen && !rc; i++) {
				rc = isq_fw_eval(fw, &id, 1, i, logits, 0, e);
				id = rand_id(&seed, nv);
			}
			double t1 = isq_now(), c1 = cpu_now();
			if (k >= 0) {
				tg[k] = p->n_gen / fmax(t1 - t0, 1e-9);
				tgc[k] = p->n_gen / fmax(c1 - c0, 1e-9);
			}
		}
	}
	if (!rc) {
		double sd;
		if (p->n_prompt) {
			mean_sd(pp, p->reps, &r->pp_mean, &r->pp_sd);
			mean_sd(ppc, p->reps, &r->pp_cpu_mean, &sd);
		}
		if (p->n_gen) {
			mean_sd(tg, p->reps, &r->tg_mean, &r->tg_sd);
			mean_sd(tgc, p->reps, &r->tg_cpu_mean, &sd);
		}
		r->seconds = isq_now() - start;
		r->n_threads = be->n_threads;
	}
out:
	free(rates);
	free(logits);
	free(ids);
	isq_fw_free(fw);
	return rc;
}
