/* test-imatrix.c - the three imatrix formats read back what was written; merge adds up. */
#include "test.h"
#include "imatrix.h"

static void make(struct isq_imatrix *im, float scale)
{
	isq_imatrix_init(im);
	isq_imatrix_get_or_add(im, "blk.0.attn_q.weight", 8, 1);
	struct isq_imatrix_entry *b = isq_imatrix_get_or_add(im, "blk.1.ffn_down_exps.weight", 4, 3);
	/* entries move when one is added: look the first up again */
	struct isq_imatrix_entry *a = (struct isq_imatrix_entry *)isq_imatrix_find(im, "blk.0.attn_q.weight");
	for (int j = 0; j < 8; j++)
		a->sums[j] = scale * (float)(j + 1) * 512.0f;
	a->counts[0] = 512;
	for (int j = 0; j < 12; j++)
		b->sums[j] = scale * (float)(j % 5) * 10.0f;
	b->counts[0] = 100;
	b->counts[1] = 0; /* an expert that saw no tokens */
	b->counts[2] = 412;
	im->chunk_count = 2;
	im->chunk_size = 256;
}

static void importance_equal(const struct isq_imatrix *x, const struct isq_imatrix *y, const char *name, double tol)
{
	const struct isq_imatrix_entry *a = isq_imatrix_find(x, name), *b = isq_imatrix_find(y, name);
	CHECK_MSG(a && b, "entry %s", name);
	if (!a || !b)
		return;
	CHECK_EQ_INT(a->n_per_row * a->n_mat, b->n_per_row * b->n_mat);
	float ia[64], ib[64];
	for (int64_t m = 0; m < a->n_mat && m < b->n_mat; m++) {
		isq_imatrix_importance(a, m, ia);
		isq_imatrix_importance(b, m, ib);
		for (int64_t j = 0; j < a->n_per_row; j++)
			CHECK_NEAR(ia[j], ib[j], tol * (1 + fabs(ia[j])));
	}
}

static int roundtrip(const struct isq_imatrix *im, enum isq_imatrix_format f, struct isq_imatrix *back)
{
	struct isq_buf mem = ISQ_BUF_INIT;
	struct isq_out out;
	struct isq_errbuf e = { 0 };
	isq_out_open_memory(&out, &mem);
	int rc = isq_imatrix_write(im, f, &out, &e);
	CHECK_MSG(rc == 0, "%s", e.msg);
	isq_imatrix_init(back);
	if (!rc)
		rc = isq_imatrix_read_memory(back, mem.data, mem.len, f == ISQ_IMATRIX_CIMATRIX);
	CHECK_MSG(rc == 0, "%s", back->err.msg);
	isq_buf_release(&mem);
	return rc;
}

TEST(gguf_round_trip_is_exact)
{
	struct isq_imatrix im, back;
	make(&im, 1.0f);
	if (roundtrip(&im, ISQ_IMATRIX_GGUF, &back) == 0) {
		CHECK_EQ_INT(back.n, 2);
		CHECK_EQ_INT(back.chunk_count, 2);
		CHECK_EQ_INT(back.chunk_size, 256);
		const struct isq_imatrix_entry *b = isq_imatrix_find(&back, "blk.1.ffn_down_exps.weight");
		CHECK(b && b->n_mat == 3 && b->n_per_row == 4 && b->counts[2] == 412.0f && b->sums[11] == 10.0f);
		importance_equal(&im, &back, "blk.0.attn_q.weight", 0);
		/* an expert that saw nothing gets uniform importance */
		float v[4];
		isq_imatrix_importance(b, 1, v);
		CHECK(v[0] == 1.0f && v[3] == 1.0f);
	}
	isq_imatrix_release(&back);
	isq_imatrix_release(&im);
}

TEST(dat_and_cimatrix_keep_the_importance)
{
	struct isq_imatrix im, back;
	make(&im, 1.0f);
	if (roundtrip(&im, ISQ_IMATRIX_DAT, &back) == 0) {
		importance_equal(&im, &back, "blk.0.attn_q.weight", 1e-6);
		CHECK_EQ_INT(back.chunk_count, 2);
	}
	isq_imatrix_release(&back);
	if (roundtrip(&im, ISQ_IMATRIX_CIMATRIX, &back) == 0) {
		/* cimatrix keys are HF module paths: mapped back to GGUF names on load */
		CHECK(isq_imatrix_find(&back, "blk.0.attn_q.weight") != NULL);
		CHECK(isq_imatrix_find(&back, "model.layers.0.self_attn.q_proj.weight") != NULL);
		const struct isq_imatrix_entry *a = isq_imatrix_find(&im, "blk.0.attn_q.weight");
		const struct isq_imatrix_entry *c = isq_imatrix_find(&back, "blk.0.attn_q.weight");
		if (a && c) {
			/* importance up to one common factor (ncall) */
			float ia[8], ic[8];
			isq_imatrix_importance(a, 0, ia);
			isq_imatrix_importance(c, 0, ic);
			for (int j = 1; j < 8; j++)
				CHECK_NEAR(ic[j] / ic[0], ia[j] / ia[0], 1e-6);
		}
	}
	isq_imatrix_release(&back);
	isq_imatrix_release(&im);
}

TEST(merge_of_halves_equals_the_whole)
{
	struct isq_imatrix a, b, whole;
	make(&a, 1.0f);
	make(&b, 3.0f);
	make(&whole, 4.0f);
	for (size_t i = 0; i < whole.n; i++)
		for (int64_t m = 0; m < whole.entries[i].n_mat; m++)
			whole.entries[i].counts[m] *= 2;
	CHECK_EQ_INT(isq_imatrix_merge(&a, &b), 0);
	CHECK_EQ_INT(a.chunk_count, 4);
	for (size_t i = 0; i < whole.n; i++) {
		const struct isq_imatrix_entry *x = &a.entries[i], *y = &whole.entries[i];
		CHECK_STR(x->name, y->name);
		for (int64_t j = 0; j < x->n_per_row * x->n_mat; j++)
			CHECK_NEAR(x->sums[j], y->sums[j], 1e-3);
		for (int64_t m = 0; m < x->n_mat; m++)
			CHECK_NEAR(x->counts[m], y->counts[m], 0);
	}
	/* geometry mismatch is refused */
	struct isq_imatrix c;
	isq_imatrix_init(&c);
	isq_imatrix_get_or_add(&c, "blk.0.attn_q.weight", 16, 1);
	CHECK_EQ_INT(isq_imatrix_merge(&a, &c), ISQ_EINVAL);
	isq_imatrix_release(&c);
	isq_imatrix_release(&a);
	isq_imatrix_release(&b);
	isq_imatrix_release(&whole);
}

TEST(malformed_inputs_are_rejected)
{
	struct isq_imatrix im;
	static const uint8_t short_dat[] = { 1, 0, 0, 0, 4, 0, 0, 0, 'a', 'b' };
	static const uint8_t huge_count[] = { 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0 };
	static const uint8_t neg_value[] = { 1, 0, 0, 0, 1, 0, 0, 0, 'x', 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0x80, 0xbf };
	static const uint8_t ci_trunc[] = { 1, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 'a' };
	const struct {
		const uint8_t *p;
		size_t n;
		int ci;
	} cases[] = { { short_dat, sizeof(short_dat), 0 },
		      { huge_count, sizeof(huge_count), 0 },
		      { neg_value, sizeof(neg_value), 0 },
		      { ci_trunc, sizeof(ci_trunc), 1 },
		      { (const uint8_t *)"GGUF", 4, 0 } };
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(cases); i++) {
		isq_imatrix_init(&im);
		int rc = isq_imatrix_read_memory(&im, cases[i].p, cases[i].n, cases[i].ci);
		CHECK_MSG(rc == ISQ_EFORMAT, "case %zu: rc %d", i, rc);
		CHECK(im.err.msg[0] != '\0' && strchr(im.err.msg, '\n') == NULL);
		isq_imatrix_release(&im);
	}
}

TEST(format_from_extension)
{
	CHECK_EQ_INT(isq_imatrix_format_from_path("x.dat"), ISQ_IMATRIX_DAT);
	CHECK_EQ_INT(isq_imatrix_format_from_path("x.cimatrix"), ISQ_IMATRIX_CIMATRIX);
	CHECK_EQ_INT(isq_imatrix_format_from_path("x.imatrix"), ISQ_IMATRIX_GGUF);
	CHECK_EQ_INT(isq_imatrix_format_from_path("x.gguf"), ISQ_IMATRIX_GGUF);
}
