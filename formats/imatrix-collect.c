/* imatrix-collect.c - llama-imatrix's statistic from the forward pass's observer. */
#include "imatrix-collect.h"
#include "tokenizer.h"
#include "weights.h"

#define N_ROLES 4 /* the per-layer roles: QKV, ATTN_OUTPUT, FFN_GATE_UP, FFN_DOWN */

/* The GGUF weights each per-layer role feeds. */
static const char *const role_names[N_ROLES][3] = {
	[ISQ_FW_ATTN_QKV] = { "attn_q", "attn_k", "attn_v" },
	[ISQ_FW_ATTN_OUTPUT] = { "attn_output" },
	[ISQ_FW_FFN_GATE_UP] = { "ffn_gate", "ffn_up" },
	[ISQ_FW_FFN_DOWN] = { "ffn_down" },
};

static int slot_init(struct isq_imatrix_slot *s, int64_t cols)
{
	s->cols = cols;
	s->count = 0;
	s->sums = cols > 0 ? calloc((size_t)cols, sizeof(double)) : NULL;
	return cols > 0 && !s->sums ? ISQ_ENOMEM : 0;
}

int isq_imatrix_collect_init(struct isq_imatrix_collect *c, const struct isq_fw_weights *w, unsigned flags,
			     struct isq_errbuf *e)
{
	memset(c, 0, sizeof(*c));
	c->n_layer = w->cfg.n_layer;
	c->flags = flags;
	c->tied_output = w->output.data == NULL;
	c->slots = calloc((size_t)(c->n_layer * N_ROLES), sizeof(*c->slots));
	int rc = c->slots || !c->n_layer ? 0 : ISQ_ENOMEM;
	for (int64_t il = 0; il < c->n_layer && !rc; il++) {
		const struct isq_fw_layer *L = &w->layers[il];
		struct isq_imatrix_slot *s = &c->slots[il * N_ROLES];
		rc = slot_init(&s[ISQ_FW_ATTN_QKV], L->wq.cols);
		rc = rc ? rc : slot_init(&s[ISQ_FW_ATTN_OUTPUT], L->wo.cols);
		rc = rc ? rc : slot_init(&s[ISQ_FW_FFN_GATE_UP], L->gate.cols);
		rc = rc ? rc : slot_init(&s[ISQ_FW_FFN_DOWN], L->down.cols);
	}
	if (!rc && (flags & ISQ_IMATRIX_COLLECT_OUTPUT))
		rc = slot_init(&c->output, c->tied_output ? w->tok_embd.cols : w->output.cols);
	if (rc) {
		isq_imatrix_collect_release(c);
		return isq_errbuf_set(e, rc, NULL);
	}
	return 0;
}

void isq_imatrix_collect_release(struct isq_imatrix_collect *c)
{
	for (int64_t i = 0; c->slots && i < c->n_layer * N_ROLES; i++)
		free(c->slots[i].sums);
	free(c->slots);
	free(c->output.sums);
	memset(c, 0, sizeof(*c));
}

void isq_imatrix_collect_observe(void *ud, int layer, enum isq_fw_role role, const float *x, int n_tok,
				 int64_t cols)
{
	struct isq_imatrix_collect *c = ud;
	struct isq_imatrix_slot *s = NULL;
	if (role == ISQ_FW_OUTPUT) {
		if (!(c->flags & ISQ_IMATRIX_COLLECT_OUTPUT))
			return; /* not wanted: llama-imatrix skips it by default */
		s = &c->output;
	} else if (layer >= 0 && layer < c->n_layer && (int)role >= 0 && (int)role < N_ROLES) {
		s = &c->slots[(int64_t)layer * N_ROLES + role];
	}
	if (!s || s->cols != cols || n_tok < 0) {
		c->n_ignored++;
		return;
	}
	double *sum = s->sums;
	for (int t = 0; t < n_tok; t++) {
		const float *row = x + (int64_t)t * cols;
		for (int64_t j = 0; j < cols; j++)
			sum[j] += (double)row[j] * row[j];
	}
	s->count += n_tok;
}

/* Add slot S to IM's entry NAME; with DRY only check that they can be added. */
static int add_slot(struct isq_imatrix *im, const char *name, const struct isq_imatrix_slot *s, int dry)
{
	const struct isq_imatrix_entry *old = isq_imatrix_find(im, name);
	if (old && (old->n_per_row != s->cols || old->n_mat != 1))
		return isq_errbuf_set(&im->err, ISQ_EINVAL,
				      "entry '%s' has %lld columns in the model and %lld in the imatrix (another model?)",
				      name, (long long)s->cols, (long long)(old->n_per_row * old->n_mat));
	if (dry || !s->count)
		return 0;
	struct isq_imatrix_entry *en = isq_imatrix_get_or_add(im, name, s->cols, 1);
	if (!en)
		return isq_errbuf_set(&im->err, ISQ_ENOMEM, NULL);
	/* adding in double and rounding once keeps a merge with an earlier run as exact as a float allows */
	for (int64_t j = 0; j < s->cols; j++)
		en->sums[j] = (float)((double)en->sums[j] + s->sums[j]);
	en->counts[0] = (float)((double)en->counts[0] + (double)s->count);
	return 0;
}

static int visit(const struct isq_imatrix_collect *c, struct isq_imatrix *im, int dry)
{
	char name[64];
	for (int64_t il = 0; il < c->n_layer; il++) {
		for (int r = 0; r < N_ROLES; r++) {
			for (int k = 0; k < 3 && role_names[r][k]; k++) {
				snprintf(name, sizeof(name), "blk.%lld.%s.weight", (long long)il, role_names[r][k]);
				int rc = add_slot(im, name, &c->slots[il * N_ROLES + r], dry);
				if (rc)
					return rc;
			}
		}
	}
	if (c->flags & ISQ_IMATRIX_COLLECT_OUTPUT)
		return add_slot(im, c->tied_output ? "token_embd.weight" : "output.weight", &c->output, dry);
	return 0;
}

int isq_imatrix_collect_check(const struct isq_imatrix_collect *c, struct isq_imatrix *im)
{
	return visit(c, im, 1);
}

int isq_imatrix_collect_finish(const struct isq_imatrix_collect *c, struct isq_imatrix *im)
{
	/* checking first means a mismatch leaves IM unchanged */
	int rc = visit(c, im, 1);
	return rc ? rc : visit(c, im, 0);
}

int isq_imatrix_compute(struct isq_imatrix *im, const struct isq_fw_weights *w, struct isq_backend *be,
			const int32_t *ids, size_t n, const struct isq_imatrix_params *p, int64_t *n_chunks,
			struct isq_errbuf *e)
{
	int64_t cs = p->chunk_size > 0 ? p->chunk_size : 512;
	if (n_chunks)
		*n_chunks = 0;
	/* the observer dereferences the matmul inputs: they must be host memory */
	if (strcmp(be->name, "cpu"))
		return isq_errbuf_set(e, ISQ_EINVAL, "the %s backend keeps activations off the host; use --backend cpu",
				      be->name);
	if (cs > INT32_MAX)
		return isq_errbuf_set(e, ISQ_EINVAL, "chunk size %lld is too large", (long long)cs);
	int64_t total = (int64_t)(n / (size_t)cs);
	if (p->max_chunks > 0 && total > p->max_chunks)
		total = p->max_chunks;
	if (total < 1)
		return isq_errbuf_set(e, ISQ_EINVAL, "the text has %zu tokens, fewer than one chunk of %lld", n,
				      (long long)cs);
	if (p->bos >= w->cfg.n_vocab)
		return isq_errbuf_set(e, ISQ_EINVAL, "BOS id %d is out of the model's vocabulary (%lld)", (int)p->bos,
				      (long long)w->cfg.n_vocab);

	struct isq_imatrix_collect col;
	int rc = isq_imatrix_collect_init(&col, w, p->flags, e);
	if (rc)
		return rc;
	/* an imatrix of another model is refused before the work, not after */
	if ((rc = isq_imatrix_collect_check(&col, im)) != 0) {
		isq_imatrix_collect_release(&col);
		return isq_errbuf_set(e, rc, "%s", isq_errbuf_msg(&im->err));
	}
	/* one batch per chunk: every matmul sees the whole chunk, as in llama-imatrix with -b >= -c */
	struct isq_fw_params fp = { .n_ctx = cs, .n_batch = (int)cs, .kv_type = ISQ_TYPE_F32 };
	struct isq_fw_ctx *fw = NULL;
	int32_t *chunk = malloc((size_t)cs * sizeof(*chunk));
	/* the output projection runs only on rows whose logits are asked for */
	int want_out = (p->flags & ISQ_IMATRIX_COLLECT_OUTPUT) != 0;
	float *logits = want_out ? isq_mallocarray((size_t)cs * (size_t)w->cfg.n_vocab, sizeof(float)) : NULL;
	if (!chunk || (want_out && !logits))
		rc = isq_errbuf_set(e, ISQ_ENOMEM, NULL);
	rc = rc ? rc : isq_fw_new(&fw, w, be, &fp, e);
	if (!rc)
		isq_fw_set_observer(fw, isq_imatrix_collect_observe, &col);
	int64_t done = 0;
	for (; done < total && !rc; done++) {
		memcpy(chunk, ids + done * cs, (size_t)cs * sizeof(*chunk));
		if (p->bos >= 0)
			chunk[0] = p->bos;
		/* position 0 starts over with an empty cache */
		rc = isq_fw_eval(fw, chunk, (int)cs, 0, logits, want_out ? ISQ_FW_LOGITS_ALL : 0, e);
		if (rc)
			isq_errbuf_prefix(e, "chunk %lld", (long long)done + 1);
		else if (p->progress)
			p->progress(p->progress_ud, done + 1, total);
	}
	isq_fw_free(fw);
	free(chunk);
	free(logits);
	if (!rc && col.n_ignored)
		rc = isq_errbuf_set(e, ISQ_EFORMAT, "%lld matmul inputs of an unexpected shape", (long long)col.n_ignored);
	if (!rc && (rc = isq_imatrix_collect_finish(&col, im)) != 0)
		isq_errbuf_set(e, rc, "%s", isq_errbuf_msg(&im->err));
	if (!rc) {
		im->chunk_count += done;
		im->chunk_size = cs;
		if (n_chunks)
			*n_chunks = done;
	}
	isq_imatrix_collect_release(&col);
	return rc;
}

static int put_dataset_first(struct isq_imatrix *im, const char *name)
{
	char *ds = isq_strdup(name);
	char **grown = ds ? realloc(im->datasets, (im->n_datasets + 1) * sizeof(*grown)) : NULL;
	if (!grown) {
		free(ds);
		return ISQ_ENOMEM;
	}
	/* first: llama-quantize records datasets[0] as quantize.imatrix.dataset */
	memmove(grown + 1, grown, im->n_datasets * sizeof(*grown));
	grown[0] = ds;
	im->datasets = grown;
	im->n_datasets++;
	return 0;
}

int isq_imatrix_from_text(struct isq_imatrix *im, const char *model, const char *text, int n_threads,
			  const struct isq_imatrix_params *p, struct isq_imatrix_text_info *info, struct isq_errbuf *e)
{
	struct isq_imatrix_text_info dummy;
	info = info ? info : &dummy;
	memset(info, 0, sizeof(*info));
	info->bos = -1;
	const char *tname = strcmp(text, "-") ? text : "<stdin>";
	struct isq_backend *be = NULL;
	struct isq_tokenizer *tok = NULL;
	struct isq_buf buf = ISQ_BUF_INIT;
	int32_t *ids = NULL;
	struct isq_weights w;
	int rc = isq_weights_open(&w, model);
	if (rc) {
		isq_errbuf_set(e, rc, "%s", isq_errbuf_msg(&w.err));
		return rc;
	}
	info->n_ctx_train = w.fw.cfg.n_ctx_train;
	tok = isq_tokenizer_new();
	if (!tok)
		rc = isq_errbuf_set(e, ISQ_ENOMEM, NULL);
	if (!rc) {
		rc = w.from_gguf ? isq_tokenizer_load_gguf(tok, w.model.gguf) : isq_tokenizer_load_hf(tok, model);
		if (rc)
			isq_errbuf_set(e, rc, "%s: %s", model, isq_tokenizer_errmsg(tok));
	}
	rc = rc ? rc : isq_read_file(text, &buf, e);
	if (!rc && !buf.len)
		rc = isq_errbuf_set(e, ISQ_EINVAL, "%s: the calibration text is empty", tname);
	if (!rc && (rc = isq_tokenizer_encode(tok, buf.data, buf.len, ISQ_TOKENIZER_ADD_SPECIAL | ISQ_TOKENIZER_LITERAL,
					      &ids, &info->n_tokens)) != 0)
		isq_errbuf_set(e, rc, "%s: %s", tname, isq_tokenizer_errmsg(tok));
	isq_buf_release(&buf);
	if (!rc)
		rc = isq_backend_cpu_new(n_threads, &be, e);
	if (!rc) {
		struct isq_imatrix_params q = *p;
		q.bos = info->bos = isq_tokenizer_add_bos(tok) ? isq_tokenizer_bos(tok) : -1;
		info->n_threads = be->n_threads;
		rc = isq_imatrix_compute(im, &w.fw, be, ids, info->n_tokens, &q, &info->n_chunks, e);
		if (rc)
			isq_errbuf_prefix(e, "%s", rc == ISQ_EINVAL ? tname : model);
	}
	if (!rc && put_dataset_first(im, tname))
		rc = isq_errbuf_set(e, ISQ_ENOMEM, NULL);
	free(ids);
	isq_backend_free(be);
	isq_tokenizer_free(tok);
	isq_weights_release(&w);
	return rc;
}
