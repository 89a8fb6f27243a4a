/*
 * fp.h - exact conversions between float32 and the small float formats.
 *
 * Every narrowing conversion rounds to nearest, ties to even, as IEEE 754
 * and ggml/torch do.  Behaviour at the edges (tested in tests/unit/test-fp.c):
 *   FP16 (1-5-10, bias 15): overflow -> +-Inf, NaN stays NaN (quiet), subnormals exact.
 *   BF16 (1-8-7): the top half of a float32, rounded RNE; NaN stays NaN (quiet).
 *   FP8 E4M3 (1-4-3, bias 7, "fn" variant as in OCP/torch float8_e4m3fn):
 *       no Inf; 0x7f/0xff are NaN; max finite 448.  Narrowing saturates to
 *       +-448 (what torch's to(float8_e4m3fn) after clamp and mistral.rs do);
 *       NaN -> 0x7f; Inf -> +-448.
 *   FP8 E5M2 (1-5-2, bias 15): IEEE-like, has Inf and NaN; max finite 57344;
 *       overflow -> Inf, NaN -> 0x7e|sign.
 *   E8M0 (an exponent byte, OCP MX): value 2^(e-127); 0xff is NaN; no zero.
 *       isq_fp32_to_e8m0 rounds log2 up or down to the nearest power of two
 *       (ties to the larger), clamping to 2^-127..2^127; NaN -> 0xff.
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

/* Row converters (n elements); the widening ones are exact. */
void isq_fp16_to_fp32_row(const uint16_t *src, float *dst, size_t n);
void isq_bf16_to_fp32_row(const uint16_t *src, float *dst, size_t n);
void isq_fp32_to_fp16_row(const float *src, uint16_t *dst, size_t n);
void isq_fp32_to_bf16_row(const float *src, uint16_t *dst, size_t n);

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
