/* forward.c - the Llama-family decoder pass over a backend. */
#include "forward.h"
#include "io.h"

#include <math.h>

struct fw_layer_dev {
	float *attn_norm, *ffn_norm, *q_norm, *k_norm, *bq, *bk, *bv;
	struct isq_fw_tensor wq, wk, wv, wo, gate, up, down;
	void *k_cache, *v_cache;
};

struct isq_fw_ctx {
	const struct isq_fw_weights *w;
	void (*host_copied)(void *ud, const struct isq_fw_tensor *host);
	void *host_copied_ud;
	struct isq_fw_config cfg;
	struct isq_backend *be;
	int64_t n_ctx;
	int n_batch;
	enum isq_type kv_type;
	struct fw_layer_dev *layers;
	struct isq_fw_tensor tok_embd, output;
	float *output_norm, *inv_freq;
	/* activations, n_batch rows each */
	float *x, *h, *q, *k, *v, *att, *g, *u, *logits;
	isq_fw_observer observer;
	void *observer_ud;
};

void isq_fw_rope_inv_freq(const struct isq_fw_config *cfg, const float *rope_freqs, float *out)
{
	int half = cfg->head_dim / 2;
	for (int i = 0; i < half; i++) {
		/* HF: 1 / base^(2i/d) in float32 */
		float f = 1.0f / powf(cfg->rope_theta, (float)(2 * i) / (float)cfg->head_dim);
		if (rope_freqs)
			f /= rope_freqs[i];
		if (cfg->rope_scaling == ISQ_FW_ROPE_LINEAR && cfg->rope_factor > 0)
			f /= cfg->rope_factor;
		if (cfg->rope_scaling == ISQ_FW_ROPE_LLAMA3 && !rope_freqs && cfg->rope_factor > 0) {
			/* transformers' _compute_llama3_parameters */
			double lo = cfg->rope_low_freq_factor > 0 ? cfg->rope_low_freq_factor : 1.0;
			double hi = cfg->rope_high_freq_factor > 0 ? cfg->rope_high_freq_factor : 4.0;
			double orig = cfg->rope_orig_ctx > 0 ? (double)cfg->rope_orig_ctx : 8192.0;
			double wavelen = 2 * M_PI / f;
			if (wavelen > orig / lo) {
				f = f / cfg->rope_factor;
			} else if (wavelen >= orig / hi) {
				double smooth = (orig / wavelen - lo) / (hi - lo);
				f = (float)((1 - smooth) * f / cfg->rope_factor + smooth * f);
			}
		}
		out[i] = f;
	}
}

static int check_matrix(const struct isq_fw_tensor *t, const char *what, int layer, int64_t rows, int64_t cols,
			struct isq_errbuf *e)
{
	char name[64];
	if (layer >= 0)
		snprintf(name, sizeof(name), "layer %d %s", layer, what);
	else
		snprintf(name, sizeof(name), "%s", what);
	if (!t->data)
		return isq_errbuf_set(e, ISQ_EFORMAT, "%s is missing", name);
	if (t->rows != rows || t->cols != cols)
		return isq_errbuf_set(e, ISQ_EFORMAT, "%s has shape [%lld, %lld], expected [%lld, %lld]", name,
				      (long long)t->rows, (long long)t->cols, (long long)rows, (long long)cols);
	return 0;
}

static int upload_vec(struct isq_fw_ctx *c, const float *src, int64_t n, float **dst, struct isq_errbuf *e)
{
	*dst = NULL;
	if (!src)
		return 0;
	*dst = c->be->ops->alloc(c->be, (size_t)n * sizeof(float), e);
	if (!*dst)
		return e->code;
	c->be->ops->write(c->be, *dst, src, (size_t)n * sizeof(float));
	return 0;
}

static int load_w(struct isq_fw_ctx *c, const struct isq_fw_tensor *src, struct isq_fw_tensor *dst,
		  const char *what, int layer, struct isq_errbuf *e)
{
	int rc = c->be->ops->weight_load(c->be, src, dst, e);
	/* a repacked or uploaded copy replaces the host bytes: don't hold both */
	if (!rc && dst->data != src->data) {
		if (src->file_backed)
			isq_pages_drop(src->data, src->row_bytes * (size_t)src->rows);
		else if (c->host_copied)
			c->host_copied(c->host_copied_ud, src);
	}
	if (rc) {
		if (layer >= 0)
			isq_errbuf_prefix(e, "layer %d %s", layer, what);
		else
			isq_errbuf_prefix(e, "%s", what);
	}
	return rc;
}

static float *alloc_act(struct isq_fw_ctx *c, int64_t per_row, int *rc, struct isq_errbuf *e)
{
	if (*rc)
		return NULL;
	float *p = c->be->ops->alloc(c->be, (size_t)c->n_batch * (size_t)per_row * sizeof(float), e);
	if (!p)
		*rc = e->code ? e->code : ISQ_ENOMEM;
	return p;
}

int isq_fw_new(struct isq_fw_ctx **out, const struct isq_fw_weights *w, struct isq_backend *be,
	       const struct isq_fw_params *p, struct isq_errbuf *e)
{
	*out = NULL;
	const struct isq_fw_config *cfg = &w->cfg;
	if (cfg->n_layer < 1 || cfg->n_embd < 1 || cfg->n_head < 1 || cfg->n_head_kv < 1 ||
	    cfg->n_head % cfg->n_head_kv || cfg->head_dim < 2 || cfg->head_dim % 2 || cfg->n_vocab < 1 ||
	    cfg->n_ff < 1)
		return isq_errbuf_set(e, ISQ_EFORMAT, "inconsistent hyperparameters (embedding %lld, heads %d/%d, "
				      "head dim %d, ffn %lld)", (long long)cfg->n_embd, cfg->n_head, cfg->n_head_kv,
				      cfg->head_dim, (long long)cfg->n_ff);
	if (p->n_ctx < 1)
		return isq_errbuf_set(e, ISQ_EINVAL, "context length must be at least 1");
	if (p->kv_type != ISQ_TYPE_F32 && p->kv_type != ISQ_TYPE_F16)
		return isq_errbuf_set(e, ISQ_EINVAL, "KV cache type must be f32 or f16");
	if (w->spent)
		return isq_errbuf_set(e, ISQ_EINVAL, "these weights were handed to a context that freed its copies");
	int64_t d = cfg->n_embd, hd = cfg->head_dim, nq = cfg->n_head * hd, nkv = cfg->n_head_kv * hd;
	int rc = check_matrix(&w->tok_embd, "token embedding", -1, cfg->n_vocab, d, e);
	if (!rc && w->output.data)
		rc = check_matrix(&w->output, "output", -1, cfg->n_vocab, d, e);
	if (!rc && !w->output_norm)
		rc = isq_errbuf_set(e, ISQ_EFORMAT, "output norm is missing");
	for (int64_t l = 0; !rc && l < cfg->n_layer; l++) {
		const struct isq_fw_layer *L = &w->layers[l];
		int il = (int)l;
		rc = check_matrix(&L->wq, "attn_q", il, nq, d, e);
		rc = rc ? rc : check_matrix(&L->wk, "attn_k", il, nkv, d, e);
		rc = rc ? rc : check_matrix(&L->wv, "attn_v", il, nkv, d, e);
		rc = rc ? rc : check_matrix(&L->wo, "attn_output", il, d, nq, e);
		rc = rc ? rc : check_matrix(&L->gate, "ffn_gate", il, cfg->n_ff, d, e);
		rc = rc ? rc : check_matrix(&L->up, "ffn_up", il, cfg->n_ff, d, e);
		rc = rc ? rc : check_matrix(&L->down, "ffn_down", il, d, cfg->n_ff, e);
		if (!rc && (!L->attn_norm || !L->ffn_norm))
			rc = isq_errbuf_set(e, ISQ_EFORMAT, "layer %d norm weights are missing", il);
	}
	if (rc)
		return rc;

	struct isq_fw_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return isq_errbuf_set(e, ISQ_ENOMEM, "out of memory");
	c->w = w;
	c->cfg = *cfg;
	c->be = be;
	c->n_ctx = p->n_ctx;
	c->n_batch = p->n_batch > 0 ? p->n_batch : 64;
	c->host_copied = p->host_copied;
	c->host_copied_ud = p->host_copied_ud;
	c->kv_type = p->kv_type == ISQ_TYPE_F16 ? ISQ_TYPE_F16 : ISQ_TYPE_F32;
	c->layers = calloc((size_t)cfg->n_layer, sizeof(*c->layers));
	if (!c->layers) {
		free(c);
		return isq_errbuf_set(e, ISQ_ENOMEM, "out of memory");
	}
	*out = c;
	int64_t max_cols = ISQ_MAX(ISQ_MAX(d, nq), cfg->n_ff);
	rc = be->ops->reserve(be, c->n_batch, max_cols, c->n_ctx, e);
	rc = rc ? rc : load_w(c, &w->tok_embd, &c->tok_embd, "token embedding", -1, e);
	if (!rc && w->output.data)
		rc = load_w(c, &w->output, &c->output, "output", -1, e);
	rc = rc ? rc : upload_vec(c, w->output_norm, d, &c->output_norm, e);
	if (!rc) {
		float *f = malloc((size_t)hd / 2 * sizeof(float));
		if (!f)
			rc = isq_errbuf_set(e, ISQ_ENOMEM, "out of memory");
		else {
			isq_fw_rope_inv_freq(cfg, w->rope_freqs, f);
			rc = upload_vec(c, f, hd / 2, &c->inv_freq, e);
			free(f);
		}
	}
	size_t kv_bytes = (size_t)c->n_ctx * (size_t)nkv * (c->kv_type == ISQ_TYPE_F16 ? 2 : 4);
	for (int64_t l = 0; !rc && l < cfg->n_layer; l++) {
		const struct isq_fw_layer *L = &w->layers[l];
		struct fw_layer_dev *D = &c->layers[l];
		int il = (int)l;
		rc = upload_vec(c, L->attn_norm, d, &D->attn_norm, e);
		rc = rc ? rc : upload_vec(c, L->ffn_norm, d, &D->ffn_norm, e);
		rc = rc ? rc : upload_vec(c, L->q_norm, hd, &D->q_norm, e);
		rc = rc ? rc : upload_vec(c, L->k_norm, hd, &D->k_norm, e);
		rc = rc ? rc : upload_vec(c, L->bq, nq, &D->bq, e);
		rc = rc ? rc : upload_vec(c, L->bk, nkv, &D->bk, e);
		rc = rc ? rc : upload_vec(c, L->bv, nkv, &D->bv, e);
		rc = rc ? rc : load_w(c, &L->wq, &D->wq, "attn_q", il, e);
		rc = rc ? rc : load_w(c, &L->wk, &D->wk, "attn_k", il, e);
		rc = rc ? rc : load_w(c, &L->wv, &D->wv, "attn_v", il, e);
		rc = rc ? rc : load_w(c, &L->wo, &D->wo, "attn_output", il, e);
		rc = rc ? rc : load_w(c, &L->gate, &D->gate, "ffn_gate", il, e);
		rc = rc ? rc : load_w(c, &L->up, &D->up, "ffn_up", il, e);
		rc = rc ? rc : load_w(c, &L->down, &D->down, "ffn_down", il, e);
		if (!rc && !(D->k_cache = be->ops->alloc(be, kv_bytes, e)))
			rc = e->code;
		if (!rc && !(D->v_cache = be->ops->alloc(be, kv_bytes, e)))
			rc = e->code;
	}
	c->x = alloc_act(c, d, &rc, e);
	c->h = alloc_act(c, d, &rc, e);
	c->q = alloc_act(c, nq, &rc, e);
	c->att = alloc_act(c, nq, &rc, e);
	c->k = alloc_act(c, nkv, &rc, e);
	c->v = alloc_act(c, nkv, &rc, e);
	c->g = alloc_act(c, cfg->n_ff, &rc, e);
	c->u = alloc_act(c, cfg->n_ff, &rc, e);
	c->logits = alloc_act(c, cfg->n_vocab, &rc, e);
	if (rc) {
		isq_fw_free(c);
		*out = NULL;
	}
	return rc;
}

void isq_fw_free(struct isq_fw_ctx *c)
{
	if (!c)
		return;
	struct isq_backend *be = c->be;
	const struct isq_backend_ops *o = be->ops;
	for (int64_t l = 0; c->layers && l < c->cfg.n_layer; l++) {
		struct fw_layer_dev *D = &c->layers[l];
		float *vecs[] = { D->attn_norm, D->ffn_norm, D->q_norm, D->k_norm, D->bq, D->bk, D->bv };
		for (size_t i = 0; i < ISQ_ARRAY_SIZE(vecs); i++)
			o->free(be, vecs[i]);
		struct isq_fw_tensor *ws[] = { &D->wq, &D->wk, &D->wv, &D->wo, &D->gate, &D->up, &D->down };
		for (size_t i = 0; i < ISQ_ARRAY_SIZE(ws); i++)
			if (ws[i]->data)
				o->weight_unload(be, ws[i]);
		o->free(be, D->k_cache);
		o->free(be, D->v_cache);
	}
	if (c->tok_embd.data)
		o->weight_unload(be, &c->tok_embd);
	if (c->output.data)
		o->weight_unload(be, &c->output);
	float *bufs[] = { c->output_norm, c->inv_freq, c->x, c->h, c->q, c->k, c->v, c->att, c->g, c->u, c->logits };
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(bufs); i++)
		o->free(be, bufs[i]);
	free(c->layers);
	free(c);
}

void isq_fw_set_observer(struct isq_fw_ctx *c, isq_fw_observer fn, void *ud)
{
	c->observer = fn;
	c->observer_ud = ud;
}

static void observe(struct isq_fw_ctx *c, int layer, enum isq_fw_role role, const float *x, int n, int64_t cols)
{
	if (c->observer)
		c->observer(c->observer_ud, layer, role, x, n, cols);
}

/* One batch of at most n_batch rows; logits of `n_out` rows ending at the last go to out. */
static void eval_batch(struct isq_fw_ctx *c, const int32_t *ids, int n, int64_t pos, float *out, int n_out)
{
	struct isq_backend *be = c->be;
	const struct isq_backend_ops *o = be->ops;
	const struct isq_fw_config *cfg = &c->cfg;
	int64_t d = cfg->n_embd, hd = cfg->head_dim, nq = cfg->n_head * hd;
	struct isq_attn_shape as = {
		.n_tok = n, .pos0 = pos, .n_head = cfg->n_head, .n_head_kv = cfg->n_head_kv,
		.head_dim = cfg->head_dim, .n_ctx = c->n_ctx, .kv_type = c->kv_type,
	};
	o->get_rows(be, &c->tok_embd, ids, n, c->x);
	for (int64_t l = 0; l < cfg->n_layer; l++) {
		struct fw_layer_dev *L = &c->layers[l];
		int il = (int)l;
		o->rms_norm(be, c->x, L->attn_norm, c->h, d, n, cfg->norm_eps);
		observe(c, il, ISQ_FW_ATTN_QKV, c->h, n, d);
		o->matmul(be, &L->wq, L->bq, c->h, c->q, n);
		o->matmul(be, &L->wk, L->bk, c->h, c->k, n);
		o->matmul(be, &L->wv, L->bv, c->h, c->v, n);
		if (L->q_norm)
			o->rms_norm(be, c->q, L->q_norm, c->q, hd, (int64_t)n * cfg->n_head, cfg->norm_eps);
		if (L->k_norm)
			o->rms_norm(be, c->k, L->k_norm, c->k, hd, (int64_t)n * cfg->n_head_kv, cfg->norm_eps);
		o->rope(be, c->q, n, cfg->n_head, cfg->head_dim, pos, c->inv_freq, cfg->rope_neox);
		o->rope(be, c->k, n, cfg->n_head_kv, cfg->head_dim, pos, c->inv_freq, cfg->rope_neox);
		o->attention(be, &as, c->q, c->k, c->v, L->k_cache, L->v_cache, c->att);
		observe(c, il, ISQ_FW_ATTN_OUTPUT, c->att, n, nq);
		o->matmul(be, &L->wo, NULL, c->att, c->h, n);
		o->add(be, c->x, c->h, (int64_t)n * d);
		o->rms_norm(be, c->x, L->ffn_norm, c->h, d, n, cfg->norm_eps);
		observe(c, il, ISQ_FW_FFN_GATE_UP, c->h, n, d);
		o->matmul(be, &L->gate, NULL, c->h, c->g, n);
		o->matmul(be, &L->up, NULL, c->h, c->u, n);
		o->swiglu(be, c->g, c->u, (int64_t)n * cfg->n_ff);
		observe(c, il, ISQ_FW_FFN_DOWN, c->g, n, cfg->n_ff);
		o->matmul(be, &L->down, NULL, c->g, c->h, n);
		o->add(be, c->x, c->h, (int64_t)n * d);
	}
	if (n_out <= 0)
		return;
	/* only the rows whose logits are wanted go through the (large) output matrix */
	const float *xs = c->x + (size_t)(n - n_out) * d;
	o->rms_norm(be, xs, c->output_norm, c->h, d, n_out, cfg->norm_eps);
	observe(c, -1, ISQ_FW_OUTPUT, c->h, n_out, d);
	o->matmul(be, c->output.data ? &c->output : &c->tok_embd, NULL, c->h, c->logits, n_out);
	o->read(be, out, c->logits, (size_t)n_out * (size_t)cfg->n_vocab * sizeof(float));
}

int isq_fw_eval(struct isq_fw_ctx *c, const int32_t *ids, int n, int64_t pos, float *logits, unsigned flags,
		struct isq_errbuf *e)
{
	if (n < 0 || pos < 0 || pos + n > c->n_ctx)
		return isq_errbuf_set(e, ISQ_EINVAL, "%lld positions do not fit a context of %lld",
				      (long long)(pos + n), (long long)c->n_ctx);
	for (int i = 0; i < n; i++)
		if (ids[i] < 0 || ids[i] >= c->cfg.n_vocab)
			return isq_errbuf_set(e, ISQ_EINVAL, "token id %d is out of range (vocabulary of %lld)",
					      (int)ids[i], (long long)c->cfg.n_vocab);
	int all = (flags & ISQ_FW_LOGITS_ALL) != 0;
	for (int done = 0; done < n;) {
		int m = ISQ_MIN(c->n_batch, n - done);
		int last = done + m == n;
		int n_out = logits ? (all ? m : (last ? 1 : 0)) : 0;
		float *dst = logits ? (all ? logits + (size_t)done * (size_t)c->cfg.n_vocab : logits) : NULL;
		eval_batch(c, ids + done, m, pos + done, dst, n_out);
		done += m;
	}
	return 0;
}
