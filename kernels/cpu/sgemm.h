/*
 * sgemm.h - F32 products of panels of 16 weight rows with a batch of tokens
 * (the CPU backend's prompt path for weights of every type).
 *
 *   isq_panel16_pack(rows, ld, nr, k, p)
 *       p[i * 16 + r] = rows[r * ld + i] for r < nr, 0 for nr <= r < 16:
 *       nr (<= 16) rows of k floats, transposed into a panel of k x 16.
 *   isq_sgemm_panel16(k, nt, x, ldx, p, y, ldy, nr)
 *       y[t * ldy + r] = sum over i < k of x[t * ldx + i] * p[i * 16 + r],
 *       t < nt, r < nr, each sum one fused multiply-add per i in order of i.
 *
 * Because every output is a plain in-order FMA chain, the AVX2 kernel and
 * the scalar one (fmaf) give the same bits, and the result is the same for
 * any batch split or thread count.  The panel must be 32-byte aligned.
 */
#ifndef ISQ_SGEMM_H
#define ISQ_SGEMM_H

#include <stddef.h>
#include <stdint.h>

void isq_panel16_pack(const float *rows, size_t ld, int nr, int64_t k, float *p);
void isq_sgemm_panel16(int64_t k, int nt, const float *x, size_t ldx, const float *p, float *y, size_t ldy, int nr);

/* The AVX2 variants (only call them when isq_cpu_has_avx2()). */
void isq_panel16_pack_avx2(const float *rows, size_t ld, int nr, int64_t k, float *p);
void isq_sgemm_panel16_avx2(int64_t k, int nt, const float *x, size_t ldx, const float *p, float *y, size_t ldy,
			    int nr);


/*
 * Matrix-vector products of F32, F16 or BF16 rows with an F32 activation
 * row (no rounding of the activations to the weight type):
 *   y[r] = dot(row r of w, x), r < nr, rows row_bytes apart, k elements.
 * Per row: eight lanes accumulate elements i = 8m + l by FMA in order of m,
 * are summed as ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)), and the
 * k % 8 tail follows by FMA in order.  The AVX2 kernel (four rows at a time)
 * and the portable one give the same bits.  Returns -1 for other types.
 */
int isq_gemv_wide(int type, int64_t k, const void *w, size_t row_bytes, int64_t nr, const float *x, float *y);
int isq_gemv_wide_avx2(int type, int64_t k, const void *w, size_t row_bytes, int64_t nr, const float *x, float *y);
void isq_gemv_wide_ref(int type, int64_t k, const void *w, size_t row_bytes, int64_t nr, const float *x, float *y);

#endif
