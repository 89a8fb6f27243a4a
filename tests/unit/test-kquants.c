/*
 * test-kquants.c - the K-quant kernels (Q2_K..Q6_K, Q8_K).
 *
 * Round-trip error per type on several distributions, the AVX2 quantizers
 * byte-identical to the scalar reference, dot products against a float dot
 * of the dequantized operands, and, with ../shared: exact dequantization of
 * llama.cpp's bytes, Q8_K bytes equal to ggml's, and a weighted RMSE no
 * worse than llama.cpp's on every reference case.
 */
#include "test.h"

#include "blocks-k.h"
#include "cpu.h"
#include "fp.h"
#include "kquants-impl.h"
#include "kquants.h"

struct ktype {
	const char *name; /* as in the vector file names */
	enum isq_type t;
	size_t bsize;
	isq_quantize_fn ref, avx2;
	isq_dequantize_fn deq;
	isq_vec_dot_fn dot_ref, dot_avx2;
	double rel_gauss; /* bound on RMSE / RMS(x) for Gaussian data */
};

static const struct ktype K[] = {
	{ "q2_K", ISQ_TYPE_Q2_K, 84, isq_quantize_q2_K_ref, isq_quantize_q2_K_avx2, isq_dequantize_row_q2_K,
	  isq_vec_dot_q2_K_q8_K_ref, isq_vec_dot_q2_K_q8_K_avx2, 0.28 },
	{ "q3_K", ISQ_TYPE_Q3_K, 110, isq_quantize_q3_K_ref, isq_quantize_q3_K_avx2, isq_dequantize_row_q3_K,
	  isq_vec_dot_q3_K_q8_K_ref, isq_vec_dot_q3_K_q8_K_avx2, 0.15 },
	{ "q4_K", ISQ_TYPE_Q4_K, 144, isq_quantize_q4_K_ref, isq_quantize_q4_K_avx2, isq_dequantize_row_q4_K,
	  isq_vec_dot_q4_K_q8_K_ref, isq_vec_dot_q4_K_q8_K_avx2, 0.072 },
	{ "q5_K", ISQ_TYPE_Q5_K, 176, isq_quantize_q5_K_ref, isq_quantize_q5_K_avx2, isq_dequantize_row_q5_K,
	  isq_vec_dot_q5_K_q8_K_ref, isq_vec_dot_q5_K_q8_K_avx2, 0.036 },
	{ "q6_K", ISQ_TYPE_Q6_K, 210, isq_quantize_q6_K_ref, isq_quantize_q6_K_avx2, isq_dequantize_row_q6_K,
	  isq_vec_dot_q6_K_q8_K_ref, isq_vec_dot_q6_K_q8_K_avx2, 0.018 },
};

/* ---- deterministic random data --------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static double rng_u01(void)
{
	return (double)((rng_next() >> 11) + 1) * 0x1p-53;
}

static double rng_normal(void)
{
	return sqrt(-2.0 * log(rng_u01())) * cos(6.283185307179586 * rng_u01());
}

enum dist { GAUSS, HEAVY, OUTLIERS, ZEROS, CONSTANT, TINY, HUGE_, SPARSE, NDIST };
static const char *const dist_name[NDIST] = { "gauss", "heavy", "outliers", "zeros",
					      "constant", "tiny", "huge", "sparse" };

static void fill(float *x, size_t n, enum dist d, uint64_t seed)
{
	rng_state = seed;
	for (size_t i = 0; i < n; i++) {
		double v = rng_normal();
		switch (d) {
		case GAUSS:
			break;
		case HEAVY: /* Student-t, 3 degrees of freedom */ {
			double c1 = rng_normal(), c2 = rng_normal(), c3 = rng_normal();
			v /= sqrt((c1 * c1 + c2 * c2 + c3 * c3) / 3.0);
			break;
		}
		case OUTLIERS:
			if (i % 37 == 5)
				v *= 50.0;
			break;
		case ZEROS:
			v = 0.0;
			break;
		case CONSTANT:
			v = 0.7;
			break;
		case TINY:
			v *= 1e-8 / 0.02;
			break;
		case HUGE_:
			v *= 1e4 / 0.02;
			break;
		case SPARSE:
			if (rng_u01() < 0.8)
				v = 0.0;
			break;
		case NDIST:
			break;
		}
		x[i] = (float)(0.02 * v);
	}
}

static void fill_imatrix(float *w, size_t n, uint64_t seed)
{
	rng_state = seed;
	for (size_t i = 0; i < n; i++) {
		double v = rng_normal();
		w[i] = (float)(v * v + (i % 61 == 0 ? 5.0 : 0.05));
	}
}

static double rel_err(const float *x, const float *y, const float *w, size_t rows, size_t npr,
		      double *rms_x)
{
	double e = 0, s = 0, sw = 0;
	for (size_t r = 0; r < rows; r++)
		for (size_t j = 0; j < npr; j++) {
			double wj = w ? w[j] : 1.0, d = (double)x[r * npr + j] - y[r * npr + j];
			e += wj * d * d;
			s += wj * (double)x[r * npr + j] * x[r * npr + j];
			sw += wj;
		}
	*rms_x = sqrt(s / sw);
	return s > 0 ? sqrt(e / s) : sqrt(e / sw);
}

static int have_avx2(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return isq_cpu_has_avx2();
#else
	return 0;
#endif
}

/* ---- round trips -------------------------------------------------------------------- */

TEST(roundtrip_error)
{
	enum { ROWS = 4, NPR = 512 };
	static float x[ROWS * NPR], y[ROWS * NPR], w[NPR];
	static uint8_t q[ROWS * NPR];
	fill_imatrix(w, NPR, 99);
	for (size_t k = 0; k < ISQ_ARRAY_SIZE(K); k++)
		for (int d = 0; d < NDIST; d++)
			for (int imat = 0; imat < 2; imat++) {
				fill(x, ROWS * NPR, (enum dist)d, 1000 + (uint64_t)d);
				size_t bytes = K[k].ref(x, q, ROWS, NPR, imat ? w : NULL);
				CHECK_EQ_INT(bytes, ROWS * NPR / QK_K * K[k].bsize);
				K[k].deq(q, y, ROWS * NPR);
				double rms, rel = rel_err(x, y, imat ? w : NULL, ROWS, NPR, &rms);
				double bound = K[k].rel_gauss;
				if (d == HEAVY || d == SPARSE)
					bound *= 1.6; /* fewer levels left for the bulk */
				if (d == OUTLIERS)
					bound *= 2.5;
				if (d == ZEROS)
					bound = 0.0;
				if (d == CONSTANT) /* Q6_K's d is an fp16 subnormal here */
					bound = 5e-3;
				if (d == TINY) /* the super-scales underflow fp16: (near) zeros */
					bound = 1.0;
				CHECK_MSG(rel <= bound, "%s %s%s: relative error %.4g > %.4g", K[k].name,
					  dist_name[d], imat ? " (imatrix)" : "", rel, bound);
				if (getenv("ISQ_TEST_VERBOSE"))
					printf("  %s %-8s imat=%d rel %.4g (bound %.4g)\n", K[k].name, dist_name[d],
					       imat, rel, bound);
				for (size_t i = 0; i < ROWS * NPR && (d == ZEROS || d == TINY); i++)
					CHECK(fabsf(y[i]) <= (d == ZEROS ? 0.0f : 1e-7f));
				for (size_t i = 0; i < ROWS * NPR; i++)
					CHECK(isfinite(y[i]));
			}
}

/* Rows quantized one by one give the same bytes as one call (threads split by rows). */
TEST(rows_independent)
{
	enum { ROWS = 3, NPR = 768 };
	static float x[ROWS * NPR], w[NPR];
	static uint8_t a[ROWS * NPR], b[ROWS * NPR];
	fill(x, ROWS * NPR, HEAVY, 7);
	fill_imatrix(w, NPR, 8);
	for (size_t k = 0; k < ISQ_ARRAY_SIZE(K); k++)
		for (int imat = 0; imat < 2; imat++) {
			const size_t rs = NPR / QK_K * K[k].bsize;
			K[k].ref(x, a, ROWS, NPR, imat ? w : NULL);
			for (int r = 0; r < ROWS; r++)
				K[k].ref(x + r * NPR, b + r * rs, 1, NPR, imat ? w : NULL);
			CHECK_MSG(!memcmp(a, b, ROWS * rs), "%s imat=%d", K[k].name, imat);
		}
}

/* ---- the AVX2 path equals the reference ---------------------------------------------- */

TEST(avx2_bytes_equal_reference)
{
	enum { ROWS = 4, NPR = 512 };
	static float x[ROWS * NPR], w[NPR];
	static uint8_t a[ROWS * NPR], b[ROWS * NPR];
	if (!have_avx2())
		SKIP("no AVX2 on this CPU");
	for (int d = 0; d < NDIST; d++)
		for (int seed = 0; seed < 2; seed++) {
			fill(x, ROWS * NPR, (enum dist)d, 500 + 10 * (uint64_t)d + (uint64_t)seed);
			fill_imatrix(w, NPR, 77 + (uint64_t)seed);
			if (seed)
				w[3] = 0.0f; /* a column the calibration never saw */
			for (size_t k = 0; k < ISQ_ARRAY_SIZE(K); k++)
				for (int imat = 0; imat < 2; imat++) {
					size_t n = K[k].ref(x, a, ROWS, NPR, imat ? w : NULL);
					K[k].avx2(x, b, ROWS, NPR, imat ? w : NULL);
					CHECK_MSG(!memcmp(a, b, n), "%s %s imat=%d", K[k].name, dist_name[d], imat);
				}
		}
}

/* The SIMD super-scale candidates round with F16C; the reference with integer code. */
TEST(f16_round_matches_fp16)
{
	rng_state = 3;
	for (int i = 0; i < 200000; i++) {
		uint32_t u = (uint32_t)rng_next();
		float f = isq_f32_from_bits(u);
		if (isnan(f))
			continue;
		float want = isq_fp16_to_fp32(isq_fp32_to_fp16(f));
		CHECK_MSG(isq_f32_bits(kq_f16_round(f)) == isq_f32_bits(want), "%08x", u);
	}
}

/* ---- Q8_K activations and dot products -------------------------------------------------- */

TEST(q8_K_avx2_equals_reference)
{
	enum { N = 4 * QK_K };
	static float x[N];
	static struct block_q8_K a[N / QK_K], b[N / QK_K];
	if (!have_avx2())
		SKIP("no AVX2 on this CPU");
	for (int d = 0; d < NDIST; d++) {
		fill(x, N, (enum dist)d, 40 + (uint64_t)d);
		x[17] = -x[900] * 1.5f; /* a block whose largest element is negative */
		isq_quantize_row_q8_K_ref(x, a, N);
		isq_quantize_row_q8_K_avx2(x, b, N);
		CHECK_MSG(!memcmp(a, b, sizeof(a)), "%s", dist_name[d]);
	}
}

TEST(vec_dot_matches_float_dot)
{
	enum { N = 8 * QK_K };
	static float x[N], yv[N], xd[N], yd[N];
	static uint8_t q[N];
	static struct block_q8_K y8[N / QK_K];
	for (size_t k = 0; k < ISQ_ARRAY_SIZE(K); k++)
		for (int d = 0; d < 3; d++) {
			fill(x, N, (enum dist)d, 60 + (uint64_t)d);
			fill(yv, N, GAUSS, 90 + (uint64_t)d);
			K[k].ref(x, q, 1, N, NULL);
			K[k].deq(q, xd, N);
			isq_quantize_row_q8_K_ref(yv, y8, N);
			isq_dequantize_row_q8_K(y8, yd, N);
			double exact = 0, mag = 0;
			for (int i = 0; i < N; i++) {
				exact += (double)xd[i] * yd[i];
				mag += fabs((double)xd[i] * yd[i]);
			}
			float s = 0.0f;
			K[k].dot_ref(N, &s, q, y8);
			CHECK_MSG(fabs(s - exact) <= 1e-5 * mag + 1e-30, "%s ref: %.9g vs %.9g", K[k].name, s, exact);
			if (have_avx2()) {
				K[k].dot_avx2(N, &s, q, y8);
				CHECK_MSG(fabs(s - exact) <= 1e-5 * mag + 1e-30, "%s avx2: %.9g vs %.9g", K[k].name, s,
					  exact);
			}
		}
}

/* The type table points at these kernels, and at the reference ones when forced. */
TEST(type_table)
{
	for (int force = 1; force >= 0; force--) {
		isq_types_force_ref(force);
		for (size_t k = 0; k < ISQ_ARRAY_SIZE(K); k++) {
			const struct isq_type_traits *tt = isq_type_traits(K[k].t);
			CHECK(tt && tt->quantize_ref == K[k].ref && tt->dequantize == K[k].deq);
			CHECK(tt && tt->vec_dot_ref == K[k].dot_ref && tt->vec_dot_type == ISQ_TYPE_Q8_K);
			CHECK(tt && tt->uses_imatrix && (tt->backends & ISQ_BACKEND_CPU));
			if (tt && (force || !have_avx2()))
				CHECK(tt->quantize == K[k].ref && tt->vec_dot == K[k].dot_ref);
			else if (tt)
				CHECK(tt->quantize == K[k].avx2 && tt->vec_dot == K[k].dot_avx2);
		}
		const struct isq_type_traits *q8 = isq_type_traits(ISQ_TYPE_Q8_K);
		CHECK(q8 && q8->from_float && q8->dequantize == isq_dequantize_row_q8_K && !q8->uses_imatrix);
		if (q8 && (force || !have_avx2()))
			CHECK(q8->from_float == isq_quantize_row_q8_K_ref);
	}
}

/* ---- llama.cpp's reference vectors -------------------------------------------------------- */

static uint8_t *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *p = len > 0 ? malloc((size_t)len) : NULL;
	if (p && fread(p, 1, (size_t)len, f) != (size_t)len) {
		free(p);
		p = NULL;
	}
	fclose(f);
	*n = p ? (size_t)len : 0;
	return p;
}

struct vcase {
	uint8_t *file;
	uint32_t rows;
	const uint8_t *q;
	float *deq; /* a copy: in the file the floats need not be aligned */
};

static void case_free(struct vcase *c)
{
	free(c->file);
	free(c->deq);
}

static const char *const SETS[] = { "gauss", "heavy", "outl", "edge", "real" };
static char vdir[8400];
static float *set_x[5], *set_w[5];
static uint32_t set_rows[5];

static int vectors_load(void)
{
	if (set_x[0])
		return 0;
	if (!test_shared_path(vdir, sizeof(vdir), "ref/ggml-vectors/README.md"))
		return -1;
	vdir[strlen(vdir) - strlen("/README.md")] = '\0';
	for (int s = 0; s < 5; s++) {
		char path[8600];
		size_t n;
		snprintf(path, sizeof(path), "%s/set-%s.bin", vdir, SETS[s]);
		uint8_t *p = slurp(path, &n);
		if (!p || n < 64 || memcmp(p, "ISQI", 4) || isq_le32(p + 12) != QK_K) {
			free(p);
			return -1;
		}
		set_rows[s] = isq_le32(p + 8);
		size_t cnt = (size_t)set_rows[s] * QK_K;
		set_x[s] = malloc(cnt * 4);
		set_w[s] = malloc(QK_K * 4);
		memcpy(set_x[s], p + 64, cnt * 4);
		memcpy(set_w[s], p + 64 + cnt * 4, QK_K * 4);
		free(p);
	}
	return 0;
}

static int case_load(const char *type, int s, const char *mode, size_t bsize, struct vcase *c)
{
	char path[8700];
	size_t n;
	snprintf(path, sizeof(path), "%s/%s-%s-%s.bin", vdir, type, SETS[s], mode);
	c->deq = NULL;
	c->file = slurp(path, &n);
	if (!c->file || n < 64 || memcmp(c->file, "ISQV", 4))
		return -1;
	c->rows = isq_le32(c->file + 12);
	uint64_t nq = isq_le64(c->file + 32);
	if (c->rows != set_rows[s] || nq != (uint64_t)c->rows * bsize ||
	    n != 64 + nq + (size_t)c->rows * QK_K * 4)
		return -1;
	c->q = c->file + 64;
	c->deq = malloc((size_t)c->rows * QK_K * 4);
	memcpy(c->deq, c->file + 64 + nq, (size_t)c->rows * QK_K * 4);
	return 0;
}

static double wrmse(int s, const float *y)
{
	double num = 0, den = 0;
	for (uint32_t r = 0; r < set_rows[s]; r++)
		for (int j = 0; j < QK_K; j++) {
			double d = (double)set_x[s][r * QK_K + j] - y[r * QK_K + j];
			num += set_w[s][j] * d * d;
			den += set_w[s][j];
		}
	return sqrt(num / den);
}

TEST(dequantize_llama_bytes_exactly)
{
	if (vectors_load())
		SKIP("../shared/ref/ggml-vectors not present");
	for (size_t k = 0; k <= ISQ_ARRAY_SIZE(K); k++) {
		const char *name = k < ISQ_ARRAY_SIZE(K) ? K[k].name : "q8_K";
		size_t bsize = k < ISQ_ARRAY_SIZE(K) ? K[k].bsize : sizeof(struct block_q8_K);
		isq_dequantize_fn deq = k < ISQ_ARRAY_SIZE(K) ? K[k].deq : isq_dequantize_row_q8_K;
		for (int s = 0; s < 5; s++)
			for (int m = 0; m < (k < ISQ_ARRAY_SIZE(K) ? 2 : 1); m++) {
				struct vcase c;
				int ok = case_load(name, s, m ? "imat" : "plain", bsize, &c) == 0;
				CHECK_MSG(ok, "%s-%s: unreadable", name, SETS[s]);
				if (ok) {
					size_t cnt = (size_t)c.rows * QK_K;
					float *y = malloc(cnt * 4);
					deq(c.q, y, (int64_t)cnt);
					CHECK_MSG(!memcmp(y, c.deq, cnt * 4), "%s-%s-%d", name, SETS[s], m);
					free(y);
				}
				case_free(&c);
			}
	}
}

TEST(q8_K_bytes_equal_ggml)
{
	if (vectors_load())
		SKIP("../shared/ref/ggml-vectors not present");
	for (int s = 0; s < 5; s++) {
		struct vcase c;
		if (case_load("q8_K", s, "plain", sizeof(struct block_q8_K), &c)) {
			CHECK_MSG(0, "q8_K-%s: unreadable", SETS[s]);
			case_free(&c);
			continue;
		}
		size_t nb = (size_t)c.rows * sizeof(struct block_q8_K);
		uint8_t *a = malloc(nb);
		for (int path = 0; path < 2; path++) {
			if (path && !have_avx2())
				break;
			for (uint32_t r = 0; r < c.rows; r++)
				(path ? isq_quantize_row_q8_K_avx2 : isq_quantize_row_q8_K_ref)(
					set_x[s] + r * QK_K, a + r * sizeof(struct block_q8_K), QK_K);
			size_t diff = 0;
			for (size_t i = 0; i < nb; i++) {
				/* the README: ggml leaves the bsums of an all-zero block unset */
				int masked = s == 3 && i >= 260 && i < 292;
				diff += !masked && a[i] != c.q[i];
			}
			CHECK_MSG(diff == 0, "q8_K-%s path %d: %zu bytes differ", SETS[s], path, diff);
		}
		free(a);
		case_free(&c);
	}
}

TEST(weighted_error_at_most_llama)
{
	if (vectors_load())
		SKIP("../shared/ref/ggml-vectors not present");
	for (size_t k = 0; k < ISQ_ARRAY_SIZE(K); k++)
		for (int s = 0; s < 5; s++)
			for (int m = 0; m < 2; m++) {
				struct vcase c;
				if (case_load(K[k].name, s, m ? "imat" : "plain", K[k].bsize, &c)) {
					CHECK_MSG(0, "%s-%s: unreadable", K[k].name, SETS[s]);
					case_free(&c);
					continue;
				}
				size_t cnt = (size_t)c.rows * QK_K, nb = (size_t)c.rows * K[k].bsize;
				uint8_t *a = malloc(nb), *b = malloc(nb);
				float *y = malloc(cnt * 4);
				K[k].ref(set_x[s], a, c.rows, QK_K, m ? set_w[s] : NULL);
				if (have_avx2()) {
					K[k].avx2(set_x[s], b, c.rows, QK_K, m ? set_w[s] : NULL);
					CHECK_MSG(!memcmp(a, b, nb), "%s-%s-%d: AVX2 bytes differ", K[k].name, SETS[s], m);
				}
				K[k].deq(a, y, (int64_t)cnt);
				double ours = wrmse(s, y), theirs = wrmse(s, c.deq);
				CHECK_MSG(ours <= theirs, "%s-%s-%s: wrmse %.6g > llama.cpp's %.6g", K[k].name, SETS[s],
					  m ? "imat" : "plain", ours, theirs);
				free(a);
				free(b);
				free(y);
				case_free(&c);
			}
}
