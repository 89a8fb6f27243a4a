/*
 * run-config.h - mistral.rs's `from-config` TOML as isq-run reads it
 * (isq-run --config FILE; isq-tune --emit-config writes one):
 *
 *   command = "serve"           # accepted, ignored
 *   [server]                    # host, port: accepted, ignored
 *   [runtime]                   # max_seqs: accepted, ignored
 *   [[models]]                  # exactly one
 *   kind = "text"               # the only kind isq-run runs
 *   model_id = "<path or id>"   # the model, unless -m is given
 *   dtype = "auto"              # auto | f16 | bf16 | f32
 *   [models.quantization]
 *   in_situ_quant = "Q4K"       # or isq = ...: --isq, unless given
 *   [models.device]
 *   device_layers = ["0:32"]    # accepted; nothing to place on the CPU
 *
 * Unknown tables or keys, a second [[models]], values of the wrong type and
 * unknown type names are errors ("cfg.toml:9: unknown key 'isqq' in
 * [models.quantization]"), where mistral.rs would ignore some of them.
 */
#ifndef ISQ_RUN_CONFIG_H
#define ISQ_RUN_CONFIG_H

#include "isq.h"

#include <stddef.h>

struct isq_run_config {
	char *model_id; /* NULL when absent */
	char *isq;	/* as written ("Q4K"); checked with isq_type_parse */
	char *dtype;	/* NULL when absent */
	int n_device_layers;
};

int isq_run_config_parse(struct isq_run_config *c, const char *text, size_t len, const char *name,
			 struct isq_errbuf *e);
void isq_run_config_free(struct isq_run_config *c);

#endif
