/*
 * kquants.h - the K-quant family (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K):
 * quantizers, dequantizers and dot products against Q8_K activations.
 *
 * Block layouts are in blocks-k.h and are ggml's, byte for byte.  Every
 * function works on whole super-blocks of QK_K = 256 elements and asserts
 * that n (or n_per_row) is a multiple of 256.  Kernels never allocate, print
 * or fail; isq_quantize() in types.h is the checked entry point.
 *
 * Quantizers (signature isq_quantize_fn, see types.h): quantize nrows rows of
 * n_per_row floats; imatrix is NULL or n_per_row importance weights (one per
 * column, >= 0).  They are isq's own encoders, not ports of ggml's: each
 * searches sub-block scales, then the fp16 super-scales jointly with the
 * integer sub-scales, then refines codes and scales in alternation
 * (kquants-impl.h; man/isq-types.7 says how they differ from llama.cpp's).
 * The objective is sum w_i (x_i - value_i)^2 with w_i = 1 without an
 * imatrix, and w_i = imatrix_i + 0.1 * (mean of imatrix over the block's 256
 * columns) with one (a block whose importances are all 0 counts as
 * unweighted).  The `_ref` functions are the scalar oracle; the `_avx2` ones
 * produce the very same bytes (they do the same binary32 operations in the
 * same order, a lane per sub-block), so output depends neither on the CPU
 * nor on how rows are split between threads.  Both return nrows * row size
 * in bytes.
 *
 * Q8_K is the activation type: isq_quantize_row_q8_K_ref() is byte-identical
 * to ggml's quantize_row_q8_K_ref (bsums of an all-zero block are written as
 * zeros, where ggml leaves them unset); the AVX2 version gives the same bytes.
 *
 * Dot products: *s = sum over n elements of x[i] * y[i] with x in the named
 * type and y in Q8_K, computed in integers per sub-block and scaled in
 * binary32.  The AVX2 versions may differ from the reference in the last
 * bits (a different summation order), as ggml's do.
 */
#ifndef ISQ_KQUANTS_H
#define ISQ_KQUANTS_H

#include "types.h"

/* Fill in the K-quant rows of the type table (scalar kernels when use_ref). */
void isq_kquants_register(struct isq_type_traits *tab, int use_ref);

/* Scalar reference quantizers (isq_quantize_fn). */
size_t isq_quantize_q2_K_ref(const float *src, void *dst, int64_t nrows, int64_t n_per_row,
			     const float *imatrix);
size_t isq_quantize_q3_K_ref(const float *src, void *dst, int64_t nrows, int64_t n_per_row,
			     const float *imatrix);
size_t isq_quantize_q4_K_ref(const float *src, void *dst, int64_t nrows, int64_t n_per_row,
			     const float *imatrix);
size_t isq_quantize_q5_K_ref(const float *src, void *dst, int64_t nrows, int64_t n_per_row,
			     const float *imatrix);
size_t isq_quantize_q6_K_ref(const float *src, void *dst, int64_t nrows, int64_t n_per_row,
			     const float *imatrix);

/* AVX2+FMA+F16C quantizers: the same bytes as the _ref ones; call only when
 * isq_cpu_has_avx2(). */
size_t isq_quantize_q2_K_avx2(const float *src, void *dst, int64_t nrows, int64_t n_per_row,
			      const float *imatrix);
size_t isq_quantize_q3_K_avx2(const float *src, void *dst, int64_t nrows, int64_t n_per_row,
			      const float *imatrix);
size_t isq_quantize_q4_K_avx2(const float *src, void *dst, int64_t nrows, int64_t n_per_row,
			      const float *imatrix);
size_t isq_quantize_q5_K_avx2(const float *src, void *dst, int64_t nrows, int64_t n_per_row,
			      const float *imatrix);
size_t isq_quantize_q6_K_avx2(const float *src, void *dst, int64_t nrows, int64_t n_per_row,
			      const float *imatrix);

/* Q8_K activations: one row of n floats (isq_from_float_fn). */
void isq_quantize_row_q8_K_ref(const float *src, void *dst, int64_t n);
void isq_quantize_row_q8_K_avx2(const float *src, void *dst, int64_t n);
/* The same row by row, as an isq_quantize_fn (the imatrix is ignored). */
size_t isq_quantize_q8_K_ref(const float *src, void *dst, int64_t nrows, int64_t n_per_row,
			     const float *imatrix);
size_t isq_quantize_q8_K_avx2(const float *src, void *dst, int64_t nrows, int64_t n_per_row,
			      const float *imatrix);

/* Dequantizers (isq_dequantize_fn), bit-identical to ggml's. */
void isq_dequantize_row_q2_K(const void *src, float *dst, int64_t n);
void isq_dequantize_row_q3_K(const void *src, float *dst, int64_t n);
void isq_dequantize_row_q4_K(const void *src, float *dst, int64_t n);
void isq_dequantize_row_q5_K(const void *src, float *dst, int64_t n);
void isq_dequantize_row_q6_K(const void *src, float *dst, int64_t n);
void isq_dequantize_row_q8_K(const void *src, float *dst, int64_t n);

/* Dot products with Q8_K activations (isq_vec_dot_fn). */
void isq_vec_dot_q2_K_q8_K_ref(int64_t n, float *s, const void *x, const void *y);
void isq_vec_dot_q3_K_q8_K_ref(int64_t n, float *s, const void *x, const void *y);
void isq_vec_dot_q4_K_q8_K_ref(int64_t n, float *s, const void *x, const void *y);
void isq_vec_dot_q5_K_q8_K_ref(int64_t n, float *s, const void *x, const void *y);
void isq_vec_dot_q6_K_q8_K_ref(int64_t n, float *s, const void *x, const void *y);
void isq_vec_dot_q2_K_q8_K_avx2(int64_t n, float *s, const void *x, const void *y);
void isq_vec_dot_q3_K_q8_K_avx2(int64_t n, float *s, const void *x, const void *y);
void isq_vec_dot_q4_K_q8_K_avx2(int64_t n, float *s, const void *x, const void *y);
void isq_vec_dot_q5_K_q8_K_avx2(int64_t n, float *s, const void *x, const void *y);
void isq_vec_dot_q6_K_q8_K_avx2(int64_t n, float *s, const void *x, const void *y);

/* Scale packing helpers shared by the kernels and tests. */
void isq_q3_K_unpack_scales(const uint8_t packed[12], int8_t sc[16]);
void isq_q4_K_unpack_scales(const uint8_t packed[12], uint8_t sc[8], uint8_t m[8]);

#endif
