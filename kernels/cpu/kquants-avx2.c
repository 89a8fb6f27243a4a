/*
 * kquants-avx2.c - AVX2 element kernels of the K-quant encoder.  A lane is
 * a sub-block (kcost: a K candidate); each lane repeats the scalar code of
 * kernels/kquants-ref.c operation for operation, so the bytes are the same.
 * No FMA on purpose: a fused multiply-add rounds once where the reference
 * rounds twice.
 *
 * kq_round() adds and subtracts 1.5*2^23 and so turns -0.3 into +0, where
 * vroundps gives -0; a signed zero code never changes a sum or a stored
 * code, so the two are interchangeable here.
 */
#include <immintrin.h>
#include <math.h>

#include "kquants-impl.h"

#define F8 __m256
#define LD(p) _mm256_loadu_ps(p)
#define ST(p, v) _mm256_storeu_ps(p, v)
#define SET1(v) _mm256_set1_ps(v)
#define ZERO _mm256_setzero_ps()
#define ADD(a, b) _mm256_add_ps(a, b)
#define SUB(a, b) _mm256_sub_ps(a, b)
#define MUL(a, b) _mm256_mul_ps(a, b)
#define DIV(a, b) _mm256_div_ps(a, b)
#define MIN(a, b) _mm256_min_ps(a, b)
#define MAX(a, b) _mm256_max_ps(a, b)
#define RND(v) _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define SEL(a, b, m) _mm256_blendv_ps(a, b, m) /* m ? b : a */
#define GT(a, b) _mm256_cmp_ps(a, b, _CMP_GT_OQ)
#define GE(a, b) _mm256_cmp_ps(a, b, _CMP_GE_OQ)
#define LT(a, b) _mm256_cmp_ps(a, b, _CMP_LT_OQ)
#define EQ(a, b) _mm256_cmp_ps(a, b, _CMP_EQ_OQ)
#define NEQ(a, b) _mm256_cmp_ps(a, b, _CMP_NEQ_OQ)
#define AND(a, b) _mm256_and_ps(a, b)
#define ANY(m) _mm256_movemask_ps(m)

/*
 * Weight, weight*x and weight*v at element offset o.  `unit` is a constant
 * in every instantiation, so unit weights cost nothing (w = 1 is exact).
 */
#define WGT(blk, unit, o) ((unit) ? SET1(1.0f) : LD((blk)->w + (o)))
#define WXV(blk, unit, o, x) ((unit) ? (x) : LD((blk)->wx + (o)))
#define WMUL(unit, w, v) ((unit) ? (v) : MUL(w, v))

/* 8x8 transpose: rows of src (stride ss) become columns of dst (stride ds). */
static inline void tr8(const float *src, int ss, float *dst, int ds)
{
	F8 r0 = LD(src), r1 = LD(src + ss), r2 = LD(src + 2 * ss), r3 = LD(src + 3 * ss);
	F8 r4 = LD(src + 4 * ss), r5 = LD(src + 5 * ss), r6 = LD(src + 6 * ss), r7 = LD(src + 7 * ss);
	F8 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
	F8 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
	F8 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
	F8 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
	F8 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
	F8 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
	F8 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
	F8 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
	ST(dst, _mm256_permute2f128_ps(u0, u4, 0x20));
	ST(dst + ds, _mm256_permute2f128_ps(u1, u5, 0x20));
	ST(dst + 2 * ds, _mm256_permute2f128_ps(u2, u6, 0x20));
	ST(dst + 3 * ds, _mm256_permute2f128_ps(u3, u7, 0x20));
	ST(dst + 4 * ds, _mm256_permute2f128_ps(u0, u4, 0x31));
	ST(dst + 5 * ds, _mm256_permute2f128_ps(u1, u5, 0x31));
	ST(dst + 6 * ds, _mm256_permute2f128_ps(u2, u6, 0x31));
	ST(dst + 7 * ds, _mm256_permute2f128_ps(u3, u7, 0x31));
}

/* Transposed copy: element i of sub-block j goes to [i * nsb + j]. */
static void transpose(const float *src, float *dst, int nsb, int L)
{
	for (int J = 0; J < nsb; J += 8)
		for (int I = 0; I < L; I += 8)
			tr8(src + J * L + I, L, dst + I * nsb + J, nsb);
}

static void load(struct kq_block *blk, const struct kq_geom *g, const float *x, const float *w,
		 float wbias)
{
	/* the next block of the row is read soon: start fetching it */
	for (int i = 0; i < QK_K; i += 16)
		_mm_prefetch((const char *)(x + QK_K + i), _MM_HINT_T0);
	transpose(x, blk->x, g->nsb, g->L);
	blk->unit = w == NULL;
	if (w) {
		transpose(w, blk->w, g->nsb, g->L);
		const F8 bias = SET1(wbias);
		for (int i = 0; i < QK_K; i += 8) {
			F8 wv = ADD(LD(blk->w + i), bias);
			ST(blk->w + i, wv);
			ST(blk->wx + i, MUL(wv, LD(blk->x + i)));
		}
	}
}

/* Codes (small non-negative integers as floats) to 8 bytes. */
static inline void store_codes(uint8_t *dst, F8 q)
{
	__m256i i32 = _mm256_cvtps_epi32(q);
	__m128i i16 = _mm_packs_epi32(_mm256_castsi256_si128(i32), _mm256_extracti128_si256(i32, 1));
	_mm_storel_epi64((__m128i *)dst, _mm_packus_epi16(i16, i16));
}

/* ---- stage 1, asymmetric ------------------------------------------------------ */

struct afit8 {
	F8 sw, sx, sxx, tol, bestE, a, b, sq, sqq;
};

static inline void afit8_consider(struct afit8 *s, F8 sq, F8 sqq, F8 sxq, F8 mask)
{
	const F8 two = SET1(2.0f);
	F8 ok = AND(mask, GT(sqq, ZERO));
	F8 det = SUB(MUL(sqq, s->sw), MUL(sq, sq));
	F8 a0 = DIV(sxq, sqq);
	F8 c1 = GT(det, MUL(MUL(SET1(1e-6f), sqq), s->sw));
	F8 a1 = DIV(SUB(MUL(sxq, s->sw), MUL(sq, s->sx)), det);
	F8 b1 = DIV(SUB(MUL(sq, sxq), MUL(sqq, s->sx)), det);
	F8 use1 = AND(c1, GE(b1, ZERO));
	F8 a = SEL(a0, a1, use1), b = SEL(ZERO, b1, use1);
	F8 a2 = MUL(two, a);
	F8 e = ADD(SUB(ADD(ADD(SUB(s->sxx, MUL(a2, sxq)), MUL(MUL(two, b), s->sx)), MUL(MUL(a, a), sqq)),
		       MUL(MUL(a2, b), sq)),
		   MUL(MUL(b, b), s->sw));
	F8 take = AND(ok, LT(e, SUB(s->bestE, s->tol)));
	s->bestE = SEL(s->bestE, e, take);
	s->a = SEL(s->a, a, take);
	s->b = SEL(s->b, b, take);
	s->sq = SEL(s->sq, sq, take);
	s->sqq = SEL(s->sqq, sqq, take);
}

static inline void fit_asym8(const struct kq_block *blk, const int unit, const int nsb,
			     const int L, int v, float nmax, const float *cand, int ncand,
			     int nshift, float shift, int nlloyd, struct kq_fit *f)
{
	const F8 N = SET1(nmax);
	const float *xb = blk->x + 8 * v;
	F8 xs[32];
	F8 mn = LD(xb), mx = mn;
	for (int i = 1; i < L; i++) {
		F8 x = LD(xb + i * nsb);
		mn = MIN(x, mn);
		mx = MAX(x, mx);
	}
	mn = MIN(mn, ZERO);
	struct afit8 s;
	s.sw = s.sx = s.sxx = ZERO;
	for (int i = 0; i < L; i++) {
		const int o = i * nsb + 8 * v;
		F8 x = LD(blk->x + o), wx = WXV(blk, unit, o, x);
		s.sw = ADD(s.sw, WGT(blk, unit, o));
		s.sx = ADD(s.sx, wx);
		s.sxx = ADD(s.sxx, MUL(wx, x));
	}
	s.tol = MUL(SET1(1e-6f), s.sxx);
	s.bestE = SET1(INFINITY);
	s.a = s.sq = s.sqq = ZERO;
	s.b = SUB(ZERO, mn);
	F8 range = SUB(mx, mn);
	F8 valid = GT(range, SET1(1e-30f));
	if (ANY(valid)) {
		for (int m = 0; m < nshift; m++) {
			F8 sh = MUL(SET1((float)m * shift), range);
			F8 ir = DIV(SET1(1.0f), SUB(range, sh));
			for (int i = 0; i < L; i++)
				xs[i] = SUB(SUB(LD(xb + i * nsb), mn), sh);
			int k = 0;
			for (; k + 2 <= ncand; k += 2) {
				F8 t0 = MUL(SET1(cand[k]), ir), t1 = MUL(SET1(cand[k + 1]), ir);
				F8 sq0 = ZERO, sqq0 = ZERO, sxq0 = ZERO, sq1 = ZERO, sqq1 = ZERO, sxq1 = ZERO;
				for (int i = 0; i < L; i++) {
					const int o = i * nsb + 8 * v;
					F8 w = WGT(blk, unit, o), wx = WXV(blk, unit, o, LD(blk->x + o));
					F8 q0 = RND(MAX(MIN(MUL(xs[i], t0), N), ZERO));
					F8 q1 = RND(MAX(MIN(MUL(xs[i], t1), N), ZERO));
					F8 wq0 = WMUL(unit, w, q0), wq1 = WMUL(unit, w, q1);
					sq0 = ADD(sq0, wq0);
					sq1 = ADD(sq1, wq1);
					sqq0 = ADD(sqq0, MUL(wq0, q0));
					sqq1 = ADD(sqq1, MUL(wq1, q1));
					sxq0 = ADD(sxq0, MUL(wx, q0));
					sxq1 = ADD(sxq1, MUL(wx, q1));
				}
				afit8_consider(&s, sq0, sqq0, sxq0, valid);
				afit8_consider(&s, sq1, sqq1, sxq1, valid);
			}
			for (; k < ncand; k++) {
				F8 t = MUL(SET1(cand[k]), ir);
				F8 sq = ZERO, sqq = ZERO, sxq = ZERO;
				for (int i = 0; i < L; i++) {
					const int o = i * nsb + 8 * v;
					F8 q = RND(MAX(MIN(MUL(xs[i], t), N), ZERO));
					F8 wq = WMUL(unit, WGT(blk, unit, o), q);
					sq = ADD(sq, wq);
					sqq = ADD(sqq, MUL(wq, q));
					sxq = ADD(sxq, MUL(WXV(blk, unit, o, LD(blk->x + o)), q));
				}
				afit8_consider(&s, sq, sqq, sxq, valid);
			}
		}
		for (int l = 0; l < nlloyd; l++) {
			F8 act = AND(valid, GT(s.a, ZERO));
			if (!ANY(act))
				break;
			F8 t = DIV(SET1(1.0f), s.a), b = s.b;
			F8 sq = ZERO, sqq = ZERO, sxq = ZERO;
			for (int i = 0; i < L; i++) {
				const int o = i * nsb + 8 * v;
				F8 x = LD(blk->x + o);
				F8 q = RND(MAX(MIN(MUL(ADD(x, b), t), N), ZERO));
				F8 wq = WMUL(unit, WGT(blk, unit, o), q);
				sq = ADD(sq, wq);
				sqq = ADD(sqq, MUL(wq, q));
				sxq = ADD(sxq, MUL(WXV(blk, unit, o, x), q));
			}
			afit8_consider(&s, sq, sqq, sxq, act);
		}
	}
	ST(f->a + 8 * v, s.a);
	ST(f->b + 8 * v, s.b);
	ST(f->sw + 8 * v, s.sw);
	ST(f->sq + 8 * v, s.sq);
	ST(f->sqq + 8 * v, s.sqq);
}

static void fit_asym(const struct kq_block *blk, const struct kq_geom *g, const float *cand,
		     int ncand, int nshift, float shift, int nlloyd, struct kq_fit *f)
{
	const float N = (float)g->nmax;
	if (g->nsb == 16) {
		for (int v = 0; v < 2; v++) {
			if (blk->unit)
				fit_asym8(blk, 1, 16, 16, v, N, cand, ncand, nshift, shift, nlloyd, f);
			else
				fit_asym8(blk, 0, 16, 16, v, N, cand, ncand, nshift, shift, nlloyd, f);
		}
	} else if (blk->unit) {
		fit_asym8(blk, 1, 8, 32, 0, N, cand, ncand, nshift, shift, nlloyd, f);
	} else {
		fit_asym8(blk, 0, 8, 32, 0, N, cand, ncand, nshift, shift, nlloyd, f);
	}
}

/* ---- stage 1, symmetric: 16 sub-blocks of 16 (Q3_K, Q6_K), both lane groups at once */

struct sfit8 {
	F8 valid, imx, tol, best, a, scc;
};

static inline __attribute__((always_inline)) void sfit8_consider(struct sfit8 *s, F8 sxc, F8 sc2,
								   F8 mask)
{
	F8 ok = AND(mask, GT(sc2, ZERO));
	F8 sv = DIV(MUL(sxc, sxc), sc2);
	F8 take = AND(ok, GT(sv, ADD(s->best, s->tol)));
	s->best = SEL(s->best, sv, take);
	s->a = SEL(s->a, DIV(sxc, sc2), take);
	s->scc = SEL(s->scc, sc2, take);
}

static inline __attribute__((always_inline)) void sfit8_init(struct sfit8 *s,
							       const struct kq_block *blk,
							       const int unit, int v)
{
	const F8 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
	F8 amax = ZERO, mx = ZERO, sxx = ZERO;
	for (int i = 0; i < 16; i++) {
		const int o = i * 16 + 8 * v;
		F8 x = LD(blk->x + o), ax = AND(x, absm);
		F8 m = GT(ax, amax);
		amax = SEL(amax, ax, m);
		mx = SEL(mx, x, m);
		sxx = ADD(sxx, MUL(WXV(blk, unit, o, x), x));
	}
	s->valid = GT(amax, SET1(1e-15f));
	s->imx = DIV(SET1(1.0f), mx);
	s->best = SET1(-INFINITY);
	s->tol = MUL(SET1(1e-6f), sxx);
	s->a = s->scc = ZERO;
}

/* Sums of w x c and w c^2 for inverse scales t0 (lanes 0-7) and t1 (8-15). */
#define SYM_SUMS(unit, t0, t1, sxc0, sc20, sxc1, sc21)                                      \
	do {                                                                                \
		sxc0 = sc20 = sxc1 = sc21 = ZERO;                                           \
		for (int i = 0; i < 16; i++) {                                              \
			const int o = 16 * i;                                               \
			F8 x0 = LD(blk->x + o), x1 = LD(blk->x + o + 8);                    \
			F8 c0 = RND(MAX(MIN(MUL(x0, t0), hi), lo));                         \
			F8 c1 = RND(MAX(MIN(MUL(x1, t1), hi), lo));                         \
			sxc0 = ADD(sxc0, MUL(WXV(blk, unit, o, x0), c0));                   \
			sxc1 = ADD(sxc1, MUL(WXV(blk, unit, o + 8, x1), c1));               \
			sc20 = ADD(sc20, MUL(WMUL(unit, WGT(blk, unit, o), c0), c0));       \
			sc21 = ADD(sc21, MUL(WMUL(unit, WGT(blk, unit, o + 8), c1), c1));   \
		}                                                                           \
	} while (0)

static inline __attribute__((always_inline)) void fit_sym16(const struct kq_block *blk,
							      const int unit, float nmax,
							      const float *cand, int ncand,
							      int nlloyd, struct kq_fit *f)
{
	const F8 hi = SET1(nmax - 1.0f), lo = SET1(-nmax);
	struct sfit8 s0, s1;
	F8 sxc0, sc20, sxc1, sc21;
	sfit8_init(&s0, blk, unit, 0);
	sfit8_init(&s1, blk, unit, 1);
	if (ANY(s0.valid) | ANY(s1.valid)) {
		for (int k = 0; k < ncand; k++) {
			F8 c = SET1(cand[k]);
			F8 t0 = MUL(c, s0.imx), t1 = MUL(c, s1.imx);
			SYM_SUMS(unit, t0, t1, sxc0, sc20, sxc1, sc21);
			sfit8_consider(&s0, sxc0, sc20, s0.valid);
			sfit8_consider(&s1, sxc1, sc21, s1.valid);
		}
		for (int l = 0; l < nlloyd; l++) {
			F8 act0 = AND(s0.valid, NEQ(s0.a, ZERO)), act1 = AND(s1.valid, NEQ(s1.a, ZERO));
			if (!(ANY(act0) | ANY(act1)))
				break;
			F8 t0 = DIV(SET1(1.0f), s0.a), t1 = DIV(SET1(1.0f), s1.a);
			SYM_SUMS(unit, t0, t1, sxc0, sc20, sxc1, sc21);
			sfit8_consider(&s0, sxc0, sc20, act0);
			sfit8_consider(&s1, sxc1, sc21, act1);
		}
	}
	ST(f->a, s0.a);
	ST(f->a + 8, s1.a);
	ST(f->sqq, s0.scc);
	ST(f->sqq + 8, s1.scc);
	for (int v = 0; v < 2; v++) {
		ST(f->b + 8 * v, ZERO);
		ST(f->sw + 8 * v, ZERO);
		ST(f->sq + 8 * v, ZERO);
	}
}

static void fit_sym(const struct kq_block *blk, const struct kq_geom *g, const float *cand,
		    int ncand, int nlloyd, struct kq_fit *f)
{
	ISQ_ASSERT(g->nsb == 16 && g->L == 16);
	if (blk->unit)
		fit_sym16(blk, 1, (float)g->nmax, cand, ncand, nlloyd, f);
	else
		fit_sym16(blk, 0, (float)g->nmax, cand, ncand, nlloyd, f);
}

/* ---- requantization ---------------------------------------------------------- */

static inline void requant_asym8(struct kq_block *blk, const int unit, const int nsb,
				 const int L, int v, float nmax, const float *a, const float *b,
				 struct kq_res *res)
{
	const F8 N = SET1(nmax);
	F8 av = LD(a + 8 * v), bv = LD(b + 8 * v);
	F8 ia = SEL(ZERO, DIV(SET1(1.0f), av), GT(av, ZERO));
	F8 r2 = ZERO, rq = ZERO, r1 = ZERO, sq = ZERO, sqq = ZERO;
	for (int i = 0; i < L; i++) {
		const int o = i * nsb + 8 * v;
		F8 x = LD(blk->x + o), w = WGT(blk, unit, o);
		F8 q = RND(MAX(MIN(MUL(ADD(x, bv), ia), N), ZERO));
		F8 r = SUB(x, SUB(MUL(av, q), bv));
		F8 wr = WMUL(unit, w, r), wq = WMUL(unit, w, q);
		r2 = ADD(r2, MUL(wr, r));
		rq = ADD(rq, MUL(wr, q));
		r1 = ADD(r1, wr);
		sq = ADD(sq, wq);
		sqq = ADD(sqq, MUL(wq, q));
		store_codes(blk->q + o, q);
	}
	ST(res->r + 8 * v, r2);
	ST(res->rq + 8 * v, rq);
	ST(res->r1 + 8 * v, r1);
	ST(res->sq + 8 * v, sq);
	ST(res->sqq + 8 * v, sqq);
}

static void requant_asym(struct kq_block *blk, const struct kq_geom *g, const float *a,
			 const float *b, struct kq_res *res)
{
	const float N = (float)g->nmax;
	if (g->nsb == 16) {
		for (int v = 0; v < 2; v++) {
			if (blk->unit)
				requant_asym8(blk, 1, 16, 16, v, N, a, b, res);
			else
				requant_asym8(blk, 0, 16, 16, v, N, a, b, res);
		}
	} else if (blk->unit) {
		requant_asym8(blk, 1, 8, 32, 0, N, a, b, res);
	} else {
		requant_asym8(blk, 0, 8, 32, 0, N, a, b, res);
	}
}

static inline void requant_sym8(struct kq_block *blk, const int unit, const int nsb, const int L,
				int v, float nmax, const float *a, struct kq_res *res)
{
	const F8 hi = SET1(nmax - 1.0f), lo = SET1(-nmax), N = SET1(nmax);
	F8 av = LD(a + 8 * v);
	F8 ia = SEL(ZERO, DIV(SET1(1.0f), av), NEQ(av, ZERO));
	F8 r2 = ZERO, rc = ZERO, scc = ZERO;
	for (int i = 0; i < L; i++) {
		const int o = i * nsb + 8 * v;
		F8 x = LD(blk->x + o), w = WGT(blk, unit, o);
		F8 c = RND(MAX(MIN(MUL(x, ia), hi), lo));
		F8 r = SUB(x, MUL(av, c));
		F8 wr = WMUL(unit, w, r);
		r2 = ADD(r2, MUL(wr, r));
		rc = ADD(rc, MUL(wr, c));
		scc = ADD(scc, MUL(WMUL(unit, w, c), c));
		store_codes(blk->q + o, ADD(c, N));
	}
	ST(res->r + 8 * v, r2);
	ST(res->rq + 8 * v, rc);
	ST(res->r1 + 8 * v, ZERO);
	ST(res->sq + 8 * v, ZERO);
	ST(res->sqq + 8 * v, scc);
}

static void requant_sym(struct kq_block *blk, const struct kq_geom *g, const float *a,
			struct kq_res *res)
{
	const float N = (float)g->nmax;
	if (g->nsb == 16) {
		for (int v = 0; v < 2; v++) {
			if (blk->unit)
				requant_sym8(blk, 1, 16, 16, v, N, a, res);
			else
				requant_sym8(blk, 0, 16, 16, v, N, a, res);
		}
	} else if (blk->unit) {
		requant_sym8(blk, 1, 8, 32, 0, N, a, res);
	} else {
		requant_sym8(blk, 0, 8, 32, 0, N, a, res);
	}
}

/* ---- super-scale candidates, a lane per K ------------------------------------ */

static void kcost(const float *t, const float *ws, int nsb, float anchor, int khi, int nk,
		  float slo, float shi, float *dout, float *cost, float *s)
{
	const F8 lo = SET1(slo), hi = SET1(shi);
	const F8 cap = SET1(65504.0f), ncap = SET1(-65504.0f), inf = SET1(INFINITY);
	const __m256i step = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
	for (int k = 0; k < nk; k += 8) {
		F8 K = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_set1_epi32(khi - k), step));
		F8 v = MAX(MIN(DIV(SET1(anchor), K), cap), ncap);
		F8 d = _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
		F8 id = DIV(SET1(1.0f), d), c = ZERO;
		for (int j = 0; j < nsb; j++) {
			F8 tj = SET1(t[j]);
			F8 q = RND(MAX(MIN(MUL(tj, id), hi), lo));
			F8 e = SUB(tj, MUL(d, q));
			c = ADD(c, MUL(MUL(SET1(ws[j]), e), e));
			ST(s + j * nk + k, q);
		}
		ST(dout + k, d);
		ST(cost + k, SEL(c, inf, EQ(d, ZERO)));
	}
}

/* ---- packing ------------------------------------------------------------------- */

/* 16x16 byte transpose: r[i] (element i of sub-blocks 0..15) -> r[j] (sub-block j). */
static inline void tr16(__m128i *r)
{
	__m128i a[16], b[16];
	for (int i = 0; i < 8; i++) {
		a[i] = _mm_unpacklo_epi8(r[2 * i], r[2 * i + 1]);
		a[i + 8] = _mm_unpackhi_epi8(r[2 * i], r[2 * i + 1]);
	}
	for (int h = 0; h < 16; h += 8)
		for (int i = 0; i < 4; i++) {
			b[h + i] = _mm_unpacklo_epi16(a[h + 2 * i], a[h + 2 * i + 1]);
			b[h + i + 4] = _mm_unpackhi_epi16(a[h + 2 * i], a[h + 2 * i + 1]);
		}
	for (int h = 0; h < 16; h += 4)
		for (int i = 0; i < 2; i++) {
			a[h + i] = _mm_unpacklo_epi32(b[h + 2 * i], b[h + 2 * i + 1]);
			a[h + i + 2] = _mm_unpackhi_epi32(b[h + 2 * i], b[h + 2 * i + 1]);
		}
	for (int h = 0; h < 16; h += 2) {
		b[h] = _mm_unpacklo_epi64(a[h], a[h + 1]);
		b[h + 1] = _mm_unpackhi_epi64(a[h], a[h + 1]);
	}
	for (int q = 0; q < 16; q++)
		r[q] = b[q];
}

#define SL(v, n) _mm_slli_epi16(v, n)
#define SR(v, n) _mm_srli_epi16(v, n)
#define AND16(v, m) _mm_and_si128(v, _mm_set1_epi8(m))
#define OR16(a, b) _mm_or_si128(a, b)
#define ST16(p, v) _mm_storeu_si128((__m128i *)(p), v)

/* Four 2-bit fields of sub-blocks j, j+2, j+4, j+6 into one byte per element. */
static inline __m128i gather2x4(const __m128i *r, int j)
{
	return OR16(OR16(AND16(r[j], 3), SL(AND16(r[j + 2], 3), 2)),
		    OR16(SL(AND16(r[j + 4], 3), 4), SL(AND16(r[j + 6], 3), 6)));
}

static void pack_codes(const struct kq_type *t, void *dst, const struct kq_block *blk)
{
	__m128i r[16];
	if (t->g.nsb != 16) {
		t->pack_codes(dst, blk);
		return;
	}
	for (int i = 0; i < 16; i++)
		r[i] = _mm_loadu_si128((const __m128i *)(blk->q + 16 * i));
	tr16(r);
	if (t->id == ISQ_TYPE_Q2_K || t->id == ISQ_TYPE_Q3_K) {
		uint8_t *qs = t->id == ISQ_TYPE_Q2_K ? ((struct block_q2_K *)dst)->qs
						     : ((struct block_q3_K *)dst)->qs;
		for (int h = 0; h < 2; h++)
			for (int p = 0; p < 2; p++)
				ST16(qs + 32 * h + 16 * p, gather2x4(r, 8 * h + p));
		if (t->id == ISQ_TYPE_Q3_K) {
			uint8_t *hm = ((struct block_q3_K *)dst)->hmask;
			for (int p = 0; p < 2; p++) {
				__m128i acc = _mm_setzero_si128();
				for (int h = 0; h < 2; h++)
					for (int k = 0; k < 4; k++)
						acc = OR16(acc, SL(AND16(SR(r[8 * h + 2 * k + p], 2), 1), 4 * h + k));
				ST16(hm + 16 * p, acc);
			}
		}
	} else if (t->id == ISQ_TYPE_Q6_K) {
		struct block_q6_K *y = dst;
		for (int h = 0; h < 2; h++)
			for (int p = 0; p < 2; p++) {
				const __m128i *c = r + 8 * h + p;
				ST16(y->ql + 64 * h + 16 * p, OR16(AND16(c[0], 15), SL(AND16(c[4], 15), 4)));
				ST16(y->ql + 64 * h + 32 + 16 * p, OR16(AND16(c[2], 15), SL(AND16(c[6], 15), 4)));
				__m128i hb = OR16(OR16(AND16(SR(c[0], 4), 3), SL(AND16(SR(c[2], 4), 3), 2)),
						  OR16(SL(AND16(SR(c[4], 4), 3), 4), SL(AND16(SR(c[6], 4), 3), 6)));
				ST16(y->qh + 32 * h + 16 * p, hb);
			}
	} else {
		t->pack_codes(dst, blk);
	}
}

static const struct kq_ops avx2_ops = {
	.load = load,
	.fit_asym = fit_asym,
	.fit_sym = fit_sym,
	.requant_asym = requant_asym,
	.requant_sym = requant_sym,
	.kcost = kcost,
	.pack_codes = pack_codes,
};

size_t isq_quantize_q2_K_avx2(const float *src, void *dst, int64_t nrows, int64_t n_per_row,
			      const float *imatrix)
{
	return isq_kq_quantize(&isq_kq_q2_K, &avx2_ops, src, dst, nrows, n_per_row, imatrix);
}

size_t isq_quantize_q3_K_avx2(const float *src, void *dst, int64_t nrows, int64_t n_per_row,
			      const float *imatrix)
{
	return isq_kq_quantize(&isq_kq_q3_K, &avx2_ops, src, dst, nrows, n_per_row, imatrix);
}

size_t isq_quantize_q4_K_avx2(const float *src, void *dst, int64_t nrows, int64_t n_per_row,
			      const float *imatrix)
{
	return isq_kq_quantize(&isq_kq_q4_K, &avx2_ops, src, dst, nrows, n_per_row, imatrix);
}

size_t isq_quantize_q5_K_avx2(const float *src, void *dst, int64_t nrows, int64_t n_per_row,
			      const float *imatrix)
{
	return isq_kq_quantize(&isq_kq_q5_K, &avx2_ops, src, dst, nrows, n_per_row, imatrix);
}

size_t isq_quantize_q6_K_avx2(const float *src, void *dst, int64_t nrows, int64_t n_per_row,
			      const float *imatrix)
{
	return isq_kq_quantize(&isq_kq_q6_K, &avx2_ops, src, dst, nrows, n_per_row, imatrix);
}
