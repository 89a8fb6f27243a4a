/*
 * attn.h - the inner loops of the CPU backend's attention.
 *
 *   isq_attn_dot(a, b, n): eight lanes l accumulate a[i] * b[i], i = 8m + l,
 *       by FMA in order of m; the lanes are summed as
 *       ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)); the n % 8 tail
 *       follows by FMA in order.
 *   isq_attn_axpy(y, a, x, n): y[i] = fma(a, x[i], y[i]).
 *
 * The AVX2 and portable versions give the same bits.
 */
#ifndef ISQ_ATTN_H
#define ISQ_ATTN_H

#include <math.h>

float isq_attn_dot_ref(const float *a, const float *b, int n);
void isq_attn_axpy_ref(float *y, float a, const float *x, int n);
float isq_attn_dot_avx2(const float *a, const float *b, int n);
void isq_attn_axpy_avx2(float *y, float a, const float *x, int n);

#endif
