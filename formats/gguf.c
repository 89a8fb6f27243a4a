/*
 * gguf.c - GGUF reader (zero-copy over an isq_map) and streaming writer.
 *
 * The reader parses the header in one forward pass with a bounds-checked
 * cursor; every array it hands out grows with what was actually parsed, so a
 * lying count can cost at most a few bytes of memory per byte of input.
 */
#include "gguf.h"

/*
 * Largest general.alignment accepted: a power of two up to 16 MiB covers
 * every page and huge-page size; beyond that a file is hostile (a tensor-less
 * header would be padded to gigabytes).
 */
#define GGUF_MAX_ALIGNMENT (1u << 24)
#include "types.h"

/* The smallest KV is a 1-byte key and a u8 value; the smallest tensor info an empty name and one dim. */
#define MIN_KV_BYTES (8 + 1 + 4 + 1)
#define MIN_TENSOR_BYTES (8 + 4 + 8 + 4 + 8)

/* ---- a growable open-addressing hash from names to indexes (no deletes) ---- */

struct strset {
	const char **keys; /* borrowed: the names live in the kv/tensor arrays */
	size_t *vals;
	size_t cap, n;     /* cap is 0 or a power of two, at most half full */
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h;
}

static void strset_release(struct strset *s)
{
	free(s->keys);
	free(s->vals);
	memset(s, 0, sizeof(*s));
}

static void strset_insert_new(const char **keys, size_t *vals, size_t cap, const char *k, size_t v)
{
	size_t i = (size_t)hash_str(k) & (cap - 1);
	while (keys[i])
		i = (i + 1) & (cap - 1);
	keys[i] = k;
	vals[i] = v;
}

static int strset_grow(struct strset *s)
{
	size_t cap = s->cap ? 2 * s->cap : 16;
	const char **keys = calloc(cap, sizeof(*keys));
	size_t *vals = calloc(cap, sizeof(*vals));
	if (!keys || !vals || cap < s->cap) {
		free(keys);
		free(vals);
		return ISQ_ENOMEM;
	}
	for (size_t i = 0; i < s->cap; i++)
		if (s->keys[i])
			strset_insert_new(keys, vals, cap, s->keys[i], s->vals[i]);
	free(s->keys);
	free(s->vals);
	s->keys = keys;
	s->vals = vals;
	s->cap = cap;
	return 0;
}

/* Slot of k, or of the empty place where it would go. */
static size_t strset_slot(const struct strset *s, const char *k)
{
	size_t i = (size_t)hash_str(k) & (s->cap - 1);
	while (s->keys[i] && strcmp(s->keys[i], k))
		i = (i + 1) & (s->cap - 1);
	return i;
}

/* 0 when added, 1 when k was already there (nothing changed), ISQ_ENOMEM. */
static int strset_add(struct strset *s, const char *k, size_t v)
{
	if (s->cap && s->keys[strset_slot(s, k)])
		return 1;
	if (2 * (s->n + 1) > s->cap && strset_grow(s))
		return ISQ_ENOMEM;
	size_t i = strset_slot(s, k);
	s->keys[i] = k;
	s->vals[i] = v;
	s->n++;
	return 0;
}

/*
 * Remove k (no allocation, so it cannot fail): the rest of its probe cluster
 * is re-inserted, and indexes above the removed one move down by one, as the
 * array they index does.
 */
static void strset_del(struct strset *s, const char *k)
{
	if (!s->cap)
		return;
	size_t i = strset_slot(s, k);
	if (!s->keys[i])
		return;
	size_t gone = s->vals[i];
	s->keys[i] = NULL;
	s->n--;
	/* an entry re-inserted lands at or before its old slot, so the loop sees each one once */
	for (size_t j = (i + 1) & (s->cap - 1); s->keys[j]; j = (j + 1) & (s->cap - 1)) {
		const char *kk = s->keys[j];
		size_t vv = s->vals[j];
		s->keys[j] = NULL;
		strset_insert_new(s->keys, s->vals, s->cap, kk, vv);
	}
	for (size_t j = 0; j < s->cap; j++)
		if (s->keys[j] && s->vals[j] > gone)
			s->vals[j]--;
}

static int strset_get(const struct strset *s, const char *k, size_t *v)
{
	if (!s->cap)
		return 0;
	size_t i = strset_slot(s, k);
	if (!s->keys[i])
		return 0;
	*v = s->vals[i];
	return 1;
}

/* Double *cap until it holds n + 1 elements of size sz; keeps *p on failure. */
static int grow_array(void **p, size_t *cap, size_t n, size_t sz)
{
	if (n < *cap)
		return 0;
	size_t c = *cap ? 2 * *cap : 16;
	void *q = isq_mallocarray(c, sz);
	if (!q)
		return ISQ_ENOMEM;
	if (*p)
		memcpy(q, *p, n * sz);
	free(*p);
	*p = q;
	*cap = c;
	return 0;
}

/* ---- value types ---- */

static const char *const vtype_names[] = { "u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
					   "bool", "string", "array", "u64", "i64", "f64" };

const char *isq_gguf_vtype_name(enum isq_gguf_vtype t)
{
	return (unsigned)t < ISQ_GGUF_VTYPE_COUNT ? vtype_names[t] : "?";
}

/* Bytes of one element of a fixed-size type; 0 for string, array and unknown ids. */
static size_t vtype_size(uint32_t t)
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

static int is_float(enum isq_gguf_vtype t)
{
	return t == ISQ_GGUF_F32 || t == ISQ_GGUF_F64;
}

static int is_signed(enum isq_gguf_vtype t)
{
	return t == ISQ_GGUF_I8 || t == ISQ_GGUF_I16 || t == ISQ_GGUF_I32 || t == ISQ_GGUF_I64;
}

static int is_int(enum isq_gguf_vtype t)
{
	return vtype_size(t) && !is_float(t); /* bool counts as an integer */
}

/* Decode one fixed-size element at p into the widened union of kv. */
static void decode_scalar(enum isq_gguf_vtype t, const uint8_t *p, struct isq_gguf_kv *kv)
{
	switch (t) {
	case ISQ_GGUF_U8: kv->v.u64 = p[0]; break;
	case ISQ_GGUF_BOOL: kv->v.u64 = p[0] != 0; break; /* ggml reads any nonzero byte as true */
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

static uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

/*
 * A name as a message shows it: control bytes become '?' (a message is one
 * line whatever the file holds) and long names are cut with "...".
 */
static const char *shown(char *buf, size_t cap, const char *s, uint64_t len)
{
	size_t n = len < cap ? (size_t)len : cap - 4;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		buf[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	if (n < len)
		memcpy(buf + n, "...", 3), n += 3;
	buf[n] = '\0';
	return buf;
}

/* ---- reader ---- */

struct index {
	struct strset keys, tensors;
	size_t cap_kv, cap_t; /* allocated lengths of g->kv and g->tensors */
};

struct cursor {
	const uint8_t *base;
	uint64_t pos, size;
};

static int have(const struct cursor *c, uint64_t n)
{
	return n <= c->size - c->pos;
}

static int rd_u32(struct cursor *c, uint32_t *v)
{
	if (!have(c, 4))
		return -1;
	*v = isq_le32(c->base + c->pos);
	c->pos += 4;
	return 0;
}

static int rd_u64(struct cursor *c, uint64_t *v)
{
	if (!have(c, 8))
		return -1;
	*v = isq_le64(c->base + c->pos);
	c->pos += 8;
	return 0;
}

/* -1: the length field or the bytes run past the end; -2: longer than ISQ_GGUF_MAX_STRING. */
static int rd_str(struct cursor *c, struct isq_gguf_str *s)
{
	uint64_t len;
	if (rd_u64(c, &len))
		return -1;
	if (len > ISQ_GGUF_MAX_STRING)
		return -2;
	if (!have(c, len))
		return -1;
	s->len = len;
	s->data = (const char *)c->base + c->pos;
	c->pos += len;
	return 0;
}

static char *dup_str(const char *p, uint64_t len)
{
	char *s = malloc((size_t)len + 1);
	if (s) {
		memcpy(s, p, (size_t)len);
		s[len] = '\0';
	}
	return s;
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
	struct index *ix = g->names;
	if (ix) {
		strset_release(&ix->keys);
		strset_release(&ix->tensors);
		free(ix);
	}
	isq_map_release(&g->map);
	struct isq_errbuf keep = g->err;
	memset(g, 0, sizeof(*g));
	g->err = keep;
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

static int nomem(struct isq_gguf *g)
{
	return isq_errbuf_set(&g->err, ISQ_ENOMEM, NULL);
}

/* Step over n array elements of type t; string lengths are checked one by one. */
static int skip_array(struct cursor *c, enum isq_gguf_vtype t, uint64_t n)
{
	if (t == ISQ_GGUF_STRING) {
		struct isq_gguf_str s;
		for (uint64_t i = 0; i < n; i++) {
			int rc = rd_str(c, &s);
			if (rc)
				return rc;
		}
		return 0;
	}
	uint64_t bytes;
	if (isq_mul_u64(n, vtype_size(t), &bytes) || !have(c, bytes))
		return -1;
	c->pos += bytes;
	return 0;
}

static int parse_kv(struct isq_gguf *g, struct index *ix, struct cursor *c, uint64_t i)
{
	struct isq_gguf_str k;
	char nm[80];
	int rc = rd_str(c, &k);
	if (rc == -2)
		return bad(g, "metadata key %llu: string length over the limit", (unsigned long long)i);
	if (rc)
		return bad(g, "metadata key %llu: string length past end of file", (unsigned long long)i);
	if (k.len == 0)
		return bad(g, "metadata key %llu is empty", (unsigned long long)i);
	if (memchr(k.data, 0, k.len))
		return bad(g, "metadata key %llu '%s' contains a NUL byte", (unsigned long long)i,
			   shown(nm, sizeof(nm), k.data, k.len));
	shown(nm, sizeof(nm), k.data, k.len);
	if (grow_array((void **)&g->kv, &ix->cap_kv, g->n_kv, sizeof(*g->kv)))
		return nomem(g);
	struct isq_gguf_kv *kv = &g->kv[g->n_kv];
	memset(kv, 0, sizeof(*kv));
	if (!(kv->key = dup_str(k.data, k.len)))
		return nomem(g);
	g->n_kv++;
	rc = strset_add(&ix->keys, kv->key, g->n_kv - 1);
	if (rc < 0)
		return nomem(g);
	if (rc)
		return bad(g, "duplicate metadata key '%s'", nm);
	uint32_t t;
	if (rd_u32(c, &t))
		return bad(g, "key '%s': value type past end of file", nm);
	if (t == ISQ_GGUF_ARRAY) {
		uint32_t at;
		uint64_t n;
		if (rd_u32(c, &at) || rd_u64(c, &n))
			return bad(g, "key '%s': array header past end of file", nm);
		if (at == ISQ_GGUF_ARRAY)
			return bad(g, "key '%s': arrays of arrays are not allowed", nm);
		if (at >= ISQ_GGUF_VTYPE_COUNT)
			return bad(g, "key '%s': unknown array element type %u", nm, at);
		if (n > ISQ_GGUF_MAX_ARRAY)
			return bad(g, "key '%s': array of %llu elements is too long", nm, (unsigned long long)n);
		kv->type = ISQ_GGUF_ARRAY;
		kv->arr_type = (enum isq_gguf_vtype)at;
		kv->arr_n = n;
		kv->arr_data = c->base + c->pos;
		uint64_t start = c->pos;
		rc = skip_array(c, kv->arr_type, n);
		if (rc == -2)
			return bad(g, "key '%s': a string element is too long", nm);
		if (rc)
			return bad(g, "key '%s': array of %llu %s elements runs past end of file", nm,
				   (unsigned long long)n, vtype_names[at]);
		kv->arr_bytes = c->pos - start;
	} else if (t == ISQ_GGUF_STRING) {
		kv->type = ISQ_GGUF_STRING;
		rc = rd_str(c, &kv->str);
		if (rc == -2)
			return bad(g, "key '%s': string is too long", nm);
		if (rc)
			return bad(g, "key '%s': string length past end of file", nm);
	} else if (t < ISQ_GGUF_VTYPE_COUNT) {
		kv->type = (enum isq_gguf_vtype)t;
		if (!have(c, vtype_size(t)))
			return bad(g, "key '%s': value past end of file", nm);
		decode_scalar(kv->type, c->base + c->pos, kv);
		c->pos += vtype_size(t);
	} else {
		return bad(g, "key '%s': unknown value type %u", nm, t);
	}
	return 0;
}

/* Reads tensor info i and checks it against the running offset *expect (advanced past it). */
static int parse_tensor(struct isq_gguf *g, struct index *ix, struct cursor *c, uint64_t i, uint64_t *expect)
{
	struct isq_gguf_str s;
	char nm[80];
	int rc = rd_str(c, &s);
	if (rc)
		return bad(g, "tensor %llu: name length past end of file", (unsigned long long)i);
	shown(nm, sizeof(nm), s.data, s.len);
	if (s.len >= ISQ_GGUF_MAX_NAME)
		return bad(g, "tensor %llu '%s': name of %llu bytes is too long (at most %d)", (unsigned long long)i, nm,
			   (unsigned long long)s.len, ISQ_GGUF_MAX_NAME - 1);
	if (memchr(s.data, 0, s.len))
		return bad(g, "tensor %llu '%s': name contains a NUL byte", (unsigned long long)i, nm);
	if (grow_array((void **)&g->tensors, &ix->cap_t, g->n_tensors, sizeof(*g->tensors)))
		return nomem(g);
	struct isq_gguf_tensor *t = &g->tensors[g->n_tensors];
	memset(t, 0, sizeof(*t));
	if (!(t->name = dup_str(s.data, s.len)))
		return nomem(g);
	g->n_tensors++;
	rc = strset_add(&ix->tensors, t->name, g->n_tensors - 1);
	if (rc < 0)
		return nomem(g);
	if (rc)
		return bad(g, "duplicate tensor name '%s'", nm);

	uint32_t nd, type;
	if (rd_u32(c, &nd))
		return bad(g, "tensor '%s': info past end of file", nm);
	if (nd < 1 || nd > ISQ_GGUF_MAX_DIMS)
		return bad(g, "tensor '%s': %u dimensions (1 to %d allowed)", nm, nd, ISQ_GGUF_MAX_DIMS);
	t->n_dims = (int)nd;
	for (int d = 0; d < ISQ_GGUF_MAX_DIMS; d++)
		t->ne[d] = 1;
	uint64_t n = 1;
	int overflow = 0, zero = 0;
	for (uint32_t d = 0; d < nd; d++) {
		uint64_t v;
		if (rd_u64(c, &v))
			return bad(g, "tensor '%s': info past end of file", nm);
		if ((int64_t)v < 0)
			return bad(g, "tensor '%s': dimension %u is negative (%lld)", nm, d, (long long)(int64_t)v);
		t->ne[d] = (int64_t)v;
		zero |= v == 0;
		overflow |= isq_mul_u64(n, v, &n);
	}
	/* ggml wants the element count below INT64_MAX; a zero dim makes any shape representable */
	if (zero)
		n = 0;
	else if (overflow || n >= (uint64_t)INT64_MAX)
		return bad(g, "tensor '%s': element count of shape [%lld, %lld, %lld, %lld] overflows", nm,
			   (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3]);
	t->n_elements = n;
	if (rd_u32(c, &type) || rd_u64(c, &t->offset))
		return bad(g, "tensor '%s': info past end of file", nm);
	const struct isq_type_traits *tt = isq_type_from_ggml(type);
	if (!tt || tt->blck <= 0 || !tt->type_size)
		return bad(g, "tensor '%s': unknown ggml type id %u", nm, type);
	t->type = type;
	uint64_t rowb;
	if (t->ne[0] % tt->blck)
		return bad(g, "tensor '%s': row length %lld is not a multiple of the %s block size %lld", nm,
			   (long long)t->ne[0], tt->name, (long long)tt->blck);
	/* rows = n / ne[0]; with ne[0] = 0 there are no bytes at all */
	if (isq_type_row_size(tt->type, (uint64_t)t->ne[0], &rowb) ||
	    (t->ne[0] && isq_mul_u64(rowb, n / (uint64_t)t->ne[0], &t->nbytes)))
		return bad(g, "tensor '%s': size in bytes overflows", nm);
	if (t->offset != *expect)
		return bad(g, "tensor '%s': offset %llu is not the expected %llu", nm, (unsigned long long)t->offset,
			   (unsigned long long)*expect);
	uint64_t padded;
	if (isq_add_u64(t->nbytes, g->alignment - 1, &padded) ||
	    isq_add_u64(*expect, padded & ~(uint64_t)(g->alignment - 1), expect))
		return bad(g, "tensor '%s': data section size overflows", nm);
	return 0;
}

static int parse(struct isq_gguf *g)
{
	struct cursor c = { g->map.data, 0, g->map.size };
	g->file_size = c.size;
	if (c.size < 4 || memcmp(c.base, "GGUF", 4))
		return bad(g, "not a GGUF file (bad magic)");
	c.pos = 4;
	uint32_t version;
	uint64_t nt, nkv;
	if (rd_u32(&c, &version))
		return bad(g, "truncated header (%llu bytes)", (unsigned long long)c.size);
	/* a big-endian v3 file reads as 0x03000000 here; ggml tests the low half the same way */
	if (version && !(version & 0xffff))
		return bad(g, "byte-swapped GGUF file (version reads as 0x%08x): big-endian files are not supported",
			   version);
	if (version == 0 || version == 1 || version > 3)
		return bad(g, "unsupported GGUF version %u (versions 2 and 3 are read)", version);
	g->version = version;
	if (rd_u64(&c, &nt) || rd_u64(&c, &nkv))
		return bad(g, "truncated header (%llu bytes)", (unsigned long long)c.size);
	if ((int64_t)nt < 0)
		return bad(g, "tensor count %lld is negative", (long long)(int64_t)nt);
	if ((int64_t)nkv < 0)
		return bad(g, "metadata count %lld is negative", (long long)(int64_t)nkv);
	/* before anything is allocated: every entry takes room, so the counts are bounded by the file */
	uint64_t rest = c.size - c.pos;
	if (nkv > rest / MIN_KV_BYTES)
		return bad(g, "metadata count %llu cannot fit in a file of %llu bytes", (unsigned long long)nkv,
			   (unsigned long long)c.size);
	if (nt > (rest - nkv * MIN_KV_BYTES) / MIN_TENSOR_BYTES)
		return bad(g, "tensor count %llu cannot fit in a file of %llu bytes", (unsigned long long)nt,
			   (unsigned long long)c.size);

	struct index *ix = calloc(1, sizeof(*ix));
	if (!ix)
		return nomem(g);
	g->names = ix;
	int rc = 0;
	for (uint64_t i = 0; i < nkv && !rc; i++)
		rc = parse_kv(g, ix, &c, i);
	if (rc)
		return rc;

	g->alignment = ISQ_GGUF_DEFAULT_ALIGNMENT;
	const struct isq_gguf_kv *al = isq_gguf_find_kv(g, "general.alignment");
	if (al) {
		if (al->type != ISQ_GGUF_U32)
			return bad(g, "key 'general.alignment': type %s, must be u32", isq_gguf_vtype_name(al->type));
		if (!al->v.u64 || (al->v.u64 & (al->v.u64 - 1)))
			return bad(g, "key 'general.alignment': %llu is not a power of two", (unsigned long long)al->v.u64);
		if (al->v.u64 > GGUF_MAX_ALIGNMENT)
			return bad(g, "key 'general.alignment': %llu is absurdly large (at most %u)",
				   (unsigned long long)al->v.u64, (unsigned)GGUF_MAX_ALIGNMENT);
		g->alignment = (uint32_t)al->v.u64;
	}

	uint64_t expect = 0;
	for (uint64_t i = 0; i < nt && !rc; i++)
		rc = parse_tensor(g, ix, &c, i, &expect);
	if (rc)
		return rc;

	/* as ggml's reader: the data section is aligned only when there is one */
	g->data_offset = nt ? align_up(c.pos, g->alignment) : c.pos;
	for (size_t i = 0; i < g->n_tensors; i++) {
		struct isq_gguf_tensor *t = &g->tensors[i];
		uint64_t end;
		char nm[80];
		if (isq_add_u64(g->data_offset, t->offset, &end) || isq_add_u64(end, t->nbytes, &end) || end > c.size)
			return bad(g, "tensor '%s': data offset past end of file (needs %llu bytes, file has %llu)",
				   shown(nm, sizeof(nm), t->name, strlen(t->name)),
				   (unsigned long long)(g->data_offset + t->offset + t->nbytes), (unsigned long long)c.size);
		t->data = c.base + g->data_offset + t->offset;
	}
	return 0;
}

int isq_gguf_open_memory(struct isq_gguf *g, const void *data, uint64_t size)
{
	clear(g);
	isq_errbuf_clear(&g->err);
	isq_map_from_memory(&g->map, data, size);
	int rc = parse(g);
	if (rc)
		clear(g);
	return rc;
}

int isq_gguf_open(struct isq_gguf *g, const char *path)
{
	clear(g);
	isq_errbuf_clear(&g->err);
	int rc = isq_map_open(&g->map, path, 0, &g->err);
	if (rc) {
		clear(g);
		return rc; /* isq_map_open's message names the path already */
	}
	rc = parse(g);
	if (rc) {
		clear(g);
		isq_errbuf_prefix(&g->err, "%s", strcmp(path, "-") ? path : "<stdin>");
	}
	return rc;
}

const struct isq_gguf_kv *isq_gguf_find_kv(const struct isq_gguf *g, const char *key)
{
	const struct index *ix = g->names;
	size_t i;
	return ix && strset_get(&ix->keys, key, &i) ? &g->kv[i] : NULL;
}

const struct isq_gguf_tensor *isq_gguf_find_tensor(const struct isq_gguf *g, const char *name)
{
	const struct index *ix = g->names;
	size_t i;
	return ix && strset_get(&ix->tensors, name, &i) ? &g->tensors[i] : NULL;
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
	if (is_float(kv->type))
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
	return dup_str(kv->str.len ? kv->str.data : "", kv->str.len);
}

/* Element i of a fixed-size array, decoded; NULL-safe against hand-made kvs whose bytes are short. */
static int arr_elem(const struct isq_gguf_kv *kv, uint64_t i, struct isq_gguf_kv *tmp)
{
	size_t es = vtype_size(kv->arr_type);
	if (kv->type != ISQ_GGUF_ARRAY || !es || i >= kv->arr_n || i >= kv->arr_bytes / es)
		return ISQ_EINVAL;
	memset(tmp, 0, sizeof(*tmp));
	decode_scalar(kv->arr_type, kv->arr_data + i * es, tmp);
	return 0;
}

int isq_gguf_arr_num(const struct isq_gguf_kv *kv, uint64_t i, double *out)
{
	struct isq_gguf_kv tmp;
	if (arr_elem(kv, i, &tmp))
		return ISQ_EINVAL;
	if (is_float(kv->arr_type))
		*out = tmp.v.f64;
	else if (is_signed(kv->arr_type))
		*out = (double)tmp.v.i64;
	else
		*out = (double)tmp.v.u64;
	return 0;
}

int isq_gguf_arr_i64(const struct isq_gguf_kv *kv, uint64_t i, int64_t *out)
{
	struct isq_gguf_kv tmp;
	if (arr_elem(kv, i, &tmp) || is_float(kv->arr_type) || (!is_signed(kv->arr_type) && tmp.v.u64 > INT64_MAX))
		return ISQ_EINVAL;
	*out = tmp.v.i64;
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
	/* the reader validated every length; the bound matters only for hand-made kvs */
	uint64_t room = kv->arr_bytes - it->pos;
	if (it->pos > kv->arr_bytes || room < 8 || isq_le64(kv->arr_data + it->pos) > room - 8)
		return ISQ_EFORMAT;
	uint64_t l = isq_le64(kv->arr_data + it->pos);
	*s = (const char *)kv->arr_data + it->pos + 8;
	*len = l;
	it->pos += 8 + l;
	it->i++;
	return 0;
}

/* ---- writer ---- */

struct wkv {
	char *key;
	enum isq_gguf_vtype type;
	struct isq_buf enc; /* the encoded value, after the type field */
};

struct wtensor {
	char *name;
	uint32_t type;
	int n_dims; /* as written: ggml_n_dims */
	int64_t ne[ISQ_GGUF_MAX_DIMS];
	uint64_t nbytes, offset;
};

enum wstate { W_BUILD, W_DATA, W_FAILED };

struct isq_gguf_writer {
	struct wkv *kv;
	size_t n_kv, cap_kv;
	struct strset kidx; /* key -> index in kv; rebuilt after a delete */
	struct wtensor *t;
	size_t n_t, cap_t;
	struct strset tidx;
	struct isq_out *out;
	uint64_t align;
	size_t cur;           /* tensor being written */
	uint64_t cur_written; /* bytes of it so far */
	uint64_t remaining;   /* tensor bytes still expected, all tensors together */
	enum wstate state;
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
	strset_release(&w->kidx);
	strset_release(&w->tidx);
	free(w);
}

const char *isq_gguf_writer_errmsg(const struct isq_gguf_writer *w)
{
	return isq_errbuf_msg(&w->err);
}

static int wfail(struct isq_gguf_writer *w, int code, const char *fmt, ...) ISQ_PRINTF(3, 4);
static int wfail(struct isq_gguf_writer *w, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	w->err.code = code;
	if (fmt)
		vsnprintf(w->err.msg, sizeof(w->err.msg), fmt, ap);
	else
		snprintf(w->err.msg, sizeof(w->err.msg), "%s", isq_strerror(code));
	va_end(ap);
	return code;
}

static int put_le(struct isq_buf *b, uint64_t v, size_t n)
{
	uint8_t tmp[8];
	for (size_t i = 0; i < n; i++)
		tmp[i] = (uint8_t)(v >> (8 * i));
	return isq_buf_append(b, tmp, n);
}

static int put_str(struct isq_buf *b, const char *s, uint64_t len)
{
	return put_le(b, len, 8) || isq_buf_append(b, s, (size_t)len) ? ISQ_ENOMEM : 0;
}

/*
 * Store an encoded value under key: in place when the key exists, else
 * appended.  Takes *enc over on success; on failure the writer is unchanged
 * and *enc is released.
 */
static int commit(struct isq_gguf_writer *w, const char *key, enum isq_gguf_vtype t, struct isq_buf *enc)
{
	size_t i;
	if (strset_get(&w->kidx, key, &i)) {
		isq_buf_release(&w->kv[i].enc);
		w->kv[i].enc = *enc;
		w->kv[i].type = t;
		return 0;
	}
	char *k = isq_strdup(key);
	if (!k || grow_array((void **)&w->kv, &w->cap_kv, w->n_kv, sizeof(*w->kv)) ||
	    strset_add(&w->kidx, k, w->n_kv) < 0) {
		free(k);
		isq_buf_release(enc);
		return wfail(w, ISQ_ENOMEM, NULL);
	}
	w->kv[w->n_kv++] = (struct wkv){ k, t, *enc };
	return 0;
}

/* Checks shared by every setter; 0 when the key may be set now. */
static int can_set(struct isq_gguf_writer *w, const char *key)
{
	if (!key || !*key)
		return wfail(w, ISQ_EINVAL, "metadata keys cannot be empty");
	if (w->state != W_BUILD)
		return wfail(w, ISQ_EINVAL, "key '%s' set after the header was written", key);
	return 0;
}

/* Encode n fixed-size elements of type t from LE bytes at p into b, bools as 0/1. */
static int put_elems(struct isq_buf *b, enum isq_gguf_vtype t, const uint8_t *p, uint64_t n)
{
	if (t != ISQ_GGUF_BOOL)
		return isq_buf_append(b, p, (size_t)(n * vtype_size(t)));
	if (isq_buf_grow(b, (size_t)n))
		return ISQ_ENOMEM;
	for (uint64_t i = 0; i < n; i++)
		b->data[b->len++] = p[i] != 0;
	b->data[b->len] = '\0';
	return 0;
}

int isq_gguf_set_scalar(struct isq_gguf_writer *w, const char *key, enum isq_gguf_vtype t, uint64_t bits)
{
	int rc = can_set(w, key);
	if (rc)
		return rc;
	size_t es = vtype_size(t);
	if (!es)
		return wfail(w, ISQ_EINVAL, "key '%s': %s is not a scalar type", key, isq_gguf_vtype_name(t));
	if (t == ISQ_GGUF_BOOL)
		bits = bits != 0;
	struct isq_buf enc = ISQ_BUF_INIT;
	if (put_le(&enc, bits, es)) {
		isq_buf_release(&enc);
		return wfail(w, ISQ_ENOMEM, NULL);
	}
	return commit(w, key, t, &enc);
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
	return isq_gguf_set_scalar(w, key, ISQ_GGUF_BOOL, v != 0);
}

static int set_str_n(struct isq_gguf_writer *w, const char *key, const char *v, uint64_t len)
{
	int rc = can_set(w, key);
	if (rc)
		return rc;
	if (len > ISQ_GGUF_MAX_STRING)
		return wfail(w, ISQ_EINVAL, "key '%s': string of %llu bytes is too long", key, (unsigned long long)len);
	struct isq_buf enc = ISQ_BUF_INIT;
	if (put_str(&enc, len ? v : "", len)) {
		isq_buf_release(&enc);
		return wfail(w, ISQ_ENOMEM, NULL);
	}
	return commit(w, key, ISQ_GGUF_STRING, &enc);
}

int isq_gguf_set_str(struct isq_gguf_writer *w, const char *key, const char *v)
{
	if (!v)
		return wfail(w, ISQ_EINVAL, "key '%s': NULL string", key ? key : "");
	return set_str_n(w, key, v, strlen(v));
}

/* Header of an array value; checks the element type and count. */
static int arr_head(struct isq_gguf_writer *w, const char *key, enum isq_gguf_vtype t, uint64_t n,
		    struct isq_buf *enc)
{
	int rc = can_set(w, key);
	if (rc)
		return rc;
	if ((unsigned)t >= ISQ_GGUF_VTYPE_COUNT || t == ISQ_GGUF_ARRAY)
		return wfail(w, ISQ_EINVAL, "key '%s': %s is not an array element type", key, isq_gguf_vtype_name(t));
	if (n > ISQ_GGUF_MAX_ARRAY)
		return wfail(w, ISQ_EINVAL, "key '%s': array of %llu elements is too long", key, (unsigned long long)n);
	if (put_le(enc, (uint32_t)t, 4) || put_le(enc, n, 8)) {
		isq_buf_release(enc);
		return wfail(w, ISQ_ENOMEM, NULL);
	}
	return 0;
}

int isq_gguf_set_arr(struct isq_gguf_writer *w, const char *key, enum isq_gguf_vtype t, const void *data, uint64_t n)
{
	if (!vtype_size(t))
		return wfail(w, ISQ_EINVAL, "key '%s': %s is not a numeric element type", key ? key : "",
			     isq_gguf_vtype_name(t));
	if (n && !data)
		return wfail(w, ISQ_EINVAL, "key '%s': NULL array data", key ? key : "");
	struct isq_buf enc = ISQ_BUF_INIT;
	int rc = arr_head(w, key, t, n, &enc);
	if (rc)
		return rc;
	if (put_elems(&enc, t, data, n)) {
		isq_buf_release(&enc);
		return wfail(w, ISQ_ENOMEM, NULL);
	}
	return commit(w, key, ISQ_GGUF_ARRAY, &enc);
}

int isq_gguf_set_arr_str(struct isq_gguf_writer *w, const char *key, const char *const *strs, uint64_t n)
{
	struct isq_buf enc = ISQ_BUF_INIT;
	int rc = arr_head(w, key, ISQ_GGUF_STRING, n, &enc);
	if (rc)
		return rc;
	for (uint64_t i = 0; i < n; i++) {
		size_t len = strs[i] ? strlen(strs[i]) : 0;
		if (!strs[i] || len > ISQ_GGUF_MAX_STRING) {
			isq_buf_release(&enc);
			return wfail(w, ISQ_EINVAL, "key '%s': element %llu is NULL or too long", key,
				     (unsigned long long)i);
		}
		if (put_str(&enc, strs[i], len)) {
			isq_buf_release(&enc);
			return wfail(w, ISQ_ENOMEM, NULL);
		}
	}
	return commit(w, key, ISQ_GGUF_ARRAY, &enc);
}

int isq_gguf_set_kv(struct isq_gguf_writer *w, const struct isq_gguf_kv *kv)
{
	const char *key = kv->key ? kv->key : "";
	switch (kv->type) {
	case ISQ_GGUF_STRING:
		if (kv->str.len && !kv->str.data)
			return wfail(w, ISQ_EINVAL, "key '%s': NULL string", key);
		return set_str_n(w, key, kv->str.data, kv->str.len);
	case ISQ_GGUF_ARRAY: {
		struct isq_buf enc = ISQ_BUF_INIT;
		enum isq_gguf_vtype at = kv->arr_type;
		int rc = arr_head(w, key, at, kv->arr_n, &enc);
		if (rc)
			return rc;
		/* the bytes must hold exactly arr_n elements: a hand-made kv could say otherwise */
		uint64_t need = 0, pos = 0;
		int ok = kv->arr_data || !kv->arr_bytes;
		if (ok && at == ISQ_GGUF_STRING) {
			for (uint64_t i = 0; i < kv->arr_n && ok; i++) {
				uint64_t room = kv->arr_bytes - pos;
				ok = room >= 8 && isq_le64(kv->arr_data + pos) <= room - 8;
				if (ok)
					pos += 8 + isq_le64(kv->arr_data + pos);
			}
			ok = ok && pos == kv->arr_bytes;
		} else if (ok) {
			ok = !isq_mul_u64(kv->arr_n, vtype_size(at), &need) && need == kv->arr_bytes;
		}
		if (!ok) {
			isq_buf_release(&enc);
			return wfail(w, ISQ_EINVAL, "key '%s': array bytes do not hold %llu %s elements", key,
				     (unsigned long long)kv->arr_n, isq_gguf_vtype_name(at));
		}
		rc = at == ISQ_GGUF_STRING ? isq_buf_append(&enc, kv->arr_data, (size_t)kv->arr_bytes)
					   : put_elems(&enc, at, kv->arr_data, kv->arr_n);
		if (rc) {
			isq_buf_release(&enc);
			return wfail(w, ISQ_ENOMEM, NULL);
		}
		return commit(w, key, ISQ_GGUF_ARRAY, &enc);
	}
	case ISQ_GGUF_F32: {
		float f = (float)kv->v.f64; /* exact: the value was a float before it was widened */
		uint32_t u;
		memcpy(&u, &f, 4);
		return isq_gguf_set_scalar(w, key, ISQ_GGUF_F32, u);
	}
	default:
		/* every other scalar keeps its bits in v (f64 included); set_scalar refuses unknown types */
		return isq_gguf_set_scalar(w, key, kv->type, kv->v.u64);
	}
}

void isq_gguf_del(struct isq_gguf_writer *w, const char *key)
{
	size_t i;
	if (w->state != W_BUILD || !key || !strset_get(&w->kidx, key, &i))
		return;
	strset_del(&w->kidx, key);
	free(w->kv[i].key);
	isq_buf_release(&w->kv[i].enc);
	memmove(&w->kv[i], &w->kv[i + 1], (w->n_kv - i - 1) * sizeof(*w->kv));
	w->n_kv--;
}

int isq_gguf_writer_add_tensor(struct isq_gguf_writer *w, const char *name, uint32_t type, int n_dims,
			       const int64_t *ne)
{
	if (!name)
		return wfail(w, ISQ_EINVAL, "tensor name is NULL");
	if (w->state != W_BUILD)
		return wfail(w, ISQ_EINVAL, "tensor '%s' added after the header was written", name);
	if (strlen(name) >= ISQ_GGUF_MAX_NAME)
		return wfail(w, ISQ_EINVAL, "tensor '%s': name is longer than %d bytes", name, ISQ_GGUF_MAX_NAME - 1);
	if (n_dims < 1 || n_dims > ISQ_GGUF_MAX_DIMS || !ne)
		return wfail(w, ISQ_EINVAL, "tensor '%s': %d dimensions (1 to %d allowed)", name, n_dims,
			     ISQ_GGUF_MAX_DIMS);
	size_t dummy;
	if (strset_get(&w->tidx, name, &dummy))
		return wfail(w, ISQ_EINVAL, "duplicate tensor '%s'", name);
	const struct isq_type_traits *tt = isq_type_from_ggml(type);
	if (!tt || tt->blck <= 0 || !tt->type_size)
		return wfail(w, ISQ_EINVAL, "tensor '%s': unknown ggml type id %u", name, type);
	uint64_t n = 1, rowb, bytes = 0;
	int overflow = 0, zero = 0;
	for (int d = 0; d < n_dims; d++) {
		if (ne[d] < 0)
			return wfail(w, ISQ_EINVAL, "tensor '%s': dimension %d is negative (%lld)", name, d,
				     (long long)ne[d]);
		zero |= ne[d] == 0;
		overflow |= isq_mul_u64(n, (uint64_t)ne[d], &n);
	}
	if (zero)
		n = 0;
	else if (overflow || n >= (uint64_t)INT64_MAX)
		return wfail(w, ISQ_EINVAL, "tensor '%s': element count overflows", name);
	if (ne[0] % tt->blck)
		return wfail(w, ISQ_EINVAL, "tensor '%s': row length %lld is not a multiple of the %s block size %lld",
			     name, (long long)ne[0], tt->name, (long long)tt->blck);
	if (isq_type_row_size(tt->type, (uint64_t)ne[0], &rowb) ||
	    (ne[0] && isq_mul_u64(rowb, n / (uint64_t)ne[0], &bytes)))
		return wfail(w, ISQ_EINVAL, "tensor '%s': size in bytes overflows", name);
	char *nm = isq_strdup(name);
	if (!nm || grow_array((void **)&w->t, &w->cap_t, w->n_t, sizeof(*w->t)) ||
	    strset_add(&w->tidx, nm, w->n_t) < 0) {
		free(nm);
		return wfail(w, ISQ_ENOMEM, NULL);
	}
	struct wtensor *t = &w->t[w->n_t++];
	memset(t, 0, sizeof(*t));
	t->name = nm;
	t->type = type;
	for (int d = 0; d < ISQ_GGUF_MAX_DIMS; d++)
		t->ne[d] = d < n_dims ? ne[d] : 1;
	/* ggml_n_dims: trailing dims of 1 are not written */
	t->n_dims = n_dims;
	while (t->n_dims > 1 && t->ne[t->n_dims - 1] == 1)
		t->n_dims--;
	t->nbytes = bytes;
	return 0;
}

/* ALIGN as begin will use it, or 0 when general.alignment is set wrongly. */
static uint64_t writer_alignment(const struct isq_gguf_writer *w)
{
	size_t i;
	if (!strset_get(&w->kidx, "general.alignment", &i))
		return ISQ_GGUF_DEFAULT_ALIGNMENT;
	if (w->kv[i].type != ISQ_GGUF_U32)
		return 0;
	uint32_t a = isq_le32(w->kv[i].enc.data);
	return a && !(a & (a - 1)) && a <= GGUF_MAX_ALIGNMENT ? a : 0;
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
	uint64_t a = writer_alignment(w);
	if (!a)
		return 0;
	uint64_t n = align_up(header_size(w), a);
	for (size_t i = 0; i < w->n_t; i++)
		n += align_up(w->t[i].nbytes, a);
	return n;
}

/* An output failure: the writer is dead, the message is the output's. */
static int out_failed(struct isq_gguf_writer *w, int rc)
{
	w->state = W_FAILED;
	return wfail(w, rc, "%s", isq_errbuf_msg(&w->out->err));
}

int isq_gguf_writer_begin(struct isq_gguf_writer *w, struct isq_out *out)
{
	if (w->state != W_BUILD)
		return wfail(w, ISQ_EINVAL, "the header was already written");
	uint64_t a = writer_alignment(w);
	if (!a)
		return wfail(w, ISQ_EINVAL, "key 'general.alignment' must be a u32 power of two, at most 16 MiB");
	struct isq_buf h = ISQ_BUF_INIT;
	int rc = isq_buf_append(&h, "GGUF", 4) || put_le(&h, 3, 4) || put_le(&h, w->n_t, 8) || put_le(&h, w->n_kv, 8);
	for (size_t i = 0; i < w->n_kv && !rc; i++)
		rc = put_str(&h, w->kv[i].key, strlen(w->kv[i].key)) || put_le(&h, w->kv[i].type, 4) ||
		     isq_buf_append(&h, w->kv[i].enc.data, w->kv[i].enc.len);
	uint64_t off = 0;
	w->remaining = 0;
	for (size_t i = 0; i < w->n_t && !rc; i++) {
		struct wtensor *t = &w->t[i];
		rc = put_str(&h, t->name, strlen(t->name)) || put_le(&h, (uint32_t)t->n_dims, 4);
		for (int d = 0; d < t->n_dims && !rc; d++)
			rc = put_le(&h, (uint64_t)t->ne[d], 8);
		t->offset = off;
		rc = rc || put_le(&h, t->type, 4) || put_le(&h, off, 8);
		off += align_up(t->nbytes, a);
		w->remaining += t->nbytes;
	}
	/* gguf_write_to_file pads the header even when no tensor follows */
	if (!rc && h.len % a) {
		static const char zeros[4096];
		for (size_t pad = (size_t)(a - h.len % a); !rc && pad;) {
			size_t k = pad < sizeof(zeros) ? pad : sizeof(zeros);
			rc = isq_buf_append(&h, zeros, k);
			pad -= k;
		}
	}
	if (rc) {
		isq_buf_release(&h);
		return wfail(w, ISQ_ENOMEM, NULL);
	}
	w->out = out;
	w->align = a;
	w->cur = 0;
	w->cur_written = 0;
	w->state = W_DATA;
	rc = isq_out_write(out, h.data, h.len);
	isq_buf_release(&h);
	return rc ? out_failed(w, rc) : 0;
}

/* Pad each complete tensor (zero-byte ones included) and move past it. */
static int advance(struct isq_gguf_writer *w)
{
	while (w->cur < w->n_t && w->cur_written == w->t[w->cur].nbytes) {
		int rc = isq_out_zeros(w->out, (size_t)(align_up(w->t[w->cur].nbytes, w->align) - w->t[w->cur].nbytes));
		if (rc)
			return out_failed(w, rc);
		w->cur++;
		w->cur_written = 0;
	}
	return 0;
}

static int check_data_state(struct isq_gguf_writer *w)
{
	if (w->state == W_BUILD)
		return wfail(w, ISQ_EINVAL, "tensor data written before the header");
	if (w->state == W_FAILED)
		return w->err.code ? w->err.code : ISQ_EIO;
	return 0;
}

int isq_gguf_writer_write(struct isq_gguf_writer *w, const void *data, size_t n)
{
	int rc = check_data_state(w);
	if (rc)
		return rc;
	const uint8_t *p = data;
	if (n > w->remaining)
		return wfail(w, ISQ_EINVAL, "%llu bytes more than the declared tensors hold",
			     (unsigned long long)(n - w->remaining));
	if ((rc = advance(w)))
		return rc;
	w->remaining -= n;
	while (n) {
		uint64_t room = w->t[w->cur].nbytes - w->cur_written;
		size_t k = n < room ? n : (size_t)room;
		if ((rc = isq_out_write(w->out, p, k)))
			return out_failed(w, rc);
		w->cur_written += k;
		p += k;
		n -= k;
		if ((rc = advance(w)))
			return rc;
	}
	return 0;
}

int isq_gguf_writer_finish(struct isq_gguf_writer *w)
{
	int rc = check_data_state(w);
	if (rc || (rc = advance(w)))
		return rc;
	if (w->cur < w->n_t)
		return wfail(w, ISQ_EINVAL, "tensor '%s': %llu of %llu bytes written", w->t[w->cur].name,
			     (unsigned long long)w->cur_written, (unsigned long long)w->t[w->cur].nbytes);
	return 0;
}
