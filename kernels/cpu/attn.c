/* attn.c - portable versions of attn.h's loops (the reference for attn-avx2.c). */
#include "attn.h"

float isq_attn_dot_ref(const float *a, const float *b, int n)
{
	float l[8] = { 0 };
	int i = 0;
	for (; i + 8 <= n; i += 8)
		for (int j = 0; j < 8; j++)
			l[j] = fmaf(a[i + j], b[i + j], l[j]);
	float s = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
	for (; i < n; i++)
		s = fmaf(a[i], b[i], s);
	return s;
}

void isq_attn_axpy_ref(float *y, float a, const float *x, int n)
{
	for (int i = 0; i < n; i++)
		y[i] = fmaf(a, x[i], y[i]);
}
