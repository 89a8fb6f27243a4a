/*
 * bench-forward - prompt and generation speed with llama-bench's method
 * (notes §7.3), through isq_fw_bench (forward-bench.h), which isq-bench
 * --speed uses too.
 * Usage: bench-forward MODEL [-p 64] [-n 16] [-r 5] [-t THREADS] [--kv f16]
 */
#include "forward-bench.h"
#include "weights.h"

int main(int argc, char **argv)
{
	struct isq_fw_bench_params bp = { .n_prompt = 64, .n_gen = 16, .reps = 5, .kv_type = ISQ_TYPE_F32 };
	int threads = 2;
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && !strcmp(argv[i], "-p"))
			bp.n_prompt = atoi(argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "-n"))
			bp.n_gen = atoi(argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "-r"))
			bp.reps = atoi(argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "-t"))
			threads = atoi(argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--kv"))
			bp.kv_type = !strcmp(argv[++i], "f16") ? ISQ_TYPE_F16 : ISQ_TYPE_F32;
		else
			path = argv[i];
	}
	if (!path || bp.n_prompt < 1 || bp.n_gen < 1 || bp.reps < 1 || bp.reps > 100) {
		fprintf(stderr, "usage: bench-forward MODEL [-p 64] [-n 16] [-r 5] [-t THREADS] [--kv f16]\n");
		return 2;
	}
	struct isq_weights w;
	struct isq_errbuf e = { 0 };
	struct isq_backend *be;
	struct isq_fw_bench_result r;
	if (isq_weights_open(&w, path)) {
		fprintf(stderr, "bench-forward: %s\n", isq_errbuf_msg(&w.err));
		return 1;
	}
	if (isq_backend_new("cpu", threads, &be, &e) || isq_fw_bench(&w.fw, be, &bp, &r, &e)) {
		fprintf(stderr, "bench-forward: %s\n", isq_errbuf_msg(&e));
		return 1;
	}
	printf("%s threads %d: pp%d %.1f ± %.1f t/s, tg%d %.1f ± %.1f t/s (per CPU second: pp %.1f, tg %.1f)\n", path,
	       r.n_threads, bp.n_prompt, r.pp_mean, r.pp_sd, bp.n_gen, r.tg_mean, r.tg_sd, r.pp_cpu_mean, r.tg_cpu_mean);
	isq_backend_free(be);
	isq_weights_release(&w);
	return 0;
}
