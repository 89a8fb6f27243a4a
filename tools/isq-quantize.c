/* isq-quantize - stream a model through the quantizers into GGUF. */
#include "convert.h"
#include "hparams.h"
#include "tool.h"

#include <cJSON.h>
#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <unistd.h>

static const char *opt_model, *opt_type, *opt_output, *opt_format, *opt_imatrix, *opt_calib, *opt_topology;
static const char *opt_org, *opt_out_type, *opt_tok_type, *opt_target;
static struct isq_strlist opt_tensor_types = ISQ_STRLIST_INIT;
static int opt_pure, opt_json, opt_force, opt_quiet, opt_verbose;
static int64_t opt_threads;

static const struct isq_opt options[] = {
	ISQ_OPT_STRING('m', "model", &opt_model, "MODEL", "HF directory, safetensors or GGUF file"),
	ISQ_OPT_STRING('t', "type", &opt_type, "TYPE", "type, shorthand 2-8, or mixture (q4_k_m ...)"),
	ISQ_OPT_STRING('o', "output", &opt_output, "PATH", "output file ('-' = stdout)"),
	ISQ_OPT_STRING(0, "format", &opt_format, "F", "gguf (default) or uqff"),
	ISQ_OPT_STRING(0, "imatrix", &opt_imatrix, "FILE", "importance matrix (gguf, dat, cimatrix; '-' = stdin)"),
	ISQ_OPT_STRING(0, "calibration-file", &opt_calib, "FILE", "compute an imatrix from this text first"),
	ISQ_OPT_STRING(0, "topology", &opt_topology, "FILE", "mistral.rs topology YAML (per-layer types)"),
	ISQ_OPT_STRING(0, "organization", &opt_org, "ORG", "default, or moqe (experts only)"),
	ISQ_OPT_LIST(0, "tensor-type", &opt_tensor_types, "RE=TYPE", "type for tensors matching RE (repeatable)"),
	ISQ_OPT_STRING(0, "output-tensor-type", &opt_out_type, "TYPE", "type of output.weight (lm_head)"),
	ISQ_OPT_STRING(0, "token-embedding-type", &opt_tok_type, "TYPE", "type of token_embd.weight"),
	ISQ_OPT_FLAG(0, "pure", &opt_pure, "same type everywhere: no promotion, no mixture rules"),
	ISQ_OPT_STRING(0, "target", &opt_target, "T", "cpu, cuda, vulkan or metal (resolves shorthands)"),
	ISQ_OPT_INT(0, "threads", &opt_threads, "N", "worker threads (default: all cores)"),
	ISQ_OPT_FLAG(0, "json", &opt_json, "summary as JSON on stdout (needs -o FILE)"),
	ISQ_OPT_FLAG(0, "force", &opt_force, "write binary output to a terminal"),
	ISQ_OPT_COUNT('q', "quiet", &opt_quiet, "print less on stderr"),
	ISQ_OPT_COUNT('v', "verbose", &opt_verbose, "print more on stderr"),
	ISQ_OPT_END(),
};

static const char *const usage[] = { "-m MODEL -t TYPE -o OUT [options]", NULL };

static const struct isq_cmd cmd = {
	.name = "isq-quantize",
	.usage = usage,
	.summary = "Quantize a model (HF directory, safetensors or F32/F16/BF16 GGUF) into a GGUF file that\n"
		   "llama.cpp loads, streaming: the model is never held in memory.",
	.opts = options,
};

static int gguf_sink(void *ctx, const void *data, size_t n)
{
	return isq_gguf_writer_write(ctx, data, n);
}

static int parse_target(const char *s, enum isq_target *t)
{
	static const char *const names[] = { "cpu", "cuda", "vulkan", "metal" };
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, names[i])) {
			*t = (enum isq_target)i;
			return 0;
		}
	return -1;
}

static int ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && !strcmp(s + a - b, suf);
}

/* general.name: the model directory's (or file's) base name. */
static void model_name(const char *path, char *out, size_t n)
{
	char *copy = isq_strdup(path);
	size_t l = strlen(copy);
	while (l > 1 && copy[l - 1] == '/')
		copy[--l] = '\0';
	const char *b = basename(copy);
	snprintf(out, n, "%s", b);
	char *dot = strrchr(out, '.');
	if (dot && (!strcmp(dot, ".safetensors") || !strcmp(dot, ".gguf")))
		*dot = '\0';
	free(copy);
}

static int write_metadata(struct isq_gguf_writer *w, const struct isq_model *m, const struct isq_plan *p,
			  const struct isq_imatrix *im, struct isq_errbuf *e)
{
	int rc = 0;
	if (m->gguf) {
		/* a GGUF input keeps its metadata, as llama-quantize does */
		for (size_t i = 0; i < m->gguf->n_kv && !rc; i++) {
			const char *k = m->gguf->kv[i].key;
			if (!strncmp(k, "split.", 6) || !strcmp(k, "general.alignment"))
				continue;
			rc = isq_gguf_set_kv(w, &m->gguf->kv[i]);
		}
	} else if (m->have_config) {
		char name[256];
		model_name(m->path, name, sizeof(name));
		rc = isq_hparams_to_gguf(&m->hp, name, w);
	}
	rc = rc ? rc : isq_gguf_set_u32(w, "general.file_type", p->req.ftype);
	rc = rc ? rc : isq_gguf_set_u32(w, "general.quantization_version", 2);
	if (!rc && im) {
		rc = isq_gguf_set_str(w, "quantize.imatrix.file", opt_imatrix);
		if (!rc && im->n_datasets)
			rc = isq_gguf_set_str(w, "quantize.imatrix.dataset", im->datasets[0]);
		rc = rc ? rc : isq_gguf_set_u32(w, "quantize.imatrix.entries_count", (uint32_t)im->n);
		rc = rc ? rc : isq_gguf_set_u32(w, "quantize.imatrix.chunks_count", (uint32_t)im->chunk_count);
	}
	if (!rc && p->n_fallbacks) {
		/* every fallback is recorded: "name: requested -> stored (reason)" */
		const char **list = calloc((size_t)p->n_fallbacks, sizeof(*list));
		char **own = calloc((size_t)p->n_fallbacks, sizeof(*own));
		int k = 0;
		for (size_t i = 0; i < p->n && list && own; i++) {
			const struct isq_plan_entry *en = &p->entries[i];
			if (!en->fallback[0])
				continue;
			struct isq_buf b = ISQ_BUF_INIT;
			isq_buf_printf(&b, "%s: %s -> %s (%s)", en->name, isq_type_name(en->requested), isq_type_name(en->type),
				       en->fallback);
			own[k] = isq_buf_detach(&b, NULL);
			list[k] = own[k];
			k++;
		}
		rc = list && own ? isq_gguf_set_arr_str(w, "quantize.fallbacks", list, (uint64_t)k) : ISQ_ENOMEM;
		for (int i = 0; i < k; i++)
			free(own[i]);
		free(own);
		free(list);
	}
	if (rc)
		isq_errbuf_set(e, rc, "%s", isq_gguf_writer_errmsg(w));
	return rc;
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
	if (!opt_type)
		isq_tool_usage_error(&cmd, "no type given (-t)");
	if (!opt_output)
		isq_tool_usage_error(&cmd, "no output given (-o)");
	enum isq_target target = ISQ_TARGET_CPU;
	if (opt_target && parse_target(opt_target, &target))
		isq_tool_usage_error(&cmd, "unknown target '%s' (cpu, cuda, vulkan, metal)", opt_target);
	enum isq_out_format format = ISQ_FORMAT_GGUF;
	if (opt_format) {
		if (!strcmp(opt_format, "uqff"))
			format = ISQ_FORMAT_UQFF;
		else if (strcmp(opt_format, "gguf"))
			isq_tool_usage_error(&cmd, "unknown format '%s' (gguf, uqff)", opt_format);
	} else if (ends_with(opt_output, ".uqff") || ends_with(opt_output, "/") || isq_is_dir(opt_output)) {
		format = ISQ_FORMAT_UQFF;
	}
	if (opt_imatrix && opt_calib)
		isq_tool_usage_error(&cmd, "--imatrix and --calibration-file exclude each other");
	if (opt_json && !strcmp(opt_output, "-"))
		isq_tool_usage_error(&cmd, "--json needs -o FILE (stdout carries the GGUF)");
	if (!strcmp(opt_output, "-") && !opt_force && isq_fd_is_tty(1))
		isq_tool_usage_error(&cmd, "refusing to write binary output to a terminal (use --force)");
	if (format == ISQ_FORMAT_UQFF)
		isq_die("%s: UQFF output is not implemented yet; use --format gguf", opt_output);
	if (opt_calib)
		isq_die("--calibration-file is not implemented yet; compute an imatrix with llama-imatrix and pass --imatrix");
	if (opt_topology || opt_org)
		isq_die("--topology and --organization are not implemented yet");

	/* a closed pipe is reported as an error, not a silent death by SIGPIPE */
	signal(SIGPIPE, SIG_IGN);
	isq_types_init();
	struct isq_model m;
	if (isq_model_open(&m, opt_model))
		isq_die("%s", isq_errbuf_msg(&m.err));
	/* a model directory needs its config.json; a lone safetensors file may go without */
	if (m.format == ISQ_MODEL_SAFETENSORS && (isq_is_dir(opt_model) || m.config_rc != ISQ_ENOTFOUND) && !m.have_config)
		isq_die("%s: %s", opt_model, m.config_err);
	for (size_t i = 0; i < m.n_tensors; i++) {
		int t = m.tensors[i].type;
		if (t != ISQ_TYPE_F32 && t != ISQ_TYPE_F16 && t != ISQ_TYPE_BF16 && t != ISQ_TYPE_F64 && t != ISQ_TYPE_NONE &&
		    m.tensors[i].n_dims >= 2)
			isq_die("%s: tensor '%s' is already quantized (%s); isq-quantize needs F32, F16 or BF16 weights",
				opt_model, m.tensors[i].name, m.tensors[i].type_name);
	}

	struct isq_imatrix im;
	isq_imatrix_init(&im);
	if (opt_imatrix && isq_imatrix_read(&im, opt_imatrix))
		isq_die("%s", isq_errbuf_msg(&im.err));

	struct isq_errbuf e = { 0 };
	struct isq_plan plan;
	struct isq_plan_opts po = { .type = opt_type, .pure = opt_pure, .token_embd_type = opt_tok_type,
				    .output_type = opt_out_type, .tensor_types = &opt_tensor_types, .format = format,
				    .target = target };
	int rc = isq_plan_build(&m, &po, &plan, &e);
	if (rc == ISQ_EINVAL && strstr(e.msg, "unknown type"))
		isq_tool_usage_error(&cmd, "%s", e.msg);
	if (rc)
		isq_die("%s: %s", opt_model, isq_errbuf_msg(&e));

	if (opt_imatrix) {
		size_t used = 0;
		for (size_t i = 0; i < plan.n; i++)
			if (plan.entries[i].quantize && (isq_imatrix_find(&im, plan.entries[i].name) ||
							 isq_imatrix_find(&im, plan.entries[i].src_name)))
				used++;
		if (!used)
			isq_die("%s: the imatrix matches no tensor of %s (an imatrix for another model?)", opt_imatrix, opt_model);
	}

	for (size_t i = 0; i < plan.n; i++) {
		const struct isq_plan_entry *en = &plan.entries[i];
		if (en->fallback[0])
			isq_info("tensor '%s': %s -> %s: %s", en->name, isq_type_name(en->requested), isq_type_name(en->type),
				 en->fallback);
	}
	if (plan.req.type == ISQ_TYPE_Q8_1 || plan.req.type == ISQ_TYPE_Q8_K)
		isq_warn("warning: %s is an activation type in llama.cpp; llama.cpp will not run GGUF weights stored in it",
			 isq_type_name(plan.req.type));

	struct isq_gguf_writer *w = isq_gguf_writer_new();
	if (!w)
		isq_die("out of memory");
	if (write_metadata(w, &m, &plan, opt_imatrix ? &im : NULL, &e))
		isq_die("%s: %s", opt_output, isq_errbuf_msg(&e));
	for (size_t i = 0; i < plan.n; i++) {
		const struct isq_plan_entry *en = &plan.entries[i];
		if (isq_gguf_writer_add_tensor(w, en->name, (uint32_t)en->type, en->n_dims, en->ne))
			isq_die("%s: %s", opt_output, isq_gguf_writer_errmsg(w));
	}

	struct isq_out out;
	if (isq_out_open(&out, opt_output))
		isq_die("%s", isq_errbuf_msg(&out.err));
	if (isq_gguf_writer_begin(w, &out))
		isq_die("%s", out.err.code ? isq_errbuf_msg(&out.err) : isq_gguf_writer_errmsg(w));

	struct isq_pool *pool = isq_pool_new(isq_tool_threads(opt_threads));
	if (!pool)
		isq_die("out of memory");
	uint64_t src_total = 0;
	for (size_t i = 0; i < plan.n; i++)
		src_total += m.tensors[plan.entries[i].src].nbytes * (uint64_t)plan.entries[i].n_src;
	struct isq_progress pr;
	isq_progress_begin(&pr, "quantize", src_total, isq_get_verbosity() > 0);
	struct isq_converter conv = { .model = &m, .pool = pool, .imatrix = opt_imatrix ? &im : NULL,
				      .measure_error = opt_json, .progress = &pr };
	struct isq_convert_stats *stats = calloc(plan.n ? plan.n : 1, sizeof(*stats));
	double t0 = isq_now();
	for (size_t i = 0; i < plan.n; i++)
		if (isq_convert_entry(&conv, &plan.entries[i], gguf_sink, w, &stats[i])) {
			isq_progress_end(&pr);
			if (out.err.code) /* the message names the output already */
				isq_die("%s", isq_errbuf_msg(&out.err));
			isq_die("%s: %s", opt_model, isq_errbuf_msg(&conv.err));
		}
	if (isq_gguf_writer_finish(w))
		isq_die("%s", out.err.code ? isq_errbuf_msg(&out.err) : isq_gguf_writer_errmsg(w));
	uint64_t written = out.written;
	if (isq_out_commit(&out))
		isq_die("%s", isq_errbuf_msg(&out.err));
	double secs = isq_now() - t0;
	isq_progress_end(&pr);
	isq_info("%s: %zu tensors, %d fallbacks, %.2f MiB, %.2f bpw, %.2f s (%.1f MB/s of input)", opt_output, plan.n,
		 plan.n_fallbacks, (double)written / 1048576.0,
		 plan.total_params ? 8.0 * (double)plan.total_bytes / (double)plan.total_params : 0.0, secs,
		 secs > 0 ? (double)src_total / 1e6 / secs : 0.0);

	if (opt_json) {
		cJSON *root = cJSON_CreateObject();
		cJSON_AddStringToObject(root, "model", opt_model);
		cJSON_AddStringToObject(root, "output", opt_output);
		cJSON_AddStringToObject(root, "format", "gguf");
		cJSON_AddStringToObject(root, "type", plan.req.label);
		cJSON_AddNumberToObject(root, "bytes", (double)written);
		cJSON_AddNumberToObject(root, "parameters", (double)plan.total_params);
		cJSON_AddNumberToObject(root, "bits_per_weight",
					plan.total_params ? 8.0 * (double)plan.total_bytes / (double)plan.total_params : 0.0);
		cJSON_AddNumberToObject(root, "fallbacks", plan.n_fallbacks);
		cJSON_AddNumberToObject(root, "seconds", secs);
		if (opt_imatrix)
			cJSON_AddStringToObject(root, "imatrix", opt_imatrix);
		cJSON *arr = cJSON_AddArrayToObject(root, "tensors");
		for (size_t i = 0; i < plan.n; i++) {
			const struct isq_plan_entry *en = &plan.entries[i];
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "name", en->name);
			cJSON_AddStringToObject(o, "source", en->src_name);
			cJSON_AddStringToObject(o, "source_type", isq_type_name(en->src_type));
			cJSON_AddStringToObject(o, "type", isq_type_name(en->type));
			cJSON *shape = cJSON_AddArrayToObject(o, "shape");
			for (int d = en->n_dims - 1; d >= 0; d--)
				cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)en->ne[d]));
			cJSON_AddNumberToObject(o, "bytes", (double)en->nbytes);
			if (en->fallback[0]) {
				cJSON_AddStringToObject(o, "requested", isq_type_name(en->requested));
				cJSON_AddStringToObject(o, "fallback", en->fallback);
			} else {
				cJSON_AddNullToObject(o, "fallback");
			}
			/* relative weighted RMSE: sqrt(sum w (x-q)^2 / sum w x^2) */
			if (stats[i].ref_sum > 0)
				cJSON_AddNumberToObject(o, "weighted_error", sqrt(stats[i].err_sum / stats[i].ref_sum));
			else
				cJSON_AddNumberToObject(o, "weighted_error", 0);
			cJSON_AddItemToArray(arr, o);
		}
		char *text = cJSON_PrintUnformatted(root);
		puts(text);
		free(text);
		cJSON_Delete(root);
	}

	free(stats);
	isq_pool_free(pool);
	isq_gguf_writer_free(w);
	isq_plan_release(&plan);
	isq_imatrix_release(&im);
	isq_model_release(&m);
	isq_strlist_release(&pos);
	isq_strlist_release(&opt_tensor_types);
	return isq_tool_exit(0);
}
