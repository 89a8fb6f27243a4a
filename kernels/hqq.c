/*
 * hqq.c - HQQ (half-quadratic quantization, Badri & Shaji 2023) as
 * mistral.rs stores it: value = (q - zero) * step per group of 64, float
 * zero point, groups along axis 0 (strided columns of the flat tensor).
 *
 * The start is HQQ's: min/max, inverse step inv = nmax / (max - min), zero =
 * -min * inv.  Then HQQ's proximal iterations (p = 0.7, beta = 10, kappa =
 * 1.01, 10 steps), each moving only the zero point: codes at the current
 * zero, residual e = x - value, e shrunk towards 0 by the generalised
 * soft-threshold sign(e) max(0, |e| - |e|^(p-1) / beta), and the zero
 * re-estimated as the (weighted) mean of q - (x - shrunk e) * inv.  HQQ
 * stops once the mean |e| over the whole tensor no longer drops and keeps
 * the last zero (even the one computed in the step that made things
 * worse), so its result can be worse than its own start.  We run all ten
 * steps and keep, per group, the zero with the lowest (weighted) squared
 * error among the start and every iterate; as a group's iterates do not
 * depend on the other groups, HQQ's own pick is among those we judge.
 * mistral.rs also caps inv at 2e4 (a step of at least 5e-5), which ruins
 * tensors of small magnitude; we do not.
 */
#include "mrs-impl.h"

#define HQQ_STEPS 10
#define HQQ_BETA 10.0f
#define HQQ_KAPPA 1.01f
#define HQQ_POLISH 4

/* ---- reference element loops ---- */

float isq_mrs_hqq_step_ref(const float *x, const float *w, int n, float inv, float step, float z, float ibeta,
			   float nmax)
{
	float an[8] = { 0 };
	for (int i = 0; i < n; i += 8)
		for (int l = 0; l < 8; l++) {
			float xi = x[i + l];
			float qf = mrs_rne(mrs_clamp(xi * inv + z, 0.0f, nmax));
			float e = xi - (qf - z) * step;
			float ae = fabsf(e);
			float t = ae - mrs_pow_m03(ae + 1e-8f) * ibeta;
			float we = t > 0.0f ? (e < 0.0f ? -t : t) : 0.0f;
			an[l] = an[l] + w[i + l] * (qf - (xi - we) * inv);
		}
	return mrs_hsum8(an);
}

float isq_mrs_hqq_eval_ref(const float *x, const float *w, int n, float inv, float step, float z, float nmax,
			   uint8_t *q)
{
	float acc[8] = { 0 };
	for (int i = 0; i < n; i += 8)
		for (int l = 0; l < 8; l++) {
			float qf = mrs_rne(mrs_clamp(x[i + l] * inv + z, 0.0f, nmax));
			float r = x[i + l] - (qf - z) * step;
			acc[l] = acc[l] + w[i + l] * (r * r);
			q[i + l] = (uint8_t)qf;
		}
	return mrs_hsum8(acc);
}

/* ---- the group solver ---- */

/* min/max start; returns 0 for a constant (or degenerate) group, which is stored exactly */
static int hqq_init(const float *x, int n, int nmax, float *inv, float *step, float *zero)
{
	float mn = x[0], mx = x[0];
	for (int i = 1; i < n; i++) {
		mn = x[i] < mn ? x[i] : mn;
		mx = x[i] > mx ? x[i] : mx;
	}
	/* halves: no overflow for any finite pair, and the same quotient otherwise */
	float hr = mx * 0.5f - mn * 0.5f;
	float iv = hr > 0.0f ? ((float)nmax * 0.5f) / hr : 0.0f;
	if (!(iv > 0.0f) || !(iv <= FLT_MAX) || !(1.0f / iv > 0.0f)) {
		*inv = 1.0f;
		*step = 1.0f;
		*zero = -mn; /* every code 0: (0 - zero) * 1 = min exactly */
		return 0;
	}
	*inv = iv;
	*step = 1.0f / iv;
	*zero = -mn * iv;
	return 1;
}

void isq_mrs_hqq_start(const float *x, int n, int nmax, float *step, float *zero)
{
	float inv;
	hqq_init(x, n, nmax, &inv, step, zero);
}

void isq_mrs_hqq_group(const struct mrs_kern *k, const float *x, const float *w, int n, int nmax,
		       float *step, float *zero, uint8_t *q)
{
	uint8_t tq[MRS_MAXG];
	float inv, st, z, fn = (float)nmax;
	if (!hqq_init(x, n, nmax, &inv, &st, &z)) {
		memset(q, 0, (size_t)n);
		*step = st;
		*zero = z;
		return;
	}
	float sw[8] = { 0 };
	for (int i = 0; i < n; i += 8)
		for (int l = 0; l < 8; l++)
			sw[l] = sw[l] + w[i + l];
	float wsum = mrs_hsum8(sw);
	float best = k->hqq_eval(x, w, n, inv, st, z, fn, q), bz = z;
	float beta = HQQ_BETA;
	for (int it = 0; it < HQQ_STEPS; it++) {
		z = k->hqq_step(x, w, n, inv, st, z, 1.0f / beta, fn) / wsum;
		if (!(fabsf(z) <= FLT_MAX))
			break;
		float err = k->hqq_eval(x, w, n, inv, st, z, fn, tq);
		if (err < best) {
			best = err;
			bz = z;
			memcpy(q, tq, (size_t)n);
		}
		beta = beta * HQQ_KAPPA;
	}
	/*
	 * Polish: the least-squares step and zero for the codes (value = a q + b
	 * with a = step, b = -zero * step), codes again, while the error drops.
	 * HQQ never moves the step off min/max; this often helps more than the
	 * proximal steps do.
	 */
	for (int it = 0; it < HQQ_POLISH; it++) {
		float sm[5];
		k->afq_sums(x, w, q, n, sm);
		double sq = sm[1], sqq = sm[2], sx = sm[3], sqx = sm[4];
		double det = (double)sm[0] * sqq - sq * sq;
		if (!(det > 0))
			break;
		double a = ((double)sm[0] * sqx - sq * sx) / det, b = (sqq * sx - sq * sqx) / det;
		float pst = (float)a, pinv = 1.0f / pst, pz = (float)(-b / a);
		if (!(pst > 0.0f) || !(pinv <= FLT_MAX) || !(fabsf(pz) <= FLT_MAX))
			break;
		float err = k->hqq_eval(x, w, n, pinv, pst, pz, fn, tq);
		if (!(err < best))
			break;
		best = err;
		st = pst;
		bz = pz;
		memcpy(q, tq, (size_t)n);
	}
	*step = st;
	*zero = bz;
}

/* ---- table rows: 64-element blocks {f32 step, f32 zero, codes} along the row ---- */

#define HQQ_G 64

static void put_f32(uint8_t *p, float v)
{
	isq_put_le32(p, isq_f32_bits(v));
}

static size_t hqq_quantize_rows(const struct mrs_kern *k, int bits, const float *src, void *dst,
				int64_t nrows, int64_t n, const float *imp)
{
	const size_t bs = bits == 4 ? 40 : 72;
	uint8_t *o = dst, q[HQQ_G];
	float w[HQQ_G], st, z;
	for (int64_t r = 0; r < nrows; r++)
		for (int64_t g = 0; g < n / HQQ_G; g++, o += bs) {
			mrs_group_weights(imp, g * HQQ_G, HQQ_G, w);
			isq_mrs_hqq_group(k, src + r * n + g * HQQ_G, w, HQQ_G, (1 << bits) - 1, &st, &z, q);
			put_f32(o, st);
			put_f32(o + 4, z);
			if (bits == 4)
				for (int i = 0; i < 32; i++)
					o[8 + i] = (uint8_t)(q[i] << 4 | q[i + 32]);
			else
				memcpy(o + 8, q, HQQ_G);
		}
	return (size_t)(o - (uint8_t *)dst);
}

static size_t quantize_hqq4_ref(const float *x, void *y, int64_t nr, int64_t n, const float *im)
{
	return hqq_quantize_rows(&isq_mrs_kern_ref, 4, x, y, nr, n, im);
}
static size_t quantize_hqq4(const float *x, void *y, int64_t nr, int64_t n, const float *im)
{
	return hqq_quantize_rows(isq_mrs_kern(), 4, x, y, nr, n, im);
}
static size_t quantize_hqq8_ref(const float *x, void *y, int64_t nr, int64_t n, const float *im)
{
	return hqq_quantize_rows(&isq_mrs_kern_ref, 8, x, y, nr, n, im);
}
static size_t quantize_hqq8(const float *x, void *y, int64_t nr, int64_t n, const float *im)
{
	return hqq_quantize_rows(isq_mrs_kern(), 8, x, y, nr, n, im);
}

void isq_mrs_deq_hqq4_ref(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n / HQQ_G; i++, b += 40, y += HQQ_G) {
		float st = mrs_f32(b), z = mrs_f32(b + 4);
		for (int j = 0; j < 32; j++) {
			y[j] = ((float)(b[8 + j] >> 4) - z) * st;
			y[j + 32] = ((float)(b[8 + j] & 15) - z) * st;
		}
	}
}

void isq_mrs_deq_hqq8_ref(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n / HQQ_G; i++, b += 72, y += HQQ_G) {
		float st = mrs_f32(b), z = mrs_f32(b + 4);
		for (int j = 0; j < HQQ_G; j++)
			y[j] = ((float)b[8 + j] - z) * st;
	}
}

/* sum over a 64-block: step * sum_h d_h (sum q y - zero * sum y) */
void isq_mrs_dot_hqq4_ref(int64_t n, float *s, const void *vx, const void *vy)
{
	const uint8_t *x = vx, *y = vy;
	float sum = 0;
	for (int64_t i = 0; i < n / HQQ_G; i++, x += 40) {
		float st = mrs_f32(x), z = mrs_f32(x + 4), blk = 0;
		for (int h = 0; h < 2; h++, y += MRS_Q8_0_SIZE) {
			const int8_t *y8 = (const int8_t *)(y + 2);
			int sq = 0, sy = 0;
			for (int j = 0; j < 32; j++) {
				int qv = h == 0 ? x[8 + j] >> 4 : x[8 + j] & 15;
				sq += qv * y8[j];
				sy += y8[j];
			}
			blk += isq_fp16_to_fp32(isq_le16(y)) * ((float)sq - z * (float)sy);
		}
		sum += st * blk;
	}
	*s = sum;
}

void isq_mrs_dot_hqq8_ref(int64_t n, float *s, const void *vx, const void *vy)
{
	const uint8_t *x = vx, *y = vy;
	float sum = 0;
	for (int64_t i = 0; i < n / HQQ_G; i++, x += 72) {
		float st = mrs_f32(x), z = mrs_f32(x + 4), blk = 0;
		for (int h = 0; h < 2; h++, y += MRS_Q8_0_SIZE) {
			const int8_t *y8 = (const int8_t *)(y + 2);
			int sq = 0, sy = 0;
			for (int j = 0; j < 32; j++) {
				sq += x[8 + 32 * h + j] * y8[j];
				sy += y8[j];
			}
			blk += isq_fp16_to_fp32(isq_le16(y)) * ((float)sq - z * (float)sy);
		}
		sum += st * blk;
	}
	*s = sum;
}

void isq_mrs_register_hqq(struct isq_type_traits *tab, const struct mrs_kern *k, int fast)
{
	struct isq_type_traits *t4 = &tab[ISQ_TYPE_HQQ4], *t8 = &tab[ISQ_TYPE_HQQ8];
	t4->blck = t8->blck = HQQ_G;
	t4->type_size = 40;
	t8->type_size = 72;
	t4->quantize_ref = quantize_hqq4_ref;
	t4->quantize = fast ? quantize_hqq4 : quantize_hqq4_ref;
	t8->quantize_ref = quantize_hqq8_ref;
	t8->quantize = fast ? quantize_hqq8 : quantize_hqq8_ref;
	t4->dequantize = k->deq_hqq4;
	t8->dequantize = k->deq_hqq8;
	t4->vec_dot_ref = isq_mrs_dot_hqq4_ref;
	t8->vec_dot_ref = isq_mrs_dot_hqq8_ref;
	t4->vec_dot = k->dot_hqq4;
	t8->vec_dot = k->dot_hqq8;
	t4->vec_dot_type = t8->vec_dot_type = ISQ_TYPE_Q8_0;
	t4->uses_imatrix = t8->uses_imatrix = 1;
	t4->backends = t8->backends = ISQ_BACKEND_CPU;
}

/* ---- UQFF entry: axis-0 groups, group c = flat elements c + r * N/G ---- */

void isq_mrs_hqq_units(const struct mrs_kern *k, const struct isq_mrs_layout *l, const float *src,
		       const float *imp, uint64_t imp_len, uint64_t u0, uint64_t u1)
{
	const int g = l->group_size, nmax = (1 << l->bits) - 1;
	const uint64_t m = l->numel / (uint64_t)g; /* groups = columns of the [G, N/G] view */
	uint8_t *codes = l->t[0].data, *sc = l->t[1].data, *zs = l->t[2].data;
	float x[MRS_MAXG], w[MRS_MAXG], st, z;
	uint8_t q[MRS_MAXG];
	(void)imp_len;
	for (uint64_t c = u0; c < u1; c++) {
		float s = 0;
		for (int r = 0; r < g; r++) {
			uint64_t f = (uint64_t)r * m + c;
			x[r] = src[f];
			w[r] = imp ? imp[f % l->cols] : 1.0f;
			s += w[r];
		}
		if (!(s > 0))
			for (int r = 0; r < g; r++)
				w[r] = 1.0f;
		isq_mrs_hqq_group(k, x, w, g, nmax, &st, &z, q);
		put_f32(sc + 4 * c, st);
		put_f32(zs + 4 * c, z);
		if (l->bits == 8)
			for (int r = 0; r < g; r++)
				codes[(uint64_t)r * m + c] = q[r];
		else
			for (int r = 0; r < g / 2; r++)
				codes[(uint64_t)r * m + c] = (uint8_t)(q[r] << 4 | q[r + g / 2]);
	}
}

void isq_mrs_hqq_deq_rows(const struct isq_mrs_layout *l, uint64_t r0, uint64_t nr, float *dst)
{
	const uint64_t g = (uint64_t)l->group_size, m = l->numel / g, half = g / 2;
	const uint8_t *codes = l->t[0].data, *sc = l->t[1].data, *zs = l->t[2].data;
	for (uint64_t f = r0 * l->cols; f < (r0 + nr) * l->cols; f++) {
		uint64_t c = f % m, r = f / m;
		int qv;
		if (l->bits == 8)
			qv = codes[f];
		else
			qv = r < half ? codes[r * m + c] >> 4 : codes[(r - half) * m + c] & 15;
		*dst++ = ((float)qv - mrs_f32(zs + 4 * c)) * mrs_f32(sc + 4 * c);
	}
}
