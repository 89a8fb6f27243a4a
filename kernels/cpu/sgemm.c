/*
 * sgemm.c - the portable panel kernels of sgemm.h and the choice between
 * them and the AVX2 ones.
 */
#include "sgemm.h"

#include "cpu.h"
#include "fp.h"
#include "types.h"

#include <math.h>
#include <string.h>

static void pack_ref(const float *rows, size_t ld, int nr, int64_t k, float *p)
{
	for (int64_t i = 0; i < k; i++)
		for (int r = 0; r < 16; r++)
			p[(size_t)i * 16 + r] = r < nr ? rows[(size_t)r * ld + i] : 0.0f;
}

static void sgemm_ref(int64_t k, int nt, const float *x, size_t ldx, const float *p, float *y, size_t ldy, int nr)
{
	for (int t = 0; t < nt; t++)
		for (int r = 0; r < nr; r++) {
			float s = 0.0f;
			for (int64_t i = 0; i < k; i++)
				s = fmaf(x[(size_t)t * ldx + i], p[(size_t)i * 16 + r], s);
			y[(size_t)t * ldy + r] = s;
		}
}

void isq_panel16_pack(const float *rows, size_t ld, int nr, int64_t k, float *p)
{
	if (isq_cpu_has_avx2())
		isq_panel16_pack_avx2(rows, ld, nr, k, p);
	else
		pack_ref(rows, ld, nr, k, p);
}

void isq_sgemm_panel16(int64_t k, int nt, const float *x, size_t ldx, const float *p, float *y, size_t ldy, int nr)
{
	if (isq_cpu_has_avx2())
		isq_sgemm_panel16_avx2(k, nt, x, ldx, p, y, ldy, nr);
	else
		sgemm_ref(k, nt, x, ldx, p, y, ldy, nr);
}

static float wide_at(int type, const uint8_t *row, int64_t i)
{
	switch (type) {
	case ISQ_TYPE_F32: {
		float f;
		memcpy(&f, row + 4 * i, 4);
		return f;
	}
	case ISQ_TYPE_F16:
		return isq_fp16_to_fp32(isq_le16(row + 2 * i));
	default: {
		uint32_t u = (uint32_t)isq_le16(row + 2 * i) << 16;
		float f;
		memcpy(&f, &u, 4);
		return f;
	}
	}
}

void isq_gemv_wide_ref(int type, int64_t k, const void *w, size_t row_bytes, int64_t nr, const float *x, float *y)
{
	for (int64_t r = 0; r < nr; r++) {
		const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
		float l[8] = { 0 };
		int64_t i = 0;
		for (; i + 8 <= k; i += 8)
			for (int j = 0; j < 8; j++)
				l[j] = fmaf(wide_at(type, row, i + j), x[i + j], l[j]);
		float s = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
		for (; i < k; i++)
			s = fmaf(wide_at(type, row, i), x[i], s);
		y[r] = s;
	}
}

int isq_gemv_wide(int type, int64_t k, const void *w, size_t row_bytes, int64_t nr, const float *x, float *y)
{
	if (type != ISQ_TYPE_F32 && type != ISQ_TYPE_F16 && type != ISQ_TYPE_BF16)
		return -1;
	if (isq_cpu_has_avx2())
		return isq_gemv_wide_avx2(type, k, w, row_bytes, nr, x, y);
	isq_gemv_wide_ref(type, k, w, row_bytes, nr, x, y);
	return 0;
}
