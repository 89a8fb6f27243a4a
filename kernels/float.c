/* float.c - F32, F16 and BF16: conversion both ways (fp.h rounds to nearest even) and dot products. */
#include "quants.h"

#include "fp.h"

size_t isq_quantize_f32(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp)
{
	(void)imp;
	memcpy(dst, src, (size_t)(nrows * n) * 4);
	return (size_t)(nrows * n) * 4;
}

size_t isq_quantize_f16(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp)
{
	(void)imp;
	isq_fp32_to_fp16_row(src, dst, (size_t)(nrows * n));
	return (size_t)(nrows * n) * 2;
}

size_t isq_quantize_bf16(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp)
{
	(void)imp;
	isq_fp32_to_bf16_row(src, dst, (size_t)(nrows * n));
	return (size_t)(nrows * n) * 2;
}

void isq_dequantize_row_f32(const void *src, float *dst, int64_t n)
{
	memcpy(dst, src, (size_t)n * 4);
}

void isq_dequantize_row_f16(const void *src, float *dst, int64_t n)
{
	isq_fp16_to_fp32_row(src, dst, (size_t)n);
}

void isq_dequantize_row_bf16(const void *src, float *dst, int64_t n)
{
	isq_bf16_to_fp32_row(src, dst, (size_t)n);
}

void isq_from_float_f32(const float *src, void *dst, int64_t n)
{
	memcpy(dst, src, (size_t)n * 4);
}

void isq_from_float_f16(const float *src, void *dst, int64_t n)
{
	isq_fp32_to_fp16_row(src, dst, (size_t)n);
}

void isq_from_float_bf16(const float *src, void *dst, int64_t n)
{
	isq_fp32_to_bf16_row(src, dst, (size_t)n);
}

/*
 * Thirty-two running sums (four groups of eight lanes), folded in a fixed
 * order; the AVX2 versions keep the same sums in four registers and do the
 * same binary32 multiplies and adds, so both give identical results.
 */
static float fold32(float acc[4][8])
{
	float v[8];
	for (int l = 0; l < 8; l++)
		v[l] = (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]);
	float s0 = v[0] + v[4], s1 = v[1] + v[5], s2 = v[2] + v[6], s3 = v[3] + v[7];
	return (s0 + s2) + (s1 + s3);
}

#define FLOAT_DOT(name, T, CVT)                                                        \
	void name(int64_t n, float *s, const void *vx, const void *vy)                 \
	{                                                                              \
		const T *x = vx, *y = vy;                                              \
		float acc[4][8] = { { 0 } };                                           \
		int64_t i = 0;                                                         \
		for (; i + 32 <= n; i += 32)                                           \
			for (int k = 0; k < 4; k++)                                    \
				for (int l = 0; l < 8; l++)                            \
					acc[k][l] += CVT(x[i + 8 * k + l]) * CVT(y[i + 8 * k + l]); \
		for (; i + 8 <= n; i += 8)                                             \
			for (int l = 0; l < 8; l++)                                    \
				acc[0][l] += CVT(x[i + l]) * CVT(y[i + l]);            \
		float sum = fold32(acc);                                               \
		for (; i < n; i++)                                                     \
			sum += CVT(x[i]) * CVT(y[i]);                                  \
		*s = sum;                                                              \
	}

#define F32_ID(v) (v)
FLOAT_DOT(isq_vec_dot_f32_f32_ref, float, F32_ID)
FLOAT_DOT(isq_vec_dot_f16_f16_ref, uint16_t, isq_fp16_to_fp32)
FLOAT_DOT(isq_vec_dot_bf16_bf16_ref, uint16_t, isq_bf16_to_fp32)
