/*
 * kquants-ref.c - scalar element kernels of the K-quant encoder (the
 * oracle) and the reference quantizers.  Each loop over "lane" j is what
 * one SIMD lane of kernels/cpu/kquants-avx2.c computes: the AVX2 code must
 * repeat these operations exactly, in this order (see kquants-impl.h).
 */
#include "kquants-impl.h"

#include <math.h>

#define X(i) blk->x[(i) * nsb + j]
#define W(i) blk->w[(i) * nsb + j]
#define WX(i) blk->wx[(i) * nsb + j]

static void load(struct kq_block *blk, const struct kq_geom *g, const float *x, const float *w,
		 float wbias)
{
	const int nsb = g->nsb, L = g->L;
	blk->unit = w == NULL;
	for (int j = 0; j < nsb; j++)
		for (int i = 0; i < L; i++) {
			float xv = x[j * L + i], wv = w ? w[j * L + i] + wbias : 1.0f;
			X(i) = xv;
			W(i) = wv;
			WX(i) = wv * xv;
		}
}

struct afit {
	float sw, sx, sxx, tol;
	float bestE, a, b, sq, sqq;
};

/* Least-squares (a, b) for one code assignment; keep it if clearly better. */
static void afit_consider(struct afit *s, float sq, float sqq, float sxq)
{
	float a, b;
	if (!(sqq > 0.0f))
		return;
	float det = sqq * s->sw - sq * sq;
	float a0 = sxq / sqq;
	if (det > (1e-6f * sqq) * s->sw) {
		float a1 = (sxq * s->sw - sq * s->sx) / det;
		float b1 = (sq * sxq - sqq * s->sx) / det;
		if (b1 >= 0.0f) {
			a = a1;
			b = b1;
		} else {
			a = a0;
			b = 0.0f;
		}
	} else {
		a = a0;
		b = 0.0f;
	}
	float e = ((((s->sxx - (2.0f * a) * sxq) + (2.0f * b) * s->sx) + (a * a) * sqq) -
		   ((2.0f * a) * b) * sq) +
		  (b * b) * s->sw;
	if (e < s->bestE - s->tol) {
		s->bestE = e;
		s->a = a;
		s->b = b;
		s->sq = sq;
		s->sqq = sqq;
	}
}

static void fit_asym(const struct kq_block *blk, const struct kq_geom *g, const float *cand,
		     int ncand, int nshift, float shift, int nlloyd, struct kq_fit *f)
{
	const int nsb = g->nsb, L = g->L;
	const float N = (float)g->nmax;
	for (int j = 0; j < nsb; j++) {
		float mn = X(0), mx = X(0), xs[32];
		for (int i = 1; i < L; i++) {
			mn = kq_min(X(i), mn);
			mx = kq_max(X(i), mx);
		}
		mn = kq_min(mn, 0.0f);
		struct afit s = { 0 };
		for (int i = 0; i < L; i++) {
			s.sw += W(i);
			s.sx += WX(i);
			s.sxx += WX(i) * X(i);
		}
		s.tol = 1e-6f * s.sxx;
		s.bestE = INFINITY;
		s.b = 0.0f - mn;
		float range = mx - mn;
		if (range > 1e-30f) {
			for (int m = 0; m < nshift; m++) {
				float sh = ((float)m * shift) * range;
				float ir = 1.0f / (range - sh);
				for (int i = 0; i < L; i++)
					xs[i] = (X(i) - mn) - sh;
				for (int k = 0; k < ncand; k++) {
					float t = cand[k] * ir, sq = 0.0f, sqq = 0.0f, sxq = 0.0f;
					for (int i = 0; i < L; i++) {
						float q = kq_round(kq_max(kq_min(xs[i] * t, N), 0.0f));
						float wq = W(i) * q;
						sq += wq;
						sqq += wq * q;
						sxq += WX(i) * q;
					}
					afit_consider(&s, sq, sqq, sxq);
				}
			}
			for (int l = 0; l < nlloyd && s.a > 0.0f; l++) {
				float t = 1.0f / s.a, b = s.b, sq = 0.0f, sqq = 0.0f, sxq = 0.0f;
				for (int i = 0; i < L; i++) {
					float q = kq_round(kq_max(kq_min((X(i) + b) * t, N), 0.0f));
					float wq = W(i) * q;
					sq += wq;
					sqq += wq * q;
					sxq += WX(i) * q;
				}
				afit_consider(&s, sq, sqq, sxq);
			}
		}
		f->a[j] = s.a;
		f->b[j] = s.b;
		f->sw[j] = s.sw;
		f->sq[j] = s.sq;
		f->sqq[j] = s.sqq;
	}
}

static void fit_sym(const struct kq_block *blk, const struct kq_geom *g, const float *cand,
		    int ncand, int nlloyd, struct kq_fit *f)
{
	const int nsb = g->nsb, L = g->L;
	const float N = (float)g->nmax, hi = N - 1.0f, lo = -N;
	for (int j = 0; j < nsb; j++) {
		float amax = 0.0f, mx = 0.0f, sxx = 0.0f;
		for (int i = 0; i < L; i++) {
			float ax = fabsf(X(i));
			if (ax > amax) {
				amax = ax;
				mx = X(i);
			}
			sxx += WX(i) * X(i);
		}
		float a = 0.0f, scc = 0.0f;
		if (amax > 1e-15f) {
			float imx = 1.0f / mx, best = -INFINITY, tol = 1e-6f * sxx;
			for (int k = 0; k < ncand + nlloyd; k++) {
				float t;
				if (k < ncand)
					t = cand[k] * imx;
				else if (a != 0.0f)
					t = 1.0f / a;
				else
					break;
				float sxc = 0.0f, sc2 = 0.0f;
				for (int i = 0; i < L; i++) {
					float c = kq_round(kq_max(kq_min(X(i) * t, hi), lo));
					sxc += WX(i) * c;
					sc2 += (W(i) * c) * c;
				}
				if (sc2 > 0.0f) {
					float sv = (sxc * sxc) / sc2;
					if (sv > best + tol) {
						best = sv;
						a = sxc / sc2;
						scc = sc2;
					}
				}
			}
		}
		f->a[j] = a;
		f->b[j] = 0.0f;
		f->sw[j] = 0.0f;
		f->sq[j] = 0.0f;
		f->sqq[j] = scc;
	}
}

static void requant_asym(struct kq_block *blk, const struct kq_geom *g, const float *a,
			 const float *b, struct kq_res *res)
{
	const int nsb = g->nsb, L = g->L;
	const float N = (float)g->nmax;
	for (int j = 0; j < nsb; j++) {
		float aj = a[j], bj = b[j], ia = aj > 0.0f ? 1.0f / aj : 0.0f;
		float r2 = 0.0f, rq = 0.0f, r1 = 0.0f, sq = 0.0f, sqq = 0.0f;
		for (int i = 0; i < L; i++) {
			float q = kq_round(kq_max(kq_min((X(i) + bj) * ia, N), 0.0f));
			float r = X(i) - (aj * q - bj);
			float wr = W(i) * r, wq = W(i) * q;
			r2 += wr * r;
			rq += wr * q;
			r1 += wr;
			sq += wq;
			sqq += wq * q;
			blk->q[i * nsb + j] = (uint8_t)q;
		}
		res->r[j] = r2;
		res->rq[j] = rq;
		res->r1[j] = r1;
		res->sq[j] = sq;
		res->sqq[j] = sqq;
	}
}

static void requant_sym(struct kq_block *blk, const struct kq_geom *g, const float *a,
			struct kq_res *res)
{
	const int nsb = g->nsb, L = g->L;
	const float N = (float)g->nmax, hi = N - 1.0f, lo = -N;
	for (int j = 0; j < nsb; j++) {
		float aj = a[j], ia = aj != 0.0f ? 1.0f / aj : 0.0f;
		float r2 = 0.0f, rc = 0.0f, scc = 0.0f;
		for (int i = 0; i < L; i++) {
			float c = kq_round(kq_max(kq_min(X(i) * ia, hi), lo));
			float r = X(i) - aj * c;
			float wr = W(i) * r;
			r2 += wr * r;
			rc += wr * c;
			scc += (W(i) * c) * c;
			blk->q[i * nsb + j] = (uint8_t)(int)(c + N);
		}
		res->r[j] = r2;
		res->rq[j] = rc;
		res->r1[j] = 0.0f;
		res->sq[j] = 0.0f;
		res->sqq[j] = scc;
	}
}

static void kcost(const float *t, const float *ws, int nsb, float anchor, int khi, int nk,
		  float slo, float shi, float *dout, float *cost, float *s)
{
	for (int k = 0; k < nk; k++) {
		float v = anchor / (float)(khi - k);
		float d = kq_f16_round(kq_max(kq_min(v, 65504.0f), -65504.0f));
		float id = 1.0f / d, c = 0.0f;
		for (int j = 0; j < nsb; j++) {
			float q = kq_round(kq_max(kq_min(t[j] * id, shi), slo));
			float e = t[j] - d * q;
			c += (ws[j] * e) * e;
			s[j * nk + k] = q;
		}
		dout[k] = d;
		cost[k] = d == 0.0f ? INFINITY : c;
	}
}

static void pack_codes(const struct kq_type *t, void *dst, const struct kq_block *blk)
{
	t->pack_codes(dst, blk);
}

const struct kq_ops isq_kq_ref_ops = {
	.load = load,
	.fit_asym = fit_asym,
	.fit_sym = fit_sym,
	.requant_asym = requant_asym,
	.requant_sym = requant_sym,
	.kcost = kcost,
	.pack_codes = pack_codes,
};

size_t isq_quantize_q2_K_ref(const float *src, void *dst, int64_t nrows, int64_t n_per_row,
			     const float *imatrix)
{
	return isq_kq_quantize(&isq_kq_q2_K, &isq_kq_ref_ops, src, dst, nrows, n_per_row, imatrix);
}

size_t isq_quantize_q3_K_ref(const float *src, void *dst, int64_t nrows, int64_t n_per_row,
			     const float *imatrix)
{
	return isq_kq_quantize(&isq_kq_q3_K, &isq_kq_ref_ops, src, dst, nrows, n_per_row, imatrix);
}

size_t isq_quantize_q4_K_ref(const float *src, void *dst, int64_t nrows, int64_t n_per_row,
			     const float *imatrix)
{
	return isq_kq_quantize(&isq_kq_q4_K, &isq_kq_ref_ops, src, dst, nrows, n_per_row, imatrix);
}

size_t isq_quantize_q5_K_ref(const float *src, void *dst, int64_t nrows, int64_t n_per_row,
			     const float *imatrix)
{
	return isq_kq_quantize(&isq_kq_q5_K, &isq_kq_ref_ops, src, dst, nrows, n_per_row, imatrix);
}

size_t isq_quantize_q6_K_ref(const float *src, void *dst, int64_t nrows, int64_t n_per_row,
			     const float *imatrix)
{
	return isq_kq_quantize(&isq_kq_q6_K, &isq_kq_ref_ops, src, dst, nrows, n_per_row, imatrix);
}
