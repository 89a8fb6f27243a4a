/* imatrix.c - importance matrices: GGUF, legacy .dat and .cimatrix. */
#include "imatrix.h"
#include "config.h"
#include "fp.h"
#include "gguf.h"
#include "types.h"

#include <math.h>

void isq_imatrix_init(struct isq_imatrix *im)
{
	memset(im, 0, sizeof(*im));
}

void isq_imatrix_release(struct isq_imatrix *im)
{
	for (size_t i = 0; i < im->n; i++) {
		free(im->entries[i].name);
		free(im->entries[i].sums);
		free(im->entries[i].counts);
	}
	free(im->entries);
	for (size_t i = 0; i < im->n_datasets; i++)
		free(im->datasets[i]);
	free(im->datasets);
	memset(im, 0, sizeof(*im));
}

const char *isq_imatrix_format_name(enum isq_imatrix_format f)
{
	switch (f) {
	case ISQ_IMATRIX_GGUF: return "gguf";
	case ISQ_IMATRIX_DAT: return "dat";
	case ISQ_IMATRIX_CIMATRIX: return "cimatrix";
	}
	return "?";
}

int isq_imatrix_format_parse(const char *s, enum isq_imatrix_format *f)
{
	if (!strcmp(s, "gguf"))
		*f = ISQ_IMATRIX_GGUF;
	else if (!strcmp(s, "dat"))
		*f = ISQ_IMATRIX_DAT;
	else if (!strcmp(s, "cimatrix"))
		*f = ISQ_IMATRIX_CIMATRIX;
	else
		return ISQ_EINVAL;
	return 0;
}

static int has_ext(const char *path, const char *ext)
{
	size_t a = strlen(path), b = strlen(ext);
	return a >= b && !strcmp(path + a - b, ext);
}

enum isq_imatrix_format isq_imatrix_format_from_path(const char *path)
{
	if (has_ext(path, ".dat"))
		return ISQ_IMATRIX_DAT;
	if (has_ext(path, ".cimatrix"))
		return ISQ_IMATRIX_CIMATRIX;
	return ISQ_IMATRIX_GGUF;
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct isq_imatrix_entry *)a)->name, ((const struct isq_imatrix_entry *)b)->name);
}

const struct isq_imatrix_entry *isq_imatrix_find(const struct isq_imatrix *im, const char *name)
{
	if (!im->n)
		return NULL;
	struct isq_imatrix_entry key = { .name = (char *)name };
	const struct isq_imatrix_entry *en = bsearch(&key, im->entries, im->n, sizeof(key), entry_cmp);
	if (en)
		return en;
	char alt[256];
	if (isq_name_hf_to_gguf(name, alt, sizeof(alt)) == 0) {
		key.name = alt;
		return bsearch(&key, im->entries, im->n, sizeof(key), entry_cmp);
	}
	return NULL;
}

struct isq_imatrix_entry *isq_imatrix_get_or_add(struct isq_imatrix *im, const char *name, int64_t n_per_row,
						 int64_t n_mat)
{
	struct isq_imatrix_entry *en = (struct isq_imatrix_entry *)isq_imatrix_find(im, name);
	if (en)
		return en->n_per_row == n_per_row && en->n_mat == n_mat ? en : NULL;
	if (n_per_row <= 0 || n_mat <= 0 || n_per_row > (1 << 30) || n_mat > (1 << 20))
		return NULL;
	struct isq_imatrix_entry *grown = realloc(im->entries, (im->n + 1) * sizeof(*grown));
	if (!grown)
		return NULL;
	im->entries = grown;
	struct isq_imatrix_entry ne = { isq_strdup(name), n_per_row, n_mat,
					calloc((size_t)(n_per_row * n_mat), sizeof(float)),
					calloc((size_t)n_mat, sizeof(float)) };
	if (!ne.name || !ne.sums || !ne.counts) {
		free(ne.name);
		free(ne.sums);
		free(ne.counts);
		return NULL;
	}
	/* insertion keeps the array sorted; imatrices have hundreds of entries, not millions */
	size_t pos = 0;
	while (pos < im->n && strcmp(im->entries[pos].name, name) < 0)
		pos++;
	memmove(&im->entries[pos + 1], &im->entries[pos], (im->n - pos) * sizeof(*grown));
	im->entries[pos] = ne;
	im->n++;
	return &im->entries[pos];
}

void isq_imatrix_importance(const struct isq_imatrix_entry *en, int64_t mat, float *out)
{
	float c = en->counts[mat];
	const float *s = en->sums + mat * en->n_per_row;
	for (int64_t j = 0; j < en->n_per_row; j++)
		out[j] = c > 0 ? s[j] / c : 1.0f;
}

static int add_dataset(struct isq_imatrix *im, const char *s, size_t len)
{
	char **d = realloc(im->datasets, (im->n_datasets + 1) * sizeof(*d));
	if (!d)
		return ISQ_ENOMEM;
	im->datasets = d;
	d[im->n_datasets] = malloc(len + 1);
	if (!d[im->n_datasets])
		return ISQ_ENOMEM;
	memcpy(d[im->n_datasets], s, len);
	d[im->n_datasets][len] = '\0';
	im->n_datasets++;
	return 0;
}

/* Canonical entry name: GGUF names stay; HF names (and cimatrix module keys) are mapped. */
static void canonical_name(const char *name, size_t len, char *out, size_t n)
{
	char tmp[512];
	snprintf(tmp, sizeof(tmp), "%.*s", (int)len, name);
	if (isq_name_hf_to_gguf(tmp, out, n) == 0)
		return;
	char with[520];
	snprintf(with, sizeof(with), "%s.weight", tmp);
	if (isq_name_hf_to_gguf(with, out, n) == 0)
		return;
	size_t l = strlen(tmp) < n ? strlen(tmp) : n - 1;
	memcpy(out, tmp, l);
	out[l] = '\0';
}

static int finite_nonneg(const float *v, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		if (!(v[i] >= 0.0f) || isinf(v[i]))
			return 0;
	return 1;
}

static int read_gguf(struct isq_imatrix *im, const void *data, uint64_t size)
{
	struct isq_gguf *g = isq_gguf_new();
	if (!g)
		return isq_errbuf_set(&im->err, ISQ_ENOMEM, NULL);
	int rc = isq_gguf_open_memory(g, data, size);
	if (rc) {
		rc = isq_errbuf_set(&im->err, rc, "%s", isq_errbuf_msg(&g->err));
		isq_gguf_free(g);
		return rc;
	}
	char *type = isq_gguf_get_str(g, "general.type");
	if (!type || strcmp(type, "imatrix")) {
		free(type);
		isq_gguf_free(g);
		return isq_errbuf_set(&im->err, ISQ_EFORMAT, "not an imatrix GGUF (general.type is not 'imatrix')");
	}
	free(type);
	uint64_t v;
	if (isq_gguf_get_u64(g, "imatrix.chunk_count", &v) == 0)
		im->chunk_count = (int64_t)v;
	if (isq_gguf_get_u64(g, "imatrix.chunk_size", &v) == 0)
		im->chunk_size = (int64_t)v;
	const struct isq_gguf_kv *ds = isq_gguf_find_kv(g, "imatrix.datasets");
	if (ds && ds->type == ISQ_GGUF_ARRAY && ds->arr_type == ISQ_GGUF_STRING) {
		struct isq_gguf_arr_iter it;
		const char *s;
		uint64_t len;
		isq_gguf_arr_iter_init(&it, ds);
		while (isq_gguf_arr_next_str(&it, &s, &len) == 0)
			if (add_dataset(im, s, (size_t)len)) {
				isq_gguf_free(g);
				return isq_errbuf_set(&im->err, ISQ_ENOMEM, NULL);
			}
	}
	rc = 0;
	for (size_t i = 0; i < g->n_tensors && rc == 0; i++) {
		const struct isq_gguf_tensor *t = &g->tensors[i];
		size_t nl = strlen(t->name);
		if (nl < 8 || strcmp(t->name + nl - 8, ".in_sum2"))
			continue;
		char base[256], cname[256];
		snprintf(base, sizeof(base), "%.*s", (int)(nl - 8), t->name);
		char cnt_name[272];
		snprintf(cnt_name, sizeof(cnt_name), "%s.counts", base);
		const struct isq_gguf_tensor *c = isq_gguf_find_tensor(g, cnt_name);
		if (!c) {
			rc = isq_errbuf_set(&im->err, ISQ_EFORMAT, "entry '%s' has no '%s' tensor", base, cnt_name);
			break;
		}
		if (t->type != ISQ_TYPE_F32 || c->type != ISQ_TYPE_F32) {
			rc = isq_errbuf_set(&im->err, ISQ_EFORMAT, "entry '%s': tensors must be f32", base);
			break;
		}
		int64_t n_per_row = t->ne[0], n_mat = t->ne[1] * t->ne[2] * t->ne[3];
		if ((int64_t)c->n_elements != n_mat) {
			rc = isq_errbuf_set(&im->err, ISQ_EFORMAT, "entry '%s': %lld counts for %lld matrices", base,
					    (long long)c->n_elements, (long long)n_mat);
			break;
		}
		canonical_name(base, strlen(base), cname, sizeof(cname));
		struct isq_imatrix_entry *en = isq_imatrix_get_or_add(im, cname, n_per_row, n_mat);
		if (!en) {
			rc = isq_errbuf_set(&im->err, ISQ_EFORMAT, "entry '%s': duplicate or bad geometry", base);
			break;
		}
		memcpy(en->sums, t->data, (size_t)(n_per_row * n_mat) * sizeof(float));
		memcpy(en->counts, c->data, (size_t)n_mat * sizeof(float));
		if (!finite_nonneg(en->sums, n_per_row * n_mat) || !finite_nonneg(en->counts, n_mat))
			rc = isq_errbuf_set(&im->err, ISQ_EFORMAT, "entry '%s': negative or non-finite values", base);
	}
	isq_gguf_free(g);
	if (rc == 0 && im->n == 0)
		rc = isq_errbuf_set(&im->err, ISQ_EFORMAT, "imatrix has no entries");
	return rc;
}

struct rd {
	const uint8_t *p;
	uint64_t left;
};

static int take(struct rd *r, void *dst, uint64_t n)
{
	if (n > r->left)
		return -1;
	if (dst)
		memcpy(dst, r->p, n);
	r->p += n;
	r->left -= n;
	return 0;
}

static int read_dat(struct isq_imatrix *im, const void *data, uint64_t size)
{
	struct rd r = { data, size };
	uint8_t b[8];
	if (take(&r, b, 4))
		return isq_errbuf_set(&im->err, ISQ_EFORMAT, "file too short for an imatrix");
	int32_t n = (int32_t)isq_le32(b);
	if (n <= 0 || (uint64_t)n > size / 16)
		return isq_errbuf_set(&im->err, ISQ_EFORMAT, "bad entry count %d", n);
	for (int32_t i = 0; i < n; i++) {
		if (take(&r, b, 4))
			return isq_errbuf_set(&im->err, ISQ_EFORMAT, "entry %d: truncated", i);
		int32_t len = (int32_t)isq_le32(b);
		if (len <= 0 || len > 1024 || (uint64_t)len > r.left)
			return isq_errbuf_set(&im->err, ISQ_EFORMAT, "entry %d: bad name length %d", i, len);
		const char *name = (const char *)r.p;
		take(&r, NULL, (uint64_t)len);
		if (take(&r, b, 8))
			return isq_errbuf_set(&im->err, ISQ_EFORMAT, "entry %d: truncated", i);
		int32_t ncall = (int32_t)isq_le32(b), nval = (int32_t)isq_le32(b + 4);
		if (nval <= 0 || (uint64_t)nval * 4 > r.left || ncall < 0)
			return isq_errbuf_set(&im->err, ISQ_EFORMAT, "entry '%.*s': bad value count %d", len, name, nval);
		char cname[256];
		canonical_name(name, (size_t)len, cname, sizeof(cname));
		struct isq_imatrix_entry *en = isq_imatrix_get_or_add(im, cname, nval, 1);
		if (!en)
			return isq_errbuf_set(&im->err, ISQ_EFORMAT, "entry '%.*s': duplicate", len, name);
		for (int32_t j = 0; j < nval; j++) {
			take(&r, b, 4);
			en->sums[j] = isq_f32_from_bits(isq_le32(b));
		}
		/* values are mean x ncall: keeping ncall as the count preserves the mean exactly */
		en->counts[0] = ncall > 0 ? (float)ncall : 1.0f;
		if (!finite_nonneg(en->sums, nval))
			return isq_errbuf_set(&im->err, ISQ_EFORMAT, "entry '%.*s': negative or non-finite values", len, name);
	}
	/* optional trailer: chunk count and dataset name */
	if (r.left >= 4) {
		take(&r, b, 4);
		im->chunk_count = (int32_t)isq_le32(b);
		if (r.left >= 4) {
			take(&r, b, 4);
			int32_t dl = (int32_t)isq_le32(b);
			if (dl > 0 && (uint64_t)dl <= r.left && add_dataset(im, (const char *)r.p, (size_t)dl))
				return isq_errbuf_set(&im->err, ISQ_ENOMEM, NULL);
		}
	}
	return 0;
}

static int read_cimatrix(struct isq_imatrix *im, const void *data, uint64_t size)
{
	struct rd r = { data, size };
	uint8_t b[8];
	if (take(&r, b, 8))
		return isq_errbuf_set(&im->err, ISQ_EFORMAT, "file too short for a cimatrix");
	uint64_t n = isq_le64(b);
	if (n == 0 || n > size / 16)
		return isq_errbuf_set(&im->err, ISQ_EFORMAT, "bad entry count %llu", (unsigned long long)n);
	for (uint64_t i = 0; i < n; i++) {
		if (take(&r, b, 8))
			return isq_errbuf_set(&im->err, ISQ_EFORMAT, "entry %llu: truncated", (unsigned long long)i);
		uint64_t len = isq_le64(b);
		if (len == 0 || len > 1024 || len > r.left)
			return isq_errbuf_set(&im->err, ISQ_EFORMAT, "entry %llu: bad key length", (unsigned long long)i);
		const char *key = (const char *)r.p;
		take(&r, NULL, len);
		if (take(&r, b, 8))
			return isq_errbuf_set(&im->err, ISQ_EFORMAT, "entry '%.*s': truncated", (int)len, key);
		uint64_t nval = isq_le64(b);
		if (nval == 0 || nval > (1u << 30) || nval * 4 > r.left)
			return isq_errbuf_set(&im->err, ISQ_EFORMAT, "entry '%.*s': bad value count", (int)len, key);
		char cname[256];
		canonical_name(key, (size_t)len, cname, sizeof(cname));
		struct isq_imatrix_entry *en = isq_imatrix_get_or_add(im, cname, (int64_t)nval, 1);
		if (!en)
			return isq_errbuf_set(&im->err, ISQ_EFORMAT, "entry '%.*s': duplicate", (int)len, key);
		for (uint64_t j = 0; j < nval; j++) {
			take(&r, b, 4);
			en->sums[j] = isq_f32_from_bits(isq_le32(b));
		}
		en->counts[0] = 1.0f;
		if (!finite_nonneg(en->sums, (int64_t)nval))
			return isq_errbuf_set(&im->err, ISQ_EFORMAT, "entry '%.*s': negative or non-finite values", (int)len, key);
	}
	return 0;
}

int isq_imatrix_read_memory(struct isq_imatrix *im, const void *data, uint64_t size, int is_cimatrix)
{
	if (size >= 4 && !memcmp(data, "GGUF", 4)) {
		im->format = ISQ_IMATRIX_GGUF;
		return read_gguf(im, data, size);
	}
	if (is_cimatrix) {
		im->format = ISQ_IMATRIX_CIMATRIX;
		return read_cimatrix(im, data, size);
	}
	im->format = ISQ_IMATRIX_DAT;
	return read_dat(im, data, size);
}

int isq_imatrix_read(struct isq_imatrix *im, const char *path)
{
	struct isq_map m;
	int rc = isq_map_open(&m, path, 0, &im->err);
	if (rc)
		return rc;
	rc = isq_imatrix_read_memory(im, m.data, m.size, has_ext(path, ".cimatrix"));
	isq_map_release(&m);
	if (rc)
		isq_errbuf_prefix(&im->err, "%s", strcmp(path, "-") ? path : "<stdin>");
	return rc;
}

/* ---- writing ------------------------------------------------------------------ */

static int64_t ncall_of(const struct isq_imatrix *im, const struct isq_imatrix_entry *en)
{
	float mx = 0;
	for (int64_t m = 0; m < en->n_mat; m++)
		mx = en->counts[m] > mx ? en->counts[m] : mx;
	int64_t cs = im->chunk_size > 0 ? im->chunk_size : 1;
	int64_t nc = (int64_t)ceil((double)mx / (double)cs);
	return nc > 0 ? nc : 1;
}

static int write_gguf(const struct isq_imatrix *im, struct isq_out *out, struct isq_errbuf *e)
{
	struct isq_gguf_writer *w = isq_gguf_writer_new();
	if (!w)
		return isq_errbuf_set(e, ISQ_ENOMEM, NULL);
	int rc = isq_gguf_set_str(w, "general.type", "imatrix");
	rc = rc ? rc : isq_gguf_set_arr_str(w, "imatrix.datasets", (const char *const *)im->datasets, im->n_datasets);
	rc = rc ? rc : isq_gguf_set_u32(w, "imatrix.chunk_count", (uint32_t)im->chunk_count);
	rc = rc ? rc : isq_gguf_set_u32(w, "imatrix.chunk_size", (uint32_t)im->chunk_size);
	for (size_t i = 0; i < im->n && rc == 0; i++) {
		const struct isq_imatrix_entry *en = &im->entries[i];
		char nm[300];
		snprintf(nm, sizeof(nm), "%s.in_sum2", en->name);
		int64_t ne[2] = { en->n_per_row, en->n_mat };
		rc = isq_gguf_writer_add_tensor(w, nm, ISQ_TYPE_F32, en->n_mat > 1 ? 2 : 1, ne);
		snprintf(nm, sizeof(nm), "%s.counts", en->name);
		int64_t ne2[2] = { 1, en->n_mat };
		rc = rc ? rc : isq_gguf_writer_add_tensor(w, nm, ISQ_TYPE_F32, en->n_mat > 1 ? 2 : 1, ne2);
	}
	rc = rc ? rc : isq_gguf_writer_begin(w, out);
	for (size_t i = 0; i < im->n && rc == 0; i++) {
		const struct isq_imatrix_entry *en = &im->entries[i];
		rc = isq_gguf_writer_write(w, en->sums, (size_t)(en->n_per_row * en->n_mat) * sizeof(float));
		rc = rc ? rc : isq_gguf_writer_write(w, en->counts, (size_t)en->n_mat * sizeof(float));
	}
	rc = rc ? rc : isq_gguf_writer_finish(w);
	if (rc)
		isq_errbuf_set(e, rc, "%s", isq_gguf_writer_errmsg(w));
	isq_gguf_writer_free(w);
	return rc;
}

static int put32(struct isq_out *o, uint32_t v)
{
	uint8_t b[4];
	isq_put_le32(b, v);
	return isq_out_write(o, b, 4);
}

static int put64(struct isq_out *o, uint64_t v)
{
	uint8_t b[8];
	isq_put_le64(b, v);
	return isq_out_write(o, b, 8);
}

/* mean x ncall per column, flattened over experts (the .dat and .cimatrix convention) */
static int put_scaled(struct isq_out *o, const struct isq_imatrix_entry *en, int64_t ncall, float *buf)
{
	int rc = 0;
	for (int64_t m = 0; m < en->n_mat && rc == 0; m++) {
		isq_imatrix_importance(en, m, buf);
		for (int64_t j = 0; j < en->n_per_row; j++) {
			uint8_t b[4];
			isq_put_le32(b, isq_f32_bits((float)((double)buf[j] * (double)ncall)));
			rc = isq_out_write(o, b, 4);
			if (rc)
				break;
		}
	}
	return rc;
}

static int write_dat(const struct isq_imatrix *im, struct isq_out *out, struct isq_errbuf *e)
{
	int rc = 0;
	size_t n_used = 0;
	int64_t maxrow = 1;
	for (size_t i = 0; i < im->n; i++) {
		const struct isq_imatrix_entry *en = &im->entries[i];
		float tot = 0;
		for (int64_t m = 0; m < en->n_mat; m++)
			tot += en->counts[m];
		if (tot > 0)
			n_used++;
		maxrow = ISQ_MAX(maxrow, en->n_per_row);
	}
	float *buf = malloc((size_t)maxrow * sizeof(float));
	if (!buf)
		return isq_errbuf_set(e, ISQ_ENOMEM, NULL);
	rc = put32(out, (uint32_t)n_used);
	for (size_t i = 0; i < im->n && rc == 0; i++) {
		const struct isq_imatrix_entry *en = &im->entries[i];
		float tot = 0;
		for (int64_t m = 0; m < en->n_mat; m++)
			tot += en->counts[m];
		if (tot <= 0)
			continue; /* llama.cpp skips entries that saw no data */
		int64_t ncall = ncall_of(im, en);
		rc = put32(out, (uint32_t)strlen(en->name));
		rc = rc ? rc : isq_out_write(out, en->name, strlen(en->name));
		rc = rc ? rc : put32(out, (uint32_t)ncall);
		rc = rc ? rc : put32(out, (uint32_t)(en->n_per_row * en->n_mat));
		rc = rc ? rc : put_scaled(out, en, ncall, buf);
	}
	rc = rc ? rc : put32(out, (uint32_t)im->chunk_count);
	const char *ds = im->n_datasets ? im->datasets[0] : "";
	rc = rc ? rc : put32(out, (uint32_t)strlen(ds));
	rc = rc ? rc : isq_out_write(out, ds, strlen(ds));
	free(buf);
	if (rc)
		isq_errbuf_set(e, rc, "%s", isq_errbuf_msg(&out->err));
	return rc;
}

struct keyed {
	char key[256];
	const struct isq_imatrix_entry *en;
};

static int keyed_cmp(const void *a, const void *b)
{
	return strcmp(((const struct keyed *)a)->key, ((const struct keyed *)b)->key);
}

static int write_cimatrix(const struct isq_imatrix *im, struct isq_out *out, struct isq_errbuf *e)
{
	struct keyed *k = calloc(im->n ? im->n : 1, sizeof(*k));
	int64_t maxrow = 1;
	if (!k)
		return isq_errbuf_set(e, ISQ_ENOMEM, NULL);
	for (size_t i = 0; i < im->n; i++) {
		const struct isq_imatrix_entry *en = &im->entries[i];
		char hf[256];
		/* mistral.rs keys are module paths: the HF weight name without ".weight" */
		if (isq_name_gguf_to_hf(en->name, hf, sizeof(hf)))
			snprintf(hf, sizeof(hf), "%s", en->name);
		size_t l = strlen(hf);
		if (l > 7 && !strcmp(hf + l - 7, ".weight"))
			hf[l - 7] = '\0';
		snprintf(k[i].key, sizeof(k[i].key), "%s", hf);
		k[i].en = en;
		maxrow = ISQ_MAX(maxrow, en->n_per_row);
	}
	qsort(k, im->n, sizeof(*k), keyed_cmp);
	float *buf = malloc((size_t)maxrow * sizeof(float));
	int rc = buf ? put64(out, im->n) : ISQ_ENOMEM;
	for (size_t i = 0; i < im->n && rc == 0; i++) {
		const struct isq_imatrix_entry *en = k[i].en;
		rc = put64(out, strlen(k[i].key));
		rc = rc ? rc : isq_out_write(out, k[i].key, strlen(k[i].key));
		rc = rc ? rc : put64(out, (uint64_t)(en->n_per_row * en->n_mat));
		rc = rc ? rc : put_scaled(out, en, ncall_of(im, en), buf);
	}
	free(buf);
	free(k);
	if (rc)
		isq_errbuf_set(e, rc, rc == ISQ_ENOMEM ? NULL : "%s", isq_errbuf_msg(&out->err));
	return rc;
}

int isq_imatrix_write(const struct isq_imatrix *im, enum isq_imatrix_format f, struct isq_out *out,
		      struct isq_errbuf *e)
{
	switch (f) {
	case ISQ_IMATRIX_GGUF: return write_gguf(im, out, e);
	case ISQ_IMATRIX_DAT: return write_dat(im, out, e);
	case ISQ_IMATRIX_CIMATRIX: return write_cimatrix(im, out, e);
	}
	return isq_errbuf_set(e, ISQ_EINVAL, "unknown imatrix format");
}

int isq_imatrix_merge(struct isq_imatrix *dst, const struct isq_imatrix *src)
{
	for (size_t i = 0; i < src->n; i++) {
		const struct isq_imatrix_entry *s = &src->entries[i];
		struct isq_imatrix_entry *d = isq_imatrix_get_or_add(dst, s->name, s->n_per_row, s->n_mat);
		if (!d)
			return isq_errbuf_set(&dst->err, ISQ_EINVAL, "entry '%s': geometry differs between the inputs",
					      s->name);
		for (int64_t j = 0; j < s->n_per_row * s->n_mat; j++)
			d->sums[j] += s->sums[j];
		for (int64_t m = 0; m < s->n_mat; m++)
			d->counts[m] += s->counts[m];
	}
	dst->chunk_count += src->chunk_count;
	if (!dst->chunk_size)
		dst->chunk_size = src->chunk_size;
	for (size_t i = 0; i < src->n_datasets; i++)
		if (add_dataset(dst, src->datasets[i], strlen(src->datasets[i])))
			return isq_errbuf_set(&dst->err, ISQ_ENOMEM, NULL);
	return 0;
}
