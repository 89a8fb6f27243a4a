/*
 * fuzz-topology.c - random bytes as a topology YAML file: parsed, and on
 * success looked up with a few tensor names (regexes run, ranges compared).
 * Anything may be refused, with one line that names the file; nothing may
 * crash, leak or read out of bounds.
 */
#include "topology.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "model.layers.0.self_attn.q_proj.weight", "model.layers.7.mlp.down_proj.weight",
					     "model.embed_tokens.weight", "lm_head.weight", "blk.12.ffn_up.weight" };
	struct isq_topology *t = NULL;
	struct isq_errbuf e = { 0 };
	int rc = isq_topology_parse(&t, (const char *)data, size, "fuzz.yml", ISQ_TARGET_CPU, &e);
	if (rc > 0 || (rc == 0) != (t != NULL))
		abort();
	if (rc && rc != ISQ_ENOMEM && (strncmp(e.msg, "fuzz.yml:", 9) || strchr(e.msg, '\n')))
		abort(); /* every parse error is one line starting with the file and line */
	for (size_t i = 0; t && i < ISQ_ARRAY_SIZE(names); i++) {
		enum isq_type ty;
		int line = isq_topology_lookup(t, names[i], "output.weight", isq_topology_layer_of(names[i]), &ty);
		if (line < 0 || (!line && ty != ISQ_TYPE_NONE))
			abort();
	}
	isq_topology_free(t);
	return 0;
}
