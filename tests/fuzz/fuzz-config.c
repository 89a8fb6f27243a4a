/* fuzz-config.c - random bytes as config.json and as tensor names. */
#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct isq_hparams hp;
	struct isq_errbuf e = { 0 };
	isq_config_parse((const char *)data, size, &hp, &e);
	char name[256], out[256];
	size_t n = size < sizeof(name) - 1 ? size : sizeof(name) - 1;
	memcpy(name, data, n);
	name[n] = '\0';
	int layer;
	isq_name_role(name, &layer);
	if (isq_name_hf_to_gguf(name, out, sizeof(out)) == 0) {
		char back[256];
		isq_name_gguf_to_hf(out, back, sizeof(back));
	}
	isq_name_gguf_to_hf(name, out, sizeof(out));
	return 0;
}
