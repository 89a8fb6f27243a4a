/*
 * repack.c - the portable half of repack.h: the layout changes and the
 * reference products the AVX2 kernels are tested against.
 */
#include "repack.h"

#include "blocks.h"
#include "cpu.h"
#include "fp.h"

#include <math.h>
#include <string.h>

void isq_q8_act_prepare(const void *q, size_t row_bytes, int n, int64_t nb, float *d, int32_t *sums)
{
	for (int t = 0; t < n; t++) {
		const struct block_q8_0 *y = (const struct block_q8_0 *)(const void *)((const uint8_t *)q + (size_t)t * row_bytes);
		for (int64_t b = 0; b < nb; b++) {
			int32_t s = 0;
			for (int i = 0; i < 32; i++)
				s += y[b].qs[i];
			sums[(size_t)t * nb + b] = 8 * s;
			d[(size_t)t * nb + b] = isq_fp16_to_fp32(isq_le16(&y[b].d));
		}
	}
}

/*
 * Both layouts: block column of `bytes`, scales first, then `chunks` slices
 * of 8 rows x 4 bytes.  PACK copies row r's block (scale, codes) in; !PACK
 * copies it back out.
 */
static void move_block(uint8_t *col, int r, uint8_t *d, uint8_t *qs, int chunks, int pack)
{
	for (int i = 0; i < chunks; i++) {
		uint8_t *slot = col + 16 + 32 * i + 4 * r;
		memcpy(pack ? slot : qs + 4 * i, pack ? qs + 4 * i : slot, 4);
	}
	memcpy(pack ? col + 2 * r : d, pack ? d : col + 2 * r, 2);
}

void isq_repack_q4_0x8(const void *src, size_t row_bytes, int64_t rows, int64_t nb, void *dst)
{
	for (int64_t g = 0; g < rows / 8; g++)
		for (int r = 0; r < 8; r++) {
			struct block_q4_0 *blk = (struct block_q4_0 *)(uintptr_t)((const uint8_t *)src +
										  (size_t)(8 * g + r) * row_bytes);
			uint8_t *out = (uint8_t *)dst + (size_t)g * ISQ_Q4_0X8_GROUP_BYTES(nb);
			for (int64_t b = 0; b < nb; b++)
				move_block(out + (size_t)b * 144, r, (uint8_t *)&blk[b].d, blk[b].qs, 4, 1);
		}
}

void isq_unpack_q4_0x8_row(const void *packed, int64_t nb, int64_t r, void *dst)
{
	uint8_t *grp = (uint8_t *)(uintptr_t)packed + (size_t)(r / 8) * ISQ_Q4_0X8_GROUP_BYTES(nb);
	struct block_q4_0 *out = dst;
	for (int64_t b = 0; b < nb; b++)
		move_block(grp + (size_t)b * 144, (int)(r % 8), (uint8_t *)&out[b].d, out[b].qs, 4, 0);
}

void isq_repack_q8_0x8(const void *src, size_t row_bytes, int64_t rows, int64_t nb, void *dst)
{
	for (int64_t g = 0; g < rows / 8; g++)
		for (int r = 0; r < 8; r++) {
			struct block_q8_0 *blk = (struct block_q8_0 *)(uintptr_t)((const uint8_t *)src +
										  (size_t)(8 * g + r) * row_bytes);
			uint8_t *out = (uint8_t *)dst + (size_t)g * ISQ_Q8_0X8_GROUP_BYTES(nb);
			for (int64_t b = 0; b < nb; b++)
				move_block(out + (size_t)b * 272, r, (uint8_t *)&blk[b].d, (uint8_t *)blk[b].qs, 8, 1);
		}
}

void isq_unpack_q8_0x8_row(const void *packed, int64_t nb, int64_t r, void *dst)
{
	uint8_t *grp = (uint8_t *)(uintptr_t)packed + (size_t)(r / 8) * ISQ_Q8_0X8_GROUP_BYTES(nb);
	struct block_q8_0 *out = dst;
	for (int64_t b = 0; b < nb; b++)
		move_block(grp + (size_t)b * 272, (int)(r % 8), (uint8_t *)&out[b].d, (uint8_t *)out[b].qs, 8, 0);
}

enum codes { CODES_Q8, CODES_Q4, CODES_IQ4 };

/* The formula of repack.h for one layout; codes picks the decoding. */
static void gemm_ref(const void *packed, int64_t nb, int64_t g0, int64_t g1, const struct isq_q8_act *x, float *y,
		     size_t ldy, enum codes codes)
{
	int q4 = codes != CODES_Q8;
	size_t col_bytes = q4 ? 144 : 272;
	for (int t = 0; t < x->n; t++) {
		const struct block_q8_0 *xb =
			(const struct block_q8_0 *)(const void *)((const uint8_t *)x->q + (size_t)t * x->row_bytes);
		for (int64_t g = g0; g < g1; g++) {
			const uint8_t *grp = (const uint8_t *)packed + (size_t)g * nb * col_bytes;
			for (int r = 0; r < 8; r++) {
				float acc = 0.0f;
				for (int64_t b = 0; b < nb; b++) {
					const uint8_t *col = grp + (size_t)b * col_bytes;
					int32_t isum = 0;
					for (int i = 0; i < (q4 ? 4 : 8); i++)
						for (int j = 0; j < 4; j++) {
							uint8_t c = col[16 + 32 * i + 4 * r + j];
							if (codes == CODES_IQ4)
								isum += isq_iq4_values[c & 15] * xb[b].qs[4 * i + j] +
									isq_iq4_values[c >> 4] * xb[b].qs[16 + 4 * i + j];
							else if (q4)
								isum += (c & 15) * xb[b].qs[4 * i + j] +
									(c >> 4) * xb[b].qs[16 + 4 * i + j];
							else
								isum += (int8_t)c * xb[b].qs[4 * i + j];
						}
					if (codes == CODES_Q4)
						isum -= x->sums[(size_t)t * nb + b];
					float d = isq_fp16_to_fp32(isq_le16(col + 2 * r)) * x->d[(size_t)t * nb + b];
					acc = fmaf(d, (float)isum, acc);
				}
				y[(size_t)t * ldy + 8 * g + r] = acc;
			}
		}
	}
}

void isq_gemm_q4_0x8_ref(const void *packed, int64_t nb, int64_t g0, int64_t g1, const struct isq_q8_act *x,
			 float *y, size_t ldy)
{
	gemm_ref(packed, nb, g0, g1, x, y, ldy, CODES_Q4);
}

void isq_gemm_q8_0x8_ref(const void *packed, int64_t nb, int64_t g0, int64_t g1, const struct isq_q8_act *x,
			 float *y, size_t ldy)
{
	gemm_ref(packed, nb, g0, g1, x, y, ldy, CODES_Q8);
}

void isq_gemm_iq4_nlx8_ref(const void *packed, int64_t nb, int64_t g0, int64_t g1, const struct isq_q8_act *x,
			   float *y, size_t ldy)
{
	gemm_ref(packed, nb, g0, g1, x, y, ldy, CODES_IQ4);
}

void isq_gemm_q4_0x8(const void *packed, int64_t nb, int64_t g0, int64_t g1, const struct isq_q8_act *x, float *y,
		     size_t ldy)
{
	if (isq_cpu_has_avx2())
		isq_gemm_q4_0x8_avx2(packed, nb, g0, g1, x, y, ldy);
	else
		isq_gemm_q4_0x8_ref(packed, nb, g0, g1, x, y, ldy);
}

void isq_gemm_q8_0x8(const void *packed, int64_t nb, int64_t g0, int64_t g1, const struct isq_q8_act *x, float *y,
		     size_t ldy)
{
	if (isq_cpu_has_avx2())
		isq_gemm_q8_0x8_avx2(packed, nb, g0, g1, x, y, ldy);
	else
		isq_gemm_q8_0x8_ref(packed, nb, g0, g1, x, y, ldy);
}

void isq_gemm_iq4_nlx8(const void *packed, int64_t nb, int64_t g0, int64_t g1, const struct isq_q8_act *x, float *y,
		       size_t ldy)
{
	if (isq_cpu_has_avx2())
		isq_gemm_iq4_nlx8_avx2(packed, nb, g0, g1, x, y, ldy);
	else
		isq_gemm_iq4_nlx8_ref(packed, nb, g0, g1, x, y, ldy);
}
