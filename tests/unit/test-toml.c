/* test-toml.c - the TOML subset (toml.h) and mistral.rs's from-config shape (run-config.h). */
#include "run-config.h"
#include "test.h"
#include "toml.h"

static int parse(struct isq_toml *t, const char *s, struct isq_errbuf *e)
{
	memset(e, 0, sizeof(*e));
	return isq_toml_parse(t, s, strlen(s), "cfg.toml", e);
}

static const struct isq_toml_entry *find(const struct isq_toml *t, const char *table, const char *key)
{
	for (int i = 0; i < t->n; i++)
		if (t->e[i].key && !strcmp(t->e[i].table, table) && !strcmp(t->e[i].key, key))
			return &t->e[i];
	return NULL;
}

TEST(toml_values_keys_and_tables)
{
	struct isq_toml t;
	struct isq_errbuf e;
	const char *doc = "# a comment\n"
			  "a = \"x\\t\\\"y\\\" \\u00e9\\U0001F600\" # trailing\n"
			  "'lit key' = 'C:\\path'\n"
			  "n = -1_000\r\n"
			  "b = true\n"
			  "\"dotted\".key = 7\n"
			  "[server]\n"
			  "arr = [ \"0:32\",\n  # inside\n  \"1:8\", ]\n"
			  "[[models]]\n"
			  "id = 1\n"
			  "[models.sub]\n"
			  "k = false\n"
			  "[[models]]\n"
			  "id = 2\n"
			  "[models.sub]\n"
			  "k = true\n";
	CHECK_MSG(parse(&t, doc, &e) == 0, "%s", e.msg);
	const struct isq_toml_entry *x = find(&t, "", "a");
	CHECK(x && x->v.kind == ISQ_TOML_STRING && !strcmp(x->v.s, "x\t\"y\" \xc3\xa9\xf0\x9f\x98\x80"));
	x = find(&t, "", "lit key");
	CHECK(x && !strcmp(x->v.s, "C:\\path"));
	x = find(&t, "", "n");
	CHECK(x && x->v.kind == ISQ_TOML_INT && x->v.i == -1000 && x->line == 4);
	x = find(&t, "", "b");
	CHECK(x && x->v.kind == ISQ_TOML_BOOL && x->v.i == 1);
	CHECK(find(&t, "", "dotted.key") != NULL);
	x = find(&t, "server", "arr");
	CHECK(x && x->v.kind == ISQ_TOML_ARRAY && x->v.n == 2 && !strcmp(x->v.items[1].s, "1:8"));
	int models = 0, subs = 0;
	for (int i = 0; i < t.n; i++) {
		models += !t.e[i].key && t.e[i].aot && !strcmp(t.e[i].table, "models");
		subs += !t.e[i].key && !strcmp(t.e[i].table, "models.sub");
	}
	CHECK_EQ_INT(models, 2);
	CHECK_EQ_INT(subs, 2); /* a sub-table per [[models]] element is not a redefinition */
	isq_toml_free(&t);
}

TEST(toml_errors_name_the_file_and_line)
{
	static const struct {
		const char *doc, *msg;
	} cases[] = {
		{ "a = 1\na = 2\n", "cfg.toml:2: duplicate key 'a' (first on line 1)" },
		{ "[s]\n[s]\n", "cfg.toml:2: table [s] defined twice (first on line 1)" },
		{ "a = \"open\n", "cfg.toml:1: unterminated string" },
		{ "\n\na = 1.5\n", "cfg.toml:3: unsupported value '1.5' (strings, integers, booleans and arrays only)" },
		{ "a = \"\"\"x\"\"\"\n", "cfg.toml:1: multi-line strings are not supported" },
		{ "a = { b = 1 }\n", "cfg.toml:1: inline tables are not supported" },
		{ "a = [1, \"x\"]\n", "cfg.toml:1: array mixes types" },
		{ "a = [[1]]\n", "cfg.toml:1: nested arrays and inline tables are not supported" },
		{ "a = [1,\n2\n", "cfg.toml:3: expected ',' or ']' in an array" },
		{ "a 1\n", "cfg.toml:1: expected '=' after key 'a'" },
		{ "a = 1 b\n", "cfg.toml:1: unexpected text after a value" },
		{ "a = \"\\q\"\n", "cfg.toml:1: unknown escape in a string" },
		{ "a = \"\\uD800\"\n", "cfg.toml:1: escape \\u names no Unicode scalar value" },
		{ "a = 99999999999999999999\n", "cfg.toml:1: integer out of range" },
		{ "[a\n", "cfg.toml:1: expected ']' after the table name" },
		{ "= 1\n", "cfg.toml:1: expected a key" },
		{ "a =\n", "cfg.toml:1: expected a value" },
	};
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(cases); i++) {
		struct isq_toml t;
		struct isq_errbuf e;
		CHECK_MSG(parse(&t, cases[i].doc, &e) == ISQ_EFORMAT, "case %zu parsed", i);
		CHECK_MSG(!strcmp(e.msg, cases[i].msg), "case %zu: '%s'", i, e.msg);
		CHECK(t.n == 0 && t.e == NULL);
	}
}

/* The file isq-tune --emit-config writes, byte for byte as tools/isq-tune.c makes it. */
static const char emitted[] = "command = \"serve\"\n\n[server]\nhost = \"0.0.0.0\"\nport = 1234\n\n[runtime]\nmax_seqs = 32\n\n"
			      "[[models]]\nkind = \"text\"\nmodel_id = \"../models/m\"\ndtype = \"auto\"\n\n"
			      "[models.quantization]\nin_situ_quant = \"Q4K\"\n\n[models.device]\ndevice_layers = [\"0:32\"]\n";

TEST(run_config_reads_what_isq_tune_emits)
{
	struct isq_run_config c;
	struct isq_errbuf e = { 0 };
	CHECK_MSG(isq_run_config_parse(&c, emitted, strlen(emitted), "cfg.toml", &e) == 0, "%s", e.msg);
	CHECK(c.model_id && !strcmp(c.model_id, "../models/m"));
	CHECK(c.isq && !strcmp(c.isq, "Q4K"));
	CHECK(c.dtype && !strcmp(c.dtype, "auto"));
	CHECK_EQ_INT(c.n_device_layers, 1);
	isq_run_config_free(&c);
	const char *alias = "[[models]]\nmodel_id = 'm'\n[models.quantization]\nisq = \"q8_0\"\n";
	CHECK_MSG(isq_run_config_parse(&c, alias, strlen(alias), "cfg.toml", &e) == 0, "%s", e.msg);
	CHECK(c.isq && !strcmp(c.isq, "q8_0") && !c.dtype);
	isq_run_config_free(&c);
}

TEST(run_config_refuses_what_it_does_not_know)
{
	static const struct {
		const char *doc, *msg;
	} cases[] = {
		{ "[[models]]\nmodel_id = \"a\"\n[[models]]\nmodel_id = \"b\"\n",
		  "cfg.toml:3: a second [[models]]: isq-run runs one model" },
		{ "[models]\nmodel_id = \"a\"\n", "cfg.toml:1: [models] must be an array of tables: [[models]]" },
		{ "[[models]]\nmodel_idd = \"a\"\n", "cfg.toml:2: unknown key 'model_idd' in [models]" },
		{ "colour = 1\n", "cfg.toml:1: unknown key 'colour'" },
		{ "[paged_attn]\n", "cfg.toml:1: unknown table [paged_attn]" },
		{ "[[models]]\nmodel_id = 3\n", "cfg.toml:2: 'model_id' must be a string, not an integer" },
		{ "[[models]]\nkind = \"speech\"\n", "cfg.toml:2: kind \"speech\": isq-run runs text models only" },
		{ "[[models]]\n[models.quantization]\nin_situ_quant = \"Q4Q\"\n",
		  "cfg.toml:3: unknown type 'Q4Q' (did you mean q4_0?)" },
		{ "[[models]]\n[models.quantization]\nisq = \"q4k\"\nin_situ_quant = \"q4k\"\n",
		  "cfg.toml:4: both isq and in_situ_quant (line 3)" },
		{ "[models.device]\ndevice_layers = [\"0:1\"]\n", "cfg.toml:1: [models.device] before [[models]]" },
		{ "[[models]]\n[models.device]\ndevice_layers = [1]\n", "cfg.toml:3: device_layers must hold strings" },
	};
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(cases); i++) {
		struct isq_run_config c;
		struct isq_errbuf e = { 0 };
		CHECK_MSG(isq_run_config_parse(&c, cases[i].doc, strlen(cases[i].doc), "cfg.toml", &e) < 0, "case %zu parsed",
			  i);
		CHECK_MSG(!strcmp(e.msg, cases[i].msg), "case %zu: '%s'", i, e.msg);
		CHECK(!c.model_id && !c.isq && !c.dtype);
	}
}
