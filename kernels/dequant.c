/* dequant.c - decoders of the types in quants.h: ggml's arithmetic, operation for operation. */
#include "quants.h"

#include "blocks.h"
#include "fp.h"


static inline float h16(const uint16_t *p)
{
	return isq_fp16_to_fp32(isq_le16(p));
}

/* 2^(e - 128), exact also where it is subnormal */
static inline float e8m0_half(uint8_t e)
{
	return isq_f32_from_bits(e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23);
}

void isq_dequantize_row_q4_0(const void *src, float *y, int64_t n)
{
	const struct block_q4_0 *b = src;
	for (int64_t i = 0; i < n / QK4_0; i++, y += QK4_0) {
		float d = h16(&b[i].d);
		for (int j = 0; j < 16; j++) {
			y[j] = (float)((b[i].qs[j] & 15) - 8) * d;
			y[j + 16] = (float)((b[i].qs[j] >> 4) - 8) * d;
		}
	}
}

void isq_dequantize_row_q4_1(const void *src, float *y, int64_t n)
{
	const struct block_q4_1 *b = src;
	for (int64_t i = 0; i < n / QK4_1; i++, y += QK4_1) {
		float d = h16(&b[i].d), m = h16(&b[i].m);
		for (int j = 0; j < 16; j++) {
			y[j] = (float)(b[i].qs[j] & 15) * d + m;
			y[j + 16] = (float)(b[i].qs[j] >> 4) * d + m;
		}
	}
}

void isq_dequantize_row_q5_0(const void *src, float *y, int64_t n)
{
	const struct block_q5_0 *b = src;
	for (int64_t i = 0; i < n / QK5_0; i++, y += QK5_0) {
		float d = h16(&b[i].d);
		uint32_t qh = isq_le32(b[i].qh);
		for (int j = 0; j < 16; j++) {
			int h0 = (int)((qh >> j) << 4) & 0x10, h1 = (int)(qh >> (j + 12)) & 0x10;
			y[j] = (float)(((b[i].qs[j] & 15) | h0) - 16) * d;
			y[j + 16] = (float)(((b[i].qs[j] >> 4) | h1) - 16) * d;
		}
	}
}

void isq_dequantize_row_q5_1(const void *src, float *y, int64_t n)
{
	const struct block_q5_1 *b = src;
	for (int64_t i = 0; i < n / QK5_1; i++, y += QK5_1) {
		float d = h16(&b[i].d), m = h16(&b[i].m);
		uint32_t qh = isq_le32(b[i].qh);
		for (int j = 0; j < 16; j++) {
			int h0 = (int)((qh >> j) << 4) & 0x10, h1 = (int)(qh >> (j + 12)) & 0x10;
			y[j] = (float)((b[i].qs[j] & 15) | h0) * d + m;
			y[j + 16] = (float)((b[i].qs[j] >> 4) | h1) * d + m;
		}
	}
}

void isq_dequantize_row_q8_0(const void *src, float *y, int64_t n)
{
	const struct block_q8_0 *b = src;
	for (int64_t i = 0; i < n / QK8_0; i++, y += QK8_0) {
		float d = h16(&b[i].d);
		for (int j = 0; j < QK8_0; j++)
			y[j] = (float)b[i].qs[j] * d;
	}
}

/* ggml has no Q8_1 decoder; this is the obvious one (d * q), as llama.cpp's vectors use. */
void isq_dequantize_row_q8_1(const void *src, float *y, int64_t n)
{
	const struct block_q8_1 *b = src;
	for (int64_t i = 0; i < n / QK8_1; i++, y += QK8_1) {
		float d = h16(&b[i].d);
		for (int j = 0; j < QK8_1; j++)
			y[j] = d * (float)b[i].qs[j];
	}
}

void isq_dequantize_row_iq4_nl(const void *src, float *y, int64_t n)
{
	const struct block_iq4_nl *b = src;
	for (int64_t i = 0; i < n / QK4_NL; i++, y += QK4_NL) {
		float d = h16(&b[i].d);
		for (int j = 0; j < 16; j++) {
			y[j] = d * (float)isq_iq4_values[b[i].qs[j] & 15];
			y[j + 16] = d * (float)isq_iq4_values[b[i].qs[j] >> 4];
		}
	}
}

void isq_dequantize_row_iq4_xs(const void *src, float *y, int64_t n)
{
	const struct block_iq4_xs *b = src;
	for (int64_t i = 0; i < n / 256; i++) {
		float d = h16(&b[i].d);
		uint16_t sh = isq_le16(&b[i].scales_h);
		for (int j = 0; j < 8; j++, y += 32) {
			int ls = ((b[i].scales_l[j / 2] >> (4 * (j % 2))) & 15) | ((sh >> (2 * j)) & 3) << 4;
			float dl = d * (float)(ls - 32);
			const uint8_t *qs = b[i].qs + 16 * j;
			for (int k = 0; k < 16; k++) {
				y[k] = dl * (float)isq_iq4_values[qs[k] & 15];
				y[k + 16] = dl * (float)isq_iq4_values[qs[k] >> 4];
			}
		}
	}
}

void isq_dequantize_row_mxfp4(const void *src, float *y, int64_t n)
{
	const struct block_mxfp4 *b = src;
	for (int64_t i = 0; i < n / QK_MXFP4; i++, y += QK_MXFP4) {
		float d = e8m0_half(b[i].e);
		for (int j = 0; j < 16; j++) {
			y[j] = (float)isq_mxfp4_values[b[i].qs[j] & 15] * d;
			y[j + 16] = (float)isq_mxfp4_values[b[i].qs[j] >> 4] * d;
		}
	}
}
