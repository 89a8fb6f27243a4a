/*
 * test-uqff.c - UQFF 1.2 directories: shard images built by hand from
 * mistralrs-notes §1 are read back, malformed ones refused; directories
 * written from a generated model are checked tensor by tensor.
 */
#include "test.h"
#include "fp.h"
#include "uqff.h"

#include <cJSON.h>
#include <dirent.h>

/* ---- hand-built shard images --------------------------------------------------------------- */

struct spec {
	const char *name;
	const char *dtype;
	int rank;
	int64_t shape[3];
	const void *data;
	size_t nbytes;
};

/* A safetensors image written without the library: header as given, then the data in order. */
static void image(const struct spec *s, int n, struct isq_buf *out)
{
	struct isq_buf h = ISQ_BUF_INIT;
	size_t off = 0;
	isq_buf_putc(&h, '{');
	for (int i = 0; i < n; i++) {
		isq_buf_printf(&h, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "", s[i].name, s[i].dtype);
		for (int d = 0; d < s[i].rank; d++)
			isq_buf_printf(&h, "%s%lld", d ? "," : "", (long long)s[i].shape[d]);
		isq_buf_printf(&h, "],\"data_offsets\":[%zu,%zu]}", off, off + s[i].nbytes);
		off += s[i].nbytes;
	}
	isq_buf_putc(&h, '}');
	while (h.len % 8)
		isq_buf_putc(&h, ' ');
	uint8_t len[8];
	isq_put_le64(len, h.len);
	isq_buf_reset(out);
	isq_buf_append(out, len, 8);
	isq_buf_append(out, h.data, h.len);
	for (int i = 0; i < n; i++)
		isq_buf_append(out, s[i].data, s[i].nbytes);
	isq_buf_release(&h);
}

static const uint8_t v1[4] = { 1, 0, 0, 0 }, v2[4] = { 2, 0, 0, 0 }, v0[4] = { 0 }, v3[4] = { 3, 0, 0, 0 };
static const uint8_t tag0[1] = { 0 }, tag1[1] = { 1 }, tag9[1] = { 9 };
static const uint8_t code_q8_0[4] = { 8, 0, 0, 0 }, code_iq4nl[4] = { 20, 0, 0, 0 };
static const uint8_t shape_1x32[8] = { 1, 0, 0, 0, 32, 0, 0, 0 };
static uint8_t q8_block[34];

/* One Q8_0 layer "x" (format 0) as mistral.rs's GgufMatMul::serialize_uqff lays it out. */
static int base_spec(struct spec *s)
{
	/* d = 0.5 (f16 0x3800), q[i] = i - 16 */
	q8_block[0] = 0x00;
	q8_block[1] = 0x38;
	for (int i = 0; i < 32; i++)
		q8_block[2 + i] = (uint8_t)(int8_t)(i - 16);
	struct spec b[] = {
		{ "uqff.version.major", "U32", 0, { 0 }, v1, 4 },  { "uqff.version.minor", "U32", 0, { 0 }, v2, 4 },
		{ "uqff.version.patch", "U32", 0, { 0 }, v0, 4 },  { "x.weight.dtype", "U32", 0, { 0 }, code_q8_0, 4 },
		{ "x.weight.shape", "U32", 1, { 2 }, shape_1x32, 8 }, { "x.weight", "U8", 1, { 34 }, q8_block, 34 },
		{ "x.weight.format", "U8", 0, { 0 }, tag0, 1 },
	};
	memcpy(s, b, sizeof(b));
	return (int)ISQ_ARRAY_SIZE(b);
}

TEST(hand_built_gguf_entry_reads_and_decodes)
{
	struct spec s[16];
	int n = base_spec(s);
	struct isq_buf img = ISQ_BUF_INIT;
	image(s, n, &img);
	float out[32];
	size_t nl = 0;
	struct isq_errbuf e = { 0 };
	int rc = isq_uqff_check_memory(img.data, img.len, out, 32, &nl, &e);
	CHECK_MSG(rc == 0, "%s", isq_errbuf_msg(&e));
	CHECK_EQ_INT(nl, 1);
	for (int i = 0; i < 32; i++)
		CHECK_NEAR(out[i], 0.5 * (i - 16), 0);
	isq_buf_release(&img);
}

TEST(hand_built_unquant_entry_with_bias)
{
	uint16_t w[2 * 32], b[2];
	for (int i = 0; i < 64; i++)
		w[i] = isq_fp32_to_bf16((float)i / 4);
	b[0] = b[1] = isq_fp32_to_bf16(1.0f);
	struct spec s[] = {
		{ "uqff.version.major", "U32", 0, { 0 }, v1, 4 }, { "uqff.version.minor", "U32", 0, { 0 }, v1, 4 },
		{ "uqff.version.patch", "U32", 0, { 0 }, v0, 4 }, { "y.bias", "BF16", 1, { 2 }, b, 4 },
		{ "y.weight", "BF16", 2, { 2, 32 }, w, 128 },	  { "y.weight.format", "U8", 0, { 0 }, tag1, 1 },
	};
	struct isq_buf img = ISQ_BUF_INIT;
	image(s, (int)ISQ_ARRAY_SIZE(s), &img);
	float out[64];
	size_t nl = 0;
	struct isq_errbuf e = { 0 };
	int rc = isq_uqff_check_memory(img.data, img.len, out, 64, &nl, &e);
	CHECK_MSG(rc == 0, "%s", isq_errbuf_msg(&e)); /* minor 1 is older: accepted */
	CHECK_EQ_INT(nl, 1);
	CHECK_NEAR(out[63], 63.0 / 4, 0);
	isq_buf_release(&img);
}

/* Replace, drop (data NULL) or add one tensor of the base spec, then expect a refusal naming `want`. */
static void expect_refused(const char *name, const char *dtype, int rank, int64_t dim, const void *data, size_t nb,
			   const char *want, int line)
{
	struct spec s[16];
	int n = base_spec(s), found = 0;
	for (int i = 0; i < n; i++)
		if (!strcmp(s[i].name, name)) {
			found = 1;
			if (!data) {
				memmove(&s[i], &s[i + 1], (size_t)(n - i - 1) * sizeof(*s));
				n--;
			} else {
				s[i] = (struct spec){ name, dtype, rank, { dim }, data, nb };
			}
			break;
		}
	if (!found)
		s[n++] = (struct spec){ name, dtype, rank, { dim }, data, nb };
	struct isq_buf img = ISQ_BUF_INIT;
	image(s, n, &img);
	float out[32];
	size_t nl;
	struct isq_errbuf e = { 0 };
	int rc = isq_uqff_check_memory(img.data, img.len, out, 32, &nl, &e);
	CHECK_MSG(rc == ISQ_EFORMAT && strstr(e.msg, want), "line %d: rc %d, message '%s', wanted '%s'", line, rc,
		  e.msg, want);
	isq_buf_release(&img);
}

TEST(malformed_sets_are_refused)
{
	static const uint8_t b33[33] = { 0 }, one[1] = { 0 };
	expect_refused("uqff.version.major", NULL, 0, 0, NULL, 0, "no 'uqff.version.major'", __LINE__);
	expect_refused("uqff.version.patch", NULL, 0, 0, NULL, 0, "no 'uqff.version.patch'", __LINE__);
	expect_refused("uqff.version.minor", "U32", 0, 0, v3, 4, "newer than 1.2", __LINE__);
	expect_refused("uqff.version.major", "U32", 0, 0, v2, 4, "incompatible", __LINE__);
	expect_refused("uqff.version.minor", "U8", 0, 0, one, 1, "not a U32 scalar", __LINE__);
	expect_refused("x.weight.extra", "U8", 0, 0, one, 1, "unexpected tensor 'x.weight.extra'", __LINE__);
	expect_refused("x.weight", "U8", 1, 33, b33, 33, "the shape needs 34", __LINE__);
	expect_refused("x.weight.format", "U8", 0, 0, tag9, 1, "unknown format tag 9", __LINE__);
	expect_refused("x.weight.dtype", "U32", 0, 0, code_iq4nl, 4, "GGML type 20", __LINE__);
	expect_refused("x.weight.shape", NULL, 0, 0, NULL, 0, "of the 4 weight tensors", __LINE__);
	expect_refused("x.weight.format", NULL, 0, 0, NULL, 0, "belongs to no layer", __LINE__);
	expect_refused("z.weight.scales", "U8", 0, 0, one, 1, "belongs to no layer", __LINE__);

	/* pre-1.0: every name numeric */
	struct spec s[] = { { "0", "U8", 1, { 1 }, one, 1 }, { "1", "U8", 1, { 1 }, one, 1 } };
	struct isq_buf img = ISQ_BUF_INIT;
	image(s, 2, &img);
	size_t nl;
	float out[1];
	struct isq_errbuf e = { 0 };
	CHECK(isq_uqff_check_memory(img.data, img.len, out, 1, &nl, &e) == ISQ_EFORMAT && strstr(e.msg, "pre-1.0"));

	/* a truncated image */
	struct spec b[16];
	image(b, base_spec(b), &img);
	CHECK(isq_uqff_check_memory(img.data, img.len - 1, out, 1, &nl, &e) < 0);
	isq_buf_release(&img);
}

static void write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (f) {
		fwrite(p, 1, n, f);
		fclose(f);
	}
}

TEST(duplicates_across_shards)
{
	char dir[4200], path[4300];
	snprintf(dir, sizeof(dir), "%s/dup", test_tmpdir());
	mkdir(dir, 0777);
	struct spec s[16];
	int n = base_spec(s);
	struct isq_buf img = ISQ_BUF_INIT;
	image(s, n, &img);
	snprintf(path, sizeof(path), "%s/q8_0-0.uqff", dir);
	write_file(path, img.data, img.len);
	/* shard 1 repeats the version scalars (allowed when equal) and one layer tensor (refused) */
	struct spec t[] = { s[0], s[1], s[2], { "x.weight.dtype", "U32", 0, { 0 }, code_q8_0, 4 } };
	image(t, 3, &img);
	snprintf(path, sizeof(path), "%s/q8_0-1.uqff", dir);
	write_file(path, img.data, img.len);
	struct isq_uqff u;
	CHECK_MSG(isq_uqff_open(&u, dir) == 0, "%s", isq_errbuf_msg(&u.err));
	if (u.n_sets == 1)
		CHECK_EQ_INT(u.sets[0].n_shards, 2);
	isq_uqff_release(&u);
	image(t, 4, &img);
	write_file(path, img.data, img.len);
	CHECK(isq_uqff_open(&u, dir) == ISQ_EFORMAT && strstr(u.err.msg, "duplicate tensor 'x.weight.dtype'"));
	isq_uqff_release(&u);
	/* unequal version scalars are a conflict */
	t[1].data = v1;
	image(t, 3, &img);
	write_file(path, img.data, img.len);
	CHECK(isq_uqff_open(&u, dir) == ISQ_EFORMAT && strstr(u.err.msg, "duplicate tensor 'uqff.version.minor'"));
	isq_uqff_release(&u);
	isq_buf_release(&img);
}

TEST(dtype_rank_follows_the_crate)
{
	/* U8 < F8_E4M3 < I16 < F16 < BF16 < I32 < U32 < F32 < F64 < I64 */
	static const enum isq_st_dtype up[] = { ISQ_ST_U8,  ISQ_ST_F8_E4M3, ISQ_ST_I16, ISQ_ST_F16, ISQ_ST_BF16,
						ISQ_ST_I32, ISQ_ST_U32,	    ISQ_ST_F32, ISQ_ST_F64, ISQ_ST_I64 };
	for (size_t i = 1; i < ISQ_ARRAY_SIZE(up); i++)
		CHECK(isq_uqff_dtype_rank(up[i - 1]) < isq_uqff_dtype_rank(up[i]));
	CHECK_STR(isq_uqff_type_label(ISQ_TYPE_Q4_K), "q4k");
	CHECK_STR(isq_uqff_type_label(ISQ_TYPE_Q8_0), "q8_0");
	CHECK_STR(isq_uqff_type_label(ISQ_TYPE_FP8), "fp8");
	CHECK(isq_uqff_type_label(ISQ_TYPE_IQ4_NL) == NULL);
	CHECK_EQ_INT(isq_uqff_format_of(ISQ_TYPE_MXFP4), 6);
	CHECK_EQ_INT(isq_uqff_format_of(ISQ_TYPE_HQQ8), 2);
}

/* ---- writing a generated model ---------------------------------------------------------------- */

#define H 256
#define FF 330 /* down_proj rows of 330: not a multiple of 32, so every type falls back to F16 there */
#define V 96

struct mt {
	const char *name;
	int rank;
	int64_t shape[2];
};

static const struct mt model_tensors[] = {
	{ "lm_head.weight", 2, { V, H } },
	{ "model.embed_tokens.weight", 2, { V, H } },
	{ "model.layers.0.input_layernorm.weight", 1, { H } },
	{ "model.layers.0.mlp.down_proj.weight", 2, { H, FF } },
	{ "model.layers.0.mlp.gate_proj.weight", 2, { FF, H } },
	{ "model.layers.0.mlp.up_proj.weight", 2, { FF, H } },
	{ "model.layers.0.post_attention_layernorm.weight", 1, { H } },
	{ "model.layers.0.self_attn.k_proj.weight", 2, { H / 2, H } },
	{ "model.layers.0.self_attn.o_proj.weight", 2, { H, H } },
	{ "model.layers.0.self_attn.q_proj.bias", 1, { H } },
	{ "model.layers.0.self_attn.q_proj.weight", 2, { H, H } },
	{ "model.layers.0.self_attn.v_proj.weight", 2, { H / 2, H } },
	{ "model.norm.weight", 1, { H } },
};

static float src_value(size_t t, size_t i)
{
	uint32_t x = (uint32_t)(t * 2654435761u + i * 40503u + 12345u);
	x ^= x >> 13;
	x *= 0x5bd1e995u;
	x ^= x >> 15;
	return ((float)(x % 20001u) / 10000.0f - 1.0f) * 0.05f;
}

/* A one-layer llama in HF layout, F32 weights; nan_in: this tensor gets a NaN. */
static void make_model(const char *dir, const char *nan_in)
{
	char path[4300];
	mkdir(dir, 0777);
	snprintf(path, sizeof(path), "%s/config.json", dir);
	const char *cfg = "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"hidden_size\":256,"
			  "\"intermediate_size\":330,\"num_hidden_layers\":1,\"num_attention_heads\":4,"
			  "\"num_key_value_heads\":2,\"vocab_size\":96,\"max_position_embeddings\":128,"
			  "\"rms_norm_eps\":1e-05,\"rope_theta\":10000.0,\"tie_word_embeddings\":false,"
			  "\"attention_bias\":true,\"torch_dtype\":\"float32\","
			  "\"quantization_config\":{\"quant_method\":\"fp8\"},"
			  "\"extra\":{\"quantization_config\":{\"bits\":4},\"keep\":1}}";
	write_file(path, cfg, strlen(cfg));
	snprintf(path, sizeof(path), "%s/tokenizer.json", dir);
	write_file(path, "{\"model\":{}}", 12);
	struct isq_st_writer *w = isq_st_writer_new();
	for (size_t t = 0; t < ISQ_ARRAY_SIZE(model_tensors); t++)
		isq_st_writer_add(w, model_tensors[t].name, ISQ_ST_F32, model_tensors[t].rank, model_tensors[t].shape);
	struct isq_out out;
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	isq_out_open(&out, path);
	isq_st_writer_begin(w, &out);
	for (size_t t = 0; t < ISQ_ARRAY_SIZE(model_tensors); t++) {
		size_t n = (size_t)model_tensors[t].shape[0] * (model_tensors[t].rank == 2 ? (size_t)model_tensors[t].shape[1] : 1);
		float *x = malloc(n * sizeof(float));
		for (size_t i = 0; i < n; i++)
			x[i] = src_value(t, i);
		if (nan_in && !strcmp(nan_in, model_tensors[t].name))
			x[n / 2] = NAN;
		isq_st_writer_write(w, x, n * sizeof(float));
		free(x);
	}
	isq_st_writer_finish(w);
	isq_out_commit(&out);
	isq_st_writer_free(w);
}

static const char *model_dir(void)
{
	static char dir[4200];
	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "%s/model", test_tmpdir());
		make_model(dir, NULL);
	}
	return dir;
}

/* Write model -> out with type; returns the status, message in *e. */
static int write_uqff(const char *model, const char *type, const char *out, uint64_t shard_size,
		      struct isq_uqff_write_result *res, struct isq_errbuf *e)
{
	struct isq_model m;
	if (isq_model_open(&m, model)) {
		isq_errbuf_set(e, m.err.code, "%s", m.err.msg);
		return m.err.code;
	}
	struct isq_plan plans[2];
	int np = 0;
	struct isq_plan_opts po = { .type = type, .format = ISQ_FORMAT_UQFF };
	int rc = isq_uqff_plans_build(&m, &po, plans, &np, e);
	if (!rc) {
		const struct isq_plan *pp[2] = { &plans[0], &plans[1] };
		struct isq_uqff_write_opts wo = { .model = &m, .plans = pp, .n_plans = np, .output = out,
						  .shard_size = shard_size };
		rc = isq_uqff_write(&wo, res, e);
	}
	for (int k = 0; k < np; k++)
		isq_plan_release(&plans[k]);
	isq_model_release(&m);
	return rc;
}

static int hidden_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	while (d && (de = readdir(d)))
		n += de->d_name[0] == '.' && strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	if (d)
		closedir(d);
	return n;
}

static size_t src_index(const char *name)
{
	for (size_t t = 0; t < ISQ_ARRAY_SIZE(model_tensors); t++)
		if (!strcmp(model_tensors[t].name, name))
			return t;
	return 0;
}

/* Relative RMS error of a layer against the generated source. */
static double layer_error(const struct isq_uqff_layer *l)
{
	char name[256];
	snprintf(name, sizeof(name), "%s.weight", l->key);
	size_t t = src_index(name);
	float *x = malloc((size_t)l->numel * sizeof(float));
	struct isq_errbuf e = { 0 };
	if (isq_uqff_dequantize(l, x, &e)) {
		free(x);
		return 1e9;
	}
	double num = 0, den = 0;
	for (uint64_t i = 0; i < l->numel; i++) {
		double r = src_value(t, (size_t)i), d = x[i] - r;
		num += d * d;
		den += r * r;
	}
	free(x);
	return sqrt(num / den);
}

TEST(write_q4_k_layout_matches_mistralrs)
{
	char out[4300], path[4400];
	snprintf(out, sizeof(out), "%s/q4k", test_tmpdir());
	struct isq_uqff_write_result res;
	struct isq_errbuf e = { 0 };
	int rc = write_uqff(model_dir(), "q4_k", out, 0, &res, &e);
	CHECK_MSG(rc == 0, "%s", isq_errbuf_msg(&e));
	if (rc)
		return;
	CHECK_EQ_INT(res.n_layers, 9);
	CHECK_EQ_INT(res.n_fallbacks, 1); /* down_proj as Unquant F16 */
	CHECK_EQ_INT(hidden_entries(test_tmpdir()), 0);
	CHECK_EQ_INT(hidden_entries(out), 0);

	/* the shard: safetensors read by the plain reader, in the crate's data order */
	struct isq_safetensors *st = isq_st_new();
	snprintf(path, sizeof(path), "%s/q4k-0.uqff", out);
	CHECK_MSG(isq_st_open(st, path) == 0, "%s", isq_errbuf_msg(&st->err));
	CHECK_EQ_INT(st->n_metadata, 3);
	if (st->n_metadata == 3) {
		CHECK_STR(st->metadata[0].key, "uqff.producer");
		CHECK_STR(st->metadata[1].key, "uqff.version");
		CHECK_STR(st->metadata[1].value, "1.2.0");
	}
	for (size_t i = 1; i < st->n_tensors; i++) {
		const struct isq_st_tensor *a = &st->tensors[i - 1], *b = &st->tensors[i];
		int ra = isq_uqff_dtype_rank(a->dtype), rb = isq_uqff_dtype_rank(b->dtype);
		CHECK_MSG(ra > rb || (ra == rb && strcmp(a->name, b->name) < 0), "'%s' before '%s'", a->name, b->name);
		CHECK(a->file_offset + a->nbytes == b->file_offset);
	}
	const struct isq_st_tensor *t = isq_st_find(st, "uqff.version.minor");
	CHECK(t && t->dtype == ISQ_ST_U32 && t->n_dims == 0 && isq_le32(t->data) == 2);
	t = isq_st_find(st, "model.layers.0.self_attn.q_proj.weight.dtype");
	CHECK(t && isq_le32(t->data) == ISQ_TYPE_Q4_K);
	t = isq_st_find(st, "model.layers.0.self_attn.q_proj.weight.shape");
	CHECK(t && t->n_dims == 1 && t->shape[0] == 2 && isq_le32(t->data) == H && isq_le32(t->data + 4) == H);
	t = isq_st_find(st, "model.layers.0.self_attn.q_proj.bias");
	CHECK(t && t->dtype == ISQ_ST_F32 && t->shape[0] == H);
	t = isq_st_find(st, "model.embed_tokens.weight.dtype");
	CHECK(t && isq_le32(t->data) == ISQ_TYPE_Q6_K); /* promoted, as mistral.rs does */
	t = isq_st_find(st, "model.layers.0.mlp.down_proj.weight");
	CHECK(t && t->dtype == ISQ_ST_F16 && t->n_dims == 2 && t->shape[1] == FF);
	CHECK(isq_st_find(st, "model.layers.0.mlp.down_proj.weight.dtype") == NULL);
	/* the payload is the quantizer's, byte for byte */
	t = isq_st_find(st, "model.layers.0.self_attn.q_proj.weight");
	if (t) {
		size_t q = src_index("model.layers.0.self_attn.q_proj.weight");
		float *x = malloc((size_t)H * H * sizeof(float));
		uint8_t *b = malloc(t->nbytes);
		for (size_t i = 0; i < (size_t)H * H; i++)
			x[i] = src_value(q, i);
		size_t wr = 0;
		CHECK(isq_quantize(ISQ_TYPE_Q4_K, x, b, H, H, NULL, &wr, &e) == 0 && wr == t->nbytes);
		CHECK(memcmp(b, t->data, t->nbytes) == 0);
		free(x);
		free(b);
	}
	isq_st_free(st);

	/* residual: the norms only */
	st = isq_st_new();
	snprintf(path, sizeof(path), "%s/residual.safetensors", out);
	CHECK(isq_st_open(st, path) == 0);
	CHECK_EQ_INT(st->n_tensors, 3);
	CHECK(isq_st_find(st, "model.norm.weight") != NULL);
	CHECK(isq_st_find(st, "model.layers.0.self_attn.q_proj.bias") == NULL);
	isq_st_free(st);

	/* config.json without any quantization_config */
	struct isq_buf text = ISQ_BUF_INIT;
	snprintf(path, sizeof(path), "%s/config.json", out);
	CHECK(isq_read_file(path, &text, &e) == 0);
	CHECK(text.data && !strstr(text.data, "quantization_config") && strstr(text.data, "\"keep\""));
	snprintf(path, sizeof(path), "%s/tokenizer.json", out);
	CHECK(isq_path_exists(path));

	/* the report */
	snprintf(path, sizeof(path), "%s/uqff_report.json", out);
	CHECK(isq_read_file(path, &text, &e) == 0);
	cJSON *r = cJSON_Parse(text.data);
	cJSON *o = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "outputs"), 0);
	CHECK(cJSON_GetObjectItem(r, "schema") && cJSON_GetObjectItem(r, "schema")->valuedouble == 1);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(o, "quant")), "q4k");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "shards"), 0)), "q4k-0.uqff");
	CHECK(cJSON_GetObjectItem(o, "fallback_count") && cJSON_GetObjectItem(o, "fallback_count")->valuedouble == 1);
	cJSON *fb = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "fallbacks"), 0);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(fb, "module")), "model.layers.0.mlp.down_proj");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(fb, "to")), "unquant");
	cJSON_Delete(r);
	isq_buf_release(&text);

	/* read back: verify, then every layer decodes close to the source */
	struct isq_uqff u;
	CHECK_MSG(isq_uqff_open(&u, out) == 0 && isq_uqff_verify(&u) == 0, "%s", isq_errbuf_msg(&u.err));
	if (u.n_sets == 1) {
		for (size_t i = 0; i < u.sets[0].n_layers; i++) {
			const struct isq_uqff_layer *l = &u.sets[0].layers[i];
			double err = layer_error(l);
			double tol = l->format == ISQ_UQFF_UNQUANT ? 1e-3 : 0.12;
			CHECK_MSG(err < tol, "%s (%s): relative error %g", l->key, l->label, err);
		}
		const struct isq_uqff_layer *q = isq_uqff_find_layer(&u.sets[0], "model.layers.0.self_attn.q_proj");
		CHECK(q && q->bias && q->format == ISQ_UQFF_GGUF && !strcmp(q->label, "q4k"));
	}
	isq_uqff_release(&u);
}

/* Write, verify and decode every layer of the model in each type; 1 if the plan refused a flat-layout type. */
static void round_trip_types(const char *const *types, size_t nt)
{
	for (size_t k = 0; k < nt; k++) {
		char out[4300];
		snprintf(out, sizeof(out), "%s/all-%s", test_tmpdir(), types[k]);
		struct isq_errbuf e = { 0 };
		int rc = write_uqff(model_dir(), types[k], out, 0, NULL, &e);
		CHECK_MSG(rc == 0, "%s: %s", types[k], isq_errbuf_msg(&e));
		if (rc)
			continue;
		struct isq_uqff u;
		rc = isq_uqff_open(&u, out);
		rc = rc ? rc : isq_uqff_verify(&u);
		CHECK_MSG(rc == 0, "%s: %s", types[k], isq_errbuf_msg(&u.err));
		if (rc) {
			isq_uqff_release(&u);
			continue;
		}
		CHECK_EQ_INT(u.n_sets, 1);
		CHECK_EQ_INT(u.sets[0].n_layers, 9);
		/* 2-bit types are coarse; the bound only catches a broken layout */
		double tol = strstr(types[k], "2") ? 0.6 : 0.3;
		for (size_t i = 0; i < u.sets[0].n_layers; i++) {
			double err = layer_error(&u.sets[0].layers[i]);
			CHECK_MSG(err < tol, "%s: %s: relative error %g", types[k], u.sets[0].layers[i].key, err);
		}
		isq_uqff_release(&u);
	}
}

TEST(every_uqff_type_round_trips)
{
	static const char *const types[] = { "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q8_1", "q2_k", "q3_k",
					     "q5_k", "q6_k", "q8_k", "fp8",  "afq2", "afq3", "afq4", "afq6",
					     "afq8", "mxfp4", "f32", "f16", "bf16" };
	round_trip_types(types, ISQ_ARRAY_SIZE(types));
}

TEST(hqq_and_f8q8_on_rows_of_330)
{
	/* HQQ needs numel % 64 and F8Q8 pads the flat tensor, so a 330-long row is fine for both */
	static const char *const types[] = { "hqq4", "hqq8", "f8q8" };
	round_trip_types(types, ISQ_ARRAY_SIZE(types));
}

TEST(shorthand_writes_both_variants_sharing_residual)
{
	char out[4300];
	snprintf(out, sizeof(out), "%s/four", test_tmpdir());
	struct isq_errbuf e = { 0 };
	CHECK_MSG(write_uqff(model_dir(), "4", out, 0, NULL, &e) == 0, "%s", isq_errbuf_msg(&e));
	struct isq_uqff u;
	CHECK_MSG(isq_uqff_open(&u, out) == 0 && isq_uqff_verify(&u) == 0, "%s", isq_errbuf_msg(&u.err));
	CHECK_EQ_INT(u.n_sets, 2);
	if (u.n_sets == 2) {
		CHECK_STR(u.sets[0].stem, "afq4");
		CHECK_STR(u.sets[1].stem, "q4k");
		const struct isq_uqff_layer *l = isq_uqff_find_layer(&u.sets[0], "model.embed_tokens");
		CHECK(l && l->type == ISQ_TYPE_AFQ6); /* AFQ4's promotion */
	}
	CHECK(u.residual && u.residual->n_tensors == 3);
	isq_uqff_release(&u);
	/* a .uqff name cannot take two types */
	snprintf(out, sizeof(out), "%s/four.uqff", test_tmpdir());
	CHECK(write_uqff(model_dir(), "4", out, 0, NULL, &e) == ISQ_EINVAL);
}

TEST(shards_cut_like_mistralrs_and_output_is_deterministic)
{
	char a[4300], b[4300], p[4400], q[4400];
	snprintf(a, sizeof(a), "%s/cut-a", test_tmpdir());
	snprintf(b, sizeof(b), "%s/cut-b.uqff", test_tmpdir());
	struct isq_errbuf e = { 0 };
	const uint64_t cap = 40000;
	CHECK_MSG(write_uqff(model_dir(), "q8_0", a, cap, NULL, &e) == 0, "%s", isq_errbuf_msg(&e));
	struct isq_uqff u;
	CHECK_MSG(isq_uqff_open(&u, a) == 0 && isq_uqff_verify(&u) == 0, "%s", isq_errbuf_msg(&u.err));
	if (u.n_sets == 1) {
		const struct isq_uqff_set *s = &u.sets[0];
		CHECK(s->n_shards > 3);
		for (int k = 0; k < s->n_shards; k++) {
			uint64_t bytes = 0, largest = 0;
			for (size_t i = 0; i < s->shards[k]->n_tensors; i++) {
				bytes += s->shards[k]->tensors[i].nbytes;
				largest = ISQ_MAX(largest, s->shards[k]->tensors[i].nbytes);
			}
			CHECK_MSG(bytes <= cap || bytes == largest || bytes - largest < cap, "shard %d: %llu bytes", k,
				  (unsigned long long)bytes);
			CHECK((isq_st_find(s->shards[k], "uqff.version.major") != NULL) == (k == 0));
		}
	}
	isq_uqff_release(&u);
	/* PATH/NAME.uqff: NAME-<n>.uqff beside it, the same bytes */
	CHECK_MSG(write_uqff(model_dir(), "q8_0", b, cap, NULL, &e) == 0, "%s", isq_errbuf_msg(&e));
	for (int k = 0; k < 2; k++) {
		struct isq_buf x = ISQ_BUF_INIT, y = ISQ_BUF_INIT;
		snprintf(p, sizeof(p), "%s/q8_0-%d.uqff", a, k);
		snprintf(q, sizeof(q), "%s/cut-b-%d.uqff", test_tmpdir(), k);
		CHECK(isq_read_file(p, &x, &e) == 0 && isq_read_file(q, &y, &e) == 0);
		CHECK(x.len == y.len && x.len && !memcmp(x.data, y.data, x.len));
		isq_buf_release(&x);
		isq_buf_release(&y);
	}
}

TEST(failed_write_leaves_nothing)
{
	char model[4300], out[4300];
	snprintf(model, sizeof(model), "%s/nanmodel", test_tmpdir());
	make_model(model, "model.layers.0.mlp.up_proj.weight");
	snprintf(out, sizeof(out), "%s/never", test_tmpdir());
	struct isq_errbuf e = { 0 };
	int rc = write_uqff(model, "q8_0", out, 0, NULL, &e);
	CHECK_MSG(rc == ISQ_EINVAL && strstr(e.msg, "up_proj"), "rc %d: %s", rc, e.msg);
	CHECK(!isq_path_exists(out));
	CHECK_EQ_INT(hidden_entries(test_tmpdir()), 0);
	/* into an existing directory: its other files stay, old shards of the stem go */
	snprintf(out, sizeof(out), "%s/existing", test_tmpdir());
	mkdir(out, 0777);
	char p[4400];
	snprintf(p, sizeof(p), "%s/notes.txt", out);
	write_file(p, "keep", 4);
	snprintf(p, sizeof(p), "%s/q8_0-7.uqff", out);
	write_file(p, "junk", 4);
	rc = write_uqff(model, "q8_0", out, 0, NULL, &e);
	CHECK(rc == ISQ_EINVAL && isq_path_exists(p));
	CHECK_EQ_INT(hidden_entries(out), 0);
	rc = write_uqff(model_dir(), "q8_0", out, 0, NULL, &e);
	CHECK_MSG(rc == 0, "%s", isq_errbuf_msg(&e));
	snprintf(p, sizeof(p), "%s/notes.txt", out);
	CHECK(isq_path_exists(p));
	snprintf(p, sizeof(p), "%s/q8_0-7.uqff", out);
	CHECK(!isq_path_exists(p)); /* an old shard of the stem would break the new set's numbering */
	snprintf(p, sizeof(p), "%s/q8_0-0.uqff", out);
	CHECK(isq_path_exists(p));
	CHECK_EQ_INT(hidden_entries(out), 0);
}
