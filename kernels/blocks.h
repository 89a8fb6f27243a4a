/*
 * blocks.h - block layouts of the GGML quantized types, byte for byte as
 * ggml lays them out (so GGUF tensors move between isq and llama.cpp
 * unchanged).  The K-quants follow in blocks-k.h.
 *
 * Conventions: every multi-byte field is little-endian and `uint16_t d`
 * fields hold IEEE binary16 bits; kernels read fields through isq_le16/32, so
 * the structs document layout and size and are never aliased onto raw bytes
 * on a big-endian host.  A row of n elements is n / block-size consecutive
 * blocks.  "Nibble order": element j (0..15) of a 32-element block is the
 * low nibble of qs[j], element j + 16 its high nibble.  Dequantization is
 * written next to each struct in the order the dequantizers evaluate it, in
 * binary32 with every operation rounded (no FMA), which is how ggml's
 * reference decoders compute and what llama.cpp's reference vectors pin.
 */
#ifndef ISQ_BLOCKS_H
#define ISQ_BLOCKS_H

#include <stdint.h>

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK8_1 32
#define QK4_NL 32
#define QK_MXFP4 32

/* Q4_0, 18 bytes, 4.5 bits per weight.  Nibble order; x = (float)(q - 8) * d. */
struct block_q4_0 {
	uint16_t d;
	uint8_t qs[QK4_0 / 2];
};
_Static_assert(sizeof(struct block_q4_0) == 18, "block_q4_0 is 18 bytes");

/* Q4_1, 20 bytes, 5 bits per weight.  Nibble order; x = (float)q * d + m. */
struct block_q4_1 {
	uint16_t d;
	uint16_t m;
	uint8_t qs[QK4_1 / 2];
};
_Static_assert(sizeof(struct block_q4_1) == 20, "block_q4_1 is 20 bytes");

/*
 * Q5_0, 22 bytes, 5.5 bits per weight.  Low 4 bits in nibble order; bit 4 of
 * element j (0..31) is bit j of the little-endian u32 qh.
 * x = (float)(q - 16) * d.
 */
struct block_q5_0 {
	uint16_t d;
	uint8_t qh[4];
	uint8_t qs[QK5_0 / 2];
};
_Static_assert(sizeof(struct block_q5_0) == 22, "block_q5_0 is 22 bytes");

/* Q5_1, 24 bytes, 6 bits per weight.  Codes as Q5_0; x = (float)q * d + m. */
struct block_q5_1 {
	uint16_t d;
	uint16_t m;
	uint8_t qh[4];
	uint8_t qs[QK5_1 / 2];
};
_Static_assert(sizeof(struct block_q5_1) == 24, "block_q5_1 is 24 bytes");

/* Q8_0, 34 bytes, 8.5 bits per weight.  x = (float)qs[j] * d. */
struct block_q8_0 {
	uint16_t d;
	int8_t qs[QK8_0];
};
_Static_assert(sizeof(struct block_q8_0) == 34, "block_q8_0 is 34 bytes");

/*
 * Q8_1, 36 bytes, 9 bits per weight: llama.cpp's activation type for Q4_1
 * and Q5_1.  s = fp16((float)sum(qs) * d) with d the binary32 scale before
 * its rounding to fp16 (it saves the dot products a pass over qs).
 * x = d * (float)qs[j].
 */
struct block_q8_1 {
	uint16_t d;
	uint16_t s;
	int8_t qs[QK8_1];
};
_Static_assert(sizeof(struct block_q8_1) == 36, "block_q8_1 is 36 bytes");

/*
 * IQ4_NL, 18 bytes, 4.5 bits per weight.  Nibble order; codes index the
 * non-linear table K = {-127 -104 -83 -65 -49 -35 -22 -10 1 13 25 38 53 69
 * 89 113}.  x = d * (float)K[q].
 */
struct block_iq4_nl {
	uint16_t d;
	uint8_t qs[QK4_NL / 2];
};
_Static_assert(sizeof(struct block_iq4_nl) == 18, "block_iq4_nl is 18 bytes");

/* K, the code table of IQ4_NL and IQ4_XS; and MXFP4's E2M1 values, doubled to stay integers. */
static const int8_t isq_iq4_values[16] = { -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113 };
static const int8_t isq_mxfp4_values[16] = { 0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12 };

/*
 * IQ4_XS, 136 bytes per 256 elements, 4.25 bits per weight.  Eight
 * sub-blocks j of 32, each with a 6-bit scale
 *   ls_j = ((scales_l[j / 2] >> 4 (j % 2)) & 15) | ((scales_h >> 2j) & 3) << 4,
 * and codes qs[16j .. 16j + 15] in nibble order into the IQ4_NL table.
 * x = (d * (float)(ls_j - 32)) * (float)K[q].
 */
struct block_iq4_xs {
	uint16_t d;
	uint16_t scales_h;
	uint8_t scales_l[4];
	uint8_t qs[128];
};
_Static_assert(sizeof(struct block_iq4_xs) == 136, "block_iq4_xs is 136 bytes");

/*
 * MXFP4 (ggml's), 17 bytes, 4.25 bits per weight.  e is an E8M0 exponent;
 * codes in nibble order index the E2M1 values doubled,
 * F = {0 1 2 3 4 6 8 12 0 -1 -2 -3 -4 -6 -8 -12}, so the scale is half the
 * E8M0 value: x = (float)F[q] * 2^(e - 128), computed exactly (a subnormal
 * for e < 2).
 */
struct block_mxfp4 {
	uint8_t e;
	uint8_t qs[QK_MXFP4 / 2];
};
_Static_assert(sizeof(struct block_mxfp4) == 17, "block_mxfp4 is 17 bytes");

#include "blocks-k.h"

#endif
