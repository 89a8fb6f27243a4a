/* isq-inspect - what is inside a model file: containers, tensors, statistics. */
#include "model.h"
#include "stats.h"
#include "tool.h"
#include "types.h"
#include "uqff.h"

#include <cJSON.h>
#include <dirent.h>
#include <math.h>

static const char *opt_model;
static const char *opt_tensor;
static int opt_json, opt_stats, opt_metadata, opt_quiet, opt_verbose;
static int64_t opt_threads;

static const struct isq_opt options[] = {
	ISQ_OPT_STRING('m', "model", &opt_model, "MODEL", "the model (also the positional argument)"),
	ISQ_OPT_FLAG(0, "json", &opt_json, "one JSON document on stdout instead of the table"),
	ISQ_OPT_FLAG(0, "stats", &opt_stats, "per-tensor min/max/mean/std/absmax, NaN/Inf, beyond 6 sigma"),
	ISQ_OPT_FLAG(0, "metadata", &opt_metadata, "print the file's metadata (GGUF keys, __metadata__)"),
	ISQ_OPT_STRING(0, "tensor", &opt_tensor, "NAME", "show only this tensor"),
	ISQ_OPT_INT(0, "threads", &opt_threads, "N", "worker threads for --stats (default: all cores)"),
	ISQ_OPT_COUNT('q', "quiet", &opt_quiet, "print less on stderr"),
	ISQ_OPT_COUNT('v', "verbose", &opt_verbose, "print more on stderr"),
	ISQ_OPT_END(),
};

static const char *const usage[] = { "[options] MODEL|-", NULL };

static const struct isq_cmd cmd = {
	.name = "isq-inspect",
	.usage = usage,
	.summary = "List what a model holds: a safetensors file, a Hugging Face model directory (single or\n"
		   "sharded), a GGUF file (\"-\" reads it from standard input) or a UQFF directory or shard.",
	.opts = options,
};

struct row_stats {
	int have;
	struct isq_stats s;
};

static void shape_str(const struct isq_model_tensor *t, char *buf, size_t n)
{
	size_t off = 0;
	off += (size_t)snprintf(buf + off, n - off, "[");
	for (int d = 0; d < t->n_dims && off < n; d++)
		off += (size_t)snprintf(buf + off, n - off, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
	if (off < n)
		snprintf(buf + off, n - off, "]");
}

static double tensor_bpw(const struct isq_model_tensor *t)
{
	return t->n_elements ? 8.0 * (double)t->nbytes / (double)t->n_elements : 0.0;
}

/* ---- metadata -------------------------------------------------------------- */

static cJSON *gguf_value_json(const struct isq_gguf_kv *kv)
{
	switch (kv->type) {
	case ISQ_GGUF_STRING:
		return cJSON_CreateString(""); /* replaced by the caller, which has the bytes */
	case ISQ_GGUF_BOOL:
		return cJSON_CreateBool(kv->v.u64 != 0);
	case ISQ_GGUF_F32:
	case ISQ_GGUF_F64:
		return cJSON_CreateNumber(kv->v.f64);
	case ISQ_GGUF_I8:
	case ISQ_GGUF_I16:
	case ISQ_GGUF_I32:
	case ISQ_GGUF_I64:
		return cJSON_CreateNumber((double)kv->v.i64);
	default:
		return cJSON_CreateNumber((double)kv->v.u64);
	}
}

static char *strndup_view(const char *s, uint64_t len)
{
	char *p = malloc(len + 1);
	if (p) {
		memcpy(p, s, len);
		p[len] = '\0';
	}
	return p;
}

static cJSON *gguf_kv_json(const struct isq_gguf_kv *kv)
{
	if (kv->type == ISQ_GGUF_STRING) {
		char *s = strndup_view(kv->str.data, kv->str.len);
		cJSON *j = cJSON_CreateString(s ? s : "");
		free(s);
		return j;
	}
	if (kv->type != ISQ_GGUF_ARRAY)
		return gguf_value_json(kv);
	cJSON *arr = cJSON_CreateArray();
	if (kv->arr_type == ISQ_GGUF_STRING) {
		struct isq_gguf_arr_iter it;
		const char *s;
		uint64_t len;
		isq_gguf_arr_iter_init(&it, kv);
		while (isq_gguf_arr_next_str(&it, &s, &len) == 0) {
			char *c = strndup_view(s, len);
			cJSON_AddItemToArray(arr, cJSON_CreateString(c ? c : ""));
			free(c);
		}
	} else {
		for (uint64_t i = 0; i < kv->arr_n; i++) {
			double v;
			if (isq_gguf_arr_num(kv, i, &v))
				break;
			if (kv->arr_type == ISQ_GGUF_BOOL)
				cJSON_AddItemToArray(arr, cJSON_CreateBool(v != 0));
			else
				cJSON_AddItemToArray(arr, cJSON_CreateNumber(v));
		}
	}
	return arr;
}

/* A one-line rendering of a GGUF value for the table: arrays show their first elements. */
static void gguf_kv_text(const struct isq_gguf_kv *kv, struct isq_buf *b)
{
	if (kv->type == ISQ_GGUF_STRING) {
		isq_buf_printf(b, "\"%.*s\"", (int)ISQ_MIN(kv->str.len, 200), kv->str.data);
		if (kv->str.len > 200)
			isq_buf_puts(b, "...");
		return;
	}
	if (kv->type == ISQ_GGUF_ARRAY) {
		isq_buf_printf(b, "[%s x %llu]", isq_gguf_vtype_name(kv->arr_type), (unsigned long long)kv->arr_n);
		uint64_t show = ISQ_MIN(kv->arr_n, (uint64_t)6);
		if (kv->arr_type == ISQ_GGUF_STRING) {
			struct isq_gguf_arr_iter it;
			const char *s;
			uint64_t len;
			isq_gguf_arr_iter_init(&it, kv);
			for (uint64_t i = 0; i < show && isq_gguf_arr_next_str(&it, &s, &len) == 0; i++)
				isq_buf_printf(b, "%s\"%.*s\"", i ? ", " : " ", (int)ISQ_MIN(len, 40), s);
		} else {
			for (uint64_t i = 0; i < show; i++) {
				double v;
				if (isq_gguf_arr_num(kv, i, &v))
					break;
				isq_buf_printf(b, "%s%.9g", i ? ", " : " ", v);
			}
		}
		if (kv->arr_n > show)
			isq_buf_puts(b, ", ...");
		return;
	}
	switch (kv->type) {
	case ISQ_GGUF_BOOL:
		isq_buf_puts(b, kv->v.u64 ? "true" : "false");
		break;
	case ISQ_GGUF_F32:
	case ISQ_GGUF_F64:
		isq_buf_printf(b, "%.9g", kv->v.f64);
		break;
	case ISQ_GGUF_I8:
	case ISQ_GGUF_I16:
	case ISQ_GGUF_I32:
	case ISQ_GGUF_I64:
		isq_buf_printf(b, "%lld", (long long)kv->v.i64);
		break;
	default:
		isq_buf_printf(b, "%llu", (unsigned long long)kv->v.u64);
	}
}

/* ---- output ------------------------------------------------------------------- */

static cJSON *stats_json(const struct isq_stats *s)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "min", s->min);
	cJSON_AddNumberToObject(o, "max", s->max);
	cJSON_AddNumberToObject(o, "mean", s->mean);
	cJSON_AddNumberToObject(o, "std", s->std);
	cJSON_AddNumberToObject(o, "absmax", s->absmax);
	cJSON_AddNumberToObject(o, "nan", (double)s->n_nan);
	cJSON_AddNumberToObject(o, "inf", (double)s->n_inf);
	cJSON_AddNumberToObject(o, "frac_beyond_6sigma", s->frac_6sigma);
	return o;
}

static cJSON *config_json(const struct isq_hparams *hp)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "model_type", hp->model_type);
	cJSON_AddNumberToObject(o, "vocab_size", (double)hp->vocab_size);
	cJSON_AddNumberToObject(o, "hidden_size", (double)hp->hidden_size);
	cJSON_AddNumberToObject(o, "intermediate_size", (double)hp->intermediate_size);
	cJSON_AddNumberToObject(o, "num_hidden_layers", (double)hp->n_layers);
	cJSON_AddNumberToObject(o, "num_attention_heads", (double)hp->n_heads);
	cJSON_AddNumberToObject(o, "num_key_value_heads", (double)hp->n_kv_heads);
	cJSON_AddNumberToObject(o, "head_dim", (double)hp->head_dim);
	cJSON_AddNumberToObject(o, "max_position_embeddings", (double)hp->max_position_embeddings);
	cJSON_AddBoolToObject(o, "tie_word_embeddings", hp->tie_word_embeddings);
	if (hp->n_experts)
		cJSON_AddNumberToObject(o, "num_experts", (double)hp->n_experts);
	return o;
}

static void print_json(const struct isq_model *m, const struct isq_model_tensor *only, const struct row_stats *st)
{
	cJSON *root = cJSON_CreateObject();
	uint64_t params = isq_model_parameters(m), bytes = isq_model_bytes(m);
	cJSON_AddStringToObject(root, "path", m->path);
	cJSON_AddStringToObject(root, "format", m->format == ISQ_MODEL_GGUF ? "gguf" : "safetensors");
	if (m->format == ISQ_MODEL_GGUF)
		cJSON_AddNumberToObject(root, "version", m->version);
	if (m->arch[0])
		cJSON_AddStringToObject(root, "architecture", m->arch);
	else
		cJSON_AddNullToObject(root, "architecture");
	cJSON_AddNumberToObject(root, "tensor_count", (double)m->n_tensors);
	cJSON_AddNumberToObject(root, "parameters", (double)params);
	cJSON_AddNumberToObject(root, "bytes", (double)bytes);
	cJSON_AddNumberToObject(root, "bits_per_weight", params ? 8.0 * (double)bytes / (double)params : 0.0);
	if (m->have_config)
		cJSON_AddItemToObject(root, "config", config_json(&m->hp));
	if (opt_metadata) {
		cJSON *md = cJSON_CreateObject();
		if (m->gguf)
			for (size_t i = 0; i < m->gguf->n_kv; i++)
				cJSON_AddItemToObject(md, m->gguf->kv[i].key, gguf_kv_json(&m->gguf->kv[i]));
		if (m->st)
			for (size_t i = 0; i < m->st->n_metadata; i++)
				cJSON_AddStringToObject(md, m->st->metadata[i].key, m->st->metadata[i].value);
		cJSON_AddItemToObject(root, "metadata", md);
	}
	cJSON *arr = cJSON_AddArrayToObject(root, "tensors");
	for (size_t i = 0; i < m->n_tensors; i++) {
		const struct isq_model_tensor *t = &m->tensors[i];
		if (only && t != only)
			continue;
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", t->name);
		cJSON_AddStringToObject(o, "type", t->type_name);
		if (m->st)
			cJSON_AddStringToObject(o, "dtype", isq_st_dtype_name(m->st->tensors[i].dtype));
		cJSON *shape = cJSON_AddArrayToObject(o, "shape");
		for (int d = 0; d < t->n_dims; d++)
			cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
		cJSON_AddNumberToObject(o, "elements", (double)t->n_elements);
		cJSON_AddNumberToObject(o, "bytes", (double)t->nbytes);
		cJSON_AddNumberToObject(o, "offset", (double)t->file_offset);
		cJSON_AddNumberToObject(o, "bpw", tensor_bpw(t));
		if (st && st[i].have)
			cJSON_AddItemToObject(o, "stats", stats_json(&st[i].s));
		else if (st)
			cJSON_AddNullToObject(o, "stats");
		cJSON_AddItemToArray(arr, o);
	}
	char *text = cJSON_PrintUnformatted(root);
	if (text) {
		fputs(text, stdout);
		fputc('\n', stdout);
	}
	free(text);
	cJSON_Delete(root);
}

static void print_text(const struct isq_model *m, const struct isq_model_tensor *only, const struct row_stats *st)
{
	uint64_t params = isq_model_parameters(m), bytes = isq_model_bytes(m);
	if (m->format == ISQ_MODEL_GGUF)
		printf("format:        gguf v%u\n", m->version);
	else
		printf("format:        safetensors%s\n", m->st && m->st->n_shards > 1 ? " (sharded)" : "");
	if (m->st && m->st->n_shards > 1)
		printf("shards:        %d\n", m->st->n_shards);
	printf("architecture:  %s\n", m->arch[0] ? m->arch : "(none)");
	if (m->have_config)
		printf("config:        %s, %lld layers, hidden %lld, ffn %lld, heads %lld/%lld, vocab %lld%s\n",
		       m->hp.model_type, (long long)m->hp.n_layers, (long long)m->hp.hidden_size,
		       (long long)m->hp.intermediate_size, (long long)m->hp.n_heads, (long long)m->hp.n_kv_heads,
		       (long long)m->hp.vocab_size, m->hp.tie_word_embeddings ? ", tied embeddings" : "");
	printf("tensors:       %zu\n", m->n_tensors);
	printf("parameters:    %llu\n", (unsigned long long)params);
	printf("bytes:         %llu (%.2f MiB)\n", (unsigned long long)bytes, (double)bytes / 1048576.0);
	printf("bits/weight:   %.4f\n", params ? 8.0 * (double)bytes / (double)params : 0.0);

	if (opt_metadata) {
		printf("\nmetadata:\n");
		struct isq_buf b = ISQ_BUF_INIT;
		if (m->gguf)
			for (size_t i = 0; i < m->gguf->n_kv; i++) {
				const struct isq_gguf_kv *kv = &m->gguf->kv[i];
				isq_buf_reset(&b);
				gguf_kv_text(kv, &b);
				printf("  %-40s %-7s %s\n", kv->key, isq_gguf_vtype_name(kv->type), b.data ? b.data : "");
			}
		if (m->st)
			for (size_t i = 0; i < m->st->n_metadata; i++)
				printf("  %-40s %s\n", m->st->metadata[i].key, m->st->metadata[i].value);
		isq_buf_release(&b);
	}

	size_t namew = 4;
	for (size_t i = 0; i < m->n_tensors; i++)
		if (!only || &m->tensors[i] == only)
			namew = ISQ_MAX(namew, strlen(m->tensors[i].name));
	printf("\n%-*s  %-7s  %-18s  %12s  %8s", (int)namew, "name", "type", "shape", "bytes", "bpw");
	if (st)
		printf("  %11s  %11s  %11s  %11s  %11s  %5s  %5s  %9s", "min", "max", "mean", "std", "absmax", "nan",
		       "inf", ">6sigma");
	printf("\n");
	for (size_t i = 0; i < m->n_tensors; i++) {
		const struct isq_model_tensor *t = &m->tensors[i];
		if (only && t != only)
			continue;
		char shape[128];
		shape_str(t, shape, sizeof(shape));
		printf("%-*s  %-7s  %-18s  %12llu  %8.4f", (int)namew, t->name, t->type_name, shape,
		       (unsigned long long)t->nbytes, tensor_bpw(t));
		if (st && st[i].have) {
			const struct isq_stats *s = &st[i].s;
			printf("  %11.4g  %11.4g  %11.4g  %11.4g  %11.4g  %5llu  %5llu  %9.3g", s->min, s->max, s->mean,
			       s->std, s->absmax, (unsigned long long)s->n_nan, (unsigned long long)s->n_inf,
			       s->frac_6sigma);
		} else if (st) {
			printf("  %11s", "-");
		}
		printf("\n");
	}
}

/* A UQFF directory (any *.uqff in it) or a single shard: mistral.rs's format, read by formats/uqff.c. */
static int is_uqff(const char *path)
{
	size_t n = strlen(path);
	if (n > 5 && !strcmp(path + n - 5, ".uqff") && !isq_is_dir(path))
		return 1;
	DIR *d = isq_is_dir(path) ? opendir(path) : NULL;
	struct dirent *de;
	int found = 0;
	while (d && !found && (de = readdir(d))) {
		size_t l = strlen(de->d_name);
		found = de->d_name[0] != '.' && l > 5 && !strcmp(de->d_name + l - 5, ".uqff");
	}
	if (d)
		closedir(d);
	return found;
}

static int inspect_uqff(const char *path)
{
	struct isq_uqff u;
	if (isq_uqff_open(&u, path)) {
		isq_warn("%s", isq_errbuf_msg(&u.err));
		return isq_tool_exit(1);
	}
	cJSON *root = opt_json ? cJSON_CreateObject() : NULL;
	cJSON *sets = root ? cJSON_AddArrayToObject(root, "sets") : NULL;
	if (root)
		cJSON_AddStringToObject(root, "format", "uqff");
	else
		printf("format:        uqff (%d shard set%s)\n", u.n_sets, u.n_sets == 1 ? "" : "s");
	for (int i = 0; i < u.n_sets; i++) {
		const struct isq_uqff_set *s = &u.sets[i];
		char v[32];
		snprintf(v, sizeof(v), "%u.%u.%u", s->version[0], s->version[1], s->version[2]);
		cJSON *so = NULL, *layers = NULL;
		if (root) {
			so = cJSON_CreateObject();
			cJSON_AddStringToObject(so, "quant", s->stem);
			cJSON_AddStringToObject(so, "version", v);
			cJSON *sh = cJSON_AddArrayToObject(so, "shards");
			for (int k = 0; k < s->n_shards; k++)
				cJSON_AddItemToArray(sh, cJSON_CreateString(s->shard_paths[k]));
			layers = cJSON_AddArrayToObject(so, "layers");
			cJSON_AddItemToArray(sets, so);
		} else {
			printf("\nset %s: UQFF %s, %d shard%s, %zu layers\n", s->stem, v, s->n_shards, s->n_shards == 1 ? "" : "s",
			       s->n_layers);
		}
		for (size_t k = 0; k < s->n_layers; k++) {
			const struct isq_uqff_layer *l = &s->layers[k];
			if (opt_tensor && strcmp(opt_tensor, l->key))
				continue;
			char shape[96];
			size_t off = (size_t)snprintf(shape, sizeof(shape), "[");
			for (int d = 0; d < l->rank && off < sizeof(shape); d++)
				off += (size_t)snprintf(shape + off, sizeof(shape) - off, "%s%llu", d ? ", " : "",
							(unsigned long long)l->shape[d]);
			if (off < sizeof(shape))
				snprintf(shape + off, sizeof(shape) - off, "]");
			if (root) {
				cJSON *o = cJSON_CreateObject();
				cJSON_AddStringToObject(o, "key", l->key);
				cJSON_AddNumberToObject(o, "format", l->format);
				cJSON_AddStringToObject(o, "type", isq_type_name(l->type));
				cJSON_AddStringToObject(o, "stored", l->label);
				cJSON *sa = cJSON_AddArrayToObject(o, "shape");
				for (int d = 0; d < l->rank; d++)
					cJSON_AddItemToArray(sa, cJSON_CreateNumber((double)l->shape[d]));
				cJSON_AddNumberToObject(o, "bytes", (double)l->nbytes);
				cJSON_AddBoolToObject(o, "bias", l->bias != NULL);
				cJSON_AddItemToArray(layers, o);
			} else {
				printf("  %-52s %-8s %-16s %10llu B%s\n", l->key, l->label, shape, (unsigned long long)l->nbytes,
				       l->bias ? "  +bias" : "");
			}
		}
	}
	size_t nres = u.residual ? u.residual->n_tensors : 0;
	if (root) {
		cJSON *res = cJSON_AddArrayToObject(root, "residual");
		for (size_t i = 0; i < nres; i++) {
			const struct isq_st_tensor *t = &u.residual->tensors[i];
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "name", t->name);
			cJSON_AddStringToObject(o, "dtype", isq_st_dtype_name(t->dtype));
			cJSON *sa = cJSON_AddArrayToObject(o, "shape");
			for (int d = 0; d < t->n_dims; d++)
				cJSON_AddItemToArray(sa, cJSON_CreateNumber((double)t->shape[d]));
			cJSON_AddItemToArray(res, o);
		}
		char *text = cJSON_PrintUnformatted(root);
		puts(text);
		free(text);
		cJSON_Delete(root);
	} else {
		printf("\nresidual.safetensors: %zu tensors\n", nres);
	}
	isq_uqff_release(&u);
	return isq_tool_exit(0);
}

int main(int argc, char **argv)
{
	struct isq_strlist pos = ISQ_STRLIST_INIT;
	isq_tool_parse(&cmd, argc, argv, &pos);
	isq_set_verbosity(1 - opt_quiet + opt_verbose);
	if (pos.n > 1 || (pos.n == 1 && opt_model))
		isq_tool_usage_error(&cmd, "expected one model, got %d", pos.n + (opt_model != NULL));
	const char *path = opt_model ? opt_model : pos.n ? pos.items[0] : NULL;
	if (!path)
		isq_tool_usage_error(&cmd, "no model given");

	if (strcmp(path, "-") && is_uqff(path)) {
		isq_strlist_release(&pos);
		return inspect_uqff(path);
	}

	struct isq_model m;
	if (isq_model_open(&m, path)) {
		isq_warn("%s", isq_errbuf_msg(&m.err));
		isq_model_release(&m);
		isq_strlist_release(&pos);
		return isq_tool_exit(1);
	}

	const struct isq_model_tensor *only = NULL;
	if (opt_tensor && !(only = isq_model_find(&m, opt_tensor))) {
		isq_warn("%s: no tensor named '%s'", path, opt_tensor);
		isq_model_release(&m);
		isq_strlist_release(&pos);
		return isq_tool_exit(1);
	}

	struct row_stats *st = NULL;
	int status = 0;
	if (opt_stats) {
		st = calloc(m.n_tensors ? m.n_tensors : 1, sizeof(*st));
		struct isq_pool *pool = isq_pool_new(isq_tool_threads(opt_threads));
		if (!st || !pool)
			isq_die("out of memory");
		for (size_t i = 0; i < m.n_tensors; i++) {
			const struct isq_model_tensor *t = &m.tensors[i];
			if (only && t != only)
				continue;
			int rc = t->type == ISQ_TYPE_NONE
					 ? ISQ_EUNSUPPORTED
					 : isq_stats_compute((enum isq_type)t->type, t->data, t->n_elements, pool, &st[i].s);
			if (rc == 0)
				st[i].have = 1;
			else
				isq_warn("%s: tensor '%s': no statistics for type %s", path, t->name, t->type_name);
		}
		isq_pool_free(pool);
	}

	if (opt_json)
		print_json(&m, only, st);
	else
		print_text(&m, only, st);

	free(st);
	isq_model_release(&m);
	isq_strlist_release(&pos);
	return isq_tool_exit(status);
}
