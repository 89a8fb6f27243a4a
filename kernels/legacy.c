/*
 * legacy.c - ggml's 32-element block types (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q8_1),
 * the non-linear IQ4_NL/IQ4_XS, MXFP4, and the float types, in scalar C.
 *
 * Byte layouts (little-endian; "nibble order": element j of a 32-block in the
 * low nibble of qs[j], element j+16 in the high nibble):
 *   Q4_0  18 B: f16 d, qs[16]                      x = (q - 8) d
 *   Q4_1  20 B: f16 d, f16 m, qs[16]               x = q d + m
 *   Q5_0  22 B: f16 d, u32 qh, qs[16]              x = (q - 16) d, bit 5 of element j = bit j of qh
 *   Q5_1  24 B: f16 d, f16 m, u32 qh, qs[16]       x = q d + m
 *   Q8_0  34 B: f16 d, i8 qs[32]                   x = q d
 *   Q8_1  36 B: f16 d, f16 s = d * sum(q), i8 qs[32]
 *   IQ4_NL 18 B: f16 d, qs[16]                     x = d K[q]
 *   IQ4_XS 136 B per 256: f16 d, u16 scales_h, u8 scales_l[4], qs[128];
 *         sub-block j (32 elements, nibble order) has 6-bit scale
 *         ls = (nibble j%2 of scales_l[j/2]) | (bits 2j..2j+1 of scales_h) << 4,
 *         x = d (ls - 32) K[q]
 *   MXFP4 17 B: u8 e (E8M0), qs[16]                x = K4[q] 2^(e-128)
 *
 * Encoders differ from ggml's where ggml leaves error on the table (see
 * man/isq-types.7): every block searches its scale (and offset) over a fine
 * grid with a weighted least-squares refinement, always evaluates the codes
 * against the scale as stored (fp16-rounded), and minimizes exactly the
 * importance-weighted squared error when an imatrix is given (plain squared
 * error otherwise).  Q8_0 and Q8_1 keep ggml's encoder: they are also the
 * activation formats, whose bytes must match ggml's.
 */
#include "types.h"
#include "fp.h"

#include <math.h>

#define QK 32

static const int8_t K_IQ4[16] = { -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113 };
static const int8_t K_MX[16] = { 0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12 };

static inline float h2f(const uint8_t *p) { return isq_fp16_to_fp32(isq_le16(p)); }
static inline uint16_t f2h(float f) { return isq_fp32_to_fp16(f); }
static inline float fp16_round(float f) { return isq_fp16_to_fp32(isq_fp32_to_fp16(f)); }

/* ggml's nearest_int: round half to even, valid for |v| < 2^22 */
static inline int nearest_int(float v)
{
	return (int)lrintf(v);
}

static inline float weight_of(const float *imp, int64_t col)
{
	return imp ? imp[col] : 1.0f;
}

/* ---- symmetric types: Q4_0 (levels -8..7) and Q5_0 (-16..15) ---------------------------- */

/* Weighted squared error of block x with scale d (codes chosen nearest, clamped). */
static float sym_err(const float *x, const float *w, float d, int lo, int hi)
{
	if (d == 0.0f) {
		float e = 0;
		for (int i = 0; i < QK; i++)
			e += w[i] * x[i] * x[i];
		return e;
	}
	float id = 1.0f / d, e = 0;
	for (int i = 0; i < QK; i++) {
		int q = nearest_int(x[i] * id);
		q = q < lo ? lo : q > hi ? hi : q;
		float r = x[i] - d * (float)q;
		e += w[i] * r * r;
	}
	return e;
}

/*
 * Best fp16 scale for a symmetric block: candidates put the extreme element on
 * lo or hi (and a grid around each), each refined by weighted least squares
 * for its code assignment; every candidate is judged after fp16 rounding.
 */
static float sym_search(const float *x, const float *w, int lo, int hi)
{
	float amax = 0, mx = 0;
	for (int i = 0; i < QK; i++)
		if (fabsf(x[i]) > amax) {
			amax = fabsf(x[i]);
			mx = x[i];
		}
	if (amax < 1e-30f)
		return 0.0f;
	float best_d = fp16_round(mx / (float)lo), best = sym_err(x, w, best_d, lo, hi);
	for (int side = 0; side < 2; side++) {
		float lev = side ? (float)hi : (float)lo;
		for (int is = -12; is <= 12; is++) {
			float l = lev + (lev < 0 ? -0.1f : 0.1f) * (float)is;
			if (fabsf(l) < 0.5f)
				continue;
			float d = mx / l, id = 1.0f / d;
			float sxq = 0, sqq = 0;
			for (int i = 0; i < QK; i++) {
				int q = nearest_int(x[i] * id);
				q = q < lo ? lo : q > hi ? hi : q;
				sxq += w[i] * x[i] * (float)q;
				sqq += w[i] * (float)q * (float)q;
			}
			float cands[2] = { d, sqq > 0 ? sxq / sqq : d };
			for (int c = 0; c < 2; c++) {
				float dr = fp16_round(cands[c]);
				if (dr == 0.0f || !isfinite(dr))
					continue;
				float e = sym_err(x, w, dr, lo, hi);
				if (e < best) {
					best = e;
					best_d = dr;
				}
			}
		}
	}
	return best_d;
}

static void sym_codes(const float *x, float d, int lo, int hi, int *q)
{
	float id = d != 0.0f ? 1.0f / d : 0.0f;
	for (int i = 0; i < QK; i++) {
		int v = nearest_int(x[i] * id);
		q[i] = (v < lo ? lo : v > hi ? hi : v) - lo;
	}
}

static void block_weights(const float *imp, int64_t col0, float *w)
{
	for (int i = 0; i < QK; i++)
		w[i] = weight_of(imp, col0 + i);
}

static size_t quantize_q4_0(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp)
{
	uint8_t *o = dst;
	float w[QK];
	int q[QK];
	for (int64_t r = 0; r < nrows; r++)
		for (int64_t b = 0; b < n / QK; b++, o += 18) {
			const float *x = src + r * n + b * QK;
			block_weights(imp, b * QK, w);
			float d = sym_search(x, w, -8, 7);
			sym_codes(x, d, -8, 7, q);
			isq_put_le16(o, f2h(d));
			for (int j = 0; j < 16; j++)
				o[2 + j] = (uint8_t)(q[j] | q[j + 16] << 4);
		}
	return (size_t)(o - (uint8_t *)dst);
}

static size_t quantize_q5_0(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp)
{
	uint8_t *o = dst;
	float w[QK];
	int q[QK];
	for (int64_t r = 0; r < nrows; r++)
		for (int64_t b = 0; b < n / QK; b++, o += 22) {
			const float *x = src + r * n + b * QK;
			block_weights(imp, b * QK, w);
			float d = sym_search(x, w, -16, 15);
			sym_codes(x, d, -16, 15, q);
			uint32_t qh = 0;
			for (int j = 0; j < QK; j++)
				qh |= (uint32_t)(q[j] >> 4) << j;
			isq_put_le16(o, f2h(d));
			isq_put_le32(o + 2, qh);
			for (int j = 0; j < 16; j++)
				o[6 + j] = (uint8_t)((q[j] & 15) | (q[j + 16] & 15) << 4);
		}
	return (size_t)(o - (uint8_t *)dst);
}

/* ---- asymmetric types: Q4_1 (0..15) and Q5_1 (0..31) --------------------------------------- */

static float asym_err(const float *x, const float *w, float d, float m, int nmax)
{
	float id = d != 0.0f ? 1.0f / d : 0.0f, e = 0;
	for (int i = 0; i < QK; i++) {
		int q = nearest_int((x[i] - m) * id);
		q = q < 0 ? 0 : q > nmax ? nmax : q;
		float r = x[i] - (d * (float)q + m);
		e += w[i] * r * r;
	}
	return e;
}

/* Best (fp16 d, fp16 m): grid of ranges, weighted LS fit of (d, m) per code assignment. */
static void asym_search(const float *x, const float *w, int nmax, float *d_out, float *m_out)
{
	float mn = x[0], mx = x[0];
	for (int i = 1; i < QK; i++) {
		mn = x[i] < mn ? x[i] : mn;
		mx = x[i] > mx ? x[i] : mx;
	}
	float best_d = fp16_round((mx - mn) / (float)nmax), best_m = fp16_round(mn);
	float best = asym_err(x, w, best_d, best_m, nmax);
	if (mx - mn < 1e-30f) {
		*d_out = 0;
		*m_out = best_m;
		return;
	}
	/*
	 * Starting points: the block minimum or (as ggml) min(minimum, 0) as offset,
	 * with a grid of scales around nmax levels over the range and every
	 * integer number of levels from nmax/2 up (which can make values such as
	 * +-1 exact); each start is refined by alternating codes and weighted LS.
	 */
	float lw[48];
	int nl = 0;
	for (int is = -24; is <= 40; is += 2)
		lw[nl++] = (float)nmax - 1.0f + 0.05f * (float)is;
	for (int k = nmax / 2; k < nmax && nl < 48; k++)
		lw[nl++] = (float)k;
	for (int start = 0; start < 2; start++) {
		float m0 = start ? fminf(mn, 0.0f) : mn;
		if (start && m0 == mn)
			break;
		for (int c = 0; c < nl; c++) {
			float iscale = lw[c] / (mx - m0);
			if (!(iscale > 0))
				continue;
			float d = 1.0f / iscale, m = m0;
			for (int round = 0; round < 3; round++) {
				float dr = fp16_round(d), mr = fp16_round(m);
				if (dr > 0 && isfinite(dr) && isfinite(mr)) {
					float e = asym_err(x, w, dr, mr, nmax);
					if (e < best) {
						best = e;
						best_d = dr;
						best_m = mr;
					}
				}
				if (round == 2)
					break;
				float id = 1.0f / d, sw = 0, sq = 0, sqq = 0, sx = 0, sxq = 0;
				for (int i = 0; i < QK; i++) {
					int q = nearest_int((x[i] - m) * id);
					q = q < 0 ? 0 : q > nmax ? nmax : q;
					sw += w[i];
					sq += w[i] * (float)q;
					sqq += w[i] * (float)q * (float)q;
					sx += w[i] * x[i];
					sxq += w[i] * x[i] * (float)q;
				}
				float det = sw * sqq - sq * sq;
				if (!(det > 0))
					break;
				float nd = (sw * sxq - sx * sq) / det, nm = (sqq * sx - sq * sxq) / det;
				if (!(nd > 0))
					break;
				d = nd;
				m = nm;
			}
		}
	}
	/*
	 * The phase of the grid against the bulk of small values matters when an
	 * outlier fixes the range: shift the offset by fractions of a step, each
	 * shift refined by one weighted LS round.
	 */
	float d0 = best_d, m0 = best_m;
	for (int k = -8; k <= 8 && d0 > 0; k++) {
		if (!k)
			continue;
		float d = d0, m = m0 + (float)k * d0 / 16.0f;
		for (int round = 0; round < 2; round++) {
			float dr = fp16_round(d), mr = fp16_round(m);
			if (dr > 0 && isfinite(dr) && isfinite(mr)) {
				float e = asym_err(x, w, dr, mr, nmax);
				if (e < best) {
					best = e;
					best_d = dr;
					best_m = mr;
				}
			}
			float id = 1.0f / d, sw = 0, sq = 0, sqq = 0, sx = 0, sxq = 0;
			for (int i = 0; i < QK; i++) {
				int q = nearest_int((x[i] - m) * id);
				q = q < 0 ? 0 : q > nmax ? nmax : q;
				sw += w[i];
				sq += w[i] * (float)q;
				sqq += w[i] * (float)q * (float)q;
				sx += w[i] * x[i];
				sxq += w[i] * x[i] * (float)q;
			}
			float det = sw * sqq - sq * sq;
			if (!(det > 0))
				break;
			float nd = (sw * sxq - sx * sq) / det;
			if (!(nd > 0))
				break;
			m = (sqq * sx - sq * sxq) / det;
			d = nd;
		}
	}
	/* fp16 rounding matters at these scales: polish (d, m) over neighbouring fp16 values */
	uint16_t hd = f2h(best_d), hm = f2h(best_m);
	for (int a = -2; a <= 2; a++)
		for (int b = -2; b <= 2; b++) {
			if (!a && !b)
				continue;
			float dr = isq_fp16_to_fp32((uint16_t)(hd + a)), mr = isq_fp16_to_fp32((uint16_t)(hm + b));
			if (!(dr > 0) || !isfinite(dr) || !isfinite(mr) || (hd & 0x8000) || ((hd + a) & 0x8000))
				continue;
			float e = asym_err(x, w, dr, mr, nmax);
			if (e < best) {
				best = e;
				best_d = dr;
				best_m = mr;
			}
		}
	*d_out = best_d;
	*m_out = best_m;
}

static void asym_codes(const float *x, float d, float m, int nmax, int *q)
{
	float id = d != 0.0f ? 1.0f / d : 0.0f;
	for (int i = 0; i < QK; i++) {
		int v = nearest_int((x[i] - m) * id);
		q[i] = v < 0 ? 0 : v > nmax ? nmax : v;
	}
}

static size_t quantize_q4_1(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp)
{
	uint8_t *o = dst;
	float w[QK], d, m;
	int q[QK];
	for (int64_t r = 0; r < nrows; r++)
		for (int64_t b = 0; b < n / QK; b++, o += 20) {
			const float *x = src + r * n + b * QK;
			block_weights(imp, b * QK, w);
			asym_search(x, w, 15, &d, &m);
			asym_codes(x, d, m, 15, q);
			isq_put_le16(o, f2h(d));
			isq_put_le16(o + 2, f2h(m));
			for (int j = 0; j < 16; j++)
				o[4 + j] = (uint8_t)(q[j] | q[j + 16] << 4);
		}
	return (size_t)(o - (uint8_t *)dst);
}

static size_t quantize_q5_1(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp)
{
	uint8_t *o = dst;
	float w[QK], d, m;
	int q[QK];
	for (int64_t r = 0; r < nrows; r++)
		for (int64_t b = 0; b < n / QK; b++, o += 24) {
			const float *x = src + r * n + b * QK;
			block_weights(imp, b * QK, w);
			asym_search(x, w, 31, &d, &m);
			asym_codes(x, d, m, 31, q);
			uint32_t qh = 0;
			for (int j = 0; j < QK; j++)
				qh |= (uint32_t)(q[j] >> 4) << j;
			isq_put_le16(o, f2h(d));
			isq_put_le16(o + 2, f2h(m));
			isq_put_le32(o + 4, qh);
			for (int j = 0; j < 16; j++)
				o[8 + j] = (uint8_t)((q[j] & 15) | (q[j + 16] & 15) << 4);
		}
	return (size_t)(o - (uint8_t *)dst);
}

/* ---- Q8_0 / Q8_1: ggml's encoder, byte for byte (they are activation formats too) ---------- */

static void from_float_q8_0(const float *x, void *dst, int64_t n)
{
	uint8_t *o = dst;
	for (int64_t b = 0; b < n / QK; b++, o += 34, x += QK) {
		float amax = 0;
		for (int i = 0; i < QK; i++)
			amax = fmaxf(amax, fabsf(x[i]));
		float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
		isq_put_le16(o, f2h(d));
		for (int i = 0; i < QK; i++)
			o[2 + i] = (uint8_t)(int8_t)roundf(x[i] * id);
	}
}

static void from_float_q8_1(const float *x, void *dst, int64_t n)
{
	uint8_t *o = dst;
	for (int64_t b = 0; b < n / QK; b++, o += 36, x += QK) {
		float amax = 0;
		for (int i = 0; i < QK; i++)
			amax = fmaxf(amax, fabsf(x[i]));
		float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
		int sum = 0;
		for (int i = 0; i < QK; i++) {
			int v = (int)roundf(x[i] * id);
			o[4 + i] = (uint8_t)(int8_t)v;
			sum += v;
		}
		isq_put_le16(o, f2h(d));
		isq_put_le16(o + 2, f2h((float)sum * d));
	}
}

static size_t quantize_q8_0(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp)
{
	(void)imp;
	for (int64_t r = 0; r < nrows; r++)
		from_float_q8_0(src + r * n, (uint8_t *)dst + r * (n / QK) * 34, n);
	return (size_t)(nrows * (n / QK) * 34);
}

static size_t quantize_q8_1(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp)
{
	(void)imp;
	for (int64_t r = 0; r < nrows; r++)
		from_float_q8_1(src + r * n, (uint8_t *)dst + r * (n / QK) * 36, n);
	return (size_t)(nrows * (n / QK) * 36);
}

/* ---- IQ4_NL / IQ4_XS: non-linear codebook ------------------------------------------------- */

/* Nearest codebook index for v (in units of the scale); ties go to the upper entry as ggml. */
static inline int iq4_index(float v)
{
	if (v <= (float)K_IQ4[0])
		return 0;
	if (v >= (float)K_IQ4[15])
		return 15;
	int lo = 0, hi = 15;
	while (hi - lo > 1) {
		int mid = (lo + hi) / 2;
		if (v < (float)K_IQ4[mid])
			hi = mid;
		else
			lo = mid;
	}
	return v - (float)K_IQ4[lo] < (float)K_IQ4[hi] - v ? lo : hi;
}

static float iq4_err(const float *x, const float *w, int n, float d)
{
	float e = 0;
	if (d == 0.0f) {
		for (int i = 0; i < n; i++)
			e += w[i] * x[i] * x[i];
		return e;
	}
	float id = 1.0f / d;
	for (int i = 0; i < n; i++) {
		float r = x[i] - d * (float)K_IQ4[iq4_index(x[i] * id)];
		e += w[i] * r * r;
	}
	return e;
}

/* Best unrounded scale for n elements against the codebook: a fine grid plus LS refinement. */
static float iq4_search(const float *x, const float *w, int n, float (*round_fn)(float))
{
	float amax = 0, mx = 0;
	for (int i = 0; i < n; i++)
		if (fabsf(x[i]) > amax) {
			amax = fabsf(x[i]);
			mx = x[i];
		}
	if (amax < 1e-30f)
		return 0.0f;
	float best_d = round_fn(mx / (float)K_IQ4[0]), best = iq4_err(x, w, n, best_d);
	/* both ends of the codebook can hold the extreme element: -127 and +113 */
	for (int side = 0; side < 2; side++)
		for (int is = -16; is <= 16; is++) {
			float l = (side ? 113.0f : -127.0f) + (side ? 1.0f : -1.0f) * 1.5f * (float)is;
			float d = mx / l, id = 1.0f / d;
			float sxq = 0, sqq = 0;
			for (int i = 0; i < n; i++) {
				float k = (float)K_IQ4[iq4_index(x[i] * id)];
				sxq += w[i] * x[i] * k;
				sqq += w[i] * k * k;
			}
			float cands[2] = { d, sqq > 0 ? sxq / sqq : d };
			for (int c = 0; c < 2; c++) {
				float dr = round_fn(cands[c]);
				if (dr == 0.0f || !isfinite(dr))
					continue;
				float e = iq4_err(x, w, n, dr);
				if (e < best) {
					best = e;
					best_d = dr;
				}
			}
		}
	return best_d;
}

static float identity(float f) { return f; }

static size_t quantize_iq4_nl(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp)
{
	uint8_t *o = dst;
	float w[QK];
	for (int64_t r = 0; r < nrows; r++)
		for (int64_t b = 0; b < n / QK; b++, o += 18) {
			const float *x = src + r * n + b * QK;
			block_weights(imp, b * QK, w);
			float d = iq4_search(x, w, QK, fp16_round);
			float id = d != 0.0f ? 1.0f / d : 0.0f;
			isq_put_le16(o, f2h(d));
			for (int j = 0; j < 16; j++)
				o[2 + j] = (uint8_t)(iq4_index(x[j] * id) | iq4_index(x[j + 16] * id) << 4);
		}
	return (size_t)(o - (uint8_t *)dst);
}

static float xs_err(const float *x, const float *w, float d, const float *sub_d)
{
	float e = 0;
	(void)d;
	for (int j = 0; j < 8; j++)
		e += iq4_err(x + 32 * j, w + 32 * j, 32, sub_d[j]);
	return e;
}

static size_t quantize_iq4_xs(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp)
{
	uint8_t *o = dst;
	float w[256], s[8], sd[8];
	int ls[8];
	for (int64_t r = 0; r < nrows; r++)
		for (int64_t b = 0; b < n / 256; b++, o += 136) {
			const float *x = src + r * n + b * 256;
			for (int i = 0; i < 256; i++)
				w[i] = weight_of(imp, b * 256 + i);
			float smax = 0, sm = 0;
			for (int j = 0; j < 8; j++) {
				s[j] = iq4_search(x + 32 * j, w + 32 * j, 32, identity);
				if (fabsf(s[j]) > smax) {
					smax = fabsf(s[j]);
					sm = s[j];
				}
			}
			/* the super-scale: a few candidates around the one that maps the largest sub-scale to -32 */
			float best_d = 0, best = INFINITY;
			int best_ls[8] = { 0 };
			if (smax > 0) {
				for (int c = -4; c <= 4; c++) {
					float d = fp16_round(sm / (-32.0f - 0.25f * (float)c));
					if (d == 0.0f || !isfinite(d))
						continue;
					int l[8];
					for (int j = 0; j < 8; j++) {
						int v = nearest_int(s[j] / d);
						v = v < -32 ? -32 : v > 31 ? 31 : v;
						/* the integer scale next to it may serve this sub-block better */
						float e0 = iq4_err(x + 32 * j, w + 32 * j, 32, d * (float)v), bestl = e0;
						l[j] = v;
						for (int dv = -1; dv <= 1; dv += 2) {
							int v2 = v + dv;
							if (v2 < -32 || v2 > 31)
								continue;
							float e2 = iq4_err(x + 32 * j, w + 32 * j, 32, d * (float)v2);
							if (e2 < bestl) {
								bestl = e2;
								l[j] = v2;
							}
						}
						sd[j] = d * (float)l[j];
					}
					float e = xs_err(x, w, d, sd);
					if (e < best) {
						best = e;
						best_d = d;
						memcpy(best_ls, l, sizeof(l));
					}
				}
			}
			for (int j = 0; j < 8; j++)
				ls[j] = best_ls[j] + 32;
			uint16_t sh = 0;
			memset(o + 4, 0, 4);
			for (int j = 0; j < 8; j++) {
				o[4 + j / 2] |= (uint8_t)((ls[j] & 15) << (4 * (j % 2)));
				sh |= (uint16_t)((ls[j] >> 4) << (2 * j));
			}
			isq_put_le16(o, f2h(best_d));
			isq_put_le16(o + 2, sh);
			for (int j = 0; j < 8; j++) {
				float dl = best_d * (float)(ls[j] - 32), id = dl != 0.0f ? 1.0f / dl : 0.0f;
				const float *xb = x + 32 * j;
				for (int i = 0; i < 16; i++)
					o[8 + 16 * j + i] = (uint8_t)(iq4_index(xb[i] * id) | iq4_index(xb[i + 16] * id) << 4);
			}
		}
	return (size_t)(o - (uint8_t *)dst);
}

/* ---- MXFP4 ------------------------------------------------------------------------------------- */

static inline float e8m0_half(uint8_t e)
{
	/* 2^(e-128), exact also for e = 0 and 1 (subnormal results) */
	uint32_t bits = e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23;
	return isq_f32_from_bits(bits);
}

static inline int mx_index(float v)
{
	int best = 0;
	float be = fabsf((float)K_MX[0] - v);
	for (int k = 1; k < 16; k++) {
		float e = fabsf((float)K_MX[k] - v);
		if (e < be) {
			be = e;
			best = k;
		}
	}
	return best;
}

static float mx_err(const float *x, const float *w, uint8_t e, int *q)
{
	float d = e8m0_half(e), id = 1.0f / d, err = 0;
	for (int i = 0; i < QK; i++) {
		q[i] = mx_index(x[i] * id);
		float r = x[i] - (float)K_MX[q[i]] * d;
		err += w[i] * r * r;
	}
	return err;
}

static size_t quantize_mxfp4(const float *src, void *dst, int64_t nrows, int64_t n, const float *imp)
{
	uint8_t *o = dst;
	float w[QK];
	int q[QK], q2[QK];
	for (int64_t r = 0; r < nrows; r++)
		for (int64_t b = 0; b < n / QK; b++, o += 17) {
			const float *x = src + r * n + b * QK;
			block_weights(imp, b * QK, w);
			float amax = 0;
			for (int i = 0; i < QK; i++)
				amax = fmaxf(amax, fabsf(x[i]));
			/* ggml's exponent (which may clip the maximum by up to 2x) and the one above it */
			int e = amax > 0 ? (int)floorf(log2f(amax)) - 2 + 127 : 0;
			e = e < 0 ? 0 : e > 253 ? 253 : e;
			float e0 = mx_err(x, w, (uint8_t)e, q);
			if (amax > 0 && mx_err(x, w, (uint8_t)(e + 1), q2) < e0) {
				e++;
				memcpy(q, q2, sizeof(q));
			}
			o[0] = (uint8_t)e;
			for (int j = 0; j < 16; j++)
				o[1 + j] = (uint8_t)(q[j] | q[j + 16] << 4);
		}
	return (size_t)(o - (uint8_t *)dst);
}

/* ---- dequantizers (ggml's arithmetic, operation for operation) --------------------------------- */

static void deq_q4_0(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n / QK; i++, b += 18, y += QK) {
		float d = h2f(b);
		for (int j = 0; j < 16; j++) {
			y[j] = (float)((b[2 + j] & 0x0F) - 8) * d;
			y[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
		}
	}
}

static void deq_q4_1(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n / QK; i++, b += 20, y += QK) {
		float d = h2f(b), m = h2f(b + 2);
		for (int j = 0; j < 16; j++) {
			y[j] = (float)(b[4 + j] & 0x0F) * d + m;
			y[j + 16] = (float)(b[4 + j] >> 4) * d + m;
		}
	}
}

static void deq_q5_0(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n / QK; i++, b += 22, y += QK) {
		float d = h2f(b);
		uint32_t qh = isq_le32(b + 2);
		for (int j = 0; j < 16; j++) {
			int h0 = (int)((qh >> j) << 4) & 0x10, h1 = (int)(qh >> (j + 12)) & 0x10;
			y[j] = (float)(((b[6 + j] & 0x0F) | h0) - 16) * d;
			y[j + 16] = (float)(((b[6 + j] >> 4) | h1) - 16) * d;
		}
	}
}

static void deq_q5_1(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n / QK; i++, b += 24, y += QK) {
		float d = h2f(b), m = h2f(b + 2);
		uint32_t qh = isq_le32(b + 4);
		for (int j = 0; j < 16; j++) {
			int h0 = (int)((qh >> j) << 4) & 0x10, h1 = (int)(qh >> (j + 12)) & 0x10;
			y[j] = (float)((b[8 + j] & 0x0F) | h0) * d + m;
			y[j + 16] = (float)((b[8 + j] >> 4) | h1) * d + m;
		}
	}
}

static void deq_q8_0(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n / QK; i++, b += 34, y += QK) {
		float d = h2f(b);
		for (int j = 0; j < QK; j++)
			y[j] = (float)(int8_t)b[2 + j] * d;
	}
}

static void deq_q8_1(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n / QK; i++, b += 36, y += QK) {
		float d = h2f(b);
		for (int j = 0; j < QK; j++)
			y[j] = d * (float)(int8_t)b[4 + j];
	}
}

static void deq_iq4_nl(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n / QK; i++, b += 18, y += QK) {
		float d = h2f(b);
		for (int j = 0; j < 16; j++) {
			y[j] = d * (float)K_IQ4[b[2 + j] & 15];
			y[j + 16] = d * (float)K_IQ4[b[2 + j] >> 4];
		}
	}
}

static void deq_iq4_xs(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n / 256; i++, b += 136) {
		float d = h2f(b);
		uint16_t sh = isq_le16(b + 2);
		for (int j = 0; j < 8; j++, y += 32) {
			int ls = ((b[4 + j / 2] >> (4 * (j % 2))) & 0xf) | (((sh >> (2 * j)) & 3) << 4);
			float dl = d * (float)(ls - 32);
			const uint8_t *qs = b + 8 + 16 * j;
			for (int k = 0; k < 16; k++) {
				y[k] = dl * (float)K_IQ4[qs[k] & 0xf];
				y[k + 16] = dl * (float)K_IQ4[qs[k] >> 4];
			}
		}
	}
}

static void deq_mxfp4(const void *src, float *y, int64_t n)
{
	const uint8_t *b = src;
	for (int64_t i = 0; i < n / QK; i++, b += 17, y += QK) {
		float d = e8m0_half(b[0]);
		for (int j = 0; j < 16; j++) {
			y[j] = (float)K_MX[b[1 + j] & 0x0F] * d;
			y[j + 16] = (float)K_MX[b[1 + j] >> 4] * d;
		}
	}
}

static void deq_f32(const void *src, float *y, int64_t n) { memcpy(y, src, (size_t)n * 4); }
static void deq_f16(const void *src, float *y, int64_t n) { isq_fp16_to_fp32_row(src, y, (size_t)n); }
static void deq_bf16(const void *src, float *y, int64_t n) { isq_bf16_to_fp32_row(src, y, (size_t)n); }

static size_t quant_f32(const float *s, void *d, int64_t r, int64_t n, const float *imp)
{
	(void)imp;
	memcpy(d, s, (size_t)(r * n) * 4);
	return (size_t)(r * n) * 4;
}
static size_t quant_f16(const float *s, void *d, int64_t r, int64_t n, const float *imp)
{
	(void)imp;
	isq_fp32_to_fp16_row(s, d, (size_t)(r * n));
	return (size_t)(r * n) * 2;
}
static size_t quant_bf16(const float *s, void *d, int64_t r, int64_t n, const float *imp)
{
	(void)imp;
	isq_fp32_to_bf16_row(s, d, (size_t)(r * n));
	return (size_t)(r * n) * 2;
}

/* ---- dot products against the activation types ------------------------------------------------ */

static void dot_q4_0_q8_0(int64_t n, float *s, const void *vx, const void *vy)
{
	const uint8_t *x = vx, *y = vy;
	float sum = 0;
	for (int64_t i = 0; i < n / QK; i++, x += 18, y += 34) {
		int si = 0;
		for (int j = 0; j < 16; j++)
			si += ((x[2 + j] & 15) - 8) * (int8_t)y[2 + j] + ((x[2 + j] >> 4) - 8) * (int8_t)y[18 + j];
		sum += (float)si * h2f(x) * h2f(y);
	}
	*s = sum;
}

static void dot_q4_1_q8_1(int64_t n, float *s, const void *vx, const void *vy)
{
	const uint8_t *x = vx, *y = vy;
	float sum = 0;
	for (int64_t i = 0; i < n / QK; i++, x += 20, y += 36) {
		int si = 0;
		for (int j = 0; j < 16; j++)
			si += (x[4 + j] & 15) * (int8_t)y[4 + j] + (x[4 + j] >> 4) * (int8_t)y[20 + j];
		sum += (float)si * h2f(x) * h2f(y) + h2f(x + 2) * h2f(y + 2);
	}
	*s = sum;
}

static void dot_q5_0_q8_0(int64_t n, float *s, const void *vx, const void *vy)
{
	const uint8_t *x = vx, *y = vy;
	float sum = 0;
	for (int64_t i = 0; i < n / QK; i++, x += 22, y += 34) {
		uint32_t qh = isq_le32(x + 2);
		int si = 0;
		for (int j = 0; j < 16; j++) {
			int q0 = ((x[6 + j] & 15) | (int)(((qh >> j) & 1) << 4)) - 16;
			int q1 = ((x[6 + j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4)) - 16;
			si += q0 * (int8_t)y[2 + j] + q1 * (int8_t)y[18 + j];
		}
		sum += (float)si * h2f(x) * h2f(y);
	}
	*s = sum;
}

static void dot_q5_1_q8_1(int64_t n, float *s, const void *vx, const void *vy)
{
	const uint8_t *x = vx, *y = vy;
	float sum = 0;
	for (int64_t i = 0; i < n / QK; i++, x += 24, y += 36) {
		uint32_t qh = isq_le32(x + 4);
		int si = 0;
		for (int j = 0; j < 16; j++) {
			int q0 = (x[8 + j] & 15) | (int)(((qh >> j) & 1) << 4);
			int q1 = (x[8 + j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
			si += q0 * (int8_t)y[4 + j] + q1 * (int8_t)y[20 + j];
		}
		sum += (float)si * h2f(x) * h2f(y) + h2f(x + 2) * h2f(y + 2);
	}
	*s = sum;
}

static void dot_q8_0_q8_0(int64_t n, float *s, const void *vx, const void *vy)
{
	const uint8_t *x = vx, *y = vy;
	float sum = 0;
	for (int64_t i = 0; i < n / QK; i++, x += 34, y += 34) {
		int si = 0;
		for (int j = 0; j < QK; j++)
			si += (int8_t)x[2 + j] * (int8_t)y[2 + j];
		sum += (float)si * h2f(x) * h2f(y);
	}
	*s = sum;
}

static void dot_q8_1_q8_1(int64_t n, float *s, const void *vx, const void *vy)
{
	const uint8_t *x = vx, *y = vy;
	float sum = 0;
	for (int64_t i = 0; i < n / QK; i++, x += 36, y += 36) {
		int si = 0;
		for (int j = 0; j < QK; j++)
			si += (int8_t)x[4 + j] * (int8_t)y[4 + j];
		sum += (float)si * h2f(x) * h2f(y);
	}
	*s = sum;
}

static void dot_iq4_nl_q8_0(int64_t n, float *s, const void *vx, const void *vy)
{
	const uint8_t *x = vx, *y = vy;
	float sum = 0;
	for (int64_t i = 0; i < n / QK; i++, x += 18, y += 34) {
		int si = 0;
		for (int j = 0; j < 16; j++)
			si += K_IQ4[x[2 + j] & 15] * (int8_t)y[2 + j] + K_IQ4[x[2 + j] >> 4] * (int8_t)y[18 + j];
		sum += (float)si * h2f(x) * h2f(y);
	}
	*s = sum;
}

/* Q8_K block: f32 d, i8 qs[256], i16 bsums[16] (292 bytes). */
static void dot_iq4_xs_q8_K(int64_t n, float *s, const void *vx, const void *vy)
{
	const uint8_t *x = vx, *y = vy;
	float sum = 0;
	for (int64_t i = 0; i < n / 256; i++, x += 136, y += 292) {
		float dy = isq_f32_from_bits(isq_le32(y));
		uint16_t sh = isq_le16(x + 2);
		const int8_t *q8 = (const int8_t *)(y + 4);
		int st = 0;
		for (int j = 0; j < 8; j++, q8 += 32) {
			int ls = ((x[4 + j / 2] >> (4 * (j % 2))) & 0xf) | (((sh >> (2 * j)) & 3) << 4);
			const uint8_t *qs = x + 8 + 16 * j;
			int si = 0;
			for (int k = 0; k < 16; k++)
				si += K_IQ4[qs[k] & 15] * q8[k] + K_IQ4[qs[k] >> 4] * q8[k + 16];
			st += (ls - 32) * si;
		}
		sum += h2f(x) * dy * (float)st;
	}
	*s = sum;
}

static void dot_mxfp4_q8_0(int64_t n, float *s, const void *vx, const void *vy)
{
	const uint8_t *x = vx, *y = vy;
	float sum = 0;
	for (int64_t i = 0; i < n / QK; i++, x += 17, y += 34) {
		int si = 0;
		for (int j = 0; j < 16; j++)
			si += K_MX[x[1 + j] & 15] * (int8_t)y[2 + j] + K_MX[x[1 + j] >> 4] * (int8_t)y[18 + j];
		sum += (float)si * e8m0_half(x[0]) * h2f(y);
	}
	*s = sum;
}

static void dot_f32(int64_t n, float *s, const void *vx, const void *vy)
{
	const float *x = vx, *y = vy;
	double sum = 0;
	for (int64_t i = 0; i < n; i++)
		sum += (double)x[i] * (double)y[i];
	*s = (float)sum;
}

static void dot_f16(int64_t n, float *s, const void *vx, const void *vy)
{
	const uint16_t *x = vx, *y = vy;
	double sum = 0;
	for (int64_t i = 0; i < n; i++)
		sum += (double)isq_fp16_to_fp32(x[i]) * (double)isq_fp16_to_fp32(y[i]);
	*s = (float)sum;
}

static void dot_bf16(int64_t n, float *s, const void *vx, const void *vy)
{
	const uint16_t *x = vx, *y = vy;
	double sum = 0;
	for (int64_t i = 0; i < n; i++)
		sum += (double)isq_bf16_to_fp32(x[i]) * (double)isq_bf16_to_fp32(y[i]);
	*s = (float)sum;
}

static void from_float_f32(const float *x, void *y, int64_t n) { memcpy(y, x, (size_t)n * 4); }
static void from_float_f16(const float *x, void *y, int64_t n) { isq_fp32_to_fp16_row(x, y, (size_t)n); }
static void from_float_bf16(const float *x, void *y, int64_t n) { isq_fp32_to_bf16_row(x, y, (size_t)n); }

static void set(struct isq_type_traits *t, isq_quantize_fn q, isq_dequantize_fn dq, isq_vec_dot_fn dot,
		enum isq_type vdt, int uses_imatrix)
{
	t->quantize = t->quantize_ref = q;
	t->dequantize = dq;
	t->vec_dot = t->vec_dot_ref = dot;
	t->vec_dot_type = vdt;
	t->uses_imatrix = uses_imatrix;
	t->backends = ISQ_BACKEND_CPU;
}

void isq_legacy_register(struct isq_type_traits *tab, int use_ref);

void isq_legacy_register(struct isq_type_traits *tab, int use_ref)
{
	(void)use_ref; /* scalar only, so far */
	set(&tab[ISQ_TYPE_F32], quant_f32, deq_f32, dot_f32, ISQ_TYPE_F32, 0);
	set(&tab[ISQ_TYPE_F16], quant_f16, deq_f16, dot_f16, ISQ_TYPE_F16, 0);
	set(&tab[ISQ_TYPE_BF16], quant_bf16, deq_bf16, dot_bf16, ISQ_TYPE_BF16, 0);
	tab[ISQ_TYPE_F32].from_float = from_float_f32;
	tab[ISQ_TYPE_F16].from_float = from_float_f16;
	tab[ISQ_TYPE_BF16].from_float = from_float_bf16;
	set(&tab[ISQ_TYPE_Q4_0], quantize_q4_0, deq_q4_0, dot_q4_0_q8_0, ISQ_TYPE_Q8_0, 1);
	set(&tab[ISQ_TYPE_Q4_1], quantize_q4_1, deq_q4_1, dot_q4_1_q8_1, ISQ_TYPE_Q8_1, 1);
	set(&tab[ISQ_TYPE_Q5_0], quantize_q5_0, deq_q5_0, dot_q5_0_q8_0, ISQ_TYPE_Q8_0, 1);
	set(&tab[ISQ_TYPE_Q5_1], quantize_q5_1, deq_q5_1, dot_q5_1_q8_1, ISQ_TYPE_Q8_1, 1);
	set(&tab[ISQ_TYPE_Q8_0], quantize_q8_0, deq_q8_0, dot_q8_0_q8_0, ISQ_TYPE_Q8_0, 0);
	set(&tab[ISQ_TYPE_Q8_1], quantize_q8_1, deq_q8_1, dot_q8_1_q8_1, ISQ_TYPE_Q8_1, 0);
	tab[ISQ_TYPE_Q8_0].from_float = from_float_q8_0;
	tab[ISQ_TYPE_Q8_1].from_float = from_float_q8_1;
	set(&tab[ISQ_TYPE_IQ4_NL], quantize_iq4_nl, deq_iq4_nl, dot_iq4_nl_q8_0, ISQ_TYPE_Q8_0, 1);
	set(&tab[ISQ_TYPE_IQ4_XS], quantize_iq4_xs, deq_iq4_xs, dot_iq4_xs_q8_K, ISQ_TYPE_Q8_K, 1);
	set(&tab[ISQ_TYPE_MXFP4], quantize_mxfp4, deq_mxfp4, dot_mxfp4_q8_0, ISQ_TYPE_Q8_0, 1);
}
