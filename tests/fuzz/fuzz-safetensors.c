/* fuzz-safetensors.c - random bytes through the safetensors reader; every view is touched. */
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct isq_safetensors *st = isq_st_new();
	if (!st)
		return 0;
	if (isq_st_open_memory(st, data, size) == 0) {
		volatile uint8_t sink = 0;
		for (size_t i = 0; i < st->n_tensors; i++) {
			const struct isq_st_tensor *t = &st->tensors[i];
			if (t->nbytes)
				sink ^= t->data[0] ^ t->data[t->nbytes - 1];
			if (isq_st_find(st, t->name) != t)
				__builtin_trap();
		}
		(void)sink;
	}
	isq_st_free(st);
	return 0;
}
