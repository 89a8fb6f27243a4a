/*
 * run-config.c - run-config.h: the TOML entries checked against the shape
 * mistral.rs's config files have.
 */
#include "run-config.h"

#include "toml.h"
#include "types.h"

#include <stdlib.h>
#include <string.h>

static const struct {
	const char *table, *key;
	enum isq_toml_kind kind;
} known[] = {
	{ "", "command", ISQ_TOML_STRING },
	{ "server", "host", ISQ_TOML_STRING },
	{ "server", "port", ISQ_TOML_INT },
	{ "runtime", "max_seqs", ISQ_TOML_INT },
	{ "models", "kind", ISQ_TOML_STRING },
	{ "models", "model_id", ISQ_TOML_STRING },
	{ "models", "dtype", ISQ_TOML_STRING },
	{ "models.quantization", "in_situ_quant", ISQ_TOML_STRING },
	{ "models.quantization", "isq", ISQ_TOML_STRING },
	{ "models.device", "device_layers", ISQ_TOML_ARRAY },
};

static const char *const kind_names[] = { "nothing", "a string", "an integer", "a boolean", "an array" };

void isq_run_config_free(struct isq_run_config *c)
{
	free(c->model_id);
	free(c->isq);
	free(c->dtype);
	memset(c, 0, sizeof(*c));
}

static int check(struct isq_run_config *c, const struct isq_toml *t, const char *name, struct isq_errbuf *e)
{
	int models = 0, isq_line = 0;
	for (int i = 0; i < t->n; i++) {
		const struct isq_toml_entry *en = &t->e[i];
		if (!en->key) {
			int ok = !strcmp(en->table, "server") || !strcmp(en->table, "runtime") ||
				 !strcmp(en->table, "models.quantization") || !strcmp(en->table, "models.device");
			if (!strcmp(en->table, "models")) {
				if (!en->aot)
					return isq_errbuf_set(e, ISQ_EFORMAT, "%s:%d: [models] must be an array of tables: [[models]]",
							      name, en->line);
				if (++models > 1)
					return isq_errbuf_set(e, ISQ_EUNSUPPORTED,
							      "%s:%d: a second [[models]]: isq-run runs one model", name, en->line);
				ok = 1;
			} else if (ok && en->aot) {
				ok = 0;
			}
			if (ok && !strncmp(en->table, "models.", 7) && !models)
				return isq_errbuf_set(e, ISQ_EFORMAT, "%s:%d: [%s] before [[models]]", name, en->line, en->table);
			if (!ok)
				return isq_errbuf_set(e, ISQ_EFORMAT, "%s:%d: unknown table [%s]", name, en->line, en->table);
			continue;
		}
		size_t k = 0;
		while (k < ISQ_ARRAY_SIZE(known) && (strcmp(known[k].table, en->table) || strcmp(known[k].key, en->key)))
			k++;
		if (k == ISQ_ARRAY_SIZE(known)) {
			if (*en->table)
				return isq_errbuf_set(e, ISQ_EFORMAT, "%s:%d: unknown key '%s' in [%s]", name, en->line, en->key,
						      en->table);
			return isq_errbuf_set(e, ISQ_EFORMAT, "%s:%d: unknown key '%s'", name, en->line, en->key);
		}
		if (en->v.kind != known[k].kind)
			return isq_errbuf_set(e, ISQ_EFORMAT, "%s:%d: '%s' must be %s, not %s", name, en->line, en->key,
					      kind_names[known[k].kind], kind_names[en->v.kind]);
		const char *s = en->v.s;
		char **dst = NULL;
		if (!strcmp(en->key, "kind") && strcmp(s, "text"))
			return isq_errbuf_set(e, ISQ_EUNSUPPORTED, "%s:%d: kind \"%s\": isq-run runs text models only", name,
					      en->line, s);
		if (!strcmp(en->key, "dtype")) {
			if (strcmp(s, "auto") && strcmp(s, "f16") && strcmp(s, "bf16") && strcmp(s, "f32"))
				return isq_errbuf_set(e, ISQ_EFORMAT, "%s:%d: dtype \"%s\": expected auto, f16, bf16 or f32",
						      name, en->line, s);
			dst = &c->dtype;
		}
		if (!strcmp(en->key, "model_id"))
			dst = &c->model_id;
		if (!strcmp(en->key, "in_situ_quant") || !strcmp(en->key, "isq")) {
			enum isq_type ty;
			const char *suggest = NULL;
			if (isq_line)
				return isq_errbuf_set(e, ISQ_EFORMAT, "%s:%d: both isq and in_situ_quant (line %d)", name,
						      en->line, isq_line);
			if (isq_type_parse(s, &ty, &suggest))
				return isq_errbuf_set(e, ISQ_EFORMAT, "%s:%d: unknown type '%s'%s%s%s", name, en->line, s,
						      suggest ? " (did you mean " : "", suggest ? suggest : "", suggest ? "?)" : "");
			isq_line = en->line;
			dst = &c->isq;
		}
		if (!strcmp(en->key, "device_layers")) {
			for (int j = 0; j < en->v.n; j++)
				if (en->v.items[j].kind != ISQ_TOML_STRING)
					return isq_errbuf_set(e, ISQ_EFORMAT, "%s:%d: device_layers must hold strings", name,
							      en->line);
			c->n_device_layers = en->v.n;
		}
		if (dst && !(*dst = isq_strdup(s)))
			return isq_errbuf_set(e, ISQ_ENOMEM, "out of memory");
	}
	return 0;
}

int isq_run_config_parse(struct isq_run_config *c, const char *text, size_t len, const char *name,
			 struct isq_errbuf *e)
{
	struct isq_toml t;
	memset(c, 0, sizeof(*c));
	int rc = isq_toml_parse(&t, text, len, name, e);
	if (rc)
		return rc;
	rc = check(c, &t, name, e);
	isq_toml_free(&t);
	if (rc)
		isq_run_config_free(c);
	if (rc)
		isq_toml_oneline(e);
	return rc;
}
