/*
 * fuzz-gguf.c - random bytes through the GGUF reader.
 *
 * A refused input must come with a one-line message.  An accepted one has
 * every view it hands out touched (each string, each array element through
 * the accessors, each tensor's first and last byte), and is then copied
 * through the writer and read back: the copy must be accepted and say the
 * same thing.
 */
#include "gguf.h"

#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(x) ((x) ? (void)0 : __builtin_trap())

static volatile uint8_t sink;

static void touch(const void *p, uint64_t n)
{
	if (n) {
		sink ^= ((const uint8_t *)p)[0];
		sink ^= ((const uint8_t *)p)[n - 1];
	}
}

static void walk(const struct isq_gguf *g)
{
	for (size_t i = 0; i < g->n_kv; i++) {
		const struct isq_gguf_kv *kv = &g->kv[i];
		REQUIRE(isq_gguf_find_kv(g, kv->key) == kv);
		if (kv->type == ISQ_GGUF_STRING)
			touch(kv->str.data, kv->str.len);
		if (kv->type != ISQ_GGUF_ARRAY)
			continue;
		touch(kv->arr_data, kv->arr_bytes);
		if (kv->arr_type == ISQ_GGUF_STRING) {
			struct isq_gguf_arr_iter it;
			const char *s;
			uint64_t len, n = 0;
			isq_gguf_arr_iter_init(&it, kv);
			while (isq_gguf_arr_next_str(&it, &s, &len) == 0) {
				touch(s, len);
				n++;
			}
			REQUIRE(n == kv->arr_n);
		} else {
			for (uint64_t j = 0; j < kv->arr_n; j++) {
				double v;
				int64_t x;
				REQUIRE(isq_gguf_arr_num(kv, j, &v) == 0);
				(void)isq_gguf_arr_i64(kv, j, &x);
			}
		}
	}
	for (size_t i = 0; i < g->n_tensors; i++) {
		const struct isq_gguf_tensor *t = &g->tensors[i];
		REQUIRE(isq_gguf_find_tensor(g, t->name) == t);
		touch(t->data, t->nbytes);
	}
	char *a = isq_gguf_get_str(g, "general.architecture");
	free(a);
}

/* Two KVs say the same thing (bools as truth values, f32 NaNs as NaNs). */
static int same_kv(const struct isq_gguf_kv *a, const struct isq_gguf_kv *b)
{
	if (strcmp(a->key, b->key) || a->type != b->type)
		return 0;
	switch (a->type) {
	case ISQ_GGUF_STRING: return a->str.len == b->str.len && !memcmp(a->str.data, b->str.data, a->str.len);
	case ISQ_GGUF_F32: return a->v.f64 == b->v.f64 || (isnan(a->v.f64) && isnan(b->v.f64));
	case ISQ_GGUF_ARRAY:
		if (a->arr_type != b->arr_type || a->arr_n != b->arr_n || a->arr_bytes != b->arr_bytes)
			return 0;
		if (a->arr_type == ISQ_GGUF_BOOL) {
			for (uint64_t j = 0; j < a->arr_n; j++)
				if ((a->arr_data[j] != 0) != (b->arr_data[j] != 0))
					return 0;
			return 1;
		}
		return !a->arr_bytes || !memcmp(a->arr_data, b->arr_data, a->arr_bytes);
	default: return a->v.u64 == b->v.u64;
	}
}

static void copy_and_compare(const struct isq_gguf *g)
{
	struct isq_gguf_writer *w = isq_gguf_writer_new();
	struct isq_buf mem = ISQ_BUF_INIT;
	struct isq_out out;
	int rc = 0;
	REQUIRE(w);
	for (size_t i = 0; i < g->n_kv && !rc; i++)
		rc = isq_gguf_set_kv(w, &g->kv[i]);
	for (size_t i = 0; i < g->n_tensors && !rc; i++)
		rc = isq_gguf_writer_add_tensor(w, g->tensors[i].name, g->tensors[i].type, g->tensors[i].n_dims,
						g->tensors[i].ne);
	uint64_t size = isq_gguf_writer_size(w);
	isq_out_open_memory(&out, &mem);
	rc = rc ? rc : isq_gguf_writer_begin(w, &out);
	for (size_t i = 0; i < g->n_tensors && !rc; i++)
		rc = isq_gguf_writer_write(w, g->tensors[i].data, (size_t)g->tensors[i].nbytes);
	rc = rc ? rc : isq_gguf_writer_finish(w);
	/* whatever the reader accepts, the writer can write */
	REQUIRE(rc == 0 && mem.len == size);
	isq_gguf_writer_free(w);

	struct isq_gguf *c = isq_gguf_new();
	REQUIRE(c && isq_gguf_open_memory(c, mem.data, mem.len) == 0);
	REQUIRE(c->n_kv == g->n_kv && c->n_tensors == g->n_tensors && c->alignment == g->alignment);
	for (size_t i = 0; i < g->n_kv; i++)
		REQUIRE(same_kv(&g->kv[i], &c->kv[i]));
	for (size_t i = 0; i < g->n_tensors; i++) {
		const struct isq_gguf_tensor *a = &g->tensors[i], *b = &c->tensors[i];
		REQUIRE(!strcmp(a->name, b->name) && a->type == b->type && a->nbytes == b->nbytes && a->offset == b->offset);
		REQUIRE(!memcmp(a->ne, b->ne, sizeof(a->ne)) && b->n_dims <= a->n_dims);
		REQUIRE(!a->nbytes || !memcmp(a->data, b->data, a->nbytes));
	}
	isq_gguf_free(c);
	isq_buf_release(&mem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct isq_gguf *g = isq_gguf_new();
	if (!g)
		return 0;
	if (isq_gguf_open_memory(g, data, size) == 0) {
		walk(g);
		copy_and_compare(g);
	} else {
		const char *msg = isq_errbuf_msg(&g->err);
		REQUIRE(msg[0] && !strchr(msg, '\n') && g->n_kv == 0 && g->n_tensors == 0);
	}
	isq_gguf_free(g);
	return 0;
}
