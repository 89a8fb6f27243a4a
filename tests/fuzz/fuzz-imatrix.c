/*
 * fuzz-imatrix.c - random bytes through the three importance-matrix readers.
 * Byte 0's low bit says .cimatrix (which has no magic); GGUF and legacy .dat
 * are told apart by the reader itself.  Every entry read is then used the
 * way isq-quantize uses it.
 */
#include "imatrix.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct isq_imatrix im;
	isq_imatrix_init(&im);
	if (isq_imatrix_read_memory(&im, data + 1, size - 1, data[0] & 1) == 0) {
		volatile float sink = 0;
		for (size_t i = 0; i < im.n; i++) {
			const struct isq_imatrix_entry *en = &im.entries[i];
			if (isq_imatrix_find(&im, en->name) != en)
				__builtin_trap();
			if (en->n_per_row <= 0 || en->n_per_row > (1 << 20) || en->n_mat <= 0)
				continue;
			float *imp = malloc((size_t)en->n_per_row * sizeof(float));
			for (int64_t m = 0; m < en->n_mat && m < 4; m++) {
				isq_imatrix_importance(en, m, imp);
				sink += imp[0] + imp[en->n_per_row - 1];
			}
			free(imp);
		}
		(void)sink;
	}
	isq_imatrix_release(&im);
	return 0;
}
