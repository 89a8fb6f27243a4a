/*
 * dot-avx2.c - AVX2 dot products of quants.h: 32 codes per block as bytes,
 * multiplied with the activation bytes by maddubs (|x| times y with x's
 * sign), summed to int32, then scaled by dx * dy with FMA.  They may differ
 * from the reference in the last bits; the float dots do not differ at all.
 */
#include "quants.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "blocks.h"
#include "fp.h"


static inline float h16(const uint16_t *p)
{
	return _cvtsh_ss(isq_le16(p));
}

static inline float hsum(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* 16 bytes of nibbles -> 32 bytes: low nibbles (elements 0..15), then high nibbles (16..31) */
static inline __m256i nibbles(const uint8_t *qs)
{
	__m128i q = _mm_loadu_si128((const __m128i *)(const void *)qs);
	__m256i b = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);
	return _mm256_and_si256(b, _mm256_set1_epi8(15));
}

/* byte j = 0x10 where bit j of qh is set */
static inline __m256i fifth_bits(uint32_t qh)
{
	const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3,
					      3, 3, 3, 3, 3, 3);
	const __m256i bit = _mm256_set1_epi64x(0x8040201008040201ll);
	__m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), shuf);
	b = _mm256_cmpeq_epi8(_mm256_and_si256(b, bit), bit);
	return _mm256_and_si256(b, _mm256_set1_epi8(0x10));
}

/* 8 int32 sums of x * y over pairs of bytes, both signed with |x| <= 127 and y != -128 */
static inline __m256i dot_ss(__m256i x, __m256i y)
{
	__m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
	return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

static inline __m256i dot_us(__m256i ux, __m256i y)
{
	return _mm256_madd_epi16(_mm256_maddubs_epi16(ux, y), _mm256_set1_epi16(1));
}

static inline __m256i ld32(const int8_t *p)
{
	return _mm256_loadu_si256((const __m256i *)(const void *)p);
}

static inline __m256i lookup(const int8_t t[16], __m256i idx)
{
	__m128i t128 = _mm_loadu_si128((const __m128i *)(const void *)t);
	return _mm256_shuffle_epi8(_mm256_set_m128i(t128, t128), idx);
}

void isq_vec_dot_q4_0_q8_0_avx2(int64_t n, float *s, const void *vx, const void *vy)
{
	const struct block_q4_0 *x = vx;
	const struct block_q8_0 *y = vy;
	__m256 acc = _mm256_setzero_ps();
	for (int64_t i = 0; i < n / 32; i++) {
		__m256i q = _mm256_sub_epi8(nibbles(x[i].qs), _mm256_set1_epi8(8));
		__m256 p = _mm256_cvtepi32_ps(dot_ss(q, ld32(y[i].qs)));
		acc = _mm256_fmadd_ps(_mm256_set1_ps(h16(&x[i].d) * h16(&y[i].d)), p, acc);
	}
	*s = hsum(acc);
}

void isq_vec_dot_q4_1_q8_1_avx2(int64_t n, float *s, const void *vx, const void *vy)
{
	const struct block_q4_1 *x = vx;
	const struct block_q8_1 *y = vy;
	__m256 acc = _mm256_setzero_ps();
	float mins = 0;
	for (int64_t i = 0; i < n / 32; i++) {
		__m256 p = _mm256_cvtepi32_ps(dot_us(nibbles(x[i].qs), ld32(y[i].qs)));
		acc = _mm256_fmadd_ps(_mm256_set1_ps(h16(&x[i].d) * h16(&y[i].d)), p, acc);
		mins += h16(&x[i].m) * h16(&y[i].s);
	}
	*s = hsum(acc) + mins;
}

void isq_vec_dot_q5_0_q8_0_avx2(int64_t n, float *s, const void *vx, const void *vy)
{
	const struct block_q5_0 *x = vx;
	const struct block_q8_0 *y = vy;
	__m256 acc = _mm256_setzero_ps();
	for (int64_t i = 0; i < n / 32; i++) {
		__m256i q = _mm256_or_si256(nibbles(x[i].qs), fifth_bits(isq_le32(x[i].qh)));
		q = _mm256_sub_epi8(q, _mm256_set1_epi8(16));
		__m256 p = _mm256_cvtepi32_ps(dot_ss(q, ld32(y[i].qs)));
		acc = _mm256_fmadd_ps(_mm256_set1_ps(h16(&x[i].d) * h16(&y[i].d)), p, acc);
	}
	*s = hsum(acc);
}

void isq_vec_dot_q5_1_q8_1_avx2(int64_t n, float *s, const void *vx, const void *vy)
{
	const struct block_q5_1 *x = vx;
	const struct block_q8_1 *y = vy;
	__m256 acc = _mm256_setzero_ps();
	float mins = 0;
	for (int64_t i = 0; i < n / 32; i++) {
		__m256i q = _mm256_or_si256(nibbles(x[i].qs), fifth_bits(isq_le32(x[i].qh)));
		__m256 p = _mm256_cvtepi32_ps(dot_us(q, ld32(y[i].qs)));
		acc = _mm256_fmadd_ps(_mm256_set1_ps(h16(&x[i].d) * h16(&y[i].d)), p, acc);
		mins += h16(&x[i].m) * h16(&y[i].s);
	}
	*s = hsum(acc) + mins;
}

/*
 * Q8 codes are -127..127 from the encoders, but a block read from a file may
 * hold -128: widen to 16 bits so every byte pattern multiplies correctly.
 */
static inline __m256i dot_s8_wide(__m256i x, __m256i y)
{
	__m256i xl = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(x));
	__m256i xh = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(x, 1));
	__m256i yl = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(y));
	__m256i yh = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(y, 1));
	return _mm256_add_epi32(_mm256_madd_epi16(xl, yl), _mm256_madd_epi16(xh, yh));
}

void isq_vec_dot_q8_0_q8_0_avx2(int64_t n, float *s, const void *vx, const void *vy)
{
	const struct block_q8_0 *x = vx, *y = vy;
	__m256 acc = _mm256_setzero_ps();
	for (int64_t i = 0; i < n / 32; i++) {
		__m256 p = _mm256_cvtepi32_ps(dot_s8_wide(ld32(x[i].qs), ld32(y[i].qs)));
		acc = _mm256_fmadd_ps(_mm256_set1_ps(h16(&x[i].d) * h16(&y[i].d)), p, acc);
	}
	*s = hsum(acc);
}

void isq_vec_dot_q8_1_q8_1_avx2(int64_t n, float *s, const void *vx, const void *vy)
{
	const struct block_q8_1 *x = vx, *y = vy;
	__m256 acc = _mm256_setzero_ps();
	for (int64_t i = 0; i < n / 32; i++) {
		__m256 p = _mm256_cvtepi32_ps(dot_s8_wide(ld32(x[i].qs), ld32(y[i].qs)));
		acc = _mm256_fmadd_ps(_mm256_set1_ps(h16(&x[i].d) * h16(&y[i].d)), p, acc);
	}
	*s = hsum(acc);
}

/* 4-bit weights (|x| <= 127) against activations from the encoders (|y| <= 127: see quants.h). */
static inline __m256i dot_w4(__m256i x, __m256i y)
{
	return dot_ss(x, y);
}

void isq_vec_dot_iq4_nl_q8_0_avx2(int64_t n, float *s, const void *vx, const void *vy)
{
	const struct block_iq4_nl *x = vx;
	const struct block_q8_0 *y = vy;
	__m256 acc = _mm256_setzero_ps();
	for (int64_t i = 0; i < n / 32; i++) {
		__m256 p = _mm256_cvtepi32_ps(dot_w4(lookup(isq_iq4_values, nibbles(x[i].qs)), ld32(y[i].qs)));
		acc = _mm256_fmadd_ps(_mm256_set1_ps(h16(&x[i].d) * h16(&y[i].d)), p, acc);
	}
	*s = hsum(acc);
}

void isq_vec_dot_iq4_xs_q8_K_avx2(int64_t n, float *s, const void *vx, const void *vy)
{
	const struct block_iq4_xs *x = vx;
	const struct block_q8_K *y = vy;
	__m256 acc = _mm256_setzero_ps();
	for (int64_t i = 0; i < n / 256; i++) {
		uint16_t sh = isq_le16(&x[i].scales_h);
		__m256i st = _mm256_setzero_si256();
		for (int j = 0; j < 8; j++) {
			int ls = ((x[i].scales_l[j / 2] >> (4 * (j % 2))) & 15) | ((sh >> (2 * j)) & 3) << 4;
			__m256i q = lookup(isq_iq4_values, nibbles(x[i].qs + 16 * j));
			st = _mm256_add_epi32(st, _mm256_mullo_epi32(dot_w4(q, ld32(y[i].qs + 32 * j)),
								     _mm256_set1_epi32(ls - 32)));
		}
		float d = h16(&x[i].d) * isq_f32_from_bits(isq_le32(&y[i].d));
		acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(st), acc);
	}
	*s = hsum(acc);
}

void isq_vec_dot_mxfp4_q8_0_avx2(int64_t n, float *s, const void *vx, const void *vy)
{
	const struct block_mxfp4 *x = vx;
	const struct block_q8_0 *y = vy;
	__m256 acc = _mm256_setzero_ps();
	for (int64_t i = 0; i < n / 32; i++) {
		uint8_t e = x[i].e;
		float dx = isq_f32_from_bits(e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23);
		__m256 p = _mm256_cvtepi32_ps(dot_w4(lookup(isq_mxfp4_values, nibbles(x[i].qs)), ld32(y[i].qs)));
		acc = _mm256_fmadd_ps(_mm256_set1_ps(dx * h16(&y[i].d)), p, acc);
	}
	*s = hsum(acc);
}

/* ---- float dots: the reference's 32 partial sums (float.c), same operations, no FMA ---------- */

static inline float fold(__m256 a0, __m256 a1, __m256 a2, __m256 a3)
{
	return hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

#define AVX_FLOAT_DOT(name, T, LOAD, CVT)                                                              \
	void name(int64_t n, float *s, const void *vx, const void *vy)                                 \
	{                                                                                              \
		const T *x = vx, *y = vy;                                                              \
		__m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                           \
		int64_t i = 0;                                                                         \
		for (; i + 32 <= n; i += 32) {                                                         \
			a0 = _mm256_add_ps(a0, _mm256_mul_ps(LOAD(x + i), LOAD(y + i)));               \
			a1 = _mm256_add_ps(a1, _mm256_mul_ps(LOAD(x + i + 8), LOAD(y + i + 8)));       \
			a2 = _mm256_add_ps(a2, _mm256_mul_ps(LOAD(x + i + 16), LOAD(y + i + 16)));     \
			a3 = _mm256_add_ps(a3, _mm256_mul_ps(LOAD(x + i + 24), LOAD(y + i + 24)));     \
		}                                                                                      \
		for (; i + 8 <= n; i += 8)                                                             \
			a0 = _mm256_add_ps(a0, _mm256_mul_ps(LOAD(x + i), LOAD(y + i)));               \
		float sum = fold(a0, a1, a2, a3);                                                      \
		for (; i < n; i++)                                                                     \
			sum += CVT(x[i]) * CVT(y[i]);                                                  \
		*s = sum;                                                                              \
	}

static inline __m256 ld_f32(const float *p) { return _mm256_loadu_ps(p); }
static inline __m256 ld_f16(const uint16_t *p)
{
	return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}
static inline __m256 ld_bf16(const uint16_t *p)
{
	__m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
	return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}
#define F32_ID(v) (v)

AVX_FLOAT_DOT(isq_vec_dot_f32_f32_avx2, float, ld_f32, F32_ID)
AVX_FLOAT_DOT(isq_vec_dot_f16_f16_avx2, uint16_t, ld_f16, isq_fp16_to_fp32)
AVX_FLOAT_DOT(isq_vec_dot_bf16_bf16_avx2, uint16_t, ld_bf16, isq_bf16_to_fp32)
#endif
