/* gguf.c - GGUF v3 reader and streaming writer. */
#include "gguf.h"
#include "types.h"

#include <stdbool.h>

/* ---- small open-addressing hash set of names (no deletes) ---------------------- */

struct nameset {
	const char **keys;
	size_t *vals;
	size_t cap;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h;
}

static int nameset_init(struct nameset *ns, size_t n)
{
	size_t cap = 16;
	while (cap < 2 * n + 1)
		cap *= 2;
	ns->keys = calloc(cap, sizeof(*ns->keys));
	ns->vals = calloc(cap, sizeof(*ns->vals));
	ns->cap = cap;
	return ns->keys && ns->vals ? 0 : ISQ_ENOMEM;
}

static void nameset_free(struct nameset *ns)
{
	if (!ns)
		return;
	free(ns->keys);
	free(ns->vals);
}

/* Insert; returns 1 if the key was already there. */
static int nameset_add(struct nameset *ns, const char *k, size_t v)
{
	size_t i = (size_t)hash_str(k) & (ns->cap - 1);
	while (ns->keys[i]) {
		if (!strcmp(ns->keys[i], k))
			return 1;
		i = (i + 1) & (ns->cap - 1);
	}
	ns->keys[i] = k;
	ns->vals[i] = v;
	return 0;
}

static int nameset_get(const struct nameset *ns, const char *k, size_t *v)
{
	if (!ns || !ns->cap)
		return 0;
	size_t i = (size_t)hash_str(k) & (ns->cap - 1);
	while (ns->keys[i]) {
		if (!strcmp(ns->keys[i], k)) {
			*v = ns->vals[i];
			return 1;
		}
		i = (i + 1) & (ns->cap - 1);
	}
	return 0;
}

/* ---- value types ------------------------------------------------------------------ */

static const char *const vtype_names[] = { "u8",  "i8",  "u16",    "i16",   "u32", "i32", "f32",
					   "bool", "string", "array", "u64", "i64", "f64" };

const char *isq_gguf_vtype_name(enum isq_gguf_vtype t)
{
	return (unsigned)t < ISQ_GGUF_VTYPE_COUNT ? vtype_names[t] : "?";
}

static size_t vtype_size(enum isq_gguf_vtype t)
{
	switch (t) {
	case ISQ_GGUF_U8:
	case ISQ_GGUF_I8:
	case ISQ_GGUF_BOOL: return 1;
	case ISQ_GGUF_U16:
	case ISQ_GGUF_I16: return 2;
	case ISQ_GGUF_U32:
	case ISQ_GGUF_I32:
	case ISQ_GGUF_F32: return 4;
	case ISQ_GGUF_U64:
	case ISQ_GGUF_I64:
	case ISQ_GGUF_F64: return 8;
	default: return 0;
	}
}

/* Decode one scalar of type t at p into the widened union. */
static void decode_scalar(enum isq_gguf_vtype t, const uint8_t *p, struct isq_gguf_kv *kv)
{
	switch (t) {
	case ISQ_GGUF_U8:
	case ISQ_GGUF_BOOL: kv->v.u64 = p[0]; break;
	case ISQ_GGUF_I8: kv->v.i64 = (int8_t)p[0]; break;
	case ISQ_GGUF_U16: kv->v.u64 = isq_le16(p); break;
	case ISQ_GGUF_I16: kv->v.i64 = (int16_t)isq_le16(p); break;
	case ISQ_GGUF_U32: kv->v.u64 = isq_le32(p); break;
	case ISQ_GGUF_I32: kv->v.i64 = (int32_t)isq_le32(p); break;
	case ISQ_GGUF_U64: kv->v.u64 = isq_le64(p); break;
	case ISQ_GGUF_I64: kv->v.i64 = (int64_t)isq_le64(p); break;
	case ISQ_GGUF_F32: {
		uint32_t u = isq_le32(p);
		float f;
		memcpy(&f, &u, 4);
		kv->v.f64 = f;
		break;
	}
	case ISQ_GGUF_F64: {
		uint64_t u = isq_le64(p);
		memcpy(&kv->v.f64, &u, 8);
		break;
	}
	default: break;
	}
}

/* ---- reader ------------------------------------------------------------------------- */

struct cursor {
	const uint8_t *base;
	uint64_t pos, size;
};

static int cur_need(const struct cursor *c, uint64_t n)
{
	return n <= c->size - c->pos;
}

static int read_u32(struct cursor *c, uint32_t *v)
{
	if (!cur_need(c, 4))
		return -1;
	*v = isq_le32(c->base + c->pos);
	c->pos += 4;
	return 0;
}

static int read_u64(struct cursor *c, uint64_t *v)
{
	if (!cur_need(c, 8))
		return -1;
	*v = isq_le64(c->base + c->pos);
	c->pos += 8;
	return 0;
}

static int read_str(struct cursor *c, struct isq_gguf_str *s)
{
	uint64_t len;
	if (read_u64(c, &len) || !cur_need(c, len))
		return -1;
	s->len = len;
	s->data = (const char *)c->base + c->pos;
	c->pos += len;
	return 0;
}

static char *dup_str(const struct isq_gguf_str *s)
{
	char *p = malloc(s->len + 1);
	if (p) {
		memcpy(p, s->data, s->len);
		p[s->len] = '\0';
	}
	return p;
}

struct isq_gguf *isq_gguf_new(void)
{
	return calloc(1, sizeof(struct isq_gguf));
}

static void clear(struct isq_gguf *g)
{
	for (size_t i = 0; i < g->n_kv; i++)
		free(g->kv[i].key);
	for (size_t i = 0; i < g->n_tensors; i++)
		free(g->tensors[i].name);
	free(g->kv);
	free(g->tensors);
	nameset_free(g->names);
	free(g->names);
	isq_map_release(&g->map);
	g->kv = NULL;
	g->tensors = NULL;
	g->names = NULL;
	g->n_kv = g->n_tensors = 0;
}

void isq_gguf_free(struct isq_gguf *g)
{
	if (!g)
		return;
	clear(g);
	free(g);
}

static int bad(struct isq_gguf *g, const char *fmt, ...) ISQ_PRINTF(2, 3);
static int bad(struct isq_gguf *g, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	g->err.code = ISQ_EFORMAT;
	vsnprintf(g->err.msg, sizeof(g->err.msg), fmt, ap);
	va_end(ap);
	return ISQ_EFORMAT;
}

/* Skip an array's elements, validating string lengths. */
static int skip_array(struct cursor *c, enum isq_gguf_vtype at, uint64_t n)
{
	if (at == ISQ_GGUF_STRING) {
		for (uint64_t i = 0; i < n; i++) {
			struct isq_gguf_str s;
			if (read_str(c, &s))
				return -1;
		}
		return 0;
	}
	size_t es = vtype_size(at);
	uint64_t bytes;
	if (!es || isq_mul_u64(n, es, &bytes) || !cur_need(c, bytes))
		return -1;
	c->pos += bytes;
	return 0;
}

static int parse(struct isq_gguf *g)
{
	struct cursor c = { g->map.data, 0, g->map.size };
	uint32_t magic, version;
	g->file_size = g->map.size;
	if (c.size < 4 || memcmp(c.base, "GGUF", 4))
		return bad(g, "not a GGUF file (bad magic)");
	c.pos = 4;
	if (read_u32(&c, &version))
		return bad(g, "truncated header");
	(void)magic;
	if ((version & 0xffff) == 0 && version)
		return bad(g, "byte-swapped (big-endian) GGUF file: version 0x%08x", version);
	if (version != 2 && version != 3)
		return bad(g, "unsupported GGUF version %u (isq reads versions 2 and 3)", version);
	g->version = version;
	uint64_t nt, nkv;
	if (read_u64(&c, &nt) || read_u64(&c, &nkv))
		return bad(g, "truncated header");
	/* each KV needs at least 8+1 (key) + 4 (type) + 1 bytes; each tensor info at least 8+1+4+8+4+8 */
	uint64_t rest = c.size - c.pos;
	if (nkv > rest / 14)
		return bad(g, "metadata count %llu is impossible for a file of %llu bytes", (unsigned long long)nkv,
			   (unsigned long long)c.size);
	if (nt > rest / 33)
		return bad(g, "tensor count %llu is impossible for a file of %llu bytes", (unsigned long long)nt,
			   (unsigned long long)c.size);
	g->kv = calloc(nkv ? nkv : 1, sizeof(*g->kv));
	g->tensors = calloc(nt ? nt : 1, sizeof(*g->tensors));
	g->names = calloc(1, sizeof(struct nameset));
	struct nameset keys = { 0 };
	if (!g->kv || !g->tensors || !g->names || nameset_init(g->names, nt) || nameset_init(&keys, nkv)) {
		nameset_free(&keys);
		return isq_errbuf_set(&g->err, ISQ_ENOMEM, NULL);
	}
	g->alignment = ISQ_GGUF_DEFAULT_ALIGNMENT;
	int rc = 0;
	for (uint64_t i = 0; i < nkv && !rc; i++) {
		struct isq_gguf_kv *kv = &g->kv[i];
		struct isq_gguf_str k;
		uint32_t t;
		if (read_str(&c, &k)) {
			rc = bad(g, "metadata key %llu: string length past end of file", (unsigned long long)i);
			break;
		}
		kv->key = dup_str(&k);
		g->n_kv++;
		if (!kv->key) {
			rc = isq_errbuf_set(&g->err, ISQ_ENOMEM, NULL);
			break;
		}
		if (memchr(k.data, 0, k.len)) {
			rc = bad(g, "metadata key %llu contains a NUL byte", (unsigned long long)i);
			break;
		}
		if (nameset_add(&keys, kv->key, i)) {
			rc = bad(g, "duplicate metadata key '%s'", kv->key);
			break;
		}
		if (read_u32(&c, &t)) {
			rc = bad(g, "key '%s': truncated", kv->key);
			break;
		}
		if (t >= ISQ_GGUF_VTYPE_COUNT) {
			rc = bad(g, "key '%s': unknown value type %u", kv->key, t);
			break;
		}
		kv->type = (enum isq_gguf_vtype)t;
		if (t == ISQ_GGUF_STRING) {
			if (read_str(&c, &kv->str))
				rc = bad(g, "key '%s': string length past end of file", kv->key);
		} else if (t == ISQ_GGUF_ARRAY) {
			uint32_t at;
			uint64_t n;
			if (read_u32(&c, &at) || read_u64(&c, &n)) {
				rc = bad(g, "key '%s': truncated array", kv->key);
				break;
			}
			if (at == ISQ_GGUF_ARRAY) {
				rc = bad(g, "key '%s': arrays of arrays are not allowed", kv->key);
				break;
			}
			if (at >= ISQ_GGUF_VTYPE_COUNT) {
				rc = bad(g, "key '%s': unknown array element type %u", kv->key, at);
				break;
			}
			kv->arr_type = (enum isq_gguf_vtype)at;
			kv->arr_n = n;
			kv->arr_data = c.base + c.pos;
			uint64_t start = c.pos;
			if (skip_array(&c, kv->arr_type, n)) {
				rc = bad(g, "key '%s': array of %llu elements runs past end of file", kv->key,
					 (unsigned long long)n);
				break;
			}
			kv->arr_bytes = c.pos - start;
		} else {
			size_t es = vtype_size(kv->type);
			if (!cur_need(&c, es)) {
				rc = bad(g, "key '%s': value past end of file", kv->key);
				break;
			}
			decode_scalar(kv->type, c.base + c.pos, kv);
			c.pos += es;
		}
	}
	nameset_free(&keys);
	if (rc)
		return rc;
	const struct isq_gguf_kv *al = isq_gguf_find_kv(g, "general.alignment");
	if (al) {
		if (al->type != ISQ_GGUF_U32 || al->v.u64 == 0 || (al->v.u64 & (al->v.u64 - 1)))
			return bad(g, "general.alignment must be a non-zero power of two (u32)");
		g->alignment = (uint32_t)al->v.u64;
	}

	uint64_t expect = 0;
	for (uint64_t i = 0; i < nt; i++) {
		struct isq_gguf_tensor *t = &g->tensors[i];
		struct isq_gguf_str nm;
		uint32_t nd, type;
		if (read_str(&c, &nm))
			return bad(g, "tensor %llu: name length past end of file", (unsigned long long)i);
		t->name = dup_str(&nm);
		g->n_tensors++;
		if (!t->name)
			return isq_errbuf_set(&g->err, ISQ_ENOMEM, NULL);
		if (nm.len >= 64)
			return bad(g, "tensor '%.40s...': name is %llu bytes (at most 63)", t->name, (unsigned long long)nm.len);
		if (memchr(nm.data, 0, nm.len))
			return bad(g, "tensor %llu: name contains a NUL byte", (unsigned long long)i);
		if (nameset_add(g->names, t->name, i))
			return bad(g, "duplicate tensor name '%s'", t->name);
		if (read_u32(&c, &nd))
			return bad(g, "tensor '%s': truncated", t->name);
		if (nd < 1 || nd > ISQ_GGUF_MAX_DIMS)
			return bad(g, "tensor '%s': %u dimensions (1 to 4 allowed)", t->name, nd);
		t->n_dims = (int)nd;
		for (int d = 0; d < ISQ_GGUF_MAX_DIMS; d++)
			t->ne[d] = 1;
		uint64_t n = 1;
		for (uint32_t d = 0; d < nd; d++) {
			uint64_t v;
			if (read_u64(&c, &v))
				return bad(g, "tensor '%s': truncated", t->name);
			if ((int64_t)v < 0)
				return bad(g, "tensor '%s': negative dimension", t->name);
			t->ne[d] = (int64_t)v;
			if (isq_mul_u64(n, v, &n) || n > (UINT64_C(1) << 62))
				return bad(g, "tensor '%s': shape product overflows", t->name);
		}
		t->n_elements = n;
		if (read_u32(&c, &type) || read_u64(&c, &t->offset))
			return bad(g, "tensor '%s': truncated", t->name);
		const struct isq_type_traits *tt = isq_type_from_ggml(type);
		if (!tt || tt->blck <= 0 || tt->type_size == 0)
			return bad(g, "tensor '%s': unknown ggml type id %u", t->name, type);
		t->type = type;
		if (t->ne[0] % tt->blck)
			return bad(g, "tensor '%s': row length %lld is not a multiple of %s's block size %lld", t->name,
				   (long long)t->ne[0], tt->name, (long long)tt->blck);
		uint64_t rowb, bytes;
		if (isq_type_row_size((enum isq_type)type, (uint64_t)t->ne[0], &rowb) ||
		    isq_mul_u64(rowb, n / (t->ne[0] ? (uint64_t)t->ne[0] : 1), &bytes))
			return bad(g, "tensor '%s': byte size overflows", t->name);
		if (t->ne[0] == 0)
			bytes = 0;
		t->nbytes = bytes;
		if (t->offset != expect)
			return bad(g, "tensor '%s': offset %llu is not the expected %llu", t->name,
				   (unsigned long long)t->offset, (unsigned long long)expect);
		uint64_t padded = (bytes + g->alignment - 1) / g->alignment * g->alignment;
		if (isq_add_u64(expect, padded, &expect))
			return bad(g, "tensor '%s': offsets overflow", t->name);
	}
	uint64_t data = (c.pos + g->alignment - 1) / g->alignment * g->alignment;
	if (nt == 0)
		data = c.pos;
	g->data_offset = data;
	for (uint64_t i = 0; i < nt; i++) {
		struct isq_gguf_tensor *t = &g->tensors[i];
		uint64_t end;
		if (isq_add_u64(data, t->offset, &end) || isq_add_u64(end, t->nbytes, &end) || end > c.size)
			return bad(g, "tensor '%s': data offset past end of file", t->name);
		t->data = c.base + data + t->offset;
	}
	return 0;
}

int isq_gguf_open_memory(struct isq_gguf *g, const void *data, uint64_t size)
{
	clear(g);
	isq_errbuf_clear(&g->err);
	isq_map_from_memory(&g->map, data, size);
	int rc = parse(g);
	if (rc) {
		struct isq_errbuf keep = g->err;
		clear(g);
		g->err = keep;
	}
	return rc;
}

int isq_gguf_open(struct isq_gguf *g, const char *path)
{
	clear(g);
	isq_errbuf_clear(&g->err);
	int rc = isq_map_open(&g->map, path, 0, &g->err);
	if (rc)
		return rc;
	rc = parse(g);
	if (rc) {
		struct isq_errbuf keep = g->err;
		clear(g);
		g->err = keep;
		isq_errbuf_prefix(&g->err, "%s", strcmp(path, "-") ? path : "<stdin>");
	}
	return rc;
}

const struct isq_gguf_kv *isq_gguf_find_kv(const struct isq_gguf *g, const char *key)
{
	for (size_t i = 0; i < g->n_kv; i++)
		if (!strcmp(g->kv[i].key, key))
			return &g->kv[i];
	return NULL;
}

const struct isq_gguf_tensor *isq_gguf_find_tensor(const struct isq_gguf *g, const char *name)
{
	size_t i;
	return nameset_get(g->names, name, &i) ? &g->tensors[i] : NULL;
}

static int is_int(enum isq_gguf_vtype t)
{
	return t == ISQ_GGUF_U8 || t == ISQ_GGUF_I8 || t == ISQ_GGUF_U16 || t == ISQ_GGUF_I16 || t == ISQ_GGUF_U32 ||
	       t == ISQ_GGUF_I32 || t == ISQ_GGUF_U64 || t == ISQ_GGUF_I64 || t == ISQ_GGUF_BOOL;
}

static int is_signed(enum isq_gguf_vtype t)
{
	return t == ISQ_GGUF_I8 || t == ISQ_GGUF_I16 || t == ISQ_GGUF_I32 || t == ISQ_GGUF_I64;
}

int isq_gguf_get_u64(const struct isq_gguf *g, const char *key, uint64_t *out)
{
	const struct isq_gguf_kv *kv = isq_gguf_find_kv(g, key);
	if (!kv)
		return ISQ_ENOTFOUND;
	if (!is_int(kv->type) || (is_signed(kv->type) && kv->v.i64 < 0))
		return ISQ_EFORMAT;
	*out = kv->v.u64;
	return 0;
}

int isq_gguf_get_i64(const struct isq_gguf *g, const char *key, int64_t *out)
{
	const struct isq_gguf_kv *kv = isq_gguf_find_kv(g, key);
	if (!kv)
		return ISQ_ENOTFOUND;
	if (!is_int(kv->type) || (!is_signed(kv->type) && kv->v.u64 > INT64_MAX))
		return ISQ_EFORMAT;
	*out = kv->v.i64;
	return 0;
}

int isq_gguf_get_f64(const struct isq_gguf *g, const char *key, double *out)
{
	const struct isq_gguf_kv *kv = isq_gguf_find_kv(g, key);
	if (!kv)
		return ISQ_ENOTFOUND;
	if (kv->type == ISQ_GGUF_F32 || kv->type == ISQ_GGUF_F64)
		*out = kv->v.f64;
	else if (is_int(kv->type))
		*out = is_signed(kv->type) ? (double)kv->v.i64 : (double)kv->v.u64;
	else
		return ISQ_EFORMAT;
	return 0;
}

char *isq_gguf_get_str(const struct isq_gguf *g, const char *key)
{
	const struct isq_gguf_kv *kv = isq_gguf_find_kv(g, key);
	if (!kv || kv->type != ISQ_GGUF_STRING)
		return NULL;
	return dup_str(&kv->str);
}

int isq_gguf_arr_num(const struct isq_gguf_kv *kv, uint64_t i, double *out)
{
	if (kv->type != ISQ_GGUF_ARRAY || i >= kv->arr_n)
		return ISQ_EINVAL;
	size_t es = vtype_size(kv->arr_type);
	if (!es)
		return ISQ_EINVAL;
	struct isq_gguf_kv tmp = { 0 };
	decode_scalar(kv->arr_type, kv->arr_data + i * es, &tmp);
	if (kv->arr_type == ISQ_GGUF_F32 || kv->arr_type == ISQ_GGUF_F64)
		*out = tmp.v.f64;
	else if (is_signed(kv->arr_type))
		*out = (double)tmp.v.i64;
	else
		*out = (double)tmp.v.u64;
	return 0;
}

void isq_gguf_arr_iter_init(struct isq_gguf_arr_iter *it, const struct isq_gguf_kv *kv)
{
	it->kv = kv;
	it->i = 0;
	it->pos = 0;
}

int isq_gguf_arr_next_str(struct isq_gguf_arr_iter *it, const char **s, uint64_t *len)
{
	const struct isq_gguf_kv *kv = it->kv;
	if (kv->type != ISQ_GGUF_ARRAY || kv->arr_type != ISQ_GGUF_STRING || it->i >= kv->arr_n)
		return ISQ_ENOTFOUND;
	/* lengths were validated at open time (or by the writer) */
	uint64_t l = isq_le64(kv->arr_data + it->pos);
	*s = (const char *)kv->arr_data + it->pos + 8;
	*len = l;
	it->pos += 8 + l;
	it->i++;
	return 0;
}

/* ---- writer ------------------------------------------------------------------------------ */

struct wkv {
	char *key;
	enum isq_gguf_vtype type;
	struct isq_buf enc; /* the encoded value (after the type field) */
};

struct wtensor {
	char *name;
	uint32_t type;
	int n_dims;
	int64_t ne[4];
	uint64_t nbytes, offset;
};

struct isq_gguf_writer {
	struct wkv *kv;
	size_t n_kv, cap_kv;
	struct wtensor *t;
	size_t n_t, cap_t;
	struct isq_out *out;
	size_t cur;           /* tensor being written */
	uint64_t cur_written; /* bytes of it so far */
	int begun;
	struct isq_errbuf err;
};

struct isq_gguf_writer *isq_gguf_writer_new(void)
{
	return calloc(1, sizeof(struct isq_gguf_writer));
}

void isq_gguf_writer_free(struct isq_gguf_writer *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n_kv; i++) {
		free(w->kv[i].key);
		isq_buf_release(&w->kv[i].enc);
	}
	for (size_t i = 0; i < w->n_t; i++)
		free(w->t[i].name);
	free(w->kv);
	free(w->t);
	free(w);
}

const char *isq_gguf_writer_errmsg(const struct isq_gguf_writer *w)
{
	return isq_errbuf_msg(&w->err);
}

/* The slot for key (existing, or a new one at the end), with its encoding reset. */
static struct wkv *slot(struct isq_gguf_writer *w, const char *key, enum isq_gguf_vtype t)
{
	if (w->begun) {
		isq_errbuf_set(&w->err, ISQ_EINVAL, "key '%s' set after the header was written", key);
		return NULL;
	}
	for (size_t i = 0; i < w->n_kv; i++)
		if (!strcmp(w->kv[i].key, key)) {
			isq_buf_reset(&w->kv[i].enc);
			w->kv[i].type = t;
			return &w->kv[i];
		}
	if (w->n_kv == w->cap_kv) {
		size_t cap = w->cap_kv ? 2 * w->cap_kv : 32;
		struct wkv *p = realloc(w->kv, cap * sizeof(*p));
		if (!p)
			goto nomem;
		w->kv = p;
		w->cap_kv = cap;
	}
	struct wkv *s = &w->kv[w->n_kv];
	memset(s, 0, sizeof(*s));
	s->key = isq_strdup(key);
	if (!s->key)
		goto nomem;
	s->type = t;
	w->n_kv++;
	return s;
nomem:
	isq_errbuf_set(&w->err, ISQ_ENOMEM, NULL);
	return NULL;
}

static int put_le(struct isq_buf *b, uint64_t v, size_t n)
{
	uint8_t tmp[8];
	for (size_t i = 0; i < n; i++)
		tmp[i] = (uint8_t)(v >> (8 * i));
	return isq_buf_append(b, tmp, n);
}

int isq_gguf_set_scalar(struct isq_gguf_writer *w, const char *key, enum isq_gguf_vtype t, uint64_t bits)
{
	size_t es = vtype_size(t);
	if (!es)
		return isq_errbuf_set(&w->err, ISQ_EINVAL, "key '%s': not a scalar type", key);
	struct wkv *s = slot(w, key, t);
	if (!s)
		return w->err.code;
	if (put_le(&s->enc, bits, es))
		return isq_errbuf_set(&w->err, ISQ_ENOMEM, NULL);
	return 0;
}

int isq_gguf_set_u32(struct isq_gguf_writer *w, const char *key, uint32_t v)
{
	return isq_gguf_set_scalar(w, key, ISQ_GGUF_U32, v);
}
int isq_gguf_set_i32(struct isq_gguf_writer *w, const char *key, int32_t v)
{
	return isq_gguf_set_scalar(w, key, ISQ_GGUF_I32, (uint32_t)v);
}
int isq_gguf_set_u64(struct isq_gguf_writer *w, const char *key, uint64_t v)
{
	return isq_gguf_set_scalar(w, key, ISQ_GGUF_U64, v);
}
int isq_gguf_set_i64(struct isq_gguf_writer *w, const char *key, int64_t v)
{
	return isq_gguf_set_scalar(w, key, ISQ_GGUF_I64, (uint64_t)v);
}
int isq_gguf_set_f32(struct isq_gguf_writer *w, const char *key, float v)
{
	uint32_t u;
	memcpy(&u, &v, 4);
	return isq_gguf_set_scalar(w, key, ISQ_GGUF_F32, u);
}
int isq_gguf_set_f64(struct isq_gguf_writer *w, const char *key, double v)
{
	uint64_t u;
	memcpy(&u, &v, 8);
	return isq_gguf_set_scalar(w, key, ISQ_GGUF_F64, u);
}
int isq_gguf_set_bool(struct isq_gguf_writer *w, const char *key, int v)
{
	return isq_gguf_set_scalar(w, key, ISQ_GGUF_BOOL, v ? 1 : 0);
}

static int put_str(struct isq_buf *b, const char *s, uint64_t len)
{
	return put_le(b, len, 8) || isq_buf_append(b, s, (size_t)len) ? ISQ_ENOMEM : 0;
}

int isq_gguf_set_str(struct isq_gguf_writer *w, const char *key, const char *v)
{
	struct wkv *s = slot(w, key, ISQ_GGUF_STRING);
	if (!s)
		return w->err.code;
	if (put_str(&s->enc, v, strlen(v)))
		return isq_errbuf_set(&w->err, ISQ_ENOMEM, NULL);
	return 0;
}

int isq_gguf_set_arr(struct isq_gguf_writer *w, const char *key, enum isq_gguf_vtype t, const void *data, uint64_t n)
{
	size_t es = vtype_size(t);
	if (!es)
		return isq_errbuf_set(&w->err, ISQ_EINVAL, "key '%s': not a numeric element type", key);
	struct wkv *s = slot(w, key, ISQ_GGUF_ARRAY);
	if (!s)
		return w->err.code;
	if (put_le(&s->enc, (uint32_t)t, 4) || put_le(&s->enc, n, 8) || isq_buf_append(&s->enc, data, (size_t)(n * es)))
		return isq_errbuf_set(&w->err, ISQ_ENOMEM, NULL);
	return 0;
}

int isq_gguf_set_arr_str(struct isq_gguf_writer *w, const char *key, const char *const *strs, uint64_t n)
{
	struct wkv *s = slot(w, key, ISQ_GGUF_ARRAY);
	if (!s)
		return w->err.code;
	int rc = put_le(&s->enc, ISQ_GGUF_STRING, 4) || put_le(&s->enc, n, 8);
	for (uint64_t i = 0; i < n && !rc; i++)
		rc = put_str(&s->enc, strs[i], strlen(strs[i]));
	return rc ? isq_errbuf_set(&w->err, ISQ_ENOMEM, NULL) : 0;
}

int isq_gguf_set_kv(struct isq_gguf_writer *w, const struct isq_gguf_kv *kv)
{
	struct wkv *s = slot(w, kv->key, kv->type);
	if (!s)
		return w->err.code;
	int rc = 0;
	if (kv->type == ISQ_GGUF_STRING)
		rc = put_str(&s->enc, kv->str.data, kv->str.len);
	else if (kv->type == ISQ_GGUF_ARRAY)
		rc = put_le(&s->enc, kv->arr_type, 4) || put_le(&s->enc, kv->arr_n, 8) ||
		     isq_buf_append(&s->enc, kv->arr_data, (size_t)kv->arr_bytes);
	else {
		uint64_t bits = kv->v.u64;
		if (kv->type == ISQ_GGUF_F32) {
			float f = (float)kv->v.f64;
			uint32_t u;
			memcpy(&u, &f, 4);
			bits = u;
		}
		rc = put_le(&s->enc, bits, vtype_size(kv->type));
	}
	return rc ? isq_errbuf_set(&w->err, ISQ_ENOMEM, NULL) : 0;
}

void isq_gguf_del(struct isq_gguf_writer *w, const char *key)
{
	for (size_t i = 0; i < w->n_kv; i++)
		if (!strcmp(w->kv[i].key, key)) {
			free(w->kv[i].key);
			isq_buf_release(&w->kv[i].enc);
			memmove(&w->kv[i], &w->kv[i + 1], (w->n_kv - i - 1) * sizeof(*w->kv));
			w->n_kv--;
			return;
		}
}

static uint32_t writer_alignment(const struct isq_gguf_writer *w)
{
	for (size_t i = 0; i < w->n_kv; i++)
		if (!strcmp(w->kv[i].key, "general.alignment") && w->kv[i].type == ISQ_GGUF_U32) {
			uint32_t a = isq_le32(w->kv[i].enc.data);
			if (a && !(a & (a - 1)))
				return a;
		}
	return ISQ_GGUF_DEFAULT_ALIGNMENT;
}

int isq_gguf_writer_add_tensor(struct isq_gguf_writer *w, const char *name, uint32_t type, int n_dims,
			       const int64_t *ne)
{
	if (w->begun)
		return isq_errbuf_set(&w->err, ISQ_EINVAL, "tensor '%s' added after the header was written", name);
	if (strlen(name) >= 64)
		return isq_errbuf_set(&w->err, ISQ_EINVAL, "tensor name '%s' is longer than 63 bytes", name);
	if (n_dims < 1 || n_dims > 4)
		return isq_errbuf_set(&w->err, ISQ_EINVAL, "tensor '%s': %d dimensions", name, n_dims);
	for (size_t i = 0; i < w->n_t; i++)
		if (!strcmp(w->t[i].name, name))
			return isq_errbuf_set(&w->err, ISQ_EINVAL, "duplicate tensor '%s'", name);
	const struct isq_type_traits *tt = isq_type_from_ggml(type);
	if (!tt || !tt->type_size)
		return isq_errbuf_set(&w->err, ISQ_EINVAL, "tensor '%s': unknown ggml type %u", name, type);
	uint64_t rows = 1, rowb, bytes;
	for (int d = 1; d < n_dims; d++)
		if (ne[d] < 0 || isq_mul_u64(rows, (uint64_t)ne[d], &rows))
			return isq_errbuf_set(&w->err, ISQ_EINVAL, "tensor '%s': bad shape", name);
	if (ne[0] < 0 || isq_type_row_size(tt->type, (uint64_t)ne[0], &rowb) || isq_mul_u64(rowb, rows, &bytes))
		return isq_errbuf_set(&w->err, ISQ_EINVAL, "tensor '%s': row length %lld does not fit %s", name,
				      (long long)ne[0], tt->name);
	if (w->n_t == w->cap_t) {
		size_t cap = w->cap_t ? 2 * w->cap_t : 64;
		struct wtensor *p = realloc(w->t, cap * sizeof(*p));
		if (!p)
			return isq_errbuf_set(&w->err, ISQ_ENOMEM, NULL);
		w->t = p;
		w->cap_t = cap;
	}
	struct wtensor *t = &w->t[w->n_t];
	memset(t, 0, sizeof(*t));
	t->name = isq_strdup(name);
	if (!t->name)
		return isq_errbuf_set(&w->err, ISQ_ENOMEM, NULL);
	t->type = type;
	/* ggml_n_dims: trailing 1s are not written */
	int nd = n_dims;
	while (nd > 1 && ne[nd - 1] == 1)
		nd--;
	t->n_dims = nd;
	for (int d = 0; d < 4; d++)
		t->ne[d] = d < n_dims ? ne[d] : 1;
	t->nbytes = bytes;
	w->n_t++;
	return 0;
}

static uint64_t header_size(const struct isq_gguf_writer *w)
{
	uint64_t n = 4 + 4 + 8 + 8;
	for (size_t i = 0; i < w->n_kv; i++)
		n += 8 + strlen(w->kv[i].key) + 4 + w->kv[i].enc.len;
	for (size_t i = 0; i < w->n_t; i++)
		n += 8 + strlen(w->t[i].name) + 4 + 8 * (uint64_t)w->t[i].n_dims + 4 + 8;
	return n;
}

uint64_t isq_gguf_writer_size(const struct isq_gguf_writer *w)
{
	uint64_t a = writer_alignment(w), n = header_size(w);
	if (w->n_t)
		n = (n + a - 1) / a * a;
	for (size_t i = 0; i < w->n_t; i++)
		n += (w->t[i].nbytes + a - 1) / a * a;
	return n;
}

int isq_gguf_writer_begin(struct isq_gguf_writer *w, struct isq_out *out)
{
	struct isq_buf h = ISQ_BUF_INIT;
	uint64_t a = writer_alignment(w), off = 0;
	int rc = isq_buf_append(&h, "GGUF", 4) || put_le(&h, 3, 4) || put_le(&h, w->n_t, 8) || put_le(&h, w->n_kv, 8);
	for (size_t i = 0; i < w->n_kv && !rc; i++)
		rc = put_str(&h, w->kv[i].key, strlen(w->kv[i].key)) || put_le(&h, w->kv[i].type, 4) ||
		     isq_buf_append(&h, w->kv[i].enc.data ? w->kv[i].enc.data : "", w->kv[i].enc.len);
	for (size_t i = 0; i < w->n_t && !rc; i++) {
		struct wtensor *t = &w->t[i];
		rc = put_str(&h, t->name, strlen(t->name)) || put_le(&h, (uint64_t)t->n_dims, 4);
		for (int d = 0; d < t->n_dims && !rc; d++)
			rc = put_le(&h, (uint64_t)t->ne[d], 8);
		t->offset = off;
		rc = rc || put_le(&h, t->type, 4) || put_le(&h, off, 8);
		off += (t->nbytes + a - 1) / a * a;
	}
	if (rc) {
		isq_buf_release(&h);
		return isq_errbuf_set(&w->err, ISQ_ENOMEM, NULL);
	}
	if (w->n_t) {
		size_t pad = (size_t)((a - h.len % a) % a);
		uint8_t zero[256] = { 0 };
		while (pad && !rc) {
			size_t k = pad < sizeof(zero) ? pad : sizeof(zero);
			rc = isq_buf_append(&h, zero, k);
			pad -= k;
		}
	}
	w->out = out;
	w->begun = 1;
	w->cur = 0;
	w->cur_written = 0;
	rc = rc ? ISQ_ENOMEM : isq_out_write(out, h.data, h.len);
	isq_buf_release(&h);
	if (rc)
		return isq_errbuf_set(&w->err, rc, "%s", isq_errbuf_msg(&out->err));
	return 0;
}

/* Pad the current tensor when complete and move to the next one. */
static int advance(struct isq_gguf_writer *w)
{
	uint64_t a = writer_alignment(w);
	while (w->cur < w->n_t && w->cur_written == w->t[w->cur].nbytes) {
		size_t pad = (size_t)((a - w->t[w->cur].nbytes % a) % a);
		int rc = isq_out_zeros(w->out, pad);
		if (rc)
			return isq_errbuf_set(&w->err, rc, "%s", isq_errbuf_msg(&w->out->err));
		w->cur++;
		w->cur_written = 0;
	}
	return 0;
}

int isq_gguf_writer_write(struct isq_gguf_writer *w, const void *data, size_t n)
{
	if (!w->begun)
		return isq_errbuf_set(&w->err, ISQ_EINVAL, "data written before the header");
	const uint8_t *p = data;
	int rc = advance(w);
	while (n && !rc) {
		if (w->cur >= w->n_t)
			return isq_errbuf_set(&w->err, ISQ_EINVAL, "more data than the declared tensors hold");
		uint64_t room = w->t[w->cur].nbytes - w->cur_written;
		size_t k = (size_t)(n < room ? n : room);
		rc = isq_out_write(w->out, p, k);
		if (rc)
			return isq_errbuf_set(&w->err, rc, "%s", isq_errbuf_msg(&w->out->err));
		w->cur_written += k;
		p += k;
		n -= k;
		rc = advance(w);
	}
	return rc;
}

int isq_gguf_writer_finish(struct isq_gguf_writer *w)
{
	int rc = advance(w);
	if (rc)
		return rc;
	if (w->cur < w->n_t)
		return isq_errbuf_set(&w->err, ISQ_EINVAL, "tensor '%s': %llu of %llu bytes written", w->t[w->cur].name,
				      (unsigned long long)w->cur_written, (unsigned long long)w->t[w->cur].nbytes);
	return 0;
}
