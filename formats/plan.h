/*
 * plan.h - which type each tensor of a model becomes, decided once.
 *
 * isq-quantize follows the plan to write GGUF or UQFF, and isq-tune adds up
 * the same plan to predict file sizes, so the two cannot disagree.  The plan
 * applies, in order of precedence:
 *   1. --tensor-type REGEX=TYPE (first match on the output or source name);
 *   2. --token-embedding-type / --output-tensor-type;
 *   3. --topology: the `isq` type of the entry that decides the tensor
 *      (topology.h), as mistral.rs's topology overrides the default type
 *      per layer: no promotion, no mixture rule, --pure or not; an entry
 *      without `isq` leaves the default of 4;
 *   4. with --organization moqe (mistral.rs's MoQE): MoE expert weights get
 *      the requested type (no promotion), every other linear weight stays
 *      in the source's dtype (F32, F16 or BF16; an Unquant entry in UQFF);
 *      with --pure: the requested type for every quantizable tensor;
 *      with a llama.cpp mixture (q4_k_m, ...): llama-quantize's rules for
 *      attn_v, ffn_down, attn_output, output and token_embd;
 *      with a plain type: that type, and mistral.rs's promotion of the
 *      embedding and lm_head (Q2_K..Q4_K, Q4_0, Q4_1 -> Q6_K; Q5_K, Q6_K,
 *      Q8_K, Q5_0, Q5_1, Q8_0, Q8_1 -> Q8_0; AFQ2-4 -> AFQ6; AFQ6/8 -> AFQ8);
 *   5. the shape fallback when the row length does not fit the type
 *      (IQ4_XS -> IQ4_NL; Q2_K, Q3_K -> Q4_0; Q4_K -> Q5_0; Q5_K -> Q5_1;
 *      Q6_K, Q8_K -> Q8_0; then, when 32 does not divide the row either, the
 *      source's 16-bit type: BF16 for BF16, F16 for F16 or F32 sources), each
 *      recorded with its reason.
 * Tensors that are not linear weights (norms, biases, 1-D tensors, the MoE
 * router) are stored as F32 in GGUF, as llama.cpp's converter does.  A tied
 * lm_head (config.json tie_word_embeddings) is dropped: GGUF has token_embd only.
 */
#ifndef ISQ_PLAN_H
#define ISQ_PLAN_H

#include "model.h"
#include "opt.h"
#include "types.h"

enum isq_out_format { ISQ_FORMAT_GGUF, ISQ_FORMAT_UQFF };
enum isq_target { ISQ_TARGET_CPU, ISQ_TARGET_CUDA, ISQ_TARGET_VULKAN, ISQ_TARGET_METAL };
/* --target: "cpu", "cuda", "vulkan" or "metal" into *t; 0, or -1 for another name. */
int isq_target_parse(const char *s, enum isq_target *t);
/* --organization: default (every linear weight), or moqe (MoE experts only). */
enum isq_organization { ISQ_ORG_DEFAULT, ISQ_ORG_MOQE };

struct isq_topology; /* topology.h */

/* llama.cpp's quantization mixtures (llama_ftype recipes). */
enum isq_mixture {
	ISQ_MIX_NONE = 0,
	ISQ_MIX_Q2_K_M, /* llama.cpp's "Q2_K" recipe */
	ISQ_MIX_Q3_K_S,
	ISQ_MIX_Q3_K_M,
	ISQ_MIX_Q3_K_L,
	ISQ_MIX_Q4_K_S,
	ISQ_MIX_Q4_K_M,
	ISQ_MIX_Q5_K_S,
	ISQ_MIX_Q5_K_M,
};

/* What -t named, resolved. */
struct isq_type_request {
	enum isq_type type;      /* the base type */
	enum isq_mixture mixture;
	int shorthand;           /* 2..8 when a numeric shorthand was given, else 0 */
	enum isq_type alt_type;  /* UQFF: the second variant of a shorthand (AFQn), else ISQ_TYPE_NONE */
	uint32_t ftype;          /* llama_ftype for general.file_type */
	char label[16];          /* canonical spelling: "q4_k", "q4_k_m" */
};

/*
 * Parse a -t value: a canonical type or alias (isq-types(7)), a numeric
 * shorthand 2 3 4 5 6 8 (resolved for target), or a mixture name.
 * ISQ_EINVAL with "unknown type 'q4k_m' (did you mean 'q4_k_m'?)" in *e.
 * "auto" is ISQ_EUNSUPPORTED here (isq-tune resolves it).
 */
int isq_type_request_parse(const char *s, enum isq_target target, struct isq_type_request *r,
			   struct isq_errbuf *e);

struct isq_plan_opts {
	const char *type;            /* -t */
	int pure;
	const char *token_embd_type; /* NULL = by the rules */
	const char *output_type;
	const struct isq_strlist *tensor_types; /* "REGEX=TYPE" entries */
	enum isq_out_format format;
	enum isq_target target;
	const struct isq_topology *topology;   /* NULL: none */
	enum isq_organization organization;
};

struct isq_plan_entry {
	char name[96];          /* output name: GGUF name, or the HF name for UQFF and raw safetensors */
	const char *src_name;   /* first source tensor's name */
	size_t src;             /* index in model->tensors of the first source */
	int n_src;              /* > 1: per-expert tensors stacked into one 3-D tensor */
	size_t *srcs;           /* n_src indices, expert order (NULL when n_src == 1) */
	enum isq_tensor_role role;
	int layer;
	enum isq_type src_type;
	enum isq_type requested; /* before the shape fallback */
	enum isq_type type;      /* stored type */
	int quantize;            /* 1: a linear weight that goes through the quantizer */
	int topology_line;       /* > 0: the --topology entry (its line) that decided the type */
	char fallback[160];      /* why type != requested; "" when it is not a fallback */
	int permute_heads;       /* > 0: llama Q/K row permutation with this many heads */
	int n_dims;
	int64_t ne[4];           /* ggml order: ne[0] = row length */
	uint64_t nbytes;
};

struct isq_plan {
	struct isq_plan_entry *entries; /* in output order (llama-quantize's for GGUF) */
	size_t n;
	struct isq_type_request req;
	int n_fallbacks;
	int n_explicit;              /* quantized tensors whose type a flag or the topology named */
	size_t n_dropped;            /* tied lm_head and tensors with no output name */
	uint64_t total_bytes;        /* sum of entries' nbytes */
	uint64_t total_params;
};

/*
 * Build the plan for m.  Errors (bad type, a type the format cannot hold,
 * bad regex; with moqe, a model without MoE experts and no explicit type
 * anywhere) in *e.
 */
int isq_plan_build(const struct isq_model *m, const struct isq_plan_opts *o, struct isq_plan *p,
		   struct isq_errbuf *e);
void isq_plan_release(struct isq_plan *p);

/* The llama_ftype value for a single type (as llama-quantize would label a --pure file). */
uint32_t isq_ftype_of(enum isq_type t);

#endif
