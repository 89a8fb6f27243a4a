/*
 * gemm.h - tiles of several weight rows times several activation rows for
 * the CPU backend's matmul.  Each output is computed with exactly the
 * operations, in the same order, of the matching AVX2 vec_dot, so a tile
 * gives bit for bit what separate vec_dot calls give: batching never changes
 * results.  The gain is reuse: a weight block is decoded once for up to 8
 * tokens (prompt processing); a single token gains nothing.
 *
 *   isq_gemm_avx2(type, n, nr, nt, w, w_stride, x, x_stride, y, y_stride)
 *
 * computes y[t * y_stride + r] = dot(row r of w, row t of x) for r < nr,
 * t < nt (any sizes: they are cut into tiles); w holds nr rows of `type`
 * every w_stride bytes, x nt rows of Q8_0 every x_stride bytes, n elements
 * each.  Returns 0, or -1 when `type` has no tile kernel or the CPU lacks
 * AVX2 (the caller then uses vec_dot).
 */
#ifndef ISQ_GEMM_H
#define ISQ_GEMM_H

#include "types.h"

/* 1 if isq_gemm_avx2 handles weights of type t with the traits' current vec_dot (same bits). */
int isq_gemm_supported(enum isq_type t);
int isq_gemm_avx2(enum isq_type t, int64_t n, int64_t nr, int64_t nt, const void *w, size_t w_stride,
		  const void *x, size_t x_stride, float *y, size_t y_stride);

#endif
