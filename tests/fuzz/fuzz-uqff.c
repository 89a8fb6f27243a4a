/*
 * fuzz-uqff.c - random bytes as one UQFF shard (a safetensors image):
 * the set is merged and checked as mistral.rs's loader would, every layer
 * entry recognised and, when small enough, decoded.  Anything may be
 * refused; nothing may crash, leak or read out of bounds.
 */
#include "uqff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP (1 << 16)
static float out[CAP];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n = 0;
	struct isq_errbuf e = { 0 };
	int rc = isq_uqff_check_memory(data, size, out, CAP, &n, &e);
	if (rc > 0 || (rc == 0 && e.code))
		abort(); /* statuses are 0 or negative, and success leaves no message */
	return 0;
}
