/*
 * fuzz-kld.c - random bytes through the .kld reader.  A file that opens is
 * then read the way isq-bench --kl reads it: every token, and the first and
 * last records decoded with the base's NLL and argmax taken from each.
 */
#include "kld.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct isq_kld k;
	if (isq_kld_open_memory(&k, data, size) == 0) {
		volatile double sink = 0;
		int64_t n_tok = (int64_t)k.n_ctx * k.n_chunk;
		for (int64_t i = 0; i < n_tok; i++) {
			int32_t t = isq_kld_token(&k, i);
			if (t < 0 || t >= k.n_vocab)
				__builtin_trap();
		}
		float *lp = malloc((size_t)k.n_vocab * sizeof(float));
		for (int64_t r = 0; lp && r < k.n_records; r += k.n_records > 1 ? k.n_records - 1 : 1) {
			if (isq_kld_record(&k, r, lp))
				continue;
			double nll;
			int32_t top;
			int64_t chunk = r / k.per_chunk, p = k.n_ctx / 2 + r % k.per_chunk;
			isq_kld_base(&k, r, lp, isq_kld_token(&k, chunk * k.n_ctx + p + 1), &nll, &top);
			if (top < 0 || top >= k.n_vocab)
				__builtin_trap();
			sink += nll + lp[0];
		}
		free(lp);
		(void)sink;
	}
	isq_kld_release(&k);
	return 0;
}
