/*
 * q4x8-avx2.c - the Q4_0x8 products of repack.h.  Each 32-byte load holds
 * four code bytes of each of the eight rows; its nibbles times the matching
 * four activation codes (a 32-bit broadcast) by maddubs leave every row's
 * partial sums in its own 32-bit lane, so a block needs no horizontal adds.
 * Up to four activation rows share each decoded load.  The eight maddubs of
 * a block add in int16: |each| <= 2 * 15 * 127, eight of them <= 30480.  The
 * -8 offset is one subtraction of 8 * sum(x) per block.
 *
 * IQ4_NLx8 shares the layout and the loop: its nibbles become signed table
 * values by one shuffle, which then multiply as Q8_0x8's codes do (|w| times
 * sign(x, w), widened to int32 at once since two such pairs overflow int16).
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

static ALWAYS_INLINE __m256i signed_dot(__m256i w, __m256i aw, __m256i x, __m256i ones)
{
	return _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(x, w)), ones);
}

/* Group grp for activation rows t0 .. t0+NT-1 (NT <= 4 and NL, IQ4_NL's codes, constant after inlining). */
static ALWAYS_INLINE void tile(const uint8_t *grp, int64_t nb, const struct isq_q8_act *x, int t0, int NT, int NL,
			       float *y, size_t ldy)
{
	const __m256i m4 = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
	const __m256i kv = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)isq_iq4_values));
	const struct block_q8_0 *xr[4];
	__m256 acc[4];
	_Pragma("GCC unroll 8")
	for (int t = 0; t < NT; t++) {
		xr[t] = (const struct block_q8_0 *)(const void *)((const uint8_t *)x->q + (size_t)(t0 + t) * x->row_bytes);
		acc[t] = _mm256_setzero_ps();
	}
	const uint8_t *col = grp;
	for (int64_t b = 0; b < nb; b++, col += 144) {
		if (NT == 1) /* generation streams the weights once: fetch ahead of the hardware prefetcher */
			for (int l = 0; l < 144; l += 64)
				_mm_prefetch((const char *)col + PF_DIST + l, _MM_HINT_T0);
		__m256i s[4];
		_Pragma("GCC unroll 8")
		for (int t = 0; t < NT; t++)
			s[t] = _mm256_setzero_si256();
		_Pragma("GCC unroll 8")
		for (int i = 0; i < 4; i++) {
			__m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(col + 16 + 32 * i));
			__m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
			if (NL) {
				lo = _mm256_shuffle_epi8(kv, lo);
				hi = _mm256_shuffle_epi8(kv, hi);
				__m256i alo = _mm256_sign_epi8(lo, lo), ahi = _mm256_sign_epi8(hi, hi);
				_Pragma("GCC unroll 8")
				for (int t = 0; t < NT; t++) {
					const int8_t *q = xr[t][b].qs;
					s[t] = _mm256_add_epi32(s[t], _mm256_add_epi32(
									      signed_dot(lo, alo, bcast4(q + 4 * i), ones),
									      signed_dot(hi, ahi, bcast4(q + 16 + 4 * i), ones)));
				}
				continue;
			}
			_Pragma("GCC unroll 8")
			for (int t = 0; t < NT; t++) {
				const int8_t *q = xr[t][b].qs;
				__m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, bcast4(q + 4 * i)),
							     _mm256_maddubs_epi16(hi, bcast4(q + 16 + 4 * i)));
				s[t] = _mm256_add_epi16(s[t], p);
			}
		}
		__m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)col));
		_Pragma("GCC unroll 8")
		for (int t = 0; t < NT; t++) {
			size_t k = (size_t)(t0 + t) * (size_t)nb + (size_t)b;
			__m256i isum = NL ? s[t]
					  : _mm256_sub_epi32(_mm256_madd_epi16(s[t], ones), _mm256_set1_epi32(x->sums[k]));
			__m256 d = _mm256_mul_ps(dw, _mm256_broadcast_ss(&x->d[k]));
			acc[t] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(isum), acc[t]);
		}
	}
	_Pragma("GCC unroll 8")
	for (int t = 0; t < NT; t++)
		_mm256_storeu_ps(y + (size_t)(t0 + t) * ldy, acc[t]);
}

static ALWAYS_INLINE void gemm(const void *packed, int64_t nb, int64_t g0, int64_t g1, const struct isq_q8_act *x,
				float *y, size_t ldy, int NL)
{
	for (int64_t g = g0; g < g1; g++) {
		const uint8_t *grp = (const uint8_t *)packed + (size_t)g * ISQ_Q4_0X8_GROUP_BYTES(nb);
		float *yg = y + 8 * g;
		int t = 0;
		for (; t + TILE_T <= x->n; t += TILE_T)
			tile(grp, nb, x, t, TILE_T, NL, yg, ldy);
		switch (x->n - t) {
		case 3: tile(grp, nb, x, t, 3, NL, yg, ldy); break;
		case 2: tile(grp, nb, x, t, 2, NL, yg, ldy); break;
		case 1: tile(grp, nb, x, t, 1, NL, yg, ldy); break;
		default: break;
		}
	}
}

void isq_gemm_q4_0x8_avx2(const void *packed, int64_t nb, int64_t g0, int64_t g1, const struct isq_q8_act *x,
			  float *y, size_t ldy)
{
	gemm(packed, nb, g0, g1, x, y, ldy, 0);
}

void isq_gemm_iq4_nlx8_avx2(const void *packed, int64_t nb, int64_t g0, int64_t g1, const struct isq_q8_act *x,
			    float *y, size_t ldy)
{
	gemm(packed, nb, g0, g1, x, y, ldy, 1);
}

#else

void isq_gemm_q4_0x8_avx2(const void *packed, int64_t nb, int64_t g0, int64_t g1, const struct isq_q8_act *x,
			  float *y, size_t ldy)
{
	isq_gemm_q4_0x8_ref(packed, nb, g0, g1, x, y, ldy);
}

void isq_gemm_iq4_nlx8_avx2(const void *packed, int64_t nb, int64_t g0, int64_t g1, const struct isq_q8_act *x,
			    float *y, size_t ldy)
{
	isq_gemm_iq4_nlx8_ref(packed, nb, g0, g1, x, y, ldy);
}

#endif
