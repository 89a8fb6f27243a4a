/* test-gguf.c - GGUF writer/reader round trip, a hand-laid file, malformed inputs, llama.cpp's files. */
#include "test.h"
#include "gguf.h"
#include "types.h"

/* ---- a tiny byte builder for hand-made files ---- */
struct bb {
	uint8_t b[4096];
	size_t n;
};
static void u32(struct bb *x, uint32_t v) { isq_put_le32(x->b + x->n, v); x->n += 4; }
static void u64(struct bb *x, uint64_t v) { isq_put_le64(x->b + x->n, v); x->n += 8; }
static void str(struct bb *x, const char *s)
{
	u64(x, strlen(s));
	memcpy(x->b + x->n, s, strlen(s));
	x->n += strlen(s);
}
static void pad(struct bb *x, size_t a) { while (x->n % a) x->b[x->n++] = 0; }

static int open_bb(struct isq_gguf *g, const struct bb *x)
{
	return isq_gguf_open_memory(g, x->b, x->n);
}

/* A valid file: 2 KV (string, u32 array), one f32 tensor [4, 2], alignment 32. */
static void valid_file(struct bb *x)
{
	memset(x, 0, sizeof(*x));
	memcpy(x->b, "GGUF", 4);
	x->n = 4;
	u32(x, 3);
	u64(x, 1);
	u64(x, 2);
	str(x, "general.architecture");
	u32(x, ISQ_GGUF_STRING);
	str(x, "llama");
	str(x, "a.list");
	u32(x, ISQ_GGUF_ARRAY);
	u32(x, ISQ_GGUF_U32);
	u64(x, 3);
	u32(x, 7);
	u32(x, 8);
	u32(x, 9);
	str(x, "w");
	u32(x, 2);
	u64(x, 4);
	u64(x, 2);
	u32(x, ISQ_TYPE_F32);
	u64(x, 0);
	pad(x, 32);
	for (int i = 0; i < 8; i++) {
		float f = (float)i * 0.5f;
		memcpy(x->b + x->n, &f, 4);
		x->n += 4;
	}
}

TEST(hand_laid_file_reads)
{
	struct bb x;
	valid_file(&x);
	struct isq_gguf *g = isq_gguf_new();
	CHECK_EQ_INT(open_bb(g, &x), 0);
	CHECK_EQ_INT(g->n_kv, 2);
	CHECK_EQ_INT(g->n_tensors, 1);
	char *arch = isq_gguf_get_str(g, "general.architecture");
	CHECK_STR(arch, "llama");
	free(arch);
	const struct isq_gguf_kv *kv = isq_gguf_find_kv(g, "a.list");
	double v = 0;
	CHECK(kv && kv->arr_n == 3 && isq_gguf_arr_num(kv, 2, &v) == 0 && v == 9);
	const struct isq_gguf_tensor *t = isq_gguf_find_tensor(g, "w");
	CHECK(t && t->ne[0] == 4 && t->ne[1] == 2 && t->nbytes == 32 && t->data == x.b + g->data_offset);
	CHECK_EQ_INT(g->data_offset % 32, 0);
	isq_gguf_free(g);
}

TEST(every_truncation_fails_cleanly)
{
	struct bb x;
	valid_file(&x);
	struct isq_gguf *g = isq_gguf_new();
	for (size_t n = 0; n < x.n; n++) {
		uint8_t *copy = malloc(n ? n : 1);
		memcpy(copy, x.b, n);
		int rc = isq_gguf_open_memory(g, copy, n);
		CHECK_MSG(rc == ISQ_EFORMAT, "truncated at %zu: rc %d", n, rc);
		CHECK(strchr(g->err.msg, '\n') == NULL && g->err.msg[0]);
		free(copy);
	}
	isq_gguf_free(g);
}

static void expect_bad(struct bb *x, const char *what, const char *needle)
{
	struct isq_gguf *g = isq_gguf_new();
	int rc = open_bb(g, x);
	CHECK_MSG(rc == ISQ_EFORMAT, "%s: rc %d", what, rc);
	CHECK_MSG(strstr(g->err.msg, needle) != NULL, "%s: message '%s' lacks '%s'", what, g->err.msg, needle);
	isq_gguf_free(g);
}

TEST(malformed_files_are_refused)
{
	struct bb x;
	valid_file(&x);
	x.b[0] = 'X';
	expect_bad(&x, "bad magic", "magic");
	valid_file(&x);
	isq_put_le32(x.b + 4, 1);
	expect_bad(&x, "version 1", "version 1");
	valid_file(&x);
	isq_put_le32(x.b + 4, 4);
	expect_bad(&x, "version 4", "version 4");
	valid_file(&x);
	isq_put_le32(x.b + 4, 0x03000000);
	expect_bad(&x, "byte-swapped", "byte-swapped");
	valid_file(&x);
	isq_put_le64(x.b + 8, UINT64_C(1) << 40);
	expect_bad(&x, "tensor count", "tensor count");
	valid_file(&x);
	isq_put_le64(x.b + 16, UINT64_C(1) << 40);
	expect_bad(&x, "kv count", "metadata count");
	valid_file(&x);
	isq_put_le64(x.b + 24, 1000); /* key length */
	expect_bad(&x, "string past EOF", "past end of file");
	/* the type of the first value: a nested array */
	valid_file(&x);
	size_t arr = 24 + 8 + strlen("general.architecture") + 4 + 8 + 5 + 8 + strlen("a.list") + 4;
	isq_put_le32(x.b + arr, ISQ_GGUF_ARRAY);
	expect_bad(&x, "nested array", "arrays of arrays");
	valid_file(&x);
	isq_put_le64(x.b + arr + 4, UINT64_C(1) << 60);
	expect_bad(&x, "array count", "past end of file");
	/* tensor info fields */
	size_t ti = arr + 4 + 8 + 12 + 8 + 1;
	valid_file(&x);
	isq_put_le32(x.b + ti, 5);
	expect_bad(&x, "5 dims", "dimensions");
	valid_file(&x);
	isq_put_le64(x.b + ti + 4, (uint64_t)-4);
	expect_bad(&x, "negative dim", "negative");
	valid_file(&x);
	isq_put_le32(x.b + ti + 4 + 16, 4);
	expect_bad(&x, "removed type id", "unknown ggml type");
	valid_file(&x);
	isq_put_le32(x.b + ti + 4 + 16, ISQ_TYPE_Q4_0);
	expect_bad(&x, "row not multiple of block", "multiple");
	valid_file(&x);
	isq_put_le64(x.b + ti + 4 + 16 + 4, 32);
	expect_bad(&x, "offset not contiguous", "expected 0");
	valid_file(&x);
	x.n -= 4;
	expect_bad(&x, "data past EOF", "past end of file");
}

TEST(duplicates_overflow_and_alignment)
{
	struct isq_gguf_writer *w = isq_gguf_writer_new();
	struct isq_buf mem = ISQ_BUF_INIT;
	struct isq_out out;
	/* a bad alignment value, written through our writer (which does not check it) */
	isq_gguf_set_u32(w, "general.alignment", 24);
	int64_t ne[2] = { 32, 1 };
	isq_gguf_writer_add_tensor(w, "t", ISQ_TYPE_F32, 1, ne);
	isq_out_open_memory(&out, &mem);
	isq_gguf_writer_begin(w, &out);
	float z[32] = { 0 };
	isq_gguf_writer_write(w, z, sizeof(z));
	isq_gguf_writer_finish(w);
	struct isq_gguf *g = isq_gguf_new();
	CHECK_EQ_INT(isq_gguf_open_memory(g, mem.data, mem.len), ISQ_EFORMAT);
	CHECK(strstr(g->err.msg, "alignment") != NULL);
	isq_gguf_free(g);
	isq_gguf_writer_free(w);
	isq_buf_release(&mem);

	/* duplicate key and duplicate tensor names, by hand */
	struct bb x;
	memset(&x, 0, sizeof(x));
	memcpy(x.b, "GGUF", 4);
	x.n = 4;
	u32(&x, 3);
	u64(&x, 0);
	u64(&x, 2);
	for (int i = 0; i < 2; i++) {
		str(&x, "k");
		u32(&x, ISQ_GGUF_U8);
		x.b[x.n++] = 1;
	}
	expect_bad(&x, "duplicate key", "duplicate metadata key 'k'");
	memset(&x, 0, sizeof(x));
	memcpy(x.b, "GGUF", 4);
	x.n = 4;
	u32(&x, 3);
	u64(&x, 2);
	u64(&x, 0);
	for (int i = 0; i < 2; i++) {
		str(&x, "t");
		u32(&x, 1);
		u64(&x, 1);
		u32(&x, ISQ_TYPE_F32);
		u64(&x, (uint64_t)i * 32);
	}
	pad(&x, 32);
	x.n += 64;
	expect_bad(&x, "duplicate tensor", "duplicate tensor name 't'");
	/* shape product overflow */
	memset(&x, 0, sizeof(x));
	memcpy(x.b, "GGUF", 4);
	x.n = 4;
	u32(&x, 3);
	u64(&x, 1);
	u64(&x, 0);
	str(&x, "big");
	u32(&x, 3);
	u64(&x, UINT64_C(1) << 31);
	u64(&x, UINT64_C(1) << 31);
	u64(&x, UINT64_C(1) << 31);
	u32(&x, ISQ_TYPE_F32);
	u64(&x, 0);
	x.n += 64;
	expect_bad(&x, "overflow", "overflows");
	/* a 64-byte name */
	memset(&x, 0, sizeof(x));
	memcpy(x.b, "GGUF", 4);
	x.n = 4;
	u32(&x, 3);
	u64(&x, 1);
	u64(&x, 0);
	str(&x, "0123456789012345678901234567890123456789012345678901234567890123");
	u32(&x, 1);
	u64(&x, 1);
	u32(&x, ISQ_TYPE_F32);
	u64(&x, 0);
	x.n += 64;
	expect_bad(&x, "long name", "at most 63");
}

TEST(writer_round_trip_every_value_type)
{
	struct isq_gguf_writer *w = isq_gguf_writer_new();
	isq_gguf_set_scalar(w, "u8", ISQ_GGUF_U8, 200);
	isq_gguf_set_scalar(w, "i8", ISQ_GGUF_I8, (uint8_t)-5);
	isq_gguf_set_scalar(w, "u16", ISQ_GGUF_U16, 60000);
	isq_gguf_set_scalar(w, "i16", ISQ_GGUF_I16, (uint16_t)-300);
	isq_gguf_set_u32(w, "u32", 4000000000u);
	isq_gguf_set_i32(w, "i32", -7);
	isq_gguf_set_f32(w, "f32", 0.25f);
	isq_gguf_set_bool(w, "bool", 1);
	isq_gguf_set_str(w, "str", "héllo");
	isq_gguf_set_u64(w, "u64", UINT64_C(1) << 40);
	isq_gguf_set_i64(w, "i64", -(INT64_C(1) << 40));
	isq_gguf_set_f64(w, "f64", 1e-300);
	const char *strs[] = { "a", "", "ccc" };
	isq_gguf_set_arr_str(w, "astr", strs, 3);
	int16_t i16s[4] = { 1, -2, 3, -4 };
	isq_gguf_set_arr(w, "ai16", ISQ_GGUF_I16, i16s, 4);
	isq_gguf_set_arr(w, "aempty", ISQ_GGUF_F32, NULL, 0);
	isq_gguf_set_str(w, "str", "replaced"); /* in place */
	isq_gguf_set_u32(w, "general.alignment", 64);
	int64_t ne1[2] = { 64, 3 }, ne2[1] = { 256 }, ne3[3] = { 32, 2, 1 };
	CHECK_EQ_INT(isq_gguf_writer_add_tensor(w, "q", ISQ_TYPE_Q8_0, 2, ne1), 0);
	CHECK_EQ_INT(isq_gguf_writer_add_tensor(w, "k", ISQ_TYPE_Q4_K, 1, ne2), 0);
	CHECK_EQ_INT(isq_gguf_writer_add_tensor(w, "h", ISQ_TYPE_F16, 3, ne3), 0);
	int64_t ne_bad[1] = { 16 };
	CHECK(isq_gguf_writer_add_tensor(w, "bad", ISQ_TYPE_Q4_0, 1, ne_bad) != 0);
	CHECK(isq_gguf_writer_add_tensor(w, "q", ISQ_TYPE_F32, 1, ne_bad) != 0);
	uint64_t expect = isq_gguf_writer_size(w);
	struct isq_buf mem = ISQ_BUF_INIT;
	struct isq_out out;
	isq_out_open_memory(&out, &mem);
	CHECK_EQ_INT(isq_gguf_writer_begin(w, &out), 0);
	uint8_t buf[1024];
	for (int i = 0; i < 1024; i++)
		buf[i] = (uint8_t)i;
	/* in odd chunk sizes, across tensor boundaries */
	size_t total = 3 * 68 + 144 + 128;
	for (size_t done = 0; done < total;) {
		size_t k = ISQ_MIN((size_t)37, total - done);
		CHECK_EQ_INT(isq_gguf_writer_write(w, buf + done % 512, k), 0);
		done += k;
	}
	CHECK(isq_gguf_writer_write(w, buf, 1) != 0);
	CHECK_EQ_INT(isq_gguf_writer_finish(w), 0);
	CHECK_EQ_INT(mem.len, expect);
	isq_gguf_writer_free(w);

	struct isq_gguf *g = isq_gguf_new();
	CHECK_EQ_INT(isq_gguf_open_memory(g, mem.data, mem.len), 0);
	CHECK_EQ_INT(g->alignment, 64);
	uint64_t u;
	int64_t i;
	double f;
	CHECK(isq_gguf_get_u64(g, "u8", &u) == 0 && u == 200);
	CHECK(isq_gguf_get_i64(g, "i8", &i) == 0 && i == -5);
	CHECK(isq_gguf_get_u64(g, "u16", &u) == 0 && u == 60000);
	CHECK(isq_gguf_get_i64(g, "i16", &i) == 0 && i == -300);
	CHECK(isq_gguf_get_u64(g, "u32", &u) == 0 && u == 4000000000u);
	CHECK(isq_gguf_get_i64(g, "i32", &i) == 0 && i == -7);
	CHECK(isq_gguf_get_f64(g, "f32", &f) == 0 && f == 0.25);
	CHECK(isq_gguf_get_u64(g, "bool", &u) == 0 && u == 1);
	CHECK(isq_gguf_get_u64(g, "u64", &u) == 0 && u == UINT64_C(1) << 40);
	CHECK(isq_gguf_get_i64(g, "i64", &i) == 0 && i == -(INT64_C(1) << 40));
	CHECK(isq_gguf_get_f64(g, "f64", &f) == 0 && f == 1e-300);
	CHECK_EQ_INT(isq_gguf_get_u64(g, "i32", &u), ISQ_EFORMAT);
	CHECK_EQ_INT(isq_gguf_get_u64(g, "missing", &u), ISQ_ENOTFOUND);
	char *s = isq_gguf_get_str(g, "str");
	CHECK_STR(s, "replaced");
	free(s);
	CHECK_STR(g->kv[8].key, "str"); /* replaced in place, order kept */
	const struct isq_gguf_kv *kv = isq_gguf_find_kv(g, "astr");
	struct isq_gguf_arr_iter it;
	const char *p;
	uint64_t len;
	isq_gguf_arr_iter_init(&it, kv);
	CHECK(isq_gguf_arr_next_str(&it, &p, &len) == 0 && len == 1 && p[0] == 'a');
	CHECK(isq_gguf_arr_next_str(&it, &p, &len) == 0 && len == 0);
	CHECK(isq_gguf_arr_next_str(&it, &p, &len) == 0 && len == 3 && !memcmp(p, "ccc", 3));
	CHECK(isq_gguf_arr_next_str(&it, &p, &len) == ISQ_ENOTFOUND);
	kv = isq_gguf_find_kv(g, "ai16");
	CHECK(kv && isq_gguf_arr_num(kv, 3, &f) == 0 && f == -4);
	kv = isq_gguf_find_kv(g, "aempty");
	CHECK(kv && kv->arr_n == 0);
	const struct isq_gguf_tensor *t = isq_gguf_find_tensor(g, "h");
	CHECK(t && t->n_dims == 2 && t->ne[0] == 32 && t->ne[1] == 2); /* trailing 1 dropped */
	t = isq_gguf_find_tensor(g, "k");
	CHECK(t && t->offset == 256 && t->nbytes == 144);
	isq_gguf_free(g);
	isq_buf_release(&mem);
}

static void copy_file(const char *path)
{
	struct isq_gguf *g = isq_gguf_new();
	CHECK_MSG(isq_gguf_open(g, path) == 0, "%s: %s", path, g->err.msg);
	struct isq_gguf_writer *w = isq_gguf_writer_new();
	for (size_t i = 0; i < g->n_kv; i++)
		CHECK_EQ_INT(isq_gguf_set_kv(w, &g->kv[i]), 0);
	for (size_t i = 0; i < g->n_tensors; i++)
		CHECK_EQ_INT(isq_gguf_writer_add_tensor(w, g->tensors[i].name, g->tensors[i].type, g->tensors[i].n_dims,
							 g->tensors[i].ne),
			     0);
	struct isq_buf mem = ISQ_BUF_INIT;
	struct isq_out out;
	isq_out_open_memory(&out, &mem);
	CHECK_EQ_INT(isq_gguf_writer_begin(w, &out), 0);
	for (size_t i = 0; i < g->n_tensors; i++)
		CHECK_EQ_INT(isq_gguf_writer_write(w, g->tensors[i].data, g->tensors[i].nbytes), 0);
	CHECK_EQ_INT(isq_gguf_writer_finish(w), 0);
	/* same content in the same order: the very same bytes as llama.cpp wrote */
	CHECK_MSG(mem.len == g->file_size && !memcmp(mem.data, g->map.data, mem.len), "%s: copy differs", path);
	isq_buf_release(&mem);
	isq_gguf_writer_free(w);
	isq_gguf_free(g);
}

TEST(llama_cpp_files_read_and_copy_byte_for_byte)
{
	char path[4096];
	if (!test_shared_path(path, sizeof(path), "ref/llamacpp-stories260K/stories260K-f32.gguf"))
		SKIP("../shared/ref/llamacpp-stories260K not present");
	struct isq_gguf *g = isq_gguf_new();
	CHECK_EQ_INT(isq_gguf_open(g, path), 0);
	char *arch = isq_gguf_get_str(g, "general.architecture");
	CHECK_STR(arch, "llama");
	free(arch);
	const struct isq_gguf_kv *tok = isq_gguf_find_kv(g, "tokenizer.ggml.tokens");
	CHECK(tok && tok->arr_type == ISQ_GGUF_STRING && tok->arr_n == 512);
	CHECK_EQ_INT(g->n_tensors, 48);
	isq_gguf_free(g);
	copy_file(path);
	test_shared_path(path, sizeof(path), "ref/llamacpp-stories260K/stories260K-Q4_K_M.gguf");
	copy_file(path);
	test_shared_path(path, sizeof(path), "ref/llamacpp-stories260K/stories260K-Q4_0.gguf");
	g = isq_gguf_new();
	CHECK_EQ_INT(isq_gguf_open(g, path), 0);
	const struct isq_gguf_tensor *t = isq_gguf_find_tensor(g, "blk.0.attn_q.weight");
	CHECK(t && t->type == ISQ_TYPE_Q4_0);
	t = isq_gguf_find_tensor(g, "blk.0.ffn_down.weight");
	CHECK(t && t->type == ISQ_TYPE_F16 && t->ne[0] == 172);
	isq_gguf_free(g);
}
