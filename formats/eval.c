/* eval.c - perplexity and KL divergence of a model over a text (see eval.h). */
#include "eval.h"
#include "progress.h"
#include "io.h"

#include <ctype.h>
#include <libgen.h>
#include <math.h>

void isq_eval_acc_add(struct isq_eval_acc *a, double v)
{
	a->n++;
	a->s += v;
	a->s2 += v * v;
}

double isq_eval_acc_mean(const struct isq_eval_acc *a)
{
	return a->n ? a->s / a->n : 0;
}

double isq_eval_acc_err(const struct isq_eval_acc *a)
{
	if (a->n < 2)
		return 0;
	double m = isq_eval_acc_mean(a), var = a->s2 / a->n - m * m;
	return var > 0 ? sqrt(var / (a->n - 1)) : 0;
}

int64_t isq_eval_log_softmax(const float *x, int64_t n, double *lp)
{
	int64_t arg = 0;
	for (int64_t i = 1; i < n; i++)
		if (x[i] > x[arg])
			arg = i;
	double max = x[arg], sum = 0;
	for (int64_t i = 0; i < n; i++)
		sum += exp((double)x[i] - max);
	double lse = log(sum) + max;
	for (int64_t i = 0; i < n; i++)
		lp[i] = (double)x[i] - lse;
	return arg;
}

double isq_eval_percentile(const double *v, size_t n, double f)
{
	double p = f * (double)(n - 1);
	size_t i = (size_t)p;
	p -= (double)i;
	return (1 - p) * v[i] + p * v[i + 1 < n ? i + 1 : n - 1];
}

double isq_eval_top1_pct(const struct isq_eval_result *r)
{
	return r->scored ? 100.0 * (double)r->same_top / (double)r->scored : 0;
}

double isq_eval_top1_err_pct(const struct isq_eval_result *r)
{
	double p = r->scored ? (double)r->same_top / (double)r->scored : 0;
	return r->scored > 1 ? 100.0 * sqrt(p * (1 - p) / (double)(r->scored - 1)) : 0;
}

int64_t isq_eval_window_len(int64_t n, int64_t c, int64_t at)
{
	if (at >= n - 1)
		return 0;
	return n - 1 - at < c ? n - 1 - at : c;
}

/* ---- models ----------------------------------------------------------------- */

/*
 * GGUF files carry their tokenizer; a GGUF without one borrows the
 * tokenizer.json beside it (as isq-run does).
 */
static int load_tokenizer(struct isq_eval_model *m, struct isq_errbuf *e)
{
	m->tok = isq_tokenizer_new();
	if (!m->tok)
		return isq_errbuf_set(e, ISQ_ENOMEM, "out of memory");
	if (m->w.from_gguf) {
		int rc = isq_tokenizer_load_gguf(m->tok, m->w.model.gguf);
		if (rc != ISQ_ENOTFOUND)
			return rc ? isq_errbuf_set(e, rc, "%s: %s", m->path, isq_tokenizer_errmsg(m->tok)) : 0;
	} else if (isq_is_dir(m->path)) {
		int rc = isq_tokenizer_load_hf(m->tok, m->path);
		return rc ? isq_errbuf_set(e, rc, "%s: %s", m->path, isq_tokenizer_errmsg(m->tok)) : 0;
	}
	struct isq_buf side = ISQ_BUF_INIT;
	char *copy = isq_strdup(m->path);
	int rc = !copy || isq_path_join(&side, dirname(copy), "tokenizer.json");
	free(copy);
	if (rc)
		rc = isq_errbuf_set(e, ISQ_ENOMEM, "out of memory");
	else if (!isq_path_exists(side.data))
		rc = isq_errbuf_set(e, ISQ_ENOTFOUND,
				    "%s: no tokenizer (no tokenizer.ggml.* keys or tokenizer.json beside the weights)", m->path);
	else if ((rc = isq_tokenizer_load_hf(m->tok, side.data)))
		rc = isq_errbuf_set(e, rc, "%s: %s", side.data, isq_tokenizer_errmsg(m->tok));
	isq_buf_release(&side);
	return rc;
}

int isq_eval_model_open(struct isq_eval_model *m, const char *path, struct isq_backend *be, int64_t n_ctx,
			enum isq_type kv_type, struct isq_errbuf *e)
{
	memset(m, 0, sizeof(*m));
	m->path = path;
	m->n_ctx = n_ctx;
	int rc = isq_weights_open(&m->w, path);
	if (rc) {
		isq_errbuf_set(e, rc, "%s", isq_errbuf_msg(&m->w.err));
		memset(m, 0, sizeof(*m));
		return rc;
	}
	if ((rc = load_tokenizer(m, e)))
		goto fail;
	/* one batch per chunk, so every matmul sees the whole chunk (llama-perplexity with -b >= -c) */
	struct isq_fw_params fp = { .n_ctx = n_ctx, .n_batch = (int)n_ctx, .kv_type = kv_type,
				    .host_copied = isq_weights_host_copied, .host_copied_ud = &m->w };
	struct isq_errbuf fe = { 0 };
	if ((rc = isq_fw_new(&m->fw, &m->w.fw, be, &fp, &fe))) {
		isq_errbuf_set(e, rc, "%s: %s", path, isq_errbuf_msg(&fe));
		goto fail;
	}
	int64_t train = m->w.fw.cfg.n_ctx_train;
	m->ctx_beyond_train = train > 0 && n_ctx > train;
	return 0;
fail:
	isq_eval_model_close(m);
	return rc;
}

void isq_eval_model_close(struct isq_eval_model *m)
{
	isq_fw_free(m->fw);
	isq_tokenizer_free(m->tok);
	if (m->path)
		isq_weights_release(&m->w);
	memset(m, 0, sizeof(*m));
}

/* ---- text -------------------------------------------------------------------- */

int isq_eval_next_doc(const char **pp, const char *end, const char **da, const char **db)
{
	static const char sep[] = "<|endoftext|>";
	const char *p = *pp;
	if (p >= end)
		return 0;
	/* the document runs to the next separator line, or the end */
	const char *q = p, *stop = end, *next = end;
	while (q < end) {
		const char *nl = memchr(q, '\n', (size_t)(end - q));
		const char *le = nl ? nl : end;
		const char *a = q, *b = le;
		while (a < b && (*a == ' ' || *a == '\t' || *a == '\r'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r'))
			b--;
		if ((size_t)(b - a) == sizeof(sep) - 1 && !memcmp(a, sep, sizeof(sep) - 1)) {
			stop = q;
			next = nl ? nl + 1 : end;
			break;
		}
		q = nl ? nl + 1 : end;
	}
	const char *a = p, *b = stop;
	while (a < b && isspace((unsigned char)*a))
		a++;
	while (b > a && isspace((unsigned char)b[-1]))
		b--;
	*pp = next;
	*da = a;
	*db = b;
	return 1;
}

/* Split the text at lines "<|endoftext|>"; each document stripped of surrounding whitespace, empty ones dropped. */
static int tokenize_docs(struct isq_eval_text *t, const struct isq_eval_model *m, const char *path, const char *p,
			 size_t len, struct isq_errbuf *e)
{
	size_t cap = 64, cap_ids = 0;
	t->start = malloc(cap * sizeof(*t->start));
	if (!t->start)
		return isq_errbuf_set(e, ISQ_ENOMEM, "out of memory");
	t->start[0] = 0;
	const char *end = p + len, *a, *b;
	while (isq_eval_next_doc(&p, end, &a, &b)) {
		if (a == b)
			continue;
		int32_t *ids = NULL;
		size_t n = 0;
		int rc = isq_tokenizer_encode(m->tok, a, (size_t)(b - a), ISQ_TOKENIZER_ADD_SPECIAL | ISQ_TOKENIZER_LITERAL,
					      &ids, &n);
		if (rc)
			return isq_errbuf_set(e, rc, "%s: %s", path, isq_tokenizer_errmsg(m->tok));
		if (t->n + n > cap_ids) {
			cap_ids = 2 * (t->n + n);
			int32_t *v = realloc(t->ids, cap_ids * sizeof(*t->ids));
			if (!v) {
				free(ids);
				return isq_errbuf_set(e, ISQ_ENOMEM, "out of memory");
			}
			t->ids = v;
		}
		if (t->n_spans + 2 > cap) {
			cap *= 2;
			size_t *v = realloc(t->start, cap * sizeof(*t->start));
			if (!v) {
				free(ids);
				return isq_errbuf_set(e, ISQ_ENOMEM, "out of memory");
			}
			t->start = v;
		}
		memcpy(t->ids + t->n, ids, n * sizeof(*ids));
		free(ids);
		t->n += n;
		t->start[++t->n_spans] = t->n;
	}
	if (!t->n_spans)
		return isq_errbuf_set(e, ISQ_EINVAL, "%s: no document to score", path);
	return 0;
}

int isq_eval_text_load(struct isq_eval_text *t, const struct isq_eval_model *m, const char *path, int per_doc,
		       struct isq_errbuf *e)
{
	struct isq_buf buf = ISQ_BUF_INIT;
	memset(t, 0, sizeof(*t));
	int rc = isq_read_file(path, &buf, e);
	if (rc)
		return rc;
	const char *p = buf.data ? buf.data : "";
	if (per_doc) {
		rc = tokenize_docs(t, m, path, p, buf.len, e);
	} else {
		/* as llama-perplexity: BOS if the vocabulary adds one, special-token text taken literally */
		rc = isq_tokenizer_encode(m->tok, p, buf.len, ISQ_TOKENIZER_ADD_SPECIAL | ISQ_TOKENIZER_LITERAL, &t->ids,
					  &t->n);
		if (rc)
			rc = isq_errbuf_set(e, rc, "%s: %s", path, isq_tokenizer_errmsg(m->tok));
		else if (!(t->start = malloc(2 * sizeof(*t->start))))
			rc = isq_errbuf_set(e, ISQ_ENOMEM, "out of memory");
		else {
			t->start[0] = 0;
			t->start[1] = t->n;
			t->n_spans = 1;
		}
	}
	isq_buf_release(&buf);
	if (rc)
		isq_eval_text_release(t);
	return rc;
}

void isq_eval_text_release(struct isq_eval_text *t)
{
	free(t->ids);
	free(t->start);
	memset(t, 0, sizeof(*t));
}
