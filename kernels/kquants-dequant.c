/*
 * kquants-dequant.c - K-quant dequantizers.  Each value is computed in the
 * order given at its block struct (blocks-k.h) so that the floats equal
 * ggml's bit for bit; the Makefile's -ffp-contract=off keeps FMA out.
 */
#include "kquants.h"

#include "blocks-k.h"
#include "fp.h"

void isq_dequantize_row_q2_K(const void *src, float *y, int64_t n)
{
	const struct block_q2_K *x = src;
	ISQ_ASSERT(n % QK_K == 0);
	for (int64_t i = 0; i < n / QK_K; i++) {
		const float d = isq_fp16_to_fp32(x[i].d);
		const float dmin = isq_fp16_to_fp32(x[i].dmin);
		const uint8_t *q = x[i].qs;
		int is = 0;
		for (int h = 0; h < 2; h++, q += 32) {
			for (int shift = 0; shift < 8; shift += 2) {
				for (int half = 0; half < 2; half++) {
					const uint8_t sc = x[i].scales[is++];
					const float dl = d * (float)(sc & 15);
					const float ml = dmin * (float)(sc >> 4);
					for (int l = 0; l < 16; l++)
						*y++ = dl * (float)((q[16 * half + l] >> shift) & 3) - ml;
				}
			}
		}
	}
}

/* The 16 signed six-bit scales of a Q3_K block (stored value - 32). */
void isq_q3_K_unpack_scales(const uint8_t packed[12], int8_t sc[16])
{
	for (int s = 0; s < 16; s++) {
		int lo = s < 8 ? packed[s] & 15 : packed[s - 8] >> 4;
		int hi = (packed[8 + s % 4] >> (2 * (s / 4))) & 3;
		sc[s] = (int8_t)((lo | hi << 4) - 32);
	}
}

void isq_dequantize_row_q3_K(const void *src, float *y, int64_t n)
{
	const struct block_q3_K *x = src;
	ISQ_ASSERT(n % QK_K == 0);
	for (int64_t i = 0; i < n / QK_K; i++) {
		const float d = isq_fp16_to_fp32(x[i].d);
		int8_t sc[16];
		isq_q3_K_unpack_scales(x[i].scales, sc);
		const uint8_t *q = x[i].qs;
		int is = 0;
		for (int h = 0; h < 2; h++, q += 32) {
			for (int k = 0; k < 4; k++) {
				const int shift = 2 * k;
				const uint8_t m = (uint8_t)(1u << (4 * h + k));
				for (int half = 0; half < 2; half++) {
					const float dl = d * (float)sc[is++];
					for (int l = 16 * half; l < 16 * half + 16; l++) {
						int c = ((q[l] >> shift) & 3) - ((x[i].hmask[l] & m) ? 0 : 4);
						*y++ = dl * (float)c;
					}
				}
			}
		}
	}
}

void isq_q4_K_unpack_scales(const uint8_t packed[12], uint8_t sc[8], uint8_t m[8])
{
	for (int j = 0; j < 4; j++) {
		sc[j] = packed[j] & 63;
		m[j] = packed[j + 4] & 63;
	}
	for (int j = 4; j < 8; j++) {
		sc[j] = (uint8_t)((packed[j + 4] & 15) | (packed[j - 4] >> 6) << 4);
		m[j] = (uint8_t)((packed[j + 4] >> 4) | (packed[j] >> 6) << 4);
	}
}

void isq_dequantize_row_q4_K(const void *src, float *y, int64_t n)
{
	const struct block_q4_K *x = src;
	ISQ_ASSERT(n % QK_K == 0);
	for (int64_t i = 0; i < n / QK_K; i++) {
		const float d = isq_fp16_to_fp32(x[i].d);
		const float dmin = isq_fp16_to_fp32(x[i].dmin);
		uint8_t sc[8], m[8];
		isq_q4_K_unpack_scales(x[i].scales, sc, m);
		const uint8_t *q = x[i].qs;
		for (int c = 0; c < 4; c++, q += 32) {
			const float d1 = d * (float)sc[2 * c], m1 = dmin * (float)m[2 * c];
			const float d2 = d * (float)sc[2 * c + 1], m2 = dmin * (float)m[2 * c + 1];
			for (int l = 0; l < 32; l++)
				*y++ = d1 * (float)(q[l] & 15) - m1;
			for (int l = 0; l < 32; l++)
				*y++ = d2 * (float)(q[l] >> 4) - m2;
		}
	}
}

void isq_dequantize_row_q5_K(const void *src, float *y, int64_t n)
{
	const struct block_q5_K *x = src;
	ISQ_ASSERT(n % QK_K == 0);
	for (int64_t i = 0; i < n / QK_K; i++) {
		const float d = isq_fp16_to_fp32(x[i].d);
		const float dmin = isq_fp16_to_fp32(x[i].dmin);
		uint8_t sc[8], m[8];
		isq_q4_K_unpack_scales(x[i].scales, sc, m);
		const uint8_t *q = x[i].qs;
		for (int c = 0; c < 4; c++, q += 32) {
			const float d1 = d * (float)sc[2 * c], m1 = dmin * (float)m[2 * c];
			const float d2 = d * (float)sc[2 * c + 1], m2 = dmin * (float)m[2 * c + 1];
			const int b1 = 1 << (2 * c), b2 = 2 << (2 * c);
			for (int l = 0; l < 32; l++)
				*y++ = d1 * (float)((q[l] & 15) + ((x[i].qh[l] & b1) ? 16 : 0)) - m1;
			for (int l = 0; l < 32; l++)
				*y++ = d2 * (float)((q[l] >> 4) + ((x[i].qh[l] & b2) ? 16 : 0)) - m2;
		}
	}
}

void isq_dequantize_row_q6_K(const void *src, float *y, int64_t n)
{
	const struct block_q6_K *x = src;
	ISQ_ASSERT(n % QK_K == 0);
	for (int64_t i = 0; i < n / QK_K; i++) {
		const float d = isq_fp16_to_fp32(x[i].d);
		const uint8_t *ql = x[i].ql, *qh = x[i].qh;
		const int8_t *sc = x[i].scales;
		for (int h = 0; h < 2; h++, y += 128, ql += 64, qh += 32, sc += 8) {
			for (int l = 0; l < 32; l++) {
				const int is = l / 16;
				const int q1 = ((ql[l] & 15) | ((qh[l] >> 0) & 3) << 4) - 32;
				const int q2 = ((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4) - 32;
				const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
				const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
				y[l] = d * (float)sc[is] * (float)q1;
				y[l + 32] = d * (float)sc[is + 2] * (float)q2;
				y[l + 64] = d * (float)sc[is + 4] * (float)q3;
				y[l + 96] = d * (float)sc[is + 6] * (float)q4;
			}
		}
	}
}

void isq_dequantize_row_q8_K(const void *src, float *y, int64_t n)
{
	const struct block_q8_K *x = src;
	ISQ_ASSERT(n % QK_K == 0);
	for (int64_t i = 0; i < n / QK_K; i++)
		for (int j = 0; j < QK_K; j++)
			*y++ = x[i].d * (float)x[i].qs[j];
}
