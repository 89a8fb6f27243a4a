/*
 * q8x8-avx2.c - the Q8_0x8 matrix-vector product of repack.h.  Signed
 * weights times signed activations go through maddubs as |w| times
 * sign(x, w) (|pair sum| <= 2 * 128 * 127, inside int16; the activation
 * encoder never writes -128), then madd and a tree of horizontal adds give
 * the eight rows' exact integer sums in row order.
 */
#include "repack.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "blocks.h"
#include "fp.h"

static inline __m256i row_sums(const uint8_t *qs, __m256i y, __m256i ones)
{
	__m256i w = _mm256_loadu_si256((const __m256i *)(const void *)qs);
	__m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(y, w));
	return _mm256_madd_epi16(p, ones);
}

void isq_gemv_q8_0x8_avx2(const void *packed, int64_t nb, int64_t g0, int64_t g1, const void *x, float *y)
{
	const struct block_q8_0 *xb = x;
	const __m256i ones = _mm256_set1_epi16(1);
	for (int64_t g = g0; g < g1; g++) {
		const uint8_t *col = (const uint8_t *)packed + (size_t)g * ISQ_Q8_0X8_GROUP_BYTES(nb);
		__m256 acc = _mm256_setzero_ps();
		for (int64_t b = 0; b < nb; b++, col += 272) {
			__m256i yv = _mm256_loadu_si256((const __m256i *)(const void *)xb[b].qs);
			const uint8_t *q = col + 16;
			__m256i h01 = _mm256_hadd_epi32(row_sums(q, yv, ones), row_sums(q + 32, yv, ones));
			__m256i h23 = _mm256_hadd_epi32(row_sums(q + 64, yv, ones), row_sums(q + 96, yv, ones));
			__m256i h45 = _mm256_hadd_epi32(row_sums(q + 128, yv, ones), row_sums(q + 160, yv, ones));
			__m256i h67 = _mm256_hadd_epi32(row_sums(q + 192, yv, ones), row_sums(q + 224, yv, ones));
			/* lanes: [r0 r1 r2 r3 | r0 r1 r2 r3] partial sums, likewise rows 4..7 */
			__m256i a = _mm256_hadd_epi32(h01, h23), c = _mm256_hadd_epi32(h45, h67);
			__m256i isum = _mm256_add_epi32(_mm256_permute2x128_si256(a, c, 0x20),
							_mm256_permute2x128_si256(a, c, 0x31));
			__m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)col));
			__m256 d = _mm256_mul_ps(dw, _mm256_set1_ps(_cvtsh_ss(isq_le16(&xb[b].d))));
			acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(isum), acc);
		}
		_mm256_storeu_ps(y + 8 * g, acc);
	}
}

#else

void isq_gemv_q8_0x8_avx2(const void *packed, int64_t nb, int64_t g0, int64_t g1, const void *x, float *y)
{
	isq_gemv_q8_0x8_ref(packed, nb, g0, g1, x, y);
}

#endif
