/*
 * repack.h - weights rearranged at load for the CPU's matrix-vector products.
 *
 * Q4_0x8: eight Q4_0 rows interleaved block by block, so one pass decodes a
 * block column of all eight and the activation block is loaded once for
 * them.  For rows 8g..8g+7 and block b, group g holds at byte 144 * b:
 *
 *   uint16_t d[8];       scales in row order 0 2 4 6 1 3 5 7 (the order the
 *                        integer sums come out of the AVX2 reduction)
 *   uint8_t  qs[4][32];  row pair (2i, 2i+1): 16 bytes of row 2i, then 16
 *                        bytes of row 2i+1, each Q4_0's own nibble layout
 *
 * Same size as the rows it came from (8 x 18 bytes per block column).
 *
 * The product of a Q4_0x8 group with a Q8_0 activation row is, per row,
 *
 *   acc = 0;  for b: acc = fma(d_w[b] * d_x[b], (float)isum[b], acc)
 *
 * with isum[b] = sum of (q - 8) * x over the block, an exact integer.  The
 * AVX2 kernel and the portable one follow it to the bit.
 *
 * Q8_0x8: eight Q8_0 rows the same way, 272 bytes per block column:
 *
 *   uint16_t d[8];       scales in row order
 *   int8_t   qs[8][32];  each row's 32 codes
 *
 * and the same per-row formula with isum[b] = sum of q * x (no offset).
 */
#ifndef ISQ_REPACK_H
#define ISQ_REPACK_H

#include <stddef.h>
#include <stdint.h>

#define ISQ_Q4_0X8_GROUP_BYTES(nb) ((size_t)(nb) * 144)
#define ISQ_Q8_0X8_GROUP_BYTES(nb) ((size_t)(nb) * 272)

/* rows (a multiple of 8) Q4_0 rows of nb blocks, row_bytes apart -> dst. */
void isq_repack_q4_0x8(const void *src, size_t row_bytes, int64_t rows, int64_t nb, void *dst);
/* Row r of a repacked matrix back in plain Q4_0 (nb blocks into dst). */
void isq_unpack_q4_0x8_row(const void *packed, int64_t nb, int64_t r, void *dst);

/*
 * y[8g .. 8g+7] for groups g0 <= g < g1, one activation row x of nb Q8_0
 * blocks; sums[b] must hold 8 * (sum of the int8 codes of block b) (see
 * isq_q8_0_block_sums).
 */
void isq_gemv_q4_0x8(const void *packed, int64_t nb, int64_t g0, int64_t g1, const void *x, const int32_t *sums,
		     float *y);
void isq_gemv_q4_0x8_ref(const void *packed, int64_t nb, int64_t g0, int64_t g1, const void *x,
			 const int32_t *sums, float *y);
void isq_gemv_q4_0x8_avx2(const void *packed, int64_t nb, int64_t g0, int64_t g1, const void *x,
			  const int32_t *sums, float *y);
/* sums[b] = 8 * sum of the codes of Q8_0 block b, b < nb. */
void isq_q8_0_block_sums(const void *x, int64_t nb, int32_t *sums);

void isq_repack_q8_0x8(const void *src, size_t row_bytes, int64_t rows, int64_t nb, void *dst);
void isq_unpack_q8_0x8_row(const void *packed, int64_t nb, int64_t r, void *dst);
/* y[8g .. 8g+7] for groups g0 <= g < g1 times one Q8_0 activation row of nb blocks. */
void isq_gemv_q8_0x8(const void *packed, int64_t nb, int64_t g0, int64_t g1, const void *x, float *y);
void isq_gemv_q8_0x8_ref(const void *packed, int64_t nb, int64_t g0, int64_t g1, const void *x, float *y);
void isq_gemv_q8_0x8_avx2(const void *packed, int64_t nb, int64_t g0, int64_t g1, const void *x, float *y);

#endif
