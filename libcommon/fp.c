/*
 * fp.c - exact conversions between float32 and the small float formats.
 *
 * Narrowing works on the bits.  In a format's normal range, rebiasing the
 * exponent is one subtraction and RNE over the dropped mantissa bits is
 * "add half minus one plus the kept LSB, then shift" (a carry into the
 * exponent is the correct result).  In the subnormal range the quantum is
 * fixed, so the FPU rounds for us: adding a power of two whose ULP equals that
 * quantum rounds x to a multiple of it (RNE in the default mode), and the
 * difference of the bit patterns is the code.  Both ranges meet seamlessly:
 * the largest subnormal rounding up gives the code of the smallest normal.
 */
#include "fp.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <cpuid.h>
#define HAVE_F16C_PATH 1
#endif

/* round(ax * 2^k) for the subnormal range, where ulp(magic) = 2^-k. */
static inline uint32_t round_by_magic(uint32_t ax, float magic)
{
	return isq_f32_bits(isq_f32_from_bits(ax) + magic) - isq_f32_bits(magic);
}

/* Drop `drop` low bits of t with round-to-nearest-even. */
static inline uint32_t rne_shift(uint32_t t, int drop)
{
	return (t + ((1u << (drop - 1)) - 1) + ((t >> drop) & 1u)) >> drop;
}

uint16_t isq_fp32_to_fp16(float f)
{
	uint32_t x = isq_f32_bits(f);
	uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
	if (ax >= 0x477ff000u) { /* NaN, Inf, or rounds to >= 65520 */
		if (ax > 0x7f800000u)
			return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
		return (uint16_t)(sign | 0x7c00u);
	}
	if (ax >= 0x38800000u) /* normal half: exponent 127 -> 15 is -112 << 23 */
		return (uint16_t)(sign | rne_shift(ax - 0x38000000u, 13));
	return (uint16_t)(sign | round_by_magic(ax, 0.5f)); /* ulp(0.5) = 2^-24 */
}

float isq_fp16_to_fp32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16, mag = h & 0x7fffu;
	uint32_t bits = (mag << 13) + 0x38000000u;
	if (mag >= 0x7c00u) /* Inf/NaN: exponent 0x1f -> 0xff, NaN made quiet */
		bits = (bits + 0x38000000u) | (mag > 0x7c00u ? 0x400000u : 0);
	else if (mag < 0x400u) /* subnormal: mag * 2^-24 is exact in float */
		bits = isq_f32_bits((float)mag * 0x1p-24f);
	return isq_f32_from_bits(sign | bits);
}

uint16_t isq_fp32_to_bf16(float f)
{
	uint32_t x = isq_f32_bits(f);
	if ((x & 0x7fffffffu) > 0x7f800000u)
		return (uint16_t)((x >> 16) | 0x40u);
	return (uint16_t)rne_shift(x, 16); /* a carry out of the max finite gives Inf */
}

float isq_bf16_to_fp32(uint16_t h)
{
	return isq_f32_from_bits((uint32_t)h << 16);
}

uint8_t isq_fp32_to_e4m3(float f)
{
	uint32_t x = isq_f32_bits(f);
	uint32_t sign = (x >> 24) & 0x80u, ax = x & 0x7fffffffu;
	if (ax > 0x7f800000u)
		return 0x7f;
	if (ax >= 0x43e00000u) /* >= 448, Inf included: saturate, fn has no Inf */
		return (uint8_t)(sign | 0x7eu);
	if (ax >= 0x3c800000u) /* >= 2^-6: normal; exponent 127 -> 7 */
		return (uint8_t)(sign | rne_shift(ax - 0x3c000000u, 20));
	return (uint8_t)(sign | round_by_magic(ax, 0x1p14f)); /* ulp(2^14) = 2^-9 */
}

float isq_e4m3_to_fp32(uint8_t v)
{
	uint32_t sign = (uint32_t)(v & 0x80u) << 24, mag = v & 0x7fu;
	uint32_t bits;
	if (mag == 0x7fu)
		bits = 0x7fc00000u;
	else if (mag >= 8u)
		bits = (mag << 20) + 0x3c000000u;
	else
		bits = isq_f32_bits((float)mag * 0x1p-9f);
	return isq_f32_from_bits(sign | bits);
}

uint8_t isq_fp32_to_e5m2(float f)
{
	uint32_t x = isq_f32_bits(f);
	uint32_t sign = (x >> 24) & 0x80u, ax = x & 0x7fffffffu;
	if (ax > 0x7f800000u)
		return (uint8_t)(sign | 0x7eu);
	if (ax >= 0x47700000u) /* >= 61440, the midpoint past 57344: Inf */
		return (uint8_t)(sign | 0x7cu);
	if (ax >= 0x38800000u) /* >= 2^-14: normal; exponent 127 -> 15 */
		return (uint8_t)(sign | rne_shift(ax - 0x38000000u, 21));
	return (uint8_t)(sign | round_by_magic(ax, 128.0f)); /* ulp(128) = 2^-16 */
}

float isq_e5m2_to_fp32(uint8_t v)
{
	return isq_fp16_to_fp32((uint16_t)((uint16_t)v << 8));
}

uint8_t isq_fp32_to_e8m0(float f)
{
	uint32_t ax = isq_f32_bits(f) & 0x7fffffffu;
	if (ax > 0x7f800000u)
		return 0xff;
	if (ax == 0)
		return 0;
	if (ax == 0x7f800000u)
		return 0xfe;
	/* |x| = sig * 2^(e - 23) with sig normalized to [2^23, 2^24) */
	int e = (int)(ax >> 23);
	uint64_t sig = ax & 0x7fffffu;
	if (e == 0) {
		int k = 31 - __builtin_clz((unsigned)sig);
		sig <<= 23 - k;
		e = k - 22;
	} else {
		sig |= 0x800000u;
	}
	/* round log2 up when sig/2^23 >= sqrt(2), i.e. sig^2 >= 2^47 (never equal) */
	int code = e + (sig * sig >= (1ull << 47));
	return (uint8_t)(code < 0 ? 0 : code > 254 ? 254 : code);
}

float isq_e8m0_to_fp32(uint8_t v)
{
	if (v == 0xff)
		return isq_f32_from_bits(0x7fc00000u);
	if (v == 0)
		return isq_f32_from_bits(0x00400000u); /* 2^-127, a float subnormal */
	return isq_f32_from_bits((uint32_t)v << 23);
}

/* ---- rows ------------------------------------------------------------------------ */

#ifdef HAVE_F16C_PATH
__attribute__((target("avx,f16c"))) static void fp16_to_fp32_f16c(const uint16_t *src, float *dst, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(src + i))));
	for (; i < n; i++)
		dst[i] = isq_fp16_to_fp32(src[i]);
}

__attribute__((target("avx,f16c"))) static void fp32_to_fp16_f16c(const float *src, uint16_t *dst, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm_storeu_si128((__m128i *)(void *)(dst + i),
				 _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
	for (; i < n; i++)
		dst[i] = isq_fp32_to_fp16(src[i]);
}

/* 0 = not checked yet, 1 = no F16C, 2 = F16C.  Racing first callers store the same value. */
static int f16c_state;

static int have_f16c(void)
{
	int s = __atomic_load_n(&f16c_state, __ATOMIC_RELAXED);
	if (!s) {
		/* cpuid leaf 1: AVX (ecx 28), F16C (ecx 29), and the OS saving YMM state (OSXSAVE, XCR0 bits 1-2).
		 * Not __builtin_cpu_supports: clang does not know "f16c". */
		unsigned a, b, c, d;
		s = 1;
		if (__get_cpuid(1, &a, &b, &c, &d) && (c >> 27 & 1) && (c >> 28 & 1) && (c >> 29 & 1)) {
			unsigned lo, hi;
			__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
			if ((lo & 6) == 6)
				s = 2;
		}
		__atomic_store_n(&f16c_state, s, __ATOMIC_RELAXED);
	}
	return s == 2;
}
#endif

void isq_fp16_to_fp32_row(const uint16_t *src, float *dst, size_t n)
{
#ifdef HAVE_F16C_PATH
	if (n >= 8 && have_f16c()) {
		fp16_to_fp32_f16c(src, dst, n);
		return;
	}
#endif
	for (size_t i = 0; i < n; i++)
		dst[i] = isq_fp16_to_fp32(src[i]);
}

void isq_fp32_to_fp16_row(const float *src, uint16_t *dst, size_t n)
{
#ifdef HAVE_F16C_PATH
	if (n >= 8 && have_f16c()) {
		fp32_to_fp16_f16c(src, dst, n);
		return;
	}
#endif
	for (size_t i = 0; i < n; i++)
		dst[i] = isq_fp32_to_fp16(src[i]);
}

/* The BF16 loops are written branch-free so that the compiler vectorizes them. */
void isq_bf16_to_fp32_row(const uint16_t *src, float *dst, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = isq_f32_from_bits((uint32_t)src[i] << 16);
}

void isq_fp32_to_bf16_row(const float *src, uint16_t *dst, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t x = isq_f32_bits(src[i]);
		uint32_t r = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16, q = (x >> 16) | 0x40u;
		dst[i] = (uint16_t)((x & 0x7fffffffu) > 0x7f800000u ? q : r);
	}
}
