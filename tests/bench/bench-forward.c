/*
 * bench-forward - prompt and generation speed with llama-bench's method
 * (notes §7.3): pp<P> = one evaluation of P random token ids (BOS first)
 * into a fresh cache, tg<N> = N single-token evaluations; one untimed
 * warm-up of each, then R timed repetitions; t/s per repetition, reported as
 * mean ± sample standard deviation.
 * Usage: bench-forward MODEL [-p 64] [-n 16] [-r 5] [-t THREADS] [--kv f16]
 */
#include "progress.h"
#include "weights.h"

#include <math.h>
#include <time.h>

/* Process CPU seconds: with one thread, a rate that a busy machine does not distort. */
static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng = 1234;
static int32_t rand_id(int64_t n_vocab)
{
	rng = rng * 6364136223846793005ull + 1442695040888963407ull;
	return (int32_t)((rng >> 33) % (uint64_t)n_vocab);
}

static void mean_sd(const double *x, int n, double *mean, double *sd)
{
	double s = 0, q = 0;
	for (int i = 0; i < n; i++)
		s += x[i];
	*mean = s / n;
	for (int i = 0; i < n; i++)
		q += (x[i] - *mean) * (x[i] - *mean);
	*sd = n > 1 ? sqrt(q / (n - 1)) : 0;
}

int main(int argc, char **argv)
{
	int n_p = 64, n_g = 16, reps = 5, threads = 2;
	enum isq_type kv = ISQ_TYPE_F32;
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && !strcmp(argv[i], "-p"))
			n_p = atoi(argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "-n"))
			n_g = atoi(argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "-r"))
			reps = atoi(argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "-t"))
			threads = atoi(argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--kv"))
			kv = !strcmp(argv[++i], "f16") ? ISQ_TYPE_F16 : ISQ_TYPE_F32;
		else
			path = argv[i];
	}
	if (!path || n_p < 1 || n_g < 1 || reps < 1 || reps > 100) {
		fprintf(stderr, "usage: bench-forward MODEL [-p 64] [-n 16] [-r 5] [-t THREADS] [--kv f16]\n");
		return 2;
	}
	struct isq_weights w;
	struct isq_errbuf e = { 0 };
	struct isq_backend *be;
	struct isq_fw_ctx *fw;
	if (isq_weights_open(&w, path)) {
		fprintf(stderr, "bench-forward: %s\n", isq_errbuf_msg(&w.err));
		return 1;
	}
	struct isq_fw_params fp = { .n_ctx = n_p + n_g, .n_batch = n_p, .kv_type = kv };
	if (isq_backend_new("cpu", threads, &be, &e) || isq_fw_new(&fw, &w.fw, be, &fp, &e)) {
		fprintf(stderr, "bench-forward: %s\n", isq_errbuf_msg(&e));
		return 1;
	}
	int64_t nv = w.fw.cfg.n_vocab;
	int32_t *ids = malloc((size_t)n_p * sizeof(int32_t));
	float *logits = malloc((size_t)nv * sizeof(float));
	double pp[100], tg[100], ppc[100], tgc[100];
	for (int r = -1; r < reps; r++) {
		ids[0] = 1;
		for (int i = 1; i < n_p; i++)
			ids[i] = rand_id(nv);
		double t0 = isq_now(), c0 = cpu_now();
		isq_fw_eval(fw, ids, n_p, 0, logits, 0, &e);
		double t1 = isq_now(), c1 = cpu_now();
		int32_t id = 1;
		for (int i = 0; i < n_g; i++) {
			isq_fw_eval(fw, &id, 1, i, logits, 0, &e);
			id = rand_id(nv);
		}
		double t2 = isq_now(), c2 = cpu_now();
		if (r >= 0) {
			pp[r] = n_p / (t1 - t0);
			tg[r] = n_g / (t2 - t1);
			ppc[r] = n_p / (c1 - c0);
			tgc[r] = n_g / (c2 - c1);
		}
	}
	double pm, ps, gm, gs;
	mean_sd(pp, reps, &pm, &ps);
	mean_sd(tg, reps, &gm, &gs);
	printf("%s threads %d: pp%d %.1f ± %.1f t/s, tg%d %.1f ± %.1f t/s", path, be->n_threads, n_p, pm, ps, n_g, gm,
	       gs);
	mean_sd(ppc, reps, &pm, &ps);
	mean_sd(tgc, reps, &gm, &gs);
	printf(" (per CPU second: pp %.1f, tg %.1f)\n", pm, gm);
	free(ids);
	free(logits);
	isq_fw_free(fw);
	isq_backend_free(be);
	isq_weights_release(&w);
	return 0;
}
