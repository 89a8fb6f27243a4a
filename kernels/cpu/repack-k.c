/*
 * repack-k.c - the Q4_Kx8 and Q6_Kx8 layouts of repack.h: the changes of
 * layout and the reference products the AVX2 kernels are tested against.
 */
#include "repack.h"

#include "blocks-k.h"
#include "cpu.h"
#include "fp.h"
#include "kquants.h"

#include <math.h>
#include <string.h>

enum { COL = 1184, OFF_SC = 32, OFF_M = 96, OFF_QS = 160 };

void isq_q8k_act_prepare(const void *q, size_t row_bytes, int n, int64_t nsb, int16_t *bs)
{
	for (int t = 0; t < n; t++) {
		const struct block_q8_K *y =
			(const struct block_q8_K *)(const void *)((const uint8_t *)q + (size_t)t * row_bytes);
		for (int64_t s = 0; s < nsb; s++)
			for (int j = 0; j < 8; j++)
				bs[((size_t)t * nsb + s) * 8 + j] = (int16_t)(y[s].bsums[2 * j] + y[s].bsums[2 * j + 1]);
	}
}

void isq_repack_q4_Kx8(const void *src, size_t row_bytes, int64_t rows, int64_t nsb, void *dst)
{
	for (int64_t g = 0; g < rows / 8; g++)
		for (int r = 0; r < 8; r++) {
			const struct block_q4_K *blk =
				(const struct block_q4_K *)(const void *)((const uint8_t *)src + (size_t)(8 * g + r) * row_bytes);
			uint8_t *out = (uint8_t *)dst + (size_t)g * ISQ_Q4_KX8_GROUP_BYTES(nsb);
			for (int64_t s = 0; s < nsb; s++) {
				uint8_t *col = out + (size_t)s * COL, sc[8], m[8];
				memcpy(col + 2 * r, &blk[s].d, 2);
				memcpy(col + 16 + 2 * r, &blk[s].dmin, 2);
				isq_q4_K_unpack_scales(blk[s].scales, sc, m);
				for (int j = 0; j < 8; j++) {
					col[OFF_SC + 8 * j + r] = sc[j];
					col[OFF_M + 16 * (j / 2) + 2 * r + (j & 1)] = m[j];
				}
				for (int c = 0; c < 4; c++)
					for (int i = 0; i < 8; i++)
						memcpy(col + OFF_QS + 256 * c + 32 * i + 4 * r, blk[s].qs + 32 * c + 4 * i, 4);
			}
		}
}

void isq_unpack_q4_Kx8_row(const void *packed, int64_t nsb, int64_t r8, void *dst)
{
	const uint8_t *grp = (const uint8_t *)packed + (size_t)(r8 / 8) * ISQ_Q4_KX8_GROUP_BYTES(nsb);
	int r = (int)(r8 % 8);
	struct block_q4_K *out = dst;
	for (int64_t s = 0; s < nsb; s++) {
		const uint8_t *col = grp + (size_t)s * COL;
		uint8_t sc[8], m[8];
		memcpy(&out[s].d, col + 2 * r, 2);
		memcpy(&out[s].dmin, col + 16 + 2 * r, 2);
		for (int j = 0; j < 8; j++) {
			sc[j] = col[OFF_SC + 8 * j + r];
			m[j] = col[OFF_M + 16 * (j / 2) + 2 * r + (j & 1)];
		}
		/* the inverse of isq_q4_K_unpack_scales: 16 six-bit values fill the 12 bytes */
		for (int j = 0; j < 4; j++) {
			out[s].scales[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
			out[s].scales[j + 4] = (uint8_t)(m[j] | (m[j + 4] >> 4) << 6);
			out[s].scales[j + 8] = (uint8_t)((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
		}
		for (int c = 0; c < 4; c++)
			for (int i = 0; i < 8; i++)
				memcpy(out[s].qs + 32 * c + 4 * i, col + OFF_QS + 256 * c + 32 * i + 4 * r, 4);
	}
}

void isq_gemm_q4_Kx8_ref(const void *packed, int64_t nsb, int64_t g0, int64_t g1, const struct isq_q8k_act *x,
			 float *y, size_t ldy)
{
	for (int t = 0; t < x->n; t++) {
		const struct block_q8_K *xb =
			(const struct block_q8_K *)(const void *)((const uint8_t *)x->q + (size_t)t * x->row_bytes);
		for (int64_t g = g0; g < g1; g++) {
			const uint8_t *grp = (const uint8_t *)packed + (size_t)g * ISQ_Q4_KX8_GROUP_BYTES(nsb);
			for (int r = 0; r < 8; r++) {
				float acc = 0.0f;
				for (int64_t s = 0; s < nsb; s++) {
					const uint8_t *col = grp + (size_t)s * COL;
					const int16_t *bs = x->bs + ((size_t)t * nsb + s) * 8;
					int32_t isum = 0, summ = 0;
					for (int j = 0; j < 8; j++) {
						int32_t dot = 0;
						for (int e = 0; e < 32; e++) {
							int c = j / 2, i = e / 4;
							uint8_t b = col[OFF_QS + 256 * c + 32 * i + 4 * r + e % 4];
							dot += ((j & 1) ? b >> 4 : b & 15) * xb[s].qs[32 * j + e];
						}
						isum += col[OFF_SC + 8 * j + r] * dot;
						summ += col[OFF_M + 16 * (j / 2) + 2 * r + (j & 1)] * bs[j];
					}
					float d = isq_fp16_to_fp32(isq_le16(col + 2 * r));
					float dmin = isq_fp16_to_fp32(isq_le16(col + 16 + 2 * r));
					float v = fmaf(-dmin, (float)summ, d * (float)isum);
					acc = fmaf(xb[s].d, v, acc);
				}
				y[(size_t)t * ldy + 8 * g + r] = acc;
			}
		}
	}
}

void isq_gemm_q4_Kx8(const void *packed, int64_t nsb, int64_t g0, int64_t g1, const struct isq_q8k_act *x, float *y,
		     size_t ldy)
{
	if (isq_cpu_has_avx2())
		isq_gemm_q4_Kx8_avx2(packed, nsb, g0, g1, x, y, ldy);
	else
		isq_gemm_q4_Kx8_ref(packed, nsb, g0, g1, x, y, ldy);
}

enum { COL6 = 1680, OFF6_SC = 16, OFF6_QL = 144, OFF6_QH = 1168 };

/* Row r's Q6_K block in or out of a Q6_Kx8 column: PACK copies it in. */
static void move_q6_K(uint8_t *col, int r, struct block_q6_K *blk, int pack)
{
#define MOVE(dst_in_col, src_in_blk, n) \
	memcpy(pack ? (void *)(dst_in_col) : (void *)(src_in_blk), pack ? (const void *)(src_in_blk) : (const void *)(dst_in_col), n)
	MOVE(col + 2 * r, &blk->d, 2);
	for (int j = 0; j < 16; j++)
		MOVE(col + OFF6_SC + 8 * j + r, &blk->scales[j], 1);
	for (int h = 0; h < 2; h++)
		for (int i = 0; i < 8; i++) {
			for (int c = 0; c < 2; c++)
				MOVE(col + OFF6_QL + 256 * (2 * h + c) + 32 * i + 4 * r, blk->ql + 64 * h + 32 * c + 4 * i, 4);
			MOVE(col + OFF6_QH + 256 * h + 32 * i + 4 * r, blk->qh + 32 * h + 4 * i, 4);
		}
#undef MOVE
}

void isq_repack_q6_Kx8(const void *src, size_t row_bytes, int64_t rows, int64_t nsb, void *dst)
{
	for (int64_t g = 0; g < rows / 8; g++)
		for (int r = 0; r < 8; r++) {
			struct block_q6_K *blk =
				(struct block_q6_K *)(uintptr_t)((const uint8_t *)src + (size_t)(8 * g + r) * row_bytes);
			uint8_t *out = (uint8_t *)dst + (size_t)g * ISQ_Q6_KX8_GROUP_BYTES(nsb);
			for (int64_t s = 0; s < nsb; s++)
				move_q6_K(out + (size_t)s * COL6, r, &blk[s], 1);
		}
}

void isq_unpack_q6_Kx8_row(const void *packed, int64_t nsb, int64_t r, void *dst)
{
	uint8_t *grp = (uint8_t *)(uintptr_t)packed + (size_t)(r / 8) * ISQ_Q6_KX8_GROUP_BYTES(nsb);
	struct block_q6_K *out = dst;
	for (int64_t s = 0; s < nsb; s++)
		move_q6_K(grp + (size_t)s * COL6, (int)(r % 8), &out[s], 0);
}

void isq_gemm_q6_Kx8_ref(const void *packed, int64_t nsb, int64_t g0, int64_t g1, const struct isq_q8k_act *x,
			 float *y, size_t ldy)
{
	for (int t = 0; t < x->n; t++) {
		const struct block_q8_K *xb =
			(const struct block_q8_K *)(const void *)((const uint8_t *)x->q + (size_t)t * x->row_bytes);
		for (int64_t g = g0; g < g1; g++) {
			const uint8_t *grp = (const uint8_t *)packed + (size_t)g * ISQ_Q6_KX8_GROUP_BYTES(nsb);
			for (int r = 0; r < 8; r++) {
				float acc = 0.0f;
				for (int64_t s = 0; s < nsb; s++) {
					const uint8_t *col = grp + (size_t)s * COL6;
					int32_t isum = 0;
					for (int j = 0; j < 16; j++) {
						int32_t dot = 0;
						for (int e = 16 * j; e < 16 * j + 16; e++) {
							int h = e / 128, k = (e % 128) / 32, i = (e % 32) / 4, b = e % 4;
							uint8_t l = col[OFF6_QL + 256 * (2 * h + (k & 1)) + 32 * i + 4 * r + b];
							uint8_t u = col[OFF6_QH + 256 * h + 32 * i + 4 * r + b];
							int q = ((k >> 1) ? l >> 4 : l & 15) | ((u >> (2 * k)) & 3) << 4;
							dot += (q - 32) * xb[s].qs[e];
						}
						isum += (int8_t)col[OFF6_SC + 8 * j + r] * dot;
					}
					float d = isq_fp16_to_fp32(isq_le16(col + 2 * r)) * xb[s].d;
					acc = fmaf(d, (float)isum, acc);
				}
				y[(size_t)t * ldy + 8 * g + r] = acc;
			}
		}
	}
}

void isq_gemm_q6_Kx8(const void *packed, int64_t nsb, int64_t g0, int64_t g1, const struct isq_q8k_act *x, float *y,
		     size_t ldy)
{
	if (isq_cpu_has_avx2())
		isq_gemm_q6_Kx8_avx2(packed, nsb, g0, g1, x, y, ldy);
	else
		isq_gemm_q6_Kx8_ref(packed, nsb, g0, g1, x, y, ldy);
}
