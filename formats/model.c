/* model.c - a container-independent list of a model's tensors. */
#include "model.h"
#include "types.h"

#include <libgen.h>

/* The map behind a model read from stdin or decompressed; lives as long as the model. */
struct model_priv {
	struct isq_map map;
};

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
	} else {
		char *copy = isq_strdup(path);
		if (!copy)
			return isq_errbuf_set(&m->err, ISQ_ENOMEM, NULL);
		isq_path_join(&cfg, dirname(copy), "config.json");
		free(copy);
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

int isq_model_open(struct isq_model *m, const char *path)
{
	memset(m, 0, sizeof(*m));
	m->path = isq_strdup(path);
	if (!m->path)
		return isq_errbuf_set(&m->err, ISQ_ENOMEM, NULL);

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
		free(p);
	}
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

void isq_model_drop(const struct isq_model *m, const struct isq_model_tensor *t, uint64_t off, uint64_t len)
{
	struct isq_map *map = NULL;
	uint64_t base = 0;
	if (m->priv) {
		/* a single file we mapped ourselves */
		map = &((struct model_priv *)m->priv)->map;
		base = (uint64_t)(t->data - map->data);
	} else if (m->st && m->st->shards) {
		const struct isq_st_tensor *st = &m->st->tensors[t - m->tensors];
		map = &m->st->shards[st->shard];
		base = st->file_offset;
	}
	if (map && off + len <= t->nbytes)
		isq_map_drop(map, base + off, len);
}
