/*
 * test-repack - the CPU's prompt and generation kernels: the F32 panels
 * (sgemm.h) and the products of the repacked layouts (repack.h).  The
 * AVX2 kernels must give the portable references' bits; the references must
 * agree with plain dot products to rounding.
 */
#include "attn.h"
#include "backend.h"
#include "blocks.h"
#include "blocks-k.h"
#include "cpu.h"
#include "repack.h"
#include "sgemm.h"
#include "test.h"
#include "fp.h"
#include "types.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t next(void)
{
	rng = rng * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(rng >> 33);
}

static float frand(void)
{
	return (float)((int)(next() % 20001) - 10000) / 10000.0f;
}

/* Random Q4_0 rows with finite, varied scales. */
static uint8_t *random_q4_0(int64_t rows, int64_t nb)
{
	struct block_q4_0 *w = malloc((size_t)(rows * nb) * sizeof(*w));
	for (int64_t i = 0; i < rows * nb; i++) {
		w[i].d = (uint16_t)(0x1c00 + next() % 0x800);
		for (int j = 0; j < 16; j++)
			w[i].qs[j] = (uint8_t)next();
	}
	return (uint8_t *)w;
}

TEST(q4_0x8_unpacks_to_the_original_rows)
{
	enum { R = 24, NB = 5 };
	uint8_t *w = random_q4_0(R, NB);
	size_t rb = NB * sizeof(struct block_q4_0);
	uint8_t *p = malloc(ISQ_Q4_0X8_GROUP_BYTES(NB) * (R / 8)), row[NB * sizeof(struct block_q4_0)];
	isq_repack_q4_0x8(w, rb, R, NB, p);
	for (int r = 0; r < R; r++) {
		isq_unpack_q4_0x8_row(p, NB, r, row);
		CHECK_MSG(memcmp(row, w + r * rb, rb) == 0, "row %d", r);
	}
	free(p);
	free(w);
}

/* Random Q8_0 rows, codes over the whole int8 range (-128 included, which files may hold). */
static uint8_t *random_q8_0(int64_t rows, int64_t nb)
{
	struct block_q8_0 *w = malloc((size_t)(rows * nb) * sizeof(*w));
	for (int64_t i = 0; i < rows * nb; i++) {
		w[i].d = (uint16_t)(0x1c00 + next() % 0x800);
		for (int j = 0; j < 32; j++)
			w[i].qs[j] = (int8_t)next();
	}
	return (uint8_t *)w;
}

typedef void (*gemm_fn)(const void *, int64_t, int64_t, int64_t, const struct isq_q8_act *, float *, size_t);

/* The Q8_0-activation layouts of repack.h: how to build a matrix and the products to compare. */
struct x8_kind {
	enum isq_type type;
	size_t col_bytes;
	uint8_t *(*random)(int64_t rows, int64_t nb);
	void (*repack)(const void *src, size_t row_bytes, int64_t rows, int64_t nb, void *dst);
	void (*unpack_row)(const void *packed, int64_t nb, int64_t r, void *dst);
	gemm_fn ref, avx2;
};

static const struct x8_kind q4_0x8 = { ISQ_TYPE_Q4_0, 144, random_q4_0, isq_repack_q4_0x8, isq_unpack_q4_0x8_row,
				       isq_gemm_q4_0x8_ref, isq_gemm_q4_0x8_avx2 };
/* IQ4_NL blocks are Q4_0's bytes: random nibbles cover every table entry */
static const struct x8_kind iq4_nlx8 = { ISQ_TYPE_IQ4_NL, 144, random_q4_0, isq_repack_q4_0x8, isq_unpack_q4_0x8_row,
					 isq_gemm_iq4_nlx8_ref, isq_gemm_iq4_nlx8_avx2 };
static const struct x8_kind q8_0x8 = { ISQ_TYPE_Q8_0, 272, random_q8_0, isq_repack_q8_0x8, isq_unpack_q8_0x8_row,
				       isq_gemm_q8_0x8_ref, isq_gemm_q8_0x8_avx2 };

/*
 * The repacked products for 1..9 activation rows: AVX2 == reference bit for
 * bit, the same bits for a row whether it comes alone or in a batch, and
 * both == the type's vec_dot to rounding.
 */
static void gemm_x8_matches(const struct x8_kind *k)
{
	isq_types_init();
	const struct isq_type_traits *tt = isq_type_traits(k->type), *qt = isq_type_traits(ISQ_TYPE_Q8_0);
	enum { R = 32, NB = 40, C = NB * 32, T = 9 };
	uint8_t *w = k->random(R, NB);
	size_t rb = (size_t)NB * tt->type_size;
	uint8_t *p = malloc(k->col_bytes * NB * (R / 8)), row[NB * 34];
	k->repack(w, rb, R, NB, p);
	for (int r = 0; r < R; r++) {
		k->unpack_row(p, NB, r, row);
		CHECK_MSG(memcmp(row, w + r * rb, rb) == 0, "row %d does not unpack to itself", r);
	}
	float *x = malloc(T * C * sizeof(float));
	for (int i = 0; i < T * C; i++)
		x[i] = frand() * (i % 97 == 0 ? 8.0f : 1.0f);
	/* extreme activations too: codes of +-127 in every block */
	x[5] = 40.0f;
	x[T * C - 3] = -40.0f;
	size_t xrow = NB * sizeof(struct block_q8_0);
	uint8_t *xq = malloc(T * xrow);
	float xd[T * NB], y_ref[T * R], y[T * R], y1[R];
	int32_t sums[T * NB];
	for (int t = 0; t < T; t++)
		qt->from_float(x + t * C, xq + t * xrow, C);
	isq_q8_act_prepare(xq, xrow, T, NB, xd, sums);
	for (int n = 1; n <= T; n++) {
		struct isq_q8_act act = { .q = xq, .row_bytes = xrow, .d = xd, .sums = sums, .n = n };
		k->ref(p, NB, 0, R / 8, &act, y_ref, R);
		for (int t = 0; t < n; t++)
			for (int r = 0; r < R; r++) {
				float d;
				tt->vec_dot_ref(C, &d, w + r * rb, xq + t * xrow);
				CHECK_MSG(fabsf(d - y_ref[t * R + r]) <= 1e-5f * (1.0f + fabsf(d)),
					  "%d rows: row %d token %d: %g vs vec_dot %g", n, r, t, y_ref[t * R + r], d);
			}
		/* the last token alone gives the bits it gets in the batch */
		struct isq_q8_act one = { .q = xq + (n - 1) * xrow, .row_bytes = xrow, .d = xd + (n - 1) * NB,
					  .sums = sums + (n - 1) * NB, .n = 1 };
		k->ref(p, NB, 0, R / 8, &one, y1, R);
		CHECK(memcmp(y1, y_ref + (n - 1) * R, sizeof(y1)) == 0);
		if (!isq_cpu_has_avx2())
			continue;
		memset(y, 0, sizeof(y));
		/* two calls over group ranges: the split must not matter */
		k->avx2(p, NB, 0, 1, &act, y, R);
		k->avx2(p, NB, 1, R / 8, &act, y, R);
		CHECK_MSG(memcmp(y, y_ref, (size_t)n * R * sizeof(float)) == 0, "%d rows: AVX2 differs", n);
	}
	if (!isq_cpu_has_avx2())
		printf("  (no AVX2: reference path only)\n");
	free(xq);
	free(x);
	free(p);
	free(w);
}

TEST(q4_0x8_gemm_matches_reference_and_vec_dot)
{
	gemm_x8_matches(&q4_0x8);
}

TEST(iq4_nlx8_gemm_matches_reference_and_vec_dot)
{
	gemm_x8_matches(&iq4_nlx8);
}

TEST(q8_0x8_gemm_matches_reference_and_vec_dot)
{
	gemm_x8_matches(&q8_0x8);
}

/*
 * Q4_Kx8 and Q6_Kx8: rows come back, AVX2 == reference bit for bit, one row
 * alone == in a batch, both == vec_dot to rounding.
 */
static void gemm_kx8_matches(enum isq_type type)
{
	isq_types_init();
	int q6 = type == ISQ_TYPE_Q6_K;
	const struct isq_type_traits *tt = isq_type_traits(type), *qt = isq_type_traits(ISQ_TYPE_Q8_K);
	enum { R = 24, NSB = 3, C = NSB * 256, T = 7 };
	size_t rb = NSB * tt->type_size;
	uint8_t *w = malloc(R * rb);
	for (size_t i = 0; i < R * rb; i++)
		w[i] = (uint8_t)next();
	for (int i = 0; i < R * NSB; i++) { /* finite scales: Q6_K's d is last, Q4_K's d and dmin first */
		uint8_t *blk = w + (size_t)i * tt->type_size;
		uint16_t d = (uint16_t)(0x1c00 + next() % 0x800), dmin = (uint16_t)(0x1800 + next() % 0x800);
		memcpy(q6 ? blk + 208 : blk, &d, 2);
		if (!q6)
			memcpy(blk + 2, &dmin, 2);
	}
	size_t gb = q6 ? ISQ_Q6_KX8_GROUP_BYTES(NSB) : ISQ_Q4_KX8_GROUP_BYTES(NSB);
	uint8_t *p = malloc(gb * (R / 8)), *row = malloc(rb);
	if (q6)
		isq_repack_q6_Kx8(w, rb, R, NSB, p);
	else
		isq_repack_q4_Kx8(w, rb, R, NSB, p);
	for (int r = 0; r < R; r++) {
		if (q6)
			isq_unpack_q6_Kx8_row(p, NSB, r, row);
		else
			isq_unpack_q4_Kx8_row(p, NSB, r, row);
		CHECK_MSG(memcmp(row, w + r * rb, rb) == 0, "row %d does not unpack to itself", r);
	}
	float *x = malloc(T * C * sizeof(float));
	for (int i = 0; i < T * C; i++)
		x[i] = frand() * (i % 89 == 0 ? 8.0f : 1.0f);
	size_t xrow = NSB * sizeof(struct block_q8_K);
	uint8_t *xq = malloc(T * xrow);
	for (int t = 0; t < T; t++)
		qt->from_float(x + t * C, xq + t * xrow, C);
	int16_t bs[T * NSB * 8];
	isq_q8k_act_prepare(xq, xrow, T, NSB, bs);
	void (*ref)(const void *, int64_t, int64_t, int64_t, const struct isq_q8k_act *, float *, size_t) =
		q6 ? isq_gemm_q6_Kx8_ref : isq_gemm_q4_Kx8_ref;
	void (*avx2)(const void *, int64_t, int64_t, int64_t, const struct isq_q8k_act *, float *, size_t) =
		q6 ? isq_gemm_q6_Kx8_avx2 : isq_gemm_q4_Kx8_avx2;
	float y_ref[T * R], y[T * R], y1[R];
	for (int n = 1; n <= T; n++) {
		struct isq_q8k_act act = { .q = xq, .row_bytes = xrow, .bs = bs, .n = n };
		ref(p, NSB, 0, R / 8, &act, y_ref, R);
		for (int t = 0; t < n; t++)
			for (int r = 0; r < R; r++) {
				float d;
				tt->vec_dot_ref(C, &d, w + r * rb, xq + t * xrow);
				CHECK_MSG(fabsf(d - y_ref[t * R + r]) <= 1e-4f * (1.0f + fabsf(d)),
					  "%d rows: row %d token %d: %g vs vec_dot %g", n, r, t, y_ref[t * R + r], d);
			}
		struct isq_q8k_act one = { .q = xq + (n - 1) * xrow, .row_bytes = xrow, .bs = bs + (n - 1) * NSB * 8, .n = 1 };
		ref(p, NSB, 0, R / 8, &one, y1, R);
		CHECK(memcmp(y1, y_ref + (n - 1) * R, sizeof(y1)) == 0);
		if (!isq_cpu_has_avx2())
			continue;
		memset(y, 0, sizeof(y));
		avx2(p, NSB, 0, 1, &act, y, R);
		avx2(p, NSB, 1, R / 8, &act, y, R);
		CHECK_MSG(memcmp(y, y_ref, (size_t)n * R * sizeof(float)) == 0, "%d rows: AVX2 differs", n);
	}
	if (!isq_cpu_has_avx2())
		printf("  (no AVX2: reference path only)\n");
	free(xq);
	free(x);
	free(row);
	free(p);
	free(w);
}

TEST(q4_Kx8_gemm_matches_reference_and_vec_dot)
{
	gemm_kx8_matches(ISQ_TYPE_Q4_K);
}

TEST(q6_Kx8_gemm_matches_reference_and_vec_dot)
{
	gemm_kx8_matches(ISQ_TYPE_Q6_K);
}

/* Panels: AVX2 == scalar FMA chain bit for bit for every token count, row count and length. */
TEST(sgemm_panels_match_reference)
{
	int ks[] = { 1, 7, 8, 9, 64, 133 };
	int checked = 0;
	for (size_t ki = 0; ki < ISQ_ARRAY_SIZE(ks); ki++) {
		int k = ks[ki];
		for (int nr = 1; nr <= 16; nr += 5) {
			for (int nt = 1; nt <= 14; nt += 3) {
				float *rows = malloc(sizeof(float) * 16 * (size_t)k);
				float *x = malloc(sizeof(float) * (size_t)nt * (size_t)k);
				float *panel = aligned_alloc(32, sizeof(float) * 16 * (size_t)((k + 7) / 8 * 8));
				float y[14 * 16], z[14 * 16];
				for (int i = 0; i < 16 * k; i++)
					rows[i] = frand();
				for (int i = 0; i < nt * k; i++)
					x[i] = frand();
				isq_panel16_pack(rows, (size_t)k, nr, k, panel);
				/* the reference: a plain in-order fmaf chain per output */
				for (int t = 0; t < nt; t++)
					for (int r = 0; r < nr; r++) {
						float s = 0;
						for (int i = 0; i < k; i++)
							s = fmaf(x[t * k + i], rows[r * k + i], s);
						y[t * 16 + r] = s;
					}
				memset(z, 0, sizeof(z));
				isq_sgemm_panel16(k, nt, x, (size_t)k, panel, z, 16, nr);
				for (int t = 0; t < nt; t++)
					CHECK_MSG(memcmp(y + t * 16, z + t * 16, (size_t)nr * sizeof(float)) == 0,
						  "k %d, %d rows, %d tokens, token %d", k, nr, nt, t);
				checked++;
				free(panel);
				free(x);
				free(rows);
			}
		}
	}
	CHECK(checked == 6 * 4 * 5);
}

/* Through the backend: a repacked matrix against the unrepacked one and against itself a token at a time, 1..20 tokens. */
static void backend_repacked_matches_rows(enum isq_type type)
{
	enum { R = 40, C = 256, T = 20 };
	const struct isq_type_traits *tt = isq_type_traits(type);
	int64_t nblk = R * C / tt->blck;
	uint8_t *w = malloc((size_t)nblk * tt->type_size);
	for (size_t i = 0; i < (size_t)nblk * tt->type_size; i++)
		w[i] = (uint8_t)next();
	/* finite scales: d first in every block (Q6_K's last), Q4_K's dmin next */
	size_t d_at = type == ISQ_TYPE_Q6_K ? 208 : 0;
	for (int64_t i = 0; i < nblk; i++)
		for (int k = 0; k < (type == ISQ_TYPE_Q4_K ? 2 : 1); k++)
			memcpy(w + (size_t)i * tt->type_size + d_at + 2 * k, &(uint16_t){ (uint16_t)(0x1c00 + next() % 0x800) }, 2);
	struct isq_fw_tensor host = { .type = type, .rows = R, .cols = C, .row_bytes = C / tt->blck * tt->type_size,
				      .data = w };
	struct isq_backend *be[2] = { 0 };
	struct isq_fw_tensor dev[2];
	struct isq_errbuf e = { 0 };
	float *x = malloc(sizeof(float) * T * C), *y[2];
	for (int i = 0; i < T * C; i++)
		x[i] = frand();
	for (int k = 0; k < 2; k++) {
		setenv("ISQ_NO_REPACK", k ? "0" : "1", 1);
		CHECK(isq_backend_new("cpu", 2, &be[k], &e) == 0);
		CHECK(be[k]->ops->reserve(be[k], T, C, 8, &e) == 0);
		CHECK(be[k]->ops->weight_load(be[k], &host, &dev[k], &e) == 0);
		y[k] = malloc(sizeof(float) * T * R);
	}
	unsetenv("ISQ_NO_REPACK");
	CHECK(dev[0].layout == 0 && dev[1].layout != 0);
	/*
	 * Below 16 tokens both multiply quantized activations (to rounding);
	 * from 16 the plain rows go through F32 panels, so the repacked matrix
	 * is held to its own one-token products instead, bit for bit.
	 */
	float one[R];
	for (int nt = 1; nt <= T; nt += 3) {
		for (int k = 0; k < 2; k++)
			be[k]->ops->matmul(be[k], &dev[k], NULL, x, y[k], nt);
		/*
		 * Random codes and scales make outputs that are small differences of
		 * large sums, so rounding is measured against the largest output.
		 */
		float big = 1.0f;
		for (int i = 0; i < nt * R; i++)
			big = fmaxf(big, fabsf(y[0][i]));
		for (int i = 0; nt < 16 && i < nt * R; i++)
			CHECK_MSG(fabsf(y[0][i] - y[1][i]) <= 2e-6f * big, "%d tokens, output %d: %g vs %g (largest %g)", nt, i,
				  y[0][i], y[1][i], big);
		for (int t = 0; t < nt; t++) {
			be[1]->ops->matmul(be[1], &dev[1], NULL, x + (size_t)t * C, one, 1);
			CHECK_MSG(memcmp(one, y[1] + (size_t)t * R, sizeof(one)) == 0, "%d tokens: token %d alone differs", nt, t);
		}
	}
	/* rows read back (embedding lookups) are the file's rows */
	int32_t ids[3] = { 0, 17, 39 };
	float a[3 * C], b[3 * C];
	be[0]->ops->get_rows(be[0], &dev[0], ids, 3, a);
	be[1]->ops->get_rows(be[1], &dev[1], ids, 3, b);
	CHECK(memcmp(a, b, sizeof(a)) == 0);
	for (int k = 0; k < 2; k++) {
		be[k]->ops->weight_unload(be[k], &dev[k]);
		isq_backend_free(be[k]);
		free(y[k]);
	}
	free(x);
	free(w);
}

TEST(backend_q4_0_repacked_matches_rows)
{
	backend_repacked_matches_rows(ISQ_TYPE_Q4_0);
}

TEST(backend_iq4_nl_repacked_matches_rows)
{
	backend_repacked_matches_rows(ISQ_TYPE_IQ4_NL);
}

TEST(backend_q8_0_repacked_matches_rows)
{
	backend_repacked_matches_rows(ISQ_TYPE_Q8_0);
}

TEST(backend_q4_K_repacked_matches_rows)
{
	backend_repacked_matches_rows(ISQ_TYPE_Q4_K);
}

TEST(backend_q6_K_repacked_matches_rows)
{
	backend_repacked_matches_rows(ISQ_TYPE_Q6_K);
}

/* F32/F16/BF16 rows times F32 activations: AVX2 == reference bit for bit, any row count and length. */
TEST(gemv_wide_matches_reference)
{
	int types[] = { ISQ_TYPE_F32, ISQ_TYPE_F16, ISQ_TYPE_BF16 };
	int ks[] = { 3, 8, 29, 256 };
	for (size_t ti = 0; ti < ISQ_ARRAY_SIZE(types); ti++)
		for (size_t ki = 0; ki < ISQ_ARRAY_SIZE(ks); ki++) {
			int k = ks[ki], nr = 11;
			size_t es = types[ti] == ISQ_TYPE_F32 ? 4 : 2, rb = (size_t)k * es;
			uint8_t *w = malloc(rb * (size_t)nr);
			float *x = malloc(sizeof(float) * (size_t)k), y[11], z[11];
			for (int i = 0; i < nr * k; i++) {
				float f = frand();
				if (es == 4)
					memcpy(w + 4 * (size_t)i, &f, 4);
				else if (types[ti] == ISQ_TYPE_F16)
					isq_fp32_to_fp16_row(&f, (uint16_t *)(void *)(w + 2 * (size_t)i), 1);
				else {
					uint32_t u;
					memcpy(&u, &f, 4);
					uint16_t h = (uint16_t)(u >> 16);
					memcpy(w + 2 * (size_t)i, &h, 2);
				}
			}
			for (int i = 0; i < k; i++)
				x[i] = frand();
			isq_gemv_wide_ref(types[ti], k, w, rb, nr, x, y);
			CHECK(isq_gemv_wide(types[ti], k, w, rb, nr, x, z) == 0);
			CHECK_MSG(memcmp(y, z, sizeof(y)) == 0, "type %d, k %d", types[ti], k);
			/* and a plain double dot to rounding */
			for (int r = 0; r < nr; r++) {
				double d = 0;
				for (int i = 0; i < k; i++) {
					float wf;
					if (es == 4)
						memcpy(&wf, w + (size_t)r * rb + 4 * (size_t)i, 4);
					else if (types[ti] == ISQ_TYPE_F16)
						wf = isq_fp16_to_fp32(isq_le16(w + (size_t)r * rb + 2 * (size_t)i));
					else {
						uint32_t u = (uint32_t)isq_le16(w + (size_t)r * rb + 2 * (size_t)i) << 16;
						memcpy(&wf, &u, 4);
					}
					d += (double)wf * x[i];
				}
				CHECK_MSG(fabs(d - y[r]) < 1e-5 * (1 + fabs(d)), "row %d: %g vs %g", r, y[r], d);
			}
			CHECK(isq_gemv_wide(ISQ_TYPE_Q8_0, k, w, rb, nr, x, y) == -1);
			free(x);
			free(w);
		}
}

/* Attention's loops: AVX2 == portable bit for bit, for head sizes with and without a tail. */
TEST(attention_loops_match_reference)
{
	if (!isq_cpu_has_avx2())
		SKIP("no AVX2 on this CPU (or ISQ_FORCE_REF): nothing to compare the portable loops with");
	int ns[] = { 1, 7, 8, 64, 67, 128 };
	for (size_t k = 0; k < ISQ_ARRAY_SIZE(ns); k++) {
		int n = ns[k];
		float a[128], b[128], y1[128], y2[128];
		for (int i = 0; i < n; i++) {
			a[i] = frand();
			b[i] = frand();
			y1[i] = y2[i] = frand();
		}
		float d1 = isq_attn_dot_ref(a, b, n), d2 = isq_attn_dot_avx2(a, b, n);
		CHECK_MSG(memcmp(&d1, &d2, sizeof(float)) == 0, "dot, n %d: %g vs %g", n, d1, d2);
		double dd = 0;
		for (int i = 0; i < n; i++)
			dd += (double)a[i] * b[i];
		CHECK(fabs(dd - d1) < 1e-5);
		isq_attn_axpy_ref(y1, 0.37f, a, n);
		isq_attn_axpy_avx2(y2, 0.37f, a, n);
		CHECK_MSG(memcmp(y1, y2, (size_t)n * sizeof(float)) == 0, "axpy, n %d", n);
	}
}
