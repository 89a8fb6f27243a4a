/*
 * mrs-avx2.c - AVX2 element loops of the mistral.rs-format kernels.  The
 * encoder loops (everything before the "table rows" mark) repeat the
 * reference code of kernels/{afq,hqq,fp8,f8q8,mxfp4-uqff}.c operation for
 * operation, one lane per element i % 8, so the bytes are the same; see
 * mrs-impl.h.  No FMA there on purpose.  The decoders and dot products
 * below the mark are free to differ in the last bits.
 */
#include <immintrin.h>

#include "mrs-impl.h"

#define F8 __m256
#define LD(p) _mm256_loadu_ps(p)
#define SET1(v) _mm256_set1_ps(v)
#define ADD(a, b) _mm256_add_ps(a, b)
#define SUB(a, b) _mm256_sub_ps(a, b)
#define MUL(a, b) _mm256_mul_ps(a, b)
#define DIV(a, b) _mm256_div_ps(a, b)

static inline float hsum8(F8 v)
{
	__m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
	__m128 s = _mm_add_ps(lo, hi);                          /* t0 t1 t2 t3 */
	__m128 s2 = _mm_add_ps(s, _mm_movehl_ps(s, s));         /* t0+t2, t1+t3 */
	__m128 s3 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));  /* (t0+t2)+(t1+t3) */
	return _mm_cvtss_f32(s3);
}

static inline F8 rne8(F8 v)
{
	const F8 c = SET1(12582912.0f);
	return SUB(ADD(v, c), c);
}

/* the reference's mrs_clamp: v < lo ? lo : v, then v > hi ? hi : v */
static inline F8 clamp8(F8 v, F8 lo, F8 hi)
{
	v = _mm256_blendv_ps(v, lo, _mm256_cmp_ps(v, lo, _CMP_LT_OQ));
	return _mm256_blendv_ps(v, hi, _mm256_cmp_ps(v, hi, _CMP_GT_OQ));
}

/* eight float codes (integers 0..255) to bytes */
static inline void store_codes(uint8_t *q, F8 v)
{
	__m256i i = _mm256_cvttps_epi32(v);
	__m128i lo = _mm256_castsi256_si128(i), hi = _mm256_extracti128_si256(i, 1);
	__m128i w = _mm_packus_epi32(lo, hi);
	_mm_storel_epi64((__m128i *)q, _mm_packus_epi16(w, w));
}

/* eight float codes (integers -128..127) to signed bytes */
static inline void store_codes_i8(int8_t *q, F8 v)
{
	__m256i i = _mm256_cvttps_epi32(v);
	__m128i lo = _mm256_castsi256_si128(i), hi = _mm256_extracti128_si256(i, 1);
	__m128i w = _mm_packs_epi32(lo, hi);
	_mm_storel_epi64((__m128i *)q, _mm_packs_epi16(w, w));
}

static inline F8 load_codes(const uint8_t *q)
{
	return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)q)));
}

static float afq_eval(const float *x, const float *w, int n, float s, float b, float id, float nmax, uint8_t *q)
{
	F8 acc = _mm256_setzero_ps(), vs = SET1(s), vb = SET1(b), vid = SET1(id), z = _mm256_setzero_ps(),
	   vn = SET1(nmax);
	for (int i = 0; i < n; i += 8) {
		F8 xv = LD(x + i);
		F8 v = rne8(clamp8(MUL(SUB(xv, vb), vid), z, vn));
		F8 r = SUB(xv, ADD(MUL(v, vs), vb));
		acc = ADD(acc, MUL(LD(w + i), MUL(r, r)));
		store_codes(q + i, v);
	}
	return hsum8(acc);
}

static void afq_codes(const float *x, int n, float mn, float is, float nmax, uint8_t *q)
{
	F8 vm = SET1(mn), vi = SET1(is), z = _mm256_setzero_ps(), vn = SET1(nmax);
	for (int i = 0; i < n; i += 8)
		store_codes(q + i, rne8(clamp8(MUL(SUB(LD(x + i), vm), vi), z, vn)));
}

static void afq_sums(const float *x, const float *w, const uint8_t *q, int n, float out[5])
{
	F8 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0;
	for (int i = 0; i < n; i += 8) {
		F8 lq = load_codes(q + i), wv = LD(w + i), xv = LD(x + i), wq = MUL(wv, lq);
		a0 = ADD(a0, wv);
		a1 = ADD(a1, wq);
		a2 = ADD(a2, MUL(wq, lq));
		a3 = ADD(a3, MUL(wv, xv));
		a4 = ADD(a4, MUL(wq, xv));
	}
	out[0] = hsum8(a0);
	out[1] = hsum8(a1);
	out[2] = hsum8(a2);
	out[3] = hsum8(a3);
	out[4] = hsum8(a4);
}

/* mrs_pow_m03, lane by lane */
static inline F8 pow_m03(F8 a)
{
	__m256i u = _mm256_castps_si256(a);
	F8 e = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(u, 23), _mm256_set1_epi32(127)));
	F8 m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(u, _mm256_set1_epi32(0x007fffff)),
						   _mm256_set1_epi32(0x3f800000)));
	F8 big = _mm256_cmp_ps(m, SET1(1.41421356f), _CMP_GT_OQ);
	m = _mm256_blendv_ps(m, MUL(m, SET1(0.5f)), big);
	e = _mm256_blendv_ps(e, ADD(e, SET1(1.0f)), big);
	F8 t = DIV(SUB(m, SET1(1.0f)), ADD(m, SET1(1.0f)));
	F8 t2 = MUL(t, t);
	F8 lg = MUL(t2, SET1(0.412198583f));
	lg = MUL(t2, ADD(SET1(0.577078016f), lg));
	lg = MUL(t2, ADD(SET1(0.961796694f), lg));
	lg = MUL(t, ADD(SET1(2.88539008f), lg));
	F8 y = MUL(SET1(-0.3f), ADD(e, lg));
	F8 n = rne8(y);
	F8 f = SUB(y, n);
	/* Horner, innermost first: the reference's nesting */
	F8 p = MUL(f, SET1(0.000154035304f));
	p = MUL(f, ADD(SET1(0.00133335581f), p));
	p = MUL(f, ADD(SET1(0.00961812911f), p));
	p = MUL(f, ADD(SET1(0.0555041087f), p));
	p = MUL(f, ADD(SET1(0.240226507f), p));
	p = MUL(f, ADD(SET1(0.693147181f), p));
	p = ADD(SET1(1.0f), p);
	__m256i ni = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127)), 23);
	return MUL(p, _mm256_castsi256_ps(ni));
}

static float hqq_step(const float *x, const float *w, int n, float inv, float step, float z, float ibeta,
		      float nmax)
{
	F8 an = _mm256_setzero_ps(), zero = an;
	F8 vi = SET1(inv), vs = SET1(step), vz = SET1(z), vb = SET1(ibeta), vn = SET1(nmax);
	const F8 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
	const F8 sgn = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
	for (int i = 0; i < n; i += 8) {
		F8 xv = LD(x + i);
		F8 qf = rne8(clamp8(ADD(MUL(xv, vi), vz), zero, vn));
		F8 e = SUB(xv, MUL(SUB(qf, vz), vs));
		F8 ae = _mm256_and_ps(e, absm);
		F8 t = SUB(ae, MUL(pow_m03(ADD(ae, SET1(1e-8f))), vb));
		F8 we = _mm256_blendv_ps(t, _mm256_xor_ps(t, sgn), _mm256_cmp_ps(e, zero, _CMP_LT_OQ));
		we = _mm256_and_ps(we, _mm256_cmp_ps(t, zero, _CMP_GT_OQ));
		an = ADD(an, MUL(LD(w + i), SUB(qf, MUL(SUB(xv, we), vi))));
	}
	return hsum8(an);
}

static float hqq_eval(const float *x, const float *w, int n, float inv, float step, float z, float nmax,
		      uint8_t *q)
{
	F8 acc = _mm256_setzero_ps(), zero = acc, vi = SET1(inv), vs = SET1(step), vz = SET1(z), vn = SET1(nmax);
	for (int i = 0; i < n; i += 8) {
		F8 xv = LD(x + i);
		F8 qf = rne8(clamp8(ADD(MUL(xv, vi), vz), zero, vn));
		F8 r = SUB(xv, MUL(SUB(qf, vz), vs));
		acc = ADD(acc, MUL(LD(w + i), MUL(r, r)));
		store_codes(q + i, qf);
	}
	return hsum8(acc);
}

/* mrs_e4m3r, lane by lane */
static inline F8 e4m3r8(F8 x)
{
	__m256i u = _mm256_castps_si256(x);
	__m256i sign = _mm256_and_si256(u, _mm256_set1_epi32((int)0x80000000u));
	F8 a = _mm256_castsi256_ps(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)));
	a = _mm256_blendv_ps(a, SET1(448.0f), _mm256_cmp_ps(a, SET1(448.0f), _CMP_GT_OQ));
	F8 rs = MUL(rne8(MUL(a, SET1(512.0f))), SET1(0.001953125f));
	__m256i v = _mm256_castps_si256(a);
	__m256i lsb = _mm256_and_si256(_mm256_srli_epi32(v, 20), _mm256_set1_epi32(1));
	v = _mm256_add_epi32(v, _mm256_add_epi32(_mm256_set1_epi32(0x7ffff), lsb));
	v = _mm256_and_si256(v, _mm256_set1_epi32((int)0xfff00000u));
	F8 r = _mm256_blendv_ps(_mm256_castsi256_ps(v), rs, _mm256_cmp_ps(a, SET1(0.015625f), _CMP_LT_OQ));
	return _mm256_castsi256_ps(_mm256_or_si256(_mm256_castps_si256(r), sign));
}

static void fp8_err_row(const float *x, const float *w, int64_t n, float s, float d, double acc[8])
{
	__m256d lo = _mm256_loadu_pd(acc), hi = _mm256_loadu_pd(acc + 4);
	F8 vs = SET1(s), vd = SET1(d), one = SET1(1.0f);
	int64_t i = 0;
	for (; i + 8 <= n; i += 8) {
		F8 xv = LD(x + i);
		F8 r = SUB(xv, MUL(e4m3r8(MUL(xv, vs)), vd));
		F8 e = MUL(w ? LD(w + i) : one, MUL(r, r));
		lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
		hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
	}
	_mm256_storeu_pd(acc, lo);
	_mm256_storeu_pd(acc + 4, hi);
	for (int l = 0; i < n; i++, l++) {
		float r = x[i] - mrs_e4m3r(x[i] * s) * d;
		float e = (w ? w[i] : 1.0f) * (r * r);
		acc[l] = acc[l] + (double)e;
	}
}

static float mx_eval(const float *x, const float *w, float inv, float sc, uint8_t *q)
{
	static const float thr[7] = { 0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f };
	const F8 tab = _mm256_loadu_ps(mrs_e2m1), zero = _mm256_setzero_ps();
	const F8 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
	const F8 sgn = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
	F8 acc = zero, vi = SET1(inv), vsc = SET1(sc);
	for (int i = 0; i < 32; i += 8) {
		F8 xv = LD(x + i), v = MUL(xv, vi), a = _mm256_and_ps(v, absm);
		__m256i idx = _mm256_setzero_si256();
		for (int k = 0; k < 7; k++)
			idx = _mm256_sub_epi32(idx, _mm256_castps_si256(_mm256_cmp_ps(a, SET1(thr[k]), _CMP_GT_OQ)));
		F8 m = MUL(_mm256_permutevar8x32_ps(tab, idx), vsc);
		F8 neg = _mm256_cmp_ps(v, zero, _CMP_LT_OQ);
		F8 r = SUB(xv, _mm256_blendv_ps(m, _mm256_xor_ps(m, sgn), neg));
		acc = ADD(acc, MUL(LD(w + i), MUL(r, r)));
		__m256i nz = _mm256_xor_si256(_mm256_cmpeq_epi32(idx, _mm256_setzero_si256()), _mm256_set1_epi32(-1));
		__m256i s8 = _mm256_and_si256(_mm256_and_si256(_mm256_castps_si256(neg), nz), _mm256_set1_epi32(8));
		__m256i c = _mm256_or_si256(idx, s8);
		__m128i p = _mm_packus_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
		_mm_storel_epi64((__m128i *)(q + i), _mm_packus_epi16(p, p));
	}
	return hsum8(acc);
}

static float q8_eval(const float *x, const float *w, float d, int8_t *q)
{
	F8 acc = _mm256_setzero_ps(), vd = SET1(d), lo = SET1(-128.0f), hi = SET1(127.0f);
	for (int i = 0; i < 32; i += 8) {
		F8 xv = LD(x + i);
		F8 v = rne8(clamp8(DIV(xv, vd), lo, hi));
		F8 r = SUB(xv, MUL(v, vd));
		acc = ADD(acc, MUL(LD(w + i), MUL(r, r)));
		store_codes_i8(q + i, v);
	}
	return hsum8(acc);
}

/* ---- table rows: decoders and dot products (may differ from the reference in the last bits) ---- */

static inline float f32_at(const uint8_t *p)
{
	float f;
	memcpy(&f, p, 4);
	return f;
}

static inline float fp16_at(const uint8_t *p)
{
	return _cvtsh_ss(isq_le16(p));
}

static void deq_hqq4(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n / 64; i++, b += 40, y += 64) {
		F8 st = SET1(f32_at(b)), z = SET1(f32_at(b + 4));
		for (int j = 0; j < 32; j += 8) {
			__m128i v = _mm_loadl_epi64((const __m128i *)(b + 8 + j));
			__m128i h = _mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(15));
			__m128i l = _mm_and_si128(v, _mm_set1_epi8(15));
			_mm256_storeu_ps(y + j, MUL(SUB(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(h)), z), st));
			_mm256_storeu_ps(y + 32 + j, MUL(SUB(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(l)), z), st));
		}
	}
}

static void deq_hqq8(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n / 64; i++, b += 72, y += 64) {
		F8 st = SET1(f32_at(b)), z = SET1(f32_at(b + 4));
		for (int j = 0; j < 64; j += 8)
			_mm256_storeu_ps(y + j, MUL(SUB(load_codes(b + 8 + j), z), st));
	}
}

static void deq_f8q8(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n / 32; i++, b += 33, y += 32) {
		F8 d = SET1(isq_mrs_e4m3_lut[b[0]] / 448.0f);
		for (int j = 0; j < 32; j += 8) {
			__m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b + 1 + j)));
			_mm256_storeu_ps(y + j, MUL(_mm256_cvtepi32_ps(q), d));
		}
	}
}

static void deq_fp8(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	int64_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b + i)));
		_mm256_storeu_ps(y + i, _mm256_i32gather_ps(isq_mrs_e4m3_lut, idx, 4));
	}
	for (; i < n; i++)
		y[i] = isq_mrs_e4m3_lut[b[i]];
}

/* AFQ codes of one 64-group into bytes; 2, 4 and 8 bits without the generic bit loop */
static inline void afq_unpack64(const uint8_t *p, int bits, uint8_t *q)
{
	switch (bits) {
	case 8:
		memcpy(q, p, 64);
		break;
	case 4:
		for (int k = 0; k < 32; k++) {
			q[2 * k] = p[k] & 15;
			q[2 * k + 1] = p[k] >> 4;
		}
		break;
	case 2:
		for (int k = 0; k < 16; k++)
			for (int s = 0; s < 4; s++)
				q[4 * k + s] = (p[k] >> (2 * s)) & 3;
		break;
	default:
		isq_mrs_afq_unpack(p, 64, bits, q);
	}
}

static void deq_afq(int bits, const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	const size_t bs = 4 + 8 * (size_t)bits;
	uint8_t q[64];
	for (int64_t i = 0; i < n / 64; i++, b += bs, y += 64) {
		F8 s = SET1(mrs_bf16(b)), bias = SET1(mrs_bf16(b + 2));
		afq_unpack64(b + 4, bits, q);
		for (int j = 0; j < 64; j += 8)
			_mm256_storeu_ps(y + j, ADD(MUL(load_codes(q + j), s), bias));
	}
}

static inline int hsum_i32(__m256i v)
{
	__m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
	return _mm_cvtsi128_si32(s);
}

/* sum q * y for 32 unsigned codes below 128 (maddubs cannot saturate: 2*127*128 < 32768) */
static inline int dot_u7(const uint8_t *q, const int8_t *y)
{
	__m256i a = _mm256_loadu_si256((const __m256i *)q), b = _mm256_loadu_si256((const __m256i *)y);
	return hsum_i32(_mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1)));
}

/* sum q * y for 32 unsigned codes up to 255: widen to 16 bits */
static inline int dot_u8(const uint8_t *q, const int8_t *y)
{
	__m256i a0 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)q));
	__m256i a1 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(q + 16)));
	__m256i b0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)y));
	__m256i b1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(y + 16)));
	return hsum_i32(_mm256_add_epi32(_mm256_madd_epi16(a0, b0), _mm256_madd_epi16(a1, b1)));
}

static inline int sum_i8(const int8_t *y)
{
	__m256i b = _mm256_loadu_si256((const __m256i *)y);
	return hsum_i32(_mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), b), _mm256_set1_epi16(1)));
}

static void dot_hqq4(int64_t n, float *s, const void *vx, const void *vy)
{
	const uint8_t *x = vx, *y = vy;
	float sum = 0;
	uint8_t q[64];
	for (int64_t i = 0; i < n / 64; i++, x += 40) {
		__m256i v = _mm256_loadu_si256((const __m256i *)(x + 8));
		_mm256_storeu_si256((__m256i *)q, _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(15)));
		_mm256_storeu_si256((__m256i *)(q + 32), _mm256_and_si256(v, _mm256_set1_epi8(15)));
		float st = f32_at(x), z = f32_at(x + 4), blk = 0;
		for (int h = 0; h < 2; h++, y += MRS_Q8_0_SIZE) {
			const int8_t *y8 = (const int8_t *)(y + 2);
			blk += fp16_at(y) * ((float)dot_u7(q + 32 * h, y8) - z * (float)sum_i8(y8));
		}
		sum += st * blk;
	}
	*s = sum;
}

static void dot_hqq8(int64_t n, float *s, const void *vx, const void *vy)
{
	const uint8_t *x = vx, *y = vy;
	float sum = 0;
	for (int64_t i = 0; i < n / 64; i++, x += 72) {
		float st = f32_at(x), z = f32_at(x + 4), blk = 0;
		for (int h = 0; h < 2; h++, y += MRS_Q8_0_SIZE) {
			const int8_t *y8 = (const int8_t *)(y + 2);
			blk += fp16_at(y) * ((float)dot_u8(x + 8 + 32 * h, y8) - z * (float)sum_i8(y8));
		}
		sum += st * blk;
	}
	*s = sum;
}

static void dot_afq(int bits, int64_t n, float *s, const void *vx, const void *vy)
{
	const uint8_t *x = vx, *y = vy;
	const size_t bs = 4 + 8 * (size_t)bits;
	uint8_t q[64];
	float sum = 0;
	for (int64_t i = 0; i < n / 64; i++, x += bs) {
		float sc = mrs_bf16(x), bias = mrs_bf16(x + 2);
		afq_unpack64(x + 4, bits, q);
		for (int h = 0; h < 2; h++, y += MRS_Q8_0_SIZE) {
			const int8_t *y8 = (const int8_t *)(y + 2);
			int sq = bits == 8 ? dot_u8(q + 32 * h, y8) : dot_u7(q + 32 * h, y8);
			sum += fp16_at(y) * (sc * (float)sq + bias * (float)sum_i8(y8));
		}
	}
	*s = sum;
}

static void dot_f8q8(int64_t n, float *s, const void *vx, const void *vy)
{
	const uint8_t *x = vx, *y = vy;
	float sum = 0;
	for (int64_t i = 0; i < n / 32; i++, x += 33, y += MRS_Q8_0_SIZE) {
		__m256i a = _mm256_loadu_si256((const __m256i *)(x + 1)), b = _mm256_loadu_si256((const __m256i *)(y + 2));
		/* |a| * (b with a's sign): |a| <= 128 and |b| <= 127, so maddubs cannot saturate */
		__m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
		int si = hsum_i32(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
		sum += (isq_mrs_e4m3_lut[x[0]] / 448.0f) * fp16_at(y) * (float)si;
	}
	*s = sum;
}

static void dot_fp8(int64_t n, float *s, const void *vx, const void *vy)
{
	const uint8_t *x = vx;
	const float *y = vy;
	F8 acc = _mm256_setzero_ps();
	int64_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(x + i)));
		acc = _mm256_fmadd_ps(_mm256_i32gather_ps(isq_mrs_e4m3_lut, idx, 4), LD(y + i), acc);
	}
	float sum = hsum8(acc);
	for (; i < n; i++)
		sum += isq_mrs_e4m3_lut[x[i]] * y[i];
	*s = sum;
}

#define AFQ_FNS(B)                                                                               \
	static void deq_afq##B(const void *x, float *y, int64_t n) { deq_afq(B, x, y, n); }      \
	static void dot_afq##B(int64_t n, float *s, const void *x, const void *y) { dot_afq(B, n, s, x, y); }
AFQ_FNS(2)
AFQ_FNS(3)
AFQ_FNS(4)
AFQ_FNS(6)
AFQ_FNS(8)

const struct mrs_kern isq_mrs_kern_avx2 = {
	.afq_eval = afq_eval,
	.afq_codes = afq_codes,
	.afq_sums = afq_sums,
	.hqq_step = hqq_step,
	.hqq_eval = hqq_eval,
	.fp8_err_row = fp8_err_row,
	.mx_eval = mx_eval,
	.q8_eval = q8_eval,
	.deq_hqq4 = deq_hqq4,
	.deq_hqq8 = deq_hqq8,
	.deq_f8q8 = deq_f8q8,
	.deq_fp8 = deq_fp8,
	.deq_afq = { [2] = deq_afq2, [3] = deq_afq3, [4] = deq_afq4, [6] = deq_afq6, [8] = deq_afq8 },
	.dot_hqq4 = dot_hqq4,
	.dot_hqq8 = dot_hqq8,
	.dot_f8q8 = dot_f8q8,
	.dot_fp8 = dot_fp8,
	.dot_afq = { [2] = dot_afq2, [3] = dot_afq3, [4] = dot_afq4, [6] = dot_afq6, [8] = dot_afq8 },
};
