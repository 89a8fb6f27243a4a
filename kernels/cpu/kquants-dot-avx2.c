/*
 * kquants-dot-avx2.c - AVX2 dot products of K-quant weights with Q8_K
 * activations, and the AVX2 Q8_K activation quantizer (same bytes as the
 * reference).  Codes are unsigned bytes against signed Q8_K bytes
 * (vpmaddubsw: at most 63 * 127 * 2 per 16-bit lane, no saturation), then
 * weighted by the integer sub-scales in 32-bit lanes; offsets (Q3_K's -4,
 * Q6_K's -32, the mins) come from the Q8_K block sums.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kquants.h"

#include "blocks-k.h"

#define I8 __m256i
#define LDI(p) _mm256_loadu_si256((const __m256i *)(p))

static inline int hsum_i32(I8 v)
{
	__m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
	return _mm_cvtsi128_si32(s);
}

static inline float f16(uint16_t h)
{
	return _cvtsh_ss(h);
}

/* 16-bit lanes 0-7 get scale a, lanes 8-15 scale b (two sub-blocks of 16). */
static inline I8 scales2(int a, int b)
{
	return _mm256_set_m128i(_mm_set1_epi16((short)b), _mm_set1_epi16((short)a));
}

/* sum over 32 elements of code * y, weighted per 16 by (sa, sb), in 32-bit lanes */
static inline I8 dot32(I8 q, I8 y, int sa, int sb)
{
	return _mm256_madd_epi16(_mm256_maddubs_epi16(q, y), scales2(sa, sb));
}

static inline int bsum_dot(const int16_t *bsums, const int16_t *w16)
{
	I8 b = LDI(bsums), w = LDI(w16);
	return hsum_i32(_mm256_madd_epi16(b, w));
}

void isq_vec_dot_q2_K_q8_K_avx2(int64_t n, float *s, const void *vx, const void *vy)
{
	const struct block_q2_K *x = vx;
	const struct block_q8_K *y = vy;
	const I8 m3 = _mm256_set1_epi8(3);
	float sum = 0.0f;
	for (int64_t i = 0; i < n / QK_K; i++) {
		int16_t mins[16];
		for (int j = 0; j < 16; j++)
			mins[j] = (int16_t)(x[i].scales[j] >> 4);
		I8 acc = _mm256_setzero_si256();
		for (int h = 0; h < 2; h++) {
			I8 q = LDI(x[i].qs + 32 * h);
			for (int k = 0; k < 4; k++) {
				const int j = 8 * h + 2 * k;
				I8 c = _mm256_and_si256(_mm256_srli_epi16(q, 2 * k), m3);
				acc = _mm256_add_epi32(acc, dot32(c, LDI(y[i].qs + 128 * h + 32 * k),
								  x[i].scales[j] & 15, x[i].scales[j + 1] & 15));
			}
		}
		const int isum = hsum_i32(acc), summ = bsum_dot(y[i].bsums, mins);
		const float d = y[i].d * f16(x[i].d), dmin = y[i].d * f16(x[i].dmin);
		sum += d * (float)isum - dmin * (float)summ;
	}
	*s = sum;
}

void isq_vec_dot_q3_K_q8_K_avx2(int64_t n, float *s, const void *vx, const void *vy)
{
	const struct block_q3_K *x = vx;
	const struct block_q8_K *y = vy;
	const I8 m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
	float sum = 0.0f;
	for (int64_t i = 0; i < n / QK_K; i++) {
		int8_t sc[16];
		int16_t off[16];
		isq_q3_K_unpack_scales(x[i].scales, sc);
		for (int j = 0; j < 16; j++)
			off[j] = (int16_t)(-4 * sc[j]);
		I8 acc = _mm256_setzero_si256();
		const I8 hm = LDI(x[i].hmask);
		for (int h = 0; h < 2; h++) {
			I8 q = LDI(x[i].qs + 32 * h);
			for (int k = 0; k < 4; k++) {
				const int j = 8 * h + 2 * k;
				I8 lo = _mm256_and_si256(_mm256_srli_epi16(q, 2 * k), m3);
				I8 hb = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + k), one);
				I8 c = _mm256_or_si256(lo, _mm256_slli_epi16(hb, 2)); /* code + 4 */
				acc = _mm256_add_epi32(acc, dot32(c, LDI(y[i].qs + 128 * h + 32 * k), sc[j],
								  sc[j + 1]));
			}
		}
		const int isum = hsum_i32(acc) + bsum_dot(y[i].bsums, off);
		sum += (y[i].d * f16(x[i].d)) * (float)isum;
	}
	*s = sum;
}

static inline void dot_q45(int64_t n, float *s, const void *vx, const void *vy, const int five)
{
	const struct block_q8_K *y = vy;
	const I8 m4 = _mm256_set1_epi8(15), one = _mm256_set1_epi8(1);
	float sum = 0.0f;
	for (int64_t i = 0; i < n / QK_K; i++) {
		const struct block_q4_K *x4 = (const struct block_q4_K *)vx + i;
		const struct block_q5_K *x5 = (const struct block_q5_K *)vx + i;
		const uint8_t *qs = five ? x5->qs : x4->qs;
		uint8_t sc[8], m[8];
		int16_t mins[16];
		isq_q4_K_unpack_scales(five ? x5->scales : x4->scales, sc, m);
		for (int j = 0; j < 8; j++)
			mins[2 * j] = mins[2 * j + 1] = m[j];
		I8 acc = _mm256_setzero_si256(), qh = five ? LDI(x5->qh) : _mm256_setzero_si256();
		for (int c = 0; c < 4; c++) {
			I8 q = LDI(qs + 32 * c);
			I8 lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
			if (five) {
				lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one), 4));
				hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one), 4));
			}
			acc = _mm256_add_epi32(acc, dot32(lo, LDI(y[i].qs + 64 * c), sc[2 * c], sc[2 * c]));
			acc = _mm256_add_epi32(acc, dot32(hi, LDI(y[i].qs + 64 * c + 32), sc[2 * c + 1], sc[2 * c + 1]));
		}
		const int isum = hsum_i32(acc), summ = bsum_dot(y[i].bsums, mins);
		const uint16_t dh = five ? x5->d : x4->d, mh = five ? x5->dmin : x4->dmin;
		const float d = y[i].d * f16(dh), dmin = y[i].d * f16(mh);
		sum += d * (float)isum - dmin * (float)summ;
	}
	*s = sum;
}

/*
 * Q4_K: the 6-bit scales and mins unpacked with word operations, the scales
 * broadcast per sub-block by byte shuffles, the mins folded in from Q8_K's
 * block sums, and one float accumulator vector across super-blocks (a
 * horizontal sum only at the end): about twice the rate of the generic
 * Q4_K/Q5_K loop, which unpacks and sums per super-block in scalar code.
 */
void isq_vec_dot_q4_K_q8_K_avx2(int64_t n, float *s, const void *vx, const void *vy)
{
	const struct block_q4_K *x = vx;
	const struct block_q8_K *y = vy;
	const I8 m4 = _mm256_set1_epi8(15);
	__m256 acc = _mm256_setzero_ps();
	__m128 accm = _mm_setzero_ps();
	for (int64_t i = 0; i < n / QK_K; i++) {
		uint32_t w[3];
		memcpy(w, x[i].scales, 12);
		const uint32_t s_lo = w[0] & 0x3f3f3f3fu, m_lo = w[1] & 0x3f3f3f3fu;
		const uint32_t s_hi = (w[2] & 0x0f0f0f0fu) | (((w[0] >> 6) & 0x03030303u) << 4);
		const uint32_t m_hi = ((w[2] >> 4) & 0x0f0f0f0fu) | (((w[1] >> 6) & 0x03030303u) << 4);
		/* 16-bit lanes: scales 0..7, then mins 0..7 */
		const I8 sm = _mm256_cvtepu8_epi16(_mm_set_epi32((int)m_hi, (int)m_lo, (int)s_hi, (int)s_lo));
		const __m128i mins = _mm256_extracti128_si256(sm, 1);
		/* Q8_K's sums per 16 -> per 32 elements, times the mins */
		const I8 bs = LDI(y[i].bsums);
		const __m128i b32 = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
		const __m128i pm = _mm_madd_epi16(mins, b32);
		const float dmin = y[i].d * f16(x[i].dmin);
		accm = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(pm), accm);
		const __m128i sc128 = _mm256_castsi256_si128(sm);
		const I8 sc = _mm256_set_m128i(sc128, sc128);
		I8 sumi = _mm256_setzero_si256();
		for (int c = 0; c < 4; c++) {
			/* 16-bit lane e of sc to every lane: bytes 2e, 2e+1 */
			const I8 sh_l = _mm256_set1_epi16((short)(0x0100 * (4 * c + 1) + 4 * c));
			const I8 sh_h = _mm256_set1_epi16((short)(0x0100 * (4 * c + 3) + 4 * c + 2));
			const I8 q = LDI(x[i].qs + 32 * c);
			const I8 lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
			const I8 pl = _mm256_madd_epi16(_mm256_shuffle_epi8(sc, sh_l),
							_mm256_maddubs_epi16(lo, LDI(y[i].qs + 64 * c)));
			const I8 ph = _mm256_madd_epi16(_mm256_shuffle_epi8(sc, sh_h),
							_mm256_maddubs_epi16(hi, LDI(y[i].qs + 64 * c + 32)));
			sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
		}
		const float d = y[i].d * f16(x[i].d);
		acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
	}
	__m128 t = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
	t = _mm_sub_ps(t, accm);
	t = _mm_add_ps(t, _mm_movehl_ps(t, t));
	t = _mm_add_ss(t, _mm_movehdup_ps(t));
	*s = _mm_cvtss_f32(t);
}

void isq_vec_dot_q5_K_q8_K_avx2(int64_t n, float *s, const void *vx, const void *vy)
{
	dot_q45(n, s, vx, vy, 1);
}

/*
 * Q6_K: codes 0..63 against Q8_K bytes; the -32 offset is taken once per
 * super-block from the block sums (sum of scale_j * bsum_j, times 32); the
 * 16 signed sub-block scales are widened once and broadcast by shuffles;
 * one float accumulator vector across super-blocks.
 */
void isq_vec_dot_q6_K_q8_K_avx2(int64_t n, float *s, const void *vx, const void *vy)
{
	const struct block_q6_K *x = vx;
	const struct block_q8_K *y = vy;
	const I8 m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3);
	__m256 acc = _mm256_setzero_ps();
	for (int64_t i = 0; i < n / QK_K; i++) {
		const I8 sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)x[i].scales));
		/* -32 * sum_j scale_j * bsum_j, as 8 lanes */
		I8 sumi = _mm256_slli_epi32(_mm256_madd_epi16(LDI(y[i].bsums), sc16), 5);
		sumi = _mm256_sub_epi32(_mm256_setzero_si256(), sumi);
		for (int h = 0; h < 2; h++) {
			/* scales 8h .. 8h+7 in both 128-bit lanes */
			const I8 sc = h ? _mm256_permute4x64_epi64(sc16, 0xee) : _mm256_permute4x64_epi64(sc16, 0x44);
			I8 l0 = LDI(x[i].ql + 64 * h), l1 = LDI(x[i].ql + 64 * h + 32);
			I8 qh = LDI(x[i].qh + 32 * h);
			I8 q[4];
			q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4));
			q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
					       _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4));
			q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
					       _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4));
			q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
					       _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4));
			for (int k = 0; k < 4; k++) {
				/* low 16 elements take scale 2k, high 16 take 2k+1 (of this half) */
				const I8 sh = _mm256_set_m128i(_mm_set1_epi16((short)(0x0100 * (4 * k + 3) + 4 * k + 2)),
							       _mm_set1_epi16((short)(0x0100 * (4 * k + 1) + 4 * k)));
				const I8 p = _mm256_maddubs_epi16(q[k], LDI(y[i].qs + 128 * h + 32 * k));
				sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_shuffle_epi8(sc, sh), p));
			}
		}
		const float d = y[i].d * f16(x[i].d);
		acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
	}
	__m128 t = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
	t = _mm_add_ps(t, _mm_movehl_ps(t, t));
	t = _mm_add_ss(t, _mm_movehdup_ps(t));
	*s = _mm_cvtss_f32(t);
}

void isq_quantize_row_q8_K_avx2(const float *x, void *vy, int64_t n)
{
	struct block_q8_K *y = vy;
	const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
	const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
	ISQ_ASSERT(n % QK_K == 0);
	for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
		__m256 mv = _mm256_setzero_ps();
		for (int j = 0; j < QK_K; j += 8)
			mv = _mm256_max_ps(mv, _mm256_and_ps(_mm256_loadu_ps(x + j), absm));
		__m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mv), _mm256_extractf128_ps(mv, 1));
		m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
		m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
		const float amax = _mm_cvtss_f32(m4);
		if (!amax) {
			memset(&y[i], 0, sizeof(y[i]));
			continue;
		}
		/* the first element of that magnitude gives the sign, as in the reference
		 * (bounded: a NaN in the input must not walk off the block) */
		int jm = 0;
		while (jm < QK_K - 1 && fabsf(x[jm]) != amax)
			jm++;
		const float iscale = -127.0f / x[jm];
		const __m256 is = _mm256_set1_ps(iscale);
		const __m256i top = _mm256_set1_epi32(127);
		for (int j = 0; j < QK_K; j += 32) {
			__m256i q0 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(is, _mm256_loadu_ps(x + j))), top);
			__m256i q1 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(is, _mm256_loadu_ps(x + j + 8))), top);
			__m256i q2 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(is, _mm256_loadu_ps(x + j + 16))), top);
			__m256i q3 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(is, _mm256_loadu_ps(x + j + 24))), top);
			__m256i p01 = _mm256_packs_epi32(q0, q1), p23 = _mm256_packs_epi32(q2, q3);
			__m256i b = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), perm);
			_mm256_storeu_si256((__m256i *)(y[i].qs + j), b);
			/* block sums of 16: widen to 16 bits and add pairs of halves */
			__m256i w0 = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(b));
			__m256i w1 = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(b, 1));
			__m256i s0 = _mm256_madd_epi16(w0, _mm256_set1_epi16(1));
			__m256i s1 = _mm256_madd_epi16(w1, _mm256_set1_epi16(1));
			y[i].bsums[j / 16] = (int16_t)hsum_i32(s0);
			y[i].bsums[j / 16 + 1] = (int16_t)hsum_i32(s1);
		}
		y[i].d = 1.0f / iscale;
	}
}

size_t isq_quantize_q8_K_avx2(const float *src, void *dst, int64_t nrows, int64_t n_per_row,
			      const float *imatrix)
{
	const size_t rs = (size_t)(n_per_row / QK_K) * sizeof(struct block_q8_K);
	(void)imatrix;
	for (int64_t r = 0; r < nrows; r++)
		isq_quantize_row_q8_K_avx2(src + r * n_per_row, (uint8_t *)dst + (size_t)r * rs, n_per_row);
	return rs * (size_t)nrows;
}
