/*
 * test-mrs.c - mistral.rs's formats (HQQ, AFQ, FP8, F8Q8, MXFP4 in UQFF):
 * byte layouts against examples built by hand from mistralrs-notes §1.5,
 * round-trip error thresholds on several distributions, the encoders
 * against mistral.rs's own rules (implemented here as baselines), scalar
 * against AVX2, determinism, input checks, reading entries back, and the
 * ggml <-> UQFF MXFP4 conversion (with llama.cpp's reference vectors when
 * ../shared is present).  MRS_FIGURES=1 prints the measured comparisons.
 */
#include "test.h"

#include "fp.h"
#include "mrs-impl.h" /* white-box: the shared rounding helpers */
#include "safetensors.h"
#include "types.h"
#include "cpu.h"

#include <math.h>

/* ---- inputs ---- */

static uint64_t rng_s;

static uint64_t rng_next(void)
{
	uint64_t z = (rng_s += 0x9E3779B97F4A7C15ull);
	z = (z ^ z >> 30) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ z >> 27) * 0x94D049BB133111EBull;
	return z ^ z >> 31;
}

static double u01(void)
{
	return (double)(rng_next() >> 11) * 0x1p-53;
}

static double gauss(void)
{
	double u1 = ((double)(rng_next() >> 11) + 1) * 0x1p-53, u2 = u01();
	return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

enum dist { D_GAUSS, D_HEAVY, D_OUTL, D_UNIF, D_SMALL, D_REAL, D_COUNT };
static const char *dist_name[D_COUNT] = { "gauss", "heavy", "outl", "unif", "small", "real" };

/* stories260K's layer-0 gate_proj (F32, [172, 64]) when ../shared is present */
static float *real_w;
static int64_t real_n;

static void load_real(void)
{
	static int tried;
	char path[8192];
	if (tried)
		return;
	tried = 1;
	if (!test_shared_path(path, sizeof(path), "models/stories260K-f32/model.safetensors"))
		return;
	struct isq_safetensors *st = isq_st_new();
	if (st && isq_st_open(st, path) == 0) {
		const struct isq_st_tensor *t = isq_st_find(st, "model.layers.0.mlp.gate_proj.weight");
		if (t && t->dtype == ISQ_ST_F32) {
			real_n = (int64_t)t->n_elements;
			real_w = malloc((size_t)real_n * 4);
			memcpy(real_w, t->data, (size_t)real_n * 4);
		}
	}
	isq_st_free(st);
}

/* n values of distribution d; "real" tiles stories260K's weights (gauss without ../shared) */
static void fill(float *x, int64_t n, enum dist d, uint64_t seed)
{
	rng_s = seed * 7919 + (uint64_t)d;
	if (d == D_REAL) {
		load_real();
		if (!real_w)
			d = D_GAUSS;
	}
	for (int64_t i = 0; i < n; i++) {
		switch (d) {
		case D_GAUSS: x[i] = (float)(0.02 * gauss()); break;
		case D_HEAVY: {
			double z = gauss(), c1 = gauss(), c2 = gauss(), c3 = gauss();
			x[i] = (float)(0.02 * z / sqrt((c1 * c1 + c2 * c2 + c3 * c3) / 3));
			if (rng_next() % 128 == 0)
				x[i] = (float)((rng_next() & 1 ? -1 : 1) * 0.02 * (20 + 20 * u01()));
			break;
		}
		case D_OUTL:
			x[i] = (float)(0.02 * gauss());
			if (i % 32 == (int64_t)(seed % 32))
				x[i] = (float)((rng_next() & 1 ? -1 : 1) * (1 + 0.25 * u01()));
			break;
		case D_UNIF: x[i] = (float)(0.01 + 0.05 * (2 * u01() - 1)); break;
		case D_SMALL: x[i] = (float)(1e-4 * gauss()); break;
		case D_REAL: x[i] = real_w[i % real_n]; break;
		default: break;
		}
	}
}

/* importance weights: 0.1 + N^2, every 13th column x20 */
static void fill_imp(float *w, int64_t n, uint64_t seed)
{
	rng_s = seed ^ 0xabcdef;
	for (int64_t j = 0; j < n; j++) {
		double g = gauss();
		w[j] = (float)((0.1 + g * g) * (j % 13 == 0 ? 20 : 1));
	}
}

/* sum over elements of w[col] (x - y)^2 (w NULL: 1) */
static double werr(const float *x, const float *y, int64_t n, int64_t cols, const float *w)
{
	double s = 0;
	for (int64_t i = 0; i < n; i++) {
		double d = (double)x[i] - (double)y[i];
		s += (w ? w[i % cols] : 1.0) * d * d;
	}
	return s;
}

static double rel_rmse(const float *x, const float *y, int64_t n)
{
	double e = werr(x, y, n, 1, NULL), s = 0;
	for (int64_t i = 0; i < n; i++)
		s += (double)x[i] * x[i];
	return sqrt(e / s);
}

static int figures(void)
{
	const char *v = getenv("MRS_FIGURES");
	return v && *v && strcmp(v, "0");
}

/* ---- layouts with malloc'd buffers ---- */

static int plan_alloc(struct isq_mrs_layout *l, enum isq_type t, int rank, const uint64_t *shape,
		      const struct isq_mrs_params *p)
{
	struct isq_errbuf e = { 0 };
	int rc = isq_mrs_plan(l, t, rank, shape, p, &e);
	if (rc)
		return rc;
	for (int i = 0; i < l->ntensors; i++)
		l->t[i].data = calloc(1, (size_t)l->t[i].nbytes);
	return 0;
}

static void layout_free(struct isq_mrs_layout *l)
{
	for (int i = 0; i < l->ntensors; i++)
		free(l->t[i].data);
	l->ntensors = 0;
}

/* quantize then decode; returns the rc of quantize */
static int roundtrip(enum isq_type t, const float *x, int rank, const uint64_t *shape,
		     const struct isq_mrs_params *p, const float *imp, uint64_t imp_len, float *y,
		     struct isq_mrs_layout *keep)
{
	struct isq_mrs_layout l;
	struct isq_errbuf e = { 0 };
	int rc = plan_alloc(&l, t, rank, shape, p);
	if (!rc)
		rc = isq_mrs_quantize(&l, x, imp, imp_len, &e);
	if (!rc && y)
		isq_mrs_dequantize(&l, y);
	if (keep && !rc)
		*keep = l;
	else
		layout_free(&l);
	return rc;
}

static const uint8_t *tdata(struct isq_mrs_layout *l, const char *sfx)
{
	struct isq_mrs_tensor *t = isq_mrs_find(l, sfx);
	return t ? t->data : NULL;
}

static float f32le(const uint8_t *p)
{
	return isq_f32_from_bits(isq_le32(p));
}

/* ---- mistral.rs's rules, as baselines ---- */

static float round_dt(float v, enum isq_mrs_dtype dt)
{
	if (dt == ISQ_MRS_F16)
		return isq_fp16_to_fp32(isq_fp32_to_fp16(v));
	if (dt == ISQ_MRS_BF16)
		return isq_bf16_to_fp32(isq_fp32_to_bf16(v));
	return v;
}

/* AFQ, CPU path: min/max, scale = range/(2^b-1) (1 if range < 1e-12), bias = min, stored in dt */
static void base_afq(const float *x, int64_t n, int gs, int bits, enum isq_mrs_dtype dt, float *y)
{
	float nmax = (float)((1 << bits) - 1);
	for (int64_t g = 0; g < n; g += gs) {
		float mn = x[g], mx = x[g];
		for (int i = 1; i < gs; i++) {
			mn = fminf(mn, x[g + i]);
			mx = fmaxf(mx, x[g + i]);
		}
		float s = mx - mn < 1e-12f ? 1.0f : (mx - mn) / nmax, b = mn;
		float sr = round_dt(s, dt), br = round_dt(b, dt);
		for (int i = 0; i < gs; i++) {
			float q = fminf(fmaxf(roundf((x[g + i] - b) / s), 0), nmax);
			y[g + i] = q * sr + br;
		}
	}
}

/* HQQ's min/max start (no solver), axis 0 groups of 64 */
static void base_hqq_start(const float *x, int64_t n, int bits, float *y)
{
	int64_t m = n / 64;
	float nmax = (float)((1 << bits) - 1);
	for (int64_t c = 0; c < m; c++) {
		float mn = x[c], mx = x[c];
		for (int64_t r = 1; r < 64; r++) {
			mn = fminf(mn, x[r * m + c]);
			mx = fmaxf(mx, x[r * m + c]);
		}
		float inv = nmax / (mx - mn), z = -mn * inv, st = 1.0f / inv;
		for (int64_t r = 0; r < 64; r++) {
			float q = fminf(fmaxf(rintf(x[r * m + c] * inv + z), 0), nmax);
			y[r * m + c] = (q - z) * st;
		}
	}
}

/*
 * HQQ as mistral.rs runs it: inverse step clamped to [0, 2e4], proximal
 * steps with the global mean-|e| stopping rule, the last zero kept.
 */
static void base_hqq_mrs(const float *x, int64_t n, int bits, float *y)
{
	int64_t m = n / 64;
	float nmax = (float)((1 << bits) - 1), beta = 10;
	float *inv = malloc((size_t)m * 4), *z = malloc((size_t)m * 4);
	for (int64_t c = 0; c < m; c++) {
		float mn = x[c], mx = x[c];
		for (int64_t r = 1; r < 64; r++) {
			mn = fminf(mn, x[r * m + c]);
			mx = fmaxf(mx, x[r * m + c]);
		}
		inv[c] = fminf(fmaxf(nmax / (mx - mn), 0), 2e4f);
		z[c] = -mn * inv[c];
	}
	double best = 1e4;
	for (int it = 0; it < 10; it++) {
		double l1 = 0;
		for (int64_t c = 0; c < m; c++) {
			double acc = 0;
			for (int64_t r = 0; r < 64; r++) {
				float xi = x[r * m + c];
				float q = fminf(fmaxf(rintf(xi * inv[c] + z[c]), 0), nmax);
				float e = xi - (q - z[c]) / inv[c];
				l1 += fabsf(e);
				float t = fabsf(e) - powf(fabsf(e) + 1e-8f, -0.3f) / beta;
				float we = t > 0 ? copysignf(t, e) : 0;
				acc += q - (xi - we) * inv[c];
			}
			z[c] = (float)(acc / 64);
		}
		beta *= 1.01f;
		l1 /= (double)n;
		if (l1 < best)
			best = l1;
		else
			break;
	}
	for (int64_t c = 0; c < m; c++)
		for (int64_t r = 0; r < 64; r++) {
			float q = fminf(fmaxf(rintf(x[r * m + c] * inv[c] + z[c]), 0), nmax);
			y[r * m + c] = (q - z[c]) * (1.0f / inv[c]);
		}
	free(inv);
	free(z);
}

/* FP8: quant scale 448/absmax clamped to 448 */
static float base_fp8(const float *x, int64_t n, float *y)
{
	float amax = 0;
	for (int64_t i = 0; i < n; i++)
		amax = fmaxf(amax, fabsf(x[i]));
	float s = fminf(448.0f / amax, 448.0f), d = 1.0f / s;
	for (int64_t i = 0; i < n; i++)
		y[i] = isq_e4m3_to_fp32(isq_fp32_to_e4m3(x[i] * s)) * d;
	return s;
}

/* F8Q8: d = amax/127, scale byte E4M3(d*448), codes round(x/d) with the unrounded d */
static void base_f8q8(const float *x, int64_t n, float *y)
{
	for (int64_t b = 0; b < n; b += 32) {
		float amax = 0;
		for (int i = 0; i < 32; i++)
			amax = fmaxf(amax, fabsf(x[b + i]));
		float d = amax / 127.0f, dd = isq_e4m3_to_fp32(isq_fp32_to_e4m3(d * 448.0f)) / 448.0f;
		for (int i = 0; i < 32; i++)
			y[b + i] = (d > 0 ? roundf(x[b + i] / d) : 0) * dd;
	}
}

static const float e2m1[8] = { 0, 0.5f, 1, 1.5f, 2, 3, 4, 6 };

/* nearest E2M1 value of v by midpoints, mistral.rs's way */
static float e2m1_round(float v)
{
	float a = fabsf(v), m;
	if (a < 0.25f) m = 0;
	else if (a < 0.75f) m = 0.5f;
	else if (a < 1.25f) m = 1;
	else if (a < 1.75f) m = 1.5f;
	else if (a < 2.5f) m = 2;
	else if (a < 3.5f) m = 3;
	else if (a < 5.0f) m = 4;
	else m = 6;
	return v < 0 ? -m : m;
}

/* MXFP4: mistral.rs's exponent floor(log2(amax/6)) (llama: floor(log2 amax) - 2) */
static void base_mxfp4(const float *x, int64_t n, int llama, float *y)
{
	for (int64_t b = 0; b < n; b += 32) {
		float amax = 0;
		for (int i = 0; i < 32; i++)
			amax = fmaxf(amax, fabsf(x[b + i]));
		int e;
		if (llama)
			e = amax > 0 ? (int)floorf(log2f(amax)) - 2 + 127 : 0;
		else
			e = amax > 0 ? (int)floorf(log2f(amax / 6.0f)) + 127 : 127;
		e = e < 0 ? 0 : e > 254 ? 254 : e;
		float sc = ldexpf(1.0f, e - 127);
		for (int i = 0; i < 32; i++)
			y[b + i] = e2m1_round(x[b + i] / sc) * sc;
	}
}

/* ---- the table rows ---- */

TEST(table_rows)
{
	static const struct {
		enum isq_type t;
		int64_t blck;
		size_t size;
		double bpw;
		enum isq_type vdt;
	} rows[] = {
		{ ISQ_TYPE_HQQ4, 64, 40, 5.0, ISQ_TYPE_Q8_0 },  { ISQ_TYPE_HQQ8, 64, 72, 9.0, ISQ_TYPE_Q8_0 },
		{ ISQ_TYPE_AFQ2, 64, 20, 2.5, ISQ_TYPE_Q8_0 },  { ISQ_TYPE_AFQ3, 64, 28, 3.5, ISQ_TYPE_Q8_0 },
		{ ISQ_TYPE_AFQ4, 64, 36, 4.5, ISQ_TYPE_Q8_0 },  { ISQ_TYPE_AFQ6, 64, 52, 6.5, ISQ_TYPE_Q8_0 },
		{ ISQ_TYPE_AFQ8, 64, 68, 8.5, ISQ_TYPE_Q8_0 },  { ISQ_TYPE_FP8, 1, 1, 8.0, ISQ_TYPE_F32 },
		{ ISQ_TYPE_F8Q8, 32, 33, 8.25, ISQ_TYPE_Q8_0 },
	};
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(rows); i++) {
		const struct isq_type_traits *t = isq_type_traits(rows[i].t);
		CHECK(t != NULL);
		CHECK_EQ_INT(t->blck, rows[i].blck);
		CHECK_EQ_INT(t->type_size, rows[i].size);
		CHECK_NEAR(isq_type_bpw(rows[i].t), rows[i].bpw, 1e-12);
		CHECK_EQ_INT(t->ggml_id, -1);
		CHECK_EQ_INT(t->vec_dot_type, rows[i].vdt);
		CHECK(t->quantize && t->quantize_ref && t->dequantize && t->vec_dot && t->vec_dot_ref);
		CHECK(t->backends & ISQ_BACKEND_CPU);
		CHECK_EQ_INT(t->uses_imatrix, rows[i].t != ISQ_TYPE_FP8);
	}
}

/* ---- plans: shapes, dtypes and suffixes as mistralrs-notes §1.5 lists them ---- */

struct want {
	const char *sfx;
	enum isq_mrs_dtype dt;
	int rank;
	uint64_t d0, d1, d2;
};

static void check_plan(struct isq_mrs_layout *l, const struct want *w, int n)
{
	CHECK_EQ_INT(l->ntensors, n);
	for (int i = 0; i < n && i < l->ntensors; i++) {
		struct isq_mrs_tensor *t = isq_mrs_find(l, w[i].sfx);
		CHECK_MSG(t != NULL, "missing %s", w[i].sfx);
		if (!t)
			continue;
		CHECK_STR(isq_mrs_dtype_name(t->dtype), isq_mrs_dtype_name(w[i].dt));
		CHECK_EQ_INT(t->rank, w[i].rank);
		uint64_t d[3] = { w[i].d0, w[i].d1, w[i].d2 }, n_el = 1;
		for (int k = 0; k < t->rank; k++) {
			CHECK_EQ_INT(t->shape[k], d[k]);
			n_el *= d[k];
		}
		CHECK_EQ_INT(t->nbytes, n_el * isq_mrs_dtype_size(t->dtype));
	}
	CHECK_STR(l->t[0].suffix, "weight");
}

TEST(plan_layouts)
{
	struct isq_mrs_layout l;
	struct isq_errbuf e = { 0 };
	uint64_t s2[2] = { 96, 256 }, s3[3] = { 4, 96, 256 };

	CHECK_EQ_INT(isq_mrs_plan(&l, ISQ_TYPE_HQQ4, 2, s2, NULL, &e), 0);
	const struct want hqq4[] = {
		{ "weight", ISQ_MRS_U8, 2, 32, 384, 0 },        { "weight.scales", ISQ_MRS_F32, 2, 1, 384, 0 },
		{ "weight.zeros", ISQ_MRS_F32, 2, 1, 384, 0 },  { "weight.shape", ISQ_MRS_U32, 1, 2, 0, 0 },
		{ "weight.bits", ISQ_MRS_U8, 0, 0, 0, 0 },       { "weight.group_size", ISQ_MRS_U32, 0, 0, 0, 0 },
		{ "weight.axis", ISQ_MRS_U8, 0, 0, 0, 0 },       { "weight.optimization_steps", ISQ_MRS_U32, 0, 0, 0, 0 },
		{ "weight.round_zeros", ISQ_MRS_U8, 0, 0, 0, 0 }, { "weight.channel_wise", ISQ_MRS_U8, 0, 0, 0, 0 },
		{ "weight.format", ISQ_MRS_U8, 0, 0, 0, 0 },
	};
	check_plan(&l, hqq4, ISQ_ARRAY_SIZE(hqq4));
	CHECK_EQ_INT(isq_mrs_units(&l), 384);
	CHECK_EQ_INT(isq_mrs_plan(&l, ISQ_TYPE_HQQ8, 2, s2, NULL, &e), 0);
	CHECK_EQ_INT(l.t[0].shape[0], 64);
	CHECK_EQ_INT(l.t[0].nbytes, 96 * 256);

	struct isq_mrs_params p = { 64, ISQ_MRS_F16 };
	CHECK_EQ_INT(isq_mrs_plan(&l, ISQ_TYPE_AFQ3, 3, s3, &p, &e), 0);
	const struct want afq3[] = {
		{ "weight", ISQ_MRS_U32, 3, 4, 96, 24 },        { "weight.scales", ISQ_MRS_F16, 3, 4, 96, 4 },
		{ "weight.biases", ISQ_MRS_F16, 3, 4, 96, 4 },  { "weight.bits", ISQ_MRS_U8, 0, 0, 0, 0 },
		{ "weight.group_size", ISQ_MRS_U8, 0, 0, 0, 0 }, { "weight.format", ISQ_MRS_U8, 0, 0, 0, 0 },
	};
	check_plan(&l, afq3, ISQ_ARRAY_SIZE(afq3));
	CHECK_EQ_INT(isq_mrs_units(&l), 4 * 96);
	CHECK_EQ_INT(isq_mrs_plan(&l, ISQ_TYPE_AFQ6, 2, s2, NULL, &e), 0); /* defaults: group 64, BF16 */
	CHECK_EQ_INT(l.t[0].shape[1], 48);
	CHECK_EQ_INT(l.t[1].dtype, ISQ_MRS_BF16);
	CHECK_EQ_INT(l.t[1].shape[1], 4);

	CHECK_EQ_INT(isq_mrs_plan(&l, ISQ_TYPE_FP8, 2, s2, NULL, &e), 0);
	const struct want fp8[] = {
		{ "weight", ISQ_MRS_F8_E4M3, 2, 96, 256, 0 },       { "weight.dequant_w_scale", ISQ_MRS_F32, 0, 0, 0, 0 },
		{ "weight.dequant_x_scale", ISQ_MRS_F32, 0, 0, 0, 0 }, { "weight.quant_scale", ISQ_MRS_F32, 0, 0, 0, 0 },
		{ "weight.dtype", ISQ_MRS_U32, 0, 0, 0, 0 },          { "weight.format", ISQ_MRS_U8, 0, 0, 0, 0 },
	};
	check_plan(&l, fp8, ISQ_ARRAY_SIZE(fp8));

	uint64_t odd[2] = { 5, 8 };
	CHECK_EQ_INT(isq_mrs_plan(&l, ISQ_TYPE_F8Q8, 2, odd, NULL, &e), 0);
	const struct want f8q8[] = {
		{ "weight", ISQ_MRS_U8, 1, 66, 0, 0 },
		{ "weight.num_blocks", ISQ_MRS_U32, 0, 0, 0, 0 },
		{ "weight.shape", ISQ_MRS_U32, 1, 2, 0, 0 },
		{ "weight.format", ISQ_MRS_U8, 0, 0, 0, 0 },
	};
	check_plan(&l, f8q8, ISQ_ARRAY_SIZE(f8q8));
	CHECK_EQ_INT(isq_mrs_units(&l), 2);

	CHECK_EQ_INT(isq_mrs_plan(&l, ISQ_TYPE_MXFP4, 3, s3, NULL, &e), 0);
	const struct want mx[] = {
		{ "weight", ISQ_MRS_U8, 3, 4, 96, 128 },
		{ "weight.scales", ISQ_MRS_U8, 3, 4, 96, 8 },
		{ "weight.format", ISQ_MRS_U8, 0, 0, 0, 0 },
	};
	check_plan(&l, mx, ISQ_ARRAY_SIZE(mx));

	/* shapes the formats cannot hold; the fallback is the caller's */
	uint64_t b1[2] = { 3, 20 }, b2[2] = { 4, 96 }, b3[2] = { 4, 48 }, z[2] = { 0, 64 };
	CHECK_EQ_INT(isq_mrs_plan(&l, ISQ_TYPE_HQQ4, 2, b1, NULL, &e), ISQ_EINVAL); /* 60 elements */
	CHECK(strstr(e.msg, "multiple") != NULL);
	CHECK_EQ_INT(isq_mrs_plan(&l, ISQ_TYPE_HQQ4, 2, b2, NULL, &e), 0);        /* 384 = 6 * 64 */
	CHECK_EQ_INT(isq_mrs_plan(&l, ISQ_TYPE_AFQ4, 2, b2, NULL, &e), ISQ_EINVAL); /* 96 % 64 */
	p.group_size = 32;
	CHECK_EQ_INT(isq_mrs_plan(&l, ISQ_TYPE_AFQ4, 2, b2, &p, &e), 0);
	p.group_size = 48;
	CHECK_EQ_INT(isq_mrs_plan(&l, ISQ_TYPE_AFQ4, 2, b2, &p, &e), ISQ_EINVAL);
	p.group_size = 64;
	p.scale_dtype = ISQ_MRS_U8;
	CHECK_EQ_INT(isq_mrs_plan(&l, ISQ_TYPE_AFQ4, 2, s2, &p, &e), ISQ_EINVAL);
	CHECK_EQ_INT(isq_mrs_plan(&l, ISQ_TYPE_MXFP4, 2, b3, NULL, &e), ISQ_EINVAL);
	CHECK_EQ_INT(isq_mrs_plan(&l, ISQ_TYPE_MXFP4, 2, b2, NULL, &e), 0);
	CHECK_EQ_INT(isq_mrs_plan(&l, ISQ_TYPE_HQQ4, 3, s3, NULL, &e), ISQ_EUNSUPPORTED);
	CHECK_EQ_INT(isq_mrs_plan(&l, ISQ_TYPE_FP8, 3, s3, NULL, &e), ISQ_EUNSUPPORTED);
	CHECK_EQ_INT(isq_mrs_plan(&l, ISQ_TYPE_F8Q8, 3, s3, NULL, &e), ISQ_EUNSUPPORTED);
	CHECK_EQ_INT(isq_mrs_plan(&l, ISQ_TYPE_Q4_K, 2, s2, NULL, &e), ISQ_EUNSUPPORTED);
	CHECK_EQ_INT(isq_mrs_plan(&l, ISQ_TYPE_AFQ4, 2, z, NULL, &e), ISQ_EINVAL);
	CHECK_EQ_INT(isq_mrs_plan(&l, ISQ_TYPE_AFQ4, 0, s2, NULL, &e), ISQ_EINVAL);
}

/* ---- byte layouts, built by hand ---- */

/* HQQ4 [2, 64]: N/G = 2 groups; group c holds the flat elements c, c+2, c+4, ... */
TEST(hqq4_bytes_by_hand)
{
	float x[128], y[128];
	uint8_t q[64][2];
	const float off[2] = { -1.0f, 0.5f };
	for (int r = 0; r < 64; r++)
		for (int c = 0; c < 2; c++) {
			int base = r < 32 ? r % 16 : 15 - r % 16;
			q[r][c] = (uint8_t)((base + c) % 16);
			x[2 * r + c] = (float)q[r][c] * 0.25f + off[c]; /* step 0.25, exactly representable */
		}
	struct isq_mrs_layout l;
	uint64_t sh[2] = { 2, 64 };
	CHECK_EQ_INT(roundtrip(ISQ_TYPE_HQQ4, x, 2, sh, NULL, NULL, 0, y, &l), 0);
	const uint8_t *w = tdata(&l, "weight");
	/* byte [r][c] at r * 2 + c = q[r][c] << 4 | q[r + 32][c] */
	CHECK_EQ_INT(w[0], 0x0f);      /* q[0][0] = 0, q[32][0] = 15 */
	CHECK_EQ_INT(w[1], 0x10);      /* q[0][1] = 1, q[32][1] = 0 */
	CHECK_EQ_INT(w[2], 0x1e);      /* q[1][0] = 1, q[33][0] = 14 */
	CHECK_EQ_INT(w[31 * 2], 0xf0); /* q[15][0] = 15, q[47][0] = 0 */
	for (int r = 0; r < 32; r++)
		for (int c = 0; c < 2; c++)
			CHECK_EQ_INT(w[r * 2 + c], q[r][c] << 4 | q[r + 32][c]);
	const uint8_t *s = tdata(&l, "weight.scales"), *z = tdata(&l, "weight.zeros");
	CHECK_EQ_INT(isq_le32(s), 0x3e800000); /* 0.25 */
	CHECK_EQ_INT(isq_le32(s + 4), 0x3e800000);
	CHECK(f32le(z) == 4.0f);      /* -min * inv = 1 * 4 */
	CHECK(f32le(z + 4) == -2.0f); /* -0.5 * 4 */
	const uint8_t *shp = tdata(&l, "weight.shape");
	CHECK_EQ_INT(isq_le32(shp), 2);
	CHECK_EQ_INT(isq_le32(shp + 4), 64);
	CHECK_EQ_INT(*tdata(&l, "weight.bits"), 4);
	CHECK_EQ_INT(isq_le32(tdata(&l, "weight.group_size")), 64);
	CHECK_EQ_INT(*tdata(&l, "weight.axis"), 0);
	CHECK_EQ_INT(isq_le32(tdata(&l, "weight.optimization_steps")), 10);
	CHECK_EQ_INT(*tdata(&l, "weight.round_zeros"), 0);
	CHECK_EQ_INT(*tdata(&l, "weight.channel_wise"), 1);
	CHECK_EQ_INT(*tdata(&l, "weight.format"), 2);
	for (int i = 0; i < 128; i++)
		CHECK(y[i] == x[i]);
	layout_free(&l);
}

TEST(hqq8_bytes_by_hand)
{
	enum { M = 3 };
	float x[64 * M], y[64 * M];
	for (int r = 0; r < 64; r++)
		for (int c = 0; c < M; c++) {
			int qv = r == 0 ? 0 : r == 63 ? 255 : (r * 37 + c * 11) % 256;
			x[r * M + c] = (float)qv * 0.125f - 3.0f * (float)c;
		}
	struct isq_mrs_layout l;
	uint64_t sh[1] = { 64 * M };
	CHECK_EQ_INT(roundtrip(ISQ_TYPE_HQQ8, x, 1, sh, NULL, NULL, 0, y, &l), 0);
	const uint8_t *w = tdata(&l, "weight");
	CHECK_EQ_INT(l.t[0].shape[0], 64);
	CHECK_EQ_INT(l.t[0].shape[1], M);
	CHECK_EQ_INT(w[0], 0);
	CHECK_EQ_INT(w[1 * M + 2], (37 + 22) % 256);
	CHECK_EQ_INT(w[63 * M + 1], 255);
	CHECK(f32le(tdata(&l, "weight.scales") + 4) == 0.125f);
	CHECK(f32le(tdata(&l, "weight.zeros") + 8) == 48.0f); /* -(-6) * 8 */
	CHECK_EQ_INT(*tdata(&l, "weight.bits"), 8);
	CHECK_EQ_INT(isq_le32(tdata(&l, "weight.shape")), 64 * M);
	for (int i = 0; i < 64 * M; i++)
		CHECK(y[i] == x[i]);
	layout_free(&l);
}

/* AFQ3 and AFQ6, group 32, F32 scales: codes straddle u32 words */
TEST(afq_bytes_by_hand)
{
	float x[64], y[64];
	for (int j = 0; j < 32; j++) {
		x[j] = (float)(j % 8) * 0.5f - 1.0f;  /* group 0: q = j % 8, scale 0.5, bias -1 */
		x[32 + j] = (float)(7 - j % 8) * 0.25f + 2.0f; /* group 1: q = 7 - j % 8 */
	}
	struct isq_mrs_layout l;
	struct isq_mrs_params p = { 32, ISQ_MRS_F32 };
	uint64_t sh[2] = { 1, 64 };
	CHECK_EQ_INT(roundtrip(ISQ_TYPE_AFQ3, x, 2, sh, &p, NULL, 0, y, &l), 0);
	const uint8_t *w = tdata(&l, "weight");
	CHECK_EQ_INT(l.t[0].shape[1], 6);
	/* q = 0,1,...,7,0,1,2: bits 3j; element 10 straddles (low 2 bits in word 0, bit 2 in word 1) */
	CHECK_EQ_INT(isq_le32(w), 0x88fac688);
	CHECK_EQ_INT(isq_le32(w + 4), 0xc688fac6);
	CHECK_EQ_INT(isq_le32(w + 8), 0xfac688fa);
	CHECK_EQ_INT(isq_le32(w + 12), ~0x88fac688u & 0xffffffffu); /* 7 - q flips every bit */
	CHECK(f32le(tdata(&l, "weight.scales")) == 0.5f);
	CHECK(f32le(tdata(&l, "weight.scales") + 4) == 0.25f);
	CHECK(f32le(tdata(&l, "weight.biases")) == -1.0f);
	CHECK(f32le(tdata(&l, "weight.biases") + 4) == 2.0f);
	CHECK_EQ_INT(*tdata(&l, "weight.bits"), 3);
	CHECK_EQ_INT(*tdata(&l, "weight.group_size"), 32);
	CHECK_EQ_INT(*tdata(&l, "weight.format"), 4);
	for (int i = 0; i < 64; i++)
		CHECK(y[i] == x[i]);
	layout_free(&l);

	/* 6 bits: q = 5j % 64 with 0 and 63 present */
	for (int j = 0; j < 32; j++)
		x[j] = (float)((j * 5) % 64) * 0.5f;
	x[31] = 63 * 0.5f; /* (31*5)%64 = 27 -> 63: element 31 fills the top of word 5 */
	uint64_t s1[1] = { 32 };
	CHECK_EQ_INT(roundtrip(ISQ_TYPE_AFQ6, x, 1, s1, &p, NULL, 0, y, &l), 0);
	w = tdata(&l, "weight");
	CHECK_EQ_INT(isq_le32(w), 0x543ca140);     /* 0,5,10,15,20 and the low 2 bits of 25 */
	CHECK_EQ_INT(isq_le32(w + 4), 0x2b688de6); /* starts with the high 4 bits of 25 (0110) */
	CHECK_EQ_INT(isq_le32(w + 20) >> 26, 63);
	for (int i = 0; i < 32; i++)
		CHECK(y[i] == x[i]);
	layout_free(&l);

	/* BF16 and F16 scales are stored as those dtypes */
	for (int j = 0; j < 64; j++)
		x[j] = (float)(j % 16) * 0.5f - 1.0f;
	p.group_size = 64;
	p.scale_dtype = ISQ_MRS_BF16;
	CHECK_EQ_INT(roundtrip(ISQ_TYPE_AFQ4, x, 2, sh, &p, NULL, 0, y, &l), 0);
	CHECK_EQ_INT(isq_le16(tdata(&l, "weight.scales")), 0x3f00); /* bf16 0.5 */
	CHECK_EQ_INT(isq_le16(tdata(&l, "weight.biases")), 0xbf80); /* bf16 -1 */
	w = tdata(&l, "weight");
	CHECK_EQ_INT(isq_le32(w), 0x76543210); /* 4-bit: element j in bits 4j */
	layout_free(&l);
	p.scale_dtype = ISQ_MRS_F16;
	CHECK_EQ_INT(roundtrip(ISQ_TYPE_AFQ4, x, 2, sh, &p, NULL, 0, y, &l), 0);
	CHECK_EQ_INT(isq_le16(tdata(&l, "weight.scales")), 0x3800); /* f16 0.5 */
	CHECK_EQ_INT(isq_le16(tdata(&l, "weight.biases")), 0xbc00); /* f16 -1 */
	layout_free(&l);
}

TEST(fp8_bytes_by_hand)
{
	/* absmax 1: mistral.rs's scale 448 maps each value onto an E4M3 code exactly */
	const float v[8] = { 448, -224, 56, 0, 3.5f, -0.015625f, 1, 320 };
	const uint8_t code[8] = { 0x7e, 0xf6, 0x66, 0x00, 0x46, 0x88, 0x38, 0x7a };
	float x[8], y[8];
	for (int i = 0; i < 8; i++)
		x[i] = v[i] / 448.0f;
	struct isq_mrs_layout l;
	uint64_t sh[2] = { 2, 4 };
	CHECK_EQ_INT(roundtrip(ISQ_TYPE_FP8, x, 2, sh, NULL, NULL, 0, y, &l), 0);
	const uint8_t *w = tdata(&l, "weight");
	for (int i = 0; i < 8; i++)
		CHECK_EQ_INT(w[i], code[i]);
	CHECK_EQ_INT(isq_le32(tdata(&l, "weight.quant_scale")), 0x43e00000); /* 448 */
	CHECK(f32le(tdata(&l, "weight.dequant_w_scale")) == 1.0f / 448.0f);
	CHECK(f32le(tdata(&l, "weight.dequant_x_scale")) == 1.0f / 448.0f);
	CHECK_EQ_INT(isq_le32(tdata(&l, "weight.dtype")), 9);
	CHECK_EQ_INT(*tdata(&l, "weight.format"), 3);
	for (int i = 0; i < 8; i++)
		CHECK_NEAR(y[i], x[i], 1e-7);
	layout_free(&l);

	/* absmax 0.05: mistral.rs would clamp the scale to 448; we use >= 448/0.05 */
	x[0] = 0.05f;
	for (int i = 1; i < 8; i++)
		x[i] = 0.001f * (float)i;
	CHECK_EQ_INT(roundtrip(ISQ_TYPE_FP8, x, 2, sh, NULL, NULL, 0, y, &l), 0);
	CHECK(f32le(tdata(&l, "weight.quant_scale")) > 448.0f * 10);
	layout_free(&l);
}

TEST(f8q8_bytes_by_hand)
{
	/* [5, 8]: 40 elements, blocks over the flat tensor, the second one padded with zeros */
	float x[40], y[40];
	int8_t q[40];
	for (int i = 0; i < 40; i++) {
		q[i] = (int8_t)(i < 32 ? (i * 29) % 255 - 127 : (i * 13) % 200 - 100);
		if (i == 5)
			q[i] = -127;
		if (i == 33)
			q[i] = 127;
		x[i] = (float)q[i] * (i < 32 ? 0.25f : 0.5f);
	}
	struct isq_mrs_layout l;
	uint64_t sh[2] = { 5, 8 };
	CHECK_EQ_INT(roundtrip(ISQ_TYPE_F8Q8, x, 2, sh, NULL, NULL, 0, y, &l), 0);
	const uint8_t *w = tdata(&l, "weight");
	CHECK_EQ_INT(w[0], 0x6e);  /* 0.25 * 448 = 112 = 1.75 * 2^6 */
	CHECK_EQ_INT(w[33], 0x76); /* 0.5 * 448 = 224 = 1.75 * 2^7 */
	for (int i = 0; i < 32; i++)
		CHECK_EQ_INT((int8_t)w[1 + i], q[i]);
	for (int i = 0; i < 8; i++)
		CHECK_EQ_INT((int8_t)w[34 + i], q[32 + i]);
	for (int i = 8; i < 32; i++)
		CHECK_EQ_INT(w[34 + i], 0);
	CHECK_EQ_INT(isq_le32(tdata(&l, "weight.num_blocks")), 2);
	CHECK_EQ_INT(isq_le32(tdata(&l, "weight.shape")), 5);
	CHECK_EQ_INT(isq_le32(tdata(&l, "weight.shape") + 4), 8);
	CHECK_EQ_INT(*tdata(&l, "weight.format"), 5);
	for (int i = 0; i < 40; i++)
		CHECK(y[i] == x[i]);
	layout_free(&l);
}

TEST(mxfp4_bytes_by_hand)
{
	/* one row of 32: x_j = +-e2m1[j % 8] / 2, amax 3 = 6 * 2^-1: exponent 126 */
	float x[32], y[32];
	uint8_t code[32];
	for (int j = 0; j < 32; j++) {
		int neg = j >= 8 && j < 16;
		x[j] = (neg ? -0.5f : 0.5f) * e2m1[j % 8];
		code[j] = (uint8_t)(j % 8 == 0 ? 0 : (j % 8) | (neg ? 8 : 0));
	}
	struct isq_mrs_layout l;
	uint64_t sh[2] = { 1, 32 };
	CHECK_EQ_INT(roundtrip(ISQ_TYPE_MXFP4, x, 2, sh, NULL, NULL, 0, y, &l), 0);
	const uint8_t *w = tdata(&l, "weight");
	CHECK_EQ_INT(w[0], 0x10);                        /* elements 0 (0) and 1 (0.5): low, high */
	CHECK_EQ_INT(w[1], 0x32);
	CHECK_EQ_INT(w[4], 0x90);                        /* -0 -> code 0; -0.25 -> 9 */
	CHECK_EQ_INT(w[7], 0xfe);                        /* -2, -3 */
	for (int i = 0; i < 16; i++)
		CHECK_EQ_INT(w[i], code[2 * i] | code[2 * i + 1] << 4);
	CHECK_EQ_INT(*tdata(&l, "weight.scales"), 126);
	CHECK_EQ_INT(*tdata(&l, "weight.format"), 6);
	for (int i = 0; i < 32; i++)
		CHECK(y[i] == x[i]);
	/* the same numbers as a ggml block: e, then element j | element j+16 << 4 */
	uint8_t blk[17];
	isq_mxfp4_from_uqff(w, tdata(&l, "weight.scales"), blk, 1, 32);
	CHECK_EQ_INT(blk[0], 126);
	CHECK_EQ_INT(blk[1], 0x00);  /* elements 0 and 16: 0, 0 */
	CHECK_EQ_INT(blk[2], 0x11);  /* elements 1 and 17: 0.25, 0.25 */
	CHECK_EQ_INT(blk[10], 0x19); /* elements 9 (-0.25: 9) and 25 (0.25: 1) */
	for (int j = 0; j < 16; j++)
		CHECK_EQ_INT(blk[1 + j], code[j] | code[j + 16] << 4);
	layout_free(&l);
}

/* ---- round-trip error thresholds (relative RMSE, no imatrix) ---- */

TEST(roundtrip_thresholds)
{
	enum { R = 32, C = 256, N = R * C };
	static const struct {
		enum isq_type t;
		double max_rel[D_COUNT]; /* gauss heavy outl unif small real */
	} cases[] = { /* about 1.25x what was measured */
		{ ISQ_TYPE_HQQ4, { 0.10, 0.18, 0.05, 0.07, 0.10, 0.11 } },
		{ ISQ_TYPE_HQQ8, { 0.006, 0.011, 0.003, 0.0042, 0.0063, 0.0067 } },
		{ ISQ_TYPE_AFQ2, { 0.40, 0.42, 0.135, 0.29, 0.41, 0.40 } },
		{ ISQ_TYPE_AFQ3, { 0.20, 0.31, 0.13, 0.14, 0.21, 0.21 } },
		{ ISQ_TYPE_AFQ4, { 0.10, 0.18, 0.12, 0.068, 0.103, 0.10 } },
		{ ISQ_TYPE_AFQ6, { 0.025, 0.045, 0.048, 0.0165, 0.025, 0.025 } },
		{ ISQ_TYPE_AFQ8, { 0.0064, 0.0114, 0.0126, 0.0043, 0.0065, 0.0064 } },
		{ ISQ_TYPE_FP8, { 0.033, 0.033, 0.033, 0.033, 0.033, 0.033 } },
		{ ISQ_TYPE_F8Q8, { 0.007, 0.0145, 0.0167, 0.0055, 0.016, 0.007 } },
		{ ISQ_TYPE_MXFP4, { 0.14, 0.19, 0.20, 0.14, 0.142, 0.14 } },
	};
	float *x = malloc(N * 4), *y = malloc(N * 4);
	uint64_t sh[2] = { R, C };
	for (size_t c = 0; c < ISQ_ARRAY_SIZE(cases); c++)
		for (int d = 0; d < D_COUNT; d++) {
			fill(x, N, (enum dist)d, 11);
			CHECK_EQ_INT(roundtrip(cases[c].t, x, 2, sh, NULL, NULL, 0, y, NULL), 0);
			double rel = rel_rmse(x, y, N);
			CHECK_MSG(rel <= cases[c].max_rel[d], "%s %s: relative rmse %.4g > %.4g",
				  isq_type_name(cases[c].t), dist_name[d], rel, cases[c].max_rel[d]);
			if (figures())
				printf("  roundtrip %-6s %-6s rel-rmse %.4g\n", isq_type_name(cases[c].t), dist_name[d], rel);
		}
	free(x);
	free(y);
}

/* ---- HQQ's solver against its own start and against mistral.rs's run ---- */

TEST(hqq_solver_beats_start)
{
	enum { R = 32, C = 256, N = R * C };
	float *x = malloc(N * 4), *y = malloc(N * 4), *ys = malloc(N * 4), *ym = malloc(N * 4), imp[C];
	uint64_t sh[2] = { R, C };
	for (int bits = 4; bits <= 8; bits += 4)
		for (int d = 0; d < D_COUNT; d++)
			for (int wi = 0; wi < 2; wi++) {
				enum isq_type t = bits == 4 ? ISQ_TYPE_HQQ4 : ISQ_TYPE_HQQ8;
				fill(x, N, (enum dist)d, 21);
				fill_imp(imp, C, 5);
				const float *w = wi ? imp : NULL;
				CHECK_EQ_INT(roundtrip(t, x, 2, sh, NULL, w, w ? C : 0, y, NULL), 0);
				base_hqq_start(x, N, bits, ys);
				double e = werr(x, y, N, C, w), es = werr(x, ys, N, C, w);
				CHECK_MSG(e < es, "hqq%d %s%s: %.6g not below the start's %.6g", bits, dist_name[d],
					  w ? " imatrix" : "", e, es);
				base_hqq_mrs(x, N, bits, ym);
				double em = werr(x, ym, N, C, w);
				/* no 2e4 cap and the best zero per group: never worse than mistral.rs's run */
				CHECK_MSG(e <= em * (1 + 1e-4), "hqq%d %s%s: %.6g above mistral.rs's %.6g", bits,
					  dist_name[d], w ? " imatrix" : "", e, em);
				if (figures())
					printf("  hqq%d %-6s %-7s rmse ours %.4g start %.4g mistral.rs %.4g\n", bits,
					       dist_name[d], w ? "imatrix" : "plain", sqrt(e / N), sqrt(es / N),
					       sqrt(em / N));
			}
	free(x);
	free(y);
	free(ys);
	free(ym);
}

/* ---- AFQ against mistral.rs's min/max rule ---- */

static void afq_case(enum dist d, int bits, int gs, enum isq_mrs_dtype dt, int weighted, int print)
{
	enum { R = 16, C = 256, N = R * C };
	static const enum isq_type tb[9] = { [2] = ISQ_TYPE_AFQ2, [3] = ISQ_TYPE_AFQ3, [4] = ISQ_TYPE_AFQ4,
					     [6] = ISQ_TYPE_AFQ6, [8] = ISQ_TYPE_AFQ8 };
	float *x = malloc(N * 4), *y = malloc(N * 4), *yb = malloc(N * 4), imp[C];
	uint64_t sh[2] = { R, C };
	struct isq_mrs_params p = { gs, dt };
	fill(x, N, d, 31 + (uint64_t)bits);
	fill_imp(imp, C, 9);
	const float *w = weighted ? imp : NULL;
	CHECK_EQ_INT(roundtrip(tb[bits], x, 2, sh, &p, w, w ? C : 0, y, NULL), 0);
	base_afq(x, N, gs, bits, dt, yb);
	double e = werr(x, y, N, C, w), eb = werr(x, yb, N, C, w);
	CHECK_MSG(e <= eb * (1 + 1e-6), "afq%d gs%d %s %s%s: %.6g above mistral.rs's %.6g", bits, gs,
		  isq_mrs_dtype_name(dt), dist_name[d], w ? " imatrix" : "", e, eb);
	if (print && figures())
		printf("  afq%d gs%-3d %-4s %-6s %-7s rmse ours %.4g mistral.rs %.4g (%+.1f%%)\n", bits, gs,
		       isq_mrs_dtype_name(dt), dist_name[d], w ? "imatrix" : "plain", sqrt(e / N), sqrt(eb / N),
		       100 * (sqrt(e / eb) - 1));
	free(x);
	free(y);
	free(yb);
}

TEST(afq_beats_mistralrs)
{
	static const int bits[5] = { 2, 3, 4, 6, 8 };
	for (int b = 0; b < 5; b++)
		for (int d = 0; d < D_COUNT; d++)
			for (int wi = 0; wi < 2; wi++)
				afq_case((enum dist)d, bits[b], 64, ISQ_MRS_BF16, wi, 1);
	for (int b = 0; b < 5; b++) {
		afq_case(D_GAUSS, bits[b], 32, ISQ_MRS_F16, 0, 1);
		afq_case(D_HEAVY, bits[b], 128, ISQ_MRS_F32, 1, 1);
		afq_case(D_SMALL, bits[b], 64, ISQ_MRS_F16, 0, 1);
	}
}

/* ---- FP8, F8Q8 and MXFP4 against mistral.rs's rules (and llama.cpp's MXFP4 exponent) ---- */

TEST(fp8_f8q8_mxfp4_beat_mistralrs)
{
	enum { R = 32, C = 256, N = R * C };
	float *x = malloc(N * 4), *y = malloc(N * 4), *yb = malloc(N * 4), *yl = malloc(N * 4), imp[C];
	uint64_t sh[2] = { R, C };
	for (int d = 0; d < D_COUNT; d++)
		for (int wi = 0; wi < 2; wi++) {
			fill(x, N, (enum dist)d, 41);
			fill_imp(imp, C, 13);
			const float *w = wi ? imp : NULL;
			const char *wn = w ? "imatrix" : "plain";

			CHECK_EQ_INT(roundtrip(ISQ_TYPE_FP8, x, 2, sh, NULL, w, w ? C : 0, y, NULL), 0);
			float sb = base_fp8(x, N, yb);
			double e = werr(x, y, N, C, w), eb = werr(x, yb, N, C, w);
			CHECK_MSG(e <= eb * (1 + 1e-9), "fp8 %s %s: %.6g above %.6g", dist_name[d], wn, e, eb);
			if (sb == 448.0f && d != D_OUTL) /* clamped: absmax < 1 wasted range */
				CHECK_MSG(e < eb, "fp8 %s %s: not better than the clamped scale", dist_name[d], wn);
			if (figures())
				printf("  fp8   %-6s %-7s rmse ours %.4g mistral.rs %.4g (%+.1f%%)\n", dist_name[d], wn,
				       sqrt(e / N), sqrt(eb / N), 100 * (sqrt(e / eb) - 1));

			CHECK_EQ_INT(roundtrip(ISQ_TYPE_F8Q8, x, 2, sh, NULL, w, w ? C : 0, y, NULL), 0);
			base_f8q8(x, N, yb);
			e = werr(x, y, N, C, w), eb = werr(x, yb, N, C, w);
			CHECK_MSG(e <= eb * (1 + 1e-6), "f8q8 %s %s: %.6g above %.6g", dist_name[d], wn, e, eb);
			CHECK_MSG(e < eb, "f8q8 %s %s: re-derived codes gained nothing", dist_name[d], wn);
			if (figures())
				printf("  f8q8  %-6s %-7s rmse ours %.4g mistral.rs %.4g (%+.1f%%)\n", dist_name[d], wn,
				       sqrt(e / N), sqrt(eb / N), 100 * (sqrt(e / eb) - 1));

			CHECK_EQ_INT(roundtrip(ISQ_TYPE_MXFP4, x, 2, sh, NULL, w, w ? C : 0, y, NULL), 0);
			base_mxfp4(x, N, 0, yb);
			base_mxfp4(x, N, 1, yl);
			e = werr(x, y, N, C, w), eb = werr(x, yb, N, C, w);
			double el = werr(x, yl, N, C, w);
			CHECK_MSG(e <= eb * (1 + 1e-6), "mxfp4 %s %s: %.6g above mistral.rs's %.6g", dist_name[d], wn, e, eb);
			CHECK_MSG(e <= el * (1 + 1e-6), "mxfp4 %s %s: %.6g above llama.cpp's %.6g", dist_name[d], wn, e, el);
			if (figures())
				printf("  mxfp4 %-6s %-7s rmse ours %.4g mistral.rs %.4g (%+.1f%%) llama.cpp %.4g (%+.1f%%)\n",
				       dist_name[d], wn, sqrt(e / N), sqrt(eb / N), 100 * (sqrt(e / eb) - 1), sqrt(el / N),
				       100 * (sqrt(e / el) - 1));
		}
	free(x);
	free(y);
	free(yb);
	free(yl);
}

/* ---- MXFP4 against llama.cpp's reference vectors ---- */

static void *read_all(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	void *p = malloc((size_t)sz);
	if (fread(p, 1, (size_t)sz, f) != (size_t)sz) {
		free(p);
		p = NULL;
	}
	fclose(f);
	*n = (size_t)sz;
	return p;
}

TEST(mxfp4_vs_llamacpp_vectors)
{
	static const char *sets[] = { "gauss", "heavy", "outl", "edge", "real" };
	char path[8192], rel[256];
	if (!test_shared_path(path, sizeof(path), "ref/ggml-vectors/set-gauss.bin"))
		SKIP("../shared/ref/ggml-vectors not present");
	const struct isq_type_traits *tt = isq_type_traits(ISQ_TYPE_MXFP4);
	for (size_t s = 0; s < ISQ_ARRAY_SIZE(sets); s++) {
		size_t ns, nc;
		snprintf(rel, sizeof(rel), "ref/ggml-vectors/set-%s.bin", sets[s]);
		test_shared_path(path, sizeof(path), rel);
		uint8_t *set = read_all(path, &ns);
		snprintf(rel, sizeof(rel), "ref/ggml-vectors/mxfp4-%s-plain.bin", sets[s]);
		uint8_t *cs = test_shared_path(path, sizeof(path), rel) ? read_all(path, &nc) : NULL;
		CHECK(set && cs);
		if (!set || !cs) {
			free(set);
			free(cs);
			continue;
		}
		uint32_t rows = isq_le32(set + 8), cols = isq_le32(set + 12);
		uint64_t n = (uint64_t)rows * cols, qbytes = isq_le64(cs + 32);
		CHECK(ns >= 64 + 4 * n && nc == 64 + qbytes + 4 * n && cols == 256);
		float *x = malloc(n * 4), *yl = malloc(n * 4), *y = malloc(n * 4), *yg = malloc(n * 4);
		memcpy(x, set + 64, n * 4);
		memcpy(yl, cs + 64 + qbytes, n * 4);
		/* llama.cpp's bytes convert to UQFF and back unchanged, and decode alike */
		uint8_t *codes = malloc(n / 2), *sc = malloc(n / 32), *back = malloc(qbytes);
		isq_mxfp4_to_uqff(cs + 64, codes, sc, rows, cols);
		isq_mxfp4_from_uqff(codes, sc, back, rows, cols);
		CHECK(memcmp(back, cs + 64, qbytes) == 0);
		/* ours: UQFF tensors -> ggml blocks -> ggml's decoder in the table */
		struct isq_mrs_layout l;
		uint64_t sh[2] = { rows, cols };
		CHECK_EQ_INT(roundtrip(ISQ_TYPE_MXFP4, x, 2, sh, NULL, NULL, 0, y, &l), 0);
		isq_mxfp4_from_uqff(tdata(&l, "weight"), tdata(&l, "weight.scales"), back, rows, cols);
		tt->dequantize(back, yg, (int64_t)n);
		CHECK(memcmp(y, yg, n * 4) == 0);
		double e = werr(x, yg, (int64_t)n, 1, NULL), el = werr(x, yl, (int64_t)n, 1, NULL);
		CHECK_MSG(e <= el * (1 + 1e-9), "mxfp4 %s: rmse %.6g above llama.cpp's %.6g", sets[s],
			  sqrt(e / (double)n), sqrt(el / (double)n));
		if (figures())
			printf("  ggml-vectors mxfp4 %-5s rmse ours %.4g llama.cpp %.4g (%+.1f%%)\n", sets[s],
			       sqrt(e / (double)n), sqrt(el / (double)n), el > 0 ? 100 * (sqrt(e / el) - 1) : 0.0);
		layout_free(&l);
		free(x), free(yl), free(y), free(yg), free(codes), free(sc), free(back), free(set), free(cs);
	}
}

/* ---- the conversion, on arbitrary bytes ---- */

TEST(mxfp4_conversion_exact)
{
	enum { R = 3, K = 96, NB = R * K / 32 };
	uint8_t g[NB * 17], g2[NB * 17], c[R * K / 2], s[NB], c2[R * K / 2], s2[NB];
	float yg[R * K], yu[R * K];
	rng_s = 77;
	for (size_t i = 0; i < sizeof(g); i++)
		g[i] = (uint8_t)rng_next();
	g[0] = 0;
	g[17] = 255; /* the edges of E8M0 */
	g[34] = 1;
	isq_mxfp4_to_uqff(g, c, s, R, K);
	isq_mxfp4_from_uqff(c, s, g2, R, K);
	CHECK(memcmp(g, g2, sizeof(g)) == 0);
	for (size_t i = 0; i < sizeof(c); i++)
		c[i] = (uint8_t)rng_next();
	for (size_t i = 0; i < sizeof(s); i++)
		s[i] = (uint8_t)rng_next();
	isq_mxfp4_from_uqff(c, s, g2, R, K);
	isq_mxfp4_to_uqff(g2, c2, s2, R, K);
	CHECK(memcmp(c, c2, sizeof(c)) == 0 && memcmp(s, s2, sizeof(s)) == 0);
	/* the same numbers: ggml's decoder on the blocks, ours on the tensors */
	struct isq_mrs_layout l;
	uint64_t sh[2] = { R, K };
	CHECK_EQ_INT(isq_mrs_plan(&l, ISQ_TYPE_MXFP4, 2, sh, NULL, NULL), 0);
	l.t[0].data = c;
	l.t[1].data = s;
	isq_mrs_dequantize(&l, yu);
	isq_type_traits(ISQ_TYPE_MXFP4)->dequantize(g2, yg, R * K);
	CHECK(memcmp(yg, yu, sizeof(yg)) == 0);
}

/* ---- scalar vs AVX2, determinism, splitting ---- */

static const enum isq_type all_types[] = { ISQ_TYPE_HQQ4, ISQ_TYPE_HQQ8, ISQ_TYPE_AFQ2, ISQ_TYPE_AFQ3,
					   ISQ_TYPE_AFQ4, ISQ_TYPE_AFQ6, ISQ_TYPE_AFQ8, ISQ_TYPE_FP8,
					   ISQ_TYPE_F8Q8, ISQ_TYPE_MXFP4 };

/* quantize into one concatenated byte string */
static uint8_t *entry_bytes(enum isq_type t, const float *x, const uint64_t *sh, const float *w, uint64_t wl,
			    int split, uint64_t *nb)
{
	struct isq_mrs_layout l;
	struct isq_errbuf e = { 0 };
	if (plan_alloc(&l, t, 2, sh, NULL))
		return NULL;
	if (!split) {
		CHECK_EQ_INT(isq_mrs_quantize(&l, x, w, wl, &e), 0);
	} else {
		/* units in reverse, in uneven chunks */
		CHECK_EQ_INT(isq_mrs_quantize_begin(&l, x, w, wl, &e), 0);
		uint64_t u = isq_mrs_units(&l);
		while (u > 0) {
			uint64_t k = u > 3 ? 3 : u;
			isq_mrs_quantize_units(&l, x, w, wl, u - k, u);
			u -= k;
		}
	}
	*nb = isq_mrs_nbytes(&l);
	uint8_t *out = malloc(*nb), *o = out;
	for (int i = 0; i < l.ntensors; i++) {
		memcpy(o, l.t[i].data, l.t[i].nbytes);
		o += l.t[i].nbytes;
	}
	layout_free(&l);
	return out;
}

TEST(deterministic_and_split_invariant)
{
	enum { R = 8, C = 256, N = R * C };
	float *x = malloc(N * 4), imp[C];
	uint64_t sh[2] = { R, C };
	fill(x, N, D_HEAVY, 3);
	fill_imp(imp, C, 3);
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(all_types); i++)
		for (int wi = 0; wi < 2; wi++) {
			enum isq_type t = all_types[i];
			const float *w = wi ? imp : NULL;
			uint64_t n1, n2, n3;
			uint8_t *a = entry_bytes(t, x, sh, w, w ? C : 0, 0, &n1);
			uint8_t *b = entry_bytes(t, x, sh, w, w ? C : 0, 1, &n2);
			uint8_t *c = entry_bytes(t, x, sh, w, w ? C : 0, 0, &n3);
			CHECK_MSG(n1 == n2 && !memcmp(a, b, n1), "%s: split differs", isq_type_name(t));
			CHECK_MSG(n1 == n3 && !memcmp(a, c, n1), "%s: not deterministic", isq_type_name(t));
			free(a), free(b), free(c);
		}
	free(x);
}

TEST(ref_and_avx2_same_bytes)
{
	enum { R = 8, C = 256, N = R * C };
	if (!isq_cpu_has_avx2())
		SKIP("no AVX2 on this CPU (or ISQ_FORCE_REF set)");
	float *x = malloc(N * 4), imp[C];
	uint64_t sh[2] = { R, C };
	for (int d = 0; d < D_COUNT; d++) {
		fill(x, N, (enum dist)d, 4);
		fill_imp(imp, C, 4);
		for (size_t i = 0; i < ISQ_ARRAY_SIZE(all_types); i++)
			for (int wi = 0; wi < 2; wi++) {
				enum isq_type t = all_types[i];
				const float *w = wi ? imp : NULL;
				uint64_t n1, n2;
				isq_types_force_ref(0);
				uint8_t *a = entry_bytes(t, x, sh, w, w ? C : 0, 0, &n1);
				isq_types_force_ref(1);
				uint8_t *r = entry_bytes(t, x, sh, w, w ? C : 0, 0, &n2);
				isq_types_force_ref(0);
				CHECK_MSG(n1 == n2 && !memcmp(a, r, n1), "%s %s: scalar and AVX2 differ", isq_type_name(t),
					  dist_name[d]);
				free(a), free(r);
			}
	}
	free(x);
}

/* ---- table rows: the kernels of struct isq_type_traits ---- */

TEST(table_kernels)
{
	enum { R = 4, C = 256, N = R * C };
	float *x = malloc(N * 4), *y = malloc(N * 4), *y2 = malloc(N * 4), imp[C], act[C];
	uint8_t *q = malloc(N * 2), *q2 = malloc(N * 2), q8[C / 32 * 34];
	fill(x, N, D_REAL, 5);
	fill_imp(imp, C, 5);
	fill(act, C, D_GAUSS, 6);
	const struct isq_type_traits *q8t = isq_type_traits(ISQ_TYPE_Q8_0);
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(all_types); i++) {
		enum isq_type t = all_types[i];
		if (t == ISQ_TYPE_MXFP4)
			continue; /* ggml's row, tested with the legacy kernels */
		const struct isq_type_traits *tt = isq_type_traits(t);
		for (int wi = 0; wi < 2; wi++) {
			const float *w = wi ? imp : NULL;
			size_t n1 = tt->quantize(x, q, R, C, w), n2 = tt->quantize_ref(x, q2, R, C, w);
			CHECK_EQ_INT(n1, (size_t)N / (size_t)tt->blck * tt->type_size);
			CHECK_MSG(n1 == n2 && !memcmp(q, q2, n1), "%s: table quantize ref/fast differ", tt->name);
		}
		tt->dequantize(q, y, N);
		isq_types_force_ref(1);
		const struct isq_type_traits *tr = isq_type_traits(t);
		tr->dequantize(q, y2, N);
		isq_types_force_ref(0);
		tt = isq_type_traits(t);
		CHECK_MSG(!memcmp(y, y2, N * 4), "%s: dequantizers differ", tt->name);
		double rel = rel_rmse(x, y, N);
		CHECK_MSG(rel < (t == ISQ_TYPE_AFQ2 ? 0.5 : t == ISQ_TYPE_AFQ3 ? 0.25 : 0.12), "%s: rel %.3g",
			  tt->name, rel);
		/* dot products against the activation type, vs the decoded values */
		const void *act_q = act;
		float ya[C];
		if (tt->vec_dot_type == ISQ_TYPE_Q8_0) {
			q8t->from_float(act, q8, C);
			q8t->dequantize(q8, ya, C);
			act_q = q8;
		} else {
			memcpy(ya, act, sizeof(ya));
		}
		for (int r = 0; r < R; r++) {
			double want = 0, mag = 0;
			for (int j = 0; j < C; j++) {
				want += (double)y[r * C + j] * ya[j];
				mag += fabs((double)y[r * C + j] * ya[j]);
			}
			float s1, s2;
			size_t rb = (size_t)C / (size_t)tt->blck * tt->type_size;
			tt->vec_dot(C, &s1, q + r * rb, act_q);
			tt->vec_dot_ref(C, &s2, q + r * rb, act_q);
			CHECK_MSG(fabs(s1 - want) <= 1e-5 * mag + 1e-9, "%s: dot %g vs %g", tt->name, s1, want);
			CHECK_MSG(fabs(s2 - want) <= 1e-5 * mag + 1e-9, "%s: ref dot %g vs %g", tt->name, s2, want);
		}
	}
	/* AFQ rows equal UQFF's AFQ (group 64, BF16 scales) regrouped; F8Q8 rows equal UQFF's blocks */
	struct isq_mrs_layout l;
	uint64_t sh[2] = { R, C };
	const struct isq_type_traits *ta = isq_type_traits(ISQ_TYPE_AFQ3);
	ta->quantize(x, q, R, C, imp);
	CHECK_EQ_INT(roundtrip(ISQ_TYPE_AFQ3, x, 2, sh, NULL, imp, C, NULL, &l), 0);
	for (int g = 0; g < N / 64; g++) {
		const uint8_t *blk = q + 28 * g;
		CHECK(!memcmp(blk, tdata(&l, "weight.scales") + 2 * g, 2));
		CHECK(!memcmp(blk + 2, tdata(&l, "weight.biases") + 2 * g, 2));
		CHECK(!memcmp(blk + 4, tdata(&l, "weight") + 24 * g, 24));
	}
	layout_free(&l);
	isq_type_traits(ISQ_TYPE_F8Q8)->quantize(x, q, R, C, imp);
	CHECK_EQ_INT(roundtrip(ISQ_TYPE_F8Q8, x, 2, sh, NULL, imp, C, NULL, &l), 0);
	CHECK(!memcmp(q, tdata(&l, "weight"), N / 32 * 33));
	layout_free(&l);
	/* the FP8 row is the plain E4M3 element */
	const struct isq_type_traits *tf = isq_type_traits(ISQ_TYPE_FP8);
	tf->quantize(x, q, 1, 16, NULL);
	for (int i = 0; i < 16; i++)
		CHECK_EQ_INT(q[i], isq_fp32_to_e4m3(x[i]));
	free(x), free(y), free(y2), free(q), free(q2);
}

/* ---- input checks ---- */

TEST(rejects_nonfinite_and_bad_weights)
{
	enum { R = 2, C = 64, N = R * C };
	float x[N], imp[C], dst[N * 2];
	uint8_t buf[N * 2];
	uint64_t sh[2] = { R, C };
	struct isq_errbuf e = { 0 };
	fill(x, N, D_GAUSS, 1);
	fill_imp(imp, C, 1);
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(all_types); i++) {
		struct isq_mrs_layout l;
		CHECK_EQ_INT(plan_alloc(&l, all_types[i], 2, sh, NULL), 0);
		x[70] = NAN;
		CHECK_EQ_INT(isq_mrs_quantize(&l, x, NULL, 0, &e), ISQ_EINVAL);
		CHECK(strstr(e.msg, "element 70 (row 1, column 6)") != NULL);
		x[70] = -INFINITY;
		CHECK_EQ_INT(isq_mrs_quantize(&l, x, NULL, 0, &e), ISQ_EINVAL);
		x[70] = 0.01f;
		imp[3] = -1;
		CHECK_EQ_INT(isq_mrs_quantize(&l, x, imp, C, &e), ISQ_EINVAL);
		imp[3] = NAN;
		CHECK_EQ_INT(isq_mrs_quantize(&l, x, imp, C, &e), ISQ_EINVAL);
		imp[3] = 1;
		CHECK_EQ_INT(isq_mrs_quantize(&l, x, imp, C - 1, &e), ISQ_EINVAL);
		CHECK_EQ_INT(isq_mrs_quantize(&l, x, imp, C, &e), 0);
		void *keep = l.t[1].data;
		l.t[1].data = NULL;
		CHECK_EQ_INT(isq_mrs_quantize(&l, x, NULL, 0, &e), ISQ_EINVAL);
		l.t[1].data = keep;
		layout_free(&l);
		if (all_types[i] != ISQ_TYPE_MXFP4) { /* the table's checked entry point */
			x[5] = INFINITY;
			CHECK_EQ_INT(isq_quantize(all_types[i], x, buf, R, C, NULL, NULL, &e), ISQ_EINVAL);
			x[5] = 0;
			CHECK_EQ_INT(isq_quantize(all_types[i], x, buf, R, C, imp, NULL, &e), 0);
			isq_type_traits(all_types[i])->dequantize(buf, dst, N);
		}
	}
	/* extreme but finite values decode without NaN */
	for (int i = 0; i < N; i++)
		x[i] = (i & 1 ? -1 : 1) * (i % 3 ? 3e38f : 1e-40f);
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(all_types); i++) {
		CHECK_EQ_INT(roundtrip(all_types[i], x, 2, sh, NULL, NULL, 0, dst, NULL), 0);
		for (int j = 0; j < N; j++)
			CHECK_MSG(!isnan(dst[j]), "%s: NaN at %d", isq_type_name(all_types[i]), j);
	}
}

/* ---- reading entries back ---- */

TEST(open_roundtrip_and_malformed)
{
	enum { R = 6, C = 128, N = R * C };
	float x[N], y1[N], y2[N];
	uint64_t sh[2] = { R, C };
	struct isq_errbuf e = { 0 };
	fill(x, N, D_UNIF, 2);
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(all_types); i++) {
		struct isq_mrs_layout l, o;
		CHECK_EQ_INT(roundtrip(all_types[i], x, 2, sh, NULL, NULL, 0, y1, &l), 0);
		struct isq_mrs_tensor in[ISQ_MRS_MAX_TENSORS + 1];
		int n = l.ntensors;
		for (int k = 0; k < n; k++)
			in[n - 1 - k] = l.t[k]; /* any order */
		in[n] = (struct isq_mrs_tensor){ "bias", ISQ_MRS_F32, 1, { R }, 4 * R, x };
		CHECK_EQ_INT(isq_mrs_open(&o, in, n + 1, &e), 0);
		CHECK_EQ_INT(o.type, all_types[i]);
		isq_mrs_dequantize(&o, y2);
		CHECK(!memcmp(y1, y2, sizeof(y1)));
		/* a row range */
		isq_mrs_dequantize_rows(&o, 2, 3, y2);
		CHECK(!memcmp(y1 + 2 * C, y2, 3 * C * 4));
		/* a missing tensor, an extra one, a wrong dtype, a wrong shape, a duplicate */
		CHECK_EQ_INT(isq_mrs_open(&o, in, n - 1, &e), ISQ_EFORMAT); /* drops in[n-1] = "weight" */
		in[n] = (struct isq_mrs_tensor){ "weight.extra", ISQ_MRS_U8, 0, { 0 }, 1, x };
		CHECK_EQ_INT(isq_mrs_open(&o, in, n + 1, &e), ISQ_EFORMAT);
		CHECK(strstr(e.msg, "weight.extra") != NULL);
		in[n] = in[0];
		CHECK_EQ_INT(isq_mrs_open(&o, in, n + 1, &e), ISQ_EFORMAT);
		struct isq_mrs_tensor keep = in[n - 1];
		in[n - 1].dtype = in[n - 1].dtype == ISQ_MRS_U8 ? ISQ_MRS_F16 : ISQ_MRS_U8;
		CHECK_EQ_INT(isq_mrs_open(&o, in, n, &e), ISQ_EFORMAT);
		in[n - 1] = keep;
		in[n - 1].shape[0] += 1;
		CHECK_EQ_INT(isq_mrs_open(&o, in, n, &e), ISQ_EFORMAT);
		in[n - 1] = keep;
		CHECK_EQ_INT(isq_mrs_open(&o, in, n, &e), 0);
		layout_free(&l);
	}
	/* metadata values */
	struct isq_mrs_layout l, o;
	CHECK_EQ_INT(roundtrip(ISQ_TYPE_HQQ4, x, 2, sh, NULL, NULL, 0, NULL, &l), 0);
	uint8_t *axis = isq_mrs_find(&l, "weight.axis")->data, *bits = isq_mrs_find(&l, "weight.bits")->data;
	uint8_t *fmt = isq_mrs_find(&l, "weight.format")->data;
	*axis = 1;
	CHECK_EQ_INT(isq_mrs_open(&o, l.t, l.ntensors, &e), ISQ_EUNSUPPORTED);
	*axis = 0;
	*bits = 3;
	CHECK_EQ_INT(isq_mrs_open(&o, l.t, l.ntensors, &e), ISQ_EFORMAT);
	*bits = 8; /* 8-bit codes need a [64, N/64] weight */
	CHECK_EQ_INT(isq_mrs_open(&o, l.t, l.ntensors, &e), ISQ_EFORMAT);
	*bits = 4;
	isq_put_le32(isq_mrs_find(&l, "weight.shape")->data, 5);
	CHECK_EQ_INT(isq_mrs_open(&o, l.t, l.ntensors, &e), ISQ_EFORMAT);
	isq_put_le32(isq_mrs_find(&l, "weight.shape")->data, R);
	*fmt = 0;
	CHECK_EQ_INT(isq_mrs_open(&o, l.t, l.ntensors, &e), ISQ_EUNSUPPORTED);
	*fmt = 9;
	CHECK_EQ_INT(isq_mrs_open(&o, l.t, l.ntensors, &e), ISQ_EFORMAT);
	*fmt = 2;
	CHECK_EQ_INT(isq_mrs_open(&o, l.t, l.ntensors, &e), 0);
	layout_free(&l);
	CHECK_EQ_INT(roundtrip(ISQ_TYPE_FP8, x, 2, sh, NULL, NULL, 0, NULL, &l), 0);
	isq_put_le32(isq_mrs_find(&l, "weight.dtype")->data, 6);
	CHECK_EQ_INT(isq_mrs_open(&o, l.t, l.ntensors, &e), ISQ_EFORMAT);
	layout_free(&l);
	CHECK_EQ_INT(roundtrip(ISQ_TYPE_F8Q8, x, 2, sh, NULL, NULL, 0, NULL, &l), 0);
	isq_put_le32(isq_mrs_find(&l, "weight.num_blocks")->data, 7);
	CHECK_EQ_INT(isq_mrs_open(&o, l.t, l.ntensors, &e), ISQ_EFORMAT);
	layout_free(&l);
	CHECK_EQ_INT(roundtrip(ISQ_TYPE_AFQ4, x, 2, sh, NULL, NULL, 0, NULL, &l), 0);
	*(uint8_t *)isq_mrs_find(&l, "weight.group_size")->data = 32; /* scales no longer [R, C/32] */
	CHECK_EQ_INT(isq_mrs_open(&o, l.t, l.ntensors, &e), ISQ_EFORMAT);
	*(uint8_t *)isq_mrs_find(&l, "weight.group_size")->data = 64;
	*(uint8_t *)isq_mrs_find(&l, "weight.bits")->data = 5;
	CHECK_EQ_INT(isq_mrs_open(&o, l.t, l.ntensors, &e), ISQ_EFORMAT);
	layout_free(&l);
}

TEST(dequantize_any_blob)
{
	enum { R = 2, C = 64, N = R * C };
	float x[N], y1[N], y2[N];
	uint64_t sh[2] = { R, C }, cnt;
	struct isq_errbuf e = { 0 };
	fill(x, N, D_GAUSS, 8);
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(all_types); i++) {
		struct isq_mrs_layout l;
		CHECK_EQ_INT(roundtrip(all_types[i], x, 2, sh, NULL, NULL, 0, y1, &l), 0);
		uint64_t total = 11 + isq_mrs_nbytes(&l);
		uint8_t *b = malloc(total), *o = b;
		*o++ = 2;
		isq_put_le32(o, R);
		isq_put_le32(o + 4, C);
		o += 8;
		*o++ = 0;
		*o++ = 0;
		for (int k = 0; k < l.ntensors; k++, o += l.t[k - 1].nbytes)
			memcpy(o, l.t[k].data, l.t[k].nbytes);
		CHECK_EQ_INT(isq_mrs_dequantize_any(all_types[i], b, total, y2, N, &cnt, &e), 0);
		CHECK_EQ_INT(cnt, N);
		CHECK(!memcmp(y1, y2, sizeof(y1)));
		CHECK_EQ_INT(isq_mrs_dequantize_any(all_types[i], b, total - 1, y2, N, &cnt, &e), ISQ_EFORMAT);
		CHECK_EQ_INT(isq_mrs_dequantize_any(all_types[i], b, total, y2, N - 1, &cnt, &e), ISQ_EINVAL);
		free(b);
		layout_free(&l);
	}
}

/* ---- stacked experts and group sizes ---- */

TEST(stacked_experts_per_expert_imatrix)
{
	/* [E, out, in] with E * in weights == each expert alone with its own vector */
	enum { E = 3, O = 4, I = 128, N = E * O * I };
	float x[N], imp[E * I], y[N];
	fill(x, N, D_HEAVY, 17);
	fill_imp(imp, E * I, 17);
	static const enum isq_type st[] = { ISQ_TYPE_AFQ3, ISQ_TYPE_AFQ8, ISQ_TYPE_MXFP4 };
	for (size_t k = 0; k < ISQ_ARRAY_SIZE(st); k++) {
		struct isq_mrs_layout l3, l2;
		uint64_t s3[3] = { E, O, I }, s2[2] = { O, I };
		CHECK_EQ_INT(roundtrip(st[k], x, 3, s3, NULL, imp, E * I, y, &l3), 0);
		for (int ex = 0; ex < E; ex++) {
			CHECK_EQ_INT(roundtrip(st[k], x + ex * O * I, 2, s2, NULL, imp + ex * I, I, NULL, &l2), 0);
			for (int t = 0; t < l2.ntensors; t++) {
				if (l2.t[t].rank == 0)
					continue;
				uint64_t nb = l2.t[t].nbytes;
				CHECK_MSG(!memcmp((uint8_t *)l3.t[t].data + ex * nb, l2.t[t].data, nb), "%s expert %d '%s'",
					  isq_type_name(st[k]), ex, l2.t[t].suffix);
			}
			layout_free(&l2);
		}
		/* the shared vector is accepted too; anything else is not */
		struct isq_errbuf e = { 0 };
		CHECK_EQ_INT(isq_mrs_quantize(&l3, x, imp, I, &e), 0);
		CHECK_EQ_INT(isq_mrs_quantize(&l3, x, imp, 2 * I, &e), ISQ_EINVAL);
		layout_free(&l3);
	}
}

TEST(group_sizes_roundtrip)
{
	enum { R = 4, C = 256, N = R * C };
	float x[N], y[N], y2[N];
	uint64_t sh[2] = { R, C };
	fill(x, N, D_REAL, 23);
	static const enum isq_type ts[] = { ISQ_TYPE_HQQ4, ISQ_TYPE_HQQ8, ISQ_TYPE_AFQ4, ISQ_TYPE_AFQ6 };
	static const enum isq_mrs_dtype dts[] = { ISQ_MRS_F32, ISQ_MRS_F16, ISQ_MRS_BF16 };
	for (size_t k = 0; k < ISQ_ARRAY_SIZE(ts); k++)
		for (int gs = 32; gs <= 128; gs *= 2)
			for (size_t d = 0; d < ISQ_ARRAY_SIZE(dts); d++) {
				struct isq_mrs_layout l, o;
				struct isq_mrs_params p = { gs, dts[d] };
				struct isq_errbuf e = { 0 };
				CHECK_EQ_INT(roundtrip(ts[k], x, 2, sh, &p, NULL, 0, y, &l), 0);
				CHECK_EQ_INT(isq_mrs_open(&o, l.t, l.ntensors, &e), 0);
				CHECK_EQ_INT(o.group_size, gs);
				isq_mrs_dequantize(&o, y2);
				CHECK(!memcmp(y, y2, sizeof(y)));
				double rel = rel_rmse(x, y, N);
				CHECK_MSG(rel < (k == 1 || k == 3 ? 0.03 : 0.12), "%s gs%d: %g", isq_type_name(ts[k]), gs, rel);
				layout_free(&l);
			}
}

/* ---- helpers shared with the kernels ---- */

TEST(e4m3_emulation_matches_fp)
{
	/* the encoder's float-only E4M3 rounding equals the conversion pair of fp.h */
	static const float edge[] = { 0, 448, 449, 464, 1e9f, 0.015625f, 0.0152587890625f, 0.00048828125f,
				      0.0009765625f, 0.000732421875f, 1e-30f, 17, 19, 1.0625f, 1.1875f, 240, 248 };
	rng_s = 99;
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(edge) + 300000; i++) {
		float v = i < ISQ_ARRAY_SIZE(edge) ? edge[i] : isq_f32_from_bits((uint32_t)rng_next() & 0x43ffffffu);
		for (int s = 0; s < 2; s++, v = -v) {
			float want = isq_e4m3_to_fp32(isq_fp32_to_e4m3(v)), got = mrs_e4m3r(v);
			CHECK_MSG(got == want && signbit(got) == signbit(want), "%.9g: %.9g vs %.9g", (double)v,
				  (double)got, (double)want);
		}
	}
	/* the constant decode table */
	for (int c = 0; c < 256; c++) {
		float want = isq_e4m3_to_fp32((uint8_t)c);
		CHECK(isnan(want) ? isnan(isq_mrs_e4m3_lut[c]) : isq_mrs_e4m3_lut[c] == want);
		CHECK(signbit(want) == signbit(isq_mrs_e4m3_lut[c]) || isnan(want));
	}
	/* HQQ's |e|^-0.3, polynomial, within 5e-6 of libm (float y = -0.3 log2 a limits it) */
	for (int i = 0; i < 100000; i++) {
		float a = (float)exp(-40 + 50 * u01());
		double want = pow(a, -0.3), got = mrs_pow_m03(a);
		CHECK_MSG(fabs(got / want - 1) < 5e-6, "%g: %.9g vs %.9g", (double)a, got, want);
	}
}
