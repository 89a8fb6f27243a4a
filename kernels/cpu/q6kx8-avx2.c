/*
 * q6kx8-avx2.c - the Q6_Kx8 product of repack.h.  Four low bits from ql and
 * two from qh make each 32-bit lane four codes q (0..63) of one row; maddubs
 * multiplies them unsigned with the activations, so a pair is at most
 * 2 * 63 * 127 and two chunks add in int16 (<= 32004) before one madd
 * against the row's (sc, sc) pair.  The -32 offset is subtracted once per
 * super-block as 32 * sum_j sc_j * bsum_j from the activation's own sums of
 * 16, which costs far less than sign-adjusting every chunk.  Two activation
 * rows share each decoded load.
 */
#include "repack.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "blocks-k.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))
/* bytes ahead of the block being read (1024 measured best for Q8_0 generation here) */
#define PF_DIST 1024
#define TILE_T 2

enum { COL6 = 1680, OFF6_SC = 16, OFF6_QL = 144, OFF6_QH = 1168 };

static ALWAYS_INLINE __m256i bcast4(const void *p)
{
	return _mm256_castps_si256(_mm256_broadcast_ss((const float *)p));
}

/* sub-block j's eight signed scales as (sc, sc) int16 pairs, one per 32-bit lane */
static ALWAYS_INLINE __m256i scale_pairs(const uint8_t *col, int j)
{
	__m256i v = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(col + OFF6_SC + 8 * j)));
	return _mm256_blend_epi16(v, _mm256_slli_epi32(v, 16), 0xaa);
}

/* sub-blocks 2p and 2p+1's scales as (sc_2p, sc_2p+1) int16 pairs, one per 32-bit lane */
static ALWAYS_INLINE __m256i scale_duo(const uint8_t *col, int p)
{
	__m128i a = _mm_loadl_epi64((const __m128i *)(const void *)(col + OFF6_SC + 16 * p));
	__m128i b = _mm_loadl_epi64((const __m128i *)(const void *)(col + OFF6_SC + 16 * p + 8));
	return _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(a, b));
}

/* codes q of elements 128h + 32k + 4i .. +3 of the eight rows */
static ALWAYS_INLINE __m256i codes(const uint8_t *col, int h, int k, int i, __m256i m4, __m256i m30)
{
	__m256i l = _mm256_loadu_si256((const __m256i *)(const void *)(col + OFF6_QL + 256 * (2 * h + (k & 1)) + 32 * i));
	__m256i u = _mm256_loadu_si256((const __m256i *)(const void *)(col + OFF6_QH + 256 * h + 32 * i));
	__m256i lo = _mm256_and_si256(k >> 1 ? _mm256_srli_epi16(l, 4) : l, m4);
	__m256i hi = k == 0 ? _mm256_slli_epi16(u, 4) : k == 1 ? _mm256_slli_epi16(u, 2) : k == 2 ? u : _mm256_srli_epi16(u, 2);
	return _mm256_or_si256(lo, _mm256_and_si256(hi, m30));
}

static ALWAYS_INLINE void tile(const uint8_t *grp, int64_t nsb, const struct isq_q8k_act *x, int t0, int NT, float *y,
			       size_t ldy)
{
	const __m256i m4 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
	const struct block_q8_K *xr[TILE_T];
	__m256 acc[TILE_T];
	_Pragma("GCC unroll 8")
	for (int t = 0; t < NT; t++) {
		xr[t] = (const struct block_q8_K *)(const void *)((const uint8_t *)x->q + (size_t)(t0 + t) * x->row_bytes);
		acc[t] = _mm256_setzero_ps();
	}
	const uint8_t *col = grp;
	for (int64_t s = 0; s < nsb; s++, col += COL6) {
		if (NT == 1) /* generation streams the weights once: fetch ahead of the hardware prefetcher */
			for (int l = 0; l < COL6; l += 64)
				_mm_prefetch((const char *)col + PF_DIST + l, _MM_HINT_T0);
		__m256i isum[TILE_T], off[TILE_T];
		_Pragma("GCC unroll 8")
		for (int t = 0; t < NT; t++) {
			isum[t] = _mm256_setzero_si256();
			off[t] = _mm256_setzero_si256();
		}
		_Pragma("GCC unroll 8")
		for (int p = 0; p < 8; p++) {
			__m256i sc = scale_duo(col, p);
			_Pragma("GCC unroll 8")
			for (int t = 0; t < NT; t++)
				off[t] = _mm256_add_epi32(off[t], _mm256_madd_epi16(sc, bcast4(xr[t][s].bsums + 2 * p)));
		}
		_Pragma("GCC unroll 2")
		for (int h = 0; h < 2; h++) {
			_Pragma("GCC unroll 4")
			for (int k = 0; k < 4; k++) {
				_Pragma("GCC unroll 2")
				for (int ih = 0; ih < 2; ih++) {
					__m256i sc = scale_pairs(col, 8 * h + 2 * k + ih);
					_Pragma("GCC unroll 2")
					for (int i = 4 * ih; i < 4 * ih + 4; i += 2) {
						__m256i w0 = codes(col, h, k, i, m4, m30), w1 = codes(col, h, k, i + 1, m4, m30);
						_Pragma("GCC unroll 8")
						for (int t = 0; t < NT; t++) {
							const int8_t *q = xr[t][s].qs + 128 * h + 32 * k + 4 * i;
							__m256i s16 = _mm256_add_epi16(_mm256_maddubs_epi16(w0, bcast4(q)),
										       _mm256_maddubs_epi16(w1, bcast4(q + 4)));
							isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(s16, sc));
						}
					}
				}
			}
		}
		__m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)col));
		_Pragma("GCC unroll 8")
		for (int t = 0; t < NT; t++)
			acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_broadcast_ss(&xr[t][s].d)),
						 _mm256_cvtepi32_ps(_mm256_sub_epi32(isum[t], _mm256_slli_epi32(off[t], 5))),
						 acc[t]);
	}
	_Pragma("GCC unroll 8")
	for (int t = 0; t < NT; t++)
		_mm256_storeu_ps(y + (size_t)(t0 + t) * ldy, acc[t]);
}

void isq_gemm_q6_Kx8_avx2(const void *packed, int64_t nsb, int64_t g0, int64_t g1, const struct isq_q8k_act *x,
			  float *y, size_t ldy)
{
	for (int64_t g = g0; g < g1; g++) {
		const uint8_t *grp = (const uint8_t *)packed + (size_t)g * ISQ_Q6_KX8_GROUP_BYTES(nsb);
		float *yg = y + 8 * g;
		int t = 0;
		for (; t + TILE_T <= x->n; t += TILE_T)
			tile(grp, nsb, x, t, TILE_T, yg, ldy);
		if (t < x->n)
			tile(grp, nsb, x, t, 1, yg, ldy);
	}
}

#else

void isq_gemm_q6_Kx8_avx2(const void *packed, int64_t nsb, int64_t g0, int64_t g1, const struct isq_q8k_act *x,
			  float *y, size_t ldy)
{
	isq_gemm_q6_Kx8_ref(packed, nsb, g0, g1, x, y, ldy);
}

#endif
