/*
 * encode.h - the encoders of Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q8_1 IQ4_NL IQ4_XS
 * MXFP4, written once over the eight lanes of lanes.h and compiled twice:
 * kernels/encode-ref.c (portable, the reference) and
 * kernels/cpu/encode-avx2.c.  Include after lanes.h with ENC_SFX defined to
 * the suffix of the exported names (ref, avx2); the functions are declared
 * in quants.h.
 *
 * A lane is one 32-element block (for IQ4_XS one sub-block of a super-block)
 * and lanes never interact, so the bytes depend neither on the SIMD path nor
 * on how rows are grouped or split between threads.
 *
 * Objective: the importance-weighted squared error sum w_i (x_i - x'_i)^2,
 * w_i the imatrix weight of the element's column, or 1 without an imatrix
 * (importance is unrelated to a block's values, so the plain error is the
 * best stand-in; a block whose weights are all zero is treated as plain).
 * Every candidate scale is judged as stored (fp16-rounded, or d * l for
 * IQ4_XS), with the codes nearest to x / scale, which are optimal for that
 * scale under any weights.  A candidate's error comes from two sums,
 *   E(d) = Sxx - d (2 Sxq - d Sqq)      (Sxq = sum w x q, Sqq = sum w q^2),
 * so judging it costs one pass; the same sums give its least-squares
 * rescale d* = Sxq / Sqq, judged too with the same codes (an upper bound on
 * its error: requantizing against d* can only lower it).  Each search
 * includes the scale ggml's own encoder stores, so no block is worse than
 * ggml's under the objective.
 */

#define ENC_CAT2(a, b) a##b
#define ENC_CAT(a, b) ENC_CAT2(a, b)
#define ENC_FN(t) ENC_CAT(isq_quantize_##t##_, ENC_SFX)
#define ROW_FN(t) ENC_CAT(isq_quantize_row_##t##_, ENC_SFX)

/*
 * The AVX2 build inlines everything so each pass is one tight loop; the
 * reference keeps functions whole, which compiles an order of magnitude
 * faster (sanitizer builds included) and computes the same.
 */
#ifdef ISQ_LANES_AVX2
#define LV_INLINE static inline __attribute__((always_inline))
#else
#define LV_INLINE static __attribute__((noinline))
#endif

/* Eight lanes of 32 elements, transposed: element i of lane l at [i * LANES + l]. */
struct grp {
	float x[32 * LANES];
	float w[32 * LANES];  /* weights (with an imatrix only) */
	float wx[32 * LANES]; /* w * x */
	int32_t q[32 * LANES]; /* codes as stored */
};

/* ---- helpers ----------------------------------------------------------------------------------- */

/* Lane pointers for blocks k0.. of the nrows * nb blocks of 32: returns how many are real. */
LV_INLINE int lanes_at(const float *src, const float *imp, int64_t k0, int64_t total, int64_t nb,
		       const float *xs[LANES], const float *ws[LANES])
{
	int nv = total - k0 < LANES ? (int)(total - k0) : LANES;
	int64_t col = imp ? k0 % nb : 0;
	for (int l = 0; l < LANES; l++) {
		xs[l] = l < nv ? src + (k0 + l) * 32 : NULL;
		ws[l] = l < nv && imp ? imp + col * 32 : NULL;
		if (++col == nb)
			col = 0;
	}
	return nv;
}

LV_INLINE void grp_load(struct grp *g, const float *const xs[LANES], const float *const ws[LANES], int weighted)
{
	lv_transpose(g->x, xs, 32);
	if (!weighted)
		return;
	lv_transpose(g->w, ws, 32);
	vf sw = lv_zero();
	for (int i = 0; i < 32; i++)
		sw = lv_add(sw, lv_ld(g->w + i * LANES));
	vm none = lv_le(sw, lv_zero());
	int fix = lv_any(none);
	for (int i = 0; i < 32; i++) {
		vf w = lv_ld(g->w + i * LANES);
		if (fix) {
			w = lv_sel(none, lv_set(1.0f), w);
			lv_st(g->w + i * LANES, w);
		}
		lv_st(g->wx + i * LANES, lv_mul(w, lv_ld(g->x + i * LANES)));
	}
}

/* Largest |x| per lane, and the signed value of its first occurrence. */
LV_INLINE vf grp_amax(const struct grp *g, vf *signed_max)
{
	vf amax = lv_zero(), m = lv_zero();
	for (int i = 0; i < 32; i++) {
		vf x = lv_ld(g->x + i * LANES), a = lv_abs(x);
		vm gt = lv_gt(a, amax);
		amax = lv_sel(gt, a, amax);
		m = lv_sel(gt, x, m);
	}
	*signed_max = m;
	return amax;
}

/* 1/d, or 0 where d is 0 */
LV_INLINE vf inv_or_zero(vf d)
{
	vm z = lv_eq(d, lv_zero());
	return lv_sel(z, lv_zero(), lv_div(lv_set(1.0f), lv_sel(z, lv_set(1.0f), d)));
}

/* a / b, or 0 where b <= 0 */
LV_INLINE vf div_pos(vf a, vf b)
{
	vm pos = lv_gt(b, lv_zero());
	return lv_keep(pos, lv_div(a, lv_sel(pos, b, lv_set(1.0f))));
}

/* Keep (d, E) in lanes where E is strictly lower (earlier candidates win ties). */
LV_INLINE void take(vm ok, vf d, vf err, vf *best_d, vf *best_e)
{
	vm better = lv_and(ok, lv_lt(err, *best_e));
	*best_d = lv_sel(better, d, *best_d);
	*best_e = lv_sel(better, err, *best_e);
}

/* The fp16 value k representable steps further from zero than d (closer for k < 0); 0 past the ends. */
LV_INLINE vf h16_step(vf d, int k)
{
	uint16_t h[LANES];
	float out[LANES];
	lv_h16_bits(h, d);
	for (int l = 0; l < LANES; l++) {
		int mag = (h[l] & 0x7fff) + k;
		out[l] = mag <= 0 || mag >= 0x7c00 ? 0.0f : isq_fp16_to_fp32((uint16_t)(mag | (h[l] & 0x8000)));
	}
	return lv_ld(out);
}

/* Bytes (q[j] & 15) | (q[j + 16] & 15) << 4 of the nibble layouts, for lane l. */
LV_INLINE void pack_nibbles(const struct grp *g, uint8_t *const out[LANES], int nv)
{
	int32_t t[16 * LANES];
	vi m15 = li_set(15);
	for (int j = 0; j < 16; j++) {
		vi lo = li_and(li_ld(g->q + j * LANES), m15), hi = li_and(li_ld(g->q + (j + 16) * LANES), m15);
		li_st(t + j * LANES, li_or(lo, li_shl(hi, 4)));
	}
	lv_put_bytes(out, nv, t, 16);
}

/* Fifth bits of 5-bit codes: bit j of lane l = bit 4 of q[j]. */
LV_INLINE void pack_qh(const struct grp *g, uint8_t *const out[LANES], int nv)
{
	vi qh = li_set(0), one = li_set(1);
	for (int j = 0; j < 32; j++)
		qh = li_or(qh, li_shl(li_and(li_shr(li_ld(g->q + j * LANES), 4), one), j));
	int32_t t[LANES];
	li_st(t, qh);
	for (int l = 0; l < nv; l++)
		isq_put_le32(out[l], (uint32_t)t[l]);
}

LV_INLINE void put_h16(vf d, uint8_t *const out[LANES], int nv)
{
	uint16_t h[LANES];
	lv_h16_bits(h, d);
	for (int l = 0; l < nv; l++)
		isq_put_le16(out[l], h[l]);
}

/*
 * Residual sums of one code assignment, r = x - x' (x' as the decoder
 * computes it): E = sum w r^2, Srq = sum w r q, Sqq = sum w q^2, and for
 * the offset types Sr = sum w r, Sq = sum w q.  Moving the scale by delta
 * (and the offset by mu) with the codes kept changes the error to
 *   E + delta (delta Sqq - 2 Srq + 2 mu Sq) + mu (mu Sw - 2 Sr),
 * exactly: judged this way a least-squares step needs no extra pass and,
 * unlike sums of x, loses no precision on blocks the codes fit exactly.
 */
struct rsums {
	vf e, srq, sqq, sr, sq;
};

/* Judge d, then d moved by the least-squares step of its codes, to fp16. */
LV_INLINE void lsq_take(vm ok, vf d, const struct rsums *s, vf *best_d, vf *best_e)
{
	take(ok, d, s->e, best_d, best_e);
	vf dl = lv_h16(lv_add(d, div_pos(s->srq, s->sqq)));
	vf del = lv_sub(dl, d);
	vf el = lv_add(s->e, lv_mul(del, lv_sub(lv_mul(del, s->sqq), lv_add(s->srq, s->srq))));
	take(ok, dl, el, best_d, best_e);
}

/* ---- symmetric: Q4_0 (-8..7), Q5_0 (-16..15), Q8_0 (-127..127); x' = q d ------------------------- */

struct sym_params {
	int lo, hi;     /* signed code range */
	const float *L; /* candidates d = fp16(m / L): the signed extreme m lands on level L */
	int nL;
	int iters;      /* least-squares refits of the winner, requantized */
	int steps;      /* fp16 neighbours of the winner tried on each side */
};

LV_INLINE void sym_pass(const struct grp *g, int weighted, vf d, vf lo, vf hi, struct rsums *s)
{
	vf id = inv_or_zero(d), e = lv_zero(), srq = lv_zero(), sqq = lv_zero();
	for (int i = 0; i < 32; i++) {
		vf x = lv_ld(g->x + i * LANES);
		vf q = lv_round(lv_min(lv_max(lv_mul(x, id), lo), hi));
		vf r = lv_sub(x, lv_mul(q, d));
		if (weighted) {
			vf w = lv_ld(g->w + i * LANES), wr = lv_mul(w, r);
			e = lv_add(e, lv_mul(wr, r));
			srq = lv_add(srq, lv_mul(wr, q));
			sqq = lv_add(sqq, lv_mul(lv_mul(w, q), q));
		} else {
			e = lv_add(e, lv_mul(r, r));
			srq = lv_add(srq, lv_mul(r, q));
			sqq = lv_add(sqq, lv_mul(q, q));
		}
	}
	s->e = e;
	s->srq = srq;
	s->sqq = sqq;
}

LV_INLINE void sym_try(const struct grp *g, int weighted, vm ok, vf d, vf lo, vf hi, vf *best_d, vf *best_e)
{
	struct rsums s;
	sym_pass(g, weighted, d, lo, hi, &s);
	lsq_take(ok, d, &s, best_d, best_e);
}

/* The stored scale per lane (0 for a lane of zeros). */
LV_INLINE vf sym_search(const struct grp *g, int weighted, const struct sym_params *p)
{
	vf m, amax = grp_amax(g, &m);
	/* below this even the finest fp16 scale is too coarse; also keeps m / L finite */
	vm ok = lv_ge(amax, lv_set(1e-20f));
	vf best_d = lv_zero(), best_e = lv_set(INFINITY);
	vf lo = lv_set((float)p->lo), hi = lv_set((float)p->hi);
	vf ms = lv_sel(ok, m, lv_set(1.0f));
	for (int c = 0; c < p->nL; c++)
		sym_try(g, weighted, ok, lv_h16(lv_div(ms, lv_set(p->L[c]))), lo, hi, &best_d, &best_e);
	for (int it = 0; it < p->iters; it++)
		sym_try(g, weighted, ok, best_d, lo, hi, &best_d, &best_e);
	vf centre = best_d;
	for (int k = 1; k <= p->steps; k++) {
		sym_try(g, weighted, ok, h16_step(centre, k), lo, hi, &best_d, &best_e);
		sym_try(g, weighted, ok, h16_step(centre, -k), lo, hi, &best_d, &best_e);
	}
	return lv_keep(ok, best_d);
}

/* Codes q - lo for stored scale d. */
LV_INLINE void sym_codes(struct grp *g, vf d, int lo, int hi)
{
	vf id = inv_or_zero(d), vlo = lv_set((float)lo), vhi = lv_set((float)hi);
	vi off = li_set(-lo);
	for (int i = 0; i < 32; i++) {
		vf q = lv_round(lv_min(lv_max(lv_mul(lv_ld(g->x + i * LANES), id), vlo), vhi));
		li_st(g->q + i * LANES, li_add(lv_toi(q), off));
	}
}

/*
 * Q4_0 and Q5_0 without an imatrix must keep up with ggml's single guess
 * (the extreme on level -8), so they try few levels; with an imatrix the
 * budget is ggml's 19-point search, so the grid is dense and the winner is
 * refined.  The first candidate is always ggml's own scale.
 */
static const float q4_0_plain_L[] = { -8.0f, 7.0f, -8.5f };
static const float q4_0_imat_L[] = { -8.0f,  -8.25f, -8.5f, -8.75f, -9.0f, -9.5f, -7.75f, -7.5f, -7.25f, -7.0f,
				     7.0f,   7.25f,  7.5f,  7.75f,  8.0f,  6.75f, 6.5f,   -10.0f, 8.5f };
static const float q5_0_plain_L[] = { -16.0f, 15.0f, -17.0f };
static const float q5_0_imat_L[] = { -16.0f, -16.5f, -17.0f, -17.5f, -18.0f, -15.5f, -15.0f, -14.5f, -19.0f, 15.0f,
				     15.5f,  16.0f,  16.5f,  17.0f,  14.5f,  14.0f,  -20.0f, 18.0f };
static const float q8_0_imat_L[] = { -127.0f, -127.5f, -128.0f, -126.5f, -126.0f, -129.0f, -125.0f };

static const struct sym_params q4_0_plain = { -8, 7, q4_0_plain_L, ISQ_ARRAY_SIZE(q4_0_plain_L), 0, 0 };
static const struct sym_params q4_0_imat = { -8, 7, q4_0_imat_L, ISQ_ARRAY_SIZE(q4_0_imat_L), 2, 2 };
static const struct sym_params q5_0_plain = { -16, 15, q5_0_plain_L, ISQ_ARRAY_SIZE(q5_0_plain_L), 0, 0 };
static const struct sym_params q5_0_imat = { -16, 15, q5_0_imat_L, ISQ_ARRAY_SIZE(q5_0_imat_L), 2, 2 };
static const struct sym_params q8_0_imat = { -127, 127, q8_0_imat_L, ISQ_ARRAY_SIZE(q8_0_imat_L), 2, 1 };

/* ---- asymmetric: Q4_1 (0..15), Q5_1 (0..31); x' = q d + m -------------------------------------- */

struct asym_params {
	int nmax;
	const float *L;     /* candidates d = fp16((max - min) / L) */
	int nL;
	const float *shift; /* and m = fp16(min + shift * d) */
	int nshift;
	int iters;          /* least-squares refits of the winner */
	int steps;          /* fp16 neighbours of (d, m) tried around the winner */
};

struct asym_best {
	vf d, m, e;
};

LV_INLINE void asym_pass(const struct grp *g, int weighted, vf d, vf m, vf nmax, struct rsums *s)
{
	vf id = inv_or_zero(d);
	vf e = lv_zero(), sr = lv_zero(), srq = lv_zero(), sq = lv_zero(), sqq = lv_zero();
	for (int i = 0; i < 32; i++) {
		vf x = lv_ld(g->x + i * LANES);
		vf q = lv_round(lv_min(lv_max(lv_mul(lv_sub(x, m), id), lv_zero()), nmax));
		vf r = lv_sub(x, lv_add(lv_mul(q, d), m));
		if (weighted) {
			vf w = lv_ld(g->w + i * LANES), wr = lv_mul(w, r), wq = lv_mul(w, q);
			e = lv_add(e, lv_mul(wr, r));
			sr = lv_add(sr, wr);
			srq = lv_add(srq, lv_mul(wr, q));
			sq = lv_add(sq, wq);
			sqq = lv_add(sqq, lv_mul(wq, q));
		} else {
			e = lv_add(e, lv_mul(r, r));
			sr = lv_add(sr, r);
			srq = lv_add(srq, lv_mul(r, q));
			sq = lv_add(sq, q);
			sqq = lv_add(sqq, lv_mul(q, q));
		}
	}
	s->e = e;
	s->sr = sr;
	s->srq = srq;
	s->sq = sq;
	s->sqq = sqq;
}

LV_INLINE void asym_take(vm ok, vf d, vf m, vf err, struct asym_best *b)
{
	vm better = lv_and(ok, lv_lt(err, b->e));
	b->d = lv_sel(better, d, b->d);
	b->m = lv_sel(better, m, b->m);
	b->e = lv_sel(better, err, b->e);
}

/* Judge stored (d, m), then (d, m) moved by the least-squares step of its codes, to fp16. */
LV_INLINE void asym_try(const struct grp *g, int weighted, vm ok, vf sw, vf d, vf m, vf nmax, struct asym_best *b)
{
	struct rsums s;
	asym_pass(g, weighted, d, m, nmax, &s);
	asym_take(ok, d, m, s.e, b);
	vf det = lv_sub(lv_mul(sw, s.sqq), lv_mul(s.sq, s.sq));
	vm pos = lv_gt(det, lv_zero());
	vf idet = lv_div(lv_set(1.0f), lv_sel(pos, det, lv_set(1.0f)));
	vf dl = lv_h16(lv_add(d, lv_mul(lv_sub(lv_mul(sw, s.srq), lv_mul(s.sq, s.sr)), idet)));
	vf ml = lv_h16(lv_add(m, lv_mul(lv_sub(lv_mul(s.sqq, s.sr), lv_mul(s.sq, s.srq)), idet)));
	vf del = lv_sub(dl, d), mu = lv_sub(ml, m);
	vf t = lv_add(lv_sub(lv_mul(del, s.sqq), lv_add(s.srq, s.srq)), lv_mul(lv_add(mu, mu), s.sq));
	vf el = lv_add(s.e, lv_add(lv_mul(del, t), lv_mul(mu, lv_sub(lv_mul(mu, sw), lv_add(s.sr, s.sr)))));
	vm good = lv_and(lv_and(ok, pos), lv_and(lv_gt(dl, lv_zero()), lv_lt(lv_abs(ml), lv_set(65504.0f))));
	asym_take(good, dl, ml, el, b);
}

LV_INLINE void asym_search(const struct grp *g, int weighted, const struct asym_params *p, vf *d_out, vf *m_out)
{
	vf mn = lv_ld(g->x), mx = mn, sw = lv_zero(), e0 = lv_zero();
	for (int i = 0; i < 32; i++) {
		vf x = lv_ld(g->x + i * LANES);
		mn = lv_min(mn, x);
		mx = lv_max(mx, x);
		if (weighted) {
			vf w = lv_ld(g->w + i * LANES);
			sw = lv_add(sw, w);
			e0 = lv_add(e0, lv_mul(w, lv_mul(x, x)));
		} else {
			e0 = lv_add(e0, lv_mul(x, x));
		}
	}
	if (!weighted)
		sw = lv_set(32.0f);
	vf nmax = lv_set((float)p->nmax);
	/* the first candidate is ggml's (d = range / nmax, m = min); a constant block keeps d = 0 */
	vf range = lv_sub(mx, mn);
	vm ok = lv_lt(lv_max(lv_abs(mn), lv_abs(mx)), lv_set(65504.0f));
	/* all-zero is a candidate too: a block below fp16's resolution must not
	 * decode to a minimum larger than its values */
	struct asym_best b = { lv_zero(), lv_zero(), e0 };
	for (int c = 0; c < p->nL; c++) {
		vf d = lv_h16(lv_div(range, lv_set(p->L[c])));
		for (int k = 0; k < p->nshift; k++) {
			vf m = lv_h16(lv_add(mn, lv_mul(d, lv_set(p->shift[k]))));
			asym_try(g, weighted, ok, sw, d, m, nmax, &b);
		}
	}
	for (int it = 0; it < p->iters; it++)
		asym_try(g, weighted, ok, sw, b.d, b.m, nmax, &b);
	vf cd = b.d, cm = b.m;
	for (int k = 1; k <= p->steps; k++)
		for (int sd = -1; sd <= 1; sd++)
			for (int sm = -1; sm <= 1; sm++)
				if (sd || sm)
					asym_try(g, weighted, ok, sw, sd ? h16_step(cd, sd * k) : cd,
						 sm ? h16_step(cm, sm * k) : cm, nmax, &b);
	*d_out = lv_keep(ok, b.d);
	*m_out = lv_keep(ok, b.m);
}

LV_INLINE void asym_codes(struct grp *g, vf d, vf m, int nmax)
{
	vf id = inv_or_zero(d), vmax = lv_set((float)nmax);
	for (int i = 0; i < 32; i++) {
		vf q = lv_round(lv_min(lv_max(lv_mul(lv_sub(lv_ld(g->x + i * LANES), m), id), lv_zero()), vmax));
		li_st(g->q + i * LANES, lv_toi(q));
	}
}

/*
 * Without an imatrix, Q4_1/Q5_1 must keep pace with ggml's min/max encoder:
 * ggml's (d, m) and its least-squares step, plus one wider grid.  With an
 * imatrix (ggml searches 37 grids), the grid is dense, the minimum also
 * moves by fractions of a step (which matters when one outlier fixes the
 * range), and the winner is refined.
 */
static const float q4_1_plain_L[] = { 15.0f, 15.5f };
static const float q5_1_plain_L[] = { 31.0f, 32.0f };
static const float shift0[] = { 0.0f };
static const float q4_1_imat_L[] = { 15.0f, 14.0f, 14.5f, 15.5f, 16.0f, 16.5f, 17.0f, 13.5f, 13.0f, 12.0f, 18.0f };
static const float q5_1_imat_L[] = { 31.0f, 29.0f, 30.0f, 32.0f, 33.0f, 34.0f, 35.0f, 28.0f, 26.0f, 37.0f, 16.0f };
static const float imat_shift[] = { 0.0f, -0.25f, 0.25f, -0.5f };

static const struct asym_params q4_1_plain = { 15, q4_1_plain_L, ISQ_ARRAY_SIZE(q4_1_plain_L), shift0, 1, 0, 0 };
static const struct asym_params q5_1_plain = { 31, q5_1_plain_L, ISQ_ARRAY_SIZE(q5_1_plain_L), shift0, 1, 0, 0 };
static const struct asym_params q4_1_imat = { 15, q4_1_imat_L, ISQ_ARRAY_SIZE(q4_1_imat_L), imat_shift,
					      ISQ_ARRAY_SIZE(imat_shift), 2, 1 };
static const struct asym_params q5_1_imat = { 31, q5_1_imat_L, ISQ_ARRAY_SIZE(q5_1_imat_L), imat_shift,
					      ISQ_ARRAY_SIZE(imat_shift), 2, 1 };

/* ---- IQ4: x' = d K[q] with the 16-entry codebook ------------------------------------------------- */

static const float iq4_values[16] = { -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113 };
/* midpoints between neighbouring values, by the levels of a binary search */
static const float iq4_mid_l3[8] = { -93.5f, -28.5f, 19.0f, 79.0f, 0, 0, 0, 0 };
static const float iq4_mid_l4[8] = { -115.5f, -74.0f, -42.0f, -16.0f, 7.0f, 31.5f, 61.0f, 101.0f };

/* Index of the value nearest to v: the number of midpoints <= v (exact ties go up, as in ggml). */
LV_INLINE vi iq4_index(vf v)
{
	vm g1 = lv_ge(v, lv_set(-4.5f));
	vi idx = li_keep(g1, li_set(8));
	vm g2 = lv_ge(v, lv_sel(g1, lv_set(45.5f), lv_set(-57.0f)));
	idx = li_add(idx, li_keep(g2, li_set(4)));
	vm g3 = lv_ge(v, lv_lut8(iq4_mid_l3, li_shr(idx, 2)));
	idx = li_add(idx, li_keep(g3, li_set(2)));
	vm g4 = lv_ge(v, lv_lut8(iq4_mid_l4, li_shr(idx, 1)));
	return li_add(idx, li_keep(g4, li_set(1)));
}

/* Residual sums for scale d per lane, codes nearest to x / d. */
LV_INLINE void iq4_pass(const struct grp *g, int weighted, vf d, struct rsums *s)
{
	vf id = inv_or_zero(d), e = lv_zero(), srq = lv_zero(), sqq = lv_zero();
	for (int i = 0; i < 32; i++) {
		vf x = lv_ld(g->x + i * LANES);
		vf k = lv_lut16(iq4_values, iq4_index(lv_mul(x, id)));
		vf r = lv_sub(x, lv_mul(d, k));
		if (weighted) {
			vf w = lv_ld(g->w + i * LANES), wr = lv_mul(w, r);
			e = lv_add(e, lv_mul(wr, r));
			srq = lv_add(srq, lv_mul(wr, k));
			sqq = lv_add(sqq, lv_mul(lv_mul(w, k), k));
		} else {
			e = lv_add(e, lv_mul(r, r));
			srq = lv_add(srq, lv_mul(r, k));
			sqq = lv_add(sqq, lv_mul(k, k));
		}
	}
	s->e = e;
	s->srq = srq;
	s->sqq = sqq;
}

LV_INLINE void iq4_try(const struct grp *g, int weighted, vm ok, vf d, vf *best_d, vf *best_e)
{
	struct rsums s;
	iq4_pass(g, weighted, d, &s);
	lsq_take(ok, d, &s, best_d, best_e);
}

/*
 * Candidates put the block's signed extreme m near either end of the
 * codebook (d = m / L): ggml tries L = -134..-120 only; the +113 end often
 * serves a block better (its largest value is then exact and the negative
 * side has room).
 */
static const float iq4_L[] = { -127.0f, -124.0f, -130.0f, -121.0f, -133.0f, -118.0f, -136.0f, -115.0f,
			       -125.5f, -128.5f, -122.5f, -131.5f, -119.5f, -134.5f, -140.0f, 113.0f,
			       110.0f,  116.0f,  107.0f,  119.0f,  104.0f,  122.0f,  111.5f,  114.5f,
			       108.5f,  117.5f,  125.0f,  101.0f };

LV_INLINE vf iq4_nl_search(const struct grp *g, int weighted)
{
	vf m, amax = grp_amax(g, &m);
	vm ok = lv_ge(amax, lv_set(1e-20f));
	vf ms = lv_sel(ok, m, lv_set(1.0f));
	vf best_d = lv_zero(), best_e = lv_set(INFINITY);
	for (size_t c = 0; c < ISQ_ARRAY_SIZE(iq4_L); c++)
		iq4_try(g, weighted, ok, lv_h16(lv_div(ms, lv_set(iq4_L[c]))), &best_d, &best_e);
	for (int it = 0; it < 2; it++)
		iq4_try(g, weighted, ok, best_d, &best_d, &best_e);
	vf centre = best_d;
	iq4_try(g, weighted, ok, h16_step(centre, 1), &best_d, &best_e);
	iq4_try(g, weighted, ok, h16_step(centre, -1), &best_d, &best_e);
	return lv_keep(ok, best_d);
}

/* Codes for scale sc per lane. */
LV_INLINE void iq4_codes(struct grp *g, vf sc)
{
	vf id = inv_or_zero(sc);
	for (int i = 0; i < 32; i++)
		li_st(g->q + i * LANES, iq4_index(lv_mul(lv_ld(g->x + i * LANES), id)));
}

/* Unrounded least-squares sub-block scale per lane (IQ4_XS, before the scales are quantized). */
LV_INLINE vf iq4_sub_scale(const struct grp *g, int weighted)
{
	vf m, amax = grp_amax(g, &m);
	vm ok = lv_ge(amax, lv_set(1e-20f));
	vf ms = lv_sel(ok, m, lv_set(1.0f));
	vf best_s = lv_zero(), best_g = lv_zero();
	for (size_t c = 0; c < ISQ_ARRAY_SIZE(iq4_L); c++) {
		vf id = lv_div(lv_set(iq4_L[c]), ms), a = lv_zero(), b = lv_zero();
		for (int i = 0; i < 32; i++) {
			vf x = lv_ld(g->x + i * LANES);
			vf k = lv_lut16(iq4_values, iq4_index(lv_mul(x, id)));
			if (weighted) {
				a = lv_add(a, lv_mul(lv_ld(g->wx + i * LANES), k));
				b = lv_add(b, lv_mul(lv_mul(lv_ld(g->w + i * LANES), k), k));
			} else {
				a = lv_add(a, lv_mul(x, k));
				b = lv_add(b, lv_mul(k, k));
			}
		}
		/* the least-squares scale a / b explains a^2 / b of the block's energy */
		vf s = div_pos(a, b), gain = lv_mul(s, a);
		vm better = lv_and(ok, lv_gt(gain, best_g));
		best_s = lv_sel(better, s, best_s);
		best_g = lv_sel(better, gain, best_g);
	}
	return lv_keep(ok, best_s);
}

/* Per-lane error of sub-block scales d * l (l as floats). */
LV_INLINE vf xs_err(const struct grp *g, int weighted, float d, vf l)
{
	struct rsums s;
	iq4_pass(g, weighted, lv_mul(lv_set(d), l), &s);
	return s.e;
}

/*
 * IQ4_XS super-block: the 6-bit sub-scales l (-32..31) times one fp16 d.
 * d is searched with the sub-block holding the largest scale on several
 * levels (ggml: -32 only); then each sub-block tries its neighbouring
 * integer scales.
 */
static const float xs_D[] = { -32.0f, -31.0f, -30.0f, -31.5f, -30.5f, -29.0f, -28.0f, 31.0f, 30.0f, 29.0f, -33.0f };

LV_INLINE float iq4_xs_search(const struct grp *g, int weighted, vf *l_out)
{
	vf s = iq4_sub_scale(g, weighted);
	float sv[LANES], smax = 0, amax = 0;
	lv_st(sv, s);
	for (int l = 0; l < LANES; l++)
		if (fabsf(sv[l]) > amax) {
			amax = fabsf(sv[l]);
			smax = sv[l];
		}
	float best_d = 0, best = INFINITY;
	vf best_l = lv_zero(), best_el = lv_zero();
	if (!(amax > 0)) {
		*l_out = best_l;
		return 0.0f;
	}
	for (size_t c = 0; c < ISQ_ARRAY_SIZE(xs_D); c++) {
		float d = isq_fp16_to_fp32(isq_fp32_to_fp16(smax / xs_D[c]));
		if (d == 0.0f || !(fabsf(d) < 65504.0f))
			continue;
		vf q = lv_min(lv_max(lv_div(s, lv_set(d)), lv_set(-40.0f)), lv_set(40.0f));
		vf l = lv_min(lv_max(lv_round(q), lv_set(-32.0f)), lv_set(31.0f));
		vf el = xs_err(g, weighted, d, l);
		float tot = lv_hsum(el);
		if (tot < best) {
			best = tot;
			best_d = d;
			best_l = l;
			best_el = el;
		}
	}
	for (int round = 0; round < 2 && best_d != 0.0f; round++)
		for (int k = -1; k <= 1; k += 2) {
			vf l = lv_add(best_l, lv_set((float)k));
			vm in = lv_and(lv_ge(l, lv_set(-32.0f)), lv_le(l, lv_set(31.0f)));
			vf el = xs_err(g, weighted, best_d, l);
			vm better = lv_and(in, lv_lt(el, best_el));
			best_l = lv_sel(better, l, best_l);
			best_el = lv_sel(better, el, best_el);
		}
	*l_out = best_l;
	return best_d;
}

/* ---- MXFP4: x' = F[q] 2^(e - 128), F the doubled E2M1 values ------------------------------------ */

static const float mx_mag[8] = { 0, 1, 2, 3, 4, 6, 8, 12 };
static const float mx_mid_l3[8] = { 0.5f, 2.5f, 5.0f, 10.0f, 0, 0, 0, 0 };

/* Magnitude index nearest to a >= 0; exact ties go to the smaller magnitude, as ggml's first-minimum scan. */
LV_INLINE vi mx_index(vf a)
{
	vm g1 = lv_gt(a, lv_set(3.5f));
	vi idx = li_keep(g1, li_set(4));
	vm g2 = lv_gt(a, lv_sel(g1, lv_set(7.0f), lv_set(1.5f)));
	idx = li_add(idx, li_keep(g2, li_set(2)));
	vm g3 = lv_gt(a, lv_lut8(mx_mid_l3, li_shr(idx, 1)));
	return li_add(idx, li_keep(g3, li_set(1)));
}

/* 2^(e - 128) and 2^(128 - e) for e in 1..254 */
LV_INLINE vf mx_scale(vi e)
{
	vf d = li_as_float(li_shl(li_sub(e, li_set(1)), 23));
	return lv_sel(lv_eq(d, lv_zero()), li_as_float(li_set(0x00400000)), d);
}
LV_INLINE vf mx_inv(vi e) { return li_as_float(li_shl(li_sub(li_set(255), e), 23)); }

LV_INLINE vf mx_err(const struct grp *g, int weighted, vi e)
{
	vf d = mx_scale(e), id = mx_inv(e), err = lv_zero();
	for (int i = 0; i < 32; i++) {
		vf ax = lv_abs(lv_ld(g->x + i * LANES));
		vf r = lv_sub(ax, lv_mul(lv_lut8(mx_mag, mx_index(lv_mul(ax, id))), d));
		vf rr = lv_mul(r, r);
		err = lv_add(err, weighted ? lv_mul(lv_ld(g->w + i * LANES), rr) : rr);
	}
	return err;
}

/*
 * ggml takes e = floor(log2(amax)) - 2 (+127 bias), which may clip the
 * largest value by up to 2x; the exponent above it never clips.  Both are
 * judged and the lower weighted error wins (ggml's on ties).
 */
LV_INLINE vi mx_search(struct grp *g, int weighted)
{
	vf amax = lv_zero();
	for (int i = 0; i < 32; i++)
		amax = lv_max(amax, lv_abs(lv_ld(g->x + i * LANES)));
	vi e = li_min(li_max(li_sub(li_shr(lv_bits_of(amax), 23), li_set(2)), li_set(1)), li_set(253));
	vf e0 = mx_err(g, weighted, e), e1 = mx_err(g, weighted, li_add(e, li_set(1)));
	e = li_add(e, li_keep(lv_lt(e1, e0), li_set(1)));
	vm nz = lv_gt(amax, lv_zero());
	e = li_keep(nz, e);
	vf id = lv_keep(nz, mx_inv(e));
	for (int i = 0; i < 32; i++) {
		vf x = lv_ld(g->x + i * LANES);
		vi idx = mx_index(lv_mul(lv_abs(x), id));
		vm neg = lv_and(lv_lt(x, lv_zero()), lv_gt(li_tof(idx), lv_zero()));
		li_st(g->q + i * LANES, li_or(idx, li_keep(neg, li_set(8))));
	}
	return e;
}

/* ---- exported quantizers ---------------------------------------------------------------------- */

LV_INLINE void block_ptrs(void *dst, size_t bsize, int64_t k0, int nv, size_t off, uint8_t *out[LANES])
{
	for (int l = 0; l < LANES; l++)
		out[l] = l < nv ? (uint8_t *)dst + (size_t)(k0 + l) * bsize + off : NULL;
}

/* Q4_0 and Q5_0: f16 d, [u32 qh], 16 nibble bytes */
LV_INLINE size_t quant_sym32(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp, int five,
			     const struct sym_params *plain, const struct sym_params *imat)
{
	struct grp g;
	const float *xs[LANES], *ws[LANES];
	uint8_t *o[LANES];
	size_t bs = five ? 22 : 18;
	int64_t nb = n / 32, total = nrows * nb;
	for (int64_t k0 = 0; k0 < total; k0 += LANES) {
		int nv = lanes_at(src, imp, k0, total, nb, xs, ws);
		grp_load(&g, xs, ws, imp != NULL);
		vf d = imp ? sym_search(&g, 1, imat) : sym_search(&g, 0, plain);
		sym_codes(&g, d, plain->lo, plain->hi);
		block_ptrs(dst, bs, k0, nv, 0, o);
		put_h16(d, o, nv);
		if (five) {
			block_ptrs(dst, bs, k0, nv, 2, o);
			pack_qh(&g, o, nv);
		}
		block_ptrs(dst, bs, k0, nv, five ? 6 : 2, o);
		pack_nibbles(&g, o, nv);
	}
	return (size_t)total * bs;
}

size_t ENC_FN(q4_0)(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp)
{
	return quant_sym32(src, dst, nrows, n, imp, 0, &q4_0_plain, &q4_0_imat);
}

size_t ENC_FN(q5_0)(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp)
{
	return quant_sym32(src, dst, nrows, n, imp, 1, &q5_0_plain, &q5_0_imat);
}

/* Q4_1 and Q5_1: f16 d, f16 m, [u32 qh], 16 nibble bytes */
LV_INLINE size_t quant_asym32(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp, int five,
			      const struct asym_params *plain, const struct asym_params *imat)
{
	struct grp g;
	const float *xs[LANES], *ws[LANES];
	uint8_t *o[LANES];
	size_t bs = five ? 24 : 20;
	int64_t nb = n / 32, total = nrows * nb;
	for (int64_t k0 = 0; k0 < total; k0 += LANES) {
		int nv = lanes_at(src, imp, k0, total, nb, xs, ws);
		grp_load(&g, xs, ws, imp != NULL);
		vf d, m;
		if (imp)
			asym_search(&g, 1, imat, &d, &m);
		else
			asym_search(&g, 0, plain, &d, &m);
		asym_codes(&g, d, m, plain->nmax);
		block_ptrs(dst, bs, k0, nv, 0, o);
		put_h16(d, o, nv);
		block_ptrs(dst, bs, k0, nv, 2, o);
		put_h16(m, o, nv);
		if (five) {
			block_ptrs(dst, bs, k0, nv, 4, o);
			pack_qh(&g, o, nv);
		}
		block_ptrs(dst, bs, k0, nv, five ? 8 : 4, o);
		pack_nibbles(&g, o, nv);
	}
	return (size_t)total * bs;
}

size_t ENC_FN(q4_1)(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp)
{
	return quant_asym32(src, dst, nrows, n, imp, 0, &q4_1_plain, &q4_1_imat);
}

size_t ENC_FN(q5_1)(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp)
{
	return quant_asym32(src, dst, nrows, n, imp, 1, &q5_1_plain, &q5_1_imat);
}

size_t ENC_FN(iq4_nl)(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp)
{
	struct grp g;
	const float *xs[LANES], *ws[LANES];
	uint8_t *o[LANES];
	int64_t nb = n / 32, total = nrows * nb;
	for (int64_t k0 = 0; k0 < total; k0 += LANES) {
		int nv = lanes_at(src, imp, k0, total, nb, xs, ws);
		grp_load(&g, xs, ws, imp != NULL);
		vf d = imp ? iq4_nl_search(&g, 1) : iq4_nl_search(&g, 0);
		iq4_codes(&g, d);
		block_ptrs(dst, 18, k0, nv, 0, o);
		put_h16(d, o, nv);
		block_ptrs(dst, 18, k0, nv, 2, o);
		pack_nibbles(&g, o, nv);
	}
	return (size_t)total * 18;
}

size_t ENC_FN(iq4_xs)(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp)
{
	struct grp g;
	const float *xs[LANES], *ws[LANES];
	uint8_t *o[LANES];
	int64_t nsb = n / 256, total = nrows * nsb;
	for (int64_t k = 0; k < total; k++) {
		for (int l = 0; l < LANES; l++) {
			xs[l] = src + k * 256 + 32 * l;
			ws[l] = imp ? imp + (k % nsb) * 256 + 32 * l : NULL;
		}
		grp_load(&g, xs, ws, imp != NULL);
		vf lf;
		float d = imp ? iq4_xs_search(&g, 1, &lf) : iq4_xs_search(&g, 0, &lf);
		iq4_codes(&g, lv_mul(lv_set(d), lf));
		uint8_t *b = (uint8_t *)dst + k * 136;
		int32_t ls[LANES];
		li_st(ls, li_add(lv_toi(lf), li_set(32)));
		uint16_t sh = 0;
		memset(b + 4, 0, 4);
		for (int j = 0; j < LANES; j++) {
			b[4 + j / 2] |= (uint8_t)((ls[j] & 15) << (4 * (j % 2)));
			sh |= (uint16_t)((ls[j] >> 4) << (2 * j));
		}
		isq_put_le16(b, isq_fp32_to_fp16(d));
		isq_put_le16(b + 2, sh);
		for (int l = 0; l < LANES; l++)
			o[l] = b + 8 + 16 * l;
		pack_nibbles(&g, o, LANES);
	}
	return (size_t)total * 136;
}

size_t ENC_FN(mxfp4)(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp)
{
	struct grp g;
	const float *xs[LANES], *ws[LANES];
	uint8_t *o[LANES];
	int64_t nb = n / 32, total = nrows * nb;
	for (int64_t k0 = 0; k0 < total; k0 += LANES) {
		int nv = lanes_at(src, imp, k0, total, nb, xs, ws);
		grp_load(&g, xs, ws, imp != NULL);
		vi e = imp ? mx_search(&g, 1) : mx_search(&g, 0);
		int32_t ev[LANES];
		li_st(ev, e);
		for (int l = 0; l < nv; l++)
			((uint8_t *)dst)[(k0 + l) * 17] = (uint8_t)ev[l];
		block_ptrs(dst, 17, k0, nv, 1, o);
		pack_nibbles(&g, o, nv);
	}
	return (size_t)total * 17;
}

/* ---- Q8_0 / Q8_1: ggml's activation encoder, byte for byte ------------------------------------- */

/* round half away from zero, as C roundf */
LV_INLINE vf round_away(vf v)
{
	vf t = lv_trunc(v);
	vm half = lv_ge(lv_abs(lv_sub(v, t)), lv_set(0.5f));
	vf one = li_as_float(li_or(li_and(lv_bits_of(v), li_set((int32_t)0x80000000u)), lv_bits_of(lv_set(1.0f))));
	return lv_add(t, lv_keep(half, one));
}

/* d = amax / 127, codes roundf(x / d) with 1/d as ggml computes it; *sum gets the code sums. */
LV_INLINE vf q8_encode(struct grp *g, vi *sum)
{
	vf amax = lv_zero();
	for (int i = 0; i < 32; i++)
		amax = lv_max(amax, lv_abs(lv_ld(g->x + i * LANES)));
	vf d = lv_div(amax, lv_set(127.0f)), id = inv_or_zero(d);
	vi s = li_set(0);
	for (int i = 0; i < 32; i++) {
		vi q = lv_toi(round_away(lv_mul(lv_ld(g->x + i * LANES), id)));
		li_st(g->q + i * LANES, q);
		s = li_add(s, q);
	}
	*sum = s;
	return d;
}

LV_INLINE void pack_bytes(const struct grp *g, uint8_t *const out[LANES], int nv)
{
	lv_put_bytes(out, nv, g->q, 32);
}

LV_INLINE void q8_rows(const float *x, void *dst, int64_t nblocks, int with_sum)
{
	struct grp g;
	const float *xs[LANES], *ws[LANES];
	uint8_t *o[LANES];
	size_t bs = with_sum ? 36 : 34;
	for (int64_t k0 = 0; k0 < nblocks; k0 += LANES) {
		int nv = lanes_at(x, NULL, k0, nblocks, 1, xs, ws);
		grp_load(&g, xs, ws, 0);
		vi sum;
		vf d = q8_encode(&g, &sum);
		block_ptrs(dst, bs, k0, nv, 0, o);
		put_h16(d, o, nv);
		if (with_sum) {
			block_ptrs(dst, bs, k0, nv, 2, o);
			put_h16(lv_mul(li_tof(sum), d), o, nv);
		}
		block_ptrs(dst, bs, k0, nv, with_sum ? 4 : 2, o);
		pack_bytes(&g, o, nv);
	}
}

void ROW_FN(q8_0)(const float *x, void *dst, int64_t n)
{
	q8_rows(x, dst, n / 32, 0);
}

void ROW_FN(q8_1)(const float *x, void *dst, int64_t n)
{
	q8_rows(x, dst, n / 32, 1);
}

/* With an imatrix, Q8_0 weights search their scale (the activation path above stays ggml's). */
size_t ENC_FN(q8_0)(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp)
{
	int64_t nb = n / 32, total = nrows * nb;
	if (!imp) {
		q8_rows(src, dst, total, 0);
		return (size_t)total * 34;
	}
	struct grp g;
	const float *xs[LANES], *ws[LANES];
	uint8_t *o[LANES];
	for (int64_t k0 = 0; k0 < total; k0 += LANES) {
		int nv = lanes_at(src, imp, k0, total, nb, xs, ws);
		grp_load(&g, xs, ws, 1);
		vf d = sym_search(&g, 1, &q8_0_imat);
		sym_codes(&g, d, -127, 127);
		for (int i = 0; i < 32 * LANES; i++)
			g.q[i] -= 127;
		block_ptrs(dst, 34, k0, nv, 0, o);
		put_h16(d, o, nv);
		block_ptrs(dst, 34, k0, nv, 2, o);
		pack_bytes(&g, o, nv);
	}
	return (size_t)total * 34;
}

size_t ENC_FN(q8_1)(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp)
{
	(void)imp;
	q8_rows(src, dst, nrows * (n / 32), 1);
	return (size_t)(nrows * (n / 32)) * 36;
}
