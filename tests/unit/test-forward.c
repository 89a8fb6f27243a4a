/* test-forward - the forward pass against Hugging Face's logits, llama.cpp's files, and itself. */
#include "test.h"

#include "gemm.h"
#include "io.h"
#include "sample.h"
#include "tokenizer.h"
#include "weights.h"

#define REF_DIR "models/stories260K-f32/reference"
#define N_REF 256 /* teacher-forced positions in greedy256_logits_f32.bin */
#define VOCAB 512

/* The 257 ids of greedy256_ids.txt (comma-separated) into ids; returns the count, or -1. */
static int read_ids(int32_t *ids, int cap)
{
	char path[4096];
	if (!test_shared_path(path, sizeof(path), REF_DIR "/greedy256_ids.txt"))
		return -1;
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	int n = 0, v;
	while (n < cap && fscanf(f, "%d", &v) == 1) {
		ids[n++] = v;
		if (fgetc(f) == EOF)
			break;
	}
	fclose(f);
	return n;
}

static float *read_ref_logits(void)
{
	char path[4096];
	if (!test_shared_path(path, sizeof(path), REF_DIR "/greedy256_logits_f32.bin"))
		return NULL;
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	float *p = malloc((size_t)N_REF * VOCAB * sizeof(float));
	size_t got = p ? fread(p, sizeof(float), (size_t)N_REF * VOCAB, f) : 0;
	fclose(f);
	if (got != (size_t)N_REF * VOCAB) {
		free(p);
		return NULL;
	}
	return p;
}

/* Teacher-forced logits of ids[0..n) from MODEL (relative to ../shared) into a new array, or NULL. */
static float *run_model(const char *rel, const int32_t *ids, int n, int threads, int n_batch, enum isq_type kv)
{
	char path[4096];
	if (!test_shared_path(path, sizeof(path), rel))
		return NULL;
	struct isq_weights w;
	struct isq_errbuf e = { 0 };
	struct isq_backend *be = NULL;
	struct isq_fw_ctx *fw = NULL;
	float *out = NULL;
	int rc = isq_weights_open(&w, path);
	CHECK_MSG(rc == 0, "%s", isq_errbuf_msg(&w.err));
	if (rc)
		return NULL;
	rc = isq_backend_new("cpu", threads, &be, &e);
	struct isq_fw_params p = { .n_ctx = n, .n_batch = n_batch, .kv_type = kv };
	rc = rc ? rc : isq_fw_new(&fw, &w.fw, be, &p, &e);
	CHECK_MSG(rc == 0, "%s", isq_errbuf_msg(&e));
	if (!rc) {
		CHECK_EQ_INT(w.fw.cfg.n_vocab, VOCAB);
		out = malloc((size_t)n * VOCAB * sizeof(float));
		rc = isq_fw_eval(fw, ids, n, 0, out, ISQ_FW_LOGITS_ALL, &e);
		CHECK_MSG(rc == 0, "%s", isq_errbuf_msg(&e));
	}
	isq_fw_free(fw);
	isq_backend_free(be);
	isq_weights_release(&w);
	return out;
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
	double m = 0;
	for (size_t i = 0; i < n; i++)
		m = fmax(m, fabs((double)a[i] - b[i]));
	return m;
}

static int same_argmax(const float *a, const float *b, int rows)
{
	int same = 0;
	for (int r = 0; r < rows; r++)
		same += isq_argmax(a + (size_t)r * VOCAB, VOCAB) == isq_argmax(b + (size_t)r * VOCAB, VOCAB);
	return same;
}

TEST(f32_matches_hf_logits)
{
	int32_t ids[300];
	float *ref = read_ref_logits();
	if (read_ids(ids, 300) != N_REF + 1 || !ref) {
		free(ref);
		SKIP("../shared/" REF_DIR " not present");
	}
	float *got = run_model("models/stories260K-f32", ids, N_REF, 2, 64, ISQ_TYPE_F32);
	if (got) {
		double d = max_abs_diff(got, ref, (size_t)N_REF * VOCAB);
		printf("  F32: max abs logit difference %.3g\n", d);
		CHECK_MSG(d <= 1e-4, "max abs difference %g", d);
		/* the reference ids are the greedy continuation: each is the argmax of the row before */
		int greedy = 0;
		for (int r = 4; r < N_REF; r++)
			greedy += isq_argmax(got + (size_t)r * VOCAB, VOCAB) == ids[r + 1];
		CHECK_EQ_INT(greedy, N_REF - 4);
	}
	free(got);
	free(ref);
}

TEST(bf16_argmax_agrees)
{
	int32_t ids[300];
	float *ref = read_ref_logits();
	if (read_ids(ids, 300) != N_REF + 1 || !ref) {
		free(ref);
		SKIP("../shared/" REF_DIR " not present");
	}
	float *got = run_model("models/stories260K", ids, N_REF, 2, 64, ISQ_TYPE_F32);
	if (got) {
		int same = same_argmax(got, ref, N_REF);
		printf("  BF16: %d of 256 argmaxes agree\n", same);
		CHECK_MSG(same >= 255, "%d of 256 argmaxes agree", same);
	}
	free(got);
	free(ref);
}

/* llama.cpp's GGUF stores Q/K in adjacent-pair order and runs normal RoPE: same function as HF's. */
TEST(llamacpp_gguf_f32_matches_hf)
{
	int32_t ids[300];
	float *ref = read_ref_logits();
	char path[4096];
	if (read_ids(ids, 300) != N_REF + 1 || !ref ||
	    !test_shared_path(path, sizeof(path), "ref/llamacpp-stories260K/stories260K-f32.gguf")) {
		free(ref);
		SKIP("../shared llama.cpp stories260K files not present");
	}
	/* its training context is 128: compare that many rows */
	float *got = run_model("ref/llamacpp-stories260K/stories260K-f32.gguf", ids, 128, 1, 64, ISQ_TYPE_F32);
	if (got) {
		double d = max_abs_diff(got, ref, (size_t)128 * VOCAB);
		printf("  llama.cpp F32 GGUF: max abs logit difference %.3g over 128 positions\n", d);
		CHECK_MSG(d <= 1e-3, "max abs difference %g", d);
		CHECK_EQ_INT(same_argmax(got, ref, 128), 128);
	}
	free(got);
	free(ref);
}

/*
 * Thread counts: the same logits bit for bit.  Batch splits: the same to
 * rounding (batches of 16 tokens and more multiply in F32 panels, smaller
 * ones through the dot products).  An F16 cache: close.
 */
TEST(batching_threads_and_kv_f16)
{
	int32_t ids[300];
	if (read_ids(ids, 300) != N_REF + 1)
		SKIP("../shared/" REF_DIR " not present");
	float *a = run_model("models/stories260K-f32", ids, 100, 1, 100, ISQ_TYPE_F32);
	float *a2 = run_model("models/stories260K-f32", ids, 100, 2, 100, ISQ_TYPE_F32);
	float *b = run_model("models/stories260K-f32", ids, 100, 2, 7, ISQ_TYPE_F32);
	float *b1 = run_model("models/stories260K-f32", ids, 100, 1, 7, ISQ_TYPE_F32);
	float *c = run_model("models/stories260K-f32", ids, 100, 2, 1, ISQ_TYPE_F16);
	if (a && a2)
		CHECK(memcmp(a, a2, (size_t)100 * VOCAB * sizeof(float)) == 0);
	if (b && b1)
		CHECK(memcmp(b, b1, (size_t)100 * VOCAB * sizeof(float)) == 0);
	if (a && b) {
		double d = max_abs_diff(a, b, (size_t)100 * VOCAB);
		printf("  batches of 100 vs 7: max abs logit difference %.3g\n", d);
		CHECK_MSG(d < 1e-4, "batches of 100 vs 7: max abs difference %g", d);
	}
	if (a && c) {
		double d = max_abs_diff(a, c, (size_t)100 * VOCAB);
		CHECK_MSG(d < 0.05 && d > 0, "F16 cache: max abs difference %g", d);
	}
	free(a);
	free(a2);
	free(b);
	free(b1);
	free(c);
}

/* Incremental decoding (one token at a time into the cache) gives the batch's rows. */
TEST(incremental_equals_batch)
{
	int32_t ids[300];
	char path[4096];
	if (read_ids(ids, 300) != N_REF + 1 || !test_shared_path(path, sizeof(path), "models/stories260K-f32"))
		SKIP("../shared/" REF_DIR " not present");
	float *all = run_model("models/stories260K-f32", ids, 40, 2, 64, ISQ_TYPE_F32);
	struct isq_weights w;
	struct isq_errbuf e = { 0 };
	struct isq_backend *be = NULL;
	struct isq_fw_ctx *fw = NULL;
	CHECK(isq_weights_open(&w, path) == 0);
	CHECK(isq_backend_new("cpu", 2, &be, &e) == 0);
	struct isq_fw_params p = { .n_ctx = 40 };
	CHECK(isq_fw_new(&fw, &w.fw, be, &p, &e) == 0);
	float row[VOCAB];
	if (fw && all) {
		/* the batch of 64 multiplies in F32 panels, these smaller ones through dot products: rounding apart */
		CHECK(isq_fw_eval(fw, ids, 10, 0, row, 0, &e) == 0);
		CHECK(max_abs_diff(row, all + 9 * VOCAB, VOCAB) < 1e-4);
		for (int i = 10; i < 40; i++) {
			CHECK(isq_fw_eval(fw, ids + i, 1, i, row, 0, &e) == 0);
			CHECK_MSG(max_abs_diff(row, all + (size_t)i * VOCAB, VOCAB) < 1e-4, "position %d", i);
		}
		CHECK(isq_fw_eval(fw, ids, 1, 40, row, 0, &e) == ISQ_EINVAL);
		int32_t bad = VOCAB;
		CHECK(isq_fw_eval(fw, &bad, 1, 0, row, 0, &e) == ISQ_EINVAL);
	}
	isq_fw_free(fw);
	isq_backend_free(be);
	isq_weights_release(&w);
	free(all);
}

static void write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	ISQ_ASSERT(f);
	fwrite(data, 1, n, f);
	fclose(f);
}

/*
 * Load PATH (opts: --isq, or NULL), check layer 0's attn_q is file-backed
 * as WANT says, and that its host bytes read the same after the CPU backend
 * repacked it and the file's pages were dropped.  The flag is what guards
 * heap buffers (a dropped heap page reads back as zeros); stories260K's
 * matrices are too small to span a whole page, so the flag is checked.
 */
static void host_bytes_survive_load(const char *path, struct isq_weights_opts *o, int want)
{
	struct isq_weights w;
	struct isq_errbuf e = { 0 };
	struct isq_backend *be = NULL;
	struct isq_fw_ctx *fw = NULL;
	int rc = o ? isq_weights_open_opts(&w, path, o) : isq_weights_open(&w, path);
	CHECK_MSG(rc == 0, "%s", isq_errbuf_msg(&w.err));
	if (rc)
		return;
	const struct isq_fw_tensor *q = &w.fw.layers[0].wq;
	CHECK_EQ_INT(q->file_backed, want);
	size_t n = q->row_bytes * (size_t)q->rows;
	uint8_t *copy = malloc(n);
	memcpy(copy, q->data, n);
	struct isq_fw_params p = { .n_ctx = 16, .n_batch = 16 };
	rc = isq_backend_new("cpu", 1, &be, &e);
	rc = rc ? rc : isq_fw_new(&fw, &w.fw, be, &p, &e);
	CHECK_MSG(rc == 0, "%s", isq_errbuf_msg(&e));
	CHECK_MSG(memcmp(copy, q->data, n) == 0, "%s: attn_q's host bytes changed by loading", path);
	isq_fw_free(fw);
	isq_backend_free(be);
	isq_weights_release(&w);
	free(copy);
}

TEST(repacked_file_pages_dropped_heap_kept)
{
	char path[4096];
	if (!test_shared_path(path, sizeof(path), "ref/llamacpp-stories260K/stories260K-Q4_0.gguf"))
		SKIP("../shared llama.cpp stories260K files not present");
	isq_types_init();
	host_bytes_survive_load(path, NULL, 1);
	if (!test_shared_path(path, sizeof(path), "models/stories260K-f32/model.safetensors"))
		SKIP("../shared/models/stories260K-f32 not present");
	*strrchr(path, '/') = 0;
	/* --isq q4_0: the quantized matrix is the handle's heap memory */
	struct isq_weights_opts o = { .isq = ISQ_TYPE_Q4_0, .n_threads = 1 };
	host_bytes_survive_load(path, &o, 0);
	CHECK_EQ_INT(o.n_quantized > 0, 1);
}

/* Teacher-forced logits of ids under --isq q4_0, the handle freeing what the context copied or not. */
static float *isq_logits(const char *dir, const int32_t *ids, int n, int free_copies)
{
	struct isq_weights w;
	struct isq_weights_opts o = { .isq = ISQ_TYPE_Q4_0, .n_threads = 1 };
	struct isq_errbuf e = { 0 };
	struct isq_backend *be = NULL;
	struct isq_fw_ctx *fw = NULL, *again = NULL;
	float *out = NULL;
	CHECK(isq_weights_open_opts(&w, dir, &o) == 0);
	struct isq_fw_params p = { .n_ctx = n, .n_batch = n };
	if (free_copies) {
		p.host_copied = isq_weights_host_copied;
		p.host_copied_ud = &w;
	}
	int rc = isq_backend_new("cpu", 1, &be, &e);
	rc = rc ? rc : isq_fw_new(&fw, &w.fw, be, &p, &e);
	CHECK_MSG(rc == 0, "%s", isq_errbuf_msg(&e));
	CHECK_EQ_INT(w.fw.spent, free_copies);
	if (free_copies) {
		/* the freed matrices cannot serve a second context */
		CHECK_EQ_INT(isq_fw_new(&again, &w.fw, be, &p, &e), ISQ_EINVAL);
		CHECK(strstr(isq_errbuf_msg(&e), "freed its copies") != NULL);
	}
	if (!rc) {
		out = malloc((size_t)n * VOCAB * sizeof(float));
		CHECK(isq_fw_eval(fw, ids, n, 0, out, ISQ_FW_LOGITS_ALL, &e) == 0);
	}
	isq_fw_free(fw);
	isq_backend_free(be);
	isq_weights_release(&w);
	return out;
}

TEST(isq_copies_freed_once_repacked)
{
	char path[4096];
	int32_t ids[300];
	if (read_ids(ids, 300) != N_REF + 1 ||
	    !test_shared_path(path, sizeof(path), "models/stories260K-f32/model.safetensors"))
		SKIP("../shared/models/stories260K-f32 not present");
	*strrchr(path, '/') = 0;
	isq_types_init();
	float *kept = isq_logits(path, ids, 64, 0), *freed = isq_logits(path, ids, 64, 1);
	CHECK(kept && freed && memcmp(kept, freed, (size_t)64 * VOCAB * sizeof(float)) == 0);
	free(kept);
	free(freed);
}

TEST(unsupported_arch_is_clear)
{
	char dir[4200], path[4300];
	snprintf(dir, sizeof(dir), "%s/phi3", test_tmpdir());
	mkdir(dir, 0777);
	static const char cfg[] = "{\"model_type\": \"phi3\", \"hidden_size\": 64, \"intermediate_size\": 128, "
				  "\"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"vocab_size\": 32, "
				  "\"max_position_embeddings\": 64, \"rms_norm_eps\": 1e-5}";
	snprintf(path, sizeof(path), "%s/config.json", dir);
	write_file(path, cfg, sizeof(cfg) - 1);
	static const char st[] = "\x02\x00\x00\x00\x00\x00\x00\x00{}";
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	write_file(path, st, sizeof(st) - 1);
	struct isq_weights w;
	int rc = isq_weights_open(&w, dir);
	CHECK_EQ_INT(rc, ISQ_EUNSUPPORTED);
	CHECK_MSG(strstr(isq_errbuf_msg(&w.err), "phi3 is not yet supported"), "%s", isq_errbuf_msg(&w.err));
}

TEST(backend_names)
{
	struct isq_backend *be;
	struct isq_errbuf e = { 0 };
	CHECK_EQ_INT(isq_backend_new("tpu", 1, &be, &e), ISQ_EINVAL);
	CHECK_MSG(strstr(isq_errbuf_msg(&e), "available: cpu"), "%s", isq_errbuf_msg(&e));
#ifndef ISQ_HAVE_CUDA
	CHECK_EQ_INT(isq_backend_new("cuda", 1, &be, &e), ISQ_EUNSUPPORTED);
	CHECK_MSG(strstr(isq_errbuf_msg(&e), "not built in"), "%s", isq_errbuf_msg(&e));
#endif
	CHECK_EQ_INT(isq_backend_new("cpu", 3, &be, &e), 0);
	CHECK_EQ_INT(be->n_threads, 3);
	isq_backend_free(be);
}

TEST(sampler)
{
	float logits[6] = { 0.5f, 2.0f, 2.0f, -1.0f, 1.9f, 0.0f };
	struct isq_sampler s;
	struct isq_sampler_params greedy = { 0, 40, 0.95, 0.05, 1 };
	CHECK(isq_sampler_init(&s, &greedy, 6) == 0);
	CHECK_EQ_INT(isq_sampler_sample(&s, logits, 6), 1); /* first of the tied maxima */
	isq_sampler_release(&s);
	/* top-k 1 leaves one candidate whatever the temperature */
	struct isq_sampler_params k1 = { 5.0, 1, 1.0, 0, 7 };
	CHECK(isq_sampler_init(&s, &k1, 6) == 0);
	for (int i = 0; i < 20; i++)
		CHECK_EQ_INT(isq_sampler_sample(&s, logits, 6), 1);
	isq_sampler_release(&s);
	/* the same seed draws the same tokens; the filters keep only ids 1, 2, 4 */
	struct isq_sampler_params p = { 1.0, 3, 1.0, 0, 42 };
	struct isq_sampler s2;
	int32_t first[64];
	int seen[6] = { 0 };
	CHECK(isq_sampler_init(&s, &p, 6) == 0 && isq_sampler_init(&s2, &p, 6) == 0);
	for (int i = 0; i < 64; i++) {
		first[i] = isq_sampler_sample(&s, logits, 6);
		CHECK_EQ_INT(isq_sampler_sample(&s2, logits, 6), first[i]);
		seen[first[i]]++;
	}
	CHECK(seen[1] && seen[2] && seen[4] && !seen[0] && !seen[3] && !seen[5]);
	isq_sampler_release(&s);
	isq_sampler_release(&s2);
	/* min-p 0.5: exp(1.9 - 2.0) = 0.90 stays, exp(0.5 - 2) = 0.22 goes */
	struct isq_sampler_params mp = { 1.0, 0, 1.0, 0.5, 3 };
	CHECK(isq_sampler_init(&s, &mp, 6) == 0);
	for (int i = 0; i < 64; i++) {
		int32_t id = isq_sampler_sample(&s, logits, 6);
		CHECK(id == 1 || id == 2 || id == 4);
	}
	isq_sampler_release(&s);
}

TEST(rope_llama3_frequencies)
{
	/* Llama 3.1 8B's values: long wavelengths divided by 8, short ones kept */
	struct isq_fw_config c = { .head_dim = 128, .rope_theta = 500000.0f, .rope_scaling = ISQ_FW_ROPE_LLAMA3,
				   .rope_factor = 8, .rope_low_freq_factor = 1, .rope_high_freq_factor = 4,
				   .rope_orig_ctx = 8192 };
	float f[64];
	isq_fw_rope_inv_freq(&c, NULL, f);
	CHECK_NEAR(f[0], 1.0, 1e-7);
	CHECK_NEAR(f[63], 1.0 / pow(500000.0, 126.0 / 128.0) / 8.0, 1e-12);
	/* with llama.cpp's rope_freqs tensor the divisors come from the file instead */
	float div[64];
	for (int i = 0; i < 64; i++)
		div[i] = 2.0f;
	float g[64];
	isq_fw_rope_inv_freq(&c, div, g);
	CHECK_NEAR(g[0], 0.5, 1e-7);
}

/* Quantize every matrix whose rows fit Q8_0 blocks, as isq-quantize -t q8_0 does (ffn_down's 172 are kept). */
static void **quantize_q8_0(struct isq_weights *w, size_t *n_bufs)
{
	struct isq_fw_tensor *ts[64 * 7 + 2];
	size_t n = 0;
	ts[n++] = &w->fw.tok_embd;
	if (w->fw.output.data)
		ts[n++] = &w->fw.output;
	for (int64_t l = 0; l < w->fw.cfg.n_layer && l < 64; l++) {
		struct isq_fw_layer *L = &w->fw.layers[l];
		struct isq_fw_tensor *m[] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->gate, &L->up, &L->down };
		for (size_t i = 0; i < ISQ_ARRAY_SIZE(m); i++)
			ts[n++] = m[i];
	}
	void **bufs = calloc(n, sizeof(void *));
	*n_bufs = 0;
	for (size_t i = 0; i < n; i++) {
		struct isq_fw_tensor *t = ts[i];
		if (t->cols % 32)
			continue;
		const struct isq_type_traits *tt = isq_type_traits(t->type);
		float *f = malloc((size_t)(t->rows * t->cols) * sizeof(float));
		uint64_t rb;
		isq_type_row_size(ISQ_TYPE_Q8_0, (uint64_t)t->cols, &rb);
		void *q = malloc(rb * (uint64_t)t->rows);
		tt->dequantize(t->data, f, t->rows * t->cols);
		size_t written;
		struct isq_errbuf e = { 0 };
		CHECK(isq_quantize(ISQ_TYPE_Q8_0, f, q, t->rows, t->cols, NULL, &written, &e) == 0);
		free(f);
		t->type = ISQ_TYPE_Q8_0;
		t->row_bytes = (size_t)rb;
		t->data = q;
		bufs[(*n_bufs)++] = q;
	}
	return bufs;
}

/*
 * Top-1 agreement of our Q8_0 of the F32 model with the F32 model itself,
 * teacher-forced over TinyStories in llama-perplexity's chunks (BOS in front,
 * the second half scored).  Quick: llama.cpp's KL-divergence run of notes
 * §8.5 (-c 128, 40 chunks, 2520 predictions): 98.4% with Q8_0 activations
 * (98.2% on the scalar reference kernels).  Full: the whole text in chunks of
 * 256 (200406 predictions): 97.9%, guarded at 97.5%.
 */
TEST(q8_0_top1_agreement)
{
	char f32[4096], txt[4096];
	if (!test_shared_path(f32, sizeof(f32), "models/stories260K-f32") ||
	    !test_shared_path(txt, sizeof(txt), "data/tinystories-valid-1000.txt"))
		SKIP("../shared stories260K or tinystories-valid-1000.txt not present");
	const char *level = getenv("ISQ_CHECK_LEVEL");
	int full = level && !strcmp(level, "full");
	int ch = full ? 256 : 128;
	size_t max_chunks = full ? SIZE_MAX : 40;
	struct isq_buf text = ISQ_BUF_INIT;
	struct isq_errbuf e = { 0 };
	CHECK(isq_read_file(txt, &text, &e) == 0);
	struct isq_tokenizer *tok = isq_tokenizer_new();
	int32_t *ids = NULL;
	size_t n_ids = 0;
	CHECK(isq_tokenizer_load_hf(tok, f32) == 0);
	/* 40 chunks of 128 need about 10 KiB of this text; tokenize no more */
	size_t len = full ? text.len : ISQ_MIN(text.len, (size_t)16384);
	CHECK(isq_tokenizer_encode(tok, text.data, len, 0, &ids, &n_ids) == 0);
	struct isq_weights wf, wq;
	CHECK(isq_weights_open(&wf, f32) == 0);
	CHECK(isq_weights_open(&wq, f32) == 0);
	size_t n_bufs;
	void **bufs = quantize_q8_0(&wq, &n_bufs);
	CHECK_MSG(n_bufs == 1 + 5 * 6, "%zu", n_bufs);
	struct isq_backend *be = NULL;
	struct isq_fw_ctx *cf = NULL, *cq = NULL;
	struct isq_fw_params p = { .n_ctx = ch, .n_batch = ch };
	CHECK(isq_backend_new("cpu", 2, &be, &e) == 0);
	CHECK(isq_fw_new(&cf, &wf.fw, be, &p, &e) == 0);
	CHECK_MSG(isq_fw_new(&cq, &wq.fw, be, &p, &e) == 0, "%s", isq_errbuf_msg(&e));
	float *lf = malloc((size_t)ch * VOCAB * sizeof(float)), *lq = malloc((size_t)ch * VOCAB * sizeof(float));
	int32_t win[256];
	size_t same = 0, total = 0, chunks = 0;
	for (size_t at = 0; cf && cq && at + (size_t)ch <= n_ids && chunks < max_chunks; at += (size_t)ch, chunks++) {
		memcpy(win, ids + at, (size_t)ch * sizeof(int32_t));
		win[0] = 1;
		CHECK(isq_fw_eval(cf, win, ch, 0, lf, ISQ_FW_LOGITS_ALL, &e) == 0);
		CHECK(isq_fw_eval(cq, win, ch, 0, lq, ISQ_FW_LOGITS_ALL, &e) == 0);
		/* rows ch/2 .. ch-2 predict tokens ch/2+1 .. ch-1 */
		same += (size_t)same_argmax(lf + (size_t)(ch / 2) * VOCAB, lq + (size_t)(ch / 2) * VOCAB, ch / 2 - 1);
		total += (size_t)(ch / 2 - 1);
	}
	double agree = total ? (double)same / (double)total : 0;
	printf("  Q8_0 vs F32 top-1 agreement: %.2f%% of %zu predictions (chunks of %d)\n", 100 * agree, total, ch);
	CHECK_MSG(agree >= (full ? 0.975 : 0.98), "%.4f", agree);
	free(lf);
	free(lq);
	isq_fw_free(cf);
	isq_fw_free(cq);
	isq_backend_free(be);
	for (size_t i = 0; i < n_bufs; i++)
		free(bufs[i]);
	free(bufs);
	isq_weights_release(&wf);
	isq_weights_release(&wq);
	free(ids);
	isq_tokenizer_free(tok);
	isq_buf_release(&text);
}

/* The prompt tiles give the AVX2 vec_dot's bits for any row and token count (batching never changes logits). */
TEST(gemm_tiles_equal_vec_dot)
{
	isq_types_init();
	enum isq_type types[] = { ISQ_TYPE_Q4_0, ISQ_TYPE_Q8_0 };
	int tested = 0;
	for (size_t k = 0; k < ISQ_ARRAY_SIZE(types); k++) {
		if (!isq_gemm_supported(types[k]))
			continue;
		tested++;
		const struct isq_type_traits *tt = isq_type_traits(types[k]), *qt = isq_type_traits(ISQ_TYPE_Q8_0);
		enum { R = 7, C = 96, T = 13 };
		size_t rb = C / 32 * tt->type_size, xr = C / 32 * qt->type_size;
		uint8_t *w = malloc(R * rb), *xq = malloc(T * xr);
		float x[T * C], y[T * R], z[T * R];
		uint64_t s = 99;
		for (size_t i = 0; i < R * rb; i++) {
			s = s * 6364136223846793005ull + 1;
			w[i] = (uint8_t)(s >> 56);
		}
		for (int b = 0; b < R * C / 32; b++) /* finite fp16 scales */
			memcpy(w + (size_t)b * tt->type_size, &(uint16_t){ (uint16_t)(0x2000 + b) }, 2);
		for (int i = 0; i < T * C; i++)
			x[i] = sinf((float)i * 0.37f);
		for (int t = 0; t < T; t++)
			qt->from_float(x + t * C, xq + t * xr, C);
		for (int t = 0; t < T; t++)
			for (int r = 0; r < R; r++)
				tt->vec_dot(C, &y[t * R + r], w + r * rb, xq + t * xr);
		for (int nt = 1; nt <= T; nt++) {
			memset(z, 0, sizeof(z));
			CHECK(isq_gemm_avx2(types[k], C, R, nt, w, rb, xq, xr, z, R) == 0);
			CHECK_MSG(memcmp(y, z, (size_t)nt * R * sizeof(float)) == 0, "%s, %d tokens", tt->name, nt);
		}
		free(w);
		free(xq);
	}
	if (!tested)
		SKIP("no AVX2 on this CPU (or ISQ_FORCE_REF)");
}
