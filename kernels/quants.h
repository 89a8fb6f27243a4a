/*
 * quants.h - kernels of the 32-element GGML types (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0
 * Q8_1), IQ4_NL, IQ4_XS, MXFP4 and the float types (F32 F16 BF16).  Tools and
 * formats reach them through the type table (types.h); this header is for
 * the table, tests and benchmarks.  Layouts are in blocks.h.
 *
 * Quantizers (isq_quantize_fn): nrows rows of n_per_row floats, n_per_row a
 * multiple of the block size (asserted by isq_quantize, not here); imatrix
 * NULL or one non-negative weight per column.  They return nrows * row size.
 * The encoders are isq's own (encode.h says how they search; man/isq-types.7
 * how they differ from ggml's).  `_ref` is the portable reference, `_avx2`
 * needs isq_cpu_has_avx2() and gives the same bytes.  Output never depends on
 * how rows are split between calls.
 *
 * Q8_0 and Q8_1 are also the activation types of the dot products: their row
 * encoders (isq_from_float_fn) are byte-identical to ggml's
 * quantize_row_q8_0_ref / quantize_row_q8_1_ref in both versions.  Q8_0's
 * quantizer equals its row encoder without an imatrix; with one it searches
 * the scale.  Q8_1's quantizer ignores the imatrix.
 *
 * Dequantizers reproduce ggml's arithmetic bit for bit.  Dot products
 * (isq_vec_dot_fn) give *s = sum over n of x[i] * y[i] with x of the first
 * type and y of the activation type; integer products per block, scaled in
 * binary32; the AVX2 versions may differ from the reference in the last bits
 * (a different summation order), never more.  The activation codes must be
 * what the row encoders produce (-127..127, never -128); the weight side may
 * hold any byte pattern.
 *
 * Float types: quantize = convert with round-to-nearest-even (libcommon
 * fp.h), dequantize = widen (exact); their dot products take the same type on
 * both sides and accumulate in binary32 (F16/BF16 products are exact).
 */
#ifndef ISQ_QUANTS_H
#define ISQ_QUANTS_H

#include "types.h"

/* Fill in the rows of these types (reference kernels only when use_ref). */
void isq_quants_register(struct isq_type_traits *tab, int use_ref);

#define ISQ_QUANTS_DECLARE_ENCODERS(sfx)                                                                   \
	size_t isq_quantize_q4_0_##sfx(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp); \
	size_t isq_quantize_q4_1_##sfx(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp); \
	size_t isq_quantize_q5_0_##sfx(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp); \
	size_t isq_quantize_q5_1_##sfx(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp); \
	size_t isq_quantize_q8_0_##sfx(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp); \
	size_t isq_quantize_q8_1_##sfx(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp); \
	size_t isq_quantize_iq4_nl_##sfx(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp); \
	size_t isq_quantize_iq4_xs_##sfx(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp); \
	size_t isq_quantize_mxfp4_##sfx(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp); \
	void isq_quantize_row_q8_0_##sfx(const float *src, void *dst, int64_t n);                              \
	void isq_quantize_row_q8_1_##sfx(const float *src, void *dst, int64_t n);

ISQ_QUANTS_DECLARE_ENCODERS(ref)
ISQ_QUANTS_DECLARE_ENCODERS(avx2)

void isq_dequantize_row_q4_0(const void *src, float *dst, int64_t n);
void isq_dequantize_row_q4_1(const void *src, float *dst, int64_t n);
void isq_dequantize_row_q5_0(const void *src, float *dst, int64_t n);
void isq_dequantize_row_q5_1(const void *src, float *dst, int64_t n);
void isq_dequantize_row_q8_0(const void *src, float *dst, int64_t n);
void isq_dequantize_row_q8_1(const void *src, float *dst, int64_t n);
void isq_dequantize_row_iq4_nl(const void *src, float *dst, int64_t n);
void isq_dequantize_row_iq4_xs(const void *src, float *dst, int64_t n);
void isq_dequantize_row_mxfp4(const void *src, float *dst, int64_t n);

#define ISQ_QUANTS_DECLARE_DOTS(sfx)                                                              \
	void isq_vec_dot_q4_0_q8_0_##sfx(int64_t n, float *s, const void *x, const void *y);   \
	void isq_vec_dot_q4_1_q8_1_##sfx(int64_t n, float *s, const void *x, const void *y);   \
	void isq_vec_dot_q5_0_q8_0_##sfx(int64_t n, float *s, const void *x, const void *y);   \
	void isq_vec_dot_q5_1_q8_1_##sfx(int64_t n, float *s, const void *x, const void *y);   \
	void isq_vec_dot_q8_0_q8_0_##sfx(int64_t n, float *s, const void *x, const void *y);   \
	void isq_vec_dot_q8_1_q8_1_##sfx(int64_t n, float *s, const void *x, const void *y);   \
	void isq_vec_dot_iq4_nl_q8_0_##sfx(int64_t n, float *s, const void *x, const void *y); \
	void isq_vec_dot_iq4_xs_q8_K_##sfx(int64_t n, float *s, const void *x, const void *y); \
	void isq_vec_dot_mxfp4_q8_0_##sfx(int64_t n, float *s, const void *x, const void *y);  \
	void isq_vec_dot_f32_f32_##sfx(int64_t n, float *s, const void *x, const void *y);     \
	void isq_vec_dot_f16_f16_##sfx(int64_t n, float *s, const void *x, const void *y);     \
	void isq_vec_dot_bf16_bf16_##sfx(int64_t n, float *s, const void *x, const void *y);

ISQ_QUANTS_DECLARE_DOTS(ref)
ISQ_QUANTS_DECLARE_DOTS(avx2)

/* Float types (no SIMD variants: conversion is memory-bound). */
size_t isq_quantize_f32(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp);
size_t isq_quantize_f16(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp);
size_t isq_quantize_bf16(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp);
void isq_dequantize_row_f32(const void *src, float *dst, int64_t n);
void isq_dequantize_row_f16(const void *src, float *dst, int64_t n);
void isq_dequantize_row_bf16(const void *src, float *dst, int64_t n);
void isq_from_float_f32(const float *src, void *dst, int64_t n);
void isq_from_float_f16(const float *src, void *dst, int64_t n);
void isq_from_float_bf16(const float *src, void *dst, int64_t n);

#endif
