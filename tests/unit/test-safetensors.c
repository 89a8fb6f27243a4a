/* test-safetensors.c - round trips of every dtype, malformed headers, shards, the shared models. */
#include "test.h"
#include "safetensors.h"
#include "types.h"

#include <sys/stat.h>

/* A file image: 8-byte length, the header text as given, then `data_len` bytes. */
static size_t image(uint8_t *buf, const char *hdr, size_t data_len)
{
	size_t n = strlen(hdr);
	isq_put_le64(buf, n);
	memcpy(buf + 8, hdr, n);
	memset(buf + 8 + n, 0x11, data_len);
	return 8 + n + data_len;
}

static void expect_bad(const char *hdr, size_t data_len, const char *needle)
{
	static uint8_t buf[8192];
	size_t n = image(buf, hdr, data_len);
	struct isq_safetensors *st = isq_st_new();
	int rc = isq_st_open_memory(st, buf, n);
	CHECK_MSG(rc == ISQ_EFORMAT, "%s: rc %d", hdr, rc);
	CHECK_MSG(strstr(st->err.msg, needle) != NULL, "'%s' lacks '%s'", st->err.msg, needle);
	CHECK(strchr(st->err.msg, '\n') == NULL);
	isq_st_free(st);
}

TEST(malformed_headers)
{
	expect_bad("{\"a\":{\"dtype\":\"F12\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype 'F12'");
	expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "non-negative integers");
	expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "non-negative integers");
	expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4, "overflows");
	expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "past end of file");
	expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "bytes of data for 2");
	expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
		   "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}",
		   6, "overlaps");
	expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "gap");
	expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
		   "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
		   8, "duplicate tensor name 'a'");
	expect_bad("{\"__metadata__\":{\"k\":1}}", 0, "not a string");
	expect_bad("{\"a\":", 0, "not valid JSON");
	expect_bad("[1,2]", 0, "not a JSON object");
	expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, "begin <= end");

	/* header length beyond the file, and beyond the cap */
	uint8_t b[64];
	struct isq_safetensors *st = isq_st_new();
	isq_put_le64(b, 1000);
	memcpy(b + 8, "{}", 2);
	CHECK_EQ_INT(isq_st_open_memory(st, b, 10), ISQ_EFORMAT);
	CHECK(strstr(st->err.msg, "exceeds file size") != NULL);
	CHECK_EQ_INT(isq_st_open_memory(st, b, 5), ISQ_EFORMAT);
	CHECK(strstr(st->err.msg, "too short") != NULL);
	isq_st_free(st);
}

TEST(round_trip_every_dtype)
{
	struct isq_st_writer *w = isq_st_writer_new();
	isq_st_writer_meta(w, "format", "pt");
	int64_t shape[2] = { 3, 5 };
	for (int d = 0; d < ISQ_ST_DTYPE_COUNT; d++) {
		char name[32];
		snprintf(name, sizeof(name), "t.%s", isq_st_dtype_name((enum isq_st_dtype)d));
		CHECK_EQ_INT(isq_st_writer_add(w, name, (enum isq_st_dtype)d, 2, shape), 0);
	}
	CHECK_EQ_INT(isq_st_writer_add(w, "scalar", ISQ_ST_F32, 0, NULL), 0);
	int64_t zero[1] = { 0 };
	CHECK_EQ_INT(isq_st_writer_add(w, "empty", ISQ_ST_F16, 1, zero), 0);
	CHECK(isq_st_writer_add(w, "scalar", ISQ_ST_F32, 0, NULL) != 0);
	struct isq_buf mem = ISQ_BUF_INIT;
	struct isq_out out;
	isq_out_open_memory(&out, &mem);
	CHECK_EQ_INT(isq_st_writer_begin(w, &out), 0);
	CHECK_EQ_INT((isq_le64(mem.data) + 8) % 8, 0);
	uint64_t total = 0;
	for (int d = 0; d < ISQ_ST_DTYPE_COUNT; d++) {
		uint64_t nb;
		isq_st_dtype_nbytes((enum isq_st_dtype)d, 15, &nb);
		total += nb;
	}
	total += 4;
	uint8_t *data = malloc(total);
	for (uint64_t i = 0; i < total; i++)
		data[i] = (uint8_t)(i * 7);
	CHECK_EQ_INT(isq_st_writer_write(w, data, total - 1), 0);
	CHECK(isq_st_writer_finish(w) != 0); /* one byte short */
	CHECK_EQ_INT(isq_st_writer_write(w, data + total - 1, 1), 0);
	CHECK_EQ_INT(isq_st_writer_finish(w), 0);
	CHECK(isq_st_writer_write(w, data, 1) != 0);
	isq_st_writer_free(w);

	struct isq_safetensors *st = isq_st_new();
	CHECK_EQ_INT(isq_st_open_memory(st, mem.data, mem.len), 0);
	CHECK_EQ_INT(st->n_tensors, ISQ_ST_DTYPE_COUNT + 2);
	CHECK_STR(isq_st_meta(st, "format"), "pt");
	const struct isq_st_tensor *f4 = isq_st_find(st, "t.F4");
	CHECK(f4 && f4->nbytes == 8 && f4->n_elements == 15); /* 15 x 4 bits, rounded up */
	const struct isq_st_tensor *f6 = isq_st_find(st, "t.F6_E2M3");
	CHECK(f6 && f6->nbytes == 12);
	const struct isq_st_tensor *bf = isq_st_find(st, "t.BF16");
	CHECK(bf && bf->dtype == ISQ_ST_BF16 && bf->shape[0] == 3 && bf->shape[1] == 5 && bf->nbytes == 30);
	CHECK_EQ_INT(isq_st_dtype_to_type(ISQ_ST_BF16), ISQ_TYPE_BF16);
	const struct isq_st_tensor *sc = isq_st_find(st, "scalar");
	CHECK(sc && sc->n_dims == 0 && sc->n_elements == 1 && sc->nbytes == 4);
	/* the data survived in declaration order */
	CHECK(!memcmp(st->tensors[0].data, data, st->tensors[0].nbytes));
	const struct isq_st_tensor *last = isq_st_find(st, "scalar");
	CHECK(last && !memcmp(last->data, data + total - 4, 4));
	isq_st_free(st);
	free(data);
	isq_buf_release(&mem);
}

static void write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	fwrite(p, 1, n, f);
	fclose(f);
}

static size_t small_shard(uint8_t *buf, const char *a, const char *b)
{
	char hdr[256];
	snprintf(hdr, sizeof(hdr),
		 "{\"%s\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
		 "\"%s\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
		 a, b);
	return image(buf, hdr, 12);
}

TEST(sharded_directories)
{
	char dir[4200], p[4300];
	snprintf(dir, sizeof(dir), "%s/sharded", test_tmpdir());
	mkdir(dir, 0755);
	uint8_t buf[1024];
	size_t n = small_shard(buf, "x.a", "x.b");
	snprintf(p, sizeof(p), "%s/model-00001-of-00002.safetensors", dir);
	write_file(p, buf, n);
	n = small_shard(buf, "y.a", "y.b");
	snprintf(p, sizeof(p), "%s/model-00002-of-00002.safetensors", dir);
	write_file(p, buf, n);
	const char *index = "{\"metadata\":{},\"weight_map\":{\"x.a\":\"model-00001-of-00002.safetensors\","
			    "\"x.b\":\"model-00001-of-00002.safetensors\",\"y.a\":\"model-00002-of-00002.safetensors\","
			    "\"y.b\":\"model-00002-of-00002.safetensors\"}}";
	snprintf(p, sizeof(p), "%s/model.safetensors.index.json", dir);
	write_file(p, index, strlen(index));
	struct isq_safetensors *st = isq_st_new();
	CHECK_MSG(isq_st_open(st, dir) == 0, "%s", st->err.msg);
	CHECK_EQ_INT(st->n_tensors, 4);
	CHECK_EQ_INT(st->n_shards, 2);
	const struct isq_st_tensor *t = isq_st_find(st, "y.b");
	CHECK(t && t->shard == 1 && t->nbytes == 4);

	/* the index names a tensor its shard lacks */
	const char *bad = "{\"weight_map\":{\"x.a\":\"model-00001-of-00002.safetensors\","
			  "\"x.b\":\"model-00001-of-00002.safetensors\",\"z\":\"model-00001-of-00002.safetensors\","
			  "\"y.a\":\"model-00002-of-00002.safetensors\",\"y.b\":\"model-00002-of-00002.safetensors\"}}";
	write_file(p, bad, strlen(bad));
	CHECK_EQ_INT(isq_st_open(st, dir), ISQ_EFORMAT);
	CHECK(strstr(st->err.msg, "tensor 'z' is not in its shard") != NULL);
	/* a shard that does not exist */
	const char *missing = "{\"weight_map\":{\"x.a\":\"model-00003-of-00002.safetensors\"}}";
	write_file(p, missing, strlen(missing));
	CHECK(isq_st_open(st, dir) != 0);
	CHECK(strstr(st->err.msg, "model-00003-of-00002.safetensors") != NULL);
	/* the same name in two shards */
	n = small_shard(buf, "x.a", "q");
	snprintf(p, sizeof(p), "%s/model-00002-of-00002.safetensors", dir);
	write_file(p, buf, n);
	snprintf(p, sizeof(p), "%s/model.safetensors.index.json", dir);
	write_file(p, index, strlen(index));
	CHECK_EQ_INT(isq_st_open(st, dir), ISQ_EFORMAT);
	CHECK(strstr(st->err.msg, "duplicate tensor name 'x.a'") != NULL);
	isq_st_free(st);
}

TEST(stories260K_reads)
{
	char path[4096];
	if (!test_shared_path(path, sizeof(path), "models/stories260K/model.safetensors"))
		SKIP("../shared/models/stories260K not present");
	struct isq_safetensors *st = isq_st_new();
	CHECK_EQ_INT(isq_st_open(st, path), 0);
	CHECK_EQ_INT(st->n_tensors, 48);
	const struct isq_st_tensor *t = isq_st_find(st, "model.embed_tokens.weight");
	CHECK(t && t->dtype == ISQ_ST_BF16 && t->n_dims == 2 && t->shape[0] == 512 && t->shape[1] == 64);
	t = isq_st_find(st, "model.layers.0.mlp.down_proj.weight");
	CHECK(t && t->shape[0] == 64 && t->shape[1] == 172);
	isq_st_free(st);
	if (!test_shared_path(path, sizeof(path), "models/stories260K-f32"))
		SKIP("../shared/models/stories260K-f32 not present");
	st = isq_st_new();
	CHECK_EQ_INT(isq_st_open(st, path), 0); /* the directory form */
	t = isq_st_find(st, "model.norm.weight");
	CHECK(t && t->dtype == ISQ_ST_F32 && t->nbytes == 256);
	isq_st_free(st);
}
