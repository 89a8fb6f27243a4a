/*
 * repack.h - weights rearranged at load for the CPU's integer matrix
 * products, and those products.
 *
 * Q4_0x8: eight Q4_0 rows interleaved four bytes at a time, so that one
 * 32-byte load holds four codes bytes of each of the eight rows and every
 * 32-bit lane of the integer sums belongs to one row: no horizontal adds.
 * For rows 8g..8g+7 and block b, group g holds at byte 144 * b:
 *
 *   uint16_t d[8];          the rows' scales, in row order
 *   uint8_t  qs[4][8][4];   qs[i][r] = bytes 4i..4i+3 of row r's Q4_0 qs
 *                           (low nibbles: elements 4i..4i+3, high nibbles:
 *                           elements 16+4i..16+4i+3)
 *
 * IQ4_NLx8: IQ4_NL blocks have Q4_0's bytes (scale, then nibbles in the
 * same order), so they repack the same way; only the codes' meaning differs.
 *
 * Q8_0x8: eight Q8_0 rows the same way, 272 bytes per block column:
 *
 *   uint16_t d[8];          scales in row order
 *   int8_t   qs[8][8][4];   qs[i][r] = codes 4i..4i+3 of row r
 *
 * Q4_Kx8: eight Q4_K rows per super-block column of 1184 bytes (the rows'
 * 1152 and 32 for the scales unpacked from 6 bits):
 *
 *   uint16_t d[8], dmin[8];  in row order
 *   uint8_t  sc[8][8];       sc[j][r]: sub-block j's scale in row r
 *   uint8_t  m[4][8][2];     m[k][r]: row r's mins of sub-blocks 2k, 2k+1
 *   uint8_t  qs[4][8][8][4]; qs[c][i][r] = bytes 32c+4i..+3 of row r's qs
 *                            (low nibbles: elements 64c+4i.., sub-block 2c;
 *                            high: 64c+32+4i.., sub-block 2c+1)
 *
 * and its product with a Q8_K activation row is, per row r and super-block s,
 *
 *   v = fma(-dmin, (float)summ, d * (float)isum);  acc = fma(d_x, v, acc)
 *
 * with isum = sum_j sc_j * (sum of q * x over sub-block j) and summ =
 * sum_j m_j * (sum of x over sub-block j), both exact integers.
 *
 * Q6_Kx8: eight Q6_K rows per super-block column of 1680 bytes (the rows'
 * own size):
 *
 *   uint16_t d[8];
 *   int8_t   sc[16][8];         sc[j][r]: scale of elements 16j..16j+15
 *   uint8_t  ql[2][2][8][8][4]; ql[h][c][i][r] = row r's ql[64h+32c+4i..+3]
 *   uint8_t  qh[2][8][8][4];    qh[h][i][r] = row r's qh[32h+4i..+3]
 *
 * so that for element 128h + 32k + 4i + j the low four bits sit in
 * ql[h][k & 1][i][r][j] (high nibble when k >= 2) and the top two in bits
 * 2k of qh[h][i][r][j], and the product is, per row r and super-block s,
 *
 *   acc = fma(d * d_x, (float)isum, acc)
 *
 * with isum = sum_j sc_j * (sum of (q - 32) * x over the 16 elements of j).
 *
 * Q4_0x8 and Q8_0x8 are the size of the rows they came from.  The product of a group with
 * one Q8_0 activation row x is, per row r,
 *
 *   acc = 0;  for b: acc = fma(d_w[r][b] * d_x[b], (float)isum[r][b], acc)
 *
 * with isum the exact integer sum over the block of (q - 8) * x (Q4_0),
 * K[q] * x (IQ4_NL, K its code table) or q * x (Q8_0).  The AVX2 kernels and the portable ones follow it to the
 * bit, for any number of activation rows at once, so a prompt's products
 * equal a generated token's.
 */
#ifndef ISQ_REPACK_H
#define ISQ_REPACK_H

#include <stddef.h>
#include <stdint.h>

#define ISQ_Q4_0X8_GROUP_BYTES(nb) ((size_t)(nb) * 144)
#define ISQ_Q8_0X8_GROUP_BYTES(nb) ((size_t)(nb) * 272)
#define ISQ_Q4_KX8_GROUP_BYTES(nsb) ((size_t)(nsb) * 1184)
#define ISQ_Q6_KX8_GROUP_BYTES(nsb) ((size_t)(nsb) * 1680)

/* n Q8_0 activation rows of nb blocks, with what the products need per block. */
struct isq_q8_act {
	const void *q;		/* row t at q + t * row_bytes */
	size_t row_bytes;
	const float *d;		/* d[t * nb + b]: block b's scale as a float */
	const int32_t *sums;	/* sums[t * nb + b]: 8 x the sum of its codes (Q4_0x8's offset) */
	int n;
};

/* Fill d and sums (each n * nb) for n rows of nb Q8_0 blocks. */
void isq_q8_act_prepare(const void *q, size_t row_bytes, int n, int64_t nb, float *d, int32_t *sums);

/* rows (a multiple of 8) Q4_0 rows of nb blocks, row_bytes apart -> dst. */
void isq_repack_q4_0x8(const void *src, size_t row_bytes, int64_t rows, int64_t nb, void *dst);
/* Row r of a repacked matrix back in plain Q4_0 (nb blocks into dst). */
void isq_unpack_q4_0x8_row(const void *packed, int64_t nb, int64_t r, void *dst);
/* IQ4_NL repacks and unpacks through the two above (the same bytes). */
void isq_repack_q8_0x8(const void *src, size_t row_bytes, int64_t rows, int64_t nb, void *dst);
void isq_unpack_q8_0x8_row(const void *packed, int64_t nb, int64_t r, void *dst);

/*
 * y[t * ldy + 8g + r] for every activation row t < x->n, groups
 * g0 <= g < g1 and r < 8.
 */
void isq_gemm_q4_0x8(const void *packed, int64_t nb, int64_t g0, int64_t g1, const struct isq_q8_act *x, float *y,
		     size_t ldy);
void isq_gemm_q4_0x8_ref(const void *packed, int64_t nb, int64_t g0, int64_t g1, const struct isq_q8_act *x,
			 float *y, size_t ldy);
void isq_gemm_q4_0x8_avx2(const void *packed, int64_t nb, int64_t g0, int64_t g1, const struct isq_q8_act *x,
			  float *y, size_t ldy);
/* IQ4_NLx8 reads the activation's d, not its sums. */
void isq_gemm_iq4_nlx8(const void *packed, int64_t nb, int64_t g0, int64_t g1, const struct isq_q8_act *x, float *y,
		       size_t ldy);
void isq_gemm_iq4_nlx8_ref(const void *packed, int64_t nb, int64_t g0, int64_t g1, const struct isq_q8_act *x,
			   float *y, size_t ldy);
void isq_gemm_iq4_nlx8_avx2(const void *packed, int64_t nb, int64_t g0, int64_t g1, const struct isq_q8_act *x,
			    float *y, size_t ldy);
void isq_gemm_q8_0x8(const void *packed, int64_t nb, int64_t g0, int64_t g1, const struct isq_q8_act *x, float *y,
		     size_t ldy);
void isq_gemm_q8_0x8_ref(const void *packed, int64_t nb, int64_t g0, int64_t g1, const struct isq_q8_act *x,
			 float *y, size_t ldy);
void isq_gemm_q8_0x8_avx2(const void *packed, int64_t nb, int64_t g0, int64_t g1, const struct isq_q8_act *x,
			  float *y, size_t ldy);

/* n Q8_K activation rows of nsb super-blocks. */
struct isq_q8k_act {
	const void *q;		/* row t at q + t * row_bytes */
	size_t row_bytes;
	const int16_t *bs;	/* bs[(t * nsb + s) * 8 + j]: sum of sub-block j's codes */
	int n;
};

void isq_q8k_act_prepare(const void *q, size_t row_bytes, int n, int64_t nsb, int16_t *bs);
void isq_repack_q4_Kx8(const void *src, size_t row_bytes, int64_t rows, int64_t nsb, void *dst);
void isq_unpack_q4_Kx8_row(const void *packed, int64_t nsb, int64_t r, void *dst);
void isq_gemm_q4_Kx8(const void *packed, int64_t nsb, int64_t g0, int64_t g1, const struct isq_q8k_act *x, float *y,
		     size_t ldy);
void isq_gemm_q4_Kx8_ref(const void *packed, int64_t nsb, int64_t g0, int64_t g1, const struct isq_q8k_act *x,
			 float *y, size_t ldy);
void isq_gemm_q4_Kx8_avx2(const void *packed, int64_t nsb, int64_t g0, int64_t g1, const struct isq_q8k_act *x,
			  float *y, size_t ldy);

/* Q6_Kx8 takes Q8_K activation rows as Q4_Kx8 does; bs is not read. */
void isq_repack_q6_Kx8(const void *src, size_t row_bytes, int64_t rows, int64_t nsb, void *dst);
void isq_unpack_q6_Kx8_row(const void *packed, int64_t nsb, int64_t r, void *dst);
void isq_gemm_q6_Kx8(const void *packed, int64_t nsb, int64_t g0, int64_t g1, const struct isq_q8k_act *x, float *y,
		     size_t ldy);
void isq_gemm_q6_Kx8_ref(const void *packed, int64_t nsb, int64_t g0, int64_t g1, const struct isq_q8k_act *x,
			 float *y, size_t ldy);
void isq_gemm_q6_Kx8_avx2(const void *packed, int64_t nsb, int64_t g0, int64_t g1, const struct isq_q8k_act *x,
			  float *y, size_t ldy);

#endif
