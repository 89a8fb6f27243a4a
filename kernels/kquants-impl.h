/*
 * kquants-impl.h - private to the K-quant kernels: the search engine shared
 * by the scalar reference and the AVX2 quantizers.
 *
 * One super-block is encoded in three steps (kquants-search.c):
 *   1. fit: per sub-block, a grid of candidate inverse scales (asymmetric
 *      types also shift the low end, i.e. clip the smallest values), each
 *      with its least-squares scale and min, then a few Lloyd steps (codes
 *      -> least-squares scale/min -> codes) give a continuous scale a (and
 *      subtracted min b).  Candidates run finest first and a later one must
 *      win by more than 1e-6 * sum w x^2: on exactly representable data
 *      (constant or two-valued blocks) every candidate fits, and the finest
 *      scale leaves the super-scale the most room;
 *   2. the fp16 super-scale d (and dmin) is searched over d = fp16(amax/K)
 *      for a range of K plus the least-squares d, jointly with the integer
 *      sub-scales, weighting each sub-block by its sensitivity;
 *   3. refinement: requantize the codes against the stored scales, refit
 *      the scales to the codes (K-search again, least squares, integer
 *      neighbours), and repeat while the weighted error drops.
 * Only the element-level loops (load, fit, requant, kcost, pack_codes)
 * differ between the scalar and the AVX2 build, through struct kq_ops.
 * Both versions evaluate every lane (= sub-block, or K candidate for kcost)
 * with the same binary32 operations in the same order, so their results
 * are identical, and everything else is this one compiled driver.
 *
 * Layout: struct kq_block keeps the super-block transposed, element i of
 * sub-block j at [i * nsb + j], so a SIMD lane holds one sub-block.
 */
#ifndef ISQ_KQUANTS_IMPL_H
#define ISQ_KQUANTS_IMPL_H

#include "kquants.h"

#include "blocks-k.h"

#define KQ_MAXSB 16

/* Shape of a K-quant: sub-blocks and code range. */
struct kq_geom {
	int nsb;  /* sub-blocks per super-block: 8 or 16 */
	int L;    /* elements per sub-block: 32 or 16 */
	int nmax; /* asymmetric: codes 0..nmax; symmetric: codes -nmax..nmax-1 */
};

/*
 * A super-block in transposed layout; see above.  With unit weights (no
 * imatrix) w and wx may be left unset: kernels then use w = 1, wx = x, which
 * gives the same sums since multiplying by 1 is exact.
 */
struct kq_block {
	float x[QK_K], w[QK_K], wx[QK_K]; /* wx = w * x */
	uint8_t q[QK_K];                  /* codes as stored (sym: code + nmax) */
	int unit;                         /* all weights are 1 */
};

/* Stage-1 results per sub-block. */
struct kq_fit {
	float a[KQ_MAXSB];   /* scale */
	float b[KQ_MAXSB];   /* asym: subtracted min (>= 0); sym: unused */
	float sw[KQ_MAXSB];  /* sum w */
	float sq[KQ_MAXSB];  /* asym: sum w q of the chosen codes */
	float sqq[KQ_MAXSB]; /* sum w q^2 (sym: sum w c^2) */
};

/* Residual sums after requantization, r = x - value, per sub-block. */
struct kq_res {
	float r[KQ_MAXSB];   /* sum w r^2, the weighted error */
	float rq[KQ_MAXSB];  /* sum w q r */
	float r1[KQ_MAXSB];  /* asym: sum w r */
	float sq[KQ_MAXSB];  /* asym: sum w q */
	float sqq[KQ_MAXSB]; /* sum w q^2 */
};

struct kq_type;

struct kq_ops {
	/* Fill blk from a super-block x and weights w (NULL: all weights 1;
	 * else w[i] + wbias). */
	void (*load)(struct kq_block *blk, const struct kq_geom *g, const float *x, const float *w,
		     float wbias);
	/*
	 * Stage 1.  cand[k] are numerators of the inverse scales, finest first.
	 * Asym: with min0 = min(min x, 0), r = max - min0 and, for each of the
	 * nshift low-end shifts sh = (m * shift) * r (m = 0..nshift-1), the grid
	 * t = cand[k] / (r - sh) over x - min0 - sh, clamped to 0..nmax.
	 * Sym: t = cand[k] / (signed absmax).
	 */
	void (*fit_asym)(const struct kq_block *blk, const struct kq_geom *g, const float *cand,
			 int ncand, int nshift, float shift, int nlloyd, struct kq_fit *f);
	void (*fit_sym)(const struct kq_block *blk, const struct kq_geom *g, const float *cand,
			int ncand, int nlloyd, struct kq_fit *f);
	/* Codes for value = a*q - b (sym: a*c) into blk->q, and their sums. */
	void (*requant_asym)(struct kq_block *blk, const struct kq_geom *g, const float *a,
			     const float *b, struct kq_res *res);
	void (*requant_sym)(struct kq_block *blk, const struct kq_geom *g, const float *a,
			    struct kq_res *res);
	/*
	 * Super-scale candidates: for k = 0..nk-1, d[k] = fp16(anchor/(khi-k))
	 * (magnitude capped at 65504), s[j * nk + k] = round(clamp(t[j]/d,
	 * slo, shi)) (computed as t[j] * (1/d)) and cost[k] = sum_j ws[j]
	 * (t[j] - d s)^2; cost is +inf when d is 0.  nk is a multiple of 8.
	 */
	void (*kcost)(const float *t, const float *ws, int nsb, float anchor, int khi, int nk,
		      float slo, float shi, float *d, float *cost, float *s);
	/* Store the codes of blk->q into block dst of type t (t->pack_codes' bytes). */
	void (*pack_codes)(const struct kq_type *t, void *dst, const struct kq_block *blk);
};

/* Search settings of one type in one mode (plain or with an imatrix). */
struct kq_search {
	const float *cand; /* stage-1 numerators, finest first */
	int ncand;
	int nshift; /* asym: low-end shifts of the grid (1: none) */
	float shift; /* asym: shift step, a fraction of max - min */
	int nlloyd; /* Lloyd steps after the grid */
	int krange; /* K runs from the top sub-scale down by this much */
	int iters;  /* refinement rounds */
	int nclip;  /* asym: restarts with the largest scale shrunk by 'clip' */
	float clip;
	int intstep; /* asym: joint integer (sc, m) moves per sub-block */
	int ls;      /* also try the least-squares super-scale */
};

struct kq_type {
	struct kq_geom g;
	int sym;   /* symmetric codes and signed sub-scales */
	int scmax; /* asym: sub-scales 0..scmax; sym: -(scmax+1)..scmax */
	struct kq_search plain, imat;
	size_t bsize; /* bytes per block */
	int id;       /* ISQ_TYPE_* */
	/* Store d, dmin and the sub-scales (m is NULL for symmetric types). */
	void (*pack_scales)(void *dst, float d, float dmin, const int *sc, const int *m);
	/* Store the codes of blk->q (the reference packer). */
	void (*pack_codes)(void *dst, const struct kq_block *blk);
};

extern const struct kq_type isq_kq_q2_K, isq_kq_q3_K, isq_kq_q4_K, isq_kq_q5_K, isq_kq_q6_K;
extern const struct kq_ops isq_kq_ref_ops;

/* Quantize rows with the given element kernels (kquants-search.c). */
size_t isq_kq_quantize(const struct kq_type *t, const struct kq_ops *ops, const float *src,
		       void *dst, int64_t nrows, int64_t n_per_row, const float *imatrix);

/* min/max with the SSE operand semantics (b when either is NaN). */
static inline float kq_min(float a, float b)
{
	return a < b ? a : b;
}
static inline float kq_max(float a, float b)
{
	return a > b ? a : b;
}
/* Round to nearest, ties to even, for |v| < 2^22. */
static inline float kq_round(float v)
{
	return (v + 12582912.0f) - 12582912.0f;
}

/* v rounded to the nearest binary16 value (ties to even), as a float. */
static inline float kq_f16_round(float v)
{
	uint32_t u, a;
	memcpy(&u, &v, 4);
	a = u & 0x7fffffffu;
	if (a >= 0x477ff000u) { /* >= 65520 rounds to inf; NaN stays NaN */
		if (a <= 0x7f800000u)
			u = (u & 0x80000000u) | 0x7f800000u;
	} else if (a < 0x38800000u) { /* below 2^-14: multiples of 2^-24 */
		float s = v < 0 ? -v : v;
		s = (s + 0.75f) - 0.75f;
		memcpy(&a, &s, 4);
		u = (u & 0x80000000u) | a;
	} else {
		u += 0xfffu + ((u >> 13) & 1u);
		u &= ~0x1fffu;
	}
	memcpy(&v, &u, 4);
	return v;
}

#endif
