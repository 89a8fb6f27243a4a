/*
 * types.h - the one table of tensor types.
 *
 * Every element type isq reads or writes has one row here: its names, ggml
 * type id (for GGUF), block geometry and the kernels that quantize,
 * dequantize and take dot products.  Tools and formats look types up here and
 * never switch over them.  GGML types keep ggml's ids so that the enum value
 * is the id written into GGUF; types that exist only in mistral.rs's UQFF
 * (HQQ, AFQ, FP8, F8Q8) have ids from ISQ_TYPE_FIRST_EXT on and no ggml id.
 * Types ggml knows but isq cannot quantize (IQ2_XXS, TQ1_0, ...) are listed
 * with their geometry only, so that GGUF files holding them can be read and
 * listed.
 */
#ifndef ISQ_TYPES_H
#define ISQ_TYPES_H

#include "isq.h"

enum isq_type {
	ISQ_TYPE_F32 = 0,
	ISQ_TYPE_F16 = 1,
	ISQ_TYPE_Q4_0 = 2,
	ISQ_TYPE_Q4_1 = 3,
	ISQ_TYPE_Q5_0 = 6,
	ISQ_TYPE_Q5_1 = 7,
	ISQ_TYPE_Q8_0 = 8,
	ISQ_TYPE_Q8_1 = 9,
	ISQ_TYPE_Q2_K = 10,
	ISQ_TYPE_Q3_K = 11,
	ISQ_TYPE_Q4_K = 12,
	ISQ_TYPE_Q5_K = 13,
	ISQ_TYPE_Q6_K = 14,
	ISQ_TYPE_Q8_K = 15,
	ISQ_TYPE_IQ2_XXS = 16,
	ISQ_TYPE_IQ2_XS = 17,
	ISQ_TYPE_IQ3_XXS = 18,
	ISQ_TYPE_IQ1_S = 19,
	ISQ_TYPE_IQ4_NL = 20,
	ISQ_TYPE_IQ3_S = 21,
	ISQ_TYPE_IQ2_S = 22,
	ISQ_TYPE_IQ4_XS = 23,
	ISQ_TYPE_I8 = 24,
	ISQ_TYPE_I16 = 25,
	ISQ_TYPE_I32 = 26,
	ISQ_TYPE_I64 = 27,
	ISQ_TYPE_F64 = 28,
	ISQ_TYPE_IQ1_M = 29,
	ISQ_TYPE_BF16 = 30,
	ISQ_TYPE_TQ1_0 = 34,
	ISQ_TYPE_TQ2_0 = 35,
	ISQ_TYPE_MXFP4 = 39,
	ISQ_TYPE_NVFP4 = 40,
	ISQ_TYPE_Q1_0 = 41,
	ISQ_TYPE_Q2_0 = 42,
	ISQ_GGML_TYPE_COUNT = 43, /* ggml ids are < this */

	/* mistral.rs formats without a ggml id (issue [3/9]) */
	ISQ_TYPE_FIRST_EXT = 64,
	ISQ_TYPE_HQQ4 = 64,
	ISQ_TYPE_HQQ8 = 65,
	ISQ_TYPE_FP8 = 66,
	ISQ_TYPE_F8Q8 = 67,
	ISQ_TYPE_AFQ2 = 68,
	ISQ_TYPE_AFQ3 = 69,
	ISQ_TYPE_AFQ4 = 70,
	ISQ_TYPE_AFQ6 = 71,
	ISQ_TYPE_AFQ8 = 72,
	ISQ_TYPE_COUNT = 73,
	ISQ_TYPE_NONE = -1,
};

enum isq_backend_mask {
	ISQ_BACKEND_CPU = 1 << 0,
	ISQ_BACKEND_CUDA = 1 << 1,
	ISQ_BACKEND_VULKAN = 1 << 2,
};

/*
 * Quantize nrows rows of n_per_row floats into dst (nrows * row_size bytes).
 * imatrix: NULL, or n_per_row non-negative importance weights (one per
 * column), shared by every row.  Preconditions (asserted): n_per_row is a
 * multiple of the block size and every input is finite; isq_quantize() checks
 * both and returns an error instead.  Output bytes must not depend on the
 * thread count or SIMD path.  Returns the number of bytes written.
 */
typedef size_t (*isq_quantize_fn)(const float *src, void *dst, int64_t nrows, int64_t n_per_row,
				  const float *imatrix);
/* Decode n elements (a multiple of the block size) starting at a block boundary. */
typedef void (*isq_dequantize_fn)(const void *src, float *dst, int64_t n);
/* Encode one row of activations with no search (q8_0, q8_1, q8_K). */
typedef void (*isq_from_float_fn)(const float *src, void *dst, int64_t n);
/* *s = dot(x, y) over n elements; x is this type, y is vec_dot_type. */
typedef void (*isq_vec_dot_fn)(int64_t n, float *s, const void *x, const void *y);

struct isq_type_traits {
	enum isq_type type;
	const char *name;      /* canonical, lower case: "q4_k" */
	const char *ggml_name; /* as ggml spells it: "q4_K"; NULL if none */
	const char *aliases;   /* space-separated other spellings, matched case-insensitively */
	int ggml_id;           /* -1: not a ggml type */
	int64_t blck;          /* elements per block */
	size_t type_size;      /* bytes per block */
	int is_quantized;
	int uses_imatrix;      /* the quantizer reads importance weights */
	unsigned backends;     /* enum isq_backend_mask: where isq-run can execute it */
	enum isq_type vec_dot_type; /* activation type of vec_dot */
	isq_quantize_fn quantize;   /* fastest path on this CPU (set by isq_types_init) */
	isq_quantize_fn quantize_ref; /* scalar reference, the oracle */
	isq_dequantize_fn dequantize;
	isq_from_float_fn from_float;
	isq_vec_dot_fn vec_dot;     /* fastest path */
	isq_vec_dot_fn vec_dot_ref;
};

/*
 * Pick the optimized kernels for this CPU (cpuid once).  Called implicitly by
 * isq_type_traits(); safe to call from several threads.
 */
void isq_types_init(void);
/* Force the scalar reference kernels everywhere (tests; ISQ_FORCE_REF=1 in the environment). */
void isq_types_force_ref(int on);

/* The row for t, or NULL for an id that names no type. */
const struct isq_type_traits *isq_type_traits(enum isq_type t);
/* The row for a ggml type id, or NULL (unknown or removed id). */
const struct isq_type_traits *isq_type_from_ggml(uint32_t ggml_id);
/* Canonical name, "?" for an unknown type. */
const char *isq_type_name(enum isq_type t);

/*
 * Look a type name up: canonical names, ggml's spelling and aliases, case
 * insensitively ("Q4K", "q4_k", "F8E4M3").  Returns 0, or ISQ_ENOTFOUND; then
 * *suggest (if not NULL) is the nearest canonical name, or NULL.
 */
int isq_type_parse(const char *s, enum isq_type *out, const char **suggest);

/*
 * Bytes of n elements of type t; ISQ_EINVAL when n is not a multiple of the
 * block size, ISQ_ERANGE-like overflow reported as ISQ_EINVAL too.
 */
int isq_type_row_size(enum isq_type t, uint64_t n, uint64_t *bytes);
/* Bits per weight = 8 * type_size / blck. */
double isq_type_bpw(enum isq_type t);

/*
 * Checked entry point for the quantizers: rejects a row length that is not a
 * multiple of the block size (ISQ_EINVAL) and non-finite input or importance
 * values (ISQ_EINVAL, naming the flat element index in *e), then calls the
 * fastest kernel.  *written gets the output size.
 */
int isq_quantize(enum isq_type t, const float *src, void *dst, int64_t nrows, int64_t n_per_row,
		 const float *imatrix, size_t *written, struct isq_errbuf *e);

#endif
