/* fuzz-gguf.c - random bytes through the GGUF reader; every view it hands out is touched. */
#include "gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct isq_gguf *g = isq_gguf_new();
	if (!g)
		return 0;
	if (isq_gguf_open_memory(g, data, size) == 0) {
		volatile uint8_t sink = 0;
		for (size_t i = 0; i < g->n_kv; i++) {
			const struct isq_gguf_kv *kv = &g->kv[i];
			if (kv->type == ISQ_GGUF_STRING && kv->str.len)
				sink ^= (uint8_t)kv->str.data[kv->str.len - 1];
			if (kv->type == ISQ_GGUF_ARRAY) {
				struct isq_gguf_arr_iter it;
				const char *s;
				uint64_t len;
				double v;
				isq_gguf_arr_iter_init(&it, kv);
				while (isq_gguf_arr_next_str(&it, &s, &len) == 0)
					if (len)
						sink ^= (uint8_t)s[len - 1];
				if (kv->arr_n)
					isq_gguf_arr_num(kv, kv->arr_n - 1, &v);
			}
		}
		for (size_t i = 0; i < g->n_tensors; i++)
			if (g->tensors[i].nbytes)
				sink ^= g->tensors[i].data[0] ^ g->tensors[i].data[g->tensors[i].nbytes - 1];
		char *a = isq_gguf_get_str(g, "general.architecture");
		free(a);
		(void)sink;
	}
	isq_gguf_free(g);
	return 0;
}
