/*
 * lanes.h - eight independent binary32 lanes: the vocabulary the block
 * encoders (encode.h) are written in.
 *
 * Included by a kernel file before encode.h.  By default the lanes are plain
 * C arrays (the portable reference); a file that defines ISQ_LANES_AVX2
 * before including this (the kernels/cpu/ files named -avx2.c, built with -mavx2 -mfma
 * -mf16c) gets AVX2 registers instead.  Every operation is the same IEEE
 * binary32 operation, rounded once, in both builds, and lanes never mix
 * except in lv_hsum, whose order is fixed; so an encoder written here gives
 * bit-identical results either way.  Rules for code using it:
 *   - no FMA (the reference would need a libm call per element), no
 *     reciprocal estimates, no -ffast-math;
 *   - lv_round and lv_toi only see values already clamped to a small range;
 *   - a lane must never hold NaN (guard divisions by zero with lv_sel).
 * Masks are the result of comparisons (all bits set or clear per lane).
 */
#ifndef ISQ_LANES_H
#define ISQ_LANES_H

#include <stdint.h>
#include <string.h>

#include "fp.h"

#define LANES 8

#ifdef ISQ_LANES_AVX2
#include <immintrin.h>

typedef __m256 vf;
typedef __m256i vi;
typedef __m256 vm;

static inline vf lv_set(float a) { return _mm256_set1_ps(a); }
static inline vf lv_zero(void) { return _mm256_setzero_ps(); }
static inline vf lv_ld(const float *p) { return _mm256_loadu_ps(p); }
static inline void lv_st(float *p, vf a) { _mm256_storeu_ps(p, a); }
static inline vf lv_add(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf lv_sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf lv_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf lv_div(vf a, vf b) { return _mm256_div_ps(a, b); }
/* a < b ? a : b and a > b ? a : b, as minps/maxps */
static inline vf lv_min(vf a, vf b) { return _mm256_min_ps(a, b); }
static inline vf lv_max(vf a, vf b) { return _mm256_max_ps(a, b); }
static inline vf lv_abs(vf a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
/* round to nearest integer, ties to even (|a| small) */
static inline vf lv_round(vf a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
/* round toward zero */
static inline vf lv_trunc(vf a) { return _mm256_round_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC); }
/* the nearest binary16 value, as float (RNE; overflow gives Inf) */
static inline vf lv_h16(vf a) { return _mm256_cvtph_ps(_mm256_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT)); }
static inline void lv_h16_bits(uint16_t out[LANES], vf a)
{
	_mm_storeu_si128((__m128i *)(void *)out, _mm256_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT));
}
static inline vm lv_lt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
static inline vm lv_le(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LE_OQ); }
static inline vm lv_gt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
static inline vm lv_ge(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
static inline vm lv_eq(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
static inline vm lv_and(vm a, vm b) { return _mm256_and_ps(a, b); }
static inline vm lv_or(vm a, vm b) { return _mm256_or_ps(a, b); }
static inline vm lv_andnot(vm a, vm b) { return _mm256_andnot_ps(a, b); } /* ~a & b */
/* m ? a : b */
static inline vf lv_sel(vm m, vf a, vf b) { return _mm256_blendv_ps(b, a, m); }
static inline int lv_any(vm m) { return _mm256_movemask_ps(m) != 0; }
static inline int lv_bits(vm m) { return _mm256_movemask_ps(m); }
/* m ? a : 0.0f */
static inline vf lv_keep(vm m, vf a) { return _mm256_and_ps(m, a); }

static inline vi li_set(int32_t a) { return _mm256_set1_epi32(a); }
static inline vi li_add(vi a, vi b) { return _mm256_add_epi32(a, b); }
static inline vi li_sub(vi a, vi b) { return _mm256_sub_epi32(a, b); }
static inline vi li_and(vi a, vi b) { return _mm256_and_si256(a, b); }
static inline vi li_or(vi a, vi b) { return _mm256_or_si256(a, b); }
static inline vi li_shl(vi a, int n) { return _mm256_sll_epi32(a, _mm_cvtsi32_si128(n)); }
static inline vi li_shr(vi a, int n) { return _mm256_srl_epi32(a, _mm_cvtsi32_si128(n)); }
static inline vi li_shlv(vi a, vi n) { return _mm256_sllv_epi32(a, n); }
static inline vi li_min(vi a, vi b) { return _mm256_min_epi32(a, b); }
static inline vi li_max(vi a, vi b) { return _mm256_max_epi32(a, b); }
/* m ? a : 0 */
static inline vi li_keep(vm m, vi a) { return _mm256_and_si256(_mm256_castps_si256(m), a); }
static inline vi li_sel(vm m, vi a, vi b) { return _mm256_blendv_epi8(b, a, _mm256_castps_si256(m)); }
/* an integral float (|a| < 2^31) to int, and back */
static inline vi lv_toi(vf a) { return _mm256_cvtps_epi32(a); }
static inline vf li_tof(vi a) { return _mm256_cvtepi32_ps(a); }
static inline vi lv_bits_of(vf a) { return _mm256_castps_si256(a); }
static inline vf li_as_float(vi a) { return _mm256_castsi256_ps(a); }
static inline vi li_ld(const int32_t *p) { return _mm256_loadu_si256((const __m256i *)(const void *)p); }
static inline void li_st(int32_t *p, vi a) { _mm256_storeu_si256((__m256i *)(void *)p, a); }
/* t[i & 7] per lane */
static inline vf lv_lut8(const float t[8], vi i) { return _mm256_permutevar8x32_ps(_mm256_loadu_ps(t), i); }
/* t[i & 15] per lane */
static inline vf lv_lut16(const float t[16], vi i)
{
	vf lo = _mm256_permutevar8x32_ps(_mm256_loadu_ps(t), i);
	vf hi = _mm256_permutevar8x32_ps(_mm256_loadu_ps(t + 8), i);
	return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(i, 28)));
}
/* ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)) */
static inline float lv_hsum(vf a)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
	__m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
	return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

/* 8x8 transpose in registers: r[k] lane l <-> r[l] lane k */
static inline void lv_tr8(__m256 r[8])
{
	__m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
	__m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
	__m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
	__m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
	__m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
	__m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
	__m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
	__m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
	r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
	r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
	r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
	r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
	r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
	r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
	r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
	r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/*
 * Transpose: dst[i * 8 + l] = src[l][i] for i < n (a multiple of 8) and the
 * eight lanes l; NULL sources give zeros.
 */
static inline void lv_transpose(float *dst, const float *const src[LANES], int n)
{
	int full = 1;
	for (int l = 0; l < 8; l++)
		full &= src[l] != NULL;
	for (int i0 = 0; i0 < n; i0 += 8) {
		__m256 r[8];
		if (full) {
			for (int l = 0; l < 8; l++)
				r[l] = _mm256_loadu_ps(src[l] + i0);
		} else {
			for (int l = 0; l < 8; l++)
				r[l] = src[l] ? _mm256_loadu_ps(src[l] + i0) : _mm256_setzero_ps();
		}
		lv_tr8(r);
		for (int k = 0; k < 8; k++)
			_mm256_storeu_ps(dst + (i0 + k) * 8, r[k]);
	}
}

/* out[l][j] = low byte of src[j * 8 + l] for j < n (a multiple of 8) and lanes l < nv */
static inline void lv_put_bytes(uint8_t *const out[LANES], int nv, const int32_t *src, int n)
{
	const __m256i ff = _mm256_set1_epi32(255);
	for (int j0 = 0; j0 < n; j0 += 8) {
		__m256 r[8];
		for (int k = 0; k < 8; k++)
			r[k] = _mm256_castsi256_ps(
				_mm256_and_si256(_mm256_loadu_si256((const __m256i *)(const void *)(src + (j0 + k) * 8)), ff));
		lv_tr8(r);
		for (int l = 0; l < nv; l++) {
			__m256i v = _mm256_castps_si256(r[l]);
			__m128i p = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
			_mm_storel_epi64((__m128i *)(void *)(out[l] + j0), _mm_packus_epi16(p, p));
		}
	}
}

#else /* the reference: arrays, one loop per operation */

/*
 * Under AddressSanitizer the operations stay out of line: inlined, every
 * one of several hundred uses becomes an instrumented loop and the file
 * takes minutes to compile.
 */
#if defined(__SANITIZE_ADDRESS__)
#define LV_OP static __attribute__((noinline, unused))
#else
#define LV_OP static inline
#endif

typedef struct {
	float v[LANES];
} vf;
typedef struct {
	int32_t v[LANES];
} vi;
typedef vi vm;

#define LV_MAP(T, expr)                          \
	do {                                     \
		for (int l = 0; l < LANES; l++)  \
			r.v[l] = (expr);         \
	} while (0)

LV_OP vf lv_set(float a) { vf r; LV_MAP(vf, a); return r; }
LV_OP vf lv_zero(void) { return lv_set(0.0f); }
LV_OP vf lv_ld(const float *p) { vf r; memcpy(r.v, p, sizeof(r.v)); return r; }
LV_OP void lv_st(float *p, vf a) { memcpy(p, a.v, sizeof(a.v)); }
LV_OP vf lv_add(vf a, vf b) { vf r; LV_MAP(vf, a.v[l] + b.v[l]); return r; }
LV_OP vf lv_sub(vf a, vf b) { vf r; LV_MAP(vf, a.v[l] - b.v[l]); return r; }
LV_OP vf lv_mul(vf a, vf b) { vf r; LV_MAP(vf, a.v[l] * b.v[l]); return r; }
LV_OP vf lv_div(vf a, vf b) { vf r; LV_MAP(vf, a.v[l] / b.v[l]); return r; }
LV_OP vf lv_min(vf a, vf b) { vf r; LV_MAP(vf, a.v[l] < b.v[l] ? a.v[l] : b.v[l]); return r; }
LV_OP vf lv_max(vf a, vf b) { vf r; LV_MAP(vf, a.v[l] > b.v[l] ? a.v[l] : b.v[l]); return r; }
LV_OP vf lv_abs(vf a) { vf r; LV_MAP(vf, isq_f32_from_bits(isq_f32_bits(a.v[l]) & 0x7fffffffu)); return r; }
LV_OP float lv_round1(float a)
{
	/* below 2^23, adding 2^23 rounds to an integer (ties to even) and subtracting it is exact */
	float m = isq_f32_from_bits(isq_f32_bits(a) & 0x7fffffffu);
	if (!(m < 8388608.0f))
		return a;
	float t = (m + 8388608.0f) - 8388608.0f;
	return isq_f32_from_bits(isq_f32_bits(t) | (isq_f32_bits(a) & 0x80000000u));
}
LV_OP vf lv_round(vf a) { vf r; LV_MAP(vf, lv_round1(a.v[l])); return r; }
LV_OP float lv_trunc1(float a)
{
	float m = isq_f32_from_bits(isq_f32_bits(a) & 0x7fffffffu);
	if (!(m < 8388608.0f))
		return a;
	float t = (float)(int32_t)m;
	return isq_f32_from_bits(isq_f32_bits(t) | (isq_f32_bits(a) & 0x80000000u));
}
LV_OP vf lv_trunc(vf a) { vf r; LV_MAP(vf, lv_trunc1(a.v[l])); return r; }
LV_OP vf lv_h16(vf a) { vf r; LV_MAP(vf, isq_fp16_to_fp32(isq_fp32_to_fp16(a.v[l]))); return r; }
LV_OP void lv_h16_bits(uint16_t out[LANES], vf a)
{
	for (int l = 0; l < LANES; l++)
		out[l] = isq_fp32_to_fp16(a.v[l]);
}
LV_OP vm lv_lt(vf a, vf b) { vm r; LV_MAP(vm, a.v[l] < b.v[l] ? -1 : 0); return r; }
LV_OP vm lv_le(vf a, vf b) { vm r; LV_MAP(vm, a.v[l] <= b.v[l] ? -1 : 0); return r; }
LV_OP vm lv_gt(vf a, vf b) { vm r; LV_MAP(vm, a.v[l] > b.v[l] ? -1 : 0); return r; }
LV_OP vm lv_ge(vf a, vf b) { vm r; LV_MAP(vm, a.v[l] >= b.v[l] ? -1 : 0); return r; }
LV_OP vm lv_eq(vf a, vf b) { vm r; LV_MAP(vm, a.v[l] == b.v[l] ? -1 : 0); return r; }
LV_OP vm lv_and(vm a, vm b) { vm r; LV_MAP(vm, a.v[l] & b.v[l]); return r; }
LV_OP vm lv_or(vm a, vm b) { vm r; LV_MAP(vm, a.v[l] | b.v[l]); return r; }
LV_OP vm lv_andnot(vm a, vm b) { vm r; LV_MAP(vm, ~a.v[l] & b.v[l]); return r; }
LV_OP vf lv_sel(vm m, vf a, vf b) { vf r; LV_MAP(vf, m.v[l] ? a.v[l] : b.v[l]); return r; }
LV_OP int lv_any(vm m)
{
	int any = 0;
	for (int l = 0; l < LANES; l++)
		any |= m.v[l];
	return any != 0;
}
LV_OP int lv_bits(vm m)
{
	int b = 0;
	for (int l = 0; l < LANES; l++)
		b |= (m.v[l] != 0) << l;
	return b;
}
LV_OP vf lv_keep(vm m, vf a) { vf r; LV_MAP(vf, m.v[l] ? a.v[l] : 0.0f); return r; }

LV_OP vi li_set(int32_t a) { vi r; LV_MAP(vi, a); return r; }
LV_OP vi li_add(vi a, vi b) { vi r; LV_MAP(vi, (int32_t)((uint32_t)a.v[l] + (uint32_t)b.v[l])); return r; }
LV_OP vi li_sub(vi a, vi b) { vi r; LV_MAP(vi, (int32_t)((uint32_t)a.v[l] - (uint32_t)b.v[l])); return r; }
LV_OP vi li_and(vi a, vi b) { vi r; LV_MAP(vi, a.v[l] & b.v[l]); return r; }
LV_OP vi li_or(vi a, vi b) { vi r; LV_MAP(vi, a.v[l] | b.v[l]); return r; }
LV_OP vi li_shl(vi a, int n) { vi r; LV_MAP(vi, (int32_t)((uint32_t)a.v[l] << n)); return r; }
LV_OP vi li_shr(vi a, int n) { vi r; LV_MAP(vi, (int32_t)((uint32_t)a.v[l] >> n)); return r; }
LV_OP vi li_shlv(vi a, vi n)
{
	vi r;
	LV_MAP(vi, (uint32_t)n.v[l] > 31 ? 0 : (int32_t)((uint32_t)a.v[l] << n.v[l]));
	return r;
}
LV_OP vi li_min(vi a, vi b) { vi r; LV_MAP(vi, a.v[l] < b.v[l] ? a.v[l] : b.v[l]); return r; }
LV_OP vi li_max(vi a, vi b) { vi r; LV_MAP(vi, a.v[l] > b.v[l] ? a.v[l] : b.v[l]); return r; }
LV_OP vi li_keep(vm m, vi a) { vi r; LV_MAP(vi, m.v[l] & a.v[l]); return r; }
LV_OP vi li_sel(vm m, vi a, vi b) { vi r; LV_MAP(vi, m.v[l] ? a.v[l] : b.v[l]); return r; }
LV_OP vi lv_toi(vf a) { vi r; LV_MAP(vi, (int32_t)a.v[l]); return r; }
LV_OP vf li_tof(vi a) { vf r; LV_MAP(vf, (float)a.v[l]); return r; }
LV_OP vi lv_bits_of(vf a) { vi r; LV_MAP(vi, (int32_t)isq_f32_bits(a.v[l])); return r; }
LV_OP vf li_as_float(vi a) { vf r; LV_MAP(vf, isq_f32_from_bits((uint32_t)a.v[l])); return r; }
LV_OP vi li_ld(const int32_t *p) { vi r; memcpy(r.v, p, sizeof(r.v)); return r; }
LV_OP void li_st(int32_t *p, vi a) { memcpy(p, a.v, sizeof(a.v)); }
LV_OP vf lv_lut8(const float t[8], vi i) { vf r; LV_MAP(vf, t[i.v[l] & 7]); return r; }
LV_OP vf lv_lut16(const float t[16], vi i) { vf r; LV_MAP(vf, t[i.v[l] & 15]); return r; }
LV_OP float lv_hsum(vf a)
{
	float s0 = a.v[0] + a.v[4], s1 = a.v[1] + a.v[5], s2 = a.v[2] + a.v[6], s3 = a.v[3] + a.v[7];
	return (s0 + s2) + (s1 + s3);
}
LV_OP void lv_transpose(float *dst, const float *const src[LANES], int n)
{
	for (int l = 0; l < LANES; l++)
		for (int i = 0; i < n; i++)
			dst[i * LANES + l] = src[l] ? src[l][i] : 0.0f;
}
LV_OP void lv_put_bytes(uint8_t *const out[LANES], int nv, const int32_t *src, int n)
{
	for (int l = 0; l < nv; l++)
		for (int j = 0; j < n; j++)
			out[l][j] = (uint8_t)src[j * LANES + l];
}
#undef LV_MAP
#endif

/* Lane l of a. */
static inline float lv_get(vf a, int l)
{
	float t[LANES];
	lv_st(t, a);
	return t[l];
}

#endif
