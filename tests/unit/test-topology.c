/* test-topology.c - mistral.rs's topology YAML: selectors, precedence, errors, and the plan it steers. */
#include "test.h"
#include "topology.h"

static struct isq_topology *parse(const char *yaml, struct isq_errbuf *e, int *rc)
{
	struct isq_topology *t = NULL;
	*rc = isq_topology_parse(&t, yaml, strlen(yaml), "topo.yml", ISQ_TARGET_CPU, e);
	return t;
}

/* The type the topology gives tensor name (layer from the name); -100 when no entry applies. */
static int type_of(const struct isq_topology *t, const char *name)
{
	enum isq_type ty;
	if (!isq_topology_lookup(t, name, NULL, isq_topology_layer_of(name), &ty))
		return -100;
	return (int)ty;
}

TEST(topology_layer_of)
{
	CHECK_EQ_INT(isq_topology_layer_of("model.layers.12.mlp.down_proj.weight"), 12);
	CHECK_EQ_INT(isq_topology_layer_of("transformer.h.3.attn.c_attn.weight"), 3);
	CHECK_EQ_INT(isq_topology_layer_of("blk.5.ffn_down.weight"), 5);
	CHECK_EQ_INT(isq_topology_layer_of("layers.7"), 7);
	CHECK_EQ_INT(isq_topology_layer_of("model.layers.x.mlp"), -1);
	CHECK_EQ_INT(isq_topology_layer_of("model.xlayers.3.mlp"), -1);
	CHECK_EQ_INT(isq_topology_layer_of("model.layers.3a.mlp"), -1);
	CHECK_EQ_INT(isq_topology_layer_of("model.norm.weight"), -1);
	CHECK_EQ_INT(isq_topology_layer_of("lm_head.weight"), -1);
}

TEST(topology_ranges_are_half_open_and_larger_end_wins)
{
	struct isq_errbuf e = { 0 };
	int rc;
	/* mistral.rs's own tests: 0-4 then 2-6; 0-4 then 2-4 */
	struct isq_topology *t = parse("0-4:\n  isq: Q4K\n2-6:\n  isq: Q6K\n", &e, &rc);
	CHECK_MSG(rc == 0, "%s", e.msg);
	CHECK_EQ_INT(isq_topology_count(t), 2);
	CHECK_EQ_INT(type_of(t, "model.layers.0.mlp.up_proj.weight"), ISQ_TYPE_Q4_K);
	CHECK_EQ_INT(type_of(t, "model.layers.2.mlp.up_proj.weight"), ISQ_TYPE_Q6_K);
	CHECK_EQ_INT(type_of(t, "model.layers.5.mlp.up_proj.weight"), ISQ_TYPE_Q6_K);
	CHECK_EQ_INT(type_of(t, "model.layers.6.mlp.up_proj.weight"), -100); /* the end is exclusive */
	CHECK_EQ_INT(type_of(t, "model.embed_tokens.weight"), -100);
	isq_topology_free(t);

	t = parse("0-4:\n  isq: Q4K\n2-4:\n  isq: Q3K\n", &e, &rc);
	CHECK_MSG(rc == 0, "%s", e.msg);
	CHECK_EQ_INT(type_of(t, "model.layers.1.mlp.up_proj.weight"), ISQ_TYPE_Q4_K);
	CHECK_EQ_INT(type_of(t, "model.layers.2.mlp.up_proj.weight"), ISQ_TYPE_Q3_K);
	CHECK_EQ_INT(type_of(t, "model.layers.3.mlp.up_proj.weight"), ISQ_TYPE_Q3_K);
	isq_topology_free(t);

	/* a later range with a smaller end loses where they overlap; a single layer is [N, N+1) */
	t = parse("2-4:\n  isq: q8_0\n0-8:\n  isq: q4_0\n8:\n  isq: q5_0\n", &e, &rc);
	CHECK_MSG(rc == 0, "%s", e.msg);
	CHECK_EQ_INT(type_of(t, "model.layers.3.self_attn.q_proj.weight"), ISQ_TYPE_Q4_0);
	CHECK_EQ_INT(type_of(t, "model.layers.8.self_attn.q_proj.weight"), ISQ_TYPE_Q5_0);
	CHECK_EQ_INT(type_of(t, "model.layers.9.self_attn.q_proj.weight"), -100);
	isq_topology_free(t);
}

TEST(topology_regex_before_ranges_later_regex_wins)
{
	struct isq_errbuf e = { 0 };
	int rc;
	const char *y = "# comment\n"
			"0-16:\n"
			"  device: cuda[0]\n"
			"  isq: q4k\n"
			"'/ffn\\./':\n"
			"  isq: Q4K\n"
			"'/ffn\\.weight$/':\n"
			"  isq: Q6K\n"
			"'/self_attn\\.v_proj/':\n"
			"  isq: 8\n"
			"'/lm_head/':\n"
			"  device: cpu\n"
			"3-17:\n"
			"  device: cpu\n";
	struct isq_topology *t = parse(y, &e, &rc);
	CHECK_MSG(rc == 0, "%s", e.msg);
	CHECK_EQ_INT(isq_topology_count(t), 6);
	CHECK_EQ_INT(type_of(t, "model.layers.2.ffn.weight"), ISQ_TYPE_Q6_K);
	CHECK_EQ_INT(type_of(t, "model.layers.2.ffn.bias"), ISQ_TYPE_Q4_K);
	CHECK_EQ_INT(type_of(t, "model.layers.20.self_attn.v_proj.weight"), ISQ_TYPE_Q8_0); /* shorthand 8 on cpu */
	CHECK_EQ_INT(type_of(t, "model.layers.2.self_attn.q_proj.weight"), ISQ_TYPE_Q4_K);
	/* the winning entry without isq: the default type (ISQ_TYPE_NONE), and it still shadows */
	CHECK_EQ_INT(type_of(t, "lm_head.weight"), ISQ_TYPE_NONE);
	CHECK_EQ_INT(type_of(t, "model.layers.3.self_attn.q_proj.weight"), ISQ_TYPE_NONE); /* 3-17 ends later */
	enum isq_type ty;
	/* the line of the deciding entry; alt names are tried too */
	CHECK_EQ_INT(isq_topology_lookup(t, "model.layers.2.self_attn.q_proj.weight", NULL, 2, &ty), 2);
	CHECK_EQ_INT(isq_topology_lookup(t, "model.layers.16.self_attn.q_proj.weight", NULL, 16, &ty), 13);
	CHECK_EQ_INT(isq_topology_lookup(t, "x", "blk.1.ffn.weight", 1, &ty), 7);
	CHECK_EQ_INT(ty, ISQ_TYPE_Q6_K);
	isq_topology_free(t);
}

TEST(topology_empty_and_null_entries)
{
	struct isq_errbuf e = { 0 };
	int rc;
	struct isq_topology *t = parse("", &e, &rc);
	CHECK_MSG(rc == 0 && t, "%s", e.msg);
	CHECK_EQ_INT(isq_topology_count(t), 0);
	CHECK_EQ_INT(type_of(t, "model.layers.0.mlp.up_proj.weight"), -100);
	isq_topology_free(t);
	t = parse("# nothing\n---\n", &e, &rc);
	CHECK_MSG(rc == 0, "%s", e.msg);
	isq_topology_free(t);
	t = parse("{0-2: {isq: q8_0}, 5: ~, '/x/': {isq: ~}}\n", &e, &rc);
	CHECK_MSG(rc == 0, "%s", e.msg);
	CHECK_EQ_INT(isq_topology_count(t), 3);
	CHECK_EQ_INT(type_of(t, "model.layers.1.x.weight"), ISQ_TYPE_NONE);
	CHECK_EQ_INT(type_of(t, "model.layers.1.y.weight"), ISQ_TYPE_Q8_0);
	isq_topology_free(t);
}

TEST(topology_errors_name_the_line)
{
	static const struct {
		const char *yaml, *msg;
	} bad[] = {
		{ "0-2:\n  isq: q8_0\n\n3:\n  isqq: q4k\n", "topo.yml:5: unknown key 'isqq'" },
		{ "0-2:\n  isq: q8_0\n8-4:\n  isq: q4k\n", "topo.yml:3: layer range '8-4': the end must be greater" },
		{ "4-4:\n  isq: q4k\n", "topo.yml:1: layer range '4-4'" },
		{ "a-4:\n  isq: q4k\n", "topo.yml:1: bad layer range 'a-4'" },
		{ "-1:\n  isq: q4k\n", "topo.yml:1: bad layer range '-1'" },
		{ "1-2-3:\n  isq: q4k\n", "topo.yml:1: bad layer range" },
		{ "99999999:\n  isq: q4k\n", "topo.yml:1: bad selector '99999999'" },
		{ "layers:\n  isq: q4k\n", "topo.yml:1: bad selector 'layers'" },
		{ "\n'/(ab/':\n  isq: q4k\n", "topo.yml:2: bad regular expression '/(ab/'" },
		{ "0-2:\n  isq: q4kk\n", "topo.yml:2: unknown type 'q4kk'" },
		{ "0-2:\n  isq: q4_k_m\n", "topo.yml:2: 'q4_k_m' is a llama.cpp mixture" },
		{ "0-2:\n  isq: auto\n", "topo.yml:2: type 'auto'" },
		{ "0-2:\n  device: gpu\n", "topo.yml:2: bad device 'gpu'" },
		{ "0-2:\n  device: cuda[x]\n", "topo.yml:2: bad device" },
		{ "0-2:\n  isq: q8_0\n0-2:\n  isq: q4_0\n", "topo.yml:3: selector '0-2' given twice (first on line 1)" },
		{ "0-2:\n  isq: q8_0\n  isq: q4_0\n", "topo.yml:3: key 'isq' given twice" },
		{ "0-2:\n  isq: [q8_0]\n", "topo.yml:2: 'isq' takes a single value" },
		{ "0-2: q8_0\n", "topo.yml:1: selector '0-2': expected a map" },
		{ "- 0-2\n", "topo.yml:1: a topology is a map" },
		{ "[0, 1]: {isq: q8_0}\n", "topo.yml:1: a selector must be" },
		{ "0-2:\n  isq: q8_0\n---\n3:\n  isq: q4_0\n", "topo.yml:3: more than one YAML document" },
		{ "0-2: &a\n  isq: q8_0\n3: *a\n", "topo.yml:3: YAML aliases" },
		{ "0-2:\n  isq: q8_0\n 3:\n", "topo.yml:" },
		{ "0-2:\n\tisq: q8_0\n", "topo.yml:2: " },
	};
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(bad); i++) {
		struct isq_errbuf e = { 0 };
		int rc;
		struct isq_topology *t = parse(bad[i].yaml, &e, &rc);
		CHECK_MSG(rc == ISQ_EFORMAT && !t, "case %zu: rc %d", i, rc);
		CHECK_MSG(strstr(e.msg, bad[i].msg) != NULL, "case %zu: '%s' lacks '%s'", i, e.msg, bad[i].msg);
		CHECK_MSG(!strchr(e.msg, '\n'), "case %zu: message has a newline", i);
		isq_topology_free(t);
	}
	/* a missing file is an I/O error naming it */
	struct isq_topology *t = NULL;
	struct isq_errbuf e = { 0 };
	CHECK_EQ_INT(isq_topology_load(&t, "/nonexistent/topo.yml", ISQ_TARGET_CPU, &e), ISQ_ENOTFOUND);
	CHECK(strstr(e.msg, "/nonexistent/topo.yml") != NULL);
}

TEST(topology_shorthand_follows_target)
{
	struct isq_topology *t = NULL;
	struct isq_errbuf e = { 0 };
	const char *y = "0-1:\n  isq: 4\n";
	CHECK_EQ_INT(isq_topology_parse(&t, y, strlen(y), "t", ISQ_TARGET_METAL, &e), 0);
	CHECK_EQ_INT(type_of(t, "model.layers.0.mlp.up_proj.weight"), ISQ_TYPE_AFQ4);
	isq_topology_free(t);
	CHECK_EQ_INT(isq_topology_parse(&t, y, strlen(y), "t", ISQ_TARGET_CPU, &e), 0);
	CHECK_EQ_INT(type_of(t, "model.layers.0.mlp.up_proj.weight"), ISQ_TYPE_Q4_K);
	isq_topology_free(t);
}

static const struct isq_plan_entry *entry(const struct isq_plan *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->entries[i].name, name))
			return &p->entries[i];
	return NULL;
}

TEST(topology_steers_the_plan)
{
	char path[4096];
	if (!test_shared_path(path, sizeof(path), "models/stories260K/config.json"))
		SKIP("../shared/models/stories260K not present");
	path[strlen(path) - strlen("/config.json")] = '\0';
	struct isq_model m;
	if (isq_model_open(&m, path))
		SKIP("stories260K does not open");
	struct isq_errbuf e = { 0 };
	struct isq_topology *t = NULL;
	/* stories260K: 5 layers, rows of 64 (attention) and 172 (ffn_down) */
	const char *y = "0-2:\n  isq: q8_0\n1:\n  isq: q4_1\n'/down_proj/':\n  isq: f16\n'/embed_tokens/':\n  isq: q4_0\n"
			"4:\n  device: cpu\n";
	CHECK_EQ_INT(isq_topology_parse(&t, y, strlen(y), "t.yml", ISQ_TARGET_CPU, &e), 0);
	struct isq_strlist tt = ISQ_STRLIST_INIT;
	isq_strlist_push(&tt, "blk\\.0\\.attn_v=q5_1");
	struct isq_plan_opts o = { .type = "q4_0", .topology = t, .tensor_types = &tt };
	struct isq_plan p;
	int rc = isq_plan_build(&m, &o, &p, &e);
	CHECK_MSG(rc == 0, "%s", e.msg);
	if (!rc) {
		const struct isq_plan_entry *x;
		CHECK((x = entry(&p, "blk.0.attn_q.weight")) && x->type == ISQ_TYPE_Q8_0 && x->topology_line == 1);
		CHECK((x = entry(&p, "blk.1.attn_q.weight")) && x->type == ISQ_TYPE_Q4_1 && x->topology_line == 3);
		CHECK((x = entry(&p, "blk.2.attn_q.weight")) && x->type == ISQ_TYPE_Q4_0 && !x->topology_line);
		CHECK((x = entry(&p, "blk.4.attn_q.weight")) && x->type == ISQ_TYPE_Q4_0 && x->topology_line == 9);
		/* a regex pin beats the range; no fallback for f16 */
		CHECK((x = entry(&p, "blk.0.ffn_down.weight")) && x->type == ISQ_TYPE_F16 && !x->fallback[0]);
		/* the pin replaces mistral.rs's promotion of the embedding (q4_0 -> q6_k) */
		CHECK((x = entry(&p, "token_embd.weight")) && x->type == ISQ_TYPE_Q4_0);
		/* --tensor-type is more specific than the topology */
		CHECK((x = entry(&p, "blk.0.attn_v.weight")) && x->type == ISQ_TYPE_Q5_1);
		/* norms are not the topology's business */
		CHECK((x = entry(&p, "blk.0.attn_norm.weight")) && x->type == ISQ_TYPE_F32 && !x->topology_line);
		isq_plan_release(&p);
	}
	/* a pin UQFF cannot hold is an error naming the tensor */
	isq_topology_free(t);
	y = "'/q_proj/':\n  isq: iq4_nl\n";
	CHECK_EQ_INT(isq_topology_parse(&t, y, strlen(y), "t.yml", ISQ_TARGET_CPU, &e), 0);
	struct isq_plan_opts o2 = { .type = "q8_0", .topology = t, .format = ISQ_FORMAT_UQFF };
	CHECK_EQ_INT(isq_plan_build(&m, &o2, &p, &e), ISQ_EINVAL);
	CHECK(strstr(e.msg, "q_proj") && strstr(e.msg, "iq4_nl"));
	/* MoQE on a dense model: an error, unless a pin names a type */
	struct isq_plan_opts o3 = { .type = "q8_0", .organization = ISQ_ORG_MOQE };
	CHECK_EQ_INT(isq_plan_build(&m, &o3, &p, &e), ISQ_EINVAL);
	CHECK(strstr(e.msg, "no MoE expert weights") != NULL);
	isq_topology_free(t);
	y = "'/q_proj/':\n  isq: q8_0\n";
	CHECK_EQ_INT(isq_topology_parse(&t, y, strlen(y), "t.yml", ISQ_TARGET_CPU, &e), 0);
	o3.topology = t;
	rc = isq_plan_build(&m, &o3, &p, &e);
	CHECK_MSG(rc == 0, "%s", e.msg);
	if (!rc) {
		const struct isq_plan_entry *x;
		CHECK((x = entry(&p, "blk.0.attn_q.weight")) && x->type == ISQ_TYPE_Q8_0);
		CHECK((x = entry(&p, "blk.0.attn_k.weight")) && x->type == ISQ_TYPE_BF16 && !x->fallback[0]);
		CHECK((x = entry(&p, "token_embd.weight")) && x->type == ISQ_TYPE_BF16);
		isq_plan_release(&p);
	}
	isq_topology_free(t);
	isq_strlist_release(&tt);
	isq_model_release(&m);
}
