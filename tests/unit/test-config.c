/* test-config.c - config.json parsing per architecture, and the HF <-> GGUF name map. */
#include "test.h"
#include "config.h"

static int parse(const char *json, struct isq_hparams *hp, struct isq_errbuf *e)
{
	return isq_config_parse(json, strlen(json), hp, e);
}

TEST(stories260K_config)
{
	char path[4096];
	if (!test_shared_path(path, sizeof(path), "models/stories260K/config.json"))
		SKIP("../shared/models/stories260K not present");
	struct isq_hparams hp;
	struct isq_errbuf e = { 0 };
	CHECK_MSG(isq_config_load(path, &hp, &e) == 0, "%s", e.msg);
	CHECK_EQ_INT(hp.arch, ISQ_ARCH_LLAMA);
	CHECK_STR(hp.gguf_arch, "llama");
	CHECK_EQ_INT(hp.hidden_size, 64);
	CHECK_EQ_INT(hp.intermediate_size, 172);
	CHECK_EQ_INT(hp.n_layers, 5);
	CHECK_EQ_INT(hp.n_heads, 8);
	CHECK_EQ_INT(hp.n_kv_heads, 4);
	CHECK_EQ_INT(hp.head_dim, 8);
	CHECK_EQ_INT(hp.vocab_size, 512);
	CHECK_EQ_INT(hp.max_position_embeddings, 512);
	CHECK_EQ_INT(hp.tie_word_embeddings, 1);
	CHECK_EQ_INT(hp.bos_token_id, 1);
	CHECK_EQ_INT(hp.rope_neox, 0);
	CHECK_NEAR(hp.rms_norm_eps, 1e-5, 1e-12);
	CHECK_EQ_INT(isq_config_check_supported(&hp, &e), 0);
}

TEST(architectures_and_defaults)
{
	struct isq_hparams hp;
	struct isq_errbuf e = { 0 };
	CHECK_EQ_INT(parse("{\"model_type\":\"qwen2\",\"hidden_size\":896,\"num_hidden_layers\":24,"
			   "\"num_attention_heads\":14,\"num_key_value_heads\":2,\"vocab_size\":151936,"
			   "\"intermediate_size\":4864,\"rope_theta\":1000000.0,\"tie_word_embeddings\":true}",
			   &hp, &e),
		     0);
	CHECK_STR(hp.gguf_arch, "qwen2");
	CHECK_EQ_INT(hp.attention_bias, 1);
	CHECK_EQ_INT(hp.rope_neox, 1);
	CHECK_EQ_INT(hp.head_dim, 64);
	CHECK_NEAR(hp.rope_theta, 1e6, 0);
	CHECK_EQ_INT(parse("{\"model_type\":\"qwen3\",\"hidden_size\":1024,\"num_hidden_layers\":28,"
			   "\"num_attention_heads\":16,\"num_key_value_heads\":8,\"head_dim\":128,\"vocab_size\":151936,"
			   "\"intermediate_size\":3072}",
			   &hp, &e),
		     0);
	CHECK_EQ_INT(hp.qk_norm, 1);
	CHECK_EQ_INT(hp.head_dim, 128);
	CHECK_EQ_INT(hp.n_kv_heads, 8);
	CHECK_EQ_INT(parse("{\"model_type\":\"llama\",\"hidden_size\":4096,\"num_hidden_layers\":32,"
			   "\"num_attention_heads\":32,\"num_key_value_heads\":8,\"vocab_size\":128256,"
			   "\"intermediate_size\":14336,\"rope_scaling\":{\"factor\":8.0,\"low_freq_factor\":1.0,"
			   "\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192,\"rope_type\":\"llama3\"},"
			   "\"eos_token_id\":[128001,128008,128009]}",
			   &hp, &e),
		     0);
	CHECK_EQ_INT(hp.rope_scaling, ISQ_ROPE_SCALING_LLAMA3);
	CHECK_NEAR(hp.rope_factor, 8, 0);
	CHECK_EQ_INT(hp.rope_original_max_position, 8192);
	CHECK_EQ_INT(hp.eos_token_id, 128001);
	CHECK_EQ_INT(hp.tie_word_embeddings, 0);
	CHECK_EQ_INT(parse("{\"model_type\":\"mixtral\",\"hidden_size\":4096,\"num_hidden_layers\":32,"
			   "\"num_attention_heads\":32,\"num_key_value_heads\":8,\"vocab_size\":32000,"
			   "\"intermediate_size\":14336,\"num_local_experts\":8,\"num_experts_per_tok\":2}",
			   &hp, &e),
		     0);
	CHECK_EQ_INT(hp.n_experts, 8);
	CHECK_EQ_INT(hp.n_experts_used, 2);
	CHECK_EQ_INT(isq_config_check_supported(&hp, &e), ISQ_EUNSUPPORTED);
	CHECK(strstr(e.msg, "mixtral is not yet supported") != NULL);
	CHECK_EQ_INT(parse("{\"model_type\":\"gemma\",\"hidden_size\":2048,\"num_hidden_layers\":18,"
			   "\"num_attention_heads\":8,\"num_key_value_heads\":1,\"head_dim\":256,\"vocab_size\":256000,"
			   "\"intermediate_size\":16384}",
			   &hp, &e),
		     0);
	CHECK_EQ_INT(hp.tie_word_embeddings, 1);
}

TEST(bad_configs)
{
	struct isq_hparams hp;
	struct isq_errbuf e = { 0 };
	CHECK_EQ_INT(parse("{\"model_type\":\"frob\"}", &hp, &e), ISQ_EUNSUPPORTED);
	CHECK(strstr(e.msg, "'frob' is not supported") != NULL);
	CHECK_EQ_INT(parse("{\"model_type\":\"llama\",\"num_hidden_layers\":2}", &hp, &e), ISQ_EFORMAT);
	CHECK(strstr(e.msg, "'hidden_size' is missing") != NULL);
	CHECK_EQ_INT(parse("{\"model_type\":\"llama\",\"hidden_size\":\"64\",\"num_hidden_layers\":2}", &hp, &e),
		     ISQ_EFORMAT);
	CHECK(strstr(e.msg, "not an integer") != NULL);
	CHECK_EQ_INT(parse("{\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":2,"
			   "\"num_attention_heads\":6,\"vocab_size\":10,\"intermediate_size\":8}",
			   &hp, &e),
		     ISQ_EFORMAT);
	CHECK_EQ_INT(parse("{\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":2,"
			   "\"num_attention_heads\":8,\"num_key_value_heads\":3,\"vocab_size\":10,\"intermediate_size\":8}",
			   &hp, &e),
		     ISQ_EFORMAT);
	CHECK_EQ_INT(parse("{\"model_type\":\"llama\",\"hidden_size\":-64,\"num_hidden_layers\":2}", &hp, &e),
		     ISQ_EFORMAT);
	CHECK_EQ_INT(parse("not json", &hp, &e), ISQ_EFORMAT);
	CHECK_EQ_INT(parse("{\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":2,"
			   "\"num_attention_heads\":8,\"vocab_size\":10,\"intermediate_size\":8,"
			   "\"rope_scaling\":{\"rope_type\":\"longrope\"}}",
			   &hp, &e),
		     ISQ_EUNSUPPORTED);
}

TEST(name_map_both_ways)
{
	static const char *const pairs[][2] = {
		{ "model.embed_tokens.weight", "token_embd.weight" },
		{ "lm_head.weight", "output.weight" },
		{ "model.norm.weight", "output_norm.weight" },
		{ "model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight" },
		{ "model.layers.11.post_attention_layernorm.weight", "blk.11.ffn_norm.weight" },
		{ "model.layers.3.self_attn.q_proj.weight", "blk.3.attn_q.weight" },
		{ "model.layers.3.self_attn.k_proj.weight", "blk.3.attn_k.weight" },
		{ "model.layers.3.self_attn.v_proj.weight", "blk.3.attn_v.weight" },
		{ "model.layers.3.self_attn.o_proj.weight", "blk.3.attn_output.weight" },
		{ "model.layers.3.self_attn.q_proj.bias", "blk.3.attn_q.bias" },
		{ "model.layers.3.self_attn.q_norm.weight", "blk.3.attn_q_norm.weight" },
		{ "model.layers.3.mlp.gate_proj.weight", "blk.3.ffn_gate.weight" },
		{ "model.layers.3.mlp.up_proj.weight", "blk.3.ffn_up.weight" },
		{ "model.layers.3.mlp.down_proj.weight", "blk.3.ffn_down.weight" },
		{ "model.layers.7.block_sparse_moe.gate.weight", "blk.7.ffn_gate_inp.weight" },
	};
	char out[128], back[128];
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(pairs); i++) {
		CHECK_EQ_INT(isq_name_hf_to_gguf(pairs[i][0], out, sizeof(out)), 0);
		CHECK_STR(out, pairs[i][1]);
		CHECK_EQ_INT(isq_name_gguf_to_hf(pairs[i][1], back, sizeof(back)), 0);
		CHECK_STR(back, pairs[i][0]);
	}
	CHECK_EQ_INT(isq_name_hf_to_gguf("model.layers.0.self_attn.rotary_emb.inv_freq", out, sizeof(out)), ISQ_ENOTFOUND);
	CHECK_EQ_INT(isq_name_hf_to_gguf("model.layers.x.mlp.up_proj.weight", out, sizeof(out)), ISQ_ENOTFOUND);
	CHECK_EQ_INT(isq_name_hf_to_gguf("model.layers.0.block_sparse_moe.experts.3.w1.weight", out, sizeof(out)),
		     ISQ_ENOTFOUND);
	char tiny[8];
	CHECK(isq_name_hf_to_gguf("model.layers.3.mlp.down_proj.weight", tiny, sizeof(tiny)) != 0);
}

TEST(roles)
{
	int layer;
	CHECK_EQ_INT(isq_name_role("blk.4.attn_v.weight", &layer), ISQ_ROLE_ATTN_V);
	CHECK_EQ_INT(layer, 4);
	CHECK_EQ_INT(isq_name_role("model.layers.2.mlp.down_proj.weight", &layer), ISQ_ROLE_FFN_DOWN);
	CHECK_EQ_INT(layer, 2);
	CHECK_EQ_INT(isq_name_role("token_embd.weight", &layer), ISQ_ROLE_TOKEN_EMBD);
	CHECK_EQ_INT(layer, -1);
	CHECK_EQ_INT(isq_name_role("lm_head.weight", NULL), ISQ_ROLE_OUTPUT);
	CHECK_EQ_INT(isq_name_role("blk.0.attn_norm.weight", NULL), ISQ_ROLE_NORM);
	CHECK_EQ_INT(isq_name_role("blk.0.attn_q_norm.weight", NULL), ISQ_ROLE_NORM);
	CHECK_EQ_INT(isq_name_role("blk.0.attn_q.bias", NULL), ISQ_ROLE_BIAS);
	CHECK_EQ_INT(isq_name_role("model.layers.1.block_sparse_moe.experts.0.w1.weight", NULL), ISQ_ROLE_FFN_GATE_EXPS);
	CHECK_EQ_INT(isq_name_role("model.layers.1.block_sparse_moe.experts.0.w2.weight", NULL), ISQ_ROLE_FFN_DOWN_EXPS);
	CHECK_EQ_INT(isq_name_role("model.layers.1.mlp.experts.5.up_proj.weight", NULL), ISQ_ROLE_FFN_UP_EXPS);
	CHECK_EQ_INT(isq_name_role("blk.1.ffn_gate_inp.weight", NULL), ISQ_ROLE_FFN_GATE_INP);
	CHECK_EQ_INT(isq_name_role("model.layers.1.block_sparse_moe.gate.weight", NULL), ISQ_ROLE_FFN_GATE_INP);
	CHECK_EQ_INT(isq_name_role("blk.1.ffn_down_exps.weight", NULL), ISQ_ROLE_FFN_DOWN_EXPS);
}
