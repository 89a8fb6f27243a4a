/* model.c - a container-independent list of a model's tensors. */
#include "model.h"
#include "tokenizer.h"
#include "types.h"

#include <archive.h>
#include <cJSON.h>
#include <errno.h>
#include <archive_entry.h>
#include <libgen.h>

/* Small files of an archive kept from the first pass. */
enum { AR_CONFIG, AR_TOKENIZER, AR_TOKCONFIG, AR_INDEX, AR_NFILES };
static const char *const ar_names[AR_NFILES] = { "config.json", "tokenizer.json", "tokenizer_config.json",
						   "model.safetensors.index.json" };

struct ar_shard {
	char *entry;         /* pathname inside the archive */
	uint8_t *header;     /* the first 8 + N bytes */
	uint64_t header_len, size;
};

/*
 * What a model keeps besides its container: the map of a single file, or
 * for an archive the state of the pass that reads tensor data.
 */
struct model_priv {
	struct isq_map map;
	struct archive *a;   /* second pass, opened on the first read */
	struct ar_shard *shards;
	int n_shards;
	int cur;             /* shard whose entry is open, -1 before the first */
	uint64_t pos;        /* bytes of that entry consumed */
	uint8_t skip[1 << 16]; /* bytes skipped over land here */
};

static void tokenizer_note(struct isq_model *m, int rc, const char *msg)
{
	m->tokenizer_rc = rc;
	snprintf(m->tokenizer_err, sizeof(m->tokenizer_err), "%s", msg);
	if (rc) {
		isq_tokenizer_free(m->tokenizer);
		m->tokenizer = NULL;
	}
}

/* tokenizer.json in DIR, if any; a broken one is remembered, not fatal: the weights are still good. */
static int load_tokenizer(struct isq_model *m, const char *dir)
{
	struct isq_buf p = ISQ_BUF_INIT;
	m->tokenizer_rc = ISQ_ENOTFOUND;
	if (isq_path_join(&p, dir, "tokenizer.json"))
		return isq_errbuf_set(&m->err, ISQ_ENOMEM, NULL);
	if (isq_path_exists(p.data)) {
		m->tokenizer = isq_tokenizer_new();
		if (!m->tokenizer) {
			isq_buf_release(&p);
			return isq_errbuf_set(&m->err, ISQ_ENOMEM, NULL);
		}
		int rc = isq_tokenizer_load_hf(m->tokenizer, dir);
		tokenizer_note(m, rc, rc ? isq_tokenizer_errmsg(m->tokenizer) : "");
	}
	isq_buf_release(&p);
	return 0;
}

static int fill_from_st(struct isq_model *m)
{
	struct isq_safetensors *st = m->st;
	m->tensors = calloc(st->n_tensors ? st->n_tensors : 1, sizeof(*m->tensors));
	if (!m->tensors)
		return isq_errbuf_set(&m->err, ISQ_ENOMEM, NULL);
	for (size_t i = 0; i < st->n_tensors; i++) {
		const struct isq_st_tensor *t = &st->tensors[i];
		struct isq_model_tensor *o = &m->tensors[i];
		o->name = t->name;
		o->type = isq_st_dtype_to_type(t->dtype);
		o->type_name = o->type != ISQ_TYPE_NONE ? isq_type_name(o->type) : isq_st_dtype_name(t->dtype);
		o->n_dims = t->n_dims;
		for (int d = 0; d < t->n_dims && d < ISQ_MODEL_MAX_DIMS; d++)
			o->shape[d] = t->shape[d];
		o->n_elements = t->n_elements;
		o->nbytes = t->nbytes;
		o->file_offset = t->file_offset;
		o->data = t->data;
	}
	m->n_tensors = st->n_tensors;
	return 0;
}

static int fill_from_gguf(struct isq_model *m)
{
	struct isq_gguf *g = m->gguf;
	m->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof(*m->tensors));
	if (!m->tensors)
		return isq_errbuf_set(&m->err, ISQ_ENOMEM, NULL);
	for (size_t i = 0; i < g->n_tensors; i++) {
		const struct isq_gguf_tensor *t = &g->tensors[i];
		struct isq_model_tensor *o = &m->tensors[i];
		o->name = t->name;
		o->type = (int)t->type;
		o->type_name = isq_type_name((enum isq_type)t->type);
		o->n_dims = t->n_dims;
		/* ggml's ne is innermost first; present it row-major like safetensors */
		for (int d = 0; d < t->n_dims; d++)
			o->shape[d] = t->ne[t->n_dims - 1 - d];
		o->n_elements = t->n_elements;
		o->nbytes = t->nbytes;
		o->file_offset = g->data_offset + t->offset;
		o->data = t->data;
	}
	m->n_tensors = g->n_tensors;
	m->version = g->version;
	char *arch = isq_gguf_get_str(g, "general.architecture");
	if (arch) {
		snprintf(m->arch, sizeof(m->arch), "%s", arch);
		free(arch);
	}
	return 0;
}

/* config.json beside a weights file or inside a model directory, if there is one. */
static int load_config(struct isq_model *m, const char *path, int is_dir)
{
	struct isq_buf cfg = ISQ_BUF_INIT;
	int rc = 0;
	if (is_dir) {
		isq_path_join(&cfg, path, "config.json");
		if ((rc = load_tokenizer(m, path)))
			return rc;
	} else {
		char *copy = isq_strdup(path);
		if (!copy)
			return isq_errbuf_set(&m->err, ISQ_ENOMEM, NULL);
		isq_path_join(&cfg, dirname(copy), "config.json");
		free(copy);
		copy = isq_strdup(path);
		rc = copy ? load_tokenizer(m, dirname(copy)) : isq_errbuf_set(&m->err, ISQ_ENOMEM, NULL);
		free(copy);
		if (rc)
			return rc;
	}
	m->config_rc = ISQ_ENOTFOUND;
	snprintf(m->config_err, sizeof(m->config_err), "no config.json beside the weights");
	if (cfg.data && isq_path_exists(cfg.data)) {
		rc = isq_config_load(cfg.data, &m->hp, &m->err);
		m->config_rc = rc;
		snprintf(m->config_err, sizeof(m->config_err), "%s", rc ? isq_errbuf_msg(&m->err) : "");
		if (rc == 0) {
			m->have_config = 1;
			if (m->hp.gguf_arch)
				snprintf(m->arch, sizeof(m->arch), "%s", m->hp.gguf_arch);
		} else if (rc == ISQ_EUNSUPPORTED) {
			/* an architecture we cannot convert is still worth listing: the tools decide */
			isq_errbuf_clear(&m->err);
			rc = 0;
		}
	}
	isq_buf_release(&cfg);
	return rc;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

int isq_model_is_archive(const char *path)
{
	static const char *const ext[] = { ".tar", ".tar.zst", ".tzst", ".tar.gz", ".tgz", ".tar.xz", ".zip" };
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(ext); i++)
		if (ends_with(path, ext[i]))
			return 1;
	return 0;
}

static struct archive *ar_open(const char *path, struct isq_errbuf *e)
{
	struct archive *a = archive_read_new();
	if (!a) {
		isq_errbuf_set(e, ISQ_ENOMEM, NULL);
		return NULL;
	}
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_zip(a);
	if (archive_read_open_filename(a, path, 1 << 20) != ARCHIVE_OK) {
		isq_errbuf_set(e, archive_errno(a) == ENOENT ? ISQ_ENOTFOUND : ISQ_EIO, "%s: %s", path,
			       archive_error_string(a) ? archive_error_string(a) : "cannot open");
		archive_read_free(a);
		return NULL;
	}
	return a;
}

/* Entry names without a leading "./", so "./m/config.json" and "m/config.json" agree. */
static const char *ar_name(struct archive_entry *en)
{
	const char *s = archive_entry_pathname(en);
	while (s && s[0] == '.' && s[1] == '/')
		s += 2;
	return s ? s : "";
}

static const char *base_of(const char *s)
{
	const char *b = strrchr(s, '/');
	return b ? b + 1 : s;
}

/* 1 if NAME lies directly in DIR ("" = the archive's top level). */
static int in_dir(const char *name, const char *dir)
{
	size_t n = strlen(dir);
	return !strncmp(name, dir, n) && !strchr(name + n, '/');
}

/* Read up to n bytes of the current entry; returns what arrived (short only at its end), or -1. */
static int64_t ar_read(struct archive *a, void *dst, uint64_t n)
{
	uint64_t got = 0;
	while (got < n) {
		la_ssize_t k = archive_read_data(a, (char *)dst + got, (size_t)ISQ_MIN(n - got, (uint64_t)1 << 30));
		if (k < 0)
			return -1;
		if (k == 0)
			break;
		got += (uint64_t)k;
	}
	return (int64_t)got;
}

struct ar_scan {
	struct isq_buf files[AR_NFILES];
	char *file_names[AR_NFILES];
	struct ar_shard *sh;
	int n_sh;
};

/* Messages of the first pass name the archive; those of isq_model_read do not (the caller names the model). */
static int ar_fail(struct isq_model *m, struct archive *a, const char *what)
{
	const char *msg = archive_error_string(a);
	return isq_errbuf_set(&m->err, ISQ_EFORMAT, "%s%s%s%s%s", m->streamed == 1 ? m->path : "",
			      m->streamed == 1 ? ": " : "", what, msg ? ": " : "", msg ? msg : "");
}

/* First pass: keep the small files and each shard's header, skip the tensor data. */
static int ar_scan(struct isq_model *m, struct ar_scan *sc)
{
	struct archive *a = ar_open(m->path, &m->err);
	if (!a)
		return m->err.code;
	struct archive_entry *en;
	int rc = 0, r;
	while (!rc && (r = archive_read_next_header(a, &en)) == ARCHIVE_OK) {
		if (archive_entry_filetype(en) != AE_IFREG)
			continue;
		const char *name = ar_name(en), *base = base_of(name);
		int64_t size = archive_entry_size_is_set(en) ? archive_entry_size(en) : -1;
		if (ends_with(base, ".safetensors")) {
			struct ar_shard *g = realloc(sc->sh, (size_t)(sc->n_sh + 1) * sizeof(*g));
			if (!g) {
				rc = isq_errbuf_set(&m->err, ISQ_ENOMEM, NULL);
				break;
			}
			sc->sh = g;
			struct ar_shard *s = &g[sc->n_sh++];
			memset(s, 0, sizeof(*s));
			s->entry = isq_strdup(name);
			uint8_t len8[8];
			if (size < 8 || ar_read(a, len8, 8) != 8) {
				rc = size < 0 ? isq_errbuf_set(&m->err, ISQ_EUNSUPPORTED,
							       "%s: %s: the archive does not record its size", m->path, name)
					      : isq_errbuf_set(&m->err, ISQ_EFORMAT, "%s: %s: too short for a safetensors header",
							       m->path, name);
				break;
			}
			uint64_t n = isq_le64(len8);
			if (n > ISQ_ST_MAX_HEADER || n > (uint64_t)size - 8) {
				rc = isq_errbuf_set(&m->err, ISQ_EFORMAT, "%s: %s: header length %llu exceeds the file size %lld",
						    m->path, name, (unsigned long long)n, (long long)size);
				break;
			}
			s->size = (uint64_t)size;
			s->header_len = 8 + n;
			s->header = malloc((size_t)s->header_len);
			if (!s->entry || !s->header) {
				rc = isq_errbuf_set(&m->err, ISQ_ENOMEM, NULL);
				break;
			}
			memcpy(s->header, len8, 8);
			if (ar_read(a, s->header + 8, n) != (int64_t)n)
				rc = ar_fail(m, a, name);
			continue;
		}
		for (int f = 0; f < AR_NFILES; f++) {
			if (strcmp(base, ar_names[f]) || sc->file_names[f])
				continue;
			/* the small files: read whole (tokenizer.json runs to a few MB) */
			sc->file_names[f] = isq_strdup(name);
			char buf[1 << 16];
			int64_t k;
			while ((k = ar_read(a, buf, sizeof(buf))) > 0)
				if (isq_buf_append(&sc->files[f], buf, (size_t)k))
					return archive_read_free(a), isq_errbuf_set(&m->err, ISQ_ENOMEM, NULL);
			if (k < 0)
				rc = ar_fail(m, a, name);
		}
	}
	if (!rc && r != ARCHIVE_EOF)
		rc = ar_fail(m, a, "corrupt archive");
	archive_read_free(a);
	return rc;
}

/* The safetensors shards of the model directory, in archive order, and the model's own files. */
static int ar_build(struct isq_model *m, struct ar_scan *sc, struct model_priv *p)
{
	/* the model directory: config.json's, else the first shard's */
	const char *anchor = sc->file_names[AR_CONFIG] ? sc->file_names[AR_CONFIG] : sc->n_sh ? sc->sh[0].entry : NULL;
	if (!anchor)
		return isq_errbuf_set(&m->err, ISQ_ENOTFOUND, "%s: no safetensors file in this archive", m->path);
	char dir[1024];
	snprintf(dir, sizeof(dir), "%.*s", (int)(base_of(anchor) - anchor), anchor);
	for (int f = 0; f < AR_NFILES; f++)
		if (sc->file_names[f] && !in_dir(sc->file_names[f], dir)) {
			isq_buf_release(&sc->files[f]);
			free(sc->file_names[f]);
			sc->file_names[f] = NULL;
		}
	/* which shards: the index's files, else the one safetensors file, as for a directory */
	cJSON *index = NULL;
	if (sc->file_names[AR_INDEX]) {
		index = cJSON_ParseWithLength(sc->files[AR_INDEX].data, sc->files[AR_INDEX].len);
		if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(index, "weight_map"))) {
			cJSON_Delete(index);
			return isq_errbuf_set(&m->err, ISQ_EFORMAT, "%s: %s: not a safetensors index (no weight_map object)",
					      m->path, sc->file_names[AR_INDEX]);
		}
	}
	const cJSON *wm = index ? cJSON_GetObjectItemCaseSensitive(index, "weight_map") : NULL;
	int rc = 0, kept = 0, have_main = 0;
	for (int i = 0; i < sc->n_sh; i++)
		have_main |= in_dir(sc->sh[i].entry, dir) && !strcmp(base_of(sc->sh[i].entry), "model.safetensors");
	for (int i = 0; i < sc->n_sh; i++) {
		int use = in_dir(sc->sh[i].entry, dir);
		if (use && wm) {
			use = 0;
			for (const cJSON *c = wm->child; c && !use; c = c->next)
				use = cJSON_IsString(c) && !strcmp(c->valuestring, base_of(sc->sh[i].entry));
		} else if (use && have_main) {
			use = !strcmp(base_of(sc->sh[i].entry), "model.safetensors");
		}
		if (use)
			sc->sh[kept++] = sc->sh[i];
		else {
			free(sc->sh[i].entry);
			free(sc->sh[i].header);
		}
	}
	sc->n_sh = kept;
	if (!wm && kept != 1)
		rc = isq_errbuf_set(&m->err, ISQ_ENOTFOUND,
				    kept ? "%s: %d safetensors files and no model.safetensors.index.json"
					 : "%s: no safetensors file in the model directory",
				    m->path, kept);
	struct isq_st_header *h = calloc((size_t)kept + 1, sizeof(*h));
	if (!rc && !h)
		rc = isq_errbuf_set(&m->err, ISQ_ENOMEM, NULL);
	for (int i = 0; !rc && i < kept; i++)
		h[i] = (struct isq_st_header){ sc->sh[i].entry, sc->sh[i].header, sc->sh[i].header_len, sc->sh[i].size };
	if (!rc) {
		m->st = isq_st_new();
		if (!m->st)
			rc = isq_errbuf_set(&m->err, ISQ_ENOMEM, NULL);
		else if ((rc = isq_st_open_headers(m->st, kept, h))) {
			m->err = m->st->err;
			isq_errbuf_prefix(&m->err, "%s", m->path);
		}
	}
	free(h);
	/* every tensor the index names must be in the archive */
	for (const cJSON *c = wm ? wm->child : NULL; c && !rc; c = c->next)
		if (!isq_st_find(m->st, c->string))
			rc = isq_errbuf_set(&m->err, ISQ_EFORMAT, "%s: tensor '%s' of the index is in no shard of the archive",
					    m->path, c->string);
	cJSON_Delete(index);
	p->shards = sc->sh;
	p->n_shards = sc->n_sh;
	sc->sh = NULL;
	sc->n_sh = 0;
	if (rc)
		return rc;
	if ((rc = fill_from_st(m)))
		return rc;

	m->config_rc = ISQ_ENOTFOUND;
	snprintf(m->config_err, sizeof(m->config_err), "no config.json beside the weights");
	if (sc->file_names[AR_CONFIG]) {
		rc = isq_config_parse(sc->files[AR_CONFIG].data, sc->files[AR_CONFIG].len, &m->hp, &m->err);
		if (rc)
			isq_errbuf_prefix(&m->err, "%s", m->path);
		m->config_rc = rc;
		snprintf(m->config_err, sizeof(m->config_err), "%s", rc ? isq_errbuf_msg(&m->err) : "");
		if (rc == 0) {
			m->have_config = 1;
			if (m->hp.gguf_arch)
				snprintf(m->arch, sizeof(m->arch), "%s", m->hp.gguf_arch);
		} else if (rc == ISQ_EUNSUPPORTED) {
			isq_errbuf_clear(&m->err);
			rc = 0;
		}
	}
	if (!rc && sc->file_names[AR_TOKENIZER]) {
		m->tokenizer = isq_tokenizer_new();
		if (!m->tokenizer)
			return isq_errbuf_set(&m->err, ISQ_ENOMEM, NULL);
		const struct isq_buf *tc = &sc->files[AR_TOKCONFIG];
		int t = isq_tokenizer_load_hf_memory(m->tokenizer, sc->files[AR_TOKENIZER].data, sc->files[AR_TOKENIZER].len,
						     sc->file_names[AR_TOKCONFIG] ? tc->data : NULL, tc->len);
		tokenizer_note(m, t, t ? isq_tokenizer_errmsg(m->tokenizer) : "");
	}
	return rc;
}

static int open_archive(struct isq_model *m)
{
	struct model_priv *p = calloc(1, sizeof(*p));
	if (!p)
		return isq_errbuf_set(&m->err, ISQ_ENOMEM, NULL);
	p->cur = -1;
	m->priv = p;
	m->format = ISQ_MODEL_SAFETENSORS;
	m->streamed = 1;
	struct ar_scan sc;
	memset(&sc, 0, sizeof(sc));
	int rc = ar_scan(m, &sc);
	if (!rc)
		rc = ar_build(m, &sc, p);
	for (int f = 0; f < AR_NFILES; f++) {
		isq_buf_release(&sc.files[f]);
		free(sc.file_names[f]);
	}
	for (int i = 0; i < sc.n_sh; i++) {
		free(sc.sh[i].entry);
		free(sc.sh[i].header);
	}
	free(sc.sh);
	return rc;
}

int isq_model_read(struct isq_model *m, const struct isq_model_tensor *t, uint64_t off, void *dst, size_t n)
{
	if (off > t->nbytes || n > t->nbytes - off)
		return isq_errbuf_set(&m->err, ISQ_EINVAL, "tensor '%s': read past its end", t->name);
	if (!m->streamed) {
		memcpy(dst, t->data + off, n);
		return 0;
	}
	struct model_priv *p = m->priv;
	const struct isq_st_tensor *st = &m->st->tensors[t - m->tensors];
	uint64_t want = st->file_offset + off;
	if (st->shard < p->cur || (st->shard == p->cur && want < p->pos))
		return isq_errbuf_set(&m->err, ISQ_EINVAL, "tensor '%s' is read out of order (an archive is read once)",
				      t->name);
	m->streamed = 2; /* the second pass */
	if (!p->a && !(p->a = ar_open(m->path, &m->err)))
		return m->err.code;
	while (p->cur != st->shard) {
		struct archive_entry *en;
		int r = archive_read_next_header(p->a, &en);
		if (r == ARCHIVE_EOF)
			return isq_errbuf_set(&m->err, ISQ_EFORMAT, "%s: gone on the second read", p->shards[st->shard].entry);
		if (r != ARCHIVE_OK)
			return ar_fail(m, p->a, "corrupt archive");
		if (archive_entry_filetype(en) == AE_IFREG && !strcmp(ar_name(en), p->shards[st->shard].entry)) {
			p->cur = st->shard;
			p->pos = 0;
		}
	}
	while (p->pos < want) {
		int64_t k = ar_read(p->a, p->skip, ISQ_MIN(want - p->pos, (uint64_t)sizeof(p->skip)));
		if (k <= 0)
			return k < 0 ? ar_fail(m, p->a, p->shards[p->cur].entry)
				     : isq_errbuf_set(&m->err, ISQ_EFORMAT, "%s: truncated", p->shards[p->cur].entry);
		p->pos += (uint64_t)k;
	}
	int64_t k = ar_read(p->a, dst, n);
	if (k < 0)
		return ar_fail(m, p->a, p->shards[p->cur].entry);
	if ((uint64_t)k != n)
		return isq_errbuf_set(&m->err, ISQ_EFORMAT, "%s: truncated in tensor '%s'", p->shards[p->cur].entry,
				      t->name);
	p->pos += n;
	return 0;
}

int isq_model_open_stream(struct isq_model *m, const char *path)
{
	if (!isq_model_is_archive(path) || isq_is_dir(path))
		return isq_model_open(m, path);
	memset(m, 0, sizeof(*m));
	m->tokenizer_rc = ISQ_ENOTFOUND;
	m->path = isq_strdup(path);
	if (!m->path)
		return isq_errbuf_set(&m->err, ISQ_ENOMEM, NULL);
	return open_archive(m);
}

int isq_model_open(struct isq_model *m, const char *path)
{
	memset(m, 0, sizeof(*m));
	m->tokenizer_rc = ISQ_ENOTFOUND;
	m->path = isq_strdup(path);
	if (!m->path)
		return isq_errbuf_set(&m->err, ISQ_ENOMEM, NULL);
	if (isq_model_is_archive(path) && !isq_is_dir(path))
		return isq_errbuf_set(&m->err, ISQ_EUNSUPPORTED, "%s: archive input is read by isq-quantize's GGUF conversion only", path);

	int rc;
	if (isq_is_dir(path) || ends_with(path, ".json")) {
		m->format = ISQ_MODEL_SAFETENSORS;
		m->st = isq_st_new();
		if (!m->st)
			return isq_errbuf_set(&m->err, ISQ_ENOMEM, NULL);
		rc = isq_st_open(m->st, path);
		if (rc) {
			m->err = m->st->err;
			return rc;
		}
		rc = fill_from_st(m);
		if (rc == 0)
			rc = load_config(m, path, isq_is_dir(path));
		return rc;
	}

	struct model_priv *p = calloc(1, sizeof(*p));
	if (!p)
		return isq_errbuf_set(&m->err, ISQ_ENOMEM, NULL);
	/* tensors point into this map: keep it until release (stored after the tensors) */
	rc = isq_map_open(&p->map, path, 0, &m->err);
	if (rc) {
		free(p);
		return rc;
	}
	const char *shown = strcmp(path, "-") ? path : "<stdin>";
	if (p->map.size >= 4 && !memcmp(p->map.data, "GGUF", 4)) {
		m->format = ISQ_MODEL_GGUF;
		m->gguf = isq_gguf_new();
		if (!m->gguf)
			rc = isq_errbuf_set(&m->err, ISQ_ENOMEM, NULL);
		else if ((rc = isq_gguf_open_memory(m->gguf, p->map.data, p->map.size))) {
			m->err = m->gguf->err;
			isq_errbuf_prefix(&m->err, "%s", shown);
		} else {
			rc = fill_from_gguf(m);
		}
	} else {
		m->format = ISQ_MODEL_SAFETENSORS;
		m->st = isq_st_new();
		if (!m->st)
			rc = isq_errbuf_set(&m->err, ISQ_ENOMEM, NULL);
		else if ((rc = isq_st_open_memory(m->st, p->map.data, p->map.size))) {
			m->err = m->st->err;
			isq_errbuf_prefix(&m->err, "%s", shown);
		} else {
			rc = fill_from_st(m);
			if (rc == 0 && strcmp(path, "-"))
				rc = load_config(m, path, 0);
		}
	}
	/* stash the map where release can find it */
	m->priv = p;
	return rc;
}

void isq_model_release(struct isq_model *m)
{
	isq_st_free(m->st);
	isq_gguf_free(m->gguf);
	struct model_priv *p = m->priv;
	if (p) {
		isq_map_release(&p->map);
		if (p->a)
			archive_read_free(p->a);
		for (int i = 0; i < p->n_shards; i++) {
			free(p->shards[i].entry);
			free(p->shards[i].header);
		}
		free(p->shards);
		free(p);
	}
	isq_tokenizer_free(m->tokenizer);
	free(m->tensors);
	free(m->path);
	memset(m, 0, sizeof(*m));
}

uint64_t isq_model_parameters(const struct isq_model *m)
{
	uint64_t n = 0;
	for (size_t i = 0; i < m->n_tensors; i++)
		n += m->tensors[i].n_elements;
	return n;
}

uint64_t isq_model_bytes(const struct isq_model *m)
{
	uint64_t n = 0;
	for (size_t i = 0; i < m->n_tensors; i++)
		n += m->tensors[i].nbytes;
	return n;
}

const struct isq_model_tensor *isq_model_find(const struct isq_model *m, const char *name)
{
	/* the containers hash their names; tensors[] is index-aligned with theirs */
	if (m->st) {
		const struct isq_st_tensor *t = isq_st_find(m->st, name);
		return t ? &m->tensors[t - m->st->tensors] : NULL;
	}
	if (m->gguf) {
		const struct isq_gguf_tensor *t = isq_gguf_find_tensor(m->gguf, name);
		return t ? &m->tensors[t - m->gguf->tensors] : NULL;
	}
	return NULL;
}

/* The map holding t's bytes and their offset in it; NULL for streamed inputs. */
static struct isq_map *tensor_map(const struct isq_model *m, const struct isq_model_tensor *t, uint64_t *at)
{
	struct isq_map *map = NULL;
	uint64_t base = 0;
	if (m->streamed)
		return NULL;
	if (m->priv) {
		/* a single file we mapped ourselves */
		map = &((struct model_priv *)m->priv)->map;
		base = (uint64_t)(t->data - map->data);
	} else if (m->st && m->st->shards) {
		const struct isq_st_tensor *st = &m->st->tensors[t - m->tensors];
		map = &m->st->shards[st->shard];
		base = st->file_offset;
	}
	*at = base;
	return map;
}

void isq_model_drop(const struct isq_model *m, const struct isq_model_tensor *t, uint64_t off, uint64_t len)
{
	uint64_t base = 0;
	struct isq_map *map = tensor_map(m, t, &base);
	if (map && off + len <= t->nbytes)
		isq_map_drop(map, base + off, len);
}

int isq_model_mapped(const struct isq_model *m, const struct isq_model_tensor *t)
{
	uint64_t base;
	struct isq_map *map = tensor_map(m, t, &base);
	return map && map->mmap_base;
}
