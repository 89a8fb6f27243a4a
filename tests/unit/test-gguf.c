/*
 * test-gguf.c - GGUF: a file laid out by hand from the spec, every malformed
 * field and every truncation, the writer's round trip and its errors, stdin,
 * and llama.cpp's own files read and copied byte for byte.
 */
#include "test.h"
#include "gguf.h"
#include "types.h"

#include <fcntl.h>

/* ---- a byte builder: files are laid out here straight from the spec, not by the writer ---- */

static void b_bytes(struct isq_buf *b, const void *p, size_t n)
{
	ISQ_ASSERT(isq_buf_append(b, p, n) == 0);
}
static void b_u8(struct isq_buf *b, uint8_t v) { b_bytes(b, &v, 1); }
static void b_u16(struct isq_buf *b, uint16_t v)
{
	uint8_t t[2];
	isq_put_le16(t, v);
	b_bytes(b, t, 2);
}
static void b_u32(struct isq_buf *b, uint32_t v)
{
	uint8_t t[4];
	isq_put_le32(t, v);
	b_bytes(b, t, 4);
}
static void b_u64(struct isq_buf *b, uint64_t v)
{
	uint8_t t[8];
	isq_put_le64(t, v);
	b_bytes(b, t, 8);
}
static void b_f32(struct isq_buf *b, float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	b_u32(b, u);
}
static void b_f64(struct isq_buf *b, double f)
{
	uint64_t u;
	memcpy(&u, &f, 8);
	b_u64(b, u);
}
static void b_str(struct isq_buf *b, const char *s)
{
	b_u64(b, strlen(s));
	b_bytes(b, s, strlen(s));
}
static void b_pad(struct isq_buf *b, size_t a)
{
	while (b->len % a)
		b_u8(b, 0);
}
static void b_head(struct isq_buf *b, uint64_t n_tensors, uint64_t n_kv)
{
	b_bytes(b, "GGUF", 4);
	b_u32(b, 3);
	b_u64(b, n_tensors);
	b_u64(b, n_kv);
}
static void b_kv(struct isq_buf *b, const char *key, uint32_t type)
{
	b_str(b, key);
	b_u32(b, type);
}
static void b_tensor(struct isq_buf *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
		     uint64_t offset)
{
	b_str(b, name);
	b_u32(b, n_dims);
	for (uint32_t d = 0; d < n_dims; d++)
		b_u64(b, ne[d]);
	b_u32(b, type);
	b_u64(b, offset);
}
static void put32(struct isq_buf *b, size_t at, uint32_t v) { isq_put_le32(b->data + at, v); }
static void put64(struct isq_buf *b, size_t at, uint64_t v) { isq_put_le64(b->data + at, v); }

/* Parse a heap copy of exactly n bytes, so that ASan sees any read past them. */
static int open_copy(struct isq_gguf *g, const void *p, size_t n, uint8_t **keep)
{
	uint8_t *c = malloc(n ? n : 1);
	memcpy(c, p, n);
	int rc = isq_gguf_open_memory(g, c, n);
	if (keep)
		*keep = c;
	else
		free(c);
	return rc;
}

static int one_line(const char *msg)
{
	return msg[0] && !strchr(msg, '\n') && !strchr(msg, '\r');
}

/* The file must be refused with ISQ_EFORMAT and a one-line message containing every needle. */
static void expect_bad_n(const struct isq_buf *b, size_t n, const char *what, const char *needle, const char *needle2)
{
	struct isq_gguf *g = isq_gguf_new();
	int rc = open_copy(g, b->data, n, NULL);
	const char *msg = isq_errbuf_msg(&g->err);
	CHECK_MSG(rc == ISQ_EFORMAT, "%s: rc %d (%s)", what, rc, msg);
	CHECK_MSG(one_line(msg), "%s: message is not one line: '%s'", what, msg);
	CHECK_MSG(strstr(msg, needle) != NULL, "%s: message '%s' lacks '%s'", what, msg, needle);
	if (needle2)
		CHECK_MSG(strstr(msg, needle2) != NULL, "%s: message '%s' lacks '%s'", what, msg, needle2);
	CHECK(g->n_kv == 0 && g->n_tensors == 0 && !isq_gguf_find_kv(g, "general.architecture"));
	isq_gguf_free(g);
}
static void expect_bad(const struct isq_buf *b, const char *what, const char *needle, const char *needle2)
{
	expect_bad_n(b, b->len, what, needle, needle2);
}

/*
 * The small valid file that the malformed cases patch: three KVs (a string, a
 * u32 array, a string array) and two tensors, w (f32 [4, 2], 32 bytes) and b
 * (q8_0 [32], 34 bytes, then 30 bytes of padding).  The offsets of the
 * fields are recorded as they are laid down.
 */
struct small {
	struct isq_buf b;
	size_t version, n_tensors, n_kv, key0, key0_type, str0, arr_type, arr_n, sarr1, t0_name, t0_ndims, t0_ne0,
		t0_type, t0_off, t1_ne0, t1_off, header_end, data, end_of_b;
};

static void small_file(struct small *s)
{
	struct isq_buf *b = &s->b;
	memset(s, 0, sizeof(*s));
	b_bytes(b, "GGUF", 4);
	s->version = b->len;
	b_u32(b, 3);
	s->n_tensors = b->len;
	b_u64(b, 2);
	s->n_kv = b->len;
	b_u64(b, 3);
	s->key0 = b->len;
	b_str(b, "general.architecture");
	s->key0_type = b->len;
	b_u32(b, ISQ_GGUF_STRING);
	s->str0 = b->len;
	b_str(b, "llama");
	b_kv(b, "a.list", ISQ_GGUF_ARRAY);
	s->arr_type = b->len;
	b_u32(b, ISQ_GGUF_U32);
	s->arr_n = b->len;
	b_u64(b, 3);
	b_u32(b, 7);
	b_u32(b, 8);
	b_u32(b, 9);
	b_kv(b, "s.list", ISQ_GGUF_ARRAY);
	b_u32(b, ISQ_GGUF_STRING);
	b_u64(b, 2);
	b_str(b, "x");
	s->sarr1 = b->len;
	b_str(b, "yz");
	s->t0_name = b->len;
	s->t0_ndims = s->t0_name + 8 + 1;
	s->t0_ne0 = s->t0_ndims + 4;
	s->t0_type = s->t0_ne0 + 16;
	s->t0_off = s->t0_type + 4;
	b_tensor(b, "w", 2, (const uint64_t[]){ 4, 2 }, ISQ_TYPE_F32, 0);
	s->t1_ne0 = b->len + 8 + 1 + 4;
	s->t1_off = s->t1_ne0 + 8 + 4;
	b_tensor(b, "b", 1, (const uint64_t[]){ 32 }, ISQ_TYPE_Q8_0, 32);
	s->header_end = b->len;
	b_pad(b, 32);
	s->data = b->len;
	for (int i = 0; i < 8; i++)
		b_f32(b, (float)i * 0.5f);
	for (int i = 0; i < 34; i++)
		b_u8(b, (uint8_t)(i + 1));
	s->end_of_b = b->len;
	b_pad(b, 32);
}

TEST(small_file_reads)
{
	struct small s;
	small_file(&s);
	struct isq_gguf *g = isq_gguf_new();
	CHECK_EQ_INT(isq_gguf_open_memory(g, s.b.data, s.b.len), 0);
	CHECK_EQ_INT(g->n_kv, 3);
	CHECK_EQ_INT(g->n_tensors, 2);
	CHECK_EQ_INT(g->data_offset, s.data);
	CHECK_EQ_INT(g->data_offset % 32, 0);
	const struct isq_gguf_tensor *b = isq_gguf_find_tensor(g, "b");
	CHECK(b && b->nbytes == 34 && b->offset == 32 && b->data == (uint8_t *)s.b.data + s.data + 32);
	CHECK(b && b->data[0] == 1 && b->data[33] == 34);
	/* the last tensor's padding is not needed: ggml does not read it either */
	isq_gguf_free(g);
	g = isq_gguf_new();
	CHECK_EQ_INT(open_copy(g, s.b.data, s.end_of_b, NULL), 0);
	isq_gguf_free(g);
	isq_buf_release(&s.b);
}

TEST(every_truncation_fails_cleanly)
{
	struct small s;
	small_file(&s);
	struct isq_gguf *g = isq_gguf_new();
	for (size_t n = 0; n < s.end_of_b; n++) {
		int rc = open_copy(g, s.b.data, n, NULL);
		CHECK_MSG(rc == ISQ_EFORMAT, "truncated at %zu: rc %d", n, rc);
		CHECK_MSG(one_line(g->err.msg), "truncated at %zu: '%s'", n, g->err.msg);
		CHECK(g->n_kv == 0 && g->n_tensors == 0);
	}
	/* the same handle still opens the whole file afterwards */
	CHECK_EQ_INT(open_copy(g, s.b.data, s.end_of_b, NULL), 0);
	isq_gguf_free(g);
	isq_buf_release(&s.b);
}

TEST(header_fields_are_checked)
{
	struct small s;
	small_file(&s);
	struct isq_buf *b = &s.b;
	b->data[0] = 'X';
	expect_bad(b, "bad magic", "bad magic", NULL);
	b->data[0] = 'G';
	const uint32_t versions[] = { 0, 1, 4, 0x7fffffff };
	const char *vn[] = { "version 0", "version 1", "version 4", "version 2147483647" };
	for (int i = 0; i < 4; i++) {
		put32(b, s.version, versions[i]);
		expect_bad(b, vn[i], vn[i], NULL);
	}
	put32(b, s.version, 0x03000000); /* a big-endian v3 */
	expect_bad(b, "byte-swapped", "byte-swapped", "0x03000000");
	put32(b, s.version, 0x00030000);
	expect_bad(b, "byte-swapped 2", "byte-swapped", NULL);
	put32(b, s.version, 2); /* v2 has the same layout and is read */
	struct isq_gguf *g = isq_gguf_new();
	CHECK_EQ_INT(open_copy(g, b->data, b->len, NULL), 0);
	CHECK_EQ_INT(g->version, 2);
	isq_gguf_free(g);
	put32(b, s.version, 3);

	/* counts: absurd, negative, and one past what the file can hold */
	uint64_t rest = b->len - 24;
	put64(b, s.n_tensors, UINT64_C(1) << 40);
	expect_bad(b, "absurd tensor count", "tensor count 1099511627776", NULL);
	put64(b, s.n_tensors, (uint64_t)-1);
	expect_bad(b, "negative tensor count", "tensor count -1 is negative", NULL);
	put64(b, s.n_tensors, 2);
	put64(b, s.n_kv, UINT64_C(1) << 40);
	expect_bad(b, "absurd kv count", "metadata count 1099511627776", NULL);
	put64(b, s.n_kv, (uint64_t)INT64_MIN);
	expect_bad(b, "negative kv count", "negative", NULL);
	put64(b, s.n_kv, rest / 14 + 1);
	expect_bad(b, "kv count just too large", "cannot fit", NULL);
	put64(b, s.n_kv, 3);
	put64(b, s.n_tensors, (rest - 3 * 14) / 32 + 1);
	expect_bad(b, "tensor count just too large", "tensor count", "cannot fit");
	/* one more tensor than there is: not caught by the bound, caught when parsing */
	put64(b, s.n_tensors, 3);
	expect_bad(b, "one tensor too many", "tensor", NULL);
	put64(b, s.n_tensors, 2);
	isq_buf_release(b);

	/* the bounds are exact: minimal KVs (1-byte key, u8) fill a file to the byte */
	struct isq_buf m = ISQ_BUF_INIT;
	b_head(&m, 0, 3);
	const char *keys[] = { "a", "b", "c" };
	for (int i = 0; i < 3; i++) {
		b_kv(&m, keys[i], ISQ_GGUF_U8);
		b_u8(&m, (uint8_t)i);
	}
	CHECK_EQ_INT(m.len, 24 + 3 * 14);
	g = isq_gguf_new();
	CHECK_EQ_INT(open_copy(g, m.data, m.len, NULL), 0);
	CHECK_EQ_INT(g->n_kv, 3);
	isq_gguf_free(g);
	isq_buf_release(&m);
	/* and so does a minimal tensor info (empty name, one dim of 0): 2 of them in 64 bytes */
	b_head(&m, 2, 0);
	b_tensor(&m, "", 1, (const uint64_t[]){ 0 }, ISQ_TYPE_F32, 0);
	b_tensor(&m, "x", 1, (const uint64_t[]){ 0 }, ISQ_TYPE_F32, 0);
	CHECK_EQ_INT(m.len, 24 + 32 + 33);
	b_pad(&m, 32);
	CHECK_EQ_INT(m.len, 96);
	g = isq_gguf_new();
	CHECK_EQ_INT(open_copy(g, m.data, m.len, NULL), 0);
	const struct isq_gguf_tensor *t = isq_gguf_find_tensor(g, "");
	CHECK(t && t->nbytes == 0 && t->n_elements == 0 && g->n_tensors == 2 && g->data_offset == 96);
	isq_gguf_free(g);
	isq_buf_release(&m);
}

TEST(metadata_fields_are_checked)
{
	struct small s;
	small_file(&s);
	struct isq_buf *b = &s.b;
	put64(b, s.key0, 1000);
	expect_bad(b, "key length past EOF", "metadata key 0", "past end of file");
	put64(b, s.key0, 0);
	expect_bad(b, "empty key", "metadata key 0 is empty", NULL);
	put64(b, s.key0, strlen("general.architecture"));
	b->data[s.key0 + 8 + 3] = 0;
	expect_bad(b, "NUL in key", "NUL", NULL);
	b->data[s.key0 + 8 + 3] = 'e';

	/* a control byte in a name never breaks the message into two lines */
	b->data[s.key0 + 8] = '\n';
	put32(b, s.key0_type, 13);
	expect_bad(b, "unknown value type", "key '?eneral.architecture': unknown value type 13", NULL);
	b->data[s.key0 + 8] = 'g';
	put32(b, s.key0_type, 0xffffffffu);
	expect_bad(b, "value type -1", "unknown value type", NULL);
	put32(b, s.key0_type, ISQ_GGUF_STRING);

	put64(b, s.str0, 1000000);
	expect_bad(b, "string past EOF", "key 'general.architecture': string length past end of file", NULL);
	put64(b, s.str0, (UINT64_C(1) << 30) + 1);
	expect_bad(b, "string too long", "key 'general.architecture'", "too long");
	put64(b, s.str0, 5);

	put32(b, s.arr_type, ISQ_GGUF_ARRAY);
	expect_bad(b, "nested array", "key 'a.list': arrays of arrays", NULL);
	put32(b, s.arr_type, 13);
	expect_bad(b, "bad element type", "key 'a.list': unknown array element type 13", NULL);
	put32(b, s.arr_type, ISQ_GGUF_U32);
	put64(b, s.arr_n, 1000);
	expect_bad(b, "array past EOF", "key 'a.list': array of 1000 u32 elements runs past end of file", NULL);
	put64(b, s.arr_n, UINT64_C(1) << 62); /* n * 4 overflows 64 bits */
	expect_bad(b, "array count overflow", "key 'a.list'", NULL);
	put64(b, s.arr_n, (UINT64_C(1) << 30) + 1);
	expect_bad(b, "array too long", "key 'a.list'", "too long");
	put64(b, s.arr_n, 3);
	put64(b, s.sarr1, 1000);
	expect_bad(b, "string element past EOF", "key 's.list'", "past end of file");
	put64(b, s.sarr1, 2);
	isq_buf_release(b);

	/* duplicate keys, by hand */
	struct isq_buf d = ISQ_BUF_INIT;
	b_head(&d, 0, 3);
	b_kv(&d, "k", ISQ_GGUF_U8);
	b_u8(&d, 1);
	b_kv(&d, "k2", ISQ_GGUF_U8);
	b_u8(&d, 2);
	b_kv(&d, "k", ISQ_GGUF_STRING);
	b_str(&d, "again");
	expect_bad(&d, "duplicate key", "duplicate metadata key 'k'", NULL);
	isq_buf_release(&d);
}

/* A file whose only KV is general.alignment of type t with value v (u32 or u64), and one f32 [8] tensor. */
static void alignment_file(struct isq_buf *b, uint32_t t, uint64_t v)
{
	b_head(b, 1, 1);
	b_kv(b, "general.alignment", t);
	if (t == ISQ_GGUF_U64)
		b_u64(b, v);
	else
		b_u32(b, (uint32_t)v);
	b_tensor(b, "t", 1, (const uint64_t[]){ 8 }, ISQ_TYPE_F32, 0);
	b_pad(b, t == ISQ_GGUF_U32 && v && !(v & (v - 1)) ? (size_t)v : 32);
	for (int i = 0; i < 8; i++)
		b_f32(b, (float)i);
}

TEST(alignment_is_checked)
{
	const uint64_t badv[] = { 0, 24, 3, 0x80000001u };
	for (int i = 0; i < 4; i++) {
		struct isq_buf b = ISQ_BUF_INIT;
		alignment_file(&b, ISQ_GGUF_U32, badv[i]);
		expect_bad(&b, "bad alignment", "general.alignment", "power of two");
		isq_buf_release(&b);
	}
	/* a power of two, but a header padded to it would be gigabytes (found by fuzz-gguf) */
	struct isq_buf b = ISQ_BUF_INIT;
	alignment_file(&b, ISQ_GGUF_U32, 1u << 25);
	expect_bad(&b, "huge alignment", "general.alignment", "absurdly large");
	isq_buf_release(&b);
	alignment_file(&b, ISQ_GGUF_U64, 32);
	expect_bad(&b, "u64 alignment", "general.alignment", "must be u32");
	isq_buf_release(&b);
	const uint64_t good[] = { 1, 8, 64, 4096 };
	for (int i = 0; i < 4; i++) {
		alignment_file(&b, ISQ_GGUF_U32, good[i]);
		struct isq_gguf *g = isq_gguf_new();
		CHECK_EQ_INT(open_copy(g, b.data, b.len, NULL), 0);
		CHECK_EQ_INT(g->alignment, good[i]);
		CHECK_EQ_INT(g->data_offset % good[i], 0);
		CHECK_EQ_INT(g->data_offset, b.len - 32);
		isq_gguf_free(g);
		isq_buf_release(&b);
	}
}

/* One tensor info with the given fields (then 64 bytes of data so that only the info can be wrong). */
static void one_tensor(struct isq_buf *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type)
{
	b_head(b, 1, 0);
	b_tensor(b, name, n_dims, ne, type, 0);
	b_pad(b, 32);
	for (int i = 0; i < 64; i++)
		b_u8(b, 0);
}

TEST(tensor_infos_are_checked)
{
	struct small s;
	small_file(&s);
	struct isq_buf *b = &s.b;
	put64(b, s.t0_name, 1u << 20);
	expect_bad(b, "name past EOF", "tensor 0: name length past end of file", NULL);
	put64(b, s.t0_name, 1);
	put32(b, s.t0_ndims, 5);
	expect_bad(b, "5 dims", "tensor 'w': 5 dimensions", NULL);
	put32(b, s.t0_ndims, 0);
	expect_bad(b, "0 dims", "tensor 'w': 0 dimensions", NULL);
	put32(b, s.t0_ndims, 2);
	put64(b, s.t0_ne0, (uint64_t)-4);
	expect_bad(b, "negative dim", "tensor 'w': dimension 0 is negative", NULL);
	put64(b, s.t0_ne0, 4);
	const uint32_t removed[] = { 4, 5, 31, 32, 33, 36, 37, 38, 43, 1000, 0xffffffffu };
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(removed); i++) {
		put32(b, s.t0_type, removed[i]);
		char needle[64];
		snprintf(needle, sizeof(needle), "tensor 'w': unknown ggml type id %u", removed[i]);
		expect_bad(b, "removed type", needle, NULL);
	}
	put32(b, s.t0_type, ISQ_TYPE_Q4_0);
	expect_bad(b, "row not multiple of block", "tensor 'w': row length 4 is not a multiple", "32");
	put32(b, s.t0_type, ISQ_TYPE_F32);
	put64(b, s.t1_ne0, 16);
	expect_bad(b, "row not multiple of block 2", "tensor 'b': row length 16", NULL);
	put64(b, s.t1_ne0, 32);
	put64(b, s.t0_off, 32);
	expect_bad(b, "first offset not 0", "tensor 'w': offset 32 is not the expected 0", NULL);
	put64(b, s.t0_off, 0);
	put64(b, s.t1_off, 64);
	expect_bad(b, "gap between tensors", "tensor 'b': offset 64 is not the expected 32", NULL);
	put64(b, s.t1_off, 0);
	expect_bad(b, "overlapping tensors", "tensor 'b': offset 0 is not the expected 32", NULL);
	put64(b, s.t1_off, 32);
	expect_bad_n(b, s.end_of_b - 1, "data past EOF", "tensor 'b': data offset past end of file", NULL);
	isq_buf_release(b);

	struct isq_buf d = ISQ_BUF_INIT;
	b_head(&d, 2, 0);
	b_tensor(&d, "t", 1, (const uint64_t[]){ 8 }, ISQ_TYPE_F32, 0);
	b_tensor(&d, "t", 1, (const uint64_t[]){ 8 }, ISQ_TYPE_F32, 32);
	b_pad(&d, 32);
	for (int i = 0; i < 64; i++)
		b_u8(&d, 0);
	expect_bad(&d, "duplicate tensor", "duplicate tensor name 't'", NULL);
	isq_buf_release(&d);

	char n63[64], n64[65];
	memset(n63, 'a', 63);
	n63[63] = 0;
	memset(n64, 'b', 64);
	n64[64] = 0;
	one_tensor(&d, n64, 1, (const uint64_t[]){ 8 }, ISQ_TYPE_F32);
	expect_bad(&d, "64-byte name", "name of 64 bytes is too long", "bbbbbbbb");
	isq_buf_release(&d);
	one_tensor(&d, n63, 1, (const uint64_t[]){ 8 }, ISQ_TYPE_F32);
	struct isq_gguf *g = isq_gguf_new();
	CHECK_EQ_INT(open_copy(g, d.data, d.len, NULL), 0);
	CHECK(isq_gguf_find_tensor(g, n63) != NULL);
	isq_gguf_free(g);
	isq_buf_release(&d);
	b_head(&d, 1, 0);
	b_u64(&d, 3);
	b_bytes(&d, "a\0b", 3);
	b_u32(&d, 1);
	b_u64(&d, 8);
	b_u32(&d, ISQ_TYPE_F32);
	b_u64(&d, 0);
	b_pad(&d, 32);
	for (int i = 0; i < 32; i++)
		b_u8(&d, 0);
	expect_bad(&d, "NUL in name", "NUL", NULL);
	isq_buf_release(&d);

	/* shapes whose element count or byte size overflows */
	one_tensor(&d, "big", 3, (const uint64_t[]){ 1u << 31, 1u << 31, 1u << 31 }, ISQ_TYPE_F32);
	expect_bad(&d, "elements overflow", "tensor 'big': element count", "overflows");
	isq_buf_release(&d);
	one_tensor(&d, "wrap", 4, (const uint64_t[]){ 1u << 16, 1u << 16, 1u << 16, 1u << 16 }, ISQ_TYPE_F32);
	expect_bad(&d, "elements wrap to 0", "tensor 'wrap': element count", "overflows");
	isq_buf_release(&d);
	one_tensor(&d, "f64", 2, (const uint64_t[]){ 1u << 31, 1u << 31 }, ISQ_TYPE_F64);
	expect_bad(&d, "bytes overflow", "tensor 'f64': size in bytes overflows", NULL);
	isq_buf_release(&d);
	one_tensor(&d, "huge", 1, (const uint64_t[]){ UINT64_C(1) << 40 }, ISQ_TYPE_F32);
	expect_bad(&d, "huge tensor", "tensor 'huge': data offset past end of file", NULL);
	isq_buf_release(&d);
	/* a zero dim makes any shape representable (ggml agrees); the tensor holds no bytes */
	one_tensor(&d, "z", 4, (const uint64_t[]){ 1u << 31, 1u << 31, 0, 1u << 31 }, ISQ_TYPE_F32);
	g = isq_gguf_new();
	CHECK_EQ_INT(open_copy(g, d.data, d.len, NULL), 0);
	CHECK(g->n_tensors == 1 && g->tensors[0].nbytes == 0 && g->tensors[0].n_elements == 0);
	isq_gguf_free(g);
	isq_buf_release(&d);
}

/* ---- a hand-laid file with every value type, every array type and aligned tensors ---- */

static const uint8_t a_u8[] = { 0, 1, 255 };
static const int8_t a_i8[] = { -128, -1, 127 };
static const uint16_t a_u16[] = { 0, 65535 };
static const int16_t a_i16[] = { -32768, 5, 32767 };
static const uint32_t a_u32[] = { 7, 4000000000u };
static const int32_t a_i32[] = { INT32_MIN, -1, 2 };
static const float a_f32[] = { 1.5f, -2.25f, 1e-30f };
static const uint8_t a_bool[] = { 1, 0, 1, 1 };
static const char *const a_str[] = { "a", "", "ccc", "h\xc3\xa9llo" };
static const uint64_t a_u64[] = { UINT64_MAX, 1 };
static const int64_t a_i64[] = { INT64_MIN, INT64_MAX };
static const double a_f64[] = { 1e300, -0.0, 3.25 };

struct hand {
	struct isq_buf b;
	size_t header_end, data;
	uint64_t off[3];
};

#define N_HAND_KV 27

static void hand_file(struct hand *h, uint32_t align)
{
	struct isq_buf *b = &h->b;
	memset(h, 0, sizeof(*h));
	b_head(b, 3, N_HAND_KV);
	b_kv(b, "s.u8", ISQ_GGUF_U8);
	b_u8(b, 200);
	b_kv(b, "s.i8", ISQ_GGUF_I8);
	b_u8(b, (uint8_t)-5);
	b_kv(b, "s.u16", ISQ_GGUF_U16);
	b_u16(b, 60000);
	b_kv(b, "s.i16", ISQ_GGUF_I16);
	b_u16(b, (uint16_t)-300);
	b_kv(b, "s.u32", ISQ_GGUF_U32);
	b_u32(b, 4000000000u);
	b_kv(b, "s.i32", ISQ_GGUF_I32);
	b_u32(b, (uint32_t)-7);
	b_kv(b, "s.f32", ISQ_GGUF_F32);
	b_f32(b, 0.1f);
	b_kv(b, "s.bool", ISQ_GGUF_BOOL);
	b_u8(b, 1);
	b_kv(b, "general.alignment", ISQ_GGUF_U32); /* not first: its place does not matter */
	b_u32(b, align);
	b_kv(b, "s.str", ISQ_GGUF_STRING);
	b_str(b, "h\xc3\xa9llo w\xc3\xb6rld");
	b_kv(b, "s.u64", ISQ_GGUF_U64);
	b_u64(b, (UINT64_C(1) << 40) + 3);
	b_kv(b, "s.i64", ISQ_GGUF_I64);
	b_u64(b, (uint64_t)-(INT64_C(1) << 40));
	b_kv(b, "s.f64", ISQ_GGUF_F64);
	b_f64(b, 1e-300);
#define ARR(key, T, arr, put)                                   \
	do {                                                    \
		b_kv(b, key, ISQ_GGUF_ARRAY);                   \
		b_u32(b, T);                                    \
		b_u64(b, ISQ_ARRAY_SIZE(arr));                  \
		for (size_t i = 0; i < ISQ_ARRAY_SIZE(arr); i++) \
			put(b, arr[i]);                         \
	} while (0)
	ARR("a.u8", ISQ_GGUF_U8, a_u8, b_u8);
	ARR("a.i8", ISQ_GGUF_I8, a_i8, b_u8);
	ARR("a.u16", ISQ_GGUF_U16, a_u16, b_u16);
	ARR("a.i16", ISQ_GGUF_I16, a_i16, b_u16);
	ARR("a.u32", ISQ_GGUF_U32, a_u32, b_u32);
	ARR("a.i32", ISQ_GGUF_I32, a_i32, b_u32);
	ARR("a.f32", ISQ_GGUF_F32, a_f32, b_f32);
	ARR("a.bool", ISQ_GGUF_BOOL, a_bool, b_u8);
	ARR("a.str", ISQ_GGUF_STRING, a_str, b_str);
	ARR("a.u64", ISQ_GGUF_U64, a_u64, b_u64);
	ARR("a.i64", ISQ_GGUF_I64, a_i64, b_u64);
	ARR("a.f64", ISQ_GGUF_F64, a_f64, b_f64);
#undef ARR
	b_kv(b, "a.empty", ISQ_GGUF_ARRAY);
	b_u32(b, ISQ_GGUF_U32);
	b_u64(b, 0);
	b_kv(b, "a.empty_str", ISQ_GGUF_ARRAY);
	b_u32(b, ISQ_GGUF_STRING);
	b_u64(b, 0);
	/* w: f32 [4, 2] = 32 bytes; q: q8_0 [64, 2] = 4 blocks of 34 = 136 bytes; h: f16 [3] = 6 bytes */
	h->off[0] = 0;
	h->off[1] = (32 + align - 1) / align * align;
	h->off[2] = h->off[1] + (136 + align - 1) / align * align;
	b_tensor(b, "w", 2, (const uint64_t[]){ 4, 2 }, ISQ_TYPE_F32, h->off[0]);
	b_tensor(b, "q", 2, (const uint64_t[]){ 64, 2 }, ISQ_TYPE_Q8_0, h->off[1]);
	b_tensor(b, "h", 1, (const uint64_t[]){ 3 }, ISQ_TYPE_F16, h->off[2]);
	h->header_end = b->len;
	b_pad(b, align);
	h->data = b->len;
	const size_t sizes[3] = { 32, 136, 6 };
	for (int t = 0; t < 3; t++) {
		for (size_t i = 0; i < sizes[t]; i++)
			b_u8(b, (uint8_t)(17 * t + i + 1));
		b_pad(b, align);
	}
}

static void check_num_array(const struct isq_gguf *g, const char *key, enum isq_gguf_vtype t, const double *want,
			    size_t n)
{
	const struct isq_gguf_kv *kv = isq_gguf_find_kv(g, key);
	CHECK_MSG(kv && kv->type == ISQ_GGUF_ARRAY && kv->arr_type == t && kv->arr_n == n, "%s", key);
	if (!kv)
		return;
	for (size_t i = 0; i < n; i++) {
		double v = -1;
		CHECK_MSG(isq_gguf_arr_num(kv, i, &v) == 0 && (v == want[i] || (v != v && want[i] != want[i])),
			  "%s[%zu] = %g, want %g", key, i, v, want[i]);
	}
	double v;
	CHECK(isq_gguf_arr_num(kv, n, &v) == ISQ_EINVAL);
}

TEST(hand_laid_file_every_value_type)
{
	struct hand h;
	hand_file(&h, 64);
	struct isq_gguf *g = isq_gguf_new();
	uint8_t *img = NULL;
	CHECK_EQ_INT(open_copy(g, h.b.data, h.b.len, &img), 0);
	CHECK_EQ_INT(g->version, 3);
	CHECK_EQ_INT(g->n_kv, N_HAND_KV);
	CHECK_EQ_INT(g->alignment, 64);
	CHECK_EQ_INT(g->data_offset, (h.header_end + 63) / 64 * 64);
	CHECK_EQ_INT(g->file_size, h.b.len);
	CHECK_STR(g->kv[0].key, "s.u8");
	CHECK_STR(g->kv[8].key, "general.alignment");
	CHECK_STR(g->kv[N_HAND_KV - 1].key, "a.empty_str");

	uint64_t u = 0;
	int64_t i = 0;
	double f = 0;
	CHECK(isq_gguf_get_u64(g, "s.u8", &u) == 0 && u == 200);
	CHECK(isq_gguf_get_i64(g, "s.i8", &i) == 0 && i == -5);
	CHECK(isq_gguf_get_u64(g, "s.u16", &u) == 0 && u == 60000);
	CHECK(isq_gguf_get_i64(g, "s.i16", &i) == 0 && i == -300);
	CHECK(isq_gguf_get_u64(g, "s.u32", &u) == 0 && u == 4000000000u);
	CHECK(isq_gguf_get_i64(g, "s.i32", &i) == 0 && i == -7);
	CHECK(isq_gguf_get_f64(g, "s.f32", &f) == 0 && f == (double)0.1f);
	CHECK(isq_gguf_get_u64(g, "s.bool", &u) == 0 && u == 1);
	CHECK(isq_gguf_get_u64(g, "s.u64", &u) == 0 && u == (UINT64_C(1) << 40) + 3);
	CHECK(isq_gguf_get_i64(g, "s.i64", &i) == 0 && i == -(INT64_C(1) << 40));
	CHECK(isq_gguf_get_f64(g, "s.f64", &f) == 0 && f == 1e-300);
	CHECK(isq_gguf_get_f64(g, "s.i16", &f) == 0 && f == -300);
	CHECK_EQ_INT(isq_gguf_get_u64(g, "s.i32", &u), ISQ_EFORMAT); /* negative */
	CHECK_EQ_INT(isq_gguf_get_u64(g, "s.f32", &u), ISQ_EFORMAT);
	CHECK_EQ_INT(isq_gguf_get_i64(g, "s.str", &i), ISQ_EFORMAT);
	CHECK_EQ_INT(isq_gguf_get_f64(g, "a.u8", &f), ISQ_EFORMAT);
	CHECK_EQ_INT(isq_gguf_get_u64(g, "missing", &u), ISQ_ENOTFOUND);
	CHECK(isq_gguf_get_str(g, "s.u8") == NULL && isq_gguf_get_str(g, "missing") == NULL);
	char *str = isq_gguf_get_str(g, "s.str");
	CHECK_STR(str, "h\xc3\xa9llo w\xc3\xb6rld");
	free(str);
	const struct isq_gguf_kv *kv = isq_gguf_find_kv(g, "s.str");
	/* zero copy: the string is a view into the image */
	CHECK(kv && kv->str.len == 13 && (const uint8_t *)kv->str.data > img &&
	      (const uint8_t *)kv->str.data + 13 < img + h.b.len);

	check_num_array(g, "a.u8", ISQ_GGUF_U8, (const double[]){ 0, 1, 255 }, 3);
	check_num_array(g, "a.i8", ISQ_GGUF_I8, (const double[]){ -128, -1, 127 }, 3);
	check_num_array(g, "a.u16", ISQ_GGUF_U16, (const double[]){ 0, 65535 }, 2);
	check_num_array(g, "a.i16", ISQ_GGUF_I16, (const double[]){ -32768, 5, 32767 }, 3);
	check_num_array(g, "a.u32", ISQ_GGUF_U32, (const double[]){ 7, 4000000000.0 }, 2);
	check_num_array(g, "a.i32", ISQ_GGUF_I32, (const double[]){ -2147483648.0, -1, 2 }, 3);
	check_num_array(g, "a.f32", ISQ_GGUF_F32, (const double[]){ 1.5, -2.25, (double)1e-30f }, 3);
	check_num_array(g, "a.bool", ISQ_GGUF_BOOL, (const double[]){ 1, 0, 1, 1 }, 4);
	check_num_array(g, "a.u64", ISQ_GGUF_U64, (const double[]){ 18446744073709551615.0, 1 }, 2);
	check_num_array(g, "a.i64", ISQ_GGUF_I64, (const double[]){ -9223372036854775808.0, 9223372036854775807.0 },
			2);
	check_num_array(g, "a.f64", ISQ_GGUF_F64, (const double[]){ 1e300, -0.0, 3.25 }, 3);
	check_num_array(g, "a.empty", ISQ_GGUF_U32, NULL, 0);
	/* exact integers */
	kv = isq_gguf_find_kv(g, "a.i64");
	CHECK(kv && isq_gguf_arr_i64(kv, 0, &i) == 0 && i == INT64_MIN);
	CHECK(kv && isq_gguf_arr_i64(kv, 1, &i) == 0 && i == INT64_MAX);
	kv = isq_gguf_find_kv(g, "a.u64");
	CHECK(kv && isq_gguf_arr_i64(kv, 0, &i) == ISQ_EINVAL && isq_gguf_arr_i64(kv, 1, &i) == 0 && i == 1);
	kv = isq_gguf_find_kv(g, "a.f32");
	CHECK(kv && isq_gguf_arr_i64(kv, 0, &i) == ISQ_EINVAL);
	kv = isq_gguf_find_kv(g, "a.i8");
	CHECK(kv && kv->arr_bytes == 3 && isq_gguf_arr_i64(kv, 0, &i) == 0 && i == -128);

	kv = isq_gguf_find_kv(g, "a.str");
	CHECK(kv && kv->arr_type == ISQ_GGUF_STRING && kv->arr_n == 4 && isq_gguf_arr_num(kv, 0, &f) == ISQ_EINVAL);
	struct isq_gguf_arr_iter it;
	const char *p;
	uint64_t len;
	isq_gguf_arr_iter_init(&it, kv);
	for (size_t k = 0; k < 4; k++)
		CHECK_MSG(isq_gguf_arr_next_str(&it, &p, &len) == 0 && len == strlen(a_str[k]) && !memcmp(p, a_str[k], len),
			  "a.str[%zu]", k);
	CHECK(isq_gguf_arr_next_str(&it, &p, &len) == ISQ_ENOTFOUND);
	kv = isq_gguf_find_kv(g, "a.empty_str");
	isq_gguf_arr_iter_init(&it, kv);
	CHECK(kv && kv->arr_n == 0 && kv->arr_bytes == 0 && isq_gguf_arr_next_str(&it, &p, &len) == ISQ_ENOTFOUND);
	kv = isq_gguf_find_kv(g, "a.u8");
	isq_gguf_arr_iter_init(&it, kv);
	CHECK(isq_gguf_arr_next_str(&it, &p, &len) == ISQ_ENOTFOUND); /* not a string array */

	CHECK_EQ_INT(g->n_tensors, 3);
	const char *names[3] = { "w", "q", "h" };
	const uint32_t types[3] = { ISQ_TYPE_F32, ISQ_TYPE_Q8_0, ISQ_TYPE_F16 };
	const uint64_t nbytes[3] = { 32, 136, 6 }, nel[3] = { 8, 128, 3 };
	const int ndims[3] = { 2, 2, 1 };
	for (int t = 0; t < 3; t++) {
		const struct isq_gguf_tensor *ti = isq_gguf_find_tensor(g, names[t]);
		CHECK_MSG(ti == &g->tensors[t], "tensor %s", names[t]);
		if (!ti)
			continue;
		CHECK(ti->type == types[t] && ti->nbytes == nbytes[t] && ti->n_elements == nel[t] &&
		      ti->n_dims == ndims[t] && ti->offset == h.off[t]);
		CHECK(ti->data == img + g->data_offset + h.off[t]);
		CHECK(ti->data[0] == (uint8_t)(17 * t + 1) && ti->data[nbytes[t] - 1] == (uint8_t)(17 * t + nbytes[t]));
	}
	CHECK(g->tensors[1].ne[0] == 64 && g->tensors[1].ne[1] == 2 && g->tensors[1].ne[2] == 1 &&
	      g->tensors[1].ne[3] == 1);
	CHECK(isq_gguf_find_tensor(g, "missing") == NULL && isq_gguf_find_kv(g, "missing") == NULL);
	isq_gguf_free(g);
	free(img);
	isq_buf_release(&h.b);
}

/* Copy every KV and tensor of g, in order, through the writer into *out. */
static int copy_through_writer(const struct isq_gguf *g, struct isq_buf *out)
{
	struct isq_gguf_writer *w = isq_gguf_writer_new();
	int rc = 0;
	for (size_t i = 0; i < g->n_kv && !rc; i++)
		rc = isq_gguf_set_kv(w, &g->kv[i]);
	for (size_t i = 0; i < g->n_tensors && !rc; i++)
		rc = isq_gguf_writer_add_tensor(w, g->tensors[i].name, g->tensors[i].type, g->tensors[i].n_dims,
						g->tensors[i].ne);
	uint64_t expect = isq_gguf_writer_size(w);
	struct isq_out o;
	isq_out_open_memory(&o, out);
	rc = rc ? rc : isq_gguf_writer_begin(w, &o);
	for (size_t i = 0; i < g->n_tensors && !rc; i++)
		rc = isq_gguf_writer_write(w, g->tensors[i].data, (size_t)g->tensors[i].nbytes);
	rc = rc ? rc : isq_gguf_writer_finish(w);
	CHECK_MSG(rc == 0, "copy: %s", isq_gguf_writer_errmsg(w));
	CHECK_EQ_INT(out->len, expect);
	isq_gguf_writer_free(w);
	return rc;
}

static size_t first_difference(const void *a, size_t na, const void *b, size_t nb)
{
	size_t n = ISQ_MIN(na, nb), i = 0;
	while (i < n && ((const uint8_t *)a)[i] == ((const uint8_t *)b)[i])
		i++;
	return i;
}

TEST(writer_reproduces_the_hand_laid_file)
{
	const uint32_t aligns[] = { 32, 64, 1, 256 };
	for (int k = 0; k < 4; k++) {
		struct hand h;
		hand_file(&h, aligns[k]);
		struct isq_gguf *g = isq_gguf_new();
		CHECK_EQ_INT(isq_gguf_open_memory(g, h.b.data, h.b.len), 0);
		struct isq_buf out = ISQ_BUF_INIT;
		copy_through_writer(g, &out);
		CHECK_MSG(out.len == h.b.len && !memcmp(out.data, h.b.data, out.len),
			  "align %u: %zu vs %zu bytes, first difference at %zu", aligns[k], out.len, h.b.len,
			  first_difference(out.data, out.len, h.b.data, h.b.len));
		isq_buf_release(&out);
		isq_gguf_free(g);
		isq_buf_release(&h.b);
	}
}

TEST(bool_bytes_are_truth_values)
{
	/* ggml reads any nonzero byte as true, and writes 1 */
	struct isq_buf b = ISQ_BUF_INIT;
	b_head(&b, 0, 2);
	b_kv(&b, "b", ISQ_GGUF_BOOL);
	b_u8(&b, 2);
	b_kv(&b, "a", ISQ_GGUF_ARRAY);
	b_u32(&b, ISQ_GGUF_BOOL);
	b_u64(&b, 3);
	b_bytes(&b, "\x00\x05\x01", 3);
	struct isq_gguf *g = isq_gguf_new();
	CHECK_EQ_INT(isq_gguf_open_memory(g, b.data, b.len), 0);
	uint64_t u = 0;
	int64_t i = 0;
	CHECK(isq_gguf_get_u64(g, "b", &u) == 0 && u == 1);
	const struct isq_gguf_kv *kv = isq_gguf_find_kv(g, "a");
	CHECK(kv && isq_gguf_arr_i64(kv, 1, &i) == 0 && i == 1);
	struct isq_buf out = ISQ_BUF_INIT;
	copy_through_writer(g, &out);
	CHECK_EQ_INT(b.len, 66);
	CHECK(out.len == 96 && out.data[37] == 1 && out.data[63] == 0 && out.data[64] == 1 && out.data[65] == 1);
	isq_buf_release(&out);
	isq_gguf_free(g);
	isq_buf_release(&b);
}

/* ---- the writer ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint8_t rnd8(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint8_t)(rng_state >> 24);
}

struct decl {
	const char *name;
	uint32_t type;
	int n_dims, want_dims;
	int64_t ne[4];
	uint64_t nbytes; /* from the block sizes of the spec, not from the type table */
};

static const struct decl decls[] = {
	{ "f32.vec", ISQ_TYPE_F32, 1, 1, { 5 }, 20 },
	{ "f16.trailing1", ISQ_TYPE_F16, 3, 2, { 3, 2, 1 }, 12 },
	{ "q8_0", ISQ_TYPE_Q8_0, 2, 2, { 64, 3 }, 2 * 34 * 3 },
	{ "q4_k", ISQ_TYPE_Q4_K, 1, 1, { 256 }, 144 },
	{ "q6_k.3d", ISQ_TYPE_Q6_K, 4, 3, { 256, 1, 2, 1 }, 2 * 210 },
	{ "empty", ISQ_TYPE_F32, 2, 2, { 8, 0 }, 0 },
	{ "bf16.4d", ISQ_TYPE_BF16, 4, 4, { 2, 2, 2, 2 }, 32 },
	{ "iq4_xs", ISQ_TYPE_IQ4_XS, 2, 2, { 256, 2 }, 2 * 136 },
	{ "q4_0.ones", ISQ_TYPE_Q4_0, 4, 1, { 32, 1, 1, 1 }, 18 },
};

TEST(writer_round_trip_every_type)
{
	struct isq_gguf_writer *w = isq_gguf_writer_new();
	CHECK_EQ_INT(isq_gguf_set_u32(w, "str", 5), 0); /* replaced below by a string, in place */
	CHECK_EQ_INT(isq_gguf_set_scalar(w, "u8", ISQ_GGUF_U8, 200), 0);
	CHECK_EQ_INT(isq_gguf_set_scalar(w, "i8", ISQ_GGUF_I8, (uint8_t)-5), 0);
	CHECK_EQ_INT(isq_gguf_set_scalar(w, "u16", ISQ_GGUF_U16, 60000), 0);
	CHECK_EQ_INT(isq_gguf_set_scalar(w, "i16", ISQ_GGUF_I16, (uint64_t)-300), 0);
	CHECK_EQ_INT(isq_gguf_set_u32(w, "u32", 4000000000u), 0);
	CHECK_EQ_INT(isq_gguf_set_i32(w, "i32", -7), 0);
	CHECK_EQ_INT(isq_gguf_set_f32(w, "f32", 0.25f), 0);
	CHECK_EQ_INT(isq_gguf_set_bool(w, "bool", 42), 0);
	CHECK_EQ_INT(isq_gguf_set_scalar(w, "bool2", ISQ_GGUF_BOOL, 0x100), 0); /* nonzero: true */
	CHECK_EQ_INT(isq_gguf_set_u64(w, "u64", UINT64_MAX), 0);
	CHECK_EQ_INT(isq_gguf_set_i64(w, "i64", INT64_MIN), 0);
	CHECK_EQ_INT(isq_gguf_set_f64(w, "f64", -1e-300), 0);
	CHECK_EQ_INT(isq_gguf_set_str(w, "gone", "deleted below"), 0);
	CHECK_EQ_INT(isq_gguf_set_arr(w, "a.u8", ISQ_GGUF_U8, a_u8, 3), 0);
	CHECK_EQ_INT(isq_gguf_set_arr(w, "a.i8", ISQ_GGUF_I8, a_i8, 3), 0);
	CHECK_EQ_INT(isq_gguf_set_arr(w, "a.u16", ISQ_GGUF_U16, a_u16, 2), 0);
	CHECK_EQ_INT(isq_gguf_set_arr(w, "a.i16", ISQ_GGUF_I16, a_i16, 3), 0);
	CHECK_EQ_INT(isq_gguf_set_arr(w, "a.u32", ISQ_GGUF_U32, a_u32, 2), 0);
	CHECK_EQ_INT(isq_gguf_set_arr(w, "a.i32", ISQ_GGUF_I32, a_i32, 3), 0);
	CHECK_EQ_INT(isq_gguf_set_arr(w, "a.f32", ISQ_GGUF_F32, a_f32, 3), 0);
	const uint8_t bools[] = { 0, 2, 1 };
	CHECK_EQ_INT(isq_gguf_set_arr(w, "a.bool", ISQ_GGUF_BOOL, bools, 3), 0);
	CHECK_EQ_INT(isq_gguf_set_arr_str(w, "a.str", a_str, 4), 0);
	CHECK_EQ_INT(isq_gguf_set_arr(w, "a.u64", ISQ_GGUF_U64, a_u64, 2), 0);
	CHECK_EQ_INT(isq_gguf_set_arr(w, "a.i64", ISQ_GGUF_I64, a_i64, 2), 0);
	CHECK_EQ_INT(isq_gguf_set_arr(w, "a.f64", ISQ_GGUF_F64, a_f64, 3), 0);
	CHECK_EQ_INT(isq_gguf_set_arr(w, "a.empty", ISQ_GGUF_F32, NULL, 0), 0);
	CHECK_EQ_INT(isq_gguf_set_arr_str(w, "a.empty_str", NULL, 0), 0);
	CHECK_EQ_INT(isq_gguf_set_str(w, "str", "replaced"), 0);
	isq_gguf_del(w, "gone");
	isq_gguf_del(w, "never there");
	CHECK_EQ_INT(isq_gguf_set_str(w, "gone", "back, at the end"), 0);
	CHECK_EQ_INT(isq_gguf_set_u32(w, "general.alignment", 64), 0);
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(decls); i++)
		CHECK_MSG(isq_gguf_writer_add_tensor(w, decls[i].name, decls[i].type, decls[i].n_dims, decls[i].ne) == 0,
			  "%s: %s", decls[i].name, isq_gguf_writer_errmsg(w));

	/* the data: random bytes, streamed in chunks of 37 that straddle tensor boundaries */
	size_t total = 0;
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(decls); i++)
		total += decls[i].nbytes;
	uint8_t *data = malloc(total);
	for (size_t i = 0; i < total; i++)
		data[i] = rnd8();
	uint64_t expect_size = isq_gguf_writer_size(w);
	struct isq_buf mem = ISQ_BUF_INIT;
	struct isq_out out;
	isq_out_open_memory(&out, &mem);
	CHECK_EQ_INT(isq_gguf_writer_begin(w, &out), 0);
	CHECK_EQ_INT(mem.len % 64, 0); /* the header with its padding */
	for (size_t done = 0; done < total;) {
		size_t k = ISQ_MIN((size_t)37, total - done);
		CHECK_EQ_INT(isq_gguf_writer_write(w, data + done, k), 0);
		done += k;
	}
	CHECK_EQ_INT(isq_gguf_writer_write(w, data, 0), 0);
	CHECK_EQ_INT(isq_gguf_writer_finish(w), 0);
	CHECK_EQ_INT(mem.len, expect_size);
	CHECK_EQ_INT(isq_gguf_writer_write(w, data, 1), ISQ_EINVAL); /* nothing more is declared */
	CHECK(strstr(isq_gguf_writer_errmsg(w), "more than the declared") != NULL);
	isq_gguf_writer_free(w);

	struct isq_gguf *g = isq_gguf_new();
	CHECK_MSG(isq_gguf_open_memory(g, mem.data, mem.len) == 0, "%s", g->err.msg);
	CHECK_EQ_INT(g->alignment, 64);
	CHECK_EQ_INT(g->n_kv, 29);
	if (g->n_kv != 29) {
		isq_gguf_free(g);
		return;
	}
	CHECK_STR(g->kv[0].key, "str"); /* replaced in place: first, and now a string */
	CHECK_EQ_INT(g->kv[0].type, ISQ_GGUF_STRING);
	CHECK_STR(g->kv[13].key, "a.u8");
	CHECK_STR(g->kv[27].key, "gone"); /* deleted, then added again at the end */
	CHECK_STR(g->kv[28].key, "general.alignment");
	uint64_t u;
	int64_t i;
	double f;
	char *s = isq_gguf_get_str(g, "str");
	CHECK_STR(s, "replaced");
	free(s);
	CHECK(isq_gguf_get_u64(g, "u8", &u) == 0 && u == 200);
	CHECK(isq_gguf_get_i64(g, "i8", &i) == 0 && i == -5);
	CHECK(isq_gguf_get_u64(g, "u16", &u) == 0 && u == 60000);
	CHECK(isq_gguf_get_i64(g, "i16", &i) == 0 && i == -300);
	CHECK(isq_gguf_get_u64(g, "u32", &u) == 0 && u == 4000000000u);
	CHECK(isq_gguf_get_i64(g, "i32", &i) == 0 && i == -7);
	CHECK(isq_gguf_get_f64(g, "f32", &f) == 0 && f == 0.25);
	CHECK(isq_gguf_find_kv(g, "bool") && isq_gguf_find_kv(g, "bool")->type == ISQ_GGUF_BOOL);
	CHECK(isq_gguf_get_u64(g, "bool", &u) == 0 && u == 1);
	CHECK(isq_gguf_get_u64(g, "bool2", &u) == 0 && u == 1);
	CHECK(isq_gguf_get_u64(g, "u64", &u) == 0 && u == UINT64_MAX);
	CHECK_EQ_INT(isq_gguf_get_i64(g, "u64", &i), ISQ_EFORMAT); /* does not fit */
	CHECK(isq_gguf_get_i64(g, "i64", &i) == 0 && i == INT64_MIN);
	CHECK(isq_gguf_get_f64(g, "f64", &f) == 0 && f == -1e-300);
	check_num_array(g, "a.u8", ISQ_GGUF_U8, (const double[]){ 0, 1, 255 }, 3);
	check_num_array(g, "a.i8", ISQ_GGUF_I8, (const double[]){ -128, -1, 127 }, 3);
	check_num_array(g, "a.u16", ISQ_GGUF_U16, (const double[]){ 0, 65535 }, 2);
	check_num_array(g, "a.i16", ISQ_GGUF_I16, (const double[]){ -32768, 5, 32767 }, 3);
	check_num_array(g, "a.u32", ISQ_GGUF_U32, (const double[]){ 7, 4000000000.0 }, 2);
	check_num_array(g, "a.i32", ISQ_GGUF_I32, (const double[]){ -2147483648.0, -1, 2 }, 3);
	check_num_array(g, "a.f32", ISQ_GGUF_F32, (const double[]){ 1.5, -2.25, (double)1e-30f }, 3);
	check_num_array(g, "a.bool", ISQ_GGUF_BOOL, (const double[]){ 0, 1, 1 }, 3);
	check_num_array(g, "a.u64", ISQ_GGUF_U64, (const double[]){ 18446744073709551615.0, 1 }, 2);
	check_num_array(g, "a.i64", ISQ_GGUF_I64, (const double[]){ -9223372036854775808.0, 9223372036854775807.0 },
			2);
	check_num_array(g, "a.f64", ISQ_GGUF_F64, (const double[]){ 1e300, -0.0, 3.25 }, 3);
	check_num_array(g, "a.empty", ISQ_GGUF_F32, NULL, 0);
	const struct isq_gguf_kv *kv = isq_gguf_find_kv(g, "a.bool");
	CHECK(kv && kv->arr_bytes == 3 && kv->arr_data[1] == 1); /* stored as 0/1 */
	kv = isq_gguf_find_kv(g, "a.str");
	struct isq_gguf_arr_iter it;
	const char *p;
	uint64_t len;
	isq_gguf_arr_iter_init(&it, kv);
	for (size_t k = 0; k < 4; k++)
		CHECK_MSG(isq_gguf_arr_next_str(&it, &p, &len) == 0 && len == strlen(a_str[k]) && !memcmp(p, a_str[k], len),
			  "a.str[%zu]", k);
	CHECK(isq_gguf_arr_next_str(&it, &p, &len) == ISQ_ENOTFOUND);
	kv = isq_gguf_find_kv(g, "a.empty_str");
	CHECK(kv && kv->type == ISQ_GGUF_ARRAY && kv->arr_type == ISQ_GGUF_STRING && kv->arr_n == 0);

	/* tensors: order, shapes, n_dims as ggml_n_dims, offsets as running padded sums, data */
	CHECK_EQ_INT(g->n_tensors, ISQ_ARRAY_SIZE(decls));
	uint64_t off = 0;
	size_t pos = 0;
	for (size_t k = 0; k < ISQ_ARRAY_SIZE(decls) && k < g->n_tensors; k++) {
		const struct decl *d = &decls[k];
		const struct isq_gguf_tensor *t = &g->tensors[k];
		CHECK_STR(t->name, d->name);
		CHECK_MSG(t->type == d->type && t->n_dims == d->want_dims && t->nbytes == d->nbytes && t->offset == off,
			  "%s: type %u dims %d bytes %llu offset %llu", d->name, t->type, t->n_dims,
			  (unsigned long long)t->nbytes, (unsigned long long)t->offset);
		for (int dd = 0; dd < 4; dd++)
			CHECK_EQ_INT(t->ne[dd], dd < d->n_dims ? d->ne[dd] : 1);
		CHECK_MSG(!memcmp(t->data, data + pos, (size_t)d->nbytes), "%s: data differs", d->name);
		/* padding after it is zeros */
		for (uint64_t z = d->nbytes; z < (d->nbytes + 63) / 64 * 64; z++)
			CHECK(t->data[z] == 0);
		pos += d->nbytes;
		off += (d->nbytes + 63) / 64 * 64;
	}
	CHECK_EQ_INT(g->data_offset + off, mem.len);

	/* copying the result through set_kv reproduces it byte for byte */
	struct isq_buf again = ISQ_BUF_INIT;
	copy_through_writer(g, &again);
	CHECK_MSG(again.len == mem.len && !memcmp(again.data, mem.data, mem.len), "copy differs at %zu",
		  first_difference(again.data, again.len, mem.data, mem.len));
	isq_buf_release(&again);
	isq_gguf_free(g);
	isq_buf_release(&mem);
	free(data);
}

TEST(writer_with_no_tensors)
{
	struct isq_gguf_writer *w = isq_gguf_writer_new();
	CHECK_EQ_INT(isq_gguf_set_str(w, "general.architecture", "llama"), 0);
	struct isq_buf mem = ISQ_BUF_INIT;
	struct isq_out out;
	isq_out_open_memory(&out, &mem);
	uint64_t size = isq_gguf_writer_size(w);
	CHECK_EQ_INT(isq_gguf_writer_begin(w, &out), 0);
	CHECK_EQ_INT(isq_gguf_writer_finish(w), 0);
	/* 24 + (8 + 20 + 4 + 8 + 5) = 69 bytes, padded to 96 as gguf_write_to_file does */
	CHECK_EQ_INT(mem.len, 96);
	CHECK_EQ_INT(size, 96);
	CHECK(mem.len == 96 && mem.data[69] == 0 && mem.data[95] == 0);
	isq_gguf_writer_free(w);
	struct isq_gguf *g = isq_gguf_new();
	CHECK_EQ_INT(isq_gguf_open_memory(g, mem.data, mem.len), 0);
	CHECK(g->n_tensors == 0 && g->n_kv == 1 && g->data_offset == 69); /* ggml's reader: no data section */
	isq_gguf_free(g);
	/* and a file without the padding reads too, as with ggml */
	g = isq_gguf_new();
	CHECK_EQ_INT(open_copy(g, mem.data, 69, NULL), 0);
	isq_gguf_free(g);
	isq_buf_release(&mem);

	/* an empty file: header only */
	w = isq_gguf_writer_new();
	isq_out_open_memory(&out, &mem);
	CHECK_EQ_INT(isq_gguf_writer_begin(w, &out), 0);
	CHECK_EQ_INT(isq_gguf_writer_finish(w), 0);
	CHECK_EQ_INT(mem.len, 32);
	isq_gguf_writer_free(w);
	g = isq_gguf_new();
	CHECK_EQ_INT(isq_gguf_open_memory(g, mem.data, mem.len), 0);
	CHECK(g->n_tensors == 0 && g->n_kv == 0);
	isq_gguf_free(g);
	isq_buf_release(&mem);
}

static int has(const struct isq_gguf_writer *w, const char *needle)
{
	const char *m = isq_gguf_writer_errmsg(w);
	int ok = strstr(m, needle) != NULL && one_line(m);
	if (!ok)
		printf("  message '%s' lacks '%s'\n", m, needle);
	return ok;
}

TEST(writer_refuses_bad_calls)
{
	struct isq_gguf_writer *w = isq_gguf_writer_new();
	const int64_t ne8[1] = { 8 }, ne16[1] = { 16 }, neg[2] = { 8, -1 };
	char n64[65];
	memset(n64, 'n', 64);
	n64[64] = 0;
	CHECK(isq_gguf_writer_add_tensor(w, n64, ISQ_TYPE_F32, 1, ne8) == ISQ_EINVAL && has(w, "longer than 63"));
	n64[63] = 0;
	CHECK_EQ_INT(isq_gguf_writer_add_tensor(w, n64, ISQ_TYPE_F32, 1, ne8), 0);
	CHECK(isq_gguf_writer_add_tensor(w, n64, ISQ_TYPE_F32, 1, ne8) == ISQ_EINVAL && has(w, "duplicate tensor"));
	CHECK(isq_gguf_writer_add_tensor(w, "q", ISQ_TYPE_Q4_0, 1, ne16) == ISQ_EINVAL &&
	      has(w, "tensor 'q': row length 16 is not a multiple"));
	CHECK(isq_gguf_writer_add_tensor(w, "r", 4, 1, ne8) == ISQ_EINVAL && has(w, "unknown ggml type id 4"));
	CHECK(isq_gguf_writer_add_tensor(w, "r", ISQ_TYPE_HQQ4, 1, ne8) == ISQ_EINVAL && has(w, "unknown ggml type"));
	CHECK(isq_gguf_writer_add_tensor(w, "r", ISQ_TYPE_F32, 2, neg) == ISQ_EINVAL && has(w, "negative"));
	CHECK(isq_gguf_writer_add_tensor(w, "r", ISQ_TYPE_F32, 0, ne8) == ISQ_EINVAL && has(w, "0 dimensions"));
	CHECK(isq_gguf_writer_add_tensor(w, "r", ISQ_TYPE_F32, 5, ne8) == ISQ_EINVAL && has(w, "5 dimensions"));
	const int64_t huge[3] = { INT64_C(1) << 31, INT64_C(1) << 31, INT64_C(1) << 31 };
	CHECK(isq_gguf_writer_add_tensor(w, "r", ISQ_TYPE_F32, 3, huge) == ISQ_EINVAL && has(w, "overflows"));
	CHECK(isq_gguf_set_u32(w, "", 1) == ISQ_EINVAL && has(w, "empty"));
	CHECK(isq_gguf_set_scalar(w, "k", ISQ_GGUF_STRING, 1) == ISQ_EINVAL && has(w, "key 'k'"));
	CHECK(isq_gguf_set_arr(w, "k", ISQ_GGUF_ARRAY, ne8, 1) == ISQ_EINVAL && has(w, "key 'k'"));
	CHECK(isq_gguf_set_arr(w, "k", ISQ_GGUF_STRING, ne8, 1) == ISQ_EINVAL && has(w, "key 'k'"));

	/* a failed set leaves the old value in place */
	CHECK_EQ_INT(isq_gguf_set_u32(w, "keep", 77), 0);
	CHECK(isq_gguf_set_arr(w, "keep", ISQ_GGUF_ARRAY, ne8, 1) == ISQ_EINVAL);
	/* a hand-made kv whose bytes do not match its count is refused */
	struct isq_gguf_kv kv = { 0 };
	uint8_t bytes[16] = { 1, 0, 0, 0, 0, 0, 0, 0, 'x' };
	kv.key = "bad.arr";
	kv.type = ISQ_GGUF_ARRAY;
	kv.arr_type = ISQ_GGUF_U32;
	kv.arr_n = 3;
	kv.arr_data = bytes;
	kv.arr_bytes = 8;
	CHECK(isq_gguf_set_kv(w, &kv) == ISQ_EINVAL && has(w, "key 'bad.arr'"));
	kv.arr_type = ISQ_GGUF_STRING;
	kv.arr_n = 2;
	kv.arr_bytes = 9; /* one string "x", not two */
	CHECK(isq_gguf_set_kv(w, &kv) == ISQ_EINVAL && has(w, "key 'bad.arr'"));
	kv.arr_n = 1;
	CHECK_EQ_INT(isq_gguf_set_kv(w, &kv), 0);
	kv.type = (enum isq_gguf_vtype)13;
	CHECK(isq_gguf_set_kv(w, &kv) == ISQ_EINVAL);

	/* bad alignments are refused at begin; writer_size says 0 */
	struct isq_buf mem = ISQ_BUF_INIT;
	struct isq_out out;
	isq_out_open_memory(&out, &mem);
	CHECK(isq_gguf_writer_write(w, "x", 1) == ISQ_EINVAL && has(w, "before the header"));
	CHECK(isq_gguf_writer_finish(w) == ISQ_EINVAL);
	CHECK_EQ_INT(isq_gguf_set_u32(w, "general.alignment", 24), 0);
	CHECK_EQ_INT(isq_gguf_writer_size(w), 0);
	CHECK(isq_gguf_writer_begin(w, &out) == ISQ_EINVAL && has(w, "general.alignment"));
	CHECK_EQ_INT(isq_gguf_set_u64(w, "general.alignment", 32), 0);
	CHECK(isq_gguf_writer_begin(w, &out) == ISQ_EINVAL && has(w, "general.alignment"));
	CHECK_EQ_INT(mem.len, 0);
	isq_gguf_del(w, "general.alignment");
	CHECK(isq_gguf_writer_size(w) > 0);

	/* declared 32 bytes of tensor data; finish with less names the tensor */
	CHECK_EQ_INT(isq_gguf_writer_begin(w, &out), 0);
	CHECK(isq_gguf_writer_begin(w, &out) == ISQ_EINVAL && has(w, "already written"));
	CHECK(isq_gguf_set_u32(w, "late", 1) == ISQ_EINVAL && has(w, "key 'late' set after the header"));
	CHECK(isq_gguf_writer_add_tensor(w, "late", ISQ_TYPE_F32, 1, ne8) == ISQ_EINVAL && has(w, "tensor 'late'"));
	CHECK_EQ_INT(isq_gguf_writer_write(w, "0123456789", 10), 0);
	CHECK(isq_gguf_writer_finish(w) == ISQ_EINVAL && has(w, "10 of 32 bytes written") && has(w, n64));
	CHECK_EQ_INT(isq_gguf_writer_write(w, bytes, 16), 0);
	/* too much is refused whole, before anything is written */
	CHECK(isq_gguf_writer_write(w, bytes, 16) == ISQ_EINVAL && has(w, "10 bytes more than"));
	CHECK(isq_gguf_writer_finish(w) == ISQ_EINVAL && has(w, "26 of 32 bytes written"));
	CHECK_EQ_INT(isq_gguf_writer_write(w, "abcdef", 6), 0);
	CHECK_EQ_INT(isq_gguf_writer_finish(w), 0);
	isq_gguf_writer_free(w);
	struct isq_gguf *g = isq_gguf_new();
	CHECK_EQ_INT(isq_gguf_open_memory(g, mem.data, mem.len), 0);
	uint64_t u;
	CHECK(isq_gguf_get_u64(g, "keep", &u) == 0 && u == 77);
	const struct isq_gguf_kv *k2 = isq_gguf_find_kv(g, "bad.arr");
	CHECK(k2 && k2->arr_n == 1 && k2->arr_bytes == 9);
	CHECK(g->n_tensors == 1 && g->tensors[0].nbytes == 32 && !memcmp(g->tensors[0].data, "0123456789", 10) &&
	      !memcmp(g->tensors[0].data + 26, "abcdef", 6));
	isq_gguf_free(g);
	isq_buf_release(&mem);
	isq_gguf_writer_free(NULL);
	isq_gguf_free(NULL);
}

/* ---- paths and stdin ---- */

static void write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	ISQ_ASSERT(f && fwrite(p, 1, n, f) == n && fclose(f) == 0);
}

TEST(open_paths_and_stdin)
{
	struct small s;
	small_file(&s);
	char path[4200], badpath[4200];
	snprintf(path, sizeof(path), "%s/small.gguf", test_tmpdir());
	snprintf(badpath, sizeof(badpath), "%s/bad.gguf", test_tmpdir());
	write_file(path, s.b.data, s.b.len);
	struct isq_gguf *g = isq_gguf_new();
	CHECK_EQ_INT(isq_gguf_open(g, path), 0);
	CHECK(g->n_tensors == 2 && g->file_size == s.b.len);
	/* a malformed file on disk: the message starts with the path */
	put64(&s.b, s.t1_off, 64);
	write_file(badpath, s.b.data, s.b.len);
	CHECK_EQ_INT(isq_gguf_open(g, badpath), ISQ_EFORMAT);
	CHECK(!strncmp(g->err.msg, badpath, strlen(badpath)) && strstr(g->err.msg, "tensor 'b': offset 64") &&
	      one_line(g->err.msg));
	CHECK(g->n_tensors == 0);
	char missing[4300];
	snprintf(missing, sizeof(missing), "%s/missing.gguf", test_tmpdir());
	CHECK(isq_gguf_open(g, missing) != 0 && strstr(g->err.msg, "missing.gguf") != NULL);
	put64(&s.b, s.t1_off, 32);

	/* "-": standard input, here a pipe holding the whole (small) file */
	int fds[2];
	ISQ_ASSERT(pipe(fds) == 0);
	ISQ_ASSERT(write(fds[1], s.b.data, s.b.len) == (ssize_t)s.b.len);
	close(fds[1]);
	int saved = dup(0);
	dup2(fds[0], 0);
	close(fds[0]);
	int rc = isq_gguf_open(g, "-");
	dup2(saved, 0);
	close(saved);
	CHECK_MSG(rc == 0, "stdin: %s", g->err.msg);
	const struct isq_gguf_tensor *t = isq_gguf_find_tensor(g, "b");
	CHECK(t && t->nbytes == 34 && !memcmp(t->data, s.b.data + s.data + 32, 34));
	/* a truncated stdin names "<stdin>" */
	ISQ_ASSERT(pipe(fds) == 0);
	ISQ_ASSERT(write(fds[1], s.b.data, 40) == 40);
	close(fds[1]);
	saved = dup(0);
	dup2(fds[0], 0);
	close(fds[0]);
	rc = isq_gguf_open(g, "-");
	dup2(saved, 0);
	close(saved);
	CHECK(rc == ISQ_EFORMAT && !strncmp(g->err.msg, "<stdin>: ", 9));
	isq_gguf_free(g);
	isq_buf_release(&s.b);
}

/* ---- llama.cpp's files ---- */

struct ref_file {
	const char *name;
	uint64_t size;
	size_t n_kv;
	int n_type[ISQ_GGML_TYPE_COUNT]; /* tensors per ggml type, counted by an independent parser */
};

static const struct ref_file refs[] = {
	{ "stories260K-f32.gguf", 1185376, 19, { [ISQ_TYPE_F32] = 48 } },
	{ "stories260K-Q8_0.gguf", 379168, 21, { [ISQ_TYPE_Q8_0] = 32, [ISQ_TYPE_F32] = 11, [ISQ_TYPE_F16] = 5 } },
	{ "stories260K-Q6_K.gguf", 379168, 21, { [ISQ_TYPE_Q8_0] = 32, [ISQ_TYPE_F32] = 11, [ISQ_TYPE_F16] = 5 } },
	{ "stories260K-Q5_1.gguf", 315168, 21,
	  { [ISQ_TYPE_Q5_1] = 31, [ISQ_TYPE_Q8_0] = 1, [ISQ_TYPE_F32] = 11, [ISQ_TYPE_F16] = 5 } },
	{ "stories260K-Q5_0.gguf", 302560, 21,
	  { [ISQ_TYPE_Q5_0] = 31, [ISQ_TYPE_Q8_0] = 1, [ISQ_TYPE_F32] = 11, [ISQ_TYPE_F16] = 5 } },
	{ "stories260K-Q4_K_M.gguf", 304096, 21,
	  { [ISQ_TYPE_Q5_0] = 29, [ISQ_TYPE_Q8_0] = 3, [ISQ_TYPE_F32] = 11, [ISQ_TYPE_F16] = 5 } },
	{ "stories260K-Q4_1.gguf", 289632, 21,
	  { [ISQ_TYPE_Q4_1] = 31, [ISQ_TYPE_Q8_0] = 1, [ISQ_TYPE_F32] = 11, [ISQ_TYPE_F16] = 5 } },
	{ "stories260K-Q4_0.gguf", 277024, 21,
	  { [ISQ_TYPE_Q4_0] = 31, [ISQ_TYPE_Q8_0] = 1, [ISQ_TYPE_F32] = 11, [ISQ_TYPE_F16] = 5 } },
};

static int ref_path(char *buf, size_t n, const char *name)
{
	char rel[256];
	snprintf(rel, sizeof(rel), "ref/llamacpp-stories260K/%s", name);
	return test_shared_path(buf, n, rel) != NULL;
}

static void check_tensor(const struct isq_gguf *g, const char *name, uint32_t type, int64_t ne0, int64_t ne1)
{
	const struct isq_gguf_tensor *t = isq_gguf_find_tensor(g, name);
	CHECK_MSG(t && t->type == type && t->ne[0] == ne0 && t->ne[1] == ne1 && t->n_dims == (ne1 > 1 ? 2 : 1),
		  "%s: type %u ne [%lld, %lld]", name, t ? t->type : 999, t ? (long long)t->ne[0] : -1,
		  t ? (long long)t->ne[1] : -1);
}

TEST(llama_cpp_files_open)
{
	char path[8192];
	if (!ref_path(path, sizeof(path), refs[0].name))
		SKIP("../shared/ref/llamacpp-stories260K is absent");
	for (size_t k = 0; k < ISQ_ARRAY_SIZE(refs); k++) {
		CHECK_MSG(ref_path(path, sizeof(path), refs[k].name), "%s is missing", refs[k].name);
		struct isq_gguf *g = isq_gguf_new();
		CHECK_MSG(isq_gguf_open(g, path) == 0, "%s: %s", refs[k].name, g->err.msg);
		CHECK_EQ_INT(g->version, 3);
		CHECK_EQ_INT(g->file_size, refs[k].size);
		CHECK_EQ_INT(g->n_kv, refs[k].n_kv);
		CHECK_EQ_INT(g->n_tensors, 48);
		CHECK_EQ_INT(g->alignment, 32);
		int count[ISQ_GGML_TYPE_COUNT] = { 0 };
		for (size_t i = 0; i < g->n_tensors; i++)
			if (g->tensors[i].type < ISQ_GGML_TYPE_COUNT)
				count[g->tensors[i].type]++;
		CHECK_MSG(!memcmp(count, refs[k].n_type, sizeof(count)), "%s: tensor types differ", refs[k].name);
		char *arch = isq_gguf_get_str(g, "general.architecture");
		CHECK_STR(arch, "llama");
		free(arch);
		isq_gguf_free(g);
	}

	ref_path(path, sizeof(path), "stories260K-f32.gguf");
	struct isq_gguf *g = isq_gguf_new();
	CHECK_EQ_INT(isq_gguf_open(g, path), 0);
	const struct isq_gguf_kv *tok = isq_gguf_find_kv(g, "tokenizer.ggml.tokens");
	CHECK(tok && tok->type == ISQ_GGUF_ARRAY && tok->arr_type == ISQ_GGUF_STRING && tok->arr_n == 512);
	struct isq_gguf_arr_iter it;
	const char *s;
	uint64_t len, n = 0;
	isq_gguf_arr_iter_init(&it, tok);
	while (isq_gguf_arr_next_str(&it, &s, &len) == 0) {
		if (n == 0)
			CHECK(len == 5 && !memcmp(s, "<unk>", 5));
		if (n == 2)
			CHECK(len == 4 && !memcmp(s, "</s>", 4));
		n++;
	}
	CHECK_EQ_INT(n, 512);
	const struct isq_gguf_kv *tt = isq_gguf_find_kv(g, "tokenizer.ggml.token_type");
	int64_t v;
	CHECK(tt && tt->arr_type == ISQ_GGUF_I32 && tt->arr_n == 512 && isq_gguf_arr_i64(tt, 0, &v) == 0 && v == 2);
	uint64_t u;
	double f;
	CHECK(isq_gguf_get_u64(g, "llama.block_count", &u) == 0 && u == 5);
	CHECK(isq_gguf_get_u64(g, "llama.embedding_length", &u) == 0 && u == 64);
	CHECK(isq_gguf_get_u64(g, "tokenizer.ggml.padding_token_id", &u) == 0 && u == 4294967295u);
	CHECK(isq_gguf_get_f64(g, "llama.attention.layer_norm_rms_epsilon", &f) == 0 && f == (double)1e-5f);
	CHECK_EQ_INT(g->data_offset, 14176); /* header ends at 14152, padded to 32 */
	check_tensor(g, "token_embd.weight", ISQ_TYPE_F32, 64, 512);
	check_tensor(g, "output_norm.weight", ISQ_TYPE_F32, 64, 1);
	const struct isq_gguf_tensor *t = isq_gguf_find_tensor(g, "output.weight");
	CHECK(t && t->offset == 131328 && t->nbytes == 131072);
	isq_gguf_free(g);

	ref_path(path, sizeof(path), "stories260K-Q4_0.gguf");
	g = isq_gguf_new();
	CHECK_EQ_INT(isq_gguf_open(g, path), 0);
	check_tensor(g, "token_embd.weight", ISQ_TYPE_Q4_0, 64, 512);
	check_tensor(g, "blk.0.attn_q.weight", ISQ_TYPE_Q4_0, 64, 64);
	check_tensor(g, "blk.4.attn_k.weight", ISQ_TYPE_Q4_0, 64, 32);
	check_tensor(g, "blk.0.ffn_down.weight", ISQ_TYPE_F16, 172, 64);
	check_tensor(g, "output.weight", ISQ_TYPE_Q8_0, 64, 512);
	t = isq_gguf_find_tensor(g, "blk.0.attn_q.weight");
	CHECK(t && t->nbytes == 64 / 32 * 18 * 64 && t->offset == 57216);
	isq_gguf_free(g);

	ref_path(path, sizeof(path), "stories260K-Q4_K_M.gguf");
	g = isq_gguf_new();
	CHECK_EQ_INT(isq_gguf_open(g, path), 0);
	/* rows of 64 cannot hold a 256-element K block: llama.cpp fell back to Q5_0 */
	check_tensor(g, "token_embd.weight", ISQ_TYPE_Q5_0, 64, 512);
	check_tensor(g, "blk.0.ffn_down.weight", ISQ_TYPE_F16, 172, 64);
	isq_gguf_free(g);
}

TEST(llama_cpp_files_copy_byte_for_byte)
{
	char path[8192];
	if (!ref_path(path, sizeof(path), refs[0].name))
		SKIP("../shared/ref/llamacpp-stories260K is absent");
	for (size_t k = 0; k < ISQ_ARRAY_SIZE(refs); k++) {
		if (!ref_path(path, sizeof(path), refs[k].name))
			continue;
		struct isq_gguf *g = isq_gguf_new();
		CHECK_EQ_INT(isq_gguf_open(g, path), 0);
		struct isq_buf out = ISQ_BUF_INIT;
		copy_through_writer(g, &out);
		/* same content in the same order: the very bytes llama.cpp wrote */
		CHECK_MSG(out.len == g->file_size && !memcmp(out.data, g->map.data, out.len),
			  "%s: %zu vs %llu bytes, first difference at %zu", refs[k].name, out.len,
			  (unsigned long long)g->file_size, first_difference(out.data, out.len, g->map.data, g->file_size));
		isq_buf_release(&out);
		isq_gguf_free(g);
	}
}
