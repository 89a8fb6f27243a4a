/*
 * afq.c - AFQ (MLX's affine quantization, as mistral.rs stores it): value =
 * q * scale + bias per group, codes packed LSB-first into u32 words.
 *
 * mistral.rs (CPU and CUDA) takes scale = (max - min) / (2^b - 1) and bias =
 * min.  That spends the two extreme codes on the two extreme values, which
 * is rarely the least-squares choice, and ignores that scale and bias are
 * then rounded to the model's dtype (BF16 keeps 8 bits).  Here each group
 * tries mistral.rs's pair first, then a grid of inverse scales (nmax - 1 ..
 * nmax + 1 steps across the range), each followed by a weighted
 * least-squares fit of scale and bias to its codes, done in the order
 * bias, scale, bias with rounding to the dtype in between (so the second
 * parameter compensates the first one's rounding); codes are always
 * re-derived from the rounded pair and the pair is judged by the error it
 * really has.  Then Lloyd steps from the best codes while they help.
 */
#include "mrs-impl.h"

#define AFQ_RMIN (-1.0f)
#define AFQ_RDELTA 0.1f
#define AFQ_NSTEP 20
#define AFQ_REFINE 4

/* ---- reference element loops (eight lanes, see mrs-impl.h) ---- */

float isq_mrs_afq_eval_ref(const float *x, const float *w, int n, float s, float b, float id, float nmax,
			   uint8_t *q)
{
	float acc[8] = { 0 };
	for (int i = 0; i < n; i += 8)
		for (int l = 0; l < 8; l++) {
			float v = mrs_rne(mrs_clamp((x[i + l] - b) * id, 0.0f, nmax));
			float r = x[i + l] - (v * s + b);
			acc[l] = acc[l] + w[i + l] * (r * r);
			q[i + l] = (uint8_t)v;
		}
	return mrs_hsum8(acc);
}

void isq_mrs_afq_codes_ref(const float *x, int n, float mn, float is, float nmax, uint8_t *q)
{
	for (int i = 0; i < n; i++)
		q[i] = (uint8_t)mrs_rne(mrs_clamp((x[i] - mn) * is, 0.0f, nmax));
}

void isq_mrs_afq_sums_ref(const float *x, const float *w, const uint8_t *q, int n, float out[5])
{
	float a[5][8] = { { 0 } };
	for (int i = 0; i < n; i += 8)
		for (int l = 0; l < 8; l++) {
			float lq = (float)q[i + l], wq = w[i + l] * lq;
			a[0][l] = a[0][l] + w[i + l];
			a[1][l] = a[1][l] + wq;
			a[2][l] = a[2][l] + wq * lq;
			a[3][l] = a[3][l] + w[i + l] * x[i + l];
			a[4][l] = a[4][l] + wq * x[i + l];
		}
	for (int j = 0; j < 5; j++)
		out[j] = mrs_hsum8(a[j]);
}

/* ---- the group search ---- */

struct afq_best {
	float err, s, b;
	uint8_t *q;
};

static void afq_try(const struct mrs_kern *k, const float *x, const float *w, int n, float nmax,
		    enum isq_mrs_dtype dt, float sr, float br, struct afq_best *best, uint8_t *scratch)
{
	if (!(fabsf(sr) <= FLT_MAX) || !(fabsf(br) <= FLT_MAX))
		return;
	float id = sr != 0.0f ? 1.0f / sr : 0.0f;
	if (!(fabsf(id) <= FLT_MAX))
		id = 0.0f;
	float err = k->afq_eval(x, w, n, sr, br, id, nmax, scratch);
	if (err < best->err) {
		best->err = err;
		best->s = sr;
		best->b = br;
		memcpy(best->q, scratch, (size_t)n);
	}
	(void)dt;
}

/* Least-squares (scale, bias) for codes q, rounding in between; then judge the rounded pair. */
static void afq_fit(const struct mrs_kern *k, const float *x, const float *w, const uint8_t *q, int n,
		    float nmax, enum isq_mrs_dtype dt, struct afq_best *best, uint8_t *scratch)
{
	float sm[5];
	k->afq_sums(x, w, q, n, sm);
	double sw = sm[0], sq = sm[1], sqq = sm[2], sx = sm[3], sqx = sm[4];
	double det = sw * sqq - sq * sq;
	if (!(det > 0) || !(sqq > 0))
		return;
	double b = (sqq * sx - sq * sqx) / det;
	float br = isq_mrs_round_dtype((float)b, dt);
	float sr = isq_mrs_round_dtype((float)((sqx - (double)br * sq) / sqq), dt);
	br = isq_mrs_round_dtype((float)((sx - (double)sr * sq) / sw), dt);
	afq_try(k, x, w, n, nmax, dt, sr, br, best, scratch);
}

/* v moved by k units in the last place of a 16-bit dtype (v already representable) */
static float dt_step(float v, enum isq_mrs_dtype dt, int k)
{
	uint16_t h = dt == ISQ_MRS_F16 ? isq_fp32_to_fp16(v) : isq_fp32_to_bf16(v);
	int mag = (h & 0x7fff) + ((h & 0x8000) ? -k : k);
	if (mag < 0 || mag >= (dt == ISQ_MRS_F16 ? 0x7c00 : 0x7f80))
		return NAN;
	h = (uint16_t)((h & 0x8000) | mag);
	return dt == ISQ_MRS_F16 ? isq_fp16_to_fp32(h) : isq_bf16_to_fp32(h);
}

/*
 * With 16-bit scales the rounding of the scale dominates at 6 and 8 bits
 * (code 255 multiplies it): try the neighbouring representable scales, each
 * with its least-squares bias for the current codes.
 */
static void afq_neighbours(const struct mrs_kern *k, const float *x, const float *w, int n, float nmax,
			   enum isq_mrs_dtype dt, struct afq_best *best, uint8_t *trial, uint8_t *scratch)
{
	static const int steps[4] = { -1, 1, -2, 2 };
	float s0 = best->s;
	float sm[5];
	memcpy(trial, best->q, (size_t)n);
	k->afq_sums(x, w, trial, n, sm);
	for (int i = 0; i < 4; i++) {
		float sr = dt_step(s0, dt, steps[i]);
		if (!(sr == sr) || !(sm[0] > 0))
			continue;
		float br = isq_mrs_round_dtype((float)(((double)sm[3] - (double)sr * sm[1]) / sm[0]), dt);
		afq_try(k, x, w, n, nmax, dt, sr, br, best, scratch);
	}
}

void isq_mrs_afq_group(const struct mrs_kern *k, const float *x, const float *w, int n, int nmax,
		       enum isq_mrs_dtype dt, float *s, float *b, uint8_t *q)
{
	uint8_t trial[MRS_MAXG], scratch[MRS_MAXG];
	float fn = (float)nmax, mn = x[0], mx = x[0];
	for (int i = 1; i < n; i++) {
		mn = x[i] < mn ? x[i] : mn;
		mx = x[i] > mx ? x[i] : mx;
	}
	float range = mx - mn;
	/* mistral.rs's CPU rule first: every other candidate has to beat it */
	float s0 = range < 1e-12f ? 1.0f : range / fn;
	if (!(s0 <= FLT_MAX))
		s0 = mx / fn - mn / fn;
	struct afq_best best = { INFINITY, 0, 0, q };
	afq_try(k, x, w, n, fn, dt, isq_mrs_round_dtype(s0, dt), isq_mrs_round_dtype(mn, dt), &best, scratch);
	if (!(best.err < INFINITY)) { /* only for absurd magnitudes: keep the rule's pair */
		best.s = isq_mrs_round_dtype(s0, dt);
		best.b = isq_mrs_round_dtype(mn, dt);
		float id = best.s != 0.0f ? 1.0f / best.s : 0.0f;
		k->afq_eval(x, w, n, best.s, best.b, fabsf(id) <= FLT_MAX ? id : 0.0f, fn, q);
	}
	if (range > 0.0f && range <= FLT_MAX) {
		for (int is = 0; is <= AFQ_NSTEP; is++) {
			float isc = (fn + AFQ_RMIN + AFQ_RDELTA * (float)is) / range;
			k->afq_codes(x, n, mn, isc, fn, trial);
			afq_fit(k, x, w, trial, n, fn, dt, &best, scratch);
		}
		for (int it = 0; it < AFQ_REFINE; it++) {
			float before = best.err;
			memcpy(trial, q, (size_t)n);
			afq_fit(k, x, w, trial, n, fn, dt, &best, scratch);
			if (!(best.err < before))
				break;
		}
		if (dt != ISQ_MRS_F32)
			afq_neighbours(k, x, w, n, fn, dt, &best, trial, scratch);
	}
	*s = best.s;
	*b = best.b;
}

/* ---- bit stream ---- */

void isq_mrs_afq_pack(const uint8_t *q, int n, int bits, uint8_t *words)
{
	int nw = n * bits / 32;
	uint32_t acc[MRS_MAXG * 8 / 32] = { 0 };
	for (int j = 0; j < n; j++) {
		int pos = j * bits, wi = pos >> 5, off = pos & 31;
		acc[wi] |= (uint32_t)q[j] << off;
		if (off + bits > 32)
			acc[wi + 1] |= (uint32_t)q[j] >> (32 - off);
	}
	for (int i = 0; i < nw; i++)
		isq_put_le32(words + 4 * i, acc[i]);
}

void isq_mrs_afq_unpack(const uint8_t *words, int n, int bits, uint8_t *q)
{
	uint32_t mask = (1u << bits) - 1;
	for (int j = 0; j < n; j++) {
		int pos = j * bits, wi = pos >> 5, off = pos & 31;
		uint32_t v = isq_le32(words + 4 * wi) >> off;
		if (off + bits > 32)
			v |= isq_le32(words + 4 * (wi + 1)) << (32 - off);
		q[j] = (uint8_t)(v & mask);
	}
}

/* ---- table rows: 64-element blocks {bf16 scale, bf16 bias, 2b words} ---- */

#define AFQ_G 64

static size_t afq_quantize_rows(const struct mrs_kern *k, int bits, const float *src, void *dst,
				int64_t nrows, int64_t n, const float *imp)
{
	const size_t bs = 4 + 8 * (size_t)bits;
	uint8_t *o = dst, q[AFQ_G];
	float w[AFQ_G], s, b;
	for (int64_t r = 0; r < nrows; r++)
		for (int64_t g = 0; g < n / AFQ_G; g++, o += bs) {
			mrs_group_weights(imp, g * AFQ_G, AFQ_G, w);
			isq_mrs_afq_group(k, src + r * n + g * AFQ_G, w, AFQ_G, (1 << bits) - 1, ISQ_MRS_BF16, &s, &b, q);
			isq_mrs_store_dtype(o, s, ISQ_MRS_BF16);
			isq_mrs_store_dtype(o + 2, b, ISQ_MRS_BF16);
			isq_mrs_afq_pack(q, AFQ_G, bits, o + 4);
		}
	return (size_t)(o - (uint8_t *)dst);
}

#define AFQ_QUANT(B)                                                                                    \
	static size_t quantize_afq##B##_ref(const float *x, void *y, int64_t nr, int64_t n, const float *im) \
	{                                                                                               \
		return afq_quantize_rows(&isq_mrs_kern_ref, B, x, y, nr, n, im);                        \
	}                                                                                               \
	static size_t quantize_afq##B(const float *x, void *y, int64_t nr, int64_t n, const float *im)  \
	{                                                                                               \
		return afq_quantize_rows(isq_mrs_kern(), B, x, y, nr, n, im);                           \
	}
AFQ_QUANT(2)
AFQ_QUANT(3)
AFQ_QUANT(4)
AFQ_QUANT(6)
AFQ_QUANT(8)

static void afq_deq(int bits, const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	const size_t bs = 4 + 8 * (size_t)bits;
	uint8_t q[AFQ_G];
	for (int64_t i = 0; i < n / AFQ_G; i++, b += bs, y += AFQ_G) {
		float s = mrs_bf16(b), bias = mrs_bf16(b + 2);
		isq_mrs_afq_unpack(b + 4, AFQ_G, bits, q);
		for (int j = 0; j < AFQ_G; j++)
			y[j] = (float)q[j] * s + bias;
	}
}

static void afq_dot(int bits, int64_t n, float *s, const void *vx, const void *vy)
{
	const uint8_t *x = vx, *y = vy;
	const size_t bs = 4 + 8 * (size_t)bits;
	uint8_t q[AFQ_G];
	float sum = 0;
	for (int64_t i = 0; i < n / AFQ_G; i++, x += bs) {
		float sc = mrs_bf16(x), bias = mrs_bf16(x + 2);
		isq_mrs_afq_unpack(x + 4, AFQ_G, bits, q);
		for (int h = 0; h < 2; h++, y += MRS_Q8_0_SIZE) {
			const int8_t *y8 = (const int8_t *)(y + 2);
			int sq = 0, sy = 0;
			for (int j = 0; j < 32; j++) {
				sq += q[32 * h + j] * y8[j];
				sy += y8[j];
			}
			sum += isq_fp16_to_fp32(isq_le16(y)) * (sc * (float)sq + bias * (float)sy);
		}
	}
	*s = sum;
}

#define AFQ_ROWFNS(B)                                                                    \
	void isq_mrs_deq_afq##B##_ref(const void *x, float *y, int64_t n) { afq_deq(B, x, y, n); } \
	void isq_mrs_dot_afq##B##_ref(int64_t n, float *s, const void *x, const void *y)        \
	{                                                                                \
		afq_dot(B, n, s, x, y);                                                  \
	}
AFQ_ROWFNS(2)
AFQ_ROWFNS(3)
AFQ_ROWFNS(4)
AFQ_ROWFNS(6)
AFQ_ROWFNS(8)

void isq_mrs_register_afq(struct isq_type_traits *tab, const struct mrs_kern *k, int fast)
{
	static const struct {
		enum isq_type t;
		int bits;
		isq_quantize_fn ref, opt;
	} rows[] = {
		{ ISQ_TYPE_AFQ2, 2, quantize_afq2_ref, quantize_afq2 },
		{ ISQ_TYPE_AFQ3, 3, quantize_afq3_ref, quantize_afq3 },
		{ ISQ_TYPE_AFQ4, 4, quantize_afq4_ref, quantize_afq4 },
		{ ISQ_TYPE_AFQ6, 6, quantize_afq6_ref, quantize_afq6 },
		{ ISQ_TYPE_AFQ8, 8, quantize_afq8_ref, quantize_afq8 },
	};
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(rows); i++) {
		struct isq_type_traits *t = &tab[rows[i].t];
		t->blck = AFQ_G;
		t->type_size = 4 + 8 * (size_t)rows[i].bits;
		t->uses_imatrix = 1;
		t->backends = ISQ_BACKEND_CPU;
		t->vec_dot_type = ISQ_TYPE_Q8_0;
		t->quantize_ref = rows[i].ref;
		t->quantize = fast ? rows[i].opt : rows[i].ref;
		t->dequantize = k->deq_afq[rows[i].bits];
		t->vec_dot_ref = isq_mrs_kern_ref.dot_afq[rows[i].bits];
		t->vec_dot = k->dot_afq[rows[i].bits];
	}
}

/* ---- UQFF entry: rows of codes, scales and biases ---- */

void isq_mrs_afq_units(const struct mrs_kern *k, const struct isq_mrs_layout *l, const float *src,
		       const float *imp, uint64_t imp_len, uint64_t u0, uint64_t u1)
{
	const int gs = l->group_size, bits = l->bits;
	const uint64_t cols = l->cols, ng = cols / (uint64_t)gs;
	const size_t ds = isq_mrs_dtype_size(l->scale_dtype);
	const uint64_t row_words = cols * (uint64_t)bits / 32;
	uint8_t q[MRS_MAXG];
	float w[MRS_MAXG], s, b;
	for (uint64_t r = u0; r < u1; r++) {
		const float *ri = isq_mrs_row_imp(l, imp, imp_len, r);
		uint8_t *codes = (uint8_t *)l->t[0].data + 4 * r * row_words;
		uint8_t *sc = (uint8_t *)l->t[1].data + ds * r * ng, *bi = (uint8_t *)l->t[2].data + ds * r * ng;
		for (uint64_t g = 0; g < ng; g++) {
			mrs_group_weights(ri, (int64_t)(g * (uint64_t)gs), gs, w);
			isq_mrs_afq_group(k, src + r * cols + g * (uint64_t)gs, w, gs, (1 << bits) - 1, l->scale_dtype,
					  &s, &b, q);
			isq_mrs_store_dtype(sc + ds * g, s, l->scale_dtype);
			isq_mrs_store_dtype(bi + ds * g, b, l->scale_dtype);
			isq_mrs_afq_pack(q, gs, bits, codes + (size_t)g * (size_t)gs * (size_t)bits / 8);
		}
	}
}

void isq_mrs_afq_deq_rows(const struct isq_mrs_layout *l, uint64_t r0, uint64_t nr, float *dst)
{
	const int gs = l->group_size, bits = l->bits;
	const uint64_t cols = l->cols, ng = cols / (uint64_t)gs;
	const size_t ds = isq_mrs_dtype_size(l->scale_dtype);
	const uint64_t row_words = cols * (uint64_t)bits / 32;
	uint8_t q[MRS_MAXG];
	for (uint64_t r = r0; r < r0 + nr; r++) {
		const uint8_t *codes = (const uint8_t *)l->t[0].data + 4 * r * row_words;
		const uint8_t *sc = (const uint8_t *)l->t[1].data + ds * r * ng;
		const uint8_t *bi = (const uint8_t *)l->t[2].data + ds * r * ng;
		for (uint64_t g = 0; g < ng; g++, dst += gs) {
			float s = isq_mrs_load_dtype(sc + ds * g, l->scale_dtype);
			float b = isq_mrs_load_dtype(bi + ds * g, l->scale_dtype);
			isq_mrs_afq_unpack(codes + (size_t)g * (size_t)gs * (size_t)bits / 8, gs, bits, q);
			for (int j = 0; j < gs; j++)
				dst[j] = (float)q[j] * s + b;
		}
	}
}
