/*
 * forward-bench.h - prompt and generation speed of the forward pass, with
 * llama-bench's method (llamacpp-notes §7.3).
 *
 *   pp<P>: one evaluation of P token ids (BOS, then random ids) into an
 *          empty cache, in batches of up to 512 rows (llama-bench's ubatch);
 *   tg<N>: N single-token evaluations from position 0, each id random.
 *
 * One untimed warm-up of each, then `reps` timed repetitions; the rate of a
 * repetition is tokens / seconds, and the result is the mean and sample
 * standard deviation of those rates (not tokens over total time).  The
 * rates per CPU second are given too: on a machine that other work shares,
 * they move much less than wall-clock rates.
 */
#ifndef ISQ_FORWARD_BENCH_H
#define ISQ_FORWARD_BENCH_H

#include "forward.h"

#define ISQ_FW_BENCH_MAX_REPS 1000

struct isq_fw_bench_params {
	int n_prompt;          /* P; 0 skips the prompt test */
	int n_gen;             /* N; 0 skips the generation test */
	int reps;              /* 1 .. ISQ_FW_BENCH_MAX_REPS */
	enum isq_type kv_type; /* ISQ_TYPE_F32 (0) or ISQ_TYPE_F16 */
	uint64_t seed;         /* of the random ids; 0 picks a fixed one */
};

struct isq_fw_bench_result {
	double pp_mean, pp_sd;         /* prompt tokens per second */
	double tg_mean, tg_sd;         /* generated tokens per second */
	double pp_cpu_mean, tg_cpu_mean; /* the same per CPU second of this process */
	double seconds;                /* wall time of the whole run, warm-up included */
	int n_threads;                 /* of the backend */
};

/*
 * Measure W on BE.  BOS is id 1 (llama's; the rate does not depend on which
 * id comes first).  Returns 0, ISQ_EINVAL (bad params, with the reason in
 * *e), or what isq_fw_new / isq_fw_eval return.
 */
int isq_fw_bench(const struct isq_fw_weights *w, struct isq_backend *be, const struct isq_fw_bench_params *p,
		 struct isq_fw_bench_result *r, struct isq_errbuf *e);

#endif
