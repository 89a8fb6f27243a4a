/*
 * mrs.h - mistral.rs's own quantization formats: HQQ4/HQQ8, AFQ2/3/4/6/8,
 * FP8 (per-tensor E4M3), F8Q8, and MXFP4 in UQFF's two-tensor encoding.
 *
 * In a UQFF file (isq-uqff(5); mistral.rs 0.9.2, UQFF 1.2) a layer with key K
 * stored in one of these formats is several safetensors tensors: the payload
 * K.weight and metadata K.weight.<suffix>.  This module describes those
 * tensors (struct isq_mrs_layout), fills caller-provided buffers with them
 * (quantize), checks a set read from a file and decodes it (open,
 * dequantize).  Kernels never allocate: the caller plans, allocates each
 * tensor's nbytes, then quantizes.  The layer bias K.bias is the caller's.
 *
 * Shapes are mistral.rs/torch order (last dimension = the input, the packed
 * one).  "Rows" are the product of all dimensions but the last; N is the
 * element count.  All multi-byte values are little-endian.
 *
 * HQQ (format tag 2), bits b = 4 or 8, group G = 64 (32 and 128 accepted):
 *   weight              U8   8-bit: [G, N/G]   4-bit: [G/2, N/G]
 *   weight.scales       F32  [1, N/G]  step per group
 *   weight.zeros        F32  [1, N/G]  zero point per group (not rounded)
 *   weight.shape        U32  [rank]    logical shape
 *   weight.bits U8 [] b; weight.group_size U32 [] G; weight.axis U8 [] 0;
 *   weight.optimization_steps U32 [] 10; weight.round_zeros U8 [] 0;
 *   weight.channel_wise U8 [] 1; weight.format U8 [] 2
 *   The flat tensor is viewed as a [G, N/G] matrix and each COLUMN is a
 *   group: group c = flat elements {c, c + N/G, c + 2N/G, ...}; q[r][c] is
 *   element r of group c.  8-bit: byte[r][c] = q[r][c]; 4-bit: byte[r][c] =
 *   q[r][c] << 4 | q[r + G/2][c] (first half of the rows in the high nibble).
 *   Value = (q - zero[c]) * scale[c].  N must be a multiple of G.
 *
 * AFQ (tag 4), bits b in {2,3,4,6,8}, group gs in {32, 64, 128} (default 64):
 *   weight              U32  [..., rows, in*b/32]  codes, a little-endian
 *                            bit stream per row: element j in bits
 *                            [j*b, j*b + b) (3- and 6-bit codes straddle words)
 *   weight.scales       D    [..., rows, in/gs]   D = F32, F16 or BF16
 *   weight.biases       D    [..., rows, in/gs]
 *   weight.bits U8 [] b; weight.group_size U8 [] gs; weight.format U8 [] 4
 *   Value = q * scale + bias.  in must be a multiple of gs.
 *
 * FP8 (tag 3), one scale per tensor, rank 1 or 2:
 *   weight              F8_E4M3 [shape]  e4m3(x * quant_scale), saturating
 *   weight.dequant_w_scale F32 []  1 / quant_scale (what decoding multiplies by)
 *   weight.dequant_x_scale F32 []  the same value (as mistral.rs writes it)
 *   weight.quant_scale  F32 []
 *   weight.dtype U32 [] 9 (F8E4M3 in mistral.rs's dtype codes); weight.format U8 [] 3
 *
 * F8Q8 (tag 5), rank 1 or 2:
 *   weight              U8   [33 * nb]  nb = ceil(N/32) blocks over the
 *                            FLAT tensor, zero-padded: byte 0 an E4M3 scale
 *                            code e, then 32 int8 codes; value = q * (e4m3(e) / 448)
 *   weight.num_blocks U32 [] nb; weight.shape U32 [rank]; weight.format U8 [] 5
 *
 * MXFP4 (tag 6), in a multiple of 32:
 *   weight              U8   [..., rows, in/2]  E2M1 codes, element 2i in the
 *                            low nibble of byte i, 2i+1 in the high nibble
 *   weight.scales       U8   [..., rows, in/32] E8M0 exponents e
 *   weight.format U8 [] 6
 *   Value = e2m1(q) * 2^(e - 127), computed exactly as ggml does for its
 *   17-byte block (isq_mxfp4_to_uqff below converts losslessly both ways).
 *
 * The encoders are isq's own and never worse than mistral.rs's on the same
 * input (man/isq-types.7 has the details and measured figures):
 *   HQQ: HQQ's proximal solver (lp norm 0.7, beta 10 * 1.01^i, 10 steps) per
 *     group from its min/max start, keeping the zero point with the lowest
 *     (weighted) squared error among the start and every iterate, then a
 *     least-squares polish of step and zero while it lowers the error; no
 *     2e4 cap on the inverse step.
 *   AFQ: mistral.rs's min/max pair, then a grid of inverse scales around
 *     it, each refitted by weighted least squares and judged after rounding
 *     scale and bias to D, Lloyd steps, and (16-bit D) the neighbouring
 *     representable scales.
 *   FP8: mistral.rs's clamped 448/absmax and 448/absmax * 2^(-j/8), j = 0..7;
 *     the candidate with the lowest (weighted) error over the tensor wins.
 *   F8Q8: the E4M3 scale code nearest to amax/127*448 and its two neighbours,
 *     codes re-derived from each rounded scale; the best block wins.
 *   MXFP4: per block the exponent mistral.rs picks (floor(log2(amax/6))),
 *     the one below and the two above (which include llama.cpp's); the
 *     lowest (weighted) error wins.
 * Output bytes depend neither on the CPU (scalar and AVX2 give the same
 * bytes) nor on how the work is split between threads.
 *
 * Importance weights (imatrix): one non-negative weight per input column
 * (length = last dimension), shared by every row; for a rank-3 stacked
 * [E, out, in] tensor, E * in weights are accepted too (one vector per
 * expert).  A group whose weights are all zero is treated as unweighted.
 */
#ifndef ISQ_MRS_H
#define ISQ_MRS_H

#include "types.h"

/* Fill in the mistral.rs rows of the type table (scalar kernels when use_ref). */
void isq_mrs_register(struct isq_type_traits *tab, int use_ref);

/* Element types of the produced tensors, as safetensors names them. */
enum isq_mrs_dtype {
	ISQ_MRS_DTYPE_DEFAULT, /* in isq_mrs_params only: BF16 */
	ISQ_MRS_U8,
	ISQ_MRS_U32,
	ISQ_MRS_F32,
	ISQ_MRS_F16,
	ISQ_MRS_BF16,
	ISQ_MRS_F8_E4M3,
};

/* "U8", "U32", "F32", "F16", "BF16", "F8_E4M3"; "?" for anything else. */
const char *isq_mrs_dtype_name(enum isq_mrs_dtype d);
/* Bytes per element (1, 2 or 4); 0 for an unknown value. */
size_t isq_mrs_dtype_size(enum isq_mrs_dtype d);

#define ISQ_MRS_MAX_RANK 4
#define ISQ_MRS_MAX_TENSORS 12

/* One tensor of a layer entry. */
struct isq_mrs_tensor {
	const char *suffix;   /* after "K.": "weight", "weight.scales", ... (static storage) */
	enum isq_mrs_dtype dtype;
	int rank;             /* 0 for a scalar */
	uint64_t shape[ISQ_MRS_MAX_RANK];
	uint64_t nbytes;      /* product(shape) * dtype size */
	void *data;           /* caller's buffer of nbytes: quantize writes it, dequantize reads it */
};

/* Choices that the type alone does not fix. */
struct isq_mrs_params {
	int group_size;                 /* AFQ: 32, 64 or 128; HQQ: 32, 64 or 128; 0: 64 */
	enum isq_mrs_dtype scale_dtype; /* AFQ scales/biases: F32, F16 or BF16 (the model's
					   dtype); ISQ_MRS_DTYPE_DEFAULT: BF16 */
};

/*
 * The tensors of one layer entry.  Filled by isq_mrs_plan() or
 * isq_mrs_open(); t[i].data is the only field a caller sets.
 */
struct isq_mrs_layout {
	enum isq_type type; /* ISQ_TYPE_HQQ4 ... ISQ_TYPE_AFQ8, or ISQ_TYPE_MXFP4 */
	int tag;            /* UQFF format tag: 2 HQQ, 3 FP8, 4 AFQ, 5 F8Q8, 6 MXFP4 */
	int bits;           /* code bits: HQQ/AFQ b, 8 for FP8/F8Q8, 4 for MXFP4 */
	int rank;
	uint64_t shape[ISQ_MRS_MAX_RANK]; /* logical shape of the weight */
	uint64_t numel;     /* N */
	uint64_t rows;      /* N / last dimension */
	uint64_t cols;      /* last dimension */
	int group_size;     /* HQQ/AFQ group, 32 for F8Q8 and MXFP4, 0 for FP8 */
	enum isq_mrs_dtype scale_dtype;
	int ntensors;
	struct isq_mrs_tensor t[ISQ_MRS_MAX_TENSORS]; /* t[0] is "weight" */
	float fp8_quant_scale; /* FP8: set by isq_mrs_quantize_begin() */
};

/*
 * Describe the tensors that type t produces for a weight of the given shape
 * (rank 1..4; rank 3 is refused for HQQ, FP8 and F8Q8, as mistral.rs's
 * loader refuses it).  params may be NULL (defaults: group 64, BF16 scales).
 * Returns 0; ISQ_EUNSUPPORTED for a type this module does not produce or a
 * refused rank; ISQ_EINVAL for a shape the format cannot hold (HQQ: N not a
 * multiple of the group; AFQ: last dimension not a multiple of the group;
 * MXFP4: of 32), a zero or too large dimension, or a bad parameter.  The
 * fallback for such shapes is the caller's decision.
 */
int isq_mrs_plan(struct isq_mrs_layout *l, enum isq_type t, int rank, const uint64_t *shape,
		 const struct isq_mrs_params *params, struct isq_errbuf *e);

/* The tensor with this suffix ("weight.scales"), or NULL. */
struct isq_mrs_tensor *isq_mrs_find(struct isq_mrs_layout *l, const char *suffix);
/* Sum of every tensor's nbytes. */
uint64_t isq_mrs_nbytes(const struct isq_mrs_layout *l);

/*
 * Quantize the N floats src (row-major in the logical shape) into the
 * layout's buffers (every t[i].data set, of t[i].nbytes bytes).  imatrix:
 * NULL, or imatrix_len weights as described above.  Returns 0; ISQ_EINVAL
 * (message names the element) for a NaN or Inf input, a negative or
 * non-finite weight, a wrong imatrix_len, or a missing buffer.
 * Single-threaded; to split the work between threads use the three calls
 * below, which give the same bytes.
 */
int isq_mrs_quantize(struct isq_mrs_layout *l, const float *src, const float *imatrix,
		     uint64_t imatrix_len, struct isq_errbuf *e);

/*
 * The same in parts: _begin checks the input, writes the metadata tensors
 * and (FP8) chooses the tensor's scale; then every unit in [0, units) must
 * be passed to _units exactly once, from any thread, in any order and
 * split.  A unit is a row (AFQ, FP8, MXFP4), a group (HQQ) or a block
 * (F8Q8); units write disjoint bytes.
 */
int isq_mrs_quantize_begin(struct isq_mrs_layout *l, const float *src, const float *imatrix,
			   uint64_t imatrix_len, struct isq_errbuf *e);
uint64_t isq_mrs_units(const struct isq_mrs_layout *l);
void isq_mrs_quantize_units(const struct isq_mrs_layout *l, const float *src, const float *imatrix,
			    uint64_t imatrix_len, uint64_t unit0, uint64_t unit1);

/*
 * Recognise the tensors of one layer entry read from a file: in[0..n) are
 * the entry's K.weight* tensors (others, e.g. "bias", are ignored), with
 * suffix, dtype, rank, shape, nbytes and data set.  Checks the exact set of
 * suffixes, every dtype and shape, and the metadata values against one
 * another, then fills l (whose t[i].data point into the caller's data).
 * Returns 0 or ISQ_EFORMAT with a message; ISQ_EUNSUPPORTED for a format tag
 * that is not one of these formats (0 GGUF, 1 Unquant) or HQQ with axis 1.
 */
int isq_mrs_open(struct isq_mrs_layout *l, const struct isq_mrs_tensor *in, int n,
		 struct isq_errbuf *e);

/*
 * Decode rows [row0, row0 + nrows) of a layout (from isq_mrs_plan and
 * quantize, or from isq_mrs_open) into dst, nrows * cols floats.  Any bytes
 * decode without fault (NaN codes of E4M3 give NaN).
 */
void isq_mrs_dequantize_rows(const struct isq_mrs_layout *l, uint64_t row0, uint64_t nrows, float *dst);
/* The whole tensor: N floats. */
void isq_mrs_dequantize(const struct isq_mrs_layout *l, float *dst);

/*
 * For fuzzers and robustness tests: decode an untrusted byte string as an
 * entry of type t.  Layout of bytes: u8 rank (1..4), rank u32 dimensions,
 * u8 group size (0 = default), u8 scale dtype (enum isq_mrs_dtype), then
 * every tensor isq_mrs_plan() lists, in its order, nbytes each (metadata
 * included, so bad metadata is exercised too); trailing bytes are ignored.
 * The tensors then go through isq_mrs_open() and are decoded into dst when
 * N <= dst_cap.  *count gets N.  Returns 0 or a negative status.
 */
int isq_mrs_dequantize_any(enum isq_type t, const void *bytes, size_t n, float *dst, uint64_t dst_cap,
			   uint64_t *count, struct isq_errbuf *e);

/*
 * MXFP4 between ggml's 17-byte block (u8 E8M0 e, then 16 bytes: element j
 * of the block in the low nibble of byte j, element j + 16 in the high
 * nibble) and UQFF's two tensors (codes [rows, k/2], scales [rows, k/32]).
 * k is the row length, a multiple of 32.  Both directions are exact and
 * inverse to each other for every byte value; the decoded values agree
 * (ggml's arithmetic: e = 255 decodes as 2^127 in both encodings).
 */
void isq_mxfp4_to_uqff(const void *ggml_blocks, uint8_t *codes, uint8_t *scales, int64_t nrows, int64_t k);
void isq_mxfp4_from_uqff(const uint8_t *codes, const uint8_t *scales, void *ggml_blocks, int64_t nrows,
			 int64_t k);

/*
 * The in-memory row forms behind the type-table rows (quantize, dequantize
 * and vec_dot of struct isq_type_traits).  They hold contiguous groups
 * along a row, so the table's flat kernels apply; isq-run can run them
 * directly:
 *   hqq4  64 elements, 40 B: f32 step, f32 zero, 32 B (byte i = q[i] << 4 | q[i + 32])
 *   hqq8  64 elements, 72 B: f32 step, f32 zero, 64 B codes
 *         (groups run along the row, HQQ's axis 1; UQFF's HQQ is axis 0
 *         and is decoded through isq_mrs_dequantize, not converted)
 *   afqN  64 elements, 4 + 8N B: bf16 scale, bf16 bias, then the group's
 *         2N u32 words exactly as in UQFF (so an AFQ entry with group 64 and
 *         BF16 scales converts to it byte for byte)
 *   fp8   1 element, 1 B: a plain E4M3 value (the tensor scale is a scalar
 *         the caller applies: x = e4m3(q) * dequant_w_scale)
 *   f8q8  32 elements, 33 B: UQFF's block (a row's blocks equal UQFF's when
 *         the row length is a multiple of 32)
 * vec_dot: hqq, afq and f8q8 against Q8_0 activations, fp8 against F32.
 * bpw as the table reports it: hqq4 5.0, hqq8 9.0, afq2 2.5, afq3 3.5,
 * afq4 4.5, afq6 6.5, afq8 8.5 (16-bit scales, group 64), fp8 8, f8q8 8.25.
 */

#endif
