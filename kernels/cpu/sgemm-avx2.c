/*
 * sgemm-avx2.c - F32 products of 16 weight rows with a batch of tokens, for
 * prompt processing on weights of any type (they are widened to F32 first).
 *
 * The 16 rows are transposed into a panel, p[k * 16 + r] = w[r][k], so one
 * pair of FMAs advances 16 outputs of a token by one k.  Six tokens share
 * each panel load (12 accumulators).  Every output is a single lane that
 * accumulates over k in order, so its value does not depend on how tokens
 * or rows are tiled, nor on the thread count.
 */
#include "sgemm.h"

#if defined(__x86_64__) || defined(__i386__)
#include <math.h>
#include <string.h>

#define ISQ_LANES_AVX2 1
#include "fp.h"
#include "lanes.h"
#include "types.h"

void isq_panel16_pack_avx2(const float *rows, size_t ld, int nr, int64_t k, float *p)
{
	int64_t i = 0;
	if (nr == 16) {
		for (; i + 8 <= k; i += 8)
			for (int h = 0; h < 2; h++) {
				__m256 r[8];
				for (int j = 0; j < 8; j++)
					r[j] = _mm256_loadu_ps(rows + (size_t)(h * 8 + j) * ld + i);
				lv_tr8(r);
				for (int j = 0; j < 8; j++)
					_mm256_storeu_ps(p + (size_t)(i + j) * 16 + h * 8, r[j]);
			}
	}
	for (; i < k; i++)
		for (int r = 0; r < 16; r++)
			p[(size_t)i * 16 + r] = r < nr ? rows[(size_t)r * ld + i] : 0.0f;
}

/* resume the FMA chains of a previous block of k (exact: the partial sums are floats either way) */
static inline void load16(const float *y, __m256 *lo, __m256 *hi, int nr)
{
	if (nr == 16) {
		*lo = _mm256_loadu_ps(y);
		*hi = _mm256_loadu_ps(y + 8);
		return;
	}
	float tmp[16] = { 0 };
	for (int r = 0; r < nr; r++)
		tmp[r] = y[r];
	*lo = _mm256_loadu_ps(tmp);
	*hi = _mm256_loadu_ps(tmp + 8);
}

static inline void store16(float *y, __m256 lo, __m256 hi, int nr)
{
	if (nr == 16) {
		_mm256_storeu_ps(y, lo);
		_mm256_storeu_ps(y + 8, hi);
		return;
	}
	float tmp[16];
	_mm256_storeu_ps(tmp, lo);
	_mm256_storeu_ps(tmp + 8, hi);
	for (int r = 0; r < nr; r++)
		y[r] = tmp[r];
}

/*
 * MT tokens (a constant after inlining) times the panel.  The accumulators
 * are named, not an array: GCC keeps an array of vectors in memory and the
 * loop then runs at a third of the FMA rate.
 */
#define ACC(i)                                                                                                         \
	__m256 c##i##0 = _mm256_setzero_ps(), c##i##1 = _mm256_setzero_ps();                                           \
	if (mt > i && first == 0)                                                                                      \
		load16(y + (size_t)i * ldy, &c##i##0, &c##i##1, nr)
#define STEP(i)                                                                                                        \
	if (mt > i) {                                                                                                  \
		__m256 a = _mm256_broadcast_ss(x + (size_t)i * ldx + j);                                               \
		c##i##0 = _mm256_fmadd_ps(a, b0, c##i##0);                                                             \
		c##i##1 = _mm256_fmadd_ps(a, b1, c##i##1);                                                             \
	}
#define STORE(i)                                                                                                       \
	if (mt > i)                                                                                                    \
		store16(y + (size_t)i * ldy, c##i##0, c##i##1, nr);

static inline __attribute__((always_inline)) void kernel(int mt, int first, int64_t k, const float *x, size_t ldx,
							const float *p, float *y, size_t ldy, int nr)
{
	ACC(0);
	ACC(1);
	ACC(2);
	ACC(3);
	ACC(4);
	ACC(5);
	for (int64_t j = 0; j < k; j++) {
		__m256 b0 = _mm256_load_ps(p + j * 16), b1 = _mm256_load_ps(p + j * 16 + 8);
		STEP(0)
		STEP(1)
		STEP(2)
		STEP(3)
		STEP(4)
		STEP(5)
	}
	STORE(0)
	STORE(1)
	STORE(2)
	STORE(3)
	STORE(4)
	STORE(5)
}

/* a block of k whose panel slice (16 KiB) stays in L1 while every token passes over it */
#define KC 256

static void block(int first, int64_t k, int nt, const float *x, size_t ldx, const float *p, float *y, size_t ldy,
		  int nr)
{
	int t = 0;
	for (; t + 6 <= nt; t += 6)
		kernel(6, first, k, x + (size_t)t * ldx, ldx, p, y + (size_t)t * ldy, ldy, nr);
	x += (size_t)t * ldx;
	y += (size_t)t * ldy;
	switch (nt - t) {
	case 5:
		kernel(5, first, k, x, ldx, p, y, ldy, nr);
		break;
	case 4:
		kernel(4, first, k, x, ldx, p, y, ldy, nr);
		break;
	case 3:
		kernel(3, first, k, x, ldx, p, y, ldy, nr);
		break;
	case 2:
		kernel(2, first, k, x, ldx, p, y, ldy, nr);
		break;
	case 1:
		kernel(1, first, k, x, ldx, p, y, ldy, nr);
		break;
	default:
		break;
	}
}

void isq_sgemm_panel16_avx2(int64_t k, int nt, const float *x, size_t ldx, const float *p, float *y, size_t ldy,
			    int nr)
{
	for (int64_t k0 = 0; k0 < k; k0 += KC)
		block(k0 == 0, ISQ_MIN((int64_t)KC, k - k0), nt, x + k0, ldx, p + k0 * 16, y, ldy, nr);
	if (k == 0)
		for (int t = 0; t < nt; t++)
			for (int r = 0; r < nr; r++)
				y[(size_t)t * ldy + r] = 0.0f;
}

/* eight elements of a row widened to F32 */
static inline __m256 load8(int type, const uint8_t *row, int64_t i)
{
	if (type == ISQ_TYPE_F32)
		return _mm256_loadu_ps((const float *)(const void *)row + i);
	__m128i h = _mm_loadu_si128((const __m128i *)(const void *)(row + 2 * i));
	if (type == ISQ_TYPE_F16)
		return _mm256_cvtph_ps(h);
	return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* the k % 8 tail, in order, as the reference */
static inline float tail(int type, const uint8_t *row, int64_t i, int64_t k, const float *x, float s)
{
	for (; i < k; i++) {
		float w;
		if (type == ISQ_TYPE_F32)
			memcpy(&w, row + 4 * i, 4);
		else if (type == ISQ_TYPE_F16)
			w = _cvtsh_ss(isq_le16(row + 2 * i));
		else {
			uint32_t u = (uint32_t)isq_le16(row + 2 * i) << 16;
			memcpy(&w, &u, 4);
		}
		s = fmaf(w, x[i], s);
	}
	return s;
}

static inline __attribute__((always_inline)) void gemv4(int type, int64_t k, const uint8_t *w, size_t rb,
						       const float *x, float *y)
{
	__m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
	int64_t i = 0;
	for (; i + 8 <= k; i += 8) {
		__m256 xv = _mm256_loadu_ps(x + i);
		a0 = _mm256_fmadd_ps(load8(type, w, i), xv, a0);
		a1 = _mm256_fmadd_ps(load8(type, w + rb, i), xv, a1);
		a2 = _mm256_fmadd_ps(load8(type, w + 2 * rb, i), xv, a2);
		a3 = _mm256_fmadd_ps(load8(type, w + 3 * rb, i), xv, a3);
	}
	y[0] = tail(type, w, i, k, x, lv_hsum(a0));
	y[1] = tail(type, w + rb, i, k, x, lv_hsum(a1));
	y[2] = tail(type, w + 2 * rb, i, k, x, lv_hsum(a2));
	y[3] = tail(type, w + 3 * rb, i, k, x, lv_hsum(a3));
}

static inline __attribute__((always_inline)) void gemv1(int type, int64_t k, const uint8_t *w, const float *x,
						       float *y)
{
	__m256 a0 = _mm256_setzero_ps();
	int64_t i = 0;
	for (; i + 8 <= k; i += 8)
		a0 = _mm256_fmadd_ps(load8(type, w, i), _mm256_loadu_ps(x + i), a0);
	*y = tail(type, w, i, k, x, lv_hsum(a0));
}

#define GEMV_TYPE(T)                                                                                                   \
	do {                                                                                                           \
		int64_t r = 0;                                                                                         \
		for (; r + 4 <= nr; r += 4)                                                                            \
			gemv4(T, k, (const uint8_t *)w + (size_t)r * row_bytes, row_bytes, x, y + r);                  \
		for (; r < nr; r++)                                                                                    \
			gemv1(T, k, (const uint8_t *)w + (size_t)r * row_bytes, x, y + r);                             \
	} while (0)

int isq_gemv_wide_avx2(int type, int64_t k, const void *w, size_t row_bytes, int64_t nr, const float *x, float *y)
{
	switch (type) {
	case ISQ_TYPE_F32:
		GEMV_TYPE(ISQ_TYPE_F32);
		return 0;
	case ISQ_TYPE_F16:
		GEMV_TYPE(ISQ_TYPE_F16);
		return 0;
	case ISQ_TYPE_BF16:
		GEMV_TYPE(ISQ_TYPE_BF16);
		return 0;
	default:
		return -1;
	}
}

#else

void isq_panel16_pack_avx2(const float *rows, size_t ld, int nr, int64_t k, float *p)
{
	(void)rows, (void)ld, (void)nr, (void)k, (void)p;
}

void isq_sgemm_panel16_avx2(int64_t k, int nt, const float *x, size_t ldx, const float *p, float *y, size_t ldy,
			    int nr)
{
	(void)k, (void)nt, (void)x, (void)ldx, (void)p, (void)y, (void)ldy, (void)nr;
}

int isq_gemv_wide_avx2(int type, int64_t k, const void *w, size_t row_bytes, int64_t nr, const float *x, float *y)
{
	(void)type, (void)k, (void)w, (void)row_bytes, (void)nr, (void)x, (void)y;
	return -1;
}

#endif
