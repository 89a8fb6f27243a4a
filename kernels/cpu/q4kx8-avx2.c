/*
 * q4kx8-avx2.c - the Q4_Kx8 product of repack.h.  As Q4_0x8, each 32-bit
 * lane is one row: nibbles times four broadcast activation codes by maddubs,
 * eight chunks of a sub-block summed in int16 (<= 8 * 2 * 15 * 127 = 30480),
 * then madd against the row's scale held in both halves of its lane widens
 * and scales in one step.  The mins meet Q8_K's per-sub-block sums by madd
 * on (m_2k, m_2k+1) pairs.  Two activation rows share each decoded load:
 * four would not fit the sixteen registers with two int16 sums each.
 */
#include "repack.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "blocks-k.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))
/* bytes ahead of the block being read (1024 measured best for Q8_0 generation here) */
#define PF_DIST 1024
#define TILE_T 2

enum { COL = 1184, OFF_SC = 32, OFF_M = 96, OFF_QS = 160 };

static ALWAYS_INLINE __m256i bcast4(const void *p)
{
	return _mm256_castps_si256(_mm256_broadcast_ss((const float *)p));
}

/* sub-block j's eight scales as (sc, sc) int16 pairs, one per 32-bit lane */
static ALWAYS_INLINE __m256i scale_pairs(const uint8_t *col, int j)
{
	__m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(col + OFF_SC + 8 * j)));
	return _mm256_or_si256(v, _mm256_slli_epi32(v, 16));
}

static ALWAYS_INLINE void tile(const uint8_t *grp, int64_t nsb, const struct isq_q8k_act *x, int t0, int NT, float *y,
			       size_t ldy)
{
	const __m256i m4 = _mm256_set1_epi8(15);
	const struct block_q8_K *xr[TILE_T];
	__m256 acc[TILE_T];
	_Pragma("GCC unroll 8")
	for (int t = 0; t < NT; t++) {
		xr[t] = (const struct block_q8_K *)(const void *)((const uint8_t *)x->q + (size_t)(t0 + t) * x->row_bytes);
		acc[t] = _mm256_setzero_ps();
	}
	const uint8_t *col = grp;
	for (int64_t s = 0; s < nsb; s++, col += COL) {
		if (NT == 1) /* generation streams the weights once: fetch ahead of the hardware prefetcher */
			for (int l = 0; l < COL; l += 64)
				_mm_prefetch((const char *)col + PF_DIST + l, _MM_HINT_T0);
		__m256i isum[TILE_T], summ[TILE_T];
		_Pragma("GCC unroll 8")
		for (int t = 0; t < NT; t++) {
			isum[t] = _mm256_setzero_si256();
			summ[t] = _mm256_setzero_si256();
		}
		for (int c = 0; c < 4; c++) {
			__m256i lo_s[TILE_T], hi_s[TILE_T];
			_Pragma("GCC unroll 8")
			for (int t = 0; t < NT; t++)
				lo_s[t] = hi_s[t] = _mm256_setzero_si256();
			const uint8_t *qs = col + OFF_QS + 256 * c;
			_Pragma("GCC unroll 8")
			for (int i = 0; i < 8; i++) {
				__m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(qs + 32 * i));
				__m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
				_Pragma("GCC unroll 8")
				for (int t = 0; t < NT; t++) {
					const int8_t *q = xr[t][s].qs + 64 * c + 4 * i;
					lo_s[t] = _mm256_add_epi16(lo_s[t], _mm256_maddubs_epi16(lo, bcast4(q)));
					hi_s[t] = _mm256_add_epi16(hi_s[t], _mm256_maddubs_epi16(hi, bcast4(q + 32)));
				}
			}
			__m256i sl = scale_pairs(col, 2 * c), sh = scale_pairs(col, 2 * c + 1);
			_Pragma("GCC unroll 8")
			for (int t = 0; t < NT; t++)
				isum[t] = _mm256_add_epi32(isum[t], _mm256_add_epi32(_mm256_madd_epi16(lo_s[t], sl),
										   _mm256_madd_epi16(hi_s[t], sh)));
		}
		_Pragma("GCC unroll 8")
		for (int k = 0; k < 4; k++) {
			__m256i m = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(col + OFF_M + 16 * k)));
			_Pragma("GCC unroll 8")
			for (int t = 0; t < NT; t++)
				summ[t] = _mm256_add_epi32(summ[t],
							   _mm256_madd_epi16(m, bcast4(x->bs + ((size_t)(t0 + t) * nsb + s) * 8 + 2 * k)));
		}
		__m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)col));
		__m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(col + 16)));
		_Pragma("GCC unroll 8")
		for (int t = 0; t < NT; t++) {
			__m256 v = _mm256_fnmadd_ps(dmin, _mm256_cvtepi32_ps(summ[t]),
						    _mm256_mul_ps(d, _mm256_cvtepi32_ps(isum[t])));
			acc[t] = _mm256_fmadd_ps(_mm256_broadcast_ss(&xr[t][s].d), v, acc[t]);
		}
	}
	_Pragma("GCC unroll 8")
	for (int t = 0; t < NT; t++)
		_mm256_storeu_ps(y + (size_t)(t0 + t) * ldy, acc[t]);
}

void isq_gemm_q4_Kx8_avx2(const void *packed, int64_t nsb, int64_t g0, int64_t g1, const struct isq_q8k_act *x,
			  float *y, size_t ldy)
{
	for (int64_t g = g0; g < g1; g++) {
		const uint8_t *grp = (const uint8_t *)packed + (size_t)g * ISQ_Q4_KX8_GROUP_BYTES(nsb);
		float *yg = y + 8 * g;
		int t = 0;
		for (; t + TILE_T <= x->n; t += TILE_T)
			tile(grp, nsb, x, t, TILE_T, yg, ldy);
		if (t < x->n)
			tile(grp, nsb, x, t, 1, yg, ldy);
	}
}

#else

void isq_gemm_q4_Kx8_avx2(const void *packed, int64_t nsb, int64_t g0, int64_t g1, const struct isq_q8k_act *x,
			  float *y, size_t ldy)
{
	isq_gemm_q4_Kx8_ref(packed, nsb, g0, g1, x, y, ldy);
}

#endif
