/*
 * gemm-avx2.c - register tiles of Q4_0/Q8_0 weight rows times Q8_0
 * activation rows (gemm.h).  The per-block arithmetic is dot-avx2.c's.
 */
#include "gemm.h"
#include "quants.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "blocks.h"

static inline float h16(const uint16_t *p)
{
	return _cvtsh_ss(isq_le16(p));
}

static inline float hsum(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

static inline __m256i ld32(const void *p)
{
	return _mm256_loadu_si256((const __m256i *)p);
}

/*
 * Q4_0: codes q - 8 in -8..7, multiplied as dot-avx2.c does: |w| (kept per
 * row) times y with w's sign.  Q8_0: widened to 16 bits (a file may hold
 * -128), the halves kept per row.
 */
#define TILE_Q4_0(NR, NT)                                                                              \
	static void tile_q4_0_##NR##x##NT(int64_t nb, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, \
					  float *y, size_t ys)                                           \
	{                                                                                              \
		const __m256i m4 = _mm256_set1_epi8(15), off = _mm256_set1_epi8(8), one = _mm256_set1_epi16(1); \
		__m256 acc[NR][NT];                                                                    \
		for (int r = 0; r < NR; r++)                                                           \
			for (int t = 0; t < NT; t++)                                                   \
				acc[r][t] = _mm256_setzero_ps();                                       \
		for (int64_t i = 0; i < nb; i++) {                                                     \
			__m256i sw[NR], aw[NR];                                                        \
			float dw[NR];                                                                  \
			for (int r = 0; r < NR; r++) {                                                 \
				const struct block_q4_0 *b = (const void *)(w + r * ws + i * 18);      \
				__m128i q = _mm_loadu_si128((const __m128i *)(const void *)b->qs);     \
				__m256i v = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), m4); \
				sw[r] = _mm256_sub_epi8(v, off);                                       \
				aw[r] = _mm256_sign_epi8(sw[r], sw[r]);                                \
				dw[r] = h16(&b->d);                                                    \
			}                                                                              \
			for (int t = 0; t < NT; t++) {                                                 \
				const struct block_q8_0 *a = (const void *)(x + t * xs + i * 34);      \
				__m256i yv = ld32(a->qs);                                              \
				float dy = h16(&a->d);                                                 \
				for (int r = 0; r < NR; r++) {                                         \
					__m256i p = _mm256_maddubs_epi16(aw[r], _mm256_sign_epi8(yv, sw[r])); \
					__m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, one));      \
					acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(dw[r] * dy), f, acc[r][t]); \
				}                                                                      \
			}                                                                              \
		}                                                                                      \
		for (int r = 0; r < NR; r++)                                                           \
			for (int t = 0; t < NT; t++)                                                   \
				y[t * ys + r] = hsum(acc[r][t]);                                       \
	}

#define TILE_Q8_0(NR, NT)                                                                              \
	static void tile_q8_0_##NR##x##NT(int64_t nb, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, \
					  float *y, size_t ys)                                           \
	{                                                                                              \
		__m256 acc[NR][NT];                                                                    \
		for (int r = 0; r < NR; r++)                                                           \
			for (int t = 0; t < NT; t++)                                                   \
				acc[r][t] = _mm256_setzero_ps();                                       \
		for (int64_t i = 0; i < nb; i++) {                                                     \
			__m256i wl[NR], wh[NR];                                                        \
			float dw[NR];                                                                  \
			for (int r = 0; r < NR; r++) {                                                 \
				const struct block_q8_0 *b = (const void *)(w + r * ws + i * 34);      \
				__m256i v = ld32(b->qs);                                               \
				wl[r] = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(v));               \
				wh[r] = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(v, 1));          \
				dw[r] = h16(&b->d);                                                    \
			}                                                                              \
			for (int t = 0; t < NT; t++) {                                                 \
				const struct block_q8_0 *a = (const void *)(x + t * xs + i * 34);      \
				__m256i v = ld32(a->qs);                                               \
				__m256i yl = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(v));          \
				__m256i yh = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(v, 1));     \
				float dy = h16(&a->d);                                                 \
				for (int r = 0; r < NR; r++) {                                         \
					__m256i p = _mm256_add_epi32(_mm256_madd_epi16(wl[r], yl),     \
								     _mm256_madd_epi16(wh[r], yh));    \
					acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(dw[r] * dy), _mm256_cvtepi32_ps(p), \
								    acc[r][t]);                        \
				}                                                                      \
			}                                                                              \
		}                                                                                      \
		for (int r = 0; r < NR; r++)                                                           \
			for (int t = 0; t < NT; t++)                                                   \
				y[t * ys + r] = hsum(acc[r][t]);                                       \
	}

typedef void (*tile_fn)(int64_t nb, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, float *y, size_t ys);

/*
 * One weight row against 8 (or 4) tokens measured fastest here: more rows
 * per tile spill registers, and the weight block's decode is the part worth
 * sharing.
 */
TILE_Q4_0(1, 8)
TILE_Q4_0(1, 4)
TILE_Q4_0(1, 1)
TILE_Q8_0(1, 8)
TILE_Q8_0(1, 4)
TILE_Q8_0(1, 1)

struct tiles {
	tile_fn t8, t4, t1;
};

static const struct tiles q4_0_tiles = { tile_q4_0_1x8, tile_q4_0_1x4, tile_q4_0_1x1 };
static const struct tiles q8_0_tiles = { tile_q8_0_1x8, tile_q8_0_1x4, tile_q8_0_1x1 };

int isq_gemm_supported(enum isq_type t)
{
	const struct isq_type_traits *tt = isq_type_traits(t);
	if (t == ISQ_TYPE_Q4_0)
		return tt->vec_dot == isq_vec_dot_q4_0_q8_0_avx2;
	if (t == ISQ_TYPE_Q8_0)
		return tt->vec_dot == isq_vec_dot_q8_0_q8_0_avx2;
	return 0;
}

int isq_gemm_avx2(enum isq_type t, int64_t n, int64_t nr, int64_t nt, const void *w, size_t w_stride,
		  const void *x, size_t x_stride, float *y, size_t y_stride)
{
	if (!isq_gemm_supported(t))
		return -1;
	const struct tiles *k = t == ISQ_TYPE_Q4_0 ? &q4_0_tiles : &q8_0_tiles;
	const uint8_t *wb = w, *xb = x;
	int64_t nb = n / 32;
	for (int64_t r = 0; r < nr; r++) {
		const uint8_t *wr = wb + r * w_stride;
		int64_t t0 = 0;
		for (; t0 + 8 <= nt; t0 += 8)
			k->t8(nb, wr, w_stride, xb + t0 * x_stride, x_stride, y + t0 * y_stride + r, y_stride);
		for (; t0 + 4 <= nt; t0 += 4)
			k->t4(nb, wr, w_stride, xb + t0 * x_stride, x_stride, y + t0 * y_stride + r, y_stride);
		for (; t0 < nt; t0++)
			k->t1(nb, wr, w_stride, xb + t0 * x_stride, x_stride, y + t0 * y_stride + r, y_stride);
	}
	return 0;
}

#else

int isq_gemm_supported(enum isq_type t)
{
	(void)t;
	return 0;
}

int isq_gemm_avx2(enum isq_type t, int64_t n, int64_t nr, int64_t nt, const void *w, size_t w_stride,
		  const void *x, size_t x_stride, float *y, size_t y_stride)
{
	return -1;
}

#endif
