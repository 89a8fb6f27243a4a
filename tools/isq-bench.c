/* isq-bench - measure a model's quality: perplexity, and KL divergence against a base model. */
#include "io.h"
#include "progress.h"
#include "tokenizer.h"
#include "tool.h"
#include "weights.h"

#include <cJSON.h>
#include <libgen.h>
#include <math.h>
#include <signal.h>

static const char *opt_model, *opt_file, *opt_kl_model, *opt_format, *opt_backend = "cpu";
static int64_t opt_ctx = 512, opt_chunks, opt_threads;
static int opt_ppl, opt_json, opt_quiet, opt_verbose;

static const struct isq_opt options[] = {
	ISQ_OPT_STRING('m', "model", &opt_model, "MODEL", "HF directory, safetensors or GGUF file"),
	ISQ_OPT_FLAG(0, "ppl", &opt_ppl, "perplexity of MODEL over the text (llama-perplexity's method)"),
	ISQ_OPT_STRING(0, "kl-model", &opt_kl_model, "BASE", "KL divergence of MODEL from BASE over the text"),
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
	NULL,
};

static const struct isq_cmd cmd = {
	.name = "isq-bench",
	.usage = usage,
	.summary = "Measure a model's quality on a text: perplexity as llama-perplexity computes it (chunks of\n"
		   "-c tokens, BOS first, the second half of each chunk scored), or the KL divergence of its\n"
		   "next-token distributions from a base model's over the same chunks.",
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
	int64_t n_tokens, n_chunks, scored;
	struct acc nll, nll_base, kl, dp2;
	int64_t same_top;
	double kl_max, kl_p99;
	double seconds;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void eval_chunk(struct model *m, const int32_t *ids, float *logits, int64_t k)
{
	struct isq_errbuf e = { 0 };
	if (isq_fw_eval(m->fw, ids, (int)opt_ctx, 0, logits, ISQ_FW_LOGITS_ALL, &e))
		isq_die("%s: chunk %lld: %s", m->path, (long long)k + 1, isq_errbuf_msg(&e));
}

/*
 * llama-perplexity's chunking: the whole text tokenized once, chunk k is
 * tokens [k*c, (k+1)*c) with its first token replaced by BOS, and the logits
 * of positions c/2 .. c-2 score the token after each.  With BASE, the same
 * chunks through the base model give the KL divergence, computed exactly
 * from both models' log-softmax (no 16-bit clipping of the base).
 */
static void measure(struct model *m, struct model *base, const int32_t *ids, size_t n_ids, struct result *r)
{
	int64_t c = opt_ctx, nv = m->w.fw.cfg.n_vocab;
	if (base && base->w.fw.cfg.n_vocab != nv)
		isq_die("%s: vocabulary of %lld tokens, but %s has %lld", base->path, (long long)base->w.fw.cfg.n_vocab,
			opt_model, (long long)nv);
	int64_t n_chunks = (int64_t)n_ids / c;
	if ((int64_t)n_ids < 2 * c)
		isq_die("%s: %zu tokens, fewer than 2 x %lld (two chunks) that perplexity needs", opt_file, n_ids,
			(long long)c);
	if (opt_chunks > 0 && n_chunks > opt_chunks)
		n_chunks = opt_chunks;
	int32_t bos = isq_tokenizer_add_bos(m->tok) ? isq_tokenizer_bos(m->tok) : -1;
	int64_t first = c / 2, per_chunk = c - 1 - first;
	float *lg = isq_mallocarray((size_t)(c * nv), sizeof(float));
	float *lgb = base ? isq_mallocarray((size_t)(c * nv), sizeof(float)) : NULL;
	double *lp = isq_mallocarray((size_t)nv, sizeof(double));
	double *lpb = base ? isq_mallocarray((size_t)nv, sizeof(double)) : NULL;
	double *kls = base ? isq_mallocarray((size_t)(n_chunks * per_chunk), sizeof(double)) : NULL;
	int32_t *chunk = isq_mallocarray((size_t)c, sizeof(int32_t));
	if (!lg || !lp || !chunk || (base && (!lgb || !lpb || !kls)))
		isq_die("out of memory");
	memset(r, 0, sizeof(*r));
	r->n_tokens = (int64_t)n_ids;
	r->n_chunks = n_chunks;
	int64_t n_kl = 0;
	double t0 = isq_now();
	for (int64_t k = 0; k < n_chunks; k++) {
		memcpy(chunk, ids + k * c, (size_t)c * sizeof(*chunk));
		if (bos >= 0)
			chunk[0] = bos;
		eval_chunk(m, chunk, lg, k);
		if (base)
			eval_chunk(base, chunk, lgb, k);
		for (int64_t p = first; p < c - 1; p++) {
			int32_t tgt = ids[k * c + p + 1];
			int64_t top = log_softmax(lg + p * nv, nv, lp);
			acc_add(&r->nll, -lp[tgt]);
			if (!base)
				continue;
			int64_t topb = log_softmax(lgb + p * nv, nv, lpb);
			acc_add(&r->nll_base, -lpb[tgt]);
			double kl = 0;
			for (int64_t i = 0; i < nv; i++)
				kl += exp(lpb[i]) * (lpb[i] - lp[i]);
			if (kl < 0)
				kl = 0; /* rounding when the two distributions are the same */
			kls[n_kl++] = kl;
			acc_add(&r->kl, kl);
			double dp = exp(lp[tgt]) - exp(lpb[tgt]);
			acc_add(&r->dp2, dp * dp);
			r->same_top += top == topb;
			if (kl > r->kl_max)
				r->kl_max = kl;
		}
		r->scored += per_chunk;
		if (isq_get_verbosity() >= 2)
			isq_debug("[%lld] ppl %.4f", (long long)k + 1, exp(acc_mean(&r->nll)));
	}
	r->seconds = isq_now() - t0;
	if (base && n_kl) {
		qsort(kls, (size_t)n_kl, sizeof(double), cmp_double);
		int64_t i = (int64_t)ceil(0.99 * (double)n_kl) - 1;
		r->kl_p99 = kls[i < 0 ? 0 : i];
	}
	free(chunk);
	free(kls);
	free(lpb);
	free(lp);
	free(lgb);
	free(lg);
}

static void report(const struct result *r, enum report_format fmt)
{
	double ppl = exp(acc_mean(&r->nll)), ppl_err = ppl * acc_err(&r->nll);
	double pplb = exp(acc_mean(&r->nll_base)), pplb_err = pplb * acc_err(&r->nll_base);
	double top1 = r->scored ? 100.0 * (double)r->same_top / (double)r->scored : 0;
	double rms_dp = 100.0 * sqrt(acc_mean(&r->dp2));
	int kl = opt_kl_model != NULL;
	if (fmt == FMT_JSON) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "mode", kl ? "kl" : "ppl");
		cJSON_AddStringToObject(j, "model", opt_model);
		if (kl)
			cJSON_AddStringToObject(j, "base", opt_kl_model);
		cJSON_AddStringToObject(j, "file", opt_file);
		cJSON_AddNumberToObject(j, "ctx", (double)opt_ctx);
		cJSON_AddNumberToObject(j, "chunks", (double)r->n_chunks);
		cJSON_AddNumberToObject(j, "tokens", (double)r->n_tokens);
		cJSON_AddNumberToObject(j, "scored_tokens", (double)r->scored);
		cJSON_AddNumberToObject(j, "ppl", ppl);
		cJSON_AddNumberToObject(j, "ppl_err", ppl_err);
		if (kl) {
			cJSON_AddNumberToObject(j, "ppl_base", pplb);
			cJSON_AddNumberToObject(j, "ppl_base_err", pplb_err);
			cJSON_AddNumberToObject(j, "kl_mean", acc_mean(&r->kl));
			cJSON_AddNumberToObject(j, "kl_err", acc_err(&r->kl));
			cJSON_AddNumberToObject(j, "kl_p99", r->kl_p99);
			cJSON_AddNumberToObject(j, "kl_max", r->kl_max);
			cJSON_AddNumberToObject(j, "top1_pct", top1);
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
			       "kl_p99,kl_max,top1_pct,rms_dp_pct\n%s,%s,%lld,%lld,%lld,%.6f,%.6f,%.6f,%.6f,%.6g,%.6g,"
			       "%.6g,%.6g,%.4f,%.4f\n",
			       opt_model, opt_kl_model, (long long)opt_ctx, (long long)r->n_chunks, (long long)r->scored,
			       ppl, ppl_err, pplb, pplb_err, acc_mean(&r->kl), acc_err(&r->kl), r->kl_p99, r->kl_max,
			       top1, rms_dp);
		else
			printf("model,ctx,chunks,scored_tokens,ppl,ppl_err\n%s,%lld,%lld,%lld,%.6f,%.6f\n", opt_model,
			       (long long)opt_ctx, (long long)r->n_chunks, (long long)r->scored, ppl, ppl_err);
	} else if (kl) {
		printf("| metric | value |\n|---|---|\n");
		printf("| PPL(model) | %.4f +/- %.5f |\n| PPL(base) | %.4f +/- %.5f |\n", ppl, ppl_err, pplb, pplb_err);
		printf("| mean KL | %.6f +/- %.6f |\n| KL 99%% | %.6f |\n| KL max | %.6f |\n", acc_mean(&r->kl),
		       acc_err(&r->kl), r->kl_p99, r->kl_max);
		printf("| same top | %.3f %% |\n| RMS dp | %.3f %% |\n", top1, rms_dp);
		printf("| scored tokens | %lld (%lld chunks of %lld) |\n", (long long)r->scored, (long long)r->n_chunks,
		       (long long)opt_ctx);
	} else {
		printf("PPL = %.4f +/- %.5f\n", ppl, ppl_err);
	}
	isq_info("%lld chunks of %lld tokens, %lld scored, %.2f s", (long long)r->n_chunks, (long long)opt_ctx,
		 (long long)r->scored, r->seconds);
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

int main(int argc, char **argv)
{
	struct isq_strlist pos = ISQ_STRLIST_INIT;
	isq_tool_parse(&cmd, argc, argv, &pos);
	isq_set_verbosity(1 - opt_quiet + opt_verbose);
	if (pos.n)
		isq_tool_usage_error(&cmd, "unexpected argument '%s'", pos.items[0]);
	if (!opt_model)
		isq_tool_usage_error(&cmd, "no model given (-m)");
	if (opt_ppl == !!opt_kl_model)
		isq_tool_usage_error(&cmd, "give one mode: --ppl or --kl-model BASE");
	if (!opt_file)
		isq_tool_usage_error(&cmd, "no text given (-f)");
	if (opt_ctx < 4 || opt_ctx > (1 << 20))
		isq_tool_usage_error(&cmd, "-c must be between 4 and 1048576");
	if (opt_chunks < 0)
		isq_tool_usage_error(&cmd, "--chunks must not be negative");
	enum report_format fmt = parse_format();
	signal(SIGPIPE, SIG_IGN);

	struct isq_errbuf e = { 0 };
	struct isq_backend *be;
	int rc = isq_backend_new(opt_backend, isq_tool_threads(opt_threads), &be, &e);
	if (rc == ISQ_EINVAL)
		isq_tool_usage_error(&cmd, "%s", isq_errbuf_msg(&e));
	if (rc)
		isq_die("%s", isq_errbuf_msg(&e));

	struct model m = { 0 }, base = { 0 };
	model_open(&m, opt_model, be);
	if (opt_kl_model)
		model_open(&base, opt_kl_model, be);

	struct isq_buf text = ISQ_BUF_INIT;
	if (isq_read_file(opt_file, &text, &e))
		isq_die("%s", isq_errbuf_msg(&e));
	int32_t *ids = NULL;
	size_t n_ids = 0;
	/* as llama-perplexity: BOS if the vocabulary adds one, special-token text taken literally */
	if (isq_tokenizer_encode(m.tok, text.data ? text.data : "", text.len,
				 ISQ_TOKENIZER_ADD_SPECIAL | ISQ_TOKENIZER_LITERAL, &ids, &n_ids))
		isq_die("%s: %s", opt_file, isq_tokenizer_errmsg(m.tok));

	struct result r;
	measure(&m, opt_kl_model ? &base : NULL, ids, n_ids, &r);
	report(&r, fmt);

	free(ids);
	isq_buf_release(&text);
	if (opt_kl_model)
		model_close(&base);
	model_close(&m);
	isq_backend_free(be);
	return isq_tool_exit(0);
}
