/*
 * fp8.c - FP8 E4M3 with one scale per tensor, as mistral.rs's `fp8` ISQ type
 * stores it, and the plain E4M3 element type of the table row.
 *
 * mistral.rs uses quant_scale = 448 / absmax clamped to [-448, 448].  The
 * clamp only bites when absmax < 1, exactly the case of most LLM weight
 * tensors, and then the largest code used is 448 * absmax: a tensor with
 * absmax 0.05 uses codes up to 22.4, losing about 4.3 binades of range to
 * the subnormals (which have fewer mantissa bits).  We evaluate that rule's
 * scale and 448 / absmax * 2^(-j/8) for j = 0..7 (none clips; the fractional
 * steps move where values fall on the 3-bit mantissa grid) over the whole
 * tensor, with importance weights when given, and keep the one with the
 * lowest error; on a tie the earlier (mistral.rs's) wins.
 */
#include "mrs-impl.h"

/*
 * E4M3 (fn) decode table, a constant: code c = s.eeee.mmm is m * 2^-9 for
 * e = 0 and (8 + m) * 2^(e - 10) otherwise; 0x7f and 0xff are NaN.
 */
#define P2(k) ((k) < 0 ? 1.0f / (float)(1 << ((k) < 0 ? -(k) : 0)) : (float)(1 << ((k) > 0 ? (k) : 0)))
#define MAG(c) (((c) >> 3 & 15) == 0 ? (float)((c) & 7) / 512.0f : (float)(8 + ((c) & 7)) * P2(((c) >> 3 & 15) - 10))
#define V(c) (((c) & 0x7f) == 0x7f ? __builtin_nanf("") : ((c) & 0x80) ? -MAG((c) & 0x7f) : MAG(c))
#define R4(c) V(c), V((c) + 1), V((c) + 2), V((c) + 3)
#define R16(c) R4(c), R4((c) + 4), R4((c) + 8), R4((c) + 12)
#define R64(c) R16(c), R16((c) + 16), R16((c) + 32), R16((c) + 48)
const float isq_mrs_e4m3_lut[256] = { R64(0), R64(64), R64(128), R64(192) };

void isq_mrs_fp8_err_row_ref(const float *x, const float *w, int64_t n, float s, float d, double acc[8])
{
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		for (int l = 0; l < 8; l++) {
			float r = x[i + l] - mrs_e4m3r(x[i + l] * s) * d;
			float e = (w ? w[i + l] : 1.0f) * (r * r);
			acc[l] = acc[l] + (double)e;
		}
	for (int l = 0; i < n; i++, l++) {
		float r = x[i] - mrs_e4m3r(x[i] * s) * d;
		float e = (w ? w[i] : 1.0f) * (r * r);
		acc[l] = acc[l] + (double)e;
	}
}

static const float pow2_eighths[8] = { 1.0f, 0.917004043f, 0.840896415f, 0.771105413f,
				       0.707106781f, 0.648419777f, 0.594603558f, 0.545253866f };

float isq_mrs_fp8_choose(const struct mrs_kern *k, const float *src, int64_t rows, int64_t cols,
			 const float *imp)
{
	float amax = 0;
	for (int64_t i = 0; i < rows * cols; i++) {
		float a = fabsf(src[i]);
		amax = a > amax ? a : amax;
	}
	if (!(amax > 0.0f))
		return 1.0f;
	float cand[9];
	int nc = 0;
	float sm = 448.0f / amax; /* mistral.rs: clamped to [-448, 448] */
	cand[nc++] = sm > 448.0f ? 448.0f : sm;
	for (int j = 0; j < 8; j++) {
		float s = (448.0f * pow2_eighths[j]) / amax;
		if (s <= FLT_MAX && 1.0f / s > 0.0f && s != cand[0])
			cand[nc++] = s;
	}
	float best_s = cand[0];
	double best = INFINITY;
	for (int c = 0; c < nc; c++) {
		double acc[8] = { 0 };
		float d = 1.0f / cand[c];
		for (int64_t r = 0; r < rows; r++)
			k->fp8_err_row(src + r * cols, imp, cols, cand[c], d, acc);
		double err = mrs_hsum8d(acc);
		if (err < best) {
			best = err;
			best_s = cand[c];
		}
	}
	return best_s;
}

/* ---- table row: plain E4M3 elements ---- */

static size_t quantize_fp8(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp)
{
	uint8_t *o = dst;
	(void)imp;
	for (int64_t i = 0; i < nrows * n; i++)
		o[i] = isq_fp32_to_e4m3(src[i]);
	return (size_t)(nrows * n);
}

void isq_mrs_deq_fp8_ref(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n; i++)
		y[i] = isq_mrs_e4m3_lut[b[i]];
}

void isq_mrs_dot_fp8_ref(int64_t n, float *s, const void *vx, const void *vy)
{
	const uint8_t *x = vx;
	const float *y = vy;
	double sum = 0;
	for (int64_t i = 0; i < n; i++)
		sum += (double)isq_mrs_e4m3_lut[x[i]] * (double)y[i];
	*s = (float)sum;
}

void isq_mrs_register_fp8(struct isq_type_traits *tab, const struct mrs_kern *k, int fast)
{
	struct isq_type_traits *t = &tab[ISQ_TYPE_FP8];
	(void)fast;
	t->blck = 1;
	t->type_size = 1;
	t->uses_imatrix = 0;
	t->backends = ISQ_BACKEND_CPU;
	t->vec_dot_type = ISQ_TYPE_F32;
	t->quantize = t->quantize_ref = quantize_fp8;
	t->dequantize = k->deq_fp8;
	t->vec_dot_ref = isq_mrs_dot_fp8_ref;
	t->vec_dot = k->dot_fp8;
}

/* ---- UQFF entry ---- */

void isq_mrs_fp8_units(const struct isq_mrs_layout *l, const float *src, uint64_t u0, uint64_t u1)
{
	uint8_t *o = l->t[0].data;
	const float s = l->fp8_quant_scale;
	for (uint64_t i = u0 * l->cols; i < u1 * l->cols; i++)
		o[i] = isq_fp32_to_e4m3(src[i] * s);
}

void isq_mrs_fp8_deq_rows(const struct isq_mrs_layout *l, uint64_t r0, uint64_t nr, float *dst)
{
	const uint8_t *q = l->t[0].data;
	const float d = mrs_f32(l->t[1].data); /* weight.dequant_w_scale */
	for (uint64_t i = r0 * l->cols; i < (r0 + nr) * l->cols; i++)
		*dst++ = isq_mrs_e4m3_lut[q[i]] * d;
}
