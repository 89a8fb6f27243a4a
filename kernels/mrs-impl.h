/*
 * mrs-impl.h - private to the mistral.rs-format kernels (kernels/hqq.c,
 * afq.c, fp8.c, f8q8.c, mxfp4-uqff.c, mrs.c and cpu/mrs-avx2.c).
 *
 * The encoders are one compiled driver per format; only the element loops
 * differ between the scalar reference and AVX2, through struct mrs_kern.
 * To make both give the same bytes, every reference loop is written as
 * eight lanes: element i adds into accumulator i % 8, and the eight are
 * summed in one fixed tree (mrs_hsum8), which is exactly what the AVX2 code
 * does with one register.  No FMA anywhere (a fused multiply-add rounds
 * once where the reference rounds twice), rounding to integers adds and
 * subtracts 1.5 * 2^23 in both, and the one transcendental (HQQ's
 * |e|^-0.3) is a polynomial both evaluate with the same operations.
 */
#ifndef ISQ_MRS_IMPL_H
#define ISQ_MRS_IMPL_H

#include "mrs.h"
#include "fp.h"

#include <float.h>
#include <math.h>

#define MRS_MAXG 128 /* largest group */

/* Element loops with a scalar and an AVX2 version (identical results where noted). */
struct mrs_kern {
	/*
	 * Affine codes q = clamp(rne((x - b) * id), 0, nmax) for value q*s + b;
	 * returns sum w (x - (q*s + b))^2.  n % 8 == 0.  Identical.
	 */
	float (*afq_eval)(const float *x, const float *w, int n, float s, float b, float id, float nmax,
			  uint8_t *q);
	/* Codes for a trial inverse scale from the minimum: q = clamp(rne((x - mn) * is), 0, nmax). Identical. */
	void (*afq_codes)(const float *x, int n, float mn, float is, float nmax, uint8_t *q);
	/* Least-squares sums for codes q: out = {sum w, sum wq, sum wqq, sum wx, sum wqx}. Identical. */
	void (*afq_sums)(const float *x, const float *w, const uint8_t *q, int n, float out[5]);
	/*
	 * HQQ: one proximal step at zero z.  Codes q = clamp(rne(x*inv + z)),
	 * r = (q - z) * step, e = x - r, we = shrink(e); returns
	 * sum w (q - (x - we) * inv), the new zero times sum w.  Identical.
	 */
	float (*hqq_step)(const float *x, const float *w, int n, float inv, float step, float z, float ibeta,
			  float nmax);
	/* HQQ codes at zero z and sum w (x - (q - z) * step)^2.  Identical. */
	float (*hqq_eval)(const float *x, const float *w, int n, float inv, float step, float z, float nmax,
			  uint8_t *q);
	/*
	 * FP8: acc[i % 8] += w_i * (x_i - e4m3r(x_i * s) * d)^2 over one row of n
	 * (any n; the tail goes to lanes 0..), in double.  Identical.
	 */
	void (*fp8_err_row)(const float *x, const float *w, int64_t n, float s, float d, double acc[8]);
	/* MXFP4: codes of 32 values at inverse scale inv, error against value * sc.  Identical. */
	float (*mx_eval)(const float *x, const float *w, float inv, float sc, uint8_t *q);
	/* F8Q8: codes clamp(rne(x / d), -128, 127) of 32 values and their error.  Identical. */
	float (*q8_eval)(const float *x, const float *w, float d, int8_t *q);
	/* Table-row decoders and dots (last bits may differ from the reference). */
	isq_dequantize_fn deq_hqq4, deq_hqq8, deq_f8q8, deq_fp8;
	isq_dequantize_fn deq_afq[9];
	isq_vec_dot_fn dot_hqq4, dot_hqq8, dot_f8q8, dot_fp8;
	isq_vec_dot_fn dot_afq[9];
};

extern const struct mrs_kern isq_mrs_kern_ref;
#if defined(__x86_64__) || defined(__i386__)
#define MRS_X86 1
extern const struct mrs_kern isq_mrs_kern_avx2;
#else
#define MRS_X86 0
#endif
/* The kernels in use (AVX2 when the CPU has it and ISQ_FORCE_REF is unset). */
const struct mrs_kern *isq_mrs_kern(void);

/* ---- shared scalar helpers (the AVX2 file mirrors each) ---- */

/* Round to nearest, ties to even, for |v| <= 2^22 (1.5 * 2^23 trick). */
static inline float mrs_rne(float v)
{
	return (v + 12582912.0f) - 12582912.0f;
}

static inline float mrs_clamp(float v, float lo, float hi)
{
	v = v < lo ? lo : v;
	return v > hi ? hi : v;
}

/* The fixed reduction tree of eight lanes (the AVX2 horizontal sum's order). */
static inline float mrs_hsum8(const float a[8])
{
	float t0 = a[0] + a[4], t1 = a[1] + a[5], t2 = a[2] + a[6], t3 = a[3] + a[7];
	return (t0 + t2) + (t1 + t3);
}

static inline double mrs_hsum8d(const double a[8])
{
	double t0 = a[0] + a[4], t1 = a[1] + a[5], t2 = a[2] + a[6], t3 = a[3] + a[7];
	return (t0 + t2) + (t1 + t3);
}

/*
 * a^-0.3 for normal a > 0 (HQQ's shrinkage uses |e|^(p-1) with p = 0.7),
 * relative error below 1e-6: log2 by the atanh series on [sqrt(.5), sqrt(2)),
 * exp2 by a degree-6 polynomial on [-.5, .5].
 */
static inline float mrs_pow_m03(float a)
{
	uint32_t u = isq_f32_bits(a);
	float e = (float)((int32_t)(u >> 23) - 127);
	float m = isq_f32_from_bits((u & 0x007fffffu) | 0x3f800000u);
	if (m > 1.41421356f) {
		m = m * 0.5f;
		e = e + 1.0f;
	}
	float t = (m - 1.0f) / (m + 1.0f);
	float t2 = t * t;
	float lg = t * (2.88539008f + t2 * (0.961796694f + t2 * (0.577078016f + t2 * 0.412198583f)));
	float y = -0.3f * (e + lg);
	float n = mrs_rne(y);
	float f = y - n;
	float p = 1.0f + f * (0.693147181f + f * (0.240226507f + f * (0.0555041087f +
			f * (0.00961812911f + f * (0.00133335581f + f * 0.000154035304f)))));
	return p * isq_f32_from_bits((uint32_t)((int32_t)n + 127) << 23);
}

/*
 * The value E4M3 (fn variant, saturating at 448) gives x by RNE, as a float;
 * equals isq_e4m3_to_fp32(isq_fp32_to_e4m3(x)) for finite x.
 */
static inline float mrs_e4m3r(float x)
{
	uint32_t sign = isq_f32_bits(x) & 0x80000000u;
	float a = isq_f32_from_bits(isq_f32_bits(x) & 0x7fffffffu);
	a = a > 448.0f ? 448.0f : a;
	float r;
	if (a < 0.015625f) {
		r = mrs_rne(a * 512.0f) * 0.001953125f; /* subnormals: steps of 2^-9 */
	} else {
		uint32_t v = isq_f32_bits(a);
		v = (v + 0x7ffffu + ((v >> 20) & 1u)) & 0xfff00000u; /* 3 mantissa bits, RNE */
		r = isq_f32_from_bits(v);
	}
	return isq_f32_from_bits(isq_f32_bits(r) | sign);
}

/* E2M1 magnitudes (codes 0..7) and their doubles (ggml's table). */
static const float mrs_e2m1[8] = { 0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f };
static const int8_t mrs_k4[16] = { 0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12 };

/* 2^(e - 128), exact for every e (ggml's MXFP4 scale; e < 2 gives subnormals). */
static inline float mrs_e8m0_half(uint8_t e)
{
	return isq_f32_from_bits(e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23);
}

static inline float mrs_bf16(const uint8_t *p)
{
	return isq_bf16_to_fp32(isq_le16(p));
}

static inline float mrs_f32(const uint8_t *p)
{
	return isq_f32_from_bits(isq_le32(p));
}

/* Q8_0 activation block: f16 d, 32 int8. */
#define MRS_Q8_0_SIZE 34

/* Per-group weights: w[i] = imp[col0 + i], or 1 when imp is NULL or sums to 0. */
static inline void mrs_group_weights(const float *imp, int64_t col0, int n, float *w)
{
	float s = 0;
	if (imp)
		for (int i = 0; i < n; i++)
			s += (w[i] = imp[col0 + i]);
	if (!(s > 0))
		for (int i = 0; i < n; i++)
			w[i] = 1.0f;
}

/* The importance vector of a row: NULL, the shared one, or (len = E * cols) the expert's. */
static inline const float *isq_mrs_row_imp(const struct isq_mrs_layout *l, const float *imp, uint64_t len,
					   uint64_t row)
{
	if (!imp || len == l->cols)
		return imp;
	return imp + row / (l->rows / l->shape[0]) * l->cols;
}

/* ---- per-format drivers (one compiled version; kernels through k) ---- */

/* HQQ: one group of n values (n % 8 == 0) -> stored step, zero, codes. */
void isq_mrs_hqq_group(const struct mrs_kern *k, const float *x, const float *w, int n, int nmax,
		       float *step, float *zero, uint8_t *q);
/* HQQ's min/max start alone (no solver), for tests and comparisons. */
void isq_mrs_hqq_start(const float *x, int n, int nmax, float *step, float *zero);
/* AFQ: one group -> stored scale, bias (already rounded to dt) and codes. */
void isq_mrs_afq_group(const struct mrs_kern *k, const float *x, const float *w, int n, int nmax,
		       enum isq_mrs_dtype dt, float *s, float *b, uint8_t *q);
/* MXFP4: one 32-block -> E8M0 exponent and 4-bit codes (sign in bit 3). */
uint8_t isq_mrs_mxfp4_block(const struct mrs_kern *k, const float *x, const float *w, uint8_t *q);
/* F8Q8: one 32-block -> E4M3 scale code and int8 codes. */
uint8_t isq_mrs_f8q8_block(const struct mrs_kern *k, const float *x, const float *w, int8_t *q);
/* FP8: choose the tensor's quant scale (see mrs.h); imp: NULL or cols weights (not all 0). */
float isq_mrs_fp8_choose(const struct mrs_kern *k, const float *src, int64_t rows, int64_t cols,
			 const float *imp);

/* UQFF entries: quantize units [u0, u1) (see isq_mrs_quantize_units) and decode rows. */
void isq_mrs_hqq_units(const struct mrs_kern *k, const struct isq_mrs_layout *l, const float *src,
		       const float *imp, uint64_t imp_len, uint64_t u0, uint64_t u1);
void isq_mrs_afq_units(const struct mrs_kern *k, const struct isq_mrs_layout *l, const float *src,
		       const float *imp, uint64_t imp_len, uint64_t u0, uint64_t u1);
void isq_mrs_fp8_units(const struct isq_mrs_layout *l, const float *src, uint64_t u0, uint64_t u1);
void isq_mrs_f8q8_units(const struct mrs_kern *k, const struct isq_mrs_layout *l, const float *src,
			const float *imp, uint64_t u0, uint64_t u1);
void isq_mrs_mxfp4_units(const struct mrs_kern *k, const struct isq_mrs_layout *l, const float *src,
			 const float *imp, uint64_t imp_len, uint64_t u0, uint64_t u1);
void isq_mrs_hqq_deq_rows(const struct isq_mrs_layout *l, uint64_t r0, uint64_t nr, float *dst);
void isq_mrs_afq_deq_rows(const struct isq_mrs_layout *l, uint64_t r0, uint64_t nr, float *dst);
void isq_mrs_fp8_deq_rows(const struct isq_mrs_layout *l, uint64_t r0, uint64_t nr, float *dst);
void isq_mrs_f8q8_deq_rows(const struct isq_mrs_layout *l, uint64_t r0, uint64_t nr, float *dst);
void isq_mrs_mxfp4_deq_rows(const struct isq_mrs_layout *l, uint64_t r0, uint64_t nr, float *dst);

/* Round a float to a scale dtype (saturating to its largest finite value). */
float isq_mrs_round_dtype(float v, enum isq_mrs_dtype dt);
void isq_mrs_store_dtype(uint8_t *p, float v, enum isq_mrs_dtype dt);
float isq_mrs_load_dtype(const uint8_t *p, enum isq_mrs_dtype dt);

/* AFQ bit stream: pack/unpack n codes of b bits into/from (n*b/32) u32 LE words. */
void isq_mrs_afq_pack(const uint8_t *q, int n, int bits, uint8_t *words);
void isq_mrs_afq_unpack(const uint8_t *words, int n, int bits, uint8_t *q);

/* Table-row kernels, reference versions. */
void isq_mrs_register_hqq(struct isq_type_traits *tab, const struct mrs_kern *k, int fast);
void isq_mrs_register_afq(struct isq_type_traits *tab, const struct mrs_kern *k, int fast);
void isq_mrs_register_fp8(struct isq_type_traits *tab, const struct mrs_kern *k, int fast);
void isq_mrs_register_f8q8(struct isq_type_traits *tab, const struct mrs_kern *k, int fast);

/* Reference element loops (members of isq_mrs_kern_ref). */
float isq_mrs_afq_eval_ref(const float *x, const float *w, int n, float s, float b, float id, float nmax,
			   uint8_t *q);
void isq_mrs_afq_codes_ref(const float *x, int n, float mn, float is, float nmax, uint8_t *q);
void isq_mrs_afq_sums_ref(const float *x, const float *w, const uint8_t *q, int n, float out[5]);
float isq_mrs_hqq_step_ref(const float *x, const float *w, int n, float inv, float step, float z, float ibeta,
			   float nmax);
float isq_mrs_hqq_eval_ref(const float *x, const float *w, int n, float inv, float step, float z, float nmax,
			   uint8_t *q);
void isq_mrs_fp8_err_row_ref(const float *x, const float *w, int64_t n, float s, float d, double acc[8]);
float isq_mrs_mx_eval_ref(const float *x, const float *w, float inv, float sc, uint8_t *q);
float isq_mrs_q8_eval_ref(const float *x, const float *w, float d, int8_t *q);
void isq_mrs_deq_hqq4_ref(const void *src, float *y, int64_t n);
void isq_mrs_deq_hqq8_ref(const void *src, float *y, int64_t n);
void isq_mrs_deq_f8q8_ref(const void *src, float *y, int64_t n);
void isq_mrs_deq_fp8_ref(const void *src, float *y, int64_t n);
void isq_mrs_deq_afq2_ref(const void *src, float *y, int64_t n);
void isq_mrs_deq_afq3_ref(const void *src, float *y, int64_t n);
void isq_mrs_deq_afq4_ref(const void *src, float *y, int64_t n);
void isq_mrs_deq_afq6_ref(const void *src, float *y, int64_t n);
void isq_mrs_deq_afq8_ref(const void *src, float *y, int64_t n);
void isq_mrs_dot_hqq4_ref(int64_t n, float *s, const void *x, const void *y);
void isq_mrs_dot_hqq8_ref(int64_t n, float *s, const void *x, const void *y);
void isq_mrs_dot_f8q8_ref(int64_t n, float *s, const void *x, const void *y);
void isq_mrs_dot_fp8_ref(int64_t n, float *s, const void *x, const void *y);
void isq_mrs_dot_afq2_ref(int64_t n, float *s, const void *x, const void *y);
void isq_mrs_dot_afq3_ref(int64_t n, float *s, const void *x, const void *y);
void isq_mrs_dot_afq4_ref(int64_t n, float *s, const void *x, const void *y);
void isq_mrs_dot_afq6_ref(int64_t n, float *s, const void *x, const void *y);
void isq_mrs_dot_afq8_ref(int64_t n, float *s, const void *x, const void *y);

/* The E4M3 decode table (all 256 codes; 0x7f and 0xff are NaN). */
extern const float isq_mrs_e4m3_lut[256];

#endif
