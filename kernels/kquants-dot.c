/*
 * kquants-dot.c - scalar dot products of K-quant weights with Q8_K
 * activations (the reference), and the Q8_K activation quantizer.
 *
 * Per super-block the products are summed exactly in integers per
 * sub-block, multiplied by the integer sub-scales, and scaled once by
 * d_x * d_y in binary32; min terms use the Q8_K block sums.
 */
#include "kquants.h"

#include <math.h>

#include "blocks-k.h"
#include "fp.h"

/* Q2_K/Q3_K code placement: element 128h + 32k + l is field k of qs[32h + l]. */
static inline int q2_field(const uint8_t *qs, int e)
{
	return (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
}

void isq_vec_dot_q2_K_q8_K_ref(int64_t n, float *s, const void *vx, const void *vy)
{
	const struct block_q2_K *x = vx;
	const struct block_q8_K *y = vy;
	ISQ_ASSERT(n % QK_K == 0);
	float sum = 0.0f;
	for (int64_t i = 0; i < n / QK_K; i++) {
		int isum = 0, summ = 0;
		for (int j = 0; j < 16; j++) {
			int dot = 0;
			for (int l = 0; l < 16; l++)
				dot += q2_field(x[i].qs, 16 * j + l) * y[i].qs[16 * j + l];
			isum += (x[i].scales[j] & 15) * dot;
			summ += (x[i].scales[j] >> 4) * y[i].bsums[j];
		}
		const float d = y[i].d * isq_fp16_to_fp32(x[i].d);
		const float dmin = y[i].d * isq_fp16_to_fp32(x[i].dmin);
		sum += d * (float)isum - dmin * (float)summ;
	}
	*s = sum;
}

void isq_vec_dot_q3_K_q8_K_ref(int64_t n, float *s, const void *vx, const void *vy)
{
	const struct block_q3_K *x = vx;
	const struct block_q8_K *y = vy;
	ISQ_ASSERT(n % QK_K == 0);
	float sum = 0.0f;
	for (int64_t i = 0; i < n / QK_K; i++) {
		int8_t sc[16];
		isq_q3_K_unpack_scales(x[i].scales, sc);
		int isum = 0;
		for (int j = 0; j < 16; j++) {
			int dot = 0;
			for (int l = 0; l < 16; l++) {
				int e = 16 * j + l;
				int c = q2_field(x[i].qs, e) - ((x[i].hmask[e % 32] >> (e / 32)) & 1 ? 0 : 4);
				dot += c * y[i].qs[e];
			}
			isum += sc[j] * dot;
		}
		sum += (y[i].d * isq_fp16_to_fp32(x[i].d)) * (float)isum;
	}
	*s = sum;
}

static void dot_q45(int64_t n, float *s, const void *vx, const void *vy, int five)
{
	const struct block_q8_K *y = vy;
	ISQ_ASSERT(n % QK_K == 0);
	float sum = 0.0f;
	for (int64_t i = 0; i < n / QK_K; i++) {
		const struct block_q4_K *x4 = (const struct block_q4_K *)vx + i;
		const struct block_q5_K *x5 = (const struct block_q5_K *)vx + i;
		const uint16_t dh = five ? x5->d : x4->d, mh = five ? x5->dmin : x4->dmin;
		const uint8_t *qs = five ? x5->qs : x4->qs;
		uint8_t sc[8], m[8];
		isq_q4_K_unpack_scales(five ? x5->scales : x4->scales, sc, m);
		int isum = 0, summ = 0;
		for (int j = 0; j < 8; j++) {
			int dot = 0;
			for (int l = 0; l < 32; l++) {
				const int c = j / 2, e = 32 * j + l;
				int q = j % 2 ? qs[32 * c + l] >> 4 : qs[32 * c + l] & 15;
				if (five)
					q += ((x5->qh[l] >> j) & 1) << 4;
				dot += q * y[i].qs[e];
			}
			isum += sc[j] * dot;
			summ += m[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
		}
		const float d = y[i].d * isq_fp16_to_fp32(dh);
		const float dmin = y[i].d * isq_fp16_to_fp32(mh);
		sum += d * (float)isum - dmin * (float)summ;
	}
	*s = sum;
}

void isq_vec_dot_q4_K_q8_K_ref(int64_t n, float *s, const void *vx, const void *vy)
{
	dot_q45(n, s, vx, vy, 0);
}

void isq_vec_dot_q5_K_q8_K_ref(int64_t n, float *s, const void *vx, const void *vy)
{
	dot_q45(n, s, vx, vy, 1);
}

void isq_vec_dot_q6_K_q8_K_ref(int64_t n, float *s, const void *vx, const void *vy)
{
	const struct block_q6_K *x = vx;
	const struct block_q8_K *y = vy;
	ISQ_ASSERT(n % QK_K == 0);
	float sum = 0.0f;
	for (int64_t i = 0; i < n / QK_K; i++) {
		int isum = 0;
		for (int j = 0; j < 16; j++) {
			int dot = 0;
			for (int l = 0; l < 16; l++) {
				/* element e = 128h + 32k + r, r = 0..31 */
				int e = 16 * j + l, h = e / 128, k = (e % 128) / 32, r = e % 32;
				int lo = x[i].ql[64 * h + 32 * (k & 1) + r] >> (4 * (k >> 1)) & 15;
				int hi = (x[i].qh[32 * h + r] >> (2 * k)) & 3;
				dot += ((lo | hi << 4) - 32) * y[i].qs[e];
			}
			isum += x[i].scales[j] * dot;
		}
		sum += (y[i].d * isq_fp16_to_fp32(x[i].d)) * (float)isum;
	}
	*s = sum;
}

/*
 * As ggml's quantize_row_q8_K_ref: the scale comes from the first element
 * of largest magnitude, mapped to -127; codes round half to even.
 */
void isq_quantize_row_q8_K_ref(const float *x, void *vy, int64_t n)
{
	struct block_q8_K *y = vy;
	ISQ_ASSERT(n % QK_K == 0);
	for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
		float max = 0.0f, amax = 0.0f;
		for (int j = 0; j < QK_K; j++) {
			float ax = fabsf(x[j]);
			if (ax > amax) {
				amax = ax;
				max = x[j];
			}
		}
		if (!amax) {
			memset(&y[i], 0, sizeof(y[i]));
			continue;
		}
		const float iscale = -127.0f / max;
		for (int j = 0; j < QK_K; j++) {
			float v = (iscale * x[j] + 12582912.0f) - 12582912.0f;
			y[i].qs[j] = (int8_t)(v > 127.0f ? 127 : (int)v);
		}
		for (int j = 0; j < QK_K / 16; j++) {
			int sum = 0;
			for (int l = 0; l < 16; l++)
				sum += y[i].qs[16 * j + l];
			y[i].bsums[j] = (int16_t)sum;
		}
		y[i].d = 1.0f / iscale;
	}
}

size_t isq_quantize_q8_K_ref(const float *src, void *dst, int64_t nrows, int64_t n_per_row,
			     const float *imatrix)
{
	const size_t rs = (size_t)(n_per_row / QK_K) * sizeof(struct block_q8_K);
	(void)imatrix;
	for (int64_t r = 0; r < nrows; r++)
		isq_quantize_row_q8_K_ref(src + r * n_per_row, (uint8_t *)dst + (size_t)r * rs, n_per_row);
	return rs * (size_t)nrows;
}
