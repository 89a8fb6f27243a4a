/*
 * q4x8-avx2.c - the Q4_0x8 matrix-vector product of repack.h.  Per block
 * column: four 32-byte loads hold the eight rows' codes, unsigned nibbles
 * times signed activations by maddubs, and three horizontal adds reduce the
 * 8 x 32 products to eight exact integer sums (|partial| <= 16 * 15 * 127,
 * inside int16).  The -8 offset is one subtraction of 8 * sum(x) per block.
 */
#include "repack.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "blocks.h"
#include "fp.h"

static inline __m256i pair_products(const uint8_t *qs, __m256i ylo, __m256i yhi, __m256i m4)
{
	__m256i v = _mm256_loadu_si256((const __m256i *)(const void *)qs);
	__m256i lo = _mm256_and_si256(v, m4);
	__m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
	return _mm256_add_epi16(_mm256_maddubs_epi16(lo, ylo), _mm256_maddubs_epi16(hi, yhi));
}

void isq_gemv_q4_0x8_avx2(const void *packed, int64_t nb, int64_t g0, int64_t g1, const void *x,
			  const int32_t *sums, float *y)
{
	const struct block_q8_0 *xb = x;
	const __m256i m4 = _mm256_set1_epi8(15);
	const __m256i ones = _mm256_set1_epi16(1);
	for (int64_t g = g0; g < g1; g++) {
		const uint8_t *col = (const uint8_t *)packed + (size_t)g * ISQ_Q4_0X8_GROUP_BYTES(nb);
		__m256 acc = _mm256_setzero_ps();
		for (int64_t b = 0; b < nb; b++, col += 144) {
			const __m128i *xq = (const __m128i *)(const void *)xb[b].qs;
			__m256i ylo = _mm256_broadcastsi128_si256(_mm_loadu_si128(xq));
			__m256i yhi = _mm256_broadcastsi128_si256(_mm_loadu_si128(xq + 1));
			__m256i p01 = pair_products(col + 16, ylo, yhi, m4);
			__m256i p23 = pair_products(col + 48, ylo, yhi, m4);
			__m256i p45 = pair_products(col + 80, ylo, yhi, m4);
			__m256i p67 = pair_products(col + 112, ylo, yhi, m4);
			__m256i h = _mm256_hadd_epi16(_mm256_hadd_epi16(p01, p23), _mm256_hadd_epi16(p45, p67));
			__m256i isum = _mm256_sub_epi32(_mm256_madd_epi16(h, ones), _mm256_set1_epi32(sums[b]));
			__m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)col));
			__m256 d = _mm256_mul_ps(dw, _mm256_set1_ps(_cvtsh_ss(isq_le16(&xb[b].d))));
			acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(isum), acc);
		}
		float t[8];
		_mm256_storeu_ps(t, acc);
		float *out = y + 8 * g;
		/* lanes hold rows 0 2 4 6 1 3 5 7 */
		out[0] = t[0], out[2] = t[1], out[4] = t[2], out[6] = t[3];
		out[1] = t[4], out[3] = t[5], out[5] = t[6], out[7] = t[7];
	}
}

#else

void isq_gemv_q4_0x8_avx2(const void *packed, int64_t nb, int64_t g0, int64_t g1, const void *x,
			  const int32_t *sums, float *y)
{
	isq_gemv_q4_0x8_ref(packed, nb, g0, g1, x, sums, y);
}

#endif
