/* config.c - config.json hyperparameters and the HF <-> GGUF tensor name map. */
#include "config.h"
#include "io.h"

#include <cJSON.h>
#include <ctype.h>
#include <math.h>

static const struct {
	const char *model_type;
	enum isq_arch arch;
	const char *gguf;
	int neox;
	int tie_default;
	int supported;
} archs[] = {
	{ "llama", ISQ_ARCH_LLAMA, "llama", 0, 0, 1 },
	{ "mistral", ISQ_ARCH_MISTRAL, "llama", 0, 0, 1 },
	{ "qwen2", ISQ_ARCH_QWEN2, "qwen2", 1, 0, 1 },
	{ "qwen3", ISQ_ARCH_QWEN3, "qwen3", 1, 0, 1 },
	{ "phi3", ISQ_ARCH_PHI3, "phi3", 1, 0, 0 },
	{ "gemma", ISQ_ARCH_GEMMA, "gemma", 1, 1, 0 },
	{ "gemma2", ISQ_ARCH_GEMMA2, "gemma2", 1, 1, 0 },
	{ "mixtral", ISQ_ARCH_MIXTRAL, "llama", 0, 0, 0 },
	{ "qwen2_moe", ISQ_ARCH_QWEN2_MOE, "qwen2moe", 1, 0, 0 },
	{ "qwen3_moe", ISQ_ARCH_QWEN3_MOE, "qwen3moe", 1, 0, 0 },
};

const char *isq_arch_name(enum isq_arch a)
{
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(archs); i++)
		if (archs[i].arch == a)
			return archs[i].model_type;
	return "unknown";
}

/* An integer field: 0 and *out set, 1 if absent (or null), -1 if present with the wrong type. */
static int get_int(const cJSON *o, const char *k, int64_t *out)
{
	const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
	if (!j || cJSON_IsNull(j))
		return 1;
	if (!cJSON_IsNumber(j) || j->valuedouble != floor(j->valuedouble) || fabs(j->valuedouble) > 4e15)
		return -1;
	*out = (int64_t)j->valuedouble;
	return 0;
}

static int get_num(const cJSON *o, const char *k, double *out)
{
	const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
	if (!j || cJSON_IsNull(j))
		return 1;
	if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble))
		return -1;
	*out = j->valuedouble;
	return 0;
}

static int get_bool(const cJSON *o, const char *k, int *out)
{
	const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
	if (!j || cJSON_IsNull(j))
		return 1;
	if (!cJSON_IsBool(j))
		return -1;
	*out = cJSON_IsTrue(j);
	return 0;
}

static int req_int(const cJSON *o, const char *k, int64_t *out, int64_t lo, int64_t hi, struct isq_errbuf *e)
{
	int r = get_int(o, k, out);
	if (r > 0)
		return isq_errbuf_set(e, ISQ_EFORMAT, "config.json: '%s' is missing", k);
	if (r < 0)
		return isq_errbuf_set(e, ISQ_EFORMAT, "config.json: '%s' is not an integer", k);
	if (*out < lo || *out > hi)
		return isq_errbuf_set(e, ISQ_EFORMAT, "config.json: '%s' = %lld is out of range", k, (long long)*out);
	return 0;
}

static int opt_int(const cJSON *o, const char *k, int64_t *out, int64_t lo, int64_t hi, struct isq_errbuf *e)
{
	int64_t v;
	int r = get_int(o, k, &v);
	if (r > 0)
		return 0;
	if (r < 0)
		return isq_errbuf_set(e, ISQ_EFORMAT, "config.json: '%s' is not an integer", k);
	if (v < lo || v > hi)
		return isq_errbuf_set(e, ISQ_EFORMAT, "config.json: '%s' = %lld is out of range", k, (long long)v);
	*out = v;
	return 0;
}

/* bos/eos ids may be a list (Llama 3.1 eos): take the first. */
static int64_t token_id(const cJSON *o, const char *k)
{
	const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, k);
	if (cJSON_IsArray(j))
		j = j->child;
	return cJSON_IsNumber(j) && j->valuedouble >= 0 ? (int64_t)j->valuedouble : -1;
}

#define BIG ((int64_t)1 << 31)

int isq_config_parse(const char *json, size_t len, struct isq_hparams *hp, struct isq_errbuf *e)
{
	memset(hp, 0, sizeof(*hp));
	cJSON *root = cJSON_ParseWithLength(json, len);
	if (!root || !cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return isq_errbuf_set(e, ISQ_EFORMAT, "config.json: not a JSON object");
	}
	int rc = 0;
	const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
	/* multimodal wrappers keep the language model in text_config */
	const cJSON *tc = cJSON_GetObjectItemCaseSensitive(root, "text_config");
	const cJSON *o = cJSON_IsObject(tc) ? tc : root;
	if (cJSON_IsObject(tc) && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(tc, "model_type")))
		mt = cJSON_GetObjectItemCaseSensitive(tc, "model_type");
	if (!cJSON_IsString(mt)) {
		cJSON_Delete(root);
		return isq_errbuf_set(e, ISQ_EFORMAT, "config.json: 'model_type' is missing");
	}
	size_t a;
	for (a = 0; a < ISQ_ARRAY_SIZE(archs); a++)
		if (!strcmp(mt->valuestring, archs[a].model_type))
			break;
	if (a == ISQ_ARRAY_SIZE(archs)) {
		rc = isq_errbuf_set(e, ISQ_EUNSUPPORTED,
				    "config.json: model_type '%.64s' is not supported (known: llama, mistral, qwen2, qwen3, "
				    "phi3, gemma, gemma2, mixtral, qwen2_moe, qwen3_moe)",
				    mt->valuestring);
		cJSON_Delete(root);
		return rc;
	}
	hp->arch = archs[a].arch;
	hp->gguf_arch = archs[a].gguf;
	hp->rope_neox = archs[a].neox;
	snprintf(hp->model_type, sizeof(hp->model_type), "%s", archs[a].model_type);

	rc = req_int(o, "hidden_size", &hp->hidden_size, 1, BIG, e);
	rc = rc ? rc : req_int(o, "num_hidden_layers", &hp->n_layers, 1, 1 << 16, e);
	rc = rc ? rc : req_int(o, "num_attention_heads", &hp->n_heads, 1, 1 << 16, e);
	rc = rc ? rc : req_int(o, "vocab_size", &hp->vocab_size, 1, BIG, e);
	if (!rc) {
		hp->intermediate_size = 0;
		rc = opt_int(o, "intermediate_size", &hp->intermediate_size, 1, BIG, e);
	}
	hp->n_kv_heads = hp->n_heads;
	rc = rc ? rc : opt_int(o, "num_key_value_heads", &hp->n_kv_heads, 1, 1 << 16, e);
	if (!rc && !cJSON_GetObjectItemCaseSensitive(o, "head_dim") && hp->hidden_size % hp->n_heads)
		rc = isq_errbuf_set(e, ISQ_EFORMAT, "config.json: hidden_size %lld is not a multiple of num_attention_heads %lld",
				    (long long)hp->hidden_size, (long long)hp->n_heads);
	if (!rc) {
		hp->head_dim = hp->hidden_size / hp->n_heads;
		const cJSON *hd = cJSON_GetObjectItemCaseSensitive(o, "head_dim");
		if (hd && !cJSON_IsNull(hd))
			rc = opt_int(o, "head_dim", &hp->head_dim, 1, 1 << 16, e);
	}
	if (!rc && hp->n_heads % hp->n_kv_heads)
		rc = isq_errbuf_set(e, ISQ_EFORMAT, "config.json: num_attention_heads %lld is not a multiple of num_key_value_heads %lld",
				    (long long)hp->n_heads, (long long)hp->n_kv_heads);
	hp->max_position_embeddings = 2048;
	rc = rc ? rc : opt_int(o, "max_position_embeddings", &hp->max_position_embeddings, 1, BIG, e);
	hp->rms_norm_eps = 1e-6;
	if (!rc && get_num(o, "rms_norm_eps", &hp->rms_norm_eps) < 0)
		rc = isq_errbuf_set(e, ISQ_EFORMAT, "config.json: 'rms_norm_eps' is not a number");
	hp->rope_theta = 10000.0;
	if (!rc && get_num(o, "rope_theta", &hp->rope_theta) < 0)
		rc = isq_errbuf_set(e, ISQ_EFORMAT, "config.json: 'rope_theta' is not a number");
	hp->tie_word_embeddings = archs[a].tie_default;
	if (!rc && get_bool(root, "tie_word_embeddings", &hp->tie_word_embeddings) < 0)
		rc = isq_errbuf_set(e, ISQ_EFORMAT, "config.json: 'tie_word_embeddings' is not a boolean");
	if (!rc && o != root)
		get_bool(o, "tie_word_embeddings", &hp->tie_word_embeddings);
	hp->attention_bias = hp->arch == ISQ_ARCH_QWEN2 || hp->arch == ISQ_ARCH_QWEN2_MOE;
	if (!rc)
		get_bool(o, "attention_bias", &hp->attention_bias);
	hp->qk_norm = hp->arch == ISQ_ARCH_QWEN3 || hp->arch == ISQ_ARCH_QWEN3_MOE;
	if (!rc) {
		int64_t sw = 0;
		if (get_int(o, "sliding_window", &sw) == 0 && sw > 0)
			hp->sliding_window = sw;
		const cJSON *usw = cJSON_GetObjectItemCaseSensitive(o, "use_sliding_window");
		if (cJSON_IsFalse(usw))
			hp->sliding_window = 0;
	}
	if (!rc) {
		const cJSON *rs = cJSON_GetObjectItemCaseSensitive(o, "rope_scaling");
		if (cJSON_IsObject(rs)) {
			const cJSON *t = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
			if (!cJSON_IsString(t))
				t = cJSON_GetObjectItemCaseSensitive(rs, "type");
			const char *ty = cJSON_IsString(t) ? t->valuestring : "";
			if (!strcmp(ty, "llama3"))
				hp->rope_scaling = ISQ_ROPE_SCALING_LLAMA3;
			else if (!strcmp(ty, "linear"))
				hp->rope_scaling = ISQ_ROPE_SCALING_LINEAR;
			else if (!strcmp(ty, "dynamic"))
				hp->rope_scaling = ISQ_ROPE_SCALING_DYNAMIC;
			else if (!strcmp(ty, "yarn"))
				hp->rope_scaling = ISQ_ROPE_SCALING_YARN;
			else if (strcmp(ty, "default"))
				rc = isq_errbuf_set(e, ISQ_EUNSUPPORTED, "config.json: rope_scaling type '%.32s' is not supported", ty);
			hp->rope_factor = 1.0;
			get_num(rs, "factor", &hp->rope_factor);
			hp->rope_low_freq_factor = 1.0;
			hp->rope_high_freq_factor = 4.0;
			get_num(rs, "low_freq_factor", &hp->rope_low_freq_factor);
			get_num(rs, "high_freq_factor", &hp->rope_high_freq_factor);
			get_int(rs, "original_max_position_embeddings", &hp->rope_original_max_position);
		}
	}
	if (!rc && (hp->arch == ISQ_ARCH_MIXTRAL || hp->arch == ISQ_ARCH_QWEN2_MOE || hp->arch == ISQ_ARCH_QWEN3_MOE)) {
		rc = opt_int(o, "num_local_experts", &hp->n_experts, 1, 1 << 16, e);
		rc = rc ? rc : opt_int(o, "num_experts", &hp->n_experts, 1, 1 << 16, e);
		rc = rc ? rc : opt_int(o, "num_experts_per_tok", &hp->n_experts_used, 1, 1 << 16, e);
		rc = rc ? rc : opt_int(o, "moe_intermediate_size", &hp->moe_intermediate_size, 1, BIG, e);
		if (!rc && cJSON_GetObjectItemCaseSensitive(o, "shared_expert_intermediate_size"))
			hp->n_shared_experts = 1;
	}
	if (!rc && !hp->intermediate_size && !hp->moe_intermediate_size)
		rc = isq_errbuf_set(e, ISQ_EFORMAT, "config.json: 'intermediate_size' is missing");
	hp->bos_token_id = token_id(root, "bos_token_id");
	hp->eos_token_id = token_id(root, "eos_token_id");
	hp->pad_token_id = token_id(root, "pad_token_id");
	const cJSON *td = cJSON_GetObjectItemCaseSensitive(root, "torch_dtype");
	if (!cJSON_IsString(td))
		td = cJSON_GetObjectItemCaseSensitive(root, "dtype");
	if (cJSON_IsString(td))
		snprintf(hp->torch_dtype, sizeof(hp->torch_dtype), "%.15s", td->valuestring);
	const cJSON *act = cJSON_GetObjectItemCaseSensitive(o, "hidden_act");
	if (cJSON_IsString(act))
		snprintf(hp->hidden_act, sizeof(hp->hidden_act), "%.31s", act->valuestring);
	cJSON_Delete(root);
	return rc;
}

int isq_config_load(const char *path, struct isq_hparams *hp, struct isq_errbuf *e)
{
	struct isq_buf p = ISQ_BUF_INIT, text = ISQ_BUF_INIT;
	if (isq_is_dir(path))
		isq_path_join(&p, path, "config.json");
	else
		isq_buf_puts(&p, path);
	int rc = isq_read_file(p.data, &text, e);
	if (!rc) {
		rc = isq_config_parse(text.data, text.len, hp, e);
		if (rc && !strncmp(e->msg, "config.json: ", 13)) {
			char msg[sizeof(e->msg)];
			snprintf(msg, sizeof(msg), "%s", e->msg + 13);
			isq_errbuf_set(e, rc, "%s: %s", p.data, msg);
		}
	}
	isq_buf_release(&p);
	isq_buf_release(&text);
	return rc;
}

int isq_config_check_supported(const struct isq_hparams *hp, struct isq_errbuf *e)
{
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(archs); i++)
		if (archs[i].arch == hp->arch)
			return archs[i].supported ? 0
						  : isq_errbuf_set(e, ISQ_EUNSUPPORTED, "%s is not yet supported",
								   archs[i].model_type);
	return isq_errbuf_set(e, ISQ_EUNSUPPORTED, "unknown architecture");
}

/* ---- names -------------------------------------------------------------------------------- */

/* Per-layer HF suffix <-> GGUF suffix (after "model.layers.N." and "blk.N."). */
static const struct {
	const char *hf, *gguf;
} layer_names[] = {
	{ "input_layernorm.weight", "attn_norm.weight" },
	{ "post_attention_layernorm.weight", "ffn_norm.weight" },
	{ "self_attn.q_proj.weight", "attn_q.weight" },
	{ "self_attn.k_proj.weight", "attn_k.weight" },
	{ "self_attn.v_proj.weight", "attn_v.weight" },
	{ "self_attn.o_proj.weight", "attn_output.weight" },
	{ "self_attn.q_proj.bias", "attn_q.bias" },
	{ "self_attn.k_proj.bias", "attn_k.bias" },
	{ "self_attn.v_proj.bias", "attn_v.bias" },
	{ "self_attn.o_proj.bias", "attn_output.bias" },
	{ "self_attn.q_norm.weight", "attn_q_norm.weight" },
	{ "self_attn.k_norm.weight", "attn_k_norm.weight" },
	{ "self_attn.qkv_proj.weight", "attn_qkv.weight" },
	{ "mlp.gate_proj.weight", "ffn_gate.weight" },
	{ "mlp.up_proj.weight", "ffn_up.weight" },
	{ "mlp.down_proj.weight", "ffn_down.weight" },
	{ "mlp.gate_up_proj.weight", "ffn_up.weight" },
	{ "block_sparse_moe.gate.weight", "ffn_gate_inp.weight" },
	{ "mlp.gate.weight", "ffn_gate_inp.weight" },
	{ "mlp.shared_expert.gate_proj.weight", "ffn_gate_shexp.weight" },
	{ "mlp.shared_expert.up_proj.weight", "ffn_up_shexp.weight" },
	{ "mlp.shared_expert.down_proj.weight", "ffn_down_shexp.weight" },
	{ "mlp.shared_expert_gate.weight", "ffn_gate_inp_shexp.weight" },
	{ "pre_feedforward_layernorm.weight", "ffn_norm.weight" },
	{ "post_feedforward_layernorm.weight", "post_ffw_norm.weight" },
};

static const struct {
	const char *hf, *gguf;
} global_names[] = {
	{ "model.embed_tokens.weight", "token_embd.weight" },
	{ "lm_head.weight", "output.weight" },
	{ "model.norm.weight", "output_norm.weight" },
};

static int copy_out(char *out, size_t n, const char *fmt, ...) ISQ_PRINTF(3, 4);
static int copy_out(char *out, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(out, n, fmt, ap);
	va_end(ap);
	return k < 0 || (size_t)k >= n ? ISQ_EINVAL : 0;
}

/* "prefix<N>.rest": the layer number and a pointer to rest, or -1. */
static long layer_of(const char *name, const char *prefix, const char **rest)
{
	size_t pl = strlen(prefix);
	if (strncmp(name, prefix, pl) || !isdigit((unsigned char)name[pl]))
		return -1;
	char *end;
	long n = strtol(name + pl, &end, 10);
	if (*end != '.' || n < 0 || n > 1000000)
		return -1;
	*rest = end + 1;
	return n;
}

int isq_name_hf_to_gguf(const char *hf, char *out, size_t n)
{
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(global_names); i++)
		if (!strcmp(hf, global_names[i].hf))
			return copy_out(out, n, "%s", global_names[i].gguf);
	const char *rest;
	long l = layer_of(hf, "model.layers.", &rest);
	if (l < 0)
		return ISQ_ENOTFOUND;
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(layer_names); i++)
		if (!strcmp(rest, layer_names[i].hf))
			return copy_out(out, n, "blk.%ld.%s", l, layer_names[i].gguf);
	return ISQ_ENOTFOUND;
}

int isq_name_gguf_to_hf(const char *gguf, char *out, size_t n)
{
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(global_names); i++)
		if (!strcmp(gguf, global_names[i].gguf))
			return copy_out(out, n, "%s", global_names[i].hf);
	const char *rest;
	long l = layer_of(gguf, "blk.", &rest);
	if (l < 0)
		return ISQ_ENOTFOUND;
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(layer_names); i++)
		if (!strcmp(rest, layer_names[i].gguf))
			return copy_out(out, n, "model.layers.%ld.%s", l, layer_names[i].hf);
	return ISQ_ENOTFOUND;
}

static int contains(const char *s, const char *sub)
{
	return strstr(s, sub) != NULL;
}

enum isq_tensor_role isq_name_role(const char *name, int *layer)
{
	const char *rest;
	long l = layer_of(name, "model.layers.", &rest);
	if (l < 0)
		l = layer_of(name, "blk.", &rest);
	if (layer)
		*layer = (int)l;
	size_t len = strlen(name);
	if (len >= 5 && !strcmp(name + len - 5, ".bias"))
		return ISQ_ROLE_BIAS;
	if (contains(name, "norm"))
		return ISQ_ROLE_NORM;
	if (!strcmp(name, "token_embd.weight") || contains(name, "embed_tokens"))
		return ISQ_ROLE_TOKEN_EMBD;
	if (!strcmp(name, "output.weight") || !strcmp(name, "lm_head.weight"))
		return ISQ_ROLE_OUTPUT;
	if (contains(name, "ffn_gate_inp") || contains(name, "block_sparse_moe.gate.") || contains(name, "mlp.gate.") ||
	    contains(name, "shared_expert_gate"))
		return ISQ_ROLE_FFN_GATE_INP;
	int experts = contains(name, ".experts.") || contains(name, "_exps");
	if (contains(name, "ffn_gate_exps") || (experts && (contains(name, ".w1.") || contains(name, "gate_proj"))))
		return ISQ_ROLE_FFN_GATE_EXPS;
	if (contains(name, "ffn_up_exps") || (experts && (contains(name, ".w3.") || contains(name, "up_proj"))))
		return ISQ_ROLE_FFN_UP_EXPS;
	if (contains(name, "ffn_down_exps") || (experts && (contains(name, ".w2.") || contains(name, "down_proj"))))
		return ISQ_ROLE_FFN_DOWN_EXPS;
	if (contains(name, "attn_qkv") || contains(name, "qkv_proj"))
		return ISQ_ROLE_ATTN_QKV;
	if (contains(name, "attn_q.") || contains(name, "q_proj"))
		return ISQ_ROLE_ATTN_Q;
	if (contains(name, "attn_k.") || contains(name, "k_proj"))
		return ISQ_ROLE_ATTN_K;
	if (contains(name, "attn_v.") || contains(name, "v_proj"))
		return ISQ_ROLE_ATTN_V;
	if (contains(name, "attn_output") || contains(name, "o_proj"))
		return ISQ_ROLE_ATTN_OUTPUT;
	if (contains(name, "ffn_gate") || contains(name, "gate_proj"))
		return ISQ_ROLE_FFN_GATE;
	if (contains(name, "ffn_up") || contains(name, "up_proj"))
		return ISQ_ROLE_FFN_UP;
	if (contains(name, "ffn_down") || contains(name, "down_proj"))
		return ISQ_ROLE_FFN_DOWN;
	return ISQ_ROLE_OTHER;
}
