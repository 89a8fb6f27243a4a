/*
 * bench-quant - the quantizers alone, on the matrix llama.cpp's figures were
 * measured on (notes §8.3): 5632 x 2048, N(0, 0.022) rounded through fp16,
 * every 97th column x4; imatrix = squared normals + 0.05, every 61st column
 * x20.  MB/s counts the matrix as fp16 (23.07 MB), like the reference table.
 * Usage: bench-quant [TYPE...]   (default: every GGML type isq encodes)
 */
#include "fp.h"
#include "progress.h"
#include "thread.h"
#include "types.h"

#include <math.h>

#define ROWS 5632
#define COLS 2048

struct ref {
	const char *type;
	double plain, imat; /* llama.cpp MB/s, 1 thread; 0 = not measured */
};
static const struct ref refs[] = {
	{ "q4_0", 1592, 68.6 }, { "q4_1", 1718, 14.7 }, { "q5_0", 790, 65.6 }, { "q5_1", 937, 14.5 },
	{ "q8_0", 461, 0 },     { "q2_k", 28.4, 12.5 }, { "q3_k", 143, 45.3 }, { "q4_k", 26.4, 14.2 },
	{ "q5_k", 34.2, 15.9 }, { "q6_k", 61.6, 57.3 }, { "iq4_nl", 9.4, 10.1 }, { "iq4_xs", 10.1, 9.2 },
	{ "mxfp4", 428, 0 },
};

static uint64_t s = 42;
static double unif(void)
{
	s = s * 6364136223846793005ull + 1442695040888963407ull;
	return ((double)(s >> 11) + 0.5) * 0x1p-53;
}
static double gauss(void)
{
	return sqrt(-2 * log(unif())) * cos(6.283185307179586 * unif());
}

struct job {
	const struct isq_type_traits *tt;
	const float *x, *imp;
	uint8_t *out;
	size_t row_bytes;
};

static void work(void *ctx, int64_t b, int64_t e, int worker)
{
	struct job *j = ctx;
	(void)worker;
	j->tt->quantize(j->x + b * COLS, j->out + (size_t)b * j->row_bytes, e - b, COLS, j->imp);
}

int main(int argc, char **argv)
{
	float *x = malloc((size_t)ROWS * COLS * sizeof(float)), *imp = malloc(COLS * sizeof(float));
	float *y = malloc((size_t)ROWS * COLS * sizeof(float));
	uint8_t *out = malloc((size_t)ROWS * COLS * 2);
	if (!x || !imp || !y || !out)
		return 1;
	for (size_t i = 0; i < (size_t)ROWS * COLS; i++)
		x[i] = isq_fp16_to_fp32(isq_fp32_to_fp16((float)(0.022 * gauss() * (i % COLS % 97 == 0 ? 4 : 1))));
	for (int j = 0; j < COLS; j++) {
		double g = gauss();
		imp[j] = (float)((g * g + 0.05) * (j % 61 == 0 ? 20 : 1));
	}
	double mb = (double)ROWS * COLS * 2 / 1e6;
	printf("# quantizer alone, %dx%d, MB/s of fp16 input; llama.cpp column: notes 8.3, 1 thread, same machine type\n",
	       ROWS, COLS);
	printf("%-8s %-5s %7s %9s %9s %10s %7s %11s %11s\n", "type", "imat", "threads", "ms", "MB/s", "llama.cpp", "ratio",
	       "rmse", "w-rmse");
	struct isq_pool *pools[2] = { isq_pool_new(1), isq_pool_new(2) };
	for (size_t r = 0; r < ISQ_ARRAY_SIZE(refs); r++) {
		int want = argc < 2;
		for (int a = 1; a < argc; a++)
			want |= !strcmp(argv[a], refs[r].type);
		if (!want)
			continue;
		enum isq_type t;
		if (isq_type_parse(refs[r].type, &t, NULL))
			continue;
		const struct isq_type_traits *tt = isq_type_traits(t);
		if (!tt->quantize)
			continue;
		uint64_t rb;
		isq_type_row_size(t, COLS, &rb);
		for (int im = 0; im < 2; im++) {
			if (im && !tt->uses_imatrix)
				continue;
			for (int p = 0; p < 2; p++) {
				struct job j = { tt, x, im ? imp : NULL, out, (size_t)rb };
				double best = 1e30;
				for (int rep = 0; rep < 2; rep++) {
					double t0 = isq_now();
					isq_pool_for(pools[p], ROWS, 16, work, &j);
					double dt = isq_now() - t0;
					best = dt < best ? dt : best;
					if (dt > 3.0)
						break; /* slow paths: one run is enough */
				}
				tt->dequantize(out, y, (int64_t)ROWS * COLS);
				double se = 0, sw = 0, sww = 0;
				for (size_t i = 0; i < (size_t)ROWS * COLS; i++) {
					double d = (double)x[i] - y[i];
					se += d * d;
					sw += imp[i % COLS] * d * d;
					sww += imp[i % COLS];
				}
				/* llama.cpp's figures are single-threaded */
				double ref = p == 0 ? (im ? refs[r].imat : refs[r].plain) : 0;
				char refs_s[16] = "-", ratio[16] = "-";
				if (ref > 0) {
					snprintf(refs_s, sizeof(refs_s), "%.1f", ref);
					snprintf(ratio, sizeof(ratio), "%.2fx", mb / best / ref);
				}
				printf("%-8s %-5s %7d %9.1f %9.1f %10s %7s %11.4e %11.4e\n", refs[r].type, im ? "yes" : "no", p + 1,
				       best * 1e3, mb / best, refs_s, ratio, sqrt(se / ((double)ROWS * COLS)), sqrt(sw / sww));
				fflush(stdout);
			}
		}
	}
	isq_pool_free(pools[0]);
	isq_pool_free(pools[1]);
	free(x);
	free(imp);
	free(y);
	free(out);
	return 0;
}
