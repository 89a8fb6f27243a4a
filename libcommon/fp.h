/*
 * fp.h - exact conversions between float32 and the small float formats.
 *
 * Every narrowing conversion rounds to nearest, ties to even, as IEEE 754
 * and ggml/torch do, whatever the caller's floating-point environment holds
 * for flush-to-zero (the default round-to-nearest mode is assumed).  Every
 * widening conversion is exact.  Behaviour at the edges (pinned by
 * tests/unit/test-fp.c, which checks every 8- and 16-bit pattern):
 *
 *   FP16 (1-5-10, bias 15): overflow (|x| >= 65520) -> +-Inf; subnormals are
 *       exact both ways; NaN -> a quiet NaN keeping the sign and the top
 *       payload bits (0x7e00 | sign | payload >> 13).
 *   BF16 (1-8-7): the top half of a float32, rounded RNE; values past the
 *       largest BF16 round to +-Inf; NaN -> quiet NaN (bit 0x40 set).
 *   FP8 E4M3 (1-4-3, bias 7, the "fn" variant of OCP/torch float8_e4m3fn):
 *       no Inf; 0x7f/0xff are NaN; max finite 448.  Narrowing saturates to
 *       +-448 (what torch's to(float8_e4m3fn) after clamp and mistral.rs do):
 *       +-Inf -> +-448 (0x7e/0xfe); NaN -> 0x7f whatever its sign.
 *   FP8 E5M2 (1-5-2, bias 15, the top byte of an FP16): IEEE-like, has Inf
 *       and NaN; max finite 57344; overflow (|x| >= 61440) -> +-Inf (0x7c);
 *       NaN -> 0x7e | sign.
 *   E8M0 (an exponent byte, OCP MX scales): value 2^(e-127); 0xff is NaN;
 *       no zero and no sign.  isq_fp32_to_e8m0 gives the power of two nearest
 *       to |x| in log2 (|x| >= 2^k * sqrt(2) rounds up to 2^(k+1); no float
 *       is ever a tie), clamped to 2^-127..2^127: zero -> 0x00, Inf -> 0xfe,
 *       NaN -> 0xff.
 *
 * Widening FP16, E4M3 or E5M2 NaNs gives a quiet float NaN with the sign
 * kept (what the F16C instructions do; the FP16 row converters use them).
 * Widening BF16 is the plain 16-bit shift, so a BF16 NaN keeps its payload.
 */
#ifndef ISQ_FP_H
#define ISQ_FP_H

#include "isq.h"

uint16_t isq_fp32_to_fp16(float f);
float isq_fp16_to_fp32(uint16_t h);
uint16_t isq_fp32_to_bf16(float f);
float isq_bf16_to_fp32(uint16_t h);
uint8_t isq_fp32_to_e4m3(float f);
float isq_e4m3_to_fp32(uint8_t v);
uint8_t isq_fp32_to_e5m2(float f);
float isq_e5m2_to_fp32(uint8_t v);
uint8_t isq_fp32_to_e8m0(float f);
float isq_e8m0_to_fp32(uint8_t v);

/*
 * Row converters over n elements.  Each gives exactly, bit for bit, what the
 * scalar function gives for every element (NaNs included); the FP16 ones use
 * the F16C instructions when the CPU has them (checked once, at run time).
 * src and dst must not overlap.
 */
void isq_fp16_to_fp32_row(const uint16_t *src, float *dst, size_t n);
void isq_bf16_to_fp32_row(const uint16_t *src, float *dst, size_t n);
void isq_fp32_to_fp16_row(const float *src, uint16_t *dst, size_t n);
void isq_fp32_to_bf16_row(const float *src, uint16_t *dst, size_t n);

/* Reinterpret bits as a float and back (memcpy: no aliasing UB). */
static inline float isq_f32_from_bits(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}
static inline uint32_t isq_f32_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

#endif
