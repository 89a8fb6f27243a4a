/*
 * config.h - a Hugging Face config.json as hyperparameters, and the map
 * between HF tensor names and GGUF tensor names.
 *
 * Supported for inference now: the dense Llama family (model_type llama,
 * mistral, qwen2, qwen3).  phi3, gemma, gemma2 and MoE (mixtral, qwen2_moe,
 * qwen3_moe) configs are parsed, with arch set accordingly, so that later
 * issues and isq-tune can use them; isq_config_check_supported() says which
 * ones the forward pass runs.
 */
#ifndef ISQ_CONFIG_H
#define ISQ_CONFIG_H

#include "isq.h"

enum isq_arch {
	ISQ_ARCH_UNKNOWN = 0,
	ISQ_ARCH_LLAMA,
	ISQ_ARCH_MISTRAL,
	ISQ_ARCH_QWEN2,
	ISQ_ARCH_QWEN3,
	ISQ_ARCH_PHI3,
	ISQ_ARCH_GEMMA,
	ISQ_ARCH_GEMMA2,
	ISQ_ARCH_MIXTRAL,
	ISQ_ARCH_QWEN2_MOE,
	ISQ_ARCH_QWEN3_MOE,
};

enum isq_rope_scaling {
	ISQ_ROPE_SCALING_NONE = 0,
	ISQ_ROPE_SCALING_LINEAR,
	ISQ_ROPE_SCALING_DYNAMIC,
	ISQ_ROPE_SCALING_LLAMA3,
	ISQ_ROPE_SCALING_YARN,
};

struct isq_hparams {
	enum isq_arch arch;
	char model_type[64];     /* config.json "model_type" as written */
	const char *gguf_arch;   /* GGUF general.architecture: "llama", "qwen2", ... */
	int64_t vocab_size;
	int64_t hidden_size;     /* n_embd */
	int64_t intermediate_size; /* n_ff */
	int64_t n_layers;
	int64_t n_heads;
	int64_t n_kv_heads;      /* defaults to n_heads */
	int64_t head_dim;        /* defaults to hidden_size / n_heads */
	int64_t max_position_embeddings;
	double rms_norm_eps;
	double rope_theta;       /* default 10000 */
	int rope_neox;           /* rotate_half pairs (qwen2/3 in GGUF) vs adjacent pairs (llama in GGUF) */
	enum isq_rope_scaling rope_scaling;
	double rope_factor;
	double rope_low_freq_factor, rope_high_freq_factor; /* llama3 */
	int64_t rope_original_max_position;                  /* llama3/yarn */
	int tie_word_embeddings;
	int attention_bias;      /* q/k/v biases (qwen2 always) */
	int qk_norm;             /* per-head RMSNorm on q and k (qwen3) */
	int64_t sliding_window;  /* 0 = none */
	int64_t bos_token_id, eos_token_id, pad_token_id; /* -1 when absent */
	/* MoE */
	int64_t n_experts;       /* 0 = dense */
	int64_t n_experts_used;
	int64_t moe_intermediate_size;
	int64_t n_shared_experts;
	char torch_dtype[16];    /* "bfloat16", "float16", "float32" or "" */
	char hidden_act[32];
};

/*
 * Parse config.json text.  Missing required fields, values of the wrong type
 * or absurd sizes are ISQ_EFORMAT ("config.json: 'hidden_size' is missing");
 * a model_type we do not know is ISQ_EUNSUPPORTED naming it.
 */
int isq_config_parse(const char *json, size_t len, struct isq_hparams *hp, struct isq_errbuf *e);
/* Read DIR/config.json (or a config.json path) and parse it. */
int isq_config_load(const char *path, struct isq_hparams *hp, struct isq_errbuf *e);
/* 0 if the forward pass runs this architecture, else ISQ_EUNSUPPORTED ("phi3 is not yet supported"). */
int isq_config_check_supported(const struct isq_hparams *hp, struct isq_errbuf *e);
const char *isq_arch_name(enum isq_arch a);

/*
 * HF name -> GGUF name ("model.layers.3.self_attn.q_proj.weight" ->
 * "blk.3.attn_q.weight"; "model.embed_tokens.weight" -> "token_embd.weight";
 * "lm_head.weight" -> "output.weight").  Writes into out (size n).  Returns
 * 0, or ISQ_ENOTFOUND for a name with no GGUF equivalent (e.g.
 * rotary_emb.inv_freq, which the converter drops).
 */
int isq_name_hf_to_gguf(const char *hf, char *out, size_t n);
/* The reverse map; ISQ_ENOTFOUND for an unknown GGUF name. */
int isq_name_gguf_to_hf(const char *gguf, char *out, size_t n);

/* What a tensor is, from either naming: drives quantize/keep decisions. */
enum isq_tensor_role {
	ISQ_ROLE_OTHER = 0,
	ISQ_ROLE_TOKEN_EMBD,
	ISQ_ROLE_OUTPUT,     /* lm_head */
	ISQ_ROLE_NORM,       /* any *norm* weight */
	ISQ_ROLE_ATTN_Q,
	ISQ_ROLE_ATTN_K,
	ISQ_ROLE_ATTN_V,
	ISQ_ROLE_ATTN_OUTPUT,
	ISQ_ROLE_ATTN_QKV,
	ISQ_ROLE_FFN_GATE,
	ISQ_ROLE_FFN_UP,
	ISQ_ROLE_FFN_DOWN,
	ISQ_ROLE_FFN_GATE_EXPS, /* stacked MoE experts */
	ISQ_ROLE_FFN_UP_EXPS,
	ISQ_ROLE_FFN_DOWN_EXPS,
	ISQ_ROLE_FFN_GATE_INP,  /* MoE router: never quantized */
	ISQ_ROLE_BIAS,
};
/* Role of a tensor name (HF or GGUF); *layer gets the block number or -1. */
enum isq_tensor_role isq_name_role(const char *name, int *layer);

#endif
