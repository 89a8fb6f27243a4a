/* hparams.c - hyperparameters as GGUF metadata, both ways. */
#include "hparams.h"

static int set_u32(struct isq_gguf_writer *w, const char *arch, const char *k, int64_t v)
{
	char key[128];
	snprintf(key, sizeof(key), "%s.%s", arch, k);
	return isq_gguf_set_u32(w, key, (uint32_t)v);
}

static int set_f32(struct isq_gguf_writer *w, const char *arch, const char *k, double v)
{
	char key[128];
	snprintf(key, sizeof(key), "%s.%s", arch, k);
	return isq_gguf_set_f32(w, key, (float)v);
}

int isq_hparams_to_gguf(const struct isq_hparams *hp, const char *name, struct isq_gguf_writer *w)
{
	const char *a = hp->gguf_arch ? hp->gguf_arch : "llama";
	int rc = isq_gguf_set_str(w, "general.architecture", a);
	if (name && !rc)
		rc = isq_gguf_set_str(w, "general.name", name);
	rc = rc ? rc : set_u32(w, a, "context_length", hp->max_position_embeddings);
	rc = rc ? rc : set_u32(w, a, "embedding_length", hp->hidden_size);
	rc = rc ? rc : set_u32(w, a, "block_count", hp->n_layers);
	rc = rc ? rc : set_u32(w, a, "feed_forward_length", hp->n_experts && hp->moe_intermediate_size
								 ? hp->moe_intermediate_size
								 : hp->intermediate_size);
	rc = rc ? rc : set_u32(w, a, "attention.head_count", hp->n_heads);
	rc = rc ? rc : set_u32(w, a, "attention.head_count_kv", hp->n_kv_heads);
	rc = rc ? rc : set_f32(w, a, "rope.freq_base", hp->rope_theta);
	rc = rc ? rc : set_f32(w, a, "attention.layer_norm_rms_epsilon", hp->rms_norm_eps);
	rc = rc ? rc : set_u32(w, a, "vocab_size", hp->vocab_size);
	rc = rc ? rc : set_u32(w, a, "rope.dimension_count", hp->head_dim);
	/* llama.cpp derives head dims from n_embd / n_head unless told otherwise */
	if (!rc && hp->head_dim * hp->n_heads != hp->hidden_size) {
		rc = set_u32(w, a, "attention.key_length", hp->head_dim);
		rc = rc ? rc : set_u32(w, a, "attention.value_length", hp->head_dim);
	}
	if (!rc && (hp->rope_scaling == ISQ_ROPE_SCALING_LINEAR || hp->rope_scaling == ISQ_ROPE_SCALING_YARN)) {
		char key[128];
		snprintf(key, sizeof(key), "%s.rope.scaling.type", a);
		rc = isq_gguf_set_str(w, key, hp->rope_scaling == ISQ_ROPE_SCALING_LINEAR ? "linear" : "yarn");
		rc = rc ? rc : set_f32(w, a, "rope.scaling.factor", hp->rope_factor);
		if (!rc && hp->rope_original_max_position)
			rc = set_u32(w, a, "rope.scaling.original_context_length", hp->rope_original_max_position);
	}
	if (!rc && hp->n_experts) {
		rc = set_u32(w, a, "expert_count", hp->n_experts);
		rc = rc ? rc : set_u32(w, a, "expert_used_count", hp->n_experts_used);
	}
	return rc;
}

static int get_u(const struct isq_gguf *g, const char *arch, const char *k, int64_t *out, int required,
		 struct isq_errbuf *e)
{
	char key[128];
	uint64_t v;
	snprintf(key, sizeof(key), "%s.%s", arch, k);
	if (isq_gguf_get_u64(g, key, &v) == 0) {
		*out = (int64_t)v;
		return 0;
	}
	if (required)
		return isq_errbuf_set(e, ISQ_EFORMAT, "required key '%s' is missing", key);
	return 0;
}

static void get_f(const struct isq_gguf *g, const char *arch, const char *k, double *out)
{
	char key[128];
	snprintf(key, sizeof(key), "%s.%s", arch, k);
	isq_gguf_get_f64(g, key, out);
}

int isq_hparams_from_gguf(const struct isq_gguf *g, struct isq_hparams *hp, struct isq_errbuf *e)
{
	memset(hp, 0, sizeof(*hp));
	char *arch = isq_gguf_get_str(g, "general.architecture");
	if (!arch)
		return isq_errbuf_set(e, ISQ_EFORMAT, "no general.architecture key");
	static const struct {
		const char *gguf;
		enum isq_arch arch;
		const char *name;
		int neox;
	} known[] = {
		{ "llama", ISQ_ARCH_LLAMA, "llama", 0 }, { "qwen2", ISQ_ARCH_QWEN2, "qwen2", 1 },
		{ "qwen3", ISQ_ARCH_QWEN3, "qwen3", 1 }, { "phi3", ISQ_ARCH_PHI3, "phi3", 1 },
		{ "gemma", ISQ_ARCH_GEMMA, "gemma", 1 }, { "gemma2", ISQ_ARCH_GEMMA2, "gemma2", 1 },
		{ "qwen2moe", ISQ_ARCH_QWEN2_MOE, "qwen2_moe", 1 }, { "qwen3moe", ISQ_ARCH_QWEN3_MOE, "qwen3_moe", 1 },
	};
	size_t i;
	for (i = 0; i < ISQ_ARRAY_SIZE(known); i++)
		if (!strcmp(arch, known[i].gguf))
			break;
	if (i == ISQ_ARRAY_SIZE(known)) {
		int rc = isq_errbuf_set(e, ISQ_EUNSUPPORTED, "architecture '%s' is not supported", arch);
		free(arch);
		return rc;
	}
	hp->arch = known[i].arch;
	hp->gguf_arch = known[i].gguf;
	hp->rope_neox = known[i].neox;
	snprintf(hp->model_type, sizeof(hp->model_type), "%s", known[i].name);
	int rc = get_u(g, arch, "embedding_length", &hp->hidden_size, 1, e);
	rc = rc ? rc : get_u(g, arch, "block_count", &hp->n_layers, 1, e);
	rc = rc ? rc : get_u(g, arch, "context_length", &hp->max_position_embeddings, 1, e);
	rc = rc ? rc : get_u(g, arch, "feed_forward_length", &hp->intermediate_size, 0, e);
	rc = rc ? rc : get_u(g, arch, "attention.head_count", &hp->n_heads, 1, e);
	if (rc) {
		free(arch);
		return rc;
	}
	hp->n_kv_heads = hp->n_heads;
	get_u(g, arch, "attention.head_count_kv", &hp->n_kv_heads, 0, e);
	hp->head_dim = hp->n_heads ? hp->hidden_size / hp->n_heads : 0;
	get_u(g, arch, "attention.key_length", &hp->head_dim, 0, e);
	hp->rope_theta = 10000.0;
	get_f(g, arch, "rope.freq_base", &hp->rope_theta);
	hp->rms_norm_eps = 1e-5;
	get_f(g, arch, "attention.layer_norm_rms_epsilon", &hp->rms_norm_eps);
	get_u(g, arch, "expert_count", &hp->n_experts, 0, e);
	get_u(g, arch, "expert_used_count", &hp->n_experts_used, 0, e);
	hp->vocab_size = 0;
	get_u(g, arch, "vocab_size", &hp->vocab_size, 0, e);
	if (!hp->vocab_size) {
		const struct isq_gguf_kv *kv = isq_gguf_find_kv(g, "tokenizer.ggml.tokens");
		if (kv && kv->type == ISQ_GGUF_ARRAY)
			hp->vocab_size = (int64_t)kv->arr_n;
	}
	hp->tie_word_embeddings = isq_gguf_find_tensor(g, "output.weight") == NULL;
	hp->attention_bias = isq_gguf_find_tensor(g, "blk.0.attn_q.bias") != NULL;
	hp->qk_norm = isq_gguf_find_tensor(g, "blk.0.attn_q_norm.weight") != NULL;
	hp->bos_token_id = hp->eos_token_id = hp->pad_token_id = -1;
	uint64_t v;
	if (isq_gguf_get_u64(g, "tokenizer.ggml.bos_token_id", &v) == 0)
		hp->bos_token_id = (int64_t)v;
	if (isq_gguf_get_u64(g, "tokenizer.ggml.eos_token_id", &v) == 0)
		hp->eos_token_id = (int64_t)v;
	free(arch);
	if (hp->hidden_size <= 0 || hp->n_layers <= 0 || hp->n_heads <= 0 || hp->n_kv_heads <= 0 ||
	    hp->n_heads % hp->n_kv_heads)
		return isq_errbuf_set(e, ISQ_EFORMAT, "inconsistent hyperparameters (embedding %lld, heads %lld/%lld)",
				      (long long)hp->hidden_size, (long long)hp->n_heads, (long long)hp->n_kv_heads);
	return 0;
}
