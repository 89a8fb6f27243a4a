/*
 * test-fp.c - the small float conversions of fp.h.
 *
 * Widening is checked for every 8- and 16-bit pattern against the format's
 * definition written with ldexp; narrowing against a slow reference that
 * rounds in double (frexp, floor, ties by hand), over every pattern's float
 * value, hand-picked edges and a few million random floats.
 */
#include "test.h"

#include "fp.h"

#include <float.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	/* splitmix64 */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* ---- the references ----------------------------------------------------------- */

/* A small float format: mb mantissa bits, emin the exponent of the smallest normal. */
struct fmt {
	const char *name;
	int mb, emin;
	double maxfin;
	int has_inf; /* 0: saturates at maxfin (e4m3fn) */
};

static const struct fmt F16 = { "fp16", 10, -14, 65504.0, 1 };
static const struct fmt BF16 = { "bf16", 7, -126, 0x1.fep127, 1 };
static const struct fmt E4M3 = { "e4m3", 3, -6, 448.0, 0 };
static const struct fmt E5M2 = { "e5m2", 2, -14, 57344.0, 1 };

/*
 * |x| rounded to the format's precision with RNE and an unbounded exponent
 * range above: the value IEEE rounding gives before the overflow check.
 */
static double ref_round(double a, const struct fmt *f)
{
	if (a == 0)
		return 0;
	int ex;
	frexp(a, &ex); /* a = m * 2^ex, m in [0.5, 1) */
	int e = ex - 1;
	if (e < f->emin)
		e = f->emin;
	double quantum = ldexp(1.0, e - f->mb);
	double q = a / quantum, fl = floor(q), rem = q - fl;
	if (rem > 0.5 || (rem == 0.5 && fmod(fl, 2.0) != 0))
		fl += 1;
	return fl * quantum;
}

/* What narrowing x must give, as a double: the rounded value or the overflow result. */
static double ref_narrow(float x, const struct fmt *f)
{
	double a = fabs((double)x), r;
	if (isinf(x))
		r = f->has_inf ? INFINITY : f->maxfin;
	else {
		r = ref_round(a, f);
		if (r > f->maxfin)
			r = f->has_inf ? INFINITY : f->maxfin;
	}
	return signbit(x) ? -r : r;
}

/* The nearest power of two to |x| in log2, clamped to [2^-127, 2^127]: the E8M0 code. */
static int ref_e8m0(float x)
{
	double a = fabs((double)x);
	if (a == 0)
		return 0;
	if (isinf(a))
		return 254;
	int ex;
	frexp(a, &ex);
	int k = ex - 1; /* 2^k <= a < 2^(k+1) */
	/* a >= 2^k * sqrt(2)  <=>  a^2 >= 2^(2k+1), exact in double for a float's 24 bits */
	if (a * a >= ldexp(1.0, 2 * k + 1))
		k++;
	int code = k + 127;
	return code < 0 ? 0 : code > 254 ? 254 : code;
}

/* Value of a code from its fields: sign, exponent field, mantissa field. */
static double decode(int s, int e, int m, int mb, int bias)
{
	double v = e == 0 ? ldexp((double)m, 1 - bias - mb) : ldexp(1.0 + ldexp((double)m, -mb), e - bias);
	return s ? -v : v;
}

static int same_value(double got, double want)
{
	if (isnan(want))
		return isnan(got);
	return got == want && signbit(got) == signbit(want);
}

/* ---- widening: every pattern ----------------------------------------------------- */

TEST(fp16_widen_every_pattern)
{
	int bad = 0;
	for (uint32_t h = 0; h < 0x10000u; h++) {
		int s = h >> 15, e = (h >> 10) & 0x1f, m = h & 0x3ff;
		float got = isq_fp16_to_fp32((uint16_t)h);
		uint32_t gb = isq_f32_bits(got);
		if (e == 0x1f) {
			int ok = m ? isnan(got) && (gb & 0x400000u) && (gb & 0x3fffffu) == ((uint32_t)(m & 0x1ff) << 13)
				   : isinf(got);
			ok = ok && (int)(gb >> 31) == s;
			bad += !ok;
			continue;
		}
		bad += !same_value(got, decode(s, e, m, 10, 15));
	}
	CHECK_EQ_INT(bad, 0);
}

TEST(bf16_widen_is_shift)
{
	int bad = 0;
	for (uint32_t h = 0; h < 0x10000u; h++)
		bad += isq_f32_bits(isq_bf16_to_fp32((uint16_t)h)) != h << 16;
	CHECK_EQ_INT(bad, 0);
}

TEST(fp8_widen_every_byte)
{
	int bad = 0;
	for (int v = 0; v < 256; v++) {
		int s = v >> 7;
		/* E4M3 fn: exponent 15 is normal except mantissa 7 (NaN) */
		float g4 = isq_e4m3_to_fp32((uint8_t)v);
		if ((v & 0x7f) == 0x7f)
			bad += !(isnan(g4) && !!signbit(g4) == s);
		else
			bad += !same_value(g4, decode(s, (v >> 3) & 15, v & 7, 3, 7));
		/* E5M2: IEEE-like */
		float g5 = isq_e5m2_to_fp32((uint8_t)v);
		int e5 = (v >> 2) & 31, m5 = v & 3;
		if (e5 == 31)
			bad += m5 ? !isnan(g5) : !(isinf(g5) && (g5 < 0) == s);
		else
			bad += !same_value(g5, decode(s, e5, m5, 2, 15));
	}
	CHECK_EQ_INT(bad, 0);
	CHECK(isq_e4m3_to_fp32(0x7e) == 448.0f);
	CHECK(isq_e4m3_to_fp32(0x01) == 0x1p-9f);
	CHECK(isq_e5m2_to_fp32(0x7b) == 57344.0f);
	CHECK(isinf(isq_e5m2_to_fp32(0xfc)) && isq_e5m2_to_fp32(0xfc) < 0);
}

TEST(e8m0_every_byte)
{
	for (int v = 0; v < 255; v++) {
		CHECK(isq_e8m0_to_fp32((uint8_t)v) == (float)ldexp(1.0, v - 127));
		CHECK_EQ_INT(isq_fp32_to_e8m0(isq_e8m0_to_fp32((uint8_t)v)), v);
	}
	CHECK(isnan(isq_e8m0_to_fp32(0xff)));
	CHECK_EQ_INT(isq_fp32_to_e8m0(NAN), 0xff);
}

/* ---- round trips: widen then narrow gives the same bits --------------------------- */

TEST(fp16_round_trip_every_pattern)
{
	int bad = 0, badnan = 0;
	for (uint32_t h = 0; h < 0x10000u; h++) {
		uint16_t back = isq_fp32_to_fp16(isq_fp16_to_fp32((uint16_t)h));
		if ((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu)) {
			/* NaN stays NaN with its sign, made quiet; a quiet NaN comes back unchanged */
			badnan += (back & 0x7c00u) != 0x7c00u || !(back & 0x200u) || (back ^ h) & 0x8000u;
			badnan += (h & 0x200u) && back != h;
			continue;
		}
		bad += back != h;
	}
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(badnan, 0);
}

TEST(bf16_round_trip_every_pattern)
{
	int bad = 0, badnan = 0;
	for (uint32_t h = 0; h < 0x10000u; h++) {
		uint16_t back = isq_fp32_to_bf16(isq_bf16_to_fp32((uint16_t)h));
		if ((h & 0x7f80u) == 0x7f80u && (h & 0x7fu)) {
			badnan += back != (h | 0x40u);
			continue;
		}
		bad += back != h;
	}
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(badnan, 0);
}

TEST(fp8_round_trip_every_byte)
{
	for (int v = 0; v < 256; v++) {
		if ((v & 0x7f) == 0x7f)
			CHECK_EQ_INT(isq_fp32_to_e4m3(isq_e4m3_to_fp32((uint8_t)v)), 0x7f);
		else
			CHECK_EQ_INT(isq_fp32_to_e4m3(isq_e4m3_to_fp32((uint8_t)v)), v);
		if ((v & 0x7c) == 0x7c && (v & 3))
			CHECK_EQ_INT(isq_fp32_to_e5m2(isq_e5m2_to_fp32((uint8_t)v)), (v & 0x80) | 0x7e);
		else
			CHECK_EQ_INT(isq_fp32_to_e5m2(isq_e5m2_to_fp32((uint8_t)v)), v);
	}
}

/* ---- narrowing at the edges -------------------------------------------------------- */

TEST(fp16_edges)
{
	CHECK_EQ_INT(isq_fp32_to_fp16(0.0f), 0x0000);
	CHECK_EQ_INT(isq_fp32_to_fp16(-0.0f), 0x8000);
	CHECK_EQ_INT(isq_fp32_to_fp16(1.0f), 0x3c00);
	CHECK_EQ_INT(isq_fp32_to_fp16(-2.0f), 0xc000);
	CHECK_EQ_INT(isq_fp32_to_fp16(65504.0f), 0x7bff);
	CHECK_EQ_INT(isq_fp32_to_fp16(65519.996f), 0x7bff);   /* just below the midpoint */
	CHECK_EQ_INT(isq_fp32_to_fp16(65520.0f), 0x7c00);     /* the midpoint: ties to even = Inf */
	CHECK_EQ_INT(isq_fp32_to_fp16(-1e10f), 0xfc00);
	CHECK_EQ_INT(isq_fp32_to_fp16(FLT_MAX), 0x7c00);
	CHECK_EQ_INT(isq_fp32_to_fp16(INFINITY), 0x7c00);
	CHECK_EQ_INT(isq_fp32_to_fp16(-INFINITY), 0xfc00);
	CHECK_EQ_INT(isq_fp32_to_fp16(NAN) & 0x7e00, 0x7e00);
	CHECK_EQ_INT(isq_fp32_to_fp16(isq_f32_from_bits(0xff800001u)), 0xfe00); /* sNaN -> quiet, sign kept */
	/* ties in the normal range: 1 + 2^-11 is halfway between 1 and 1 + 2^-10 */
	CHECK_EQ_INT(isq_fp32_to_fp16(1.0f + 0x1p-11f), 0x3c00);
	CHECK_EQ_INT(isq_fp32_to_fp16(1.0f + 3 * 0x1p-11f), 0x3c02);
	CHECK_EQ_INT(isq_fp32_to_fp16(1.0f + 0x1p-11f + 0x1p-23f), 0x3c01);
	/* subnormals: 2^-24 is the smallest; 2^-25 is a tie to zero, 3 * 2^-25 a tie up to 2 */
	CHECK_EQ_INT(isq_fp32_to_fp16(0x1p-24f), 0x0001);
	CHECK_EQ_INT(isq_fp32_to_fp16(0x1p-25f), 0x0000);
	CHECK_EQ_INT(isq_fp32_to_fp16(0x1.000002p-25f), 0x0001);
	CHECK_EQ_INT(isq_fp32_to_fp16(3 * 0x1p-25f), 0x0002);
	CHECK_EQ_INT(isq_fp32_to_fp16(-5 * 0x1p-25f), 0x8002);
	CHECK_EQ_INT(isq_fp32_to_fp16(0x1p-14f - 0x1p-25f), 0x0400); /* largest subnormal tie rounds into the normals */
	CHECK_EQ_INT(isq_fp32_to_fp16(0x1p-149f), 0x0000);          /* float subnormal */
	CHECK_EQ_INT(isq_fp32_to_fp16(-0x1p-149f), 0x8000);
	CHECK(isq_fp16_to_fp32(0x0001) == 0x1p-24f);
	CHECK(isq_fp16_to_fp32(0x7bff) == 65504.0f);
}

TEST(bf16_edges)
{
	CHECK_EQ_INT(isq_fp32_to_bf16(1.0f), 0x3f80);
	CHECK_EQ_INT(isq_fp32_to_bf16(-0.0f), 0x8000);
	CHECK_EQ_INT(isq_fp32_to_bf16(1.0f + 0x1p-8f), 0x3f80);             /* tie to even */
	CHECK_EQ_INT(isq_fp32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);         /* tie to even, up */
	CHECK_EQ_INT(isq_fp32_to_bf16(1.0f + 0x1p-8f + 0x1p-23f), 0x3f81);
	CHECK_EQ_INT(isq_fp32_to_bf16(isq_f32_from_bits(0x7f7f7fffu)), 0x7f7f);
	CHECK_EQ_INT(isq_fp32_to_bf16(isq_f32_from_bits(0x7f7f8000u)), 0x7f80); /* tie, odd: overflows to Inf */
	CHECK_EQ_INT(isq_fp32_to_bf16(FLT_MAX), 0x7f80);
	CHECK_EQ_INT(isq_fp32_to_bf16(-INFINITY), 0xff80);
	CHECK_EQ_INT(isq_fp32_to_bf16(isq_f32_from_bits(0x7f800001u)), 0x7fc0); /* sNaN with a low payload stays NaN */
	CHECK_EQ_INT(isq_fp32_to_bf16(isq_f32_from_bits(0x00000001u)), 0x0000);
	CHECK_EQ_INT(isq_fp32_to_bf16(isq_f32_from_bits(0x00008001u)), 0x0001); /* float subnormals round too */
}

TEST(fp8_edges)
{
	/* E4M3 fn: saturating, no Inf */
	CHECK_EQ_INT(isq_fp32_to_e4m3(448.0f), 0x7e);
	CHECK_EQ_INT(isq_fp32_to_e4m3(463.99f), 0x7e);
	CHECK_EQ_INT(isq_fp32_to_e4m3(464.0f), 0x7e);
	CHECK_EQ_INT(isq_fp32_to_e4m3(1e30f), 0x7e);
	CHECK_EQ_INT(isq_fp32_to_e4m3(-1e30f), 0xfe);
	CHECK_EQ_INT(isq_fp32_to_e4m3(INFINITY), 0x7e);
	CHECK_EQ_INT(isq_fp32_to_e4m3(-INFINITY), 0xfe);
	CHECK_EQ_INT(isq_fp32_to_e4m3(NAN), 0x7f);
	CHECK_EQ_INT(isq_fp32_to_e4m3(-NAN), 0x7f);
	CHECK_EQ_INT(isq_fp32_to_e4m3(-0.0f), 0x80);
	CHECK_EQ_INT(isq_fp32_to_e4m3(416.0f), 0x7d);
	CHECK_EQ_INT(isq_fp32_to_e4m3(432.0f), 0x7e);     /* tie between 416 (odd) and 448 */
	CHECK_EQ_INT(isq_fp32_to_e4m3(400.0f), 0x7c);     /* tie between 384 (even) and 416 */
	CHECK_EQ_INT(isq_fp32_to_e4m3(1.0625f), 0x38);    /* 1 + 1/16: tie between 1 and 1.125, to even */
	CHECK_EQ_INT(isq_fp32_to_e4m3(1.1875f), 0x3a);    /* 1 + 3/16: tie, to even (1.25) */
	CHECK_EQ_INT(isq_fp32_to_e4m3(0x1p-9f), 0x01);
	CHECK_EQ_INT(isq_fp32_to_e4m3(0x1p-10f), 0x00);   /* tie to zero */
	CHECK_EQ_INT(isq_fp32_to_e4m3(3 * 0x1p-10f), 0x02);
	CHECK_EQ_INT(isq_fp32_to_e4m3(15 * 0x1p-10f), 0x08); /* 7.5 quanta: tie into the smallest normal */
	CHECK_EQ_INT(isq_fp32_to_e4m3(0x1p-6f), 0x08);
	/* E5M2: IEEE-like */
	CHECK_EQ_INT(isq_fp32_to_e5m2(57344.0f), 0x7b);
	CHECK_EQ_INT(isq_fp32_to_e5m2(61439.996f), 0x7b);
	CHECK_EQ_INT(isq_fp32_to_e5m2(61440.0f), 0x7c);
	CHECK_EQ_INT(isq_fp32_to_e5m2(-1e9f), 0xfc);
	CHECK_EQ_INT(isq_fp32_to_e5m2(INFINITY), 0x7c);
	CHECK_EQ_INT(isq_fp32_to_e5m2(NAN) & 0x7f, 0x7e);
	CHECK_EQ_INT(isq_fp32_to_e5m2(-NAN), 0xfe);
	CHECK_EQ_INT(isq_fp32_to_e5m2(0x1p-16f), 0x01);
	CHECK_EQ_INT(isq_fp32_to_e5m2(0x1p-17f), 0x00);
	CHECK_EQ_INT(isq_fp32_to_e5m2(3 * 0x1p-17f), 0x02);
	CHECK_EQ_INT(isq_fp32_to_e5m2(1.125f), 0x3c);     /* tie between 1 and 1.25, to even */
	CHECK_EQ_INT(isq_fp32_to_e5m2(1.375f), 0x3e);
}

TEST(e8m0_edges)
{
	CHECK_EQ_INT(isq_fp32_to_e8m0(1.0f), 127);
	CHECK_EQ_INT(isq_fp32_to_e8m0(-1.0f), 127);
	CHECK_EQ_INT(isq_fp32_to_e8m0(isq_f32_from_bits(0x3fb504f3u)), 127); /* just below sqrt(2) */
	CHECK_EQ_INT(isq_fp32_to_e8m0(isq_f32_from_bits(0x3fb504f4u)), 128); /* just above */
	CHECK_EQ_INT(isq_fp32_to_e8m0(0.75f), 127);
	CHECK_EQ_INT(isq_fp32_to_e8m0(0.7f), 126);
	CHECK_EQ_INT(isq_fp32_to_e8m0(3.0f), 129);
	CHECK_EQ_INT(isq_fp32_to_e8m0(0.0f), 0);
	CHECK_EQ_INT(isq_fp32_to_e8m0(0x1p-149f), 0);
	CHECK_EQ_INT(isq_fp32_to_e8m0(0x1p-126f), 1);
	CHECK_EQ_INT(isq_fp32_to_e8m0(0x1.7p-127f), 1); /* 1.4375 * 2^-127 >= sqrt(2) * 2^-127 */
	CHECK_EQ_INT(isq_fp32_to_e8m0(0x1.6p-127f), 0);
	CHECK_EQ_INT(isq_fp32_to_e8m0(0x1p127f), 254);
	CHECK_EQ_INT(isq_fp32_to_e8m0(FLT_MAX), 254);
	CHECK_EQ_INT(isq_fp32_to_e8m0(INFINITY), 254);
	CHECK_EQ_INT(isq_fp32_to_e8m0(-NAN), 255);
}

/* ---- narrowing against the reference -------------------------------------------- */

/* Checks narrowing of x in every format; returns the number of mismatches (prints the first few). */
static int check_one(float x)
{
	static int printed;
	int bad = 0;
	uint32_t xb = isq_f32_bits(x);
	if (isnan(x)) {
		bad += !isnan(isq_fp16_to_fp32(isq_fp32_to_fp16(x)));
		bad += !isnan(isq_bf16_to_fp32(isq_fp32_to_bf16(x)));
		bad += isq_fp32_to_e4m3(x) != 0x7f;
		bad += (isq_fp32_to_e5m2(x) & 0x7f) != 0x7e;
		bad += isq_fp32_to_e8m0(x) != 0xff;
		return bad;
	}
	double w16 = ref_narrow(x, &F16), wb = ref_narrow(x, &BF16);
	double w4 = ref_narrow(x, &E4M3), w5 = ref_narrow(x, &E5M2);
	double g16 = isq_fp16_to_fp32(isq_fp32_to_fp16(x)), gb = isq_bf16_to_fp32(isq_fp32_to_bf16(x));
	double g4 = isq_e4m3_to_fp32(isq_fp32_to_e4m3(x)), g5 = isq_e5m2_to_fp32(isq_fp32_to_e5m2(x));
	int e8 = isq_fp32_to_e8m0(x), w8 = ref_e8m0(x);
	int b16 = !same_value(g16, w16), bb = !same_value(gb, wb), b4 = !same_value(g4, w4),
	    b5 = !same_value(g5, w5), b8 = e8 != w8;
	bad = b16 + bb + b4 + b5 + b8;
	if (bad && printed++ < 8)
		printf("  x=%a (0x%08x): fp16 %a/%a bf16 %a/%a e4m3 %a/%a e5m2 %a/%a e8m0 %d/%d\n", x, (unsigned)xb, g16,
		       w16, gb, wb, g4, w4, g5, w5, e8, w8);
	return bad;
}

TEST(narrow_matches_reference_random)
{
	int bad = 0;
	long n = 0;
	/* 1M arbitrary bit patterns: every exponent, NaNs and Infs included */
	for (int i = 0; i < 1000000; i++, n++)
		bad += check_one(isq_f32_from_bits((uint32_t)rng()));
	/* 1M values in and around the small formats' ranges (2^-30 .. 2^20), and exact ties */
	for (int i = 0; i < 1000000; i++, n++) {
		uint64_t r = rng();
		uint32_t exp = 97 + (uint32_t)(r % 51), mant = (uint32_t)(r >> 8) & 0x7fffffu;
		switch ((r >> 40) % 4) {
		case 0: mant = (mant & ~0x1fffu) | 0x1000u; break; /* an FP16 tie */
		case 1: mant = (mant & ~0xfffffu) | 0x80000u; break; /* an E4M3 tie */
		case 2: mant = (mant & ~0x1fffffu) | 0x100000u; break; /* an E5M2 tie */
		default: break;
		}
		bad += check_one(isq_f32_from_bits((uint32_t)(r >> 63) << 31 | exp << 23 | mant));
	}
	/* every float whose low 13 bits are an FP16 rounding edge, over all high bits */
	static const uint32_t lows[] = { 0x0000, 0x0001, 0x0fff, 0x1000, 0x1001, 0x1fff };
	for (uint32_t hi = 0; hi < (1u << 19); hi += 3)
		for (size_t j = 0; j < ISQ_ARRAY_SIZE(lows); j++, n++)
			bad += check_one(isq_f32_from_bits(hi << 13 | lows[j]));
	CHECK_MSG(bad == 0, "%d mismatches in %ld floats", bad, n);
}

TEST(narrow_every_pattern_value)
{
	/* the value of every narrow pattern, and its neighbours one float ULP away */
	int bad = 0;
	for (uint32_t h = 0; h < 0x10000u; h++) {
		float v = isq_fp16_to_fp32((uint16_t)h), b = isq_bf16_to_fp32((uint16_t)h);
		for (int d = -1; d <= 1; d++) {
			bad += check_one(isq_f32_from_bits(isq_f32_bits(v) + (uint32_t)d));
			bad += check_one(isq_f32_from_bits(isq_f32_bits(b) + (uint32_t)d));
		}
		/* midpoints between neighbouring FP16 values: exact ties */
		if ((h & 0x7fffu) < 0x7bffu) {
			double mid = ((double)v + (double)isq_fp16_to_fp32((uint16_t)(h + 1))) / 2;
			bad += check_one((float)mid);
		}
	}
	CHECK_EQ_INT(bad, 0);
}

/* ---- row converters ------------------------------------------------------------------ */

TEST(rows_match_scalar)
{
	enum { N = 1 << 16 };
	uint16_t *h = malloc(N * 2 + 2), *h2 = malloc(N * 2 + 2);
	float *f = malloc(N * 4 + 4), *f2 = malloc(N * 4 + 4);
	ISQ_ASSERT(h && h2 && f && f2);
	for (uint32_t i = 0; i < N; i++)
		h[i] = (uint16_t)i;
	int bad = 0;
	/* widening: every pattern, NaNs bit for bit; then odd lengths and offsets for the tails */
	isq_fp16_to_fp32_row(h, f, N);
	for (uint32_t i = 0; i < N; i++)
		bad += isq_f32_bits(f[i]) != isq_f32_bits(isq_fp16_to_fp32((uint16_t)i));
	isq_bf16_to_fp32_row(h, f, N);
	for (uint32_t i = 0; i < N; i++)
		bad += isq_f32_bits(f[i]) != i << 16;
	for (size_t len = 0; len < 40; len++)
		for (size_t off = 0; off < 3; off++) {
			memset(f2, 0xab, (len + 4) * 4);
			isq_fp16_to_fp32_row(h + 0x3c00 + off, f2 + off, len);
			for (size_t i = 0; i < len; i++)
				bad += f2[off + i] != isq_fp16_to_fp32((uint16_t)(0x3c00 + off + i));
			bad += isq_f32_bits(f2[off + len]) != 0xabababab;
		}
	CHECK_EQ_INT(bad, 0);

	/* narrowing: rounds of random patterns, then values near FP16 rounding edges */
	for (int round = 0; round < 16; round++) {
		for (uint32_t i = 0; i < N; i++) {
			uint32_t r = (uint32_t)rng();
			if (round & 1) /* FP16's range with an edge in the low bits */
				r = (r & 0x80000000u) | ((0x30000000u + (r & 0x3ffffffu) * 8) & 0x7fffe000u) |
				    (uint32_t[]){ 0, 0x1000, 0xfff, 0x1001 }[r >> 29 & 3];
			f[i] = isq_f32_from_bits(r);
		}
		isq_fp32_to_fp16_row(f, h2, N);
		for (uint32_t i = 0; i < N; i++)
			bad += h2[i] != isq_fp32_to_fp16(f[i]);
		isq_fp32_to_bf16_row(f, h2, N);
		for (uint32_t i = 0; i < N; i++)
			bad += h2[i] != isq_fp32_to_bf16(f[i]);
	}
	for (size_t len = 0; len < 40; len++) {
		memset(h2, 0xab, (len + 2) * 2);
		isq_fp32_to_fp16_row(f + 1, h2 + 1, len);
		for (size_t i = 0; i < len; i++)
			bad += h2[1 + i] != isq_fp32_to_fp16(f[1 + i]);
		bad += h2[1 + len] != 0xabab || h2[0] != 0xabab;
	}
	CHECK_EQ_INT(bad, 0);
	free(h);
	free(h2);
	free(f);
	free(f2);
}
