/*
 * repack.c - the portable half of repack.h: the layout changes and the
 * reference product the AVX2 kernel is tested against.
 */
#include "repack.h"

#include "blocks.h"
#include "cpu.h"
#include "fp.h"

#include <math.h>
#include <string.h>

/* position of row r's scale within a block column: 0 2 4 6 1 3 5 7 */
static int scale_slot(int r)
{
	return (r & 1) * 4 + r / 2;
}

void isq_repack_q4_0x8(const void *src, size_t row_bytes, int64_t rows, int64_t nb, void *dst)
{
	for (int64_t g = 0; g < rows / 8; g++) {
		uint8_t *out = (uint8_t *)dst + (size_t)g * ISQ_Q4_0X8_GROUP_BYTES(nb);
		for (int64_t b = 0; b < nb; b++) {
			uint8_t *col = out + (size_t)b * 144;
			for (int r = 0; r < 8; r++) {
				const struct block_q4_0 *blk =
					(const struct block_q4_0 *)(const void *)((const uint8_t *)src +
										  (size_t)(8 * g + r) * row_bytes) + b;
				memcpy(col + 2 * scale_slot(r), &blk->d, 2);
				memcpy(col + 16 + (r / 2) * 32 + (r & 1) * 16, blk->qs, 16);
			}
		}
	}
}

void isq_unpack_q4_0x8_row(const void *packed, int64_t nb, int64_t r, void *dst)
{
	const uint8_t *grp = (const uint8_t *)packed + (size_t)(r / 8) * ISQ_Q4_0X8_GROUP_BYTES(nb);
	int i = (int)(r % 8);
	struct block_q4_0 *out = dst;
	for (int64_t b = 0; b < nb; b++) {
		const uint8_t *col = grp + (size_t)b * 144;
		memcpy(&out[b].d, col + 2 * scale_slot(i), 2);
		memcpy(out[b].qs, col + 16 + (i / 2) * 32 + (i & 1) * 16, 16);
	}
}

void isq_q8_0_block_sums(const void *x, int64_t nb, int32_t *sums)
{
	const struct block_q8_0 *y = x;
	for (int64_t b = 0; b < nb; b++) {
		int32_t s = 0;
		for (int i = 0; i < 32; i++)
			s += y[b].qs[i];
		sums[b] = 8 * s;
	}
}

void isq_gemv_q4_0x8_ref(const void *packed, int64_t nb, int64_t g0, int64_t g1, const void *x,
			 const int32_t *sums, float *y)
{
	const struct block_q8_0 *xb = x;
	for (int64_t g = g0; g < g1; g++) {
		const uint8_t *grp = (const uint8_t *)packed + (size_t)g * ISQ_Q4_0X8_GROUP_BYTES(nb);
		for (int r = 0; r < 8; r++) {
			float acc = 0.0f;
			for (int64_t b = 0; b < nb; b++) {
				const uint8_t *col = grp + (size_t)b * 144;
				const uint8_t *qs = col + 16 + (r / 2) * 32 + (r & 1) * 16;
				uint16_t dw;
				memcpy(&dw, col + 2 * scale_slot(r), 2);
				int32_t isum = 0;
				for (int i = 0; i < 16; i++)
					isum += (qs[i] & 15) * xb[b].qs[i] + (qs[i] >> 4) * xb[b].qs[i + 16];
				isum -= sums[b];
				float d = isq_fp16_to_fp32(isq_le16(&dw)) * isq_fp16_to_fp32(isq_le16(&xb[b].d));
				acc = fmaf(d, (float)isum, acc);
			}
			y[8 * g + r] = acc;
		}
	}
}

void isq_gemv_q4_0x8(const void *packed, int64_t nb, int64_t g0, int64_t g1, const void *x, const int32_t *sums,
		     float *y)
{
	if (isq_cpu_has_avx2())
		isq_gemv_q4_0x8_avx2(packed, nb, g0, g1, x, sums, y);
	else
		isq_gemv_q4_0x8_ref(packed, nb, g0, g1, x, sums, y);
}

void isq_repack_q8_0x8(const void *src, size_t row_bytes, int64_t rows, int64_t nb, void *dst)
{
	for (int64_t g = 0; g < rows / 8; g++) {
		uint8_t *out = (uint8_t *)dst + (size_t)g * ISQ_Q8_0X8_GROUP_BYTES(nb);
		for (int64_t b = 0; b < nb; b++) {
			uint8_t *col = out + (size_t)b * 272;
			for (int r = 0; r < 8; r++) {
				const struct block_q8_0 *blk =
					(const struct block_q8_0 *)(const void *)((const uint8_t *)src +
										  (size_t)(8 * g + r) * row_bytes) + b;
				memcpy(col + 2 * r, &blk->d, 2);
				memcpy(col + 16 + 32 * r, blk->qs, 32);
			}
		}
	}
}

void isq_unpack_q8_0x8_row(const void *packed, int64_t nb, int64_t r, void *dst)
{
	const uint8_t *grp = (const uint8_t *)packed + (size_t)(r / 8) * ISQ_Q8_0X8_GROUP_BYTES(nb);
	int i = (int)(r % 8);
	struct block_q8_0 *out = dst;
	for (int64_t b = 0; b < nb; b++) {
		const uint8_t *col = grp + (size_t)b * 272;
		memcpy(&out[b].d, col + 2 * i, 2);
		memcpy(out[b].qs, col + 16 + 32 * i, 32);
	}
}

void isq_gemv_q8_0x8_ref(const void *packed, int64_t nb, int64_t g0, int64_t g1, const void *x, float *y)
{
	const struct block_q8_0 *xb = x;
	for (int64_t g = g0; g < g1; g++) {
		const uint8_t *grp = (const uint8_t *)packed + (size_t)g * ISQ_Q8_0X8_GROUP_BYTES(nb);
		for (int r = 0; r < 8; r++) {
			float acc = 0.0f;
			for (int64_t b = 0; b < nb; b++) {
				const uint8_t *col = grp + (size_t)b * 272;
				const int8_t *qs = (const int8_t *)(const void *)(col + 16 + 32 * r);
				int32_t isum = 0;
				for (int i = 0; i < 32; i++)
					isum += qs[i] * xb[b].qs[i];
				float d = isq_fp16_to_fp32(isq_le16(col + 2 * r)) * isq_fp16_to_fp32(isq_le16(&xb[b].d));
				acc = fmaf(d, (float)isum, acc);
			}
			y[8 * g + r] = acc;
		}
	}
}

void isq_gemv_q8_0x8(const void *packed, int64_t nb, int64_t g0, int64_t g1, const void *x, float *y)
{
	if (isq_cpu_has_avx2())
		isq_gemv_q8_0x8_avx2(packed, nb, g0, g1, x, y);
	else
		isq_gemv_q8_0x8_ref(packed, nb, g0, g1, x, y);
}
