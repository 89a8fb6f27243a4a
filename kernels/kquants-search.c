/*
 * kquants-search.c - the K-quant encoder, steps 2 and 3 of kquants-impl.h,
 * shared by the reference and the AVX2 quantizers.  Everything here is
 * scalar and compiled once, so the two builds agree bit for bit as long as
 * their element kernels (struct kq_ops) do.
 *
 * Errors are tracked in "delta form": after a requantization the residual
 * sums R = sum w r^2, Rq = sum w q r, R1 = sum w r give the exact change of
 * the error when (a, b) move by (da, db) with the codes fixed,
 *   dE = -2 da Rq + 2 db R1 + da^2 Sqq - 2 da db Sq + db^2 Sw,
 * free of the cancellation that sum w x^2 - ... would suffer on nearly exact
 * fits (constant or two-valued blocks).
 */
#include "kquants-impl.h"

#include <math.h>

#include "fp.h"

#define KQ_MAXK 136 /* K candidates per kcost call, a multiple of 8 */

struct kq_state {
	float d, dmin;
	int sc[KQ_MAXSB], m[KQ_MAXSB];
};

static inline float sround(float t, float id, float lo, float hi)
{
	return kq_round(kq_max(kq_min(t * id, hi), lo));
}

/* Weighted cost of representing targets t by d * s_j; fills s. */
static float scale_cost(const float *t, const float *ws, int nsb, float d, float lo, float hi,
			int *s)
{
	float id = 1.0f / d, c = 0.0f;
	for (int j = 0; j < nsb; j++) {
		float q = sround(t[j], id, lo, hi);
		float e = t[j] - d * q;
		c += (ws[j] * e) * e;
		s[j] = (int)q;
	}
	return c;
}

/*
 * Try d = fp16(anchor / K) for K = khi down to klo and keep the first that
 * beats *cost (strictly); with ls, then try the least-squares d for the
 * winner's integers.  On entry s holds the integers of d (when d != 0), on
 * return those of the returned d.
 */
static float pick_scale(const struct kq_ops *ops, const float *t, const float *ws, int nsb,
			float anchor, int khi, int klo, float lo, float hi, float d, float *cost,
			int *s, int ls)
{
	float dk[KQ_MAXK], ck[KQ_MAXK], sk[KQ_MAXK * KQ_MAXSB];
	int nk = khi - klo + 1, s2[KQ_MAXSB];
	if (nk > 0 && anchor != 0.0f) {
		const int n8 = (nk + 7) & ~7;
		int best = -1;
		ISQ_ASSERT(nk <= KQ_MAXK);
		ops->kcost(t, ws, nsb, anchor, khi, n8, lo, hi, dk, ck, sk);
		for (int k = 0; k < nk; k++) {
			if (ck[k] < *cost) {
				*cost = ck[k];
				best = k;
			}
		}
		if (best >= 0) {
			d = dk[best];
			for (int j = 0; j < nsb; j++)
				s[j] = (int)sk[j * n8 + best];
		}
	}
	if (!ls || d == 0.0f)
		return d;
	float num = 0.0f, den = 0.0f;
	for (int j = 0; j < nsb; j++) {
		num += (ws[j] * t[j]) * (float)s[j];
		den += (ws[j] * (float)s[j]) * (float)s[j];
	}
	if (den > 0.0f) {
		float dl = kq_f16_round(num / den);
		if (dl != 0.0f && fabsf(dl) <= 65504.0f) {
			float c = scale_cost(t, ws, nsb, dl, lo, hi, s2);
			if (c < *cost) {
				*cost = c;
				d = dl;
				memcpy(s, s2, sizeof(int) * (size_t)nsb);
			}
		}
	}
	return d;
}

static void zero_ints(int *s, int nsb)
{
	memset(s, 0, sizeof(int) * (size_t)nsb);
}

/* ---- asymmetric: value = (d sc) q - dmin m -------------------------------- */

static inline float delta_err(const struct kq_res *r, const float *sw, int j, float da, float db)
{
	return ((((-2.0f * da) * r->rq[j] + (2.0f * db) * r->r1[j]) + (da * da) * r->sqq[j]) -
		((2.0f * da) * db) * r->sq[j]) +
	       (db * db) * sw[j];
}

/* Best integer (sc, m) of sub-block j near the joint optimum, d and dmin fixed. */
static void best_int(const struct kq_res *r, const float *sw, int j, float aa, float bb,
		     float d, float dmin, int scmax, int *psc, int *pm)
{
	float sq = r->sq[j], sqq = r->sqq[j], w = sw[j];
	if (d == 0.0f || w <= 0.0f)
		return;
	float best = delta_err(r, sw, j, d * (float)*psc - aa, dmin * (float)*pm - bb);
	float det = sqq * w - sq * sq, da;
	if (det > (1e-6f * sqq) * w)
		da = (r->rq[j] * w - sq * r->r1[j]) / det;
	else
		da = sqq > 0.0f ? r->rq[j] / sqq : 0.0f;
	/* clamped before the conversion: far-off optima must not overflow an int */
	int c0 = (int)floorf(kq_max(kq_min((aa + da) / d, (float)scmax + 1.0f), -1.0f));
	for (int c = c0 - 1; c <= c0 + 2; c++) {
		if (c < 0 || c > scmax)
			continue;
		float dac = d * (float)c - aa;
		int m0 = *pm, m1 = *pm;
		if (dmin != 0.0f) {
			float bo = bb + (dac * sq - r->r1[j]) / w;
			m0 = (int)floorf(kq_max(kq_min(bo / dmin, (float)scmax + 1.0f), -1.0f));
			m1 = m0 + 1;
		}
		for (int mm = m0; mm <= m1; mm++) {
			int mc = mm < 0 ? 0 : mm > scmax ? scmax : mm;
			float e = delta_err(r, sw, j, dac, dmin * (float)mc - bb);
			if (e < best) {
				best = e;
				*psc = c;
				*pm = mc;
			}
		}
	}
}

static float asym_run(const struct kq_type *t, const struct kq_search *s, const struct kq_ops *ops,
		      struct kq_block *blk, const struct kq_fit *f, float clipf, struct kq_state *out,
		      uint8_t *qout)
{
	const struct kq_geom *g = &t->g;
	const int nsb = g->nsb, scmax = t->scmax, klo = scmax - s->krange;
	const float hi = (float)scmax;
	struct kq_state st;
	struct kq_res r;
	float aa[KQ_MAXSB], bb[KQ_MAXSB], tt[KQ_MAXSB], ww[KQ_MAXSB];
	float amax = 0.0f, bmax = 0.0f, cost;

	/* initial scales from the stage-1 fits */
	for (int j = 0; j < nsb; j++)
		if (f->a[j] > amax)
			amax = f->a[j];
	cost = INFINITY;
	zero_ints(st.sc, nsb);
	st.d = pick_scale(ops, f->a, f->sqq, nsb, amax * clipf, scmax, klo, 0.0f, hi, 0.0f, &cost,
			  st.sc, s->ls);
	for (int j = 0; j < nsb; j++) {
		float b = f->b[j];
		if (f->sw[j] > 0.0f)
			b = b + (f->sq[j] / f->sw[j]) * (st.d * (float)st.sc[j] - f->a[j]);
		tt[j] = kq_max(b, 0.0f);
		if (tt[j] > bmax)
			bmax = tt[j];
	}
	cost = INFINITY;
	zero_ints(st.m, nsb);
	st.dmin = pick_scale(ops, tt, f->sw, nsb, bmax, scmax, klo, 0.0f, hi, 0.0f, &cost, st.m, s->ls);

	float best = INFINITY;
	for (int it = 0;; it++) {
		for (int j = 0; j < nsb; j++) {
			aa[j] = st.d * (float)st.sc[j];
			bb[j] = st.dmin * (float)st.m[j];
		}
		ops->requant_asym(blk, g, aa, bb, &r);
		float e = 0.0f;
		for (int j = 0; j < nsb; j++)
			e += r.r[j];
		if (it > 0 && !(e < best))
			break;
		best = e;
		*out = st;
		memcpy(qout, blk->q, QK_K);
		if (it == s->iters)
			break;

		/* d: targets are the joint (a, b) optima, weighted by the Schur complement */
		float tmax = 0.0f;
		for (int j = 0; j < nsb; j++) {
			float sq = r.sq[j], sqq = r.sqq[j], w = f->sw[j];
			float det = sqq * w - sq * sq;
			if (det > (1e-6f * sqq) * w) {
				float da = (r.rq[j] * w - sq * r.r1[j]) / det;
				float db = (sq * r.rq[j] - sqq * r.r1[j]) / det;
				if (bb[j] + db >= 0.0f) {
					tt[j] = aa[j] + da;
					ww[j] = det / w;
				} else {
					tt[j] = aa[j] + (r.rq[j] - bb[j] * sq) / sqq;
					ww[j] = sqq;
				}
			} else if (sqq > 0.0f) {
				tt[j] = aa[j] + r.rq[j] / sqq;
				ww[j] = sqq;
			} else {
				tt[j] = aa[j];
				ww[j] = 0.0f;
			}
			if (tt[j] > tmax)
				tmax = tt[j];
		}
		cost = st.d != 0.0f ? scale_cost(tt, ww, nsb, st.d, 0.0f, hi, st.sc) : INFINITY;
		st.d = pick_scale(ops, tt, ww, nsb, tmax, scmax, klo, 0.0f, hi, st.d, &cost, st.sc, s->ls);

		/* dmin: conditional optima given the new scales */
		float bm = 0.0f;
		for (int j = 0; j < nsb; j++) {
			float da = st.d * (float)st.sc[j] - aa[j], b = bb[j];
			if (f->sw[j] > 0.0f)
				b = b + (da * r.sq[j] - r.r1[j]) / f->sw[j];
			tt[j] = kq_max(b, 0.0f);
			if (tt[j] > bm)
				bm = tt[j];
		}
		cost = st.dmin != 0.0f ? scale_cost(tt, f->sw, nsb, st.dmin, 0.0f, hi, st.m) : INFINITY;
		st.dmin = pick_scale(ops, tt, f->sw, nsb, bm, scmax, klo, 0.0f, hi, st.dmin, &cost, st.m, s->ls);

		/* joint integer moves per sub-block */
		for (int j = 0; j < nsb && s->intstep; j++)
			best_int(&r, f->sw, j, aa[j], bb[j], st.d, st.dmin, scmax, &st.sc[j], &st.m[j]);
	}
	return best;
}

static void asym_block(const struct kq_type *t, const struct kq_search *s, const struct kq_ops *ops,
		       struct kq_block *blk, void *dst)
{
	struct kq_fit f;
	struct kq_state st, best_st;
	uint8_t q[QK_K], best_q[QK_K];
	float best = INFINITY;

	ops->fit_asym(blk, &t->g, s->cand, s->ncand, s->nshift, s->shift, s->nlloyd, &f);
	for (int c = 0; c < s->nclip; c++) {
		float e = asym_run(t, s, ops, blk, &f, 1.0f - (float)c * s->clip, &st, q);
		if (e < best || c == 0) {
			best = e;
			best_st = st;
			memcpy(best_q, q, QK_K);
		}
	}
	memcpy(blk->q, best_q, QK_K);
	t->pack_scales(dst, best_st.d, best_st.dmin, best_st.sc, best_st.m);
	ops->pack_codes(t, dst, blk);
}

/* ---- symmetric: value = (d sc) c ------------------------------------------ */

static float sym_scale(const struct kq_type *t, const struct kq_search *s, const struct kq_ops *ops,
		       const float *tt, const float *ww, float d, float *cost, int *sc)
{
	const int nsb = t->g.nsb, top = t->scmax;
	float am = 0.0f, amax = 0.0f;
	for (int j = 0; j < nsb; j++) {
		if (fabsf(tt[j]) > amax) {
			amax = fabsf(tt[j]);
			am = tt[j];
		}
	}
	if (am == 0.0f)
		return d;
	const float lo = -(float)(top + 1), hi = (float)top;
	/* the largest sub-scale lands on -K, then on +K */
	d = pick_scale(ops, tt, ww, nsb, -am, top + 1, top + 1 - s->krange, lo, hi, d, cost, sc, 0);
	return pick_scale(ops, tt, ww, nsb, am, top, top - s->krange, lo, hi, d, cost, sc, s->ls);
}

static void sym_block(const struct kq_type *t, const struct kq_search *s, const struct kq_ops *ops,
		      struct kq_block *blk, void *dst)
{
	const struct kq_geom *g = &t->g;
	const int nsb = g->nsb;
	const float lo = -(float)(t->scmax + 1), hi = (float)t->scmax;
	struct kq_fit f;
	struct kq_res r;
	int sc[KQ_MAXSB], best_sc[KQ_MAXSB];
	float aa[KQ_MAXSB], tt[KQ_MAXSB], ww[KQ_MAXSB];
	uint8_t q[QK_K];
	float cost = INFINITY, d, best_d = 0.0f, best = INFINITY;

	ops->fit_sym(blk, g, s->cand, s->ncand, s->nlloyd, &f);
	zero_ints(sc, nsb);
	d = sym_scale(t, s, ops, f.a, f.sqq, 0.0f, &cost, sc);
	memcpy(best_sc, sc, sizeof(sc));
	for (int it = 0;; it++) {
		for (int j = 0; j < nsb; j++)
			aa[j] = d * (float)sc[j];
		ops->requant_sym(blk, g, aa, &r);
		float e = 0.0f;
		for (int j = 0; j < nsb; j++)
			e += r.r[j];
		if (it > 0 && !(e < best))
			break;
		best = e;
		best_d = d;
		memcpy(best_sc, sc, sizeof(sc));
		memcpy(q, blk->q, QK_K);
		if (it == s->iters)
			break;
		for (int j = 0; j < nsb; j++) {
			tt[j] = r.sqq[j] > 0.0f ? aa[j] + r.rq[j] / r.sqq[j] : aa[j];
			ww[j] = r.sqq[j];
		}
		cost = d != 0.0f ? scale_cost(tt, ww, nsb, d, lo, hi, sc) : INFINITY;
		d = sym_scale(t, s, ops, tt, ww, d, &cost, sc);
	}
	memcpy(blk->q, q, QK_K);
	t->pack_scales(dst, best_d, 0.0f, best_sc, NULL);
	ops->pack_codes(t, dst, blk);
}

/* ---- rows ------------------------------------------------------------------ */

#define KQ_BCHUNK 256 /* blocks per row whose weights are prepared at once */

size_t isq_kq_quantize(const struct kq_type *t, const struct kq_ops *ops, const float *src,
		       void *dst, int64_t nrows, int64_t n_per_row, const float *imatrix)
{
	ISQ_ASSERT(n_per_row % QK_K == 0 && nrows >= 0);
	const int64_t nb = n_per_row / QK_K;
	const size_t bsize = t->bsize;
	const struct kq_search *s = imatrix ? &t->imat : &t->plain;
	struct kq_block blk;
	float bias[KQ_BCHUNK];

	for (int64_t b0 = 0; b0 < nb; b0 += KQ_BCHUNK) {
		const int64_t b1 = b0 + KQ_BCHUNK < nb ? b0 + KQ_BCHUNK : nb;
		/*
		 * With an imatrix the weights are w + a tenth of the block's mean
		 * importance: columns the calibration barely saw still count a
		 * little, which keeps the plain error close to the unweighted
		 * optimum at almost no cost in weighted error.  A block whose
		 * importances are all zero is treated as unweighted.
		 */
		for (int64_t b = b0; b < b1 && imatrix; b++) {
			float sum = 0.0f;
			for (int i = 0; i < QK_K; i++)
				sum += imatrix[b * QK_K + i];
			bias[b - b0] = (sum / (float)QK_K) * 0.1f;
		}
		for (int64_t r = 0; r < nrows; r++) {
			for (int64_t b = b0; b < b1; b++) {
				const float *w = imatrix && bias[b - b0] > 0.0f ? imatrix + b * QK_K : NULL;
				uint8_t *out = (uint8_t *)dst + ((size_t)r * (size_t)nb + (size_t)b) * bsize;
				ops->load(&blk, &t->g, src + r * n_per_row + b * QK_K, w, w ? bias[b - b0] : 0.0f);
				if (t->sym)
					sym_block(t, s, ops, &blk, out);
				else
					asym_block(t, s, ops, &blk, out);
			}
		}
	}
	return (size_t)nrows * (size_t)nb * bsize;
}

/* ---- packing from the transposed codes --------------------------------------- */

/*
 * Row i of the transposed codes, blk->q + i * nsb, holds element i of every
 * sub-block.  For the 16x16 types, element 128h + 32k + 16p + i is element i
 * of sub-block 8h + 2k + p, i.e. byte 2k + p of the row's half h.  The rows
 * are packed eight codes at a time in 64-bit words (the kernels already
 * assume a little-endian host, as ggml's layouts do).
 */
#define B8(v) (0x0101010101010101ull * (v))

static inline uint64_t row64(const uint8_t *p)
{
	uint64_t u;
	memcpy(&u, p, 8);
	return u;
}

/* Bytes 0 and 1 of the result: 2-bit fields of bytes {0,2,4,6} and {1,3,5,7}. */
static inline uint64_t gather2(uint64_t u)
{
	u &= B8(3);
	u |= u >> 14;
	return u | u >> 28;
}

/* Low 4 bits: bit 0 of bytes 0, 2, 4, 6. */
static inline unsigned gather1(uint64_t u)
{
	return (unsigned)((u | u >> 15 | u >> 30 | u >> 45) & 15);
}

static void scales_q2_K(void *dst, float d, float dmin, const int *sc, const int *m)
{
	struct block_q2_K *y = dst;
	for (int j = 0; j < 16; j++)
		y->scales[j] = (uint8_t)(sc[j] | m[j] << 4);
	y->d = isq_fp32_to_fp16(d);
	y->dmin = isq_fp32_to_fp16(dmin);
}

static void codes_q2_K(void *dst, const struct kq_block *blk)
{
	struct block_q2_K *y = dst;
	for (int i = 0; i < 16; i++)
		for (int h = 0; h < 2; h++) {
			uint64_t g = gather2(row64(blk->q + 16 * i + 8 * h));
			y->qs[32 * h + i] = (uint8_t)g;
			y->qs[32 * h + 16 + i] = (uint8_t)(g >> 8);
		}
}

static void scales_q3_K(void *dst, float d, float dmin, const int *sc, const int *m)
{
	struct block_q3_K *y = dst;
	(void)dmin;
	(void)m;
	memset(y->scales, 0, sizeof(y->scales));
	for (int j = 0; j < 16; j++) {
		int v = sc[j] + 32;
		y->scales[j % 8] |= (uint8_t)((v & 15) << (j < 8 ? 0 : 4));
		y->scales[8 + j % 4] |= (uint8_t)((v >> 4) << (2 * (j / 4)));
	}
	y->d = isq_fp32_to_fp16(d);
}

static void codes_q3_K(void *dst, const struct kq_block *blk)
{
	struct block_q3_K *y = dst;
	for (int i = 0; i < 16; i++) {
		uint64_t u0 = row64(blk->q + 16 * i), u1 = row64(blk->q + 16 * i + 8);
		uint64_t g0 = gather2(u0), g1 = gather2(u1);
		y->qs[i] = (uint8_t)g0;
		y->qs[16 + i] = (uint8_t)(g0 >> 8);
		y->qs[32 + i] = (uint8_t)g1;
		y->qs[48 + i] = (uint8_t)(g1 >> 8);
		uint64_t h0 = (u0 >> 2) & B8(1), h1 = (u1 >> 2) & B8(1);
		y->hmask[i] = (uint8_t)(gather1(h0) | gather1(h1) << 4);
		y->hmask[16 + i] = (uint8_t)(gather1(h0 >> 8) | gather1(h1 >> 8) << 4);
	}
}

static void scales_k4(void *dst, float d, float dmin, const int *sc, const int *m)
{
	/* Q4_K and Q5_K start alike: d, dmin, scales[12] */
	struct block_q4_K *y = dst;
	y->d = isq_fp32_to_fp16(d);
	y->dmin = isq_fp32_to_fp16(dmin);
	for (int j = 0; j < 4; j++) {
		y->scales[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
		y->scales[j + 4] = (uint8_t)(m[j] | (m[j + 4] >> 4) << 6);
		y->scales[j + 8] = (uint8_t)((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
	}
}

/* Q4_K/Q5_K: row l holds element l of sub-blocks 0..7; chunk c pairs 2c, 2c+1. */
static void codes_q4_K(void *dst, const struct kq_block *blk)
{
	struct block_q4_K *y = dst;
	for (int l = 0; l < 32; l++) {
		uint64_t u = row64(blk->q + 8 * l);
		u |= u >> 4;
		for (int c = 0; c < 4; c++)
			y->qs[32 * c + l] = (uint8_t)(u >> (16 * c));
	}
}

static void codes_q5_K(void *dst, const struct kq_block *blk)
{
	struct block_q5_K *y = dst;
	for (int l = 0; l < 32; l++) {
		uint64_t u = row64(blk->q + 8 * l), lo = u & B8(15);
		lo |= lo >> 4;
		for (int c = 0; c < 4; c++)
			y->qs[32 * c + l] = (uint8_t)(lo >> (16 * c));
		/* bit 4 of byte b goes to bit b */
		y->qh[l] = (uint8_t)((((u >> 4) & B8(1)) * 0x0102040810204080ull) >> 56);
	}
}

static void scales_q6_K(void *dst, float d, float dmin, const int *sc, const int *m)
{
	struct block_q6_K *y = dst;
	(void)dmin;
	(void)m;
	for (int j = 0; j < 16; j++)
		y->scales[j] = (int8_t)sc[j];
	y->d = isq_fp32_to_fp16(d);
}

static void codes_q6_K(void *dst, const struct kq_block *blk)
{
	struct block_q6_K *y = dst;
	for (int i = 0; i < 16; i++)
		for (int h = 0; h < 2; h++) {
			uint64_t u = row64(blk->q + 16 * i + 8 * h);
			uint64_t lo = u & B8(15), g = gather2(u >> 4);
			lo |= lo >> 28; /* byte b: low nibble of b, then of b + 4 */
			y->ql[64 * h + i] = (uint8_t)lo;
			y->ql[64 * h + 16 + i] = (uint8_t)(lo >> 8);
			y->ql[64 * h + 32 + i] = (uint8_t)(lo >> 16);
			y->ql[64 * h + 48 + i] = (uint8_t)(lo >> 24);
			y->qh[32 * h + i] = (uint8_t)g;
			y->qh[32 * h + 16 + i] = (uint8_t)(g >> 8);
		}
}

/* ---- per-type settings ------------------------------------------------------- */

/*
 * Stage-1 grids.  Asymmetric numerators are nmax + r (the span max - min0
 * maps to nmax + r steps); symmetric ones are -(nmax + r) (the largest
 * element on the negative end) then nmax - 1 + r (on the positive end).
 * Finest first: of two candidates with the same error the finer scale wins,
 * which leaves the fp16 super-scale more room.
 */
static const float cand_q2_plain[] = { 3.9f, 3.7f, 3.5f, 3.3f, 3.1f, 2.9f, 2.7f, 2.5f, 2.3f, 2.1f };
static const float cand_q2_imat[] = { 4.0f, 3.9f, 3.8f, 3.7f, 3.6f, 3.5f, 3.4f, 3.3f, 3.2f, 3.1f, 3.0f,
				      2.9f, 2.8f, 2.7f, 2.6f, 2.5f, 2.4f, 2.3f, 2.2f, 2.1f, 2.0f };
static const float cand_q4[] = { 16.6f, 16.2f, 15.8f, 15.4f, 15.0f, 14.6f, 14.2f, 13.8f, 13.4f };
static const float cand_q5[] = { 32.6f, 32.2f, 31.8f, 31.4f, 31.0f, 30.6f, 30.2f, 29.8f, 29.4f };
static const float cand_q3_plain[] = { -4.45f, -4.0f, -3.55f, 3.45f, 3.0f, 2.55f };
static const float cand_q3_imat[] = { -5.5f, -5.2f, -4.9f, -4.6f, -4.3f, -4.0f, -3.7f, -3.4f,
				      -3.1f, -2.8f, -2.5f, 4.5f,  4.2f,  3.9f,  3.6f,  3.3f,
				      3.0f,  2.7f,  2.4f,  2.1f,  1.8f,  1.5f };
static const float cand_q6[] = { -33.0f, -32.7f, -32.4f, -32.1f, -31.8f, -31.5f, -31.2f, -30.9f,
				 31.8f,  31.5f,  31.2f,  30.9f,  30.6f,  30.3f,  30.0f };

#define N_(a) ((int)ISQ_ARRAY_SIZE(a))

/*
 * Settings, in struct kq_search order: grid, low-end shifts and step, Lloyd
 * steps, K range, refinement rounds, restarts and their shrink step, joint
 * integer moves, least-squares super-scale.  Chosen per type and mode on
 * ../shared/ref/ggml-vectors and the 8.3 benchmark matrix: the imatrix modes
 * afford more search because llama.cpp's own imatrix paths are slower.
 */
const struct kq_type isq_kq_q2_K = {
	.g = { 16, 16, 3 }, .sym = 0, .scmax = 15,
	.plain = { cand_q2_plain, N_(cand_q2_plain), 2, 0.1f, 2, 14, 3, 1, 0.1f, 0, 1 },
	.imat = { cand_q2_imat, N_(cand_q2_imat), 3, 0.1f, 4, 14, 8, 2, 0.1f, 0, 1 },
	.bsize = sizeof(struct block_q2_K), .id = ISQ_TYPE_Q2_K,
	.pack_scales = scales_q2_K, .pack_codes = codes_q2_K,
};
const struct kq_type isq_kq_q3_K = {
	.g = { 16, 16, 4 }, .sym = 1, .scmax = 31,
	.plain = { cand_q3_plain, N_(cand_q3_plain), 1, 0.0f, 1, 7, 0, 1, 0.0f, 0, 1 },
	.imat = { cand_q3_imat, N_(cand_q3_imat), 1, 0.0f, 4, 7, 8, 1, 0.0f, 0, 1 },
	.bsize = sizeof(struct block_q3_K), .id = ISQ_TYPE_Q3_K,
	.pack_scales = scales_q3_K, .pack_codes = codes_q3_K,
};
const struct kq_type isq_kq_q4_K = {
	.g = { 8, 32, 15 }, .sym = 0, .scmax = 63,
	.plain = { cand_q4, N_(cand_q4), 2, 0.02f, 2, 15, 2, 1, 0.0f, 0, 1 },
	.imat = { cand_q4, N_(cand_q4), 3, 0.02f, 2, 15, 8, 1, 0.0f, 1, 1 },
	.bsize = sizeof(struct block_q4_K), .id = ISQ_TYPE_Q4_K,
	.pack_scales = scales_k4, .pack_codes = codes_q4_K,
};
const struct kq_type isq_kq_q5_K = {
	.g = { 8, 32, 31 }, .sym = 0, .scmax = 63,
	.plain = { cand_q5, N_(cand_q5), 2, 0.02f, 2, 15, 2, 1, 0.0f, 0, 1 },
	.imat = { cand_q5, N_(cand_q5), 3, 0.02f, 2, 15, 8, 1, 0.0f, 1, 1 },
	.bsize = sizeof(struct block_q5_K), .id = ISQ_TYPE_Q5_K,
	.pack_scales = scales_k4, .pack_codes = codes_q5_K,
};
const struct kq_type isq_kq_q6_K = {
	.g = { 16, 16, 32 }, .sym = 1, .scmax = 127,
	.plain = { cand_q6, N_(cand_q6), 1, 0.0f, 3, 15, 2, 1, 0.0f, 0, 1 },
	.imat = { cand_q6, N_(cand_q6), 1, 0.0f, 3, 15, 8, 1, 0.0f, 0, 1 },
	.bsize = sizeof(struct block_q6_K), .id = ISQ_TYPE_Q6_K,
	.pack_scales = scales_q6_K, .pack_codes = codes_q6_K,
};
