/* test-legacy.c - the 32-block types, IQ4 and MXFP4: error bounds, edge cases, dots, rejection. */
#include "test.h"
#include "types.h"

static uint64_t rng = 12345;
static double unif(void)
{
	rng = rng * 6364136223846793005ull + 1442695040888963407ull;
	return (double)(rng >> 11) * 0x1p-53;
}
static float gauss(void)
{
	return (float)(sqrt(-2 * log(unif() + 1e-300)) * cos(6.283185307179586 * unif()));
}

static void fill(float *x, int n, int dist)
{
	for (int i = 0; i < n; i++) {
		float g = gauss();
		switch (dist) {
		case 0: x[i] = 0.02f * g; break;                                   /* gaussian */
		case 1: x[i] = 0.02f * g / (0.3f + (float)fabs(gauss())); break;   /* heavy tails */
		case 2: x[i] = (i % 97 == 13 ? 0.5f : 0.02f) * g; break;          /* outlier columns */
		default: x[i] = 1e-8f * g; break;                                   /* tiny */
		}
	}
}

static const enum isq_type types[] = { ISQ_TYPE_Q4_0, ISQ_TYPE_Q4_1, ISQ_TYPE_Q5_0, ISQ_TYPE_Q5_1, ISQ_TYPE_Q8_0,
				       ISQ_TYPE_Q8_1, ISQ_TYPE_IQ4_NL, ISQ_TYPE_IQ4_XS, ISQ_TYPE_MXFP4 };
/* relative RMSE bounds on gaussian data (measured ~0.6-0.8 of these) */
static const double bound[] = { 0.12, 0.10, 0.06, 0.05, 0.008, 0.008, 0.11, 0.11, 0.16 };

#define N 1024

static double rel_rmse(enum isq_type t, const float *x, int n, const float *imp)
{
	const struct isq_type_traits *tt = isq_type_traits(t);
	uint8_t q[N * 2];
	float y[N];
	struct isq_errbuf e = { 0 };
	size_t w = 0;
	CHECK_EQ_INT(isq_quantize(t, x, q, 1, n, imp, &w, &e), 0);
	uint64_t rb;
	isq_type_row_size(t, (uint64_t)n, &rb);
	CHECK_EQ_INT(w, rb);
	tt->dequantize(q, y, n);
	double num = 0, den = 0;
	for (int i = 0; i < n; i++) {
		num += (double)(x[i] - y[i]) * (x[i] - y[i]);
		den += (double)x[i] * x[i];
	}
	return den > 0 ? sqrt(num / den) : sqrt(num);
}

TEST(round_trip_error_bounds)
{
	float x[N];
	for (size_t t = 0; t < ISQ_ARRAY_SIZE(types); t++)
		for (int dist = 0; dist < 4; dist++) {
			fill(x, N, dist);
			double r = rel_rmse(types[t], x, N, NULL);
			if (dist == 3) {
				/* values of 1e-8 sit below fp16's smallest scale: they may all round to
				 * zero (as in ggml), but never to anything larger than themselves */
				CHECK_MSG(r <= 1.0 + 1e-9 || types[t] == ISQ_TYPE_MXFP4, "%s tiny: relative rmse %.4f",
					  isq_type_name(types[t]), r);
				continue;
			}
			double lim = bound[t] * (dist == 1 ? 1.6 : dist == 2 ? 1.8 : 1.0);
			CHECK_MSG(r < lim, "%s dist %d: relative rmse %.4f >= %.4f", isq_type_name(types[t]), dist, r, lim);
		}
}

TEST(importance_lowers_the_weighted_error)
{
	float x[N], imp[N];
	fill(x, N, 1);
	for (int i = 0; i < N; i++)
		imp[i] = (float)(0.05 + (i % 61 == 7 ? 20.0 : 1.0) * gauss() * gauss());
	for (size_t t = 0; t < ISQ_ARRAY_SIZE(types); t++) {
		const struct isq_type_traits *tt = isq_type_traits(types[t]);
		if (!tt->uses_imatrix)
			continue;
		uint8_t q[N * 2];
		float y0[N], y1[N];
		tt->quantize(x, q, 1, N, NULL);
		tt->dequantize(q, y0, N);
		tt->quantize(x, q, 1, N, imp);
		tt->dequantize(q, y1, N);
		double e0 = 0, e1 = 0;
		for (int i = 0; i < N; i++) {
			e0 += imp[i] * (double)(x[i] - y0[i]) * (x[i] - y0[i]);
			e1 += imp[i] * (double)(x[i] - y1[i]) * (x[i] - y1[i]);
		}
		CHECK_MSG(e1 < e0, "%s: weighted error %.4g with imatrix, %.4g without", tt->name, e1, e0);
	}
}

TEST(edge_cases)
{
	float x[256], y[256];
	uint8_t q[600];
	for (size_t t = 0; t < ISQ_ARRAY_SIZE(types); t++) {
		const struct isq_type_traits *tt = isq_type_traits(types[t]);
		memset(x, 0, sizeof(x));
		tt->quantize(x, q, 1, 256, NULL);
		tt->dequantize(q, y, 256);
		for (int i = 0; i < 256; i++)
			CHECK_MSG(y[i] == 0.0f, "%s: zeros decode to %g", tt->name, y[i]);
		for (int i = 0; i < 256; i++)
			x[i] = 0.05f;
		tt->quantize(x, q, 1, 256, NULL);
		tt->dequantize(q, y, 256);
		for (int i = 0; i < 256; i++)
			CHECK_MSG(fabsf(y[i] - 0.05f) < 0.05f * 0.08f, "%s: constant 0.05 decodes to %g", tt->name, y[i]);
		for (int i = 0; i < 256; i++)
			x[i] = (i % 3 - 1) * 3000.0f;
		tt->quantize(x, q, 1, 256, NULL);
		tt->dequantize(q, y, 256);
		for (int i = 0; i < 256; i++)
			CHECK_MSG(fabsf(y[i] - x[i]) < 3000.0f * 0.1f, "%s: %g decodes to %g", tt->name, x[i], y[i]);
	}
}

TEST(bad_input_is_rejected)
{
	float x[64] = { 0 };
	uint8_t q[256];
	struct isq_errbuf e = { 0 };
	x[37] = NAN;
	CHECK_EQ_INT(isq_quantize(ISQ_TYPE_Q4_0, x, q, 2, 32, NULL, NULL, &e), ISQ_EINVAL);
	CHECK(strstr(e.msg, "element 37 (row 1, column 5)") != NULL);
	x[37] = INFINITY;
	CHECK_EQ_INT(isq_quantize(ISQ_TYPE_IQ4_NL, x, q, 1, 64, NULL, NULL, &e), ISQ_EINVAL);
	x[37] = 0;
	CHECK_EQ_INT(isq_quantize(ISQ_TYPE_Q8_0, x, q, 1, 48, NULL, NULL, &e), ISQ_EINVAL);
	CHECK(strstr(e.msg, "not a multiple of q8_0's block size 32") != NULL);
	float imp[32];
	for (int i = 0; i < 32; i++)
		imp[i] = 1;
	imp[3] = -1;
	CHECK_EQ_INT(isq_quantize(ISQ_TYPE_Q4_0, x, q, 1, 32, imp, NULL, &e), ISQ_EINVAL);
	CHECK(strstr(e.msg, "column 3") != NULL);
}

TEST(dot_products_match_dequantized_dots)
{
	float x[N], a[N], xd[N], ad[N];
	fill(x, N, 0);
	fill(a, N, 1);
	for (size_t t = 0; t < ISQ_ARRAY_SIZE(types); t++) {
		const struct isq_type_traits *tt = isq_type_traits(types[t]);
		const struct isq_type_traits *vt = isq_type_traits(tt->vec_dot_type);
		CHECK(tt->vec_dot && vt && vt->from_float && vt->dequantize);
		if (!tt->vec_dot || !vt || !vt->from_float || !vt->dequantize)
			continue;
		uint8_t qx[N * 2], qa[N * 2];
		tt->quantize(x, qx, 1, N, NULL);
		vt->from_float(a, qa, N);
		tt->dequantize(qx, xd, N);
		vt->dequantize(qa, ad, N);
		double ref = 0, mag = 0;
		for (int i = 0; i < N; i++) {
			ref += (double)xd[i] * ad[i];
			mag += fabs((double)xd[i] * ad[i]);
		}
		float s;
		tt->vec_dot(N, &s, qx, qa);
		/* Q8_1 carries d*sum(q) as fp16: the offset term of *_1 types is good to ~1e-3 */
		double tol = tt->vec_dot_type == ISQ_TYPE_Q8_1 ? 4e-3 : 1e-5;
		CHECK_MSG(fabs(s - ref) <= tol * mag + 1e-9, "%s: dot %.9g vs %.9g", tt->name, s, ref);
	}
}

TEST(deterministic_and_row_independent)
{
	float x[4 * 256];
	fill(x, 4 * 256, 2);
	for (size_t t = 0; t < ISQ_ARRAY_SIZE(types); t++) {
		const struct isq_type_traits *tt = isq_type_traits(types[t]);
		uint8_t all[4 * 300], one[300];
		uint64_t rb;
		isq_type_row_size(types[t], 256, &rb);
		tt->quantize(x, all, 4, 256, NULL);
		for (int r = 0; r < 4; r++) {
			tt->quantize(x + r * 256, one, 1, 256, NULL);
			CHECK_MSG(!memcmp(one, all + r * rb, rb), "%s: row %d differs when quantized alone", tt->name, r);
		}
	}
}

/* The AVX2 encoders are the scalar ones over 8 lanes: same bytes, with and without importance. */
TEST(optimized_bytes_equal_reference)
{
	float x[4 * 256], imp[256];
	for (int i = 0; i < 256; i++)
		imp[i] = (float)(0.01 + unif() * unif() * 10);
	for (int dist = 0; dist < 4; dist++) {
		fill(x, 4 * 256, dist);
		for (size_t t = 0; t < ISQ_ARRAY_SIZE(types); t++) {
			const struct isq_type_traits *tt = isq_type_traits(types[t]);
			if (!tt->quantize_ref)
				continue;
			uint8_t fast[4 * 300], ref[4 * 300];
			uint64_t rb;
			isq_type_row_size(types[t], 256, &rb);
			for (int w = 0; w < 2; w++) {
				memset(fast, 0xa5, sizeof(fast));
				memset(ref, 0x5a, sizeof(ref));
				tt->quantize(x, fast, 4, 256, w ? imp : NULL);
				tt->quantize_ref(x, ref, 4, 256, w ? imp : NULL);
				CHECK_MSG(!memcmp(fast, ref, 4 * rb), "%s: dist %d imatrix %d: optimized bytes differ", tt->name,
					  dist, w);
			}
			if (tt->vec_dot_ref && tt->vec_dot != tt->vec_dot_ref) {
				const struct isq_type_traits *vt = isq_type_traits(tt->vec_dot_type);
				uint8_t qa[4 * 300];
				vt->from_float(x + 256, qa, 256);
				float s1, s2, mag = 0;
				tt->vec_dot(256, &s1, fast, qa);
				tt->vec_dot_ref(256, &s2, fast, qa);
				for (int i = 0; i < 256; i++)
					mag += fabsf(x[i] * x[256 + i]);
				CHECK_MSG(fabsf(s1 - s2) <= 1e-5f * mag + 1e-12f, "%s: dot %.9g vs reference %.9g", tt->name,
					  s1, s2);
			}
		}
	}
}
