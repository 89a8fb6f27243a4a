/* weights.c - GGUF and safetensors tensors as forward-pass weights. */
#include "weights.h"
#include "hparams.h"
#include "plan.h"
#include "fp.h"
#include "thread.h"

#include <dirent.h>

static int add_owned(struct isq_weights *w, float *p)
{
	float **n = realloc(w->owned, (w->n_owned + 1) * sizeof(*n));
	if (!n) {
		free(p);
		return isq_errbuf_set(&w->err, ISQ_ENOMEM, "out of memory");
	}
	w->owned = n;
	w->owned[w->n_owned++] = p;
	return 0;
}

/* A tensor by its GGUF name, whatever the container names it. */
static const struct isq_model_tensor *find(struct isq_weights *w, const char *gguf_name)
{
	if (w->from_gguf)
		return isq_model_find(&w->model, gguf_name);
	char hf[256];
	if (isq_name_gguf_to_hf(gguf_name, hf, sizeof(hf)))
		return NULL;
	return isq_model_find(&w->model, hf);
}

static const char *shown_name(struct isq_weights *w, const char *gguf_name, char *buf, size_t n)
{
	if (w->from_gguf || isq_name_gguf_to_hf(gguf_name, buf, n))
		snprintf(buf, n, "%s", gguf_name);
	return buf;
}

/* The UQFF layer holding HF tensor HF_NAME ("...q_proj.weight" or ".bias"); NULL if none. */
static const struct isq_uqff_layer *uqff_layer(struct isq_weights *w, const char *hf_name, const char *suffix)
{
	size_t n = strlen(hf_name), k = strlen(suffix);
	char key[256];
	if (!w->uqff_set || n <= k || n - k >= sizeof(key) || strcmp(hf_name + n - k, suffix))
		return NULL;
	memcpy(key, hf_name, n - k);
	key[n - k] = 0;
	return isq_uqff_find_layer(w->uqff_set, key);
}

/* A matrix from a UQFF layer entry: in place for GGML and Unquant entries, decoded to F16 otherwise. */
static int uqff_matrix(struct isq_weights *w, const struct isq_uqff_layer *l, struct isq_fw_tensor *out)
{
	if (l->rank != 2)
		return isq_errbuf_set(&w->err, ISQ_EFORMAT, "layer '%s' has %d dimensions, expected 2", l->key, l->rank);
	out->rows = (int64_t)l->shape[0];
	out->cols = (int64_t)l->shape[1];
	uint64_t rb;
	if (l->format == ISQ_UQFF_GGUF || l->format == ISQ_UQFF_UNQUANT) {
		if (isq_type_row_size(l->type, l->shape[1], &rb) || rb * l->shape[0] > l->weight->nbytes)
			return isq_errbuf_set(&w->err, ISQ_EFORMAT, "layer '%s': %llu bytes do not hold [%llu, %llu] of %s",
					      l->key, (unsigned long long)l->weight->nbytes, (unsigned long long)l->shape[0],
					      (unsigned long long)l->shape[1], isq_type_name(l->type));
		out->type = l->type;
		out->row_bytes = (size_t)rb;
		out->data = l->weight->data;
		const struct isq_safetensors *shard = w->uqff_set->shards[l->weight->shard];
		out->file_backed = shard->n_shards == 1 && shard->shards[0].mmap_base != NULL;
		/*
		 * safetensors does not align tensor data, and block structs and
		 * floats must not be read at odd addresses: such an entry is copied.
		 */
		if ((uintptr_t)out->data % 32) {
			size_t n = (size_t)rb * (size_t)l->shape[0];
			void *p = NULL;
			if (posix_memalign(&p, 32, n ? n : 1))
				return isq_errbuf_set(&w->err, ISQ_ENOMEM, "out of memory copying layer '%s'", l->key);
			memcpy(p, out->data, n);
			out->data = p;
			out->file_backed = 0;
			return add_owned(w, p);
		}
		return 0;
	}
	size_t n = (size_t)l->numel;
	float *f = isq_mallocarray(n, sizeof(float));
	uint16_t *h = isq_mallocarray(n, sizeof(uint16_t));
	if (!f || !h) {
		free(f);
		free(h);
		return isq_errbuf_set(&w->err, ISQ_ENOMEM, "out of memory decoding layer '%s'", l->key);
	}
	int rc = isq_uqff_dequantize(l, f, &w->err);
	if (!rc)
		isq_fp32_to_fp16_row(f, h, n);
	free(f);
	if (rc) {
		free(h);
		return rc;
	}
	out->type = ISQ_TYPE_F16;
	out->row_bytes = (size_t)out->cols * 2;
	out->data = h;
	return add_owned(w, (float *)(void *)h);
}

struct isq_job {
	const struct isq_fw_tensor *src;
	const struct isq_type_traits *st, *dt;
	uint8_t *dst;
	size_t dst_row;
	float *scratch; /* per worker: ISQ_ROWS rows of F32 */
};

#define ISQ_ROWS 16

static void isq_rows(void *ctx, int64_t b, int64_t e, int worker)
{
	struct isq_job *j = ctx;
	int64_t cols = j->src->cols;
	float *f = j->scratch + (size_t)worker * ISQ_ROWS * (size_t)cols;
	for (int64_t c = b; c < e; c++) {
		int64_t r0 = c * ISQ_ROWS, nr = ISQ_MIN((int64_t)ISQ_ROWS, j->src->rows - r0);
		for (int64_t r = 0; r < nr; r++)
			j->st->dequantize((const uint8_t *)j->src->data + (size_t)(r0 + r) * j->src->row_bytes,
					  f + (size_t)r * cols, cols);
		j->dt->quantize(f, j->dst + (size_t)r0 * j->dst_row, nr, cols, NULL);
	}
}

/*
 * The type --isq gives matrix NAME (GGUF spelling): mistral.rs's shape
 * fallbacks come from the UQFF plan (the rules isq-quantize --format uqff
 * follows), so a q6_k request on rows of 64 becomes what mistral.rs would
 * store, not a refusal.  ISQ_TYPE_NONE: leave the matrix as it is.
 */
static enum isq_type planned_type(const struct isq_weights *w, const char *name)
{
	const struct isq_plan *p = w->isq_plan;
	char hf[256];
	int have_hf = !isq_name_gguf_to_hf(name, hf, sizeof(hf));
	for (size_t i = 0; p && i < p->n; i++) {
		const struct isq_plan_entry *en = &p->entries[i];
		if (strcmp(en->name, name) && (!have_hf || strcmp(en->name, hf)))
			continue;
		return en->quantize ? en->type : ISQ_TYPE_NONE;
	}
	return w->opts->isq;
}

/* --isq: OUT (a float matrix view) becomes an owned matrix of the planned type, or stays as it is. */
static int isq_matrix(struct isq_weights *w, const char *name, struct isq_fw_tensor *out)
{
	struct isq_weights_opts *o = w->opts;
	if (out->type != ISQ_TYPE_F32 && out->type != ISQ_TYPE_F16 && out->type != ISQ_TYPE_BF16)
		return 0;
	enum isq_type t = planned_type(w, name);
	const struct isq_type_traits *dt = t == ISQ_TYPE_NONE ? NULL : isq_type_traits(t);
	uint64_t rb;
	if (!dt || !dt->is_quantized || !dt->quantize || !dt->vec_dot || out->cols % dt->blck ||
	    isq_type_row_size(t, (uint64_t)out->cols, &rb)) {
		o->n_kept++;
		return 0;
	}
	uint8_t *dst = malloc((size_t)rb * (size_t)out->rows);
	int n = o->n_threads < 1 ? 1 : o->n_threads;
	float *scratch = isq_mallocarray((size_t)n * ISQ_ROWS * (size_t)out->cols, sizeof(float));
	/* one pool for the whole load, made at the first matrix */
	if (n > 1 && !w->isq_pool)
		w->isq_pool = isq_pool_new(n);
	if (!dst || !scratch || (n > 1 && !w->isq_pool)) {
		free(dst);
		free(scratch);
		return isq_errbuf_set(&w->err, ISQ_ENOMEM, "out of memory quantizing a %lld x %lld matrix",
				      (long long)out->rows, (long long)out->cols);
	}
	struct isq_job j = { out, isq_type_traits(out->type), dt, dst, (size_t)rb, scratch };
	isq_pool_for(w->isq_pool, (out->rows + ISQ_ROWS - 1) / ISQ_ROWS, 1, isq_rows, &j);
	free(scratch);
	if (out->file_backed)
		isq_pages_drop(out->data, out->row_bytes * (size_t)out->rows);
	if (t != o->isq)
		o->n_fallback++;
	out->type = t;
	out->row_bytes = (size_t)rb;
	out->data = dst;
	out->file_backed = 0;
	o->n_quantized++;
	return add_owned(w, (float *)(void *)dst);
}

static int get_matrix(struct isq_weights *w, const char *name, int required, struct isq_fw_tensor *out)
{
	char shown[256];
	memset(out, 0, sizeof(*out));
	const struct isq_model_tensor *t = find(w, name);
	if (!t && w->uqff_set) {
		char hf[256];
		const struct isq_uqff_layer *l =
			isq_name_gguf_to_hf(name, hf, sizeof(hf)) ? NULL : uqff_layer(w, hf, ".weight");
		if (l) {
			int rc = uqff_matrix(w, l, out);
			if (!rc && w->opts && w->opts->isq != ISQ_TYPE_NONE && strcmp(name, "token_embd.weight"))
				rc = isq_matrix(w, name, out);
			return rc;
		}
	}
	if (!t) {
		if (!required)
			return 0;
		return isq_errbuf_set(&w->err, ISQ_EFORMAT, "tensor '%s' is missing", shown_name(w, name, shown, sizeof(shown)));
	}
	if (t->n_dims != 2)
		return isq_errbuf_set(&w->err, ISQ_EFORMAT, "tensor '%s' has %d dimensions, expected 2", t->name, t->n_dims);
	const struct isq_type_traits *tt = t->type == ISQ_TYPE_NONE ? NULL : isq_type_traits(t->type);
	if (!tt || !tt->type_size)
		return isq_errbuf_set(&w->err, ISQ_EUNSUPPORTED, "tensor '%s': type %s cannot be computed with", t->name,
				      t->type_name);
	uint64_t rb;
	if (isq_type_row_size(t->type, (uint64_t)t->shape[1], &rb) || rb * (uint64_t)t->shape[0] != t->nbytes)
		return isq_errbuf_set(&w->err, ISQ_EFORMAT, "tensor '%s': %llu bytes do not hold [%lld, %lld] of %s",
				      t->name, (unsigned long long)t->nbytes, (long long)t->shape[0], (long long)t->shape[1],
				      t->type_name);
	out->type = (enum isq_type)t->type;
	out->rows = t->shape[0];
	out->cols = t->shape[1];
	out->row_bytes = (size_t)rb;
	out->data = t->data;
	out->file_backed = isq_model_mapped(&w->model, t);
	if (w->opts && w->opts->isq != ISQ_TYPE_NONE && strcmp(name, "token_embd.weight"))
		return isq_matrix(w, name, out);
	return 0;
}

/* A 1-D tensor of n elements widened to an owned F32 copy; *out NULL when absent and not required. */
static int get_vector(struct isq_weights *w, const char *name, int64_t n, int required, const float **out)
{
	char shown[256];
	*out = NULL;
	const struct isq_model_tensor *t = find(w, name);
	if (!t && w->uqff_set) {
		/* a layer's bias lives in its UQFF entry */
		char hf[256];
		const struct isq_uqff_layer *l =
			isq_name_gguf_to_hf(name, hf, sizeof(hf)) ? NULL : uqff_layer(w, hf, ".bias");
		if (l && l->bias) {
			int bt = isq_st_dtype_to_type(l->bias->dtype);
			const struct isq_type_traits *bt_tt = bt < 0 ? NULL : isq_type_traits((enum isq_type)bt);
			if (!bt_tt || !bt_tt->dequantize || bt_tt->blck != 1 ||
			    l->bias->nbytes != (uint64_t)n * bt_tt->type_size)
				return isq_errbuf_set(&w->err, ISQ_EFORMAT, "layer '%s': bias is not %lld floats", l->key,
						      (long long)n);
			float *p = isq_mallocarray((size_t)n, sizeof(float));
			if (!p)
				return isq_errbuf_set(&w->err, ISQ_ENOMEM, "out of memory");
			bt_tt->dequantize(l->bias->data, p, n);
			*out = p;
			return add_owned(w, p);
		}
	}
	if (!t) {
		if (!required)
			return 0;
		return isq_errbuf_set(&w->err, ISQ_EFORMAT, "tensor '%s' is missing", shown_name(w, name, shown, sizeof(shown)));
	}
	if ((int64_t)t->n_elements != n)
		return isq_errbuf_set(&w->err, ISQ_EFORMAT, "tensor '%s' has %llu elements, expected %lld", t->name,
				      (unsigned long long)t->n_elements, (long long)n);
	const struct isq_type_traits *tt = t->type == ISQ_TYPE_NONE ? NULL : isq_type_traits(t->type);
	if (!tt || !tt->dequantize || n % tt->blck)
		return isq_errbuf_set(&w->err, ISQ_EUNSUPPORTED, "tensor '%s': type %s cannot be read", t->name,
				      t->type_name);
	float *p = isq_mallocarray((size_t)n, sizeof(float));
	if (!p)
		return isq_errbuf_set(&w->err, ISQ_ENOMEM, "out of memory");
	tt->dequantize(t->data, p, n);
	*out = p;
	return add_owned(w, p);
}

static int has_uqff_bias(struct isq_weights *w, const char *gguf_name)
{
	char hf[256];
	const struct isq_uqff_layer *l = isq_name_gguf_to_hf(gguf_name, hf, sizeof(hf)) ? NULL : uqff_layer(w, hf, ".bias");
	return l && l->bias;
}

/* llama.cpp keeps linear RoPE scaling in metadata and Llama 3's in a rope_freqs tensor. */
static int gguf_rope(struct isq_weights *w, struct isq_fw_config *cfg)
{
	const struct isq_gguf *g = w->model.gguf;
	char key[128];
	uint64_t dims;
	snprintf(key, sizeof(key), "%s.rope.dimension_count", w->hp.gguf_arch);
	if (isq_gguf_get_u64(g, key, &dims) == 0 && (int64_t)dims != cfg->head_dim)
		return isq_errbuf_set(&w->err, ISQ_EUNSUPPORTED, "partial rotary embeddings (%llu of %d) are not yet supported",
				      (unsigned long long)dims, cfg->head_dim);
	snprintf(key, sizeof(key), "%s.rope.scaling.type", w->hp.gguf_arch);
	char *type = isq_gguf_get_str(g, key);
	int rc = 0;
	if (type && !strcmp(type, "linear")) {
		double f = 1;
		snprintf(key, sizeof(key), "%s.rope.scaling.factor", w->hp.gguf_arch);
		isq_gguf_get_f64(g, key, &f);
		cfg->rope_scaling = ISQ_FW_ROPE_LINEAR;
		cfg->rope_factor = (float)f;
	} else if (type && strcmp(type, "none")) {
		rc = isq_errbuf_set(&w->err, ISQ_EUNSUPPORTED, "rope scaling '%s' is not yet supported", type);
	}
	free(type);
	return rc ? rc : get_vector(w, "rope_freqs.weight", cfg->head_dim / 2, 0, &w->fw.rope_freqs);
}

static int hf_rope(struct isq_weights *w, struct isq_fw_config *cfg)
{
	const struct isq_hparams *hp = &w->hp;
	switch (hp->rope_scaling) {
	case ISQ_ROPE_SCALING_NONE:
	case ISQ_ROPE_SCALING_DYNAMIC: /* changes nothing inside the trained context */
		return 0;
	case ISQ_ROPE_SCALING_LINEAR:
		cfg->rope_scaling = ISQ_FW_ROPE_LINEAR;
		cfg->rope_factor = (float)hp->rope_factor;
		return 0;
	case ISQ_ROPE_SCALING_LLAMA3:
		cfg->rope_scaling = ISQ_FW_ROPE_LLAMA3;
		cfg->rope_factor = (float)hp->rope_factor;
		cfg->rope_low_freq_factor = (float)hp->rope_low_freq_factor;
		cfg->rope_high_freq_factor = (float)hp->rope_high_freq_factor;
		cfg->rope_orig_ctx = hp->rope_original_max_position;
		return 0;
	default:
		return isq_errbuf_set(&w->err, ISQ_EUNSUPPORTED, "yarn rope scaling is not yet supported");
	}
}

static int fill(struct isq_weights *w)
{
	struct isq_hparams *hp = &w->hp;
	struct isq_fw_weights *fw = &w->fw;
	struct isq_fw_config *cfg = &fw->cfg;
	int rc = isq_config_check_supported(hp, &w->err);
	if (rc)
		return rc;
	if (hp->n_heads <= 0 || hp->n_heads > INT32_MAX || hp->n_kv_heads <= 0 || hp->n_kv_heads > INT32_MAX ||
	    hp->head_dim <= 0 || hp->head_dim > 65536)
		return isq_errbuf_set(&w->err, ISQ_EFORMAT, "inconsistent attention hyperparameters");
	cfg->n_embd = hp->hidden_size;
	cfg->n_layer = hp->n_layers;
	cfg->n_head = (int)hp->n_heads;
	cfg->n_head_kv = (int)hp->n_kv_heads;
	cfg->head_dim = (int)hp->head_dim;
	cfg->n_ctx_train = hp->max_position_embeddings;
	cfg->norm_eps = (float)hp->rms_norm_eps;
	cfg->rope_theta = (float)(hp->rope_theta > 0 ? hp->rope_theta : 10000.0);
	cfg->rope_neox = w->from_gguf ? hp->rope_neox : 1;
	rc = w->from_gguf ? gguf_rope(w, cfg) : hf_rope(w, cfg);
	rc = rc ? rc : get_matrix(w, "token_embd.weight", 1, &fw->tok_embd);
	/* transformers ties lm_head to the embedding whatever the file holds; GGUF says it by omission */
	if (!rc && (w->from_gguf || !hp->tie_word_embeddings))
		rc = get_matrix(w, "output.weight", 0, &fw->output);
	rc = rc ? rc : get_vector(w, "output_norm.weight", cfg->n_embd, 1, &fw->output_norm);
	if (rc)
		return rc;
	cfg->n_vocab = fw->tok_embd.rows;
	fw->layers = calloc((size_t)cfg->n_layer, sizeof(*fw->layers));
	if (!fw->layers)
		return isq_errbuf_set(&w->err, ISQ_ENOMEM, "out of memory");
	int64_t nq = (int64_t)cfg->n_head * cfg->head_dim, nkv = (int64_t)cfg->n_head_kv * cfg->head_dim;
	for (int64_t l = 0; !rc && l < cfg->n_layer; l++) {
		struct isq_fw_layer *L = &fw->layers[l];
		char n[96];
#define NAME(s) (snprintf(n, sizeof(n), "blk.%lld." s, (long long)l), n)
		rc = get_vector(w, NAME("attn_norm.weight"), cfg->n_embd, 1, &L->attn_norm);
		rc = rc ? rc : get_vector(w, NAME("ffn_norm.weight"), cfg->n_embd, 1, &L->ffn_norm);
		rc = rc ? rc : get_vector(w, NAME("attn_q_norm.weight"), cfg->head_dim, hp->qk_norm, &L->q_norm);
		rc = rc ? rc : get_vector(w, NAME("attn_k_norm.weight"), cfg->head_dim, hp->qk_norm, &L->k_norm);
		rc = rc ? rc : get_vector(w, NAME("attn_q.bias"), nq, 0, &L->bq);
		rc = rc ? rc : get_vector(w, NAME("attn_k.bias"), nkv, 0, &L->bk);
		rc = rc ? rc : get_vector(w, NAME("attn_v.bias"), nkv, 0, &L->bv);
		if (!rc && (find(w, NAME("attn_output.bias")) || has_uqff_bias(w, NAME("attn_output.bias"))))
			rc = isq_errbuf_set(&w->err, ISQ_EUNSUPPORTED, "an attention output bias is not yet supported");
		rc = rc ? rc : get_matrix(w, NAME("attn_q.weight"), 1, &L->wq);
		rc = rc ? rc : get_matrix(w, NAME("attn_k.weight"), 1, &L->wk);
		rc = rc ? rc : get_matrix(w, NAME("attn_v.weight"), 1, &L->wv);
		rc = rc ? rc : get_matrix(w, NAME("attn_output.weight"), 1, &L->wo);
		rc = rc ? rc : get_matrix(w, NAME("ffn_gate.weight"), 1, &L->gate);
		rc = rc ? rc : get_matrix(w, NAME("ffn_up.weight"), 1, &L->up);
		rc = rc ? rc : get_matrix(w, NAME("ffn_down.weight"), 1, &L->down);
#undef NAME
	}
	if (rc)
		return rc;
	/* GGUF may leave feed_forward_length out; the tensors say it */
	cfg->n_ff = fw->layers[0].gate.rows;
	return 0;
}

int isq_weights_open(struct isq_weights *w, const char *path)
{
	return isq_weights_open_opts(w, path, NULL);
}

/* A UQFF directory (it holds a *.uqff) or a .uqff shard. */
static int is_uqff(const char *path)
{
	size_t n = strlen(path);
	if (n > 5 && !strcmp(path + n - 5, ".uqff"))
		return 1;
	DIR *d = isq_is_dir(path) ? opendir(path) : NULL;
	if (!d)
		return 0;
	int found = 0;
	for (struct dirent *de; !found && (de = readdir(d));) {
		size_t k = strlen(de->d_name);
		found = k > 5 && !strcmp(de->d_name + k - 5, ".uqff");
	}
	closedir(d);
	return found;
}

static int open_uqff(struct isq_weights *w, const char *path)
{
	w->uqff = calloc(1, sizeof(*w->uqff));
	if (!w->uqff)
		return isq_errbuf_set(&w->err, ISQ_ENOMEM, "out of memory");
	int rc = isq_uqff_open(w->uqff, path);
	if (rc) {
		w->err = w->uqff->err;
		return rc;
	}
	int best = -1;
	for (int i = 0; i < w->uqff->n_sets; i++) {
		const struct isq_uqff_set *s = &w->uqff->sets[i];
		int g = 0;
		for (size_t k = 0; k < s->n_layers; k++)
			g += s->layers[k].format == ISQ_UQFF_GGUF;
		if (g > best) {
			best = g;
			w->uqff_set = s;
		}
	}
	if (!w->uqff_set)
		return isq_errbuf_set(&w->err, ISQ_EFORMAT, "no shard set");
	/* config.json, tokenizer and residual.safetensors: the directory as a Hugging Face one */
	rc = isq_model_open(&w->model, w->uqff->dir);
	if (rc)
		w->err = w->model.err;
	return rc;
}

void isq_weights_host_copied(void *ud, const struct isq_fw_tensor *host)
{
	struct isq_weights *w = ud;
	for (size_t i = 0; i < w->n_owned; i++)
		if (w->owned[i] && (const void *)w->owned[i] == host->data) {
			free(w->owned[i]);
			w->owned[i] = NULL;
			w->fw.spent = 1;
			return;
		}
}

int isq_weights_open_opts(struct isq_weights *w, const char *path, struct isq_weights_opts *o)
{
	memset(w, 0, sizeof(*w));
	w->opts = o;
	if (o) {
		o->n_quantized = o->n_kept = o->n_fallback = 0;
		const struct isq_type_traits *tt = o->isq == ISQ_TYPE_NONE ? NULL : isq_type_traits(o->isq);
		if (o->isq != ISQ_TYPE_NONE && (!tt || !tt->quantize || !tt->vec_dot))
			return isq_errbuf_set(&w->err, ISQ_EUNSUPPORTED, "type %s cannot be computed with on the CPU",
					      isq_type_name(o->isq));
	}
	int rc;
	if (is_uqff(path)) {
		rc = open_uqff(w, path);
		if (rc) {
			struct isq_errbuf keep = w->err;
			isq_weights_release(w);
			w->err = keep;
			return rc;
		}
	} else {
		rc = isq_model_open(&w->model, path);
		if (rc) {
			w->err = w->model.err;
			return rc;
		}
	}
	w->from_gguf = w->model.format == ISQ_MODEL_GGUF;
	if (w->from_gguf) {
		rc = isq_hparams_from_gguf(w->model.gguf, &w->hp, &w->err);
		if (rc == ISQ_EUNSUPPORTED) {
			char *arch = isq_gguf_get_str(w->model.gguf, "general.architecture");
			rc = isq_errbuf_set(&w->err, ISQ_EUNSUPPORTED, "%s is not yet supported", arch ? arch : "?");
			free(arch);
		}
	} else if (w->model.have_config) {
		w->hp = w->model.hp;
	} else if (w->model.config_rc == ISQ_ENOTFOUND) {
		rc = isq_errbuf_set(&w->err, ISQ_EFORMAT, "no config.json beside the weights");
	} else {
		rc = isq_errbuf_set(&w->err, w->model.config_rc ? w->model.config_rc : ISQ_EFORMAT, "%s",
				    w->model.config_err[0] ? w->model.config_err : "config.json cannot be used");
	}
	struct isq_plan plan = { 0 };
	if (!rc && o && o->isq != ISQ_TYPE_NONE) {
		/* mistral.rs's rules: every linear weight in the type, its shape fallbacks (the UQFF plan) */
		struct isq_plan_opts po = { .type = isq_type_name(o->isq), .pure = 1, .format = ISQ_FORMAT_UQFF,
					    .target = ISQ_TARGET_CPU };
		struct isq_errbuf pe = { 0 };
		/* a model the planner cannot describe still runs: every matrix then takes the type as it fits */
		if (isq_plan_build(&w->model, &po, &plan, &pe) == 0)
			w->isq_plan = &plan;
	}
	rc = rc ? rc : fill(w);
	if (w->isq_plan)
		isq_plan_release(&plan);
	w->isq_plan = NULL;
	isq_pool_free(w->isq_pool);
	w->isq_pool = NULL;
	w->opts = NULL;
	if (rc) {
		struct isq_errbuf keep = w->err;
		isq_weights_release(w);
		w->err = keep;
	}
	return rc;
}

void isq_weights_release(struct isq_weights *w)
{
	for (size_t i = 0; i < w->n_owned; i++)
		free(w->owned[i]);
	free(w->owned);
	free(w->fw.layers);
	isq_model_release(&w->model);
	if (w->uqff) {
		isq_uqff_release(w->uqff);
		free(w->uqff);
	}
	memset(w, 0, sizeof(*w));
}
