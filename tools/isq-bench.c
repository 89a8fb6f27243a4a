/* isq-bench - measure a model's quality: perplexity, and KL divergence against a base model. */
#include "convert.h"
#include "forward-bench.h"
#include "io.h"
#include "kld.h"
#include "progress.h"
#include "svg.h"
#include "tensor-error.h"
#include "tokenizer.h"
#include "tool.h"
#include "weights.h"

#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *opt_model, *opt_file, *opt_kl_model, *opt_format, *opt_backend = "cpu";
static int64_t opt_ctx = INT64_MIN, opt_chunks, opt_threads; /* INT64_MIN: no -c given */
static int opt_ppl, opt_json, opt_quiet, opt_verbose;
static const char *opt_kl_base, *opt_kl_file, *opt_sweep, *opt_plot, *opt_imatrix;
static int opt_per_doc;
static int opt_tensors, opt_speed, opt_quant;
static const char *opt_types;
static int64_t opt_n_prompt = -1, opt_n_gen = -1, opt_reps = -1; /* -1: not given */

static const struct isq_opt options[] = {
	ISQ_OPT_STRING('m', "model", &opt_model, "MODEL", "HF directory, safetensors or GGUF file"),
	ISQ_OPT_FLAG(0, "ppl", &opt_ppl, "perplexity of MODEL over the text (llama-perplexity's method)"),
	ISQ_OPT_STRING(0, "kl-model", &opt_kl_model, "BASE", "KL divergence of MODEL from BASE over the text"),
	ISQ_OPT_STRING(0, "kl-base", &opt_kl_base, "OUT", "save MODEL's log-probabilities (llama.cpp's .kld)"),
	ISQ_OPT_STRING(0, "kl", &opt_kl_file, "FILE", "KL divergence of MODEL from a saved .kld file"),
	ISQ_OPT_STRING(0, "sweep", &opt_sweep, "TYPES", "quantize MODEL to each type (or take GGUF files), measure each"),
	ISQ_OPT_STRING(0, "plot", &opt_plot, "FILE", "with --sweep: SVG chart of bits per weight against KL and PPL"),
	ISQ_OPT_STRING(0, "imatrix", &opt_imatrix, "FILE", "with --sweep, --tensors or --quant: importance weights"),
	ISQ_OPT_FLAG(0, "tensors", &opt_tensors, "per-tensor RMSE and cosine of each type (-t), without running MODEL"),
	ISQ_OPT_FLAG(0, "speed", &opt_speed, "prompt and generation tokens/s (llama-bench's method)"),
	ISQ_OPT_FLAG(0, "quant", &opt_quant, "quantizer speed of each type (-t) on MODEL's weights, MB/s"),
	ISQ_OPT_STRING('t', "type", &opt_types, "TYPES", "with --tensors or --quant: types, comma-separated"),
	ISQ_OPT_INT('p', "n-prompt", &opt_n_prompt, "N", "with --speed: prompt tokens (default 512)"),
	ISQ_OPT_INT('n', "n-gen", &opt_n_gen, "N", "with --speed: generated tokens (default 128)"),
	ISQ_OPT_INT('r', "repetitions", &opt_reps, "N", "with --speed: timed repetitions (default 5)"),
	ISQ_OPT_FLAG(0, "per-document", &opt_per_doc, "score every token of each document (split on <|endoftext|>)"),
	ISQ_OPT_STRING('f', "file", &opt_file, "FILE", "evaluation text ('-' = stdin, .zst decompressed)"),
	ISQ_OPT_INT('c', "ctx", &opt_ctx, "N", "tokens per chunk (default 512)"),
	ISQ_OPT_INT(0, "chunks", &opt_chunks, "N", "use at most N chunks (default: all)"),
	ISQ_OPT_STRING(0, "format", &opt_format, "F", "report format: md (default), csv, json"),
	ISQ_OPT_FLAG(0, "json", &opt_json, "the report as one JSON document (same as --format json)"),
	ISQ_OPT_STRING(0, "backend", &opt_backend, "B", "where to compute: cpu (default), cuda, vulkan"),
	ISQ_OPT_INT(0, "threads", &opt_threads, "N", "worker threads (default: all cores)"),
	ISQ_OPT_COUNT('q', "quiet", &opt_quiet, "print less on stderr"),
	ISQ_OPT_COUNT('v', "verbose", &opt_verbose, "print more on stderr"),
	ISQ_OPT_END(),
};

static const char *const usage[] = {
	"-m MODEL --ppl -f FILE [-c N] [--chunks N] [options]",
	"-m MODEL --kl-model BASE -f FILE [-c N] [--chunks N] [options]",
	"-m BASE --kl-base OUT -f FILE [-c N] [--chunks N] [options]",
	"-m MODEL --kl FILE [--chunks N] [options]",
	"-m MODEL --sweep TYPE,TYPE,... -f FILE [--imatrix FILE] [--plot FILE.svg] [options]",
	"-m MODEL --tensors [-t TYPE,TYPE,...] [--imatrix FILE] [options]",
	"-m MODEL --speed [-p N] [-n N] [-r N] [options]",
	"-m MODEL --quant [-t TYPE,TYPE,...] [--imatrix FILE] [options]",
	NULL,
};

static const struct isq_cmd cmd = {
	.name = "isq-bench",
	.usage = usage,
	.summary = "Measure a model's quality on a text: perplexity as llama-perplexity computes it (chunks of\n"
		   "-c tokens, BOS first, the second half of each chunk scored; with --per-document every token\n"
		   "of each document), or the KL divergence of its next-token distributions from a base\n"
		   "model's (run alongside, or saved in llama.cpp's .kld file); --sweep quantizes MODEL to\n"
		   "several types and measures each.  Without a text: the error each type makes in each weight\n"
		   "tensor (--tensors), and speed (--speed, --quant).",
	.opts = options,
};

enum report_format { FMT_MD, FMT_CSV, FMT_JSON };

/* One model ready to evaluate chunks. */
struct model {
	const char *path;
	struct isq_weights w;
	struct isq_tokenizer *tok;
	struct isq_fw_ctx *fw;
};

/* Running sums over scored tokens; means and standard errors as llama-perplexity gives them. */
struct acc {
	double n, s, s2;
};

static void acc_add(struct acc *a, double v)
{
	a->n++;
	a->s += v;
	a->s2 += v * v;
}

static double acc_mean(const struct acc *a)
{
	return a->n ? a->s / a->n : 0;
}

/* Standard error of the mean: sqrt((E[v^2] - E[v]^2) / (N - 1)). */
static double acc_err(const struct acc *a)
{
	if (a->n < 2)
		return 0;
	double m = acc_mean(a), var = a->s2 / a->n - m * m;
	return var > 0 ? sqrt(var / (a->n - 1)) : 0;
}

/*
 * GGUF files carry their tokenizer; a GGUF without one borrows the
 * tokenizer.json beside it (as isq-run does).
 */
static void load_tokenizer(struct model *m)
{
	m->tok = isq_tokenizer_new();
	if (!m->tok)
		isq_die("out of memory");
	if (m->w.from_gguf) {
		int rc = isq_tokenizer_load_gguf(m->tok, m->w.model.gguf);
		if (rc != ISQ_ENOTFOUND) {
			if (rc)
				isq_die("%s: %s", m->path, isq_tokenizer_errmsg(m->tok));
			return;
		}
	} else if (isq_is_dir(m->path)) {
		if (isq_tokenizer_load_hf(m->tok, m->path))
			isq_die("%s: %s", m->path, isq_tokenizer_errmsg(m->tok));
		return;
	}
	struct isq_buf side = ISQ_BUF_INIT;
	char *copy = isq_strdup(m->path);
	if (!copy || isq_path_join(&side, dirname(copy), "tokenizer.json"))
		isq_die("out of memory");
	free(copy);
	if (!isq_path_exists(side.data))
		isq_die("%s: no tokenizer (no tokenizer.ggml.* keys or tokenizer.json beside the weights)", m->path);
	if (isq_tokenizer_load_hf(m->tok, side.data))
		isq_die("%s: %s", side.data, isq_tokenizer_errmsg(m->tok));
	isq_buf_release(&side);
}

static void model_open(struct model *m, const char *path, struct isq_backend *be)
{
	struct isq_errbuf e = { 0 };
	m->path = path;
	if (isq_weights_open(&m->w, path))
		isq_die("%s", isq_errbuf_msg(&m->w.err));
	load_tokenizer(m);
	/* one batch per chunk, so every matmul sees the whole chunk (llama-perplexity with -b >= -c) */
	struct isq_fw_params fp = { .n_ctx = opt_ctx, .n_batch = (int)opt_ctx, .kv_type = ISQ_TYPE_F32 };
	if (isq_fw_new(&m->fw, &m->w.fw, be, &fp, &e))
		isq_die("%s: %s", path, isq_errbuf_msg(&e));
	int64_t train = m->w.fw.cfg.n_ctx_train;
	if (train > 0 && opt_ctx > train)
		isq_warn("%s: chunks of %lld tokens are longer than the model was trained for (%lld)", path,
			 (long long)opt_ctx, (long long)train);
}

static void model_close(struct model *m)
{
	isq_fw_free(m->fw);
	isq_tokenizer_free(m->tok);
	isq_weights_release(&m->w);
}

/*
 * Log-softmax of one row of logits into LP (double sums, as llama.cpp);
 * returns the argmax.
 */
static int64_t log_softmax(const float *x, int64_t n, double *lp)
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

struct result {
	int64_t n_tokens, n_chunks, n_docs, scored;
	struct acc nll, nll_base, kl, dp2;
	int64_t same_top;
	double kl_max, kl_median, kl_p90, kl_p95, kl_p99;
	int base_exact; /* the base's NLL from its exact log-softmax, not from 16-bit values */
	double seconds;
};

/* The text as token ids: one span per document (--per-document), else one span. */
struct text {
	int32_t *ids;
	size_t n;
	size_t *start; /* n_spans + 1 offsets into ids */
	size_t n_spans;
};

/* Where a scored prediction's base distribution comes from, and what is done with each one. */
struct scorer {
	int64_t nv;
	struct result *r;
	double *lp, *lpb;            /* log-softmax of MODEL, of a base model */
	float *lpk;                  /* a .kld record, decoded */
	const struct isq_kld *kld;   /* --kl */
	struct isq_kld_writer *kw;   /* --kl-base */
	double *kls;                 /* every KL value, for the median and percentiles */
	size_t n_kl, cap_kl;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* llama-perplexity's percentile: linear between the two nearest of the sorted values. */
static double percentile(const double *v, size_t n, double f)
{
	double p = f * (double)(n - 1);
	size_t i = (size_t)p;
	p -= (double)i;
	return (1 - p) * v[i] + p * v[i + 1 < n ? i + 1 : n - 1];
}

static void scorer_init(struct scorer *s, int64_t nv, struct result *r)
{
	memset(s, 0, sizeof(*s));
	memset(r, 0, sizeof(*r));
	s->nv = nv;
	s->r = r;
	s->lp = isq_mallocarray((size_t)nv, sizeof(double));
	s->lpb = isq_mallocarray((size_t)nv, sizeof(double));
	s->lpk = isq_mallocarray((size_t)nv, sizeof(float));
	if (!s->lp || !s->lpb || !s->lpk)
		isq_die("out of memory");
}

/* Score the prediction of TGT from MODEL's logits LG and, in the KL modes, the base's LGB or .kld record REC. */
static void score(struct scorer *s, const float *lg, const float *lgb, int64_t rec, int32_t tgt)
{
	struct result *r = s->r;
	int64_t nv = s->nv, top = log_softmax(lg, nv, s->lp);
	acc_add(&r->nll, -s->lp[tgt]);
	r->scored++;
	if (s->kw && isq_kld_writer_add(s->kw, lg, tgt))
		isq_die("%s", isq_errbuf_msg(&s->kw->out->err));
	if (!lgb && !s->kld)
		return;
	double kl = 0, nllb;
	int64_t topb;
	if (lgb) {
		/* exact: both distributions from their float logits, in double */
		topb = log_softmax(lgb, nv, s->lpb);
		nllb = -s->lpb[tgt];
		for (int64_t i = 0; i < nv; i++)
			kl += exp(s->lpb[i]) * (s->lpb[i] - s->lp[i]);
	} else {
		/* as llama-perplexity: the 16-bit base, its tokens below max - 16 nats left out */
		if (isq_kld_record(s->kld, rec, s->lpk))
			isq_die("%s: record %lld is corrupt (scale or offset not finite)", opt_kl_file, (long long)rec);
		int32_t t32;
		isq_kld_base(s->kld, rec, s->lpk, tgt, &nllb, &t32);
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
		s->cap_kl = s->cap_kl ? 2 * s->cap_kl : 4096;
		s->kls = realloc(s->kls, s->cap_kl * sizeof(*s->kls));
		if (!s->kls)
			isq_die("out of memory");
	}
	s->kls[s->n_kl++] = kl;
	acc_add(&r->nll_base, nllb);
	acc_add(&r->kl, kl);
	double dp = exp(s->lp[tgt]) - exp(-nllb);
	acc_add(&r->dp2, dp * dp);
	r->same_top += top == topb;
}

static void scorer_finish(struct scorer *s, double t0)
{
	struct result *r = s->r;
	r->seconds = isq_now() - t0;
	r->base_exact = !s->kld || s->kld->has_trailer;
	if (s->n_kl) {
		qsort(s->kls, s->n_kl, sizeof(double), cmp_double);
		size_t n = s->n_kl;
		r->kl_median = n % 2 ? s->kls[n / 2] : 0.5 * (s->kls[n / 2] + s->kls[n / 2 - 1]);
		r->kl_p90 = percentile(s->kls, n, 0.90);
		r->kl_p95 = percentile(s->kls, n, 0.95);
		r->kl_p99 = percentile(s->kls, n, 0.99);
		r->kl_max = s->kls[n - 1];
	}
	free(s->kls);
	free(s->lpk);
	free(s->lpb);
	free(s->lp);
}

static void eval_rows(struct model *m, const int32_t *ids, int n, float *logits, int64_t k)
{
	struct isq_errbuf e = { 0 };
	if (isq_fw_eval(m->fw, ids, n, 0, logits, ISQ_FW_LOGITS_ALL, &e))
		isq_die("%s: chunk %lld: %s", m->path, (long long)k + 1, isq_errbuf_msg(&e));
}

/*
 * llama-perplexity's chunking: the whole text tokenized once, chunk k is
 * tokens [k*c, (k+1)*c) with its first token replaced by BOS, and the logits
 * of positions c/2 .. c-2 score the token after each.  With BASE, the same
 * chunks through the base model give the KL divergence, computed exactly
 * from both models' log-softmax (no 16-bit clipping of the base); with a
 * .kld file, the base's saved records stand in for it.
 */
static void measure_chunks(struct model *m, struct model *base, struct scorer *s, const int32_t *ids, size_t n_ids)
{
	struct result *r = s->r;
	int64_t c = opt_ctx, nv = s->nv;
	int64_t n_chunks = (int64_t)n_ids / c;
	/* a saved file's chunks are whatever llama-perplexity or --kl-base kept */
	if (!s->kld && (int64_t)n_ids < 2 * c)
		isq_die("%s: %zu tokens, fewer than 2 x %lld (two chunks) that perplexity needs", opt_file, n_ids,
			(long long)c);
	if (opt_chunks > 0 && n_chunks > opt_chunks)
		n_chunks = opt_chunks;
	int32_t bos = isq_tokenizer_add_bos(m->tok) ? isq_tokenizer_bos(m->tok) : -1;
	int64_t first = c / 2;
	float *lg = isq_mallocarray((size_t)(c * nv), sizeof(float));
	float *lgb = base ? isq_mallocarray((size_t)(c * nv), sizeof(float)) : NULL;
	int32_t *chunk = isq_mallocarray((size_t)c, sizeof(int32_t));
	if (!lg || !chunk || (base && !lgb))
		isq_die("out of memory");
	r->n_tokens = (int64_t)n_ids;
	r->n_chunks = n_chunks;
	if (s->kw && isq_kld_writer_begin(s->kw, s->kw->out, (uint32_t)c, (int32_t)nv, (int32_t)n_chunks, ids))
		isq_die("%s", s->kw->out->err.code ? isq_errbuf_msg(&s->kw->out->err) : "cannot write the .kld header");
	double t0 = isq_now();
	for (int64_t k = 0; k < n_chunks; k++) {
		memcpy(chunk, ids + k * c, (size_t)c * sizeof(*chunk));
		if (bos >= 0)
			chunk[0] = bos;
		eval_rows(m, chunk, (int)c, lg, k);
		if (base)
			eval_rows(base, chunk, (int)c, lgb, k);
		for (int64_t p = first; p < c - 1; p++)
			score(s, lg + p * nv, base ? lgb + p * nv : NULL, k * (c - 1 - first) + p - first,
			      ids[k * c + p + 1]);
		if (isq_get_verbosity() >= 2)
			isq_debug("[%lld] ppl %.4f", (long long)k + 1, exp(acc_mean(&r->nll)));
	}
	scorer_finish(s, t0);
	free(chunk);
	free(lgb);
	free(lg);
}

/*
 * --per-document: each document is BOS + its tokens, and every next token is
 * scored.  A document longer than the context goes in consecutive windows of
 * -c inputs, each a fresh sequence from position 0 with no BOS put in; the
 * prediction from a window's last input to the next window's first token is
 * scored too (the reference figure of ../shared/README.md counts it).
 */
static void measure_docs(struct model *m, struct model *base, struct scorer *s, const struct text *t)
{
	struct result *r = s->r;
	int64_t c = opt_ctx, nv = s->nv;
	float *lg = isq_mallocarray((size_t)(c * nv), sizeof(float));
	float *lgb = base ? isq_mallocarray((size_t)(c * nv), sizeof(float)) : NULL;
	if (!lg || (base && !lgb))
		isq_die("out of memory");
	r->n_tokens = (int64_t)t->n;
	r->n_docs = (int64_t)t->n_spans;
	double t0 = isq_now();
	for (size_t d = 0; d < t->n_spans; d++) {
		const int32_t *doc = t->ids + t->start[d];
		int64_t n = (int64_t)(t->start[d + 1] - t->start[d]);
		for (int64_t at = 0; at < n - 1; at += c) {
			int len = (int)(n - 1 - at < c ? n - 1 - at : c);
			eval_rows(m, doc + at, len, lg, r->n_chunks);
			if (base)
				eval_rows(base, doc + at, len, lgb, r->n_chunks);
			for (int j = 0; j < len; j++)
				score(s, lg + j * nv, base ? lgb + j * nv : NULL, 0, doc[at + j + 1]);
			r->n_chunks++;
		}
		if (isq_get_verbosity() >= 2 && (d + 1) % 100 == 0)
			isq_debug("[%zu] ppl %.4f", d + 1, exp(acc_mean(&r->nll)));
	}
	scorer_finish(s, t0);
	free(lgb);
	free(lg);
}

/* Split the text at lines "<|endoftext|>"; each document stripped of surrounding whitespace, empty ones dropped. */
static void tokenize_docs(struct model *m, const char *p, size_t len, struct text *t)
{
	static const char sep[] = "<|endoftext|>";
	size_t cap = 64, cap_ids = 0;
	t->start = malloc(cap * sizeof(*t->start));
	if (!t->start)
		isq_die("out of memory");
	t->start[0] = 0;
	const char *end = p + len;
	while (p < end) {
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
		p = next;
		if (a == b)
			continue;
		int32_t *ids = NULL;
		size_t n = 0;
		if (isq_tokenizer_encode(m->tok, a, (size_t)(b - a), ISQ_TOKENIZER_ADD_SPECIAL | ISQ_TOKENIZER_LITERAL,
					 &ids, &n))
			isq_die("%s: %s", opt_file, isq_tokenizer_errmsg(m->tok));
		if (t->n + n > cap_ids) {
			cap_ids = 2 * (t->n + n);
			t->ids = realloc(t->ids, cap_ids * sizeof(*t->ids));
		}
		if (t->n_spans + 2 > cap) {
			cap *= 2;
			t->start = realloc(t->start, cap * sizeof(*t->start));
		}
		if (!t->ids || !t->start)
			isq_die("out of memory");
		memcpy(t->ids + t->n, ids, n * sizeof(*ids));
		free(ids);
		t->n += n;
		t->start[++t->n_spans] = t->n;
	}
	if (!t->n_spans)
		isq_die("%s: no document to score", opt_file);
}

/* The whole text as one span (llama-perplexity's chunking), or its documents. */
static void tokenize_text(struct model *m, struct text *t)
{
	struct isq_buf buf = ISQ_BUF_INIT;
	struct isq_errbuf e = { 0 };
	memset(t, 0, sizeof(*t));
	if (isq_read_file(opt_file, &buf, &e))
		isq_die("%s", isq_errbuf_msg(&e));
	if (opt_per_doc) {
		tokenize_docs(m, buf.data ? buf.data : "", buf.len, t);
	} else {
		/* as llama-perplexity: BOS if the vocabulary adds one, special-token text taken literally */
		if (isq_tokenizer_encode(m->tok, buf.data ? buf.data : "", buf.len,
					 ISQ_TOKENIZER_ADD_SPECIAL | ISQ_TOKENIZER_LITERAL, &t->ids, &t->n))
			isq_die("%s: %s", opt_file, isq_tokenizer_errmsg(m->tok));
		t->start = malloc(2 * sizeof(*t->start));
		if (!t->start)
			isq_die("out of memory");
		t->start[0] = 0;
		t->start[1] = t->n;
		t->n_spans = 1;
	}
	isq_buf_release(&buf);
}

static void text_release(struct text *t)
{
	free(t->ids);
	free(t->start);
	memset(t, 0, sizeof(*t));
}

static void check_vocab(const struct model *m, const struct model *base)
{
	if (base->w.fw.cfg.n_vocab != m->w.fw.cfg.n_vocab)
		isq_die("%s: vocabulary of %lld tokens, but %s has %lld", base->path, (long long)base->w.fw.cfg.n_vocab,
			m->path, (long long)m->w.fw.cfg.n_vocab);
}

/* Measure M over the text (against BASE when given) by the chosen method. */
static void measure(struct model *m, struct model *base, const struct text *t, struct result *r)
{
	struct scorer s;
	if (base)
		check_vocab(m, base);
	scorer_init(&s, m->w.fw.cfg.n_vocab, r);
	if (opt_per_doc)
		measure_docs(m, base, &s, t);
	else
		measure_chunks(m, base, &s, t->ids, t->n);
}

static double top1_pct(const struct result *r)
{
	return r->scored ? 100.0 * (double)r->same_top / (double)r->scored : 0;
}

/* Standard error of the top-1 rate, as llama-perplexity gives it. */
static double top1_err_pct(const struct result *r)
{
	double p = r->scored ? (double)r->same_top / (double)r->scored : 0;
	return r->scored > 1 ? 100.0 * sqrt(p * (1 - p) / (double)(r->scored - 1)) : 0;
}

static const char *mode_name(void)
{
	return opt_kl_base ? "kl-base" : opt_ppl ? "ppl" : "kl";
}

static void report(const struct result *r, enum report_format fmt)
{
	double ppl = exp(acc_mean(&r->nll)), ppl_err = ppl * acc_err(&r->nll);
	double pplb = exp(acc_mean(&r->nll_base)), pplb_err = pplb * acc_err(&r->nll_base);
	double top1 = top1_pct(r), rms_dp = 100.0 * sqrt(acc_mean(&r->dp2));
	const char *basename_ = opt_kl_model ? opt_kl_model : opt_kl_file;
	int kl = basename_ != NULL;
	const char *file = opt_kl_file ? opt_kl_file : opt_file;
	if (fmt == FMT_JSON) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "mode", mode_name());
		cJSON_AddStringToObject(j, "model", opt_model);
		if (kl)
			cJSON_AddStringToObject(j, "base", basename_);
		if (opt_kl_base)
			cJSON_AddStringToObject(j, "output", opt_kl_base);
		cJSON_AddStringToObject(j, "file", file);
		cJSON_AddStringToObject(j, "method", opt_per_doc ? "per-document" : "chunks");
		cJSON_AddNumberToObject(j, "ctx", (double)opt_ctx);
		cJSON_AddNumberToObject(j, "chunks", (double)r->n_chunks);
		if (opt_per_doc)
			cJSON_AddNumberToObject(j, "documents", (double)r->n_docs);
		cJSON_AddNumberToObject(j, "tokens", (double)r->n_tokens);
		cJSON_AddNumberToObject(j, "scored_tokens", (double)r->scored);
		cJSON_AddNumberToObject(j, "ppl", ppl);
		cJSON_AddNumberToObject(j, "ppl_err", ppl_err);
		if (kl) {
			cJSON_AddNumberToObject(j, "ppl_base", pplb);
			cJSON_AddNumberToObject(j, "ppl_base_err", pplb_err);
			cJSON_AddBoolToObject(j, "ppl_base_exact", r->base_exact);
			cJSON_AddNumberToObject(j, "kl_mean", acc_mean(&r->kl));
			cJSON_AddNumberToObject(j, "kl_err", acc_err(&r->kl));
			cJSON_AddNumberToObject(j, "kl_median", r->kl_median);
			cJSON_AddNumberToObject(j, "kl_p90", r->kl_p90);
			cJSON_AddNumberToObject(j, "kl_p95", r->kl_p95);
			cJSON_AddNumberToObject(j, "kl_p99", r->kl_p99);
			cJSON_AddNumberToObject(j, "kl_max", r->kl_max);
			cJSON_AddNumberToObject(j, "top1_pct", top1);
			cJSON_AddNumberToObject(j, "top1_err_pct", top1_err_pct(r));
			cJSON_AddNumberToObject(j, "rms_dp_pct", rms_dp);
		}
		cJSON_AddNumberToObject(j, "seconds", r->seconds);
		char *s = cJSON_PrintUnformatted(j);
		if (!s)
			isq_die("out of memory");
		printf("%s\n", s);
		free(s);
		cJSON_Delete(j);
	} else if (fmt == FMT_CSV) {
		if (kl)
			printf("model,base,ctx,chunks,scored_tokens,ppl,ppl_err,ppl_base,ppl_base_err,kl_mean,kl_err,"
			       "kl_median,kl_p90,kl_p95,kl_p99,kl_max,top1_pct,rms_dp_pct\n%s,%s,%lld,%lld,%lld,%.6f,%.6f,"
			       "%.6f,%.6f,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.4f,%.4f\n",
			       opt_model, basename_, (long long)opt_ctx, (long long)r->n_chunks, (long long)r->scored, ppl,
			       ppl_err, pplb, pplb_err, acc_mean(&r->kl), acc_err(&r->kl), r->kl_median, r->kl_p90, r->kl_p95,
			       r->kl_p99, r->kl_max, top1, rms_dp);
		else
			printf("model,ctx,chunks,scored_tokens,ppl,ppl_err\n%s,%lld,%lld,%lld,%.6f,%.6f\n", opt_model,
			       (long long)opt_ctx, (long long)r->n_chunks, (long long)r->scored, ppl, ppl_err);
	} else if (kl) {
		printf("| metric | value |\n|---|---|\n");
		printf("| PPL(model) | %.4f +/- %.5f |\n| PPL(base) | %.4f +/- %.5f%s |\n", ppl, ppl_err, pplb, pplb_err,
		       r->base_exact ? "" : " (from 16-bit values)");
		printf("| mean KL | %.6f +/- %.6f |\n| KL median | %.6f |\n| KL 90%% | %.6f |\n| KL 95%% | %.6f |\n"
		       "| KL 99%% | %.6f |\n| KL max | %.6f |\n",
		       acc_mean(&r->kl), acc_err(&r->kl), r->kl_median, r->kl_p90, r->kl_p95, r->kl_p99, r->kl_max);
		printf("| same top | %.3f +/- %.3f %% |\n| RMS dp | %.3f %% |\n", top1, top1_err_pct(r), rms_dp);
		if (opt_per_doc)
			printf("| scored tokens | %lld (%lld documents) |\n", (long long)r->scored, (long long)r->n_docs);
		else
			printf("| scored tokens | %lld (%lld chunks of %lld) |\n", (long long)r->scored,
			       (long long)r->n_chunks, (long long)opt_ctx);
	} else {
		printf("PPL = %.4f +/- %.5f\n", ppl, ppl_err);
	}
	if (opt_per_doc)
		isq_info("%lld documents, %lld windows of up to %lld tokens, %lld scored, %.2f s", (long long)r->n_docs,
			 (long long)r->n_chunks, (long long)opt_ctx, (long long)r->scored, r->seconds);
	else
		isq_info("%lld chunks of %lld tokens, %lld scored, %.2f s", (long long)r->n_chunks, (long long)opt_ctx,
			 (long long)r->scored, r->seconds);
}

/* The number in attribute NAME="..." of the root <svg ...> tag at S, or DEF. */
static double svg_attr(const char *s, const char *name, double def)
{
	const char *end = strchr(s, '>');
	char key[32];
	snprintf(key, sizeof(key), " %s=\"", name);
	const char *p = strstr(s, key);
	return p && end && p < end ? strtod(p + strlen(key), NULL) : def;
}

/* Stack two standalone SVG documents into one: an outer <svg> holding each as a nested <svg> at its own y. */
static int combine_svg(struct isq_buf *out, const struct isq_buf *a, const struct isq_buf *b)
{
	const char *sa = a->data ? strstr(a->data, "<svg") : NULL, *sb = b->data ? strstr(b->data, "<svg") : NULL;
	if (!sa || !sb)
		return ISQ_EINVAL;
	double wa = svg_attr(sa, "width", 800), ha = svg_attr(sa, "height", 500);
	double wb = svg_attr(sb, "width", 800), hb = svg_attr(sb, "height", 500), w = wa > wb ? wa : wb;
	int rc = isq_buf_printf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
				"viewBox=\"0 0 %g %g\">\n", w, ha + hb, w, ha + hb);
	rc = rc ? rc : isq_buf_puts(out, sa);
	rc = rc ? rc : isq_buf_printf(out, "\n<svg y=\"%g\"", ha);
	rc = rc ? rc : isq_buf_puts(out, sb + 4);
	rc = rc ? rc : isq_buf_puts(out, "\n</svg>\n");
	return rc;
}

/* ---- --sweep ---------------------------------------------------------------- */

/* One row of a sweep: a type quantized here (with or without the imatrix), a peer's GGUF file, or MODEL itself. */
struct sweep_row {
	char label[64];
	const char *series; /* "base", "isq", "isq + imatrix", "llama.cpp" */
	const char *path;   /* a peer's file; NULL for ours */
	struct isq_type_request req;
	int imatrix;
	uint64_t bytes;
	double bpw;
	int fallbacks;
	struct result r;
};

static char sweep_dir[4096], sweep_file[4200]; /* removed at exit, however the run ends */

static void sweep_cleanup(void)
{
	if (sweep_file[0])
		unlink(sweep_file);
	if (sweep_dir[0])
		rmdir(sweep_dir);
}

/* Bits per weight over the tensors the file holds, as isq-quantize reports it. */
static double tensor_bpw(const struct isq_model *m)
{
	uint64_t bytes = 0, n = 0;
	for (size_t i = 0; i < m->n_tensors; i++) {
		bytes += m->tensors[i].nbytes;
		n += m->tensors[i].n_elements;
	}
	return n ? 8.0 * (double)bytes / (double)n : 0;
}

static uint64_t path_bytes(const char *path, const struct isq_model *m)
{
	struct stat st;
	if (!isq_is_dir(path) && !stat(path, &st))
		return (uint64_t)st.st_size;
	return isq_model_bytes(m);
}

/* A peer's GGUF is named after its type by convention (stories260K-Q4_K_M.gguf): take that. */
static void peer_label(const char *path, char *out, size_t n)
{
	const char *b = strrchr(path, '/');
	b = b ? b + 1 : path;
	const char *dash = strrchr(b, '-');
	snprintf(out, n, "%s", dash ? dash + 1 : b);
	char *dot = strstr(out, ".gguf");
	if (dot)
		*dot = '\0';
	for (char *p = out; *p; p++)
		*p = (char)tolower((unsigned char)*p);
}

/*
 * Parse --sweep before any work, so a misspelt type is a usage error and not
 * a failure half-way.  An entry naming an existing file is a peer's GGUF;
 * with --imatrix every type gets a second row quantized with it.
 */
static struct sweep_row *sweep_parse(size_t *n_rows)
{
	/* never freed: rows' peer paths point into it for the whole run */
	char *copy = isq_strdup(opt_sweep);
	size_t n_items = 1;
	for (const char *p = opt_sweep; *p; p++)
		n_items += *p == ',';
	struct sweep_row *rows = calloc(2 * n_items, sizeof(*rows));
	if (!copy || !rows)
		isq_die("out of memory");
	size_t n = 0;
	for (char *tok = copy, *next; tok; tok = next) {
		next = strchr(tok, ',');
		if (next)
			*next++ = '\0';
		if (!*tok)
			isq_tool_usage_error(&cmd, "--sweep: an empty entry in '%s'", opt_sweep);
		struct sweep_row *row = &rows[n++];
		if (isq_path_exists(tok)) {
			row->path = tok;
			row->series = "llama.cpp";
			peer_label(tok, row->label, sizeof(row->label));
			continue;
		}
		struct isq_errbuf e = { 0 };
		if (isq_type_request_parse(tok, ISQ_TARGET_CPU, &row->req, &e))
			isq_tool_usage_error(&cmd, "--sweep: %s (or no such file)", isq_errbuf_msg(&e));
		row->series = "isq";
		snprintf(row->label, sizeof(row->label), "%s", row->req.label);
		if (opt_imatrix) {
			rows[n] = *row;
			rows[n].imatrix = 1;
			rows[n++].series = "isq + imatrix";
		}
	}
	*n_rows = n;
	return rows;
}

/* Quantize MODEL into a temporary GGUF for ROW along isq-quantize's plan; returns its path. */
static const char *sweep_quantize(struct model *base, struct sweep_row *row, const struct isq_imatrix *im,
				  struct isq_pool *pool)
{
	if (!sweep_dir[0]) {
		const char *tmp = getenv("TMPDIR");
		snprintf(sweep_dir, sizeof(sweep_dir), "%s/isq-bench.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
		if (!mkdtemp(sweep_dir)) {
			int err = errno;
			sweep_dir[0] = '\0';
			isq_die("cannot create a temporary directory in %s: %s", tmp && tmp[0] ? tmp : "/tmp", strerror(err));
		}
		atexit(sweep_cleanup);
	}
	snprintf(sweep_file, sizeof(sweep_file), "%s/%s%s.gguf", sweep_dir, row->label, row->imatrix ? "-imatrix" : "");
	struct isq_plan_opts po = { .type = row->label, .format = ISQ_FORMAT_GGUF, .target = ISQ_TARGET_CPU };
	struct isq_convert_gguf_result res;
	struct isq_errbuf e = { 0 };
	if (isq_convert_gguf(&base->w.model, &po, row->imatrix ? im : NULL, opt_imatrix, pool, sweep_file, &res, &e))
		isq_die("%s: -t %s: %s", opt_model, row->label, isq_errbuf_msg(&e));
	row->fallbacks = res.n_fallbacks;
	return sweep_file;
}

static void sweep_report(const struct sweep_row *rows, size_t n, enum report_format fmt)
{
	if (fmt == FMT_JSON) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "mode", "sweep");
		cJSON_AddStringToObject(j, "model", opt_model);
		cJSON_AddStringToObject(j, "file", opt_file);
		cJSON_AddStringToObject(j, "method", opt_per_doc ? "per-document" : "chunks");
		cJSON_AddNumberToObject(j, "ctx", (double)opt_ctx);
		cJSON_AddNumberToObject(j, "chunks", (double)rows[0].r.n_chunks);
		cJSON_AddNumberToObject(j, "scored_tokens", (double)rows[0].r.scored);
		if (opt_imatrix)
			cJSON_AddStringToObject(j, "imatrix", opt_imatrix);
		cJSON *arr = cJSON_AddArrayToObject(j, "rows");
		for (size_t i = 0; i < n; i++) {
			const struct sweep_row *w = &rows[i];
			const struct result *r = &w->r;
			double ppl = exp(acc_mean(&r->nll));
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "type", w->label);
			cJSON_AddStringToObject(o, "series", w->series);
			cJSON_AddStringToObject(o, "path", w->path ? w->path : i ? "" : opt_model);
			cJSON_AddBoolToObject(o, "imatrix", w->imatrix);
			cJSON_AddNumberToObject(o, "bytes", (double)w->bytes);
			cJSON_AddNumberToObject(o, "bits_per_weight", w->bpw);
			cJSON_AddNumberToObject(o, "fallbacks", w->fallbacks);
			cJSON_AddNumberToObject(o, "ppl", ppl);
			cJSON_AddNumberToObject(o, "ppl_err", ppl * acc_err(&r->nll));
			cJSON_AddNumberToObject(o, "kl_mean", acc_mean(&r->kl));
			cJSON_AddNumberToObject(o, "kl_err", acc_err(&r->kl));
			cJSON_AddNumberToObject(o, "kl_median", r->kl_median);
			cJSON_AddNumberToObject(o, "kl_p99", r->kl_p99);
			cJSON_AddNumberToObject(o, "kl_max", r->kl_max);
			cJSON_AddNumberToObject(o, "top1_pct", i ? top1_pct(r) : 100);
			cJSON_AddNumberToObject(o, "rms_dp_pct", 100.0 * sqrt(acc_mean(&r->dp2)));
			cJSON_AddNumberToObject(o, "seconds", r->seconds);
			cJSON_AddItemToArray(arr, o);
		}
		char *s = cJSON_PrintUnformatted(j);
		if (!s)
			isq_die("out of memory");
		printf("%s\n", s);
		free(s);
		cJSON_Delete(j);
		return;
	}
	if (fmt == FMT_CSV)
		printf("type,series,imatrix,bytes,bits_per_weight,ppl,ppl_err,kl_mean,kl_err,kl_median,kl_p99,kl_max,"
		       "top1_pct,rms_dp_pct\n");
	else
		printf("| type | series | bytes | bpw | PPL | mean KL | KL 99%% | same top %% | RMS dp %% |\n"
		       "|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
	for (size_t i = 0; i < n; i++) {
		const struct sweep_row *w = &rows[i];
		const struct result *r = &w->r;
		double ppl = exp(acc_mean(&r->nll)), top1 = i ? top1_pct(r) : 100;
		if (fmt == FMT_CSV)
			printf("%s,%s,%d,%llu,%.4f,%.6f,%.6f,%.6g,%.6g,%.6g,%.6g,%.6g,%.4f,%.4f\n", w->label, w->series,
			       w->imatrix, (unsigned long long)w->bytes, w->bpw, ppl, ppl * acc_err(&r->nll),
			       acc_mean(&r->kl), acc_err(&r->kl), r->kl_median, r->kl_p99, r->kl_max, top1,
			       100.0 * sqrt(acc_mean(&r->dp2)));
		else
			printf("| %s | %s | %llu | %.3f | %.4f +/- %.4f | %.6f | %.5f | %.2f | %.3f |\n", w->label, w->series,
			       (unsigned long long)w->bytes, w->bpw, ppl, ppl * acc_err(&r->nll), acc_mean(&r->kl),
			       r->kl_p99, top1, 100.0 * sqrt(acc_mean(&r->dp2)));
	}
}

/*
 * Two charts in one SVG file: bits per weight against mean KL (log scale),
 * and against PPL.  Unquantized rows (16 bits or more) would stretch the x
 * axis over the range nobody compares, so the PPL title gives MODEL's
 * figure instead; a KL that is zero to rounding has no place on a log axis.
 */
static void sweep_plot(const struct sweep_row *rows, size_t n)
{
	struct isq_plot_point *kl = calloc(n, sizeof(*kl)), *ppl = calloc(n, sizeof(*ppl));
	if (!kl || !ppl)
		isq_die("out of memory");
	size_t nk = 0, np = 0;
	for (size_t i = 0; i < n; i++) {
		const struct sweep_row *w = &rows[i];
		double k = acc_mean(&w->r.kl);
		if (w->bpw >= 16)
			continue;
		if (k > 1e-9)
			kl[nk++] = (struct isq_plot_point){ w->series, w->label, w->bpw, k };
		ppl[np++] = (struct isq_plot_point){ w->series, w->label, w->bpw, exp(acc_mean(&w->r.nll)) };
	}
	struct isq_buf a = ISQ_BUF_INIT, b = ISQ_BUF_INIT, svg = ISQ_BUF_INIT;
	char title[512], *copy = isq_strdup(opt_model);
	if (!copy)
		isq_die("out of memory");
	size_t l = strlen(copy);
	while (l > 1 && copy[l - 1] == '/')
		copy[--l] = '\0';
	const char *name = basename(copy);
	snprintf(title, sizeof(title), "%s: KL divergence from the unquantized model (-c %lld, %lld tokens)", name,
		 (long long)opt_ctx, (long long)rows[0].r.scored);
	if (isq_svg_scatter(&a, title, "bits per weight", "mean KL divergence (nats)", kl, nk, 0, 1))
		isq_die("--plot: cannot draw the KL chart");
	snprintf(title, sizeof(title), "%s: perplexity (unquantized: %.4f)", name, exp(acc_mean(&rows[0].r.nll)));
	if (isq_svg_scatter(&b, title, "bits per weight", "perplexity", ppl, np, 0, 0))
		isq_die("--plot: cannot draw the PPL chart");
	if (combine_svg(&svg, &a, &b))
		isq_die("out of memory");
	struct isq_out out;
	if (isq_out_open(&out, opt_plot) || isq_out_write(&out, svg.data, svg.len) || isq_out_commit(&out))
		isq_die("%s", isq_errbuf_msg(&out.err));
	isq_buf_release(&a);
	isq_buf_release(&b);
	isq_buf_release(&svg);
	free(copy);
	free(kl);
	free(ppl);
}

/*
 * --sweep: MODEL is the base.  Its own row first (KL 0 by definition), then
 * each type quantized into a temporary GGUF and each peer's file, measured
 * against MODEL over the same text.
 */
static void sweep(struct isq_backend *be, enum report_format fmt)
{
	size_t n_rows;
	struct sweep_row *parsed = sweep_parse(&n_rows);
	struct sweep_row *rows = calloc(n_rows + 1, sizeof(*rows));
	if (!rows)
		isq_die("out of memory");
	memcpy(rows + 1, parsed, n_rows * sizeof(*rows));
	free(parsed);
	n_rows++;
	struct model base = { 0 };
	model_open(&base, opt_model, be);
	for (size_t i = 0; i < base.w.model.n_tensors; i++) {
		int t = base.w.model.tensors[i].type;
		if (t != ISQ_TYPE_F32 && t != ISQ_TYPE_F16 && t != ISQ_TYPE_BF16 && base.w.model.tensors[i].n_dims >= 2)
			isq_die("%s: tensor '%s' is already quantized (%s); --sweep needs F32, F16 or BF16 weights", opt_model,
				base.w.model.tensors[i].name, base.w.model.tensors[i].type_name);
	}
	struct isq_imatrix im;
	isq_imatrix_init(&im);
	if (opt_imatrix && isq_imatrix_read(&im, opt_imatrix))
		isq_die("%s", isq_errbuf_msg(&im.err));
	struct isq_pool *pool = isq_pool_new(isq_tool_threads(opt_threads));
	if (!pool)
		isq_die("out of memory");
	struct text t;
	tokenize_text(&base, &t);

	snprintf(rows[0].label, sizeof(rows[0].label), "%s", "base");
	rows[0].series = "base";
	rows[0].bytes = path_bytes(opt_model, &base.w.model);
	rows[0].bpw = tensor_bpw(&base.w.model);
	measure(&base, NULL, &t, &rows[0].r);
	isq_info("%s: PPL %.4f", opt_model, exp(acc_mean(&rows[0].r.nll)));
	for (size_t i = 1; i < n_rows; i++) {
		struct sweep_row *row = &rows[i];
		const char *path = row->path ? row->path : sweep_quantize(&base, row, &im, pool);
		struct model q = { 0 };
		model_open(&q, path, be);
		row->bytes = path_bytes(path, &q.w.model);
		row->bpw = tensor_bpw(&q.w.model);
		measure(&q, &base, &t, &row->r);
		model_close(&q);
		if (!row->path) {
			unlink(sweep_file);
			sweep_file[0] = '\0';
		}
		isq_info("%s (%s): %.3f bpw, PPL %.4f, mean KL %.6f", row->label, row->series, row->bpw,
			 exp(acc_mean(&row->r.nll)), acc_mean(&row->r.kl));
	}
	sweep_report(rows, n_rows, fmt);
	if (opt_plot)
		sweep_plot(rows, n_rows);
	text_release(&t);
	isq_pool_free(pool);
	isq_imatrix_release(&im);
	model_close(&base);
	free(rows);
}

static enum report_format parse_format(void)
{
	if (opt_json || !opt_format)
		return opt_json ? FMT_JSON : FMT_MD;
	if (!strcmp(opt_format, "md"))
		return FMT_MD;
	if (!strcmp(opt_format, "csv"))
		return FMT_CSV;
	if (!strcmp(opt_format, "json"))
		return FMT_JSON;
	isq_tool_usage_error(&cmd, "unknown format '%s' (md, csv, json)", opt_format);
}

/* ---- --tensors, --quant, --speed: no text needed ------------------------------ */

/* every GGML type isq encodes, as bench-quant measures them */
static const char default_types[] = "q4_0,q4_1,q5_0,q5_1,q8_0,q2_k,q3_k,q4_k,q5_k,q6_k,iq4_nl,iq4_xs";

/* -t split at commas, each checked before any work: a misspelt type is a usage error, not a failure half-way. */
static char **parse_types(size_t *n_out)
{
	char *copy = isq_strdup(opt_types ? opt_types : default_types);
	size_t n = 1;
	for (const char *p = copy ? copy : ""; *p; p++)
		n += *p == ',';
	char **v = calloc(n, sizeof(*v));
	if (!copy || !v)
		isq_die("out of memory");
	n = 0;
	for (char *tok = copy, *next; tok; tok = next) {
		next = strchr(tok, ',');
		if (next)
			*next++ = '\0';
		struct isq_type_request req;
		struct isq_errbuf e = { 0 };
		if (!*tok)
			isq_tool_usage_error(&cmd, "-t: an empty entry in '%s'", opt_types);
		if (isq_type_request_parse(tok, ISQ_TARGET_CPU, &req, &e))
			isq_tool_usage_error(&cmd, "-t: %s", isq_errbuf_msg(&e));
		v[n++] = tok;
	}
	*n_out = n;
	return v;
}

static void tensors_json_row(cJSON *o, const struct isq_tensor_row *t, int weighted)
{
	cJSON_AddNumberToObject(o, "elements", (double)t->n);
	cJSON_AddNumberToObject(o, "bytes", (double)t->bytes);
	cJSON_AddNumberToObject(o, "bits_per_weight", isq_tensor_bpw(t));
	cJSON_AddNumberToObject(o, "rmse", isq_tensor_rmse(t));
	if (weighted)
		cJSON_AddNumberToObject(o, "weighted_rmse", isq_tensor_wrmse(t));
	cJSON_AddNumberToObject(o, "cosine", isq_tensor_cosine(t));
}

static void tensors_report(const struct isq_tensor_report *r, size_t n, enum report_format fmt)
{
	int w = opt_imatrix != NULL;
	if (fmt == FMT_JSON) {
		cJSON *j = cJSON_CreateObject(), *types;
		cJSON_AddStringToObject(j, "mode", "tensors");
		cJSON_AddStringToObject(j, "model", opt_model);
		if (w)
			cJSON_AddStringToObject(j, "imatrix", opt_imatrix);
		types = cJSON_AddArrayToObject(j, "types");
		for (size_t i = 0; i < n; i++) {
			cJSON *o = cJSON_CreateObject(), *arr;
			cJSON_AddStringToObject(o, "type", r[i].req.label);
			tensors_json_row(o, &r[i].total, w);
			if (w)
				cJSON_AddNumberToObject(o, "weighted_tensors", r[i].n_weighted);
			arr = cJSON_AddArrayToObject(o, "tensors");
			for (size_t k = 0; k < r[i].n; k++) {
				const struct isq_tensor_row *t = &r[i].rows[k];
				cJSON *to = cJSON_CreateObject();
				cJSON_AddStringToObject(to, "name", t->name);
				cJSON_AddStringToObject(to, "type", isq_type_name(t->type));
				cJSON_AddBoolToObject(to, "fallback", t->fallback);
				if (w)
					cJSON_AddBoolToObject(to, "imatrix", t->weighted);
				tensors_json_row(to, t, w);
				cJSON_AddItemToArray(arr, to);
			}
			cJSON_AddItemToArray(types, o);
		}
		char *s = cJSON_PrintUnformatted(j);
		if (!s)
			isq_die("out of memory");
		printf("%s\n", s);
		free(s);
		cJSON_Delete(j);
		return;
	}
	if (fmt == FMT_CSV) {
		/* one table: the per-type summary is the row whose tensor is "total" */
		printf("type,tensor,stored_type,elements,bytes,bits_per_weight,rmse,%scosine\n", w ? "weighted_rmse," : "");
		for (size_t i = 0; i < n; i++)
			for (size_t k = 0; k <= r[i].n; k++) {
				const struct isq_tensor_row *t = k < r[i].n ? &r[i].rows[k] : &r[i].total;
				printf("%s,%s,%s,%llu,%llu,%.4f,%.6e,", r[i].req.label, t->name,
				       k < r[i].n ? isq_type_name(t->type) : r[i].req.label, (unsigned long long)t->n,
				       (unsigned long long)t->bytes, isq_tensor_bpw(t), isq_tensor_rmse(t));
				if (w)
					printf("%.6e,", isq_tensor_wrmse(t));
				printf("%.8f\n", isq_tensor_cosine(t));
			}
		return;
	}
	/* md: the summary a reader wants first, then every tensor */
	printf("| type | bpw | RMSE |%s cosine | tensors |\n|---|---:|---:|%s---:|---:|\n", w ? " weighted RMSE |" : "",
	       w ? "---:|" : "");
	for (size_t i = 0; i < n; i++) {
		const struct isq_tensor_row *t = &r[i].total;
		int fb = 0;
		for (size_t k = 0; k < r[i].n; k++)
			fb += r[i].rows[k].fallback;
		printf("| %s | %.3f | %.4e |", r[i].req.label, isq_tensor_bpw(t), isq_tensor_rmse(t));
		if (w)
			printf(" %.4e |", isq_tensor_wrmse(t));
		printf(" %.6f | %zu", isq_tensor_cosine(t), r[i].n);
		if (fb)
			printf(" (%d fallback%s)", fb, fb > 1 ? "s" : "");
		printf(" |\n");
	}
	printf("\n| type | tensor | stored | bpw | RMSE |%s cosine |\n|---|---|---|---:|---:|%s---:|\n",
	       w ? " weighted RMSE |" : "", w ? "---:|" : "");
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < r[i].n; k++) {
			const struct isq_tensor_row *t = &r[i].rows[k];
			printf("| %s | %s | %s | %.3f | %.4e |", r[i].req.label, t->name, isq_type_name(t->type),
			       isq_tensor_bpw(t), isq_tensor_rmse(t));
			if (w) {
				if (t->weighted)
					printf(" %.4e |", isq_tensor_wrmse(t));
				else
					printf(" - |");
			}
			printf(" %.6f |\n", isq_tensor_cosine(t));
		}
}

static void quant_report(const struct isq_tensor_report *r, size_t n, int threads, enum report_format fmt)
{
	if (fmt == FMT_JSON) {
		cJSON *j = cJSON_CreateObject(), *arr;
		cJSON_AddStringToObject(j, "mode", "quant");
		cJSON_AddStringToObject(j, "model", opt_model);
		if (opt_imatrix)
			cJSON_AddStringToObject(j, "imatrix", opt_imatrix);
		cJSON_AddNumberToObject(j, "threads", threads);
		arr = cJSON_AddArrayToObject(j, "types");
		for (size_t i = 0; i < n; i++) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "type", r[i].req.label);
			cJSON_AddNumberToObject(o, "elements", (double)r[i].total.n);
			cJSON_AddNumberToObject(o, "fp16_mb", 2.0 * (double)r[i].total.n / 1e6);
			cJSON_AddNumberToObject(o, "seconds", r[i].total.seconds);
			cJSON_AddNumberToObject(o, "mb_per_s", isq_tensor_mb_per_s(&r[i].total));
			cJSON_AddItemToArray(arr, o);
		}
		char *s = cJSON_PrintUnformatted(j);
		if (!s)
			isq_die("out of memory");
		printf("%s\n", s);
		free(s);
		cJSON_Delete(j);
		return;
	}
	if (fmt == FMT_CSV)
		printf("type,threads,elements,fp16_mb,seconds,mb_per_s\n");
	else
		printf("| type | threads | fp16 MB | seconds | MB/s |\n|---|---:|---:|---:|---:|\n");
	for (size_t i = 0; i < n; i++) {
		const struct isq_tensor_row *t = &r[i].total;
		if (fmt == FMT_CSV)
			printf("%s,%d,%llu,%.3f,%.4f,%.2f\n", r[i].req.label, threads, (unsigned long long)t->n,
			       2.0 * (double)t->n / 1e6, t->seconds, isq_tensor_mb_per_s(t));
		else
			printf("| %s | %d | %.1f | %.3f | %.1f |\n", r[i].req.label, threads, 2.0 * (double)t->n / 1e6,
			       t->seconds, isq_tensor_mb_per_s(t));
	}
}

/* --tensors and --quant: each -t type over MODEL's weights, no forward pass. */
static void run_tensors(enum report_format fmt)
{
	size_t n;
	char **types = parse_types(&n);
	struct isq_model m;
	if (isq_model_open(&m, opt_model))
		isq_die("%s", isq_errbuf_msg(&m.err));
	struct isq_imatrix im;
	isq_imatrix_init(&im);
	if (opt_imatrix && isq_imatrix_read(&im, opt_imatrix))
		isq_die("%s", isq_errbuf_msg(&im.err));
	int threads = isq_tool_threads(opt_threads);
	struct isq_pool *pool = isq_pool_new(threads);
	struct isq_tensor_report *r = calloc(n, sizeof(*r));
	if (!pool || !r)
		isq_die("out of memory");
	unsigned flags = opt_quant ? ISQ_TENSOR_SPEED : ISQ_TENSOR_ERROR;
	for (size_t i = 0; i < n; i++) {
		struct isq_errbuf e = { 0 };
		double t0 = isq_now();
		if (isq_tensor_error_measure(&m, types[i], opt_imatrix ? &im : NULL, pool, flags, &r[i], &e))
			isq_die("%s: -t %s: %s", opt_model, types[i], isq_errbuf_msg(&e));
		if (opt_quant)
			isq_info("%s: %.1f MB/s", r[i].req.label, isq_tensor_mb_per_s(&r[i].total));
		else
			isq_info("%s: RMSE %.4e, cosine %.6f (%.1f s)", r[i].req.label, isq_tensor_rmse(&r[i].total),
				 isq_tensor_cosine(&r[i].total), isq_now() - t0);
		if (opt_imatrix && !r[i].n_weighted)
			isq_warn("%s: no tensor of %s has an entry in the imatrix", opt_imatrix, opt_model);
	}
	if (opt_quant)
		quant_report(r, n, isq_pool_size(pool), fmt);
	else
		tensors_report(r, n, fmt);
	for (size_t i = 0; i < n; i++)
		isq_tensor_report_release(&r[i]);
	free(r);
	free(types[0]);
	free(types);
	isq_pool_free(pool);
	isq_imatrix_release(&im);
	isq_model_release(&m);
}

/* --speed: llama-bench's pp<P> and tg<N> rows. */
static void run_speed(struct isq_backend *be, enum report_format fmt)
{
	struct isq_weights w;
	struct isq_errbuf e = { 0 };
	if (isq_weights_open(&w, opt_model))
		isq_die("%s", isq_errbuf_msg(&w.err));
	struct isq_fw_bench_params bp = { .n_prompt = (int)opt_n_prompt, .n_gen = (int)opt_n_gen, .reps = (int)opt_reps };
	struct isq_fw_bench_result r;
	if (isq_fw_bench(&w.fw, be, &bp, &r, &e))
		isq_die("%s: %s", opt_model, isq_errbuf_msg(&e));
	uint64_t bytes = isq_model_bytes(&w.model), params = isq_model_parameters(&w.model);
	struct {
		char test[32];
		double mean, sd, cpu;
	} rows[2];
	int nr = 0;
	if (bp.n_prompt) {
		snprintf(rows[nr].test, sizeof(rows[nr].test), "pp%d", bp.n_prompt);
		rows[nr].mean = r.pp_mean, rows[nr].sd = r.pp_sd, rows[nr++].cpu = r.pp_cpu_mean;
	}
	if (bp.n_gen) {
		snprintf(rows[nr].test, sizeof(rows[nr].test), "tg%d", bp.n_gen);
		rows[nr].mean = r.tg_mean, rows[nr].sd = r.tg_sd, rows[nr++].cpu = r.tg_cpu_mean;
	}
	if (fmt == FMT_JSON) {
		cJSON *j = cJSON_CreateObject(), *arr;
		cJSON_AddStringToObject(j, "mode", "speed");
		cJSON_AddStringToObject(j, "model", opt_model);
		cJSON_AddNumberToObject(j, "bytes", (double)bytes);
		cJSON_AddNumberToObject(j, "params", (double)params);
		cJSON_AddStringToObject(j, "backend", opt_backend);
		cJSON_AddNumberToObject(j, "threads", r.n_threads);
		cJSON_AddNumberToObject(j, "repetitions", bp.reps);
		arr = cJSON_AddArrayToObject(j, "tests");
		for (int i = 0; i < nr; i++) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "test", rows[i].test);
			cJSON_AddNumberToObject(o, "avg_ts", rows[i].mean);
			cJSON_AddNumberToObject(o, "stddev_ts", rows[i].sd);
			cJSON_AddNumberToObject(o, "cpu_ts", rows[i].cpu);
			cJSON_AddItemToArray(arr, o);
		}
		char *s = cJSON_PrintUnformatted(j);
		if (!s)
			isq_die("out of memory");
		printf("%s\n", s);
		free(s);
		cJSON_Delete(j);
	} else if (fmt == FMT_CSV) {
		printf("model,bytes,params,backend,threads,test,avg_ts,stddev_ts,cpu_ts\n");
		for (int i = 0; i < nr; i++)
			printf("%s,%llu,%llu,%s,%d,%s,%.3f,%.3f,%.3f\n", opt_model, (unsigned long long)bytes,
			       (unsigned long long)params, opt_backend, r.n_threads, rows[i].test, rows[i].mean, rows[i].sd,
			       rows[i].cpu);
	} else {
		/* llama-bench's columns, and the rate per CPU second that a busy machine distorts less */
		printf("| model | size | params | backend | threads | test | t/s | t/s per CPU s |\n"
		       "|---|---:|---:|---|---:|---:|---:|---:|\n");
		for (int i = 0; i < nr; i++)
			printf("| %s | %.2f MiB | %.2f M | %s | %d | %s | %.2f ± %.2f | %.2f |\n", opt_model,
			       (double)bytes / 1048576.0, (double)params / 1e6, opt_backend, r.n_threads, rows[i].test,
			       rows[i].mean, rows[i].sd, rows[i].cpu);
	}
	isq_info("%d repetitions after a warm-up, %.2f s", bp.reps, r.seconds);
	isq_weights_release(&w);
}

/* The options of --tensors, --quant and --speed, checked before any work. */
static void check_measure_opts(void)
{
	int speed_opt = opt_n_prompt != -1 || opt_n_gen != -1 || opt_reps != -1;
	if (opt_types && !opt_tensors && !opt_quant)
		isq_tool_usage_error(&cmd, "-t goes with --tensors or --quant (--sweep takes its own list)");
	if (speed_opt && !opt_speed)
		isq_tool_usage_error(&cmd, "-p, -n and -r go with --speed");
	if (!opt_tensors && !opt_quant && !opt_speed)
		return;
	if (opt_file || opt_per_doc || opt_chunks || opt_ctx != INT64_MIN)
		isq_tool_usage_error(&cmd, "%s needs no text: -f, -c, --chunks and --per-document do not apply",
				     opt_tensors ? "--tensors" : opt_quant ? "--quant" : "--speed");
	if (opt_speed && opt_imatrix)
		isq_tool_usage_error(&cmd, "--imatrix does not apply to --speed");
	if (opt_n_prompt == -1)
		opt_n_prompt = 512;
	if (opt_n_gen == -1)
		opt_n_gen = 128;
	if (opt_reps == -1)
		opt_reps = 5;
	if (opt_n_prompt < 0 || opt_n_prompt > (1 << 20) || opt_n_gen < 0 || opt_n_gen > (1 << 20))
		isq_tool_usage_error(&cmd, "-p and -n must be between 0 and 1048576");
	if (!opt_n_prompt && !opt_n_gen)
		isq_tool_usage_error(&cmd, "-p 0 and -n 0: nothing to measure");
	if (opt_reps < 1 || opt_reps > ISQ_FW_BENCH_MAX_REPS)
		isq_tool_usage_error(&cmd, "-r must be between 1 and %d", ISQ_FW_BENCH_MAX_REPS);
}

/* --ppl, --kl-model and --kl-base: MODEL (and BASE) over the text. */
static void run_text(struct isq_backend *be, enum report_format fmt)
{
	struct model m = { 0 }, base = { 0 };
	model_open(&m, opt_model, be);
	if (opt_kl_model)
		model_open(&base, opt_kl_model, be);
	struct text t;
	tokenize_text(&m, &t);
	struct result r;
	if (opt_kl_base) {
		struct isq_out out;
		struct isq_kld_writer kw = { 0 };
		struct scorer s;
		if (isq_out_open(&out, opt_kl_base))
			isq_die("%s", isq_errbuf_msg(&out.err));
		kw.out = &out;
		scorer_init(&s, m.w.fw.cfg.n_vocab, &r);
		s.kw = &kw;
		measure_chunks(&m, NULL, &s, t.ids, t.n);
		if (isq_kld_writer_finish(&kw) || isq_out_commit(&out))
			isq_die("%s", isq_errbuf_msg(&out.err));
	} else {
		measure(&m, opt_kl_model ? &base : NULL, &t, &r);
	}
	report(&r, fmt);
	text_release(&t);
	if (opt_kl_model)
		model_close(&base);
	model_close(&m);
}

/* --kl FILE: MODEL over the tokens and chunks saved in FILE, against the base's saved log-probabilities. */
static void run_kl_file(struct isq_backend *be, enum report_format fmt, int ctx_given)
{
	struct isq_kld k;
	if (isq_kld_open(&k, opt_kl_file))
		isq_die("%s", isq_errbuf_msg(&k.err));
	if (ctx_given && opt_ctx != (int64_t)k.n_ctx)
		isq_die("%s: saved with -c %u, not %lld", opt_kl_file, k.n_ctx, (long long)opt_ctx);
	if (k.n_records < 1)
		isq_die("%s: no scored tokens in the file", opt_kl_file);
	if (k.n_ctx < 4 || k.n_ctx > (1 << 20))
		isq_die("%s: context of %u tokens is out of isq-bench's range (4 to 1048576)", opt_kl_file, k.n_ctx);
	opt_ctx = k.n_ctx;
	struct model m = { 0 };
	model_open(&m, opt_model, be);
	if (m.w.fw.cfg.n_vocab != k.n_vocab)
		isq_die("%s: vocabulary of %d tokens, but %s has %lld", opt_kl_file, k.n_vocab, opt_model,
			(long long)m.w.fw.cfg.n_vocab);
	size_t n = (size_t)k.n_ctx * (size_t)k.n_chunk;
	int32_t *ids = isq_mallocarray(n, sizeof(*ids));
	if (!ids)
		isq_die("out of memory");
	for (size_t i = 0; i < n; i++)
		ids[i] = isq_kld_token(&k, (int64_t)i);
	if (!k.has_trailer)
		isq_info("%s: no exact base NLL in the file (written by llama.cpp?): PPL(base) comes from the 16-bit "
			 "values, which clip at 16 nats below the top", opt_kl_file);
	struct scorer s;
	struct result r;
	scorer_init(&s, m.w.fw.cfg.n_vocab, &r);
	s.kld = &k;
	measure_chunks(&m, NULL, &s, ids, n);
	report(&r, fmt);
	free(ids);
	model_close(&m);
	isq_kld_release(&k);
}

int main(int argc, char **argv)
{
	struct isq_strlist pos = ISQ_STRLIST_INIT;
	isq_tool_parse(&cmd, argc, argv, &pos);
	isq_set_verbosity(1 - opt_quiet + opt_verbose);
	if (pos.n)
		isq_tool_usage_error(&cmd, "unexpected argument '%s'", pos.items[0]);
	if (!opt_model)
		isq_tool_usage_error(&cmd, "no model given (-m)");
	if (opt_ppl + !!opt_kl_model + !!opt_kl_base + !!opt_kl_file + !!opt_sweep + opt_tensors + opt_speed + opt_quant != 1)
		isq_tool_usage_error(&cmd, "give one mode: --ppl, --kl-model BASE, --kl-base OUT, --kl FILE, --sweep TYPES, "
					   "--tensors, --speed or --quant");
	check_measure_opts();
	if (opt_kl_file && opt_file)
		isq_tool_usage_error(&cmd, "--kl takes its tokens from '%s'; -f is not used", opt_kl_file);
	if (!opt_file && !opt_kl_file && !opt_tensors && !opt_speed && !opt_quant)
		isq_tool_usage_error(&cmd, "no text given (-f)");
	/* with --kl the context is the file's; a -c given anyway must agree with it */
	int ctx_given = opt_ctx != INT64_MIN;
	if (!ctx_given)
		opt_ctx = 512;
	if (opt_ctx < 4 || opt_ctx > (1 << 20))
		isq_tool_usage_error(&cmd, "-c must be between 4 and 1048576");
	if (opt_chunks < 0)
		isq_tool_usage_error(&cmd, "--chunks must not be negative");
	if (opt_per_doc && (opt_kl_base || opt_kl_file))
		isq_tool_usage_error(&cmd, "--per-document goes with --ppl, --kl-model or --sweep (a .kld file holds "
					   "llama-perplexity's chunks)");
	if (opt_per_doc && opt_chunks)
		isq_tool_usage_error(&cmd, "--chunks does not apply to --per-document");
	if (opt_plot && !opt_sweep)
		isq_tool_usage_error(&cmd, "--plot goes with --sweep");
	if (opt_imatrix && !opt_sweep && !opt_tensors && !opt_quant)
		isq_tool_usage_error(&cmd, "--imatrix goes with --sweep, --tensors or --quant");
	if ((opt_kl_base && !strcmp(opt_kl_base, "-")) || (opt_plot && !strcmp(opt_plot, "-")))
		isq_tool_usage_error(&cmd, "%s needs a file: stdout carries the report", opt_plot ? "--plot" : "--kl-base");
	enum report_format fmt = parse_format();
	signal(SIGPIPE, SIG_IGN);

	struct isq_errbuf e = { 0 };
	struct isq_backend *be;
	int rc = isq_backend_new(opt_backend, isq_tool_threads(opt_threads), &be, &e);
	if (rc == ISQ_EINVAL)
		isq_tool_usage_error(&cmd, "%s", isq_errbuf_msg(&e));
	if (rc)
		isq_die("%s", isq_errbuf_msg(&e));
	isq_types_init();

	if (opt_tensors || opt_quant)
		run_tensors(fmt);
	else if (opt_speed)
		run_speed(be, fmt);
	else if (opt_sweep)
		sweep(be, fmt);
	else if (opt_kl_file)
		run_kl_file(be, fmt, ctx_given);
	else
		run_text(be, fmt);
	isq_strlist_release(&pos);
	isq_backend_free(be);
	return isq_tool_exit(0);
}
