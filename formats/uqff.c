/* uqff.c - mistral.rs's UQFF 1.2 directories: names, reading, verifying (layout in uqff.h). */
#include "uqff.h"
#include "uqff-impl.h"
#include "fp.h"
#include "stats.h"

#include <cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const isq_uqff_version_keys[3] = { "uqff.version.major", "uqff.version.minor", "uqff.version.patch" };

/* ---- names and codes ------------------------------------------------------------------------- */

static const struct {
	enum isq_type type;
	const char *label;
	int format;
} labels[] = {
	{ ISQ_TYPE_F32, "f32", ISQ_UQFF_UNQUANT },   { ISQ_TYPE_F16, "f16", ISQ_UQFF_UNQUANT },
	{ ISQ_TYPE_BF16, "bf16", ISQ_UQFF_UNQUANT }, { ISQ_TYPE_Q4_0, "q4_0", ISQ_UQFF_GGUF },
	{ ISQ_TYPE_Q4_1, "q4_1", ISQ_UQFF_GGUF },    { ISQ_TYPE_Q5_0, "q5_0", ISQ_UQFF_GGUF },
	{ ISQ_TYPE_Q5_1, "q5_1", ISQ_UQFF_GGUF },    { ISQ_TYPE_Q8_0, "q8_0", ISQ_UQFF_GGUF },
	{ ISQ_TYPE_Q8_1, "q8_1", ISQ_UQFF_GGUF },    { ISQ_TYPE_Q2_K, "q2k", ISQ_UQFF_GGUF },
	{ ISQ_TYPE_Q3_K, "q3k", ISQ_UQFF_GGUF },     { ISQ_TYPE_Q4_K, "q4k", ISQ_UQFF_GGUF },
	{ ISQ_TYPE_Q5_K, "q5k", ISQ_UQFF_GGUF },     { ISQ_TYPE_Q6_K, "q6k", ISQ_UQFF_GGUF },
	{ ISQ_TYPE_Q8_K, "q8k", ISQ_UQFF_GGUF },     { ISQ_TYPE_HQQ4, "hqq4", ISQ_UQFF_HQQ },
	{ ISQ_TYPE_HQQ8, "hqq8", ISQ_UQFF_HQQ },     { ISQ_TYPE_FP8, "fp8", ISQ_UQFF_FP8 },
	{ ISQ_TYPE_AFQ2, "afq2", ISQ_UQFF_AFQ },     { ISQ_TYPE_AFQ3, "afq3", ISQ_UQFF_AFQ },
	{ ISQ_TYPE_AFQ4, "afq4", ISQ_UQFF_AFQ },     { ISQ_TYPE_AFQ6, "afq6", ISQ_UQFF_AFQ },
	{ ISQ_TYPE_AFQ8, "afq8", ISQ_UQFF_AFQ },     { ISQ_TYPE_F8Q8, "f8q8", ISQ_UQFF_F8Q8 },
	{ ISQ_TYPE_MXFP4, "mxfp4", ISQ_UQFF_MXFP4 },
};

const char *isq_uqff_type_label(enum isq_type t)
{
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(labels); i++)
		if (labels[i].type == t)
			return labels[i].label;
	return NULL;
}

int isq_uqff_format_of(enum isq_type t)
{
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(labels); i++)
		if (labels[i].type == t)
			return labels[i].format;
	return -1;
}

int isq_uqff_dtype_rank(enum isq_st_dtype d)
{
	/* the Rust crate's Dtype declaration order, which its serializer sorts by (descending) */
	static const enum isq_st_dtype order[] = { ISQ_ST_BOOL,   ISQ_ST_F4,      ISQ_ST_F6_E2M3, ISQ_ST_F6_E3M2,
						   ISQ_ST_U8,     ISQ_ST_I8,      ISQ_ST_F8_E5M2, ISQ_ST_F8_E4M3,
						   ISQ_ST_F8_E8M0, ISQ_ST_I16,    ISQ_ST_U16,     ISQ_ST_F16,
						   ISQ_ST_BF16,   ISQ_ST_I32,     ISQ_ST_U32,     ISQ_ST_F32,
						   ISQ_ST_C64,    ISQ_ST_F64,     ISQ_ST_I64,     ISQ_ST_U64 };
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(order); i++)
		if (order[i] == d)
			return (int)i;
	return -1;
}

enum isq_st_dtype isq_uqff_st_of_mrs(enum isq_mrs_dtype d)
{
	switch (d) {
	case ISQ_MRS_U8: return ISQ_ST_U8;
	case ISQ_MRS_U32: return ISQ_ST_U32;
	case ISQ_MRS_F32: return ISQ_ST_F32;
	case ISQ_MRS_F16: return ISQ_ST_F16;
	case ISQ_MRS_BF16: return ISQ_ST_BF16;
	case ISQ_MRS_F8_E4M3: return ISQ_ST_F8_E4M3;
	default: return ISQ_ST_DTYPE_COUNT;
	}
}

static int mrs_of_st(enum isq_st_dtype d, enum isq_mrs_dtype *out)
{
	switch (d) {
	case ISQ_ST_U8: *out = ISQ_MRS_U8; return 0;
	case ISQ_ST_U32: *out = ISQ_MRS_U32; return 0;
	case ISQ_ST_F32: *out = ISQ_MRS_F32; return 0;
	case ISQ_ST_F16: *out = ISQ_MRS_F16; return 0;
	case ISQ_ST_BF16: *out = ISQ_MRS_BF16; return 0;
	case ISQ_ST_F8_E4M3: *out = ISQ_MRS_F8_E4M3; return 0;
	default: return -1;
	}
}

enum isq_st_dtype isq_uqff_st_of_float(enum isq_type t)
{
	return t == ISQ_TYPE_F16 ? ISQ_ST_F16 : t == ISQ_TYPE_BF16 ? ISQ_ST_BF16 : ISQ_ST_F32;
}

enum isq_type isq_uqff_float_of_st(enum isq_st_dtype d)
{
	switch (d) {
	case ISQ_ST_F32: return ISQ_TYPE_F32;
	case ISQ_ST_F16: return ISQ_TYPE_F16;
	case ISQ_ST_BF16: return ISQ_TYPE_BF16;
	default: return ISQ_TYPE_NONE;
	}
}

/* Format 0's accepted GGML codes: mistral.rs maps exactly these (no IQ types). */
static int gguf_code_ok(uint32_t c)
{
	return c == 0 || c == 1 || c == 2 || c == 3 || c == 6 || c == 7 || c == 8 || c == 9 || (c >= 10 && c <= 15) ||
	       c == 30;
}

int isq_uqff_ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && !strcmp(s + a - b, suf);
}

static int is_version_key(const char *n)
{
	return !strcmp(n, isq_uqff_version_keys[0]) || !strcmp(n, isq_uqff_version_keys[1]) || !strcmp(n, isq_uqff_version_keys[2]);
}

/* ---- reading ---------------------------------------------------------------------------------- */

static int tensor_cmp(const void *a, const void *b)
{
	return strcmp(((const struct isq_uqff_tensor *)a)->name, ((const struct isq_uqff_tensor *)b)->name);
}

static const struct isq_uqff_tensor *set_find(const struct isq_uqff_set *s, const char *name)
{
	struct isq_uqff_tensor key = { .name = name };
	return bsearch(&key, s->tensors, s->n_tensors, sizeof(key), tensor_cmp);
}

static int u32_scalar(const struct isq_uqff_tensor *t, uint32_t *v)
{
	if (!t || t->dtype != ISQ_ST_U32 || t->rank != 0 || t->nbytes != 4)
		return -1;
	*v = isq_le32(t->data);
	return 0;
}

static const char *gguf_label(uint32_t code)
{
	switch (code) {
	case 0: return "f32";
	case 1: return "f16";
	case 30: return "bf16";
	default: return isq_uqff_type_label((enum isq_type)code);
	}
}

/* The K.weight* tensors of key K: names equal to "K.weight" or starting with "K.weight.". */
static size_t weight_tensors(const struct isq_uqff_set *s, const char *key, const struct isq_uqff_tensor **out,
			     size_t cap)
{
	size_t kl = strlen(key), n = 0;
	char *w = malloc(kl + 8);
	if (!w)
		return 0;
	memcpy(w, key, kl);
	memcpy(w + kl, ".weight", 8);
	/* the sorted array keeps "K.weight" and "K.weight.*" together */
	size_t lo = 0, hi = s->n_tensors;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (strcmp(s->tensors[mid].name, w) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < s->n_tensors; i++) {
		const char *nm = s->tensors[i].name;
		if (strncmp(nm, w, kl + 7))
			break;
		if (nm[kl + 7] != '\0' && nm[kl + 7] != '.')
			continue;
		if (n < cap)
			out[n] = &s->tensors[i];
		n++;
	}
	free(w);
	return n;
}

static int check_layer(struct isq_uqff_set *s, struct isq_uqff_layer *l, const char *path, struct isq_errbuf *e)
{
	const struct isq_uqff_tensor *wt[ISQ_MRS_MAX_TENSORS + 1];
	size_t kl = strlen(l->key);
	size_t n = weight_tensors(s, l->key, wt, ISQ_ARRAY_SIZE(wt));
	if (n > ISQ_ARRAY_SIZE(wt))
		return isq_errbuf_set(e, ISQ_EFORMAT, "%s: layer '%s': %zu weight tensors, more than any format has", path,
				      l->key, n);
	const struct isq_uqff_tensor *fmt = NULL, *w = NULL;
	for (size_t i = 0; i < n; i++) {
		const char *suf = wt[i]->name + kl + 1;
		if (!strcmp(suf, "weight.format"))
			fmt = wt[i];
		if (!strcmp(suf, "weight"))
			w = wt[i];
	}
	if (!fmt || fmt->dtype != ISQ_ST_U8 || fmt->rank != 0 || fmt->nbytes != 1)
		return isq_errbuf_set(e, ISQ_EFORMAT, "%s: tensor '%s.weight.format' is not a U8 scalar", path, l->key);
	int tag = fmt->data[0];
	if (tag > 6)
		return isq_errbuf_set(e, ISQ_EFORMAT, "%s: layer '%s': unknown format tag %d", path, l->key, tag);
	if (!w)
		return isq_errbuf_set(e, ISQ_EFORMAT, "%s: layer '%s': no '%s.weight' tensor", path, l->key, l->key);
	l->format = (enum isq_uqff_format)tag;
	l->weight = w;
	l->nbytes = 0;
	for (size_t i = 0; i < n; i++)
		l->nbytes += wt[i]->nbytes;

	if (tag == ISQ_UQFF_GGUF || tag == ISQ_UQFF_UNQUANT) {
		static const char *const want0[] = { "weight", "weight.format", "weight.dtype", "weight.shape" };
		static const char *const want1[] = { "weight", "weight.format" };
		const char *const *want = tag == 0 ? want0 : want1;
		size_t nw = tag == 0 ? 4 : 2;
		for (size_t i = 0; i < n; i++) {
			const char *suf = wt[i]->name + kl + 1;
			int ok = 0;
			for (size_t j = 0; j < nw; j++)
				ok |= !strcmp(suf, want[j]);
			if (!ok)
				return isq_errbuf_set(e, ISQ_EFORMAT, "%s: layer '%s' (format %d): unexpected tensor '%s'", path,
						      l->key, tag, wt[i]->name);
		}
		if (n != nw)
			return isq_errbuf_set(e, ISQ_EFORMAT, "%s: layer '%s' (format %d): %zu of the %zu weight tensors",
					      path, l->key, tag, n, nw);
	}
	if (tag == ISQ_UQFF_GGUF) {
		const struct isq_uqff_tensor *dt = NULL, *sh = NULL;
		for (size_t i = 0; i < n; i++) {
			const char *suf = wt[i]->name + kl + 1;
			if (!strcmp(suf, "weight.dtype"))
				dt = wt[i];
			if (!strcmp(suf, "weight.shape"))
				sh = wt[i];
		}
		uint32_t code;
		if (u32_scalar(dt, &code))
			return isq_errbuf_set(e, ISQ_EFORMAT, "%s: tensor '%s.weight.dtype' is not a U32 scalar", path, l->key);
		if (!gguf_code_ok(code) || !isq_type_from_ggml(code))
			return isq_errbuf_set(e, ISQ_EFORMAT, "%s: layer '%s': GGML type %u is not one UQFF holds", path,
					      l->key, code);
		if (sh->dtype != ISQ_ST_U32 || sh->rank != 1 || sh->shape[0] < 1 || sh->shape[0] > ISQ_MRS_MAX_RANK)
			return isq_errbuf_set(e, ISQ_EFORMAT, "%s: tensor '%s.weight.shape' is not a U32 vector of 1 to %d dims",
					      path, l->key, ISQ_MRS_MAX_RANK);
		if (w->dtype != ISQ_ST_U8 || w->rank != 1)
			return isq_errbuf_set(e, ISQ_EFORMAT, "%s: tensor '%s.weight' is not a U8 vector", path, l->key);
		l->type = (enum isq_type)code;
		l->rank = (int)sh->shape[0];
		uint64_t rows = 1;
		for (int d = 0; d < l->rank; d++) {
			l->shape[d] = isq_le32(sh->data + 4 * d);
			if (!l->shape[d])
				return isq_errbuf_set(e, ISQ_EFORMAT, "%s: layer '%s': zero dimension", path, l->key);
			if (d < l->rank - 1 && isq_mul_u64(rows, l->shape[d], &rows))
				return isq_errbuf_set(e, ISQ_EFORMAT, "%s: layer '%s': shape overflows", path, l->key);
		}
		uint64_t rb, total;
		if (isq_type_row_size(l->type, l->shape[l->rank - 1], &rb))
			return isq_errbuf_set(e, ISQ_EFORMAT, "%s: layer '%s': row of %llu does not fit %s", path, l->key,
					      (unsigned long long)l->shape[l->rank - 1], isq_type_name(l->type));
		if (isq_mul_u64(rb, rows, &total) || total != w->nbytes)
			return isq_errbuf_set(e, ISQ_EFORMAT, "%s: layer '%s': %llu bytes of %s data, the shape needs %llu",
					      path, l->key, (unsigned long long)w->nbytes, isq_type_name(l->type),
					      (unsigned long long)total);
		snprintf(l->label, sizeof(l->label), "%s", gguf_label(code));
	} else if (tag == ISQ_UQFF_UNQUANT) {
		l->type = isq_uqff_float_of_st(w->dtype);
		if (l->type == ISQ_TYPE_NONE)
			return isq_errbuf_set(e, ISQ_EFORMAT, "%s: layer '%s': dense weight of dtype %s", path, l->key,
					      isq_st_dtype_name(w->dtype));
		if (w->rank < 1 || w->rank > ISQ_MRS_MAX_RANK)
			return isq_errbuf_set(e, ISQ_EFORMAT, "%s: layer '%s': dense weight of rank %d", path, l->key, w->rank);
		l->rank = w->rank;
		for (int d = 0; d < l->rank; d++)
			l->shape[d] = (uint64_t)w->shape[d];
		snprintf(l->label, sizeof(l->label), "unquant");
	} else {
		struct isq_mrs_tensor in[ISQ_MRS_MAX_TENSORS];
		if (n > ISQ_MRS_MAX_TENSORS)
			return isq_errbuf_set(e, ISQ_EFORMAT, "%s: layer '%s': too many weight tensors", path, l->key);
		for (size_t i = 0; i < n; i++) {
			memset(&in[i], 0, sizeof(in[i]));
			in[i].suffix = wt[i]->name + kl + 1;
			if (mrs_of_st(wt[i]->dtype, &in[i].dtype) || wt[i]->rank > ISQ_MRS_MAX_RANK)
				return isq_errbuf_set(e, ISQ_EFORMAT, "%s: tensor '%s': dtype %s or rank %d is not one format %d uses",
						      path, wt[i]->name, isq_st_dtype_name(wt[i]->dtype), wt[i]->rank, tag);
			in[i].rank = wt[i]->rank;
			for (int d = 0; d < in[i].rank; d++)
				in[i].shape[d] = (uint64_t)wt[i]->shape[d];
			in[i].nbytes = wt[i]->nbytes;
			in[i].data = (void *)wt[i]->data;
		}
		struct isq_errbuf me = { 0 };
		int rc = isq_mrs_open(&l->mrs, in, (int)n, &me);
		if (rc)
			return isq_errbuf_set(e, ISQ_EFORMAT, "%s: layer '%s': %s", path, l->key, isq_errbuf_msg(&me));
		l->type = l->mrs.type;
		l->rank = l->mrs.rank;
		for (int d = 0; d < l->rank; d++)
			l->shape[d] = l->mrs.shape[d];
		snprintf(l->label, sizeof(l->label), "%s", isq_uqff_type_label(l->type));
	}
	l->numel = 1;
	for (int d = 0; d < l->rank; d++)
		if (isq_mul_u64(l->numel, l->shape[d], &l->numel))
			return isq_errbuf_set(e, ISQ_EFORMAT, "%s: layer '%s': shape overflows", path, l->key);

	char *bn = malloc(kl + 6);
	if (!bn)
		return isq_errbuf_set(e, ISQ_ENOMEM, NULL);
	snprintf(bn, kl + 6, "%s.bias", l->key);
	const struct isq_uqff_tensor *b = set_find(s, bn);
	free(bn);
	if (b) {
		int ok = isq_uqff_float_of_st(b->dtype) != ISQ_TYPE_NONE && b->rank == l->rank - 1 && b->rank >= 1;
		for (int d = 0; ok && d < b->rank; d++)
			ok = (uint64_t)b->shape[d] == l->shape[d];
		if (!ok)
			return isq_errbuf_set(e, ISQ_EFORMAT, "%s: tensor '%s.bias': dtype or shape does not match the weight",
					      path, l->key);
		l->bias = b;
		l->nbytes += b->nbytes;
	}
	return 0;
}

static int layer_cmp(const void *a, const void *b)
{
	return strcmp(((const struct isq_uqff_layer *)a)->key, ((const struct isq_uqff_layer *)b)->key);
}

/* Is name K.weight, K.weight.* or K.bias of a layer of s? */
static int owned_by_layer(const struct isq_uqff_set *s, const char *name)
{
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s", name);
	/* strip ".bias", or cut at the last ".weight" */
	char *cut = NULL;
	if (isq_uqff_ends_with(buf, ".bias")) {
		cut = buf + strlen(buf) - 5;
	} else {
		for (char *p = strstr(buf, ".weight"); p; p = strstr(p + 1, ".weight"))
			if (p[7] == '\0' || p[7] == '.')
				cut = p;
	}
	if (!cut)
		return 0;
	*cut = '\0';
	return isq_uqff_find_layer(s, buf) != NULL;
}

/* Merge a set's shards, then check it as mistral.rs's UqffReader::open does, and recognise the layers. */
static int set_build(struct isq_uqff_set *s, struct isq_errbuf *e)
{
	size_t total = 0;
	for (int i = 0; i < s->n_shards; i++)
		total += s->shards[i]->n_tensors;
	s->tensors = isq_mallocarray(total ? total : 1, sizeof(*s->tensors));
	if (!s->tensors)
		return isq_errbuf_set(e, ISQ_ENOMEM, NULL);
	for (int i = 0; i < s->n_shards; i++)
		for (size_t j = 0; j < s->shards[i]->n_tensors; j++) {
			const struct isq_st_tensor *t = &s->shards[i]->tensors[j];
			struct isq_uqff_tensor *u = &s->tensors[s->n_tensors++];
			u->name = t->name;
			u->dtype = t->dtype;
			u->rank = t->n_dims;
			memcpy(u->shape, t->shape, sizeof(u->shape));
			u->nbytes = t->nbytes;
			u->data = t->data;
			u->shard = i;
		}
	qsort(s->tensors, s->n_tensors, sizeof(*s->tensors), tensor_cmp);
	/* duplicates across shards: only equal version scalars may repeat */
	size_t k = 0;
	for (size_t i = 0; i < s->n_tensors; i++) {
		if (k && !strcmp(s->tensors[k - 1].name, s->tensors[i].name)) {
			const struct isq_uqff_tensor *a = &s->tensors[k - 1], *b = &s->tensors[i];
			uint32_t va, vb;
			if (is_version_key(a->name) && !u32_scalar(a, &va) && !u32_scalar(b, &vb) && va == vb)
				continue;
			return isq_errbuf_set(e, ISQ_EFORMAT, "duplicate tensor '%s' in %s and %s", a->name,
					      s->shard_paths[a->shard], s->shard_paths[b->shard]);
		}
		s->tensors[k++] = s->tensors[i];
	}
	s->n_tensors = k;
	const char *where = s->shard_paths[0];

	int numeric = s->n_tensors > 0;
	for (size_t i = 0; i < s->n_tensors && numeric; i++) {
		const char *p = s->tensors[i].name;
		numeric = *p != '\0';
		for (; *p && numeric; p++)
			numeric = isdigit((unsigned char)*p);
	}
	if (numeric)
		return isq_errbuf_set(e, ISQ_EFORMAT,
				      "%s: pre-1.0 UQFF (numeric tensor names), which mistral.rs refuses; convert it with isq-pack-uqff --import-legacy",
				      where);
	for (int v = 0; v < 3; v++) {
		const struct isq_uqff_tensor *t = set_find(s, isq_uqff_version_keys[v]);
		if (!t)
			return isq_errbuf_set(e, ISQ_EFORMAT, "%s: no '%s' tensor (not UQFF 1.x)", where, isq_uqff_version_keys[v]);
		if (u32_scalar(t, &s->version[v]))
			return isq_errbuf_set(e, ISQ_EFORMAT, "%s: '%s' is not a U32 scalar", s->shard_paths[t->shard],
					      isq_uqff_version_keys[v]);
	}
	if (s->version[0] != ISQ_UQFF_VERSION_MAJOR)
		return isq_errbuf_set(e, ISQ_EFORMAT, "%s: UQFF version %u.%u.%u is incompatible with 1.x", where,
				      s->version[0], s->version[1], s->version[2]);
	if (s->version[1] > ISQ_UQFF_VERSION_MINOR)
		return isq_errbuf_set(e, ISQ_EFORMAT, "%s: UQFF version %u.%u.%u is newer than 1.%d, which mistral.rs reads",
				      where, s->version[0], s->version[1], s->version[2], ISQ_UQFF_VERSION_MINOR);

	size_t nl = 0;
	for (size_t i = 0; i < s->n_tensors; i++)
		nl += isq_uqff_ends_with(s->tensors[i].name, ".weight.format");
	s->layers = calloc(nl ? nl : 1, sizeof(*s->layers));
	if (!s->layers)
		return isq_errbuf_set(e, ISQ_ENOMEM, NULL);
	for (size_t i = 0; i < s->n_tensors; i++) {
		const char *nm = s->tensors[i].name;
		if (!isq_uqff_ends_with(nm, ".weight.format"))
			continue;
		struct isq_uqff_layer *l = &s->layers[s->n_layers];
		l->key = malloc(strlen(nm) - 13);
		if (!l->key)
			return isq_errbuf_set(e, ISQ_ENOMEM, NULL);
		memcpy(l->key, nm, strlen(nm) - 14);
		l->key[strlen(nm) - 14] = '\0';
		s->n_layers++;
		int rc = check_layer(s, l, s->shard_paths[s->tensors[i].shard], e);
		if (rc)
			return rc;
	}
	qsort(s->layers, s->n_layers, sizeof(*s->layers), layer_cmp);
	for (size_t i = 0; i < s->n_tensors; i++) {
		const char *nm = s->tensors[i].name;
		if (!is_version_key(nm) && !owned_by_layer(s, nm))
			return isq_errbuf_set(e, ISQ_EFORMAT, "%s: tensor '%s' belongs to no layer (no '.weight.format' for it)",
					      s->shard_paths[s->tensors[i].shard], nm);
	}
	return 0;
}

const struct isq_uqff_layer *isq_uqff_find_layer(const struct isq_uqff_set *s, const char *key)
{
	struct isq_uqff_layer k = { .key = (char *)key };
	return bsearch(&k, s->layers, s->n_layers, sizeof(k), layer_cmp);
}

static void set_release(struct isq_uqff_set *s)
{
	for (size_t i = 0; i < s->n_layers; i++)
		free(s->layers[i].key);
	free(s->layers);
	free(s->tensors);
	for (int i = 0; i < s->n_shards; i++) {
		isq_st_free(s->shards ? s->shards[i] : NULL);
		free(s->shard_paths ? s->shard_paths[i] : NULL);
	}
	free(s->shards);
	free(s->shard_paths);
	free(s->stem);
	memset(s, 0, sizeof(*s));
}

void isq_uqff_release(struct isq_uqff *u)
{
	for (int i = 0; i < u->n_sets; i++)
		set_release(&u->sets[i]);
	free(u->sets);
	isq_st_free(u->residual);
	free(u->path);
	free(u->dir);
	struct isq_errbuf keep = u->err;
	memset(u, 0, sizeof(*u));
	u->err = keep;
}

/* "<stem>-<n>.uqff" -> stem and n; n = -1 for a name outside that scheme. */
char *isq_uqff_split_shard_name(const char *name, long *n)
{
	size_t len = strlen(name) - 5; /* without ".uqff" */
	*n = -1;
	size_t i = len;
	while (i > 0 && isdigit((unsigned char)name[i - 1]))
		i--;
	if (i < len && i > 1 && name[i - 1] == '-' && len - i < 9) {
		*n = strtol(name + i, NULL, 10);
		len = i - 1;
	}
	char *s = malloc(len + 1);
	if (s) {
		memcpy(s, name, len);
		s[len] = '\0';
	}
	return s;
}

struct shard_name {
	char *name;
	char *stem;
	long n;
};

static int shard_name_cmp(const void *a, const void *b)
{
	const struct shard_name *x = a, *y = b;
	int c = strcmp(x->stem, y->stem);
	if (c)
		return c;
	return x->n < y->n ? -1 : x->n > y->n;
}

static int add_set(struct isq_uqff *u, const char *stem, char **paths, int n)
{
	struct isq_uqff_set *ns = realloc(u->sets, (size_t)(u->n_sets + 1) * sizeof(*ns));
	if (!ns)
		return isq_errbuf_set(&u->err, ISQ_ENOMEM, NULL);
	u->sets = ns;
	struct isq_uqff_set *s = &ns[u->n_sets++];
	memset(s, 0, sizeof(*s));
	s->stem = isq_strdup(stem);
	s->shard_paths = calloc((size_t)n, sizeof(char *));
	s->shards = calloc((size_t)n, sizeof(*s->shards));
	if (!s->stem || !s->shard_paths || !s->shards)
		return isq_errbuf_set(&u->err, ISQ_ENOMEM, NULL);
	for (int i = 0; i < n; i++) {
		s->shard_paths[i] = isq_strdup(paths[i]);
		s->shards[i] = isq_st_new();
		s->n_shards = i + 1;
		if (!s->shard_paths[i] || !s->shards[i])
			return isq_errbuf_set(&u->err, ISQ_ENOMEM, NULL);
		int rc = isq_st_open(s->shards[i], paths[i]);
		if (rc)
			return isq_errbuf_set(&u->err, rc == ISQ_ENOTFOUND ? rc : ISQ_EFORMAT, "%s",
					      isq_errbuf_msg(&s->shards[i]->err));
	}
	return set_build(s, &u->err);
}

static int open_dir(struct isq_uqff *u, const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return isq_errbuf_set(&u->err, errno == ENOENT ? ISQ_ENOTFOUND : ISQ_EIO, "%s: %s", dir, strerror(errno));
	struct shard_name *names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d)) && !rc) {
		if (de->d_name[0] == '.' || !isq_uqff_ends_with(de->d_name, ".uqff") || strlen(de->d_name) <= 5)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			struct shard_name *nn = realloc(names, cap * sizeof(*nn));
			if (!nn) {
				rc = isq_errbuf_set(&u->err, ISQ_ENOMEM, NULL);
				break;
			}
			names = nn;
		}
		names[n].name = isq_strdup(de->d_name);
		names[n].stem = names[n].name ? isq_uqff_split_shard_name(de->d_name, &names[n].n) : NULL;
		n++;
		if (!names[n - 1].name || !names[n - 1].stem)
			rc = isq_errbuf_set(&u->err, ISQ_ENOMEM, NULL);
	}
	closedir(d);
	if (!rc && !n)
		rc = isq_errbuf_set(&u->err, ISQ_ENOTFOUND, "%s: no .uqff shard in this directory", dir);
	if (!rc)
		qsort(names, n, sizeof(*names), shard_name_cmp);
	char **paths = rc ? NULL : calloc(n, sizeof(char *));
	if (!rc && !paths)
		rc = isq_errbuf_set(&u->err, ISQ_ENOMEM, NULL);
	for (size_t i = 0; i < n && !rc;) {
		size_t j = i;
		int np = 0;
		if (names[i].n < 0) {
			j = i + 1;
		} else {
			while (j < n && !strcmp(names[j].stem, names[i].stem) && names[j].n >= 0)
				j++;
			for (size_t k = i; k < j; k++)
				if (names[k].n != (long)(k - i)) {
					rc = isq_errbuf_set(&u->err, ISQ_EFORMAT,
							    "%s/%s: shard numbering has a gap (no %s-%ld.uqff); mistral.rs stops at the gap",
							    dir, names[k].name, names[i].stem, (long)(k - i));
					break;
				}
		}
		for (size_t k = i; k < j && !rc; k++) {
			struct isq_buf p = ISQ_BUF_INIT;
			isq_path_join(&p, dir, names[k].name);
			paths[np++] = isq_buf_detach(&p, NULL);
		}
		if (!rc)
			rc = add_set(u, names[i].stem, paths, np);
		for (int k = 0; k < np; k++)
			free(paths[k]);
		i = j;
	}
	free(paths);
	for (size_t i = 0; i < n; i++) {
		free(names[i].name);
		free(names[i].stem);
	}
	free(names);
	return rc;
}

int isq_uqff_open(struct isq_uqff *u, const char *path)
{
	memset(u, 0, sizeof(*u));
	u->path = isq_strdup(path);
	int rc;
	if (isq_is_dir(path)) {
		u->dir = isq_strdup(path);
		rc = open_dir(u, path);
		struct isq_buf p = ISQ_BUF_INIT;
		if (!rc && !isq_path_join(&p, path, "residual.safetensors") && isq_path_exists(p.data)) {
			u->residual = isq_st_new();
			if (!u->residual)
				rc = isq_errbuf_set(&u->err, ISQ_ENOMEM, NULL);
			else if ((rc = isq_st_open(u->residual, p.data)))
				isq_errbuf_set(&u->err, rc, "%s", isq_errbuf_msg(&u->residual->err));
		}
		isq_buf_release(&p);
	} else {
		char *copy = isq_strdup(path);
		u->dir = copy ? isq_strdup(dirname(copy)) : NULL;
		free(copy);
		const char *base = strrchr(path, '/');
		base = base ? base + 1 : path;
		long n;
		char *stem = isq_uqff_ends_with(base, ".uqff") ? isq_uqff_split_shard_name(base, &n) : isq_strdup(base);
		char *paths[1] = { (char *)path };
		rc = stem ? add_set(u, stem, paths, 1) : isq_errbuf_set(&u->err, ISQ_ENOMEM, NULL);
		free(stem);
	}
	if (rc) {
		int code = u->err.code ? u->err.code : rc;
		isq_uqff_release(u);
		u->err.code = code;
		return code;
	}
	return 0;
}

/* ---- verify ------------------------------------------------------------------------------------ */

static int verify_report(struct isq_uqff *u, const char *text)
{
	cJSON *r = cJSON_Parse(text);
	int rc = 0;
	char **claimed = NULL;
	size_t n_claimed = 0;
	if (!r)
		return isq_errbuf_set(&u->err, ISQ_EFORMAT, "%s/uqff_report.json: not valid JSON", u->dir);
	const cJSON *schema = cJSON_GetObjectItemCaseSensitive(r, "schema");
	const cJSON *outs = cJSON_GetObjectItemCaseSensitive(r, "outputs");
	if (!cJSON_IsNumber(schema) || schema->valuedouble != 1) {
		rc = isq_errbuf_set(&u->err, ISQ_EFORMAT, "%s/uqff_report.json: schema is not 1", u->dir);
		goto out;
	}
	if (!cJSON_IsArray(outs) || !cJSON_GetArraySize(outs)) {
		rc = isq_errbuf_set(&u->err, ISQ_EFORMAT, "%s/uqff_report.json: no outputs", u->dir);
		goto out;
	}
	const cJSON *o;
	int idx = 0;
	cJSON_ArrayForEach(o, outs)
	{
		const cJSON *q = cJSON_GetObjectItemCaseSensitive(o, "quant");
		const cJSON *sh = cJSON_GetObjectItemCaseSensitive(o, "shards");
		const cJSON *nl = cJSON_GetObjectItemCaseSensitive(o, "layers");
		const cJSON *ac = cJSON_GetObjectItemCaseSensitive(o, "actual_counts");
		if (!cJSON_IsString(q) || !cJSON_IsArray(sh) || !cJSON_GetArraySize(sh) || !cJSON_IsNumber(nl)) {
			rc = isq_errbuf_set(&u->err, ISQ_EFORMAT, "%s/uqff_report.json: output %d lacks quant, shards or layers",
					    u->dir, idx);
			goto out;
		}
		const cJSON *o2;
		int idx2 = 0;
		cJSON_ArrayForEach(o2, outs)
		{
			const cJSON *q2 = cJSON_GetObjectItemCaseSensitive(o2, "quant");
			if (idx2++ < idx && cJSON_IsString(q2) && !strcmp(q2->valuestring, q->valuestring)) {
				rc = isq_errbuf_set(&u->err, ISQ_EFORMAT, "%s/uqff_report.json: quant '%s' listed twice", u->dir,
						    q->valuestring);
				goto out;
			}
		}
		/* the set whose first shard is this output's first shard */
		const struct isq_uqff_set *set = NULL;
		const cJSON *s;
		cJSON_ArrayForEach(s, sh)
		{
			if (!cJSON_IsString(s) || strchr(s->valuestring, '/')) {
				rc = isq_errbuf_set(&u->err, ISQ_EFORMAT, "%s/uqff_report.json: output '%s': bad shard name", u->dir,
						    q->valuestring);
				goto out;
			}
			for (size_t k = 0; k < n_claimed; k++)
				if (!strcmp(claimed[k], s->valuestring)) {
					rc = isq_errbuf_set(&u->err, ISQ_EFORMAT, "%s/uqff_report.json: shard '%s' claimed twice",
							    u->dir, s->valuestring);
					goto out;
				}
			char **nc = realloc(claimed, (n_claimed + 1) * sizeof(char *));
			if (!nc) {
				rc = isq_errbuf_set(&u->err, ISQ_ENOMEM, NULL);
				goto out;
			}
			claimed = nc;
			claimed[n_claimed++] = s->valuestring;
			const struct isq_uqff_set *found = NULL;
			for (int si = 0; si < u->n_sets && !found; si++)
				for (int k = 0; k < u->sets[si].n_shards; k++) {
					const char *b = strrchr(u->sets[si].shard_paths[k], '/');
					b = b ? b + 1 : u->sets[si].shard_paths[k];
					if (!strcmp(b, s->valuestring))
						found = &u->sets[si];
				}
			if (!found) {
				rc = isq_errbuf_set(&u->err, ISQ_EFORMAT, "%s/uqff_report.json: output '%s': shard '%s' is missing",
						    u->dir, q->valuestring, s->valuestring);
				goto out;
			}
			if (set && found != set) {
				rc = isq_errbuf_set(&u->err, ISQ_EFORMAT, "%s/uqff_report.json: output '%s' lists shards of two sets",
						    u->dir, q->valuestring);
				goto out;
			}
			set = found;
		}
		if (cJSON_GetArraySize(sh) != set->n_shards) {
			rc = isq_errbuf_set(&u->err, ISQ_EFORMAT, "%s/uqff_report.json: output '%s' lists %d shards, there are %d",
					    u->dir, q->valuestring, cJSON_GetArraySize(sh), set->n_shards);
			goto out;
		}
		if ((size_t)nl->valuedouble != set->n_layers) {
			rc = isq_errbuf_set(&u->err, ISQ_EFORMAT, "%s/uqff_report.json: output '%s' says %g layers, the shards hold %zu",
					    u->dir, q->valuestring, nl->valuedouble, set->n_layers);
			goto out;
		}
		if (cJSON_IsObject(ac)) {
			size_t sum = 0;
			const cJSON *c;
			cJSON_ArrayForEach(c, ac)
			{
				size_t have = 0;
				for (size_t k = 0; k < set->n_layers; k++)
					have += !strcmp(set->layers[k].label, c->string);
				if (!cJSON_IsNumber(c) || (size_t)c->valuedouble != have) {
					rc = isq_errbuf_set(&u->err, ISQ_EFORMAT,
							    "%s/uqff_report.json: output '%s': %s count %g, the shards hold %zu", u->dir,
							    q->valuestring, c->string, cJSON_IsNumber(c) ? c->valuedouble : -1.0, have);
					goto out;
				}
				sum += have;
			}
			if (sum != set->n_layers) {
				rc = isq_errbuf_set(&u->err, ISQ_EFORMAT, "%s/uqff_report.json: output '%s': actual_counts miss layers",
						    u->dir, q->valuestring);
				goto out;
			}
		}
		idx++;
	}
	/* the reverse: a shard set on disk that no output lists (left over, or written by hand) */
	for (int si = 0; si < u->n_sets && !rc; si++) {
		const struct isq_uqff_set *set = &u->sets[si];
		int listed = 0;
		for (int k = 0; k < set->n_shards && !listed; k++) {
			const char *b = strrchr(set->shard_paths[k], '/');
			b = b ? b + 1 : set->shard_paths[k];
			for (size_t c = 0; c < n_claimed && !listed; c++)
				listed = !strcmp(claimed[c], b);
		}
		if (!listed) {
			const char *b = strrchr(set->shard_paths[0], '/');
			rc = isq_errbuf_set(&u->err, ISQ_EFORMAT, "%s/uqff_report.json: shard set '%s' (%s) is not in the report",
					    u->dir, set->stem, b ? b + 1 : set->shard_paths[0]);
		}
	}
out:
	free(claimed);
	cJSON_Delete(r);
	return rc;
}

int isq_uqff_verify(struct isq_uqff *u)
{
	if (!u->sets)
		return isq_errbuf_set(&u->err, ISQ_EINVAL, "nothing open");
	struct isq_buf p = ISQ_BUF_INIT, text = ISQ_BUF_INIT;
	struct isq_errbuf e = { 0 };
	int rc = 0;
	if (u->residual)
		for (size_t i = 0; i < u->residual->n_tensors && !rc; i++)
			for (int s = 0; s < u->n_sets && !rc; s++)
				if (owned_by_layer(&u->sets[s], u->residual->tensors[i].name))
					rc = isq_errbuf_set(&u->err, ISQ_EFORMAT, "%s/residual.safetensors: tensor '%s' is also a layer entry of %s",
							    u->dir, u->residual->tensors[i].name, u->sets[s].stem);
	if (!rc && !isq_path_join(&p, u->dir, "uqff_report.json") && isq_path_exists(p.data)) {
		rc = isq_read_file(p.data, &text, &e);
		if (rc)
			isq_errbuf_set(&u->err, rc, "%s", isq_errbuf_msg(&e));
		else
			rc = verify_report(u, text.data);
	}
	if (!rc && !isq_path_join(&p, u->dir, "config.json") && isq_path_exists(p.data)) {
		rc = isq_read_file(p.data, &text, &e);
		cJSON *c = rc ? NULL : cJSON_Parse(text.data);
		if (rc)
			isq_errbuf_set(&u->err, rc, "%s", isq_errbuf_msg(&e));
		else if (!cJSON_IsObject(c))
			rc = isq_errbuf_set(&u->err, ISQ_EFORMAT, "%s: not a JSON object", p.data);
		cJSON_Delete(c);
	}
	isq_buf_release(&p);
	isq_buf_release(&text);
	return rc;
}

/* A view of p that the decoders may load as their block structs: the shard's own bytes when aligned, else a copy. */
static const void *aligned_view(const void *p, uint64_t n, void **own)
{
	*own = NULL;
	if ((uintptr_t)p % 8 == 0)
		return p;
	*own = malloc(n ? (size_t)n : 1);
	if (*own)
		memcpy(*own, p, (size_t)n);
	return *own;
}

int isq_uqff_dequantize(const struct isq_uqff_layer *l, float *dst, struct isq_errbuf *e)
{
	/* the crate packs tensors without padding, so a block stream may start at any byte */
	int rc = 0;
	if (l->format == ISQ_UQFF_GGUF || l->format == ISQ_UQFF_UNQUANT) {
		void *own;
		const void *src = aligned_view(l->weight->data, l->weight->nbytes, &own);
		if (!src)
			return isq_errbuf_set(e, ISQ_ENOMEM, NULL);
		if (isq_decode_to_float(l->type, src, dst, l->numel))
			rc = isq_errbuf_set(e, ISQ_EUNSUPPORTED, "layer '%s': no decoder for %s", l->key,
					    isq_type_name(l->type));
		free(own);
		return rc;
	}
	struct isq_mrs_layout c = l->mrs;
	void *own[ISQ_MRS_MAX_TENSORS] = { 0 };
	for (int i = 0; i < c.ntensors && !rc; i++) {
		c.t[i].data = (void *)aligned_view(c.t[i].data, c.t[i].nbytes, &own[i]);
		if (!c.t[i].data)
			rc = isq_errbuf_set(e, ISQ_ENOMEM, NULL);
	}
	if (!rc)
		isq_mrs_dequantize(&c, dst);
	for (int i = 0; i < c.ntensors; i++)
		free(own[i]);
	return rc;
}

int isq_uqff_check_memory(const void *data, uint64_t size, float *dst, uint64_t dst_cap, size_t *n_layers,
			  struct isq_errbuf *e)
{
	struct isq_uqff_set s;
	memset(&s, 0, sizeof(s));
	*n_layers = 0;
	s.n_shards = 1;
	s.shards = calloc(1, sizeof(*s.shards));
	s.shard_paths = calloc(1, sizeof(char *));
	int rc = 0;
	if (!s.shards || !s.shard_paths || !(s.shards[0] = isq_st_new()) || !(s.shard_paths[0] = isq_strdup("<memory>"))) {
		rc = isq_errbuf_set(e, ISQ_ENOMEM, NULL);
		goto out;
	}
	rc = isq_st_open_memory(s.shards[0], data, size);
	if (rc) {
		isq_errbuf_set(e, rc, "%s", isq_errbuf_msg(&s.shards[0]->err));
		goto out;
	}
	rc = set_build(&s, e);
	if (rc)
		goto out;
	*n_layers = s.n_layers;
	for (size_t i = 0; i < s.n_layers && !rc; i++)
		if (s.layers[i].numel <= dst_cap)
			rc = isq_uqff_dequantize(&s.layers[i], dst, e);
out:
	set_release(&s);
	return rc;
}

