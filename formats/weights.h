/*
 * weights.h - a model's weights laid out for the forward pass (forward.h).
 *
 * Opens what isq_model_open() opens (a GGUF file from isq or llama.cpp, a
 * Hugging Face safetensors directory or file) and fills a struct
 * isq_fw_weights: matrices are views into the memory-mapped file (zero copy,
 * any type of the type table); the small vectors (norm weights, biases,
 * rope_freqs) are widened to F32 copies owned by the handle.
 *
 * Layouts.  HF checkpoints keep Q and K rows in rotate_half order, so they
 * run with NeoX-style RoPE whatever the architecture.  llama.cpp's llama
 * GGUFs store Q/K rows permuted into adjacent pairs (convert_hf_to_gguf.py,
 * and isq's convert.c, do this on write; llama2.c checkpoints already are),
 * so GGUF "llama" runs with normal RoPE on the stored rows, and GGUF
 * qwen2/qwen3 (never permuted) run with NeoX.  Both compute the same
 * function; no row is moved at load.
 *
 * UQFF.  A UQFF directory (or one of its shards) opens too: config.json,
 * tokenizer.json and residual.safetensors beside the shards give the
 * configuration and the small tensors; each matrix comes from its layer
 * entry.  GGML (format 0) and Unquant (1) entries are used in place (copied
 * when the file leaves them unaligned, as safetensors may); HQQ,
 * FP8, AFQ, F8Q8 and MXFP4 entries are decoded once at load into an owned
 * F16 copy (the CPU has no kernels for their layouts).  With several shard
 * sets (a numeric shorthand writes a Q*K and an AFQ set) the one with the
 * most GGML entries is used.
 *
 * Architectures: llama, mistral, qwen2, qwen3.  Anything else (phi3, gemma,
 * MoE) is ISQ_EUNSUPPORTED with "<arch> is not yet supported".
 */
#ifndef ISQ_WEIGHTS_H
#define ISQ_WEIGHTS_H

#include "forward.h"
#include "model.h"
#include "uqff.h"

struct isq_weights {
	struct isq_model model;
	struct isq_hparams hp;
	struct isq_fw_weights fw;
	int from_gguf;
	struct isq_errbuf err;
	/* private */
	float **owned;
	size_t n_owned;
	struct isq_weights_opts *opts;
	struct isq_uqff *uqff;               /* UQFF input; NULL otherwise */
	const struct isq_uqff_set *uqff_set; /* the set in use */
	const struct isq_plan *isq_plan;     /* while opening with --isq: the planned types */
	struct isq_pool *isq_pool;           /* while opening with --isq: its threads */
};

/*
 * Open PATH into W (zeroed by the call).  Returns 0, or a negative status with
 * the message in w->err: the container's errors (ISQ_EIO, ISQ_ENOTFOUND,
 * ISQ_EFORMAT), ISQ_EFORMAT for a missing tensor or key ("tensor
 * 'blk.0.attn_q.weight' is missing"), ISQ_EUNSUPPORTED for an architecture,
 * a RoPE scaling or a tensor type the forward pass does not run.
 */
int isq_weights_open(struct isq_weights *w, const char *path);

/*
 * In-situ quantization at load (mistral.rs's ISQ): every linear layer's
 * matrix held in F32, F16 or BF16 (attention, MLP and an untied output) is
 * quantized to `isq` as it is opened, a few rows at a time on n_threads
 * threads, into memory the handle owns; the source pages are then dropped
 * from memory (madvise), so the whole model is never resident unquantized.
 * The token embedding stays as stored (a lookup, not a product).  A matrix
 * whose rows do not fit the type's blocks takes mistral.rs's fallback type
 * (the UQFF plan's shape rules), or keeps its source type when the fallback
 * is a float type.  isq = ISQ_TYPE_NONE opens as isq_weights_open().
 */
struct isq_weights_opts {
	enum isq_type isq;
	int n_threads;
	int n_quantized, n_kept; /* out: matrices quantized, matrices left in their type */
	int n_fallback;          /* out: of the quantized, those given a fallback type */
};
int isq_weights_open_opts(struct isq_weights *w, const char *path, struct isq_weights_opts *o);
void isq_weights_release(struct isq_weights *w);
/*
 * isq_fw_params.host_copied (ud: the struct isq_weights *) for a handle that
 * makes one forward context: frees the handle's own copy of a matrix (--isq
 * output, a copied UQFF entry) once the context holds its own, so a repacked
 * model is not resident twice.  The handle can make no further context
 * (w->fw.spent).
 */
void isq_weights_host_copied(void *w, const struct isq_fw_tensor *host);

#endif
