/*
 * attn-avx2.c - the two vector loops of attention (q.k over a head, and
 * o += w * v), which the portable build leaves to SSE2 scalar code.  Same
 * operation order as the portable versions in attn.c, so results do not
 * depend on the CPU.
 */
#include "attn.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

float isq_attn_dot_avx2(const float *a, const float *b, int n)
{
	__m256 acc = _mm256_setzero_ps();
	int i = 0;
	for (; i + 8 <= n; i += 8)
		acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
	float l[8];
	_mm256_storeu_ps(l, acc);
	float s = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
	for (; i < n; i++)
		s = fmaf(a[i], b[i], s);
	return s;
}

void isq_attn_axpy_avx2(float *y, float a, const float *x, int n)
{
	__m256 av = _mm256_set1_ps(a);
	int i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
	for (; i < n; i++)
		y[i] = fmaf(a, x[i], y[i]);
}

#else

float isq_attn_dot_avx2(const float *a, const float *b, int n)
{
	return isq_attn_dot_ref(a, b, n);
}

void isq_attn_axpy_avx2(float *y, float a, const float *x, int n)
{
	isq_attn_axpy_ref(y, a, x, n);
}

#endif
