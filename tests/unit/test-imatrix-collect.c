/*
 * test-imatrix-collect.c - the imatrix statistic: exact sums on hand-made
 * rows, and the whole pipeline (forward pass + observer + chunking) against
 * an independent forward pass written here in double precision.
 */
#include "test.h"
#include "imatrix-collect.h"
#include "tokenizer.h"
#include "weights.h"

/* ---- a small random F32 model, built in memory -------------------------------- */

struct toy {
	struct isq_fw_weights w;
	struct isq_fw_layer layers[2];
	float *owned[64];
	int n_owned;
};

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float frand(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (float)((rng_state >> 40) & 0xFFFFFF) / (float)0x1000000 * 2.0f - 1.0f;
}

static float *toy_vec(struct toy *t, int64_t n, float base, float spread)
{
	float *v = malloc((size_t)n * sizeof(float));
	for (int64_t i = 0; i < n; i++)
		v[i] = base + spread * frand();
	t->owned[t->n_owned++] = v;
	return v;
}

static struct isq_fw_tensor toy_mat(struct toy *t, int64_t rows, int64_t cols)
{
	float scale = 1.0f / sqrtf((float)cols) * 1.7f;
	struct isq_fw_tensor m = { .type = ISQ_TYPE_F32, .rows = rows, .cols = cols,
				   .row_bytes = (size_t)cols * sizeof(float), .data = toy_vec(t, rows * cols, 0, scale) };
	return m;
}

static void toy_init(struct toy *t, int neox)
{
	memset(t, 0, sizeof(*t));
	struct isq_fw_config *c = &t->w.cfg;
	c->n_vocab = 40;
	c->n_embd = 16;
	c->n_ff = 24;
	c->n_layer = 2;
	c->n_head = 4;
	c->n_head_kv = 2;
	c->head_dim = 6; /* n_head * head_dim != n_embd: Wo's width differs from Wq's */
	c->n_ctx_train = 64;
	c->norm_eps = 1e-5f;
	c->rope_theta = 10000.0f;
	c->rope_neox = neox;
	t->w.tok_embd = toy_mat(t, c->n_vocab, c->n_embd);
	t->w.output_norm = toy_vec(t, c->n_embd, 1, 0.2f);
	t->w.layers = t->layers;
	for (int l = 0; l < 2; l++) {
		struct isq_fw_layer *L = &t->layers[l];
		L->attn_norm = toy_vec(t, c->n_embd, 1, 0.3f);
		L->ffn_norm = toy_vec(t, c->n_embd, 1, 0.3f);
		L->wq = toy_mat(t, c->n_head * c->head_dim, c->n_embd);
		L->wk = toy_mat(t, c->n_head_kv * c->head_dim, c->n_embd);
		L->wv = toy_mat(t, c->n_head_kv * c->head_dim, c->n_embd);
		L->wo = toy_mat(t, c->n_embd, c->n_head * c->head_dim);
		L->gate = toy_mat(t, c->n_ff, c->n_embd);
		L->up = toy_mat(t, c->n_ff, c->n_embd);
		L->down = toy_mat(t, c->n_embd, c->n_ff);
	}
}

static void toy_release(struct toy *t)
{
	for (int i = 0; i < t->n_owned; i++)
		free(t->owned[i]);
}

/* ---- the independent computation: a plain double-precision forward pass -------- */

/* Per (layer, role) column sums and row counts, the reference's result. */
struct ref_stats {
	int64_t n_layer;
	double *sums[64][4];
	int64_t count[64][4];
};

static void ref_init(struct ref_stats *r, const struct isq_fw_weights *w)
{
	memset(r, 0, sizeof(*r));
	r->n_layer = w->cfg.n_layer;
	for (int64_t l = 0; l < r->n_layer; l++) {
		int64_t cols[4] = { w->layers[l].wq.cols, w->layers[l].wo.cols, w->layers[l].gate.cols,
				    w->layers[l].down.cols };
		for (int k = 0; k < 4; k++)
			r->sums[l][k] = calloc((size_t)cols[k], sizeof(double));
	}
}

static void ref_release(struct ref_stats *r)
{
	for (int64_t l = 0; l < r->n_layer; l++)
		for (int k = 0; k < 4; k++)
			free(r->sums[l][k]);
}

static void ref_add(struct ref_stats *r, int l, int role, const double *x, int n, int64_t cols)
{
	for (int t = 0; t < n; t++)
		for (int64_t j = 0; j < cols; j++)
			r->sums[l][role][j] += x[t * cols + j] * x[t * cols + j];
	r->count[l][role] += n;
}

static void ref_rmsnorm(const double *x, const float *w, double *y, int64_t d, int n, double eps)
{
	for (int t = 0; t < n; t++) {
		double ss = 0;
		for (int64_t j = 0; j < d; j++)
			ss += x[t * d + j] * x[t * d + j];
		double s = 1.0 / sqrt(ss / (double)d + eps);
		for (int64_t j = 0; j < d; j++)
			y[t * d + j] = x[t * d + j] * s * w[j];
	}
}

static void ref_matmul(const struct isq_fw_tensor *m, const double *x, double *y, int n)
{
	const float *W = m->data;
	for (int t = 0; t < n; t++)
		for (int64_t r = 0; r < m->rows; r++) {
			double s = 0;
			for (int64_t c = 0; c < m->cols; c++)
				s += (double)W[r * m->cols + c] * x[t * m->cols + c];
			y[t * m->rows + r] = s;
		}
}

static void ref_rope(double *x, int n, int n_head, int hd, const float *inv_freq, int neox)
{
	for (int t = 0; t < n; t++)
		for (int h = 0; h < n_head; h++) {
			double *v = x + ((int64_t)t * n_head + h) * hd;
			for (int i = 0; i < hd / 2; i++) {
				int a = neox ? i : 2 * i, b = neox ? i + hd / 2 : 2 * i + 1;
				double th = (double)t * inv_freq[i], c = cos(th), s = sin(th);
				double x0 = v[a], x1 = v[b];
				v[a] = x0 * c - x1 * s;
				v[b] = x0 * s + x1 * c;
			}
		}
}

/* One chunk from an empty cache (F32 weights, no biases, no q/k norms: what the toy and stories260K have). */
static void ref_chunk(struct ref_stats *r, const struct isq_fw_weights *w, const int32_t *ids, int n)
{
	const struct isq_fw_config *c = &w->cfg;
	int64_t d = c->n_embd, hd = c->head_dim, nq = c->n_head * hd, nkv = c->n_head_kv * hd, ff = c->n_ff;
	double *x = calloc((size_t)(n * d), sizeof(double)), *h = calloc((size_t)(n * d), sizeof(double));
	double *q = calloc((size_t)(n * nq), sizeof(double)), *k = calloc((size_t)(n * nkv), sizeof(double));
	double *v = calloc((size_t)(n * nkv), sizeof(double)), *att = calloc((size_t)(n * nq), sizeof(double));
	double *g = calloc((size_t)(n * ff), sizeof(double)), *u = calloc((size_t)(n * ff), sizeof(double));
	double *o = calloc((size_t)(n * d), sizeof(double)), *p = calloc((size_t)n, sizeof(double));
	float inv_freq[256];
	isq_fw_rope_inv_freq(c, w->rope_freqs, inv_freq);
	const float *E = w->tok_embd.data;
	for (int t = 0; t < n; t++)
		for (int64_t j = 0; j < d; j++)
			x[t * d + j] = E[(int64_t)ids[t] * d + j];
	for (int l = 0; l < (int)c->n_layer; l++) {
		const struct isq_fw_layer *L = &w->layers[l];
		ref_rmsnorm(x, L->attn_norm, h, d, n, c->norm_eps);
		ref_add(r, l, ISQ_FW_ATTN_QKV, h, n, d);
		ref_matmul(&L->wq, h, q, n);
		ref_matmul(&L->wk, h, k, n);
		ref_matmul(&L->wv, h, v, n);
		ref_rope(q, n, c->n_head, (int)hd, inv_freq, c->rope_neox);
		ref_rope(k, n, c->n_head_kv, (int)hd, inv_freq, c->rope_neox);
		int group = c->n_head / c->n_head_kv;
		for (int t = 0; t < n; t++)
			for (int hh = 0; hh < c->n_head; hh++) {
				const double *qv = q + t * nq + hh * hd;
				int kvh = hh / group;
				double mx = -1e300, z = 0;
				for (int s = 0; s <= t; s++) {
					double dot = 0;
					for (int64_t i = 0; i < hd; i++)
						dot += qv[i] * k[s * nkv + kvh * hd + i];
					p[s] = dot / sqrt((double)hd);
					mx = p[s] > mx ? p[s] : mx;
				}
				for (int s = 0; s <= t; s++)
					z += (p[s] = exp(p[s] - mx));
				for (int64_t i = 0; i < hd; i++) {
					double acc = 0;
					for (int s = 0; s <= t; s++)
						acc += p[s] / z * v[s * nkv + kvh * hd + i];
					att[t * nq + hh * hd + i] = acc;
				}
			}
		ref_add(r, l, ISQ_FW_ATTN_OUTPUT, att, n, nq);
		ref_matmul(&L->wo, att, o, n);
		for (int64_t i = 0; i < n * d; i++)
			x[i] += o[i];
		ref_rmsnorm(x, L->ffn_norm, h, d, n, c->norm_eps);
		ref_add(r, l, ISQ_FW_FFN_GATE_UP, h, n, d);
		ref_matmul(&L->gate, h, g, n);
		ref_matmul(&L->up, h, u, n);
		for (int64_t i = 0; i < n * ff; i++)
			g[i] = g[i] / (1 + exp(-g[i])) * u[i];
		ref_add(r, l, ISQ_FW_FFN_DOWN, g, n, ff);
		ref_matmul(&L->down, g, o, n);
		for (int64_t i = 0; i < n * d; i++)
			x[i] += o[i];
	}
	free(x), free(h), free(q), free(k), free(v), free(att), free(g), free(u), free(o), free(p);
}

static const char *const role_weights[4][3] = {
	{ "attn_q", "attn_k", "attn_v" }, { "attn_output" }, { "ffn_gate", "ffn_up" }, { "ffn_down" }
};

/* Every entry of IM against the reference; returns the largest relative error of a column sum. */
static double compare_ref(const struct isq_imatrix *im, const struct ref_stats *r, double tol)
{
	double worst = 0;
	size_t expected = 0;
	int reported = 0;
	for (int64_t l = 0; l < r->n_layer; l++)
		for (int k = 0; k < 4; k++)
			for (int m = 0; m < 3 && role_weights[k][m]; m++) {
				char name[64];
				snprintf(name, sizeof(name), "blk.%d.%s.weight", (int)l, role_weights[k][m]);
				const struct isq_imatrix_entry *en = isq_imatrix_find(im, name);
				expected++;
				CHECK_MSG(en != NULL, "%s is missing", name);
				if (!en)
					continue;
				CHECK_EQ_INT(en->n_mat, 1);
				CHECK_NEAR(en->counts[0], (double)r->count[l][k], 0);
				/* the scale of a vector: relative error of small columns is measured against it */
				double mean = 0;
				for (int64_t j = 0; j < en->n_per_row; j++)
					mean += r->sums[l][k][j] / (double)en->n_per_row;
				for (int64_t j = 0; j < en->n_per_row; j++) {
					double want = r->sums[l][k][j], err = fabs(en->sums[j] - want) / (fabs(want) + 1e-3 * mean);
					worst = err > worst ? err : worst;
					/* a few lines say enough; the rest only count */
					if (err > tol && reported++ < 5)
						CHECK_MSG(err <= tol, "%s[%d]: %.9g vs %.9g", name, (int)j, en->sums[j], want);
					else if (err > tol)
						test_failed_checks++;
				}
			}
	CHECK_EQ_INT(im->n, expected);
	return worst;
}

static int compute(struct isq_imatrix *im, const struct isq_fw_weights *w, const int32_t *ids, size_t n,
		   int64_t cs, int64_t max_chunks, int32_t bos, int threads)
{
	struct isq_backend *be = NULL;
	struct isq_errbuf e = { 0 };
	int rc = isq_backend_new("cpu", threads, &be, &e);
	struct isq_imatrix_params p = { .chunk_size = cs, .max_chunks = max_chunks, .bos = bos };
	rc = rc ? rc : isq_imatrix_compute(im, w, be, ids, n, &p, NULL, &e);
	CHECK_MSG(rc == 0, "%s", isq_errbuf_msg(&e));
	isq_backend_free(be);
	return rc;
}

/* ---- tests ---------------------------------------------------------------------- */

TEST(observer_sums_are_exact)
{
	struct toy t;
	toy_init(&t, 1);
	struct isq_imatrix_collect c;
	struct isq_errbuf e = { 0 };
	CHECK(isq_imatrix_collect_init(&c, &t.w, 0, &e) == 0);
	/* small integers: every square and sum is exact in float */
	float x[3 * 24];
	for (int i = 0; i < 3 * 24; i++)
		x[i] = (float)(i % 7) - 3;
	isq_imatrix_collect_observe(&c, 0, ISQ_FW_ATTN_QKV, x, 3, 16);
	isq_imatrix_collect_observe(&c, 0, ISQ_FW_ATTN_QKV, x, 2, 16);
	isq_imatrix_collect_observe(&c, 1, ISQ_FW_FFN_DOWN, x, 3, 24);
	isq_imatrix_collect_observe(&c, 1, ISQ_FW_ATTN_OUTPUT, x, 1, 24);
	isq_imatrix_collect_observe(&c, -1, ISQ_FW_OUTPUT, x, 3, 16); /* not asked for: silently skipped */
	CHECK_EQ_INT(c.n_ignored, 0);
	isq_imatrix_collect_observe(&c, 1, ISQ_FW_FFN_DOWN, x, 3, 16); /* wrong width */
	isq_imatrix_collect_observe(&c, 2, ISQ_FW_FFN_DOWN, x, 3, 24); /* no such layer */
	CHECK_EQ_INT(c.n_ignored, 2);

	struct isq_imatrix im;
	isq_imatrix_init(&im);
	CHECK(isq_imatrix_collect_finish(&c, &im) == 0);
	/* slots that saw rows: Q, K, V of layer 0, down and output of layer 1 */
	CHECK_EQ_INT(im.n, 5);
	static const char *const qkv[] = { "blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight" };
	for (int k = 0; k < 3; k++) {
		const struct isq_imatrix_entry *en = isq_imatrix_find(&im, qkv[k]);
		CHECK(en && en->n_per_row == 16 && en->counts[0] == 5);
		for (int j = 0; en && j < 16; j++) {
			double want = 0;
			for (int r = 0; r < 3; r++)
				want += (double)x[r * 16 + j] * x[r * 16 + j];
			for (int r = 0; r < 2; r++)
				want += (double)x[r * 16 + j] * x[r * 16 + j];
			CHECK_NEAR(en->sums[j], want, 0);
		}
	}
	const struct isq_imatrix_entry *dn = isq_imatrix_find(&im, "blk.1.ffn_down.weight");
	CHECK(dn && dn->n_per_row == 24 && dn->counts[0] == 3);
	for (int j = 0; dn && j < 24; j++)
		CHECK_NEAR(dn->sums[j], (double)(x[j] * x[j] + x[24 + j] * x[24 + j] + x[48 + j] * x[48 + j]), 0);
	const struct isq_imatrix_entry *wo = isq_imatrix_find(&im, "blk.1.attn_output.weight");
	CHECK(wo && wo->n_per_row == 24 && wo->counts[0] == 1);
	CHECK(isq_imatrix_find(&im, "blk.1.ffn_up.weight") == NULL);

	/* a second finish adds: sums and counts double */
	CHECK(isq_imatrix_collect_finish(&c, &im) == 0);
	dn = isq_imatrix_find(&im, "blk.1.ffn_down.weight");
	CHECK(dn && dn->counts[0] == 6 && dn->sums[1] == 2 * (x[1] * x[1] + x[25] * x[25] + x[49] * x[49]));
	isq_imatrix_release(&im);
	isq_imatrix_collect_release(&c);
	toy_release(&t);
}

TEST(observer_output_only_when_asked)
{
	struct toy t;
	toy_init(&t, 1);
	struct isq_imatrix_collect c;
	struct isq_errbuf e = { 0 };
	CHECK(isq_imatrix_collect_init(&c, &t.w, ISQ_IMATRIX_COLLECT_OUTPUT, &e) == 0);
	float x[16];
	for (int j = 0; j < 16; j++)
		x[j] = (float)j;
	isq_imatrix_collect_observe(&c, -1, ISQ_FW_OUTPUT, x, 1, 16);
	struct isq_imatrix im;
	isq_imatrix_init(&im);
	CHECK(isq_imatrix_collect_finish(&c, &im) == 0);
	/* the toy ties its output to the embedding, so that is the matrix multiplied */
	const struct isq_imatrix_entry *en = isq_imatrix_find(&im, "token_embd.weight");
	CHECK(en && en->counts[0] == 1 && en->sums[15] == 225);
	CHECK_EQ_INT(im.n, 1);
	isq_imatrix_release(&im);
	isq_imatrix_collect_release(&c);
	toy_release(&t);
}

TEST(finish_refuses_another_models_imatrix)
{
	struct toy t;
	toy_init(&t, 1);
	struct isq_imatrix_collect c;
	struct isq_errbuf e = { 0 };
	CHECK(isq_imatrix_collect_init(&c, &t.w, 0, &e) == 0);
	float x[24] = { 1 };
	isq_imatrix_collect_observe(&c, 0, ISQ_FW_FFN_DOWN, x, 1, 24);
	struct isq_imatrix im;
	isq_imatrix_init(&im);
	isq_imatrix_get_or_add(&im, "blk.0.ffn_down.weight", 32, 1);
	CHECK(isq_imatrix_collect_finish(&c, &im) == ISQ_EINVAL);
	CHECK(strstr(im.err.msg, "'blk.0.ffn_down.weight'") && strstr(im.err.msg, "another model"));
	CHECK_EQ_INT(im.n, 1);
	CHECK(im.entries[0].counts[0] == 0);
	isq_imatrix_release(&im);
	isq_imatrix_collect_release(&c);
	toy_release(&t);
}

TEST(compute_refuses_a_device_backend)
{
	struct toy t;
	toy_init(&t, 1);
	struct isq_backend fake = { NULL, "cuda", 1, NULL };
	struct isq_imatrix im;
	isq_imatrix_init(&im);
	int32_t ids[8] = { 0 };
	struct isq_imatrix_params p = { .chunk_size = 4, .bos = -1 };
	struct isq_errbuf e = { 0 };
	CHECK(isq_imatrix_compute(&im, &t.w, &fake, ids, 8, &p, NULL, &e) == ISQ_EINVAL);
	CHECK(strstr(e.msg, "--backend cpu") != NULL);
	isq_imatrix_release(&im);
	toy_release(&t);
}

TEST(compute_matches_double_reference_on_toy)
{
	for (int neox = 0; neox < 2; neox++) {
		struct toy t;
		toy_init(&t, neox);
		int32_t ids[4 * 12 + 5];
		for (size_t i = 0; i < ISQ_ARRAY_SIZE(ids); i++)
			ids[i] = (int32_t)((i * 7 + 3) % 40);
		struct isq_imatrix im;
		isq_imatrix_init(&im);
		/* 53 tokens: four chunks of 12, the tail of 5 unused; BOS 1 replaces each chunk's first */
		if (compute(&im, &t.w, ids, ISQ_ARRAY_SIZE(ids), 12, 0, 1, 2) == 0) {
			CHECK_EQ_INT(im.chunk_count, 4);
			CHECK_EQ_INT(im.chunk_size, 12);
			struct ref_stats r;
			ref_init(&r, &t.w);
			for (int ch = 0; ch < 4; ch++) {
				int32_t chunk[12];
				memcpy(chunk, ids + ch * 12, sizeof(chunk));
				chunk[0] = 1;
				ref_chunk(&r, &t.w, chunk, 12);
			}
			double worst = compare_ref(&im, &r, 1e-5);
			printf("  toy (neox %d): worst relative error of a column sum %.3g\n", neox, worst);
			ref_release(&r);
		}
		isq_imatrix_release(&im);

		/* too little text for one chunk */
		isq_imatrix_init(&im);
		struct isq_backend *be = NULL;
		struct isq_errbuf e = { 0 };
		struct isq_imatrix_params p = { .chunk_size = 64, .bos = 1 };
		CHECK(isq_backend_new("cpu", 1, &be, &e) == 0);
		CHECK(isq_imatrix_compute(&im, &t.w, be, ids, ISQ_ARRAY_SIZE(ids), &p, NULL, &e) == ISQ_EINVAL);
		CHECK(strstr(e.msg, "fewer than one chunk") != NULL);
		CHECK_EQ_INT(im.n, 0);
		isq_backend_free(be);
		isq_imatrix_release(&im);
		toy_release(&t);
	}
}

TEST(compute_is_thread_count_independent_and_halves_merge_to_whole)
{
	struct toy t;
	toy_init(&t, 1);
	int32_t ids[64];
	for (int i = 0; i < 64; i++)
		ids[i] = (int32_t)((i * 13 + 5) % 40);
	struct isq_imatrix whole, whole1, a, b;
	isq_imatrix_init(&whole);
	isq_imatrix_init(&whole1);
	isq_imatrix_init(&a);
	isq_imatrix_init(&b);
	compute(&whole, &t.w, ids, 64, 16, 0, 1, 2);
	compute(&whole1, &t.w, ids, 64, 16, 0, 1, 1);
	compute(&a, &t.w, ids, 32, 16, 0, 1, 2);
	compute(&b, &t.w, ids + 32, 32, 16, 0, 1, 2);
	CHECK(isq_imatrix_merge(&a, &b) == 0);
	CHECK_EQ_INT(a.n, whole.n);
	CHECK_EQ_INT(a.chunk_count, 4);
	for (size_t i = 0; i < whole.n && i < a.n && i < whole1.n; i++) {
		const struct isq_imatrix_entry *x = &whole.entries[i], *y = &a.entries[i], *z = &whole1.entries[i];
		CHECK_STR(x->name, y->name);
		CHECK(x->counts[0] == 64 && y->counts[0] == 64);
		for (int64_t j = 0; j < x->n_per_row; j++) {
			CHECK_NEAR(y->sums[j], x->sums[j], 1e-6 * fabs(x->sums[j]));
			CHECK(z->sums[j] == x->sums[j]);
		}
	}
	isq_imatrix_release(&whole);
	isq_imatrix_release(&whole1);
	isq_imatrix_release(&a);
	isq_imatrix_release(&b);
	toy_release(&t);
}

TEST(stories260K_matches_double_reference)
{
	char model[4096], text[4096];
	if (!test_shared_path(model, sizeof(model), "models/stories260K-f32/model.safetensors") ||
	    !test_shared_path(text, sizeof(text), "data/tinystories-valid-1000.txt"))
		SKIP("../shared/models/stories260K-f32 or data/tinystories-valid-1000.txt not present");
	*strrchr(model, '/') = '\0';
	struct isq_weights w;
	int rc = isq_weights_open(&w, model);
	CHECK_MSG(rc == 0, "%s", isq_errbuf_msg(&w.err));
	if (rc)
		return;
	struct isq_tokenizer *tok = isq_tokenizer_new();
	rc = isq_tokenizer_load_hf(tok, model);
	CHECK_MSG(rc == 0, "%s", isq_tokenizer_errmsg(tok));
	FILE *f = fopen(text, "rb");
	char buf[4000];
	size_t len = f ? fread(buf, 1, sizeof(buf), f) : 0;
	if (f)
		fclose(f);
	int32_t *ids = NULL;
	size_t n = 0;
	rc = rc ? rc : isq_tokenizer_encode(tok, buf, len, ISQ_TOKENIZER_ADD_SPECIAL | ISQ_TOKENIZER_LITERAL, &ids, &n);
	CHECK(rc == 0 && n >= 192);
	int32_t bos = isq_tokenizer_bos(tok);
	CHECK(bos == 1 && ids && ids[0] == 1);
	struct isq_imatrix im;
	isq_imatrix_init(&im);
	if (!rc && n >= 192 && compute(&im, &w.fw, ids, n, 64, 3, bos, 2) == 0) {
		CHECK_EQ_INT(im.chunk_count, 3);
		struct ref_stats r;
		ref_init(&r, &w.fw);
		for (int ch = 0; ch < 3; ch++) {
			int32_t chunk[64];
			memcpy(chunk, ids + ch * 64, sizeof(chunk));
			chunk[0] = bos;
			ref_chunk(&r, &w.fw, chunk, 64);
		}
		/* 35 entries: 7 linear weights in each of 5 layers */
		CHECK_EQ_INT(im.n, 35);
		double worst = compare_ref(&im, &r, 1e-4);
		printf("  stories260K, 3 chunks of 64: worst relative error of a column sum %.3g\n", worst);
		ref_release(&r);
	}
	isq_imatrix_release(&im);
	free(ids);
	isq_tokenizer_free(tok);
	isq_weights_release(&w);
}

/* ---- does it help?  Q4_1 with the imatrix against Q4_1 without, by KL to F32 ------ */

/* A copy of W whose linear weights that fit TYPE are quantized (with IM's importance when given). */
static struct isq_fw_layer *quantize_layers(const struct isq_fw_weights *w, enum isq_type type,
					    const struct isq_imatrix *im, void **bufs, int *n_bufs)
{
	struct isq_fw_layer *layers = calloc((size_t)w->cfg.n_layer, sizeof(*layers));
	static const char *const names[7] = { "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down" };
	for (int64_t l = 0; l < w->cfg.n_layer; l++) {
		layers[l] = w->layers[l];
		struct isq_fw_tensor *m[7] = { &layers[l].wq, &layers[l].wk, &layers[l].wv, &layers[l].wo,
					       &layers[l].gate, &layers[l].up, &layers[l].down };
		for (int k = 0; k < 7; k++) {
			uint64_t rb;
			if (m[k]->cols % 32 || isq_type_row_size(type, (uint64_t)m[k]->cols, &rb))
				continue; /* stays F32, as ffn_down's 172 columns do in stories260K */
			float imp[4096];
			const float *ip = NULL;
			char name[64];
			snprintf(name, sizeof(name), "blk.%d.%s.weight", (int)l, names[k]);
			const struct isq_imatrix_entry *en = im ? isq_imatrix_find(im, name) : NULL;
			if (en && en->n_per_row <= 4096) {
				isq_imatrix_importance(en, 0, imp);
				ip = imp;
			}
			void *dst = malloc((size_t)rb * (size_t)m[k]->rows);
			size_t written;
			struct isq_errbuf e = { 0 };
			int rc = isq_quantize(type, m[k]->data, dst, m[k]->rows, m[k]->cols, ip, &written, &e);
			CHECK_MSG(rc == 0, "%s", isq_errbuf_msg(&e));
			bufs[(*n_bufs)++] = dst;
			m[k]->type = type;
			m[k]->row_bytes = (size_t)rb;
			m[k]->data = dst;
		}
	}
	return layers;
}

static float *logits_of(const struct isq_fw_weights *w, const int32_t *ids, int n)
{
	struct isq_backend *be = NULL;
	struct isq_fw_ctx *fw = NULL;
	struct isq_errbuf e = { 0 };
	float *out = malloc((size_t)n * (size_t)w->cfg.n_vocab * sizeof(float));
	struct isq_fw_params p = { .n_ctx = n, .n_batch = n };
	int rc = isq_backend_new("cpu", 2, &be, &e);
	rc = rc ? rc : isq_fw_new(&fw, w, be, &p, &e);
	rc = rc ? rc : isq_fw_eval(fw, ids, n, 0, out, ISQ_FW_LOGITS_ALL, &e);
	CHECK_MSG(rc == 0, "%s", isq_errbuf_msg(&e));
	isq_fw_free(fw);
	isq_backend_free(be);
	return out;
}

/* Mean KL(P || Q) per row of n_vocab logits. */
static double mean_kl(const float *p, const float *q, int rows, int64_t nv)
{
	double tot = 0;
	for (int r = 0; r < rows; r++) {
		const float *a = p + (size_t)r * nv, *b = q + (size_t)r * nv;
		double ma = a[0], mb = b[0], za = 0, zb = 0, s = 0;
		for (int64_t v = 1; v < nv; v++) {
			ma = a[v] > ma ? a[v] : ma;
			mb = b[v] > mb ? b[v] : mb;
		}
		for (int64_t v = 0; v < nv; v++) {
			za += exp(a[v] - ma);
			zb += exp(b[v] - mb);
		}
		for (int64_t v = 0; v < nv; v++) {
			double la = a[v] - ma - log(za), lb = b[v] - mb - log(zb);
			s += exp(la) * (la - lb);
		}
		tot += s;
	}
	return tot / rows;
}

TEST(stories260K_imatrix_lowers_q4_1_kl)
{
	char model[4096], text[4096];
	if (!test_shared_path(model, sizeof(model), "models/stories260K-f32/model.safetensors") ||
	    !test_shared_path(text, sizeof(text), "data/tinystories-valid-1000.txt"))
		SKIP("../shared/models/stories260K-f32 or data/tinystories-valid-1000.txt not present");
	*strrchr(model, '/') = '\0';
	struct isq_weights w;
	if (isq_weights_open(&w, model)) {
		CHECK_MSG(0, "%s", isq_errbuf_msg(&w.err));
		return;
	}
	struct isq_tokenizer *tok = isq_tokenizer_new();
	CHECK(isq_tokenizer_load_hf(tok, model) == 0);
	/* calibrate on the first 12 kB, evaluate on chunks from 400 kB on: text the imatrix never saw */
	struct isq_buf b = ISQ_BUF_INIT;
	struct isq_errbuf e = { 0 };
	CHECK(isq_read_file(text, &b, &e) == 0);
	int32_t *cal = NULL, *ev = NULL;
	size_t n_cal = 0, n_ev = 0;
	const int C = 128, N_EV = 6;
	int ok = b.len > 500000 &&
		 !isq_tokenizer_encode(tok, b.data, 12000, ISQ_TOKENIZER_ADD_SPECIAL | ISQ_TOKENIZER_LITERAL, &cal, &n_cal) &&
		 !isq_tokenizer_encode(tok, b.data + 400000, 60000, ISQ_TOKENIZER_LITERAL, &ev, &n_ev) &&
		 n_ev >= (size_t)(C * N_EV);
	CHECK_MSG(ok, "calibration text too short");
	struct isq_imatrix im;
	isq_imatrix_init(&im);
	if (ok)
		ok = compute(&im, &w.fw, cal, n_cal, C, 0, isq_tokenizer_bos(tok), 2) == 0;
	static const enum isq_type types[] = { ISQ_TYPE_Q4_1, ISQ_TYPE_Q4_0 };
	for (size_t ti = 0; ok && ti < ISQ_ARRAY_SIZE(types); ti++) {
		void *bufs[128];
		int n_bufs = 0;
		struct isq_fw_weights plain = w.fw, weighted = w.fw;
		plain.layers = quantize_layers(&w.fw, types[ti], NULL, bufs, &n_bufs);
		weighted.layers = quantize_layers(&w.fw, types[ti], &im, bufs, &n_bufs);
		double kl_plain = 0, kl_im = 0;
		for (int ch = 0; ch < N_EV; ch++) {
			int32_t *x = ev + ch * C;
			x[0] = isq_tokenizer_bos(tok);
			float *ref = logits_of(&w.fw, x, C), *p = logits_of(&plain, x, C), *q = logits_of(&weighted, x, C);
			kl_plain += mean_kl(ref, p, C, w.fw.cfg.n_vocab) / N_EV;
			kl_im += mean_kl(ref, q, C, w.fw.cfg.n_vocab) / N_EV;
			free(ref), free(p), free(q);
		}
		printf("  %s: KL to F32 %.5f without the imatrix, %.5f with it (%+.1f%%)\n", isq_type_name(types[ti]),
		       kl_plain, kl_im, 100 * (kl_im / kl_plain - 1));
		/* Q4_1 gains ~20% here; Q4_0 moves a few percent either way on this model, so it is only reported */
		if (types[ti] == ISQ_TYPE_Q4_1)
			CHECK(kl_im < 0.95 * kl_plain);
		for (int i = 0; i < n_bufs; i++)
			free(bufs[i]);
		free(plain.layers);
		free(weighted.layers);
	}
	isq_imatrix_release(&im);
	free(cal);
	free(ev);
	isq_buf_release(&b);
	isq_tokenizer_free(tok);
	isq_weights_release(&w);
}
