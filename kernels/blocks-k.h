/*
 * blocks-k.h - block layouts of the K-quants (super-blocks of 256 elements),
 * byte for byte as ggml lays them out.  Included by blocks.h; usable alone.
 *
 * Conventions: all multi-byte fields are little-endian; `uint16_t d` fields
 * hold IEEE binary16 bits.  "Element e" is position e (0..255) of the block in
 * row order.  Dequantization is written out next to each struct; the
 * dequantizers evaluate it in exactly that order, in binary32, without FMA.
 */
#ifndef ISQ_BLOCKS_K_H
#define ISQ_BLOCKS_K_H

#include <stdint.h>

#ifndef QK_K
#define QK_K 256 /* elements per K-quant super-block */
#endif

/*
 * Q2_K, 84 bytes, 2.625 bits per weight.  16 sub-blocks of 16 elements.
 * scales[s]: low nibble = scale index sc, high nibble = min index m of
 *   sub-block s (elements 16s..16s+15).
 * qs: 2-bit codes.  The block is two halves h of 128; byte qs[32h + l]
 *   (l = 0..31) holds element 128h + 32k + l in bits 2k..2k+1 (k = 0..3).
 * value(e) = (d * sc) * q - dmin * m.
 */
struct block_q2_K {
	uint8_t scales[QK_K / 16];
	uint8_t qs[QK_K / 4];
	uint16_t d;
	uint16_t dmin;
};
_Static_assert(sizeof(struct block_q2_K) == 84, "block_q2_K is 84 bytes");

/*
 * Q3_K, 110 bytes, 3.4375 bits per weight.  16 sub-blocks of 16 elements.
 * qs: the low 2 bits of each code, placed exactly as Q2_K's qs.
 * hmask: the high bit of element e is bit e/32 of hmask[e % 32].
 * code = low2 - 4 when the high bit is clear, low2 when it is set (-4..3).
 * scales: 16 six-bit scales S (stored value = signed scale + 32).  Low 4 bits
 *   of S_s: low nibble of byte s (s < 8) or high nibble of byte s-8 (s >= 8);
 *   top 2 bits of S_s: bits 2(s/4)..2(s/4)+1 of byte 8 + s%4.
 * value(e) = (d * (S - 32)) * code.
 */
struct block_q3_K {
	uint8_t hmask[QK_K / 8];
	uint8_t qs[QK_K / 4];
	uint8_t scales[12];
	uint16_t d;
};
_Static_assert(sizeof(struct block_q3_K) == 110, "block_q3_K is 110 bytes");

/*
 * Q4_K, 144 bytes, 4.5 bits per weight.  8 sub-blocks of 32 elements.
 * scales: eight 6-bit scales sc_j and eight 6-bit mins m_j ("k4" packing):
 *   j < 4:  sc_j = scales[j] & 63,  m_j = scales[j+4] & 63;
 *   j >= 4: sc_j = (scales[j+4] & 15) | (scales[j-4] >> 6) << 4,
 *           m_j  = (scales[j+4] >> 4) | (scales[j]   >> 6) << 4.
 * qs: four chunks c of 64 elements; byte qs[32c + l] holds element 64c + l in
 *   its low nibble (sub-block 2c) and element 64c + 32 + l in its high nibble
 *   (sub-block 2c+1).
 * value(e) = (d * sc) * q - dmin * m, q = 0..15.
 */
struct block_q4_K {
	uint16_t d;
	uint16_t dmin;
	uint8_t scales[12];
	uint8_t qs[QK_K / 2];
};
_Static_assert(sizeof(struct block_q4_K) == 144, "block_q4_K is 144 bytes");

/*
 * Q5_K, 176 bytes, 5.5 bits per weight.  As Q4_K, plus a fifth bit: for
 * element 64c + l it is bit 2c of qh[l], for element 64c + 32 + l bit 2c+1.
 * value(e) = (d * sc) * q - dmin * m, q = 0..31.
 */
struct block_q5_K {
	uint16_t d;
	uint16_t dmin;
	uint8_t scales[12];
	uint8_t qh[QK_K / 8];
	uint8_t qs[QK_K / 2];
};
_Static_assert(sizeof(struct block_q5_K) == 176, "block_q5_K is 176 bytes");

/*
 * Q6_K, 210 bytes, 6.5625 bits per weight.  16 sub-blocks of 16 elements.
 * Two halves h of 128 elements use ql[64h..64h+63] and qh[32h..32h+31]; for
 * l = 0..31 the 6-bit code q of
 *   element 128h + l      = ql[64h + l] & 15      | (qh[32h + l] >> 0 & 3) << 4
 *   element 128h + l + 32 = ql[64h + l + 32] & 15 | (qh[32h + l] >> 2 & 3) << 4
 *   element 128h + l + 64 = ql[64h + l] >> 4      | (qh[32h + l] >> 4 & 3) << 4
 *   element 128h + l + 96 = ql[64h + l + 32] >> 4 | (qh[32h + l] >> 6 & 3) << 4
 * value(e) = (d * scales[e/16]) * (q - 32), scales signed.
 */
struct block_q6_K {
	uint8_t ql[QK_K / 2];
	uint8_t qh[QK_K / 4];
	int8_t scales[QK_K / 16];
	uint16_t d;
};
_Static_assert(sizeof(struct block_q6_K) == 210, "block_q6_K is 210 bytes");

/*
 * Q8_K, 292 bytes: the activation side of the K-quant dot products.  d is a
 * binary32 scale, bsums[i] = sum of qs[16i..16i+15].
 * value(e) = d * qs[e].
 */
struct block_q8_K {
	float d;
	int8_t qs[QK_K];
	int16_t bsums[QK_K / 16];
};
_Static_assert(sizeof(struct block_q8_K) == 292, "block_q8_K is 292 bytes");

#endif
