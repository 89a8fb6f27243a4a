/* safetensors.c - safetensors files and sharded models: validated reads, streaming writes. */
#include "safetensors.h"
#include "types.h"

#include <cJSON.h>
#include <dirent.h>
#include <libgen.h>

static const struct {
	const char *name;
	unsigned bits;
	int type;
} dtypes[ISQ_ST_DTYPE_COUNT] = {
	[ISQ_ST_BOOL] = { "BOOL", 8, ISQ_TYPE_NONE },       [ISQ_ST_U8] = { "U8", 8, ISQ_TYPE_NONE },
	[ISQ_ST_I8] = { "I8", 8, ISQ_TYPE_I8 },             [ISQ_ST_F8_E5M2] = { "F8_E5M2", 8, ISQ_TYPE_NONE },
	[ISQ_ST_F8_E4M3] = { "F8_E4M3", 8, ISQ_TYPE_FP8 },  [ISQ_ST_F8_E8M0] = { "F8_E8M0", 8, ISQ_TYPE_NONE },
	[ISQ_ST_I16] = { "I16", 16, ISQ_TYPE_I16 },         [ISQ_ST_U16] = { "U16", 16, ISQ_TYPE_NONE },
	[ISQ_ST_F16] = { "F16", 16, ISQ_TYPE_F16 },         [ISQ_ST_BF16] = { "BF16", 16, ISQ_TYPE_BF16 },
	[ISQ_ST_I32] = { "I32", 32, ISQ_TYPE_I32 },         [ISQ_ST_U32] = { "U32", 32, ISQ_TYPE_NONE },
	[ISQ_ST_F32] = { "F32", 32, ISQ_TYPE_F32 },         [ISQ_ST_I64] = { "I64", 64, ISQ_TYPE_I64 },
	[ISQ_ST_U64] = { "U64", 64, ISQ_TYPE_NONE },        [ISQ_ST_F64] = { "F64", 64, ISQ_TYPE_F64 },
	[ISQ_ST_C64] = { "C64", 64, ISQ_TYPE_NONE },        [ISQ_ST_F4] = { "F4", 4, ISQ_TYPE_NONE },
	[ISQ_ST_F6_E2M3] = { "F6_E2M3", 6, ISQ_TYPE_NONE }, [ISQ_ST_F6_E3M2] = { "F6_E3M2", 6, ISQ_TYPE_NONE },
};

const char *isq_st_dtype_name(enum isq_st_dtype d)
{
	return (unsigned)d < ISQ_ST_DTYPE_COUNT ? dtypes[d].name : NULL;
}

int isq_st_dtype_parse(const char *s, enum isq_st_dtype *out)
{
	for (int i = 0; i < ISQ_ST_DTYPE_COUNT; i++)
		if (!strcmp(s, dtypes[i].name)) {
			*out = (enum isq_st_dtype)i;
			return 0;
		}
	return ISQ_EFORMAT;
}

unsigned isq_st_dtype_bits(enum isq_st_dtype d)
{
	return (unsigned)d < ISQ_ST_DTYPE_COUNT ? dtypes[d].bits : 0;
}

int isq_st_dtype_nbytes(enum isq_st_dtype d, uint64_t n, uint64_t *bytes)
{
	uint64_t bits;
	if (isq_mul_u64(n, isq_st_dtype_bits(d), &bits))
		return ISQ_EFORMAT;
	*bytes = bits / 8 + (bits % 8 != 0);
	return 0;
}

int isq_st_dtype_to_type(enum isq_st_dtype d)
{
	return (unsigned)d < ISQ_ST_DTYPE_COUNT ? dtypes[d].type : ISQ_TYPE_NONE;
}

/* ---- name index ------------------------------------------------------------------------- */

struct index {
	size_t *slots; /* tensor index + 1; 0 = empty */
	size_t cap;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h;
}

static int index_build(struct isq_safetensors *st)
{
	struct index *ix = calloc(1, sizeof(*ix));
	if (!ix)
		return ISQ_ENOMEM;
	ix->cap = 16;
	while (ix->cap < 2 * st->n_tensors + 1)
		ix->cap *= 2;
	ix->slots = calloc(ix->cap, sizeof(size_t));
	if (!ix->slots) {
		free(ix);
		return ISQ_ENOMEM;
	}
	st->index = ix;
	for (size_t t = 0; t < st->n_tensors; t++) {
		size_t i = (size_t)hash_str(st->tensors[t].name) & (ix->cap - 1);
		while (ix->slots[i]) {
			if (!strcmp(st->tensors[ix->slots[i] - 1].name, st->tensors[t].name))
				return isq_errbuf_set(&st->err, ISQ_EFORMAT, "duplicate tensor name '%s'", st->tensors[t].name);
			i = (i + 1) & (ix->cap - 1);
		}
		ix->slots[i] = t + 1;
	}
	return 0;
}

const struct isq_st_tensor *isq_st_find(const struct isq_safetensors *st, const char *name)
{
	const struct index *ix = st->index;
	if (!ix)
		return NULL;
	size_t i = (size_t)hash_str(name) & (ix->cap - 1);
	while (ix->slots[i]) {
		const struct isq_st_tensor *t = &st->tensors[ix->slots[i] - 1];
		if (!strcmp(t->name, name))
			return t;
		i = (i + 1) & (ix->cap - 1);
	}
	return NULL;
}

const char *isq_st_meta(const struct isq_safetensors *st, const char *key)
{
	for (size_t i = 0; i < st->n_metadata; i++)
		if (!strcmp(st->metadata[i].key, key))
			return st->metadata[i].value;
	return NULL;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

struct isq_safetensors *isq_st_new(void)
{
	return calloc(1, sizeof(struct isq_safetensors));
}

static void clear(struct isq_safetensors *st)
{
	for (size_t i = 0; i < st->n_tensors; i++)
		free(st->tensors[i].name);
	free(st->tensors);
	for (size_t i = 0; i < st->n_metadata; i++) {
		free(st->metadata[i].key);
		free(st->metadata[i].value);
	}
	free(st->metadata);
	for (int i = 0; i < st->n_shards; i++) {
		free(st->shard_paths[i]);
		isq_map_release(&st->shards[i]);
	}
	free(st->shard_paths);
	free(st->shards);
	if (st->index) {
		free(((struct index *)st->index)->slots);
		free(st->index);
	}
	struct isq_errbuf keep = st->err;
	memset(st, 0, sizeof(*st));
	st->err = keep;
}

void isq_st_free(struct isq_safetensors *st)
{
	if (!st)
		return;
	clear(st);
	free(st);
}

/* ---- parsing one image -------------------------------------------------------------------- */

struct span {
	uint64_t begin, end;
	size_t tensor;
};

static int span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;
	return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end < y->end ? -1 : x->end > y->end);
}

static int get_u64(const cJSON *j, uint64_t *out)
{
	/* JSON numbers arrive as doubles: accept only exact non-negative integers below 2^53 */
	if (!cJSON_IsNumber(j) || j->valuedouble < 0 || j->valuedouble > 9007199254740992.0 ||
	    j->valuedouble != (double)(uint64_t)j->valuedouble)
		return -1;
	*out = (uint64_t)j->valuedouble;
	return 0;
}

static int has_duplicate_keys(const cJSON *obj, const char **dup)
{
	/* cJSON keeps duplicate keys as separate items; the header is small enough for a quadratic scan
	 * up to a few thousand keys, and we hash beyond that */
	size_t n = 0;
	for (const cJSON *c = obj->child; c; c = c->next)
		n++;
	size_t cap = 16;
	while (cap < 2 * n + 1)
		cap *= 2;
	const char **tab = calloc(cap, sizeof(*tab));
	if (!tab)
		return -1;
	int found = 0;
	for (const cJSON *c = obj->child; c && !found; c = c->next) {
		size_t i = (size_t)hash_str(c->string) & (cap - 1);
		while (tab[i]) {
			if (!strcmp(tab[i], c->string)) {
				*dup = c->string;
				found = 1;
				break;
			}
			i = (i + 1) & (cap - 1);
		}
		if (!found)
			tab[i] = c->string;
	}
	free(tab);
	return found;
}

/* Parse one safetensors image and append its tensors (shard index `shard`). */
static int parse_image(struct isq_safetensors *st, const uint8_t *data, uint64_t size, int shard, const char *label)
{
	if (size < 8)
		return isq_errbuf_set(&st->err, ISQ_EFORMAT, "%s: file of %llu bytes is too short for a safetensors header",
				      label, (unsigned long long)size);
	uint64_t n = isq_le64(data);
	if (n > size - 8)
		return isq_errbuf_set(&st->err, ISQ_EFORMAT, "%s: header length %llu exceeds file size %llu", label,
				      (unsigned long long)n, (unsigned long long)size);
	if (n > ISQ_ST_MAX_HEADER)
		return isq_errbuf_set(&st->err, ISQ_EFORMAT, "%s: header length %llu exceeds the %u-byte limit", label,
				      (unsigned long long)n, ISQ_ST_MAX_HEADER);
	if (n < 2 || data[8] != '{')
		return isq_errbuf_set(&st->err, ISQ_EFORMAT, "%s: header is not a JSON object", label);
	cJSON *root = cJSON_ParseWithLength((const char *)data + 8, (size_t)n);
	if (!root || !cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return isq_errbuf_set(&st->err, ISQ_EFORMAT, "%s: header is not valid JSON", label);
	}
	const char *dup = NULL;
	int rc = 0;
	int d = has_duplicate_keys(root, &dup);
	if (d < 0)
		rc = isq_errbuf_set(&st->err, ISQ_ENOMEM, NULL);
	else if (d > 0)
		rc = isq_errbuf_set(&st->err, ISQ_EFORMAT, "%s: duplicate tensor name '%s'", label, dup);
	uint64_t data_start = 8 + n, data_len = size - 8 - n;
	size_t count = 0;
	for (const cJSON *c = root->child; c; c = c->next)
		count++;
	struct isq_st_tensor *grown = rc ? NULL : realloc(st->tensors, (st->n_tensors + count + 1) * sizeof(*grown));
	struct span *spans = rc ? NULL : calloc(count + 1, sizeof(*spans));
	if (!rc && (!grown || !spans))
		rc = isq_errbuf_set(&st->err, ISQ_ENOMEM, NULL);
	if (grown)
		st->tensors = grown;
	size_t ns = 0, first = st->n_tensors;
	for (const cJSON *c = root->child; c && !rc; c = c->next) {
		if (!strcmp(c->string, "__metadata__")) {
			if (!cJSON_IsObject(c)) {
				rc = isq_errbuf_set(&st->err, ISQ_EFORMAT, "%s: __metadata__ is not an object", label);
				break;
			}
			for (const cJSON *m = c->child; m && !rc; m = m->next) {
				if (!cJSON_IsString(m)) {
					rc = isq_errbuf_set(&st->err, ISQ_EFORMAT, "%s: __metadata__ '%s' is not a string", label,
							    m->string);
					break;
				}
				if (shard > 0)
					continue; /* the first shard's metadata stands for the model */
				struct isq_st_kv *md = realloc(st->metadata, (st->n_metadata + 1) * sizeof(*md));
				if (!md) {
					rc = isq_errbuf_set(&st->err, ISQ_ENOMEM, NULL);
					break;
				}
				st->metadata = md;
				md[st->n_metadata].key = isq_strdup(m->string);
				md[st->n_metadata].value = isq_strdup(m->valuestring);
				st->n_metadata++;
			}
			continue;
		}
		const char *name = c->string;
		if (!cJSON_IsObject(c)) {
			rc = isq_errbuf_set(&st->err, ISQ_EFORMAT, "%s: tensor '%s': not an object", label, name);
			break;
		}
		const cJSON *jd = cJSON_GetObjectItemCaseSensitive(c, "dtype");
		const cJSON *js = cJSON_GetObjectItemCaseSensitive(c, "shape");
		const cJSON *jo = cJSON_GetObjectItemCaseSensitive(c, "data_offsets");
		struct isq_st_tensor t = { 0 };
		if (!cJSON_IsString(jd)) {
			rc = isq_errbuf_set(&st->err, ISQ_EFORMAT, "%s: tensor '%s': missing dtype", label, name);
			break;
		}
		if (isq_st_dtype_parse(jd->valuestring, &t.dtype)) {
			rc = isq_errbuf_set(&st->err, ISQ_EFORMAT, "%s: tensor '%s': unknown dtype '%s'", label, name,
					    jd->valuestring);
			break;
		}
		if (!cJSON_IsArray(js) || cJSON_GetArraySize(js) > ISQ_ST_MAX_DIMS) {
			rc = isq_errbuf_set(&st->err, ISQ_EFORMAT, "%s: tensor '%s': shape must be an array of at most %d integers",
					    label, name, ISQ_ST_MAX_DIMS);
			break;
		}
		uint64_t elems = 1;
		for (const cJSON *e = js->child; e && !rc; e = e->next) {
			uint64_t v;
			if (get_u64(e, &v)) {
				rc = isq_errbuf_set(&st->err, ISQ_EFORMAT, "%s: tensor '%s': shape entries must be non-negative integers",
						    label, name);
				break;
			}
			if (isq_mul_u64(elems, v, &elems) || elems > (UINT64_C(1) << 62)) {
				rc = isq_errbuf_set(&st->err, ISQ_EFORMAT, "%s: tensor '%s': shape product overflows", label, name);
				break;
			}
			t.shape[t.n_dims++] = (int64_t)v;
		}
		if (rc)
			break;
		uint64_t b, e;
		if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 || get_u64(jo->child, &b) || get_u64(jo->child->next, &e) ||
		    b > e) {
			rc = isq_errbuf_set(&st->err, ISQ_EFORMAT, "%s: tensor '%s': data_offsets must be [begin, end] with begin <= end",
					    label, name);
			break;
		}
		if (e > data_len) {
			rc = isq_errbuf_set(&st->err, ISQ_EFORMAT, "%s: tensor '%s': data offset past end of file", label, name);
			break;
		}
		uint64_t bytes;
		if (isq_st_dtype_nbytes(t.dtype, elems, &bytes) || bytes != e - b) {
			rc = isq_errbuf_set(&st->err, ISQ_EFORMAT, "%s: tensor '%s': %llu bytes of data for %llu %s elements",
					    label, name, (unsigned long long)(e - b), (unsigned long long)elems, jd->valuestring);
			break;
		}
		t.name = isq_strdup(name);
		if (!t.name) {
			rc = isq_errbuf_set(&st->err, ISQ_ENOMEM, NULL);
			break;
		}
		t.n_elements = elems;
		t.nbytes = bytes;
		t.file_offset = data_start + b;
		t.data = data + data_start + b;
		t.shard = shard;
		spans[ns++] = (struct span){ b, e, st->n_tensors };
		st->tensors[st->n_tensors++] = t;
	}
	cJSON_Delete(root);
	if (!rc) {
		/* as the reference implementation: the data must be covered exactly, with no gaps or overlaps */
		qsort(spans, ns, sizeof(*spans), span_cmp);
		uint64_t at = 0;
		for (size_t i = 0; i < ns && !rc; i++) {
			if (spans[i].begin != at)
				rc = isq_errbuf_set(&st->err, ISQ_EFORMAT, "%s: tensor '%s': data %s at offset %llu", label,
						    st->tensors[spans[i].tensor].name, spans[i].begin < at ? "overlaps" : "leaves a gap",
						    (unsigned long long)spans[i].begin);
			at = spans[i].end;
		}
		if (!rc && at != data_len)
			rc = isq_errbuf_set(&st->err, ISQ_EFORMAT, "%s: %llu bytes after the last tensor's data", label,
					    (unsigned long long)(data_len - at));
	}
	free(spans);
	/* sort this shard's tensors into data order */
	if (!rc && st->n_tensors > first) {
		struct isq_st_tensor *t = st->tensors + first;
		size_t cnt = st->n_tensors - first;
		for (size_t i = 1; i < cnt; i++) {
			struct isq_st_tensor x = t[i];
			size_t j = i;
			while (j > 0 && t[j - 1].file_offset > x.file_offset) {
				t[j] = t[j - 1];
				j--;
			}
			t[j] = x;
		}
	}
	return rc;
}

static int add_shard(struct isq_safetensors *st, const char *path)
{
	char **p = realloc(st->shard_paths, (size_t)(st->n_shards + 1) * sizeof(*p));
	if (!p)
		return isq_errbuf_set(&st->err, ISQ_ENOMEM, NULL);
	st->shard_paths = p;
	struct isq_map *m = realloc(st->shards, (size_t)(st->n_shards + 1) * sizeof(*m));
	if (!m)
		return isq_errbuf_set(&st->err, ISQ_ENOMEM, NULL);
	st->shards = m;
	memset(&m[st->n_shards], 0, sizeof(*m));
	p[st->n_shards] = isq_strdup(path);
	if (!p[st->n_shards])
		return isq_errbuf_set(&st->err, ISQ_ENOMEM, NULL);
	int rc = isq_map_open(&m[st->n_shards], path, ISQ_MAP_RAW, &st->err);
	st->n_shards++;
	if (rc)
		return rc;
	const char *label = strcmp(path, "-") ? path : "<stdin>";
	return parse_image(st, m[st->n_shards - 1].data, m[st->n_shards - 1].size, st->n_shards - 1, label);
}

static int ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && !strcmp(s + a - b, suf);
}

static int open_index(struct isq_safetensors *st, const char *index_path)
{
	struct isq_buf text = ISQ_BUF_INIT, p = ISQ_BUF_INIT;
	int rc = isq_read_file(index_path, &text, &st->err);
	if (rc)
		return rc;
	cJSON *root = cJSON_ParseWithLength(text.data, text.len);
	const cJSON *wm = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
	if (!cJSON_IsObject(wm)) {
		cJSON_Delete(root);
		isq_buf_release(&text);
		return isq_errbuf_set(&st->err, ISQ_EFORMAT, "%s: not a safetensors index (no weight_map object)", index_path);
	}
	char *copy = isq_strdup(index_path);
	const char *dir = copy ? dirname(copy) : ".";
	/* shards in order of first appearance in the weight map */
	for (const cJSON *c = wm->child; c && !rc; c = c->next) {
		if (!cJSON_IsString(c) || strchr(c->valuestring, '/') || !c->valuestring[0]) {
			rc = isq_errbuf_set(&st->err, ISQ_EFORMAT, "%s: tensor '%s': bad shard file name", index_path, c->string);
			break;
		}
		isq_path_join(&p, dir, c->valuestring);
		int known = 0;
		for (int s = 0; s < st->n_shards; s++)
			if (!strcmp(st->shard_paths[s], p.data))
				known = 1;
		if (!known)
			rc = add_shard(st, p.data);
	}
	if (!rc)
		rc = index_build(st);
	/* the index and the shards must agree exactly */
	for (const cJSON *c = wm->child; c && !rc; c = c->next) {
		const struct isq_st_tensor *t = isq_st_find(st, c->string);
		isq_path_join(&p, dir, c->valuestring);
		if (!t)
			rc = isq_errbuf_set(&st->err, ISQ_EFORMAT, "%s: tensor '%s' is not in its shard %s", index_path, c->string,
					    c->valuestring);
		else if (strcmp(st->shard_paths[t->shard], p.data))
			rc = isq_errbuf_set(&st->err, ISQ_EFORMAT, "%s: tensor '%s' is in %s, the index says %s", index_path,
					    c->string, st->shard_paths[t->shard], c->valuestring);
	}
	if (!rc) {
		size_t listed = (size_t)cJSON_GetArraySize(wm);
		if (listed != st->n_tensors)
			for (size_t i = 0; i < st->n_tensors; i++)
				if (!cJSON_GetObjectItemCaseSensitive(wm, st->tensors[i].name)) {
					rc = isq_errbuf_set(&st->err, ISQ_EFORMAT, "%s: tensor '%s' is not in the index",
							    st->shard_paths[st->tensors[i].shard], st->tensors[i].name);
					break;
				}
	}
	free(copy);
	cJSON_Delete(root);
	isq_buf_release(&text);
	isq_buf_release(&p);
	return rc;
}

int isq_st_open(struct isq_safetensors *st, const char *path)
{
	clear(st);
	isq_errbuf_clear(&st->err);
	int rc;
	struct isq_buf p = ISQ_BUF_INIT;
	if (isq_is_dir(path)) {
		isq_path_join(&p, path, "model.safetensors.index.json");
		if (isq_path_exists(p.data)) {
			rc = open_index(st, p.data);
		} else {
			isq_path_join(&p, path, "model.safetensors");
			if (!isq_path_exists(p.data)) {
				/* exactly one *.safetensors file */
				DIR *d = opendir(path);
				int found = 0;
				struct dirent *de;
				while (d && (de = readdir(d)))
					if (ends_with(de->d_name, ".safetensors")) {
						found++;
						isq_path_join(&p, path, de->d_name);
					}
				if (d)
					closedir(d);
				if (found != 1) {
					isq_buf_release(&p);
					return isq_errbuf_set(&st->err, ISQ_ENOTFOUND,
							      found ? "%s: %d safetensors files and no model.safetensors.index.json"
								    : "%s: no safetensors file in this directory",
							      path, found);
				}
			}
			rc = add_shard(st, p.data);
			if (!rc)
				rc = index_build(st);
		}
	} else if (ends_with(path, ".json")) {
		rc = open_index(st, path);
	} else {
		rc = add_shard(st, path);
		if (!rc)
			rc = index_build(st);
	}
	isq_buf_release(&p);
	if (rc)
		clear(st);
	return rc;
}

int isq_st_open_memory(struct isq_safetensors *st, const void *data, uint64_t size)
{
	clear(st);
	isq_errbuf_clear(&st->err);
	int rc = parse_image(st, data, size, 0, "safetensors");
	if (!rc)
		rc = index_build(st);
	if (rc) {
		/* drop the generic label: the caller prefixes its own */
		const char *pre = "safetensors: ";
		if (!strncmp(st->err.msg, pre, strlen(pre)))
			memmove(st->err.msg, st->err.msg + strlen(pre), strlen(st->err.msg + strlen(pre)) + 1);
		clear(st);
	}
	return rc;
}

int isq_st_open_headers(struct isq_safetensors *st, int n, const struct isq_st_header *h)
{
	clear(st);
	isq_errbuf_clear(&st->err);
	int rc = 0;
	for (int i = 0; i < n && !rc; i++) {
		/* parse_image reads only the first 8 + N bytes; the declared file size bounds the offsets */
		if (h[i].len < 8 || isq_le64(h[i].bytes) > h[i].len - 8) {
			rc = isq_errbuf_set(&st->err, ISQ_EFORMAT, "%s: safetensors header cut short", h[i].label);
			break;
		}
		char **p = realloc(st->shard_paths, (size_t)(st->n_shards + 1) * sizeof(*p));
		struct isq_map *m = p ? realloc(st->shards, (size_t)(st->n_shards + 1) * sizeof(*m)) : NULL;
		if (p)
			st->shard_paths = p;
		if (m)
			st->shards = m;
		if (!p || !m || !(p[st->n_shards] = isq_strdup(h[i].label))) {
			rc = isq_errbuf_set(&st->err, ISQ_ENOMEM, NULL);
			break;
		}
		memset(&m[st->n_shards], 0, sizeof(*m));
		size_t first = st->n_tensors;
		rc = parse_image(st, h[i].bytes, h[i].file_size, st->n_shards, h[i].label);
		st->n_shards++;
		for (size_t t = first; t < st->n_tensors; t++)
			st->tensors[t].data = NULL;
	}
	if (!rc)
		rc = index_build(st);
	if (rc)
		clear(st);
	return rc;
}

/* ---- writer ------------------------------------------------------------------------------------ */

struct wt {
	char *name;
	enum isq_st_dtype dtype;
	int n_dims;
	int64_t shape[ISQ_ST_MAX_DIMS];
	uint64_t nbytes;
};

struct isq_st_writer {
	struct isq_st_kv *meta;
	size_t n_meta;
	struct wt *t;
	size_t n_t;
	struct isq_out *out;
	size_t cur;
	uint64_t cur_written;
	int begun;
	struct isq_errbuf err;
};

struct isq_st_writer *isq_st_writer_new(void)
{
	return calloc(1, sizeof(struct isq_st_writer));
}

void isq_st_writer_free(struct isq_st_writer *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n_meta; i++) {
		free(w->meta[i].key);
		free(w->meta[i].value);
	}
	for (size_t i = 0; i < w->n_t; i++)
		free(w->t[i].name);
	free(w->meta);
	free(w->t);
	free(w);
}

const char *isq_st_writer_errmsg(const struct isq_st_writer *w)
{
	return isq_errbuf_msg(&w->err);
}

int isq_st_writer_meta(struct isq_st_writer *w, const char *key, const char *value)
{
	for (size_t i = 0; i < w->n_meta; i++)
		if (!strcmp(w->meta[i].key, key)) {
			char *v = isq_strdup(value);
			if (!v)
				return isq_errbuf_set(&w->err, ISQ_ENOMEM, NULL);
			free(w->meta[i].value);
			w->meta[i].value = v;
			return 0;
		}
	struct isq_st_kv *m = realloc(w->meta, (w->n_meta + 1) * sizeof(*m));
	if (!m)
		return isq_errbuf_set(&w->err, ISQ_ENOMEM, NULL);
	w->meta = m;
	m[w->n_meta].key = isq_strdup(key);
	m[w->n_meta].value = isq_strdup(value);
	if (!m[w->n_meta].key || !m[w->n_meta].value)
		return isq_errbuf_set(&w->err, ISQ_ENOMEM, NULL);
	w->n_meta++;
	return 0;
}

int isq_st_writer_add(struct isq_st_writer *w, const char *name, enum isq_st_dtype dtype, int n_dims,
		      const int64_t *shape)
{
	if (w->begun)
		return isq_errbuf_set(&w->err, ISQ_EINVAL, "tensor '%s' added after the header was written", name);
	if (n_dims < 0 || n_dims > ISQ_ST_MAX_DIMS || (unsigned)dtype >= ISQ_ST_DTYPE_COUNT ||
	    !strcmp(name, "__metadata__"))
		return isq_errbuf_set(&w->err, ISQ_EINVAL, "tensor '%s': bad dtype, name or rank", name);
	for (size_t i = 0; i < w->n_t; i++)
		if (!strcmp(w->t[i].name, name))
			return isq_errbuf_set(&w->err, ISQ_EINVAL, "duplicate tensor '%s'", name);
	uint64_t n = 1;
	for (int d = 0; d < n_dims; d++)
		if (shape[d] < 0 || isq_mul_u64(n, (uint64_t)shape[d], &n))
			return isq_errbuf_set(&w->err, ISQ_EINVAL, "tensor '%s': bad shape", name);
	struct wt *t = realloc(w->t, (w->n_t + 1) * sizeof(*t));
	if (!t)
		return isq_errbuf_set(&w->err, ISQ_ENOMEM, NULL);
	w->t = t;
	struct wt *x = &t[w->n_t];
	memset(x, 0, sizeof(*x));
	x->name = isq_strdup(name);
	if (!x->name || isq_st_dtype_nbytes(dtype, n, &x->nbytes))
		return isq_errbuf_set(&w->err, ISQ_ENOMEM, NULL);
	x->dtype = dtype;
	x->n_dims = n_dims;
	if (n_dims)
		memcpy(x->shape, shape, (size_t)n_dims * sizeof(int64_t));
	w->n_t++;
	return 0;
}

int isq_st_writer_begin(struct isq_st_writer *w, struct isq_out *out)
{
	cJSON *root = cJSON_CreateObject();
	if (!root)
		return isq_errbuf_set(&w->err, ISQ_ENOMEM, NULL);
	if (w->n_meta) {
		cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
		for (size_t i = 0; m && i < w->n_meta; i++)
			cJSON_AddStringToObject(m, w->meta[i].key, w->meta[i].value);
	}
	uint64_t off = 0;
	for (size_t i = 0; i < w->n_t; i++) {
		cJSON *o = cJSON_AddObjectToObject(root, w->t[i].name);
		cJSON_AddStringToObject(o, "dtype", isq_st_dtype_name(w->t[i].dtype));
		cJSON *s = cJSON_AddArrayToObject(o, "shape");
		for (int d = 0; d < w->t[i].n_dims; d++)
			cJSON_AddItemToArray(s, cJSON_CreateNumber((double)w->t[i].shape[d]));
		cJSON *dof = cJSON_AddArrayToObject(o, "data_offsets");
		cJSON_AddItemToArray(dof, cJSON_CreateNumber((double)off));
		cJSON_AddItemToArray(dof, cJSON_CreateNumber((double)(off + w->t[i].nbytes)));
		off += w->t[i].nbytes;
	}
	char *json = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (!json)
		return isq_errbuf_set(&w->err, ISQ_ENOMEM, NULL);
	size_t len = strlen(json), padded = (len + 7) / 8 * 8;
	uint8_t hdr[8];
	isq_put_le64(hdr, padded);
	int rc = isq_out_write(out, hdr, 8);
	rc = rc ? rc : isq_out_write(out, json, len);
	for (size_t i = len; i < padded && !rc; i++)
		rc = isq_out_write(out, " ", 1);
	free(json);
	if (rc)
		return isq_errbuf_set(&w->err, rc, "%s", isq_errbuf_msg(&out->err));
	w->out = out;
	w->begun = 1;
	return 0;
}

int isq_st_writer_write(struct isq_st_writer *w, const void *data, size_t n)
{
	if (!w->begun)
		return isq_errbuf_set(&w->err, ISQ_EINVAL, "data written before the header");
	const uint8_t *p = data;
	while (n) {
		while (w->cur < w->n_t && w->cur_written == w->t[w->cur].nbytes) {
			w->cur++;
			w->cur_written = 0;
		}
		if (w->cur >= w->n_t)
			return isq_errbuf_set(&w->err, ISQ_EINVAL, "more data than the declared tensors hold");
		uint64_t room = w->t[w->cur].nbytes - w->cur_written;
		size_t k = (size_t)(n < room ? n : room);
		int rc = isq_out_write(w->out, p, k);
		if (rc)
			return isq_errbuf_set(&w->err, rc, "%s", isq_errbuf_msg(&w->out->err));
		w->cur_written += k;
		p += k;
		n -= k;
	}
	return 0;
}

int isq_st_writer_finish(struct isq_st_writer *w)
{
	while (w->cur < w->n_t && w->cur_written == w->t[w->cur].nbytes) {
		w->cur++;
		w->cur_written = 0;
	}
	if (w->cur < w->n_t)
		return isq_errbuf_set(&w->err, ISQ_EINVAL, "tensor '%s': %llu of %llu bytes written", w->t[w->cur].name,
				      (unsigned long long)w->cur_written, (unsigned long long)w->t[w->cur].nbytes);
	return 0;
}
