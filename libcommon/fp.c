/* fp.c - exact conversions between float32 and the small float formats. */
#include "fp.h"

#include <math.h>

uint16_t isq_fp32_to_fp16(float f)
{
	uint32_t x = isq_f32_bits(f);
	uint32_t sign = (x >> 16) & 0x8000u;
	uint32_t ax = x & 0x7fffffffu;
	if (ax > 0x7f800000u) /* NaN: keep it quiet and non-zero */
		return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
	if (ax >= 0x477ff000u) /* rounds to >= 65520: overflow to Inf */
		return (uint16_t)(sign | 0x7c00u);
	if (ax < 0x38800000u) {
		/* subnormal or zero in half: value = ax as float, scale to units of 2^-24 with RNE */
		if (ax < 0x33000000u) /* below half of the smallest subnormal: zero */
			return (uint16_t)sign;
		uint32_t mant = (ax & 0x7fffffu) | 0x800000u;
		int shift = 126 - (int)(ax >> 23); /* 14..24 */
		uint32_t q = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
		if (rem > half || (rem == half && (q & 1)))
			q++;
		return (uint16_t)(sign | q);
	}
	/* normal: rebias exponent, round 13 dropped bits to nearest even */
	uint32_t r = ax - 0x38000000u;
	uint32_t q = r >> 13, rem = r & 0x1fffu;
	if (rem > 0x1000u || (rem == 0x1000u && (q & 1)))
		q++;
	return (uint16_t)(sign | q);
}

float isq_fp16_to_fp32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
	uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
	if (e == 0x1f)
		return isq_f32_from_bits(sign | 0x7f800000u | (m << 13));
	if (e == 0) {
		if (!m)
			return isq_f32_from_bits(sign);
		/* subnormal: m * 2^-24 exactly */
		float v = (float)m * 0x1p-24f;
		return sign ? -v : v;
	}
	return isq_f32_from_bits(sign | ((e + 112) << 23) | (m << 13));
}

uint16_t isq_fp32_to_bf16(float f)
{
	uint32_t x = isq_f32_bits(f);
	if ((x & 0x7fffffffu) > 0x7f800000u)
		return (uint16_t)((x >> 16) | 0x40u); /* quiet NaN */
	uint32_t rounding = 0x7fffu + ((x >> 16) & 1u);
	return (uint16_t)((x + rounding) >> 16);
}

float isq_bf16_to_fp32(uint16_t h)
{
	return isq_f32_from_bits((uint32_t)h << 16);
}

/*
 * Generic RNE narrowing to a small float with `eb` exponent bits, `mb`
 * mantissa bits and bias `bias`: returns the magnitude code (no sign), or -1
 * on overflow past `maxcode`.  Works on the exact float value.
 */
static int narrow_mag(float a, int mb, int bias, int maxcode)
{
	if (a == 0.0f)
		return 0;
	int e;
	frexpf(a, &e); /* a = f * 2^e, f in [0.5, 1) */
	int exp = e - 1; /* a = 1.x * 2^exp */
	int minexp = 1 - bias;
	if (exp < minexp)
		exp = minexp; /* subnormal range: fixed quantum */
	float quantum = ldexpf(1.0f, exp - mb);
	float q = a / quantum; /* exact: power-of-two scaling */
	float fl = floorf(q), rem = q - fl;
	long n = (long)fl;
	if (rem > 0.5f || (rem == 0.5f && (n & 1)))
		n++;
	/* code = (exp field << mb) | mantissa; n may have carried into the next binade */
	long code;
	if (exp == minexp && n < (1L << mb))
		code = n; /* subnormal */
	else
		code = ((long)(exp + bias) << mb) + (n - (1L << mb));
	if (code > maxcode)
		return -1;
	return (int)code;
}

uint8_t isq_fp32_to_e4m3(float f)
{
	uint8_t sign = signbit(f) ? 0x80 : 0;
	if (isnan(f))
		return 0x7f;
	float a = fabsf(f);
	if (a >= 448.0f)
		return sign | 0x7e; /* saturate: e4m3fn has no Inf */
	int c = narrow_mag(a, 3, 7, 0x7e);
	return (uint8_t)(sign | (c < 0 ? 0x7e : c));
}

float isq_e4m3_to_fp32(uint8_t v)
{
	int sign = v & 0x80, e = (v >> 3) & 0xf, m = v & 7;
	if (e == 0xf && m == 7)
		return NAN;
	float r = e == 0 ? ldexpf((float)m, -9) : ldexpf(1.0f + (float)m / 8.0f, e - 7);
	return sign ? -r : r;
}

uint8_t isq_fp32_to_e5m2(float f)
{
	uint8_t sign = signbit(f) ? 0x80 : 0;
	if (isnan(f))
		return sign | 0x7e;
	float a = fabsf(f);
	if (isinf(a))
		return sign | 0x7c;
	int c = narrow_mag(a, 2, 15, 0x7b);
	return (uint8_t)(sign | (c < 0 ? 0x7c : c));
}

float isq_e5m2_to_fp32(uint8_t v)
{
	return isq_fp16_to_fp32((uint16_t)((uint16_t)v << 8));
}

uint8_t isq_fp32_to_e8m0(float f)
{
	if (isnan(f))
		return 0xff;
	float a = fabsf(f);
	if (a <= 0x1p-127f)
		return 0;
	if (a >= 0x1p127f)
		return 0xfe;
	int e;
	float m = frexpf(a, &e); /* a = m * 2^e, m in [0.5, 1): between 2^(e-1) and 2^e */
	/* nearest power of two in log2, ties to the larger: m >= sqrt(0.5) rounds up */
	int ex = m >= 0.70710678118654752f ? e : e - 1;
	int code = ex + 127;
	return (uint8_t)(code < 0 ? 0 : code > 254 ? 254 : code);
}

float isq_e8m0_to_fp32(uint8_t v)
{
	if (v == 0xff)
		return NAN;
	if (v == 0)
		return 0x1p-127f;
	return isq_f32_from_bits((uint32_t)v << 23);
}

void isq_fp16_to_fp32_row(const uint16_t *src, float *dst, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = isq_fp16_to_fp32(src[i]);
}

void isq_bf16_to_fp32_row(const uint16_t *src, float *dst, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = isq_f32_from_bits((uint32_t)src[i] << 16);
}

void isq_fp32_to_fp16_row(const float *src, uint16_t *dst, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = isq_fp32_to_fp16(src[i]);
}

void isq_fp32_to_bf16_row(const float *src, uint16_t *dst, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = isq_fp32_to_bf16(src[i]);
}
