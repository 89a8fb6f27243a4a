/*
 * fuzz-toml.c - random bytes as a mistral.rs config file: the TOML subset
 * (toml.h) and the from-config shape (run-config.h).  Anything may be
 * refused with one line naming the file; nothing may crash, leak or read
 * out of bounds.
 */
#include "run-config.h"
#include "toml.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct isq_toml t;
	struct isq_errbuf e = { 0 };
	int rc = isq_toml_parse(&t, (const char *)data, size, "fuzz.toml", &e);
	if (rc > 0 || (rc && (t.n || t.e)))
		abort();
	if (rc && rc != ISQ_ENOMEM && (strncmp(e.msg, "fuzz.toml", 9) || strchr(e.msg, '\n')))
		abort();
	for (int i = 0; !rc && i < t.n; i++)
		if (!t.e[i].table || (t.e[i].key == NULL) != (t.e[i].v.kind == ISQ_TOML_NONE))
			abort();
	isq_toml_free(&t);
	struct isq_run_config c;
	memset(&e, 0, sizeof(e));
	rc = isq_run_config_parse(&c, (const char *)data, size, "fuzz.toml", &e);
	if (rc > 0 || (rc && (c.model_id || c.isq || c.dtype)))
		abort();
	if (rc && rc != ISQ_ENOMEM && (strncmp(e.msg, "fuzz.toml", 9) || strchr(e.msg, '\n')))
		abort();
	isq_run_config_free(&c);
	return 0;
}
