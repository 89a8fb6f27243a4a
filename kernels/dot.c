/*
 * dot.c - reference dot products of the types in quants.h with their
 * activation types: integer products per block, then sum += isum * dx * dy
 * in binary32, block by block.
 */
#include "quants.h"

#include "blocks.h"
#include "fp.h"


static inline float h16(const uint16_t *p)
{
	return isq_fp16_to_fp32(isq_le16(p));
}

void isq_vec_dot_q4_0_q8_0_ref(int64_t n, float *s, const void *vx, const void *vy)
{
	const struct block_q4_0 *x = vx;
	const struct block_q8_0 *y = vy;
	float sum = 0;
	for (int64_t i = 0; i < n / 32; i++) {
		int si = 0;
		for (int j = 0; j < 16; j++)
			si += ((x[i].qs[j] & 15) - 8) * y[i].qs[j] + ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + 16];
		sum += (float)si * h16(&x[i].d) * h16(&y[i].d);
	}
	*s = sum;
}

/* x' = d q + m, y' = dy qy: sum x'y' = d dy sum q qy + m dy sum qy, and dy sum qy is y's s */
void isq_vec_dot_q4_1_q8_1_ref(int64_t n, float *s, const void *vx, const void *vy)
{
	const struct block_q4_1 *x = vx;
	const struct block_q8_1 *y = vy;
	float sum = 0;
	for (int64_t i = 0; i < n / 32; i++) {
		int si = 0;
		for (int j = 0; j < 16; j++)
			si += (x[i].qs[j] & 15) * y[i].qs[j] + (x[i].qs[j] >> 4) * y[i].qs[j + 16];
		sum += (float)si * h16(&x[i].d) * h16(&y[i].d) + h16(&x[i].m) * h16(&y[i].s);
	}
	*s = sum;
}

void isq_vec_dot_q5_0_q8_0_ref(int64_t n, float *s, const void *vx, const void *vy)
{
	const struct block_q5_0 *x = vx;
	const struct block_q8_0 *y = vy;
	float sum = 0;
	for (int64_t i = 0; i < n / 32; i++) {
		uint32_t qh = isq_le32(x[i].qh);
		int si = 0;
		for (int j = 0; j < 16; j++) {
			int q0 = ((x[i].qs[j] & 15) | (int)((qh >> j) & 1) << 4) - 16;
			int q1 = ((x[i].qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4) - 16;
			si += q0 * y[i].qs[j] + q1 * y[i].qs[j + 16];
		}
		sum += (float)si * h16(&x[i].d) * h16(&y[i].d);
	}
	*s = sum;
}

void isq_vec_dot_q5_1_q8_1_ref(int64_t n, float *s, const void *vx, const void *vy)
{
	const struct block_q5_1 *x = vx;
	const struct block_q8_1 *y = vy;
	float sum = 0;
	for (int64_t i = 0; i < n / 32; i++) {
		uint32_t qh = isq_le32(x[i].qh);
		int si = 0;
		for (int j = 0; j < 16; j++) {
			int q0 = (x[i].qs[j] & 15) | (int)((qh >> j) & 1) << 4;
			int q1 = (x[i].qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
			si += q0 * y[i].qs[j] + q1 * y[i].qs[j + 16];
		}
		sum += (float)si * h16(&x[i].d) * h16(&y[i].d) + h16(&x[i].m) * h16(&y[i].s);
	}
	*s = sum;
}

void isq_vec_dot_q8_0_q8_0_ref(int64_t n, float *s, const void *vx, const void *vy)
{
	const struct block_q8_0 *x = vx, *y = vy;
	float sum = 0;
	for (int64_t i = 0; i < n / 32; i++) {
		int si = 0;
		for (int j = 0; j < 32; j++)
			si += x[i].qs[j] * y[i].qs[j];
		sum += (float)si * h16(&x[i].d) * h16(&y[i].d);
	}
	*s = sum;
}

void isq_vec_dot_q8_1_q8_1_ref(int64_t n, float *s, const void *vx, const void *vy)
{
	const struct block_q8_1 *x = vx, *y = vy;
	float sum = 0;
	for (int64_t i = 0; i < n / 32; i++) {
		int si = 0;
		for (int j = 0; j < 32; j++)
			si += x[i].qs[j] * y[i].qs[j];
		sum += (float)si * h16(&x[i].d) * h16(&y[i].d);
	}
	*s = sum;
}

void isq_vec_dot_iq4_nl_q8_0_ref(int64_t n, float *s, const void *vx, const void *vy)
{
	const struct block_iq4_nl *x = vx;
	const struct block_q8_0 *y = vy;
	float sum = 0;
	for (int64_t i = 0; i < n / 32; i++) {
		int si = 0;
		for (int j = 0; j < 16; j++)
			si += isq_iq4_values[x[i].qs[j] & 15] * y[i].qs[j] + isq_iq4_values[x[i].qs[j] >> 4] * y[i].qs[j + 16];
		sum += (float)si * h16(&x[i].d) * h16(&y[i].d);
	}
	*s = sum;
}

void isq_vec_dot_iq4_xs_q8_K_ref(int64_t n, float *s, const void *vx, const void *vy)
{
	const struct block_iq4_xs *x = vx;
	const struct block_q8_K *y = vy;
	float sum = 0;
	for (int64_t i = 0; i < n / 256; i++) {
		uint16_t sh = isq_le16(&x[i].scales_h);
		const int8_t *q8 = y[i].qs;
		int st = 0;
		for (int j = 0; j < 8; j++, q8 += 32) {
			int ls = ((x[i].scales_l[j / 2] >> (4 * (j % 2))) & 15) | ((sh >> (2 * j)) & 3) << 4;
			const uint8_t *qs = x[i].qs + 16 * j;
			int si = 0;
			for (int k = 0; k < 16; k++)
				si += isq_iq4_values[qs[k] & 15] * q8[k] + isq_iq4_values[qs[k] >> 4] * q8[k + 16];
			st += (ls - 32) * si;
		}
		sum += h16(&x[i].d) * isq_f32_from_bits(isq_le32(&y[i].d)) * (float)st;
	}
	*s = sum;
}

void isq_vec_dot_mxfp4_q8_0_ref(int64_t n, float *s, const void *vx, const void *vy)
{
	const struct block_mxfp4 *x = vx;
	const struct block_q8_0 *y = vy;
	float sum = 0;
	for (int64_t i = 0; i < n / 32; i++) {
		int si = 0;
		for (int j = 0; j < 16; j++)
			si += isq_mxfp4_values[x[i].qs[j] & 15] * y[i].qs[j] + isq_mxfp4_values[x[i].qs[j] >> 4] * y[i].qs[j + 16];
		uint8_t e = x[i].e;
		float dx = isq_f32_from_bits(e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23);
		sum += (float)si * dx * h16(&y[i].d);
	}
	*s = sum;
}
