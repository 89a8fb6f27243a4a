/*
 * forward.h - the decoder forward pass of the dense Llama family (llama,
 * mistral, qwen2, qwen3), written once against a backend (backend.h).
 *
 * One layer, for a batch of token rows x:
 *
 *   h = rms_norm(x) * attn_norm
 *   q = Wq h (+ bq)   k = Wk h (+ bk)   v = Wv h (+ bv)      qwen2: biases
 *   q, k = rms_norm per head * q_norm, k_norm                  qwen3
 *   q, k = rope(q, k)                 normal or NeoX pairs, scaled frequencies
 *   x += Wo attention(q, k, v)        causal, GQA, KV cache per layer
 *   h = rms_norm(x) * ffn_norm
 *   x += Wdown (silu(Wgate h) * Wup h)
 *
 * then logits = Wout (rms_norm(x) * output_norm); Wout is the token
 * embedding when the model ties them.
 *
 * Ownership.  struct isq_fw_weights only points at tensors: whoever fills it
 * (formats/weights.h) keeps the memory alive while a context uses it.  The
 * context uploads them through the backend (zero copy on the CPU), owns its
 * activations and KV cache, and is used by one thread at a time.
 *
 * The same pass serves isq-run (logits of the last row), isq-bench
 * (perplexity: logits of every row) and isq-imatrix (an observer that sees
 * every matmul input).
 */
#ifndef ISQ_FORWARD_H
#define ISQ_FORWARD_H

#include "backend.h"

enum isq_fw_rope_scaling {
	ISQ_FW_ROPE_NONE = 0,
	ISQ_FW_ROPE_LINEAR,  /* positions divided by factor */
	ISQ_FW_ROPE_LLAMA3,  /* Llama 3.1's per-frequency smoothing */
};

struct isq_fw_config {
	int64_t n_vocab, n_embd, n_ff, n_layer;
	int n_head, n_head_kv, head_dim;
	int64_t n_ctx_train;
	float norm_eps;
	float rope_theta;
	int rope_neox;     /* 1: rotate_half pairs (HF layout, qwen in GGUF); 0: adjacent pairs (llama GGUF) */
	enum isq_fw_rope_scaling rope_scaling;
	float rope_factor;
	float rope_low_freq_factor, rope_high_freq_factor; /* llama3 */
	int64_t rope_orig_ctx;                             /* llama3 */
};

/*
 * Vectors are F32 host arrays (norm weights: n_embd, or head_dim for
 * q_norm/k_norm; biases: the matrix's rows); NULL when the model has none.
 */
struct isq_fw_layer {
	const float *attn_norm, *ffn_norm;
	const float *q_norm, *k_norm; /* qwen3 */
	const float *bq, *bk, *bv;    /* qwen2 */
	struct isq_fw_tensor wq, wk, wv, wo, gate, up, down;
};

struct isq_fw_weights {
	struct isq_fw_config cfg;
	struct isq_fw_tensor tok_embd;
	struct isq_fw_tensor output; /* data NULL: tied to tok_embd */
	const float *output_norm;
	/* llama.cpp's rope_freqs.weight (head_dim/2 divisors of the base frequencies), or NULL */
	const float *rope_freqs;
	struct isq_fw_layer *layers; /* n_layer */
	/* set when an owner freed matrices a context had copied (host_copied below): no further contexts */
	int spent;
};

struct isq_fw_ctx;

struct isq_fw_params {
	int64_t n_ctx;        /* positions the KV cache holds */
	int n_batch;          /* rows evaluated at once (longer inputs are split); 0: 64 */
	enum isq_type kv_type; /* ISQ_TYPE_F32 (0, the default) or ISQ_TYPE_F16 */
	/*
	 * Optional: called during isq_fw_new for each host matrix a backend made
	 * its own copy of (repacked, or uploaded to a device).  The context never
	 * reads that matrix's host bytes again, so their owner may free them
	 * (isq_weights_host_copied does, and marks the weights spent).  File-backed
	 * matrices need no callback: their pages are dropped in any case.
	 */
	void (*host_copied)(void *ud, const struct isq_fw_tensor *host);
	void *host_copied_ud;
};

/*
 * A context for W on backend BE (both must outlive it).  Checks that every
 * matrix has the shape the config implies and a type the backend can
 * multiply.  Errors: ISQ_EFORMAT (shapes), ISQ_EUNSUPPORTED (types),
 * ISQ_EINVAL (params), ISQ_ENOMEM.
 */
int isq_fw_new(struct isq_fw_ctx **out, const struct isq_fw_weights *w, struct isq_backend *be,
	       const struct isq_fw_params *p, struct isq_errbuf *e);
void isq_fw_free(struct isq_fw_ctx *c); /* NULL is a no-op */

enum isq_fw_eval_flags {
	ISQ_FW_LOGITS_ALL = 1 << 0, /* n rows of logits instead of the last row's */
};

/*
 * Run N tokens at positions pos .. pos+n-1 (earlier positions must already
 * be in the cache: pos is where the sequence continues; pos 0 starts over).
 * LOGITS (host memory, may be NULL) receives n_vocab floats for the last
 * row, or n * n_vocab with ISQ_FW_LOGITS_ALL.  ISQ_EINVAL when the tokens
 * would pass n_ctx or an id is out of range.
 */
int isq_fw_eval(struct isq_fw_ctx *c, const int32_t *ids, int n, int64_t pos, float *logits, unsigned flags,
		struct isq_errbuf *e);

/* Which matmul an observer sees. */
enum isq_fw_role {
	ISQ_FW_ATTN_QKV,    /* input of Wq, Wk, Wv (one call for the three) */
	ISQ_FW_ATTN_OUTPUT,
	ISQ_FW_FFN_GATE_UP, /* input of Wgate and Wup */
	ISQ_FW_FFN_DOWN,
	ISQ_FW_OUTPUT,
};
/*
 * Called before each matmul with its input rows (n_tok x cols, host memory
 * on the CPU backend).  For activation statistics (isq-imatrix).
 */
typedef void (*isq_fw_observer)(void *ud, int layer, enum isq_fw_role role, const float *x, int n_tok,
				int64_t cols);
void isq_fw_set_observer(struct isq_fw_ctx *c, isq_fw_observer fn, void *ud);

/* The inverse frequencies the config gives (head_dim/2 floats into out): for tests and other backends. */
void isq_fw_rope_inv_freq(const struct isq_fw_config *cfg, const float *rope_freqs, float *out);

#endif
