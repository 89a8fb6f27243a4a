/* isq-bench - measure a model's quality: perplexity, and KL divergence against a base model. */
#include "eval.h"
#include "forward-bench.h"
#include "io.h"
#include "kld.h"
#include "sweep.h"
#include "progress.h"
#include "svg.h"
#include "tensor-error.h"
#include "tokenizer.h"
#include "tool.h"
#include "weights.h"

#include <cJSON.h>
#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <strings.h>

static const char *opt_model, *opt_file, *opt_kl_model, *opt_format, *opt_backend = "cpu", *opt_cache_type = "f32";
static enum isq_type kv_type = ISQ_TYPE_F32; /* from --cache-type */
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
	ISQ_OPT_STRING(0, "cache-type", &opt_cache_type, "T", "KV cache of every model run: f32 (default) or f16 (llama.cpp's)"),
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

/* One JSON document on stdout, then J is freed. */
static void print_json(cJSON *j)
{
	char *s = cJSON_PrintUnformatted(j);
	if (!s)
		isq_die("out of memory");
	printf("%s\n", s);
	free(s);
	cJSON_Delete(j);
}

enum report_format { FMT_MD, FMT_CSV, FMT_JSON };

/* Chunk (or every hundredth document) K done: the running perplexity at -v. */
static void progress(void *ud, int64_t k, double ppl)
{
	if (isq_get_verbosity() >= 2)
		isq_debug("[%lld] ppl %.4f", (long long)k, ppl);
}

static void warn_ctx(void *ud, const struct isq_eval_model *m)
{
	if (m->ctx_beyond_train)
		isq_warn("%s: chunks of %lld tokens are longer than the model was trained for (%lld)", m->path,
			 (long long)m->n_ctx, (long long)m->w.fw.cfg.n_ctx_train);
}

static void model_open(struct isq_eval_model *m, const char *path, struct isq_backend *be)
{
	struct isq_errbuf e = { 0 };
	if (isq_eval_model_open(m, path, be, opt_ctx, kv_type, &e))
		isq_die("%s", isq_errbuf_msg(&e));
	warn_ctx(NULL, m);
}

/* The measurement the options ask for; the tool adds the base (model, .kld file or writer). */
static struct isq_eval_params eval_params(void)
{
	return (struct isq_eval_params){ .n_ctx = opt_ctx, .max_chunks = opt_chunks, .kv_type = kv_type, .per_doc = opt_per_doc,
					 .text_path = opt_file, .kld_path = opt_kl_file, .progress = progress };
}

static const char *mode_name(void)
{
	return opt_kl_base ? "kl-base" : opt_ppl ? "ppl" : "kl";
}

static void report(const struct isq_eval_result *r, enum report_format fmt)
{
	double ppl = exp(isq_eval_acc_mean(&r->nll)), ppl_err = ppl * isq_eval_acc_err(&r->nll);
	double pplb = exp(isq_eval_acc_mean(&r->nll_base)), pplb_err = pplb * isq_eval_acc_err(&r->nll_base);
	double top1 = isq_eval_top1_pct(r), rms_dp = 100.0 * sqrt(isq_eval_acc_mean(&r->dp2));
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
			cJSON_AddNumberToObject(j, "kl_mean", isq_eval_acc_mean(&r->kl));
			cJSON_AddNumberToObject(j, "kl_err", isq_eval_acc_err(&r->kl));
			cJSON_AddNumberToObject(j, "kl_median", r->kl_median);
			cJSON_AddNumberToObject(j, "kl_p90", r->kl_p90);
			cJSON_AddNumberToObject(j, "kl_p95", r->kl_p95);
			cJSON_AddNumberToObject(j, "kl_p99", r->kl_p99);
			cJSON_AddNumberToObject(j, "kl_max", r->kl_max);
			cJSON_AddNumberToObject(j, "top1_pct", top1);
			cJSON_AddNumberToObject(j, "top1_err_pct", isq_eval_top1_err_pct(r));
			cJSON_AddNumberToObject(j, "rms_dp_pct", rms_dp);
		}
		cJSON_AddNumberToObject(j, "seconds", r->seconds);
		print_json(j);
	} else if (fmt == FMT_CSV) {
		if (kl)
			printf("model,base,ctx,chunks,scored_tokens,ppl,ppl_err,ppl_base,ppl_base_err,kl_mean,kl_err,"
			       "kl_median,kl_p90,kl_p95,kl_p99,kl_max,top1_pct,rms_dp_pct\n%s,%s,%lld,%lld,%lld,%.6f,%.6f,"
			       "%.6f,%.6f,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.4f,%.4f\n",
			       opt_model, basename_, (long long)opt_ctx, (long long)r->n_chunks, (long long)r->scored, ppl,
			       ppl_err, pplb, pplb_err, isq_eval_acc_mean(&r->kl), isq_eval_acc_err(&r->kl), r->kl_median, r->kl_p90, r->kl_p95,
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
		       isq_eval_acc_mean(&r->kl), isq_eval_acc_err(&r->kl), r->kl_median, r->kl_p90, r->kl_p95, r->kl_p99, r->kl_max);
		printf("| same top | %.3f +/- %.3f %% |\n| RMS dp | %.3f %% |\n", top1, isq_eval_top1_err_pct(r), rms_dp);
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

static void sweep_report(const struct isq_sweep_row *rows, size_t n, enum report_format fmt)
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
			const struct isq_sweep_row *w = &rows[i];
			const struct isq_eval_result *r = &w->r;
			double ppl = exp(isq_eval_acc_mean(&r->nll));
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "type", w->label);
			cJSON_AddStringToObject(o, "series", w->series);
			cJSON_AddStringToObject(o, "path", w->path ? w->path : i ? "" : opt_model);
			cJSON_AddBoolToObject(o, "imatrix", w->imatrix);
			cJSON_AddNumberToObject(o, "bytes", (double)w->bytes);
			cJSON_AddNumberToObject(o, "bits_per_weight", w->bpw);
			cJSON_AddNumberToObject(o, "fallbacks", w->fallbacks);
			cJSON_AddNumberToObject(o, "ppl", ppl);
			cJSON_AddNumberToObject(o, "ppl_err", ppl * isq_eval_acc_err(&r->nll));
			cJSON_AddNumberToObject(o, "kl_mean", isq_eval_acc_mean(&r->kl));
			cJSON_AddNumberToObject(o, "kl_err", isq_eval_acc_err(&r->kl));
			cJSON_AddNumberToObject(o, "kl_median", r->kl_median);
			cJSON_AddNumberToObject(o, "kl_p99", r->kl_p99);
			cJSON_AddNumberToObject(o, "kl_max", r->kl_max);
			cJSON_AddNumberToObject(o, "top1_pct", i ? isq_eval_top1_pct(r) : 100);
			cJSON_AddNumberToObject(o, "rms_dp_pct", 100.0 * sqrt(isq_eval_acc_mean(&r->dp2)));
			cJSON_AddNumberToObject(o, "seconds", r->seconds);
			cJSON_AddItemToArray(arr, o);
		}
		print_json(j);
		return;
	}
	if (fmt == FMT_CSV)
		printf("type,series,imatrix,bytes,bits_per_weight,ppl,ppl_err,kl_mean,kl_err,kl_median,kl_p99,kl_max,"
		       "top1_pct,rms_dp_pct\n");
	else
		printf("| type | series | bytes | bpw | PPL | mean KL | KL 99%% | same top %% | RMS dp %% |\n"
		       "|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
	for (size_t i = 0; i < n; i++) {
		const struct isq_sweep_row *w = &rows[i];
		const struct isq_eval_result *r = &w->r;
		double ppl = exp(isq_eval_acc_mean(&r->nll)), top1 = i ? isq_eval_top1_pct(r) : 100;
		if (fmt == FMT_CSV)
			printf("%s,%s,%d,%llu,%.4f,%.6f,%.6f,%.6g,%.6g,%.6g,%.6g,%.6g,%.4f,%.4f\n", w->label, w->series,
			       w->imatrix, (unsigned long long)w->bytes, w->bpw, ppl, ppl * isq_eval_acc_err(&r->nll),
			       isq_eval_acc_mean(&r->kl), isq_eval_acc_err(&r->kl), r->kl_median, r->kl_p99, r->kl_max, top1,
			       100.0 * sqrt(isq_eval_acc_mean(&r->dp2)));
		else
			printf("| %s | %s | %llu | %.3f | %.4f +/- %.4f | %.6f | %.5f | %.2f | %.3f |\n", w->label, w->series,
			       (unsigned long long)w->bytes, w->bpw, ppl, ppl * isq_eval_acc_err(&r->nll), isq_eval_acc_mean(&r->kl),
			       r->kl_p99, top1, 100.0 * sqrt(isq_eval_acc_mean(&r->dp2)));
	}
}

/*
 * Two charts in one SVG file: bits per weight against mean KL (log scale),
 * and against PPL.  Unquantized rows (16 bits or more) would stretch the x
 * axis over the range nobody compares, so the PPL title gives MODEL's
 * figure instead; a KL that is zero to rounding has no place on a log axis.
 */
static void sweep_plot(const struct isq_sweep_row *rows, size_t n)
{
	struct isq_plot_point *kl = calloc(n, sizeof(*kl)), *ppl = calloc(n, sizeof(*ppl));
	if (!kl || !ppl)
		isq_die("out of memory");
	size_t nk = 0, np = 0;
	for (size_t i = 0; i < n; i++) {
		const struct isq_sweep_row *w = &rows[i];
		double k = isq_eval_acc_mean(&w->r.kl);
		if (w->bpw >= 16)
			continue;
		if (k > 1e-9)
			kl[nk++] = (struct isq_plot_point){ w->series, w->label, w->bpw, k };
		ppl[np++] = (struct isq_plot_point){ w->series, w->label, w->bpw, exp(isq_eval_acc_mean(&w->r.nll)) };
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
	snprintf(title, sizeof(title), "%s: perplexity (unquantized: %.4f)", name, exp(isq_eval_acc_mean(&rows[0].r.nll)));
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

static void sweep_row_done(void *ud, const struct isq_sweep *sw, size_t i)
{
	const struct isq_sweep_row *row = &sw->rows[i];
	if (!i)
		isq_info("%s: PPL %.4f", opt_model, exp(isq_eval_acc_mean(&row->r.nll)));
	else
		isq_info("%s (%s): %.3f bpw, PPL %.4f, mean KL %.6f", row->label, row->series, row->bpw,
			 exp(isq_eval_acc_mean(&row->r.nll)), isq_eval_acc_mean(&row->r.kl));
}

/*
 * --sweep: MODEL is the base.  Its own row first (KL 0 by definition), then
 * each type quantized into a temporary GGUF and each peer's file, measured
 * against MODEL over the same text.
 */
static void sweep(struct isq_backend *be, enum report_format fmt)
{
	struct isq_sweep sw;
	struct isq_errbuf e = { 0 };
	int rc = isq_sweep_parse(&sw, opt_sweep, opt_imatrix != NULL, &e);
	if (rc == ISQ_EINVAL)
		isq_tool_usage_error(&cmd, "--sweep: %s", isq_errbuf_msg(&e));
	if (rc)
		isq_die("%s", isq_errbuf_msg(&e));
	struct isq_sweep_params p = { .model = opt_model, .be = be, .imatrix = opt_imatrix,
				      .threads = isq_tool_threads(opt_threads), .eval = eval_params(),
				      .on_model = warn_ctx, .on_row = sweep_row_done };
	if (isq_sweep_run(&sw, &p, &e))
		isq_die("%s", isq_errbuf_msg(&e));
	sweep_report(sw.rows, sw.n_rows, fmt);
	if (opt_plot)
		sweep_plot(sw.rows, sw.n_rows);
	isq_sweep_release(&sw);
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
		print_json(j);
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
		print_json(j);
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
	struct isq_fw_bench_params bp = { .n_prompt = (int)opt_n_prompt, .n_gen = (int)opt_n_gen, .reps = (int)opt_reps,
					  .kv_type = kv_type };
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
		cJSON_AddStringToObject(j, "cache_type", kv_type == ISQ_TYPE_F16 ? "f16" : "f32");
		arr = cJSON_AddArrayToObject(j, "tests");
		for (int i = 0; i < nr; i++) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "test", rows[i].test);
			cJSON_AddNumberToObject(o, "avg_ts", rows[i].mean);
			cJSON_AddNumberToObject(o, "stddev_ts", rows[i].sd);
			cJSON_AddNumberToObject(o, "cpu_ts", rows[i].cpu);
			cJSON_AddItemToArray(arr, o);
		}
		print_json(j);
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
	struct isq_eval_model m, base = { 0 };
	struct isq_errbuf e = { 0 };
	model_open(&m, opt_model, be);
	if (opt_kl_model)
		model_open(&base, opt_kl_model, be);
	struct isq_eval_text t;
	if (isq_eval_text_load(&t, &m, opt_file, opt_per_doc, &e))
		isq_die("%s", isq_errbuf_msg(&e));
	struct isq_eval_result r;
	struct isq_eval_params p = eval_params();
	if (opt_kl_base) {
		struct isq_out out;
		struct isq_kld_writer kw = { 0 };
		if (isq_out_open(&out, opt_kl_base))
			isq_die("%s", isq_errbuf_msg(&out.err));
		kw.out = &out;
		p.kw = &kw;
		if (isq_eval_chunks(&m, NULL, t.ids, t.n, &p, &r, &e))
			isq_die("%s", isq_errbuf_msg(&e));
		if (isq_kld_writer_finish(&kw) || isq_out_commit(&out))
			isq_die("%s", isq_errbuf_msg(&out.err));
	} else if (isq_eval_measure(&m, opt_kl_model ? &base : NULL, &t, &p, &r, &e)) {
		isq_die("%s", isq_errbuf_msg(&e));
	}
	report(&r, fmt);
	isq_eval_text_release(&t);
	isq_eval_model_close(&base);
	isq_eval_model_close(&m);
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
	struct isq_eval_model m;
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
	struct isq_eval_result r;
	struct isq_eval_params p = eval_params();
	struct isq_errbuf e = { 0 };
	p.kld = &k;
	if (isq_eval_chunks(&m, NULL, ids, n, &p, &r, &e))
		isq_die("%s", isq_errbuf_msg(&e));
	report(&r, fmt);
	free(ids);
	isq_eval_model_close(&m);
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
	if (!strcasecmp(opt_cache_type, "f16"))
		kv_type = ISQ_TYPE_F16;
	else if (strcasecmp(opt_cache_type, "f32"))
		isq_tool_usage_error(&cmd, "--cache-type must be f32 or f16, not '%s'", opt_cache_type);
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
