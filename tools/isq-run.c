/* isq-run - generate text with a model on the CPU (or another backend). */
#include "io.h"
#include "progress.h"
#include "run-config.h"
#include "sample.h"
#include "tokenizer.h"
#include "tool.h"
#include "tune.h"
#include "weights.h"

#include <cJSON.h>
#include <libgen.h>
#include <signal.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static const char *opt_model, *opt_prompt, *opt_file, *opt_backend = "cpu", *opt_isq, *opt_quant, *opt_config,
	*opt_cache_type = "f32";
static int64_t opt_n = -1, opt_top_k = 40, opt_threads, opt_ctx, opt_seed = -1;
static double opt_temp = 0.8, opt_top_p = 0.95, opt_min_p = 0.05;
static int opt_no_echo, opt_json, opt_quiet, opt_verbose;
static int kv_f16; /* --cache-type f16 */

static const struct isq_opt options[] = {
	ISQ_OPT_STRING('m', "model", &opt_model, "MODEL", "HF directory, safetensors or GGUF file, UQFF directory"),
	ISQ_OPT_STRING('p', "prompt", &opt_prompt, "TEXT", "the prompt"),
	ISQ_OPT_STRING('f', "file", &opt_file, "FILE", "read the prompt from FILE ('-' = stdin)"),
	ISQ_OPT_STRING(0, "isq", &opt_isq, "TYPE", "quantize F32/F16/BF16 matrices to TYPE while loading"),
	ISQ_OPT_STRING(0, "quant", &opt_quant, "TYPE", "a prebuilt UQFF of TYPE in MODEL, else --isq TYPE; auto: isq-tune's pick"),
	ISQ_OPT_STRING(0, "config", &opt_config, "FILE",
		       "mistral.rs from-config TOML (isq-tune --emit-config): model and --isq, unless given here"),
	ISQ_OPT_INT('n', "n-predict", &opt_n, "N", "tokens to generate (default -1: until EOS or the context is full)"),
	ISQ_OPT_INT('c', "ctx", &opt_ctx, "N", "context length (default: prompt + N, else the model's)"),
	ISQ_OPT_DOUBLE(0, "temp", &opt_temp, "T", "temperature; 0 is greedy (default 0.8)"),
	ISQ_OPT_INT(0, "top-k", &opt_top_k, "K", "keep the K most likely tokens; 0 = off (default 40)"),
	ISQ_OPT_DOUBLE(0, "top-p", &opt_top_p, "P", "keep the smallest set of probability P; 1 = off (default 0.95)"),
	ISQ_OPT_DOUBLE(0, "min-p", &opt_min_p, "P", "drop tokens below P x the top probability; 0 = off (default 0.05)"),
	ISQ_OPT_INT(0, "seed", &opt_seed, "S", "random seed (default: from the clock)"),
	ISQ_OPT_FLAG(0, "no-echo", &opt_no_echo, "do not print the prompt before the continuation"),
	ISQ_OPT_STRING(0, "cache-type", &opt_cache_type, "T", "KV cache precision: f32 (default) or f16 (half the memory)"),
	ISQ_OPT_STRING(0, "backend", &opt_backend, "B", "where to compute: cpu (default), cuda, vulkan"),
	ISQ_OPT_INT(0, "threads", &opt_threads, "N", "worker threads (default: all cores)"),
	ISQ_OPT_FLAG(0, "json", &opt_json, "summary as JSON on stderr (stdout keeps the text)"),
	ISQ_OPT_COUNT('q', "quiet", &opt_quiet, "print less on stderr"),
	ISQ_OPT_COUNT('v', "verbose", &opt_verbose, "print more on stderr"),
	ISQ_OPT_END(),
};

static const char *const usage[] = { "-m MODEL [-p TEXT | -f FILE] [-n N] [options]",
				     "--config FILE [-p TEXT | -f FILE] [-n N] [options]", NULL };

static const struct isq_cmd cmd = {
	.name = "isq-run",
	.usage = usage,
	.summary = "Continue a prompt with a Llama-family model (llama, mistral, qwen2, qwen3) from a GGUF file,\n"
		   "a Hugging Face directory or a UQFF directory.  The prompt and the continuation go to standard output;\n"
		   "timings go to standard error.",
	.opts = options,
};

struct run_stats {
	double load_s, prompt_s, gen_s;
	size_t n_prompt, n_gen;
	uint64_t seed;
	const char *stop; /* "eos", "length" or "context" */
};

static double peak_rss_mib(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	return (double)ru.ru_maxrss / 1024.0; /* KiB on Linux */
}

static void load_prompt(struct isq_buf *text)
{
	struct isq_errbuf e = { 0 };
	if (opt_file) {
		if (isq_read_file(opt_file, text, &e))
			isq_die("%s", isq_errbuf_msg(&e));
	} else if (opt_prompt && isq_buf_puts(text, opt_prompt)) {
		isq_die("out of memory");
	}
}

/*
 * --quant TYPE|auto, mistral.rs's front door: `auto` is isq-tune's balanced
 * choice for this machine; a shard <TYPE>-0.uqff in the model directory (our
 * name or mistral.rs's label) is run when present, otherwise the model is
 * quantized while loading.  Sets *path to what to open and opt_isq.
 */
static void resolve_quant(const char **path, char *type_buf, size_t n)
{
	const char *want = opt_quant;
	if (!strcasecmp(want, "auto")) {
		struct isq_model m;
		struct isq_errbuf e = { 0 };
		if (isq_model_open(&m, opt_model))
			isq_die("%s", isq_errbuf_msg(&m.err));
		int rc = isq_tune_recommend(&m, ISQ_TARGET_CPU, type_buf, n, &e);
		isq_model_release(&m);
		if (rc)
			isq_die("%s: --quant auto: %s", opt_model, isq_errbuf_msg(&e));
		isq_info("--quant auto: %s (isq-tune's balanced choice for this machine)", type_buf);
		want = type_buf;
	}
	enum isq_type t;
	const char *near = NULL;
	if (isq_type_parse(want, &t, &near))
		isq_tool_usage_error(&cmd, "unknown type '%s'%s%s%s", want, near ? " (did you mean '" : "",
				     near ? near : "", near ? "'?)" : "");
	const char *names[2] = { isq_type_name(t), isq_uqff_type_label(t) };
	for (int i = 0; i < 2 && isq_is_dir(opt_model); i++) {
		static struct isq_buf shard = ISQ_BUF_INIT;
		char file[64];
		if (!names[i])
			continue;
		snprintf(file, sizeof(file), "%s-0.uqff", names[i]);
		isq_buf_reset(&shard);
		if (isq_path_join(&shard, opt_model, file))
			isq_die("out of memory");
		if (isq_path_exists(shard.data)) {
			isq_info("--quant %s: the prebuilt %s", isq_type_name(t), shard.data);
			*path = shard.data;
			return;
		}
	}
	opt_isq = isq_type_name(t);
}

/*
 * GGUF files carry their tokenizer; a GGUF without one (written from a model
 * whose tokenizer could not be converted) borrows the tokenizer.json beside it.
 */
static void load_tokenizer(struct isq_tokenizer *tok, const struct isq_weights *w)
{
	if (w->from_gguf) {
		int rc = isq_tokenizer_load_gguf(tok, w->model.gguf);
		if (rc != ISQ_ENOTFOUND) {
			if (rc)
				isq_die("%s: %s", opt_model, isq_tokenizer_errmsg(tok));
			return;
		}
	} else if (isq_is_dir(opt_model)) {
		if (isq_tokenizer_load_hf(tok, opt_model))
			isq_die("%s: %s", opt_model, isq_tokenizer_errmsg(tok));
		return;
	}
	struct isq_buf side = ISQ_BUF_INIT;
	char *copy = isq_strdup(opt_model);
	if (!copy || isq_path_join(&side, dirname(copy), "tokenizer.json"))
		isq_die("out of memory");
	free(copy);
	if (!isq_path_exists(side.data))
		isq_die("%s: no tokenizer (no tokenizer.ggml.* keys or tokenizer.json beside the weights)", opt_model);
	if (isq_tokenizer_load_hf(tok, side.data))
		isq_die("%s: %s", side.data, isq_tokenizer_errmsg(tok));
	isq_debug("%s: tokenizer from %s", opt_model, side.data);
	isq_buf_release(&side);
}

static void emit(struct isq_buf *out)
{
	if (out->len) {
		fwrite(out->data, 1, out->len, stdout);
		fflush(stdout);
	}
	isq_buf_reset(out);
}

/* Prefill, then sample and stream until EOS, -n or the end of the context. */
static void generate(struct isq_fw_ctx *fw, struct isq_tokenizer *tok, const int32_t *ids, size_t n_prompt,
		     int64_t n_ctx, int64_t n_vocab, struct run_stats *st)
{
	struct isq_errbuf e = { 0 };
	struct isq_sampler smp;
	struct isq_sampler_params sp = { opt_temp, (int)opt_top_k, opt_top_p, opt_min_p, st->seed };
	float *logits = isq_mallocarray((size_t)n_vocab, sizeof(float));
	if (!logits || isq_sampler_init(&smp, &sp, (size_t)n_vocab))
		isq_die("out of memory");
	struct isq_tokenizer_stream ts;
	struct isq_buf out = ISQ_BUF_INIT;
	isq_tokenizer_stream_init(&ts, ISQ_TOKENIZER_SKIP_SPECIAL);
	/* the prompt goes through the stream even unechoed: the decoder's leading-space rules depend on it */
	for (size_t i = 0; i < n_prompt; i++)
		isq_tokenizer_stream_put(tok, &ts, ids[i], &out);
	if (opt_no_echo)
		isq_buf_reset(&out);
	emit(&out);

	double t0 = isq_now();
	if (isq_fw_eval(fw, ids, (int)n_prompt, 0, logits, 0, &e))
		isq_die("%s", isq_errbuf_msg(&e));
	st->prompt_s = isq_now() - t0;
	st->stop = "length";
	t0 = isq_now();
	int64_t pos = (int64_t)n_prompt;
	while (opt_n < 0 || (int64_t)st->n_gen < opt_n) {
		int32_t id = isq_sampler_sample(&smp, logits, (size_t)n_vocab);
		if (isq_tokenizer_is_eog(tok, id)) {
			st->stop = "eos";
			break;
		}
		st->n_gen++;
		if (isq_tokenizer_stream_put(tok, &ts, id, &out))
			isq_die("%s: %s", opt_model, isq_tokenizer_errmsg(tok));
		emit(&out);
		if (opt_n >= 0 && (int64_t)st->n_gen == opt_n)
			break;
		if (pos >= n_ctx) {
			st->stop = "context";
			break;
		}
		if (isq_fw_eval(fw, &id, 1, pos++, logits, 0, &e))
			isq_die("%s", isq_errbuf_msg(&e));
	}
	st->gen_s = isq_now() - t0;
	isq_tokenizer_stream_flush(tok, &ts, &out);
	/* end the text as a line, so that what follows on the terminal starts on its own */
	if (out.len || !opt_no_echo || st->n_gen)
		isq_buf_putc(&out, '\n');
	emit(&out);
	isq_buf_release(&out);
	isq_sampler_release(&smp);
	free(logits);
}

static double rate(size_t n, double s)
{
	return s > 0 ? (double)n / s : 0;
}

static void report(const struct run_stats *st, const struct isq_backend *be)
{
	if (opt_json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "model", opt_model);
		cJSON_AddStringToObject(j, "backend", be->name);
		cJSON_AddNumberToObject(j, "threads", be->n_threads);
		cJSON_AddStringToObject(j, "cache_type", kv_f16 ? "f16" : "f32");
		cJSON_AddNumberToObject(j, "seed", (double)st->seed);
		cJSON_AddNumberToObject(j, "load_s", st->load_s);
		cJSON_AddNumberToObject(j, "prompt_tokens", (double)st->n_prompt);
		cJSON_AddNumberToObject(j, "prompt_s", st->prompt_s);
		cJSON_AddNumberToObject(j, "prompt_tok_s", rate(st->n_prompt, st->prompt_s));
		cJSON_AddNumberToObject(j, "gen_tokens", (double)st->n_gen);
		cJSON_AddNumberToObject(j, "gen_s", st->gen_s);
		cJSON_AddNumberToObject(j, "gen_tok_s", rate(st->n_gen, st->gen_s));
		cJSON_AddStringToObject(j, "stop", st->stop);
		cJSON_AddNumberToObject(j, "peak_rss_bytes", peak_rss_mib() * 1024 * 1024);
		char *s = cJSON_PrintUnformatted(j);
		if (s)
			fprintf(stderr, "%s\n", s);
		free(s);
		cJSON_Delete(j);
		return;
	}
	if (isq_get_verbosity() < 1)
		return;
	isq_info("load %.1f ms, prompt %zu tokens %.1f tok/s, generation %zu tokens %.1f tok/s (%s), peak RSS %.1f MiB",
		 st->load_s * 1e3, st->n_prompt, rate(st->n_prompt, st->prompt_s), st->n_gen, rate(st->n_gen, st->gen_s),
		 st->stop, peak_rss_mib());
}

/*
 * --config: mistral.rs's from-config TOML fills in what the command line
 * left out (the model, --isq); options given on the command line win.
 */
static void load_config(struct isq_run_config *cfg)
{
	struct isq_buf text = ISQ_BUF_INIT;
	struct isq_errbuf e = { 0 };
	if (isq_read_file(opt_config, &text, &e))
		isq_die("%s", isq_errbuf_msg(&e));
	if (isq_run_config_parse(cfg, text.data ? text.data : "", text.len, opt_config, &e))
		isq_die("%s", isq_errbuf_msg(&e));
	isq_buf_release(&text);
	if (!opt_model && !cfg->model_id)
		isq_die("%s: no model_id in [[models]] and no -m", opt_config);
	if (!opt_model)
		opt_model = cfg->model_id;
	if (!opt_isq && !opt_quant && cfg->isq)
		opt_isq = cfg->isq;
	if (cfg->n_device_layers)
		isq_info("%s: device_layers ignored: the %s backend places no layers", opt_config, opt_backend);
	if (cfg->dtype && strcmp(cfg->dtype, "auto"))
		isq_debug("%s: dtype %s: matrices keep their stored type unless --isq is given", opt_config, cfg->dtype);
}

int main(int argc, char **argv)
{
	struct isq_strlist pos = ISQ_STRLIST_INIT;
	isq_tool_parse(&cmd, argc, argv, &pos);
	isq_set_verbosity(1 - opt_quiet + opt_verbose);
	if (pos.n)
		isq_tool_usage_error(&cmd, "unexpected argument '%s'", pos.items[0]);
	struct isq_run_config rcfg = { 0 };
	if (opt_config)
		load_config(&rcfg);
	if (!opt_model)
		isq_tool_usage_error(&cmd, "no model given (-m, or model_id in --config)");
	if (opt_prompt && opt_file)
		isq_tool_usage_error(&cmd, "-p and -f exclude each other");
	if (opt_temp < 0 || opt_top_p <= 0 || opt_top_p > 1 || opt_min_p < 0 || opt_min_p > 1 || opt_top_k < 0)
		isq_tool_usage_error(&cmd, "sampling parameters out of range (--temp >= 0, 0 < --top-p <= 1, "
					   "0 <= --min-p <= 1, --top-k >= 0)");
	if (opt_ctx < 0)
		isq_tool_usage_error(&cmd, "--ctx must be positive");
	kv_f16 = !strcasecmp(opt_cache_type, "f16");
	if (!kv_f16 && strcasecmp(opt_cache_type, "f32"))
		isq_tool_usage_error(&cmd, "--cache-type must be f32 or f16, not '%s'", opt_cache_type);
	signal(SIGPIPE, SIG_IGN);

	struct isq_errbuf e = { 0 };
	struct isq_backend *be;
	int rc = isq_backend_new(opt_backend, isq_tool_threads(opt_threads), &be, &e);
	if (rc == ISQ_EINVAL)
		isq_tool_usage_error(&cmd, "%s", isq_errbuf_msg(&e));
	if (rc)
		isq_die("%s", isq_errbuf_msg(&e));

	struct run_stats st = { 0 };
	st.seed = opt_seed >= 0 ? (uint64_t)opt_seed : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	double t0 = isq_now();
	struct isq_weights w;
	struct isq_weights_opts wo = { .isq = ISQ_TYPE_NONE, .n_threads = be->n_threads };
	const char *path = opt_model;
	char quant_buf[32];
	if (opt_quant && opt_isq)
		isq_tool_usage_error(&cmd, "give --quant or --isq, not both");
	if (opt_quant)
		resolve_quant(&path, quant_buf, sizeof(quant_buf));
	if (opt_isq) {
		const char *near = NULL;
		if (isq_type_parse(opt_isq, &wo.isq, &near))
			isq_tool_usage_error(&cmd, "unknown type '%s'%s%s%s", opt_isq, near ? " (did you mean '" : "",
					     near ? near : "", near ? "'?)" : "");
	}
	if (isq_weights_open_opts(&w, path, &wo))
		isq_die("%s: %s", path, isq_errbuf_msg(&w.err));
	if (opt_isq)
		isq_info("%s: %d matrices quantized to %s while loading (%d of them to mistral.rs's fallback type for "
			 "their shape; %d more kept in their type)",
			 path, wo.n_quantized, isq_type_name(wo.isq), wo.n_fallback, wo.n_kept);
	struct isq_tokenizer *tok = isq_tokenizer_new();
	if (!tok)
		isq_die("out of memory");
	load_tokenizer(tok, &w);

	struct isq_buf text = ISQ_BUF_INIT;
	load_prompt(&text);
	int32_t *ids = NULL;
	size_t n_ids = 0;
	if (isq_tokenizer_encode(tok, text.data ? text.data : "", text.len, ISQ_TOKENIZER_ADD_SPECIAL, &ids, &n_ids))
		isq_die("%s", isq_tokenizer_errmsg(tok));
	if (!n_ids) {
		/* nothing to continue from: start where a document starts */
		int32_t bos = isq_tokenizer_bos(tok);
		if (bos < 0)
			isq_die("the prompt is empty and the model has no BOS token");
		ids = malloc(sizeof(*ids));
		if (!ids)
			isq_die("out of memory");
		ids[0] = bos;
		n_ids = 1;
	}
	const struct isq_fw_config *cfg = &w.fw.cfg;
	int64_t n_ctx = opt_ctx ? opt_ctx : opt_n >= 0 ? (int64_t)n_ids + opt_n : cfg->n_ctx_train;
	if ((int64_t)n_ids > n_ctx)
		isq_die("the prompt (%zu tokens) does not fit a context of %lld", n_ids, (long long)n_ctx);
	if (n_ctx > cfg->n_ctx_train && cfg->n_ctx_train > 0)
		isq_debug("context %lld is longer than the model was trained for (%lld)", (long long)n_ctx,
			  (long long)cfg->n_ctx_train);
	struct isq_fw_params fp = { .n_ctx = n_ctx, .n_batch = 64, .kv_type = kv_f16 ? ISQ_TYPE_F16 : ISQ_TYPE_F32,
				    /* one context: what it copies need not stay in the handle too */
				    .host_copied = isq_weights_host_copied, .host_copied_ud = &w };
	struct isq_fw_ctx *fw;
	if (isq_fw_new(&fw, &w.fw, be, &fp, &e))
		isq_die("%s: %s", opt_model, isq_errbuf_msg(&e));
	st.load_s = isq_now() - t0;
	st.n_prompt = n_ids;

	generate(fw, tok, ids, n_ids, n_ctx, cfg->n_vocab, &st);
	report(&st, be);

	free(ids);
	isq_buf_release(&text);
	isq_fw_free(fw);
	isq_tokenizer_free(tok);
	isq_weights_release(&w);
	isq_backend_free(be);
	isq_run_config_free(&rcfg);
	return isq_tool_exit(0);
}
