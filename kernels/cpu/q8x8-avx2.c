/*
 * q8x8-avx2.c - the Q8_0x8 products of repack.h, laid out as Q4_0x8 (each
 * 32-bit lane one row).  Signed weights times signed activations go through
 * maddubs as |w| times sign(x, w): |pair sum| <= 2 * 128 * 127 fits int16
 * (the activation encoder never writes -128) but two do not, so every
 * maddubs is widened by madd before the adds.  Up to four activation rows
 * share each load of weights.
 */
#include "repack.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "blocks.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))
/* activation rows per pass over a group: 2 and 3 measured slower, more would spill */
/* bytes ahead of the block being read (1024 measured best for Q8_0 generation here) */
#define PF_DIST 1024
#define TILE_T 4

static ALWAYS_INLINE __m256i bcast4(const int8_t *p)
{
	return _mm256_castps_si256(_mm256_broadcast_ss((const float *)(const void *)p));
}

static ALWAYS_INLINE void tile(const uint8_t *grp, int64_t nb, const struct isq_q8_act *x, int t0, int NT, float *y,
			       size_t ldy)
{
	const __m256i ones = _mm256_set1_epi16(1);
	const struct block_q8_0 *xr[4];
	__m256 acc[4];
	_Pragma("GCC unroll 8")
	for (int t = 0; t < NT; t++) {
		xr[t] = (const struct block_q8_0 *)(const void *)((const uint8_t *)x->q + (size_t)(t0 + t) * x->row_bytes);
		acc[t] = _mm256_setzero_ps();
	}
	const uint8_t *col = grp;
	for (int64_t b = 0; b < nb; b++, col += 272) {
		if (NT == 1) /* generation streams the weights once: fetch ahead of the hardware prefetcher */
			for (int l = 0; l < 272; l += 64)
				_mm_prefetch((const char *)col + PF_DIST + l, _MM_HINT_T0);
		__m256i s[4];
		_Pragma("GCC unroll 8")
		for (int t = 0; t < NT; t++)
			s[t] = _mm256_setzero_si256();
		_Pragma("GCC unroll 8")
		for (int i = 0; i < 8; i++) {
			__m256i w = _mm256_loadu_si256((const __m256i *)(const void *)(col + 16 + 32 * i));
			__m256i aw = _mm256_sign_epi8(w, w);
			_Pragma("GCC unroll 8")
			for (int t = 0; t < NT; t++) {
				__m256i p = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(bcast4(xr[t][b].qs + 4 * i), w));
				s[t] = _mm256_add_epi32(s[t], _mm256_madd_epi16(p, ones));
			}
		}
		__m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)col));
		_Pragma("GCC unroll 8")
		for (int t = 0; t < NT; t++) {
			__m256 d = _mm256_mul_ps(dw, _mm256_broadcast_ss(&x->d[(size_t)(t0 + t) * (size_t)nb + (size_t)b]));
			acc[t] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s[t]), acc[t]);
		}
	}
	_Pragma("GCC unroll 8")
	for (int t = 0; t < NT; t++)
		_mm256_storeu_ps(y + (size_t)(t0 + t) * ldy, acc[t]);
}

void isq_gemm_q8_0x8_avx2(const void *packed, int64_t nb, int64_t g0, int64_t g1, const struct isq_q8_act *x,
			  float *y, size_t ldy)
{
	for (int64_t g = g0; g < g1; g++) {
		const uint8_t *grp = (const uint8_t *)packed + (size_t)g * ISQ_Q8_0X8_GROUP_BYTES(nb);
		float *yg = y + 8 * g;
		int t = 0;
		for (; t + TILE_T <= x->n; t += TILE_T)
			tile(grp, nb, x, t, TILE_T, yg, ldy);
		switch (x->n - t) {
		case 3: tile(grp, nb, x, t, 3, yg, ldy); break;
		case 2: tile(grp, nb, x, t, 2, yg, ldy); break;
		case 1: tile(grp, nb, x, t, 1, yg, ldy); break;
		default: break;
		}
	}
}

#else

void isq_gemm_q8_0x8_avx2(const void *packed, int64_t nb, int64_t g0, int64_t g1, const struct isq_q8_act *x,
			  float *y, size_t ldy)
{
	isq_gemm_q8_0x8_ref(packed, nb, g0, g1, x, y, ldy);
}

#endif
