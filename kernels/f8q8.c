/*
 * f8q8.c - F8Q8, mistral.rs's CPU format: 33-byte blocks of one E4M3 scale
 * code e and 32 int8 codes, value = q * (e4m3(e) / 448).
 *
 * mistral.rs stores e = E4M3(amax / 127 * 448) but computes the codes with
 * the unrounded amax / 127; E4M3 keeps 3 mantissa bits, so the scale it
 * decodes with is up to 1/16 off and every code of the block carries that
 * error.  We take that code and its two neighbours (the nearest scale from
 * below and from above), derive the codes from each decoded scale (the
 * nearest integer, clamped to -128..127), and keep the block with the lowest
 * (weighted) error.  Per element our codes are the nearest for the same
 * scale, so the result is never worse than mistral.rs's.
 */
#include "mrs-impl.h"

#define QB 32

float isq_mrs_q8_eval_ref(const float *x, const float *w, float d, int8_t *q)
{
	float acc[8] = { 0 };
	for (int i = 0; i < QB; i += 8)
		for (int l = 0; l < 8; l++) {
			float v = mrs_rne(mrs_clamp(x[i + l] / d, -128.0f, 127.0f));
			float r = x[i + l] - v * d;
			acc[l] = acc[l] + w[i + l] * (r * r);
			q[i + l] = (int8_t)v;
		}
	return mrs_hsum8(acc);
}

uint8_t isq_mrs_f8q8_block(const struct mrs_kern *k, const float *x, const float *w, int8_t *q)
{
	int8_t tq[QB];
	float amax = 0;
	for (int i = 0; i < QB; i++) {
		float a = fabsf(x[i]);
		amax = a > amax ? a : amax;
	}
	if (!(amax > 0.0f)) {
		memset(q, 0, QB);
		return 0;
	}
	int b0 = isq_fp32_to_e4m3(amax / 127.0f * 448.0f); /* mistral.rs's code, <= 0x7e */
	int cand[3] = { b0, b0 - 1, b0 + 1 };
	float best = INFINITY;
	int bb = -1;
	for (int c = 0; c < 3; c++) {
		if (cand[c] < 1 || cand[c] > 0x7e)
			continue; /* code 0 decodes every value to 0, never better than code 1 */
		float err = k->q8_eval(x, w, isq_mrs_e4m3_lut[cand[c]] / 448.0f, tq);
		if (bb < 0 || err < best) {
			best = err;
			bb = cand[c];
			memcpy(q, tq, QB);
		}
	}
	return (uint8_t)bb;
}

/* ---- table row: the 33-byte blocks along a row ---- */

static size_t f8q8_quantize_rows(const struct mrs_kern *k, const float *src, void *dst, int64_t nrows,
				 int64_t n, const float *imp)
{
	uint8_t *o = dst;
	float w[QB];
	for (int64_t r = 0; r < nrows; r++)
		for (int64_t b = 0; b < n / QB; b++, o += 33) {
			mrs_group_weights(imp, b * QB, QB, w);
			o[0] = isq_mrs_f8q8_block(k, src + r * n + b * QB, w, (int8_t *)(o + 1));
		}
	return (size_t)(o - (uint8_t *)dst);
}

static size_t quantize_f8q8_ref(const float *x, void *y, int64_t nr, int64_t n, const float *im)
{
	return f8q8_quantize_rows(&isq_mrs_kern_ref, x, y, nr, n, im);
}

static size_t quantize_f8q8(const float *x, void *y, int64_t nr, int64_t n, const float *im)
{
	return f8q8_quantize_rows(isq_mrs_kern(), x, y, nr, n, im);
}

void isq_mrs_deq_f8q8_ref(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n / QB; i++, b += 33, y += QB) {
		float d = isq_mrs_e4m3_lut[b[0]] / 448.0f;
		for (int j = 0; j < QB; j++)
			y[j] = (float)(int8_t)b[1 + j] * d;
	}
}

void isq_mrs_dot_f8q8_ref(int64_t n, float *s, const void *vx, const void *vy)
{
	const uint8_t *x = vx, *y = vy;
	float sum = 0;
	for (int64_t i = 0; i < n / QB; i++, x += 33, y += MRS_Q8_0_SIZE) {
		int si = 0;
		for (int j = 0; j < QB; j++)
			si += (int8_t)x[1 + j] * (int8_t)y[2 + j];
		sum += (isq_mrs_e4m3_lut[x[0]] / 448.0f) * isq_fp16_to_fp32(isq_le16(y)) * (float)si;
	}
	*s = sum;
}

void isq_mrs_register_f8q8(struct isq_type_traits *tab, const struct mrs_kern *k, int fast)
{
	struct isq_type_traits *t = &tab[ISQ_TYPE_F8Q8];
	t->blck = QB;
	t->type_size = 33;
	t->uses_imatrix = 1;
	t->backends = ISQ_BACKEND_CPU;
	t->vec_dot_type = ISQ_TYPE_Q8_0;
	t->quantize_ref = quantize_f8q8_ref;
	t->quantize = fast ? quantize_f8q8 : quantize_f8q8_ref;
	t->dequantize = k->deq_f8q8;
	t->vec_dot_ref = isq_mrs_dot_f8q8_ref;
	t->vec_dot = k->dot_f8q8;
}

/* ---- UQFF entry: blocks over the flat tensor, the last one zero-padded ---- */

void isq_mrs_f8q8_units(const struct mrs_kern *k, const struct isq_mrs_layout *l, const float *src,
			const float *imp, uint64_t u0, uint64_t u1)
{
	uint8_t *o = l->t[0].data;
	float x[QB], w[QB];
	for (uint64_t b = u0; b < u1; b++) {
		float ws = 0;
		for (int i = 0; i < QB; i++) {
			uint64_t f = b * QB + (uint64_t)i;
			x[i] = f < l->numel ? src[f] : 0.0f;
			w[i] = imp && f < l->numel ? imp[f % l->cols] : 1.0f;
			ws += w[i];
		}
		if (!(ws > 0))
			for (int i = 0; i < QB; i++)
				w[i] = 1.0f;
		o[33 * b] = isq_mrs_f8q8_block(k, x, w, (int8_t *)(o + 33 * b + 1));
	}
}

void isq_mrs_f8q8_deq_rows(const struct isq_mrs_layout *l, uint64_t r0, uint64_t nr, float *dst)
{
	const uint8_t *o = l->t[0].data;
	for (uint64_t f = r0 * l->cols; f < (r0 + nr) * l->cols; f++) {
		const uint8_t *b = o + 33 * (f / QB);
		*dst++ = (float)(int8_t)b[1 + f % QB] * (isq_mrs_e4m3_lut[b[0]] / 448.0f);
	}
}
