/* eval-score.c - llama-perplexity's chunks, --per-document windows and the KL of each prediction (see eval.h). */
#include "eval.h"
#include "progress.h"

#include <math.h>

/* Where a scored prediction's base distribution comes from, and what is done with each one. */
struct scorer {
	int64_t nv;
	const struct isq_eval_params *p;
	struct isq_eval_result *r;
	double *lp, *lpb;  /* log-softmax of MODEL, of a base model */
	float *lpk;        /* a .kld record, decoded */
	double *kls;       /* every KL value, for the median and percentiles */
	size_t n_kl, cap_kl;
};

static int scorer_init(struct scorer *s, int64_t nv, const struct isq_eval_params *p, struct isq_eval_result *r,
		       struct isq_errbuf *e)
{
	memset(s, 0, sizeof(*s));
	memset(r, 0, sizeof(*r));
	s->nv = nv;
	s->p = p;
	s->r = r;
	s->lp = isq_mallocarray((size_t)nv, sizeof(double));
	s->lpb = isq_mallocarray((size_t)nv, sizeof(double));
	s->lpk = isq_mallocarray((size_t)nv, sizeof(float));
	if (!s->lp || !s->lpb || !s->lpk)
		return isq_errbuf_set(e, ISQ_ENOMEM, "out of memory");
	return 0;
}

static void scorer_release(struct scorer *s)
{
	free(s->kls);
	free(s->lpk);
	free(s->lpb);
	free(s->lp);
	s->kls = NULL, s->lpk = NULL, s->lpb = NULL, s->lp = NULL;
}

double isq_eval_kl(const double *lpb, const double *lp, int64_t n)
{
	double kl = 0;
	for (int64_t i = 0; i < n; i++)
		kl += exp(lpb[i]) * (lpb[i] - lp[i]);
	return kl;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void scorer_finish(struct scorer *s, double t0)
{
	struct isq_eval_result *r = s->r;
	r->seconds = isq_now() - t0;
	r->base_exact = !s->p->kld || s->p->kld->has_trailer;
	if (s->n_kl) {
		qsort(s->kls, s->n_kl, sizeof(double), cmp_double);
		size_t n = s->n_kl;
		r->kl_median = n % 2 ? s->kls[n / 2] : 0.5 * (s->kls[n / 2] + s->kls[n / 2 - 1]);
		r->kl_p90 = isq_eval_percentile(s->kls, n, 0.90);
		r->kl_p95 = isq_eval_percentile(s->kls, n, 0.95);
		r->kl_p99 = isq_eval_percentile(s->kls, n, 0.99);
		r->kl_max = s->kls[n - 1];
	}
	scorer_release(s);
}

/* Score the prediction of TGT from MODEL's logits LG and, in the KL modes, the base's LGB or .kld record REC. */
static int score(struct scorer *s, const float *lg, const float *lgb, int64_t rec, int32_t tgt, struct isq_errbuf *e)
{
	struct isq_eval_result *r = s->r;
	const struct isq_kld *kld = s->p->kld;
	struct isq_kld_writer *kw = s->p->kw;
	int64_t nv = s->nv, top = isq_eval_log_softmax(lg, nv, s->lp);
	isq_eval_acc_add(&r->nll, -s->lp[tgt]);
	r->scored++;
	int rc;
	if (kw && (rc = isq_kld_writer_add(kw, lg, tgt)))
		return isq_errbuf_set(e, rc, "%s", isq_errbuf_msg(&kw->out->err));
	if (!lgb && !kld)
		return 0;
	double kl = 0, nllb;
	int64_t topb;
	if (lgb) {
		/* exact: both distributions from their float logits, in double */
		topb = isq_eval_log_softmax(lgb, nv, s->lpb);
		nllb = -s->lpb[tgt];
		kl = isq_eval_kl(s->lpb, s->lp, nv);
	} else {
		/* as llama-perplexity: the 16-bit base, its tokens below max - 16 nats left out */
		if (isq_kld_record(kld, rec, s->lpk))
			return isq_errbuf_set(e, ISQ_EFORMAT, "%s: record %lld is corrupt (scale or offset not finite)",
					      s->p->kld_path, (long long)rec);
		int32_t t32;
		isq_kld_base(kld, rec, s->lpk, tgt, &nllb, &t32);
		topb = t32;
		for (int64_t i = 0; i < nv; i++)
			if (s->lpk[i] > -16.f)
				kl += exp((double)s->lpk[i]) * ((double)s->lpk[i] - s->lp[i]);
	}
	/* rounding when the two distributions are the same; the 16-bit estimate's own
	 * error may take it below 0 too, and llama-perplexity keeps that, so do we */
	if (kl < 0 && lgb)
		kl = 0;
	if (s->n_kl == s->cap_kl) {
		size_t cap = s->cap_kl ? 2 * s->cap_kl : 4096;
		double *v = realloc(s->kls, cap * sizeof(*s->kls));
		if (!v)
			return isq_errbuf_set(e, ISQ_ENOMEM, "out of memory");
		s->kls = v;
		s->cap_kl = cap;
	}
	s->kls[s->n_kl++] = kl;
	isq_eval_acc_add(&r->nll_base, nllb);
	isq_eval_acc_add(&r->kl, kl);
	double dp = exp(s->lp[tgt]) - exp(-nllb);
	isq_eval_acc_add(&r->dp2, dp * dp);
	r->same_top += top == topb;
	return 0;
}

static int eval_rows(struct isq_eval_model *m, const int32_t *ids, int n, float *logits, int64_t k,
		     struct isq_errbuf *e)
{
	struct isq_errbuf fe = { 0 };
	int rc = isq_fw_eval(m->fw, ids, n, 0, logits, ISQ_FW_LOGITS_ALL, &fe);
	return rc ? isq_errbuf_set(e, rc, "%s: chunk %lld: %s", m->path, (long long)k + 1, isq_errbuf_msg(&fe)) : 0;
}

/*
 * llama-perplexity's chunking: the whole text tokenized once, chunk k is
 * tokens [k*c, (k+1)*c) with its first token replaced by BOS, and the logits
 * of positions c/2 .. c-2 score the token after each.  With BASE, the same
 * chunks through the base model give the KL divergence, computed exactly
 * from both models' log-softmax (no 16-bit clipping of the base); with a
 * .kld file, the base's saved records stand in for it.
 */
static int measure_chunks(struct isq_eval_model *m, struct isq_eval_model *base, struct scorer *s, const int32_t *ids,
			  size_t n_ids, struct isq_errbuf *e)
{
	const struct isq_eval_params *p = s->p;
	struct isq_eval_result *r = s->r;
	int64_t c = p->n_ctx, nv = s->nv;
	int64_t n_chunks = (int64_t)n_ids / c;
	/* a saved file's chunks are whatever llama-perplexity or --kl-base kept */
	if (!p->kld && (int64_t)n_ids < 2 * c)
		return isq_errbuf_set(e, ISQ_EINVAL, "%s: %zu tokens, fewer than 2 x %lld (two chunks) that perplexity needs",
				      p->text_path, n_ids, (long long)c);
	if (p->max_chunks > 0 && n_chunks > p->max_chunks)
		n_chunks = p->max_chunks;
	int32_t bos = isq_tokenizer_add_bos(m->tok) ? isq_tokenizer_bos(m->tok) : -1;
	int64_t first = c / 2;
	float *lg = isq_mallocarray((size_t)(c * nv), sizeof(float));
	float *lgb = base ? isq_mallocarray((size_t)(c * nv), sizeof(float)) : NULL;
	int32_t *chunk = isq_mallocarray((size_t)c, sizeof(int32_t));
	int rc = 0;
	if (!lg || !chunk || (base && !lgb)) {
		rc = isq_errbuf_set(e, ISQ_ENOMEM, "out of memory");
		goto out;
	}
	r->n_tokens = (int64_t)n_ids;
	r->n_chunks = n_chunks;
	if (p->kw && (rc = isq_kld_writer_begin(p->kw, p->kw->out, (uint32_t)c, (int32_t)nv, (int32_t)n_chunks, ids))) {
		rc = isq_errbuf_set(e, rc, "%s",
				    p->kw->out->err.code ? isq_errbuf_msg(&p->kw->out->err) : "cannot write the .kld header");
		goto out;
	}
	double t0 = isq_now();
	for (int64_t k = 0; k < n_chunks; k++) {
		memcpy(chunk, ids + k * c, (size_t)c * sizeof(*chunk));
		if (bos >= 0)
			chunk[0] = bos;
		if ((rc = eval_rows(m, chunk, (int)c, lg, k, e)) || (base && (rc = eval_rows(base, chunk, (int)c, lgb, k, e))))
			goto out;
		for (int64_t q = first; q < c - 1; q++)
			if ((rc = score(s, lg + q * nv, base ? lgb + q * nv : NULL, k * (c - 1 - first) + q - first,
					ids[k * c + q + 1], e)))
				goto out;
		if (p->progress)
			p->progress(p->ud, k + 1, exp(isq_eval_acc_mean(&r->nll)));
	}
	scorer_finish(s, t0);
out:
	free(chunk);
	free(lgb);
	free(lg);
	return rc;
}

/*
 * --per-document: each document is BOS + its tokens, and every next token is
 * scored.  A document longer than the context goes in consecutive windows of
 * -c inputs, each a fresh sequence from position 0 with no BOS put in; the
 * prediction from a window's last input to the next window's first token is
 * scored too (the reference figure of ../shared/README.md counts it).
 */
static int measure_docs(struct isq_eval_model *m, struct isq_eval_model *base, struct scorer *s,
			const struct isq_eval_text *t, struct isq_errbuf *e)
{
	const struct isq_eval_params *p = s->p;
	struct isq_eval_result *r = s->r;
	int64_t c = p->n_ctx, nv = s->nv;
	float *lg = isq_mallocarray((size_t)(c * nv), sizeof(float));
	float *lgb = base ? isq_mallocarray((size_t)(c * nv), sizeof(float)) : NULL;
	int rc = 0;
	if (!lg || (base && !lgb)) {
		rc = isq_errbuf_set(e, ISQ_ENOMEM, "out of memory");
		goto out;
	}
	r->n_tokens = (int64_t)t->n;
	r->n_docs = (int64_t)t->n_spans;
	double t0 = isq_now();
	for (size_t d = 0; d < t->n_spans; d++) {
		const int32_t *doc = t->ids + t->start[d];
		int64_t n = (int64_t)(t->start[d + 1] - t->start[d]), len;
		for (int64_t at = 0; (len = isq_eval_window_len(n, c, at)) > 0; at += c) {
			if ((rc = eval_rows(m, doc + at, (int)len, lg, r->n_chunks, e)) ||
			    (base && (rc = eval_rows(base, doc + at, (int)len, lgb, r->n_chunks, e))))
				goto out;
			for (int j = 0; j < len; j++)
				if ((rc = score(s, lg + j * nv, base ? lgb + j * nv : NULL, 0, doc[at + j + 1], e)))
					goto out;
			r->n_chunks++;
		}
		if (p->progress && (d + 1) % 100 == 0)
			p->progress(p->ud, (int64_t)d + 1, exp(isq_eval_acc_mean(&r->nll)));
	}
	scorer_finish(s, t0);
out:
	free(lgb);
	free(lg);
	return rc;
}

int isq_eval_chunks(struct isq_eval_model *m, struct isq_eval_model *base, const int32_t *ids, size_t n,
		    const struct isq_eval_params *p, struct isq_eval_result *r, struct isq_errbuf *e)
{
	struct scorer s;
	int rc = scorer_init(&s, m->w.fw.cfg.n_vocab, p, r, e);
	if (!rc)
		rc = measure_chunks(m, base, &s, ids, n, e);
	scorer_release(&s);
	return rc;
}

int isq_eval_measure(struct isq_eval_model *m, struct isq_eval_model *base, const struct isq_eval_text *t,
		     const struct isq_eval_params *p, struct isq_eval_result *r, struct isq_errbuf *e)
{
	if (base && base->w.fw.cfg.n_vocab != m->w.fw.cfg.n_vocab)
		return isq_errbuf_set(e, ISQ_EINVAL, "%s: vocabulary of %lld tokens, but %s has %lld", base->path,
				      (long long)base->w.fw.cfg.n_vocab, m->path, (long long)m->w.fw.cfg.n_vocab);
	if (!p->per_doc)
		return isq_eval_chunks(m, base, t->ids, t->n, p, r, e);
	struct scorer s;
	int rc = scorer_init(&s, m->w.fw.cfg.n_vocab, p, r, e);
	if (!rc)
		rc = measure_docs(m, base, &s, t, e);
	scorer_release(&s);
	return rc;
}
