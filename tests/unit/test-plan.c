/* test-plan.c - which type each tensor gets: promotion, mixtures, fallbacks, order. */
#include "test.h"
#include "plan.h"

static const struct isq_plan_entry *entry(const struct isq_plan *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->entries[i].name, name))
			return &p->entries[i];
	return NULL;
}

static int open_stories(struct isq_model *m)
{
	char path[4096];
	if (!test_shared_path(path, sizeof(path), "models/stories260K/config.json"))
		return -1;
	snprintf(path + strlen(path) - strlen("config.json"), 64, "%s", "");
	return isq_model_open(m, path);
}

TEST(type_request_parsing)
{
	struct isq_type_request r;
	struct isq_errbuf e = { 0 };
	CHECK_EQ_INT(isq_type_request_parse("Q4K", ISQ_TARGET_CPU, &r, &e), 0);
	CHECK_EQ_INT(r.type, ISQ_TYPE_Q4_K);
	CHECK_EQ_INT(r.mixture, ISQ_MIX_NONE);
	CHECK_EQ_INT(isq_type_request_parse("q4_k_m", ISQ_TARGET_CPU, &r, &e), 0);
	CHECK_EQ_INT(r.mixture, ISQ_MIX_Q4_K_M);
	CHECK_EQ_INT(r.ftype, 15);
	CHECK_EQ_INT(isq_type_request_parse("4", ISQ_TARGET_CPU, &r, &e), 0);
	CHECK_EQ_INT(r.type, ISQ_TYPE_Q4_K);
	CHECK_EQ_INT(r.alt_type, ISQ_TYPE_AFQ4);
	CHECK_EQ_INT(isq_type_request_parse("4", ISQ_TARGET_METAL, &r, &e), 0);
	CHECK_EQ_INT(r.type, ISQ_TYPE_AFQ4);
	CHECK_EQ_INT(isq_type_request_parse("5", ISQ_TARGET_CPU, &r, &e), 0);
	CHECK_EQ_INT(r.alt_type, ISQ_TYPE_NONE);
	CHECK_EQ_INT(isq_type_request_parse("8", ISQ_TARGET_CPU, &r, &e), 0);
	CHECK_EQ_INT(r.type, ISQ_TYPE_Q8_0);
	CHECK_EQ_INT(isq_type_request_parse("F8E4M3", ISQ_TARGET_CPU, &r, &e), 0);
	CHECK_EQ_INT(r.type, ISQ_TYPE_FP8);
	CHECK_EQ_INT(isq_type_request_parse("q4k_m", ISQ_TARGET_CPU, &r, &e), ISQ_EINVAL);
	CHECK_MSG(strstr(e.msg, "did you mean 'q4_k_m'") != NULL, "%s", e.msg);
	CHECK_EQ_INT(isq_type_request_parse("q5_l", ISQ_TARGET_CPU, &r, &e), ISQ_EINVAL);
	CHECK_EQ_INT(isq_type_request_parse("7", ISQ_TARGET_CPU, &r, &e), ISQ_EINVAL);
	CHECK_EQ_INT(isq_type_request_parse("auto", ISQ_TARGET_CPU, &r, &e), ISQ_EUNSUPPORTED);
	CHECK_EQ_INT(isq_type_request_parse("iq2_xxs", ISQ_TARGET_CPU, &r, &e), ISQ_EUNSUPPORTED);
}

TEST(stories_q4_k_promotion_and_fallbacks)
{
	struct isq_model m;
	if (open_stories(&m) != 0)
		SKIP("../shared/models/stories260K not present");
	struct isq_plan p;
	struct isq_errbuf e = { 0 };
	struct isq_plan_opts o = { .type = "q4_k" };
	int rc = isq_plan_build(&m, &o, &p, &e);
	CHECK_MSG(rc == 0, "%s", e.msg);
	if (rc) {
		isq_model_release(&m);
		return;
	}
	/* 48 tensors, tied lm_head dropped */
	CHECK_EQ_INT(p.n, 47);
	CHECK_EQ_INT(p.n_dropped, 1);
	CHECK(entry(&p, "output.weight") == NULL);
	const struct isq_plan_entry *te = entry(&p, "token_embd.weight");
	CHECK(te != NULL);
	if (te) {
		/* promoted to q6_k, whose 256-blocks do not fit rows of 64: q8_0 */
		CHECK_EQ_INT(te->requested, ISQ_TYPE_Q6_K);
		CHECK_EQ_INT(te->type, ISQ_TYPE_Q8_0);
		CHECK_EQ_INT(te->ne[0], 64);
		CHECK_EQ_INT(te->ne[1], 512);
	}
	const struct isq_plan_entry *q = entry(&p, "blk.0.attn_q.weight");
	CHECK(q && q->type == ISQ_TYPE_Q5_0 && q->permute_heads == 8 && q->fallback[0]);
	const struct isq_plan_entry *k = entry(&p, "blk.0.attn_k.weight");
	CHECK(k && k->permute_heads == 4 && k->ne[0] == 64 && k->ne[1] == 32);
	const struct isq_plan_entry *v = entry(&p, "blk.0.attn_v.weight");
	CHECK(v && v->permute_heads == 0);
	const struct isq_plan_entry *d = entry(&p, "blk.2.ffn_down.weight");
	/* 172 columns: q4_k -> q5_0 -> not a multiple of 32 either -> the source's bf16 */
	CHECK(d && d->type == ISQ_TYPE_BF16 && d->requested == ISQ_TYPE_Q4_K);
	const struct isq_plan_entry *n = entry(&p, "blk.0.attn_norm.weight");
	CHECK(n && n->type == ISQ_TYPE_F32 && !n->quantize);
	/* llama-quantize's order: non-layer tensors by name, then layers by number and name */
	CHECK_STR(p.entries[0].name, "output_norm.weight");
	CHECK_STR(p.entries[1].name, "token_embd.weight");
	CHECK_STR(p.entries[2].name, "blk.0.attn_k.weight");
	CHECK_STR(p.entries[3].name, "blk.0.attn_norm.weight");
	CHECK_STR(p.entries[p.n - 1].name, "blk.4.ffn_up.weight");
	CHECK_EQ_INT(p.n_fallbacks, 5 * 7 + 1);
	isq_plan_release(&p);

	/* --pure: no promotion; token_embd falls back from q4_k like the rest */
	o.pure = 1;
	CHECK_EQ_INT(isq_plan_build(&m, &o, &p, &e), 0);
	te = entry(&p, "token_embd.weight");
	CHECK(te && te->requested == ISQ_TYPE_Q4_K && te->type == ISQ_TYPE_Q5_0);
	isq_plan_release(&p);
	isq_model_release(&m);
}

TEST(stories_mixture_and_overrides)
{
	struct isq_model m;
	if (open_stories(&m) != 0)
		SKIP("../shared/models/stories260K not present");
	struct isq_plan p;
	struct isq_errbuf e = { 0 };
	struct isq_strlist tt = ISQ_STRLIST_INIT;
	isq_strlist_push(&tt, "ffn_down=f16");
	isq_strlist_push(&tt, "attn_(q|k)=q8_0");
	struct isq_plan_opts o = { .type = "q4_k_m", .tensor_types = &tt };
	int rc = isq_plan_build(&m, &o, &p, &e);
	CHECK_MSG(rc == 0, "%s", e.msg);
	if (rc) {
		isq_strlist_release(&tt);
		isq_model_release(&m);
		return;
	}
	const struct isq_plan_entry *te = entry(&p, "token_embd.weight");
	/* tied: the output rule, q6_k, whose rows do not fit: q8_0 straight away */
	CHECK(te && te->type == ISQ_TYPE_Q8_0);
	const struct isq_plan_entry *d = entry(&p, "blk.0.ffn_down.weight");
	CHECK(d && d->type == ISQ_TYPE_F16 && !d->fallback[0]);
	const struct isq_plan_entry *q = entry(&p, "blk.3.attn_q.weight");
	CHECK(q && q->type == ISQ_TYPE_Q8_0);
	/* q4_k_m: attn_v of layers with use_more_bits(i, 5) -- 2 and 4 -- is q6_k, then falls back */
	const struct isq_plan_entry *v0 = entry(&p, "blk.0.attn_v.weight");
	const struct isq_plan_entry *v2 = entry(&p, "blk.2.attn_v.weight");
	const struct isq_plan_entry *v4 = entry(&p, "blk.4.attn_v.weight");
	CHECK(v2 && v2->requested == ISQ_TYPE_Q6_K && v2->type == ISQ_TYPE_Q8_0);
	CHECK(v4 && v4->requested == ISQ_TYPE_Q6_K);
	CHECK(v0 && v0->requested == ISQ_TYPE_Q4_K && v0->type == ISQ_TYPE_Q5_0);
	CHECK_EQ_INT(p.req.ftype, 15);
	isq_plan_release(&p);

	/* types the format cannot hold */
	struct isq_plan_opts h = { .type = "hqq4" };
	CHECK_EQ_INT(isq_plan_build(&m, &h, &p, &e), ISQ_EINVAL);
	CHECK_MSG(strstr(e.msg, "--format uqff") != NULL, "%s", e.msg);
	struct isq_plan_opts u = { .type = "iq4_nl", .format = ISQ_FORMAT_UQFF };
	CHECK_EQ_INT(isq_plan_build(&m, &u, &p, &e), ISQ_EINVAL);
	CHECK_MSG(strstr(e.msg, "--format gguf") != NULL, "%s", e.msg);
	struct isq_strlist bad = ISQ_STRLIST_INIT;
	isq_strlist_push(&bad, "ffn_down=q9_9");
	struct isq_plan_opts b = { .type = "q8_0", .tensor_types = &bad };
	CHECK_EQ_INT(isq_plan_build(&m, &b, &p, &e), ISQ_EINVAL);
	isq_strlist_release(&bad);
	isq_strlist_release(&tt);
	isq_model_release(&m);
}
